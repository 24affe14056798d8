/*
 * ready.c: is each lease's service there (docs/api.md, "ready"): a TCP
 * socket listening on its port, or a UDP socket bound to it, at the
 * lease's host or a wildcard address; for proto both, both.
 *
 * The kernel's socket tables say it (sockdiag.c). ready_pass reads them
 * whole, one walk per protocol whatever the number of leases, and looks
 * each socket's port up in the registry: O(sockets + leases), run once a
 * second by the event layer while there are leases, never per request.
 * ready_check asks about one lease's port only (the kernel filters), for
 * a renewal, so that a service that has just started listening shows
 * ready at once (berth run --fd renews right after its bind).
 *
 * Which sockets serve a host: one on the host's own address, or on the
 * wildcard of its family. A socket on :: counts for an IPv4 host too:
 * Linux makes it dual-stack unless it sets IPV6_V6ONLY, which the tables
 * do not show. An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4
 * address. "localhost" is served on 127.0.0.1 or ::1. Which hosts berthd
 * can tell about: loopback addresses, "localhost", the wildcards and the
 * addresses of this host's interfaces (read with getifaddrs when a
 * lease's host needs them, at most once a second). Any other host, a
 * name or an address elsewhere, is LEASE_READY_UNKNOWN: the API's null.
 *
 * A change goes through broker_set_ready, which moves the index in the
 * turn's transaction; if the store refuses, the lease keeps its old value
 * and the next pass tries again.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"

#define READY_SAY_MS	60000	/* how often to say the tables failed */
#define READY_IFS_MS	1000	/* interfaces are read at most this often */

/* An address of one of this host's interfaces. */
struct ready_ifaddr {
	int		 family;
	unsigned char	 addr[16];
};

struct ready {
	struct broker		*b;
	ready_changed_fn	 changed;
	void			*arg;
	struct lease		*only;		/* ready_check's, or NULL */
	uint8_t			 seen[65536];	/* per port: PROTO_* served */
	struct ready_ifaddr	*ifs;
	size_t			 nifs;
	uint64_t		 ifs_at;	/* ms, when read (0: never) */
	struct log_every	 said;
};

static const unsigned char ready_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

struct ready *
ready_new(struct broker *b, ready_changed_fn changed, void *arg)
{
	struct ready	*r;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return (NULL);
	r->b = b;
	r->changed = changed;
	r->arg = arg;
	return (r);
}

void
ready_free(struct ready *r)
{
	if (r == NULL)
		return;
	free(r->ifs);
	free(r);
}

/* What kind of address host is; an IPv4-mapped IPv6 one is IPv4. */
void
ready_parse_host(const char *host, struct ready_host *h)
{
	static const unsigned char zero[16];

	memset(h, 0, sizeof *h);
	h->kind = READY_HOST_NAME;
	if (host == NULL)
		host = BERTH_DEFAULT_HOST;
	if (inet_pton(AF_INET, host, h->addr) == 1)
		h->kind = READY_HOST_V4;
	else if (inet_pton(AF_INET6, host, h->addr) == 1) {
		h->kind = READY_HOST_V6;
		if (memcmp(h->addr, ready_v4mapped, 12) == 0) {
			memmove(h->addr, h->addr + 12, 4);
			memset(h->addr + 4, 0, 12);
			h->kind = READY_HOST_V4;
		}
	} else if (strcasecmp(host, "localhost") == 0)
		h->kind = READY_HOST_LOCALHOST;
	if ((h->kind == READY_HOST_V4 && memcmp(h->addr, zero, 4) == 0) ||
	    (h->kind == READY_HOST_V6 && memcmp(h->addr, zero, 16) == 0))
		h->kind = READY_HOST_ANY;
}

/*
 * Does a socket bound to addr (of family) take the connections that
 * clients of host h make? See the head comment.
 */
int
ready_serves(const struct ready_host *h, int family, const unsigned char *addr)
{
	static const unsigned char	zero[16];
	static const unsigned char	lo4[4] = { 127, 0, 0, 1 };
	unsigned char			a[16];
	int				any4, any6, v4;

	memset(a, 0, sizeof a);
	v4 = family == AF_INET;
	if (v4)
		memcpy(a, addr, 4);
	else if (family == AF_INET6 && memcmp(addr, ready_v4mapped, 12) == 0) {
		memcpy(a, addr + 12, 4);
		v4 = 1;
	} else if (family == AF_INET6)
		memcpy(a, addr, 16);
	else
		return (0);
	any4 = v4 && memcmp(a, zero, 4) == 0;
	any6 = !v4 && memcmp(a, zero, 16) == 0;
	switch (h->kind) {
	case READY_HOST_ANY:
		return (1);
	case READY_HOST_LOCALHOST:
		return (any4 || any6 || (v4 && memcmp(a, lo4, 4) == 0) ||
		    (!v4 && memcmp(a, in6addr_loopback.s6_addr, 16) == 0));
	case READY_HOST_V4:
		return (any4 || any6 || (v4 && memcmp(a, h->addr, 4) == 0));
	case READY_HOST_V6:
		return (any6 || (!v4 && memcmp(a, h->addr, 16) == 0));
	default:
		return (0);
	}
}

/* Read this host's interface addresses again; the old ones if that fails. */
static void
ready_read_ifaddrs(struct ready *r)
{
	struct ifaddrs		*all, *i;
	struct ready_ifaddr	*v;
	size_t			 n = 0;

	r->ifs_at = clock_now_ms();
	if (getifaddrs(&all) == -1) {
		log_warn("ready: getifaddrs");
		return;
	}
	for (i = all; i != NULL; i = i->ifa_next)
		n++;
	if ((v = calloc(n + 1, sizeof *v)) == NULL) {
		freeifaddrs(all);
		return;
	}
	n = 0;
	for (i = all; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			memcpy(v[n].addr, &((struct sockaddr_in *)(void *)
			    i->ifa_addr)->sin_addr, 4);
		else if (i->ifa_addr->sa_family == AF_INET6)
			memcpy(v[n].addr, &((struct sockaddr_in6 *)(void *)
			    i->ifa_addr)->sin6_addr, 16);
		else
			continue;
		v[n++].family = i->ifa_addr->sa_family;
	}
	freeifaddrs(all);
	free(r->ifs);
	r->ifs = v;
	r->nifs = n;
}

/* Can berthd tell about services at h: is h an address of this host? */
static int
ready_local(struct ready *r, const struct ready_host *h)
{
	uint64_t	now;
	size_t		i;
	int		family;

	switch (h->kind) {
	case READY_HOST_LOCALHOST:
	case READY_HOST_ANY:
		return (1);
	case READY_HOST_V4:
		if (h->addr[0] == 127)
			return (1);
		family = AF_INET;
		break;
	case READY_HOST_V6:
		if (memcmp(h->addr, in6addr_loopback.s6_addr, 16) == 0)
			return (1);
		family = AF_INET6;
		break;
	default:
		return (0);
	}
	now = clock_now_ms();
	if (r->ifs_at == 0 || now < r->ifs_at ||
	    now - r->ifs_at >= READY_IFS_MS)
		ready_read_ifaddrs(r);
	for (i = 0; i < r->nifs; i++) {
		if (r->ifs[i].family == family && memcmp(r->ifs[i].addr,
		    h->addr, family == AF_INET ? 4 : 16) == 0)
			return (1);
	}
	return (0);
}

/* sockdiag_walk's callback: does this socket serve the lease of its port? */
static int
ready_saw(const struct sockdiag_sock *s, void *arg)
{
	struct ready		*r = arg;
	const struct lease	*l;
	struct ready_host	 h;
	int			 proto;

	proto = s->protocol == IPPROTO_TCP ? PROTO_TCP : PROTO_UDP;
	l = registry_by_port(broker_registry(r->b), s->port);
	if (l == NULL || (r->only != NULL && l != r->only) ||
	    !(l->proto & proto) || (r->seen[s->port] & proto))
		return (0);
	ready_parse_host(l->host, &h);
	if (ready_serves(&h, s->family, s->addr))
		r->seen[s->port] |= proto;
	return (0);
}

/*
 * Walk the tables of protos (PROTO_* bits), on port only (0: all) into
 * r->seen; returns the protocols whose table could not be read.
 */
static int
ready_walk(struct ready *r, int protos, uint16_t port)
{
	uint64_t	quiet;
	int		failed = 0;

	if ((protos & PROTO_TCP) && sockdiag_walk(IPPROTO_TCP,
	    1U << SOCKDIAG_TCP_LISTEN, port, ready_saw, r) == -1)
		failed |= PROTO_TCP;
	/* A UDP socket is unconnected or connected: either is bound. */
	if ((protos & PROTO_UDP) && sockdiag_walk(IPPROTO_UDP, ~0U, port,
	    ready_saw, r) == -1)
		failed |= PROTO_UDP;
	if (failed && log_every(&r->said, READY_SAY_MS, &quiet))
		log_warnx("ready: cannot read the kernel's %s socket table; "
		    "readiness shows as null (said %llu more times)",
		    failed == PROTO_UDP ? "UDP" : "TCP",
		    (unsigned long long)quiet);
	return (failed);
}

/* What r->seen says of l, when the tables of failed could not be read. */
static enum lease_ready
ready_of(struct ready *r, const struct lease *l, int failed)
{
	struct ready_host	h;

	ready_parse_host(l->host, &h);
	if (!ready_local(r, &h) || (l->proto & failed))
		return (LEASE_READY_UNKNOWN);
	if ((r->seen[l->port] & l->proto) == l->proto)
		return (LEASE_READY);
	return (LEASE_NOT_READY);
}

/* Record l's readiness; 1 if it changed. */
static int
ready_set(struct ready *r, struct lease *l, enum lease_ready ready)
{
	static const char *const says[] = { "nothing listens on its port",
	    "ready", "readiness unknown (not a local host)" };

	if (l->ready == ready || broker_set_ready(r->b, l, ready) == -1)
		return (0);
	log_debug("lease %s: %s", l->name, says[ready]);
	if (r->changed != NULL)
		r->changed(l, r->arg);
	return (1);
}

/*
 * Every live lease against one read of the socket tables. Returns how
 * many changed.
 */
int
ready_pass(struct ready *r)
{
	struct lease	*l;
	uint64_t	 now = clock_now_ms();
	int		 failed, n = 0;

	if (broker_live_count(r->b) == 0)
		return (0);
	memset(r->seen, 0, sizeof r->seen);
	r->only = NULL;
	failed = ready_walk(r, PROTO_BOTH, 0);
	for (l = broker_first(r->b); l != NULL; l = broker_next(l)) {
		if (!lease_expired(l, now))
			n += ready_set(r, l, ready_of(r, l, failed));
	}
	return (n);
}

/*
 * A lease just granted on a pool port, whose test bind has just shown
 * that nothing is there: not ready, or null when its host is not local.
 * Reads no table. 1 if it changed.
 */
int
ready_granted(struct ready *r, struct lease *l)
{
	struct ready_host	h;

	if (r == NULL)
		return (0);
	ready_parse_host(l->host, &h);
	return (ready_set(r, l, ready_local(r, &h) ? LEASE_NOT_READY :
	    LEASE_READY_UNKNOWN));
}

/*
 * One lease, now, on its own port only: for a renewal, so that a service
 * that has just started to listen is ready at once. 1 if it changed.
 */
int
ready_check(struct ready *r, struct lease *l)
{
	struct ready_host	h;
	int			failed = 0;

	if (r == NULL)
		return (0);
	ready_parse_host(l->host, &h);
	if (ready_local(r, &h)) {
		r->seen[l->port] = 0;
		r->only = l;
		failed = ready_walk(r, l->proto, l->port);
		r->only = NULL;
	}
	return (ready_set(r, l, ready_of(r, l, failed)));
}
