#!/usr/bin/env python3
"""GET /metrics: the exposition text is strictly well formed (Prometheus
text format 0.0.4), and every counter moves when its event happens:
requests by route, method and code, request latency, lease ends by
release, TTL expiry, owner death and admin revoke, takeovers, database
commits, their latency and their failures. docs/monitoring.md lists the
series; this file checks them against a real berthd.

If promtool is installed, `promtool check metrics` must accept the text
too, and docs/examples/ (scrape config, alert rules and their unit tests)
must pass promtool's checks; it is not required.
"""

import http.client
import math
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from berthtest import (BerthTestCase, UnixHTTPConnection, SLOWDOWN, main)

FAULTFS = os.environ.get("BERTH_FAULTFS", "")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROUTES = {"/", "/metrics", "/v1/health", "/v1/status", "/v1/services",
          "/v1/services/{name}", "/v1/services/{name}/renew", "other"}
METHODS = {"GET", "HEAD", "POST", "DELETE", "OPTIONS", "other"}

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

# Every family berthd must export, with its type.
EXPECTED = {
    "berth_build_info": "gauge",
    "process_start_time_seconds": "gauge",
    "berth_uptime_seconds": "gauge",
    "berth_leases": "gauge",
    "berth_pool_ports": "gauge",
    "berth_pool_free_ports": "gauge",
    "berth_waiters": "gauge",
    "berth_connections": "gauge",
    "berth_index": "gauge",
    "berth_db_up": "gauge",
    "berth_acquires_total": "counter",
    "berth_renewals_total": "counter",
    "berth_releases_total": "counter",
    "berth_expirations_total": "counter",
    "berth_owner_deaths_total": "counter",
    "berth_revokes_total": "counter",
    "berth_takeovers_total": "counter",
    "berth_db_commits_total": "counter",
    "berth_db_commit_failures_total": "counter",
    "berth_db_commit_duration_seconds": "histogram",
    "berth_requests_total": "counter",
    "berth_http_requests_total": "counter",
    "berth_request_duration_seconds": "histogram",
}


class ExpositionError(AssertionError):
    pass


def parse_value(text):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.match(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\Z", text):
        raise ExpositionError("bad sample value %r" % text)
    return float(text)


def parse_labels(text, where):
    """'a="x",b="y"' -> {"a": "x", "b": "y"}, unescaped; strict."""
    labels = {}
    pos = 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise ExpositionError("bad labels at %r in %s" % (text[pos:], where))
        name, raw = m.group(1), m.group(2)
        if name in labels:
            raise ExpositionError("label %s twice in %s" % (name, where))
        labels[name] = (raw.replace("\\n", "\n").replace('\\"', '"')
                        .replace("\\\\", "\\"))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ExpositionError("expected ',' in %s" % where)
            pos += 1
    return labels


def family_of(sample, types):
    """The family a sample name belongs to, given the declared types."""
    if sample in types and types[sample] != "histogram":
        return sample
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix):
            base = sample[:-len(suffix)]
            if types.get(base) == "histogram":
                return base
    raise ExpositionError("sample %s has no # TYPE before it" % sample)


def parse(text):
    """Parse exposition text strictly. Returns {family: {"type", "help",
    "samples": [(name, labels, value)]}}; raises ExpositionError."""
    if not text.endswith("\n"):
        raise ExpositionError("the text does not end with a newline")
    fams = {}
    types = {}
    helps = {}
    current = None      # the family whose samples are being read
    done = set()        # families whose samples are over
    seen = set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d: %r" % (n, line)
        if line == "":
            raise ExpositionError("empty line, " + where)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
                raise ExpositionError("stray comment, " + where)
            name = parts[2]
            if not NAME_RE.match(name):
                raise ExpositionError("bad metric name, " + where)
            if name in done or (name in fams and fams[name]["samples"]):
                raise ExpositionError("%s after its samples, %s" % (parts[1], where))
            fam = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if parts[1] == "HELP":
                if name in helps:
                    raise ExpositionError("second HELP, " + where)
                if len(parts) < 4 or not parts[3].strip():
                    raise ExpositionError("empty HELP, " + where)
                helps[name] = fam["help"] = parts[3]
            else:
                if name in types:
                    raise ExpositionError("second TYPE, " + where)
                if len(parts) != 4 or parts[3] not in TYPES:
                    raise ExpositionError("bad TYPE, " + where)
                types[name] = fam["type"] = parts[3]
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        m = re.match(r"([^{ ]+)(?:\{(.*)\})? (\S+)\Z", line)
        if not m:
            raise ExpositionError("not a sample, " + where)
        name, ltext, vtext = m.groups()
        if not NAME_RE.match(name):
            raise ExpositionError("bad metric name, " + where)
        labels = parse_labels(ltext or "", where)
        value = parse_value(vtext)
        famname = family_of(name, types)
        if famname in done:
            raise ExpositionError("family %s not contiguous, %s" % (famname, where))
        if current is not None and current != famname:
            done.add(current)
        current = famname
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ExpositionError("duplicate series, " + where)
        seen.add(key)
        fams[famname]["samples"].append((name, labels, value))
    for name, fam in fams.items():
        if fam["help"] is None or fam["type"] is None:
            raise ExpositionError("%s lacks HELP or TYPE" % name)
        check_family(name, fam)
    return fams


def check_family(name, fam):
    kind = fam["type"]
    for sname, labels, value in fam["samples"]:
        if kind == "counter":
            if not name.endswith("_total"):
                raise ExpositionError("counter %s does not end in _total" % name)
            if not (value >= 0 and value == int(value)):
                raise ExpositionError("counter %s = %r" % (sname, value))
        if math.isnan(value):
            raise ExpositionError("%s is NaN" % sname)
        if kind != "histogram" and "le" in labels:
            raise ExpositionError("le label on a %s: %s" % (kind, sname))
    if kind == "histogram":
        check_histogram(name, fam["samples"])


def check_histogram(name, samples):
    """Per label set: buckets with rising le, cumulative, ending in +Inf
    equal to _count; _sum there and not negative."""
    groups = {}
    for sname, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            if "le" not in labels:
                raise ExpositionError("%s bucket without le" % name)
            g["buckets"].append((parse_value(labels["le"]), value))
        elif "le" in labels:
            raise ExpositionError("le on %s" % sname)
        elif sname == name + "_sum":
            g["sum"] = value
        else:
            g["count"] = value
    if not groups:
        return
    for rest, g in groups.items():
        b = g["buckets"]
        what = "%s%r" % (name, dict(rest))
        if not b or b[-1][0] != math.inf:
            raise ExpositionError("%s: buckets do not end in +Inf" % what)
        for (le0, c0), (le1, c1) in zip(b, b[1:]):
            if not le1 > le0:
                raise ExpositionError("%s: le not rising at %r" % (what, le1))
            if c1 < c0:
                raise ExpositionError("%s: not cumulative at le=%r" % (what, le1))
        if g["count"] is None or g["sum"] is None:
            raise ExpositionError("%s: no _count or _sum" % what)
        if b[-1][1] != g["count"]:
            raise ExpositionError("%s: +Inf bucket %r != _count %r"
                                  % (what, b[-1][1], g["count"]))
        if g["sum"] < 0 or (g["count"] == 0 and g["sum"] != 0):
            raise ExpositionError("%s: _sum %r" % (what, g["sum"]))


def series(fams):
    """{(name, frozenset(labels)): value} over every family."""
    out = {}
    for fam in fams.values():
        for name, labels, value in fam["samples"]:
            out[(name, frozenset(labels.items()))] = value
    return out


def req_key(route, method, code):
    return ("berth_requests_total", frozenset(
        {"route": route, "method": method, "code": str(code)}.items()))


def hist_count(s, route):
    return s.get(("berth_request_duration_seconds_count",
                  frozenset({"route": route}.items())), 0)


def free_range(n):
    lo = random.randrange(61000, 65535 - n)
    return "--range=%d-%d" % (lo, lo + n - 1)


class Metrics(BerthTestCase):
    def setUp(self):
        super().setUp()
        self.children = []

    def tearDown(self):
        for c in self.children:
            if c.poll() is None:
                c.kill()
            c.wait()
        super().tearDown()

    def child(self):
        c = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
        self.children.append(c)
        return c

    def scrape(self, d, conn=None):
        """GET /metrics, checked and parsed: {(name, labels): value}."""
        r = d.get("/metrics", conn=conn)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Content-Type"), CONTENT_TYPE)
        try:
            fams = parse(r.body)
        except ExpositionError as e:
            self.fail("bad exposition text: %s\n%s" % (e, r.body))
        self.last_fams = fams
        self.last_resp = r
        return series(fams)

    def value(self, s, name, **labels):
        key = (name, frozenset(labels.items()))
        self.assertIn(key, s, "no series %s%r" % (name, labels))
        return s[key]

    def poll_metric(self, d, name, want, timeout=5.0):
        """Scrape until name == want; the last scrape."""
        deadline = time.monotonic() + timeout * SLOWDOWN
        while True:
            s = self.scrape(d)
            if self.value(s, name) == want:
                return s
            if time.monotonic() > deadline:
                self.fail("%s is %r, not %r, after %.0f s"
                          % (name, self.value(s, name), want, timeout))
            time.sleep(0.05)

    def acquired(self, d, name, status=201, **fields):
        r = d.acquire(name, **fields)
        self.assertEqual(r.status, status, r)
        return r.json

    # -- the format ---------------------------------------------------------

    def test_exposition_is_strict_and_complete(self):
        d = self.berthd(free_range(10))
        s0 = self.scrape(d)
        lease = self.acquired(d, "web", ttl=60)
        d.get("/v1/services/web")
        d.get("/v1/services/nope")
        d.request("HEAD", "/v1/status")
        d.request("PUT", "/v1/services")
        d.post("/v1/services/web/renew", {},
               headers={"Authorization": "Bearer " + lease["token"]})
        d.get("/v1/health")
        d.get("/")
        s = self.scrape(d)
        fams = self.last_fams
        for name, kind in EXPECTED.items():
            self.assertIn(name, fams, "family %s missing" % name)
            self.assertEqual(fams[name]["type"], kind, name)
        for name in fams:
            self.assertTrue(name.startswith("berth_") or
                            name == "process_start_time_seconds", name)
            if fams[name]["type"] == "counter":
                self.assertTrue(name.endswith("_total"), name)
        # the commit histogram is there from the start, empty
        self.assertIn(("berth_db_commit_duration_seconds_count", frozenset()), s0)
        for (name, labels), v in s.items():
            labels = dict(labels)
            if name == "berth_requests_total":
                self.assertEqual(set(labels), {"route", "method", "code"}, labels)
                self.assertIn(labels["route"], ROUTES)
                self.assertIn(labels["method"], METHODS)
                self.assertRegex(labels["code"], r"^[1-5]\d\d$")
            if name.startswith("berth_request_duration_seconds"):
                self.assertIn(labels["route"], ROUTES)
        st = d.get("/v1/status").json
        self.assertEqual(self.value(s, "berth_build_info", version=st["version"]), 1)
        start = self.value(s, "process_start_time_seconds")
        self.assertLessEqual(start, time.time() + 1)
        self.assertGreater(start, time.time() - 600)
        self.assertEqual(self.value(s, "berth_pool_ports"), 10)
        self.assertEqual(self.value(s, "berth_pool_free_ports"), 9)
        self.assertEqual(self.value(s, "berth_leases"), 1)
        self.assertEqual(self.value(s, "berth_db_up"), 1)
        self.assertEqual(self.value(s, "berth_index"), self.last_resp.index)
        self.assertGreater(self.value(s, "berth_index"), 0)
        self.assertGreaterEqual(self.value(s, "berth_connections"), 1)
        self.assertEqual(self.value(s, "berth_renewals_total"), 1)
        # HEAD answers the same headers, no body
        r = d.request("HEAD", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, "")
        self.promtool(d)

    def promtool(self, d):
        """promtool check metrics, where it is installed."""
        tool = shutil.which("promtool")
        if tool is None:
            return
        body = d.get("/metrics").body
        p = subprocess.run([tool, "check", "metrics"], input=body.encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_route_labels_stay_few(self):
        """Paths become a fixed route label, never the raw path."""
        d = self.berthd(free_range(4))
        for i in range(30):
            d.get("/v1/services/svc-%d" % i)
            d.get("/v1/services/svc-%d/x" % i)
            d.get("/x%d" % i)
            d.get('/v1/services/q"uote%d' % i)
        d.get("/v1/services/")
        s = self.scrape(d)
        routes = {dict(k[1])["route"] for k in s if k[0] == "berth_requests_total"}
        self.assertLessEqual(routes, ROUTES)
        self.assertEqual(self.value(s, "berth_requests_total",
                                    route="/v1/services/{name}", method="GET",
                                    code="404"), 30)
        self.assertEqual(self.value(s, "berth_requests_total", route="other",
                                    method="GET", code="404"), 60)
        self.assertEqual(self.value(s, "berth_requests_total",
                                    route="/v1/services/{name}", method="GET",
                                    code="400"), 30)
        self.assertEqual(self.value(s, "berth_requests_total",
                                    route="/v1/services", method="GET",
                                    code="200"), 1)

    # -- requests -----------------------------------------------------------

    def test_requests_by_route_method_and_code(self):
        d = self.berthd(free_range(10))
        s0 = self.scrape(d)
        lease = self.acquired(d, "api")
        self.acquired(d, "api", status=409)
        self.assertEqual(d.get("/v1/services/api").status, 200)
        self.assertEqual(d.get("/v1/services/api").status, 200)
        self.assertEqual(d.get("/v1/services/missing").status, 404)
        self.assertEqual(d.get("/v1/nothing").status, 404)
        self.assertEqual(d.request("PUT", "/v1/services").status, 405)
        self.assertEqual(d.release("api", lease["token"]).status, 204)
        s1 = self.scrape(d)
        want = {
            ("/v1/services", "POST", 201): 1,
            ("/v1/services", "POST", 409): 1,
            ("/v1/services/{name}", "GET", 200): 2,
            ("/v1/services/{name}", "GET", 404): 1,
            ("other", "GET", 404): 1,
            ("/v1/services", "other", 405): 1,
            ("/v1/services/{name}", "DELETE", 204): 1,
        }
        for (route, method, code), n in want.items():
            k = req_key(route, method, code)
            self.assertEqual(s1.get(k, 0) - s0.get(k, 0), n,
                             "%s %s %s" % (method, route, code))
        # every request but the scrapes is one of those
        others = sum(v - s0.get(k, 0) for k, v in s1.items()
                     if k[0] == "berth_requests_total" and
                     dict(k[1])["route"] != "/metrics")
        self.assertEqual(others, sum(want.values()))
        # the by-code total is the sum over routes and methods
        by_code = {}
        for k, v in s1.items():
            if k[0] == "berth_requests_total":
                c = dict(k[1])["code"]
                by_code[c] = by_code.get(c, 0) + v
        for c, v in by_code.items():
            self.assertEqual(self.value(s1, "berth_http_requests_total", code=c), v)
        # each answered request was timed under its route
        self.assertEqual(hist_count(s1, "/v1/services") -
                         hist_count(s0, "/v1/services"), 3)
        self.assertEqual(hist_count(s1, "/v1/services/{name}") -
                         hist_count(s0, "/v1/services/{name}"), 4)
        self.assertEqual(hist_count(s1, "other") - hist_count(s0, "other"), 1)
        # the first scrape was answered before the second was made
        self.assertGreaterEqual(hist_count(s1, "/metrics"), 1)

    def test_parked_lookups_are_counted_not_timed(self):
        d = self.berthd(free_range(4))
        s0 = self.scrape(d)
        c = http.client.HTTPConnection(d.host, d.port, timeout=30)
        try:
            c.request("GET", "/v1/services/later?wait=20")
            self.poll_metric(d, "berth_waiters", 1)
            t0 = time.monotonic()
            time.sleep(0.3)
            self.acquired(d, "later")
            resp = c.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            self.assertGreater(time.monotonic() - t0, 0.3)
        finally:
            c.close()
        s1 = self.scrape(d)
        self.assertEqual(self.value(s1, "berth_waiters"), 0)
        k = req_key("/v1/services/{name}", "GET", 200)
        self.assertEqual(s1.get(k, 0) - s0.get(k, 0), 1)
        # the 0.3 s+ wait is not a latency: nothing was timed on the route
        self.assertEqual(hist_count(s1, "/v1/services/{name}"), 0)
        # a lookup of a live lease is not parked, and is timed
        self.assertEqual(d.get("/v1/services/later?wait=20").status, 200)
        s2 = self.scrape(d)
        self.assertEqual(hist_count(s2, "/v1/services/{name}"), 1)

    # -- lease events -------------------------------------------------------

    def test_release_counted(self):
        d = self.berthd(free_range(5))
        lease = self.acquired(d, "rel")
        s0 = self.scrape(d)
        self.assertEqual(self.value(s0, "berth_pool_free_ports"), 4)
        self.assertEqual(d.release("rel", lease["token"]).status, 204)
        s1 = self.scrape(d)
        self.assertEqual(self.value(s1, "berth_releases_total"), 1)
        self.assertEqual(self.value(s1, "berth_leases"), 0)
        self.assertEqual(self.value(s1, "berth_pool_free_ports"), 5)
        for name in ("berth_expirations_total", "berth_owner_deaths_total",
                     "berth_revokes_total", "berth_takeovers_total"):
            self.assertEqual(self.value(s1, name), 0, name)
        # a refused release (bad token) is not a release
        lease = self.acquired(d, "rel2")
        self.assertEqual(d.release("rel2", "0" * 32).status, 403)
        self.assertEqual(self.value(self.scrape(d), "berth_releases_total"), 1)

    def test_ttl_expiry_counted(self):
        d = self.berthd(free_range(5))
        self.acquired(d, "brief", ttl=1)
        self.acquired(d, "stays", ttl=300)
        s0 = self.scrape(d)
        self.assertEqual(self.value(s0, "berth_expirations_total"), 0)
        s = self.poll_metric(d, "berth_expirations_total", 1, timeout=6)
        self.assertEqual(self.value(s, "berth_leases"), 1)
        self.assertEqual(self.value(s, "berth_takeovers_total"), 0)
        time.sleep(0.3)
        self.assertEqual(self.value(self.scrape(d), "berth_expirations_total"), 1)

    def test_owner_death_counted(self):
        d = self.berthd(free_range(5))
        c = self.child()
        self.acquired(d, "owned", pid=c.pid)
        s0 = self.scrape(d)
        self.assertEqual(self.value(s0, "berth_owner_deaths_total"), 0)
        c.kill()
        c.wait()
        s = self.poll_metric(d, "berth_owner_deaths_total", 1)
        self.assertEqual(self.value(s, "berth_leases"), 0)
        self.assertEqual(self.value(s, "berth_takeovers_total"), 0)
        self.assertEqual(self.value(s, "berth_expirations_total"), 0)

    def test_takeover_counted(self):
        """An acquire that finds the name's holder dead takes it over.

        berthd is stopped while the new acquire arrives and then the owner
        dies, so when it continues it reads the request before the owner's
        pidfd (epoll reports them in the order they became ready): the
        acquire, not the reaper, ends the old lease."""
        d = self.berthd(free_range(5))
        c = self.child()
        old = self.acquired(d, "svc", pid=c.pid)
        conn = http.client.HTTPConnection(d.host, d.port, timeout=30)
        stopped = False
        try:
            self.assertEqual(d.get("/v1/health", conn=conn).status, 200)
            s0 = self.scrape(d, conn=conn)
            os.kill(d.proc.pid, signal.SIGSTOP)
            stopped = True
            conn.request("POST", "/v1/services", body=b'{"name":"svc"}',
                         headers={"Content-Type": "application/json"})
            time.sleep(0.1)
            c.kill()
            c.wait()
            time.sleep(0.1)
            os.kill(d.proc.pid, signal.SIGCONT)
            stopped = False
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 201, body)
            self.assertNotIn(old["token"].encode(), body)
        finally:
            if stopped:
                os.kill(d.proc.pid, signal.SIGCONT)
            conn.close()
        s1 = self.scrape(d)
        self.assertEqual(self.value(s1, "berth_takeovers_total") -
                         self.value(s0, "berth_takeovers_total"), 1)
        # the old lease ended because its owner died, once
        self.assertEqual(self.value(s1, "berth_owner_deaths_total"), 1)
        self.assertEqual(self.value(s1, "berth_acquires_total"), 2)
        self.assertEqual(self.value(s1, "berth_leases"), 1)

    def test_refused_acquire_is_not_a_takeover(self):
        """A refused acquire (the holder is alive) is not a takeover."""
        d = self.berthd(free_range(5))
        c = self.child()
        self.acquired(d, "live", pid=c.pid)
        self.acquired(d, "live", status=409)
        s = self.scrape(d)
        self.assertEqual(self.value(s, "berth_takeovers_total"), 0)
        self.assertEqual(self.value(s, "berth_acquires_total"), 1)

    def test_revoke_counted(self):
        tmp = tempfile.mkdtemp(prefix="berth-metrics-")
        self.addCleanup(shutil.rmtree, tmp, True)
        sock = os.path.join(tmp, "berth.sock")
        d = self.berthd(free_range(5), "--listen", "127.0.0.1:0,unix:" + sock)
        self.acquired(d, "victim")
        conn = UnixHTTPConnection(sock)
        try:
            r = d.delete("/v1/services/victim?force=1", conn=conn)
        finally:
            conn.close()
        self.assertEqual(r.status, 204, r)
        s = self.scrape(d)
        self.assertEqual(self.value(s, "berth_revokes_total"), 1)
        self.assertEqual(self.value(s, "berth_releases_total"), 0)
        self.assertEqual(self.value(s, "berth_leases"), 0)

    # -- the database -------------------------------------------------------

    def test_commits_counted_and_timed(self):
        d = self.berthd(free_range(10))
        s0 = self.scrape(d)
        c0 = self.value(s0, "berth_db_commits_total")
        n0 = self.value(s0, "berth_db_commit_duration_seconds_count")
        # reads commit nothing
        for _ in range(3):
            d.get("/v1/services")
        self.assertEqual(self.value(self.scrape(d), "berth_db_commits_total"), c0)
        tokens = [self.acquired(d, "c%d" % i)["token"] for i in range(3)]
        for i, t in enumerate(tokens):
            self.assertEqual(d.release("c%d" % i, t).status, 204)
        s1 = self.scrape(d)
        commits = self.value(s1, "berth_db_commits_total") - c0
        self.assertGreaterEqual(commits, 1)     # group commit may merge turns
        self.assertLessEqual(commits, 6)
        # every successful commit is timed
        self.assertEqual(self.value(s1, "berth_db_commit_duration_seconds_count")
                         - n0, commits)
        self.assertGreater(self.value(s1, "berth_db_commit_duration_seconds_sum"), 0)
        self.assertEqual(self.value(s1, "berth_db_commit_failures_total"), 0)
        self.assertEqual(self.value(s1, "berth_db_up"), 1)

    @unittest.skipUnless(FAULTFS and os.path.exists(FAULTFS),
                         "BERTH_FAULTFS (tests/e2e/.libs/libfaultfs.so) not built")
    def test_commit_failure_counted_and_rolled_back(self):
        tmp = tempfile.mkdtemp(prefix="berth-metrics-")
        self.addCleanup(shutil.rmtree, tmp, True)
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        control = os.path.join(tmp, "fault")
        env = {"LD_PRELOAD": FAULTFS, "FAULTFS_PATH": data + "/",
               "FAULTFS_CONTROL": control,
               "ASAN_OPTIONS": "verify_asan_link_order=0"}
        d = self.berthd(free_range(10), env=env, tmpdir=tmp,
                        db=os.path.join(data, "berth.db"))
        self.acquired(d, "before")
        s0 = self.scrape(d)
        with open(control, "w") as f:
            f.write("eio\n")
        time.sleep(0.2)     # the shim re-reads its control file
        try:
            r = d.acquire("during")
            self.assertError(r, 503, "db_unavailable")
            s1 = self.scrape(d)
        finally:
            os.unlink(control)
        self.assertGreaterEqual(self.value(s1, "berth_db_commit_failures_total") -
                                self.value(s0, "berth_db_commit_failures_total"), 1)
        self.assertEqual(self.value(s1, "berth_db_up"), 0)
        # the refused acquire was rolled back: not counted as granted
        self.assertEqual(self.value(s1, "berth_acquires_total"), 1)
        self.assertEqual(self.value(s1, "berth_leases"), 1)
        self.assertEqual(self.value(s1, "berth_db_commits_total"),
                         self.value(s0, "berth_db_commits_total"))
        k = req_key("/v1/services", "POST", 503)
        self.assertEqual(s1.get(k, 0), 1)
        # once the fault clears, writes (and the gauge) recover
        deadline = time.monotonic() + 10 * SLOWDOWN
        while d.acquire("after").status != 201:
            self.assertLess(time.monotonic(), deadline, "no recovery")
            time.sleep(0.1)
        s2 = self.scrape(d)
        self.assertEqual(self.value(s2, "berth_db_up"), 1)
        self.assertEqual(self.value(s2, "berth_acquires_total"), 2)


EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "docs", "examples")


@unittest.skipUnless(shutil.which("promtool"), "promtool is not installed "
                     "(Debian: apt-get install prometheus)")
class Examples(unittest.TestCase):
    """docs/examples/ stays valid: the scrape config, the alert rules and
    their unit tests, as docs/monitoring.md tells people to check them."""

    def promtool(self, *args):
        p = subprocess.run(["promtool"] + list(args), cwd=EXAMPLES,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, (p.stdout + p.stderr).decode())

    def test_scrape_config(self):
        self.promtool("check", "config", "prometheus.yml")

    def test_alert_rules(self):
        self.promtool("check", "rules", "berth-alerts.yml")
        self.promtool("test", "rules", "berth-alerts.test.yml")


class Parser(unittest.TestCase):
    """The strict parser above refuses what it must (so it can fail)."""

    GOOD = ("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
            "# HELP h H.\n# TYPE h histogram\n"
            'h_bucket{le="0.1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.3\nh_count 2\n')

    def test_good(self):
        fams = parse(self.GOOD)
        self.assertEqual(fams["h"]["type"], "histogram")

    def test_refused(self):
        bad = [
            self.GOOD.replace("# HELP a_total A.\n", ""),         # no HELP
            self.GOOD.replace("# TYPE a_total counter\n", ""),    # no TYPE
            self.GOOD.replace("h_count 2", "h_count 3"),          # +Inf != count
            self.GOOD.replace('h_bucket{le="0.1"} 1', 'h_bucket{le="0.1"} 3'),
            self.GOOD.replace('h_bucket{le="+Inf"} 2\n', ""),     # no +Inf
            self.GOOD.replace("a_total 1", 'a_total{x="a"b"} 1'),
            self.GOOD.replace("a_total 1", "a_total one"),
            self.GOOD + "a_total 2\n",                            # not contiguous
            self.GOOD.rstrip("\n"),
            self.GOOD.replace("a_total", "a"),                    # counter name
        ]
        for text in bad:
            with self.assertRaises(ExpositionError, msg=text):
                parse(text)


if __name__ == "__main__":
    main()
