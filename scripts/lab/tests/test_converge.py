"""A changed setting on the running cluster (converge.py): the config edit, plan --json and the CIB
read into what the check judges, the whole check run for real against a stand-in hainit and
cibadmin (fake_cluster.py), failures failing it with the config put back, and the report's rows."""

import json
import os
import stat
import sys
import tempfile
import types
import unittest
import xml.etree.ElementTree as ET
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fake_cluster  # noqa: E402
import reports  # noqa: E402
from shell_vm import ShellVM  # noqa: E402
from labkit import common, converge  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..", "..", "..")
GOLDEN_CIB = os.path.join(REPO, "tests", "golden", "render-db", "debian12-leader", "var", "lib", "hainit", "cib.xml")
GOLDEN_PLAN = os.path.join(REPO, "tests", "golden", "plan-db", "debian12-leader.json")

# What the lab writes (topology.config_yaml's layout): the key also in another section.
CONFIG = """\
# hainit lab: what cloud-init custom-data writes on Azure for a db VM
secret: "0123456789abcdef0123456789abcdef0123456789abcdef"
db:
  web_subnet: 10.0.2.0/24
  probe_port: 62500
  op_timeout_scale: 4
  stonith: auto
web:
  op_timeout_scale: 7
  site_title: hainit lab
"""


def golden_cib():
    with open(GOLDEN_CIB) as f:
        return f.read()


class Config(unittest.TestCase):
    def test_the_one_line_of_the_db_section_goes_up_by_one(self):
        old, new, text = converge.changed_config(CONFIG)
        self.assertEqual((old, new), (4, 5))
        self.assertEqual(text, CONFIG.replace("  op_timeout_scale: 4\n", "  op_timeout_scale: 5\n"))
        self.assertIn("web:\n  op_timeout_scale: 7\n", text)

    def test_at_hainits_limit_it_goes_down(self):
        self.assertEqual(converge.changed_config(CONFIG.replace("scale: 4", "scale: 10"))[:2], (10, 9))

    def test_a_missing_doubled_or_odd_setting_is_an_error(self):
        for text, msg in [(CONFIG.replace("  op_timeout_scale: 4\n", ""), "found 0"),
                          (CONFIG.replace("  stonith: auto\n", "  op_timeout_scale: 3\n"), "found 2"),
                          (CONFIG.replace("scale: 4", "scale: four"), "'four', not a whole number")]:
            with self.assertRaisesRegex(common.LabError, msg):
                converge.changed_config(text)


def plan_json(states):
    """The golden debian12 leader plan with each step's state and actions set: {name: actions or None}."""
    with open(GOLDEN_PLAN) as f:
        plan = json.load(f)
    for s in plan["steps"]:
        actions = states.get(s["name"])
        s["state"], s["actions"] = ("change", actions) if actions else ("ok", [])
    return json.dumps(plan)


PATCH = [{"type": "dir", "path": "/run/hainit"}, {"type": "file", "path": "/run/hainit/cib.patch"},
         {"type": "command", "argv": ["cibadmin", "--patch", "--xml-file", "/run/hainit/cib.patch"],
          "why": "Pacemaker 2.1 line, 1 change(s): lb_probe port: 62500 → 62501"}]


class Plan(unittest.TestCase):
    def test_one_changing_step_with_one_patch(self):
        p = converge.plan_summary(plan_json({"db.cluster.resources": PATCH}))
        self.assertEqual(p, {"changing_steps": ["db.cluster.resources"], "actions": 3, "patch_actions": 1,
                             "why": "Pacemaker 2.1 line, 1 change(s): lb_probe port: 62500 → 62501"})
        self.assertIsNone(converge.one_patch(p))

    def test_a_fresh_nodes_plan_is_not_one_patch(self):
        with open(GOLDEN_PLAN) as f:
            p = converge.plan_summary(f.read())
        self.assertGreater(len(p["changing_steps"]), 10)
        self.assertRegex(converge.one_patch(p), r"^plan should change only db.cluster.resources with one "
                                                r"cibadmin --patch; it changes common.sysctl, db.disk.partition, ")

    def test_another_step_or_no_patch_or_nothing_is_not_one_patch(self):
        extra = {"db.cluster.resources": PATCH, "db.packages": [{"type": "command", "argv": ["apt-get"]}]}
        no_patch = {"db.cluster.resources": PATCH[:2]}
        for states, msg in [(extra, "it changes db.packages, db.cluster.resources with 1 patch"),
                            (no_patch, "it changes db.cluster.resources with 0 patch"),
                            ({}, "it changes nothing with 0 patch")]:
            self.assertIn(msg, converge.one_patch(converge.plan_summary(plan_json(states))))

    def test_output_that_is_not_a_plan_is_an_error(self):
        for text in ("ERROR no data disk", '{"steps": [{"name": "x"}]}',
                     json.dumps({"steps": [{"name": "x", "state": "maybe", "actions": []}]})):
            with self.assertRaises(common.LabError):
                converge.plan_summary(text)


def scaled_cib(scale):
    """The golden CIB as the stand-in cluster has it at that scale."""
    return ET.tostring(fake_cluster.scaled(golden_cib(), scale), encoding="unicode")


class Cib(unittest.TestCase):
    def test_every_scaled_timeout_and_not_the_fence_devices(self):
        t = converge.timeouts(golden_cib())
        self.assertEqual(t["mysqld monitor 20s"], 30)
        self.assertEqual(t["drbd_wpcluster start 0s"], 240)
        self.assertEqual(t[converge.OP_DEFAULTS], 20)
        self.assertEqual(len(t), 17)  # 7 DRBD, 3 x 3 in the group, the default
        self.assertFalse([k for k in t if k.startswith("fence_azure")])

    def test_a_scale_change_is_judged_op_by_op(self):
        before, after = converge.timeouts(scaled_cib(4)), converge.timeouts(scaled_cib(5))
        self.assertEqual(converge.scaled(before, after, 4, 5), [])
        self.assertEqual(converge.read_back(before, after), {"op": "mysqld monitor 20s", "before_s": 120,
                                                             "after_s": 150})
        after["lb_probe start 0s"] = 80
        del after["fs_db stop 0s"]
        self.assertEqual(converge.scaled(before, after, 4, 5), [
            "operations differ: gone ['fs_db stop 0s'], new none",
            "lb_probe start 0s: timeout 80 s -> 80 s, want 100.0 s"])
        self.assertEqual(converge.scaled(before, before, 4, 5)[0],
                         "drbd_wpcluster demote 0s: timeout 360 s -> 360 s, want 450.0 s")

    def test_shape_ignores_timeouts_only(self):
        self.assertEqual(converge.shape(scaled_cib(4)), converge.shape(scaled_cib(5)))
        moved = scaled_cib(4).replace('score="INFINITY"', 'score="1000"')
        self.assertNotEqual(converge.shape(scaled_cib(4)), converge.shape(moved))
        port = scaled_cib(4).replace('value="62500"', 'value="62501"')
        self.assertNotEqual(converge.shape(scaled_cib(4)), converge.shape(port))

    def test_a_timeout_it_cannot_read_or_no_cib_is_an_error(self):
        with self.assertRaisesRegex(common.LabError, r"mysqld monitor 20s: timeout '2min' is not in seconds"):
            converge.timeouts(golden_cib().replace('interval="20s" timeout="30s"', 'interval="20s" timeout="2min"'))
        for text in ("Could not connect to the CIB: Transport endpoint is not connected", "<cib><status/></cib>"):
            with self.assertRaises(common.LabError):
                converge.timeouts(text)


class Run(unittest.TestCase):
    """converge.run against the stand-in: a db leader at scale 4 that follows its config."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        d = self.tmp.name
        self.bin, self.state, self.vm_dir = (os.path.join(d, x) for x in ("bin", "state", "db-a"))
        for x in (self.bin, self.state, self.vm_dir):
            os.makedirs(x)
        for tool in ("hainit", "cibadmin"):
            os.symlink(os.path.join(HERE, "fake_cluster.py"), os.path.join(self.bin, tool))
        self.config = os.path.join(d, "etc-hainit.yaml")
        for path in (self.config, os.path.join(self.vm_dir, "hainit.yaml")):
            common.write_private(path, CONFIG)
        with open(os.path.join(self.state, "cluster_scale"), "w") as f:
            f.write("4")
        self.lines = []
        patcher = mock.patch.object(converge, "CONFIG", self.config)
        patcher.start()
        self.addCleanup(patcher.stop)

    def lab(self, mode=""):
        env = {"FAKE_STATE": self.state, "FAKE_CONFIG": self.config, "FAKE_MODE": mode}
        vms = {"web-1": ShellVM("web-1", "web", self.bin, self.vm_dir, env=env),
               "db-b": ShellVM("db-b", "db", self.bin, self.vm_dir, env=env),
               "db-a": ShellVM("db-a", "db", self.bin, self.vm_dir, env=env)}
        return types.SimpleNamespace(vms=vms, log=self.lines.append)

    def assert_config_restored(self):
        with open(self.config) as f:
            self.assertEqual(f.read(), CONFIG)
        self.assertEqual(stat.S_IMODE(os.stat(self.config).st_mode), 0o600)
        with open(os.path.join(self.state, "cluster_scale")) as f:
            self.assertEqual(f.read(), "4")

    def test_one_patch_the_new_value_read_back_converged_and_back(self):
        result = {}
        out = converge.run(self.lab(), result)
        self.assertIs(result["converge"], out)
        self.assertTrue(out["ok"], out)
        self.assertEqual((out["node"], out["setting"], out["old"], out["new"]), ("db-a", "db.op_timeout_scale", 4, 5))
        p = out["plan"]
        self.assertEqual((p["changing_steps"], p["actions"], p["patch_actions"]), (["db.cluster.resources"], 3, 1))
        self.assertEqual((out["apply"]["exit"], out["apply"]["changed_steps"], out["apply"]["actions"]),
                         (0, ["db.cluster.resources"], 3))
        self.assertEqual(out["read_back"], {"op": "mysqld monitor 20s", "before_s": 120, "after_s": 150})
        self.assertEqual(out["ops_changed"], 17)
        self.assertTrue(out["converged_after"])
        self.assertEqual(out["restore"]["apply"]["changed_steps"], ["db.cluster.resources"])
        self.assertTrue(out["restore"]["cib_as_before"])
        self.assert_config_restored()
        for leaf in ("cib-before-converge.xml", "cib-after-converge.xml", "cib-restored.xml", "hainit-converge.log",
                     "hainit-converge-restore.log"):
            self.assertTrue(os.path.exists(os.path.join(self.vm_dir, leaf)), leaf)
        self.assertRegex(self.lines[-1], r"^db-a: db.op_timeout_scale changed on the converged leader: 4 -> 5: plan "
                                         r"1 changing step \(db.cluster.resources\), 3 action\(s\), 1 patch; apply")

    def failed(self, mode, msg):
        result = {}
        with self.assertRaisesRegex(common.LabError, msg):
            converge.run(self.lab(mode), result)
        out = result["converge"]
        self.assertFalse(out["ok"])
        self.assertIn("FAILED", self.lines[-1])
        self.assert_config_restored()
        return out

    def test_a_plan_with_another_step_fails_the_check_and_the_config_goes_back(self):
        out = self.failed("extra-step", r"^db.op_timeout_scale changed on db-a: plan should change only "
                                        r"db.cluster.resources with one cibadmin --patch; it changes db.packages, "
                                        r"db.cluster.resources with 1 patch")
        self.assertNotIn("apply", out)
        self.assertEqual(out["restore"]["apply"]["changed_steps"], [])  # nothing was applied: nothing to undo
        self.assertTrue(out["restore"]["cib_as_before"])

    def test_an_apply_that_leaves_the_cib_as_it_was_fails_the_check(self):
        out = self.failed("apply-noop", r"the CIB after apply: drbd_wpcluster demote 0s: timeout 360 s -> 360 s, "
                                        r"want 450.0 s")
        self.assertEqual(out["apply"]["changed_steps"], ["db.cluster.resources"])

    def test_an_apply_that_touches_anything_else_fails_the_check_and_the_restore(self):
        out = self.failed("touch-constraint", r"resources or constraints changed beyond operation timeouts.*"
                                              r"restoring the original config: the CIB after restoring differs")
        self.assertFalse(out["restore"]["cib_as_before"])

    def test_a_config_that_is_not_the_labs_is_not_touched(self):
        with open(self.config, "a") as f:
            f.write("# edited by hand\n")
        result = {}
        with self.assertRaisesRegex(common.LabError, r"is not the config the lab gave it"):
            converge.run(self.lab(), result)
        self.assertNotIn("restore", result["converge"])
        with open(self.config) as f:
            self.assertTrue(f.read().endswith("# edited by hand\n"))


def result_with(conv):
    return {"run_id": "t", "run_dir": "/tmp/t", "started": "now", "ok": True, "seconds": 1, "settings": {},
            "scenarios": [], "converge": conv}


PASSED = {"node": "db-a", "setting": "db.op_timeout_scale", "old": 4, "new": 5,
          "plan": {"changing_steps": ["db.cluster.resources"], "actions": 3, "patch_actions": 1, "seconds": 16.2,
                   "why": "Pacemaker 2.1 line, 17 change(s) | in one transaction"},
          "apply": {"exit": 0, "seconds": 21.37, "steps": 3, "actions": 3, "changed_steps": ["db.cluster.resources"],
                    "slowest_steps_s": {}},
          "read_back": {"op": "mysqld monitor 20s", "before_s": 120, "after_s": 150}, "ops_changed": 17,
          "converged_after": True,
          "restore": {"apply": {"exit": 0, "seconds": 19.5, "steps": 3, "actions": 3,
                                "changed_steps": ["db.cluster.resources"]}, "cib_as_before": True},
          "ok": True}


class Report(unittest.TestCase):
    def test_the_section_and_the_target_row(self):
        r = result_with(PASSED)
        md = reports.markdown(r)
        self.assertIn("## A changed setting on the running cluster: `db.op_timeout_scale` on db-a", md)
        self.assertIn("| setting in /etc/hainit/hainit.yaml | 4 -> 5 |", md)
        self.assertIn("| `plan`: actions, of them `cibadmin --patch` | 3, 1 |", md)
        self.assertIn("| `plan`: the patch | Pacemaker 2.1 line, 17 change(s) \\| in one transaction |", md)
        self.assertIn("| `apply`: seconds, actions, steps changed | 21.37, 3, db.cluster.resources |", md)
        self.assertIn("| `cibadmin --query`: mysqld monitor 20s timeout | 120 s -> 150 s (17 timeouts scaled) |", md)
        self.assertIn("| `plan` after apply | converged |", md)
        self.assertIn("| original config back: apply seconds, CIB as before | 19.5, yes |", md)
        self.assertIn("| a changed db.op_timeout_scale on the converged db leader | one patch, the new value in the "
                      "CIB, converged after | 4 -> 5: 1 patch, applied in 21.37 s; mysqld monitor 20s timeout "
                      "120 s -> 150 s in the CIB | yes |", md)
        self.assertEqual(r["figures"]["converge_apply_s"], 21.37)

    def test_a_failed_check_says_why(self):
        conv = {"node": "db-a", "setting": "db.op_timeout_scale", "old": 4, "new": 5, "ok": False,
                "error": "plan should change only db.cluster.resources",
                "restore": {"error": "restoring the original config: boom"}}
        md = reports.markdown(result_with(conv))
        self.assertIn("**Failed**: `plan should change only db.cluster.resources; restoring the original config: "
                      "boom`", md)
        self.assertIn("| failed: plan should change only db.cluster.resources; restoring the original config: boom "
                      "| **no** |", md)

    def test_no_check_no_section(self):
        md = reports.markdown(result_with(None))
        self.assertNotIn("changed setting", md)


if __name__ == "__main__":
    unittest.main()
