/*
 * waiters.c: blocking lookups (GET /v1/services/NAME?wait=S) and watches
 * (GET /v1/services?index=N&wait=S), parked as callbacks on the event loop:
 * a parked request costs one small struct and one timer, never a thread.
 *
 * Name waiters are grouped by name in a hash table, so an acquire wakes
 * exactly the waiters of its name. Wakeups happen after the turn's commit
 * (waiters_committed), so a waiter never sees a lease that is not yet
 * durable. A lookup that also waits for readiness (?ready=1) waits in its
 * name's group, which a change of that lease's readiness wakes too. How
 * a waiter is answered is its parker's business: each is parked with the
 * function that answers it.
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

#define WAITERS_BUCKETS		256
#define WAITERS_TRIM_AFTER	1000	/* answers in one wake */

enum waiter_kind {
	WAIT_NAME,		/* for a name to be leased (and maybe ready) */
	WAIT_INDEX		/* for the change index to pass a value */
};

struct waitgroup;

struct waiter {
	struct waiters		*ws;
	struct api_req		*req;
	waiter_answer_fn	 answer;
	enum waiter_kind	 kind;
	int			 ready;		/* WAIT_NAME: ready too */
	uint64_t		 index;
	struct waitgroup	*group;
	struct event		*timer;
	TAILQ_ENTRY(waiter)	 entry;
};
TAILQ_HEAD(waiter_list, waiter);

/* The waiters of one name. */
struct waitgroup {
	struct nametab_entry	 node;
	char			 name[BERTH_NAME_MAX + 2];	/* as req->name */
	struct waiter_list	 list;
	struct waitgroup	*ready_next;
	int			 ready;
};

struct waiters {
	struct server		*srv;
	struct waiters_source	 src;
	struct nametab		 groups;
	struct waiter_list	 index_list;
	struct waitgroup	*ready;
	size_t			 count;
};

#define GROUP_OF(e)	((struct waitgroup *)(void *)((char *)(e) - \
			    offsetof(struct waitgroup, node)))

struct waiters *
waiters_new(struct server *srv, const struct waiters_source *src)
{
	struct waiters	*ws;

	if ((ws = calloc(1, sizeof *ws)) == NULL)
		return (NULL);
	ws->srv = srv;
	ws->src = *src;
	if (nametab_init(&ws->groups, WAITERS_BUCKETS) == -1) {
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

static struct waitgroup *
waiters_group(struct waiters *ws, const char *name, int create)
{
	struct nametab_entry	*e;
	struct waitgroup	*g;

	if ((e = nametab_find(&ws->groups, name)) != NULL)
		return (GROUP_OF(e));
	if (!create || (g = calloc(1, sizeof *g)) == NULL)
		return (NULL);
	snprintf(g->name, sizeof g->name, "%s", name);
	TAILQ_INIT(&g->list);
	nametab_add(&ws->groups, &g->node, g->name);
	return (g);
}

static void
waiters_drop_group(struct waiters *ws, struct waitgroup *g)
{
	struct waitgroup	**rp;

	nametab_remove(&ws->groups, &g->node);
	for (rp = &ws->ready; *rp != NULL; rp = &(*rp)->ready_next) {
		if (*rp == g) {
			*rp = g->ready_next;
			break;
		}
	}
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
	if (w->req != NULL)
		w->req->waiter = NULL;
	ws->count--;
	free(w);
}

/* Answer w as its parker says, and forget it. */
static void
waiter_answer(struct waiter *w)
{
	struct server		*srv = w->ws->srv;
	struct api_req		*req = w->req;
	waiter_answer_fn	 answer = w->answer;

	/* The answer frees req: forget it first. */
	req->waiter = NULL;
	w->req = NULL;
	waiter_free(w);
	answer(srv, req);
}

static void
waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	waiter_answer(arg);
}

static struct waiter *
waiter_new(struct waiters *ws, struct api_req *req, unsigned int wait,
    waiter_answer_fn answer)
{
	struct waiter	*w;
	struct timeval	 tv = { (time_t)wait, 0 };

	if ((w = calloc(1, sizeof *w)) == NULL)
		return (NULL);
	w->ws = ws;
	w->req = req;
	w->answer = answer;
	if ((w->timer = evtimer_new(ws->srv->base, waiter_timeout, w)) == NULL) {
		free(w);
		return (NULL);
	}
	evtimer_add(w->timer, &tv);
	req_set_state(req, REQ_PARKED);
	req->waiter = w;
	ws->count++;
	return (w);
}

/*
 * Park req until a lease named req->name is granted (with ready, and its
 * service is there, or berthd cannot tell), or wait seconds. -1 (req
 * untouched, still to be answered) without memory.
 */
int
waiters_park_name(struct waiters *ws, struct api_req *req, unsigned int wait,
    int ready, waiter_answer_fn answer)
{
	struct waitgroup	*g;
	struct waiter		*w;

	if ((g = waiters_group(ws, req->name, 1)) == NULL)
		return (-1);
	if ((w = waiter_new(ws, req, wait, answer)) == NULL) {
		if (TAILQ_EMPTY(&g->list))
			waiters_drop_group(ws, g);
		return (-1);
	}
	w->kind = WAIT_NAME;
	w->ready = ready;
	w->group = g;
	TAILQ_INSERT_TAIL(&g->list, w, entry);
	return (0);
}

/* Park req until the change index passes index, or wait seconds. */
int
waiters_park_index(struct waiters *ws, struct api_req *req, uint64_t index,
    unsigned int wait, waiter_answer_fn answer)
{
	struct waiter	*w;

	if ((w = waiter_new(ws, req, wait, answer)) == NULL)
		return (-1);
	w->kind = WAIT_INDEX;
	w->index = index;
	TAILQ_INSERT_TAIL(&ws->index_list, w, entry);
	return (0);
}

/*
 * Forget a parked request unanswered: its client is gone, and it must not
 * hold memory for the rest of its wait. The carrier frees it.
 */
void
waiters_cancel(struct waiters *ws, struct api_req *req)
{
	(void)ws;
	if (req->waiter != NULL)
		waiter_free(req->waiter);
}

/*
 * A lease for name was granted in this turn, or its readiness changed:
 * its waiters look again after the commit.
 */
void
waiters_name_changed(struct waiters *ws, const char *name)
{
	struct waitgroup	*g;

	if ((g = waiters_group(ws, name, 0)) == NULL || g->ready)
		return;
	g->ready = 1;
	g->ready_next = ws->ready;
	ws->ready = g;
}

/*
 * Answer the waiters of g whose wait is over: all of them at shutdown
 * (all), else those that wait for the name, or for it to be ready when
 * it is (ready: an enum lease_ready; null counts: berthd cannot tell,
 * and must not hold them for ever). The last waiter_free frees g itself.
 */
static void
waiters_answer_group(struct waitgroup *g, int all, int ready)
{
	struct waiter	*w, *next;

	for (w = TAILQ_FIRST(&g->list); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (all || !w->ready || ready != LEASE_NOT_READY)
			waiter_answer(w);
	}
}

/* A commit hook: answer the waiters whose condition now holds. */
void
waiters_committed(void *arg, int ok)
{
	(void)ok;	/* a failed turn woke nobody that it should not */
	waiters_wake(arg);
}

/*
 * What the source says has changed (after waiters_name_changed): answer
 * the waiters whose condition now holds.
 */
void
waiters_wake(struct waiters *ws)
{
	struct waitgroup	*g;
	struct waiter		*w, *next;
	uint64_t		 index = ws->src.index(ws->src.arg);
	size_t			 before = ws->count;
	int			 ready;

	while ((g = ws->ready) != NULL) {
		ws->ready = g->ready_next;
		g->ready = 0;
		if ((ready = ws->src.find(ws->src.arg, g->name)) != -1)
			waiters_answer_group(g, 0, ready);
		/* else: gone again within the same turn */
	}
	for (w = TAILQ_FIRST(&ws->index_list); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (index > w->index)
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
	struct nametab_entry	*e;
	struct waiter		*w;
	size_t			 cursor = 0;

	while ((w = TAILQ_FIRST(&ws->index_list)) != NULL)
		waiter_answer(w);
	while ((e = nametab_next(&ws->groups, &cursor)) != NULL)
		waiters_answer_group(GROUP_OF(e), 1, LEASE_NOT_READY);
}

void
waiters_free(struct waiters *ws)
{
	if (ws == NULL)
		return;
	waiters_flush(ws);
	nametab_free(&ws->groups);
	free(ws);
}
