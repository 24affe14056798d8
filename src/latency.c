/*
 * latency.c: latency histograms for /metrics. One set of bucket bounds,
 * 25 us to 10 s, serves every histogram berthd keeps: from a lookup
 * answered from memory up to a commit stuck on the disk.
 */
#include "config.h"

#include <time.h>

#include "core.h"

const struct latency_bound latency_bounds[LATENCY_BUCKETS] = {
	{ 25000ULL, "2.5e-05" }, { 50000ULL, "5e-05" },
	{ 100000ULL, "0.0001" }, { 250000ULL, "0.00025" },
	{ 500000ULL, "0.0005" }, { 1000000ULL, "0.001" },
	{ 2500000ULL, "0.0025" }, { 5000000ULL, "0.005" },
	{ 10000000ULL, "0.01" }, { 25000000ULL, "0.025" },
	{ 50000000ULL, "0.05" }, { 100000000ULL, "0.1" },
	{ 250000000ULL, "0.25" }, { 500000000ULL, "0.5" },
	{ 1000000000ULL, "1" }, { 2500000000ULL, "2.5" },
	{ 5000000000ULL, "5" }, { 10000000000ULL, "10" }
};

/* Monotonic nanoseconds: durations must not jump with the wall clock. */
uint64_t
latency_now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

void
latency_observe(struct latency_hist *h, uint64_t ns)
{
	size_t	i;

	for (i = 0; i < LATENCY_BUCKETS && ns > latency_bounds[i].ns; i++)
		continue;
	h->bucket[i]++;
	h->count++;
	h->sum_ns += ns;
}
