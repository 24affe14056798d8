/*
 * fuzz_head.c: libFuzzer harness for http-parse.c, the request-head
 * parser the carrier (http.c) reads every connection's bytes with.
 *
 * An input is the bytes a client sent. The harness finds the head with
 * http_head_end, at once and again in two reads cut where the first byte
 * says (the answers must agree), sizes the field array with
 * http_head_lines and parses a copy of exactly the head, so that ASan
 * sees any read past it. Beyond the sanitizers it aborts, after a line on
 * stderr saying which, if what was accepted breaks the header's promises
 * (pointers into the copy and NUL-terminated there, one known method,
 * HTTP/1.0 or 1.1 with Host, tchar names, trimmed values without control
 * bytes, framing that agrees with the fields) or a refusal is not one of
 * the statuses documented, with a why and a reason phrase. It parses
 * once more with a small array: that may add 431 and must change nothing
 * else.
 */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-parse.h"

#define FUZZ_METHODS	(HTTP_GET | HTTP_POST | HTTP_HEAD | HTTP_PUT | \
			    HTTP_DELETE | HTTP_OPTIONS | HTTP_TRACE | \
			    HTTP_CONNECT | HTTP_PATCH)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_head: %s\n", what);
	abort();
}

/* A heap copy of exactly len bytes. */
static char *
fuzz_copy(const uint8_t *data, size_t len)
{
	char	*p;

	if ((p = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(p, data, len);
	return (p);
}

/* Does p point into buf's len bytes, with its NUL there too? */
static int
fuzz_in(const char *p, const char *buf, size_t len)
{
	return (p != NULL && p >= buf && p < buf + len &&
	    memchr(p, '\0', (size_t)(buf + len - p)) != NULL);
}

/* RFC 9110's tchar, written again here so as not to trust the parser's. */
static int
fuzz_tchar(unsigned char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL));
}

static void
fuzz_check_field(const struct http_field *f, const char *buf, size_t len)
{
	const unsigned char	*p;
	size_t			 n;

	if (!fuzz_in(f->name, buf, len) || !fuzz_in(f->value, buf, len))
		fuzz_fail("a field's name or value is not in the head");
	if (f->name[0] == '\0')
		fuzz_fail("a field with an empty name");
	for (p = (const unsigned char *)f->name; *p != '\0'; p++) {
		if (!fuzz_tchar(*p))
			fuzz_fail("a field name holds a byte other than tchar");
	}
	for (p = (const unsigned char *)f->value; *p != '\0'; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			fuzz_fail("a field value holds a control byte");
	}
	if ((n = strlen(f->value)) > 0 && (f->value[0] == ' ' ||
	    f->value[0] == '\t' || f->value[n - 1] == ' ' ||
	    f->value[n - 1] == '\t'))
		fuzz_fail("a field value keeps its optional whitespace");
}

/*
 * Path and query: no space or control byte, the query cut at a '?', no
 * fragment; the path "", "*" or from '/'.
 */
static void
fuzz_check_target(const struct http_head *h, const char *buf, size_t len)
{
	const unsigned char	*p;

	if (!fuzz_in(h->path, buf, len))
		fuzz_fail("path is not in the head");
	if (h->query != NULL && !fuzz_in(h->query, buf, len))
		fuzz_fail("query is not in the head");
	if (h->uri_host != NULL && !fuzz_in(h->uri_host, buf, len))
		fuzz_fail("uri_host is not in the head");
	if (strcmp(h->path, "*") == 0 && (h->query != NULL ||
	    h->uri_host != NULL))
		fuzz_fail("\"*\" with a query or a host");
	if (h->path[0] != '\0' && h->path[0] != '/' &&
	    strcmp(h->path, "*") != 0)
		fuzz_fail("a path neither \"*\" nor starting with '/'");
	if (strchr(h->path, '?') != NULL)
		fuzz_fail("a path that still holds its query");
	if (strchr(h->path, '#') != NULL || (h->query != NULL &&
	    strchr(h->query, '#') != NULL))
		fuzz_fail("a fragment kept in the path or query");
	for (p = (const unsigned char *)h->path; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f)
			fuzz_fail("a space or control byte in the path");
	}
	for (p = (const unsigned char *)h->query; p != NULL && *p != '\0';
	    p++) {
		if (*p <= 0x20 || *p == 0x7f)
			fuzz_fail("a space or control byte in the query");
	}
}

/* What the framing says agrees with the fields it was read from. */
static void
fuzz_check_framing(const struct http_head *h)
{
	const char	*v;
	long long	 x;
	size_t		 ncl, nte;

	ncl = http_field_count(h->fields, h->nfields, "content-length");
	nte = http_field_count(h->fields, h->nfields, "TRANSFER-ENCODING");
	if (h->content_length < -1)
		fuzz_fail("content_length below -1");
	if (h->chunked && h->content_length >= 0)
		fuzz_fail("both chunked and a Content-Length");
	if ((h->content_length >= 0) != (ncl == 1) || ncl > 1)
		fuzz_fail("content_length disagrees with the fields");
	/*
	 * The length is the field's digits' number; one too large to hold
	 * (strtoll says LLONG_MAX) may stop short as LLONG_MAX, "too large".
	 */
	if (ncl == 1 && ((v = http_field(h->fields, h->nfields,
	    "Content-Length")) == NULL || v[0] == '\0' ||
	    strspn(v, "0123456789") != strlen(v) ||
	    ((x = strtoll(v, NULL, 10)) != h->content_length &&
	    (h->content_length != LLONG_MAX || x < LLONG_MAX / 10))))
		fuzz_fail("content_length is not the field's number");
	if (h->chunked != (nte > 0))
		fuzz_fail("chunked disagrees with the fields");
	if (h->expect_continue && http_field(h->fields, h->nfields,
	    "Expect") == NULL)
		fuzz_fail("expect_continue with no Expect field");
	if ((h->close | h->keep_alive | h->expect_continue | h->chunked) & ~1)
		fuzz_fail("a flag other than 0 or 1");
	if (h->minor == 0 && !h->keep_alive && !h->close)
		fuzz_fail("HTTP/1.0 without keep-alive is not closed");
	if (h->minor == 1 && http_field(h->fields, h->nfields, "host") ==
	    NULL)
		fuzz_fail("HTTP/1.1 without a Host field");
}

/* An accepted head of len bytes with lines LFs in it. */
static void
fuzz_check_head(const struct http_head *h, const char *buf, size_t len,
    size_t lines)
{
	size_t	i;

	if (h->method == 0 || (h->method & (h->method - 1)) != 0 ||
	    (h->method & ~FUZZ_METHODS) != 0)
		fuzz_fail("method is not exactly one known bit");
	if (h->minor != 0 && h->minor != 1)
		fuzz_fail("minor is neither 0 nor 1");
	if (h->nfields > h->cap || h->nfields + 2 > lines)
		fuzz_fail("more fields than the array or the lines");
	fuzz_check_target(h, buf, len);
	for (i = 0; i < h->nfields; i++)
		fuzz_check_field(&h->fields[i], buf, len);
	fuzz_check_framing(h);
}

/*
 * Where the head ends, at once and in two reads cut at split: the first
 * read's resume offset stays within it and the second finds the same.
 */
static size_t
fuzz_head_end(const uint8_t *data, size_t size, size_t split)
{
	char	*buf, *part;
	size_t	 from = 0, n, n1;

	buf = fuzz_copy(data, size);
	n = http_head_end(buf, size, &from);
	if (n > size || (n == 0 && from > size))
		fuzz_fail("http_head_end past the buffer");
	if (n != 0 && (n < 2 || buf[n - 1] != '\n' || (buf[n - 2] != '\n' &&
	    (n < 3 || buf[n - 2] != '\r' || buf[n - 3] != '\n'))))
		fuzz_fail("a head that does not end in an empty line");
	part = fuzz_copy(data, split);
	from = 0;
	n1 = http_head_end(part, split, &from);
	free(part);
	if (n1 != (n != 0 && n <= split ? n : 0))
		fuzz_fail("the first read's answer differs");
	if (n1 == 0) {
		if (from > split)
			fuzz_fail("the resume offset is past the first read");
		if (http_head_end(buf, size, &from) != n)
			fuzz_fail("the resumed search finds another end");
	}
	free(buf);
	return (n);
}

/* Parse a copy of the head's n bytes with an array of cap fields. */
static int
fuzz_parse(const uint8_t *data, size_t n, struct http_head *h,
    struct http_field *fields, size_t cap, char **copy)
{
	const char	*why = NULL;
	int		 rc;

	*copy = fuzz_copy(data, n);
	memset(h, 0, sizeof *h);
	h->fields = fields;
	h->cap = cap;
	rc = http_parse_head(*copy, n, h, &why);
	if (rc != 0 && rc != 400 && rc != 417 && rc != 431 && rc != 501 &&
	    rc != 505)
		fuzz_fail("a refusal with an undocumented status");
	if (rc != 0 && (why == NULL || why[0] == '\0'))
		fuzz_fail("a refusal without a why");
	if (rc != 0 && strcmp(http_reason(rc), "Unknown") == 0)
		fuzz_fail("a refusal without a reason phrase");
	return (rc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_head	 h, h2;
	struct http_field	*fields;
	size_t			 n, lines, cap2;
	char			*head, *head2;
	int			 rc, rc2;

	n = fuzz_head_end(data, size, size > 0 ? data[0] % (size + 1) : 0);
	if (n == 0)
		return (0);
	lines = http_head_lines((const char *)data, n);
	if ((fields = calloc(lines, sizeof *fields)) == NULL)
		abort();
	rc = fuzz_parse(data, n, &h, fields, lines, &head);
	if (rc == 431)
		fuzz_fail("431 with the array http_head_lines sized");
	if (rc == 0)
		fuzz_check_head(&h, head, n, lines);

	/* A small array: 431 may come in, nothing else may change. */
	cap2 = data[n / 2] % 4;
	rc2 = fuzz_parse(data, n, &h2, fields, cap2, &head2);
	if (rc == 0 && h.nfields <= cap2) {
		if (rc2 != 0 || h2.nfields != h.nfields)
			fuzz_fail("an array big enough changed the answer");
		fuzz_check_head(&h2, head2, n, lines);
	} else if (rc == 0 && rc2 != 431)
		fuzz_fail("too small an array did not give 431");
	else if (rc != 0 && rc2 != rc && rc2 != 431)
		fuzz_fail("a small array changed the refusal");
	free(head2);
	free(head);
	free(fields);
	return (0);
}
