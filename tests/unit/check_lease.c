/*
 * check_lease.c: unit tests for lease.c: name and host rules (docs/api.md),
 * protocols, expiry, the JSON form of a lease, and the registry's three
 * indexes (name, port, expiry heap) and its sticky-port memos.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "unit.h"

/* struct registry is large (a pointer per port): never on the stack. */
static struct registry	reg;

static struct lease *
mklease(const char *name, uint16_t port, uint64_t expires_at)
{
	struct lease	*l;

	l = lease_new();
	ck_assert_ptr_nonnull(l);
	snprintf(l->name, sizeof l->name, "%s", name);
	l->port = port;
	l->expires_at = expires_at;
	return (l);
}

static void
reg_setup(void)
{
	ck_assert_int_eq(registry_init(&reg), 0);
}

static void
reg_teardown(void)
{
	registry_free(&reg);
}

/*
 * lease_name_valid: 1-63 characters, [a-z0-9] first, then [a-z0-9._-].
 */
static const char *const good_names[] = {
	"a", "api", "0x", "a.b_c-d", "9", "web-1", "a-", "a.",
	"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0",
};

static const char *const bad_names[] = {
	"", "A", "Api", "aPi", "-a", ".a", "_a", "a b", "a/b", " a", "a\n",
	"a:b", "a@b", "a+b", "\xc3\xa9", "a\xc3\xa9",
	"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01",
};

START_TEST(test_name_valid)
{
	ck_assert_msg(names_valid(good_names[_i]), "'%s' refused",
	    good_names[_i]);
}
END_TEST

START_TEST(test_name_invalid)
{
	ck_assert_msg(!names_valid(bad_names[_i]), "'%s' accepted",
	    bad_names[_i]);
}
END_TEST

START_TEST(test_name_lengths)
{
	char	buf[128];

	ck_assert_uint_eq(strlen(good_names[8]), 63);
	ck_assert_uint_eq(strlen(bad_names[16]), 64);
	memset(buf, 'x', sizeof buf);
	buf[BERTH_NAME_MAX] = '\0';
	ck_assert(names_valid(buf));
	buf[BERTH_NAME_MAX] = 'x';
	buf[BERTH_NAME_MAX + 1] = '\0';
	ck_assert(!names_valid(buf));
	ck_assert(!names_valid(NULL));
}
END_TEST

/*
 * lease_host_valid: an IP literal or a DNS name of at most 253
 * characters, labels of 1-63.
 */
static const char *const good_hosts[] = {
	"127.0.0.1", "::1", "10.1.2.3", "fe80::1", "localhost",
	"db.example.com", "host-1.local", "A.B.C",
};

static const char *const bad_hosts[] = {
	"", "a..b", ".a", "a b", "a_b", "a/b", "http://a", "a:80", "[::1]",
	"a\n", "h\xc3\xa9",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
};

START_TEST(test_host_valid)
{
	ck_assert_msg(lease_host_valid(good_hosts[_i]), "'%s' refused",
	    good_hosts[_i]);
}
END_TEST

START_TEST(test_host_invalid)
{
	ck_assert_msg(!lease_host_valid(bad_hosts[_i]), "'%s' accepted",
	    bad_hosts[_i]);
}
END_TEST

START_TEST(test_host_lengths)
{
	char	buf[300];
	size_t	i;

	/* 63-character labels are fine, a 64-character one is not. */
	memset(buf, 'a', 63);
	buf[63] = '\0';
	ck_assert(lease_host_valid(buf));
	memset(buf, 'a', 64);
	buf[64] = '\0';
	ck_assert(!lease_host_valid(buf));
	/* 253 characters in all, no more. */
	for (i = 0; i < BERTH_HOST_MAX; i++)
		buf[i] = i % 2 ? '.' : 'a';
	buf[BERTH_HOST_MAX] = '\0';
	ck_assert(lease_host_valid(buf));
	buf[BERTH_HOST_MAX] = 'a';
	buf[BERTH_HOST_MAX + 1] = '\0';
	ck_assert(!lease_host_valid(buf));
	ck_assert(!lease_host_valid(NULL));
}
END_TEST

/* Protocol names, both ways. */
START_TEST(test_proto)
{
	ck_assert_int_eq(lease_proto_parse("tcp"), PROTO_TCP);
	ck_assert_int_eq(lease_proto_parse("udp"), PROTO_UDP);
	ck_assert_int_eq(lease_proto_parse("both"), PROTO_BOTH);
	ck_assert_int_eq(lease_proto_parse(""), -1);
	ck_assert_int_eq(lease_proto_parse("sctp"), -1);
	ck_assert_int_eq(lease_proto_parse("tcp "), -1);
	ck_assert_int_eq(lease_proto_parse("tc"), -1);
	ck_assert_str_eq(lease_proto_name(PROTO_TCP), "tcp");
	ck_assert_str_eq(lease_proto_name(PROTO_UDP), "udp");
	ck_assert_str_eq(lease_proto_name(PROTO_BOTH), "both");
	ck_assert_int_eq(lease_proto_parse(lease_proto_name(PROTO_UDP)),
	    PROTO_UDP);
}
END_TEST

START_TEST(test_state_names)
{
	ck_assert_str_eq(lease_state_name(LEASE_LIVE), "live");
	ck_assert_str_eq(lease_state_name(LEASE_RELEASED), "released");
	ck_assert_str_eq(lease_state_name(LEASE_EXPIRED), "expired");
	ck_assert_str_eq(lease_state_name(LEASE_OWNER_DEAD), "owner_dead");
	ck_assert_str_eq(lease_state_name(LEASE_REVOKED), "revoked");
	ck_assert_str_eq(lease_state_name(LEASE_TAKEN_OVER), "taken_over");
}
END_TEST

/* Expiry against a frozen clock: due at expires_at, never when 0. */
START_TEST(test_expired)
{
	struct lease	*l;

	clock_set_fake(1700000000000ULL);
	l = mklease("a", 100, clock_now_ms() + 10000);
	ck_assert(!lease_expired(l, clock_now_ms()));
	clock_advance(9999);
	ck_assert(!lease_expired(l, clock_now_ms()));
	clock_advance(1);
	ck_assert(lease_expired(l, clock_now_ms()));
	clock_advance(1000);
	ck_assert(lease_expired(l, clock_now_ms()));
	l->expires_at = 0;
	ck_assert(!lease_expired(l, clock_now_ms()));
	ck_assert(!lease_expired(l, UINT64_MAX));
	lease_free(l);
	clock_use_real();
}
END_TEST

START_TEST(test_new_defaults)
{
	struct lease	*l;

	l = lease_new();
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(l->proto, PROTO_TCP);
	ck_assert_int_eq(l->state, LEASE_LIVE);
	ck_assert_uint_eq(l->heap_index, SIZE_MAX);
	ck_assert_uint_eq(l->expires_at, 0);
	lease_free(l);
	lease_free(NULL);
}
END_TEST

/*
 * lease_to_json: every field of the lease object (docs/api.md), times as
 * RFC 3339 UTC, and the token only when asked for.
 */
START_TEST(test_json_full)
{
	struct lease	*l;
	json_t		*o, *meta;

	l = mklease("api", 50123, 1700000030000ULL);
	l->proto = PROTO_UDP;
	l->host = strdup("::1");
	l->meta = strdup("{\"env\":\"dev\",\"k\":\"v\"}");
	l->ttl = 30;
	l->created_at = 1700000000000ULL;
	l->renewed_at = 1700000000500ULL;
	l->owner.pid = 4242;
	snprintf(l->token, sizeof l->token, "%s",
	    "0123456789abcdef0123456789abcdef");

	o = lease_to_json(l, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "name")), "api");
	ck_assert(json_is_integer(json_object_get(o, "port")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "port")),
	    50123);
	ck_assert_str_eq(json_string_value(json_object_get(o, "proto")),
	    "udp");
	ck_assert_str_eq(json_string_value(json_object_get(o, "host")), "::1");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "ttl")), 30);
	ck_assert_str_eq(json_string_value(json_object_get(o, "expires_at")),
	    "2023-11-14T22:13:50.000Z");
	ck_assert_str_eq(json_string_value(json_object_get(o, "created_at")),
	    "2023-11-14T22:13:20.000Z");
	ck_assert_str_eq(json_string_value(json_object_get(o, "renewed_at")),
	    "2023-11-14T22:13:20.500Z");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "pid")), 4242);
	meta = json_object_get(o, "meta");
	ck_assert(json_is_object(meta));
	ck_assert_uint_eq(json_object_size(meta), 2);
	ck_assert_str_eq(json_string_value(json_object_get(meta, "env")),
	    "dev");
	ck_assert_str_eq(json_string_value(json_object_get(meta, "k")), "v");
	ck_assert_ptr_null(json_object_get(o, "token"));
	/* The creator's uid; unknown is null. */
	ck_assert(json_is_null(json_object_get(o, "uid")));
	ck_assert(json_is_false(json_object_get(o, "ready")));
	/* Published to the cluster: not unless asked. */
	ck_assert(json_is_false(json_object_get(o, "publish")));
	ck_assert_uint_eq(json_object_size(o), 13);
	json_decref(o);
	l->uid = 1000;
	l->ready = LEASE_READY;
	o = lease_to_json(l, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "uid")), 1000);
	ck_assert(json_is_true(json_object_get(o, "ready")));
	json_decref(o);
	l->ready = LEASE_READY_UNKNOWN;
	o = lease_to_json(l, 0);
	ck_assert(json_is_null(json_object_get(o, "ready")));
	json_decref(o);
	l->publish = 1;
	o = lease_to_json(l, 0);
	ck_assert(json_is_true(json_object_get(o, "publish")));
	json_decref(o);

	o = lease_to_json(l, 1);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "token")),
	    l->token);
	ck_assert_uint_eq(json_object_size(o), 14);
	json_decref(o);
	lease_free(l);
}
END_TEST

/* Nothing optional set: nulls, the default host, an empty meta. */
/*
 * lease_json_text is a cache: the same bytes as lease_to_json without the
 * token, plus a newline, rebuilt after lease_json_forget.
 */
START_TEST(test_json_text_cache)
{
	struct lease	*l = mklease("cached", 50200, 0);
	const char	*t1, *t2;
	json_t		*o;
	size_t		 len;

	l->host = strdup("127.0.0.1");
	snprintf(l->token, sizeof l->token, "%s",
	    "0123456789abcdef0123456789abcdef");
	t1 = lease_json_text(l, &len);
	ck_assert_ptr_nonnull(t1);
	ck_assert_uint_eq(len, strlen(t1));
	ck_assert_int_eq(t1[len - 1], '\n');
	ck_assert_ptr_null(strstr(t1, "0123456789abcdef"));
	o = json_loads(t1, 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "ttl")), 0);
	json_decref(o);
	ck_assert_ptr_eq(lease_json_text(l, &len), t1);
	l->ttl = 42;
	lease_json_forget(l);
	t2 = lease_json_text(l, &len);
	o = json_loads(t2, 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "ttl")), 42);
	json_decref(o);
	lease_free(l);
}
END_TEST

START_TEST(test_json_defaults)
{
	struct lease	*l;
	json_t		*o;

	l = mklease("web", 50000, 0);
	l->created_at = l->renewed_at = 1700000000000ULL;
	o = lease_to_json(l, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "proto")),
	    "tcp");
	ck_assert_str_eq(json_string_value(json_object_get(o, "host")),
	    "127.0.0.1");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "ttl")), 0);
	ck_assert(json_is_null(json_object_get(o, "expires_at")));
	ck_assert(json_is_null(json_object_get(o, "pid")));
	ck_assert(json_is_object(json_object_get(o, "meta")));
	ck_assert_uint_eq(json_object_size(json_object_get(o, "meta")), 0);
	ck_assert_ptr_null(json_object_get(o, "token"));
	json_decref(o);
	lease_free(l);
}
END_TEST

/*
 * Registry by name and by port.
 */
START_TEST(test_registry_basic)
{
	struct lease	*a, *b;

	a = mklease("a", 100, 0);
	b = mklease("b", 200, 0);
	ck_assert_ptr_null(registry_find(&reg, "a"));
	registry_add(&reg, a);
	registry_add(&reg, b);
	ck_assert_uint_eq(registry_count(&reg), 2);
	ck_assert_ptr_eq(registry_find(&reg, "a"), a);
	ck_assert_ptr_eq(registry_find(&reg, "b"), b);
	ck_assert_ptr_null(registry_find(&reg, "c"));
	ck_assert_ptr_eq(registry_by_port(&reg, 100), a);
	ck_assert_ptr_eq(registry_by_port(&reg, 200), b);
	ck_assert_ptr_null(registry_by_port(&reg, 300));
	ck_assert_ptr_eq(TAILQ_FIRST(&reg.all), a);

	registry_remove(&reg, a);
	ck_assert_uint_eq(registry_count(&reg), 1);
	ck_assert_ptr_null(registry_find(&reg, "a"));
	ck_assert_ptr_null(registry_by_port(&reg, 100));
	ck_assert_ptr_eq(registry_find(&reg, "b"), b);
	ck_assert_ptr_eq(TAILQ_FIRST(&reg.all), b);
	lease_free(a);

	/* The name and the port can be used again. */
	a = mklease("a", 100, 0);
	registry_add(&reg, a);
	ck_assert_ptr_eq(registry_find(&reg, "a"), a);
	ck_assert_ptr_eq(registry_by_port(&reg, 100), a);
}
END_TEST

/* Past the initial 64 buckets: 1000 leases, all found, then half gone. */
START_TEST(test_registry_growth)
{
	struct lease	*l;
	char		 name[32];
	int		 i;

	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "svc-%d", i);
		registry_add(&reg, mklease(name, (uint16_t)(10000 + i), 0));
	}
	ck_assert_uint_eq(registry_count(&reg), 1000);
	ck_assert_uint_ge(reg.names.nbuckets, 1000);
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "svc-%d", i);
		l = registry_find(&reg, name);
		ck_assert_msg(l != NULL, "%s lost", name);
		ck_assert_str_eq(l->name, name);
		ck_assert_uint_eq(l->port, 10000 + i);
		ck_assert_ptr_eq(registry_by_port(&reg, (uint16_t)(10000 + i)),
		    l);
	}
	for (i = 0; i < 1000; i += 2) {
		snprintf(name, sizeof name, "svc-%d", i);
		l = registry_find(&reg, name);
		registry_remove(&reg, l);
		lease_free(l);
	}
	ck_assert_uint_eq(registry_count(&reg), 500);
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "svc-%d", i);
		l = registry_find(&reg, name);
		if (i % 2 == 0) {
			ck_assert_ptr_null(l);
			ck_assert_ptr_null(registry_by_port(&reg,
			    (uint16_t)(10000 + i)));
		} else
			ck_assert_msg(l != NULL, "%s lost", name);
	}
}
END_TEST

/*
 * The expiry heap: its top is always the earliest expires_at; leases
 * without a TTL stay out of it.
 */
START_TEST(test_heap_order)
{
	static const uint64_t	 exp[] = { 500, 300, 800, 100, 900, 200, 700,
	    100, 600, 400 };
	struct lease		*l;
	uint64_t		 min = UINT64_MAX, last;
	char			 name[32];
	size_t			 i, n = sizeof exp / sizeof exp[0];

	ck_assert_ptr_null(registry_heap_top(&reg));
	registry_add(&reg, mklease("forever", 99, 0));
	ck_assert_ptr_null(registry_heap_top(&reg));
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof name, "l%zu", i);
		registry_add(&reg, mklease(name, (uint16_t)(100 + i), exp[i]));
		if (exp[i] < min)
			min = exp[i];
		ck_assert_ptr_nonnull(registry_heap_top(&reg));
		ck_assert_uint_eq(registry_heap_top(&reg)->expires_at, min);
	}
	ck_assert_uint_eq(reg.heap_len, n);
	/* Taking the top again and again gives the leases in order. */
	last = 0;
	for (i = 0; i < n; i++) {
		l = registry_heap_top(&reg);
		ck_assert_ptr_nonnull(l);
		ck_assert_uint_ge(l->expires_at, last);
		last = l->expires_at;
		registry_remove(&reg, l);
		lease_free(l);
	}
	ck_assert_ptr_null(registry_heap_top(&reg));
	ck_assert_ptr_nonnull(registry_find(&reg, "forever"));
}
END_TEST

START_TEST(test_heap_update)
{
	struct lease	*a, *b, *c, *d;

	a = mklease("a", 1, 100);
	b = mklease("b", 2, 200);
	c = mklease("c", 3, 300);
	d = mklease("d", 4, 0);
	registry_add(&reg, a);
	registry_add(&reg, b);
	registry_add(&reg, c);
	registry_add(&reg, d);
	ck_assert_ptr_eq(registry_heap_top(&reg), a);

	/* A renew pushes a back: b is next. */
	a->expires_at = 1000;
	registry_heap_update(&reg, a);
	ck_assert_ptr_eq(registry_heap_top(&reg), b);

	/* Moving c forward puts it first. */
	c->expires_at = 50;
	registry_heap_update(&reg, c);
	ck_assert_ptr_eq(registry_heap_top(&reg), c);

	/* Given a TTL, d joins the heap; losing it, it leaves. */
	d->expires_at = 10;
	registry_heap_update(&reg, d);
	ck_assert_ptr_eq(registry_heap_top(&reg), d);
	ck_assert_uint_eq(reg.heap_len, 4);
	d->expires_at = 0;
	registry_heap_update(&reg, d);
	ck_assert_uint_eq(d->heap_index, SIZE_MAX);
	ck_assert_uint_eq(reg.heap_len, 3);
	ck_assert_ptr_eq(registry_heap_top(&reg), c);

	/* Removing a lease from the middle keeps the order. */
	registry_remove(&reg, b);
	lease_free(b);
	ck_assert_ptr_eq(registry_heap_top(&reg), c);
	registry_remove(&reg, c);
	lease_free(c);
	ck_assert_ptr_eq(registry_heap_top(&reg), a);
	registry_remove(&reg, a);
	lease_free(a);
	ck_assert_ptr_null(registry_heap_top(&reg));
	ck_assert_uint_eq(registry_count(&reg), 1);
}
END_TEST

/* Many leases, updated at random: the top is always the minimum. */
START_TEST(test_heap_random)
{
	static struct lease	*ls[500];
	uint64_t		 min;
	char			 name[32];
	size_t			 i, j, k;

	srandom(1);
	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof name, "r%zu", i);
		ls[i] = mklease(name, (uint16_t)(1000 + i),
		    1 + (uint64_t)(random() % 100000));
		registry_add(&reg, ls[i]);
	}
	for (k = 0; k < 2000; k++) {
		j = (size_t)random() % 500;
		ls[j]->expires_at = 1 + (uint64_t)(random() % 100000);
		registry_heap_update(&reg, ls[j]);
		if (k % 50 != 0)
			continue;
		min = UINT64_MAX;
		for (i = 0; i < 500; i++)
			if (ls[i]->expires_at < min)
				min = ls[i]->expires_at;
		ck_assert_uint_eq(registry_heap_top(&reg)->expires_at, min);
	}
	for (i = 0; i < 500; i++)
		ck_assert_ptr_eq(reg.heap[ls[i]->heap_index], ls[i]);
}
END_TEST

/*
 * Name memos: the last port of every name.
 */
START_TEST(test_memos)
{
	uint16_t	port = 0;
	char		name[32];
	int		i;

	ck_assert_int_eq(registry_memo_get(&reg, "a", &port), -1);
	registry_memo_set(&reg, "a", 100, NULL, 0);
	ck_assert_int_eq(registry_memo_get(&reg, "a", &port), 0);
	ck_assert_uint_eq(port, 100);
	registry_memo_set(&reg, "a", 200, NULL, 0);
	ck_assert_int_eq(registry_memo_get(&reg, "a", &port), 0);
	ck_assert_uint_eq(port, 200);
	ck_assert_uint_eq(reg.memos.count, 1);
	ck_assert_int_eq(registry_memo_get(&reg, "b", &port), -1);

	/* Past the initial table size. */
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "m%d", i);
		registry_memo_set(&reg, name, (uint16_t)(20000 + i), NULL, 0);
	}
	ck_assert_uint_eq(reg.memos.count, 1001);
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "m%d", i);
		ck_assert_int_eq(registry_memo_get(&reg, name, &port), 0);
		ck_assert_uint_eq(port, 20000 + i);
	}
	ck_assert_int_eq(registry_memo_get(&reg, "a", &port), 0);
	ck_assert_uint_eq(port, 200);
}
END_TEST

/* registry_clear empties everything and leaves the registry usable. */
START_TEST(test_registry_clear)
{
	uint16_t	port;

	registry_add(&reg, mklease("a", 100, 50));
	registry_add(&reg, mklease("b", 200, 0));
	registry_memo_set(&reg, "a", 100, NULL, 0);
	registry_clear(&reg);
	ck_assert_uint_eq(registry_count(&reg), 0);
	ck_assert_ptr_null(registry_find(&reg, "a"));
	ck_assert_ptr_null(registry_by_port(&reg, 100));
	ck_assert_ptr_null(registry_heap_top(&reg));
	ck_assert_ptr_null(TAILQ_FIRST(&reg.all));
	ck_assert_int_eq(registry_memo_get(&reg, "a", &port), -1);
	registry_add(&reg, mklease("a", 100, 50));
	ck_assert_ptr_nonnull(registry_find(&reg, "a"));
	ck_assert_ptr_nonnull(registry_heap_top(&reg));
}
END_TEST

#define NELEM(a)	(sizeof (a) / sizeof (a)[0])

static Suite *
lease_suite(void)
{
	Suite	*s = suite_create("lease");
	TCase	*tc;

	tc = tcase_create("rules");
	tcase_add_loop_test(tc, test_name_valid, 0, NELEM(good_names));
	tcase_add_loop_test(tc, test_name_invalid, 0, NELEM(bad_names));
	tcase_add_test(tc, test_name_lengths);
	tcase_add_loop_test(tc, test_host_valid, 0, NELEM(good_hosts));
	tcase_add_loop_test(tc, test_host_invalid, 0, NELEM(bad_hosts));
	tcase_add_test(tc, test_host_lengths);
	tcase_add_test(tc, test_proto);
	tcase_add_test(tc, test_state_names);
	tcase_add_test(tc, test_expired);
	tcase_add_test(tc, test_new_defaults);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_full);
	tcase_add_test(tc, test_json_defaults);
	tcase_add_test(tc, test_json_text_cache);
	suite_add_tcase(s, tc);

	tc = tcase_create("registry");
	tcase_add_checked_fixture(tc, reg_setup, reg_teardown);
	tcase_add_test(tc, test_registry_basic);
	tcase_add_test(tc, test_registry_growth);
	tcase_add_test(tc, test_heap_order);
	tcase_add_test(tc, test_heap_update);
	tcase_add_test(tc, test_heap_random);
	tcase_add_test(tc, test_memos);
	tcase_add_test(tc, test_registry_clear);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(lease_suite()));
}
