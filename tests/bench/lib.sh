# lib.sh: what the bench scripts share; sourced by bash (every bench
# script is bash: run.sh and `make bench` run them with bash).
#
#   bench_init NAME     sets me (NAME, for messages), PY (python3), tmp (a
#                       temp dir, kept when BENCH_KEEP is set) and pids
#                       (processes to end at exit, by pid), and an EXIT
#                       trap that ends them and removes tmp
#   die MSG             MSG on stderr, exit 1
#   need_tool TOOL      if TOOL is missing: "skipped: NAME (no TOOL)" and
#                       exit 0, for a bench that cannot run at all without it
#   have TOOL [WHAT]    true if TOOL is on PATH (or an executable path),
#                       else prints "skipped: WHAT (no TOOL)" and is false:
#                       the bench runs on without that part
#   need_berthd [VAR...] BERTHD (and the other VARs named) are executables
#   bench_prog NAME     the path of a bench program built by make bench
#   disk_dir            where an on-disk database goes (BENCH_DISK_DIR, else
#                       $TMPDIR or /tmp unless that is a tmpfs, then next
#                       to berthd: the build directory)
#   start_berthd DB [ARG...]  berthd through the e2e harness's start helper;
#                       sets berth_pid and berth_addr
#   stop_pid PID        ends a process this script started and waits
#   end_pids            ends every process in $pids and waits for them
#   median              the median of the numbers on stdin, one a line
#
# Knobs they read: RANGE (start_berthd's --range), BERTHD_PREFIX (a command
# to run berthd under, e.g. taskset -c 0), BENCH_KEEP.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_E2E_DIR=$(cd "$BENCH_LIB_DIR/../e2e" && pwd)

die() {
	echo "$me: $*" >&2
	exit 1
}

bench_init() {
	me=$1
	PY=${PYTHON3:-$(command -v python3 || true)}
	[ -n "$PY" ] || die "python3 not found"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-$me.XXXXXX")
	pids=
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

# The EXIT trap; a script with more to clean sets bench_cleanup_hook.
bench_cleanup() {
	if [ -n "${bench_cleanup_hook:-}" ]; then
		"$bench_cleanup_hook"
	fi
	end_pids
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}

need_tool() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "skipped: $me (no $1)"
		exit 0
	fi
}

have() {
	if command -v "$1" >/dev/null 2>&1; then
		return 0
	fi
	echo "skipped: ${2:-$me} (no $1)"
	return 1
}

need_berthd() {
	local v
	for v in BERTHD "$@"; do
		if [ -z "${!v:-}" ]; then
			echo "$me: $v is not set; e.g. BERTHD=BUILDDIR/src/berthd" \
			    "BERTH_CLI=BUILDDIR/clients/cli/berth" \
			    "BENCH_BIN=BUILDDIR/tests/bench $0 (or make bench)" >&2
			exit 2
		fi
		[ -x "${!v}" ] || die "$v=${!v} is not an executable file"
	done
}

bench_prog() {
	local p=${BENCH_BIN:-$PWD/tests/bench}/$1
	[ -x "$p" ] || p=$BENCH_LIB_DIR/$1
	[ -x "$p" ] || die "$1 not built (make bench builds it)"
	echo "$p"
}

disk_dir() {
	local d=${BENCH_DISK_DIR:-${TMPDIR:-/tmp}}
	if [ -z "${BENCH_DISK_DIR:-}" ] &&
	    [ "$(stat -f -c %T "$d" 2>/dev/null)" = tmpfs ]; then
		d=$(dirname "$BERTHD")
	fi
	echo "$d"
}

# start_berthd DB [ARG...]: berthd on 127.0.0.1:0 with database DB, --log-level
# warn, $RANGE and any further flags, through `berthtest.py start --exec`
# (tests/e2e), the one helper every test uses: it learns the address from
# the READY datagram berthd sends to NOTIFY_SOCKET, as systemd would, and
# then becomes berthd, so berthd is this shell's child. Its log goes to
# $tmp/berthd.log.
start_berthd() {
	local db=$1 fifo=$tmp/ready.fifo pid
	shift
	rm -f "$fifo"
	mkfifo "$fifo"
	# shellcheck disable=SC2086 # the range is one word or none
	BERTHD_WRAPPER=${BERTHD_PREFIX:-} "$PY" "$BENCH_E2E_DIR/berthtest.py" \
	    start --exec --log "$tmp/berthd.log" --db "$db" \
	    ${RANGE:+--range "$RANGE"} --log-level warn "$@" \
	    </dev/null >"$fifo" &
	berth_pid=$!
	pids="$pids $berth_pid"
	if ! read -r pid berth_addr <"$fifo" || [ "$pid" != "$berth_pid" ]; then
		rm -f "$fifo"
		echo "$me: berthd did not start:" >&2
		cat "$tmp/berthd.log" >&2
		exit 1
	fi
	rm -f "$fifo"
}

stop_pid() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	pids=$(echo "$pids" | tr ' ' '\n' | { grep -vx "$1" || true; } |
	    tr '\n' ' ')
}

end_pids() {
	local p
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	pids=
}

median() {
	sort -g | awk '{ v[NR] = $1 }
	END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}

# perf_profile PID SECONDS LOADPID TOP: record PID's stacks for SECONDS
# while the load LOADPID runs (then wait for it), and print the self
# time by object and the TOP hottest symbols. $TMP holds the data.
perf_profile() {
	if perf record -q -g -F 2000 -p "$1" -o "$TMP/perf.data" \
	    -- sleep "$2" >/dev/null 2>"$TMP/perf.err"; then
		wait "$3" || true
		echo "-- self time by object:"
		perf report -i "$TMP/perf.data" --stdio --no-children -g none \
		    --sort dso --percent-limit 0.5 2>/dev/null |
		    grep -v -e '^#' -e '^$' | sed 's/[ -]*$//'
		echo "-- hottest symbols (self time):"
		perf report -i "$TMP/perf.data" --stdio --no-children -g none \
		    --sort dso,symbol --percent-limit 0.7 2>/dev/null |
		    grep -v -e '^#' -e '^$' | sed 's/[ -]*$//' | head -"$4"
	else
		wait "$3" || true
		echo "perf record failed: $(head -3 "$TMP/perf.err")"
	fi
}
