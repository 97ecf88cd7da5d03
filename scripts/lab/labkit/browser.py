"""What a visitor sees: headless Chromium opens the site through the public load balancer.

After the drill, Chromium loads the front page and logs in to wp-admin, and the lab judges what it
saw (issue 22, item 3): every drill post's title on the front page; a stylesheet from the public
address applied; no request, redirect, link or asset pointing at a private or loopback address (a
wrong `siteurl` shows up exactly so: the theme's CSS comes from http://10.0.2.4/...); the login
landing on the dashboard. Screenshots of the front page and the dashboard go to RUN/browser/.

Chromium is driven over its DevTools protocol on a pipe (--remote-debugging-pipe: it reads
commands on fd 3 and writes answers and events on fd 4, JSON messages ending in NUL): nothing
listens on a port, the standard library suffices, and the browser runs wherever its command
prefix puts it (the lab's network namespace: `ip netns exec`). Every request the pages make is
recorded from the Network domain's events, redirects included.
"""

import base64
import fcntl
import ipaddress
import json
import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

from . import common

CHROMIUM = "chromium"
# As root Chromium needs --no-sandbox; without the background-networking switches it dials
# Google's services, which a closed network refuses (and the lab's namespace has no route for).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server", "--hide-scrollbars", "--remote-debugging-pipe"]
WINDOW = (1280, 900)
MAX_SHOT_HEIGHT = 2400
# Assets whose failure a visitor sees (the theme's CSS, images, fonts, scripts).
ASSET_TYPES = ("Stylesheet", "Image", "Font", "Script")


class BrowserError(common.LabError):
    """Chromium could not be started or driven; the message says what it was doing."""


# ---- the DevTools pipe ----------------------------------------------------------------------

class DevTools:
    """One headless Chromium and its DevTools pipe. Events are recorded as they arrive (`on_event`)
    and kept for wait(); answers are matched to their calls by id."""

    def __init__(self, prefix=(), log_path=None, on_event=None):
        self.prefix, self.log_path, self.on_event = list(prefix), log_path, on_event
        self.proc, self.profile, self.buf, self.rfd, self.wfd = None, None, b"", None, None
        self.next_id, self.answers, self.pending = 0, {}, []

    def start(self):
        if shutil.which(CHROMIUM) is None:
            raise BrowserError("%s is not installed (Debian package chromium; .ci/run installs it)" % CHROMIUM)
        self.profile = tempfile.mkdtemp(prefix="hainit-chromium-")
        # Chromium's ends of the two pipes go to fds 3 and 4 in the child; ours stay here. Its ends
        # are first moved above 9, so placing one at 3 cannot overwrite the other.
        to_child, self.wfd = os.pipe()
        self.rfd, from_child = os.pipe()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child, from_child)]
        for fd in (to_child, from_child):
            os.close(fd)

        def pipes_at_3_and_4():  # only two syscalls: safe in the child of a threaded parent
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)
        argv = self.prefix + [CHROMIUM] + FLAGS + ["--window-size=%d,%d" % WINDOW,
                                                  "--user-data-dir=" + self.profile, "about:blank"]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=pipes_at_3_and_4, pass_fds=(3, 4), start_new_session=True)
        finally:
            for fd in high:
                os.close(fd)
            if log is not subprocess.DEVNULL:
                log.close()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Browser.close, then SIGKILL of Chromium's own process group if it lingers; the profile goes."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.send("Browser.close")
                self.proc.wait(10)
            except (BrowserError, subprocess.TimeoutExpired):
                pass
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for fd in (self.wfd, self.rfd):
            if fd is not None:
                os.close(fd)
        self.wfd = self.rfd = None
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self.wfd, data):]
        except BrokenPipeError:
            raise BrowserError("chromium exited (%s) before %s; see %s"
                               % (self.proc.poll(), method, self.log_path or "its stderr")) from None
        return self.next_id

    def read(self, deadline):
        """One message (answer or event) or None when the deadline passed."""
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                return None
            chunk = os.read(self.rfd, 1 << 16)
            if not chunk:
                raise BrowserError("chromium closed its DevTools pipe (exit %s; see %s)"
                                   % (self.proc.poll(), self.log_path or "its stderr"))
            self.buf += chunk
        raw, _, self.buf = self.buf.partition(b"\0")
        msg = json.loads(raw)
        if "id" in msg:
            self.answers[msg["id"]] = msg
        else:
            if self.on_event:
                self.on_event(msg)
            self.pending.append(msg)
        return msg

    def call(self, method, params=None, session=None, timeout=60):
        i = self.send(method, params, session)
        deadline = time.time() + timeout
        while i not in self.answers:
            if self.read(deadline) is None and i not in self.answers:
                raise BrowserError("chromium did not answer %s within %d s" % (method, timeout))
        msg = self.answers.pop(i)
        if "error" in msg:
            raise BrowserError("%s: %s" % (method, msg["error"].get("message")))
        return msg.get("result", {})

    def mark(self):
        """A point in the event stream: wait() looks only at events after it."""
        self.pending.clear()
        return self

    def wait(self, pred, timeout, what):
        """The first event after mark() for which pred(event) holds."""
        deadline = time.time() + timeout
        while True:
            while self.pending:
                e = self.pending.pop(0)
                if pred(e):
                    return e
            if self.read(deadline) is None and not self.pending:
                raise BrowserError("timed out after %d s waiting for %s" % (timeout, what))


# ---- one tab: navigation, network record, page facts ----------------------------------------

# Everything the judge needs from a loaded page, read in the page.
FACTS_JS = r"""(() => {
  const urls = [];
  // Attributes, resolved against the document (an SVG <a>'s href property is no string).
  const add = (kind, u) => {
    if (!u) return;
    try { urls.push({kind: kind, url: new URL(u, document.baseURI).href}); } catch (e) { urls.push({kind: kind, url: u}); }
  };
  const each = (sel, kind, attr) => document.querySelectorAll(sel).forEach(e => add(kind(e), e.getAttribute(attr)));
  const srcset = (sel, kind) => document.querySelectorAll(sel).forEach(e =>
    e.getAttribute('srcset').split(',').forEach(p => add(kind, p.trim().split(/\s+/)[0])));
  each('a[href]', () => 'link', 'href');
  each('link[href]', e => '<link rel=' + e.getAttribute('rel') + '>', 'href');
  each('script[src]', () => 'script', 'src');
  each('img[src]', () => 'image', 'src');
  srcset('img[srcset], source[srcset]', 'image srcset');
  each('form[action]', () => 'form', 'action');
  const sheets = Array.from(document.styleSheets).map(s => {
    let rules = null;
    try { rules = s.cssRules.length; } catch (e) {}
    return {href: s.href, rules: rules};
  });
  const images = Array.from(document.images).map(i => ({url: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}));
  const error = document.getElementById('login_error');
  return {url: location.href, title: document.title, text: document.body ? document.body.innerText : '',
          body_class: document.body ? document.body.className : '', urls: urls, sheets: sheets, images: images,
          resources: performance.getEntriesByType('resource').map(e => e.name),
          login_error: error ? error.innerText.trim() : null};
})()"""


class Tab:
    """A page target on its own session; every request it makes lands in `requests` under the
    label of the page that made it."""

    def __init__(self, dt):
        self.dt, self.label, self.requests, self.inflight, self.session = dt, None, {}, set(), None
        dt.on_event = self.record
        target = dt.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Network.enable", "Runtime.enable"):
            self.call(method)
        self.call("Network.setCacheDisabled", {"cacheDisabled": True})

    def call(self, method, params=None, timeout=60):
        return self.dt.call(method, params, self.session, timeout)

    def record(self, e):
        if e.get("sessionId") != self.session or not e["method"].startswith("Network."):
            return
        p = e["params"]
        rid = "%s/%s" % (self.label, p.get("requestId"))
        if e["method"] == "Network.requestWillBeSent":
            rec = self.requests.setdefault(rid, {"page": self.label, "url": p["request"]["url"],
                                                 "type": p.get("type"), "redirects": []})
            if p.get("redirectResponse"):
                r = p["redirectResponse"]
                rec["redirects"].append({"url": r.get("url"), "status": r.get("status"),
                                         "location": header(r.get("headers"), "location")})
            rec["url"] = p["request"]["url"]
            self.inflight.add(rid)
        elif e["method"] == "Network.responseReceived" and rid in self.requests:
            r = p["response"]
            self.requests[rid].update(status=r.get("status"), mime=r.get("mimeType"), type=p.get("type"))
        elif e["method"] == "Network.loadingFailed" and rid in self.requests:
            self.requests[rid]["error"] = p.get("blockedReason") or p.get("errorText")
            self.inflight.discard(rid)
        elif e["method"] == "Network.loadingFinished":
            self.inflight.discard(rid)

    def loaded(self, timeout, navigated=False):
        """Wait for the main frame's load event (after its navigation when `navigated`), then up to 10 s
        for the network to go quiet (late images and fonts)."""
        if navigated:
            self.dt.wait(lambda e: e.get("sessionId") == self.session and e["method"] == "Page.frameNavigated"
                         and not e["params"]["frame"].get("parentId"), timeout, "the page to navigate")
        self.dt.wait(lambda e: e.get("sessionId") == self.session and e["method"] == "Page.loadEventFired",
                     timeout, "the page's load event")
        quiet_since, deadline = time.time(), time.time() + 10
        while time.time() < deadline and time.time() - quiet_since < 0.5:
            self.dt.read(time.time() + 0.1)
            if self.inflight:
                quiet_since = time.time()

    def goto(self, label, url, timeout):
        """Load url; the navigation's error text, or None."""
        self.label = label
        self.dt.mark()
        r = self.call("Page.navigate", {"url": url}, timeout)
        if r.get("errorText"):
            return r["errorText"]
        self.loaded(timeout)
        return None

    def evaluate(self, expression, timeout=60):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, timeout)
        if "exceptionDetails" in r:
            raise BrowserError("in the page: %s" % r["exceptionDetails"].get("text"))
        return r["result"].get("value")

    def facts(self):
        return self.evaluate(FACTS_JS)

    def login(self, user, password, timeout):
        """Fill wp-login.php's form and submit it as a visitor would; False when there is no form."""
        self.label = "login"
        self.dt.mark()
        found = self.evaluate(
            "(() => { const u = document.getElementById('user_login'), p = document.getElementById('user_pass'),"
            " b = document.getElementById('wp-submit'); if (!u || !p || !b) return false;"
            " u.value = %s; p.value = %s; b.click(); return true; })()" % (json.dumps(user), json.dumps(password)))
        if found:
            self.loaded(timeout, navigated=True)
        return bool(found)

    def screenshot(self, path):
        """The page from the top, as wide as the window and at most MAX_SHOT_HEIGHT px tall."""
        m = self.call("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m["contentSize"]
        clip = {"x": 0, "y": 0, "width": max(WINDOW[0], math.ceil(size["width"])),
                "height": min(MAX_SHOT_HEIGHT, max(WINDOW[1], math.ceil(size["height"]))), "scale": 1}
        r = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}, 120)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))


def header(headers, name):
    return next((v for k, v in (headers or {}).items() if k.lower() == name), None)


# ---- the visit and its verdict --------------------------------------------------------------

def visit(url, user, password, shots_dir, prefix=(), timeout=180, log_path=None):
    """Front page, then wp-admin's login: what Chromium saw (pure data), screenshots in shots_dir."""
    base = url.rstrip("/") + "/"
    seen = {"url": base, "pages": {}, "screenshots": {}}
    t0 = time.time()
    with DevTools(prefix, log_path) as dt:
        seen["chromium"] = dt.call("Browser.getVersion").get("product")
        tab = Tab(dt)
        for label, path, shot in (("front", "", "front-page.png"), ("login", "wp-login.php", "dashboard.png")):
            t = time.time()
            page = {"error": tab.goto(label, base + path, timeout)}
            if label == "login" and page["error"] is None:
                page["form"] = tab.login(user, password, timeout)
            page.update(tab.facts())
            page["seconds"] = round(time.time() - t, 1)
            tab.screenshot(os.path.join(shots_dir, shot))
            seen["screenshots"][label] = shot
            seen["pages"][label] = page
        seen["requests"] = list(tab.requests.values())
    seen["seconds"] = round(time.time() - t0, 1)
    return seen


def origin(url):
    u = urllib.parse.urlsplit(url)
    return (u.scheme, (u.hostname or "").lower(), u.port or {"http": 80, "https": 443}.get(u.scheme))


def off_site(url, public):
    """Why url points where a visitor cannot follow it (a node's private address, loopback, a name
    only the VNet resolves), or None: the public address itself, or any public host."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or origin(url) == origin(public):
        return None
    host = (u.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None if "." in host else "a host name only the private network resolves"
    if ip.is_loopback:
        return "loopback"
    if ip.is_private or ip.is_link_local or ip.is_unspecified or ip.is_reserved:
        return "a private address"
    return None


def judge(seen, titles, user):
    """The verdict on a visit: a list of failures, each naming the post or URL it is about."""
    public = seen["url"]
    bad = front_failures(seen, titles) + login_failures(seen, user)
    for r in seen["requests"]:
        status = r.get("status") or 0
        if (r.get("error") or status >= 400) and r.get("type") in ASSET_TYPES and origin(r["url"]) == origin(public):
            bad.append("%s %s on the %s did not load: %s" % (r["type"].lower(), r["url"], PAGE_NAMES[r["page"]],
                                                             "HTTP %d" % status if status >= 400 else r["error"]))
    for label, page in seen["pages"].items():
        bad += ["image %s on the %s is broken" % (i["url"], PAGE_NAMES[label])
                for i in page.get("images", []) if not i["ok"] and origin(i["url"]) == origin(public)]
    found = off_site_urls(seen)
    for url, (what, page, why) in list(found.items())[:MAX_OFF_SITE]:
        bad.append("%s %s on the %s points at %s (%s), not at the public address %s"
                   % (what, url, PAGE_NAMES[page], why, urllib.parse.urlsplit(url).hostname, public))
    if len(found) > MAX_OFF_SITE:
        bad.append("and %d more URLs off the public address (browser/visit.json)" % (len(found) - MAX_OFF_SITE))
    return bad


MAX_OFF_SITE = 8


def front_failures(seen, titles):
    public, front = seen["url"], seen["pages"]["front"]
    if front["error"]:
        return ["the front page %s did not load: %s" % (public, front["error"])]
    bad = []
    doc = main_document(seen, "front")
    if doc is None or doc.get("status") != 200:
        answer = "nothing" if doc is None else "HTTP %s" % doc.get("status")
        bad.append("the front page %s answered %s" % (public, answer))
    bad += ["post %d \"%s\" is not on the front page" % (n, t) for n, t in enumerate(titles, 1)
            if not shows(front, t)]
    if not any(s["href"] and origin(s["href"]) == origin(public) and s["rules"] for s in front["sheets"]):
        bad.append("no stylesheet from the public address %s was applied to the front page (CSS missing)" % public)
    return bad


def login_failures(seen, user):
    public, login = seen["url"], seen["pages"]["login"]
    if login["error"]:
        return ["wp-login.php did not load: %s" % login["error"]]
    if not login.get("form"):
        return ["no login form at %swp-login.php (ended at %s)" % (public, login["url"])]
    if not is_dashboard(login, public):
        return ["the wp-admin login as %s did not land on the dashboard: the browser ended at %s (\"%s\")%s"
                % (user, login["url"], login["title"],
                   "; the page says: %s" % login["login_error"] if login.get("login_error") else "")]
    return []


def off_site_urls(seen):
    """{url: (how it was seen, page, why)} for every URL off the public address, each once: requests
    and their redirects first, then the pages' links, assets and resource timings."""
    found = {}

    def see(url, what, page):
        why = off_site(url, seen["url"]) if isinstance(url, str) else None
        if why and url not in found:
            found[url] = (what, page, why)
    for r in seen["requests"]:
        chain = [hop["url"] for hop in r["redirects"]] + [r["url"]]
        for src, dst in zip(chain, chain[1:]):
            see(dst, "a redirect from %s to" % src, r["page"])
        for u in chain:
            see(u, "a request for %s" % (r["type"] or "a resource").lower(), r["page"])
    for label, page in seen["pages"].items():
        for u in page.get("urls", []):
            see(u["url"], u["kind"], label)
        for u in page.get("resources", []):
            see(u, "a resource", label)
    return found


def shows(page, title):
    """The title is in the page's visible text (whitespace and case as CSS may render them)."""
    return " ".join(title.split()).casefold() in " ".join(page["text"].split()).casefold()


PAGE_NAMES = {"front": "front page", "login": "login and dashboard"}


def main_document(seen, page):
    docs = [r for r in seen["requests"] if r["page"] == page and r.get("type") == "Document"]
    return docs[0] if docs else None


def is_dashboard(page, public):
    """WordPress's dashboard: wp-admin/ on the public address, body classes wp-admin and index-php."""
    classes = page["body_class"].split()
    path = urllib.parse.urlsplit(page["url"]).path
    return (origin(page["url"]) == origin(public) and "/wp-admin/" in path + "/" and "wp-admin" in classes
            and "index-php" in classes)


def check(url, titles, user, password, run_dir, prefix=(), timeout=180):
    """Visit the site and judge it: {ok, failed, front, login, screenshots, ...} for report.json;
    the whole record (every request) in RUN/browser/visit.json, screenshots beside it."""
    out_dir = os.path.join(run_dir, "browser")
    os.makedirs(out_dir, exist_ok=True)
    seen = visit(url, user, password, out_dir, prefix, timeout, os.path.join(out_dir, "chromium.log"))
    failed = judge(seen, titles, user)
    for page in seen["pages"].values():
        page["text"] = page["text"][:4000]
    common.write_json(os.path.join(out_dir, "visit.json"), seen)
    front, login = seen["pages"]["front"], seen["pages"]["login"]
    sheets = sorted({s["href"] for s in front["sheets"] if s["href"] and s["rules"]})
    return {
        "ok": not failed, "failed": failed, "url": seen["url"], "chromium": seen.get("chromium"),
        "seconds": seen["seconds"], "requests": len(seen["requests"]),
        "front": {"url": front["url"], "title": front["title"], "seconds": front["seconds"],
                  "posts_seen": sum(1 for t in titles if shows(front, t)),
                  "posts": len(titles), "stylesheets": sheets,
                  "images": len([i for i in front["images"] if i["ok"]])},
        "login": {"url": login["url"], "title": login["title"], "seconds": login["seconds"],
                  "dashboard": is_dashboard(login, seen["url"])},
        "screenshots": {"front page": "browser/" + seen["screenshots"]["front"],
                        "dashboard": "browser/" + seen["screenshots"]["login"]},
    }


def check_lab(lab, posts, url):
    """The drill's end: Chromium in the lab's namespace, through the public LB at url, as the admin
    the drill's client logs in as."""
    user, password = lab.wp_admin()
    r = check(url, [p["title"] for p in posts], user, password, lab.run_dir, prefix=lab.net.cmd([]))
    lab.log("browser: front page %s s (%d/%d posts, %d stylesheet(s)), login -> %s %s s; %s"
            % (r["front"]["seconds"], r["front"]["posts_seen"], r["front"]["posts"], len(r["front"]["stylesheets"]),
               "dashboard" if r["login"]["dashboard"] else r["login"]["url"], r["login"]["seconds"],
               "ok" if r["ok"] else "; ".join(r["failed"])))
    return r


def report_lines(b):
    """report.md's lines on the browser check (scenario drill): what Chromium saw, the screenshots."""
    if not b:
        return []
    front, login = b["front"], b["login"]
    return ["", "In a browser (headless %s, through %s): %s" % (b.get("chromium"), b["url"], "ok" if b["ok"] else
                                                                  "**%d failure(s)**, listed above" % len(b["failed"])),
            "",
            "- front page: %d of %d drill posts shown, %d stylesheet(s) applied, %d image(s), %s s"
            % (front["posts_seen"], front["posts"], len(front["stylesheets"]), front["images"], front["seconds"]),
            "- wp-admin login as the admin: %s, %s s" % ("landed on the dashboard" if login["dashboard"] else
                                                      "ended at %s (\"%s\")" % (login["url"], login["title"]),
                                                      login["seconds"]),
            "- %d requests recorded, each checked for its host (browser/visit.json)" % b["requests"],
            "", " ".join("![%s](%s)" % kv for kv in b["screenshots"].items())]
