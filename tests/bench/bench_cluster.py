#!/usr/bin/env python3
"""bench_cluster: two berthd nodes and one etcd (Debian's etcd-server) on
this machine, loopback only.

  1. Publish to visible: a blocking cluster lookup
     (GET /v1/cluster/services/NAME?wait=10) is parked on node B, then
     NAME is acquired with "publish" on node A; the time from sending the
     acquire to B's answer, BENCH_CLUSTER_PUBLISHES times: p50 and p99.
     It covers A's commit, the etcd transaction, etcd's watch to B and B's
     wakeup.
  2. Cluster lookups per second: wrk (-t1 -c32 -d5s) on B's
     GET /v1/cluster/services/NAME, answered from B's view, against the
     same question asked of etcd as a range read through its JSON gateway
     (POST /v3/kv/range of PREFIX services/NAME/), A B A B; the ratio of
     the medians.
  3. Memory of the view: 10,000 instances of other nodes written to etcd
     (transactions of 128 puts), B's VmRSS before and once its view holds
     them all.

Environment: BERTHD, ETCD (default /usr/bin/etcd), BENCH_CLUSTER_PUBLISHES
(default 200), BENCH_CLUSTER_INSTANCES (default 10000).
Prints human output and RESULT lines. Every process started here is
ended by pid; temporary files are removed.
"""

import base64
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import berthtest, have, result, rss_kib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "e2e"))
import etcdtest  # noqa: E402

PUBLISHES = int(os.environ.get("BENCH_CLUSTER_PUBLISHES", "200"))
INSTANCES = int(os.environ.get("BENCH_CLUSTER_INSTANCES", "10000"))
PREFIX = "/berth/"
WRK_ROUNDS = 2          # A B A B


def b64(s):
    return base64.b64encode(s.encode()).decode()


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def status(d):
    return d.get("/v1/status").json["cluster"]


def wait(fn, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            sys.exit("bench_cluster: timed out waiting for " + what)
        time.sleep(0.02)


def publish_latency(a, b):
    """Seconds from A's publish to B's parked lookup answering, each."""
    conn = http.client.HTTPConnection(b.host, b.port, timeout=30)
    got = []
    for i in range(PUBLISHES):
        name = "lat%d" % i
        answer = {}

        def ask():
            conn.request("GET", "/v1/cluster/services/%s?wait=10" % name)
            r = conn.getresponse()
            r.read()
            answer["t"] = time.monotonic()
            answer["status"] = r.status
        t = threading.Thread(target=ask)
        t.start()
        wait(lambda: b.get("/v1/status").json["waiters"] >= 1,
             "the lookup to park")
        t0 = time.monotonic()
        r = a.acquire(name, publish=True)
        if r.status != 201:
            sys.exit("bench_cluster: acquire: %r" % r)
        t.join(30)
        if answer.get("status") != 200:
            sys.exit("bench_cluster: B answered %r" % answer)
        got.append(answer["t"] - t0)
    conn.close()
    return got


def wrk(url, script=None):
    """Requests per second wrk reports for url."""
    cmd = ["wrk", "-t1", "-c32", "-d5s"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    sys.exit("bench_cluster: no Requests/sec from wrk:\n" + out)


def lookups(b, e, tmp):
    """(berth req/s list, etcd req/s list), alternating."""
    body = json.dumps({"key": b64(PREFIX + "services/web/"),
                       "range_end": b64(PREFIX + "services/web0")})
    script = os.path.join(tmp, "range.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                "wrk.body = %s\n" % json.dumps(body))
    berth, etcd = [], []
    for _ in range(WRK_ROUNDS):
        berth.append(wrk("http://%s:%d/v1/cluster/services/web"
                         % (b.host, b.port)))
        etcd.append(wrk(e.client_url + "/v3/kv/range", script))
    return berth, etcd


def fill(e, n):
    """n instances of ten other nodes, straight into etcd."""
    ops = []
    for i in range(n):
        node = "n%d" % (i % 10)
        name = "svc%d" % i
        v = {"name": name, "node": node, "host": "10.0.%d.%d" % (i // 250 % 250,
             i % 250 + 1), "port": 20000 + i % 40000, "proto": "tcp",
             "meta": {"version": "1.2.3", "zone": "z%d" % (i % 3)},
             "ready": True}
        ops.append({"request_put": {
            "key": b64("%sservices/%s/%s" % (PREFIX, name, node)),
            "value": b64(json.dumps(v, separators=(",", ":")))}})
        if len(ops) == 128 or i == n - 1:
            e.request("/v3/kv/txn", {"success": ops})
            ops = []


def main():
    if not have("wrk", "cluster lookups per second"):
        wrk_ok = False
    else:
        wrk_ok = True
    tmp = tempfile.mkdtemp(prefix="berth-bench-cluster-")
    e = etcdtest.Etcd()
    nodes = []
    try:
        for name, adv in (("a", "127.0.0.2"), ("b", "127.0.0.3")):
            nodes.append(berthtest.Berthd(
                ["--cluster", e.client_url, "--node", name, "--advertise",
                 adv, "--log-level", "warn"] +
                list(berthtest.private_pool(1000))))
        a, b = nodes
        wait(lambda: status(a)["connected"] and status(b)["connected"],
             "both nodes to join")

        lat = publish_latency(a, b)
        p50, p99 = pct(lat, 50) * 1000, pct(lat, 99) * 1000
        print("publish on A to visible on B: p50 %.2f ms, p99 %.2f ms "
              "(%d publishes)" % (p50, p99, len(lat)))
        result("cluster_publish_p50_ms", p50, "ms")
        result("cluster_publish_p99_ms", p99, "ms")

        a.acquire("web", publish=True, meta={"version": "1"})
        wait(lambda: b.get("/v1/cluster/services/web").status == 200,
             "web on B")
        if wrk_ok:
            berth, etcd = lookups(b, e, tmp)
            rb, re_ = statistics.median(berth), statistics.median(etcd)
            print("cluster lookups/s, B's view: %s; etcd range read: %s "
                  "(A B A B); ratio %.1f" % (
                      " ".join("%.0f" % x for x in berth),
                      " ".join("%.0f" % x for x in etcd), rb / re_))
            result("cluster_lookups_per_s", rb, "req/s")
            result("cluster_etcd_range_per_s", re_, "req/s")
            result("cluster_lookup_ratio_berth_etcd", rb / re_, "x")

        before = rss_kib(b.proc.pid)
        have_now = status(b)["instances"]
        t0 = time.monotonic()
        fill(e, INSTANCES)
        wait(lambda: status(b)["instances"] >= have_now + INSTANCES,
             "B's view to hold every instance", timeout=300)
        took = time.monotonic() - t0
        after = rss_kib(b.proc.pid)
        mib = (after - before) / 1024
        print("view of %d instances: RSS %.1f MiB -> %.1f MiB (+%.1f MiB, "
              "%.0f bytes each); written and seen in %.1f s" % (
                  INSTANCES, before / 1024, after / 1024, mib,
                  (after - before) * 1024 / INSTANCES, took))
        result("cluster_view_rss_mib_10k", mib, "MiB")
        r = b.get("/v1/cluster/services")
        print("list of the whole view: %d bytes" % len(r.body))
    finally:
        for d in nodes:
            d.stop()
        e.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
