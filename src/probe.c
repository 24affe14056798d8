/*
 * probe.c: is a port free on this host right now (docs/api.md, POST
 * /v1/services)?
 *
 * Ports of berthd's own pool are test-bound: a port is free when we can
 * bind it on the wildcard address, IPv4 and (where the host has it) IPv6,
 * for each protocol the lease asks for. SO_REUSEADDR is set as servers
 * set it, so a port left only in TIME_WAIT counts as free.
 *
 * Any other port (a client named it) is never bound: a test bind holds
 * the port for a moment, and a real service binding it then fails
 * (berthd as root would do so on port 80 for any client). Its fate is
 * read from the kernel's socket tables instead: it is in use when a TCP
 * socket listens on it, or a UDP socket is bound to it, on any address.
 * The tables come from sockdiag.c: berthd's network namespace.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define PROBE_SAY_MS		60000	/* how often to say the tables failed */

static int		 probe_ipv6 = -1;
static const struct pool *probe_pool;

/* Find out once whether this host can bind IPv6 sockets at all. */
void
probe_init(void)
{
	struct sockaddr_in6	sin6;
	int			fd;

	probe_ipv6 = 0;
	if ((fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	if (bind(fd, (struct sockaddr *)&sin6, sizeof sin6) == 0)
		probe_ipv6 = 1;
	close(fd);
}

int
probe_have_ipv6(void)
{
	if (probe_ipv6 == -1)
		probe_init();
	return (probe_ipv6);
}

/* The pool whose ports may be test-bound; NULL: none, every port is read. */
void
probe_set_pool(const struct pool *p)
{
	probe_pool = p;
}

static int
probe_bind(int family, int type, uint16_t port)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	int			 fd, one = 1, zero = 0, ok;

	if ((fd = socket(family, type | SOCK_CLOEXEC, 0)) == -1)
		return (0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons(port);
		len = sizeof *sin;
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(port);
		len = sizeof *sin6;
	}
	ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
	/* A TCP port only in use by a listener bound later still conflicts. */
	if (ok && type == SOCK_STREAM)
		ok = listen(fd, 1) == 0;
	close(fd);
	return (ok);
}

/*
 * The test bind. Where the host has IPv6, one dual-stack socket ([::]
 * without IPV6_V6ONLY) conflicts with holders on IPv4 and IPv6 alike, so
 * one bind per protocol answers for both families.
 */
static int
probe_bind_port(uint16_t port, int proto)
{
	int	family = probe_have_ipv6() ? AF_INET6 : AF_INET;

	if ((proto & PROTO_TCP) && !probe_bind(family, SOCK_STREAM, port))
		return (0);
	if ((proto & PROTO_UDP) && !probe_bind(family, SOCK_DGRAM, port))
		return (0);
	return (1);
}

static int
probe_found(const struct sockdiag_sock *s, void *arg)
{
	(void)s;
	*(int *)arg = 1;
	return (1);
}

/*
 * In use on one protocol, IPv4 and IPv6: a TCP listener, or a UDP socket
 * bound to the port. 1, 0, or -1 (the tables could not be read).
 */
static int
probe_table(int protocol, uint16_t port)
{
	uint32_t	states = protocol == IPPROTO_TCP ?
			    1U << SOCKDIAG_TCP_LISTEN : ~0U;
	int		found = 0;

	if (sockdiag_walk(protocol, states, port, probe_found, &found) == -1)
		return (-1);
	return (found);
}

/*
 * Is port free for proto (PROTO_*) by the socket tables? 1 free, 0 in
 * use, -1 the tables could not be read.
 */
static int
probe_tables(uint16_t port, int proto)
{
	int	rc;

	if ((proto & PROTO_TCP) && (rc = probe_table(IPPROTO_TCP, port)) != 0)
		return (rc == 1 ? 0 : -1);
	if ((proto & PROTO_UDP) && (rc = probe_table(IPPROTO_UDP, port)) != 0)
		return (rc == 1 ? 0 : -1);
	return (1);
}

/*
 * 1 if port is free for proto (PROTO_*) right now, 0 if something holds
 * it: a pool port by the test bind, any other by the socket tables (and,
 * should neither netlink nor /proc answer, by the test bind after all,
 * which is said now and then).
 */
int
probe_port(uint16_t port, int proto)
{
	static struct log_every	said;
	uint64_t		quiet;
	int			rc;

	if (probe_pool != NULL && pool_contains(probe_pool, port))
		return (probe_bind_port(port, proto));
	if ((rc = probe_tables(port, proto)) != -1)
		return (rc);
	if (log_every(&said, PROBE_SAY_MS, &quiet))
		log_warn("probe: cannot read the kernel's socket tables "
		    "(sock_diag or /proc/net) for port %u; test-binding it "
		    "instead (%llu more since last said)", port,
		    (unsigned long long)quiet);
	return (probe_bind_port(port, proto));
}
