#!/bin/bash
#
# run.sh: berth's benchmarks, one after another on this machine, each
# comparison alternating A B A B; then a table of the figures against
# their targets, docs/performance.md and docs/performance.png.
# `make bench` runs it with BERTHD, BERTH_CLI and BENCH_BIN set. Every
# bench script is bash, sharing tests/bench/lib.sh (the Python ones share
# benchlib.py).
#
# A bench whose peer tool (nginx, wrk, hyperfine, curl, portserver) is
# missing runs what it can and prints a "skipped: ... (no TOOL)" line for
# the rest; the table then says "not run" for the figures it could not
# make, and the rest of the benches run. Install them all with
# apt-get install wrk nginx-light hyperfine gnuplot-nox python3-portpicker curl \
#     dnsperf dnsmasq-base bind9-dnsutils strace
#
# Knobs: BENCH_ONLY="lookup pairs ..." runs a subset; BENCH_NO_DOCS=1
# leaves docs/ alone (the table still prints); BENCH_FROM=FILE takes the
# RESULT lines of an earlier run's output instead of running anything.
#
# A bench may also write its own section of docs/performance.md (markdown
# from a "## " heading on) as $BENCH_DOC_DIR/NAME.md; it goes after
# "Every figure".

set -u -o pipefail

: "${BERTHD:?BERTHD must name the berthd binary (use make bench)}"
: "${BERTH_CLI:?BERTH_CLI must name the berth binary (use make bench)}"
: "${BENCH_BIN:?BENCH_BIN must name the directory of the bench programs}"
export BERTHD BERTH_CLI BENCH_BIN

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
RESULTS=$OUT/results
ONLY=${BENCH_ONLY:-"lookup cli pairs concurrent scale waiters abuse cluster dns"}
trap 'rm -rf "$OUT"' EXIT INT TERM

PY=${PYTHON3:-python3}
BENCH_DOC_DIR=$OUT/doc
mkdir "$BENCH_DOC_DIR"
export BENCH_DOC_DIR

: >"$RESULTS"
if [ -n "${BENCH_FROM:-}" ]; then
	grep '^RESULT ' "$BENCH_FROM" >"$RESULTS"
	ONLY=""
fi
for b in $ONLY; do
	case $b in
	lookup|cli|pairs|concurrent|abuse|dns) script="$HERE/bench_$b.sh"; run=bash ;;
	scale|waiters|cluster) script="$HERE/bench_$b.py"; run=$PY ;;
	*) echo "run.sh: unknown benchmark '$b'" >&2; exit 2 ;;
	esac
	echo "==== $b ($(basename "$script"))"
	start=$(date +%s)
	if ! "$run" "$script" 2>&1 | tee "$OUT/$b.log"; then
		echo "run.sh: $b failed" >&2
	fi
	grep '^RESULT ' "$OUT/$b.log" >>"$RESULTS"
	echo "==== $b done in $(( $(date +%s) - start )) s"
done

# value KEY: the figure a benchmark reported, or "-".
value() {
	awk -v k="$1" '$1 == "RESULT" && $2 == k { v = $3 } END { print (v == "" ? "-" : v) }' "$RESULTS"
}
unit() {
	awk -v k="$1" '$1 == "RESULT" && $2 == k { u = $4 } END { print u }' "$RESULTS"
}

# The targets of the performance issue: key, comparison, bound, label.
TARGETS="lookup_ratio_berth_nginx >= 1.0 lookup_throughput_berth/nginx
lookup_cpu_ratio_nginx_berth >= 1.0 lookup_cpu_per_request_nginx/berth
lookup_p99_ratio_berth_nginx <= 1.2 lookup_p99_berth/nginx
lookup_syscalls_per_req_berth <= 3 syscalls_per_lookup
pairs_ratio_berth_portserver >= 5 durable_pairs_berth/portserver
scale_rss_mib_10k <= 16 rss_MiB_at_10k_leases
scale_restart_ms_10k <= 300 restart_ms_at_10k_leases
scale_p99_ratio_10k <= 1.2 lookup_p99_10k/1_lease
waiter_kib_each <= 10 KiB_per_parked_waiter
cli_ratio_berth_curl <= 1.0 berth_lookup/curl_process_time
abuse_watch_health_ms <= 1000 worst_health_ms_100_watchers_unread
abuse_list_health_ms <= 1000 worst_health_ms_200_lists_unread
abuse_watch_rss_mib <= 64 peak_rss_MiB_100_watchers_unread
abuse_list_rss_mib <= 64 peak_rss_MiB_200_lists_unread
cluster_lookup_ratio_berth_etcd >= 1 cluster_lookups_view/etcd_range
cluster_view_rss_mib_10k <= 8 rss_MiB_of_10k_instance_view
dns_ratio_berth_dnsmasq >= 1 dns_qps_berth/dnsmasq"

verdict() {
	awk -v v="$1" -v op="$2" -v b="$3" 'BEGIN {
		if (v == "-") { print "not run"; exit }
		ok = (op == ">=") ? (v + 0 >= b + 0) : (v + 0 <= b + 0)
		print ok ? "met" : "MISSED" }'
}

TABLE=$OUT/table.md
ALL=$OUT/all.md
# tables: the targets table and the table of every figure, from $RESULTS.
tables() {
	{
		echo "| figure | value | target | |"
		echo "|---|---|---|---|"
		echo "$TARGETS" | while read -r key op bound label; do
			v=$(value "$key")
			echo "| $label | $v | $op $bound | $(verdict "$v" "$op" "$bound") |"
		done
	} >"$TABLE"
	{
		echo "| key | value | unit |"
		echo "|---|---|---|"
		awk '$1 == "RESULT" { printf "| %s | %s | %s |\n", $2, $3, $4 }' "$RESULTS"
	} >"$ALL"
}
tables

echo
echo "==== targets"
cat "$TABLE"
echo
echo "==== every figure"
cat "$ALL"

[ "${BENCH_NO_DOCS:-0}" = 1 ] && exit 0

# A subset run (BENCH_ONLY) keeps what docs/performance.md says of the
# benchmarks it did not run: their figures come from the doc's "Every
# figure" table, this run's replace theirs, and the doc is updated in
# place (update_doc, below) rather than written anew.
PARTIAL=0
if [ -n "${BENCH_ONLY:-}" ] && [ -z "${BENCH_FROM:-}" ] &&
    [ -f "$TOP/docs/performance.md" ]; then
	PARTIAL=1
	awk 'FILENAME == ARGV[1] {
		if ($1 == "RESULT") {
			if (!($2 in new))
				order[++n] = $2
			new[$2] = $0
		}
		next
	}
	/^## / { inall = ($0 == "## Every figure"); next }
	inall && /^\|/ {
		split($0, f, / *\| */)
		k = f[2]
		if (k == "" || k == "key" || k ~ /^-+$/)
			next
		if (k in new) {
			print new[k]
			done[k] = 1
		} else
			print "RESULT", k, f[3], f[4]
	}
	END {
		for (i = 1; i <= n; i++)
			if (!(order[i] in done))
				print new[order[i]]
	}' "$RESULTS" "$TOP/docs/performance.md" >"$OUT/merged"
	RESULTS=$OUT/merged
	tables
fi

# update_doc: docs/performance.md in place, for a subset run: the two
# tables written again, each section a bench wrote in place of the doc's
# section of the same heading (or before "## Reproduce" if new), every
# other line as it was.
update_doc() {
	awk -v table="$TABLE" -v all="$ALL" -v dir="$BENCH_DOC_DIR" -v only="$ONLY" '
	function slurp(f,    l, t) {
		t = ""
		while ((getline l <f) > 0)
			t = t l "\n"
		close(f)
		return t
	}
	BEGIN {
		nb = split(only, b, " ")
		for (i = 1; i <= nb; i++) {
			f = dir "/" b[i] ".md"
			if ((getline h <f) > 0) {
				close(f)
				sec[h] = slurp(f)
				head[++ns] = h
			}
		}
	}
	/^## / {
		skip = 0
		if ($0 in sec) {
			printf "%s\n", sec[$0]
			placed[$0] = 1
			skip = 1
			next
		}
		if ($0 == "## Reproduce")
			for (i = 1; i <= ns; i++)
				if (!(head[i] in placed)) {
					printf "%s\n", sec[head[i]]
					placed[head[i]] = 1
				}
		tab = ""
		if ($0 == "## Against the targets")
			tab = table
		else if ($0 == "## Every figure")
			tab = all
		print
		next
	}
	skip { next }
	tab != "" && /^\|/ {
		if (!shown[tab]++)
			printf "%s", slurp(tab)
		next
	}
	{ print }
	END {
		for (i = 1; i <= ns; i++)
			if (!(head[i] in placed))
				printf "\n%s", sec[head[i]]
	}' "$MD" >"$OUT/updated.md" || { echo "run.sh: cannot update $MD" >&2; exit 1; }
	cat "$OUT/updated.md" >"$MD"
}

# The chart: each figure's distance from its target as one number where
# lower is better and 1.0 is the target exactly: figure/bound for "at
# most" targets, bound/figure for "at least" ones.
DAT=$OUT/chart.dat
echo "$TARGETS" | while read -r key op bound label; do
	v=$(value "$key")
	[ "$v" = "-" ] && continue
	awk -v l="$label" -v v="$v" -v b="$bound" -v op="$op" 'BEGIN {
		r = (op == ">=") ? b / v : v / b
		printf "\"%s\" %.3f\n", l, r }'
done >"$DAT"
# version TOOL ARG...: TOOL's version as the command prints it, or "none".
version() {
	command -v "$1" >/dev/null 2>&1 || { echo none; return; }
	"$@" 2>&1 | head -1
}

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "skipped: chart docs/performance.png (no gnuplot)"
elif [ -s "$DAT" ]; then
	gnuplot <<EOGP
set terminal pngcairo size 900,460 font ",10" noenhanced
set output "$TOP/docs/performance.png"
set title "berth against its targets: 1.0 = on target, lower is better"
set style data histograms
set style fill solid 0.7
set boxwidth 0.6
set yrange [0:1.5<*]
set bmargin 8
set xtics rotate by -25
set key off
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "red"
plot "$DAT" using 2:xtic(1) lc rgb "#3b6ea5"
EOGP
fi

MD=$TOP/docs/performance.md
if [ "$PARTIAL" = 1 ]; then
	update_doc
	echo "updated $MD (this run's figures and sections; the rest as it was) and docs/performance.png"
	exit 0
fi
{
	echo "# berth performance"
	echo
	echo "Measured by \`${BENCH_ROUNDS:+BENCH_ROUNDS=$BENCH_ROUNDS }make bench\` (tests/bench/run.sh) on $(date -u +%Y-%m-%d)."
	echo "Every comparison alternates A B A B on the same machine and reports"
	echo "medians. Timing is never part of \`make check\`."
	echo
	echo "## Machine and versions"
	echo
	echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; memory $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- Kernel: $(uname -sr); $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "- berthd: $("$BERTHD" --version); libevent $(pkg-config --modversion libevent 2>/dev/null), SQLite $(pkg-config --modversion sqlite3 2>/dev/null), jansson $(pkg-config --modversion jansson 2>/dev/null)"
	echo "- nginx: $(version nginx -v | sed 's/.*nginx\///'); wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo none); hyperfine $(version hyperfine --version | sed 's/^hyperfine //'); curl $(version curl --version | cut -d' ' -f2); portpicker $(dpkg-query -W -f='${Version}' python3-portpicker 2>/dev/null || echo none)"
	echo "- dnsmasq-base $(dpkg-query -W -f='${Version}' dnsmasq-base 2>/dev/null || echo none); dnsperf $(dpkg-query -W -f='${Version}' dnsperf 2>/dev/null || echo none)"
	echo
	echo "## Against the targets"
	echo
	echo "![each figure against its target](performance.png)"
	echo
	grep -h '^skipped: ' "$OUT"/*.log 2>/dev/null | sed 's/^/- /'
	echo
	cat "$TABLE"
	echo
	echo "## Every figure"
	echo
	cat "$ALL"
	for b in $ONLY; do
		if [ -f "$BENCH_DOC_DIR/$b.md" ]; then
			echo
			cat "$BENCH_DOC_DIR/$b.md"
		fi
	done
	echo
	echo "## Reproduce"
	echo
	echo '```sh'
	echo 'apt-get install -y wrk nginx-light hyperfine gnuplot-nox python3-portpicker curl \'
	echo '    dnsperf dnsmasq-base bind9-dnsutils strace'
	echo "./autogen.sh && ./configure && make && ${BENCH_ROUNDS:+BENCH_ROUNDS=$BENCH_ROUNDS }make bench"
	echo '# one benchmark: make bench BENCH_ONLY=lookup'
	echo '```'
	echo
	echo "Each benchmark's script in tests/bench/ says what it runs, with which"
	echo "flags; the commands are in its output above the RESULT lines."
	if [ -f "$HERE/analysis.md" ]; then
		echo
		cat "$HERE/analysis.md"
	fi
} >"$MD"
echo "wrote $MD and docs/performance.png"
