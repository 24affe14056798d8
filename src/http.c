/*
 * http.c: berthd's HTTP/1.1 carrier, on libevent bufferevents.
 *
 * Each connection reads one request at a time: its head is found in the
 * input, copied out with the request and parsed there (http-parse.c),
 * its body read, and the request handed to router_dispatch. Until it is
 * answered (at once, after the turn's commit, or when a parked query
 * wakes) later pipelined requests wait in the input, so answers leave in
 * order. Answers are whole: status line, headers and body in one go.
 *
 * A connection's life:
 *
 *	read -> body -> busy -> read ...	request by request
 *	read|body|busy -> flush -> linger	the last answer, then close
 *
 * Limits (docs/api.md, "Limits"): the head's size (--max-header-size),
 * the body's (64 KiB: 413 at once, unread), the input held unparsed
 * (reading stops past HTTP_READ_MAX), the output held unsent (no new
 * request is started past HTTP_OUT_MAX; a client that leaves more than
 * HTTP_CUTOFF unread is cut off, see http_drain_check), and a deadline: a
 * connection that makes no progress for a whole --idle-timeout period is
 * closed, unless the router holds its request.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "berthd.h"

#define HTTP_READ_MAX	(256 * 1024)	/* unparsed input held per client, */
					/* or a head and a body if more */
#define HTTP_OUT_MAX	(256 * 1024)	/* unsent output before we pause */
/*
 * A client with more than HTTP_CUTOFF of answers unsent must take at least
 * that much of them in each HTTP_DRAIN_MS, or it is cut off (closed). A
 * client that reads never comes near: over loopback or a unix socket it
 * takes a megabyte in about a millisecond, and over any link faster than
 * ~4 Mbit/s it takes even the largest list (thousands of leases with
 * their 4 KiB of meta, megabytes) at more than HTTP_CUTOFF a period. One
 * that does not read would otherwise hold its answers (HTTP_OUT_MAX and
 * one more at most), and with them list texts that are no longer
 * current, until the idle timeout; it holds them one period at most.
 */
#define HTTP_CUTOFF	(1024 * 1024)
#define HTTP_DRAIN_MS	2000
#define HTTP_LINGER_MS	2000		/* reading after our last answer */
/*
 * Bytes read at a time: what a request usually is, kept small enough that
 * libevent's buffer chain for it (header included, rounded to a power of
 * two from 1 KiB) is a 1 KiB block, which malloc serves from its
 * per-thread cache; after a read that filled it, HTTP_READ_BIG.
 */
#define HTTP_READ_CHUNK	960
#define HTTP_READ_BIG	16384
#define HTTP_HEAD_MAX	256		/* http_head's longest, and more */
#define HTTP_OUT_ROOM	192		/* an answer's own headers, mostly */
#define HTTP_CONN_CLOSE	1		/* http_head: say Connection: close */
#define HTTP_CONN_KEEP	2		/* ... or keep-alive (to HTTP/1.0) */

enum http_state {
	HTTP_READ,	/* waiting for a request's head */
	HTTP_BODY,	/* head read, waiting for its body */
	HTTP_BUSY,	/* the request is with the router */
	HTTP_FLUSH,	/* the last answer is going out; then linger */
	HTTP_LINGER	/* answered and shut for writing; close on EOF */
};

struct http_conn;

/* A request as the carrier holds it: the API's view, then the head. */
struct http_req {
	struct api_req	  req;		/* first: the router's view */
	struct http_conn *conn;		/* NULL once the client is gone */
	char		 *body;
	int		  close;	/* the client asked to close after */
	int		  keep_alive;	/* an HTTP/1.0 client asked to stay */
	struct http_field fields[];	/* then the head's text */
};

struct http_conn {
	struct http		*http;
	struct bufferevent	*bev;		/* output; input's buffer */
	struct event		*rd;		/* reading: see http_read_ev */
	struct event		*timer;
	struct event		*resume;	/* go on with the input */
	struct event		*drain;		/* http_drain_check */
	uint64_t		 queued;	/* bytes of answers ever queued */
	uint64_t		 taken_at_arm;	/* bytes taken when drain armed */
	enum http_state		 state;
	struct http_req		*cur;		/* in HTTP_BODY and HTTP_BUSY */
	size_t			 scan;		/* http_head_end's resume point */
	uint64_t		 progress;	/* requests begun + answered */
	uint64_t		 seen;		/* progress at the last tick */
	size_t			 unsent;	/* output at the last tick */
	int			 local;		/* over a unix socket */
	long			 uid;		/* the peer's (REQ_UID_*) */
	int			 eof;		/* the client sent all it will */
	int			 reading;	/* in http_input: do not recurse */
	int			 big;		/* the last read filled its room */
	TAILQ_ENTRY(http_conn)	 entry;
};

struct http {
	struct server		*srv;
	TAILQ_HEAD(, http_conn)	 conns;
	time_t			 date_at;
	char			 date[64];	/* the Date line, per second */
	size_t			 datelen;
};

static void	http_input(struct http_conn *);
static void	http_leave(struct http_conn *);
static void	http_refuse_fmt(struct http_conn *, struct http_req *, int,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));

/* The unparsed input held per client: a whole head and body fit. */
static size_t
http_read_max(const struct server *srv)
{
	size_t	need = srv->cfg->max_header_size + BERTH_BODY_MAX;

	return (need > HTTP_READ_MAX ? need : HTTP_READ_MAX);
}

/*
 * Read only while the input is being taken: past the bound, reading
 * stops until requests are taken from it.
 */
static void
http_flow(struct http_conn *c)
{
	if (c->state == HTTP_LINGER || c->eof)
		return;
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) >=
	    http_read_max(c->http->srv))
		event_del(c->rd);
	else
		event_add(c->rd, NULL);
}

/* A deadline period: --idle-timeout, or the linger while lingering. */
static void
http_arm(struct http_conn *c)
{
	struct timeval	tv = { (time_t)c->http->srv->cfg->idle_timeout, 0 };

	if (c->state == HTTP_LINGER) {
		tv.tv_sec = HTTP_LINGER_MS / 1000;
		tv.tv_usec = (HTTP_LINGER_MS % 1000) * 1000;
	}
	evtimer_add(c->timer, &tv);
}

static void
http_req_free(struct http_req *r)
{
	if (!r->req.out_fixed)
		free(r->req.out);
	free(r->body);
	free(r);
}

/* Free the request in hand, if any; a parked one leaves the waiters. */
static void
http_drop(struct http_conn *c)
{
	if (c->cur == NULL)
		return;
	if (c->cur->req.state == REQ_PARKED)
		waiters_cancel(c->http->srv->waiters, &c->cur->req);
	http_req_free(c->cur);
	c->cur = NULL;
}

/* Is the request in hand parked (waiting on berthd)? */
static int
http_parked(const struct http_conn *c)
{
	return (c->state == HTTP_BUSY && c->cur != NULL &&
	    c->cur->req.state == REQ_PARKED);
}

/*
 * Close now. A parked request is cancelled: nobody is left to read its
 * answer. One held for the commit is marked orphaned, and freed when the
 * commit answers it.
 */
static void
http_close(struct http_conn *c)
{
	struct http_req	*r = c->cur;

	if (r != NULL && c->state == HTTP_BUSY && r->req.state != REQ_PARKED)
		r->conn = NULL;
	else
		http_drop(c);
	TAILQ_REMOVE(&c->http->conns, c, entry);
	event_free(c->rd);		/* before the socket is closed */
	bufferevent_free(c->bev);
	event_free(c->timer);
	event_free(c->resume);
	event_free(c->drain);
	conn_leave();
	free(c);
}

/*
 * Our side is done: shut it for writing, then read what the client still
 * sends until it closes too (or HTTP_LINGER_MS), so that bytes it sent
 * after our last answer do not make the kernel reset the connection and
 * lose that answer on the way.
 */
static void
http_linger(struct http_conn *c)
{
	c->state = HTTP_LINGER;
	if (c->eof) {
		/* Not here: http_input may be below us, still using c. */
		event_active(c->resume, EV_TIMEOUT, 1);
		return;
	}
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
	event_add(c->rd, NULL);
	http_arm(c);
}

/*
 * Write the queued output now, from the callback that queued it, rather
 * than enabling EV_WRITE and writing on the loop's next turn: one write
 * instead of two epoll_ctl, an epoll_wait and the write (a bufferevent
 * starts with EV_WRITE enabled; ours keep it off). EV_WRITE is enabled
 * only while bytes are left over (the socket is full, or the write
 * failed): the bufferevent then writes the rest, or reports the error to
 * http_event_cb, and http_write_cb turns EV_WRITE off again.
 */
static void
http_push(struct http_conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	if (evbuffer_get_length(out) == 0 ||
	    (bufferevent_get_enabled(c->bev) & EV_WRITE))
		return;
	/* A bufferevent freezes its output's start for its own writes. */
	evbuffer_unfreeze(out, 1);
	(void)evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(c->bev, EV_WRITE);
}

/* Close once the output is out. */
static void
http_finish(struct http_conn *c)
{
	c->state = HTTP_FLUSH;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		http_linger(c);
}

/* Bytes of our answers the client has taken (the kernel accepted). */
static uint64_t
http_taken(const struct http_conn *c)
{
	size_t	unsent = evbuffer_get_length(bufferevent_get_output(c->bev));

	/* (A 100 Continue is not counted in queued: at most a few bytes.) */
	return (c->queued > unsent ? c->queued - unsent : 0);
}

/* Over HTTP_CUTOFF unsent: the client has HTTP_DRAIN_MS to take as much. */
static void
http_drain_arm(struct http_conn *c)
{
	struct timeval	tv = { HTTP_DRAIN_MS / 1000,
			    (HTTP_DRAIN_MS % 1000) * 1000 };

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) <= HTTP_CUTOFF ||
	    evtimer_pending(c->drain, NULL))
		return;
	c->taken_at_arm = http_taken(c);
	evtimer_add(c->drain, &tv);
}

/*
 * HTTP_DRAIN_MS after the output passed HTTP_CUTOFF: cut the client off
 * if it is still over and took less than HTTP_CUTOFF meanwhile; one that
 * reads, however slowly its output shrinks, gets another period.
 */
static void
http_drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;
	size_t			 unsent;

	(void)fd;
	(void)what;
	unsent = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (unsent <= HTTP_CUTOFF)
		return;
	if (http_taken(c) - c->taken_at_arm >= HTTP_CUTOFF) {
		http_drain_arm(c);
		return;
	}
	/* Debug, as the idle close: one line per connection would let a
	 * client that never reads fill the log at info. */
	log_debug("http: cut off a client that does not read its answers: "
	    "%zu bytes unsent, %llu taken in %d ms (over %d unsent, it must "
	    "take that much each period)", unsent,
	    (unsigned long long)(http_taken(c) - c->taken_at_arm),
	    HTTP_DRAIN_MS, HTTP_CUTOFF);
	http_close(c);
}

/* "Date: ...\r\n", made once a second. */
static const char *
http_date(struct http *h, size_t *len)
{
	struct tm	tm;
	time_t		now = time(NULL);

	if (now != h->date_at && gmtime_r(&now, &tm) != NULL) {
		h->datelen = strftime(h->date, sizeof h->date,
		    "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		h->date_at = now;
	}
	*len = h->datelen;
	return (h->date);
}

static char *
http_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return (p + n);
}

/*
 * An answer's head up to its own headers, into head (HTTP_HEAD_MAX
 * bytes): status line, Date, Content-Length (none for 204) and
 * Connection if said. By copies, not printf: it is most of the work of
 * answering a lookup. Returns its length.
 */
static size_t
http_head(struct http *h, char *head, int status, size_t len, int conn)
{
	const char	*reason = http_reason(status), *date;
	char		 num[24], *p = head, *d;
	size_t		 n;

	p = http_put(p, "HTTP/1.1 ", 9);
	d = fmt_u64(num + sizeof num, (uint64_t)status);
	p = http_put(p, d, (size_t)(num + sizeof num - d));
	*p++ = ' ';
	p = http_put(p, reason, strlen(reason));
	p = http_put(p, "\r\n", 2);
	date = http_date(h, &n);
	p = http_put(p, date, n);
	if (status != 204) {
		p = http_put(p, "Content-Length: ", 16);
		d = fmt_u64(num + sizeof num, (uint64_t)len);
		p = http_put(p, d, (size_t)(num + sizeof num - d));
		p = http_put(p, "\r\n", 2);
	}
	if (conn == HTTP_CONN_CLOSE)
		p = http_put(p, "Connection: close\r\n", 19);
	else if (conn == HTTP_CONN_KEEP)
		p = http_put(p, "Connection: keep-alive\r\n", 24);
	return ((size_t)(p - head));
}

/*
 * The carrier's send (api_req.send): the whole answer onto the
 * connection's output, then free the request; then on to the next one,
 * or close.
 */
static void
http_send(struct api_req *req, int status, struct evbuffer *body)
{
	struct http_req		*r = (struct http_req *)req;
	struct http_conn	*c = r->conn;
	struct evbuffer		*out;
	size_t			 len = body != NULL ? evbuffer_get_length(body) :
				    req->textlen;
	size_t			 before, n;
	char			 head[HTTP_HEAD_MAX];
	int			 close;

	if (c == NULL) {		/* the client left meanwhile */
		if (body != NULL)
			evbuffer_free(body);
		http_req_free(r);
		return;
	}
	out = bufferevent_get_output(c->bev);
	before = evbuffer_get_length(out);
	close = r->close || c->http->srv->stopping;
	n = http_head(c->http, head, status, len, close ? HTTP_CONN_CLOSE :
	    r->keep_alive ? HTTP_CONN_KEEP : 0);
	/* HEAD: the length a GET would have, without the body. */
	if (evbuffer_add(out, head, n) == -1 || (req->outlen > 0 &&
	    evbuffer_add(out, req->out, req->outlen) == -1) ||
	    evbuffer_add(out, "\r\n", 2) == -1 || (status != 204 &&
	    req->method != HTTP_HEAD && ((body != NULL &&
	    evbuffer_add_buffer(out, body) == -1) || (body == NULL &&
	    len > 0 && evbuffer_add(out, req->text, len) == -1)))) {
		log_warnx("http: out of memory for an answer; closing");
		close = 1;
	}
	if (body != NULL)
		evbuffer_free(body);
	http_req_free(r);
	c->cur = NULL;
	c->progress++;
	c->queued += evbuffer_get_length(out) - before;
	http_push(c);
	http_drain_arm(c);
	if (close) {
		http_finish(c);
		return;
	}
	c->state = HTTP_READ;
	/*
	 * Answered from inside http_input: its loop goes on. Answered later
	 * (after a commit, by a waking waiter): go on from the loop, not from
	 * here, where the caller may be walking a list the next request
	 * could join.
	 */
	if (!c->reading && (evbuffer_get_length(bufferevent_get_input(c->bev)) >
	    0 || c->eof))
		event_active(c->resume, EV_TIMEOUT, 1);
}

/* A request the carrier refuses itself; the connection closes after. */
static void
http_refuse(struct http_conn *c, struct http_req *r, int status,
    const char *code, const char *why)
{
	r->close = 1;
	c->cur = r;
	c->state = HTTP_BUSY;
	c->progress++;
	req_refuse(c->http->srv, &r->req, status, code, why);
}

static void
http_refuse_fmt(struct http_conn *c, struct http_req *r, int status,
    const char *code, const char *fmt, ...)
{
	char	why[160];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	http_refuse(c, r, status, code, why);
}

static const char *
http_code(int status)
{
	switch (status) {
	case 417: return ("expectation_failed");
	case 431: return ("headers_too_large");
	case 501: return ("not_implemented");
	case 505: return ("http_version_not_supported");
	default: return ("bad_request");
	}
}

/* Who is on the other end of req's connection: asked once, if ever. */
static long
http_peer_uid(struct api_req *req)
{
	struct http_conn	*c = ((struct http_req *)req)->conn;

	if (c == NULL)
		return (-1);
	if (c->uid == REQ_UID_UNASKED)
		c->uid = conn_peer_uid(bufferevent_getfd(c->bev));
	return (c->uid);
}

/* A new request, its head copied out of the input after its fields. */
static struct http_req *
http_req_new(struct http_conn *c, struct evbuffer *in, size_t hlen,
    size_t *nlines, char **text)
{
	struct http_req	*r;
	const char	*p = NULL;

	*nlines = 0;
	if (hlen > 0) {
		if ((p = (const char *)evbuffer_pullup(in,
		    (ev_ssize_t)hlen)) == NULL)
			return (NULL);
		*nlines = http_head_lines(p, hlen);
	}
	/* The answer's headers start in room of the same allocation. */
	if ((r = calloc(1, sizeof *r + *nlines * sizeof r->fields[0] + hlen +
	    1 + HTTP_OUT_ROOM)) == NULL)
		return (NULL);
	*text = (char *)(r->fields + *nlines);
	r->req.out = *text + hlen + 1;
	r->req.outcap = HTTP_OUT_ROOM;
	r->req.out_fixed = 1;
	if (hlen > 0) {
		memcpy(*text, p, hlen);
		evbuffer_drain(in, hlen);
	}
	(*text)[hlen] = '\0';
	r->conn = c;
	r->req.state = REQ_NEW;
	r->req.local = c->local;
	r->req.uid = REQ_UID_UNASKED;
	r->req.peer_uid = http_peer_uid;
	r->req.send = http_send;
	r->req.ctx = r;
	return (r);
}

/* What the head says of the request and its body, onto r. */
static void
http_req_fill(struct http_req *r, const struct http_head *h)
{
	r->req.method = h->method;
	r->req.path = h->path;
	r->req.query = h->query;
	r->req.uri_host = h->uri_host;
	r->req.fields = r->fields;
	r->req.nfields = h->nfields;
	r->close = h->close;
	r->keep_alive = h->minor == 0 && h->keep_alive;
}

/*
 * Take the next request's head from the input, if all of it is there:
 * 0 to wait for more input, 1 if there is a request (or a refusal).
 */
static int
http_take_head(struct http_conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct http_head	 h;
	struct http_req		*r;
	const char		*why, *p;
	char			*text;
	size_t			 len = evbuffer_get_length(in), limit, n, hlen;
	int			 rc;

	limit = c->http->srv->cfg->max_header_size;
	if ((n = len < limit ? len : limit) == 0)
		return (0);
	if ((p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n)) == NULL) {
		log_warnx("http: out of memory for a request; closing");
		http_finish(c);
		return (0);
	}
	hlen = http_head_end(p, n, &c->scan);
	if (hlen == 0 && len < limit && http_can_start((unsigned char)p[0]))
		return (0);
	c->scan = 0;
	if ((r = http_req_new(c, in, hlen, &n, &text)) == NULL) {
		log_warnx("http: out of memory for a request; closing");
		http_finish(c);
		return (0);
	}
	if (hlen == 0 && len < limit) {
		http_refuse(c, r, 400, "bad_request", "not an HTTP request: "
		    "berthd speaks plain HTTP here, and DNS over UDP only");
		return (1);
	}
	if (hlen == 0) {
		/* 400, not 431, as nginx does and docs/api.md says. */
		http_refuse(c, r, 400, "headers_too_large", "the request line "
		    "and headers are over --max-header-size bytes");
		return (1);
	}
	h.fields = r->fields;
	h.cap = n;
	rc = http_parse_head(text, hlen, &h, &why);
	http_req_fill(r, &h);
	if (rc != 0)
		http_refuse(c, r, rc, http_code(rc), why);
	else if (h.chunked)
		http_refuse(c, r, 411, "length_required", "send the body with "
		    "a Content-Length; berthd takes no chunked request bodies");
	else if (h.content_length > BERTH_BODY_MAX)
		http_refuse_fmt(c, r, 413, "body_too_large", "request body is "
		    "%lld bytes; the limit is %d", h.content_length,
		    BERTH_BODY_MAX);
	else if (h.content_length > 0 && (r->body = malloc(
	    (size_t)h.content_length + 1)) == NULL)
		http_refuse(c, r, 500, "internal", "out of memory");
	else {
		r->req.body_len = h.content_length > 0 ?
		    (size_t)h.content_length : 0;
		if (h.expect_continue &&
		    evbuffer_get_length(in) < r->req.body_len) {
			bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n",
			    25);
			http_push(c);
		}
		c->cur = r;
		c->state = HTTP_BODY;
	}
	return (1);
}

/* Take the current request's body, if all of it is there, and route it. */
static int
http_take_body(struct http_conn *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	struct http_req	*r = c->cur;
	size_t		 n = r->req.body_len;

	if (n > 0) {
		if (evbuffer_get_length(in) < n)
			return (0);
		evbuffer_remove(in, r->body, n);
		r->body[n] = '\0';
		r->req.body = r->body;
	}
	c->state = HTTP_BUSY;
	c->progress++;
	router_dispatch(c->http->srv, &r->req);
	/* Parked, but its client has already shut its side (http_leave). */
	if (c->eof && http_parked(c)) {
		http_leave(c);
		return (0);
	}
	return (1);
}

/*
 * Carry out the requests the input holds, one at a time, while none is
 * being answered and the output is not backed up.
 */
static void
http_input(struct http_conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	int		 more = 1, paused = 0;

	c->reading = 1;
	while (more) {
		switch (c->state) {
		case HTTP_READ:
			/* Answers pile up unread: wait for http_write_cb. */
			if ((paused = evbuffer_get_length(out) > HTTP_OUT_MAX))
				more = 0;
			else
				more = http_take_head(c);
			break;
		case HTTP_BODY:
			more = http_take_body(c);
			break;
		default:
			more = 0;
			break;
		}
	}
	c->reading = 0;
	/* All the client sent is answered; a partial request is dropped. */
	if (c->eof && !paused && (c->state == HTTP_READ ||
	    c->state == HTTP_BODY))
		http_leave(c);
	http_flow(c);
}

/*
 * The client has sent all it will: drop the request in hand (a partial
 * one; or a parked query, whose client has hung up or shut its side, which
 * a socket cannot tell apart: its wait ends unanswered) and close once
 * the answers to its earlier requests are out.
 */
static void
http_leave(struct http_conn *c)
{
	http_drop(c);
	http_finish(c);
}

/*
 * The socket has bytes (or the client's end): read once, into the
 * bufferevent's input buffer, and go on with the input. Our own read
 * event, not the bufferevent's: libevent's read asks the kernel how
 * much there is (ioctl FIONREAD) before each read, a third syscall per
 * request; a request fits in HTTP_READ_CHUNK, and a bigger one is read
 * on the next turns, in bigger reads (the event is level-triggered).
 */
static void
http_read_ev(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	(void)what;
	/* A bufferevent freezes its input's end for its own reads. */
	evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, c->big ? HTTP_READ_BIG :
	    HTTP_READ_CHUNK, &v, 1) < 1) {
		evbuffer_freeze(in, 0);
		log_warnx("http: out of memory reading a request; closing");
		http_close(c);
		return;
	}
	n = read(fd, v.iov_base, v.iov_len);
	c->big = n == (ssize_t)v.iov_len;
	if (n > 0) {
		v.iov_len = (size_t)n;
		evbuffer_commit_space(in, &v, 1);
	}
	evbuffer_freeze(in, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == -1) {
		http_close(c);		/* reset by the client */
		return;
	}
	if (c->state == HTTP_LINGER) {
		evbuffer_drain(in, (size_t)-1);
		if (n == 0)
			http_close(c);
		return;
	}
	if (n == 0) {
		/* The client sent all it will (it may still read). */
		c->eof = 1;
		event_del(c->rd);
		/*
		 * A blocking query's client that hangs up is gone, as Go's
		 * and nginx's servers take it: the socket cannot tell a
		 * half-close from a close, and a parked query may wait 300
		 * s, holding a connection of the budget for nobody.
		 */
		if (http_parked(c)) {
			http_leave(c);
			return;
		}
		if (c->state != HTTP_READ && c->state != HTTP_BODY)
			return;		/* busy: the answer comes first */
	}
	http_input(c);
}

/*
 * Later in the turn: go on with the input after an answer made outside
 * http_input, or close a connection that is done both ways.
 */
static void
http_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;

	(void)fd;
	(void)what;
	if (c->state == HTTP_LINGER && c->eof)
		http_close(c);
	else if (c->state == HTTP_READ)
		http_input(c);
}

/*
 * What http_push left over went out: close if that was the last answer,
 * else go on.
 */
static void
http_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn	*c = arg;

	bufferevent_disable(bev, EV_WRITE);
	if (c->state == HTTP_FLUSH)
		http_linger(c);
	else if (c->state == HTTP_READ &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		http_input(c);
}

/* Writing what http_push left over failed: the client is gone. */
static void
http_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	http_close(arg);
}

/*
 * A deadline period passed. Close a connection that made no progress in
 * it (no request begun or answered, no output taken) unless the router
 * holds its request: idle, or too slow to send or take a request.
 */
static void
http_tick(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;
	size_t			 unsent;

	(void)fd;
	(void)what;
	unsent = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (c->state == HTTP_LINGER || (c->state != HTTP_BUSY &&
	    c->progress == c->seen && (unsent == 0 || unsent >= c->unsent))) {
		if (c->state != HTTP_LINGER)
			log_debug("http: closing a connection idle or slow for "
			    "%us", c->http->srv->cfg->idle_timeout);
		http_close(c);
		return;
	}
	c->seen = c->progress;
	c->unsent = unsent;
	http_arm(c);
}

/* A listener's new client (an evconnlistener callback). */
void
http_accept(struct evconnlistener *lev, int fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct server		*srv = arg;
	struct http_conn	*c;

	(void)lev;
	(void)sa;
	(void)salen;
	if (srv->stopping || !conn_admit("http")) {
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->bev = bufferevent_socket_new(srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (c->rd = event_new(srv->base, fd, EV_READ | EV_PERSIST,
	    http_read_ev, c)) == NULL ||
	    (c->timer = evtimer_new(srv->base, http_tick, c)) == NULL ||
	    (c->resume = event_new(srv->base, -1, 0, http_resume, c)) == NULL ||
	    (c->drain = evtimer_new(srv->base, http_drain_check, c)) == NULL) {
		log_warnx("http: out of memory for a new connection");
		if (c != NULL && c->resume != NULL)
			event_free(c->resume);
		if (c != NULL && c->timer != NULL)
			event_free(c->timer);
		if (c != NULL && c->rd != NULL)
			event_free(c->rd);
		if (c != NULL && c->bev != NULL)
			bufferevent_free(c->bev);
		else
			close(fd);
		free(c);
		conn_leave();
		return;
	}
	c->http = srv->http;
	c->state = HTTP_READ;
	c->local = conn_local(fd);
	c->uid = REQ_UID_UNASKED;
	TAILQ_INSERT_TAIL(&c->http->conns, c, entry);
	/* The bufferevent only writes (see http_push and http_read_ev). */
	bufferevent_setcb(c->bev, NULL, http_write_cb, http_event_cb, c);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_add(c->rd, NULL);
	http_arm(c);
}

int
http_init(struct server *srv)
{
	if ((srv->http = calloc(1, sizeof *srv->http)) == NULL)
		return (-1);
	srv->http->srv = srv;
	TAILQ_INIT(&srv->http->conns);
	return (0);
}

/* Shutting down: is every request answered and every answer out? */
int
http_flushed(const struct server *srv)
{
	struct http_conn	*c;

	TAILQ_FOREACH(c, &srv->http->conns, entry) {
		if (c->state == HTTP_BUSY || evbuffer_get_length(
		    bufferevent_get_output(c->bev)) > 0)
			return (0);
	}
	return (1);
}

/* Close every connection (stopping); requests still held are orphaned. */
void
http_close_all(struct server *srv)
{
	struct http_conn	*c;

	while ((c = TAILQ_FIRST(&srv->http->conns)) != NULL)
		http_close(c);
}

void
http_free(struct server *srv)
{
	if (srv->http == NULL)
		return;
	http_close_all(srv);
	free(srv->http);
	srv->http = NULL;
}
