#!/usr/bin/env python3
"""Readiness end to end (docs/api.md, "ready"; berth(1): lookup --ready,
run --need, run --fd, list --probe, doctor): a real berthd and real
sockets listening, or not, on leased ports.

berthd looks at every lease once a second, and at one lease at once when
its holder renews it. Tests that need an answer now renew (the renewal's
own answer carries the lease as berthd just found it); tests of the
periodic look wait for it with a generous bound, never a tight one.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from berthtest import (TEST_ADDR, BerthTestCase, SLOWDOWN, main,
                       needs_own_berthd, wait_for)
from berthtest import clean_env
from test_cli import quiet_range
from test_api import metrics
from test_leases import have_ipv6
from test_storage import FaultCase

BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
WAIT = 10       # seconds: a generous bound for "soon"




def serve(port, host="127.0.0.1", kind=socket.SOCK_STREAM, v6only=None):
    """A socket bound to host:port (listening, for TCP); the caller closes
    it. SO_REUSEADDR as servers set it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    s.bind((host, port))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    return s


class ReadyTestCase(BerthTestCase):
    def berthd(self, *args, **kw):
        # A pool away from other test runs' daemons, whose services might
        # listen on the ports this one hands out.
        if not TEST_ADDR:
            args = tuple(quiet_range()) + args
        return super().berthd(*args, **kw)

    def grant(self, d, name, **fields):
        """Acquire name; returns the lease with its token."""
        r = d.acquire(name, **fields)
        self.assertEqual(r.status, 201, r)
        # Its port was just free; berthd cannot tell of a host elsewhere.
        self.assertIs(r.json["ready"], None if "example" in
                      fields.get("host", "") or fields.get("host") ==
                      "192.0.2.7" else False, r)
        return r.json

    def renew(self, d, lease):
        """Renew lease; returns the lease as the renewal answers it."""
        r = d.post("/v1/services/%s/renew" % lease["name"],
                   headers={"Authorization": "Bearer " + lease["token"]})
        self.assertEqual(r.status, 200, r)
        return r.json

    def ready(self, d, name):
        r = d.get("/v1/services/" + name)
        self.assertEqual(r.status, 200, r)
        return r.json["ready"]

    def listed(self, d, name):
        r = d.get("/v1/services")
        self.assertEqual(r.status, 200, r)
        return {s["name"]: s for s in r.json["services"]}[name]

    def serve(self, *args, **kw):
        s = serve(*args, **kw)
        self.addCleanup(s.close)
        return s

    def cli(self, d, *args, timeout=30):
        return subprocess.run([BERTH_CLI, "--addr", d.addr] + list(args),
                              env=clean_env(), capture_output=True,
                              text=True, timeout=timeout * SLOWDOWN)

    def in_thread(self, fn):
        """Run fn in a thread; returns a function that joins it and gives
        fn's result."""
        box = []
        t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
        t.start()

        def join():
            t.join(60 * SLOWDOWN)
            self.assertFalse(t.is_alive(), "the request never came back")
            return box[0]
        return join

    def parked(self, d, n):
        """Wait until berthd has n blocking queries parked."""
        wait_for(lambda: d.get("/v1/status").json["waiters"] >= n, WAIT,
                 "%d parked requests" % n)


class TestReadyField(ReadyTestCase):
    def test_periodic_look_sees_listen_and_close(self):
        d = self.berthd()
        lease = self.grant(d, "web")
        s = serve(lease["port"])
        try:
            wait_for(lambda: self.ready(d, "web") is True, WAIT,
                     "web to be ready")
        finally:
            s.close()
        wait_for(lambda: self.ready(d, "web") is False, WAIT,
                 "web to be not ready once its socket closed")

    def test_renewal_looks_at_once(self):
        d = self.berthd()
        lease = self.grant(d, "web")
        with serve(lease["port"]):
            self.assertIs(self.renew(d, lease)["ready"], True)
            self.assertIs(self.ready(d, "web"), True)
        self.assertIs(self.renew(d, lease)["ready"], False)
        # A re-acquire with the token is a renewal too.
        with serve(lease["port"]):
            r = d.acquire("web", token=lease["token"])
            self.assertEqual(r.status, 200, r)
            self.assertIs(r.json["ready"], True, r)

    def test_reclaim_looks_at_once(self):
        # A lapsed lease taken back with its token gets its port without
        # the bind test, since its service still listens there: so it is
        # ready at once, not false until berthd's next look.
        d = self.berthd()
        r = d.acquire("web", ttl=1)
        self.assertEqual(r.status, 201, r)
        lease = r.json
        with serve(lease["port"]):
            wait_for(lambda: d.get("/v1/services/web").status == 404, WAIT,
                     "the 1 s lease to lapse")
            r = d.acquire("web", token=lease["token"], ttl=30)
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["port"], lease["port"])
            self.assertIs(r.json["ready"], True, r)

    def test_bound_but_not_listening_is_not_ready(self):
        d = self.berthd()
        lease = self.grant(d, "web")
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", lease["port"]))
            self.assertIs(self.renew(d, lease)["ready"], False)

    def test_udp(self):
        d = self.berthd()
        lease = self.grant(d, "dns", proto="udp")
        with serve(lease["port"]):         # TCP serves no UDP lease
            self.assertIs(self.renew(d, lease)["ready"], False)
        with serve(lease["port"], kind=socket.SOCK_DGRAM):
            self.assertIs(self.renew(d, lease)["ready"], True)
        self.assertIs(self.renew(d, lease)["ready"], False)

    def test_both_needs_both(self):
        d = self.berthd()
        lease = self.grant(d, "dns", proto="both")
        with serve(lease["port"]):
            self.assertIs(self.renew(d, lease)["ready"], False)
            with serve(lease["port"], kind=socket.SOCK_DGRAM):
                self.assertIs(self.renew(d, lease)["ready"], True)

    def assertServes(self, d, lease, cases):
        """For each (address, want) of cases: with a socket on the lease's
        port at that address, a renewal finds the lease ready or not."""
        for addr, want in cases:
            # [::] without IPV6_V6ONLY takes IPv4 clients too.
            with serve(lease["port"], addr, v6only=False if addr == "::"
                       else None):
                self.assertIs(self.renew(d, lease)["ready"], want, addr)

    def test_wildcard_and_specific_addresses(self):
        d = self.berthd()
        self.assertServes(d, self.grant(d, "web"), [   # host 127.0.0.1
            ("0.0.0.0", True), ("127.0.0.2", False), ("127.0.0.1", True)])
        self.assertServes(d, self.grant(d, "other", host="127.0.0.2"), [
            ("127.0.0.2", True), ("127.0.0.1", False)])

    def test_ipv6_and_dual_stack(self):
        if not have_ipv6():
            self.skipTest("no IPv6 loopback here")
        d = self.berthd()
        self.assertServes(d, self.grant(d, "v6", host="::1"), [
            ("0.0.0.0", False), ("::", True), ("::1", True)])
        self.assertServes(d, self.grant(d, "v4"), [
            ("::", True), ("::1", False)])
        self.assertServes(d, self.grant(d, "local", host="localhost"), [
            ("::1", True), ("127.0.0.1", True), ("127.0.0.2", False)])

    def test_host_elsewhere_is_null(self):
        d = self.berthd()
        for name, host in (("named", "db.example"), ("far", "192.0.2.7")):
            lease = self.grant(d, name, host=host)
            with serve(lease["port"], "0.0.0.0"):
                self.assertIsNone(self.renew(d, lease)["ready"])
            self.assertIsNone(self.ready(d, name))
            # berthd cannot tell, so ?ready=1 does not hold it back.
            r = d.get("/v1/services/%s?ready=1&wait=30" % name)
            self.assertEqual(r.status, 200, r)
            self.assertIsNone(r.json["ready"])

    def test_list_and_lookup_show_the_change(self):
        # Lists and lookups are serialised once and kept: a change of
        # readiness found by berthd's own look (a renewal would make them
        # anew anyway) must make them anew.
        d = self.berthd()
        lease = self.grant(d, "web")
        self.grant(d, "idle")
        self.assertIs(self.listed(d, "web")["ready"], False)
        self.assertIs(self.ready(d, "web"), False)
        index = d.get("/v1/services").json["index"]
        with serve(lease["port"]):
            r = d.get("/v1/services?index=%d&wait=60" % index,
                      timeout=90 * SLOWDOWN)
            self.assertGreater(r.json["index"], index, r)
            self.assertIs(self.listed(d, "web")["ready"], True)
            self.assertIs(self.ready(d, "web"), True)
            self.assertIs(self.listed(d, "idle")["ready"], False)


class TestReadyQuery(ReadyTestCase):
    def test_not_ready_is_404(self):
        d = self.berthd()
        lease = self.grant(d, "db")
        r = d.get("/v1/services/db?ready=1")
        self.assertError(r, 404, "not_found")
        msg = r.json["error"]["message"]
        self.assertIn("registered", msg)
        self.assertIn("nothing listens", msg)
        self.assertIn(str(lease["port"]), msg)
        self.assertEqual(d.get("/v1/services/db?ready=0").status, 200)
        self.assertError(d.get("/v1/services/db?ready=2"), 400,
                         "invalid_field")
        self.assertError(d.get("/v1/services/none?ready=1"), 404,
                         "not_found")
        with serve(lease["port"]):
            self.renew(d, lease)
            r = d.get("/v1/services/db?ready=1")
            self.assertEqual(r.status, 200, r)
            self.assertIs(r.json["ready"], True)

    # A parked ?ready=1 is answered when the lease turns ready, not at its
    # deadline: by the time the test sees the lease ready, the answer is
    # out, so the socket closing then changes nothing (a request answered
    # only at its deadline would find nothing listening: 404).

    def test_wait_returns_once_something_listens(self):
        d = self.berthd()
        lease = self.grant(d, "db")
        join = self.in_thread(lambda: d.get("/v1/services/db?ready=1&wait=30",
                                            timeout=90 * SLOWDOWN))
        self.parked(d, 1)
        with serve(lease["port"]):
            wait_for(lambda: self.ready(d, "db") is True, WAIT,
                     "db to be ready")
        r = join()
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["ready"], True, r)

    def test_wait_for_a_name_and_its_service(self):
        d = self.berthd()
        join = self.in_thread(lambda: d.get("/v1/services/db?ready=1&wait=30",
                                            timeout=90 * SLOWDOWN))
        self.parked(d, 1)
        lease = self.grant(d, "db")
        # Granted, but nothing listens: it waits on (one request parked).
        self.assertEqual(d.get("/v1/status").json["waiters"], 1)
        with serve(lease["port"]):
            self.assertIs(self.renew(d, lease)["ready"], True)
        r = join()
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["ready"], True, r)

    def test_wait_times_out_with_404(self):
        d = self.berthd()
        self.grant(d, "db")
        r = d.get("/v1/services/db?ready=1&wait=1")
        self.assertError(r, 404, "not_found")
        self.assertIn("nothing listens", r.json["error"]["message"])


class TestReadyIndex(ReadyTestCase):
    def test_watch_woken_by_readiness_not_by_renewal(self):
        d = self.berthd()
        lease = self.grant(d, "web")
        index = d.get("/v1/services").json["index"]
        # A renewal moves nothing: the watch runs to its end.
        join = self.in_thread(lambda: d.get(
            "/v1/services?index=%d&wait=2" % index, timeout=60 * SLOWDOWN))
        self.parked(d, 1)
        self.renew(d, lease)
        r = join()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["index"], index, r)
        self.assertEqual(r.index, index)
        # Its service listening does wake it, and the list shows it.
        join = self.in_thread(lambda: d.get(
            "/v1/services?index=%d&wait=60" % index, timeout=90 * SLOWDOWN))
        self.parked(d, 1)
        with serve(lease["port"]):
            r = join()
        self.assertEqual(r.status, 200, r)
        self.assertGreater(r.json["index"], index, r)
        self.assertIs(r.json["services"][0]["ready"], True, r)

    @needs_own_berthd("it restarts berthd")
    def test_index_monotonic_across_restart(self):
        d = self.berthd()
        lease = self.grant(d, "web")
        index = d.get("/v1/services").json["index"]
        with serve(lease["port"]):     # found by berthd's own look
            r = d.get("/v1/services?index=%d&wait=60" % index,
                      timeout=90 * SLOWDOWN)
            self.assertIs(r.json["services"][0]["ready"], True, r)
        seen = r.index
        self.assertGreater(seen, index)
        # Nothing listens after the restart, so nothing moves the index
        # then: what it is, it was stored as.
        d.restart()
        r = d.get("/v1/services")
        self.assertGreaterEqual(r.index, seen)
        self.assertGreaterEqual(r.json["index"], seen)
        # Readiness is not stored: berthd finds it again.
        self.assertIs(self.ready(d, "web"), False)
        with serve(lease["port"]):
            wait_for(lambda: self.ready(d, "web") is True, WAIT,
                     "web to be ready after the restart")


class TestReadyDiskFull(FaultCase):
    MODE = "enospc"

    def test_no_readiness_change_while_the_disk_refuses(self):
        # A change of readiness is a change of the index, which is stored:
        # while the database takes no writes, berthd leaves readiness as
        # it was rather than fail (and roll back) a commit every second.
        d = self.start()
        a = self.granted(d, "a")
        self.fault(self.MODE)
        self.assertError(d.acquire("b"), 503, "db_unavailable")
        failures = metrics(d)[0]["berth_db_commit_failures_total"]
        with serve(a["port"]):
            time.sleep(3)       # berthd looks once a second
            self.assertEqual(
                metrics(d)[0]["berth_db_commit_failures_total"], failures)
            self.assertIs(d.get("/v1/services/a").json["ready"], False)
            self.clear()
            wait_for(lambda: d.get("/v1/services/a").json["ready"], WAIT,
                     "a to be ready once the disk takes writes")


class TestReadyCli(ReadyTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="berth-ready-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
        super().tearDown()

    def start(self, d, *args):
        p = subprocess.Popen([BERTH_CLI, "--addr", d.addr] + list(args),
                             env=clean_env(), cwd=self.dir,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def finish(self, p):
        out, err = p.communicate(timeout=60 * SLOWDOWN)
        return p.returncode, out, err

    def test_lookup_ready(self):
        d = self.berthd()
        lease = self.grant(d, "db")
        r = self.cli(d, "lookup", "db", "--ready")
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("nothing listens", r.stderr)
        self.assertEqual(r.stdout, "")
        r = self.cli(d, "lookup", "db")
        self.assertEqual(r.returncode, 0, r)
        p = self.start(d, "lookup", "db", "--wait", "60", "--ready")
        self.parked(d, 1)
        with serve(lease["port"]):
            st, out, err = self.finish(p)
        self.assertEqual(st, 0, err)
        self.assertEqual(out, "%d\n" % lease["port"])

    def test_run_need_waits_for_a_listener(self):
        d = self.berthd()
        lease = self.grant(d, "db")
        port = lease["port"]
        p = self.start(d, "run", "app", "--need", "db", "--timeout", "60",
                       "--", "sh", "-c", "echo $BERTH_DB_ADDR > ran.txt")
        self.parked(d, 1)
        self.assertIsNone(p.poll())
        self.assertFalse(os.path.exists(os.path.join(self.dir, "ran.txt")))
        with serve(port):
            st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)
        with open(os.path.join(self.dir, "ran.txt")) as f:
            self.assertEqual(f.read(), "127.0.0.1:%d\n" % port)
        line = ("berth: waiting for db (127.0.0.1:%d: nothing listens yet)"
                % port)
        self.assertEqual(err.splitlines().count(line), 1, err)

    def test_run_need_gives_up_saying_why(self):
        d = self.berthd()
        self.grant(d, "db")
        r = self.cli(d, "run", "app", "--need", "db", "--timeout", "1",
                     "--", "true")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("registered, but nothing listens", r.stderr)

    def test_run_fd_is_ready_at_once(self):
        # berth run --fd renews right after its bind, and a renewal looks
        # at once: the lease is ready before the command even runs, not
        # at berthd's next look a second later.
        d = self.berthd()
        p = self.start(d, "run", "web", "--fd", "--", "sh", "-c",
                       "echo started > started.txt; "
                       "while [ ! -e go ]; do sleep 0.02; done")
        started = os.path.join(self.dir, "started.txt")
        wait_for(lambda: os.path.exists(started), WAIT, "the command")
        self.assertIs(self.ready(d, "web"), True)
        r = d.get("/v1/services/web?ready=1")
        self.assertEqual(r.status, 200, r)
        open(os.path.join(self.dir, "go"), "w").close()
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)

    def test_list_probe(self):
        d = self.berthd()
        up = self.grant(d, "up")
        self.grant(d, "down")
        self.grant(d, "far", host="db.example")
        with serve(up["port"]):
            self.renew(d, up)
            plain = self.cli(d, "list", "--probe")
            js = self.cli(d, "--json", "list", "--probe")
            bare = self.cli(d, "--json", "list")
            api = d.get("/v1/services").json
        self.assertEqual(plain.returncode, 0, plain)
        rows = {l.split()[0]: l.split()[-1]
                for l in plain.stdout.splitlines()[1:]}
        self.assertEqual(rows, {"up": "yes", "down": "no", "far": "?"})
        self.assertEqual(js.returncode, 0, js)
        got = {s["name"]: s for s in json.loads(js.stdout)["services"]}
        self.assertEqual({n: s["ready"] for n, s in got.items()},
                         {"up": True, "down": False, "far": None})
        for s in got.values():
            self.assertIs(s["listening"], s["ready"])
        # Without --probe the objects are the API's, "ready" included.
        self.assertEqual(json.loads(bare.stdout), api)

    def test_doctor_owner_alive_nothing_listens(self):
        d = self.berthd()
        lease = self.grant(d, "idle", pid=os.getpid())
        r = self.cli(d, "doctor", "idle")
        self.assertEqual(r.returncode, 1, r)
        want = "owner alive but nothing listens on %d" % lease["port"]
        lines = [l for l in r.stdout.splitlines() if want in l]
        self.assertEqual(len(lines), 1, r)
        self.assertIn("does the service use $PORT?", lines[0])
        self.assertNotIn("berth run idle", lines[0])


if __name__ == "__main__":
    main()
