/*
 * addr.c: the one parser for broker addresses, used by libberth to
 * connect and by berthd for --listen and --portserver, so that an address
 * one accepts the other accepts too. The forms and flags are described in
 * common.h.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"

static int	addr_error(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Write one line to err; returns -1 for the caller to return. */
static int
addr_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return (-1);
}

/* The usual complaint: the text, quoted, and every form the flags allow. */
static int
addr_bad(const char *s, int flags, const char *what, char *err,
    size_t errlen)
{
	if (flags & ADDR_UNIX_BARE)
		return (addr_error(err, errlen, "bad %s address '%.128s' (want "
		    "@NAME or a socket path of at most %zu bytes)", what, s,
		    sizeof(((struct sockaddr_un *)0)->sun_path) - 1));
	return (addr_error(err, errlen, "bad %s address '%.128s' (want "
	    "127.0.0.1:PORT, [::1]:PORT, localhost:PORT%s or unix:/PATH)", what,
	    s, (flags & ADDR_RESOLVE) ? ", HOST:PORT" : ""));
}

/* 127/8, ::1 and unix sockets: reachable from this host only. */
static int
addr_loopback(const struct addr *a)
{
	const struct sockaddr_in	*sin = (const void *)&a->ss;
	const struct sockaddr_in6	*sin6 = (const void *)&a->ss;

	switch (a->family) {
	case AF_UNIX:
		return (1);
	case AF_INET:
		return ((ntohl(sin->sin_addr.s_addr) >> 24) == 127);
	default:
		return (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	}
}

/* A port: 1-5 decimal digits, 1-65535 (0 too with ADDR_PORT0). */
static int
addr_port(const char *s, int flags, uint16_t *port)
{
	unsigned long	v = 0;
	size_t		i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return (-1);
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || v > 65535 || (v == 0 && !(flags & ADDR_PORT0)))
		return (-1);
	*port = (uint16_t)v;
	return (0);
}

/*
 * A unix socket: a path, or with abstract set "@NAME" (the bytes after
 * the '@' and no trailing NUL, so the address length counts them).
 */
static int
addr_unix(const char *path, int abstract, struct addr *a)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)&a->ss;
	size_t			 len = strlen(path);

	if (len == 0 || len >= sizeof sun->sun_path ||
	    (abstract && len == 1))
		return (-1);
	a->family = AF_UNIX;
	a->loopback = 1;
	sun->sun_family = AF_UNIX;
	if (abstract) {
		a->abstract = 1;
		sun->sun_path[0] = '\0';
		memcpy(sun->sun_path + 1, path + 1, len - 1);
		a->sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    len);
	} else {
		memcpy(sun->sun_path, path, len + 1);
		a->sslen = sizeof *sun;
	}
	return (0);
}

/* Look a host name up: its first address, as getaddrinfo orders them. */
static int
addr_resolve(const char *what, struct addr *a, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res;
	char		 service[8];
	int		 rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof service, "%u", a->port);
	if ((rc = getaddrinfo(a->host, service, &hints, &res)) != 0)
		return (addr_error(err, errlen, "cannot resolve the %s host "
		    "'%s' (%s)", what, a->host, gai_strerror(rc)));
	if (res->ai_addrlen > sizeof a->ss) {
		freeaddrinfo(res);
		return (addr_error(err, errlen, "cannot resolve the %s host "
		    "'%s' (an address of an unknown kind)", what, a->host));
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->sslen = res->ai_addrlen;
	a->family = res->ai_family;
	freeaddrinfo(res);
	return (0);
}

/*
 * Split "[v6]:port" or "host:port" into a->host and a->port; the text is
 * already known to fit. Returns 1 for a bracketed host, 0 for another, -1
 * when the text has no such shape.
 */
static int
addr_split(const char *s, int flags, struct addr *a)
{
	const char	*colon, *host = s;
	size_t		 len;
	int		 bracket = s[0] == '[';

	if (bracket) {
		if ((colon = strstr(s, "]:")) == NULL)
			return (-1);
		host = s + 1;
		len = (size_t)(colon - host);
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return (-1);
		len = (size_t)(colon - s);
	}
	if (len == 0 || len >= sizeof a->host ||
	    addr_port(colon + 1, flags, &a->port) == -1)
		return (-1);
	memcpy(a->host, host, len);
	a->host[len] = '\0';
	return (bracket);
}

/* The TCP forms; a->host and a->port are set by addr_split. */
static int
addr_inet(const char *s, int flags, const char *what, struct addr *a,
    char *err, size_t errlen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&a->ss;
	int			 bracket;

	if ((bracket = addr_split(s, flags, a)) == -1)
		return (addr_bad(s, flags, what, err, errlen));
	if (bracket) {
		if (inet_pton(AF_INET6, a->host, &sin6->sin6_addr) != 1)
			return (addr_bad(s, flags, what, err, errlen));
		a->family = sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		a->sslen = sizeof *sin6;
		return (0);
	}
	if (strcasecmp(a->host, "localhost") == 0)
		snprintf(a->host, sizeof a->host, "127.0.0.1");
	if (inet_pton(AF_INET, a->host, &sin->sin_addr) == 1) {
		a->family = sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		a->sslen = sizeof *sin;
		return (0);
	}
	/* An IPv6 literal without brackets, or a name we may not look up. */
	if (strchr(a->host, ':') != NULL || !(flags & ADDR_RESOLVE))
		return (addr_bad(s, flags, what, err, errlen));
	return (addr_resolve(what, a, err, errlen));
}

int
addr_parse(const char *s, int flags, const char *what, struct addr *a,
    char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	if (strlen(s) >= sizeof a->text)
		return (addr_error(err, errlen, "%s address too long: "
		    "'%.64s...'", what, s));
	snprintf(a->text, sizeof a->text, "%s", s);
	if (flags & ADDR_UNIX_BARE) {
		if (addr_unix(s, s[0] == '@', a) == -1)
			return (addr_bad(s, flags, what, err, errlen));
		return (0);
	}
	if (strncmp(s, "unix:", 5) == 0) {
		if (addr_unix(s + 5, 0, a) == -1)
			return (addr_error(err, errlen, "bad %s address '%s': "
			    "the socket path is empty or longer than %zu "
			    "bytes", what, s, sizeof(((struct sockaddr_un *)0)->
			    sun_path) - 1));
		return (0);
	}
	if (addr_inet(s, flags, what, a, err, errlen) == -1)
		return (-1);
	a->loopback = addr_loopback(a);
	return (0);
}
