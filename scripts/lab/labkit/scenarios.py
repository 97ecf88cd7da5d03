"""Scenario dispatch: each scenario returns {name, status: pass|fail|skip, seconds, ...}."""

import time
import traceback

from . import common


def run(name, lab, result):
    from . import drill, repair, splitbrain  # noqa: F401 (imported lazily: each is self-contained)
    fn = {"drill": lambda out: drill.run(lab.backend, out, result),
          "repair": lambda out: repair.run_repair(lab, out, result),
          "crash": lambda out: repair.run_crash(lab, out, result),
          "splitbrain": lambda out: splitbrain.run(lab, out, result)}[name]
    return execute(name, fn, lab.log)


def execute(name, fn, log):
    """Run fn(out) as scenario `name`: its outcome (pass unless it failed or raised), error and seconds.
    The lab and the Azure drill (scripts/azure/drill.py) record scenarios through this."""
    log("=== scenario %s" % name)
    t0 = time.time()
    out = {"name": name, "status": "fail", "steps": [], "notes": []}
    try:
        fn(out)
        if out["status"] != "skip":
            out["status"] = "pass" if not out.get("failed") else "fail"
    except common.LabError as e:
        out["error"] = str(e)
        log("scenario %s FAILED: %s" % (name, e))
    except Exception as e:  # a bug in the drill itself: keep going with the report
        out["error"] = "%s: %s" % (type(e).__name__, e)
        log.detail(traceback.format_exc())
        log("scenario %s FAILED (drill error): %s" % (name, out["error"]))
    out["seconds"] = round(time.time() - t0, 1)
    log("=== scenario %s: %s (%.0f s)" % (name, out["status"].upper(), out["seconds"]))
    return out
