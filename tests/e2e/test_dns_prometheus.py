"""berthd's DNS with a real consumer: Prometheus finds a scrape target
through `dns_sd_configs` (an SRV lookup of exporter.berth) and scrapes
it, resolving the SRV target's name with berthd's DNS again.

Prometheus's DNS discovery reads /etc/resolv.conf and always asks port
53, and its scrapes resolve names with Go's resolver, which reads the
same file. So the test makes a network namespace and a mount namespace
of its own, held by a `sleep` process made with unshare(1) and entered
with nsenter(1): its own loopback, where berthd answers DNS on
127.0.0.1:53, and a resolv.conf saying `nameserver 127.0.0.1`
bind-mounted over /etc/resolv.conf inside that mount namespace only.
The host's network and its /etc/resolv.conf are never touched (checked
at the end). In there run berthd, a tiny exporter (Python's http.server
serving /metrics on the port berthd leased to "exporter"), and
Prometheus (Debian's /usr/bin/prometheus, or $PROMETHEUS) with a
temporary TSDB; the test asks Prometheus's HTTP API, from inside the
namespace, for its targets and for the exporter's metric.

Every process is stopped by pid; ending the holder removes the
namespaces and the mount. Needs root (CAP_SYS_ADMIN for the
namespaces and the bind mount); elsewhere it skips with one line.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import berthtest
from berthtest import BERTHD, WRAPPER, UnixHTTPConnection, wait_for
from etcdtest import _pdeathsig as die_with_parent
from test_cluster_hosts import Netns, stop_procs

PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
SD_NAME = "exporter.berth"      # the name dns_sd_configs asks SRV for
SEEN = 60                       # seconds (wait_for stretches it)

PROMETHEUS_YML = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: berth-dns
    dns_sd_configs:
      - names: ['%s']
        type: SRV
        refresh_interval: 1s
"""

# The exporter: /metrics in Prometheus's text format, on 127.0.0.1:PORT.
EXPORTER = r"""
import http.server, sys

BODY = (b"# HELP berth_e2e_exporter_up The test's exporter is up.\n"
        b"# TYPE berth_e2e_exporter_up gauge\n"
        b"berth_e2e_exporter_up 1\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])),
                       Handler).serve_forever()
"""

# GET a URL from inside the namespace; its body on stdout.
FETCH = ("import sys, urllib.request; sys.stdout.write(urllib.request."
         "urlopen(sys.argv[1], timeout=5).read().decode())")


def _need():
    """Why the test cannot run here, or None."""
    if os.geteuid() != 0:
        return "network and mount namespaces need root"
    for tool in ("unshare", "nsenter", "ip", "mount"):
        if shutil.which(tool) is None:
            return "%s(8) not found" % tool
    if not os.access(PROMETHEUS, os.X_OK):
        return "no prometheus at %s: apt-get install prometheus" % PROMETHEUS
    if not os.path.isfile("/etc/resolv.conf"):
        return "no /etc/resolv.conf to mount over"
    r = subprocess.run(["unshare", "--net", "--mount", "--", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "cannot make network and mount namespaces here: %s" % (
            r.stderr.strip() or "unshare failed")
    return None


def _host_resolv():
    """The host's /etc/resolv.conf and what is mounted there, as seen
    from outside the test's namespaces."""
    with open("/etc/resolv.conf", "rb") as f:
        text = f.read()
    with open("/proc/self/mountinfo") as f:
        mounts = [l for l in f if " /etc/resolv.conf " in l]
    return text, mounts


class DNSPrometheusTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        why = _need()
        if why:
            raise unittest.SkipTest(why)

    def setUp(self):
        self.host_resolv = _host_resolv()
        self.addCleanup(self.assert_host_untouched)
        self.tmp = tempfile.mkdtemp(prefix="berth-dns-prom-")
        self.procs = []         # (name, Popen, log path)
        self.ns = None
        self.addCleanup(self.cleanup)
        self.ns = Netns("prometheus", mount=True)
        resolv = os.path.join(self.tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\n")
        self.ns.sh("mount --bind %s /etc/resolv.conf" % resolv)

    def assert_host_untouched(self):
        self.assertEqual(_host_resolv(), self.host_resolv,
                         "the host's /etc/resolv.conf (or what is mounted "
                         "there) changed")

    def cleanup(self):
        stop_procs(self, self.procs)
        if self.ns is not None:
            self.ns.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, name, argv):
        log = os.path.join(self.tmp, name + ".log")
        with open(log, "wb") as f:
            p = self.ns.popen(argv, stdout=f, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL,
                              env=berthtest.clean_env(),
                              preexec_fn=die_with_parent)
        self.procs.append((name, p, log))
        return p

    def api(self, method, path, body=None):
        """(status, JSON) of berthd's answer, over its unix socket (a
        path: reachable from outside the namespace)."""
        c = UnixHTTPConnection(self.sock, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            c.request(method, path, body=json.dumps(body) if body else None,
                      headers=headers)
            r = c.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data else None)
        except OSError:
            return 0, None
        finally:
            c.close()

    def fetch(self, url):
        """GET url from inside the namespace: the body, or None."""
        r = self.ns.run([sys.executable, "-c", FETCH, url], timeout=20)
        return r.stdout if r.returncode == 0 else None

    def prometheus_api(self, path):
        body = self.fetch("http://127.0.0.1:9090" + path)
        return json.loads(body) if body else None

    def start_berthd(self):
        self.sock = os.path.join(self.tmp, "berthd.sock")
        self.start("berthd", WRAPPER + [
            BERTHD, "--db", os.path.join(self.tmp, "berth.db"),
            "--listen", "127.0.0.1:62893", "--listen", "unix:" + self.sock,
            "--dns", "127.0.0.1:53", "--log-level", "debug"])
        wait_for(lambda: os.path.exists(self.sock) and
                 self.api("GET", "/v1/health")[0] == 200, SEEN,
                 "berthd in the namespace")
        st, j = self.api("GET", "/v1/status")
        self.assertEqual(j["dns"]["address"], "127.0.0.1:53", j)

    def start_prometheus(self, sd_name):
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(PROMETHEUS_YML % sd_name)
        self.start("prometheus", [
            PROMETHEUS, "--config.file=" + cfg,
            "--storage.tsdb.path=" + os.path.join(self.tmp, "tsdb"),
            "--web.listen-address=127.0.0.1:9090", "--log.level=debug"])
        wait_for(lambda: self.fetch("http://127.0.0.1:9090/-/ready"), SEEN,
                 "prometheus to be ready")

    def targets(self):
        j = self.prometheus_api("/api/v1/targets")
        return j["data"]["activeTargets"] if j else []

    def wait_target(self, addr):
        """The active target at addr once a scrape of it is "up"; fails
        with what Prometheus lists instead."""
        def up():
            return [t for t in self.targets()
                    if t["labels"].get("instance") == addr and
                    t["health"] == "up"]
        try:
            return wait_for(up, SEEN, "target %s up" % addr)[0]
        except AssertionError:
            seen = [(t["labels"].get("instance"), t["health"],
                     t.get("lastError")) for t in self.targets()]
            self.fail("Prometheus has no target %s that is up after "
                      "discovering SRV %s through berthd's DNS; its "
                      "targets (instance, health, last error): %r"
                      % (addr, SD_NAME, seen))

    def test_prometheus_discovers_and_scrapes(self):
        self.start_berthd()
        st, lease = self.api("POST", "/v1/services", {"name": "exporter"})
        self.assertEqual(st, 201, lease)
        port = lease["port"]
        self.start("exporter", [sys.executable, "-c", EXPORTER, str(port)])
        wait_for(lambda: self.fetch("http://127.0.0.1:%d/metrics" % port),
                 SEEN, "the exporter")
        self.start_prometheus(SD_NAME)

        # Discovered from the SRV answer: the lease's port, its name as
        # the target; scraped, which resolves exporter.berth's A.
        addr = "%s:%d" % (SD_NAME, port)
        t = self.wait_target(addr)
        self.assertEqual(t["scrapePool"], "berth-dns")
        meta = t["discoveredLabels"]
        self.assertEqual(meta["__meta_dns_name"], SD_NAME, meta)
        self.assertEqual(meta["__meta_dns_srv_record_target"],
                         SD_NAME + ".", meta)
        self.assertEqual(meta["__meta_dns_srv_record_port"], str(port), meta)
        self.assertEqual(t["lastError"], "")

        # What the scrape read is in Prometheus's TSDB.
        q = self.prometheus_api("/api/v1/query?query="
                                "berth_e2e_exporter_up")
        self.assertEqual(q["status"], "success", q)
        res = q["data"]["result"]
        self.assertEqual([(r["metric"]["instance"], r["value"][1])
                          for r in res], [(addr, "1")], q)

        # Both lookups came to berthd: the SRV and the target's A.
        st, j = self.api("GET", "/v1/status")
        self.assertGreater(j["dns"]["queries"], 1, j)
        c = UnixHTTPConnection(self.sock, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        for qtype in ("SRV", "A"):
            self.assertIn('berth_dns_queries_total{type="%s",rcode='
                          '"NOERROR"}' % qtype, text)
        self.stop_berthd()

    def stop_berthd(self):
        """SIGTERM: berthd exits 0, and its wrapper (if any) found nothing."""
        name, p, log = self.procs[0]
        self.assertEqual(name, "berthd")
        p.send_signal(signal.SIGTERM)
        status = p.wait(10 * berthtest.SLOWDOWN)
        errors = berthtest.wrapper_errors(berthtest.read_log(log))
        self.assertEqual((status, errors), (0, ""),
                         "berthd's exit status and its wrapper's report")


if __name__ == "__main__":
    berthtest.main()
