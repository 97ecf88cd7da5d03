"""A failed run ends with what failed: the tail of a CI log is often all anyone sees of it."""

import os
import signal
import sys
import tempfile
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lab as lab_main  # noqa: E402
from labkit import report  # noqa: E402
from labkit.lab import Settings  # noqa: E402

DIAGNOSTICS = """### systemctl --failed --no-pager
  hainit.service loaded failed failed
### journalctl -u hainit --no-pager | tail -n 200
%s
### cat /proc/drbd
version: 8.4.11
"""


def vm_dir(run_dir, name, journal):
    d = os.path.join(run_dir, "vms", name)
    os.makedirs(d)
    with open(os.path.join(d, "diagnostics.txt"), "w") as f:
        f.write(DIAGNOSTICS % "\n".join(journal))


class FailureLines(unittest.TestCase):
    def test_a_failed_first_boot_names_the_vm_and_ends_with_its_journal(self):
        with tempfile.TemporaryDirectory() as d:
            journal = ["hainit[1]: step %d" % i for i in range(20)] + ["hainit[1]: error: db.cluster.ready: timed out"]
            vm_dir(d, "db-b", journal)
            result = {"error": "hainit failed on db-b (exit 1); diagnostics in …", "scenarios": [],
                      "boot": {"vms": {"db-a": {"hainit": "ok"}, "db-b": {"hainit": "failed", "hainit_exit": 1}}}}
            lines = report.failure_lines(result, d)
        self.assertEqual(lines[0], "lab: stopped: hainit failed on db-b (exit 1); diagnostics in …")
        self.assertEqual(lines[1], "lab: db-b: hainit failed (exit 1); its journal ends:")
        self.assertEqual(lines[2:10], ["  " + j for j in journal[-8:]])
        self.assertNotIn("db-a", "\n".join(lines))
        self.assertTrue(lines[-1].startswith("lab: FAILED (bring-up) — logs: %s" % d), lines[-1])

    def test_a_failed_scenario_names_its_failed_step_and_error(self):
        sc = {"name": "drill", "status": "fail", "error": "post 3 not written",
              "steps": [{"step": "post 1", "ok": True, "seconds": 3.0},
                        {"step": "post 3 (after failover)", "ok": False, "seconds": 300.2,
                         "error": "post 3 not written through the public LB within 300s:\n ['timeout']"}],
              "failed": ["write after the kill served by db-a, expected db-b"]}
        lines = report.failure_lines({"scenarios": [{"name": "repair", "status": "pass"}, sc],
                                      "boot": {"vms": {"db-a": {"hainit": "ok"}}}}, "/tmp/r")
        self.assertEqual(lines, [
            "lab: drill: step \"post 3 (after failover)\" failed after 300.2 s: post 3 not written through the "
            "public LB within 300s: ['timeout']",
            "lab: drill: write after the kill served by db-a, expected db-b",
            "lab: FAILED (scenario drill) — logs: /tmp/r (lab.log, vms/*/console.log, vms/*/diagnostics.txt)"])

    def test_long_errors_are_clipped_to_one_line(self):
        line = report.failure_lines({"error": "x" * 1000}, "/tmp/r")[0]
        self.assertEqual(len(line), len("lab: stopped: ") + 240)
        self.assertTrue(line.endswith("…"))


class Budget(unittest.TestCase):
    def test_the_budget_interrupts_whatever_the_run_waits_on_and_says_so(self):
        with mock.patch.dict(os.environ, {"LAB_BUDGET_SECS": "1"}):
            self.assertEqual(Settings().budget_secs, 1)
            old = signal.signal(signal.SIGALRM, lab_main.out_of_time)
            try:
                signal.alarm(1)
                t0 = time.time()
                with self.assertRaisesRegex(KeyboardInterrupt, r"time budget \(LAB_BUDGET_SECS=1\) is used up"):
                    time.sleep(10)
                self.assertLess(time.time() - t0, 5)
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, old)

    def test_no_budget_by_default(self):
        with mock.patch.dict(os.environ, {}, clear=False):
            os.environ.pop("LAB_BUDGET_SECS", None)
            self.assertEqual(Settings().budget_secs, 0)


if __name__ == "__main__":
    unittest.main()
