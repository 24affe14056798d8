/*
 * bench_concurrent.c: acquire+release pairs from many connections at
 * once, to show what group commit does under concurrency.
 *
 * usage: bench_concurrent [-a ADDR] [-c THREADS] [-t SECONDS] [-k NAMES]
 *
 * THREADS (default 64) threads each open their own berth_client (one
 * keep-alive connection each) and, for SECONDS (default 5), acquire and
 * release names of their own (bench-c<thread>-<i>, i < NAMES, default
 * 1), one pair after another. All threads connect and run one warm-up
 * pair before the clock starts. The latency of every counted pair is
 * kept, and the arrays are merged for the percentiles.
 *
 * Prints a human summary and one line for scripts:
 *   bench_concurrent threads=C seconds=S pairs=N pairs_per_s=R
 *       p50_ms=A p99_ms=B max_ms=M
 */
#include <err.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"
#include "bench.h"

struct worker {
	pthread_t	 thread;
	int		 id;
	uint64_t	*lat;		/* ns per pair */
	size_t		 n;
	size_t		 cap;
	int		 failed;
	char		 error[400];
};

static const char	*addr;
static long		 nnames = 1;
static uint64_t		 deadline_ns;	/* set before the start barrier */
static pthread_barrier_t warm_barrier;	/* all connected and warm */
static pthread_barrier_t start_barrier;	/* deadline_ns is set */

/* One acquire+release; 0 or -1 with w->error set. */
static int
pair(struct worker *w, berth_client *c, const char *name)
{
	berth_acquire_opts	*o;
	berth_lease		*l;
	berth_error		 e;
	int			 rc;

	if ((o = berth_acquire_opts_new(name)) == NULL) {
		snprintf(w->error, sizeof w->error, "out of memory");
		return (-1);
	}
	rc = berth_acquire(c, o, &l, &e);
	berth_acquire_opts_free(o);
	if (rc != 0) {
		snprintf(w->error, sizeof w->error, "acquire %s: %s", name,
		    e.message);
		return (-1);
	}
	if (berth_release(c, name, berth_lease_token(l), &e) != 0) {
		snprintf(w->error, sizeof w->error, "release %s: %s", name,
		    e.message);
		berth_lease_free(l);
		return (-1);
	}
	berth_lease_free(l);
	return (0);
}

/*
 * A worker connects and warms up before the barrier, so the counted
 * time holds only pairs; after the barrier it runs pairs until the
 * deadline. A failure stops the worker and is reported by main.
 */
static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	berth_client	*c;
	berth_error	 e;
	uint64_t	 t0, t1, *nl;
	char		 name[64];
	long		 i = 0;

	if ((c = berth_open(addr, &e)) == NULL) {
		snprintf(w->error, sizeof w->error, "%s", e.message);
		w->failed = 1;
	} else {
		snprintf(name, sizeof name, "bench-c%d-0", w->id);
		if (pair(w, c, name) == -1)
			w->failed = 1;
	}
	pthread_barrier_wait(&warm_barrier);
	pthread_barrier_wait(&start_barrier);
	if (w->failed) {
		if (c != NULL)
			berth_close(c);
		return (NULL);
	}
	for (;;) {
		snprintf(name, sizeof name, "bench-c%d-%ld", w->id,
		    i++ % nnames);
		t0 = now_ns();
		if (t0 >= deadline_ns)
			break;
		if (pair(w, c, name) == -1) {
			w->failed = 1;
			break;
		}
		t1 = now_ns();
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4096;
			if ((nl = realloc(w->lat, w->cap * sizeof *nl)) == NULL) {
				snprintf(w->error, sizeof w->error, "no memory");
				w->failed = 1;
				break;
			}
			w->lat = nl;
		}
		w->lat[w->n++] = t1 - t0;
	}
	berth_close(c);
	return (NULL);
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_concurrent [-a ADDR] [-c THREADS] "
	    "[-t SECONDS] [-k NAMES]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct worker	*ws;
	uint64_t	*all, start, end;
	size_t		 total = 0, off = 0;
	long		 nthreads = 64, secs = 5, i;
	double		 elapsed;
	int		 ch, failed = 0;

	while ((ch = getopt(argc, argv, "a:c:t:k:")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'c':
			nthreads = parse_count(optarg, "thread count", 1, 4096);
			break;
		case 't':
			secs = parse_count(optarg, "seconds", 1, 3600);
			break;
		case 'k':
			nnames = parse_count(optarg, "name count", 1, 1000000);
			break;
		default:
			usage();
		}
	}
	if (optind < argc)
		nthreads = parse_count(argv[optind++], "thread count", 1, 4096);
	if (optind != argc)
		usage();

	if ((ws = calloc((size_t)nthreads, sizeof *ws)) == NULL)
		err(1, "calloc");
	if (pthread_barrier_init(&warm_barrier, NULL,
	    (unsigned)nthreads + 1) != 0 ||
	    pthread_barrier_init(&start_barrier, NULL,
	    (unsigned)nthreads + 1) != 0)
		errx(1, "pthread_barrier_init");
	for (i = 0; i < nthreads; i++) {
		ws[i].id = (int)i;
		if (pthread_create(&ws[i].thread, NULL, worker_main,
		    &ws[i]) != 0)
			errx(1, "pthread_create");
	}
	/*
	 * Every worker is connected and warm when main passes the first
	 * barrier; the workers read the deadline after the second.
	 */
	pthread_barrier_wait(&warm_barrier);
	deadline_ns = now_ns() + (uint64_t)secs * 1000000000ULL;
	pthread_barrier_wait(&start_barrier);
	start = now_ns();
	for (i = 0; i < nthreads; i++)
		pthread_join(ws[i].thread, NULL);
	end = now_ns();
	elapsed = (double)(end - start) / 1e9;

	for (i = 0; i < nthreads; i++) {
		if (ws[i].failed) {
			warnx("thread %ld: %s", i, ws[i].error);
			failed = 1;
		}
		total += ws[i].n;
	}
	if (failed)
		errx(1, "some threads failed; no figures");
	if ((all = malloc((total ? total : 1) * sizeof *all)) == NULL)
		err(1, "malloc");
	for (i = 0; i < nthreads; i++) {
		if (ws[i].n > 0)
			memcpy(all + off, ws[i].lat, ws[i].n * sizeof *all);
		off += ws[i].n;
		free(ws[i].lat);
	}
	qsort(all, total, sizeof *all, cmp_u64);

	printf("%ld threads, one connection each, %.2f s: %zu pairs, "
	    "%.0f pairs/s\n", nthreads, elapsed, total,
	    (double)total / elapsed);
	printf("pair latency: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
	    quantile_ms(all, total, 0.50), quantile_ms(all, total, 0.99),
	    total ? (double)all[total - 1] / 1e6 : 0.0);
	printf("bench_concurrent threads=%ld seconds=%.6f pairs=%zu "
	    "pairs_per_s=%.1f p50_ms=%.4f p99_ms=%.4f max_ms=%.4f\n",
	    nthreads, elapsed, total, (double)total / elapsed,
	    quantile_ms(all, total, 0.50), quantile_ms(all, total, 0.99),
	    total ? (double)all[total - 1] / 1e6 : 0.0);
	free(all);
	free(ws);
	pthread_barrier_destroy(&warm_barrier);
	pthread_barrier_destroy(&start_barrier);
	return (0);
}
