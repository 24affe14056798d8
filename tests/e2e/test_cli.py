"""End-to-end tests of the berth CLI (berth(1)) against a real berthd:
acquire (plain, --json, --env and every option), renew, release, lookup
(--wait, --addr-only, --json), list (table, --json, --probe), revoke over
TCP and over the unix socket, status, health, version, exit codes, the
unreachable-broker message, global options anywhere, BERTH_ADDR and
unix: addresses. `berth run`, `who` and `doctor` have their own files.

BERTH_CLI names the CLI binary and BERTHD the daemon (make check sets both).
"""

import functools
import http.server
import json
import os
import random
import re
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

from berthtest import BERTHD, BerthTestCase, listener, main

CLI = os.environ.get("BERTH_CLI", "berth")
HEX_TOKEN = re.compile(r"^[0-9a-f]{32,}$")


class Run:
    """What one CLI invocation did."""

    def __init__(self, args, rc, out, err):
        self.args = args
        self.rc = rc
        self.out = out
        self.err = err

    def __repr__(self):
        return "<berth %s: rc=%d stdout=%r stderr=%r>" % (
            " ".join(self.args), self.rc, self.out[-600:], self.err[-600:])


def clean_env(extra=None):
    """The caller's environment without BERTH_* variables, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env


def run_cli(*args, env=None, timeout=30):
    """Run the CLI with args; no --addr is added."""
    p = subprocess.run([CLI] + list(args), env=clean_env(env),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return Run(list(args), p.returncode, p.stdout.decode(errors="replace"),
               p.stderr.decode(errors="replace"))


def ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = f.read().split()
    return int(lo), int(hi)


def bindable(port):
    """Whether port can be bound on the IPv4 wildcard right now (TCP)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def port_outside_ephemeral():
    """A free port in 49152-65535 outside the kernel's ephemeral range, or
    None when that range leaves none."""
    lo, hi = ephemeral_range()
    candidates = [p for p in range(49152, 65536) if p < lo or p > hi]
    random.shuffle(candidates)
    for p in candidates[:200]:
        if bindable(p):
            return p
    return None


def quiet_range(width=20):
    """berthd --range args for a random window of ports outside the
    ephemeral range, away from the pool's low end where other test runs'
    daemons start handing out ports; none if there is no such window."""
    lo, hi = ephemeral_range()
    starts = [p for p in range(49152, 65536 - width)
              if p + width - 1 < lo or p > hi]
    if not starts:
        return []
    p = random.choice(starts[len(starts) // 4:] or starts)
    return ["--range", "%d-%d" % (p, p + width - 1)]


def berthd_version():
    p = subprocess.run([BERTHD, "--version"], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=10)
    m = re.search(r"\d+\.\d+\.\d+", (p.stdout + p.stderr).decode())
    return m.group(0) if m else None


def columns(line):
    """(start, end, text) of each whitespace-separated word of line."""
    return [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"\S+", line)]


class CliTestCase(BerthTestCase):
    def cli(self, d, *args, env=None, timeout=30):
        """Run the CLI against daemon d with --addr before the command."""
        return run_cli("--addr", d.addr, *args, env=env, timeout=timeout)

    def assertExit(self, r, rc):
        self.assertEqual(r.rc, rc, r)

    def assertBerthError(self, r, rc):
        """Exit rc with a 'berth:' message on stderr and nothing on stdout."""
        self.assertEqual(r.rc, rc, r)
        self.assertIn("berth:", r.err, r)

    def lease(self, d, name):
        """The lease as the API shows it, or None when it is not there."""
        resp = d.get("/v1/services/" + name)
        if resp.status == 404:
            return None
        self.assertEqual(resp.status, 200, resp)
        return resp.json

    def acquire_json(self, d, name, *opts):
        r = self.cli(d, "--json", "acquire", name, *opts)
        self.assertExit(r, 0)
        return json.loads(r.out)


class TestAcquire(CliTestCase):
    def test_prints_just_the_port(self):
        d = self.berthd()
        r = self.cli(d, "acquire", "api")
        self.assertExit(r, 0)
        self.assertRegex(r.out, r"^\d+\n$")
        lease = self.lease(d, "api")
        self.assertIsNotNone(lease)
        self.assertEqual(int(r.out), lease["port"])

    def test_port_substitution_in_sh(self):
        d = self.berthd()
        p = subprocess.run(
            ["sh", "-c", 'PORT=$("$0" --addr "$1" acquire web) || exit 9; '
             'echo "got:$PORT:"', CLI, d.addr],
            env=clean_env(), capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p)
        m = re.fullmatch(r"got:(\d+):\n", p.stdout.decode())
        self.assertIsNotNone(m, p)
        self.assertEqual(int(m.group(1)), self.lease(d, "web")["port"])

    def test_json_gives_the_api_object_with_token(self):
        d = self.berthd()
        obj = self.acquire_json(d, "api")
        self.assertEqual(obj["name"], "api")
        self.assertRegex(obj["token"], HEX_TOKEN)
        for k in ("port", "proto", "host", "ttl", "expires_at", "pid", "meta",
                  "created_at", "renewed_at"):
            self.assertIn(k, obj)
        api = self.lease(d, "api")
        self.assertEqual(obj["port"], api["port"])
        self.assertEqual(obj["created_at"], api["created_at"])
        # the token is the lease's: it releases it
        self.assertEqual(d.release("api", obj["token"]).status, 204)

    def test_env_lines_eval_in_sh(self):
        d = self.berthd()
        r = self.cli(d, "acquire", "envy", "--env")
        self.assertExit(r, 0)
        lines = r.out.splitlines()
        self.assertTrue(any(l.startswith("BERTH_PORT=") for l in lines), r)
        self.assertTrue(any(l.startswith("BERTH_TOKEN=") for l in lines), r)
        p = subprocess.run(
            ["sh", "-c", 'eval "$("$0" --addr "$1" acquire envy2 --env)" '
             '|| exit 9; echo "$BERTH_PORT $BERTH_TOKEN"', CLI, d.addr],
            env=clean_env(), capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p)
        port, token = p.stdout.decode().split()
        self.assertEqual(int(port), self.lease(d, "envy2")["port"])
        self.assertRegex(token, HEX_TOKEN)
        self.assertEqual(d.release("envy2", token).status, 204)

    def test_options(self):
        d = self.berthd()
        # An explicit port that berthd must find free: it reads the
        # socket tables, where a bound UDP socket would hold the port. A
        # TCP socket bound to it that never listens keeps the number ours
        # for the whole test (no other TCP socket takes it) while berthd
        # sees it free for UDP.
        port = self.unused_port().port
        r = self.cli(d, "acquire", "opts", "--port", str(port), "--ttl", "120",
                     "--proto", "udp", "--meta", "team=core",
                     "--meta", "url=http://x/?a=b", "--pid", str(os.getpid()))
        self.assertExit(r, 0)
        self.assertEqual(r.out.strip(), str(port))
        lease = self.lease(d, "opts")
        self.assertEqual(lease["port"], port)
        self.assertEqual(lease["ttl"], 120)
        self.assertEqual(lease["proto"], "udp")
        self.assertEqual(lease["meta"],
                         {"team": "core", "url": "http://x/?a=b"})
        self.assertEqual(lease["pid"], os.getpid())

    def test_name_taken_exit_4(self):
        d = self.berthd()
        self.assertExit(self.cli(d, "acquire", "dup"), 0)
        r = self.cli(d, "acquire", "dup")
        self.assertBerthError(r, 4)
        self.assertEqual(r.out, "", r)

    def test_pool_exhausted_exit_1(self):
        port = port_outside_ephemeral()
        if port is None:
            self.skipTest("no port outside the ephemeral range")
        d = self.berthd("--range", "%d-%d" % (port, port))
        r = self.cli(d, "acquire", "one")
        self.assertExit(r, 0)
        self.assertEqual(r.out.strip(), str(port))
        r = self.cli(d, "acquire", "two")
        self.assertBerthError(r, 1)
        self.assertEqual(r.out, "", r)

    def test_usage_errors_exit_2(self):
        d = self.berthd()
        cases = [
            ("acquire",),                          # missing name
            ("acquire", "Bad_Name"),               # invalid name
            ("acquire", "-x"),                     # unknown option
            ("acquire", "ok", "--bogus"),
            ("acquire", "ok", "--ttl", "abc"),
            ("acquire", "ok", "--port", "70000"),
            ("acquire", "ok", "--meta", "novalue"),
            ("acquire", "ok", "--pid", "x1"),
            ("acquire", "ok", "--ttl"),            # option without value
            ("acquire", "a", "b"),                 # extra argument
            ("renew",),
            ("release",),
            ("lookup",),
            ("lookup", "Bad_Name"),
            ("lookup", "x", "--wait", "soon"),
            ("revoke",),
            ("list", "--bogus"),
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.cli(d, *args)
                self.assertBerthError(r, 2)
        # nothing was acquired by any of them
        self.assertEqual(d.get("/v1/services").json["services"], [])

    def test_invalid_name_message(self):
        d = self.berthd()
        r = self.cli(d, "acquire", "-bad")
        self.assertBerthError(r, 2)
        r = self.cli(d, "acquire", "x" * 64)
        self.assertBerthError(r, 2)


class TestRenewRelease(CliTestCase):
    def test_renew_with_token_flag_and_ttl(self):
        d = self.berthd()
        obj = self.acquire_json(d, "r", "--ttl", "30")
        r = self.cli(d, "renew", "r", "--token", obj["token"], "--ttl", "300")
        self.assertExit(r, 0)
        self.assertEqual(self.lease(d, "r")["ttl"], 300)
        r = self.cli(d, "renew", "r", "--token", obj["token"])
        self.assertExit(r, 0)
        self.assertEqual(self.lease(d, "r")["ttl"], 300)

    def test_renew_with_env_token(self):
        d = self.berthd()
        obj = self.acquire_json(d, "r", "--ttl", "30")
        before = self.lease(d, "r")["renewed_at"]
        time.sleep(0.01)
        r = self.cli(d, "renew", "r", "--ttl", "60",
                     env={"BERTH_TOKEN": obj["token"]})
        self.assertExit(r, 0)
        after = self.lease(d, "r")
        self.assertEqual(after["ttl"], 60)
        self.assertNotEqual(after["renewed_at"], before)
        # --token wins over BERTH_TOKEN (berth(1))
        r = self.cli(d, "renew", "r", "--token", obj["token"],
                     env={"BERTH_TOKEN": "0" * 32})
        self.assertExit(r, 0)
        r = self.cli(d, "renew", "r", "--token", "0" * 32,
                     env={"BERTH_TOKEN": obj["token"]})
        self.assertBerthError(r, 1)

    def test_renew_wrong_token_exit_1_missing_exit_2(self):
        d = self.berthd()
        self.acquire_json(d, "r", "--ttl", "30")
        r = self.cli(d, "renew", "r", "--token", "0" * 32)
        self.assertBerthError(r, 1)
        r = self.cli(d, "renew", "r")
        self.assertBerthError(r, 2)

    def test_release_with_token_flag(self):
        d = self.berthd()
        obj = self.acquire_json(d, "rel")
        r = self.cli(d, "release", "rel", "--token", obj["token"])
        self.assertExit(r, 0)
        self.assertIsNone(self.lease(d, "rel"))

    def test_release_with_env_token(self):
        d = self.berthd()
        obj = self.acquire_json(d, "rel")
        r = self.cli(d, "release", "rel", env={"BERTH_TOKEN": obj["token"]})
        self.assertExit(r, 0)
        self.assertIsNone(self.lease(d, "rel"))

    def test_release_wrong_token_exit_1_missing_exit_2(self):
        d = self.berthd()
        self.acquire_json(d, "rel")
        r = self.cli(d, "release", "rel", "--token", "f" * 32)
        self.assertBerthError(r, 1)
        r = self.cli(d, "release", "rel")
        self.assertBerthError(r, 2)
        self.assertIsNotNone(self.lease(d, "rel"))

    def test_release_unknown_exit_3(self):
        d = self.berthd()
        r = self.cli(d, "release", "nosuch", "--token", "f" * 32)
        self.assertBerthError(r, 3)


class TestTtlLimits(CliTestCase):
    """Every command that takes --ttl takes what the API takes, 0 to
    31536000 seconds, and refuses the rest itself, in the same words."""

    LIMIT = 31536000

    def test_same_limit_in_acquire_renew_and_run(self):
        d = self.berthd()
        held = self.acquire_json(d, "held", "--ttl", "60")
        tmp = tempfile.mkdtemp(prefix="berth-cli-")
        self.addCleanup(shutil.rmtree, tmp, True)
        ran = os.path.join(tmp, "ran")
        commands = {
            "acquire": lambda ttl: ("acquire", "new", "--ttl", ttl),
            "renew": lambda ttl: ("renew", "held", "--token", held["token"],
                                  "--ttl", ttl),
            "run": lambda ttl: ("run", "new", "--ttl", ttl, "--", "sh", "-c",
                                'echo "$PORT" > "$0"', ran),
        }
        for bad in (str(self.LIMIT + 1), "2147483648", "99999999999999999999",
                    "-1", "1.5", "soon", ""):
            for cmd, args in commands.items():
                with self.subTest(cmd=cmd, ttl=bad):
                    r = self.cli(d, *args(bad))
                    self.assertBerthError(r, 2)
                    self.assertEqual(r.out, "", r)
                    lines = r.err.splitlines()
                    self.assertEqual(len(lines), 1, r)
                    self.assertIn("--ttl", lines[0])
                    self.assertIn("0 to %d" % self.LIMIT, lines[0])
        self.assertIsNone(self.lease(d, "new"))
        self.assertEqual(self.lease(d, "held")["ttl"], 60)
        self.assertFalse(os.path.exists(ran))
        # The limit itself is taken by all three.
        r = self.cli(d, "--json", *commands["acquire"](str(self.LIMIT)))
        self.assertExit(r, 0)
        self.assertEqual(self.lease(d, "new")["ttl"], self.LIMIT)
        self.assertEqual(d.release("new", json.loads(r.out)["token"]).status,
                         204)
        self.assertExit(self.cli(d, *commands["renew"](str(self.LIMIT))), 0)
        self.assertEqual(self.lease(d, "held")["ttl"], self.LIMIT)
        self.assertExit(self.cli(d, *commands["run"](str(self.LIMIT))), 0)
        self.assertTrue(os.path.exists(ran))


class TestHints(CliTestCase):
    """What the CLI tells people to do is something they can do."""

    def test_release_without_token_says_how(self):
        d = self.berthd()
        self.acquire_json(d, "rel")
        r = self.cli(d, "release", "rel")
        self.assertBerthError(r, 2)
        lines = r.err.splitlines()
        self.assertEqual(len(lines), 1, r)
        for word in ("--token", "BERTH_TOKEN", "root", "berth revoke rel"):
            self.assertIn(word, lines[0])
        self.assertIsNotNone(self.lease(d, "rel"))
        r = self.cli(d, "renew", "rel")
        self.assertBerthError(r, 2)
        self.assertEqual(len(r.err.splitlines()), 1, r)
        self.assertIn("--token", r.err)
        self.assertIn("BERTH_TOKEN", r.err)

    def test_name_taken_by_a_lease_that_never_ends(self):
        # No owner and no TTL: the lease lasts until released, so "wait
        # for it to end" would be false; say how it can be ended.
        d = self.berthd()
        self.acquire_json(d, "forever")
        tmp = tempfile.mkdtemp(prefix="berth-cli-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for args in (("acquire", "forever"),
                     ("run", "forever", "--", "touch", os.path.join(tmp, "x"))):
            with self.subTest(args=args):
                r = self.cli(d, *args)
                self.assertBerthError(r, 4)
                self.assertEqual(len(r.err.splitlines()), 1, r)
                self.assertNotIn("wait for it", r.err)
                self.assertIn("berth revoke forever", r.err)
                self.assertIn("token", r.err)
                self.assertIn("name_taken", r.err)
        self.assertFalse(os.path.exists(os.path.join(tmp, "x")))
        # A lease that does end (a TTL, an owner) may be waited for.
        for name, opts in (("ttl", ("--ttl", "300")),
                           ("owned", ("--pid", str(os.getpid())))):
            self.acquire_json(d, name, *opts)
            r = self.cli(d, "acquire", name)
            self.assertBerthError(r, 4)
            self.assertIn("it ends", r.err)

    def doctor_hint(self, d, name):
        r = self.cli(d, "doctor", name)
        self.assertEqual(r.rc, 1, r)
        warn = [l for l in r.out.splitlines()
                if l.startswith("warn: %s: " % name) and "listen" in l]
        self.assertEqual(len(warn), 1, r)
        return warn[0].split(" \u2014 ", 1)[1]

    def test_doctor_nothing_listens_hints(self):
        d = self.berthd()
        # A live owner: starting it again would fail with name_taken.
        owned = self.acquire_json(d, "owned", "--pid", str(os.getpid()))
        hint = self.doctor_hint(d, "owned")
        self.assertNotIn("berth run owned", hint)
        self.assertIn("PORT", hint)
        self.assertIn(str(owned["port"]), hint)
        # No owner and no TTL: end it first, then berth run.
        self.acquire_json(d, "forever")
        hint = self.doctor_hint(d, "forever")
        self.assertIn("berth revoke forever", hint)
        self.assertIn("token", hint)
        self.assertLess(hint.index("revoke"), hint.index("berth run forever"))
        # A TTL: it ends by itself when not renewed.
        self.acquire_json(d, "ttl", "--ttl", "300")
        hint = self.doctor_hint(d, "ttl")
        self.assertIn("300", hint)
        self.assertLess(hint.index("300"), hint.index("berth run ttl"))


class TestLookup(CliTestCase):
    def test_prints_port(self):
        d = self.berthd()
        obj = self.acquire_json(d, "db", "--meta", "k=v")
        r = self.cli(d, "lookup", "db")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "%d\n" % obj["port"])

    def test_addr_only(self):
        d = self.berthd()
        obj = self.acquire_json(d, "db")
        r = self.cli(d, "lookup", "db", "--addr-only")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "%s:%d\n" % (obj["host"], obj["port"]))

    def test_json_without_token(self):
        d = self.berthd()
        obj = self.acquire_json(d, "db", "--meta", "k=v")
        r = self.cli(d, "--json", "lookup", "db")
        self.assertExit(r, 0)
        got = json.loads(r.out)
        self.assertNotIn("token", got)
        self.assertEqual(got["name"], "db")
        self.assertEqual(got["port"], obj["port"])
        self.assertEqual(got["meta"], {"k": "v"})

    def test_not_found_exit_3(self):
        d = self.berthd()
        r = self.cli(d, "lookup", "ghost")
        self.assertBerthError(r, 3)
        self.assertEqual(r.out, "", r)

    def test_wait_returns_when_acquired(self):
        d = self.berthd()
        p = subprocess.Popen([CLI, "--addr", d.addr, "lookup", "late",
                              "--wait", "5"], env=clean_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 4
            if "waiters" not in d.get("/v1/status").json:
                time.sleep(1)   # no gauge of parked lookups: give it time
            while d.get("/v1/status").json.get("waiters", 1) < 1:
                self.assertIsNone(p.poll(), "lookup --wait ended early")
                self.assertLess(time.monotonic(), deadline, "never parked")
                time.sleep(0.05)
            got = self.cli(d, "acquire", "late")
            self.assertExit(got, 0)
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out.decode(), got.out)

    def test_wait_on_nothing_exit_3(self):
        d = self.berthd()
        t0 = time.monotonic()
        r = self.cli(d, "lookup", "never", "--wait", "1")
        self.assertBerthError(r, 3)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)


class TestList(CliTestCase):
    def test_table(self):
        d = self.berthd()
        a = self.acquire_json(d, "a", "--ttl", "300", "--pid", str(os.getpid()))
        b = self.acquire_json(d, "bb-longer-name.svc", "--proto", "udp")
        r = self.cli(d, "list")
        self.assertExit(r, 0)
        lines = [l for l in r.out.splitlines() if l.strip()]
        self.assertEqual(len(lines), 3, r)
        header = lines[0]
        for word in ("NAME", "PROTO", "TTL", "PID", "AGE"):
            self.assertIn(word, header.upper(), r)
        rows = {columns(l)[0][2]: columns(l) for l in lines[1:]}
        self.assertEqual(set(rows), {"a", "bb-longer-name.svc"}, r)
        ra, rb = rows["a"], rows["bb-longer-name.svc"]
        self.assertEqual(len(ra), 6, r)   # name host:port proto ttl pid age
        self.assertEqual(len(rb), 6, r)
        self.assertEqual(ra[1][2], "127.0.0.1:%d" % a["port"])
        self.assertEqual(rb[1][2], "127.0.0.1:%d" % b["port"])
        self.assertEqual(ra[2][2], "tcp")
        self.assertEqual(rb[2][2], "udp")
        self.assertRegex(ra[3][2], r"\d")         # ttl left of a 300 s lease
        self.assertNotRegex(ra[3][2], r"^0+s?$")
        self.assertEqual(ra[4][2], str(os.getpid()))
        self.assertNotRegex(rb[4][2], r"[1-9]")   # no owner
        self.assertRegex(ra[5][2], r"\d")         # age
        # aligned: each column starts (or, right-aligned, ends) at the same
        # place in every row, and a header word is there too
        hwords = columns(header)
        hstarts = {s for s, _, _ in hwords}
        hends = {e for _, e, _ in hwords}
        for i in range(6):
            left = ra[i][0] == rb[i][0] and ra[i][0] in hstarts
            right = ra[i][1] == rb[i][1] and ra[i][1] in hends
            self.assertTrue(left or right, "column %d not aligned:\n%s"
                            % (i, r.out))

    def test_empty(self):
        d = self.berthd()
        r = self.cli(d, "list")
        self.assertExit(r, 0)
        self.assertLessEqual(len([l for l in r.out.splitlines() if l.strip()]),
                             1, r)

    def test_json(self):
        d = self.berthd()
        self.acquire_json(d, "one")
        self.acquire_json(d, "two", "--meta", "k=v")
        r = self.cli(d, "--json", "list")
        self.assertExit(r, 0)
        got = json.loads(r.out)
        self.assertEqual(set(got), {"services", "index"})
        self.assertIsInstance(got["index"], int)
        self.assertGreaterEqual(got["index"], 2)
        self.assertEqual(sorted(s["name"] for s in got["services"]),
                         ["one", "two"])
        for s in got["services"]:
            self.assertNotIn("token", s)
        self.assertEqual(got, d.get("/v1/services").json)

    def test_probe(self):
        d = self.berthd(*quiet_range())
        up = self.acquire_json(d, "up")
        down = self.acquire_json(d, "down")
        s = listener(up["port"])
        try:
            # --probe shows what berthd sees, once it has looked.
            self.assertEqual(d.get("/v1/services/up?ready=1&wait=30").status,
                             200)
            r = self.cli(d, "list", "--probe")
        finally:
            s.close()
        self.assertExit(r, 0)
        lines = [l for l in r.out.splitlines() if l.strip()]
        rows = {l.split()[0]: l for l in lines[1:]}
        self.assertEqual(set(rows), {"up", "down"}, r)
        self.assertRegex(lines[0].upper(), r"LISTEN", r)
        lup = rows["up"][len("up"):]
        ldown = rows["down"][len("down"):]
        self.assertRegex(lup, r"(?i)\b(listening|yes)\b", r)
        self.assertNotRegex(lup, r"(?i)\b(not|no)\b", r)
        self.assertRegex(ldown, r"(?i)\b(not|no|closed)\b", r)
        # without --probe there is no such column
        plain = self.cli(d, "list")
        self.assertNotRegex(plain.out.splitlines()[0].upper(), "LISTEN", plain)


class TestListProbeJson(CliTestCase):
    def test_json_probe_has_listening(self):
        d = self.berthd(*quiet_range())
        up = self.acquire_json(d, "up")
        self.acquire_json(d, "down")
        s = listener(up["port"])
        try:
            self.assertEqual(d.get("/v1/services/up?ready=1&wait=30").status,
                             200)
            r = self.cli(d, "--json", "list", "--probe")
            # (while it listens: berthd would see it go)
            api = {x["name"]: x
                   for x in d.get("/v1/services").json["services"]}
        finally:
            s.close()
        self.assertExit(r, 0)
        got = json.loads(r.out)
        self.assertEqual(set(got), {"services", "index"})
        listening = {x["name"]: x["listening"] for x in got["services"]}
        self.assertEqual(listening, {"up": True, "down": False}, r)
        # Otherwise the objects are the API's ("ready" says the same), and
        # without --probe there is no such field.
        for x in got["services"]:
            del x["listening"]
            self.assertEqual(x, api[x["name"]])
        plain = json.loads(self.cli(d, "--json", "list").out)
        self.assertNotIn("listening", plain["services"][0])


class TestRevoke(CliTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="berth-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sock = os.path.join(self.dir, "berth.sock")

    def test_over_tcp_as_admin(self):
        # berthd knows a loopback TCP peer's uid: root may revoke there too.
        if os.geteuid() != 0:
            self.skipTest("needs root: the CLI must be an admin")
        d = self.berthd()
        self.acquire_json(d, "victim")
        r = self.cli(d, "revoke", "victim")
        self.assertExit(r, 0)
        self.assertIsNone(self.lease(d, "victim"))

    def test_over_unix_socket(self):
        d = self.berthd("--listen", "127.0.0.1:0", "--listen",
                        "unix:" + self.sock)
        self.acquire_json(d, "victim")
        r = run_cli("--addr", "unix:" + self.sock, "revoke", "victim")
        self.assertExit(r, 0)
        self.assertIsNone(self.lease(d, "victim"))
        r = run_cli("--addr", "unix:" + self.sock, "revoke", "victim")
        self.assertBerthError(r, 3)

    def test_unix_address_for_every_command(self):
        d = self.berthd("--listen", "127.0.0.1:0", "--listen",
                        "unix:" + self.sock)
        addr = "unix:" + self.sock
        r = run_cli("--addr", addr, "--json", "acquire", "u", "--ttl", "60")
        self.assertExit(r, 0)
        obj = json.loads(r.out)
        self.assertEqual(obj["port"], self.lease(d, "u")["port"])
        r = run_cli("--addr", addr, "lookup", "u")
        self.assertEqual((r.rc, r.out), (0, "%d\n" % obj["port"]), r)
        r = run_cli("--addr", addr, "renew", "u", "--token", obj["token"],
                    "--ttl", "90")
        self.assertExit(r, 0)
        self.assertEqual(self.lease(d, "u")["ttl"], 90)
        r = run_cli("--addr", addr, "list")
        self.assertExit(r, 0)
        self.assertIn("u", [l.split()[0] for l in r.out.splitlines()
                            if l.strip()])
        self.assertExit(run_cli("--addr", addr, "status"), 0)
        self.assertExit(run_cli("--addr", addr, "health"), 0)
        r = run_cli("--addr", addr, "release", "u", "--token", obj["token"])
        self.assertExit(r, 0)
        self.assertIsNone(self.lease(d, "u"))
        # BERTH_ADDR with a unix: address too
        r = run_cli("lookup", "u", env={"BERTH_ADDR": addr})
        self.assertBerthError(r, 3)


class TestInfo(CliTestCase):
    def test_status(self):
        d = self.berthd()
        self.acquire_json(d, "s")
        r = self.cli(d, "status")
        self.assertExit(r, 0)
        self.assertRegex(r.out, r"(?i)pool", r)
        self.assertRegex(r.out, r"(?i)lease", r)

    def test_status_json(self):
        d = self.berthd()
        self.acquire_json(d, "s")
        r = self.cli(d, "--json", "status")
        self.assertExit(r, 0)
        got = json.loads(r.out)
        self.assertIn("pool", got)
        self.assertEqual(got["leases"], 1)

    def test_health(self):
        d = self.berthd()
        self.assertExit(self.cli(d, "health"), 0)
        r = run_cli("--addr", self.dead_addr(), "health")
        self.assertExit(r, 1)
        self.assertIn("berth:", r.err, r)

    def test_version(self):
        want = berthd_version()
        r = run_cli("version")
        self.assertExit(r, 0)
        self.assertRegex(r.out, r"\d+\.\d+\.\d+", r)
        if want:
            self.assertIn(want, r.out)
        # no broker: still 0
        r = run_cli("--addr", self.dead_addr(), "version")
        self.assertExit(r, 0)
        self.assertIn(want or ".", r.out)


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    """Python's http.server serving a directory, without its log lines."""

    def log_message(self, *args):
        pass


class AnswersOk(http.server.BaseHTTPRequestHandler):
    """An HTTP server that answers 200 and a page to any request, as many
    web applications do at paths they do not know."""

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = b"<html><body>hello</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass


class Rtsp(socketserver.BaseRequestHandler):
    """A TCP server that reads the request and answers in a protocol of
    its own, as an RTSP server on the port would."""

    def handle(self):
        self.request.settimeout(2)
        try:
            self.request.recv(65536)
            self.request.sendall(b"RTSP/1.0 400 Bad Request\r\n"
                                 b"Server: camera\r\n\r\n")
        except OSError:
            pass


class Binary(socketserver.BaseRequestHandler):
    """A TCP server that reads the request, answers with binary that is
    not HTTP and hangs up, as PostgreSQL or an SSH server would."""

    def handle(self):
        self.request.settimeout(2)
        try:
            self.request.recv(65536)
            self.request.sendall(b"SSH-2.0-OpenSSH_9.2p1\r\n"
                                 b"\x00\x00\x01\x14\x0a\x14garbage")
        except OSError:
            pass


class TestNotABroker(CliTestCase):
    """--addr at a server that is not berthd: every command says so and
    exits 69, as when no broker answers at all."""

    def serve(self, kind):
        """127.0.0.1:PORT of a server of this kind, running until the test
        ends."""
        if kind in ("rtsp", "binary"):
            srv = socketserver.ThreadingTCPServer(
                ("127.0.0.1", 0), Rtsp if kind == "rtsp" else Binary)
        elif kind == "http.server":
            tmp = tempfile.mkdtemp(prefix="berth-cli-")
            self.addCleanup(shutil.rmtree, tmp, True)
            srv = http.server.ThreadingHTTPServer(
                ("127.0.0.1", 0), functools.partial(QuietFiles, directory=tmp))
        else:
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnswersOk)
        srv.daemon_threads = True
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()

        def stop():
            srv.shutdown()
            srv.server_close()
            t.join()
        self.addCleanup(stop)
        return "127.0.0.1:%d" % srv.server_address[1]

    COMMANDS = [
        ("lookup", "api"), ("lookup", "api", "--wait", "2"),
        ("acquire", "api"), ("list",), ("list", "--probe"), ("health",),
        ("status",), ("renew", "api", "--token", "ab" * 16),
        ("release", "api", "--token", "ab" * 16), ("revoke", "api"),
        ("run", "api", "--", "true"), ("run", "api", "--need", "db", "--",
                                       "true"),
    ]

    def check(self, kind):
        addr = self.serve(kind)
        for args in self.COMMANDS:
            with self.subTest(server=kind, args=args):
                r = run_cli("--addr", addr, *args)
                self.assertEqual(r.rc, 69, r)
                self.assertEqual(r.out, "", r)
                lines = r.err.splitlines()
                self.assertEqual(len(lines), 1, r)
                self.assertTrue(lines[0].startswith(
                    "berth: %s is not a berth broker (" % addr), r)
        with self.subTest(server=kind, args=("doctor",)):
            r = run_cli("--addr", addr, "doctor")
            self.assertEqual(r.rc, 69, r)
            self.assertIn("%s is not a berth broker (" % addr, r.out, r)
        with self.subTest(server=kind, args=("version",)):
            r = run_cli("--addr", addr, "version")
            self.assertEqual(r.rc, 0, r)      # version never fails
            self.assertIn("%s is not a berth broker (" % addr, r.out, r)

    def test_server_of_another_protocol(self):
        self.check("rtsp")

    def test_binary_server(self):
        self.check("binary")

    def test_python_http_server(self):
        self.check("http.server")

    def test_http_server_answering_200_to_all(self):
        self.check("answers-ok")


class TestGlobal(CliTestCase):
    def test_berth_addr_env(self):
        d = self.berthd()
        env = {"BERTH_ADDR": "127.0.0.1:%d" % d.port}
        r = run_cli("acquire", "viaenv", env=env)
        self.assertExit(r, 0)
        self.assertEqual(int(r.out), self.lease(d, "viaenv")["port"])
        r = run_cli("lookup", "viaenv", env=env)
        self.assertExit(r, 0)
        # --addr wins over BERTH_ADDR
        bad = {"BERTH_ADDR": self.dead_addr()}
        r = run_cli("--addr", "127.0.0.1:%d" % d.port, "lookup", "viaenv",
                    env=bad)
        self.assertExit(r, 0)

    def test_global_options_after_command(self):
        d = self.berthd()
        r = run_cli("acquire", "late-opts", "--json", "--addr",
                    "127.0.0.1:%d" % d.port)
        self.assertExit(r, 0)
        obj = json.loads(r.out)
        self.assertRegex(obj["token"], HEX_TOKEN)
        r = run_cli("lookup", "--addr", d.addr, "late-opts", "--json")
        self.assertExit(r, 0)
        self.assertEqual(json.loads(r.out)["port"], obj["port"])
        r = run_cli("list", "--addr=" + d.addr, "--json")
        self.assertExit(r, 0)
        self.assertIn("services", json.loads(r.out))

    def test_unknown_command_exit_2(self):
        d = self.berthd()
        r = self.cli(d, "frobnicate")
        self.assertBerthError(r, 2)
        r = run_cli()
        self.assertEqual(r.rc, 2, r)
        r = run_cli("--bogus-global", "list")
        self.assertEqual(r.rc, 2, r)

    def test_bad_address_exit_2(self):
        r = run_cli("--addr", "not an address", "list")
        self.assertBerthError(r, 2)

    def test_unreachable_exit_69(self):
        addr = self.dead_addr()
        cmds = [("acquire", "x"), ("lookup", "x"), ("list",), ("status",),
                ("renew", "x", "--token", "ab" * 16),
                ("release", "x", "--token", "ab" * 16), ("revoke", "x")]
        for args in cmds:
            with self.subTest(args=args):
                r = run_cli("--addr", addr, *args)
                self.assertEqual(r.rc, 69, r)
                self.assertEqual(r.out, "", r)
                lines = r.err.splitlines()
                self.assertEqual(len(lines), 1, r)
                self.assertTrue(lines[0].startswith("berth: "), r)
                self.assertIn(addr, lines[0])
                self.assertRegex(lines[0], r"(?i)refused", r)
                self.assertIn("berthd", lines[0])
        # the same through BERTH_ADDR
        r = run_cli("list", env={"BERTH_ADDR": addr})
        self.assertEqual(r.rc, 69, r)
        self.assertIn(addr, r.err)

    def test_unreachable_unix_exit_69(self):
        tmp = tempfile.mkdtemp(prefix="berth-cli-")
        self.addCleanup(shutil.rmtree, tmp, True)
        addr = "unix:" + os.path.join(tmp, "none.sock")
        r = run_cli("--addr", addr, "list")
        self.assertEqual(r.rc, 69, r)
        self.assertEqual(len(r.err.splitlines()), 1, r)
        self.assertIn(addr[5:], r.err)
        self.assertIn("berthd", r.err)


if __name__ == "__main__":
    main()
