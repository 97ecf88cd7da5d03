"""Scenario `drill`: the how-to's failover drill, through the public load balancer (issue 5, item 3).

post 1; stop the standby db -> post 2; start it, wait for UpToDate/UpToDate; hard-kill the primary
db VM -> first write through the VIP, post 3; restart it, wait for the resync; stop web-1 -> post 4;
start it, stop web-2 -> post 5; start web-2; every post readable through the LB and on the front page
in a browser (browser.py), the pair healthy.

After each post an image is uploaded through the LB and read back through every running web node,
the LB and the share (sitecheck.py, report key `uploads`); a web node that was down reads the ones
made meanwhile once it is back. At the end php-fpm is stopped on web-1, then its share unmounted:
each time the LB takes it out within interval x threshold and back once started (key `health`).
"""

import time

from . import browser, failover, howto, sitecheck, stack
from .steps import PUBLIC_URL, Steps, boot_vm, db_roles, read_posts, vip_write, wait_lb, wait_pair_healthy, write_post


def run(lab, out, result):
    step = Steps(lab, out)
    web = sitecheck.WebTier(lab)
    timings = out.setdefault("timings", {})
    step("DB pair healthy", wait_pair_healthy, lab, 900)
    if "howto" not in result:
        result["howto"] = step("how-to path: full initial DRBD sync of the same disk size", howto.full_sync, lab)

    def same_site(after):
        """An upload through the LB, the same bytes through every running web node, the LB, the share."""
        entry = step("upload an image (%s)" % after, sitecheck.upload, web, out, after)
        step("the image through every web node, the LB and the share (%s)" % after, sitecheck.fetch, web, entry)

    write = step("post 1", write_post, lab, out, 1)
    same_site("post 1")

    primary, standby = db_roles(lab)
    out["notes"].append("initial primary %s, standby %s" % (primary.name, standby.name))
    step("stop the standby (%s, clean shutdown)" % standby.name, standby.shutdown)
    write = step("post 2 (standby down)", write_post, lab, out, 2)
    same_site("standby down")
    t0 = time.time()
    step("start %s" % standby.name, boot_vm, lab, standby)
    step("DRBD UpToDate on both", wait_pair_healthy, lab, 900)
    timings["standby_restart_to_uptodate_s"] = round(time.time() - t0, 1)

    primary, standby = db_roles(lab)
    out["notes"].append("killing primary %s (SIGKILL of its VM: no clean shutdown)" % primary.name)
    t_kill = time.time()
    primary.hard_kill()
    # 600 s: with STONITH the failover also waits priority-fencing-delay (15 s: the killed node ran
    # the promoted DRBD), with sbd msgwait too (2 x LAB_SBD_WATCHDOG_SECS), before promoting.
    write = step("first write through the VIP after the kill", vip_write, lab, "after-kill", 600)
    timings["failover_kill_to_vip_write_s"] = round(write["t"] - t_kill, 1)
    lab.log("failover: kill -> first write through the VIP %.1f s (served by %s)"
            % (write["t"] - t_kill, write["served_by"]))
    if write["served_by"] != standby.name:
        out.setdefault("failed", []).append("write after the kill served by %s, expected %s"
                                            % (write["served_by"], standby.name))
    post = step("post 3 (after failover)", write_post, lab, out, 3)
    timings["failover_kill_to_post_s"] = round(post["t"] - t_kill, 1)
    same_site("failover")
    out["failover"] = step("failover breakdown", failover.breakdown, lab, standby, t_kill, write["t"],
                           lab.settings.token_ms, primary.name)
    t0 = time.time()
    step("restart %s" % primary.name, boot_vm, lab, primary)
    step("resync: DRBD UpToDate on both", wait_pair_healthy, lab, 900)
    timings["killed_primary_restart_to_uptodate_s"] = round(time.time() - t0, 1)
    out["notes"].append("after the restart: " + stack.pair_status([lab.vms["db-a"], lab.vms["db-b"]]))

    # Each web node down in turn: the public LB keeps serving from the other one.
    for n, name in ((4, "web-1"), (5, "web-2")):
        t_stop = time.time()
        step("stop %s" % name, lab.vms[name].shutdown)
        post = step("post %d (%s down)" % (n, name), write_post, lab, out, n)
        timings["%s_stop_to_post_s" % name.replace("-", "")] = round(post["t"] - t_stop, 1)
        same_site("%s down" % name)
        t0 = time.time()
        vm = lab.vms[name]
        step("start %s" % name, boot_vm, lab, vm)
        step("public LB marks %s up" % name, wait_lb, lab, "plb", vm.spec.ip, True, t0, 900)
        timings["%s_start_to_lb_up_s" % name.replace("-", "")] = round(time.time() - t0, 1)
        step("%s back: every upload through it, the same bytes" % name, sitecheck.fetch_all, web, out,
             {name: "http://%s" % vm.spec.ip})

    # A node that cannot serve leaves the pool: php-fpm stopped, then its share gone.
    step("php-fpm stopped on web-1: out of the public LB's pool, and back", sitecheck.php_fpm_down, web, out, "web-1")
    step("share unmounted on web-1: out of the public LB's pool, and back", sitecheck.share_down, web, out, "web-1")
    step("every upload through web-1, web-2, the LB and the share", sitecheck.fetch_all, web, out)
    step("every post readable through the public LB", read_posts, lab, out["posts"])
    out["browser"] = step("what a visitor sees: Chromium through the public LB", browser.check_lab, lab,
                          out["posts"], PUBLIC_URL)
    out.setdefault("failed", []).extend("browser: " + f for f in out["browser"]["failed"])
    step("DB pair healthy at the end", wait_pair_healthy, lab, 600)
    out["notes"].append("end: " + stack.pair_status([lab.vms["db-a"], lab.vms["db-b"]]))
