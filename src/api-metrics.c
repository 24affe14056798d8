/*
 * api-metrics.c: GET /metrics, in Prometheus text format 0.0.4
 * (docs/monitoring.md lists every series): the request counts of
 * metrics.c, the broker's lease events and commits, and gauges read from
 * the broker, pool, waiters and connections at scrape time.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "berthd.h"
#include "cluster.h"

static void
mt_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

static void
mt_counter(struct evbuffer *out, const char *name, const char *help,
    uint64_t v)
{
	mt_head(out, name, "counter", help);
	evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void
mt_gauge(struct evbuffer *out, const char *name, const char *help,
    double v)
{
	mt_head(out, name, "gauge", help);
	evbuffer_add_printf(out, "%s %.15g\n", name, v);
}

/* A label value as the text format wants it: \, " and newline escaped. */
static void
mt_label_value(struct evbuffer *out, const char *v)
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
mt_histogram(struct evbuffer *out, const char *name, const char *labels,
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
mt_requests(const struct metrics *m, struct evbuffer *out)
{
	uint64_t	 by_code[METRICS_STATUS_COUNT], n;
	size_t		 r, k, c;
	const char	*label;
	char		 labels[96];

	memset(by_code, 0, sizeof by_code);
	mt_head(out, "berth_requests_total", "counter", "API requests "
	    "answered, by route, method and HTTP status code.");
	for (r = 0; r <= ROUTE_MAX; r++) {
		if ((label = metrics_route_label(m, r)) == NULL)
			continue;
		for (k = 0; k < METHOD_COUNT; k++) {
			for (c = 0; c < METRICS_STATUS_COUNT; c++) {
				n = metrics_requests(m, r, k,
				    c + METRICS_STATUS_MIN);
				if (n == 0)
					continue;
				by_code[c] += n;
				evbuffer_add_printf(out, "berth_requests_total"
				    "{route=\"%s\",method=\"%s\",code=\"%zu\"} "
				    "%llu\n", label, metrics_method_name(k),
				    c + METRICS_STATUS_MIN, (unsigned long long)n);
			}
		}
	}
	mt_head(out, "berth_http_requests_total", "counter", "API "
	    "requests answered, by HTTP status code (berth_requests_total "
	    "summed over route and method).");
	for (c = 0; c < METRICS_STATUS_COUNT; c++) {
		if (by_code[c] != 0)
			evbuffer_add_printf(out, "berth_http_requests_total"
			    "{code=\"%zu\"} %llu\n", c + METRICS_STATUS_MIN,
			    (unsigned long long)by_code[c]);
	}
	mt_head(out, "berth_request_duration_seconds", "histogram",
	    "Time from dispatch to answer of API requests, by route; parked "
	    "blocking queries are not timed.");
	for (r = 0; r <= ROUTE_MAX; r++) {
		if ((label = metrics_route_label(m, r)) == NULL ||
		    metrics_latency(m, r)->count == 0)
			continue;
		snprintf(labels, sizeof labels, "route=\"%s\"", label);
		mt_histogram(out, "berth_request_duration_seconds", labels,
		    metrics_latency(m, r));
	}
}

/* A counter that is a uint64_t field of a stats struct. */
struct mt_field {
	const char	*name;
	const char	*help;
	size_t		 offset;
};

/* Each field's counter, read from stats. */
static void
mt_fields(struct evbuffer *out, const struct mt_field *f, size_t n,
    const void *stats)
{
	size_t	i;

	for (i = 0; i < n; i++)
		mt_counter(out, f[i].name, f[i].help, *(const uint64_t *)
		    (const void *)((const char *)stats + f[i].offset));
}

/* The broker's lease events and commits, as counters (broker_stats). */
static const struct mt_field mt_events[] = {
	{ "berth_acquires_total", "Leases granted.",
	    offsetof(struct broker_stats, acquired) },
	{ "berth_renewals_total", "Leases renewed (by renew, or by an acquire "
	    "with the lease's token).", offsetof(struct broker_stats, renewed) },
	{ "berth_releases_total", "Leases released by their holder.",
	    offsetof(struct broker_stats, released) },
	{ "berth_expirations_total", "Leases ended by TTL expiry.",
	    offsetof(struct broker_stats, expired) },
	{ "berth_owner_deaths_total", "Leases ended because their owner "
	    "process died.", offsetof(struct broker_stats, owner_dead) },
	{ "berth_revokes_total", "Leases revoked by an admin.",
	    offsetof(struct broker_stats, revoked) },
	{ "berth_takeovers_total", "Acquires that took a name over from a dead "
	    "or expired holder.", offsetof(struct broker_stats, taken_over) },
	{ "berth_db_commits_total", "Database transactions committed.",
	    offsetof(struct broker_stats, commits) },
	{ "berth_db_commit_failures_total", "Database transactions that failed "
	    "and were rolled back.",
	    offsetof(struct broker_stats, commit_failures) },
};

/* The cluster's series, with --cluster only (cluster_stats). */
static const struct mt_field mt_cluster_events[] = {
	{ "berth_cluster_joins_total", "Times this node joined etcd: an etcd "
	    "lease granted, the view read, the watch started.",
	    offsetof(struct cluster_stats, joins) },
	{ "berth_cluster_publishes_total", "Published leases written to etcd "
	    "as they began or changed.",
	    offsetof(struct cluster_stats, publishes) },
	{ "berth_cluster_republishes_total", "Published leases written to "
	    "etcd again, on a (re)join or after etcd lost one.",
	    offsetof(struct cluster_stats, republishes) },
	{ "berth_cluster_withdrawals_total", "Keys of this node's deleted "
	    "from etcd: ended leases, and strays found on a join.",
	    offsetof(struct cluster_stats, withdrawals) },
	{ "berth_cluster_watch_events_total", "Changes received on the watch "
	    "of the cluster's keys.",
	    offsetof(struct cluster_stats, watch_events) },
	{ "berth_cluster_etcd_errors_total", "Failed etcd calls and ended "
	    "watches (each one starts a reconnect).",
	    offsetof(struct cluster_stats, etcd_errors) },
};

static void
mt_cluster(struct server *srv, struct evbuffer *out)
{
	const struct cluster_stats	*st;
	const struct clusterview	*cv;

	if (srv->cluster == NULL)
		return;
	st = cluster_stats(srv->cluster);
	cv = cluster_view(srv->cluster);
	mt_gauge(out, "berth_cluster_connected", "1 while this node is "
	    "joined to etcd and watching; 0 while the view is stale.",
	    cluster_connected(srv->cluster) ? 1 : 0);
	mt_gauge(out, "berth_cluster_nodes", "Nodes in this node's view "
	    "of the cluster (itself included).",
	    (double)json_object_size(clusterview_nodes(cv)));
	mt_gauge(out, "berth_cluster_instances", "Published instances in "
	    "this node's view of the cluster (its own included).",
	    (double)clusterview_count(cv));
	mt_gauge(out, "berth_cluster_revision", "The etcd revision the view "
	    "is at.", (double)cluster_revision(srv->cluster));
	mt_fields(out, mt_cluster_events, sizeof mt_cluster_events /
	    sizeof mt_cluster_events[0], st);
}

/* DNS questions by type and answer code (those seen), with DNS on only. */
static void
mt_dns(struct server *srv, struct evbuffer *out)
{
	const struct dns_stats	*st;
	size_t			 t, r;

	if (srv->dns == NULL)
		return;
	st = dns_stats(srv->dns);
	mt_head(out, "berth_dns_queries_total", "counter", "DNS questions "
	    "answered, by question type and response code.");
	for (t = 0; t < DNS_NQTYPES; t++) {
		for (r = 0; r < DNS_NRCODES; r++) {
			if (st->queries[t][r] == 0)
				continue;
			evbuffer_add_printf(out, "berth_dns_queries_total{type="
			    "\"%s\",rcode=\"%s\"} %llu\n", dns_qtype_names[t],
			    dns_rcode_names[r],
			    (unsigned long long)st->queries[t][r]);
		}
	}
	mt_counter(out, "berth_dns_truncated_total", "DNS answers cut to "
	    "fit in 512 bytes (TC set).", st->truncated);
	mt_counter(out, "berth_dns_dropped_total", "DNS questions left "
	    "unanswered: a name that cannot be written back, or an answer "
	    "the socket would not take.", st->dropped);
}

static void
mt_write(struct server *srv, struct evbuffer *out)
{
	const struct broker_stats	*st = broker_stats(srv->broker);
	struct pool			*pool = broker_pool(srv->broker);

	mt_head(out, "berth_build_info", "gauge", "Always 1; the "
	    "version of berthd in a label.");
	evbuffer_add_printf(out, "berth_build_info{version=\"");
	mt_label_value(out, PACKAGE_VERSION);
	evbuffer_add_printf(out, "\"} 1\n");
	mt_gauge(out, "process_start_time_seconds", "Start time of "
	    "berthd since the Unix epoch, in seconds.",
	    (double)srv->started_at / 1000);
	mt_gauge(out, "berth_uptime_seconds", "Seconds since berthd "
	    "started.", (double)((clock_now_ms() - srv->started_at) / 1000));
	mt_gauge(out, "berth_leases", "Live leases.",
	    (double)broker_live_count(srv->broker));
	mt_gauge(out, "berth_pool_ports", "Ports in the pool.",
	    (double)pool_size(pool));
	mt_gauge(out, "berth_pool_free_ports", "Pool ports no lease "
	    "holds (some may still be cooling after a release).",
	    (double)pool_free_count(pool));
	mt_gauge(out, "berth_waiters", "Parked blocking lookups and "
	    "watches.", (double)(waiters_count(srv->waiters) +
	    cluster_waiting(srv->cluster)));
	mt_gauge(out, "berth_connections", "Open client connections.",
	    (double)conn_count());
	mt_gauge(out, "berth_index", "The registry's change index.",
	    (double)broker_index(srv->broker));
	mt_gauge(out, "berth_db_up", "1 if the last database write "
	    "succeeded.", broker_db_ok(srv->broker) ? 1 : 0);
	mt_fields(out, mt_events, sizeof mt_events / sizeof mt_events[0], st);
	mt_head(out, "berth_db_commit_duration_seconds", "histogram",
	    "Time to commit a turn's database transaction (successful "
	    "commits).");
	mt_histogram(out, "berth_db_commit_duration_seconds", "",
	    &st->commit_latency);
	mt_cluster(srv, out);
	mt_dns(srv, out);
	mt_requests(srv->metrics, out);
}

void
api_metrics(struct server *srv, struct api_req *req)
{
	struct evbuffer	*out = evbuffer_new();
	size_t		 len;
	char		*text;

	if (out == NULL) {
		req_fail(srv, req, 500, "internal", "out of memory");
		return;
	}
	mt_write(srv, out);
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, -1);
	req_reply_text(srv, req, 200, "text/plain; version=0.0.4; "
	    "charset=utf-8", text != NULL ? text : "", text != NULL ? len : 0);
	evbuffer_free(out);
}
