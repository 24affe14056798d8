"""etcdtest: a real etcd for berth's end-to-end tests.

Starts etcd (Debian's etcd-server, 3.4.x: /usr/bin/etcd, or ETCD) on
loopback only, one member (Etcd) or three (EtcdCluster), each with a
temporary data directory of its own and its log in a file there, and ends
every process it started by pid. Talks to etcd through its JSON gateway
(POST /v3/..., keys and values base64) with the standard library only,
and never to an address other than 127.0.0.1 (no proxy either).

TLS: Etcd(tls=TLS(...)) and EtcdCluster(tls=...) serve the client URLs
over https:// with the given server certificate, and with
client_cert_auth=True refuse clients without a certificate from
client_ca (etcd's --trusted-ca-file, --client-cert-auth); the harness's
own requests then verify etcd against tls.ca and present
tls.client_cert. Peers stay on http:// (loopback only). The files are
the caller's to make (the openssl command; see test_cluster_tls.py).

Ports: each member's client and peer ports are picked by binding
127.0.0.1:0 and releasing the socket; if etcd then finds one taken (it
logs "address already in use"), the start is retried on new ports.

Use in a test, either way:

    with Etcd() as e:                       # context manager
        e.put("k", "v")

    class T(EtcdMixin, unittest.TestCase):  # or beside BerthTestCase
        def test_x(self):
            e = self.etcd()                 # stopped when the test ends;
            c = self.etcd_cluster()         # its log printed if it failed

or Etcd() then self.addCleanup(e.stop): stop() may be called any number
of times. If this Python process dies without cleaning up, the kernel
kills its etcds (PR_SET_PDEATHSIG); so start them from the thread that
lives for the whole test (the main thread).

Missing etcd binary: Etcd() and EtcdCluster() raise unittest.SkipTest.

What etcd 3.4's gateway does that a client must know: int64 and uint64
fields (revisions, lease IDs, TTLs, counts, member IDs) are JSON strings;
fields with their zero value are left out (a range with no match has no
"kvs" and no "count", an empty value has no "value", a watch's PUT event
has no "type"); a granted TTL is at least 2 s however small the request;
errors are {"error", "message", "code" (gRPC's)} with an HTTP status
(404 for an unknown lease); /v3/lease/keepalive answers one
{"result": {...}} per request, with no "TTL" once the lease is gone;
/v3/watch streams {"result": {...}} lines until the client hangs up
(EtcdClient.request() reads to the end, so it is not for watches).
"""

import base64
import ctypes
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid

ETCD = os.environ.get("ETCD", "/usr/bin/etcd")
START_TIMEOUT = 30.0    # etcd is up in about a second; CI machines are busy
STOP_TIMEOUT = 5.0      # SIGTERM, then this long before SIGKILL
REQUEST_TIMEOUT = 10.0
BIND_RETRIES = 5
LOOPBACK = "127.0.0.1"

# etcd 3.4 refuses to start on an architecture it does not support unless
# ETCD_UNSUPPORTED_ARCH names it (arm64 among them); Go's names.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm",
           "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}
_PR_SET_PDEATHSIG = 1


def etcd_binary():
    """The etcd server's path; raises unittest.SkipTest if there is none."""
    path = ETCD if os.sep in ETCD else (shutil.which(ETCD) or ETCD)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise unittest.SkipTest(
            "no etcd server at %s: apt-get install etcd-server "
            "(.ci/test-deps), or set ETCD" % path)
    return path


class StartError(RuntimeError):
    """etcd exited, or was not healthy in time."""


class _BindRace(StartError):
    """etcd found a port we picked taken by someone else."""


class EtcdError(RuntimeError):
    """The gateway answered with an error: HTTP status, gRPC code, text."""

    def __init__(self, status, code, message, body=None):
        super().__init__("etcd: HTTP %d, code %s: %s"
                         % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.body = body


def _b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(bytes(data)).decode()


def _unb64(text):
    return base64.b64decode(text or "")


def prefix_end(prefix):
    """The range_end that makes [prefix, range_end) every key that starts
    with prefix: its last byte below 0xff plus one, the rest dropped;
    b"\\0" (every key from prefix on) if there is no such byte."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xff:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\0"


def _wait(fn, timeout, what):
    """Poll fn until it returns something true, and return that; raise
    StartError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise StartError("timed out after %g s waiting for %s"
                             % (timeout, what))
        time.sleep(0.05)


class TLS:
    """The files of an etcd with TLS on its client URLs, all PEM paths.

    cert, key: etcd's server certificate (for 127.0.0.1: subjectAltName
        IP:127.0.0.1) and its key (--cert-file, --key-file);
    ca: the CA the harness verifies etcd's certificate with;
    client_cert_auth: etcd refuses a client without a certificate that
        client_ca (default: ca) signed (--client-cert-auth,
        --trusted-ca-file); etcd's own gateway then presents cert to
        etcd, so cert needs extendedKeyUsage clientAuth too;
    client_cert, client_key: what the harness presents as a client
        (needed with client_cert_auth);
    check_hostname: False to start an etcd whose certificate is for
        another name (the harness still checks it chains to ca)."""

    def __init__(self, cert, key, ca, client_cert_auth=False, client_ca=None,
                 client_cert=None, client_key=None, check_hostname=True):
        self.cert = cert
        self.key = key
        self.ca = ca
        self.client_cert_auth = client_cert_auth
        self.client_ca = client_ca or ca
        self.client_cert = client_cert
        self.client_key = client_key
        self.check_hostname = check_hostname
        if client_cert_auth and not (client_cert and client_key):
            raise ValueError("client_cert_auth: the harness needs "
                             "client_cert and client_key too")

    def etcd_args(self):
        """etcd's flags for its client URLs."""
        args = ["--cert-file", self.cert, "--key-file", self.key]
        if self.client_cert_auth:
            args += ["--client-cert-auth",
                     "--trusted-ca-file", self.client_ca]
        return args

    def context(self):
        """An ssl.SSLContext that verifies etcd (and presents the client
        certificate, if any)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = self.check_hostname
        if self.client_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


class EtcdClient:
    """etcd's JSON gateway at client_url: http://127.0.0.1:PORT only, or
    https://127.0.0.1:PORT given its TLS files (tls, a TLS)."""

    def __init__(self, client_url, timeout=REQUEST_TIMEOUT, tls=None):
        u = urllib.parse.urlsplit(client_url)
        scheme = "https" if tls is not None else "http"
        if u.scheme != scheme or u.hostname != LOOPBACK or not u.port:
            raise ValueError("etcdtest talks to %s://%s:PORT only, not %r"
                             % (scheme, LOOPBACK, client_url))
        self.client_url = client_url
        self.port = u.port
        self.timeout = timeout
        self.tls = tls

    def _http(self, method, path, body=None, timeout=None):
        """(HTTP status, body bytes) of one request on a fresh connection
        (http.client: no proxy is ever asked)."""
        if self.tls is not None:
            conn = http.client.HTTPSConnection(
                LOOPBACK, self.port, timeout=timeout or self.timeout,
                context=self.tls.context())
        else:
            conn = http.client.HTTPConnection(
                LOOPBACK, self.port, timeout=timeout or self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json"} if data else {}
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def request(self, path, body=None, timeout=None):
        """POST body as JSON to path (/v3/...) and return the decoded
        answer; raise EtcdError if it is an error. A streaming answer
        ({"result": ...} per line) gives its first result."""
        status, raw = self._http("POST", path, body or {}, timeout)
        try:
            text = raw.decode()
            line = text.strip().split("\n", 1)[0] if text.strip() else "{}"
            doc = json.loads(line)
        except (UnicodeDecodeError, ValueError):
            raise EtcdError(status, None, "not JSON: %r" % raw[:200], raw)
        if status == 200 and isinstance(doc, dict) and "error" not in doc:
            return doc.get("result", doc)
        if not isinstance(doc, dict):
            raise EtcdError(status, None, "unexpected answer: %r" % raw[:200],
                            raw)
        err = doc.get("error")
        if isinstance(err, dict):       # a streaming call's error
            raise EtcdError(status, err.get("grpc_code", err.get("code")),
                            err.get("message"), doc)
        raise EtcdError(status, doc.get("code"),
                        doc.get("message") or err or raw[:200], doc)

    def health(self):
        """GET /health decoded, or None if etcd does not answer it."""
        try:
            status, raw = self._http("GET", "/health", timeout=2)
            return json.loads(raw) if status == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            return None     # ssl.SSLError is an OSError

    def healthy(self):
        h = self.health()
        return bool(h) and h.get("health") == "true"

    def put(self, key, value, lease=None):
        """Put key (bytes or str) = value, attached to lease if given;
        returns the revision of the put."""
        body = {"key": _b64(key), "value": _b64(value)}
        if lease is not None:
            body["lease"] = str(int(lease))
        return int(self.request("/v3/kv/put", body)["header"]["revision"])

    def get_prefix(self, prefix):
        """{key: value} (both bytes) of every key starting with prefix
        (bytes or str)."""
        if isinstance(prefix, str):
            prefix = prefix.encode()
        key = prefix or b"\0"
        doc = self.request("/v3/kv/range",
                           {"key": _b64(key),
                            "range_end": _b64(prefix_end(prefix))})
        return {_unb64(kv["key"]): _unb64(kv.get("value"))
                for kv in doc.get("kvs", [])}

    def delete_prefix(self, prefix):
        """Delete every key starting with prefix; returns how many."""
        if isinstance(prefix, str):
            prefix = prefix.encode()
        doc = self.request("/v3/kv/deleterange",
                           {"key": _b64(prefix or b"\0"),
                            "range_end": _b64(prefix_end(prefix))})
        return int(doc.get("deleted", 0))

    def grant(self, ttl):
        """A new lease of ttl seconds (etcd grants at least 2); its ID."""
        return int(self.request("/v3/lease/grant", {"TTL": int(ttl)})["ID"])

    def revoke(self, lease):
        """Revoke lease, deleting its keys; EtcdError (404) if unknown."""
        self.request("/v3/lease/revoke", {"ID": str(int(lease))})

    def keepalive(self, lease):
        """Renew lease once; its TTL from now, 0 if it is gone."""
        doc = self.request("/v3/lease/keepalive", {"ID": str(int(lease))})
        return int(doc.get("TTL", 0))

    def status(self):
        """POST /v3/maintenance/status: this member's view (its ID in
        header.member_id, the leader's in leader, both strings)."""
        return self.request("/v3/maintenance/status", {}, timeout=5)


def _pdeathsig():
    """In the child: die with the parent (a test runner killed by a
    timeout must not leave etcds behind)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG,
                                                signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _etcd_env():
    """Our environment without etcd's ETCD_* settings (flags only) and
    without proxies; ETCD_UNSUPPORTED_ARCH where etcd 3.4 wants it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ETCD_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    arch = _GOARCH.get(platform.machine())
    if arch and arch != "amd64":
        env["ETCD_UNSUPPORTED_ARCH"] = arch
    return env


def pick_ports(n):
    """n distinct free loopback TCP ports: each bound on 127.0.0.1:0 (all
    held at once, so none repeats) and then released. Another process may
    take one before etcd binds it: starts retry on that."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((LOOPBACK, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class EtcdMember(EtcdClient):
    """One etcd process: a member called name, its client and peer ports
    on 127.0.0.1 (the client one https:// with tls), its data directory
    and log in dir. Started by start(); its process is ended only by
    pid."""

    def __init__(self, name, client_port, peer_port, initial_cluster,
                 token, dir, tls=None):
        super().__init__("%s://%s:%d" % ("https" if tls else "http",
                                         LOOPBACK, client_port), tls=tls)
        self.name = name
        self.peer_url = "http://%s:%d" % (LOOPBACK, peer_port)
        self.initial_cluster = initial_cluster
        self.token = token
        self.dir = dir
        self.data_dir = os.path.join(dir, "data")
        self.log_path = os.path.join(dir, "etcd.log")
        self.proc = None
        self.member_id = None   # as /v3/maintenance/status gives it
        self.statuses = []      # exit statuses of earlier runs

    def __repr__(self):
        return "<EtcdMember %s %s pid %s>" % (self.name, self.client_url,
                                              self.pid)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self):
        return [etcd_binary(),
                "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.initial_cluster,
                "--initial-cluster-token", self.token,
                "--initial-cluster-state", "new"] + (
                    self.tls.etcd_args() if self.tls else [])

    def start(self):
        """Start the process (not waiting for it to be healthy)."""
        if self.alive():
            raise RuntimeError("%r is running already" % self)
        with open(self.log_path, "ab") as log:
            log.write(b"==== etcdtest: %s\n" % " ".join(
                self.argv()).encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, env=_etcd_env(), cwd=self.dir,
                preexec_fn=_pdeathsig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def logtext(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def check_running(self):
        """Raise StartError (_BindRace for a taken port) if the process
        has exited."""
        if self.alive():
            return
        rc = self.proc.returncode if self.proc else None
        text = self.logtext()
        cls = _BindRace if "address already in use" in text else StartError
        raise cls("etcd %s exited (status %s) before it was healthy; "
                  "its log (%s) ends:\n%s"
                  % (self.name, rc, self.log_path, text[-3000:]))

    def wait_healthy(self, timeout=START_TIMEOUT):
        """Wait until GET /health says {"health":"true"} (the member has a
        leader and a quorum read went through), then learn member_id."""
        def ready():
            self.check_running()
            return self.healthy()
        try:
            _wait(ready, timeout, "etcd %s at %s to be healthy"
                  % (self.name, self.client_url))
        except _BindRace:
            raise
        except StartError as e:
            if self.alive():
                raise StartError("%s; its log (%s) ends:\n%s"
                                 % (e, self.log_path,
                                    self.logtext()[-3000:])) from None
            raise
        self.member_id = self.status()["header"]["member_id"]

    def _end(self, sig, timeout):
        """Send sig to the process by pid and reap it; SIGKILL if it is
        still there after timeout seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.statuses.append(self.proc.returncode)

    def kill(self):
        """SIGKILL by pid; the data directory stays (see restart())."""
        self._end(signal.SIGKILL, STOP_TIMEOUT)

    def terminate(self):
        """SIGTERM by pid, SIGKILL after STOP_TIMEOUT; data stays."""
        self._end(signal.SIGTERM, STOP_TIMEOUT)

    def restart(self, timeout=START_TIMEOUT, wait=True):
        """Start again on the same ports and data directory (ending the
        process first if it runs); wait=False for a member that cannot
        be healthy alone (no quorum yet)."""
        self.terminate()
        self.start()
        if wait:
            self.wait_healthy(timeout)


def _problems(test):
    result = getattr(getattr(test, "_outcome", None), "result", None)
    if result is None:
        return 0
    return len(result.errors) + len(result.failures)


class _Owned:
    """What Etcd and EtcdCluster share: a temporary directory, stop()
    (idempotent), the context manager, and the log on failure."""

    def _make_tmp(self):
        self.tmp = tempfile.mkdtemp(prefix="berth-etcd-")

    def stop(self):
        """End every process by pid (SIGTERM, then SIGKILL) and remove
        the data directories. Safe to call again."""
        for m in self.members:
            m.terminate()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    close = stop

    def logs(self, tail=4000):
        """The end of each member's log, under a header line."""
        return "".join("---- etcd %s log (%s) ----\n%s\n"
                       % (m.name, m.log_path, m.logtext()[-tail:])
                       for m in self.members)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _start_all(self, make, timeout):
        """make() sets self.members; start them all and wait for each to
        be healthy, on fresh ports after a bind race. On failure nothing
        is left running and the temporary directory is gone."""
        etcd_binary()
        self.members = []
        self.tmp = None
        for attempt in range(BIND_RETRIES):
            self._make_tmp()
            try:
                make()
                for m in self.members:
                    m.start()
                deadline = time.monotonic() + timeout
                for m in self.members:
                    m.wait_healthy(max(1.0, deadline - time.monotonic()))
                return
            except _BindRace:
                self.stop()
                if attempt == BIND_RETRIES - 1:
                    raise
            except BaseException:
                self.stop()
                raise


class Etcd(EtcdMember, _Owned):
    """One etcd member, a cluster of its own, started at once and healthy
    on return. client_url is http://127.0.0.1:PORT, or https:// with tls
    (a TLS). kill() then restart() keeps the data and the ports; stop()
    ends it and removes its data."""

    def __init__(self, timeout=START_TIMEOUT, name="e0", tls=None):
        def make():
            cport, pport = pick_ports(2)
            EtcdMember.__init__(
                self, name, cport, pport,
                "%s=http://%s:%d" % (name, LOOPBACK, pport),
                "berth-" + uuid.uuid4().hex, self.tmp, tls)
            self.members = [self]
        self._start_all(make, timeout)

    def __repr__(self):
        return "<Etcd %s pid %s>" % (self.client_url, self.pid)


class EtcdCluster(_Owned):
    """size (3) etcd members on loopback in one cluster, started at once,
    each healthy on return. members[i] is an EtcdMember with the gateway
    helpers (put, get_prefix, grant, revoke...) on its own client URL
    (https:// with tls, a TLS, the same files for each member)."""

    def __init__(self, size=3, timeout=START_TIMEOUT, tls=None):
        def make():
            ports = pick_ports(2 * size)
            names = ["e%d" % i for i in range(size)]
            initial = ",".join("%s=http://%s:%d" % (n, LOOPBACK, ports[2 * i + 1])
                               for i, n in enumerate(names))
            token = "berth-" + uuid.uuid4().hex
            self.members = []
            for i, n in enumerate(names):
                d = os.path.join(self.tmp, n)
                os.mkdir(d)
                self.members.append(EtcdMember(
                    n, ports[2 * i], ports[2 * i + 1], initial, token, d,
                    tls))
        self._start_all(make, timeout)

    def __repr__(self):
        return "<EtcdCluster %s>" % " ".join(m.client_url
                                             for m in self.members)

    @property
    def client_urls(self):
        return [m.client_url for m in self.members]

    def member(self, m):
        """A member given as itself or as its index."""
        return self.members[m] if isinstance(m, int) else m

    def leader(self):
        """The running member that is leader: the one whose
        /v3/maintenance/status gives leader == header.member_id. None
        while there is none (an election)."""
        for m in self.members:
            if not m.alive():
                continue
            try:
                st = m.status()
            except (OSError, http.client.HTTPException, EtcdError):
                continue
            if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                return m
        return None

    def wait_leader(self, timeout=START_TIMEOUT):
        return _wait(self.leader, timeout, "a leader in %r" % self)

    def kill(self, member):
        """SIGKILL one member (it or its index) by pid; its data stays."""
        self.member(member).kill()

    def restart(self, member, timeout=START_TIMEOUT):
        """Start a member again on its ports and data."""
        self.member(member).restart(timeout)


class EtcdMixin:
    """For a TestCase (beside BerthTestCase too): self.etcd() and
    self.etcd_cluster() start etcd for this test and stop it when the
    test ends, printing the logs first if the test failed."""

    def _own(self, thing):
        before = _problems(self)

        def cleanup():
            if _problems(self) > before and thing.tmp:
                print(thing.logs())
            thing.stop()
        self.addCleanup(cleanup)
        return thing

    def etcd(self, **kw):
        return self._own(Etcd(**kw))

    def etcd_cluster(self, **kw):
        return self._own(EtcdCluster(**kw))
