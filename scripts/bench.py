#!/usr/bin/env python3
"""make bench: the release binary's discover and plan against the fake IMDS on 127.0.0.1.

The plans run the way they run on a VM: under the node's own host name (db-a, web-1) in a private
UTS namespace, against a fixture root shaped like a fresh Azure VM (`--root`): an Azure data disk at
LUN 0 (/dev/disk/azure/scsi1/lun0 -> ../../../sdc, a sparse file) and a managed identity (the fake
IMDS answers the token endpoint). hainit resolves and probes the disk with real commands (readlink,
blkid) that see the machine's /dev, not the root's, so a private mount namespace puts the fixture's
/dev over /dev: no real disk is read. A private network namespace holds the fake IMDS on its
loopback, so the plans' TCP probes (the DB VIP, pcsd) reach no real network. As a normal user the
namespaces come from a user namespace (`unshare --user --map-root-user`).

Prints median/min/max wall time of discover and of the db and web plans, hainit's peak RSS (read at
its exit) and the binary size, and which commands each plan runs: a plan's time is mostly theirs
(dpkg-query, systemctl, crm_mon … of this machine). Any hainit exit other than 0 stops the bench
with its stderr. `--quick` (make test) runs each command three times.
"""

import argparse
import ctypes
import fcntl
import hashlib
import io
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab"))
from labkit import imds, nfs  # noqa: E402  (the lab's IMDS documents and web share; one shape for every fake VM)

SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
CLUSTER, PEERS, VIP = "wpcluster", "db-a=10.0.1.4,db-b=10.0.1.5", "10.0.1.10"
# node, role, IP; the db node is the leader (lowest name), whose plan is the longest.
NODES = [("db-a", "db", "10.0.1.4"), ("web-1", "web", "10.0.1.20")]
# (label, node, hainit arguments)
COMMANDS = [("discover", "db-a", ["discover", "--json"]), ("plan db", "db-a", ["plan", "--json"]),
            ("plan web", "web-1", ["plan", "--json"])]
# Device nodes a program expects in /dev, bound from the machine into the fixture's /dev.
DEV_NODES = ["null", "zero", "full", "random", "urandom"]


def die(msg):
    sys.exit("bench: " + msg)


def write(path, content, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(content, bytes) else "w") as f:
        f.write(content)
    os.chmod(path, mode)


def symlink(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def wordpress_tarball():
    """A small tarball in WordPress's layout, standing in for the one the image bakes in."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in [("wordpress/index.php", "<?php require __DIR__ . '/wp-blog-header.php';\n"),
                           ("wordpress/wp-includes/version.php", "<?php $wp_version = '6.4.3';\n")]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_root(root):
    """A fresh Azure VM as hainit sees it below --root: config, the image's WordPress tarball, the
    OS disk sda (mounted on /), the resource disk sdb (on /mnt) and the blank data disk sdc at LUN 0."""
    tarball = wordpress_tarball()
    write(root + "/usr/share/hainit/wordpress.tar.gz", tarball)
    write(root + "/usr/share/hainit/defaults.yaml",
          "web:\n  wordpress_sha256: %s\n" % hashlib.sha256(tarball).hexdigest())
    write(root + "/etc/hainit/hainit.yaml", "secret: %s\n" % SECRET, 0o600)
    dev = root + "/dev"
    for name in DEV_NODES:
        write(dev + "/" + name, "")
    os.makedirs(dev + "/shm")
    for disk, size_gib in [("sda", 30), ("sdb", 16), ("sdc", 1)]:
        with open(dev + "/" + disk, "wb") as f:
            f.truncate(size_gib << 30)  # sparse
        write(root + "/sys/block/%s/size" % disk, "%d\n" % (size_gib << 21))
    for part in ["sda1", "sdb1"]:
        write(root + "/sys/block/%s/%s/partition" % (part[:3], part), "1\n")
    # WALinuxAgent's udev rules (66-azure-storage.rules) and azure-vm-utils' newer names.
    symlink("../../sda", dev + "/disk/azure/root")
    symlink("../../sdb", dev + "/disk/azure/resource")
    symlink("../../../sdc", dev + "/disk/azure/scsi1/lun0")
    symlink("../../../../sdc", dev + "/disk/azure/data/by-lun/0")
    write(root + "/proc/self/mountinfo",
          "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
          "40 22 8:17 / /mnt rw,relatime shared:20 - ext4 /dev/sdb1 rw\n")
    write(root + "/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, server, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            die("the fake IMDS exited with %s before listening" % server.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    die("the fake IMDS did not listen on 127.0.0.1:%d" % port)


def namespace_argv():
    """unshare for a private host name, mounts and network: directly as root, else inside a user
    namespace."""
    base = ["unshare", "--uts", "--mount", "--propagation", "private", "--net"]
    return base if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user"] + base[1:]


# --- inside the namespaces -------------------------------------------------------------------------

def mount_dev(root):
    """The fixture's /dev over the machine's /dev (this mount namespace only), with the real null,
    zero, random devices and /dev/shm bound into it."""
    dev = root + "/dev"
    for name in DEV_NODES + ["shm"]:
        if os.path.exists("/dev/" + name):
            run_checked(["mount", "--bind", "/dev/" + name, dev + "/" + name])
    run_checked(["mount", "--rbind", dev, "/dev"])
    if os.path.realpath("/dev/disk/azure/scsi1/lun0") != "/dev/sdc":
        die("the fixture's /dev/disk/azure/scsi1/lun0 is not visible after mounting it over /dev")


def run_checked(argv):
    out = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        die("%s exited %d: %s" % (" ".join(argv), out.returncode, out.stderr.strip()))


def timed_run(argv, stdout=subprocess.DEVNULL, stderr=None):
    """Wall time of one run in ms. Any exit other than 0 ends the bench with hainit's stderr."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err).returncode
        ms = (time.perf_counter() - start) * 1000
        err.seek(0)
        text = err.read().decode(errors="replace")
    if code != 0:
        die("%s exited %d:\n%s" % (" ".join(argv), code, text.strip()))
    if stderr is not None:
        stderr.append(text)
    return ms


PTRACE_TRACEME, PTRACE_CONT, PTRACE_SETOPTIONS = 0, 7, 0x4200
PTRACE_O_TRACEEXIT, PTRACE_EVENT_EXIT = 0x40, 6


def own_peak_rss_kib(argv):
    """hainit's own high-water RSS (VmHWM), read when it stops at its exit under ptrace, before its
    memory is released. (wait4's ru_maxrss would count the forked Python before the exec and the
    commands hainit ran, e.g. crm_mon.) None when the machine forbids ptrace (Yama scope 3)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    pid = os.fork()
    if pid == 0:
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            if libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
                os._exit(126)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        return None
    libc.ptrace(PTRACE_SETOPTIONS, pid, None, ctypes.c_void_p(PTRACE_O_TRACEEXIT))
    hwm, sig = None, 0
    while True:
        libc.ptrace(PTRACE_CONT, pid, None, ctypes.c_void_p(sig))
        _, status = os.waitpid(pid, 0)
        if not os.WIFSTOPPED(status):
            break
        sig = os.WSTOPSIG(status)
        if status >> 8 == signal.SIGTRAP | (PTRACE_EVENT_EXIT << 8):
            with open("/proc/%d/status" % pid) as f:
                hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
            sig = 0
        elif sig == signal.SIGTRAP:
            sig = 0
    if os.waitstatus_to_exitcode(status) != 0:
        die("%s exited %d under ptrace" % (" ".join(argv), os.waitstatus_to_exitcode(status)))
    return hwm


def check_plan(node, text):
    """The plan must be the one the fixture stands for: every step, and on the db node the data disk
    at LUN 0 partitioned (a fixture the disk discovery no longer sees fails here, not silently)."""
    steps = json.loads(text)["steps"]
    if not steps:
        die("the plan of %s has no steps" % node)
    if node.startswith("db"):
        disk = [s for s in steps if s["name"] == "db.disk.partition"]
        argv = [a.get("argv", []) for s in disk for a in s["actions"]]
        if not any(a[:1] == ["sgdisk"] and a[-1] == "/dev/sdc" for a in argv):
            die("the db plan does not partition the fixture's data disk /dev/sdc: %s" % json.dumps(disk))
    return len(steps), sum(len(s["actions"]) for s in steps)


def queries(log):
    """Programs hainit ran, with counts, from its --verbose log ("running cmd=PROGRAM …")."""
    counts = {}
    for line in log.splitlines():
        if " running cmd=" in line:
            program = line.split(" running cmd=", 1)[1].split(" ", 1)[0]
            counts[program] = counts.get(program, 0) + 1
    return counts


def loopback_up():
    """A new network namespace has only lo, and it is down (ip link set lo up, without iproute2)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, struct.pack("16sH", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH", b"lo", flags | iff_up))


def start_imds(fake_imds, doc):
    """The fake IMDS for one node, with a managed identity; it dies with this process."""
    port = free_port()
    libc = ctypes.CDLL(None, use_errno=True)
    server = subprocess.Popen([fake_imds, "--listen", "127.0.0.1:%d" % port, "--document", doc, "--identity"],
                              stderr=subprocess.DEVNULL, preexec_fn=lambda: libc.prctl(1, signal.SIGTERM))
    return server, port


def inside(spec):
    os.environ["PATH"] = spec["path"]
    loopback_up()
    mount_dev(spec["root"])
    servers, results = [], []
    try:
        urls = {}
        for node, doc in spec["documents"].items():
            server, port = start_imds(spec["fake_imds"], doc)
            servers.append(server)
            wait_port(port, server)
            urls[node] = "http://127.0.0.1:%d" % port
        for label, node, extra in COMMANDS:
            socket.sethostname(node)
            argv = [spec["hainit"], "--imds-url", urls[node], "--root", spec["root"], "--os", "debian12"] + extra
            log = []
            with tempfile.TemporaryFile() as out:
                timed_run(argv[:1] + ["--verbose"] + argv[1:], stdout=out, stderr=log)  # warm-up, checked once
                out.seek(0)
                shape = check_plan(node, out.read().decode()) if extra[0] == "plan" else None
            ms = [timed_run(argv) for _ in range(spec["runs"])]
            results.append({"label": label, "node": node, "ms": ms, "rss_kib": own_peak_rss_kib(argv),
                            "shape": shape, "queries": queries(log[0])})
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    json.dump(results, sys.stdout)


# --- outside ---------------------------------------------------------------------------------------

def report(results, runs, size):
    print("hainit bench: %d runs per command, release musl binary, fake IMDS on 127.0.0.1, "
          "fixture root of a fresh Azure VM, the machine's own tools answering hainit's queries" % runs)
    print("%-9s %-6s %10s %8s %8s %13s  %s" % ("command", "node", "median ms", "min ms", "max ms", "peak RSS MiB",
                                              "plan"))
    for r in results:
        rss = "%.2f" % (r["rss_kib"] / 1024) if r["rss_kib"] else "n/a"
        shape = "%d steps, %d actions" % tuple(r["shape"]) if r["shape"] else ""
        print("%-9s %-6s %10.2f %8.2f %8.2f %13s  %s" % (r["label"], r["node"], statistics.median(r["ms"]),
                                                         min(r["ms"]), max(r["ms"]), rss, shape))
    print("binary size %.2f MiB (%d bytes); peak RSS is hainit's own (VmHWM at its exit)" % (size / 2**20, size))
    for r in results:
        if r["queries"]:
            ran = sorted(r["queries"].items(), key=lambda kv: (-kv[1], kv[0]))
            print("%s runs %d commands: %s" % (r["label"], sum(r["queries"].values()),
                                               ", ".join("%d %s" % (n, p) for p, n in ran)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hainit", required=True)
    ap.add_argument("--fake-imds", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="three runs per command (make test)")
    ap.add_argument("--inside", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        return inside(json.loads(args.inside))
    runs = 3 if args.quick else args.runs
    hainit, fake_imds = os.path.abspath(args.hainit), os.path.abspath(args.fake_imds)
    for path in (hainit, fake_imds):
        if not os.access(path, os.X_OK):
            die("%s is not an executable file" % path)

    with tempfile.TemporaryDirectory(prefix="hainit-bench.") as tmp:
        os.chmod(tmp, 0o755)
        root = os.path.join(tmp, "root")
        make_root(root)
        documents = {}
        for node, role, ip in NODES:
            tags = imds.db_tags(CLUSTER, PEERS, VIP) if role == "db" else imds.web_tags(CLUSTER, VIP, nfs.SOURCE)
            documents[node] = os.path.join(tmp, node + ".json")
            imds.write(documents[node], imds.document(node, ip, tags))
        # Without systemd (CI containers) systemctl cannot answer, and hainit rightly stops on a
        # failed query: the tests' systemctl (tests/fixtures/systemd, no unit installed) answers.
        path = os.environ.get("PATH", "")
        if not os.path.isdir("/run/systemd/system"):
            repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            path = os.path.join(repo, "tests", "fixtures", "systemd") + os.pathsep + path
            print("bench: no systemd on this machine; systemctl is tests/fixtures/systemd's", file=sys.stderr)
        spec = {"hainit": hainit, "fake_imds": fake_imds, "root": root, "documents": documents, "runs": runs,
                "path": path}
        argv = namespace_argv() + [sys.executable, os.path.abspath(__file__), "--hainit", hainit,
                                   "--fake-imds", fake_imds, "--inside", json.dumps(spec)]
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        err = out.stderr.strip()
        if out.stderr.startswith("unshare:"):
            err += ("\nbench: the plans run under the nodes' own host names with the fixture's /dev and no network "
                    "but loopback, which needs private UTS, mount and network namespaces; as a normal user that "
                    "takes user namespaces (sysctl kernel.unprivileged_userns_clone=1), or run it as root")
        die("measuring inside %s failed (exit %d):\n%s" % (" ".join(namespace_argv()), out.returncode, err))
    report(json.loads(out.stdout), runs, os.path.getsize(hainit))


if __name__ == "__main__":
    main()
