"""report.html: the run's report to look at, beside report.md and report.json (issue 22, item 4).

Drawn from report.json alone: the verdict, each scenario's steps on a time line, the failover as a
waterfall of its marks (kill -> detected -> fenced -> ... -> first write), each VM's first boot as
one bar per hainit step, and the browser check's screenshots. Plain HTML with inline SVG and CSS,
the screenshots embedded as data URIs: one file that opens anywhere, no script, nothing fetched.
"""

import base64
import html
import math
import os

from . import converge, failover, rerun

MARK_NAMES = {"detected": "failure detected", "fence_requested": "fencing requested",
              "arm_power_off": "ARM powerOff", "fenced": "peer fenced", "promoted": "DRBD promoted",
              "filesystem": "filesystem mounted", "mariadb": "MariaDB started", "probe_listener": "probe listener up",
              "ilb_up": "ILB marks it up", "first_write": "first write via the VIP"}
CHAR_PX = 7.2     # width of one character of the charts' 12 px monospace labels
ROW_PX = 22
BAR_PX = 14
CHART_PX = 640    # the time axis


def esc(text):
    return html.escape(str(text), quote=True)


def nice_step(span, most):
    """An axis tick step giving at most `most` ticks over span seconds."""
    for step in (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= most:
            return step
    return 7200


def bar_chart(rows, span, css_class, markers=(), chart_px=CHART_PX, note_px=150, max_label=48):
    """Horizontal bars on one time axis, one row each: rows are dicts with label, start, end (seconds),
    cls (bar colour), note (text right of the bar), attrs (data-* on the row's <g>). markers are
    (seconds, label) reference lines across all rows. Inline SVG text."""
    labels = [r["label"] if len(r["label"]) <= max_label else r["label"][:max_label - 1] + "…" for r in rows]
    left = 12 + CHAR_PX * max([len(x) for x in labels] + [4])
    top = 10 + 14 * len(markers)
    span = max(span, 1e-9)
    step = nice_step(span, chart_px // 55)
    span = math.ceil(span / step) * step
    width = left + chart_px + note_px
    height = top + ROW_PX * len(rows) + 30

    def x(t):
        return left + chart_px * max(0.0, t) / span
    out = ['<svg class="%s" width="%d" height="%d" viewBox="0 0 %d %d" role="img">'
           % (css_class, width, height, width, height)]
    bottom = top + ROW_PX * len(rows)
    for i in range(0, int(span / step) + 1):
        t = i * step
        out.append('<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (x(t), top - 4, x(t), bottom))
        out.append('<text class="tick" x="%.1f" y="%d">%d s</text>' % (x(t), bottom + 16, t))
    for i, (r, label) in enumerate(zip(rows, labels)):
        y = top + ROW_PX * i
        attrs = "".join(' %s="%s"' % (k, esc(v)) for k, v in r.get("attrs", {}).items())
        x0, x1 = x(r["start"]), x(r["end"])
        out.append('<g class="row"%s>' % attrs)
        out.append('<title>%s</title>' % esc(r.get("title", "%s: %s" % (r["label"], r["note"]))))
        out.append('<text class="label" x="%.1f" y="%d">%s</text>' % (left - 8, y + 12, esc(label)))
        out.append('<rect class="bar %s" x="%.1f" y="%d" width="%.1f" height="%d"/>'
                   % (r["cls"], x0, y + 1, max(1.5, x1 - x0), BAR_PX))
        out.append('<text class="note" x="%.1f" y="%d">%s</text>' % (max(x0, x1) + 6, y + 12, esc(r["note"])))
        out.append('</g>')
    for i, (t, label) in enumerate(markers):
        # Each marker's label on its own line above the rows, on the side of its line with more room.
        right = x(t) > left + chart_px / 2
        out.append('<g class="marker"><line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                   '<text x="%.1f" y="%d" text-anchor="%s">%s</text></g>'
                   % (x(t), 12 + 14 * i, x(t), bottom, x(t) + (-4 if right else 4), 20 + 14 * i,
                      "end" if right else "start", esc(label)))
    out.append('</svg>')
    return "\n".join(out)


# ---- the charts ----------------------------------------------------------------------------------

def failover_chart(fo, target_s=None):
    """The failover as a waterfall: one row per mark in the order they happened, its bar the stage
    that ended there; the how-to's 3306 probe and the target as reference lines."""
    marks = fo.get("marks_s") or {}
    rows, prev = [], 0.0
    for name in failover.chronological(marks):
        t = marks[name]
        rows.append({"label": MARK_NAMES.get(name, name), "start": prev, "end": t, "cls": "m-" + name,
                     "note": "%.1f s (+%.1f)" % (t, t - prev),
                     "attrs": {"data-mark": name, "data-s": t}})
        prev = t
    if not rows:
        return ""
    markers = []
    if "ilb3306_up" in marks:
        markers.append((marks["ilb3306_up"], "the how-to's ILB probe (3306) up: %.1f s" % marks["ilb3306_up"]))
    if target_s:
        markers.append((target_s, "target < %s s" % target_s))
    span = max([r["end"] for r in rows] + [t for t, _ in markers])
    return bar_chart(rows, span, "timeline failover", markers)


def steps_chart(steps):
    """A scenario's steps on its time line (from the first step's start); failed steps in red."""
    timed = [s for s in steps if s.get("start") is not None and s.get("seconds") is not None]
    if not timed:
        return ""
    t0 = timed[0]["start"]
    rows = [{"label": s["step"], "start": s["start"] - t0, "end": s["start"] - t0 + s["seconds"],
             "cls": "ok" if s.get("ok") else "bad", "note": "%.1f s" % s["seconds"],
             "attrs": {"data-step": s["step"], "data-s": s["seconds"]}} for s in timed]
    return bar_chart(rows, max(r["end"] for r in rows), "timeline steps")


def bringup_charts(boot):
    """{vm: svg}: one bar per hainit step at first boot, every VM on the same scale."""
    vms = {name: v["steps_s"] for name, v in (boot or {}).get("vms", {}).items() if v.get("steps_s")}
    if not vms:
        return {}
    longest = max(max(s.values()) for s in vms.values())
    charts = {}
    for name, steps in vms.items():
        rows = [{"label": st, "start": 0, "end": secs, "cls": "role-" + name.split("-")[0],
                 "note": "%.1f s" % secs, "attrs": {"data-step": st, "data-s": secs}}
                for st, secs in steps.items()]
        charts[name] = bar_chart(rows, longest, "bringup", chart_px=300, note_px=70)
    return charts


# ---- the page ------------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2327; margin: 24px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: 600; }
.pass { background: #1e7e34; } .fail { background: #b32d2e; } .skip { background: #8a6d3b; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ddd; padding: 3px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
ul.failed li { color: #b32d2e; }
svg { display: block; margin: 6px 0 14px; font: 12px monospace; }
svg .label { text-anchor: end; fill: #1d2327; }
svg .note, svg .marker text { paint-order: stroke; stroke: #fff; stroke-width: 4px; } svg .note { fill: #50575e; } svg .tick { text-anchor: middle; fill: #787c82; }
svg .grid { stroke: #e6e6e6; } svg .marker line { stroke: #b32d2e; stroke-dasharray: 4 3; } svg .marker text { fill: #b32d2e; }
rect.ok { fill: #72aee6; } rect.bad { fill: #d63638; } rect.role-db { fill: #2271b1; } rect.role-web { fill: #00a32a; }
rect.m-detected { fill: #dba617; } rect.m-fenced { fill: #d63638; } rect.m-promoted { fill: #2271b1; }
rect.m-filesystem { fill: #3582c4; } rect.m-mariadb { fill: #72aee6; } rect.m-probe_listener { fill: #00a32a; }
rect.m-ilb_up { fill: #68de7c; } rect.m-first_write { fill: #1d2327; }
.cols { display: flex; flex-wrap: wrap; column-gap: 40px; }
.shots { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; } figure { margin: 0; flex: 1 1 460px; }
figure img { width: 100%; border: 1px solid #ccc; } figcaption { color: #50575e; font-size: 13px; }
"""


def write(result, run_dir, failover_target_s=None):
    """RUN/report.html from the result report.write stored in report.json; its path."""
    path = os.path.join(run_dir, "report.html")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(page(result, run_dir, failover_target_s))
    os.replace(tmp, path)
    return path


def page(result, run_dir, failover_target_s=None):
    s = result.get("settings", {})
    ok = bool(result.get("ok"))
    parts = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
             '<title>hainit lab %s: %s</title>' % (esc(result.get("run_id")), "PASS" if ok else "FAIL"),
             '<style>%s</style></head><body>' % CSS,
             '<h1>hainit lab report — run %s</h1>' % esc(result.get("run_id")),
             '<p><span class="verdict %s">%s</span> %s, accelerator %s, %s s in all. Also: '
             '<a href="report.md">report.md</a>, <a href="report.json">report.json</a>, '
             '<a href="lab.log">lab.log</a>.</p>'
             % ("pass" if ok else "fail", "PASS" if ok else "FAIL", esc(result.get("started", "")),
                esc(s.get("accel")), esc(result.get("seconds")))]
    if result.get("error"):
        parts.append('<p class="fail-text">Stopped early: <code>%s</code></p>' % esc(result["error"]))
    parts += summary(result)
    for sc in result.get("scenarios", []):
        parts += scenario(sc, run_dir, failover_target_s)
    parts += bringup(result)
    parts += rerun_section(result.get("rerun"))
    parts += converge_section(result.get("converge"))
    parts.append('</body></html>')
    return "\n".join(parts) + "\n"


def summary(result):
    boot = result.get("boot") or {}
    rows = [("bring-up: 4 VMs, first boot, WordPress through the LB", "pass" if boot.get("wordpress_s") else "fail",
             boot.get("wordpress_s"))]
    rows += [(sc["name"], sc["status"], sc.get("seconds")) for sc in result.get("scenarios", [])]
    out = ['<h2>Scenarios</h2>', '<table><tr><th>scenario</th><th>result</th><th>seconds</th></tr>']
    out += ['<tr><td>%s</td><td><span class="verdict %s">%s</span></td><td class="num">%s</td></tr>'
            % (esc(n), esc(st), esc(st), esc("–" if sec is None else sec)) for n, st, sec in rows]
    out.append('</table>')
    targets = result.get("targets") or []
    if targets:
        out += ['<table><tr><th>target</th><th>wanted</th><th>measured</th><th>met</th></tr>']
        out += ['<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>'
                % (esc(t["what"].replace("`", "")), esc(t["target"]), esc(t["measured"]),
                   "not judged" if t["met"] is None else "yes" if t["met"] else "<strong>no</strong>")
                for t in targets]
        out.append('</table>')
    return out


def scenario(sc, run_dir, failover_target_s):
    out = ['<h2>Scenario %s: <span class="verdict %s">%s</span> (%s s)</h2>'
           % (esc(sc["name"]), esc(sc["status"]), esc(sc["status"].upper()), esc(sc.get("seconds")))]
    if sc.get("error"):
        out.append('<p>Error: <code>%s</code></p>' % esc(sc["error"]))
    if sc.get("failed"):
        out.append('<ul class="failed">%s</ul>' % "".join("<li>%s</li>" % esc(x) for x in sc["failed"]))
    fo = sc.get("failover")
    if fo:
        out.append('<h3>Failover: hard kill of the primary db VM → first write through the VIP, %s s</h3>'
                   % esc(fo.get("total_s")))
        out.append(failover_chart(fo, failover_target_s))
    b = sc.get("browser")
    if b:
        out += browser_section(b, run_dir)
    chart = steps_chart(sc.get("steps", []))
    if chart:
        out += ['<h3>Steps on the scenario\'s time line</h3>', chart]
    if sc.get("notes"):
        out.append('<ul>%s</ul>' % "".join("<li>%s</li>" % esc(n) for n in sc["notes"]))
    return out


def browser_section(b, run_dir):
    front, login = b["front"], b["login"]
    out = ['<h3>What a visitor sees (headless %s through %s): %s</h3>'
           % (esc(b.get("chromium")), esc(b["url"]), "ok" if b["ok"] else "%d failure(s), listed above"
              % len(b["failed"])),
           '<p>Front page: %d of %d drill posts shown, %d stylesheet(s) from the public address, %d image(s), '
           '%s s. wp-admin login as the admin: %s, %s s. %d requests, each checked for its host.</p>'
           % (front["posts_seen"], front["posts"], len(front["stylesheets"]), front["images"], esc(front["seconds"]),
              "landed on the dashboard" if login["dashboard"] else "ended at %s" % esc(login["url"]),
              esc(login["seconds"]), b["requests"])]
    out.append('<div class="shots">')
    for caption, rel in b.get("screenshots", {}).items():
        out.append('<figure>%s<figcaption>%s — <a href="%s">%s</a></figcaption></figure>'
                   % (embedded_png(os.path.join(run_dir, rel), caption), esc(caption), esc(rel), esc(rel)))
    out.append('</div>')
    return out


def embedded_png(path, alt):
    try:
        with open(path, "rb") as f:
            data = base64.b64encode(f.read()).decode()
    except OSError:
        return '<p>(screenshot missing: %s)</p>' % esc(path)
    return '<img alt="%s" src="data:image/png;base64,%s">' % (esc(alt), data)


def bringup(result):
    charts = bringup_charts(result.get("boot"))
    if not charts:
        return []
    vms = result["boot"]["vms"]
    out = ['<h2>Bring-up: hainit\'s steps at first boot</h2>',
           '<p>Seconds per step, summed over hainit runs (a step that ended in a later run is charged the wait), '
           'every VM on the same scale.</p>']
    out.append('<div class="cols">')
    for name, svg in charts.items():
        vm = vms[name]
        state = ("" if vm.get("hainit") in (None, "ok")
                 else "; hainit %s (exit %s)" % (vm["hainit"], vm.get("hainit_exit")))
        out += ['<div><h3>%s: hainit %.1f s in all%s</h3>' % (esc(name), sum(vm["steps_s"].values()), esc(state)),
                svg, '</div>']
    out.append('</div>')
    return out


def rerun_section(reruns):
    """hainit once more on each converged VM after bring-up (rerun.run): a row per VM."""
    if not reruns:
        return []
    out = ['<h2>Re-run on a converged node: <code>hainit --role db|web</code> after bring-up</h2>',
           '<p>Wall time on the guest\'s clock; the goal is 0 actions within %.0f s.</p>' % rerun.TARGET_S,
           '<table class="rerun"><tr><th>VM</th><th>seconds</th><th>actions</th><th>steps changed</th>'
           '<th>slowest steps</th><th>exit</th><th>met</th></tr>']
    for name, r in reruns.items():
        if "seconds" not in r:
            out.append('<tr data-vm="%s"><td>%s</td><td colspan="5">%s</td><td><strong>no</strong></td></tr>'
                       % (esc(name), esc(name), esc(r.get("error"))))
            continue
        slowest = ", ".join("%s %s s" % kv for kv in r.get("slowest_steps_s", {}).items()) or "–"
        exit_ = "%s%s" % (r["exit"], ": " + r["error"] if r.get("error") else "")
        out.append('<tr data-vm="%s" data-s="%s" data-actions="%s"><td>%s</td><td class="num">%s</td>'
                   '<td class="num">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>'
                   % (esc(name), esc(r["seconds"]), esc(r["actions"]), esc(name), esc(r["seconds"]),
                      esc(r["actions"]), esc(", ".join(r["changed_steps"]) or "none"), esc(slowest), esc(exit_),
                      "yes" if rerun.met(r) else "<strong>no</strong>"))
    out.append('</table>')
    return out


def converge_section(conv):
    """A changed setting on the running cluster and back (converge.run)."""
    if not conv:
        return []
    ok = bool(conv.get("ok"))
    out = ['<h2>A changed setting on the running cluster: <code>%s</code> on %s '
           '<span class="verdict %s">%s</span></h2>' % (esc(conv.get("setting")), esc(conv.get("node")),
                                                        "pass" if ok else "fail", "PASS" if ok else "FAIL")]
    if not ok:
        out.append('<p>Failed: <code>%s</code></p>' % esc(converge.failure(conv)))
    rows = []
    if "old" in conv:
        rows.append(("setting in /etc/hainit/hainit.yaml", "%s → %s" % (conv["old"], conv["new"])))
    p = conv.get("plan")
    if p:
        rows.append(("plan: changing steps", ", ".join(p["changing_steps"]) or "none"))
        rows.append(("plan: actions, of them cibadmin --patch", "%d, %d" % (p["actions"], p["patch_actions"])))
        if p.get("why"):
            rows.append(("plan: the patch", p["why"]))
    a = conv.get("apply")
    if a:
        rows.append(("apply: seconds, actions, steps changed",
                     "%s, %s, %s" % (a["seconds"], a["actions"], ", ".join(a["changed_steps"]) or "none")))
    rb = conv.get("read_back")
    if rb:
        rows.append(("cibadmin --query: %s timeout" % rb["op"], "%s s → %s s (%s timeouts scaled)"
                     % (rb["before_s"], rb["after_s"], conv.get("ops_changed"))))
    if "converged_after" in conv:
        rows.append(("plan after apply", "converged" if conv["converged_after"] else "changes"))
    r = conv.get("restore")
    if r and r.get("apply"):
        rows.append(("original config back: apply seconds, CIB as before",
                     "%s, %s" % (r["apply"]["seconds"], "yes" if r.get("cib_as_before") else "no")))
    out.append('<table class="converge">%s</table>' % "".join(
        '<tr><th>%s</th><td>%s</td></tr>' % (esc(k), esc(v)) for k, v in rows))
    return out
