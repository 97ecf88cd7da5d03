"""What the drill asks of a stack: the interface its two backends implement.

LabBackend (lab_backend.py): the lab's qemu VMs, its emulated load balancers and client.py inside
the lab's network namespace. AzureBackend (azure_backend.py): a deployment of
scripts/deploy-azure.sh, through the az CLI (`az vm stop/start/deallocate`, `az vm run-command
invoke`) and HTTP to its public IP. The drill (drill.py) and every check run the same code on both.

VMs are named by their VM names; times are host epoch seconds; a failure raises common.LabError
with what failed and what was seen.
"""


class Backend:
    kind = "?"            # "lab" | "azure": in post titles and the report
    run_id = "?"
    poll_s = 2.0          # between two looks at the DB pair or a web node
    # Optional measures a backend can take: "vip" (writes through the internal LB's VIP),
    # "breakdown" (the failover's stages from the survivor's journal and the LBs' logs),
    # "howto" (the how-to's full initial DRBD sync, measured beside hainit's), "browser" (the front
    # page and the login in Chromium, browser.py), "share" (uploads and health through the web
    # tier: web_tier(), sitecheck.py).
    capabilities = frozenset()

    def log(self, message):
        raise NotImplementedError

    def log_detail(self, message):
        """Detail for the run's log file only (each look at the pair while waiting)."""

    def after_step(self):
        """Called after every step (the lab checks its load balancers still run)."""

    def limit(self, seconds):
        """The longest the drill waits for something it would give `seconds` (the Azure drill's
        --timeout bounds every wait)."""
        return seconds

    # ---- topology and state ----------------------------------------------------------------
    def db_names(self):
        """The two db VMs."""
        raise NotImplementedError

    def web_names(self):
        """The web VMs, in order."""
        raise NotImplementedError

    def db_states(self):
        """{db VM name: dbpair state or None (off / unreadable)}, read now."""
        raise NotImplementedError

    # ---- power -----------------------------------------------------------------------------
    def stop(self, name):
        """Clean shutdown (the guest's own), returns once the VM is off."""
        raise NotImplementedError

    def kill(self, name):
        """Power off without a shutdown: what fencing does to a node."""
        raise NotImplementedError

    def start(self, name):
        """Power on; returns once the VM runs and can be read."""
        raise NotImplementedError

    # ---- traffic ---------------------------------------------------------------------------
    def write_post(self, title, deadline):
        """Create a published WordPress post through the public LB as the admin, retrying until
        `deadline` seconds have passed: {"id", "t" (when it was written), "attempts", "seconds"}."""
        raise NotImplementedError

    def read_post(self, post_id, tries, deadline):
        """Read a post's title through the public LB `tries` times (new connections, so every web
        node answers some): {"ok", "value" (the last title), "reads": [...]}."""
        raise NotImplementedError

    def fetch(self, path, node=None, deadline=30):
        """GET `path` (e.g. "/healthz", "/wp-content/uploads/x.png") through the public LB
        (node=None) or on one web node directly (its name): {"ok", "status", "body", "t", "via"}.
        Checks that compare what the LB serves with what each node serves use this."""
        raise NotImplementedError

    def wait_in_lb(self, name, since, timeout):
        """Until the public LB sends traffic to web VM `name` again (after `since`); host time."""
        raise NotImplementedError

    # ---- optional measures (see capabilities) ----------------------------------------------
    def vip_write(self, note, deadline):
        """INSERT through the internal LB's VIP until it works: {"t", "served_by", ...}."""
        raise NotImplementedError

    def failover_breakdown(self, survivor, killed, t_kill, t_write):
        raise NotImplementedError

    def howto_full_sync(self):
        raise NotImplementedError

    def browser_check(self, posts):
        """{"ok", "failed": [...], ...}: what a visitor sees (browser.check)."""
        raise NotImplementedError

    def web_tier(self):
        """The web tier's operations for sitecheck.py (uploads and health): the client, each node's
        own URL, a unit stopped and started on a node, when the LB took a node out or back."""
        raise NotImplementedError
