/*
 * http-parse.c: an HTTP/1.x request head, read strictly and in place.
 *
 * Strict because berthd answers programs on the same machine, and a
 * lenient parser is how requests get smuggled past a proxy in front of
 * it: one space between the request line's parts, no whitespace before
 * a field's colon, no folded lines, no control bytes, one Content-Length
 * of digits only, and Transfer-Encoding never together with it. Lines may
 * end in LF or CRLF, as RFC 9112 allows a recipient to accept.
 *
 * In place because a head is short-lived and copied once already (http.c
 * copies it out of the connection's buffer with the request): parsing
 * only writes NULs and fills an array of pointers into it.
 */
#include "config.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#include "http-parse.h"

static const struct {
	const char	*name;
	size_t		 len;
	int		 bit;
} http_methods[] = {
	{ "GET", 3, HTTP_GET }, { "POST", 4, HTTP_POST },
	{ "HEAD", 4, HTTP_HEAD }, { "PUT", 3, HTTP_PUT },
	{ "DELETE", 6, HTTP_DELETE }, { "OPTIONS", 7, HTTP_OPTIONS },
	{ "TRACE", 5, HTTP_TRACE }, { "CONNECT", 7, HTTP_CONNECT },
	{ "PATCH", 5, HTTP_PATCH }
};

/* RFC 9110's tchar: what a method or a field name is made of. */
static int
http_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return (1);
	return (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * Can a request begin with byte c: a method's first character, or the
 * empty line a client may send before the request line? A connection
 * whose first byte cannot (a DNS query over TCP begins with 0x00 or
 * 0x01, TLS with 0x16) is refused at once, not after the idle timeout.
 */
int
http_can_start(unsigned char c)
{
	return (http_tchar(c) || c == '\r' || c == '\n');
}

size_t
http_head_end(const char *buf, size_t len, size_t *from)
{
	const char	*p = buf + *from, *end = buf + len, *nl;

	/* The blank line is "\n\n" or "\n\r\n" after the last field. */
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (nl + 1 < end && nl[1] == '\n')
			return ((size_t)(nl - buf) + 2);
		if (nl + 2 < end && nl[1] == '\r' && nl[2] == '\n')
			return ((size_t)(nl - buf) + 3);
		if (nl + 2 >= end) {
			/* The next read may complete a blank line here. */
			*from = (size_t)(nl - buf);
			return (0);
		}
		p = nl + 1;
	}
	*from = len;
	return (0);
}

size_t
http_head_lines(const char *buf, size_t len)
{
	const char	*p = buf, *end = buf + len;
	size_t		 n = 0;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return (n);
}

/* Cut the line at *pos (ending in LF or CRLF) and step past it. */
static char *
http_line(char **pos, char *end)
{
	char	*line = *pos, *nl;

	if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
		return (NULL);
	*pos = nl + 1;
	if (nl > line && nl[-1] == '\r')
		nl--;
	*nl = '\0';
	return (line);
}

static int
http_method(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++) {
		if (http_methods[i].len == len &&
		    memcmp(http_methods[i].name, s, len) == 0)
			return (http_methods[i].bit);
	}
	return (0);
}

/*
 * Split an absolute-form target (http://host:port/path?query) into host
 * and the rest; the host keeps no brackets and no port, as the router
 * compares it with its list.
 */
static int
http_absolute(char *target, struct http_head *h, const char **why)
{
	char	*auth, *end, *host, *at, *port;

	if (strncasecmp(target, "http://", 7) == 0)
		auth = target + 7;
	else if (strncasecmp(target, "https://", 8) == 0)
		auth = target + 8;
	else {
		*why = "the request target is neither a path nor an http URI";
		return (400);
	}
	/* Move the authority one byte left, over a '/', to end it in NUL. */
	end = auth + strcspn(auth, "/?");
	host = auth - 1;
	memmove(host, auth, (size_t)(end - auth));
	end[-1] = '\0';
	if (*end == '?') {		/* "http://host?q": an empty path */
		*end = '\0';
		h->query = end + 1;
	}
	h->path = end;
	if ((at = strrchr(host, '@')) != NULL)
		host = at + 1;		/* userinfo: no meaning to us */
	port = NULL;
	if (*host == '[') {
		if ((at = strchr(host, ']')) == NULL || (at[1] != '\0' &&
		    at[1] != ':')) {
			*why = "the request target's host is not [IPv6]";
			return (400);
		}
		*at = '\0';
		port = at[1] == ':' ? at + 2 : NULL;
		host++;
	} else if ((at = strchr(host, ':')) != NULL) {
		*at = '\0';
		port = at + 1;
	}
	/* RFC 9110 4.2.1: an http URI with an empty host is invalid. */
	if (*host == '\0' || (port != NULL && strspn(port, "0123456789") !=
	    strlen(port))) {
		*why = "the request target's host or port is empty or not valid";
		return (400);
	}
	h->uri_host = host;
	return (0);
}

/* The request line: METHOD SP request-target SP HTTP/1.x */
static int
http_request_line(char *line, struct http_head *h, const char **why)
{
	char	*target, *version, *q;
	size_t	 i;

	if ((target = strchr(line, ' ')) == NULL ||
	    (version = strchr(target + 1, ' ')) == NULL ||
	    strchr(version + 1, ' ') != NULL || target == line ||
	    version == target + 1) {
		*why = "the request line is not 'METHOD TARGET HTTP/1.1'";
		return (400);
	}
	for (i = 0; line + i < target; i++) {
		if (!http_tchar((unsigned char)line[i])) {
			*why = "the method holds a byte no method may";
			return (400);
		}
	}
	*target++ = '\0';
	*version++ = '\0';
	if (strncmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
	    version[5] > '9' || version[6] != '.' || version[7] < '0' ||
	    version[7] > '9' || version[8] != '\0') {
		*why = "the request line's version is not HTTP/1.1 or HTTP/1.0";
		return (400);
	}
	if (version[5] != '1') {
		*why = "berthd speaks HTTP/1.1 and HTTP/1.0 only";
		return (505);
	}
	/* RFC 9110 2.5: a higher minor version is answered as our highest. */
	h->minor = version[7] == '0' ? 0 : 1;
	/*
	 * Bytes over 0x7f are let through: a path is only ever matched
	 * against the route table and lease names, which answer them with
	 * a precise invalid_name.
	 */
	for (q = target; *q != '\0'; q++) {
		if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
			*why = "the request target holds a space or a control "
			    "byte";
			return (400);
		}
	}
	if ((h->method = http_method(line, (size_t)(target - 1 - line))) == 0) {
		*why = "unknown method";
		return (501);
	}
	/* A fragment is the client's alone; some send it anyway. */
	if ((q = strchr(target, '#')) != NULL)
		*q = '\0';
	if (target[0] != '/' && strcmp(target, "*") != 0)
		return (http_absolute(target, h, why));
	h->path = target;
	return (0);
}

/* One field line, cut into name and value (OWS trimmed). */
static int
http_field_line(char *line, struct http_head *h, const char **why)
{
	char	*colon, *v, *e;

	if (*line == ' ' || *line == '\t') {
		*why = "a folded header line (obsolete line folding)";
		return (400);
	}
	for (colon = line; *colon != ':'; colon++) {
		if (!http_tchar((unsigned char)*colon)) {
			*why = "a header name holds a byte no name may, or the "
			    "line has no ':'";
			return (400);
		}
	}
	if (colon == line) {
		*why = "a header line with an empty name";
		return (400);
	}
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (e = v; *e != '\0'; e++) {
		if (((unsigned char)*e < 0x20 && *e != '\t') || *e == 0x7f) {
			*why = "a header value holds a control byte";
			return (400);
		}
	}
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	if (h->nfields == h->cap) {
		*why = "too many header lines";
		return (431);
	}
	h->fields[h->nfields].name = line;
	h->fields[h->nfields].value = v;
	h->nfields++;
	return (0);
}

/* Does the comma-separated list v hold token (case-insensitive)? */
static int
http_list_has(const char *v, const char *token)
{
	size_t	n = strlen(token), len;

	while (*v != '\0') {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		len = strcspn(v, ", \t");
		if (len == n && strncasecmp(v, token, n) == 0)
			return (1);
		v += len;
	}
	return (0);
}

/* What the fields say about the body and the connection. */
static int
http_framing(struct http_head *h, const char **why)
{
	const char		*v;
	unsigned long long	 n = 0;
	size_t			 i, len;

	h->content_length = -1;
	for (i = 0; i < h->nfields; i++) {
		const char *name = h->fields[i].name;

		v = h->fields[i].value;
		if (strcasecmp(name, "Content-Length") == 0) {
			if (h->content_length != -1) {
				*why = "more than one Content-Length";
				return (400);
			}
			if (*v == '\0' || strspn(v, "0123456789") != strlen(v)) {
				*why = "Content-Length is not a number";
				return (400);
			}
			/* Past 18 digits it is only "too large" (413). */
			for (n = 0; *v != '\0' && n <= LLONG_MAX / 10 - 9; v++)
				n = n * 10 + (unsigned long long)(*v - '0');
			h->content_length = *v == '\0' ? (long long)n : LLONG_MAX;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			/*
			 * RFC 9112 6.3: only a coding list ending in chunked
			 * frames a body; berthd refuses that (411) too, but
			 * anything else has no length at all (400).
			 */
			len = strlen(v);
			while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
				len--;
			if (len < 7 || strncasecmp(v + len - 7, "chunked", 7) != 0 ||
			    (len > 7 && v[len - 8] != ',' && v[len - 8] != ' ' &&
			    v[len - 8] != '\t')) {
				*why = "a Transfer-Encoding that does not end in "
				    "chunked";
				return (400);
			}
			h->chunked = 1;
		}
		else if (strcasecmp(name, "Connection") == 0) {
			if (http_list_has(v, "close"))
				h->close = 1;
			if (http_list_has(v, "keep-alive"))
				h->keep_alive = 1;
		} else if (strcasecmp(name, "Expect") == 0) {
			if (strcasecmp(v, "100-continue") != 0) {
				*why = "the only expectation berthd meets is "
				    "100-continue";
				return (417);
			}
			h->expect_continue = 1;
		}
	}
	if (h->chunked && h->content_length != -1) {
		*why = "both Transfer-Encoding and Content-Length";
		return (400);
	}
	if (h->minor == 0 && !h->keep_alive)
		h->close = 1;
	/* RFC 9110 10.1.1: a 1.0 client may not read a 100 Continue. */
	if (h->minor == 0)
		h->expect_continue = 0;
	if (http_field_count(h->fields, h->nfields, "Host") > 1) {
		*why = "more than one Host header";
		return (400);
	}
	if (h->minor == 1 && http_field(h->fields, h->nfields, "Host") ==
	    NULL) {
		*why = "an HTTP/1.1 request needs a Host header";
		return (400);
	}
	return (0);
}

int
http_parse_head(char *buf, size_t len, struct http_head *h,
    const char **why)
{
	char	*pos = buf, *end = buf + len, *line, *q;
	int	 rc;

	h->method = h->minor = 0;
	h->path = "";
	h->query = h->uri_host = NULL;
	h->nfields = 0;
	h->chunked = h->close = h->keep_alive = h->expect_continue = 0;
	h->content_length = -1;
	if (memchr(buf, '\0', len) != NULL) {
		*why = "the request holds a NUL byte";
		return (400);
	}
	/* RFC 9112: ignore empty lines before the request line. */
	while (pos < end && (*pos == '\n' || (*pos == '\r' && pos + 1 < end &&
	    pos[1] == '\n')))
		pos += *pos == '\n' ? 1 : 2;
	if ((line = http_line(&pos, end)) == NULL || *line == '\0') {
		*why = "no request line";
		return (400);
	}
	if ((rc = http_request_line(line, h, why)) != 0)
		return (rc);
	if ((q = strchr(h->path, '?')) != NULL) {
		*q = '\0';
		h->query = q + 1;
	}
	while ((line = http_line(&pos, end)) != NULL && *line != '\0') {
		if ((rc = http_field_line(line, h, why)) != 0)
			return (rc);
	}
	if (line == NULL) {
		*why = "the head does not end with an empty line";
		return (400);
	}
	return (http_framing(h, why));
}

const char *
http_field(const struct http_field *f, size_t n, const char *name)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (strcasecmp(f[i].name, name) == 0)
			return (f[i].value);
	}
	return (NULL);
}

size_t
http_field_count(const struct http_field *f, size_t n, const char *name)
{
	size_t	i, count = 0;

	for (i = 0; i < n; i++) {
		if (strcasecmp(f[i].name, name) == 0)
			count++;
	}
	return (count);
}

const char *
http_reason(int status)
{
	switch (status) {
	case 100: return ("Continue");
	case 200: return ("OK");
	case 201: return ("Created");
	case 204: return ("No Content");
	case 400: return ("Bad Request");
	case 403: return ("Forbidden");
	case 404: return ("Not Found");
	case 405: return ("Method Not Allowed");
	case 409: return ("Conflict");
	case 411: return ("Length Required");
	case 413: return ("Content Too Large");
	case 415: return ("Unsupported Media Type");
	case 417: return ("Expectation Failed");
	case 431: return ("Request Header Fields Too Large");
	case 500: return ("Internal Server Error");
	case 501: return ("Not Implemented");
	case 503: return ("Service Unavailable");
	case 505: return ("HTTP Version Not Supported");
	default: return ("Unknown");
	}
}
