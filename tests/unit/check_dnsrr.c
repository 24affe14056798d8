/*
 * check_dnsrr.c: unit tests for dnsrr.c: which name of the berth. zone a
 * question asks for, the SRV, TXT and SOA data byte for byte, and the
 * plan that keeps an answer whole within 512 bytes (sizes worked out by
 * hand with evdns's compression).
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "core.h"
#include "unit.h"

static struct dnsmsg	m;

static void
parse(const char *q, enum dnsname_kind kind, const char *name, int proto)
{
	struct dnsname	dn;

	dnsname_parse(q, &dn);
	ck_assert_msg(dn.kind == kind, "%s: kind %d, want %d", q, dn.kind,
	    kind);
	if (name != NULL)
		ck_assert_str_eq(dn.name, name);
	if (proto != 0)
		ck_assert_int_eq(dn.proto, proto);
}

START_TEST(test_parse_kinds)
{
	parse("api.berth", DNSN_LOCAL, "api", 0);
	parse("API.Berth", DNSN_LOCAL, "api", 0);
	parse("api.v2.berth", DNSN_LOCAL, "api.v2", 0);
	parse("berth", DNSN_APEX, NULL, 0);
	parse("BERTH", DNSN_APEX, NULL, 0);
	parse("_api._tcp.berth", DNSN_SRV, "api", PROTO_TCP);
	parse("_api._UDP.berth", DNSN_SRV, "api", PROTO_UDP);
	parse("web.cluster.berth", DNSN_CLUSTER, "web", 0);
	parse("n1.node.berth", DNSN_NODE, "n1", 0);
	parse("cluster.berth", DNSN_EMPTY, NULL, 0);
	parse("node.berth", DNSN_EMPTY, NULL, 0);
	/* the zone's suffix forms win over a lease of that name */
	parse("db.node.berth", DNSN_NODE, "db", 0);
}
END_TEST

/* HEX.addr.berth: an address spelled in hex, and back. */
START_TEST(test_addr_names)
{
	struct dnsname	dn;
	char		name[80];

	dnsname_parse("7F000009.addr.berth", &dn);
	ck_assert_int_eq(dn.kind, DNSN_ADDR);
	ck_assert_int_eq(dn.addrlen, 4);
	ck_assert_mem_eq(dn.addr, "\177\0\0\011", 4);
	dnsname_parse("000000000000000000000000000000ff.addr.berth", &dn);
	ck_assert_int_eq(dn.kind, DNSN_ADDR);
	ck_assert_int_eq(dn.addrlen, 16);
	ck_assert_int_eq(dn.addr[15], 0xff);
	parse("7f00009.addr.berth", DNSN_NONE, NULL, 0);
	parse("7f00000g.addr.berth", DNSN_NONE, NULL, 0);
	ck_assert_int_eq(dnsname_of_addr("127.0.0.9", name, sizeof name), 0);
	ck_assert_str_eq(name, "7f000009.addr.berth");
	ck_assert_int_eq(dnsname_of_addr("::1", name, sizeof name), 0);
	ck_assert_str_eq(name, "00000000000000000000000000000001.addr.berth");
	ck_assert_int_eq(dnsname_of_addr("db.example", name, sizeof name), -1);
	ck_assert_int_eq(dnsname_of_addr("::1", name, 40), -1);
}
END_TEST

START_TEST(test_parse_outside_and_none)
{
	parse("example.com", DNSN_OUTSIDE, NULL, 0);
	parse("xberth", DNSN_OUTSIDE, NULL, 0);
	parse("berth.com", DNSN_OUTSIDE, NULL, 0);
	parse("", DNSN_OUTSIDE, NULL, 0);
	parse("-api.berth", DNSN_NONE, NULL, 0);
	parse("_api.berth", DNSN_NONE, NULL, 0);
	parse("_api._sctp.berth", DNSN_NONE, NULL, 0);
	parse("__api._tcp.berth", DNSN_NONE, NULL, 0);
	parse("_tcp.berth", DNSN_NONE, NULL, 0);
	parse("a b.berth", DNSN_NONE, NULL, 0);
	parse(".cluster.berth", DNSN_NONE, NULL, 0);
	parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".berth", DNSN_NONE, NULL, 0);	/* 64 characters */
}
END_TEST

START_TEST(test_writable)
{
	ck_assert(dnsname_writable("api.berth"));
	ck_assert(dnsname_writable(""));
	ck_assert(!dnsname_writable("a..berth"));
	ck_assert(!dnsname_writable(".berth"));
	ck_assert(!dnsname_writable("api.berth."));
}
END_TEST

START_TEST(test_srv_bytes)
{
	unsigned char	buf[64];
	static const unsigned char want[] = {
		0, 1, 0, 2, 0xee, 0x48,
		3, 'a', 'p', 'i', 5, 'b', 'e', 'r', 't', 'h', 0
	};

	ck_assert_int_eq(dnsrr_srv(buf, sizeof buf, 1, 2, 61000, "api.berth"),
	    sizeof want);
	ck_assert_mem_eq(buf, want, sizeof want);
	ck_assert_int_eq(dnsrr_srv(buf, 10, 0, 0, 1, "api.berth"), -1);
	ck_assert_int_eq(dnsrr_srv(buf, sizeof buf, 0, 0, 1, "a..b"), -1);
}
END_TEST

START_TEST(test_txt_bytes)
{
	unsigned char	buf[1200];
	char		value[600];
	int		n;

	ck_assert_int_eq(dnsrr_txt(buf, sizeof buf, "team", "core"), 10);
	ck_assert_mem_eq(buf, "\011team=core", 10);
	/* RFC 1464: '=' and '`' in a key are quoted with '`' */
	ck_assert_int_eq(dnsrr_txt(buf, sizeof buf, "a=b`", ""), 8);
	ck_assert_mem_eq(buf, "\007a`=b``=", 8);
	/* 2 + 1 + 597 = 600 bytes of text: strings of 255, 255 and 90 */
	memset(value, 'x', 597);
	value[597] = '\0';
	n = dnsrr_txt(buf, sizeof buf, "kk", value);
	ck_assert_int_eq(n, 603);
	ck_assert_int_eq(buf[0], 255);
	ck_assert_mem_eq(buf + 1, "kk=x", 4);
	ck_assert_int_eq(buf[256], 255);
	ck_assert_int_eq(buf[512], 90);
	ck_assert_int_eq(dnsrr_txt(buf, 100, "kk", value), -1);
}
END_TEST

START_TEST(test_soa_bytes)
{
	unsigned char	buf[128];
	int		n;

	n = dnsrr_soa(buf, sizeof buf, 0x01020304);
	/* "berth" 7, "hostmaster.berth" 18, five 32-bit numbers */
	ck_assert_int_eq(n, 7 + 18 + 20);
	ck_assert_mem_eq(buf, "\005berth\000\012hostmaster\005berth\000", 25);
	ck_assert_mem_eq(buf + 25, "\001\002\003\004", 4);
	ck_assert_mem_eq(buf + 41, "\0\0\0\0", 4);	/* negative TTL 0 */
	ck_assert_int_eq(dnsrr_soa(buf, 30, 1), -1);
}
END_TEST

START_TEST(test_addr)
{
	unsigned char	a[16];
	uint16_t	type;

	ck_assert_int_eq(dnsrr_addr("10.1.2.3", a, &type), 4);
	ck_assert_int_eq(type, DNS_T_A);
	ck_assert_mem_eq(a, "\012\001\002\003", 4);
	ck_assert_int_eq(dnsrr_addr("::1", a, &type), 16);
	ck_assert_int_eq(type, DNS_T_AAAA);
	ck_assert_int_eq(a[15], 1);
	ck_assert_int_eq(dnsrr_addr("db.example", a, &type), 0);
}
END_TEST

static void
add(int section, const char *owner, uint16_t type, size_t len)
{
	unsigned char	data[DNS_UDP_MAX];

	memset(data, 'd', sizeof data);
	ck_assert_int_eq(dnsmsg_add(&m, section, owner, type, 0, 0, data, len),
	    0);
}

/*
 * Question "web.berth" (12 + 11 + 4 = 27 bytes). Each A record owned
 * by the question's name is a pointer (2) + 10 + 4 = 16 bytes: 30 fit
 * (507), the 31st would make 523.
 */
START_TEST(test_fit_cuts_whole_answers)
{
	size_t	i, fit = 0;

	dnsmsg_init(&m);
	for (i = 0; i < 40; i++)
		add(DNS_SEC_ANSWER, "web.berth", DNS_T_A, 4);
	ck_assert_int_eq(dnsmsg_fit(&m, "web.berth", DNS_UDP_MAX), 1);
	for (i = 0; i < m.n; i++)
		fit += m.rr[i].fits;
	ck_assert_int_eq(fit, 30);
	ck_assert(m.rr[29].fits && !m.rr[30].fits);
}
END_TEST

/*
 * Additional records that do not fit are left out without TC; the
 * first owner "a.node.berth" costs 1+1 + 1+4 + pointer to "berth" = 9.
 */
START_TEST(test_fit_additional_quietly)
{
	dnsmsg_init(&m);
	add(DNS_SEC_ANSWER, "web.cluster.berth", DNS_T_SRV, 20);
	add(DNS_SEC_ADDITIONAL, "a.node.berth", DNS_T_A, 4);
	add(DNS_SEC_ADDITIONAL, "b.node.berth", DNS_T_A, 400);
	/* 12 + 19 + 4 = 35; answer 2 + 10 + 20 = 32; a: 9 + 10 + 4 = 23 */
	ck_assert_int_eq(dnsmsg_fit(&m, "web.cluster.berth", 90), 0);
	ck_assert(m.rr[0].fits && m.rr[1].fits && !m.rr[2].fits);
	dnsmsg_init(&m);
	add(DNS_SEC_ANSWER, "web.cluster.berth", DNS_T_SRV, 20);
	add(DNS_SEC_ADDITIONAL, "a.node.berth", DNS_T_A, 4);
	/* exactly 90 fits; 89 does not, and drops only the additional */
	ck_assert_int_eq(dnsmsg_fit(&m, "web.cluster.berth", 89), 0);
	ck_assert(m.rr[0].fits && !m.rr[1].fits);
}
END_TEST

/* Compression is by exact suffix, as evdns compares with strcmp. */
START_TEST(test_fit_case_matters)
{
	dnsmsg_init(&m);
	add(DNS_SEC_ANSWER, "WEB.berth", DNS_T_A, 4);
	add(DNS_SEC_ANSWER, "web.berth", DNS_T_A, 4);
	/* 12 + 11 + 4 = 27; "WEB.berth": 2 + 10 + 4; "web.berth": 4+2+14 */
	ck_assert_int_eq(dnsmsg_fit(&m, "WEB.berth", 63), 0);
	ck_assert(m.rr[1].fits);
	dnsmsg_init(&m);
	add(DNS_SEC_ANSWER, "WEB.berth", DNS_T_A, 4);
	add(DNS_SEC_ANSWER, "web.berth", DNS_T_A, 4);
	ck_assert_int_eq(dnsmsg_fit(&m, "WEB.berth", 62), 1);
	ck_assert(m.rr[0].fits && !m.rr[1].fits);
}
END_TEST

/* More answers than the message holds: TC, even when those held fit. */
START_TEST(test_fit_full_means_tc)
{
	unsigned char	d[4] = { 1, 2, 3, 4 };
	size_t		i;

	dnsmsg_init(&m);
	for (i = 0; i < DNSMSG_MAX; i++)
		ck_assert_int_eq(dnsmsg_add(&m, DNS_SEC_ANSWER, "x.berth",
		    DNS_T_A, 0, 0, d, 4), 0);
	ck_assert_int_eq(dnsmsg_add(&m, DNS_SEC_ANSWER, "x.berth", DNS_T_A, 0,
	    0, d, 4), -1);
	ck_assert_int_eq(dnsmsg_fit(&m, "x.berth", 65535), 1);
	ck_assert(dnsmsg_has(&m, DNS_SEC_ANSWER, "x.berth", DNS_T_A, d, 4));
	ck_assert(!dnsmsg_has(&m, DNS_SEC_ADDITIONAL, "x.berth", DNS_T_A, d,
	    4));
}
END_TEST

static Suite *
dnsrr_suite(void)
{
	Suite	*s = suite_create("dnsrr");
	TCase	*tc = tcase_create("dnsrr");

	tcase_add_test(tc, test_parse_kinds);
	tcase_add_test(tc, test_parse_outside_and_none);
	tcase_add_test(tc, test_addr_names);
	tcase_add_test(tc, test_writable);
	tcase_add_test(tc, test_srv_bytes);
	tcase_add_test(tc, test_txt_bytes);
	tcase_add_test(tc, test_soa_bytes);
	tcase_add_test(tc, test_addr);
	tcase_add_test(tc, test_fit_cuts_whole_answers);
	tcase_add_test(tc, test_fit_additional_quietly);
	tcase_add_test(tc, test_fit_case_matters);
	tcase_add_test(tc, test_fit_full_means_tc);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(dnsrr_suite()));
}
