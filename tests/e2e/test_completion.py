#!/usr/bin/env python3
"""bash completion for berth (clients/cli/berth-completion.bash).

Each case runs `bash --norc --noprofile -c` with a small harness: it
sources the completion file (and, in a second pass, the bash-completion
package first when it is installed), sets COMP_WORDS, COMP_CWORD,
COMP_LINE and COMP_POINT the way bash's readline would for a command line
with the cursor at its end, calls the function `complete -p berth` names,
and prints COMPREPLY one per line. The berth under test (BERTH_CLI) comes
first on PATH, so lease names come from a live berthd.
"""
import os
import re
import socket
import subprocess
import tempfile
import shutil
import time
import unittest

from berthtest import BerthTestCase, main

HERE = os.path.dirname(os.path.abspath(__file__))
COMPLETION = os.environ.get("BERTH_COMPLETION") or os.path.join(
    HERE, "..", "..", "clients", "cli", "berth-completion.bash")
BERTH_CLI = os.environ.get("BERTH_CLI", "berth")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"

# bash's default COMP_WORDBREAKS.
WORDBREAKS = " \t\n\"'><=;|&(:"

# What each command's getopt_long table takes (clients/cli/cmd-*.c), plus
# the global --addr and --json, which berth.c takes anywhere before "--".
COMMAND_OPTIONS = {
    "acquire": ["--port", "--ttl", "--proto", "--host", "--meta", "--pid",
                "--token", "--publish", "--env"],
    "renew": ["--token", "--ttl"],
    "release": ["--token"],
    "lookup": ["--wait", "--addr-only", "--ready", "--cluster", "--all"],
    "list": ["--probe", "--cluster"],
    "run": ["--ttl", "--port", "--host", "--proto", "--meta", "--need",
            "--timeout", "--fd", "--publish"],
    "who": ["--help"],
    "doctor": ["--help"],
    "nodes": [],
    "status": [],
    "health": [],
    "version": [],
    "revoke": [],
}
COMMANDS = sorted(list(COMMAND_OPTIONS) + ["help"])
GLOBAL_OPTIONS = ["--addr", "--json", "--help", "--version"]
# A value the CLI takes for each option that needs one.
OPTION_VALUES = {
    "--port": "61000", "--ttl": "5", "--proto": "tcp", "--host": "127.0.0.1",
    "--meta": "k=v", "--pid": "1", "--token": "t", "--wait": "0",
    "--need": "dep", "--timeout": "1",
}

HARNESS = r'''
if [ -n "$HARNESS_BC" ]; then . "$HARNESS_BC" || exit 90; fi
. "$HARNESS_COMPLETION" || exit 91
spec=$(complete -p berth) || exit 92
fn=${spec#*-F }
fn=${fn%% *}
COMP_LINE=$HARNESS_LINE
COMP_POINT=${#COMP_LINE}
COMP_CWORD=$1
shift
COMP_WORDS=("$@")
COMP_TYPE=9
COMP_KEY=9
COMPREPLY=()
"$fn" berth "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def comp_words(line):
    """Split line into COMP_WORDS as bash does for completion.

    Blanks separate words; quotes and backslashes keep characters in a
    word; a run of other COMP_WORDBREAKS characters (':' '=' ...) is a word
    of its own. The cursor is at the end: the last word is the one being
    completed ("" after a blank). Returns (words, cword).
    """
    breaks = set(WORDBREAKS) - set(" \t\n\"'")
    words, cur, kind = [], None, None   # kind: "w" word, "b" break run
    i = 0
    while i < len(line):
        c = line[i]
        if c in " \t\n":
            if cur is not None:
                words.append(cur)
            cur, kind = None, None
            i += 1
            continue
        if c in breaks:
            if kind != "b" and cur is not None:
                words.append(cur)
                cur = None
            cur = (cur or "") + c
            kind = "b"
            i += 1
            continue
        if kind == "b":
            words.append(cur)
            cur = None
        kind = "w"
        if c == "\\" and i + 1 < len(line):
            cur = (cur or "") + line[i:i + 2]
            i += 2
        elif c in "\"'":
            j = line.find(c, i + 1)
            j = len(line) if j == -1 else j + 1
            cur = (cur or "") + line[i:j]
            i = j
        else:
            cur = (cur or "") + c
            i += 1
    words.append(cur if cur is not None else "")
    return words, len(words) - 1


class CompletionTest(BerthTestCase):

    @classmethod
    def setUpClass(cls):
        if shutil.which("bash") is None:
            raise unittest.SkipTest("bash is not installed")
        cls.bindir = tempfile.mkdtemp(prefix="berth-compl-bin-")
        cli = os.path.abspath(shutil.which(BERTH_CLI) or BERTH_CLI)
        if os.path.basename(cli) == "berth":
            cls.path = os.path.dirname(cli)
        else:
            os.symlink(cli, os.path.join(cls.bindir, "berth"))
            cls.path = cls.bindir
        cls.modes = [""]
        if os.path.exists(BASH_COMPLETION):
            cls.modes.append(BASH_COMPLETION)
        else:
            print("note: %s not installed; testing without the "
                  "bash-completion package only" % BASH_COMPLETION)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.bindir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="berth-compl-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def complete(self, line, env=None, bc="", timeout=10):
        """COMPREPLY for line (cursor at its end), as a list."""
        words, cword = comp_words(line)
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("BERTH_") and not k.startswith("HARNESS_")}
        e["PATH"] = self.path + os.pathsep + e.get("PATH", "/usr/bin:/bin")
        e["HOME"] = self.tmp
        # A broker nobody runs, unless the case gives one.
        e["BERTH_ADDR"] = self.dead_addr()
        # The answer of a live broker is waited for longer than a
        # shell's 1 s: on a loaded machine (or under the sanitizers)
        # berth list can take that long, and these cases are about what
        # is completed, not how fast.
        e["BERTH_COMPLETION_WAIT"] = "5"
        e.update(env or {})
        e["HARNESS_LINE"] = line
        e["HARNESS_COMPLETION"] = COMPLETION
        e["HARNESS_BC"] = bc
        p = subprocess.run(
            ["bash", "--norc", "--noprofile", "-c", HARNESS, "harness",
             str(cword)] + words,
            env=e, cwd=self.tmp, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout)
        self.assertEqual(p.returncode, 0, "harness failed for %r:\n%s"
                         % (line, p.stderr))
        return [w for w in p.stdout.split("\n") if w != ""]

    def check(self, line, expected, env=None):
        """line completes to exactly the set expected, in every mode."""
        for bc in self.modes:
            with self.subTest(line=line, bash_completion=bool(bc)):
                self.assertEqual(sorted(set(self.complete(line, env, bc))),
                                 sorted(expected))

    def broker_with_leases(self):
        d = self.berthd()
        for name, body in (("web", {}), ("db.main", {"meta": {"name": "zzz"}}),
                           ("worker-1", {})):
            r = d.acquire(name, ttl=0, **body)
            self.assertEqual(r.status, 201, r)
        ports = {s["name"]: s["port"] for s in d.get("/v1/services").json["services"]}
        self.assertEqual(len(ports), 3)
        return d, ports

    def test_commands(self):
        self.check("berth lo", ["lookup"])
        self.check("berth re", ["release", "renew", "revoke"])
        self.check("berth ", COMMANDS)
        self.check("berth --json lo", ["lookup"])
        self.check("berth --addr 127.0.0.1:1 st", ["status"])
        self.check("berth --addr=127.0.0.1:1 --json h", ["health", "help"])
        self.check("berth -", GLOBAL_OPTIONS)
        self.check("berth --j", ["--json"])
        self.check("berth xyz", [])

    def test_command_options(self):
        for cmd, opts in COMMAND_OPTIONS.items():
            self.check("berth %s -" % cmd, opts + ["--addr", "--json"])
        self.check("berth lookup --a", ["--addr", "--addr-only", "--all"])
        self.check("berth acquire api --p", ["--port", "--proto", "--pid",
                                             "--publish"])
        self.check("berth --json run api --ttl 5 --n", ["--need"])
        # Option values are not taken for options or names.
        self.check("berth acquire --token --p", [])
        self.check("berth lookup --wait ", [])

    def test_options_are_the_clis(self):
        """Every option offered is one the berth CLI takes."""
        dead = self.dead_addr()
        for cmd, opts in COMMAND_OPTIONS.items():
            for opt in opts:
                args = [BERTH_CLI, "--addr", dead, cmd, opt]
                if opt in OPTION_VALUES:
                    args.append(OPTION_VALUES[opt])
                if cmd in ("acquire", "renew", "release", "lookup", "run"):
                    args.append("x")
                if cmd == "run":
                    args += ["--", "true"]
                with self.subTest(args=args[3:]):
                    p = subprocess.run(args, capture_output=True, text=True,
                                       timeout=20, stdin=subprocess.DEVNULL)
                    self.assertNotIn("unknown option", p.stderr)
            # ... and the CLI does check: an unknown one is refused.
            p = subprocess.run([BERTH_CLI, "--addr", dead, cmd, "--bogus"],
                               capture_output=True, text=True, timeout=20)
            self.assertIn("unknown option", p.stderr, cmd)

    def test_names_from_addr_on_line(self):
        d, ports = self.broker_with_leases()
        names = sorted(ports)
        a = d.addr
        for cmd in ("lookup", "renew", "release", "revoke", "doctor", "run"):
            self.check("berth --addr %s %s " % (a, cmd), names)
        self.check("berth --addr %s lookup w" % a, ["web", "worker-1"])
        self.check("berth lookup --addr %s d" % a, ["db.main"])
        self.check("berth --addr=%s release --token t we" % a, ["web"])
        self.check("berth --json --addr %s renew --ttl 5 " % a, names)
        # One name only; none for commands that take no lease name.
        self.check("berth --addr %s lookup web " % a, [])
        self.check("berth --addr %s acquire " % a, [])
        self.check("berth --addr %s list " % a, [])
        # who takes a port: the leases' ports are offered.
        self.check("berth --addr %s who " % a,
                   sorted(str(p) for p in ports.values()))
        # --need takes lease names too.
        self.check("berth --addr %s run api --need " % a, names)
        self.check("berth --addr %s run api --need w" % a, ["web", "worker-1"])
        self.check("berth --addr %s run api --need=db" % a, ["db.main"])

    def test_names_from_berth_addr(self):
        d, ports = self.broker_with_leases()
        env = {"BERTH_ADDR": d.addr}
        self.check("berth lookup ", sorted(ports), env=env)
        self.check("berth doctor wo", ["worker-1"], env=env)
        self.check("berth run --need web api --need ", sorted(ports), env=env)
        # --addr on the line wins over BERTH_ADDR.
        self.check("berth --addr %s lookup " % self.dead_addr(), [], env=env)
        env = {"BERTH_ADDR": self.dead_addr()}
        self.check("berth --addr %s lookup " % d.addr, sorted(ports), env=env)

    def test_names_over_unix_socket(self):
        sock = os.path.join(self.tmp, "b.sock")
        d = self.berthd("--listen", "unix:" + sock)
        r = d.post("/v1/services", {"name": "api", "ttl": 0})
        self.assertEqual(r.status, 201, r)
        self.check("berth --addr unix:%s lookup " % sock, ["api"])
        self.check("berth lookup ", ["api"], env={"BERTH_ADDR": "unix:" + sock})

    def test_proto_values(self):
        self.check("berth acquire api --proto ", ["both", "tcp", "udp"])
        self.check("berth acquire --proto u", ["udp"])
        self.check("berth acquire api --proto=b", ["both"])
        self.check("berth acquire api --proto=", ["both", "tcp", "udp"])

    def test_addr_values(self):
        # $BERTH_ADDR is offered too: pin it (a random dead port might
        # share the prefix), then check it is offered.
        env = {"BERTH_ADDR": "127.0.0.1:1"}
        self.check("berth --addr 127.0.0.1:6", ["62893"], env=env)
        self.check("berth --addr u", ["unix:"], env=env)
        self.check("berth lookup --addr [", ["[::1]:62893"], env=env)
        self.check("berth --addr 127.0.0.1:4", ["45678"],
                   env={"BERTH_ADDR": "127.0.0.1:45678"})
        for bc in self.modes:
            got = self.complete("berth --addr ", bc=bc)
            self.assertIn("127.0.0.1:62893", got)
            self.assertIn("unix:", got)
        # unix: completes paths. bash replaces only the text after the
        # last ':' (COMP_WORDBREAKS), so the answers are the paths alone.
        sock = os.path.join(self.tmp, "berth.sock")
        s = socket.socket(socket.AF_UNIX)
        try:
            s.bind(sock)
            self.check("berth --addr unix:%s/ber" % self.tmp, [sock])
            self.check("berth --addr=unix:%s/ber" % self.tmp, [sock])
        finally:
            s.close()

    def test_no_broker_is_quiet_and_fast(self):
        refused = self.dead_addr()
        # A broker that takes the connection and never answers.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        try:
            hung = "127.0.0.1:%d" % silent.getsockname()[1]
            for addr in (refused, hung, "unix:" + os.path.join(self.tmp, "none")):
                for bc in self.modes:
                    for line in ("berth --addr %s lookup " % addr,
                                 "berth --addr %s run api --need " % addr):
                        with self.subTest(line=line, bash_completion=bool(bc)):
                            t0 = time.monotonic()
                            got = self.complete(line, bc=bc, timeout=8, env={
                                "BERTH_COMPLETION_WAIT": "1"})
                            took = time.monotonic() - t0
                            self.assertEqual(got, [])
                            # Generous: the script waits 1 s at most.
                            self.assertLess(took, 5, "completion took %.1fs" % took)
        finally:
            silent.close()

    def test_run_command_line(self):
        d, ports = self.broker_with_leases()
        a = d.addr
        for name in ("alpha.txt", "beta.txt"):
            open(os.path.join(self.tmp, name), "w").close()
        for bc in self.modes:
            with self.subTest(bash_completion=bool(bc)):
                got = self.complete("berth --addr %s run api -- ech" % a, bc=bc)
                self.assertIn("echo", got)
                self.assertNotIn("web", got)
                got = self.complete("berth --addr %s run api --ttl 5 -- cat %s/al"
                                    % (a, self.tmp), bc=bc)
                self.assertEqual(got, [os.path.join(self.tmp, "alpha.txt")])
                # berth's own options and lease names stop at "--".
                got = self.complete("berth --addr %s run api -- cat --ne" % a, bc=bc)
                self.assertNotIn("--need", got)
                got = self.complete("berth --addr %s run api -- cat we" % a, bc=bc)
                self.assertNotIn("web", got)

    def test_real_readline(self):
        """In an interactive bash on a pty, TAB completes the line itself."""
        d, ports = self.broker_with_leases()
        a = d.addr
        cases = [
            ("berth lo", "", ["berth", "lookup"]),
            ("berth --addr %s lookup we" % a, "",
             ["berth", "--addr", a, "lookup", "web"]),
            ("berth --addr=%s release d" % a, "",
             ["berth", "--addr=" + a, "release", "db.main"]),
            ("berth --addr %s run api --need=wo" % a, "",
             ["berth", "--addr", a, "run", "api", "--need=worker-1"]),
            ("berth acquire x --proto=b", "", ["berth", "acquire", "x", "--proto=both"]),
            ("berth --addr 127.0.0.1:6", "", ["berth", "--addr", "127.0.0.1:62893"]),
            # No blank after "unix:": a path follows.
            ("berth --addr un", "/x", ["berth", "--addr", "unix:/x"]),
            ("berth run x -- ech", "", ["berth", "run", "x", "--", "echo"]),
        ]
        for bc in self.modes:
            with self.subTest(bash_completion=bool(bc)):
                with InteractiveBash(self.path, self.tmp) as sh:
                    if bc:
                        sh.run(". %s" % bc)
                    sh.run(". %s" % COMPLETION)
                    for typed, after, want in cases:
                        self.assertEqual(sh.tab(typed, after), want,
                                         "typed %r TAB %r" % (typed, after))

    def test_script_is_valid_bash(self):
        p = subprocess.run(["bash", "-n", COMPLETION], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)


class InteractiveBash:
    """bash -i on a pseudo-terminal, to press TAB as a person would."""

    def __init__(self, path, home):
        self.path, self.home = path, home
        self.marks = 0

    def __enter__(self):
        import pty
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env.update(PATH=self.path + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
                   # Port 1: nothing answers, and --addr's completions,
                   # which offer $BERTH_ADDR, stay unambiguous.
                   HOME=self.home, TERM="dumb", BERTH_ADDR="127.0.0.1:1",
                   INPUTRC="/dev/null",
                   # As in complete(): what, not how fast.
                   BERTH_COMPLETION_WAIT="5")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.chdir(self.home)
                os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
            finally:
                os._exit(127)
        try:
            import fcntl
            import struct
            import termios
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ,
                        struct.pack("HHHH", 50, 400, 0, 0))
        except OSError:
            pass
        self.run("PS1='$ '")
        return self

    def __exit__(self, *exc):
        try:
            os.write(self.fd, b"exit\n")
        except OSError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0] != 0:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        os.close(self.fd)

    def read_until(self, text, timeout=10):
        """What the terminal shows until text appears (or the timeout)."""
        import select
        out = b""
        deadline = time.monotonic() + timeout
        while text.encode() not in out and time.monotonic() < deadline:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    out += os.read(self.fd, 4096)
                except OSError:
                    break
        return out.decode(errors="replace")

    def run(self, command):
        """Run command and wait for it to finish."""
        self.marks += 1
        os.write(self.fd, ("%s; echo MARK-$((%d+1))\n" % (command, self.marks)).encode())
        out = self.read_until("MARK-%d" % (self.marks + 1))
        assert "MARK-%d" % (self.marks + 1) in out, out
        return out

    def tab(self, typed, after=""):
        """Type typed, TAB, then after; the words of the line, as a list.

        readline runs the completion before it reads on, so the keys that
        follow see the completed line: ^A printf '[%s]' ^E runs it as
        arguments to printf."""
        self.marks += 1
        mark = "END-%d" % (self.marks + 1)
        keys = "%s\t%s\x01printf '[%%s]' \x05; echo END-$((%d+1))\n" % (
            typed, after, self.marks)
        os.write(self.fd, keys.encode())
        out = self.read_until(mark)
        m = re.search(r"((?:\[[^\]\r\n]*\])+)\r?\n?" + mark, out)
        if m is None:
            return out
        return re.findall(r"\[([^\]]*)\]", m.group(1))


if __name__ == "__main__":
    main()
