/*
 * etcd.c: berthd's client of etcd's v3 JSON gateway (the kv, lease
 * and watch calls) over libevent's HTTP client. Calls are POSTs of
 * a JSON body answered by one JSON object; a watch is one long POST whose
 * answer streams a JSON object per event batch. Keys and values are
 * base64 on the wire, as the gateway maps protobuf's bytes. On a
 * connection error the next endpoint is tried, after a backoff once all
 * have failed. Everything runs on berthd's event loop and nothing local
 * waits for it: the caller's callback runs when etcd has answered.
 */
#include "config.h"

#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "berthd.h"
#include "etcd.h"

#define ETCD_TIMEOUT		5	/* seconds, a call's answer */
/*
 * A watch's: evhttp has one timeout for connect, write and read, and
 * without one it reads for 50 s only, so a quiet cluster's watch ended
 * every 50 s. A dead etcd is noticed by the keepalive calls instead.
 */
#define ETCD_WATCH_TIMEOUT	(24 * 60 * 60)
#define ETCD_MAX_ANSWER		(64 * 1024 * 1024)	/* a range of a big view */
#define ETCD_MAX_EVENT		(4 * 1024 * 1024)	/* one watch message */

/*
 * One connection to an endpoint, for one call or one watch and never for
 * a second request: evhttp would reconnect it with the same bufferevent
 * (and, with TLS, the same SSL object cleared for reuse). Its owner
 * retires it, and etcd_reap frees it on a later turn of the loop: never
 * from inside one of evhttp's callbacks, which use it after they return.
 */
struct etcd_conn {
	TAILQ_ENTRY(etcd_conn)	 entry;
	struct etcd		*e;
	const struct etcd_endpoint *ep;
	struct evhttp_connection *evcon;
	int			 retired;	/* its owner is done with it */
	etcd_answer_fn		 fn;		/* a call's */
	void			*arg;
	struct etcd_watch	*watch;		/* or the watch's */
};
TAILQ_HEAD(etcd_conns, etcd_conn);

struct etcd {
	struct event_base	*base;
	const struct etcd_endpoint *eps;
	size_t			 neps;
	size_t			 cur;		/* endpoint in use */
	struct etcd_conns	 conns;		/* open, and retired ones */
	struct event		*reap;		/* frees the retired */
	char			 last_error[512];
};

struct etcd_watch {
	struct etcd		*e;
	struct etcd_conn	*conn;
	struct evbuffer		*pending;	/* a message not yet whole */
	etcd_event_fn		 fn;
	etcd_end_fn		 end;
	void			*arg;
	int			 failed;
};

static void
etcd_conn_free(struct etcd_conn *c)
{
	TAILQ_REMOVE(&c->e->conns, c, entry);
	/* Frees a request still on it without calling its callback. */
	evhttp_connection_free(c->evcon);
	free(c);
}

/* Done with c: its callbacks do nothing from now on; freed soon. */
static void
etcd_conn_retire(struct etcd_conn *c)
{
	c->retired = 1;
	event_active(c->e->reap, EV_TIMEOUT, 1);
}

static void
etcd_reap(evutil_socket_t fd, short what, void *arg)
{
	struct etcd		*e = arg;
	struct etcd_conn	*c, *next;

	(void)fd;
	(void)what;
	for (c = TAILQ_FIRST(&e->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->retired)
			etcd_conn_free(c);
	}
}

struct etcd *
etcd_new(struct event_base *base, const struct etcd_endpoint *eps,
    size_t neps)
{
	struct etcd	*e;

	if (neps == 0 || (e = calloc(1, sizeof *e)) == NULL)
		return (NULL);
	e->base = base;
	e->eps = eps;
	e->neps = neps;
	TAILQ_INIT(&e->conns);
	if ((e->reap = event_new(base, -1, 0, etcd_reap, e)) == NULL) {
		free(e);
		return (NULL);
	}
	return (e);
}

/* Every connection goes, calls in flight unanswered: free the watches
 * first. */
void
etcd_free(struct etcd *e)
{
	if (e == NULL)
		return;
	while (!TAILQ_EMPTY(&e->conns))
		etcd_conn_free(TAILQ_FIRST(&e->conns));
	event_free(e->reap);
	free(e);
}

const char *
etcd_endpoint(const struct etcd *e)
{
	return (e->eps[e->cur].text);
}

const char *
etcd_last_error(const struct etcd *e)
{
	return (e->last_error);
}

/*
 * Leave the endpoint in use for the next one; 1 when that wraps around
 * to the first, so the caller can back off before trying them all again.
 * Calls in flight are dropped unanswered: the caller starts afresh.
 */
int
etcd_failover(struct etcd *e)
{
	struct etcd_conn	*c;

	TAILQ_FOREACH(c, &e->conns, entry) {
		if (c->watch == NULL && !c->retired)
			etcd_conn_retire(c);
	}
	e->cur = (e->cur + 1) % e->neps;
	return (e->cur == 0);
}

/* A connection to the endpoint in use. TLS endpoints are refused until
 * the OpenSSL bufferevent carrier is in (see cluster.c's start). */
static struct etcd_conn *
etcd_connect(struct etcd *e, int timeout)
{
	const struct etcd_endpoint *ep = &e->eps[e->cur];
	struct etcd_conn	*c;
	struct bufferevent	*bev;

	if (ep->tls) {
		snprintf(e->last_error, sizeof e->last_error, "%s: https is "
		    "not supported by this build", ep->text);
		return (NULL);
	}
	if ((c = calloc(1, sizeof *c)) == NULL)
		return (NULL);
	c->e = e;
	c->ep = ep;
	/* Deferred callbacks: none runs inside evhttp_make_request. */
	if ((bev = bufferevent_socket_new(e->base, -1, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		free(c);
		return (NULL);
	}
	if ((c->evcon = evhttp_connection_base_bufferevent_new(e->base, NULL,
	    bev, ep->host, ep->port)) == NULL) {
		bufferevent_free(bev);
		free(c);
		return (NULL);
	}
	evhttp_connection_set_retries(c->evcon, 0);
	evhttp_connection_set_timeout(c->evcon, timeout);
	evhttp_connection_set_max_body_size(c->evcon, ETCD_MAX_ANSWER);
	TAILQ_INSERT_TAIL(&e->conns, c, entry);
	return (c);
}

/* A POST of body to path on c, headers as the gateway wants them; on
 * failure req is freed. */
static int
etcd_send(struct etcd_conn *c, struct evhttp_request *req, const char *path,
    json_t *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char		*text, hostport[300];
	int		 v6 = strchr(c->ep->host, ':') != NULL;

	if ((text = json_dumps(body, JSON_COMPACT)) == NULL) {
		evhttp_request_free(req);
		return (-1);
	}
	snprintf(hostport, sizeof hostport, "%s%s%s:%u", v6 ? "[" : "",
	    c->ep->host, v6 ? "]" : "", c->ep->port);
	evhttp_add_header(h, "Host", hostport);
	evhttp_add_header(h, "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), text,
	    strlen(text));
	free(text);
	/* evhttp frees req if this fails. */
	return (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, path));
}

/*
 * What went wrong with an answer on c, in last_error: no answer (the
 * connection failed), an HTTP error with etcd's message, or a body that
 * is not a JSON object. NULL when the answer is good: then *out holds it.
 */
static const char *
etcd_answer(struct etcd_conn *c, struct evhttp_request *req, json_t **out)
{
	char		*err = c->e->last_error;
	size_t		 errlen = sizeof c->e->last_error;
	struct evbuffer	*in;
	json_error_t	 jerr;
	json_t		*j, *msg;
	size_t		 len;
	int		 code;

	*out = NULL;
	if (req == NULL || (code = evhttp_request_get_response_code(req)) == 0) {
		snprintf(err, errlen, "%s: no answer (connection refused, "
		    "reset or timed out)", c->ep->text);
		return (err);
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	j = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &jerr);
	if (code != 200) {
		msg = j != NULL ? json_object_get(j, "message") : NULL;
		if (msg == NULL)
			msg = j != NULL ? json_object_get(j, "error") : NULL;
		snprintf(err, errlen, "%s: HTTP %d%s%s", c->ep->text, code,
		    json_is_string(msg) ? ": " : "",
		    json_is_string(msg) ? json_string_value(msg) : "");
		json_decref(j);
		return (err);
	}
	if (!json_is_object(j)) {
		snprintf(err, errlen, "%s: an answer that is not a JSON object",
		    c->ep->text);
		json_decref(j);
		return (err);
	}
	*out = j;
	return (NULL);
}

static void
etcd_call_done(struct evhttp_request *req, void *arg)
{
	struct etcd_conn *c = arg;
	const char	*why;
	json_t		*j;

	if (c->retired)		/* dropped by a failover */
		return;
	why = etcd_answer(c, req, &j);
	etcd_conn_retire(c);
	if (c->fn != NULL)
		c->fn(c->arg, j, why);
	json_decref(j);
}

/* A call on a connection of its own; its callback never runs before this
 * returns. */
int
etcd_call(struct etcd *e, const char *path, json_t *body, etcd_answer_fn fn,
    void *arg)
{
	struct etcd_conn	*c;
	struct evhttp_request	*req;

	if ((c = etcd_connect(e, ETCD_TIMEOUT)) == NULL)
		return (-1);
	c->fn = fn;
	c->arg = arg;
	if ((req = evhttp_request_new(etcd_call_done, c)) == NULL ||
	    etcd_send(c, req, path, body) == -1) {
		etcd_conn_retire(c);
		return (-1);
	}
	return (0);
}

/* --- watch: one streaming answer, a JSON object per message --- */

/* Hand every whole message in w->pending to the caller, who may free the
 * watch from its callback: c (retired then, not freed) tells. */
static void
etcd_watch_messages(struct etcd_conn *c)
{
	struct etcd_watch	*w = c->watch;
	struct evbuffer_ptr	 nl;
	json_error_t		 jerr;
	json_t			*j, *result;
	char			*line;
	size_t			 len;

	for (;;) {
		nl = evbuffer_search(w->pending, "\n", 1, NULL);
		if (nl.pos == -1)
			break;
		len = (size_t)nl.pos;
		if ((line = malloc(len + 1)) == NULL) {
			w->failed = 1;
			return;
		}
		evbuffer_remove(w->pending, line, len);
		evbuffer_drain(w->pending, 1);
		line[len] = '\0';
		j = json_loadb(line, len, 0, &jerr);
		free(line);
		if (len == 0 && j == NULL)
			continue;
		/* The gateway wraps each WatchResponse in "result". */
		result = j != NULL ? json_object_get(j, "result") : NULL;
		if (!json_is_object(result)) {
			snprintf(w->e->last_error, sizeof w->e->last_error,
			    "%s: a watch message berthd cannot read",
			    c->ep->text);
			w->failed = 1;
			json_decref(j);
			return;
		}
		w->fn(w->arg, result);
		json_decref(j);
		if (c->retired)
			return;
	}
	if (evbuffer_get_length(w->pending) > ETCD_MAX_EVENT) {
		snprintf(w->e->last_error, sizeof w->e->last_error, "%s: a watch "
		    "message over %d bytes", c->ep->text, ETCD_MAX_EVENT);
		w->failed = 1;
	}
}

static void
etcd_watch_chunk(struct evhttp_request *req, void *arg)
{
	struct etcd_conn *c = arg;

	if (c->retired || c->watch->failed)
		return;
	evbuffer_add_buffer(c->watch->pending,
	    evhttp_request_get_input_buffer(req));
	etcd_watch_messages(c);
}

static void
etcd_watch_done(struct evhttp_request *req, void *arg)
{
	struct etcd_conn *c = arg;
	struct etcd_watch *w = c->watch;
	json_t		*j;
	const char	*why;

	if (c->retired)
		return;
	if (req != NULL && evhttp_request_get_response_code(req) == 200 &&
	    !w->failed)
		why = "the watch stream ended";
	else if (w->failed)
		why = w->e->last_error;
	else {
		why = etcd_answer(c, req, &j);
		json_decref(j);
		if (why == NULL)
			why = "the watch stream ended";
	}
	w->end(w->arg, why);
}

struct etcd_watch *
etcd_watch(struct etcd *e, json_t *create_request, etcd_event_fn fn,
    etcd_end_fn end, void *arg)
{
	struct etcd_watch	*w;
	struct evhttp_request	*req;
	json_t			*body;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return (NULL);
	w->e = e;
	w->fn = fn;
	w->end = end;
	w->arg = arg;
	/* A quiet cluster sends nothing for as long as it likes. */
	if ((w->pending = evbuffer_new()) == NULL ||
	    (w->conn = etcd_connect(e, ETCD_WATCH_TIMEOUT)) == NULL)
		goto fail;
	w->conn->watch = w;
	if ((req = evhttp_request_new(etcd_watch_done, w->conn)) == NULL)
		goto fail;
	evhttp_request_set_chunked_cb(req, etcd_watch_chunk);
	body = json_pack("{sO}", "create_request", create_request);
	if (body == NULL) {
		evhttp_request_free(req);
		goto fail;
	}
	if (etcd_send(w->conn, req, "/v3/watch", body) == -1) {
		json_decref(body);
		goto fail;
	}
	json_decref(body);
	return (w);
fail:
	etcd_watch_free(w);
	return (NULL);
}

/* Safe from the watch's own callbacks. */
void
etcd_watch_free(struct etcd_watch *w)
{
	if (w == NULL)
		return;
	/* Its request in flight, if any, goes with the connection. */
	if (w->conn != NULL)
		etcd_conn_retire(w->conn);
	if (w->pending != NULL)
		evbuffer_free(w->pending);
	free(w);
}

/* --- the gateway's encodings --- */

/* len bytes as base64, NUL-terminated; NULL when out of memory. */
char *
etcd_b64(const void *data, size_t len)
{
	char	*out;

	if (len > (size_t)INT32_MAX / 2 ||
	    (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return (NULL);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return (out);
}

/* The bytes base64 s stands for, NUL-terminated, their count in *len;
 * NULL when s is not base64 or memory runs out. */
char *
etcd_unb64(const char *s, size_t *len)
{
	size_t		 n = strlen(s);
	unsigned char	*out;
	int		 got;

	if (n % 4 != 0 || n > (size_t)INT32_MAX ||
	    (out = malloc(n / 4 * 3 + 1)) == NULL)
		return (NULL);
	if ((got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n)) < 0) {
		free(out);
		return (NULL);
	}
	/* EVP_DecodeBlock counts the padding as bytes. */
	if (n >= 1 && s[n - 1] == '=')
		got--;
	if (n >= 2 && s[n - 2] == '=')
		got--;
	out[got] = '\0';
	*len = (size_t)got;
	return ((char *)out);
}

/* The gateway writes int64 fields as decimal strings; 0 when absent. */
int64_t
etcd_int(json_t *obj, const char *key)
{
	json_t	*v = json_object_get(obj, key);

	if (json_is_integer(v))
		return (json_integer_value(v));
	if (json_is_string(v))
		return (strtoll(json_string_value(v), NULL, 10));
	return (0);
}
