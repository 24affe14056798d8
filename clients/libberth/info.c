/*
 * info.c: what the broker says about itself, its status (GET /v1/status)
 * and the nodes of its cluster (GET /v1/cluster/nodes), as opaque objects
 * with accessors, so callers read fields rather than parse JSON. A field
 * the broker did not send reads as NULL or -1 (a node's strings as ""):
 * an older or newer berthd still gives what it has.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"

/* A whole number at o.key, -1 when absent or not a number. */
static int64_t
info_int(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	return (json_is_integer(v) ? (int64_t)json_integer_value(v) : -1);
}

/* An array's length, -1 when it is not an array. */
static int
info_count(json_t *a)
{
	return (json_is_array(a) ? (int)json_array_size(a) : -1);
}

/* The i-th string of an array, NULL past its end or when not a string. */
static const char *
info_item(json_t *a, int i)
{
	if (i < 0)
		return (NULL);
	return (json_string_value(json_array_get(a, (size_t)i)));
}

BERTH_EXPORT void
berth_info_free(berth_info *s)
{
	if (s == NULL)
		return;
	json_decref(s->obj);
	free(s->json);
	free(s);
}

BERTH_EXPORT const char *
berth_info_version(const berth_info *s)
{
	return (json_string_value(json_object_get(s->obj, "version")));
}

BERTH_EXPORT int64_t
berth_info_uptime(const berth_info *s)
{
	return (info_int(s->obj, "uptime"));
}

BERTH_EXPORT int
berth_info_listen_count(const berth_info *s)
{
	return (info_count(json_object_get(s->obj, "listen")));
}

BERTH_EXPORT const char *
berth_info_listen(const berth_info *s, int i)
{
	return (info_item(json_object_get(s->obj, "listen"), i));
}

BERTH_EXPORT int64_t
berth_info_leases(const berth_info *s)
{
	return (info_int(s->obj, "leases"));
}

BERTH_EXPORT int64_t
berth_info_waiters(const berth_info *s)
{
	return (info_int(s->obj, "waiters"));
}

BERTH_EXPORT const char *
berth_info_db(const berth_info *s)
{
	return (json_string_value(json_object_get(s->obj, "db")));
}

BERTH_EXPORT int
berth_info_db_ok(const berth_info *s)
{
	json_t	*v = json_object_get(s->obj, "db_ok");

	return (json_is_boolean(v) ? json_is_true(v) : -1);
}

BERTH_EXPORT int64_t
berth_info_pool_size(const berth_info *s)
{
	return (info_int(json_object_get(s->obj, "pool"), "size"));
}

BERTH_EXPORT int64_t
berth_info_pool_free(const berth_info *s)
{
	return (info_int(json_object_get(s->obj, "pool"), "free"));
}

BERTH_EXPORT int
berth_info_pool_range_count(const berth_info *s)
{
	return (info_count(json_object_get(json_object_get(s->obj, "pool"),
	    "ranges")));
}

BERTH_EXPORT const char *
berth_info_pool_range(const berth_info *s, int i)
{
	return (info_item(json_object_get(json_object_get(s->obj, "pool"),
	    "ranges"), i));
}

BERTH_EXPORT int
berth_info_pool_fallback(const berth_info *s)
{
	return (json_is_true(json_object_get(json_object_get(s->obj, "pool"),
	    "fallback")));
}

BERTH_EXPORT const char *
berth_info_pid_namespace(const berth_info *s)
{
	return (json_string_value(json_object_get(s->obj, "pid_namespace")));
}

BERTH_EXPORT const char *
berth_info_boot_id(const berth_info *s)
{
	return (json_string_value(json_object_get(s->obj, "boot_id")));
}

BERTH_EXPORT const char *
berth_info_portserver(const berth_info *s)
{
	return (json_string_value(json_object_get(json_object_get(s->obj,
	    "portserver"), "address")));
}

BERTH_EXPORT const char *
berth_info_json(const berth_info *s)
{
	return (s->json);
}

/* "cluster" is null without --cluster, and absent from an older berthd. */
BERTH_EXPORT const char *
berth_info_cluster_node(const berth_info *s)
{
	return (json_string_value(json_object_get(json_object_get(s->obj,
	    "cluster"), "node")));
}

BERTH_EXPORT int
berth_info_cluster_connected(const berth_info *s)
{
	json_t	*v = json_object_get(json_object_get(s->obj, "cluster"),
	    "connected");

	return (json_is_boolean(v) ? json_is_true(v) : -1);
}

/* Fill n from one API node object; 0, or -1 if it is not one. */
static int
info_node_from_json(json_t *o, struct berth_node *n)
{
	int64_t	ms;

	memset(n, 0, sizeof *n);
	if (!json_is_object(o) || !json_is_string(json_object_get(o, "node")))
		return (-1);
	if ((n->json = json_dumps(o, JSON_COMPACT |
	    JSON_PRESERVE_ORDER)) == NULL)
		return (-1);
	n->obj = json_incref(o);
	if (rfc3339_parse(json_string_value(json_object_get(o, "joined_at")),
	    &ms) == 0)
		n->joined_at = ms;
	return (0);
}

/*
 * The nodes of a GET /v1/cluster/nodes answer into v, skipping any entry
 * that is not a node (as a list skips what is not a lease). 0, or -1 when
 * the answer has no list of nodes or memory runs out.
 */
int
info_nodes_from_json(json_t *j, struct berth_nodes *v)
{
	json_t	*arr = json_object_get(j, "nodes"), *o;
	size_t	 i;

	memset(v, 0, sizeof *v);
	if (!json_is_array(arr))
		return (-1);
	if ((v->v = calloc(json_array_size(arr) + 1, sizeof *v->v)) == NULL)
		return (-1);
	json_array_foreach(arr, i, o) {
		if (info_node_from_json(o, &v->v[v->n]) == 0)
			v->n++;
	}
	return (0);
}

BERTH_EXPORT void
berth_nodes_free(berth_nodes *v)
{
	size_t	i;

	if (v == NULL)
		return;
	for (i = 0; i < v->n; i++) {
		json_decref(v->v[i].obj);
		free(v->v[i].json);
	}
	free(v->v);
	free(v);
}

BERTH_EXPORT size_t
berth_nodes_count(const berth_nodes *v)
{
	return (v != NULL ? v->n : 0);
}

BERTH_EXPORT const berth_node *
berth_nodes_get(const berth_nodes *v, size_t i)
{
	if (v == NULL || i >= v->n)
		return (NULL);
	return (&v->v[i]);
}

/* A node's string field, "" when absent, so accessors never return NULL. */
static const char *
info_node_str(const berth_node *n, const char *key)
{
	const char	*s = json_string_value(json_object_get(n->obj, key));

	return (s != NULL ? s : "");
}

BERTH_EXPORT const char *
berth_node_name(const berth_node *n)
{
	return (info_node_str(n, "node"));
}

BERTH_EXPORT const char *
berth_node_address(const berth_node *n)
{
	return (info_node_str(n, "address"));
}

BERTH_EXPORT const char *
berth_node_version(const berth_node *n)
{
	return (info_node_str(n, "version"));
}

BERTH_EXPORT int64_t
berth_node_joined_at(const berth_node *n)
{
	return (n->joined_at);
}

BERTH_EXPORT const char *
berth_node_json(const berth_node *n)
{
	return (n->json);
}
