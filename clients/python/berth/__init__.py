"""berth: a client for berthd, the local port broker (standard library only).

    import berth

    with berth.lease("api", ttl=30) as lease:   # hold a port while running
        serve(lease.port)

    db = berth.lookup("db", wait=30)            # find (or wait for) another
    print(db.host, db.port)

A Client talks to one berthd over its HTTP API (docs/api.md): at the
address given, else $BERTH_ADDR, else 127.0.0.1:62893. Addresses are
HOST:PORT, [V6]:PORT or unix:/path. The module-level functions (acquire,
lookup, list, watch, renew, release, revoke) use a default Client made on
first use from $BERTH_ADDR.

An error answer from berthd raises Error (its API code, message and HTTP
status); a berthd that cannot be reached raises Unreachable, a subclass
of Error that names the address.
"""

import atexit
import errno as _errno
import http.client
import json
import logging
import os
import signal
import socket
import sys
import threading
import urllib.parse

__all__ = ["Client", "Error", "Unreachable", "Lease", "Hold", "lease",
           "acquire", "lookup", "list", "watch", "renew", "release",
           "revoke", "listen_fds", "listen_fd", "ListenSocket", "DEFAULT_ADDR"]

__version__ = "0.1.0"

DEFAULT_ADDR = "127.0.0.1:62893"
DEFAULT_TIMEOUT = 10.0      # seconds for one request, on top of any ?wait=

log = logging.getLogger("berth")


class Error(Exception):
    """An error answer from berthd.

    code is the API's error code ("name_taken", "not_found", "bad_token",
    "pool_exhausted", ...; see docs/api.md), message berthd's words for
    people, status the HTTP status (409, 404, ...)."""

    def __init__(self, code, message, status=None):
        super().__init__(code, message, status)
        self.code, self.message, self.status = code, message, status

    def __str__(self):
        return "%s (%s)" % (self.message, self.code) if self.code else self.message


class Unreachable(Error):
    """berthd could not be reached at addr (not running, wrong address,
    no answer in time). code is "unreachable", status None."""

    def __init__(self, addr, why):
        super().__init__("unreachable", "cannot reach berthd at %s: %s "
                         "(is berthd running?)" % (addr, why))
        self.addr = addr

    def __str__(self):
        return self.message


class Lease:
    """A lease as berthd describes it. Attributes: name, port, host,
    proto, ttl, pid, meta, expires_at, created_at, renewed_at, uid,
    ready, publish, and token (only from an acquire; None otherwise).
    Cluster instances have node too. Any field berthd adds later is an
    attribute as well; fields() gives them all as a dict."""

    def __init__(self, fields):
        self._fields = dict(fields)
        self.__dict__.update(fields)

    name = port = host = proto = ttl = pid = meta = expires_at = None
    created_at = renewed_at = uid = ready = publish = token = node = None

    def fields(self):
        """The lease's JSON object, as a dict."""
        return dict(self._fields)

    @property
    def addr(self):
        """host:port ([host]:port for an IPv6 host), to connect to."""
        h = self.host or "127.0.0.1"
        return ("[%s]:%d" if ":" in h else "%s:%d") % (h, self.port)

    def __repr__(self):
        return "<berth.Lease %s %s>" % (self.name, self.addr)


def _parse_addr(addr):
    """('unix', path, None) or ('tcp', host, port) for an address."""
    if addr.startswith("unix:"):
        if len(addr) == 5:
            raise ValueError("berth address %r: no socket path" % addr)
        return "unix", addr[5:], None
    if addr.startswith("["):
        host, sep, port = addr[1:].partition("]:")
    else:
        host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("berth address %r: expected HOST:PORT, [V6]:PORT "
                         "or unix:/path" % addr)
    return "tcp", host, int(port)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def _why(e):
    """An OSError in a few lowercase words: "connection refused"."""
    if isinstance(e, socket.timeout):
        return "no answer in time"
    if isinstance(e, OSError) and e.errno:
        s = os.strerror(e.errno)
        return s[:1].lower() + s[1:]
    return str(e) or type(e).__name__


class Client:
    """A connection to one berthd.

    addr: HOST:PORT, [V6]:PORT or unix:/path; None means $BERTH_ADDR,
    else 127.0.0.1:62893 (an explicit addr wins over the environment).
    timeout: seconds to wait for one answer, added to the wait of a
    blocking call. Each call is one HTTP request on its own connection,
    so a Client may be shared between threads."""

    def __init__(self, addr=None, timeout=DEFAULT_TIMEOUT):
        self.addr = addr or os.environ.get("BERTH_ADDR") or DEFAULT_ADDR
        self.kind, self._host, self._port = _parse_addr(self.addr)
        self.timeout = timeout
        self.index = None   # X-Berth-Index of the last answer

    def __repr__(self):
        return "<berth.Client %s>" % self.addr

    def _request(self, method, path, body=None, token=None, wait=0):
        """Do one request; the decoded JSON answer (None for 204)."""
        timeout = self.timeout + (wait or 0)
        if self.kind == "unix":
            conn = _UnixConnection(self._host, timeout)
        else:
            conn = http.client.HTTPConnection(self._host, self._port,
                                              timeout=timeout)
        headers = {"Accept": "application/json", "Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as e:
            if self.kind == "unix" and getattr(e, "errno", None) in (
                    _errno.EACCES, _errno.EPERM):
                raise Unreachable(self.addr, "permission denied") from None
            raise Unreachable(self.addr, _why(e)) from None
        finally:
            conn.close()
        idx = resp.getheader("X-Berth-Index")
        if idx and idx.isdigit():
            self.index = int(idx)
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            doc = None
        if resp.status >= 300:
            err = doc.get("error") if isinstance(doc, dict) else None
            if isinstance(err, dict):
                raise Error(err.get("code"), err.get("message"), resp.status)
            raise Error(None, "berthd at %s answered %d %s" % (
                self.addr, resp.status, resp.reason), resp.status)
        return doc

    # ---- the calls --------------------------------------------------------

    def acquire(self, name, port=None, proto=None, ttl=None, pid=None,
                meta=None, publish=None, host=None, token=None):
        """Lease a port under name; returns the Lease, with its token.

        port: a given port (else berthd picks one from its pool); proto:
        "tcp", "udp" or "both"; ttl: seconds the lease lasts unless
        renewed (0 or None: no expiry); pid: the owner process (the lease
        ends when it exits); meta: a dict of strings; publish: True to
        publish it to the cluster; host: the address to advertise; token:
        an earlier lease's, to take that lease (or a lapsed one) back.
        Fields left None are not sent."""
        body = {"name": name}
        for k, v in (("port", port), ("proto", proto), ("ttl", ttl),
                     ("pid", pid), ("meta", meta), ("publish", publish),
                     ("host", host)):
            if v is not None:
                body[k] = v
        return Lease(self._request("POST", "/v1/services", body, token=token))

    def lookup(self, name, wait=None, ready=False, cluster=False):
        """The live lease of name (a Lease without token).

        wait: seconds (0-300) to wait on berthd for the name to be
        registered; ready=True: wait until something listens on its port
        too. Raises Error "not_found" when there is none (after the wait).
        cluster=True looks the name up in the cluster instead and returns
        its instances, one Lease per node (with node set)."""
        q = {}
        if wait is not None:
            q["wait"] = int(wait)
        if ready:
            q["ready"] = 1
        path = ("/v1/cluster/services/" if cluster else "/v1/services/") + \
            urllib.parse.quote(name, safe="") + \
            ("?" + urllib.parse.urlencode(q) if q else "")
        doc = self._request("GET", path, wait=wait)
        if cluster:
            return [Lease(i) for i in doc["instances"]]
        return Lease(doc)

    def list(self, cluster=False):
        """Every live lease, sorted by name (cluster=True: every instance
        published in the cluster). The index is in client.index."""
        return self._list(cluster, None, None)[1]

    def _list(self, cluster, index, wait):
        path = "/v1/cluster/services" if cluster else "/v1/services"
        if index is not None:
            path += "?index=%d&wait=%d" % (index, wait)
        doc = self._request("GET", path, wait=wait if index is not None else 0)
        return doc["index"], [Lease(s) for s in doc["services"]]

    def watch(self, index=None, wait=300, cluster=False):
        """A generator of (index, leases) on each change of the registry.

        Without index it first yields the list as it is now; then it waits
        on berthd (up to wait seconds a request, again and again) and
        yields the list each time the index moves. It never ends by
        itself: break out of the loop. cluster=True watches the cluster's
        view instead."""
        if index is None:
            index, leases = self._list(cluster, None, None)
            yield index, leases
        while True:
            new, leases = self._list(cluster, index, wait)
            if new != index:
                index = new
                yield index, leases

    def renew(self, name, token=None, ttl=None):
        """Renew a lease with its token (name may be a Lease holding its
        token); ttl sets a new TTL. Returns the renewed Lease."""
        name, token = _name_token(name, token)
        body = {} if ttl is None else {"ttl": ttl}
        doc = self._request("POST", "/v1/services/%s/renew"
                            % urllib.parse.quote(name, safe=""), body,
                            token=token)
        return Lease(doc)

    def release(self, name, token=None):
        """Give a lease back with its token (name may be a Lease)."""
        name, token = _name_token(name, token)
        self._request("DELETE", "/v1/services/" +
                      urllib.parse.quote(name, safe=""), token=token)

    def revoke(self, name):
        """End anyone's lease on name (an admin's act: root or berthd's
        own user only, else Error "forbidden"). Its token cannot take it
        back."""
        self._request("DELETE", "/v1/services/%s?force=1"
                      % urllib.parse.quote(name, safe=""))

    def status(self):
        """berthd's /v1/status, as a dict."""
        return self._request("GET", "/v1/status")

    def lease(self, name, ttl=30, **fields):
        """A Hold of name through this client: see berth.lease."""
        return Hold(name, ttl=ttl, client=self, **fields)


def _name_token(name, token):
    if isinstance(name, Lease):
        return name.name, token or name.token
    return name, token


# ---- holding a lease while the program runs --------------------------------

def _same_pid_space(client):
    """Whether berthd sees our pid as ours (same boot, same PID namespace),
    by what /v1/status says; None when it cannot tell."""
    try:
        mine = os.readlink("/proc/self/ns/pid")
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        st = client.status()
    except (OSError, Error):
        return None
    if not st.get("pid_namespace") or not st.get("boot_id"):
        return None
    return st["pid_namespace"] == mine and st["boot_id"] == boot


class Hold:
    """A lease held while a block of code runs (made by berth.lease).

    On enter it acquires name with the TTL (owned by this process when
    berthd can see it) and starts a daemon thread that renews it every
    ttl/3 seconds. When a renewal finds the lease gone (it lapsed: berthd
    was down or this machine slept past the TTL), the thread acquires it
    again with the same token, which gives back the same port. A lease
    revoked by an admin or released elsewhere cannot be taken back: the
    thread says so and stops renewing (hold.lost is then True). Failures
    are logged on the "berth" logger (stderr by default).

    On exit it stops the thread, releases the lease and puts back any
    signal handlers it installed.

    Signals: only when entered from the main thread, and only for a
    signal whose handler is the default (SIG_DFL), it installs handlers
    for the time of the block: SIGTERM raises SystemExit(143) and SIGINT
    raises KeyboardInterrupt, in the main thread, so the with-block
    unwinds and the lease is released before the program exits; the
    process then ends by the signal, as it would have without berth (a
    shell sees 143 or 130, systemd a clean stop). Python's
    own SIGINT handler (KeyboardInterrupt) already does that and is kept;
    a handler of your own, or SIG_IGN, is never replaced. Pass
    signals=False to install nothing.
    """

    def __init__(self, name, ttl=30, client=None, pid=None, signals=True,
                 **fields):
        if not ttl or ttl < 1:
            raise ValueError("berth.lease needs a TTL of 1 s or more")
        self.name, self.ttl, self.fields = name, ttl, fields
        self.client = client or _default()
        self.pid = pid
        self.signals = signals
        self.lease = None
        self.lost = False
        self._stop = threading.Event()
        self._thread = None
        self._saved = {}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        """Acquire and start renewing; returns the Lease (also .lease)."""
        if self.pid is None:
            self.pid = os.getpid() if os.getpid() != 1 and \
                _same_pid_space(self.client) is not False else 0
        self.lease = self._acquire(None, None)
        self._thread = threading.Thread(target=self._renew_loop,
                                        name="berth-renew-" + self.name,
                                        daemon=True)
        self._thread.start()
        self._install_signals()
        return self.lease

    def stop(self):
        """Stop renewing and release the lease (once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.client.timeout + 1)
            self._thread = None
        self._restore_signals()
        if self.lease is not None and not self.lost:
            lease, self.lease = self.lease, None
            try:
                self.client.release(lease.name, lease.token)
            except Error as e:
                if e.code != "not_found":
                    log.warning("berth: cannot release %s: %s", lease.name, e)

    def _acquire(self, port, token):
        try:
            return self.client.acquire(self.name, port=port, token=token,
                                       ttl=self.ttl, pid=self.pid or None,
                                       **self.fields)
        except Error as e:
            if e.code != "pid_not_visible" or not self.pid:
                raise
            self.pid = 0     # berthd cannot see us: live by the TTL
            return self.client.acquire(self.name, port=port, token=token,
                                       ttl=self.ttl, **self.fields)

    def _renew_loop(self):
        failing = False
        while not self._stop.wait(self.ttl / 3.0):
            lease = self.lease
            try:
                self.client.renew(lease.name, lease.token)
                if failing:
                    log.warning("berth: renewed %s again", lease.name)
                failing = False
                continue
            except Error as e:
                err = e
            if err.code == "not_found":
                try:
                    new = self._acquire(lease.port, lease.token)
                except Error as e:
                    err = e
                else:
                    lease.__dict__.update(new.fields())
                    lease._fields.update(new.fields())
                    log.warning("berth: the lease on %s had lapsed; "
                                "reclaimed it (port %d)", lease.name,
                                lease.port)
                    failing = False
                    continue
            if err.code in ("bad_token", "name_taken"):
                log.warning("berth: the lease on %s was revoked, released "
                            "or taken; no longer renewing it: %s",
                            lease.name, err)
                self.lost = True
                return
            if not failing:
                log.warning("berth: cannot renew %s, will retry: %s",
                            lease.name, err)
            failing = True

    def _install_signals(self):
        if not self.signals or \
                threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in ((signal.SIGTERM, _on_sigterm),
                             (signal.SIGINT, signal.default_int_handler)):
            if signal.getsignal(sig) == signal.SIG_DFL:
                self._saved[sig] = signal.signal(sig, handler)

    def _restore_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, old in self._saved.items():
            signal.signal(sig, old)
        self._saved = {}


_ending_by = None     # the signal that ended a held lease's block


def _on_sigterm(signum, frame):
    # Unwind the with-block (which releases), then end by the signal at
    # exit, as the process would have without berth.
    global _ending_by
    _ending_by = signum
    raise SystemExit(128 + signum)


@atexit.register
def _end_by_signal():
    # Registered at import, so it runs after the program's own atexit
    # functions; what Python would flush after them is flushed here.
    if _ending_by is None:
        return
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass
    signal.signal(_ending_by, signal.SIG_DFL)
    os.kill(os.getpid(), _ending_by)


def lease(name, ttl=30, client=None, pid=None, signals=True, **fields):
    """Hold a lease on name while a with-block runs:

        with berth.lease("api", ttl=30) as lease:
            serve(lease.port)

    Acquires name with ttl (seconds, at least 1), owned by this process
    (pid=None: when berthd can see it, as `berth run` does; pid=0: never),
    renews it from a daemon thread every ttl/3 seconds, takes it back with
    its token if it lapsed, and releases it when the block ends. fields
    are acquire's (port, proto, meta, publish, host). See Hold for the
    details, and for the SIGTERM/SIGINT handlers it installs."""
    return Hold(name, ttl=ttl, client=client, pid=pid, signals=signals,
                **fields)


# ---- sockets passed by `berth run --fd` (systemd's LISTEN_FDS) -------------

LISTEN_FDS_START = 3


class ListenSocket(socket.socket):
    """A socket passed by LISTEN_FDS; name is its LISTEN_FDNAMES entry."""

    name = ""


def listen_fds(unset_env=True):
    """The listening sockets passed to this process by `berth run --fd`
    (or systemd socket activation): a list of ListenSocket, a
    socket.socket with a .name from LISTEN_FDNAMES ("" if unnamed), in
    the order passed. Empty when
    LISTEN_FDS is unset or LISTEN_PID is not this process. With
    unset_env, LISTEN_* are removed from os.environ so child processes
    do not take them for theirs. Call it once."""
    try:
        if int(os.environ.get("LISTEN_PID", "")) != os.getpid():
            return []
        n = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    if unset_env:
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(k, None)
    out = []
    for i in range(max(n, 0)):
        fd = LISTEN_FDS_START + i
        os.set_inheritable(fd, False)
        s = ListenSocket(fileno=fd)
        s.name = names[i] if i < len(names) else ""
        out.append(s)
    return out


def listen_fd(name=None):
    """The one listening socket named name (any, if None) passed by
    `berth run --fd`, or None. Like listen_fds, call it once."""
    for s in listen_fds():
        if name is None or s.name == name:
            return s
    return None


# ---- module-level calls through a default client ---------------------------

_default_client = None


def _default():
    global _default_client
    if _default_client is None:
        _default_client = Client()
    return _default_client


def acquire(name, **fields):
    """Client().acquire through the default client ($BERTH_ADDR)."""
    return _default().acquire(name, **fields)


def lookup(name, wait=None, ready=False, cluster=False):
    """Client().lookup through the default client ($BERTH_ADDR)."""
    return _default().lookup(name, wait=wait, ready=ready, cluster=cluster)


def list(cluster=False):
    """Client().list through the default client ($BERTH_ADDR)."""
    return _default().list(cluster=cluster)


def watch(index=None, wait=300, cluster=False):
    """Client().watch through the default client ($BERTH_ADDR)."""
    return _default().watch(index=index, wait=wait, cluster=cluster)


def renew(name, token=None, ttl=None):
    """Client().renew through the default client ($BERTH_ADDR)."""
    return _default().renew(name, token, ttl)


def release(name, token=None):
    """Client().release through the default client ($BERTH_ADDR)."""
    return _default().release(name, token)


def revoke(name):
    """Client().revoke through the default client ($BERTH_ADDR)."""
    return _default().revoke(name)
