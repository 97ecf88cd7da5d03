"""The failover breakdown: where the seconds between a kill and the first write through the VIP go.

Times come from the survivor's journal (put on the host's clock with a measured offset) and from
the load balancers' event logs (host clock). Marks, in order: failure detection (corosync forms
the new membership / pacemaker sees the node lost), the killed node fenced (with STONITH: the
fencer's result; promotion waits for it), DRBD promotion, filesystem mounted, MariaDB started,
probe listener (azure-lb) started, ILB marks the survivor up, first write through the VIP.
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


ORDER = ["detected", "fenced", "promoted", "filesystem", "mariadb", "probe_listener", "ilb_up", "first_write"]


def stages_of(rel):
    """{"kill->detected": s, "detected->fenced": s, ...} between the marks found, in ORDER."""
    stages, prev, prev_name = {}, 0.0, "kill"
    for name in ORDER:
        if name in rel:
            stages["%s->%s" % (prev_name, name)] = round(rel[name] - prev, 1)
            prev, prev_name = rel[name], name
    return stages


def breakdown(lab, survivor, t_kill, t_write, token_ms, killed=None):
    """Dict of marks (seconds after the kill) and the stage durations between them; `killed` is the
    name of the node that was killed (for the fencing mark)."""
    offset = survivor.clock_offset()
    entries = stack.journal(survivor, t_kill + offset - 5)
    ids = resource_ids(stack.cluster(survivor))
    marks = {k: t - offset for k, t in journal_marks(entries, ids, t_kill + offset, killed).items()}
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
    stages = stages_of(rel)
    total = rel["first_write"]
    detection = rel.get("detected")
    result = {"marks_s": rel, "stages_s": stages, "total_s": total, "clock_offset_s": round(offset, 2),
              "token_ms": token_ms}
    if detection is not None:
        # Detection is token expiry + consensus (1.2 x token, corosync.conf(5)); everything after it
        # does not depend on the token. Azure's recommendation: token 30000 ms (consensus 36000).
        azure_detection = detection + 2.2 * (30.0 - token_ms / 1000.0)
        result["azure_token_30000"] = {"detection_s": round(azure_detection, 1),
                                       "total_s": round(total - detection + azure_detection, 1),
                                       "formula": "detection + 2.2 x (30 s - lab token)"}
    if "ilb3306_up" in rel and "ilb_up" in rel:
        result["howto_3306_probe_up_s"] = rel["ilb3306_up"]
    return result

