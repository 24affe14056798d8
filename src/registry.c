/*
 * registry.c: the live leases in memory, indexed by name (nametab.c), by
 * port (a direct table) and by expiry (a binary min-heap), so lookups,
 * port checks and the next expiry are O(1) or O(log n) whatever the
 * number of leases; and the last port of every name (sticky ports).
 *
 * The list of live leases, as GET /v1/services answers it, is JSON text
 * built once for each change index (from each lease's cached text, so no
 * meta is parsed again) and shared, by reference count, by every answer
 * that carries it: a thousand watchers woken by one change cost one copy.
 *
 * Whatever can fail for want of memory fails before anything is linked,
 * so a refused add leaves the registry as it was.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define REGISTRY_MIN_BUCKETS	64
#define REGISTRY_MIN_HEAP	64
#define REGISTRY_LIST_HEAD	"{\"services\":["
#define REGISTRY_LIST_TAIL	"],\"index\":"	/* N}\n */

/* The list as last built, and what it showed. */
struct registry_list {
	struct registry_text	*text;		/* NULL: none built yet */
	uint64_t		 index;		/* the change index it shows */
	uint64_t		 version;	/* the registry's, then */
	uint64_t		 built_at;	/* ms */
	uint64_t		 until;		/* ms: its first lease expires */
};

/*
 * The last port a name held, what makes ports sticky; and the hash of its
 * last lease's token while that lease may be reclaimed.
 */
struct name_memo {
	struct nametab_entry	 node;
	char			 name[BERTH_NAME_MAX + 1];
	uint16_t		 port;
	uint8_t			 has_hash;
	unsigned char		 hash[BERTH_TOKEN_HASH];
	uint64_t		 freed_at;	/* 0: a live lease holds it */
	TAILQ_ENTRY(name_memo)	 freed;		/* in r->freed if freed_at */
};

#define LEASE_OF(e)	((struct lease *)(void *)((char *)(e) - \
			    offsetof(struct lease, node)))
#define MEMO_OF(e)	((struct name_memo *)(void *)((char *)(e) - \
			    offsetof(struct name_memo, node)))

int
registry_init(struct registry *r)
{
	memset(r, 0, sizeof *r);
	TAILQ_INIT(&r->all);
	TAILQ_INIT(&r->freed);
	if (nametab_init(&r->names, REGISTRY_MIN_BUCKETS) == -1 ||
	    nametab_init(&r->memos, REGISTRY_MIN_BUCKETS) == -1) {
		nametab_free(&r->names);
		return (-1);
	}
	if ((r->list = calloc(1, sizeof *r->list)) == NULL) {
		nametab_free(&r->names);
		nametab_free(&r->memos);
		return (-1);
	}
	return (0);
}

/* Free every lease and memo and the indexes themselves. */
void
registry_free(struct registry *r)
{
	struct lease		*l;
	struct nametab_entry	*e;
	size_t			 cursor = 0;

	while ((l = TAILQ_FIRST(&r->all)) != NULL) {
		TAILQ_REMOVE(&r->all, l, entry);
		lease_free(l);
	}
	while ((e = nametab_next(&r->memos, &cursor)) != NULL) {
		nametab_remove(&r->memos, e);
		free(MEMO_OF(e));
	}
	nametab_free(&r->names);
	nametab_free(&r->memos);
	free(r->heap);
	if (r->list != NULL)
		registry_text_unref(r->list->text);
	free(r->list);
	memset(r, 0, sizeof *r);
	TAILQ_INIT(&r->all);
	TAILQ_INIT(&r->freed);
}

/*
 * Free every lease and memo; the registry is left empty and usable. Its
 * version goes on from where it was, so that a list built before is not
 * taken for one of the leases loaded now.
 */
int
registry_clear(struct registry *r)
{
	uint64_t	version = r->version;

	registry_free(r);
	if (registry_init(r) == -1)
		return (-1);
	r->version = version + 1;
	return (0);
}

size_t
registry_count(const struct registry *r)
{
	return (r->names.count);
}

struct lease *
registry_find(const struct registry *r, const char *name)
{
	struct nametab_entry	*e = nametab_find(&r->names, name);

	return (e != NULL ? LEASE_OF(e) : NULL);
}

struct lease *
registry_by_port(const struct registry *r, uint16_t port)
{
	return (r->by_port[port]);
}

/* Expiry heap, keyed on expires_at; leases without a TTL stay out. */

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

/* Room for one more lease in the heap; -1 if there is no memory for it. */
static int
heap_reserve(struct registry *r)
{
	struct lease	**heap;
	size_t		  cap;

	if (r->heap_len < r->heap_cap)
		return (0);
	cap = r->heap_cap != 0 ? r->heap_cap * 2 : REGISTRY_MIN_HEAP;
	if ((heap = realloc(r->heap, cap * sizeof *heap)) == NULL)
		return (-1);
	r->heap = heap;
	r->heap_cap = cap;
	return (0);
}

/*
 * Put l where its (new) expires_at belongs in the heap; -1 (l unchanged in
 * the heap) if it needs a place and there is no memory for one.
 */
int
registry_heap_update(struct registry *r, struct lease *l)
{
	r->version++;		/* its ttl and times changed: its list too */
	if (l->expires_at == 0) {
		heap_remove(r, l);
		return (0);
	}
	if (l->heap_index == SIZE_MAX) {
		if (heap_reserve(r) == -1)
			return (-1);
		l->heap_index = r->heap_len;
		r->heap[r->heap_len++] = l;
	}
	heap_down(r, l->heap_index);
	heap_up(r, l->heap_index);
	return (0);
}

struct lease *
registry_heap_top(const struct registry *r)
{
	return (r->heap_len > 0 ? r->heap[0] : NULL);
}

/* Index l by name, port and expiry; -1 (nothing indexed) without memory. */
int
registry_add(struct registry *r, struct lease *l)
{
	if (l->expires_at != 0 && heap_reserve(r) == -1)
		return (-1);
	r->version++;
	nametab_add(&r->names, &l->node, l->name);
	r->by_port[l->port] = l;
	TAILQ_INSERT_TAIL(&r->all, l, entry);
	registry_heap_update(r, l);
	return (0);
}

/* Unlink l from every index; the caller frees it. */
void
registry_remove(struct registry *r, struct lease *l)
{
	r->version++;
	nametab_remove(&r->names, &l->node);
	if (r->by_port[l->port] == l)
		r->by_port[l->port] = NULL;
	TAILQ_REMOVE(&r->all, l, entry);
	heap_remove(r, l);
}

/*
 * Remember name's last port and, while its lease may be reclaimed, the
 * hash of its token (NULL: none); freed_at is when its lease ended (0: a
 * live lease holds the name). Ended names queue oldest first for
 * registry_memo_oldest. -1 without memory.
 */
int
registry_memo_set(struct registry *r, const char *name, uint16_t port,
    const unsigned char *hash, uint64_t freed_at)
{
	struct nametab_entry	*e;
	struct name_memo	*m;

	if ((e = nametab_find(&r->memos, name)) != NULL) {
		m = MEMO_OF(e);
		if (m->freed_at != 0) {
			TAILQ_REMOVE(&r->freed, m, freed);
			r->nfreed--;
		}
	} else {
		if ((m = calloc(1, sizeof *m)) == NULL)
			return (-1);
		snprintf(m->name, sizeof m->name, "%s", name);
		nametab_add(&r->memos, &m->node, m->name);
	}
	m->port = port;
	m->has_hash = hash != NULL;
	if (hash != NULL)
		memcpy(m->hash, hash, sizeof m->hash);
	else
		memset(m->hash, 0, sizeof m->hash);
	if ((m->freed_at = freed_at) != 0) {
		TAILQ_INSERT_TAIL(&r->freed, m, freed);
		r->nfreed++;
	}
	return (0);
}

int
registry_memo_get(const struct registry *r, const char *name, uint16_t *port)
{
	struct nametab_entry	*e;

	if ((e = nametab_find(&r->memos, name)) == NULL)
		return (-1);
	*port = MEMO_OF(e)->port;
	return (0);
}

/* The token hash remembered for name: 0 and hash filled, or -1. */
int
registry_memo_hash(const struct registry *r, const char *name,
    unsigned char *hash)
{
	struct nametab_entry	*e;

	if ((e = nametab_find(&r->memos, name)) == NULL ||
	    !MEMO_OF(e)->has_hash)
		return (-1);
	memcpy(hash, MEMO_OF(e)->hash, BERTH_TOKEN_HASH);
	return (0);
}

/* How many names are remembered whose lease has ended. */
size_t
registry_memo_freed(const struct registry *r)
{
	return (r->nfreed);
}

/* The name whose lease ended longest ago, or NULL. */
const char *
registry_memo_oldest(const struct registry *r)
{
	struct name_memo	*m = TAILQ_FIRST(&r->freed);

	return (m != NULL ? m->name : NULL);
}

/* Forget name altogether. */
void
registry_memo_drop(struct registry *r, const char *name)
{
	struct nametab_entry	*e;
	struct name_memo	*m;

	if ((e = nametab_find(&r->memos, name)) == NULL)
		return;
	m = MEMO_OF(e);
	if (m->freed_at != 0) {
		TAILQ_REMOVE(&r->freed, m, freed);
		r->nfreed--;
	}
	nametab_remove(&r->memos, e);
	free(m);
}

static int
registry_name_cmp(const void *a, const void *b)
{
	const struct lease	*la = *(const struct lease *const *)a;
	const struct lease	*lb = *(const struct lease *const *)b;

	return (strcmp(la->name, lb->name));
}

/*
 * {"services":[...],"index":N} and a newline: the leases live at now, by
 * name, each as its cached JSON text (lease_json_text), so that building
 * the list parses no meta and encodes no lease that has not changed.
 * *until is when the first of them expires (it must not be listed then).
 * NULL without memory.
 */
static struct registry_text *
registry_list_build(const struct registry *r, uint64_t index, uint64_t now,
    uint64_t *until)
{
	struct registry_text	 *t = NULL;
	struct lease		**v, *l;
	const char		 *text;
	char			 *p;
	size_t			  n = 0, i, len, total;

	if ((v = calloc(registry_count(r) + 1, sizeof *v)) == NULL)
		return (NULL);
	*until = UINT64_MAX;
	/* Each lease's newline makes room for the comma after it. */
	total = sizeof REGISTRY_LIST_HEAD + sizeof REGISTRY_LIST_TAIL + 24;
	TAILQ_FOREACH(l, &r->all, entry) {
		if (lease_expired(l, now))
			continue;
		if (lease_json_text(l, &len) == NULL)
			goto done;
		if (l->expires_at != 0 && l->expires_at < *until)
			*until = l->expires_at;
		total += len;
		v[n++] = l;
	}
	qsort(v, n, sizeof *v, registry_name_cmp);
	if ((t = malloc(sizeof *t + total)) == NULL)
		goto done;
	t->refs = 1;
	p = t->text;
	memcpy(p, REGISTRY_LIST_HEAD, sizeof REGISTRY_LIST_HEAD - 1);
	p += sizeof REGISTRY_LIST_HEAD - 1;
	for (i = 0; i < n; i++) {
		text = lease_json_text(v[i], &len);	/* cached above */
		if (i > 0)
			*p++ = ',';
		memcpy(p, text, len - 1);
		p += len - 1;
	}
	p += snprintf(p, total - (size_t)(p - t->text), "%s%llu}\n",
	    REGISTRY_LIST_TAIL, (unsigned long long)index);
	t->len = (size_t)(p - t->text);
done:
	free(v);
	return (t);
}

/*
 * The list as GET /v1/services answers it at change index index and time
 * now, with a reference for the caller (registry_text_unref). It is built
 * again only when it would differ: another index, a lease changed (the
 * version), or a listed lease's expiry (or the clock going back) passed.
 * NULL without memory.
 */
struct registry_text *
registry_list_text(const struct registry *r, uint64_t index, uint64_t now)
{
	struct registry_list	*c = r->list;
	struct registry_text	*t;
	uint64_t		 until;

	if (c == NULL)
		return (NULL);
	if (c->text == NULL || c->index != index || c->version != r->version ||
	    now < c->built_at || now >= c->until) {
		if ((t = registry_list_build(r, index, now, &until)) == NULL)
			return (NULL);
		registry_text_unref(c->text);
		c->text = t;
		c->index = index;
		c->version = r->version;
		c->built_at = now;
		c->until = until;
	}
	c->text->refs++;
	return (c->text);
}

/* Drop a reference to a list's text; the last one frees it. */
void
registry_text_unref(struct registry_text *t)
{
	if (t != NULL && --t->refs == 0)
		free(t);
}
