"""`lab.py clean`: stop what a run left behind when its orchestrator could not (killed with -9, host
crash). Only processes recorded in that run's pids.json, checked against their command line, and
that run's own network namespace."""

import json
import os
import signal
import subprocess

from . import common


def clean(run_ids, force):
    if not os.path.isdir(common.RUNS):
        return 0
    for run_id in sorted(run_ids or os.listdir(common.RUNS)):
        run_dir = os.path.join(common.RUNS, run_id)
        try:
            with open(os.path.join(run_dir, "lab.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if common.pid_alive(meta["pid"], "lab.py") and not force:
            if run_ids:
                print("lab clean: %s is still running (pid %d); --force to stop it" % (run_id, meta["pid"]))
            continue
        stopped = []
        try:
            with open(os.path.join(run_dir, "pids.json")) as f:
                tracked = json.load(f)
        except (OSError, ValueError):
            tracked = []
        for entry in tracked:
            # qemu's command line holds the run directory; IMDS and LB processes the namespace name.
            if common.pid_alive(entry["pid"], run_dir) or common.pid_alive(entry["pid"], meta["netns"]):
                os.kill(entry["pid"], signal.SIGKILL)
                stopped.append("%s (pid %d)" % (entry["what"], entry["pid"]))
        ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        if meta["netns"] in ns:
            subprocess.run(["ip", "netns", "del", meta["netns"]], check=False)
            stopped.append("namespace " + meta["netns"])
        if stopped:
            print("lab clean: %s: stopped %s" % (run_id, ", ".join(stopped)))
    return 0
