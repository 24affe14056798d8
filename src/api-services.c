/*
 * api-services.c: /v1/services, the lease endpoints of SPEC §4.
 *
 *   GET    /v1/services[?index=N&wait=S]	list (or watch) live leases
 *   POST   /v1/services			acquire
 *   GET    /v1/services/NAME[?wait=S]	look up (or wait for) one
 *   DELETE /v1/services/NAME[?force=1]	release (or admin revoke)
 *   POST   /v1/services/NAME/renew		renew
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

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

	if ((v = calloc(b->reg.count + 1, sizeof *v)) == NULL)
		return (NULL);
	TAILQ_FOREACH(l, &b->reg.all, entry) {
		if (!lease_expired(l, now))
			v[n++] = l;
	}
	qsort(v, n, sizeof *v, api_lease_cmp);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, lease_to_json(v[i], 0));
	free(v);
	return (json_pack("{s:o, s:I}", "services", arr, "index",
	    (json_int_t)b->index));
}

static void
api_list(struct server *srv, struct api_req *req)
{
	struct berr	e;
	uint64_t	index = 0, wait = 0;
	int		has_index, has_wait;

	if (req_query_uint(req, "index", UINT64_MAX, &index, &has_index,
	    &e) == -1 || req_query_uint(req, "wait", BERTH_WAIT_MAX, &wait,
	    &has_wait, &e) == -1) {
		req_reply_error(srv, req, &e);
		return;
	}
	if (has_index && index >= srv->broker->index && !srv->stopping &&
	    (!has_wait || wait > 0)) {
		waiters_park_index(srv->waiters, req, index,
		    has_wait ? (unsigned int)wait : BERTH_WAIT_MAX);
		return;
	}
	req_reply_json(srv, req, 200, api_lease_list(srv));
}

static void
api_acquire(struct server *srv, struct api_req *req)
{
	struct lease_req	 r;
	struct lease		*l;
	struct berr		 e;
	char			*body, loc[128];
	size_t			 len;
	int			 created;

	if (req_body(req, &body, &len, &e) == -1) {
		req_reply_error(srv, req, &e);
		return;
	}
	if (len == 0) {
		free(body);
		if (evhttp_find_header(req->in,
		    "Content-Length") == NULL &&
		    evhttp_find_header(req->in,
		    "Transfer-Encoding") == NULL)
			berr_set(&e, 411, "length_required", "send the body "
			    "with a Content-Length (curl --json does)");
		else
			berr_set(&e, 400, "bad_json", "acquire needs a JSON "
			    "body such as {\"name\":\"api\"}");
		req_reply_error(srv, req, &e);
		return;
	}
	if (leasereq_parse(body, len, &r, &e) == -1) {
		free(body);
		req_reply_error(srv, req, &e);
		return;
	}
	free(body);
	if (broker_acquire(srv->broker, &r, req_bearer(req), &l, &created,
	    &e) == -1) {
		leasereq_clear(&r);
		req_reply_error(srv, req, &e);
		return;
	}
	leasereq_clear(&r);
	snprintf(loc, sizeof loc, "/v1/services/%s", l->name);
	evhttp_add_header(req->out, "Location",
	    loc);
	req_reply_json(srv, req, created ? 201 : 200, lease_to_json(l, 1));
}

static void
api_lookup(struct server *srv, struct api_req *req, const char *name)
{
	struct lease	*l;
	struct berr	 e;
	uint64_t	 wait = 0;
	int		 has_wait;

	if (req_query_uint(req, "wait", BERTH_WAIT_MAX, &wait, &has_wait,
	    &e) == -1) {
		req_reply_error(srv, req, &e);
		return;
	}
	if ((l = broker_lookup(srv->broker, name)) != NULL) {
		req_reply_lease(srv, req, l);
		return;
	}
	if (wait > 0 && !srv->stopping) {
		waiters_park_name(srv->waiters, req, name, (unsigned int)wait);
		return;
	}
	berr_set(&e, 404, "not_found", "no live lease named '%s'", name);
	req_reply_error(srv, req, &e);
}

static void
api_release(struct server *srv, struct api_req *req, const char *name)
{
	struct berr	e;
	uint64_t	force = 0;
	int		has_force, rc;

	if (req_query_uint(req, "force", 1, &force, &has_force, &e) == -1) {
		req_reply_error(srv, req, &e);
		return;
	}
	if (force) {
		if (!req->admin) {
			berr_set(&e, 403, "forbidden", "force=1 (revoke) is "
			    "only for root or berthd's own user over berthd's "
			    "unix socket");
			req_reply_error(srv, req, &e);
			return;
		}
		rc = broker_revoke(srv->broker, name, &e);
	} else
		rc = broker_release(srv->broker, name, req_bearer(req), &e);
	if (rc == -1)
		req_reply_error(srv, req, &e);
	else
		req_reply_json(srv, req, 204, NULL);
}

static void
api_renew(struct server *srv, struct api_req *req, const char *name)
{
	struct lease	*l;
	struct berr	 e;
	char		*body;
	size_t		 len;
	uint32_t	 ttl = 0;
	int		 has_ttl;

	if (req_body(req, &body, &len, &e) == -1 ||
	    leasereq_parse_renew(body, len, &ttl, &has_ttl, &e) == -1) {
		free(body);
		req_reply_error(srv, req, &e);
		return;
	}
	free(body);
	if (broker_renew(srv->broker, name, req_bearer(req),
	    has_ttl ? &ttl : NULL, &l, &e) == -1) {
		req_reply_error(srv, req, &e);
		return;
	}
	req_reply_json(srv, req, 200, lease_to_json(l, 0));
}

static void
api_method_error(struct server *srv, struct api_req *req,
    const char *allow)
{
	struct berr	e;

	evhttp_add_header(req->out, "Allow",
	    allow);
	berr_set(&e, 405, "method_not_allowed", "use %s on this path", allow);
	req_reply_error(srv, req, &e);
}

/* rest is the path after "/v1/services": "", "/NAME" or "/NAME/renew". */
void
api_services(struct server *srv, struct api_req *req, const char *rest)
{
	int			 cmd = req->method;
	char			 name[BERTH_NAME_MAX + 2];
	const char		*slash;
	struct berr		 e;
	size_t			 len;

	if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
		if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
			api_list(srv, req);
		else if (cmd == EVHTTP_REQ_POST)
			api_acquire(srv, req);
		else
			api_method_error(srv, req, "GET, HEAD, POST");
		return;
	}
	rest++;
	slash = strchr(rest, '/');
	len = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	if (len >= sizeof name)
		len = sizeof name - 1;
	memcpy(name, rest, len);
	name[len] = '\0';
	if (!lease_name_valid(name)) {
		berr_set(&e, 400, "invalid_name", "'%.64s' is not a valid name: "
		    "1-63 characters, [a-z0-9] first, then [a-z0-9._-]", name);
		req_reply_error(srv, req, &e);
		return;
	}
	if (slash == NULL) {
		if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)
			api_lookup(srv, req, name);
		else if (cmd == EVHTTP_REQ_DELETE)
			api_release(srv, req, name);
		else
			api_method_error(srv, req, "GET, HEAD, DELETE");
	} else if (strcmp(slash, "/renew") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			api_renew(srv, req, name);
		else
			api_method_error(srv, req, "POST");
	} else {
		berr_set(&e, 404, "not_found", "no such endpoint under "
		    "/v1/services/%s", name);
		req_reply_error(srv, req, &e);
	}
}
