"""The browser check: real headless Chromium against a fake WordPress (fake_wordpress.py) served in
a network namespace the test creates, where a node's private address (10.0.2.4) is unreachable at
once, as a wrong siteurl would leave it for a visitor."""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import reports  # noqa: E402
from labkit import browser  # noqa: E402

TITLES = ["hainit lab 20261205-101010-ab12 post 1", "hainit lab 20261205-101010-ab12 post 2",
          "Ünïcode & <post> 3"]


def need_chromium_and_root():
    # Chromium is a test dependency (.ci/run installs it): its absence fails, it never skips.
    if shutil.which(browser.CHROMIUM) is None:
        raise AssertionError("%s not found: the browser check's tests need Debian's chromium "
                             "(apt-get install chromium; .ci/run installs it)" % browser.CHROMIUM)
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise unittest.SkipTest("the browser check's tests need root and ip (a network namespace): NOT RUN")


class Visit(unittest.TestCase):
    """One namespace and one fake WordPress for all variants; one Chromium per check."""

    @classmethod
    def setUpClass(cls):
        need_chromium_and_root()
        cls.ns = "hbt%d" % os.getpid()
        cls.password = secrets.token_hex(32)
        subprocess.run(["ip", "netns", "add", cls.ns], check=True)
        cls.server = None
        try:
            subprocess.run(["ip", "netns", "exec", cls.ns, "ip", "link", "set", "lo", "up"], check=True)
            argv = ["ip", "netns", "exec", cls.ns, sys.executable, os.path.join(HERE, "fake_wordpress.py")]
            for t in TITLES:
                argv += ["--title", t]
            cls.server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                          env=dict(os.environ, HLAB_WP_PASSWORD=cls.password))
            cls.port = int(cls.server.stdout.readline())
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            if cls.server.poll() is None:
                cls.server.kill()
                cls.server.wait(10)
            cls.server.stdout.close()
        subprocess.run(["ip", "netns", "del", cls.ns], check=False)

    def check(self, variant, titles=TITLES):
        run_dir = tempfile.mkdtemp(prefix="hainit-browser-test-")
        self.addCleanup(shutil.rmtree, run_dir, True)
        self.run_dir = run_dir
        url = "http://127.0.0.1:%d/%s/" % (self.port, variant)
        return browser.check(url, titles, "wpadmin", self.password, run_dir,
                             prefix=["ip", "netns", "exec", self.ns], timeout=60)

    def test_a_correct_site_passes_with_screenshots(self):
        r = self.check("good")
        self.assertEqual(r["failed"], [])
        self.assertTrue(r["ok"])
        self.assertEqual((r["front"]["posts_seen"], r["front"]["posts"]), (3, 3))
        base = "http://127.0.0.1:%d/good" % self.port
        self.assertEqual(r["front"]["stylesheets"], [base + "/wp-content/themes/fake/style.css"])
        self.assertEqual(r["front"]["images"], 1)
        self.assertTrue(r["login"]["dashboard"])
        self.assertEqual(r["login"]["url"], base + "/wp-admin/")
        self.assertRegex(r["chromium"], r"^(Headless)?Chrome/\d+\.")
        for rel in r["screenshots"].values():
            with open(os.path.join(self.run_dir, rel), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", rel)
        # The admin's password went to the page over the pipe only: no file of the run holds it.
        for dirpath, _, files in os.walk(self.run_dir):
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as f:
                    self.assertNotIn(self.password.encode(), f.read(), name)

    def test_a_wrong_siteurl_fails_naming_the_private_url(self):
        r = self.check("private-css")
        self.assertFalse(r["ok"])
        css = "http://10.0.2.4/private-css/wp-content/themes/fake/style.css"
        img = "http://10.0.2.4/private-css/wp-content/themes/fake/header.png"
        text = "\n".join(r["failed"])
        self.assertIn("a request for stylesheet %s on the front page points at a private address (10.0.2.4), "
                      "not at the public address http://127.0.0.1:%d/private-css/" % (css, self.port), text)
        self.assertIn("a request for image %s on the front page points at a private address" % img, text)
        # Each URL once, however many ways the page used it (the request, its <link>, its timing).
        self.assertEqual(text.count(css), 1)
        self.assertIn("no stylesheet from the public address", text)

    def test_a_redirect_to_a_private_address_fails(self):
        r = self.check("redirect")
        self.assertFalse(r["ok"])
        self.assertIn("a redirect from http://127.0.0.1:%d/redirect/ to http://10.0.2.4/redirect/ on the front "
                      "page points at a private address (10.0.2.4)" % self.port, "\n".join(r["failed"]))

    def test_a_missing_post_fails(self):
        r = self.check("missing-post")
        self.assertEqual(r["failed"], ['post 2 "%s" is not on the front page' % TITLES[1]])
        self.assertEqual(r["front"]["posts_seen"], 2)

    def test_missing_css_fails(self):
        r = self.check("missing-css")
        css = "http://127.0.0.1:%d/missing-css/wp-content/themes/fake/missing.css" % self.port
        self.assertEqual(r["failed"], [
            "no stylesheet from the public address http://127.0.0.1:%d/missing-css/ was applied to the front page "
            "(CSS missing)" % self.port,
            "stylesheet %s on the front page did not load: HTTP 404" % css])

    def test_a_login_that_does_not_reach_the_dashboard_fails(self):
        r = self.check("bad-login")
        self.assertFalse(r["login"]["dashboard"])
        self.assertEqual(r["failed"], [
            "the wp-admin login as wpadmin did not land on the dashboard: the browser ended at "
            "http://127.0.0.1:%d/bad-login/wp-login.php (\"Log In\"); the page says: Error: The password you "
            "entered for the username wpadmin is incorrect." % self.port])


class OffSite(unittest.TestCase):
    PUBLIC = "http://10.0.3.10/"

    def test_the_public_address_and_public_hosts_are_fine(self):
        for url in ("http://10.0.3.10/wp-content/x.css", "http://10.0.3.10:80/", "https://wordpress.org/",
                    "https://s.w.org/images/core/emoji/14.0.0/svg/1f600.svg", "data:image/png;base64,xx"):
            self.assertIsNone(browser.off_site(url, self.PUBLIC), url)

    def test_node_loopback_and_private_names_are_not(self):
        cases = {"http://10.0.2.4/wp-content/x.css": "a private address",
                 "http://10.0.3.10:8080/": "a private address",
                 "http://127.0.0.1/": "loopback", "http://localhost:8080/": "loopback", "http://[::1]/": "loopback",
                 "http://169.254.169.254/": "a private address",
                 "http://web-1/wp-admin/": "a host name only the private network resolves"}
        for url, why in cases.items():
            self.assertEqual(browser.off_site(url, self.PUBLIC), why, url)


class ReportLines(unittest.TestCase):
    def test_report_md_gives_the_figures_and_links_the_screenshots(self):
        md = reports.markdown(reports.sample())
        self.assertIn("In a browser (headless Chrome/156.0.8078.114, through http://10.0.3.10/): ok", md)
        self.assertIn("- front page: 5 of 5 drill posts shown, 1 stylesheet(s) applied, 0 image(s), 6.1 s", md)
        self.assertIn("- wp-admin login as the admin: landed on the dashboard, 9.8 s", md)
        self.assertIn("![front page](browser/front-page.png) ![dashboard](browser/dashboard.png)", md)

    def test_a_failed_check_says_so_beside_the_scenario_failures(self):
        result = reports.sample()
        drill = result["scenarios"][0]
        drill["browser"].update(ok=False, failed=["post 2 \"x\" is not on the front page"])
        drill["browser"]["login"].update(dashboard=False, url="http://10.0.3.10/wp-login.php", title="Log In")
        drill.update(status="fail", failed=["browser: post 2 \"x\" is not on the front page"])
        md = reports.markdown(result)
        self.assertIn("- FAILED: browser: post 2 \"x\" is not on the front page", md)
        self.assertIn("through http://10.0.3.10/): **1 failure(s)**, listed above", md)
        self.assertIn("- wp-admin login as the admin: ended at http://10.0.3.10/wp-login.php (\"Log In\"), 9.8 s", md)


if __name__ == "__main__":
    unittest.main()
