"""The failover breakdown: where the seconds between a kill and the first write through the VIP go.

Times come from the survivor's journal (put on the host's clock with a measured offset), from the
emulated ARM's request log and from the load balancers' event logs (host clock). Marks: failure
detection (corosync forms the new membership / pacemaker sees the node lost), fencing requested,
the ARM powerOff of the killed VM, the killed node fenced (the fencer's result; promotion waits for
it), DRBD promotion, filesystem mounted, MariaDB started, probe listener (azure-lb) started, ILB
marks the survivor up, first write through the VIP. Stages run between consecutive marks in the
order they happened (the fast timing profile starts the probe listener before MariaDB).

Every value is measured: the token, consensus and priority-fencing-delay are read from the
survivor's running cluster, and each operation's start (the controller's "Initiating …") beside
its result shows how much of a stage was the agent and how much Pacemaker's scheduling.
"""

import re

from . import stack

# Resource agents -> what their successful operation means for the breakdown.
AGENT_MARKS = [("drbd", "promote", "promoted"), ("Filesystem", "start", "filesystem"),
               ("mysql", "start", "mariadb"), ("azure-lb", "start", "probe_listener")]
FALLBACK = {
    "detected": r"(new membership|state is now lost|Node .* is now lost|[Mm]embers\[1\])",
    "promoted": r"role\( Secondary -> Primary \)",
    "filesystem": r"(EXT4-fs \(drbd\d+\): mounted|XFS \(drbd\d+\): Ending)",
    "mariadb": r"ready for connections",
}


def fenced_pattern(node):
    """The survivor's journal line saying `node` was fenced successfully, in the shapes pacemaker
    2.0/2.1 log it: the executing fencer's `Operation 'reboot' [pid] targeting N using fence_sbd
    returned 0` (2.0: `... for host 'N' with device 'fence_sbd' returned: 0 (OK)`), the result
    broadcast `Operation 'reboot' targeting N by M for ...: OK` (older: `Operation reboot of N by M
    ...: OK`) and the controller's `Peer N was terminated (reboot) by M ...: OK`."""
    n = re.escape(node)
    op = r"Operation '?(?:reboot|off)'?"
    return (r"(%s (?:\[\d+\] )?targeting %s using \S+ returned:? 0\b"
            r"|%s \[\d+\] .*for host '%s' with device '[^']+' returned:? 0\b"
            r"|%s (?:targeting|of) %s by \S+ .*: OK"
            r"|Peer %s was terminated \((?:reboot|off)\) by \S+ .*: OK)" % (op, n, op, n, op, n, n))


def resource_ids(cluster):
    """agent short name -> resource ids, from crm_mon XML ("ocf:heartbeat:mysql" -> "mysql")."""
    ids = {}
    for r in (cluster or {}).get("resources", []):
        agent = (r.get("agent") or "").split(":")[-1]
        ids.setdefault(agent, set()).add(r["id"].split(":")[0])
    return ids


def journal_marks(entries, ids, guest_kill, killed=None):
    """Guest times of the survivor's journal marks after the kill (pure: stack.journal entries in,
    {mark: guest epoch seconds} out)."""
    marks = {}
    t = stack.first(entries, FALLBACK["detected"], guest_kill)
    if t:
        marks["detected"] = t
    if killed:
        t = stack.first(entries, fence_requested_pattern(killed), guest_kill)
        if t:
            marks["fence_requested"] = t
        t = stack.first(entries, fenced_pattern(killed), guest_kill)
        if t:
            marks["fenced"] = t
    for agent, op, mark in AGENT_MARKS:
        found = None
        for rid in ids.get(agent, ()):
            found = stack.first(entries, r"Result of %s operation for %s[: ].*\bok\b" % (op, rid), guest_kill)
            if found:
                break
        if found is None and mark in FALLBACK:
            found = stack.first(entries, FALLBACK[mark], guest_kill)
        if found:
            marks[mark] = found
    return marks


ORDER = ["detected", "fence_requested", "arm_power_off", "fenced", "promoted", "filesystem", "mariadb",
         "probe_listener", "ilb_up", "first_write"]


def chronological(rel):
    """The marks found, in the order they happened (ORDER breaks ties)."""
    return sorted((m for m in ORDER if m in rel), key=lambda m: (rel[m], ORDER.index(m)))


def stages_of(rel):
    """{"kill->detected": s, "detected->fenced": s, ...} between consecutive marks found."""
    stages, prev, prev_name = {}, 0.0, "kill"
    for name in chronological(rel):
        stages["%s->%s" % (prev_name, name)] = round(rel[name] - prev, 1)
        prev, prev_name = rel[name], name
    return stages


def fence_requested_pattern(node):
    """The survivor asking for `node` to be fenced: the controller's `Requesting fencing (reboot)
    targeting node N` (2.0: `of node N`) or the fencer's `Requesting peer fencing (reboot) targeting
    N` / `Client … wants to fence (reboot) 'N'`."""
    n = re.escape(node)
    return (r"(Requesting fencing \((?:reboot|off)\) (?:of|targeting) node %s\b"
            r"|Requesting peer fencing \((?:reboot|off)\) targeting %s\b"
            r"|wants to fence \((?:reboot|off)\) '?%s\b)" % (n, n, n))


def op_started_pattern(rid, op):
    """The controller starting an operation: `Initiating promote operation drbd_wp_promote_0 locally
    on db-b` (a clone instance may carry `:1`)."""
    return r"Initiating %s operation %s(?::\d+)?_%s_0\b" % (op, re.escape(rid), op)


def op_times(entries, ids, after):
    """{mark: {"started": t, "done": t}} (guest times) of the operations behind the agent marks."""
    out = {}
    for agent, op, mark in AGENT_MARKS:
        for rid in sorted(ids.get(agent, ())):
            started = stack.first(entries, op_started_pattern(rid, op), after)
            done = stack.first(entries, r"Result of %s operation for %s[: ].*\bok\b" % (op, rid), after)
            if started or done:
                out[mark] = {"started": started, "done": done}
                break
    return out


def parse_timing(text):
    """{"token_ms", "consensus_ms", "priority_fencing_delay"} from the lines `corosync-cmapctl -g
    runtime.config.totem.token` and `…consensus` print and `crm_attribute … -q` (the delay, as
    configured: `5s`); what is missing stays out."""
    out = {}
    for line in (text or "").splitlines():
        m = re.match(r"runtime\.config\.totem\.(token|consensus) \(u32\) = (\d+)$", line.strip())
        if m:
            out[m.group(1) + "_ms"] = int(m.group(2))
        elif re.match(r"^\d+(ms|s|min)?$", line.strip()):
            out["priority_fencing_delay"] = line.strip()
    return out


TIMING_QUERY = ("corosync-cmapctl -g runtime.config.totem.token; corosync-cmapctl -g runtime.config.totem.consensus; "
                "crm_attribute --type crm_config --name priority-fencing-delay --query --quiet 2>/dev/null; true")


def breakdown(lab, survivor, t_kill, t_write, token_ms, killed=None):
    """Dict of marks (seconds after the kill), the stage durations between them, each operation's
    start and result, the fence round trip and the timing the cluster ran with; `killed` is the
    name of the node that was killed (for the fencing marks)."""
    offset = survivor.clock_offset()
    entries = stack.journal(survivor, t_kill + offset - 5)
    ids = resource_ids(stack.cluster(survivor))
    marks = {k: t - offset for k, t in journal_marks(entries, ids, t_kill + offset, killed).items()}
    ops = {m: {k: (None if t is None else round(t - offset - t_kill, 1)) for k, t in v.items()}
           for m, v in op_times(entries, ids, t_kill + offset).items()}
    if lab.arm is not None and killed:
        offs = [t for t, _, vm, _ in lab.arm.power_offs() if vm == killed and t >= t_kill]
        if offs:
            marks["arm_power_off"] = offs[0]
    for e in lab.lb_events("ilb", t_kill):
        if e.get("event") == "up" and e.get("backend") == survivor.spec.ip:
            marks["ilb_up"] = e["t"]
            break
    for e in lab.lb_events("ilb3306", t_kill):
        if e.get("event") == "up" and e.get("backend") == survivor.spec.ip:
            marks["ilb3306_up"] = e["t"]
            break
    marks["first_write"] = t_write
    rel = {k: round(v - t_kill, 1) for k, v in sorted(marks.items(), key=lambda kv: kv[1])}
    timing = parse_timing(survivor.try_ssh(TIMING_QUERY, timeout=60))
    result = {"marks_s": rel, "stages_s": stages_of(rel), "total_s": rel["first_write"],
              "clock_offset_s": round(offset, 2), "operations_s": ops, "cluster_timing": timing,
              "token_ms": timing.get("token_ms", token_ms)}
    fencing = fence_round_trip(rel, timing.get("priority_fencing_delay"))
    if fencing:
        result["fencing"] = fencing
    if "ilb3306_up" in rel and "ilb_up" in rel:
        result["howto_3306_probe_up_s"] = rel["ilb3306_up"]
    return result


def delay_seconds(spec):
    """priority-fencing-delay as configured (`15s`, `15`, `5000ms`, `1min`) in seconds, or None."""
    m = re.match(r"^(\d+)(ms|s|min)?$", (spec or "").strip())
    if not m:
        return None
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "min": 60}[m.group(2)]


def fence_round_trip(rel, delay_spec):
    """How long fencing took once asked for, and of that what the fence agent took after the
    priority delay (its IMDS token, ARM calls and the wait for the VM to be off): the time the
    primary needs to fence its peer in a real split, which the delay must exceed."""
    if "fence_requested" not in rel or "fenced" not in rel:
        return None
    out = {"requested_to_fenced_s": round(rel["fenced"] - rel["fence_requested"], 1)}
    delay = delay_seconds(delay_spec)
    if delay is not None:
        out["priority_fencing_delay_s"] = delay
        out["agent_round_trip_s"] = round(rel["fenced"] - rel["fence_requested"] - delay, 1)
    if "arm_power_off" in rel:
        out["requested_to_arm_power_off_s"] = round(rel["arm_power_off"] - rel["fence_requested"], 1)
    return out
