"""Scenario `drill`: the how-to's failover drill — one implementation for the lab and for Azure.

post 1; stop the standby db (clean shutdown) -> post 2; start it, wait until the pair is healthy;
power the primary off without a shutdown -> post 3, and the standby must now be the primary; start
it, wait for the resync; for each web VM: stop it -> a post; start it, wait until the public LB
sends to it again; every post readable through the public LB (and, where the backend has a
browser, on the front page a visitor sees: browser.py); the pair healthy at the end.

Where the backend has the web tier's share (capability `share`), an image is uploaded through the
public LB after each post and read back through every running web node, the LB and the share
(sitecheck.py, report key `uploads`); a web node that was down reads the ones made meanwhile once
it is back. At the end php-fpm is stopped on the first web node, then its share unmounted: each
time the LB takes it out within interval x threshold and back once started (key `health`).

It talks to the stack only through a backend (backend.py): the lab's VMs and load balancers, or
the az CLI against a deployment. Same steps, same checks, same report (report.py). What only the
lab can do (a write through the internal LB's VIP, the failover's stages, the how-to's full sync,
the browser check in its namespace) runs where the backend has it.
"""

import time

from . import common, dbpair, sitecheck


class Steps:
    """Runs named steps, records each one's seconds and outcome in the scenario's `steps`. `ctx`
    has log(message) and after_step() (a backend, or the lab itself)."""

    def __init__(self, ctx, out):
        self.ctx, self.out = ctx, out

    def __call__(self, name, fn, *args, **kw):
        self.ctx.log("%s: %s" % (self.out["name"], name))
        t0 = time.time()
        entry = {"step": name, "start": round(t0, 3)}
        self.out["steps"].append(entry)
        try:
            value = fn(*args, **kw)
            entry["ok"] = True
            return value
        except Exception as e:
            entry["ok"] = False
            entry["error"] = str(e)
            raise
        finally:
            entry["seconds"] = round(time.time() - t0, 1)
            self.ctx.after_step()


def post(backend, out, n, deadline=300):
    """Post n through the public LB: {n, id, title, t, attempts, seconds}, recorded in out["posts"]."""
    title = "hainit %s %s post %d" % (backend.kind, backend.run_id, n)
    r = backend.write_post(title, deadline)
    p = {"n": n, "id": r["id"], "title": title, "t": r["t"], "attempts": r["attempts"], "seconds": r["seconds"]}
    out.setdefault("posts", []).append(p)
    backend.log("post %d written (id %d, %d attempt(s), %.1f s)" % (n, p["id"], p["attempts"], p["seconds"]))
    return p


def read_posts(backend, posts, tries=4):
    """Every post readable through the public LB, `tries` reads each (new flows reach every web node)."""
    bad = []
    for p in posts:
        r = backend.read_post(p["id"], tries, 120)
        if not r["ok"] or r["value"] != p["title"]:
            bad.append("post %d (id %d): %s" % (p["n"], p["id"], r.get("value") or r))
    if bad:
        raise common.LabError("not readable through the public LB: " + "; ".join(bad))
    return len(posts)


def wait_pair_healthy(backend, timeout):
    """Until dbpair.healthy (Connected, UpToDate/UpToDate, one Primary, both nodes online); seconds."""
    t0 = time.time()
    last = {}

    def healthy():
        last["states"] = backend.db_states()
        ok = dbpair.healthy(last["states"])
        if not ok:
            backend.log_detail("pair: " + dbpair.status(last["states"]))
        return ok
    try:
        common.wait_until(healthy, backend.limit(timeout), "the DB pair to be healthy (Connected, UpToDate/UpToDate)",
                          interval=backend.poll_s)
    except common.LabError as e:
        raise common.LabError("%s; last: %s" % (e, dbpair.status(last.get("states", {}))))
    return time.time() - t0


def roles(backend):
    """(primary, standby) names by DRBD role."""
    states = backend.db_states()
    p = dbpair.primary(states)
    if p is None:
        raise common.LabError("no DRBD primary: " + dbpair.status(states))
    return p, [n for n in backend.db_names() if n != p][0]


def expect_primary(backend, name):
    """The check after a failover: `name` (the old standby) is the primary now."""
    states = backend.db_states()
    if dbpair.primary(states) != name:
        raise common.LabError("after the kill the primary is %s, expected %s (%s)"
                              % (dbpair.primary(states), name, dbpair.status(states)))


def run(backend, out, result):
    step = Steps(backend, out)
    timings = out.setdefault("timings", {})
    caps = backend.capabilities
    step("DB pair healthy", wait_pair_healthy, backend, 900)
    if "howto" in caps and "howto" not in result:
        result["howto"] = step("how-to path: full initial DRBD sync of the same disk size", backend.howto_full_sync)

    web = backend.web_tier() if "share" in caps else None

    def same_site(after):
        """An upload through the LB, the same bytes through every running web node, the LB, the share."""
        if web is not None:
            entry = step("upload an image (%s)" % after, sitecheck.upload, web, out, after)
            step("the image through every web node, the LB and the share (%s)" % after, sitecheck.fetch, web, entry)

    step("post 1", post, backend, out, 1)
    same_site("post 1")

    primary, standby = roles(backend)
    out["notes"].append("initial primary %s, standby %s" % (primary, standby))
    t0 = time.time()
    step("stop the standby (%s, clean shutdown)" % standby, backend.stop, standby)
    p = step("post 2 (standby down)", post, backend, out, 2)
    timings["standby_stop_to_post_s"] = round(p["t"] - t0, 1)
    same_site("standby down")
    t0 = time.time()
    step("start %s" % standby, backend.start, standby)
    step("DRBD UpToDate on both", wait_pair_healthy, backend, 900)
    timings["standby_restart_to_uptodate_s"] = round(time.time() - t0, 1)

    primary, standby = roles(backend)
    out["notes"].append("killing primary %s (power off, no shutdown)" % primary)
    t_kill = time.time()
    step("power off the primary (%s, no shutdown)" % primary, backend.kill, primary)
    timings["failover_stop_api_s"] = round(time.time() - t_kill, 1)
    first_write = None
    if "vip" in caps:
        # 600 s: with STONITH the failover also waits priority-fencing-delay (15 s: the killed node ran
        # the promoted DRBD), with sbd msgwait too (2 x LAB_SBD_WATCHDOG_SECS), before promoting.
        w = step("first write through the VIP after the kill", backend.vip_write, "after-kill", 600)
        first_write = w["t"]
        timings["failover_kill_to_vip_write_s"] = round(w["t"] - t_kill, 1)
        backend.log("failover: kill -> first write through the VIP %.1f s (served by %s)"
                    % (w["t"] - t_kill, w["served_by"]))
        if w["served_by"] != standby:
            out.setdefault("failed", []).append("write after the kill served by %s, expected %s"
                                                % (w["served_by"], standby))
    p = step("post 3 (after failover)", post, backend, out, 3, 600)
    timings["failover_kill_to_post_s"] = round(p["t"] - t_kill, 1)
    step("%s is the primary" % standby, expect_primary, backend, standby)
    same_site("failover")
    if "breakdown" in caps:
        out["failover"] = step("failover breakdown", backend.failover_breakdown, standby, primary, t_kill,
                               first_write or p["t"])
    t0 = time.time()
    step("restart %s" % primary, backend.start, primary)
    step("resync: DRBD UpToDate on both", wait_pair_healthy, backend, 900)
    timings["killed_primary_restart_to_uptodate_s"] = round(time.time() - t0, 1)
    out["notes"].append("after the restart: " + dbpair.status(backend.db_states()))

    # Each web node down in turn: the public LB keeps serving from the others.
    for k, name in enumerate(backend.web_names(), 1):
        t_stop = time.time()
        step("stop %s" % name, backend.stop, name)
        p = step("post %d (%s down)" % (3 + k, name), post, backend, out, 3 + k)
        timings["web%d_stop_to_post_s" % k] = round(p["t"] - t_stop, 1)
        same_site("%s down" % name)
        t0 = time.time()
        step("start %s" % name, backend.start, name)
        step("public LB sends to %s again" % name, backend.wait_in_lb, name, t0, 900)
        timings["web%d_start_to_lb_up_s" % k] = round(time.time() - t0, 1)
        if web is not None:
            step("%s back: every upload through it, the same bytes" % name, sitecheck.fetch_all, web, out,
                 {name: web.node_url(name)})

    if web is not None:
        # A node that cannot serve leaves the pool: php-fpm stopped, then its share gone.
        first = backend.web_names()[0]
        step("php-fpm stopped on %s: out of the public LB's pool, and back" % first, sitecheck.php_fpm_down,
             web, out, first)
        step("share unmounted on %s: out of the public LB's pool, and back" % first, sitecheck.share_down,
             web, out, first)
        step("every upload through every web node, the LB and the share", sitecheck.fetch_all, web, out)

    step("every post readable through the public LB", read_posts, backend, out["posts"])
    if "browser" in caps:
        out["browser"] = step("what a visitor sees: Chromium through the public LB", backend.browser_check,
                              out["posts"])
        out.setdefault("failed", []).extend("browser: " + f for f in out["browser"]["failed"])
    step("DB pair healthy at the end", wait_pair_healthy, backend, 600)
    out["notes"].append("end: " + dbpair.status(backend.db_states()))
