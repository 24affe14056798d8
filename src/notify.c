/*
 * notify.c: systemd's readiness protocol. With NOTIFY_SOCKET set we send
 * one datagram, "READY=1" plus a STATUS line naming where we listen, to
 * that unix socket (a path, or an abstract name starting with '@').
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berthd.h"

int
notify_ready(const char *status)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	char			 msg[512];
	socklen_t		 len;
	int			 fd, rc;

	if (path == NULL || path[0] == '\0')
		return (0);
	if ((path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof sun.sun_path) {
		log_warnx("notify: NOTIFY_SOCKET '%s' is not a socket path",
		    path);
		return (-1);
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s\nMAINPID=%ld\n", status,
	    (long)getpid());
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("notify: socket");
		return (-1);
	}
	rc = (int)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len);
	if (rc == -1)
		log_warn("notify: send to %s", path);
	close(fd);
	return (rc == -1 ? -1 : 0);
}
