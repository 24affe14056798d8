"""berth across real "hosts": three network namespaces this test makes,
each with its own loopback and an address on a bridge in a fourth
namespace (the switch), none of it in the host's own network namespace;
etcd on host 3, a berthd on each host advertising its own address.

A service published on host 1 (`berth run --publish web -- python3 -m
http.server {port} --bind {host}`) is reached over HTTP from host 2 by
`berth run --need web`; host 1's link taken down makes its instances
vanish from host 2's view within the TTL, and they come back with the
link.

The namespaces are held by `sleep` processes made with unshare(1) and
entered with nsenter(1); ending those processes (by pid) removes the
namespaces, the bridge and the veth pairs. Every address used is in
10.77.0.0/24 inside them. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN);
elsewhere the test skips with one line saying why.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import berthtest
from berthtest import BERTHD, WRAPPER, UnixHTTPConnection, wait_for
from etcdtest import _pdeathsig as die_with_parent

BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
ETCD = os.environ.get("ETCD", "/usr/bin/etcd")
NET = "10.77.0."
TTL = 3
SEEN = 30               # seconds (wait_for stretches it under a wrapper)


def _need():
    """Why the test cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces and veth pairs need root"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return "%s(8) not found" % tool
    if not os.access(ETCD, os.X_OK):
        return "no etcd at %s: apt-get install etcd-server" % ETCD
    r = subprocess.run(["unshare", "--net", "--", "ip", "link", "add",
                        "probe0", "type", "bridge"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return "cannot make a network namespace with a bridge here: %s" % (
            r.stderr.strip() or "unshare failed")
    return None


def stop_procs(test, procs):
    """End the processes a test started in its namespaces, newest first,
    each by its pid (SIGTERM, then SIGKILL after 10 s); when the test
    failed, show the end of each one's log."""
    failed = any(e for e in (test._outcome.result.errors +
                             test._outcome.result.failures) if e[0] is test)
    for name, p, log in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if failed:
            with open(log, errors="replace") as f:
                print("---- %s ----\n%s" % (name, f.read()[-3000:]))


class Netns:
    """A network namespace held by a sleep process of its own, its
    loopback up; with mount=True a mount namespace too (private: a bind
    mount made in it is seen nowhere else)."""

    def __init__(self, name, mount=False):
        self.name = name
        self.mount = mount
        extra = ["--mount", "--propagation", "private"] if mount else []
        self.proc = subprocess.Popen(
            ["unshare", "--net"] + extra + ["--", "sleep", "infinity"],
            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while True:
            try:
                ns = os.readlink("/proc/%d/ns/net" % self.proc.pid)
            except FileNotFoundError:
                ns = mine
            if ns != mine:
                break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("namespace %s was not made" % name)
            time.sleep(0.01)
        self.path = "/proc/%d/ns/net" % self.proc.pid
        self.sh("ip link set lo up")

    def argv(self, argv):
        mnt = ["--mount=/proc/%d/ns/mnt" % self.proc.pid] if self.mount \
            else []
        return ["nsenter", "--net=" + self.path] + mnt + ["--"] + list(argv)

    def run(self, argv, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run(self.argv(argv), **kw)

    def sh(self, cmd):
        r = self.run(["sh", "-c", cmd])
        if r.returncode != 0:
            raise RuntimeError("%s: %s: %s" % (self.name, cmd, r.stderr))
        return r.stdout

    def popen(self, argv, **kw):
        return subprocess.Popen(self.argv(argv), **kw)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Host(Netns):
    """A namespace with eth0 = NET.n on the switch's bridge."""

    def __init__(self, n, switch):
        super().__init__("host%d" % n)
        self.n = n
        self.addr = NET + str(n)
        self.port_name = "h%d" % n
        switch.sh("ip link add %s type veth peer name eth0 netns %d"
                  % (self.port_name, self.proc.pid))
        switch.sh("ip link set %s master br0 up" % self.port_name)
        self.sh("ip addr add %s/24 dev eth0 && ip link set eth0 up"
                % self.addr)
        self.switch = switch


class ClusterHostsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        why = _need()
        if why:
            raise unittest.SkipTest(why)

    def setUp(self):
        # Nothing of this test's is ever in the host's own network
        # namespace (other tests' links may come and go meanwhile).
        self.addCleanup(self.assert_host_untouched)
        self.tmp = tempfile.mkdtemp(prefix="berth-hosts-")
        self.procs = []         # (name, Popen, log path)
        self.nss = []
        self.addCleanup(self.cleanup)
        self.switch = self.ns(Netns("switch"))
        self.switch.sh("ip link add br0 type bridge && ip link set br0 up")
        self.hosts = [self.ns(Host(n, self.switch)) for n in (1, 2, 3)]

    def assert_host_untouched(self):
        out = subprocess.run(["ip", "-o", "addr", "show"],
                             capture_output=True, text=True,
                             check=True).stdout
        self.assertNotIn(" " + NET, out)
        names = [l.split(":")[1].strip().split("@")[0] for l in
                 subprocess.run(["ip", "-o", "link", "show"],
                                capture_output=True, text=True,
                                check=True).stdout.splitlines()]
        for n in ("h1", "h2", "h3"):
            self.assertNotIn(n, names)

    def ns(self, n):
        self.nss.append(n)
        return n

    def cleanup(self):
        stop_procs(self, self.procs)
        for n in reversed(self.nss):
            n.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, host, name, argv, env=None):
        log = os.path.join(self.tmp, name + ".log")
        with open(log, "wb") as f:
            p = host.popen(argv, stdout=f, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, env=env,
                           preexec_fn=die_with_parent)
        self.procs.append((name, p, log))
        return p

    def berthd(self, host, etcd_url):
        sock = os.path.join(self.tmp, "berthd-%d.sock" % host.n)
        self.start(host, "berthd-%d" % host.n, WRAPPER + [
            BERTHD, "--db", os.path.join(self.tmp, "h%d.db" % host.n),
            "--listen", "127.0.0.1:62893", "--listen", "unix:" + sock,
            "--cluster", etcd_url, "--advertise", host.addr,
            "--node", host.name, "--cluster-ttl", str(TTL),
            "--log-level", "debug"])
        host.sock = sock
        self.wait(lambda: os.path.exists(sock) and self.api(host,
                  "/v1/health")[0] == 200, "berthd on %s" % host.name)

    def api(self, host, path):
        """(status, JSON) of GET path on host's berthd, over its unix
        socket (a path, not an address: reachable from here)."""
        c = UnixHTTPConnection(host.sock, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            return r.status, (json.loads(body) if body else None)
        except OSError:
            return 0, None
        finally:
            c.close()

    def wait(self, fn, what):
        return wait_for(fn, SEEN, what)

    def nodes_in_view(self, host, name):
        st, j = self.api(host, "/v1/cluster/services/" + name)
        return [i["node"] for i in j["instances"]] if st == 200 else []

    def cli_env(self):
        return berthtest.clean_env()

    def test_service_across_hosts(self):
        h1, h2, h3 = self.hosts
        # The hosts reach each other over the bridge, and only so.
        r = h2.run(["ping", "-c1", "-W2", h1.addr]) if shutil.which(
            "ping") else None
        if r is not None:
            self.assertEqual(r.returncode, 0, r.stderr)
        etcd_url = "http://%s:2379" % h3.addr
        self.start(h3, "etcd", [
            ETCD, "--name", "e3", "--data-dir",
            os.path.join(self.tmp, "etcd"),
            "--listen-client-urls", etcd_url,
            "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "e3=http://127.0.0.1:2380"])
        for h in self.hosts:
            self.berthd(h, etcd_url)
        for h in self.hosts:
            self.wait(lambda h=h: self.api(h, "/v1/status")[1]["cluster"]
                      ["connected"], "%s to join etcd" % h.name)

        # Host 1 serves web on its own address, published.
        self.start(h1, "web", [
            BERTH_CLI, "run", "--publish", "web", "--", "python3", "-m",
            "http.server", "{port}", "--bind", "{host}"],
            env=self.cli_env())
        self.wait(lambda: "host1" in self.nodes_in_view(h2, "web"),
                  "web on host1 in host2's view")
        st, j = self.api(h2, "/v1/cluster/services/web")
        inst = j["instances"][0]
        self.assertEqual((inst["node"], inst["host"]), ("host1", h1.addr))
        self.wait(lambda: self.api(h2, "/v1/cluster/services/web")[1]
                  ["instances"][0]["ready"] is True, "web to be ready")

        # Host 2 reaches it by name through berth run --need.
        r = h2.run([BERTH_CLI, "run", "--need", "web", "--timeout", "20",
                    "client", "--", "python3", "-c",
                    "import os, urllib.request; a = os.environ["
                    "'BERTH_WEB_ADDR']; print(a); print(urllib.request."
                    "urlopen('http://' + a + '/', timeout=10).status)"],
                   env=self.cli_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        addr, status = r.stdout.split()
        self.assertEqual(addr, "%s:%d" % (h1.addr, inst["port"]))
        self.assertEqual(status, "200")

        # Host 1 cut off: its instances leave host 2's view within the TTL
        # (etcd's lease), and come back when the link does.
        self.switch.sh("ip link set %s down" % h1.port_name)
        t0 = time.monotonic()
        self.wait(lambda: "host1" not in self.nodes_in_view(h2, "web"),
                  "web to vanish from host2's view")
        gone = time.monotonic() - t0
        self.wait(lambda: "host1" not in [n["node"] for n in self.api(
            h2, "/v1/cluster/nodes")[1]["nodes"]], "host1 to leave the nodes")
        print("host1 cut off: gone from host2's view after %.2f s (TTL %d s)"
              % (gone, TTL))
        # Host 1 itself still serves web locally, its view marked stale.
        self.wait(lambda: self.api(h1, "/v1/cluster/services")[1]["stale"],
                  "host1's view to be stale")
        self.assertEqual(self.api(h1, "/v1/services/web")[0], 200)
        self.switch.sh("ip link set %s up" % h1.port_name)
        self.wait(lambda: "host1" in self.nodes_in_view(h2, "web"),
                  "web to come back to host2's view")
        self.wait(lambda: not self.api(h1, "/v1/cluster/services")[1]
                  ["stale"], "host1 to rejoin")
        self.assertIn("host2", [n["node"] for n in self.api(
            h1, "/v1/cluster/nodes")[1]["nodes"]])


if __name__ == "__main__":
    berthtest.main()
