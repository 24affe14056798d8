/*
 * info.c: the broker's status (GET /v1/status) as an opaque object with
 * accessors, so callers read fields rather than parse JSON. A field the
 * broker did not send reads as NULL or -1: an older or newer berthd still
 * gives what it has.
 */
#include "config.h"

#include <stdlib.h>

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
