/*
 * lease.c: the objects libberth hands out about leases, a lease and a
 * list of them, and the acquire options callers fill in. All are opaque
 * with accessors, so a new field is a new function and never a change of
 * size that callers compiled against.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"

/* A time field of the API object: ms since the epoch, 0 when absent. */
static int64_t
lease_time(json_t *o, const char *key)
{
	int64_t	ms;

	if (rfc3339_parse(json_string_value(json_object_get(o, key)),
	    &ms) == -1)
		return (0);
	return (ms);
}

/* A string field, "" when absent, so accessors never return NULL. */
static const char *
lease_str(const struct berth_lease *l, const char *key)
{
	const char	*s;

	s = json_string_value(json_object_get(l->obj, key));
	return (s != NULL ? s : "");
}

/* Fill l from one API lease object; 0, or -1 if it is not one. */
int
lease_from_json(json_t *o, struct berth_lease *l)
{
	json_t	*meta;

	memset(l, 0, sizeof *l);
	if (!json_is_object(o) || !json_is_string(json_object_get(o, "name")) ||
	    !json_is_integer(json_object_get(o, "port")))
		return (-1);
	l->obj = json_incref(o);
	meta = json_object_get(o, "meta");
	l->meta = json_is_object(meta) ? json_dumps(meta, JSON_COMPACT |
	    JSON_SORT_KEYS) : strdup("{}");
	l->json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (l->meta == NULL || l->json == NULL) {
		lease_clear(l);
		return (-1);
	}
	l->expires_at = lease_time(o, "expires_at");
	l->created_at = lease_time(o, "created_at");
	l->renewed_at = lease_time(o, "renewed_at");
	return (0);
}

void
lease_clear(struct berth_lease *l)
{
	json_decref(l->obj);
	free(l->json);
	free(l->meta);
	memset(l, 0, sizeof *l);
}

BERTH_EXPORT void
berth_lease_free(berth_lease *l)
{
	if (l == NULL)
		return;
	lease_clear(l);
	free(l);
}

BERTH_EXPORT const char *
berth_lease_name(const berth_lease *l)
{
	return (lease_str(l, "name"));
}

BERTH_EXPORT int
berth_lease_port(const berth_lease *l)
{
	return ((int)json_integer_value(json_object_get(l->obj, "port")));
}

BERTH_EXPORT const char *
berth_lease_proto(const berth_lease *l)
{
	return (lease_str(l, "proto"));
}

BERTH_EXPORT const char *
berth_lease_host(const berth_lease *l)
{
	return (lease_str(l, "host"));
}

BERTH_EXPORT long
berth_lease_ttl(const berth_lease *l)
{
	return ((long)json_integer_value(json_object_get(l->obj, "ttl")));
}

BERTH_EXPORT long
berth_lease_pid(const berth_lease *l)
{
	return ((long)json_integer_value(json_object_get(l->obj, "pid")));
}

BERTH_EXPORT int64_t
berth_lease_expires_at(const berth_lease *l)
{
	return (l->expires_at);
}

BERTH_EXPORT int64_t
berth_lease_created_at(const berth_lease *l)
{
	return (l->created_at);
}

BERTH_EXPORT int64_t
berth_lease_renewed_at(const berth_lease *l)
{
	return (l->renewed_at);
}

BERTH_EXPORT int
berth_lease_ready(const berth_lease *l)
{
	json_t	*ready = json_object_get(l->obj, "ready");

	if (!json_is_boolean(ready))
		return (-1);
	return (json_is_true(ready));
}

BERTH_EXPORT const char *
berth_lease_token(const berth_lease *l)
{
	return (lease_str(l, "token"));
}

BERTH_EXPORT const char *
berth_lease_meta(const berth_lease *l)
{
	return (l->meta);
}

BERTH_EXPORT const char *
berth_lease_meta_get(const berth_lease *l, const char *key)
{
	json_t	*meta = json_object_get(l->obj, "meta");

	if (key == NULL)
		return (NULL);
	return (json_string_value(json_object_get(meta, key)));
}

BERTH_EXPORT const char *
berth_lease_json(const berth_lease *l)
{
	return (l->json);
}

/* An instance in the cluster's view is published by definition. */
BERTH_EXPORT int
berth_lease_publish(const berth_lease *l)
{
	return (json_is_true(json_object_get(l->obj, "publish")) ||
	    berth_lease_node(l) != NULL);
}

/* NULL rather than "": a local lease has no node, and callers test that. */
BERTH_EXPORT const char *
berth_lease_node(const berth_lease *l)
{
	return (json_string_value(json_object_get(l->obj, "node")));
}

BERTH_EXPORT void
berth_leases_free(berth_leases *v)
{
	size_t	i;

	if (v == NULL)
		return;
	for (i = 0; i < v->n; i++)
		lease_clear(&v->v[i]);
	free(v->v);
	free(v);
}

BERTH_EXPORT size_t
berth_leases_count(const berth_leases *v)
{
	return (v != NULL ? v->n : 0);
}

BERTH_EXPORT const berth_lease *
berth_leases_get(const berth_leases *v, size_t i)
{
	if (v == NULL || i >= v->n)
		return (NULL);
	return (&v->v[i]);
}

BERTH_EXPORT uint64_t
berth_leases_index(const berth_leases *v)
{
	return (v != NULL ? v->index : 0);
}

BERTH_EXPORT int
berth_leases_stale(const berth_leases *v)
{
	return (v != NULL ? v->stale : 0);
}

/*
 * Copy a setter's string into *dst (NULL clears it). A failure is kept
 * in o->failed, so that a caller who does not check the setter still
 * learns of it from berth_acquire instead of acquiring the wrong lease.
 */
static int
lease_opts_str(berth_acquire_opts *o, char **dst, const char *s)
{
	char	*copy = NULL;

	if (s != NULL && (copy = strdup(s)) == NULL) {
		o->failed = BERTH_ENOMEM;
		return (BERTH_ENOMEM);
	}
	free(*dst);
	*dst = copy;
	return (0);
}

BERTH_EXPORT berth_acquire_opts *
berth_acquire_opts_new(const char *name)
{
	berth_acquire_opts	*o;

	if ((o = calloc(1, sizeof *o)) == NULL)
		return (NULL);
	if (name != NULL && (o->name = strdup(name)) == NULL) {
		free(o);
		return (NULL);
	}
	return (o);
}

BERTH_EXPORT void
berth_acquire_opts_free(berth_acquire_opts *o)
{
	size_t	i;

	if (o == NULL)
		return;
	for (i = 0; i < o->nmeta; i++) {
		free(o->meta[i].key);
		free(o->meta[i].value);
	}
	free(o->meta);
	free(o->name);
	free(o->proto);
	free(o->host);
	free(o->token);
	free(o);
}

BERTH_EXPORT int
berth_acquire_opts_set_name(berth_acquire_opts *o, const char *name)
{
	return (lease_opts_str(o, &o->name, name));
}

BERTH_EXPORT void
berth_acquire_opts_set_port(berth_acquire_opts *o, int port)
{
	o->port = port;
}

BERTH_EXPORT void
berth_acquire_opts_set_ttl(berth_acquire_opts *o, long ttl)
{
	o->ttl = ttl;
}

BERTH_EXPORT void
berth_acquire_opts_set_pid(berth_acquire_opts *o, long pid)
{
	o->pid = pid;
}

BERTH_EXPORT int
berth_acquire_opts_set_proto(berth_acquire_opts *o, const char *proto)
{
	return (lease_opts_str(o, &o->proto, proto));
}

BERTH_EXPORT int
berth_acquire_opts_set_host(berth_acquire_opts *o, const char *host)
{
	return (lease_opts_str(o, &o->host, host));
}

BERTH_EXPORT void
berth_acquire_opts_set_publish(berth_acquire_opts *o, int publish)
{
	o->publish = publish != 0;
}

BERTH_EXPORT int
berth_acquire_opts_set_token(berth_acquire_opts *o, const char *token)
{
	return (lease_opts_str(o, &o->token, token));
}

BERTH_EXPORT int
berth_acquire_opts_add_meta(berth_acquire_opts *o, const char *key,
    const char *value)
{
	struct berth_meta	*nm;

	if (key == NULL || value == NULL) {
		o->failed = BERTH_EINVAL;
		return (BERTH_EINVAL);
	}
	if ((nm = realloc(o->meta, (o->nmeta + 1) * sizeof *nm)) == NULL) {
		o->failed = BERTH_ENOMEM;
		return (BERTH_ENOMEM);
	}
	o->meta = nm;
	nm = &o->meta[o->nmeta];
	nm->key = strdup(key);
	nm->value = strdup(value);
	if (nm->key == NULL || nm->value == NULL) {
		free(nm->key);
		free(nm->value);
		o->failed = BERTH_ENOMEM;
		return (BERTH_ENOMEM);
	}
	o->nmeta++;
	return (0);
}

/*
 * The POST /v1/services body for o; NULL if it cannot be encoded (a
 * string that is not UTF-8), rather than a request without that field.
 */
json_t *
lease_acquire_body(const struct berth_acquire_opts *o)
{
	json_t	*b, *meta = NULL;
	size_t	 i;
	int	 bad = 0;

	if ((b = json_pack("{s:s}", "name", o->name)) == NULL)
		return (NULL);
	if (o->port > 0)
		bad |= json_object_set_new(b, "port", json_integer(o->port));
	if (o->proto != NULL)
		bad |= json_object_set_new(b, "proto", json_string(o->proto));
	if (o->host != NULL)
		bad |= json_object_set_new(b, "host", json_string(o->host));
	if (o->ttl > 0)
		bad |= json_object_set_new(b, "ttl", json_integer(o->ttl));
	if (o->pid > 0)
		bad |= json_object_set_new(b, "pid", json_integer(o->pid));
	/* Only when asked: a berthd older than the cluster refuses the field. */
	if (o->publish)
		bad |= json_object_set_new(b, "publish", json_true());
	if (o->nmeta > 0) {
		meta = json_object();
		for (i = 0; i < o->nmeta; i++)
			bad |= json_object_set_new(meta, o->meta[i].key,
			    json_string(o->meta[i].value));
		bad |= json_object_set_new(b, "meta", meta);
	}
	if (bad) {
		json_decref(b);
		return (NULL);
	}
	return (b);
}
