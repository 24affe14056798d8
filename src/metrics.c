/*
 * metrics.c: what GET /metrics reports, in Prometheus text format 0.0.4
 * (docs/monitoring.md lists every series). Requests are counted here by
 * route, method and status, and timed from dispatch to answer; lease
 * events and commits are counted by the broker (struct broker_stats);
 * gauges are read from the broker, pool and waiters at scrape time.
 *
 * Counting costs a few string compares, two clock reads and array
 * increments per request: no allocation, no locks (one thread).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "berthd.h"

/* Routes, a fixed set: a raw path would make one series per name. */
enum metrics_route {
	ROUTE_INDEX,
	ROUTE_METRICS,
	ROUTE_HEALTH,
	ROUTE_STATUS,
	ROUTE_SERVICES,
	ROUTE_SERVICE,
	ROUTE_RENEW,
	ROUTE_OTHER,
	ROUTE_COUNT
};
static const char *const metrics_route_names[ROUTE_COUNT] = {
	"/", "/metrics", "/v1/health", "/v1/status", "/v1/services",
	"/v1/services/{name}", "/v1/services/{name}/renew", "other"
};

enum metrics_method {
	METHOD_GET,
	METHOD_HEAD,
	METHOD_POST,
	METHOD_DELETE,
	METHOD_OPTIONS,
	METHOD_OTHER,
	METHOD_COUNT
};
static const char *const metrics_method_names[METHOD_COUNT] = {
	"GET", "HEAD", "POST", "DELETE", "OPTIONS", "other"
};

#define STATUS_MIN	100
#define STATUS_COUNT	500		/* 100 to 599 */

struct metrics {
	uint64_t	 requests[ROUTE_COUNT][METHOD_COUNT][STATUS_COUNT];
	struct latency_hist latency[ROUTE_COUNT];
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

/* Which route a path is, as req_dispatch and api_services route it. */
static enum metrics_route
metrics_route(const char *path)
{
	const char	*slash;

	if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0)
		return (ROUTE_INDEX);
	if (strncmp(path, "/v1/services", 12) == 0) {
		path += 12;
		if (path[0] == '\0' || strcmp(path, "/") == 0)
			return (ROUTE_SERVICES);
		if (path[0] != '/')
			return (ROUTE_OTHER);
		if ((slash = strchr(path + 1, '/')) == NULL)
			return (ROUTE_SERVICE);
		return (strcmp(slash, "/renew") == 0 ? ROUTE_RENEW :
		    ROUTE_OTHER);
	}
	if (strcmp(path, "/metrics") == 0)
		return (ROUTE_METRICS);
	if (strcmp(path, "/v1/health") == 0)
		return (ROUTE_HEALTH);
	if (strcmp(path, "/v1/status") == 0)
		return (ROUTE_STATUS);
	return (ROUTE_OTHER);
}

static enum metrics_method
metrics_method(int method)
{
	switch (method) {
	case EVHTTP_REQ_GET:
		return (METHOD_GET);
	case EVHTTP_REQ_HEAD:
		return (METHOD_HEAD);
	case EVHTTP_REQ_POST:
		return (METHOD_POST);
	case EVHTTP_REQ_DELETE:
		return (METHOD_DELETE);
	case EVHTTP_REQ_OPTIONS:
		return (METHOD_OPTIONS);
	default:
		return (METHOD_OTHER);
	}
}

/* Count req's answer; time it from its dispatch unless it was parked. */
void
metrics_count_request(struct metrics *m, const struct api_req *req,
    int status)
{
	enum metrics_route	route = metrics_route(req->path);

	if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_COUNT)
		m->requests[route][metrics_method(req->method)]
		    [status - STATUS_MIN]++;
	if (req->began != 0)
		latency_observe(&m->latency[route], latency_now_ns() -
		    req->began);
}

static void
metrics_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static void
metrics_counter(struct evbuffer *out, const char *name, const char *help,
    uint64_t v)
{
	metrics_head(out, name, "counter", help);
	evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void
metrics_gauge(struct evbuffer *out, const char *name, const char *help,
    double v)
{
	metrics_head(out, name, "gauge", help);
	evbuffer_add_printf(out, "%s %.15g\n", name, v);
}

/* A label value as the text format wants it: \, " and newline escaped. */
static void
metrics_label_value(struct evbuffer *out, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(out, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

/*
 * The samples of one histogram: cumulative buckets up to +Inf, the sum
 * in seconds and the count. labels is "" or 'route="..."', escaped.
 */
static void
metrics_histogram(struct evbuffer *out, const char *name, const char *labels,
    const struct latency_hist *h)
{
	const char	*sep = labels[0] != '\0' ? "," : "";
	const char	*open = labels[0] != '\0' ? "{" : "";
	const char	*close = labels[0] != '\0' ? "}" : "";
	uint64_t	 cum = 0;
	size_t		 i;

	for (i = 0; i < LATENCY_BUCKETS; i++) {
		cum += h->bucket[i];
		evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n",
		    name, labels, sep, latency_bounds[i].le,
		    (unsigned long long)cum);
	}
	cum += h->bucket[LATENCY_BUCKETS];
	evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name,
	    labels, sep, (unsigned long long)cum);
	evbuffer_add_printf(out, "%s_sum%s%s%s %.9f\n", name, open, labels,
	    close, (double)h->sum_ns / 1e9);
	evbuffer_add_printf(out, "%s_count%s%s%s %llu\n", name, open, labels,
	    close, (unsigned long long)h->count);
}

/* berth_requests_total{route,method,code} and the legacy by-code total. */
static void
metrics_write_requests(struct metrics *m, struct evbuffer *out)
{
	uint64_t	 by_code[STATUS_COUNT];
	size_t		 r, k, c;
	char		 labels[96];

	memset(by_code, 0, sizeof by_code);
	metrics_head(out, "berth_requests_total", "counter", "API requests "
	    "answered, by route, method and HTTP status code.");
	for (r = 0; r < ROUTE_COUNT; r++) {
		for (k = 0; k < METHOD_COUNT; k++) {
			for (c = 0; c < STATUS_COUNT; c++) {
				if (m->requests[r][k][c] == 0)
					continue;
				by_code[c] += m->requests[r][k][c];
				evbuffer_add_printf(out, "berth_requests_total"
				    "{route=\"%s\",method=\"%s\",code=\"%zu\"} "
				    "%llu\n", metrics_route_names[r],
				    metrics_method_names[k], c + STATUS_MIN,
				    (unsigned long long)m->requests[r][k][c]);
			}
		}
	}
	metrics_head(out, "berth_http_requests_total", "counter", "API "
	    "requests answered, by HTTP status code (berth_requests_total "
	    "summed over route and method).");
	for (c = 0; c < STATUS_COUNT; c++) {
		if (by_code[c] != 0)
			evbuffer_add_printf(out, "berth_http_requests_total"
			    "{code=\"%zu\"} %llu\n", c + STATUS_MIN,
			    (unsigned long long)by_code[c]);
	}
	metrics_head(out, "berth_request_duration_seconds", "histogram",
	    "Time from dispatch to answer of API requests, by route; parked "
	    "blocking queries are not timed.");
	for (r = 0; r < ROUTE_COUNT; r++) {
		if (m->latency[r].count == 0)
			continue;
		snprintf(labels, sizeof labels, "route=\"%s\"",
		    metrics_route_names[r]);
		metrics_histogram(out, "berth_request_duration_seconds",
		    labels, &m->latency[r]);
	}
}

void
metrics_write(struct server *srv, struct evbuffer *out)
{
	const struct broker_stats	*st = &srv->broker->stats;

	metrics_head(out, "berth_build_info", "gauge", "Always 1; the "
	    "version of berthd in a label.");
	evbuffer_add_printf(out, "berth_build_info{version=\"");
	metrics_label_value(out, PACKAGE_VERSION);
	evbuffer_add_printf(out, "\"} 1\n");
	metrics_gauge(out, "process_start_time_seconds", "Start time of "
	    "berthd since the Unix epoch, in seconds.",
	    (double)srv->started_at / 1000);
	metrics_gauge(out, "berth_uptime_seconds", "Seconds since berthd "
	    "started.", (double)((clock_now_ms() - srv->started_at) / 1000));
	metrics_gauge(out, "berth_leases", "Live leases.",
	    (double)broker_live_count(srv->broker));
	metrics_gauge(out, "berth_pool_ports", "Ports in the pool.",
	    (double)pool_size(srv->broker->pool));
	metrics_gauge(out, "berth_pool_free_ports", "Pool ports no lease "
	    "holds (some may still be cooling after a release).",
	    (double)pool_free_count(srv->broker->pool));
	metrics_gauge(out, "berth_waiters", "Parked blocking lookups and "
	    "watches.", (double)waiters_count(srv->waiters));
	metrics_gauge(out, "berth_connections", "Open client connections.",
	    (double)srv->connections);
	metrics_gauge(out, "berth_index", "The registry's change index.",
	    (double)srv->broker->index);
	metrics_gauge(out, "berth_db_up", "1 if the last database write "
	    "succeeded.", srv->broker->db_ok ? 1 : 0);
	metrics_counter(out, "berth_acquires_total", "Leases granted.",
	    st->acquired);
	metrics_counter(out, "berth_renewals_total", "Leases renewed (by "
	    "renew, or by an acquire with the lease's token).", st->renewed);
	metrics_counter(out, "berth_releases_total", "Leases released by "
	    "their holder.", st->released);
	metrics_counter(out, "berth_expirations_total", "Leases ended by TTL "
	    "expiry.", st->expired);
	metrics_counter(out, "berth_owner_deaths_total", "Leases ended "
	    "because their owner process died.", st->owner_dead);
	metrics_counter(out, "berth_revokes_total", "Leases revoked by an "
	    "admin.", st->revoked);
	metrics_counter(out, "berth_takeovers_total", "Acquires that took a "
	    "name over from a dead or expired holder.", st->taken_over);
	metrics_counter(out, "berth_db_commits_total", "Database "
	    "transactions committed.", st->commits);
	metrics_counter(out, "berth_db_commit_failures_total", "Database "
	    "transactions that failed and were rolled back.",
	    st->commit_failures);
	metrics_head(out, "berth_db_commit_duration_seconds", "histogram",
	    "Time to commit a turn's database transaction (successful "
	    "commits).");
	metrics_histogram(out, "berth_db_commit_duration_seconds", "",
	    &st->commit_latency);
	metrics_write_requests(srv->metrics, out);
}
