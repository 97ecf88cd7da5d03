"""Scenario dispatch: each scenario returns {name, status: pass|fail|skip, seconds, ...}."""

import time
import traceback

from . import common


def run(name, lab, result):
    from . import drill, repair, splitbrain  # noqa: F401 (imported lazily: each is self-contained)
    fn = {"drill": drill.run, "repair": repair.run_repair, "crash": repair.run_crash,
          "splitbrain": splitbrain.run}[name]
    lab.log("=== scenario %s" % name)
    t0 = time.time()
    out = {"name": name, "status": "fail", "steps": [], "notes": []}
    try:
        fn(lab, out, result)
        if out["status"] != "skip":
            out["status"] = "pass" if not out.get("failed") else "fail"
    except common.LabError as e:
        out["error"] = str(e)
        lab.log("scenario %s FAILED: %s" % (name, e))
    except Exception as e:  # a bug in the lab itself: keep going with the report
        out["error"] = "%s: %s" % (type(e).__name__, e)
        lab.log.detail(traceback.format_exc())
        lab.log("scenario %s FAILED (lab error): %s" % (name, out["error"]))
    out["seconds"] = round(time.time() - t0, 1)
    lab.log("=== scenario %s: %s (%.0f s)" % (name, out["status"].upper(), out["seconds"]))
    return out
