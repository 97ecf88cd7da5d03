"""The bring-up's "DRBD initial sync 0 s" holds only when both nodes see both disks UpToDate."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import boot  # noqa: E402

HEAD = "version: 8.4.11 (api:1/proto:86-101)\n"
IN_SYNC = HEAD + " 0: cs:Connected ro:%s/%s ds:UpToDate/UpToDate C r-----\n    ns:0 nr:0 dw:0 dr:0 oos:0\n"
# …-047b: the leader kept the peer's pre-UUID state; the peer was UpToDate.
STALE = HEAD + " 0: cs:Connected ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----\n    ns:0 nr:0 oos:0\n"


class FakeVM:
    def __init__(self, name, proc, kernel=""):
        self.name, self.proc, self.kernel = name, proc, kernel

    def running(self):
        return True

    def try_ssh(self, cmd, timeout=None):
        return self.proc if "/proc/drbd" in cmd else self.kernel


class FakeLab:
    def __init__(self, *vms):
        self.vms = {vm.name: vm for vm in vms}


class InitialSync(unittest.TestCase):
    def test_no_resync_and_both_views_in_sync_is_0_s(self):
        lab = FakeLab(FakeVM("db-a", IN_SYNC % ("Primary", "Secondary")),
                      FakeVM("db-b", IN_SYNC % ("Secondary", "Primary")))
        self.assertEqual(boot.initial_sync(lab), {"seconds": 0, "evidence": []})

    def test_a_stale_view_is_not_a_skipped_sync(self):
        lab = FakeLab(FakeVM("db-a", STALE), FakeVM("db-b", IN_SYNC % ("Secondary", "Primary")))
        got = boot.initial_sync(lab)
        self.assertIsNone(got["seconds"])
        self.assertIn("db-a: Connected Primary/Secondary UpToDate/Inconsistent", got["views"])

    def test_a_full_sync_is_its_duration(self):
        kernel = "drbd wpcluster: Began resync as SyncSource\ndrbd wpcluster: Resync done (total 31 sec; paused 0 sec)\n"
        lab = FakeLab(FakeVM("db-a", IN_SYNC % ("Primary", "Secondary"), kernel),
                      FakeVM("db-b", IN_SYNC % ("Secondary", "Primary")))
        self.assertEqual(boot.initial_sync(lab)["seconds"], 31.0)


if __name__ == "__main__":
    unittest.main()
