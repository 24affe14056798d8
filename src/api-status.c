/*
 * api-status.c: the endpoints that describe berthd itself: /v1/health and
 * /v1/status (/metrics is api-metrics.c, the page for people api-page.c,
 * which shows part of api_status_json).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "berthd.h"
#include "cluster.h"

/*
 * Liveness: the database answers and takes a write. The write probe (one
 * small commit) runs at most once a second; in between the last result
 * stands.
 */
void
api_health(struct server *srv, struct api_req *req)
{
	static uint64_t	 last_probe;
	struct broker	*b = srv->broker;
	struct berr	 e;
	uint64_t	 now = clock_now_ms();

	if (now - last_probe >= 1000) {
		last_probe = now;
		broker_probe_db(b);
	}
	if (!broker_db_healthy(b)) {
		berr_set(&e, BERR_DB_UNAVAILABLE, "the lease database does "
		    "not take writes (%s)", broker_db_error(b));
		req_reply_error(srv, req, &e);
		return;
	}
	req_reply_json(srv, req, 200, json_pack("{s:s}", "status", "ok"));
}

static json_t *
api_status_pool(struct server *srv)
{
	struct pool		*pool = broker_pool(srv->broker);
	const struct port_range	*r;
	json_t			*ranges = json_array();
	char			 buf[16];
	size_t			 i, n;

	n = pool_ranges(pool, &r);
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "%u-%u", r[i].lo, r[i].hi);
		json_array_append_new(ranges, json_string(buf));
	}
	return (json_pack("{s:o, s:I, s:I, s:b, s:I}",
	    "ranges", ranges,
	    "size", (json_int_t)pool_size(pool),
	    "free", (json_int_t)pool_free_count(pool),
	    "fallback", srv->pool_fallback,
	    "reuse_delay", (json_int_t)(srv->cfg->reuse_delay_ms / 1000)));
}

/* The portserver protocol's address and counts, or null when it is off. */
static json_t *
api_status_portserver(struct server *srv)
{
	if (srv->portserver == NULL)
		return (json_null());
	return (json_pack("{s:s, s:I, s:I}",
	    "address", srv->cfg->portserver.text,
	    "granted", (json_int_t)portserver_granted(srv->portserver),
	    "refused", (json_int_t)portserver_refused(srv->portserver)));
}

/* Where DNS is answered and how much, or null when it is off. */
static json_t *
api_status_dns(struct server *srv)
{
	const struct dns_stats *st;
	json_int_t	 total = 0;
	size_t		 t, r;

	if (srv->dns == NULL)
		return (json_null());
	st = dns_stats(srv->dns);
	for (t = 0; t < DNS_NQTYPES; t++)
		for (r = 0; r < DNS_NRCODES; r++)
			total += (json_int_t)st->queries[t][r];
	return (json_pack("{s:s, s:I, s:I}", "address",
	    dns_address(srv->dns), "queries", total, "truncated",
	    (json_int_t)st->truncated));
}

/*
 * What berthd says of itself: version, uptime, pool, leases, listeners,
 * database. /v1/status answers it and the status page (api-page.c) shows
 * parts of it, so both read the same numbers. NULL if out of memory.
 */
json_t *
api_status_json(struct server *srv)
{
	json_t	*listen = json_array();
	size_t	 i;

	for (i = 0; i < srv->nlisteners; i++)
		json_array_append_new(listen, json_string(srv->bound[i].text));
	return (json_pack(
	    "{s:s, s:I, s:o, s:I, s:I, s:o, s:s, s:s, s:b, s:o, s:o, s:o, s:o, "
	    "s:s}",
	    "version", PACKAGE_VERSION,
	    "uptime", (json_int_t)((clock_now_ms() - srv->started_at) / 1000),
	    "pool", api_status_pool(srv),
	    "leases", (json_int_t)broker_live_count(srv->broker),
	    "waiters", (json_int_t)(waiters_count(srv->waiters) +
	    cluster_waiting(srv->cluster)),
	    "listen", listen,
	    "db", srv->cfg->db,
	    "synchronous", store_sync_mode(),
	    "db_ok", broker_db_ok(srv->broker),
	    "portserver", api_status_portserver(srv),
	    "dns", api_status_dns(srv),
	    "cluster", api_cluster_status(srv),
	    "pid_namespace", procid_pid_namespace() != NULL ?
	    json_string(procid_pid_namespace()) : json_null(),
	    "boot_id", procid_boot_id()));
}

void
api_status(struct server *srv, struct api_req *req)
{
	req_reply_json(srv, req, 200, api_status_json(srv));
}
