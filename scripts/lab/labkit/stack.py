"""What the lab reads from inside the VMs: hainit's run, DRBD, the cluster, logs with times."""

import json
import re
import xml.etree.ElementTree as ET

from . import dbpair

DRBD_LINE = re.compile(r"^\s*(\d+): cs:(\S+) ro:(\S+)/(\S+) ds:(\S+)/(\S+)")


def hainit_state(vm):
    """('running'|'ok'|'failed'|'unknown', exit status) of hainit.service."""
    out = vm.try_ssh("systemctl show hainit -p ActiveState -p Result -p ExecMainStatus", timeout=30)
    if out is None:
        return "unknown", None
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    state, result = props.get("ActiveState"), props.get("Result")
    code = int(props.get("ExecMainStatus", "0") or 0)
    if state == "active" and result == "success":
        return "ok", code
    if state in ("failed",) or result not in (None, "success"):
        return "failed", code
    return "running", code


def drbd(vm):
    """/proc/drbd of minor 0 as a dict (cs, role, peer_role, disk, peer_disk, oos), None if down."""
    out = vm.try_ssh("cat /proc/drbd 2>/dev/null", timeout=20)
    if not out:
        return None
    for i, line in enumerate(out.splitlines()):
        m = DRBD_LINE.match(line)
        if m:
            state = dict(zip(("minor", "cs", "role", "peer_role", "disk", "peer_disk"), m.groups()))
            oos = re.search(r"oos:(\d+)", out)
            state["oos_kib"] = int(oos.group(1)) if oos else None
            sync = re.search(r"sync'ed:\s*([\d.]+)%", out)
            state["synced_pct"] = float(sync.group(1)) if sync else None
            return state
    return None


def cluster(vm):
    """crm_mon XML summary: online nodes, resources (id, agent, role, node), failures."""
    out = vm.try_ssh("crm_mon --output-as=xml 2>/dev/null", timeout=40)
    if not out:
        return None
    try:
        root = ET.fromstring(out)
    except ET.ParseError:
        return None
    # <nodes><node name= online=>; resources also hold <node name=> children (where they run).
    nodes = {n.get("name"): n.get("online") == "true" for section in root.iter("nodes") for n in section
             if n.get("name")}
    resources = []
    for r in root.iter("resource"):
        where = [n.get("name") for n in r.iter("node")]
        resources.append({"id": r.get("id"), "agent": r.get("resource_agent"), "role": r.get("role"),
                          "active": r.get("active") == "true", "failed": r.get("failed") == "true",
                          "nodes": where})
    failures = [dict(f.attrib) for f in root.iter("failure")]
    return {"nodes": nodes, "resources": resources, "failures": failures}


def pair_states(dbs, with_cluster=True):
    """{name: dbpair state or None} of the lab's db VMs: DRBD from /proc/drbd, and (when both have
    DRBD up) the cluster's view of its nodes from the first one."""
    states = {}
    for vm in dbs:
        st = drbd(vm) if vm.running() else None
        states[vm.name] = dict(st, running=True) if st else None
    if with_cluster and all(states.values()):
        c = cluster(dbs[0])
        states[dbs[0].name]["nodes"] = c["nodes"] if c else {}
    return states


def primary(dbs):
    """The db VM whose DRBD is Primary, or None."""
    name = dbpair.primary(pair_states(dbs, with_cluster=False))
    return next((vm for vm in dbs if vm.name == name), None)


def pair_status(dbs):
    """One line per db VM: DRBD state (for logs and the report)."""
    return dbpair.status(pair_states(dbs, with_cluster=False))


def pair_healthy(dbs):
    """dbpair.healthy: both running, Connected, UpToDate/UpToDate, one Primary, both cluster nodes online."""
    return dbpair.healthy(pair_states(dbs))


def journal(vm, since_guest_epoch, units=None, grep=None):
    """Journal entries after a guest time: list of (guest epoch seconds, identifier, message)."""
    cmd = "journalctl -o json --no-pager --since=@%d" % int(since_guest_epoch)
    for u in units or []:
        cmd += " -u " + u
    if grep:
        cmd += " --grep='%s'" % grep.replace("'", "")
    out = vm.try_ssh(cmd, timeout=90)
    entries = []
    for line in (out or "").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        msg = e.get("MESSAGE")
        if isinstance(msg, list):  # journald gives non-UTF-8 messages as byte arrays
            msg = bytes(msg).decode(errors="replace")
        entries.append((int(e["__REALTIME_TIMESTAMP"]) / 1e6, e.get("SYSLOG_IDENTIFIER", ""), msg or ""))
    return entries


def first(entries, pattern, after=0.0):
    """Time of the first entry matching pattern at or after `after` (guest clock), or None."""
    rx = re.compile(pattern)
    for t, ident, msg in entries:
        if t >= after and rx.search(ident + ": " + msg):
            return t
    return None


def collect_diagnostics(vm, path):
    """Best effort: what an engineer would look at first, saved to `path`."""
    cmds = ["systemctl --failed --no-pager", "journalctl -u hainit --no-pager | tail -n 200",
            "cat /proc/drbd", "crm_mon -1 --include=all 2>&1 | head -n 80", "ip -br addr",
            "journalctl -b --no-pager -p warning | tail -n 100"]
    with open(path, "w") as f:
        for c in cmds:
            out = vm.try_ssh(c, timeout=60)
            f.write("### %s\n%s\n" % (c, out if out is not None else "(unreachable or failed)"))
    return path
