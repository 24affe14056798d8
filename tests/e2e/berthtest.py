"""berthtest: the harness for berth's end-to-end tests.

Each test starts its own berthd on 127.0.0.1:0 (the kernel picks a free
port, so there is no probe-then-bind race) with a temporary database, and
learns the address from the READY=1/STATUS datagram berthd sends to
NOTIFY_SOCKET, as systemd would receive it. Everything started here is
ended by pid when the test ends.

BERTHD names the daemon binary (make check sets it).
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BERTHD = os.environ.get("BERTHD", "berthd")
START_TIMEOUT = 10.0


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def index(self):
        return int(self.headers["X-Berth-Index"])

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class Berthd:
    """One berthd process with its own temporary state directory."""

    def __init__(self, args=(), env=None, db=None, tmpdir=None):
        self.own_tmp = tmpdir is None
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="berth-e2e-")
        self.db = db or os.path.join(self.tmp, "berth.db")
        self.args = list(args)
        self.env = dict(env or {})
        self.proc = None
        self.addr = None
        self.log_path = os.path.join(self.tmp, "berthd.log")
        self.start()

    def start(self, expect_ready=True):
        notify_path = os.path.join(self.tmp, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        nsock.bind(notify_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env.update(self.env)
        env["NOTIFY_SOCKET"] = notify_path
        args = [BERTHD, "--db", self.db, "--log-level", "debug"]
        if not any(a.startswith("--listen") for a in self.args):
            args += ["--listen", "127.0.0.1:0"]
        args += self.args
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     env=env, stdin=subprocess.DEVNULL)
        if not expect_ready:
            nsock.close()
            return
        nsock.settimeout(0.1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    msg = nsock.recv(4096).decode()
                    break
                except socket.timeout:
                    if self.proc.poll() is not None:
                        raise RuntimeError("berthd exited with %d before it "
                                           "was ready:\n%s" % (self.proc.returncode, self.logtext()))
                    if time.monotonic() > deadline:
                        raise RuntimeError("berthd not ready after %.0fs:\n%s"
                                           % (START_TIMEOUT, self.logtext()))
        finally:
            nsock.close()
        fields = dict(line.split("=", 1) for line in msg.splitlines() if "=" in line)
        assert fields.get("READY") == "1", msg
        self.addr = fields["STATUS"].split("serving on ", 1)[1]
        if self.addr.startswith("["):
            self.host, port = self.addr[1:].split("]:")
        elif self.addr.startswith("unix:"):
            self.host, port = self.addr, "0"
        else:
            self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)

    def logtext(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, raw=None,
                timeout=30, conn=None):
        """One HTTP request; body is JSON-encoded unless raw bytes are given."""
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        own = conn is None
        if own:
            if self.addr.startswith("unix:"):
                conn = UnixHTTPConnection(self.addr[5:], timeout=timeout)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            return Response(resp.status, resp.headers, payload.decode(errors="replace"))
        finally:
            if own:
                conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def acquire(self, name, token=None, **fields):
        body = {"name": name}
        body.update(fields)
        headers = {"Authorization": "Bearer " + token} if token else None
        return self.post("/v1/services", body, headers=headers)

    def release(self, name, token):
        return self.delete("/v1/services/" + name,
                           headers={"Authorization": "Bearer " + token})

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Send sig and wait; returns the exit status (negative: signal)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self, sig=signal.SIGKILL):
        self.stop(sig)
        self.start()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.log and not self.log.closed:
            self.log.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class BerthTestCase(unittest.TestCase):
    """A test case that owns the berthds it starts and shows their logs on failure."""

    def berthd(self, *args, **kw):
        d = Berthd(args, **kw)
        self.daemons.append(d)
        return d

    def setUp(self):
        self.daemons = []
        self._problems_before = self._problem_count()

    def _problem_count(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return 0
        return len(result.errors) + len(result.failures)

    def tearDown(self):
        failed = self._problem_count() > self._problems_before
        for d in self.daemons:
            d.close()
            if failed:
                print("---- berthd log (%s) ----\n%s" % (d.tmp, d.logtext()[-4000:]))
            elif d.own_tmp:
                shutil.rmtree(d.tmp, ignore_errors=True)

    def assertError(self, resp, status, code):
        """resp is an error answer with this status and JSON error code."""
        self.assertEqual(resp.status, status, resp)
        err = resp.json["error"]
        self.assertEqual(err["code"], code, resp)
        self.assertTrue(err["message"], resp)


def listener(port=0, host="0.0.0.0", family=socket.AF_INET, kind=socket.SOCK_STREAM):
    """A socket bound (and, for TCP, listening) on port; the caller closes it."""
    s = socket.socket(family, kind)
    s.bind((host, port))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    return s


def main():
    unittest.main(verbosity=2)
