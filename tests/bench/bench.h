/*
 * bench.h: what the C bench clients share: a monotonic clock in ns,
 * sorting latencies, nearest-rank quantiles, and count arguments.
 */
#ifndef BENCH_H
#define BENCH_H

#include <err.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

static inline int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/* The q-quantile (0..1) of a sorted array of ns, nearest rank, in ms. */
static inline double
quantile_ms(const uint64_t *v, size_t n, double q)
{
	size_t	i;

	if (n == 0)
		return (0);
	i = (size_t)(q * (double)n + 0.999999);
	if (i == 0)
		i = 1;
	if (i > n)
		i = n;
	return ((double)v[i - 1] / 1e6);
}

static inline long
parse_count(const char *s, const char *what, long min, long max)
{
	char	*end;
	long	 v;

	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < min || v > max)
		errx(2, "bad %s: %s", what, s);
	return (v);
}

#endif /* BENCH_H */
