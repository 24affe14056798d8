"""berth run: the service wrapper of berth(1), end to end against a real
berthd.

Each test runs the CLI ($BERTH_CLI) with --addr pointing at its own berthd.
The commands berth run starts are small sh or python3 scripts that report
what they see (environment, arguments, signals, fd 3) into files in the
test's temporary directory.
"""

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from berthtest import (SLOWDOWN, BerthTestCase, listener, main,
                       needs_own_berthd)
from berthtest import clean_env, stop_process

BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
WAIT = 10.0     # generous bound for things that should happen at once


def wait_for(pred, timeout=WAIT, step=0.02):
    """Poll pred until it returns something true; return that, or None."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(step)


def serving(port, host, family=socket.AF_INET):
    """A TCP socket listening on host:port, with SO_REUSEADDR as servers
    set it (berthd's test bind counts a port in TIME_WAIT as free); the
    caller closes it."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(16)
    return s




def read_env(path):
    """A file written by `env -0` (or `env`) as a dict."""
    with open(path, "rb") as f:
        data = f.read().decode()
    sep = "\0" if "\0" in data else "\n"
    return dict(kv.split("=", 1) for kv in data.split(sep) if "=" in kv)


class PtyRun:
    """A process on the master side of a pseudo-terminal."""

    def __init__(self, pid, master):
        self.pid = pid
        self.master = master
        self.out = b""

    def read(self, timeout=0.05):
        """Add what the terminal shows to self.out; return self.out."""
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                self.out += os.read(self.master, 4096)
            except OSError:         # EIO: the other side is closed
                pass
        return self.out

    def drain(self):
        while len(self.out) != len(self.read(0.1)):
            pass

    def reap(self):
        """[status] once the process has exited, else None."""
        self.read(0)
        got, status = os.waitpid(self.pid, os.WNOHANG)
        return [status] if got == self.pid else None

    def close(self):
        os.close(self.master)


def process_gone(pid):
    """True once pid has exited (gone, or a zombie not yet reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


class RunTest(BerthTestCase):
    def setUp(self):
        super().setUp()
        self.procs = []
        self.child_pids = []
        self.dir = tempfile.mkdtemp(prefix="berth-run-")
        self.d = self.berthd()

    def tearDown(self):
        for p in self.procs:
            stop_process(p)
        for pid in self.child_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def argv(self, *args, addr=None):
        return [BERTH_CLI, "--addr", addr or self.d.addr, "run"] + list(args)

    def start(self, *args, addr=None, env=None, session=False):
        """berth run ARGS in the background, stdout/stderr piped; with
        session=True in a session and process group of its own."""
        p = subprocess.Popen(self.argv(*args, addr=addr), env=env or clean_env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=self.dir,
                             start_new_session=session)
        self.procs.append(p)
        return p

    def finish(self, p, timeout=WAIT):
        """Wait for p; returns (status, stdout, stderr)."""
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode(), err.decode()

    def run_cli(self, *args, addr=None, timeout=WAIT):
        return self.finish(self.start(*args, addr=addr), timeout)

    def metric(self, name):
        """The value of a counter in GET /metrics."""
        r = self.d.get("/metrics")
        self.assertEqual(r.status, 200, r)
        for line in r.body.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
        self.fail("no %s in /metrics" % name)

    def lookup(self, name):
        return self.d.get("/v1/services/" + name)

    def wait_file(self, name, timeout=WAIT):
        path = self.path(name)
        ok = wait_for(lambda: os.path.exists(path), timeout)
        self.assertTrue(ok, "%s never appeared" % name)
        with open(path) as f:
            return f.read()

    def write(self, name, text=""):
        with open(self.path(name), "w") as f:
            f.write(text)

    # A child that writes its environment to env.txt (atomically), then
    # waits until the test creates the file "go".
    WAITER = ('env -0 > env.tmp; mv env.tmp env.txt; '
              'while [ ! -e go ]; do sleep 0.02; done')

    # -- environment and arguments --------------------------------------

    def test_env_and_port_in_arguments(self):
        script = ('env -0 > env.tmp; mv env.tmp env.txt; '
                  'printf "%s\\n" "$@" > args.txt')
        st, out, err = self.run_cli(
            "web", "--", "sh", "-c", script, "sh",
            "{port}", "--listen=:{port}", "a{port}b{port}c", "{por}t", "plain")
        self.assertEqual(st, 0, err)
        env = read_env(self.path("env.txt"))
        port = env["PORT"]
        self.assertTrue(port.isdigit() and 0 < int(port) < 65536, env)
        self.assertEqual(env["BERTH_PORT"], port)
        self.assertEqual(env["BERTH_NAME"], "web")
        # So that `berth lookup` in the command asks the same broker.
        self.assertEqual(env["BERTH_ADDR"], self.d.addr)
        with open(self.path("args.txt")) as f:
            args = f.read().splitlines()
        self.assertEqual(args, [port, "--listen=:" + port,
                                "a%sb%sc" % (port, port), "{por}t", "plain"])

    def test_options_before_name(self):
        st, _, err = self.run_cli("--ttl", "0", "web2", "--", "sh", "-c",
                                  'echo "$BERTH_NAME $PORT" > out.txt')
        self.assertEqual(st, 0, err)
        name, port = self.wait_file("out.txt").split()
        self.assertEqual(name, "web2")
        self.assertTrue(port.isdigit())

    def test_explicit_port_and_host(self):
        # A port this name had before (so no other name's reuse delay).
        first = self.d.acquire("web")
        self.assertEqual(first.status, 201, first)
        port = first.json["port"]
        self.assertEqual(self.d.release("web", first.json["token"]).status, 204)
        p = self.start("web", "--port", str(port), "--host", "localhost",
                       "--", "sh", "-c", self.WAITER)
        self.wait_file("env.txt")
        self.assertEqual(read_env(self.path("env.txt"))["PORT"], str(port))
        r = self.lookup("web")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["host"], r.json["port"]), ("localhost", port))
        self.write("go")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)

    def test_host_in_arguments(self):
        for host, want in ((None, "127.0.0.1"), ("localhost", "localhost"),
                           ("::1", "::1")):
            with self.subTest(host=host):
                args = ["hosty"] + (["--host", host] if host else [])
                st, _, err = self.run_cli(
                    *args, "--", "sh", "-c",
                    'printf "%s\\n" "$PORT" "$@" > args.txt', "sh",
                    "{host}", "--bind={host}:{port}", "{host}{host}", "{hos}t")
                self.assertEqual(st, 0, err)
                with open(self.path("args.txt")) as f:
                    port, *args = f.read().splitlines()
                self.assertEqual(args, [want, "--bind=%s:%s" % (want, port),
                                        want + want, "{hos}t"])

    def test_says_where_the_service_runs(self):
        # One line on stderr when the command starts: NAME on HOST:PORT.
        for host, shown in ((None, "127.0.0.1"), ("::1", "[::1]")):
            with self.subTest(host=host):
                args = ["api"] + (["--host", host] if host else [])
                st, _, err = self.run_cli(*args, "--", "sh", "-c",
                                          'echo "$PORT" > port.txt')
                self.assertEqual(st, 0, err)
                port = self.wait_file("port.txt").strip()
                self.assertEqual(err, "berth: api on %s:%s\n" % (shown, port))

    def test_proto_and_meta(self):
        p = self.start("dns", "--proto", "udp", "--meta", "team=core",
                       "--meta", "url=http://x/?a=b", "--meta", "empty=",
                       "--", "sh", "-c", self.WAITER)
        self.wait_file("env.txt")
        r = self.lookup("dns")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["proto"], "udp")
        self.assertEqual(r.json["meta"], {"team": "core", "url": "http://x/?a=b",
                                          "empty": ""})
        self.write("go")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)
        self.assertEqual(self.lookup("dns").status, 404)

    # -- the lease's life -------------------------------------------------

    @needs_own_berthd("counters from zero")
    def test_lease_held_while_child_runs_then_released(self):
        p = self.start("api", "--", "sh", "-c", self.WAITER)
        self.wait_file("env.txt")
        env = read_env(self.path("env.txt"))
        r = self.lookup("api")
        self.assertEqual(r.status, 200, r)
        lease = r.json
        self.assertEqual(lease["port"], int(env["PORT"]))
        self.assertEqual(lease["pid"], p.pid)       # berth run is the owner
        self.assertEqual(lease["ttl"], 30)          # the default TTL
        self.assertNotIn("token", lease)
        self.write("go")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)
        self.assertError(self.lookup("api"), 404, "not_found")
        # Released with its token, not merely abandoned to owner death.
        self.assertEqual(self.metric("berth_releases_total"), 1)
        self.assertEqual(self.metric("berth_owner_deaths_total"), 0)
        self.assertEqual(self.d.acquire("api").status, 201)

    def test_ttl_renewed_in_background(self):
        p = self.start("short", "--ttl", "2", "--", "sh", "-c", self.WAITER)
        self.wait_file("env.txt")
        port = int(read_env(self.path("env.txt"))["PORT"])
        end = time.monotonic() + 5
        while time.monotonic() < end:
            r = self.lookup("short")
            self.assertEqual(r.status, 200,
                             "lease lapsed after %.1fs" % (5 - end + time.monotonic()))
            self.assertEqual(r.json["port"], port)
            self.assertEqual(r.json["ttl"], 2)
            time.sleep(0.2)
        self.assertIsNone(p.poll())
        self.write("go")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)
        self.assertNotIn("renew", err)       # no warnings on the way
        self.assertError(self.lookup("short"), 404, "not_found")

    def test_renewal_survives_broker_restart(self):
        # On a Unix socket the broker comes back at the same address. It is
        # away for longer than the TTL, so berth run must warn, retry, and
        # then renew or take the lease again, on the same port.
        d = self.berthd("--listen", "unix:" + os.path.join(self.dir, "b.sock"))
        p = self.start("svc", "--ttl", "2", "--", "sh", "-c", self.WAITER,
                       addr=d.addr)
        self.wait_file("env.txt")
        port = int(read_env(self.path("env.txt"))["PORT"])
        d.kill9()
        time.sleep(3)                   # past the TTL while nobody answers
        d.start()

        def back():
            r = d.get("/v1/services/svc")
            return r.status == 200 and r.json["pid"] == p.pid and r

        r = wait_for(back)
        self.assertTrue(r, d.get("/v1/services/svc"))
        self.assertEqual(r.json["port"], port)
        self.assertIsNone(p.poll())
        self.write("go")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)
        self.assertIn("will retry", err)
        self.assertIn(d.addr, err)
        self.assertEqual(d.get("/v1/services/svc").status, 404)

    def test_sigkill_of_berth_run_ends_lease(self):
        p = self.start("orphan", "--", "sh", "-c",
                       'echo $$ > pid.txt; exec sleep 60')
        pid = int(self.wait_file("pid.txt") or 0)
        self.child_pids.append(pid)
        self.assertEqual(self.lookup("orphan").status, 200)
        p.kill()
        p.wait()
        gone = wait_for(lambda: self.lookup("orphan").status == 404, 5)
        self.assertTrue(gone, "lease outlived its owner: %r" % self.lookup("orphan"))
        # The command does not outlive berth run either (PR_SET_PDEATHSIG):
        # it must not go on serving a port that is no longer leased to it.
        dead = wait_for(lambda: process_gone(pid), 5)
        self.assertTrue(dead, "the command outlived berth run")

    # -- exit status --------------------------------------------------------

    def test_exit_status_propagates(self):
        for script, want in (("exit 0", 0), ("exit 7", 7), ("exit 255", 255),
                             ("kill -KILL $$", 128 + signal.SIGKILL),
                             ("kill -TERM $$", 128 + signal.SIGTERM)):
            with self.subTest(script=script):
                st, _, err = self.run_cli("st", "--", "sh", "-c", script)
                self.assertEqual(st, want, err)
                self.assertError(self.lookup("st"), 404, "not_found")

    def test_command_not_found_127_not_executable_126(self):
        st, _, err = self.run_cli("nf", "--", "./no-such-command-here", "x")
        self.assertEqual(st, 127, err)
        self.assertIn("no-such-command-here", err)
        self.assertTrue(err.startswith("berth: "), err)
        self.assertError(self.lookup("nf"), 404, "not_found")
        self.write("noexec.sh", "#!/bin/sh\nexit 0\n")
        os.chmod(self.path("noexec.sh"), 0o644)   # no x bit, even for root
        st, _, err = self.run_cli("nx", "--", "./noexec.sh")
        self.assertEqual(st, 126, err)
        self.assertIn("noexec.sh", err)
        self.assertError(self.lookup("nx"), 404, "not_found")

    # -- signals ---------------------------------------------------------------

    def test_signals_forwarded(self):
        # The child records HUP and INT and carries on; TERM ends it with 3.
        script = ('trap "echo HUP >> sig.txt" HUP; '
                  'trap "echo INT >> sig.txt" INT; '
                  'trap "echo TERM >> sig.txt; exit 3" TERM; '
                  'echo ready > ready.txt; '
                  'while :; do sleep 0.02; done')
        p = self.start("sig", "--", "sh", "-c", script)
        self.wait_file("ready.txt")

        def seen():
            try:
                with open(self.path("sig.txt")) as f:
                    return f.read().split()
            except FileNotFoundError:
                return []

        p.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: seen() == ["HUP"]), seen())
        self.assertIsNone(p.poll(), "berth run died of SIGHUP")
        p.send_signal(signal.SIGINT)
        self.assertTrue(wait_for(lambda: seen() == ["HUP", "INT"]), seen())
        self.assertIsNone(p.poll(), "berth run died of SIGINT")
        self.assertEqual(self.lookup("sig").status, 200)
        p.send_signal(signal.SIGTERM)
        st, _, err = self.finish(p)
        self.assertEqual(st, 3, err)
        self.assertEqual(seen(), ["HUP", "INT", "TERM"])
        self.assertError(self.lookup("sig"), 404, "not_found")

    def test_sigterm_to_default_child(self):
        # A child that does not catch SIGTERM dies of it: 128+15.
        p = self.start("sig2", "--", "sh", "-c",
                       'echo ready > ready.txt; exec sleep 60')
        self.wait_file("ready.txt")
        p.send_signal(signal.SIGTERM)
        st, _, err = self.finish(p)
        self.assertEqual(st, 128 + signal.SIGTERM, err)
        self.assertError(self.lookup("sig2"), 404, "not_found")

    # A child that appends the name of each SIGTERM, SIGINT and SIGHUP it
    # gets to sig.txt and carries on, until the test creates "go" or berth
    # run is gone; ready.txt holds its pid. Python
    # runs a handler once for signals that arrive close together, so the
    # count comes from the wakeup fd: a byte per signal the kernel delivers.
    COUNTER = r"""
import os, select, signal
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, lambda sig, frame: None)
with open("r.tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename("r.tmp", "ready.txt")
parent = os.getppid()
while not os.path.exists("go") and os.getppid() == parent:
    if select.select([r], [], [], 0.02)[0]:
        with open("sig.txt", "a") as f:
            for b in os.read(r, 64):
                f.write(signal.Signals(b).name + "\n")
"""

    def signals_seen(self):
        try:
            with open(self.path("sig.txt")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def assert_seen(self, want):
        """The child has seen exactly want, and nothing more comes."""
        self.assertTrue(wait_for(lambda: len(self.signals_seen()) >= len(want)),
                        self.signals_seen())
        time.sleep(1.0 * SLOWDOWN)       # a second copy would be here by now
        self.assertEqual(self.signals_seen(), want)

    def group_pids(self, pgid):
        """Every process in process group pgid, from /proc."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                pids.append(int(d))
        return pids

    # A signal that reaches the command twice in quick succession may be
    # merged into one by the kernel, so a test that sends only one could
    # pass by luck: each sends several.
    ROUNDS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) * 2

    def test_group_signal_reaches_child_once(self):
        # A terminal, or kill -TERM -PGID, signals the whole process group:
        # the command has the signal already and must not get it twice.
        p = self.start("once", "--", sys.executable, "-c", self.COUNTER,
                       session=True)
        self.child_pids.append(int(self.wait_file("ready.txt")))
        pgid = os.getpgid(p.pid)
        self.assertEqual(pgid, p.pid)
        seen = []
        for sig in self.ROUNDS:
            os.killpg(pgid, sig)
            seen.append(sig.name)
            self.assert_seen(seen)
        self.assertIsNone(p.poll())
        self.write("go")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)

    def test_signal_to_berth_run_alone_forwarded_once(self):
        p = self.start("once", "--", sys.executable, "-c", self.COUNTER,
                       session=True)
        self.child_pids.append(int(self.wait_file("ready.txt")))
        p.send_signal(signal.SIGTERM)
        self.assert_seen(["SIGTERM"])
        p.send_signal(signal.SIGINT)
        self.assert_seen(["SIGTERM", "SIGINT"])
        self.assertIsNone(p.poll())
        self.write("go")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)

    def test_signal_to_every_process_reaches_child_once(self):
        # systemctl stop with KillMode=control-group signals the main
        # process (berth run), then every other process of the unit one by
        # one: the command gets it from systemd and must not get it again.
        p = self.start("once", "--", sys.executable, "-c", self.COUNTER,
                       session=True)
        self.child_pids.append(int(self.wait_file("ready.txt")))
        pids = self.group_pids(p.pid)
        self.assertIn(p.pid, pids)
        seen = []
        for sig in self.ROUNDS:
            os.kill(p.pid, sig)
            time.sleep(0.02)        # as systemd takes a moment to go on
            for pid in pids:
                if pid != p.pid:
                    os.kill(pid, sig)
            seen.append(sig.name)
            self.assert_seen(seen)
        self.assertIsNone(p.poll())
        self.write("go")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)

    # -- --need -------------------------------------------------------------

    def test_need_waits_for_deps(self):
        # A dependency is there when its service listens, not merely when
        # its name is registered (test_ready.py has the waiting for that).
        try:
            listener(0, "::1", socket.AF_INET6).close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        first = self.d.acquire("cache")
        self.assertEqual(first.status, 201, first)
        socks = [serving(first.json["port"], "127.0.0.1")]
        self.addCleanup(lambda: [s.close() for s in socks])
        ready = self.d.get("/v1/services/cache?ready=1&wait=%d" % WAIT)
        self.assertEqual(ready.status, 200, ready)
        p = self.start("app", "--need", "cache", "--need", "my-db.v2",
                       "--need", "v6.svc", "--timeout", "30",
                       "--", "sh", "-c", "env -0 > env.tmp; mv env.tmp env.txt")
        time.sleep(0.5)
        self.assertIsNone(p.poll(), "berth run did not wait")
        self.assertFalse(os.path.exists(self.path("env.txt")))
        self.assertError(self.lookup("app"), 404, "not_found")
        db = self.d.acquire("my-db.v2", host="127.0.0.1")
        self.assertEqual(db.status, 201, db)
        socks.append(serving(db.json["port"], "127.0.0.1"))
        time.sleep(0.3)
        self.assertFalse(os.path.exists(self.path("env.txt")),
                         "started before every dep was there")
        v6 = self.d.acquire("v6.svc", host="::1")
        self.assertEqual(v6.status, 201, v6)
        socks.append(serving(v6.json["port"], "::1", socket.AF_INET6))
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)
        env = read_env(self.path("env.txt"))
        dbp, cp, v6p = db.json["port"], first.json["port"], v6.json["port"]
        self.assertEqual(env["BERTH_MY_DB_V2_ADDR"], "127.0.0.1:%d" % dbp)
        self.assertEqual(env["BERTH_MY_DB_V2_PORT"], str(dbp))
        self.assertEqual(env["BERTH_CACHE_ADDR"], "127.0.0.1:%d" % cp)
        self.assertEqual(env["BERTH_CACHE_PORT"], str(cp))
        self.assertEqual(env["BERTH_V6_SVC_ADDR"], "[::1]:%d" % v6p)
        self.assertEqual(env["BERTH_V6_SVC_PORT"], str(v6p))
        self.assertEqual(env["BERTH_NAME"], "app")
        # stderr is not a terminal: no line for a name not registered yet
        # (one for a name registered before it listens may come, if berth
        # run looks in between: test_ready.py has that line).
        self.assertNotRegex(err, r"waiting for \S+ at ")

    def test_need_timeout(self):
        t0 = time.monotonic()
        st, out, err = self.run_cli("app", "--need", "never", "--timeout", "1",
                                    "--", "sh", "-c", "echo ran > ran.txt")
        took = time.monotonic() - t0
        self.assertEqual(st, 1, err)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, WAIT)
        self.assertTrue(err.startswith("berth: "), err)
        self.assertIn("never", err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertFalse(os.path.exists(self.path("ran.txt")))
        self.assertError(self.lookup("app"), 404, "not_found")

    def pty_start(self, *args):
        """berth run ARGS on a new terminal; returns a PtyRun."""
        argv = self.argv(*args)
        pid, master = pty.fork()
        if pid == 0:
            try:
                os.chdir(self.dir)
                os.execve(argv[0], argv, clean_env())
            finally:
                os._exit(120)
        self.child_pids.append(pid)
        run = PtyRun(pid, master)
        self.addCleanup(run.close)
        return run

    def pty_finish(self, run):
        """Wait for berth run on a terminal to exit; returns its exit code."""
        st = wait_for(lambda: run.reap())
        self.assertIsNotNone(st, "berth run did not exit")
        self.child_pids.remove(run.pid)
        run.drain()
        self.assertTrue(os.WIFEXITED(st[0]), st)
        return os.WEXITSTATUS(st[0])

    def test_need_in_a_terminal(self):
        """With stderr on a terminal: the waiting line, and ^C goes through."""
        # int.txt appears only once written: wait_file reads it at once.
        script = ('trap "echo INT > int.tmp; mv int.tmp int.txt; exit 3" INT; '
                  'echo ready > ready.txt; while :; do sleep 0.02; done')
        run = self.pty_start("app", "--need", "late-dep", "--timeout", "30",
                             "--", "sh", "-c", script)
        line = ("berth: waiting for late-dep at %s...\r\n" % self.d.addr).encode()
        self.assertTrue(wait_for(lambda: line in run.read()), run.out)
        dep = self.d.acquire("late-dep")
        self.assertEqual(dep.status, 201, dep)
        s = serving(dep.json["port"], "127.0.0.1")
        self.addCleanup(s.close)
        self.wait_file("ready.txt")
        os.write(run.master, b"\x03")          # ^C: SIGINT to the group
        self.assertEqual(self.wait_file("int.txt").strip(), "INT")
        self.assertEqual(self.pty_finish(run), 3, run.out)
        self.assertEqual(run.out.count(b"waiting for"), 1, run.out)
        self.assertError(self.lookup("app"), 404, "not_found")

    def test_terminal_ctrl_c_reaches_child_in_own_group(self):
        # A command that moved to its own process group does not get the
        # terminal's SIGINT from the kernel: berth run must pass it on.
        script = r"""
import os, signal, sys, time
os.setpgid(0, 0)
def onint(sig, frame):
    with open("int.tmp", "w") as f:
        f.write("INT")
    os.rename("int.tmp", "int.txt")     # whole when it appears
    sys.exit(3)
signal.signal(signal.SIGINT, onint)
os.rename(open("r.tmp", "w").name, "ready.txt")
while True:
    time.sleep(0.02)
"""
        run = self.pty_start("grp", "--", sys.executable, "-c", script)
        self.wait_file("ready.txt")
        os.write(run.master, b"\x03")
        self.assertEqual(self.wait_file("int.txt"), "INT", run.read())
        self.assertEqual(self.pty_finish(run), 3, run.out)
        self.assertError(self.lookup("grp"), 404, "not_found")

    # -- --fd ------------------------------------------------------------------

    FD_CHILD = r"""
import json, os, socket, sys
res = {"pid": os.getpid(), "port": os.environ.get("PORT"),
       "LISTEN_FDS": os.environ.get("LISTEN_FDS"),
       "LISTEN_PID": os.environ.get("LISTEN_PID"),
       "LISTEN_FDNAMES": os.environ.get("LISTEN_FDNAMES")}
s = socket.socket(fileno=3)
res["family"] = int(s.family)
res["type"] = int(s.type)
res["sockname"] = list(s.getsockname()[:2])
res["accepting"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
res["inheritable"] = os.get_inheritable(3)
res["fd4"] = True
try:
    os.fstat(4)
except OSError:
    res["fd4"] = False
with open("fd.tmp", "w") as f:
    json.dump(res, f)
os.rename("fd.tmp", "fd.json")
c, _ = s.accept()
c.sendall(b"hello from fd 3")
c.close()
"""

    def check_fd(self, host, family):
        args = ["web", "--fd"]
        if host:
            args += ["--host", host]
        p = self.start(*args, "--", sys.executable, "-c", self.FD_CHILD)
        self.wait_file("fd.json")
        with open(self.path("fd.json")) as f:
            res = json.load(f)
        port = int(res["port"])
        self.assertEqual(res["LISTEN_FDS"], "1")
        self.assertEqual(res["LISTEN_PID"], str(res["pid"]))
        self.assertEqual(res["LISTEN_FDNAMES"], "web")
        self.assertEqual(res["family"], int(family))
        self.assertEqual(res["type"], int(socket.SOCK_STREAM))
        self.assertEqual(res["sockname"], [host or "127.0.0.1", port])
        self.assertEqual(res["accepting"], 1)
        self.assertTrue(res["inheritable"])
        lease = self.lookup("web")
        self.assertEqual(lease.status, 200, lease)
        self.assertEqual(lease.json["port"], port)
        with socket.create_connection((host or "127.0.0.1", port), timeout=WAIT) as c:
            self.assertEqual(c.recv(100), b"hello from fd 3")
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)
        self.assertError(self.lookup("web"), 404, "not_found")

    def test_fd_hands_over_listening_socket(self):
        self.check_fd(None, socket.AF_INET)

    def test_fd_ipv6_host(self):
        try:
            listener(0, "::1", socket.AF_INET6).close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        self.check_fd("::1", socket.AF_INET6)

    def test_no_listen_vars_without_fd(self):
        # LISTEN_* berth run itself was given are not passed on as if valid.
        env = clean_env(LISTEN_FDS="1", LISTEN_PID="1", LISTEN_FDNAMES="x")
        p = self.start("web", "--", "sh", "-c", "env -0 > env.tmp; mv env.tmp env.txt",
                       env=env)
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)
        env = read_env(self.path("env.txt"))
        self.assertNotIn("LISTEN_FDS", env)
        self.assertNotIn("LISTEN_PID", env)

    # -- a command that goes to the background ---------------------------------

    # A server that daemonises, as nginx does without "daemon off;": it
    # listens on $PORT, forks a child that keeps the socket (and writes its
    # pid to daemon.pid), and exits 0 at once.
    DAEMONISER = r"""
import os, socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(8)
if os.fork() == 0:
    os.setsid()
    fd = os.open("/dev/null", os.O_RDWR)
    for i in (0, 1, 2):
        os.dup2(fd, i)
    with open("daemon.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename("daemon.tmp", "daemon.pid")
    while True:
        time.sleep(1)
os._exit(0)
"""

    def test_daemonising_command_warned(self):
        p = self.start("bg", "--", sys.executable, "-c", self.DAEMONISER)
        pid = int(self.wait_file("daemon.pid"))
        self.child_pids.append(pid)
        st, _, err = self.finish(p)
        self.assertEqual(st, 0, err)           # the command's status
        port = self.lookup_port_from(err)
        warn = [l for l in err.splitlines() if "foreground" in l]
        self.assertEqual(len(warn), 1, err)
        self.assertTrue(warn[0].startswith("berth: "), err)
        self.assertIn(str(port), warn[0])
        self.assertIn("pid %d" % pid, warn[0])
        self.assertIn("daemon off", warn[0])
        self.assertEqual(len(err.splitlines()), 2, err)   # start line + warning
        self.assertEqual(self.lookup("bg").status, 404)

    def test_foreground_command_not_warned(self):
        # A server that listened and exited 0, its port free again.
        server = ("import os, socket\n"
                  "s = socket.socket()\n"
                  "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                  "s.bind(('127.0.0.1', int(os.environ['PORT'])))\n"
                  "s.listen(1)\n")
        st, _, err = self.run_cli("fg", "--", sys.executable, "-c", server)
        self.assertEqual(st, 0, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertNotIn("foreground", err)

    def lookup_port_from(self, err):
        """The port in berth run's "berth: NAME on HOST:PORT" line."""
        first = err.splitlines()[0]
        self.assertRegex(first, r"^berth: \S+ on \S+:\d+$", err)
        return int(first.rsplit(":", 1)[1])

    # -- errors ----------------------------------------------------------------

    def test_name_taken_exits_4(self):
        held = self.d.acquire("taken")
        self.assertEqual(held.status, 201)
        st, out, err = self.run_cli("taken", "--", "sh", "-c", "echo ran > ran.txt")
        self.assertEqual(st, 4, err)
        self.assertTrue(err.startswith("berth: "), err)
        self.assertIn("taken", err)
        self.assertFalse(os.path.exists(self.path("ran.txt")))
        r = self.lookup("taken")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["port"], held.json["port"])

    def test_broker_unreachable_exits_69(self):
        addr = self.dead_addr()
        st, out, err = self.run_cli("web", "--", "sh", "-c",
                                    "echo ran > ran.txt", addr=addr)
        self.assertEqual(st, 69, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("berth: "), err)
        self.assertIn(addr, err)
        self.assertIn("berthd", err)
        self.assertFalse(os.path.exists(self.path("ran.txt")))

    def test_usage_errors_exit_2(self):
        for args in (["web", "--"], ["web"], [], ["--", "true"],
                     ["web", "--bogus", "--", "true"], ["web", "--ttl"],
                     ["web", "--ttl", "soon", "--", "true"],
                     ["web", "--port", "70000", "--", "true"],
                     ["web", "--proto", "sctp", "--", "true"],
                     ["web", "--meta", "novalue", "--", "true"],
                     ["web", "--meta", "=v", "--", "true"],
                     ["web", "--host", "", "--", "true"],
                     ["web", "--fd", "--proto", "udp", "--", "true"],
                     ["web", "true"]):   # the command must follow "--"
            with self.subTest(args=args):
                st, out, err = self.run_cli(*args)
                self.assertEqual(st, 2, err)
                self.assertTrue(err.startswith("berth: ") or "usage" in err, err)
        self.assertError(self.lookup("web"), 404, "not_found")


if __name__ == "__main__":
    main()
