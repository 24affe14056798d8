/*
 * check_pool.c: unit tests for pool.c, the ports berthd hands out: range
 * parsing, taking and releasing, the probe, the reuse delay of SPEC §3
 * and the default pool of SPEC §2.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berthd.h"

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
 * SPEC §3 (b): a cooling port that binds must be handed out rather than
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
 */
/* Mark in map the ports the kernel keeps for itself, as /proc says. */
static void
kernel_ports(uint8_t *map)
{
	FILE		*f;
	char		 buf[4096], *s, *end;
	unsigned long	 lo, hi, port;

	if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) !=
	    NULL) {
		if (fscanf(f, "%lu %lu", &lo, &hi) == 2)
			for (port = lo; port <= hi && port <= 65535; port++)
				map[port] = 1;
		fclose(f);
	}
	if ((f = fopen("/proc/sys/net/ipv4/ip_local_reserved_ports", "r")) ==
	    NULL)
		return;
	if (fgets(buf, sizeof buf, f) != NULL) {
		for (s = buf; *s != '\0' && *s != '\n'; s = end) {
			lo = strtoul(s, &end, 10);
			if (end == s)
				break;
			hi = lo;
			if (*end == '-')
				hi = strtoul(end + 1, &end, 10);
			for (port = lo; port <= hi && port <= 65535; port++)
				map[port] = 1;
			if (*end == ',')
				end++;
		}
	}
	fclose(f);
}

START_TEST(test_default_ranges)
{
	struct port_range	r[POOL_MAX_RANGES];
	static uint8_t		in[65536], kernel[65536];
	const uint16_t		own[] = { 62893, 61234, 50000, 1234 };
	size_t			i, n, count = 0;
	unsigned int		port;
	int			fallback = -1, want;

	kernel_ports(kernel);
	n = pool_default_ranges(r, own, 4, &fallback);
	ck_assert(fallback == 0 || fallback == 1);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, POOL_MAX_RANGES);
	for (i = 0; i < n; i++) {
		ck_assert_uint_ge(r[i].lo, 49152);
		ck_assert_uint_le(r[i].lo, r[i].hi);
		if (i > 0)
			ck_assert_uint_gt(r[i].lo, r[i - 1].hi);
		for (port = r[i].lo; port <= r[i].hi; port++) {
			in[port] = 1;
			count++;
		}
	}
	for (i = 0; i < 4; i++)
		ck_assert_msg(!in[own[i]], "own port %u in the pool", own[i]);
	if (!fallback)
		ck_assert_uint_ge(count, 256);
	/* Every other dynamic port is in, every excluded one out. */
	for (port = 49152; port <= 65535; port++) {
		want = port != 62893 && port != 61234 && port != 50000;
		if (!fallback && kernel[port])
			want = 0;
		ck_assert_msg(in[port] == want, "port %u: in pool %d, want %d "
		    "(fallback %d)", port, in[port], want, fallback);
	}
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

START_TEST(test_name_hash)
{
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
	tcase_add_test(tc, test_default_ranges);
	tcase_add_test(tc, test_default_ranges_no_own);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(pool_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed ? EXIT_FAILURE : EXIT_SUCCESS);
}
