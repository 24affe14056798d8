"""benchlib: what the Python benchmarks share.

berthtest (the e2e harness) imported with BERTHD pointing at the berthd
under test: BERTHD from the environment wins; else the build's src/berthd
next to this source tree or below the current directory; else berthd on
PATH. Then the helpers both benchmarks use: RESULT lines, a process's
memory and CPU time from /proc, the open-files limit, and how a bench says
what it skipped when a tool is missing.
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

HZ = os.sysconf("SC_CLK_TCK")


def find_berthd():
    if os.environ.get("BERTHD"):
        return os.environ["BERTHD"]
    for cand in (os.path.join(HERE, "..", "..", "src", "berthd"),
                 os.path.join(os.getcwd(), "src", "berthd")):
        if os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return shutil.which("berthd") or "berthd"


os.environ["BERTHD"] = find_berthd()
import berthtest  # noqa: E402,F401  (reads BERTHD at import)


def result(key, value, unit):
    """One "RESULT key value unit" line, the figure run.sh collects."""
    if isinstance(value, float):
        value = "%.3f" % value if value < 100 else "%.1f" % value
    print("RESULT %s %s %s" % (key, value, unit), flush=True)


def have(tool, what):
    """True if tool is on PATH; else print "skipped: what (no tool)"."""
    if shutil.which(tool):
        return True
    print("skipped: %s (no %s)" % (what, tool), flush=True)
    return False


def vm_kib(pid, field):
    """A field of /proc/PID/status in KiB: VmRSS, VmHWM (peak RSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for pid %d" % (field, pid))


def rss_kib(pid):
    return vm_kib(pid, "VmRSS")


def proc_cpu_s(pid):
    """CPU seconds (user + system) pid has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def raise_nofile(need=0, who="bench"):
    """Raise our open-files limit to its hard limit; exit if that is below
    need."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < need:
        sys.exit("%s: RLIMIT_NOFILE hard limit %d < %d needed"
                 % (who, hard, need))
