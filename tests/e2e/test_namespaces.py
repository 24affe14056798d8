"""berthd inside Linux namespaces, tested with unshare(1) and no Docker.

README.md and docs/docker.md promise that berth works the same inside
containers. A container is a set of namespaces, so this file builds the two that matter
to a port broker by hand:

- a network namespace: berthd listens on that namespace's own loopback;
  clients inside reach it, the host's 127.0.0.1 of the same port does not,
  and the ports it hands out are free inside;
- a PID namespace: berthd runs as PID 1 there (as in `docker run`), where
  the kernel drops every signal PID 1 has no handler for; SIGTERM from
  outside must still end it with status 0 within berthd(8)'s 2 s and leave
  the database intact. A lease's pid is read in berthd's namespace: its
  own processes are visible, a pid from outside is 400 pid_not_visible,
  and `berth run` from another PID namespace leases by TTL, not by pid.

As root the namespaces are made with `unshare -n` / `unshare -pf
--mount-proc`; otherwise a user namespace is added (`-r`). When unshare is
missing or the kernel or a container forbids it the tests skip with one
line saying so (the probe runs once per namespace kind).
"""

import http.client
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import berthtest
from berthtest import BERTHD, WRAPPER, SLOWDOWN, START_TIMEOUT, Response

UNSHARE = shutil.which("unshare")
ROOT = os.geteuid() == 0
NET_FLAGS = ["-n"] if ROOT else ["-r", "-n"]
PID_FLAGS = (["-p", "-f", "--mount-proc"] if ROOT
             else ["-r", "-p", "-f", "--mount-proc"])
SIGTERM_DEADLINE = 2.0 * SLOWDOWN       # berthd(8): exit 0 within 2 s

_probed = {}


def require_namespace(kind, flags):
    """Raise SkipTest (one line) unless `unshare FLAGS true` works here.

    The result is remembered, so each kind is probed once."""
    if kind not in _probed:
        reason = None
        if UNSHARE is None:
            reason = "unshare(1) not found (util-linux); %s namespace " \
                     "tests need it" % kind
        else:
            try:
                r = subprocess.run([UNSHARE] + flags + ["true"],
                                   stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=20)
                if r.returncode != 0:
                    err = r.stderr.decode(errors="replace").strip()
                    err = err.splitlines()[-1] if err else \
                        "exit status %d" % r.returncode
                    if err.startswith("unshare: "):
                        err = err[len("unshare: "):]
                    reason = "%s namespaces not permitted here: unshare %s: %s" \
                             % (kind, " ".join(flags), err)
            except (OSError, subprocess.TimeoutExpired) as e:
                reason = "%s namespaces not usable here: unshare %s: %s" \
                         % (kind, " ".join(flags), e)
        _probed[kind] = reason
    if _probed[kind]:
        raise unittest.SkipTest(_probed[kind])


def children_of(pid):
    """Host pids whose parent is pid (from /proc/*/stat)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces or parens: parse after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def process_tree(pid):
    """pid and all its descendants (host pids), parents first."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        tree.append(p)
        todo.extend(children_of(p))
    return tree


def kill_tree(proc):
    """SIGKILL the process tree under our child proc (collected first, so
    nothing is lost to reparenting), then reap proc."""
    if proc.poll() is None:
        for p in process_tree(proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def proc_state(pid):
    """The state letter of host pid ('R', 'S', 'Z', ...) or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def status_fields(pid):
    """/proc/PID/status as a dict of name -> value string."""
    with open("/proc/%d/status" % pid) as f:
        return dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)


def http_request(addr, method, path, body=None, timeout=10):
    """One HTTP request to berthd at "host:port"; a berthtest.Response."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        hdrs = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read().decode(errors="replace"))
    finally:
        conn.close()


# The program run inside the new network namespace. It brings up lo
# (unshare's fresh namespace has it down), starts berthd there on
# 127.0.0.1:PORT, does the in-namespace checks and prints each result as a
# JSON line; then it obeys commands on stdin ("health", "stop") so the test
# can probe the host side while berthd is serving inside.
DRIVER = r'''
import fcntl, http.client, json, os, shutil, signal, socket, struct
import subprocess, sys, time, traceback

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

def out(**kw):
    print(json.dumps(kw), flush=True)

def lo_flags(s, flags=None):
    ifr = struct.pack("16sH", b"lo", flags or 0).ljust(40, b"\0")
    res = fcntl.ioctl(s, SIOCGIFFLAGS if flags is None else SIOCSIFFLAGS, ifr)
    return struct.unpack("16sH", res[:18])[1]

def lo_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        flags = lo_flags(s)
        was_up = bool(flags & IFF_UP)
        how = "already up"
        if not was_up:
            ip = shutil.which("ip")
            if ip:
                subprocess.run([ip, "link", "set", "lo", "up"], check=True)
                how = "ip link set lo up"
            else:
                lo_flags(s, flags | IFF_UP)
                how = "SIOCSIFFLAGS ioctl"
        return was_up, how, bool(lo_flags(s) & IFF_UP)
    finally:
        s.close()

def req(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data else {}
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()

def main():
    cmd, port, tmp, cli, start_timeout = (json.loads(sys.argv[1]),
        int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]))
    was_up, how, now_up = lo_up()
    out(event="lo", was_up=was_up, how=how, now_up=now_up)

    notify = os.path.join(tmp, "notify-inner.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(notify)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env["NOTIFY_SOCKET"] = notify
    log = open(os.path.join(tmp, "berthd-inner.log"), "ab")
    proc = subprocess.Popen(cmd + ["--db", os.path.join(tmp, "inner.db"),
                                   "--listen", "127.0.0.1:%d" % port,
                                   "--log-level", "debug"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            env=env)
    try:
        nsock.settimeout(0.1)
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                msg = nsock.recv(4096).decode()
                break
            except socket.timeout:
                if proc.poll() is not None:
                    out(event="error", what="berthd exited with %d before "
                        "it was ready" % proc.returncode)
                    return 1
                if time.monotonic() > deadline:
                    out(event="error", what="berthd not ready")
                    return 1
        fields = dict(l.split("=", 1) for l in msg.splitlines() if "=" in l)
        out(event="ready", fields=fields)

        st, body = req(port, "POST", "/v1/services", {"name": "ns-web"})
        out(event="acquire", status=st, body=body)
        leased = json.loads(body).get("port") if st == 201 else None
        st, body = req(port, "GET", "/v1/services/ns-web")
        out(event="lookup", status=st, body=body)
        if leased:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("0.0.0.0", leased))
                s.listen(1)
                out(event="bind", port=leased, ok=True)
            except OSError as e:
                out(event="bind", port=leased, ok=False, error=str(e))
            finally:
                s.close()
        if cli:
            base = [cli, "--addr", "127.0.0.1:%d" % port]
            for what, args in (("cli_acquire", ["acquire", "ns-cli"]),
                               ("cli_lookup", ["lookup", "ns-cli"])):
                r = subprocess.run(base + args, env=env, capture_output=True,
                                   stdin=subprocess.DEVNULL, timeout=30)
                out(event=what, rc=r.returncode,
                    stdout=r.stdout.decode(errors="replace"),
                    stderr=r.stderr.decode(errors="replace"))
        out(event="checks_done")

        for line in sys.stdin:
            line = line.strip()
            if line == "health":
                try:
                    st, body = req(port, "GET", "/v1/health")
                    out(event="health", status=st, body=body)
                except OSError as e:
                    out(event="health", status=None, body=str(e))
            elif line == "stop":
                proc.send_signal(signal.SIGTERM)
                t0 = time.monotonic()
                try:
                    rc = proc.wait(30)
                except subprocess.TimeoutExpired:
                    rc = None
                out(event="stopped", rc=rc, elapsed=time.monotonic() - t0)
                return 0
        return 0
    except Exception:
        out(event="error", what=traceback.format_exc())
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        nsock.close()

sys.exit(main())
'''


@berthtest.needs_own_berthd("it starts berthd in a network namespace")
class NetworkNamespaceTest(berthtest.BerthTestCase):
    """berthd on a network namespace's own loopback."""

    @classmethod
    def setUpClass(cls):
        require_namespace("network", NET_FLAGS)

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="berth-netns-")
        os.chmod(self.tmp, 0o755)
        self.events = []
        self.proc = None
        self.buf = b""

    def tearDown(self):
        if self.proc is not None:
            kill_tree(self.proc)
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        if self._problem_count() > self._problems_before:
            self.dump()
        super().tearDown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def dump(self):
        for name in ("driver.err", "berthd-inner.log"):
            try:
                with open(os.path.join(self.tmp, name), "rb") as f:
                    text = f.read().decode(errors="replace")
            except OSError:
                continue
            print("---- %s ----\n%s" % (name, text[-4000:]))

    def expect(self, event, timeout=None):
        """The next JSON line from the driver with this event (fails the
        test on the driver's "error" line, its exit or the timeout)."""
        timeout = timeout or START_TIMEOUT + 20
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                ev = json.loads(line)
                self.events.append(ev)
                if ev.get("event") == "error":
                    self.fail("driver in the netns: %s" % ev.get("what"))
                if ev.get("event") == event:
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("no %r from the netns driver in %.0f s; got %r"
                          % (event, timeout, self.events))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.fail("netns driver exited (status %r) before %r; "
                              "got %r" % (self.proc.wait(5), event, self.events))
                self.buf += chunk

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def start_driver(self, port, cli=""):
        path = os.path.join(self.tmp, "driver.py")
        with open(path, "w") as f:
            f.write(DRIVER)
        cmd = [UNSHARE] + NET_FLAGS + [
            sys.executable, path, json.dumps(WRAPPER + [BERTHD]), str(port),
            self.tmp, cli, str(START_TIMEOUT)]
        self.err = open(os.path.join(self.tmp, "driver.err"), "wb")
        self.addCleanup(self.err.close)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err)

    def test_isolated_loopback(self):
        """Inside: lo comes up, berthd serves 127.0.0.1:PORT, a lease is
        granted, looked up, and its port is bindable (also through the CLI).
        Host: the same 127.0.0.1:PORT is refused and free to bind while
        berthd still answers inside; then SIGTERM ends it with status 0."""
        # The same port number stays reserved on the host for the whole
        # test by a bound socket that never listens and sets SO_REUSEADDR:
        # connections to it are refused, and a server's bind (which sets
        # SO_REUSEADDR too) still succeeds unless something listens there.
        port = self.unused_port(shared=True).port
        cli = os.environ.get("BERTH_CLI", "")
        self.start_driver(port, cli)

        lo = self.expect("lo")
        self.assertFalse(lo["was_up"], "a fresh network namespace has lo down;"
                         " is unshare really making one? %r" % lo)
        self.assertTrue(lo["now_up"], lo)

        ready = self.expect("ready")["fields"]
        self.assertEqual(ready.get("READY"), "1", ready)
        self.assertIn("127.0.0.1:%d" % port, ready.get("STATUS", ""), ready)

        acq = self.expect("acquire")
        self.assertEqual(acq["status"], 201, acq)
        lease = json.loads(acq["body"])
        self.assertEqual(lease["name"], "ns-web")
        self.assertTrue(lease.get("token"), lease)
        look = self.expect("lookup")
        self.assertEqual(look["status"], 200, look)
        self.assertEqual(json.loads(look["body"])["port"], lease["port"], look)
        bind = self.expect("bind")
        self.assertTrue(bind["ok"], "leased port %d not bindable inside the "
                        "namespace: %r" % (lease["port"], bind))
        if cli:
            ca = self.expect("cli_acquire")
            self.assertEqual(ca["rc"], 0, ca)
            cport = ca["stdout"].strip()
            self.assertTrue(cport.isdigit(), ca)
            cl = self.expect("cli_lookup")
            self.assertEqual(cl["rc"], 0, cl)
            self.assertEqual(cl["stdout"].strip(), cport, cl)
        self.expect("checks_done")

        # The host's 127.0.0.1:PORT is another socket space: nothing there.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            with self.assertRaises(ConnectionRefusedError,
                                   msg="the host reached something on "
                                   "127.0.0.1:%d, where berthd listens only "
                                   "inside its network namespace" % port):
                s.connect(("127.0.0.1", port))
        finally:
            s.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))     # OSError here fails the test
            s.listen(1)
        finally:
            s.close()

        # ... while berthd was serving inside all along.
        self.send("health")
        health = self.expect("health")
        self.assertEqual(health["status"], 200, health)

        self.send("stop")
        stopped = self.expect("stopped", timeout=60 * SLOWDOWN)
        self.assertEqual(stopped["rc"], 0, "berthd in the netns after "
                         "SIGTERM: %r" % stopped)
        self.assertLess(stopped["elapsed"], SIGTERM_DEADLINE, stopped)
        self.assertEqual(self.proc.wait(10), 0)


@berthtest.needs_own_berthd("it starts berthd in a PID namespace")
class PidNamespaceTest(berthtest.BerthTestCase):
    """berthd as PID 1 of its own PID namespace (sharing the host network)."""

    @classmethod
    def setUpClass(cls):
        require_namespace("PID", PID_FLAGS)

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="berth-pidns-")
        os.chmod(self.tmp, 0o755)
        self.db = os.path.join(self.tmp, "berth.db")
        self.log_path = os.path.join(self.tmp, "berthd-pidns.log")

    def tearDown(self):
        if self._problem_count() > self._problems_before:
            try:
                with open(self.log_path, "rb") as f:
                    print("---- berthd in the PID namespace ----\n%s"
                          % f.read().decode(errors="replace")[-4000:])
            except OSError:
                pass
        super().tearDown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_pid1(self):
        """Start `unshare ... BERTHD` so that berthd itself is PID 1 of a
        new PID namespace; wait for READY=1. Returns (unshare's Popen,
        berthd's host pid, the notify fields). The host pid comes from the
        kernel (SCM_CREDENTIALS of the READY datagram, translated into our
        namespace) and is checked against /proc."""
        notify = os.path.join(self.tmp, "notify.sock")
        nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        nsock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        nsock.bind(notify)
        os.chmod(notify, 0o777)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env["NOTIFY_SOCKET"] = notify
        log = open(self.log_path, "ab")
        self.addCleanup(log.close)
        cmd = [UNSHARE] + PID_FLAGS + ["--kill-child"] + WRAPPER + [
            BERTHD, "--db", self.db, "--listen", "127.0.0.1:0",
            "--log-level", "debug"]
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env,
                                stdin=subprocess.DEVNULL)
        self.addCleanup(kill_tree, proc)
        nsock.settimeout(0.1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    msg, anc, _, _ = nsock.recvmsg(
                        4096, socket.CMSG_SPACE(struct.calcsize("3i")))
                    break
                except socket.timeout:
                    if proc.poll() is not None:
                        self.fail("unshare+berthd exited with %d before "
                                  "READY" % proc.returncode)
                    if time.monotonic() > deadline:
                        self.fail("berthd in a PID namespace not ready "
                                  "after %.0f s" % START_TIMEOUT)
        finally:
            nsock.close()
        fields = dict(l.split("=", 1) for l in msg.decode().splitlines()
                      if "=" in l)
        self.assertEqual(fields.get("READY"), "1", fields)
        hostpid = None
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                hostpid = struct.unpack("3i", data[:12])[0]
        self.assertIsNotNone(hostpid, "no SCM_CREDENTIALS on the notify "
                             "datagram")
        # Cross-check with /proc: the sender is unshare's child, PID 1
        # inside (NSpid: <host pid> 1).
        st = status_fields(hostpid)
        self.assertEqual(int(st["PPid"]), proc.pid, st)
        self.assertEqual(st["NSpid"].split(), [str(hostpid), "1"], st)
        self.assertIn(hostpid, children_of(proc.pid))
        if not WRAPPER:
            self.assertEqual(os.path.realpath("/proc/%d/exe" % hostpid),
                             os.path.realpath(BERTHD))
        return proc, hostpid, fields

    def test_pid1_sigterm_exits_0_and_db_intact(self):
        """berthd as PID 1 (it says MAINPID=1; NSpid confirms) serves, exits 0
        within 2 s of a SIGTERM sent from the host (the kernel delivers it to
        a namespace's init only through a handler), and a restart on the same
        database has the lease back."""
        proc, hostpid, fields = self.start_pid1()
        self.assertEqual(fields.get("MAINPID"), "1",
                         "berthd's own pid inside its namespace: %r" % fields)
        addr = fields["STATUS"].split("serving on ", 1)[1]
        r = http_request(addr, "POST", "/v1/services", {"name": "pidns-keep"})
        self.assertEqual(r.status, 201, r)
        kept = r.json
        r = http_request(addr, "GET", "/v1/services/pidns-keep")
        self.assertEqual(r.status, 200, r)

        os.kill(hostpid, signal.SIGTERM)
        t0 = time.monotonic()
        while proc_state(hostpid) not in (None, "Z"):
            if time.monotonic() - t0 > SIGTERM_DEADLINE:
                self.fail("berthd as PID 1 still running %.1f s after "
                          "SIGTERM (state %s)" % (SIGTERM_DEADLINE,
                                                  proc_state(hostpid)))
            time.sleep(0.02)
        # unshare exits with its child's status (or re-raises its signal).
        self.assertEqual(proc.wait(10), 0,
                         "exit status of berthd as PID 1 after SIGTERM")

        d = self.berthd(db=self.db)
        r = d.get("/v1/services/pidns-keep")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["port"], kept["port"], r)

    def test_pid1_reaps_orphans(self):
        """As PID 1, berthd inherits the orphans of processes that share its
        PID namespace (a compose service with pid: service:berth); it must
        reap them, or zombies pile up."""
        proc, hostpid, fields = self.start_pid1()
        nsenter = shutil.which("nsenter")
        if nsenter is None:
            self.skipTest("nsenter(1) not found (util-linux)")
        # sh leaves a short sleep behind and exits: the sleep is orphaned,
        # re-parented to the namespace's init (berthd), and then exits.
        r = subprocess.run([nsenter, "--target", str(hostpid), "--pid", "--",
                            "sh", "-c", "sleep 0.2 & echo $!"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r)

        def zombies():
            out = []
            for p in os.listdir("/proc"):
                if not p.isdigit():
                    continue
                try:
                    st = status_fields(int(p))
                except (OSError, KeyError):
                    continue
                if st.get("PPid", "").strip() == str(hostpid):
                    out.append((p, st.get("State", "").strip()))
            return out

        # The orphan is berthd's child for a while, then gone altogether.
        deadline = time.monotonic() + 5 * SLOWDOWN
        while zombies():
            self.assertLess(time.monotonic(), deadline,
                            "children of berthd left: %r" % zombies())
            time.sleep(0.05)
        r = http_request(fields["STATUS"].split("serving on ", 1)[1], "GET",
                         "/v1/health")
        self.assertEqual(r.status, 200, r)

    def test_pid_visibility(self):
        """A lease's pid is looked up in berthd's PID namespace: a process
        inside it (entered with nsenter) is a visible owner; pid 1 is init
        and refused as an owner; this test process, outside, is 400
        pid_not_visible. On the host the inside pid names another process,
        so after a restart outside the lease's owner is dead."""
        proc, hostpid, fields = self.start_pid1()
        addr = fields["STATUS"].split("serving on ", 1)[1]

        r = http_request(addr, "POST", "/v1/services",
                         {"name": "pidns-init", "pid": 1})
        self.assertError(r, 400, "invalid_field")

        nsenter = shutil.which("nsenter")
        if nsenter is None:
            self.skipTest("nsenter(1) not found (util-linux)")
        inner = subprocess.Popen([nsenter, "--target", str(hostpid), "--pid",
                                  "--", "sleep", "60"],
                                 stdin=subprocess.DEVNULL)
        self.addCleanup(kill_tree, inner)
        deadline = time.monotonic() + 5
        while not children_of(inner.pid):
            self.assertLess(time.monotonic(), deadline, "nsenter's child")
            time.sleep(0.02)
        sleeper = children_of(inner.pid)[0]
        nspid = status_fields(sleeper)["NSpid"].split()
        self.assertEqual(len(nspid), 2, nspid)
        inside = int(nspid[1])
        r = http_request(addr, "POST", "/v1/services",
                         {"name": "pidns-own", "pid": inside})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json.get("pid"), inside, r)

        mine = os.getpid()
        try:    # precondition: our pid number is not in berthd's namespace
            seen = os.path.exists("/proc/%d/root/proc/%d" % (hostpid, mine))
        except OSError:
            seen = False
        self.assertFalse(seen, "pid %d happens to exist in berthd's PID "
                         "namespace too" % mine)
        r = http_request(addr, "POST", "/v1/services",
                         {"name": "pidns-outside", "pid": mine})
        self.assertError(r, 400, "pid_not_visible")
        r = http_request(addr, "GET", "/v1/services/pidns-outside")
        self.assertError(r, 404, "not_found")

        os.kill(hostpid, signal.SIGTERM)
        self.assertEqual(proc.wait(10 * SLOWDOWN), 0)

        # Restarted in the host's namespace, the inside pid names another
        # process (or none): the lease ends (§3 owner death, checked at
        # least once a second).
        d = self.berthd(db=self.db)
        deadline = time.monotonic() + 5 * SLOWDOWN
        while True:
            r = d.get("/v1/services/pidns-own")
            if r.status == 404:
                break
            self.assertEqual(r.status, 200, r)
            if time.monotonic() > deadline:
                self.fail("lease owned by pid %d of a dead PID namespace "
                          "still live on the host: %r" % (inside, r))
            time.sleep(0.1)


class RunAcrossPidNamespacesTest(berthtest.BerthTestCase):
    """`berth run` in another PID namespace than berthd (a container using
    a broker outside it): its pid means nothing to berthd, so it must not
    name itself as the owner; the lease lives by its TTL."""

    @classmethod
    def setUpClass(cls):
        require_namespace("PID", PID_FLAGS)
        cls.cli = os.environ.get("BERTH_CLI", "")
        if not cls.cli or not os.access(cls.cli, os.X_OK):
            raise unittest.SkipTest("BERTH_CLI is not set to the berth CLI")

    def run_inside(self, d, name, pid1):
        """berth run NAME in a new PID namespace, as its PID 1 or not; the
        command says "up" and waits for stdin. Returns (proc, the lease
        while it runs)."""
        run = [self.cli, "--addr", d.addr, "run", name, "--", "sh", "-c",
               "echo up; read x"]
        if pid1:
            cmd = [UNSHARE] + PID_FLAGS + ["--kill-child"] + run
        else:
            cmd = [UNSHARE] + PID_FLAGS + ["--kill-child", "sh", "-c",
                                           '"$@"; exit $?', "sh"] + run
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(kill_tree, p)
        self.assertEqual(p.stdout.readline(), b"up\n")
        r = d.get("/v1/services/" + name)
        self.assertEqual(r.status, 200, r)
        return p, r.json

    def finish(self, d, p, name):
        out, err = p.communicate(b"\n", timeout=10 * SLOWDOWN)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(d.get("/v1/services/" + name).status, 404)
        return err.decode()

    def test_status_names_the_pid_namespace(self):
        d = self.berthd()
        st = d.get("/v1/status").json
        self.assertEqual(st["pid_namespace"],
                         os.readlink("/proc/%d/ns/pid" % d.proc.pid))
        with open("/proc/sys/kernel/random/boot_id") as f:
            self.assertEqual(st["boot_id"], f.read().strip())

    def test_run_as_pid1_elsewhere_leases_by_ttl(self):
        d = self.berthd()
        p, lease = self.run_inside(d, "nsrun-init", pid1=True)
        self.assertIsNone(lease["pid"], lease)
        self.assertEqual(lease["ttl"], 30, lease)
        err = self.finish(d, p, "nsrun-init")
        self.assertIn("running as PID 1", err)

    def test_run_in_another_namespace_leases_by_ttl(self):
        d = self.berthd()
        p, lease = self.run_inside(d, "nsrun-other", pid1=False)
        self.assertIsNone(lease["pid"], lease)
        self.assertEqual(lease["ttl"], 30, lease)
        err = self.finish(d, p, "nsrun-other")
        self.assertIn("berthd is in another PID namespace", err)

    def test_run_that_cannot_tell_leases_by_ttl(self):
        """When berth run cannot read its own boot id (hidden here under a
        tmpfs in a private mount namespace) it cannot compare itself with
        berthd: it must not guess, so no pid (even though here it happens
        to share berthd's namespace)."""
        d = self.berthd()
        run = [self.cli, "--addr", d.addr, "run", "nsrun-blind", "--", "sh",
               "-c", "echo up; read x"]
        mnt = ["-m"] if ROOT else ["-r", "-m"]
        cmd = [UNSHARE] + mnt + [
            "sh", "-c", 'mount -t tmpfs none /proc/sys/kernel/random && "$@"',
            "sh"] + run
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(kill_tree, p)
        line = p.stdout.readline()
        if line != b"up\n" and b"mount" in p.stderr.peek():
            self.skipTest("cannot mount a tmpfs in a mount namespace here")
        self.assertEqual(line, b"up\n")
        lease = d.get("/v1/services/nsrun-blind").json
        self.assertIsNone(lease["pid"], lease)
        self.assertEqual(lease["ttl"], 30, lease)
        err = self.finish(d, p, "nsrun-blind")
        self.assertIn("cannot tell whether berthd sees this process", err)

    def test_run_in_the_same_namespace_owns_its_lease(self):
        d = self.berthd()
        run = subprocess.Popen([self.cli, "--addr", d.addr, "run", "nsrun-same",
                                "--", "sh", "-c", "echo up; read x"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        self.addCleanup(kill_tree, run)
        self.assertEqual(run.stdout.readline(), b"up\n")
        lease = d.get("/v1/services/nsrun-same").json
        self.assertEqual(lease["pid"], run.pid, lease)
        err = self.finish(d, run, "nsrun-same")
        self.assertNotIn("PID", err)


if __name__ == "__main__":
    # All passed but something skipped (no unshare, or not permitted): exit
    # 77 so that make check reports SKIP rather than a silent PASS.
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.skipped else 0)
