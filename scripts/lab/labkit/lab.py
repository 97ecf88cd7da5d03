"""The lab of one run: run directory, network, VMs, load balancers, and cleanup by id.

Everything a run starts is recorded in RUN/pids.json (pid + what) and stopped by that pid (checked
against its command line, which contains the run directory or namespace) when the run ends, fails
or is interrupted; `lab.py clean` does the same for runs whose orchestrator died.
"""

import json
import os
import secrets
import signal
import subprocess
import threading
import time

from . import arm, common, lab_backend, net, nfs, topology
from .vm import VM, VmSpec

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# The hainit the lab image bakes in (make build): it also derives the web tier's secrets.
HAINIT = os.environ.get("LAB_HAINIT", os.path.join(REPO, "target", "x86_64-unknown-linux-musl", "release", "hainit"))
LB_SCRIPT = os.path.join(REPO, "scripts", "lab", "lb.py")
CLIENT_SCRIPT = os.path.join(REPO, "scripts", "lab", "client.py")
SBD_DISK_MIB = 16


def env_int(name, default):
    return int(os.environ.get(name, default))


# hainit's failover timing profiles (db.timing_profile; src/roles/db/timing.rs, which
# tests/it/lab.rs checks these against): the lab needs them for its waits before any cluster runs.
TIMING_PROFILES = {
    "azure": {"token_ms": 30000, "consensus_ms": 36000, "fence_delay_s": 15},
    "fast": {"token_ms": 5000, "consensus_ms": 6000, "fence_delay_s": 5},
}


class Settings:
    """Every knob of a run (environment LAB_*), recorded in the report."""

    def __init__(self):
        self.db_mem = env_int("LAB_DB_MEM_MIB", 1536)
        self.web_mem = env_int("LAB_WEB_MEM_MIB", 1024)
        # pcsd, pcs and the cluster stack are the busiest guests; under emulation a second vCPU
        # lets them use both host cores while the web VMs wait.
        self.db_vcpus = env_int("LAB_DB_VCPUS", 2)
        self.data_disk_mib = env_int("LAB_DATA_DISK_MIB", 512)
        # The db pair's failover timing (LAB_TIMING_PROFILE, hainit's db.timing_profile): `fast`
        # (token 5 s with azure-events-az) or `azure` (Microsoft's token 30 s, hainit's default).
        # LAB_TOKEN_MS replaces the profile's token (db.token_ms).
        self.timing_profile = os.environ.get("LAB_TIMING_PROFILE", "fast")
        if self.timing_profile not in TIMING_PROFILES:
            raise common.LabError("LAB_TIMING_PROFILE=%s: %s" % (self.timing_profile, " or ".join(TIMING_PROFILES)))
        profile = TIMING_PROFILES[self.timing_profile]
        self.token_override = "LAB_TOKEN_MS" in os.environ
        self.token_ms = env_int("LAB_TOKEN_MS", profile["token_ms"])
        self.consensus_ms = self.token_ms // 5 * 6 if self.token_override else profile["consensus_ms"]
        self.probe_interval = float(os.environ.get("LAB_PROBE_INTERVAL", "5"))
        self.probe_threshold = env_int("LAB_PROBE_THRESHOLD", 2)
        self.probe_port = 62500
        # Every Pacemaker op timeout x this (hainit's db.op_timeout_scale): under emulation a
        # DRBD monitor can take longer than its 20 s, and each timeout restarts the database.
        self.op_timeout_scale = env_int("LAB_OP_TIMEOUT_SCALE", 4)
        # How long every VM's first boot may take after ssh is up (hainit.service finished).
        # Under emulation on a 2-core machine the db pair has needed 35-45 min.
        self.converge_timeout = env_int("LAB_CONVERGE_SECS", 4200)
        # The whole run's time, bring-up and scenarios (0: unbounded). CI sets it to what is left
        # of its hour, so a slow machine ends with the lab's own report and cleanup, not a kill.
        self.budget_secs = env_int("LAB_BUDGET_SECS", 0)
        self.accel = os.environ.get("LAB_ACCEL", "auto")
        # How the db pair fences. `arm`: hainit's default on Azure (db.stonith auto, the VM has a
        # managed identity): fence_azure_arm powers the peer off through the lab's emulated ARM
        # (arm.py). `sbd`: db.stonith sbd, a disk shared by the db VMs (RUN/sbd.raw). `off`: no
        # STONITH (nothing but DRBD stands between a cut link and two primaries).
        self.stonith = os.environ.get("LAB_STONITH", "arm")
        if self.stonith not in ("arm", "sbd", "off"):
            raise common.LabError("LAB_STONITH=%s: arm, sbd or off" % self.stonith)
        # sbd watchdog timeout (msgwait = 2x): guests under emulation stall up to ~14 s, so the
        # 5 s of a real host would reset healthy nodes.
        self.sbd_watchdog_secs = env_int("LAB_SBD_WATCHDOG_SECS", 30)
        # Set by hainit's timing profile with stonith (not a knob): the node running the promoted
        # DRBD wins a fence race; a failover of the primary waits it.
        self.priority_fencing_delay_s = profile["fence_delay_s"] if self.stonith != "off" else None

    def fence_wait_s(self):
        """The longest a fence may take once a loss is detected: the priority delay, and with sbd the
        poison pill's msgwait (2 x watchdog); None without STONITH."""
        if self.stonith == "off":
            return None
        return self.priority_fencing_delay_s + (2 * self.sbd_watchdog_secs if self.stonith == "sbd" else 0)

    def as_dict(self):
        return dict(self.__dict__)


def wp_admin(secret):
    """(user, password) of WordPress's admin: hainit's default admin_user and derived password."""
    return "wpadmin", common.derive(secret, "wordpress-admin")


class Lab:
    def __init__(self, settings):
        self.settings = settings
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        self.run_dir = os.path.join(common.RUNS, self.run_id)
        os.makedirs(os.path.join(self.run_dir, "vms"), exist_ok=True)
        self.log = common.Log(os.path.join(self.run_dir, "lab.log"))
        self.net = net.LabNet(self.run_id, self.log)
        self.image = os.path.realpath(os.path.join(common.CACHE, "images", "current"))
        self.ssh_key = os.path.join(common.CACHE, "id_lab")
        self.fake_imds = os.path.join(REPO, "target", "release", "examples", "fake-imds")
        self.accel_args = ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"]
        self.tracked = []
        self.lbs = {}
        self.nfs = None
        self.vms = {}
        self.rss_peak_kib = 0
        self.sampler_stop = threading.Event()
        threading.Thread(target=self.sample_rss, daemon=True).start()
        threading.Thread(target=self.watch_vms, daemon=True).start()
        # What the drill talks to (drill.py; the Azure drill has its own backend).
        self.backend = lab_backend.LabBackend(self)
        self.arm = None
        if settings.stonith == "arm":
            self.arm = arm.Arm(self.arm_socket(), lambda: dict(self.vms),
                               os.path.join(self.run_dir, "arm.jsonl")).start()
        self.secret = secrets.token_hex(24)
        common.write_private(os.path.join(self.run_dir, "secret"), self.secret + "\n")
        # Web VMs get only these (cloud-init/web.yaml), never the shared secret.
        self.web_secrets = topology.web_secrets(HAINIT, self.secret)
        # What `lab.py clean`/`down` stop this run by: its orchestrator, namespace and host link.
        self.meta = {"pid": os.getpid(), "netns": self.net.ns, "run_dir": self.run_dir,
                     "host_link": self.net.host_link, "host_ns": None, "kept": False}
        common.write_json(os.path.join(self.run_dir, "lab.json"), self.meta)

    # ---- bookkeeping ---------------------------------------------------------------------
    def track(self, pid, what):
        self.tracked.append({"pid": pid, "what": what})
        common.write_json(os.path.join(self.run_dir, "pids.json"), self.tracked)

    def derive(self, purpose):
        """hainit's secret derivation, for the drill's logins."""
        return common.derive(self.secret, purpose)

    def wp_admin(self):
        return wp_admin(self.secret)

    def net_tap(self, name, role):
        return net.tap_name(name) if self.net.has_tap(name) else self.net.add_tap(name, role)

    def sample_rss(self):
        """Peak of the summed resident memory of all running VMs (the RAM budget is for all VMs)."""
        while not self.sampler_stop.wait(5):
            total = 0
            for vm in list(self.vms.values()):
                pid = vm.pid()
                try:
                    with open("/proc/%d/status" % pid) as f:
                        total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
                except (TypeError, OSError, StopIteration, ValueError):
                    pass
            self.rss_peak_kib = max(self.rss_peak_kib, total)

    def watch_vms(self):
        """Every second: a VM whose qemu exited without the lab stopping it was fenced; log when."""
        while not self.sampler_stop.wait(1):
            now = time.time()
            for vm in list(self.vms.values()):
                if vm.note_exit(now):
                    self.log("%s: qemu exited at %s and the lab did not stop it: fenced (%s)"
                             % (vm.name, time.strftime("%H:%M:%S", time.localtime(now)),
                                "powered off through ARM" if self.settings.stonith == "arm" else "sbd reset the guest"))

    def peak_rss_mib(self):
        return round(self.rss_peak_kib / 1024)

    # ---- topology ------------------------------------------------------------------------
    def specs(self):
        return topology.specs(self.settings)

    def hosts(self):
        return topology.hosts(self.settings)

    def arm_socket(self):
        return arm.socket_path(self.run_dir)

    def sbd_disk(self):
        """RUN/sbd.raw: the db VMs' shared SBD disk, created zeroed once per run (a replaced VM gets
        the same one, as on Azure where the shared disk outlives the VM); None without sbd."""
        if self.settings.stonith != "sbd":
            return None
        path = os.path.join(self.run_dir, "sbd.raw")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.truncate(SBD_DISK_MIB * 1024 * 1024)
        return path

    def config_yaml(self, role):
        """What a VM of `role` gets as its custom-data config."""
        return topology.config_for(role, self.settings, self.secret, self.web_secrets)

    def create_vm(self, spec, fresh_disk=True):
        vm = VM(spec, self)
        old = self.vms.get(spec.name)
        if old is not None:
            vm.generation = old.generation
        vm.prepare(self.hosts(), self.config_yaml(spec.role))
        if not fresh_disk and old is not None:
            raise common.LabError("create_vm: reuse of disks is not supported")
        self.vms[spec.name] = vm
        return vm

    def replace_vm(self, name, with_extra_disk=False):
        """Retire VM `name` (must be off) and create a fresh one with the same tags, blank disks."""
        old = self.vms[name]
        if old.running():
            raise common.LabError("replace_vm: %s still runs" % name)
        old.retire()
        spec = old.spec
        if not with_extra_disk:
            spec = VmSpec(spec.name, spec.role, spec.index, spec.ip, spec.gateway, spec.mem_mib, spec.tags,
                          spec.data_disk_mib, 0, spec.vcpus)
        vm = VM(spec, self)
        vm.generation = old.generation
        vm.prepare(self.hosts(), self.config_yaml(spec.role))
        self.vms[name] = vm
        return vm

    # ---- load balancers ------------------------------------------------------------------
    def start_lbs(self):
        s = self.settings
        dbs = [sp.ip for sp in self.specs() if sp.role == "db"]
        webs = [sp.ip for sp in self.specs() if sp.role == "web"]
        common_args = ["--interval", str(s.probe_interval), "--threshold", str(s.probe_threshold)]
        self.start_lb("ilb", ["--frontend", net.VIP + ":3306", "--probe", "tcp:%d" % s.probe_port] +
                      sum([["--backend", ip] for ip in dbs], []) + common_args)
        self.start_lb("plb", ["--frontend", net.PUBLIC_VIP + ":80", "--probe", "http:80/healthz"] +
                      sum([["--backend", ip] for ip in webs], []) + common_args)
        # The how-to's internal LB: a TCP probe on 3306 (measured beside ours, forwards nothing).
        self.start_lb("ilb3306", ["--frontend", net.VIP + ":3306", "--probe", "tcp:3306", "--shadow"] +
                      sum([["--backend", ip] for ip in dbs], []) + common_args)

    def start_lb(self, name, args):
        events = os.path.join(self.run_dir, "lb-%s.jsonl" % name)
        out = open(os.path.join(self.run_dir, "lb-%s.log" % name), "a")
        # Each long-lived process in a session of its own (here and in vm.py): a stack that make lab
        # keeps up must not get the SIGHUP of the terminal make ran in; the lab stops them by pid.
        proc = subprocess.Popen(self.net.cmd(["python3", LB_SCRIPT, "--name", name, "--events", events] + args),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.track(proc.pid, "lb " + name)
        self.lbs[name] = (proc, events)

    # ---- shared storage --------------------------------------------------------------------
    def start_nfs(self):
        """The web tier's share (Azure Files NFS on Azure): nfs.py."""
        self.nfs = nfs.Nfs(self)
        self.nfs.start()

    def lb_events(self, name, since=0.0):
        with open(self.lbs[name][1]) as f:
            return [e for e in map(json.loads, f) if e["t"] >= since]

    def after_step(self):
        """Steps (drill.Steps) call this after each step."""
        self.check_lbs()

    def check_lbs(self):
        """The lab's own emulations of Azure (load balancers, the NFS share) still run."""
        for name, (proc, _) in self.lbs.items():
            if proc.poll() is not None:
                raise common.LabError("load balancer %s exited %s; see %s/lb-%s.log"
                                      % (name, proc.returncode, self.run_dir, name))
        if self.nfs is not None:
            self.nfs.check()

    # ---- drill clients -------------------------------------------------------------------
    def client(self, args, timeout):
        user, password = self.wp_admin()
        env = dict(os.environ, HLAB_WP_USER=user, HLAB_WP_PASSWORD=password)
        r = common.run(self.net.cmd(["python3", CLIENT_SCRIPT] + args), check=False, timeout=timeout + 60,
                       env=env, log=self.log)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise common.LabError("client %s: %s" % (args[0], (r.stderr or r.stdout)[-400:]))

    def vip_defaults(self):
        path = os.path.join(self.run_dir, "vip-client.cnf")
        if not os.path.exists(path):
            common.write_private(path, "[client]\nuser=wordpress\npassword=%s\ndatabase=wordpress\n"
                                 % self.derive("wordpress-db"))
        return path

    # ---- cleanup -------------------------------------------------------------------------
    def cleanup(self):
        self.sampler_stop.set()
        if self.arm is not None:
            self.arm.stop()
        for name, (proc, _) in self.lbs.items():
            if proc.poll() is None:
                proc.terminate()
        if self.nfs is not None:
            self.nfs.stop()
        for vm in self.vms.values():
            vm.stopped_by_lab = True
            pid = vm.pid()
            if pid is not None and vm.running():
                os.kill(pid, signal.SIGKILL)
            vm.stop_master()
            vm.stop_imds()
        deadline = time.time() + 20
        for entry in self.tracked:
            while common.pid_alive(entry["pid"]) and time.time() < deadline:
                time.sleep(0.2)
            if common.pid_alive(entry["pid"]):
                self.log("cleanup: %s (pid %d) still alive after SIGTERM/SIGKILL" % (entry["what"], entry["pid"]))
        self.net.down()
