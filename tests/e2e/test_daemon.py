"""berthd as a process: durability across kill -9, the database lock,
signals, readiness notification, flags and their environment twins,
listen addresses, the database path and the default pool (berthd(8))."""

import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid

import berthtest
from berthtest import (BerthTestCase, Response, UnixHTTPConnection, main,
                       needs_own_berthd, read_log, wait_for)
from berthtest import clean_env

BERTHD = berthtest.BERTHD
NOBODY = 65534
DYNAMIC = (49152, 65535)
ALL_FLAGS = ("--listen", "--db", "--range", "--reuse-delay", "--log-level",
             "--allow-remote")




def split_addr(addr):
    """'127.0.0.1:N', '[::1]:N' or 'unix:/p' -> (host, port) or (path, None)."""
    if addr.startswith("unix:"):
        return addr[5:], None
    if addr.startswith("["):
        host, port = addr[1:].split("]:")
        return host, int(port)
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def connect(addr, timeout=10):
    host, port = split_addr(addr)
    if port is None:
        return UnixHTTPConnection(host, timeout=timeout)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def fetch(addr, method, path, body=None, headers=None, timeout=10, conn=None):
    """One HTTP request to a listen address; returns a berthtest.Response."""
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    own = conn is None
    if own:
        conn = connect(addr, timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read().decode(errors="replace"))
    finally:
        if own:
            conn.close()


def has_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def port_set(ranges):
    """['a-b', ...] -> the set of ports."""
    out = set()
    for r in ranges:
        lo, hi = (int(x) for x in r.split("-"))
        out.update(range(lo, hi + 1))
    return out


def ephemeral_range():
    """The kernel's ephemeral port range, (lo, hi)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    return lo, hi


def kernel_excluded():
    """Ports in the kernel's ephemeral range and ip_local_reserved_ports."""
    out = set()
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    out.update(range(lo, hi + 1))
    try:
        with open("/proc/sys/net/ipv4/ip_local_reserved_ports") as f:
            text = f.read().strip()
    except OSError:
        text = ""
    for part in filter(None, text.split(",")):
        if "-" in part:
            a, b = (int(x) for x in part.split("-"))
            out.update(range(a, b + 1))
        else:
            out.add(int(part))
    return out


class Raw:
    """A berthd started with exactly these arguments and environment (no
    harness defaults), its readiness read from an abstract NOTIFY_SOCKET."""

    def __init__(self, args, env=None, tmp=None, cwd=None, prefix=(),
                 notify=True, **popen):
        self.tmp = tmp or tempfile.mkdtemp(prefix="berth-e2e-")
        self.log_path = os.path.join(self.tmp, "raw-%s.log" % uuid.uuid4().hex[:8])
        env = clean_env(env)
        self.nsock = None
        if notify:
            name = "berth-e2e-%d-%s" % (os.getpid(), uuid.uuid4().hex)
            self.nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.nsock.bind("\0" + name)
            env["NOTIFY_SOCKET"] = "@" + name
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(list(prefix) + [BERTHD] + list(args),
                                     stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=env,
                                     cwd=cwd, **popen)
        self.addr = None

    def ready(self, timeout=10):
        """Wait for READY=1; returns the datagram's fields and sets .addr."""
        self.nsock.settimeout(0.1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.nsock.recv(4096).decode()
                break
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise AssertionError("berthd exited with %d before READY=1:\n%s"
                                         % (self.proc.returncode, self.logtext()))
                if time.monotonic() > deadline:
                    raise AssertionError("no READY=1 after %ds:\n%s"
                                         % (timeout, self.logtext()))
        fields = dict(l.split("=", 1) for l in msg.splitlines() if "=" in l)
        self.fields = fields
        if "serving on " in fields.get("STATUS", ""):
            self.addr = fields["STATUS"].split("serving on ", 1)[1].strip()
        return fields

    def get(self, path, **kw):
        return fetch(self.addr, "GET", path, **kw)

    def post(self, path, body=None, **kw):
        return fetch(self.addr, "POST", path, body=body, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.log.close()
        if self.nsock is not None:
            self.nsock.close()

    def logtext(self):
        return read_log(self.log_path)


@needs_own_berthd("it starts berthd itself: flags, signals, restarts")
@needs_own_berthd("it starts berthd itself: flags, signals, restarts")
class DaemonTest(BerthTestCase):

    def setUp(self):
        super().setUp()
        self.raws = []
        self.tmps = []

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not getattr(outcome, "success", True)
        for r in self.raws:
            r.close()
            if failed:
                print("---- raw berthd log (%s) ----\n%s"
                      % (" ".join(r.proc.args), r.logtext()[-4000:]))
        if failed and not hasattr(outcome, "errors"):
            # berthtest prints these only where _Outcome.errors exists.
            for d in self.daemons:
                print("---- berthd log (%s) ----\n%s" % (d.tmp, d.logtext()[-4000:]))
        super().tearDown()
        for d in self.daemons:
            self.tmps.append(d.tmp)
        for r in self.raws:
            self.tmps.append(r.tmp)
        for t in self.tmps:
            shutil.rmtree(t, ignore_errors=True)

    # helpers

    def mktemp(self):
        t = tempfile.mkdtemp(prefix="berth-e2e-")
        self.tmps.append(t)
        return t

    def raw(self, *args, **kw):
        r = Raw(args, **kw)
        self.raws.append(r)
        return r

    def run_exit(self, *args, env=None, timeout=5):
        """Run berthd expecting it to exit at once; returns CompletedProcess."""
        try:
            return subprocess.run([BERTHD] + list(args), env=clean_env(env),
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, text=True)
        except subprocess.TimeoutExpired:
            self.fail("berthd %s did not exit within %ds" % (" ".join(args), timeout))

    def status(self, d):
        r = d.get("/v1/status")
        self.assertEqual(r.status, 200, r)
        return r.json

    def assertUsageError(self, res, *words):
        self.assertEqual(res.returncode, 2, (res.args, res.stdout, res.stderr))
        self.assertTrue(res.stderr.strip(), "no message on stderr for %r" % (res.args,))
        for w in words:
            self.assertIn(w, res.stderr, res.args)

    def live_map(self, d):
        r = d.get("/v1/services")
        self.assertEqual(r.status, 200, r)
        return {s["name"]: s["port"] for s in r.json["services"]}

    # durability (docs/durability.md)

    def test_kill9_keeps_every_acknowledged_lease(self):
        d = self.berthd()
        acked, lock = {}, threading.Lock()
        errors = []

        def worker(i):
            conn = http.client.HTTPConnection(d.host, d.port, timeout=30)
            try:
                for n in range(10):
                    name = "svc-%d-%d" % (i, n)
                    r = d.post("/v1/services", {"name": name}, conn=conn)
                    if r.status != 201:
                        errors.append(r)
                        return
                    with lock:
                        acked[name] = r.json
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(acked), 50)
        ports = [l["port"] for l in acked.values()]
        self.assertEqual(len(set(ports)), 50, "a port was granted twice")
        released = sorted(acked)[::10]
        for name in released:
            self.assertEqual(d.release(name, acked[name]["token"]).status, 204)
        self.assertEqual(d.kill9(), -signal.SIGKILL)
        d.start()

        live = self.live_map(d)
        want = {n: l["port"] for n, l in acked.items() if n not in released}
        self.assertEqual(live, want)
        for name in released:
            self.assertError(d.get("/v1/services/" + name), 404, "not_found")
        for name, port in want.items():
            r = d.get("/v1/services/" + name)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["port"], port)
        # New leases never get a port that a restored lease holds.
        fresh = []
        for n in range(10):
            r = d.acquire("fresh-%d" % n)
            self.assertEqual(r.status, 201, r)
            fresh.append(r.json["port"])
        held = list(want.values()) + fresh
        self.assertEqual(len(held), len(set(held)), "a port is held twice")
        # The tokens survived: idempotent re-acquire, then release.
        for name, port in want.items():
            r = d.acquire(name, token=acked[name]["token"])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["port"], port)
            self.assertEqual(d.release(name, acked[name]["token"]).status, 204, name)
            self.assertError(d.get("/v1/services/" + name), 404, "not_found")

    def test_kill9_mid_stream_keeps_acknowledged_leases(self):
        d = self.berthd()
        acked, lock = {}, threading.Lock()
        stop = threading.Event()

        def worker(i):
            conn = http.client.HTTPConnection(d.host, d.port, timeout=10)
            n = 0
            try:
                while not stop.is_set():
                    name = "m%d-%d" % (i, n)
                    n += 1
                    try:
                        r = d.post("/v1/services", {"name": name}, conn=conn)
                    except (OSError, http.client.HTTPException):
                        return
                    if r.status == 201:
                        with lock:
                            acked[name] = r.json["port"]
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 120, timeout=20, what="120 leases")
        d.kill9()
        stop.set()
        for t in threads:
            t.join(15)
        with lock:
            acked_now = dict(acked)
        d.start()
        live = self.live_map(d)
        missing = sorted(set(acked_now) - set(live))
        self.assertEqual(missing, [], "acknowledged leases lost after kill -9")
        for name, port in acked_now.items():
            self.assertEqual(live[name], port, name)
        self.assertEqual(len(live), len(set(live.values())), "a port is held twice")

    def test_release_survives_kill9(self):
        d = self.berthd()
        a = d.acquire("gone").json
        b = d.acquire("kept").json
        self.assertEqual(d.release("gone", a["token"]).status, 204)
        d.kill9()
        d.start()
        self.assertError(d.get("/v1/services/gone"), 404, "not_found")
        self.assertEqual(self.live_map(d), {"kept": b["port"]})

    # the database lock (berthd(8))

    def test_second_berthd_on_same_db_exits_locked(self):
        d = self.berthd()
        lease = d.acquire("first").json
        res = self.run_exit("--db", d.db, "--listen", "127.0.0.1:0")
        self.assertNotEqual(res.returncode, 0, res.stderr)
        self.assertIn("locked", res.stderr.lower(), res.stderr)
        # The first one is untouched.
        self.assertEqual(d.get("/v1/health").status, 200)
        self.assertEqual(d.get("/v1/services/first").json["port"], lease["port"])
        # The same through BERTH_DB.
        res = self.run_exit("--listen", "127.0.0.1:0", env={"BERTH_DB": d.db})
        self.assertNotEqual(res.returncode, 0, res.stderr)
        self.assertIn("locked", res.stderr.lower(), res.stderr)

    # signals (berthd(8))

    def check_graceful_stop(self, sig):
        d = self.berthd()
        lease = d.acquire("keep").json
        idle = [http.client.HTTPConnection(d.host, d.port, timeout=10) for _ in range(3)]
        for c in idle:
            self.assertEqual(d.get("/v1/health", conn=c).status, 200)
        # A request stuck half-way (body promised, not sent).
        partial = socket.create_connection((d.host, d.port), timeout=10)
        partial.sendall(b"POST /v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        index = d.get("/v1/services").index
        answers = {}

        def park(key, path):
            try:
                answers[key] = d.get(path, timeout=30)
            except Exception as e:  # noqa: BLE001 - recorded and asserted on
                answers[key] = e

        parked = [threading.Thread(target=park, args=("name", "/v1/services/nobody?wait=30")),
                  threading.Thread(target=park, args=("index", "/v1/services?index=%d&wait=30" % index))]
        for t in parked:
            t.start()
        wait_for(lambda: self.status(d)["waiters"] >= 2, what="two parked waiters")
        d.proc.send_signal(sig)
        try:
            rc = d.proc.wait(2.0)
        except subprocess.TimeoutExpired:
            self.fail("berthd did not exit within 2 s of %s" % sig.name)
        finally:
            d.log.close()
        self.assertEqual(rc, 0, "exit status after %s" % sig.name)
        for t in parked:
            t.join(10)
        for key in ("name", "index"):
            a = answers.get(key)
            self.assertIsInstance(a, Response, "parked %s lookup got no answer: %r" % (key, a))
            self.assertIn("X-Berth-Index", a.headers)
        self.assertIn(answers["name"].status, (404, 503), answers["name"])
        self.assertIn(answers["index"].status, (200, 503), answers["index"])
        for c in idle:
            c.close()
        partial.close()
        self.assertIn("stopped", d.logtext())
        # The database was closed cleanly: it opens again, with the lease.
        d.start()
        r = d.get("/v1/services/keep")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["port"], lease["port"])
        self.assertEqual(d.release("keep", lease["token"]).status, 204)

    def test_sigterm_exits_0_within_2s(self):
        self.check_graceful_stop(signal.SIGTERM)

    def test_sigint_exits_0_within_2s(self):
        self.check_graceful_stop(signal.SIGINT)

    def test_sighup_reopens_log_file(self):
        t = self.mktemp()
        logf = os.path.join(t, "file.log")
        d = self.berthd("--log-file", logf, tmpdir=t)
        wait_for(lambda: os.path.exists(logf) and os.path.getsize(logf) > 0,
                      what="lines in the --log-file")
        os.rename(logf, logf + ".1")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(logf), what="a new log file after SIGHUP")
        self.assertEqual(d.acquire("after-hup").status, 201)
        self.assertEqual(d.stop(), 0)
        with open(logf) as f:
            new = f.read()
        with open(logf + ".1") as f:
            old = f.read()
        self.assertIn("after-hup", new)
        self.assertIn("stopped", new)
        self.assertNotIn("after-hup", old)
        self.assertNotIn("stopped", old)

    def test_sighup_without_log_file_keeps_running(self):
        d = self.berthd()
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        self.assertIsNone(d.proc.poll(), "berthd died on SIGHUP")
        self.assertEqual(d.get("/v1/health").status, 200)
        self.assertEqual(d.stop(), 0)

    # readiness (berthd(8))

    def check_notify(self, notify_env, nsock):
        t = self.mktemp()
        env = clean_env({"NOTIFY_SOCKET": notify_env})
        with open(os.path.join(t, "log"), "wb") as log:
            p = subprocess.Popen([BERTHD, "--db", os.path.join(t, "db"),
                                  "--listen", "127.0.0.1:0"], env=env,
                                 stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            nsock.settimeout(10)
            try:
                msg = nsock.recv(4096).decode()
            except socket.timeout:
                self.fail("no datagram on %s" % notify_env)
            lines = msg.splitlines()
            self.assertIn("READY=1", lines, msg)
            fields = dict(l.split("=", 1) for l in lines if "=" in l)
            if "MAINPID" in fields:
                self.assertEqual(int(fields["MAINPID"]), p.pid, msg)
            self.assertIn("STATUS", fields, msg)
            addr = fields["STATUS"].split("serving on ", 1)[1].strip()
            # READY=1 means serving: the first connection works, no retry.
            self.assertEqual(fetch(addr, "GET", "/v1/health").status, 200)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(5), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_notify_socket_path(self):
        t = self.mktemp()
        path = os.path.join(t, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind(path)
            self.check_notify(path, s)

    def test_notify_socket_abstract(self):
        name = "berth-e2e-notify-%d-%s" % (os.getpid(), uuid.uuid4().hex)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind("\0" + name)
            self.check_notify("@" + name, s)

    def test_runs_without_notify_socket(self):
        t = self.mktemp()
        sock = os.path.join(t, "b.sock")
        r = self.raw("--db", os.path.join(t, "db"), "--listen", "unix:" + sock,
                     tmp=t, notify=False)
        r.addr = "unix:" + sock

        def up():
            self.assertIsNone(r.proc.poll(), r.logtext())
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(sock)
                except OSError:
                    return False
            return r.get("/v1/health").status == 200
        wait_for(up, timeout=10, what="berthd without NOTIFY_SOCKET")
        self.assertEqual(r.stop(), 0)

    # flags and environment twins (berthd(8))

    def test_help_lists_every_flag(self):
        res = self.run_exit("--help")
        self.assertEqual(res.returncode, 0, res.stderr)
        for flag in ALL_FLAGS:
            self.assertIn(flag, res.stdout)

    def test_unknown_flag_is_usage_error(self):
        t = self.mktemp()
        base = ("--db", os.path.join(t, "db"), "--listen", "127.0.0.1:0")
        self.assertUsageError(self.run_exit(*base, "--bogus"), "--bogus")
        self.assertUsageError(self.run_exit(*base, "stray"), "stray")
        self.assertUsageError(self.run_exit("--listen", "127.0.0.1:0", "--db",
                                            env={"BERTH_DB": os.path.join(t, "env.db")}))
        self.assertUsageError(self.run_exit(*base, "--log-level", "loud"), "loud")
        self.assertEqual(os.listdir(t), [])

    def test_bad_range_is_usage_error(self):
        t = self.mktemp()
        base = ("--db", os.path.join(t, "db"), "--listen", "127.0.0.1:0")
        for bad in ("5-3", "0-10", "abc", "1-70000", "10-", "-5", "", "100"):
            with self.subTest(range=bad):
                self.assertUsageError(self.run_exit(*base, "--range", bad))
        for bad in ("5-3", "abc"):
            with self.subTest(env=bad):
                res = self.run_exit(*base, env={"BERTH_RANGE": bad})
                self.assertUsageError(res, "BERTH_RANGE")
        self.assertEqual(os.listdir(t), [])

    def test_env_twins(self):
        t = self.mktemp()
        sock = os.path.join(t, "env.sock")
        db = os.path.join(t, "env.db")
        r = self.raw(tmp=t, env={"BERTH_LISTEN": "unix:" + sock, "BERTH_DB": db,
                                 "BERTH_RANGE": "40000-40009",
                                 "BERTH_LOG_LEVEL": "error"})
        r.ready()
        self.assertEqual(r.addr, "unix:" + sock)
        st = r.get("/v1/status").json
        self.assertEqual(st["listen"], ["unix:" + sock])
        self.assertEqual(st["db"], db)
        self.assertEqual(st["pool"]["ranges"], ["40000-40009"])
        self.assertEqual(st["pool"]["size"], 10)
        lease = r.post("/v1/services", {"name": "envtwin"})
        self.assertEqual(lease.status, 201, lease)
        self.assertTrue(40000 <= lease.json["port"] <= 40009, lease)
        self.assertEqual(r.stop(), 0)
        self.assertTrue(os.path.isfile(db))
        log = r.logtext()
        self.assertNotIn("info", log, "BERTH_LOG_LEVEL=error still logs info lines")

    def test_sync_modes(self):
        # Default: synchronous=NORMAL (survives kill -9); --sync full and
        # BERTH_SYNC=full add an fsync per commit; the flag beats the env.
        d = self.berthd()
        self.assertEqual(d.get("/v1/status").json["synchronous"], "NORMAL")
        d = self.berthd("--sync", "full")
        self.assertEqual(d.get("/v1/status").json["synchronous"], "FULL")
        d = self.berthd(env={"BERTH_SYNC": "full"})
        self.assertEqual(d.get("/v1/status").json["synchronous"], "FULL")
        d = self.berthd("--sync", "normal", env={"BERTH_SYNC": "full"})
        self.assertEqual(d.get("/v1/status").json["synchronous"], "NORMAL")
        r = subprocess.run([berthtest.BERTHD, "--sync", "sometimes"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("--sync", r.stderr)

    def test_flag_beats_env(self):
        t = self.mktemp()
        env_sock = os.path.join(t, "env.sock")
        env_db = os.path.join(t, "env.db")
        flag_db = os.path.join(t, "flag.db")
        r = self.raw("--listen", "127.0.0.1:0", "--db", flag_db,
                     "--range", "41000-41004", "--log-level", "info", tmp=t,
                     env={"BERTH_LISTEN": "unix:" + env_sock, "BERTH_DB": env_db,
                          "BERTH_RANGE": "40000-40009", "BERTH_LOG_LEVEL": "error"})
        r.ready()
        st = r.get("/v1/status").json
        self.assertEqual(len(st["listen"]), 1, st["listen"])
        self.assertTrue(st["listen"][0].startswith("127.0.0.1:"), st["listen"])
        self.assertEqual(st["db"], flag_db)
        self.assertEqual(st["pool"]["ranges"], ["41000-41004"])
        self.assertFalse(os.path.exists(env_sock))
        self.assertEqual(r.stop(), 0)
        self.assertFalse(os.path.exists(env_db))
        self.assertTrue(os.path.isfile(flag_db))
        self.assertIn("info", r.logtext())

    # listen addresses (berthd(8))

    def test_listen_ipv6_loopback(self):
        if not has_ipv6():
            self.skipTest("no IPv6 loopback")
        d = self.berthd("--listen", "[::1]:0")
        self.assertEqual(d.host, "::1")
        self.assertEqual(d.get("/v1/health").status, 200)
        self.assertTrue(self.status(d)["listen"][0].startswith("[::1]:"))
        r = d.acquire("six")
        self.assertEqual(r.status, 201, r)

    def test_listen_unix_socket(self):
        t = self.mktemp()
        path = os.path.join(t, "b.sock")
        d = self.berthd("--listen", "unix:" + path, tmpdir=t)
        self.assertEqual(d.addr, "unix:" + path)
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
        self.assertEqual(d.get("/v1/health").status, 200)
        r = d.acquire("overunix")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(d.get("/v1/services/overunix").json["port"], r.json["port"])

    def check_all_listeners(self, d, n):
        listen = self.status(d)["listen"]
        self.assertEqual(len(listen), n, listen)
        lease = d.acquire("multi").json
        for addr in listen:
            r = fetch(addr, "GET", "/v1/services/multi")
            self.assertEqual(r.status, 200, (addr, r))
            self.assertEqual(r.json["port"], lease["port"])
        return listen

    def test_listen_comma_list(self):
        t = self.mktemp()
        sock = os.path.join(t, "c.sock")
        d = self.berthd("--listen", "127.0.0.1:0,unix:" + sock, tmpdir=t)
        listen = self.check_all_listeners(d, 2)
        self.assertIn("unix:" + sock, listen)

    def test_listen_repeated_flag(self):
        t = self.mktemp()
        second = "[::1]:0" if has_ipv6() else "unix:" + os.path.join(t, "r.sock")
        d = self.berthd("--listen", "127.0.0.1:0", "--listen", second, tmpdir=t)
        self.check_all_listeners(d, 2)

    def test_non_loopback_listen_refused(self):
        t = self.mktemp()
        db = os.path.join(t, "db")
        for addr in ("0.0.0.0:0", "[::]:0", "192.0.2.1:0", "127.0.0.1:0,0.0.0.0:0"):
            with self.subTest(addr=addr):
                self.assertUsageError(self.run_exit("--db", db, "--listen", addr),
                                      "--allow-remote")
        with self.subTest(env="BERTH_LISTEN"):
            self.assertUsageError(self.run_exit("--db", db, env={"BERTH_LISTEN": "0.0.0.0:0"}),
                                  "--allow-remote")
        self.assertFalse(os.path.exists(db))

    def check_remote(self, d):
        self.assertTrue(d.addr.startswith("0.0.0.0:"), d.addr)
        r = fetch("127.0.0.1:%d" % d.port, "GET", "/v1/health")
        self.assertEqual(r.status, 200, r)

    def test_allow_remote_flag(self):
        self.check_remote(self.berthd("--listen", "0.0.0.0:0", "--allow-remote"))

    def test_allow_remote_env(self):
        self.check_remote(self.berthd("--listen", "0.0.0.0:0",
                                      env={"BERTH_ALLOW_REMOTE": "1"}))

    # the database path (berthd(8))

    def test_default_db_as_root(self):
        if os.geteuid() != 0:
            self.skipTest("not root")
        # /var/lib/berth must not be touched: run berthd in a private mount
        # namespace with a tmpfs over /var/lib.
        mnt = 'mount -t tmpfs berth-e2e /var/lib && exec "$0" "$@"'
        prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mnt]
        try:
            probe = subprocess.run(prefix[:-1] + ["mount -t tmpfs berth-e2e /var/lib"],
                                   capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            probe = None
        if probe is None or probe.returncode != 0:
            self.skipTest("cannot make a private mount namespace; not touching "
                          "/var/lib/berth")
        existed = os.path.exists("/var/lib/berth")
        t = self.mktemp()
        r = self.raw("--listen", "127.0.0.1:0", tmp=t, prefix=prefix,
                     env={"HOME": os.path.join(t, "home"),
                          "XDG_STATE_HOME": os.path.join(t, "state")})
        r.ready()
        st = r.get("/v1/status").json
        self.assertEqual(st["db"], "/var/lib/berth/berth.db")
        self.assertEqual(r.post("/v1/services", {"name": "rootdb"}).status, 201)
        self.assertEqual(r.stop(), 0)
        self.assertEqual(os.path.exists("/var/lib/berth"), existed)
        self.assertFalse(os.path.exists(os.path.join(t, "state")))
        self.assertFalse(os.path.exists(os.path.join(t, "home", ".local")))

    def check_user_db(self, env, want):
        """Run berthd as a non-root user without --db; want is the db path."""
        kw = {}
        if os.geteuid() == 0:  # root never uses the XDG path: be nobody
            kw = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        r = self.raw("--listen", "127.0.0.1:0", env=env, tmp=self.mktemp(), **kw)
        r.ready()
        st = r.get("/v1/status").json
        self.assertEqual(st["db"], want)
        self.assertEqual(r.post("/v1/services", {"name": "userdb"}).status, 201)
        self.assertEqual(r.stop(), 0)
        self.assertTrue(os.path.isfile(want), want)

    def user_tmp(self):
        t = self.mktemp()
        if os.geteuid() == 0:
            os.chmod(t, 0o755)
            for sub in ("home", "state"):
                os.mkdir(os.path.join(t, sub))
                os.chown(os.path.join(t, sub), NOBODY, NOBODY)
        else:
            for sub in ("home", "state"):
                os.mkdir(os.path.join(t, sub))
        return t

    def test_default_db_xdg_state_home(self):
        t = self.user_tmp()
        self.check_user_db({"HOME": os.path.join(t, "home"),
                            "XDG_STATE_HOME": os.path.join(t, "state")},
                           os.path.join(t, "state", "berth", "berth.db"))
        self.assertFalse(os.path.exists(os.path.join(t, "home", ".local")))

    def test_default_db_home_local_state(self):
        t = self.user_tmp()
        env = {"HOME": os.path.join(t, "home")}
        self.check_user_db(env, os.path.join(t, "home", ".local", "state",
                                             "berth", "berth.db"))

    def test_memory_db_leaves_no_file(self):
        t = self.mktemp()
        a = self.raw("--db", ":memory:", "--listen", "127.0.0.1:0", tmp=t, cwd=t)
        b = self.raw("--db", ":memory:", "--listen", "127.0.0.1:0", tmp=t, cwd=t)
        a.ready()
        b.ready()  # no lock between two in-memory brokers
        self.assertEqual(a.get("/v1/status").json["db"], ":memory:")
        self.assertEqual(a.post("/v1/services", {"name": "mem"}).status, 201)
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)
        left = [f for f in os.listdir(t) if not f.startswith("raw-")]
        self.assertEqual(left, [])
        c = self.raw("--db", ":memory:", "--listen", "127.0.0.1:0", tmp=t, cwd=t)
        c.ready()
        self.assertEqual(c.get("/v1/services/mem").status, 404)
        self.assertEqual(c.stop(), 0)

    def test_db_directory_is_created(self):
        t = self.mktemp()
        db = os.path.join(t, "a", "b", "c", "berth.db")
        d = self.berthd(db=db, tmpdir=t)
        self.assertTrue(os.path.isfile(db))
        self.assertEqual(self.status(d)["db"], db)
        lease = d.acquire("deep").json
        d.kill9()
        d.start()
        self.assertEqual(d.get("/v1/services/deep").json["port"], lease["port"])

    # unix socket files

    def test_stale_unix_socket_does_not_block_restart(self):
        t = self.mktemp()
        path = os.path.join(t, "s.sock")
        d = self.berthd("--listen", "unix:" + path, tmpdir=t)
        lease = d.acquire("stale").json
        d.kill9()
        self.assertTrue(os.path.exists(path), "kill -9 left no socket file to test with")
        d.start()
        self.assertEqual(d.get("/v1/health").status, 200)
        self.assertEqual(d.get("/v1/services/stale").json["port"], lease["port"])

    def test_live_unix_socket_not_taken_over(self):
        t = self.mktemp()
        path = os.path.join(t, "l.sock")
        d = self.berthd("--listen", "unix:" + path, tmpdir=t)
        res = self.run_exit("--db", os.path.join(t, "other.db"), "--listen", "unix:" + path)
        self.assertNotEqual(res.returncode, 0, res.stderr)
        self.assertTrue(res.stderr.strip())
        self.assertEqual(d.get("/v1/health").status, 200)

    def test_regular_file_at_socket_path_is_not_deleted(self):
        # Not spelled out in berthd(8): berthd may replace a stale socket, but a
        # user would not expect it to delete a regular file at that path.
        t = self.mktemp()
        path = os.path.join(t, "precious")
        with open(path, "w") as f:
            f.write("keep me\n")
        with open(os.path.join(t, "log"), "wb") as log:
            p = subprocess.Popen([BERTHD, "--db", os.path.join(t, "db"),
                                  "--listen", "unix:" + path], env=clean_env(),
                                 stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            rc = p.wait(5)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertTrue(os.path.isfile(path), "berthd deleted the regular file "
                        "%s to put its socket there" % path)
        with open(path) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.assertIsNotNone(rc, "berthd is serving on a path that held a regular file")
        self.assertNotEqual(rc, 0)
        with open(os.path.join(t, "log")) as f:
            self.assertTrue(f.read().strip(), "no error message")

    # the default pool (berthd(8))

    def expected_default_pool(self, own):
        dynamic = set(range(DYNAMIC[0], DYNAMIC[1] + 1))
        pool = dynamic - kernel_excluded() - set(own)
        if len(pool) < 256:
            return dynamic - set(own), True
        return pool, False

    def test_default_pool_excludes_ephemeral_range(self):
        d = self.berthd(default_pool=True)
        st = self.status(d)["pool"]
        got = port_set(st["ranges"])
        want, fallback = self.expected_default_pool([d.port])
        self.assertEqual(got, want, st["ranges"])
        self.assertEqual(st["size"], len(want))
        if fallback:
            self.assertIn("warn", d.logtext())

    def test_default_pool_excludes_own_port(self):
        d = self.berthd(default_pool=True)
        candidates = sorted(port_set(self.status(d)["pool"]["ranges"]))
        d.stop()
        # Listen on a port inside the default pool; it must leave the pool.
        for port in reversed(candidates[-50:]):
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
            try:
                e = self.berthd("--listen", "127.0.0.1:%d" % port,
                                default_pool=True)
            except RuntimeError:
                continue  # lost a race for the port; try another
            break
        else:
            self.skipTest("no free port in the default pool to listen on")
        self.assertEqual(e.port, port)
        st = self.status(e)["pool"]
        got = port_set(st["ranges"])
        self.assertNotIn(port, got)
        want, _ = self.expected_default_pool([port])
        self.assertEqual(got, want, st["ranges"])

    # --range and the kernel's ephemeral range (berthd(8))

    def ephemeral_warnings(self, d):
        return [l for l in d.logtext().splitlines()
                if "warn" in l and "ephemeral" in l]

    def test_range_inside_ephemeral_range_warns(self):
        elo, ehi = ephemeral_range()
        reserved = kernel_excluded() - set(range(elo, ehi + 1))
        # 20 ports across the top of the ephemeral range, 10 inside it;
        # or, when it ends too near 65535, 20 inside it.
        if ehi <= 65525:
            rng, inside = (ehi - 9, ehi + 10), (ehi - 9, ehi)
        else:
            rng, inside = (elo, elo + 19), (elo, elo + 19)
        if set(range(inside[0], inside[1] + 1)) & reserved:
            self.skipTest("ports %d-%d are reserved" % inside)
        d = self.berthd("--range", "%d-%d" % rng)
        warned = self.ephemeral_warnings(d)
        self.assertEqual(len(warned), 1, d.logtext())
        line = warned[0]
        self.assertIn(" %d ports" % (inside[1] - inside[0] + 1), line)
        self.assertIn("%d-%d" % inside, line)
        self.assertIn("%d-%d" % (elo, ehi), line)
        self.assertIn("--range", line)
        self.assertIn("net.ipv4.ip_local_reserved_ports", line)
        self.assertEqual(d.get("/v1/health").status, 200)

    def test_range_outside_ephemeral_range_does_not_warn(self):
        elo, ehi = ephemeral_range()
        rng = (ehi + 1, ehi + 20) if ehi <= 65515 else (elo - 20, elo - 1)
        if rng[0] < 1024:
            self.skipTest("the ephemeral range leaves no room")
        d = self.berthd("--range", "%d-%d" % rng)
        self.assertEqual(self.ephemeral_warnings(d), [], d.logtext())

if __name__ == "__main__":
    main()
