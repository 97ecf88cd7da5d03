"""Scenarios `repair` (issue 5, item 4) and `crash` (item 5).

repair: the standby db VM is destroyed and replaced by a fresh VM (blank data disk, same tags);
hainit must rejoin it as secondary and resync it from the primary; then the cluster is switched
over to the new node and every post is read through the LB from its copy of the data.

crash: the same replacement, but hainit is SIGKILLed at several points of that first boot and
started again each time (systemctl restart hainit); the node must still converge and resync.
The kill points are fractions of the actions the repair run's hainit executed, so they land
inside different steps whatever the db role's steps are.
"""

import shlex
import time

from . import common, stack
from .drill import Steps
from .steps import boot_vm, db_roles, read_posts, vip_write, wait_fenced, wait_hainit, wait_pair_healthy

KILL_FRACTIONS = (0.15, 0.4, 0.65, 0.9)


def replace_standby(lab, step, timings):
    primary, standby = db_roles(lab)
    name = standby.name
    t_kill = time.time()
    step("destroy %s (power cut, disks discarded)" % name, standby.hard_kill)
    if lab.settings.stonith != "off":
        # The replacement boots once the cluster has fenced the dead VM, as an operator would see it
        # (and Azure takes minutes to delete and create a VM): booted sooner, it takes the pending
        # fence, since ARM powers a VM off by its name (…-3a28: the fresh db-a, 16 s after boot).
        timings["destroyed_to_fenced_s"] = round(
            step("%s fences the destroyed %s" % (primary.name, name), wait_fenced, lab, primary, name, t_kill), 1)
    fresh = lab.replace_vm(name)
    t0 = time.time()
    step("boot a fresh %s (blank data disk, same tags)" % name, boot_vm, lab, fresh)
    return primary, fresh, t0


def hainit_actions(vm):
    """How many actions hainit started on this VM since boot (its journal's 'start action=' lines)."""
    out = vm.try_ssh("journalctl -b -u hainit -o cat --no-pager | grep -c 'start action='", timeout=60)
    return int(out.strip()) if out and out.strip().isdigit() else 0


def switchover_and_read(lab, step, primary, fresh, posts):
    """Move the stack to the fresh node and read every post from its copy; then unstandby."""
    step("switch over: standby %s" % primary.name, primary.ssh, "pcs node standby %s" % primary.name)
    try:
        common.wait_until(lambda: stack.primary([fresh]) is fresh, 600,
                          "%s to become primary" % fresh.name, interval=2)
        write = step("write through the VIP on %s" % fresh.name, vip_write, lab, "after-switchover", 300)
        if write["served_by"] != fresh.name:
            raise common.LabError("write served by %s, expected %s" % (write["served_by"], fresh.name))
        step("every post readable from %s's copy" % fresh.name, read_posts, lab, posts)
    finally:
        step("unstandby %s" % primary.name, primary.ssh, "pcs node unstandby %s" % primary.name)
    step("DB pair healthy", wait_pair_healthy, lab, 900)


def run_repair(lab, out, result):
    step = Steps(lab, out)
    timings = out.setdefault("timings", {})
    posts = posts_so_far(result)
    step("DB pair healthy", wait_pair_healthy, lab, 900)
    primary, fresh, t0 = replace_standby(lab, step, timings)
    (state, code), _ = step("hainit converges on the fresh node", wait_hainit, lab, fresh, 1800, out)
    timings["fresh_boot_to_hainit_done_s"] = round(time.time() - t0, 1)
    if state != "ok":
        stack.collect_diagnostics(fresh, fresh.path("diagnostics.txt"))
        raise common.LabError("hainit on the fresh %s: %s (exit %s)" % (fresh.name, state, code))
    st = stack.drbd(fresh)
    out["notes"].append("fresh node after hainit: %s" % st)
    if st and st["role"] != "Secondary":
        out.setdefault("failed", []).append("fresh node joined as %s, not Secondary" % st["role"])
    t1 = time.time()
    step("full resync to the fresh node", wait_pair_healthy, lab, 1800)
    timings["resync_to_fresh_node_s"] = round(time.time() - t1, 1)
    timings["fresh_boot_to_redundant_s"] = round(time.time() - t0, 1)
    result.setdefault("repair_actions", hainit_actions(fresh))
    switchover_and_read(lab, step, primary, fresh, posts)


def run_crash(lab, out, result):
    step = Steps(lab, out)
    timings = out.setdefault("timings", {})
    posts = posts_so_far(result)
    total = result.get("repair_actions") or 40
    points = sorted({max(1, int(total * f)) for f in KILL_FRACTIONS})
    out["notes"].append("kill points: after the %s-th action started (of %d in the repair run)"
                        % (", ".join(map(str, points)), total))
    step("DB pair healthy", wait_pair_healthy, lab, 900)
    primary, fresh, t0 = replace_standby(lab, step, timings)
    kills = out.setdefault("kills", [])
    for k in points:
        done = hainit_actions(fresh)
        state, _ = stack.hainit_state(fresh)
        if state == "ok":
            out["notes"].append("hainit finished before kill point %d" % k)
            break
        # Past this point already (hainit starts at boot, before ssh answers): the next action.
        at = max(k, done + 1)
        step("arm the killer at action %d" % at, fresh.ssh, killer(at, at - done), timeout=60)
        (state, code), _ = step("hainit killed at action %d" % at, wait_hainit, lab, fresh, 1800, out)
        # A killer that did not fire must not kill the next run.
        fresh.try_ssh("systemctl stop lab-killer-%d 2>/dev/null" % at, timeout=60)
        line = fresh.try_ssh("journalctl -b -u hainit -o cat --no-pager | grep 'start action=' | tail -n 1") or ""
        kills.append({"at_action": at, "state": state, "exit": code, "last_action": line.strip()[-160:]})
        lab.log("killed hainit during: %s" % line.strip()[-120:])
        if state == "ok":
            out["notes"].append("hainit completed before the killer fired at %d" % at)
            break
        step("start hainit again", fresh.ssh, "systemctl reset-failed hainit; systemctl restart --no-block hainit")
    if not any(k["state"] != "ok" for k in kills):
        out.setdefault("failed", []).append("no kill interrupted hainit (it finished first): nothing was tested")
    (state, code), _ = step("hainit converges after the kills", wait_hainit, lab, fresh, 1800, out)
    if state != "ok":
        stack.collect_diagnostics(fresh, fresh.path("diagnostics.txt"))
        raise common.LabError("hainit on %s after %d kills: %s (exit %s)" % (fresh.name, len(kills), state, code))
    plan = fresh.ssh("hainit plan --json", check=False, timeout=300)
    out["plan_after"] = plan.stdout.count('"state":"change"') if plan.returncode == 0 else "plan failed"
    if plan.returncode != 0 or '"state":"change"' in plan.stdout:
        out.setdefault("failed", []).append("hainit plan after convergence still wants changes")
    step("resync to the fresh node", wait_pair_healthy, lab, 1800)
    timings["fresh_boot_with_kills_to_redundant_s"] = round(time.time() - t0, 1)
    step("every post readable through the LB", read_posts, lab, posts)


def killer(at, n):
    """A watcher inside the guest that SIGKILLs hainit the moment the n-th action from now starts
    (action `at` since boot). `-n 0`: the journal's backlog does not count. The shell's `read`
    takes one line at a time; `grep -m` (the earlier killer) exits only after reading the line
    after its last match, which after hainit's last action comes when hainit is done."""
    watch = ("journalctl -b -u hainit -f -n 0 -o cat | { n=0; while read -r line; do case $line in "
             "*'start action='*) n=$((n + 1)); [ $n -ge %d ] && break;; esac; done; "
             "kill -9 $(pidof hainit); }" % n)
    return "systemd-run --unit=lab-killer-%d --collect sh -c %s" % (at, shlex.quote(watch))


def posts_so_far(result):
    for s in result.get("scenarios", []):
        if s["name"] == "drill":
            return s.get("posts", [])
    return []
