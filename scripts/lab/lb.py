#!/usr/bin/env python3
"""Azure load balancer emulator for the lab (runs inside the lab's network namespace, as root).

    lb.py --name ilb --frontend 10.0.1.10:3306 --backend 10.0.1.4 --backend 10.0.1.5 \
          --probe tcp:62500 --interval 5 --threshold 2 --events ilb.jsonl [--shadow]

Data path: kernel DNAT (nftables) like Azure's with floating IP off: the destination becomes the
backend's own address, the client's source address is kept, and the pick is a hash of the 5-tuple.
Conntrack keeps an established flow on its backend; only new flows follow the healthy set ("all
TCP flows continue" on a Standard SKU). With no healthy backend new flows are dropped.

Health: every --interval seconds each backend is probed from 168.63.129.16 (Azure's probe source)
when that address exists here. tcp:PORT succeeds on a completed handshake within the interval;
http:PORT/PATH only on status 200 within the interval (hainit's /healthz: php-fpm answers and the
shared uploads are mounted; a failure's reason, the start of the body, goes into the event). A backend starts down; --threshold consecutive failures take it
out of rotation and the same number of consecutive successes put it back (Azure probeThreshold).
Every probe and every change goes to --events as one JSON line with the wall-clock time.
--shadow probes and logs but programs nothing (the how-to's 3306 probe, measured beside ours).
"""

import argparse
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time

PROBE_SOURCE = "168.63.129.16"
TABLE = "ip hlab"


class Backend:
    """Consecutive-probe state machine of one backend (Azure probeThreshold semantics)."""

    def __init__(self, ip, threshold):
        self.ip = ip
        self.threshold = threshold
        self.healthy = False
        self.run = 0  # consecutive results that disagree with the current state

    def observe(self, ok):
        """Record one probe result; returns True when the backend changed state."""
        if ok == self.healthy:
            self.run = 0
            return False
        self.run += 1
        if self.run >= self.threshold:
            self.healthy = ok
            self.run = 0
            return True
        return False


def source_address():
    """168.63.129.16 when the lab configured it here, else let the kernel choose."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((PROBE_SOURCE, 0))
        return PROBE_SOURCE
    except OSError:
        return None
    finally:
        s.close()


def probe_tcp(ip, port, timeout, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect((ip, port))
        return True, ""
    except OSError as e:
        return False, type(e).__name__ + ": " + str(e)
    finally:
        s.close()


def probe_http(ip, port, path, timeout, source):
    conn = http.client.HTTPConnection(ip, port, timeout=timeout, source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers={"User-Agent": "Load Balancer Agent", "Connection": "close"})
        r = conn.getresponse()
        # hainit's /healthz says why it fails, one plain-text line per problem: kept in the event
        # log (an HTML error page of nginx's says nothing the status does not).
        plain = (r.getheader("Content-Type") or "").startswith("text/plain")
        why = r.read(300).decode(errors="replace").strip().replace("\n", "; ") if plain else ""
        if r.status == 200:
            return True, ""
        return False, "HTTP %d" % r.status + (": " + why if why else "")
    except (OSError, http.client.HTTPException) as e:
        return False, type(e).__name__ + ": " + str(e)
    finally:
        conn.close()


def parse_probe(text):
    """tcp:PORT or http:PORT/PATH -> (kind, port, path)."""
    kind, _, rest = text.partition(":")
    if kind == "tcp" and rest.isdigit():
        return kind, int(rest), None
    if kind == "http":
        port, _, path = rest.partition("/")
        if port.isdigit():
            return kind, int(port), "/" + path
    raise ValueError("--probe must be tcp:PORT or http:PORT/PATH, not %r" % text)


def nft_rules(chain, vip, port, healthy):
    """The nft script that points new flows for vip:port at the healthy backends (atomic swap)."""
    lines = ["flush chain %s %s" % (TABLE, chain)]
    match = "ip daddr %s tcp dport %d" % (vip, port)
    if not healthy:
        lines.append("add rule %s %s %s drop" % (TABLE, chain, match))
    elif len(healthy) == 1:
        lines.append("add rule %s %s %s dnat to %s" % (TABLE, chain, match, healthy[0]))
    else:
        pairs = ", ".join("%d : %s" % (i, ip) for i, ip in enumerate(healthy))
        lines.append(
            "add rule %s %s %s dnat to jhash ip saddr . tcp sport . ip daddr . tcp dport mod %d map { %s }"
            % (TABLE, chain, match, len(healthy), pairs)
        )
    return "\n".join(lines) + "\n"


class Balancer:
    def __init__(self, args):
        self.args = args
        self.vip, port = args.frontend.rsplit(":", 1)
        self.port = int(port)
        self.kind, self.probe_port, self.path = parse_probe(args.probe)
        self.backends = [Backend(ip, args.threshold) for ip in args.backend]
        self.source = source_address()
        self.lock = threading.RLock()
        self.events = open(args.events, "a", buffering=1)
        self.stop = threading.Event()

    def log(self, **fields):
        fields = {"t": round(time.time(), 3), "lb": self.args.name, **fields}
        with self.lock:
            self.events.write(json.dumps(fields) + "\n")

    def program(self):
        healthy = [b.ip for b in self.backends if b.healthy]
        if not self.args.shadow:
            script = nft_rules("lb_" + self.args.name, self.vip, self.port, healthy)
            r = subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True)
            if r.returncode != 0:
                self.log(event="error", error="nft: " + r.stderr.strip())
                raise SystemExit("lb %s: nft failed: %s" % (self.args.name, r.stderr.strip()))
        self.log(event="rotation", healthy=healthy)

    def probe(self, backend):
        timeout = self.args.interval
        if self.kind == "tcp":
            return probe_tcp(backend.ip, self.probe_port, timeout, self.source)
        return probe_http(backend.ip, self.probe_port, self.path, timeout, self.source)

    def watch(self, backend):
        next_at = time.monotonic()
        while not self.stop.is_set():
            ok, err = self.probe(backend)
            self.log(event="probe", backend=backend.ip, ok=ok, **({"error": err} if err else {}))
            with self.lock:
                changed = backend.observe(ok)
            if changed:
                self.log(event="up" if backend.healthy else "down", backend=backend.ip)
                with self.lock:
                    self.program()
            next_at += self.args.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def run(self):
        self.log(event="start", frontend=self.args.frontend, probe=self.args.probe, interval=self.args.interval,
                 threshold=self.args.threshold, shadow=self.args.shadow, source=self.source,
                 backends=[b.ip for b in self.backends])
        self.program()
        threads = [threading.Thread(target=self.watch, args=(b,), daemon=True) for b in self.backends]
        for t in threads:
            t.start()
        self.stop.wait()
        self.log(event="stop")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="short name; the nft chain is lb_NAME")
    p.add_argument("--frontend", required=True, help="VIP:PORT (backends get the same port)")
    p.add_argument("--backend", action="append", required=True, help="backend IP (repeat)")
    p.add_argument("--probe", required=True, help="tcp:PORT or http:PORT/PATH")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between probes (Azure: >= 5)")
    p.add_argument("--threshold", type=int, default=2, help="consecutive results to change state")
    p.add_argument("--events", required=True, help="JSON-lines event log")
    p.add_argument("--shadow", action="store_true", help="probe and log only, no forwarding")
    args = p.parse_args(argv)
    if args.threshold < 1 or args.interval <= 0:
        p.error("--threshold must be >= 1 and --interval > 0")
    parse_probe(args.probe)
    lb = Balancer(args)
    signal.signal(signal.SIGTERM, lambda *_: lb.stop.set())
    signal.signal(signal.SIGINT, lambda *_: lb.stop.set())
    lb.run()


if __name__ == "__main__":
    sys.exit(main())
