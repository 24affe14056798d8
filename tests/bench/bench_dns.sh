#!/bin/bash
# bench_dns.sh - berthd's DNS against dnsmasq answering the same records
# from a static zone: queries per second, p99 latency and CPU per query
# (target: berthd/dnsmasq queries per second >= 1).
#
# berthd gets eight leases (web api db cache queue auth search metrics,
# proto tcp, host 127.0.0.1); dnsmasq, on a free loopback UDP port, gets
# the same records on its command line:
#   dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --no-daemon
#     --port P --listen-address 127.0.0.1 --bind-interfaces --local=/berth/
#     --host-record=NAME.berth,127.0.0.1
#     --srv-host=_NAME._tcp.berth,NAME.berth,PORT,0,0   (per name)
# (--local=/berth/: the zone is answered from those records and nothing
# is forwarded; TTL 0 on both, as berthd's local answers.) Before
# measuring, dig asks both servers every question of the mix and the
# bench stops if any answer differs (status, answer and additional
# records; the flags differ: dnsmasq sets RA).
#
# The mix is what service discovery asks: for each of the eight names
# "NAME.berth A" and "_NAME._tcp.berth SRV" (half A, half SRV; each SRV
# answer carries the target's A record as additional), asked in order,
# over and over. Three kinds of run, per server per round, alternating
# berthd dnsmasq berthd dnsmasq ...:
#   sat: bench_dnsq -q OUTSTANDING (100) for DURATION seconds: queries per
#     second, p99 latency (mostly the wait behind 100 outstanding
#     queries), server CPU per query; the ratio is the median of the
#     rounds' berthd/dnsmasq ratios of these runs;
#   paced: bench_dnsq -Q RATE (10,000 q/s), well below what either serves:
#     p50 and p99 latency of a question that finds the server idle;
#   dnsperf: dnsperf -q OUTSTANDING for DURATION seconds, the usual tool,
#     as a check on the sat runs.
# Why bench_dnsq (tests/bench/bench_dnsq.c) and not dnsperf for the
# figures: dnsperf 2.10 gives no latency percentiles (only -v, a line per
# answer, which costs it more CPU still), and it spends about 10 us of CPU
# per query on this machine (11 with -v), more than either server (berthd
# 7-8 us, dnsmasq 9), so with the server on one core and dnsperf on the
# other, dnsperf sets the pace and both servers come out alike.
# bench_dnsq, one thread sending and receiving in batches (sendmmsg,
# recvmmsg), spends about 6.5 us.
# CPU per query is the server's user+system time (/proc/PID/stat) over
# the run divided by the answers; "busy" is that time over the run's
# length, for the server and for the load generator: the side near 100%
# set the pace. On this small machine other load moves queries per second
# more than CPU per query, the steadier comparison of the servers.
#
# Needs: BERTHD, bench_dnsq (built by make bench), dig, curl, python3;
# dnsmasq for the comparison (without it berthd alone is measured, saying
# so); dnsperf for the check; taskset, and strace or perf for the
# optional looks inside.
# Prints a table and RESULT lines: dns_qps_berth, dns_qps_dnsmasq,
# dns_ratio_berth_dnsmasq, dns_p99_ms_berth, dns_p99_ms_dnsmasq,
# dns_paced_p99_ms_berth, dns_paced_p99_ms_dnsmasq,
# dns_cpu_us_per_query_berth, dns_cpu_us_per_query_dnsmasq,
# dns_dnsperf_qps_berth, dns_dnsperf_qps_dnsmasq.
# When run.sh sets BENCH_DOC_DIR, also writes its section of
# docs/performance.md there (dns.md), with tests/bench/bench_dns.md (what
# the figures say) at its end.
#
# Knobs (environment):
#   BENCH_ROUNDS=4            rounds; each runs the three kinds per server
#   BENCH_DURATION=5          seconds per run
#   BENCH_DNS_OUTSTANDING=100 queries outstanding in sat and dnsperf runs
#   BENCH_DNS_RATE=10000      queries per second of the paced runs
#   BENCH_PIN=1               servers on CPU 0, the load on CPU 1 (taskset)
#   BENCH_STRACE=0            1: then one sat run per server under
#                             strace -c -f: system calls per query
#   BENCH_PERF=0              1: then one sat run of berthd under perf
#                             record: the top of its profile
#   BENCH_KEEP=               non-empty: keep the temp dir
#   DNSPERF, DNSMASQ, DIG     binaries (default: PATH, or /usr/sbin)

set -euo pipefail

# bench_init, need_berthd, need_tool, have, bench_prog, start_berthd and
# median come from lib.sh.
. "$(dirname "$0")/lib.sh"
bench_init dns
need_berthd

ROUNDS=${BENCH_ROUNDS:-4}
DURATION=${BENCH_DURATION:-5}
OUTSTANDING=${BENCH_DNS_OUTSTANDING:-100}
RATE=${BENCH_DNS_RATE:-10000}
PIN=${BENCH_PIN:-1}
STRACE=${BENCH_STRACE:-0}
PERF=${BENCH_PERF:-0}
NAMES="web api db cache queue auth search metrics"
DNSQ=$(bench_prog bench_dnsq)
DNSPERF=${DNSPERF:-dnsperf}
DIG=${DIG:-dig}
DNSMASQ=${DNSMASQ:-$(command -v dnsmasq || echo /usr/sbin/dnsmasq)}

need_tool "$DIG"
need_tool curl
SERVERS="berth dnsmasq"
have "$DNSMASQ" "dnsmasq half of dns: berthd alone, no ratio" || SERVERS=berth
KINDS="sat paced dnsperf"
have "$DNSPERF" "dnsperf check of dns" || KINDS="sat paced"
for v in ROUNDS DURATION OUTSTANDING RATE; do
	[ "${!v}" -ge 1 ] 2>/dev/null || die "$v must be a positive integer"
done

SERVER_CPU=()
CLIENT_CPU=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SERVER_CPU=(taskset -c 0)
	CLIENT_CPU=(taskset -c 1)
	pinning="servers on CPU 0, bench_dnsq and dnsperf on CPU 1 (taskset)"
else
	pinning="none"
fi

CLK_TCK=$(getconf CLK_TCK)
TMP=$tmp
QUERIES=$TMP/queries
DNSMASQ_PID=

# At exit, before lib.sh ends berthd and removes $tmp.
stop_dnsmasq() {
	if [ -n "$DNSMASQ_PID" ]; then
		kill "$DNSMASQ_PID" 2>/dev/null || true
		wait "$DNSMASQ_PID" 2>/dev/null || true
		DNSMASQ_PID=
	fi
}
bench_cleanup_hook=stop_dnsmasq

# A free loopback UDP port (the kernel's pick; released before use, so the
# caller retries if someone takes it in between).
free_udp_port() {
	"$PY" -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# dig's view of one answer, for comparing the servers: the status and
# the answer and additional records, one a line, spaces squeezed.
dig_answer() {
	"$DIG" +notcp +ignore +noedns +tries=1 +time=2 -p "$1" @127.0.0.1 \
	    "$2" "$3" +noall +comments +answer +additional |
	    awk '/->>HEADER<<-/ { sub(/.*status: /, ""); sub(/,.*/, "");
		print "status", $0; next }
		/^;/ || NF == 0 { next }
		{ $1 = $1; print }'
}

# berthd with the eight leases; sets BERTHD_PID, BERTH_DNS_PORT and
# PORT_OF_<name>.
run_berthd() {
	local n status http
	BERTHD_PREFIX="${SERVER_CPU[*]:-}"
	start_berthd "$TMP/berth.db"
	BERTHD_PID=$berth_pid
	http=http://$berth_addr
	for n in $NAMES; do
		curl -sf -o "$TMP/lease.json" -H 'Content-Type: application/json' \
		    --data "{\"name\":\"$n\"}" "$http/v1/services" ||
		    die "acquiring $n failed"
		printf -v "PORT_OF_$n" '%s' "$("$PY" -c 'import json, sys
print(json.load(open(sys.argv[1]))["port"])' "$TMP/lease.json")"
	done
	status=$(curl -sf "$http/v1/status") || die "GET /v1/status failed"
	BERTH_DNS_PORT=$("$PY" -c 'import json, sys
d = json.loads(sys.argv[1])["dns"]
print(d["address"].rsplit(":", 1)[1] if d else "")' "$status")
	[ -n "$BERTH_DNS_PORT" ] || die "berthd answers no DNS (/v1/status dns is null)"
}

# dnsmasq with the same records on a free port; sets DNSMASQ_PID,
# DNSMASQ_PORT and DNSMASQ_ARGS.
start_dnsmasq() {
	local try i n port records=()
	for n in $NAMES; do
		port=PORT_OF_$n
		records+=("--host-record=$n.berth,127.0.0.1"
		    "--srv-host=_$n._tcp.berth,$n.berth,${!port},0,0")
	done
	for try in 1 2 3 4 5; do
		DNSMASQ_PORT=$(free_udp_port)
		DNSMASQ_ARGS=(--conf-file=/dev/null --no-resolv --no-hosts
		    --no-daemon --port "$DNSMASQ_PORT" --listen-address 127.0.0.1
		    --bind-interfaces --local=/berth/ --log-facility=-
		    "${records[@]}")
		"${SERVER_CPU[@]}" "$DNSMASQ" "${DNSMASQ_ARGS[@]}" </dev/null \
		    >>"$TMP/dnsmasq.log" 2>&1 &
		DNSMASQ_PID=$!
		for i in $(seq 100); do
			if [ -n "$(dig_answer "$DNSMASQ_PORT" web.berth A)" ]; then
				return 0
			fi
			kill -0 "$DNSMASQ_PID" 2>/dev/null || break
			sleep 0.05
		done
		stop_dnsmasq
	done
	cat "$TMP/dnsmasq.log" >&2
	die "dnsmasq did not start"
}

# Both servers must give the same answer to every question of the mix.
check_answers() {
	local name type a b
	while read -r name type; do
		a=$(dig_answer "$BERTH_DNS_PORT" "$name" "$type")
		case $a in
		"status NOERROR"$'\n'*) ;;
		*) die "berthd's answer to $name $type: ${a:-none}" ;;
		esac
		[ "$SERVERS" = berth ] && continue
		b=$(dig_answer "$DNSMASQ_PORT" "$name" "$type")
		if [ "$a" != "$b" ]; then
			echo "berthd:" >&2
			echo "$a" >&2
			echo "dnsmasq:" >&2
			echo "$b" >&2
			die "the servers answer $name $type differently"
		fi
	done <"$QUERIES"
}

# /proc/PID/stat's fields after the ")" that ends the command name,
# from the state on: $12 $13 are utime and stime, $14 $15 the children's.
# cpu_ticks PID: the user + system clock ticks PID has used so far.
cpu_ticks() {
	local f
	f=$(sed 's/.*) //' "/proc/$1/stat") || die "no process $1"
	set -- $f
	echo $((${12} + ${13}))
}
# child_ticks PID: those of the children shell PID has waited for; around
# a run, what the load generator used.
child_ticks() {
	local f
	f=$(sed 's/.*) //' "/proc/$1/stat")
	set -- $f
	echo $((${14} + ${15}))
}

server_port() {
	if [ "$1" = berth ]; then echo "$BERTH_DNS_PORT"; else echo "$DNSMASQ_PORT"; fi
}
server_pid() {
	if [ "$1" = berth ]; then echo "$BERTHD_PID"; else echo "$DNSMASQ_PID"; fi
}

# run SERVER KIND SECONDS: one run of bench_dnsq (sat, paced) or dnsperf;
# prints "q/s p50_ms p99_ms server_cpu_us_per_query server_busy_percent
# load_busy_percent" (dnsperf: p50 and p99 "-"). Every answer must be
# NOERROR; more than 0.1% lost stops the bench.
run() {
	local s=$1 kind=$2 secs=$3 out=$TMP/run.out pid t0 t1 c0 c1 me=$BASHPID
	local port
	pid=$(server_pid "$s")
	port=$(server_port "$s")
	t0=$(cpu_ticks "$pid")
	c0=$(child_ticks "$me")
	case $kind in
	sat)	"${CLIENT_CPU[@]}" "$DNSQ" -p "$port" -d "$QUERIES" -l "$secs" \
		    -q "$OUTSTANDING" >"$out" 2>&1 ;;
	paced)	"${CLIENT_CPU[@]}" "$DNSQ" -p "$port" -d "$QUERIES" -l "$secs" \
		    -q "$OUTSTANDING" -Q "$RATE" >"$out" 2>&1 ;;
	dnsperf) "${CLIENT_CPU[@]}" "$DNSPERF" -s 127.0.0.1 -p "$port" \
		    -d "$QUERIES" -l "$secs" -q "$OUTSTANDING" >"$out" 2>&1 ;;
	esac || { tail -20 "$out" >&2; die "$kind run against $s failed"; }
	c1=$(child_ticks "$me")
	t1=$(cpu_ticks "$pid")
	awk -v ticks=$((t1 - t0)) -v cticks=$((c1 - c0)) -v hz="$CLK_TCK" \
	    -v secs="$secs" -v who="$s" '
	$1 == "bench_dnsq" {
		for (i = 2; i <= NF; i++) {
			split($i, kv, "=")
			f[kv[1]] = kv[2]
		}
		qps = f["qps"]; done = f["answered"]; lost = f["lost"]
		p50 = f["p50_ms"]; p99 = f["p99_ms"]; bad = f["other_rcode"]
	}
	# dnsperf: the summary.
	/Queries completed:/ { done = $3 }
	/Queries lost:/ { lost = $3 }
	/Queries per second:/ { qps = $4; p50 = p99 = "-" }
	/Response codes:/ {
		for (i = 3; i < NF; i += 3)
			if ($i != "NOERROR") bad += $(i + 1)
	}
	END {
		if (qps == "" || done <= 0) {
			print who ": no figures from the run" > "/dev/stderr"
			exit 1
		}
		if (bad > 0) {
			printf "%s: %d answers not NOERROR\n", who, bad > "/dev/stderr"
			exit 1
		}
		if (lost > 0.001 * (done + lost)) {
			printf "%s: %d of %d queries lost\n", who, lost,
			    done + lost > "/dev/stderr"
			exit 1
		}
		printf "%.0f %s %s %.2f %.0f %.0f\n", qps, p50, p99,
		    ticks * 1e6 / hz / done, ticks * 100 / hz / secs,
		    cticks * 100 / hz / secs
	}' "$out" || { tail -20 "$out" >&2; die "$kind run against $s failed"; }
}

for n in $NAMES; do
	printf '%s.berth A\n_%s._tcp.berth SRV\n' "$n" "$n"
done >"$QUERIES"

run_berthd
if [ "$SERVERS" != berth ]; then
	start_dnsmasq
fi
check_answers

echo "== dns: berthd vs dnsmasq, A and SRV of 8 names over UDP =="
echo "berthd:   $BERTHD (pid $BERTHD_PID) at udp 127.0.0.1:$BERTH_DNS_PORT"
if [ "$SERVERS" != berth ]; then
	echo "dnsmasq:  $("$DNSMASQ" --version | head -1 | sed 's/  Copyright.*//')" \
	    "(pid $DNSMASQ_PID) at udp 127.0.0.1:$DNSMASQ_PORT"
	echo "          $DNSMASQ ${DNSMASQ_ARGS[*]:0:11}" \
	    "--host-record=NAME.berth,127.0.0.1" \
	    "--srv-host=_NAME._tcp.berth,NAME.berth,PORT,0,0 (x8)"
	echo "answers:  identical on both (dig: status, answer, additional)" \
	    "for all $(wc -l <"$QUERIES") questions"
else
	echo "dnsmasq:  skipped (no dnsmasq)"
fi
echo "queries:  $(tr '\n' ',' <"$QUERIES" | sed 's/,$//; s/,/, /g') (in order, over and over)"
echo "runs:     sat: $DNSQ -q $OUTSTANDING -l $DURATION"
echo "          paced: $DNSQ -Q $RATE -l $DURATION"
if [[ $KINDS == *dnsperf* ]]; then
	echo "          dnsperf: dnsperf $("$DNSPERF" -h 2>&1 | sed -n 's/^Version //p' | head -1)" \
	    "-q $OUTSTANDING -l $DURATION"
fi
echo "          $ROUNDS rounds, alternating"
echo "pinning:  $pinning"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) before the runs (other load skews results)"

# Warm both servers up before measuring.
for s in $SERVERS; do
	run "$s" sat 1 >/dev/null
done

printf '\n%-6s %-8s %-8s %10s %9s %9s %11s %6s %6s\n' round server run "q/s" \
    "p50 ms" "p99 ms" "cpu us/q" busy load
for s in $SERVERS; do
	for k in $KINDS; do
		: >"$TMP/$s.$k"
	done
done
for r in $(seq "$ROUNDS"); do
	for k in $KINDS; do
		for s in $SERVERS; do
			res=$(run "$s" "$k" "$DURATION")
			echo "$res" >>"$TMP/$s.$k"
			printf '%-6s %-8s %-8s %10.0f %9s %9s %11.2f %5s%% %5s%%\n' \
			    "$r" "$s" "$k" $res
		done
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# med SERVER KIND N: the median of column N of those runs.
med() {
	cut -d' ' -f"$3" "$TMP/$1.$2" | median
}
for s in $SERVERS; do
	printf -v "QPS_$s" '%.0f' "$(med "$s" sat 1)"
	printf -v "P99_$s" '%.3f' "$(med "$s" sat 3)"
	printf -v "CPU_$s" '%.2f' "$(med "$s" sat 4)"
	printf -v "PACED50_$s" '%.3f' "$(med "$s" paced 2)"
	printf -v "PACED99_$s" '%.3f' "$(med "$s" paced 3)"
	if [[ $KINDS == *dnsperf* ]]; then
		printf -v "DNSPERF_$s" '%.0f' "$(med "$s" dnsperf 1)"
	fi
done
echo
printf '%-8s %10s %13s %13s %11s %12s\n' median "q/s" "p99 ms sat" \
    "p99 ms paced" "cpu us/q" "dnsperf q/s"
for s in $SERVERS; do
	q=QPS_$s p=P99_$s pp=PACED99_$s c=CPU_$s d=DNSPERF_$s
	printf '%-8s %10s %13s %13s %11s %12s\n' "$s" "${!q}" "${!p}" \
	    "${!pp}" "${!c}" "${!d:--}"
done
if [ "$SERVERS" != berth ]; then
	# ratios KIND: the rounds' ratios, round r's berthd over its dnsmasq.
	ratios() {
		paste -d' ' "$TMP/berth.$1" "$TMP/dnsmasq.$1" |
		    awk '{ printf "%.3f\n", $1 / $(NF / 2 + 1) }'
	}
	ratios sat >"$TMP/ratios"
	RATIO=$(median <"$TMP/ratios" | awk '{ printf "%.3f", $1 }')
	RATIO_RANGE=$(sort -g "$TMP/ratios" | sed -n '1p;$p' | paste -sd- -)
	echo "berthd/dnsmasq queries per second: $RATIO (rounds" \
	    "$(paste -sd' ' "$TMP/ratios"); target >= 1)"
	if [[ $KINDS == *dnsperf* ]]; then
		ratios dnsperf >"$TMP/ratios.dnsperf"
		DNSPERF_RATIO=$(median <"$TMP/ratios.dnsperf" | awk '{ printf "%.3f", $1 }')
		echo "the same with dnsperf: $DNSPERF_RATIO (rounds" \
		    "$(paste -sd' ' "$TMP/ratios.dnsperf"))"
	fi
	CPU_RATIO=$(awk -v b="$CPU_berth" -v d="$CPU_dnsmasq" 'BEGIN { printf "%.3f", d / b }')
	echo "server CPU per query, dnsmasq/berthd: $CPU_RATIO (above 1: berthd spends less)"
	echo "(busy: the server's CPU use over the run; load: the load generator's."
	echo " The side near 100% set the pace; with neither near it other load on"
	echo " the machine did, and q/s says little; cpu us/q still compares the"
	echo " servers)"
fi
echo "load:     $LOAD_AFTER after the runs"

# System calls per answered query, from strace -c -f on the server.
strace_look() {
	local s pid st
	echo
	echo "== strace -c -f: system calls per query, one sat ${DURATION}s run each =="
	command -v strace >/dev/null || { echo "strace not installed"; return 0; }
	for s in $SERVERS; do
		pid=$(server_pid "$s")
		strace -c -f -q -p "$pid" -o "$TMP/strace.$s" &
		st=$!
		sleep 0.5
		run "$s" sat "$DURATION" >/dev/null
		kill -INT "$st" 2>/dev/null || true
		wait "$st" 2>/dev/null || true
		awk -v who="$s" -v n="$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' \
		    "$TMP/run.out")" '
		$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
			calls = $4
			printf "  %-8s %-16s %7.3f per query\n", who, $NF, calls / n
			all += calls
		}
		END { printf "  %-8s %-16s %7.3f per query\n", who, "(all)", all / n }
		' "$TMP/strace.$s"
	done
}

perf_look() {
	local lpid
	echo
	echo "== perf: berthd under a sat ${DURATION}s run =="
	command -v perf >/dev/null || { echo "perf not installed"; return 0; }
	"${CLIENT_CPU[@]}" "$DNSQ" -p "$BERTH_DNS_PORT" -d "$QUERIES" \
	    -l "$((DURATION + 2))" -q "$OUTSTANDING" >/dev/null 2>&1 &
	lpid=$!
	sleep 1
	perf_profile "$BERTHD_PID" "$DURATION" "$lpid" 40
}

[ "$STRACE" = 1 ] && strace_look
[ "$PERF" = 1 ] && perf_look

# The section of docs/performance.md, when run.sh asks for it.
write_section() {
	local dm dp
	dm=$("$DNSMASQ" --version | head -1 | awk '{ print $3 }')
	{
		echo "## DNS"
		echo
		echo "tests/bench/bench_dns.sh (alone: \`make bench BENCH_ONLY=dns\`) on"
		echo "$(date -u +%Y-%m-%d), load average $LOAD_AFTER after the runs: berthd's DNS"
		echo "against dnsmasq $dm answering the same records from its command line"
		echo "(\`--local=/berth/ --host-record --srv-host\`, nothing forwarded), both on"
		echo "CPU 0, the load generator on CPU 1. The mix: \`NAME.berth A\` and"
		echo "\`_NAME._tcp.berth SRV\` for eight names, each SRV answer with the"
		echo "target's A as additional, the same answers from both. sat:"
		echo "tests/bench/bench_dnsq with $OUTSTANDING queries outstanding for $DURATION s, whose"
		echo "p99 is mostly the wait behind them; paced: $RATE queries a second,"
		echo "the latency of a query that finds the server idle. Rounds: $ROUNDS,"
		echo "berthd and dnsmasq alternating; medians."
		echo
		echo "| figure | berthd | dnsmasq |"
		echo "|---|---|---|"
		echo "| queries/s, sat | $QPS_berth | $QPS_dnsmasq |"
		echo "| p99 ms, sat | $P99_berth | $P99_dnsmasq |"
		echo "| p50 / p99 ms, paced | $PACED50_berth / $PACED99_berth | $PACED50_dnsmasq / $PACED99_dnsmasq |"
		echo "| server CPU µs per query, sat | $CPU_berth | $CPU_dnsmasq |"
		if [[ $KINDS == *dnsperf* ]]; then
			dp=$("$DNSPERF" -h 2>&1 | sed -n 's/^Version //p' | head -1)
			echo "| queries/s, dnsperf $dp -q $OUTSTANDING | $DNSPERF_berth | $DNSPERF_dnsmasq |"
		fi
		echo
		echo "berthd/dnsmasq queries per second: $RATIO, the median of the"
		echo "rounds' ratios ($(paste -sd' ' "$TMP/ratios" | sed 's/ /, /g'); min-max $RATIO_RANGE)."
		if [ -n "${DNSPERF_RATIO:-}" ]; then
			echo "With dnsperf as the load generator: $DNSPERF_RATIO"
			echo "($(paste -sd' ' "$TMP/ratios.dnsperf" | sed 's/ /, /g'))."
		fi
		echo "CPU per query, dnsmasq/berthd: $CPU_RATIO. Each sat round, with the"
		echo "CPU use of the server and of the load generator over the run (the"
		echo "side near 100% set the pace; with neither, other load did):"
		echo
		echo "| round | berthd q/s | busy, load | dnsmasq q/s | busy, load |"
		echo "|---|---|---|---|---|"
		paste -d' ' "$TMP/berth.sat" "$TMP/dnsmasq.sat" |
		    awk '{ printf "| %d | %s | %s%%, %s%% | %s | %s%%, %s%% |\n",
			NR, $1, $5, $6, $7, $11, $12 }'
		# A word of warning when no side was near its limit.
		cat "$TMP/berth.sat" "$TMP/dnsmasq.sat" | awk '
		{ m = ($5 > $6 ? $5 : $6); if (m >= 90) full++ }
		END {
			if (full * 2 >= NR) exit
			print ""
			printf "In %d of these %d runs neither the server nor the load\n", NR - full, NR
			print "generator was near 100% busy: other load on the machine set the"
			print "pace, so queries per second here are noisy; CPU per query is the"
			print "steadier comparison."
		}'
		if [ -f "$BENCH_LIB_DIR/bench_dns.md" ]; then
			echo
			cat "$BENCH_LIB_DIR/bench_dns.md"
		fi
	} >"$BENCH_DOC_DIR/dns.md"
}
if [ -n "${BENCH_DOC_DIR:-}" ] && [ "$SERVERS" != berth ]; then
	write_section
fi

echo
echo "RESULT dns_qps_berth $QPS_berth q/s"
echo "RESULT dns_p99_ms_berth $P99_berth ms"
echo "RESULT dns_paced_p99_ms_berth $PACED99_berth ms"
echo "RESULT dns_cpu_us_per_query_berth $CPU_berth us"
if [[ $KINDS == *dnsperf* ]]; then
	echo "RESULT dns_dnsperf_qps_berth $DNSPERF_berth q/s"
fi
if [ "$SERVERS" != berth ]; then
	echo "RESULT dns_qps_dnsmasq $QPS_dnsmasq q/s"
	echo "RESULT dns_p99_ms_dnsmasq $P99_dnsmasq ms"
	echo "RESULT dns_paced_p99_ms_dnsmasq $PACED99_dnsmasq ms"
	echo "RESULT dns_cpu_us_per_query_dnsmasq $CPU_dnsmasq us"
	if [[ $KINDS == *dnsperf* ]]; then
		echo "RESULT dns_dnsperf_qps_dnsmasq $DNSPERF_dnsmasq q/s"
	fi
	echo "RESULT dns_ratio_berth_dnsmasq $RATIO x"
fi
