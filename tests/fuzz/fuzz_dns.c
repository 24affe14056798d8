/*
 * fuzz_dns.c: libFuzzer harness for berthd's DNS interface (dns.c,
 * dns-answer.c, dnsrr.c) as clients reach it: through libevent's evdns
 * server port, on a UDP socket of 127.0.0.1.
 *
 * An input is one datagram, sent as it is to the DNS port of a berthd
 * set up once: a real broker on an in-memory database holding leases of
 * every kind (IPv4, IPv6 and DNS-name hosts; tcp, udp, both; meta from
 * none to more than a message holds; a 63-character name on a
 * 253-character host; names that look like the zone's other forms), and
 * with --cluster a view of other nodes (records, instances, one name on
 * 40 nodes) whose etcd client is stopped at once. An odd ID makes the
 * question arrive while a turn's transaction is open (a renew), so that
 * it is held until the commit. The loop then runs, without blocking,
 * until the answer is back.
 *
 * From the datagram, read as evdns reads it, and a model of the leases
 * and the view, the harness knows what must come back, and aborts with a
 * line on stderr if:
 *  - a question berthd answers gets no answer; a datagram evdns does not
 *    take as a query, or a question whose name is too long to be written
 *    back, gets one; anything gets two (a name with a label holding a
 *    dot or a NUL, which evdns reads as another name, is checked for
 *    that only);
 *  - the answer is not a valid message of at most 512 bytes: ID, QR, the
 *    opcode, RA, Z and AD clear, RD and CD echoed; each section's count
 *    the records that parse, to the last byte; names of labels of 1-63
 *    bytes, at most 255 in all, pointers only to bytes before any read
 *    so far; each record's data exactly its type's (A, AAAA, CNAME, SRV,
 *    TXT, SOA) within its length;
 *  - the question section is not the question asked, byte for byte;
 *  - an opcode other than QUERY, or a datagram of no question or two
 *    or more, gets an answer (berthd's socket filter drops them); a
 *    question outside berth. or of a class other than IN and ANY is not
 *    REFUSED (without AA, TC or records);
 *  - the rcode, AA, TC or a record is not what the model makes of the
 *    question: its records (owner as asked, class IN, TTL 0, or 5 for the
 *    cluster's names) and no other; TC exactly when an answer record is
 *    missing; the zone's SOA in AUTHORITY exactly when there is no
 *    answer record to give; in ADDITIONAL only records that a question
 *    for their own name would answer.
 * The sanitizers and libFuzzer's leak check run in the same process as
 * evdns and berthd's answer: what would take berthd down, or make it
 * grow, is a finding too, wherever in the path it lies.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "berthd.h"
#include "cluster.h"

#define FZ_PKT_MAX	1500	/* what evdns reads of a datagram */
#define FZ_MSG_MAX	512	/* the most an answer may be */
#define FZ_WIRE_MAX	300	/* a name in wire form, uncompressed */
#define FZ_MAXQ		320	/* 1500 bytes of 5-byte questions */
#define FZ_MAXRR	192
#define FZ_RD_MAX	(BERTH_META_MAX * 2 + 64)
#define FZ_SELF		"self"
#define FZ_ADVERTISE	"192.0.2.10"

#define FZ_SEC_QD	-1
#define FZ_SEC_AN	DNS_SEC_ANSWER
#define FZ_SEC_NS	DNS_SEC_AUTHORITY
#define FZ_SEC_AR	DNS_SEC_ADDITIONAL

#define FZ_NOERROR	0
#define FZ_FORMERR	1
#define FZ_NXDOMAIN	3
#define FZ_NOTIMP	4
#define FZ_REFUSED	5

#define FZ_QR		0x8000
#define FZ_AA		0x0400
#define FZ_TC		0x0200
#define FZ_RD		0x0100
#define FZ_RA		0x0080
#define FZ_Z		0x0040
#define FZ_AD		0x0020
#define FZ_CD		0x0010

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A name in wire form, uncompressed: what is compared. */
struct fz_wname {
	unsigned char	 b[FZ_WIRE_MAX];
	size_t		 len;
};

/* A question of the datagram, as evdns reads it. */
struct fz_q {
	struct fz_wname	 name;
	char		 text[256];	/* evdns's, to the 1st NUL */
	int		 clean;		/* no '.' or NUL in a label */
	uint16_t	 type;
	uint16_t	 cls;
};

struct fz_query {
	int		 taken;		/* a query, to evdns */
	uint16_t	 id;
	uint16_t	 flags;
	size_t		 nq;
	struct fz_q	 q[FZ_MAXQ];
};

/* A record: one of the answer's, or one the model wants. */
struct fz_rr {
	int		 sec;
	struct fz_wname	 owner;
	uint16_t	 type;
	uint16_t	 cls;
	uint32_t	 ttl;
	unsigned char	 rd[FZ_RD_MAX];	/* its names uncompressed */
	size_t		 rdlen;
	int		 seen;
};

struct fz_reply {
	uint16_t	 id;
	uint16_t	 flags;
	uint16_t	 count[4];
	struct fz_q	 q[FZ_MAXQ];
	struct fz_rr	 rr[FZ_MAXRR];
	size_t		 nrr;
};

/* What must come back. */
struct fz_want {
	int		 reply;		/* 1 must, 0 not, -1 may */
	int		 rcode;
	int		 zone;		/* AA, the model's records */
	int		 loose;		/* the name is read as another */
	struct fz_rr	 rr[FZ_MAXRR];
	size_t		 nrr;
};

struct fz_lease {
	char		 name[BERTH_NAME_MAX + 1];
	char		 host[BERTH_HOST_MAX + 1];
	uint16_t	 port;
	int		 proto;
	json_t		*meta;		/* or NULL */
};

struct fz_inst {
	char		 name[BERTH_NAME_MAX + 1];
	char		 node[BERTH_NAME_MAX + 1];
	char		 host[BERTH_HOST_MAX + 1];
	uint16_t	 port;
};

struct fz_node {
	char		 node[BERTH_NAME_MAX + 1];
	char		 address[BERTH_HOST_MAX + 1];
};

static struct {
	int		 ready;
	struct server	 srv;
	struct config	 cfg;
	int		 client;	/* UDP, connected to the DNS port */
	int		 etcd;		/* bound, unlistened */
	char		 token[BERTH_TOKEN_HEX + 1];	/* of "web" */
	struct fz_lease	 lease[16];
	size_t		 nlease;
	struct fz_inst	 inst[64];
	size_t		 ninst;
	struct fz_node	 node[64];
	size_t		 nnode;
} fz;

static void	fz_fail(const char *, const char *)
		    __attribute__((noreturn));

static void
fz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_dns: %s%s%s\n", what, detail != NULL ? ": " : "",
	    detail != NULL ? detail : "");
	abort();
}

static uint16_t
fz_get16(const unsigned char *p)
{
	return ((uint16_t)(p[0] << 8 | p[1]));
}

static uint32_t
fz_get32(const unsigned char *p)
{
	return ((uint32_t)fz_get16(p) << 16 | fz_get16(p + 2));
}

static void
fz_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void
fz_put32(unsigned char *p, uint32_t v)
{
	fz_put16(p, (uint16_t)(v >> 16));
	fz_put16(p + 2, (uint16_t)v);
}

/* A dotted name of the model ("" the root) in wire form. */
static void
fz_wire(const char *dotted, struct fz_wname *w)
{
	const char	*p = dotted, *dot;
	size_t		 label;

	w->len = 0;
	while (*p != '\0') {
		dot = strchr(p, '.');
		label = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (label == 0 || label > 63 || w->len + 2 + label > 255)
			fz_fail("the model has a name no message holds",
			    dotted);
		w->b[w->len++] = (unsigned char)label;
		memcpy(w->b + w->len, p, label);
		w->len += label;
		p += label + (dot != NULL);
	}
	w->b[w->len++] = 0;
}

/* A wire name as text, for a message (a static buffer). */
static const char *
fz_text(const struct fz_wname *w)
{
	static char	 buf[FZ_WIRE_MAX * 4 + 8];
	size_t		 i = 0, n = 0, c;

	while (i < w->len && (c = w->b[i++]) != 0) {
		for (; c > 0 && i < w->len; c--, i++)
			n += (size_t)snprintf(buf + n, sizeof buf - n,
			    w->b[i] > 32 && w->b[i] < 127 && w->b[i] != '.' ?
			    "%c" : "\\%03u", w->b[i]);
		n += (size_t)snprintf(buf + n, sizeof buf - n, ".");
	}
	if (n == 0)
		snprintf(buf, sizeof buf, ".");
	return (buf);
}

/* --- the datagram, as evdns reads it --- */

/*
 * A question's name at *off, by evdns's rules: pointers anywhere in the
 * datagram (its own guard against loops), labels up to 63 bytes, a
 * string of at most 255 bytes. -1 where evdns gives up on the datagram.
 */
static int
fz_qname(const unsigned char *m, size_t len, size_t *off, struct fz_q *q)
{
	size_t	j = *off, end = SIZE_MAX, n = 0, jumps = 0, c;

	q->name.len = 0;
	q->clean = 1;
	for (;;) {
		if (j >= len)
			return (-1);
		if ((c = m[j++]) == 0)
			break;
		if (c & 0xc0) {
			if (j >= len)
				return (-1);
			if (end == SIZE_MAX)
				end = j + 1;
			j = (c & 0x3f) << 8 | m[j];
			if (j >= len || ++jumps > len)
				return (-1);
			continue;
		}
		if (n != 0) {
			if (n + 1 >= sizeof q->text)
				return (-1);
			q->text[n++] = '.';
		}
		if (n + c >= sizeof q->text || j + c > len)
			return (-1);
		if (memchr(m + j, '.', c) != NULL ||
		    memchr(m + j, 0, c) != NULL)
			q->clean = 0;
		memcpy(q->text + n, m + j, c);
		q->name.b[q->name.len++] = (unsigned char)c;
		memcpy(q->name.b + q->name.len, m + j, c);
		q->name.len += c;
		n += c;
		j += c;
	}
	q->text[n] = '\0';
	q->name.b[q->name.len++] = 0;
	*off = end != SIZE_MAX ? end : j;
	return (0);
}

/* Read the datagram (its first 1500 bytes, all evdns reads) into in. */
static void
fz_read_query(const unsigned char *m, size_t len, struct fz_query *in)
{
	size_t	off = 12, i;

	in->taken = 0;
	in->nq = 0;
	if (len < 12)
		return;
	in->id = fz_get16(m);
	in->flags = fz_get16(m + 2);
	in->nq = fz_get16(m + 4);
	if ((in->flags & FZ_QR) || in->nq == 0 || in->nq > FZ_MAXQ)
		return;
	for (i = 0; i < in->nq; i++) {
		if (fz_qname(m, len, &off, &in->q[i]) == -1 || off + 4 > len)
			return;
		in->q[i].type = fz_get16(m + off);
		in->q[i].cls = fz_get16(m + off + 2);
		off += 4;
	}
	in->taken = 1;
}

/* --- the answer, read strictly --- */

/*
 * A name of the answer at *off: labels of 1-63 bytes, at most 255 bytes
 * uncompressed, read up to limit before any pointer; pointers only to
 * bytes after the header and before every byte read so far, which rules
 * out loops. *off moves past it. NULL, or what is wrong.
 */
static const char *
fz_rname(const unsigned char *m, size_t mlen, size_t limit, size_t *off,
    struct fz_wname *w)
{
	size_t	p = *off, low = *off, next = 0, c, to;
	int	jumped = 0;

	w->len = 0;
	for (;;) {
		if (p >= (jumped ? mlen : limit))
			return ("a name runs past its end");
		c = m[p];
		if ((c & 0xc0) == 0xc0) {
			if (p + 1 >= (jumped ? mlen : limit))
				return ("a pointer runs past its end");
			to = (c & 0x3f) << 8 | m[p + 1];
			if (!jumped)
				next = p + 2;
			jumped = 1;
			if (to < 12 || to >= low)
				return ("a pointer that does not point back");
			p = low = to;
			continue;
		}
		if (c & 0xc0)
			return ("a label of a reserved type");
		if (w->len + 1 + c > 255)
			return ("a name over 255 bytes");
		if (c == 0)
			break;
		if (p + 1 + c > (jumped ? mlen : limit))
			return ("a label runs past its end");
		memcpy(w->b + w->len, m + p, 1 + c);
		w->len += 1 + c;
		p += 1 + c;
	}
	w->b[w->len++] = 0;
	*off = jumped ? next : p + 1;
	return (NULL);
}

/* A name that must fill the data to its end, appended to rr->rd. */
static const char *
fz_rd_name(const unsigned char *m, size_t mlen, size_t *off, size_t end,
    struct fz_rr *rr)
{
	struct fz_wname	 w;
	const char	*why;

	if ((why = fz_rname(m, mlen, end, off, &w)) != NULL)
		return (why);
	memcpy(rr->rd + rr->rdlen, w.b, w.len);
	rr->rdlen += w.len;
	return (NULL);
}

/*
 * A record's data, [off, end), checked against its type and kept with its
 * names uncompressed (and an SOA's serial zeroed: it is the index).
 */
static const char *
fz_rdata(const unsigned char *m, size_t mlen, size_t off, size_t end,
    struct fz_rr *rr)
{
	const char	*why = NULL;
	size_t		 len = end - off;

	rr->rdlen = 0;
	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (len != (rr->type == DNS_T_A ? 4 : 16))
			return ("an address of the wrong length");
		memcpy(rr->rd, m + off, len);
		rr->rdlen = len;
		return (NULL);
	case DNS_T_TXT:
		if (len == 0)
			return ("a TXT without a string");
		while (off < end) {
			if (off + 1 + m[off] > end)
				return ("a TXT string past its record");
			off += 1 + m[off];
		}
		memcpy(rr->rd, m + end - len, len);
		rr->rdlen = len;
		return (NULL);
	case DNS_T_SRV:
		if (len < 7)
			return ("an SRV too short");
		memcpy(rr->rd, m + off, 6);
		rr->rdlen = 6;
		off += 6;
		why = fz_rd_name(m, mlen, &off, end, rr);
		break;
	case DNS_T_CNAME:
		why = fz_rd_name(m, mlen, &off, end, rr);
		break;
	case DNS_T_SOA:
		if ((why = fz_rd_name(m, mlen, &off, end, rr)) != NULL ||
		    (why = fz_rd_name(m, mlen, &off, end, rr)) != NULL)
			return (why);
		if (end - off != 20)
			return ("an SOA's numbers are not 20 bytes");
		memset(rr->rd + rr->rdlen, 0, 4);
		memcpy(rr->rd + rr->rdlen + 4, m + off + 4, 16);
		rr->rdlen += 20;
		return (NULL);
	default:
		return ("a record of a type berthd never gives");
	}
	if (why == NULL && off != end)
		return ("a name does not end where its record does");
	return (why);
}

/* One resource record at *off of section sec. */
static const char *
fz_rr(const unsigned char *m, size_t len, size_t *off, int sec,
    struct fz_rr *rr)
{
	const char	*why;
	size_t		 rdlen;

	if ((why = fz_rname(m, len, len, off, &rr->owner)) != NULL)
		return (why);
	if (*off + 10 > len)
		return ("a record's fixed part runs past the end");
	rr->sec = sec;
	rr->type = fz_get16(m + *off);
	rr->cls = fz_get16(m + *off + 2);
	rr->ttl = fz_get32(m + *off + 4);
	rdlen = fz_get16(m + *off + 8);
	*off += 10;
	if (*off + rdlen > len)
		return ("a record's data runs past the end");
	rr->seen = 0;
	why = fz_rdata(m, len, *off, *off + rdlen, rr);
	*off += rdlen;
	return (why);
}

/* The whole answer, every count's worth of it, to its last byte. */
static void
fz_read_reply(const unsigned char *m, size_t len, struct fz_reply *r)
{
	const char	*why;
	size_t		 off = 12, i;
	int		 sec;

	if (len < 12)
		fz_fail("an answer shorter than a header", NULL);
	if (len > FZ_MSG_MAX)
		fz_fail("an answer over 512 bytes", NULL);
	r->id = fz_get16(m);
	r->flags = fz_get16(m + 2);
	for (i = 0; i < 4; i++)
		r->count[i] = fz_get16(m + 4 + 2 * i);
	if (r->count[0] > FZ_MAXQ || (size_t)r->count[1] + r->count[2] +
	    r->count[3] > FZ_MAXRR)
		fz_fail("an answer counts more than 512 bytes hold", NULL);
	for (i = 0; i < r->count[0]; i++) {
		if ((why = fz_rname(m, len, len, &off, &r->q[i].name)) != NULL)
			fz_fail("a question of the answer", why);
		if (off + 4 > len)
			fz_fail("a question of the answer runs past the end",
			    NULL);
		r->q[i].type = fz_get16(m + off);
		r->q[i].cls = fz_get16(m + off + 2);
		off += 4;
	}
	r->nrr = 0;
	for (sec = FZ_SEC_AN; sec <= FZ_SEC_AR; sec++) {
		for (i = 0; i < r->count[sec + 1]; i++) {
			if ((why = fz_rr(m, len, &off, sec,
			    &r->rr[r->nrr++])) != NULL)
				fz_fail("a record of the answer", why);
		}
	}
	if (off != len)
		fz_fail("bytes after the last record the counts say", NULL);
}

/* --- the model: what berthd should answer --- */

static int
fz_wants(uint16_t qtype, uint16_t type)
{
	return (qtype == type || qtype == DNS_T_ANY);
}

/* One record the answer must have; an equal one is there already. */
static void
fz_want(struct fz_want *w, int sec, const struct fz_wname *owner,
    uint16_t type, uint32_t ttl, const void *rd, size_t len)
{
	struct fz_rr	*rr;
	size_t		 i;

	for (i = 0; i < w->nrr; i++) {
		rr = &w->rr[i];
		if (rr->sec == sec && rr->type == type && rr->rdlen == len &&
		    rr->owner.len == owner->len && memcmp(rr->owner.b, owner->b,
		    owner->len) == 0 && memcmp(rr->rd, rd, len) == 0)
			return;
	}
	if (w->nrr == FZ_MAXRR || len > FZ_RD_MAX)
		fz_fail("the model's answer is too big for the harness", NULL);
	rr = &w->rr[w->nrr++];
	rr->sec = sec;
	rr->owner = *owner;
	rr->type = type;
	rr->cls = 1;
	rr->ttl = ttl;
	memcpy(rr->rd, rd, len);
	rr->rdlen = len;
	rr->seen = 0;
}

/*
 * owner's address: A or AAAA for a literal host (in the answer, if the
 * question asks for that type); for a host that is a DNS name, a CNAME
 * to it in the answer to an A or AAAA question, if cname.
 */
static void
fz_want_host(struct fz_want *w, int sec, const struct fz_wname *owner,
    const char *host, uint16_t qtype, uint32_t ttl, int cname)
{
	unsigned char	 a[16];
	struct fz_wname	 t;

	if (inet_pton(AF_INET, host, a) == 1) {
		if (sec != FZ_SEC_AN || fz_wants(qtype, DNS_T_A))
			fz_want(w, sec, owner, DNS_T_A, ttl, a, 4);
	} else if (inet_pton(AF_INET6, host, a) == 1) {
		if (sec != FZ_SEC_AN || fz_wants(qtype, DNS_T_AAAA))
			fz_want(w, sec, owner, DNS_T_AAAA, ttl, a, 16);
	} else if (sec == FZ_SEC_AN && cname && (qtype == DNS_T_A ||
	    qtype == DNS_T_AAAA)) {
		fz_wire(host, &t);
		fz_want(w, sec, owner, DNS_T_CNAME, ttl, t.b, t.len);
	}
}

/* SRV 0 0 port target. */
static void
fz_want_srv(struct fz_want *w, const struct fz_wname *owner, uint16_t port,
    const char *target, uint32_t ttl)
{
	unsigned char	 rd[6 + FZ_WIRE_MAX];
	struct fz_wname	 t;

	fz_wire(target, &t);
	fz_put16(rd, 0);
	fz_put16(rd + 2, 0);
	fz_put16(rd + 4, port);
	memcpy(rd + 6, t.b, t.len);
	fz_want(w, FZ_SEC_AN, owner, DNS_T_SRV, ttl, rd, 6 + t.len);
}

/* TXT "key=value", '=' and '`' in the key quoted with '`' (RFC 1464). */
static void
fz_want_txt(struct fz_want *w, const struct fz_wname *owner, const char *key,
    const char *value)
{
	static char		 text[FZ_RD_MAX];
	static unsigned char	 rd[FZ_RD_MAX];
	size_t			 t = 0, i, len = 0, part;

	for (i = 0; key[i] != '\0'; i++) {
		if (key[i] == '=' || key[i] == '`')
			text[t++] = '`';
		text[t++] = key[i];
	}
	text[t++] = '=';
	memcpy(text + t, value, strlen(value));
	t += strlen(value);
	for (i = 0; i < t; i += part) {
		part = t - i > 255 ? 255 : t - i;
		rd[len++] = (unsigned char)part;
		memcpy(rd + len, text + i, part);
		len += part;
	}
	fz_want(w, FZ_SEC_AN, owner, DNS_T_TXT, 0, rd, len);
}

static void
fz_want_soa(struct fz_want *w, int sec, const struct fz_wname *owner)
{
	unsigned char	 rd[64];
	struct fz_wname	 a, b;

	fz_wire("berth", &a);
	fz_wire("hostmaster.berth", &b);
	memcpy(rd, a.b, a.len);
	memcpy(rd + a.len, b.b, b.len);
	fz_put32(rd + a.len + b.len, 0);	/* the serial: not compared */
	fz_put32(rd + a.len + b.len + 4, 3600);
	fz_put32(rd + a.len + b.len + 8, 600);
	fz_put32(rd + a.len + b.len + 12, 86400);
	fz_put32(rd + a.len + b.len + 16, 0);
	fz_want(w, sec, owner, DNS_T_SOA, 0, rd, a.len + b.len + 20);
}

static const struct fz_lease *
fz_lease_of(const char *name)
{
	size_t	i;

	for (i = 0; i < fz.nlease; i++)
		if (strcmp(fz.lease[i].name, name) == 0)
			return (&fz.lease[i]);
	return (NULL);
}

static const char *
fz_node_address(const char *node)
{
	size_t	i;

	for (i = 0; i < fz.nnode; i++)
		if (strcmp(fz.node[i].node, node) == 0)
			return (fz.node[i].address);
	return (NULL);
}

/*
 * NAME.berth (srv_only: _NAME._tcp|_udp.berth): the host's address, a
 * TXT per meta entry, SRV to NAME.berth. (to the host itself when it is a
 * DNS name) with NAME.berth's address beside it.
 */
static void
fz_want_local(struct fz_want *w, const struct fz_wname *qn, uint16_t qt,
    const struct fz_lease *l, int srv_only)
{
	unsigned char	 a[16];
	char		 target[BERTH_HOST_MAX + 8];
	struct fz_wname	 t;
	const char	*k;
	json_t		*v;

	if (inet_pton(AF_INET, l->host, a) == 1 ||
	    inet_pton(AF_INET6, l->host, a) == 1)
		snprintf(target, sizeof target, "%s.berth", l->name);
	else
		snprintf(target, sizeof target, "%s", l->host);
	if (!srv_only) {
		fz_want_host(w, FZ_SEC_AN, qn, l->host, qt, 0, 1);
		if (fz_wants(qt, DNS_T_TXT) && l->meta != NULL)
			json_object_foreach(l->meta, k, v)
				fz_want_txt(w, qn, k, json_string_value(v));
	}
	if (fz_wants(qt, DNS_T_SRV)) {
		fz_want_srv(w, qn, l->port, target, 0);
		fz_wire(target, &t);
		fz_want_host(w, FZ_SEC_AR, &t, l->host, qt, 0, 0);
	}
}

/* HEX.addr.berth for an address literal; -1 for a name. */
static int
fz_addr_name(const char *host, char *out, size_t len)
{
	unsigned char	a[16];
	int		n, i;
	size_t		w = 0;

	if (inet_pton(AF_INET, host, a) == 1)
		n = 4;
	else if (inet_pton(AF_INET6, host, a) == 1)
		n = 16;
	else
		return (-1);
	for (i = 0; i < n; i++)
		w += (size_t)snprintf(out + w, len - w, "%02x", a[i]);
	snprintf(out + w, len - w, ".addr.berth");
	return (0);
}

/* The address HEX (8 or 32 hex digits) spells, as text; -1 if none. */
static int
fz_addr_of_name(const char *hex, char *out, size_t len)
{
	unsigned char	a[16];
	size_t		n = strlen(hex), i;
	unsigned int	v;

	if (n != 8 && n != 32)
		return (-1);
	for (i = 0; i < n; i += 2) {
		if (!isxdigit((unsigned char)hex[i]) ||
		    !isxdigit((unsigned char)hex[i + 1]) ||
		    sscanf(hex + i, "%2x", &v) != 1)
			return (-1);
		a[i / 2] = (unsigned char)v;
	}
	return (inet_ntop(n == 8 ? AF_INET : AF_INET6, a, out,
	    (socklen_t)len) == NULL ? -1 : 0);
}

/*
 * NAME.cluster.berth: each instance's host (no CNAME), SRV to
 * NODE.node.berth. when the host is its node's address, else to
 * HEX.addr.berth. (an address) or the host itself (a name), with what
 * that target answers beside it. 0 if no node publishes name.
 */
static int
fz_want_cluster(struct fz_want *w, const struct fz_wname *qn, uint16_t qt,
    const char *name)
{
	char		 target[BERTH_HOST_MAX + 1];
	struct fz_wname	 t;
	const char	*addr;
	size_t		 i, n = 0;

	for (i = 0; i < fz.ninst; i++) {
		if (strcmp(fz.inst[i].name, name) != 0)
			continue;
		n++;
		fz_want_host(w, FZ_SEC_AN, qn, fz.inst[i].host, qt, 5, 0);
		if (!fz_wants(qt, DNS_T_SRV))
			continue;
		addr = fz_node_address(fz.inst[i].node);
		if (addr != NULL && strcmp(addr, fz.inst[i].host) == 0)
			snprintf(target, sizeof target, "%s.node.berth",
			    fz.inst[i].node);
		else if (fz_addr_name(fz.inst[i].host, target,
		    sizeof target) == -1)
			snprintf(target, sizeof target, "%s", fz.inst[i].host);
		fz_want_srv(w, qn, fz.inst[i].port, target, 5);
		fz_wire(target, &t);
		if (strcmp(target, fz.inst[i].host) != 0)
			fz_want_host(w, FZ_SEC_AR, &t, fz.inst[i].host, qt, 5,
			    0);
	}
	return (n != 0);
}

/* s without ".suffix" (or "" for s == suffix); NULL if it is not so. */
static const char *
fz_strip(const char *s, const char *suffix, char *out, size_t outlen)
{
	size_t	len = strlen(s), sl = strlen(suffix);

	if (len == sl && strcmp(s, suffix) == 0) {
		out[0] = '\0';
		return (out);
	}
	if (len > sl + 1 && len - sl - 1 < outlen && s[len - sl - 1] == '.' &&
	    strcmp(s + len - sl, suffix) == 0) {
		memcpy(out, s, len - sl - 1);
		out[len - sl - 1] = '\0';
		return (out);
	}
	return (NULL);
}

/* _NAME._tcp or _NAME._udp: the lease, if its proto has that one. */
static const struct fz_lease *
fz_srv_lease(const char *rest)
{
	const struct fz_lease	*l;
	char			 name[256];
	int			 proto;

	if (rest[0] != '_')
		return (NULL);
	if (fz_strip(rest + 1, "_tcp", name, sizeof name) != NULL)
		proto = PROTO_TCP;
	else if (fz_strip(rest + 1, "_udp", name, sizeof name) != NULL)
		proto = PROTO_UDP;
	else
		return (NULL);
	if ((l = fz_lease_of(name)) == NULL || !(l->proto & proto))
		return (NULL);
	return (l);
}

/* The rcode of a question in berth. (rest: the name before ".berth"). */
static int
fz_want_zone(struct fz_want *w, const struct fz_wname *qn, uint16_t qt,
    const char *rest)
{
	const struct fz_lease	*l;
	const char		*addr;
	char			 name[256];

	if (rest[0] == '\0') {
		if (fz_wants(qt, DNS_T_SOA))
			fz_want_soa(w, FZ_SEC_AN, qn);
		return (FZ_NOERROR);
	}
	if (fz_strip(rest, "cluster", name, sizeof name) != NULL) {
		if (name[0] == '\0')
			return (FZ_NOERROR);
		return (fz_want_cluster(w, qn, qt, name) ? FZ_NOERROR :
		    FZ_NXDOMAIN);
	}
	if (fz_strip(rest, "addr", name, sizeof name) != NULL) {
		char	text[INET6_ADDRSTRLEN];

		if (fz_addr_of_name(name, text, sizeof text) == -1)
			return (FZ_NXDOMAIN);
		fz_want_host(w, FZ_SEC_AN, qn, text, qt, 5, 0);
		return (FZ_NOERROR);
	}
	if (fz_strip(rest, "node", name, sizeof name) != NULL) {
		if (name[0] == '\0')
			return (FZ_NOERROR);
		if ((addr = fz_node_address(name)) == NULL)
			return (FZ_NXDOMAIN);
		fz_want_host(w, FZ_SEC_AN, qn, addr, qt, 5, 1);
		return (FZ_NOERROR);
	}
	if (rest[0] == '_') {
		if ((l = fz_srv_lease(rest)) == NULL)
			return (FZ_NXDOMAIN);
		fz_want_local(w, qn, qt, l, 1);
		return (FZ_NOERROR);
	}
	if ((l = fz_lease_of(rest)) == NULL)
		return (FZ_NXDOMAIN);
	fz_want_local(w, qn, qt, l, 0);
	return (FZ_NOERROR);
}

/* What must come back for the datagram in. */
static void
fz_expect(const struct fz_query *in, struct fz_want *w)
{
	const struct fz_q *q = &in->q[0];
	struct fz_wname	 apex;
	char		 low[256], rest[256];
	size_t		 i, an = 0;

	w->nrr = 0;
	w->zone = 0;
	w->loose = 0;
	w->rcode = FZ_NOERROR;
	w->reply = -1;
	if (!in->taken) {
		w->reply = 0;	/* evdns drops what it cannot read */
		return;
	}
	if ((in->flags & 0x7800) != 0 || in->nq != 1) {
		w->reply = 0;	/* berthd's socket filter drops them */
		return;
	}
	if (strlen(q->text) > 253) {
		w->reply = 0;		/* no answer could echo it */
		return;
	}
	if (!q->clean) {
		/* A label holding a dot or a NUL: evdns reads another name
		 * and answers that; only one answer at most is checked. */
		w->reply = -1;
		w->loose = 1;
		return;
	}
	w->reply = 1;
	for (i = 0; q->text[i] != '\0'; i++)
		low[i] = q->text[i] >= 'A' && q->text[i] <= 'Z' ?
		    (char)(q->text[i] - 'A' + 'a') : q->text[i];
	low[i] = '\0';
	if (fz_strip(low, "berth", rest, sizeof rest) == NULL ||
	    (q->cls != 1 && q->cls != 255)) {
		w->rcode = FZ_REFUSED;
		return;
	}
	w->zone = 1;
	w->rcode = fz_want_zone(w, &q->name, q->type, rest);
	for (i = 0; i < w->nrr; i++)
		an += w->rr[i].sec == FZ_SEC_AN;
	if (an == 0) {
		fz_wire("berth", &apex);
		fz_want_soa(w, FZ_SEC_NS, &apex);
	}
}

/* --- the answer against the model --- */

static int
fz_same_rr(const struct fz_rr *a, const struct fz_rr *b)
{
	return (a->sec == b->sec && a->type == b->type && a->cls == b->cls &&
	    a->ttl == b->ttl && a->owner.len == b->owner.len &&
	    memcmp(a->owner.b, b->owner.b, a->owner.len) == 0 &&
	    a->rdlen == b->rdlen && memcmp(a->rd, b->rd, a->rdlen) == 0);
}

/*
 * Each record of the answer is one the model wants, once; TC exactly
 * when an answer record it wants is missing; the authority exactly the
 * model's. Additional records may be left out (no room).
 */
static void
fz_check_records(struct fz_want *w, struct fz_reply *r)
{
	size_t	i, j;
	int	missing = 0;

	for (i = 0; i < r->nrr; i++) {
		for (j = 0; j < w->nrr; j++)
			if (!w->rr[j].seen && fz_same_rr(&r->rr[i], &w->rr[j]))
				break;
		if (j == w->nrr) {
			fprintf(stderr, "fuzz_dns: record %zu of %zu: section "
			    "%d, owner %s, type %u, TTL %u, %zu bytes of data; "
			    "the model has %zu\n", i, r->nrr, r->rr[i].sec,
			    fz_text(&r->rr[i].owner), r->rr[i].type,
			    r->rr[i].ttl, r->rr[i].rdlen, w->nrr);
			fz_fail("a record the leases and the view do not make",
			    NULL);
		}
		w->rr[j].seen = 1;
	}
	for (j = 0; j < w->nrr; j++) {
		if (w->rr[j].seen)
			continue;
		if (w->rr[j].sec == FZ_SEC_AN)
			missing = 1;
		else if (w->rr[j].sec == FZ_SEC_NS)
			fz_fail("the zone's SOA is missing from AUTHORITY",
			    NULL);
	}
	if (missing && !(r->flags & FZ_TC))
		fz_fail("an answer record is missing, without TC", NULL);
	if (!missing && (r->flags & FZ_TC))
		fz_fail("TC, but every answer record is there", NULL);
}

/* The answer's question section is the datagram's, byte for byte. */
static void
fz_check_question(const struct fz_query *in, const struct fz_reply *r)
{
	size_t	i;

	if (r->count[0] != in->nq)
		fz_fail("the answer has another number of questions", NULL);
	for (i = 0; i < in->nq; i++) {
		if (r->q[i].name.len != in->q[i].name.len ||
		    memcmp(r->q[i].name.b, in->q[i].name.b,
		    in->q[i].name.len) != 0)
			fz_fail("the question comes back with another name",
			    in->q[i].text);
		if (r->q[i].type != in->q[i].type ||
		    r->q[i].cls != in->q[i].cls)
			fz_fail("the question comes back with another type or "
			    "class", NULL);
	}
}

static void
fz_check(const struct fz_query *in, struct fz_want *w,
    const unsigned char *m, size_t len)
{
	static struct fz_reply	r;
	char			 buf[64];

	fz_read_reply(m, len, &r);
	if (r.id != in->id)
		fz_fail("the answer's ID is not the question's", NULL);
	if (!(r.flags & FZ_QR))
		fz_fail("the answer has no QR", NULL);
	if ((r.flags & 0x7800) != (in->flags & 0x7800))
		fz_fail("the answer's opcode is not the question's", NULL);
	if (r.flags & (FZ_RA | FZ_Z | FZ_AD))
		fz_fail("the answer has RA, Z or AD set", NULL);
	if ((r.flags & (FZ_RD | FZ_CD)) != (in->flags & (FZ_RD | FZ_CD)))
		fz_fail("the answer does not echo RD and CD", NULL);
	fz_check_question(in, &r);
	if ((r.flags & 0x000f) != w->rcode) {
		snprintf(buf, sizeof buf, "%u, not %d", r.flags & 0x000f,
		    w->rcode);
		fz_fail("the answer's rcode", buf);
	}
	if (!w->zone) {
		if ((r.flags & (FZ_AA | FZ_TC)) || r.nrr != 0)
			fz_fail("an answer outside the zone with AA, TC or "
			    "records", NULL);
		return;
	}
	if (!(r.flags & FZ_AA))
		fz_fail("an answer of the zone without AA", NULL);
	fz_check_records(w, &r);
}

/* --- the daemon --- */

/* Every pool port is free: the harness must not depend on the host. */
static int
fz_probe(uint16_t port, int proto)
{
	(void)port;
	(void)proto;
	return (1);
}

/* Acquire a lease from an acquire body, as the API would; model it. */
static void
fz_acquire(json_t *body)
{
	struct fz_lease	*m = &fz.lease[fz.nlease++];
	struct lease_req r;
	struct lease	*l;
	struct berr	 e;
	char		*text;
	int		 created;

	if ((text = json_dumps(body, JSON_COMPACT)) == NULL ||
	    leasereq_parse(text, strlen(text), &r, &e) == -1 ||
	    broker_acquire(fz.srv.broker, &r, NULL, &l, &created, &e) == -1)
		fz_fail("cannot acquire a lease of the model", text);
	snprintf(m->name, sizeof m->name, "%s", l->name);
	snprintf(m->host, sizeof m->host, "%s", l->host != NULL ? l->host :
	    BERTH_DEFAULT_HOST);
	m->port = l->port;
	m->proto = l->proto;
	m->meta = l->meta != NULL ? json_loads(l->meta, 0, NULL) : NULL;
	if (strcmp(m->name, "web") == 0)
		snprintf(fz.token, sizeof fz.token, "%s", l->token);
	leasereq_clear(&r);
	free(text);
	json_decref(body);
}

/* A string of n bytes of c, for long names and meta. */
static char *
fz_fill(char *buf, int c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return (buf);
}

/* The leases: every kind of host, proto and meta the answers differ by. */
static void
fz_leases(void)
{
	char	a[200], b[200], c[800], d[64], name[64], host[254];
	size_t	i;
	json_t	*meta;

	fz_acquire(json_pack("{ss ss s{ss ss ss}}", "name", "web", "proto",
	    "tcp", "meta", "env", "prod", "team", "core", "a=b`c", "x=`y"));
	fz_acquire(json_pack("{ss ss ss}", "name", "v6", "host", "::1",
	    "proto", "udp"));
	fz_acquire(json_pack("{ss ss ss s{ss}}", "name", "alias", "host",
	    "db.example.com", "proto", "both", "meta", "k", ""));
	fz_acquire(json_pack("{ss ss ss sb}", "name", "api.v2", "host",
	    "10.1.2.3", "proto", "both", "publish", 1));
	meta = json_object();
	for (i = 0; i < 6; i++) {
		snprintf(a, sizeof a, "key%zu", i);
		json_object_set_new(meta, a, json_string(fz_fill(b, 'a' + i,
		    150)));
	}
	fz_acquire(json_pack("{ss ss so}", "name", "bigmeta", "host",
	    "127.0.0.2", "meta", meta));
	fz_acquire(json_pack("{ss ss ss s{ss ss}}", "name", "huge", "host",
	    "127.0.0.3", "proto", "udp", "meta", "blob", fz_fill(c, 'z', 700),
	    "small", "s"));
	/* 63 characters, on a 253-character host: SRV to the host. */
	snprintf(host, sizeof host, "%s.%s.%s.%s", fz_fill(a, 'h', 63),
	    fz_fill(b, 'i', 63), fz_fill(c, 'j', 63), fz_fill(d, 'k', 61));
	fz_acquire(json_pack("{ss ss ss s{ss}}", "name", fz_fill(name, 'l',
	    63), "host", host, "proto", "both", "meta", "m", "n"));
	/* No DNS name of its own: x.cluster.berth is the cluster's x. */
	fz_acquire(json_pack("{ss}", "name", "x.cluster"));
	fz_acquire(json_pack("{ss ss}", "name", "a._tcp", "proto", "udp"));
}

static void
fz_view_node(struct clusterview *cv, const char *node, const char *address)
{
	json_t	*rec;
	char	 key[128], *text;

	snprintf(key, sizeof key, "nodes/%s", node);
	if ((rec = clusterview_node_record(node, address, "1.0", NULL)) ==
	    NULL || (text = json_dumps(rec, JSON_COMPACT)) == NULL)
		abort();
	if (clusterview_apply(cv, key, text, strlen(text)) != 1)
		fz_fail("the view does not take a node record", text);
	snprintf(fz.node[fz.nnode].node, sizeof fz.node[0].node, "%s", node);
	snprintf(fz.node[fz.nnode].address, sizeof fz.node[0].address, "%s",
	    address);
	fz.nnode++;
	json_decref(rec);
	free(text);
}

static void
fz_view_inst(struct clusterview *cv, const char *name, const char *node,
    const char *host, uint16_t port)
{
	struct fz_inst	*in = &fz.inst[fz.ninst++];
	char		 key[160], *text;

	snprintf(key, sizeof key, "services/%s/%s", name, node);
	if ((text = clusterview_instance_text(name, node, host, port,
	    PROTO_TCP, NULL, LEASE_READY)) == NULL)
		abort();
	if (strcmp(node, FZ_SELF) != 0 &&
	    clusterview_apply(cv, key, text, strlen(text)) != 1)
		fz_fail("the view does not take an instance", text);
	snprintf(in->name, sizeof in->name, "%s", name);
	snprintf(in->node, sizeof in->node, "%s", node);
	snprintf(in->host, sizeof in->host, "%s", host);
	in->port = port;
	free(text);
}

/*
 * The cluster: this node (its published api.v2 is in the view from the
 * start), three others (an IPv4, an IPv6 and a DNS-name address), names
 * on several nodes, one host on two nodes, and "many" on 40 nodes: more
 * than an answer holds.
 */
static void
fz_view(struct clusterview *cv)
{
	const struct fz_lease *l = fz_lease_of("api.v2");
	char	node[16], host[32];
	size_t	i;

	snprintf(fz.node[fz.nnode].node, sizeof fz.node[0].node, FZ_SELF);
	snprintf(fz.node[fz.nnode++].address, sizeof fz.node[0].address,
	    FZ_ADVERTISE);
	fz_view_node(cv, "n1", "10.0.0.1");
	fz_view_node(cv, "n2", "fd00::2");
	fz_view_node(cv, "n3", "n3.example.net");
	fz_view_inst(cv, "web", "n1", "10.0.0.1", 8080);
	fz_view_inst(cv, "web", "n2", "fd00::2", 8081);
	fz_view_inst(cv, "web", "n3", "n3.example.net", 8082);
	fz_view_inst(cv, "api.v2", FZ_SELF, l->host, l->port);
	fz_view_inst(cv, "api.v2", "n1", "10.0.0.1", 9000);
	fz_view_inst(cv, "dup", "n1", "10.0.0.7", 7000);
	fz_view_inst(cv, "dup", "n2", "10.0.0.7", 7001);
	fz_view_inst(cv, "x", "n1", "10.0.0.1", 6000);
	for (i = 0; i < 40; i++) {
		snprintf(node, sizeof node, "m%02zu", i);
		snprintf(host, sizeof host, "10.9.0.%zu", i + 1);
		fz_view_node(cv, node, host);
		fz_view_inst(cv, "many", node, host, (uint16_t)(5000 + i));
	}
}

/*
 * --cluster, with an etcd that refuses (a bound socket that never
 * listens), left at once: the view stays as the harness sets it.
 */
static void
fz_cluster(void)
{
	char	err[256];

	if ((fz.srv.cluster = cluster_open(&fz.srv, err, sizeof err)) == NULL)
		fz_fail("cannot open the cluster", err);
	cluster_leave(fz.srv.cluster);
	fz_view(cluster_view(fz.srv.cluster));
}

/* A TCP port of 127.0.0.1 that refuses connections: etcd for --cluster. */
static uint16_t
fz_refusing_port(void)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	socklen_t		 len = sizeof sin;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fz.etcd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fz.etcd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    getsockname(fz.etcd, (struct sockaddr *)&sin, &len) == -1)
		fz_fail("cannot bind a TCP socket on 127.0.0.1",
		    strerror(errno));
	return (ntohs(sin.sin_port));
}

/* The client's socket, connected to the DNS port berthd bound. */
static void
fz_client(void)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	const char		*colon;

	colon = strrchr(dns_address(fz.srv.dns), ':');
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if ((fz.client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) ==
	    -1 || connect(fz.client, (struct sockaddr *)&sin, sizeof sin) == -1)
		fz_fail("cannot connect to the DNS port", strerror(errno));
}

/*
 * The turn's commit, if it is still to come: the readiness pass (once a
 * second, from the host's sockets) may have opened a transaction.
 */
static void
fz_settle(void)
{
	int	i;

	for (i = 0; i < 4 && broker_in_txn(fz.srv.broker); i++)
		event_base_loop(fz.srv.base, EVLOOP_NONBLOCK);
	if (broker_in_txn(fz.srv.broker))
		fz_fail("the turn's transaction is still open", NULL);
}

static void
fz_init(void)
{
	struct port_range	 range = { 61000, 61063 };
	struct store		*store;
	struct pool		*pool;
	struct broker		*b;
	char			 etcd[64], err[256];
	char			*argv[] = { (char *)"fuzz", (char *)"--dns",
	    (char *)"127.0.0.1:0", (char *)"--cluster", etcd,
	    (char *)"--node", (char *)FZ_SELF, (char *)"--advertise",
	    (char *)FZ_ADVERTISE, NULL };

	log_init(LOG_LVL_ERROR, NULL);
	snprintf(etcd, sizeof etcd, "http://127.0.0.1:%u", fz_refusing_port());
	if (config_parse(&fz.cfg, 9, argv, err, sizeof err) != CONFIG_OK)
		fz_fail("config", err);
	snprintf(fz.cfg.db, sizeof fz.cfg.db, ":memory:");
	if ((store = store_open(":memory:", 0, err, sizeof err)) == NULL ||
	    (pool = pool_new(&range, 1, 60000)) == NULL ||
	    (b = broker_new(store, pool, 60000, fz_probe, NULL)) == NULL ||
	    server_init(&fz.srv, &fz.cfg, b) == -1 ||
	    broker_load(b, err, sizeof err) == -1)
		fz_fail("cannot set up the server", err);
	fz_leases();
	fz_settle();
	fz_cluster();
	if (dns_open(&fz.srv, &fz.srv.dns, err, sizeof err) == -1 ||
	    fz.srv.dns == NULL ||
	    server_on_commit(&fz.srv, dns_committed, fz.srv.dns) == -1)
		fz_fail("cannot answer DNS", err);
	fz_client();
	fz.ready = 1;
}

/* Open a turn's transaction, as an HTTP renew would: the question waits. */
static void
fz_hold(void)
{
	struct lease	*l;
	struct berr	 e = { .message = "" };

	if (broker_renew(fz.srv.broker, "web", fz.token, NULL, &l, &e) == -1 ||
	    !broker_in_txn(fz.srv.broker))
		fz_fail("cannot open a transaction with a renew", e.message);
}

/* The loop, without blocking, until an answer is back (or a few turns). */
static ssize_t
fz_await(unsigned char *buf, size_t cap)
{
	ssize_t	n;
	int	i;

	for (i = 0; i < 4; i++) {
		event_base_loop(fz.srv.base, EVLOOP_NONBLOCK);
		if ((n = recv(fz.client, buf, cap, MSG_DONTWAIT)) >= 0)
			return (n);
	}
	return (-1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_query	 in;
	static struct fz_want	 w;
	static unsigned char	 buf[4096];
	ssize_t			 n;

	if (!fz.ready)
		fz_init();
	if (size > 4096)
		return (0);
	while (recv(fz.client, buf, sizeof buf, MSG_DONTWAIT) >= 0)
		;	/* nothing may be left from before */
	fz_read_query(data, size < FZ_PKT_MAX ? size : FZ_PKT_MAX, &in);
	fz_expect(&in, &w);
	if (size >= 2 && (data[1] & 1))
		fz_hold();
	if (send(fz.client, data, size, 0) != (ssize_t)size)
		fz_fail("cannot send the datagram", strerror(errno));
	n = fz_await(buf, sizeof buf);
	fz_settle();
	if (n < 0) {
		if (w.reply == 1)
			fz_fail("no answer to a question berthd answers", NULL);
		return (0);
	}
	if (w.reply == 0)
		fz_fail("an answer to a datagram that must get none", NULL);
	if (!w.loose)
		fz_check(&in, &w, buf, (size_t)n);
	if (fz_await(buf, sizeof buf) >= 0)
		fz_fail("two answers to one datagram", NULL);
	return (0);
}
