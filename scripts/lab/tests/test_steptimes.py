"""Bring-up breakdown: hainit's steps timed from its journal lines (as `journalctl -u hainit` prints them)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import reports  # noqa: E402
from labkit import steptimes  # noqa: E402

JOURNAL = """\
Dec 01 21:55:50 db-a systemd[1]: Starting hainit.service - hainit ...
Dec 01 21:55:54 db-a hainit[300]: 2026-12-01T21:55:50.500000Z  INFO hainit: role db on debian12
Dec 01 21:55:54 db-a hainit[300]: 2026-12-01T21:55:53.731659Z  INFO step{id="common.sysctl"}: start action=file  /etc/x
Dec 01 21:55:55 db-a hainit[300]: 2026-12-01T21:55:55.500000Z  INFO step{id="common.sysctl"}: changed actions=2
Dec 01 21:56:16 db-a hainit[300]: 2026-12-01T21:56:16.000000Z  INFO step{id="db.packages"}: ok
Dec 01 21:56:17 db-a hainit[300]: 2026-12-01T21:56:17.000000Z  WARN step{id="db.cluster.start"}: failed error=timed out
Dec 01 21:56:17 db-a systemd[1]: hainit.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED
Dec 01 21:56:47 db-a hainit[412]: 2026-12-01T21:56:47.000000Z  INFO step{id="common.sysctl"}: ok
Dec 01 21:58:16 db-a hainit[412]: 2026-12-01T21:58:16.000000Z  INFO step{id="db.cluster.start"}: changed actions=1
"""


class Durations(unittest.TestCase):
    def test_each_step_from_the_end_of_the_one_before(self):
        self.assertEqual(steptimes.durations(JOURNAL), [
            ("common.sysctl", 5.0), ("db.packages", 20.5),
            # the second run: its first step is charged the restart wait, the failed step its retry
            ("common.sysctl", 31.0), ("db.cluster.start", 89.0)])

    def test_slowest_first(self):
        self.assertEqual(steptimes.slowest(steptimes.durations(JOURNAL), 2),
                         [("db.cluster.start", 89.0), ("common.sysctl", 31.0)])

    def test_totals_sum_over_runs_in_first_seen_order(self):
        self.assertEqual(list(steptimes.totals(steptimes.durations(JOURNAL)).items()),
                         [("common.sysctl", 36.0), ("db.packages", 20.5), ("db.cluster.start", 89.0)])

    def test_lines_without_hainit_stamps_are_ignored(self):
        self.assertEqual(steptimes.durations("Dec 01 db-a systemd[1]: Started.\n-- No entries --\n"), [])

    def test_epoch_is_utc(self):
        self.assertEqual(steptimes.epoch("1970-01-02T00:00:01.25"), 86401.25)


class ReportBringUp(unittest.TestCase):
    def test_report_has_a_row_per_step_and_a_column_per_vm(self):
        boot = {"wordpress_s": 100.0, "vms": {
            "db-a": {"steps_s": steptimes.totals(steptimes.durations(JOURNAL))},
            "web-1": {"steps_s": {"common.sysctl": 2.0, "web.services": 40.5}}}}
        result = {"run_id": "t", "run_dir": "/tmp/x", "settings": {}, "scenarios": [], "ok": True, "seconds": 1,
                  "boot": boot}
        md = reports.markdown(result)
        self.assertIn("| step | db-a | web-1 |", md)
        self.assertIn("| common.sysctl | 36.0 | 2.0 |", md)
        self.assertIn("| db.cluster.start | 89.0 | – |", md)
        self.assertIn("| web.services | – | 40.5 |", md)
        self.assertIn("| **hainit in all** | **145.5** | **42.5** |", md)


if __name__ == "__main__":
    unittest.main()
