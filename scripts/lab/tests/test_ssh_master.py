"""The ssh master connection each running VM keeps: commands go through its control socket, and
the lab stops it by its pid whenever the VM goes away (power cut, replacement, cleanup), so no
ssh process outlives its VM and a new VM of the same name never talks to an old master. ssh is
faked: its master holds a control socket file until SIGTERM, as the real one does."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import common, vm as vmmod  # noqa: E402

SSH = """#!/bin/sh
for a in "$@"; do case "$a" in ControlPath=*) ctl="${a#ControlPath=}";; esac; done
case " $* " in
  *" -M "*) trap 'rm -f "$ctl"; exit 0' TERM; : > "$ctl"; while :; do sleep 0.1; done;;
  *) echo "$*" >> "$(dirname "$ctl")/ssh-calls.log";;
esac
"""


class FakeLab:
    def __init__(self, run_dir):
        self.run_dir, self.ssh_key, self.tracked = run_dir, "/nonexistent/id", []
        self.net = type("Net", (), {"cmd": staticmethod(lambda argv: argv)})()
        self.log = None

    def track(self, pid, what):
        self.tracked.append((pid, what))


def alive(pid):
    return common.pid_alive(pid)


class SshMaster(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        bindir = os.path.join(self.tmp.name, "bin")
        os.makedirs(bindir)
        with open(os.path.join(bindir, "ssh"), "w") as f:
            f.write(SSH)
        os.chmod(os.path.join(bindir, "ssh"), 0o755)
        self.path = os.environ["PATH"]
        os.environ["PATH"] = bindir + ":" + self.path
        self.lab = FakeLab(self.tmp.name)
        spec = vmmod.VmSpec("db-a", "db", 1, "10.0.1.4", "10.0.1.1", 512, {})
        self.vm = vmmod.VM(spec, self.lab)
        os.makedirs(self.vm.dir)
        self.socket = self.vm.path(vmmod.CONTROL_SOCKET)

    def tearDown(self):
        os.environ["PATH"] = self.path
        for pid, _ in self.lab.tracked:
            if alive(pid):
                os.kill(pid, 9)
        self.tmp.cleanup()

    def start(self):
        self.vm.start_master()
        master = self.vm.master
        deadline = time.time() + 10
        while not os.path.exists(self.socket):
            self.assertLess(time.time(), deadline, "the master made no control socket")
            time.sleep(0.05)
        self.assertIn((master.pid, "ssh master db-a"), self.lab.tracked)
        return master

    def test_commands_use_the_control_socket(self):
        self.start()
        argv = self.vm.ssh_argv("true")
        self.assertIn("ControlPath=" + self.socket, argv)
        self.assertNotIn("-M", argv)
        subprocess.run(argv, check=True)
        with open(self.vm.path("ssh-calls.log")) as f:
            self.assertIn("ControlPath=%s root@127.0.0.1 true" % self.socket, f.read())

    def test_a_new_master_replaces_the_old_one(self):
        first = self.start()
        second = self.start()
        self.assertNotEqual(first.pid, second.pid)
        self.assertFalse(alive(first.pid), "the first master still runs")

    def test_a_power_cut_stops_the_master(self):
        master = self.start()
        guest = subprocess.Popen(["sh", "-c", "sleep 60; : " + self.vm.dir])
        with open(self.vm.path("qemu.pid"), "w") as f:
            f.write("%d\n" % guest.pid)
        common.wait_until(self.vm.running, 10, "the fake guest", interval=0.05)
        try:
            self.vm.hard_kill()
        finally:
            guest.kill()
            guest.wait()
        self.assertFalse(alive(master.pid), "the master outlived its VM")
        self.assertFalse(os.path.exists(self.socket), "the control socket stayed")
        self.assertIsNone(self.vm.master)

    def test_retiring_the_vm_stops_the_master(self):
        master = self.start()
        self.vm.retire()
        self.assertFalse(alive(master.pid), "the master outlived the retired VM")
        self.assertTrue(os.path.isdir(self.vm.dir + ".1"), "the retired VM's files were not kept")


if __name__ == "__main__":
    unittest.main()
