"""The drill's backend for the lab: its qemu VMs, its emulated load balancers, and client.py in the
lab's network namespace (what a user and the internal LB's VIP see)."""

from . import browser, common, failover, howto, net, sitecheck, stack, steps
from .backend import Backend

PUBLIC_URL = "http://%s" % net.PUBLIC_VIP


class LabBackend(Backend):
    kind = "lab"
    poll_s = 2.0  # a look is two channels on the VMs' ssh masters (VM.start_master), not two logins
    capabilities = frozenset({"vip", "breakdown", "howto", "browser", "share"})

    def __init__(self, lab):
        self.lab = lab
        self.run_id = lab.run_id

    def log(self, message):
        self.lab.log(message)

    def log_detail(self, message):
        self.lab.log.detail(message)

    def after_step(self):
        self.lab.check_lbs()

    def vm(self, name):
        return self.lab.vms[name]

    def db_names(self):
        return [s.name for s in self.lab.specs() if s.role == "db"]

    def web_names(self):
        return [s.name for s in self.lab.specs() if s.role == "web"]

    def db_states(self):
        dbs = [self.vm(n) for n in self.db_names()]
        for vm in dbs:
            if vm.fenced():
                # Nobody would start it again here: say so now instead of waiting out a deadline.
                raise common.LabError("%s was fenced (its qemu exited on its own)" % vm.name)
        return stack.pair_states(dbs)

    def stop(self, name):
        self.vm(name).shutdown()

    def kill(self, name):
        self.vm(name).hard_kill()

    def start(self, name):
        steps.boot_vm(self.lab, self.vm(name))

    def write_post(self, title, deadline):
        r = self.lab.client(["post", "--url", PUBLIC_URL, "--title", title, "--deadline", str(deadline),
                             "--pause", "1"], deadline)
        if not r["ok"]:
            raise common.LabError("%r not written through the public LB within %ds: %s"
                                  % (title, deadline, r["errors"][-2:]))
        return {"id": r["value"], "t": r["t"], "attempts": r["attempts"], "seconds": r["seconds"]}

    def read_post(self, post_id, tries, deadline):
        # Each read may retry: the first request to a web node just restarted under emulation can
        # take longer than one 30 s attempt (seen: post 1's first read, data intact).
        return self.lab.client(["get", "--url", PUBLIC_URL, "--id", str(post_id), "--tries", str(tries),
                                "--deadline", str(deadline)], (deadline + 40) * tries)

    def fetch(self, path, node=None, deadline=30):
        base = PUBLIC_URL if node is None else "http://%s" % self.vm(node).spec.ip
        r = self.lab.client(["fetch", "--url", base + path, "--deadline", str(deadline)], deadline + 30)
        value = r.get("value") or {}
        return {"ok": r["ok"], "status": value.get("status"), "body": value.get("body"), "t": r.get("t"),
                "via": node or "lb", "errors": r.get("errors", [])}

    def wait_in_lb(self, name, since, timeout):
        return steps.wait_lb(self.lab, "plb", self.vm(name).spec.ip, True, since, timeout)

    def vip_write(self, note, deadline):
        return steps.vip_write(self.lab, note, deadline)

    def failover_breakdown(self, survivor, killed, t_kill, t_write):
        return failover.breakdown(self.lab, self.vm(survivor), t_kill, t_write, self.lab.settings.token_ms, killed)

    def howto_full_sync(self):
        return howto.full_sync(self.lab)

    def web_tier(self):
        return sitecheck.WebTier(self.lab)

    def browser_check(self, posts):
        return browser.check_lab(self.lab, posts, PUBLIC_URL)
