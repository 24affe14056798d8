/*
 * fuzz_request.c: libFuzzer harness for berthd's whole request path:
 * method, target, headers and body in, answer out, without sockets.
 *
 * An input is an HTTP/1.1 request as text ("METHOD TARGET HTTP/1.1",
 * header lines, an empty line, the body). A leading '!' marks it as
 * coming over the unix socket from an admin. Each request goes through
 * router_dispatch against a real broker on an in-memory database, then the
 * turn's commit runs and parked requests are flushed. Beyond the
 * sanitizers, the harness aborts if a request is not answered exactly
 * once, if an answer's status is outside 200-599, or if an error answer
 * in JSON lacks {"error":{"code","message"}}.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "berthd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct server	 fuzz_srv;
static struct config	 fuzz_cfg;
static int		 fuzz_ready;
static unsigned int	 fuzz_outstanding;
static unsigned long	 fuzz_runs;

/* Every pool port is free: the harness must not depend on the host. */
static int
fuzz_probe(uint16_t port, int proto)
{
	(void)port;
	(void)proto;
	return (1);
}

static void
fuzz_init(void)
{
	struct port_range	 range = { 61000, 61063 };
	struct store		*store;
	struct pool		*pool;
	struct broker		*b;
	char			*argv[] = { (char *)"fuzz", NULL };
	char			 err[256];

	log_init(LOG_LVL_ERROR, NULL);
	if (config_parse(&fuzz_cfg, 1, argv, err, sizeof err) != CONFIG_OK)
		abort();
	snprintf(fuzz_cfg.db, sizeof fuzz_cfg.db, ":memory:");
	if ((store = store_open(":memory:", 0, err, sizeof err)) == NULL ||
	    (pool = pool_new(&range, 1, 60000)) == NULL ||
	    (b = broker_new(store, pool, 60000, fuzz_probe, NULL)) == NULL ||
	    server_init(&fuzz_srv, &fuzz_cfg, b) == -1)
		abort();
	/*
	 * No pidfd watches (owners are checked by broker rules only) and no
	 * commit event: each run commits and flushes its turn itself.
	 */
	broker_drop_hooks(b);
	if (broker_load(b, err, sizeof err) == -1)
		abort();
	fuzz_ready = 1;
}

/* Does the answer carry header name with this value (any, if NULL)? */
static int
fuzz_has_header(const struct api_req *req, const char *name,
    const char *value)
{
	const char	*p = req->out, *end = req->out + req->outlen, *eol;
	size_t		 n = strlen(name);

	for (; p < end; p = eol + 2) {
		if ((eol = memmem(p, (size_t)(end - p), "\r\n", 2)) == NULL)
			abort();	/* every header ends in CRLF */
		if ((size_t)(eol - p) > n + 1 && strncasecmp(p, name, n) == 0 &&
		    p[n] == ':' && p[n + 1] == ' ' && (value == NULL ||
		    ((size_t)(eol - p) == n + 2 + strlen(value) &&
		    memcmp(p + n + 2, value, strlen(value)) == 0)))
			return (1);
	}
	return (0);
}

/* The carrier's send: check the answer, then free everything. */
static void
fuzz_send(struct api_req *req, int status, struct evbuffer *body)
{
	json_t		*j, *e;
	size_t		 len;

	if (status < 200 || status > 599)
		abort();
	if (!fuzz_has_header(req, "X-Berth-Index", NULL))
		abort();
	if (status >= 400) {
		if (!fuzz_has_header(req, "Content-Type", "application/json"))
			abort();
		/* A body by pointer (req->text) or in a buffer. */
		len = body != NULL ? evbuffer_get_length(body) : req->textlen;
		j = json_loadb(body != NULL ?
		    (const char *)evbuffer_pullup(body, -1) : req->text != NULL ?
		    req->text : "", len, 0, NULL);
		e = json_object_get(j, "error");
		if (!json_is_string(json_object_get(e, "code")) ||
		    !json_is_string(json_object_get(e, "message")))
			abort();
		json_decref(j);
	}
	if (body != NULL)
		evbuffer_free(body);
	free(req->out);
	free((void *)req->fields);
	free(req->ctx);		/* the request text, its head and body */
	free(req);
	fuzz_outstanding--;
}

/*
 * Read text (NUL-terminated, owned by req) as http.c does: the head with
 * http-parse.c, the rest as the body. -1 for what the carrier refuses
 * before routing (it answers those itself).
 */
static int
fuzz_parse(char *text, size_t len, struct api_req *req)
{
	struct http_head	 h;
	const char		*why;
	size_t			 from = 0, hlen;

	if ((hlen = http_head_end(text, len, &from)) == 0)
		return (-1);
	h.cap = http_head_lines(text, hlen);
	if ((h.fields = calloc(h.cap, sizeof h.fields[0])) == NULL)
		return (-1);
	if (http_parse_head(text, hlen, &h, &why) != 0 || h.chunked ||
	    h.content_length > BERTH_BODY_MAX) {
		free(h.fields);
		return (-1);
	}
	req->method = h.method;
	req->path = h.path;
	req->query = h.query;
	req->uri_host = h.uri_host;
	req->fields = h.fields;
	req->nfields = h.nfields;
	req->body = text + hlen;
	req->body_len = len - hlen;
	return (0);
}

/* Now and then forget every lease, so the pool does not stay exhausted. */
static void
fuzz_reset(void)
{
	struct broker	*b = fuzz_srv.broker;
	struct lease	*l;
	struct berr	 e;

	while ((l = broker_first(b)) != NULL)
		if (broker_revoke(b, l->name, &e) == -1)
			break;
	if (broker_in_txn(b))
		server_commit(&fuzz_srv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_req		*req;
	char			*text;
	int			 admin = 0;

	if (!fuzz_ready)
		fuzz_init();
	if (size > 0 && data[0] == '!') {
		admin = 1;
		data++;
		size--;
	}
	if ((text = malloc(size + 1)) == NULL)
		return (0);
	memcpy(text, data, size);
	text[size] = '\0';
	if ((req = calloc(1, sizeof *req)) == NULL) {
		free(text);
		return (0);
	}
	req->ctx = text;
	req->send = fuzz_send;
	req->local = admin;
	req->uid = admin ? 0 : -1;
	if (fuzz_parse(text, size, req) == -1) {
		free(req);
		free(text);
		return (0);
	}
	fuzz_outstanding++;
	router_dispatch(&fuzz_srv, req);
	if (broker_in_txn(fuzz_srv.broker))
		server_commit(&fuzz_srv);
	waiters_flush(fuzz_srv.waiters);
	if (broker_in_txn(fuzz_srv.broker))
		server_commit(&fuzz_srv);
	/* Every request is answered, exactly once, by the end of its turn. */
	if (fuzz_outstanding != 0)
		abort();
	if (++fuzz_runs % 256 == 0)
		fuzz_reset();
	return (0);
}
