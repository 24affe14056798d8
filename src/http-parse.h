/*
 * http-parse.h: reading an HTTP/1.x request head, strictly, in place.
 * No libevent and no allocation: http.c (the carrier), the unit tests
 * and the fuzz harnesses share it.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stddef.h>

/* Request methods, one bit each, so that a route can take a set. */
#define HTTP_GET	0x001
#define HTTP_POST	0x002
#define HTTP_HEAD	0x004
#define HTTP_PUT	0x008
#define HTTP_DELETE	0x010
#define HTTP_OPTIONS	0x020
#define HTTP_TRACE	0x040
#define HTTP_CONNECT	0x080
#define HTTP_PATCH	0x100

/* One header field: both NUL-terminated, the value without its OWS. */
struct http_field {
	const char	*name;
	const char	*value;
};

/* What http_parse_head read. Every pointer is into the parsed buffer. */
struct http_head {
	int		 method;	/* one HTTP_* bit */
	int		 minor;		/* HTTP/1.minor: 0, or 1 for 1 and up */
	const char	*path;		/* never NULL; "*" (OPTIONS *) kept */
	const char	*query;		/* after '?', or NULL */
	const char	*uri_host;	/* absolute-form's host, or NULL */
	struct http_field *fields;	/* the caller's array ... */
	size_t		 cap;		/* ... of this many */
	size_t		 nfields;
	/* From the fields, checked: */
	long long	 content_length;	/* -1: none given */
	int		 chunked;	/* Transfer-Encoding given */
	int		 close;		/* Connection: close (or 1.0 default) */
	int		 keep_alive;	/* 1.0 asked for keep-alive */
	int		 expect_continue;	/* Expect: 100-continue */
};

/*
 * The length of the head at the start of buf (request line, fields and
 * the empty line, LF or CRLF), or 0 if it has not all arrived. *from is
 * where to resume the search next time (start it at 0).
 */
size_t		 http_head_end(const char *, size_t, size_t *);
int		 http_can_start(unsigned char);

/*
 * The fields a head of this many bytes can hold at most (one per line),
 * to size the array http_parse_head fills.
 */
size_t		 http_head_lines(const char *, size_t);

/*
 * Parse a whole head (http_head_end's length) in place: it NUL-terminates
 * the parts h points to. 0 on success; else the HTTP status to refuse it
 * with (400; 501 for a method we do not know; 505 for a version not
 * HTTP/1.x) and *why says what was wrong, for the answer's
 * message.
 */
int		 http_parse_head(char *, size_t, struct http_head *,
		    const char **);

/* The first field called name (case-insensitive), or NULL; and a count. */
const char	*http_field(const struct http_field *, size_t, const char *);
size_t		 http_field_count(const struct http_field *, size_t,
		    const char *);

/* The reason phrase of a status ("Unknown" for one we never send). */
const char	*http_reason(int);

#endif /* HTTP_PARSE_H */
