"""Logging, commands, waits and the run directory shared by the lab's modules."""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

CACHE = os.environ.get("HAINIT_IMAGE_CACHE", "/var/tmp/hainit-image")
RUNS = os.environ.get("LAB_RUNS", "/var/tmp/hainit-lab/runs")


class LabError(Exception):
    """A lab step failed; the message says what and where to look."""


class Log:
    """Timestamped progress lines on stdout (or `stream`) and in RUN/lab.log."""

    def __init__(self, path, stream=None):
        self.t0 = time.time()
        self.stream = stream
        self.file = open(path, "a", buffering=1)
        # The newest progress line: what the run was doing when it was interrupted.
        self.last = ""

    def __call__(self, msg):
        line = "[%7.1fs] %s" % (time.time() - self.t0, msg)
        self.last = line
        print(line, file=self.stream or sys.stdout, flush=True)
        self.file.write(time.strftime("%H:%M:%S ") + line + "\n")

    def detail(self, msg):
        """Only in the log file (command output, probes)."""
        self.file.write(time.strftime("%H:%M:%S ") + "          " + msg + "\n")


def run(argv, check=True, timeout=None, input=None, env=None, log=None):
    """Run a command, capture text output; LabError with the tail of stderr when it fails."""
    try:
        r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise LabError("timed out after %ss: %s" % (timeout, " ".join(argv))) from e
    if log is not None:
        log.detail("$ %s -> %d %s" % (" ".join(argv), r.returncode, (r.stdout + r.stderr).strip()[-400:]))
    if check and r.returncode != 0:
        raise LabError("%s exited %d: %s" % (" ".join(argv), r.returncode, (r.stderr or r.stdout).strip()[-600:]))
    return r


def stop_process(proc, grace=5):
    """SIGTERM a child the lab started, SIGKILL it after `grace` seconds; nothing if it already ended."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)


def wait_until(pred, timeout, what, interval=2.0):
    """Poll pred() until it returns something truthy; returns (value, seconds waited)."""
    start = time.time()
    while True:
        value = pred()
        if value:
            return value, time.time() - start
        if time.time() - start > timeout:
            raise LabError("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(interval)


def derive(secret, purpose):
    """hainit's secret derivation (docs/configuration.md "Secrets"): hex(HMAC-SHA256(secret, "hainit/" + purpose))."""
    return hmac.new(secret.encode(), ("hainit/" + purpose).encode(), hashlib.sha256).hexdigest()


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def write_private(path, text):
    """A file only root can read (secrets, configs carrying the secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def pid_alive(pid, marker=None):
    """True when pid runs and (if given) its command line contains marker (guards against reuse)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().decode(errors="replace")
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return marker is None or marker in cmdline


def die(msg, code=1):
    print("lab: " + msg, file=sys.stderr, flush=True)
    sys.exit(code)
