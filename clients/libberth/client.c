/*
 * client.c: libberth's public calls: each builds its request, sends it
 * over the client's connection (http.c) and turns the JSON answer into a
 * lease (lease.c), the broker's status (info.c) or a berth_error. Every
 * call returns 0 or the positive code it puts in err->code.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http.h"

#define BERTH_TIMEOUT_MS	10000

BERTH_EXPORT const char *
berth_version(void)
{
	return (BERTH_VERSION);
}

BERTH_EXPORT int
berth_name_valid(const char *s)
{
	return (names_valid(s));
}

BERTH_EXPORT const char *
berth_strerror(int code)
{
	static const char *const msgs[] = {
		"success", "invalid argument", "broker unreachable",
		"timed out", "protocol error", "not found", "conflict",
		"forbidden", "unavailable", "broker error", "out of memory",
		"broker not clustered"
	};

	if (code < 0 || code >= (int)(sizeof msgs / sizeof msgs[0]))
		return ("unknown error");
	return (msgs[code]);
}

BERTH_EXPORT berth_client *
berth_open(const char *addr, berth_error *err)
{
	berth_client	*c;

	if (addr == NULL || addr[0] == '\0')
		addr = getenv("BERTH_ADDR");
	if (addr == NULL || addr[0] == '\0')
		addr = BERTH_DEFAULT_ADDR;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		return (NULL);
	}
	c->fd = -1;
	c->timeout_ms = BERTH_TIMEOUT_MS;
	if (bhttp_parse_addr(c, addr, err) != 0) {
		free(c);
		return (NULL);
	}
	if (err != NULL)
		memset(err, 0, sizeof *err);
	return (c);
}

BERTH_EXPORT void
berth_close(berth_client *c)
{
	if (c == NULL)
		return;
	bhttp_disconnect(c);
	free(c->buf);
	free(c);
}

BERTH_EXPORT const char *
berth_addr(const berth_client *c)
{
	return (c->addr.text);
}

BERTH_EXPORT void
berth_set_timeout(berth_client *c, int ms)
{
	c->timeout_ms = ms > 0 ? ms : BERTH_TIMEOUT_MS;
}

BERTH_EXPORT uint64_t
berth_last_index(const berth_client *c)
{
	return (c->last_index);
}

/*
 * The error code for an answer outside 2xx: by the API's code where that
 * means more than its status (cluster_disabled is a 400 to an acquire and
 * a 404 elsewhere, but always the same thing to fix), else by the status.
 */
static int
berth_code_for(int status, const char *code)
{
	if (code != NULL && strcmp(code, "cluster_disabled") == 0)
		return (BERTH_ENOCLUSTER);
	switch (status) {
	case 400:
		return (BERTH_EINVAL);
	case 403:
		return (BERTH_EFORBIDDEN);
	case 404:
		return (BERTH_ENOTFOUND);
	case 409:
		return (BERTH_ECONFLICT);
	case 503:
		return (BERTH_EUNAVAILABLE);
	default:
		return (BERTH_EAPI);
	}
}

/* Turn an error answer into err: the broker's own code and message. */
static int
berth_api_error(berth_client *c, struct bhttp_response *r, berth_error *err)
{
	json_t		*j, *e;
	const char	*code = NULL, *msg = NULL;
	int		 berr;

	j = r->body != NULL ? json_loads(r->body, 0, NULL) : NULL;
	if ((e = json_object_get(j, "error")) != NULL) {
		code = json_string_value(json_object_get(e, "code"));
		msg = json_string_value(json_object_get(e, "message"));
	}
	berr = berth_code_for(r->status, code);
	if (msg != NULL)
		bhttp_set_error(err, berr, r->status, code, "%s (%s)", msg,
		    code != NULL ? code : "error");
	else
		bhttp_set_error(err, berr, r->status, NULL, "broker at %s "
		    "answered %d", c->addr.text, r->status);
	json_decref(j);
	free(r->body);
	r->body = NULL;
	return (berr);
}

/* Send a request; an answer outside 2xx becomes an error. */
static int
berth_call(berth_client *c, const char *method, const char *path,
    const char *token, const char *body, int wait_s,
    struct bhttp_response *r, berth_error *err)
{
	int	rc;

	if (err != NULL)
		memset(err, 0, sizeof *err);
	rc = bhttp_request(c, method, path, token, body, wait_s * 1000, r,
	    err);
	if (rc != 0)
		return (rc);
	if (r->status < 200 || r->status > 299)
		return (berth_api_error(c, r, err));
	return (0);
}

/*
 * Parse a lease answer into a new lease in *out (out may be NULL: the
 * answer is dropped). Consumes r->body.
 */
static int
berth_lease_answer(berth_client *c, struct bhttp_response *r,
    berth_lease **out, berth_error *err)
{
	struct berth_lease	*l;
	json_t			*j;
	int			 rc = 0;

	if (out == NULL) {
		free(r->body);
		return (0);
	}
	if ((l = calloc(1, sizeof *l)) == NULL) {
		free(r->body);
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		return (BERTH_ENOMEM);
	}
	j = json_loads(r->body != NULL ? r->body : "", 0, NULL);
	if (lease_from_json(j, l) == -1) {
		bhttp_set_error(err, BERTH_EPROTO, r->status, NULL, "broker at "
		    "%s sent a lease that is not one", c->addr.text);
		free(l);
		rc = BERTH_EPROTO;
	} else
		*out = l;
	json_decref(j);
	free(r->body);
	return (rc);
}

/* Refuse a bad name here, with the broker's own words, before any request. */
static int
berth_check_name(const char *name, berth_error *err)
{
	char	msg[sizeof err->message];

	if (names_valid(name))
		return (0);
	bhttp_set_error(err, BERTH_EINVAL, 0, "invalid_name", "%s",
	    names_message(name, msg, sizeof msg));
	return (BERTH_EINVAL);
}

/* A call starts with a clean err, whatever the caller left in it. */
static void
berth_reset(berth_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof *err);
}

BERTH_EXPORT int
berth_acquire(berth_client *c, const berth_acquire_opts *o,
    berth_lease **out, berth_error *err)
{
	struct bhttp_response	 r;
	json_t			*b;
	char			*body;
	int			 rc;

	if (out != NULL)
		*out = NULL;
	berth_reset(err);
	if (o == NULL || (rc = berth_check_name(o->name, err)) != 0)
		return (o == NULL ? BERTH_EINVAL : rc);
	if (o->failed != 0) {
		bhttp_set_error(err, o->failed, 0, NULL, "an acquire option "
		    "could not be set: %s", berth_strerror(o->failed));
		return (o->failed);
	}
	b = lease_acquire_body(o);
	body = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	if (body == NULL) {
		bhttp_set_error(err, BERTH_EINVAL, 0, NULL, "cannot encode the "
		    "request (strings and meta must be UTF-8)");
		return (BERTH_EINVAL);
	}
	rc = berth_call(c, "POST", "/v1/services", o->token, body, 0, &r, err);
	free(body);
	if (rc != 0)
		return (rc);
	return (berth_lease_answer(c, &r, out, err));
}

BERTH_EXPORT int
berth_renew(berth_client *c, const char *name, const char *token, long ttl,
    berth_lease **out, berth_error *err)
{
	struct bhttp_response	 r;
	char			 path[128], body[64];
	int			 rc;

	if (out != NULL)
		*out = NULL;
	berth_reset(err);
	if ((rc = berth_check_name(name, err)) != 0)
		return (rc);
	snprintf(path, sizeof path, "/v1/services/%s/renew", name);
	snprintf(body, sizeof body, "{\"ttl\":%ld}", ttl);
	if ((rc = berth_call(c, "POST", path, token, ttl >= 0 ? body : NULL, 0,
	    &r, err)) != 0)
		return (rc);
	return (berth_lease_answer(c, &r, out, err));
}

/* DELETE a lease: release with its token, or revoke with ?force=1. */
static int
berth_delete(berth_client *c, const char *name, const char *token,
    const char *query, berth_error *err)
{
	struct bhttp_response	r;
	char			path[128];
	int			rc;

	if ((rc = berth_check_name(name, err)) != 0)
		return (rc);
	snprintf(path, sizeof path, "/v1/services/%s%s", name, query);
	if ((rc = berth_call(c, "DELETE", path, token, NULL, 0, &r, err)) != 0)
		return (rc);
	free(r.body);
	return (0);
}

BERTH_EXPORT int
berth_release(berth_client *c, const char *name, const char *token,
    berth_error *err)
{
	return (berth_delete(c, name, token, "", err));
}

BERTH_EXPORT int
berth_revoke(berth_client *c, const char *name, berth_error *err)
{
	return (berth_delete(c, name, NULL, "?force=1", err));
}

/* The broker holds a blocking query at most BERTH_WAIT_MAX seconds. */
static int
berth_clamp_wait(int wait)
{
	return (wait < 0 ? 0 : wait > BERTH_WAIT_MAX ? BERTH_WAIT_MAX : wait);
}

/* GET /v1/services/NAME, waiting wait seconds, for it to be ready too. */
static int
berth_get_lease(berth_client *c, const char *name, int wait, int ready,
    berth_lease **out, berth_error *err)
{
	struct bhttp_response	r;
	char			path[160];
	int			rc;

	if (out != NULL)
		*out = NULL;
	berth_reset(err);
	if ((rc = berth_check_name(name, err)) != 0)
		return (rc);
	wait = berth_clamp_wait(wait);
	snprintf(path, sizeof path, "/v1/services/%s", name);
	if (wait > 0 || ready)
		snprintf(path + strlen(path), sizeof path - strlen(path),
		    "?wait=%d%s", wait, ready ? "&ready=1" : "");
	if ((rc = berth_call(c, "GET", path, NULL, NULL, wait, &r, err)) != 0)
		return (rc);
	return (berth_lease_answer(c, &r, out, err));
}

BERTH_EXPORT int
berth_lookup(berth_client *c, const char *name, int wait, berth_lease **out,
    berth_error *err)
{
	return (berth_get_lease(c, name, wait, 0, out, err));
}

BERTH_EXPORT int
berth_lookup_ready(berth_client *c, const char *name, int wait,
    berth_lease **out, berth_error *err)
{
	return (berth_get_lease(c, name, wait, 1, out, err));
}

/*
 * Turn a list answer into v: the leases in j's array key ("services" or
 * "instances"), the index and, of the cluster's view, whether it is
 * stale. 0, or the error code after filling err.
 */
static int
berth_list_answer(berth_client *c, json_t *j, const char *key,
    berth_leases *v, berth_error *err)
{
	json_t	*arr = json_object_get(j, key), *o;
	size_t	 i;

	if (!json_is_array(arr)) {
		bhttp_set_error(err, BERTH_EPROTO, 200, NULL, "broker at %s "
		    "sent a list that is not one", c->addr.text);
		return (BERTH_EPROTO);
	}
	if ((v->v = calloc(json_array_size(arr) + 1, sizeof *v->v)) == NULL) {
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		return (BERTH_ENOMEM);
	}
	json_array_foreach(arr, i, o) {
		if (lease_from_json(o, &v->v[v->n]) == 0)
			v->n++;
	}
	v->index = (uint64_t)json_integer_value(json_object_get(j, "index"));
	v->stale = json_is_true(json_object_get(j, "stale"));
	return (0);
}

/*
 * GET path, whose answer holds a list of leases under key, into a new
 * list in *out; wait is how long the broker may hold the request.
 */
static int
berth_get_list(berth_client *c, const char *path, const char *key, int wait,
    berth_leases **out, berth_error *err)
{
	struct bhttp_response	 r;
	berth_leases		*v;
	json_t			*j;
	int			 rc;

	if ((rc = berth_call(c, "GET", path, NULL, NULL, wait, &r, err)) != 0)
		return (rc);
	j = json_loads(r.body != NULL ? r.body : "", 0, NULL);
	free(r.body);
	if ((v = calloc(1, sizeof *v)) == NULL) {
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		rc = BERTH_ENOMEM;
	} else if ((rc = berth_list_answer(c, j, key, v, err)) != 0 ||
	    out == NULL)
		berth_leases_free(v);
	else
		*out = v;
	json_decref(j);
	return (rc);
}

/* A list's path: base, and with index and wait both set, a watch. */
static void
berth_list_path(char *path, size_t len, const char *base, uint64_t index,
    int wait)
{
	if (index > 0 && wait > 0)
		snprintf(path, len, "%s?index=%llu&wait=%d", base,
		    (unsigned long long)index, wait);
	else
		snprintf(path, len, "%s", base);
}

/* A list or a watch of the list at base (local or the cluster's). */
static int
berth_list_at(berth_client *c, const char *base, uint64_t index, int wait,
    berth_leases **out, berth_error *err)
{
	char	path[96];

	if (out != NULL)
		*out = NULL;
	berth_reset(err);
	wait = berth_clamp_wait(wait);
	berth_list_path(path, sizeof path, base, index, wait);
	return (berth_get_list(c, path, "services", index > 0 ? wait : 0, out,
	    err));
}

BERTH_EXPORT int
berth_list(berth_client *c, uint64_t index, int wait, berth_leases **out,
    berth_error *err)
{
	return (berth_list_at(c, "/v1/services", index, wait, out, err));
}

BERTH_EXPORT int
berth_cluster_list(berth_client *c, uint64_t index, int wait,
    berth_leases **out, berth_error *err)
{
	return (berth_list_at(c, "/v1/cluster/services", index, wait, out,
	    err));
}

BERTH_EXPORT int
berth_cluster_lookup(berth_client *c, const char *name, int wait,
    berth_leases **out, berth_error *err)
{
	char	path[160];
	int	rc;

	if (out != NULL)
		*out = NULL;
	berth_reset(err);
	if ((rc = berth_check_name(name, err)) != 0)
		return (rc);
	wait = berth_clamp_wait(wait);
	snprintf(path, sizeof path, "/v1/cluster/services/%s", name);
	if (wait > 0)
		snprintf(path + strlen(path), sizeof path - strlen(path),
		    "?wait=%d", wait);
	return (berth_get_list(c, path, "instances", wait, out, err));
}

/* Turn a nodes answer into v; 0, or the error code after filling err. */
static int
berth_nodes_answer(berth_client *c, json_t *j, berth_nodes *v,
    berth_error *err)
{
	if (!json_is_array(json_object_get(j, "nodes"))) {
		bhttp_set_error(err, BERTH_EPROTO, 200, NULL, "broker at %s "
		    "sent a list of nodes that is not one", c->addr.text);
		return (BERTH_EPROTO);
	}
	if (info_nodes_from_json(j, v) == -1) {
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		return (BERTH_ENOMEM);
	}
	return (0);
}

BERTH_EXPORT int
berth_cluster_nodes(berth_client *c, berth_nodes **out, berth_error *err)
{
	struct bhttp_response	 r;
	berth_nodes		*v;
	json_t			*j;
	int			 rc;

	if (out != NULL)
		*out = NULL;
	berth_reset(err);
	if ((rc = berth_call(c, "GET", "/v1/cluster/nodes", NULL, NULL, 0, &r,
	    err)) != 0)
		return (rc);
	j = json_loads(r.body != NULL ? r.body : "", 0, NULL);
	free(r.body);
	if ((v = calloc(1, sizeof *v)) == NULL) {
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		rc = BERTH_ENOMEM;
	} else if ((rc = berth_nodes_answer(c, j, v, err)) != 0 || out == NULL)
		berth_nodes_free(v);
	else
		*out = v;
	json_decref(j);
	return (rc);
}

BERTH_EXPORT int
berth_status(berth_client *c, berth_info **out, berth_error *err)
{
	struct bhttp_response	 r;
	berth_info		*s;
	int			 rc;

	if (out != NULL)
		*out = NULL;
	berth_reset(err);
	if ((rc = berth_call(c, "GET", "/v1/status", NULL, NULL, 0, &r,
	    err)) != 0)
		return (rc);
	if ((s = calloc(1, sizeof *s)) == NULL) {
		free(r.body);
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		return (BERTH_ENOMEM);
	}
	s->json = r.body;
	s->obj = json_loads(r.body != NULL ? r.body : "", 0, NULL);
	if (!json_is_object(s->obj)) {
		/* 200, so a caller can tell "answered, but not berthd". */
		bhttp_set_error(err, BERTH_EPROTO, r.status, NULL, "the broker "
		    "at %s sent a status that is not JSON", c->addr.text);
		berth_info_free(s);
		return (BERTH_EPROTO);
	}
	if (out != NULL)
		*out = s;
	else
		berth_info_free(s);
	return (0);
}

BERTH_EXPORT int
berth_health(berth_client *c, berth_error *err)
{
	struct bhttp_response	r;
	int			rc;

	berth_reset(err);
	if ((rc = berth_call(c, "GET", "/v1/health", NULL, NULL, 0, &r,
	    err)) != 0)
		return (rc);
	free(r.body);
	return (0);
}
