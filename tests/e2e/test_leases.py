"""End-to-end tests of the lease rules of docs/api.md against a real berthd.

Every test uses its own small, explicit pool (an offset from BASE) so that
tests running in parallel do not hand out or block each other's ports.

BASE is 50100 unless that block lies in the kernel's ephemeral port range,
where client connections (of these and other tests running in parallel) take
ports at random and would make pool ports unbindable now and then; then it is
the highest 1000-port block of 49152-65535 outside the ephemeral and reserved
ranges.
"""
import datetime
import http.client
import shutil
import socket
import subprocess
import time

from berthtest import BerthTestCase, listener, main

SPAN = 1000


def _excluded():
    """Ports the kernel may hand to clients, or keeps reserved."""
    out = set()
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
        out.update(range(lo, hi + 1))
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/sys/net/ipv4/ip_local_reserved_ports") as f:
            for part in f.read().strip().split(","):
                if part:
                    lo, _, hi = part.partition("-")
                    out.update(range(int(lo), int(hi or lo) + 1))
    except (OSError, ValueError):
        pass
    return out


def _choose_base():
    excluded = _excluded()

    def clear(base):
        return not any(p in excluded for p in range(base, base + SPAN))

    if clear(50100):
        return 50100
    for base in range(64500, 49151, -100):
        if clear(base):
            return base
    return 50100


BASE = _choose_base()


def pool(offset, n):
    """The --range argument and the list of ports of an n-port pool."""
    lo = BASE + offset
    return "--range=%d-%d" % (lo, lo + n - 1), list(range(lo, lo + n))


def have_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def v6only_listener(port):
    """A TCP listener on [::]:port that does not also cover IPv4."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::", port))
    s.listen(16)
    return s


def parse_time(text):
    """An RFC 3339 UTC timestamp as seconds since the epoch (float)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def metric(d, name):
    r = d.get("/metrics")
    assert r.status == 200, r
    for line in r.body.splitlines():
        if line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) >= 2 and (parts[0] == name or parts[0].startswith(name + "{")):
            return float(parts[1])
    raise AssertionError("metric %s not in /metrics:\n%s" % (name, r.body))


def poll(fn, timeout, step=0.05):
    """Call fn until it returns true or timeout passes; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] == "Z"


class NameTakenSaysWho(BerthTestCase):
    """409 name_taken names the holder and how its lease will end, so the
    hint it gives is true for that lease."""

    def message(self, d, name):
        r = d.acquire(name)
        self.assertError(r, 409, "name_taken")
        return r.json["error"]["message"]

    def test_owner_process_named(self):
        d = self.berthd()
        proc = subprocess.Popen(["sleep", "60"])
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.assertEqual(d.acquire("owned", pid=proc.pid).status, 201)
        msg = self.message(d, "owned")
        self.assertIn("owner pid %d (sleep)" % proc.pid, msg)
        self.assertIn("ends when that process exits", msg)
        self.assertRegex(msg, r"\d+s old")

    def test_ttl_says_when_it_ends(self):
        d = self.berthd()
        self.assertEqual(d.acquire("timed", ttl=600).status, 201)
        msg = self.message(d, "timed")
        self.assertIn("no owner process", msg)
        self.assertRegex(msg, r"ends in (599s|600s|10m|9m)")
        self.assertNotIn("wait for it to end", msg)

    def test_no_ttl_no_owner_points_at_revoke(self):
        d = self.berthd()
        self.assertEqual(d.acquire("forever").status, 201)
        msg = self.message(d, "forever")
        self.assertIn("no TTL", msg)
        self.assertIn("berth revoke forever", msg)
        self.assertNotIn("wait for it to end", msg)


class LeaseRules(BerthTestCase):
    def setUp(self):
        super().setUp()
        self.socks = []
        self.children = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        for c in self.children:
            if c.poll() is None:
                c.kill()
            c.wait()
        super().tearDown()
        for d in self.daemons:
            shutil.rmtree(d.tmp, ignore_errors=True)

    def hold(self, sock):
        self.socks.append(sock)
        return sock

    def child(self):
        c = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
        self.children.append(c)
        return c

    def acquired(self, d, name, token=None, status=201, **fields):
        r = d.acquire(name, token=token, **fields)
        self.assertEqual(r.status, status, r)
        return r.json

    def listed(self, d):
        r = d.get("/v1/services")
        self.assertEqual(r.status, 200, r)
        return {s["name"]: s for s in r.json["services"]}

    # -- ports: distinct, in the pool, names unique ----------------------

    def test_different_names_get_different_pool_ports(self):
        rng, ports = pool(0, 10)
        d = self.berthd(rng)
        names = ["svc%d" % i for i in range(6)]
        leases = {n: self.acquired(d, n) for n in names}
        got = [leases[n]["port"] for n in names]
        self.assertEqual(len(set(got)), len(got), leases)
        for p in got:
            self.assertIn(p, ports)
        listed = self.listed(d)
        for n in names:
            self.assertEqual(listed[n]["port"], leases[n]["port"])
            self.assertNotIn("token", listed[n])
            look = d.get("/v1/services/" + n)
            self.assertEqual(look.status, 200, look)
            self.assertEqual(look.json["port"], leases[n]["port"])

    def test_name_unique_among_live_leases(self):
        rng, ports = pool(240, 5)
        d = self.berthd(rng)
        first = self.acquired(d, "api")
        self.assertError(d.acquire("api"), 409, "name_taken")
        self.assertError(d.acquire("api", port=ports[-1]), 409, "name_taken")
        look = d.get("/v1/services/api")
        self.assertEqual(look.json["port"], first["port"])
        self.assertEqual(len(self.listed(d)), 1)

    # -- ports other processes use are skipped --------------------------

    def test_tcp_listeners_block_ports(self):
        rng, ports = pool(10, 5)
        for p in ports[:-1]:
            self.hold(listener(p))
        d = self.berthd(rng)
        lease = self.acquired(d, "one")
        self.assertEqual(lease["port"], ports[-1])
        self.assertError(d.acquire("two"), 503, "pool_exhausted")

    def test_tcp_listeners_block_whole_pool(self):
        rng, ports = pool(250, 2)
        for p in ports:
            self.hold(listener(p))
        d = self.berthd(rng)
        self.assertError(d.acquire("x"), 503, "pool_exhausted")

    def test_udp_socket_blocks_udp_and_both(self):
        rng, ports = pool(20, 1)
        self.hold(listener(ports[0], kind=socket.SOCK_DGRAM))
        d = self.berthd(rng)
        self.assertError(d.acquire("u", proto="udp"), 503, "pool_exhausted")
        self.assertError(d.acquire("b", proto="both"), 503, "pool_exhausted")
        # a UDP socket does not hold the TCP port
        lease = self.acquired(d, "t", proto="tcp")
        self.assertEqual(lease["port"], ports[0])

    def test_udp_socket_skipped_in_bigger_pool(self):
        rng, ports = pool(260, 3)
        self.hold(listener(ports[0], kind=socket.SOCK_DGRAM))
        self.hold(listener(ports[1], kind=socket.SOCK_DGRAM))
        d = self.berthd(rng)
        self.assertEqual(self.acquired(d, "u", proto="udp")["port"], ports[2])
        self.assertError(d.acquire("b", proto="both"), 503, "pool_exhausted")

    def test_tcp_listener_does_not_block_udp(self):
        rng, ports = pool(40, 1)
        self.hold(listener(ports[0]))
        d = self.berthd(rng)
        self.assertError(d.acquire("t"), 503, "pool_exhausted")
        self.assertError(d.acquire("b", proto="both"), 503, "pool_exhausted")
        lease = self.acquired(d, "u", proto="udp")
        self.assertEqual(lease["port"], ports[0])
        self.assertEqual(lease["proto"], "udp")

    def test_ipv6_only_listener_blocks(self):
        if not have_ipv6():
            self.skipTest("no IPv6 on this host")
        rng, ports = pool(30, 3)
        self.hold(v6only_listener(ports[0]))
        self.hold(v6only_listener(ports[1]))
        d = self.berthd(rng)
        self.assertEqual(self.acquired(d, "v6")["port"], ports[2])
        self.assertError(d.acquire("more"), 503, "pool_exhausted")
        self.assertError(d.acquire("named", port=ports[0]), 409, "port_unavailable")

    # -- explicit ports ---------------------------------------------------

    def test_explicit_port(self):
        rng, ports = pool(50, 5)
        outside = BASE + 990
        self.hold(listener(ports[3]))
        d = self.berthd(rng)
        self.assertEqual(self.acquired(d, "a", port=ports[2])["port"], ports[2])
        # outside the pool is fine when named explicitly
        self.assertEqual(self.acquired(d, "b", port=outside)["port"], outside)
        self.assertEqual(d.get("/v1/services/b").json["port"], outside)
        # held by another lease
        self.assertError(d.acquire("c", port=ports[2]), 409, "port_unavailable")
        self.assertError(d.acquire("c", port=outside), 409, "port_unavailable")
        # held by another process
        self.assertError(d.acquire("c", port=ports[3]), 409, "port_unavailable")
        self.assertError(d.get("/v1/services/c"), 404, "not_found")

    def test_explicit_port_udp_holder(self):
        rng, ports = pool(270, 2)
        self.hold(listener(ports[0], kind=socket.SOCK_DGRAM))
        d = self.berthd(rng)
        self.assertError(d.acquire("u", port=ports[0], proto="udp"), 409,
                         "port_unavailable")
        self.assertError(d.acquire("b", port=ports[0], proto="both"), 409,
                         "port_unavailable")
        self.assertEqual(self.acquired(d, "t", port=ports[0])["port"], ports[0])

    # -- sticky ports -----------------------------------------------------

    def test_sticky_after_release(self):
        rng, ports = pool(60, 10)
        d = self.berthd(rng)
        first = {}
        for n in ("web", "db", "cache"):
            first[n] = self.acquired(d, n)
        for n in ("web", "db", "cache"):
            self.assertEqual(d.release(n, first[n]["token"]).status, 204)
        self.acquired(d, "newcomer")
        for n in ("cache", "web", "db"):
            again = self.acquired(d, n)
            self.assertEqual(again["port"], first[n]["port"], n)
            self.assertNotEqual(again["token"], first[n]["token"])

    def test_sticky_after_restart(self):
        rng, ports = pool(70, 3)
        d = self.berthd(rng)
        first = self.acquired(d, "svc")
        self.assertEqual(d.release("svc", first["token"]).status, 204)
        d.restart()
        # the released port still cools after the restart: another name
        # does not get it while other ports are free
        other = self.acquired(d, "other")
        self.assertNotEqual(other["port"], first["port"])
        again = self.acquired(d, "svc")
        self.assertEqual(again["port"], first["port"])

    def test_sticky_port_busy_gives_another(self):
        rng, ports = pool(230, 3)
        d = self.berthd(rng)
        first = self.acquired(d, "svc")
        self.assertEqual(d.release("svc", first["token"]).status, 204)
        self.hold(listener(first["port"]))
        again = self.acquired(d, "svc")
        self.assertNotEqual(again["port"], first["port"])
        self.assertIn(again["port"], ports)

    # -- no back-to-back reuse ---------------------------------------------

    def test_no_back_to_back_reuse(self):
        rng, ports = pool(80, 3)
        d = self.berthd(rng)  # default reuse delay: 60 s
        a = self.acquired(d, "a")
        self.assertEqual(d.release("a", a["token"]).status, 204)
        b = self.acquired(d, "b")
        self.assertNotEqual(b["port"], a["port"])
        c = self.acquired(d, "c")
        self.assertNotEqual(c["port"], a["port"])
        # no other free port now: the cooling one is handed out
        e = self.acquired(d, "e")
        self.assertEqual(e["port"], a["port"])
        self.assertEqual(len({b["port"], c["port"], e["port"]}), 3)
        self.assertError(d.acquire("f"), 503, "pool_exhausted")

    def test_no_back_to_back_reuse_over_sticky(self):
        """A port another name just freed is not the sticky port right away."""
        rng, ports = pool(90, 3)
        d = self.berthd(rng)
        b = self.acquired(d, "b")
        self.assertEqual(d.release("b", b["token"]).status, 204)
        a = self.acquired(d, "a", port=b["port"])
        self.assertEqual(a["port"], b["port"])
        self.assertEqual(d.release("a", a["token"]).status, 204)
        again = self.acquired(d, "b")
        self.assertNotEqual(again["port"], b["port"])

    def test_reuse_delay_elapses(self):
        rng, ports = pool(100, 3)
        d = self.berthd(rng, "--reuse-delay", "1")
        b = self.acquired(d, "b")
        self.assertEqual(d.release("b", b["token"]).status, 204)
        a = self.acquired(d, "a", port=b["port"])
        self.assertEqual(d.release("a", a["token"]).status, 204)
        time.sleep(1.5)
        # the delay has passed: b's sticky port may go back to b even
        # though a freed it and other ports are free
        again = self.acquired(d, "b")
        self.assertEqual(again["port"], b["port"])

    def test_reuse_delay_elapses_fallback_order(self):
        rng, ports = pool(280, 2)
        d = self.berthd(rng, "--reuse-delay", "1")
        a = self.acquired(d, "a")
        self.assertEqual(d.release("a", a["token"]).status, 204)
        time.sleep(1.5)
        b = self.acquired(d, "b")
        c = self.acquired(d, "c")
        self.assertEqual({b["port"], c["port"]}, set(ports))

    # -- TTL ----------------------------------------------------------------

    def test_ttl_expiry(self):
        rng, ports = pool(110, 2)
        d = self.berthd(rng)
        before = metric(d, "berth_expirations_total")
        t0 = time.monotonic()
        lease = self.acquired(d, "short", ttl=1)
        self.assertEqual(lease["ttl"], 1)
        self.assertIsNotNone(lease["expires_at"])
        self.assertTrue(poll(lambda: d.get("/v1/services/short").status == 404, 3.0))
        self.assertNotIn("short", self.listed(d))
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertTrue(poll(lambda: metric(d, "berth_expirations_total") > before, 3.0))
        st = d.get("/v1/status").json
        self.assertEqual(st["pool"]["free"], st["pool"]["size"], st)
        # the port is free: another name can name it
        self.assertEqual(self.acquired(d, "next", port=lease["port"])["port"],
                         lease["port"])
        # and the old token is dead
        self.assertError(d.release("short", lease["token"]), 404, "not_found")

    def test_renew_extends_ttl(self):
        rng, ports = pool(120, 2)
        d = self.berthd(rng)
        lease = self.acquired(d, "r", ttl=1)
        auth = {"Authorization": "Bearer " + lease["token"]}
        last = parse_time(lease["expires_at"])
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            r = d.post("/v1/services/r/renew", headers=auth)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["port"], lease["port"])
            self.assertNotIn("token", r.json)
            self.assertGreaterEqual(parse_time(r.json["expires_at"]), last)
            last = parse_time(r.json["expires_at"])
            self.assertEqual(d.get("/v1/services/r").status, 200)
            time.sleep(0.3)
        # with a new ttl in the body
        r = d.post("/v1/services/r/renew", {"ttl": 3}, headers=auth)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["ttl"], 3)
        self.assertGreater(parse_time(r.json["expires_at"]), time.time() + 1)
        r = d.post("/v1/services/r/renew", {"ttl": 1}, headers=auth)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(poll(lambda: d.get("/v1/services/r").status == 404, 3.0))

    def _poll_around_expiry(self, d, name, until):
        """Look up and list name as fast as possible until `until` (epoch);
        return [(request start time, what showed it)]."""
        seen = []
        conn = http.client.HTTPConnection(d.host, d.port, timeout=10)
        try:
            while time.time() < until:
                t = time.time()
                r = d.get("/v1/services/" + name, conn=conn)
                if r.status == 200:
                    seen.append((t, "lookup"))
                t = time.time()
                r = d.get("/v1/services", conn=conn)
                if any(s["name"] == name for s in r.json["services"]):
                    seen.append((t, "list"))
        finally:
            conn.close()
        return seen

    def test_ttl_lease_never_returned_after_expiry(self):
        rng, ports = pool(130, 2)
        d = self.berthd(rng)
        lease = self.acquired(d, "brief", ttl=1)
        t_recv = time.time()
        # berthd set expires_at before it answered: it is at most t_recv + 1
        deadline = t_recv + 1.0
        seen = self._poll_around_expiry(d, "brief", t_recv + 1.6)
        late = [(round(t - deadline, 3), how) for t, how in seen if t > deadline]
        if late:
            self.fail("lease (ttl 1) shown %d times after its TTL passed, "
                      "from +%.3fs to +%.3fs" % (len(late), late[0][0], late[-1][0]))

    def test_ttl_lease_never_returned_after_expires_at(self):
        rng, ports = pool(140, 2)
        d = self.berthd(rng)
        lease = self.acquired(d, "brief", ttl=1)
        t_recv = time.time()
        stated = parse_time(lease["expires_at"])
        seen = self._poll_around_expiry(d, "brief", t_recv + 1.6)
        late = [(round(t - stated, 3), how) for t, how in seen if t > stated]
        if late:
            self.fail("lease (ttl 1) shown %d times after its expires_at %s, "
                      "from +%.3fs to +%.3fs" % (len(late), lease["expires_at"],
                                                 late[0][0], late[-1][0]))

    # -- owner death --------------------------------------------------------

    def test_owner_death_ends_lease(self):
        rng, ports = pool(150, 2)
        d = self.berthd(rng)
        c = self.child()
        lease = self.acquired(d, "owned", pid=c.pid)
        self.assertEqual(lease["pid"], c.pid)
        self.assertEqual(d.get("/v1/services/owned").json["pid"], c.pid)
        time.sleep(0.3)
        self.assertEqual(d.get("/v1/services/owned").status, 200)
        c.kill()
        c.wait()
        t0 = time.monotonic()
        self.assertTrue(poll(lambda: d.get("/v1/services/owned").status == 404, 5.0),
                        "lease of a dead owner still there after 5 s")
        self.assertNotIn("owned", self.listed(d))
        self.assertLess(time.monotonic() - t0, 5.0)
        # its port is free again: another name can name it
        self.assertEqual(self.acquired(d, "next", port=lease["port"])["port"],
                         lease["port"])

    def test_pid_not_visible(self):
        rng, ports = pool(160, 2)
        d = self.berthd(rng)
        c = subprocess.Popen(["true"])
        c.wait()
        self.assertError(d.acquire("ghost", pid=c.pid), 400, "pid_not_visible")
        self.assertError(d.get("/v1/services/ghost"), 404, "not_found")

    def test_pid_of_zombie_not_visible(self):
        """An exited (not yet reaped) process would make a lease that dies at once."""
        rng, ports = pool(290, 2)
        d = self.berthd(rng)
        c = self.child()
        c.kill()
        self.assertTrue(poll(lambda: is_zombie(c.pid), 3.0))
        r = d.acquire("zombie", pid=c.pid)
        self.assertError(r, 400, "pid_not_visible")

    # -- takeover of a dead holder's name -----------------------------------

    def test_takeover_after_ttl(self):
        rng, ports = pool(170, 3)
        d = self.berthd(rng)
        old = self.acquired(d, "svc", ttl=1)
        time.sleep(1.1)
        new = self.acquired(d, "svc")  # no token: 201
        self.assertNotEqual(new["token"], old["token"])
        self.assertEqual(new["ttl"], 0)
        self.assertEqual(new["port"], old["port"])  # sticky
        self.assertError(d.release("svc", old["token"]), 403, "bad_token")
        self.assertEqual(d.release("svc", new["token"]).status, 204)

    def test_takeover_after_owner_death(self):
        rng, ports = pool(180, 3)
        d = self.berthd(rng)
        c = self.child()
        old = self.acquired(d, "svc", pid=c.pid)
        self.assertError(d.acquire("svc"), 409, "name_taken")
        c.kill()
        c.wait()
        new = self.acquired(d, "svc")  # right away, no token: 201
        self.assertNotEqual(new["token"], old["token"])
        self.assertIsNone(new["pid"])
        self.assertEqual(new["port"], old["port"])
        time.sleep(1.5)  # the reaper must not end the new lease
        look = d.get("/v1/services/svc")
        self.assertEqual(look.status, 200, look)
        self.assertEqual(look.json["port"], new["port"])
        self.assertEqual(d.release("svc", new["token"]).status, 204)

    def test_takeover_of_zombie_owner(self):
        rng, ports = pool(300, 3)
        d = self.berthd(rng)
        c = self.child()
        old = self.acquired(d, "svc", pid=c.pid)
        c.kill()  # not reaped: a zombie has exited all the same
        self.assertTrue(poll(lambda: is_zombie(c.pid), 3.0))
        new = self.acquired(d, "svc")
        self.assertNotEqual(new["token"], old["token"])

    # -- idempotent re-acquire ------------------------------------------------

    def test_reacquire_with_token_is_idempotent(self):
        rng, ports = pool(190, 5)
        d = self.berthd(rng)
        first = self.acquired(d, "idem", ttl=3)
        auth_token = first["token"]
        time.sleep(1.1)
        again = self.acquired(d, "idem", token=auth_token, status=200)
        self.assertEqual(again["port"], first["port"])
        self.assertEqual(again["token"], first["token"])
        self.assertEqual(again["created_at"], first["created_at"])
        # renewed: the expiry moved on
        self.assertGreater(parse_time(again["expires_at"]),
                           parse_time(first["expires_at"]))
        self.assertEqual(len(self.listed(d)), 1)
        third = self.acquired(d, "idem", token=auth_token, status=200)
        self.assertEqual(third["port"], first["port"])
        self.assertEqual(d.release("idem", auth_token).status, 204)

    # -- pool exhausted -------------------------------------------------------

    def test_pool_exhausted(self):
        rng, ports = pool(200, 2)
        d = self.berthd(rng)
        a = self.acquired(d, "a")
        b = self.acquired(d, "b")
        self.assertEqual({a["port"], b["port"]}, set(ports))
        self.assertError(d.acquire("c"), 503, "pool_exhausted")
        self.assertEqual(d.release("a", a["token"]).status, 204)
        c = self.acquired(d, "c")
        self.assertEqual(c["port"], a["port"])
        self.assertError(d.acquire("e"), 503, "pool_exhausted")

    # -- proto ------------------------------------------------------------------

    def test_proto_accepted_and_echoed(self):
        rng, ports = pool(210, 5)
        d = self.berthd(rng)
        self.assertEqual(self.acquired(d, "t")["proto"], "tcp")
        for proto in ("tcp", "udp", "both"):
            name = "p-" + proto
            lease = self.acquired(d, name, proto=proto)
            self.assertEqual(lease["proto"], proto)
            self.assertEqual(d.get("/v1/services/" + name).json["proto"], proto)
            self.assertEqual(self.listed(d)[name]["proto"], proto)

    # -- durability across kill -9 ------------------------------------------------

    def test_restart_keeps_leases_and_rules(self):
        rng, ports = pool(220, 4)
        d = self.berthd(rng)
        c = self.child()
        a = self.acquired(d, "a")
        b = self.acquired(d, "b", proto="udp", ttl=60)
        o = self.acquired(d, "owned", pid=c.pid)
        short = self.acquired(d, "short", ttl=1)
        d.restart()
        time.sleep(max(0.0, parse_time(short["expires_at"]) + 1.0 - time.time()))
        listed = self.listed(d)
        self.assertEqual(sorted(listed), ["a", "b", "owned"])
        for lease in (a, b, o):
            look = d.get("/v1/services/" + lease["name"])
            self.assertEqual(look.status, 200, look)
            self.assertEqual(look.json["port"], lease["port"])
            self.assertEqual(look.json["proto"], lease["proto"])
        self.assertEqual(listed["owned"]["pid"], c.pid)
        # names still taken; the tokens still work
        self.assertError(d.acquire("a"), 409, "name_taken")
        again = self.acquired(d, "b", token=b["token"], status=200)
        self.assertEqual((again["port"], again["token"]), (b["port"], b["token"]))
        # no port is held twice: the only port left is short's
        n = self.acquired(d, "n")
        self.assertNotIn(n["port"], {a["port"], b["port"], o["port"]})
        self.assertError(d.acquire("m"), 503, "pool_exhausted")
        # the owner is still watched after the restart
        c.kill()
        c.wait()
        self.assertTrue(poll(lambda: d.get("/v1/services/owned").status == 404, 5.0))
        self.assertEqual(d.release("a", a["token"]).status, 204)
        self.assertError(d.get("/v1/services/a"), 404, "not_found")
        # a release survives a restart too
        d.restart()
        self.assertNotIn("a", self.listed(d))
        self.assertEqual(self.listed(d)["b"]["port"], b["port"])
        self.assertEqual(d.release("b", b["token"]).status, 204)


if __name__ == "__main__":
    main()
