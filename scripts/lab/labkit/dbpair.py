"""The DB pair's state as the drill judges it, whichever backend read it (pure: no I/O).

A db VM's state is a dict: {"running": bool, "cs": connection state, "role", "peer_role", "disk",
"peer_disk"} (DRBD's words: Connected, Primary/Secondary, UpToDate, ...) and, when the cluster was
asked, "nodes": {node name: online}. None stands for a VM that is off or could not be read.
"""

import re


def drbdadm_state(role, dstate, cstate):
    """The state from `drbdadm role|dstate|cstate RES` (DRBD 8.4 and 9 alike: "Primary/Secondary",
    "UpToDate/UpToDate", "Connected"); None when any is missing."""
    if not (role and dstate and cstate) or "/" not in role or "/" not in dstate:
        return None
    r, pr = role.split("/", 1)
    d, pd = dstate.split("/", 1)
    return {"running": True, "cs": cstate, "role": r, "peer_role": pr, "disk": d, "peer_disk": pd}


def healthy(states):
    """Both running, Connected, UpToDate/UpToDate, exactly one Primary, and every db node online in
    the cluster's view (when a state carries one)."""
    if len(states) != 2 or any(s is None or not s.get("running") for s in states.values()):
        return False
    for s in states.values():
        if s.get("cs") != "Connected" or s.get("disk") != "UpToDate" or s.get("peer_disk") != "UpToDate":
            return False
    if sorted(s.get("role") for s in states.values()) != ["Primary", "Secondary"]:
        return False
    views = [s["nodes"] for s in states.values() if s.get("nodes") is not None]
    return all(view.get(name) for view in views for name in states)


def primary(states):
    """The name of the db VM whose DRBD is Primary, or None."""
    for name, s in states.items():
        if s and s.get("running") and s.get("role") == "Primary":
            return name
    return None


def status(states):
    """One line for logs and the report: each VM's DRBD state, or why there is none."""
    parts = []
    for name, s in states.items():
        if s is None:
            parts.append("%s: off or unreadable" % name)
        else:
            parts.append("%s: %s %s/%s %s/%s" % (name, s.get("cs"), s.get("role"), s.get("peer_role"),
                                                s.get("disk"), s.get("peer_disk")))
    return "; ".join(parts)


NODE_TAG = re.compile(r"<node\b([^>]*)>")


def crm_mon_nodes(xml_lines):
    """{node name: online} from crm_mon's XML (whole, or only its <node ... online="..."> lines, as a
    run command prints them); tags without online= (where a resource runs) are skipped."""
    nodes = {}
    for attrs in NODE_TAG.findall(xml_lines):
        name = re.search(r'\bname="([^"]*)"', attrs)
        online = re.search(r'\bonline="([^"]*)"', attrs)
        if name and online:
            nodes[name.group(1)] = online.group(1) == "true"
    return nodes
