"""The lab tests' shared helpers: a result rendered as report.md, and a whole run's result as
report.json holds it (sample)."""

import tempfile

from labkit import report


def markdown(result):
    """report.write(result) in a throw-away directory; the Markdown it wrote."""
    with tempfile.TemporaryDirectory() as d:
        with open(report.write(result, d)) as f:
            return f.read()


DB_STEPS = {"common.sysctl": 2.1, "db.packages": 4.3, "db.disk.partition": 6.8, "db.drbd.module": 1.2,
            "db.drbd.config": 0.4, "db.drbd.metadata": 3.9, "db.drbd.up": 5.6, "db.mariadb.config": 0.3,
            "db.mariadb.unit": 8.7, "db.cluster.hosts": 0.2, "db.cluster.hacluster": 1.9, "db.cluster.pcsd": 24.6,
            "db.drbd.peer": 31.2, "db.drbd.initial": 2.2, "db.drbd.agree": 4.1, "db.bootstrap.primary": 1.0,
            "db.bootstrap.mkfs": 3.3, "db.bootstrap.mount": 0.9, "db.mariadb.datadir": 38.5,
            "db.mariadb.server": 12.4, "db.mariadb.secure": 4.4, "db.bootstrap.handoff": 9.8,
            "db.cluster.corosync": 18.2, "db.cluster.authkey": 0.6, "db.cluster.start": 41.7,
            "db.cluster.resources": 27.9, "db.cluster.ready": 35.0, "db.cluster.fencer": 6.2, "db.cluster.boot": 22.5,
            "db.cluster.unfence": 0.8}
WEB_STEPS = {"web.packages": 3.1, "web.wordpress.tree": 14.2, "web.config.wp-config": 0.5, "web.php-fpm.pool": 0.6,
             "web.nginx.site": 0.7, "web.permissions.tree": 6.3, "web.services": 21.4, "web.db.vip": 262.8,
             "web.wordpress.install": 48.0}


def sample(run_dir="/var/tmp/hainit-lab/runs/20261205-101010-ab12"):
    """A drill run's result with every part report.md and report.html draw: bring-up step times of
    four VMs, the drill's steps, its failover marks (docs/lab.md "Measured": the 54.0 s run) and the browser check."""
    t = 1796500000.0
    steps, start = [], t
    for name, secs, ok in [("DB pair healthy", 2.1, True), ("post 1", 9.4, True),
                           ("stop the standby (db-b, clean shutdown)", 21.0, True),
                           ("post 2 (standby down)", 6.2, True),
                           ("start db-b", 48.3, True), ("DRBD UpToDate on both", 61.5, True),
                           ("first write through the VIP after the kill", 54.0, True),
                           ("post 3 (after failover)", 12.7, True), ("failover breakdown", 4.9, True),
                           ("restart db-a", 51.2, True), ("resync: DRBD UpToDate on both", 67.2, True),
                           ("stop web-1", 14.0, True), ("post 4 (web-1 down)", 8.8, True), ("start web-1", 40.1, True),
                           ("public LB marks web-1 up", 70.4, True), ("stop web-2", 13.2, True),
                           ("post 5 (web-2 down)", 7.9, True), ("start web-2", 39.5, True),
                           ("public LB marks web-2 up", 66.0, True),
                           ("every post readable through the public LB", 31.0, True),
                           ("what a visitor sees: Chromium through the public LB", 18.6, True),
                           ("DB pair healthy at the end", 1.9, True)]:
        steps.append({"step": name, "start": round(start, 3), "seconds": secs, "ok": ok})
        start += secs + 0.3
    marks = {"detected": 11.0, "fenced": 28.1, "promoted": 33.1, "filesystem": 36.8, "mariadb": 44.6,
             "probe_listener": 45.7, "ilb3306_up": 49.0, "ilb_up": 53.2, "first_write": 54.0}
    browser = {"ok": True, "failed": [], "url": "http://10.0.3.10/", "chromium": "Chrome/156.0.8078.114",
               "seconds": 18.6, "requests": 77,
               "front": {"url": "http://10.0.3.10/", "title": "hainit lab", "seconds": 6.1, "posts_seen": 5, "posts": 5,
                         "stylesheets": ["http://10.0.3.10/wp-includes/blocks/navigation/style.min.css?ver=6.1.9"],
                         "images": 0},
               "login": {"url": "http://10.0.3.10/wp-admin/", "title": "Dashboard ‹ hainit lab — WordPress",
                         "seconds": 9.8, "dashboard": True},
               "screenshots": {"front page": "browser/front-page.png", "dashboard": "browser/dashboard.png"}}
    drill = {"name": "drill", "status": "pass", "seconds": 755.2, "steps": steps,
             "notes": ["initial primary db-a, standby db-b"],
             "timings": {"failover_kill_to_vip_write_s": 54.0, "failover_kill_to_post_s": 67.2},
             "failover": {"marks_s": marks, "stages_s": {}, "total_s": 54.0, "token_ms": 3000},
             "browser": browser}
    vms = {name: {"ssh_s": 40.0, "hainit": "ok", "hainit_exit": 0, "steps_s": dict(DB_STEPS if role == "db" else
                                                                                   WEB_STEPS)}
           for name, role in (("db-a", "db"), ("db-b", "db"), ("web-1", "web"), ("web-2", "web"))}
    vms["db-b"]["steps_s"]["db.cluster.start"] = 12.3
    del vms["web-2"]["steps_s"]["web.wordpress.install"]
    return {"run_id": "20261205-101010-ab12", "run_dir": run_dir, "started": "2026-12-05T10:10:10+0000",
            "settings": {"accel": "tcg", "token_ms": 3000, "stonith": "arm"}, "ok": True, "seconds": 1281.4,
            "peak_rss_mib": 3828, "boot": {"t0": t - 400, "wordpress_s": 354.5, "vms": vms,
                                           "initial_sync": {"seconds": 0}},
            "scenarios": [drill]}
