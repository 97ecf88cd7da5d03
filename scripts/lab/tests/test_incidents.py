"""A db VM fenced outside a scenario is started again before the next one and reported."""

import os
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import reports  # noqa: E402
from labkit import boot, common, stack, steps  # noqa: E402


class Spec:
    def __init__(self, role):
        self.role = role


class FakeVM:
    def __init__(self, name, fenced, said="", role="db"):
        self.name, self.spec, self._fenced, self.said = name, Spec(role), fenced, said
        self.exited_at = 1700000000.0 if fenced else None
        self.started_at = None

    def kernel_started_at(self):
        return None  # the guest's uptime is not known here

    def fenced(self):
        return self._fenced

    def running(self):
        return not self._fenced

    def try_ssh(self, cmd, timeout=None):
        return self.said if "will be fenced" in cmd else ""

    def wait_ssh(self, timeout):
        pass

    def path(self, name):
        return "/runs/t/vms/%s/%s" % (self.name, name)


class Settings:
    converge_timeout = 600


class FakeLab:
    def __init__(self, vms):
        self.vms = {vm.name: vm for vm in vms}
        self.logged = []
        self.settings = Settings()

    def log(self, msg):
        self.logged.append(msg)


class Recover(unittest.TestCase):
    def test_a_fenced_db_vm_is_started_again_and_recorded(self):
        said = "warning: Cluster node db-a will be fenced: peer process is no longer available"
        lab = FakeLab([FakeVM("db-a", True), FakeVM("db-b", False, said)])
        result = {}
        with mock.patch.object(steps, "start_fenced", return_value={"vm": "db-a", "qemu_exit": 1.0, "boot_s": 200.0}) \
                as start, mock.patch.object(steps, "wait_pair_healthy") as healthy:
            fenced = steps.recover_fenced(lab, result, "scenario drill")
        self.assertEqual([vm.name for vm in fenced], ["db-a"])
        start.assert_called_once_with(lab, lab.vms["db-a"])
        healthy.assert_called_once()
        self.assertEqual(result["incidents"], [{"vm": "db-a", "qemu_exit": 1.0, "boot_s": 200.0,
                                                "before": "scenario drill", "reason": said}])

    def test_nothing_fenced_changes_nothing(self):
        lab = FakeLab([FakeVM("db-a", False), FakeVM("db-b", False)])
        result = {}
        with mock.patch.object(steps, "start_fenced") as start, mock.patch.object(steps, "wait_pair_healthy") as h:
            self.assertEqual(steps.recover_fenced(lab, result, "scenario drill"), [])
        start.assert_not_called()
        h.assert_not_called()
        self.assertNotIn("incidents", result)

    def test_report_lists_incidents(self):
        result = {"run_id": "t", "run_dir": "/tmp/x", "settings": {}, "scenarios": [], "ok": True, "seconds": 1,
                  "incidents": [{"vm": "db-a", "qemu_exit": None, "boot_s": 190.2, "before": "scenario drill",
                                 "reason": "db-a will be fenced: peer process is no longer available"}]}
        md = reports.markdown(result)
        self.assertIn("## Incidents: fenced outside a scenario", md)
        self.assertIn("- db-a fenced (qemu exited unseen host time) before scenario drill; started again, ssh after "
                      "190.2 s; the survivor said: `db-a will be fenced: peer process is no longer available`", md)


class FirstBoot(unittest.TestCase):
    """boot.wait_converged: a db VM fenced during its first boot is started again (Azure reboots a
    fenced VM and hainit.service runs again), instead of being polled over ssh until the deadline."""

    def converge(self, vms, states):
        lab = FakeLab(vms)
        result, booted = {}, {"t0": 0.0, "vms": {}}

        def start(_lab, vm):
            vm._fenced = False
            return {"vm": vm.name, "qemu_exit": 1.0, "boot_s": 90.0}
        with mock.patch.object(steps, "start_fenced", side_effect=start) as started, \
                mock.patch.object(stack, "hainit_state", side_effect=lambda vm: states[vm.name].pop(0)), \
                mock.patch.object(boot.time, "sleep"):
            boot.wait_converged(lab, booted, result)
        return started, result, booted

    def test_a_db_vm_fenced_during_its_first_boot_is_started_again_and_converges(self):
        said = "warning: Cluster node db-b will be fenced: peer is no longer part of the cluster"
        vms = [FakeVM("db-a", False, said), FakeVM("db-b", True)]
        states = {"db-a": [("running", 0), ("ok", 0)], "db-b": [("running", 0), ("ok", 0)]}
        started, result, booted = self.converge(vms, states)
        started.assert_called_once_with(mock.ANY, vms[1])
        self.assertEqual(result["incidents"], [{"vm": "db-b", "qemu_exit": 1.0, "boot_s": 90.0,
                                                "before": "its first boot converged", "reason": said}])
        self.assertEqual({n: v["hainit"] for n, v in booted["vms"].items()}, {"db-a": "ok", "db-b": "ok"})

    def test_a_web_vm_whose_qemu_exited_fails_the_bring_up_at_once(self):
        vms = [FakeVM("db-a", False), FakeVM("web-1", True, role="web")]
        with self.assertRaisesRegex(common.LabError, "web-1: its qemu exited on its own during its first boot"):
            self.converge(vms, {"db-a": [("running", 0)] * 3, "web-1": [("running", 0)] * 3})


if __name__ == "__main__":
    unittest.main()
