#!/usr/bin/env python3
"""test_client_go: clients/go (the Go client, module berth.local/berth)
against a real berthd: every call and its options, the errors a user can
cause, addresses (BERTH_ADDR, explicit, unix:, [::1]), Watch, the held
lease (background renewal, release on SIGTERM/SIGINT and on a normal
return, owner death on kill -9, reclaim after a lapse, not taken back
after a revoke, NoSignals), `berth run --fd` adoption, and go vet/gofmt.

The calls run in tests/e2e/goclient, a small Go program built once per
run into a temporary directory (GOCACHE too, offline: GOPROXY=off), so
nothing is written into the source tree. Skipped, with one line saying
why, without go >= 1.19 on PATH.

Run: BERTHD=.../src/berthd BERTH_CLI=.../clients/cli/berth \\
     PYTHONPATH=tests/e2e python3 tests/e2e/test_client_go.py -v
"""

import errno
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from berthtest import BerthTestCase, clean_env, main, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "goclient")
PKG = os.path.normpath(os.path.join(HERE, "..", "..", "clients", "go"))
BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
GO = shutil.which("go")
TIMEOUT = 30


def go_version():
    """(major, minor) of the go on PATH, (0, 0) without one."""
    if not GO:
        return (0, 0)
    r = subprocess.run([GO, "version"], capture_output=True, text=True)
    m = re.search(r"\bgo(\d+)\.(\d+)", r.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


GO_VERSION = go_version()
SKIP = None
if not GO:
    SKIP = "go is not on PATH: clients/go not tested"
elif GO_VERSION < (1, 19):
    SKIP = "%s is go %d.%d, older than 1.19: clients/go not tested" % (
        (GO,) + GO_VERSION)
if SKIP:
    print("SKIP: " + SKIP)


def go_env(tmp):
    """The environment of go commands: offline, their cache in tmp, no
    writes into the source tree (make distcheck's is read-only)."""
    return clean_env(GOFLAGS="-mod=mod -buildvcs=false", GOPROXY="off",
                     GOCACHE=os.path.join(tmp, "cache"),
                     GOPATH=os.path.join(tmp, "gopath"), GOWORK="off",
                     GO111MODULE="on", GOTOOLCHAIN="local")


class Proc:
    """A running driver: its lines read by a thread, so that a test waits
    for one with a timeout instead of hanging."""

    def __init__(self, argv, env, sigint=signal.SIG_DFL):
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  preexec_fn=lambda: signal.signal(
                                      signal.SIGINT, sigint))
        self.pid = self.p.pid
        self.lines = queue.Queue()
        self.err = []
        self.readers = [threading.Thread(target=self._read, args=(f, put))
                        for f, put in ((self.p.stdout, self.lines.put),
                                       (self.p.stderr, self.err.append))]
        for t in self.readers:
            t.start()

    @staticmethod
    def _read(f, put):
        for line in f:
            put(line)
        put(None)

    def stderr(self):
        return "".join(x for x in self.err if x)

    def line(self, timeout=TIMEOUT):
        """The next line of stdout (without its newline); fails on EOF."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no line from the driver in %d s; stderr: %s"
                                 % (timeout, self.stderr()))
        if line is None:
            raise AssertionError("the driver ended (%r); stderr: %s"
                                 % (self.p.wait(TIMEOUT), self.stderr()))
        return line.rstrip("\n")

    def json(self, timeout=TIMEOUT):
        return json.loads(self.line(timeout))

    def send(self, obj):
        self.p.stdin.write(json.dumps(obj) + "\n")
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def wait(self, timeout=TIMEOUT):
        rc = self.p.wait(timeout)
        for t in self.readers:
            t.join(TIMEOUT)
        return rc

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f and not f.closed:
                f.close()


@unittest.skipIf(SKIP, SKIP)
class GoClient(BerthTestCase):

    @classmethod
    def setUpClass(cls):
        cls.gotmp = tempfile.mkdtemp(prefix="berth-go-")
        cls.exe = os.path.join(cls.gotmp, "goclient")
        r = subprocess.run([GO, "build", "-o", cls.exe, "."], cwd=DRIVER,
                           env=go_env(cls.gotmp), capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            shutil.rmtree(cls.gotmp, ignore_errors=True)
            raise AssertionError("go build in %s: %s" % (DRIVER, r.stderr))
        # go vet takes seconds (facts of the standard library, for a
        # cold cache): it runs while the other tests do; test_lint reads it.
        cls.vet = []
        cls.vetting = threading.Thread(target=cls._vet)
        cls.vetting.start()

    @classmethod
    def _vet(cls):
        for d in (PKG, DRIVER):
            r = subprocess.run([GO, "vet", "./..."], cwd=d,
                               env=go_env(cls.gotmp), capture_output=True,
                               text=True, timeout=300)
            cls.vet.append((d, r.returncode, r.stdout + r.stderr))

    @classmethod
    def tearDownClass(cls):
        cls.vetting.join()
        shutil.rmtree(cls.gotmp, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.tmp = self.scratch_dir("berth-go-")

    # ---- running the driver ----------------------------------------------

    def env(self, addr, **more):
        """A program's environment: BERTH_ADDR=addr (None: unset)."""
        if addr is not None:
            more["BERTH_ADDR"] = addr
        return clean_env(**more)

    def start(self, *args, addr=None, argv=(), env=None, **kw):
        """The driver with args, in its own process."""
        p = Proc(list(argv) + [self.exe] + [str(a) for a in args],
                 env or self.env(addr if addr is not None else self.d.addr),
                 **kw)
        self.addCleanup(p.stop)
        return p

    def session(self, addr=None):
        """A driver making calls one by one (Session.call)."""
        return Session(self, self.start("session", addr=addr))

    def call(self, method, addr=None, env_addr=None, **req):
        """One call in a process of its own; $BERTH_ADDR is env_addr
        (default: the test's berthd), addr an explicit address."""
        if addr is not None:
            req["addr"] = addr
        r = subprocess.run([self.exe, "call", method, json.dumps(req)],
                           env=self.env(env_addr or self.d.addr),
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def lease(self, name):
        r = self.d.get("/v1/services/" + name)
        return r.json if r.status == 200 else None

    def gone(self, name):
        return self.d.get("/v1/services/" + name).status == 404


    # ---- the calls -------------------------------------------------------

    def test_calls(self):
        self.d = self.berthd()
        s = self.session()
        pid = os.getpid()
        a = s.ok("Acquire", "api", TTL=60, Meta={"v": "1"}, Proto="tcp",
                 NoHold=True)
        lease = a["lease"]
        self.assertRegex(lease["token"], r"^[0-9a-f]{32}$")
        self.assertEqual((lease["name"], lease["ttl"], lease["meta"],
                          lease["host"], lease["proto"], lease["pid"]),
                         ("api", 60, {"v": "1"}, "127.0.0.1", "tcp", 0))
        self.assertEqual((a["Addr"], a["held"]),
                         ("127.0.0.1:%d" % lease["port"], False))
        self.assertEqual(self.lease("api")["port"], lease["port"])
        self.assertEqual(self.lease("api")["pid"], None)
        self.assertIsNotNone(lease["expires_at"])
        # The same name with its token: the same lease.
        again = s.ok("Acquire", "api", Token=lease["token"], TTL=60,
                     NoHold=True)["lease"]
        self.assertEqual((again["port"], again["token"]),
                         (lease["port"], lease["token"]))
        # Pid, Host, Proto("both") and no TTL: no expiry.
        b = s.ok("Acquire", "db", Pid=pid, Host="localhost", Proto="both",
                 NoHold=True)
        self.assertEqual((b["lease"]["pid"], b["lease"]["host"],
                          b["lease"]["ttl"], b["lease"]["expires_at"],
                          b["lease"]["proto"], b["Addr"]),
                         (pid, "localhost", 0, None, "both",
                          "localhost:%d" % b["lease"]["port"]))
        # An exact port: a free one berthd can hand out.
        want = self.unused_port(shared=True).port
        c = s.ok("Acquire", "exact", Port=want, NoHold=True)["lease"]
        self.assertEqual(c["port"], want)
        # Lookup: the lease without its token.
        got = s.ok("Lookup", "api")
        self.assertEqual((got["lease"]["port"], got["lease"]["meta"],
                          "token" in got["lease"], got["held"]),
                         (lease["port"], {"v": "1"}, False, False))
        self.assertEqual(got["lease"]["uid"], os.getuid())
        # List: every lease by name, and the index berthd says.
        snap = s.ok("List")
        self.assertEqual([x["name"] for x in snap["services"]],
                         ["api", "db", "exact"])
        self.assertEqual((snap["index"], snap["stale"]),
                         (self.d.get("/v1/services").index, False))
        # Renew, with a new TTL.
        r = s.ok("Renew", "api", token=lease["token"], TTL=90)
        self.assertEqual(r["lease"]["ttl"], 90)
        self.assertEqual(self.lease("api")["ttl"], 90)
        r = s.ok("Renew", "api", token=lease["token"])
        self.assertEqual(r["lease"]["ttl"], 90)
        # Release with the token, Revoke without.
        self.assertIsNone(s.ok("Release", "api", token=lease["token"]))
        self.assertTrue(self.gone("api"))
        self.assertIsNone(s.ok("Revoke", "db"))
        self.assertTrue(self.gone("db"))
        # Lease.Release of a NoHold lease uses its token; a Lookup's has none.
        s.ok("Lookup", "exact")
        self.assertIn("has no token", s.err("Lease.Release", "exact")["text"])
        s.ok("Acquire", "exact", Token=c["token"], NoHold=True)
        self.assertIsNone(s.ok("Lease.Release", "exact"))
        self.assertTrue(self.gone("exact"))
        self.assertEqual(s.ok("List")["services"], [])
        # Status: berthd's /v1/status.
        st = s.ok("Status")
        self.assertEqual(st["listen"], self.d.get("/v1/status").json["listen"])
        self.assertIn("version", st)

    def test_lookup_waits(self):
        self.d = self.berthd()
        s = self.session()
        # Wait: a name registered while the lookup waits.
        t = threading.Timer(0.5, lambda: self.d.acquire("late"))
        t.start()
        self.addCleanup(t.join)
        self.assertEqual(s.ok("Lookup", "late", Wait=20)["lease"]["name"],
                         "late")
        # Ready: something must listen on the port.
        port = s.ok("Acquire", "srv", NoHold=True)["lease"]["port"]
        sock = socket.socket()
        self.addCleanup(sock.close)

        def listen():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
        t2 = threading.Timer(0.5, listen)
        t2.start()
        self.addCleanup(t2.join)
        got = s.ok("Lookup", "srv", Ready=True, Wait=20)
        self.assertEqual((got["lease"]["ready"], got["IsReady"]), (True, True))
        e = s.err("Lookup", "never", Wait=1)
        self.assertEqual((e["code"], e["status"]), ("not_found", 404))

    def test_watch(self):
        self.d = self.berthd()
        w = self.start("watch", json.dumps({"opts": {"Wait": 60}}))
        first = w.json()
        self.assertEqual(first["names"], [])
        self.assertEqual(first["index"], self.d.get("/v1/services").index)
        # The watch waits on berthd (a parked query), not by polling.
        wait_for(lambda: self.d.get("/v1/status").json["waiters"] == 1, 10,
                 "the watch to park")
        self.d.acquire("w1")
        second = w.json()
        self.assertGreater(second["index"], first["index"])
        self.assertEqual(second["names"], ["w1"])
        # Its context cancelled while a query is parked (for up to 60 s):
        # the query is abandoned and the channel closes at once.
        wait_for(lambda: self.d.get("/v1/status").json["waiters"] == 1, 10,
                 "the watch to park again")
        w.close_stdin()
        self.assertEqual(w.json(10), {"closed": True, "cancelled": True})
        self.assertEqual(w.wait(), 0, w.stderr())

    def test_watch_index(self):
        # From a given index: nothing until the list moves past it, even
        # across blocking queries that time out (Wait 1 s), then the change.
        self.d = self.berthd()
        idx = self.d.get("/v1/services").index
        w = self.start("watch", json.dumps({"addr": self.d.addr,
                                            "opts": {"Index": idx, "Wait": 1}}))
        wait_for(lambda: self.d.get("/v1/status").json["waiters"] == 1, 10,
                 "the watch to park")
        time.sleep(1.5)     # at least one query ends without a change
        self.d.acquire("w2")
        got = w.json()
        self.assertEqual(got["names"], ["w2"])
        self.assertGreater(got["index"], idx)
        w.close_stdin()
        self.assertTrue(w.json()["closed"])
        # From an index already passed: the list at once.
        w = self.start("watch", json.dumps({"opts": {"Index": idx,
                                                     "Wait": 20}}))
        self.assertEqual(w.json(10)["names"], ["w2"])
        w.close_stdin()
        self.assertTrue(w.json()["closed"])

    def test_watch_errors(self):
        # A watch ends with one Change carrying the error, then closes.
        self.d = self.berthd()
        dead = self.dead_addr()
        for addr, opts, code, status in (
                (self.d.addr, {"Cluster": True}, "cluster_disabled", 404),
                (dead, {}, "unreachable", 0),
                (self.d.addr, {"TTL": 5}, "", None)):
            w = self.start("watch", json.dumps({"opts": opts}), addr=addr)
            e = w.json()["error"]
            self.assertEqual((e["Code"], e.get("status")), (code, status), e)
            self.assertEqual(w.json(), {"closed": True, "cancelled": False})
            self.assertEqual(w.wait(), 0, w.stderr())
        self.assertEqual(e["text"], "berth: Watch does not take the TTL option")

    # ---- errors ----------------------------------------------------------

    def api_error(self, s, addr, method, name=None, **kw):
        """(status, code) of the *berth.Error a call gets, checking the
        rest of it: a message, the address, Code(err), Error()'s text."""
        e = s.err(method, name, **kw)
        self.assertTrue(e["message"], e)
        self.assertEqual(e["addr"], addr, e)
        self.assertEqual(e["Code"], e["code"], e)
        self.assertEqual(e["text"], "%s (%s)" % (e["message"], e["code"]))
        return e["status"], e["code"]

    def test_errors(self):
        self.d = self.berthd()
        s = self.session()

        def err(method, name=None, **kw):
            return self.api_error(s, self.d.addr, method, name, **kw)

        a = s.ok("Acquire", "api", NoHold=True)["lease"]
        z = "0" * 32
        self.assertEqual(err("Acquire", "Bad Name"), (400, "invalid_name"))
        self.assertEqual(err("Lookup", "Bad Name"), (400, "invalid_name"))
        self.assertEqual(err("Acquire", "api", NoHold=True), (409, "name_taken"))
        self.assertEqual(err("Acquire", "api"), (409, "name_taken"))
        self.assertEqual(err("Acquire", "api", Token=z, NoHold=True),
                         (409, "name_taken"))
        self.assertEqual(err("Acquire", "x", Proto="sctp"), (400, "invalid_field"))
        self.assertEqual(err("Acquire", "x", TTL=-1), (400, "invalid_field"))
        self.assertEqual(err("Acquire", "x", Meta={"": "v"}),
                         (400, "invalid_field"))
        self.assertEqual(err("Acquire", "x", Port=a["port"]),
                         (409, "port_unavailable"))
        self.assertEqual(err("Acquire", "x", Publish=True),
                         (400, "cluster_disabled"))
        self.assertEqual(err("Acquire", "x", Pid=2), (400, "pid_not_visible"))
        self.assertEqual(err("Acquire", "x", Pid=2, NoHold=True),
                         (400, "pid_not_visible"))
        self.assertEqual(err("Acquire", "x", Token=z), (403, "bad_token"))
        self.assertEqual(err("Lookup", "nope"), (404, "not_found"))
        self.assertEqual(err("Lookup", "api", Wait=1000), (400, "invalid_field"))
        self.assertEqual(err("LookupCluster", "api"), (404, "cluster_disabled"))
        self.assertEqual(err("LookupCluster", "api", Wait=1),
                         (404, "cluster_disabled"))
        self.assertEqual(err("List", Cluster=True), (404, "cluster_disabled"))
        self.assertEqual(err("Renew", "api", token=z), (403, "bad_token"))
        self.assertEqual(err("Renew", "api", token=z, TTL=5), (403, "bad_token"))
        self.assertEqual(err("Renew", "nope", token=z), (404, "not_found"))
        self.assertEqual(err("Renew", "api", token=a["token"], TTL=-5),
                         (400, "invalid_field"))
        self.assertEqual(err("Release", "api", token="f" * 32), (403, "bad_token"))
        self.assertEqual(err("Release", "nope", token="f" * 32),
                         (404, "not_found"))
        self.assertEqual(err("Revoke", "nope"), (404, "not_found"))
        self.assertEqual(self.lease("api")["port"], a["port"])
        self.assertEqual([x["name"] for x in s.ok("List")["services"]],
                         ["api"])

    def test_limits(self):
        # --max-leases reached: lease_limit, held or not.
        self.d = self.berthd("--max-leases", "2")
        s = self.session()
        s.ok("Acquire", "a", NoHold=True)
        s.ok("Acquire", "b", TTL=30)
        for kw in ({"NoHold": True}, {}):
            self.assertEqual(self.api_error(s, self.d.addr, "Acquire", "c",
                                            **kw), (503, "lease_limit"))
        # No port left in a pool of one.
        p = self.unused_port(shared=True).port
        d2 = self.berthd("--range", "%d-%d" % (p, p))
        s2 = self.session(addr=d2.addr)
        self.assertEqual(s2.ok("Acquire", "one", NoHold=True)["lease"]["port"],
                         p)
        self.assertEqual(self.api_error(s2, d2.addr, "Acquire", "two",
                                        NoHold=True), (503, "pool_exhausted"))

    def test_wrong_options(self):
        # An option a call does not take is an error naming both, before
        # any request (the address is dead: nothing is asked).
        self.d = self.berthd()
        s = self.session(addr=self.dead_addr())
        for method, opt, val in (("Acquire", "Wait", 1),
                                 ("Acquire", "Ready", True),
                                 ("Acquire", "Cluster", True),
                                 ("Acquire", "Index", 1),
                                 ("Lookup", "TTL", 5),
                                 ("Lookup", "Cluster", True),
                                 ("Lookup", "NoHold", True),
                                 ("LookupCluster", "Ready", True),
                                 ("List", "Wait", 1),
                                 ("List", "Index", 3),
                                 ("Renew", "Port", 80),
                                 ("Renew", "Wait", 1)):
            e = s.err(method, "x", token="0" * 32, **{opt: val})
            self.assertEqual(e, {"text": "berth: %s does not take the %s "
                                 "option" % (method, opt), "Code": ""})

    def test_unreachable(self):
        self.d = self.berthd()
        addr = self.dead_addr()
        s = self.session(addr=addr)
        for method in ("List", "Lookup", "Acquire", "Renew", "Release",
                       "Revoke", "Status"):
            e = s.err(method, "x", token="0" * 32)
            self.assertEqual(e, {
                "code": "unreachable", "Code": "unreachable", "status": 0,
                "addr": addr, "errno": errno.ECONNREFUSED,
                "message": "cannot reach berthd at %s: connection refused "
                           "(is berthd running?)" % addr,
                "text": "cannot reach berthd at %s: connection refused "
                        "(is berthd running?)" % addr}, method)
        sock = os.path.join(self.tmp, "none.sock")
        e = self.call("Lookup", addr="unix:" + sock, name="x")["error"]
        self.assertEqual((e["text"], e["code"], e["addr"], e["errno"]),
                         ("cannot reach berthd at unix:%s: no such file or "
                          "directory (is berthd running?)" % sock,
                          "unreachable", "unix:" + sock, errno.ENOENT))

    def test_bad_addresses(self):
        self.d = self.berthd()
        for bad in ("nope", "host:", ":80", "127.0.0.1:99999",
                    "127.0.0.1:0", "127.0.0.1:x", "::1:80", "[::1]"):
            e = self.call("NewClient", addr=bad)["error"]
            self.assertEqual(e, {"text": "berth: bad address %s: want "
                                 "HOST:PORT, [V6]:PORT or unix:/path"
                                 % json.dumps(bad), "Code": ""}, bad)
        e = self.call("NewClient", addr="unix:")["error"]
        self.assertEqual(e["text"], 'berth: bad address "unix:": no socket path')
        # A bad $BERTH_ADDR: the package-level calls say so.
        e = self.call("List", env_addr="nope")["error"]
        self.assertEqual(e["text"], 'berth: bad address "nope": want '
                         'HOST:PORT, [V6]:PORT or unix:/path')
        w = self.start("watch", "{}", addr="nope")
        self.assertIn("bad address", w.json()["error"]["text"])
        self.assertTrue(w.json()["closed"])

    def test_addresses(self):
        sock = os.path.join(self.tmp, "b.sock")
        self.d = self.berthd("--listen", "127.0.0.1:0,unix:" + sock)
        tcp, unix = self.d.addr, "unix:" + sock
        # unix:/path, explicit.
        s = self.session(addr=tcp)
        lease = s.ok("Acquire", "viaunix", addr=unix, NoHold=True)["lease"]
        self.assertEqual(s.ok("Lookup", "viaunix", addr=unix)["lease"]["port"],
                         lease["port"])
        self.assertEqual(s.ok("Status", addr=unix)["listen"],
                         self.d.get("/v1/status").json["listen"])
        s.ok("Release", "viaunix", addr=unix, token=lease["token"])
        # $BERTH_ADDR; an explicit address wins over it; no address and no
        # $BERTH_ADDR: the default.
        self.assertEqual(self.call("NewClient", addr="", env_addr=unix),
                         {"result": unix})
        self.assertEqual(self.call("NewClient", addr=tcp, env_addr=unix),
                         {"result": tcp})
        self.assertEqual(self.call("DefaultClient", env_addr=unix),
                         {"result": unix})
        r = subprocess.run([self.exe, "call", "DefaultClient", "{}"],
                           env=self.env(None), capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(json.loads(r.stdout), {"result": "127.0.0.1:62893"})
        # The package-level calls go to $BERTH_ADDR, also when it changes.
        s = self.session(addr=unix)
        held = s.ok("Acquire", "mod", NoHold=True)["lease"]
        self.assertEqual(s.ok("Lookup", "mod")["lease"]["port"], held["port"])
        self.assertEqual([x["name"] for x in s.ok("List")["services"]], ["mod"])
        s.ok("Setenv", "BERTH_ADDR", value=self.dead_addr())
        self.assertEqual(s.err("List")["code"], "unreachable")
        s.ok("Setenv", "BERTH_ADDR", value=tcp)
        self.assertEqual(s.ok("DefaultClient"), tcp)
        s.ok("Release", "mod", token=held["token"])
        # [V6]:PORT, where the host has IPv6 loopback.
        try:
            d6 = self.berthd("--listen", "[::1]:0")
        except Exception as e:
            print("skipped the [::1] address: %s" % str(e).splitlines()[0])
            return
        self.assertTrue(d6.addr.startswith("[::1]:"))
        s6 = self.session(addr=d6.addr)
        got = s6.ok("Acquire", "six", NoHold=True)
        self.assertEqual(got["lease"]["name"], "six")
        self.assertEqual([x["name"] for x in s6.ok("List")["services"]], ["six"])
        e = s6.err("Lookup", "nope")
        self.assertEqual((e["code"], e["addr"]), ("not_found", d6.addr))

    # ---- holding a lease while running -----------------------------------

    def hold(self, ttl=30, name="svc", own=False, **kw):
        """A driver holding name: (process, port, token)."""
        p = self.start("hold-own" if own else "hold", name, ttl, **kw)
        port, token = p.line().split()
        lease = self.lease(name)
        self.assertEqual((lease["port"], lease["pid"], lease["ttl"]),
                         (int(port), p.pid, ttl))
        return p, int(port), token

    def test_hold_released_on_signals(self):
        self.d = self.berthd()
        for sig in (signal.SIGTERM, signal.SIGINT):
            p, port, _ = self.hold(ttl=30)
            rel = self.d.metric("berth_releases_total")
            deaths = self.d.metric("berth_owner_deaths_total")
            p.p.send_signal(sig)
            wait_for(lambda: self.gone("svc"), 1, "the lease to end at once")
            # It ended by that signal, after releasing (not by owner death).
            self.assertEqual(p.wait(), -sig, p.stderr())
            self.assertEqual(self.d.metric("berth_releases_total"), rel + 1)
            self.assertEqual(self.d.metric("berth_owner_deaths_total"), deaths)
            self.assertEqual(p.stderr(), "")

    def test_hold_sigint_ignored(self):
        # A program started with SIGINT ignored (by a script, with &)
        # ignores it still: the lease is kept, not released under a
        # program that goes on running.
        self.d = self.berthd()
        p, port, _ = self.hold(ttl=30, sigint=signal.SIG_IGN)
        rel = self.d.metric("berth_releases_total")
        p.p.send_signal(signal.SIGINT)
        time.sleep(1)
        self.assertIsNone(p.p.poll())
        self.assertEqual(self.lease("svc")["pid"], p.pid)
        self.assertEqual(self.d.metric("berth_releases_total"), rel)
        p.p.terminate()
        wait_for(lambda: self.gone("svc"), 1, "the lease to end at once")
        self.assertEqual(p.wait(), -signal.SIGTERM, p.stderr())
        self.assertEqual(self.d.metric("berth_releases_total"), rel + 1)

    def test_hold_returns(self):
        # main returns: the deferred Release gives the lease back.
        self.d = self.berthd()
        p, port, _ = self.hold(ttl=5)
        rel = self.d.metric("berth_releases_total")
        p.close_stdin()
        self.assertEqual(p.wait(), 0, p.stderr())
        self.assertTrue(self.gone("svc"))
        self.assertEqual(self.d.metric("berth_releases_total"), rel + 1)
        # With no TTL (nothing renews it) too.
        p, port, _ = self.hold(ttl=0)
        p.close_stdin()
        self.assertEqual(p.wait(), 0, p.stderr())
        self.assertTrue(self.gone("svc"))
        self.assertEqual(self.d.metric("berth_releases_total"), rel + 2)

    def test_hold_killed(self):
        # kill -9: no release, but the lease is owned by the process, so
        # berthd ends it as the process dies.
        self.d = self.berthd()
        p, port, _ = self.hold(ttl=30)
        deaths = self.d.metric("berth_owner_deaths_total")
        p.p.kill()
        p.wait()
        wait_for(lambda: self.gone("svc"), 5, "berthd to see the owner die")
        self.assertEqual(self.d.metric("berth_owner_deaths_total"), deaths + 1)

    def test_hold_renews(self):
        self.d = self.berthd()
        p, port, token = self.hold(ttl=2)
        first = self.lease("svc")["renewed_at"]
        wait_for(lambda: self.lease("svc")["renewed_at"] != first, 10,
                 "a renewal")
        time.sleep(2.5)     # past the TTL: still there, renewed
        self.assertEqual(self.lease("svc")["port"], port)
        self.assertGreaterEqual(self.d.metric("berth_renewals_total"), 3)
        p.p.terminate()
        self.assertEqual(p.wait(), -signal.SIGTERM, p.stderr())
        self.assertTrue(self.gone("svc"))
        self.assertEqual(p.stderr(), "")

    def test_hold_own_signals(self):
        # NoSignals: the program's own signal.NotifyContext gets SIGTERM;
        # the lease stays held until the program releases it.
        self.d = self.berthd()
        p, port, token = self.hold(ttl=2, own=True)
        rel = self.d.metric("berth_releases_total")
        p.p.terminate()
        self.assertEqual(p.line(), "signalled")
        time.sleep(1)
        self.assertEqual(self.lease("svc")["pid"], p.pid)
        self.assertEqual(self.d.metric("berth_releases_total"), rel)
        p.close_stdin()
        self.assertEqual(p.line(), "released")
        self.assertEqual(p.wait(), 7, p.stderr())
        self.assertTrue(self.gone("svc"))
        self.assertEqual(self.d.metric("berth_releases_total"), rel + 1)

    def test_reclaim_after_lapse(self):
        # berthd killed, kept down past the TTL and started again on the
        # same database and socket: the lease has lapsed; the holder's
        # next renewal takes it back, same port, same token.
        sock = os.path.join(self.tmp, "r.sock")
        self.d = self.berthd("--listen", "unix:" + sock)
        p, port, token = self.hold(ttl=2)
        self.d.kill9()
        time.sleep(2.5)
        self.d.start()
        wait_for(lambda: "reclaimed" in p.stderr(), 20,
                 "the holder to reclaim its lease")
        self.assertIn("berth: the lease on svc had lapsed; reclaimed it "
                      "(port %d)\n" % port, p.stderr())
        lease = self.lease("svc")
        self.assertEqual((lease["port"], lease["pid"]), (port, p.pid))
        self.assertIn("reclaimed with its token", self.d.logtext())
        r = self.d.post("/v1/services/svc/renew", {},
                        headers={"Authorization": "Bearer " + token})
        self.assertEqual(r.status, 200, r)
        p.close_stdin()
        self.assertEqual(p.wait(), 0, p.stderr())
        self.assertTrue(self.gone("svc"))

    def test_revoked_is_not_taken_back(self):
        self.d = self.berthd()
        p, port, token = self.hold(ttl=1)
        s = self.session()
        s.ok("Revoke", "svc")
        self.assertEqual(p.line(10), "lost")
        wait_for(lambda: "berth: the lease on svc was revoked, released or "
                 "taken; no longer renewing it: " in p.stderr(), 10,
                 "the holder to say why it gave up")
        time.sleep(1)       # past the TTL: not taken back
        self.assertTrue(self.gone("svc"))
        p.close_stdin()
        self.assertEqual(p.wait(), 0, p.stderr())

    def test_held_in_session(self):
        # A held lease's Lost stays open while it is renewed; Lease.Release
        # stops renewing and releases; a second Release does nothing.
        self.d = self.berthd()
        s = self.session()
        got = s.ok("Acquire", "h", TTL=1)
        self.assertEqual((got["held"], got["lease"]["pid"]),
                         (True, s.p.pid))
        first = self.lease("h")["renewed_at"]
        wait_for(lambda: self.lease("h")["renewed_at"] != first, 10,
                 "a renewal")
        self.assertEqual(s.ok("Lease.Lost", "h"), "open")
        self.assertIsNone(s.ok("Lease.Release", "h"))
        self.assertTrue(self.gone("h"))
        self.assertIsNone(s.ok("Lease.Release", "h"))
        # Taken by another holder with its token: lost.
        t = s.ok("Acquire", "h2", TTL=1)["lease"]["token"]
        self.d.release("h2", t)
        self.d.acquire("h2")
        wait_for(lambda: s.ok("Lease.Lost", "h2") == "closed", 10,
                 "the lease to be lost")
        self.assertIsNone(s.ok("Lease.Release", "h2"))
        self.assertIsNotNone(self.lease("h2"))

    # ---- berth run --fd --------------------------------------------------

    def test_listen_fds(self):
        self.d = self.berthd()
        p = self.start("listen", "web", argv=[BERTH_CLI, "--addr", self.d.addr,
                                              "run", "--fd", "web", "--"])
        out = p.json()
        self.assertEqual(p.wait(), 0, p.stderr())
        # fd 3, named, close-on-exec; LISTEN_* taken out of the
        # environment; a listener on the lease's port that accepts.
        self.assertEqual(out, {
            "fds": [[3, "web", True]], "env": [], "port": out["lease_port"],
            "accepted": True, "lease_port": out["port"],
            "other": 'berth: no socket named "not-web" was passed to this '
                     'process (start it with berth run --fd not-web)'})
        self.assertTrue(self.gone("web"))
        # LISTEN_PID naming another process: nothing is ours.
        p = self.start("listen", "web",
                       env=self.env(self.d.addr, LISTEN_PID="1", LISTEN_FDS="1",
                                    LISTEN_FDNAMES="web"))
        self.assertEqual(p.json(), {
            "fds": [], "env": [],
            "other": 'berth: no socket named "not-web" was passed to this '
                     'process (start it with berth run --fd not-web)',
            "error": 'berth: no socket named "web" was passed to this '
                     'process (start it with berth run --fd web)'})
        self.assertEqual(p.wait(), 0, p.stderr())

    # ---- lint ------------------------------------------------------------

    def test_lint(self):
        self.vetting.join(300)
        self.assertEqual(self.vet, [(PKG, 0, ""), (DRIVER, 0, "")])
        gofmt = os.path.join(os.path.dirname(os.path.realpath(GO)), "gofmt")
        if not os.access(gofmt, os.X_OK):
            gofmt = shutil.which("gofmt")
        self.assertTrue(gofmt, "gofmt is not installed next to go")
        r = subprocess.run([gofmt, "-l", PKG, DRIVER], capture_output=True,
                           text=True, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))


class Session:
    """The driver's session subcommand: one call per line."""

    def __init__(self, test, proc):
        self.test = test
        self.p = proc

    def do(self, method, name=None, token=None, addr=None, value=None,
           **opts):
        req = {"call": method, "opts": opts}
        for k, v in (("name", name), ("token", token), ("addr", addr),
                     ("value", value)):
            if v is not None:
                req[k] = v
        self.p.send(req)
        return self.p.json()

    def ok(self, method, name=None, **kw):
        """The call's result; fails the test on an error."""
        r = self.do(method, name, **kw)
        self.test.assertIn("result", r, (method, name, kw))
        return r["result"]

    def err(self, method, name=None, **kw):
        """The call's error (code, message, status, addr, text, ...)."""
        r = self.do(method, name, **kw)
        self.test.assertIn("error", r, (method, name, kw))
        return r["error"]


if __name__ == "__main__":
    main()
