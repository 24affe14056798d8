#!/usr/bin/env python3
"""test_dns_docs: run docs/dns.md's examples as written against a real
berthd, in the order a reader would.

docs/dns.md marks its fenced blocks as the guides do (test_guides.py):

    ```sh test=ID        run in one bash, block after block, as if
                         pasted into one terminal
    ```LANG test=ID      (ini, conf, yaml) a file the page has you write:
                         saved as ID.LANG, then check_ID(path) checks it
    ```text output=ID    what block ID prints on stdout
    ```LANG norun        illustrative only, not run

A test=ID block needs an output block or a check_ID method (or both);
a block without a marker fails the test. Outputs are compared as the
guides' are (tokens, times and numbers of 4 digits or more masked, runs
of spaces collapsed), with what else dig prints that differs from run to
run masked too: the query id, its time and date, dig's version, and the
SOA serial (berthd's change index). A sh block must exit 0 unless its
check says otherwise.

The page talks to berthd's default address; the test's berthd listens on
a port the kernel picks, and answers DNS on another. Each block is
adapted in that address and port only, before it runs:

    dig ... -p 62893            -> -p DNS_PORT
    http://127.0.0.1:62893      -> the API's address
    127.0.0.1#62893             -> 127.0.0.1#DNS_PORT (dnsmasq's server=)
    127.0.0.1:62893 in a file   -> 127.0.0.1:DNS_PORT (resolved's DNS=)
    dig @127.0.0.1 without -p   -> -p DNSMASQ_PORT (the page's dig at its
                                   dnsmasq, port 53 for a reader)

A block that still names 62893 after that fails the test, so that no
example reaches a berthd the test did not start. berth finds the test's
berthd through BERTH_ADDR.

What needs more than berthd and dig:
- dnsmasq (Debian's dnsmasq-base): the page's server= line runs as
  written, on a loopback port, and the page's dig asks through it;
  stop-dns-rebind drops berthd's answers and the page's
  rebind-domain-ok line lets them through.
- getent and Prometheus ask /etc/resolv.conf's servers on port 53. As
  root, a dnsmasq with the page's line listens on port 53 of a random
  127.x.y.z, and they run in a mount namespace of their own (unshare -m)
  whose /etc/resolv.conf names it and whose nsswitch.conf says "hosts:
  files dns". Prometheus runs the page's dns_sd_configs and must
  discover api.berth at api's port.
- The cluster's example runs with a real etcd (etcdtest.py) and three
  berthds, a, b and c, advertising 127.0.10.1-3 for the page's
  10.0.0.1-3; web is published on a and b, and the block asks c.
- The resolved drop-in's keys are checked against resolved.conf(5) when
  that page is installed (Debian: systemd-resolved); without it, its
  syntax only. resolved itself is never run.
- The messages and log lines the page quotes come from berthds started
  with the flags the page names.
Every part runs; one that lacks what it needs (root, dnsmasq, etcd,
promtool, Prometheus) is named at the end and the test SKIPs.

Run: BERTHD=.../src/berthd BERTH_CLI=.../clients/cli/berth \
     PYTHONPATH=tests/e2e /usr/bin/python3 tests/e2e/test_dns_docs.py -v
"""

import configparser
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import unittest
import urllib.request

from berthtest import (BERTHD, BerthTestCase, ReservedPort, await_ready,
                       berthd_env, main, needs_own_berthd, notify_socket,
                       split_addr, wait_for)
from etcdtest import EtcdMixin, _pdeathsig
from test_guides import Result, Session, mask, parse

BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
PAGE = "dns.md"
TIMEOUT = 30            # seconds for one block or one helper command
DOC_PORT = "62893"      # the page's port, for the API and for DNS


def dig_mask(text):
    """mask() after masking what dig prints that differs per run."""
    text = re.sub(r"\bid: \d+", "id: ID", text)
    text = re.sub(r"(?m)^;; WHEN: .*$", ";; WHEN: DATE", text)
    text = re.sub(r"(?m)^;; Query time: \d+ msec$", ";; Query time: T", text)
    text = re.sub(r"<<>> DiG \S+ <<>>", "<<>> DiG VERSION <<>>", text)
    text = re.sub(r"hostmaster\.berth\. \d+ ", "hostmaster.berth. SERIAL ", text)
    return mask(text)


def http_get(addr, path):
    """The body of GET path from a berthd at a TCP addr."""
    host, port = split_addr(addr)
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def squash(text):
    """Prose as one line: backquotes gone, whitespace runs one space."""
    return re.sub(r"\s+", " ", text.replace("`", ""))


class Proc:
    """A helper process (dnsmasq, Prometheus) with its output in a file,
    ended by pid."""

    def __init__(self, argv, log_path, env=None):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env,
                                         preexec_fn=_pdeathsig)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@needs_own_berthd("it starts berthds with flags of its own, dnsmasq and a cluster")
class DnsPage(EtcdMixin, BerthTestCase):

    def test_dns_md(self):
        for tool in ("dig", "curl", "bash"):
            self.assertTrue(shutil.which(tool), "%s is needed" % tool)
        self.run_page()

    # ---- the runner ------------------------------------------------------

    def run_page(self):
        blocks = parse(PAGE)
        self.check_markers(blocks)
        self.tmp = tempfile.mkdtemp(prefix="berth-dnsdocs-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.work = os.path.join(self.tmp, "work")
        os.mkdir(self.work)
        self.d = self.berthd()
        self.dns_port = self.dns_port_of(self.d)
        self.target = (self.d.addr, self.dns_port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env["BERTH_ADDR"] = self.d.addr
        env["PATH"] = (os.path.dirname(os.path.abspath(BERTH_CLI)) + os.pathsep
                       + env.get("PATH", ""))
        self.env = env
        self.session = None
        self.skipped = []
        self.results = {}
        self.dnsmasq_port = None        # the page's dnsmasq, once started
        self.bare_dig_port = None       # where "dig @127.0.0.1" goes
        self.resolver_addr = None       # a dnsmasq on port 53, as root
        self.addCleanup(self.close_session)

        for b in blocks:
            if b.id is None:
                if "output" in b.attrs:
                    self.compare(b)
                continue
            self.target = (self.d.addr, self.dns_port)
            self.bare_dig_port = None
            before = getattr(self, self.method("before", b.id), None)
            if before and before() == "skip":
                self.results[b.id] = None
                continue
            runner = getattr(self, self.method("run", b.id), None)
            if runner:
                res = runner(self.adapt(b.code, b))
            elif b.lang == "sh":
                if self.session is None:
                    self.session = Session(self.work, self.env)
                res = self.session.run(self.adapt(b.code, b), TIMEOUT)
            else:
                res = os.path.join(self.work, "%s.%s" % (b.id, b.lang))
                with open(res, "w") as f:
                    f.write(self.adapt(b.code, b))
            self.results[b.id] = res
            check = getattr(self, self.method("check", b.id), None)
            try:
                if check:
                    check(res)
                elif res is not None:
                    self.assertEqual(res.rc, 0, res)
            except AssertionError as e:
                raise AssertionError("%s (test=%s): %s\n%r"
                                     % (b.where(), b.id, e, res)) from None
        self.check_prose()
        if self.skipped:
            self.skipTest("; ".join(self.skipped))

    def check_markers(self, blocks):
        """Every block is marked; every test=ID is checked somehow."""
        ids = [b.id for b in blocks if b.id]
        outputs = [b.attrs["output"] for b in blocks if "output" in b.attrs]
        for b in blocks:
            self.assertTrue(b.id or "output" in b.attrs or "norun" in b.flags,
                            "%s: a code block without a marker (test=ID, "
                            "output=ID or norun): %r" % (b.where(), b.code[:80]))
            if "output" in b.attrs:
                self.assertIn(b.attrs["output"], ids, "%s: output=%s names no "
                              "block" % (b.where(), b.attrs["output"]))
            if b.id:
                self.assertEqual(ids.count(b.id), 1, "%s: duplicate test=%s"
                                 % (b.where(), b.id))
                self.assertTrue(b.id in outputs or
                                hasattr(self, self.method("check", b.id)),
                                "%s: test=%s has no output block and no %s"
                                % (b.where(), b.id, self.method("check", b.id)))

    def method(self, kind, bid):
        return "%s_%s" % (kind, bid.replace("-", "_"))

    def adapt(self, code, b):
        """The block as it runs here: the page's address and port made the
        test's (see the head comment), and nothing else changed."""
        addr, dns = self.target
        code = code.replace("http://127.0.0.1:" + DOC_PORT, "http://" + addr)
        code = re.sub(r"-p %s\b" % DOC_PORT, "-p %d" % dns, code)
        code = code.replace("127.0.0.1#" + DOC_PORT, "127.0.0.1#%d" % dns)
        if b.lang != "sh":
            code = code.replace("127.0.0.1:" + DOC_PORT, "127.0.0.1:%d" % dns)
        if self.bare_dig_port:
            code = re.sub(r"\bdig @127\.0\.0\.1 (?!-p )",
                          "dig @127.0.0.1 -p %d " % self.bare_dig_port, code)
        self.assertNotIn(DOC_PORT, code, "%s: a form of the address this "
                         "test cannot adapt" % b.where())
        return code

    def compare(self, b):
        res = self.results.get(b.attrs["output"])
        if res is None:          # the block was skipped
            return
        want = b.code
        if b.attrs["output"] == "cluster":
            want = want.replace("10.0.0.", "127.0.10.")
        self.assertEqual(dig_mask(res.stdout), dig_mask(want),
                         "%s: the output of %s differs from the page"
                         % (b.where(), b.attrs["output"]))

    def close_session(self):
        if self.session:
            self.session.close()
            self.session = None

    def skip_part(self, what, why):
        self.skipped.append("%s: %s" % (what, why))
        return "skip"

    # ---- helpers ---------------------------------------------------------

    def dns_port_of(self, d):
        r = d.get("/v1/status")
        self.assertEqual(r.status, 200, r)
        host, port = split_addr(r.json["dns"]["address"])
        self.assertEqual(host, "127.0.0.1")
        return port

    def dig(self, port, *args):
        """dig's stdout, asking 127.0.0.1:port once, with a short wait."""
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+tries=1",
                            "+time=5"] + list(args), capture_output=True,
                           text=True, timeout=TIMEOUT)
        return r.stdout

    def status_of(self, port, name, qtype="A"):
        out = self.dig(port, name, qtype, "+noall", "+comments")
        m = re.search(r"status: (\w+)", out)
        return m.group(1) if m else None

    def lease_port(self, name):
        r = self.d.get("/v1/services/" + name)
        self.assertEqual(r.status, 200, r)
        return r.json["port"]

    def dnsmasq(self, conf, listen, port, *more):
        """dnsmasq with the page's conf file on listen:port, in the
        foreground, with no other server and no /etc/hosts, answering;
        None if the port is taken."""
        log = os.path.join(self.tmp, "dnsmasq-%s-%d.log" % (listen, port))
        p = Proc([DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
                  "--port", str(port), "--listen-address", listen,
                  "--bind-interfaces", "--conf-file=" + conf] + list(more), log)
        self.addCleanup(p.stop)
        wait_for(lambda: not p.alive() or "cleared cache" in p.log(), 10,
                 "dnsmasq to start")
        if not p.alive():
            if "Address already in use" in p.log():
                return None
            self.fail("dnsmasq did not start: %s" % p.log())
        return p

    def dnsmasq_somewhere(self, conf, listen, *more):
        """dnsmasq on listen and a free port: (proc, port)."""
        for _ in range(10):
            port = random.randrange(20000, 30000)
            p = self.dnsmasq(conf, listen, port, *more)
            if p:
                return p, port
        self.fail("no free port for dnsmasq")

    def resolver(self):
        """As root: a dnsmasq with the page's line on port 53 of a random
        127.x.y.z, and the files that make a mount namespace use it.
        Returns why not, or None."""
        if self.resolver_addr:
            return None
        if os.geteuid() != 0:
            return "needs root (port 53, mount namespace)"
        if not shutil.which("unshare"):
            return "needs unshare (util-linux)"
        conf = self.results.get("dnsmasq")
        if not conf:
            return "needs dnsmasq"
        for _ in range(10):
            addr = "127.%d.%d.%d" % (random.randrange(1, 255),
                                     random.randrange(0, 256),
                                     random.randrange(1, 255))
            if addr.startswith("127.0.10."):
                continue
            if self.dnsmasq(conf, addr, 53):
                break
        else:
            return "port 53 is taken on every 127.x.y.z tried"
        self.resolver_addr = addr
        self.resolv = os.path.join(self.tmp, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("nameserver %s\n" % addr)
        self.nsswitch = os.path.join(self.tmp, "nsswitch.conf")
        with open("/etc/nsswitch.conf") as f:
            lines = [l for l in f if not l.startswith("hosts:")]
        with open(self.nsswitch, "w") as f:
            f.writelines(lines + ["hosts: files dns\n"])
        self.inns = os.path.join(self.tmp, "inns.sh")
        with open(self.inns, "w") as f:
            f.write('mount --bind "$1" /etc/resolv.conf || exit 99\n'
                    'mount --bind "$2" /etc/nsswitch.conf || exit 99\n'
                    # nscd would answer from the host's resolver
                    'if [ -d /run/nscd ]; then mount -t tmpfs none /run/nscd || exit 99; fi\n'
                    'shift 2\nexec "$@"\n')
        return None

    def in_ns(self, argv):
        """argv in a mount namespace whose resolver is resolver()'s."""
        return ["unshare", "-m", "sh", self.inns, self.resolv,
                self.nsswitch] + list(argv)

    def start_berthd(self, args, env=None):
        """A berthd with exactly these flags (no --dns added, unlike
        BerthTestCase.berthd), ready: (proc, address, log path)."""
        notify = os.path.join(self.tmp, "notify-%d.sock" % random.randrange(1 << 30))
        nsock = notify_socket(notify)
        log = os.path.join(self.tmp, "berthd-%d.log" % random.randrange(1 << 30))
        with open(log, "wb") as f:
            proc = subprocess.Popen([BERTHD, "--db", ":memory:"] + list(args),
                                    stdout=f, stderr=f, stdin=subprocess.DEVNULL,
                                    env=berthd_env(notify, env))

        def stop():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.addCleanup(stop)
        try:
            addr = await_ready(nsock, proc.poll)
        finally:
            nsock.close()
        return proc, addr, log

    def berthd_fails(self, args, rc):
        """What a berthd with these flags prints on its way out with rc."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("BERTH_") and k != "NOTIFY_SOCKET"}
        p = subprocess.run([BERTHD, "--db", ":memory:"] + list(args),
                           capture_output=True, text=True, timeout=TIMEOUT,
                           env=env)
        self.assertEqual(p.returncode, rc, p)
        return p.stdout + p.stderr

    # ---- Try it ----------------------------------------------------------

    def check_acquire(self, res):
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.stdout.split(), [str(self.lease_port(n))
                                              for n in ("api", "db", "queue")])

    def check_tc(self, res):
        self.assertEqual(res.rc, 0, res)
        self.assertIn(" tc ", res.stdout)
        # the one left out is the last by key, and the API has it
        r = self.d.get("/v1/services/docs")
        self.assertEqual(len(r.json["meta"]), 6, r)
        self.assertNotIn('"source=', res.stdout)

    # ---- the cluster -----------------------------------------------------

    def before_cluster(self):
        try:
            e = self.etcd()
        except unittest.SkipTest as why:
            return self.skip_part("the cluster's example", why)
        nodes = {}
        for n, name in enumerate("abc", 1):
            nodes[name] = self.berthd("--cluster", e.client_url, "--advertise",
                                      "127.0.10.%d" % n, "--node", name)
        for name in "ab":
            r = nodes[name].acquire("web", publish=True)
            self.assertEqual(r.status, 201, r)
        c = nodes["c"]

        def seen():
            r = c.get("/v1/cluster/services/web")
            return r.status == 200 and len(r.json["instances"]) == 2
        wait_for(seen, 30, "c to see web on a and b")
        self.target = (c.addr, self.dns_port_of(c))
        return None

    # ---- systemd-resolved ------------------------------------------------

    def check_resolved(self, path):
        with open(path) as f:
            text = f.read()
        first = text.splitlines()[0]
        self.assertRegex(first, r"^# /etc/systemd/resolved\.conf\.d/[\w.-]+\.conf$",
                         "the first line names the drop-in's path")
        cp = configparser.ConfigParser(strict=True, interpolation=None)
        cp.optionxform = str            # resolved's keys are case-sensitive
        cp.read_string(text)
        self.assertEqual(cp.sections(), ["Resolve"])
        self.assertEqual(sorted(cp["Resolve"]), ["DNS", "Domains"])
        self.assertEqual(cp["Resolve"]["DNS"], "127.0.0.1:%d" % self.dns_port)
        self.assertEqual(cp["Resolve"]["Domains"], "~berth")
        self.check_systemd_version()
        man = self.man_page("resolved.conf")
        if man is None:
            print("resolved.conf(5) is not installed (Debian: systemd-resolved):"
                  " the drop-in's syntax only is checked")
            return
        flat = squash(man)
        for key in ("DNS=", "Domains="):
            self.assertIn(" %s " % key, " " + flat, "resolved.conf(5) has %s" % key)
        dns = flat[flat.index(" DNS= "):flat.index(" FallbackDNS= ")]
        self.assertRegex(dns, r'port number separated with ".?:.?"',
                         "resolved.conf(5) takes a port in DNS=")
        self.assertIn('prefixed with "~"', flat, "route-only domains")

    def check_systemd_version(self):
        if not shutil.which("systemctl"):
            return
        out = subprocess.run(["systemctl", "--version"], capture_output=True,
                             text=True, timeout=TIMEOUT).stdout
        m = re.match(r"systemd (\d+)", out)
        self.assertTrue(m, out)
        self.assertGreaterEqual(int(m.group(1)), 246, "a port in DNS= needs 246")

    def man_page(self, name):
        """The text of a man page, or None when it is not installed."""
        if not shutil.which("man"):
            return None
        w = subprocess.run(["man", "-w", name], capture_output=True, text=True,
                           timeout=TIMEOUT)
        if w.returncode != 0:
            return None
        r = subprocess.run(["man", name], capture_output=True, text=True,
                           timeout=TIMEOUT, env=dict(os.environ, MANPAGER="cat",
                                                     PAGER="cat", MANWIDTH="80"))
        return r.stdout

    # ---- dnsmasq ---------------------------------------------------------

    def check_dnsmasq(self, conf):
        if not os.access(DNSMASQ, os.X_OK):
            return self.skip_part("dnsmasq", "dnsmasq is not installed "
                                  "(Debian: dnsmasq-base)")
        t = subprocess.run([DNSMASQ, "--test", "--conf-file=" + conf],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(t.returncode, 0, t)
        p, self.dnsmasq_port = self.dnsmasq_somewhere(conf, "127.0.0.1")
        port = self.dnsmasq_port
        api = self.lease_port("api")
        # forwarded, and negative answers too; nothing outside the zone,
        # and this dnsmasq has no other server
        self.assertEqual(self.dig(port, "+short", "_api._tcp.berth", "SRV"),
                         "0 0 %d api.berth.\n" % api)
        self.assertEqual(self.status_of(port, "nosuch.berth"), "NXDOMAIN")
        self.assertEqual(self.status_of(port, "example.com"), "REFUSED")
        # stop-dns-rebind drops berthd's answers, which the page's line allows
        prose = squash(self.page_text())
        self.assertIn("with rebind-domain-ok=/berth/ beside the server= line", prose)
        p2, port2 = self.dnsmasq_somewhere(conf, "127.0.0.1", "--stop-dns-rebind")
        self.assertEqual(self.dig(port2, "+short", "api.berth"), "")
        wait_for(lambda: "possible DNS-rebind attack detected: api.berth" in p2.log(),
                 10, "dnsmasq's rebind line")
        self.assertIn("(its log says possible DNS-rebind attack detected: "
                      "api.berth)", prose)
        p3, port3 = self.dnsmasq_somewhere(conf, "127.0.0.1", "--stop-dns-rebind",
                                           "--rebind-domain-ok=/berth/")
        self.assertEqual(self.dig(port3, "+short", "api.berth"), "127.0.0.1\n")
        p2.stop()
        p3.stop()

    def before_dnsmasq_dig(self):
        if not self.dnsmasq_port:
            return self.skip_part("dig through dnsmasq", "no dnsmasq")
        self.bare_dig_port = self.dnsmasq_port
        return None

    # ---- getent, through a resolver on port 53 ----------------------------

    def run_getent(self, code):
        why = self.resolver()
        if why:
            self.skip_part("getent", why)
            return None
        r = subprocess.run(self.in_ns(["bash", "-c", code]), cwd=self.work,
                           env=self.env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        if r.returncode == 99:
            self.fail("cannot set the namespace's resolver up: %s" % r.stderr)
        return Result(r.stdout, r.stderr, r.returncode)

    def check_getent(self, res):
        if res is None:
            return
        self.assertEqual(res.rc, 0, res)
        # the page: a CNAME through dnsmasq gives no address, exit 2
        r = subprocess.run(self.in_ns(["getent", "hosts", "queue.berth"]),
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stdout), (2, ""), r)
        self.assertIn("(getent hosts queue.berth exits 2)", squash(self.page_text()))

    # ---- Prometheus ------------------------------------------------------

    def check_prometheus(self, path):
        if not shutil.which("promtool"):
            return self.skip_part("Prometheus", "promtool is not installed "
                                  "(Debian: prometheus)")
        p = subprocess.run(["promtool", "check", "config", path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p)
        if not shutil.which("prometheus"):
            return self.skip_part("Prometheus", "prometheus is not installed")
        why = self.resolver()
        if why:
            return self.skip_part("Prometheus's discovery", why)
        # Prometheus's own port: a lease of the test's berthd
        r = self.d.acquire("prometheus")
        self.assertEqual(r.status, 201, r)
        web = r.json["port"]
        prom = Proc(self.in_ns(["prometheus", "--config.file=" + path,
                                "--storage.tsdb.path=" + os.path.join(self.tmp, "prom"),
                                "--web.listen-address=127.0.0.1:%d" % web]),
                    os.path.join(self.tmp, "prometheus.log"))
        self.addCleanup(prom.stop)
        want = "api.berth:%d" % self.lease_port("api")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def discovered():
            self.assertTrue(prom.alive(), prom.log()[-3000:])
            try:
                with opener.open("http://127.0.0.1:%d/api/v1/targets" % web,
                                 timeout=5) as f:
                    body = json.load(f)
            except OSError:
                return None
            return [t["discoveredLabels"]["__address__"]
                    for t in body["data"]["activeTargets"]]
        try:
            got = wait_for(discovered, 60, "Prometheus to discover a target")
        except AssertionError:
            raise AssertionError("no target; Prometheus's log:\n%s"
                                 % prom.log()[-3000:]) from None
        self.assertEqual(got, [want])
        prom.stop()

    # ---- what the prose quotes -------------------------------------------

    def page_text(self):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "..", "..", "docs", PAGE)) as f:
            return f.read()

    def check_prose(self):
        """The log line and messages the page quotes are berthd's."""
        prose = squash(self.page_text())
        # the start-up line (a text norun block)
        m = re.search(r"info: answering DNS for berth\. on udp 127\.0\.0\.1:%s"
                      % DOC_PORT, prose)
        self.assertTrue(m, "the page quotes the start-up line")
        self.assertIn(m.group(0).replace(DOC_PORT, str(self.dns_port)),
                      self.d.logtext())
        # refusals
        out = self.berthd_fails(["--dns", "192.0.2.1:53"], 2)
        self.assertIn("(exit 2, %s)" % out.strip(), prose)
        out = self.berthd_fails(["--dns", "unix:/x"], 2)
        self.assertIn("(%s)" % out.strip(), prose)
        with ReservedPort(socket.SOCK_DGRAM) as held:
            out = self.berthd_fails(["--listen", "127.0.0.1:0", "--dns",
                                     held.addr], 1)
        line = re.search(r"error: cannot answer DNS on udp .*", out)
        self.assertTrue(line, out)
        self.assertIn("(exit 1, %s)" % line.group(0).replace(
            str(held.port), DOC_PORT), prose)
        # no TCP address, no DNS
        sock = os.path.join(self.tmp, "b.sock")
        proc, addr, log = self.start_berthd(["--listen", "unix:" + sock])
        with open(log) as f:
            line = re.search(r"dns: off: .*", f.read())
        self.assertTrue(line, log)
        self.assertIn("logs %s." % line.group(0), prose)
        proc.terminate()
        proc.wait(10)
        # BERTH_DNS=off: "dns": null, and the page says DNS: off
        proc, addr, log = self.start_berthd(["--listen", "127.0.0.1:0"],
                                            env={"BERTH_DNS": "off"})
        self.assertIsNone(json.loads(http_get(addr, "/v1/status"))["dns"])
        self.assertIn(">DNS: off</span>", http_get(addr, "/"))
        self.assertIn('With --dns off, /v1/status has "dns": null, and the '
                      'status page says DNS: off', prose)
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
