"""`lab.py clean` and `lab.py down`: stop what a run left behind when its orchestrator is gone — a
stack `make lab` kept on purpose, or a run killed with -9 or by a host crash. Only processes recorded
in that run's pids.json, checked against their command line, that run's own network namespace and
its host link (net.expose), all read from RUN/lab.json."""

import json
import os
import signal
import subprocess
import time

from . import common, net


def runs(run_ids=None):
    """(run_id, run_dir, lab.json) of the given runs, or of every run."""
    if not os.path.isdir(common.RUNS):
        return []
    found = []
    for run_id in sorted(run_ids or os.listdir(common.RUNS)):
        run_dir = os.path.join(common.RUNS, run_id)
        try:
            with open(os.path.join(run_dir, "lab.json")) as f:
                found.append((run_id, run_dir, json.load(f)))
        except (OSError, ValueError):
            continue
    return found


def orchestrator_alive(meta):
    return common.pid_alive(meta["pid"], "lab.py")


def tracked(run_dir):
    try:
        with open(os.path.join(run_dir, "pids.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def live_namespaces():
    """Namespaces of runs in progress. A namespace name has 4 hex digits of its run's id, so an old
    run can share it with a live one: what carries that name is then the live run's, not to touch."""
    return {meta["netns"] for _, _, meta in runs() if orchestrator_alive(meta)}


def running(run_dir, meta, live_ns=()):
    """The run's recorded processes still alive: qemu's command line holds the run directory; IMDS,
    LB, NFS and ssh processes the namespace name or the run directory."""
    ns = meta["netns"] if meta["netns"] not in live_ns else None
    return [e for e in tracked(run_dir)
            if common.pid_alive(e["pid"], run_dir) or (ns and common.pid_alive(e["pid"], ns))]


def namespaces():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()


def stop_run(run_dir, meta, live_ns):
    """SIGKILL every recorded process, delete the namespace and the host link; what was stopped."""
    stopped = []
    for entry in running(run_dir, meta, live_ns):
        os.kill(entry["pid"], signal.SIGKILL)
        stopped.append("%s (pid %d)" % (entry["what"], entry["pid"]))
    if meta["netns"] in live_ns:
        return stopped
    if meta["netns"] in namespaces():
        subprocess.run(["ip", "netns", "del", meta["netns"]], check=False)
        stopped.append("namespace " + meta["netns"])
    if meta.get("host_link") and net.remove_host_link(meta["host_link"], meta.get("host_ns")):
        stopped.append("host link %s (route to %s)" % (meta["host_link"], net.PUBLIC_VIP))
    return stopped


def left(run_dir, meta, live_ns):
    """What of a stopped run still exists (processes, namespace, host link)."""
    host = ["ip"] + (["-n", meta["host_ns"]] if meta.get("host_ns") else [])
    still = ["%s (pid %d)" % (e["what"], e["pid"]) for e in running(run_dir, meta, live_ns)]
    if meta["netns"] in live_ns:
        return still
    if meta["netns"] in namespaces():
        still.append("namespace " + meta["netns"])
    if meta.get("host_link") and subprocess.run(host + ["link", "show", meta["host_link"]],
                                                capture_output=True).returncode == 0:
        still.append("host link " + meta["host_link"])
    return still


def clean(run_ids, force):
    live_ns = live_namespaces() if not force else set()
    for run_id, run_dir, meta in runs(run_ids):
        if orchestrator_alive(meta) and not force:
            if run_ids:
                print("lab clean: %s is still running (pid %d); --force to stop it" % (run_id, meta["pid"]))
            continue
        stopped = stop_run(run_dir, meta, live_ns)
        if stopped:
            print("lab clean: %s: stopped %s" % (run_id, ", ".join(stopped)), flush=True)
    return 0


def down(settle_s=20):
    """`make lab-down`: stop every run whose orchestrator is gone (the kept stack among them), then
    check that nothing of them is left; 1 naming what is."""
    if os.geteuid() != 0:
        common.die("lab down needs root (sudo make lab-down)", 2)
    gone = [(run_id, run_dir, meta) for run_id, run_dir, meta in runs() if not orchestrator_alive(meta)]
    live_ns = live_namespaces()
    any_stopped = False
    for run_id, run_dir, meta in gone:
        stopped = stop_run(run_dir, meta, live_ns)
        if stopped:
            any_stopped = True
            print("lab down: %s: stopped %s" % (run_id, ", ".join(stopped)), flush=True)
    deadline = time.time() + settle_s
    while True:
        still = [(run_id, left(run_dir, meta, live_ns)) for run_id, run_dir, meta in gone]
        still = [(run_id, what) for run_id, what in still if what]
        if not still or time.time() > deadline:
            break
        time.sleep(0.5)
    for run_id, what in still:
        print("lab down: %s: still there: %s" % (run_id, ", ".join(what)), flush=True)
    if still:
        return 1
    alive = [run_id for run_id, _, meta in runs() if orchestrator_alive(meta)]
    print("lab down: %s%s" % ("done, nothing of it is left" if any_stopped else "no stack was up",
                              "; a run in progress is not touched: %s" % ", ".join(alive) if alive else ""))
    return 0
