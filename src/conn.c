/*
 * conn.c: berthd's client connections.
 *
 * HTTP and portserver clients share one budget, --max-connections:
 * conn_admit counts a client in (or refuses it, saying so at most once
 * per CONN_SAY_MS), conn_leave counts it out.
 *
 * evhttp 2.1 has neither a connection limit nor a deadline for a whole
 * request (its timeout is per read, so a client dribbling one header line
 * a second is never cut off). We add both. Each connection gets a struct
 * conn, found from its evhttp_connection through a search tree, with a
 * timer that closes it when a whole period passes in which no request
 * began or ended and none was in progress: idle, or too slow to finish a
 * request. evhttp's close callback (called on every path that closes an
 * incoming connection) frees it.
 */
#include "config.h"

#include <sys/socket.h>
#include <search.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "berthd.h"

#define CONN_READ_MAX	(256 * 1024)	/* unparsed input held per client */
#define CONN_SAY_MS	10000		/* how often to say the limit is hit */

/* One client connection, from adoption until evhttp closes it. */
struct conn {
	struct evhttp_connection *evcon;	/* the tree's key */
	struct bufferevent	*bev;
	struct event		*deadline;
	uint64_t		 progress;	/* requests begun + ended */
	uint64_t		 seen;		/* progress, last tick */
	unsigned int		 busy;		/* begun, unanswered */
	int			 local;		/* over a unix socket */
	int			 admin;		/* local, uid 0 or berthd's */
	TAILQ_ENTRY(conn)	 entry;
};
TAILQ_HEAD(conn_list, conn);

/* The one server this process runs, for callbacks that get no argument. */
static struct server	*conn_server;
static void		*conn_tree;
static struct conn_list	 conn_all = TAILQ_HEAD_INITIALIZER(conn_all);
static unsigned int	 conn_clients;	/* HTTP and portserver */

void
conn_init(struct server *srv)
{
	conn_server = srv;
}

/*
 * May one more client connect? If so it is counted until conn_leave. If
 * not, say so (at most once per CONN_SAY_MS), naming who refuses it.
 */
int
conn_admit(const char *who)
{
	static struct log_every	said;
	uint64_t		quiet;

	if (conn_clients < conn_server->cfg->max_connections) {
		conn_clients++;
		return (1);
	}
	if (log_every(&said, CONN_SAY_MS, &quiet))
		log_warnx("%s: connection limit (%u) reached, refusing clients "
		    "(%llu more since last said)", who,
		    conn_server->cfg->max_connections, (unsigned long long)quiet);
	return (0);
}

void
conn_leave(void)
{
	conn_clients--;
}

/* Open client connections, HTTP and portserver. */
unsigned int
conn_count(void)
{
	return (conn_clients);
}

static int
conn_cmp(const void *a, const void *b)
{
	const struct conn	*ca = a, *cb = b;

	if (ca->evcon == cb->evcon)
		return (0);
	return ((uintptr_t)ca->evcon < (uintptr_t)cb->evcon ? -1 : 1);
}

static struct conn *
conn_of(struct evhttp_request *req)
{
	struct conn	 key, **found;

	if ((key.evcon = evhttp_request_get_connection(req)) == NULL)
		return (NULL);
	found = tfind(&key, &conn_tree, conn_cmp);
	return (found != NULL ? *found : NULL);
}

/*
 * Who is on the other end, found once per connection: a unix-socket peer,
 * and whether it runs as root or as berthd's user (SO_PEERCRED).
 */
static void
conn_peer(struct conn *c)
{
	struct sockaddr_storage	ss;
	struct ucred		cred;
	socklen_t		len = sizeof ss;
	int			fd = bufferevent_getfd(c->bev);

	if (fd == -1 || getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    ss.ss_family != AF_UNIX)
		return;
	c->local = 1;
	len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		c->admin = cred.uid == 0 || cred.uid == geteuid();
}

/* evhttp closes the connection: forget it. */
static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn	*c = arg;

	(void)evcon;
	tdelete(c, &conn_tree, conn_cmp);
	TAILQ_REMOVE(&conn_all, c, entry);
	event_free(c->deadline);
	conn_leave();
	free(c);
}

static void
conn_arm(struct conn *c)
{
	struct timeval	tv = { (time_t)conn_server->cfg->idle_timeout, 0 };

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
		    conn_server->cfg->idle_timeout);
		/* Calls conn_closed, which frees c. */
		evhttp_connection_free(c->evcon);
		return;
	}
	c->seen = c->progress;
	conn_arm(c);
}

/*
 * Run right after evhttp made the connection object for a new socket,
 * before any I/O on it. The bufferevent's callback argument is that
 * evhttp_connection (evhttp sets it so), which is how we reach it before
 * any request: count it, or, past the limit, close it at once so the
 * others keep being served.
 */
static void
conn_adopt(evutil_socket_t fd, short what, void *arg)
{
	struct conn		*c = arg;
	struct server		*srv = conn_server;
	bufferevent_data_cb	 r, w;
	bufferevent_event_cb	 ev;
	void			*cbarg;

	(void)fd;
	(void)what;
	bufferevent_getcb(c->bev, &r, &w, &ev, &cbarg);
	/* Our reference kept bev alive even if evhttp already dropped it. */
	bufferevent_decref(c->bev);
	c->evcon = cbarg;
	if (c->evcon == NULL || srv->stopping || !conn_admit("http")) {
		if (c->evcon != NULL)
			evhttp_connection_free(c->evcon);
		event_free(c->deadline);
		free(c);
		return;
	}
	if (tsearch(c, &conn_tree, conn_cmp) == NULL) {
		conn_leave();
		evhttp_connection_free(c->evcon);
		event_free(c->deadline);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&conn_all, c, entry);
	conn_peer(c);
	evhttp_connection_set_closecb(c->evcon, conn_closed, c);
	/*
	 * evhttp keeps reading while it writes an answer; a client that
	 * sends and never reads would have all it sends buffered. Stop
	 * reading past this much unparsed input.
	 */
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_READ_MAX);
	event_assign(c->deadline, srv->base, -1, 0, conn_tick, c);
	conn_arm(c);
}

/*
 * evhttp asks us for each new connection's bufferevent. We make it as
 * evhttp would, hold a reference, and queue conn_adopt at the highest
 * priority, so it runs before any I/O on the new connection can.
 */
struct bufferevent *
conn_new_bev(struct event_base *base, void *arg)
{
	struct conn	*c;

	(void)arg;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return (NULL);
	if ((c->bev = bufferevent_socket_new(base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (c->deadline = event_new(base, -1, 0, conn_adopt, c)) == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		free(c);
		return (NULL);
	}
	bufferevent_incref(c->bev);
	event_priority_set(c->deadline, 0);
	event_active(c->deadline, EV_TIMEOUT, 0);
	return (c->bev);
}

/* A whole request arrived on its connection; who sent it? */
void
conn_request_begin(struct evhttp_request *req, int *local, int *admin)
{
	struct conn	*c;

	*local = *admin = 0;
	if ((c = conn_of(req)) != NULL) {
		c->progress++;
		c->busy++;
		*local = c->local;
		*admin = c->admin;
	}
}

/* A request is answered (its connection may be gone by now). */
void
conn_request_end(struct evhttp_request *req)
{
	struct conn	*c;

	if ((c = conn_of(req)) != NULL && c->busy > 0) {
		c->progress++;
		c->busy--;
	}
}

/* Shutting down: has every answer left its connection's buffer? */
int
conn_all_flushed(void)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &conn_all, entry) {
		if (c->busy > 0 ||
		    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			return (0);
	}
	return (1);
}
