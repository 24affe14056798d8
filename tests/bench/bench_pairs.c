/*
 * bench_pairs.c: durable acquire+release pairs per second through
 * libberth, one connection, one request at a time.
 *
 * usage: bench_pairs [-a ADDR] [-n PAIRS] [-k NAMES] [-w WARMUP]
 *
 * Each pair is berth_acquire of a name followed by berth_release with
 * the token it returned, on one berth_client (one keep-alive
 * connection). Every acquire and release is answered only after its
 * commit, so a pair costs two durable commits when nothing else runs.
 * With -k the pairs rotate over that many names (bench-pair-0 ...),
 * else they all use bench-pair-0 (a sticky name: the same port each
 * time). WARMUP pairs (default 50) run first and are not counted.
 *
 * Prints a human summary and one line for scripts:
 *   bench_pairs pairs=N seconds=S pairs_per_s=R p50_ms=A p99_ms=B max_ms=C
 */
#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"
#include "bench.h"

/* One acquire+release of name; exits on any error (a benchmark must not
 * count failures as work). */
static void
pair(berth_client *c, const char *name)
{
	berth_acquire_opts	*o;
	berth_lease		*l;
	berth_error		 e;

	if ((o = berth_acquire_opts_new(name)) == NULL)
		errx(1, "out of memory");
	if (berth_acquire(c, o, &l, &e) != 0)
		errx(1, "acquire %s: %s", name, e.message);
	berth_acquire_opts_free(o);
	if (berth_release(c, name, berth_lease_token(l), &e) != 0)
		errx(1, "release %s: %s", name, e.message);
	berth_lease_free(l);
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_pairs [-a ADDR] [-n PAIRS] [-k NAMES] "
	    "[-w WARMUP]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	berth_client	*c;
	berth_error	 e;
	const char	*addr = NULL;
	uint64_t	*lat, t0, t1, start, total;
	long		 n = 2000, k = 1, warm = 50, i;
	char		 name[64];
	double		 secs;
	int		 ch;

	while ((ch = getopt(argc, argv, "a:n:k:w:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'n':
			n = parse_count(optarg, "pair count", 1, 100000000);
			break;
		case 'k':
			k = parse_count(optarg, "name count", 1, 100000000);
			break;
		case 'w':
			warm = parse_count(optarg, "warmup count", 0, 100000000);
			break;
		default:
			usage();
		}
	}
	if (optind < argc)
		n = parse_count(argv[optind++], "pair count", 1, 100000000);
	if (optind != argc)
		usage();

	if ((c = berth_open(addr, &e)) == NULL)
		errx(1, "%s", e.message);
	if ((lat = calloc((size_t)n, sizeof *lat)) == NULL)
		err(1, "calloc");

	for (i = 0; i < warm; i++) {
		snprintf(name, sizeof name, "bench-pair-%ld", i % k);
		pair(c, name);
	}
	start = now_ns();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof name, "bench-pair-%ld", i % k);
		t0 = now_ns();
		pair(c, name);
		t1 = now_ns();
		lat[i] = t1 - t0;
	}
	total = now_ns() - start;
	secs = (double)total / 1e9;

	qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
	printf("%ld pairs on one connection to %s in %.3f s: %.0f pairs/s\n",
	    n, berth_addr(c), secs, (double)n / secs);
	printf("pair latency: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
	    quantile_ms(lat, (size_t)n, 0.50), quantile_ms(lat, (size_t)n, 0.99),
	    (double)lat[n - 1] / 1e6);
	printf("bench_pairs pairs=%ld seconds=%.6f pairs_per_s=%.1f "
	    "p50_ms=%.4f p99_ms=%.4f max_ms=%.4f\n", n, secs, (double)n / secs,
	    quantile_ms(lat, (size_t)n, 0.50), quantile_ms(lat, (size_t)n, 0.99),
	    (double)lat[n - 1] / 1e6);
	free(lat);
	berth_close(c);
	return (0);
}
