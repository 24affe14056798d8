"""End-to-end tests of `berth who PORT` and `berth doctor [NAME]` (berth(1)).

The CLI comes from BERTH_CLI, the daemon from BERTHD (make check sets
both). Sockets under test are held by child processes whose command line
carries MARKER, so the tests can tell that the CLI named the right process.
"""

import json
import os
import unittest
import random
import signal
import socket
import subprocess
import sys

from berthtest import BerthTestCase, listener, main

BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
MARKER = "berth-who-marker-7f3a"

# A child that binds (and for TCP listens), prints its port, and waits.
# The marker comes first so it is within any truncation of the cmdline.
CHILD = ("#" + MARKER + "\n"
         "import socket, sys, time\n"
         "kind = socket.SOCK_STREAM if sys.argv[1] == 'tcp' "
         "else socket.SOCK_DGRAM\n"
         "fam = socket.AF_INET6 if ':' in sys.argv[2] else socket.AF_INET\n"
         "s = socket.socket(fam, kind)\n"
         "s.bind((sys.argv[2], int(sys.argv[3])))\n"
         "if kind == socket.SOCK_STREAM:\n"
         "    s.listen(8)\n"
         "print(s.getsockname()[1], flush=True)\n"
         "time.sleep(120)\n")


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class WhoDoctorCase(BerthTestCase):

    def broker(self):
        """A berthd with a pool of its own: a random slice of 20000-29999,
        away from the default pool other test daemons on this host hand
        out (and from the kernel's usual ephemeral range), so a granted
        port is still free when the test binds it a moment later."""
        lo = random.randrange(20000, 29900, 100)
        return self.berthd("--range", "%d-%d" % (lo, lo + 99))

    def cli(self, addr, *args, timeout=30):
        """Run the CLI against addr; returns the CompletedProcess."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        return subprocess.run([BERTH_CLI, "--addr", addr] + list(args),
                              env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def child(self, kind="tcp", host="127.0.0.1", port=0):
        """A child process holding a socket; returns (proc, port)."""
        proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, host,
                                 str(port)], stdout=subprocess.PIPE,
                                text=True, stdin=subprocess.DEVNULL)
        self.addCleanup(self.end, proc)
        line = proc.stdout.readline()
        self.assertTrue(line.strip(), "the listener child failed to start")
        return proc, int(line)

    @staticmethod
    def end(proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()

    def lines(self, r):
        return [l for l in r.stdout.splitlines() if l.strip()]

    def assertFindings(self, r):
        """Every doctor line is a finding: ok:, warn: or fail:."""
        for line in self.lines(r):
            self.assertRegex(line, r"^(ok|warn|fail): ", r)

    def findings(self, r, level):
        return [l for l in self.lines(r) if l.startswith(level + ":")]


class TestWho(WhoDoctorCase):

    def test_tcp_listener_names_pid_and_command(self):
        d = self.berthd()
        proc, port = self.child("tcp")
        r = self.cli(d.addr, "who", str(port))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("pid %d" % proc.pid, r.stdout)
        self.assertIn(MARKER, r.stdout)
        self.assertIn("LISTEN", r.stdout)
        self.assertIn("127.0.0.1:%d" % port, r.stdout)
        self.assertRegex(r.stdout, r"(?m)^tcp\b")

    def test_udp_socket(self):
        d = self.berthd()
        proc, port = self.child("udp")
        r = self.cli(d.addr, "who", str(port))
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r"(?m)^udp\b")
        self.assertIn("pid %d" % proc.pid, r.stdout)
        self.assertIn(MARKER, r.stdout)
        # The kernel picked the port from the ephemeral range, so another
        # test's closed TCP connection may sit in TIME_WAIT on the same
        # number; what must not appear is a TCP socket of our child.
        self.assertNotRegex(r.stdout, r"(?m)^tcp.*pid %d" % proc.pid)

    def test_ipv6_listener(self):
        if not have_ipv6():
            self.skipTest("no IPv6 on this host")
        d = self.berthd()
        proc, port = self.child("tcp", "::1")
        r = self.cli(d.addr, "who", str(port))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("[::1]:%d" % port, r.stdout)
        self.assertIn("pid %d" % proc.pid, r.stdout)

    def test_lease_name(self):
        d = self.broker()
        resp = d.acquire("who-web")
        self.assertEqual(resp.status, 201, resp)
        port = resp.json["port"]
        # Leased, nothing bound yet: the lease alone answers.
        r = self.cli(d.addr, "who", str(port))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("who-web", r.stdout)
        # And with the service up, both the process and the lease.
        proc, _ = self.child("tcp", "127.0.0.1", port)
        r = self.cli(d.addr, "who", str(port))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("who-web", r.stdout)
        self.assertIn("pid %d" % proc.pid, r.stdout)
        # A lease on another port is not named.
        other = self.unused_port().port
        r = self.cli(d.addr, "who", str(other))
        self.assertNotIn("who-web", r.stdout + r.stderr)

    def test_json(self):
        d = self.broker()
        resp = d.acquire("who-json")
        port = resp.json["port"]
        proc, _ = self.child("tcp", "127.0.0.1", port)
        r = self.cli(d.addr, "--json", "who", str(port))
        self.assertEqual(r.returncode, 0, r)
        obj = json.loads(r.stdout)
        self.assertEqual(obj["port"], port)
        self.assertEqual(obj["lease"], "who-json")
        pids = [h.get("pid") for h in obj["holders"]]
        self.assertIn(proc.pid, pids, obj)

    def test_nothing_holds_port(self):
        d = self.berthd()
        # Reserved by a TCP socket that is bound but never listens: no
        # socket table lists it, so to `who` nothing holds the port, and
        # no other process can bind it while the test runs.
        port = self.unused_port().port
        r = self.cli(d.addr, "who", str(port))
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("nothing holds port %d" % port, r.stdout + r.stderr)
        r = self.cli(d.addr, "--json", "who", str(port))
        self.assertEqual(r.returncode, 3, r)
        obj = json.loads(r.stdout)
        self.assertEqual(obj, {"port": port, "holders": [], "lease": None})

    def test_works_without_broker(self):
        addr = self.dead_addr()
        proc, port = self.child("tcp")
        r = self.cli(addr, "who", str(port))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("pid %d" % proc.pid, r.stdout)
        self.assertIn("no broker", r.stderr)
        self.assertIn(addr, r.stderr)
        # Nothing on the port and no broker: still "nothing", exit 3.
        r = self.cli(addr, "who", str(self.unused_port().port))
        self.assertEqual(r.returncode, 3, r)

    def test_bad_port_is_usage(self):
        addr = self.dead_addr()
        for bad in ("0", "65536", "http", "-1", "80x", ""):
            r = self.cli(addr, "who", bad)
            self.assertEqual(r.returncode, 2, (bad, r))
            self.assertTrue(r.stderr.startswith("berth: "), (bad, r))
        r = self.cli(addr, "who")
        self.assertEqual(r.returncode, 2, r)


class TestDoctor(WhoDoctorCase):

    def test_all_well(self):
        # An explicit pool, so the host's ephemeral range cannot matter.
        d = self.broker()
        resp = d.acquire("doc-web", pid=os.getpid())
        self.assertEqual(resp.status, 201, resp)
        port = resp.json["port"]
        s = listener(port, host="127.0.0.1")
        self.addCleanup(s.close)
        r = self.cli(d.addr, "doctor")
        self.assertEqual(r.returncode, 0, r)
        self.assertFindings(r)
        self.assertEqual(self.findings(r, "warn") + self.findings(r, "fail"),
                         [], r)
        web = [l for l in self.lines(r) if "doc-web" in l]
        self.assertTrue(web, r)
        self.assertTrue(any("pid %d" % os.getpid() in l for l in web), r)
        self.assertTrue(any(d.db in l for l in self.lines(r)), r)
        r = self.cli(d.addr, "--json", "doctor")
        self.assertEqual(r.returncode, 0, r)
        obj = json.loads(r.stdout)
        self.assertTrue(obj["ok"], obj)
        self.assertTrue(obj["findings"], obj)
        self.assertEqual({f["level"] for f in obj["findings"]}, {"ok"}, obj)

    def test_pool_in_ephemeral_range_warns(self):
        # A pool that outgoing connections share: doctor says so, naming
        # the kernel's range and how many pool ports are in it.
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
        d = self.berthd("--range", "%d-%d" % (lo, lo + 9))
        r = self.cli(d.addr, "doctor")
        self.assertEqual(r.returncode, 1, r)
        warns = [l for l in self.findings(r, "warn")
                 if "ephemeral range %d-%d" % (lo, hi) in l]
        self.assertEqual(len(warns), 1, r)
        self.assertIn("10 of its ports", warns[0])
        self.assertIn("--range", warns[0])

    def test_nothing_listens_warns(self):
        d = self.broker()
        resp = d.acquire("doc-idle", pid=os.getpid())
        self.assertEqual(resp.status, 201, resp)
        port = resp.json["port"]
        r = self.cli(d.addr, "doctor")
        self.assertEqual(r.returncode, 1, r)
        self.assertFindings(r)
        warns = self.findings(r, "warn")
        self.assertTrue(any("doc-idle" in l and str(port) in l
                            and "listen" in l for l in warns), r)
        # Hints follow " — " (or " - ").
        self.assertTrue(all(" — " in l or " - " in l for l in warns), r)

    def test_name_only_that_lease(self):
        d = self.broker()
        good = d.acquire("doc-good", pid=os.getpid())
        self.assertEqual(good.status, 201, good)
        self.assertEqual(d.acquire("doc-idle", pid=os.getpid()).status, 201)
        s = listener(good.json["port"], host="127.0.0.1")
        self.addCleanup(s.close)
        r = self.cli(d.addr, "doctor", "doc-good")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("doc-good", r.stdout)
        self.assertNotIn("doc-idle", r.stdout)
        r = self.cli(d.addr, "doctor", "doc-idle")
        self.assertEqual(r.returncode, 1, r)

    def test_unknown_name(self):
        d = self.berthd()
        r = self.cli(d.addr, "doctor", "doc-ghost")
        self.assertEqual(r.returncode, 3, r)
        self.assertTrue(any("doc-ghost" in l
                            for l in self.findings(r, "fail")), r)

    def test_invalid_name_is_usage(self):
        r = self.cli(self.dead_addr(), "doctor", "Bad/Name")
        self.assertEqual(r.returncode, 2, r)

    def test_no_broker(self):
        addr = self.dead_addr()
        r = self.cli(addr, "doctor")
        self.assertEqual(r.returncode, 69, r)
        self.assertFindings(r)
        fails = self.findings(r, "fail")
        self.assertTrue(any(addr in l and "berthd" in l for l in fails), r)

    def test_no_broker_unix(self):
        d = self.berthd()
        path = os.path.join(d.tmp, "absent.sock")
        r = self.cli("unix:" + path, "doctor")
        self.assertEqual(r.returncode, 69, r)
        fails = self.findings(r, "fail")
        self.assertTrue(any(path in l and "exist" in l for l in fails), r)

    def test_broker_port_held_by_another_process(self):
        # A listener that never answers HTTP where the broker should be.
        proc, port = self.child("tcp")
        r = self.cli("127.0.0.1:%d" % port, "doctor")
        self.assertEqual(r.returncode, 69, r)
        fails = self.findings(r, "fail")
        self.assertTrue(any("pid %d" % proc.pid in l and "not berthd" in l
                            for l in fails), r)

    @unittest.skipIf(os.environ.get("BERTH_UNDER_VALGRIND") == "1",
                     "under valgrind the process is valgrind.bin, not berthd")
    def test_stuck_berthd(self):
        d = self.berthd()
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            r = self.cli(d.addr, "doctor")
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        self.assertEqual(r.returncode, 69, r)
        fails = self.findings(r, "fail")
        self.assertTrue(any("pid %d" % d.proc.pid in l and "berthd" in l
                            and "not berthd" not in l for l in fails), r)

    def test_crowded_pool_warns(self):
        # A one-port pool whose only port another process holds.
        proc, port = self.child("tcp")
        d = self.berthd("--range", "%d-%d" % (port, port))
        r = self.cli(d.addr, "doctor")
        self.assertEqual(r.returncode, 1, r)
        self.assertTrue(any("pool" in l for l in self.findings(r, "warn")), r)

    def test_listening_on_wrong_address_warns(self):
        if not have_ipv6():
            self.skipTest("no IPv6 on this host")
        d = self.broker()
        resp = d.acquire("doc-v6", pid=os.getpid())
        self.assertEqual(resp.status, 201, resp)
        port = resp.json["port"]
        # Clients are told 127.0.0.1, the service listens on ::1 only.
        s = listener(port, host="::1", family=socket.AF_INET6)
        self.addCleanup(s.close)
        r = self.cli(d.addr, "doctor", "doc-v6")
        self.assertEqual(r.returncode, 1, r)
        self.assertTrue(any("doc-v6" in l and "127.0.0.1" in l
                            for l in self.findings(r, "warn")), r)


if __name__ == "__main__":
    main()
