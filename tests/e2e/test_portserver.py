"""End-to-end tests of berthd's portpicker portserver protocol
(docs/portpicker.md).

The client is the real one: Debian's python3-portpicker, which installs for
the system /usr/bin/python3 (PORTPICKER_PYTHON overrides it). Each client
runs as its own process, so that it owns the leases it gets and berthd can
see it die. A raw unix-socket client covers what portpicker never sends.
"""
import json
import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

from berthtest import BerthTestCase, SLOWDOWN, main

PY = os.environ.get("PORTPICKER_PYTHON", "/usr/bin/python3")

# A client process: asks for ports as told on its command line, prints
# them as JSON, then holds them until its stdin closes.
CLIENT = r"""
import json, os, sys
import portpicker
addr = sys.argv[1]
out = {"pid": os.getpid(), "picked": [], "got": []}
for what in sys.argv[2:]:
    if what == "pick":
        out["picked"].append(portpicker.pick_unused_port())
    else:
        out["got"].append(portpicker.get_port_from_port_server(addr))
print(json.dumps(out), flush=True)
sys.stdin.read()
"""


def _portpicker_missing():
    try:
        r = subprocess.run([PY, "-c", "import portpicker"],
                           capture_output=True, timeout=30)
    except OSError as e:
        return "%s: %s" % (PY, e)
    if r.returncode != 0:
        return ("%s cannot import portpicker (apt-get install "
                "python3-portpicker)" % PY)
    return None


def _ephemeral():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
        return range(lo, hi + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def pool(n):
    """A random n-port block outside the kernel's ephemeral range, so that
    tests running in parallel rarely share ports."""
    eph = _ephemeral()
    while True:
        lo = random.randrange(61000, 65535 - n)
        if not any(p in eph for p in (lo, lo + n - 1)):
            return lo, lo + n - 1


def bindable(port):
    """Is port free on TCP and UDP, IPv4 wildcard (as portpicker checks)?"""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def raw_request(addr, data, shutdown=False):
    """Send data to the portserver at addr; return all it answers."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10 * SLOWDOWN)
    try:
        s.connect("\0" + addr[1:] if addr.startswith("@") else addr)
        s.sendall(data)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(1024)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


class PortserverTest(BerthTestCase):
    def setUp(self):
        super().setUp()
        why = _portpicker_missing()
        if why:
            self.skipTest(why)
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            if c.poll() is None:
                c.kill()
            c.wait()
            c.stdin.close()
            c.stdout.close()
        super().tearDown()

    def start(self, n=20, addr=None, extra=()):
        self.lo, self.hi = pool(n)
        self.addr = addr or "@berth-test-%d-%d" % (os.getpid(),
                                                  random.randrange(1 << 30))
        return self.berthd("--portserver", self.addr,
                           "--range", "%d-%d" % (self.lo, self.hi), *extra)

    def client(self, *asks, env=None):
        """A portpicker client process; returns (proc, its JSON line)."""
        e = dict(os.environ)
        e.pop("PORTSERVER_ADDRESS", None)
        e.update(env or {})
        p = subprocess.Popen([PY, "-c", CLIENT, self.addr] + list(asks),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=e)
        self.clients.append(p)
        line = p.stdout.readline()
        self.assertTrue(line, "the portpicker client printed nothing")
        return p, json.loads(line)

    def leases(self, d):
        r = d.get("/v1/services")
        self.assertEqual(r.status, 200, r)
        return {l["name"]: l for l in r.json["services"]}

    def wait_no_leases(self, d, timeout=5.0):
        deadline = time.monotonic() + timeout * SLOWDOWN
        while self.leases(d):
            self.assertLess(time.monotonic(), deadline,
                            "leases still live: %s" % self.leases(d))
            time.sleep(0.05)

    def test_pick_and_get_lease_ports_owned_by_the_client(self):
        d = self.start()
        p, out = self.client("pick", "get",
                             env={"PORTSERVER_ADDRESS": self.addr})
        ports = out["picked"] + out["got"]
        self.assertEqual(len(set(ports)), 2, out)
        leases = self.leases(d)
        self.assertEqual(len(leases), 2, leases)
        for port in ports:
            self.assertTrue(self.lo <= port <= self.hi, (port, self.lo))
            l = leases["portpicker-%d" % port]
            self.assertEqual(l["port"], port)
            self.assertEqual(l["proto"], "both")
            self.assertEqual(l["pid"], out["pid"])
            self.assertEqual(l["ttl"], 0)
            self.assertNotIn("token", l)
            # Free on both protocols: nobody but the client will use it.
            self.assertTrue(bindable(port), port)
        st = d.get("/v1/status").json
        self.assertEqual(st["pool"]["free"], st["pool"]["size"] - 2, st)
        self.assertEqual(st["portserver"]["address"], self.addr)
        self.assertEqual(st["portserver"]["granted"], 2, st)

        # The client exits: its ports go back to the pool.
        p.stdin.close()
        p.wait(timeout=10)
        self.wait_no_leases(d)
        st = d.get("/v1/status").json
        self.assertEqual(st["pool"]["free"], st["pool"]["size"], st)

    def test_no_answer_for_pid_1_dead_pid_or_garbage(self):
        d = self.start()
        dead = subprocess.Popen(["true"])
        dead.wait()
        for data in (b"1\n", b"0\n", b"-5\n", b"%d\n" % dead.pid,
                     b"hello\n", b"12x\n", b"\n", b"9" * 19 + b"\n",
                     b"1" * 21, b"1234567890123456789012\n",
                     b"\xff\xfe\n"):
            self.assertEqual(raw_request(self.addr, data), b"", data)
        # And through portpicker itself: pid 1 gets nothing.
        r = subprocess.run(
            [PY, "-c", "import portpicker, sys; "
             "print(portpicker.get_port_from_port_server(sys.argv[1], pid=1))",
             self.addr], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.strip(), "None", r)
        self.assertEqual(self.leases(d), {})
        st = d.get("/v1/status").json
        self.assertEqual(st["portserver"]["granted"], 0, st)
        self.assertGreaterEqual(st["portserver"]["refused"], 12, st)
        self.assertEqual(d.get("/v1/health").status, 200)

    def test_raw_request_formats(self):
        d = self.start()
        me = b"%d" % os.getpid()
        # Blanks around the pid, and a line ended by the client's shutdown.
        a = raw_request(self.addr, b" " + me + b" \n")
        b = raw_request(self.addr, me, shutdown=True)
        for answer in (a, b):
            self.assertRegex(answer, rb"^\d+\n$")
        leases = self.leases(d)
        self.assertEqual(sorted(l["port"] for l in leases.values()),
                         sorted(int(x) for x in (a, b)))
        for l in leases.values():
            self.assertEqual(l["pid"], os.getpid())

    def test_ports_busy_on_either_protocol_are_skipped(self):
        d = self.start(n=3)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind(("0.0.0.0", self.lo))
            tcp.bind(("0.0.0.0", self.lo + 1))
            tcp.listen(1)
            _, out = self.client("get")
            self.assertEqual(out["got"], [self.lo + 2], out)
            # Now nothing in the pool is free on both: no answer.
            _, out = self.client("get")
            self.assertEqual(out["got"], [None], out)
        finally:
            udp.close()
            tcp.close()
        self.assertEqual(list(self.leases(d)), ["portpicker-%d" % (self.lo + 2)])

    def test_leases_survive_kill9_while_the_client_lives(self):
        d = self.start()
        p, out = self.client("get", "get")
        d.restart()
        leases = self.leases(d)
        self.assertEqual(sorted(l["port"] for l in leases.values()),
                         sorted(out["got"]))
        self.assertTrue(all(l["pid"] == out["pid"] for l in leases.values()))
        # A new client gets other ports, not the held ones.
        _, out2 = self.client("get")
        self.assertNotIn(out2["got"][0], out["got"])
        p.stdin.close()
        p.wait(timeout=10)
        deadline = time.monotonic() + 5 * SLOWDOWN
        while any(l["pid"] == out["pid"] for l in self.leases(d).values()):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

    def test_path_socket(self):
        tmp = tempfile.mkdtemp(prefix="berth-ps-")
        path = os.path.join(tmp, "portserver.sock")
        d = self.start(addr=path)
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o660)
        _, out = self.client("get")
        self.assertTrue(self.lo <= out["got"][0] <= self.hi, out)
        d.stop()
        self.assertFalse(os.path.exists(path), "socket left behind")
        os.rmdir(tmp)

    def test_bad_addresses_are_refused_at_start(self):
        for bad in ("@", ""):
            r = subprocess.run([os.environ.get("BERTHD", "berthd"),
                                "--db", ":memory:", "--listen", "127.0.0.1:0",
                                "--portserver", bad],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r)
            self.assertIn("portserver", r.stderr)
        # A path that is a regular file is never removed.
        with tempfile.NamedTemporaryFile() as f:
            with self.assertRaises(RuntimeError) as cm:
                self.berthd("--portserver", f.name, db=":memory:")
            self.assertIn("not a socket", str(cm.exception))
            self.assertTrue(os.path.isfile(f.name))

    def test_client_in_another_pid_namespace_owns_by_its_real_pid(self):
        """A client in a new PID namespace sends a pid that means nothing to
        berthd (it is PID 1 there); the lease goes to the connecting process
        as berthd sees it, and ends when it exits."""
        unshare = shutil.which("unshare")
        flags = ["-p", "-f", "--mount-proc"]
        if os.geteuid() != 0:
            flags = ["-r"] + flags
        if unshare is None or subprocess.run(
                [unshare] + flags + ["true"], capture_output=True).returncode:
            self.skipTest("cannot make a PID namespace here (unshare %s)"
                          % " ".join(flags))
        d = self.start()
        p = subprocess.Popen([unshare] + flags + ["--kill-child", PY, "-c",
                                                  CLIENT, self.addr, "get"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.clients.append(p)
        out = json.loads(p.stdout.readline())
        self.assertEqual(out["pid"], 1, out)     # what it sent
        port = out["got"][0]
        self.assertIsNotNone(port, out)
        lease = self.leases(d)["portpicker-%d" % port]
        # The owner is the client as the host sees it: unshare's child.
        with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
            inner = [int(x) for x in f.read().split()]
        self.assertEqual([lease["pid"]], inner, lease)
        p.stdin.close()
        p.wait(timeout=10)
        self.wait_no_leases(d)

    def test_a_second_berthd_on_the_same_name_exits(self):
        d = self.start()
        with self.assertRaises(RuntimeError) as cm:
            self.berthd("--portserver", self.addr)
        self.assertIn("already serving", str(cm.exception))
        # The first one still answers.
        self.assertRegex(raw_request(self.addr, b"%d\n" % os.getpid()),
                         rb"^\d+\n$")
        self.assertEqual(len(self.leases(d)), 1)


class PortserverGarbageTest(BerthTestCase):
    """A flood of bad requests (no portpicker needed): berthd keeps
    answering, and its log does not grow with the flood."""

    GARBAGE = (b"hello\n", b"12x\n", b"\n", b"1\n", b"0\n",
               b"1" * 25, b"\xff\xfe\n", b"99999999999999999999\n")
    SECONDS = 3.0
    LOG_BOUND = 20 * 1024

    def flood(self, addr, stop, counts):
        target = "\0" + addr[1:]
        n = 0
        while not stop.is_set():
            data = self.GARBAGE[n % len(self.GARBAGE)]
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(target)
                s.sendall(data)
                s.recv(64)
            except OSError:
                pass
            finally:
                s.close()
            n += 1
        counts.append(n)

    def test_garbage_flood_does_not_flood_the_log(self):
        lo, hi = pool(8)
        addr = "@berth-test-%d-%d" % (os.getpid(), random.randrange(1 << 30))
        d = self.berthd("--portserver", addr, "--range", "%d-%d" % (lo, hi))
        before = os.path.getsize(d.log_path)
        stop, counts = threading.Event(), []
        threads = [threading.Thread(target=self.flood,
                                    args=(addr, stop, counts))
                   for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(self.SECONDS)
        stop.set()
        for t in threads:
            t.join(30)
        sent = sum(counts)
        self.assertGreater(sent, 500, "the flood hardly ran")
        st = d.get("/v1/status").json
        self.assertGreaterEqual(st["portserver"]["refused"], sent * 0.9, st)
        grew = os.path.getsize(d.log_path) - before
        self.assertLess(grew, self.LOG_BOUND, "%d bad requests grew the log "
                        "by %d bytes" % (sent, grew))
        # Said, just not once per request.
        self.assertIn("portserver: no port", d.logtext())
        # Still answering, both protocols.
        self.assertEqual(d.get("/v1/health").status, 200)
        self.assertRegex(raw_request(addr, b"%d\n" % os.getpid()),
                         rb"^\d+\n$")


if __name__ == "__main__":
    main()
