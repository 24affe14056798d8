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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
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

struct etcd {
	struct event_base	*base;
	const struct etcd_endpoint *eps;
	size_t			 neps;
	size_t			 cur;		/* endpoint in use */
	struct evhttp_connection *conn;		/* calls */
	char			 last_error[512];
};

struct etcd_call {
	struct etcd		*e;
	etcd_answer_fn		 fn;
	void			*arg;
};

struct etcd_watch {
	struct etcd		*e;
	struct evhttp_connection *conn;
	struct evhttp_request	*req;
	struct evbuffer		*pending;	/* a message not yet whole */
	etcd_event_fn		 fn;
	etcd_end_fn		 end;
	void			*arg;
	int			 failed;
};

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
	return (e);
}

void
etcd_free(struct etcd *e)
{
	if (e == NULL)
		return;
	if (e->conn != NULL)
		evhttp_connection_free(e->conn);
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
 */
int
etcd_failover(struct etcd *e)
{
	if (e->conn != NULL) {
		evhttp_connection_free(e->conn);
		e->conn = NULL;
	}
	e->cur = (e->cur + 1) % e->neps;
	return (e->cur == 0);
}

/* A connection to the endpoint in use. TLS endpoints are refused until
 * the OpenSSL bufferevent carrier is in (see cluster.c's start). */
static struct evhttp_connection *
etcd_connect(struct etcd *e, int timeout)
{
	const struct etcd_endpoint *ep = &e->eps[e->cur];
	struct evhttp_connection *c;

	if (ep->tls) {
		snprintf(e->last_error, sizeof e->last_error, "%s: https is "
		    "not supported by this build", ep->text);
		return (NULL);
	}
	if ((c = evhttp_connection_base_new(e->base, NULL, ep->host,
	    ep->port)) == NULL)
		return (NULL);
	evhttp_connection_set_retries(c, 0);
	evhttp_connection_set_timeout(c, timeout);
	evhttp_connection_set_max_body_size(c, ETCD_MAX_ANSWER);
	return (c);
}

/* A POST of body to path, headers as the gateway wants them. */
static int
etcd_send(struct etcd *e, struct evhttp_connection *c,
    struct evhttp_request *req, const char *path, json_t *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char		*text, hostport[300];
	int		 rc;

	if ((text = json_dumps(body, JSON_COMPACT)) == NULL) {
		evhttp_request_free(req);
		return (-1);
	}
	snprintf(hostport, sizeof hostport, "%s:%u", e->eps[e->cur].host,
	    e->eps[e->cur].port);
	evhttp_add_header(h, "Host", hostport);
	evhttp_add_header(h, "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), text,
	    strlen(text));
	free(text);
	rc = evhttp_make_request(c, req, EVHTTP_REQ_POST, path);
	return (rc);
}

/*
 * What went wrong with an answer, in e->last_error: no answer (the
 * connection failed), an HTTP error with etcd's message, or a body that
 * is not a JSON object. NULL when the answer is good: then *out holds it.
 */
static const char *
etcd_answer(struct etcd *e, struct evhttp_request *req, json_t **out)
{
	struct evbuffer	*in;
	json_error_t	 jerr;
	json_t		*j, *msg;
	size_t		 len;
	int		 code;

	*out = NULL;
	if (req == NULL || (code = evhttp_request_get_response_code(req)) == 0) {
		snprintf(e->last_error, sizeof e->last_error, "%s: no answer "
		    "(connection refused, reset or timed out)", etcd_endpoint(e));
		return (e->last_error);
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	j = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &jerr);
	if (code != 200) {
		msg = j != NULL ? json_object_get(j, "message") : NULL;
		if (msg == NULL)
			msg = j != NULL ? json_object_get(j, "error") : NULL;
		snprintf(e->last_error, sizeof e->last_error, "%s: HTTP %d%s%s",
		    etcd_endpoint(e), code, json_is_string(msg) ? ": " : "",
		    json_is_string(msg) ? json_string_value(msg) : "");
		json_decref(j);
		return (e->last_error);
	}
	if (!json_is_object(j)) {
		snprintf(e->last_error, sizeof e->last_error, "%s: an answer "
		    "that is not a JSON object", etcd_endpoint(e));
		json_decref(j);
		return (e->last_error);
	}
	*out = j;
	return (NULL);
}

static void
etcd_call_done(struct evhttp_request *req, void *arg)
{
	struct etcd_call *call = arg;
	struct etcd	*e = call->e;
	const char	*why;
	json_t		*j;

	why = etcd_answer(e, req, &j);
	/* A connection that failed is not reused: the next call reconnects. */
	if (why != NULL && (req == NULL ||
	    evhttp_request_get_response_code(req) == 0) && e->conn != NULL) {
		evhttp_connection_free_on_completion(e->conn);
		e->conn = NULL;
	}
	if (call->fn != NULL)
		call->fn(call->arg, j, why);
	json_decref(j);
	free(call);
}

int
etcd_call(struct etcd *e, const char *path, json_t *body, etcd_answer_fn fn,
    void *arg)
{
	struct etcd_call	*call;
	struct evhttp_request	*req;

	if (e->conn == NULL && (e->conn = etcd_connect(e, ETCD_TIMEOUT)) == NULL)
		return (-1);
	if ((call = calloc(1, sizeof *call)) == NULL)
		return (-1);
	call->e = e;
	call->fn = fn;
	call->arg = arg;
	if ((req = evhttp_request_new(etcd_call_done, call)) == NULL) {
		free(call);
		return (-1);
	}
	if (etcd_send(e, e->conn, req, path, body) == -1) {
		free(call);
		return (-1);
	}
	return (0);
}

/* --- watch: one streaming answer, a JSON object per message --- */

/* Hand every whole message in w->pending to the caller. */
static void
etcd_watch_messages(struct etcd_watch *w)
{
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
			    etcd_endpoint(w->e));
			w->failed = 1;
			json_decref(j);
			return;
		}
		w->fn(w->arg, result);
		json_decref(j);
	}
	if (evbuffer_get_length(w->pending) > ETCD_MAX_EVENT) {
		snprintf(w->e->last_error, sizeof w->e->last_error, "%s: a watch "
		    "message over %d bytes", etcd_endpoint(w->e), ETCD_MAX_EVENT);
		w->failed = 1;
	}
}

static void
etcd_watch_chunk(struct evhttp_request *req, void *arg)
{
	struct etcd_watch *w = arg;

	if (w->failed)
		return;
	evbuffer_add_buffer(w->pending, evhttp_request_get_input_buffer(req));
	etcd_watch_messages(w);
}

static void
etcd_watch_done(struct evhttp_request *req, void *arg)
{
	struct etcd_watch *w = arg;
	json_t		*j;
	const char	*why;

	w->req = NULL;
	if (req != NULL && evhttp_request_get_response_code(req) == 200 &&
	    !w->failed)
		why = "the watch stream ended";
	else if (w->failed)
		why = w->e->last_error;
	else {
		why = etcd_answer(w->e, req, &j);
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
	json_t			*body;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return (NULL);
	w->e = e;
	w->fn = fn;
	w->end = end;
	w->arg = arg;
	/* A quiet cluster sends nothing for as long as it likes. */
	if ((w->pending = evbuffer_new()) == NULL ||
	    (w->conn = etcd_connect(e, ETCD_WATCH_TIMEOUT)) == NULL ||
	    (w->req = evhttp_request_new(etcd_watch_done, w)) == NULL)
		goto fail;
	evhttp_request_set_chunked_cb(w->req, etcd_watch_chunk);
	if ((body = json_pack("{sO}", "create_request", create_request)) ==
	    NULL)
		goto fail;
	if (etcd_send(e, w->conn, w->req, "/v3/watch", body) == -1) {
		w->req = NULL;
		json_decref(body);
		goto fail;
	}
	json_decref(body);
	return (w);
fail:
	if (w->req != NULL)
		evhttp_request_free(w->req);
	w->req = NULL;
	etcd_watch_free(w);
	return (NULL);
}

void
etcd_watch_free(struct etcd_watch *w)
{
	if (w == NULL)
		return;
	/* Freeing the connection cancels the request in flight, if any. */
	if (w->conn != NULL)
		evhttp_connection_free(w->conn);
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
