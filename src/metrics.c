/*
 * metrics.c: what GET /metrics reports, in Prometheus text format 0.0.4.
 * Request counts by status are kept here; everything else is read from
 * the broker, pool and waiters at scrape time.
 */
#include "config.h"

#include <stdlib.h>

#include <event2/buffer.h>

#include "berthd.h"

struct metrics {
	uint64_t	by_status[600];
};

struct metrics *
metrics_new(void)
{
	return (calloc(1, sizeof(struct metrics)));
}

void
metrics_free(struct metrics *m)
{
	free(m);
}

void
metrics_count_request(struct metrics *m, int status)
{
	if (m != NULL && status >= 100 && status < 600)
		m->by_status[status]++;
}

static void
metrics_counter(struct evbuffer *out, const char *name, const char *help,
    uint64_t v)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n",
	    name, help, name, name, (unsigned long long)v);
}

static void
metrics_gauge(struct evbuffer *out, const char *name, const char *help,
    double v)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %.15g\n",
	    name, help, name, name, v);
}

void
metrics_write(struct server *srv, struct evbuffer *out)
{
	const struct broker_stats	*st = &srv->broker->stats;
	int				 code;

	metrics_gauge(out, "berth_leases", "Live leases.",
	    (double)broker_live_count(srv->broker));
	metrics_gauge(out, "berth_pool_ports", "Ports in the pool.",
	    (double)pool_size(srv->broker->pool));
	metrics_gauge(out, "berth_pool_free_ports", "Pool ports no lease holds.",
	    (double)pool_free_count(srv->broker->pool));
	metrics_gauge(out, "berth_waiters", "Parked blocking lookups and "
	    "watches.", (double)waiters_count(srv->waiters));
	metrics_gauge(out, "berth_connections", "Open client connections.",
	    (double)srv->connections);
	metrics_gauge(out, "berth_index", "The registry's change index.",
	    (double)srv->broker->index);
	metrics_gauge(out, "berth_db_up", "1 if the last database write "
	    "succeeded.", srv->broker->db_ok ? 1 : 0);
	metrics_gauge(out, "berth_uptime_seconds", "Seconds since berthd "
	    "started.", (double)((clock_now_ms() - srv->started_at) / 1000));
	metrics_counter(out, "berth_acquires_total", "Leases granted.",
	    st->acquired);
	metrics_counter(out, "berth_releases_total", "Leases released by "
	    "their holder.", st->released);
	metrics_counter(out, "berth_expirations_total", "Leases ended by TTL "
	    "expiry.", st->expired);
	metrics_counter(out, "berth_owner_deaths_total", "Leases ended "
	    "because their owner process died.", st->owner_dead);
	metrics_counter(out, "berth_revokes_total", "Leases revoked by an "
	    "admin.", st->revoked);
	metrics_counter(out, "berth_takeovers_total", "Names taken over from "
	    "a dead or expired holder.", st->taken_over);
	metrics_counter(out, "berth_db_commits_total", "Database "
	    "transactions committed.", st->commits);
	metrics_counter(out, "berth_db_commit_failures_total", "Database "
	    "transactions that failed and were rolled back.",
	    st->commit_failures);
	evbuffer_add_printf(out, "# HELP berth_http_requests_total HTTP "
	    "requests answered, by status code.\n"
	    "# TYPE berth_http_requests_total counter\n");
	for (code = 100; code < 600; code++) {
		if (srv->metrics->by_status[code] != 0)
			evbuffer_add_printf(out, "berth_http_requests_total"
			    "{code=\"%d\"} %llu\n", code,
			    (unsigned long long)srv->metrics->by_status[code]);
	}
}
