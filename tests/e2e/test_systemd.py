"""berthd under systemd: the readiness datagram (berthd(8): READY=1 once
serving, with STATUS= and MAINPID=), no READY when berthd cannot start,
and docs/examples/berthd.service kept in step with berthd and
docs/systemd.md: it parses, has the directives the docs explain, its
ExecStart runs, and `systemd-analyze verify` accepts it where present."""

import configparser
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

import berthtest
from berthtest import (BerthTestCase, UnixHTTPConnection, listener, main,
                       needs_own_berthd)
from berthtest import clean_env

BERTHD = berthtest.BERTHD
SRCDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(SRCDIR, "docs", "examples", "berthd.service")
DOC = os.path.join(SRCDIR, "docs", "systemd.md")
INSTALLED_BERTHD = "/usr/local/bin/berthd"
STATE_DIR = "/var/lib/berth"
NOBODY = 65534




def parse_unit(text):
    """A unit file as {section: {key: [values]}} (keys may repeat)."""
    units = {}
    section = None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        m = re.fullmatch(r"\[([A-Za-z]+)\]", s)
        if m:
            section = units.setdefault(m.group(1), {})
            continue
        if section is None or "=" not in s:
            raise ValueError("line %d is not 'Key=value' in a section: %r"
                             % (n, line))
        key, value = s.split("=", 1)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()):
            raise ValueError("line %d: bad key %r" % (n, key))
        section.setdefault(key.strip(), []).append(value.strip())
    return units


def http_get(addr, path="/v1/health", timeout=10):
    """GET on a listen address (host:port, [v6]:port or unix:/path)."""
    if addr.startswith("unix:"):
        conn = UnixHTTPConnection(addr[5:], timeout=timeout)
    else:
        host, port = addr.rsplit(":", 1)
        conn = berthtest.http.client.HTTPConnection(host.strip("[]"),
                                                    int(port),
                                                    timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class NotifySocket:
    """A datagram socket as systemd binds it: a path, or '@name'."""

    def __init__(self, tmp, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "berth-e2e-sd-%d-%s" % (os.getpid(), uuid.uuid4().hex)
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = os.path.join(tmp, "notify")
            self.sock.bind(path)
            self.env = path

    def recv(self, proc, timeout=10):
        """The next datagram, or None if proc exits first or time runs out."""
        self.sock.settimeout(0.1)
        deadline = time.monotonic() + timeout * berthtest.SLOWDOWN
        while time.monotonic() < deadline:
            try:
                return self.sock.recv(4096).decode()
            except socket.timeout:
                if proc.poll() is not None:
                    return self.pending()
        return None

    def pending(self):
        """A datagram already queued, else None (does not wait)."""
        self.sock.setblocking(False)
        try:
            return self.sock.recv(4096).decode()
        except BlockingIOError:
            return None
        finally:
            self.sock.setblocking(True)

    def close(self):
        self.sock.close()


def fields_of(msg):
    return dict(l.split("=", 1) for l in msg.splitlines() if "=" in l)


class SystemdCase(BerthTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="berth-e2e-sd-")
        self.procs = []

    def tearDown(self):
        for p, log in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
        failed = self._problem_count() > self._problems_before
        if failed:
            for name in sorted(os.listdir(self.tmp)):
                if name.endswith(".log"):
                    with open(os.path.join(self.tmp, name), errors="replace") as f:
                        print("---- %s ----\n%s" % (name, f.read()[-3000:]))
        super().tearDown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def spawn(self, args, notify=None, env=None, **popen):
        """Start berthd with exactly args, NOTIFY_SOCKET from notify."""
        e = clean_env(env)
        if notify is not None:
            e["NOTIFY_SOCKET"] = notify.env
        log = open(os.path.join(self.tmp, "berthd-%d.log" % len(self.procs)), "ab")
        p = subprocess.Popen(berthtest.WRAPPER + [BERTHD] + list(args),
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             env=e, **popen)
        self.procs.append((p, log))
        return p

    def notify(self, abstract=False):
        n = NotifySocket(self.tmp, abstract)
        self.addCleanup(n.close)
        return n

    def ready(self, p, n):
        """Wait for the readiness datagram; returns its fields."""
        msg = n.recv(p)
        self.assertIsNotNone(msg, "no datagram on NOTIFY_SOCKET; berthd %s"
                             % ("exited %d" % p.returncode
                                if p.poll() is not None else "still running"))
        return msg, fields_of(msg)

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        return p.wait(5 * berthtest.SLOWDOWN)


@needs_own_berthd("it starts berthd itself")
class Readiness(SystemdCase):
    """READY=1 with STATUS= and MAINPID=, sent once berthd serves."""

    def check_ready(self, abstract):
        n = self.notify(abstract)
        p = self.spawn(["--db", os.path.join(self.tmp, "db"),
                        "--listen", "127.0.0.1:0"], notify=n)
        msg, f = self.ready(p, n)
        self.assertIn("READY=1", msg.splitlines(), msg)
        self.assertRegex(f.get("STATUS", ""),
                         r"^serving on 127\.0\.0\.1:[1-9][0-9]*$", msg)
        if not berthtest.WRAPPER:
            self.assertEqual(f.get("MAINPID"), str(p.pid), msg)
        addr = f["STATUS"].split("serving on ", 1)[1]
        # Ready means serving: the very first request succeeds.
        status, _ = http_get(addr)
        self.assertEqual(status, 200)
        self.assertEqual(self.stop(p), 0)

    def test_ready_on_path_socket(self):
        self.check_ready(abstract=False)

    def test_ready_on_abstract_socket(self):
        self.check_ready(abstract=True)

    def test_status_names_unix_socket(self):
        n = self.notify()
        sock = os.path.join(self.tmp, "berth.sock")
        p = self.spawn(["--db", os.path.join(self.tmp, "db"),
                        "--listen", "unix:" + sock], notify=n)
        msg, f = self.ready(p, n)
        self.assertEqual(f.get("STATUS"), "serving on unix:" + sock, msg)
        status, _ = http_get("unix:" + sock)
        self.assertEqual(status, 200)
        self.assertEqual(self.stop(p), 0)

    def test_one_datagram_only(self):
        n = self.notify()
        p = self.spawn(["--db", os.path.join(self.tmp, "db"),
                        "--listen", "127.0.0.1:0"], notify=n)
        msg, f = self.ready(p, n)
        addr = f["STATUS"].split("serving on ", 1)[1]
        self.assertEqual(http_get(addr)[0], 200)
        p.send_signal(signal.SIGHUP)        # systemctl reload
        self.assertEqual(http_get(addr)[0], 200)
        self.assertEqual(self.stop(p), 0)
        # A second READY=1 would be a second start to systemd.
        self.assertIsNone(n.pending())

    def test_unreachable_notify_socket_is_not_fatal(self):
        # As sd_notify: a failed notification is logged, berthd serves on.
        sock = os.path.join(self.tmp, "berth.sock")
        p = self.spawn(["--db", os.path.join(self.tmp, "db"),
                        "--listen", "unix:" + sock],
                       env={"NOTIFY_SOCKET": os.path.join(self.tmp, "nobody")})
        deadline = time.monotonic() + 10 * berthtest.SLOWDOWN
        while True:
            self.assertIsNone(p.poll(), "berthd exited without a notify socket")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                up = s.connect_ex(sock) == 0
            if up and http_get("unix:" + sock)[0] == 200:
                break
            self.assertLess(time.monotonic(), deadline, "berthd never served")
            time.sleep(0.05)
        self.assertEqual(self.stop(p), 0)


@needs_own_berthd("it starts berthd itself")
class NoReadyOnFailure(SystemdCase):
    """A berthd that cannot start exits non-zero and never says READY."""

    def check_fails(self, args):
        n = self.notify()
        p = self.spawn(args, notify=n)
        try:
            rc = p.wait(10 * berthtest.SLOWDOWN)
        except subprocess.TimeoutExpired:
            self.fail("berthd kept running with %r" % (args,))
        self.assertNotEqual(rc, 0)
        self.assertIsNone(n.pending(), "READY sent by a berthd that exited %d"
                          % rc)

    def test_database_locked(self):
        db = os.path.join(self.tmp, "db")
        first = self.berthd(db=db)
        self.check_fails(["--db", db, "--listen", "127.0.0.1:0"])
        self.assertEqual(first.get("/v1/health").status, 200)

    def test_address_in_use(self):
        with listener(0, "127.0.0.1") as s:
            port = s.getsockname()[1]
            self.check_fails(["--db", os.path.join(self.tmp, "db"),
                              "--listen", "127.0.0.1:%d" % port])

    def test_non_loopback_refused(self):
        self.check_fails(["--db", os.path.join(self.tmp, "db"),
                          "--listen", "0.0.0.0:0"])

    def test_socket_path_is_a_file(self):
        path = os.path.join(self.tmp, "not-a-socket")
        with open(path, "w") as f:
            f.write("keep me\n")
        self.check_fails(["--db", os.path.join(self.tmp, "db"),
                          "--listen", "unix:" + path])

    def test_bad_flag(self):
        self.check_fails(["--db", os.path.join(self.tmp, "db"),
                          "--no-such-flag"])


class UnitFile(SystemdCase):
    """docs/examples/berthd.service: what docs/systemd.md says it is."""

    def unit(self):
        with open(UNIT) as f:
            return parse_unit(f.read())

    def one(self, units, section, key):
        vals = units.get(section, {}).get(key)
        self.assertIsNotNone(vals, "%s= missing from [%s]" % (key, section))
        self.assertEqual(len(vals), 1, "%s= given %d times" % (key, len(vals)))
        return vals[0]

    def test_parses(self):
        units = self.unit()
        self.assertEqual(set(units), {"Unit", "Service", "Install"})
        # An INI reader must take it too (no stray lines, no duplicates).
        cp = configparser.ConfigParser(interpolation=None, strict=True)
        cp.optionxform = str
        cp.read(UNIT)
        self.assertEqual(cp["Service"]["Type"], "notify")

    def test_required_directives(self):
        u = self.unit()
        want = {
            "Type": "notify",
            "DynamicUser": "yes",
            "StateDirectory": "berth",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "NoNewPrivileges": "yes",
            "CapabilityBoundingSet": "",
            "SystemCallFilter": "@system-service",
            "Restart": "on-failure",
            "ExecReload": "/bin/kill -HUP $MAINPID",
        }
        for key, value in want.items():
            self.assertEqual(self.one(u, "Service", key), value, key)
        fams = self.one(u, "Service", "RestrictAddressFamilies").split()
        for fam in ("AF_UNIX", "AF_INET", "AF_INET6"):
            self.assertIn(fam, fams)
        self.assertRegex(self.one(u, "Service", "TimeoutStopSec"), r"^[0-9]+s?$")
        self.assertRegex(self.one(u, "Service", "LimitNOFILE"), r"^[0-9]+$")
        # berthd must see other users' processes and /proc/sys.
        self.assertNotIn(u["Service"].get("ProtectProc", ["default"])[0],
                         ("invisible", "noaccess", "ptraceable"))
        self.assertNotEqual(u["Service"].get("ProcSubset", ["all"])[0], "pid")
        self.assertNotIn("PrivateNetwork", u["Service"])
        self.assertEqual(self.one(u, "Install", "WantedBy"), "multi-user.target")

    def test_exec_start_names_the_state_directory(self):
        argv = shlex.split(self.one(self.unit(), "Service", "ExecStart"))
        self.assertEqual(argv[0], INSTALLED_BERTHD)
        # Not root under DynamicUser: the default --db would be in $HOME.
        self.assertIn("--db", argv)
        db = argv[argv.index("--db") + 1]
        self.assertEqual(os.path.dirname(db), STATE_DIR)

    def test_docs_name_the_unit_and_its_settings(self):
        with open(DOC) as f:
            doc = f.read()
        self.assertIn("examples/berthd.service", doc)
        u = self.unit()["Service"]
        for key in ("Type", "DynamicUser", "StateDirectory", "ProtectProc",
                    "ProcSubset", "CapabilityBoundingSet", "SystemCallFilter",
                    "LimitNOFILE", "ExecReload", "IPAddressDeny"):
            self.assertIn(key, u)
            self.assertIn(key + "=", doc, "docs/systemd.md does not explain "
                          "%s=" % key)

    def run_exec_start(self, argv, state, extra_env=None, **popen):
        """Run a unit's ExecStart with the built berthd and state moved to
        a temporary directory; returns (process, readiness fields)."""
        self.assertEqual(argv[0], INSTALLED_BERTHD)
        args = [a.replace(STATE_DIR, state).replace("/run/berth", state)
                for a in argv[1:]]
        # The unit's 127.0.0.1:62893 may be taken on this machine.
        args = [re.sub(r"127\.0\.0\.1:62893", "127.0.0.1:0", a) for a in args]
        if not any(a.startswith("--listen") for a in args):
            args += ["--listen", "127.0.0.1:0"]
        n = self.notify(abstract=True)
        p = self.spawn(args, notify=n, env=extra_env, **popen)
        msg, f = self.ready(p, n)
        self.assertIn("READY=1", msg.splitlines(), msg)
        return p, f

    @needs_own_berthd("it starts berthd itself")
    def test_exec_start_runs(self):
        argv = shlex.split(self.one(self.unit(), "Service", "ExecStart"))
        state = os.path.join(self.tmp, "state")
        os.mkdir(state, 0o750)
        p, f = self.run_exec_start(argv, state)
        addr = f["STATUS"].split("serving on ", 1)[1]
        self.assertEqual(http_get(addr)[0], 200)
        self.assertEqual(self.stop(p), 0)
        self.assertTrue(os.path.exists(os.path.join(state, "berth.db")))

    @needs_own_berthd("it starts berthd itself")
    def test_exec_start_as_dynamic_user(self):
        # What DynamicUser gives berthd: an unprivileged uid, HOME=/.
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to run berthd as another uid")
        argv = shlex.split(self.one(self.unit(), "Service", "ExecStart"))
        os.chmod(self.tmp, 0o755)
        state = os.path.join(self.tmp, "state")
        os.mkdir(state, 0o750)
        os.chown(state, NOBODY, NOBODY)
        env = {"HOME": "/", "USER": "berthd-dyn"}
        p, f = self.run_exec_start(argv, state, env, user=NOBODY, group=NOBODY,
                                   extra_groups=[])
        addr = f["STATUS"].split("serving on ", 1)[1]
        self.assertEqual(http_get(addr)[0], 200)
        self.assertEqual(self.stop(p), 0)
        self.assertEqual(os.stat(os.path.join(state, "berth.db")).st_uid, NOBODY)

    @needs_own_berthd("it starts berthd itself")
    def test_socket_variant_from_docs_runs(self):
        with open(DOC) as f:
            doc = f.read()
        blocks = [b for b in re.findall(r"```ini\n(.*?)```", doc, re.S)
                  if "RuntimeDirectory=berth" in b]
        self.assertEqual(len(blocks), 1, "the socket drop-in in docs/systemd.md")
        svc = parse_unit(blocks[0])["Service"]
        self.assertEqual(svc["ExecStart"][0], "", "ExecStart= must be reset")
        argv = shlex.split(svc["ExecStart"][-1])
        self.assertIn("unix:/run/berth/berth.sock", " ".join(argv))
        state = os.path.join(self.tmp, "state")
        os.mkdir(state, 0o750)
        p, f = self.run_exec_start(argv, state)
        sock = os.path.join(state, "berth.sock")
        self.assertEqual(http_get("unix:" + sock)[0], 200)
        self.assertEqual(self.stop(p), 0)

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            raise unittest.SkipTest("systemd-analyze not installed (Debian: systemd)")
        # verify wants ExecStart's binary to exist: point it at the build.
        with open(UNIT) as f:
            text = f.read().replace(INSTALLED_BERTHD, os.path.abspath(
                shutil.which(BERTHD) or BERTHD))
        path = os.path.join(self.tmp, "berthd.service")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([tool, "verify", "--man=no", path],
                           capture_output=True, text=True, timeout=60,
                           env=clean_env({"SYSTEMD_LOG_LEVEL": "warning"}))
        out = (r.stdout + r.stderr).strip()
        self.assertEqual(r.returncode, 0, out)
        self.assertEqual(out, "", "systemd-analyze verify complained")


if __name__ == "__main__":
    main()
