/*
 * fuzz_carrier.c: libFuzzer harness for berthd's HTTP/1.1 carrier
 * (http.c, with http-parse.c) fed raw bytes from a connection's first
 * byte, as a client on a socket sends them.
 *
 * One berthd is set up once, as fuzz_request.c sets it up (a real broker
 * on an in-memory database) but with its event loop, its commit event
 * and its waiters: each run makes a socketpair and hands one end to
 * http_accept, as a listener would; the harness is the client on the
 * other. An input is:
 *
 *	OPT LEN... STREAM
 *
 * OPT is one byte, read as OPT ^ '0' so that the digits '0' to '7' are
 * the plain runs: its low 3 bits say how many LEN bytes follow; 0x08
 * closes the client end outright at the end instead of shutting it for
 * writing (the answers still owed then go nowhere); 0x10 answers the
 * parked requests (?wait=) after each piece, as if their wait had ended;
 * 0x60 adds up to 3 more loop turns after each piece; 0x80 leaves the
 * answers unread until all of STREAM is sent. STREAM is written in
 * pieces of LEN + 1 bytes each, the rest in one last piece, with loop
 * turns between them, so that the carrier sees partial heads and
 * bodies and pipelined requests arrive together. Then the client end
 * is shut for writing and the loop runs until the carrier closes its
 * end, answering parked requests (waiters_flush) when nothing else
 * moves; a connection that is neither answered nor closed after that
 * is a finding.
 *
 * From STREAM a model knows the requests the carrier must answer: it
 * frames them as the carrier must (head up to --max-header-size, the
 * body by Content-Length; a refusal or "Connection: close" is the last;
 * a request cut short by the end of the input gets no answer), reading
 * each head with http-parse.c (fuzz_head.c checks that). What the
 * carrier writes back is read strictly, and the harness aborts, after a
 * line on stderr saying which, if it is not a sequence of HTTP/1.1
 * answers: a status line "HTTP/1.1 NNN Reason" (200-599 with the reason
 * http_reason gives, or a bare 100 Continue, only before the answer of a
 * request that asked for it and has a body), header lines of a token, ":
 * " and a value without control bytes, Date and X-Berth-Index in each,
 * one Content-Length (none on a 204) and a body of that length (none
 * for a HEAD), a JSON body {"error":{"code","message"}} on 4xx and 5xx,
 * "Connection: close" exactly on the last answer the model expects and
 * "keep-alive" exactly on HTTP/1.0 keep-alive ones; nothing after the
 * answers. At every turn the answers read must be no more than the
 * requests complete in the bytes sent; at the end (unless the client
 * closed outright) exactly the model's, with the status it knows for the
 * carrier's own refusals (fewer only if the carrier closed, on reading
 * the half-close, with a parked query: a client that hangs up on a
 * blocking query has left; so the first request unanswered must be one
 * that can wait, a GET or HEAD with a query), and the carrier
 * must have read all it was sent before closing (over TCP, input left
 * unread makes the kernel reset the connection, and answers can be
 * lost).
 *
 * FUZZ_CARRIER_VERBOSE=1 in the environment prints each answer's status
 * and length and the count of each run, to see what an input does.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "berthd.h"

#define FUZZ_STREAM_MAX	4096	/* bytes of STREAM taken */
#define FUZZ_HEADER_MAX	1024	/* --max-header-size: the least allowed */
#define FUZZ_REQS_MAX	(FUZZ_STREAM_MAX / 2 + 1)	/* "\n\n" is one */
#define FUZZ_TURNS	8	/* loop turns a round, at the end */
#define FUZZ_ROUNDS	4096	/* rounds at most, at the end */
#define FUZZ_HEAD_MAX	4096	/* an answer's head: berthd's are short */

#define FUZZ_OPT_SPLITS	0x07
#define FUZZ_OPT_ABRUPT	0x08
#define FUZZ_OPT_WAKE	0x10
#define FUZZ_OPT_TURNS	0x60
#define FUZZ_OPT_LAZY	0x80

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* What the model says of a request the carrier must answer. */
struct fuzz_req {
	size_t		 done_at;	/* bytes of STREAM it needs */
	int		 head;		/* HEAD: no body in the answer */
	int		 refused;	/* the carrier's own status, or 0 */
	int		 close;		/* Connection: close, the last */
	int		 keep_alive;	/* Connection: keep-alive */
	int		 may_continue;	/* 100 Continue before it allowed */
	int		 may_park;	/* a GET or HEAD with a query */
};

static struct {
	int		 ready;
	int		 verbose;	/* FUZZ_CARRIER_VERBOSE: each answer */
	struct server	 srv;
	struct config	 cfg;
	unsigned long	 runs;

	/* This run's. */
	struct fuzz_req	 req[FUZZ_REQS_MAX];
	size_t		 nreq;		/* answers owed */
	size_t		 sent;		/* bytes of STREAM sent */
	size_t		 answered;	/* final answers read */
	int		 continued;	/* a 100 for the next answer read */
	int		 abrupt;
	int		 closed;	/* "Connection: close" read */
	int		 eof;		/* the carrier's end is closed */
	int		 fd;		/* the client's end */
	char		*in;		/* what the carrier wrote, unparsed */
	size_t		 inlen;
	size_t		 incap;
	uint64_t	 taken;		/* bytes ever read from it */
} fuzz;

static void	fuzz_fail(const char *, const char *)
		    __attribute__((noreturn));

static void
fuzz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_carrier: %s%s%s\n", what, detail != NULL ?
	    ": " : "", detail != NULL ? detail : "");
	abort();
}

/* Every pool port is free: the harness must not depend on the host. */
static int
fuzz_probe(uint16_t port, int proto)
{
	(void)port;
	(void)proto;
	return (1);
}

/*
 * berthd with its loop, commit event and waiters, as main.c wires them,
 * but no listener: each run's connection is handed to http_accept. The
 * idle timeout is long, so that a slow machine cannot close a
 * connection in the middle of a run (which would be a false finding);
 * the smallest head limit lets a head be too large within FUZZ_STREAM_MAX.
 */
static void
fuzz_init(void)
{
	struct port_range	 range = { 61000, 61063 };
	struct store		*store;
	struct pool		*pool;
	struct broker		*b;
	char			 err[256];
	char			*argv[] = { (char *)"fuzz",
	    (char *)"--idle-timeout", (char *)"3600",
	    (char *)"--max-header-size", (char *)"1024",
	    (char *)"--allow-origin", (char *)"http://a.example", NULL };

	log_init(LOG_LVL_ERROR, NULL);
	fuzz.verbose = getenv("FUZZ_CARRIER_VERBOSE") != NULL;
	/* An answer written to a closed client must not kill the harness. */
	signal(SIGPIPE, SIG_IGN);
	if (config_parse(&fuzz.cfg, 7, argv, err, sizeof err) != CONFIG_OK)
		fuzz_fail("config", err);
	if (fuzz.cfg.max_header_size != FUZZ_HEADER_MAX)
		fuzz_fail("config", "--max-header-size not taken");
	snprintf(fuzz.cfg.db, sizeof fuzz.cfg.db, ":memory:");
	if ((store = store_open(":memory:", 0, err, sizeof err)) == NULL ||
	    (pool = pool_new(&range, 1, 60000)) == NULL ||
	    (b = broker_new(store, pool, 60000, fuzz_probe, NULL)) == NULL ||
	    server_init(&fuzz.srv, &fuzz.cfg, b) == -1 ||
	    broker_load(b, err, sizeof err) == -1)
		fuzz_fail("cannot set up the server", err);
	fuzz.ready = 1;
}

/* Now and then forget every lease, so the pool does not stay exhausted. */
static void
fuzz_reset(void)
{
	struct broker	*b = fuzz.srv.broker;
	struct lease	*l;
	struct berr	 e;

	while ((l = broker_first(b)) != NULL)
		if (broker_revoke(b, l->name, &e) == -1)
			break;
	if (broker_in_txn(b))
		server_commit(&fuzz.srv);
}

/*
 * Frame STREAM as the carrier must, into fuzz.req: each request the
 * carrier answers, the bytes it needs before it can be, and what its
 * answer says of the connection.
 */
static void
fuzz_model(const char *s, size_t len)
{
	struct http_head	 h;
	struct http_field	*fields;
	struct fuzz_req		*r;
	const char		*why;
	char			*copy;
	size_t			 pos = 0, rem, n, hlen, from, body;
	int			 rc;

	/* req[nreq], past the last answer owed, says what may come after. */
	fuzz.nreq = 0;
	memset(&fuzz.req[0], 0, sizeof fuzz.req[0]);
	while (pos < len) {
		r = &fuzz.req[fuzz.nreq];
		memset(r, 0, sizeof *r);
		rem = len - pos;
		n = rem < FUZZ_HEADER_MAX ? rem : FUZZ_HEADER_MAX;
		from = 0;
		hlen = http_head_end(s + pos, n, &from);
		if (!http_can_start((unsigned char)s[pos])) {
			/* Refused as soon as its first byte is seen. */
			r->done_at = pos + 1;
			r->refused = 400;
			r->close = 1;
			fuzz.nreq++;
			return;
		}
		if (hlen == 0 && rem < FUZZ_HEADER_MAX)
			return;		/* cut short: no answer */
		if (hlen == 0) {
			r->done_at = pos + FUZZ_HEADER_MAX;
			r->refused = 400;
			r->close = 1;
			fuzz.nreq++;
			return;
		}
		if ((copy = malloc(hlen)) == NULL || (fields = calloc(
		    http_head_lines(s + pos, hlen), sizeof *fields)) == NULL)
			fuzz_fail("the model", "out of memory");
		memcpy(copy, s + pos, hlen);
		h.fields = fields;
		h.cap = http_head_lines(s + pos, hlen);
		rc = http_parse_head(copy, hlen, &h, &why);
		r->head = h.method == HTTP_HEAD;
		r->done_at = pos + hlen;
		if (rc == 0 && h.chunked)
			rc = 411;
		else if (rc == 0 && h.content_length > BERTH_BODY_MAX)
			rc = 413;
		body = rc == 0 && h.content_length > 0 ?
		    (size_t)h.content_length : 0;
		r->close = rc != 0 || h.close;
		r->keep_alive = !r->close && h.minor == 0 && h.keep_alive;
		r->may_continue = rc == 0 && h.expect_continue && body > 0;
		r->refused = rc;
		/* berthd reads query keys in any case and %-decoded
		 * (?WAIT=, ?w%61it=): any key may be wait= or index=. */
		r->may_park = rc == 0 && (h.method & (HTTP_GET | HTTP_HEAD)) &&
		    h.query != NULL && strchr(h.query, '=') != NULL;
		free(fields);
		free(copy);
		if (rc == 0 && rem - hlen < body)
			return;		/* its body cut short: no answer, */
					/* but maybe a 100 Continue */
		r->done_at += body;
		fuzz.nreq++;
		memset(&fuzz.req[fuzz.nreq], 0, sizeof fuzz.req[0]);
		if (r->close)
			return;
		pos += hlen + body;
	}
}

/* RFC 9110's tchar, written again here so as not to trust the parser's. */
static int
fuzz_tchar(unsigned char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL));
}

/* The value of header line p (its name n bytes) if it is name, or NULL. */
static const char *
fuzz_is(const char *p, size_t n, const char *name)
{
	if (strlen(name) != n || strncasecmp(p, name, n) != 0)
		return (NULL);
	return (p + n + 2);
}

/* Is the value from v to eol exactly text? */
static int
fuzz_eq(const char *v, const char *eol, const char *text)
{
	return ((size_t)(eol - v) == strlen(text) &&
	    memcmp(v, text, strlen(text)) == 0);
}

/* Is the JSON body of len bytes {"error":{"code":"...","message":"..."}}? */
static int
fuzz_error_body(const char *body, size_t len)
{
	json_t	*j, *e;
	int	 ok;

	if ((j = json_loadb(body, len, 0, NULL)) == NULL)
		return (0);
	e = json_object_get(j, "error");
	ok = json_is_object(j) && json_object_size(j) == 1 &&
	    json_is_object(e) &&
	    json_is_string(json_object_get(e, "code")) &&
	    json_string_length(json_object_get(e, "code")) > 0 &&
	    json_is_string(json_object_get(e, "message"));
	json_decref(j);
	return (ok);
}

/*
 * One answer at the start of fuzz.in, checked against what the model
 * says of the request it answers: its length, or 0 if it has not all
 * arrived yet.
 */
static size_t
fuzz_answer(void)
{
	const char		*p = fuzz.in, *end, *eol, *v, *body;
	const struct fuzz_req	*r;
	char			 detail[128];
	size_t			 hlen, n, blen, clen = 0;
	int			 status, ncl = 0, date = 0, index = 0, json = 0;
	int			 conn = 0;	/* 1 close, 2 keep-alive */

	if ((end = memmem(p, fuzz.inlen, "\r\n\r\n", 4)) == NULL) {
		if (fuzz.inlen > FUZZ_HEAD_MAX)
			fuzz_fail("an answer's head does not end", NULL);
		return (0);
	}
	hlen = (size_t)(end - p) + 4;
	if (hlen > FUZZ_HEAD_MAX)
		fuzz_fail("an answer's head is too long", NULL);
	if (fuzz.closed)
		fuzz_fail("an answer after \"Connection: close\"", NULL);
	if (hlen == 25 && memcmp(p, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0) {
		if (!fuzz.req[fuzz.answered].may_continue)
			fuzz_fail("a 100 Continue for a request that did not "
			    "ask for it or has no body", NULL);
		if (fuzz.continued)
			fuzz_fail("two 100 Continue for one request", NULL);
		fuzz.continued = 1;
		if (fuzz.verbose)
			fprintf(stderr, "fuzz_carrier: 100\n");
		return (hlen);
	}
	/* The status line. */
	if (hlen < 15 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[9] < '1' ||
	    p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
	    p[11] > '9' || p[12] != ' ')
		fuzz_fail("not an HTTP/1.1 status line", NULL);
	status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (status < 200 || status > 599)
		fuzz_fail("a status outside 200-599", NULL);
	eol = memmem(p, hlen, "\r\n", 2);
	n = strlen(http_reason(status));
	if ((size_t)(eol - p - 13) != n || memcmp(p + 13, http_reason(status),
	    n) != 0 || strcmp(http_reason(status), "Unknown") == 0) {
		snprintf(detail, sizeof detail, "%d", status);
		fuzz_fail("a reason phrase not http_reason's, or a status it "
		    "does not know", detail);
	}
	/* Then what answer this is. */
	if (fuzz.answered >= fuzz.nreq)
		fuzz_fail("more answers than requests", NULL);
	if (fuzz.req[fuzz.answered].done_at > fuzz.sent)
		fuzz_fail("an answer before its request was complete", NULL);
	r = &fuzz.req[fuzz.answered];
	if (r->refused != 0 && status != r->refused) {
		snprintf(detail, sizeof detail, "%d, not %d", status,
		    r->refused);
		fuzz_fail("the carrier refused with another status", detail);
	}
	/* The header lines. */
	for (p = eol + 2; p < end + 2; p = eol + 2) {
		eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		for (v = p; v < eol && *v != ':'; v++)
			if (!fuzz_tchar((unsigned char)*v))
				fuzz_fail("a header name holds a byte other "
				    "than tchar, or the line has no ':'", NULL);
		if (v == p || v + 1 >= eol || v[1] != ' ')
			fuzz_fail("a header line not 'Name: value'", NULL);
		n = (size_t)(v - p);
		for (v += 2; v < eol; v++)
			if (((unsigned char)*v < 0x20 && *v != '\t') ||
			    *v == 0x7f)
				fuzz_fail("a header value holds a control byte",
				    NULL);
		if ((v = fuzz_is(p, n, "Content-Length")) != NULL) {
			ncl++;
			if (v == eol || (v[0] == '0' && v + 1 != eol))
				fuzz_fail("Content-Length is empty or has a "
				    "leading 0", NULL);
			for (clen = 0; v < eol; v++) {
				if (*v < '0' || *v > '9' || clen > 1 << 30)
					fuzz_fail("Content-Length is not a "
					    "number, or too large", NULL);
				clen = clen * 10 + (size_t)(*v - '0');
			}
		} else if ((v = fuzz_is(p, n, "Date")) != NULL)
			date++;
		else if ((v = fuzz_is(p, n, "X-Berth-Index")) != NULL)
			index++;
		else if ((v = fuzz_is(p, n, "Content-Type")) != NULL)
			json = fuzz_eq(v, eol, "application/json");
		else if ((v = fuzz_is(p, n, "Connection")) != NULL) {
			if (conn != 0)
				fuzz_fail("two Connection headers", NULL);
			if (fuzz_eq(v, eol, "close"))
				conn = 1;
			else if (fuzz_eq(v, eol, "keep-alive"))
				conn = 2;
			else
				fuzz_fail("a Connection header neither close "
				    "nor keep-alive", NULL);
		}
	}
	if (date != 1 || index != 1)
		fuzz_fail("not one Date and one X-Berth-Index", NULL);
	if ((status == 204) != (ncl == 0) || ncl > 1)
		fuzz_fail("not one Content-Length (none on a 204)", NULL);
	if (conn != (r->close ? 1 : r->keep_alive ? 2 : 0)) {
		snprintf(detail, sizeof detail, "%s where %s was due",
		    conn == 1 ? "close" : conn == 2 ? "keep-alive" : "none",
		    r->close ? "close" : r->keep_alive ? "keep-alive" : "none");
		fuzz_fail("the Connection header is wrong", detail);
	}
	/* The body. */
	blen = status == 204 || r->head ? 0 : clen;
	if (fuzz.inlen - hlen < blen)
		return (0);
	body = fuzz.in + hlen;
	if (status >= 400 && (!json || (!r->head && !fuzz_error_body(body,
	    blen)))) {
		snprintf(detail, sizeof detail, "%d", status);
		fuzz_fail("an error answer without a JSON error object",
		    detail);
	}
	if (fuzz.verbose)
		fprintf(stderr, "fuzz_carrier: %d, %zu bytes%s\n", status, blen,
		    conn == 1 ? ", close" : conn == 2 ? ", keep-alive" : "");
	fuzz.answered++;
	fuzz.continued = 0;
	fuzz.closed = r->close;
	return (hlen + blen);
}

/* Read what the carrier wrote back, and check the answers complete. */
static void
fuzz_read(void)
{
	ssize_t	n;
	size_t	used;

	if (fuzz.eof || fuzz.fd == -1)
		return;
	for (;;) {
		if (fuzz.incap - fuzz.inlen < 65536) {
			fuzz.incap = fuzz.inlen + 131072;
			if ((fuzz.in = realloc(fuzz.in, fuzz.incap)) == NULL)
				fuzz_fail("out of memory", NULL);
		}
		n = recv(fuzz.fd, fuzz.in + fuzz.inlen, fuzz.incap -
		    fuzz.inlen, MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n == -1)
			fuzz_fail("the client's end failed (the carrier closed "
			    "with input unread?)", strerror(errno));
		if (n == 0) {
			fuzz.eof = 1;
			break;
		}
		fuzz.inlen += (size_t)n;
		fuzz.taken += (uint64_t)n;
	}
	while (fuzz.inlen > 0 && (used = fuzz_answer()) > 0) {
		memmove(fuzz.in, fuzz.in + used, fuzz.inlen - used);
		fuzz.inlen -= used;
	}
}

/* A loop turn, without blocking; then read, unless told not to. */
static void
fuzz_turn(int read)
{
	event_base_loop(fuzz.srv.base, EVLOOP_NONBLOCK);
	if (read)
		fuzz_read();
}

/* Send a piece of STREAM, as much as the carrier takes. */
static void
fuzz_send(const uint8_t *p, size_t len)
{
	ssize_t	n;
	int	tries;

	for (tries = 0; len > 0 && tries < 64; tries++) {
		n = send(fuzz.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno == EPIPE)
			return;		/* closed: the rest goes nowhere */
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			fuzz_fail("cannot send", strerror(errno));
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			fuzz.sent += (size_t)n;
		}
		if (len > 0)
			fuzz_turn(1);
	}
	if (len > 0)
		fuzz_fail("the carrier does not take its input", NULL);
}

/*
 * After the client's last byte: turn the loop until the carrier closes
 * the connection, reading its answers, and when nothing moves answer
 * the requests parked on waiters as if their wait were over.
 */
static void
fuzz_finish(void)
{
	uint64_t	taken;
	int		i, round, still = 0;

	for (round = 0; conn_count() > 0; round++) {
		if (round == FUZZ_ROUNDS)
			fuzz_fail("the carrier goes on and on", NULL);
		taken = fuzz.taken;
		for (i = 0; i < FUZZ_TURNS && conn_count() > 0; i++)
			fuzz_turn(1);
		if (conn_count() == 0)
			break;
		if (waiters_count(fuzz.srv.waiters) > 0) {
			waiters_flush(fuzz.srv.waiters);
			still = 0;
		} else if (fuzz.taken != taken)
			still = 0;
		else if (++still == 2)
			fuzz_fail("the carrier neither answers nor closes the "
			    "connection", NULL);
	}
	/* Closed: what it wrote is all there, then the end. */
	for (i = 0; i < 4 && !fuzz.eof && fuzz.fd != -1; i++)
		fuzz_read();
	if (fuzz.fd != -1 && !fuzz.eof)
		fuzz_fail("the carrier's end is closed, but not to the client",
		    NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*stream;
	size_t		 len, piece, nsplit, i;
	int		 sv[2], opt, turns, lazy, t, parked;

	if (!fuzz.ready)
		fuzz_init();
	if (size == 0)
		return (0);
	opt = data[0] ^ '0';
	nsplit = (size_t)(opt & FUZZ_OPT_SPLITS);
	if (size < 1 + nsplit || size - 1 - nsplit > FUZZ_STREAM_MAX)
		return (0);
	stream = data + 1 + nsplit;
	len = size - 1 - nsplit;
	turns = 1 + ((opt & FUZZ_OPT_TURNS) >> 5);
	lazy = (opt & FUZZ_OPT_LAZY) != 0;
	fuzz_model((const char *)stream, len);
	fuzz.sent = fuzz.answered = fuzz.inlen = 0;
	fuzz.taken = 0;
	fuzz.continued = fuzz.closed = fuzz.eof = 0;
	fuzz.abrupt = (opt & FUZZ_OPT_ABRUPT) != 0;

	if (conn_count() != 0)
		fuzz_fail("a connection is left from the run before", NULL);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fuzz_fail("socketpair", strerror(errno));
	fuzz.fd = sv[0];
	http_accept(NULL, sv[1], NULL, 0, &fuzz.srv);
	if (conn_count() != 1)
		fuzz_fail("http_accept did not take the connection", NULL);

	for (i = 0; i <= nsplit && (i == 0 || len > 0); i++) {
		piece = i < nsplit ? (size_t)data[1 + i] + 1 : len;
		if (piece > len)
			piece = len;
		fuzz_send(stream, piece);
		stream += piece;
		len -= piece;
		for (t = 0; t < turns; t++)
			fuzz_turn(!lazy);
		if (opt & FUZZ_OPT_WAKE)
			waiters_flush(fuzz.srv.waiters);
	}
	if (fuzz.abrupt) {
		fuzz_read();
		close(fuzz.fd);
		fuzz.fd = -1;
	} else if (shutdown(fuzz.fd, SHUT_WR) == -1)
		fuzz_fail("shutdown", strerror(errno));
	fuzz_finish();
	/* The turn's commit, if a request left one to come. */
	for (t = 0; t < 4 && broker_in_txn(fuzz.srv.broker); t++)
		fuzz_turn(0);
	if (broker_in_txn(fuzz.srv.broker))
		fuzz_fail("the turn's transaction is still open", NULL);

	if (!fuzz.abrupt) {
		if (fuzz.inlen > 0)
			fuzz_fail("bytes after the last whole answer", NULL);
		/*
		 * All owed are answered, unless the carrier took the
		 * client's half-close for a hang-up while a query waited
		 * (docs/api.md, "Blocking queries"): that query and those
		 * after it end unanswered, but not those before it.
		 */
		parked = fuzz.answered < fuzz.nreq &&
		    fuzz.req[fuzz.answered].may_park;
		if (fuzz.continued && fuzz.answered < fuzz.nreq && !parked)
			fuzz_fail("a 100 Continue and no answer after", NULL);
		if (fuzz.answered != fuzz.nreq && !parked) {
			char	detail[64];

			snprintf(detail, sizeof detail, "%zu of %zu",
			    fuzz.answered, fuzz.nreq);
			fuzz_fail("not every complete request answered",
			    detail);
		}
		close(fuzz.fd);
		fuzz.fd = -1;
	}
	if (fuzz.verbose)
		fprintf(stderr, "fuzz_carrier: %zu of %zu answered\n",
		    fuzz.answered, fuzz.nreq);
	if (++fuzz.runs % 256 == 0)
		fuzz_reset();
	return (0);
}
