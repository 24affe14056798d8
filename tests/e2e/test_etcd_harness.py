"""The etcd harness itself (etcdtest.py) against a real etcd: keys and
values through the JSON gateway's base64, a lease that expires, a member
killed and restarted on its data, a three-member cluster that loses its
leader, and that everything the harness starts ends with it.

Skipped (one line) without etcd: apt-get install etcd-server."""

import base64
import os
import socket
import time
import unittest

import etcdtest
from berthtest import main
from etcdtest import Etcd, EtcdClient, EtcdError, EtcdMixin

# Generous: an election takes about a second, a lease's expiry its TTL
# plus half a second; a busy CI machine may take many times that.
TIMEOUT = 60


def eventually(fn, what, timeout=TIMEOUT):
    """fn's first true result, retrying on etcd's errors and refused
    connections (an election, a member down); fail after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (EtcdError, OSError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s "
                                 "(last error: %s)" % (timeout, what, last))
        time.sleep(0.1)


def gone(pid):
    """Whether no process has this pid any more (or it is not an etcd)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"etcd" not in f.read().split(b"\0")[0]
    except FileNotFoundError:
        return True


class HarnessNoEtcdTest(unittest.TestCase):
    """What needs no etcd running."""

    def test_prefix_end(self):
        self.assertEqual(etcdtest.prefix_end(b"svc/"), b"svc0")
        self.assertEqual(etcdtest.prefix_end(b"a\xff"), b"b")
        self.assertEqual(etcdtest.prefix_end(b"\xff\xff"), b"\0")
        self.assertEqual(etcdtest.prefix_end(b""), b"\0")

    def test_loopback_only(self):
        for url in ("http://10.0.0.1:2379", "http://localhost:2379",
                    "https://127.0.0.1:2379", "http://127.0.0.1"):
            with self.subTest(url=url):
                with self.assertRaises(ValueError):
                    EtcdClient(url)

    def test_missing_binary_skips(self):
        saved = etcdtest.ETCD
        etcdtest.ETCD = "/nonexistent/etcd"
        try:
            with self.assertRaises(unittest.SkipTest) as cm:
                Etcd()
            self.assertIn("etcd-server", str(cm.exception))
            self.assertNotIn("\n", str(cm.exception))
        finally:
            etcdtest.ETCD = saved


class EtcdHarnessTest(EtcdMixin, unittest.TestCase):

    def test_put_get_prefix_round_trip(self):
        e = self.etcd()
        want = {
            b"svc/web": b"127.0.0.1:8080",
            b"svc/bin\x00\xff\xfe": bytes(range(256)),
            "svc/caf\u00e9".encode(): "\u00e9t\u00e9".encode(),
            b"svc/empty": b"",
        }
        for k, v in want.items():
            e.put(k, v)
        e.put("svc/web", "127.0.0.1:8081")         # str, and an overwrite
        want[b"svc/web"] = b"127.0.0.1:8081"
        e.put(b"svc0", b"just past the prefix")
        e.put(b"sv", b"just before it")
        self.assertEqual(e.get_prefix(b"svc/"), want)
        self.assertEqual(e.get_prefix("svc/"), want)
        self.assertEqual(e.get_prefix("svc/caf"),
                         {"svc/caf\u00e9".encode(): "\u00e9t\u00e9".encode()})
        self.assertEqual(e.get_prefix("nothing/"), {})
        # What the gateway holds is the bytes, base64 in its JSON.
        doc = e.request("/v3/kv/range",
                        {"key": base64.b64encode(b"svc/bin\x00\xff\xfe")
                         .decode()})
        self.assertEqual(doc["count"], "1")
        self.assertEqual(base64.b64decode(doc["kvs"][0]["value"]),
                         bytes(range(256)))

    def test_lease_expires(self):
        e = self.etcd()
        lease = e.grant(2)
        self.assertGreater(lease, 0)
        rev = e.put("lease/k", "v", lease=lease)
        e.put("lease/plain", "stays")
        # At the put's revision the key is there, on that lease, however
        # long ago that was.
        doc = e.request("/v3/kv/range",
                        {"key": base64.b64encode(b"lease/k").decode(),
                         "revision": str(rev)})
        self.assertEqual(doc["kvs"][0]["lease"], str(lease))
        eventually(lambda: b"lease/k" not in e.get_prefix("lease/"),
                   "lease/k to vanish with its 2 s lease")
        self.assertEqual(e.get_prefix("lease/"), {b"lease/plain": b"stays"})
        self.assertEqual(e.keepalive(lease), 0, "the lease outlived its key")
        with self.assertRaises(EtcdError) as cm:
            e.revoke(lease)
        self.assertEqual(cm.exception.status, 404)

    def test_revoke_and_keepalive(self):
        e = self.etcd()
        lease = e.grant(60)
        self.assertEqual(e.keepalive(lease), 60)
        e.put("r/k", "v", lease=lease)
        e.revoke(lease)
        self.assertEqual(e.get_prefix("r/"), {})
        self.assertEqual(e.keepalive(lease), 0)

    def test_kill_restart_keeps_data(self):
        e = self.etcd()
        url, pid = e.client_url, e.pid
        data = {b"d/%d" % i: b"value %d" % i for i in range(20)}
        for k, v in data.items():
            rev = e.put(k, v)
        e.kill()
        self.assertTrue(gone(pid), "etcd %d still runs after kill()" % pid)
        self.assertFalse(e.healthy())
        self.assertTrue(os.path.isdir(os.path.join(e.data_dir, "member")),
                        "kill() removed the data directory")
        e.restart()
        self.assertEqual(e.client_url, url)
        self.assertNotEqual(e.pid, pid)
        self.assertEqual(e.get_prefix("d/"), data)
        self.assertGreater(e.put("d/after", "x"), rev)

    def test_cluster_survives_leader_kill(self):
        c = self.etcd_cluster()
        self.assertEqual(len(set(c.client_urls)), 3)
        leader = c.wait_leader()
        for m in c.members:
            eventually(lambda: m.status().get("leader") == leader.member_id,
                       "%s to follow %s" % (m, leader))
        leader.put("c/before", "1")
        c.kill(leader)
        self.assertTrue(gone(leader.pid))
        others = [m for m in c.members if m is not leader]
        self.assertEqual(len(others), 2)
        # A put sent during the election waits for etcd's own request
        # timeout (7 s) before it fails: wait for the new leader instead.
        new = c.wait_leader(TIMEOUT)
        self.assertIn(new, others)
        self.assertNotEqual(new.member_id, leader.member_id)
        follower = others[1] if new is others[0] else others[0]
        eventually(lambda: follower.status().get("leader") == new.member_id,
                   "%s to follow %s" % (follower, new))
        eventually(lambda: follower.put("c/after", "2"),
                   "a put through %s after the leader died" % follower)
        got = eventually(lambda: new.get_prefix("c/"),
                         "a read through %s" % new)
        self.assertEqual(got, {b"c/before": b"1", b"c/after": b"2"})

    def test_stop_ends_everything(self):
        e = Etcd()
        self.addCleanup(e.stop)
        c = etcdtest.EtcdCluster()
        self.addCleanup(c.stop)
        pids = [e.pid] + [m.pid for m in c.members]
        dirs = [e.tmp, c.tmp]
        self.assertTrue(all(os.path.isdir(d) for d in dirs))
        e.stop()
        with c:
            pass
        for pid in pids:
            self.assertTrue(gone(pid), "etcd %d still runs" % pid)
        for d in dirs:
            self.assertFalse(os.path.exists(d), d)
        e.stop()        # again: nothing to do
        c.stop()

    def test_port_taken_retries(self):
        # The first ports the harness picks are taken by someone else
        # before etcd binds them: it starts again on others.
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        real = etcdtest.pick_ports
        calls = []

        def pick(n):
            calls.append(n)
            ports = real(n)
            return [port] + ports[1:] if len(calls) == 1 else ports
        etcdtest.pick_ports = pick
        try:
            e = self.etcd()
        finally:
            etcdtest.pick_ports = real
        self.assertEqual(len(calls), 2)
        self.assertNotEqual(e.port, port)
        e.put("k", "v")
        self.assertEqual(e.get_prefix("k"), {b"k": b"v"})


if __name__ == "__main__":
    main()
