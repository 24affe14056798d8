/*
 * client.c: libberth's public calls: each builds its request, sends it
 * over the client's connection (http.c) and turns the JSON answer into a
 * berth_lease or a berth_error.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http.h"

#define BERTH_EXPORT	__attribute__((visibility("default")))
#define BERTH_TIMEOUT_MS	10000

BERTH_EXPORT int
berth_name_valid(const char *s)
{
	size_t	i;

	if (s == NULL || !(islower((unsigned char)s[0]) ||
	    isdigit((unsigned char)s[0])))
		return (0);
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 63)
			return (0);
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '_' && s[i] != '-')
			return (0);
	}
	return (1);
}

BERTH_EXPORT const char *
berth_strerror(int code)
{
	static const char *const msgs[] = {
		"success", "invalid argument", "broker unreachable",
		"timed out", "protocol error", "not found", "conflict",
		"forbidden", "unavailable", "broker error", "out of memory"
	};

	if (code < 0)
		code = -code;
	if (code >= (int)(sizeof msgs / sizeof msgs[0]))
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
	return (c->addr);
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

BERTH_EXPORT void
berth_free(void *p)
{
	free(p);
}

BERTH_EXPORT void
berth_lease_clear(berth_lease *l)
{
	if (l == NULL)
		return;
	free(l->meta);
	free(l->json);
	memset(l, 0, sizeof *l);
}

BERTH_EXPORT void
berth_leases_free(berth_lease *v, size_t n)
{
	size_t	i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		berth_lease_clear(&v[i]);
	free(v);
}

static int
berth_code_for(int status)
{
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
	int		 berr = berth_code_for(r->status);

	j = r->body != NULL ? json_loads(r->body, 0, NULL) : NULL;
	if ((e = json_object_get(j, "error")) != NULL) {
		code = json_string_value(json_object_get(e, "code"));
		msg = json_string_value(json_object_get(e, "message"));
	}
	if (msg != NULL)
		bhttp_set_error(err, berr, r->status, code, "%s (%s)", msg,
		    code != NULL ? code : "error");
	else
		bhttp_set_error(err, berr, r->status, NULL, "broker at %s "
		    "answered %d", c->addr, r->status);
	json_decref(j);
	free(r->body);
	r->body = NULL;
	return (-berr);
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

static void
berth_copy_str(char *dst, size_t len, json_t *v)
{
	snprintf(dst, len, "%s", json_is_string(v) ? json_string_value(v) :
	    "");
}

/* Fill l from one API lease object; 0, or -1 if it is not one. */
static int
berth_lease_from_json(json_t *o, berth_lease *l)
{
	json_t	*meta;

	memset(l, 0, sizeof *l);
	if (!json_is_object(o) || !json_is_string(json_object_get(o, "name")) ||
	    !json_is_integer(json_object_get(o, "port")))
		return (-1);
	berth_copy_str(l->name, sizeof l->name, json_object_get(o, "name"));
	l->port = (int)json_integer_value(json_object_get(o, "port"));
	berth_copy_str(l->proto, sizeof l->proto, json_object_get(o, "proto"));
	berth_copy_str(l->host, sizeof l->host, json_object_get(o, "host"));
	l->ttl = (long)json_integer_value(json_object_get(o, "ttl"));
	berth_copy_str(l->expires_at, sizeof l->expires_at,
	    json_object_get(o, "expires_at"));
	l->pid = (long)json_integer_value(json_object_get(o, "pid"));
	berth_copy_str(l->created_at, sizeof l->created_at,
	    json_object_get(o, "created_at"));
	berth_copy_str(l->renewed_at, sizeof l->renewed_at,
	    json_object_get(o, "renewed_at"));
	berth_copy_str(l->token, sizeof l->token, json_object_get(o, "token"));
	meta = json_object_get(o, "meta");
	l->meta = json_dumps(json_is_object(meta) ? meta : json_object(),
	    JSON_COMPACT | JSON_SORT_KEYS);
	l->json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (l->meta == NULL || l->json == NULL) {
		berth_lease_clear(l);
		return (-1);
	}
	return (0);
}

/* Parse a lease answer into out (which may be NULL). */
static int
berth_lease_answer(berth_client *c, struct bhttp_response *r,
    berth_lease *out, berth_error *err)
{
	json_t	*j;
	int	 rc = 0;

	if (out == NULL) {
		free(r->body);
		return (0);
	}
	j = json_loads(r->body != NULL ? r->body : "", 0, NULL);
	if (berth_lease_from_json(j, out) == -1) {
		bhttp_set_error(err, BERTH_EPROTO, r->status, NULL, "broker at "
		    "%s sent a lease that is not one", c->addr);
		rc = -BERTH_EPROTO;
	}
	json_decref(j);
	free(r->body);
	return (rc);
}

static int
berth_check_name(const char *name, berth_error *err)
{
	if (berth_name_valid(name))
		return (0);
	bhttp_set_error(err, BERTH_EINVAL, 0, "invalid_name", "'%s' is not a "
	    "valid name: 1-63 characters, [a-z0-9] first, then [a-z0-9._-]",
	    name != NULL ? name : "");
	return (-BERTH_EINVAL);
}

static json_t *
berth_acquire_body(const berth_acquire_opts *o)
{
	json_t	*b, *meta;
	size_t	 i;

	b = json_pack("{s:s}", "name", o->name);
	if (o->port > 0)
		json_object_set_new(b, "port", json_integer(o->port));
	if (o->proto != NULL)
		json_object_set_new(b, "proto", json_string(o->proto));
	if (o->host != NULL)
		json_object_set_new(b, "host", json_string(o->host));
	if (o->ttl > 0)
		json_object_set_new(b, "ttl", json_integer(o->ttl));
	if (o->pid > 0)
		json_object_set_new(b, "pid", json_integer(o->pid));
	if (o->nmeta > 0) {
		meta = json_object();
		for (i = 0; i < o->nmeta; i++)
			json_object_set_new(meta, o->meta[i].key,
			    json_string(o->meta[i].value));
		json_object_set_new(b, "meta", meta);
	}
	return (b);
}

BERTH_EXPORT int
berth_acquire(berth_client *c, const berth_acquire_opts *o, berth_lease *out,
    berth_error *err)
{
	struct bhttp_response	 r;
	json_t			*b;
	char			*body;
	int			 rc;

	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (o == NULL || (rc = berth_check_name(o->name, err)) != 0)
		return (o == NULL ? -BERTH_EINVAL : rc);
	b = berth_acquire_body(o);
	body = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	if (body == NULL) {
		bhttp_set_error(err, BERTH_EINVAL, 0, NULL, "cannot encode the "
		    "request (meta keys and values must be UTF-8)");
		return (-BERTH_EINVAL);
	}
	rc = berth_call(c, "POST", "/v1/services", o->token, body, 0, &r, err);
	free(body);
	if (rc != 0)
		return (rc);
	return (berth_lease_answer(c, &r, out, err));
}

BERTH_EXPORT int
berth_renew(berth_client *c, const char *name, const char *token, long ttl,
    berth_lease *out, berth_error *err)
{
	struct bhttp_response	 r;
	char			 path[128], body[64];
	int			 rc;

	if (out != NULL)
		memset(out, 0, sizeof *out);
	if ((rc = berth_check_name(name, err)) != 0)
		return (rc);
	snprintf(path, sizeof path, "/v1/services/%s/renew", name);
	snprintf(body, sizeof body, "{\"ttl\":%ld}", ttl);
	if ((rc = berth_call(c, "POST", path, token, ttl >= 0 ? body : NULL, 0,
	    &r, err)) != 0)
		return (rc);
	return (berth_lease_answer(c, &r, out, err));
}

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

static int
berth_clamp_wait(int wait)
{
	return (wait < 0 ? 0 : wait > 300 ? 300 : wait);
}

BERTH_EXPORT int
berth_lookup(berth_client *c, const char *name, int wait, berth_lease *out,
    berth_error *err)
{
	struct bhttp_response	r;
	char			path[160];
	int			rc;

	if (out != NULL)
		memset(out, 0, sizeof *out);
	if ((rc = berth_check_name(name, err)) != 0)
		return (rc);
	wait = berth_clamp_wait(wait);
	if (wait > 0)
		snprintf(path, sizeof path, "/v1/services/%s?wait=%d", name,
		    wait);
	else
		snprintf(path, sizeof path, "/v1/services/%s", name);
	if ((rc = berth_call(c, "GET", path, NULL, NULL, wait, &r, err)) != 0)
		return (rc);
	return (berth_lease_answer(c, &r, out, err));
}

BERTH_EXPORT int
berth_list(berth_client *c, uint64_t index, int wait, berth_lease **out,
    size_t *n, uint64_t *index_out, berth_error *err)
{
	struct bhttp_response	 r;
	json_t			*j, *arr, *o;
	char			 path[96];
	size_t			 i;
	int			 rc;

	*out = NULL;
	*n = 0;
	wait = berth_clamp_wait(wait);
	if (index > 0 && wait > 0)
		snprintf(path, sizeof path, "/v1/services?index=%llu&wait=%d",
		    (unsigned long long)index, wait);
	else
		snprintf(path, sizeof path, "/v1/services");
	if ((rc = berth_call(c, "GET", path, NULL, NULL, index > 0 ? wait : 0,
	    &r, err)) != 0)
		return (rc);
	j = json_loads(r.body != NULL ? r.body : "", 0, NULL);
	free(r.body);
	arr = json_object_get(j, "services");
	if (!json_is_array(arr)) {
		json_decref(j);
		bhttp_set_error(err, BERTH_EPROTO, 200, NULL, "broker at %s "
		    "sent a list that is not one", c->addr);
		return (-BERTH_EPROTO);
	}
	if ((*out = calloc(json_array_size(arr) + 1, sizeof **out)) == NULL) {
		json_decref(j);
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		return (-BERTH_ENOMEM);
	}
	json_array_foreach(arr, i, o) {
		if (berth_lease_from_json(o, &(*out)[*n]) == 0)
			(*n)++;
	}
	if (index_out != NULL)
		*index_out = (uint64_t)json_integer_value(json_object_get(j,
		    "index"));
	json_decref(j);
	return (0);
}

BERTH_EXPORT int
berth_status(berth_client *c, char **json, berth_error *err)
{
	struct bhttp_response	r;
	int			rc;

	*json = NULL;
	if ((rc = berth_call(c, "GET", "/v1/status", NULL, NULL, 0, &r,
	    err)) != 0)
		return (rc);
	*json = r.body;
	return (0);
}

BERTH_EXPORT int
berth_health(berth_client *c, berth_error *err)
{
	struct bhttp_response	r;
	int			rc;

	if ((rc = berth_call(c, "GET", "/v1/health", NULL, NULL, 0, &r,
	    err)) != 0)
		return (rc);
	free(r.body);
	return (0);
}
