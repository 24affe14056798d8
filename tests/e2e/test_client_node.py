#!/usr/bin/env python3
"""test_client_node: clients/node (the Node.js client, package "berth")
against a real berthd: every call, the errors a user can cause, the
hold-while-running form (background renewal, release on close, on exit
and on SIGTERM/SIGINT, reclaim after a lapse), LISTEN_FDS adoption under
`berth run --fd`, Unix-socket and IPv6 addresses, and that `npm install
./clients/node` works offline. Each case is a small node script run as a
process of its own. Skipped, with one line saying why, without node >= 18.

Run: BERTHD=.../src/berthd BERTH_CLI=.../clients/cli/berth \
     PYTHONPATH=tests/e2e python3 tests/e2e/test_client_node.py -v
"""

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from berthtest import BerthTestCase, clean_env, main, private_pool, wait_for

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PKG = os.path.normpath(os.path.join(TOP, "clients", "node"))
BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
TIMEOUT = 30
NODE = shutil.which("node")


def node_major():
    if not NODE:
        return 0
    v = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout
    m = re.match(r"v(\d+)", v)
    return int(m.group(1)) if m else 0


# The scripts, each run as `node NAME.mjs`; @BERTH@ is the package's index.js.
SCRIPTS = {
    # Every call once, printing what the test compares with berthd.
    "calls": """
import * as berth from "@BERTH@";
const out = {};
const lease = await berth.acquire("calls", { proto: "both", ttl: 60, pid: process.pid,
  meta: { zone: "a" }, host: "127.0.0.1", hold: false });
out.acquired = lease.toJSON();
out.lookup = await berth.lookup("calls");
// A lookup that waits for a name registered while it waits.
const waiting = berth.lookup("later", { wait: 20 });
setTimeout(() => berth.acquire("later", { hold: false }).then((l) => (out.later = l.token)), 300);
out.waited = await waiting;
out.list = await berth.list();
// watch: the list now, then each change.
const seen = [];
const it = berth.watch({ wait: 5 });
for await (const v of it) {
  seen.push([v.index, v.services.map((s) => s.name)]);
  if (seen.length === 1) berth.acquire("third", { hold: false });
  if (seen.length === 2) break;
}
out.watch = seen;
out.renewed = await berth.renew("calls", lease.token, 120);
await berth.release("later", out.later);
await berth.revoke("third");
out.after = (await berth.list()).services.map((s) => s.name);
out.ready = await berth.lookup("calls", { wait: 1, ready: true }).catch((e) => e.code);
console.log(JSON.stringify(out));
""",
    # watch from an index (no list first), and one ended by its signal.
    "watch": """
import * as berth from "@BERTH@";
const { index } = await berth.list();
setTimeout(() => berth.acquire("w", { hold: false }), 300);
for await (const v of berth.watch({ index, wait: 5 })) {
  console.log(JSON.stringify([v.index > index, v.services.map((s) => s.name)]));
  break;
}
const ac = new AbortController();
const seen = [];
setTimeout(() => ac.abort(), 2500); // two timeouts: no change, nothing yielded
for await (const v of berth.watch({ wait: 1, signal: ac.signal })) seen.push(v.index);
console.log(JSON.stringify(seen.length));
console.log(await berth.list({ cluster: true }).catch((e) => `${e.code} ${e.status}`));
""",
    # One line per error: name code status message.
    "errors": """
import * as berth from "@BERTH@";
const c = new berth.Client();
const held = await c.acquire("taken", { ttl: 60, hold: false });
const cases = {
  name_taken: () => c.acquire("taken"),
  invalid_name: () => c.acquire("Bad Name"),
  invalid_field: () => c.acquire("x", { ttl: -1 }),
  pid_not_visible: () => c.acquire("x", { pid: 4194303 }),
  cluster_disabled: () => c.acquire("x", { publish: true }),
  cluster_lookup: () => c.lookup("x", { cluster: true }),
  port_unavailable: () => c.acquire("x", { port: held.port }),
  not_found: () => c.lookup("nothing"),
  bad_token: () => c.renew("taken", "0".repeat(32)),
  release_bad_token: () => c.release("taken", "0".repeat(32)),
  release_not_found: () => c.release("nothing", "0".repeat(32)),
  // Another token while the lease is live: the name is taken.
  reacquire_live: () => c.acquire("taken", { token: "1".repeat(32) }),
};
for (const [what, f] of Object.entries(cases)) {
  try {
    await f();
    console.log(what, "no error");
  } catch (e) {
    console.log(JSON.stringify([what, e.code, e.status, e.message,
                                e instanceof berth.BerthError, e.name]));
  }
}
""",
    # A call to ADDR (argv[2]); prints the error as JSON.
    "unreachable": """
import * as berth from "@BERTH@";
try {
  await new berth.Client({ addr: process.argv[2] }).list();
  console.log("no error");
} catch (e) {
  console.log(JSON.stringify({ code: e.code, status: e.status, message: e.message,
    addr: e.addr, unreachable: e instanceof berth.BerthUnreachableError,
    berth: e instanceof berth.BerthError }));
}
""",
    # The hold-while-running form: acquire, serve, and wait to be stopped.
    # argv[2]: "own" adds a SIGTERM listener of the program's own.
    "hold": """
import http from "node:http";
import { acquire, lookup } from "@BERTH@";
const lease = await acquire("held", { ttl: 30 });
const server = http.createServer((req, res) => res.end("held\\n"));
server.listen(lease.port, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: lease.port, token: lease.token, held: lease.held }));
});
if (process.argv[2] === "own") {
  process.on("SIGTERM", async () => {
    console.log("own handler, lease", (await lookup("held")).port === lease.port);
    await lease.close();
    server.close();
  });
}
""",
    # A lease closed by hand, by Symbol.asyncDispose, and one left for exit.
    "close": """
import * as berth from "@BERTH@";
const out = { symbol: typeof Symbol.asyncDispose };
const a = await berth.acquire("closed", { ttl: 30 });
await a.close();
await a.close();            // a second close does nothing
out.closed = await berth.lookup("closed").then(() => "still there", (e) => e.code);
const b = await berth.acquire("disposed", { ttl: 30 });
out.dispose = typeof b[Symbol.asyncDispose];
await b[Symbol.asyncDispose]();
out.disposed = await berth.lookup("disposed").then(() => "still there", (e) => e.code);
const c = await berth.acquire("atexit", { ttl: 30 });
out.atexit = (await berth.lookup("atexit")).port === c.port;
const d = await berth.acquire("kept", { ttl: 0, hold: false });
out.kept = d.held;
console.log(JSON.stringify(out));
// Nothing keeps the loop alive: the renewal timer is unref()ed, and
// "atexit" is released before the process exits.
""",
    "using": """
import { acquire, lookup } from "@BERTH@";
{
  await using lease = await acquire("using", { ttl: 30 });
  console.log("inside", (await lookup("using")).port === lease.port);
}
console.log("after", await lookup("using").then(() => "still there", (e) => e.code));
""",
    # Holds a short lease; says each event on stdout.
    "reclaim": """
import { acquire } from "@BERTH@";
const lease = await acquire("lapse", { ttl: 2 });
console.log(JSON.stringify({ port: lease.port, token: lease.token }));
lease.on("reclaimed", (l) => console.log("reclaimed", l.port, l.token));
lease.on("renew-failed", (e) => console.log("renew-failed", e.code));
lease.on("lost", (e) => console.log("lost", e.code));
setInterval(() => {}, 1000);
""",
    # Under berth run --fd: serve on the socket it passed.
    "fd": """
import http from "node:http";
import { listenFds } from "@BERTH@";
const fds = listenFds();
const server = http.createServer((req, res) => res.end("adopted\\n"));
server.listen(fds[0], () => console.log(JSON.stringify({ fds, port: server.address().port })));
process.on("SIGTERM", () => server.close());
""",
    "fd_other_pid": """
import { listenFds } from "@BERTH@";
console.log(JSON.stringify([listenFds(), listenFds({ unsetEnv: true }),
                            "LISTEN_FDS" in process.env]));
""",
    # argv[2]: an address for the Client; module functions use BERTH_ADDR.
    "addr": """
import * as berth from "@BERTH@";
const c = new berth.Client({ addr: process.argv[2], keepAlive: true });
const l = await c.acquire("where", { ttl: 30, hold: false });
const seen = (await c.list()).services.map((s) => s.name);
const port = (await c.lookup("where")).port;
await c.release("where", l.token);
c.close();
let env;
try {
  env = (await berth.list()).services.length;
} catch (e) {
  env = e.code;
}
console.log(JSON.stringify({ addr: c.addr, seen, same: port === l.port, env }));
""",
}


@unittest.skipIf(node_major() < 18, "node >= 18 is not on PATH: clients/node not tested")
class NodeClientTest(BerthTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.scratch_dir("berth-node-")

    def script(self, name):
        path = os.path.join(self.tmp, name + ".mjs")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(SCRIPTS[name].replace("@BERTH@", os.path.join(PKG, "index.js")))
        return path

    def env(self, addr, **more):
        return clean_env(BERTH_ADDR=addr, **more)

    def node(self, name, addr, *args, rc=0, **more):
        r = subprocess.run([NODE, self.script(name)] + list(args), cwd=self.tmp,
                           env=self.env(addr, **more), capture_output=True,
                           text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, rc, r)
        return r

    def start(self, argv, env):
        """A process whose stdout lines a thread puts in p.lines ("" at
        the end), so that a test waits for a line with a timeout."""
        p = subprocess.Popen(argv, cwd=self.tmp, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.track(p)
        p.lines = queue.Queue()

        def read():
            for line in p.stdout:
                p.lines.put(line)
            p.lines.put("")
        p.reader = threading.Thread(target=read, daemon=True)
        p.reader.start()
        return p

    def first_line(self, p, timeout=TIMEOUT):
        """The next line p prints; fails after timeout seconds or at its end."""
        try:
            line = p.lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        self.assertTrue(line, "no line from %r in %d s: %s" % (
            p.args, timeout, p.stderr.read() if p.poll() is not None else "(still running)"))
        return line

    def rest(self, p):
        """What p printed after the lines taken, once it has exited."""
        p.reader.join(TIMEOUT)
        out = []
        while not p.lines.empty():
            out.append(p.lines.get())
        return "".join(out)

    def lease(self, d, name):
        r = d.get("/v1/services/" + name)
        return r.json if r.status == 200 else None

    # ---- lint ----------------------------------------------------------

    def test_lint(self):
        files = [os.path.join(PKG, "index.js")] + [self.script(n) for n in SCRIPTS]
        for f in files:
            r = subprocess.run([NODE, "--check", f], capture_output=True, text=True)
            if f.endswith("using.mjs") and r.returncode != 0 and "using" in r.stderr:
                continue    # `await using` needs a newer node; see test_close
            self.assertEqual(r.returncode, 0, "%s: %s" % (f, r.stderr))
        # No TypeScript here: a structural check of index.d.ts. Every
        # export of index.js is declared there, and its brackets balance.
        with open(os.path.join(PKG, "index.js")) as f:
            js = f.read()
        with open(os.path.join(PKG, "index.d.ts")) as f:
            dts = f.read()
        exports = set(re.findall(r"^export (?:const|class|function|async function) (\w+)", js, re.M))
        self.assertIn("acquire", exports)
        declared = set(re.findall(r"^export (?:const|class|function|interface) (\w+)", dts, re.M))
        self.assertEqual(exports - declared, set(), "exports of index.js without a type")
        code = re.sub(r"//[^\n]*|/\*.*?\*/", "", dts, flags=re.S)
        for o, c in ("{}", "()", "[]"):
            self.assertEqual(code.count(o), code.count(c), "index.d.ts: unbalanced %s%s" % (o, c))
        with open(os.path.join(PKG, "package.json")) as f:
            pkg = json.load(f)
        self.assertEqual(pkg["type"], "module")
        self.assertEqual(pkg["types"], "./index.d.ts")
        self.assertEqual(pkg["exports"]["."]["default"], "./index.js")
        self.assertFalse(pkg.get("dependencies"), "no dependencies")
        for f in pkg["files"]:
            self.assertTrue(os.path.exists(os.path.join(PKG, f)), f)

    # ---- the calls -----------------------------------------------------

    def test_calls(self):
        d = self.berthd()
        out = json.loads(self.node("calls", d.addr).stdout)
        a = out["acquired"]
        self.assertEqual(re.fullmatch(r"[0-9a-f]{32}", a["token"]) is not None, True, a)
        self.assertEqual((a["name"], a["proto"], a["ttl"], a["meta"], a["host"]),
                         ("calls", "both", 60, {"zone": "a"}, "127.0.0.1"))
        self.assertEqual(out["lookup"]["port"], a["port"])
        self.assertNotIn("token", out["lookup"])
        self.assertEqual(out["waited"]["name"], "later")
        self.assertEqual(sorted(s["name"] for s in out["list"]["services"]), ["calls", "later"])
        self.assertIsInstance(out["list"]["index"], int)
        (i0, n0), (i1, n1) = out["watch"]
        self.assertEqual(sorted(n0), ["calls", "later"])
        self.assertGreater(i1, i0)
        self.assertEqual(sorted(n1), ["calls", "later", "third"])
        self.assertEqual(out["renewed"]["ttl"], 120)
        self.assertEqual(out["after"], ["calls"])
        # pid: the script's, which has exited: berthd ends that lease.
        wait_for(lambda: self.lease(d, "calls") is None, 10, "the owner's lease to end")
        self.assertEqual(out["ready"], "not_found")

    def test_watch(self):
        d = self.berthd()
        self.assertEqual(self.node("watch", d.addr).stdout.splitlines(),
                         ['[true,["w"]]', "1", "cluster_disabled 404"])

    def test_ready_lookup(self):
        d = self.berthd()
        r = d.acquire("served", ttl=60)
        port = r.json["port"]
        script = os.path.join(self.tmp, "ready.mjs")
        with open(script, "w") as f:
            f.write('import { lookup } from "%s";\n'
                    'const l = await lookup("served", { wait: 20, ready: true });\n'
                    'console.log(l.port, l.ready);\n' % os.path.join(PKG, "index.js"))
        p = self.start([NODE, script], self.env(d.addr))
        time.sleep(0.5)
        self.assertIsNone(p.poll(), "the lookup waits for the port to be served")
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        self.assertEqual(p.wait(TIMEOUT), 0, p.stderr.read())
        self.assertEqual(self.rest(p), "%d true\n" % port)

    # ---- errors --------------------------------------------------------

    def test_errors(self):
        d = self.berthd()
        lines = self.node("errors", d.addr).stdout.splitlines()
        got = {l[0]: l[1:] for l in map(json.loads, lines)}
        want = {
            "name_taken": ("name_taken", 409), "invalid_name": ("invalid_name", 400),
            "invalid_field": ("invalid_field", 400), "pid_not_visible": ("pid_not_visible", 400),
            "cluster_disabled": ("cluster_disabled", 400),
            "cluster_lookup": ("cluster_disabled", 404),
            "port_unavailable": ("port_unavailable", 409), "not_found": ("not_found", 404),
            "bad_token": ("bad_token", 403), "release_bad_token": ("bad_token", 403),
            "release_not_found": ("not_found", 404), "reacquire_live": ("name_taken", 409),
        }
        self.assertEqual(set(got), set(want))
        for what, (code, status) in want.items():
            c, s, message, is_berth, name = got[what]
            self.assertEqual((c, s, is_berth, name), (code, status, True, "BerthError"), what)
            self.assertTrue(message, what)
        self.assertIn("'taken'", got["name_taken"][2])

    def test_pool_exhausted(self):
        d = self.berthd(*private_pool(1))
        self.assertEqual(d.acquire("one").status, 201)
        p = os.path.join(self.tmp, "pool.mjs")
        with open(p, "w") as f:
            f.write('import { acquire } from "%s";\n'
                    'await acquire("two").catch((e) => console.log(e.code, e.status));\n'
                    % os.path.join(PKG, "index.js"))
        r = subprocess.run([NODE, p], env=self.env(d.addr), capture_output=True,
                           text=True, timeout=TIMEOUT)
        self.assertEqual(r.stdout, "pool_exhausted 503\n", r)

    def test_unreachable(self):
        addr = self.dead_addr()
        e = json.loads(self.node("unreachable", addr, addr).stdout)
        self.assertEqual(e["message"], "cannot reach berthd at %s: connection refused "
                         "(is berthd running?)" % addr)
        self.assertEqual((e["code"], e["status"], e["addr"], e["unreachable"], e["berth"]),
                         ("unreachable", 0, addr, True, True))
        sock = "unix:" + os.path.join(self.tmp, "nothing.sock")
        e = json.loads(self.node("unreachable", addr, sock).stdout)
        self.assertEqual(e["message"], "cannot reach berthd at %s: no such file or "
                         "directory (is berthd running?)" % sock)
        e = json.loads(self.node("unreachable", addr, "nonsense").stdout)
        self.assertEqual(e["code"], "invalid_addr")

    # ---- holding a lease -----------------------------------------------

    def hold(self, d, *args):
        p = self.start([NODE, self.script("hold")] + list(args), self.env(d.addr))
        info = json.loads(self.first_line(p))
        self.assertTrue(info["held"])
        self.assertEqual(self.lease(d, "held")["port"], info["port"])
        return p, info

    def test_hold_sigterm_sigint(self):
        d = self.berthd()
        for sig in (signal.SIGTERM, signal.SIGINT):
            releases = d.metric("berth_releases_total")
            p, _ = self.hold(d)
            p.send_signal(sig)
            # The process ends by the signal, as it would without berth.
            self.assertEqual(p.wait(TIMEOUT), -sig, p.stderr.read())
            # Released before the exit, not by a TTL or an owner's death.
            self.assertIsNone(self.lease(d, "held"), sig)
            self.assertEqual(d.metric("berth_releases_total"), releases + 1)

    def test_hold_own_listener(self):
        # With a SIGTERM listener of its own the program decides: the
        # lease is still there in its handler, which closes it; the
        # process then ends as its loop runs dry.
        d = self.berthd()
        p, _ = self.hold(d, "own")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(TIMEOUT), 0, p.stderr.read())
        self.assertEqual(self.rest(p), "own handler, lease true\n")
        self.assertIsNone(self.lease(d, "held"))

    def test_hold_renews(self):
        d = self.berthd()
        p = self.start([NODE, self.script("reclaim")], self.env(d.addr))
        json.loads(self.first_line(p))
        first = self.lease(d, "lapse")
        wait_for(lambda: self.lease(d, "lapse")["renewed_at"] != first["renewed_at"],
                 10, "a renewal")
        time.sleep(3)       # longer than the TTL: renewals keep it
        self.assertIsNotNone(self.lease(d, "lapse"))

    def test_close(self):
        d = self.berthd()
        out = json.loads(self.node("close", d.addr).stdout)
        self.assertEqual(out, {"symbol": "symbol", "closed": "not_found",
                               "dispose": "function", "disposed": "not_found",
                               "atexit": True, "kept": False})
        self.assertIsNone(self.lease(d, "atexit"), "released when the loop ran dry")
        self.assertIsNotNone(self.lease(d, "kept"), "hold: false is not released")
        r = subprocess.run([NODE, "--check", self.script("using")], capture_output=True)
        if r.returncode != 0:
            print("node %s has no `await using`: that form is not run" %
                  subprocess.run([NODE, "--version"], capture_output=True,
                                 text=True).stdout.strip())
            return
        r = self.node("using", d.addr)
        self.assertEqual(r.stdout, "inside true\nafter not_found\n")

    def test_reclaim_after_lapse(self):
        # berthd on a Unix socket, so it comes back at the same address.
        sock = os.path.join(self.tmp, "b.sock")
        d = self.berthd("--listen", "unix:" + sock)
        p = self.start([NODE, self.script("reclaim")], self.env("unix:" + sock))
        first = json.loads(self.first_line(p))
        d.kill9()
        time.sleep(3)       # past the lease's 2 s TTL
        d.restart()
        while True:
            line = self.first_line(p).split()
            if line[0] == "reclaimed":
                break
            self.assertEqual(line, ["renew-failed", "unreachable"])
        self.assertEqual(line, ["reclaimed", str(first["port"]), first["token"]])
        self.assertEqual(self.lease(d, "lapse")["port"], first["port"])
        # A revoke ends it for good: the token is forgotten.
        self.assertEqual(d.delete("/v1/services/lapse?force=1").status, 204)
        self.assertEqual(self.first_line(p).split(), ["lost", "bad_token"])
        self.assertIsNone(self.lease(d, "lapse"))

    # ---- LISTEN_FDS ----------------------------------------------------

    def test_berth_run_fd(self):
        d = self.berthd()
        p = self.start([BERTH_CLI, "run", "--fd", "adopt", "--", NODE, self.script("fd")],
                       self.env(d.addr))
        info = json.loads(self.first_line(p))
        lease = self.lease(d, "adopt")
        self.assertEqual(info, {"fds": [{"fd": 3, "name": "adopt"}], "port": lease["port"]})
        with socket.create_connection(("127.0.0.1", lease["port"]), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            self.assertTrue(s.makefile("rb").read().endswith(b"adopted\n"))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(TIMEOUT), 0, p.stderr.read())
        self.assertIsNone(self.lease(d, "adopt"))
        # LISTEN_PID of another process: not ours.
        r = self.node("fd_other_pid", d.addr, LISTEN_PID="1", LISTEN_FDS="1",
                      LISTEN_FDNAMES="x")
        self.assertEqual(json.loads(r.stdout), [[], [], False])

    # ---- addresses -----------------------------------------------------

    def test_unix_and_explicit_addr(self):
        sock = os.path.join(self.tmp, "b.sock")
        d = self.berthd("--listen", "127.0.0.1:0,unix:" + sock)
        dead = self.dead_addr()
        # An explicit address wins over BERTH_ADDR (here a dead one).
        out = json.loads(self.node("addr", dead, "unix:" + sock).stdout)
        self.assertEqual(out, {"addr": "unix:" + sock, "seen": ["where"], "same": True,
                               "env": "unreachable"})
        # BERTH_ADDR=unix:... for the module functions.
        out = json.loads(self.node("addr", "unix:" + sock, d.addr).stdout)
        self.assertEqual(out["env"], 0)
        out = json.loads(self.node("addr", "unix:" + sock, "").stdout)
        self.assertEqual(out["addr"], "unix:" + sock, "an empty address is BERTH_ADDR's")

    def test_ipv6(self):
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError as e:
            self.skipTest("no IPv6 loopback here: %s" % e)
        d = self.berthd("--listen", "[::1]:0")
        self.assertTrue(d.addr.startswith("[::1]:"), d.addr)
        out = json.loads(self.node("addr", self.dead_addr(), d.addr).stdout)
        self.assertEqual((out["seen"], out["same"]), (["where"], True))

    # ---- npm -----------------------------------------------------------

    def test_npm_install_offline(self):
        npm = shutil.which("npm")
        if not npm:
            self.skipTest("npm is not on PATH: the install is not tried")
        proj = os.path.join(self.tmp, "proj")
        os.mkdir(proj)
        with open(os.path.join(proj, "package.json"), "w") as f:
            json.dump({"name": "proj", "version": "1.0.0", "type": "module", "private": True}, f)
        env = clean_env(npm_config_cache=os.path.join(self.tmp, "npm-cache"),
                        npm_config_update_notifier="false", HOME=self.tmp)
        r = subprocess.run([npm, "install", "--offline", "--no-audit", "--no-fund", PKG],
                           cwd=proj, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r)
        d = self.berthd()
        with open(os.path.join(proj, "main.js"), "w") as f:
            f.write('import { acquire, Client, listenFds, BerthError } from "berth";\n'
                    'const l = await acquire("npm", { ttl: 30 });\n'
                    'console.log(typeof Client, typeof listenFds, typeof BerthError, l.port > 0);\n'
                    'await l.close();\n')
        r = subprocess.run([NODE, "main.js"], cwd=proj, env=self.env(d.addr),
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stdout), (0, "function function function true\n"), r)
        self.assertIsNone(self.lease(d, "npm"))



if __name__ == "__main__":
    main()
