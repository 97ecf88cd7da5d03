"""Fencing through the lab's emulated ARM: the API (labkit/arm.py), the lab's fence_azure_arm run as
Pacemaker's fencer runs it (key=value on stdin) against that API over its unix socket, and what a db
VM gets for it (the guestfwd to the API, a managed identity in its IMDS, `stonith: auto`)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import arm, imds, topology  # noqa: E402
from labkit.vm import ARM_ADDR, VM  # noqa: E402
from test_sbd import FakeLab, settings  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
AGENT = os.path.join(REPO, "images", "lab", "guest", "usr", "sbin", "fence_azure_arm")
SUB, RG = imds.SUBSCRIPTION, imds.RESOURCE_GROUP
VMS = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines" % (SUB, RG)
AUTH = {"Authorization": "Bearer fake-token"}


class FakeVM:
    def __init__(self, name, running=True):
        self.name, self.on, self.cuts = name, running, 0

    def running(self):
        return self.on

    def power_cut_by_arm(self):
        was, self.on = self.on, False
        self.cuts += 1
        return was


class Api(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.vms = {"db-a": FakeVM("db-a"), "db-b": FakeVM("db-b")}
        self.arm = arm.Arm(os.path.join(self.dir, "arm.sock"), lambda: self.vms, os.path.join(self.dir, "arm.jsonl"))

    def test_a_token_is_required(self):
        for headers in ({}, {"Authorization": "Basic x"}, {"Authorization": "Bearer "}):
            self.assertEqual(self.arm.handle("GET", VMS, headers)[0], 401, headers)
        self.assertEqual(self.vms["db-b"].cuts, 0)

    def test_unknown_subscription_group_or_vm_is_404_and_powers_nothing_off(self):
        for path, code in ((VMS.replace(SUB, "0000"), "SubscriptionNotFound"),
                           (VMS.replace(RG, "rg-other"), "ResourceGroupNotFound"),
                           (VMS + "/db-c/powerOff", "ResourceNotFound")):
            status, body = self.arm.handle("POST" if path.endswith("powerOff") else "GET", path, AUTH)
            self.assertEqual((status, body["error"]["code"]), (404, code), path)
        self.assertEqual([v.cuts for v in self.vms.values()], [0, 0])

    def test_power_state_power_off_and_start(self):
        view = lambda: self.arm.handle("GET", VMS + "/db-b/instanceView?api-version=2022-08-01", AUTH)  # noqa: E731
        self.assertEqual(view(), (200, {"statuses": [{"code": "ProvisioningState/succeeded"},
                                                     {"code": "PowerState/running"}]}))
        self.assertEqual(self.arm.handle("POST", VMS + "/DB-B/powerOff?skipShutdown=true", AUTH)[0], 202)
        self.assertEqual((self.vms["db-b"].cuts, self.vms["db-a"].cuts), (1, 0))
        self.assertIn({"code": "PowerState/stopped"}, view()[1]["statuses"])
        self.assertEqual(self.arm.handle("POST", VMS + "/db-b/start", AUTH),
                         (202, {"op": "start", "vm": "db-b", "running": False}))
        self.assertEqual(self.arm.handle("GET", VMS, AUTH)[1]["value"][1]["name"], "db-b")


class ImdsToken(BaseHTTPRequestHandler):
    """The token endpoint and compute fields of a VM with a managed identity."""

    def do_GET(self):
        if self.headers.get("Metadata") != "true":
            self.send_error(400)
            return
        if self.path.startswith("/metadata/identity/oauth2/token"):
            body = json.dumps({"access_token": "fake-token", "token_type": "Bearer"})
        elif self.path.startswith("/metadata/instance/compute/subscriptionId"):
            body = SUB
        elif self.path.startswith("/metadata/instance/compute/resourceGroupName"):
            body = RG
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_):
        pass


class Agent(unittest.TestCase):
    """images/lab/guest/usr/sbin/fence_azure_arm against the emulated ARM (unix socket) and a token
    endpoint on 127.0.0.1."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.vms = {"db-a": FakeVM("db-a"), "db-b": FakeVM("db-b")}
        self.arm = arm.Arm(os.path.join(self.dir, "arm.sock"), lambda: self.vms,
                           os.path.join(self.dir, "arm.jsonl")).start()
        self.addCleanup(self.arm.stop)
        self.imds = ThreadingHTTPServer(("127.0.0.1", 0), ImdsToken)
        threading.Thread(target=self.imds.serve_forever, daemon=True).start()
        self.addCleanup(self.imds.server_close)
        self.addCleanup(self.imds.shutdown)
        self.distrib = os.path.join(self.dir, "distrib")
        with open(self.distrib, "w") as f:
            f.write("#!/bin/sh\necho \"distrib $*\"\n")
        os.chmod(self.distrib, 0o755)

    def agent(self, stdin=None, args=()):
        env = dict(os.environ, HLAB_ARM_URL="http://arm.lab", HLAB_ARM_UNIX_SOCKET=self.arm.socket_path,
                   HLAB_IMDS_URL="http://127.0.0.1:%d" % self.imds.server_address[1], HLAB_FENCE_DISTRIB=self.distrib)
        return subprocess.run([AGENT] + list(args), input=stdin or "", capture_output=True, text=True, env=env,
                              timeout=60)

    def fencer(self, action, plug="db-b", **extra):
        """The stdin Pacemaker's fencer writes for hainit's device (pcs stonith create ... msi=true ...)."""
        params = dict(action=action, port=plug, msi="true", subscriptionId=SUB, resourceGroup=RG,
                      power_timeout="5", pcmk_host_map="db-a:db-a;db-b:db-b", nodename=plug)
        params.update(extra)
        return self.agent("".join("%s=%s\n" % kv for kv in params.items() if kv[1] is not None))

    def test_reboot_powers_the_vm_off_and_asks_for_its_start(self):
        r = self.fencer("reboot")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Success: Rebooted", r.stdout)
        self.assertEqual((self.vms["db-b"].on, self.vms["db-b"].cuts, self.vms["db-a"].cuts), (False, 1, 0))
        posts = [e["path"].split("?")[0].rsplit("/", 1)[1] for e in self.arm.events if e["method"] == "POST"]
        self.assertEqual(posts, ["powerOff", "start"])
        self.assertEqual({e["caller"] for e in self.arm.events}, {os.uname().nodename})
        self.assertEqual([p[2:] for p in self.arm.power_offs()], [("db-b", True)])

    def test_reboot_of_a_dead_vm_does_not_power_it_off_again(self):
        self.vms["db-b"].on = False
        r = self.fencer("reboot")
        self.assertEqual((r.returncode, self.vms["db-b"].cuts), (0, 0), r.stderr)

    def test_status_off_and_on(self):
        self.assertEqual((self.fencer("status").returncode, self.fencer("status").stdout.strip()), (0, "Status: ON"))
        r = self.fencer("off")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "Success: Powered OFF"), r.stderr)
        r = self.fencer("status")
        self.assertEqual((r.returncode, r.stdout.strip()), (2, "Status: OFF"))
        self.assertEqual(self.fencer("off").stdout.strip(), "Success: Already OFF")
        self.assertEqual(self.vms["db-b"].cuts, 1)
        # The lab powers VMs on itself: an `on` that never sees the VM run fails after power_timeout.
        r = self.fencer("on", power_timeout="2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("did not power on within 2s", r.stderr)

    def test_a_wrong_resource_group_or_vm_name_fails_and_powers_nothing_off(self):
        for extra in ({"resourceGroup": "rg-wrong"}, {"port": "vm-db-b"}):
            r = self.fencer("reboot", **extra)
            self.assertEqual(r.returncode, 1, extra)
            self.assertIn("HTTP 404", r.stderr)
        self.assertEqual([v.cuts for v in self.vms.values()], [0, 0])

    def test_missing_subscription_and_group_come_from_imds(self):
        r = self.fencer("off", subscriptionId=None, resourceGroup=None)
        self.assertEqual((r.returncode, self.vms["db-b"].cuts), (0, 1), r.stderr)

    def test_without_msi_nothing_is_called(self):
        r = self.fencer("reboot", msi=None)
        self.assertEqual(r.returncode, 1)
        self.assertIn("msi", r.stderr)
        self.assertEqual(self.arm.events, [])

    def test_command_line_list_monitor_and_metadata(self):
        r = self.agent(args=["--msi", "--resourceGroup=" + RG, "--subscriptionId=" + SUB, "-o", "list"])
        self.assertEqual((r.returncode, r.stdout.split()), (0, ["db-a,", "db-b,"]), r.stderr)
        r = self.agent(args=["--msi", "--resourceGroup", RG, "--subscriptionId", SUB, "--action", "monitor"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.agent("action=metadata\n").stdout.strip(), "distrib -o metadata")
        self.assertEqual([v.cuts for v in self.vms.values()], [0, 0])


class DbVms(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def netdev(self, lab, spec):
        argv = VM(spec, lab).qemu_argv()
        return next(argv[i + 1] for i, a in enumerate(argv) if a == "-netdev" and argv[i + 1].startswith("user,"))

    def test_db_vms_reach_the_api_web_vms_and_other_modes_do_not(self):
        arm_lab = FakeLab(self.dir, settings(LAB_STONITH="arm"))
        fwd = "guestfwd=tcp:%s-cmd:socat STDIO UNIX-CONNECT:%s" % (ARM_ADDR, os.path.join(self.dir, "arm.sock"))
        for spec in topology.specs(arm_lab.settings):
            self.assertEqual(fwd in self.netdev(arm_lab, spec).split(","), spec.role == "db", spec.name)
        for mode in ("sbd", "off"):
            lab = FakeLab(self.dir, settings(LAB_STONITH=mode))
            self.assertNotIn(ARM_ADDR, self.netdev(lab, topology.specs(lab.settings)[0]), mode)

    def test_a_managed_identity_only_for_db_vms_fencing_through_arm(self):
        started = []

        class Net:
            def cmd(self, argv):
                return argv

        for mode in ("arm", "sbd"):
            lab = FakeLab(self.dir, settings(LAB_STONITH=mode))
            lab.net, lab.track = Net(), lambda pid, what: None
            for spec in topology.specs(lab.settings):
                vm = VM(spec, lab)
                os.makedirs(vm.dir, exist_ok=True)
                with mock.patch("subprocess.Popen") as popen:
                    vm.start_imds()
                started.append((mode, spec.role, "--identity" in popen.call_args[0][0]))
        self.assertEqual(sorted(set(started)), [("arm", "db", True), ("arm", "web", False),
                                                ("sbd", "db", False), ("sbd", "web", False)])

    def test_config_is_azure_default_fencing(self):
        text = topology.config_yaml(settings(LAB_STONITH="arm"), "s3cret")
        self.assertIn("  stonith: auto\n", text)
        self.assertNotIn("sbd", text)


if __name__ == "__main__":
    unittest.main()
