"""Storage faults (docs/durability.md, docs/api.md).

The database's disk fills up, is remounted read-only or returns I/O
errors. berthd runs under the faultfs LD_PRELOAD shim (BERTH_FAULTFS,
built from tests/e2e/faultfs.c): the database lives in <tmp>/data/, which
is FAULTFS_PATH, and the fault is switched on by writing "enospc", "erofs"
or "eio" into <tmp>/fault (FAULTFS_CONTROL) and off by deleting it. The
log stays outside data/, so berthd can still say what happens.

While a fault lasts:
  - acquire, renew, idempotent re-acquire and release answer
    503 db_unavailable, and none of them is half applied;
  - a refused call leaves no trace, not even in the change index;
  - lookups and the list keep answering 200 from memory;
  - /v1/health answers 503 db_unavailable, also when no client has
    written since the fault began;
  - a TTL lease that expires is never shown afterwards, and berthd lives.
Once the fault clears, without a restart:
  - writes work again (acquire 201) within a few seconds;
  - /v1/health returns 200 even if no client writes anything;
  - after kill -9 and restart every acknowledged change is there and
    nothing from the refused calls.

A corrupt database file (random bytes, a real database with a page
overwritten, a truncated database) is refused at start: berthd exits
non-zero at once with an error naming the file, and the file is left
byte for byte as it was, never emptied or recreated.
"""

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import berthtest
from berthtest import BERTHD, BerthTestCase, main, needs_own_berthd

# berthd may run under a checker (BERTHD_WRAPPER, e.g. valgrind): slower.
WRAPPER = getattr(berthtest, "WRAPPER", [])
SLOWDOWN = getattr(berthtest, "SLOWDOWN", 1)
WRAPPER_ERROR_EXIT = getattr(berthtest, "WRAPPER_ERROR_EXIT", 99)

FAULTFS = os.environ.get("BERTH_FAULTFS", "")
SHIM_RECHECK = 0.2      # the shim re-reads its control file every 50 ms
RECOVERY = 10.0 * SLOWDOWN      # "within a few seconds" of a change
REFUSE_TIMEOUT = 5.0 * SLOWDOWN # a refused start exits "quickly"


def parse_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def names(resp):
    return {s["name"]: s for s in resp.json["services"]}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@needs_own_berthd("its database fails under it")
class FaultCase(BerthTestCase):
    """Runs berthd under faultfs with its database in a faultable dir."""

    MODE = None

    def setUp(self):
        super().setUp()
        if not FAULTFS or not os.path.exists(FAULTFS):
            self.fail("BERTH_FAULTFS does not name the faultfs shim (%r); "
                      "run under make check or build "
                      "tests/e2e/libfaultfs.la" % FAULTFS)
        self.tmp = tempfile.mkdtemp(prefix="berth-storage-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.data = os.path.join(self.tmp, "data")
        os.mkdir(self.data)
        self.control = os.path.join(self.tmp, "fault")
        # ASan wants to be first among preloaded libraries; the shim comes
        # first here, which is fine for what the shim does.
        self.env = {"LD_PRELOAD": FAULTFS,
                    "FAULTFS_PATH": self.data + "/",
                    "FAULTFS_CONTROL": self.control,
                    "ASAN_OPTIONS": "verify_asan_link_order=0"}

    def start(self):
        lo = random.randrange(61000, 65535 - 200)
        return self.berthd("--range", "%d-%d" % (lo, lo + 199),
                           env=self.env, tmpdir=self.tmp,
                           db=os.path.join(self.data, "berth.db"))

    def fault(self, mode):
        with open(self.control, "w") as f:
            f.write(mode + "\n")
        time.sleep(SHIM_RECHECK)

    def clear(self):
        os.unlink(self.control)
        time.sleep(SHIM_RECHECK)

    def bearer(self, token):
        return {"Authorization": "Bearer " + token}

    def granted(self, d, name, **fields):
        r = d.acquire(name, **fields)
        self.assertEqual(r.status, 201, r)
        return r.json

    def assertAlive(self, d, pid):
        self.assertIsNone(d.proc.poll(), "berthd died:\n" + d.logtext()[-2000:])
        self.assertEqual(d.proc.pid, pid, "berthd was restarted")

    def assertHealthFaulted(self, d):
        """/v1/health keeps saying 503 db_unavailable for a while."""
        for _ in range(5):
            self.assertError(d.get("/v1/health"), 503, "db_unavailable")
            time.sleep(0.2)

    def poll_acquire(self, d, name):
        """Acquire name until 201 (a fault just cleared); the lease."""
        deadline = time.monotonic() + RECOVERY
        while True:
            r = d.acquire(name)
            if r.status == 201:
                return r.json
            self.assertError(r, 503, "db_unavailable")
            if time.monotonic() > deadline:
                self.fail("writes still refused %.0f s after the %s fault "
                          "cleared: %r" % (RECOVERY, self.MODE, r))
            time.sleep(0.1)

    def poll_health(self, d, want=200):
        """GET /v1/health, and nothing else, until it answers want."""
        deadline = time.monotonic() + RECOVERY
        while True:
            r = d.get("/v1/health")
            if r.status == 200:
                self.assertEqual(r.json, {"status": "ok"}, r)
            else:
                self.assertError(r, 503, "db_unavailable")
            if r.status == want:
                return
            if time.monotonic() > deadline:
                self.fail("/v1/health still %r %.0f s after the %s fault "
                          "%s, with no writes meanwhile"
                          % (r, RECOVERY, self.MODE,
                             "cleared" if want == 200 else "began"))
            time.sleep(0.1)


class FaultModes:
    """The fault scenarios; one concrete class per fault mode below."""

    def test_refused_mutations_then_recovery_and_restart(self):
        d = self.start()
        pid = d.proc.pid
        keep = self.granted(d, "keep")
        gone = self.granted(d, "gone")
        renewme = self.granted(d, "renewme", ttl=300)

        self.fault(self.MODE)

        # Acquire of a new name: refused, and the name is nowhere.
        self.assertError(d.acquire("newname"), 503, "db_unavailable")
        self.assertError(d.get("/v1/services/newname"), 404, "not_found")
        # Release: refused, the lease stays.
        self.assertError(d.release("keep", keep["token"]), 503,
                         "db_unavailable")
        # Renew with a new TTL: refused, ttl and expires_at unchanged.
        r = d.post("/v1/services/renewme/renew", {"ttl": 1000},
                   headers=self.bearer(renewme["token"]))
        self.assertError(r, 503, "db_unavailable")
        # Idempotent re-acquire with the token is a renewal: refused too.
        r = d.acquire("renewme", token=renewme["token"], ttl=300)
        self.assertError(r, 503, "db_unavailable")

        # Lookups and the list answer from memory, unchanged.
        for lease in (keep, gone, renewme):
            r = d.get("/v1/services/" + lease["name"])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["port"], lease["port"], r)
        r = d.get("/v1/services/renewme")
        self.assertEqual(r.json["ttl"], 300, r)
        self.assertEqual(r.json["expires_at"], renewme["expires_at"], r)
        r = d.get("/v1/services")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(names(r)), {"keep", "gone", "renewme"}, r)

        self.assertHealthFaulted(d)
        self.assertAlive(d, pid)

        # The fault clears: writes work again, without a restart.
        self.clear()
        after = self.poll_acquire(d, "after")
        self.poll_health(d)
        self.assertEqual(d.release("gone", gone["token"]).status, 204)
        r = d.post("/v1/services/renewme/renew", {"ttl": 400},
                   headers=self.bearer(renewme["token"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["ttl"], 400, r)
        self.assertAlive(d, pid)

        # Everything acknowledged survives kill -9; nothing refused is there.
        d.restart(signal.SIGKILL)
        r = d.get("/v1/services")
        self.assertEqual(r.status, 200, r)
        live = names(r)
        self.assertEqual(set(live), {"keep", "renewme", "after"}, r)
        for lease in (keep, renewme, after):
            self.assertEqual(live[lease["name"]]["port"], lease["port"], r)
        self.assertEqual(live["renewme"]["ttl"], 400, r)
        self.assertError(d.get("/v1/services/newname"), 404, "not_found")
        self.assertError(d.get("/v1/services/gone"), 404, "not_found")
        r = d.post("/v1/services/keep/renew", headers=self.bearer(keep["token"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(d.get("/v1/health").status, 200)

    def test_refused_calls_do_not_move_the_index(self):
        # A refused change is no change: watchers are not told of one.
        d = self.start()
        a = self.granted(d, "a")
        index = d.get("/v1/services").index
        self.fault(self.MODE)
        self.assertError(d.acquire("b"), 503, "db_unavailable")
        self.assertError(d.release("a", a["token"]), 503, "db_unavailable")
        r = d.post("/v1/services/a/renew", headers=self.bearer(a["token"]))
        self.assertError(r, 503, "db_unavailable")
        r = d.get("/v1/services?index=%d&wait=1" % index)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.index, index, "refused calls moved the index")
        self.clear()
        self.poll_acquire(d, "c")
        self.assertGreater(d.get("/v1/services").index, index)

    def test_health_recovers_without_writes(self):
        d = self.start()
        pid = d.proc.pid
        a = self.granted(d, "a")
        self.fault(self.MODE)
        self.assertError(d.acquire("b"), 503, "db_unavailable")
        self.assertHealthFaulted(d)
        self.clear()
        # No client writes anything: health alone must notice the recovery.
        self.poll_health(d)
        self.assertAlive(d, pid)
        # And berthd is really writable again: the first acquire succeeds.
        c = d.acquire("c")
        self.assertEqual(c.status, 201, c)
        d.restart(signal.SIGKILL)
        live = names(d.get("/v1/services"))
        self.assertEqual(set(live), {"a", "c"})
        self.assertEqual(live["a"]["port"], a["port"])
        self.assertEqual(live["c"]["port"], c.json["port"])

    def test_health_notices_fault_without_writes(self):
        # The disk fails while nobody writes: /v1/health alone must find
        # out (a health check that waits for a client's write to fail
        # reports a broken broker as healthy), and find the recovery too.
        d = self.start()
        pid = d.proc.pid
        a = self.granted(d, "a")
        self.fault(self.MODE)
        self.poll_health(d, want=503)
        r = d.get("/v1/services/a")
        self.assertEqual(r.status, 200, r)
        self.clear()
        self.poll_health(d)
        self.assertAlive(d, pid)
        r = d.acquire("b")
        self.assertEqual(r.status, 201, r)
        d.restart(signal.SIGKILL)
        live = names(d.get("/v1/services"))
        self.assertEqual(set(live), {"a", "b"})
        self.assertEqual(live["a"]["port"], a["port"])

    def test_ttl_expiry_during_fault(self):
        d = self.start()
        pid = d.proc.pid
        short = self.granted(d, "short", ttl=1)
        stay = self.granted(d, "stay")
        expires = parse_time(short["expires_at"])
        self.fault(self.MODE)
        # Watch the expiry happen while nothing can be written: once past
        # expires_at the lease is never shown, and berthd keeps serving.
        while True:
            sent = time.time()
            r1 = d.get("/v1/services/short")
            r2 = d.get("/v1/services")
            self.assertIn(r1.status, (200, 404), r1)
            self.assertEqual(r2.status, 200, r2)
            if sent > expires + 0.1:
                self.assertError(r1, 404, "not_found")
                self.assertNotIn("short", names(r2), r2)
            if sent > expires + 1.5:
                break
            time.sleep(0.05)
        self.assertAlive(d, pid)
        self.assertEqual(d.get("/v1/services/stay").status, 200)

        self.clear()
        self.poll_acquire(d, "later")
        self.assertError(d.get("/v1/services/short"), 404, "not_found")
        self.assertAlive(d, pid)
        d.restart(signal.SIGKILL)
        self.assertError(d.get("/v1/services/short"), 404, "not_found")
        live = names(d.get("/v1/services"))
        self.assertEqual(set(live), {"stay", "later"})
        self.assertEqual(live["stay"]["port"], stay["port"])


class DiskFullTest(FaultModes, FaultCase):
    MODE = "enospc"


class ReadOnlyTest(FaultModes, FaultCase):
    MODE = "erofs"


class IOErrorTest(FaultModes, FaultCase):
    MODE = "eio"


class ShimTest(FaultCase):
    """faultfs itself: only files under FAULTFS_PATH fail, as configured."""

    # Opens its files, then sets the fault (argv[3], "" for none) and
    # reports what each call did.
    PROBE = r"""
import errno, os, sys, time
data, out, control, mode = sys.argv[1:5]
fd = os.open(os.path.join(data, "f"), os.O_RDWR | os.O_CREAT, 0o644)
ofd = os.open(out, os.O_RDWR | os.O_CREAT, 0o644)
if mode:
    with open(control, "w") as f:
        f.write(mode + "\n")
elif os.path.exists(control):
    os.unlink(control)
time.sleep(0.2)
def err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
print(err(lambda: os.pwrite(fd, b"x", 0)), err(lambda: os.write(fd, b"x")),
      err(lambda: os.ftruncate(fd, 0)), err(lambda: os.fdatasync(fd)),
      err(lambda: os.close(os.open(os.path.join(data, "g"),
                                   os.O_WRONLY | os.O_CREAT, 0o644))),
      err(lambda: os.write(ofd, b"x")))
"""

    def probe(self, mode):
        if os.path.exists(self.control):
            os.unlink(self.control)
        out = subprocess.run(
            [sys.executable, "-c", self.PROBE, self.data,
             os.path.join(self.tmp, "outside"), self.control, mode],
            env=dict(os.environ, **self.env), capture_output=True, text=True,
            timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.split()

    def test_shim(self):
        ok = "ok"
        self.assertEqual(self.probe(""), [ok] * 6)
        self.assertEqual(self.probe("enospc"), ["ENOSPC"] * 3 + [ok] * 3)
        self.assertEqual(self.probe("erofs"),
                         ["EROFS"] * 3 + [ok, "EROFS", ok])
        self.assertEqual(self.probe("eio"), ["EIO"] * 4 + [ok, ok])
        self.assertEqual(self.probe("bogus"), [ok] * 6)
        self.assertEqual(self.probe(""), [ok] * 6)


@needs_own_berthd("it starts berthd on a bad database")
class CorruptDatabaseTest(BerthTestCase):
    """A damaged database is refused at start and left untouched."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="berth-corrupt-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.db = os.path.join(self.tmp, "berth.db")

    def real_database(self):
        """A database berthd wrote and closed cleanly, several pages long."""
        lo = random.randrange(61000, 65535 - 200)
        d = self.berthd("--range", "%d-%d" % (lo, lo + 199), db=self.db)
        for i in range(40):
            r = d.acquire("svc-%02d" % i, meta={"role": "x" * 200})
            self.assertEqual(r.status, 201, r)
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.logtext())
        self.assertFalse(os.path.exists(self.db + "-wal"),
                         "berthd left a WAL after a clean stop")
        with open(self.db, "rb") as f:
            header = f.read(100)
        self.assertEqual(header[:16], b"SQLite format 3\0")
        pagesize = int.from_bytes(header[16:18], "big")
        if pagesize == 1:
            pagesize = 65536
        size = os.path.getsize(self.db)
        self.assertGreaterEqual(size // pagesize, 4, "database too small")
        return pagesize, size

    def assertSqliteSeesDamage(self):
        """Sanity: SQLite itself finds the damage (checked on a copy)."""
        copy = os.path.join(self.tmp, "copy.db")
        shutil.copyfile(self.db, copy)
        try:
            con = sqlite3.connect(copy)
            try:
                res = con.execute("PRAGMA quick_check").fetchall()
            finally:
                con.close()
            self.assertNotEqual(res, [("ok",)], "the damage is not detectable")
        except sqlite3.DatabaseError:
            pass

    def assertRefused(self):
        before = sha256(self.db)
        st = os.stat(self.db)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("BERTH_") and k != "NOTIFY_SOCKET"}
        proc = subprocess.Popen(
            WRAPPER + [BERTHD, "--db", self.db, "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env)
        try:
            out, err = proc.communicate(timeout=REFUSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("berthd still running %.0f s after starting on a "
                      "corrupt database:\n%s" % (REFUSE_TIMEOUT,
                                                 err.decode(errors="replace")))
        err = err.decode(errors="replace")
        if WRAPPER:
            self.assertNotEqual(proc.returncode, WRAPPER_ERROR_EXIT,
                                "%s found errors:\n%s" % (WRAPPER[0], err))
        self.assertGreater(proc.returncode, 0,
                           "berthd exit status %d on a corrupt database:\n%s"
                           % (proc.returncode, err))
        self.assertIn(self.db, err, "the error does not name the database")
        low = err.lower()
        self.assertTrue(any(w in low for w in ("corrupt", "not a database",
                                               "integrity", "malformed")),
                        "no clear corruption error:\n" + err)
        self.assertEqual(sha256(self.db), before, "the database was changed")
        after = os.stat(self.db)
        self.assertEqual((after.st_ino, after.st_size),
                         (st.st_ino, st.st_size), "the database was replaced")

    def test_random_bytes(self):
        with open(self.db, "wb") as f:
            f.write(random.Random(4).randbytes(16384))
        self.assertSqliteSeesDamage()
        self.assertRefused()

    def test_page_overwritten(self):
        pagesize, size = self.real_database()
        with open(self.db, "r+b") as f:
            f.seek(pagesize)        # page 2, in the middle of the leases
            f.write(random.Random(5).randbytes(pagesize))
        self.assertEqual(os.path.getsize(self.db), size)
        self.assertSqliteSeesDamage()
        self.assertRefused()

    def test_truncated(self):
        pagesize, size = self.real_database()
        os.truncate(self.db, (size // pagesize // 2) * pagesize)
        self.assertSqliteSeesDamage()
        self.assertRefused()


if __name__ == "__main__":
    main()
