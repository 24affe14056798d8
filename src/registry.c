/*
 * registry.c: the live leases in memory, indexed by name (nametab.c), by
 * port (a direct table) and by expiry (a binary min-heap), so lookups,
 * port checks and the next expiry are O(1) or O(log n) whatever the
 * number of leases; and the last port of every name (sticky ports).
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

/* The last port a name held: what makes ports sticky. */
struct name_memo {
	struct nametab_entry	 node;
	char			 name[BERTH_NAME_MAX + 1];
	uint16_t		 port;
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
	if (nametab_init(&r->names, REGISTRY_MIN_BUCKETS) == -1 ||
	    nametab_init(&r->memos, REGISTRY_MIN_BUCKETS) == -1) {
		nametab_free(&r->names);
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
	memset(r, 0, sizeof *r);
	TAILQ_INIT(&r->all);
}

/* Free every lease and memo; the registry is left empty and usable. */
int
registry_clear(struct registry *r)
{
	registry_free(r);
	return (registry_init(r));
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
	nametab_remove(&r->names, &l->node);
	if (r->by_port[l->port] == l)
		r->by_port[l->port] = NULL;
	TAILQ_REMOVE(&r->all, l, entry);
	heap_remove(r, l);
}

/* Sticky ports: the last port of every name. -1 without memory. */
int
registry_memo_set(struct registry *r, const char *name, uint16_t port)
{
	struct nametab_entry	*e;
	struct name_memo	*m;

	if ((e = nametab_find(&r->memos, name)) != NULL) {
		MEMO_OF(e)->port = port;
		return (0);
	}
	if ((m = calloc(1, sizeof *m)) == NULL)
		return (-1);
	snprintf(m->name, sizeof m->name, "%s", name);
	m->port = port;
	nametab_add(&r->memos, &m->node, m->name);
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
