/*
 * portserver.c: portpicker's portserver protocol (docs/portpicker.md), so
 * that test suites using portpicker with PORTSERVER_ADDRESS get their ports
 * from berthd. One connection per request, on a unix socket (abstract
 * "@name" or a path): the client writes its pid as a decimal line of at
 * most 20 bytes; we lease it a pool port free on both TCP and UDP, owned by
 * that pid, and once the lease is committed we answer the port as a decimal
 * line and close. Anything wrong (a bad line, pid <= 1 or not a live
 * process, the pool exhausted, the database down) closes with no answer,
 * which portpicker reads as "no port". The lease ends, like any other, when
 * its owner dies.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "berthd.h"

#define PS_LINE_MAX	20	/* request bytes, newline included */
#define PS_TIMEOUT_S	10	/* to send the line, and to take the answer */
#define PS_SAY_MS	10000	/* how often to say a refusal */

enum ps_state { PS_READING, PS_COMMITTING, PS_ANSWERING };

struct ps_conn {
	struct portserver	*ps;
	struct bufferevent	*bev;
	enum ps_state		 state;
	pid_t			 peer;		/* SO_PEERCRED, -1 unknown */
	pid_t			 pid;
	uint16_t		 port;		/* granted, once COMMITTING */
	TAILQ_ENTRY(ps_conn)	 entry;
};

struct portserver {
	struct server		*srv;
	struct evconnlistener	*lev;
	struct addr	 addr;
	TAILQ_HEAD(, ps_conn)	 conns;
	uint64_t		 granted;
	uint64_t		 refused;
};

static void
ps_close(struct ps_conn *c)
{
	struct portserver	*ps = c->ps;

	TAILQ_REMOVE(&ps->conns, c, entry);
	conn_leave();
	bufferevent_free(c->bev);
	free(c);
}

/*
 * Say no the portserver way: close without a word. Log why, but at most
 * once per PS_SAY_MS: anyone who may connect can send garbage as fast as
 * berthd reads it, and a line per refusal would fill the disk. /v1/status
 * counts every refusal.
 */
static void
ps_refuse(struct ps_conn *c, const char *why)
{
	static struct log_every	said;
	uint64_t		quiet;

	c->ps->refused++;
	if (log_every(&said, PS_SAY_MS, &quiet)) {
		if (c->pid > 0)
			log_info("portserver: no port for pid %ld: %s (%llu "
			    "more refusals since last said)", (long)c->pid,
			    why, (unsigned long long)quiet);
		else
			log_info("portserver: no port: %s (%llu more refusals "
			    "since last said)", why, (unsigned long long)quiet);
	}
	ps_close(c);
}

/*
 * The request line: optional blanks, decimal digits, optional blanks
 * (the newline is already cut off). -1 if it is not that, or too big.
 */
static long long
ps_parse_pid(const char *s, size_t len)
{
	long long	v = 0;
	size_t		i = 0, digits = 0;

	while (i < len && isspace((unsigned char)s[i]))
		i++;
	for (; i < len && isdigit((unsigned char)s[i]); i++, digits++) {
		if (v > (LLONG_MAX - 9) / 10)
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	while (i < len && isspace((unsigned char)s[i]))
		i++;
	return (i == len && digits > 0 ? v : -1);
}

/*
 * The owner of the lease: the pid the client sent, which is a pid in the
 * client's own PID namespace. When that is not berthd's (a test in a
 * container, berthd outside it), the number names some unrelated process
 * here, or none; the lease is then owned by the connecting process, as
 * the kernel numbers it for us (SO_PEERCRED). 0: the client's namespace
 * is hidden from berthd altogether.
 */
static pid_t
ps_owner(struct ps_conn *c)
{
	if (c->peer == 0)
		return (0);
	if (c->peer < 0 || !owner_nested(c->peer))
		return (c->pid);
	log_info("portserver: pid %ld is from another PID namespace; the "
	    "lease goes to the client process, pid %ld here", (long)c->pid,
	    (long)c->peer);
	return (c->peer);
}

/* A whole request line: lease a port for its pid, answer after commit. */
static void
ps_request(struct ps_conn *c, const char *line, size_t len)
{
	struct portserver	*ps = c->ps;
	struct lease		*l;
	struct berr		 e;
	long long		 pid;
	pid_t			 owner;

	bufferevent_disable(c->bev, EV_READ);
	if ((pid = ps_parse_pid(line, len)) < 0 || pid > INT_MAX) {
		ps_refuse(c, "the request is not a pid");
		return;
	}
	c->pid = (pid_t)pid;
	if (ps->srv->stopping) {
		ps_refuse(c, "berthd is stopping");
		return;
	}
	if ((owner = ps_owner(c)) == 0) {
		ps_refuse(c, "the client's PID namespace is hidden from berthd");
		return;
	}
	if (owner <= 1) {
		ps_refuse(c, "pid 0 and 1 are not clients");
		return;
	}
	memset(&e, 0, sizeof e);
	if (broker_acquire_anon(ps->srv->broker, owner, &l, &e) == -1) {
		ps_refuse(c, e.message);
		return;
	}
	/* The answer waits for the commit (portserver_committed). */
	c->port = l->port;
	c->state = PS_COMMITTING;
}

static void
ps_read_cb(struct bufferevent *bev, void *arg)
{
	struct ps_conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 len = evbuffer_get_length(in);
	unsigned char	*buf, *nl;
	char		 line[PS_LINE_MAX];
	size_t		 n;

	if (c->state != PS_READING)
		return;
	n = len < PS_LINE_MAX ? len : PS_LINE_MAX;
	buf = evbuffer_pullup(in, (ev_ssize_t)n);
	if (buf != NULL && (nl = memchr(buf, '\n', n)) != NULL) {
		/* A copy: answering may free the buffer. */
		n = (size_t)(nl - buf);
		memcpy(line, buf, n);
		ps_request(c, line, n);
		return;
	}
	if (len >= PS_LINE_MAX)
		ps_refuse(c, "more than 20 bytes without a newline");
}

/* All of the answer went out: done. */
static void
ps_write_cb(struct bufferevent *bev, void *arg)
{
	struct ps_conn	*c = arg;

	(void)bev;
	if (c->state == PS_ANSWERING)
		ps_close(c);
}

static void
ps_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ps_conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	char		 line[PS_LINE_MAX];
	size_t		 n;

	/* A line ended by the client's shutdown rather than a newline. */
	if ((what & BEV_EVENT_EOF) && c->state == PS_READING &&
	    (n = evbuffer_get_length(in)) > 0 && n < PS_LINE_MAX) {
		evbuffer_remove(in, line, n);
		ps_request(c, line, n);
		return;
	}
	if (c->state == PS_COMMITTING)
		return;		/* the lease stands; its owner may still use it */
	if (what & BEV_EVENT_TIMEOUT)
		ps_refuse(c, "timed out");
	else
		ps_close(c);
}

static void
ps_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct portserver	*ps = arg;
	struct ps_conn		*c;
	struct timeval		 tv = { PS_TIMEOUT_S, 0 };
	struct ucred		 cred;
	socklen_t		 len;

	(void)lev;
	(void)sa;
	(void)salen;
	if (ps->srv->stopping || !conn_admit("portserver")) {
		evutil_closesocket(fd);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->bev = bufferevent_socket_new(ps->srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		evutil_closesocket(fd);
		free(c);
		conn_leave();
		return;
	}
	c->ps = ps;
	c->state = PS_READING;
	c->peer = -1;
	len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		c->peer = cred.pid;
	TAILQ_INSERT_TAIL(&ps->conns, c, entry);
	bufferevent_setcb(c->bev, ps_read_cb, ps_write_cb, ps_event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ);
}

/* Remove the socket file (an abstract name has none). */
static void
ps_unlink(struct portserver *ps)
{
	const char	*path = ((struct sockaddr_un *)&ps->addr.ss)->sun_path;

	if (path[0] != '\0')
		unlink(path);
}

/* Listen on cfg's --portserver address; NULL with err set on failure. */
struct portserver *
portserver_open(struct server *srv, char *err, size_t errlen)
{
	struct portserver	*ps;
	int			 fd;

	if ((ps = calloc(1, sizeof *ps)) == NULL) {
		snprintf(err, errlen, "portserver: out of memory");
		return (NULL);
	}
	ps->srv = srv;
	ps->addr = srv->cfg->portserver;
	TAILQ_INIT(&ps->conns);
	if ((fd = listen_socket(srv, &ps->addr, err, errlen)) == -1) {
		free(ps);
		return (NULL);
	}
	if ((ps->lev = evconnlistener_new(srv->base, ps_accept_cb, ps,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd)) == NULL) {
		snprintf(err, errlen, "%s: cannot make a listener",
		    ps->addr.text);
		close(fd);
		ps_unlink(ps);
		free(ps);
		return (NULL);
	}
	evconnlistener_set_error_cb(ps->lev, listen_accept_error);
	log_info("portserver protocol on %s", ps->addr.text);
	return (ps);
}

/*
 * The turn's commit is done (ok) or failed: answer every request whose
 * lease it carried, or close them unanswered (the lease was rolled back).
 */
void
portserver_committed(void *arg, int ok)
{
	struct portserver *ps = arg;
	struct ps_conn	*c, *next;
	char		 line[16];
	int		 n;

	if (ps == NULL)
		return;
	for (c = TAILQ_FIRST(&ps->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->state != PS_COMMITTING)
			continue;
		if (!ok) {
			c->state = PS_READING;
			ps_refuse(c, "the database refused the lease");
			continue;
		}
		ps->granted++;
		c->state = PS_ANSWERING;
		n = snprintf(line, sizeof line, "%u\n", c->port);
		if (bufferevent_write(c->bev, line, (size_t)n) == -1)
			ps_close(c);
	}
}

/* Stop accepting; requests already read still get their answer. */
void
portserver_stop(struct portserver *ps)
{
	if (ps == NULL || ps->lev == NULL)
		return;
	evconnlistener_free(ps->lev);
	ps->lev = NULL;
	ps_unlink(ps);
}

/* Has every answer gone out (for the shutdown drain)? */
int
portserver_flushed(const struct portserver *ps)
{
	const struct ps_conn	*c;

	if (ps == NULL)
		return (1);
	TAILQ_FOREACH(c, &ps->conns, entry)
		if (c->state != PS_READING)
			return (0);
	return (1);
}

void
portserver_free(struct portserver *ps)
{
	if (ps == NULL)
		return;
	portserver_stop(ps);
	while (!TAILQ_EMPTY(&ps->conns))
		ps_close(TAILQ_FIRST(&ps->conns));
	free(ps);
}

uint64_t
portserver_granted(const struct portserver *ps)
{
	return (ps != NULL ? ps->granted : 0);
}

uint64_t
portserver_refused(const struct portserver *ps)
{
	return (ps != NULL ? ps->refused : 0);
}
