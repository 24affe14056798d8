/*
 * waiters.c: blocking lookups (GET /v1/services/NAME?wait=S) and watches
 * (GET /v1/services?index=N&wait=S), parked as callbacks on the event loop:
 * a parked request costs one small struct and one timer, never a thread.
 *
 * Name waiters are grouped by name in a hash table, so an acquire wakes
 * exactly the waiters of its name. Wakeups happen after the turn's commit
 * (waiters_wake), so a waiter never sees a lease that is not yet durable.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include <event2/event.h>

#include "berthd.h"

#define WAITERS_TRIM_AFTER	1000	/* answers in one wake */

enum waiter_kind {
	WAIT_NAME,		/* for a name to be leased */
	WAIT_INDEX		/* for the change index to pass a value */
};

struct waitgroup;

struct waiter {
	struct waiters		*ws;
	struct api_req	*req;
	enum waiter_kind	 kind;
	uint64_t		 index;
	struct waitgroup	*group;
	struct event		*timer;
	TAILQ_ENTRY(waiter)	 entry;
};
TAILQ_HEAD(waiter_list, waiter);

/* The waiters of one name. */
struct waitgroup {
	char			 name[BERTH_NAME_MAX + 1];
	struct waiter_list	 list;
	struct waitgroup	*next;		/* hash chain */
	struct waitgroup	*ready_next;
	int			 ready;
};

struct waiters {
	struct server		*srv;
	struct waitgroup	**buckets;
	size_t			 nbuckets;
	size_t			 ngroups;
	struct waiter_list	 index_list;
	struct waitgroup	*ready;
	size_t			 count;
};

struct waiters *
waiters_new(struct server *srv)
{
	struct waiters	*ws;

	if ((ws = calloc(1, sizeof *ws)) == NULL)
		return (NULL);
	ws->srv = srv;
	ws->nbuckets = 256;
	if ((ws->buckets = calloc(ws->nbuckets, sizeof *ws->buckets)) == NULL) {
		free(ws);
		return (NULL);
	}
	TAILQ_INIT(&ws->index_list);
	return (ws);
}

size_t
waiters_count(const struct waiters *ws)
{
	return (ws->count);
}

static struct waitgroup **
waiters_slot(struct waiters *ws, const char *name)
{
	return (&ws->buckets[pool_name_hash(name) & (ws->nbuckets - 1)]);
}

/* Double the table when it holds as many names as buckets. */
static void
waiters_grow(struct waiters *ws)
{
	struct waitgroup	**old = ws->buckets, *g, *next, **slot;
	size_t			  i, n = ws->nbuckets;

	if ((ws->buckets = calloc(n * 2, sizeof *ws->buckets)) == NULL) {
		ws->buckets = old;
		return;
	}
	ws->nbuckets = n * 2;
	for (i = 0; i < n; i++) {
		for (g = old[i]; g != NULL; g = next) {
			next = g->next;
			slot = waiters_slot(ws, g->name);
			g->next = *slot;
			*slot = g;
		}
	}
	free(old);
}

static struct waitgroup *
waiters_group(struct waiters *ws, const char *name, int create)
{
	struct waitgroup	*g, **slot = waiters_slot(ws, name);

	for (g = *slot; g != NULL; g = g->next) {
		if (strcmp(g->name, name) == 0)
			return (g);
	}
	if (!create)
		return (NULL);
	if (ws->ngroups >= ws->nbuckets) {
		waiters_grow(ws);
		slot = waiters_slot(ws, name);
	}
	if ((g = calloc(1, sizeof *g)) == NULL)
		return (NULL);
	snprintf(g->name, sizeof g->name, "%s", name);
	TAILQ_INIT(&g->list);
	g->next = *slot;
	*slot = g;
	ws->ngroups++;
	return (g);
}

static void
waiters_drop_group(struct waiters *ws, struct waitgroup *g)
{
	struct waitgroup	**pp, **rp;

	for (pp = waiters_slot(ws, g->name); *pp != NULL; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	for (rp = &ws->ready; *rp != NULL; rp = &(*rp)->ready_next) {
		if (*rp == g) {
			*rp = g->ready_next;
			break;
		}
	}
	ws->ngroups--;
	free(g);
}

/* Take w off its lists and free it; its request must be answered by then. */
static void
waiter_free(struct waiter *w)
{
	struct waiters	*ws = w->ws;

	if (w->kind == WAIT_INDEX)
		TAILQ_REMOVE(&ws->index_list, w, entry);
	else {
		TAILQ_REMOVE(&w->group->list, w, entry);
		if (TAILQ_EMPTY(&w->group->list))
			waiters_drop_group(ws, w->group);
	}
	event_free(w->timer);
	ws->count--;
	free(w);
}

/* Answer w as the same request without ?wait would be answered now. */
static void
waiter_answer(struct waiter *w)
{
	struct server	*srv = w->ws->srv;
	struct lease	*l;
	struct berr	 e;

	if (w->kind == WAIT_INDEX)
		req_reply_json(srv, w->req, 200, api_lease_list(srv));
	else if ((l = broker_lookup(srv->broker, w->group->name)) != NULL)
		req_reply_lease(srv, w->req, l);
	else {
		berr_set(&e, 404, "not_found", "no live lease named '%s' "
		    "(waited)", w->group->name);
		req_reply_error(srv, w->req, &e);
	}
	waiter_free(w);
}

static void
waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	waiter_answer(arg);
}

static struct waiter *
waiter_new(struct waiters *ws, struct api_req *req, unsigned int wait)
{
	struct waiter	*w;
	struct timeval	 tv = { (time_t)wait, 0 };

	if ((w = calloc(1, sizeof *w)) == NULL)
		return (NULL);
	w->ws = ws;
	w->req = req;
	if ((w->timer = evtimer_new(ws->srv->base, waiter_timeout, w)) == NULL) {
		free(w);
		return (NULL);
	}
	evtimer_add(w->timer, &tv);
	req->began = 0;		/* its wait is not a latency (/metrics) */
	if (req->parked != NULL)
		req->parked(req, wait);
	ws->count++;
	return (w);
}

static void
waiters_refuse(struct server *srv, struct api_req *req)
{
	struct berr	e;

	berr_set(&e, 500, "internal", "out of memory parking the request");
	req_reply_error(srv, req, &e);
}

void
waiters_park_name(struct waiters *ws, struct api_req *req,
    const char *name, unsigned int wait)
{
	struct waitgroup	*g;
	struct waiter		*w;

	if ((g = waiters_group(ws, name, 1)) == NULL ||
	    (w = waiter_new(ws, req, wait)) == NULL) {
		if (g != NULL && TAILQ_EMPTY(&g->list))
			waiters_drop_group(ws, g);
		waiters_refuse(ws->srv, req);
		return;
	}
	w->kind = WAIT_NAME;
	w->group = g;
	TAILQ_INSERT_TAIL(&g->list, w, entry);
}

void
waiters_park_index(struct waiters *ws, struct api_req *req,
    uint64_t index, unsigned int wait)
{
	struct waiter	*w;

	if ((w = waiter_new(ws, req, wait)) == NULL) {
		waiters_refuse(ws->srv, req);
		return;
	}
	w->kind = WAIT_INDEX;
	w->index = index;
	TAILQ_INSERT_TAIL(&ws->index_list, w, entry);
}

/* A lease for name was granted in this turn: wake its waiters after commit. */
void
waiters_name_acquired(struct waiters *ws, const char *name)
{
	struct waitgroup	*g;

	if ((g = waiters_group(ws, name, 0)) == NULL || g->ready)
		return;
	g->ready = 1;
	g->ready_next = ws->ready;
	ws->ready = g;
}

/* After a commit: answer the waiters whose condition now holds. */
void
waiters_wake(struct waiters *ws)
{
	struct broker		*b = ws->srv->broker;
	struct waitgroup	*g;
	struct waiter		*w, *next;
	size_t			 before = ws->count;

	while ((g = ws->ready) != NULL) {
		ws->ready = g->ready_next;
		g->ready = 0;
		if (broker_lookup(b, g->name) == NULL)
			continue;	/* gone again within the same turn */
		/* The last waiter_free frees the group itself. */
		for (;;) {
			w = TAILQ_FIRST(&g->list);
			next = TAILQ_NEXT(w, entry);
			waiter_answer(w);
			if (next == NULL)
				break;
		}
	}
	for (w = TAILQ_FIRST(&ws->index_list); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (b->index > w->index)
			waiter_answer(w);
	}
#ifdef __GLIBC__
	/* Thousands of answers just went out: hand their memory back. */
	if (before - ws->count >= WAITERS_TRIM_AFTER)
		malloc_trim(0);
#endif
}

/* Shutting down: answer everyone now, as if their wait had ended. */
void
waiters_flush(struct waiters *ws)
{
	struct waiter	*w;
	size_t		 i;

	while ((w = TAILQ_FIRST(&ws->index_list)) != NULL)
		waiter_answer(w);
	for (i = 0; i < ws->nbuckets; i++) {
		while (ws->buckets[i] != NULL)
			waiter_answer(TAILQ_FIRST(&ws->buckets[i]->list));
	}
}

void
waiters_free(struct waiters *ws)
{
	if (ws == NULL)
		return;
	waiters_flush(ws);
	free(ws->buckets);
	free(ws);
}
