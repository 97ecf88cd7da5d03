"""One lab VM: qemu from a qcow2 overlay on the lab image, its data disk, its own fake IMDS.

NICs: eth0 is qemu user-mode networking with restrict=on (the guest reaches nothing through it but
169.254.169.254:80, forwarded to this VM's own fake IMDS, on a db VM fencing through ARM
169.254.169.253:80, the lab's emulated ARM (arm.py), and the lab's ssh control path); eth1 is a
tap on the lab bridge of its subnet. Host name, address and /etc/hainit/hainit.yaml reach the
guest as fw_cfg blobs (images/lab/guest). All files live in RUN/vms/NAME; a replaced VM's old
files move to NAME.1, NAME.2 ... so its logs stay.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

from . import common, imds

SSH_BASE_PORT = 2200
IMDS_BASE_PORT = 8000
# Where a db VM reaches the lab's emulated Azure Resource Manager (the lab's fence_azure_arm uses it).
ARM_ADDR = "169.254.169.253:80"
# The shared SBD disk's PCI slot: pinned after every other device. Unpinned, a -device is placed
# before the -drive if=virtio disks (qemu 7.2 gave it slot 2), so it would become /dev/vda and
# the root and data disks would move.
SBD_PCI_ADDR = "0x10"
DATA_PCI_ADDR = "0x0e"
EXTRA_PCI_ADDR = "0x0f"
# images/lab/guest/etc/udev/rules.d/66-hainit-lab-azure-lun.rules links this disk as LUN 0.
LUN0_SERIAL = "hainit-lun0"
# In the VM's directory (a unix socket path: keep RUNS short, under ~90 characters in all).
CONTROL_SOCKET = "ssh.ctl"
# Debian's OVMF (package ovmf): the firmware, read-only, and the template of each VM's variables.
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"


def uefi_args(vars_file):
    """qemu arguments for UEFI firmware with a VM's own variable store."""
    return ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMF_CODE,
            "-drive", "if=pflash,format=raw,unit=1,file=" + vars_file]


class VmSpec:
    def __init__(self, name, role, index, ip, gateway, mem_mib, tags, data_disk_mib=0, extra_disk_mib=0, vcpus=1):
        self.name, self.role, self.index, self.ip, self.gateway = name, role, index, ip, gateway
        self.mem_mib, self.tags, self.vcpus = mem_mib, tags, vcpus
        self.data_disk_mib, self.extra_disk_mib = data_disk_mib, extra_disk_mib


class VM:
    def __init__(self, spec, lab):
        self.spec, self.lab = spec, lab
        self.name = spec.name
        self.dir = os.path.join(lab.run_dir, "vms", spec.name)
        self.imds_proc = None
        self.generation = 0
        self.started_at = None
        # Whether the lab itself stopped this VM (kill, shutdown, cleanup): a qemu that exits
        # without it was reset from inside the guest, i.e. fenced (sbd + -no-reboot).
        self.stopped_by_lab = False
        self.was_running = False
        self.exited_at = None
        # The ssh connection kept open to this VM while it runs (see start_master).
        self.master = None

    # ---- paths -----------------------------------------------------------------------------
    def path(self, leaf):
        return os.path.join(self.dir, leaf)

    @property
    def ssh_port(self):
        return SSH_BASE_PORT + self.spec.index

    @property
    def imds_port(self):
        return IMDS_BASE_PORT + self.spec.index

    def pid(self):
        try:
            with open(self.path("qemu.pid")) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running(self):
        pid = self.pid()
        return pid is not None and common.pid_alive(pid, self.dir)

    # ---- lifecycle -------------------------------------------------------------------------
    def prepare(self, hosts, config_yaml):
        """Fresh disks and seed files (a new VM: blank data disk, same tags)."""
        os.makedirs(self.dir, exist_ok=True)
        img = self.lab.image
        # The OS disk: an overlay of the lab's layer, itself an overlay of the Azure image's VHD.
        common.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    os.path.join(img, "lab.qcow2"), self.path("root.qcow2")])
        # The VM's own UEFI variable store, as every Azure VM has its own NVRAM.
        shutil.copyfile(OVMF_VARS, self.path("ovmf-vars.fd"))
        for leaf, mib in (("data.raw", self.spec.data_disk_mib), ("extra.raw", self.spec.extra_disk_mib)):
            if mib:
                with open(self.path(leaf), "wb") as f:
                    f.truncate(mib * 1024 * 1024)
        s = self.spec
        with open(self.path("net.env"), "w") as f:
            f.write("LAB_HOSTNAME='%s'\nLAB_ADDR='%s/24'\nLAB_GATEWAY='%s'\nLAB_HOSTS='%s'\n"
                    % (s.name, s.ip, s.gateway, ",".join("%s=%s" % kv for kv in hosts)))
        common.write_private(self.path("hainit.yaml"), config_yaml)
        imds.write(self.path("imds.json"), imds.document(s.name, s.ip, s.tags,
                                                         data_disk=bool(s.data_disk_mib),
                                                         vm_id="6c1b9f2e-0d47-4b8a-a3e5-%012x" % (
                                                             s.index * 1000 + self.generation)))

    def retire(self):
        """Move this VM's files aside (its logs stay) so a fresh VM can take the name."""
        self.stop_master()
        self.stop_imds()
        self.generation += 1
        shutil.move(self.dir, "%s.%d" % (self.dir, self.generation))

    def start_imds(self):
        if self.imds_proc and self.imds_proc.poll() is None:
            return
        out = open(self.path("imds.log"), "a")
        # A managed identity (the token endpoint answers) is what makes hainit fence through ARM.
        identity = ["--identity"] if self.fences_through_arm() else []
        self.imds_proc = subprocess.Popen(
            self.lab.net.cmd([self.lab.fake_imds, "--listen", "127.0.0.1:%d" % self.imds_port,
                              "--document", self.path("imds.json")] + identity),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()  # the child has its own
        self.lab.track(self.imds_proc.pid, "fake-imds " + self.name)

    def stop_imds(self):
        common.stop_process(self.imds_proc)

    def fences_through_arm(self):
        return self.spec.role == "db" and self.lab.settings.stonith == "arm"

    def qemu_argv(self):
        s = self.spec
        n = s.index
        argv = ["qemu-system-x86_64", "-name", s.name] + self.lab.accel_args + [
            "-machine", "pc", "-smp", str(s.vcpus), "-m", str(s.mem_mib), "-nodefaults", "-display", "none",
            "-no-reboot", "-daemonize", "-pidfile", self.path("qemu.pid"),
            # As Azure boots a generation 2 VM: UEFI firmware, then the image's own boot loader.
        ] + uefi_args(self.path("ovmf-vars.fd")) + [
            # writeback (the default): guest flushes reach the host file, so a killed VM's disks
            # are what a power cut leaves, not qemu's lost caches.
            "-drive", "file=%s,if=virtio,format=qcow2,cache=writeback,discard=unmap" % self.path("root.qcow2"),
        ]
        # Pinned after the root disk and before SBD, so they stay /dev/vdb and /dev/vdc. The data
        # disk's serial is what the image's udev rule names /dev/disk/azure/scsi1/lun0, as
        # WALinuxAgent's rule names Azure's data disk LUN 0: hainit takes LUN 0 or nothing.
        for leaf, addr, serial in (("data.raw", DATA_PCI_ADDR, ",serial=" + LUN0_SERIAL),
                                   ("extra.raw", EXTRA_PCI_ADDR, "")):
            if os.path.exists(self.path(leaf)):
                name = leaf.split(".")[0]
                argv += ["-drive", "file=%s,if=none,id=%s,format=raw,cache=none,aio=threads" % (self.path(leaf), name),
                         "-device", "virtio-blk-pci,drive=%s%s,addr=%s" % (name, serial, addr)]
        sbd = self.lab.sbd_disk() if s.role == "db" else None
        if sbd:
            # One file for every db VM: share-rw and no image locking let two qemus open it
            # read-write, cache=none makes each write reach the file the other VM reads.
            argv += ["-drive", "file=%s,if=none,id=sbd,format=raw,cache=none,aio=threads,file.locking=off" % sbd,
                     "-device", "virtio-blk-pci,drive=sbd,serial=hainit-sbd,share-rw=on,addr=%s" % SBD_PCI_ADDR]
        guestfwd = "guestfwd=tcp:169.254.169.254:80-cmd:socat STDIO TCP:127.0.0.1:%d" % self.imds_port
        if self.fences_through_arm():
            guestfwd += ",guestfwd=tcp:%s-cmd:socat STDIO UNIX-CONNECT:%s" % (ARM_ADDR, self.lab.arm_socket())
        argv += [
            "-netdev", "user,id=n0,net=169.254.0.0/16,host=169.254.0.2,restrict=on,"
            "hostfwd=tcp:127.0.0.1:%d-169.254.0.15:22,%s" % (self.ssh_port, guestfwd),
            # romfile=: no iPXE option ROM, so the firmware never tries to boot from the network.
            "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:%02x,addr=0x3,romfile=" % n,
            "-netdev", "tap,id=n1,ifname=%s,script=no,downscript=no" % self.lab.net_tap(s.name, s.role),
            "-device", "virtio-net-pci,netdev=n1,mac=52:54:00:01:00:%02x,addr=0x4,romfile=" % n,
            "-fw_cfg", "name=opt/hainit-lab/net,file=%s" % self.path("net.env"),
            "-fw_cfg", "name=opt/hainit-lab/hainit.yaml,file=%s" % self.path("hainit.yaml"),
            "-chardev", "file,id=ser0,path=%s,append=on" % self.path("console.log"),
            "-serial", "chardev:ser0",
            "-qmp", "unix:%s,server=on,wait=off" % self.path("qmp.sock"),
            "-device", "virtio-rng-pci",
        ]
        return argv

    def start(self):
        """Power on (qemu daemonizes once the VM runs)."""
        if self.running():
            raise common.LabError("%s is already running" % self.name)
        self.start_imds()
        try:
            os.unlink(self.path("qemu.pid"))
        except FileNotFoundError:
            pass
        self.started_at = time.time()
        self.stopped_by_lab, self.exited_at, self.was_running = False, None, False
        common.run(self.lab.net.cmd(self.qemu_argv()), timeout=60, log=self.lab.log)
        pid = self.pid()
        if pid is None:
            raise common.LabError("%s: qemu wrote no pid file; see %s" % (self.name, self.path("console.log")))
        self.lab.track(pid, "qemu " + self.name)
        self.was_running = True
        self.lab.log.detail("%s: qemu pid %d" % (self.name, pid))

    def fenced(self):
        """True when this VM was started and its qemu has exited without the lab stopping it: the
        guest reset itself (sbd on a fence request or watchdog expiry; -no-reboot makes qemu exit),
        or the emulated ARM powered it off (power_cut_by_arm)."""
        return self.started_at is not None and not self.stopped_by_lab and not self.running_sure()

    def running_sure(self):
        """running(), asked again after 0.2 s when it says no: /proc/PID/cmdline can read empty for a
        moment, and a VM wrongly taken for fenced would be started twice."""
        return self.running() or (time.sleep(0.2) is None and self.running())

    def note_exit(self, now):
        """Called by the lab's watcher every second: the host time qemu was first seen gone."""
        running = self.running_sure()
        if self.was_running and not running:
            self.exited_at = now
        self.was_running = running
        return self.exited_at == now and self.fenced()

    def hard_kill(self):
        """Power cut: SIGKILL the VM process, nothing inside the guest gets to run."""
        if not self.running():
            raise common.LabError("%s is not running" % self.name)
        self.stopped_by_lab = True
        self.power_cut()
        self.stop_master()

    def power_cut_by_arm(self):
        """ARM's powerOff with skipShutdown, asked by a fence agent: the power cut of hard_kill, but
        not the lab's own, so the lab counts the VM as fenced. False when it was not running."""
        return self.power_cut()

    def power_cut(self):
        """SIGKILL of the VM's qemu, and the wait for it to be gone; False when it was not running."""
        pid = self.pid()
        if pid is None or not self.running():
            return False
        os.kill(pid, signal.SIGKILL)
        common.wait_until(lambda: not self.running(), 30, "%s to die" % self.name, interval=0.1)
        return True

    def shutdown(self, timeout=180):
        """Clean shutdown from inside the guest; waits until qemu has exited."""
        self.stopped_by_lab = True
        self.ssh("systemctl poweroff", check=False, timeout=30)
        try:
            common.wait_until(lambda: not self.running(), timeout, "%s to power off" % self.name, interval=1)
        except common.LabError:
            self.qmp("quit")
            common.wait_until(lambda: not self.running(), 30, "%s to quit" % self.name, interval=0.5)
        self.stop_master()

    def qmp(self, command):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        try:
            s.connect(self.path("qmp.sock"))
            f = s.makefile("rw")
            f.readline()
            for cmd in ("qmp_capabilities", command):
                f.write(json.dumps({"execute": cmd}) + "\n")
                f.flush()
                f.readline()
        except OSError:
            pass
        finally:
            s.close()

    # ---- control ---------------------------------------------------------------------------
    def ssh_options(self):
        return [
            "-i", self.lab.ssh_key, "-p", str(self.ssh_port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
            "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=6",
            "-o", "ControlPath=" + self.path(CONTROL_SOCKET)]

    def ssh_argv(self, command):
        # A channel on the master connection when one is up; without it (socket missing or its
        # master gone) ssh connects on its own, as ControlMaster=no does.
        return self.lab.net.cmd(["ssh"] + self.ssh_options() + ["root@127.0.0.1", command])

    def start_master(self):
        """One ssh connection held open while the VM runs; every command is then a channel on it.
        A new connection costs the emulated guest a key exchange and a PAM session (logind, and
        root's systemd user manager when none runs): seconds of guest CPU per command, taken from
        hainit while the lab polls. The master dies with its connection (qemu exits: the socket
        closes), and the lab stops it by its pid when it stops the VM."""
        self.stop_master()
        err = open(self.path("ssh-master.log"), "a")
        self.master = subprocess.Popen(
            self.lab.net.cmd(["ssh", "-M", "-N", "-o", "ControlPersist=no"] + self.ssh_options() + ["root@127.0.0.1"]),
            stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, start_new_session=True)
        self.lab.track(self.master.pid, "ssh master " + self.name)

    def stop_master(self):
        common.stop_process(self.master)
        self.master = None
        try:
            os.unlink(self.path(CONTROL_SOCKET))
        except FileNotFoundError:
            pass

    def ssh(self, command, check=True, timeout=120, input=None):
        """command on the guest; input (text) on its stdin: never logged, unlike the command."""
        return common.run(self.ssh_argv(command), check=check, timeout=timeout, input=input, log=self.lab.log)

    def try_ssh(self, command, timeout=30):
        """stdout of command, or None when the VM cannot be reached or the command fails."""
        try:
            r = self.ssh(command, check=False, timeout=timeout)
        except common.LabError:
            return None
        return r.stdout if r.returncode == 0 else None

    def kernel_started_at(self):
        """Host time this boot's kernel started (now minus the guest's uptime): from the VM's start
        until then, qemu, the UEFI firmware and GRUB ran. None when the VM cannot be asked."""
        t0 = time.time()
        out = self.try_ssh("cat /proc/uptime", timeout=20)
        t1 = time.time()
        try:
            return (t0 + t1) / 2 - float(out.split()[0])
        except (AttributeError, IndexError, ValueError):
            return None

    def wait_ssh(self, timeout=600):
        def up():
            if not self.running():
                raise common.LabError("%s died while booting; see %s" % (self.name, self.path("console.log")))
            return self.try_ssh("true", timeout=20) is not None
        waited = common.wait_until(up, timeout, "ssh on " + self.name, interval=2)[1]
        self.start_master()
        return waited

    def clock_offset(self):
        """Guest wall clock minus host wall clock, seconds (to put guest log times on the host's axis)."""
        best = None
        for _ in range(3):
            t0 = time.time()
            out = self.try_ssh("date +%s.%N", timeout=20)
            t1 = time.time()
            if out is None:
                continue
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, float(out.strip()) - (t0 + t1) / 2)
        return best[1] if best else 0.0
