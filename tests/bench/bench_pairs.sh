#!/bin/bash
# bench_pairs.sh: durable acquire+release pairs per second through
# libberth on one connection, against portpicker's portserver (Debian's
# python3-portpicker, driven by portpicker's own client, memory only).
#
# Each round runs, in this order, on fresh servers:
#   A  berthd, database on disk (default synchronous=FULL, WAL): bench_pairs
#   B  /usr/bin/portserver: N x portpicker.get_port_from_port_server()
#   C  berthd, database on tmpfs (/dev/shm): what the fsync costs
#   D  berthd --db :memory: (no storage at all: the CPU path's ceiling)
#   E  bench_echo: two processes that only echo 200 bytes back and forth
#      on one loopback connection (the ceiling of any server: a pair is
#      two such round trips)
# and the figures are the medians over the rounds.
#
# What is compared: a berth "pair" is two requests, each committed to
# SQLite before it is answered (acquire, then release with the token).
# A portserver request is one request that allocates a port to a pid and
# keeps nothing on disk; its release is implicit (the port returns to the
# pool when that pid dies, checked on a later request), so one portserver
# request is counted as one pair. The driver asks on behalf of its own
# pid, which stays alive for the whole round, as a test runner would.
#
# Run from the build directory (or set BERTHD and BENCH_BIN or BENCH_PAIRS).
# Knobs: BENCH_PAIRS_N (pairs per run, default 2000), BENCH_ROUNDS
# (default 3), BENCH_NAMES (names rotated by bench_pairs, default 1),
# BENCH_DISK_DIR (where the on-disk database goes, default: $TMPDIR
# or /tmp, or the build directory if that is a tmpfs), BENCH_TMPFS_DIR (default /dev/shm), PORTPICKER_PYTHON
# (default /usr/bin/python3), PORTSERVER (default /usr/bin/portserver).
#
# Without portserver (or a python that imports portpicker) the berth rows
# and the echo still run; the portserver row and the ratio are skipped,
# saying so.
#
# Prints RESULT lines: pairs_per_s_berth, pairs_per_s_portserver,
# pairs_ratio_berth_portserver, pair_p99_ms_berth, pairs_per_s_berth_tmpfs,
# and a few more for context.
set -eu

# bench_init, need_berthd, bench_prog, disk_dir, have, start_berthd,
# stop_pid and median come from lib.sh.
. "$(dirname "$0")/lib.sh"
bench_init pairs
need_berthd
BENCH_PAIRS=${BENCH_PAIRS:-$(bench_prog bench_pairs)}
BENCH_ECHO=${BENCH_ECHO:-$(dirname "$BENCH_PAIRS")/bench_echo}
N=${BENCH_PAIRS_N:-2000}
ROUNDS=${BENCH_ROUNDS:-3}
NAMES=${BENCH_NAMES:-1}
DISK_DIR=$(disk_dir)
TMPFS_DIR=${BENCH_TMPFS_DIR:-/dev/shm}
PSPY=${PORTPICKER_PYTHON:-/usr/bin/python3}
PORTSERVER=${PORTSERVER:-/usr/bin/portserver}
RANGE=15000-24999	# portserver's default pool, so both hand out the same

for f in "$BENCH_PAIRS" "$BENCH_ECHO"; do
	[ -x "$f" ] || die "$f: not found (make bench builds it)"
done
PS=1
if ! have "$PORTSERVER" "portserver row of pairs: berth alone, no ratio"; then
	PS=0
elif ! "$PSPY" -c 'import portpicker' 2>/dev/null; then
	echo "skipped: portserver row of pairs: berth alone, no ratio" \
	    "(no portpicker for $PSPY)"
	PS=0
fi
if [ "$N" -gt 9000 ]; then
	# portserver keeps every port its live client asked for.
	die "BENCH_PAIRS_N must be <= 9000"
fi

disk=$(mktemp -d "$DISK_DIR/bench-pairs-db.XXXXXX")
shm=$(mktemp -d "$TMPFS_DIR/bench-pairs-db.XXXXXX")
remove_dbs() {
	rm -rf "$disk" "$shm"
}
bench_cleanup_hook=remove_dbs

# berth_run DB OUT: one bench_pairs run on a fresh berthd; appends
# "pairs_per_s p99_ms" to OUT. (Not in a subshell, so that the EXIT trap
# knows every pid.)
berth_run() {
	local out
	start_berthd "$1"
	out=$("$BENCH_PAIRS" -a "$berth_addr" -n "$N" -k "$NAMES")
	stop_pid "$berth_pid"
	[ "$1" = ":memory:" ] || rm -f "$1" "$1"-wal "$1"-shm
	echo "$out" | sed -n 's/^bench_pairs .*pairs_per_s=\([0-9.]*\) .*p99_ms=\([0-9.]*\) .*/\1 \2/p' >>"$2"
}

cat >"$tmp/psdrive.py" <<'EOF'
# N requests to portserver through portpicker's own client, on behalf of
# this (live) process; 50 more first as a warm-up.
import os, sys, time
import portpicker

addr, n = sys.argv[1], int(sys.argv[2])
pid = os.getpid()
for i in range(50):
    if not portpicker.get_port_from_port_server(addr, pid=pid):
        sys.exit("portserver: no port in the warm-up")
lat = []
start = time.perf_counter()
for i in range(n):
    t0 = time.perf_counter()
    port = portpicker.get_port_from_port_server(addr, pid=pid)
    lat.append(time.perf_counter() - t0)
    if not port:
        sys.exit("portserver: no port for request %d" % i)
secs = time.perf_counter() - start
lat.sort()
print("%.1f %.4f" % (n / secs, lat[min(n - 1, int(n * 0.99 + 0.999999) - 1)] * 1e3))
EOF

# portserver_run ROUND OUT: one driver run on a fresh portserver; appends
# "requests_per_s p99_ms" to OUT.
portserver_run() {
	local name=berth-bench-$$-$1 ps
	# Its INFO log (two lines per request) is how it ships; send it to
	# /dev/null rather than a file to spare it the disk.
	"$PSPY" "$PORTSERVER" --portserver_address="@$name" \
	    --portserver_static_pool="$RANGE" 2>/dev/null &
	ps=$!
	pids="$pids $ps"
	for _ in $(seq 200); do
		grep -q "@$name\$" /proc/net/unix && break
		sleep 0.05
	done
	"$PSPY" "$tmp/psdrive.py" "@$name" "$N" >>"$2"
	stop_pid "$ps"
}


echo "bench_pairs: $N acquire+release pairs on one connection, $ROUNDS rounds"
echo "  berthd: $BERTHD (pool $RANGE, --log-level warn)"
echo "  disk db in $DISK_DIR ($(stat -f -c %T "$disk")), tmpfs db in" \
    "$TMPFS_DIR ($(stat -f -c %T "$shm"))"
if [ $PS = 1 ]; then
	echo "  portserver: $PORTSERVER via $PSPY, client portpicker" \
	    "$("$PSPY" -c 'import importlib.metadata as m; print(m.version("portpicker"))' 2>/dev/null || echo '?')"
else
	echo "  portserver: skipped"
fi
start_berthd "$disk/check.db"
"$PY" - "$berth_addr" <<'EOF'
import json, sys, urllib.request
st = json.load(urllib.request.urlopen("http://%s/v1/status" % sys.argv[1]))
print("  berthd %s: synchronous=%s" % (st["version"], st.get("synchronous")))
EOF
stop_pid "$berth_pid"
rm -f "$disk"/check.db*

: >"$tmp/disk"; : >"$tmp/ps"; : >"$tmp/shm"; : >"$tmp/mem"; : >"$tmp/echo"
for r in $(seq "$ROUNDS"); do
	berth_run "$disk/berth.db" "$tmp/disk"
	if [ $PS = 1 ]; then
		portserver_run "$r" "$tmp/ps"
	else
		echo "- -" >>"$tmp/ps"
	fi
	berth_run "$shm/berth.db" "$tmp/shm"
	berth_run ":memory:" "$tmp/mem"
	"$BENCH_ECHO" -n $((N * 4)) | sed -n \
	    's/^bench_echo .*roundtrips_per_s=\([0-9.]*\) .*/\1/p' >>"$tmp/echo"
	read -r a ap < <(tail -1 "$tmp/disk")
	read -r b bp < <(tail -1 "$tmp/ps")
	read -r c _ < <(tail -1 "$tmp/shm")
	read -r d _ < <(tail -1 "$tmp/mem")
	read -r e < <(tail -1 "$tmp/echo")
	printf '  round %d: berth disk %s pairs/s (p99 %s ms), portserver %s req/s (p99 %s ms), berth tmpfs %s pairs/s, berth :memory: %s pairs/s, bare echo %s round trips/s\n' \
	    "$r" "$a" "$ap" "$b" "$bp" "$c" "$d" "$e"
done

bd=$(cut -d' ' -f1 "$tmp/disk" | median)
bp=$(cut -d' ' -f2 "$tmp/disk" | median)
sd=$(cut -d' ' -f1 "$tmp/shm" | median)
sp=$(cut -d' ' -f2 "$tmp/shm" | median)
md=$(cut -d' ' -f1 "$tmp/mem" | median)
ed=$(median <"$tmp/echo")
echo "medians: berth (disk) $bd pairs/s, berth tmpfs $sd, :memory: $md pairs/s"
echo "ceiling: a bare echo does $ed round trips/s on one connection, so no" \
    "server can do more than $(awk -v e="$ed" 'BEGIN { printf "%.0f", e / 2 }')" \
    "two-request pairs/s"
if [ $PS = 1 ]; then
	pd=$(cut -d' ' -f1 "$tmp/ps" | median)
	pp=$(cut -d' ' -f2 "$tmp/ps" | median)
	ratio=$(awk -v a="$bd" -v b="$pd" 'BEGIN { printf "%.2f", a / b }')
	ceil=$(awk -v e="$ed" -v b="$pd" 'BEGIN { printf "%.2f", e / 2 / b }')
	echo "portserver $pd req/s: berth/portserver $ratio; the ceiling is" \
	    "$ceil x portserver"
fi
printf 'RESULT pairs_per_s_berth %.0f pairs/s\n' "$bd"
printf 'RESULT pair_p99_ms_berth %.3f ms\n' "$bp"
printf 'RESULT pairs_per_s_berth_tmpfs %.0f pairs/s\n' "$sd"
printf 'RESULT pair_p99_ms_berth_tmpfs %.3f ms\n' "$sp"
printf 'RESULT pairs_per_s_berth_memory %.0f pairs/s\n' "$md"
printf 'RESULT loopback_roundtrips_per_s %.0f roundtrips/s\n' "$ed"
if [ $PS = 1 ]; then
	printf 'RESULT pairs_per_s_portserver %.0f pairs/s\n' "$pd"
	printf 'RESULT pairs_ratio_berth_portserver %s x\n' "$ratio"
	printf 'RESULT pair_p99_ms_portserver %.3f ms\n' "$pp"
	printf 'RESULT pairs_ceiling_ratio_portserver %s x\n' "$ceil"
fi
