"""make lab's kept stack and make lab-down, without VMs: the host link (net.expose) carries
http://10.0.3.10/ from the host through the emulated public LB to a web node and back, the keeper
answers ARM, and `lab.py down` stops every recorded process, the namespace and the host link.
A namespace of the test's own stands in for the host, so the machine's routes are never touched."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import arm, common, imds, net  # noqa: E402
from rootcheck import need_root, stop_started  # noqa: E402

LAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB_PY = os.path.join(LAB, "lab.py")
LB_PY = os.path.join(LAB, "lb.py")
WEB_IP = net.WEB_SUBNET + ".4"

# A web node: /healthz for the LB's probe, the front page naming the client address it sees.
WEB = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (b"ok" if self.path == "/healthz" else
                ("<title>hainit lab</title> web-1 saw %s" % self.client_address[0]).encode())
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *_): pass
http.server.HTTPServer(("0.0.0.0", 80), H).serve_forever()
"""


class KeptStack(unittest.TestCase):
    def setUp(self):
        need_root('kept-stack test', ("ip", "nft", "curl"))
        self.procs, self.nss, self.tracked = [], [], []
        self.addCleanup(self.teardown)
        self.runs = tempfile.mkdtemp(prefix="hlt-runs-")
        # "t" is not a hex digit: no real run's namespace (hlab-<4 hex>) can have this name.
        run_id = "20260101-000000-t%03x" % (os.getpid() & 0xfff)
        self.run_dir = os.path.join(self.runs, run_id)
        os.makedirs(os.path.join(self.run_dir, "vms", "db-a"))
        self.host = "hlt%d-host" % os.getpid()
        self.ns(self.host)
        subprocess.run(["ip", "-n", self.host, "link", "set", "lo", "up"], check=True)

        self.net = net.LabNet(run_id, common.Log(os.path.join(self.run_dir, "lab.log")))
        self.nss.append(self.net.ns)
        self.addCleanup(self.net.log.file.close)
        self.net.up()
        self.net.expose(self.host)

        web = "hlt%d-web" % os.getpid()
        self.ns(web)
        port = "vw%d" % os.getpid()
        subprocess.run(["ip", "link", "add", port[:15], "netns", self.net.ns, "type", "veth", "peer", "name", "eth0",
                        "netns", web], check=True)
        self.net.ip("link", "set", port[:15], "master", "br-web")
        self.net.ip("link", "set", port[:15], "up")
        for args in (("link", "set", "lo", "up"), ("link", "set", "eth0", "up"),
                     ("addr", "add", WEB_IP + "/24", "dev", "eth0"),
                     ("route", "add", "default", "via", net.BRIDGES["web"][1])):
            subprocess.run(["ip", "-n", web] + list(args), check=True)

        env = dict(os.environ, LAB_RUNS=self.runs)
        self.web = self.spawn("web node", ["ip", "netns", "exec", web, sys.executable, "-c", WEB, self.run_dir])
        self.lb = self.spawn("lb plb", self.net.cmd([
            sys.executable, LB_PY, "--name", "plb", "--events", os.path.join(self.run_dir, "lb-plb.jsonl"),
            "--frontend", net.PUBLIC_VIP + ":80", "--backend", WEB_IP, "--probe", "http:80/healthz",
            "--interval", "0.3", "--threshold", "1"]))
        # db-a's "qemu": a process whose command line holds its VM directory, as qemu's does.
        self.qemu = self.spawn("qemu db-a", [sys.executable, "-c", "import time; time.sleep(600)",
                                             os.path.join(self.run_dir, "vms", "db-a")])
        with open(os.path.join(self.run_dir, "vms", "db-a", "qemu.pid"), "w") as f:
            f.write("%d\n" % self.qemu.pid)
        self.keeper = self.spawn("keeper (ARM)", [sys.executable, LAB_PY, "keep", self.run_dir], env=env)

        gone = subprocess.Popen(["true"])
        gone.wait()
        common.write_json(os.path.join(self.run_dir, "pids.json"),
                          [{"pid": p.pid, "what": what} for what, p in self.tracked])
        common.write_json(os.path.join(self.run_dir, "lab.json"),
                          {"pid": gone.pid, "netns": self.net.ns, "run_dir": self.run_dir,
                           "host_link": self.net.host_link, "host_ns": self.host, "kept": True})
        self.env = env

    def ns(self, name):
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.nss.append(name)

    def spawn(self, what, argv, env=None):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.procs.append(p)
        self.tracked.append((what, p))
        return p

    def teardown(self):
        stop_started(self.procs, self.nss)
        shutil.rmtree(self.runs, ignore_errors=True)

    def in_host(self, argv, **kw):
        return subprocess.run(["ip", "netns", "exec", self.host] + argv, capture_output=True, text=True, **kw)

    def host_view(self):
        code = "import json,sys; sys.path.insert(0,%r)\nfrom labkit import kept\nprint(json.dumps(kept.host_view()))" % LAB
        r = self.in_host([sys.executable, "-c", code], timeout=120)
        return json.loads(r.stdout)

    def arm(self, method, path):
        url = "http://arm/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines%s" % (
            imds.SUBSCRIPTION, imds.RESOURCE_GROUP, path)
        r = subprocess.run(["curl", "-sS", "--unix-socket", arm.socket_path(self.run_dir), "-X", method,
                            "-H", "Authorization: Bearer t", url], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def down(self):
        return subprocess.run([sys.executable, LAB_PY, "down"], capture_output=True, text=True, env=self.env,
                              timeout=120)

    def test_the_host_reaches_the_public_lb_only_and_down_removes_everything(self):
        route = subprocess.run(["ip", "-n", self.host, "route", "show", net.PUBLIC_VIP + "/32"],
                               capture_output=True, text=True).stdout
        self.assertIn("dev %s" % self.net.host_link, route)
        self.assertIn("src %s" % net.HOST_IP, route)
        for private in (WEB_IP, net.VIP):
            self.assertNotEqual(self.in_host(["ip", "route", "get", private]).returncode, 0,
                                "%s must not be routed from the host" % private)

        deadline = time.time() + 20
        view = self.host_view()
        while not view["ok"] and time.time() < deadline:
            time.sleep(0.5)
            view = self.host_view()
        self.assertTrue(view["ok"], view)
        page = self.in_host(["curl", "-sS", "--max-time", "10", "http://%s/" % net.PUBLIC_VIP]).stdout
        self.assertEqual(page, "<title>hainit lab</title> web-1 saw %s" % net.HOST_IP, "through the LB, no SNAT")

        with self.assertRaises(common.LabError) as e:
            net.LabNet("20260101-000000-tfff", self.net.log).expose(self.host)
        self.assertIn("make lab-down", str(e.exception))

        deadline = time.time() + 20
        while not os.path.exists(arm.socket_path(self.run_dir)) and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual([v["name"] for v in self.arm("GET", "")["value"]], ["db-a"])
        self.assertEqual(self.arm("POST", "/db-a/powerOff")["powered_off"], True, "the keeper fences")
        self.qemu.wait(10)

        r = self.down()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for what in ("keeper (ARM) (pid %d)" % self.keeper.pid, "lb plb (pid %d)" % self.lb.pid,
                     "web node (pid %d)" % self.web.pid, "namespace " + self.net.ns):
            self.assertIn(what, r.stdout)
        self.assertIn("done, nothing of it is left", r.stdout)
        for p in (self.keeper, self.lb, self.web):
            p.wait(10)
        self.assertNotIn(self.net.ns, subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                     text=True).stdout.split())
        self.assertNotEqual(subprocess.run(["ip", "-n", self.host, "link", "show", self.net.host_link],
                                           capture_output=True).returncode, 0)
        self.assertEqual(subprocess.run(["ip", "-n", self.host, "route", "show", net.PUBLIC_VIP + "/32"],
                                        capture_output=True, text=True).stdout, "")
        self.assertFalse(self.host_view()["ok"])

        again = self.down()
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertIn("no stack was up", again.stdout)



class ADeadRunSharingALiveRunsNamespace(unittest.TestCase):
    """A namespace name holds 4 hex digits of the run id: an old run can share it with a live one."""

    def setUp(self):
        need_root('kept-stack test', ("ip", "nft", "curl"))
        self.runs = tempfile.mkdtemp(prefix="hlt-runs-")
        self.ns = "hlab-u%03x" % (os.getpid() & 0xfff)
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        # The live run's orchestrator: a process whose command line names lab.py.
        self.live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "lab.py", self.ns])
        gone = subprocess.Popen(["true"])
        gone.wait()
        self.addCleanup(self.teardown)
        for run_id, pid in (("20250101-000000-old", gone.pid), ("20260101-000000-live", self.live.pid)):
            run_dir = os.path.join(self.runs, run_id)
            os.makedirs(run_dir)
            common.write_json(os.path.join(run_dir, "pids.json"), [{"pid": self.live.pid, "what": "qemu"}])
            common.write_json(os.path.join(run_dir, "lab.json"), {"pid": pid, "netns": self.ns, "run_dir": run_dir})

    def teardown(self):
        self.live.kill()
        self.live.wait(10)
        subprocess.run(["ip", "netns", "del", self.ns], check=False, capture_output=True)
        shutil.rmtree(self.runs, ignore_errors=True)

    def test_down_leaves_the_live_runs_namespace_and_processes_alone(self):
        r = subprocess.run([sys.executable, LAB_PY, "down"], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, LAB_RUNS=self.runs))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("a run in progress is not touched: 20260101-000000-live", r.stdout)
        self.assertIn(self.ns, subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
        self.assertIsNone(self.live.poll())


if __name__ == "__main__":
    unittest.main()
