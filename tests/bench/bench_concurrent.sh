#!/bin/bash
# bench_concurrent.sh: acquire+release pairs from many connections at
# once (bench_concurrent: 64 threads, one berth_client each, names of
# their own) against a fresh berthd with its database on disk (default
# synchronous=FULL), and how well group commit batches: the database
# commits per mutation (acquire or release), from /metrics.
#
# Runs BENCH_ROUNDS (default 3) runs of BENCH_SECONDS (default 5) on one
# berthd and reports the medians. Run from the build directory (or set
# BERTHD and BENCH_BIN or BENCH_CONCURRENT).
# Knobs: BENCH_THREADS (default 64), BENCH_SECONDS, BENCH_ROUNDS,
# BENCH_DISK_DIR (where the database goes, default: $TMPDIR or /tmp,
# or the build directory if that is a tmpfs), BENCH_PROFILE=1 (also run strace -c -f and perf record on
# berthd during one extra run and print their summaries; needs root or
# perf_event_paranoid <= 1).
#
# Prints RESULT lines: concurrent_pairs_per_s, concurrent_pair_p99_ms,
# concurrent_commits_per_mutation.
set -eu

# bench_init, need_berthd, bench_prog, disk_dir, have, start_berthd and
# median come from lib.sh.
. "$(dirname "$0")/lib.sh"
bench_init concurrent
need_berthd
BENCH_CONCURRENT=${BENCH_CONCURRENT:-$(bench_prog bench_concurrent)}
THREADS=${BENCH_THREADS:-64}
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
DISK_DIR=$(disk_dir)
PROFILE=${BENCH_PROFILE:-0}
RANGE=15000-24999

disk=$(mktemp -d "$DISK_DIR/bench-concurrent-db.XXXXXX")
remove_db() {
	rm -rf "$disk"
}
bench_cleanup_hook=remove_db


# metrics: "acquires releases commits" from berthd's /metrics.
metrics() {
	"$PY" - "$berth_addr" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen("http://%s/metrics" % sys.argv[1]).read()
v = {}
for line in text.decode().splitlines():
    if line and not line.startswith("#"):
        k, _, n = line.rpartition(" ")
        v[k] = n
print(v["berth_acquires_total"], v["berth_releases_total"],
      v["berth_db_commits_total"])
EOF
}


# run OUT: one bench_concurrent run; appends
# "pairs_per_s p99_ms commits mutations" to OUT.
run() {
	local before after out
	before=$(metrics)
	out=$("$BENCH_CONCURRENT" -a "$berth_addr" -c "$THREADS" -t "$SECS")
	after=$(metrics)
	echo "$out" | grep -v '^bench_concurrent ' | sed 's/^/    /'
	echo "$before $after $(echo "$out" | grep '^bench_concurrent ')" | awk '{
		for (i = 7; i <= NF; i++) {
			split($i, kv, "=")
			f[kv[1]] = kv[2]
		}
		printf "%s %s %d %d\n", f["pairs_per_s"], f["p99_ms"],
		    $6 - $3, ($4 + $5) - ($1 + $2) }' >>"$1"
}

start_berthd "$disk/berth.db" --max-connections $((THREADS + 64))
echo "bench_concurrent: $THREADS connections, ${SECS}s per run, $ROUNDS runs"
echo "  berthd: $BERTHD, db $disk/berth.db ($(stat -f -c %T "$disk"))"
: >"$tmp/runs"
for r in $(seq "$ROUNDS"); do
	run "$tmp/runs"
	read -r -a f < <(tail -1 "$tmp/runs")
	set -- "${f[@]}"
	printf '  run %d: %s pairs/s, p99 %s ms; %d commits for %d mutations (%.4f commits/mutation, %.1f mutations/commit)\n' \
	    "$r" "$1" "$2" "$3" "$4" "$(awk -v c="$3" -v m="$4" 'BEGIN { print c / m }')" \
	    "$(awk -v c="$3" -v m="$4" 'BEGIN { print m / c }')"
done

if [ "$PROFILE" = 1 ]; then
	echo "profile run (strace -c -f, then perf record -g, on berthd):"
fi
if [ "$PROFILE" = 1 ] && have strace "profile run's strace"; then
	strace -c -f -p "$berth_pid" -o "$tmp/strace" 2>/dev/null &
	st=$!
	pids="$pids $st"
	sleep 0.3
	run "$tmp/prof"
	kill -INT "$st"; wait "$st" 2>/dev/null || true
	read -r -a f < <(tail -1 "$tmp/prof")
	set -- "${f[@]}"
	echo "  under strace: $1 pairs/s, $4 mutations, $3 commits"
	awk -v m="$4" '$NF ~ /^(fdatasync|fsync|pwrite64|epoll_ctl|writev|readv|socket|bind)$/ {
		printf "    %-10s %8d calls, %.3f per mutation\n", $NF, $4, $4 / m }' \
	    "$tmp/strace"
fi
if [ "$PROFILE" = 1 ] && have perf "profile run's perf"; then
	perf record -q -g -o "$tmp/perf.data" -p "$berth_pid" \
	    -- sleep "$SECS" 2>/dev/null &
	pf=$!
	pids="$pids $pf"
	run "$tmp/prof"
	wait "$pf" 2>/dev/null || true
	echo "  perf, by library:"
	perf report -i "$tmp/perf.data" --no-children --stdio -g none \
	    --sort dso --percent-limit 1 2>/dev/null |
	    grep -E '^ +[0-9]' | sed 's/^ */    /'
	echo "  perf, hottest symbols:"
	perf report -i "$tmp/perf.data" --no-children --stdio -g none \
	    --sort dso,sym --percent-limit 0.7 2>/dev/null |
	    grep -E '^ +[0-9]' | head -25 | sed 's/^ */    /'
fi

pps=$(cut -d' ' -f1 "$tmp/runs" | median)
p99=$(cut -d' ' -f2 "$tmp/runs" | median)
cpm=$(awk '{ c += $3; m += $4 } END { printf "%.4f", c / m }' "$tmp/runs")
echo "medians: $pps pairs/s, p99 $p99 ms; $cpm commits per mutation overall"
printf 'RESULT concurrent_pairs_per_s %.0f pairs/s\n' "$pps"
printf 'RESULT concurrent_pair_p99_ms %.3f ms\n' "$p99"
printf 'RESULT concurrent_commits_per_mutation %s commits/mutation\n' "$cpm"
