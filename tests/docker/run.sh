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
# directory to start cold. Exit status: 0 when every check passed.
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
	for p in docker.io docker-compose mmdebstrap iproute2 iptables; do
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

# run_check NAME FUNCTION: run one check and count its result.
run_check() {
	local rc=0
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
	host_net_state >"$WORK/net.before"
	start_dockerd
	make_base
	build_image
	# Left over from a run that was killed before its cleanup.
	dk rm -f berth >/dev/null 2>&1 || true
	dk rm -f berth-ro >/dev/null 2>&1 || true
	dk volume rm berth-state berth-ro >/dev/null 2>&1 || true

	run_check docker-run-health check_run_health
	run_check docker-healthcheck-healthy check_healthcheck
	run_check docker-acquire check_lease_taken
	run_check docker-second-berthd-locked check_second_locked
	run_check docker-stop-2s check_stop
	run_check docker-lease-survives-restart check_lease_restart
	run_check docker-lease-survives-recreate check_lease_recreate
	run_check docker-non-root-user check_non_root
	run_check docker-read-only-root check_read_only

	echo "docker-tests: $PASSED passed, $FAILED failed${FAILED_NAMES:+ (failed:$FAILED_NAMES)}, $(( ($(now_ms) - t0) / 1000 )) s in all"
	[ "$FAILED" -eq 0 ]
}

main "$@"
