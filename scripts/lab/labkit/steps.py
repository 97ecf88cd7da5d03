"""Building blocks the scenarios share: timed steps, posts through the LB, VIP writes, VM restarts."""

import time

from . import common, failover, net, stack

PUBLIC_URL = "http://%s" % net.PUBLIC_VIP


class Steps:
    """Runs named steps, records each one's seconds and outcome in the scenario's `steps`."""

    def __init__(self, lab, out):
        self.lab, self.out = lab, out

    def __call__(self, name, fn, *args, **kw):
        self.lab.log("%s: %s" % (self.out["name"], name))
        t0 = time.time()
        entry = {"step": name, "start": round(t0, 3)}
        self.out["steps"].append(entry)
        try:
            value = fn(*args, **kw)
            entry["ok"] = True
            return value
        except Exception as e:
            entry["ok"] = False
            entry["error"] = str(e)
            raise
        finally:
            entry["seconds"] = round(time.time() - t0, 1)
            self.lab.check_lbs()


def write_post(lab, out, n, deadline=300):
    """Post n through the public LB (XML-RPC as the admin): {id, title, t, seconds, attempts}."""
    title = "hainit lab %s post %d" % (lab.run_id, n)
    r = lab.client(["post", "--url", PUBLIC_URL, "--title", title, "--deadline", str(deadline), "--pause", "1"],
                   deadline)
    if not r["ok"]:
        raise common.LabError("post %d not written through the public LB within %ds: %s"
                              % (n, deadline, r["errors"][-2:]))
    post = {"n": n, "id": r["value"], "title": title, "t": r["t"], "attempts": r["attempts"],
            "seconds": r["seconds"]}
    out.setdefault("posts", []).append(post)
    lab.log("post %d written (id %d, %d attempt(s), %.1f s)" % (n, post["id"], r["attempts"], r["seconds"]))
    return post


def read_posts(lab, posts, tries=4):
    """Every post readable through the public LB; `tries` reads each (new flows hash to both web nodes)."""
    bad = []
    for p in posts:
        # Each read may retry for 120 s: the first request to a web node just restarted under
        # emulation can take longer than one 30 s attempt (seen: post 1's first read, data intact).
        r = lab.client(["get", "--url", PUBLIC_URL, "--id", str(p["id"]), "--tries", str(tries),
                        "--deadline", "120"], 160 * tries)
        if not r["ok"] or r["value"] != p["title"]:
            bad.append("post %d (id %d): %s" % (p["n"], p["id"], r.get("value") or r))
    if bad:
        raise common.LabError("not readable through the public LB: " + "; ".join(bad))
    return len(posts)


def vip_write(lab, note, deadline):
    """INSERT through the ILB VIP, retried until it succeeds: {t, served_by, seconds, attempts}."""
    r = lab.client(["vip", "--host", net.VIP, "--defaults", lab.vip_defaults(), "--note", note,
                    "--deadline", str(deadline), "--pause", "0.5"], deadline)
    if not r["ok"]:
        raise common.LabError("no write through the VIP within %ds: %s" % (deadline, r["errors"][-2:]))
    return {"t": r["t"], "served_by": r["value"]["served_by"], "id": r["value"]["id"], "seconds": r["seconds"],
            "attempts": r["attempts"]}


def boot_vm(lab, vm, timeout=900):
    """Power on and wait for ssh; seconds."""
    t0 = time.time()
    vm.start()
    vm.wait_ssh(timeout)
    return time.time() - t0


def fenced_vms(lab, role="db"):
    """VMs of `role` whose qemu exited without the lab stopping it (see VM.fenced)."""
    return [vm for vm in lab.vms.values() if vm.spec.role == role and vm.fenced()]


def start_fenced(lab, vm, timeout=900):
    """Power a fenced VM on again, as an operator (or Azure's `reboot` of a stopped VM) would: the
    host time its qemu exited and the seconds until ssh answers."""
    exited = vm.exited_at
    lab.log("%s was fenced (qemu exited %s); starting it again as an operator would"
            % (vm.name, time.strftime("%H:%M:%S", time.localtime(exited)) if exited else "at an unseen time"))
    return {"vm": vm.name, "qemu_exit": exited, "boot_s": round(boot_vm(lab, vm, timeout), 1)}


def wait_fenced(lab, survivor, name, since):
    """Until `survivor`'s journal says the cluster fenced `name` after host time `since`; seconds.
    Bounded by detection (2.2 x token), the fence's own wait and two minutes for the agent."""
    t0 = time.time()
    timeout = 2.2 * lab.settings.token_ms / 1000.0 + (lab.settings.fence_wait_s() or 0) + 120
    after = since + survivor.clock_offset() - 1
    pattern = failover.fenced_pattern(name)

    def fenced():
        return stack.first(stack.journal(survivor, after - 5, grep=name), pattern, after) is not None
    common.wait_until(fenced, timeout, "%s to fence %s" % (survivor.name, name), interval=3)
    return time.time() - t0


def wait_pair_healthy(lab, timeout):
    dbs = [lab.vms["db-a"], lab.vms["db-b"]]
    t0 = time.time()

    def healthy():
        for vm in dbs:
            if vm.fenced():
                # Nobody would start it again here: say so now instead of waiting out the deadline.
                raise common.LabError("%s was fenced (its qemu exited on its own) while waiting for the pair"
                                      % vm.name)
        ok = stack.pair_healthy(dbs)
        if not ok:
            lab.log.detail("pair: " + stack.pair_status(dbs))
        return ok
    try:
        # Every 2 s: a look is two channels on the VMs' ssh masters (VM.start_master), not two logins.
        common.wait_until(healthy, timeout, "the DB pair to be healthy (Connected, UpToDate/UpToDate)",
                          interval=2)
    except common.LabError as e:
        raise common.LabError("%s; last: %s" % (e, stack.pair_status(dbs)))
    return time.time() - t0


def fence_reason(lab, vm, exited):
    """What the other db VM's scheduler said about fencing `vm` (its 'will be fenced' lines)."""
    others = [o for o in lab.vms.values() if o.spec.role == "db" and o is not vm and o.running()]
    since = int((exited or time.time()) - 900)
    for o in others:
        out = o.try_ssh("journalctl --no-pager -o cat --since=@%d -t pacemaker-schedulerd "
                        "--grep='%s will be fenced' | tail -n 2" % (since, vm.name), timeout=60) or ""
        if out.strip():
            return out.strip().splitlines()[-1]
    return None


def restart_incident(lab, vm, result, before):
    """Start a fenced VM again and record it in the report's incidents: what the survivor said,
    when qemu exited, how long until ssh answered, and what it happened before."""
    reason = fence_reason(lab, vm, vm.exited_at)
    entry = start_fenced(lab, vm)
    entry.update(before=before, reason=reason)
    result.setdefault("incidents", []).append(entry)
    lab.log("incident: %s was fenced before %s (%s); started again" % (vm.name, before, reason or "reason unseen"))


def recover_fenced(lab, result, before, timeout=1500):
    """A db VM fenced outside a scenario (its qemu exited; on Azure the VM reboots) is started again
    and the pair must be healthy before `before` runs; each one is an incident in the report."""
    fenced = fenced_vms(lab)
    for vm in fenced:
        restart_incident(lab, vm, result, before)
    if fenced:
        wait_pair_healthy(lab, timeout)
    return fenced


def wait_hainit(lab, vm, timeout, out):
    """stack.wait_hainit, but a VM fenced meanwhile is started again (as Azure's reboot would;
    hainit.service runs at every boot) and noted in the scenario's output."""
    def done():
        if vm.fenced():
            entry = start_fenced(lab, vm)
            out.setdefault("fenced", []).append(entry)
            out["notes"].append("%s was fenced during its first boot and started again" % vm.name)
        state, code = stack.hainit_state(vm)
        return (state, code) if state in ("ok", "failed") else None
    return common.wait_until(done, timeout, "hainit on " + vm.name, interval=2)


def wait_lb(lab, lb, backend, healthy, since, timeout):
    """Wait for the LB to mark backend up/down after `since`; the event's time."""
    kind = "up" if healthy else "down"

    def seen():
        for e in lab.lb_events(lb, since):
            if e.get("event") == kind and e.get("backend") == backend:
                return e["t"]
        return None
    return common.wait_until(seen, timeout, "%s to mark %s %s" % (lb, backend, kind), interval=1)[0]


def db_roles(lab):
    """(primary VM, secondary VM) by DRBD role."""
    dbs = [lab.vms["db-a"], lab.vms["db-b"]]
    p = stack.primary(dbs)
    if p is None:
        raise common.LabError("no DRBD primary: " + stack.pair_status(dbs))
    return p, [vm for vm in dbs if vm is not p][0]
