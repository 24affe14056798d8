/*
 * conn.c: berthd's client connections, whatever carries them.
 *
 * HTTP and portserver clients share one budget, --max-connections:
 * conn_admit counts a client in (or refuses it, saying so at most once
 * per CONN_SAY_MS), conn_leave counts it out. conn_local and
 * conn_peer_uid tell who is on the other end of a connection: its uid,
 * over a unix socket or loopback TCP alike.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
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

/* Is this address loopback (127/8, ::1, or ::ffff:127/104)? */
static int
conn_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*in = (const void *)ss;
	const struct sockaddr_in6	*in6 = (const void *)ss;

	if (ss->ss_family == AF_INET)
		return ((ntohl(in->sin_addr.s_addr) >> 24) == 127);
	if (ss->ss_family != AF_INET6)
		return (0);
	if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
		return (1);
	return (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
	    in6->sin6_addr.s6_addr[12] == 127);
}

/*
 * ss's address as family's bytes (an IPv4-mapped IPv6 address is the
 * IPv4 socket's), and its port.
 */
static void
conn_side(const struct sockaddr_storage *ss, int family, uint16_t *port,
    unsigned char addr[16])
{
	const struct sockaddr_in	*in = (const void *)ss;
	const struct sockaddr_in6	*in6 = (const void *)ss;

	memset(addr, 0, 16);
	if (ss->ss_family == AF_INET) {
		*port = ntohs(in->sin_port);
		memcpy(addr, &in->sin_addr, 4);
		return;
	}
	*port = ntohs(in6->sin6_port);
	if (family == AF_INET)
		memcpy(addr, &in6->sin6_addr.s6_addr[12], 4);
	else
		memcpy(addr, &in6->sin6_addr, 16);
}

/*
 * The uid owning the other end of a loopback TCP connection, asked of the
 * kernel's socket tables: the peer's socket has our address as its
 * destination and its own as its source. -1 if it cannot be told.
 */
static long
conn_tcp_uid(const struct sockaddr_storage *self,
    const struct sockaddr_storage *peer)
{
	const struct sockaddr_in6 *p6 = (const void *)peer;
	struct sockdiag_sock	 s;
	unsigned char		 src[16], dst[16];
	uint16_t		 sport, dport;
	int			 family = peer->ss_family;

	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&p6->sin6_addr))
		family = AF_INET;
	conn_side(peer, family, &sport, src);
	conn_side(self, family, &dport, dst);
	if (sockdiag_find(family, IPPROTO_TCP, src, sport, dst, dport, &s) ==
	    -1)
		return (-1);
	return ((long)s.uid);
}

/* Did fd come over a unix socket? */
int
conn_local(int fd)
{
	struct sockaddr_storage	self;
	socklen_t		len = sizeof self;

	return (getsockname(fd, (struct sockaddr *)&self, &len) == 0 &&
	    self.ss_family == AF_UNIX);
}

/*
 * The uid on the other end of fd, or -1 if it cannot be told:
 * SO_PEERCRED on a unix socket; on loopback TCP, the owner of the peer's
 * socket in the kernel's tables. A netlink round trip, so the carriers ask
 * only when a request needs it, once per connection.
 */
long
conn_peer_uid(int fd)
{
	struct sockaddr_storage	self, peer;
	struct ucred		cred;
	socklen_t		len = sizeof self;

	if (getsockname(fd, (struct sockaddr *)&self, &len) == -1)
		return (-1);
	if (self.ss_family == AF_UNIX) {
		len = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
			return ((long)cred.uid);
		return (-1);
	}
	len = sizeof peer;
	if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
	    conn_loopback(&peer))
		return (conn_tcp_uid(&self, &peer));
	return (-1);
}
