#!/usr/bin/env python3
"""make bench: the release binary against the fake IMDS on 127.0.0.1.

Prints, per command, the median and p90 wall time over N runs and the peak RSS, plus the
binary size, and checks them against the targets (median < 50 ms, peak RSS < 16 MiB).
Exits 1 when a target is missed."""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def document(host, ip, role):
    tags = [{"name": "hainit-role", "value": role}, {"name": "hainit-cluster", "value": "wpcluster"},
            {"name": "hainit-peers", "value": "db-a=10.0.1.4,db-b=10.0.1.5"},
            {"name": "hainit-vip", "value": "10.0.1.10"}]
    return {
        "compute": {"name": "vm-" + host, "osProfile": {"computerName": host}, "vmId": "bench",
                    "resourceGroupName": "rg", "subscriptionId": "sub", "location": "westeurope", "zone": "",
                    "tagsList": tags, "userData": "",
                    "storageProfile": {"dataDisks": [{"lun": "0"}]}},
        "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": ip}],
                                            "subnet": [{"address": "10.0.1.0", "prefix": "24"}]}}]},
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench: fake IMDS did not listen on 127.0.0.1:{port}")


def peak_rss_kib(argv):
    """Peak RSS of one run, from GNU time (a small C parent, so a forked Python does not count)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    return int(out.stderr.strip().splitlines()[-1])


def measure(argv, runs):
    """Wall times of `runs` runs, in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append((time.perf_counter() - start) * 1000)
        if out.returncode != 0:
            sys.exit(f"bench: {' '.join(argv)} exited {out.returncode}: {out.stderr.strip()}")
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hainit", required=True)
    ap.add_argument("--fake-imds", required=True)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        doc_path = os.path.join(tmp, "vm.json")
        with open(doc_path, "w") as f:
            json.dump(document("db-a", "10.0.1.4", "db"), f)
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "etc/hainit"))
        with open(os.path.join(root, "etc/hainit/hainit.yaml"), "w") as f:
            f.write(f"secret: {SECRET}\n")
        port = free_port()
        server = subprocess.Popen([args.fake_imds, "--listen", f"127.0.0.1:{port}", "--document", doc_path],
                                  stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            base = [args.hainit, "--imds-url", f"http://127.0.0.1:{port}", "--root", root, "--os", "debian12"]
            rows = []
            for name, extra in [("discover --json", ["discover", "--json"]), ("plan --json", ["plan", "--json"])]:
                times = measure(base + extra, args.runs)
                rss = max(peak_rss_kib(base + extra) for _ in range(5))
                rows.append((name, statistics.median(times), sorted(times)[int(len(times) * 0.9) - 1], rss))
        finally:
            server.terminate()
            server.wait()

    size = os.path.getsize(args.hainit)
    ok = True
    print(f"hainit bench: {args.runs} runs per command, release musl binary, fake IMDS on 127.0.0.1")
    print(f"{'command':<18} {'median ms':>10} {'p90 ms':>8} {'peak RSS MiB':>13}  target")
    for name, med, p90, rss_kib in rows:
        rss_mib = rss_kib / 1024
        hit = med < 50 and rss_mib < 16
        ok &= hit
        print(f"{name:<18} {med:>10.2f} {p90:>8.2f} {rss_mib:>13.2f}  {'ok' if hit else 'MISSED'} (<50 ms, <16 MiB)")
    size_ok = size < 8 * 1024 * 1024
    ok &= size_ok
    print(f"{'binary size':<18} {size / 1024 / 1024:>10.2f} MiB{'':>19}{'ok' if size_ok else 'MISSED'} (<8 MiB)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
