"""Bring the stack up: preflight, accelerator choice, network, VMs, load balancers, first boot."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from . import common, converge, net, rerun, stack, steps, steptimes
from .vm import OVMF_CODE, OVMF_VARS, uefi_args


def preflight(lab):
    """Everything `make lab` needs from this machine; a plain reason when a VM cannot start here."""
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces, taps)")
    for tool in ("qemu-system-x86_64", "qemu-img", "socat", "ssh", "nft", "ip", "bridge", "mariadb", "ganesha.nfsd"):
        if shutil.which(tool) is None:
            problems.append("%s not installed (.ci/run installs it)" % tool)
    if not os.path.exists("/dev/net/tun"):
        problems.append("/dev/net/tun missing: no tap devices for the VMs' private network")
    for f in ("lab.qcow2", "image.json"):
        if not os.path.exists(os.path.join(lab.image, f)):
            problems.append("lab image incomplete (%s/%s): run make lab-image" % (lab.image, f))
    for f in (OVMF_CODE, OVMF_VARS):
        if not os.path.exists(f):
            problems.append("%s missing: the VMs boot through UEFI firmware (apt-get install ovmf)" % f)
    if not os.access(lab.fake_imds, os.X_OK):
        problems.append("%s missing: cargo build --release --example fake-imds" % lab.fake_imds)
    return problems


def choose_accel(lab):
    """KVM only where a guest really boots with it (probed once per machine, cached); else TCG."""
    want = lab.settings.accel
    tcg = ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"]
    kvm = ["-accel", "kvm", "-cpu", "host"]
    if want == "tcg" or (want == "auto" and not os.access("/dev/kvm", os.R_OK | os.W_OK)):
        return "tcg", tcg, "TCG (software emulation)" + ("" if want == "tcg" else ": no usable /dev/kvm")
    cache = os.path.join(common.CACHE, "kvm-probe.json")
    key = "%s %s %s" % (os.uname().release, lab.image, subprocess.run(
        ["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0])
    try:
        with open(cache) as f:
            probe = json.load(f)
        if probe.get("key") != key:
            probe = None
    except (FileNotFoundError, ValueError):
        probe = None
    if probe is None:
        probe = {"key": key, "boots": kvm_boots(lab, kvm)}
        common.write_json(cache, probe)
    if probe["boots"]:
        return "kvm", kvm, "KVM (a guest kernel reached userspace with -accel kvm)"
    if want == "kvm":
        raise common.LabError("LAB_ACCEL=kvm but a guest does not boot with KVM here (see %s)" % cache)
    return "tcg", tcg, "TCG (software emulation): /dev/kvm exists but the lab kernel does not boot with it"


def kvm_boots(lab, accel):
    """Boot the lab image (firmware, its boot loader, its kernel; -snapshot writes nothing): the
    initramfs's first message proves the kernel reached userspace."""
    with tempfile.TemporaryDirectory() as d:
        console = os.path.join(d, "console.log")
        vars_file = os.path.join(d, "ovmf-vars.fd")
        shutil.copyfile(OVMF_VARS, vars_file)
        argv = ["timeout", "45", "qemu-system-x86_64"] + accel + [
            "-m", "512", "-nodefaults", "-display", "none", "-no-reboot", "-snapshot"] + uefi_args(vars_file) + [
            "-drive", "file=%s,if=virtio,format=qcow2" % os.path.join(lab.image, "lab.qcow2"),
            "-serial", "file:" + console]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 45
        ok = False
        while time.time() < deadline and proc.poll() is None:
            with open(console, "a+") as f:
                f.seek(0)
                if "Loading, please wait" in f.read():
                    ok = True
                    break
            time.sleep(0.5)
        proc.kill()
        proc.wait()
        return ok


def bring_up(lab, result):
    """Network, LBs, 4 VMs, then wait: every VM converged by hainit, WordPress through the public LB;
    then hainit once more on every VM, as an operator's repair would (report: re-run), and a changed
    setting converged on the db leader and back (report: converge)."""
    boot = {"vms": {}}
    result["boot"] = boot
    start_stack(lab, boot)
    wait_converged(lab, boot, result)
    step_times(lab, boot)
    wait_wordpress(lab, boot)
    rerun.run(lab, result)
    # A changed setting reaches the running cluster as one patch (and back): a failure stops the run.
    converge.run(lab, result)
    return boot


def start_stack(lab, boot):
    log = lab.log
    lab.net.up()
    lab.net.expose()
    log("network: namespace %s, db %s.0/24, web %s.0/24, ILB VIP %s, public LB %s (from this machine too: "
        "host link %s)" % (lab.net.ns, net.DB_SUBNET, net.WEB_SUBNET, net.VIP, net.PUBLIC_VIP, lab.net.host_link))
    lab.start_lbs()
    lab.start_nfs()
    boot["t0"] = time.time()
    for spec in lab.specs():
        vm = lab.create_vm(spec)
        vm.start()
    log("VMs started: " + ", ".join("%s (%s, %d MiB)" % (s.name, s.ip, s.mem_mib) for s in lab.specs()))


def wait_converged(lab, boot, result):
    """ssh up on every VM, then hainit.service finished on every VM (first boot, nobody logged in).
    All VMs are watched together; the first failure stops the wait (no point waiting for the rest).
    A db VM fenced meanwhile is started again, as Azure's reboot would, and its hainit.service runs
    again at that boot; each one is an incident in the report (before, it waited out the deadline)."""
    t0 = boot["t0"]
    for vm in lab.vms.values():
        vm.wait_ssh(timeout=900)
        boot["vms"][vm.name] = {"ssh_s": round(time.time() - t0, 1)}
        kernel = vm.kernel_started_at()
        if kernel is not None:
            # From this VM's own start (the VMs are started one after the other).
            boot["vms"][vm.name]["firmware_and_loader_s"] = round(kernel - vm.started_at, 1)
        lab.log("%s: ssh up after %.0f s" % (vm.name, time.time() - t0))
    pending = list(lab.vms.values())
    deadline = time.time() + lab.settings.converge_timeout
    while pending:
        for vm in list(pending):
            if vm.fenced():
                if vm.spec.role != "db":
                    raise common.LabError("%s: its qemu exited on its own during its first boot; see %s"
                                          % (vm.name, vm.path("console.log")))
                # hainit.service runs again at that boot.
                steps.restart_incident(lab, vm, result, "its first boot converged")
            state, code = stack.hainit_state(vm)
            if state in ("ok", "failed"):
                pending.remove(vm)
                boot["vms"][vm.name].update(hainit=state, hainit_exit=code, hainit_done_s=round(time.time() - t0, 1))
                lab.log("%s: hainit %s (exit %s) after %.0f s" % (vm.name, state, code, time.time() - t0))
                if state == "failed":
                    collect_all_diagnostics(lab)
                    raise common.LabError("hainit failed on %s (exit %s); diagnostics in %s/vms/*/diagnostics.txt"
                                          % (vm.name, code, lab.run_dir))
        if pending and time.time() > deadline:
            collect_all_diagnostics(lab)
            raise common.LabError("hainit still running on %s after %d s"
                                  % (", ".join(v.name for v in pending), time.time() - t0))
        if pending:
            time.sleep(5)


def step_times(lab, boot):
    """Where each first boot spent its time, from hainit's own log lines (report: bring-up breakdown)."""
    for vm in lab.vms.values():
        out = vm.try_ssh("journalctl -b -u hainit -o cat --no-pager", timeout=120) or ""
        # Kept beside the VM: each action's timestamps, for finding what a slow step waited on.
        with open(os.path.join(vm.dir, "hainit-first-boot.log"), "w") as f:
            f.write(out)
        steps = steptimes.durations(out)
        boot["vms"][vm.name]["steps_s"] = steptimes.totals(steps)
        # systemd's own split of this boot (kernel, initrd, userspace up to multi-user, which waits
        # for hainit.service); firmware and GRUB are not in it (firmware_and_loader_s).
        analyze = vm.try_ssh("systemd-analyze time --no-pager", timeout=60) or ""
        boot["vms"][vm.name]["systemd_analyze"] = parse_analyze(analyze)
        lab.log("%s: slowest hainit steps: %s" % (vm.name, ", ".join(
            "%s %.0f s" % s for s in steptimes.slowest(list(steptimes.totals(steps).items())))))


UNITS = {"h": 3600, "min": 60, "s": 1, "ms": 0.001, "us": 0.000001}


def parse_analyze(text):
    """`systemd-analyze time`'s first line -> {"kernel": s, "initrd": s, "userspace": s, ...}."""
    line = text.splitlines()[0] if text else ""
    out = {}
    for value, part in re.findall(r"((?:[\d.]+(?:h|min|ms|us|s) ?)+)\((\w+)\)", line):
        out[part] = round(sum(float(n) * UNITS[u] for n, u in re.findall(r"([\d.]+)(h|min|ms|us|s)", value)), 1)
    return out


def collect_all_diagnostics(lab):
    for vm in lab.vms.values():
        stack.collect_diagnostics(vm, os.path.join(vm.dir, "diagnostics.txt"))


def wait_wordpress(lab, boot):
    boot["initial_sync"] = initial_sync(lab)
    lab.log("DRBD initial sync of the new pair: %s" % boot["initial_sync"])
    r = lab.client(["http", "--url", "http://%s/" % net.PUBLIC_VIP, "--deadline", "600", "--pause", "2"], 600)
    if not r["ok"]:
        raise common.LabError("WordPress not served through the public LB: %s" % r["errors"])
    boot["wordpress_s"] = round(r["t"] - boot["t0"], 1)
    lab.log("WordPress served through the public load balancer %.0f s after the VMs were started"
            % (r["t"] - boot["t0"]))


def initial_sync(lab):
    """Did the new pair run a DRBD resync at first boot? (hainit skips it: 0 s.) From both kernels' logs,
    and 0 s only when both nodes also see both disks UpToDate: a pair that skipped the sync but disagrees
    on a disk's state (the …-047b race) has not skipped it, it is stuck."""
    began, done, evidence = False, [], []
    for name in ("db-a", "db-b"):
        out = lab.vms[name].try_ssh("journalctl -k -b --no-pager -o cat --grep='Began resync|Resync done'",
                                    timeout=60) or ""
        for line in out.splitlines():
            evidence.append("%s: %s" % (name, line.strip()))
            began = began or "Began resync" in line
            m = re.search(r"Resync done \(total (\d+) sec", line)
            if m:
                done.append(float(m.group(1)))
    views = {name: stack.drbd(lab.vms[name]) for name in ("db-a", "db-b")}
    agree = all(v and v["disk"] == "UpToDate" and v["peer_disk"] == "UpToDate" for v in views.values())
    seconds = max(done) if done else (None if began or not agree else 0)
    result = {"seconds": seconds, "evidence": evidence[:6]}
    if not agree:
        result["views"] = stack.pair_status([lab.vms["db-a"], lab.vms["db-b"]])
    return result
