/*
 * check_pool.c: unit tests for pool.c, the ports berthd hands out: range
 * parsing, taking and releasing, the probe, the reuse delay and the default pool
 * of berthd(8).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "unit.h"

#define DELAY	60000		/* reuse delay, ms */
#define T0	1000000		/* an arbitrary "now", ms */

/* Ports a fake probe refuses, as if another process held them. */
static uint8_t	busy[65536];
static unsigned int probes;

static int
fake_probe(uint16_t port, void *arg)
{
	(void)arg;
	probes++;
	return (!busy[port]);
}

static int
reject_all(uint16_t port, void *arg)
{
	(void)port;
	(void)arg;
	probes++;
	return (0);
}

/* Checked fixture: every test starts with a probe that refuses nothing. */
static void
reset_fakes(void)
{
	memset(busy, 0, sizeof busy);
	probes = 0;
}

static struct pool *
pool_one(uint16_t lo, uint16_t hi, uint64_t delay)
{
	struct port_range	 r = { lo, hi };
	struct pool		*p;

	p = pool_new(&r, 1, delay);
	ck_assert_ptr_nonnull(p);
	return (p);
}

/* Take every free port of p with no probe; -1 must follow. */
static void
take_all(struct pool *p, uint64_t now)
{
	uint16_t	port;

	while (pool_free_count(p) > 0)
		ck_assert_int_eq(pool_take(p, 0, now, NULL, NULL, &port), 0);
	ck_assert_int_eq(pool_take(p, 0, now, NULL, NULL, &port), -1);
}

/*
 * pool_parse_ranges: LO-HI[,LO-HI...], 1 <= LO <= HI <= 65535.
 */
START_TEST(test_parse_single)
{
	struct port_range	r[POOL_MAX_RANGES];
	size_t			n = 99;
	char			err[256];

	ck_assert_int_eq(pool_parse_ranges("50000-50999", r, &n, err,
	    sizeof err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(r[0].lo, 50000);
	ck_assert_uint_eq(r[0].hi, 50999);

	ck_assert_int_eq(pool_parse_ranges("1-1", r, &n, err, sizeof err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(r[0].lo, 1);
	ck_assert_uint_eq(r[0].hi, 1);

	ck_assert_int_eq(pool_parse_ranges("65535-65535", r, &n, err,
	    sizeof err), 0);
	ck_assert_uint_eq(r[0].lo, 65535);
	ck_assert_uint_eq(r[0].hi, 65535);

	ck_assert_int_eq(pool_parse_ranges("1-65535", r, &n, err,
	    sizeof err), 0);
	ck_assert_uint_eq(r[0].lo, 1);
	ck_assert_uint_eq(r[0].hi, 65535);
}
END_TEST

START_TEST(test_parse_multiple)
{
	struct port_range	r[POOL_MAX_RANGES];
	size_t			n = 0;
	char			err[256];

	ck_assert_int_eq(pool_parse_ranges("100-200,300-400,500-500", r, &n,
	    err, sizeof err), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(r[0].lo, 100);
	ck_assert_uint_eq(r[0].hi, 200);
	ck_assert_uint_eq(r[1].lo, 300);
	ck_assert_uint_eq(r[1].hi, 400);
	ck_assert_uint_eq(r[2].lo, 500);
	ck_assert_uint_eq(r[2].hi, 500);
}
END_TEST

/* POOL_MAX_RANGES ranges are fine, one more is refused. */
START_TEST(test_parse_max_ranges)
{
	struct port_range	r[POOL_MAX_RANGES];
	char			buf[2048], err[256];
	size_t			i, n, len = 0;

	for (i = 0; i < POOL_MAX_RANGES; i++)
		len += snprintf(buf + len, sizeof buf - len, "%s%zu-%zu",
		    i ? "," : "", 1000 + 10 * i, 1005 + 10 * i);
	ck_assert_int_eq(pool_parse_ranges(buf, r, &n, err, sizeof err), 0);
	ck_assert_uint_eq(n, POOL_MAX_RANGES);
	ck_assert_uint_eq(r[POOL_MAX_RANGES - 1].hi,
	    1005 + 10 * (POOL_MAX_RANGES - 1));

	snprintf(buf + len, sizeof buf - len, ",5000-5001");
	err[0] = '\0';
	ck_assert_int_eq(pool_parse_ranges(buf, r, &n, err, sizeof err), -1);
	ck_assert_str_ne(err, "");
}
END_TEST

static const char *const bad_ranges[] = {
	"5-3",			/* LO > HI */
	"0-10",			/* port 0 */
	"1-70000",		/* past 65535 */
	"70000-70001",
	"abc",
	"",
	"10-",
	"-10",
	"10",
	"10-20x",		/* trailing junk */
	"10-20 ",
	" 10-20",
	"10-20,abc",
	"10-20,,30-40",
	"10--20",
	"10-+20",
	"+10-20",
	"10-20-30",
	"99999999999999999999999-1",
	"1-99999999999999999999999",
};

START_TEST(test_parse_invalid)
{
	struct port_range	r[POOL_MAX_RANGES];
	size_t			n;
	char			err[256];
	const char		*s = bad_ranges[_i];

	err[0] = '\0';
	ck_assert_msg(pool_parse_ranges(s, r, &n, err, sizeof err) == -1,
	    "range '%s' accepted", s);
	ck_assert_msg(err[0] != '\0', "no message for '%s'", s);
}
END_TEST

/* A trailing comma leaves a range list unfinished: junk too. */
START_TEST(test_parse_trailing_comma)
{
	struct port_range	r[POOL_MAX_RANGES];
	size_t			n;
	char			err[256];

	ck_assert_msg(pool_parse_ranges("10-20,", r, &n, err,
	    sizeof err) == -1, "range '10-20,' accepted");
}
END_TEST

/*
 * pool_new: size and free counts over several ranges, overlaps counted
 * once, pool_contains and pool_ranges.
 */
START_TEST(test_new_counts)
{
	struct port_range	 r[] = { { 100, 109 }, { 200, 204 }, { 300, 300 } };
	const struct port_range	*out;
	struct pool		*p;

	p = pool_new(r, 3, DELAY);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(pool_size(p), 16);
	ck_assert_uint_eq(pool_free_count(p), 16);
	ck_assert(pool_contains(p, 100));
	ck_assert(pool_contains(p, 109));
	ck_assert(pool_contains(p, 202));
	ck_assert(pool_contains(p, 300));
	ck_assert(!pool_contains(p, 99));
	ck_assert(!pool_contains(p, 110));
	ck_assert(!pool_contains(p, 205));
	ck_assert(!pool_contains(p, 301));
	ck_assert(!pool_contains(p, 0));
	ck_assert_uint_eq(pool_ranges(p, &out), 3);
	ck_assert_uint_eq(out[1].lo, 200);
	ck_assert_uint_eq(out[1].hi, 204);
	pool_free(p);
}
END_TEST

START_TEST(test_new_overlap)
{
	struct port_range	 r[] = { { 100, 109 }, { 105, 114 }, { 110, 110 } };
	struct pool		*p;

	p = pool_new(r, 3, DELAY);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(pool_size(p), 15);
	ck_assert_uint_eq(pool_free_count(p), 15);
	pool_free(p);
}
END_TEST

/*
 * pool_take: every port handed out is in the pool, none twice, and the
 * pool runs dry after exactly pool_size() takes.
 */
START_TEST(test_take_unique)
{
	struct port_range	 r[] = { { 100, 109 }, { 200, 204 }, { 300, 300 } };
	static uint8_t		 seen[65536];
	struct pool		*p;
	uint16_t		 port;
	size_t			 i;

	p = pool_new(r, 3, DELAY);
	ck_assert_ptr_nonnull(p);
	for (i = 0; i < 16; i++) {
		ck_assert_int_eq(pool_take(p, pool_name_hash("x"), T0, NULL,
		    NULL, &port), 0);
		ck_assert_msg(pool_contains(p, port), "port %u not in pool",
		    port);
		ck_assert_msg(!seen[port], "port %u handed out twice", port);
		seen[port] = 1;
		ck_assert_uint_eq(pool_free_count(p), 16 - i - 1);
	}
	ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &port), -1);
	ck_assert_uint_eq(pool_size(p), 16);
	pool_free(p);
}
END_TEST

/* Ports the probe refuses are skipped, and stay free for later. */
START_TEST(test_take_probe_skips)
{
	struct pool	*p;
	uint16_t	 port;
	unsigned int	 i;

	p = pool_one(100, 109, DELAY);
	for (i = 100; i <= 109; i += 2)
		busy[i] = 1;
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(pool_take(p, 0, T0, fake_probe, NULL, &port),
		    0);
		ck_assert_msg(port % 2 == 1, "busy port %u handed out", port);
	}
	/* Only busy ports are left: exhausted, but they are not used. */
	ck_assert_int_eq(pool_take(p, 0, T0, fake_probe, NULL, &port), -1);
	ck_assert_uint_eq(pool_free_count(p), 5);
	/* Once the other process lets go, they are handed out. */
	busy[104] = 0;
	ck_assert_int_eq(pool_take(p, 0, T0, fake_probe, NULL, &port), 0);
	ck_assert_uint_eq(port, 104);
	pool_free(p);
}
END_TEST

START_TEST(test_take_all_rejected)
{
	struct pool	*p;
	uint16_t	 port = 0;

	p = pool_one(100, 119, DELAY);
	probes = 0;
	ck_assert_int_eq(pool_take(p, 0, T0, reject_all, NULL, &port), -1);
	ck_assert_uint_gt(probes, 0);
	ck_assert_uint_eq(pool_free_count(p), 20);
	ck_assert_uint_eq(pool_size(p), 20);
	pool_free(p);
}
END_TEST

/*
 * The reuse delay: a port released by name a cools. pool_take hands it
 * out only when nothing else is free, and after the delay it is an
 * ordinary free port again.
 */
START_TEST(test_release_cooling)
{
	struct pool	*p;
	uint16_t	 x, port;
	int		 i;

	p = pool_one(100, 104, DELAY);
	ck_assert_int_eq(pool_take(p, pool_name_hash("a"), T0, NULL, NULL, &x),
	    0);
	ck_assert_uint_eq(pool_free_count(p), 4);
	pool_release(p, x, pool_name_hash("a"), T0);
	ck_assert_uint_eq(pool_free_count(p), 5);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pool_take(p, pool_name_hash("b"), T0 + 1,
		    NULL, NULL, &port), 0);
		ck_assert_msg(port != x, "cooling port %u handed to another "
		    "name while others are free", x);
	}
	/* Nothing else is free: the cooling port is better than nothing. */
	ck_assert_int_eq(pool_take(p, pool_name_hash("b"), T0 + 1, NULL, NULL,
	    &port), 0);
	ck_assert_uint_eq(port, x);
	ck_assert_int_eq(pool_take(p, 0, T0 + 1, NULL, NULL, &port), -1);
	pool_free(p);
}
END_TEST

/* After the delay, a released port is free for any name. */
START_TEST(test_release_delay_passes)
{
	struct pool	*p;
	uint16_t	 x, port;

	p = pool_one(100, 104, DELAY);
	ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &x), 0);
	pool_release(p, x, pool_name_hash("a"), T0);
	/* Only x passes the probe. Before the delay: the others win. */
	memset(busy + 100, 1, 5);
	busy[x] = 0;
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("b"),
	    T0 + DELAY - 1, 0), -1);
	/* Once it has passed, x is free for anyone. */
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("b"), T0 + DELAY,
	    0), 0);
	pool_release(p, x, pool_name_hash("b"), T0 + DELAY);
	ck_assert_int_eq(pool_take(p, pool_name_hash("c"), T0 + 2 * DELAY,
	    fake_probe, NULL, &port), 0);
	ck_assert_uint_eq(port, x);
	pool_free(p);
}
END_TEST

/*
 * Other free ports that fail the probe are not free in the sense of
 * docs/api.md, POST /v1/services: a cooling port that binds must be handed out rather than
 * reporting the pool exhausted.
 */
START_TEST(test_take_cooling_when_free_busy)
{
	struct pool	*p;
	uint16_t	 x, port = 0;

	p = pool_one(100, 104, DELAY);
	ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &x), 0);
	pool_release(p, x, pool_name_hash("a"), T0);
	memset(busy + 100, 1, 5);
	busy[x] = 0;
	ck_assert_msg(pool_take(p, pool_name_hash("b"), T0 + 1, fake_probe,
	    NULL, &port) == 0, "pool exhausted though cooling port %u binds "
	    "and no other free port does", x);
	ck_assert_uint_eq(port, x);
	pool_free(p);
}
END_TEST

/* With no reuse delay a released port is at once free for anyone. */
START_TEST(test_release_no_delay)
{
	struct pool	*p;
	uint16_t	 x;

	p = pool_one(100, 101, 0);
	ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &x), 0);
	pool_release(p, x, pool_name_hash("a"), T0);
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("b"), T0, 0), 0);
	pool_free(p);
}
END_TEST

/* Releasing a port outside the pool changes nothing. */
START_TEST(test_release_outside)
{
	struct pool	*p;

	p = pool_one(100, 104, DELAY);
	pool_release(p, 5000, pool_name_hash("a"), T0);
	ck_assert(!pool_contains(p, 5000));
	ck_assert_uint_eq(pool_size(p), 5);
	ck_assert_uint_eq(pool_free_count(p), 5);
	pool_free(p);
}
END_TEST

/*
 * pool_take_port: sticky (explicit = 0) and named (explicit = 1) ports.
 */
START_TEST(test_take_port_sticky)
{
	struct pool	*p;
	uint16_t	 x;

	p = pool_one(100, 104, DELAY);
	ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &x), 0);
	pool_release(p, x, pool_name_hash("a"), T0);
	/* Same name while cooling: allowed. */
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("a"), T0 + 1, 0),
	    0);
	ck_assert_uint_eq(pool_free_count(p), 4);
	/* Held now: nobody gets it, not even explicitly. */
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("a"), T0 + 1, 0),
	    -1);
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("b"), T0 + 1, 1),
	    -1);
	pool_release(p, x, pool_name_hash("a"), T0 + 2);
	/* Another name while cooling and others are free: refused. */
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("b"), T0 + 3, 0),
	    -1);
	ck_assert_uint_eq(pool_free_count(p), 5);
	pool_free(p);
}
END_TEST

START_TEST(test_take_port_sticky_last_free)
{
	struct pool	*p;
	uint16_t	 x, port;
	int		 i;

	p = pool_one(100, 104, DELAY);
	ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &x), 0);
	pool_release(p, x, pool_name_hash("a"), T0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &port), 0);
	/* Nothing else is free: another name may have it. */
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("b"), T0 + 1, 0),
	    0);
	ck_assert_uint_eq(pool_free_count(p), 0);
	pool_free(p);
}
END_TEST

START_TEST(test_take_port_explicit)
{
	struct pool	*p;
	uint16_t	 x;

	p = pool_one(100, 104, DELAY);
	/* A sticky port outside the pool is refused, a named one is not. */
	ck_assert_int_eq(pool_take_port(p, 5000, pool_name_hash("a"), T0, 0),
	    -1);
	ck_assert_int_eq(pool_take_port(p, 5000, pool_name_hash("a"), T0, 1),
	    0);
	ck_assert_uint_eq(pool_free_count(p), 5);
	/* A named pool port, even one cooling for another name. */
	ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &x), 0);
	pool_release(p, x, pool_name_hash("a"), T0);
	ck_assert_int_eq(pool_take_port(p, x, pool_name_hash("b"), T0 + 1, 1),
	    0);
	ck_assert_uint_eq(pool_free_count(p), 4);
	/* Port 0 is never a port. */
	ck_assert_int_eq(pool_take_port(p, 0, 0, T0, 1), -1);
	pool_free(p);
}
END_TEST

/* A free port taken by number is not handed out again by pool_take. */
START_TEST(test_take_port_then_take)
{
	struct pool	*p;
	uint16_t	 port;
	int		 i;

	p = pool_one(100, 104, DELAY);
	ck_assert_int_eq(pool_take_port(p, 102, 0, T0, 0), 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &port), 0);
		ck_assert_uint_ne(port, 102);
	}
	ck_assert_int_eq(pool_take(p, 0, T0, NULL, NULL, &port), -1);
	pool_free(p);
}
END_TEST

/* pool_reset puts everything back. */
START_TEST(test_reset)
{
	struct pool	*p;

	p = pool_one(100, 104, DELAY);
	take_all(p, T0);
	pool_release(p, 100, pool_name_hash("a"), T0);
	pool_reset(p);
	ck_assert_uint_eq(pool_free_count(p), 5);
	ck_assert_int_eq(pool_take_port(p, 100, pool_name_hash("b"), T0, 0),
	    0);
	pool_free(p);
}
END_TEST

/*
 * pool_default_ranges: 49152-65535 less our own ports, less the kernel's
 * ephemeral range and reserved ports unless it had to fall back.
 *
 * The expected pools are worked out by hand for ephemeral ranges and
 * reserved ports that the test sets itself, in a network namespace of its
 * own (those sysctls are per namespace), so nothing here reads /proc the
 * way pool.c does. The namespace is made in a child process: even with
 * CK_FORK=no it must not outlive the test.
 */
struct netns_result {
	int			err;	/* 0 ok, 1 no namespace, 2 sysctl */
	char			why[160];
	int			fallback;
	size_t			n;
	struct port_range	r[POOL_MAX_RANGES];
};

static int
write_file(const char *path, const char *text)
{
	ssize_t	n;
	int	fd;

	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return (-1);
	n = write(fd, text, strlen(text));
	close(fd);
	return (n == (ssize_t)strlen(text) ? 0 : -1);
}

/* A network namespace of our own: as root, or in a user namespace. */
static int
enter_netns(char *why, size_t len)
{
	char	map[64];
	uid_t	uid = getuid();
	gid_t	gid = getgid();

	if (unshare(CLONE_NEWNET) == 0)
		return (0);
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == -1) {
		snprintf(why, len, "unshare: %s", strerror(errno));
		return (-1);
	}
	snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
	if (write_file("/proc/self/uid_map", map) == -1) {
		snprintf(why, len, "uid_map: %s", strerror(errno));
		return (-1);
	}
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
	write_file("/proc/self/gid_map", map);
	return (0);
}

/*
 * pool_default_ranges(own) in a fresh network namespace whose ephemeral
 * range is set to ephemeral ("LO HI") and reserved ports to reserved (NULL:
 * the new namespace's default, none).
 */
static void
default_ranges_with(const char *ephemeral, const char *reserved,
    const uint16_t *own, size_t nown, struct netns_result *res)
{
	struct netns_result	 r;
	ssize_t			 n;
	size_t			 got = 0;
	pid_t			 pid;
	int			 fds[2], status;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		memset(&r, 0, sizeof r);
		if (enter_netns(r.why, sizeof r.why) == -1)
			r.err = 1;
		else if (write_file("/proc/sys/net/ipv4/ip_local_port_range",
		    ephemeral) == -1) {
			r.err = 2;
			snprintf(r.why, sizeof r.why, "ip_local_port_range "
			    "'%s': %s", ephemeral, strerror(errno));
		} else if (reserved != NULL && write_file(
		    "/proc/sys/net/ipv4/ip_local_reserved_ports",
		    reserved) == -1) {
			r.err = 2;
			snprintf(r.why, sizeof r.why, "ip_local_reserved_ports "
			    "'%s': %s", reserved, strerror(errno));
		} else
			r.n = pool_default_ranges(r.r, own, nown, &r.fallback);
		n = write(fds[1], &r, sizeof r);
		_exit(n == (ssize_t)sizeof r ? 0 : 1);
	}
	close(fds[1]);
	while (got < sizeof *res) {
		n = read(fds[0], (char *)res + got, sizeof *res - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(got == sizeof *res && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "the namespace child failed");
}

/* res holds exactly want[0..nwant) and fallback; 0 if no namespace. */
static int
check_ranges(const struct netns_result *res, const struct port_range *want,
    size_t nwant, int fallback)
{
	size_t	i;

	if (res->err == 1) {
		/* No namespace here (no root, user namespaces off). */
		fprintf(stderr, "check_pool: not run, no network namespace: "
		    "%s\n", res->why);
		return (0);
	}
	ck_assert_msg(res->err == 0, "%s", res->why);
	ck_assert_int_eq(res->fallback, fallback);
	ck_assert_uint_eq(res->n, nwant);
	for (i = 0; i < nwant; i++) {
		ck_assert_msg(res->r[i].lo == want[i].lo &&
		    res->r[i].hi == want[i].hi, "range %zu: %u-%u, want %u-%u",
		    i, res->r[i].lo, res->r[i].hi, want[i].lo, want[i].hi);
	}
	return (1);
}

/* Ephemeral 50000-59999, some reserved ports, three own ports. */
START_TEST(test_default_ranges_known)
{
	const uint16_t			own[] = { 62893, 50000, 49152 };
	static const struct port_range	want[] = {
		{ 49153, 49999 },	/* 49152 is our own */
		{ 60000, 60999 },	/* 50000-59999 ephemeral */
		{ 61010, 61999 },	/* 61000-61009 reserved */
		{ 62001, 62892 },	/* 62000 reserved */
		{ 62894, 65534 },	/* 62893 ours, 65535 reserved */
	};
	struct netns_result		res;

	default_ranges_with("50000 59999", "61000-61009,62000,65535", own, 3,
	    &res);
	check_ranges(&res, want, 5, 0);
}
END_TEST

/* 256 ports left outside the ephemeral range are enough: no fallback. */
START_TEST(test_default_ranges_256_left)
{
	static const struct port_range	want[] = { { 65280, 65535 } };
	struct netns_result		res;

	default_ranges_with("49152 65279", NULL, NULL, 0, &res);
	check_ranges(&res, want, 1, 0);
}
END_TEST

/* 255 are not: the whole dynamic range less our own ports. */
START_TEST(test_default_ranges_255_left_falls_back)
{
	const uint16_t			own[] = { 62893 };
	static const struct port_range	want[] = {
		{ 49152, 62892 }, { 62894, 65535 }
	};
	struct netns_result		res;

	default_ranges_with("49152 65280", NULL, own, 1, &res);
	check_ranges(&res, want, 2, 1);
}
END_TEST

/*
 * On this host, whatever its settings: sorted ranges within 49152-65535,
 * none of our own ports, at least 256 ports unless it fell back (then
 * exactly the dynamic range less our own), and none of the ports the
 * kernel hands out for bind(port 0), which come from its ephemeral range.
 */
START_TEST(test_default_ranges)
{
	struct port_range	r[POOL_MAX_RANGES];
	struct sockaddr_in	sin;
	static uint8_t		in[65536];
	const uint16_t		own[] = { 62893, 61234, 50000, 1234 };
	socklen_t		len;
	size_t			i, n, count = 0;
	unsigned int		port;
	int			fallback = -1, fds[32];

	n = pool_default_ranges(r, own, 4, &fallback);
	ck_assert(fallback == 0 || fallback == 1);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, POOL_MAX_RANGES);
	for (i = 0; i < n; i++) {
		ck_assert_uint_ge(r[i].lo, 49152);
		ck_assert_uint_le(r[i].lo, r[i].hi);
		if (i > 0)
			ck_assert_uint_gt(r[i].lo, r[i - 1].hi + 1);
		for (port = r[i].lo; port <= r[i].hi; port++) {
			in[port] = 1;
			count++;
		}
	}
	for (i = 0; i < 4; i++)
		ck_assert_msg(!in[own[i]], "own port %u in the pool", own[i]);
	if (fallback) {
		ck_assert_uint_eq(count, 65536 - 49152 - 3);
		return;
	}
	ck_assert_uint_ge(count, 256);
	/* Held open together, so 32 different ephemeral ports. */
	for (i = 0; i < 32; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_ge(fds[i], 0);
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(bind(fds[i], (struct sockaddr *)&sin,
		    sizeof sin), 0);
		len = sizeof sin;
		ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *)&sin,
		    &len), 0);
		port = ntohs(sin.sin_port);
		ck_assert_msg(!in[port], "ephemeral port %u in the pool", port);
	}
	for (i = 0; i < 32; i++)
		close(fds[i]);
}
END_TEST

/* With no own ports the result is still sane. */
START_TEST(test_default_ranges_no_own)
{
	struct port_range	r[POOL_MAX_RANGES];
	struct pool		*p;
	int			 fallback;
	size_t			 n;

	n = pool_default_ranges(r, NULL, 0, &fallback);
	ck_assert_uint_gt(n, 0);
	p = pool_new(r, n, DELAY);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(pool_size(p), 256);
	if (fallback)
		ck_assert_uint_eq(pool_size(p), 65536 - 49152);
	pool_free(p);
}
END_TEST

/* FNV-1a, 32 bits: the published test vectors, then distinctness. */
START_TEST(test_name_hash)
{
	ck_assert_uint_eq(pool_name_hash(""), 0x811c9dc5u);
	ck_assert_uint_eq(pool_name_hash("a"), 0xe40c292cu);
	ck_assert_uint_eq(pool_name_hash("foobar"), 0xbf9cf968u);
	ck_assert_uint_eq(pool_name_hash("a"), pool_name_hash("a"));
	ck_assert_uint_ne(pool_name_hash("a"), pool_name_hash("b"));
	ck_assert_uint_ne(pool_name_hash("api"), pool_name_hash("web"));
}
END_TEST

static Suite *
pool_suite(void)
{
	Suite	*s = suite_create("pool");
	TCase	*tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_single);
	tcase_add_test(tc, test_parse_multiple);
	tcase_add_test(tc, test_parse_max_ranges);
	tcase_add_loop_test(tc, test_parse_invalid, 0,
	    sizeof bad_ranges / sizeof bad_ranges[0]);
	tcase_add_test(tc, test_parse_trailing_comma);
	suite_add_tcase(s, tc);

	tc = tcase_create("take");
	tcase_add_checked_fixture(tc, reset_fakes, NULL);
	tcase_add_test(tc, test_new_counts);
	tcase_add_test(tc, test_new_overlap);
	tcase_add_test(tc, test_take_unique);
	tcase_add_test(tc, test_take_probe_skips);
	tcase_add_test(tc, test_take_all_rejected);
	tcase_add_test(tc, test_take_port_then_take);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_name_hash);
	suite_add_tcase(s, tc);

	tc = tcase_create("reuse");
	tcase_add_checked_fixture(tc, reset_fakes, NULL);
	tcase_add_test(tc, test_release_cooling);
	tcase_add_test(tc, test_release_delay_passes);
	tcase_add_test(tc, test_take_cooling_when_free_busy);
	tcase_add_test(tc, test_release_no_delay);
	tcase_add_test(tc, test_release_outside);
	tcase_add_test(tc, test_take_port_sticky);
	tcase_add_test(tc, test_take_port_sticky_last_free);
	tcase_add_test(tc, test_take_port_explicit);
	suite_add_tcase(s, tc);

	tc = tcase_create("default");
	tcase_add_test(tc, test_default_ranges_known);
	tcase_add_test(tc, test_default_ranges_256_left);
	tcase_add_test(tc, test_default_ranges_255_left_falls_back);
	tcase_add_test(tc, test_default_ranges);
	tcase_add_test(tc, test_default_ranges_no_own);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(pool_suite()));
}
