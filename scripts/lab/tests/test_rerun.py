"""Re-run on a converged node: hainit's log read into seconds, actions and changed steps, the
command run for real against a stand-in hainit, and the report's rows."""

import os
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import reports  # noqa: E402
from shell_vm import ShellVM  # noqa: E402
from labkit import common, report, rerun  # noqa: E402

# What `hainit --role db 2>&1` prints (tracing's text format, as main.rs sets it up), then the mark.
CONVERGED = """\
2026-12-06T10:00:00.100000Z  INFO converging role=db node=db-a platform=debian12
2026-12-06T10:00:00.300000Z  INFO step{id="common.sysctl"}: ok
2026-12-06T10:00:01.000000Z  INFO step{id="db.packages"}: ok
2026-12-06T10:00:01.900000Z  INFO step{id="db.cluster.ready"}: ok
2026-12-06T10:00:02.000000Z  INFO converged steps=3 changed=0
hainit-rerun exit=0 start=1765015200.000000000 end=1765015202.450000000
"""

CHANGED = """\
2026-12-06T10:00:00.100000Z  INFO converging role=db node=db-a platform=debian12
2026-12-06T10:00:00.300000Z  INFO step{id="common.sysctl"}: ok
2026-12-06T10:00:00.400000Z  INFO step{id="db.cluster.pcsd"}: start action=run systemctl start --no-block pcsd
2026-12-06T10:00:00.500000Z  INFO step{id="db.cluster.pcsd"}: changed actions=1
2026-12-06T10:00:00.600000Z  INFO step{id="db.cluster.cib"}: start action=run pcs cluster cib-push
2026-12-06T10:00:00.700000Z  INFO step{id="db.cluster.cib"}: start action=run crm_resource --wait
2026-12-06T10:00:09.000000Z  INFO step{id="db.cluster.cib"}: changed actions=2
2026-12-06T10:00:09.100000Z  INFO converged steps=3 changed=2
hainit-rerun exit=0 start=1765015200.0 end=1765015209.25
"""

FAILED = """\
2026-12-06T10:00:00.100000Z  INFO converging role=web node=web-1 platform=debian12
2026-12-06T10:00:00.300000Z  INFO step{id="common.sysctl"}: ok
2026-12-06T10:00:03.000000Z  WARN step{id="web.db.vip"}: failed error=timed out waiting for the VIP
2026-12-06T10:00:03.000000Z ERROR step web.db.vip: timed out waiting for the VIP exit_code=3
hainit-rerun exit=3 start=1765015200.0 end=1765015203.0
"""


class Parse(unittest.TestCase):
    def test_a_converged_rerun_took_no_action(self):
        self.assertEqual(rerun.parse(CONVERGED), {
            "exit": 0, "seconds": 2.45, "steps": 3, "actions": 0, "changed_steps": [],
            "slowest_steps_s": {"db.cluster.ready": 0.9, "db.packages": 0.7, "common.sysctl": 0.2}})
        self.assertTrue(rerun.met(rerun.parse(CONVERGED)))

    def test_a_rerun_that_changed_names_the_steps_and_counts_their_actions(self):
        r = rerun.parse(CHANGED)
        self.assertEqual((r["actions"], r["changed_steps"], r["seconds"]),
                         (3, ["db.cluster.pcsd", "db.cluster.cib"], 9.25))
        self.assertFalse(rerun.met(r))
        self.assertEqual(rerun.summary(r), "9.2 s, 3 action(s), exit 0, changed: db.cluster.pcsd, db.cluster.cib")

    def test_a_failed_rerun_keeps_its_exit_and_error(self):
        r = rerun.parse(FAILED)
        self.assertEqual((r["exit"], r["steps"], r["actions"]), (3, 1, 0))
        self.assertEqual(r["error"], "step web.db.vip: timed out waiting for the VIP exit_code=3")
        self.assertFalse(rerun.met(r))

    def test_slow_but_unchanged_misses_the_target(self):
        self.assertFalse(rerun.met(rerun.parse(CONVERGED.replace("end=1765015202.45", "end=1765015205.01"))))

    def test_output_without_the_end_mark_is_an_error(self):
        with self.assertRaisesRegex(common.LabError, "no end mark"):
            rerun.parse(CONVERGED.rsplit("hainit-rerun", 1)[0])

    def test_step_lines_it_cannot_read_are_an_error_not_zero_actions(self):
        unreadable = CHANGED.replace('step{id="db.cluster.cib"}: changed', 'step{id="db.cluster.cib"}: altered')
        with self.assertRaisesRegex(common.LabError, r"2 steps, 1 changed\) disagree .*steps=3 changed=2"):
            rerun.parse(unreadable)
        with self.assertRaisesRegex(common.LabError, "summary \\(none\\)"):
            rerun.parse("".join(line for line in CONVERGED.splitlines(True) if "converged steps" not in line))

    def test_a_changed_step_without_its_count_is_an_error(self):
        with self.assertRaisesRegex(common.LabError, "without its action count"):
            rerun.parse(CHANGED.replace("changed actions=1", "changed"))


FAKE_HAINIT = """#!/bin/sh
# The stand-in hainit: its arguments, then a log as the real one prints it (on stderr).
echo "$@" > "$(dirname "$0")/argv"
cat "$(dirname "$0")/log" >&2
exit "$(cat "$(dirname "$0")/code")"
"""


class Run(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.bin = os.path.join(self.tmp.name, "bin")
        os.makedirs(self.bin)
        with open(os.path.join(self.bin, "hainit"), "w") as f:
            f.write(FAKE_HAINIT)
        os.chmod(os.path.join(self.bin, "hainit"), 0o755)
        self.lines = []
        self.lab = types.SimpleNamespace(vms={}, log=self.lines.append)

    def tearDown(self):
        self.tmp.cleanup()

    def vm(self, name, role, log, code=0, running=True):
        vm_dir = os.path.join(self.tmp.name, name)
        os.makedirs(vm_dir)
        bin_dir = os.path.join(vm_dir, "bin")
        os.makedirs(bin_dir)
        os.symlink(os.path.join(self.bin, "hainit"), os.path.join(bin_dir, "hainit"))
        for leaf, text in (("log", log), ("code", str(code))):
            with open(os.path.join(bin_dir, leaf), "w") as f:
                f.write(text)
        self.lab.vms[name] = ShellVM(name, role, bin_dir, vm_dir, running)
        return bin_dir

    def test_every_vm_once_with_its_role_timed_on_its_own_clock(self):
        log = CONVERGED.rsplit("hainit-rerun", 1)[0]
        db_bin = self.vm("db-a", "db", log)
        web_bin = self.vm("web-1", "web", FAILED.rsplit("hainit-rerun", 1)[0], code=3)
        self.vm("web-2", "web", log, running=False)
        result = {}
        out = rerun.run(self.lab, result)
        self.assertIs(result["rerun"], out)
        with open(os.path.join(db_bin, "argv")) as f:
            self.assertEqual(f.read().split(), ["--role", "db"])
        with open(os.path.join(web_bin, "argv")) as f:
            self.assertEqual(f.read().split(), ["--role", "web"])
        self.assertEqual((out["db-a"]["exit"], out["db-a"]["actions"], out["db-a"]["changed_steps"]), (0, 0, []))
        self.assertGreaterEqual(out["db-a"]["seconds"], 0)
        self.assertLess(out["db-a"]["seconds"], 5)
        self.assertEqual((out["web-1"]["exit"], out["web-1"]["error"]),
                         (3, "step web.db.vip: timed out waiting for the VIP exit_code=3"))
        self.assertEqual(out["web-2"], {"error": "not running after bring-up"})
        with open(os.path.join(self.tmp.name, "db-a", "hainit-rerun.log")) as f:
            self.assertIn("INFO converged steps=3 changed=0", f.read())
        self.assertEqual(len(self.lines), 3)
        self.assertIn("db-a: re-run of hainit --role db on the converged node: ", self.lines[0])


def result_with(reruns):
    return {"run_id": "t", "run_dir": "/tmp/t", "started": "now", "ok": True, "seconds": 1, "settings": {},
            "scenarios": [], "rerun": reruns}


class Report(unittest.TestCase):
    def test_a_row_per_vm_and_the_target(self):
        reruns = {"db-a": rerun.parse(CONVERGED), "db-b": rerun.parse(CHANGED),
                  "web-1": rerun.parse(FAILED), "web-2": {"error": "not running after bring-up"}}
        r = result_with(reruns)
        md = reports.markdown(r)
        self.assertIn("| db-a | 2.45 | 0 | none | db.cluster.ready 0.9 s, db.packages 0.7 s, common.sysctl 0.2 s "
                      "| 0 |", md)
        self.assertIn("| db-b | 9.25 | 3 | db.cluster.pcsd, db.cluster.cib | db.cluster.cib 8.5 s, "
                      "common.sysctl 0.2 s, db.cluster.pcsd 0.2 s | 0 |", md)
        self.assertIn("| web-1 | 3.0 | 0 | none | common.sysctl 0.2 s | 3: step web.db.vip: timed out waiting for "
                      "the VIP exit_code=3 |", md)
        self.assertIn("| web-2 | – | – | – | – | not running after bring-up |", md)
        self.assertIn("| re-run of hainit on each converged VM | 0 actions, <= 5 s | 3 action(s), slowest 9.25 s "
                      "| **no** |", md)
        self.assertEqual((r["figures"]["rerun_max_s"], r["figures"]["rerun_actions"]), (9.25, 3))

    def test_all_converged_within_the_target_is_met(self):
        r = result_with({"db-a": rerun.parse(CONVERGED), "web-1": rerun.parse(CONVERGED)})
        row = next(t for t in report.targets(r, report.figures(r)) if t[0].startswith("re-run"))
        self.assertEqual(row[2:], ("0 action(s), slowest 2.45 s", True))

    def test_no_rerun_no_row(self):
        r = result_with(None)
        self.assertFalse([t for t in report.targets(r, report.figures(r)) if t[0].startswith("re-run")])
        self.assertNotIn("Re-run", reports.markdown(r))


if __name__ == "__main__":
    unittest.main()
