"""Scenario `splitbrain` (issue 5, item 6): cut the db-a <-> db-b link while the primary serves
writes through the VIP, then heal it.

The cut is bridge-port isolation of the two db taps: each node still reaches the load balancers,
the web subnet and its IMDS, only the peer is gone (corosync, DRBD and pcsd all lose it at once).
A writer inserts through the VIP every 0.5 s for the whole episode and records which node served
each acknowledged write and when the answer came.

With STONITH (LAB_STONITH=arm, the default: fence_azure_arm through the emulated ARM; or sbd, the
shared disk) the nodes race to fence each other; priority-fencing-delay lets the one running the
promoted DRBD win, DRBD's resource-and-stonith freezes the primary's I/O until the peer is fenced,
and the loser is powered off (ARM's powerOff, or its sbd resets it: either way its qemu exits).
After the heal the fenced VM is started again and the pair must become healthy. Pass:
no two primaries served writes, no acknowledged write is missing, the pair is healthy at the end.
Without STONITH (`off`) the old verdict: two primaries serving writes, or acknowledged writes
missing without DRBD reporting a split brain (a detected one waits for an operator: loud, not
silent). What DRBD, the cluster, the ILB and hainit status show on each side is sampled.
"""

import json
import os
import subprocess
import time

from . import common, net, stack
from .lab import CLIENT_SCRIPT
from .drill import Steps
from .steps import db_roles, fenced_vms, start_fenced, wait_pair_healthy

# After the heal: a fenced VM boots (3-5 min under emulation), rejoins and resyncs.
HEAL_TIMEOUT_FENCED = 1500
HEAL_TIMEOUT_OFF = 240
# With STONITH the cut ends in a fence: once a db VM's qemu has exited (it stays off until the lab
# starts it again) and the survivor has acknowledged this many writes since, nothing more can
# happen before the heal.
SETTLED_WRITES = 10


def sample(lab, dbs, t0):
    """One row of what each side shows. DRBD of both first (close in time), then the cluster; a VM
    that is not running before or after its reads is "down", so a node fenced mid-row is not
    counted as a primary beside the one promoted after it."""
    row = {"t_s": round(time.time() - t0, 1)}
    up_before = {vm.name: vm.running() for vm in dbs}
    drbd = {vm.name: stack.drbd(vm) if up_before[vm.name] else None for vm in dbs}
    clusters = {vm.name: stack.cluster(vm) if up_before[vm.name] else None for vm in dbs}
    for vm in dbs:
        st, c = drbd[vm.name], clusters[vm.name]
        up = up_before[vm.name] and vm.running()
        row[vm.name] = {
            "drbd": "%s %s/%s %s/%s" % (st["cs"], st["role"], st["peer_role"], st["disk"], st["peer_disk"])
            if st and up else ("down (fenced)" if vm.fenced() else "down"),
            "sees_online": sorted(n for n, on in (c or {}).get("nodes", {}).items() if on),
            "runs": sorted({r["id"] for r in (c or {}).get("resources", [])
                            if r["active"] and vm.name in r["nodes"]}),
        }
    row["span_s"] = round(time.time() - t0 - row["t_s"], 1)
    rot = [e for e in lab.lb_events("ilb") if e.get("event") == "rotation"]
    row["ilb_rotation"] = rot[-1]["healthy"] if rot else []
    return row


def fence_settled(exits, writes, n=SETTLED_WRITES):
    """True when a db VM was fenced (`exits`: host times its qemu exited) and at least n writes
    were acknowledged after the first exit."""
    if not exits:
        return False
    first = min(exits)
    return sum(1 for w in writes if w.get("ok") and w.get("t_ack", w["t"]) > first) >= n


def two_primaries(timeline, names):
    """Any sample where every named node was up and DRBD Primary."""
    return any(all(" Primary/" in row.get(n, {}).get("drbd", "") for n in names) for row in timeline)


def concurrent_servers(acked):
    """Nodes whose spans of served writes (first to last acknowledged) overlap: two primaries
    serving at once. One node fenced and the other taking over after it is not concurrent."""
    spans = {}
    for w in acked:
        t = w.get("t_ack", w["t"])
        lo, hi = spans.get(w["served_by"], (t, t))
        spans[w["served_by"]] = (min(lo, t), max(hi, t))
    names = sorted(spans)
    return sorted({n for a in names for b in names if a != b and spans[a][0] <= spans[b][1]
                   and spans[b][0] <= spans[a][1] for n in (a, b)})


def longest_gap(writes, since):
    """The longest wait between acknowledged writes from the last one before `since` on (the
    primary's I/O freeze): {seconds, from_s, to_s} relative to `since`, or None."""
    acks = sorted(w.get("t_ack", w["t"]) for w in writes if w.get("ok"))
    before = [t for t in acks if t < since]
    acks = before[-1:] + [t for t in acks if t >= since]
    if len(acks) < 2:
        return None
    a, b = max(zip(acks, acks[1:]), key=lambda p: p[1] - p[0])
    return {"seconds": round(b - a, 1), "from_s": round(a - since, 1), "to_s": round(b - since, 1)}


def fencing_record(lab, dbs, t_cut, offsets, fenced):
    """Who was fenced and when (host clock of the qemu exit), and what the survivors' fencers say."""
    survivors = [vm for vm in dbs if vm.name not in {f["vm"] for f in fenced} and vm.running()]
    rec = {"fenced": fenced, "history": {}, "fencer_log": {}}
    if lab.arm is not None:
        # Who asked ARM to power whom off (the lab's record of the requests it served).
        rec["arm_power_offs"] = [{"after_cut_s": round(t - t_cut, 1), "by": caller, "vm": vm, "was_running": on}
                                 for t, caller, vm, on in lab.arm.power_offs() if t >= t_cut]
    for vm in survivors:
        rec["history"][vm.name] = (vm.try_ssh("stonith_admin --history '*' 2>&1", timeout=90) or "").strip()
        rec["fencer_log"][vm.name] = (vm.try_ssh(
            "journalctl --no-pager -o short-iso --since=@%d -t pacemaker-fenced --grep=targeting | tail -n 20"
            % int(t_cut + offsets.get(vm.name, 0.0)), timeout=90) or "").splitlines()
    return rec


def run(lab, out, result):
    step = Steps(lab, out)
    dbs = [lab.vms["db-a"], lab.vms["db-b"]]
    fencing = lab.settings.stonith != "off"
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
    fenced = []

    def restart_fenced():
        for vm in fenced_vms(lab):
            entry = step("start the fenced %s" % vm.name, start_fenced, lab, vm)
            entry["qemu_exit_after_cut_s"] = round(entry["qemu_exit"] - t_cut, 1) if entry["qemu_exit"] else None
            fenced.append(entry)

    try:
        common.wait_until(lambda: len(read_writes(wlog)) >= 5, 120, "writes through the VIP", interval=1)
        t_cut = time.time()
        step("cut the db-a <-> db-b link", lab.net.isolate, [vm.name for vm in dbs], True)
        offsets = {vm.name: vm.clock_offset() for vm in dbs}
        observe = max(90.0, 8 * token_s + 40)
        if fencing:
            # Fencing needs detection + priority-fencing-delay (+ msgwait with sbd); watch it end.
            observe = max(observe, 2.2 * token_s + lab.settings.fence_wait_s() + 60)
        while time.time() - t_cut < observe:
            timeline.append(dict(sample(lab, dbs, t_cut), phase="cut"))
            exits = [vm.exited_at for vm in dbs if vm.exited_at and vm.fenced()]
            if fencing and fence_settled(exits, read_writes(wlog)):
                lab.log("splitbrain: fenced, and %d writes acknowledged since: healing %.0f s after the cut"
                        % (SETTLED_WRITES, time.time() - t_cut))
                break
            time.sleep(5)
        out["hainit_status_during_cut"] = {vm.name: status(vm) for vm in dbs}
        t_heal = time.time()
        step("heal the link", lab.net.isolate, [vm.name for vm in dbs], False)
        deadline = time.time() + (HEAL_TIMEOUT_FENCED if fencing else HEAL_TIMEOUT_OFF)
        while time.time() < deadline:
            if fencing:
                restart_fenced()
            timeline.append(dict(sample(lab, dbs, t_cut), phase="healed"))
            if stack.pair_healthy(dbs) and time.time() - t_heal > 30:
                break
            # Light polling once the first minutes are recorded: each sample is several ssh calls.
            time.sleep(5 if time.time() - t_heal < 240 else 20)
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
                     "failed_attempts": len([w for w in writes if not w.get("ok") and w["t"] >= t_cut]),
                     "longest_gap": longest_gap(writes, t_cut)}
    if fencing:
        out["fencing"] = fencing_record(lab, dbs, t_cut, offsets, fenced)
    out["hainit_status_after_heal"] = {vm.name: status(vm) for vm in dbs}
    out["drbd_kernel_log"] = {vm.name: drbd_log(vm, t_cut + offsets[vm.name]) for vm in dbs}
    sb_detected = any("Split-Brain detected" in line for lines in out["drbd_kernel_log"].values() for line in lines)
    both_primary = two_primaries(timeline, [vm.name for vm in dbs])
    # Without fencing both nodes stay up: any two servers are two primaries. With it, a node
    # serving after the other was fenced is a failover, not a split brain.
    serving = concurrent_servers(during) if fencing else (served if len(served) > 1 else [])
    lost = missing_writes(lab, acked)
    healthy = stack.pair_healthy(dbs)
    out["verdict"] = {
        "initial_primary": primary.name,
        "stonith": lab.settings.stonith,
        "fenced": [f["vm"] for f in fenced],
        "two_primaries_seen": both_primary,
        "two_primaries_serving_writes": bool(serving),
        "split_brain_detected_by_drbd": sb_detected,
        "acked_writes_missing_after_heal": lost,
        "longest_write_gap_s": (out["writes"]["longest_gap"] or {}).get("seconds"),
        "pair_healthy_after_heal": healthy,
        "final": stack.pair_status(dbs),
    }
    lab.log("split brain: served by %s during the cut; fenced %s; both primary: %s; DRBD split-brain: %s; "
            "acked writes missing: %s; longest write gap %s s; after heal: %s"
            % (served, out["verdict"]["fenced"] or "none", both_primary, sb_detected, lost,
               out["verdict"]["longest_write_gap_s"], out["verdict"]["final"]))
    out.setdefault("failed", []).extend(failures(out["verdict"], serving))


def failures(verdict, serving):
    """Why the scenario fails (empty: it passes); the STONITH lab is held to the strict verdict."""
    found = []
    if serving:
        found.append("two primaries served writes during the partition: %s" % serving)
    lost = verdict["acked_writes_missing_after_heal"]
    if verdict["stonith"] != "off":
        if lost:
            found.append("%s acknowledged writes missing after the heal" % lost)
        if not verdict["pair_healthy_after_heal"]:
            found.append("the pair is not healthy after the heal: %s" % verdict["final"])
    elif lost and not verdict["split_brain_detected_by_drbd"]:
        found.append("%s acknowledged writes vanished without a split-brain report" % lost)
    return found


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
    # `status` exits 1 when an item is FAIL (a split brain is one); its report is on stdout anyway.
    r = vm.try_ssh("hainit status --json 2>/dev/null || [ $? -eq 1 ]", timeout=120)
    try:
        return json.loads(r) if r else None
    except ValueError:
        return r.strip()[:500]
