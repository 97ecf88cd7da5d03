"""Every web node serves the same site (issue 21): what the drill checks after each failure step.

uploads: an image uploaded through the public load balancer into the media library, as wp-admin
does it (client.py upload), then fetched through each web node directly and through the load
balancer: the same bytes everywhere, and (lab) the same bytes in the NFS server's export. A web node
that was down while an upload happened fetches it once it is back.

health: a web node whose php-fpm is stopped (and one whose share is unmounted) leaves the public
load balancer's pool within probe interval x threshold, no new flow reaches it meanwhile, and it
returns when started again.

The checks talk to a `tier` (WebTier below for the lab), so the Azure backend of the drill can give
them the same few operations: the client, each node's own URL, stopping and starting a unit on a
node, and when the load balancer took a node out or back.
"""

import hashlib
import os
import shlex
import time

from . import common, net, steps

# hainit's mount point of the shared uploads (web.docroot as the lab leaves it).
UPLOADS = "/var/www/wordpress/wp-content/uploads"
# Reads through the load balancer per check: each is a new flow, hashed to one of the healthy nodes.
LB_READS = 4
# Over interval x threshold: the probe's own time and the event log's scheduling (measured, stated).
SLACK_S = 1.0


class WebTier:
    """The lab's web tier: the public LB at public address, each web VM at its address."""

    def __init__(self, lab):
        self.lab = lab
        self.lb_url = "http://%s" % net.PUBLIC_VIP
        self.interval = lab.settings.probe_interval
        self.threshold = lab.settings.probe_threshold

    def node_url(self, name):
        return "http://%s" % self.lab.vms[name].spec.ip

    def nodes(self):
        """{name: direct base URL} of the web VMs that run now."""
        return {vm.name: "http://%s" % vm.spec.ip for vm in self.lab.vms.values()
                if vm.spec.role == "web" and vm.running()}

    def client(self, args, timeout):
        return self.lab.client(args, timeout)

    def systemctl(self, node, verb, unit):
        self.lab.vms[node].ssh("systemctl %s %s" % (verb, shlex.quote(unit)), timeout=120)

    def php_fpm(self):
        return "php8.2-fpm"

    def share_unit(self, node):
        """The uploads' mount unit on `node` (systemd's name for hainit's mount point)."""
        return self.lab.vms[node].ssh("systemd-escape --path --suffix=mount " + UPLOADS, timeout=60).stdout.strip()

    def wait_pool(self, node, inside, since, timeout):
        """Host time the LB marked node up (inside) or down after `since`."""
        ip = self.lab.vms[node].spec.ip
        return steps.wait_lb(self.lab, "plb", ip, inside, since, timeout)

    def probe_errors(self, node, since, until):
        """The LB's failed probes of node in [since, until]: their reasons (hainit's /healthz says why)."""
        ip = self.lab.vms[node].spec.ip
        return [e.get("error", "") for e in self.lab.lb_events("plb", since)
                if e.get("event") == "probe" and e.get("backend") == ip and not e.get("ok") and e["t"] <= until]

    def on_share(self, url_path):
        """sha256 of the file as the NFS server stores it, None when it is not there."""
        path = self.lab.nfs.path_of(url_path)
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def log(self, msg):
        self.lab.log(msg)


def path_of(url):
    """/wp-content/uploads/… of an attachment URL (whatever host the site URL names)."""
    i = url.find("/wp-content/uploads/")
    if i < 0:
        raise common.LabError("%s is not an uploads URL" % url)
    return url[i:]


def upload(tier, out, step, deadline=300):
    """Upload a new image through the load balancer; recorded in out["uploads"]."""
    name = "hainit-lab-%d-%s" % (len(out.setdefault("uploads", [])) + 1, step.split(" ")[0])
    r = tier.client(["upload", "--url", tier.lb_url, "--name", name, "--deadline", str(deadline), "--pause", "2"],
                    deadline)
    if not r["ok"]:
        raise common.LabError("no upload through the public LB within %ds: %s" % (deadline, r["errors"][-2:]))
    v = r["value"]
    entry = {"step": step, "id": v["id"], "path": path_of(v["url"]), "sha256": v["sha256"], "bytes": v["bytes"],
             "t": r["t"], "seconds": r["seconds"], "attempts": r["attempts"], "via": {}}
    out["uploads"].append(entry)
    tier.log("upload %s: %s (%d bytes, %.1f s)" % (name, entry["path"], entry["bytes"], r["seconds"]))
    return entry


def fetch(tier, entry, nodes=None, deadline=60):
    """The upload through each node in `nodes` (default: every running one) and the LB, and on the
    share: each must be the uploaded bytes. entry["via"] records where it was read and the result."""
    targets = dict(nodes if nodes is not None else tier.nodes())
    bad = []
    for name, base in list(targets.items()) + [("lb", tier.lb_url)] * LB_READS:
        r = tier.client(["fetch", "--url", base + entry["path"], "--sha256", entry["sha256"],
                         "--deadline", str(deadline), "--pause", "1"], deadline)
        ok = bool(r["ok"])
        entry["via"][name] = ok if name != "lb" else (entry["via"].get("lb", True) and ok)
        if not ok:
            bad.append("%s: %s" % (name, (r.get("errors") or [{}])[-1].get("error")))
    stored = tier.on_share(entry["path"])
    entry["via"]["share"] = stored == entry["sha256"]
    if stored != entry["sha256"]:
        bad.append("share: %s" % ("missing" if stored is None else "sha256 %s" % stored[:16]))
    entry["ok"] = not bad and all(entry["via"].values())
    if bad:
        raise common.LabError("upload %s (%s) differs: %s" % (entry["id"], entry["step"], "; ".join(bad)))
    return entry["via"]


def fetch_all(tier, out, nodes=None):
    """Every upload of the scenario so far, through `nodes` (default: all running) and the LB."""
    for entry in out.get("uploads", []):
        fetch(tier, entry, nodes)
    return len(out.get("uploads", []))


def leaves_pool(tier, out, node, what, stop, start):
    """Break `node` with stop(), see the LB take it out within interval x threshold and no new flow
    reach it, then start() and see it come back. Recorded in out["health"]."""
    bound = tier.interval * tier.threshold
    entry = {"what": what, "node": node, "bound_s": bound, "slack_s": SLACK_S}
    out.setdefault("health", []).append(entry)
    t_before = time.time()
    stop()
    t_stopped = time.time()
    t_down = tier.wait_pool(node, False, t_before, bound + 60)
    entry["stop_command_s"] = round(t_stopped - t_before, 1)
    entry["out_of_pool_after_s"] = round(t_down - t_stopped, 1)
    entry["probe_errors"] = sorted(set(tier.probe_errors(node, t_before, t_down)))[:3]
    # Out of the pool: new flows reach only the other nodes (every /healthz through the LB is 200).
    served = [tier.client(["http", "--url", tier.lb_url + "/healthz", "--deadline", "0"], 40)["ok"]
              for _ in range(LB_READS * 2)]
    entry["lb_reads_ok"] = "%d/%d" % (sum(served), len(served))
    t_start = time.time()
    start()
    t_up = tier.wait_pool(node, True, t_start, bound + 300)
    entry["back_in_pool_after_s"] = round(t_up - t_start, 1)
    entry["ok"] = entry["out_of_pool_after_s"] <= bound + SLACK_S and all(served)
    tier.log("health: %s on %s: out of the LB pool %.1f s after (bound %s s), %s reads through the LB "
                 "ok, back %.1f s after the start; probes said %s" % (
                     what, node, entry["out_of_pool_after_s"], bound, entry["lb_reads_ok"],
                     entry["back_in_pool_after_s"], entry["probe_errors"]))
    if not entry["ok"]:
        raise common.LabError("%s on %s: out of the pool after %s s (bound %s s + %s), LB reads %s"
                              % (what, node, entry["out_of_pool_after_s"], bound, SLACK_S, entry["lb_reads_ok"]))
    return entry


def php_fpm_down(tier, out, node):
    unit = tier.php_fpm()
    return leaves_pool(tier, out, node, "php-fpm stopped", lambda: tier.systemctl(node, "stop", unit),
                       lambda: tier.systemctl(node, "start", unit))


def share_down(tier, out, node):
    unit = tier.share_unit(node)
    return leaves_pool(tier, out, node, "shared uploads unmounted", lambda: tier.systemctl(node, "stop", unit),
                       lambda: tier.systemctl(node, "start", unit))


def report_lines(sc):
    """report.md lines of a scenario's uploads and health checks."""
    lines = []
    if sc.get("uploads"):
        lines += ["", "Uploads (through the public LB; read back through each web node, the LB and the share):", "",
                  "| after | attachment | bytes | read through | same bytes |", "|---|---|---|---|---|"]
        for u in sc["uploads"]:
            via = ", ".join("%s %s" % (k, "ok" if v else "**differs**") for k, v in sorted(u.get("via", {}).items()))
            lines.append("| %s | `%s` | %s | %s | %s |" % (u["step"], u["path"], u["bytes"], via,
                                                         "yes" if u.get("ok") else "**no**"))
    if sc.get("health"):
        lines += ["", "Health (public LB probe of /healthz):", "",
                  "| broken | node | out of pool after | bound | LB reads while out | back after | probes said |",
                  "|---|---|---|---|---|---|---|"]
        for h in sc["health"]:
            lines.append("| %s | %s | %s s | %s s | %s | %s s | %s |" % (
                h["what"], h["node"], h.get("out_of_pool_after_s"), h["bound_s"], h.get("lb_reads_ok"),
                h.get("back_in_pool_after_s"), "; ".join("`%s`" % e for e in h.get("probe_errors", []))))
    return lines

