"""Scenario `splitbrain` (issue 5, item 6): cut the db-a <-> db-b link while the primary serves
writes through the VIP, then heal it.

The cut is bridge-port isolation of the two db taps: each node still reaches the load balancers,
the web subnet and its IMDS, only the peer is gone (corosync, DRBD and pcsd all lose it at once).
A writer inserts through the VIP every 0.5 s for the whole episode and records which node served
each acknowledged write. Verdict:
  - two primaries serving writes: acknowledged writes served by both nodes during the partition;
  - silent divergence: acknowledged writes missing after the heal without DRBD reporting a split
    brain (a detected split brain that waits for an operator is loud, not silent).
What DRBD, the cluster, the ILB and hainit status show on each side is sampled into the report.
"""

import json
import os
import subprocess
import time

from . import common, net, stack
from .lab import CLIENT_SCRIPT
from .steps import Steps, db_roles, wait_pair_healthy


def sample(lab, dbs, t0):
    row = {"t_s": round(time.time() - t0, 1)}
    for vm in dbs:
        st = stack.drbd(vm)
        c = stack.cluster(vm)
        row[vm.name] = {
            "drbd": "%s %s/%s %s/%s" % (st["cs"], st["role"], st["peer_role"], st["disk"], st["peer_disk"])
            if st else "down",
            "sees_online": sorted(n for n, on in (c or {}).get("nodes", {}).items() if on),
            "runs": sorted({r["id"] for r in (c or {}).get("resources", [])
                            if r["active"] and vm.name in r["nodes"]}),
        }
    rot = [e for e in lab.lb_events("ilb") if e.get("event") == "rotation"]
    row["ilb_rotation"] = rot[-1]["healthy"] if rot else []
    return row


def run(lab, out, result):
    step = Steps(lab, out)
    dbs = [lab.vms["db-a"], lab.vms["db-b"]]
    step("DB pair healthy", wait_pair_healthy, lab, 900)
    primary, _ = db_roles(lab)
    wlog = os.path.join(lab.run_dir, "splitbrain-writes.jsonl")
    stop = os.path.join(lab.run_dir, "splitbrain-writes.stop")
    writer = subprocess.Popen(lab.net.cmd(["python3", CLIENT_SCRIPT, "vip-loop", "--host", net.VIP, "--defaults",
                                           lab.vip_defaults(), "--log", wlog, "--stop", stop, "--pause", "0.5"]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lab.track(writer.pid, "split-brain writer")
    timeline = out.setdefault("timeline", [])
    token_s = lab.settings.token_ms / 1000.0
    try:
        common.wait_until(lambda: len(read_writes(wlog)) >= 5, 120, "writes through the VIP", interval=1)
        t_cut = time.time()
        step("cut the db-a <-> db-b link", lab.net.isolate, [vm.name for vm in dbs], True)
        offsets = {vm.name: vm.clock_offset() for vm in dbs}
        observe = max(90.0, 8 * token_s + 40)
        while time.time() - t_cut < observe:
            timeline.append(dict(sample(lab, dbs, t_cut), phase="cut"))
            time.sleep(5)
        out["hainit_status_during_cut"] = {vm.name: status(vm) for vm in dbs}
        t_heal = time.time()
        step("heal the link", lab.net.isolate, [vm.name for vm in dbs], False)
        deadline = time.time() + 240
        while time.time() < deadline:
            timeline.append(dict(sample(lab, dbs, t_cut), phase="healed"))
            if stack.pair_healthy(dbs) and time.time() - t_heal > 30:
                break
            time.sleep(5)
        time.sleep(3)
    finally:
        open(stop, "w").close()
        try:
            writer.wait(30)
        except subprocess.TimeoutExpired:
            writer.kill()
    writes = read_writes(wlog)
    acked = [w for w in writes if w.get("ok") and w["t"] >= t_cut]
    during = [w for w in acked if w["t"] < t_heal]
    served = sorted({w["served_by"] for w in during})
    out["writes"] = {"before_cut": len([w for w in writes if w.get("ok") and w["t"] < t_cut]),
                     "acked_during_cut": len(during), "acked_after_heal": len(acked) - len(during),
                     "served_by_during_cut": served,
                     "failed_attempts": len([w for w in writes if not w.get("ok") and w["t"] >= t_cut])}
    out["hainit_status_after_heal"] = {vm.name: status(vm) for vm in dbs}
    out["drbd_kernel_log"] = {vm.name: drbd_log(vm, t_cut + offsets[vm.name]) for vm in dbs}
    sb_detected = any("Split-Brain detected" in line for lines in out["drbd_kernel_log"].values() for line in lines)
    both_primary = any(all(" Primary/" in row.get(vm.name, {}).get("drbd", "") for vm in dbs) for row in timeline)
    lost = missing_writes(lab, acked)
    out["verdict"] = {
        "initial_primary": primary.name,
        "two_primaries_seen": both_primary,
        "two_primaries_serving_writes": len(served) > 1,
        "split_brain_detected_by_drbd": sb_detected,
        "acked_writes_missing_after_heal": lost,
        "pair_healthy_after_heal": stack.pair_healthy(dbs),
        "final": stack.pair_status(dbs),
    }
    lab.log("split brain: served by %s during the cut; both primary: %s; DRBD split-brain: %s; "
            "acked writes missing: %s; after heal: %s"
            % (served, both_primary, sb_detected, lost, out["verdict"]["final"]))
    if len(served) > 1:
        out.setdefault("failed", []).append("two primaries served writes during the partition: %s" % served)
    if lost and not sb_detected:
        out.setdefault("failed", []).append("%s acknowledged writes vanished without a split-brain report" % lost)


def read_writes(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def missing_writes(lab, acked):
    """How many acknowledged writes (by their unique stamp) the VIP's database no longer has."""
    if not acked:
        return 0
    sql = "SELECT stamp FROM lab_heartbeat WHERE t >= %.3f" % (min(w["t"] for w in acked) - 5)
    r = common.run(lab.net.cmd(["mariadb", "--defaults-extra-file=" + lab.vip_defaults(), "-h", net.VIP,
                                "--connect-timeout=5", "-N", "-B", "-e", sql]), check=False, timeout=60)
    if r.returncode != 0:
        return "unknown (%s)" % r.stderr.strip()[:120]
    present = set(r.stdout.split())
    return len([w for w in acked if w["stamp"] not in present])


def drbd_log(vm, since_guest):
    out = vm.try_ssh("journalctl -k --no-pager -o cat --since=@%d --grep=drbd | tail -n 40" % int(since_guest),
                     timeout=60)
    return (out or "").splitlines()


def status(vm):
    r = vm.try_ssh("hainit status --json 2>/dev/null", timeout=120)
    try:
        return json.loads(r) if r else None
    except ValueError:
        return r.strip()[:500]
