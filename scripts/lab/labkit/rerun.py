"""The operator's repair path on a healthy stack: `hainit --role db|web` once more on every VM right
after bring-up (design.md: a second run on a converged node changes nothing). Per VM: the wall time
on the guest's clock (ssh not counted), the actions the run took and the steps that changed, read
from hainit's own log lines."""

import os
import re

from . import common, steptimes

# The goal: nothing to do, and quickly, under emulation.
TARGET_S = 5.0
MARK = re.compile(r"^hainit-rerun exit=(\d+) start=([\d.]+) end=([\d.]+)$", re.M)
ACTIONS = re.compile(r"\bactions=(\d+)")
# cli.rs's last line of a run that converged: "INFO converged steps=32 changed=0".
SUMMARY = re.compile(r"\bINFO converged steps=(\d+) changed=(\d+)")
ERROR = re.compile(r"\bERROR (.*)$")


def command(role):
    """hainit as the operator runs it, between two readings of the guest's clock; its log on stdout."""
    return ('t0=$(date +%%s.%%N); hainit --role %s 2>&1; rc=$?; t1=$(date +%%s.%%N); '
            'echo "hainit-rerun exit=$rc start=$t0 end=$t1"' % role)


def parse(output):
    """{exit, seconds, steps, actions, changed_steps, slowest_steps_s[, error]} of one re-run from its
    output. A log whose step lines cannot be read (a format change) is an error, never "0 actions"."""
    mark = MARK.search(output)
    if mark is None:
        raise common.LabError("the re-run's output has no end mark (did ssh drop?): %s"
                              % " | ".join(output.strip().splitlines()[-3:]))
    code, start, end = int(mark.group(1)), float(mark.group(2)), float(mark.group(3))
    steps, actions, changed = 0, 0, []
    for line in output.splitlines():
        m = steptimes.END.search(line)
        if not m:
            continue
        steps += 1
        if m.group(2) == "changed":
            n = ACTIONS.search(line, m.end())
            if n is None:
                raise common.LabError("a changed step without its action count: %s" % line.strip())
            changed.append(m.group(1))
            actions += int(n.group(1))
    entry = {"exit": code, "seconds": round(end - start, 2), "steps": steps, "actions": actions,
             "changed_steps": changed,
             # Where the time went: each step from the end of the one before (bring-up's breakdown).
             "slowest_steps_s": dict(steptimes.slowest(steptimes.durations(output), 3))}
    if code == 0:
        summary = SUMMARY.search(output)
        if summary is None or (int(summary.group(1)), int(summary.group(2))) != (steps, len(changed)):
            raise common.LabError("hainit's step lines (%d steps, %d changed) disagree with its summary (%s)"
                                  % (steps, len(changed), summary.group(0) if summary else "none"))
    else:
        errors = [m.group(1).strip() for m in map(ERROR.search, output.splitlines()) if m]
        entry["error"] = errors[-1] if errors else "exit %d without an ERROR line" % code
    return entry


def met(entry):
    return entry.get("exit") == 0 and entry.get("actions") == 0 and entry.get("seconds", TARGET_S + 1) <= TARGET_S


def summary(entry):
    if "seconds" not in entry:
        return "no figure: %s" % entry.get("error")
    s = "%.1f s, %d action(s), exit %d" % (entry["seconds"], entry["actions"], entry["exit"])
    if entry["changed_steps"]:
        s += ", changed: " + ", ".join(entry["changed_steps"])
    return s + ("; " + entry["error"] if entry.get("error") else "")


def run(lab, result, timeout=1200):
    """Every VM in turn (one at a time: the figure is one node's, not four sharing the host's cores);
    the output beside the VM as hainit-rerun.log; result["rerun"][vm] = parse(...) or {error}."""
    out = {}
    result["rerun"] = out
    for vm in lab.vms.values():
        out[vm.name] = one(vm, timeout) if vm.running() else {"error": "not running after bring-up"}
        lab.log("%s: re-run of hainit --role %s on the converged node: %s"
                % (vm.name, vm.spec.role, summary(out[vm.name])))
    return out


def one(vm, timeout):
    try:
        r = vm.ssh(command(vm.spec.role), check=False, timeout=timeout)
        with open(os.path.join(vm.dir, "hainit-rerun.log"), "w") as f:
            f.write(r.stdout + r.stderr)
        return parse(r.stdout)
    except common.LabError as e:
        return {"error": str(e)}
