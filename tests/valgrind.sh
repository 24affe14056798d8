#!/bin/sh
#
# Run berth's end-to-end tests with berthd, the berth CLI and libberth under
# valgrind's memcheck, and fail on any test failure, memory error or leak
# (definite or indirect). `make valgrind` runs this with the same
# environment as `make check`:
#
#   BERTHD        the berthd binary (required)
#   BERTH_CLI     the berth binary (required)
#   PYTHONPATH    must hold tests/e2e (berthtest.py)
#   BERTH_FAULTFS the faultfs shim, for test_storage.py
#
# Knobs (environment):
#   VALGRIND_SUITES  e2e suites to run (test_api or test_api.py ...)
#                    (default: see SUITES below)
#   VALGRIND_JOBS    suites run at once (default: the number of CPUs)
#   VALGRIND_OUT     where logs go (default: ./valgrind-out; a previous
#                    run's logs there are removed)
#   VALGRIND_CLI     0 to run the CLI natively (default 1: under valgrind)
#   VALGRIND_LIBBERTH 0 to skip the libberth check program (default 1)
#   VALGRIND         the valgrind binary (default: valgrind)
#
# berthd: berthtest.py puts $BERTHD_WRAPPER in front of every daemon it
# starts, ends each with SIGTERM so valgrind checks it at exit, and fails
# the test if valgrind reported anything (its report goes to the daemon's
# log, which the failing test prints). The CLI and the check program write
# their reports to $VALGRIND_OUT/vg/. Tests that only hold under real-time
# speed may skip themselves when BERTH_UNDER_VALGRIND=1.

set -u

: "${BERTHD:?BERTHD must name the berthd binary (use make valgrind)}"
: "${BERTH_CLI:?BERTH_CLI must name the berth binary (use make valgrind)}"

if [ "${1:-}" = "--one" ]; then
	# One suite, run by xargs below: its output and exit status to $OUT.
	suite=${2%.py}
	start=$(date +%s)
	"${PYTHON3:-python3}" "$E2E/$suite.py" >"$OUT/$suite.log" 2>&1
	rc=$?
	echo "$rc $(( $(date +%s) - start ))" >"$OUT/$suite.rc"
	echo "valgrind: $suite done (exit $rc, $(( $(date +%s) - start )) s)"
	exit 0
fi

VALGRIND=${VALGRIND:-valgrind}
if ! command -v "$VALGRIND" >/dev/null 2>&1; then
	echo "valgrind.sh: $VALGRIND not found; install valgrind" >&2
	exit 77
fi

E2E=$(cd "$(dirname "$0")/e2e" && pwd)
TOP_BUILDDIR=$(cd "$(dirname "$BERTHD")/.." && pwd)
OUT=${VALGRIND_OUT:-$PWD/valgrind-out}
JOBS=${VALGRIND_JOBS:-$(nproc 2>/dev/null || echo 2)}
SUITES=${VALGRIND_SUITES:-"test_api test_leases test_security test_daemon \
test_cli test_run test_who_doctor test_hostile test_storage test_crash"}

# memcheck: every error, and definite or indirect leaks, exits 99.
VG_OPTS="--quiet --error-exitcode=99 --leak-check=full \
--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
--track-fds=no --num-callers=30"

mkdir -p "$OUT" && rm -rf "$OUT/vg" "$OUT/bin" "$OUT"/test_*.log \
    "$OUT"/test_*.rc "$OUT"/check_libberth.log "$OUT"/check_libberth.rc
mkdir -p "$OUT/vg" "$OUT/bin" || exit 1
export OUT E2E

BERTHD_WRAPPER="$VALGRIND $VG_OPTS"
BERTH_UNDER_VALGRIND=1
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}
export BERTHD_WRAPPER BERTH_UNDER_VALGRIND CK_TIMEOUT_MULTIPLIER

# Wrappers that run a binary under valgrind, each report in its own file.
# $1: wrapper path, $2: real binary, $3: report name.
mkwrapper() {
	cat >"$1" <<EOF
#!/bin/sh
exec "$VALGRIND" $VG_OPTS --log-file="$OUT/vg/$3.%p.log" "$2" "\$@"
EOF
	chmod +x "$1"
}
mkwrapper "$OUT/bin/berth" "$BERTH_CLI" berth
mkwrapper "$OUT/bin/berthd" "$BERTHD" berthd-libberth
if [ "${VALGRIND_CLI:-1}" != 0 ]; then
	BERTH_CLI=$OUT/bin/berth
	export BERTH_CLI
fi

started=$(date +%s)
echo "valgrind: suites [$SUITES] with $JOBS at a time; logs in $OUT"
# shellcheck disable=SC2086
printf '%s\n' $SUITES | xargs -P "$JOBS" -I{} "${SHELL:-/bin/sh}" "$0" --one {}

# libberth: the check program under valgrind (libtool runs the real binary
# with the uninstalled library), its daemons under valgrind too.
CHECK=$TOP_BUILDDIR/tests/e2e/check_libberth
if [ "${VALGRIND_LIBBERTH:-1}" != 0 ] && [ -x "$CHECK" ]; then
	start=$(date +%s)
	if [ -x "$TOP_BUILDDIR/libtool" ]; then
		set -- "$TOP_BUILDDIR/libtool" --mode=execute
	else
		set --
	fi
	# Its daemons start through berthtest.py, which would put
	# BERTHD_WRAPPER in front of BERTHD: that is valgrind already here.
	BERTHD=$OUT/bin/berthd BERTHD_WRAPPER= "$@" "$VALGRIND" $VG_OPTS \
	    --log-file="$OUT/vg/check_libberth.%p.log" "$CHECK" \
	    >"$OUT/check_libberth.log" 2>&1
	echo "$? $(( $(date +%s) - start ))" >"$OUT/check_libberth.rc"
	echo "valgrind: check_libberth done ($(( $(date +%s) - start )) s)"
elif [ "${VALGRIND_LIBBERTH:-1}" != 0 ]; then
	echo "valgrind: $CHECK not built (make check builds it)" >&2
	echo "1 0" >"$OUT/check_libberth.rc"
fi

# valgrind leaves an empty report from every clean process.
find "$OUT/vg" -type f -size 0 -exec rm -f {} +

# The summary: each suite's result, then every valgrind report found in the
# suites' output and in the report files, grouped by kind and stack.
"${PYTHON3:-python3}" - "$OUT" "$(( $(date +%s) - started ))" <<'EOF'
import glob, os, re, sys

out, wall = sys.argv[1], int(sys.argv[2])
HEAD = re.compile(r"^==(\d+)== (\S.*)$")
BODY = re.compile(r"^==(\d+)== ?(.*)$")
ERROR = re.compile(r"Invalid|Mismatched free|Conditional jump|uninitialised"
                   r"|Syscall param|overlap|fishy|are (definitely|indirectly) "
                   r"lost|Jump to the invalid|Illegal|ERROR SUMMARY: [1-9]")
FRAME = re.compile(r"^(?:at|by) 0x[0-9A-Fa-f]+: (.*)")
OURS = re.compile(r"\([\w.-]+\.[ch]:\d+\)")

bad = 0
print("\n==== valgrind run: %d s wall ====" % wall)
for rcfile in sorted(glob.glob(os.path.join(out, "*.rc"))):
    name = os.path.basename(rcfile)[:-3]
    rc, secs = open(rcfile).read().split()
    text = open(os.path.join(out, name + ".log"), errors="replace").read()
    ran = re.findall(r"^Ran (\d+) tests?", text, re.M)
    res = re.findall(r"^(OK.*|FAILED.*)$", text, re.M)
    ck = re.findall(r"^\d+%: Checks: .*$", text, re.M)
    detail = ck[-1] if ck else "%s tests, %s" % (ran[-1] if ran else "?",
                                              res[-1] if res else "no result")
    status = "ok" if rc == "0" else "FAIL (exit %s)" % rc
    bad += rc != "0"
    print("%-16s %-14s %5s s  %s" % (name, status, secs, detail))
    failed = {}
    for m in re.finditer(r"^(FAIL|ERROR): (\S+) \((\S+)\)", text, re.M):
        failed[m.group(3)] = failed.get(m.group(3), 0) + 1
    for m in re.finditer(r"^[^:\n]*:\d+:[EF]:([^:\n]+:[^:\n]+):", text, re.M):
        failed[m.group(1)] = failed.get(m.group(1), 0) + 1
    for t, n in failed.items():
        print("    failed: %s%s" % (t, " (%d times)" % n if n > 1 else ""))

# Valgrind's reports: a headline, then its stack, then notes ("Address ...
# free'd", "Block was alloc'd at") each with a stack; a bare "==PID==" ends
# it. Grouped by headline and the first frames of the first stack.
reports = {}
files = glob.glob(os.path.join(out, "*.log")) + glob.glob(os.path.join(out, "vg", "*.log"))
for path in sorted(files):
    block = None
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = HEAD.match(line)
        if m and block is None:
            if not m.group(2).startswith("Warning"):
                block = [m.group(1), m.group(2), [[]]]
            continue
        m = BODY.match(line)
        if block is not None and m and m.group(2).strip():
            text = m.group(2).strip()
            f = FRAME.match(text)
            if f:
                block[2][-1].append(f.group(1))
            else:
                block[2].append([text])
            continue
        if block is not None and ERROR.search(block[1]):
            head = re.sub(r"\d[\d,]*", "N", block[1])
            head = re.sub(r"\s*in loss record N of N", "", head)
            first = block[2][0]
            own = [f for f in first if OURS.search(f)]
            sig = (head, tuple(own[:3] or first[:3]))
            where = reports.setdefault(sig, [set(), set(), block[2]])
            where[0].add((os.path.basename(path), block[0]))
            where[1].add(os.path.basename(path))
        block = None

if reports:
    bad += 1
    print("\n==== %d distinct valgrind reports ====" % len(reports))
    for (head, _), (procs, places, stacks) in sorted(reports.items()):
        print("\n%s  [%d process(es); in %s]" % (head, len(procs),
                                                 ", ".join(sorted(places)[:6])))
        for i, stack in enumerate(stacks):
            if i > 0:
                print("  " + stack[0])
            for f in stack[1 if i > 0 else 0:][:8]:
                print("    " + f)
else:
    print("\nno valgrind errors or leaks")
print("\nfull logs: %s" % out)
sys.exit(1 if bad else 0)
EOF
