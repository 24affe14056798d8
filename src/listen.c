/*
 * listen.c: berthd's listening sockets, TCP (IPv4, IPv6) and unix, whose
 * connections go to the HTTP carrier (http.c). We create each socket ourselves so that port 0 can be read
 * back, a stale unix socket can be told from a live one, and the unix
 * socket gets its mode before anyone can connect.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "berthd.h"

/* A burst of clients at startup waits in the kernel, not refused. */
#define LISTEN_BACKLOG	4096
#define LISTEN_PAUSE_MS	100	/* after accept() ran out of descriptors */
#define LISTEN_SAY_MS	10000	/* how often to say so */

static struct server	*listen_server;

static void
listen_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	if (!listen_server->stopping)
		evconnlistener_enable(arg);
}

/*
 * accept() failed for want of file descriptors or memory. The listening
 * socket stays readable, so libevent would retry at once, for ever, and
 * print a warning each time: pause this listener for a moment instead
 * (clients wait in the backlog) and say so now and then.
 */
void
listen_accept_error(struct evconnlistener *lev, void *arg)
{
	static struct log_every	 said;
	struct timeval		 tv = { 0, LISTEN_PAUSE_MS * 1000 };
	int			 err = EVUTIL_SOCKET_ERROR();
	uint64_t		 quiet;

	(void)arg;
	if (log_every(&said, LISTEN_SAY_MS, &quiet))
		log_warnx("accept: %s; pausing new connections for %d ms "
		    "(%llu more pauses since last said)",
		    evutil_socket_error_to_string(err), LISTEN_PAUSE_MS,
		    (unsigned long long)quiet);
	evconnlistener_disable(lev);
	if (event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT,
	    listen_resume, lev, &tv) == -1)
		evconnlistener_enable(lev);
}

/* Is someone already serving on this unix socket path? */
static int
listen_unix_live(const struct addr *la)
{
	int	fd, live;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (0);
	live = connect(fd, (const struct sockaddr *)&la->ss, la->sslen) == 0;
	close(fd);
	return (live);
}

/*
 * Fill in the address (text and sockaddr) with the port the kernel
 * actually gave us; for dns.c's UDP socket too.
 */
void
listen_record(struct addr *bound, const struct addr *la, int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof ss;
	char			 host[INET6_ADDRSTRLEN];

	*bound = *la;
	if (la->family == AF_UNIX ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	bound->ss = ss;
	bound->sslen = len;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		bound->port = ntohs(sin->sin_port);
		snprintf(bound->text, sizeof bound->text, "%s:%u", host,
		    bound->port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		bound->port = ntohs(sin6->sin6_port);
		snprintf(bound->text, sizeof bound->text, "[%s]:%u", host,
		    bound->port);
	}
}

/*
 * A listening socket for la (TCP, a unix path, or an abstract unix name,
 * which has no file to check, remove or chmod).
 */
int
listen_socket(struct server *srv, const struct addr *la, char *err,
    size_t errlen)
{
	const char	*path = ((const struct sockaddr_un *)&la->ss)->sun_path;
	struct stat	 st;
	mode_t		 mask = 0;
	int		 fd, one = 1, rc;
	int		 file = la->family == AF_UNIX && path[0] != '\0';

	if ((fd = socket(la->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		goto fail;
	if (la->family == AF_UNIX) {
		if (listen_unix_live(la)) {
			snprintf(err, errlen, "%s: another process is already "
			    "serving on this socket", la->text);
			close(fd);
			return (-1);
		}
		/* Only a stale socket is ours to remove, never a file. */
		if (file && lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				snprintf(err, errlen, "%s: the path exists and "
				    "is not a socket", la->text);
				close(fd);
				return (-1);
			}
			unlink(path);
		}
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (la->family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof one);
	}
	/* The socket file is born with its final mode: no window at umask. */
	if (file)
		mask = umask(~(mode_t)srv->cfg->socket_mode & 0777);
	rc = bind(fd, (const struct sockaddr *)&la->ss, la->sslen);
	if (file)
		umask(mask);
	if (rc == -1)
		goto fail;
	if (file && chmod(path, (mode_t)srv->cfg->socket_mode) == -1)
		goto fail;
	if (listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	return (fd);
fail:
	snprintf(err, errlen, "%s: %s%s", la->text, strerror(errno),
	    errno == EADDRINUSE ? " (is another berthd running? try "
	    "'berth status')" : "");
	if (fd != -1)
		close(fd);
	return (-1);
}

/*
 * Open every configured address, each connection to go to accept_cb (a
 * carrier's); on failure nothing stays open.
 */
int
listen_open(struct server *srv, listen_accept_fn accept_cb, char *err,
    size_t errlen)
{
	struct evconnlistener	*lev;
	size_t			 i;
	int			 fd;

	listen_server = srv;
	for (i = 0; i < srv->cfg->nlisten; i++) {
		const struct addr *la = &srv->cfg->listen[i];

		if ((fd = listen_socket(srv, la, err, errlen)) == -1)
			goto fail;
		/* Backlog 0: already listening, with ours. */
		lev = evconnlistener_new(srv->base, accept_cb, srv,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (lev == NULL) {
			snprintf(err, errlen, "%s: cannot make a listener",
			    la->text);
			close(fd);
			goto fail;
		}
		evconnlistener_set_error_cb(lev, listen_accept_error);
		srv->listeners[srv->nlisteners] = lev;
		listen_record(&srv->bound[srv->nlisteners], la, fd);
		srv->nlisteners++;
		log_info("listening on %s", srv->bound[srv->nlisteners - 1].text);
	}
	return (0);
fail:
	listen_close(srv);
	return (-1);
}

/*
 * Stop accepting: the listening sockets close, so that clients are
 * refused at once rather than left waiting in the backlog; unix paths go.
 * What they were bound to stays in srv->bound, for /v1/status.
 */
void
listen_close(struct server *srv)
{
	size_t	i;

	for (i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i] == NULL)
			continue;
		evconnlistener_free(srv->listeners[i]);
		srv->listeners[i] = NULL;
		if (srv->bound[i].family == AF_UNIX)
			unlink(((struct sockaddr_un *)&srv->bound[i].ss)->
			    sun_path);
	}
}
