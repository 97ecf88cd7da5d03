#!/usr/bin/env python3
"""report.json and report.md for scripts/failover-drill.sh, in the lab's report format.

Reads what the drill recorded in OUT (meta.tsv, steps.tsv, posts.tsv, timings.tsv, notes.txt,
failed.txt) and writes OUT/report.json and OUT/report.md. The JSON follows the lab's
(scripts/lab/labkit/report.py): run_id, started, seconds, ok, error, settings, scenarios[] with
name/status/seconds/timings/notes/failed/posts/steps, and figures with the headline numbers under
the lab's names (failover_kill_to_post_s, resync_after_restart_s, ...).

    drill-report.py OUT
"""

import json
import os
import sys


def rows(path, names):
    try:
        with open(path) as f:
            return [dict(zip(names, line.rstrip("\n").split("\t"))) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def lines(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        return []


def number(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() and "." not in str(v) else round(f, 1)


def build(out):
    meta = {r["k"]: r.get("v", "") for r in rows(os.path.join(out, "meta.tsv"), ["k", "v"])}
    steps = [{"step": r["step"], "seconds": number(r["seconds"]), "ok": r["ok"] == "1"}
             for r in rows(os.path.join(out, "steps.tsv"), ["step", "seconds", "ok"])]
    posts = [{"n": int(r["n"]), "id": int(r["id"]), "title": r["title"], "t": round(float(r["t"]), 3),
              "attempts": int(r["attempts"]), "seconds": number(r["seconds"])}
             for r in rows(os.path.join(out, "posts.tsv"), ["n", "id", "title", "t", "attempts", "seconds"])]
    timings = {r["k"]: number(r["v"]) for r in rows(os.path.join(out, "timings.tsv"), ["k", "v"])}
    failed = lines(os.path.join(out, "failed.txt"))
    ok = meta.get("ok") == "1" and not failed
    seconds = number(meta.get("seconds"))
    scenario = {"name": "drill", "status": "pass" if ok else "fail", "seconds": seconds, "timings": timings,
                "notes": lines(os.path.join(out, "notes.txt")), "failed": failed, "posts": posts, "steps": steps}
    if meta.get("error"):
        scenario["error"] = meta["error"]
    settings = {k: meta.get(k) for k in ("resource_group", "url", "db_names", "web_names")}
    settings.update({k: number(meta.get(k)) for k in ("timeout_s", "poll_s", "lb_settle_s")})
    return {
        "kind": "azure-drill",
        "run_id": meta.get("run_id"),
        "started": meta.get("started"),
        "seconds": seconds,
        "ok": ok,
        "error": meta.get("error") or None,
        "run_dir": os.path.abspath(out),
        "settings": settings,
        "scenarios": [scenario],
        "figures": {
            "failover_kill_to_post_s": timings.get("failover_kill_to_post_s"),
            "resync_after_restart_s": timings.get("killed_primary_restart_to_uptodate_s"),
            "standby_restart_to_uptodate_s": timings.get("standby_restart_to_uptodate_s"),
            "posts_written": len(posts),
        },
    }


def fmt(v, unit=" s"):
    return "–" if v is None else "%s%s" % (v, unit)


def markdown(r):
    sc = r["scenarios"][0]
    s = r["settings"]
    out = ["# hainit Azure drill report — run %s" % r["run_id"], ""]
    out.append("**%s** — %s, %s, %s s in all; run directory `%s`." % (
        "PASS" if r["ok"] else "FAIL", r["started"], s["url"], r["seconds"], r["run_dir"]))
    if r.get("error"):
        out += ["", "Stopped early: `%s`" % r["error"]]
    out += ["", "## Scenarios", "", "| scenario | result | seconds |", "|---|---|---|",
            "| %s | %s | %s |" % (sc["name"], sc["status"], sc["seconds"])]
    t = sc["timings"]
    out += ["", "## Timings", "", "| measure | seconds |", "|---|---|"]
    labels = [("standby_stop_to_post_s", "standby deallocated -> post through the public LB"),
              ("standby_restart_to_uptodate_s", "standby started -> DRBD UpToDate/UpToDate"),
              ("failover_stop_api_s", "`az vm stop --skip-shutdown` of the primary (API call)"),
              ("failover_kill_to_post_s", "**primary powered off -> post through the public LB**"),
              ("killed_primary_restart_to_uptodate_s", "killed primary started -> resynced")]
    for key, label in labels:
        out.append("| %s | %s |" % (label, fmt(t.get(key))))
    webs = sorted({k.split("_")[0] for k in t if k.startswith("web")}, key=lambda w: int(w[3:] or 0))
    for web in webs:
        out.append("| %s deallocated -> post | %s |" % (web, fmt(t.get(web + "_stop_to_post_s"))))
        out.append("| %s started -> healthy behind the LB | %s |" % (web, fmt(t.get(web + "_start_to_lb_up_s"))))
    out += ["", "## Scenario %s: %s (%s s)" % (sc["name"], sc["status"].upper(), sc["seconds"]), ""]
    for x in sc["failed"]:
        out.append("- FAILED: %s" % x)
    for n in sc["notes"]:
        out.append("- %s" % n)
    if sc["posts"]:
        out += ["", "| post | id | attempts | seconds to write |", "|---|---|---|---|"]
        for p in sc["posts"]:
            out.append("| %s | %s | %s | %s |" % (p["n"], p["id"], p["attempts"], p["seconds"]))
    out += ["", "| step | seconds | ok |", "|---|---|---|"]
    for st in sc["steps"]:
        out.append("| %s | %s | %s |" % (st["step"], st["seconds"], "yes" if st["ok"] else "**no**"))
    out += ["", "## Settings", "", "```", json.dumps(s, indent=1), "```"]
    return "\n".join(out) + "\n"


def main(argv):
    out = argv[1]
    result = build(out)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
