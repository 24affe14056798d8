"""Crash safety: acknowledged leases survive SIGKILL (docs/durability.md).

Several writer threads acquire, renew, re-acquire and release leases
concurrently while the test SIGKILLs berthd at a random moment; berthd then
restarts on the same database and the same unix socket, and the test checks
the registry against what the clients were told:

  - every lease whose 201 (or 200) reached a client, and whose release was
    not acknowledged, is back with the same port, its token still renews it
    (200), and GET /v1/services/NAME finds it;
  - every lease whose release (204) was acknowledged is gone;
  - no two live leases share a port;
  - no lease exists that no client ever asked for, and none is listed past
    its expires_at.

A request whose answer did not reach the client (the kill came first) may or
may not have been committed; the test accepts either outcome for it, learns
which one from the restarted daemon, and from then on holds berthd to it.
Leases are carried across rounds, so most of them go through many kills.

Every fourth round (rounds 3, 7, 11, ...) kills berthd in the middle of a
burst of concurrent releases instead of a mixed load.

Rounds: BERTH_CRASH_ROUNDS (default 12, about 10 s here); writer threads:
BERTH_CRASH_WRITERS (default 6); BERTH_CRASH_SEED replays a run (the seed is
printed). Per-round figures go to stdout (the .log file under make check).
On a violation the temp directory with the database and berthd's log is kept
and its path printed.

Soak (50 rounds), from a build directory:

    BERTH_CRASH_ROUNDS=50 make check TESTS=tests/e2e/test_crash.py

or directly:

    BERTH_CRASH_ROUNDS=50 BERTHD=$BUILD/src/berthd \\
        PYTHONPATH=$SRCDIR/tests/e2e python3 $SRCDIR/tests/e2e/test_crash.py -v
"""

import http.client
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from datetime import datetime

from berthtest import (BerthTestCase, UnixHTTPConnection, main,
                       needs_own_berthd)

ROUNDS = int(os.environ.get("BERTH_CRASH_ROUNDS", "12"))
WRITERS = int(os.environ.get("BERTH_CRASH_WRITERS", "6"))
SEED = os.environ.get("BERTH_CRASH_SEED")

LONG_TTL = 600          # never expires during the test: must survive
SHORT_TTL = 2           # may legitimately expire: presence not required
CARRY = 120             # token-held leases carried into the next round
BURST_PER_WRITER = 25   # leases each writer acquires before a release burst
KILL_MIN, KILL_MAX = 0.05, 0.5  # kill moment in a mixed round, seconds
MAX_NEW = 2400          # acquires per mixed round, so the default pool
                        # (4536 ports here) never runs dry on a fast host

# Lease states in the test's model of the registry.
LIVE = "live"                   # creation acknowledged, no release acknowledged
MAYBE_CREATED = "maybe-created" # acquire sent, answer lost
MAYBE_RELEASED = "maybe-released"  # release sent, answer lost
ENDED = "ended"                 # released (acknowledged) or observed gone


class Lease:
    __slots__ = ("name", "port", "token", "ttl", "state", "history")

    def __init__(self, name, ttl):
        self.name = name
        self.port = None
        self.token = None
        self.ttl = ttl
        self.state = MAYBE_CREATED
        self.history = []       # (round, event) for violation reports

    @property
    def may_expire(self):
        return 0 < self.ttl < LONG_TTL

    def note(self, rnd, event):
        self.history.append("r%s %s" % (rnd, event))


def parse_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Writer(threading.Thread):
    """One client thread: its own keep-alive connection, its own leases.

    It stops at the first transport error (the kill); the operation in flight
    then is recorded as unanswered, never as acknowledged.
    """

    def __init__(self, idx, rnd, sockpath, owned, rng, burst=None):
        super().__init__(name="writer-%d" % idx, daemon=True)
        self.idx = idx
        self.rnd = rnd
        self.sockpath = sockpath
        self.owned = owned          # Lease objects this thread may touch
        self.rng = rng
        self.burst = burst          # None: mixed load; else a Barrier
        self.conn = None
        self.seq = 0
        self.counts = dict(acquired=0, renewed=0, reacquired=0, released=0,
                           unanswered=0)
        self.problems = []          # unexpected answers (berthd was alive)
        self.released_at_kill = None

    def request(self, method, path, body=None, token=None):
        if self.conn is None:
            self.conn = UnixHTTPConnection(self.sockpath, timeout=15)
        hdrs = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = "Bearer " + token
        self.conn.request(method, path, body=data, headers=hdrs)
        r = self.conn.getresponse()
        payload = r.read()
        return r.status, (json.loads(payload) if payload else None)

    def problem(self, lease, what, status, body):
        msg = "round %d: %s %s answered %s %s" % (self.rnd, what, lease.name,
                                                  status, body)
        self.problems.append(msg)
        lease.note(self.rnd, "%s -> %s (unexpected)" % (what, status))

    def live_long(self):
        return [l for l in self.owned if l.state == LIVE and not l.may_expire]

    def acquire(self, ttl):
        self.seq += 1
        lease = Lease("c%d-%d-%d" % (self.rnd, self.idx, self.seq), ttl)
        self.owned.append(lease)
        lease.note(self.rnd, "acquire sent")
        body = {"name": lease.name}
        if ttl:
            body["ttl"] = ttl
        st, js = self.request("POST", "/v1/services", body)
        if st == 201 and js.get("token") and js.get("name") == lease.name:
            lease.port, lease.token, lease.state = js["port"], js["token"], LIVE
            lease.note(self.rnd, "acquire 201 port %d" % lease.port)
            self.counts["acquired"] += 1
        else:
            lease.state = ENDED
            self.problem(lease, "acquire", st, js)

    def renew(self, lease):
        lease.note(self.rnd, "renew sent")
        body = {"ttl": lease.ttl} if lease.ttl else None
        st, js = self.request("POST", "/v1/services/%s/renew" % lease.name,
                              body, token=lease.token)
        if st == 200 and js.get("port") == lease.port:
            lease.note(self.rnd, "renew 200")
            self.counts["renewed"] += 1
        else:
            self.problem(lease, "renew", st, js)

    def reacquire(self, lease):
        lease.note(self.rnd, "re-acquire sent")
        body = {"name": lease.name}
        if lease.ttl:
            body["ttl"] = lease.ttl
        st, js = self.request("POST", "/v1/services", body, token=lease.token)
        if st == 200 and js.get("port") == lease.port:
            lease.note(self.rnd, "re-acquire 200")
            self.counts["reacquired"] += 1
        else:
            self.problem(lease, "re-acquire with token", st, js)

    def release(self, lease):
        lease.state = MAYBE_RELEASED
        lease.note(self.rnd, "release sent")
        st, js = self.request("DELETE", "/v1/services/" + lease.name,
                              token=lease.token)
        if st == 204:
            lease.state = ENDED
            lease.note(self.rnd, "release 204")
            self.counts["released"] += 1
        else:
            lease.state = LIVE
            self.problem(lease, "release", st, js)

    def step(self):
        """One random operation of the mixed load."""
        r = self.rng.random()
        mine = self.live_long()
        if self.counts["acquired"] >= MAX_NEW // WRITERS:
            if not mine:
                self.request("GET", "/v1/health")
                return
            r = 0.55 + r * 0.45
        if r < 0.55 or not mine:
            t = self.rng.random()
            self.acquire(0 if t < 0.4 else LONG_TTL if t < 0.85 else SHORT_TTL)
        elif r < 0.70:
            self.renew(self.rng.choice(mine))
        elif r < 0.80:
            self.reacquire(self.rng.choice(mine))
        else:
            self.release(self.rng.choice(mine))

    def run(self):
        try:
            if self.burst is None:
                while True:
                    self.step()
            else:
                for _ in range(BURST_PER_WRITER):
                    self.acquire(0 if self.rng.random() < 0.5 else LONG_TTL)
                self.burst.wait(30)
                victims = self.live_long()
                self.rng.shuffle(victims)
                for lease in victims:
                    self.release(lease)
                self.released_at_kill = "all %d" % len(victims)
        except (OSError, http.client.HTTPException, ValueError,
                threading.BrokenBarrierError):
            # The daemon died under us: whatever was in flight is
            # unanswered. Its state already says so (MAYBE_CREATED for
            # an acquire, MAYBE_RELEASED for a release; a renew or
            # re-acquire cannot end a lease, so LIVE stays right).
            self.counts["unanswered"] += 1
            if self.burst is not None and self.released_at_kill is None:
                self.released_at_kill = self.counts["released"]
        finally:
            if self.conn is not None:
                self.conn.close()


@needs_own_berthd("it kills berthd")
class CrashSafetyTest(BerthTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="berth-crash-")
        self.sockpath = os.path.join(self.tmp, "berth.sock")
        self.violations = []
        self.leases = {}        # name -> Lease, every name ever sent

    def tearDown(self):
        super().tearDown()
        if self.violations:
            print("keeping %s (database and berthd log)" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def violate(self, rnd, lease, msg):
        hist = "; ".join(lease.history[-6:]) if lease else ""
        self.violations.append("round %s: %s%s" % (
            rnd, msg, (" [history: %s]" % hist) if hist else ""))

    def check(self, d, rnd):
        """Hold the restarted daemon to everything the clients were told.

        Returns (listed, checked): live leases listed, acknowledged leases
        verified present with port and token.
        """
        self.resolved = dict.fromkeys(("acquire-committed", "acquire-lost",
                                       "release-committed", "release-lost"), 0)
        before = time.time()
        r = d.get("/v1/services")
        self.assertEqual(r.status, 200, r)
        listed = {s["name"]: s for s in r.json["services"]}

        # No port held twice.
        by_port = {}
        for s in listed.values():
            by_port.setdefault(s["port"], []).append(s["name"])
            if "token" in s:
                self.violate(rnd, None, "list shows the token of %s" % s["name"])
            # A lease past its TTL is never listed (expires_at has ms; 1 s
            # slack for the time between our clock read and berthd's).
            if s.get("expires_at") and parse_time(s["expires_at"]) < before - 1:
                self.violate(rnd, self.leases.get(s["name"]),
                             "%s listed past its expires_at %s"
                             % (s["name"], s["expires_at"]))
        for port, names in by_port.items():
            if len(names) > 1:
                self.violate(rnd, None, "port %d held by %s" % (port, names))

        # Nothing no client asked for.
        for name in listed:
            if name not in self.leases:
                self.violate(rnd, None, "phantom lease %s (never requested)"
                             % name)

        must_live = [l for l in self.leases.values()
                     if l.state == LIVE and not l.may_expire]
        checked = 0
        for lease in self.leases.values():
            s = listed.get(lease.name)
            if lease.state == LIVE:
                if s is None:
                    if lease.may_expire:
                        lease.state = ENDED     # expired; must stay gone
                        lease.note(rnd, "gone (ttl %d)" % lease.ttl)
                    else:
                        self.violate(rnd, lease, "acknowledged lease %s "
                                     "(port %d) missing after restart"
                                     % (lease.name, lease.port))
                        lease.state = ENDED     # report once
                    continue
                if s["port"] != lease.port:
                    self.violate(rnd, lease, "%s acknowledged with port %d, "
                                 "listed with port %d"
                                 % (lease.name, lease.port, s["port"]))
                    continue
                if lease.may_expire:
                    continue
                # Lookup and token: both must still work after the crash.
                g = d.get("/v1/services/" + lease.name)
                if g.status != 200 or g.json.get("port") != lease.port:
                    self.violate(rnd, lease, "GET %s after restart: %r"
                                 % (lease.name, g))
                body = {"ttl": lease.ttl} if lease.ttl else None
                rn = d.post("/v1/services/%s/renew" % lease.name, body,
                            headers={"Authorization": "Bearer " + lease.token})
                if rn.status != 200 or rn.json.get("port") != lease.port:
                    self.violate(rnd, lease, "renew %s with its acknowledged "
                                 "token after restart: %r" % (lease.name, rn))
                else:
                    checked += 1
            elif lease.state == ENDED:
                if s is not None:
                    self.violate(rnd, lease, "%s is listed (port %d) although "
                                 "it ended (release acknowledged or seen gone)"
                                 % (lease.name, s["port"]))
            elif lease.state == MAYBE_RELEASED:
                # The release may or may not have been committed.
                if s is None:
                    lease.state = ENDED
                    lease.note(rnd, "release committed (seen gone)")
                    self.resolved["release-committed"] += 1
                elif s["port"] != lease.port:
                    self.violate(rnd, lease, "%s acknowledged with port %d, "
                                 "listed with port %d after an unanswered "
                                 "release" % (lease.name, lease.port, s["port"]))
                else:
                    lease.state = LIVE
                    lease.note(rnd, "release not committed (still listed)")
                    self.resolved["release-lost"] += 1
            elif lease.state == MAYBE_CREATED:
                # Committed without the 201 reaching the client, or not
                # committed at all: both are fine. An orphan (no token
                # known) is revoked over the unix socket as admin.
                if s is None:
                    lease.state = ENDED
                    lease.note(rnd, "acquire not committed")
                    self.resolved["acquire-lost"] += 1
                else:
                    rv = d.delete("/v1/services/%s?force=1" % lease.name)
                    if rv.status != 204:
                        self.violate(rnd, lease, "admin revoke of %s: %r"
                                     % (lease.name, rv))
                    lease.state = ENDED
                    lease.note(rnd, "acquire committed unanswered; revoked")
                    self.resolved["acquire-committed"] += 1
        # Extra leases may exist (a create committed whose 201 was lost), so
        # the list holds at least the acknowledged live ones.
        if len(listed) < len(must_live):
            self.violate(rnd, None, "%d leases listed, %d acknowledged live"
                         % (len(listed), len(must_live)))
        return len(listed), checked

    def trim(self, d, rnd, rng):
        """Release leases past CARRY so the pool never runs dry."""
        live = [l for l in self.leases.values()
                if l.state == LIVE and not l.may_expire]
        rng.shuffle(live)
        for lease in live[CARRY:]:
            r = d.release(lease.name, lease.token)
            if r.status != 204:
                self.violate(rnd, lease, "release of %s after restart: %r"
                             % (lease.name, r))
                continue
            lease.state = ENDED
            lease.note(rnd, "trim release 204")

    def run_round(self, d, rnd, rng):
        burst_round = rnd % 4 == 3
        owned = [[] for _ in range(WRITERS)]
        live = [l for l in self.leases.values() if l.state == LIVE]
        for i, lease in enumerate(live):
            owned[i % WRITERS].append(lease)
        barrier = threading.Barrier(WRITERS + 1) if burst_round else None
        writers = [Writer(i, rnd, self.sockpath, owned[i],
                          random.Random(rng.random()), barrier)
                   for i in range(WRITERS)]
        t0 = time.monotonic()
        for w in writers:
            w.start()
        if burst_round:
            barrier.wait(60)
            # Everyone now releases all it holds; kill once a random
            # share of those releases has been answered.
            t0 = time.monotonic()
            total = sum(len(w.live_long()) for w in writers)
            target = int(rng.uniform(0.1, 0.8) * total)
            while (sum(w.counts["released"] for w in writers) < target
                   and time.monotonic() - t0 < 30):
                time.sleep(0.0005)
        else:
            time.sleep(rng.uniform(KILL_MIN, KILL_MAX))
        kill_at = time.monotonic() - t0
        self.assertEqual(d.kill9(), -signal.SIGKILL)
        for w in writers:
            w.join(30)
            self.assertFalse(w.is_alive(), "writer %d hangs after the kill"
                             % w.idx)
        for w in writers:
            for p in w.problems:
                self.violations.append(p)
        for w in writers:
            for lease in w.owned:
                self.leases.setdefault(lease.name, lease)

        t1 = time.monotonic()
        d.start()
        restart = time.monotonic() - t1
        listed, checked = self.check(d, rnd)
        self.trim(d, rnd, rng)

        tot = {k: sum(w.counts[k] for w in writers) for k in writers[0].counts}
        extra = ""
        if burst_round:
            extra = " releases-before-kill=%s" % (
                [w.released_at_kill for w in writers],)
        print("round %d/%d %s kill@%.0fms acquired=%d renewed=%d "
              "reacquired=%d released=%d unanswered=%d restart=%.0fms "
              "listed=%d checked=%d violations=%d unanswered: %s%s" % (
                  rnd, ROUNDS, "release-burst" if burst_round else "mixed",
                  kill_at * 1000, tot["acquired"], tot["renewed"],
                  tot["reacquired"], tot["released"], tot["unanswered"],
                  restart * 1000, listed, checked, len(self.violations),
                  " ".join("%s=%d" % kv for kv in self.resolved.items()),
                  extra), flush=True)
        return tot, checked

    def test_acknowledged_leases_survive_sigkill(self):
        seed = int(SEED) if SEED else random.randrange(1 << 30)
        print("\nBERTH_CRASH_SEED=%d rounds=%d writers=%d" % (seed, ROUNDS,
                                                              WRITERS))
        rng = random.Random(seed)
        # The default pool: MAX_NEW is sized by it.
        d = self.berthd("--listen", "unix:" + self.sockpath, tmpdir=self.tmp,
                        default_pool=True)
        start = time.monotonic()
        totals = dict(acquired=0, checked=0, kills=0)
        for rnd in range(1, ROUNDS + 1):
            tot, checked = self.run_round(d, rnd, rng)
            totals["acquired"] += tot["acquired"]
            totals["checked"] += checked
            totals["kills"] += 1

        # Finally a clean stop must keep everything too.
        self.assertEqual(d.stop(), 0)
        d.start()
        listed, checked = self.check(d, "final (after SIGTERM)")
        totals["checked"] += checked
        print("total: %d kills, %d acquires acknowledged, %d lease checks, "
              "%d violations, %.1fs" % (totals["kills"], totals["acquired"],
                                        totals["checked"], len(self.violations),
                                        time.monotonic() - start), flush=True)
        if self.violations:
            self.fail("%d durability violations (BERTH_CRASH_SEED=%d), "
                      "first 30:\n%s" % (len(self.violations), seed,
                                         "\n".join(self.violations[:30])))


if __name__ == "__main__":
    main()
