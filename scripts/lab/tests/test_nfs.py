"""The lab's NFS share (labkit/nfs.py): nfs-ganesha in a run's own namespace, at the web subnet's
share address, answers NFS version 4 calls there, and stops by its own pid (lab clean finds it by
the run directory on its command line)."""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import common, net, nfs  # noqa: E402


class FakeLab:
    """What Nfs needs of a Lab: a run directory, the run's network, a log and the pid ledger."""

    def __init__(self, run_dir, run_id):
        self.run_dir = run_dir
        self.log = common.Log(os.path.join(run_dir, "lab.log"))
        self.net = net.LabNet(run_id, self.log)
        self.tracked = []

    def track(self, pid, what):
        self.tracked.append({"pid": pid, "what": what})


def nfs4_null(ip, port=2049, timeout=5.0):
    """One ONC RPC call of NFS version 4's NULL procedure over TCP; True when it is accepted."""
    xid = os.getpid() & 0xffffffff
    # xid, CALL, RPC version 2, program 100003 (NFS), version 4, procedure 0, AUTH_NONE cred and verifier
    call = struct.pack(">IIIIIIIIII", xid, 0, 2, 100003, 4, 0, 0, 0, 0, 0)
    s = socket.create_connection((ip, port), timeout)
    try:
        s.sendall(struct.pack(">I", 0x80000000 | len(call)) + call)  # one record, last fragment
        data = b""
        while len(data) < 4 + 24:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    got_xid, msg_type, reply_stat, _flavor, verf_len = struct.unpack(">IIIII", data[4:24])
    accept_stat = struct.unpack(">I", data[24 + verf_len:28 + verf_len])[0]
    return got_xid == xid and msg_type == 1 and reply_stat == 0 and accept_stat == 0


def in_namespace(ns, code):
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True, text=True)


class Share(unittest.TestCase):
    def test_the_config_exports_nfs4_only_at_the_share_address(self):
        text = nfs.config("/run/x/export", "/run/x/recovery")
        for line in ("Bind_Addr = %s;" % nfs.NFS_IP, "Protocols = 4;", "Pseudo = %s;" % nfs.EXPORT_PATH,
                     "Squash = No_Root_Squash;", "Minor_Versions = 1, 2;", "Path = /run/x/export;"):
            self.assertIn(line, text)
        self.assertEqual(nfs.SOURCE, "10.0.2.200:/hainit/wpcontent")
        self.assertEqual(nfs.NFS_IP.rsplit(".", 1)[0], net.WEB_SUBNET, "an address of the web subnet")

    def test_ganesha_serves_nfs4_in_the_runs_namespace_and_stops_by_its_pid(self):
        missing = [t for t in ("ip", "nft", "ganesha.nfsd") if shutil.which(t) is None]
        if os.geteuid() != 0 or missing:
            self.skipTest("needs root, ip, nft and nfs-ganesha (%s): NOT RUN" % (", ".join(missing) or "not root"))
        run_dir = tempfile.mkdtemp(prefix="hainit-nfs-test-")
        self.addCleanup(shutil.rmtree, run_dir, True)
        lab = FakeLab(run_dir, "test-n%x" % os.getpid())
        self.addCleanup(lab.log.file.close)
        self.addCleanup(lab.net.down)
        lab.net.up()
        share = nfs.Nfs(lab)
        self.addCleanup(share.stop)
        share.start()
        pid = share.proc.pid
        self.assertEqual(lab.tracked, [{"pid": pid, "what": "nfs-ganesha"}])
        self.assertTrue(common.pid_alive(pid, run_dir), "lab clean finds it by the run directory")
        r = in_namespace(lab.net.ns, "import sys; sys.path.insert(0, %r); import test_nfs; "
                                     "print(test_nfs.nfs4_null(%r))" % (os.path.dirname(__file__), nfs.NFS_IP))
        self.assertEqual(r.stdout.strip(), "True", r.stderr)
        # Only there: not on the namespace's other addresses.
        r = in_namespace(lab.net.ns, "import socket; socket.create_connection((%r, 2049), 2)" % net.CLIENT_IP)
        self.assertNotEqual(r.returncode, 0, "ganesha listens on the client address too")
        share.stop()
        self.assertFalse(common.pid_alive(pid), "stopped by its pid")


if __name__ == "__main__":
    unittest.main()
