/*
 * check_ready.c: unit tests for ready.c's rules of which hosts berthd
 * reads and which sockets serve them (docs/api.md, "ready"): a socket on
 * the host's address or its family's wildcard, :: for IPv4 hosts too
 * (dual-stack), IPv4-mapped addresses as IPv4, "localhost" on either
 * loopback. No sockets: the addresses are given as the tables give them.
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "unit.h"

/* Does a socket bound to addr (text, as inet_pton reads it) serve host? */
static int
serves(const char *host, const char *addr)
{
	struct ready_host	h;
	unsigned char		a[16];
	int			family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	memset(a, 0, sizeof a);
	ck_assert_int_eq(inet_pton(family, addr, a), 1);
	ready_parse_host(host, &h);
	return (ready_serves(&h, family, a));
}

START_TEST(test_parse_host)
{
	static const struct {
		const char		*host;
		enum ready_host_kind	 kind;
	} cases[] = {
		{ "127.0.0.1", READY_HOST_V4 },
		{ "10.1.2.3", READY_HOST_V4 },
		{ "::ffff:127.0.0.1", READY_HOST_V4 },
		{ "::1", READY_HOST_V6 },
		{ "fe80::1", READY_HOST_V6 },
		{ "0.0.0.0", READY_HOST_ANY },
		{ "::", READY_HOST_ANY },
		{ "localhost", READY_HOST_LOCALHOST },
		{ "LocalHost", READY_HOST_LOCALHOST },
		{ "db.example", READY_HOST_NAME },
		{ "localhost.example", READY_HOST_NAME },
	};
	struct ready_host	h;
	size_t			i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ready_parse_host(cases[i].host, &h);
		ck_assert_msg(h.kind == cases[i].kind, "%s: kind %d, want %d",
		    cases[i].host, h.kind, cases[i].kind);
	}
	ready_parse_host("::ffff:10.0.0.7", &h);
	ck_assert_int_eq(h.addr[0], 10);
	ck_assert_int_eq(h.addr[3], 7);
	ready_parse_host(NULL, &h);		/* the default host */
	ck_assert_int_eq(h.kind, READY_HOST_V4);
}
END_TEST

START_TEST(test_serves_ipv4_host)
{
	ck_assert(serves("127.0.0.1", "127.0.0.1"));
	ck_assert(serves("127.0.0.1", "0.0.0.0"));
	ck_assert(serves("127.0.0.1", "::"));		/* dual-stack */
	ck_assert(serves("127.0.0.1", "::ffff:127.0.0.1"));
	ck_assert(!serves("127.0.0.1", "127.0.0.2"));
	ck_assert(!serves("127.0.0.1", "::1"));
	ck_assert(!serves("127.0.0.1", "::ffff:127.0.0.2"));
	ck_assert(serves("::ffff:127.0.0.1", "127.0.0.1"));
	ck_assert(serves("10.1.2.3", "10.1.2.3"));
	ck_assert(!serves("10.1.2.3", "127.0.0.1"));
}
END_TEST

START_TEST(test_serves_ipv6_host)
{
	ck_assert(serves("::1", "::1"));
	ck_assert(serves("::1", "::"));
	ck_assert(!serves("::1", "0.0.0.0"));		/* takes no IPv6 */
	ck_assert(!serves("::1", "127.0.0.1"));
	ck_assert(!serves("::1", "fe80::1"));
	ck_assert(!serves("::1", "::ffff:0.0.0.0"));
}
END_TEST

START_TEST(test_serves_names_and_wildcards)
{
	ck_assert(serves("localhost", "127.0.0.1"));
	ck_assert(serves("localhost", "::1"));
	ck_assert(serves("localhost", "0.0.0.0"));
	ck_assert(serves("localhost", "::"));
	ck_assert(!serves("localhost", "127.0.0.2"));
	ck_assert(!serves("localhost", "10.1.2.3"));
	ck_assert(serves("0.0.0.0", "10.1.2.3"));
	ck_assert(serves("::", "::1"));
	ck_assert(!serves("db.example", "0.0.0.0"));
	ck_assert(!serves("db.example", "::"));
}
END_TEST

static Suite *
ready_suite(void)
{
	Suite	*s = suite_create("ready");
	TCase	*tc = tcase_create("hosts");

	tcase_add_test(tc, test_parse_host);
	tcase_add_test(tc, test_serves_ipv4_host);
	tcase_add_test(tc, test_serves_ipv6_host);
	tcase_add_test(tc, test_serves_names_and_wildcards);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(ready_suite()));
}
