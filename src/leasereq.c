/*
 * leasereq.c: the JSON bodies of POST /v1/services and of renew, checked
 * field by field. Unknown fields are refused rather than ignored, so a typo
 * ("tll") is an error the caller sees instead of a lease without a TTL.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define PID_MAX_LINUX	4194304

void
leasereq_clear(struct lease_req *r)
{
	free(r->meta);
	r->meta = NULL;
}

/* Parse a JSON object body; an empty body counts as {} when allow_empty. */
static json_t *
leasereq_load(const char *body, size_t len, int allow_empty, struct berr *e)
{
	json_error_t	 jerr;
	json_t		*o;

	if (len == 0 && allow_empty)
		return (json_object());
	/* NULs are let through the parser so they fail as the field's error. */
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (o == NULL) {
		berr_set(e, BERR_BAD_JSON, "request body is not valid JSON: "
		    "%s (line %d, column %d)", jerr.text, jerr.line,
		    jerr.column);
		return (NULL);
	}
	if (!json_is_object(o)) {
		berr_set(e, BERR_BAD_JSON, "request body must be a JSON "
		    "object");
		json_decref(o);
		return (NULL);
	}
	return (o);
}

/* A JSON string with no NUL inside, or NULL. */
static const char *
leasereq_str(json_t *v)
{
	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return (NULL);
	return (json_string_value(v));
}

static int
leasereq_int(json_t *v, const char *field, json_int_t lo, json_int_t hi,
    json_int_t *out, struct berr *e)
{
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi) {
		berr_set(e, BERR_INVALID_FIELD, "'%s' must be an integer "
		    "from %lld to %lld", field, (long long)lo, (long long)hi);
		return (-1);
	}
	*out = json_integer_value(v);
	return (0);
}

static int
leasereq_meta(json_t *v, struct lease_req *r, struct berr *e)
{
	const char	*k;
	json_t		*val;

	if (!json_is_object(v)) {
		berr_set(e, BERR_INVALID_FIELD, "'meta' must be an object "
		    "of string values");
		return (-1);
	}
	json_object_foreach(v, k, val) {
		if (leasereq_str(val) == NULL) {
			berr_set(e, BERR_INVALID_FIELD, "'meta.%.64s' must "
			    "be a string without NUL characters", k);
			return (-1);
		}
		if (k[0] == '\0') {
			berr_set(e, BERR_INVALID_FIELD, "'meta' keys must "
			    "be non-empty");
			return (-1);
		}
	}
	r->meta = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	if (r->meta == NULL || strlen(r->meta) > BERTH_META_MAX) {
		berr_set(e, BERR_INVALID_FIELD, "'meta' must be at most %d "
		    "bytes encoded", BERTH_META_MAX);
		return (-1);
	}
	return (0);
}

/* One field of an acquire body into r; -1 with e set if it is wrong. */
static int
leasereq_field(const char *k, json_t *v, struct lease_req *r, struct berr *e)
{
	json_int_t	n;

	if (strcmp(k, "name") == 0) {
		if (!names_valid(leasereq_str(v))) {
			berr_set(e, BERR_INVALID_NAME, "'name' must be "
			    BERTH_NAME_RULE);
			return (-1);
		}
		snprintf(r->name, sizeof r->name, "%s", json_string_value(v));
	} else if (strcmp(k, "port") == 0) {
		if (json_is_null(v))
			return (0);
		if (leasereq_int(v, k, 1, 65535, &n, e) == -1)
			return (-1);
		r->port = (uint16_t)n;
	} else if (strcmp(k, "proto") == 0) {
		if (leasereq_str(v) == NULL ||
		    (r->proto = lease_proto_parse(json_string_value(v))) == -1) {
			berr_set(e, BERR_INVALID_FIELD, "'proto' must be "
			    "\"tcp\", \"udp\" or \"both\"");
			return (-1);
		}
	} else if (strcmp(k, "host") == 0) {
		if (!lease_host_valid(leasereq_str(v))) {
			berr_set(e, BERR_INVALID_FIELD, "'host' must be an IP "
			    "address or a DNS name of at most %d characters",
			    BERTH_HOST_MAX);
			return (-1);
		}
		snprintf(r->host, sizeof r->host, "%s", json_string_value(v));
		r->has_host = 1;
	} else if (strcmp(k, "publish") == 0) {
		if (!json_is_boolean(v) && !json_is_null(v)) {
			berr_set(e, BERR_INVALID_FIELD, "'publish' must be "
			    "true or false");
			return (-1);
		}
		r->publish = json_is_true(v);
	} else if (strcmp(k, "ttl") == 0) {
		if (leasereq_int(v, k, 0, BERTH_TTL_MAX, &n, e) == -1)
			return (-1);
		r->ttl = (uint32_t)n;
		r->has_ttl = 1;
	} else if (strcmp(k, "pid") == 0) {
		if (json_is_null(v))
			return (0);
		if (leasereq_int(v, k, 1, PID_MAX_LINUX, &n, e) == -1)
			return (-1);
		/* init never exits: its lease would never end. */
		if (n == 1) {
			berr_set(e, BERR_INVALID_FIELD, "'pid' 1 is init, "
			    "which never exits: give the owner's own pid, or "
			    "none and a ttl");
			return (-1);
		}
		r->pid = (pid_t)n;
	} else if (strcmp(k, "meta") == 0) {
		if (json_is_null(v))
			return (0);
		free(r->meta);
		r->meta = NULL;
		return (leasereq_meta(v, r, e));
	} else {
		berr_set(e, BERR_INVALID_FIELD, "unknown field '%.64s' (known: "
		    "name, port, proto, host, ttl, pid, meta, publish)", k);
		return (-1);
	}
	return (0);
}

/* Validate an acquire body into r. r->meta must be freed with leasereq_clear. */
int
leasereq_parse(const char *body, size_t len, struct lease_req *r,
    struct berr *e)
{
	json_t		*o, *v;
	const char	*k;

	memset(r, 0, sizeof *r);
	r->uid = -1;
	r->proto = PROTO_TCP;
	snprintf(r->host, sizeof r->host, "%s", BERTH_DEFAULT_HOST);
	if ((o = leasereq_load(body, len, 0, e)) == NULL)
		return (-1);
	json_object_foreach(o, k, v) {
		if (leasereq_field(k, v, r, e) == -1) {
			json_decref(o);
			leasereq_clear(r);
			return (-1);
		}
	}
	json_decref(o);
	if (r->name[0] == '\0') {
		berr_set(e, BERR_INVALID_NAME, "'name' is required");
		leasereq_clear(r);
		return (-1);
	}
	return (0);
}

/* The optional renew body {"ttl": S}; an empty body keeps the TTL. */
int
leasereq_parse_renew(const char *body, size_t len, uint32_t *ttl, int *has_ttl,
    struct berr *e)
{
	json_t		*o, *v;
	const char	*k;
	json_int_t	 n;
	int		 rc = 0;

	*has_ttl = 0;
	if ((o = leasereq_load(body, len, 1, e)) == NULL)
		return (-1);
	json_object_foreach(o, k, v) {
		if (strcmp(k, "ttl") != 0) {
			berr_set(e, BERR_INVALID_FIELD, "unknown field "
			    "'%.64s' (renew takes only 'ttl')", k);
			rc = -1;
			break;
		}
		if (leasereq_int(v, k, 0, BERTH_TTL_MAX, &n, e) == -1) {
			rc = -1;
			break;
		}
		*ttl = (uint32_t)n;
		*has_ttl = 1;
	}
	json_decref(o);
	return (rc);
}
