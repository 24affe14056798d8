#!/bin/bash
# bench_cli.sh - `berth lookup NAME` as a whole process vs `curl -s` of the
# same URL (target: berth/curl <= 1.0).
#
# Starts berthd with a temp database, leases one name, and times both
# commands with hyperfine (no shell, warmup), alternating berth curl berth
# curl ... for several rounds; compares the medians.
#
# Needs: BERTHD and BERTH_CLI (paths), hyperfine, python3; curl for the
# comparison (without it berth alone is timed and the curl half is
# skipped, saying so).
# BERTH_CLI may be the build tree's clients/cli/berth: that is a libtool
# wrapper script, so the real binary next to it (.libs/berth) is timed, with
# LD_LIBRARY_PATH set to the wrapper's library directory for it alone.
# Prints a table and RESULT lines: cli_lookup_ms_berth, cli_lookup_ms_curl
# (medians of the per-round medians) and cli_ratio_berth_curl.
#
# Knobs (environment):
#   BENCH_ROUNDS=3    rounds; each runs hyperfine once per command
#   BENCH_RUNS=70     timed runs per command per round
#   BENCH_WARMUP=10   warmup runs per command per round
#   BENCH_KEEP=       non-empty: keep the temp dir
#   HYPERFINE, CURL   binaries (default: found in PATH)

set -euo pipefail

# bench_init, need_berthd, need_tool, have, start_berthd and median come
# from lib.sh.
. "$(dirname "$0")/lib.sh"
bench_init cli
need_berthd BERTH_CLI

ROUNDS=${BENCH_ROUNDS:-3}
RUNS=${BENCH_RUNS:-70}
WARMUP=${BENCH_WARMUP:-10}
NAME=bench-cli
HYPERFINE=${HYPERFINE:-hyperfine}
CURL=${CURL:-curl}

need_tool "$HYPERFINE"
CMDS="berth curl"
have "$CURL" "curl half of cli: berth alone, no ratio" || CMDS=berth
[ "$ROUNDS" -ge 1 ] 2>/dev/null || die "BENCH_ROUNDS must be a positive integer"

# The binary to time.  A libtool wrapper names its real program and the
# library directory it adds to LD_LIBRARY_PATH.
CLI_LIBPATH=
if head -c 4 "$BERTH_CLI" | grep -q ELF; then
	CLI_BIN=$BERTH_CLI
	cli_kind="the binary itself"
elif grep -q "libtool" "$BERTH_CLI" 2>/dev/null; then
	prog=$(sed -n "s/^ *program=\(lt-\)\{0,1\}'\([^']*\)'.*/\1\2/p" "$BERTH_CLI" | head -1)
	CLI_BIN=$(dirname "$BERTH_CLI")/.libs/${prog:-berth}
	[ -x "$CLI_BIN" ] || CLI_BIN=$(dirname "$BERTH_CLI")/.libs/berth
	[ -x "$CLI_BIN" ] || die "libtool wrapper $BERTH_CLI: no real binary in .libs/"
	CLI_LIBPATH=$(sed -n 's/^ *LD_LIBRARY_PATH="\([^"$]*\):\$LD_LIBRARY_PATH".*/\1/p' \
	    "$BERTH_CLI" | head -1)
	cli_kind="real binary behind the libtool wrapper, LD_LIBRARY_PATH=$CLI_LIBPATH"
else
	die "BERTH_CLI=$BERTH_CLI is neither an ELF binary nor a libtool wrapper"
fi

TMP=$tmp
BERTHD_PID=

# berthd on 127.0.0.1:0 through lib.sh's start_berthd (which learns its
# address from the READY datagram, as systemd would).
run_berthd() {
	start_berthd "$TMP/berth.db"
	BERTHD_PID=$berth_pid
	PORT=${berth_addr##*:}
}

# Times one command with hyperfine; prints "median_ms mean_ms stddev_ms".
# Extra leading VAR=value words go into the command's environment only.
time_cmd() {
	local json=$TMP/hf.json envs=()
	while [[ $1 == *=* ]]; do
		envs+=("$1")
		shift
	done
	env "${envs[@]}" "$HYPERFINE" -N --style none --warmup "$WARMUP" \
	    --runs "$RUNS" --export-json "$json" "$*" >/dev/null 2>"$TMP/hf.err" ||
	    { cat "$TMP/hf.err" >&2; die "hyperfine failed on: $*"; }
	"$PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.4f %.4f %.4f" % (r["median"] * 1e3, r["mean"] * 1e3, r["stddev"] * 1e3))' "$json"
}


run_berthd
ADDR=127.0.0.1:$PORT
URL=http://$ADDR/v1/services/$NAME
"$PY" - "$ADDR" "$NAME" <<'EOF' || die "acquiring $NAME failed"
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], timeout=10)
c.request("POST", "/v1/services", json.dumps({"name": sys.argv[2]}),
          {"Content-Type": "application/json"})
sys.exit(c.getresponse().status != 201)
EOF

BERTH_CMD="$CLI_BIN --addr $ADDR lookup $NAME"
CURL_CMD="$CURL -q -s $URL"
# Both must work before they are timed (hyperfine also fails on exit != 0).
out=$(env ${CLI_LIBPATH:+LD_LIBRARY_PATH=$CLI_LIBPATH} $BERTH_CMD) ||
    die "'$BERTH_CMD' failed"
[[ $out =~ ^[0-9]+$ ]] || die "'$BERTH_CMD' printed '$out', not a port"
if [ "$CMDS" != berth ]; then
	$CURL_CMD | grep -q "\"port\":$out" ||
	    die "'$CURL_CMD' does not show port $out"
fi

echo "== CLI lookup: berth vs curl, one whole process each =="
echo "berthd:  $BERTHD at $ADDR, name $NAME leased (port $out)"
echo "berth:   $BERTH_CMD"
echo "         ($cli_kind)"
if [ "$CMDS" != berth ]; then
	echo "curl:    $CURL_CMD"
else
	echo "curl:    skipped (no curl)"
fi
echo "timing:  hyperfine -N, $WARMUP warmup + $RUNS runs per command per round," \
    "$ROUNDS rounds, alternating"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) before the runs (other load skews results)"

printf '\n%-6s %-6s %10s %10s %10s\n' round cmd "median ms" "mean ms" "sd ms"
: >"$TMP/berth.res"
: >"$TMP/curl.res"
for r in $(seq "$ROUNDS"); do
	res=$(time_cmd ${CLI_LIBPATH:+LD_LIBRARY_PATH=$CLI_LIBPATH} "$BERTH_CMD") &&
	    [ -n "$res" ] || die "timing berth failed"
	echo "$res" >>"$TMP/berth.res"
	printf '%-6s %-6s %10.3f %10.3f %10.3f\n' "$r" berth $res
	[ "$CMDS" != berth ] || continue
	res=$(time_cmd "$CURL_CMD") && [ -n "$res" ] || die "timing curl failed"
	echo "$res" >>"$TMP/curl.res"
	printf '%-6s %-6s %10.3f %10.3f %10.3f\n' "$r" curl $res
done

MS_B=$(cut -d' ' -f1 "$TMP/berth.res" | median)
printf '%-6s %-6s %10.3f\n' median berth "$MS_B"
if [ "$CMDS" != berth ]; then
	MS_C=$(cut -d' ' -f1 "$TMP/curl.res" | median)
	RATIO=$(awk -v b="$MS_B" -v c="$MS_C" 'BEGIN { printf "%.3f", b / c }')
	printf '%-6s %-6s %10.3f\n' median curl "$MS_C"
	echo "berth/curl time ratio: $RATIO (target <= 1.0)"
fi

echo
printf 'RESULT cli_lookup_ms_berth %.3f ms\n' "$MS_B"
if [ "$CMDS" != berth ]; then
	printf 'RESULT cli_lookup_ms_curl %.3f ms\n' "$MS_C"
	printf 'RESULT cli_ratio_berth_curl %s x\n' "$RATIO"
fi
