"""The drill's backend for a real deployment (scripts/deploy-azure.sh): the az CLI and HTTP.

Power: `az vm deallocate` (clean shutdown), `az vm stop --skip-shutdown` (power off, as
fence_azure_arm does), `az vm start`. State: `az vm run-command invoke` runs a probe on the VM
through its agent (drbdadm role/dstate/cstate, crm_mon's nodes; curl on a web node), so no SSH
path into the VNet is needed. Traffic: WordPress through the public load balancer's IP, with the
same client as the lab's drill (client.py: browser-like login, REST post and read); the admin's
password is derived from the stack's shared secret and never put in any argv.
"""

import base64
import re
import time

import client  # scripts/lab/client.py (scripts/lab is on the path with labkit): the drill's WordPress client

from . import common, dbpair
from .backend import Backend

# Prints hainit_role=…, hainit_dstate=…, hainit_cstate=… (DRBD 8.4 and 9) and crm_mon's node lines.
DB_PROBE = (
    "echo hainit_role=$(drbdadm role all 2>/dev/null | head -n1); "
    "echo hainit_dstate=$(drbdadm dstate all 2>/dev/null | head -n1); "
    "echo hainit_cstate=$(drbdadm cstate all 2>/dev/null | head -n1); "
    "{ crm_mon --output-as=xml 2>/dev/null || crm_mon --as-xml 2>/dev/null; } | grep -o '<node [^>]*online=[^>]*>'"
)
# Run commands return the last 4 KiB of output: a node's answer is cut to 2 KiB before base64.
FETCH_PROBE = (
    "f=$(mktemp); s=$(curl -s -o \"$f\" -w '%%{http_code}' --max-time 10 'http://127.0.0.1%s'); "
    "echo hainit_status=$s; echo hainit_body=$(head -c 2048 \"$f\" | base64 -w0); rm -f \"$f\""
)
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~/?=&%+-]*$")


class AzureBackend(Backend):
    kind = "azure"
    capabilities = frozenset()

    def __init__(self, log, run_id, resource_group, db_names, web_names, url, wp_user, wp_password,
                 poll_s=10.0, max_wait_s=None, lb_settle_s=15.0):
        self.logger, self.run_id = log, run_id
        self.rg, self.dbs, self.webs = resource_group, list(db_names), list(web_names)
        self.url = url.rstrip("/")
        self.user, self.password = wp_user, wp_password
        self.poll_s, self.max_wait_s, self.lb_settle_s = poll_s, max_wait_s, lb_settle_s

    def log(self, message):
        self.logger(message)

    def log_detail(self, message):
        self.logger.detail(message)

    def limit(self, seconds):
        return seconds if self.max_wait_s is None else min(seconds, self.max_wait_s)

    # ---- az ----------------------------------------------------------------------------------
    def az(self, args, timeout=1800):
        r = common.run(["az"] + args, check=False, timeout=timeout, log=self.logger)
        if r.returncode != 0:
            raise common.LabError("az %s exited %d: %s" % (" ".join(args[:3]), r.returncode,
                                                          (r.stderr or r.stdout).strip()[-400:]))
        return r.stdout

    def run_on(self, vm, script):
        """stdout of `script` run as root on `vm` by its agent; None when the VM cannot run it."""
        try:
            out = self.az(["vm", "run-command", "invoke", "-g", self.rg, "-n", vm, "--command-id",
                           "RunShellScript", "--scripts", script, "--query", "value[0].message", "-o", "tsv"],
                          timeout=600)
        except common.LabError as e:
            self.log_detail("%s: run command failed: %s" % (vm, e))
            return None
        return out

    # ---- topology and state ----------------------------------------------------------------
    def db_names(self):
        return list(self.dbs)

    def web_names(self):
        return list(self.webs)

    def db_states(self):
        states = {}
        for vm in self.dbs:
            out = self.run_on(vm, DB_PROBE)
            if out is None:
                states[vm] = None
                continue
            fields = dict(re.findall(r"^hainit_(\w+)=(.*)$", out, re.M))
            st = dbpair.drbdadm_state(fields.get("role"), fields.get("dstate"), fields.get("cstate"))
            if st is not None:
                st["nodes"] = dbpair.crm_mon_nodes(out)
            states[vm] = st
        return states

    # ---- power -----------------------------------------------------------------------------
    def stop(self, name):
        self.az(["vm", "deallocate", "-g", self.rg, "-n", name, "-o", "none"])

    def kill(self, name):
        self.az(["vm", "stop", "-g", self.rg, "-n", name, "--skip-shutdown", "-o", "none"])

    def start(self, name):
        self.az(["vm", "start", "-g", self.rg, "-n", name, "-o", "none"])

    # ---- traffic ---------------------------------------------------------------------------
    def write_post(self, title, deadline):
        deadline = self.limit(deadline)
        r = client.retry(lambda: client.wp_post(self.url, title, "written by the hainit drill (Azure)",
                                                self.user, self.password), deadline, 1.0)
        if not r["ok"]:
            raise common.LabError("%r not written through the public LB within %ds: %s"
                                  % (title, deadline, [e["error"] for e in r["errors"][-2:]]))
        return {"id": r["value"], "t": r["t"], "attempts": r["attempts"], "seconds": r["seconds"]}

    def read_post(self, post_id, tries, deadline):
        deadline = self.limit(deadline)
        reads = [client.retry(lambda: client.wp_get(self.url, post_id), deadline, 1.0) for _ in range(tries)]
        return {"ok": all(r["ok"] for r in reads), "value": reads[-1].get("value"), "reads": reads}

    def fetch(self, path, node=None, deadline=30):
        if not SAFE_PATH.match(path):
            raise common.LabError("fetch: path %r is not a plain URL path" % path)
        if node is None:
            r = client.retry(lambda: client.fetch(self.url + path), self.limit(deadline), 1.0)
            value = r.get("value") or {}
            return {"ok": r["ok"], "status": value.get("status"), "body": value.get("body"), "t": r.get("t"),
                    "via": "lb", "errors": r.get("errors", [])}
        out = self.run_on(node, FETCH_PROBE % path) or ""
        fields = dict(re.findall(r"^hainit_(\w+)=(.*)$", out, re.M))
        status = int(fields["status"]) if fields.get("status", "").isdigit() else None
        body = base64.b64decode(fields.get("body", "")).decode(errors="replace") if "body" in fields else None
        return {"ok": status is not None and status != 0, "status": status, "body": body, "t": time.time(),
                "via": node, "errors": [] if status else ["%s: no answer from curl on the node" % node]}

    def wait_in_lb(self, name, since, timeout):
        """The node serves /healthz itself, then the LB's probe (5 s x 2) has had time to see it."""
        common.wait_until(lambda: self.fetch("/healthz", node=name)["status"] == 200, self.limit(timeout),
                          "%s to answer /healthz" % name, interval=self.poll_s)
        time.sleep(self.lb_settle_s)
        return time.time()
