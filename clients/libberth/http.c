/*
 * http.c: libberth's HTTP/1.1 client: one keep-alive connection to berthd
 * over TCP or a unix socket, blocking calls with a deadline (poll on a
 * non-blocking socket), and a transparent reconnect when a reused
 * connection turns out to have been closed by the broker.
 */
#include "config.h"

#include <sys/socket.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

#define BHTTP_MAX_HEAD	16384
#define BHTTP_MAX_BODY	(64 * 1024 * 1024)

void
bhttp_set_error(berth_error *err, int code, int status, const char *api_code,
    const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL)
		return;
	err->code = code;
	err->http_status = status;
	snprintf(err->api_code, sizeof err->api_code, "%s",
	    api_code != NULL ? api_code : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
}

/*
 * The broker's address, by the parser berthd uses for --listen (common.h),
 * plus host names, which a client may look up. The Host header is the
 * address as given; berthd takes any loopback name or its own address.
 */
int
bhttp_parse_addr(struct berth_client *c, const char *addr, berth_error *err)
{
	char	msg[sizeof err->message];

	if (addr_parse(addr, ADDR_RESOLVE, "broker", &c->addr, msg,
	    sizeof msg) == -1) {
		bhttp_set_error(err, BERTH_EINVAL, 0, NULL, "%s", msg);
		return (BERTH_EINVAL);
	}
	snprintf(c->host_header, sizeof c->host_header, "%s",
	    c->addr.family == AF_UNIX ? "localhost" : c->addr.text);
	return (0);
}

void
bhttp_disconnect(struct berth_client *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static int64_t
bhttp_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Wait for events on c->fd until the deadline: 1 ready, 0 timed out. */
static int
bhttp_wait(struct berth_client *c, short events, int64_t deadline)
{
	struct pollfd	pfd = { c->fd, events, 0 };
	int64_t		left;
	int		rc;

	for (;;) {
		left = deadline - bhttp_now_ms();
		if (left <= 0)
			return (0);
		rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (rc > 0)
			return (1);
		if (rc == -1 && errno != EINTR)
			return (1);	/* let the I/O call report it */
	}
}

static int
bhttp_timeout(struct berth_client *c, berth_error *err)
{
	bhttp_disconnect(c);
	bhttp_set_error(err, BERTH_ETIMEOUT, 0, NULL, "broker at %s did not "
	    "answer within %.1f s", c->addr.text, c->timeout_ms / 1000.0);
	return (BERTH_ETIMEOUT);
}

static int
bhttp_unreachable(struct berth_client *c, int e, berth_error *err)
{
	char	why[128];

	bhttp_disconnect(c);
	/*
	 * A socket this user may not open is no sign that the broker is
	 * down: say what was refused, not "no broker".
	 */
	if (c->addr.family == AF_UNIX && (e == EACCES || e == EPERM)) {
		bhttp_set_error(err, BERTH_EUNREACHABLE, 0, NULL,
		    "permission denied on %s", c->addr.text);
		return (BERTH_EUNREACHABLE);
	}
	/* "connection refused", as curl says it and berth(1) shows it. */
	snprintf(why, sizeof why, "%s", strerror(e));
	why[0] = (char)tolower((unsigned char)why[0]);
	bhttp_set_error(err, BERTH_EUNREACHABLE, 0, NULL, "no broker at %s "
	    "(%s)", c->addr.text, why);
	return (BERTH_EUNREACHABLE);
}

static int
bhttp_connect(struct berth_client *c, int64_t deadline, berth_error *err)
{
	socklen_t	len = sizeof(int);
	int		e = 0;

	c->fd = socket(c->addr.family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0);
	if (c->fd == -1)
		return (bhttp_unreachable(c, errno, err));
	if (connect(c->fd, (struct sockaddr *)&c->addr.ss,
	    c->addr.sslen) == 0)
		return (0);
	if (errno != EINPROGRESS && errno != EAGAIN)
		return (bhttp_unreachable(c, errno, err));
	if (!bhttp_wait(c, POLLOUT, deadline))
		return (bhttp_timeout(c, err));
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		e = errno;
	if (e != 0)
		return (bhttp_unreachable(c, e, err));
	return (0);
}

/* Send all of buf; -1 with errno on failure, -2 on timeout. */
static int
bhttp_send_all(struct berth_client *c, const char *buf, size_t len,
    int64_t deadline)
{
	ssize_t	n;

	while (len > 0) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!bhttp_wait(c, POLLOUT, deadline))
				return (-2);
			continue;
		}
		return (-1);
	}
	return (0);
}

/* Read more into c->buf: >0 bytes, 0 EOF, -1 error (errno), -2 timeout. */
static ssize_t
bhttp_fill(struct berth_client *c, int64_t deadline)
{
	ssize_t	n;
	char	*nb;

	if (c->cap - c->len < 4096) {
		if ((nb = realloc(c->buf, c->cap * 2 + 8192)) == NULL) {
			errno = ENOMEM;
			return (-1);
		}
		c->buf = nb;
		c->cap = c->cap * 2 + 8192;
	}
	for (;;) {
		n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
		if (n >= 0) {
			c->len += (size_t)n;
			c->buf[c->len] = '\0';
			return (n);
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return (-1);
		if (!bhttp_wait(c, POLLIN, deadline))
			return (-2);
	}
}

/* Drop the first n bytes of the read buffer. */
static void
bhttp_consume(struct berth_client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	if (c->buf != NULL)
		c->buf[c->len] = '\0';
}

struct bhttp_head {
	int		status;
	long long	content_length;	/* -1 if none */
	int		chunked;
	int		close;
	uint64_t	index;
	int		has_index;
};

/* Parse the status line and the headers we use; -1 if malformed. */
static int
bhttp_parse_head(char *head, struct bhttp_head *h)
{
	char	*line, *save = NULL, *colon, *v;

	memset(h, 0, sizeof *h);
	h->content_length = -1;
	if ((line = strtok_r(head, "\r\n", &save)) == NULL ||
	    strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12 ||
	    sscanf(line + 8, " %3d", &h->status) != 1)
		return (-1);
	if (line[7] == '0')
		h->close = 1;
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		if ((colon = strchr(line, ':')) == NULL)
			continue;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (strcasecmp(line, "Content-Length") == 0)
			h->content_length = strtoll(v, NULL, 10);
		else if (strcasecmp(line, "Transfer-Encoding") == 0 &&
		    strcasestr(v, "chunked") != NULL)
			h->chunked = 1;
		else if (strcasecmp(line, "Connection") == 0 &&
		    strcasestr(v, "close") != NULL)
			h->close = 1;
		else if (strcasecmp(line, "X-Berth-Index") == 0) {
			h->index = strtoull(v, NULL, 10);
			h->has_index = 1;
		}
	}
	return (0);
}

/* Make sure c->buf holds at least n bytes; 0, or the fill's error. */
static ssize_t
bhttp_need(struct berth_client *c, size_t n, int64_t deadline)
{
	ssize_t	r;

	while (c->len < n) {
		if ((r = bhttp_fill(c, deadline)) <= 0)
			return (r == 0 ? -3 : r);
	}
	return (0);
}

/* Append len bytes of the buffer to the body and consume them. */
static int
bhttp_take(struct berth_client *c, struct bhttp_response *r, size_t len)
{
	char	*nb;

	if (r->body_len + len > BHTTP_MAX_BODY ||
	    (nb = realloc(r->body, r->body_len + len + 1)) == NULL)
		return (-1);
	r->body = nb;
	memcpy(r->body + r->body_len, c->buf, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	bhttp_consume(c, len);
	return (0);
}

/* A chunked body: size lines, data, CRLFs, a last zero chunk, trailers. */
static ssize_t
bhttp_read_chunked(struct berth_client *c, struct bhttp_response *r,
    int64_t deadline)
{
	char		*eol, *end;
	unsigned long	 size;
	ssize_t		 rc;

	for (;;) {
		while ((eol = strstr(c->buf != NULL ? c->buf : "", "\r\n")) ==
		    NULL) {
			if ((rc = bhttp_fill(c, deadline)) <= 0)
				return (rc == 0 ? -3 : rc);
		}
		size = strtoul(c->buf, &end, 16);
		if (end == c->buf)
			return (-4);
		bhttp_consume(c, (size_t)(eol - c->buf) + 2);
		if (size == 0) {
			/* Skip trailers up to the empty line. */
			for (;;) {
				while ((eol = strstr(c->buf != NULL ? c->buf :
				    "", "\r\n")) == NULL) {
					if ((rc = bhttp_fill(c, deadline)) <= 0)
						return (rc == 0 ? -3 : rc);
				}
				bhttp_consume(c, (size_t)(eol - c->buf) + 2);
				if (eol == c->buf)
					return (0);
			}
		}
		if ((rc = bhttp_need(c, size + 2, deadline)) != 0)
			return (rc);
		if (bhttp_take(c, r, size) == -1)
			return (-4);
		bhttp_consume(c, 2);
	}
}

/*
 * Do the bytes read so far show that the answer is not HTTP at all (an
 * SSH or database server's greeting, binary)? Then the peer is not berthd,
 * whether or not it hangs up next: no need to wait for a whole head.
 */
static int
bhttp_not_http(const struct berth_client *c)
{
	static const char	prefix[] = "HTTP/1.";
	size_t			n = c->len < sizeof prefix - 1 ? c->len :
				    sizeof prefix - 1;

	return (memchr(c->buf, '\0', c->len) != NULL ||
	    memcmp(c->buf, prefix, n) != 0);
}

/*
 * Read one response. Returns 0; -1 I/O error (errno); -2 timeout; -3 EOF
 * (with *got_any saying whether any byte of it came); -4 malformed.
 */
static int
bhttp_read_response(struct berth_client *c, const char *method,
    struct bhttp_response *r, struct bhttp_head *h, int64_t deadline,
    int *got_any)
{
	char	*end, *head;
	size_t	 headlen;
	ssize_t	 rc;

	*got_any = c->len > 0;
	while ((end = c->buf != NULL ? strstr(c->buf, "\r\n\r\n") : NULL) ==
	    NULL) {
		if (c->len > BHTTP_MAX_HEAD || (c->len > 0 && bhttp_not_http(c)))
			return (-4);
		if ((rc = bhttp_fill(c, deadline)) <= 0)
			return (rc == 0 ? -3 : (int)rc);
		*got_any = 1;
	}
	headlen = (size_t)(end - c->buf) + 4;
	if ((head = strndup(c->buf, headlen)) == NULL)
		return (-4);
	bhttp_consume(c, headlen);
	rc = bhttp_parse_head(head, h);
	free(head);
	if (rc == -1)
		return (-4);
	r->status = h->status;
	if (h->status == 204 || h->status == 304 || h->status < 200 ||
	    strcmp(method, "HEAD") == 0)
		return (0);
	if (h->chunked)
		return ((int)bhttp_read_chunked(c, r, deadline));
	if (h->content_length >= 0) {
		if (h->content_length > BHTTP_MAX_BODY)
			return (-4);
		if ((rc = bhttp_need(c, (size_t)h->content_length,
		    deadline)) != 0)
			return ((int)rc);
		return (bhttp_take(c, r, (size_t)h->content_length) == -1 ?
		    -4 : 0);
	}
	/* No length: the body runs to the end of the connection. */
	h->close = 1;
	while ((rc = bhttp_fill(c, deadline)) > 0)
		;
	if (rc != 0)
		return ((int)rc);
	return (bhttp_take(c, r, c->len) == -1 ? -4 : 0);
}

static char *
bhttp_format(struct berth_client *c, const char *method, const char *path,
    const char *token, const char *body, size_t *len)
{
	char	*req;
	size_t	 blen = body != NULL ? strlen(body) : 0;
	int	 n;

	n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: libberth/" BERTH_VERSION "\r\n"
	    "Accept: application/json\r\n"
	    "%s%s%s"
	    "%s"
	    "Content-Length: %zu\r\n\r\n%s",
	    method, path, c->host_header,
	    token != NULL ? "Authorization: Bearer " : "",
	    token != NULL ? token : "", token != NULL ? "\r\n" : "",
	    body != NULL ? "Content-Type: application/json\r\n" : "",
	    blen, body != NULL ? body : "");
	if (n < 0)
		return (NULL);
	*len = (size_t)n;
	return (req);
}

/* One attempt on the current (or a new) connection. */
static int
bhttp_attempt(struct berth_client *c, const char *req, size_t reqlen,
    const char *method, struct bhttp_response *r, int64_t deadline,
    int *retryable, berth_error *err)
{
	struct bhttp_head	h;
	int			reused = c->fd != -1, rc, got_any;

	*retryable = 0;
	if (!reused && (rc = bhttp_connect(c, deadline, err)) != 0)
		return (rc);
	rc = bhttp_send_all(c, req, reqlen, deadline);
	if (rc == -2)
		return (bhttp_timeout(c, err));
	if (rc == -1) {
		*retryable = reused;
		return (bhttp_unreachable(c, errno, err));
	}
	rc = bhttp_read_response(c, method, r, &h, deadline, &got_any);
	if (rc == -2)
		return (bhttp_timeout(c, err));
	if (rc == -1 || rc == -3) {
		/* A reused connection the broker had closed: try afresh. */
		*retryable = reused && !got_any;
		return (bhttp_unreachable(c, rc == -3 ? ECONNRESET : errno,
		    err));
	}
	if (rc == -4) {
		bhttp_disconnect(c);
		bhttp_set_error(err, BERTH_EPROTO, 0, NULL, "the answer from "
		    "%s is not HTTP as berthd sends it", c->addr.text);
		return (BERTH_EPROTO);
	}
	if (h.has_index)
		c->last_index = h.index;
	if (h.close)
		bhttp_disconnect(c);
	return (0);
}

/*
 * Send one request and read its answer. extra_wait_ms lengthens the
 * deadline for blocking queries. On success the caller owns r->body.
 */
int
bhttp_request(struct berth_client *c, const char *method, const char *path,
    const char *token, const char *body, int extra_wait_ms,
    struct bhttp_response *r, berth_error *err)
{
	int64_t	 deadline;
	size_t	 reqlen;
	char	*req;
	int	 rc, retryable, tries;

	memset(r, 0, sizeof *r);
	if ((req = bhttp_format(c, method, path, token, body, &reqlen)) ==
	    NULL) {
		bhttp_set_error(err, BERTH_ENOMEM, 0, NULL, "out of memory");
		return (BERTH_ENOMEM);
	}
	deadline = bhttp_now_ms() + c->timeout_ms + extra_wait_ms;
	for (tries = 0; tries < 2; tries++) {
		free(r->body);
		memset(r, 0, sizeof *r);
		rc = bhttp_attempt(c, req, reqlen, method, r, deadline,
		    &retryable, err);
		if (rc == 0 || !retryable)
			break;
	}
	free(req);
	if (rc != 0) {
		free(r->body);
		r->body = NULL;
	}
	return (rc);
}
