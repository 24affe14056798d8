/*
 * request.c: an API request, whatever carried it. The HTTP adapter
 * (http.c) and the fuzz harness (tests/fuzz/) both fill in a struct
 * api_req and hand it to req_dispatch, which checks it against the
 * browser-safety rules (Host allow-list against DNS rebinding, Origin
 * refusal), routes it, and answers in JSON through the carrier's send
 * function. An answer made while the turn's transaction is open waits on
 * the pending list until the commit (group commit): nothing is
 * acknowledged before it is durable.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "berthd.h"

struct reply {
	struct api_req		*req;
	int			 status;
	struct evbuffer		*body;
	TAILQ_ENTRY(reply)	 entry;
};

static void	 req_route(struct server *, struct api_req *);

/*
 * Answer now: common headers, the change index and the metrics count,
 * then the carrier sends it and frees req.
 */
static void
req_send(struct server *srv, struct api_req *req, int status,
    struct evbuffer *body)
{
	struct evkeyvalq	*h = req->out;
	char			 idx[32];

	snprintf(idx, sizeof idx, "%llu", (unsigned long long)srv->broker->index);
	evhttp_remove_header(h, "X-Berth-Index");
	evhttp_add_header(h, "X-Berth-Index", idx);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (srv->stopping)
		evhttp_add_header(h, "Connection", "close");
	metrics_count_request(srv->metrics, req, status);
	req->send(req, status, body);
}

/* Send, or hold until the open transaction commits. */
static void
req_finish(struct server *srv, struct api_req *req, int status,
    struct evbuffer *body)
{
	struct reply	*r;

	if (!srv->broker->in_txn) {
		req_send(srv, req, status, body);
		return;
	}
	if ((r = calloc(1, sizeof *r)) == NULL) {
		req_send(srv, req, 500, body);
		return;
	}
	r->req = req;
	r->status = status;
	r->body = body;
	TAILQ_INSERT_TAIL(&srv->pending, r, entry);
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
	evhttp_add_header(req->out,
	    "Content-Type", "application/json");
	req_finish(srv, req, status, buf);
}

static json_t *
req_error_json(const char *code, const char *message)
{
	char	clean[sizeof ((struct berr *)0)->message];
	size_t	i;

	/*
	 * Messages quote what the client sent, which may be any bytes; JSON
	 * needs UTF-8, so anything but printable ASCII becomes '?'.
	 */
	for (i = 0; message[i] != '\0' && i < sizeof clean - 1; i++)
		clean[i] = message[i] >= 0x20 && message[i] < 0x7f ?
		    message[i] : '?';
	clean[i] = '\0';
	return (json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
	    clean));
}

void
req_reply_error(struct server *srv, struct api_req *req,
    const struct berr *e)
{
	req_reply_json(srv, req, e->status, req_error_json(e->code,
	    e->message));
}

void
req_reply_text(struct server *srv, struct api_req *req, int status,
    const char *ctype, const char *text, size_t len)
{
	struct evbuffer	*buf = evbuffer_new();

	if (buf != NULL)
		evbuffer_add(buf, text, len);
	evhttp_add_header(req->out,
	    "Content-Type", ctype);
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
 * The turn's transaction is over: send what waited for it, or, if the
 * commit failed, tell every one of those clients the database failed.
 */
void
req_send_pending(struct server *srv, int committed)
{
	struct reply	*r;
	struct berr	 e;
	json_t		*j;

	berr_set(&e, 503, "db_unavailable", "the lease database could not "
	    "commit this change; see berthd's log");
	while ((r = TAILQ_FIRST(&srv->pending)) != NULL) {
		TAILQ_REMOVE(&srv->pending, r, entry);
		if (committed) {
			req_send(srv, r->req, r->status, r->body);
			free(r);
			continue;
		}
		evbuffer_free(r->body);
		evhttp_clear_headers(r->req->out);
		/*
		 * A read saw memory that held the failed turn's changes; ask
		 * it again of the state the store has now. A write failed.
		 */
		if (r->req->method & (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)) {
			req_route(srv, r->req);	/* still timed from its start */
			free(r);
			continue;
		}
		evhttp_add_header(r->req->out, "Content-Type",
		    "application/json");
		j = req_error_json(e.code, e.message);
		req_send(srv, r->req, 503, req_json_buffer(j));
		json_decref(j);
		free(r);
	}
}

/* The token of "Authorization: Bearer TOKEN", or NULL. */
const char *
req_bearer(struct api_req *req)
{
	const char	*v;

	v = evhttp_find_header(req->in,
	    "Authorization");
	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return (NULL);
	v += 7;
	while (*v == ' ')
		v++;
	return (*v != '\0' ? v : NULL);
}

/*
 * The request body as one NUL-terminated string (free it). JSON bodies
 * only: a body of another declared type is 415, over the limit 413.
 */
int
req_body(struct api_req *req, char **out, size_t *len, struct berr *e)
{
	const char	*ctype;
	size_t		 n = req->body_len;

	*out = NULL;
	*len = 0;
	if (n > BERTH_BODY_MAX) {
		berr_set(e, 413, "body_too_large", "request body is %zu bytes; "
		    "the limit is %d", n, BERTH_BODY_MAX);
		return (-1);
	}
	ctype = evhttp_find_header(req->in, "Content-Type");
	if (n > 0 && (ctype == NULL || strncasecmp(ctype, "application/json",
	    16) != 0 || (ctype[16] != '\0' && ctype[16] != ';' &&
	    ctype[16] != ' '))) {
		berr_set(e, 415, "unsupported_media_type", "send the body as "
		    "Content-Type: application/json (curl: --json)");
		return (-1);
	}
	if ((*out = malloc(n + 1)) == NULL) {
		berr_set(e, 500, "internal", "out of memory");
		return (-1);
	}
	if (n > 0)
		memcpy(*out, req->body, n);
	(*out)[n] = '\0';
	*len = n;
	return (0);
}

/*
 * An unsigned query parameter: *found says whether it was given; a value
 * that is not a number up to max is 400. "5s" is read as 5, as Consul does.
 */
int
req_query_uint(struct api_req *req, const char *key, uint64_t max,
    uint64_t *out, int *found, struct berr *e)
{
	struct evkeyvalq	 q;
	const char		*query, *v;
	char			*end;
	unsigned long long	 n;
	int			 rc = 0;

	*found = 0;
	if ((query = req->query) == NULL)
		return (0);
	/* A decoded NUL would cut the value short: "5%00junk" reads as 5. */
	if (strcasestr(query, "%00") != NULL) {
		berr_set(e, 400, "invalid_field", "the query string holds a "
		    "NUL (%%00)");
		return (-1);
	}
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query, &q) == -1) {
		berr_set(e, 400, "invalid_field", "malformed query string");
		return (-1);
	}
	if ((v = evhttp_find_header(&q, key)) != NULL) {
		*found = 1;
		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno == ERANGE)
			end = (char *)v;	/* refused below */
		if (*end == 's' && end[1] == '\0')
			end++;
		if (!isdigit((unsigned char)v[0]) || *end != '\0' || n > max) {
			berr_set(e, 400, "invalid_field", "query parameter "
			    "'%s' must be a whole number from 0 to %llu", key,
			    (unsigned long long)max);
			rc = -1;
		} else
			*out = n;
	}
	evhttp_clear_headers(&q);
	return (rc);
}

/*
 * Host header allow-list against DNS rebinding: a loopback name or address,
 * or the host of one of our listen addresses, with an optional port.
 */
int
req_host_allowed(const struct server *srv, const char *host)
{
	char		 name[256];
	const char	*end;
	struct in_addr	 a4;
	struct in6_addr	 a6;
	size_t		 len, i;

	if (host[0] == '[') {
		if ((end = strchr(host, ']')) == NULL)
			return (0);
		len = (size_t)(end - host - 1);
		if (len >= sizeof name)
			return (0);
		memcpy(name, host + 1, len);
		name[len] = '\0';
		end++;
	} else {
		end = strchr(host, ':');
		len = end != NULL ? (size_t)(end - host) : strlen(host);
		if (len >= sizeof name)
			return (0);
		memcpy(name, host, len);
		name[len] = '\0';
		if (end == NULL)
			end = host + len;
	}
	if (*end == ':') {
		for (i = 1; end[i] != '\0'; i++)
			if (!isdigit((unsigned char)end[i]))
				return (0);
		if (i == 1 || i > 6)
			return (0);
	} else if (*end != '\0')
		return (0);
	if (strcasecmp(name, "localhost") == 0)
		return (1);
	if (len > 10 && strcasecmp(name + len - 10, ".localhost") == 0)
		return (1);
	if (inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127)
		return (1);
	if (inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))
		return (1);
	for (i = 0; i < srv->cfg->nlisten; i++) {
		if (srv->cfg->listen[i].family != AF_UNIX &&
		    strcasecmp(srv->cfg->listen[i].host, name) == 0)
			return (1);
	}
	return (0);
}

/* An Origin is allowed if configured, or if it is our own (same-origin). */
static int
req_origin_allowed(const struct server *srv, const char *origin,
    const char *host)
{
	char	self[300];
	size_t	i;

	for (i = 0; i < srv->cfg->norigins; i++) {
		if (strcmp(srv->cfg->origins[i], "*") == 0 ||
		    strcasecmp(srv->cfg->origins[i], origin) == 0)
			return (1);
	}
	if (host != NULL) {
		snprintf(self, sizeof self, "http://%s", host);
		if (strcasecmp(self, origin) == 0)
			return (1);
	}
	return (0);
}

static void
req_error(struct server *srv, struct api_req *req, int status,
    const char *code, const char *message)
{
	struct berr	e;

	berr_set(&e, status, code, "%s", message);
	req_reply_error(srv, req, &e);
}

static int
req_header_count(struct evkeyvalq *h, const char *name)
{
	struct evkeyval	*kv;
	int		 n = 0;

	TAILQ_FOREACH(kv, h, next) {
		if (strcasecmp(kv->key, name) == 0)
			n++;
	}
	return (n);
}

/* An absolute-form request line (GET http://host/...) names a host too. */
static int
req_uri_host_allowed(const struct server *srv, struct api_req *req)
{
	const char	*host = req->uri_host;
	char		 buf[300];

	if (host == NULL)
		return (1);
	if (strchr(host, ':') != NULL && host[0] != '[') {
		snprintf(buf, sizeof buf, "[%s]", host);
		host = buf;
	}
	return (req_host_allowed(srv, host));
}

/*
 * An allowed origin may read our answers (CORS). A preflight OPTIONS is
 * answered in req_dispatch.
 */
static void
req_cors(struct api_req *req, const char *origin)
{
	struct evkeyvalq	*out = req->out;

	evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
	evhttp_add_header(out, "Vary", "Origin");
	if (req->method != EVHTTP_REQ_OPTIONS)
		return;
	evhttp_add_header(out, "Access-Control-Allow-Methods",
	    "GET, HEAD, POST, DELETE");
	evhttp_add_header(out, "Access-Control-Allow-Headers",
	    "Authorization, Content-Type");
	evhttp_add_header(out, "Access-Control-Expose-Headers",
	    "X-Berth-Index, Location");
	evhttp_add_header(out, "Access-Control-Max-Age", "600");
}

/* The checks every request passes before it is routed. */
static int
req_admit(struct server *srv, struct api_req *req)
{
	struct evkeyvalq	*in = req->in;
	const char		*host, *origin;

	host = evhttp_find_header(in, "Host");
	/* No browser reaches a unix socket: no rebinding to refuse there. */
	if (!req->local && (req_header_count(in, "Host") > 1 ||
	    (host != NULL && !req_host_allowed(srv, host)) ||
	    !req_uri_host_allowed(srv, req))) {
		req_error(srv, req, 403, "forbidden_host", "the Host header "
		    "is not a loopback name or a listen address of this "
		    "berthd (DNS rebinding?)");
		return (-1);
	}
	origin = evhttp_find_header(in, "Origin");
	if (origin == NULL)
		return (0);
	if (!req_origin_allowed(srv, origin, host)) {
		req_error(srv, req, 403, "forbidden_origin", "requests from "
		    "web pages are refused unless berthd runs with "
		    "--allow-origin for that origin");
		return (-1);
	}
	req_cors(req, origin);
	return (0);
}

/* 405 unless the method is one of allowed (EVHTTP_REQ_* bits). */
static int
req_method_ok(struct server *srv, struct api_req *req, int allowed,
    const char *allow)
{
	if (req->method & allowed)
		return (1);
	evhttp_add_header(req->out, "Allow", allow);
	req_error(srv, req, 405, "method_not_allowed", "method not allowed "
	    "on this path");
	return (0);
}

/* Check, route and answer one request; req is freed by its answer. */
void
req_dispatch(struct server *srv, struct api_req *req)
{
	req->began = latency_now_ns();
	req_route(srv, req);
}

static void
req_route(struct server *srv, struct api_req *req)
{
	const char	*path = req->path;
	int		 get = EVHTTP_REQ_GET | EVHTTP_REQ_HEAD;

	if (req_admit(srv, req) == -1)
		return;
	if (path == NULL || path[0] == '\0')
		path = "/";
	/* A CORS preflight from an allowed origin (req_admit said so). */
	if (req->method == EVHTTP_REQ_OPTIONS &&
	    evhttp_find_header(req->in, "Origin") != NULL) {
		req_reply_json(srv, req, 204, NULL);
		return;
	}
	if (strcmp(path, "/") == 0) {
		if (req_method_ok(srv, req, get, "GET, HEAD"))
			api_index_page(srv, req);
	} else if (strcmp(path, "/metrics") == 0) {
		if (req_method_ok(srv, req, get, "GET, HEAD"))
			api_metrics(srv, req);
	} else if (strcmp(path, "/v1/health") == 0) {
		if (req_method_ok(srv, req, get, "GET, HEAD"))
			api_health(srv, req);
	} else if (strcmp(path, "/v1/status") == 0) {
		if (req_method_ok(srv, req, get, "GET, HEAD"))
			api_status(srv, req);
	} else if (strncmp(path, "/v1/services", 12) == 0 &&
	    (path[12] == '\0' || path[12] == '/'))
		api_services(srv, req, path + 12);
	else
		req_error(srv, req, 404, "not_found", "no such endpoint; see "
		    "GET /v1/status and docs/api.md");
}

