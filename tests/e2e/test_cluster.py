"""berthd nodes sharing published leases through a real etcd (Debian's
etcd-server, started by etcdtest.py on loopback ports): what is published
is seen by the other nodes and what is not never is; a node killed with
-9 vanishes within its TTL; a restarted node republishes exactly its live
published leases; with etcd gone local work goes on at once and cluster
lookups answer from the last view, "stale"; with etcd back everything is
republished and no stale key of a node is left; a three-member etcd
losing its leader; values in etcd that are not berth's are never shown.

Several nodes on one machine: each advertises its own loopback address
(127.0.0.2, .3, ...), which --advertise accepts.

Skipped (one line) without etcd: apt-get install etcd-server."""

import json
import subprocess
import threading
import time

from berthtest import BERTHD, BerthTestCase, clean_env, main, wait_for
from etcdtest import EtcdMixin

PREFIX = "/berth/"
TTL = 3                 # --cluster-ttl: the shortest etcd keeps exactly
SEEN = 20               # seconds: a change reaches another node (generous)


def instances(d, name):
    """(status, [instances]) of d's cluster lookup of name."""
    r = d.get("/v1/cluster/services/" + name)
    return r.status, (r.json["instances"] if r.status == 200 else [])


def metrics(d):
    """d's /metrics samples without labels: {name: value}."""
    out = {}
    for line in d.get("/metrics").body.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            k, _, v = line.partition(" ")
            out[k] = float(v)
    return out


def view(d):
    """d's whole cluster view: {(name, node): instance}, and stale."""
    r = d.get("/v1/cluster/services")
    assert r.status == 200, r
    return ({(s["name"], s["node"]): s for s in r.json["services"]},
            r.json["stale"])


class ClusterTest(EtcdMixin, BerthTestCase):

    def node(self, etcd_urls, name, *args, ttl=TTL, advertise=None, **kw):
        """A berthd that is node name of the cluster at etcd_urls."""
        n = ord(name[-1]) - ord("a") + 2
        adv = advertise or "127.0.0.%d" % n
        d = self.berthd("--cluster", ",".join(etcd_urls), "--node", name,
                        "--advertise", adv, "--cluster-ttl", str(ttl),
                        *args, **kw)
        d.node = name
        d.advertise = adv
        return d

    def joined(self, d):
        wait_for(lambda: d.get("/v1/status").json["cluster"]["connected"],
                 SEEN, "%s to join etcd" % d.node)

    def sees(self, d, name, node, present=True):
        """Wait until d's view has (or, present False, no longer has)
        node's instance of name; return it."""
        def check():
            v, _ = view(d)
            got = v.get((name, node))
            return got if present else (got is None)
        return wait_for(check, SEEN, "%s to %s %s@%s" % (
            d.node, "see" if present else "lose", name, node))

    def etcd_keys(self, e, node=None):
        """{NAME: instance} of node's keys in etcd (all nodes: {key: v})."""
        kv = e.get_prefix(PREFIX + "services/")
        out = {}
        for k, v in kv.items():
            _, _, rest = k.decode().partition(PREFIX + "services/")
            name, _, n = rest.partition("/")
            if node is None:
                out[k.decode()] = json.loads(v)
            elif n == node:
                out[name] = json.loads(v)
        return out

    def test_publish_seen_by_others_and_released(self):
        e = self.etcd()
        a = self.node([e.client_url], "a")
        b = self.node([e.client_url], "b")
        self.joined(a)
        self.joined(b)
        r = a.acquire("web", publish=True, meta={"ver": "2"})
        self.assertEqual(r.status, 201, r)
        lease = r.json
        self.assertIs(lease["publish"], True)
        # A published lease's host is the node's advertise address.
        self.assertEqual(lease["host"], a.advertise)
        priv = a.acquire("private")
        self.assertEqual(priv.status, 201, priv)
        self.assertIs(priv.json["publish"], False)
        got = self.sees(b, "web", "a")
        self.assertEqual(got, {"name": "web", "node": "a",
                               "host": a.advertise, "port": lease["port"],
                               "proto": "tcp", "meta": {"ver": "2"},
                               "ready": False})
        # This node's own published leases are part of its view at once.
        self.assertIn(("web", "a"), view(a)[0])
        # A later publish on a is seen, so the unpublished one would have
        # been by now: it never leaves the host, in berthd nor in etcd.
        a.acquire("marker", publish=True)
        self.sees(b, "marker", "a")
        self.assertEqual(instances(b, "private")[0], 404)
        self.assertNotIn(b"private", b" ".join(
            k + b"=" + v for k, v in e.get_prefix(PREFIX).items()))
        status, inst = instances(b, "web")
        self.assertEqual(status, 200)
        self.assertEqual([i["node"] for i in inst], ["a"])
        # Nodes, with their addresses, by name.
        nodes = b.get("/v1/cluster/nodes").json["nodes"]
        self.assertEqual([(n["node"], n["address"]) for n in nodes],
                         [("a", a.advertise), ("b", b.advertise)])
        for n in nodes:
            self.assertRegex(n["joined_at"], r"^\d{4}-\d\d-\d\dT.*Z$")
            self.assertTrue(n["version"])
        # Released: gone from every view and from etcd.
        self.assertEqual(a.release("web", lease["token"]).status, 204)
        self.sees(b, "web", "a", present=False)
        self.assertEqual(instances(b, "web")[0], 404)
        self.assertNotIn("web", self.etcd_keys(e, "a"))
        self.assertEqual(set(self.etcd_keys(e, "a")), {"marker"})

    def test_same_name_on_two_nodes(self):
        e = self.etcd()
        a = self.node([e.client_url], "a")
        b = self.node([e.client_url], "b")
        self.joined(a)
        self.joined(b)
        pa = a.acquire("api", publish=True).json["port"]
        pb = b.acquire("api", publish=True).json["port"]
        self.sees(a, "api", "b")
        self.sees(b, "api", "a")
        r = a.get("/v1/cluster/services/api")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([(i["node"], i["host"], i["port"])
                          for i in r.json["instances"]],
                         [("a", a.advertise, pa), ("b", b.advertise, pb)])
        self.assertEqual(r.json["name"], "api")
        self.assertIs(r.json["stale"], False)
        self.assertEqual(int(r.headers["X-Berth-Index"]), r.json["index"])

    def test_blocking_lookup_and_watch(self):
        e = self.etcd()
        a = self.node([e.client_url], "a")
        b = self.node([e.client_url], "b")
        self.joined(a)
        self.joined(b)
        r = b.get("/v1/cluster/services")
        index = r.json["index"]
        self.assertEqual(int(r.headers["X-Berth-Index"]), index)
        got = {}

        def ask(key, path):
            got[key] = b.get(path, timeout=60)
        t1 = threading.Thread(target=ask, args=(
            "lookup", "/v1/cluster/services/late?wait=30"))
        t2 = threading.Thread(target=ask, args=(
            "watch", "/v1/cluster/services?index=%d&wait=30" % index))
        t1.start()
        t2.start()
        time.sleep(0.3)
        self.assertTrue(t1.is_alive() and t2.is_alive(),
                        "a blocking cluster query answered before any change")
        a.acquire("late", publish=True)
        t1.join(60)
        t2.join(60)
        self.assertEqual(got["lookup"].status, 200, got["lookup"])
        self.assertEqual(got["lookup"].json["instances"][0]["node"], "a")
        self.assertEqual(got["watch"].status, 200, got["watch"])
        self.assertGreater(got["watch"].json["index"], index)
        self.assertIn("late", [s["name"] for s in
                               got["watch"].json["services"]])
        # A wait that runs out is a 404, said so.
        r = b.get("/v1/cluster/services/never?wait=1")
        self.assertError(r, 404, "not_found")
        self.assertIn("waited", r.json["error"]["message"])
        # An index from an earlier run of berthd (above today's) is
        # answered at once, with today's index.
        r = b.get("/v1/cluster/services?index=%d&wait=30" % (index + 10**6))
        self.assertEqual(r.status, 200)
        self.assertLess(r.json["index"], index + 10**6)

    def test_killed_node_vanishes_and_three_nodes(self):
        e = self.etcd()
        a = self.node([e.client_url], "a")
        b = self.node([e.client_url], "b")
        c = self.node([e.client_url], "c")
        for d in (a, b, c):
            self.joined(d)
            d.acquire("svc-" + d.node, publish=True)
        for d in (a, b, c):
            for other in "abc":
                self.sees(d, "svc-" + other, other)
        self.assertEqual(len(a.get("/v1/cluster/nodes").json["nodes"]), 3)
        t0 = time.monotonic()
        c.kill9()
        self.sees(a, "svc-c", "c", present=False)
        self.sees(b, "svc-c", "c", present=False)
        gone_after = time.monotonic() - t0
        wait_for(lambda: [n["node"] for n in
                          a.get("/v1/cluster/nodes").json["nodes"]] ==
                 ["a", "b"], SEEN, "c to leave a's node list")
        # Its TTL (and etcd's expiry check) let it linger a little, not
        # for ever; printed for the record, asserted only loosely.
        print("killed node gone from the views after %.2f s (TTL %d s)"
              % (gone_after, TTL))
        self.assertNotIn("svc-c", [k.split("/")[3] for k in
                                   self.etcd_keys(e)])
        # SIGTERM: the node leaves at once (its etcd lease revoked).
        b.stop()
        self.sees(a, "svc-b", "b", present=False)
        self.assertEqual([n["node"] for n in
                          a.get("/v1/cluster/nodes").json["nodes"]], ["a"])

    def test_restart_republishes_exactly_live_leases(self):
        e = self.etcd()
        # A long etcd TTL: what goes must go by the republish, not expiry.
        a = self.node([e.client_url], "a", ttl=30)
        b = self.node([e.client_url], "b", ttl=30)
        self.joined(a)
        self.joined(b)
        keep = a.acquire("keep", publish=True)
        self.assertEqual(keep.status, 201, keep)
        a.acquire("short", publish=True, ttl=1)
        a.acquire("local")
        self.sees(b, "short", "a")
        self.assertEqual(set(self.etcd_keys(e, "a")), {"keep", "short"})
        a.kill9()
        # While a is dead its keys stay (their etcd lease lives 30 s), and
        # "short" expires in a's database meanwhile.
        time.sleep(1.5)
        self.assertEqual(set(self.etcd_keys(e, "a")), {"keep", "short"})
        a.restart()
        self.joined(a)
        wait_for(lambda: set(self.etcd_keys(e, "a")) == {"keep"}, SEEN,
                 "a's keys in etcd to be exactly its live published lease")
        self.sees(b, "short", "a", present=False)
        got = self.sees(b, "keep", "a")
        self.assertEqual(got["port"], keep.json["port"])
        self.assertEqual(self.etcd_keys(e, "a")["keep"], got)

    def test_etcd_down_stale_then_republished(self):
        e = self.etcd()
        a = self.node([e.client_url], "a")
        b = self.node([e.client_url], "b")
        self.joined(a)
        self.joined(b)
        web = a.acquire("web", publish=True).json
        b.acquire("db", publish=True)
        self.sees(b, "web", "a")
        self.sees(a, "db", "b")
        e.kill()
        wait_for(lambda: not b.get("/v1/status").json["cluster"]["connected"],
                 SEEN, "b to notice etcd is gone")
        # Nothing local waits on etcd.
        r = a.acquire("api", publish=True)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(a.get("/v1/services/api").status, 200)
        self.assertEqual(a.release("web", web["token"]).status, 204)
        self.assertEqual(a.acquire("plain").status, 201)
        # Cluster lookups answer from the last view, stale.
        r = b.get("/v1/cluster/services/web")
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json["stale"], True)
        v, stale = view(b)
        self.assertTrue(stale)
        self.assertIn(("web", "a"), v)
        st = b.get("/v1/status").json["cluster"]
        self.assertFalse(st["connected"])
        self.assertTrue(st["last_error"])
        self.assertIsNone(st["endpoint"])
        # This node's own changes are in its own view at once.
        v, _ = view(a)
        self.assertIn(("api", "a"), v)
        self.assertNotIn(("web", "a"), v)
        e.restart()
        self.joined(a)
        self.joined(b)
        self.sees(b, "api", "a")
        self.sees(b, "web", "a", present=False)
        self.sees(a, "db", "b")
        # No stale key of a node left behind: a's keys are its leases.
        wait_for(lambda: set(self.etcd_keys(e, "a")) == {"api"}, SEEN,
                 "a's keys to be exactly {api}")
        self.assertEqual(set(self.etcd_keys(e, "b")), {"db"})
        self.assertFalse(view(b)[1])
        st = b.get("/v1/status").json["cluster"]
        self.assertIsNone(st["last_error"])
        # Connected through its one endpoint again.
        self.assertEqual(st["endpoint"], e.client_url)
        self.assertEqual(st["endpoints"], [e.client_url])
        gone = a.acquire("gone", publish=True).json
        self.sees(b, "gone", "a")
        self.assertEqual(a.release("gone", gone["token"]).status, 204)
        self.sees(b, "gone", "a", present=False)
        m = metrics(a)
        self.assertEqual(m["berth_cluster_connected"], 1)
        self.assertGreaterEqual(m["berth_cluster_joins_total"], 2)
        self.assertGreaterEqual(m["berth_cluster_etcd_errors_total"], 1)
        self.assertGreaterEqual(m["berth_cluster_republishes_total"], 1)
        self.assertGreaterEqual(m["berth_cluster_publishes_total"], 1)
        self.assertGreaterEqual(m["berth_cluster_withdrawals_total"], 1)
        self.assertGreaterEqual(m["berth_cluster_watch_events_total"], 1)
        self.assertEqual(m["berth_cluster_nodes"], 2)
        self.assertEqual(m["berth_cluster_instances"], 2)

    def test_etcd_leader_killed(self):
        c = self.etcd_cluster()
        urls = c.client_urls
        a = self.node(urls, "a")
        b = self.node(list(reversed(urls)), "b")
        self.joined(a)
        self.joined(b)
        a.acquire("before", publish=True)
        self.sees(b, "before", "a")
        leader = c.wait_leader()
        c.kill(leader)
        # Publishing and watching carry on through the other members.
        a.acquire("after", publish=True)
        b.acquire("from-b", publish=True)
        self.sees(b, "after", "a")
        self.sees(a, "from-b", "b")
        live = [m for m in c.members if m is not leader]
        wait_for(lambda: "after" in str(live[0].get_prefix(PREFIX)), SEEN,
                 "the put in the surviving members")

    def test_foreign_values_never_shown(self):
        e = self.etcd()
        a = self.node([e.client_url], "a")
        self.joined(a)
        good = {"name": "ext", "node": "zz", "host": "10.1.2.3",
                "port": 8080, "proto": "tcp", "meta": {"k": "v"},
                "ready": None}
        bad = {
            "services/ext/yy": "not json",
            "services/ext/xx": json.dumps(dict(good, node="other")),
            "services/ext/ww": json.dumps(dict(good, port=0)),
            "services/ext/vv": json.dumps(dict(good, proto="sctp")),
            "services/ext/uu": json.dumps(dict(good, meta={"k": 1})),
            "services/ext/tt": json.dumps(dict(good, host="bad host")),
            "services/BAD/zz": json.dumps(dict(good, name="BAD")),
            "services/ext/a": json.dumps(dict(good, node="a")),
            "nodes/zz": "{}",
        }
        for k, v in bad.items():
            e.put(PREFIX + k, v)
        e.put(PREFIX + "services/ext/zz", json.dumps(dict(good, extra=1)))
        self.sees(a, "ext", "zz")
        r = a.get("/v1/cluster/services/ext")
        self.assertEqual(r.json["instances"], [good])
        self.assertEqual([n["node"] for n in
                          a.get("/v1/cluster/nodes").json["nodes"]], ["a"])
        # a never deletes or rewrites keys of another node's...
        for k in bad:
            if k != "services/ext/a":
                self.assertIn((PREFIX + k).encode(), e.get_prefix(PREFIX))
        # ... but its own key that no lease of a stands for goes when a
        # joins again (here: its next start).
        a.restart()
        self.joined(a)
        wait_for(lambda: (PREFIX + "services/ext/a").encode() not in
                 e.get_prefix(PREFIX), SEEN, "a's stray key to go")
        self.assertIn((PREFIX + "services/ext/zz").encode(),
                      e.get_prefix(PREFIX))


class AdvertiseTest(EtcdMixin, BerthTestCase):

    def test_wildcard_refused(self):
        for addr in ("0.0.0.0", "::"):
            r = subprocess.run(
                [BERTHD, "--db", ":memory:", "--listen", "127.0.0.1:0",
                 "--cluster", "http://127.0.0.1:2379", "--advertise", addr],
                env=clean_env(), stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r)
            self.assertIn("wildcard", r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_loopback_warned(self):
        e = self.etcd()
        d = self.berthd("--cluster", e.client_url, "--node", "a",
                        "--advertise", "127.0.0.1")
        wait_for(lambda: "only nodes on this machine" in d.logtext(), 10,
                 "the loopback warning")
        d2 = self.berthd("--cluster", e.client_url, "--node", "b",
                         "--advertise", "10.1.2.3")
        wait_for(lambda: "joined" in d2.logtext(), 20, "b to join")
        self.assertNotIn("loopback", d2.logtext())


class ClusterDisabledTest(BerthTestCase):

    def test_without_cluster(self):
        d = self.berthd()
        r = d.acquire("web", publish=True)
        self.assertError(r, 400, "cluster_disabled")
        self.assertIn("--cluster", r.json["error"]["message"])
        self.assertEqual(d.get("/v1/services/web").status, 404)
        for path in ("/v1/cluster/services", "/v1/cluster/services/web",
                     "/v1/cluster/nodes"):
            self.assertError(d.get(path), 404, "cluster_disabled")
        self.assertIsNone(d.get("/v1/status").json["cluster"])
        self.assertNotIn("berth_cluster_", d.get("/metrics").body)
        r = d.acquire("web", publish=False)
        self.assertEqual(r.status, 201, r)
        self.assertIs(r.json["publish"], False)
        self.assertError(d.acquire("x", publish="yes"), 400, "invalid_field")


if __name__ == "__main__":
    main()
