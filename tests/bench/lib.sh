# lib.sh: shell functions the bench scripts share; sourced by bash.
# start_berthd needs: $tmp (a temp dir), $PY (python3), $BERTHD, $pids
# (the processes to end at exit, by pid), and optionally $RANGE (the
# pool) and $BERTHD_PREFIX (a command to run berthd under, e.g. taskset).

# median: the median of the numbers on stdin, one a line; fails on none.
median() {
	sort -g | awk '{ v[NR] = $1 }
	END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}

# end_pids: ends every process in $pids, by pid, and waits for them.
end_pids() {
	local p
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
}

# start_berthd DB [ARG...]: starts berthd on 127.0.0.1:0 with database
# DB and any further flags; sets berth_pid and berth_addr (learnt from the
# READY/STATUS datagram that berthd sends to NOTIFY_SOCKET, as systemd
# would receive it).
start_berthd() {
	local db=$1
	shift
	local sock=$tmp/notify.sock listener
	rm -f "$sock" "$tmp/ready"
	"$PY" - "$sock" >"$tmp/ready" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(15)
fields = dict(l.split("=", 1) for l in s.recv(4096).decode().splitlines()
              if "=" in l)
print(fields["STATUS"].split("serving on ", 1)[1].split(",")[0].split()[0])
EOF
	listener=$!
	for _ in $(seq 100); do
		[ -S "$sock" ] && break
		sleep 0.05
	done
	# shellcheck disable=SC2086 # the prefix and the range are words
	NOTIFY_SOCKET=$sock ${BERTHD_PREFIX:-} "$BERTHD" --listen 127.0.0.1:0 \
	    --db "$db" ${RANGE:+--range "$RANGE"} --log-level warn "$@" \
	    </dev/null 2>>"$tmp/berthd.log" &
	berth_pid=$!
	pids="$pids $berth_pid"
	# Fail at once if berthd exits before it is ready.
	while kill -0 "$listener" 2>/dev/null; do
		if ! kill -0 "$berth_pid" 2>/dev/null; then
			kill "$listener" 2>/dev/null || true
			break
		fi
		sleep 0.02
	done
	if ! wait "$listener" || ! [ -s "$tmp/ready" ]; then
		echo "$(basename "$0"): berthd did not start:" >&2
		cat "$tmp/berthd.log" >&2
		exit 1
	fi
	berth_addr=$(cat "$tmp/ready")
}
