/*
 * lease.c: what a lease is, how it reads as JSON, and the registry that
 * indexes the live ones in memory: by name (hash table), by port (direct
 * table) and by expiry (binary min-heap), so lookups, port checks and the
 * next expiry are O(1) or O(log n) whatever the number of leases.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berthd.h"

#define REGISTRY_MIN_BUCKETS	64

/* 1–63 characters, [a-z0-9] first, then [a-z0-9._-]. */
int
lease_name_valid(const char *s)
{
	size_t	i;

	if (s == NULL || s[0] == '\0')
		return (0);
	if (!islower((unsigned char)s[0]) && !isdigit((unsigned char)s[0]))
		return (0);
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= BERTH_NAME_MAX)
			return (0);
		if (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]))
			continue;
		if (s[i] != '.' && s[i] != '_' && s[i] != '-')
			return (0);
	}
	return (1);
}

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
	clock_format_rfc3339(ms, buf, sizeof buf);
	return (json_string(buf));
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
	o = json_pack("{s:s, s:i, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}",
	    "name", l->name,
	    "port", (int)l->port,
	    "proto", lease_proto_name(l->proto),
	    "host", l->host != NULL ? l->host : "127.0.0.1",
	    "ttl", (json_int_t)l->ttl,
	    "expires_at", lease_time_json(l->expires_at),
	    "pid", l->owner.pid > 0 ? json_integer(l->owner.pid) : json_null(),
	    "meta", meta,
	    "created_at", lease_time_json(l->created_at),
	    "renewed_at", lease_time_json(l->renewed_at));
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

/* Registry: hash by name. */

static size_t
registry_slot(const struct registry *r, const char *name)
{
	return (pool_name_hash(name) & (r->nbuckets - 1));
}

void
registry_init(struct registry *r)
{
	memset(r, 0, sizeof *r);
	TAILQ_INIT(&r->all);
	r->nbuckets = REGISTRY_MIN_BUCKETS;
	r->buckets = calloc(r->nbuckets, sizeof *r->buckets);
	r->nmemos = REGISTRY_MIN_BUCKETS;
	r->memos = calloc(r->nmemos, sizeof *r->memos);
	if (r->buckets == NULL || r->memos == NULL)
		fatal("registry: calloc");
}

/* Free every lease and memo; the registry is left empty and usable. */
void
registry_clear(struct registry *r)
{
	struct lease		*l;
	struct name_memo	*m, *next;
	size_t			 i;

	while ((l = TAILQ_FIRST(&r->all)) != NULL) {
		TAILQ_REMOVE(&r->all, l, entry);
		lease_free(l);
	}
	for (i = 0; i < r->nmemos; i++) {
		for (m = r->memos[i]; m != NULL; m = next) {
			next = m->next;
			free(m);
		}
	}
	free(r->buckets);
	free(r->memos);
	free(r->heap);
	registry_init(r);
}

static void
registry_grow(struct registry *r)
{
	struct lease	**old = r->buckets, *l, *next;
	size_t		  i, n = r->nbuckets;

	r->nbuckets = n * 2;
	if ((r->buckets = calloc(r->nbuckets, sizeof *r->buckets)) == NULL)
		fatal("registry: calloc");
	for (i = 0; i < n; i++) {
		for (l = old[i]; l != NULL; l = next) {
			next = l->hash_next;
			l->hash_next = r->buckets[registry_slot(r, l->name)];
			r->buckets[registry_slot(r, l->name)] = l;
		}
	}
	free(old);
}

struct lease *
registry_find(const struct registry *r, const char *name)
{
	struct lease	*l;

	for (l = r->buckets[registry_slot(r, name)]; l != NULL;
	    l = l->hash_next) {
		if (strcmp(l->name, name) == 0)
			return (l);
	}
	return (NULL);
}

struct lease *
registry_by_port(const struct registry *r, uint16_t port)
{
	return (r->by_port[port]);
}

/* Registry: expiry heap, keyed on expires_at; leases without a TTL stay out. */

static void
heap_swap(struct registry *r, size_t a, size_t b)
{
	struct lease	*t = r->heap[a];

	r->heap[a] = r->heap[b];
	r->heap[b] = t;
	r->heap[a]->heap_index = a;
	r->heap[b]->heap_index = b;
}

static void
heap_up(struct registry *r, size_t i)
{
	while (i > 0 && r->heap[(i - 1) / 2]->expires_at >
	    r->heap[i]->expires_at) {
		heap_swap(r, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct registry *r, size_t i)
{
	size_t	c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= r->heap_len)
			return;
		if (c + 1 < r->heap_len &&
		    r->heap[c + 1]->expires_at < r->heap[c]->expires_at)
			c++;
		if (r->heap[i]->expires_at <= r->heap[c]->expires_at)
			return;
		heap_swap(r, i, c);
		i = c;
	}
}

static void
heap_remove(struct registry *r, struct lease *l)
{
	size_t	i = l->heap_index;

	if (i == SIZE_MAX)
		return;
	l->heap_index = SIZE_MAX;
	if (i != --r->heap_len) {
		r->heap[i] = r->heap[r->heap_len];
		r->heap[i]->heap_index = i;
		heap_down(r, i);
		heap_up(r, i);
	}
}

/* Put l where its (new) expires_at belongs in the heap. */
void
registry_heap_update(struct registry *r, struct lease *l)
{
	if (l->expires_at == 0) {
		heap_remove(r, l);
		return;
	}
	if (l->heap_index == SIZE_MAX) {
		if (r->heap_len == r->heap_cap) {
			r->heap_cap = r->heap_cap ? r->heap_cap * 2 : 64;
			r->heap = realloc(r->heap, r->heap_cap * sizeof *r->heap);
			if (r->heap == NULL)
				fatal("registry: realloc");
		}
		l->heap_index = r->heap_len;
		r->heap[r->heap_len++] = l;
	}
	heap_down(r, l->heap_index);
	heap_up(r, l->heap_index);
}

struct lease *
registry_heap_top(const struct registry *r)
{
	return (r->heap_len > 0 ? r->heap[0] : NULL);
}

void
registry_add(struct registry *r, struct lease *l)
{
	size_t	slot;

	if (r->count + 1 > r->nbuckets)
		registry_grow(r);
	slot = registry_slot(r, l->name);
	l->hash_next = r->buckets[slot];
	r->buckets[slot] = l;
	r->by_port[l->port] = l;
	TAILQ_INSERT_TAIL(&r->all, l, entry);
	r->count++;
	registry_heap_update(r, l);
}

/* Unlink l from every index; the caller frees it. */
void
registry_remove(struct registry *r, struct lease *l)
{
	struct lease	**pp;

	for (pp = &r->buckets[registry_slot(r, l->name)]; *pp != NULL;
	    pp = &(*pp)->hash_next) {
		if (*pp == l) {
			*pp = l->hash_next;
			break;
		}
	}
	if (r->by_port[l->port] == l)
		r->by_port[l->port] = NULL;
	TAILQ_REMOVE(&r->all, l, entry);
	heap_remove(r, l);
	r->count--;
}

/* Registry: the last port of every name, for sticky ports. */

static struct name_memo *
registry_memo_find(const struct registry *r, const char *name)
{
	struct name_memo	*m;

	for (m = r->memos[pool_name_hash(name) & (r->nmemos - 1)]; m != NULL;
	    m = m->next) {
		if (strcmp(m->name, name) == 0)
			return (m);
	}
	return (NULL);
}

void
registry_memo_set(struct registry *r, const char *name, uint16_t port)
{
	struct name_memo	*m, **old, *next;
	size_t			 i, n, slot;

	if ((m = registry_memo_find(r, name)) != NULL) {
		m->port = port;
		return;
	}
	if (r->memo_count + 1 > r->nmemos) {
		old = r->memos;
		n = r->nmemos;
		r->nmemos *= 2;
		if ((r->memos = calloc(r->nmemos, sizeof *r->memos)) == NULL)
			fatal("registry: calloc");
		for (i = 0; i < n; i++) {
			for (m = old[i]; m != NULL; m = next) {
				next = m->next;
				slot = pool_name_hash(m->name) & (r->nmemos - 1);
				m->next = r->memos[slot];
				r->memos[slot] = m;
			}
		}
		free(old);
	}
	if ((m = calloc(1, sizeof *m)) == NULL)
		fatal("registry: calloc");
	snprintf(m->name, sizeof m->name, "%s", name);
	m->port = port;
	slot = pool_name_hash(name) & (r->nmemos - 1);
	m->next = r->memos[slot];
	r->memos[slot] = m;
	r->memo_count++;
}

int
registry_memo_get(const struct registry *r, const char *name, uint16_t *port)
{
	struct name_memo	*m;

	if ((m = registry_memo_find(r, name)) == NULL)
		return (-1);
	*port = m->port;
	return (0);
}
