"""The repair's replacement VM boots only after the cluster fenced the destroyed one: ARM powers a VM
off by its name, so a replacement booted first takes the pending fence (…-3a28)."""

import os
import sys
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import repair  # noqa: E402
from labkit.lab import Settings  # noqa: E402


def settings(**env):
    with mock.patch.dict(os.environ, env):
        return Settings()


class FakeVM:
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def hard_kill(self):
        self.calls.append("kill " + self.name)

    def clock_offset(self):
        return 0.0


class FakeLab:
    def __init__(self, s, calls):
        self.settings, self.calls = s, calls
        self.primary, self.standby = FakeVM("db-a", calls), FakeVM("db-b", calls)

    def log(self, _):
        pass

    def after_step(self):
        pass

    def replace_vm(self, name):
        self.calls.append("replace " + name)
        return FakeVM(name, self.calls)


class ReplaceStandby(unittest.TestCase):
    def replace(self, mode, journals):
        calls = []
        lab = FakeLab(settings(LAB_STONITH=mode), calls)
        out = {"name": "repair", "steps": []}
        answers = iter(journals)

        def journal(vm, since, units=None, grep=None):
            calls.append("journal %s grep=%s" % (vm.name, grep))
            return next(answers)

        with mock.patch.object(repair, "db_roles", return_value=(lab.primary, lab.standby)), \
                mock.patch.object(repair, "boot_vm", side_effect=lambda lab, vm: calls.append("boot " + vm.name)), \
                mock.patch("labkit.stack.journal", side_effect=journal), mock.patch("time.sleep"):
            timings = {}
            repair.replace_standby(lab, repair.Steps(lab, out), timings)
        return calls, timings

    def test_with_stonith_the_replacement_waits_for_the_fence(self):
        fenced = "Operation 'reboot' targeting db-b by db-a for pacemaker-controld.1234@db-a: OK"
        for mode in ("arm", "sbd"):
            calls, timings = self.replace(mode, [[], [(time.time() + 5, "pacemaker-fenced", fenced)]])
            self.assertEqual(calls, ["kill db-b", "journal db-a grep=db-b", "journal db-a grep=db-b",
                                     "replace db-b", "boot db-b"], mode)
            self.assertIn("destroyed_to_fenced_s", timings)

    def test_a_fence_of_the_other_node_or_before_the_kill_does_not_count(self):
        other = "Operation 'reboot' targeting db-a by db-b for pacemaker-controld.1@db-b: OK"
        old = "Operation 'reboot' targeting db-b by db-a for pacemaker-controld.1@db-a: OK"
        now = time.time()
        fenced = [(now + 9, "pacemaker-fenced", old.replace("controld.1", "controld.2"))]
        calls, _ = self.replace("arm", [[(now + 5, "pacemaker-fenced", other), (now - 60, "pacemaker-fenced", old)],
                                        fenced])
        self.assertEqual(calls.count("journal db-a grep=db-b"), 2)
        self.assertLess(calls.index("journal db-a grep=db-b"), calls.index("replace db-b"))

    def test_without_stonith_nothing_is_awaited(self):
        calls, timings = self.replace("off", [])
        self.assertEqual(calls, ["kill db-b", "replace db-b", "boot db-b"])
        self.assertNotIn("destroyed_to_fenced_s", timings)


if __name__ == "__main__":
    unittest.main()
