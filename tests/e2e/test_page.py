#!/usr/bin/env python3
"""The status page at GET / (docs/status-page.md).

PageHTTP checks the page as served, without a browser: headers, a strict
Content-Security-Policy whose hashes match the inline script and style,
no external assets, the server-rendered table, and escaping.

PageBrowser drives the page in headless Chromium through page_driver.mjs
(Node, playwright-core, /usr/bin/chromium): rows appear and disappear live
as leases come and go, links open the leased service, and the console shows
no error and no CSP violation. It is skipped, with one line saying what is
missing, when node, Chromium or playwright-core is not installed.
"""

import base64
import hashlib
import html.parser
import http.server
import json
import os
import queue
import random
import shutil
import subprocess
import tempfile
import threading
import unittest

from berthtest import BerthTestCase, main

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "page_driver.mjs")
HOSTILE = "</td><script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;"

CSP_FIXED = {
    "default-src": ["'none'"],
    "connect-src": ["'self'"],
    "img-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}


def pool_args():
    """A random 200-port pool outside the ephemeral range (tests run in
    parallel)."""
    lo = random.randrange(61000, 65535 - 200)
    return ("--range", "%d-%d" % (lo, lo + 199))


def parse_csp(value):
    """{directive: [sources]} of a Content-Security-Policy header."""
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def sha256_source(text):
    return "'sha256-%s'" % base64.b64encode(
        hashlib.sha256(text.encode()).digest()).decode()


class PageParser(html.parser.HTMLParser):
    """The page's tags, inline script and style texts, and lease rows."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []          # (tag, attrs dict)
        self.scripts = []
        self.styles = []
        self.rows = []          # {"attrs", "cells": [text], "hrefs"}
        self.tbody = None
        self._raw = None        # "script" or "style" while inside one
        self._cell = None
        self._in_leases = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in ("script", "style"):
            self._raw = tag
            (self.scripts if tag == "script" else self.styles).append("")
        elif tag == "tbody" and a.get("id") == "leases":
            self.tbody = a
            self._in_leases = True
        elif tag == "tr" and self._in_leases:
            self.rows.append({"attrs": a, "cells": [], "hrefs": []})
        elif tag == "td" and self._in_leases:
            self.rows[-1]["cells"].append("")
            self._cell = True
        elif tag == "a" and self._in_leases:
            self.rows[-1]["hrefs"].append(a.get("href"))
        elif tag == "div" and self._cell and self.rows[-1]["cells"][-1]:
            self.rows[-1]["cells"][-1] += "\n"

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._raw = None
        elif tag == "tbody":
            self._in_leases = False
        elif tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._raw == "script":
            self.scripts[-1] += data
        elif self._raw == "style":
            self.styles[-1] += data
        elif self._cell:
            self.rows[-1]["cells"][-1] += data

    def row(self, name):
        for r in self.rows:
            if r["attrs"].get("data-name") == name:
                return r
        return None


def parse_page(body):
    p = PageParser()
    p.feed(body)
    p.close()
    return p


class PageHTTP(BerthTestCase):
    """GET / as served: headers, CSP, assets, table, escaping."""

    def setUp(self):
        super().setUp()
        self.d = self.berthd(*pool_args())

    def test_status_type_and_headers(self):
        r = self.d.get("/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Type"], "text/html; charset=utf-8")
        self.assertEqual(r.headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(r.headers["Cache-Control"], "no-store")
        self.assertEqual(r.headers["Referrer-Policy"], "no-referrer")
        self.assertEqual(int(r.headers["X-Berth-Index"]), r.index)
        self.assertTrue(r.body.startswith("<!doctype html>"), r.body[:80])
        h = self.d.request("HEAD", "/")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, "")
        self.assertEqual(h.headers["Content-Security-Policy"],
                         r.headers["Content-Security-Policy"])

    def test_csp_is_strict_and_hashes_match_inline_texts(self):
        r = self.d.get("/")
        header = r.headers["Content-Security-Policy"]
        csp = parse_csp(header)
        self.assertNotIn("unsafe", header)
        self.assertEqual(set(csp), set(CSP_FIXED) | {"script-src", "style-src"},
                         header)
        for k, v in CSP_FIXED.items():
            self.assertEqual(csp[k], v, header)
        page = parse_page(r.body)
        self.assertEqual(len(page.scripts), 1, "one inline script")
        self.assertEqual(len(page.styles), 1, "one inline style")
        want_script = sha256_source(page.scripts[0])
        want_style = sha256_source(page.styles[0])
        self.assertEqual(csp["script-src"], [want_script],
                         "src/api-page.c API_PAGE_SCRIPT_HASH must be %s"
                         % want_script[1:-1])
        self.assertEqual(csp["style-src"], [want_style],
                         "src/api-page.c API_PAGE_STYLE_HASH must be %s"
                         % want_style[1:-1])

    def test_no_external_assets_or_inline_handlers(self):
        self.assertEqual(self.d.acquire("web", meta={"a": "b"}).status, 201)
        r = self.d.get("/")
        page = parse_page(r.body)
        leases = {"http://127.0.0.1:%d/" % l["port"]
                  for l in self.d.get("/v1/services").json["services"]}
        for tag, attrs in page.tags:
            self.assertNotIn(tag, ("link", "img", "iframe", "object",
                                   "embed", "base", "form"), tag)
            for name in attrs:
                self.assertFalse(name.startswith("on"), (tag, attrs))
                self.assertNotIn(name, ("src", "style", "srcset",
                                        "action"), (tag, attrs))
            if "href" in attrs:
                self.assertIn(attrs["href"], leases, (tag, attrs))

    def test_table_rendered_on_the_server(self):
        before = self.d.get("/")
        self.assertEqual(parse_page(before.body).rows, [])
        web = self.d.acquire("web", ttl=600, pid=os.getpid()).json
        six = self.d.acquire("six", host="::1").json
        r = self.d.get("/")
        page = parse_page(r.body)
        self.assertEqual([x["attrs"]["data-name"] for x in page.rows],
                         ["six", "web"])
        self.assertEqual(page.tbody["data-index"], str(r.index))
        row = page.row("web")
        addr = "127.0.0.1:%d" % web["port"]
        self.assertEqual(row["hrefs"], ["http://%s/" % addr])
        self.assertEqual(row["cells"][:3], ["web", addr, "tcp"])
        self.assertRegex(row["cells"][3], r"^(9|10) min \d+ s$")
        self.assertEqual(row["cells"][4], str(os.getpid()))
        self.assertRegex(row["cells"][5], r"^\d+ s$")
        row = page.row("six")
        addr = "[::1]:%d" % six["port"]
        self.assertEqual(row["hrefs"], ["http://%s/" % addr])
        self.assertEqual(row["cells"][1:5], [addr, "tcp", "no expiry", "-"])

    def test_meta_is_escaped(self):
        meta = {"note": HOSTILE, "<b>key": "x"}
        self.assertEqual(self.d.acquire("web", meta=meta).status, 201)
        r = self.d.get("/")
        self.assertNotIn("<script>alert", r.body)
        self.assertNotIn("<img", r.body)
        self.assertNotIn("<b>", r.body)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", r.body)
        page = parse_page(r.body)
        self.assertEqual(len(page.scripts), 1)
        # What a browser shows is exactly what was stored.
        self.assertEqual(sorted(page.row("web")["cells"][6].split("\n")),
                         ["<b>key=x", "note=" + HOSTILE])

    def test_names_cannot_carry_markup(self):
        self.assertError(self.d.acquire("<script>"), 400, "invalid_name")
        self.assertError(self.d.acquire("a\"b"), 400, "invalid_name")


def browser_missing():
    """None if the browser test can run, else one line saying what to
    install."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs)"
    try:
        p = subprocess.run(["node", DRIVER, "--check"], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "node %s --check failed: %s" % (DRIVER, e)
    if p.returncode != 0:
        return (p.stdout.strip() or p.stderr.strip().splitlines()[-1])
    return None


class Driver:
    """page_driver.mjs on URL; ask() sends a command and returns its answer."""

    def __init__(self, url):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["node", DRIVER, url], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-3000:]

    def line(self, timeout=30):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("page driver silent for %ds" % timeout)
        if line is None:
            raise AssertionError("page driver exited %s:\n%s"
                                 % (self.proc.wait(), self.stderr()))
        return line

    def ask(self, cmd):
        """The answer after "ok ", or AssertionError on "fail"."""
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        answer = self.line()
        if answer != "ok" and not answer.startswith("ok "):
            raise AssertionError("%s: %s" % (cmd, answer))
        return answer[3:]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


class Service(http.server.BaseHTTPRequestHandler):
    """What a leased service answers; it records each path and the Referer
    sent with it."""

    referers = []

    def do_GET(self):
        Service.referers.append((self.path, self.headers.get("Referer")))
        body = b"<!doctype html><title>svc</title><p>hello from svc</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class PageBrowser(BerthTestCase):
    """The page in headless Chromium: live rows, links, a quiet console."""

    @classmethod
    def setUpClass(cls):
        missing = browser_missing()
        if missing:
            raise unittest.SkipTest(missing)

    def setUp(self):
        super().setUp()
        self.d = self.berthd(*pool_args())

    def open_page(self):
        drv = Driver("http://127.0.0.1:%d/" % self.d.port)
        self.addCleanup(drv.close)
        first = drv.line()
        self.assertEqual(first, "loaded", drv.stderr())
        # The inline script ran (so the CSP let it): it says so.
        self.assertEqual(drv.ask("state"), "live", drv.ask("problems"))
        return drv

    def row(self, drv, name):
        return json.loads(drv.ask("expect-row " + name))

    def assertQuiet(self, drv):
        self.assertEqual(json.loads(drv.ask("problems")), [])

    def test_rows_follow_leases_live(self):
        old = self.d.acquire("before").json
        drv = self.open_page()
        self.assertEqual(self.row(drv, "before")["href"],
                         "http://127.0.0.1:%d/" % old["port"])

        # A lease acquired after the page loaded appears, as the page's
        # script renders it.
        web = self.d.acquire("web", ttl=300, pid=os.getpid(),
                             meta={"note": HOSTILE}).json
        row = self.row(drv, "web")
        addr = "127.0.0.1:%d" % web["port"]
        self.assertEqual(row["href"], "http://%s/" % addr)
        self.assertEqual(row["cells"][:3], ["web", addr, "tcp"])
        self.assertRegex(row["cells"][3], r"^[45] min \d+ s$")
        self.assertEqual(row["cells"][4], str(os.getpid()))
        self.assertRegex(row["cells"][5], r"^\d+ s$")
        self.assertEqual(row["cells"][6], "note=" + HOSTILE)

        # Released: gone. Expired: gone.
        self.assertEqual(self.d.release("web", web["token"]).status, 204)
        drv.ask("expect-no-row web")
        self.assertEqual(self.d.acquire("brief", ttl=3).status, 201)
        self.row(drv, "brief")
        drv.ask("expect-no-row brief")
        self.row(drv, "before")
        self.assertEqual(drv.ask("state"), "live")
        self.assertQuiet(drv)

    def test_address_link_opens_the_service(self):
        drv = self.open_page()
        lease = self.d.acquire("svc").json
        srv = http.server.HTTPServer(("127.0.0.1", lease["port"]), Service)
        self.addCleanup(srv.server_close)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        self.addCleanup(srv.shutdown)
        self.row(drv, "svc")
        got = json.loads(drv.ask("click svc"))
        self.assertEqual(got["url"], "http://127.0.0.1:%d/" % lease["port"])
        self.assertIn("hello from svc", got["text"])
        # The click was the first request, without a Referer (the
        # page's Referrer-Policy is no-referrer); Chromium may then ask
        # for the service's favicon.
        self.assertEqual(Service.referers[0], ("/", None))
        self.assertQuiet(drv)


if __name__ == "__main__":
    main()
