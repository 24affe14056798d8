/*
 * check_leasereq.c: unit tests for leasereq.c, the validation of the
 * bodies of POST /v1/services and of renew (docs/api.md): what is
 * accepted, the defaults, and the code of every refusal.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "unit.h"

static int
parse(const char *body, struct lease_req *r, struct berr *e)
{
	memset(e, 0, sizeof *e);
	return (leasereq_parse(body, strlen(body), r, e));
}

/*
 * A full valid body, and the defaults of a minimal one.
 */
START_TEST(test_full)
{
	struct lease_req	r;
	struct berr		e;
	json_t			*meta;

	ck_assert_int_eq(parse("{\"name\":\"api.v2_x-1\",\"port\":50123,"
	    "\"proto\":\"both\",\"host\":\"db.example.com\",\"ttl\":30,"
	    "\"pid\":2,\"meta\":{\"env\":\"dev\",\"a\":\"b\"}}", &r, &e), 0);
	ck_assert_str_eq(r.name, "api.v2_x-1");
	ck_assert_uint_eq(r.port, 50123);
	ck_assert_int_eq(r.proto, PROTO_BOTH);
	ck_assert_str_eq(r.host, "db.example.com");
	ck_assert_uint_eq(r.ttl, 30);
	ck_assert_int_eq(r.has_ttl, 1);
	ck_assert_int_eq(r.pid, 2);
	ck_assert_ptr_nonnull(r.meta);
	meta = json_loads(r.meta, 0, NULL);
	ck_assert_ptr_nonnull(meta);
	ck_assert_uint_eq(json_object_size(meta), 2);
	ck_assert_str_eq(json_string_value(json_object_get(meta, "env")),
	    "dev");
	ck_assert_str_eq(json_string_value(json_object_get(meta, "a")), "b");
	json_decref(meta);
	leasereq_clear(&r);
	ck_assert_ptr_null(r.meta);
}
END_TEST

START_TEST(test_defaults)
{
	struct lease_req	r;
	struct berr		e;

	ck_assert_int_eq(parse("{\"name\":\"api\"}", &r, &e), 0);
	ck_assert_str_eq(r.name, "api");
	ck_assert_uint_eq(r.port, 0);
	ck_assert_int_eq(r.proto, PROTO_TCP);
	ck_assert_str_eq(r.host, "127.0.0.1");
	ck_assert_uint_eq(r.ttl, 0);
	ck_assert_int_eq(r.has_ttl, 0);
	ck_assert_int_eq(r.pid, 0);
	ck_assert_ptr_null(r.meta);
	leasereq_clear(&r);
}
END_TEST

/* Optional fields given as null are as if absent; whitespace is fine. */
START_TEST(test_nulls_and_space)
{
	struct lease_req	r;
	struct berr		e;

	ck_assert_int_eq(parse(" {\n \"name\" : \"web\", \"port\": null, "
	    "\"pid\": null, \"meta\": null }\n", &r, &e), 0);
	ck_assert_str_eq(r.name, "web");
	ck_assert_uint_eq(r.port, 0);
	ck_assert_int_eq(r.pid, 0);
	ck_assert_ptr_null(r.meta);
	leasereq_clear(&r);
}
END_TEST

/* Each protocol, IP hosts, the limits of the ranges. */
START_TEST(test_edges_ok)
{
	struct lease_req	r;
	struct berr		e;

	ck_assert_int_eq(parse("{\"name\":\"a\",\"proto\":\"udp\","
	    "\"host\":\"::1\",\"port\":1,\"ttl\":0}", &r, &e), 0);
	ck_assert_int_eq(r.proto, PROTO_UDP);
	ck_assert_str_eq(r.host, "::1");
	ck_assert_uint_eq(r.port, 1);
	ck_assert_uint_eq(r.ttl, 0);
	ck_assert_int_eq(r.has_ttl, 1);
	leasereq_clear(&r);

	ck_assert_int_eq(parse("{\"name\":\"a\",\"proto\":\"tcp\","
	    "\"host\":\"10.0.0.1\",\"port\":65535,\"ttl\":31536000,"
	    "\"meta\":{}}", &r, &e), 0);
	ck_assert_int_eq(r.proto, PROTO_TCP);
	ck_assert_uint_eq(r.port, 65535);
	ck_assert_uint_eq(r.ttl, BERTH_TTL_MAX);
	leasereq_clear(&r);
}
END_TEST

/* meta: at most 4 KiB encoded. {"k":"vvv..."} is 8 bytes plus the value. */
START_TEST(test_meta_size)
{
	struct lease_req	r;
	struct berr		e;
	char			*body;
	size_t			 vlen;

	body = malloc(BERTH_META_MAX + 64);
	ck_assert_ptr_nonnull(body);
	vlen = BERTH_META_MAX - 8;
	snprintf(body, BERTH_META_MAX + 64, "{\"name\":\"a\",\"meta\":"
	    "{\"k\":\"%*s\"}}", (int)vlen, "");
	ck_assert_int_eq(parse(body, &r, &e), 0);
	ck_assert_uint_eq(strlen(r.meta), BERTH_META_MAX);
	leasereq_clear(&r);

	snprintf(body, BERTH_META_MAX + 64, "{\"name\":\"a\",\"meta\":"
	    "{\"k\":\"%*s\"}}", (int)vlen + 1, "");
	ck_assert_int_eq(parse(body, &r, &e), -1);
	ck_assert_int_eq(e.code, BERR_INVALID_FIELD);
	ck_assert_ptr_null(r.meta);
	free(body);
}
END_TEST

/*
 * Refusals: each body, the code it must get.
 */
struct bad_case {
	const char	*body;
	enum berr_code	 code;
};

static const struct bad_case bad_cases[] = {
	/* Not JSON, or not an object, or ambiguous. */
	{ "", BERR_BAD_JSON },
	{ "{", BERR_BAD_JSON },
	{ "name=api", BERR_BAD_JSON },
	{ "{\"name\":\"a\",}", BERR_BAD_JSON },
	{ "{\"name\":\"a\"} x", BERR_BAD_JSON },
	{ "{\"name\":\"a\"}{}", BERR_BAD_JSON },
	{ "[\"a\"]", BERR_BAD_JSON },
	{ "\"api\"", BERR_BAD_JSON },
	{ "42", BERR_BAD_JSON },
	{ "null", BERR_BAD_JSON },
	{ "{\"name\":\"a\",\"name\":\"b\"}", BERR_BAD_JSON },
	{ "{\"name\":\"a\",\"ttl\":1,\"ttl\":2}", BERR_BAD_JSON },
	/* The name. */
	{ "{}", BERR_INVALID_NAME },
	{ "{\"ttl\":5}", BERR_INVALID_NAME },
	{ "{\"name\":\"\"}", BERR_INVALID_NAME },
	{ "{\"name\":\"Api\"}", BERR_INVALID_NAME },
	{ "{\"name\":\"-a\"}", BERR_INVALID_NAME },
	{ "{\"name\":\"a b\"}", BERR_INVALID_NAME },
	{ "{\"name\":\"a/b\"}", BERR_INVALID_NAME },
	{ "{\"name\":\"\\u00e9\"}", BERR_INVALID_NAME },
	{ "{\"name\":\"a\\u0000b\"}", BERR_INVALID_NAME },
	{ "{\"name\":\"a\\u0000\"}", BERR_INVALID_NAME },
	{ "{\"name\":123}", BERR_INVALID_NAME },
	{ "{\"name\":\"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu"
	    "vwxyz01\"}", BERR_INVALID_NAME },
	/* port */
	{ "{\"name\":\"a\",\"port\":-1}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"port\":65536}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"port\":4294967297}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"port\":\"8080\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"port\":80.5}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"port\":true}", BERR_INVALID_FIELD },
	/* proto */
	{ "{\"name\":\"a\",\"proto\":\"sctp\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"proto\":\"\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"proto\":6}", BERR_INVALID_FIELD },
	/* host */
	{ "{\"name\":\"a\",\"host\":\"\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"host\":\"a b\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"host\":\"a..b\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"host\":\"http://x\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"host\":127}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"host\":\"db\\u0000.evil\"}",
	    BERR_INVALID_FIELD },
	/* ttl */
	{ "{\"name\":\"a\",\"ttl\":-1}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"ttl\":31536001}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"ttl\":\"5\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"ttl\":1.5}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"ttl\":[5]}", BERR_INVALID_FIELD },
	/* pid */
	{ "{\"name\":\"a\",\"pid\":0}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"pid\":1}", BERR_INVALID_FIELD },	/* init */
	{ "{\"name\":\"a\",\"pid\":-5}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"pid\":4294967296}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"pid\":\"123\"}", BERR_INVALID_FIELD },
	/* meta */
	{ "{\"name\":\"a\",\"meta\":\"k=v\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"meta\":[\"k\",\"v\"]}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"meta\":{\"k\":1}}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"meta\":{\"k\":null}}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"meta\":{\"k\":true}}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"meta\":{\"k\":{\"x\":\"y\"}}}",
	    BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"meta\":{\"k\":[\"v\"]}}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"meta\":{\"k\":\"v\\u0000w\"}}",
	    BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"meta\":{\"\":\"v\"}}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"proto\":\"tcp\\u0000x\"}",
	    BERR_INVALID_FIELD },
	/* Unknown fields, typos included. */
	{ "{\"name\":\"a\",\"tll\":5}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"token\":\"x\"}", BERR_INVALID_FIELD },
	{ "{\"name\":\"a\",\"Name\":\"b\"}", BERR_INVALID_FIELD },
};

START_TEST(test_bad)
{
	const struct bad_case	*c = &bad_cases[_i];
	struct lease_req	 r;
	struct berr		 e;

	memset(&r, 0, sizeof r);
	ck_assert_msg(parse(c->body, &r, &e) == -1, "accepted: %s", c->body);
	ck_assert_msg(e.code == c->code, "%s: code %s, want %s", c->body,
	    berr_name(e.code), berr_name(c->code));
	ck_assert_msg(e.message[0] != '\0', "%s: no message", c->body);
	ck_assert_ptr_null(r.meta);
}
END_TEST

/* A meta larger than BERTH_META_MAX from many small keys. */
START_TEST(test_meta_many_keys)
{
	struct lease_req	r;
	struct berr		e;
	char			*body;
	size_t			 len, i;

	body = malloc(16384);
	ck_assert_ptr_nonnull(body);
	len = (size_t)snprintf(body, 16384, "{\"name\":\"a\",\"meta\":{");
	for (i = 0; i < 600; i++)
		len += (size_t)snprintf(body + len, 16384 - len, "%s\"k%zu\":"
		    "\"v\"", i ? "," : "", i);
	snprintf(body + len, 16384 - len, "}}");
	ck_assert_int_eq(parse(body, &r, &e), -1);
	ck_assert_int_eq(e.code, BERR_INVALID_FIELD);
	free(body);
}
END_TEST

/*
 * A NUL in a meta key cannot be stored; the parser may refuse it as
 * bad_json or the check as invalid_field, but it must be a 400.
 */
START_TEST(test_meta_nul_key)
{
	struct lease_req	r;
	struct berr		e;

	ck_assert_int_eq(parse("{\"name\":\"a\",\"meta\":{\"k\\u0000x\":"
	    "\"v\"}}", &r, &e), -1);
	ck_assert(e.code == BERR_BAD_JSON ||
	    e.code == BERR_INVALID_FIELD);
	ck_assert_ptr_null(r.meta);
}
END_TEST

/* The length given is what counts, not a NUL. */
START_TEST(test_length)
{
	struct lease_req	r;
	struct berr		e;
	const char		*body = "{\"name\":\"api\"}garbage";

	ck_assert_int_eq(leasereq_parse(body, 14, &r, &e), 0);
	ck_assert_str_eq(r.name, "api");
	leasereq_clear(&r);
	ck_assert_int_eq(leasereq_parse(body, strlen(body), &r, &e), -1);
	ck_assert_int_eq(e.code, BERR_BAD_JSON);
}
END_TEST

/*
 * The renew body: empty, or {"ttl": S}.
 */
START_TEST(test_renew_ok)
{
	struct berr	e;
	uint32_t	ttl = 77;
	int		has = -1;

	ck_assert_int_eq(leasereq_parse_renew("", 0, &ttl, &has, &e), 0);
	ck_assert_int_eq(has, 0);
	ck_assert_int_eq(leasereq_parse_renew("{}", 2, &ttl, &has, &e), 0);
	ck_assert_int_eq(has, 0);
	ck_assert_int_eq(leasereq_parse_renew("{\"ttl\":5}", 9, &ttl, &has,
	    &e), 0);
	ck_assert_int_eq(has, 1);
	ck_assert_uint_eq(ttl, 5);
	ck_assert_int_eq(leasereq_parse_renew("{\"ttl\":0}", 9, &ttl, &has,
	    &e), 0);
	ck_assert_int_eq(has, 1);
	ck_assert_uint_eq(ttl, 0);
}
END_TEST

static const struct bad_case bad_renews[] = {
	{ "{", BERR_BAD_JSON },
	{ "[]", BERR_BAD_JSON },
	{ "5", BERR_BAD_JSON },
	{ "{\"ttl\":1,\"ttl\":2}", BERR_BAD_JSON },
	{ "{\"ttl\":-1}", BERR_INVALID_FIELD },
	{ "{\"ttl\":31536001}", BERR_INVALID_FIELD },
	{ "{\"ttl\":\"5\"}", BERR_INVALID_FIELD },
	{ "{\"tll\":5}", BERR_INVALID_FIELD },
	{ "{\"ttl\":5,\"name\":\"a\"}", BERR_INVALID_FIELD },
};

START_TEST(test_renew_bad)
{
	const struct bad_case	*c = &bad_renews[_i];
	struct berr		 e;
	uint32_t		 ttl = 0;
	int			 has;

	memset(&e, 0, sizeof e);
	ck_assert_msg(leasereq_parse_renew(c->body, strlen(c->body), &ttl,
	    &has, &e) == -1, "accepted: %s", c->body);
	ck_assert_msg(e.code == c->code, "%s: code %s, want %s", c->body,
	    berr_name(e.code), berr_name(c->code));
}
END_TEST

START_TEST(test_berr_set)
{
	struct berr	e;

	berr_set(&e, BERR_NAME_TAKEN, "'%s' is held on port %u", "api",
	    50000u);
	ck_assert_int_eq(e.code, BERR_NAME_TAKEN);
	ck_assert_str_eq(e.message, "'api' is held on port 50000");
	/* The API's names of the codes (docs/api.md, "Errors"). */
	ck_assert_str_eq(berr_name(BERR_NAME_TAKEN), "name_taken");
	ck_assert_str_eq(berr_name(BERR_POOL_EXHAUSTED), "pool_exhausted");
	ck_assert_str_eq(berr_name(BERR_NOMEM), "internal");
	ck_assert_str_eq(berr_name(BERR_COUNT), "internal");
}
END_TEST

#define NELEM(a)	(sizeof (a) / sizeof (a)[0])

static Suite *
leasereq_suite(void)
{
	Suite	*s = suite_create("leasereq");
	TCase	*tc;

	tc = tcase_create("acquire");
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_nulls_and_space);
	tcase_add_test(tc, test_edges_ok);
	tcase_add_test(tc, test_meta_size);
	tcase_add_loop_test(tc, test_bad, 0, NELEM(bad_cases));
	tcase_add_test(tc, test_meta_many_keys);
	tcase_add_test(tc, test_meta_nul_key);
	tcase_add_test(tc, test_length);
	tcase_add_test(tc, test_berr_set);
	suite_add_tcase(s, tc);

	tc = tcase_create("renew");
	tcase_add_test(tc, test_renew_ok);
	tcase_add_loop_test(tc, test_renew_bad, 0, NELEM(bad_renews));
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(leasereq_suite()));
}
