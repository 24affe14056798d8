"""Owners (docs/security.md, "Owners that berthd cannot see").

A lease's owner is dead only when the kernel says there is no such
process; and the leases' pidfds never take the descriptors berthd needs
to serve.

  - Under a low open file limit (RLIMIT_NOFILE 128, then 64) with more
    owned leases than its pidfd budget, berthd still accepts connections
    and answers; every lease lives while its owner runs; pidfds never pass
    the budget berthd states in its log; an owner beyond the budget is
    polled, so its death still ends its lease; a pidfd freed goes to a
    polled owner; an acquire without token of a polled owner's name is
    409 name_taken.
  - Under faultfs (BERTH_FAULTFS, FAULTFS_PROC), opening /proc/PID/stat
    fails with EACCES, EMFILE or ENOMEM while the owners run: their
    leases stay (polled, and across a restart), an acquire without token
    of their names is 409 name_taken, and an owner that has exited and
    been reaped still ends its lease (kill(pid, 0) says so without a
    descriptor).
"""

import http.client
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time

import berthtest
from berthtest import BerthTestCase, main, needs_own_berthd, wait_for

FAULTFS = os.environ.get("BERTH_FAULTFS", "")
SLOWDOWN = getattr(berthtest, "SLOWDOWN", 1)
# A polled owner is looked at within a second: a generous bound for the
# end of its lease, and a window of a few polls in which nothing may end
# wrongly (a longer one under a wrapper, which slows berthd down).
ENDS_WITHIN = 10
CYCLES = 2.5 if SLOWDOWN == 1 else 5.0


def low_limit(n):
    """A preexec function: berthd starts with RLIMIT_NOFILE n, soft and
    hard, so it cannot raise it."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def budget(d):
    """The pidfd budget berthd states at start, and the client connections
    it keeps descriptors for."""
    m = re.search(r"reaper: up to (\d+) owners watched by pidfd.* (\d+) "
                  r"kept for client connections", d.logtext())
    if m is None:
        raise AssertionError("berthd states no pidfd budget:\n%s"
                             % d.logtext()[-2000:])
    return int(m.group(1)), int(m.group(2))


def pidfds(d):
    """The pids of the owners berthd holds a pidfd for now (from each
    pidfd's fdinfo; None for one whose fdinfo names no pid)."""
    pids = []
    fddir = "/proc/%d/fd" % d.proc.pid
    for fd in os.listdir(fddir):
        try:
            if os.readlink(os.path.join(fddir, fd)) != "anon_inode:[pidfd]":
                continue
            with open("/proc/%d/fdinfo/%s" % (d.proc.pid, fd)) as f:
                m = re.search(r"^Pid:\s*(-?\d+)", f.read(), re.M)
        except OSError:
            continue        # closed meanwhile
        pids.append(int(m.group(1)) if m else None)
    return pids


def listed(d):
    r = d.get("/v1/services")
    assert r.status == 200, r
    return {s["name"]: s for s in r.json["services"]}


class OwnerCase(BerthTestCase):
    """Owners are `sleep` processes of the test, ended by pid."""

    def owner(self):
        p = subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL)
        self.addCleanup(self.end, p)
        return p

    def end(self, p):
        if p.poll() is None:
            p.kill()
        p.wait()

    def acquire_owned(self, d, n, prefix="svc"):
        """n leases, svc-0 ... svc-(n-1), each owned by a process of its
        own, acquired in that order over one connection. Returns the
        owners' processes."""
        owners = []
        conn = http.client.HTTPConnection(d.host, d.port, timeout=30)
        try:
            for i in range(n):
                p = self.owner()
                r = d.request("POST", "/v1/services",
                              body={"name": "%s-%d" % (prefix, i),
                                    "pid": p.pid}, conn=conn)
                self.assertEqual(r.status, 201, r)
                owners.append(p)
        finally:
            conn.close()
        return owners

    def assert_serves(self, d, clients):
        """clients connections at once, each answered /v1/health 200."""
        conns = [http.client.HTTPConnection(d.host, d.port, timeout=10)
                 for _ in range(clients)]
        try:
            for c in conns:
                c.request("GET", "/v1/health")
            for c in conns:
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
        finally:
            for c in conns:
                c.close()

    def assert_ends(self, d, name):
        wait_for(lambda: d.get("/v1/services/" + name).status == 404,
                 ENDS_WITHIN, "the lease %s to end" % name)

    def assert_all_live(self, d, names, seconds):
        """Every one of names stays leased for seconds (several cycles of
        the poll)."""
        deadline = time.monotonic() + seconds
        while True:
            missing = sorted(set(names) - set(listed(d)))
            self.assertEqual(missing, [], "leases ended while their "
                             "owners ran:\n%s" % d.logtext()[-3000:])
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)


@needs_own_berthd("it sets berthd's open file limit")
class DescriptorBudget(OwnerCase):

    def test_owners_beyond_the_budget_are_polled(self):
        d = self.berthd(preexec=low_limit(128))
        room, clients = budget(d)
        self.assertGreater(room, 0)
        n = room + 20
        owners = self.acquire_owned(d, n)
        names = ["svc-%d" % i for i in range(n)]
        # The first owners hold the budget's pidfds; the others are polled
        # (all of them without pidfd_open: an old kernel, or valgrind).
        nopidfd = "has no pidfd_open" in d.logtext()
        watched = [] if nopidfd else owners[:room]
        self.assertEqual(sorted(pidfds(d)), sorted(p.pid for p in watched))
        self.assertEqual(sorted(listed(d)), sorted(names))
        self.assert_serves(d, min(30, clients - 2))
        self.assert_all_live(d, names, CYCLES)

        # Without the token, a live holder keeps its name, polled or not.
        for i in (0, n - 1):
            self.assertError(d.acquire("svc-%d" % i), 409, "name_taken")

        # A polled owner dies: its lease ends.
        self.end(owners[n - 1])
        self.assert_ends(d, "svc-%d" % (n - 1))
        # A watched owner dies: its lease ends, and its pidfd goes to the
        # owner polled longest.
        self.end(owners[0])
        self.assert_ends(d, "svc-0")
        if not nopidfd:
            wait_for(lambda: owners[room].pid in pidfds(d), ENDS_WITHIN,
                     "a polled owner to take the freed pidfd")
            self.assertEqual(len(pidfds(d)), room)
        self.assertEqual(len(listed(d)), n - 2)
        self.end(owners[room])
        self.assert_ends(d, "svc-%d" % room)

    def test_more_owners_than_descriptors(self):
        d = self.berthd(preexec=low_limit(64))
        room, clients = budget(d)
        self.assertEqual(room, 0)
        n = 80
        owners = self.acquire_owned(d, n)
        names = ["svc-%d" % i for i in range(n)]
        self.assertEqual(pidfds(d), [])
        self.assert_all_live(d, names, CYCLES)
        self.assert_serves(d, min(30, clients - 2))
        self.assertEqual(d.get("/v1/health").status, 200)
        self.end(owners[40])
        self.assert_ends(d, "svc-40")
        self.assertEqual(len(listed(d)), n - 1)


@needs_own_berthd("it runs berthd under faultfs")
class CannotLook(OwnerCase):
    """/proc/PID/stat cannot be opened, the owners run on."""

    def faulty_berthd(self):
        if not FAULTFS or not os.path.exists(FAULTFS):
            self.fail("BERTH_FAULTFS does not name the faultfs shim (%r); "
                      "run under make check, which builds "
                      "tests/e2e/libfaultfs.la" % FAULTFS)
        tmp = tempfile.mkdtemp(prefix="berth-e2e-")
        self.addCleanup(shutil.rmtree, tmp, True)
        control = os.path.join(tmp, "procfault")
        # ASan wants to be first among preloaded libraries; the shim comes
        # first here, which is fine for what the shim does.
        d = self.berthd(preexec=low_limit(128), tmpdir=tmp,
                        env={"LD_PRELOAD": FAULTFS, "FAULTFS_PROC": control,
                             "ASAN_OPTIONS": "verify_asan_link_order=0"})
        return d, control

    def fault(self, control, what):
        with open(control + ".new", "w") as f:
            f.write(what + "\n")
        os.rename(control + ".new", control)

    def check_error(self, err):
        d, control = self.faulty_berthd()
        room = budget(d)[0]
        n = room + 10
        owners = self.acquire_owned(d, n)
        names = ["svc-%d" % i for i in range(n)]
        self.fault(control, err)
        # The shim reads its control file again within 50 ms. Then no
        # owner can be named either: berthd cannot look at it.
        probes = iter(range(1000))
        wait_for(lambda: d.acquire("probe-%d" % next(probes),
                                   pid=owners[0].pid).status == 400,
                 ENDS_WITHIN, "the shim to refuse /proc/PID/stat")
        for i in (0, n - 1):
            self.assertError(d.acquire("svc-%d" % i), 409, "name_taken")
        wait_for(lambda: "cannot tell whether pid" in d.logtext(),
                 ENDS_WITHIN, "the poll to meet an owner it cannot see")
        self.assert_all_live(d, names, CYCLES)
        self.assertNotIn("owner is gone", d.logtext())

        # Reaped while berthd cannot read its /proc: still gone.
        self.end(owners[n - 1])
        self.assert_ends(d, "svc-%d" % (n - 1))
        # Started again, berthd keeps the leases it cannot check.
        d.restart()
        self.assert_all_live(d, names[:-1], CYCLES)
        self.assertError(d.acquire("svc-0"), 409, "name_taken")
        # The fault clears: each owner is seen again, and ends with it.
        os.unlink(control)
        self.end(owners[1])
        self.assert_ends(d, "svc-1")
        self.assertEqual(sorted(set(names) & set(listed(d))),
                         sorted(set(names) - {"svc-1", "svc-%d" % (n - 1)}))

    def test_eacces(self):
        self.check_error("eacces")

    def test_emfile(self):
        self.check_error("emfile")

    def test_enomem(self):
        self.check_error("enomem")


if __name__ == "__main__":
    main()
