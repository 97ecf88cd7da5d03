"""The DB pair's health as the drill judges it on both backends (labkit/dbpair.py)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from labkit import dbpair  # noqa: E402


def state(role, peer_role="Secondary", disk="UpToDate", peer_disk="UpToDate", cs="Connected", nodes=None):
    s = {"running": True, "cs": cs, "role": role, "peer_role": peer_role, "disk": disk, "peer_disk": peer_disk}
    if nodes is not None:
        s["nodes"] = nodes
    return s


class Health(unittest.TestCase):
    def test_one_primary_both_uptodate_and_online_is_healthy(self):
        states = {"db-a": state("Primary", nodes={"db-a": True, "db-b": True}),
                  "db-b": state("Secondary", "Primary")}
        self.assertTrue(dbpair.healthy(states))
        self.assertEqual(dbpair.primary(states), "db-a")

    def test_each_fault_is_unhealthy(self):
        good = {"db-a": state("Primary"), "db-b": state("Secondary", "Primary")}
        faults = {
            "a VM off": dict(good, **{"db-b": None}),
            "two primaries": dict(good, **{"db-b": state("Primary", "Primary")}),
            "no primary": dict(good, **{"db-a": state("Secondary")}),
            "resyncing": dict(good, **{"db-b": state("Secondary", "Primary", disk="Inconsistent")}),
            "not connected": dict(good, **{"db-a": state("Primary", "Unknown", peer_disk="DUnknown", cs="WFConnection")}),
            "a node offline for the cluster": dict(good, **{"db-a": state("Primary", nodes={"db-a": True, "db-b": False})}),
            "one VM only": {"db-a": state("Primary")},
        }
        for what, states in faults.items():
            self.assertFalse(dbpair.healthy(states), what)

    def test_drbdadm_words_of_84_and_9(self):
        self.assertEqual(dbpair.drbdadm_state("Primary/Secondary", "UpToDate/UpToDate", "Connected"),
                         state("Primary"))
        self.assertIsNone(dbpair.drbdadm_state("", "UpToDate/UpToDate", "Connected"), "drbdadm said nothing")
        self.assertIsNone(dbpair.drbdadm_state("Primary", "UpToDate", "Connected"), "not local/peer")

    def test_crm_mon_nodes_skip_where_resources_run(self):
        xml = ('<nodes><node name="db-a" id="1" online="true" standby="false"/>'
               '<node name="db-b" id="2" online="false"/></nodes>'
               '<resource id="fs"><node name="db-a" id="1" cached="true"/></resource>')
        self.assertEqual(dbpair.crm_mon_nodes(xml), {"db-a": True, "db-b": False})
        self.assertEqual(dbpair.status({"db-a": None, "db-b": state("Secondary", "Unknown")}),
                         "db-a: off or unreadable; db-b: Connected Secondary/Unknown UpToDate/UpToDate")


if __name__ == "__main__":
    unittest.main()
