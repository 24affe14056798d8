#!/usr/bin/env python3
"""test_guides: run the examples of docs/guide-shell.md, guide-python.md,
guide-node.md and guide-go.md against a real berthd, in the order a reader
would.

Every fenced code block in a guide carries a marker in its info string,
after the language:

    ```sh test=ID          run it, then check_<guide>_<ID> (below) checks it
    ```sh test=ID bg       a long-running command (a server, "in a second
                           terminal"): started as its own process; its
                           check waits for it, the test stops it by pid
    ```sh test=ID file=F   saved as F in the working directory, not run
                           (a script or module that later blocks use);
                           only syntax-checked
    ```text output=ID      what block ID prints on stdout
    ```text stderr=ID      what block ID prints on stderr
    ```sh norun            illustrative only, not run (keep these rare)

<guide> is shell, python, node or go, and a "-" in ID is "_" in the method's
name (test=curl-wait: check_shell_curl_wait). A block without one of these
markers fails the test, as does a test=ID block (other than file=) with no
check method, or an output block that does not match.
Outputs are compared line by line with tokens (32 hex digits), RFC 3339
times and numbers of 4 or more digits (ports) masked, and runs of spaces
collapsed, since those differ from run to run.

How blocks run, per language, with BERTH_ADDR set to the test's berthd
(which also listens on a Unix socket), the berth CLI ($BERTH_CLI) first on
PATH, and a fresh working directory per guide:
  sh      all plain blocks of a guide run in one bash, one after the other,
          as if pasted into one terminal (variables carry over); bg blocks
          run in their own bash
  python  saved as ID.py and run with python3
  js      saved as ID.mjs and run with node (the Node guide is skipped,
          with one line saying why, without node >= 18 and npm on PATH;
          its install block gets ./berth, a link to this source tree)
  go      a program: saved as ID/main.go, next to a go.mod that is the
          guide's own ```go.mod file=go.mod block (its replace line points
          at ../berth, a link to this source tree), built there as ID/ID
          and run in ID/ (a file= block is DIR/main.go, built as DIR/DIR);
          builds are offline (GOPROXY=off, GOFLAGS=-mod=mod) with a
          GOCACHE and GOPATH of the test's, so nothing is written outside
          the test's temp dirs. The Go guide is skipped, with one line
          saying why, without go >= 1.19 on PATH.
before_<guide>_<ID> methods run before a block (to note what the check
will compare, or to point a block at the Unix socket); finish_<guide> runs
at the end. Every guide runs on a fresh berthd, and nothing but the
guide's own blocks may register a name there: a before_ hook or check
that leaves a new name behind fails the test (a check of a bg block may
see only that block's own leases appear), so an example that needs a
service the guide never starts fails as it would for a reader.

Run: BERTHD=.../src/berthd BERTH_CLI=.../clients/cli/berth \
     PYTHONPATH=tests/e2e python3 tests/e2e/test_guides.py -v
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from berthtest import BerthTestCase, main, private_pool, wait_for

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")
BERTH_CLI = os.environ.get("BERTH_CLI", "berth")

# The Python client, which the Python guide's examples import.
PYCLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "clients", "python")

FENCE = re.compile(r"^```(.*)$")
TIMEOUT = 30            # seconds for one block that is not a server
GO_BUILD_TIMEOUT = 300  # seconds for one go build (a cold one, on a busy host)


class Block:
    def __init__(self, guide, lineno, info, code):
        self.guide, self.lineno, self.code = guide, lineno, code
        words = info.split()
        self.lang = words[0] if words else ""
        self.attrs = {}
        self.flags = set()
        for w in words[1:]:
            if "=" in w:
                k, v = w.split("=", 1)
                self.attrs[k] = v
            else:
                self.flags.add(w)
        self.id = self.attrs.get("test")

    def where(self):
        return "docs/%s line %d" % (self.guide, self.lineno)


def parse(guide):
    """The fenced blocks of a guide, in order."""
    blocks, info, code, start = [], None, [], 0
    with open(os.path.join(DOCS, guide)) as f:
        for n, line in enumerate(f, 1):
            m = FENCE.match(line.rstrip("\n"))
            if info is None:
                if m:
                    info, code, start = m.group(1).strip(), [], n
            elif m and not m.group(1).strip():
                blocks.append(Block(guide, start, info, "".join(code)))
                info = None
            else:
                code.append(line)
    assert info is None, "docs/%s: unclosed fence at line %d" % (guide, start)
    return blocks


def mask(text):
    """Text with what differs per run masked, as a list of lines."""
    text = re.sub(r"\b[0-9a-f]{32}\b", "TOKEN", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TIME", text)
    # the creator's uid: the guide's reader is not the test's
    text = re.sub(r'"uid":(\d+|null)', '"uid":UID', text)
    # an owner's pid, whatever its digits (a fresh PID namespace has low ones)
    text = re.sub(r"\bpid \d+\b", "pid PORT", text)
    text = re.sub(r"\b\d{4,}\b", "PORT", text)
    # name_taken's age and time left (berthd's clock, not the guide's)
    text = re.sub(r"\b\d+[smhd] old\b", "AGE old", text)
    text = re.sub(r"\bends in \d+[smhd]\b", "ends in AGE", text)
    return [re.sub(r"[ \t]+", " ", l).strip() for l in text.strip().splitlines()]


class Result:
    def __init__(self, stdout, stderr, rc):
        self.stdout, self.stderr, self.rc = stdout, stderr, rc

    def __repr__(self):
        return "<rc %r stdout %r stderr %r>" % (self.rc, self.stdout, self.stderr)


class Background:
    """A block running as its own process; output goes to files."""

    def __init__(self, argv, cwd, env, name):
        self.out_path = os.path.join(cwd, "." + name + ".out")
        self.err_path = os.path.join(cwd, "." + name + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL,
                                         preexec_fn=default_sigint)
        self.pid = self.proc.pid

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Send sig and wait; the exit status (negative: killed by a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def __repr__(self):
        return "<pid %d rc %r stdout %r stderr %r>" % (
            self.pid, self.proc.poll(), self.stdout(), self.stderr())


class Session:
    """One bash reading blocks from a pipe, like a terminal a reader pastes into."""

    def __init__(self, cwd, env):
        self.mark = "@@guide-%d@@" % os.getpid()
        r, self.w = os.pipe()
        self.out_path = os.path.join(cwd, ".session.out")
        self.err_path = os.path.join(cwd, ".session.err")
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        # Commands come on their own pipe, so nothing a block runs can eat
        # them from stdin.
        self.proc = subprocess.Popen(["bash", "/dev/fd/%d" % r], cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, pass_fds=(r,),
                                     preexec_fn=default_sigint)
        os.close(r)
        self.out_pos = self.err_pos = 0

    def run(self, code, timeout=TIMEOUT):
        script = ("%s\nprintf '%%s %%d\\n' '%s' \"$?\"\nprintf '%%s\\n' '%s' >&2\n"
                  % (code.rstrip("\n"), self.mark, self.mark))
        os.write(self.w, script.encode())
        deadline = time.monotonic() + timeout
        pat = re.compile(r"%s (\d+)\n" % re.escape(self.mark))
        while True:
            out = self._read(self.out_path, self.out_pos)
            err = self._read(self.err_path, self.err_pos)
            m = pat.search(out)
            if m and (self.mark + "\n") in err:
                break
            if self.proc.poll() is not None:
                raise AssertionError("the shell exited (%d) during the block;"
                                     " stdout %r stderr %r" % (self.proc.returncode, out, err))
            if time.monotonic() > deadline:
                raise AssertionError("block did not finish in %d s; stdout %r "
                                     "stderr %r" % (timeout, out, err))
            time.sleep(0.05)
        self.out_pos += len(out[:m.end()].encode())
        e = err.index(self.mark + "\n")
        self.err_pos += len(err[:e + len(self.mark) + 1].encode())
        return Result(out[:m.start()], err[:e], int(m.group(1)))

    @staticmethod
    def _read(path, pos):
        with open(path, "rb") as f:
            f.seek(pos)
            return f.read().decode(errors="replace")

    def close(self):
        try:
            os.close(self.w)
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()


def in_tree(pid, root):
    """Whether process pid is root or one of its descendants."""
    while pid and pid > 1:
        if pid == root:
            return True
        try:
            with open("/proc/%d/stat" % pid) as f:
                # The command may hold spaces and parentheses: ppid is the
                # second field after the last ')'.
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def restore_env(key, value):
    """Put os.environ[key] back as it was (None: unset)."""
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


def default_sigint():
    """In the child: SIGINT as in a terminal, even if make runs us with it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class GuideTest(BerthTestCase):

    # ---- the runner ------------------------------------------------------

    def run_guide(self, guide, key):
        """Run every marked block of docs/guide, checking each."""
        self.key = key
        blocks = parse(guide)
        self.assertTrue(blocks, guide)
        by_id = {}
        for b in blocks:
            marked = b.id or "output" in b.attrs or "stderr" in b.attrs or "norun" in b.flags
            self.assertTrue(marked, "%s: a code block without a marker "
                            "(test=ID, output=ID, stderr=ID or norun): %r"
                            % (b.where(), b.code[:80]))
            if b.id:
                self.assertNotIn(b.id, by_id, "%s: duplicate test=%s" % (b.where(), b.id))
                by_id[b.id] = b
                if "file" not in b.attrs:
                    self.assertTrue(hasattr(self, self.method("check", b.id)),
                                    "%s: test=%s has no %s" % (b.where(), b.id,
                                                               self.method("check", b.id)))
        for b in blocks:
            for k in ("output", "stderr"):
                if k in b.attrs:
                    self.assertIn(b.attrs[k], by_id, "%s: %s=%s names no block"
                                  % (b.where(), k, b.attrs[k]))

        self.tmp = tempfile.mkdtemp(prefix="berth-guides-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.work = os.path.join(self.tmp, "work")
        os.mkdir(self.work)
        self.sock = os.path.join(self.tmp, "berth.sock")
        self.d = self.berthd("--listen", "127.0.0.1:0,unix:" + self.sock,
                             *private_pool())
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env["BERTH_ADDR"] = self.d.addr
        cli_dir = os.path.dirname(os.path.abspath(BERTH_CLI))
        env["PATH"] = cli_dir + os.pathsep + env.get("PATH", "")
        self.env = env
        self.bgs = []
        self.addCleanup(self._kill_bgs)
        self.session = None
        self.results = {}
        self.programs = {}

        for b in blocks:
            if b.id is None:
                if "output" in b.attrs or "stderr" in b.attrs:
                    self.compare(b)
                continue
            before = getattr(self, self.method("before", b.id), None)
            self.block_env = dict(self.env)
            if before:
                names = self.names()
                before()
                self.assert_none_added(names, "before", b)
            if "file" in b.attrs:
                self.save(b)
                continue
            res = self.run_block(b)
            self.results[b.id] = res
            names = self.names()
            try:
                getattr(self, self.method("check", b.id))(res)
            except AssertionError as e:
                raise AssertionError("%s (test=%s): %s\n%r" % (b.where(), b.id, e, res)) from None
            self.assert_none_added(names, "check", b,
                                   res if isinstance(res, Background) else None)
        finish = getattr(self, "finish_" + key, None)
        if finish:
            finish()
        if self.session:
            self.session.close()
            self.session = None

    def method(self, kind, bid):
        return "%s_%s_%s" % (kind, self.key, bid.replace("-", "_"))

    def names(self):
        """The names of the live leases."""
        r = self.d.get("/v1/services")
        self.assertEqual(r.status, 200, r)
        return {s["name"] for s in r.json["services"]}

    def assert_none_added(self, before, kind, b, bg=None):
        """Fail if a hook left a name registered that the guide did not:
        the examples after it would work only under the test. A bg block's
        own leases (owned by it or a child) may appear during its check."""
        for name in sorted(self.names() - before):
            lease = self.lease(name)
            if lease is None:
                continue
            if bg is not None and lease["pid"] and in_tree(lease["pid"], bg.pid):
                continue
            raise AssertionError("%s (test=%s): %s registered %r, which no block "
                                 "of the guide did: the guide must start what "
                                 "its examples need" % (b.where(), b.id,
                                                        self.method(kind, b.id), name))

    def _kill_bgs(self):
        for bg in self.bgs:
            bg.kill()
        if self.session:
            self.session.close()

    def save(self, b):
        if b.lang == "go.mod":
            self.save_gomod(b)
            return
        if b.lang == "go":
            d, main_go = os.path.split(b.attrs["file"])
            self.assertEqual((os.path.dirname(d), main_go), ("", "main.go"),
                             "%s: a Go file= block is DIR/main.go" % b.where())
            self.go_build(b, d)
            return
        path = os.path.join(self.work, b.attrs["file"])
        with open(path, "w") as f:
            f.write(b.code)
        check = {"sh": ["sh", "-n", path],
                 "python": ["python3", "-m", "py_compile", path],
                 "js": ["node", "--check", path]}[b.lang]
        r = subprocess.run(check, capture_output=True, text=True, cwd=self.work)
        self.assertEqual(r.returncode, 0, "%s: %s does not parse: %s"
                         % (b.where(), b.attrs["file"], r.stderr))

    def save_gomod(self, b):
        """Keep the guide's go.mod for the programs after it, once go
        itself has read it."""
        d = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(d, "go.mod"), "w") as f:
            f.write(b.code)
        r = subprocess.run(["go", "mod", "edit", "-json"], cwd=d, env=self.env,
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, "%s: go.mod does not parse: %s"
                         % (b.where(), r.stderr))
        self.gomod = b.code

    def go_build(self, b, d):
        """Build Go block b as the program DIR/DIR (DIR/main.go, beside the
        guide's go.mod), as a reader would; its path."""
        self.assertIsNotNone(getattr(self, "gomod", None), "%s: a Go program "
                             "before the guide's go.mod block" % b.where())
        path = os.path.join(self.work, d)
        os.mkdir(path)
        for name, text in (("main.go", b.code), ("go.mod", self.gomod)):
            with open(os.path.join(path, name), "w") as f:
                f.write(text)
        r = subprocess.run(["go", "build", "-o", d], cwd=path, env=self.env,
                           capture_output=True, text=True, timeout=GO_BUILD_TIMEOUT,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, "%s: %s/main.go does not build: %s"
                         % (b.where(), d, r.stderr))
        return os.path.join(path, d)

    def run_block(self, b):
        bg = "bg" in b.flags
        cwd = self.work
        if b.lang == "sh":
            if bg:
                argv = ["bash", "-c", b.code]
            else:
                if self.block_env != self.env:
                    raise AssertionError("a before_ hook cannot change the env "
                                         "of the shell session")
                if self.session is None:
                    self.session = Session(self.work, self.env)
                return self.session.run(b.code)
        elif b.lang in ("python", "js"):
            ext, interp = {"python": (".py", "python3"), "js": (".mjs", "node")}[b.lang]
            path = os.path.join(self.work, b.id + ext)
            with open(path, "w") as f:
                f.write(b.code)
            argv = [interp, path]
        elif b.lang == "go":
            argv = [self.go_build(b, b.id)]
            cwd = os.path.dirname(argv[0])
        else:
            raise AssertionError("%s: cannot run a %r block" % (b.where(), b.lang))
        # for a check that runs the program again (the same, elsewhere)
        self.programs[b.id] = (argv, cwd)
        if bg:
            p = Background(argv, cwd, self.block_env, b.id)
            self.bgs.append(p)
            return p
        try:
            r = subprocess.run(argv, cwd=cwd, env=self.block_env,
                               capture_output=True, text=True, timeout=TIMEOUT,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s (test=%s): did not finish in %d s (does it "
                                 "wait for something the guide never starts?)"
                                 % (b.where(), b.id, TIMEOUT)) from None
        return Result(r.stdout, r.stderr, r.returncode)

    def compare(self, b):
        kind = "output" if "output" in b.attrs else "stderr"
        res = self.results.get(b.attrs[kind])
        self.assertIsNotNone(res, "%s: %s=%s comes before that block ran"
                             % (b.where(), kind, b.attrs[kind]))
        got = res.stdout if kind == "output" else res.stderr
        self.assertEqual(mask(got), mask(b.code), "%s: the %s of %s differs from "
                         "the guide" % (b.where(), kind, b.attrs[kind]))

    # ---- helpers for the checks ------------------------------------------

    def lease(self, name):
        """The live lease of name, or None."""
        r = self.d.get("/v1/services/" + name)
        if r.status == 404:
            return None
        self.assertEqual(r.status, 200, r)
        return r.json

    def wait_lease(self, name, timeout=10):
        return wait_for(lambda: self.lease(name), timeout, "a lease for %r" % name)

    def wait_gone(self, name, timeout=5):
        wait_for(lambda: self.lease(name) is None, timeout, "%r to be released" % name)

    def metric(self, name):
        body = self.d.get("/metrics").body
        m = re.search(r"^%s (\d+)" % re.escape(name), body, re.M)
        self.assertTrue(m, name)
        return int(m.group(1))

    def http_status(self, lease):
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                "http://%s:%d/" % (lease["host"], lease["port"]), timeout=10) as r:
            return r.status

    def assert_ok(self, res):
        self.assertEqual(res.rc, 0, res)

    # ---- the shell guide -------------------------------------------------

    def test_shell(self):
        self.assertTrue(shutil.which("curl"), "curl is needed")
        self.run_guide("guide-shell.md", "shell")

    def check_shell_setup(self, res):
        self.assert_ok(res)
        self.assertIn("broker at %s is up" % self.d.addr, res.stdout)

    def check_shell_run_api(self, bg):
        api = self.wait_lease("api")
        self.assertEqual(api["pid"], bg.pid, "berth run owns the lease")
        self.assertEqual(api["ttl"], 30)
        wait_for(lambda: self._answers(api), 10, "the api server to answer")
        self.api = api

    def _answers(self, lease):
        try:
            return self.http_status(lease) == 200
        except OSError:
            return False

    def check_shell_lookup(self, res):
        self.assert_ok(res)
        self.assertEqual(res.stdout.splitlines(),
                         [str(self.api["port"]), "127.0.0.1:%d" % self.api["port"], "200"])

    def check_shell_run_web(self, bg):
        web = self.wait_lease("web")
        self.assertEqual(web["pid"], bg.pid)
        self.assertNotEqual(web["port"], self.api["port"])
        wait_for(lambda: "web: api is at" in bg.stdout(), 10, "web's first line")
        self.assertEqual(bg.stdout().splitlines()[0],
                         "web: api is at 127.0.0.1:%d" % self.api["port"])
        wait_for(lambda: self._answers(web), 10, "the web server to answer")
        self.web = (bg, web)

    def check_shell_wait_db(self, res):
        self.assert_ok(res)
        self.assertIn("'db'", res.stderr)

    def check_shell_acquire(self, res):
        self.assert_ok(res)
        cache = self.lease("cache")
        self.assertIsNotNone(cache)
        self.assertEqual(res.stdout, "cache: port %d\n" % cache["port"])
        self.assertEqual(cache["ttl"], 30)
        self.assertIsNone(cache["pid"])

    def before_shell_worker(self):
        self.releases = self.metric("berth_releases_total")

    def check_shell_worker(self, res):
        self.assert_ok(res)
        port = int(res.stdout.split()[2])
        self.assertEqual(res.stdout.splitlines()[1], "127.0.0.1:%d" % port)
        self.assertIsNone(self.lease("worker"))
        self.assertEqual(self.metric("berth_releases_total"), self.releases + 1,
                         "the trap released the lease (not the owner's death)")
        # The name is sticky: acquiring it again gives the port the script printed.
        r = self.d.acquire("worker")
        self.assertEqual(r.json["port"], port, r)
        # With the name held by someone else, the script stops at the
        # acquire, with berth's error and exit status (4, conflict), and
        # runs nothing after it: no line on stdout, no release.
        try:
            p = self.run_worker_script(self.env)
            self.assertEqual(self.lease("worker")["port"], port, "still held")
        finally:
            self.d.release("worker", r.json["token"])
        self.assertEqual((p.returncode, p.stdout), (4, ""), p)
        self.assertRegex(p.stderr, r"\Aberth: [^\n]*'worker'[^\n]*\(name_taken\)\n\Z")
        # The same with no broker at the address: 69.
        addr = self.dead_addr()
        p = self.run_worker_script(dict(self.env, BERTH_ADDR=addr))
        self.assertEqual((p.returncode, p.stdout), (69, ""), p)
        self.assertRegex(p.stderr, r"\Aberth: no broker at %s [^\n]*\n\Z" % re.escape(addr))

    def run_worker_script(self, env):
        return subprocess.run(["sh", "worker.sh"], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)

    def before_shell_renew(self):
        self.releases = self.metric("berth_releases_total")

    def check_shell_renew(self, res):
        self.assert_ok(res)
        self.assertRegex(res.stdout, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n$")
        self.assertIsNone(self.lease("jobs"))
        self.assertEqual(self.metric("berth_releases_total"), self.releases + 1)

    def check_shell_exit_codes(self, res):
        self.assert_ok(res)
        self.assertIn("port %d" % self.api["port"], res.stderr)

    def check_shell_case(self, res):
        self.assert_ok(res)
        self.assertEqual(res.stdout, "api is up on port %d\n" % self.api["port"])

    def check_shell_curl_acquire(self, res):
        self.assert_ok(res)
        lease = json.loads(res.stdout)
        self.assertEqual(self.lease("queue")["port"], lease["port"])
        self.queue = lease

    def check_shell_curl_lookup(self, res):
        self.assert_ok(res)
        first = json.loads(res.stdout.splitlines()[0])
        self.assertEqual(first["port"], self.queue["port"])
        self.assertNotIn("token", first)

    def check_shell_curl_renew(self, res):
        self.assert_ok(res)
        self.assertEqual(json.loads(res.stdout)["ttl"], 60)
        self.assertEqual(self.lease("queue")["ttl"], 60)

    def check_shell_curl_wait(self, res):
        self.assert_ok(res)
        mail = json.loads(res.stdout)
        self.assertEqual(mail["name"], "mail")
        self.assertEqual(mail["ttl"], 30)

    def check_shell_curl_watch(self, res):
        self.assert_ok(res)
        self.assertEqual(res.stdout, "queue is gone\n")
        self.assertIsNone(self.lease("queue"))

    def check_shell_curl_errors(self, res):
        self.assert_ok(res)

    def check_shell_list(self, res):
        self.assert_ok(res)
        names = [l.split()[0] for l in res.stdout.splitlines()[1:]]
        self.assertEqual(names, ["api", "cache", "mail", "web"])

    def finish_shell(self):
        # Ctrl-C in the second and third terminals: http.server exits 0 on
        # SIGINT, so does berth run, after releasing the lease.
        bg, _ = self.web
        self.assertEqual(bg.stop(signal.SIGINT), 0, bg)
        self.assertIsNone(self.lease("web"))
        api_bg = self.bgs[0]
        self.assertEqual(api_bg.stop(signal.SIGINT), 0, api_bg)
        self.assertIsNone(self.lease("api"))

    # ---- what the Python, Node and Go guides share -------------------
    #
    # The three client guides have the same arc (a service, a db, a
    # program waiting for it, errors, a watch, a job, a Unix socket, a
    # socket from berth run --fd); a check_<guide>_<ID> that is the same
    # for all three is one of these, under each guide's name.

    def _check_service(self, bg):
        api = self.wait_lease("api")
        self.assertEqual(api["pid"], bg.pid, "the service owns its lease")
        self.assertEqual(api["ttl"], 30)
        wait_for(lambda: bg.stdout(), 10, "the service's first line")
        self.assertEqual(bg.stdout(), "api: serving on port %d\n" % api["port"])
        self.assertEqual(self.http_status(api), 200)
        self.api = api

    def _check_db(self, bg):
        # The guide's own db: the service under another name.
        db = self.wait_lease("db")
        self.assertTrue(in_tree(db["pid"], bg.pid), "the db block owns the lease")
        wait_for(lambda: "db: serving on port" in bg.stdout(), 10, "the db's first line")
        self.db = (bg, db)

    def _check_client_app(self, res, api_line="api answers 200 hello from api"):
        self.assert_ok(res)
        _, db = self.db
        self.assertEqual(res.stdout.splitlines(),
                         ["db is at 127.0.0.1:%d" % db["port"], api_line])

    def _check_errors(self, res):
        self.assertEqual(res.rc, 1, res)
        self.assertEqual(res.stderr, "api is already running on port %d\n" % self.api["port"])
        # The same program with no broker at the address.
        addr = self.dead_addr()
        argv, cwd = self.programs["errors"]
        r = subprocess.run(argv, cwd=cwd, env=dict(self.env, BERTH_ADDR=addr),
                           capture_output=True, text=True, timeout=TIMEOUT,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr, "cannot reach berthd at %s: connection "
                         "refused (is berthd running?)\n" % addr)

    def _check_watch(self, res):
        # The lease the watch made a change with is gone again.
        self.assert_ok(res)
        self.assertEqual(self.names(), {"api", "db"})

    def _before_job(self):
        self.releases = self.metric("berth_releases_total")

    def _check_job(self, res):
        self.assert_ok(res)
        port = int(res.stdout.split()[-1])
        self.assertIsNone(self.lease("batch"))
        self.assertEqual(self.metric("berth_releases_total"), self.releases + 1,
                         "the job released its lease")
        # The name is sticky: acquiring it again gives the job's port.
        r = self.d.acquire("batch")
        self.assertEqual(r.json["port"], port, r)
        self.d.release("batch", r.json["token"])

    def _before_unix(self):
        self.block_env["BERTH_ADDR"] = "unix:" + self.sock

    def _check_unix(self, res):
        self.assert_ok(res)

    def _check_run_fd(self, bg, name):
        """A server under berth run --fd NAME: berth run holds the lease."""
        lease = self.wait_lease(name)
        self.assertEqual(lease["pid"], bg.pid, "berth run owns the lease")
        wait_for(lambda: "%s: serving on port" % name in bg.stdout(), 10,
                 "the %s server's first line" % name)
        self.assertEqual(bg.stdout(), "%s: serving on port %d\n" % (name, lease["port"]))
        self.assertEqual(self.http_status(lease), 200)
        self.run_fd = bg

    def _finish(self, stops, sigint_rc=None):
        """Stop each (Background, name, exit status) of stops with SIGTERM:
        it ends with that status (negative: by the signal) and its lease
        is released (not ended by its owner's death). With sigint_rc,
        then start the service again and stop it with SIGINT (Ctrl-C):
        the same, with that status."""
        for bg, name, rc in stops:
            releases = self.metric("berth_releases_total")
            self.assertEqual(bg.stop(signal.SIGTERM), rc, bg)
            self.assertIsNone(self.lease(name))
            self.assertEqual(self.metric("berth_releases_total"), releases + 1,
                             "%s released its lease on SIGTERM" % name)
            self.assertNotIn("Traceback", bg.stderr())
        if sigint_rc is None:
            return
        argv, cwd = self.programs["service"]
        bg = Background(argv, cwd, self.env, "service-again")
        self.bgs.append(bg)
        self.wait_lease("api")
        wait_for(lambda: "serving on port" in bg.stdout(), 10, "the service's first line")
        releases = self.metric("berth_releases_total")
        self.assertEqual(bg.stop(signal.SIGINT), sigint_rc, bg)
        self.assertIsNone(self.lease("api"))
        self.assertEqual(self.metric("berth_releases_total"), releases + 1,
                         "the service released its lease on SIGINT")

    # ---- the Python guide ------------------------------------------------

    def test_python(self):
        # The reader has run `pip install ./clients/python`; the test
        # points Python at the package instead.
        pp = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = PYCLIENT + (os.pathsep + pp if pp else "")
        self.addCleanup(restore_env, "PYTHONPATH", pp)
        self.run_guide("guide-python.md", "python")

    check_python_service = _check_service
    check_python_db = _check_db
    check_python_errors = _check_errors
    check_python_watch = _check_watch
    before_python_job = _before_job
    check_python_job = _check_job
    before_python_unix = _before_unix
    check_python_unix = _check_unix

    def check_python_client_app(self, res):
        self._check_client_app(res, "api answers 200")

    def check_python_files(self, bg):
        self._check_run_fd(bg, "files")

    def finish_python(self):
        # berth run passes SIGTERM on to the program (http.server dies of
        # it: 128 + 15), then releases; the service and the db leave their
        # with blocks, releasing, then end by the signal.
        self._finish(((self.run_fd, "files", 143),
                      (self.bgs[0], "api", -signal.SIGTERM),
                      (self.db[0], "db", -signal.SIGTERM)), sigint_rc=-signal.SIGINT)

    # ---- the Node guide --------------------------------------------------

    def test_node(self):
        node = shutil.which("node")
        if not node:
            raise unittest.SkipTest("node is not on PATH: docs/guide-node.md not run")
        v = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
        m = re.match(r"v(\d+)", v)
        if not m or int(m.group(1)) < 18:
            raise unittest.SkipTest("node %s is older than 18: docs/guide-node.md "
                                    "not run" % v.strip())
        if not shutil.which("npm"):
            raise unittest.SkipTest("npm is not on PATH: docs/guide-node.md not run")
        # npm offline, with a cache of its own and no update check: the
        # package has no dependencies, and the test must not touch the
        # network or the user's ~/.npm.
        cache = tempfile.mkdtemp(prefix="berth-npm-")
        self.addCleanup(shutil.rmtree, cache, ignore_errors=True)
        self.set_env({"npm_config_offline": "true",
                      "npm_config_update_notifier": "false",
                      "npm_config_cache": cache})
        self.run_guide("guide-node.md", "node")

    def set_env(self, env):
        """Set os.environ's keys of env for this test (the guide's
        blocks get them)."""
        for k, v in env.items():
            self.addCleanup(restore_env, k, os.environ.get(k))
            os.environ[k] = v

    def link_tree(self):
        """./berth in the working directory: the reader's berth tree, here
        the one this test runs from."""
        os.symlink(os.path.abspath(os.path.join(DOCS, "..")),
                   os.path.join(self.work, "berth"))

    before_node_install = link_tree

    def check_node_install(self, res):
        self.assert_ok(res)
        self.assertTrue(os.path.exists(os.path.join(self.work, "node_modules", "berth",
                                                    "index.js")), res)

    check_node_service = _check_service
    check_node_db = _check_db
    check_node_client_app = _check_client_app
    check_node_errors = _check_errors
    before_node_job = _before_job
    check_node_job = _check_job
    check_node_watch = _check_watch
    before_node_unix = _before_unix
    check_node_unix = _check_unix

    def check_node_run_web(self, bg):
        self._check_run_fd(bg, "web")

    def finish_node(self):
        # kill: the service and the db release their leases and end by
        # SIGTERM; berth run releases web's when node exits (0: web.mjs
        # closes its server on SIGTERM). Ctrl-C releases too, and ends the
        # process by SIGINT.
        self._finish(((self.bgs[0], "api", -signal.SIGTERM),
                      (self.db[0], "db", -signal.SIGTERM),
                      (self.run_fd, "web", 0)), sigint_rc=-signal.SIGINT)

    # ---- the Go guide ----------------------------------------------------

    def test_go(self):
        go = shutil.which("go")
        v = subprocess.run([go, "version"], capture_output=True,
                           text=True).stdout if go else ""
        m = re.search(r"\bgo(\d+)\.(\d+)", v)
        if not go:
            raise unittest.SkipTest("go is not on PATH: docs/guide-go.md not run")
        if not m or (int(m.group(1)), int(m.group(2))) < (1, 19):
            raise unittest.SkipTest("%s is older than go 1.19: docs/guide-go.md "
                                    "not run" % (v.strip() or go))
        # Offline builds (the client has no dependencies), with a build
        # cache and GOPATH of their own, one for all the guide's programs;
        # no go.work of the user's, no toolchain download.
        gotmp = tempfile.mkdtemp(prefix="berth-go-")
        self.addCleanup(rmtree_go, gotmp)
        self.set_env({"GOFLAGS": "-mod=mod", "GOPROXY": "off",
                      "GOCACHE": os.path.join(gotmp, "cache"),
                      "GOPATH": os.path.join(gotmp, "path"),
                      "GOWORK": "off", "GOTOOLCHAIN": "local"})
        self.run_guide("guide-go.md", "go")

    # The go.mod's replace line points at ../berth from a program's directory.
    before_go_gomod = link_tree

    check_go_service = _check_service

    def check_go_graceful(self, bg):
        # kill: the program's own shutdown releases the lease, and it exits 0.
        lease = self.wait_lease("graceful")
        self.assertEqual(lease["pid"], bg.pid)
        wait_for(lambda: bg.stdout(), 10, "graceful's first line")
        self.assertEqual(self.http_status(lease), 200)
        releases = self.metric("berth_releases_total")
        self.assertEqual(bg.stop(signal.SIGTERM), 0, bg)
        self.assertEqual(bg.stdout(), "graceful: serving on port %d\n"
                         "graceful: stopped\n" % lease["port"])
        self.assertIsNone(self.lease("graceful"))
        self.assertEqual(self.metric("berth_releases_total"), releases + 1,
                         "graceful released its lease")
        self.assertEqual(bg.stderr(), "")

    check_go_db = _check_db
    check_go_client_app = _check_client_app
    check_go_errors = _check_errors
    check_go_watch = _check_watch
    before_go_job = _before_job
    check_go_job = _check_job
    before_go_unix = _before_unix
    check_go_unix = _check_unix

    def check_go_run_web(self, bg):
        self._check_run_fd(bg, "web")

    def finish_go(self):
        # kill: the client releases the service's and the db's leases, then
        # they die of the signal (-15); web dies of it too (no lease of its
        # own), and berth run, which releases web's, exits 128 + 15.
        # Ctrl-C: the same with SIGINT.
        self._finish(((self.bgs[0], "api", -signal.SIGTERM),
                      (self.db[0], "db", -signal.SIGTERM),
                      (self.run_fd, "web", 143)), sigint_rc=-signal.SIGINT)
        for bg in self.bgs[0], self.db[0]:
            self.assertEqual(bg.stderr(), "")


def rmtree_go(path):
    """Remove a GOPATH: go makes its module cache read-only."""
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            try:
                os.chmod(os.path.join(root, d), 0o755)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
