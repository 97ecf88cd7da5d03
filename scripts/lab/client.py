#!/usr/bin/env python3
"""The drill's user: writes and reads WordPress posts through the public load balancer and writes
rows through the DB VIP. Runs inside the lab's network namespace. Prints one JSON object.

  client.py post  --url URL --title T [--deadline S]   log in, REST-create a post, until it works
  client.py get   --url URL --id N [--tries K]          REST read of post N (K reads: both web nodes)
  client.py http  --url URL [--deadline S]              first HTTP 200 for GET URL
  client.py fetch --url URL [--deadline S]              one GET URL that got an answer: status, body
  client.py vip   --host VIP --defaults FILE [--deadline S] [--note TEXT]
                                                        INSERT through the VIP until it succeeds
  client.py vip-loop --host VIP --defaults FILE --log FILE --stop FILE
                                                        INSERT every --pause s until FILE exists,
                                                        one JSON line per attempt (id, served_by)
Secrets come from the environment (HLAB_WP_USER, HLAB_WP_PASSWORD) or a 0600 defaults file, never
argv. Every attempt's error is kept (the last few are printed) with wall-clock times.
"""

import argparse
import http.client
import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ATTEMPT_TIMEOUT = 30.0
# A new flow the LB still sends to a web node that just went down (it is marked down only after
# its probes fail) gets no answer at all; a browser's user reloads long before 30 s. A live node
# completes the handshake in its kernel, in milliseconds even under emulation.
CONNECT_TIMEOUT = 5.0


def retry(attempt, deadline, pause):
    """Call attempt() until it returns a value or the deadline passes; JSON-able summary."""
    start = time.time()
    errors = []
    n = 0
    while True:
        n += 1
        t = time.time()
        try:
            value = attempt()
            return {"ok": True, "value": value, "t": round(time.time(), 3), "seconds": round(time.time() - start, 3),
                    "attempts": n, "errors": errors[-5:]}
        except Exception as e:  # every failure mode is a data point, not a crash
            errors.append({"t": round(t, 3), "error": ("%s: %s" % (type(e).__name__, e))[:300]})
        if time.time() - start > deadline:
            return {"ok": False, "seconds": round(time.time() - start, 3), "attempts": n, "errors": errors[-5:]}
        time.sleep(pause)


class Connection(http.client.HTTPConnection):
    """HTTPConnection with its own connect timeout (CONNECT_TIMEOUT); reads keep ATTEMPT_TIMEOUT."""

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT, self.source_address)
        self.sock.settimeout(self.timeout)


class Handler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(Connection, req)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wp_post(url, title, content, user=None, password=None):
    """Log in as the admin like a browser (cookies), take the REST nonce, create a published post.
    Each request is a new connection, so the LB may send each to a different web node: the login
    cookie works on every node only because they share WordPress's keys and salts. The login comes
    from the arguments or the environment (HLAB_WP_USER, HLAB_WP_PASSWORD), never argv."""
    user = user or os.environ["HLAB_WP_USER"]
    password = password or os.environ["HLAB_WP_PASSWORD"]
    base = url.rstrip("/")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(Handler(), urllib.request.HTTPCookieProcessor(jar), NoRedirect())
    opener.open(base + "/wp-login.php", timeout=ATTEMPT_TIMEOUT).read()
    form = urllib.parse.urlencode({"log": user, "pwd": password,
                                   "wp-submit": "Log In", "testcookie": "1",
                                   "redirect_to": base + "/wp-admin/"}).encode()
    try:  # 302 to the dashboard on success; not followed (the dashboard is slow under emulation)
        opener.open(base + "/wp-login.php", data=form, timeout=ATTEMPT_TIMEOUT).read()
    except urllib.error.HTTPError as e:
        if e.code != 302:
            raise
    if not any(c.name.startswith("wordpress_logged_in_") for c in jar):
        raise RuntimeError("login as %s refused" % user)
    nonce = opener.open(base + "/wp-admin/admin-ajax.php?action=rest-nonce",
                        timeout=ATTEMPT_TIMEOUT).read().decode().strip()
    body = json.dumps({"title": title, "content": content, "status": "publish"}).encode()
    req = urllib.request.Request(base + "/?rest_route=/wp/v2/posts", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-WP-Nonce": nonce})
    with opener.open(req, timeout=ATTEMPT_TIMEOUT) as r:
        if r.status != 201:
            raise RuntimeError("HTTP %d creating the post" % r.status)
        return int(json.loads(r.read())["id"])


def http_get(url):
    u = urllib.parse.urlsplit(url)
    conn = Connection(u.hostname, u.port or 80, timeout=ATTEMPT_TIMEOUT)
    try:
        conn.request("GET", (u.path or "/") + ("?" + u.query if u.query else ""), headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wp_get(url, post_id):
    status, body = http_get(url.rstrip("/") + "/?rest_route=/wp/v2/posts/%d" % post_id)
    if status != 200:
        raise RuntimeError("HTTP %d for post %d: %s" % (status, post_id, body[:200]))
    return json.loads(body)["title"]["rendered"]


def fetch(url, limit=65536):
    """One GET: {"status", "body"} (text, at most `limit` bytes), whatever the status."""
    status, body = http_get(url)
    return {"status": status, "body": body[:limit].decode(errors="replace")}


def http_ok(url):
    status, body = http_get(url)
    if status != 200:
        raise RuntimeError("HTTP %d: %s" % (status, body[:200]))
    return len(body)


def vip_insert(host, defaults, note):
    """One INSERT through the VIP; the row's `t` (its unique stamp), id and the serving host."""
    now = time.time()
    stamp = "%.6f-%d" % (now, os.getpid())
    sql = ("CREATE TABLE IF NOT EXISTS lab_heartbeat (id INT AUTO_INCREMENT PRIMARY KEY, t DOUBLE, "
           "stamp VARCHAR(40), note VARCHAR(64), served_by VARCHAR(64)); "
           "INSERT INTO lab_heartbeat (t, stamp, note, served_by) VALUES (%.3f, '%s', '%s', @@hostname); "
           "SELECT CONCAT(@@hostname, ' ', LAST_INSERT_ID());" % (now, stamp, note.replace("'", "")))
    r = subprocess.run(["mariadb", "--defaults-extra-file=" + defaults, "-h", host, "--connect-timeout=3",
                        "-N", "-B", "-e", sql], capture_output=True, text=True, timeout=ATTEMPT_TIMEOUT + 5)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[:300])
    served_by, _, row = r.stdout.strip().partition(" ")
    return {"served_by": served_by, "id": int(row) if row.isdigit() else None, "stamp": stamp}


def vip_loop(host, defaults, log, stop, pause):
    """Keep writing until the stop file appears; every attempt is a line (the split-brain record)."""
    with open(log, "a", buffering=1) as f:
        while not os.path.exists(stop):
            t = time.time()
            try:
                row = vip_insert(host, defaults, "loop")
                # t: attempt started; t_ack: the server's answer arrived (gaps in t_ack are I/O freezes)
                f.write(json.dumps({"t": round(t, 3), "t_ack": round(time.time(), 3), "ok": True, **row}) + "\n")
            except Exception as e:
                f.write(json.dumps({"t": round(t, 3), "ok": False, "error": str(e)[:200]}) + "\n")
            time.sleep(pause)
    return {"ok": True}


def main(argv=None):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("post", "get", "http", "fetch", "vip", "vip-loop"):
        s = sub.add_parser(name)
        s.add_argument("--deadline", type=float, default=0)
        s.add_argument("--pause", type=float, default=1.0)
        if name in ("post", "get", "http", "fetch"):
            s.add_argument("--url", required=True)
    sub.choices["post"].add_argument("--title", required=True)
    sub.choices["post"].add_argument("--content", default="written by the hainit lab drill")
    sub.choices["get"].add_argument("--id", type=int, required=True)
    sub.choices["get"].add_argument("--tries", type=int, default=1)
    sub.choices["vip"].add_argument("--host", required=True)
    sub.choices["vip"].add_argument("--defaults", required=True)
    sub.choices["vip"].add_argument("--note", default="drill")
    for k in ("--host", "--defaults", "--log", "--stop"):
        sub.choices["vip-loop"].add_argument(k, required=True)
    a = p.parse_args(argv)
    if a.cmd == "post":
        result = retry(lambda: wp_post(a.url, a.title, a.content), a.deadline, a.pause)
    elif a.cmd == "get":
        reads = [retry(lambda: wp_get(a.url, a.id), a.deadline, a.pause) for _ in range(a.tries)]
        result = {"ok": all(r["ok"] for r in reads), "value": reads[-1].get("value"), "reads": reads}
    elif a.cmd == "http":
        result = retry(lambda: http_ok(a.url), a.deadline, a.pause)
    elif a.cmd == "fetch":
        result = retry(lambda: fetch(a.url), a.deadline, a.pause)
    elif a.cmd == "vip":
        result = retry(lambda: vip_insert(a.host, a.defaults, a.note), a.deadline, a.pause)
    else:
        result = vip_loop(a.host, a.defaults, a.log, a.stop, a.pause)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
