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
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

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

/* The carrier's send: check the answer, then free everything. */
static void
fuzz_send(struct api_req *req, int status, struct evbuffer *body)
{
	const char	*ctype = evhttp_find_header(req->out, "Content-Type");
	json_t		*j, *e;
	size_t		 len;

	if (status < 200 || status > 599)
		abort();
	if (evhttp_find_header(req->out, "X-Berth-Index") == NULL)
		abort();
	if (status >= 400) {
		if (ctype == NULL || strcmp(ctype, "application/json") != 0)
			abort();
		len = body != NULL ? evbuffer_get_length(body) : 0;
		j = json_loadb(body != NULL ?
		    (const char *)evbuffer_pullup(body, -1) : "", len, 0, NULL);
		e = json_object_get(j, "error");
		if (!json_is_string(json_object_get(e, "code")) ||
		    !json_is_string(json_object_get(e, "message")))
			abort();
		json_decref(j);
	}
	if (body != NULL)
		evbuffer_free(body);
	evhttp_clear_headers(req->in);
	evhttp_clear_headers(req->out);
	free(req->in);
	free(req->out);
	free(req->ctx);		/* the request text, for path and body */
	free(req);
	fuzz_outstanding--;
}

static int
fuzz_method(const char *m)
{
	static const struct {
		const char	*name;
		int		 bit;
	} methods[] = {
		{ "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST },
		{ "HEAD", EVHTTP_REQ_HEAD }, { "PUT", EVHTTP_REQ_PUT },
		{ "DELETE", EVHTTP_REQ_DELETE },
		{ "OPTIONS", EVHTTP_REQ_OPTIONS },
		{ "TRACE", EVHTTP_REQ_TRACE },
		{ "CONNECT", EVHTTP_REQ_CONNECT },
		{ "PATCH", EVHTTP_REQ_PATCH },
	};
	size_t	i;

	for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (strcmp(m, methods[i].name) == 0)
			return (methods[i].bit);
	}
	return (0);
}

/*
 * Split text (NUL-terminated, owned by req) into the request line, the
 * headers and the body, as evhttp would hand them over. -1 for what
 * evhttp itself would refuse before berthd sees it.
 */
static int
fuzz_parse(char *text, size_t len, struct api_req *req,
    struct evhttp_uri **uri)
{
	char	*line, *eol, *target, *sp, *colon, *v;

	if ((eol = strstr(text, "\r\n")) == NULL)
		return (-1);
	*eol = '\0';
	line = text;
	if ((sp = strchr(line, ' ')) == NULL)
		return (-1);
	*sp = '\0';
	if ((req->method = fuzz_method(line)) == 0)
		return (-1);
	target = sp + 1;
	if ((sp = strchr(target, ' ')) != NULL)
		*sp = '\0';
	if ((*uri = evhttp_uri_parse_with_flags(target,
	    EVHTTP_URI_NONCONFORMANT)) == NULL)
		return (-1);
	req->path = evhttp_uri_get_path(*uri);
	req->query = evhttp_uri_get_query(*uri);
	req->uri_host = evhttp_uri_get_host(*uri);
	for (line = eol + 2; (eol = strstr(line, "\r\n")) != NULL;
	    line = eol + 2) {
		*eol = '\0';
		if (*line == '\0') {
			req->body = eol + 2;
			req->body_len = len - (size_t)(req->body - text);
			return (0);
		}
		if ((colon = strchr(line, ':')) == NULL)
			return (-1);
		*colon = '\0';
		for (v = colon + 1; *v == ' '; v++)
			;
		if (evhttp_add_header(req->in, line, v) == -1)
			return (-1);
	}
	return (-1);
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
	struct evhttp_uri	*uri = NULL;
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
	req = calloc(1, sizeof *req);
	req->in = calloc(1, sizeof *req->in);
	req->out = calloc(1, sizeof *req->out);
	TAILQ_INIT(req->in);
	TAILQ_INIT(req->out);
	req->ctx = text;
	req->send = fuzz_send;
	req->local = req->admin = admin;
	if (fuzz_parse(text, size, req, &uri) == -1) {
		evhttp_clear_headers(req->in);
		free(req->in);
		free(req->out);
		free(req);
		free(text);
		if (uri != NULL)
			evhttp_uri_free(uri);
		return (0);
	}
	fuzz_outstanding++;
	router_dispatch(&fuzz_srv, req);
	if (broker_in_txn(fuzz_srv.broker))
		server_commit(&fuzz_srv);
	waiters_flush(fuzz_srv.waiters);
	if (broker_in_txn(fuzz_srv.broker))
		server_commit(&fuzz_srv);
	evhttp_uri_free(uri);
	/* Every request is answered, exactly once, by the end of its turn. */
	if (fuzz_outstanding != 0)
		abort();
	if (++fuzz_runs % 256 == 0)
		fuzz_reset();
	return (0);
}
