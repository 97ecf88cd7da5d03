"""The targets table judges the whole lab's time only on a run of every scenario."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import reports  # noqa: E402
from labkit import report  # noqa: E402

WHOLE = "whole `make lab` from a cached image (every scenario run)"


def result(names, seconds, ok=True):
    return {"run_id": "t", "run_dir": "/tmp/t", "started": "now", "ok": ok, "seconds": seconds, "settings": {}, "peak_rss_mib": 4000,
            "scenarios": [{"name": n, "status": "pass" if ok else "fail", "seconds": 1.0} for n in names]}


def whole_row(r):
    return next(row for row in report.targets(r, report.figures(r)) if row[0] == WHOLE)


class WholeLab(unittest.TestCase):
    def test_a_drill_only_run_is_not_judged(self):
        r = result(["drill"], 1731)
        self.assertEqual(whole_row(r)[2:], ("28.9 min (bring-up, drill only)", None))
        self.assertIn("| %s | < 30 min | 28.9 min (bring-up, drill only) | not judged |" % WHOLE, reports.markdown(r))

    def test_every_scenario_within_the_target_is_met(self):
        self.assertEqual(whole_row(result(report.SCENARIOS, 1700))[2:], ("28.3 min", True))

    def test_every_scenario_over_the_target_or_failing_is_not_met(self):
        self.assertIs(whole_row(result(report.SCENARIOS, 5400))[3], False)
        self.assertIs(whole_row(result(report.SCENARIOS, 1700, ok=False))[3], False)
        self.assertIn("| 90.0 min | **no** |", reports.markdown(result(report.SCENARIOS, 5400)))


if __name__ == "__main__":
    unittest.main()
