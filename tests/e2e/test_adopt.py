"""End-to-end tests of adopting a running service (docs/api.md, POST
/v1/services): an acquire that names a port some process already listens
on (TCP) or has bound (UDP) is granted when its pid is that process or an
ancestor of it; another pid, or none, gets 409 port_unavailable saying who
holds the port. Pool ports (test-bound) and ports outside the pool (read
in the kernel's socket tables) alike, over the API and through `berth
acquire --pid`.

Every socket is held by a child process on a port the kernel picks, so
tests running in parallel never meet; a berthd's pool is one such port
(the "inside" case) and the other holder's port lies outside it.

BERTH_CLI names the CLI binary and BERTHD the daemon (make check sets both).
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import unittest

from berthtest import BerthTestCase, main, wait_for

CLI = os.environ.get("BERTH_CLI", "berth")

# A holder: binds 127.0.0.1 on a port the kernel picks (TCP listens; "both"
# binds UDP on the same port too), starts a child of its own that does not
# share the socket, prints "PID PORT CHILD", and keeps the socket until its
# stdin closes.
HOLD = r"""
import os, socket, subprocess, sys
kind = sys.argv[1]
socks = []
port = 0
if kind in ("tcp", "both"):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    t.listen(8)
    port = t.getsockname()[1]
    socks.append(t)
if kind in ("udp", "both"):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", port))
    port = u.getsockname()[1]
    socks.append(u)
child = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
print(os.getpid(), port, child.pid, flush=True)
sys.stdin.read()
child.kill()
child.wait()
"""


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rpartition(")")[2].split()[1])


class Holder:
    """A child process holding a socket (kind "tcp", "udp" or "both").
    With shell=True a shell starts it and waits for it, so the shell
    (top) is the holder's parent. pid is the holder's, port its port,
    child the pid of the holder's own child. Ends when its stdin closes
    (end)."""

    def __init__(self, case, kind="tcp", shell=False):
        argv = [sys.executable, "-c", HOLD, kind]
        if shell:
            # "; exit" keeps the shell from exec'ing the holder.
            argv = ["/bin/sh", "-c", '"$@"; exit 0', "sh"] + argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        case.addCleanup(self.end)
        line = self.proc.stdout.readline().split()
        case.assertEqual(len(line), 3, "the holder failed to start")
        self.pid, self.port, self.child = map(int, line)
        self.top = self.proc.pid
        if shell:
            case.assertNotEqual(self.pid, self.top)
            case.assertEqual(ppid(self.pid), self.top)

    def end(self):
        """Close its stdin: the holder exits, and so does its shell."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def one_port_pool(port):
    return "--range=%d-%d" % (port, port)


class AdoptCase(BerthTestCase):

    def setUp(self):
        super().setUp()
        self.tmps = []

    def holders(self, kind="tcp", shell=False):
        """Two holders, and a berthd whose pool is the first one's port:
        [(where, holder), ...] for the pool port and one outside it."""
        inside = Holder(self, kind, shell)
        outside = Holder(self, kind, shell)
        d = self.berthd(one_port_pool(inside.port))
        return d, [("inside", inside), ("outside", outside)]

    def granted(self, d, name, port, pid, **fields):
        r = d.acquire(name, port=port, pid=pid, **fields)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["port"], port, r)
        self.assertEqual(r.json["pid"], pid, r)
        looked = d.get("/v1/services/" + name)
        self.assertEqual(looked.status, 200, looked)
        self.assertEqual(looked.json["port"], port, looked)
        return r.json

    def refused(self, d, name, port, **fields):
        """The 409 port_unavailable message of an acquire."""
        r = d.acquire(name, port=port, **fields)
        self.assertError(r, 409, "port_unavailable")
        self.assertEqual(d.get("/v1/services/" + name).status, 404)
        return r.json["error"]["message"]


class Adopt(AdoptCase):

    def test_holder_pid_registers_it(self):
        d, hs = self.holders()
        for where, h in hs:
            with self.subTest(where):
                self.granted(d, "svc-" + where, h.port, h.pid)

    def test_ancestor_pid_registers_it(self):
        d, hs = self.holders(shell=True)
        for where, h in hs:
            with self.subTest(where):
                self.granted(d, "svc-" + where, h.port, h.top)

    def test_unrelated_pid_is_told_who_holds_it(self):
        d, hs = self.holders()
        other = Holder(self)
        for where, h in hs:
            with self.subTest(where):
                msg = self.refused(d, "svc", h.port, pid=other.pid)
                self.assertIn("pid %d (%s)" % (h.pid, comm(h.pid)), msg)
                self.assertIn("not by pid %d or its children" % other.pid,
                              msg)

    def test_holders_child_does_not_register_it(self):
        d, hs = self.holders()
        for where, h in hs:
            with self.subTest(where):
                self.assertEqual(ppid(h.child), h.pid)
                msg = self.refused(d, "svc", h.port, pid=h.child)
                self.assertIn("pid %d (%s), not by pid %d" % (
                    h.pid, comm(h.pid), h.child), msg)

    def test_without_pid_hints_at_pid(self):
        d, hs = self.holders()
        for where, h in hs:
            with self.subTest(where):
                msg = self.refused(d, "svc", h.port)
                self.assertIn("in use", msg)
                self.assertIn("pid", msg)
                self.assertIn("--pid", msg)

    def test_udp_bound_socket(self):
        d, hs = self.holders("udp")
        other = Holder(self, "udp")
        for where, h in hs:
            with self.subTest(where):
                msg = self.refused(d, "svc", h.port, proto="udp",
                                   pid=other.pid)
                self.assertIn("pid %d" % h.pid, msg)
                self.granted(d, "svc-" + where, h.port, h.pid, proto="udp")

    def test_both_needs_every_protocol_held(self):
        d, hs = self.holders("tcp")
        for where, h in hs:
            with self.subTest(where):
                msg = self.refused(d, "svc", h.port, proto="both", pid=h.pid)
                self.assertIn("udp", msg)
        both = Holder(self, "both")
        self.granted(d, "both", both.port, both.pid, proto="both")

    def test_leased_port_stays_taken(self):
        d, hs = self.holders()
        for where, h in hs:
            with self.subTest(where):
                self.granted(d, "a-" + where, h.port, h.pid)
                msg = self.refused(d, "b-" + where, h.port, pid=h.pid)
                self.assertIn("leased to 'a-%s'" % where, msg)

    def test_adopted_lease_ends_with_its_owner(self):
        d, hs = self.holders()
        for where, h in hs:
            with self.subTest(where):
                name = "svc-" + where
                self.granted(d, name, h.port, h.pid)
                h.end()
                wait_for(lambda: d.get("/v1/services/" + name).status == 404,
                         what="the adopted lease to end with its owner")

    def test_cli_acquire_pid(self):
        d, hs = self.holders()
        other = Holder(self)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("BERTH_")}
        for where, h in hs:
            with self.subTest(where):
                def cli(*args):
                    return subprocess.run(
                        [CLI, "--addr", d.addr, "acquire", "pg-" + where,
                         "--port", str(h.port)] + list(args), env=env,
                        capture_output=True, text=True, timeout=30,
                        stdin=subprocess.DEVNULL)
                r = cli()
                self.assertEqual(r.returncode, 4, r)
                self.assertIn("--pid", r.stderr)
                r = cli("--pid", str(other.pid))
                self.assertEqual(r.returncode, 4, r)
                self.assertEqual(r.stdout, "", r)
                self.assertIn("port %d is in use by pid %d (%s), not by pid "
                              "%d or its children" % (h.port, h.pid,
                                                      comm(h.pid), other.pid),
                              r.stderr)
                self.assertEqual(len(r.stderr.splitlines()), 1, r)
                r = cli("--pid", str(h.pid))
                self.assertEqual(r.returncode, 0, r)
                self.assertEqual(r.stdout.strip(), str(h.port), r)


@unittest.skipUnless(os.geteuid() == 0, "needs root to run berthd as "
                     "another user")
class AdoptUnseen(AdoptCase):
    """berthd running as nobody cannot look into root's processes: it says
    so rather than guessing."""

    def test_holder_berthd_cannot_see(self):
        pw = pwd.getpwnam("nobody")
        tmp = tempfile.mkdtemp(prefix="berth-adopt-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)

        def be_nobody():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

        h = Holder(self)
        # The harness's notify socket, made now, must take nobody's READY.
        umask = os.umask(0)
        try:
            d = self.berthd(tmpdir=tmp, preexec=be_nobody)
        finally:
            os.umask(umask)
        # Root is an admin there, so it may name its own process.
        msg = self.refused(d, "svc", h.port, pid=h.pid)
        self.assertIn("cannot see", msg)
        self.assertNotIn("pid %d (" % h.pid, msg)


if __name__ == "__main__":
    main()
