"""The berth CLI's side of the cluster (issue 13), end to end against
real berthds, and for the classes that need one, a real etcd
(etcdtest.py; those skip, one line, without /usr/bin/etcd).

The classes, and what each needs of berthd:

ContractTest: the CLI against a fake berthd of a few lines that answers
    the HTTP contract of the cluster (FakeBerthd): which instance lookup
    picks, --all, --json, --ready, list --cluster, nodes, run --need across
    nodes and how often it asks while it waits. It checks the CLI's side
    today; the real thing is ClusterServicesTest's.
NoClusterTest: a berthd without --cluster. `berth nodes` says that it
    runs without --cluster (exit 5); what `berth run` gives the command
    (BERTH_HOST, {host}) and --need of a local lease; usage errors.
NoClusterServicesTest: the same berthd refusing --publish and the
    cluster's services with cluster_disabled (exit 5). WAITS FOR THE
    DAEMON SIDE: the berthd of today refuses "publish" as an unknown
    field and has no /v1/cluster/services.
ClusterNodesTest: nodes a and b on one etcd: `berth nodes`, `berth
    status`, --need of a local lease on a clustered berthd. What berthd
    has today (/v1/cluster/nodes, /v1/status's cluster) is enough.
ClusterServicesTest: publishing on one node and finding it from the
    other: lookup --cluster [--all] [--wait] [--ready], list --cluster,
    run --publish, run --need across nodes. WAITS FOR THE DAEMON SIDE
    (publish, /v1/cluster/services).

BERTH_CLI names the CLI binary and BERTHD the daemon (make check sets both).
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

from berthtest import (SLOWDOWN, BerthTestCase, clean_env, main, wait_for)
from etcdtest import Etcd, EtcdMixin
from test_cli import Run
from test_run import read_env, serving

CLI = os.environ.get("BERTH_CLI", "berth")
EXIT_NOTFOUND = 3
EXIT_NOCLUSTER = 5
NO_CLUSTER = "runs without --cluster"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# Two nodes on one machine, told apart by their advertised addresses
# (every 127/8 address is this host's loopback).
ADDR_A, ADDR_B = "127.0.0.1", "127.0.0.2"
# How long a change takes to reach the other node through etcd, at most.
SPREAD = 15


def requests_total(d):
    """Every request d has answered so far, from its /metrics."""
    r = d.get("/metrics")
    return sum(float(line.split()[1]) for line in r.body.splitlines()
               if line.startswith("berth_http_requests_total{"))


class CliMixin:
    """Running the CLI against one of the test's berthds."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="berth-cluster-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def argv(self, d, *args):
        return [CLI, "--addr", d.addr] + list(args)

    def cli(self, d, *args, timeout=60):
        p = subprocess.run(self.argv(d, *args), env=clean_env(LC_ALL="C"),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout * SLOWDOWN, cwd=self.dir)
        return Run(list(args), p.returncode, p.stdout.decode(errors="replace"),
                   p.stderr.decode(errors="replace"))

    def start_cli(self, d, *args):
        """The CLI in the background; the test ends it if it still runs."""
        p = subprocess.Popen(self.argv(d, *args), env=clean_env(LC_ALL="C"),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=self.dir)

        def end():
            if p.poll() is None:
                p.kill()
            p.communicate()
        self.addCleanup(end)
        return p

    def finish(self, p, args=(), timeout=60):
        out, err = p.communicate(timeout=timeout * SLOWDOWN)
        return Run(list(args), p.returncode, out.decode(errors="replace"),
                   err.decode(errors="replace"))

    def assertExit(self, r, code):
        self.assertEqual(r.rc, code, r)

    def assertOneError(self, r, code, *words):
        """r failed with this exit code, one "berth: " line on stderr that
        says each of words, and nothing on stdout."""
        self.assertExit(r, code)
        self.assertEqual(r.out, "", r)
        self.assertEqual(len(r.err.splitlines()), 1, r)
        self.assertTrue(r.err.startswith("berth: "), r)
        for w in words:
            self.assertIn(w, r.err, r)

    def assertNoCluster(self, r, d):
        """The one line every command gives for a berthd without
        --cluster, naming it, with exit 5."""
        self.assertOneError(r, EXIT_NOCLUSTER, NO_CLUSTER, d.addr)

    def acquire(self, d, name, **fields):
        r = d.acquire(name, **fields)
        self.assertEqual(r.status, 201, r)
        return r.json

    def run_env(self, d, *args):
        """berth run ARGS -- a command that writes its environment to
        env.txt and its arguments to args.txt; (Run, env, args)."""
        script = ('env -0 > env.tmp; mv env.tmp env.txt; '
                  'printf "%s\\n" "$@" > args.txt')
        argv = list(args)
        extra = []
        if "--" in argv:
            i = argv.index("--")
            argv, extra = argv[:i], argv[i + 1:]
        r = self.cli(d, "run", *argv, "--", "sh", "-c", script, "sh", *extra)
        if r.rc != 0:
            return r, None, None
        with open(self.path("args.txt")) as f:
            words = f.read().splitlines()
        return r, read_env(self.path("env.txt")), words


class FakeBerthd:
    """A berthd of a few lines that answers what the CLI asks of a
    cluster's node, as the HTTP contract of issue 13 has it: /v1/status
    with its cluster, /v1/cluster/services (a watch with ?index=&wait=),
    /v1/cluster/services/NAME (?wait=), /v1/cluster/nodes, and enough of
    /v1/services for berth run (lookups of leases here, acquire, renew,
    release). self.instances is the cluster's view; change it with
    publish() and set_ready(), which move the index and wake watches.
    self.paths counts the requests by path."""

    def __init__(self, node="a"):
        self.node = node
        self.instances = []
        self.local = {}
        self.index = 1
        self.stale = False
        self.paths = []
        self.bodies = []        # of the acquires
        self.cond = threading.Condition()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.answer(self, "GET")

            def do_POST(self):
                fake.answer(self, "POST")

            def do_DELETE(self):
                fake.answer(self, "DELETE")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.addr = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def publish(self, name, node, host, port, ready=True):
        with self.cond:
            self.instances.append({"name": name, "node": node, "host": host,
                                   "port": port, "proto": "tcp",
                                   "meta": None, "ready": ready})
            self.instances.sort(key=lambda i: (i["name"], i["node"]))
            self.index += 1
            self.cond.notify_all()

    def set_ready(self, name, node, ready):
        with self.cond:
            for i in self.instances:
                if (i["name"], i["node"]) == (name, node):
                    i["ready"] = ready
            self.index += 1
            self.cond.notify_all()

    def count(self, prefix):
        return sum(1 for p in list(self.paths) if p.startswith(prefix))

    def of(self, name):
        return [i for i in self.instances if i["name"] == name]

    def answer(self, h, method):
        u = urllib.parse.urlsplit(h.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        self.paths.append(u.path)
        n = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(n) or b"null") if n else None
        status, doc = self.route(method, u.path, q, body)
        data = json.dumps(doc).encode() if doc is not None else b""
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("X-Berth-Index", str(self.index))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def error(status, code, message):
        return status, {"error": {"code": code, "message": message}}

    def route(self, method, path, q, body):
        wait = float(q.get("wait", 0))
        if path == "/v1/status":
            return 200, {"version": "fake", "cluster": {
                "node": self.node, "endpoints": ["http://127.0.0.1:1"],
                "connected": True, "revision": self.index,
                "last_error": None}}
        if path == "/v1/cluster/nodes":
            return 200, {"nodes": [
                {"node": "a", "address": "127.0.0.1", "version": "fake",
                 "joined_at": "2026-11-26T06:05:43.412Z"},
                {"node": "b", "address": "127.0.0.2", "version": "fake",
                 "joined_at": "2026-11-26T06:05:44Z"}]}
        if path == "/v1/cluster/services":
            with self.cond:
                since = int(q.get("index", 0))
                if since:
                    self.cond.wait_for(lambda: self.index > since, wait)
                return 200, {"services": list(self.instances),
                             "index": self.index, "stale": self.stale}
        if path.startswith("/v1/cluster/services/"):
            name = path.rsplit("/", 1)[1]
            with self.cond:
                self.cond.wait_for(lambda: self.of(name), wait)
                if not self.of(name):
                    return self.error(404, "not_found", "no node publishes "
                                      "'%s'" % name)
                return 200, {"name": name, "instances": self.of(name),
                             "index": self.index, "stale": self.stale}
        return self.route_local(method, path, q, body)

    def route_local(self, method, path, q, body):
        """The few leases here that berth run needs."""
        if method == "POST" and path == "/v1/services":
            self.bodies.append(body)
            publish = body.get("publish", False)
            # Published without a host: the node's advertise address.
            host = body.get("host", ADDR_B if publish else "127.0.0.1")
            lease = {"name": body["name"], "port": 61999, "proto": "tcp",
                     "host": host, "ttl": 30, "pid": 0, "meta": {},
                     "ready": False, "publish": publish, "token": "f" * 32}
            self.local[body["name"]] = lease
            return 201, lease
        name = path.split("/")[3] if path.count("/") >= 3 else ""
        if method == "DELETE" and name in self.local:
            del self.local[name]
            return 204, None
        if path.endswith("/renew") and name in self.local:
            return 200, self.local[name]
        if method == "GET" and name in self.local:
            lease = self.local[name]
            if q.get("ready") == "1" and lease["ready"] is False:
                return self.error(404, "not_found", "not ready")
            return 200, lease
        return self.error(404, "not_found", "no live lease named '%s'" % name)


class ContractTest(CliMixin, BerthTestCase):
    """The CLI against FakeBerthd, node b of a cluster of a, b and c: its
    own instances are not the first by node name."""

    def setUp(self):
        super().setUp()
        self.f = FakeBerthd("b")
        self.addCleanup(self.f.close)

    def test_lookup_prefers_this_node(self):
        self.f.publish("db", "b", ADDR_B, 6002)
        self.f.publish("db", "a", ADDR_A, 6001)
        self.f.publish("db", "c", "127.0.0.3", 6003)
        r = self.cli(self.f, "lookup", "db", "--cluster")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "6002\n")
        r = self.cli(self.f, "lookup", "db", "--cluster", "--addr-only")
        self.assertEqual(r.out, "%s:6002\n" % ADDR_B)
        r = self.cli(self.f, "--json", "lookup", "db", "--cluster")
        self.assertEqual(json.loads(r.out)["node"], "b")
        self.assertEqual(r.err, "")

    def test_lookup_first_by_node_elsewhere(self):
        self.f.publish("db", "c", "127.0.0.3", 6003)
        self.f.publish("db", "a", ADDR_A, 6001)
        r = self.cli(self.f, "lookup", "db", "--cluster", "--addr-only")
        self.assertEqual(r.out, "%s:6001\n" % ADDR_A)

    def test_lookup_one_instance_asks_no_status(self):
        self.f.publish("db", "a", ADDR_A, 6001)
        r = self.cli(self.f, "lookup", "db", "--cluster")
        self.assertEqual(r.out, "6001\n")
        self.assertEqual(self.f.count("/v1/status"), 0)

    def test_lookup_all(self):
        self.f.publish("db", "b", ADDR_B, 6002)
        self.f.publish("db", "a", ADDR_A, 6001)
        self.f.publish("other", "a", ADDR_A, 7000)
        r = self.cli(self.f, "lookup", "db", "--cluster", "--all")
        self.assertEqual(r.out, "6001\n6002\n")
        r = self.cli(self.f, "lookup", "db", "--cluster", "--all",
                     "--addr-only")
        self.assertEqual(r.out, "%s:6001\n%s:6002\n" % (ADDR_A, ADDR_B))
        r = self.cli(self.f, "--json", "lookup", "db", "--cluster", "--all")
        got = json.loads(r.out)
        self.assertEqual(got["name"], "db")
        self.assertEqual([(i["node"], i["port"]) for i in got["instances"]],
                         [("a", 6001), ("b", 6002)])
        self.assertEqual(got["index"], self.f.index)
        self.assertIs(got["stale"], False)

    def test_lookup_not_found(self):
        r = self.cli(self.f, "lookup", "nothing", "--cluster")
        self.assertOneError(r, EXIT_NOTFOUND, "nothing")

    def test_lookup_ready(self):
        self.f.publish("db", "b", ADDR_B, 6002, ready=False)
        self.f.publish("db", "c", "127.0.0.3", 6003, ready=None)
        # This node's is not ready; c's cannot be told, which counts.
        r = self.cli(self.f, "lookup", "db", "--cluster", "--ready")
        self.assertEqual(r.out, "6003\n")
        r = self.cli(self.f, "lookup", "db", "--cluster", "--ready", "--all")
        self.assertEqual(r.out, "6003\n")
        self.f.set_ready("db", "c", False)
        r = self.cli(self.f, "lookup", "db", "--cluster", "--ready")
        self.assertOneError(r, EXIT_NOTFOUND, "'db' is published by 2 nodes",
                            "nothing listens")

    def test_lookup_ready_wait(self):
        self.f.publish("db", "b", ADDR_B, 6002, ready=False)
        p = self.start_cli(self.f, "lookup", "db", "--cluster", "--ready",
                           "--wait", "30")
        time.sleep(1)
        self.assertIsNone(p.poll(), "--ready --wait did not wait")
        before = len(self.f.paths)
        time.sleep(1)
        self.assertLessEqual(len(self.f.paths) - before, 4,
                             "busy waiting: %r" % self.f.paths[before:])
        t0 = time.monotonic()
        self.f.set_ready("db", "b", True)
        r = self.finish(p)
        self.assertExit(r, 0)
        self.assertEqual(r.out, "6002\n")
        self.assertLess(time.monotonic() - t0, 2)
        # ... and until the deadline only
        t0 = time.monotonic()
        self.f.set_ready("db", "b", False)
        r = self.cli(self.f, "lookup", "db", "--cluster", "--ready", "--wait",
                     "2")
        self.assertExit(r, EXIT_NOTFOUND)
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)
        self.assertLess(time.monotonic() - t0, 6)

    def test_stale_is_said_once(self):
        self.f.publish("db", "b", ADDR_B, 6002)
        self.f.stale = True
        r = self.cli(self.f, "lookup", "db", "--cluster")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "6002\n")
        self.assertEqual(len(r.err.splitlines()), 1, r)
        self.assertIn("lost etcd", r.err)
        r = self.cli(self.f, "--json", "list", "--cluster")
        self.assertIs(json.loads(r.out)["stale"], True)
        self.assertIn("lost etcd", r.err)

    def test_list_cluster(self):
        self.f.publish("db", "b", ADDR_B, 6002, ready=False)
        self.f.publish("api", "a", ADDR_A, 6001)
        self.f.publish("db", "a", "::1", 6003, ready=None)
        r = self.cli(self.f, "list", "--cluster")
        self.assertExit(r, 0)
        self.assertEqual(r.out,
                         "NAME  NODE  ADDRESS         PROTO\n"
                         "api   a     127.0.0.1:6001  tcp\n"
                         "db    a     [::1]:6003      tcp\n"
                         "db    b     127.0.0.2:6002  tcp\n")
        r = self.cli(self.f, "list", "--cluster", "--probe")
        self.assertEqual([l.split()[-1] for l in r.out.splitlines()],
                         ["LISTENING", "yes", "?", "no"])
        r = self.cli(self.f, "--json", "list", "--cluster", "--probe")
        got = json.loads(r.out)
        self.assertEqual([(s["name"], s["node"], s["listening"])
                          for s in got["services"]],
                         [("api", "a", True), ("db", "a", None),
                          ("db", "b", False)])
        self.assertEqual(got["index"], self.f.index)

    def test_nodes(self):
        r = self.cli(self.f, "nodes")
        self.assertExit(r, 0)
        self.assertEqual(r.out,
                         "NODE  ADDRESS    VERSION  JOINED\n"
                         "a     127.0.0.1  fake     2026-11-26T06:05:43.412Z\n"
                         "b     127.0.0.2  fake     2026-11-26T06:05:44.000Z\n")

    def test_publish(self):
        r = self.cli(self.f, "acquire", "web", "--publish", "--env")
        self.assertExit(r, 0)
        self.assertIn("BERTH_HOST=%s\n" % ADDR_B, r.out)
        r, env, args = self.run_env(self.f, "api", "--publish", "--",
                                    "{host}:{port}")
        self.assertExit(r, 0)
        self.assertEqual(env["BERTH_HOST"], ADDR_B)
        self.assertEqual(args, ["%s:61999" % ADDR_B])
        self.assertEqual([b.get("publish") for b in self.f.bodies],
                         [True, True])
        # Without --publish, nothing is said of it (an older berthd
        # refuses the field).
        self.cli(self.f, "acquire", "plain")
        self.assertNotIn("publish", self.f.bodies[-1])

    def test_completion_of_published_names(self):
        import test_completion as tc
        if shutil.which("bash") is None:
            self.skipTest("bash is not installed")
        self.f.publish("db", "a", ADDR_A, 6001)
        self.f.publish("db", "b", ADDR_B, 6002)
        self.f.publish("dns", "c", "127.0.0.3", 6003)

        def complete(line):
            words, cword = tc.comp_words(line)
            env = clean_env(HARNESS_LINE=line, HARNESS_COMPLETION=tc.COMPLETION,
                            HARNESS_BC="", BERTH_COMPLETION_WAIT="5")
            env["PATH"] = (os.path.dirname(os.path.abspath(CLI)) + os.pathsep
                           + env.get("PATH", "/usr/bin:/bin"))
            p = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                                tc.HARNESS, "harness", str(cword)] + words,
                               env=env, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            return sorted(p.stdout.split())

        line = "berth --addr %s lookup --cluster d" % self.f.addr
        self.assertEqual(complete(line), ["db", "dns"])
        # Without --cluster, this host's leases: the fake has none.
        line = "berth --addr %s lookup d" % self.f.addr
        self.assertEqual(complete(line), [])

    def test_need_uses_a_ready_instance(self):
        self.f.publish("db", "a", ADDR_A, 6001, ready=False)
        self.f.publish("db", "c", "127.0.0.3", 6003)
        r, env, _ = self.run_env(self.f, "app", "--need", "db")
        self.assertExit(r, 0)
        self.assertEqual(env["BERTH_DB_ADDR"], "127.0.0.3:6003")
        self.assertEqual(env["BERTH_DB_PORT"], "6003")

    def test_need_prefers_this_node(self):
        self.f.publish("db", "b", ADDR_B, 6002)
        self.f.publish("db", "a", ADDR_A, 6001)
        r, env, _ = self.run_env(self.f, "app", "--need", "db")
        self.assertEqual(env["BERTH_DB_ADDR"], "%s:6002" % ADDR_B)

    def test_need_prefers_a_lease_here(self):
        self.f.publish("db", "b", ADDR_B, 6002)
        self.f.local["db"] = {"name": "db", "port": 5999, "host": "127.0.0.1",
                              "proto": "tcp", "ready": True}
        r, env, _ = self.run_env(self.f, "app", "--need", "db")
        self.assertEqual(env["BERTH_DB_ADDR"], "127.0.0.1:5999")

    def test_need_waits_without_busy_polling(self):
        self.f.publish("db", "b", ADDR_B, 6002, ready=False)
        self.f.publish("db", "a", ADDR_A, 6001, ready=False)
        p = self.start_cli(self.f, "run", "app", "--need", "db", "--need",
                           "late", "--timeout", "60", "--", "sh", "-c",
                           "env -0 > env.tmp; mv env.tmp env.txt")
        time.sleep(1)
        self.assertIsNone(p.poll(), "--need did not wait")
        before = len(self.f.paths)
        time.sleep(3)
        # A look here and at the cluster about once a second.
        asked = len(self.f.paths) - before
        self.assertLessEqual(asked, 3 * 4, self.f.paths[before:])
        self.assertGreater(self.f.count("/v1/cluster/services"), 1)
        t0 = time.monotonic()
        self.f.set_ready("db", "b", True)
        self.f.publish("late", "a", ADDR_A, 6004)
        r = self.finish(p)
        self.assertExit(r, 0)
        self.assertLess(time.monotonic() - t0, 3)
        env = read_env(self.path("env.txt"))
        self.assertEqual(env["BERTH_DB_ADDR"], "%s:6002" % ADDR_B)
        self.assertEqual(env["BERTH_LATE_ADDR"], "%s:6004" % ADDR_A)
        # Said once that db is published but not ready, of this node's.
        self.assertEqual(r.err.count("waiting for db"), 1, r)
        self.assertIn("waiting for db (%s:6002 on node b" % ADDR_B, r.err)

    def test_need_timeout(self):
        self.f.publish("db", "b", ADDR_B, 6002, ready=False)
        t0 = time.monotonic()
        r = self.cli(self.f, "run", "app", "--need", "db", "--timeout", "2",
                     "--", "true")
        self.assertExit(r, 1)
        self.assertIn("it is published in the cluster, but nothing listens",
                      r.err)
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)
        self.assertLess(time.monotonic() - t0, 6)
        r = self.cli(self.f, "run", "app", "--need", "never", "--timeout",
                     "1", "--", "true")
        self.assertIn("neither registered here nor published in the cluster",
                      r.err)


class NoClusterTest(CliMixin, BerthTestCase):
    """A berthd without --cluster, as the daemon is today."""

    def setUp(self):
        super().setUp()
        self.d = self.berthd()

    def test_nodes_says_no_cluster(self):
        for args in (["nodes"], ["--json", "nodes"]):
            with self.subTest(args=args):
                self.assertNoCluster(self.cli(self.d, *args), self.d)

    def test_nodes_takes_no_arguments(self):
        self.assertExit(self.cli(self.d, "nodes", "a"), 2)
        self.assertExit(self.cli(self.d, "nodes", "--bogus"), 2)

    def test_status_has_no_cluster_line(self):
        r = self.cli(self.d, "status")
        self.assertExit(r, 0)
        self.assertNotIn("cluster", r.out)

    def test_all_needs_cluster(self):
        r = self.cli(self.d, "lookup", "db", "--all")
        self.assertExit(r, 2)
        self.assertIn("--cluster", r.err)

    def test_cluster_options_are_checked_first(self):
        # A bad name or option is refused before berthd is asked.
        self.assertExit(self.cli(self.d, "lookup", "Bad", "--cluster"), 2)
        self.assertExit(self.cli(self.d, "list", "--cluster", "x"), 2)
        self.assertExit(self.cli(self.d, "lookup", "db", "--cluster",
                                 "--wait", "301"), 2)

    def test_acquire_env_has_host(self):
        r = self.cli(self.d, "acquire", "envy", "--host", "localhost",
                     "--env")
        self.assertExit(r, 0)
        self.assertIn("BERTH_HOST=localhost\n", r.out)
        r = self.cli(self.d, "acquire", "envy6", "--host", "::1", "--env")
        self.assertIn("BERTH_HOST=::1\n", r.out)

    def test_run_exports_host_and_replaces_it(self):
        for host, want in ((None, "127.0.0.1"), ("localhost", "localhost"),
                           ("::1", "::1")):
            with self.subTest(host=host):
                opts = ["--host", host] if host else []
                r, env, args = self.run_env(self.d, "web", *opts, "--",
                                            "{host}", "{host}:{port}", "{hst}")
                self.assertExit(r, 0)
                self.assertEqual(env["BERTH_HOST"], want)
                port = env["PORT"]
                self.assertEqual(args, [want, "%s:%s" % (want, port),
                                        "{hst}"])

    def test_need_resolves_a_local_lease(self):
        dep = self.acquire(self.d, "auth-db")
        s = serving(dep["port"], "0.0.0.0")
        self.addCleanup(s.close)
        r, env, _ = self.run_env(self.d, "app", "--need", "auth-db",
                                 "--timeout", "20")
        self.assertExit(r, 0)
        self.assertEqual(env["BERTH_AUTH_DB_ADDR"], "127.0.0.1:%d"
                         % dep["port"])
        self.assertEqual(env["BERTH_AUTH_DB_PORT"], str(dep["port"]))

    def test_need_timeout_says_not_registered(self):
        t0 = time.monotonic()
        r = self.cli(self.d, "run", "app", "--need", "never", "--timeout",
                     "1", "--", "true")
        self.assertOneError(r, 1, "never", "it is not registered")
        self.assertLess(time.monotonic() - t0, 10 * SLOWDOWN)


class NoClusterServicesTest(CliMixin, BerthTestCase):
    """WAITS FOR THE DAEMON SIDE: a berthd without --cluster answering
    --publish and /v1/cluster/services with cluster_disabled."""

    def setUp(self):
        super().setUp()
        self.d = self.berthd()

    def test_acquire_publish_says_no_cluster(self):
        self.assertNoCluster(self.cli(self.d, "acquire", "web", "--publish"),
                             self.d)
        self.assertEqual(self.d.get("/v1/services/web").status, 404)

    def test_run_publish_says_no_cluster(self):
        r = self.cli(self.d, "run", "web", "--publish", "--", "sh", "-c",
                     "touch ran")
        self.assertNoCluster(r, self.d)
        self.assertFalse(os.path.exists(self.path("ran")))

    def test_lookup_cluster_says_no_cluster(self):
        for args in (["lookup", "db", "--cluster"],
                     ["lookup", "db", "--cluster", "--all"],
                     ["lookup", "db", "--cluster", "--wait", "1"],
                     ["--json", "lookup", "db", "--cluster"]):
            with self.subTest(args=args):
                self.assertNoCluster(self.cli(self.d, *args), self.d)

    def test_list_cluster_says_no_cluster(self):
        for args in (["list", "--cluster"], ["list", "--cluster", "--probe"],
                     ["--json", "list", "--cluster"]):
            with self.subTest(args=args):
                self.assertNoCluster(self.cli(self.d, *args), self.d)

    def test_local_lease_says_not_published(self):
        self.acquire(self.d, "plain")
        got = self.d.get("/v1/services/plain").json
        self.assertIs(got["publish"], False)
        r = self.cli(self.d, "--json", "lookup", "plain")
        self.assertIs(json.loads(r.out)["publish"], False)


class ClusterCase(EtcdMixin, CliMixin, BerthTestCase):
    """Nodes a (127.0.0.1) and b (127.0.0.2) of one cluster on a real
    etcd, each seeing both before the test starts."""

    # Tests that kill etcd get one of their own; the others share one
    # (an etcd takes a second to start), each under a prefix of its own.
    OWN_ETCD = ("test_status_says_etcd_lost",
                "test_list_cluster_stale_is_said")
    shared = None
    count = 0

    @classmethod
    def tearDownClass(cls):
        if ClusterCase.shared is not None:
            ClusterCase.shared.stop()
            ClusterCase.shared = None
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        ClusterCase.count += 1
        self.prefix = "/t%d/" % ClusterCase.count
        if self._testMethodName in self.OWN_ETCD:
            self.e = self.etcd()
        else:
            if ClusterCase.shared is None:
                ClusterCase.shared = Etcd()
            self.e = ClusterCase.shared
        self.a = self.node("a", ADDR_A)
        self.b = self.node("b", ADDR_B)
        for d in (self.a, self.b):
            wait_for(lambda: self.node_names(d) == ["a", "b"], SPREAD,
                     "nodes a and b in %s's view" % d.addr)

    def node(self, name, advertise):
        return self.berthd("--cluster", self.e.client_url, "--advertise",
                           advertise, "--node", name, "--cluster-prefix",
                           self.prefix)

    def node_names(self, d):
        r = d.get("/v1/cluster/nodes")
        return [n["node"] for n in r.json["nodes"]] if r.status == 200 else []


class ClusterNodesTest(ClusterCase):
    """What the berthd of today already answers as a cluster's node."""

    def test_nodes_table(self):
        r = self.cli(self.a, "nodes")
        self.assertExit(r, 0)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["NODE", "ADDRESS", "VERSION",
                                            "JOINED"])
        rows = [l.split() for l in lines[1:]]
        self.assertEqual([(w[0], w[1]) for w in rows],
                         [("a", ADDR_A), ("b", ADDR_B)], r)
        version = self.a.get("/v1/status").json["version"]
        for w in rows:
            self.assertEqual(w[2], version, r)
        # The columns line up under their headers.
        col = lines[0].index("ADDRESS")
        self.assertTrue(all(l[col:].startswith(ADDR_A[:4]) for l in
                            lines[1:]), r)
        self.assertEqual(self.cli(self.b, "nodes").out, r.out)

    def test_nodes_json(self):
        r = self.cli(self.a, "--json", "nodes")
        self.assertExit(r, 0)
        self.assertEqual(json.loads(r.out),
                         self.a.get("/v1/cluster/nodes").json)
        self.assertEqual([n["node"] for n in json.loads(r.out)["nodes"]],
                         ["a", "b"])

    def test_status_says_node(self):
        wait_for(lambda: self.a.get("/v1/status").json["cluster"]["connected"],
                 SPREAD, "a connected to etcd")
        r = self.cli(self.a, "status")
        self.assertExit(r, 0)
        self.assertIn("cluster:   node a, connected to etcd\n", r.out)
        r = self.cli(self.b, "--json", "status")
        self.assertEqual(json.loads(r.out)["cluster"]["node"], "b")

    def test_status_says_etcd_lost(self):
        self.e.kill()
        wait_for(lambda: not self.a.get("/v1/status").json["cluster"]
                 ["connected"], SPREAD, "a to notice etcd gone")
        r = self.cli(self.a, "status")
        self.assertIn("cluster:   node a, NOT connected to etcd\n", r.out)

    def test_need_resolves_a_local_lease(self):
        dep = self.acquire(self.a, "db")
        s = serving(dep["port"], "0.0.0.0")
        self.addCleanup(s.close)
        r, env, _ = self.run_env(self.a, "app", "--need", "db",
                                 "--timeout", "20")
        self.assertExit(r, 0)
        self.assertEqual(env["BERTH_DB_ADDR"], "127.0.0.1:%d" % dep["port"])

    def test_need_timeout(self):
        t0 = time.monotonic()
        r = self.cli(self.a, "run", "app", "--need", "never", "--timeout",
                     "2", "--", "sh", "-c", "touch ran")
        took = time.monotonic() - t0
        self.assertExit(r, 1)
        self.assertIn("gave up waiting for never", r.err)
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 15 * SLOWDOWN)
        self.assertFalse(os.path.exists(self.path("ran")))


class ClusterServicesTest(ClusterCase):
    """WAITS FOR THE DAEMON SIDE: published leases found across nodes."""

    def publish(self, d, name, **fields):
        """Publish name on d and wait until both nodes see it."""
        lease = self.acquire(d, name, publish=True, **fields)
        self.assertIs(lease["publish"], True)
        for other in (self.a, self.b):
            wait_for(lambda: other.get("/v1/cluster/services/" + name)
                     .status == 200, SPREAD, "%s in %s's view"
                     % (name, other.addr))
        return lease

    def test_nodes_joined(self):
        # The contract's joined_at is an RFC 3339 string (the berthd of
        # today sends whole seconds), shown as it is in JOINED.
        r = self.cli(self.a, "nodes")
        for line in r.out.splitlines()[1:]:
            self.assertRegex(line.split()[3], RFC3339, r)
        for n in self.a.get("/v1/cluster/nodes").json["nodes"]:
            self.assertRegex(n["joined_at"], RFC3339)

    def test_acquire_publish(self):
        r = self.cli(self.a, "--json", "acquire", "web", "--publish")
        self.assertExit(r, 0)
        got = json.loads(r.out)
        self.assertIs(got["publish"], True)
        # With no --host, where other hosts reach it: the advertise address.
        self.assertEqual(got["host"], ADDR_A)
        r = self.cli(self.b, "acquire", "web2", "--publish", "--env")
        self.assertIn("BERTH_HOST=%s\n" % ADDR_B, r.out)
        # An explicit --host stays.
        r = self.cli(self.a, "--json", "acquire", "web3", "--publish",
                     "--host", "web3.example")
        self.assertEqual(json.loads(r.out)["host"], "web3.example")

    def test_lookup_cluster_from_the_other_node(self):
        lease = self.publish(self.b, "db")
        r = self.cli(self.a, "lookup", "db", "--cluster")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "%d\n" % lease["port"])
        r = self.cli(self.a, "lookup", "db", "--cluster", "--addr-only")
        self.assertEqual(r.out, "%s:%d\n" % (ADDR_B, lease["port"]))
        r = self.cli(self.a, "--json", "lookup", "db", "--cluster")
        got = json.loads(r.out)
        self.assertEqual((got["node"], got["host"], got["port"]),
                         ("b", ADDR_B, lease["port"]))
        # A local lookup on a does not see b's lease.
        self.assertExit(self.cli(self.a, "lookup", "db"), EXIT_NOTFOUND)

    def test_lookup_cluster_prefers_this_node(self):
        on_a = self.publish(self.a, "db")
        on_b = self.publish(self.b, "db")
        r = self.cli(self.a, "lookup", "db", "--cluster", "--addr-only")
        self.assertEqual(r.out, "%s:%d\n" % (ADDR_A, on_a["port"]))
        r = self.cli(self.b, "lookup", "db", "--cluster", "--addr-only")
        self.assertEqual(r.out, "%s:%d\n" % (ADDR_B, on_b["port"]))
        # --all: every instance, by node, one a line.
        r = self.cli(self.b, "lookup", "db", "--cluster", "--all",
                     "--addr-only")
        self.assertEqual(r.out, "%s:%d\n%s:%d\n" % (
            ADDR_A, on_a["port"], ADDR_B, on_b["port"]))
        r = self.cli(self.b, "lookup", "db", "--cluster", "--all")
        self.assertEqual(r.out, "%d\n%d\n" % (on_a["port"], on_b["port"]))
        r = self.cli(self.b, "--json", "lookup", "db", "--cluster", "--all")
        got = json.loads(r.out)
        self.assertEqual(got["name"], "db")
        self.assertEqual([i["node"] for i in got["instances"]], ["a", "b"])
        self.assertIs(got["stale"], False)

    def test_lookup_cluster_first_by_node_elsewhere(self):
        # Neither instance is on the asking node: the first by node name.
        c = self.node("c", "127.0.0.3")
        wait_for(lambda: self.node_names(c) == ["a", "b", "c"], SPREAD,
                 "c in the cluster")
        on_a = self.publish(self.a, "db")
        self.publish(self.b, "db")
        wait_for(lambda: c.get("/v1/cluster/services/db").status == 200 and
                 len(c.get("/v1/cluster/services/db").json["instances"]) == 2,
                 SPREAD, "both instances in c's view")
        r = self.cli(c, "lookup", "db", "--cluster", "--addr-only")
        self.assertEqual(r.out, "%s:%d\n" % (ADDR_A, on_a["port"]))

    def test_lookup_cluster_not_found(self):
        r = self.cli(self.a, "lookup", "nothing", "--cluster")
        self.assertExit(r, EXIT_NOTFOUND)
        self.assertTrue(r.err.startswith("berth: "), r)
        self.assertIn("nothing", r.err)
        # A lease that is not published is not in the cluster.
        self.acquire(self.b, "private")
        time.sleep(1)
        self.assertExit(self.cli(self.a, "lookup", "private", "--cluster"),
                        EXIT_NOTFOUND)

    def test_lookup_cluster_wait(self):
        t0 = time.monotonic()
        p = self.start_cli(self.a, "lookup", "late", "--cluster", "--wait",
                           "30")
        time.sleep(0.5)
        self.assertIsNone(p.poll(), "lookup --cluster --wait did not wait")
        lease = self.acquire(self.b, "late", publish=True)
        r = self.finish(p)
        self.assertExit(r, 0)
        self.assertEqual(r.out, "%d\n" % lease["port"])
        self.assertLess(time.monotonic() - t0, 20 * SLOWDOWN)
        # and in time: not found after the wait, exit 3
        t0 = time.monotonic()
        r = self.cli(self.a, "lookup", "never", "--cluster", "--wait", "1")
        self.assertExit(r, EXIT_NOTFOUND)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)

    def test_lookup_cluster_ready(self):
        lease = self.publish(self.b, "svc")
        r = self.cli(self.a, "lookup", "svc", "--cluster", "--ready")
        self.assertOneError(r, EXIT_NOTFOUND, "svc", "nothing listens")
        p = self.start_cli(self.a, "lookup", "svc", "--cluster", "--ready",
                           "--wait", "30")
        time.sleep(0.5)
        self.assertIsNone(p.poll(), "--ready --wait did not wait")
        s = serving(lease["port"], "0.0.0.0")
        self.addCleanup(s.close)
        r = self.finish(p)
        self.assertExit(r, 0)
        self.assertEqual(r.out, "%d\n" % lease["port"])

    def test_list_cluster(self):
        on_a = self.publish(self.a, "api")
        on_b = self.publish(self.b, "api")
        db = self.publish(self.b, "db", proto="udp")
        self.acquire(self.a, "private")
        r = self.cli(self.a, "list", "--cluster")
        self.assertExit(r, 0)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "NODE", "ADDRESS", "PROTO"])
        self.assertEqual([l.split() for l in lines[1:]], [
            ["api", "a", "%s:%d" % (ADDR_A, on_a["port"]), "tcp"],
            ["api", "b", "%s:%d" % (ADDR_B, on_b["port"]), "tcp"],
            ["db", "b", "%s:%d" % (ADDR_B, db["port"]), "udp"]])
        r = self.cli(self.a, "list", "--cluster", "--probe")
        self.assertEqual(r.out.splitlines()[0].split()[-1], "LISTENING")
        r = self.cli(self.a, "--json", "list", "--cluster")
        got = json.loads(r.out)
        self.assertEqual([(s["name"], s["node"]) for s in got["services"]],
                         [("api", "a"), ("api", "b"), ("db", "b")])
        self.assertIs(got["stale"], False)
        self.assertGreater(got["index"], 0)
        # The local list is unchanged: no NODE, only this host's leases.
        r = self.cli(self.a, "list")
        self.assertNotIn("NODE", r.out)
        self.assertEqual([l.split()[0] for l in r.out.splitlines()[1:]],
                         ["api", "private"])

    def test_list_cluster_stale_is_said(self):
        self.publish(self.a, "api")
        self.e.kill()
        wait_for(lambda: self.a.get("/v1/cluster/services").json["stale"],
                 SPREAD, "a's view to go stale")
        r = self.cli(self.a, "list", "--cluster")
        self.assertExit(r, 0)
        self.assertIn("api", r.out)
        self.assertIn("lost etcd", r.err)
        r = self.cli(self.a, "--json", "list", "--cluster")
        self.assertIs(json.loads(r.out)["stale"], True)

    def test_run_publish(self):
        r, env, args = self.run_env(self.b, "web", "--publish", "--ttl", "5",
                                    "--", "{host}:{port}")
        self.assertExit(r, 0)
        self.assertEqual(env["BERTH_HOST"], ADDR_B)
        self.assertEqual(args, ["%s:%s" % (ADDR_B, env["PORT"])])

    def test_run_publish_seen_while_it_runs(self):
        p = self.start_cli(self.b, "run", "web", "--publish", "--", "sh",
                           "-c", "echo $PORT > port.tmp; mv port.tmp port.txt; "
                           "while [ ! -e go ]; do sleep 0.02; done")
        wait_for(lambda: os.path.exists(self.path("port.txt")), SPREAD,
                 "the command to start")
        wait_for(lambda: self.a.get("/v1/cluster/services/web").status == 200,
                 SPREAD, "web in a's view")
        with open(self.path("port.txt")) as f:
            port = int(f.read())
        r = self.cli(self.a, "lookup", "web", "--cluster", "--addr-only")
        self.assertEqual(r.out, "%s:%d\n" % (ADDR_B, port))
        open(self.path("go"), "w").close()
        self.assertExit(self.finish(p), 0)
        # Released when the command exits: gone from the cluster too.
        wait_for(lambda: self.a.get("/v1/cluster/services/web").status == 404,
                 SPREAD, "web gone from a's view")

    def test_need_resolves_an_instance_on_another_node(self):
        lease = self.publish(self.b, "db")
        s = serving(lease["port"], "0.0.0.0")
        self.addCleanup(s.close)
        r, env, _ = self.run_env(self.a, "app", "--need", "db",
                                 "--timeout", "20")
        self.assertExit(r, 0)
        self.assertEqual(env["BERTH_DB_ADDR"], "%s:%d"
                         % (ADDR_B, lease["port"]))
        self.assertEqual(env["BERTH_DB_PORT"], str(lease["port"]))

    def test_need_prefers_local_then_this_node(self):
        remote = self.publish(self.b, "db")
        local = self.acquire(self.a, "db")      # not published
        socks = [serving(remote["port"], "0.0.0.0"),
                 serving(local["port"], "0.0.0.0")]
        self.addCleanup(lambda: [s.close() for s in socks])
        wait_for(lambda: self.a.get("/v1/services/db?ready=1").status == 200,
                 SPREAD, "a's db ready")
        r, env, _ = self.run_env(self.a, "app", "--need", "db")
        self.assertEqual(env["BERTH_DB_ADDR"], "127.0.0.1:%d" % local["port"])
        # On b, its own instance.
        r, env, _ = self.run_env(self.b, "app", "--need", "db")
        self.assertEqual(env["BERTH_DB_ADDR"], "%s:%d"
                         % (ADDR_B, remote["port"]))

    def test_need_waits_for_a_remote_instance(self):
        p = self.start_cli(self.a, "run", "app", "--need", "late",
                           "--timeout", "60", "--", "sh", "-c",
                           "env -0 > env.tmp; mv env.tmp env.txt")
        time.sleep(1)
        self.assertIsNone(p.poll(), "--need did not wait")
        before = requests_total(self.a)
        time.sleep(3)
        # Waiting is not a busy loop: a few requests a second at most.
        self.assertLess(requests_total(self.a) - before, 3 * 12)
        lease = self.acquire(self.b, "late", publish=True)
        s = serving(lease["port"], "0.0.0.0")
        self.addCleanup(s.close)
        r = self.finish(p)
        self.assertExit(r, 0)
        env = read_env(self.path("env.txt"))
        self.assertEqual(env["BERTH_LATE_ADDR"], "%s:%d"
                         % (ADDR_B, lease["port"]))

    def test_need_timeout_says_where_it_looked(self):
        r = self.cli(self.a, "run", "app", "--need", "never", "--timeout",
                     "1", "--", "true")
        self.assertOneError(r, 1, "never", "published in the cluster")


if __name__ == "__main__":
    main()
