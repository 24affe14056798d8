#!/usr/bin/env python3
"""Reclaim after a lapse, the creator's uid, and the bounds on leases and
remembered names.

docs/api.md ("Reclaim after a lapse", "uid", "lease_limit"): a holder whose
lease lapsed (broker down past the TTL, suspend, SIGSTOP) acquires again
with its token and gets the same port and token back, without the bind
test, since its own service still listens there; a release or revoke ends
the registration for good. `berth run` does this by itself and says so in
one line.
"""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import shutil
import time

from berthtest import clean_env, BerthTestCase, main, wait_for

BERTH_CLI = os.environ.get("BERTH_CLI", "berth")




class ReclaimApi(BerthTestCase):
    def lapse(self, d, name, **fields):
        """A lease with a 1 s TTL, left to expire; returns its JSON."""
        r = d.acquire(name, ttl=1, **fields)
        self.assertEqual(r.status, 201, r)
        gone = wait_for(lambda: d.get("/v1/services/" + name).status == 404,
                        timeout=10)
        self.assertTrue(gone, "the 1 s lease never expired")
        return r.json

    def test_token_takes_a_lapsed_lease_back(self):
        d = self.berthd()
        old = self.lapse(d, "api")
        r = d.acquire("api", token=old["token"], ttl=30)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["port"], old["port"])
        self.assertEqual(r.json["token"], old["token"])
        # The same token stays valid for the calls that need it.
        r = d.post("/v1/services/api/renew", {},
                   headers={"Authorization": "Bearer " + old["token"]})
        self.assertEqual(r.status, 200, r)
        self.assertIn("reclaimed with its token", d.logtext())

    def test_reclaim_skips_the_port_check(self):
        # The holder's own service still listens on the port: an acquire
        # without the token cannot have that port, one with it does. (A
        # port outside the pool, which nothing else on the host takes
        # while our socket is bound to it.)
        d = self.berthd()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            old = self.lapse(d, "web", port=port)
            s.listen()
            self.assertError(d.acquire("web", port=port), 409,
                             "port_unavailable")
            r = d.acquire("web", token=old["token"])
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["port"], port)

    def test_reclaim_of_an_expired_lease_not_yet_reaped(self):
        # Past its TTL, still in memory or not: the token takes it back.
        d = self.berthd()
        r = d.acquire("quick", ttl=1)
        tok, port = r.json["token"], r.json["port"]
        time.sleep(1.2)
        r = d.acquire("quick", token=tok)
        self.assertIn(r.status, (200, 201), r)
        self.assertEqual((r.json["port"], r.json["token"]), (port, tok))

    def test_release_and_revoke_end_it_for_good(self):
        d = self.berthd()
        r = d.acquire("db")
        tok = r.json["token"]
        self.assertEqual(d.release("db", tok).status, 204)
        r = d.acquire("db", token=tok)
        self.assertError(r, 403, "bad_token")
        self.assertIn("released or revoked", r.json["error"]["message"])
        # Without the token the name is free as ever.
        r = d.acquire("db")
        self.assertEqual(r.status, 201, r)
        tok = r.json["token"]
        # Revoked by an admin (the test runs as berthd's user).
        self.assertEqual(d.delete("/v1/services/db?force=1").status, 204)
        self.assertError(d.acquire("db", token=tok), 403, "bad_token")

    def test_a_token_that_was_never_the_names(self):
        d = self.berthd()
        a = d.acquire("one").json
        self.assertError(d.acquire("two", token=a["token"]), 403, "bad_token")
        self.assertError(d.acquire("never", token="0" * 32), 403,
                         "bad_token")

    def test_port_leased_to_another_name_meanwhile(self):
        # A port outside the pool (reserved by a socket that is bound but
        # never listens, so no socket table lists it): nothing else on the
        # host can take it while the test runs.
        d = self.berthd()
        port = self.unused_port().port
        old = self.lapse(d, "first", port=port)
        r = d.acquire("second", port=port)
        self.assertEqual(r.status, 201, r)
        r = d.acquire("first", token=old["token"])
        self.assertError(r, 409, "port_unavailable")
        self.assertIn("second", r.json["error"]["message"])

    def test_remembered_across_a_restart(self):
        # berthd down for longer than the TTL: the lease ends as berthd
        # starts again, and its holder takes it back with the token.
        d = self.berthd()
        r = d.acquire("svc", ttl=1)
        tok, port = r.json["token"], r.json["port"]
        d.kill9()
        time.sleep(1.5)
        d.start()
        self.assertEqual(d.get("/v1/services/svc").status, 404)
        r = d.acquire("svc", token=tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json["port"], r.json["token"]), (port, tok))

    def test_database_keeps_a_hash_not_the_token(self):
        d = self.berthd()
        tok = self.lapse(d, "secret")["token"]
        d.stop()
        with contextlib.closing(sqlite3.connect(d.db)) as db:
            rows = db.execute("SELECT token_hash FROM names "
                              "WHERE name = 'secret'").fetchall()
        self.assertEqual(len(rows), 1)
        self.assertEqual(len(rows[0][0]), 32)
        with open(d.db, "rb") as f:
            self.assertNotIn(tok.encode(), f.read())


class CreatorUid(BerthTestCase):
    def test_uid_shown_and_kept(self):
        d = self.berthd()
        r = d.acquire("mine")
        self.assertEqual(r.json["uid"], os.getuid())
        self.assertEqual(d.get("/v1/services/mine").json["uid"], os.getuid())
        d.restart()
        lst = d.get("/v1/services").json["services"]
        self.assertEqual([s["uid"] for s in lst], [os.getuid()])

    def test_old_database_is_upgraded(self):
        # A database written by a berthd before the uid and token hash:
        # its lease is loaded, with an unknown (null) creator.
        tmp = tempfile.mkdtemp(prefix="berth-v1-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "berth.db")
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.executescript("""
                CREATE TABLE leases (name TEXT PRIMARY KEY,
                  port INTEGER NOT NULL UNIQUE, proto INTEGER NOT NULL,
                  host TEXT NOT NULL, ttl INTEGER NOT NULL,
                  expires_at INTEGER NOT NULL, pid INTEGER NOT NULL,
                  pid_start INTEGER NOT NULL, boot_id TEXT NOT NULL,
                  meta TEXT, token TEXT NOT NULL,
                  created_at INTEGER NOT NULL,
                  renewed_at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE names (name TEXT PRIMARY KEY,
                  port INTEGER NOT NULL,
                  freed_at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE state (key TEXT PRIMARY KEY,
                  value INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO leases VALUES ('old', 50123, 1, '127.0.0.1', 0,
                  0, 0, 0, '', NULL, 'aaaabbbbccccddddaaaabbbbccccdddd',
                  1000, 1000);
                INSERT INTO names VALUES ('old', 50123, 0);
                PRAGMA user_version = 1;
            """)
        d = self.berthd(db=path, tmpdir=tmp)
        r = d.get("/v1/services/old")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json["uid"])
        self.assertIs(r.json["publish"], False)
        self.assertIn("upgraded", d.logtext())
        tok = "aaaabbbbccccddddaaaabbbbccccdddd"
        self.assertEqual(d.release("old", tok).status, 204)
        d.stop()
        with contextlib.closing(sqlite3.connect(path)) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone(),
                             (3,))


class Bounds(BerthTestCase):
    def test_lease_limit(self):
        d = self.berthd("--max-leases", "2")
        a = d.acquire("a").json
        d.acquire("b")
        r = d.acquire("c")
        self.assertError(r, 503, "lease_limit")
        self.assertIn("--max-leases", r.json["error"]["message"])
        # A re-acquire with the token is the same lease: still fine.
        self.assertEqual(d.acquire("a", token=a["token"]).status, 200)
        d.release("a", a["token"])
        self.assertEqual(d.acquire("c").status, 201)

    def test_ended_names_are_forgotten_oldest_first(self):
        d = self.berthd("--max-leases", "2")
        ports = {}
        for name in ("n1", "n2", "n3", "n4"):
            r = d.acquire(name)
            ports[name] = r.json["port"]
            d.release(name, r.json["token"])
        d.stop()
        with contextlib.closing(sqlite3.connect(d.db)) as db:
            names = sorted(n for (n,) in db.execute("SELECT name FROM names"))
        self.assertEqual(names, ["n3", "n4"])
        # The newest is still sticky.
        d.start()
        self.assertEqual(d.acquire("n4").json["port"], ports["n4"])


class RunReclaims(BerthTestCase):
    # A service that listens on $PORT, then waits for the file "stop".
    SERVER = ("import os, socket, time\n"
              "s = socket.socket()\n"
              "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind(('127.0.0.1', int(os.environ['PORT'])))\n"
              "s.listen()\n"
              "open('up', 'w').close()\n"
              "while not os.path.exists('stop'):\n"
              "    time.sleep(0.05)\n")

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="berth-reclaim-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def start_run(self, d, name, *opts):
        p = subprocess.Popen(
            [BERTH_CLI, "--addr", d.addr, "run", name] + list(opts) +
            ["--", "python3", "-c", self.SERVER], cwd=self.dir,
            env=clean_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def cleanup():
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.addCleanup(cleanup)
        self.assertTrue(wait_for(lambda: os.path.exists(
            os.path.join(self.dir, "up")), timeout=10), "service never up")
        return p

    def finish(self, p):
        open(os.path.join(self.dir, "stop"), "w").close()
        out, err = p.communicate(timeout=20)
        return p.returncode, err.decode()

    def test_lapse_while_stopped_is_reclaimed(self):
        # Ctrl-Z / suspend: berth run stopped past its TTL while its
        # service listens on; when it runs again the lease comes back.
        d = self.berthd()
        p = self.start_run(d, "api", "--ttl", "1")
        port = d.get("/v1/services/api").json["port"]
        os.kill(p.pid, signal.SIGSTOP)
        try:
            self.assertTrue(wait_for(
                lambda: d.get("/v1/services/api").status == 404, timeout=10))
        finally:
            os.kill(p.pid, signal.SIGCONT)
        r = wait_for(lambda: (lambda r: r.status == 200 and r)(
            d.get("/v1/services/api")), timeout=10)
        self.assertTrue(r, "the lease never came back")
        self.assertEqual(r.json["port"], port)
        self.assertEqual(r.json["pid"], p.pid)
        st, err = self.finish(p)
        self.assertEqual(st, 0, err)
        self.assertEqual(err.count("reclaimed"), 1, err)
        self.assertNotIn("will retry", err)

    def test_revoke_is_for_good(self):
        d = self.berthd()
        p = self.start_run(d, "job", "--ttl", "1")
        r = subprocess.run([BERTH_CLI, "--addr", d.addr, "revoke", "job"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r)
        # Renewals come every third of the TTL: give it several.
        time.sleep(2)
        self.assertEqual(d.get("/v1/services/job").status, 404)
        self.assertIsNone(p.poll(), "the service must run on")
        st, err = self.finish(p)
        self.assertEqual(st, 0, err)
        self.assertEqual(err.count("revoked or released"), 1, err)


if __name__ == "__main__":
    main()
