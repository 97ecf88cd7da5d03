"""report.html from report.json: charts as well-formed inline SVG, the failover's marks in order with
their seconds, one bar per bring-up step, screenshots embedded, nothing fetched from elsewhere; the
re-run's and the changed-setting check's tables."""

import base64
import html.parser
import os
import re
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import reports  # noqa: E402
from fake_wordpress import png  # noqa: E402
from labkit import failover, report, rerun  # noqa: E402
from test_converge import PASSED  # noqa: E402
from test_rerun import CHANGED, CONVERGED  # noqa: E402

URL_ATTRS = {"href", "src", "action", "srcset", "poster", "data", "xlink:href", "formaction", "background"}


class References(html.parser.HTMLParser):
    """Every tag and every attribute that makes a browser fetch or link something."""

    def __init__(self):
        super().__init__()
        self.tags, self.refs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in URL_ATTRS or (k == "style" and "url(" in (v or "")):
                self.refs.append((tag, k, v or ""))


def write(test, result, shots=True):
    """report.write in a fresh run directory (with the two screenshots); (html text, run_dir)."""
    d = tempfile.TemporaryDirectory(prefix="hainit-report-test-")
    test.addCleanup(d.cleanup)
    if shots:
        os.makedirs(os.path.join(d.name, "browser"))
        for name, rgb in (("front-page.png", (200, 30, 30)), ("dashboard.png", (30, 200, 30))):
            with open(os.path.join(d.name, "browser", name), "wb") as f:
                f.write(png(rgb=rgb))
    report.write(result, d.name)
    with open(os.path.join(d.name, "report.html")) as f:
        return f.read(), d.name


def svgs(text):
    """Each inline <svg> parsed as XML (a malformed one raises)."""
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", text, re.S)]


def rows(svg):
    return [g for g in svg.iter("g") if g.get("class") == "row"]


class ReportHtml(unittest.TestCase):
    def setUp(self):
        self.result = reports.sample()
        self.text, self.run_dir = write(self, self.result)

    def charts(self, kind):
        return [s for s in svgs(self.text) if kind in s.get("class").split()]

    def test_every_svg_is_well_formed_and_nothing_is_fetched_from_elsewhere(self):
        self.assertEqual(len(svgs(self.text)), self.text.count("<svg"))
        p = References()
        p.feed(self.text)
        for tag in ("script", "link", "iframe", "object", "embed"):
            self.assertNotIn(tag, p.tags)
        self.assertNotIn("@import", self.text)
        self.assertNotRegex(self.text, r"url\(")
        for tag, attr, value in p.refs:
            # Only data: URIs and files of the run directory (report.md, the PNGs) are referenced.
            self.assertNotRegex(value, r"^(?i:[a-z][a-z0-9+.-]*:|//)(?<!data:)", (tag, attr, value[:80]))
            if not value.startswith("data:"):
                self.assertTrue(os.path.exists(os.path.join(self.run_dir, value)) or value == "lab.log",
                                (tag, attr, value))

    def test_the_failover_timeline_has_every_mark_in_order_with_its_seconds(self):
        (chart,) = self.charts("failover")
        marks = self.result["scenarios"][0]["failover"]["marks_s"]
        got = [(g.get("data-mark"), float(g.get("data-s"))) for g in rows(chart)]
        self.assertEqual(got, [(m, marks[m]) for m in failover.ORDER if m in marks])
        notes = [t.text for g in rows(chart) for t in g.iter("text") if t.get("class") == "note"]
        self.assertEqual(notes, ["11.0 s (+11.0)", "28.1 s (+17.1)", "33.1 s (+5.0)", "36.8 s (+3.7)",
                                 "44.6 s (+7.8)", "45.7 s (+1.1)", "53.2 s (+7.5)", "54.0 s (+0.8)"])
        # Each stage's bar starts where the one before ended.
        bars = [next(r for r in g.iter("rect")) for g in rows(chart)]
        for before, after in zip(bars, bars[1:]):
            self.assertAlmostEqual(float(before.get("x")) + float(before.get("width")), float(after.get("x")), 0)
        markers = [t.text for g in chart.iter("g") if g.get("class") == "marker" for t in g.iter("text")]
        self.assertEqual(markers, ["the how-to's ILB probe (3306) up: 49.0 s", "target < 60 s"])

    def test_bring_up_has_one_bar_per_step_for_each_vm(self):
        charts = self.charts("bringup")
        vms = self.result["boot"]["vms"]
        self.assertEqual(len(charts), len(vms))
        for chart, (name, vm) in zip(charts, vms.items()):
            bars = [r for r in chart.iter("rect") if "bar" in r.get("class").split()]
            self.assertEqual(len(bars), len(vm["steps_s"]), name)
            self.assertEqual([(g.get("data-step"), float(g.get("data-s"))) for g in rows(chart)],
                             list(vm["steps_s"].items()), name)
        # One scale for all: the same seconds draw the same length on every VM.
        widths = {}
        for chart, vm in zip(charts, vms.values()):
            for g in rows(chart):
                rect = next(g.iter("rect"))
                widths.setdefault(g.get("data-step"), set()).add(rect.get("width"))
        self.assertEqual(widths["common.sysctl"], {next(iter(widths["common.sysctl"]))})
        self.assertIn("db-a: hainit 320.7 s in all", self.text)

    def test_the_screenshots_are_embedded(self):
        imgs = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)">', self.text)
        self.assertEqual([alt for alt, _ in imgs], ["front page", "dashboard"])
        with open(os.path.join(self.run_dir, "browser", "front-page.png"), "rb") as f:
            self.assertEqual(base64.b64decode(imgs[0][1]), f.read())

    def test_the_scenario_steps_are_on_one_time_line(self):
        (chart,) = self.charts("steps")
        steps = self.result["scenarios"][0]["steps"]
        self.assertEqual([g.get("data-step") for g in rows(chart)], [s["step"] for s in steps])


class RerunAndConverge(unittest.TestCase):
    """The re-run's figures per VM and the changed-setting check, as tables (report.json's rerun, converge)."""

    def test_a_row_per_vm_and_the_check(self):
        result = reports.sample()
        result["rerun"] = {"db-a": rerun.parse(CONVERGED), "db-b": rerun.parse(CHANGED),
                           "web-1": {"error": "not running after bring-up"}}
        result["converge"] = PASSED
        text, _ = write(self, result)
        table = re.search(r'<table class="rerun">.*?</table>', text, re.S).group(0)
        cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr data-vm.*?</tr>", table)]
        self.assertEqual(cells, [
            ["db-a", "2.45", "0", "none", "db.cluster.ready 0.9 s, db.packages 0.7 s, common.sysctl 0.2 s", "0", "yes"],
            ["db-b", "9.25", "3", "db.cluster.pcsd, db.cluster.cib",
             "db.cluster.cib 8.5 s, common.sysctl 0.2 s, db.cluster.pcsd 0.2 s", "0", "<strong>no</strong>"],
            ["web-1", "not running after bring-up", "<strong>no</strong>"]])
        conv = re.search(r'<table class="converge">.*?</table>', text, re.S).group(0)
        rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", conv))
        self.assertEqual(rows["setting in /etc/hainit/hainit.yaml"], "4 → 5")
        self.assertEqual(rows["plan: actions, of them cibadmin --patch"], "3, 1")
        self.assertEqual(rows["apply: seconds, actions, steps changed"], "21.37, 3, db.cluster.resources")
        self.assertEqual(rows["cibadmin --query: mysqld monitor 20s timeout"], "120 s → 150 s (17 timeouts scaled)")
        self.assertEqual(rows["plan after apply"], "converged")
        self.assertIn('<code>db.op_timeout_scale</code> on db-a <span class="verdict pass">PASS</span>', text)

    def test_a_failed_check_is_said(self):
        result = reports.sample()
        result["converge"] = {"node": "db-a", "setting": "db.op_timeout_scale", "ok": False,
                              "error": "plan should change only <db.cluster.resources>"}
        text, _ = write(self, result)
        self.assertIn('<span class="verdict fail">FAIL</span>', text)
        self.assertIn("<p>Failed: <code>plan should change only &lt;db.cluster.resources&gt;</code></p>", text)

    def test_none_without_them(self):
        text, _ = write(self, reports.sample())
        self.assertNotIn('class="rerun"', text)
        self.assertNotIn('class="converge"', text)


class FailedRun(unittest.TestCase):
    def test_a_run_that_stopped_early_still_gets_its_page_with_text_escaped(self):
        result = reports.sample()
        result.update(ok=False, error="hainit failed on db-b <exit 1> & more")
        drill = result["scenarios"][0]
        drill.update(status="fail", failed=["browser: post 2 \"<b>x</b>\" is not on the front page"])
        drill["steps"][-1].update(ok=False, step="a <step> that failed")
        del drill["failover"]
        text, _ = write(self, result)
        self.assertIn("hainit failed on db-b &lt;exit 1&gt; &amp; more", text)
        self.assertIn("post 2 &quot;&lt;b&gt;x&lt;/b&gt;&quot; is not on the front page", text)
        self.assertNotIn("<b>x</b>", text)
        for svg in svgs(text):  # the step name with < and > is escaped inside the SVG too
            self.assertNotIn("failover", svg.get("class"))
        steps = [s for s in svgs(text) if "steps" in s.get("class")][0]
        bad = [r for r in steps.iter("rect") if "bad" in r.get("class").split()]
        self.assertEqual(len(bad), 1)

    def test_a_missing_screenshot_is_said(self):
        text, d = write(self, reports.sample(), shots=False)
        self.assertIn("(screenshot missing: %s)" % os.path.join(d, "browser/front-page.png"), text)
        self.assertNotIn("<img", text)


if __name__ == "__main__":
    unittest.main()
