"""The drill's site checks (labkit/sitecheck.py) against a scripted web tier: what counts as the same
upload everywhere, when a node left the pool in time, and what report.json and report.md show."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from labkit import common, report, sitecheck  # noqa: E402

SHA = "ab" * 32


class FakeTier:
    """Two web nodes; the client answers from `bytes_at` (where -> sha256 served); the pool's
    down/up times are scripted relative to the stop/start."""

    lb_url = "http://10.0.3.10"
    interval, threshold = 5.0, 2

    def __init__(self, down_after=6.0, lb_ok=True):
        self.bytes_at = {"http://10.0.2.4": SHA, "http://10.0.2.5": SHA, "http://10.0.3.10": SHA}
        self.shared = SHA
        self.calls, self.logged, self.units = [], [], []
        self.down_after, self.lb_ok = down_after, lb_ok
        self.t_stop = None

    def nodes(self):
        return {"web-1": "http://10.0.2.4", "web-2": "http://10.0.2.5"}

    def client(self, args, timeout):
        self.calls.append(args)
        if args[0] == "upload":
            url = "http://10.0.3.10/wp-content/uploads/2026/05/%s.png" % args[args.index("--name") + 1]
            return {"ok": True, "t": 1.0, "seconds": 2.0, "attempts": 1,
                    "value": {"id": 7, "url": url, "sha256": SHA, "bytes": 86}}
        if args[0] == "fetch":
            url = args[args.index("--url") + 1]
            base = url.split("/wp-content")[0]
            ok = self.bytes_at.get(base) == args[args.index("--sha256") + 1]
            return {"ok": ok, "errors": [] if ok else [{"error": "RuntimeError: HTTP 200, sha256 other"}]}
        if args[0] == "http":
            return {"ok": self.lb_ok}
        raise AssertionError(args)

    def systemctl(self, node, verb, unit):
        self.units.append((node, verb, unit))

    def php_fpm(self):
        return "php8.2-fpm"

    def wait_pool(self, node, inside, since, timeout):
        return since + (30.0 if inside else self.down_after)

    def probe_errors(self, node, since, until):
        return ["HTTP 502"]

    def on_share(self, url_path):
        return self.shared

    def log(self, msg):
        self.logged.append(msg)


class Uploads(unittest.TestCase):
    def test_an_upload_read_back_everywhere_is_recorded(self):
        tier, out = FakeTier(), {}
        entry = sitecheck.upload(tier, out, "standby down")
        self.assertEqual(entry["path"], "/wp-content/uploads/2026/05/hainit-lab-1-standby.png")
        via = sitecheck.fetch(tier, entry)
        self.assertEqual(via, {"web-1": True, "web-2": True, "lb": True, "share": True})
        self.assertTrue(entry["ok"])
        fetched = [a[a.index("--url") + 1] for a in tier.calls if a[0] == "fetch"]
        self.assertEqual(len([u for u in fetched if u.startswith(tier.lb_url)]), sitecheck.LB_READS)
        self.assertIn("http://10.0.2.4" + entry["path"], fetched)
        self.assertEqual(out["uploads"], [entry])

    def test_other_bytes_on_one_node_or_the_share_fail_the_check(self):
        for where in ("http://10.0.2.5", "share"):
            tier, out = FakeTier(), {}
            if where == "share":
                tier.shared = None
            else:
                tier.bytes_at[where] = "cd" * 32
            entry = sitecheck.upload(tier, out, "failover")
            with self.assertRaises(common.LabError) as e:
                sitecheck.fetch(tier, entry)
            self.assertFalse(entry["ok"])
            self.assertIn("web-2" if where != "share" else "share: missing", str(e.exception))

    def test_a_node_back_reads_what_was_uploaded_while_it_was_down(self):
        tier, out = FakeTier(), {}
        sitecheck.upload(tier, out, "web-1 down")
        n = sitecheck.fetch_all(tier, out, {"web-1": "http://10.0.2.4"})
        self.assertEqual(n, 1)
        self.assertEqual(set(out["uploads"][0]["via"]), {"web-1", "lb", "share"})


class Health(unittest.TestCase):
    def test_out_of_the_pool_within_interval_times_threshold(self):
        tier, out = FakeTier(down_after=9.5), {}
        h = sitecheck.php_fpm_down(tier, out, "web-1")
        self.assertTrue(h["ok"])
        self.assertEqual((h["bound_s"], h["probe_errors"], h["lb_reads_ok"]), (10.0, ["HTTP 502"], "8/8"))
        self.assertEqual(tier.units, [("web-1", "stop", "php8.2-fpm"), ("web-1", "start", "php8.2-fpm")])
        self.assertEqual(out["health"], [h])

    def test_too_slow_or_still_served_fails(self):
        for tier in (FakeTier(down_after=12.0), FakeTier(lb_ok=False)):
            out = {}
            with self.assertRaises(common.LabError):
                sitecheck.php_fpm_down(tier, out, "web-1")
            self.assertFalse(out["health"][0]["ok"])

    def test_report_shows_both_checks(self):
        tier, sc = FakeTier(), {"name": "drill", "status": "pass", "steps": [], "notes": []}
        sitecheck.fetch(tier, sitecheck.upload(tier, sc, "post 1"))
        sitecheck.php_fpm_down(tier, sc, "web-1")
        text = "\n".join(report.scenario_section(sc))
        self.assertIn("| post 1 | `/wp-content/uploads/2026/05/hainit-lab-1-post.png` | 86 |", text)
        self.assertIn("lb ok, share ok, web-1 ok, web-2 ok | yes |", text)
        self.assertIn("| php-fpm stopped | web-1 | 6.0 s | 10.0 s | 8/8 |", text)


if __name__ == "__main__":
    unittest.main()
