#!/usr/bin/env python3
"""A tiny fake WordPress for the browser check's tests: a front page listing posts with a theme
stylesheet and image, wp-login.php and a dashboard, as the real one shapes them.

  fake_wordpress.py --title T [--title T ...]   (the admin's password comes from HLAB_WP_PASSWORD)

Serves on 127.0.0.1, a free port, printed on stdout. Each site lives under /VARIANT/:
  good         everything as WordPress serves it
  private-css  stylesheet, image and links built from a wrong siteurl, http://10.0.2.4
  missing-post the front page leaves out the second post
  missing-css  the stylesheet it links answers 404
  bad-login    the admin's password is refused: the login form comes back with an error
  redirect     the front page redirects to the wrong siteurl
"""

import argparse
import html
import http.server
import os
import struct
import sys
import urllib.parse
import zlib

VARIANTS = ("good", "private-css", "missing-post", "missing-css", "bad-login", "redirect")
PRIVATE = "http://10.0.2.4"
CSS = b"body { font-family: sans-serif; background: #f4f0e8; } h2 a { color: #21409a; }\n"


def png(width=40, height=20, rgb=(33, 64, 154)):
    """A solid-colour PNG (the theme's header image)."""
    row = b"\0" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def front(site, assets, titles):
    css = assets + ("/wp-content/themes/fake/missing.css" if site.endswith("missing-css")
                    else "/wp-content/themes/fake/style.css")
    posts = "".join('<h2 class="wp-block-post-title"><a href="%s/?p=%d">%s</a></h2>\n' % (assets, i, html.escape(t))
                    for i, t in enumerate(titles, 1))
    return ("<!DOCTYPE html><html><head><title>hainit lab</title>"
            '<link rel="stylesheet" href="%s"></head><body class="home blog">'
            '<header><img src="%s/wp-content/themes/fake/header.png" alt=""></header><main>%s</main>'
            '<footer><a href="https://wordpress.org/">Proudly powered by WordPress</a></footer></body></html>'
            % (css, assets, posts))


LOGIN = ('<!DOCTYPE html><html><head><title>Log In</title></head><body class="login">%s'
         '<form name="loginform" id="loginform" action="%s/wp-login.php" method="post">'
         '<input type="text" name="log" id="user_login"><input type="password" name="pwd" id="user_pass">'
         '<input type="hidden" name="redirect_to" value="%s/wp-admin/">'
         '<input type="submit" name="wp-submit" id="wp-submit" value="Log In"></form></body></html>')
DASHBOARD = ('<!DOCTYPE html><html><head><title>Dashboard</title></head><body class="wp-admin wp-core-ui index-php">'
             '<div id="wpadminbar">hainit lab</div><h1>Dashboard</h1></body></html>')


class Handler(http.server.BaseHTTPRequestHandler):
    titles, password = [], ""

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", kind="text/html; charset=UTF-8", headers=()):
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def site(self):
        """(variant, this site's public base URL, the base its pages build URLs from, the rest of the path)."""
        path = urllib.parse.urlsplit(self.path).path
        _, variant, rest = (path.split("/", 2) + ["", ""])[:3]
        public = "http://%s/%s" % (self.headers["Host"], variant)
        return variant, public, PRIVATE + "/" + variant if variant == "private-css" else public, "/" + rest

    def do_GET(self):
        variant, public, assets, rest = self.site()
        titles = [t for i, t in enumerate(self.titles) if not (variant == "missing-post" and i == 1)]
        if variant not in VARIANTS:
            self.reply(404, "no such site")
        elif rest == "/" and variant == "redirect":
            self.reply(301, headers=[("Location", PRIVATE + "/" + variant + "/")])
        elif rest == "/":
            self.reply(200, front(public, assets, titles))
        elif rest == "/wp-content/themes/fake/style.css":
            self.reply(200, CSS, "text/css")
        elif rest == "/wp-content/themes/fake/header.png":
            self.reply(200, png(), "image/png")
        elif rest == "/wp-login.php":
            self.reply(200, LOGIN % ("", assets, assets), headers=[("Set-Cookie", "wordpress_test_cookie=WP; path=/")])
        elif rest == "/wp-admin/":
            if "wordpress_logged_in_fake=1" in (self.headers["Cookie"] or ""):
                self.reply(200, DASHBOARD)
            else:
                self.reply(302, headers=[("Location", public + "/wp-login.php")])
        else:
            self.reply(404, "not found")

    def do_POST(self):
        variant, public, assets, rest = self.site()
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"] or 0)).decode())
        wanted = "not the derived password" if variant == "bad-login" else self.password
        if rest != "/wp-login.php":
            self.reply(404, "not found")
        elif form.get("log") == ["wpadmin"] and form.get("pwd") == [wanted]:
            self.reply(302, headers=[("Location", form["redirect_to"][0]),
                                     ("Set-Cookie", "wordpress_logged_in_fake=1; path=/")])
        else:
            error = '<div id="login_error"><strong>Error:</strong> The password you entered for the username ' \
                    'wpadmin is incorrect.</div>'
            self.reply(200, LOGIN % (error, assets, assets))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--title", action="append", default=[])
    a = p.parse_args()
    Handler.titles, Handler.password = a.title, os.environ["HLAB_WP_PASSWORD"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
