/*
 * conn.c: berthd's client connections.
 *
 * evhttp 2.1 has neither a connection limit nor a deadline for a whole
 * request (its timeout is per read, so a client dribbling one header line
 * a second is never cut off). We add both. Each connection gets a struct
 * conn, found from its evhttp_connection through a search tree, with a
 * timer that closes it when a whole period passes in which no request
 * began or ended and none was in progress: idle, or too slow to finish a
 * request.
 */
#include "config.h"

#include <search.h>
#include <stdlib.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "berthd.h"

/* A connection's life: counted from adoption until evhttp closes it. */
struct conn {
	struct server			*srv;
	struct evhttp_connection	*evcon;
	struct event			*deadline;
	uint64_t			 progress;	/* requests begun + ended */
	uint64_t			 seen;		/* progress, last tick */
	unsigned int			 busy;		/* routed, unanswered */
};

/* The one server this process runs, for callbacks that get no argument. */
static struct server	*conn_server;
static void		*conn_tree;

static int
conn_cmp(const void *a, const void *b)
{
	const struct conn	*ca = a, *cb = b;

	if (ca->evcon == cb->evcon)
		return (0);
	return ((uintptr_t)ca->evcon < (uintptr_t)cb->evcon ? -1 : 1);
}

static struct conn *
conn_find(struct evhttp_request *req)
{
	struct conn	 key, **found;

	if ((key.evcon = evhttp_request_get_connection(req)) == NULL)
		return (NULL);
	found = tfind(&key, &conn_tree, conn_cmp);
	return (found != NULL ? *found : NULL);
}

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn	*c = arg;

	(void)evcon;
	tdelete(c, &conn_tree, conn_cmp);
	event_free(c->deadline);
	c->srv->connections--;
	free(c);
}

static void
conn_arm(struct conn *c)
{
	struct timeval	tv = { (time_t)c->srv->cfg->idle_timeout, 0 };

	evtimer_add(c->deadline, &tv);
}

/* A period passed: close the connection unless it made progress. */
static void
conn_tick(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)what;
	if (c->busy == 0 && c->progress == c->seen) {
		log_debug("http: closing a connection idle or slow for %us",
		    c->srv->cfg->idle_timeout);
		/* Calls conn_closed, which frees c. */
		evhttp_connection_free(c->evcon);
		return;
	}
	c->seen = c->progress;
	conn_arm(c);
}

/*
 * Run right after evhttp made the connection object for a new socket. The
 * bufferevent's callback argument is that evhttp_connection (evhttp sets
 * it so), which is how we reach it before any request: count it, or, past
 * the limit, close it at once so the others keep being served.
 */
struct conn_adopt {
	struct event		*ev;
	struct bufferevent	*bev;
};

static void
conn_adopt(evutil_socket_t fd, short what, void *arg)
{
	struct conn_adopt		*a = arg;
	struct evhttp_connection	*evcon;
	struct server			*srv = conn_server;
	struct conn			*c;
	void				*cbarg;
	bufferevent_data_cb		 r, w;
	bufferevent_event_cb		 ev;

	(void)fd;
	(void)what;
	bufferevent_getcb(a->bev, &r, &w, &ev, &cbarg);
	event_free(a->ev);
	free(a);
	if ((evcon = cbarg) == NULL)
		return;
	if (srv->connections >= srv->cfg->max_connections || srv->stopping) {
		log_warnx("http: connection limit (%u) reached, refusing a "
		    "client", srv->cfg->max_connections);
		evhttp_connection_free(evcon);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->deadline = evtimer_new(srv->base, conn_tick, c)) == NULL ||
	    tsearch(c, &conn_tree, conn_cmp) == NULL) {
		if (c != NULL && c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		evhttp_connection_free(evcon);
		return;
	}
	c->srv = srv;
	c->evcon = evcon;
	srv->connections++;
	evhttp_connection_set_closecb(evcon, conn_closed, c);
	conn_arm(c);
}

/*
 * evhttp asks us for each new connection's bufferevent. We make it as
 * evhttp would, and queue conn_adopt at the highest priority: it runs
 * before any I/O on the new connection can, so evcon is still alive.
 */
struct bufferevent *
conn_new_bev(struct event_base *base, void *arg)
{
	struct conn_adopt	*a;
	struct bufferevent	*bev;

	conn_server = arg;
	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL)
		return (NULL);
	if ((a = calloc(1, sizeof *a)) == NULL)
		return (bev);
	a->bev = bev;
	if ((a->ev = event_new(base, -1, 0, conn_adopt, a)) == NULL) {
		free(a);
		return (bev);
	}
	event_priority_set(a->ev, 0);
	event_active(a->ev, EV_TIMEOUT, 0);
	return (bev);
}

/* A whole request arrived on its connection. */
void
conn_request_begin(struct evhttp_request *req)
{
	struct conn	*c;

	if ((c = conn_find(req)) != NULL) {
		c->progress++;
		c->busy++;
	}
}

/* A request is answered (the connection may be gone by now). */
void
conn_request_end(struct evhttp_request *req)
{
	struct conn	*c;

	if ((c = conn_find(req)) != NULL && c->busy > 0) {
		c->progress++;
		c->busy--;
	}
}
