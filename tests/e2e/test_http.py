"""berthd's HTTP/1.1 carrier (src/http.c), end to end, on raw sockets.

What docs/api.md promises of the carrier ("Errors", "Limits"): pipelined
requests carried out one at a time and answered in order, a blocking query
holding those behind it; half-close answering every complete request and
dropping a partial one; Expect: 100-continue; body framing (Content-Length
only: chunked is 411, over 64 KiB is 413 at once); HTTP/1.0 and keep-alive;
the JSON errors of malformed HTTP, after which the connection closes and
nothing more of it is carried out; the headers every answer carries; the
head's size limit; clients that leave with a request parked; absolute-form
request lines; the unix socket.

A "head" here is the request line, the header lines and the empty line
that ends them, CRLFs included: what --max-header-size bounds (http.c).

Raw requests and answers go through test_hostile's helpers
(request_bytes, exchange, parse_responses, read_until_closed). Waits are
bounded (10 s) only to keep a broken berthd from hanging the suite; no test
asserts how fast anything is.
"""
import datetime
import email.utils
import json
import os
import re
import select
import shutil
import socket
import struct
import tempfile
import time
import unittest

import berthtest
from berthtest import BerthTestCase, main, wait_for
from test_hostile import (HOST_HDR, Raw, exchange, metric, parse_responses,
                          read_until_closed, request_bytes)

# Seconds: the bound on any wait for an answer or a close (longer when
# berthd runs under a wrapper such as valgrind; wait_for scales its own).
WAIT = 10 * berthtest.SLOWDOWN

HTTP_DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                       r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                       r"\d{4} \d\d:\d\d:\d\d GMT$")
ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
LOG_PROBLEM = re.compile(r"berthd\[\d+\]: (error|warn): .*")

# Raw TCP to d.host:d.port does not work against BERTH_TEST_ADDR=unix:...
tcp_only = unittest.skipIf(berthtest.TEST_ADDR.startswith("unix:"),
                           "raw TCP sockets; BERTH_TEST_ADDR is a unix socket")


def acquire_bytes(name, close=False, headers=()):
    """An acquire of name, well framed (Content-Length)."""
    return request_bytes("POST", "/v1/services", headers,
                         body=json.dumps({"name": name}).encode(), close=close)


def connect(d, timeout=WAIT):
    s = socket.create_connection((d.host, d.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answers(sock, n, timeout=WAIT):
    """Read until n whole answers (an interim 100 counts as one) are in;
    returns (answers, leftover bytes). Fails if the connection closes first
    or timeout seconds pass."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        resps, rest = parse_responses(buf)
        if len(resps) >= n:
            return resps, rest
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("%d of %d answers after %d s: %r"
                                 % (len(resps), n, timeout, buf[-300:]))
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            raise AssertionError("closed after %d of %d answers: %r"
                                 % (len(resps), n, buf[-300:]))
        buf += chunk


def nothing_yet(sock, within=0.2):
    """The bytes berthd sent on sock so far, without waiting for more than
    `within` seconds; b"" if none (the connection is still open)."""
    r, _, _ = select.select([sock], [], [], within)
    if not r:
        return b""
    sock.setblocking(False)
    try:
        return sock.recv(65536) or b"<EOF>"
    except BlockingIOError:
        return b""
    finally:
        sock.setblocking(True)


def split_head(buf):
    """An answer without a body (HEAD, or one whose framing is the point):
    (status, headers with lower-case names, the bytes after its head)."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no whole answer head in %r" % buf[:300])
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), headers, rest


def close_abruptly(sock):
    """Close with a reset (RST) instead of a FIN: SO_LINGER with 0 s."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def lease_status(d, name):
    return d.get("/v1/services/" + name, timeout=WAIT).status


class HttpCase(BerthTestCase):
    def assertBerthHeaders(self, resp, what=""):
        """What every answer of berthd carries (docs/api.md, "Content type"
        and X-Berth-Index): Date in RFC 7231's IMF-fixdate, Content-Length
        (none on a 204), X-Berth-Index, Cache-Control: no-store and
        X-Content-Type-Options: nosniff."""
        h = resp.headers
        what = "%s %r %r" % (what, resp, h)
        self.assertIn("date", h, what)
        self.assertRegex(h["date"], HTTP_DATE, what)
        when = email.utils.parsedate_to_datetime(h["date"])
        # Weekday and padding consistent with the date it names...
        self.assertEqual(email.utils.format_datetime(when, usegmt=True),
                         h["date"], what)
        # ...and it is now (generously: this is no timing check).
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - when).total_seconds()), 600, what)
        if resp.status == 204:
            self.assertNotIn("content-length", h, what)
            self.assertEqual(resp.body, b"", what)
        else:
            self.assertIn("content-length", h, what)
            self.assertRegex(h["content-length"], r"^[0-9]+$", what)
        self.assertRegex(h.get("x-berth-index", ""), r"^[0-9]+$", what)
        self.assertEqual(h.get("cache-control"), "no-store", what)
        self.assertEqual(h.get("x-content-type-options"), "nosniff", what)

    def assertJsonError(self, resp, status, code, what=""):
        what = "%s %r" % (what, resp)
        self.assertEqual(resp.status, status, what)
        self.assertTrue(resp.headers.get("content-type", "")
                        .startswith("application/json"), what)
        err = json.loads(resp.body)["error"]
        self.assertEqual(err["code"], code, what)
        self.assertRegex(err["code"], ERROR_CODE, what)
        self.assertIsInstance(err["message"], str, what)
        self.assertTrue(err["message"], what)

    def assertRefused(self, d, bad, status, code, name):
        """bad, with an acquire of name pipelined after it on the same
        connection: one JSON error answer with Connection: close, then the
        connection closes, and the acquire was never carried out."""
        resps, rest, how = exchange(d, bad + acquire_bytes(name),
                                    timeout=WAIT)
        what = "%r:" % bad[:60]
        self.assertEqual(len(resps), 1, "%s answers %r, leftover %r"
                         % (what, resps, rest[:200]))
        self.assertJsonError(resps[0], status, code, what)
        self.assertBerthHeaders(resps[0], what)
        self.assertEqual(resps[0].headers.get("connection"), "close", what)
        self.assertEqual(rest, b"", what)
        self.assertEqual(how, "eof", "%s the connection was not closed after "
                         "the error (%s)" % (what, how))
        self.assertEqual(lease_status(d, name), 404, "%s the acquire "
                         "pipelined after the error was carried out" % what)


@tcp_only
class Pipelining(HttpCase):
    def test_blocking_query_holds_the_next_request_in_order(self):
        d = self.berthd()
        s = connect(d)
        self.addCleanup(s.close)
        s.sendall(request_bytes("GET", "/v1/services/late?wait=5", close=False)
                  + request_bytes("GET", "/v1/health", close=False))
        wait_for(lambda: d.get("/v1/status").json["waiters"] == 1, 10,
                 "the lookup of 'late' to park")
        time.sleep(0.5)
        # Parked: neither the lookup nor the health behind it is answered.
        self.assertEqual(nothing_yet(s), b"", "answered before 'late' was "
                         "acquired")
        r = d.acquire("late")
        self.assertEqual(r.status, 201, r)
        port = r.json["port"]
        resps, rest = read_answers(s, 2)
        self.assertEqual([x.status for x in resps], [200, 200], resps)
        first, second = (json.loads(x.body) for x in resps)
        self.assertEqual((first["name"], first["port"]), ("late", port),
                         "the first answer is not the lookup of 'late'")
        self.assertEqual(second, {"status": "ok"}, "the second answer is not "
                         "the health answer")
        self.assertEqual(rest, b"")
        # The connection is kept alive: one more request on it.
        s.sendall(request_bytes("GET", "/v1/services/late", close=False))
        resps, _ = read_answers(s, 1)
        self.assertEqual(resps[0].status, 200, resps)

    def test_pipelined_requests_carried_out_in_order(self):
        # One at a time, in order: a lookup after an acquire sees its lease,
        # one before it does not.
        d = self.berthd()
        data = (request_bytes("GET", "/v1/services/p1", close=False)
                + acquire_bytes("p1")
                + request_bytes("GET", "/v1/services/p1", close=False)
                + acquire_bytes("p1")
                + acquire_bytes("p2")
                + request_bytes("GET", "/v1/services", close=True))
        resps, rest, how = exchange(d, data)
        self.assertEqual([x.status for x in resps],
                         [404, 201, 200, 409, 201, 200], resps)
        port = json.loads(resps[1].body)["port"]
        self.assertEqual(json.loads(resps[2].body)["port"], port)
        self.assertEqual(json.loads(resps[3].body)["error"]["code"],
                         "name_taken")
        listed = json.loads(resps[5].body)["services"]
        self.assertEqual([x["name"] for x in listed], ["p1", "p2"])
        self.assertEqual((rest, how), (b"", "eof"))


@tcp_only
class HalfClose(HttpCase):
    def half_close(self, d, data):
        s = connect(d)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            buf, how = read_until_closed(s, WAIT)
        finally:
            s.close()
        resps, rest = parse_responses(buf)
        return resps, rest, how

    def test_every_complete_request_answered_then_closed(self):
        d = self.berthd()
        # Repeated: when berthd reads the EOF against its requests varies.
        for i in range(5):
            name = "hc-%d" % i
            data = (request_bytes("GET", "/v1/health", close=False)
                    + acquire_bytes(name)
                    + request_bytes("GET", "/v1/services/" + name,
                                    close=False))
            resps, rest, how = self.half_close(d, data)
            self.assertEqual([x.status for x in resps], [200, 201, 200],
                             "round %d: %r (%s)" % (i, resps, how))
            self.assertEqual(json.loads(resps[0].body), {"status": "ok"})
            acquired = json.loads(resps[1].body)
            looked_up = json.loads(resps[2].body)
            self.assertEqual(acquired["name"], name)
            self.assertEqual(looked_up["port"], acquired["port"])
            self.assertEqual(rest, b"")
            self.assertEqual(how, "eof", "round %d: not closed after the "
                             "answers" % i)

    def test_partial_request_at_the_end_is_dropped(self):
        d = self.berthd()
        body = json.dumps({"name": "partial"}).encode()
        whole = acquire_bytes("partial")
        self.assertTrue(whole.endswith(body))
        cuts = [("body cut short", whole[:-len(body) // 2]),
                ("head only", whole[:-len(body)]),
                ("head cut short", whole[:len(whole) // 3])]
        for what, partial in cuts:
            data = (request_bytes("GET", "/v1/health", close=False)
                    + request_bytes("GET", "/v1/services/partial",
                                    close=False)
                    + partial)
            resps, rest, how = self.half_close(d, data)
            self.assertEqual([x.status for x in resps], [200, 404],
                             "%s: %r" % (what, resps))
            self.assertEqual(rest, b"", what)
            self.assertEqual(how, "eof", "%s: not closed (%s)" % (what, how))
            self.assertEqual(lease_status(d, "partial"), 404, "%s: the "
                             "partial acquire was carried out" % what)
        self.assertEqual(d.get("/v1/services").json["services"], [])

    def test_every_complete_request_answered_past_the_output_bound(self):
        d = self.berthd()
        one = len(d.get("/metrics").body) + 300
        n = max(60, 4 * 256 * 1024 // one + 1)
        s = socket.socket()
        self.addCleanup(s.close)
        # A small receive window, so that berthd's answers pile up in it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(WAIT)
        s.connect((d.host, d.port))
        s.sendall(request_bytes("GET", "/metrics", close=False) * n)
        s.shutdown(socket.SHUT_WR)
        # Let berthd read the EOF while the answers wait to be taken.
        time.sleep(0.5)
        buf, how = read_until_closed(s, WAIT)
        resps, rest = parse_responses(buf)
        self.assertEqual(len(resps), n, "%d GET /metrics pipelined then "
                         "shutdown(SHUT_WR): %d answered (%s)"
                         % (n, len(resps), how))
        self.assertEqual({x.status for x in resps}, {200})
        self.assertEqual((rest, how), (b"", "eof"))


@tcp_only
class ExpectContinue(HttpCase):
    def acquire_head(self, name, expect="100-continue"):
        body = json.dumps({"name": name}).encode()
        head = request_bytes("POST", "/v1/services",
                             ["Expect: " + expect], body=body, close=False)
        return head[:-len(body)], body

    def test_100_continue_before_the_body(self):
        d = self.berthd()
        s = connect(d)
        self.addCleanup(s.close)
        head, body = self.acquire_head("ex1")
        s.sendall(head)
        want = b"HTTP/1.1 100 Continue\r\n\r\n"
        got = b""
        deadline = time.monotonic() + WAIT
        while len(got) < len(want) and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(len(want) - len(got))
            except socket.timeout:
                continue
            if not chunk:
                break
            got += chunk
        self.assertEqual(got, want, "what came back for the head alone, "
                         "within %d s" % WAIT)
        self.assertEqual(lease_status(d, "ex1"), 404)
        s.sendall(body)
        resps, rest = read_answers(s, 1)
        self.assertEqual(resps[0].status, 201, resps)
        self.assertEqual(json.loads(resps[0].body)["name"], "ex1")
        self.assertBerthHeaders(resps[0])
        self.assertEqual(rest, b"")
        self.assertEqual(lease_status(d, "ex1"), 200)

    def test_body_sent_with_the_head(self):
        # No 100 is needed then; one may come, and the 201 after it.
        d = self.berthd()
        head, body = self.acquire_head("ex2")
        resps, rest, how = exchange(d, head + body + request_bytes(
            "GET", "/v1/services/ex2"))
        statuses = [x.status for x in resps]
        if statuses[:1] == [100]:
            statuses = statuses[1:]
        self.assertEqual(statuses, [201, 200], resps)
        self.assertEqual((rest, how), (b"", "eof"))

    def test_other_expectation_417(self):
        d = self.berthd()
        head, body = self.acquire_head("ex3", expect="foo")
        self.assertRefused(d, head + body, 417, "expectation_failed", "ex3-b")
        self.assertEqual(lease_status(d, "ex3"), 404)

    def test_100_continue_over_the_body_limit_is_413_not_100(self):
        d = self.berthd()
        s = connect(d)
        self.addCleanup(s.close)
        s.sendall(b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
                  + b"Content-Type: application/json\r\n"
                  + b"Expect: 100-continue\r\nContent-Length: 70000\r\n\r\n")
        resps, rest = read_answers(s, 1)
        self.assertJsonError(resps[0], 413, "body_too_large")
        buf, how = read_until_closed(s, WAIT)
        self.assertEqual((rest + buf, how), (b"", "eof"))


@tcp_only
class BodyFraming(HttpCase):
    def test_chunked_411_then_closed(self):
        d = self.berthd()
        body = b'{"name":"chunky"}'
        data = (b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
                + b"Content-Type: application/json\r\n"
                + b"Transfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        self.assertRefused(d, data, 411, "length_required", "chunky-2")
        self.assertEqual(lease_status(d, "chunky"), 404)

    def test_huge_content_length_413_at_once(self):
        d = self.berthd()
        s = connect(d)
        self.addCleanup(s.close)
        # The head alone; the 10 MB body is never sent, nor any EOF.
        s.sendall(b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
                  + b"Content-Type: application/json\r\n"
                  + b"Content-Length: 10000000\r\n\r\n")
        resps, rest = read_answers(s, 1, WAIT)
        self.assertJsonError(resps[0], 413, "body_too_large")
        self.assertEqual(resps[0].headers.get("connection"), "close")
        self.assertBerthHeaders(resps[0])
        buf, how = read_until_closed(s, WAIT)
        self.assertEqual((rest + buf, how), (b"", "eof"),
                         "not closed after the 413")

    def test_body_limit_is_64_kib(self):
        d = self.berthd()
        body = b'{"name":"big"}'
        body += b" " * (65536 - len(body))
        resps, rest, how = exchange(d, request_bytes(
            "POST", "/v1/services", body=body))
        self.assertEqual([x.status for x in resps], [201], resps)
        over = request_bytes("POST", "/v1/services",
                             body=b'{"name":"bigger"}' + b" " * (65537 - 17))
        self.assertRefused(d, over, 413, "body_too_large", "bigger-2")
        self.assertEqual(lease_status(d, "bigger"), 404)

    def test_content_length_and_transfer_encoding_400(self):
        d = self.berthd()
        body = b'{"name":"both"}'
        data = (b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
                + b"Content-Type: application/json\r\n"
                + b"Content-Length: %d\r\n" % len(body)
                + b"Transfer-Encoding: chunked\r\n\r\n" + body)
        self.assertRefused(d, data, 400, "bad_request", "both-2")
        self.assertEqual(lease_status(d, "both"), 404)

    def test_two_content_lengths_400(self):
        d = self.berthd()
        body = b'{"name":"twice"}'
        data = (b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
                + b"Content-Type: application/json\r\n"
                + b"Content-Length: %d\r\n" % len(body)
                + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.assertRefused(d, data, 400, "bad_request", "twice-2")
        self.assertEqual(lease_status(d, "twice"), 404)

    def test_content_length_over_18_digits_413(self):
        d = self.berthd()
        data = (b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
                + b"Content-Type: application/json\r\n"
                + b"Content-Length: 99999999999999999999\r\n\r\n")
        resps, rest, how = exchange(d, data)
        self.assertEqual(len(resps), 1, resps)
        self.assertJsonError(resps[0], 413, "body_too_large")

    def test_body_of_a_get_is_read_and_ignored(self):
        # Its bytes are the body, not the next request.
        d = self.berthd()
        body = acquire_bytes("in-a-body")
        data = (b"GET /v1/health HTTP/1.1\r\n" + HOST_HDR
                + b"Content-Length: %d\r\n\r\n" % len(body) + body
                + request_bytes("GET", "/v1/services/none"))
        resps, rest, how = exchange(d, data)
        self.assertEqual([x.status for x in resps], [200, 404], resps)
        self.assertEqual(json.loads(resps[1].body)["error"]["code"],
                         "not_found")
        self.assertEqual((rest, how), (b"", "eof"))
        self.assertEqual(lease_status(d, "in-a-body"), 404)


@tcp_only
class VersionsAndKeepAlive(HttpCase):
    def test_http10_closes_after_the_answer(self):
        d = self.berthd()
        body = b'{"name":"ten-1"}'
        data = (b"GET /v1/health HTTP/1.0\r\n\r\n"
                + b"POST /v1/services HTTP/1.0\r\n"
                + b"Content-Type: application/json\r\n"
                + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        resps, rest, how = exchange(d, data)
        self.assertEqual([x.status for x in resps], [200], resps)
        self.assertEqual(json.loads(resps[0].body), {"status": "ok"})
        self.assertBerthHeaders(resps[0])
        self.assertEqual((rest, how), (b"", "eof"))
        self.assertEqual(lease_status(d, "ten-1"), 404, "a request after an "
                         "HTTP/1.0 one without keep-alive was carried out")

    def test_http10_keep_alive(self):
        d = self.berthd()
        s = connect(d)
        self.addCleanup(s.close)
        s.sendall(b"GET /v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resps, rest = read_answers(s, 1)
        self.assertEqual(resps[0].status, 200, resps)
        self.assertEqual(resps[0].headers.get("connection", "").lower(),
                         "keep-alive", resps[0].headers)
        self.assertEqual(rest, b"")
        s.sendall(b"GET /v1/services/none HTTP/1.0\r\n\r\n")
        resps, rest = read_answers(s, 1)
        self.assertJsonError(resps[0], 404, "not_found")
        buf, how = read_until_closed(s, WAIT)
        self.assertEqual((rest + buf, how), (b"", "eof"))

    def test_http11_keeps_the_connection_by_default(self):
        d = self.berthd()
        s = connect(d)
        self.addCleanup(s.close)
        for i in range(3):
            s.sendall(request_bytes("GET", "/v1/health", close=False))
            resps, rest = read_answers(s, 1)
            self.assertEqual(resps[0].status, 200, "request %d: %r"
                             % (i, resps))
            self.assertNotEqual(resps[0].headers.get("connection"), "close")
            self.assertEqual(rest, b"")

    def test_http11_connection_close(self):
        d = self.berthd()
        data = (request_bytes("GET", "/v1/health", close=True)
                + acquire_bytes("after-close"))
        resps, rest, how = exchange(d, data)
        self.assertEqual([x.status for x in resps], [200], resps)
        self.assertEqual(resps[0].headers.get("connection"), "close")
        self.assertEqual((rest, how), (b"", "eof"))
        self.assertEqual(lease_status(d, "after-close"), 404, "a request "
                         "after Connection: close was carried out")

    def test_http2_is_505(self):
        d = self.berthd()
        self.assertRefused(d, b"GET /v1/health HTTP/2.0\r\n" + HOST_HDR
                           + b"\r\n", 505, "http_version_not_supported", "v2")
        # An HTTP/2 client's preface.
        self.assertRefused(d, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505,
                           "http_version_not_supported", "v2-preface")

    def test_higher_minor_version_is_answered_as_1_1(self):
        # RFC 9110 2.5: HTTP/1.2 is answered as the highest 1.x we speak.
        d = self.berthd()
        resps, rest, how = exchange(
            d, b"GET /v1/health HTTP/1.2\r\n" + HOST_HDR + b"\r\n"
            + request_bytes("GET", "/v1/health"), timeout=10)
        self.assertEqual([r.status for r in resps], [200, 200], resps)

    def test_unknown_method_is_501(self):
        d = self.berthd()
        self.assertRefused(d, b"FOO /v1/health HTTP/1.1\r\n" + HOST_HDR
                           + b"\r\n", 501, "not_implemented", "foo")

    def test_space_before_colon_is_400(self):
        d = self.berthd()
        self.assertRefused(d, b"GET /v1/health HTTP/1.1\r\nHost : x\r\n\r\n",
                           400, "bad_request", "colon")

    def test_folded_header_line_is_400(self):
        d = self.berthd()
        self.assertRefused(d, b"GET /v1/health HTTP/1.1\r\n" + HOST_HDR
                           + b"X-Folded: one\r\n two\r\n\r\n",
                           400, "bad_request", "folded")

    def test_after_any_carrier_error_nothing_more_is_carried_out(self):
        # Every refusal of the carrier itself (docs/api.md, the second
        # table of "Errors"), each with an acquire pipelined behind it.
        d = self.berthd()
        post = (b"POST /v1/services HTTP/1.1\r\n" + HOST_HDR
                + b"Content-Type: application/json\r\n")
        cases = [
            (b"GET  /v1/health HTTP/1.1\r\n" + HOST_HDR + b"\r\n",
             400, "bad_request"),
            (b"GET /v1/he alth HTTP/1.1\r\n" + HOST_HDR + b"\r\n",
             400, "bad_request"),
            (b"GET /v1/health HTTP/1.1\r\nHost\t: x\r\n\r\n",
             400, "bad_request"),
            (b"GET /v1/health HTTP/1.1\r\n" + HOST_HDR
             + b"X-A: a\r\n\tb\r\n\r\n", 400, "bad_request"),
            (b"GET /v1/health HTTP/1.1\r\n" + HOST_HDR
             + b"X-A: a\x01b\r\n\r\n", 400, "bad_request"),
            (post + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
             400, "bad_request"),
            (post + b"Content-Length: x2\r\n\r\n{}", 400, "bad_request"),
            (post + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n"
             + b"\r\n{}", 400, "bad_request"),
            (b"GET /v1/health HTTP/1.1\r\n" + HOST_HDR + b"X-Big: "
             + b"b" * 9000 + b"\r\n\r\n", 400, "headers_too_large"),
            (post + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
             411, "length_required"),
            (post + b"Content-Length: 10000000\r\n\r\n", 413,
             "body_too_large"),
            (post + b"Expect: 100-continuex\r\nContent-Length: 2\r\n\r\n{}",
             417, "expectation_failed"),
            (b"BREW /v1/health HTTP/1.1\r\n" + HOST_HDR + b"\r\n", 501,
             "not_implemented"),
            (b"GET /v1/health HTTP/3.0\r\n" + HOST_HDR + b"\r\n", 505,
             "http_version_not_supported"),
            (b"GET /v1/health HTTP/0.9\r\n" + HOST_HDR + b"\r\n", 505,
             "http_version_not_supported"),
        ]
        for i, (bad, status, code) in enumerate(cases):
            with self.subTest(request=bad[:50]):
                self.assertRefused(d, bad, status, code, "smuggled-%d" % i)
        self.assertEqual(d.get("/v1/services").json["services"], [])
        self.assertEqual(d.get("/v1/health").status, 200)


@tcp_only
class Headers(HttpCase):
    def test_every_answer_has_date_length_and_berth_headers(self):
        d = self.berthd()
        r = d.acquire("held")
        self.assertEqual(r.status, 201, r)
        token = r.json["token"]
        auth = "Authorization: Bearer " + token
        ok = [
            (request_bytes("GET", "/v1/health", close=False), 200),
            (acquire_bytes("fresh"), 201),
            (request_bytes("GET", "/v1/services/held", close=False), 200),
            (request_bytes("GET", "/v1/services", close=False), 200),
            (request_bytes("GET", "/v1/status", close=False), 200),
            (request_bytes("GET", "/metrics", close=False), 200),
            (request_bytes("GET", "/", close=False), 200),
            (request_bytes("GET", "/v1/services/none", close=False), 404),
            (request_bytes("GET", "/v1/services/Bad", close=False), 400),
            (request_bytes("POST", "/v1/health", body=b"{}", close=False),
             405),
            (acquire_bytes("held"), 409),
            (request_bytes("POST", "/v1/services", body=b"{}", close=False,
                           ctype=b"text/plain"), 415),
            (request_bytes("DELETE", "/v1/services/fresh", [auth],
                           close=False), 403),
            (request_bytes("DELETE", "/v1/services/held", [auth],
                           close=False), 204),
            (request_bytes("GET", "/v1/health",
                           host=b"Host: evil.example\r\n"), 403),
        ]
        resps, rest, how = exchange(d, b"".join(x for x, _ in ok))
        self.assertEqual([x.status for x in resps], [s for _, s in ok],
                         resps)
        self.assertEqual((rest, how), (b"", "eof"))
        for x in resps:
            self.assertBerthHeaders(x)
        # The carrier's own refusals too.
        for bad in [b"GET /v1/health HTTP/3.0\r\n\r\n",
                    b"FOO / HTTP/1.1\r\n\r\n",
                    b"GET /v1/health HTTP/1.1\r\nHost : x\r\n\r\n",
                    b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
                    b"POST /v1/services HTTP/1.1\r\nTransfer-Encoding: "
                    b"chunked\r\n\r\n0\r\n\r\n",
                    b"POST /v1/services HTTP/1.1\r\nContent-Length: "
                    b"1000000\r\n\r\n",
                    b"GET / HTTP/1.1\r\nExpect: nothing\r\n\r\n"]:
            resps, rest, how = exchange(d, bad)
            self.assertEqual(len(resps), 1, (bad[:40], resps))
            self.assertGreaterEqual(resps[0].status, 400)
            self.assertBerthHeaders(resps[0], repr(bad[:40]))
            self.assertEqual(resps[0].headers.get("content-length"),
                             str(len(resps[0].body)))

    def test_head_has_the_length_of_get_and_no_body(self):
        d = self.berthd()
        self.assertEqual(d.acquire("headed").status, 201)
        for path, status in [("/v1/health", 200), ("/v1/services", 200),
                             ("/v1/services/headed", 200),
                             ("/v1/services/none", 404), ("/nowhere", 404)]:
            with self.subTest(path=path):
                # HEAD then GET on one connection: a body after the HEAD's
                # head would be read as the start of the GET's answer.
                s = connect(d)
                try:
                    s.sendall(request_bytes("HEAD", path, close=False)
                              + request_bytes("GET", path, close=True))
                    buf, how = read_until_closed(s, WAIT)
                finally:
                    s.close()
                self.assertEqual(how, "eof")
                hstatus, hheaders, rest = split_head(buf)
                self.assertTrue(rest.startswith(b"HTTP/1.1 "), "HEAD %s: "
                                "bytes after its head: %r" % (path, rest[:80]))
                gets, left = parse_responses(rest)
                self.assertEqual(len(gets), 1, gets)
                self.assertEqual(left, b"")
                get = gets[0]
                self.assertEqual((hstatus, get.status), (status, status))
                self.assertEqual(hheaders.get("content-length"),
                                 str(len(get.body)), "HEAD %s" % path)
                self.assertEqual(hheaders.get("content-type"),
                                 get.headers.get("content-type"))
                self.assertBerthHeaders(Raw(hstatus, hheaders, b""),
                                        "HEAD " + path)

    def test_204_has_no_length_and_no_body(self):
        d = self.berthd()
        r = d.acquire("gone")
        self.assertEqual(r.status, 201, r)
        s = connect(d)
        self.addCleanup(s.close)
        s.sendall(request_bytes("DELETE", "/v1/services/gone",
                                ["Authorization: Bearer " + r.json["token"]],
                                close=False)
                  + request_bytes("GET", "/v1/services/gone", close=True))
        buf, how = read_until_closed(s, WAIT)
        status, headers, rest = split_head(buf)
        self.assertEqual(status, 204, buf[:200])
        self.assertNotIn("content-length", headers)
        self.assertTrue(rest.startswith(b"HTTP/1.1 404 "), rest[:80])


@tcp_only
class HeadSize(HttpCase):
    LIMIT = 2048

    def head_of(self, size, path="/v1/health", close=True):
        """A GET head of exactly size bytes (padded with a header)."""
        base = (b"GET " + path.encode() + b" HTTP/1.1\r\n" + HOST_HDR
                + (b"Connection: close\r\n" if close else b"") + b"X-Pad: ")
        head = base + b"p" * (size - len(base) - 4) + b"\r\n\r\n"
        self.assertEqual(len(head), size)
        return head

    def test_head_of_exactly_the_limit_is_taken(self):
        d = self.berthd("--max-header-size", str(self.LIMIT))
        resps, rest, how = exchange(d, self.head_of(self.LIMIT))
        self.assertEqual([x.status for x in resps], [200], resps)
        self.assertEqual(json.loads(resps[0].body), {"status": "ok"})
        self.assertEqual((rest, how), (b"", "eof"))
        # Two such heads in one write: the limit is per head.
        resps, rest, how = exchange(
            d, self.head_of(self.LIMIT, close=False)
            + self.head_of(self.LIMIT, "/v1/services/none"))
        self.assertEqual([x.status for x in resps], [200, 404], resps)

    def test_one_byte_over_the_limit_is_400_headers_too_large(self):
        d = self.berthd("--max-header-size", str(self.LIMIT))
        self.assertRefused(d, self.head_of(self.LIMIT + 1), 400,
                           "headers_too_large", "over-1")
        # Also behind a request that is answered.
        resps, rest, how = exchange(
            d, request_bytes("GET", "/v1/health", close=False)
            + self.head_of(self.LIMIT + 1) + acquire_bytes("over-2"))
        self.assertEqual([x.status for x in resps], [200, 400], resps)
        self.assertEqual(json.loads(resps[1].body)["error"]["code"],
                         "headers_too_large")
        self.assertEqual((rest, how), (b"", "eof"))
        self.assertEqual(lease_status(d, "over-2"), 404)

    def test_head_in_one_byte_writes(self):
        d = self.berthd("--max-header-size", str(self.LIMIT))
        data = acquire_bytes("dribbled", close=True)   # about 150 bytes
        s = connect(d)
        self.addCleanup(s.close)
        for i in range(len(data)):
            s.send(data[i:i + 1])
            time.sleep(0.005)
        resps, rest = read_answers(s, 1)
        self.assertEqual(resps[0].status, 201, resps)
        self.assertEqual(json.loads(resps[0].body)["name"], "dribbled")
        buf, how = read_until_closed(s, WAIT)
        self.assertEqual((rest + buf, how), (b"", "eof"))
        self.assertEqual(lease_status(d, "dribbled"), 200)


@tcp_only
class Orphans(HttpCase):
    N = 50

    def assertStillWell(self, d):
        self.assertIsNone(d.proc.poll(), "berthd exited")
        r = d.get("/v1/health", timeout=WAIT)
        self.assertEqual((r.status, r.json), (200, {"status": "ok"}), r)
        r = d.get("/v1/status", timeout=WAIT)
        self.assertEqual(r.status, 200, r)
        wait_for(lambda: d.get("/v1/status").json["waiters"] == 0, 10,
                 "no parked request left")
        # Every connection but the one asking is gone.
        wait_for(lambda: metric(d, "berth_connections") <= 1, 10,
                 "the clients' connections to be closed")
        self.assertEqual(LOG_PROBLEM.findall(d.logtext()), [],
                         "errors or warnings in berthd's log")

    def test_parked_clients_that_leave(self):
        d = self.berthd()
        self.assertIsNone(d.proc.poll())
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for i in range(self.N):
            s = connect(d)
            socks.append(s)
            s.sendall(request_bytes("GET", "/v1/services/orphan?wait=30",
                                    close=False))
        wait_for(lambda: d.get("/v1/status").json["waiters"] == self.N, 10,
                 "%d parked lookups" % self.N)
        # Half leave with a FIN (berthd cannot tell it from a half-close),
        # half with a reset.
        for i, s in enumerate(socks):
            if i % 2:
                close_abruptly(s)
            else:
                s.close()
        r = d.acquire("orphan")
        self.assertEqual(r.status, 201, r)
        self.assertStillWell(d)
        self.assertEqual(lease_status(d, "orphan"), 200)

    def test_pipelined_behind_a_parked_client_that_leaves(self):
        d = self.berthd()
        self.assertIsNone(d.proc.poll())
        later = [request_bytes("GET", p, close=False)
                 for p in ("/v1/health", "/v1/services/orphan",
                           "/v1/status", "/v1/services/none", "/metrics")]
        # Two such clients: one leaves with a FIN, one with a reset.
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for i in range(2):
            s = connect(d)
            socks.append(s)
            s.sendall(request_bytes("GET", "/v1/services/orphan?wait=30",
                                    close=False)
                      + b"".join(later[j % len(later)]
                                 for j in range(self.N)))
        wait_for(lambda: d.get("/v1/status").json["waiters"] == 2, 10,
                 "the parked lookups")
        socks[0].close()
        close_abruptly(socks[1])
        r = d.acquire("orphan")
        self.assertEqual(r.status, 201, r)
        self.assertStillWell(d)


@tcp_only
class AbsoluteForm(HttpCase):
    def get_absolute(self, d, target):
        resps, rest, how = exchange(
            d, b"GET " + target + b" HTTP/1.1\r\n" + HOST_HDR
            + b"Connection: close\r\n\r\n")
        self.assertEqual(len(resps), 1, resps)
        self.assertEqual((rest, how), (b"", "eof"))
        return resps[0]

    def test_loopback_absolute_form(self):
        d = self.berthd()
        r = self.get_absolute(d, b"http://127.0.0.1/v1/health")
        self.assertEqual((r.status, json.loads(r.body)),
                         (200, {"status": "ok"}), r)
        r = self.get_absolute(d, b"http://127.0.0.1:%d/v1/services/none"
                              % d.port)
        self.assertJsonError(r, 404, "not_found")

    def test_foreign_absolute_form_403(self):
        d = self.berthd()
        r = self.get_absolute(d, b"http://evil.example/v1/health")
        self.assertJsonError(r, 403, "forbidden_host")
        self.assertBerthHeaders(r)

    def test_ipv6_loopback_absolute_form(self):
        d = self.berthd()
        r = self.get_absolute(d, b"http://[::1]:62893/v1/health")
        self.assertEqual((r.status, json.loads(r.body)),
                         (200, {"status": "ok"}), r)


class UnixSocket(HttpCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="berth-http-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sock = os.path.join(self.dir, "berth.sock")

    def unix_exchange(self, data):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(WAIT)
            s.connect(self.sock)
            s.sendall(data)
            buf, how = read_until_closed(s, WAIT)
        finally:
            s.close()
        resps, rest = parse_responses(buf)
        self.assertEqual((rest, how), (b"", "eof"))
        return resps

    def test_health_over_the_unix_socket(self):
        self.berthd("--listen", "127.0.0.1:0", "--listen",
                    "unix:" + self.sock)
        resps = self.unix_exchange(request_bytes("GET", "/v1/health"))
        self.assertEqual([x.status for x in resps], [200], resps)
        self.assertEqual(json.loads(resps[0].body), {"status": "ok"})
        self.assertBerthHeaders(resps[0])

    def test_no_host_check_over_the_unix_socket(self):
        # docs/api.md, "Browser safety": requests over the unix socket are
        # not checked against the Host allow-list.
        self.berthd("--listen", "127.0.0.1:0", "--listen",
                    "unix:" + self.sock)
        resps = self.unix_exchange(
            request_bytes("GET", "/v1/health", close=False,
                          host=b"Host: evil.example\r\n")
            + b"GET http://evil.example/v1/health HTTP/1.1\r\n"
            + b"Host: evil.example\r\nConnection: close\r\n\r\n")
        self.assertEqual([x.status for x in resps], [200, 200], resps)


if __name__ == "__main__":
    main()
