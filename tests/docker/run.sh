#!/bin/bash
# tests/docker/run.sh: build berth's Docker image and check it for real
# (issue 12), with Debian 12's own docker.io, in a dockerd of our own.
#
# Run as root on Debian 12 from anywhere in a berth checkout
# (`make check-docker` does). It
#   - installs docker.io, docker-compose and mmdebstrap when missing;
#   - starts a private dockerd: its own socket, pidfile and exec root in
#     a temporary directory, its own bridge, no iptables rules, so it
#     neither needs nor disturbs any other dockerd on the machine; it is
#     stopped by pid at exit;
#   - makes debian:bookworm-slim with mmdebstrap when the data root has
#     none (no image registry is reachable here), builds the Dockerfile,
#     and runs the checks, one `PASS: name` or `FAIL: name` line each.
#
# The data root is kept between runs in BERTH_DOCKER_CACHE (default
# /var/cache/berth-docker): the base image and the build cache stay, so
# a rerun skips the debootstrap and most of the build. Delete the
# directory to start cold. With --prepare it stops after the build,
# leaving the base and the image in the cache for the run with the
# checks (.ci/run does the slow part early, at a low priority). With
# BERTH_DOCKER_ONLY=NAME[,NAME...] it runs only the checks named (each
# compose-* check stands alone; a docker-* check needs those before
# it). Exit status: 0 when every check passed.
set -euo pipefail

cd "$(dirname "$0")/../.."
SRCDIR=$(pwd)
CACHE=${BERTH_DOCKER_CACHE:-/var/cache/berth-docker}
# Debian's client, not a newer one that may be earlier in PATH: the
# tests are about Debian 12's docker.io.
DOCKER_BIN=/usr/bin/docker
IMAGE=berth-test
BRIDGE=berthdk0
# A private /24 for our bridge: other dockerds use 172.17.0.0/16 and
# their own br-* networks, which this one never touches.
BRIDGE_CIDR=172.31.251.1/24
# Compose's default networks come from this pool, away from 172.17-30.
ADDR_POOL=base=172.31.252.0/22,size=26

WORK=""
DOCKERD_PID=""
UPSTREAM_PID=""
PASSED=0
FAILED=0
FAILED_NAMES=""

log() { echo "docker-tests: $*" >&2; }

# Our docker client, pointed at our daemon only.
dk() { "$DOCKER_BIN" -H "unix://$WORK/docker.sock" "$@"; }

# dk_run ARGS: `docker run -d`, without the warning that IPv4 forwarding
# is off (it is, on purpose: no container here needs to leave the host).
dk_run() {
	dk run -d "$@" 2>"$WORK/run.err" >/dev/null ||
		{ cat "$WORK/run.err" >&2; return 1; }
}

# The clock in milliseconds, for the timings the report quotes.
now_ms() { date +%s%3N; }

# install_deps: Debian's packages, as .ci/test-deps installs its own.
install_deps() {
	local p missing=""
	for p in docker.io docker-compose mmdebstrap iproute2 iptables \
		bind9-dnsutils dnsmasq-base; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	log "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # one word per package
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# start_dockerd: our own daemon. A bridge of our own (dockerd's
# --bridge wants it to exist) and --iptables=false keep it off the
# default docker0 and out of the firewall; the image build uses the
# host's network instead of NAT to reach Debian's archive.
start_dockerd() {
	mkdir -p "$CACHE/data-root"
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
		ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
		ip link set "$BRIDGE" up
	fi
	/usr/sbin/dockerd \
		--data-root "$CACHE/data-root" \
		--exec-root "$WORK/exec" \
		--pidfile "$WORK/dockerd.pid" \
		-H "unix://$WORK/docker.sock" \
		--bridge "$BRIDGE" \
		--default-address-pool "$ADDR_POOL" \
		--iptables=false --ip6tables=false --ip-forward=false \
		--ip-masq=false \
		--storage-driver overlay2 \
		>"$WORK/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	local i
	for i in $(seq 1 100); do
		if dk version >/dev/null 2>&1; then
			log "dockerd (pid $DOCKERD_PID) answers after ${i}00 ms"
			return 0
		fi
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "dockerd did not come up; its log:"
	tail -20 "$WORK/dockerd.log" >&2
	return 1
}

# cleanup: at exit, whatever happened. Containers first (dockerd would
# stop them anyway, but their networks and volumes are ours to remove),
# then dockerd by its pid, then our bridge; finally say if anything of
# ours is still mounted.
cleanup() {
	local rc=$? ids
	set +e
	# compose-dns's stand-in resolver, a host process: by its pid.
	[ -n "$UPSTREAM_PID" ] && kill "$UPSTREAM_PID" 2>/dev/null
	if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
		ids=$(dk ps -aq)
		# shellcheck disable=SC2086 # one id per word
		[ -n "$ids" ] && dk rm -f $ids >/dev/null
		dk volume prune -f >/dev/null
		dk network prune -f >/dev/null
		kill -TERM "$DOCKERD_PID"
		for _ in $(seq 1 150); do
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$DOCKERD_PID" 2>/dev/null; then
			log "dockerd $DOCKERD_PID ignored SIGTERM for 15 s: SIGKILL"
			kill -KILL "$DOCKERD_PID"
		fi
		wait "$DOCKERD_PID" 2>/dev/null
	fi
	ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
	# dockerd leaves its bind mount of the host's network namespace
	# (exec-root/netns/default) behind when it stops: it is ours to undo.
	[ -n "$WORK" ] && grep -F " $WORK/" /proc/self/mountinfo |
		awk '{ print $5 }' | sort -r | while read -r m; do
			umount "$m"
		done
	if grep -qsF -e "$CACHE/data-root" -e "$WORK" /proc/self/mountinfo; then
		log "left mounted after dockerd stopped:"
		grep -F -e "$CACHE/data-root" -e "$WORK" /proc/self/mountinfo >&2
		rc=1
	fi
	if [ -n "$WORK" ] && [ -e "$WORK/net.before" ]; then
		host_net_state >"$WORK/net.after"
		if ! diff -u "$WORK/net.before" "$WORK/net.after" >&2; then
			log "the host's links or firewall rules changed (diff above)"
			rc=1
		fi
	fi
	[ -n "$WORK" ] && rm -rf "$WORK"
	exit "$rc"
}

# host_net_state: the host's link names and firewall rules, compared
# before and after the run to prove nothing of ours stayed behind.
host_net_state() {
	ip -o link | awk -F': ' '{ print $2 }' | sort
	iptables-save 2>/dev/null | grep -v '^#' || true
	ip6tables-save 2>/dev/null | grep -v '^#' || true
}

# apt_mirrors: one mmdebstrap mirror line per URI and suite of the
# machine's own apt sources (deb822 or one-line format), so the base
# image comes from the archive this machine reaches, with no host name
# written here.
apt_mirrors() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk '
		function flush(  u, s, nu, ns, i, j, U, S) {
			if (types ~ /(^| )deb( |$)/ && uris != "") {
				nu = split(uris, U, " "); ns = split(suites, S, " ")
				for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
					print "deb " U[i] " " S[j] " " comps
			}
			types = uris = suites = comps = ""
		}
		/^[ \t]*$/ { flush(); next }
		/^#/ { next }
		/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
		/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
		/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
		/^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
		END { flush() }' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		grep -E '^deb[ \t]' || true
}

# make_base: debian:bookworm-slim as the official image makes it, from
# the machine's mirrors: minbase, with dpkg told to leave out what the
# slim image's /etc/dpkg/dpkg.cfg.d/docker excludes (docs, man pages,
# locales; kept in the image, as the official one keeps them, so that
# packages installed on it are trimmed too), apt's lists and caches
# emptied and kept empty (docker-clean), then `docker import`.
# /usr is merged by mmdebstrap's hook, as debootstrap does and as the
# official image is: left to apt, usr-is-merged pulls in usrmerge and
# with it perl (~45 MB more).
make_base() {
	if dk image inspect debian:bookworm-slim >/dev/null 2>&1; then
		log "debian:bookworm-slim is in the cache"
		return 0
	fi
	local t0 mirrors=()
	t0=$(now_ms)
	# The official image's /etc/apt/apt.conf.d/docker-clean: apt keeps no
	# package cache (*.bin, ~40 MB) or .debs in any layer built on it.
	cat >"$WORK/docker-clean" <<-'EOF'
	DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	Dir::Cache::pkgcache "";
	Dir::Cache::srcpkgcache "";
	EOF
	mapfile -t mirrors < <(apt_mirrors | grep -E ' bookworm(-updates|-security)? ')
	[ "${#mirrors[@]}" -gt 0 ] || { log "no bookworm in apt's sources"; return 1; }
	log "mmdebstrap bookworm from ${#mirrors[@]} apt source lines"
	mmdebstrap --quiet --variant=minbase --format=tar \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/linda/*' \
		--dpkgopt='path-exclude=/usr/share/lintian/overrides/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/groff/*' \
		--aptopt='Acquire::Languages "none"' \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--customize-hook="copy-in $WORK/docker-clean /etc/apt/apt.conf.d" \
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
		bookworm "$WORK/base.tar" "${mirrors[@]}" >"$WORK/mmdebstrap.log" 2>&1 ||
		{ tail -30 "$WORK/mmdebstrap.log" >&2; log "mmdebstrap failed"; return 1; }
	dk import --change 'CMD ["bash"]' "$WORK/base.tar" debian:bookworm-slim >/dev/null
	rm -f "$WORK/base.tar"
	log "the base image's largest directories:"
	dk run --rm --network none debian:bookworm-slim \
		sh -c 'du -sm /usr/share/* /usr/lib/* /var/* 2>/dev/null | sort -n | tail -6' >&2
	log "base image made in $(( ($(now_ms) - t0) / 1000 )) s ($(dk image inspect -f '{{.Size}}' debian:bookworm-slim) bytes)"
}

# build_image: the project's Dockerfile, unchanged. --network host: our
# daemon sets up no NAT, and the build stage's apt-get needs the archive.
build_image() {
	local t0
	t0=$(now_ms)
	if ! dk build --network host -t "$IMAGE" . >"$WORK/build.log" 2>&1; then
		tail -30 "$WORK/build.log" >&2
		log "docker build failed"
		return 1
	fi
	# The layers that weigh something, newest first: where the size goes.
	dk history --format '{{.Size}}	{{.CreatedBy}}' "$IMAGE" |
		grep -v '^0B' | cut -c1-100 >&2
	log "image built in $(( ($(now_ms) - t0) / 1000 )) s, $(grep -c 'Using cache' "$WORK/build.log" || true) of $(grep -c '^Step ' "$WORK/build.log" || true) steps cached ($(dk image inspect -f '{{.Size}}' "$IMAGE") bytes)"
}

# result NAME STATUS [WHY]: one automake-style line, counted.
result() {
	if [ "$2" -eq 0 ]; then
		echo "PASS: $1"
		PASSED=$((PASSED + 1))
	else
		echo "FAIL: $1${3:+ ($3)}"
		FAILED=$((FAILED + 1))
		FAILED_NAMES="$FAILED_NAMES $1"
	fi
}

# wait_health CONTAINER SECONDS: until `berth health` answers inside.
wait_health() {
	local end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$end" ]; do
		dk exec "$1" berth health >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# --- the checks: each returns non-zero with a line on stderr saying why ---

# docs/docker.md's `docker run`, then `berth health` inside.
check_run_health() {
	dk_run --name berth -v berth-state:/var/lib/berth "$IMAGE" || return 1
	wait_health berth 10 || { dk logs berth >&2; return 1; }
}

# Docker's HEALTHCHECK turns healthy (the first probe is at 10 s).
check_healthcheck() {
	local t0 st end
	t0=$(now_ms)
	end=$(($(date +%s) + 40))
	while [ "$(date +%s)" -lt "$end" ]; do
		st=$(dk inspect -f '{{.State.Health.Status}}' berth)
		if [ "$st" = healthy ]; then
			log "healthy $(( ($(now_ms) - t0) / 1000 )) s after the first health answer"
			return 0
		fi
		sleep 0.5
	done
	log "health status still '$st' after 40 s"
	return 1
}

# A lease taken now is looked up after the restart and the re-creation.
check_lease_taken() {
	dk exec berth berth acquire keep --port 40123 --ttl 3600 >"$WORK/acquire.out"
}

# `docker stop`: SIGTERM to berthd as PID 1, exit 0, well within 2 s.
check_stop() {
	local t0 ms code
	t0=$(now_ms)
	dk stop -t 10 berth >/dev/null
	ms=$(($(now_ms) - t0))
	code=$(dk inspect -f '{{.State.ExitCode}}' berth)
	log "docker stop took $ms ms, exit code $code"
	[ "$code" -eq 0 ] && [ "$ms" -lt 2000 ]
}

# lease_is_there: berthd in the container named knows the lease `keep`.
lease_is_there() {
	local got
	got=$(dk exec berth berth lookup keep --addr-only)
	[ "${got##*:}" = 40123 ] || { log "lookup keep said '$got'"; return 1; }
}

# The lease survives `docker stop` and `docker start` on the volume.
check_lease_restart() {
	dk start berth >/dev/null
	wait_health berth 10 || return 1
	lease_is_there
}

# A second berthd on the same volume exits at once with the lock error.
check_second_locked() {
	local out rc=0
	out=$(timeout 20 "$DOCKER_BIN" -H "unix://$WORK/docker.sock" run --rm \
		-v berth-state:/var/lib/berth "$IMAGE" 2>&1) || rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
		{ log "second berthd: exit $rc: $out"; return 1; }
	grep -q 'database is locked' <<<"$out" ||
		{ log "second berthd said: $out"; return 1; }
}

# The lease survives removing the container and running a new one.
check_lease_recreate() {
	dk rm -f berth >/dev/null
	dk_run --name berth -v berth-state:/var/lib/berth "$IMAGE" || return 1
	wait_health berth 10 || return 1
	lease_is_there
}

# berthd, PID 1, runs as the image's berth user (uid 10001), not root.
check_non_root() {
	local uid
	uid=$(dk exec berth awk '/^Uid:/ { print $2 }' /proc/1/status)
	[ "$uid" = 10001 ] || { log "PID 1 runs as uid '$uid'"; return 1; }
}

# With a read-only root filesystem (state on the volume, no other
# writes), berthd starts and answers.
check_read_only() {
	local ok=0
	dk_run --name berth-ro --read-only -v berth-ro:/var/lib/berth "$IMAGE" ||
		return 1
	wait_health berth-ro 10 || { dk logs berth-ro >&2; ok=1; }
	dk rm -f berth-ro >/dev/null
	dk volume rm berth-ro >/dev/null
	return "$ok"
}

# docs/docker.md's Dockerfile for "the CLI in your own images", as the
# page has it: built on the image (tagged berth, the name it copies
# from), its berth finds libberth and asks the broker for the lease.
check_cli_own_image() {
	local got
	awk '/^```dockerfile$/ { on = 1; next } /^```$/ { on = 0 } on' \
		docs/docker.md >"$WORK/Dockerfile.cli"
	grep -q '^COPY --from=berth ' "$WORK/Dockerfile.cli" ||
		{ log "no Dockerfile for the CLI found in docs/docker.md"; return 1; }
	dk tag "$IMAGE" berth
	dk build --network host -t berth-cli-own -f "$WORK/Dockerfile.cli" \
		"$WORK" >"$WORK/build-cli.log" 2>&1 ||
		{ tail -20 "$WORK/build-cli.log" >&2; return 1; }
	got=$(dk run --rm --network container:berth berth-cli-own \
		berth lookup keep 2>"$WORK/cli-own.err") ||
		{ log "berth in its own image: $(cat "$WORK/cli-own.err")"; return 1; }
	[ "$got" = 40123 ] || { log "berth lookup keep said '$got'"; return 1; }
}

# --- the three ways to share one broker (docs/docker.md), by docker run ---

# dk_cli ARGS: the berth CLI in a one-off container of the image, for
# at most a minute; the docker options come before "--", berth's
# arguments after it. Its stderr goes to $WORK/cli.err, less docker's
# forwarding warning.
dk_cli() {
	local opts=() rc=0
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	timeout 60 "$DOCKER_BIN" -H "unix://$WORK/docker.sock" run --rm \
		"${opts[@]}" --entrypoint berth "$IMAGE" "$@" \
		2>"$WORK/cli.raw" || rc=$?
	grep -v '^WARNING: IPv4 forwarding' "$WORK/cli.raw" >"$WORK/cli.err" || true
	return "$rc"
}

# wait_lease CONTAINER NAME SECONDS: until berthd in CONTAINER has NAME.
wait_lease() {
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -lt "$end" ]; do
		dk exec "$1" berth lookup "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "no lease $2 in $1 after $3 s"
	return 1
}

# lease_gone CONTAINER NAME: berthd in CONTAINER answers "not found" (3).
lease_gone() {
	local rc=0
	dk exec "$1" berth lookup "$2" >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 3 ]
}

# lease_gone_within CONTAINER NAME MS T0: until berthd in CONTAINER says
# NAME is gone, at most MS ms after T0 (now_ms); prints how long after.
lease_gone_within() {
	while ! lease_gone "$1" "$2"; do
		[ $(($(now_ms) - $4)) -lt "$3" ] ||
			{ log "$2's lease outlived its end by $3 ms"; return 1; }
		sleep 0.05
	done
	echo $(($(now_ms) - $4))
}

# json_field FIELD: FIELD's value from the JSON object on stdin.
json_field() {
	python3 -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print("null" if v is None else v)' "$1"
}

# 1. Services in the broker's network and PID namespaces: berth run owns
# its lease, so the lease ends the moment its container is killed, and a
# client with --need is told the address.
check_shared_namespaces() {
	local port addr pid t0 ms
	dk_run --name web --network container:berth --pid container:berth \
		--entrypoint berth "$IMAGE" run web --fd -- sleep infinity ||
		return 1
	addr=$(dk_cli --network container:berth --pid container:berth -- \
		run client --need web -- sh -c 'echo "$BERTH_WEB_ADDR"') ||
		{ log "client with --need web: $(cat "$WORK/cli.err")"; return 1; }
	port=$(dk exec berth berth lookup web) || return 1
	[ "$addr" = "127.0.0.1:$port" ] ||
		{ log "client was told '$addr', web has port $port"; return 1; }
	pid=$(dk exec berth berth lookup web --json | json_field pid)
	[ "$pid" != null ] || { log "web's lease has no owner pid"; return 1; }
	t0=$(now_ms)
	dk kill web >/dev/null
	ms=$(lease_gone_within berth web 10000 "$t0") || return 1
	log "shared namespaces: client told $addr; lease ended $ms ms after docker kill"
	dk rm -f web >/dev/null
	# "about a second": the owner's death is seen by pidfd, not polled.
	[ "$ms" -lt 3000 ] || { log "that is not about a second"; return 1; }
}

# 2. A service in its own PID namespace (network still shared): berth
# run says in one line that the lease lives by its TTL, gives no pid,
# and the lease outlasts the killed container by at most the TTL.
check_own_pid_namespace() {
	local pid lines t0 ms
	# --init: berth run is not PID 1 of its container, so what it says
	# is about the other namespace, not about being an init.
	dk_run --name web2 --init --network container:berth \
		--entrypoint berth "$IMAGE" run web2 --ttl 4 -- sleep infinity ||
		return 1
	wait_lease berth web2 10 || return 1
	pid=$(dk exec berth berth lookup web2 --json | json_field pid)
	[ "$pid" = null ] || { log "web2's lease names pid $pid"; return 1; }
	# One line says so (beside berth run's usual "web2 on ADDR").
	lines=$(dk logs web2 2>&1 | grep -v ' web2 on ')
	[ "$(grep -c . <<<"$lines")" -eq 1 ] &&
		grep -q 'another PID namespace.*lives by its 4 s TTL' <<<"$lines" ||
		{ log "berth run in its own PID namespace said: $lines"; return 1; }
	t0=$(now_ms)
	dk rm -f web2 >/dev/null
	lease_gone berth web2 &&
		{ log "web2's lease ended with its container, not by TTL"; return 1; }
	ms=$(lease_gone_within berth web2 8000 "$t0") || return 1
	log "own PID namespace: '$lines'; lease ended $ms ms after the container"
}

# 3. The Unix socket on a volume: the image's user and its group get in,
# another uid is told "permission denied", and services in their own
# network namespaces reach each other at the names they registered.
check_socket_volume() {
	local rc=0 out addr port
	dk_run --name berth-sock -v berth-run:/run/berth \
		-e BERTH_LISTEN=unix:/run/berth/berth.sock \
		-e BERTH_ADDR=unix:/run/berth/berth.sock "$IMAGE" --db :memory: ||
		return 1
	wait_health berth-sock 10 || { dk logs berth-sock >&2; return 1; }
	dk_cli -u 4242:4242 -v berth-run:/run/berth \
		-e BERTH_ADDR=unix:/run/berth/berth.sock -- list || rc=$?
	out=$(cat "$WORK/cli.err")
	[ "$rc" -eq 69 ] &&
		grep -q 'permission denied on unix:/run/berth/berth.sock' <<<"$out" ||
		{ log "uid 4242: exit $rc: $out"; return 1; }
	log "uid 4242 was told: $out"
	dk_cli -u 4242:4242 --group-add 10001 -v berth-run:/run/berth \
		-e BERTH_ADDR=unix:/run/berth/berth.sock -- list >/dev/null ||
		{ log "uid 4242 in group 10001 was refused"; return 1; }
	dk network create berth-apps >/dev/null || return 1
	dk_run --name sweb --network berth-apps --network-alias web \
		--pid container:berth-sock -v berth-run:/run/berth \
		-e BERTH_ADDR=unix:/run/berth/berth.sock \
		--entrypoint berth "$IMAGE" run web --host web --fd -- \
		sleep infinity || return 1
	out=$(dk_cli --network berth-apps --pid container:berth-sock \
		-v berth-run:/run/berth -e BERTH_ADDR=unix:/run/berth/berth.sock -- \
		run client --host client --need web -- \
		bash -c 'echo "$BERTH_WEB_ADDR"
			exec 3<>"/dev/tcp/${BERTH_WEB_ADDR%:*}/${BERTH_WEB_ADDR##*:}" &&
			echo connected') ||
		{ log "client over the socket: $out $(cat "$WORK/cli.err")"; return 1; }
	addr=$(head -1 <<<"$out")
	port=$(dk exec berth-sock berth lookup web) || return 1
	[ "$addr" = "web:$port" ] && grep -qx connected <<<"$out" ||
		{ log "client said '$out', web has port $port"; return 1; }
	log "socket on a volume: client told $addr and connected"
	dk rm -f sweb berth-sock >/dev/null
	dk network rm berth-apps >/dev/null
	dk volume rm berth-run >/dev/null
}

# host_port_free PORT: nothing listens on the host's TCP PORT.
host_port_free() {
	! ss -Htln "sport = :$1" | grep -q .
}

# expected_pool LISTEN_PORT: the pool berthd should report on this host,
# 49152-65535 less the kernel's ephemeral range and its own port.
expected_pool() {
	python3 - "$1" <<-'EOF'
	import sys
	lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
	me = int(sys.argv[1])
	ports = [p for p in range(49152, 65536) if not lo <= p <= hi and p != me]
	out, start = [], ports[0]
	for a, b in zip(ports, ports[1:] + [None]):
	    if b != a + 1:
	        out.append("%d-%d" % (start, a))
	        start = b
	print(" ".join(out))
	EOF
}

# 4. Host networking: berthd on the host's loopback, its pool the host's,
# and a container with --pid host owning its lease by its host pid.
check_host_network() {
	local port=62893 addr pool want pid hostpid
	if ! host_port_free "$port"; then
		port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		log "the host's 62893 is taken: host networking on $port (docs/docker.md)"
	fi
	addr=127.0.0.1:$port
	dk_run --name berth-host --network host --pid host \
		-e BERTH_LISTEN="$addr" -e BERTH_ADDR="$addr" "$IMAGE" \
		--db :memory: || return 1
	wait_health berth-host 10 || { dk logs berth-host >&2; return 1; }
	curl -fsS "http://$addr/v1/health" >/dev/null ||
		{ log "the host cannot reach berthd at $addr"; return 1; }
	pool=$(curl -fsS "http://$addr/v1/status" |
		python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)["pool"]["ranges"]))')
	want=$(expected_pool "$port")
	[ "$pool" = "$want" ] ||
		{ log "pool is '$pool', the host's would be '$want'"; return 1; }
	dk_run --name hweb --network host --pid host -e BERTH_ADDR="$addr" \
		--entrypoint berth "$IMAGE" run web --fd -- sleep infinity ||
		return 1
	wait_lease berth-host web 10 || return 1
	pid=$(curl -fsS "http://$addr/v1/services/web" | json_field pid)
	hostpid=$(dk inspect -f '{{.State.Pid}}' hweb)
	[ "$pid" = "$hostpid" ] ||
		{ log "web's owner is pid $pid, berth run is host pid $hostpid"; return 1; }
	port=$(curl -fsS "http://$addr/v1/services/web" | json_field port)
	host_port_free "$port" &&
		{ log "nothing listens on web's port $port on the host"; return 1; }
	log "host network: pool $pool; web on the host's port $port, owner pid $pid"
	dk rm -f hweb berth-host >/dev/null
}

# --- docs/examples/compose-*.yml with Debian's docker-compose (v1) ---

# compose PROJECT FILE ARGS: docker-compose on our daemon, for at most
# five minutes. Its builds go through Debian's docker CLI (as ours do):
# they find every layer of build_image's in the cache, so the build stage
# needs no network, which containers of this dockerd do not have.
compose() {
	local p=$1 f=$2
	shift 2
	DOCKER_HOST="unix://$WORK/docker.sock" PATH="/usr/bin:$PATH" \
		COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=0 timeout 300 \
		docker-compose --ansi never -p "$p" -f "$f" "$@"
}

# compose_log PROJECT FILE SERVICE: the service's container's output.
compose_log() {
	local id
	id=$(compose "$1" "$2" ps -q "$3" 2>/dev/null) && [ -n "$id" ] &&
		dk logs "$id" 2>&1
}

# compose_wait PROJECT FILE SERVICE REGEX COUNT SECONDS: until SERVICE's
# output has COUNT matches of REGEX; prints the last one.
compose_wait() {
	local end=$(($(date +%s) + $6)) got
	while [ "$(date +%s)" -lt "$end" ]; do
		got=$(compose_log "$1" "$2" "$3" | grep -oE "$4" || true)
		if [ -n "$got" ] && [ "$(wc -l <<<"$got")" -ge "$5" ]; then
			tail -1 <<<"$got"
			return 0
		fi
		sleep 0.5
	done
	log "$3 of $1 did not print '$4' ($5 times) in $6 s; its output:"
	compose_log "$1" "$2" "$3" | tail -5 >&2
	return 1
}

# compose_up PROJECT FILE [MORE FILES]: `up --build -d`, as the file's
# comment says, with its time in the log.
compose_up() {
	local t0 p=$1 f=$2
	shift 2
	t0=$(now_ms)
	compose "$p" "$f" "$@" up --build -d >"$WORK/$p.up" 2>&1 ||
		{ tail -20 "$WORK/$p.up" >&2; log "$p: up failed"; return 1; }
	log "$p: up --build -d in $(( ($(now_ms) - t0) / 1000 )) s"
}

# compose_down PROJECT FILE: down, volumes too; nothing of it stays.
compose_down() {
	compose "$1" "$2" down -v >"$WORK/$1.down" 2>&1 ||
		{ tail -20 "$WORK/$1.down" >&2; return 1; }
	[ -z "$(dk ps -aq --filter "label=com.docker.compose.project=$1")" ] ||
		{ log "$1: containers left after down"; return 1; }
}

# compose_client_check PROJECT FILE WANT_HOST: the client is told web's
# address (WANT_HOST:PORT, PORT as berthd has it); after `restart
# berth`, web and client come back by their restart policies, web on its
# old port.
compose_client_check() {
	local p=$1 f=$2 addr port again t0
	addr=$(compose_wait "$p" "$f" client 'web is at [^ ]+' 1 60) || return 1
	addr=${addr#web is at }
	port=$(compose "$p" "$f" exec -T berth berth lookup web) || return 1
	[ "$addr" = "$3:$port" ] ||
		{ log "$p: client was told $addr, web has port $port"; return 1; }
	t0=$(now_ms)
	compose "$p" "$f" restart berth >"$WORK/$p.restart" 2>&1 || return 1
	# Their restart policies bring web and client back, unless Docker
	# tried before berth was up again: joining the namespaces of a
	# stopped container fails, and Docker gives up on them. Then `up -d`
	# starts them, as docs/docker.md says.
	if ! again=$(compose_wait "$p" "$f" client 'web is at [^ ]+' 2 20 2>/dev/null); then
		log "$p: Docker gave up restarting the services; up -d"
		compose "$p" "$f" up -d >"$WORK/$p.up2" 2>&1 ||
			{ tail -20 "$WORK/$p.up2" >&2; return 1; }
		again=$(compose_wait "$p" "$f" client 'web is at [^ ]+' 2 60) ||
			return 1
	fi
	[ "${again#web is at }" = "$addr" ] ||
		{ log "$p: after restart, client was told ${again#web is at }, was $addr"; return 1; }
	log "$p: client told $addr; again $(( ($(now_ms) - t0) / 1000 )) s after restart berth"
}

check_compose_netns() {
	local p=berthtest-netns f=docs/examples/compose-netns.yml rc=0
	compose_up "$p" "$f" || return 1
	compose_client_check "$p" "$f" 127.0.0.1 || rc=1
	compose_down "$p" "$f" || rc=1
	return "$rc"
}

check_compose_socket() {
	local p=berthtest-socket f=docs/examples/compose-socket.yml rc=0
	compose_up "$p" "$f" || return 1
	compose_client_check "$p" "$f" web || rc=1
	compose_down "$p" "$f" || rc=1
	return "$rc"
}

# compose-host.yml: berthd on the host's 62893 (or, when something holds
# it, on another port by the override docs/docker.md shows), the client
# told web's address, web's lease seen from the host with web's host pid.
# (No restart check: these services are not in berth's PID namespace.)
check_compose_host() {
	local p=berthtest-host f=docs/examples/compose-host.yml rc=0 port=62893
	local more=() addr id pid hostpid told
	if ! host_port_free "$port"; then
		port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		log "the host's 62893 is taken: compose-host.yml on $port, by an override"
		cat >"$WORK/compose-host.override.yml" <<-EOF
		services:
		  berth:
		    environment:
		      BERTH_LISTEN: 127.0.0.1:$port
		      BERTH_ADDR: 127.0.0.1:$port
		  web:
		    environment:
		      BERTH_ADDR: 127.0.0.1:$port
		  client:
		    environment:
		      BERTH_ADDR: 127.0.0.1:$port
		EOF
		more=(-f "$WORK/compose-host.override.yml")
	fi
	addr=127.0.0.1:$port
	compose_up "$p" "$f" "${more[@]}" || return 1
	told=$(compose_wait "$p" "$f" client 'web is at [^ ]+' 1 60) || rc=1
	if [ "$rc" -eq 0 ]; then
		port=$(curl -fsS "http://$addr/v1/services/web" | json_field port)
		[ "${told#web is at }" = "127.0.0.1:$port" ] ||
			{ log "$p: client was $told, web has port $port"; rc=1; }
		pid=$(curl -fsS "http://$addr/v1/services/web" | json_field pid)
		id=$(compose "$p" "$f" "${more[@]}" ps -q web)
		hostpid=$(dk inspect -f '{{.State.Pid}}' "$id")
		[ "$pid" = "$hostpid" ] ||
			{ log "$p: web's lease has pid $pid, berth run is $hostpid"; rc=1; }
		log "$p: client told ${told#web is at }; web's owner is host pid $pid"
	fi
	compose_down "$p" "$f" || rc=1
	return "$rc"
}

# compose-cluster.yml: etcd and two berthd "hosts", a and b. The client
# in b's namespaces is told web's address on a (a:PORT, PORT as a's
# berthd has it) and connects to it; on b, `berth lookup web --cluster
# --addr-only` says a:PORT too, and b's berthd has a's instance of web in
# its view of the cluster, fresh.
check_compose_cluster() {
	local p=berthtest-cluster f=docs/examples/compose-cluster.yml rc=0
	local told port pid view got
	# The etcd image installs etcd-server with apt-get, which needs the
	# archive: build it on the host's network first, so that compose's
	# build (the same Dockerfile and context) finds every layer cached.
	dk build --network host -t berth-etcd -f docs/examples/etcd.Dockerfile \
		docs/examples >"$WORK/build-etcd.log" 2>&1 ||
		{ tail -20 "$WORK/build-etcd.log" >&2; log "etcd image: build failed"; return 1; }
	compose_up "$p" "$f" || return 1
	told=$(compose_wait "$p" "$f" client 'web is at [^ ]+' 1 90) ||
		{ rc=1; log "$p: web's output:"; compose_log "$p" "$f" web | tail -5 >&2; }
	if [ "$rc" -eq 0 ]; then
		told=${told#web is at }
		port=$(compose "$p" "$f" exec -T a berth lookup web) || rc=1
		[ "$told" = "a:$port" ] ||
			{ log "$p: client was told '$told', web has port '$port' on a"; rc=1; }
		compose_wait "$p" "$f" client 'connected to web' 1 30 >/dev/null || rc=1
		# docs/cluster.md's lookup from b.
		got=$(compose "$p" "$f" exec -T b berth lookup web --cluster --addr-only) ||
			rc=1
		[ "$got" = "a:$port" ] ||
			{ log "$p: on b, berth lookup web --cluster said '$got'"; rc=1; }
	fi
	if [ "$rc" -eq 0 ]; then
		# b's own view, from its API: the host's curl in b's network
		# namespace (the image has no HTTP client but berth).
		pid=$(dk inspect -f '{{.State.Pid}}' "$(compose "$p" "$f" ps -q b)")
		view=$(nsenter -t "$pid" -n curl -fsS \
			http://127.0.0.1:62893/v1/cluster/services/web) ||
			{ log "$p: b's cluster lookup of web failed"; rc=1; }
		[ "$rc" -eq 0 ] && ! python3 -c '
import json, sys
d = json.loads(sys.argv[2])
i = [x for x in d["instances"] if x["node"] == "a"]
sys.exit(not (i and i[0]["host"] == "a" and i[0]["port"] == int(sys.argv[1])
              and d["stale"] is False))' "$port" "$view" &&
			{ log "$p: b's view of web: $view"; rc=1; }
		[ "$rc" -eq 0 ] && log "$p: client on b told $told and connected; b's view: $view"
	fi
	compose_down "$p" "$f" || rc=1
	return "$rc"
}

# dns_upstream NET IP: a stand-in for a site's usual resolver, at IP on
# the compose network NET: the host's dnsmasq in the network namespace
# of an idle container there, answering example.test with 192.0.2.7 and
# REFUSED for all else (it has no upstream of its own). Its pid is in
# UPSTREAM_PID, for dns_upstream_stop or the cleanup.
dns_upstream() {
	local pid i
	dk_run --name dns-upstream --network "$1" --ip "$2" \
		--entrypoint sleep "$IMAGE" infinity || return 1
	pid=$(dk inspect -f '{{.State.Pid}}' dns-upstream)
	# nsenter enters the namespace and execs dnsmasq: one pid.
	nsenter -t "$pid" -n dnsmasq --keep-in-foreground --conf-file=/dev/null \
		--no-resolv --no-hosts --bind-interfaces --listen-address="$2" \
		--address=/example.test/192.0.2.7 >"$WORK/dnsmasq.log" 2>&1 &
	UPSTREAM_PID=$!
	for i in $(seq 1 50); do
		[ "$(nsenter -t "$pid" -n dig +short +notcp +time=1 +tries=1 \
			@"$2" example.test A 2>/dev/null)" = 192.0.2.7 ] && return 0
		sleep 0.1
	done
	log "the stand-in resolver at $2 did not answer; dnsmasq said:"
	cat "$WORK/dnsmasq.log" >&2
	return 1
}

dns_upstream_stop() {
	[ -n "$UPSTREAM_PID" ] || return 0
	kill "$UPSTREAM_PID" 2>/dev/null
	wait "$UPSTREAM_PID" 2>/dev/null
	UPSTREAM_PID=""
	dk rm -f dns-upstream >/dev/null
}

# compose-dns.yml: berthd answers DNS at its fixed address, port 53. The
# client, whose only `dns:` server that is, is told web.berth's address
# by Docker's DNS (127.0.0.11): web's own address on the network, the
# lease's host; it connects to web.berth:8080. Docker's own names (berth,
# web) still resolve there; nope.berth, a name without a lease, does not.
# An outside name is REFUSED with berthd alone (as the file's comment
# says); with a second server after berthd, as the comment advises, it
# is answered by that one, and web.berth still by berthd.
check_compose_dns() {
	local p=berthtest-dns f=docs/examples/compose-dns.yml rc=0 code
	local net=berthtest-dns_default berth_ip=172.31.255.194
	local up_ip=172.31.255.200 told web_ip host got pid
	compose_up "$p" "$f" || return 1
	told=$(compose_wait "$p" "$f" client 'web.berth is [^ ]+' 1 60) ||
		{ rc=1; log "$p: web's output:"; compose_log "$p" "$f" web | tail -5 >&2; }
	if [ "$rc" -eq 0 ]; then
		told=${told#web.berth is }
		web_ip=$(dk inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" \
			"$(compose "$p" "$f" ps -q web)")
		host=$(compose "$p" "$f" exec -T berth berth lookup web --json |
			json_field host)
		[ "$told" = "$web_ip" ] && [ "$host" = "$web_ip" ] ||
			{ log "$p: client was told web.berth is '$told'; web is at $web_ip, its lease's host is '$host'"; rc=1; }
		compose_wait "$p" "$f" client 'connected to web.berth:8080' 1 30 \
			>/dev/null || rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		got=$(compose "$p" "$f" exec -T client getent hosts berth web |
			awk '{ print $1 }' | paste -sd ' ')
		[ "$got" = "$berth_ip $web_ip" ] ||
			{ log "$p: in client, Docker's names berth and web are at '$got'"; rc=1; }
		code=0
		compose "$p" "$f" exec -T client getent hosts nope.berth \
			>"$WORK/nope.out" 2>&1 || code=$?
		[ "$code" -eq 2 ] ||
			{ log "$p: getent hosts nope.berth: exit $code: $(cat "$WORK/nope.out")"; rc=1; }
		# An outside name, with berthd the only server: REFUSED, at once.
		code=0
		compose "$p" "$f" exec -T client getent hosts example.test \
			>"$WORK/outside.out" 2>&1 || code=$?
		pid=$(dk inspect -f '{{.State.Pid}}' "$(compose "$p" "$f" ps -q client)")
		got=$(nsenter -t "$pid" -n dig +notcp +time=2 +tries=1 \
			@127.0.0.11 example.test A 2>&1 |
			grep -oE 'status: [A-Z]+|Query time: [0-9]+ msec' | paste -sd ' ')
		[ "$code" -eq 2 ] && grep -q 'status: REFUSED' <<<"$got" ||
			{ log "$p: example.test with berthd alone: getent exit $code, dig: '$got'"; rc=1; }
		log "$p: client told web.berth is $told and connected; example.test with berthd alone: getent exit $code, dig $got"
	fi
	if [ "$rc" -eq 0 ]; then
		if dns_upstream "$net" "$up_ip"; then
			got=$(timeout 60 "$DOCKER_BIN" -H "unix://$WORK/docker.sock" \
				run --rm --network "$net" --dns "$berth_ip" --dns "$up_ip" \
				--entrypoint getent "$IMAGE" hosts web.berth example.test \
				2>"$WORK/upstream.err" | awk '{ print $1 }' | paste -sd ' ')
			[ "$got" = "$web_ip 192.0.2.7" ] ||
				{ log "$p: with dns $berth_ip, $up_ip: web.berth and example.test at '$got' $(grep -v '^WARNING: IPv4' "$WORK/upstream.err")"; rc=1; }
			[ "$rc" -eq 0 ] && log "$p: with dns $berth_ip, $up_ip: web.berth and example.test at $got"
		else
			rc=1
		fi
		dns_upstream_stop
	fi
	compose_down "$p" "$f" || rc=1
	return "$rc"
}

# run_check NAME FUNCTION: run one check and count its result; with
# BERTH_DOCKER_ONLY set, only if it names the check.
run_check() {
	local rc=0
	if [ -n "${BERTH_DOCKER_ONLY:-}" ]; then
		case " ${BERTH_DOCKER_ONLY//,/ } " in
		*" $1 "*) ;;
		*) return 0 ;;
		esac
	fi
	"$2" || rc=$?
	result "$1" "$rc"
}

main() {
	local t0
	t0=$(now_ms)
	[ "$(id -u)" -eq 0 ] || { echo "docker-tests: run as root" >&2; exit 77; }
	install_deps
	WORK=$(mktemp -d /tmp/berth-docker.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	# Our bridge, left behind by a run killed before its cleanup, is
	# ours to remove: taken into the snapshot, the cleanup's removal of
	# it would read as a change to the host.
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		log "removing $BRIDGE, left over from an earlier run"
		ip link delete "$BRIDGE"
	fi
	host_net_state >"$WORK/net.before"
	start_dockerd
	make_base
	build_image
	if [ "${1:-}" = --prepare ]; then
		log "prepared in $(( ($(now_ms) - t0) / 1000 )) s: the base and the image are in the cache"
		return 0
	fi
	# Left over from a run that was killed before its cleanup.
	dk rm -f berth berth-ro web web2 berth-sock sweb berth-host hweb \
		dns-upstream >/dev/null 2>&1 || true
	dk network rm berth-apps >/dev/null 2>&1 || true
	dk volume rm berth-state berth-ro berth-run >/dev/null 2>&1 || true

	run_check docker-run-health check_run_health
	run_check docker-healthcheck-healthy check_healthcheck
	run_check docker-acquire check_lease_taken
	run_check docker-second-berthd-locked check_second_locked
	run_check docker-stop-2s check_stop
	run_check docker-lease-survives-restart check_lease_restart
	run_check docker-lease-survives-recreate check_lease_recreate
	run_check docker-non-root-user check_non_root
	run_check docker-read-only-root check_read_only
	run_check docker-cli-in-own-image check_cli_own_image
	run_check docker-shared-namespaces check_shared_namespaces
	run_check docker-own-pid-namespace check_own_pid_namespace
	run_check docker-socket-volume check_socket_volume
	run_check docker-host-network check_host_network
	run_check compose-netns check_compose_netns
	run_check compose-socket check_compose_socket
	run_check compose-host check_compose_host
	run_check compose-cluster check_compose_cluster
	run_check compose-dns check_compose_dns

	echo "docker-tests: $PASSED passed, $FAILED failed${FAILED_NAMES:+ (failed:$FAILED_NAMES)}, $(( ($(now_ms) - t0) / 1000 )) s in all"
	[ $((PASSED + FAILED)) -gt 0 ] ||
		{ log "BERTH_DOCKER_ONLY='${BERTH_DOCKER_ONLY:-}' names no check"; return 1; }
	[ "$FAILED" -eq 0 ]
}

main "$@"
