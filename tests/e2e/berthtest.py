"""berthtest: the harness for berth's end-to-end tests.

Each test starts its own berthd on 127.0.0.1:0 (the kernel picks a free
port, so there is no probe-then-bind race) with a temporary database, and
learns the address from the READY=1/STATUS datagram berthd sends to
NOTIFY_SOCKET, as systemd would receive it. Everything started here is
ended by pid when the test ends.

BERTHD names the daemon binary (make check sets it).

BERTH_TEST_ADDR, when set to a berthd's address (127.0.0.1:62893, or
unix:/path), runs the suites against that already-running berthd instead
of one started per test, as memcached's tests can use an external server:

    python3 tests/e2e/berthtest.py start --db /tmp/t.db \
        --listen 127.0.0.1:62893 --listen unix:/tmp/t.sock
    BERTH_TEST_ADDR=127.0.0.1:62893 make check      # not -j: one daemon

BerthTestCase.berthd() then returns that daemon, with every live lease
revoked before and after each test (through its unix socket, which it
must also listen on, as this user or root), and a test that needs a berthd of its own (flags, its own
database or environment, two daemons, a restart, a signal, its log or
process) is skipped with a one-line reason; so are whole suites about
starting berthd (needs_own_berthd). Unset, every test starts its own
berthd and nothing is skipped for this.

BERTHD_WRAPPER, when set, is a command line put in front of berthd's, for
example "valgrind --quiet --error-exitcode=99 --leak-check=full ..."
(tests/valgrind.sh sets it). Under a wrapper the harness waits longer for
readiness and for exit, ends each daemon with SIGTERM instead of SIGKILL
so the wrapper can check it at exit, and fails the test if the wrapper
reported errors (exit status 99, or valgrind's "==PID==" error lines in
the daemon's log). Without it nothing changes.
"""

import http.client
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BERTHD = os.environ.get("BERTHD", "berthd")
WRAPPER = shlex.split(os.environ.get("BERTHD_WRAPPER", ""))
# How much slower berthd runs under the wrapper (valgrind: 20-50x on startup).
SLOWDOWN = 10 if WRAPPER else 1
START_TIMEOUT = 60.0 if WRAPPER else 10.0
TEST_ADDR = os.environ.get("BERTH_TEST_ADDR", "")
WRAPPER_ERROR_EXIT = 99

# Valgrind's report lines that mean an error or a leak (not its warnings).
_VG_LINE = re.compile(r"^==\d+== ", re.M)
_VG_ERROR = re.compile(r"^==\d+== (Invalid (read|write|free)|Mismatched free"
                       r"|Conditional jump|Use of uninitialised|Syscall param"
                       r"|Source and destination overlap|Argument .* fishy"
                       r"|.* are (definitely|indirectly) lost"
                       r"|ERROR SUMMARY: [1-9]|Jump to the invalid"
                       r"|Invalid .* of size)", re.M)


# A sanitizer's report (a build with --enable-sanitizers run with, e.g.,
# BERTHD_WRAPPER=env so that daemons end with SIGTERM and are checked).
_SAN_ERROR = re.compile(r"^(==\d+==ERROR: \w+Sanitizer|.*: runtime error: )",
                        re.M)


def wrapper_errors(text):
    """The wrapper's report in a log if it shows an error or leak, else ''.

    Valgrind's "==PID==" lines, or a sanitizer's report (40 lines of it)."""
    out = []
    if _VG_ERROR.search(text):
        out += [l for l in text.splitlines() if _VG_LINE.match(l)]
    m = _SAN_ERROR.search(text)
    if m:
        out += text[m.start():].splitlines()[:40]
    return "\n".join(out)


def read_log(path):
    """A log file's text so far ("" if there is none yet)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


DEBIAN_PYTHON = "/usr/bin/python3"


def debian_python_for(module):
    """Make sure this test runs under a Python that can import module (a
    Debian package, such as python3-dnspython). When the python3 first
    in PATH cannot (a pyenv or venv one) and Debian's can, the test
    becomes Debian's Python running the same file (exec: same pid, same
    environment). Returns without a word when neither can: the test
    skips, saying what to install."""
    try:
        __import__(module)
        return
    except ImportError:
        pass
    if os.path.realpath(sys.executable) == os.path.realpath(DEBIAN_PYTHON) \
            or not os.access(DEBIAN_PYTHON, os.X_OK):
        return
    r = subprocess.run([DEBIAN_PYTHON, "-c", "import " + module],
                       capture_output=True)
    if r.returncode == 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)


class StartError(RuntimeError):
    """berthd exited, or did not say READY in time."""


def berthd_argv(args):
    """The command line that starts berthd with args: BERTHD_WRAPPER's
    words, BERTHD, args, and --listen 127.0.0.1:0 unless args name an
    address to listen on. DNS goes on a UDP port of the kernel's choice
    too (--dns 127.0.0.1:0) unless args say --dns: by default it takes
    the TCP port's number, which a UDP socket of another program may
    hold, and one berthd in a thousand would then fail to start."""
    argv = WRAPPER + [BERTHD] + list(args)
    if not any(a.startswith("--listen") for a in args):
        argv += ["--listen", "127.0.0.1:0"]
    if not any(a.startswith("--dns") for a in args):
        argv += ["--dns", "127.0.0.1:0"]
    return argv


def berthd_env(notify_path, extra=None):
    """berthd's environment: ours without BERTH_* (so only flags configure
    it), then extra, and NOTIFY_SOCKET."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env.update(extra or {})
    env["NOTIFY_SOCKET"] = notify_path
    return env


def notify_socket(path):
    """A datagram socket bound to path, where berthd sends READY."""
    if os.path.exists(path):
        os.unlink(path)
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(path)
    return nsock


def await_ready(nsock, exited, timeout=None):
    """Wait on nsock for berthd's READY=1 datagram and return the address
    of its STATUS line ("serving on ADDR"). exited() is None while berthd
    runs, else its exit status (True when unknown). Raises StartError if
    berthd exits first or timeout seconds (START_TIMEOUT) pass."""
    timeout = START_TIMEOUT if timeout is None else timeout
    nsock.settimeout(0.1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = nsock.recv(4096).decode()
            break
        except socket.timeout:
            status = exited()
            if status is not None:
                raise StartError("berthd exited%s before it was ready"
                                 % ("" if status is True
                                    else " with %d" % status))
            if time.monotonic() > deadline:
                raise StartError("berthd not ready after %.0fs" % timeout)
    fields = dict(line.split("=", 1) for line in msg.splitlines() if "=" in line)
    if fields.get("READY") != "1" or "serving on " not in fields.get("STATUS", ""):
        raise StartError("not a READY datagram with an address: %r" % msg)
    return fields["STATUS"].split("serving on ", 1)[1]


def split_addr(addr):
    """(host, port) of a STATUS address; a unix: address has port 0."""
    if addr.startswith("["):
        host, port = addr[1:].split("]:")
    elif addr.startswith("unix:"):
        host, port = addr, "0"
    else:
        host, port = addr.rsplit(":", 1)
    return host, int(port)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def index(self):
        return int(self.headers["X-Berth-Index"])

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class Berthd:
    """One berthd process with its own temporary state directory."""

    def __init__(self, args=(), env=None, db=None, tmpdir=None, preexec=None):
        self.own_tmp = tmpdir is None
        self.preexec = preexec     # run in the child before exec
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="berth-e2e-")
        self.db = db or os.path.join(self.tmp, "berth.db")
        self.args = list(args)
        self.env = dict(env or {})
        self.proc = None
        self.addr = None
        self.log_path = os.path.join(self.tmp, "berthd.log")
        self.statuses = []      # exit statuses of the runs restart() ended
        try:
            self.start()
        except (StartError, OSError):
            # No test holds this daemon to clean up after: its log is in
            # the error already.
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if getattr(self, "log", None) and not self.log.closed:
                self.log.close()
            if self.own_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def start(self, expect_ready=True):
        notify_path = os.path.join(self.tmp, "notify.sock")
        nsock = notify_socket(notify_path)
        args = berthd_argv(["--db", self.db, "--log-level", "debug"]
                           + self.args)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     env=berthd_env(notify_path, self.env),
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=self.preexec)
        if not expect_ready:
            nsock.close()
            return
        try:
            self.addr = await_ready(nsock, self.proc.poll)
        except StartError as e:
            if self.proc.poll() is not None:
                self.log.close()
            raise StartError("%s:\n%s" % (e, self.logtext())) from None
        finally:
            nsock.close()
        self.host, self.port = split_addr(self.addr)

    def logtext(self):
        return read_log(self.log_path)

    def request(self, method, path, body=None, headers=None, raw=None,
                timeout=30, conn=None):
        """One HTTP request; body is JSON-encoded unless raw bytes are given."""
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        own = conn is None
        if own:
            if self.addr.startswith("unix:"):
                conn = UnixHTTPConnection(self.addr[5:], timeout=timeout)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            return Response(resp.status, resp.headers, payload.decode(errors="replace"))
        finally:
            if own:
                conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def metric(self, name):
        """The value of the unlabelled sample name in /metrics, as an
        int; an AssertionError when there is none."""
        m = re.search(r"^%s (\d+)$" % re.escape(name),
                      self.get("/metrics").body, re.M)
        if m is None:
            raise AssertionError("no sample %s in /metrics" % name)
        return int(m.group(1))

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def acquire(self, name, token=None, **fields):
        body = {"name": name}
        body.update(fields)
        headers = {"Authorization": "Bearer " + token} if token else None
        return self.post("/v1/services", body, headers=headers)

    def release(self, name, token):
        return self.delete("/v1/services/" + name,
                           headers={"Authorization": "Bearer " + token})

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Send sig and wait; returns the exit status (negative: signal)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout * SLOWDOWN)
        finally:
            self.log.close()

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self, sig=signal.SIGKILL):
        self.stop(sig)
        if self.proc is not None:
            self.statuses.append(self.proc.returncode)
        self.start()

    def close(self):
        if WRAPPER:
            self._close_wrapped()
            return
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.log and not self.log.closed:
            self.log.close()

    def _close_wrapped(self):
        """End the daemon with SIGTERM so the wrapper (valgrind) can check
        it at exit; raise AssertionError if the wrapper found errors in this
        or an earlier run of the daemon."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.statuses.append("no exit 60 s after SIGTERM")
        if self.proc is not None:
            self.statuses.append(self.proc.returncode)
        if self.log and not self.log.closed:
            self.log.close()
        text = self.logtext()
        errors = wrapper_errors(text)
        if WRAPPER_ERROR_EXIT in self.statuses or errors:
            raise AssertionError(
                "berthd under %s: exit statuses %r; wrapper errors:\n%s\n"
                "---- berthd log tail (%s) ----\n%s"
                % (WRAPPER[0], self.statuses, errors or "(none in the log)",
                   self.log_path, text[-4000:]))


def _own_berthd_only(what):
    def fail(self, *args, **kw):
        raise unittest.SkipTest("needs a berthd of its own (%s); "
                                "BERTH_TEST_ADDR is set" % what)
    return fail


class ExternalBerthd(Berthd):
    """The berthd at BERTH_TEST_ADDR: one this harness did not start.
    Requests go to it; what only a daemon of the test's own has (its
    process, database, log, restarts) skips the test."""

    def __init__(self, addr):
        self.addr = addr
        self.host, self.port = split_addr(addr)
        self.tmp = None     # a scratch directory for the test, made by use()
        self.own_tmp = True

    def use(self):
        """Begin a test: no leases, and a scratch directory."""
        self.clear()
        self.tmp = tempfile.mkdtemp(prefix="berth-e2e-")

    proc = property(_own_berthd_only("its process"))
    db = property(_own_berthd_only("its database"))
    log_path = property(_own_berthd_only("its log"))
    logtext = _own_berthd_only("its log")
    start = _own_berthd_only("a start")
    stop = _own_berthd_only("a stop")
    kill9 = _own_berthd_only("kill -9")
    restart = _own_berthd_only("a restart")

    def clear(self):
        """Revoke every live lease, so each test starts from none: an
        admin's request, so through berthd's unix socket."""
        r = self.get("/v1/status")
        if r.status != 200:
            raise AssertionError("BERTH_TEST_ADDR=%s: status: %r"
                                 % (self.addr, r))
        unix = [a for a in r.json["listen"] if a.startswith("unix:")]
        if not unix:
            raise AssertionError(
                "BERTH_TEST_ADDR=%s: that berthd must also listen on a unix "
                "socket (--listen unix:PATH), through which the tests "
                "revoke leases between tests" % self.addr)
        admin = ExternalBerthd(unix[0])
        r = admin.get("/v1/services")
        if r.status != 200:
            raise AssertionError("BERTH_TEST_ADDR=%s: listing leases: %r"
                                 % (self.addr, r))
        for svc in r.json["services"]:
            r = admin.delete("/v1/services/%s?force=1" % svc["name"])
            if r.status not in (204, 404):
                raise AssertionError(
                    "BERTH_TEST_ADDR=%s: cannot revoke %s (%r): run that "
                    "berthd as this user" % (self.addr, svc["name"], r))

    def close(self):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.clear()


def needs_own_berthd(reason):
    """Skip a test or class when BERTH_TEST_ADDR is set: reason says why
    it needs a berthd of its own (e.g. "it starts berthd itself")."""
    return unittest.skipIf(TEST_ADDR, "needs a berthd of its own (%s); "
                           "BERTH_TEST_ADDR is set" % reason)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class BerthTestCase(unittest.TestCase):
    """A test case that owns the berthds it starts and shows their logs on failure."""

    def berthd(self, *args, default_pool=False, **kw):
        """A berthd of this test's, with args. Its pool is a random 1000
        ports of its own (private_pool) unless args give --range or the
        test is about the default pool (default_pool=True)."""
        if TEST_ADDR:
            return self._external_berthd(args, kw)
        if not default_pool and not any(a.startswith("--range")
                                        for a in args):
            args = tuple(args) + tuple(private_pool(1000))
        d = Berthd(args, **kw)
        self.daemons.append(d)
        return d

    def _external_berthd(self, args, kw):
        if args or kw:
            self.skipTest("needs a berthd of its own (%s); BERTH_TEST_ADDR "
                          "is set" % " ".join(list(args) + sorted(kw)))
        if self.daemons:
            self.skipTest("needs two berthds; BERTH_TEST_ADDR is set")
        d = ExternalBerthd(TEST_ADDR)
        self.daemons.append(d)
        d.use()
        return d

    def setUp(self):
        self.daemons = []
        self._problems_before = self._problem_count()

    def _problem_count(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return 0
        return len(result.errors) + len(result.failures)

    def tearDown(self):
        failed = self._problem_count() > self._problems_before
        wrapped = []
        for d in self.daemons:
            try:
                d.close()
            except AssertionError as e:
                wrapped.append(e)
                failed = True
        for d in self.daemons:
            if isinstance(d, ExternalBerthd):
                continue
            if failed:
                print("---- berthd log (%s) ----\n%s" % (d.tmp, d.logtext()[-4000:]))
            elif d.own_tmp:
                shutil.rmtree(d.tmp, ignore_errors=True)
        if wrapped:
            raise AssertionError("\n\n".join(str(e) for e in wrapped))

    def scratch_dir(self, prefix="berth-test-"):
        """A new temporary directory, removed with all it holds when the
        test ends."""
        path = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    def track(self, p):
        """Process p (a Popen) is stopped when the test ends: see
        stop_process. Returns p."""
        self.addCleanup(stop_process, p)
        return p

    def unused_port(self, kind=socket.SOCK_STREAM, shared=False):
        """A ReservedPort (see there) held until this test ends."""
        r = unused_port(kind, shared)
        self.addCleanup(r.close)
        return r

    def dead_addr(self):
        """127.0.0.1:PORT where nothing listens (connections are refused)
        for the whole test."""
        return self.unused_port().addr

    def assertError(self, resp, status, code):
        """resp is an error answer with this status and JSON error code."""
        self.assertEqual(resp.status, status, resp)
        err = resp.json["error"]
        self.assertEqual(err["code"], code, resp)
        self.assertTrue(err["message"], resp)


def stop_process(p):
    """Kill p (a Popen of the test's own) if it still runs, reap it, wait
    for the thread reading its output (p.reader, if it has one) and close
    its pipes."""
    if p.poll() is None:
        p.kill()
    p.wait()
    reader = getattr(p, "reader", None)
    if reader is not None:
        reader.join(30)
    for f in (p.stdin, p.stdout, p.stderr):
        if f:
            f.close()


def clean_env(extra=None, **more):
    """The caller's environment without berth's variables (BERTH_*) and
    systemd's (NOTIFY_SOCKET, LISTEN_*), plus extra and more: what a
    command under test should see."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BERTH_", "LISTEN_")) and
           k != "NOTIFY_SOCKET"}
    env.update(extra or {})
    env.update(more)
    return env


def wait_for(fn, timeout=10, what="condition"):
    """Poll fn until it returns something true and return that; fail the
    test after timeout seconds (longer under a wrapper)."""
    deadline = time.monotonic() + timeout * SLOWDOWN
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s"
                                 % (timeout * SLOWDOWN, what))
        time.sleep(0.02)


class ReservedPort:
    """A loopback port held for a test: a socket bound to 127.0.0.1:PORT
    (the kernel's pick) that never listens, kept until close(). While it
    is held, connections to the port are refused and no other process can
    bind it, so nothing can take the port between the moment the test
    learns it and the moment the test uses it.

    kind is socket.SOCK_STREAM (TCP) or socket.SOCK_DGRAM (UDP). With
    shared=True the socket sets SO_REUSEADDR: berthd's test bind, which
    sets it too (as servers do), then sees the port as free, while a
    process that binds without it still cannot take the port. Use that
    when berthd itself must hand out exactly this port."""

    def __init__(self, kind=socket.SOCK_STREAM, shared=False):
        self.sock = socket.socket(socket.AF_INET, kind)
        if shared:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<ReservedPort %s>" % self.addr


def private_pool(width=200):
    """--range for a pool of width ports at a random place in 49152-65535
    outside the kernel's ephemeral range. Tests run in parallel, each with
    its own berthd: with the default pool they would all hand out the
    same first ports, and one test's service could take the port another
    test's berthd had just granted."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    starts = [p for p in range(49152, 65536 - width)
              if p + width - 1 < lo or p > hi]
    p = random.choice(starts)
    return ["--range", "%d-%d" % (p, p + width - 1)]


def unused_port(kind=socket.SOCK_STREAM, shared=False):
    """A ReservedPort: a loopback port nothing listens on, held until the
    caller closes it (use it in a with block, or BerthTestCase.unused_port,
    which holds it until the test ends)."""
    return ReservedPort(kind, shared)


def listener(port=0, host="0.0.0.0", family=socket.AF_INET, kind=socket.SOCK_STREAM):
    """A socket bound (and, for TCP, listening) on port; the caller closes it."""
    s = socket.socket(family, kind)
    s.bind((host, port))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    return s


def main():
    """Run the file's tests. All passed but some skipped (a missing tool or
    permission): exit 77, automake's SKIP, rather than a silent PASS."""
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.skipped else 0)


# ---- the command line: one way to start berthd for shell and C tests ----

USAGE = """\
usage: berthtest.py start [--exec] [--log FILE] [--timeout SECONDS] \
--db DB [BERTHD-ARG...]

(also python3 -m berthtest start ..., with tests/e2e in PYTHONPATH)

Starts berthd (BERTHD, behind BERTHD_WRAPPER's words if set) with the
arguments given, on --listen 127.0.0.1:0 unless they name an address,
with NOTIFY_SOCKET set; waits for its READY=1 datagram and prints one
line, "PID ADDR" (ADDR from STATUS=serving on ADDR), then exits 0,
leaving berthd running: end it by pid. If berthd exits first or is not
ready in time (default 10 s, 60 s under a wrapper), prints why on stderr
and exits 1 (berthd, if still running, is killed).

--exec    this process becomes berthd (exec), so berthd is the caller's
          child and the caller can wait for it; a helper process (not a
          child of berthd) prints the line, and prints nothing if berthd
          exits or is not ready in time (then the caller ends berthd).
--log     append berthd's stdout and stderr to FILE (default: berthd's
          stderr is ours; its stdout goes there too, never to ours).
"""


def _cli_start(argv):
    # The helper's own options may come anywhere (berthd has none of
    # these names); everything else is berthd's.
    opts = {"exec": False, "log": None, "timeout": None}
    rest = []
    while argv:
        a = argv.pop(0)
        if a == "--exec":
            opts["exec"] = True
        elif a in ("--log", "--timeout"):
            if not argv:
                sys.exit("berthtest start: %s needs a value\n%s" % (a, USAGE))
            opts[a[2:]] = argv.pop(0)
        else:
            rest.append(a)
    argv = rest
    if not any(a == "--db" or a.startswith("--db=") for a in argv):
        sys.exit("berthtest start: --db is required (never the default "
                 "database)\n" + USAGE)
    timeout = float(opts["timeout"]) if opts["timeout"] else None
    argv = berthd_argv(argv)
    tmp = tempfile.mkdtemp(prefix="berth-start-")
    notify_path = os.path.join(tmp, "notify.sock")
    nsock = notify_socket(notify_path)
    env = berthd_env(notify_path)
    out = os.open(opts["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                  0o600) if opts["log"] else 2

    def cleanup():
        nsock.close()
        shutil.rmtree(tmp, ignore_errors=True)

    if opts["exec"]:
        return _cli_exec(argv, env, nsock, out, timeout, cleanup)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, env=env, start_new_session=True)
    except OSError as e:
        cleanup()
        print("berthtest start: cannot run %s: %s" % (argv[0], e),
              file=sys.stderr)
        return 1
    try:
        addr = await_ready(nsock, proc.poll, timeout)
    except StartError as e:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print("berthtest start: %s: %s" % (" ".join(argv), e), file=sys.stderr)
        return 1
    finally:
        cleanup()
    print("%d %s" % (proc.pid, addr), flush=True)
    proc.returncode = 0     # it runs on; do not warn that it still does
    return 0


def _cli_exec(argv, env, nsock, out, timeout, cleanup):
    """start --exec: fork a watcher that reports READY (double-forked, so
    berthd never has a child of ours to reap), then exec berthd here."""
    me = os.getpid()
    pidfd = os.pidfd_open(me)
    child = os.fork()
    if child == 0:
        rc = 1
        try:
            if os.fork() == 0:
                def exited():
                    ready = select.select([pidfd], [], [], 0)[0]
                    return True if ready else None
                try:
                    addr = await_ready(nsock, exited, timeout)
                    print("%d %s" % (me, addr), flush=True)
                    rc = 0
                except StartError as e:
                    print("berthtest start: %s: %s" % (" ".join(argv), e),
                          file=sys.stderr, flush=True)
                finally:
                    cleanup()
            else:
                rc = 0
        finally:
            os._exit(rc)
    os.waitpid(child, 0)
    os.close(pidfd)
    nsock.close()
    # stdout belongs to the watcher: berthd's goes to the log or stderr.
    os.dup2(out, 1)
    if out != 2:
        os.dup2(out, 2)
        os.close(out)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        print("berthtest start: cannot run %s: %s" % (argv[0], e),
              file=sys.stderr)
        os._exit(127)


if __name__ == "__main__":
    if sys.argv[1:2] != ["start"]:
        sys.exit(USAGE)
    sys.exit(_cli_start(sys.argv[2:]))
