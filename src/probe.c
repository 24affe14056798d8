/*
 * probe.c: the test bind before a port is granted (docs/api.md, POST
 * /v1/services). A port is free when we can bind it on the wildcard
 * address, IPv4 and (where the host has it) IPv6, for each
 * protocol the lease asks for. SO_REUSEADDR is set as servers set it, so a
 * port left only in TIME_WAIT counts as free.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

static int	probe_ipv6 = -1;

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
 * 1 if port is free for proto (PROTO_*) right now, 0 if something holds
 * it. Where the host has IPv6, one dual-stack socket ([::] without
 * IPV6_V6ONLY) conflicts with holders on IPv4 and IPv6 alike, so one bind
 * per protocol answers for both families.
 */
int
probe_port(uint16_t port, int proto)
{
	int	family = probe_have_ipv6() ? AF_INET6 : AF_INET;

	if ((proto & PROTO_TCP) && !probe_bind(family, SOCK_STREAM, port))
		return (0);
	if ((proto & PROTO_UDP) && !probe_bind(family, SOCK_DGRAM, port))
		return (0);
	return (1);
}
