#!/usr/bin/env python3
"""make lab: the whole HA stack in local VMs, the failover drill, and the report.

  scripts/lab/lab.py [run] [--scenarios drill,repair,crash,splitbrain|all] [--keep]
  scripts/lab/lab.py down           stop the kept stack and whatever runs of a dead orchestrator left
  scripts/lab/lab.py clean          stop what runs of a dead orchestrator left behind
  scripts/lab/lab.py admin [RUN]    the kept stack's wp-admin user and password
  scripts/lab/lab.py inputs DIR     write every VM's IMDS document and each tier's config (no VMs)

Needs root, the lab image (make lab-image) and target/release/examples/fake-imds. Every run gets
/var/tmp/hainit-lab/runs/<run-id>/ (LAB_RUNS): logs, the VMs' disks and consoles, report.md and
report.json. Everything the run starts is stopped by its own id when it ends, fails or is
interrupted. --keep: after a run that passed, the stack stays up, reachable from this machine at
http://10.0.3.10/ (labkit/kept.py), until `lab.py down`; a run first stops what earlier runs left.
Exit: 0 every scenario passed; 1 a scenario failed or the stack did not come up; 2 this machine
cannot run the lab (the reason is printed; LAB_ALLOW_SKIP=1 turns that into a loud skip, exit 0).
"""

import argparse
import json
import os
import secrets
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from labkit import boot, clean, common, kept, report, scenarios, steps  # noqa: E402
from labkit.lab import Lab, Settings  # noqa: E402

ALL = report.SCENARIOS


def interrupted(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def out_of_time(_signum, _frame):
    raise KeyboardInterrupt("the run's time budget (LAB_BUDGET_SECS=%s) is used up"
                            % os.environ.get("LAB_BUDGET_SECS"))


def settings_or_exit():
    try:
        return Settings()
    except common.LabError as e:
        common.die(str(e), 2)


def run(args):
    settings = settings_or_exit()
    lab = Lab(settings)
    log = lab.log
    result = {"run_id": lab.run_id, "run_dir": lab.run_dir, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "settings": settings.as_dict(), "scenarios": [], "ok": False}
    problems = boot.preflight(lab)
    if problems:
        msg = "this machine cannot run the lab's VMs:\n  - " + "\n  - ".join(problems)
        if os.environ.get("LAB_ALLOW_SKIP") == "1":
            print("LAB SKIPPED (LAB_ALLOW_SKIP=1): " + msg, flush=True)
            return 0
        print("LAB FAILED: " + msg, flush=True)
        return 2
    # One lab at a time on a machine: a stack an earlier run kept (or left when it died) would hold
    # the host's route to the public address and the cores.
    clean.clean([], force=False)
    try:
        with open(os.path.join(lab.image, "image.json")) as f:
            result["image"] = json.load(f)
    except (OSError, ValueError):
        result["image"] = {}
    # The image this run proves, by the sha256 `make azure-image` wrote beside the VHD.
    result["image_sha256"] = (result["image"].get("base") or {}).get("vhd_sha256")
    try:
        with open(os.path.join(os.path.dirname(lab.image), "last-run.json")) as f:
            last = json.load(f)
        if last.get("key") == result["image"].get("key") and time.time() - last.get("at", 0) < 7200:
            result["image_cached"] = last["cached"]
            result["image_check_s"] = last["seconds"]
    except (OSError, ValueError):
        pass
    t0 = time.time()
    keep_stack = False
    if settings.budget_secs > 0:
        signal.signal(signal.SIGALRM, out_of_time)
        signal.alarm(settings.budget_secs)
    try:
        accel, lab.accel_args, why = boot.choose_accel(lab)
        result["settings"]["accel"] = accel
        log("hainit lab %s: %s; run directory %s" % (lab.run_id, why, lab.run_dir))
        boot.bring_up(lab, result)
        for name in args.scenarios:
            steps.recover_fenced(lab, result, "scenario " + name)
            result["scenarios"].append(scenarios.run(name, lab, result))
            common.write_json(os.path.join(lab.run_dir, "report.json"), result)
        result["ok"] = all(s["status"] == "pass" for s in result["scenarios"])
        if result["ok"]:
            # What `make lab` promises: the site opens from this machine at the address it prints.
            result["host_view"] = kept.host_view()
            log("from this machine: " + result["host_view"]["detail"])
            if not result["host_view"]["ok"]:
                result["ok"] = False
                result["error"] = "not reachable from this machine: " + result["host_view"]["detail"]
        keep_stack = args.keep and result["ok"]
    except KeyboardInterrupt as e:
        result["error"] = "interrupted: %s; the run's last line: %s" % (e, log.last)
        log("interrupted (%s)" % e)
    except Exception as e:  # report whatever happened, then clean up
        log("FAILED: %s" % e)
        log.detail(traceback.format_exc())
        result["error"] = str(e)
    finally:
        signal.alarm(0)  # cleanup must not be interrupted
        result["seconds"] = round(time.time() - t0, 1)
        result["peak_rss_mib"] = lab.peak_rss_mib()
        if keep_stack:
            try:
                kept.hand_over(lab)
                log("--keep: the stack stays up; make lab-down stops it")
            except common.LabError as e:
                log("FAILED to keep the stack up: %s" % e)
                result["error"], result["ok"], keep_stack = "keeping the stack up: %s" % e, False, False
        if not keep_stack:
            log("cleaning up (VMs, load balancers, IMDS servers, namespace %s)" % lab.net.ns)
            lab.cleanup()
        common.write_json(os.path.join(lab.run_dir, "report.json"), result)
        md = report.write(result, lab.run_dir)
    print()
    print(open(md).read())
    if not result["ok"]:
        # Last, so the tail of a CI log says what failed.
        print("\n".join(report.failure_lines(result, lab.run_dir)))
        return 1
    print("lab: all scenarios passed — report: %s" % md)
    if keep_stack:
        lines = kept.banner(lab)
        log.detail("\n".join(lines))
        print("\n".join(lines))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", nargs="?", default="run", choices=["run", "down", "clean", "admin", "inputs", "keep"])
    p.add_argument("run_ids", nargs="*", help="clean: these runs (default: every run whose orchestrator died); "
                   "admin: that run (default: the kept one); inputs: the output directory; "
                   "keep (internal): the kept run's directory")
    p.add_argument("--scenarios", default=os.environ.get("LAB_SCENARIOS", ",".join(ALL)))
    p.add_argument("--keep", action="store_true", help="after a run that passed, leave the stack up (lab.py down stops it)")
    p.add_argument("--force", action="store_true", help="clean: also runs whose orchestrator still lives")
    args = p.parse_intermixed_args()
    args.scenarios = ALL if args.scenarios == "all" else [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in args.scenarios if s not in ALL]
    if unknown:
        p.error("unknown scenario(s) %s; known: %s" % (", ".join(unknown), ", ".join(ALL)))
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    if args.command == "inputs":
        from labkit import topology
        if len(args.run_ids) != 1:
            p.error("inputs needs one output directory")
        from labkit.lab import HAINIT
        secret = os.environ.get("LAB_SECRET") or secrets.token_hex(24)
        web = topology.web_secrets(HAINIT, secret)
        print(" ".join(topology.write_inputs(settings_or_exit(), secret, web, args.run_ids[0])))
        return 0
    if args.command == "clean":
        return clean.clean(args.run_ids, args.force)
    if args.command == "down":
        return clean.down()
    if args.command == "admin":
        return kept.admin(args.run_ids[0] if args.run_ids else None)
    if args.command == "keep":
        return kept.serve(args.run_ids[0])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
