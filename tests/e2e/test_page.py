#!/usr/bin/env python3
"""The status page at GET / (docs/status-page.md).

PageHTTP checks the page as served, without a browser: headers, a strict
Content-Security-Policy whose hashes match the inline script and style,
no external assets, the server-rendered table (readiness, links only for
TCP), the broker line (version, uptime, pool) as /v1/status has it, the
hint shown when there are no leases, and escaping.

PageBrowser drives the page in headless Chromium through page_driver.mjs
(Node, playwright-core, /usr/bin/chromium): rows, readiness, the pool and
the empty-state hint follow leases live, links open the leased service,
and the console shows no error and no CSP violation. It is skipped, with
one line saying what is missing, when node, Chromium or playwright-core is
not installed.

PageCluster checks the cluster section of a node (--cluster, a real etcd
through etcdtest.py) as served: its line, the cluster's published
instances with this node's own marked, escaping, the last view while etcd
is gone; PageHTTP checks that there is no section without --cluster.
PageClusterBrowser follows the section live in Chromium: this node's and
another node's publishes and releases, etcd killed and back. Without an
etcd server they are skipped, saying so.

The readiness tests need "ready" in the lease JSON; against a berthd whose
leases do not carry it they are skipped, saying so.
"""

import base64
import hashlib
import html.parser
import http.server
import json
import os
import queue
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

from berthtest import BerthTestCase, main, private_pool, wait_for
from etcdtest import EtcdMixin

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "page_driver.mjs")
HOSTILE = "</td><script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;"
CLI = os.environ.get("BERTH_CLI", "berth")
DEFAULT_ADDR = "127.0.0.1:62893"
# A host that is not this machine (TEST-NET-1): berthd cannot tell whether
# anything listens there.
REMOTE = "192.0.2.1"
# What the page says for each value of a lease's "ready".
READY_WORD = {True: "listening", False: "not listening", None: "unknown"}
# The cells of a row, in order.
CELLS = ["name", "address", "state", "proto", "ttl", "pid", "age", "meta"]
# The cells of a row of the cluster's table, in order.
CLUSTER_CELLS = ["name", "node", "address", "state", "proto", "meta"]
CLUSTER_PREFIX = "/berth/"      # berthd's default --cluster-prefix
CLUSTER_TTL = 3                 # --cluster-ttl
SEEN = 20       # seconds: a change reaches another node's view (generous)
# The cluster line's middle while etcd cannot be reached.
NOT_CONNECTED = r"^not connected: \S.* \u2014 showing the last view$"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}

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
    return tuple(private_pool(200))


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
    """The page's tags, inline script and style texts, lease rows, and the
    text and attributes of each element with an id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []          # (tag, attrs dict)
        self.scripts = []
        self.styles = []
        self.tables = {}        # tbody id: [{"attrs", "cells", "classes",
                                #   "hrefs"}] of its rows
        self.tbody = None       # the attributes of tbody#leases
        self.ids = {}           # id: (tag, attrs dict)
        self.texts = {}         # id: its text, whitespace as in the page
        self.codes = []         # the text of each <code>
        self.text = ""          # all text outside script and style
        self._open = []         # [tag, id or None] of elements not closed
        self._raw = None        # "script" or "style" while inside one
        self._cell = None
        self._rows = None       # the rows of the tbody we are in

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids[a["id"]] = (tag, a)
            self.texts[a["id"]] = ""
        if tag not in VOID:
            self._open.append([tag, a.get("id")])
        if tag == "code":
            self.codes.append("")
        if tag in ("script", "style"):
            self._raw = tag
            (self.scripts if tag == "script" else self.styles).append("")
        elif tag == "tbody":
            self._rows = self.tables.setdefault(a.get("id"), [])
            if a.get("id") == "leases":
                self.tbody = a
        elif tag == "tr" and self._rows is not None:
            self._rows.append({"attrs": a, "cells": [], "classes": [],
                               "hrefs": []})
        elif tag == "td" and self._rows is not None:
            self._rows[-1]["cells"].append("")
            self._rows[-1]["classes"].append(a.get("class", ""))
            self._cell = True
        elif tag == "a" and self._rows is not None:
            self._rows[-1]["hrefs"].append(a.get("href"))
        elif tag == "div" and self._cell and self._rows[-1]["cells"][-1]:
            self._rows[-1]["cells"][-1] += "\n"

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break
        if tag in ("script", "style"):
            self._raw = None
        elif tag == "tbody":
            self._rows = None
        elif tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._raw == "script":
            self.scripts[-1] += data
        elif self._raw == "style":
            self.styles[-1] += data
        else:
            self.text += data
            for tag, ident in self._open:
                if ident is not None:
                    self.texts[ident] += data
                if tag == "code":
                    self.codes[-1] += data
            if self._cell:
                self._rows[-1]["cells"][-1] += data

    @property
    def rows(self):
        """The lease table's rows."""
        return self.tables.get("leases", [])

    @property
    def instances(self):
        """The cluster table's rows (none without --cluster)."""
        return self.tables.get("instances", [])

    def instance(self, name, node):
        for r in self.instances:
            if (r["attrs"].get("data-name"), r["attrs"].get("data-node")) \
                    == (name, node):
                return r
        return None

    def words(self, ident):
        """The text of the element with id ident, whitespace collapsed."""
        return " ".join(self.texts[ident].split())

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


def cell(row, name):
    """The text of a row's cell by its column (CELLS)."""
    return row["cells"][CELLS.index(name)]


def assert_owned_row(test, row, name, addr, ttl):
    """The cells of a new TCP lease this process owns, whether berthd or
    the page's script made them: TTL left matches the pattern ttl."""
    test.assertEqual(len(row["cells"]), len(CELLS))
    test.assertEqual([cell(row, "name"), cell(row, "address"),
                      cell(row, "proto")], [name, addr, "tcp"])
    test.assertRegex(cell(row, "ttl"), ttl)
    test.assertEqual(cell(row, "pid"), str(os.getpid()))
    test.assertRegex(cell(row, "age"), r"^\d+ s$")


def icell(row, name):
    """The text of a cluster table row's cell by its column."""
    return row["cells"][CLUSTER_CELLS.index(name)]


def classes(row):
    return set(row["attrs"].get("class", "").split())


def cli_prefix(d):
    """How the page's hint starts a berth command for daemon d."""
    return "berth" if d.addr == DEFAULT_ADDR else "berth --addr " + d.addr


def run_hint(command):
    """Run a berth command line as the page shows it, with the CLI under
    test and no BERTH_* variables; (exit status, stdout)."""
    argv = shlex.split(command)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    p = subprocess.run([CLI] + argv[1:], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


class ReadyMixin:
    """Readiness tests: a real listener on a lease's port."""

    def listen_on(self, port):
        """A TCP socket listening on 127.0.0.1:port until the test ends."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(8)
        return s

    def await_ready(self, want):
        """The list once each name in want has its "ready" value (berthd
        learns readiness from the kernel's socket tables, so it may take it
        a moment); waits through the watch API, 20 s at most."""
        index = 0
        for _ in range(20):
            r = self.d.get("/v1/services?index=%d&wait=1" % index)
            self.assertEqual(r.status, 200, r)
            ready = {l["name"]: l.get("ready") for l in r.json["services"]}
            if all(ready.get(n, "absent") == v for n, v in want.items()):
                return r.json
            index = r.json["index"]
        self.fail("readiness %r never became %r" % (ready, want))


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
        assert_owned_row(self, row, "web", addr, r"^(9|10) min \d+ s$")
        row = page.row("six")
        addr = "[::1]:%d" % six["port"]
        self.assertEqual(row["hrefs"], ["http://%s/" % addr])
        self.assertEqual([cell(row, c) for c in ("address", "proto", "ttl",
                                                 "pid")],
                         [addr, "tcp", "no expiry", "-"])

    def test_links_only_where_a_browser_can_go(self):
        ports = {}
        for name, proto in (("dns", "udp"), ("game", "both"), ("web", "tcp")):
            r = self.d.acquire(name, proto=proto)
            self.assertEqual(r.status, 201, r)
            ports[name] = r.json["port"]
        page = parse_page(self.d.get("/").body)
        for name in ports:
            addr = "127.0.0.1:%d" % ports[name]
            row = page.row(name)
            self.assertEqual(cell(row, "address"), addr)
            # UDP: no http:// link, the address as text.
            self.assertEqual(row["hrefs"], [] if name == "dns" else
                             ["http://%s/" % addr], name)

    def test_about_line_shows_version_uptime_and_pool(self):
        for name in ("a", "b"):
            self.assertEqual(self.d.acquire(name).status, 201)
        status = self.d.get("/v1/status").json
        page = parse_page(self.d.get("/").body)
        size, free = status["pool"]["size"], status["pool"]["free"]
        self.assertEqual(size - free, 2, status)
        self.assertEqual(page.words("version"), status["version"])
        self.assertRegex(page.words("uptime"),
                         r"^\d+ (s|min \d+ s|h \d+ min|d \d+ h)$")
        # The bar is HTML alone: a <meter> of the ports in use.
        tag, meter = page.ids["pool"]
        self.assertEqual(tag, "meter")
        self.assertEqual((meter["min"], meter["max"], meter["value"]),
                         ("0", str(size), str(size - free)))
        self.assertEqual(page.words("pool-text"),
                         "%d free of %d" % (free, size))

    def test_about_line_says_where_dns_is(self):
        status = self.d.get("/v1/status").json
        page = parse_page(self.d.get("/").body)
        self.assertEqual(page.words("dns"),
                         "DNS: udp %s" % status["dns"]["address"])
        self.assertIn("berth.", page.ids["dns"][1]["title"])
        off = self.berthd("--dns", "off")
        self.assertIsNone(off.get("/v1/status").json["dns"])
        self.assertEqual(parse_page(off.get("/").body).words("dns"),
                         "DNS: off")

    def test_changes_in_plain_words(self):
        self.assertEqual(self.d.acquire("web").status, 201)
        r = self.d.get("/")
        page = parse_page(r.body)
        self.assertNotIn("index", page.text.lower())
        self.assertEqual(page.words("changes"), "changes: %d" % r.index)
        self.assertIn("X-Berth-Index", page.ids["changes"][1]["title"])
        # The script still watches from the index the table was built at.
        self.assertEqual(page.tbody["data-index"], str(r.index))

    def test_empty_state_says_what_to_run(self):
        page = parse_page(self.d.get("/").body)
        self.assertNotIn("hidden", page.ids["empty"][1])
        self.assertIn("hidden", page.ids["table"][1])
        run = cli_prefix(self.d) + " run api -- ./server --port {port}"
        acquire = cli_prefix(self.d) + " acquire api"
        self.assertIn(run, page.codes)
        self.assertIn(acquire, page.codes)
        # The command works as shown, against this berthd.
        rc, out = run_hint(acquire)
        self.assertEqual(rc, 0, out)
        lease = self.d.get("/v1/services/api")
        self.assertEqual(lease.status, 200, lease)
        self.assertEqual(out.strip(), str(lease.json["port"]))
        page = parse_page(self.d.get("/").body)
        self.assertIn("hidden", page.ids["empty"][1])
        self.assertNotIn("hidden", page.ids["table"][1])
        self.assertEqual([r["attrs"]["data-name"] for r in page.rows], ["api"])


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
        self.assertEqual(sorted(cell(page.row("web"), "meta").split("\n")),
                         ["<b>key=x", "note=" + HOSTILE])

    def test_no_cluster_section_without_cluster(self):
        self.assertEqual(self.d.acquire("web").status, 201)
        self.assertIsNone(self.d.get("/v1/status").json["cluster"])
        page = parse_page(self.d.get("/").body)
        self.assertEqual([i for i in page.ids if i.startswith("cluster")],
                         [])
        self.assertNotIn("instances", page.tables)
        self.assertNotIn("cluster", page.text)
        self.assertEqual([r["attrs"]["data-name"] for r in page.rows],
                         ["web"])

    def test_names_cannot_carry_markup(self):
        self.assertError(self.d.acquire("<script>"), 400, "invalid_name")
        self.assertError(self.d.acquire("a\"b"), 400, "invalid_name")


class PageReady(ReadyMixin, BerthTestCase):
    """Readiness in the table as served: listening, not listening,
    unknown, in words, never by colour alone."""

    def setUp(self):
        super().setUp()
        self.d = self.berthd(*pool_args())

    def test_unknown_when_berthd_cannot_tell(self):
        r = self.d.acquire("far", host=REMOTE)
        self.assertEqual(r.status, 201, r)
        lease = self.d.get("/v1/services/far").json
        self.assertIsNone(lease.get("ready"), lease)
        row = parse_page(self.d.get("/").body).row("far")
        self.assertEqual(cell(row, "state"), "unknown")
        self.assertIn("ready-unknown",
                      row["classes"][CELLS.index("state")].split())
        self.assertNotIn("down", row["attrs"].get("class", "").split())

    def test_state_follows_the_lease_json(self):
        up = self.d.acquire("up").json
        self.listen_on(up["port"])
        self.assertEqual(self.d.acquire("down").status, 201)
        self.assertEqual(self.d.acquire("far", host=REMOTE).status, 201)
        want = {"up": True, "down": False, "far": None}
        # The page and the list at one index, so they saw the same leases.
        for _ in range(5):
            listing = self.await_ready(want)
            r = self.d.get("/")
            if r.index == listing["index"]:
                break
        self.assertEqual(r.index, listing["index"])
        page = parse_page(r.body)
        for name, ready in want.items():
            row = page.row(name)
            self.assertEqual(cell(row, "state"), READY_WORD[ready], name)
            cls = row["classes"][CELLS.index("state")].split()
            self.assertIn("ready-" + {True: "yes", False: "no",
                                      None: "unknown"}[ready], cls)
            # A lease nothing listens on does not look live.
            self.assertEqual("down" in row["attrs"].get("class", "").split(),
                             ready is False, name)


class ClusterMixin(EtcdMixin):
    """berthd nodes of a cluster over a real etcd (etcdtest.py; skipped,
    saying so, without one), as tests/e2e/test_cluster.py starts them."""

    def node(self, etcd, name):
        """A berthd that is node name ("a", "b"...) of the cluster at etcd,
        advertising 127.0.0.2, .3...; once it has joined."""
        adv = "127.0.0.%d" % (ord(name) - ord("a") + 2)
        d = self.berthd(*pool_args(), "--cluster", etcd.client_url,
                        "--node", name, "--advertise", adv,
                        "--cluster-ttl", str(CLUSTER_TTL))
        d.node, d.advertise = name, adv
        wait_for(lambda: d.get("/v1/status").json["cluster"]["connected"],
                 SEEN, "node %s to join etcd" % name)
        return d

    def await_view(self, d, want):
        """d's GET /v1/cluster/services once its instances are exactly the
        (name, node) pairs in want."""
        def check():
            r = d.get("/v1/cluster/services")
            self.assertEqual(r.status, 200, r)
            got = {(s["name"], s["node"]) for s in r.json["services"]}
            return r.json if got == set(want) else None
        return wait_for(check, SEEN, "%s's view to be %s" % (d.node,
                                                           sorted(want)))

    def await_down(self, d):
        wait_for(lambda: not d.get("/v1/status").json["cluster"]["connected"],
                 SEEN, "%s to notice etcd is gone" % d.node)

    def publish_foreign(self, etcd, name, node, **kw):
        """An instance put straight into etcd, as a node that says more
        than a berthd here can (readiness known elsewhere, or unknown)."""
        inst = {"name": name, "node": node, "host": REMOTE, "port": 8080,
                "proto": "tcp", "meta": {}, "ready": None}
        inst.update(kw)
        etcd.put(CLUSTER_PREFIX + "services/%s/%s" % (name, node),
                 json.dumps(inst))
        return inst


class PageCluster(ClusterMixin, BerthTestCase):
    """The cluster section as served by a node: its line, the cluster's
    published instances with this node's own marked, escaping, and the
    last view while etcd is gone."""

    def test_section_rendered_on_the_server(self):
        e = self.etcd()
        a = self.node(e, "a")
        b = self.node(e, "b")
        # Nothing published yet: the section says so.
        page = parse_page(a.get("/").body)
        self.assertEqual(page.words("cluster-line"),
                         "cluster: node a \u00b7 connected through %s "
                         "\u00b7 2 nodes \u00b7 0 published instances"
                         % e.client_url)
        self.assertEqual(page.instances, [])
        self.assertNotIn("hidden", page.ids["cluster-empty"][1])
        self.assertIn("hidden", page.ids["cluster-table"][1])

        web_a = a.acquire("web", publish=True).json
        self.assertEqual(a.acquire("private").status, 201)
        db_b = b.acquire("db", publish=True, proto="udp").json
        meta = {"note": HOSTILE, "<b>key": "x"}
        web_b = b.acquire("web", publish=True, meta=meta).json
        self.publish_foreign(e, "ext", "zy", ready=True)
        self.publish_foreign(e, "ext", "zz")
        want = [("db", "b"), ("ext", "zy"), ("ext", "zz"), ("web", "a"),
                ("web", "b")]
        view = self.await_view(a, want)
        r = a.get("/")
        page = parse_page(r.body)
        self.assertEqual(page.words("cluster-line"),
                         "cluster: node a \u00b7 connected through %s "
                         "\u00b7 2 nodes \u00b7 5 published instances"
                         % e.client_url)
        self.assertIn("hidden", page.ids["cluster-empty"][1])
        self.assertNotIn("hidden", page.ids["cluster-table"][1])
        # Sorted by name then node; what is not published is not there.
        self.assertEqual([(x["attrs"]["data-name"], x["attrs"]["data-node"])
                          for x in page.instances], want)
        self.assertGreaterEqual(int(page.ids["instances"][1]["data-index"]),
                                view["index"])
        for x in page.instances:
            self.assertEqual(len(x["cells"]), len(CLUSTER_CELLS))

        # This node's own: marked in words, and by a class.
        row = page.instance("web", "a")
        addr = "%s:%d" % (a.advertise, web_a["port"])
        self.assertEqual([icell(row, c) for c in CLUSTER_CELLS],
                         ["web", "a (this node)", addr, "not listening",
                          "tcp", ""])
        self.assertEqual(row["hrefs"], ["http://%s/" % addr])
        self.assertEqual(classes(row), {"own", "down"})
        # Another node's: a link for TCP, text for UDP.
        row = page.instance("web", "b")
        addr = "%s:%d" % (b.advertise, web_b["port"])
        self.assertEqual(icell(row, "node"), "b")
        self.assertEqual(icell(row, "address"), addr)
        self.assertEqual(row["hrefs"], ["http://%s/" % addr])
        self.assertNotIn("own", classes(row))
        row = page.instance("db", "b")
        self.assertEqual([icell(row, c) for c in ("node", "address", "proto")],
                         ["b", "%s:%d" % (b.advertise, db_b["port"]), "udp"])
        self.assertEqual(row["hrefs"], [])
        # The state in words, as the publishing node said it.
        for node, word, cls in (("zy", "listening", "ready-yes"),
                                ("zz", "unknown", "ready-unknown")):
            row = page.instance("ext", node)
            self.assertEqual(icell(row, "state"), word)
            self.assertIn(cls, row["classes"][CLUSTER_CELLS.index("state")])
            self.assertEqual(classes(row), set())

        # Escaped: a meta value with markup in it is text.
        self.assertNotIn("<script>alert", r.body)
        self.assertNotIn("<img", r.body)
        self.assertNotIn("<b>", r.body)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", r.body)
        self.assertEqual(len(page.scripts), 1)
        self.assertEqual(sorted(icell(page.instance("web", "b"),
                                      "meta").split("\n")),
                         ["<b>key=x", "note=" + HOSTILE])
        # The lease table is this node's leases, published or not.
        self.assertEqual([x["attrs"]["data-name"] for x in page.rows],
                         ["private", "web"])

    def test_last_view_while_etcd_is_gone(self):
        e = self.etcd()
        a = self.node(e, "a")
        b = self.node(e, "b")
        self.assertEqual(b.acquire("db", publish=True).status, 201)
        self.await_view(a, [("db", "b")])
        e.kill()
        self.await_down(a)
        page = parse_page(a.get("/").body)
        self.assertEqual(page.ids["cluster-conn"][1].get("class"), "off")
        self.assertRegex(page.words("cluster-conn"), NOT_CONNECTED)
        self.assertRegex(page.words("cluster-line"),
                         r"^cluster: node a \u00b7 not connected: .* "
                         r"\u00b7 2 nodes \u00b7 1 published instance$")
        self.assertEqual([(x["attrs"]["data-name"], x["attrs"]["data-node"])
                          for x in page.instances], [("db", "b")])


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


class BrowserMixin:
    """A test that drives the page in Chromium (skipped, saying what is
    missing, without it)."""

    @classmethod
    def setUpClass(cls):
        missing = browser_missing()
        if missing:
            raise unittest.SkipTest(missing)

    def open_page(self, d=None):
        """The page of berthd d (self.d) in Chromium, its script running."""
        drv = Driver("http://127.0.0.1:%d/" % (d or self.d).port)
        self.addCleanup(drv.close)
        first = drv.line()
        self.assertEqual(first, "loaded", drv.stderr())
        # The inline script ran (so the CSP let it): it says so.
        self.assertEqual(drv.ask("state"), "live", drv.ask("problems"))
        return drv

    def row(self, drv, name):
        return json.loads(drv.ask("expect-row " + name))

    def instance(self, drv, name, node):
        return json.loads(drv.ask("expect-instance %s %s" % (name, node)))

    def assertQuiet(self, drv):
        self.assertEqual(json.loads(drv.ask("problems")), [])


class PageBrowser(BrowserMixin, ReadyMixin, BerthTestCase):
    """The page in headless Chromium: live rows, links, a quiet console."""

    def setUp(self):
        super().setUp()
        self.d = self.berthd(*pool_args())

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
        assert_owned_row(self, row, "web", addr, r"^[45] min \d+ s$")
        self.assertEqual(cell(row, "meta"), "note=" + HOSTILE)

        # UDP: the address as text, no link. A host berthd cannot see:
        # readiness unknown.
        dns = self.d.acquire("dns", proto="udp").json
        row = self.row(drv, "dns")
        self.assertIsNone(row["href"])
        self.assertEqual(cell(row, "address"), "127.0.0.1:%d" % dns["port"])
        self.assertEqual(self.d.acquire("far", host=REMOTE).status, 201)
        row = self.row(drv, "far")
        self.assertEqual(row["href"], "http://%s:%d/" % (
            REMOTE, self.d.get("/v1/services/far").json["port"]))
        self.assertEqual(cell(row, "state"), "unknown")

        # Released: gone. Expired: gone.
        self.assertEqual(self.d.release("web", web["token"]).status, 204)
        drv.ask("expect-no-row web")
        self.assertEqual(self.d.acquire("brief", ttl=3).status, 201)
        self.row(drv, "brief")
        drv.ask("expect-no-row brief")
        self.row(drv, "before")
        self.assertEqual(drv.ask("state"), "live")
        self.assertQuiet(drv)

    def test_empty_hint_and_pool_follow_leases(self):
        drv = self.open_page()
        drv.ask("expect-visible #empty")
        drv.ask("expect-hidden #table")
        pool = self.d.get("/v1/status").json["pool"]
        size, free = pool["size"], pool["free"]
        drv.ask("expect-text " + json.dumps(
            ["#pool-text", "%d free of %d" % (free, size)]))
        web = self.d.acquire("web").json
        self.row(drv, "web")
        drv.ask("expect-hidden #empty")
        drv.ask("expect-visible #table")
        drv.ask("expect-text " + json.dumps(["#summary", "1 lease"]))
        drv.ask("expect-text " + json.dumps(
            ["#pool-text", "%d free of %d" % (free - 1, size)]))
        drv.ask("expect-text " + json.dumps(
            ["#changes", "changes: %d" % self.d.get("/v1/services").index]))
        self.assertEqual(self.d.release("web", web["token"]).status, 204)
        drv.ask("expect-visible #empty")
        drv.ask("expect-hidden #table")
        drv.ask("expect-text " + json.dumps(["#summary", "0 leases"]))
        drv.ask("expect-text " + json.dumps(
            ["#pool-text", "%d free of %d" % (free, size)]))
        self.assertQuiet(drv)

    def test_readiness_follows_the_service(self):
        svc = self.d.acquire("svc").json
        drv = self.open_page()
        self.await_ready({"svc": False})
        sel = '#leases > tr[data-name="svc"] > td.ready'
        drv.ask("expect-text " + json.dumps([sel, "not listening"]))
        self.assertEqual(self.row(drv, "svc")["cls"], "down")
        self.listen_on(svc["port"])
        drv.ask("expect-text " + json.dumps([sel, "listening"]))
        self.assertIsNone(self.row(drv, "svc")["cls"])
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


class PageClusterBrowser(BrowserMixin, ClusterMixin, BerthTestCase):
    """The cluster section in headless Chromium: it follows the cluster
    live, through this node's changes and other nodes', and etcd going
    away and coming back."""

    def test_section_follows_the_cluster_live(self):
        e = self.etcd()
        a = self.node(e, "a")
        b = self.node(e, "b")
        drv = self.open_page(a)
        drv.ask("expect-visible #cluster-empty")
        drv.ask("expect-hidden #cluster-table")
        drv.ask("expect-text " + json.dumps(
            ["#cluster-line", "cluster: node a \u00b7 connected through %s "
             "\u00b7 2 nodes \u00b7 0 published instances" % e.client_url]))

        # This node publishes: its own row, marked.
        web = a.acquire("web", publish=True).json
        addr = "%s:%d" % (a.advertise, web["port"])
        row = self.instance(drv, "web", "a")
        self.assertEqual(row["cells"], ["web", "a (this node)", addr,
                                        "not listening", "tcp", ""])
        self.assertEqual(row["href"], "http://%s/" % addr)
        self.assertEqual(set(row["cls"].split()), {"own", "down"})
        drv.ask("expect-hidden #cluster-empty")
        drv.ask("expect-visible #cluster-table")

        # Another node publishes (nothing changes on this node): its row
        # appears, its meta as text, and the line counts it.
        db = b.acquire("db", publish=True, meta={"note": HOSTILE}).json
        row = self.instance(drv, "db", "b")
        addr = "%s:%d" % (b.advertise, db["port"])
        self.assertEqual(row["cells"], ["db", "b", addr, "not listening",
                                        "tcp", "note=" + HOSTILE])
        self.assertEqual(row["href"], "http://%s/" % addr)
        self.assertEqual(row["cls"], "down")
        drv.ask("expect-text " + json.dumps(
            ["#cluster-count", "2 published instances"]))
        self.publish_foreign(e, "ext", "zz")
        row = self.instance(drv, "ext", "zz")
        self.assertEqual(row["cells"][3], "unknown")
        drv.ask("expect-text " + json.dumps(
            ["#cluster-count", "3 published instances"]))
        self.assertEqual(b.release("db", db["token"]).status, 204)
        drv.ask("expect-no-instance db b")
        drv.ask("expect-text " + json.dumps(
            ["#cluster-count", "2 published instances"]))

        # etcd gone: not connected, and the last view stays.
        e.kill()
        self.await_down(a)
        drv.ask("expect-match " + json.dumps(["#cluster-conn",
                                              NOT_CONNECTED]))
        self.instance(drv, "web", "a")
        self.instance(drv, "ext", "zz")
        # ... and back: connected again, the view read afresh.
        e.restart()
        drv.ask("expect-text " + json.dumps(
            ["#cluster-conn", "connected through " + e.client_url]))
        self.instance(drv, "web", "a")
        self.assertEqual(drv.ask("state"), "live")
        self.assertQuiet(drv)


if __name__ == "__main__":
    main()
