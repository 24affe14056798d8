#!/bin/bash
# bench_lookup.sh - lookup throughput and p99 latency: berthd vs nginx.
#
# wrk sends keep-alive GETs of one leased name to berthd, and the same GETs
# to an nginx (one worker) that returns the identical JSON body with the same
# extra headers from memory.  The two servers alternate, berth nginx berth
# nginx ..., and the medians are compared (targets: berth/nginx >= 1.0,
# CPU per request at most nginx's, p99 at most nginx's x1.2).  With
# BENCH_BASELINE naming another berthd (an older build), it joins the
# rotation as "base", for a before/after in the same minutes.
#
# Then, with strace installed, one more run of each server under
# `strace -c -f` counts the system calls it makes per request (target:
# 3 or fewer for berthd); strace slows the server, so those runs give
# counts, not speed.
#
# Besides req/s and p99, each run reads the server's own CPU time
# (/proc/PID/stat, berthd or nginx's worker) and reports CPU microseconds
# per request and how busy the server was: on this 2-core machine one wrk
# thread can saturate before nginx does, and other load skews req/s, so
# the CPU cost per request is the steadier comparison of the servers.
#
# Needs: BERTHD (path to berthd), wrk, curl, python3; nginx for the
# comparison (without it berthd alone is measured and the nginx half is
# skipped, saying so); taskset and perf optionally.  Prints a table and
# RESULT lines: lookup_rps_berth, lookup_rps_nginx, lookup_p99_ms_berth,
# lookup_p99_ms_nginx, lookup_ratio_berth_nginx,
# lookup_cpu_us_per_req_berth, lookup_cpu_us_per_req_nginx,
# lookup_cpu_ratio_nginx_berth, lookup_p99_ratio_berth_nginx,
# lookup_syscalls_per_req_berth, lookup_syscalls_per_req_nginx (and _base
# figures with BENCH_BASELINE).
#
# Knobs (environment):
#   BENCH_ROUNDS=3        rounds; each round runs wrk once per server
#   BENCH_DURATION=5      seconds per wrk run
#   BENCH_THREADS=1       wrk threads (-t)
#   BENCH_CONNECTIONS=16  wrk connections (-c)
#   BENCH_PIN=1           pin the server to CPU 0 and wrk to CPU 1 (taskset)
#   BENCH_PERF=0          1: one more berthd run under perf record, print
#                         the top of berthd's profile
#   BENCH_KEEP=           non-empty: keep the temp dir (configs, logs, perf.data)
#   BENCH_BASELINE=       another berthd binary to measure beside (as "base")
#   BENCH_BASELINE_DESC=  what the doc section calls it (default: its path)
#   BENCH_STRACE=1        0: skip the syscall counts
#   NGINX, WRK            binaries (default: found in PATH or /usr/sbin)

set -euo pipefail

# bench_init, need_berthd, need_tool, have, start_berthd and median come
# from lib.sh.
. "$(dirname "$0")/lib.sh"
bench_init lookup
need_berthd

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-5}
THREADS=${BENCH_THREADS:-1}
CONNS=${BENCH_CONNECTIONS:-16}
PIN=${BENCH_PIN:-1}
PERF=${BENCH_PERF:-0}
BASELINE=${BENCH_BASELINE:-}
STRACE=${BENCH_STRACE:-1}
NAME=bench-lookup
WRK=${WRK:-wrk}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

need_tool "$WRK"
need_tool curl
SERVERS="berth nginx"
have "$NGINX" "nginx half of lookup: berthd alone, no ratio" || SERVERS=berth
[ "$ROUNDS" -ge 1 ] 2>/dev/null || die "BENCH_ROUNDS must be a positive integer"
if [ -n "$BASELINE" ]; then
	[ -x "$BASELINE" ] || die "BENCH_BASELINE=$BASELINE is not an executable"
	SERVERS="$SERVERS base"
fi
[ "$STRACE" = 1 ] && ! have strace "syscall counts (apt-get install strace)" &&
    STRACE=0

SERVER_CPU=()
CLIENT_CPU=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SERVER_CPU=(taskset -c 0)
	CLIENT_CPU=(taskset -c 1)
	pinning="server on CPU 0, wrk on CPU 1 (taskset)"
else
	pinning="none"
fi

CLK_TCK=$(getconf CLK_TCK)
TMP=$tmp
BERTHD_PID=
BASE_PID=
NGINX_PID=
declare -A URL

# At exit, before lib.sh ends berthd and removes $tmp.
stop_nginx() {
	if [ -n "$NGINX_PID" ]; then
		# SIGQUIT: graceful; the master waits for its worker.
		kill -QUIT "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
	fi
}
bench_cleanup_hook=stop_nginx

# A free loopback TCP port (the kernel's pick; released before use, so the
# caller retries if someone takes it in between).
free_port() {
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# berthd on 127.0.0.1:0 through lib.sh's start_berthd (which learns its
# address from the READY datagram, as systemd would), pinned like nginx.
run_berthd() {
	BERTHD_PREFIX="${SERVER_CPU[*]:-}"
	start_berthd "$TMP/berth.db"
	BERTHD_PID=$berth_pid
	BERTH_PORT=${berth_addr##*:}
}

# The baseline berthd, with the same lease (same name, same fields).
run_berthd_as() {
	local port
	BERTHD_PREFIX="${SERVER_CPU[*]:-}"
	BERTHD=$BERTHD start_berthd "$TMP/$1.db"
	BASE_PID=$berth_pid
	port=${berth_addr##*:}
	URL[base]=http://127.0.0.1:$port/v1/services/$NAME
	curl -sf -o /dev/null -H 'Content-Type: application/json' \
	    --data "{\"name\":\"$NAME\"}" "http://127.0.0.1:$port/v1/services" ||
	    die "acquiring $NAME on the baseline failed"
}

# Escapes a string for a single-quoted nginx config string.
nginx_quote() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\'/\\\'}
	printf "'%s'" "$s"
}

# Writes nginx.conf for port $1; the location answers like berthd's lookup.
write_nginx_conf() {
	local port=$1 d=$TMP/nginx body answer
	body=$(cat "$TMP/body.json"; printf x)	# keep a trailing newline
	body=${body%x}
	if [[ $body == *'$'* ]]; then
		# return's text expands $variables; serve a file instead.
		answer="alias $d/body.json;"
		cp "$TMP/body.json" "$d/body.json"
	else
		# A quoted nginx string may hold newlines: the body goes in
		# byte for byte, and nginx answers it from memory.
		answer="return 200 $(nginx_quote "$body");"
	fi
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
master_process on;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
	worker_connections 1024;
}
http {
	access_log off;
	server_tokens off;
	keepalive_requests 1000000;
	keepalive_timeout 75s;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	server {
		listen 127.0.0.1:$port;
		location = /v1/services/$NAME {
			default_type application/json;
			add_header X-Berth-Index $BERTH_INDEX;
			add_header Cache-Control no-store;
			add_header X-Content-Type-Options nosniff;
			$answer
		}
	}
}
EOF
}

# Starts nginx on a free port; drops temp-path directives this build lacks.
start_nginx() {
	local d=$TMP/nginx try i bad
	mkdir -p "$d/tmp"
	chmod 755 "$TMP" "$d"
	for try in 1 2 3 4 5; do
		NGINX_PORT=$(free_port)
		write_nginx_conf "$NGINX_PORT"
		for i in 1 2 3 4 5; do
			if "$NGINX" -q -t -p "$d/" -c "$d/nginx.conf" \
			    -e "$d/error.log" 2>"$d/test.err"; then
				break
			fi
			bad=$(sed -n 's/.*unknown directive "\([a-z_]*_temp_path\)".*/\1/p' \
			    "$d/test.err")
			[ -n "$bad" ] || { cat "$d/test.err" >&2; die "nginx config rejected"; }
			sed -i "/^\t$bad /d" "$d/nginx.conf"
		done
		"${SERVER_CPU[@]}" "$NGINX" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" \
		    </dev/null >>"$d/stdout.log" 2>&1 &
		NGINX_PID=$!
		for i in $(seq 100); do
			if curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/v1/services/$NAME"; then
				return 0
			fi
			kill -0 "$NGINX_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -QUIT "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
		NGINX_PID=
	done
	cat "$d/error.log" >&2 || true
	die "nginx did not start"
}

# CPU time (user + system, in clock ticks) used so far by the pids given.
cpu_ticks() {
	local pid t=0 f
	for pid in "$@"; do
		# Fields after the ")" that ends the command name: utime is the 12th.
		f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}

# The processes that serve requests: berthd itself, nginx's worker(s).
server_pids() {
	case $1 in
	berth) echo "$BERTHD_PID" ;;
	base) echo "$BASE_PID" ;;
	*) ps -o pid= --ppid "$NGINX_PID" 2>/dev/null | tr -s ' \n' ' ' ;;
	esac
}

# Runs wrk against server $1 for a few seconds under `strace -c -f` on its
# serving process(es); prints the system calls it made per request.
syscalls_per_request() {
	local out=$TMP/strace.$1 spid p args=()
	for p in $(server_pids "$1"); do
		args+=(-p "$p")
	done
	strace -c -f -o "$out" "${args[@]}" 2>/dev/null &
	spid=$!
	sleep 0.5		# attached
	"${CLIENT_CPU[@]}" "$WRK" -t"$THREADS" -c"$CONNS" -d3s "${URL[$1]}" \
	    >"$TMP/wrk.strace"
	kill -INT "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	awk -v reqs="$(awk '/ requests in / { print $1 }' "$TMP/wrk.strace")" '
	$NF == "total" { calls = ($4 ~ /^[0-9]+$/) ? $4 : $3 }
	END { if (reqs > 0 && calls > 0) printf "%.2f\n", calls / reqs }' "$out"
}

# Runs wrk against URL $1 for server $2 (berth, nginx or base); prints
# "req/s p99_ms server_cpu_us_per_request server_busy_percent".
run_wrk() {
	local out=$TMP/wrk.out pids t0 t1
	pids=$(server_pids "$2")
	t0=$(cpu_ticks $pids)
	"${CLIENT_CPU[@]}" "$WRK" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$1" >"$out"
	t1=$(cpu_ticks $pids)
	if grep -q -E "Non-2xx|Socket errors" "$out"; then
		cat "$out" >&2
		die "wrk saw errors against $1"
	fi
	awk -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" '
	/^Requests\/sec:/ { rps = $2 }
	/ requests in / { n = $1; secs = $4; sub(/s,?$/, "", secs) }
	$1 == "99%" {
		v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
		if (u == "us") ms = v / 1000
		else if (u == "ms") ms = v
		else if (u == "s") ms = v * 1000
		else if (u == "m") ms = v * 60000
		else ms = -1
	}
	END {
		if (rps == "" || ms == "" || ms < 0 || n <= 0) exit 1
		printf "%.2f %.3f %.2f %.0f\n", rps, ms, ticks * 1e6 / hz / n,
		    (secs > 0 ? ticks * 100 / hz / secs : 0)
	}' "$out" || { cat "$out" >&2; die "cannot parse wrk output"; }
}


run_berthd
BERTH_URL=http://127.0.0.1:$BERTH_PORT/v1/services/$NAME
URL[berth]=$BERTH_URL
curl -sf -o /dev/null -H 'Content-Type: application/json' \
    --data "{\"name\":\"$NAME\"}" "http://127.0.0.1:$BERTH_PORT/v1/services" ||
    die "acquiring $NAME failed"
curl -sf -D "$TMP/berth.headers" -o "$TMP/body.json" "$BERTH_URL" ||
    die "looking up $NAME failed"
if [ -n "$BASELINE" ]; then
	BERTHD=$BASELINE run_berthd_as base
fi
BERTH_INDEX=$(tr -d '\r' <"$TMP/berth.headers" |
    sed -n 's/^[Xx]-[Bb]erth-[Ii]ndex: *//p')
[ -n "$BERTH_INDEX" ] || BERTH_INDEX=1

BYTES_B=$(( $(wc -c <"$TMP/berth.headers") + $(wc -c <"$TMP/body.json") ))
if [ "$SERVERS" != berth ]; then
	start_nginx
	NGINX_URL=http://127.0.0.1:$NGINX_PORT/v1/services/$NAME
	URL[nginx]=$NGINX_URL
	curl -sf -D "$TMP/nginx.headers" -o "$TMP/nginx.body" "$NGINX_URL"
	cmp -s "$TMP/body.json" "$TMP/nginx.body" ||
	    die "nginx's body differs from berthd's"
	BYTES_N=$(( $(wc -c <"$TMP/nginx.headers") + $(wc -c <"$TMP/nginx.body") ))
fi

echo "== lookup: berthd vs nginx, keep-alive GET $NAME =="
echo "berthd:   $BERTHD (pid $BERTHD_PID) at 127.0.0.1:$BERTH_PORT"
[ -n "$BASELINE" ] && echo "base:     $BASELINE (pid $BASE_PID), the same lease"
if [ "$SERVERS" != berth ]; then
	echo "nginx:    $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), 1 worker," \
	    "at 127.0.0.1:$NGINX_PORT"
	echo "body:     $(wc -c <"$TMP/body.json") bytes, identical on both;" \
	    "response bytes berth $BYTES_B, nginx $BYTES_N"
else
	echo "nginx:    skipped (no nginx)"
	echo "body:     $(wc -c <"$TMP/body.json") bytes; response bytes $BYTES_B"
fi
echo "wrk:      -t$THREADS -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds each, alternating"
echo "pinning:  $pinning"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) before the runs (other load skews results)"

# Warm both servers (connections, caches) before measuring.
DURATION_SAVE=$DURATION
DURATION=1
for s in $SERVERS; do
	run_wrk "${URL[$s]}" $s >/dev/null
done
DURATION=$DURATION_SAVE

printf '\n%-6s %-6s %12s %10s %12s %6s\n' round server "req/s" "p99 ms" "cpu us/req" busy
for s in $SERVERS; do
	: >"$TMP/$s.res"
done
for r in $(seq "$ROUNDS"); do
	for s in $SERVERS; do
		res=$(run_wrk "${URL[$s]}" $s) && [ -n "$res" ] || die "wrk run failed"
		echo "$res" >>"$TMP/$s.res"
		printf '%-6s %-6s %12.0f %10.3f %12.2f %5s%%\n' "$r" "$s" $res
	done
done

RPS_B=$(cut -d' ' -f1 "$TMP/berth.res" | median)
P99_B=$(cut -d' ' -f2 "$TMP/berth.res" | median)
CPU_B=$(cut -d' ' -f3 "$TMP/berth.res" | median)
printf '%-6s %-6s %12.0f %10.3f %12.2f\n' median berth "$RPS_B" "$P99_B" "$CPU_B"
if [ "$SERVERS" != berth ]; then
	RPS_N=$(cut -d' ' -f1 "$TMP/nginx.res" | median)
	P99_N=$(cut -d' ' -f2 "$TMP/nginx.res" | median)
	CPU_N=$(cut -d' ' -f3 "$TMP/nginx.res" | median)
	# Each figure is the median of the rounds' own ratios: the two
	# runs of a round are seconds apart, and this VM moves between
	# speeds from minute to minute (CPU per request 9 or 12 µs for
	# both servers), which a ratio of medians would mix.
	paste -d' ' "$TMP/berth.res" "$TMP/nginx.res" |
	    awk '{ printf "%.3f %.3f %.3f\n", $1 / $5, $7 / $3, $2 / $6 }' \
	    >"$TMP/ratios"
	RATIO=$(cut -d' ' -f1 "$TMP/ratios" | median)
	printf '%-6s %-6s %12.0f %10.3f %12.2f\n' median nginx "$RPS_N" "$P99_N" "$CPU_N"
	CPU_RATIO=$(cut -d' ' -f2 "$TMP/ratios" | median)
	P99_RATIO=$(cut -d' ' -f3 "$TMP/ratios" | median)
	echo "berth/nginx throughput ratio: $RATIO (target >= 1.0)"
	echo "(busy: the server's CPU use during the run; well under 100% means the"
	echo " server was not the bottleneck - wrk or other load was - and req/s"
	echo " understates the difference; cpu us/req still compares the servers)"
	echo "server CPU per request (user+sys of berthd / nginx's worker; less" \
	    "sensitive to other load than req/s): nginx/berth = $CPU_RATIO" \
	    "(target >= 1.0)"
	echo "p99 berth/nginx: $P99_RATIO (target <= 1.2)"
fi
if [ -n "$BASELINE" ]; then
	RPS_0=$(cut -d' ' -f1 "$TMP/base.res" | median)
	P99_0=$(cut -d' ' -f2 "$TMP/base.res" | median)
	CPU_0=$(cut -d' ' -f3 "$TMP/base.res" | median)
	printf '%-6s %-6s %12.0f %10.3f %12.2f\n' median base "$RPS_0" "$P99_0" "$CPU_0"
fi

declare -A SYSCALLS
if [ "$STRACE" = 1 ]; then
	echo
	echo "== system calls per request (strace -c -f on the server, wrk 3 s) =="
	for s in $SERVERS; do
		SYSCALLS[$s]=$(syscalls_per_request $s)
		printf '%-6s %s\n' "$s" "${SYSCALLS[$s]:-?}"
		printf '%-6s ' "" && sort -k4 -n -r "$TMP/strace.$s" |
		    awk '$NF != "total" && $NF != "syscall" && $4 ~ /^[0-9]+$/ {
			printf "%s %s  ", $NF, $4 } NR > 6 { exit }' && echo
	done
fi

if [ "$PERF" = 1 ]; then
	echo
	echo "== perf: berthd under wrk (${DURATION}s) =="
	if command -v perf >/dev/null; then
		"${CLIENT_CPU[@]}" "$WRK" -t"$THREADS" -c"$CONNS" -d"$((DURATION + 2))s" \
		    "$BERTH_URL" >/dev/null &
		wrk_pid=$!
		sleep 1
		perf_profile "$BERTHD_PID" "$DURATION" "$wrk_pid" 30
	else
		echo "perf not installed (apt-get install linux-perf)"
	fi
fi

# docs/performance.md's section (with run.sh): the rounds, the medians,
# the system calls, and the words of bench_lookup.md.
write_section() {
	local s
	{
		echo "## Lookups over HTTP"
		echo
		echo "\`wrk -t$THREADS -c$CONNS -d${DURATION}s\` keep-alive GETs of one lease"
		echo "($(wc -c <"$TMP/body.json")-byte JSON body; nginx" \
		    "$("$NGINX" -v 2>&1 | sed 's/^nginx version: nginx.//'), one worker, answers the same body"
		echo "and headers from memory), $ROUNDS rounds, the servers alternating;"
		echo "pinning: $pinning. Load average before the runs:"
		echo "$(cut -d' ' -f1-3 /proc/loadavg)."
		echo
		echo "| round | server | req/s | p99 ms | CPU µs/req | busy |"
		echo "|---|---|---|---|---|---|"
		for r in $(seq "$ROUNDS"); do
			for s in $SERVERS; do
				sed -n "${r}p" "$TMP/$s.res" | awk -v r="$r" -v s="$s" \
				    '{ printf "| %d | %s | %.0f | %.3f | %.2f | %s%% |\n",
				    r, s, $1, $2, $3, $4 }'
			done
		done
		echo
		echo "| median | req/s | p99 ms | CPU µs/req | syscalls/req |"
		echo "|---|---|---|---|---|"
		printf '| berth | %.0f | %s | %s | %s |\n' "$RPS_B" "$P99_B" "$CPU_B" \
		    "${SYSCALLS[berth]:--}"
		printf '| nginx | %.0f | %s | %s | %s |\n' "$RPS_N" "$P99_N" "$CPU_N" \
		    "${SYSCALLS[nginx]:--}"
		[ -n "$BASELINE" ] &&
		    printf '| base | %.0f | %s | %s | %s |\n' "$RPS_0" "$P99_0" \
		    "$CPU_0" "${SYSCALLS[base]:--}"
		echo
		echo "berth/nginx, the median of the rounds' own ratios (this VM moves"
		echo "between speeds from minute to minute, both servers with it):"
		echo "throughput $RATIO ($(cut -d' ' -f1 "$TMP/ratios" | paste -sd' ' |
		    sed 's/ /, /g')), CPU per request nginx/berth $CPU_RATIO"
		echo "($(cut -d' ' -f2 "$TMP/ratios" | paste -sd' ' | sed 's/ /, /g')), p99"
		echo "$P99_RATIO.$([ -n "$BASELINE" ] && echo " base is" \
		    "${BENCH_BASELINE_DESC:-$BASELINE}, measured in the same rotation.")"
		if [ -f "$BENCH_LIB_DIR/bench_lookup.md" ]; then
			echo
			cat "$BENCH_LIB_DIR/bench_lookup.md"
		fi
	} >"$BENCH_DOC_DIR/lookup.md"
}
if [ -n "${BENCH_DOC_DIR:-}" ] && [[ " $SERVERS " == *" nginx "* ]]; then
	write_section
fi

echo
printf 'RESULT lookup_rps_berth %.0f req/s\n' "$RPS_B"
printf 'RESULT lookup_p99_ms_berth %.3f ms\n' "$P99_B"
printf 'RESULT lookup_cpu_us_per_req_berth %.2f us\n' "$CPU_B"
if [ "$SERVERS" != berth ]; then
	printf 'RESULT lookup_rps_nginx %.0f req/s\n' "$RPS_N"
	printf 'RESULT lookup_p99_ms_nginx %.3f ms\n' "$P99_N"
	printf 'RESULT lookup_ratio_berth_nginx %s x\n' "$RATIO"
	printf 'RESULT lookup_cpu_us_per_req_nginx %.2f us\n' "$CPU_N"
	printf 'RESULT lookup_cpu_ratio_nginx_berth %s x\n' "$CPU_RATIO"
	printf 'RESULT lookup_p99_ratio_berth_nginx %s x\n' "$P99_RATIO"
fi
if [ -n "$BASELINE" ]; then
	printf 'RESULT lookup_rps_base %.0f req/s\n' "$RPS_0"
	printf 'RESULT lookup_p99_ms_base %.3f ms\n' "$P99_0"
	printf 'RESULT lookup_cpu_us_per_req_base %.2f us\n' "$CPU_0"
fi
for s in $SERVERS; do
	[ -n "${SYSCALLS[$s]:-}" ] &&
	    printf 'RESULT lookup_syscalls_per_req_%s %s calls\n' "$s" "${SYSCALLS[$s]}"
done
