/*
 * check_http_parse.c: unit tests for http-parse.c, the strict in-place
 * HTTP/1.x request-head parser: where a head ends (whole, split at every
 * byte, pipelined), what a valid head is read as, the exact status each
 * malformed one is refused with, field lookup and the reason phrases.
 *
 * Each parse works on a heap copy of exactly the head's length, so that a
 * build with --enable-sanitizers catches a read past it.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-parse.h"
#include "unit.h"

#define NFIELDS	32

static char		*buf;
static size_t		 buflen;
static struct http_field fields[NFIELDS];
static struct http_head	 h;
static const char	*why;

static void
setup(void)
{
	buf = NULL;
	buflen = 0;
	memset(&h, 0, sizeof h);
	why = NULL;
}

static void
teardown(void)
{
	free(buf);
	buf = NULL;
}

/* A heap copy of exactly len bytes: a sanitizer sees any read past it. */
static char *
copy(const char *s, size_t len)
{
	char	*p;

	p = malloc(len > 0 ? len : 1);
	ck_assert_ptr_nonnull(p);
	memcpy(p, s, len);
	return (p);
}

/* Parse len bytes of s, copied, into h with an array of cap fields. */
static int
parse_cap(const char *s, size_t len, size_t cap)
{
	free(buf);
	buf = copy(s, len);
	buflen = len;
	memset(fields, 0, sizeof fields);
	h.fields = fields;
	h.cap = cap;
	why = NULL;
	return (http_parse_head(buf, len, &h, &why));
}

static int
parse(const char *s)
{
	return (parse_cap(s, strlen(s), NFIELDS));
}

/* Does p point into the parsed copy, with its NUL inside it too? */
static int
in_buf(const char *p)
{
	return (p != NULL && p >= buf && p < buf + buflen &&
	    memchr(p, '\0', (size_t)(buf + buflen - p)) != NULL);
}

/* The length http_head_end finds in s, searched at once from 0. */
static size_t
head_end(const char *s, size_t len)
{
	size_t	from = 0, n;

	n = http_head_end(s, len, &from);
	ck_assert_uint_le(from, len);
	return (n);
}

/* s parses, and every pointer h holds is into the copy. */
#define PARSE_OK(s) do {						\
	ck_assert_msg(parse(s) == 0, "%s: refused: %s", #s,		\
	    why != NULL ? why : "(no why)");				\
	ck_assert(in_buf(h.path));					\
	ck_assert(h.query == NULL || in_buf(h.query));			\
	ck_assert(h.uri_host == NULL || in_buf(h.uri_host));		\
	ck_assert_uint_le(h.nfields, h.cap);				\
} while (0)

/* The field at i is name: value, both in the copy. */
#define FIELD_IS(i, n, v) do {						\
	ck_assert_uint_lt((i), h.nfields);				\
	ck_assert(in_buf(h.fields[(i)].name));				\
	ck_assert(in_buf(h.fields[(i)].value));				\
	ck_assert_str_eq(h.fields[(i)].name, (n));			\
	ck_assert_str_eq(h.fields[(i)].value, (v));			\
} while (0)

/*
 * http_head_end
 */

START_TEST(test_end_lf)
{
	const char	*s = "GET / HTTP/1.1\nHost: a\n\n";

	ck_assert_uint_eq(strlen(s), 24);
	ck_assert_uint_eq(head_end(s, strlen(s)), 24);
	/* No fields: the request line's LF and the blank line. */
	ck_assert_uint_eq(head_end("GET / HTTP/1.1\n\n", 16), 16);
}
END_TEST

START_TEST(test_end_crlf)
{
	const char	*s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

	ck_assert_uint_eq(strlen(s), 27);
	ck_assert_uint_eq(head_end(s, strlen(s)), 27);
	ck_assert_uint_eq(head_end("GET / HTTP/1.1\r\n\r\n", 18), 18);
	/* LF and CRLF may mix, line by line. */
	ck_assert_uint_eq(head_end("GET / HTTP/1.1\r\nHost: a\n\r\n", 26), 26);
	ck_assert_uint_eq(head_end("GET / HTTP/1.1\nHost: a\r\n\n", 25), 25);
}
END_TEST

/* Not yet a blank line: 0, and from never past what was given. */
START_TEST(test_end_incomplete)
{
	static const char	*partial[] = {
		"", "G", "GET / HTTP/1.1", "GET / HTTP/1.1\r",
		"GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\n\r",
		"GET / HTTP/1.1\n", "GET / HTTP/1.1\r\nHost: a\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r", "GET / HTTP/1.1\nHost: a\n",
		/* A CR alone ends no line: "\n\r\r" is not blank. */
		"GET / HTTP/1.1\r\n\r\r", "GET / HTTP/1.1\r\n\rX\r\n"
	};
	size_t		 i, from, len;
	char		*p;

	for (i = 0; i < sizeof partial / sizeof partial[0]; i++) {
		len = strlen(partial[i]);
		p = copy(partial[i], len);
		from = 0;
		ck_assert_msg(http_head_end(p, len, &from) == 0, "partial %zu",
		    i);
		ck_assert_msg(from <= len, "partial %zu: from %zu > len %zu",
		    i, from, len);
		free(p);
	}
}
END_TEST

static const char *split_heads[] = {
	"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nA: */*\r\n\r\n",
	"GET /v1/health HTTP/1.1\nHost: 127.0.0.1:62893\nAccept: */*\n\n",
	"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\n\r\n",
	"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	"POST /v1/services HTTP/1.1\r\nContent-Length: 6\r\n\r\n\n\r\n\n\n\n",
	"GET / HTTP/1.0\n\n\n\n"
};

/*
 * The head cut in two at every byte: the first part alone says 0 (or the
 * whole answer once the head is in it), from stays within it, and the
 * search resumed from there over the whole buffer finds the same length.
 */
START_TEST(test_end_split)
{
	const char	*s = split_heads[_i];
	size_t		 len = strlen(s), whole, k, from, n;
	char		*p;

	whole = head_end(s, len);
	ck_assert_uint_gt(whole, 0);
	for (k = 0; k <= len; k++) {
		p = copy(s, k);
		from = 0;
		n = http_head_end(p, k, &from);
		free(p);
		ck_assert_msg(n == (k >= whole ? whole : 0),
		    "split at %zu: %zu, whole %zu", k, n, whole);
		if (n != 0)
			continue;
		ck_assert_msg(from <= k, "split at %zu: from %zu", k, from);
		ck_assert_msg(http_head_end(s, len, &from) == whole,
		    "split at %zu: resumed search differs", k);
	}
}
END_TEST

/* Fed one byte at a time, keeping from: found exactly when complete. */
START_TEST(test_end_bytewise)
{
	const char	*s = split_heads[_i];
	size_t		 len = strlen(s), whole, k, from = 0, n = 0;
	char		*p;

	whole = head_end(s, len);
	for (k = 0; k <= len && n == 0; k++) {
		p = copy(s, k);
		n = http_head_end(p, k, &from);
		free(p);
		if (n == 0)
			ck_assert_msg(from <= k, "at %zu: from %zu", k, from);
		else
			ck_assert_uint_eq(k, whole);
	}
	ck_assert_uint_eq(n, whole);
}
END_TEST

/* A second request after the first head is not part of its length. */
START_TEST(test_end_pipelined)
{
	const char	*crlf = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
			    "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
	const char	*lf = "GET /a HTTP/1.1\nHost: a\n\nGET /b HTTP/1.1\n\n";
	const char	*body = "POST /v1/services HTTP/1.1\r\nHost: a\r\n"
			    "Content-Length: 6\r\n\r\n{}\r\n\r\n";
	size_t		 n;

	ck_assert_uint_eq(head_end(crlf, strlen(crlf)), 28);
	ck_assert_int_eq(parse_cap(crlf, 28, NFIELDS), 0);
	ck_assert_str_eq(h.path, "/a");
	ck_assert_uint_eq(h.nfields, 1);
	ck_assert_uint_eq(head_end(crlf + 28, strlen(crlf) - 28), 28);
	ck_assert_int_eq(parse_cap(crlf + 28, 28, NFIELDS), 0);
	ck_assert_str_eq(h.path, "/b");

	ck_assert_uint_eq(head_end(lf, strlen(lf)), 25);
	ck_assert_uint_eq(head_end(lf + 25, strlen(lf) - 25), 17);

	n = head_end(body, strlen(body));
	ck_assert_uint_eq(n, strlen(body) - 6);
	ck_assert_int_eq(parse_cap(body, n, NFIELDS), 0);
	ck_assert_int_eq(h.content_length, 6);
}
END_TEST

/* RFC 9112 2.2: an empty line before the request line is ignored. */
START_TEST(test_end_leading_crlf)
{
	const char	*crlf = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	const char	*lf = "\nGET /x HTTP/1.0\n\n";

	ck_assert_uint_eq(head_end(crlf, strlen(crlf)), 29);
	ck_assert_int_eq(parse_cap(crlf, 29, NFIELDS), 0);
	ck_assert_int_eq(h.method, HTTP_GET);
	ck_assert_str_eq(h.path, "/");
	FIELD_IS(0, "Host", "a");
	ck_assert_uint_eq(h.nfields, 1);

	ck_assert_uint_eq(head_end(lf, strlen(lf)), 18);
	ck_assert_int_eq(parse_cap(lf, 18, NFIELDS), 0);
	ck_assert_str_eq(h.path, "/x");
	ck_assert_uint_eq(h.nfields, 0);
}
END_TEST

/* One per LF: the request line, each field and the blank line. */
START_TEST(test_head_lines)
{
	const char	*s = "GET / HTTP/1.1\r\nA: b\r\nC: d\r\n\r\n";

	ck_assert_uint_eq(http_head_lines(s, strlen(s)), 4);
	ck_assert_uint_eq(http_head_lines("GET / HTTP/1.1\n\n", 16), 2);
	ck_assert_uint_eq(http_head_lines("no line", 7), 0);
	ck_assert_uint_eq(http_head_lines("", 0), 0);
	/* Only the length given counts. */
	ck_assert_uint_eq(http_head_lines("a\nb\nc\n", 3), 1);
}
END_TEST

/*
 * http_parse_head: valid heads
 */

static const struct {
	const char	*name;
	int		 bit;
} methods[] = {
	{ "GET", HTTP_GET }, { "POST", HTTP_POST }, { "HEAD", HTTP_HEAD },
	{ "PUT", HTTP_PUT }, { "DELETE", HTTP_DELETE },
	{ "OPTIONS", HTTP_OPTIONS }, { "TRACE", HTTP_TRACE },
	{ "CONNECT", HTTP_CONNECT }, { "PATCH", HTTP_PATCH }
};

START_TEST(test_method)
{
	char	line[64];

	snprintf(line, sizeof line, "%s /v1/services HTTP/1.1\r\n"
	    "Host: a\r\n\r\n",
	    methods[_i].name);
	PARSE_OK(line);
	ck_assert_int_eq(h.method, methods[_i].bit);
	ck_assert_str_eq(h.path, "/v1/services");
}
END_TEST

START_TEST(test_http11)
{
	PARSE_OK("GET /v1/health HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_int_eq(h.method, HTTP_GET);
	ck_assert_int_eq(h.minor, 1);
	ck_assert_str_eq(h.path, "/v1/health");
	ck_assert_ptr_null(h.query);
	ck_assert_ptr_null(h.uri_host);
	ck_assert_uint_eq(h.nfields, 1);
	FIELD_IS(0, "Host", "a");
	ck_assert_int_eq(h.content_length, -1);
	ck_assert_int_eq(h.chunked, 0);
	ck_assert_int_eq(h.close, 0);
	ck_assert_int_eq(h.keep_alive, 0);
	ck_assert_int_eq(h.expect_continue, 0);
}
END_TEST

/* RFC 9110 2.5: a higher 1.x is answered as 1.1, our highest. */
START_TEST(test_http1x)
{
	PARSE_OK("GET / HTTP/1.2\r\nHost: a\r\n\r\n");
	ck_assert_int_eq(h.minor, 1);
	ck_assert_int_eq(h.close, 0);
	PARSE_OK("GET / HTTP/1.9\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
	ck_assert_int_eq(h.minor, 1);
	ck_assert_int_eq(h.close, 0);
}
END_TEST

/* HTTP/1.0 closes after the answer unless it asked to keep alive. */
START_TEST(test_http10)
{
	PARSE_OK("GET / HTTP/1.0\r\n\r\n");
	ck_assert_int_eq(h.minor, 0);
	ck_assert_int_eq(h.close, 1);
	ck_assert_int_eq(h.keep_alive, 0);

	PARSE_OK("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	ck_assert_int_eq(h.minor, 0);
	ck_assert_int_eq(h.close, 0);
	ck_assert_int_eq(h.keep_alive, 1);

	PARSE_OK("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n");
	ck_assert_int_eq(h.close, 0);
	ck_assert_int_eq(h.keep_alive, 1);

	PARSE_OK("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
	ck_assert_int_eq(h.close, 1);
}
END_TEST

START_TEST(test_path_query)
{
	PARSE_OK("GET /v1/services?wait=5&index=3 HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/v1/services");
	ck_assert_str_eq(h.query, "wait=5&index=3");
	ck_assert_ptr_null(h.uri_host);

	/* An empty query is there, and only the first '?' splits. */
	PARSE_OK("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/a");
	ck_assert_str_eq(h.query, "");
	PARSE_OK("GET /a?b?c=/d HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/a");
	ck_assert_str_eq(h.query, "b?c=/d");
	PARSE_OK("GET /?x HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/");
	ck_assert_str_eq(h.query, "x");
	/* Percent-escapes are not decoded here. */
	PARSE_OK("GET /v1/services/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/v1/services/a%2Fb");
	ck_assert_ptr_null(h.query);
}
END_TEST

/*
 * Bytes over 0x7f are let through (http-parse.c says why): the route
 * table and the lease-name check answer them.
 */
START_TEST(test_target_high_bytes)
{
	PARSE_OK("GET /v1/services/caf\xc3\xa9?q=\x80\xff HTTP/1.1\r\n"
	    "Host: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/v1/services/caf\xc3\xa9");
	ck_assert_str_eq(h.query, "q=\x80\xff");
	PARSE_OK("GET http://host/\xff HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.uri_host, "host");
	ck_assert_str_eq(h.path, "/\xff");
}
END_TEST

/* "*" is kept as the path, for the router to answer. */
START_TEST(test_asterisk)
{
	PARSE_OK("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_int_eq(h.method, HTTP_OPTIONS);
	ck_assert_str_eq(h.path, "*");
	ck_assert_ptr_null(h.query);
	ck_assert_ptr_null(h.uri_host);
	FIELD_IS(0, "Host", "a");
}
END_TEST

/* A fragment is the client's own: dropped wherever it starts. */
START_TEST(test_fragment)
{
	PARSE_OK("GET /v1/health#top HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/v1/health");
	ck_assert_ptr_null(h.query);
	PARSE_OK("GET /a?b=1#c?d HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/a");
	ck_assert_str_eq(h.query, "b=1");
	PARSE_OK("GET /# HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.path, "/");
	PARSE_OK("GET http://host:1/p#/q?r HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_str_eq(h.uri_host, "host");
	ck_assert_str_eq(h.path, "/p");
	ck_assert_ptr_null(h.query);
	/* Nothing before it: no target. */
	ck_assert_int_eq(parse("GET #x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

static const struct {
	const char	*target;
	const char	*host;
	const char	*path;
	const char	*query;		/* NULL: none */
} absolutes[] = {
	{ "http://host/path?q", "host", "/path", "q" },
	{ "http://host:8080/", "host", "/", NULL },
	{ "http://user@host/", "host", "/", NULL },
	{ "http://user:pw@host:1/x", "host", "/x", NULL },
	{ "http://[::1]:62893/v1/health", "::1", "/v1/health", NULL },
	{ "http://[::1]/", "::1", "/", NULL },
	{ "https://berth.example/v1/status", "berth.example", "/v1/status",
	    NULL },
	{ "HTTP://Host.Example/", "Host.Example", "/", NULL },
	{ "http://127.0.0.1:62893/v1/services?wait=1", "127.0.0.1",
	    "/v1/services", "wait=1" },
	{ "http://host/a?b?c", "host", "/a", "b?c" }
};

START_TEST(test_absolute)
{
	char	line[128];

	snprintf(line, sizeof line, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
	    absolutes[_i].target);
	PARSE_OK(line);
	ck_assert_ptr_nonnull(h.uri_host);
	ck_assert_str_eq(h.uri_host, absolutes[_i].host);
	ck_assert_str_eq(h.path, absolutes[_i].path);
	if (absolutes[_i].query == NULL)
		ck_assert_ptr_null(h.query);
	else {
		ck_assert_ptr_nonnull(h.query);
		ck_assert_str_eq(h.query, absolutes[_i].query);
	}
	/* The fields after the target are untouched by its rewriting. */
	FIELD_IS(0, "Host", "x");
}
END_TEST

/* No path in the URI: "" (pointer checked in known_bugs). */
START_TEST(test_absolute_no_path)
{
	ck_assert_int_eq(parse("GET http://host?q HTTP/1.1\r\n"
	    "Host: a\r\n\r\n"), 0);
	ck_assert_str_eq(h.uri_host, "host");
	ck_assert_str_eq(h.path, "");
	ck_assert_str_eq(h.query, "q");

	ck_assert_int_eq(parse("GET http://host:80 HTTP/1.1\r\n"
	    "Host: a\r\n\r\n"), 0);
	ck_assert_str_eq(h.uri_host, "host");
	ck_assert_str_eq(h.path, "");
	ck_assert_ptr_null(h.query);
}
END_TEST

/* Optional whitespace goes from both ends of a value, not its middle. */
START_TEST(test_field_ows)
{
	PARSE_OK("GET / HTTP/1.1\r\n"
	    "Host:   a b  \t\r\n"
	    "X-Tab:\tv\t\r\n"
	    "X-None:v\r\n"
	    "X-Inner: a \t b\r\n"
	    "\r\n");
	ck_assert_uint_eq(h.nfields, 4);
	FIELD_IS(0, "Host", "a b");
	FIELD_IS(1, "X-Tab", "v");
	FIELD_IS(2, "X-None", "v");
	FIELD_IS(3, "X-Inner", "a \t b");

	/* The same over LF-only lines. */
	PARSE_OK("GET / HTTP/1.1\nHost:  a \n\n");
	ck_assert_uint_eq(h.nfields, 1);
	FIELD_IS(0, "Host", "a");
}
END_TEST

START_TEST(test_field_empty)
{
	PARSE_OK("GET / HTTP/1.1\r\nX-Empty:\r\nX-Blank: \t \r\n"
	    "Host: a\r\n\r\n");
	ck_assert_uint_eq(h.nfields, 3);
	FIELD_IS(0, "X-Empty", "");
	FIELD_IS(1, "X-Blank", "");
	FIELD_IS(2, "Host", "a");
}
END_TEST

/* tchar names beyond letters; obs-text (0x80-0xff) in a value. */
START_TEST(test_field_bytes)
{
	PARSE_OK("GET / HTTP/1.1\r\n"
	    "!#$%&'*+-.^_`|~09az: x\r\n"
	    "X-Utf8: caf\xc3\xa9\r\n"
	    "X-Visible: \"!~\"\r\nHost: h\r\n\r\n");
	ck_assert_uint_eq(h.nfields, 4);
	FIELD_IS(0, "!#$%&'*+-.^_`|~09az", "x");
	FIELD_IS(1, "X-Utf8", "caf\xc3\xa9");
	FIELD_IS(2, "X-Visible", "\"!~\"");
}
END_TEST

START_TEST(test_content_length)
{
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
	ck_assert_int_eq(h.content_length, 42);
	ck_assert_int_eq(h.chunked, 0);
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\ncontent-length:0\r\n\r\n");
	ck_assert_int_eq(h.content_length, 0);
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH:  007 \r\n\r\n");
	ck_assert_int_eq(h.content_length, 7);
	/* Long numbers are exact until they cannot be, then LLONG_MAX. */
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 999999999999999999\r\n\r\n");
	ck_assert(h.content_length == 999999999999999999LL);
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 1000000000000000000\r\n\r\n");
	ck_assert(h.content_length == 1000000000000000000LL);
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 9223372036854775807\r\n\r\n");
	ck_assert(h.content_length == LLONG_MAX);
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 99999999999999999999999999\r\n\r\n");
	ck_assert(h.content_length == LLONG_MAX);
	/* Leading zeros are no size. */
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 00000000000000000000000000042\r\n\r\n");
	ck_assert_int_eq(h.content_length, 42);
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_int_eq(h.content_length, -1);
}
END_TEST

START_TEST(test_chunked)
{
	PARSE_OK("POST / HTTP/1.1\r\n"
	    "Host: a\r\nTransfer-Encoding: chunked\r\n\r\n");
	ck_assert_int_eq(h.chunked, 1);
	ck_assert_int_eq(h.content_length, -1);
	PARSE_OK("POST / HTTP/1.1\r\n"
	    "Host: a\r\ntransfer-encoding: Chunked\r\n\r\n");
	ck_assert_int_eq(h.chunked, 1);
}
END_TEST

START_TEST(test_connection)
{
	PARSE_OK("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
	ck_assert_int_eq(h.close, 1);
	ck_assert_int_eq(h.keep_alive, 0);

	PARSE_OK("GET / HTTP/1.1\r\n"
	    "Host: a\r\nConnection: keep-alive, Upgrade\r\n\r\n");
	ck_assert_int_eq(h.close, 0);
	ck_assert_int_eq(h.keep_alive, 1);

	PARSE_OK("GET / HTTP/1.1\r\n"
	    "Host: a\r\nConnection: Upgrade,CLOSE\r\n\r\n");
	ck_assert_int_eq(h.close, 1);

	/* A token, not a substring. */
	PARSE_OK("GET / HTTP/1.1\r\n"
	    "Host: a\r\nConnection: closed, xkeep-alive\r\n\r\n");
	ck_assert_int_eq(h.close, 0);
	ck_assert_int_eq(h.keep_alive, 0);

	/* Whitespace around a list member is not part of it. */
	PARSE_OK("GET / HTTP/1.1\r\n"
	    "Host: a\r\nConnection: Upgrade , close\t,x\r\n\r\n");
	ck_assert_int_eq(h.close, 1);
	PARSE_OK("GET / HTTP/1.0\r\nConnection: keep-alive ,Upgrade\r\n\r\n");
	ck_assert_int_eq(h.keep_alive, 1);
	ck_assert_int_eq(h.close, 0);

	/* Each Connection line counts. */
	PARSE_OK("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
	    "Connection: close\r\n\r\n");
	ck_assert_int_eq(h.close, 1);
}
END_TEST

START_TEST(test_expect)
{
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
	    "Expect: 100-continue\r\n\r\n");
	ck_assert_int_eq(h.expect_continue, 1);
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\nexpect: 100-Continue\r\n\r\n");
	ck_assert_int_eq(h.expect_continue, 1);
	PARSE_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n");
	ck_assert_int_eq(h.expect_continue, 0);
}
END_TEST

/*
 * http_parse_head: refusals
 */

static const struct refusal {
	const char	*what;
	const char	*head;
	size_t		 len;		/* 0: strlen(head) */
	int		 status;
} refusals[] = {
#define RL(what, line, status)	{ what, line "\r\nHost: a\r\n\r\n", 0, status }
#define FL(what, field, status)	\
	{ what, "POST / HTTP/1.1\r\nHost: a\r\n" field "\r\n\r\n", 0, status }
	RL("missing version", "GET /v1/health", 400),
	{ "HTTP/0.9 style", "GET /\r\n\r\n", 0, 400 },
	RL("two spaces after the method", "GET  / HTTP/1.1", 400),
	RL("two spaces before the version", "GET /  HTTP/1.1", 400),
	RL("trailing space", "GET / HTTP/1.1 ", 400),
	RL("leading space", " GET / HTTP/1.1", 400),
	RL("empty method", " / HTTP/1.1", 400),
	RL("space in the target", "GET /a b HTTP/1.1", 400),
	RL("tab after the method", "GET\t/ HTTP/1.1", 400),
	RL("tab before the version", "GET /\tHTTP/1.1", 400),
	RL("tab after the version", "GET / HTTP/1.1\t", 400),
	RL("empty version", "GET / ", 400),
	RL("HTTP/2.0", "GET / HTTP/2.0", 505),
	RL("HTTP/0.9", "GET / HTTP/0.9", 505),
	RL("HTTP/9.1", "GET / HTTP/9.1", 505),
	RL("HTTP/3.0", "GET / HTTP/3.0", 505),
	RL("HTTP/1.x", "GET / HTTP/1.x", 400),
	RL("HTTP/-.1", "GET / HTTP/-.1", 400),
	RL("HTTP/1.-", "GET / HTTP/1.-", 400),
	RL("HTTP/1", "GET / HTTP/1", 400),
	RL("HTTP/1.10", "GET / HTTP/1.10", 400),
	RL("HTTP/11", "GET / HTTP/11", 400),
	RL("lower-case version", "GET / http/1.1", 400),
	RL("unknown method FOO", "FOO / HTTP/1.1", 501),
	RL("lower-case get", "get / HTTP/1.1", 501),
	RL("method GETS", "GETS / HTTP/1.1", 501),
	RL("method with a non-tchar", "G@T / HTTP/1.1", 400),
	RL("control byte in target", "GET /a\x01 HTTP/1.1", 400),
	RL("DEL in target", "GET /a\x7f HTTP/1.1", 400),
	RL("CR inside the request line", "GET /\r HTTP/1.1", 400),
	RL("relative target", "GET v1/health HTTP/1.1", 400),
	RL("ftp URI", "GET ftp://x/ HTTP/1.1", 400),
	RL("http: without //", "GET http:/x HTTP/1.1", 400),
	RL("unclosed IPv6 literal", "GET http://[::1/ HTTP/1.1", 400),
	{ "NUL in the method", "G\0T / HTTP/1.1\r\n\r\n", 18, 400 },
	{ "NUL in the target", "GET /\0 HTTP/1.1\r\n\r\n", 19, 400 },
	{ "NUL in a name", "GET / HTTP/1.1\r\nHo\0t: a\r\n\r\n", 27, 400 },
	{ "NUL in a value", "GET / HTTP/1.1\r\nHost: \0\r\n\r\n", 27, 400 },
	{ "NUL before the blank line", "GET / HTTP/1.1\r\n\0\r\n", 19, 400 },
	{ "no request line", "\r\n\r\n", 0, 400 },
	{ "HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 0, 400 },
	{ "HTTP/1.2 without Host", "GET / HTTP/1.2\r\n\r\n", 0, 400 },
	{ "Hostname is not Host",
	    "GET / HTTP/1.1\r\nHostname: a\r\n\r\n", 0, 400 },
	{ "absolute-form without Host",
	    "GET http://localhost/ HTTP/1.1\r\n\r\n", 0, 400 },
	{ "no blank line", "GET / HTTP/1.1\r\nHost: a\r\n", 0, 400 },
	{ "no LF at all", "GET / HTTP/1.1", 0, 400 },
	FL("space before the colon", "Host : a", 400),
	FL("tab before the colon", "Host\t: a", 400),
	FL("no colon", "Host a", 400),
	FL("a second Host", "Host: b", 400),
	FL("empty name", ": a", 400),
	FL("control byte in a name", "Ho\x01st: a", 400),
	FL("obs-fold with spaces", "X: a\r\n  b", 400),
	FL("obs-fold with a tab", "X: a\r\n\tb", 400),
	{ "fold as the first field",
	    "POST / HTTP/1.1\r\n X: a\r\nHost: a\r\n\r\n", 0, 400 },
	FL("control byte in a value", "X: a\x01z", 400),
	FL("ESC in a value", "X: \x1b[0m", 400),
	FL("DEL in a value", "X: a\x7f", 400),
	FL("bare CR in a value", "X: a\rb", 400),
	FL("CR before CRLF", "X: a\r", 400),
	FL("two Content-Length",
	    "Content-Length: 1\r\ncontent-length: 1", 400),
	FL("Content-Length: -5", "Content-Length: -5", 400),
	FL("Content-Length: abc", "Content-Length: abc", 400),
	FL("Content-Length: 1 2", "Content-Length: 1 2", 400),
	FL("Content-Length: +5", "Content-Length: +5", 400),
	FL("Content-Length: 0x10", "Content-Length: 0x10", 400),
	FL("Content-Length: 1,1", "Content-Length: 1,1", 400),
	FL("empty Content-Length", "Content-Length:", 400),
	FL("Content-Length then Transfer-Encoding",
	    "Content-Length: 2\r\nTransfer-Encoding: chunked", 400),
	FL("Transfer-Encoding then Content-Length",
	    "Transfer-Encoding: chunked\r\nContent-Length: 2", 400),
	FL("Expect: something-else", "Expect: something-else", 417),
	FL("Expect: 100-continue and more",
	    "Expect: 100-continue, something-else", 417),
	FL("Expect: 100", "Expect: 100", 417)
#undef RL
#undef FL
};

/* Each refused with its exact status, and a reason for the message. */
START_TEST(test_refusal)
{
	const struct refusal	*r = &refusals[_i];
	size_t			 len = r->len != 0 ? r->len : strlen(r->head);
	int			 rc;

	rc = parse_cap(r->head, len, NFIELDS);
	ck_assert_msg(rc == r->status, "%s: %d, not %d", r->what, rc,
	    r->status);
	ck_assert_msg(why != NULL && why[0] != '\0', "%s: no why", r->what);
}
END_TEST

/* More fields than the array holds: 431; as many as it holds: fine. */
START_TEST(test_too_many_fields)
{
	const char	*s = "GET / HTTP/1.1\r\n"
	    "Host: a\r\nB: 2\r\nC: 3\r\n\r\n";

	ck_assert_int_eq(parse_cap(s, strlen(s), 2), 431);
	ck_assert(why != NULL && why[0] != '\0');
	ck_assert_int_eq(parse_cap(s, strlen(s), 3), 0);
	ck_assert_uint_eq(h.nfields, 3);
	FIELD_IS(2, "C", "3");
	ck_assert_int_eq(parse_cap(s, strlen(s), 0), 431);
	ck_assert_int_eq(parse_cap("GET / HTTP/1.0\r\n\r\n", 18, 0), 0);
}
END_TEST

/* An array sized by http_head_lines always holds every field. */
START_TEST(test_head_lines_cap)
{
	char		 s[2048];
	size_t		 len = 0, i, n;
	int		 w;

	w = snprintf(s, sizeof s, "GET / HTTP/1.1\nHost: a\n");
	len += (size_t)w;
	for (i = 0; i < 100; i++) {
		w = snprintf(s + len, sizeof s - len, "X-%zu: %zu\n", i, i);
		len += (size_t)w;
	}
	s[len++] = '\n';
	ck_assert_uint_eq(head_end(s, len), len);
	n = http_head_lines(s, len);
	ck_assert_uint_eq(n, 103);
	free(buf);
	buf = copy(s, len);
	buflen = len;
	h.fields = calloc(n, sizeof *h.fields);
	ck_assert_ptr_nonnull(h.fields);
	h.cap = n;
	ck_assert_int_eq(http_parse_head(buf, len, &h, &why), 0);
	ck_assert_uint_eq(h.nfields, 101);
	ck_assert_str_eq(h.fields[100].name, "X-99");
	ck_assert_str_eq(h.fields[100].value, "99");
	free(h.fields);
}
END_TEST

/*
 * http_field, http_field_count, http_reason
 */

START_TEST(test_field_lookup)
{
	PARSE_OK("GET / HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nx-dup: 2\r\n"
	    "X-DUP: 3\r\nHost-Name: b\r\n\r\n");
	ck_assert_str_eq(http_field(h.fields, h.nfields, "Host"), "a");
	ck_assert_str_eq(http_field(h.fields, h.nfields, "host"), "a");
	ck_assert_str_eq(http_field(h.fields, h.nfields, "HOST"), "a");
	ck_assert_str_eq(http_field(h.fields, h.nfields, "x-Dup"), "1");
	ck_assert_str_eq(http_field(h.fields, h.nfields, "host-name"), "b");
	/* Whole names only. */
	ck_assert_ptr_null(http_field(h.fields, h.nfields, "Hos"));
	ck_assert_ptr_null(http_field(h.fields, h.nfields, "Host-"));
	ck_assert_ptr_null(http_field(h.fields, h.nfields, "Missing"));
	/* Only the first n are looked at. */
	ck_assert_ptr_null(http_field(h.fields, 0, "Host"));
	ck_assert_str_eq(http_field(h.fields + 2, h.nfields - 2, "X-Dup"),
	    "2");

	ck_assert_uint_eq(http_field_count(h.fields, h.nfields, "X-DUP"), 3);
	ck_assert_uint_eq(http_field_count(h.fields, h.nfields, "x-dup"), 3);
	ck_assert_uint_eq(http_field_count(h.fields, h.nfields, "hOST"), 1);
	ck_assert_uint_eq(http_field_count(h.fields, h.nfields, "Hos"), 0);
	ck_assert_uint_eq(http_field_count(h.fields, 2, "X-Dup"), 1);
	ck_assert_uint_eq(http_field_count(h.fields, 0, "Host"), 0);
}
END_TEST

static const struct {
	int		 status;
	const char	*reason;
} reasons[] = {
	{ 100, "Continue" }, { 200, "OK" }, { 201, "Created" },
	{ 204, "No Content" }, { 400, "Bad Request" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 409, "Conflict" }, { 411, "Length Required" },
	{ 413, "Content Too Large" }, { 415, "Unsupported Media Type" },
	{ 417, "Expectation Failed" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 503, "Service Unavailable" },
	{ 505, "HTTP Version Not Supported" },
	/* Never sent by berthd. */
	{ 0, "Unknown" }, { -1, "Unknown" }, { 101, "Unknown" },
	{ 202, "Unknown" }, { 302, "Unknown" }, { 401, "Unknown" },
	{ 418, "Unknown" }, { 429, "Unknown" }, { 502, "Unknown" },
	{ 504, "Unknown" }, { 999, "Unknown" }
};

START_TEST(test_reason)
{
	ck_assert_str_eq(http_reason(reasons[_i].status), reasons[_i].reason);
}
END_TEST

/*
 * The header promises "every pointer is into the parsed buffer": so is
 * the empty path of an absolute-form URI without one.
 */
static const char *absolute_no_path_heads[] = {
	"GET http://host HTTP/1.1\r\nHost: host\r\n\r\n",
	"GET http://host?q HTTP/1.1\r\nHost: host\r\n\r\n",
	"GET http://host#f HTTP/1.1\r\nHost: host\r\n\r\n"
};

START_TEST(test_path_in_buffer)
{
	ck_assert_int_eq(parse(absolute_no_path_heads[_i]), 0);
	ck_assert_str_eq(h.path, "");
	ck_assert_msg(in_buf(h.path), "head %d: path \"\" is not "
	    "in the buffer", _i);
}
END_TEST

/*
 * RFC 9110 4.2.1: a recipient MUST reject an http URI with an empty host;
 * bytes after an IPv6 literal's ']' or a port that is no number are
 * refused too, not dropped unseen.
 */
static const char *bad_authorities[] = {
	"http:///v1/health", "http://", "http://user@/", "http://:62893/",
	"http://[]/", "http://[::1]evil.example/", "http://host:abc/"
};

START_TEST(test_absolute_authority)
{
	char	line[128];

	snprintf(line, sizeof line, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n",
	    bad_authorities[_i]);
	ck_assert_msg(parse(line) == 400, "%s: taken, uri_host "
	    "\"%s\"",
	    bad_authorities[_i], h.uri_host != NULL ? h.uri_host : "(null)");
}
END_TEST

/*
 * RFC 9110 10.1.1: a server MUST ignore a 100-continue expectation in an
 * HTTP/1.0 request (such a client may not read a 1xx answer).
 */
START_TEST(test_expect_http10)
{
	ck_assert_int_eq(parse("POST / HTTP/1.0\r\nContent-Length: 2\r\n"
	    "Expect: 100-continue\r\n\r\n"), 0);
	ck_assert_msg(h.expect_continue == 0, "HTTP/1.0 with "
	    "Expect: 100-continue: expect_continue %d", h.expect_continue);
}
END_TEST

/*
 * RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked
 * has no reliable length and MUST be answered 400.
 */
static const char *bad_codings[] = {
	"gzip", "chunked, gzip", "identity"
};

START_TEST(test_transfer_coding)
{
	char	head[128];

	snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: %s\r\n\r\n", bad_codings[_i]);
	ck_assert_msg(parse(head) == 400, "Transfer-Encoding: %s: "
	    "taken, chunked %d", bad_codings[_i], h.chunked);
}
END_TEST

#define NELEM(a)	(sizeof (a) / sizeof (a)[0])

static TCase *
tcase(Suite *s, const char *name)
{
	TCase	*tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return (tc);
}

static Suite *
http_parse_suite(void)
{
	Suite	*s = suite_create("http_parse");
	TCase	*tc;
	int	 nsplit = (int)NELEM(split_heads);

	tc = tcase(s, "head_end");
	tcase_add_test(tc, test_end_lf);
	tcase_add_test(tc, test_end_crlf);
	tcase_add_test(tc, test_end_incomplete);
	tcase_add_loop_test(tc, test_end_split, 0, nsplit);
	tcase_add_loop_test(tc, test_end_bytewise, 0, nsplit);
	tcase_add_test(tc, test_end_pipelined);
	tcase_add_test(tc, test_end_leading_crlf);
	tcase_add_test(tc, test_head_lines);

	tc = tcase(s, "valid");
	tcase_add_loop_test(tc, test_method, 0, (int)NELEM(methods));
	tcase_add_test(tc, test_http11);
	tcase_add_test(tc, test_http1x);
	tcase_add_test(tc, test_http10);
	tcase_add_test(tc, test_path_query);
	tcase_add_test(tc, test_target_high_bytes);
	tcase_add_test(tc, test_asterisk);
	tcase_add_test(tc, test_fragment);
	tcase_add_loop_test(tc, test_absolute, 0, (int)NELEM(absolutes));
	tcase_add_test(tc, test_absolute_no_path);
	tcase_add_test(tc, test_field_ows);
	tcase_add_test(tc, test_field_empty);
	tcase_add_test(tc, test_field_bytes);
	tcase_add_test(tc, test_content_length);
	tcase_add_test(tc, test_chunked);
	tcase_add_test(tc, test_connection);
	tcase_add_test(tc, test_expect);
	tcase_add_test(tc, test_expect_http10);
	tcase_add_loop_test(tc, test_path_in_buffer, 0,
	    (int)NELEM(absolute_no_path_heads));

	tc = tcase(s, "refused");
	tcase_add_loop_test(tc, test_refusal, 0, (int)NELEM(refusals));
	tcase_add_test(tc, test_too_many_fields);
	tcase_add_test(tc, test_head_lines_cap);
	tcase_add_loop_test(tc, test_absolute_authority, 0,
	    (int)NELEM(bad_authorities));
	tcase_add_loop_test(tc, test_transfer_coding, 0,
	    (int)NELEM(bad_codings));

	tc = tcase(s, "fields_reasons");
	tcase_add_test(tc, test_field_lookup);
	tcase_add_loop_test(tc, test_reason, 0, (int)NELEM(reasons));
	return (s);
}

int
main(void)
{
	return (unit_run(http_parse_suite()));
}
