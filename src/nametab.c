/*
 * nametab.c: a hash table of named things, chained, that doubles when it
 * holds as many entries as buckets. The registry's names and sticky-port
 * memos and the waiters' groups all use it: one resize, written once.
 *
 * Entries are intrusive (a struct nametab_entry inside the caller's
 * struct) so the table allocates nothing per entry. A table that cannot
 * grow (no memory) keeps its size: chains get longer, nothing is lost.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core.h"

int
nametab_init(struct nametab *t, size_t nbuckets)
{
	t->nbuckets = nbuckets;
	t->count = 0;
	t->buckets = calloc(nbuckets, sizeof *t->buckets);
	return (t->buckets != NULL ? 0 : -1);
}

/* Free the buckets; the entries belong to the caller. */
void
nametab_free(struct nametab *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->count = 0;
}

static struct nametab_entry **
nametab_slot(const struct nametab *t, const char *name)
{
	return (&t->buckets[pool_name_hash(name) & (t->nbuckets - 1)]);
}

static void
nametab_grow(struct nametab *t)
{
	struct nametab	 old = *t;
	struct nametab_entry *e, *next, **slot;
	size_t		 i;

	if (nametab_init(t, old.nbuckets * 2) == -1) {
		*t = old;
		return;
	}
	t->count = old.count;
	for (i = 0; i < old.nbuckets; i++) {
		for (e = old.buckets[i]; e != NULL; e = next) {
			next = e->next;
			slot = nametab_slot(t, e->name);
			e->next = *slot;
			*slot = e;
		}
	}
	free(old.buckets);
}

struct nametab_entry *
nametab_find(const struct nametab *t, const char *name)
{
	struct nametab_entry	*e;

	for (e = *nametab_slot(t, name); e != NULL; e = e->next) {
		if (strcmp(e->name, name) == 0)
			return (e);
	}
	return (NULL);
}

/* Add e under name (which must live as long as e); names are unique. */
void
nametab_add(struct nametab *t, struct nametab_entry *e, const char *name)
{
	struct nametab_entry	**slot;

	if (t->count + 1 > t->nbuckets)
		nametab_grow(t);
	e->name = name;
	slot = nametab_slot(t, name);
	e->next = *slot;
	*slot = e;
	t->count++;
}

void
nametab_remove(struct nametab *t, struct nametab_entry *e)
{
	struct nametab_entry	**pp;

	for (pp = nametab_slot(t, e->name); *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			t->count--;
			return;
		}
	}
}

/*
 * The first entry in bucket *cursor or after, for walking the table while
 * taking entries out: start with *cursor = 0, call until NULL.
 */
struct nametab_entry *
nametab_next(const struct nametab *t, size_t *cursor)
{
	for (; *cursor < t->nbuckets; (*cursor)++) {
		if (t->buckets[*cursor] != NULL)
			return (t->buckets[*cursor]);
	}
	return (NULL);
}
