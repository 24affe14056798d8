/*
 * dnsrr.c: what berthd's DNS answers are made of, without the socket:
 * which name of the berth. zone a question asks for (dnsname_parse), the
 * record data libevent's evdns cannot encode (SRV, TXT, SOA), and the
 * plan of an answer that fits in 512 bytes (dnsmsg_fit).
 *
 * evdns writes the message itself, compressing each owner and name it
 * is given against the suffixes it has written before, and when the
 * message grows past 512 bytes it cuts it there and sets TC, counts and
 * all, which leaves a record cut in half. So the plan works out, with
 * the same compression, how many whole records fit, and berthd hands
 * evdns only those: a truncated answer stays a valid message.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core.h"

#define DNS_ZONE	"berth"
#define DNS_TABLE_MAX	128	/* suffixes evdns remembers per message */

/* --- names --- */

/* Does s end with "." suffix (or is it suffix)? Its length before, or -1. */
static ssize_t
dnsname_strip(const char *s, size_t len, const char *suffix)
{
	size_t	sl = strlen(suffix);

	if (len == sl && memcmp(s, suffix, sl) == 0)
		return (0);
	if (len > sl + 1 && s[len - sl - 1] == '.' &&
	    memcmp(s + len - sl, suffix, sl) == 0)
		return ((ssize_t)(len - sl - 1));
	return (-1);
}

/* The lease name in s[0..len) if it is one (kept in out), else 0. */
static int
dnsname_lease(const char *s, size_t len, char *out)
{
	if (len == 0 || len > BERTH_NAME_MAX)
		return (0);
	memcpy(out, s, len);
	out[len] = '\0';
	return (names_valid(out));
}

/* An address written as hex, 8 digits for IPv4 or 32 for IPv6. */
static int
dnsname_hex(const char *s, size_t len, struct dnsname *dn)
{
	size_t	i;
	int	hi, lo;

	if (len != 8 && len != 32)
		return (0);
	for (i = 0; i < len; i += 2) {
		if (!isxdigit((unsigned char)s[i]) ||
		    !isxdigit((unsigned char)s[i + 1]))
			return (0);
		hi = isdigit((unsigned char)s[i]) ? s[i] - '0' : s[i] - 'a' + 10;
		lo = isdigit((unsigned char)s[i + 1]) ? s[i + 1] - '0' :
		    s[i + 1] - 'a' + 10;
		dn->addr[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	dn->addrlen = (int)len / 2;
	return (1);
}

/*
 * The name HEX.addr.berth that stands for an address (host, a literal),
 * as Consul's .addr. names do: the target of a cluster instance's SRV
 * whose host is not its node's address. -1 if host is not a literal.
 */
int
dnsname_of_addr(const char *host, char *out, size_t len)
{
	unsigned char	a[16];
	uint16_t	type;
	int		n, i, w = 0;

	if ((n = dnsrr_addr(host, a, &type)) == 0 || len < (size_t)n * 2 + 12)
		return (-1);
	for (i = 0; i < n; i++)
		w += snprintf(out + w, len - (size_t)w, "%02x", a[i]);
	snprintf(out + w, len - (size_t)w, ".addr.%s", DNS_ZONE);
	return (0);
}

/*
 * Which name of the zone qname (as evdns parsed it: labels joined by
 * dots, no final dot) is, case folded. Suffixes are read before lease
 * names: "web.cluster.berth" is the cluster's web, never a lease named
 * "web.cluster", so that a cluster name means the same on every node.
 */
void
dnsname_parse(const char *qname, struct dnsname *dn)
{
	char	low[256];
	size_t	len, i;
	ssize_t	rest, r;

	memset(dn, 0, sizeof *dn);
	dn->kind = DNSN_OUTSIDE;
	if ((len = strlen(qname)) >= sizeof low)
		return;
	for (i = 0; i < len; i++)
		low[i] = (char)tolower((unsigned char)qname[i]);
	low[len] = '\0';
	if ((rest = dnsname_strip(low, len, DNS_ZONE)) == -1)
		return;
	dn->kind = DNSN_NONE;
	if (rest == 0) {
		dn->kind = DNSN_APEX;
		return;
	}
	if ((r = dnsname_strip(low, (size_t)rest, "cluster")) != -1) {
		if (r == 0)
			dn->kind = DNSN_EMPTY;
		else if (dnsname_lease(low, (size_t)r, dn->name))
			dn->kind = DNSN_CLUSTER;
		return;
	}
	if ((r = dnsname_strip(low, (size_t)rest, "addr")) != -1) {
		if (dnsname_hex(low, (size_t)r, dn))
			dn->kind = DNSN_ADDR;
		return;
	}
	if ((r = dnsname_strip(low, (size_t)rest, "node")) != -1) {
		if (r == 0)
			dn->kind = DNSN_EMPTY;
		else if (dnsname_lease(low, (size_t)r, dn->name))
			dn->kind = DNSN_NODE;
		return;
	}
	if (low[0] == '_') {
		/* _NAME._tcp or _NAME._udp, as RFC 2782 writes them */
		if (rest > 6 && (r = dnsname_strip(low, (size_t)rest, "_tcp"))
		    != -1)
			dn->proto = PROTO_TCP;
		else if (rest > 6 && (r = dnsname_strip(low, (size_t)rest,
		    "_udp")) != -1)
			dn->proto = PROTO_UDP;
		else
			return;
		if (r > 1 && dnsname_lease(low + 1, (size_t)r - 1, dn->name))
			dn->kind = DNSN_SRV;
		return;
	}
	if (dnsname_lease(low, (size_t)rest, dn->name))
		dn->kind = DNSN_LOCAL;
}

/*
 * Is name one evdns writes back as it came: labels of 1 to 63 bytes
 * joined by single dots, at most 253 in all? evdns splits what it
 * parsed at every dot, so a label that held a dot, or an empty one,
 * would come back as another name, or cut the message short.
 */
int
dnsname_writable(const char *name)
{
	size_t	i, label = 0, len = strlen(name);

	if (len > 253)
		return (0);
	for (i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return (0);
			label = 0;
		} else if (++label > 63)
			return (0);
	}
	return (len == 0 || label > 0);
}

/* --- record data --- */

/* name in wire format, uncompressed; its length, or -1 if it does not fit. */
int
dnsrr_name(unsigned char *buf, size_t cap, const char *name)
{
	size_t	j = 0, label;
	const char *p = name, *dot;

	if (!dnsname_writable(name))
		return (-1);
	while (*p != '\0') {
		dot = strchr(p, '.');
		label = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (j + 1 + label > cap)
			return (-1);
		buf[j++] = (unsigned char)label;
		memcpy(buf + j, p, label);
		j += label;
		p += label + (dot != NULL);
	}
	if (j + 1 > cap)
		return (-1);
	buf[j++] = 0;
	return ((int)j);
}

static void
dnsrr_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void
dnsrr_put32(unsigned char *p, uint32_t v)
{
	dnsrr_put16(p, (uint16_t)(v >> 16));
	dnsrr_put16(p + 2, (uint16_t)v);
}

/* SRV's data (RFC 2782): priority, weight, port, target uncompressed. */
int
dnsrr_srv(unsigned char *buf, size_t cap, uint16_t prio, uint16_t weight,
    uint16_t port, const char *target)
{
	int	n;

	if (cap < 6 || (n = dnsrr_name(buf + 6, cap - 6, target)) == -1)
		return (-1);
	dnsrr_put16(buf, prio);
	dnsrr_put16(buf + 2, weight);
	dnsrr_put16(buf + 4, port);
	return (6 + n);
}

/*
 * TXT's data for one attribute, "key=value" as RFC 1464 writes it: a
 * '=' or '`' in the key is quoted with '`'. The text is cut into
 * character-strings of at most 255 bytes, which a reader joins again.
 */
int
dnsrr_txt(unsigned char *buf, size_t cap, const char *key, const char *value)
{
	char	text[BERTH_META_MAX * 2 + 2];
	size_t	t = 0, i, j = 0, part;

	for (i = 0; key[i] != '\0' && t + 2 < sizeof text; i++) {
		if (key[i] == '=' || key[i] == '`')
			text[t++] = '`';
		text[t++] = key[i];
	}
	if (t + 1 + strlen(value) > sizeof text)
		return (-1);
	text[t++] = '=';
	memcpy(text + t, value, strlen(value));
	t += strlen(value);
	for (i = 0; i < t || i == 0; i += part) {
		part = t - i > 255 ? 255 : t - i;
		if (j + 1 + part > cap)
			return (-1);
		buf[j++] = (unsigned char)part;
		memcpy(buf + j, text + i, part);
		j += part;
		if (part == 0)
			break;
	}
	return ((int)j);
}

/*
 * SOA's data: the zone's origin and mailbox, the serial (berthd's
 * index), and timers. The last, the TTL of a "no such name", is 0: a
 * name may be leased the next moment.
 */
int
dnsrr_soa(unsigned char *buf, size_t cap, uint32_t serial)
{
	int	a, b;

	if ((a = dnsrr_name(buf, cap, DNS_ZONE)) == -1 ||
	    (b = dnsrr_name(buf + a, cap - (size_t)a, "hostmaster."
	    DNS_ZONE)) == -1 || (size_t)(a + b + 20) > cap)
		return (-1);
	dnsrr_put32(buf + a + b, serial);
	dnsrr_put32(buf + a + b + 4, 3600);	/* refresh */
	dnsrr_put32(buf + a + b + 8, 600);	/* retry */
	dnsrr_put32(buf + a + b + 12, 86400);	/* expire */
	dnsrr_put32(buf + a + b + 16, 0);	/* minimum: negative TTL */
	return (a + b + 20);
}

/* An address's data: A (4 bytes) or AAAA (16) for a literal, else 0. */
int
dnsrr_addr(const char *host, unsigned char *buf, uint16_t *type)
{
	if (inet_pton(AF_INET, host, buf) == 1) {
		*type = DNS_T_A;
		return (4);
	}
	if (inet_pton(AF_INET6, host, buf) == 1) {
		*type = DNS_T_AAAA;
		return (16);
	}
	return (0);
}

/* --- an answer --- */

void
dnsmsg_init(struct dnsmsg *m)
{
	m->n = 0;
	m->full = 0;
}

/*
 * One more record. Data is raw bytes, or a name when is_name (CNAME),
 * which evdns compresses. Past DNSMSG_MAX records, none more is kept;
 * if it was an answer, the plan sets TC.
 */
int
dnsmsg_add(struct dnsmsg *m, int section, const char *owner, uint16_t type,
    uint32_t ttl, int is_name, const void *data, size_t len)
{
	struct dnsmsg_rr *rr;

	if (m->n == DNSMSG_MAX || strlen(owner) >= sizeof rr->owner ||
	    len > sizeof rr->data || (is_name && len >= sizeof rr->data)) {
		if (section == DNS_SEC_ANSWER)
			m->full = 1;	/* an answer left out: TC */
		return (-1);
	}
	rr = &m->rr[m->n++];
	rr->section = section;
	rr->type = type;
	rr->ttl = ttl;
	rr->is_name = is_name;
	rr->fits = 0;
	memcpy(rr->owner, owner, strlen(owner) + 1);
	memcpy(rr->data, data, len);
	if (is_name)
		rr->data[len] = '\0';
	rr->len = len;
	return (0);
}

/*
 * Is an equal record already there (an RRset holds no duplicates)? Names
 * are equal whatever their case.
 */
int
dnsmsg_has(const struct dnsmsg *m, int section, const char *owner,
    uint16_t type, const void *data, size_t len)
{
	size_t	i;

	for (i = 0; i < m->n; i++) {
		const struct dnsmsg_rr *rr = &m->rr[i];

		if (rr->section == section && rr->type == type &&
		    rr->len == len && memcmp(rr->data, data, len) == 0 &&
		    strcasecmp(rr->owner, owner) == 0)
			return (1);
	}
	return (0);
}

/* The suffixes evdns has written so far in a message, as it keeps them. */
struct dnsmsg_table {
	const char	*v[DNS_TABLE_MAX];
	size_t		 n;
};

/*
 * The bytes evdns writes for name: each label until a suffix it wrote
 * before (then a 2-byte pointer), remembering each new suffix, as its
 * dnsname_to_labels does; with commit 0 the table is left as it was.
 */
static size_t
dnsmsg_name_len(struct dnsmsg_table *t, const char *name, int commit)
{
	size_t	 j = 0, i, n0 = t->n;
	const char *p = name, *dot;

	for (;;) {
		for (i = 0; i < t->n; i++) {
			if (strcmp(t->v[i], p) == 0) {
				if (!commit)
					t->n = n0;
				return (j + 2);
			}
		}
		if (t->n < DNS_TABLE_MAX)
			t->v[t->n++] = p;
		dot = strchr(p, '.');
		j += 1 + (dot != NULL ? (size_t)(dot - p) : strlen(p));
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (!commit)
		t->n = n0;
	return (j + (name[0] != '\0'));	/* the root label, but once */
}

/* The bytes of rr in the message, and its names into t if commit. */
static size_t
dnsmsg_rr_len(struct dnsmsg_table *t, const struct dnsmsg_rr *rr,
    int commit)
{
	size_t	n0 = t->n, len;

	len = dnsmsg_name_len(t, rr->owner, 1) + 10;
	len += rr->is_name ? dnsmsg_name_len(t, (const char *)rr->data, 1) :
	    rr->len;
	if (!commit)
		t->n = n0;
	return (len);
}

/*
 * Mark the records that go out in a message of at most limit bytes to
 * the question qname: the answers in order while they fit (one that
 * does not means TC, and nothing after it); then authority and
 * additional records while they fit, which a reader can do without.
 * Returns 1 if the answer was cut (TC), else 0.
 */
int
dnsmsg_fit(struct dnsmsg *m, const char *qname, size_t limit)
{
	struct dnsmsg_table t = { .n = 0 };
	size_t	i, len, used;
	int	sec, tc = 0;

	used = 12 + dnsmsg_name_len(&t, qname, 1) + 4;
	for (sec = DNS_SEC_ANSWER; sec <= DNS_SEC_ADDITIONAL; sec++) {
		for (i = 0; i < m->n; i++) {
			struct dnsmsg_rr *rr = &m->rr[i];

			if (rr->section != sec)
				continue;
			len = dnsmsg_rr_len(&t, rr, 0);
			if (used + len > limit) {
				if (sec == DNS_SEC_ANSWER)
					tc = 1;
				break;
			}
			(void)dnsmsg_rr_len(&t, rr, 1);
			used += len;
			rr->fits = 1;
		}
		if (sec == DNS_SEC_ANSWER && m->full)
			tc = 1;
		if (tc)
			break;
	}
	return (tc);
}
