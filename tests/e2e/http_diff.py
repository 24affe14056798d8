#!/usr/bin/env python3
"""http_diff.py: send one corpus of raw HTTP requests to two berthd
binaries and show where what a client sees differs.

    python3 tests/e2e/http_diff.py --old OLD/berthd --new NEW/berthd \
        [--corpus-dir tests/fuzz/corpus/request] [--verbose] \
        [--old-args='...'] [--new-args='...']

Meant for replacing berthd's HTTP carrier: the old build and the new one
must answer every request alike. Each daemon is started by berthtest.py
(127.0.0.1:0, a fresh temporary database, --idle-timeout 3, plus
--old-args or --new-args, given with '=' since they begin with '--'),
given the same leases ("anchor", "victim" with ttl 600, and a few of our
own), then sent the corpus, item by item, each item on a fresh
connection, to the old daemon and then the new one. An item that needs a
lease's token is built per daemon with that daemon's token.

The corpus, in this order: well-formed requests to every endpoint and
HTTP framing cases (own_requests below); test_hostile.py's malformed
barrage, its garbage (alone, and pipelined between a lookup and an
acquire) and its oversized requests; the files of --corpus-dir (the
fuzzer's format, made into real requests by corpus_file_request), last,
because one of them leases "api" for 30 s.

Per item it compares the statuses of the answers; each answer's headers
(names and values, Date left out) and body, after normalise(); the bytes
left over that are no whole answer; and whether berthd closed the
connection within OPEN_AFTER seconds (else it kept it open).

Exit status: 0 if every item is alike, 1 if any differs, 2 on a usage or
start-up error.
"""

import argparse
import os
import re
import shlex
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import berthtest                                            # noqa: E402
from test_hostile import (HOST_HDR, OversizedAndGarbage,    # noqa: E402
                          exchange, malformed_requests, parse_responses,
                          request_bytes)

IDLE_TIMEOUT = 3        # --idle-timeout of both daemons, seconds
# A connection berthd has not closed this long after the request was sent
# counts as kept open: below IDLE_TIMEOUT, above the longest wait (1 s).
OPEN_AFTER = 1.5

# The leases each daemon gets before the corpus: name -> acquire fields.
SETUP_LEASES = [
    ("anchor", {"meta": {"role": "fresh-client-target"}}),  # as test_hostile
    ("victim", {"ttl": 600}),                               # the barrage's
    ("diff-renew", {"ttl": 600}),
    ("diff-release", {"ttl": 600}),
    ("diff-release10", {"ttl": 600}),
    ("diff-nul", {"ttl": 600}),     # evhttp reads "TOKEN\0" as TOKEN
]


class Item:
    """One corpus entry: what is sent on one connection.

    head_last: the last request is a HEAD, whose answer has headers but no
    body; parse_responses cannot frame it (it waits for Content-Length
    bytes), so it is read as a head alone."""

    def __init__(self, label, data, head_last=False):
        self.label = label
        self.data = data
        self.head_last = head_last


# ---- the corpus -------------------------------------------------------

def req(method, path, headers=(), body=None, close=True, **kw):
    return request_bytes(method, path, headers=headers, body=body,
                         close=close, **kw)


def chunk(data):
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def framed(name, lengths, version=b"HTTP/1.1"):
    """An acquire of name with a Content-Length line for each format in
    lengths, each made from the body's length n (every %d in it is n)."""
    body = b'{"name":"%s"}' % name
    n = len(body)
    return (b"POST /v1/services " + version + b"\r\n" + HOST_HDR
            + b"Content-Type: application/json\r\n"
            + b"".join(b"Content-Length: " + f.replace(b"%d", b"%d" % n)
                       + b"\r\n" for f in lengths)
            + (b"Connection: close\r\n" if version == b"HTTP/1.1" else b"")
            + b"\r\n" + body)


def own_requests(tok):
    """Well-formed requests to every endpoint, and the HTTP framing cases
    a carrier must get right. tok: lease name -> this daemon's token."""
    auth = lambda name: "Authorization: Bearer " + tok[name]   # noqa: E731
    ok = b'{"name":"diff-acq"}'
    items = []

    def add(label, data, head_last=False):
        items.append(Item(label, data, head_last))

    # Every endpoint, GET.
    for path in ["/", "/metrics", "/v1/health", "/v1/status",
                 "/v1/services", "/v1/services/victim",
                 "/v1/services/anchor?wait=1", "/v1/services?index=0&wait=0"]:
        add("GET " + path, req("GET", path))
    add("GET lookup of no lease", req("GET", "/v1/services/nosuch"))
    add("GET lookup of no lease, wait=1 (1 s)",
        req("GET", "/v1/services/nosuch?wait=1"))
    add("GET watch that times out (1 s)",
        req("GET", "/v1/services?index=1000000&wait=1"))
    # HEAD of each.
    for path in ["/", "/metrics", "/v1/health", "/v1/status",
                 "/v1/services", "/v1/services/victim",
                 "/v1/services/nosuch", "/v1/services/victim/renew"]:
        add("HEAD " + path, req("HEAD", path), head_last=True)
    # Acquire, lookup, renew, release.
    add("acquire", req("POST", "/v1/services", body=ok))
    add("acquire again, no token", req("POST", "/v1/services", body=ok))
    add("acquire held name with its token (re-acquire)",
        req("POST", "/v1/services", [auth("victim")],
            body=b'{"name":"victim","ttl":600}'))
    add("acquire, every field",
        req("POST", "/v1/services",
            body=b'{"name":"diff-full","proto":"both","host":"::1",'
                 b'"ttl":600,"meta":{"k":"v"}}'))
    add("acquire, charset in Content-Type",
        req("POST", "/v1/services", body=b'{"name":"diff-charset"}',
            ctype=b"application/json; charset=utf-8"))
    add("lookup of the new lease", req("GET", "/v1/services/diff-acq"))
    add("renew", req("POST", "/v1/services/diff-renew/renew",
                     [auth("diff-renew")], body=b'{"ttl":600}'))
    add("renew, empty object", req("POST", "/v1/services/diff-renew/renew",
                                   [auth("diff-renew")], body=b"{}"))
    add("renew, wrong token", req("POST", "/v1/services/diff-renew/renew",
                                  [auth("victim")], body=b"{}"))
    add("release, wrong token", req("DELETE", "/v1/services/diff-release",
                                    [auth("victim")]))
    add("release", req("DELETE", "/v1/services/diff-release",
                       [auth("diff-release")]))
    add("release again (gone)", req("DELETE", "/v1/services/diff-release",
                                    [auth("diff-release")]))
    add("release with a body", req("DELETE", "/v1/services/nosuch",
                                   [auth("victim")], body=b"{}"))
    # Origins and CORS.
    for origin in ["http://127.0.0.1", "http://x.example"]:
        o = "Origin: " + origin
        add("OPTIONS preflight, Origin " + origin,
            req("OPTIONS", "/v1/services",
                [o, "Access-Control-Request-Method: POST",
                 "Access-Control-Request-Headers: content-type"]))
        add("GET with Origin " + origin, req("GET", "/v1/health", [o]))
        add("acquire with Origin " + origin,
            req("POST", "/v1/services", [o],
                body=b'{"name":"diff-o-%s"}' % origin[7:8].encode()))
    add("OPTIONS, no Origin", req("OPTIONS", "/v1/services"))
    add("OPTIONS *", b"OPTIONS * HTTP/1.1\r\n" + HOST_HDR
        + b"Connection: close\r\n\r\n")
    # Keep-alive: is the connection kept open after each kind of answer?
    add("keep-alive 200", req("GET", "/v1/health", close=False))
    add("keep-alive 201", req("POST", "/v1/services", close=False,
                              body=b'{"name":"diff-ka"}'))
    add("keep-alive 204", req("DELETE", "/v1/services/diff-release10",
                              [auth("diff-release10")], close=False))
    add("keep-alive 400", req("POST", "/v1/services", body=b"{",
                              close=False))
    add("keep-alive 403 host", req("GET", "/v1/health", close=False,
                                   host=b"Host: evil.example\r\n"))
    add("keep-alive 404", req("GET", "/v1/services/nosuch", close=False))
    add("keep-alive 405", req("PUT", "/v1/health", close=False))
    add("keep-alive 413", req("POST", "/v1/services", close=False,
                              body=b'{"name":"big","meta":{"a":"%s"}}'
                              % (b"x" * 70000)))
    add("keep-alive HEAD", req("HEAD", "/v1/health", close=False),
        head_last=True)
    add("Connection: keep-alive, HTTP/1.1",
        req("GET", "/v1/health", ["Connection: keep-alive"], close=False))
    # HTTP/1.0.
    add("HTTP/1.0", b"GET /v1/health HTTP/1.0\r\n" + HOST_HDR + b"\r\n")
    add("HTTP/1.0 keep-alive", b"GET /v1/health HTTP/1.0\r\n" + HOST_HDR
        + b"Connection: keep-alive\r\n\r\n")
    add("HTTP/1.0 without Host", b"GET /v1/health HTTP/1.0\r\n\r\n")
    add("HTTP/1.0 acquire", framed(b"diff-h10", [b"%d"], b"HTTP/1.0"))
    add("HTTP/1.0 HEAD", b"HEAD /v1/health HTTP/1.0\r\n" + HOST_HDR
        + b"\r\n", head_last=True)
    # Pipelined pairs on one connection.
    add("pipelined GET, GET",
        req("GET", "/v1/health", close=False) + req("GET", "/v1/status"))
    add("pipelined acquire, lookup",
        req("POST", "/v1/services", body=b'{"name":"diff-pipe"}',
            close=False) + req("GET", "/v1/services/diff-pipe"))
    add("pipelined 404, GET",
        req("GET", "/v1/services/nosuch", close=False)
        + req("GET", "/v1/health"))
    add("pipelined 400, GET",
        req("POST", "/v1/services", body=b"[]", close=False)
        + req("GET", "/v1/health"))
    add("pipelined GET, HEAD",
        req("GET", "/v1/health", close=False) + req("HEAD", "/v1/health"),
        head_last=True)
    add("pipelined HTTP/1.0, HTTP/1.1",
        b"GET /v1/health HTTP/1.0\r\n" + HOST_HDR
        + b"Connection: keep-alive\r\n\r\n" + req("GET", "/v1/status"))
    add("pipelined GET keep-alive, GET keep-alive",
        req("GET", "/v1/health", close=False) * 2)
    # Bodies and framing.
    add("Expect: 100-continue",
        req("POST", "/v1/services", ["Expect: 100-continue"],
            body=b'{"name":"diff-expect"}'))
    add("Expect: something-else",
        req("POST", "/v1/services", ["Expect: something-else"],
            body=b'{"name":"diff-expect2"}'))
    add("body over 64 KiB", req("POST", "/v1/services",
                                body=b'{"name":"big","meta":{"a":"%s"}}'
                                % (b"x" * 70000)))
    add("body over 1 MiB", req("POST", "/v1/services",
                               body=b'{"name":"big","meta":{"a":"%s"}}'
                               % (b"x" * (1 << 20))))
    chunked = (b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
               + b"Content-Type: application/json\r\n"
               + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    add("chunked acquire", chunked + chunk(b'{"name":')
        + chunk(b'"diff-chunk"') + chunk(b"}") + b"0\r\n\r\n")
    add("chunked with extension and trailer", chunked
        + chunk(b'{"name":"diff-chunk-ext"').replace(b"\r\n",
                                                      b";ext=1\r\n", 1)
        + chunk(b"}") + b"0\r\nX-Trailer: t\r\n\r\n")
    add("chunked, bad size", chunked + b"zz\r\n{}\r\n0\r\n\r\n")
    add("chunked and Content-Length",
        b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
        + b"Content-Type: application/json\r\nContent-Length: 4\r\n"
        + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + chunk(b'{"name":"diff-te-cl1"}') + b"0\r\n\r\n")
    add("Transfer-Encoding: gzip",
        b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
        + b"Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n"
        + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    add("duplicate Content-Length, same",
        framed(b"diff-dcl", [b"%d", b"%d"]))
    add("duplicate Content-Length, different",
        framed(b"diff-dcl2", [b"%d", b"2"]))
    add("Content-Length: N, N in one header",
        framed(b"diff-dcl3", [b"%d, %d"]))
    add("Content-Length with a plus", framed(b"diff-dcl4", [b"+%d"]))
    add("body shorter than Content-Length (then idle)",
        b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
        + b"Content-Type: application/json\r\nContent-Length: 50\r\n\r\n"
        + b'{"name":"diff-short"}')
    # Request lines.
    add("unknown method", req("FOO", "/v1/health"))
    add("lower-case method", req("get", "/v1/health"))
    add("HTTP/2.0 line", b"GET /v1/health HTTP/2.0\r\n" + HOST_HDR
        + b"Connection: close\r\n\r\n")
    add("HTTP/1.2 line", b"GET /v1/health HTTP/1.2\r\n" + HOST_HDR
        + b"Connection: close\r\n\r\n")
    add("HTTP/0.9 line (then idle)", b"GET /v1/health\r\n")
    add("HTTP/0.9 line and an empty line", b"GET /v1/health\r\n\r\n")
    add("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    add("version in lower case", b"GET /v1/health http/1.1\r\n" + HOST_HDR
        + b"Connection: close\r\n\r\n")
    add("two spaces in the request line",
        b"GET  /v1/health HTTP/1.1\r\n" + HOST_HDR
        + b"Connection: close\r\n\r\n")
    add("tab in the request line", b"GET\t/v1/health HTTP/1.1\r\n"
        + HOST_HDR + b"Connection: close\r\n\r\n")
    add("absolute URI, own host", req("GET", "http://127.0.0.1/v1/health"))
    add("percent-encoded path", req("GET", "/v1/%68ealth"))
    add("fragment in the target", req("GET", "/v1/health#frag"))
    add("query on a path without one", req("GET", "/v1/health?x=1"))
    add("9000-byte target", req("GET", "/v1/health?x=" + "a" * 9000))
    add("LF-only line ends", b"GET /v1/health HTTP/1.1\nHost: 127.0.0.1\n"
        + b"Connection: close\n\n")
    add("leading empty line", b"\r\n" + req("GET", "/v1/health"))
    # Headers.
    add("space before the colon (Host)", b"GET /v1/health HTTP/1.1\r\n"
        + b"Host : 127.0.0.1\r\nConnection: close\r\n\r\n")
    add("space before the colon (other)", req("GET", "/v1/health",
                                               [b"X-Diff : 1"]))
    add("obs-fold continuation line",
        req("GET", "/v1/health", [b"X-Diff: a", b" b"]))
    add("obs-fold continuing Host", b"GET /v1/health HTTP/1.1\r\n"
        + b"Host: 127.0.0.1\r\n .evil.example\r\nConnection: close\r\n\r\n")
    add("NUL in a header value", req("GET", "/v1/health",
                                     [b"X-Diff: a\x00b"]))
    add("NUL after the token", req("DELETE", "/v1/services/diff-nul",
                                   [(auth("diff-nul") + "\0").encode()]))
    add("empty header value", req("GET", "/v1/health", [b"X-Diff:"]))
    add("header without a value or colon", req("GET", "/v1/health",
                                               [b"X-Diff"]))
    add("CR alone in a header value", req("GET", "/v1/health",
                                          [b"X-Diff: a\rb"]))
    add("Host with a port", req("GET", "/v1/health",
                                host=b"Host: 127.0.0.1:62893\r\n"))
    add("Host localhost", req("GET", "/v1/health",
                              host=b"Host: localhost\r\n"))
    add("Host [::1]", req("GET", "/v1/health", host=b"Host: [::1]\r\n"))
    add("HTTP/1.1 without Host", req("GET", "/v1/health", host=b""))
    add("header names in upper case", b"GET /v1/health HTTP/1.1\r\n"
        + b"HOST: 127.0.0.1\r\nCONNECTION: close\r\n\r\n")
    add("Authorization scheme in lower case",
        req("POST", "/v1/services/diff-renew/renew",
            ["authorization: bearer " + tok["diff-renew"]], body=b"{}"))
    return items


def corpus_file_request(raw):
    """A file of the fuzzer's corpus (without an admin's leading '!') as a
    real HTTP/1.1 request: CRLF line ends, a Host header if it has none, a
    Content-Length if it has a body and no framing, and Connection: close
    if it has no Connection header. The last so that the corpus takes
    well under 30 s: its "acquire" leases "api" for 30 s, and later files
    would see it live or expired by the timing of the run (keep-alive is
    covered by own_requests)."""
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    names = {ln.split(b":", 1)[0].strip().lower() for ln in lines[1:]}
    if b"host" not in names:
        lines.insert(1, b"Host: 127.0.0.1")
    if body and not names & {b"content-length", b"transfer-encoding"}:
        lines.append(b"Content-Length: %d" % len(body))
    if b"connection" not in names:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def corpus_items(tok, corpus_dir):
    """The whole corpus for one daemon, in order."""
    items = own_requests(tok)
    for label, data in malformed_requests(tok["victim"]):
        items.append(Item("barrage: " + label, data))
    for g in OversizedAndGarbage.garbage_variants(None):
        items.append(Item("garbage alone: %r" % g[:30], g))
    for i, g in enumerate(OversizedAndGarbage.garbage_variants(None)):
        body = b'{"name":"smuggled-%d"}' % i
        items.append(Item(
            "garbage pipelined: %r" % g[:30],
            request_bytes("GET", "/v1/services/anchor", close=False) + g
            + request_bytes("POST", "/v1/services", body=body, close=False)))
    for label, data in OversizedAndGarbage.oversized_variants(None):
        items.append(Item("oversized: " + label, data))
    if corpus_dir:
        for name in sorted(os.listdir(corpus_dir)):
            with open(os.path.join(corpus_dir, name), "rb") as f:
                raw = f.read()
            label = "corpus file " + name
            if raw.startswith(b"!"):
                raw, label = raw[1:], label + " (admin's, sent over TCP)"
            items.append(Item(label, corpus_file_request(raw)))
    return items


# ---- a daemon and its answers ----------------------------------------

class Side:
    """One berthd under test: its process (a berthtest.Berthd) and the
    tokens of the leases it was given."""

    def __init__(self, what, binary, args):
        self.what = what
        berthtest.BERTHD = binary      # berthd_argv reads it at start
        self.d = berthtest.Berthd(["--idle-timeout", str(IDLE_TIMEOUT)]
                                  + args)
        self.tok = {}
        for name, fields in SETUP_LEASES:
            r = self.d.acquire(name, **fields)
            if r.status != 201:
                raise berthtest.StartError("%s: acquiring %s: %r"
                                           % (what, name, r))
            self.tok[name] = r.json["token"]

    def mask(self, label):
        """An item's label with this daemon's tokens hidden (a label may
        show a token, whole or cut short)."""
        for t in self.tok.values():
            label = label.replace(t, "<token>")
        return re.sub(r"[0-9a-f]{6,}", "<hex>", label)

    def close(self):
        self.d.close()
        shutil.rmtree(self.d.tmp, ignore_errors=True)


class Answers:
    """What one daemon sent back for one item."""

    def __init__(self, resps, rest, how, error=None):
        self.resps = resps      # test_hostile.Raw: status, headers, body
        self.rest = rest        # bytes that are no whole answer
        self.how = how          # 'eof', 'reset', 'timeout' (kept open)
        self.error = error      # the exchange failed: why

    @property
    def closed(self):
        return self.how in ("eof", "reset")


def heads_only(buf):
    """Answers with no body (to HEAD): each head, parsed by
    parse_responses once its Content-Length is out of the way."""
    out = []
    while b"\r\n\r\n" in buf:
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        kept = [ln for ln in lines
                if not ln.lower().startswith(b"content-length:")]
        r, _ = parse_responses(b"\r\n".join(kept) + b"\r\n\r\n")
        for ln in lines:
            if ln.lower().startswith(b"content-length:"):
                r[0].headers["content-length"] = \
                    ln.split(b":", 1)[1].strip().decode("latin-1")
        out += r
    return out, buf


def send(side, item):
    """Send item on a fresh connection; the answers until berthd closes
    it or OPEN_AFTER seconds pass."""
    try:
        resps, rest, how = exchange(side.d, item.data, timeout=OPEN_AFTER)
    except AssertionError as e:     # parse_responses: not HTTP
        return Answers([], b"", "", "%s" % e)
    except OSError as e:
        return Answers([], b"", "", "%s: %s" % (type(e).__name__, e))
    if item.head_last and rest:
        more, rest = heads_only(rest)
        resps = resps + more
    elif (rest and resps and how == "eof"
          and not {"content-length", "transfer-encoding"}
          & set(resps[-1].headers)):
        # An answer with neither is delimited by the close (evhttp's to
        # HTTP/1.0): its body is all that came, which parse_responses
        # left over.
        resps[-1].body, rest = resps[-1].body + rest, b""
    return Answers(resps, rest, how)


# ---- comparing -------------------------------------------------------

def normalise(text, side):
    """text (str) with what legitimately differs between two runs of
    berthd, or two daemons side by side, replaced by a placeholder. Only
    these rules; each says what it covers.

    Deliberately not normalised: leased ports (the pool hands them out
    first in, first out, so both daemons give the same ports for the same
    requests, and a difference means the leases went differently), and
    pids (berthd's own is in no answer; a lease's is the one its acquire
    sent, the same to both)."""
    d = side.d
    # The temporary directory (its database's path in /v1/status).
    text = text.replace(d.tmp, "<tmpdir>")
    # The listen address: 127.0.0.1 and the port the kernel picked.
    text = text.replace(d.addr, "<listen-addr>")
    # Tokens of leases acquired: 128 random bits each.
    text = re.sub(r'"token":"[0-9a-f]{32}"', '"token":"<token>"', text)
    # Lease times, RFC 3339: created_at, renewed_at, expires_at.
    text = re.sub(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>",
                  text)
    # The status page's times in ms since the epoch (0 = no expiry stays).
    text = re.sub(r'\b(data-(?:now|created|expires))="[1-9]\d*"',
                  r'\1="<ms>"', text)
    # The status page's ages and TTLs left, as text ("9 min 59 s").
    text = re.sub(r"<td>\d+ (?:d|h|min|s)(?: \d+ (?:h|min|s))?</td>",
                  "<td><duration></td>", text)
    # Uptime and start time: /v1/status, /metrics.
    text = re.sub(r'"uptime":\d+', '"uptime":<n>', text)
    text = re.sub(r"(?m)^(berth_uptime_seconds|process_start_time_seconds)"
                  r" [0-9.e+]+$", r"\1 <n>", text)
    # Durations measured by /metrics: histogram buckets and sums (labels
    # may hold braces: route="/v1/services/{name}").
    text = re.sub(r"(?m)^(\w+_duration_seconds_(?:bucket|sum)(?:\{.*\})?)"
                  r" [0-9.e+-]+$", r"\1 <n>", text)
    # The change index: "index" in /v1/services, berth_index in /metrics,
    # the status page's (X-Berth-Index's value: header_key).
    text = re.sub(r'"index":\d+', '"index":<n>', text)
    text = re.sub(r"(?m)^berth_index \d+$", "berth_index <n>", text)
    text = re.sub(r'(data-index="|<span id="index">)\d+', r"\1<n>", text)
    # berthd's version: "version" in /v1/status, berth_build_info.
    text = re.sub(r'("version":"|version=")[^"]*"', r'\1<version>"', text)
    return text


def header_key(name, value, side):
    """A header as compared: Date is left out; Content-Length's value is
    (the body it frames is compared instead, after normalise()); the
    X-Berth-Index value is normalised like the body's index."""
    if name == "date":
        return None
    if name == "content-length":
        return (name, "<n>")
    if name == "x-berth-index":
        return (name, "<n>" if value.isdigit() else value)
    return (name, normalise(value, side))


def view(side, a):
    """The comparable form of one daemon's answers to an item."""
    answers = []
    for r in a.resps:
        hdrs = sorted(filter(None, (header_key(k, v, side)
                                    for k, v in r.headers.items())))
        answers.append((r.status, hdrs,
                        normalise(r.body.decode("latin-1"), side)))
    return {
        "statuses": [r.status for r in a.resps],
        "answers": answers,
        "leftover": normalise(a.rest.decode("latin-1"), side),
        "closed": a.closed,
        "error": normalise(a.error or "", side),
    }


def differences(old, new):
    """How two views differ, as short phrases (empty: alike)."""
    out = []
    if old["error"] != new["error"]:
        out.append("exchange failure: %r vs %r" % (old["error"][:100],
                                                   new["error"][:100]))
    if old["statuses"] != new["statuses"]:
        out.append("statuses %s vs %s" % (old["statuses"], new["statuses"]))
    for i, (o, n) in enumerate(zip(old["answers"], new["answers"])):
        on, nn = {k for k, _ in o[1]}, {k for k, _ in n[1]}
        if on != nn:
            out.append("answer %d header names: only old %s, only new %s"
                       % (i + 1, sorted(on - nn), sorted(nn - on)))
        else:
            vals = [k for (k, v), (_, w) in zip(o[1], n[1]) if v != w]
            if vals:
                out.append("answer %d header values: %s" % (i + 1, vals))
        if o[2] != n[2]:
            out.append("answer %d body" % (i + 1))
    if old["leftover"] != new["leftover"]:
        out.append("bytes after the last whole answer: %d vs %d"
                   % (len(old["leftover"]), len(new["leftover"])))
    if old["closed"] != new["closed"]:
        out.append("connection %s vs %s"
                   % tuple("closed" if c else "kept open"
                           for c in (old["closed"], new["closed"])))
    return out


def show(a, indent="    "):
    """One daemon's answers, as a client saw them (before normalise)."""
    lines = []
    if a.error:
        lines.append("%sexchange failed: %s" % (indent, a.error[:300]))
    for r in a.resps:
        lines.append("%s%d %r" % (indent, r.status, r.headers))
        lines.append("%s  body %r" % (indent, r.body[:300]))
    if not a.resps and not a.error:
        lines.append("%sno answer" % indent)
    if a.rest:
        lines.append("%sleftover %r" % (indent, a.rest[:300]))
    lines.append("%sconnection %s" % (indent, {
        "eof": "closed by berthd", "reset": "reset by berthd",
        "timeout": "kept open %.1f s" % OPEN_AFTER}.get(a.how, "?")))
    return "\n".join(lines)


def body_diff(old, new):
    """The first differing line of each differing body (verbose)."""
    out = []
    for i, (o, n) in enumerate(zip(old["answers"], new["answers"])):
        if o[2] == n[2]:
            continue
        ol, nl = o[2].splitlines(), n[2].splitlines()
        for k in range(max(len(ol), len(nl))):
            a = ol[k] if k < len(ol) else "<none>"
            b = nl[k] if k < len(nl) else "<none>"
            if a != b:
                out.append("    answer %d, normalised body line %d:\n"
                           "      old %r\n      new %r"
                           % (i + 1, k + 1, a[:200], b[:200]))
                break
    return "\n".join(out)


# ---- main ------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Send one corpus of raw requests to two berthd "
        "binaries and compare what comes back.")
    p.add_argument("--old", required=True, help="the old berthd binary")
    p.add_argument("--new", required=True, help="the new berthd binary")
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--corpus-dir", default=os.path.join(
        here, "..", "fuzz", "corpus", "request"),
        help="the fuzzer's request corpus (default: %(default)s)")
    p.add_argument("--old-args", default="", help="more flags for the old "
                   "berthd, one string: --old-args='--flag value'")
    p.add_argument("--new-args", default="", help="more flags for the new "
                   "berthd, one string: --new-args='--allow-origin "
                   "http://x.example'")
    p.add_argument("--verbose", action="store_true",
                   help="a line for every item; for differing bodies, the "
                   "first differing line")
    args = p.parse_args(argv)
    for b in (args.old, args.new):
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            p.error("not an executable file: %s" % b)
    if not os.path.isdir(args.corpus_dir):
        p.error("no corpus directory: %s" % args.corpus_dir)
    return args


def run(args, old, new):
    """Send the corpus to both; print; return the number of differences."""
    old_items = corpus_items(old.tok, args.corpus_dir)
    new_items = corpus_items(new.tok, args.corpus_dir)
    # The same items in the same order (labels may show a token).
    assert ([old.mask(i.label) for i in old_items]
            == [new.mask(i.label) for i in new_items])
    differ = 0
    for n, (oi, ni) in enumerate(zip(old_items, new_items), 1):
        oa, na = send(old, oi), send(new, ni)
        ov, nv = view(old, oa), view(new, na)
        diffs = differences(ov, nv)
        if args.verbose:
            print("%s #%d %s: %s%s%s%s" % (
                "DIFF" if diffs else "same", n, old.mask(oi.label)[:90],
                ov["statuses"], "" if ov["closed"] else " (open)",
                " (%d bytes left over)" % len(oa.rest) if oa.rest else "",
                " (failed: %s)" % oa.error[:60] if oa.error else ""),
                flush=True)
        if not diffs:
            continue
        differ += 1
        print("\n=== #%d %s" % (n, old.mask(oi.label)))
        print("request (old's): %r" % oi.data[:120])
        print("old:\n" + show(oa))
        print("new:\n" + show(na))
        print("differs: " + "; ".join(diffs))
        if args.verbose:
            print(body_diff(ov, nv))
        sys.stdout.flush()
    print("%d items, %d identical, %d differ"
          % (len(old_items), len(old_items) - differ, differ))
    return differ


def main(argv=None):
    args = parse_args(argv)
    sides = []
    try:
        try:
            sides.append(Side("old", os.path.abspath(args.old),
                              shlex.split(args.old_args)))
            sides.append(Side("new", os.path.abspath(args.new),
                              shlex.split(args.new_args)))
        except (berthtest.StartError, OSError) as e:
            print("http_diff: cannot start berthd: %s" % e, file=sys.stderr)
            return 2
        return 1 if run(args, *sides) else 0
    finally:
        for s in sides:
            s.close()


if __name__ == "__main__":
    sys.exit(main())
