"""SBD fencing in the lab: the shared disk on the db VMs' qemu command line, the config keys, fenced-VM
detection, the breakdown's fencing mark, the split-brain verdict and the report's fencing fields."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import reports  # noqa: E402
from labkit import failover, splitbrain, topology  # noqa: E402
from labkit.lab import SBD_DISK_MIB, Lab, Settings  # noqa: E402
from labkit.vm import VM  # noqa: E402


def settings(**env):
    with mock.patch.dict(os.environ, env):
        return Settings()


class FakeLab:
    """What VM needs of a Lab, with the real Lab.sbd_disk and Lab.arm_socket."""

    sbd_disk = Lab.sbd_disk
    arm_socket = Lab.arm_socket

    def __init__(self, run_dir, s):
        self.run_dir, self.settings = run_dir, s
        self.image = "/nonexistent/image"
        self.accel_args = ["-accel", "tcg"]
        self.fake_imds = "/bin/fake-imds"

    def net_tap(self, name, role):
        return "tap-" + name


def drive_files(argv):
    """file= of every -drive, and the -device value that uses drive id `sbd`."""
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    sbd = [d for d in drives if ",id=sbd," in d]
    return drives, sbd, [d for d in devices if "drive=sbd" in d]


class SharedDisk(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def vm(self, lab, spec, generation=0):
        v = VM(spec, lab)
        v.generation = generation
        v.dir = os.path.join(self.dir, "vms", spec.name + ("" if not generation else ".new"))
        return v

    def test_db_vms_and_a_replacement_share_one_disk_web_vms_have_none(self):
        s = settings(LAB_STONITH="sbd")
        lab = FakeLab(self.dir, s)
        specs = {sp.name: sp for sp in topology.specs(s)}
        argvs = {n: self.vm(lab, specs[n]).qemu_argv() for n in ("db-a", "db-b", "web-1", "web-2")}
        argvs["db-b replacement"] = self.vm(lab, specs["db-b"], generation=1).qemu_argv()
        files = set()
        for name in ("db-a", "db-b", "db-b replacement"):
            _, sbd, dev = drive_files(argvs[name])
            self.assertEqual(len(sbd), 1, name)
            self.assertIn("format=raw,cache=none,aio=threads,file.locking=off", sbd[0])
            self.assertEqual(len(dev), 1, name)
            self.assertIn("share-rw=on", dev[0])
            self.assertIn("serial=hainit-sbd", dev[0])
            # Pinned last: unpinned, qemu puts it before the if=virtio disks and it becomes /dev/vda.
            self.assertIn("addr=0x10", dev[0])
            files.add(sbd[0].split("file=", 1)[1].split(",", 1)[0])
        self.assertEqual(files, {os.path.join(self.dir, "sbd.raw")})
        self.assertEqual(os.path.getsize(os.path.join(self.dir, "sbd.raw")), SBD_DISK_MIB * 1024 * 1024)
        for name in ("web-1", "web-2"):
            drives, sbd, dev = drive_files(argvs[name])
            self.assertEqual((sbd, dev), ([], []), name)
            self.assertFalse(any("sbd" in d for d in drives), name)

    def test_the_disk_is_created_once_per_run(self):
        lab = FakeLab(self.dir, settings(LAB_STONITH="sbd"))
        path = lab.sbd_disk()
        with open(path, "r+b") as f:
            f.write(b"SBD header")
        self.assertEqual(lab.sbd_disk(), path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(10), b"SBD header", "a second VM must not blank the header")

    def test_stonith_off_attaches_no_disk(self):
        lab = FakeLab(self.dir, settings(LAB_STONITH="off"))
        spec = topology.specs(lab.settings)[0]
        self.assertEqual(drive_files(self.vm(lab, spec).qemu_argv())[1:], ([], []))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "sbd.raw")))


def section(yaml_text, name):
    """Lines of a top-level section of the lab's config."""
    out, inside = [], False
    for line in yaml_text.splitlines():
        if line and not line.startswith(" "):
            inside = line.startswith(name + ":")
            continue
        if inside:
            out.append(line.strip())
    return out


class ConfigKeys(unittest.TestCase):
    def test_sbd_keys_in_the_db_section_only(self):
        text = topology.config_yaml(settings(LAB_STONITH="sbd", LAB_SBD_WATCHDOG_SECS="30"), "s3cret")
        db = section(text, "db")
        self.assertIn("stonith: sbd", db)
        self.assertIn("sbd_device: /dev/disk/by-id/virtio-hainit-sbd", db)
        self.assertIn("sbd_watchdog_timeout_secs: 30", db)
        self.assertFalse([l for l in section(text, "web") if "sbd" in l or "stonith" in l])
        self.assertEqual(text.count("sbd_device"), 1)

    def test_watchdog_knob(self):
        text = topology.config_yaml(settings(LAB_STONITH="sbd", LAB_SBD_WATCHDOG_SECS="45"), "s3cret")
        self.assertIn("sbd_watchdog_timeout_secs: 45", section(text, "db"))

    def test_off_has_no_sbd_keys(self):
        text = topology.config_yaml(settings(LAB_STONITH="off"), "s3cret")
        self.assertIn('stonith: "off"', section(text, "db"))
        self.assertNotIn("sbd", text)

    def test_default_is_arm_and_a_bad_value_is_refused(self):
        with mock.patch.dict(os.environ):
            os.environ.pop("LAB_STONITH", None)
            os.environ.pop("LAB_SBD_WATCHDOG_SECS", None)
            os.environ.pop("LAB_TIMING_PROFILE", None)
            s = Settings()
        # The fast timing profile's 5 s priority delay (hainit's timing.rs), Azure's 15 s.
        self.assertEqual((s.stonith, s.sbd_watchdog_secs, s.priority_fencing_delay_s), ("arm", 30, 5))
        self.assertEqual(s.fence_wait_s(), 5)
        self.assertEqual(settings(LAB_TIMING_PROFILE="azure").fence_wait_s(), 15)
        self.assertEqual(settings(LAB_STONITH="sbd", LAB_SBD_WATCHDOG_SECS="30").fence_wait_s(), 65)
        self.assertIsNone(settings(LAB_STONITH="off").fence_wait_s())
        with self.assertRaises(Exception):
            settings(LAB_STONITH="fence_azure_arm")


class FencedDetection(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        lab = FakeLab(self.dir, settings(LAB_STONITH="sbd"))
        self.vm = VM(topology.specs(lab.settings)[0], lab)
        os.makedirs(self.vm.dir)

    def fake_qemu(self):
        """A process whose command line holds the VM's directory (what VM.running checks), as started."""
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", self.vm.dir])
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait()))
        with open(self.vm.path("qemu.pid"), "w") as f:
            f.write("%d\n" % proc.pid)
        self.vm.started_at, self.vm.stopped_by_lab, self.vm.was_running = 1.0, False, True
        # /proc/PID/cmdline can read empty for a moment after exec on this kernel.
        deadline = time.time() + 10
        while not self.vm.running() and time.time() < deadline:
            time.sleep(0.01)
        return proc

    def test_never_started_is_not_fenced(self):
        self.assertFalse(self.vm.fenced())

    def test_running_is_not_fenced(self):
        self.fake_qemu()
        self.assertTrue(self.vm.running())
        self.assertFalse(self.vm.fenced())
        self.assertFalse(self.vm.note_exit(5.0))

    def test_exit_on_its_own_is_fenced_and_noted_once(self):
        proc = self.fake_qemu()
        os.kill(proc.pid, signal.SIGKILL)  # as if the guest reset and qemu (-no-reboot) exited
        proc.wait()
        self.assertTrue(self.vm.fenced())
        self.assertTrue(self.vm.note_exit(7.0))
        self.assertEqual(self.vm.exited_at, 7.0)
        self.assertFalse(self.vm.note_exit(8.0), "one exit, one note")
        self.assertEqual(self.vm.exited_at, 7.0)

    def test_killed_by_the_lab_is_not_fenced(self):
        proc = self.fake_qemu()
        with mock.patch("labkit.vm.common.wait_until", lambda pred, *a, **k: proc.wait()):
            self.vm.hard_kill()
        self.assertFalse(self.vm.fenced())
        self.assertFalse(self.vm.note_exit(9.0))


ENTRIES = [
    (99.0, "pacemaker-fenced", "Operation 'reboot' targeting db-a by db-b for pacemaker-controld.1@db-b: OK"),
    (100.0, "corosync", "[QUORUM] Members[1]: 2"),
    (104.0, "pacemaker-fenced", "Requesting peer fencing (reboot) targeting db-a"),
    (106.0, "pacemaker-fenced", "Operation 'reboot' targeting db-b by db-a for pacemaker-controld.9@db-a: OK"),
    (108.0, "pacemaker-fenced", "Operation 'reboot' [2345] targeting db-a using fence_sbd returned 1"),
    (181.5, "pacemaker-fenced", "Operation 'reboot' [2346] targeting db-a using fence_sbd returned 0"),
    (182.0, "pacemaker-fenced",
     "Operation 'reboot' targeting db-a by db-b for pacemaker-controld.1153@db-b: OK (complete)"),
    (190.0, "pacemaker-controld", "Result of promote operation for drbd_wp on db-b: ok"),
]


class FencedMark(unittest.TestCase):
    def test_marks_from_sample_journal_lines(self):
        marks = failover.journal_marks(ENTRIES, {"drbd": {"drbd_wp"}}, 100.0, "db-a")
        # The line before the kill, db-b as target and the failed attempt do not count.
        self.assertEqual(marks, {"detected": 100.0, "fence_requested": 104.0, "fenced": 181.5, "promoted": 190.0})

    def test_without_a_killed_name_there_is_no_fencing_mark(self):
        self.assertNotIn("fenced", failover.journal_marks(ENTRIES, {}, 100.0))

    def test_other_shapes_of_the_result(self):
        for line in ("Operation 'reboot' targeting db-a by db-b for pacemaker-controld.7@db-b: OK",
                     "Operation reboot of db-a by db-b for crmd.1234@db-b.5d8e: OK",
                     "Operation 'off' [77] (call 2 from pacemaker-controld.5) for host 'db-a' with device "
                     "'fence_sbd' returned: 0 (OK)",
                     "Peer db-a was terminated (reboot) by db-b on behalf of pacemaker-controld.5: OK"):
            marks = failover.journal_marks([(150.0, "pacemaker-fenced", line)], {}, 100.0, "db-a")
            self.assertEqual(marks.get("fenced"), 150.0, line)
        for line in ("Operation 'reboot' targeting db-ab by db-b for x@db-b: OK",
                     "Operation 'reboot' targeting db-a by db-b for x@db-b: Timed Out",
                     "Peer db-a was terminated (reboot) by db-b on behalf of x: Error"):
            marks = failover.journal_marks([(150.0, "pacemaker-fenced", line)], {}, 100.0, "db-a")
            self.assertNotIn("fenced", marks, line)

    def test_the_request_in_each_shape(self):
        for line in ("Requesting fencing (reboot) targeting node db-a",
                     "Requesting fencing (reboot) of node db-a",
                     "Client pacemaker-controld.1234 wants to fence (reboot) 'db-a' using any device"):
            marks = failover.journal_marks([(150.0, "pacemaker-controld", line)], {}, 100.0, "db-a")
            self.assertEqual(marks.get("fence_requested"), 150.0, line)
        marks = failover.journal_marks([(150.0, "x", "Requesting fencing (reboot) targeting node db-ab")], {}, 100.0,
                                       "db-a")
        self.assertNotIn("fence_requested", marks)

    def test_stages_follow_the_order_marks_happened_in(self):
        # The fast profile starts the probe listener before MariaDB.
        stages = failover.stages_of({"filesystem": 30.0, "mariadb": 41.0, "probe_listener": 31.5, "first_write": 42.0})
        self.assertEqual(list(stages), ["kill->filesystem", "filesystem->probe_listener", "probe_listener->mariadb",
                                        "mariadb->first_write"])
        self.assertEqual(stages["probe_listener->mariadb"], 9.5)

    def test_operation_start_and_result_from_the_controller(self):
        entries = [(120.0, "pacemaker-controld", "Initiating promote operation drbd_wp:1_promote_0 locally on db-b"),
                   (121.0, "pacemaker-controld", "Initiating start operation fs_db_start_0 locally on db-b"),
                   (126.5, "pacemaker-controld", "Result of promote operation for drbd_wp on db-b: ok"),
                   (127.0, "pacemaker-controld", "Initiating start operation fs_db_start_0 locally on db-b"),
                   (131.0, "pacemaker-controld", "Result of start operation for fs_db on db-b: ok")]
        ops = failover.op_times(entries, {"drbd": {"drbd_wp"}, "Filesystem": {"fs_db"}, "mysql": {"mysqld"}}, 100.0)
        self.assertEqual(ops, {"promoted": {"started": 120.0, "done": 126.5},
                               "filesystem": {"started": 121.0, "done": 131.0}})

    def test_the_timing_the_cluster_runs_with(self):
        text = ("runtime.config.totem.token (u32) = 5000\nruntime.config.totem.consensus (u32) = 6000\n5s\n")
        self.assertEqual(failover.parse_timing(text),
                         {"token_ms": 5000, "consensus_ms": 6000, "priority_fencing_delay": "5s"})
        self.assertEqual(failover.parse_timing("Can't get key runtime.config.totem.token. Error CS_ERR_NOT_EXIST\n"), {})
        self.assertEqual(failover.delay_seconds("15s"), 15)
        self.assertEqual(failover.delay_seconds("5000ms"), 5.0)
        self.assertIsNone(failover.delay_seconds("soon"))

    def test_fence_round_trip_leaves_out_the_priority_delay(self):
        rel = {"detected": 11.0, "fence_requested": 11.4, "arm_power_off": 19.0, "fenced": 20.1}
        self.assertEqual(failover.fence_round_trip(rel, "5s"),
                         {"requested_to_fenced_s": 8.7, "priority_fencing_delay_s": 5, "agent_round_trip_s": 3.7,
                          "requested_to_arm_power_off_s": 7.6})
        self.assertEqual(failover.fence_round_trip(rel, None), {"requested_to_fenced_s": 8.7,
                                                                "requested_to_arm_power_off_s": 7.6})
        self.assertIsNone(failover.fence_round_trip({"detected": 11.0, "fenced": 20.1}, "5s"))

    def test_stage_table_gains_detected_to_fenced(self):
        stages = failover.stages_of({"detected": 12.0, "fenced": 90.5, "promoted": 95.0, "first_write": 120.0})
        self.assertEqual(list(stages), ["kill->detected", "detected->fenced", "fenced->promoted",
                                        "promoted->first_write"])
        self.assertEqual(stages["detected->fenced"], 78.5)


def w(t, node, ok=True, ack=None):
    return {"t": t, "t_ack": t + 0.2 if ack is None else ack, "ok": ok, "served_by": node}


class SplitBrainVerdict(unittest.TestCase):
    def test_the_cut_is_settled_once_the_survivor_serves_after_the_fence(self):
        writes = [{"ok": True, "t": 100.0 + k, "t_ack": 100.2 + k, "served_by": "db-b"} for k in range(20)]
        self.assertFalse(splitbrain.fence_settled([], writes), "nobody fenced yet")
        self.assertTrue(splitbrain.fence_settled([105.0], writes))
        self.assertFalse(splitbrain.fence_settled([112.0], writes), "only 8 writes after the fence")
        failed = [dict(w, ok=False) for w in writes]
        self.assertFalse(splitbrain.fence_settled([90.0], failed), "failed attempts are not served writes")

    def test_failover_after_fencing_is_not_two_primaries(self):
        writes = [w(1, "db-a"), w(2, "db-a"), w(80, "db-b"), w(81, "db-b")]
        self.assertEqual(splitbrain.concurrent_servers(writes), [])

    def test_interleaved_servers_are_two_primaries(self):
        writes = [w(1, "db-a"), w(2, "db-b"), w(3, "db-a")]
        self.assertEqual(splitbrain.concurrent_servers(writes), ["db-a", "db-b"])

    def test_longest_gap_is_the_freeze(self):
        writes = [w(9.0, "db-a"), w(10.5, "db-a", ack=85.0), w(85.5, "db-a"), w(20, "db-a", ok=False)]
        self.assertEqual(splitbrain.longest_gap(writes, 10.0), {"seconds": 75.8, "from_s": -0.8, "to_s": 75.0})
        self.assertIsNone(splitbrain.longest_gap([], 10.0))

    def test_a_fenced_node_is_down_in_the_samples(self):
        fenced = [{"db-a": {"drbd": "Connected Primary/Secondary UpToDate/UpToDate"},
                   "db-b": {"drbd": "down (fenced)"}}]
        self.assertFalse(splitbrain.two_primaries(fenced, ["db-a", "db-b"]))
        both = [{"db-a": {"drbd": "StandAlone Primary/Unknown UpToDate/DUnknown"},
                 "db-b": {"drbd": "WFConnection Primary/Unknown UpToDate/DUnknown"}}]
        self.assertTrue(splitbrain.two_primaries(both, ["db-a", "db-b"]))

    def test_sbd_verdict_is_strict(self):
        v = {"stonith": "sbd", "acked_writes_missing_after_heal": 0, "split_brain_detected_by_drbd": False,
             "pair_healthy_after_heal": True, "final": "ok"}
        self.assertEqual(splitbrain.failures(v, []), [])
        self.assertEqual(len(splitbrain.failures(dict(v, acked_writes_missing_after_heal=2,
                                                      split_brain_detected_by_drbd=True), [])), 1)
        self.assertEqual(len(splitbrain.failures(dict(v, acked_writes_missing_after_heal="unknown (x)"), [])), 1)
        self.assertEqual(len(splitbrain.failures(dict(v, pair_healthy_after_heal=False), [])), 1)
        self.assertEqual(len(splitbrain.failures(v, ["db-a", "db-b"])), 1)
        # Without STONITH a detected split brain waiting for an operator is loud, not a failure.
        off = dict(v, stonith="off", acked_writes_missing_after_heal=2, split_brain_detected_by_drbd=True,
                   pair_healthy_after_heal=False)
        self.assertEqual(splitbrain.failures(off, []), [])


class ReportFencing(unittest.TestCase):
    def test_report_renders_the_fencing_fields(self):
        s = settings(LAB_STONITH="sbd", LAB_SBD_WATCHDOG_SECS="30").as_dict()
        drill = {"name": "drill", "status": "pass", "seconds": 1, "steps": [], "notes": [], "timings": {},
                 "failover": {"marks_s": {"detected": 12.0, "fenced": 90.5, "first_write": 120.0},
                              "stages_s": {"kill->detected": 12.0, "detected->fenced": 78.5,
                                           "fenced->first_write": 29.5}, "total_s": 120.0}}
        sb = {"name": "splitbrain", "status": "pass", "seconds": 2, "steps": [], "notes": [],
              "verdict": {"fenced": ["db-b"], "two_primaries_seen": False},
              "writes": {"longest_gap": {"seconds": 75.8, "from_s": 3.1, "to_s": 78.9}},
              "fencing": {"fenced": [{"vm": "db-b", "qemu_exit": 1700000000.0, "qemu_exit_after_cut_s": 77.2,
                                      "boot_s": 210.4}],
                          "history": {"db-a": "reboot of db-b successful: delegate=db-a"},
                          "fencer_log": {"db-a": ["2026-12-03T10:00:01 db-a pacemaker-fenced[1]: Operation "
                                                  "'reboot' targeting db-b by db-a for x: OK"]}}}
        result = {"run_id": "t", "run_dir": "/tmp/x", "settings": s, "scenarios": [drill, sb], "ok": True,
                  "seconds": 10}
        md = reports.markdown(result)
        self.assertIn("| detected->fenced | 78.5 |", md)
        self.assertIn("STONITH sbd on a disk shared by the db VMs (watchdog 30 s, msgwait 60 s, "
                      "priority-fencing-delay %s s" % s["priority_fencing_delay_s"], md)
        self.assertIn("- fenced: db-b, qemu exited at ", md)
        self.assertIn("(77.2 s after the cut); started again, ssh after 210.4 s", md)
        self.assertIn("I/O freeze): 75.8 s, from 3.1 s to 78.9 s after the cut", md)
        self.assertIn("reboot of db-b successful", md)
        self.assertIn("targeting db-b by db-a", md)
        self.assertNotIn("No fencing result", md)

    def test_missing_fencing_mark_is_said(self):
        s = settings(LAB_STONITH="sbd").as_dict()
        drill = {"name": "drill", "status": "pass", "seconds": 1, "steps": [], "notes": [],
                 "failover": {"marks_s": {"detected": 12.0, "first_write": 40.0}, "stages_s": {}, "total_s": 40.0}}
        result = {"run_id": "t", "run_dir": "/tmp/x", "settings": s, "scenarios": [drill], "ok": False}
        md = reports.markdown(result)
        self.assertIn("No fencing result for the killed node", md)


if __name__ == "__main__":
    unittest.main()
