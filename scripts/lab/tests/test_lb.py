"""The load balancer emulator: Azure probe semantics (pure) and its data path in real namespaces."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lb  # noqa: E402
from rootcheck import need_root, stop_started  # noqa: E402

LB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lb.py")


class ProbeThreshold(unittest.TestCase):
    def test_starts_down_and_needs_threshold_successes(self):
        b = lb.Backend("10.0.0.1", 2)
        self.assertFalse(b.healthy)
        self.assertFalse(b.observe(True))
        self.assertTrue(b.observe(True))
        self.assertTrue(b.healthy)

    def test_threshold_failures_in_a_row_take_it_out(self):
        b = lb.Backend("10.0.0.1", 3)
        for _ in range(3):
            b.observe(True)
        self.assertTrue(b.healthy)
        # A success in between resets the count: flapping does not take it out.
        for ok in (False, False, True, False, False):
            self.assertFalse(b.observe(ok))
        self.assertTrue(b.healthy)
        self.assertTrue(b.observe(False))
        self.assertFalse(b.healthy)

    def test_threshold_one_follows_every_probe(self):
        b = lb.Backend("10.0.0.1", 1)
        self.assertEqual([b.observe(ok) for ok in (True, True, False, True)], [True, False, True, True])


class Rules(unittest.TestCase):
    def test_no_healthy_backend_drops_new_flows(self):
        self.assertIn("tcp dport 3306 drop", lb.nft_rules("lb_ilb", "10.0.1.10", 3306, []))

    def test_one_backend_gets_every_new_flow(self):
        r = lb.nft_rules("lb_ilb", "10.0.1.10", 3306, ["10.0.1.5"])
        self.assertTrue(r.startswith("flush chain ip hlab lb_ilb\n"))
        self.assertIn("ip daddr 10.0.1.10 tcp dport 3306 dnat to 10.0.1.5\n", r)

    def test_several_backends_share_by_5_tuple_hash(self):
        r = lb.nft_rules("lb_plb", "10.0.3.10", 80, ["10.0.2.4", "10.0.2.5"])
        self.assertIn("jhash ip saddr . tcp sport . ip daddr . tcp dport mod 2 map { 0 : 10.0.2.4, 1 : 10.0.2.5 }", r)

    def test_probe_specs(self):
        self.assertEqual(lb.parse_probe("tcp:62500"), ("tcp", 62500, None))
        self.assertEqual(lb.parse_probe("http:80/healthz"), ("http", 80, "/healthz"))
        for bad in ("udp:53", "tcp:x", "http:/x", "62500"):
            with self.assertRaises(ValueError):
                lb.parse_probe(bad)


SERVER = r"""
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port)); s.listen(16)
def serve(c, peer):
    # Answer every line with this backend's name and the client address it sees.
    f = c.makefile("rw")
    for _ in f:
        f.write("%s %s\n" % (name, peer[0])); f.flush()
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"""


class DataPath(unittest.TestCase):
    """lb.py in a namespace with two backend namespaces: rotation, flow stickiness, source address."""

    def setUp(self):
        need_root('LB data-path test', ("ip", "nft"))
        self.tag = "hlt%d" % os.getpid()
        self.lbns, self.procs, self.nss = self.tag + "-lb", [], []
        self.addCleanup(self.teardown)
        self.ns(self.lbns)
        self.nx(self.lbns, "ip", "link", "set", "lo", "up")
        self.nx(self.lbns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self.nx(self.lbns, "ip", "addr", "add", "10.9.8.1/32", "dev", "lo")   # the client
        self.nx(self.lbns, "ip", "addr", "add", lb.PROBE_SOURCE + "/32", "dev", "lo")
        from labkit import net
        subprocess.run(["ip", "netns", "exec", self.lbns, "nft", "-f", "-"], input=net.NFT_BASE, text=True,
                       check=True)
        self.backends = {}
        for i, name in ((1, "a"), (2, "b")):
            ns = "%s-%s" % (self.tag, name)
            self.ns(ns)
            lb_if, be_if = "v%s%s" % (self.tag[-5:], name), "eth0"
            subprocess.run(["ip", "link", "add", lb_if, "netns", self.lbns, "type", "veth", "peer", "name", be_if,
                            "netns", ns], check=True)
            self.nx(self.lbns, "ip", "addr", "add", "10.9.%d.1/24" % i, "dev", lb_if)
            self.nx(self.lbns, "ip", "link", "set", lb_if, "up")
            for args in (("link", "set", "lo", "up"), ("link", "set", be_if, "up"),
                         ("addr", "add", "10.9.%d.2/24" % i, "dev", be_if),
                         ("route", "add", "default", "via", "10.9.%d.1" % i)):
                self.nx(ns, "ip", *args)
            if name == "a":  # the frontend: routed, not local, so clients leave from 10.9.8.1
                self.nx(self.lbns, "ip", "route", "add", "10.9.9.10/32", "dev", lb_if, "src", "10.9.8.1")
            self.backends[name] = {"ns": ns, "ip": "10.9.%d.2" % i,
                                   "svc": self.spawn(ns, name, 7000), "probe": self.spawn(ns, name, 7001)}
        self.events = os.path.join("/tmp", self.tag + "-events.jsonl")
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.lbns, sys.executable, LB, "--name", "ilb", "--frontend", "10.9.9.10:7000",
             "--backend", "10.9.1.2", "--backend", "10.9.2.2", "--probe", "tcp:7001", "--interval", "0.3",
             "--threshold", "2", "--events", self.events], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def ns(self, name):
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.nss.append(name)

    def nx(self, ns, *argv):
        subprocess.run(["ip", "netns", "exec", ns] + list(argv), check=True)

    def spawn(self, ns, name, port):
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, name, str(port)])
        self.procs.append(p)
        return p

    def teardown(self):
        stop_started(self.procs, self.nss)
        if os.path.exists(getattr(self, "events", "")):
            os.unlink(self.events)

    def client(self, lines=1, keep=None):
        """New connection to the frontend from the LB namespace; the backend's answers."""
        code = ("import socket,sys\ns=socket.create_connection(('10.9.9.10',7000),timeout=2)\n"
                "f=s.makefile('rw')\nfor _ in range(%d):\n f.write('x\\n');f.flush();print(f.readline().strip())\n"
                % lines)
        r = subprocess.run(["ip", "netns", "exec", self.lbns, sys.executable, "-c", code], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.split("\n")[0] if r.returncode == 0 else None

    def wait_rotation(self, healthy, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not os.path.exists(self.events):
                time.sleep(0.1)
                continue
            with open(self.events) as f:
                rot = [e for e in map(json.loads, f) if e["event"] == "rotation"]
            if rot and sorted(rot[-1]["healthy"]) == sorted(healthy):
                return
            time.sleep(0.1)
        with open(self.events) as f:
            self.fail("rotation never became %s:\n%s" % (healthy, f.read()[-1500:]))

    def test_new_flows_follow_the_probes_and_keep_the_client_address(self):
        self.wait_rotation(["10.9.1.2", "10.9.2.2"])
        served = {self.client() for _ in range(24)}
        self.assertEqual({s.split()[0] for s in served if s}, {"a", "b"}, "both backends get new flows")
        self.assertEqual({s.split()[1] for s in served if s}, {"10.9.8.1"}, "no SNAT: the client's address")

        # An open flow to b survives b leaving the rotation (Azure: established flows continue).
        ns_lb = ["ip", "netns", "exec", self.lbns, sys.executable, "-c"]
        sticky = subprocess.Popen(ns_lb + [
            "import socket,time\n"
            "while True:\n"
            " s=socket.create_connection(('10.9.9.10',7000),timeout=2);f=s.makefile('rw');f.write('x\\n');f.flush()\n"
            " if f.readline().startswith('b'): break\n"
            "print('on-b',flush=True)\nimport sys;sys.stdin.readline()\n"
            "f.write('x\\n');f.flush();print(f.readline().strip(),flush=True)\n"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(sticky)
        self.assertEqual(sticky.stdout.readline().strip(), "on-b")
        self.backends["b"]["probe"].kill()
        self.wait_rotation(["10.9.1.2"])
        self.assertEqual({self.client().split()[0] for _ in range(12)}, {"a"}, "new flows only to healthy a")
        sticky.stdin.write("go\n")
        sticky.stdin.flush()
        self.assertTrue(sticky.stdout.readline().startswith("b "), "the established flow stayed on b")

        self.backends["a"]["probe"].kill()
        self.wait_rotation([])
        self.assertIsNone(self.client(), "no healthy backend: new flows are dropped")
        self.backends["b"]["probe"] = self.spawn(self.backends["b"]["ns"], "b", 7001)
        self.wait_rotation(["10.9.2.2"])
        self.assertEqual(self.client().split()[0], "b")
        with open(self.events) as f:
            kinds = [e["event"] for e in map(json.loads, f)]
        self.assertEqual(kinds[0], "start")
        self.assertIn("down", kinds)
        self.assertGreaterEqual(kinds.count("up"), 3)


if __name__ == "__main__":
    unittest.main()
