#!/usr/bin/env python3
"""The drill's user: writes and reads WordPress posts and media through the public load balancer and
writes rows through the DB VIP, as a browser and wp-admin do (never XML-RPC, which hainit closes).
Runs inside the lab's network namespace (and against Azure). Prints one JSON object.

  client.py post  --url URL --title T [--deadline S]   log in, REST-create a post, until it works
  client.py get   --url URL --id N [--tries K]          REST read of post N (K reads: both web nodes)
  client.py upload --url URL --name N [--deadline S]    log in, upload a new PNG into the media library
                                                        as wp-admin does (async-upload.php with the
                                                        nonce of media-new.php): {id, url, sha256, bytes}
  client.py fetch --url URL --sha256 HEX [--deadline S] GET URL until it answers 200 with these bytes
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
import hashlib
import http.client
import http.cookiejar
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib

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


def login(base, user=None, password=None):
    """Log in as the admin like a browser: an opener that keeps the cookies. Each request is a new
    connection, so the LB may send each to a different web node: the login cookie works on every
    node only because they share WordPress's keys and salts. The login comes from the arguments or
    the environment (HLAB_WP_USER, HLAB_WP_PASSWORD), never argv."""
    user = user or os.environ["HLAB_WP_USER"]
    password = password or os.environ["HLAB_WP_PASSWORD"]
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
    return opener


def wp_post(url, title, content, user=None, password=None):
    """Log in, take the REST nonce (admin-ajax), create a published post: its id."""
    base = url.rstrip("/")
    opener = login(base, user, password)
    nonce = opener.open(base + "/wp-admin/admin-ajax.php?action=rest-nonce",
                        timeout=ATTEMPT_TIMEOUT).read().decode().strip()
    body = json.dumps({"title": title, "content": content, "status": "publish"}).encode()
    req = urllib.request.Request(base + "/?rest_route=/wp/v2/posts", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-WP-Nonce": nonce})
    with opener.open(req, timeout=ATTEMPT_TIMEOUT) as r:
        if r.status != 201:
            raise RuntimeError("HTTP %d creating the post" % r.status)
        return int(json.loads(r.read())["id"])


def png(text):
    """A small valid PNG whose pixels spell `text` as bytes: every upload's bytes are its own."""
    width = max(16, len(text))
    row = bytes([0]) + bytes(((b * 7 + x) % 256) for x, b in enumerate(text.encode().ljust(width, b".")))
    raw = row * 8  # 8 rows of 8-bit greyscale, filter 0

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    header = struct.pack(">IIBBBBB", width, 8, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def multipart(fields, file_field, filename, data, content_type):
    """A multipart/form-data body, as a browser's FormData sends it: (body, content type)."""
    boundary = "----hainitlab" + uuid.uuid4().hex
    out = []
    for k, v in fields.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (boundary, k, v)).encode())
    out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\nContent-Type: %s\r\n\r\n"
                % (boundary, file_field, filename, content_type)).encode())
    out += [data, ("\r\n--%s--\r\n" % boundary).encode()]
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def media_nonce(page):
    """The `media-form` nonce wp-admin/media-new.php hands its uploader (wpUploaderInit)."""
    m = re.search(r'"multipart_params":\{[^}]*"_wpnonce":"([0-9a-f]+)"', page)
    if not m:
        raise RuntimeError("no upload nonce in media-new.php (%d bytes)" % len(page))
    return m.group(1)


def wp_upload(url, name):
    """Log in, open Media > Add New, post a new PNG to async-upload.php as its uploader does: the
    attachment's id, URL and the bytes' sha256."""
    base = url.rstrip("/")
    opener = login(base)
    page = opener.open(base + "/wp-admin/media-new.php", timeout=ATTEMPT_TIMEOUT).read().decode(errors="replace")
    data = png("%s %s %f" % (name, uuid.uuid4().hex, time.time()))
    body, ctype = multipart({"name": name + ".png", "action": "upload-attachment", "_wpnonce": media_nonce(page)},
                            "async-upload", name + ".png", data, "image/png")
    req = urllib.request.Request(base + "/wp-admin/async-upload.php", data=body, method="POST",
                                 headers={"Content-Type": ctype})
    with opener.open(req, timeout=ATTEMPT_TIMEOUT) as r:
        answer = r.read()
    try:
        reply = json.loads(answer)
    except ValueError:
        raise RuntimeError("async-upload.php did not answer JSON: %r" % answer[:200])
    if not reply.get("success"):
        raise RuntimeError("upload refused: %s" % json.dumps(reply.get("data"))[:300])
    return {"id": reply["data"]["id"], "url": reply["data"]["url"], "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data)}


def fetch_exact(url, sha256):
    """GET url: 200 with exactly the bytes of this sha256, else an error saying what came."""
    status, body = http_get(url)
    got = hashlib.sha256(body).hexdigest()
    if status != 200 or got != sha256:
        raise RuntimeError("HTTP %d, %d bytes, sha256 %s (want %s)" % (status, len(body), got[:16], sha256[:16]))
    return {"sha256": got, "bytes": len(body)}


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
    for name in ("post", "get", "upload", "fetch", "http", "vip", "vip-loop"):
        s = sub.add_parser(name)
        s.add_argument("--deadline", type=float, default=0)
        s.add_argument("--pause", type=float, default=1.0)
        if name in ("post", "get", "upload", "fetch", "http"):
            s.add_argument("--url", required=True)
    sub.choices["post"].add_argument("--title", required=True)
    sub.choices["post"].add_argument("--content", default="written by the hainit lab drill")
    sub.choices["get"].add_argument("--id", type=int, required=True)
    sub.choices["get"].add_argument("--tries", type=int, default=1)
    sub.choices["upload"].add_argument("--name", required=True)
    sub.choices["fetch"].add_argument("--sha256", help="200 with exactly these bytes, else an error")
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
    elif a.cmd == "upload":
        result = retry(lambda: wp_upload(a.url, a.name), a.deadline, a.pause)
    elif a.cmd == "fetch":
        if a.sha256:
            result = retry(lambda: fetch_exact(a.url, a.sha256), a.deadline, a.pause)
        else:
            result = retry(lambda: fetch(a.url), a.deadline, a.pause)
    elif a.cmd == "http":
        result = retry(lambda: http_ok(a.url), a.deadline, a.pause)
    elif a.cmd == "vip":
        result = retry(lambda: vip_insert(a.host, a.defaults, a.note), a.deadline, a.pause)
    else:
        result = vip_loop(a.host, a.defaults, a.log, a.stop, a.pause)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
