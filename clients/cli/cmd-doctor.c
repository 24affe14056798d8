/*
 * cmd-doctor.c: `berth doctor [NAME]`, the checklist people otherwise run
 * by hand with netstat, lsof and curl: does a broker answer (and if not,
 * who holds its port), is its database well, how crowded is the pool, and
 * for each lease: is its owner alive and is anything listening on its
 * port. One line per finding, "ok:", "warn:" or "fail:", with a hint
 * after " — " saying what to do.
 */
#include "config.h"

#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

/* A broker on this host answers in well under this. */
#define DOCTOR_TIMEOUT_MS	3000
/* How much of a command line to quote in a finding. */
#define DOCTOR_CMD_MAX		60

enum doctor_level {
	DOCTOR_OK,
	DOCTOR_WARN,
	DOCTOR_FAIL
};

static const char *const doctor_level_names[] = { "ok", "warn", "fail" };

struct doctor {
	struct cli	*cli;
	berth_client	*client;
	const char	*addr;
	int		 worst;		/* enum doctor_level */
	json_t		*findings;	/* --json: the findings, if so */
	berth_info	*status;	/* GET /v1/status */
	berth_leases	*leases;
};

static const struct option doctor_options[] = {
	{ "help",	no_argument,	NULL,	'h' },
	{ NULL,		0,		NULL,	0 }
};

/*
 * Report one finding: printed at once for people, or kept for the JSON
 * report. hint (may be NULL) says what to do about it.
 */
static void __attribute__((format(printf, 4, 5)))
doctor_note(struct doctor *d, enum doctor_level level, const char *hint,
    const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if ((int)level > d->worst)
		d->worst = level;
	if (d->findings != NULL) {
		json_array_append_new(d->findings, json_pack("{s:s, s:s, s:o}",
		    "level", doctor_level_names[level], "message", msg,
		    "hint", hint != NULL ? json_string(hint) : json_null()));
		return;
	}
	if (hint != NULL)
		printf("%s: %s \xe2\x80\x94 %s\n", doctor_level_names[level],
		    msg, hint);
	else
		printf("%s: %s\n", doctor_level_names[level], msg);
	fflush(stdout);
}

/* A command line short enough to quote in one line. */
static void
doctor_cmd(const char *cmd, char *out, size_t len)
{
	if (len <= DOCTOR_CMD_MAX + 4 || strlen(cmd) <= DOCTOR_CMD_MAX) {
		snprintf(out, len, "%s", cmd);
		return;
	}
	snprintf(out, len, "%.*s...", DOCTOR_CMD_MAX, cmd);
}

/* "pid 123 (nginx: master)", or words for a process we cannot see. */
static void
doctor_who(const struct sock_holder *h, char *out, size_t len)
{
	char	cmd[DOCTOR_CMD_MAX + 8];

	if (h->pid == 0) {
		snprintf(out, len, "a process not visible here (another "
		    "user's, or in another container)");
		return;
	}
	doctor_cmd(h->cmd, cmd, sizeof cmd);
	snprintf(out, len, "pid %ld (%s)", (long)h->pid, cmd);
}

/* 1 if the command line's program is berthd. */
static int
doctor_is_berthd(const char *cmd)
{
	const char	*end = cmd + strcspn(cmd, " "), *base = cmd, *p;

	for (p = cmd; p < end; p++) {
		if (*p == '/')
			base = p + 1;
	}
	return (end - base >= 6 && memmem(base, end - base, "berthd", 6) !=
	    NULL);
}

/* Why a call failed, short: "connection refused", "no answer within 3 s". */
static void
doctor_reason(const berth_error *err, char *out, size_t len)
{
	const char	*open, *close;

	if (err->code == BERTH_ETIMEOUT) {
		snprintf(out, len, "no answer within %d s",
		    DOCTOR_TIMEOUT_MS / 1000);
		return;
	}
	if (err->code == BERTH_EUNREACHABLE &&
	    (open = strrchr(err->message, '(')) != NULL &&
	    (close = strchr(open, ')')) != NULL) {
		snprintf(out, len, "%.*s", (int)(close - open - 1), open + 1);
		return;
	}
	snprintf(out, len, "%s", err->message);
}

/* The TCP port of a host:port address, or 0 (unix:, unparsable). */
static uint16_t
doctor_addr_port(const char *addr)
{
	const char	*colon;
	long		 port;

	if (strncmp(addr, "unix:", 5) == 0 ||
	    (colon = strrchr(addr, ':')) == NULL)
		return (0);
	if (cli_parse_long(colon + 1, 1, 65535, &port) == -1)
		return (0);
	return ((uint16_t)port);
}

/* No broker at a unix: address: say what is at the socket's path. */
static void
doctor_no_broker_unix(struct doctor *d, const char *reason)
{
	const char	*path = d->addr + 5;
	struct stat	 st;
	char		 hint[512];

	snprintf(hint, sizeof hint, "start it with 'berthd --listen %s'",
	    d->addr);
	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			doctor_note(d, DOCTOR_FAIL, hint, "no broker at %s "
			    "(%s); the socket file does not exist", d->addr,
			    reason);
		else
			doctor_note(d, DOCTOR_FAIL, "check the directory's "
			    "permissions, or run as berthd's user",
			    "no broker at %s (%s); cannot look at %s: %s",
			    d->addr, reason, path, strerror(errno));
		return;
	}
	if (!S_ISSOCK(st.st_mode)) {
		doctor_note(d, DOCTOR_FAIL, "point --addr/BERTH_ADDR at "
		    "berthd's socket",
		    "no broker at %s (%s); %s is not a socket", d->addr,
		    reason, path);
		return;
	}
	if (access(path, W_OK) == -1) {
		doctor_note(d, DOCTOR_FAIL, "run as a user that may write to "
		    "it (berthd's user, or one in its group)",
		    "no broker at %s (%s); the socket exists but this user "
		    "may not connect to it", d->addr, reason);
		return;
	}
	snprintf(hint, sizeof hint, "berthd has probably died and left it "
	    "behind; remove it and start 'berthd --listen %s'", d->addr);
	doctor_note(d, DOCTOR_FAIL, hint, "no broker at %s (%s); the socket "
	    "file exists but nothing answers on it", d->addr, reason);
}

/*
 * No broker answered at a TCP address: find out who, if anyone, holds the
 * port, since that is the usual reason (a stale berthd, or another service
 * that took the port).
 */
static void
doctor_no_broker_tcp(struct doctor *d, const char *reason, uint16_t port)
{
	struct sock_holder	*h = NULL, *l = NULL;
	size_t			 n = 0, i;
	char			 who[DOCTOR_CMD_MAX + 128];

	if (sockets_find(port, &h, &n) == -1)
		n = 0;
	for (i = 0; i < n && l == NULL; i++) {
		if (h[i].proto == SOCK_PROTO_TCP && h[i].listening)
			l = &h[i];
	}
	if (l == NULL) {
		doctor_note(d, DOCTOR_FAIL, "start it with 'berthd'",
		    "no broker at %s (%s); nothing listens there", d->addr,
		    reason);
	} else if (l->pid != 0 && doctor_is_berthd(l->cmd)) {
		doctor_who(l, who, sizeof who);
		doctor_note(d, DOCTOR_FAIL, "it may be stuck or overloaded: "
		    "look at its log, or restart it",
		    "no broker answers at %s (%s), though berthd %s listens "
		    "on port %u", d->addr, reason, who, port);
	} else {
		doctor_who(l, who, sizeof who);
		doctor_note(d, DOCTOR_FAIL, "stop that process or move it to "
		    "another port, then start 'berthd'; or point "
		    "--addr/BERTH_ADDR at the broker you meant",
		    "no broker at %s (%s); port %u is held by %s, which is "
		    "not berthd", d->addr, reason, port, who);
	}
	free(h);
}

/*
 * Something that is not berthd answers at the address: say so, with the
 * process that holds a TCP address's port when it can be seen.
 */
static int
doctor_not_broker(struct doctor *d, const char *why)
{
	struct sock_holder	*h = NULL;
	size_t			 n = 0, i;
	uint16_t		 port = doctor_addr_port(d->addr);
	char			 who[DOCTOR_CMD_MAX + 128];
	char			 held[DOCTOR_CMD_MAX + 160];

	held[0] = '\0';
	if (port != 0 && sockets_find(port, &h, &n) == 0) {
		for (i = 0; i < n; i++) {
			if (h[i].proto == SOCK_PROTO_TCP && h[i].listening &&
			    h[i].pid != 0) {
				doctor_who(&h[i], who, sizeof who);
				snprintf(held, sizeof held, "; port %u is held "
				    "by %s", port, who);
				break;
			}
		}
		free(h);
	}
	doctor_note(d, DOCTOR_FAIL, "point --addr/BERTH_ADDR at berthd",
	    "%s is not a berth broker (%s)%s", d->addr, why, held);
	return (CLI_EXIT_UNREACHABLE);
}

/* The broker did not answer (or not as berthd): say why, and who is there. */
static int
doctor_no_broker(struct doctor *d, const berth_error *err)
{
	char		reason[400];
	uint16_t	port;

	if (cli_not_broker(err, reason, sizeof reason))
		return (doctor_not_broker(d, reason));
	/* A berthd error answer carries its API code: it is there. */
	if (err->api_code[0] != '\0') {
		doctor_note(d, DOCTOR_FAIL, "see berthd's log; 'berth status' "
		    "shows the full answer", "the broker at %s answers with "
		    "an error: %s", d->addr, err->message);
		return (CLI_EXIT_ERROR);
	}
	doctor_reason(err, reason, sizeof reason);
	if (strncmp(d->addr, "unix:", 5) == 0)
		doctor_no_broker_unix(d, reason);
	else if ((port = doctor_addr_port(d->addr)) != 0)
		doctor_no_broker_tcp(d, reason, port);
	else
		doctor_note(d, DOCTOR_FAIL, "start it with 'berthd'",
		    "no broker at %s (%s)", d->addr, reason);
	return (CLI_EXIT_UNREACHABLE);
}

/*
 * Check 1: does a broker answer? Fetches /v1/status for the later checks.
 * Returns 0 when it does, else the exit code to end with.
 */
static int
doctor_broker(struct doctor *d)
{
	berth_error	 err;
	const char	*v;
	int64_t		 up;

	if (berth_status(d->client, &d->status, &err) != 0)
		return (doctor_no_broker(d, &err));
	v = berth_info_version(d->status);
	up = berth_info_uptime(d->status);
	doctor_note(d, DOCTOR_OK, NULL, "broker answers at %s (berthd %s, up "
	    "%llds)", d->addr, v != NULL ? v : "?", (long long)(up > 0 ? up :
	    0));
	return (0);
}

/* Check 2: the database berthd records leases in. */
static void
doctor_database(struct doctor *d)
{
	const char	*path = berth_info_db(d->status);
	berth_error	 err;
	int		 ok;

	if (path == NULL)
		path = "?";
	ok = berth_info_db_ok(d->status) == 1 &&
	    berth_health(d->client, &err) == 0;
	if (!ok)
		doctor_note(d, DOCTOR_FAIL, "check that its directory exists "
		    "and is writable by berthd's user, and that the disk is "
		    "not full; berthd's log says why",
		    "database %s is not writable or not answering", path);
	else if (strcmp(path, ":memory:") == 0)
		doctor_note(d, DOCTOR_OK, NULL, "database is in memory "
		    "(:memory:); leases do not survive a restart of berthd");
	else
		doctor_note(d, DOCTOR_OK, NULL, "database %s is writable",
		    path);
}

/* Fetch the leases once; 0, or the exit code after a fail line. */
static int
doctor_fetch_leases(struct doctor *d)
{
	berth_error	err;

	if (berth_list(d->client, 0, 0, &d->leases, &err) != 0) {
		doctor_note(d, DOCTOR_FAIL, "see berthd's log",
		    "cannot list the leases at %s: %s", d->addr, err.message);
		return (cli_exit_code(err.code) == CLI_EXIT_UNREACHABLE ?
		    CLI_EXIT_UNREACHABLE : CLI_EXIT_ERROR);
	}
	return (0);
}

/*
 * Check 3: the pool's size and what is left of it, and how many pool ports
 * processes hold without a lease: berthd skips those, so a pool crowded by
 * other software (often outgoing connections from the kernel's ephemeral
 * range) runs dry sooner than its size says.
 */
static void
doctor_pool(struct doctor *d)
{
	const berth_lease	*l;
	const char		*r;
	uint8_t			*bound;
	char			 text[256];
	size_t			 i, len = 0;
	long long		 size, nfree, held = 0, shared = 0;
	unsigned long		 lo, hi, p, elo = 1, ehi = 0;
	int			 k;

	size = berth_info_pool_size(d->status);
	nfree = berth_info_pool_free(d->status);
	text[0] = '\0';
	if ((bound = calloc(65536, 1)) == NULL) {
		doctor_note(d, DOCTOR_FAIL, NULL, "out of memory");
		return;
	}
	sockets_bound_ports(bound);
	ephemeral_range(&elo, &ehi);
	for (i = 0; (l = berth_leases_get(d->leases, i)) != NULL; i++) {
		if (berth_lease_port(l) > 0 && berth_lease_port(l) < 65536)
			bound[berth_lease_port(l)] = 0;
	}
	for (k = 0; k < berth_info_pool_range_count(d->status); k++) {
		if ((r = berth_info_pool_range(d->status, k)) == NULL ||
		    sscanf(r, "%lu-%lu", &lo, &hi) != 2 || hi > 65535)
			continue;
		for (p = lo; p <= hi; p++) {
			held += bound[p];
			shared += p >= elo && p <= ehi;
		}
		if (len < sizeof text)
			len += snprintf(text + len, sizeof text - len, "%s%s",
			    k > 0 ? "," : "", r);
	}
	free(bound);

	if (size <= 0)
		doctor_note(d, DOCTOR_FAIL, "give berthd a pool with --range "
		    "LO-HI", "the pool is empty");
	else if (nfree <= 0)
		doctor_note(d, DOCTOR_FAIL, "release leases you no longer "
		    "need ('berth list'), or widen the pool with berthd "
		    "--range", "pool %s is exhausted: all %lld ports are "
		    "leased or cooling down", text, size);
	else if (held * 4 > size)
		doctor_note(d, DOCTOR_WARN, "give berthd a --range that other "
		    "software does not use, or move the kernel's ephemeral "
		    "range (sysctl net.ipv4.ip_local_port_range) away from it",
		    "pool %s: %lld of its %lld ports are held by processes "
		    "without a lease (%lld free)", text, held, size, nfree);
	else
		doctor_note(d, DOCTOR_OK, NULL, "pool %s: %lld ports, %lld "
		    "free, %lld held by processes without a lease", text,
		    size, nfree, held);
	/* berthd's own fallback pool is said below, in its own words. */
	if (shared > 0 && !berth_info_pool_fallback(d->status))
		doctor_note(d, DOCTOR_WARN, "give berthd a --range outside "
		    "it, or move the kernel's (sysctl "
		    "net.ipv4.ip_local_port_range) away from the pool",
		    "pool %s: %lld of its ports are in the kernel's ephemeral "
		    "range %lu-%lu, from which outgoing connections take ports",
		    text, shared, elo, ehi);
	if (berth_info_pool_fallback(d->status))
		doctor_note(d, DOCTOR_WARN, "give berthd a --range, or narrow "
		    "net.ipv4.ip_local_port_range so some of 49152-65535 is "
		    "left", "the kernel's ephemeral range covers the dynamic "
		    "ports, so berthd fell back to 49152-65535: outgoing "
		    "connections can take ports it hands out");
}

/* Check 4a: the lease's owner process, when it has one. */
static void
doctor_owner(struct doctor *d, const berth_lease *l)
{
	const char	*name = berth_lease_name(l);
	long		 pid = berth_lease_pid(l);
	char		 path[64], cmd[256], shown[DOCTOR_CMD_MAX + 8];
	struct stat	 st;

	if (pid <= 0) {
		if (berth_lease_ttl(l) > 0)
			doctor_note(d, DOCTOR_OK, NULL, "%s: no owner process; "
			    "the lease ends unless renewed every %lds", name,
			    berth_lease_ttl(l));
		else
			doctor_note(d, DOCTOR_OK, NULL, "%s: no owner process "
			    "and no TTL; the lease lasts until released", name);
		return;
	}
	snprintf(path, sizeof path, "/proc/%ld", pid);
	if (stat(path, &st) == -1) {
		doctor_note(d, DOCTOR_WARN, "berthd ends a dead owner's lease "
		    "within a second; if this stays, the owner runs in another "
		    "PID namespace (container) than this shell",
		    "%s: owner pid %ld is not running here", name, pid);
		return;
	}
	sockets_cmdline((pid_t)pid, cmd, sizeof cmd);
	doctor_cmd(cmd, shown, sizeof shown);
	if (shown[0] != '\0')
		doctor_note(d, DOCTOR_OK, NULL, "%s: owner pid %ld is alive "
		    "(%s)", name, pid, shown);
	else
		doctor_note(d, DOCTOR_OK, NULL, "%s: owner pid %ld is alive",
		    name, pid);
}

/*
 * 1 if a socket bound to local (as sockets.c prints it) accepts
 * connections to host: the same address, or a wildcard of its family
 * ([::] usually takes IPv4 too). Names (localhost) are not second-guessed.
 */
static int
doctor_covers(const char *local, const char *host)
{
	struct in6_addr	 h6, l6;
	struct in_addr	 h4, l4;
	char		 addr[64];
	const char	*colon;
	size_t		 len;
	int		 hv4, hv6;

	hv4 = inet_pton(AF_INET, host, &h4) == 1;
	hv6 = !hv4 && inet_pton(AF_INET6, host, &h6) == 1;
	if ((!hv4 && !hv6) || (colon = strrchr(local, ':')) == NULL)
		return (1);
	len = colon - local;
	if (local[0] == '[' && len >= 2) {
		snprintf(addr, sizeof addr, "%.*s", (int)len - 2, local + 1);
		if (inet_pton(AF_INET6, addr, &l6) != 1)
			return (1);
		if (IN6_IS_ADDR_UNSPECIFIED(&l6))
			return (1);
		if (hv6)
			return (IN6_ARE_ADDR_EQUAL(&l6, &h6));
		return (IN6_IS_ADDR_V4MAPPED(&l6) &&
		    memcmp(&l6.s6_addr[12], &h4, 4) == 0);
	}
	snprintf(addr, sizeof addr, "%.*s", (int)len, local);
	if (inet_pton(AF_INET, addr, &l4) != 1)
		return (1);
	if (!hv4)
		return (0);
	return (l4.s_addr == htonl(INADDR_ANY) || l4.s_addr == h4.s_addr);
}

/*
 * What to do about a lease whose port nobody serves. Starting the service
 * with berth run is the cure only once the lease is gone (until then the
 * name is taken), so the hint follows what ends this lease: its owner is
 * alive (then the service runs, but likely not on this port: 1 is
 * returned, the finding says so), it dies or its TTL runs out by itself,
 * or, with neither, someone must release or revoke it.
 */
static int
doctor_idle_hint(const berth_lease *l, char *hint, size_t len)
{
	const char	*name = berth_lease_name(l);
	char		 path[64];
	struct stat	 st;
	long		 pid = berth_lease_pid(l);

	snprintf(path, sizeof path, "/proc/%ld", pid);
	if (pid > 0 && stat(path, &st) == 0) {
		snprintf(hint, len, "does the service use $PORT? (berth run "
		    "gives it %d as $PORT and {port})", berth_lease_port(l));
		return (1);
	}
	if (pid > 0)
		snprintf(hint, len, "the lease ends when pid %ld has exited; "
		    "then start the service with 'berth run %s -- CMD'", pid,
		    name);
	else if (berth_lease_ttl(l) > 0)
		snprintf(hint, len, "is the service running? if not, the lease "
		    "ends %lds after its last renewal, or release it with its "
		    "token; then start the service with 'berth run %s -- CMD'",
		    berth_lease_ttl(l), name);
	else
		snprintf(hint, len, "is the service running? if not, this "
		    "lease never ends by itself: release it with its token, "
		    "or as root or berthd's user 'berth revoke %s'; then "
		    "start the service with 'berth run %s -- CMD'", name,
		    name);
	return (0);
}

/*
 * Check 4b, for one protocol of the lease: is a server on its port, which
 * process, and does it accept connections at the lease's host?
 */
static void
doctor_listener(struct doctor *d, const berth_lease *l, int proto,
    const struct sock_holder *h, size_t n)
{
	const char			*pname = proto == SOCK_PROTO_TCP ?
					    "tcp" : "udp";
	const char			*verb = proto == SOCK_PROTO_TCP ?
					    "listens" : "is bound";
	const char			*name = berth_lease_name(l);
	const char			*host = berth_lease_host(l);
	const struct sock_holder	*first = NULL, *good = NULL;
	char				 who[DOCTOR_CMD_MAX + 128];
	char				 hint[512];
	size_t				 i;

	for (i = 0; i < n; i++) {
		if (h[i].proto != proto || !h[i].listening)
			continue;
		if (first == NULL)
			first = &h[i];
		if (good == NULL && doctor_covers(h[i].local, host))
			good = &h[i];
	}
	if (first == NULL) {
		if (doctor_idle_hint(l, hint, sizeof hint))
			doctor_note(d, DOCTOR_WARN, hint, "%s: owner alive but "
			    "nothing %s on %d (%s)", name, verb,
			    berth_lease_port(l), pname);
		else
			doctor_note(d, DOCTOR_WARN, hint, "%s: nothing %s on "
			    "%s:%d (%s)", name, verb, host,
			    berth_lease_port(l), pname);
		return;
	}
	if (good == NULL) {
		doctor_who(first, who, sizeof who);
		snprintf(hint, sizeof hint, "bind the service to %s (or the "
		    "wildcard address), or acquire the lease with --host",
		    host);
		doctor_note(d, DOCTOR_WARN, hint, "%s: %s %s on %s, but the "
		    "lease tells clients to connect to %s", name, who, verb,
		    first->local, host);
		return;
	}
	doctor_who(good, who, sizeof who);
	doctor_note(d, DOCTOR_OK, NULL, "%s: %s %s on %s (%s)", name, who, verb,
	    good->local, pname);
}

/* Check 4: one lease's owner and listener(s). */
static void
doctor_lease(struct doctor *d, const berth_lease *l)
{
	struct sock_holder	*h = NULL;
	size_t			 n = 0;

	doctor_owner(d, l);
	if (berth_lease_port(l) <= 0 || berth_lease_port(l) > 65535)
		return;
	if (sockets_find((uint16_t)berth_lease_port(l), &h, &n) == -1) {
		doctor_note(d, DOCTOR_FAIL, NULL, "out of memory");
		return;
	}
	if (strcmp(berth_lease_proto(l), "udp") != 0)
		doctor_listener(d, l, SOCK_PROTO_TCP, h, n);
	if (strcmp(berth_lease_proto(l), "tcp") != 0)
		doctor_listener(d, l, SOCK_PROTO_UDP, h, n);
	free(h);
}

/* Run the checks in order; returns the exit code. */
static int
doctor_run(struct doctor *d, const char *name)
{
	const berth_lease	*l;
	char			 hint[256];
	size_t			 i;
	int			 rc, found = 0;

	if ((rc = doctor_broker(d)) != 0)
		return (rc);
	doctor_database(d);
	if ((rc = doctor_fetch_leases(d)) != 0)
		return (rc);
	doctor_pool(d);
	for (i = 0; (l = berth_leases_get(d->leases, i)) != NULL; i++) {
		if (name != NULL && strcmp(berth_lease_name(l), name) != 0)
			continue;
		found = 1;
		doctor_lease(d, l);
	}
	if (name != NULL && !found) {
		snprintf(hint, sizeof hint, "start the service with 'berth run "
		    "%s -- CMD', or check the name with 'berth list'", name);
		doctor_note(d, DOCTOR_FAIL, hint, "no lease named %s", name);
		return (CLI_EXIT_NOTFOUND);
	}
	if (name == NULL && berth_leases_count(d->leases) == 0)
		doctor_note(d, DOCTOR_OK, NULL, "no leases");
	return (d->worst == DOCTOR_OK ? CLI_EXIT_OK : CLI_EXIT_ERROR);
}

/*
 * doctor [NAME]: exits 0 only when all is well, 1 on a warning or failure,
 * 3 when NAME has no lease, 69 when no broker answers.
 */
int
cmd_doctor(struct cli *cli, int argc, char **argv)
{
	struct doctor	 d;
	const char	*name = NULL;
	char		*text, msg[256];
	json_t		*o;
	int		 ch, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+h", doctor_options,
	    NULL)) != -1) {
		switch (ch) {
		case 'h':
			printf("usage: berth doctor [NAME]\n");
			return (CLI_EXIT_OK);
		default:
			return (cli_usage("doctor", "doctor: unknown option "
			    "'%s'", argv[optind - 1]));
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		return (cli_usage("doctor", "doctor: one name at a time"));
	if (argc == 1) {
		name = argv[0];
		if (!names_valid(name))
			return (cli_usage("doctor", "doctor: %s",
			    names_message(name, msg, sizeof msg)));
	}

	memset(&d, 0, sizeof d);
	d.cli = cli;
	d.client = cli_client(cli);
	d.addr = berth_addr(d.client);
	berth_set_timeout(d.client, DOCTOR_TIMEOUT_MS);
	if (cli->json && (d.findings = json_array()) == NULL) {
		cli_warn("doctor: out of memory");
		return (CLI_EXIT_ERROR);
	}
	rc = doctor_run(&d, name);
	if (cli->json) {
		o = json_pack("{s:s, s:b, s:i, s:O}", "addr", d.addr, "ok",
		    rc == CLI_EXIT_OK, "exit", rc, "findings", d.findings);
		if (o != NULL && (text = json_dumps(o, JSON_COMPACT |
		    JSON_PRESERVE_ORDER)) != NULL) {
			cli_print_json(text);
			free(text);
		}
		json_decref(o);
		json_decref(d.findings);
	}
	berth_info_free(d.status);
	berth_leases_free(d.leases);
	return (rc);
}
