/*
 * dns-answer.c: which records answer a DNS question (dns.c asks), from
 * the broker's live leases and the cluster's view, as they are now.
 *
 *   NAME.berth            A or AAAA of the lease's host (a CNAME when
 *                         the host is a DNS name), SRV 0 0 PORT
 *                         NAME.berth., TXT key=value per meta entry
 *   _NAME._tcp.berth      SRV, when the lease's proto has tcp (udp)
 *   NAME.cluster.berth    every instance: A/AAAA, SRV to NODE.node.berth.
 *   NODE.node.berth       the node's address
 *   HEX.addr.berth        the address in hex: an instance's SRV target
 *                         when its host is not its node's address
 *   berth                 SOA
 *
 * Local answers have TTL 0: a lease may end the next moment and the
 * next question must not be answered from a cache. Cluster answers, 5 s:
 * the view itself lags etcd by about that. A lease is answered whether
 * or not its service is ready yet, as a lookup without ?ready=1 is.
 * Every "no such name" and "no such record" carries the zone's SOA,
 * whose minimum (the negative TTL) is 0.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/dns.h>

#include "berthd.h"
#include "cluster.h"

#define DNS_TTL_LOCAL	0
#define DNS_TTL_CLUSTER	5

struct dns_q {
	struct server	*srv;
	const char	*qname;		/* as asked: owner of the answers */
	uint16_t	 qtype;
	uint32_t	 ttl;
	struct dnsmsg	*m;
	size_t		 answers;
	int		 cname_ok;	/* not for a cluster name */
	struct clusterview *cv;		/* cluster names */
};

static int
dns_wants(const struct dns_q *q, uint16_t type)
{
	return (q->qtype == type || q->qtype == DNS_T_ANY);
}

/* A record, unless the message has it (an ANY's address, as glue). */
static void
dns_add(struct dns_q *q, int section, const char *owner, uint16_t type,
    int is_name, const void *data, size_t len)
{
	if (dnsmsg_has(q->m, section, owner, type, data, len) ||
	    (section == DNS_SEC_ADDITIONAL && dnsmsg_has(q->m,
	    DNS_SEC_ANSWER, owner, type, data, len)))
		return;
	if (dnsmsg_add(q->m, section, owner, type, q->ttl, is_name, data,
	    len) == 0 && section == DNS_SEC_ANSWER)
		q->answers++;
}

/*
 * owner's address record for host, in section: A or AAAA for a literal
 * (if the question wants that type), or in the answer to an A or AAAA
 * question, a CNAME to a host that is a DNS name (not for a cluster
 * name: an owner has one CNAME at most, and an instance's host is a
 * node's, which NODE.node.berth answers).
 */
static void
dns_add_host(struct dns_q *q, int section, const char *owner, const char *host)
{
	unsigned char	addr[16];
	uint16_t	type;
	int		len;

	/* localhost is the loopback address (RFC 6761), not a name to chase */
	if (strcasecmp(host, "localhost") == 0) {
		dns_add_host(q, section, owner, "127.0.0.1");
		dns_add_host(q, section, owner, "::1");
		return;
	}
	if ((len = dnsrr_addr(host, addr, &type)) > 0) {
		if (section != DNS_SEC_ANSWER || dns_wants(q, type))
			dns_add(q, section, owner, type, 0, addr, (size_t)len);
	} else if (section == DNS_SEC_ANSWER && q->cname_ok &&
	    (q->qtype == DNS_T_A || q->qtype == DNS_T_AAAA))
		dns_add(q, section, owner, DNS_T_CNAME, 1, host, strlen(host));
}

/* SRV 0 0 port target, and target's address beside it. */
static void
dns_add_srv(struct dns_q *q, uint16_t port, const char *target,
    const char *host)
{
	unsigned char	rd[DNS_UDP_MAX];
	int		len;

	if ((len = dnsrr_srv(rd, sizeof rd, 0, 0, port, target)) == -1)
		return;
	dns_add(q, DNS_SEC_ANSWER, q->qname, DNS_T_SRV, 0, rd, (size_t)len);
	if (strcmp(target, host) != 0)
		dns_add_host(q, DNS_SEC_ADDITIONAL, target, host);
}

/* A TXT record per meta entry, in the order the meta was given. */
static void
dns_add_meta(struct dns_q *q, const char *meta)
{
	unsigned char	 rd[DNS_UDP_MAX];
	const char	*k;
	json_t		*o, *v;
	int		 len;

	if (meta == NULL || (o = json_loads(meta, 0, NULL)) ==
	    NULL)
		return;
	json_object_foreach(o, k, v) {
		if (!json_is_string(v))
			continue;
		/* One longer than a message can hold is left out, as cut. */
		if ((len = dnsrr_txt(rd, sizeof rd, k, json_string_value(v))) ==
		    -1)
			q->m->full = 1;
		else
			dns_add(q, DNS_SEC_ANSWER, q->qname, DNS_T_TXT, 0, rd,
			    (size_t)len);
	}
	json_decref(o);
}

/* NAME.berth and _NAME._tcp|_udp.berth: NXDOMAIN without such a lease. */
static int
dns_local(struct dns_q *q, const struct dnsname *dn)
{
	struct lease	*l = broker_lookup(q->srv->broker, dn->name);
	const char	*host;
	char		 target[BERTH_HOST_MAX + 1];	/* NAME.berth or host */
	unsigned char	 addr[16];
	uint16_t	 type;

	if (l == NULL || (dn->kind == DNSN_SRV && !(l->proto & dn->proto)))
		return (DNS_ERR_NOTEXIST);
	host = l->host != NULL ? l->host : BERTH_DEFAULT_HOST;
	/* SRV's target may not be an alias (RFC 2782): a host name as is. */
	if (dnsrr_addr(host, addr, &type) > 0 || strcasecmp(host,
	    "localhost") == 0)
		snprintf(target, sizeof target, "%s.berth", l->name);
	else
		snprintf(target, sizeof target, "%s", host);
	if (dn->kind == DNSN_LOCAL) {
		dns_add_host(q, DNS_SEC_ANSWER, q->qname, host);
		if (dns_wants(q, DNS_T_TXT))
			dns_add_meta(q, l->meta);
	}
	if (dns_wants(q, DNS_T_SRV))
		dns_add_srv(q, l->port, target, host);
	return (DNS_ERR_NONE);
}

/*
 * An instance's SRV target: NODE.node.berth when its host is its node's
 * address (as publishing makes it unless the lease named a host), else
 * (or while the view has no record of the node) a name that stands for
 * the host: HEX.addr.berth for an address, the host itself for a name.
 */
static void
dns_cluster_target(struct dns_q *q, const char *node, const char *host,
    char *target, size_t len)
{
	const char	*addr = clusterview_node_address(q->cv, node);

	if (addr != NULL && strcmp(addr, host) == 0)
		snprintf(target, len, "%s.node.berth", node);
	else if (dnsname_of_addr(host, target, len) == -1)
		snprintf(target, len, "%s", host);
}

static void
dns_cluster_one(const char *node, const char *host, uint16_t port, void *arg)
{
	struct dns_q	*q = arg;
	char		 target[BERTH_HOST_MAX + 1];

	if (dns_wants(q, DNS_T_A) || dns_wants(q, DNS_T_AAAA))
		dns_add_host(q, DNS_SEC_ANSWER, q->qname, host);
	if (dns_wants(q, DNS_T_SRV)) {
		dns_cluster_target(q, node, host, target, sizeof target);
		dns_add_srv(q, port, target, host);
	}
}

/* NAME.cluster.berth and NODE.node.berth, from the view. */
static int
dns_cluster(struct dns_q *q, const struct dnsname *dn)
{
	struct clusterview *cv;
	const char	*addr;

	if (q->srv->cluster == NULL)
		return (DNS_ERR_NOTEXIST);
	cv = q->cv = cluster_view(q->srv->cluster);
	q->ttl = DNS_TTL_CLUSTER;
	if (dn->kind == DNSN_NODE) {
		if ((addr = clusterview_node_address(cv, dn->name)) == NULL)
			return (DNS_ERR_NOTEXIST);
		dns_add_host(q, DNS_SEC_ANSWER, q->qname, addr);
		return (DNS_ERR_NONE);
	}
	q->cname_ok = 0;
	if (clusterview_foreach_instance(cv, dn->name, dns_cluster_one, q) ==
	    0)
		return (DNS_ERR_NOTEXIST);
	return (DNS_ERR_NONE);
}

/* The zone's SOA, as an answer or beside a negative one. */
static void
dns_add_soa(struct dns_q *q, int section)
{
	unsigned char	rd[DNS_UDP_MAX];
	int		len;

	q->ttl = DNS_TTL_LOCAL;
	if ((len = dnsrr_soa(rd, sizeof rd, (uint32_t)broker_index(
	    q->srv->broker))) != -1)
		dns_add(q, section, section == DNS_SEC_ANSWER ? q->qname :
		    "berth", DNS_T_SOA, 0, rd, (size_t)len);
}

/*
 * Fill m with the answer to (qname, qtype), a name of the zone as
 * dnsname_parse read it; the response code.
 */
int
dns_answer(struct server *srv, const struct dnsname *dn, const char *qname,
    uint16_t qtype, struct dnsmsg *m)
{
	struct dns_q	q = { srv, qname, qtype, DNS_TTL_LOCAL, m, 0, 1, NULL };
	int		rcode;

	switch (dn->kind) {
	case DNSN_LOCAL:
	case DNSN_SRV:
		rcode = dns_local(&q, dn);
		break;
	case DNSN_CLUSTER:
	case DNSN_NODE:
		rcode = dns_cluster(&q, dn);
		break;
	case DNSN_ADDR:
		/* the address the name spells, for as long as asked */
		q.ttl = DNS_TTL_CLUSTER;
		rcode = DNS_ERR_NONE;
		if (dns_wants(&q, dn->addrlen == 4 ? DNS_T_A : DNS_T_AAAA))
			dns_add(&q, DNS_SEC_ANSWER, qname, dn->addrlen == 4 ?
			    DNS_T_A : DNS_T_AAAA, 0, dn->addr,
			    (size_t)dn->addrlen);
		break;
	case DNSN_APEX:
		rcode = DNS_ERR_NONE;
		if (dns_wants(&q, DNS_T_SOA))
			dns_add_soa(&q, DNS_SEC_ANSWER);
		break;
	case DNSN_EMPTY:
		/* cluster.berth and node.berth hold names, not records */
		rcode = srv->cluster != NULL ? DNS_ERR_NONE : DNS_ERR_NOTEXIST;
		break;
	default:
		rcode = DNS_ERR_NOTEXIST;
		break;
	}
	if (q.answers == 0 && !m->full)
		dns_add_soa(&q, DNS_SEC_AUTHORITY);
	return (rcode);
}
