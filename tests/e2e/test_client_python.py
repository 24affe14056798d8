#!/usr/bin/env python3
"""The Python client (clients/python, module berth) against a real berthd.

The calls and their errors run in this process; the forms that hold a
lease while a program runs (berth.lease), their signals, the reclaim
after a lapse and the sockets of `berth run --fd` run in python3
subprocesses with PYTHONPATH=clients/python, as a program would.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from berthtest import (BerthTestCase, clean_env, main,
                       wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.normpath(os.path.join(HERE, "..", "..", "clients", "python"))
sys.path.insert(0, PKG)
import berth  # noqa: E402

BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

# A program holding "svc" while it runs: prints its port and token, then
# waits to be stopped.
HOLDER = """
import sys, time, berth
with berth.lease("svc", ttl=int(sys.argv[1])) as l:
    print(l.port, l.token, flush=True)
    while True:
        time.sleep(0.05)
"""


class PythonClient(BerthTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.scratch_dir("berth-py-")
        self.nprogs = 0

    def spawn(self, code, *args, addr=None, argv=None):
        """A python3 running code with BERTH_ADDR=addr, in its own process."""
        self.nprogs += 1
        path = os.path.join(self.tmp, "prog%d.py" % self.nprogs)
        with open(path, "w") as f:
            f.write(code)
        env = clean_env(BERTH_ADDR=addr or self.d.addr, PYTHONPATH=PKG)
        p = subprocess.Popen((argv or []) + [PY, path] + [str(a) for a in args],
                             env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                              signal.SIG_DFL))
        return self.track(p)

    def gone(self, name):
        return self.d.get("/v1/services/" + name).status == 404


    # ---- the calls -------------------------------------------------------

    def test_calls(self):
        self.d = self.berthd()
        c = berth.Client(self.d.addr)
        self.assertEqual(c.addr, self.d.addr)
        a = c.acquire("api", ttl=60, meta={"v": "1"}, proto="tcp")
        self.assertIsInstance(a, berth.Lease)
        self.assertRegex(a.token, r"^[0-9a-f]{32}$")
        self.assertEqual((a.name, a.ttl, a.meta, a.host), ("api", 60, {"v": "1"},
                                                         "127.0.0.1"))
        self.assertEqual(a.addr, "127.0.0.1:%d" % a.port)
        self.assertEqual(self.d.get("/v1/services/api").json["port"], a.port)
        # The same name with its token: the same lease.
        self.assertEqual(c.acquire("api", token=a.token, ttl=60).port, a.port)
        pid = os.getpid()
        b = c.acquire("db", pid=pid, host="localhost")
        self.assertEqual((b.pid, b.host, b.ttl), (pid, "localhost", 0))
        got = c.lookup("api")
        self.assertEqual((got.port, got.token), (a.port, None))
        self.assertEqual(got.fields()["meta"], {"v": "1"})
        self.assertEqual([l.name for l in c.list()], ["api", "db"])
        self.assertEqual(c.index, self.d.get("/v1/services").json["index"])
        r = c.renew("api", a.token, ttl=90)
        self.assertEqual(r.ttl, 90)
        self.assertEqual(self.d.get("/v1/services/api").json["ttl"], 90)
        c.renew(a)                       # a Lease carries its token
        self.assertIsNone(c.release(a))
        self.assertTrue(self.gone("api"))
        c.revoke("db")
        self.assertTrue(self.gone("db"))
        self.assertEqual(c.list(), [])

    def test_lookup_waits(self):
        self.d = self.berthd()
        c = berth.Client(self.d.addr)
        t = threading.Timer(0.5, lambda: self.d.acquire("late"))
        t.start()
        self.addCleanup(t.join)
        self.assertEqual(c.lookup("late", wait=20).name, "late")
        # ready=1: something must listen on the port.
        r = c.acquire("srv")
        s = socket.socket()
        self.addCleanup(s.close)

        def listen():
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", r.port))
            s.listen()
        t2 = threading.Timer(0.5, listen)
        t2.start()
        self.addCleanup(t2.join)
        self.assertIs(c.lookup("srv", ready=True, wait=20).ready, True)
        with self.assertRaises(berth.Error) as e:
            c.lookup("never", wait=1)
        self.assertEqual((e.exception.code, e.exception.status), ("not_found", 404))

    def test_watch(self):
        self.d = self.berthd()
        c = berth.Client(self.d.addr)
        w = c.watch(wait=20)
        idx, leases = next(w)
        self.assertEqual(leases, [])
        parked = []

        def change():
            # The watch waits on berthd (a parked query), not by polling.
            try:
                wait_for(lambda: self.d.get("/v1/status").json["waiters"] == 1,
                         10, "the watch to park")
                parked.append(True)
            finally:
                self.d.acquire("w1")
        t = threading.Thread(target=change)
        t.start()
        self.addCleanup(t.join)
        idx2, leases = next(w)
        self.assertEqual(parked, [True])
        self.assertGreater(idx2, idx)
        self.assertEqual([l.name for l in leases], ["w1"])
        # From a given index: the change since then, at once.
        i, leases = next(c.watch(index=idx, wait=20))
        self.assertEqual((i, [l.name for l in leases]), (idx2, ["w1"]))
        w.close()

    def test_errors(self):
        self.d = self.berthd("--max-leases", "3")
        c = berth.Client(self.d.addr)

        def err(fn, *a, **kw):
            with self.assertRaises(berth.Error) as e:
                fn(*a, **kw)
            self.assertTrue(e.exception.message)
            self.assertIn(e.exception.message, str(e.exception))
            return e.exception.status, e.exception.code

        a = c.acquire("api")
        self.assertEqual(err(c.acquire, "Bad Name"), (400, "invalid_name"))
        self.assertEqual(err(c.acquire, "api"), (409, "name_taken"))
        self.assertEqual(err(c.acquire, "x", proto="sctp"), (400, "invalid_field"))
        self.assertEqual(err(c.acquire, "x", port=a.port), (409, "port_unavailable"))
        self.assertEqual(err(c.acquire, "x", publish=True), (400, "cluster_disabled"))
        self.assertEqual(err(c.acquire, "x", pid=2), (400, "pid_not_visible"))
        self.assertEqual(err(c.acquire, "x", token="0" * 32), (403, "bad_token"))
        self.assertEqual(err(c.lookup, "nope"), (404, "not_found"))
        self.assertEqual(err(c.lookup, "api", cluster=True), (404, "cluster_disabled"))
        self.assertEqual(err(c.list, cluster=True), (404, "cluster_disabled"))
        self.assertEqual(err(c.lookup, "api", wait=1000), (400, "invalid_field"))
        self.assertEqual(err(c.renew, "api", "0" * 32), (403, "bad_token"))
        self.assertEqual(err(c.renew, "nope", "0" * 32), (404, "not_found"))
        self.assertEqual(err(c.release, "api", "f" * 32), (403, "bad_token"))
        self.assertEqual(err(c.release, "nope", "f" * 32), (404, "not_found"))
        self.assertEqual(err(c.revoke, "nope"), (404, "not_found"))
        c.acquire("b")
        c.acquire("c")
        self.assertEqual(err(c.acquire, "d"), (503, "lease_limit"))
        # No port left in a pool of one.
        p = self.unused_port(shared=True).port
        d2 = self.berthd("--range", "%d-%d" % (p, p))
        c2 = berth.Client(d2.addr)
        c2.acquire("one")
        self.assertEqual(err(c2.acquire, "two"), (503, "pool_exhausted"))

    def test_unreachable(self):
        addr = self.dead_addr()
        c = berth.Client(addr)
        with self.assertRaises(berth.Unreachable) as e:
            c.list()
        self.assertIsInstance(e.exception, berth.Error)
        self.assertEqual(e.exception.addr, addr)
        self.assertEqual(str(e.exception), "cannot reach berthd at %s: connection "
                         "refused (is berthd running?)" % addr)
        sock = os.path.join(self.tmp, "none.sock")
        with self.assertRaises(berth.Unreachable) as e:
            berth.Client("unix:" + sock).lookup("x")
        self.assertIn("cannot reach berthd at unix:%s: " % sock, str(e.exception))
        for bad in ("nope", "host:", "127.0.0.1:99999", "unix:", "[::1]"):
            with self.assertRaises(ValueError, msg=bad):
                berth.Client(bad)

    def test_addresses(self):
        sock = os.path.join(self.tmp, "b.sock")
        self.d = self.berthd("--listen", "127.0.0.1:0,unix:" + sock)
        # unix:/path
        u = berth.Client("unix:" + sock)
        lease = u.acquire("viaunix")
        self.assertEqual(u.lookup("viaunix").port, lease.port)
        u.release(lease)
        # BERTH_ADDR, and an explicit address wins over it.
        old = os.environ.get("BERTH_ADDR")
        self.addCleanup(lambda: os.environ.pop("BERTH_ADDR", None) if old is None
                        else os.environ.__setitem__("BERTH_ADDR", old))
        os.environ["BERTH_ADDR"] = "unix:" + sock
        self.assertEqual(berth.Client().addr, "unix:" + sock)
        self.assertEqual(berth.Client(self.d.addr).addr, self.d.addr)
        del os.environ["BERTH_ADDR"]
        self.assertEqual(berth.Client().addr, "127.0.0.1:62893")
        # The module-level calls use $BERTH_ADDR (from a program's start).
        p = self.spawn("import berth\nl = berth.acquire('mod')\n"
                       "print(berth.lookup('mod').port == l.port, "
                       "[x.name for x in berth.list()])\nberth.release(l)\n",
                       addr="unix:" + sock)
        out, errs = p.communicate(timeout=30)
        self.assertEqual((p.returncode, out), (0, "True ['mod']\n"), errs)
        # [V6]:PORT, where the host has IPv6 loopback.
        try:
            d6 = self.berthd("--listen", "[::1]:0")
        except Exception as e:
            print("skipped the [::1] address: %s" % str(e).splitlines()[0])
            return
        c6 = berth.Client(d6.addr)
        self.assertTrue(d6.addr.startswith("[::1]:"))
        self.assertEqual(c6.acquire("six").name, "six")
        self.assertEqual([l.name for l in c6.list()], ["six"])

    # ---- holding a lease while running -----------------------------------

    def hold(self, ttl=30):
        p = self.spawn(HOLDER, ttl)
        line = p.stdout.readline()
        self.assertTrue(line, p.stderr.read() if p.poll() is not None else "")
        port, token = line.split()
        lease = self.d.get("/v1/services/svc").json
        self.assertEqual((lease["port"], lease["pid"]), (int(port), p.pid))
        return p, int(port), token

    def test_hold_released_on_signals(self):
        self.d = self.berthd()
        for sig in (signal.SIGTERM, signal.SIGINT):
            p, port, _ = self.hold(ttl=30)
            self.assertEqual(self.d.get("/v1/services/svc").json["ttl"], 30)
            rel = self.d.metric("berth_releases_total")
            p.send_signal(sig)
            rc = p.wait(30)
            # SIGTERM: SystemExit, SIGINT: KeyboardInterrupt; once the
            # block has released, the process ends by the signal.
            self.assertEqual(rc, -sig, p.stderr.read())
            wait_for(lambda: self.gone("svc"), 1, "the lease to end at once")
            self.assertEqual(self.d.metric("berth_releases_total"), rel + 1,
                             "released, not ended by the owner's death")

    def test_hold_killed(self):
        # kill -9: no release, but the lease is owned by the process, so
        # berthd ends it as the process dies.
        self.d = self.berthd()
        p, port, _ = self.hold(ttl=30)
        deaths = self.d.metric("berth_owner_deaths_total")
        p.kill()
        p.wait(30)
        wait_for(lambda: self.gone("svc"), 5, "berthd to see the owner die")
        self.assertEqual(self.d.metric("berth_owner_deaths_total"), deaths + 1)

    def test_hold_renews(self):
        self.d = self.berthd()
        p, port, token = self.hold(ttl=2)
        first = self.d.get("/v1/services/svc").json["renewed_at"]
        wait_for(lambda: self.d.get("/v1/services/svc").json["renewed_at"] != first,
                 10, "a renewal")
        time.sleep(3)       # past the TTL: still there, renewed
        self.assertEqual(self.d.get("/v1/services/svc").json["port"], port)
        p.terminate()
        self.assertEqual(p.wait(30), -signal.SIGTERM)
        self.assertTrue(self.gone("svc"))

    def test_hold_exits_normally(self):
        self.d = self.berthd()
        rel = self.d.metric("berth_releases_total")
        p = self.spawn("import berth\nwith berth.lease('job', ttl=5) as l:\n"
                       "    print(l.port)\n")
        out, errs = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, errs)
        self.assertTrue(self.gone("job"))
        self.assertEqual(self.d.metric("berth_releases_total"), rel + 1)

    def test_hold_leaves_own_handler(self):
        # A program's own SIGTERM handler is kept (and so is its choice).
        self.d = self.berthd()
        p = self.spawn("import signal, sys, time, berth\n"
                       "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
                       "with berth.lease('own', ttl=30) as l:\n"
                       "    print(signal.getsignal(signal.SIGTERM).__name__, "
                       "flush=True)\n"
                       "    time.sleep(60)\n")
        self.assertEqual(p.stdout.readline(), "<lambda>\n")
        p.terminate()
        self.assertEqual(p.wait(30), 7)
        self.assertTrue(self.gone("own"))

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
        wait_for(lambda: "reclaimed" in self._stderr_so_far(p), 20,
                 "the holder to reclaim its lease")
        lease = self.d.get("/v1/services/svc").json
        self.assertEqual((lease["port"], lease["pid"]), (port, p.pid))
        self.assertIn("reclaimed with its token", self.d.logtext())
        r = self.d.post("/v1/services/svc/renew", {},
                        headers={"Authorization": "Bearer " + token})
        self.assertEqual(r.status, 200, r)
        p.terminate()
        self.assertEqual(p.wait(30), -signal.SIGTERM)
        self.assertTrue(self.gone("svc"))

    def _stderr_so_far(self, p):
        # The holder is still running: read what it wrote without blocking.
        fd = p.stderr.fileno()
        os.set_blocking(fd, False)
        try:
            chunk = os.read(fd, 65536).decode(errors="replace")
        except BlockingIOError:
            chunk = ""
        self._err = getattr(self, "_err", "") + chunk
        return self._err

    def test_revoked_is_not_taken_back(self):
        self.d = self.berthd()
        p, port, token = self.hold(ttl=1)
        berth.Client(self.d.addr).revoke("svc")
        wait_for(lambda: "no longer renewing" in self._stderr_so_far(p), 20,
                 "the holder to give up")
        self.assertTrue(self.gone("svc"))
        p.terminate()
        self.assertEqual(p.wait(30), -signal.SIGTERM)

    # ---- berth run --fd --------------------------------------------------

    def test_listen_fds(self):
        self.d = self.berthd()
        code = ("import os, berth\n"
                "s = berth.listen_fd('web')\n"
                "print(s.getsockname()[1] == berth.lookup('web').port, "
                "s.name, s.fileno(), "
                "'LISTEN_FDS' in os.environ, berth.listen_fds())\n")
        p = self.spawn(code, argv=[BERTH_CLI, "--addr", self.d.addr, "run",
                                   "--fd", "web", "--"])
        out, errs = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, errs)
        # fd 3, the lease's port, named; LISTEN_* taken out of the
        # environment; a second call finds nothing left.
        self.assertEqual(out, "True web 3 False []\n")
        self.assertTrue(self.gone("web"))
        # LISTEN_PID naming another process: nothing is ours.
        env = clean_env(LISTEN_PID="1", LISTEN_FDS="1", PYTHONPATH=PKG)
        r = subprocess.run([PY, "-c", "import berth; print(berth.listen_fds())"],
                           env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout, "[]\n", r.stderr)

    # ---- packaging and lint ----------------------------------------------

    def test_pip_install(self):
        for mod in ("pip", "setuptools"):
            r = subprocess.run([PY, "-c", "import " + mod], capture_output=True,
                               text=True, cwd=self.tmp)
            if r.returncode != 0:
                print("skipped pip install: %s cannot be imported under %s: %s"
                      % (mod, PY, r.stderr.strip().splitlines()[-1:]))
                return
        src = os.path.join(self.tmp, "src")
        shutil.copytree(PKG, src, ignore=shutil.ignore_patterns(
            "__pycache__", "build", "*.egg-info"))
        target = os.path.join(self.tmp, "target")
        r = subprocess.run([PY, "-m", "pip", "install", "--quiet",
                            "--no-build-isolation", "--no-index",
                            "--disable-pip-version-check", "--target", target,
                            src], capture_output=True, text=True, timeout=300,
                           cwd=self.tmp, env=clean_env(PIP_NO_CACHE_DIR="1"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([PY, "-c", "import berth; print(berth.__file__)"],
                           env=clean_env(PYTHONPATH=target), capture_output=True,
                           text=True, cwd=self.tmp)
        self.assertEqual(r.stdout.strip(), os.path.join(target, "berth",
                                                        "__init__.py"), r.stderr)

    def test_pyflakes(self):
        r = subprocess.run([PY, "-m", "pyflakes", "--version"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("skipped pyflakes: not installed for %s" % PY)
            return
        r = subprocess.run([PY, "-m", "pyflakes", PKG, os.path.abspath(__file__)],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)


if __name__ == "__main__":
    main()
