#!/bin/bash
# bench_abuse.sh: the two amplification attacks on the lease list, at the
# size they were found at (docs/security.md, "Clients that do not read").
# A fresh berthd per run gets BENCH_LEASES (2000) leases with ~4 KiB of
# meta each (a list answer of ~8.6 MB), then one attack:
#
#   watch  BENCH_WATCHERS (100) connections park
#          GET /v1/services?index=N&wait=60 and never read; one acquire
#          wakes them all;
#   list   BENCH_LISTERS (200) connections each send GET /v1/services once
#          and never read.
#
# Meanwhile a fresh client asks GET /v1/health every 50 ms, each on a new
# connection, for BENCH_ATTACK_SECONDS (10) and until its last answer is
# in. A run reports the slowest of those answers and berthd's peak RSS
# (VmHWM of /proc/PID/status, so a spike between samples counts). The
# attackers' sockets have 4 KiB receive buffers; over loopback the kernel
# still takes up to 4 MB (tcp_wmem) of what each does not read, which is
# the kernel's memory, not berthd's, and is not counted.
#
# With BENCH_ABUSE_OLD set to another berthd binary (say, a build of the
# commit before a change), each round runs both, old then new, A B A B,
# and the old figures are printed too, as the "before".
#
# Knobs: BENCH_ROUNDS (2), BENCH_LEASES, BENCH_WATCHERS, BENCH_LISTERS,
# BENCH_ATTACK_SECONDS, BENCH_ABUSE_OLD.
#
# Prints RESULT lines, medians over the rounds: abuse_watch_health_ms,
# abuse_watch_rss_mib, abuse_list_health_ms, abuse_list_rss_mib (and the
# same with _old for BENCH_ABUSE_OLD's build).
set -eu

# bench_init, need_berthd, start_berthd, stop_pid and median come from
# lib.sh.
. "$(dirname "$0")/lib.sh"
bench_init abuse
need_berthd
ROUNDS=${BENCH_ROUNDS:-2}
LEASES=${BENCH_LEASES:-2000}
WATCHERS=${BENCH_WATCHERS:-100}
LISTERS=${BENCH_LISTERS:-200}
SECS=${BENCH_ATTACK_SECONDS:-10}
OLD=${BENCH_ABUSE_OLD:-}
[ -z "$OLD" ] || [ -x "$OLD" ] || die "BENCH_ABUSE_OLD=$OLD is not executable"
[ "$ROUNDS" -ge 1 ] 2>/dev/null || die "BENCH_ROUNDS must be a positive integer"

# The attack and the health client, in Python: attack ADDR PID MODE N.
# Prints "worst_health_ms base_rss_kib peak_rss_kib connections_after".
cat >"$tmp/attack.py" <<'EOF'
import http.client, json, socket, struct, sys, time

addr, pid, mode, n, leases, secs = sys.argv[1:7]
pid, n, leases, secs = int(pid), int(n), int(leases), float(secs)
host, port = addr.rsplit(":", 1)
port = int(port)
META = {"pad": "m" * 4000}          # near the 4096-byte limit on meta


def vm(field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])


def req(method, path, body=None, timeout=300):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json"} if body else {}
        c.request(method, path, body=json.dumps(body) if body else None,
                  headers=hdrs)
        r = c.getresponse()
        return r.status, r.getheader("X-Berth-Index"), r.read()
    finally:
        c.close()


def metric(name):
    for line in req("GET", "/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])


c = http.client.HTTPConnection(host, port, timeout=60)
for i in range(leases):
    c.request("POST", "/v1/services", headers={"Content-Type":
              "application/json"}, body=json.dumps({"name": "abuse-%05d" % i,
                                                   "meta": META}))
    r = c.getresponse()
    r.read()
    assert r.status == 201, r.status
c.close()
status, index, body = req("GET", "/v1/services")
assert status == 200 and len(body) > leases * 4000, (status, len(body))
time.sleep(0.5)
base = vm("VmRSS")

if mode == "watch":
    line = "GET /v1/services?index=%s&wait=60 HTTP/1.1\r\n" % index
else:
    line = "GET /v1/services HTTP/1.1\r\n"
data = (line + "Host: 127.0.0.1\r\n\r\n").encode()
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.connect((host, port))
    s.sendall(data)
    socks.append(s)
trigger = None
if mode == "watch":
    deadline = time.monotonic() + 30
    while metric("berth_waiters") < n and time.monotonic() < deadline:
        time.sleep(0.05)
    trigger = socket.create_connection((host, port))
    trigger.sendall(b"POST /v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 23"
                    b"\r\n\r\n{\"name\":\"abuse-wakeup\"}")
worst = 0.0
end = time.monotonic() + secs
while time.monotonic() < end:
    t0 = time.monotonic()
    status = req("GET", "/v1/health")[0]
    worst = max(worst, time.monotonic() - t0)
    assert status == 200, status
    time.sleep(0.05)
peak = vm("VmHWM")
conns = metric("berth_connections")
for s in socks:
    s.close()
if trigger is not None:
    trigger.close()
print("%.1f %d %d %d" % (worst * 1000, base, peak, conns))
EOF

# run BERTHD MODE N OUT: one run on a fresh berthd; appends the driver's
# line to OUT and prints it.
run() {
	local bin=$1 mode=$2 n=$3 out=$4 line w b p c
	rm -f "$tmp"/abuse.db*
	BERTHD=$bin start_berthd "$tmp/abuse.db" --idle-timeout 60
	line=$("$PY" "$tmp/attack.py" "$berth_addr" "$berth_pid" "$mode" "$n" \
	    "$LEASES" "$SECS") || die "the $mode attack on $bin failed"
	stop_pid "$berth_pid"
	echo "$line" >>"$out"
	read -r w b p c <<<"$line"
	printf '  %-4s %-5s: slowest /v1/health %8.1f ms; RSS %6.1f MiB before, peak %6.1f MiB; %d connections left\n' \
	    "$5" "$mode" "$w" "$(awk -v k="$b" 'BEGIN { print k / 1024 }')" \
	    "$(awk -v k="$p" 'BEGIN { print k / 1024 }')" "$c"
}

echo "abuse: $LEASES leases of ~4 KiB meta; watch: $WATCHERS watchers," \
    "list: $LISTERS list clients, none reading; health polled for $SECS s"
echo "  new: $BERTHD${OLD:+; old: $OLD}"
builds="new"
[ -z "$OLD" ] || builds="old new"
for b in $builds; do
	: >"$tmp/$b.watch"
	: >"$tmp/$b.list"
done
for r in $(seq "$ROUNDS"); do
	echo "round $r"
	for b in $builds; do
		bin=$BERTHD
		[ "$b" = new ] || bin=$OLD
		run "$bin" watch "$WATCHERS" "$tmp/$b.watch" "$b"
		run "$bin" list "$LISTERS" "$tmp/$b.list" "$b"
	done
done

# report BUILD SUFFIX: the medians of BUILD's runs as RESULT lines.
report() {
	local m
	for m in watch list; do
		printf 'RESULT abuse_%s_health_ms%s %.1f ms\n' "$m" "$2" \
		    "$(cut -d' ' -f1 "$tmp/$1.$m" | median)"
		printf 'RESULT abuse_%s_rss_mib%s %.1f MiB\n' "$m" "$2" \
		    "$(awk '{ print $3 / 1024 }' "$tmp/$1.$m" | median)"
	done
}
report new ""
[ -z "$OLD" ] || report old _old
