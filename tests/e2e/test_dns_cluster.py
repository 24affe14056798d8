#!/usr/bin/env python3
"""berthd's DNS names of the cluster end to end (berthd(8), cluster.md),
asked with dig and dnspython of berthd nodes sharing a real etcd
(etcdtest.py): NAME.cluster.berth (an A per distinct host, an SRV per
instance to NODE.node.berth. with that name's address in ADDITIONAL,
TTL 5), NODE.node.berth (the node's --advertise address), what is not
there (NXDOMAIN, NODATA), a local lease whose name ends in .cluster or
.node (the cluster's form wins), the same names without --cluster
(NXDOMAIN), and a release on one node leaving another's answer once its
view has it.

Nodes advertise 127.0.0.1 and, where this host's loopback takes it,
127.0.0.2. Skipped (one line) without etcd, dig or dnspython.
"""

import socket
import unittest

from berthtest import main, wait_for
from etcdtest import EtcdMixin
from test_cluster import SEEN, view
from test_dns import DnsCase, ask, both, dig

CLUSTER_TTL = 5         # the TTL of every cluster answer


def loopback_works(addr):
    """Can a socket be bound to this loopback address here?"""
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


class DnsClusterTest(EtcdMixin, DnsCase):

    def node(self, etcd, name, advertise):
        """A berthd that is node name of the cluster, joined."""
        d = self.berthd("--cluster", etcd.client_url, "--node", name,
                        "--advertise", advertise, "--cluster-ttl", "3")
        d.node = name
        d.advertise = advertise
        d.dns = self.dns_addr(d)
        wait_for(lambda: d.get("/v1/status").json["cluster"]["connected"],
                 SEEN, "%s to join etcd" % name)
        return d

    def sees(self, d, want, present=True):
        """Wait until d's view has (present) or lacks every (name, node)
        in want."""
        def check():
            v, _ = view(d)
            return all((k in v) == present for k in want)
        wait_for(check, SEEN, "%s's view to %s %r" % (
            d.node, "have" if present else "lack", sorted(want)))

    def test_cluster_and_node_names(self):
        e = self.etcd()
        other = "127.0.0.2" if loopback_works("127.0.0.2") else "127.0.0.1"
        # n1 and n3 share an address: the A records are one per address.
        n1 = self.node(e, "n1", "127.0.0.1")
        n2 = self.node(e, "n2", other)
        n3 = self.node(e, "n3", "127.0.0.1")
        nodes = (n1, n2, n3)
        port, token = {}, {}
        for d in nodes:
            lease = self.lease(d, "web", publish=True)
            port[d.node], token[d.node] = lease["port"], lease["token"]
        # A local lease whose name looks like a cluster or node name is
        # no DNS name of its own.
        for name in ("x.cluster", "n2.node"):
            self.lease(n1, name)
        pub = self.lease(n1, "pub.cluster", publish=True)["port"]
        want = {("web", d.node) for d in nodes} | {("pub.cluster", "n1")}
        for d in nodes:
            self.sees(d, want)

        addresses = sorted({d.advertise for d in nodes})
        srv = sorted(("web.cluster.berth.", CLUSTER_TTL, "SRV",
                      "0 0 %d %s.node.berth." % (port[d.node], d.node))
                     for d in nodes)
        glue = sorted(("%s.node.berth." % d.node, CLUSTER_TTL, "A",
                       d.advertise) for d in nodes)
        for d in (n1, n2):
            for r in both(d.dns, "web.cluster.berth", "A"):
                with self.subTest(node=d.node, client=r.client):
                    self.assertZone(r)
                    self.assertEqual(sorted(r.answer), [
                        ("web.cluster.berth.", CLUSTER_TTL, "A", a)
                        for a in addresses])
            for r in both(d.dns, "web.cluster.berth", "SRV"):
                with self.subTest(node=d.node, client=r.client):
                    self.assertZone(r)
                    self.assertEqual(sorted(r.answer), srv)
                    self.assertEqual(sorted(r.additional), glue)
            for r in both(d.dns, "web.cluster.berth", "ANY", "+notcp"):
                with self.subTest(node=d.node, client=r.client):
                    self.assertZone(r)
                    self.assertEqual(r.types(), ["A"] * len(addresses)
                                     + ["SRV"] * len(nodes))
            # Each node's name is its address; the SRV's ADDITIONAL says
            # the same.
            for n in nodes:
                for r in both(d.dns, "%s.node.berth" % n.node, "A"):
                    with self.subTest(node=d.node, client=r.client, of=n.node):
                        self.assertZone(r)
                        self.assertEqual(r.answer, [(
                            "%s.node.berth." % n.node, CLUSTER_TTL, "A",
                            n.advertise)])
            for q, rtype in (("web.cluster.berth", "TXT"),
                             ("n1.node.berth", "AAAA"),
                             ("n1.node.berth", "SRV"),
                             ("cluster.berth", "A"), ("node.berth", "A")):
                for r in both(d.dns, q, rtype):
                    with self.subTest(node=d.node, client=r.client, q=q):
                        self.assertNodata(r)
            for q in ("nope.cluster.berth", "nope.node.berth",
                      "x.cluster.berth", "_web._tcp.cluster.berth"):
                for r in both(d.dns, q, "A"):
                    with self.subTest(node=d.node, client=r.client, q=q):
                        self.assertNxdomain(r)
            # The cluster's form wins: pub.cluster.berth asks for the
            # cluster's "pub", which no node published.
            for r in both(d.dns, "pub.cluster.berth", "A"):
                with self.subTest(node=d.node, client=r.client):
                    self.assertNxdomain(r)
            for r in both(d.dns, "pub.cluster.cluster.berth", "SRV"):
                with self.subTest(node=d.node, client=r.client):
                    self.assertZone(r)
                    self.assertEqual(r.answer, [(
                        "pub.cluster.cluster.berth.", CLUSTER_TTL, "SRV",
                        "0 0 %d n1.node.berth." % pub)])
        # n2.node.berth is the node, never n1's local lease "n2.node".
        r = ask(n1.dns, "n2.node.berth", "A")
        self.assertEqual(r.answer, [("n2.node.berth.", CLUSTER_TTL, "A",
                                     other)])
        # The local name of a published lease is a local answer, TTL 0.
        r = ask(n1.dns, "web.berth", "SRV")
        self.assertEqual(r.answer, [("web.berth.", 0, "SRV",
                                     "0 0 %d web.berth." % port["n1"])])
        # Case as asked.
        r = ask(n2.dns, "WEB.Cluster.BERTH", "SRV")
        self.assertZone(r)
        self.assertEqual({x[0] for x in r.answer}, {"WEB.Cluster.BERTH."})

        # Released on n1: gone from n1's answer at once (its own view),
        # and from n2's once n2's view has it.
        self.assertEqual(n1.release("web", token["n1"]).status, 204)
        left = sorted(x for x in srv if "n1.node" not in x[3])
        for r in both(n1.dns, "web.cluster.berth", "SRV"):
            with self.subTest(node="n1", client=r.client):
                self.assertEqual(sorted(r.answer), left)
        self.sees(n2, {("web", "n1")}, present=False)
        for r in both(n2.dns, "web.cluster.berth", "SRV"):
            with self.subTest(node="n2", client=r.client):
                self.assertZone(r)
                self.assertEqual(sorted(r.answer), left)
                self.assertEqual(sorted(r.additional), sorted(
                    x for x in glue if not x[0].startswith("n1.")))
        # The last instances gone (their nodes leave): NXDOMAIN, and no
        # such node either.
        n2.stop()
        n3.stop()
        self.sees(n1, {("web", "n2"), ("web", "n3")}, present=False)
        for r in both(n1.dns, "web.cluster.berth", "A"):
            with self.subTest(client=r.client):
                self.assertNxdomain(r)
        for r in both(n1.dns, "n2.node.berth", "A"):
            with self.subTest(client=r.client):
                self.assertNxdomain(r)

    def test_srv_target_of_an_instance_with_its_own_host(self):
        # An instance published with a host of its own (not the node's
        # --advertise address) is not at NODE.node.berth: its SRV names
        # HEX.addr.berth, which stands for that address, with its glue;
        # one named by a DNS name points at that name.
        e = self.etcd()
        n1 = self.node(e, "n1", "127.0.0.1")
        self.lease(n1, "api", publish=True, host="127.0.0.9")
        self.lease(n1, "db", publish=True, host="db.example")
        r = ask(n1.dns, "n1.node.berth", "A")
        self.assertEqual(r.rdatas("A"), ["127.0.0.1"])
        r = ask(n1.dns, "api.cluster.berth", "SRV")
        self.assertEqual(r.rdatas("SRV")[0].split()[-1],
                         "7f000009.addr.berth.")
        self.assertEqual(r.additional, [("7f000009.addr.berth.",
                                         CLUSTER_TTL, "A", "127.0.0.9")])
        r = ask(n1.dns, "7f000009.addr.berth", "A")
        self.assertEqual(r.rdatas("A"), ["127.0.0.9"])
        r = ask(n1.dns, "db.cluster.berth", "SRV")
        self.assertEqual(r.rdatas("SRV")[0].split()[-1], "db.example.")
        self.assertEqual(r.additional, [])


class DnsWithoutClusterTest(DnsCase):

    def test_cluster_names_are_nxdomain(self):
        d, addr = self.start()
        self.lease(d, "web")
        self.lease(d, "x.cluster")
        self.lease(d, "n1.node")
        for r in both(addr, "web.berth", "A"):
            with self.subTest(client=r.client):
                self.assertZone(r)
        for q in ("web.cluster.berth", "x.cluster.berth", "n1.node.berth",
                  "cluster.berth", "node.berth"):
            for rtype in ("A", "SRV"):
                for r in both(addr, q, rtype):
                    with self.subTest(client=r.client, q=q, rtype=rtype):
                        self.assertNxdomain(r)
        r = dig(addr, "web.cluster.berth", "ANY", "+notcp")
        self.assertNxdomain(r)


if __name__ == "__main__":
    main()
