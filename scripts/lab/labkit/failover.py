"""The failover breakdown: where the seconds between a kill and the first write through the VIP go.

Times come from the survivor's journal (put on the host's clock with a measured offset) and from
the load balancers' event logs (host clock). Marks, in order: failure detection (corosync forms
the new membership / pacemaker sees the node lost), DRBD promotion, filesystem mounted, MariaDB
started, probe listener (azure-lb) started, ILB marks the survivor up, first write through the VIP.
"""

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


def resource_ids(cluster):
    """agent short name -> resource ids, from crm_mon XML ("ocf:heartbeat:mysql" -> "mysql")."""
    ids = {}
    for r in (cluster or {}).get("resources", []):
        agent = (r.get("agent") or "").split(":")[-1]
        ids.setdefault(agent, set()).add(r["id"].split(":")[0])
    return ids


def breakdown(lab, survivor, t_kill, t_write, token_ms):
    """Dict of marks (seconds after the kill) and the stage durations between them."""
    offset = survivor.clock_offset()
    entries = stack.journal(survivor, t_kill + offset - 5)
    ids = resource_ids(stack.cluster(survivor))
    guest_kill = t_kill + offset
    marks = {}
    t = stack.first(entries, FALLBACK["detected"], guest_kill)
    if t:
        marks["detected"] = t - offset
    for agent, op, mark in AGENT_MARKS:
        found = None
        for rid in ids.get(agent, ()):
            found = stack.first(entries, r"Result of %s operation for %s[: ].*\bok\b" % (op, rid), guest_kill)
            if found:
                break
        if found is None and mark in FALLBACK:
            found = stack.first(entries, FALLBACK[mark], guest_kill)
        if found:
            marks[mark] = found - offset
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
    order = ["detected", "promoted", "filesystem", "mariadb", "probe_listener", "ilb_up", "first_write"]
    stages, prev, prev_name = {}, 0.0, "kill"
    for name in order:
        if name in rel:
            stages["%s->%s" % (prev_name, name)] = round(rel[name] - prev, 1)
            prev, prev_name = rel[name], name
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

