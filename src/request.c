/*
 * request.c: an API request, whatever carried it, from the moment its
 * carrier (http.c, or the fuzz harness) hands it over until its answer is
 * sent: its state, the answers it can be given, and the group-commit
 * hold. Routing is router.c's; the handlers are api-*.c.
 *
 * An answer made while the turn's transaction is open is held until the
 * commit: nothing is acknowledged before it is durable.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>		/* evhttp_parse_query_str */
#include <event2/keyvalq_struct.h>

#include "berthd.h"

/* The HTTP status of each core error (docs/api.md, "Errors"). */
static const int req_berr_status[BERR_COUNT] = {
	[BERR_BAD_JSON] = 400,
	[BERR_INVALID_FIELD] = 400,
	[BERR_INVALID_NAME] = 400,
	[BERR_PID_NOT_VISIBLE] = 400,
	[BERR_BAD_TOKEN] = 403,
	[BERR_NOT_FOUND] = 404,
	[BERR_NAME_TAKEN] = 409,
	[BERR_PORT_UNAVAILABLE] = 409,
	[BERR_POOL_EXHAUSTED] = 503,
	[BERR_LEASE_LIMIT] = 503,
	[BERR_DB_UNAVAILABLE] = 503,
	[BERR_NOMEM] = 500
};

static const char *const req_state_names[] = {
	"new", "routed", "parked", "held", "sent"
};

/*
 * The one place a request changes state. The moves a request may make:
 *
 *	new -> routed			router_dispatch
 *	routed -> parked		a blocking query waits (waiters.c)
 *	routed|parked -> held -> sent	answered inside an open transaction
 *	routed|parked -> sent		answered
 *	held -> routed			a read whose turn failed to commit
 *
 * A parked request's wait is not a latency, so its start time goes.
 */
void
req_set_state(struct api_req *req, enum req_state to)
{
	static const unsigned int ok[] = {
		[REQ_NEW] = 1u << REQ_ROUTED,
		[REQ_ROUTED] = 1u << REQ_PARKED | 1u << REQ_HELD | 1u << REQ_SENT,
		[REQ_PARKED] = 1u << REQ_HELD | 1u << REQ_SENT,
		[REQ_HELD] = 1u << REQ_ROUTED | 1u << REQ_SENT,
		[REQ_SENT] = 0
	};

	if ((ok[req->state] & (1u << to)) == 0)
		fatalx("request: cannot go from %s to %s",
		    req_state_names[req->state], req_state_names[to]);
	if (to == REQ_ROUTED && req->state == REQ_NEW)
		req->began = latency_now_ns();
	else if (to == REQ_PARKED)
		req->began = 0;
	req->state = to;
}

static int	req_add_raw(struct api_req *, const char *, size_t);

/*
 * Answer now: common headers, the change index and the metrics count,
 * then the carrier sends it and frees req.
 */
static void
req_send(struct server *srv, struct api_req *req, int status,
    struct evbuffer *body)
{
	static const char	 fixed[] = "\r\nCache-Control: no-store\r\n"
				    "X-Content-Type-Options: nosniff\r\n";
	char			 text[96], *p, *end;

	/*
	 * Every answer says these: copies, no printf (a lookup's whole
	 * cost is a few microseconds). The index goes in backwards, ending
	 * where the fixed lines begin.
	 */
	end = text + sizeof text - (sizeof fixed - 1);
	memcpy(end, fixed, sizeof fixed - 1);
	p = fmt_u64(end, req->index != 0 ? req->index :
	    broker_index(srv->broker)) - 15;
	memcpy(p, "X-Berth-Index: ", 15);
	req_add_raw(req, p, (size_t)(text + sizeof text - p));
	metrics_count_request(srv->metrics, req, status);
	req_set_state(req, REQ_SENT);
	req->send(req, status, body);
}

/* Send, or hold until the open transaction commits. */
static void
req_finish(struct server *srv, struct api_req *req, int status,
    struct evbuffer *body)
{
	if (!broker_in_txn(srv->broker)) {
		req_send(srv, req, status, body);
		return;
	}
	req->status = status;
	req->answer = body;
	req_set_state(req, REQ_HELD);
	TAILQ_INSERT_TAIL(&srv->held, req, held_entry);
}

static struct evbuffer *
req_json_buffer(json_t *j)
{
	struct evbuffer	*buf;
	char		*text;

	if ((buf = evbuffer_new()) == NULL)
		return (NULL);
	if (j != NULL && (text = json_dumps(j, JSON_COMPACT)) != NULL) {
		evbuffer_add(buf, text, strlen(text));
		evbuffer_add(buf, "\n", 1);
		free(text);
	}
	return (buf);
}

/* Answer with a JSON body (NULL for none); steals the reference to j. */
void
req_reply_json(struct server *srv, struct api_req *req, int status,
    json_t *j)
{
	struct evbuffer	*buf = req_json_buffer(j);

	json_decref(j);
	req_reply_buffer(srv, req, status, "application/json", buf);
}

/* An answer that carried a shared text is gone (sent or freed). */
static void
req_shared_unref(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	registry_text_unref(arg);
}

/*
 * Answer 200 with a shared JSON text (a list built once per change), by
 * reference: t's reference is taken (and dropped whatever happens); NULL
 * means it could not be built.
 */
void
req_reply_shared(struct server *srv, struct api_req *req,
    struct registry_text *t)
{
	struct evbuffer	*buf = NULL;

	if (t == NULL || (buf = evbuffer_new()) == NULL ||
	    evbuffer_add_reference(buf, t->text, t->len, req_shared_unref,
	    t) == -1) {
		/* Not added: the reference is still ours to drop. */
		registry_text_unref(t);
		if (buf != NULL)
			evbuffer_free(buf);
		req_fail(srv, req, 500, "internal", "out of memory");
		return;
	}
	req_reply_buffer(srv, req, 200, "application/json", buf);
}

/*
 * The error object. Messages quote what the client sent, which may be any
 * bytes; JSON needs UTF-8, so anything but printable ASCII becomes '?'.
 */
static json_t *
req_error_json(const char *code, const char *message)
{
	char	clean[sizeof ((struct berr *)0)->message];
	size_t	i;

	for (i = 0; message[i] != '\0' && i < sizeof clean - 1; i++)
		clean[i] = message[i] >= 0x20 && message[i] < 0x7f ?
		    message[i] : '?';
	clean[i] = '\0';
	return (json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
	    clean));
}

/* Answer with an error of the core, as its HTTP status. */
void
req_reply_error(struct server *srv, struct api_req *req,
    const struct berr *e)
{
	int	status = e->code < BERR_COUNT ? req_berr_status[e->code] : 500;

	req_reply_json(srv, req, status, req_error_json(berr_name(e->code),
	    e->message));
}

/*
 * A request its carrier refuses before routing: a head that cannot be
 * parsed, a body too large to read. It is answered as routed requests are.
 */
void
req_refuse(struct server *srv, struct api_req *req, int status,
    const char *code, const char *message)
{
	req->refused = 1;
	req_set_state(req, REQ_ROUTED);
	req_fail(srv, req, status, code, "%s", message);
}

/* Answer with an error of the HTTP layer itself (405, 413, 403 ...). */
void
req_fail(struct server *srv, struct api_req *req, int status,
    const char *code, const char *fmt, ...)
{
	char	message[sizeof ((struct berr *)0)->message];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	req_reply_json(srv, req, status, req_error_json(code, message));
}

/*
 * Answer with body as it is, a buffer the caller filled: its bytes may be
 * shared with other answers (evbuffer_add_reference), never copied here.
 */
void
req_reply_buffer(struct server *srv, struct api_req *req, int status,
    const char *ctype, struct evbuffer *body)
{
	req_add_header(req, "Content-Type", ctype);
	req_finish(srv, req, status, body);
}

void
req_reply_text(struct server *srv, struct api_req *req, int status,
    const char *ctype, const char *text, size_t len)
{
	struct evbuffer	*buf;

	req_add_header(req, "Content-Type", ctype);
	/* Sent now: the carrier copies the text straight to the client. */
	if (!broker_in_txn(srv->broker)) {
		req->text = text;
		req->textlen = len;
		req_send(srv, req, status, NULL);
		return;
	}
	if ((buf = evbuffer_new()) != NULL)
		evbuffer_add(buf, text, len);
	req_finish(srv, req, status, buf);
}

/* Answer with a lease as lookups show it, from its cached JSON text. */
void
req_reply_lease(struct server *srv, struct api_req *req, struct lease *l)
{
	const char	*text;
	size_t		 len;

	if ((text = lease_json_text(l, &len)) == NULL) {
		req_reply_json(srv, req, 200, lease_to_json(l, 0));
		return;
	}
	req_reply_text(srv, req, 200, "application/json", text, len);
}

/*
 * The turn's transaction is over: send what was held for it. If the
 * commit failed, a write is told the database failed; a read saw memory
 * that held the failed turn's changes, so it goes back to routed and is
 * handed to redo, to be asked again of the state the store has now.
 */
void
req_send_held(struct server *srv, int committed,
    void (*redo)(struct server *, struct api_req *))
{
	struct api_req	*req;

	while ((req = TAILQ_FIRST(&srv->held)) != NULL) {
		TAILQ_REMOVE(&srv->held, req, held_entry);
		/* A refusal depends on nothing the turn changed. */
		if (committed || req->refused) {
			req_send(srv, req, req->status, req->answer);
			continue;
		}
		if (req->answer != NULL)
			evbuffer_free(req->answer);
		req->answer = NULL;
		req->outlen = 0;	/* its headers go with the answer */
		req_set_state(req, REQ_ROUTED);
		if (req->method & (HTTP_GET | HTTP_HEAD)) {
			redo(srv, req);	/* still timed from its start */
			continue;
		}
		req_fail(srv, req, 503, "db_unavailable", "the lease database "
		    "could not commit this change; see berthd's log");
	}
}

/* Who asks: the peer's uid, learnt from the carrier once, or -1. */
long
req_uid(struct api_req *req)
{
	if (req->uid == REQ_UID_UNASKED)
		req->uid = req->peer_uid != NULL ? req->peer_uid(req) : -1;
	return (req->uid);
}

/*
 * Root and berthd's own user are admins, over any socket; a browser never
 * is, whoever runs it: it acts for a page.
 */
int
req_is_admin(struct api_req *req)
{
	long	uid;

	if (req->browser)
		return (0);
	uid = req_uid(req);
	return (uid == 0 || (uid != -1 && (uid_t)uid == geteuid()));
}

/* The request's first header of this name (any case), or NULL. */
const char *
req_header(const struct api_req *req, const char *name)
{
	return (http_field(req->fields, req->nfields, name));
}

/* len more bytes of header text, taken: where to write them, or NULL. */
static char *
req_out_room(struct api_req *req, size_t len)
{
	size_t	 need = req->outlen + len, cap;
	char	*p;

	if (need > req->outcap) {
		cap = req->outcap > 0 ? req->outcap * 2 : 256;
		while (cap < need)
			cap *= 2;
		if (req->out_fixed) {
			if ((p = malloc(cap)) == NULL)
				return (NULL);
			memcpy(p, req->out, req->outlen);
			req->out_fixed = 0;
		} else if ((p = realloc(req->out, cap)) == NULL)
			return (NULL);
		req->out = p;
		req->outcap = cap;
	}
	p = req->out + req->outlen;
	req->outlen = need;
	return (p);
}

/*
 * Add a header to the answer. Names and values are berthd's own; one with
 * a CR or LF would end the header early, so it is refused (-1), as it is
 * without memory.
 */
int
req_add_header(struct api_req *req, const char *name, const char *value)
{
	size_t	 nlen = strlen(name), vlen = strlen(value);
	char	*p;

	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return (-1);
	if ((p = req_out_room(req, nlen + vlen + 4)) == NULL)
		return (-1);
	memcpy(p, name, nlen);
	memcpy(p + nlen, ": ", 2);
	memcpy(p + nlen + 2, value, vlen);
	memcpy(p + nlen + 2 + vlen, "\r\n", 2);
	return (0);
}

/* Add whole header lines ("Name: value\r\n"...), as they are. */
static int
req_add_raw(struct api_req *req, const char *lines, size_t len)
{
	char	*p;

	if ((p = req_out_room(req, len)) == NULL)
		return (-1);
	memcpy(p, lines, len);
	return (0);
}

/* v in decimal, written backwards to end at end; returns its first byte. */
char *
fmt_u64(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return (end);
}

/* The token of "Authorization: Bearer TOKEN", or NULL. */
const char *
req_bearer(struct api_req *req)
{
	const char	*v;

	v = req_header(req, "Authorization");
	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return (NULL);
	v += 7;
	while (*v == ' ')
		v++;
	return (*v != '\0' ? v : NULL);
}

/*
 * The request body as one NUL-terminated string (free it). JSON bodies
 * only: a body of another declared type is 415, over the limit 413. On
 * -1 the request has been answered.
 */
int
req_body(struct server *srv, struct api_req *req, char **out, size_t *len)
{
	const char	*ctype;
	size_t		 n = req->body_len;

	*out = NULL;
	*len = 0;
	if (n > BERTH_BODY_MAX) {
		req_fail(srv, req, 413, "body_too_large", "request body is %zu "
		    "bytes; the limit is %d", n, BERTH_BODY_MAX);
		return (-1);
	}
	ctype = req_header(req, "Content-Type");
	if (n > 0 && (ctype == NULL || strncasecmp(ctype, "application/json",
	    16) != 0 || (ctype[16] != '\0' && ctype[16] != ';' &&
	    ctype[16] != ' '))) {
		req_fail(srv, req, 415, "unsupported_media_type", "send the "
		    "body as Content-Type: application/json (curl: --json)");
		return (-1);
	}
	if ((*out = malloc(n + 1)) == NULL) {
		req_fail(srv, req, 500, "internal", "out of memory");
		return (-1);
	}
	if (n > 0)
		memcpy(*out, req->body, n);
	(*out)[n] = '\0';
	*len = n;
	return (0);
}

/* Read one query value as a whole number up to max; "5s" is 5, as Consul. */
static int
req_parse_uint(const char *v, uint64_t max, uint64_t *out)
{
	char			*end;
	unsigned long long	 n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno == ERANGE)
		return (-1);
	if (*end == 's' && end[1] == '\0')
		end++;
	if (!isdigit((unsigned char)v[0]) || *end != '\0' || n > max)
		return (-1);
	*out = n;
	return (0);
}

/*
 * An unsigned query parameter: *found says whether it was given; a value
 * that is not a number up to max is answered 400 and -1 returned.
 */
int
req_query_uint(struct server *srv, struct api_req *req, const char *key,
    uint64_t max, uint64_t *out, int *found)
{
	struct evkeyvalq	 q;
	const char		*v;
	int			 rc = 0;

	*found = 0;
	if (req->query == NULL)
		return (0);
	/* A decoded NUL would cut the value short: "5%00junk" reads as 5. */
	if (strcasestr(req->query, "%00") != NULL) {
		req_fail(srv, req, 400, "invalid_field", "the query string "
		    "holds a NUL (%%00)");
		return (-1);
	}
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(req->query, &q) == -1) {
		req_fail(srv, req, 400, "invalid_field", "malformed query "
		    "string");
		return (-1);
	}
	if ((v = evhttp_find_header(&q, key)) != NULL) {
		*found = 1;
		if ((rc = req_parse_uint(v, max, out)) == -1)
			req_fail(srv, req, 400, "invalid_field", "query "
			    "parameter '%s' must be a whole number from 0 to "
			    "%llu", key, (unsigned long long)max);
	}
	evhttp_clear_headers(&q);
	return (rc);
}
