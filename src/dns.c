/*
 * dns.c: berthd's DNS interface, the zone berth. over UDP, with
 * libevent's evdns server: by default on the address and port of the
 * first TCP listener (dig @127.0.0.1 -p 62893 api.berth SRV), or --dns.
 *
 * Each question is answered from the leases and the cluster's view as
 * they are (dns-answer.c): nothing is cached and nothing waits, so a
 * lease that ends is gone from the next answer. Only while a turn's
 * transaction is open is a question held until the commit, as an HTTP
 * read is: memory may hold a change that does not commit. evdns parses
 * and writes the messages; the answer is planned to fit in 512 bytes
 * (dnsrr.c), with TC set when it is cut. There is no DNS over TCP: the
 * TCP port is HTTP's.
 */
#include "config.h"

#include <sys/socket.h>
#include <linux/filter.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>

#include "berthd.h"

#define DNS_CLASS_IN	1
#define DNS_CLASS_ANY	255
#define DNS_FLAG_TC	0x0200

struct dns {
	struct server		*srv;
	struct evdns_server_port *port;
	int			 fd;
	struct addr		 addr;		/* bound */
	struct evdns_server_request **held;	/* until the commit */
	size_t			 nheld;
	size_t			 capheld;
	struct dns_stats	 stats;
};

const char *const dns_qtype_names[DNS_NQTYPES] = {
	"A", "AAAA", "SRV", "TXT", "SOA", "ANY", "other"
};
const char *const dns_rcode_names[DNS_NRCODES] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"
};

static enum dns_qtype
dns_qtype_of(int type)
{
	switch (type) {
	case DNS_T_A:
		return (DNS_Q_A);
	case DNS_T_AAAA:
		return (DNS_Q_AAAA);
	case DNS_T_SRV:
		return (DNS_Q_SRV);
	case DNS_T_TXT:
		return (DNS_Q_TXT);
	case DNS_T_SOA:
		return (DNS_Q_SOA);
	case DNS_T_ANY:
		return (DNS_Q_ANY);
	default:
		return (DNS_Q_OTHER);
	}
}

/* The records of the answer that fit, handed to evdns; TC if cut. */
static int
dns_fill(struct evdns_server_request *req, struct dnsmsg *m, const char *qname)
{
	size_t	i;
	int	tc;

	tc = dnsmsg_fit(m, qname, DNS_UDP_MAX);
	for (i = 0; i < m->n; i++) {
		const struct dnsmsg_rr *rr = &m->rr[i];

		if (rr->fits && evdns_server_request_add_reply(req, rr->section,
		    rr->owner, rr->type, DNS_CLASS_IN, (int)rr->ttl,
		    (int)rr->len, rr->is_name, (const char *)rr->data) == -1)
			return (-1);
	}
	return (tc);
}

/*
 * Answer one request now. A name evdns would not write back as it came
 * (see dnsname_writable) gets no answer at all: any answer to it would
 * be a broken message.
 */
static void
dns_respond(struct dns *d, struct evdns_server_request *req)
{
	static struct dnsmsg	 m;	/* 50 KB: not on the stack */
	struct evdns_server_question *q = NULL;
	struct dnsname		 dn;
	enum dns_qtype		 qt = DNS_Q_OTHER;
	int			 rcode, tc = 0, flags;

	dnsmsg_init(&m);
	if (req->nquestions == 1)
		q = req->questions[0];
	if (q != NULL && !dnsname_writable(q->name)) {
		d->stats.dropped++;
		evdns_server_request_drop(req);
		return;
	}
	if (q == NULL)
		rcode = DNS_ERR_FORMAT;
	else {
		qt = dns_qtype_of(q->type);
		dnsname_parse(q->name, &dn);
		if (dn.kind == DNSN_OUTSIDE || (q->dns_question_class !=
		    DNS_CLASS_IN && q->dns_question_class != DNS_CLASS_ANY))
			rcode = DNS_ERR_REFUSED;
		else if ((rcode = dns_answer(d->srv, &dn, q->name,
		    (uint16_t)q->type, &m)) != DNS_ERR_SERVERFAILED &&
		    (tc = dns_fill(req, &m, q->name)) == -1)
			rcode = DNS_ERR_SERVERFAILED;
	}
	/* Authoritative for berth., never recursive; RD as asked. */
	flags = req->flags & EVDNS_FLAGS_RD;
	if (rcode != DNS_ERR_REFUSED && rcode != DNS_ERR_FORMAT)
		flags |= EVDNS_FLAGS_AA;
	if (tc == 1) {
		flags |= DNS_FLAG_TC;
		d->stats.truncated++;
	}
	evdns_server_request_set_flags(req, flags);
	d->stats.queries[qt][rcode]++;
	if (evdns_server_request_respond(req, rcode) < 0) {
		/* Not sent (no memory, the socket's buffer is full, or a
		 * question evdns cannot write back): not freed either. */
		d->stats.dropped++;
		evdns_server_request_drop(req);
	}
}

/* Hold req for the commit; if that cannot be, answer it now. */
static void
dns_hold(struct dns *d, struct evdns_server_request *req)
{
	struct evdns_server_request **v;
	size_t	cap;

	if (d->nheld == d->capheld) {
		cap = d->capheld == 0 ? 16 : d->capheld * 2;
		if ((v = reallocarray(d->held, cap, sizeof *v)) == NULL) {
			dns_respond(d, req);
			return;
		}
		d->held = v;
		d->capheld = cap;
	}
	d->held[d->nheld++] = req;
}

static void
dns_request(struct evdns_server_request *req, void *arg)
{
	struct dns	*d = arg;

	if (broker_in_txn(d->srv->broker))
		dns_hold(d, req);
	else
		dns_respond(d, req);
}

/* After the turn's commit (or its rollback): the held questions. */
void
dns_committed(void *arg, int ok)
{
	struct dns	*d = arg;
	size_t		 i, n = d->nheld;

	(void)ok;	/* after a rollback, memory is the store's again */
	d->nheld = 0;
	for (i = 0; i < n; i++)
		dns_respond(d, d->held[i]);
}

/* evdns's own complaints (a failed read or write), at debug level. */
static void
dns_log(int warn, const char *msg)
{
	(void)warn;
	log_debug("dns: %s", msg);
}

/* The address DNS is answered on: --dns, or the first TCP listener's. */
static int
dns_where(struct server *srv, struct addr *a)
{
	size_t	i;

	if (srv->cfg->dns_mode == CONFIG_DNS_ADDR) {
		*a = srv->cfg->dns;
		return (0);
	}
	for (i = 0; i < srv->nlisteners; i++) {
		if (srv->bound[i].family != AF_UNIX) {
			*a = srv->bound[i];
			return (0);
		}
	}
	return (-1);
}

/*
 * A filter on the socket, in the kernel, for what evdns 2.1 gets wrong
 * before it reaches berthd's code: a datagram shorter than a DNS header
 * makes it dereference NULL (any local user could stop berthd with an
 * empty datagram); it clears the opcode before it checks it, so an
 * UPDATE or NOTIFY would be answered as a query; and its FORMERR to a
 * message of several questions echoes them all, cut mid-record at 512
 * bytes. Such datagrams, answers (QR set) and messages with no question
 * or several are dropped unanswered. The filter sees the UDP header (8
 * bytes) before the message.
 */
static int
dns_filter(int fd)
{
	static struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 8 + 12, 0, 5),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8 + 2),	/* QR, opcode */
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf8),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 8 + 4),	/* QDCOUNT */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, 0),			/* drop */
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff)		/* take */
	};
	struct sock_fprog prog = { sizeof code / sizeof code[0], code };

	return (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
	    sizeof prog));
}

static int
dns_socket(const struct addr *a, char *err, size_t errlen)
{
	int	fd, one = 1;

	if ((fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		snprintf(err, errlen, "udp %s: %s", a->text, strerror(errno));
		return (-1);
	}
	if (a->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (dns_filter(fd) == -1) {
		snprintf(err, errlen, "udp %s: cannot attach the socket filter "
		    "that keeps malformed datagrams from evdns: %s", a->text,
		    strerror(errno));
		close(fd);
		return (-1);
	}
	if (bind(fd, (const struct sockaddr *)&a->ss, a->sslen) == -1) {
		snprintf(err, errlen, "udp %s: %s%s", a->text, strerror(errno),
		    errno == EADDRINUSE ? " (give --dns ADDR to move DNS "
		    "elsewhere, or --dns off)" : "");
		close(fd);
		return (-1);
	}
	return (fd);
}

/*
 * Start answering DNS, unless --dns off (or berthd listens on unix
 * sockets only and no --dns was given): 0 with *dp set or NULL; -1
 * with a line in err.
 */
int
dns_open(struct server *srv, struct dns **dp, char *err, size_t errlen)
{
	struct dns	*d;
	struct addr	 a;

	*dp = NULL;
	if (srv->cfg->dns_mode == CONFIG_DNS_OFF)
		return (0);
	if (dns_where(srv, &a) == -1) {
		log_info("dns: off: no TCP listen address (give --dns ADDR)");
		return (0);
	}
	if ((d = calloc(1, sizeof *d)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	d->srv = srv;
	if ((d->fd = dns_socket(&a, err, errlen)) == -1) {
		free(d);
		return (-1);
	}
	listen_record(&d->addr, &a, d->fd);
	evdns_set_log_fn(dns_log);
	if ((d->port = evdns_add_server_port_with_base(srv->base, d->fd, 0,
	    dns_request, d)) == NULL) {
		snprintf(err, errlen, "udp %s: cannot start evdns", a.text);
		close(d->fd);
		free(d);
		return (-1);
	}
	log_info("answering DNS for berth. on udp %s", d->addr.text);
	*dp = d;
	return (0);
}

/* Stop taking questions (berthd is stopping); held ones are answered. */
void
dns_stop(struct dns *d)
{
	if (d == NULL || d->port == NULL)
		return;
	dns_committed(d, 1);
	evdns_close_server_port(d->port);	/* and, once done, the socket */
	d->port = NULL;
	d->fd = -1;
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	dns_stop(d);
	free(d->held);
	free(d);
}

const char *
dns_address(const struct dns *d)
{
	return (d->addr.text);
}

const struct dns_stats *
dns_stats(const struct dns *d)
{
	return (&d->stats);
}
