#!/usr/bin/env python3
"""The how-to's failover drill against a real deployment (scripts/deploy-azure.sh).

  scripts/azure/drill.py [options]        (each option also reads HAINIT_<OPTION>, as deploy-azure.sh)

The lab's drill (scripts/lab/labkit/drill.py: same steps, same checks, same report) with Azure's
levers (scripts/lab/labkit/azure_backend.py): the standby is deallocated, the primary powered off
without a shutdown (what fence_azure_arm does), each web VM deallocated in turn; a WordPress post
goes through the public load balancer after each, every post must be readable at the end, and the
DB pair healthy. DRBD and the cluster are read on the VMs with `az vm run-command invoke`.

  --resource-group RG   hainit-wp
  --db-names "A B"      "db-a db-b"
  --web-names "A B …"   "web-1 web-2"
  --url URL             http://<public IP of hainit-web-ip>
  --secret-file FILE    ~/.config/hainit/<resource-group>.secret (or HAINIT_SECRET)
  --wp-user USER        wpadmin (hainit's web.admin_user)
  --out DIR             ./drill-<UTC time>
  --timeout SECONDS     the longest any wait may take (default: the drill's own, 600-900 s)
  --poll SECONDS        10: between two looks at DRBD or a web node
  --lb-settle SECONDS   15: after a web VM answers again, for the LB's probe (5 s x 2) to see it

Report (the lab's format): OUT/report.md (printed) and OUT/report.json. Exit 0 when the drill
passes, 1 when it fails, 2 for bad input (nothing is touched then).
"""

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))

from labkit import common, drill, report, scenarios  # noqa: E402
from labkit.azure_backend import AzureBackend  # noqa: E402

VM_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
SECRET = re.compile(r"^[A-Za-z0-9._~+/=:@%^,-]{32,}$")


def bad_input(msg):
    print("drill: error: %s" % msg, file=sys.stderr)
    sys.exit(2)


def option(name, default):
    return os.environ.get("HAINIT_" + name.upper().replace("-", "_"), default)


def parse(argv):
    p = argparse.ArgumentParser(prog="scripts/azure/drill.py", description=__doc__.splitlines()[0])
    p.add_argument("--resource-group", default=option("resource-group", "hainit-wp"))
    p.add_argument("--db-names", default=option("db-names", "db-a db-b"))
    p.add_argument("--web-names", default=option("web-names", "web-1 web-2"))
    p.add_argument("--url", default=option("url", ""))
    p.add_argument("--secret-file", default=option("secret-file", ""))
    p.add_argument("--wp-user", default=option("wp-user", "wpadmin"))
    p.add_argument("--out", default=option("out", ""))
    p.add_argument("--timeout", default=option("timeout", ""))
    p.add_argument("--poll", default=option("poll", "10"))
    p.add_argument("--lb-settle", default=option("lb-settle", "15"))
    a = p.parse_args(argv)
    a.db_names = a.db_names.replace(",", " ").split()
    a.web_names = a.web_names.replace(",", " ").split()
    if len(a.db_names) != 2:
        bad_input("--db-names %r: the two db VMs" % " ".join(a.db_names))
    if not a.web_names:
        bad_input("--web-names: at least one web VM")
    for n in a.db_names + a.web_names:
        if not VM_NAME.match(n) or n.endswith("-"):
            bad_input("VM name %r is not valid" % n)
    if not re.match(r"^[A-Za-z0-9_.@-]{1,60}$", a.wp_user):
        bad_input("--wp-user %r is not a WordPress user name" % a.wp_user)
    for name in ("timeout", "poll", "lb_settle"):
        v = getattr(a, name)
        if v == "" and name == "timeout":
            a.timeout = None
            continue
        try:
            setattr(a, name, float(v))
        except ValueError:
            bad_input("--%s %r is not a number of seconds" % (name.replace("_", "-"), v))
        if getattr(a, name) < 0:
            bad_input("--%s %r is negative" % (name.replace("_", "-"), v))
    return a


def load_secret(a):
    """The stack's shared secret: HAINIT_SECRET, else the secret file deploy-azure.sh keeps."""
    if os.environ.get("HAINIT_SECRET"):
        secret = os.environ["HAINIT_SECRET"]
    else:
        path = a.secret_file or os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"),
                                             "hainit", a.resource_group + ".secret")
        try:
            with open(path) as f:
                secret = f.read().strip()
        except OSError as e:
            bad_input("no shared secret: %s (%s); set --secret-file or HAINIT_SECRET" % (path, e.strerror))
    if not SECRET.match(secret):
        bad_input("the shared secret must be at least 32 of letters, digits and ._~+/=:@%^,-")
    return secret


def public_url(a, log):
    if a.url:
        return a.url.rstrip("/")
    r = common.run(["az", "network", "public-ip", "show", "-g", a.resource_group, "-n", "hainit-web-ip",
                    "--query", "ipAddress", "-o", "tsv"], check=False, timeout=120, log=log)
    ip = r.stdout.strip()
    if r.returncode != 0 or not ip:
        bad_input("no public IP hainit-web-ip in %s (az login? deployed? or pass --url): %s"
                  % (a.resource_group, (r.stderr or r.stdout).strip()[-200:]))
    return "http://" + ip


def main(argv):
    a = parse(argv[1:])
    secret = load_secret(a)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = os.path.abspath(a.out or "drill-" + run_id)
    os.makedirs(out_dir, exist_ok=True)
    log = common.Log(os.path.join(out_dir, "drill.log"), stream=sys.stderr)
    url = public_url(a, log)
    backend = AzureBackend(log, run_id, a.resource_group, a.db_names, a.web_names, url, a.wp_user,
                           common.derive(secret, "wordpress-admin"), poll_s=a.poll, max_wait_s=a.timeout,
                           lb_settle_s=a.lb_settle)
    settings = {"resource_group": a.resource_group, "url": url, "db_names": a.db_names, "web_names": a.web_names,
                "timeout_s": a.timeout, "poll_s": a.poll, "lb_settle_s": a.lb_settle}
    result = {"kind": "azure", "run_id": run_id, "run_dir": out_dir,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": settings, "scenarios": [], "ok": False}
    log("drill against %s (resource group %s); report in %s" % (url, a.resource_group, out_dir))
    t0 = time.time()
    result["scenarios"].append(scenarios.execute("drill", lambda out: drill.run(backend, out, result), log))
    result["ok"] = all(s["status"] == "pass" for s in result["scenarios"])
    result["seconds"] = round(time.time() - t0, 1)
    md = report.write(result, out_dir)
    with open(md) as f:
        print(f.read())
    if not result["ok"]:
        print("\n".join(report.failure_lines(result, out_dir)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
