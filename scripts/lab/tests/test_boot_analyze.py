"""systemd-analyze's boot split, as the lab's report reads it (boot.parse_analyze)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from labkit.boot import parse_analyze  # noqa: E402


class ParseAnalyze(unittest.TestCase):
    def test_minutes_seconds_and_milliseconds(self):
        line = "Startup finished in 3.912s (kernel) + 940ms (initrd) + 1min 2.512s (userspace) = 1min 7.374s"
        self.assertEqual(parse_analyze(line + "\nmulti-user.target reached after 1min 2.4s in userspace\n"),
                         {"kernel": 3.9, "initrd": 0.9, "userspace": 62.5})

    def test_firmware_and_loader_when_the_loader_reports_them(self):
        line = "Startup finished in 1.5s (firmware) + 2.3s (loader) + 3s (kernel) + 4s (userspace) = 10.8s"
        self.assertEqual(parse_analyze(line), {"firmware": 1.5, "loader": 2.3, "kernel": 3.0, "userspace": 4.0})

    def test_a_boot_not_finished_says_nothing(self):
        self.assertEqual(parse_analyze("Bootup is not yet finished (org.freedesktop.systemd1.Manager.Finish"
                                       "Timestamp=0).\n"), {})
        self.assertEqual(parse_analyze(""), {})


if __name__ == "__main__":
    unittest.main()
