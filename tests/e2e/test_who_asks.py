#!/usr/bin/env python3
"""Who asks: berthd knows each peer's uid, over loopback TCP as over its
unix socket, and only root and berthd's own user are admins (revoke with
?force=1 and no token) -- never a browser acting for a page.

docs/api.md ("Admin calls", "Browser safety"). The uid of a TCP peer comes
from the kernel's socket tables; the tests make a second user's client by
running it as `nobody` (they need root for that, and skip without it).
"""

import json
import os
import pwd
import socket
import subprocess
import sys
import unittest

from berthtest import BerthTestCase, main

# A client run as another user: one request, prints "STATUS BODY".
CLIENT = r"""
import http.client, socket, sys
method, addr, path = sys.argv[1:4]
body = sys.argv[4].replace("$PID", str(__import__("os").getpid())) \
    if len(sys.argv) > 4 else None
if addr.startswith("unix:"):
    class C(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(addr[5:])
    c = C("localhost", timeout=10)
else:
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=10)
c.request(method, path, body=body, headers={"Host": "localhost",
          "Content-Type": "application/json"})
r = c.getresponse()
print(r.status, r.read().decode())
"""

NOBODY = "nobody"


def as_nobody(method, addr, path, body=None):
    """(status, JSON body or None) of one request made as user nobody; "$PID"
    in body becomes the client's own pid."""
    pw = pwd.getpwnam(NOBODY)
    # The system's python: the test's own may live where nobody cannot go.
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
        else sys.executable
    out = subprocess.run(
        [py, "-c", CLIENT, method, addr, path] + ([body] if body else []),
        cwd="/",
        user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
        capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("client as nobody failed: " + out.stderr)
    status, _, body = out.stdout.strip().partition(" ")
    return int(status), (json.loads(body) if body else None)


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(os.geteuid() == 0, "needs root to act as a second user")
class AdminOverTcp(BerthTestCase):
    """Root is an admin over the default kind of address, TCP."""

    def test_root_revokes_over_tcp(self):
        d = self.berthd()
        self.assertEqual(d.acquire("web").status, 201)
        r = d.delete("/v1/services/web?force=1")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(d.get("/v1/services/web").status, 404)

    def test_other_user_is_no_admin_over_tcp(self):
        d = self.berthd()
        self.assertEqual(d.acquire("web").status, 201)
        status, body = as_nobody("DELETE", d.addr, "/v1/services/web?force=1")
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"]["code"], "forbidden")
        # Reading is for everyone.
        status, body = as_nobody("GET", d.addr, "/v1/services/web")
        self.assertEqual(status, 200, body)
        self.assertEqual(d.get("/v1/services/web").status, 200)

    @unittest.skipUnless(has_ipv6_loopback(), "no IPv6 loopback")
    def test_root_revokes_over_ipv6(self):
        d = self.berthd("--listen", "[::1]:0")
        self.assertEqual(d.acquire("web6").status, 201)
        self.assertEqual(d.delete("/v1/services/web6?force=1").status, 204)
        self.assertEqual(d.acquire("web6").status, 201)
        status, body = as_nobody("DELETE", d.addr, "/v1/services/web6?force=1")
        self.assertEqual(status, 403, body)


@unittest.skipUnless(os.geteuid() == 0, "needs root to act as a second user")
class Owners(BerthTestCase):
    """An owner pid must be a process of the user who asks (admins may name
    any), and never berthd itself."""

    def test_other_users_process_refused(self):
        d = self.berthd()
        body = json.dumps({"name": "stolen", "pid": os.getpid()})
        status, err = as_nobody("POST", d.addr, "/v1/services", body)
        self.assertEqual(status, 400, err)
        self.assertEqual(err["error"]["code"], "invalid_field")
        self.assertIn("not a process of your user", err["error"]["message"])

    def test_own_process_taken(self):
        d = self.berthd()
        status, lease = as_nobody("POST", d.addr, "/v1/services",
                                  '{"name": "mine", "pid": $PID}')
        self.assertEqual(status, 201, lease)

    def test_admin_may_name_any_process(self):
        d = self.berthd()
        child = subprocess.Popen(["sleep", "60"], user=NOBODY)
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        r = d.acquire("theirs", pid=child.pid)
        self.assertEqual(r.status, 201, r)

    def test_berthd_itself_refused(self):
        d = self.berthd()
        r = d.acquire("self", pid=d.proc.pid)
        self.assertError(r, 400, "invalid_field")


@unittest.skipUnless(os.geteuid() == 0, "needs root to act as a second user")
class AdminOverUnix(BerthTestCase):

    def test_unix_socket_admin_is_by_uid(self):
        path = os.path.join(self.tmpdir(), "berth.sock")
        d = self.berthd("--listen", "127.0.0.1:0", "--listen", "unix:" + path,
                        "--socket-mode", "0666")
        self.assertEqual(d.acquire("svc").status, 201)
        status, body = as_nobody("DELETE", "unix:" + path,
                                 "/v1/services/svc?force=1")
        self.assertEqual(status, 403, body)
        status, body = as_nobody("GET", "unix:" + path, "/v1/services/svc")
        self.assertEqual(status, 200, body)
        d.addr = "unix:" + path
        self.assertEqual(d.delete("/v1/services/svc?force=1").status, 204)

    def tmpdir(self):
        import tempfile
        import shutil
        t = tempfile.mkdtemp(prefix="berth-who-")
        os.chmod(t, 0o755)
        self.addCleanup(shutil.rmtree, t, True)
        return t


class NeverFromABrowser(BerthTestCase):
    """A browser acts for a page, whoever runs it."""

    def test_origin_is_never_admin(self):
        d = self.berthd("--allow-origin", "http://ok.example")
        self.assertEqual(d.acquire("web").status, 201)
        r = d.delete("/v1/services/web?force=1",
                     headers={"Origin": "http://ok.example"})
        self.assertError(r, 403, "forbidden")
        self.assertEqual(d.get("/v1/services/web").status, 200)

    def test_sec_fetch_headers_are_never_admin(self):
        d = self.berthd()
        self.assertEqual(d.acquire("web").status, 201)
        for hdrs in ({"Sec-Fetch-Site": "none"},
                     {"Sec-Fetch-Mode": "navigate"},
                     {"Sec-Fetch-Dest": "document"}):
            with self.subTest(headers=hdrs):
                r = d.delete("/v1/services/web?force=1", headers=hdrs)
                self.assertIn(r.status, (403,), r)
        self.assertEqual(d.get("/v1/services/web").status, 200)

    def test_cross_site_fetch_refused(self):
        d = self.berthd()
        self.assertEqual(d.acquire("web").status, 201)
        for site in ("cross-site", "same-site", "Cross-Site", "bogus"):
            for path in ("/v1/services/web", "/v1/services/web?wait=1",
                         "/v1/services", "/v1/health", "/"):
                with self.subTest(site=site, path=path):
                    r = d.get(path, headers={"Sec-Fetch-Site": site})
                    self.assertError(r, 403, "forbidden_origin")

    def test_own_navigation_and_own_page_allowed(self):
        d = self.berthd()
        self.assertEqual(d.acquire("web").status, 201)
        for site in ("none", "same-origin", "Same-Origin"):
            with self.subTest(site=site):
                r = d.get("/v1/services/web", headers={"Sec-Fetch-Site": site})
                self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    main()
