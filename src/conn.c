/*
 * conn.c: berthd's client connections, whatever carries them.
 *
 * HTTP and portserver clients share one budget, --max-connections:
 * conn_admit counts a client in (or refuses it, saying so at most once
 * per CONN_SAY_MS), conn_leave counts it out. conn_peer tells who is on
 * the other end of a new connection.
 */
#include "config.h"

#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>

#include "berthd.h"

#define CONN_SAY_MS	10000		/* how often to say the limit is hit */

/* The one server this process runs, for its limit. */
static struct server	*conn_server;
static unsigned int	 conn_clients;	/* HTTP and portserver */

void
conn_init(struct server *srv)
{
	conn_server = srv;
}

/*
 * May one more client connect? If so it is counted until conn_leave. If
 * not, say so (at most once per CONN_SAY_MS), naming who refuses it.
 */
int
conn_admit(const char *who)
{
	static struct log_every	said;
	uint64_t		quiet;

	if (conn_clients < conn_server->cfg->max_connections) {
		conn_clients++;
		return (1);
	}
	if (log_every(&said, CONN_SAY_MS, &quiet))
		log_warnx("%s: connection limit (%u) reached, refusing clients "
		    "(%llu more since last said)", who,
		    conn_server->cfg->max_connections, (unsigned long long)quiet);
	return (0);
}

void
conn_leave(void)
{
	conn_clients--;
}

/* Open client connections, HTTP and portserver. */
unsigned int
conn_count(void)
{
	return (conn_clients);
}

/*
 * Who is on the other end of fd: a unix-socket peer (*local), and whether
 * it runs as root or as berthd's user (*admin, from SO_PEERCRED).
 */
void
conn_peer(int fd, int *local, int *admin)
{
	struct sockaddr_storage	ss;
	struct ucred		cred;
	socklen_t		len = sizeof ss;

	*local = *admin = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    ss.ss_family != AF_UNIX)
		return;
	*local = 1;
	len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		*admin = cred.uid == 0 || cred.uid == geteuid();
}
