/*
 * lease.c: what a lease is, which names, hosts and protocols it may have,
 * and how it reads as JSON. The registry (registry.c) indexes them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/*
 * A host clients should connect to: an IPv4 or IPv6 literal, or a DNS
 * name (letters, digits, '-', '.', labels of at most 63 characters).
 */
int
lease_host_valid(const char *s)
{
	struct in6_addr	a6;
	struct in_addr	a4;
	size_t		i, label = 0;

	if (s == NULL || s[0] == '\0' || strlen(s) > BERTH_HOST_MAX)
		return (0);
	if (inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1)
		return (1);
	/* Labels of letters, digits and '-', neither first nor last. */
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return (0);
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return (0);
		if (s[i] == '-' && label == 0)
			return (0);
		if (++label > 63)
			return (0);
	}
	return (label > 0 && s[i - 1] != '-');
}

const char *
lease_proto_name(int proto)
{
	switch (proto) {
	case PROTO_UDP:
		return ("udp");
	case PROTO_BOTH:
		return ("both");
	default:
		return ("tcp");
	}
}

int
lease_proto_parse(const char *s)
{
	if (strcmp(s, "tcp") == 0)
		return (PROTO_TCP);
	if (strcmp(s, "udp") == 0)
		return (PROTO_UDP);
	if (strcmp(s, "both") == 0)
		return (PROTO_BOTH);
	return (-1);
}

const char *
lease_state_name(enum lease_state s)
{
	static const char *const names[] = { "live", "released", "expired",
	    "owner_dead", "revoked", "taken_over" };

	return (names[s]);
}

/* Past its TTL at time now? Such a lease is never shown, recorded or not. */
int
lease_expired(const struct lease *l, uint64_t now)
{
	return (l->expires_at != 0 && l->expires_at <= now);
}

struct lease *
lease_new(void)
{
	struct lease	*l;

	if ((l = calloc(1, sizeof *l)) == NULL)
		return (NULL);
	l->heap_index = SIZE_MAX;
	l->proto = PROTO_TCP;
	l->uid = -1;
	return (l);
}

void
lease_free(struct lease *l)
{
	if (l == NULL)
		return;
	free(l->host);
	free(l->meta);
	free(l->json_text);
	free(l);
}

static json_t *
lease_time_json(uint64_t ms)
{
	char	buf[32];

	if (ms == 0)
		return (json_null());
	rfc3339_format((int64_t)clock_wall_ms(ms), buf, sizeof buf);
	return (json_string(buf));
}

/* "ready": true, false, or null when berthd cannot tell. */
static json_t *
lease_ready_json(enum lease_ready ready)
{
	switch (ready) {
	case LEASE_READY:
		return (json_true());
	case LEASE_NOT_READY:
		return (json_false());
	default:
		return (json_null());
	}
}

/* The lease as the API shows it; the token only when with_token is set. */
json_t *
lease_to_json(const struct lease *l, int with_token)
{
	json_t	*o, *meta = NULL;

	if (l->meta != NULL)
		meta = json_loads(l->meta, 0, NULL);
	if (meta == NULL)
		meta = json_object();
	o = json_pack("{s:s, s:i, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o, "
	    "s:o, s:o, s:b}",
	    "name", l->name,
	    "port", (int)l->port,
	    "proto", lease_proto_name(l->proto),
	    "host", l->host != NULL ? l->host : "127.0.0.1",
	    "ttl", (json_int_t)l->ttl,
	    "expires_at", lease_time_json(l->expires_at),
	    "pid", l->owner.pid > 0 ? json_integer(l->owner.pid) : json_null(),
	    "meta", meta,
	    "created_at", lease_time_json(l->created_at),
	    "renewed_at", lease_time_json(l->renewed_at),
	    "uid", l->uid >= 0 ? json_integer(l->uid) : json_null(),
	    "ready", lease_ready_json(l->ready),
	    "publish", l->publish);
	if (o != NULL && with_token)
		json_object_set_new(o, "token", json_string(l->token));
	return (o);
}

/*
 * The lease as lookups answer it (no token), as JSON text ending in a
 * newline, built once and kept until the lease changes: a lookup then
 * costs a copy, not a JSON encoding. NULL if out of memory.
 */
const char *
lease_json_text(struct lease *l, size_t *len)
{
	json_t	*o;
	char	*text;

	if (l->json_text == NULL) {
		o = lease_to_json(l, 0);
		text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (text == NULL)
			return (NULL);
		l->json_len = strlen(text) + 1;
		if ((l->json_text = realloc(text, l->json_len + 1)) == NULL) {
			free(text);
			return (NULL);
		}
		l->json_text[l->json_len - 1] = '\n';
		l->json_text[l->json_len] = '\0';
	}
	*len = l->json_len;
	return (l->json_text);
}

/* The lease changed: its JSON text must be built again. */
void
lease_json_forget(struct lease *l)
{
	free(l->json_text);
	l->json_text = NULL;
}
