/*
 * api-services.c: the lease endpoints (docs/api.md), one handler each,
 * as router.c's table names them:
 *
 *   GET    /v1/services[?index=N&wait=S]	api_list: list (or watch)
 *   POST   /v1/services			api_acquire
 *   GET    /v1/services/NAME[?wait=S&ready=1]	api_lookup: look up
 *						(or wait), ready or not
 *   DELETE /v1/services/NAME[?force=1]	api_release (or admin revoke)
 *   POST   /v1/services/NAME/renew		api_renew
 *
 * A renewal, a reclaim, and an acquire of a port the caller named, look
 * at once whether the lease's service is there (ready.c), on its port
 * only.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "berthd.h"

static int
api_lease_cmp(const void *a, const void *b)
{
	const struct lease	*la = *(const struct lease *const *)a;
	const struct lease	*lb = *(const struct lease *const *)b;

	return (strcmp(la->name, lb->name));
}

/* {"services": [...], "index": N}: live leases by name, no tokens. */
json_t *
api_lease_list(struct server *srv)
{
	struct broker	 *b = srv->broker;
	struct lease	**v, *l;
	json_t		 *arr = json_array();
	uint64_t	  now = clock_now_ms();
	size_t		  n = 0, i;

	if ((v = calloc(broker_live_count(b) + 1, sizeof *v)) == NULL) {
		json_decref(arr);
		return (NULL);
	}
	for (l = broker_first(b); l != NULL; l = broker_next(l)) {
		if (!lease_expired(l, now))
			v[n++] = l;
	}
	qsort(v, n, sizeof *v, api_lease_cmp);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, lease_to_json(v[i], 0));
	free(v);
	return (json_pack("{s:o, s:I}", "services", arr, "index",
	    (json_int_t)broker_index(b)));
}

/*
 * The list, now: what a list answers, and a watch when the index moves or
 * time is up. The registry builds its text once per change and every
 * answer refers to those bytes: a hundred woken watchers cost one
 * serialisation and one copy, not a hundred.
 */
static void
api_list_now(struct server *srv, struct api_req *req)
{
	req_reply_shared(srv, req, registry_list_text(broker_registry(
	    srv->broker), broker_index(srv->broker), clock_now_ms()));
}

void
api_list(struct server *srv, struct api_req *req)
{
	uint64_t	index = 0, wait = 0;
	int		has_index, has_wait;

	if (req_query_uint(srv, req, "index", UINT64_MAX, &index,
	    &has_index) == -1 || req_query_uint(srv, req, "wait",
	    BERTH_WAIT_MAX, &wait, &has_wait) == -1)
		return;
	if (has_index && index >= broker_index(srv->broker) &&
	    !srv->stopping && (!has_wait || wait > 0)) {
		if (waiters_park_index(srv->waiters, req, index, has_wait ?
		    (unsigned int)wait : BERTH_WAIT_MAX, api_list_now) == -1)
			req_fail(srv, req, 500, "internal", "out of memory "
			    "parking the request");
		return;
	}
	api_list_now(srv, req);
}

/* An acquire with no body: 411 without a length, 400 with one of 0. */
static void
api_acquire_empty(struct server *srv, struct api_req *req)
{
	if (req_header(req, "Content-Length") == NULL)
		req_fail(srv, req, 411, "length_required", "send the body "
		    "with a Content-Length (curl --json does)");
	else
		req_fail(srv, req, 400, "bad_json", "acquire needs a JSON "
		    "body such as {\"name\":\"api\"}");
}

/*
 * A published lease is reached from other hosts: its host is this
 * node's advertise address unless the caller named one. Without
 * --cluster there is nowhere to publish: 400 cluster_disabled.
 */
static int
api_publish_host(struct server *srv, struct api_req *req, struct lease_req *r)
{
	if (srv->cluster == NULL) {
		req_fail(srv, req, 400, "cluster_disabled", "%s", "'publish' "
		    "needs a clustered berthd (berthd --cluster URL "
		    "--advertise ADDR); this one serves this host only");
		return (-1);
	}
	if (!r->has_host)
		snprintf(r->host, sizeof r->host, "%s", srv->cfg->advertise);
	return (0);
}

void
api_acquire(struct server *srv, struct api_req *req)
{
	struct lease_req	 r;
	struct lease		*l;
	struct berr		 e;
	char			*body, loc[128];
	size_t			 len;
	int			 created, rc, named;

	if (req_body(srv, req, &body, &len) == -1)
		return;
	if (len == 0) {
		free(body);
		api_acquire_empty(srv, req);
		return;
	}
	rc = leasereq_parse(body, len, &r, &e);
	free(body);
	/*
	 * Who asks: the lease records its creator, and an owner pid must be
	 * one of the creator's processes unless an admin asks. One kernel
	 * question per connection (req_uid caches it).
	 */
	if (rc == 0) {
		r.uid = req_uid(req);
		r.admin = req_is_admin(req);
	}
	if (rc == 0 && r.publish && api_publish_host(srv, req, &r) == -1) {
		leasereq_clear(&r);
		return;
	}
	if (rc == 0)
		rc = broker_acquire(srv->broker, &r, req_bearer(req), &l,
		    &created, &e);
	named = rc == 0 && r.port != 0;
	leasereq_clear(&r);
	if (rc == -1) {
		req_reply_error(srv, req, &e);
		return;
	}
	/*
	 * A port the caller named may have its service already, a
	 * re-acquire with the token is a renewal, and a reclaim (a new
	 * lease with a token) is not test-bound: look. A pool port was just
	 * test-bound: nothing is there (unless the host is elsewhere).
	 */
	if (named || !created || req_bearer(req) != NULL)
		ready_check(srv->ready, l);
	else
		ready_granted(srv->ready, l);
	snprintf(loc, sizeof loc, "/v1/services/%s", l->name);
	req_add_header(req, "Location", loc);
	req_reply_json(srv, req, created ? 201 : 200, lease_to_json(l, 1));
}

/*
 * The lease named in req's path, now; 404 if there is none (waited or
 * not), or with ready, if nothing listens on its port yet (null, berthd
 * cannot tell, counts as ready).
 */
static void
api_lookup_answer(struct server *srv, struct api_req *req, int ready)
{
	struct lease	*l;
	struct berr	 e;
	const char	*waited = req->state == REQ_PARKED ? " (waited)" : "";

	if ((l = broker_lookup(srv->broker, req->name)) == NULL)
		berr_set(&e, BERR_NOT_FOUND, "no live lease named '%s'%s",
		    req->name, waited);
	else if (ready && l->ready == LEASE_NOT_READY)
		berr_set(&e, BERR_NOT_FOUND, "'%s' is registered on port %u, "
		    "but nothing %s its port yet%s", req->name, l->port,
		    l->proto == PROTO_UDP ? "is bound to" : "listens on",
		    waited);
	else {
		req_reply_lease(srv, req, l);
		return;
	}
	req_reply_error(srv, req, &e);
}

static void
api_lookup_now(struct server *srv, struct api_req *req)
{
	api_lookup_answer(srv, req, 0);
}

static void
api_lookup_ready_now(struct server *srv, struct api_req *req)
{
	api_lookup_answer(srv, req, 1);
}

void
api_lookup(struct server *srv, struct api_req *req)
{
	struct lease	*l;
	uint64_t	 wait = 0, ready = 0;
	int		 has_wait, has_ready;

	if (req_query_uint(srv, req, "wait", BERTH_WAIT_MAX, &wait,
	    &has_wait) == -1 || req_query_uint(srv, req, "ready", 1, &ready,
	    &has_ready) == -1)
		return;
	l = broker_lookup(srv->broker, req->name);
	if (wait > 0 && !srv->stopping &&
	    (l == NULL || (ready && l->ready == LEASE_NOT_READY))) {
		if (waiters_park_name(srv->waiters, req, (unsigned int)wait,
		    (int)ready, ready ? api_lookup_ready_now :
		    api_lookup_now) == -1)
			req_fail(srv, req, 500, "internal", "out of memory "
			    "parking the request");
		return;
	}
	api_lookup_answer(srv, req, (int)ready);
}

void
api_release(struct server *srv, struct api_req *req)
{
	struct berr	e;
	uint64_t	force = 0;
	int		has_force, rc;

	if (req_query_uint(srv, req, "force", 1, &force, &has_force) == -1)
		return;
	if (force && !req_is_admin(req)) {
		req_fail(srv, req, 403, "forbidden", "force=1 (revoke) is only "
		    "for root or berthd's own user, and never from a web page");
		return;
	}
	if (force)
		rc = broker_revoke(srv->broker, req->name, &e);
	else
		rc = broker_release(srv->broker, req->name, req_bearer(req),
		    &e);
	if (rc == -1)
		req_reply_error(srv, req, &e);
	else
		req_reply_json(srv, req, 204, NULL);
}

void
api_renew(struct server *srv, struct api_req *req)
{
	struct lease	*l;
	struct berr	 e;
	char		*body;
	size_t		 len;
	uint32_t	 ttl = 0;
	int		 has_ttl, rc;

	if (req_body(srv, req, &body, &len) == -1)
		return;
	rc = leasereq_parse_renew(body, len, &ttl, &has_ttl, &e);
	free(body);
	if (rc == 0)
		rc = broker_renew(srv->broker, req->name, req_bearer(req),
		    has_ttl ? &ttl : NULL, &l, &e);
	if (rc == -1) {
		req_reply_error(srv, req, &e);
		return;
	}
	/* Its holder says it is alive: is its service there yet? */
	ready_check(srv->ready, l);
	req_reply_lease(srv, req, l);
}
