"""Building blocks the scenarios share: timed steps, posts through the LB, VIP writes, VM restarts."""

import time

from . import common, drill, failover, net, stack


def write_post(lab, out, n, deadline=300):
    """Post n through the public LB (drill.post with the lab's backend)."""
    return drill.post(lab.backend, out, n, deadline)


def read_posts(lab, posts, tries=4):
    """Every post readable through the public LB (drill.read_posts with the lab's backend)."""
    return drill.read_posts(lab.backend, posts, tries)


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
    """drill.wait_pair_healthy with the lab's backend (a fenced db VM ends the wait at once)."""
    return drill.wait_pair_healthy(lab.backend, timeout)


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
