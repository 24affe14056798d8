/*
 * check_clusterview.c: unit tests for clusterview.c, berthd's view of
 * the cluster: what it takes from etcd (an instance of the name and node
 * its key says, written again; a node record) and what it refuses, this
 * node's own entries (never from etcd, never swept), deletes, the mark
 * and sweep of a full read, the index (it moves on a change and on
 * nothing else), and the lookup and list answers.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "unit.h"

#define SELF	"self"

/* The instance every test starts from, as berthd writes it again. */
#define WEB_N1	"{\"name\":\"web\",\"node\":\"n1\"," \
		    "\"host\":\"10.0.0.1\",\"port\":8080," \
		    "\"proto\":\"tcp\",\"meta\":{\"k\":\"v\"}," \
		    "\"ready\":true}"

static struct clusterview	*cv;

static void
setup(void)
{
	cv = clusterview_new(SELF);
	ck_assert_ptr_nonnull(cv);
}

static void
teardown(void)
{
	clusterview_free(cv);
	cv = NULL;
}

static int
put(const char *key, const char *value)
{
	return (clusterview_apply(cv, key, value, strlen(value)));
}

/* An instance value with one field replaced (or added) by "k":v. */
static char *
inst(const char *name, const char *node, const char *field, const char *v)
{
	json_t	*o, *fv;
	char	*s;

	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:s}, s:b}", "name", name,
	    "node", node, "host", "10.0.0.1", "port", 8080, "proto", "tcp",
	    "meta", "k", "v", "ready", 1);
	ck_assert_ptr_nonnull(o);
	if (field != NULL) {
		fv = json_loads(v, JSON_DECODE_ANY, NULL);
		ck_assert_ptr_nonnull(fv);
		json_object_set_new(o, field, fv);
	}
	s = json_dumps(o, JSON_COMPACT);
	ck_assert_ptr_nonnull(s);
	json_decref(o);
	return (s);
}

static void
put_inst(const char *name, const char *node, int want)
{
	char	key[128], *v = inst(name, node, NULL, NULL);

	snprintf(key, sizeof key, "services/%s/%s", name, node);
	ck_assert_int_eq(put(key, v), want);
	free(v);
}

/* name's lookup answer, which the test frees; NULL if none. */
static char *
lookup(const char *name)
{
	char	*text;
	size_t	 len;

	if (clusterview_lookup(cv, name, 0, &text, &len) != 1)
		return (NULL);
	ck_assert_uint_eq(strlen(text), len);
	return (text);
}

static void
assert_lookup(const char *name, const char *instances)
{
	char	want[2048], *got = lookup(name);

	snprintf(want, sizeof want, "{\"name\":\"%s\",\"instances\":[%s],"
	    "\"index\":%llu,\"stale\":false}\n", name, instances,
	    (unsigned long long)clusterview_index(cv));
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
}

/* This node's own instance of name, as cluster.c makes it from a lease. */
static void
set_own(const char *name, unsigned int port, int want)
{
	char	*text;

	text = clusterview_instance_text(name, SELF, "127.0.0.1", port,
	    PROTO_TCP, NULL, LEASE_READY);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(clusterview_set_own(cv, name, text, LEASE_READY),
	    want);
}

static const char *
node_joined(const char *node)
{
	json_t	*rec = json_object_get(clusterview_nodes(cv), node);

	ck_assert_ptr_nonnull(rec);
	return (json_string_value(json_object_get(rec, "joined_at")));
}

/* Shown as berthd writes it: its fields in order, extra ones dropped. */
START_TEST(test_instance_shown_exactly)
{
	const char	*v = " { \"ready\" : true, "
	    "\"extra\": [1, {\"x\": 2}], \"meta\": {\"k\": \"v\"}, "
	    "\"proto\": \"tcp\", \"port\": 8080, \"host\": \"10.0.0.1\", "
	    "\"node\": \"n1\", \"name\": \"web\" } ";

	ck_assert_uint_eq(clusterview_index(cv), 1);
	ck_assert_int_eq(put("services/web/n1", v), 1);
	ck_assert_uint_eq(clusterview_index(cv), 2);
	ck_assert_uint_eq(clusterview_count(cv), 1);
	assert_lookup("web", WEB_N1);
	ck_assert_int_eq(clusterview_has(cv, "web"), LEASE_READY);
	/* Meta null and no ready: {} and null. */
	ck_assert_int_eq(put("services/db/n1", "{\"name\":\"db\",\"node\":"
	    "\"n1\",\"host\":\"::1\",\"port\":1,\"proto\":\"both\","
	    "\"meta\":null}"), 1);
	assert_lookup("db", "{\"name\":\"db\",\"node\":\"n1\",\"host\":"
	    "\"::1\",\"port\":1,\"proto\":\"both\",\"meta\":{},"
	    "\"ready\":null}");
	/* No meta at all: {} too. */
	ck_assert_int_eq(put("services/mq/n1", "{\"name\":\"mq\",\"node\":"
	    "\"n1\",\"host\":\"h\",\"port\":2,\"proto\":\"udp\"}"), 1);
	assert_lookup("mq", "{\"name\":\"mq\",\"node\":\"n1\",\"host\":"
	    "\"h\",\"port\":2,\"proto\":\"udp\",\"meta\":{},"
	    "\"ready\":null}");
}
END_TEST

/* What is not an instance of the name and node its key says. */
static const struct {
	const char	*field;		/* NULL: value is the text */
	const char	*value;
} bad_values[] = {
	{ "name", "\"api\"" },
	{ "node", "\"n2\"" },
	{ "port", "0" },
	{ "port", "65536" },
	{ "port", "-1" },
	{ "port", "\"80\"" },
	{ "port", "80.0" },
	{ "proto", "\"sctp\"" },
	{ "proto", "null" },
	{ "meta", "{\"k\":1}" },
	{ "meta", "{\"k\":null}" },
	{ "meta", "[]" },
	{ "meta", "\"k=v\"" },
	{ "host", "\"bad host\"" },
	{ "host", "\"\"" },
	{ "host", "\"-a.example\"" },
	{ "ready", "\"yes\"" },
	{ NULL, "not json" },
	{ NULL, "" },
	{ NULL, "[]" },
	{ NULL, "null" },
	/* A duplicate key: the second port would win, unseen. */
	{ NULL, "{\"name\":\"web\",\"node\":\"n1\",\"host\":\"10.0.0.1\","
	    "\"port\":8080,\"proto\":\"tcp\",\"port\":80}" },
	/* Trailing garbage after the object. */
	{ NULL, "{\"name\":\"web\",\"node\":\"n1\",\"host\":\"10.0.0.1\","
	    "\"port\":8080,\"proto\":\"tcp\"}x" },
};

START_TEST(test_invalid_refused)
{
	char		*v;
	uint64_t	 idx = clusterview_index(cv);

	v = bad_values[_i].field != NULL ? inst("web", "n1",
	    bad_values[_i].field, bad_values[_i].value) :
	    strdup(bad_values[_i].value);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(put("services/web/n1", v), 0);
	ck_assert_uint_eq(clusterview_count(cv), 0);
	ck_assert_ptr_null(lookup("web"));
	ck_assert_uint_eq(clusterview_index(cv), idx);
	/* And over a valid one, it takes that out: etcd holds it no more. */
	put_inst("web", "n1", 1);
	ck_assert_int_eq(put("services/web/n1", v), 1);
	ck_assert_uint_eq(clusterview_count(cv), 0);
	ck_assert_ptr_null(lookup("web"));
	free(v);
}
END_TEST

/* Keys that are not services/NAME/NODE or nodes/NODE, or bad names. */
START_TEST(test_keys_ignored)
{
	static const char *const keys[] = { "services/web", "services/web/",
	    "services//n1", "services/WEB/n1", "services/web/N1",
	    "services/web/n1/x", "service/web/n1", "other", "",
	    "nodes/", "nodes/N1", "nodes/n1/x" };
	char	*v = inst("web", "n1", NULL, NULL);
	size_t	 i;

	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		ck_assert_int_eq(put(keys[i], v), 0);
		ck_assert_int_eq(clusterview_apply(cv, keys[i], NULL, 0), 0);
	}
	ck_assert_uint_eq(clusterview_count(cv), 0);
	ck_assert_uint_eq(json_object_size(clusterview_nodes(cv)), 0);
	ck_assert_uint_eq(clusterview_index(cv), 1);
	free(v);
}
END_TEST

/* This node's keys in etcd are never taken: its leases say. */
START_TEST(test_own_keys_from_etcd_ignored)
{
	char		*v = inst("web", SELF, "port", "9999");
	const char	*own;

	set_own("web", 8080, 1);
	own = clusterview_own(cv, "web");
	ck_assert_ptr_nonnull(own);
	ck_assert_int_eq(put("services/web/self", v), 0);
	ck_assert_str_eq(clusterview_own(cv, "web"), own);
	ck_assert_int_eq(clusterview_apply(cv, "services/web/self", NULL, 0),
	    0);
	ck_assert_str_eq(clusterview_own(cv, "web"), own);
	free(v);
	/* Nor one for a name it does not publish. */
	v = inst("db", SELF, NULL, NULL);
	ck_assert_int_eq(put("services/db/self", v), 0);
	ck_assert_ptr_null(lookup("db"));
	ck_assert_int_eq(put("nodes/self", "{\"node\":\"self\",\"address\":"
	    "\"10.0.0.1\",\"version\":\"0.9\"}"), 0);
	ck_assert_ptr_null(json_object_get(clusterview_nodes(cv), SELF));
	free(v);
}
END_TEST

START_TEST(test_delete)
{
	uint64_t	idx;

	put_inst("web", "n1", 1);
	put_inst("web", "n2", 1);
	idx = clusterview_index(cv);
	ck_assert_int_eq(clusterview_apply(cv, "services/web/n1", NULL, 0), 1);
	ck_assert_uint_eq(clusterview_index(cv), idx + 1);
	ck_assert_uint_eq(clusterview_count(cv), 1);
	ck_assert_int_eq(clusterview_apply(cv, "services/web/n1", NULL, 0), 0);
	ck_assert_int_eq(clusterview_apply(cv, "services/web/n2", NULL, 0), 1);
	ck_assert_ptr_null(lookup("web"));
	ck_assert_int_eq(clusterview_has(cv, "web"), -1);
	ck_assert_uint_eq(clusterview_count(cv), 0);
	ck_assert_uint_eq(clusterview_index(cv), idx + 2);
}
END_TEST

/* A read sweeps what it did not see, but this node's own. */
START_TEST(test_read_sweeps_unseen_keeps_own)
{
	const char	*rec = "{\"node\":\"n2\",\"address\":\"10.0.0.2\","
	    "\"version\":\"0.9\"}";
	uint64_t	 idx;

	put_inst("web", "n1", 1);
	put_inst("web", "n2", 1);
	put_inst("db", "n2", 1);
	ck_assert_int_eq(put("nodes/n2", rec), 1);
	set_own("web", 8080, 1);
	idx = clusterview_index(cv);
	clusterview_read_begin(cv);
	ck_assert_uint_eq(clusterview_index(cv), idx);
	put_inst("web", "n1", 0);	/* seen, unchanged */
	put_inst("api", "n3", 1);	/* new */
	clusterview_read_end(cv);
	/* web/n2, db/n2 and node n2 gone, api/n3 new: four changes. */
	ck_assert_uint_eq(clusterview_index(cv), idx + 4);
	ck_assert_uint_eq(clusterview_count(cv), 3);
	ck_assert_ptr_null(lookup("db"));
	ck_assert_ptr_null(json_object_get(clusterview_nodes(cv), "n2"));
	ck_assert_ptr_nonnull(clusterview_own(cv, "web"));
	ck_assert_int_eq(clusterview_has(cv, "api"), LEASE_READY);
	/* A read that finds just what the view has changes nothing. */
	idx = clusterview_index(cv);
	clusterview_read_begin(cv);
	put_inst("web", "n1", 0);
	put_inst("api", "n3", 0);
	clusterview_read_end(cv);
	ck_assert_uint_eq(clusterview_index(cv), idx);
	ck_assert_uint_eq(clusterview_count(cv), 3);
}
END_TEST

/* The index moves with every change and with nothing else. */
START_TEST(test_index_moves_only_on_change)
{
	char		*v = inst("web", "n1", "port", "8081");
	json_t		*rec;
	uint64_t	 idx;

	put_inst("web", "n1", 1);
	idx = clusterview_index(cv);
	put_inst("web", "n1", 0);
	ck_assert_uint_eq(clusterview_index(cv), idx);
	ck_assert_int_eq(put("services/web/n1", v), 1);
	ck_assert_uint_eq(clusterview_index(cv), idx + 1);
	ck_assert_int_eq(put("services/web/n2", "garbage"), 0);
	ck_assert_uint_eq(clusterview_index(cv), idx + 1);
	set_own("web", 7000, 1);
	set_own("web", 7000, 0);
	ck_assert_uint_eq(clusterview_index(cv), idx + 2);
	ck_assert_int_eq(clusterview_set_own(cv, "db", NULL, 0), 0);
	rec = clusterview_node_record(SELF, "10.0.0.9", "1.0",
	    "2026-01-02T03:04:05.678Z");
	ck_assert_int_eq(clusterview_set_own_node(cv, rec), 1);
	rec = clusterview_node_record(SELF, "10.0.0.9", "1.0",
	    "2026-01-02T03:04:05.678Z");
	ck_assert_int_eq(clusterview_set_own_node(cv, rec), 0);
	ck_assert_uint_eq(clusterview_index(cv), idx + 3);
	free(v);
}
END_TEST

/* The list: by name, then by node; clusterview_count its length. */
START_TEST(test_list_sorted)
{
	static const char *const order[][2] = { { "web", "n2" },
	    { "a", "n2" }, { "web", "n1" }, { "db", "n10" }, { "a", "n1" },
	    { "db", "n1" } };
	static const char *const sorted[][2] = { { "a", "n1" }, { "a", "n2" },
	    { "db", "n1" }, { "db", "n10" }, { "web", "n1" }, { "web", "n2" } };
	struct registry_text	*t;
	json_t			*meta = json_pack("{s:s}", "k", "v");
	char			 want[4096], *v;
	size_t			 i, n = 0;

	for (i = 0; i < 6; i++)
		put_inst(order[i][0], order[i][1], 1);
	n = (size_t)snprintf(want, sizeof want, "{\"services\":[");
	for (i = 0; i < 6; i++) {
		v = clusterview_instance_text(sorted[i][0], sorted[i][1],
		    "10.0.0.1", 8080, PROTO_TCP, meta, LEASE_READY);
		ck_assert_ptr_nonnull(v);
		n += (size_t)snprintf(want + n, sizeof want - n, "%s%s",
		    i > 0 ? "," : "", v);
		free(v);
	}
	snprintf(want + n, sizeof want - n, "],\"index\":%llu,\"stale\":"
	    "true}\n", (unsigned long long)clusterview_index(cv));
	t = clusterview_list_text(cv, 1);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->len, strlen(want));
	ck_assert_str_eq(t->text, want);
	registry_text_unref(t);
	ck_assert_uint_eq(clusterview_count(cv), 6);
	json_decref(meta);
}
END_TEST

START_TEST(test_lookup_missing)
{
	char	*text = (char *)"x";
	size_t	 len = 1;

	put_inst("web", "n1", 1);
	ck_assert_int_eq(clusterview_lookup(cv, "nope", 0, &text, &len), 0);
	ck_assert_ptr_null(text);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(clusterview_has(cv, "nope"), -1);
	ck_assert_int_eq(clusterview_lookup(cv, "we", 0, &text, &len), 0);
}
END_TEST

/* Ready: one of the instances ready or unknown; else not ready. */
START_TEST(test_has_ready)
{
	char	*v = inst("web", "n1", "ready", "false");

	ck_assert_int_eq(put("services/web/n1", v), 1);
	ck_assert_int_eq(clusterview_has(cv, "web"), LEASE_NOT_READY);
	free(v);
	v = inst("web", "n2", "ready", "null");
	ck_assert_int_eq(put("services/web/n2", v), 1);
	ck_assert_int_eq(clusterview_has(cv, "web"), LEASE_READY);
	free(v);
}
END_TEST

/* A node record: checked; its time written as berthd writes times. */
START_TEST(test_node_records)
{
	ck_assert_int_eq(put("nodes/n1", "{\"node\":\"n1\",\"address\":"
	    "\"10.0.0.2\",\"version\":\"0.9\",\"joined_at\":"
	    "\"2026-01-02T04:04:05+01:00\",\"extra\":1}"), 1);
	ck_assert_str_eq(node_joined("n1"), "2026-01-02T03:04:05.000Z");
	ck_assert_int_eq(put("nodes/n2", "{\"node\":\"n2\",\"address\":"
	    "\"10.0.0.3\",\"version\":\"0.9\",\"joined_at\":\"garbage\"}"), 1);
	ck_assert_ptr_null(node_joined("n2"));
	ck_assert_int_eq(put("nodes/n3", "{\"node\":\"n3\",\"address\":"
	    "\"10.0.0.4\",\"version\":\"0.9\",\"joined_at\":"
	    "\"1969-12-31T23:59:59Z\"}"), 1);
	ck_assert_ptr_null(node_joined("n3"));
	/* Refused: another node's, no version, a bad address. */
	ck_assert_int_eq(put("nodes/n4", "{\"node\":\"n1\",\"address\":"
	    "\"10.0.0.2\",\"version\":\"0.9\"}"), 0);
	ck_assert_int_eq(put("nodes/n4", "{\"node\":\"n4\",\"address\":"
	    "\"10.0.0.2\"}"), 0);
	ck_assert_int_eq(put("nodes/n4", "{\"node\":\"n4\",\"address\":"
	    "\"a b\",\"version\":\"0.9\"}"), 0);
	ck_assert_uint_eq(json_object_size(clusterview_nodes(cv)), 3);
	/* Put again as something else that is not a record: it goes. */
	ck_assert_int_eq(put("nodes/n1", "{}"), 1);
	ck_assert_int_eq(clusterview_apply(cv, "nodes/n2", NULL, 0), 1);
	ck_assert_int_eq(clusterview_apply(cv, "nodes/n2", NULL, 0), 0);
	ck_assert_uint_eq(json_object_size(clusterview_nodes(cv)), 1);
}
END_TEST

static void
count_own(const char *name, const char *text, void *arg)
{
	ck_assert_str_eq(text, clusterview_own(cv, name));
	(*(int *)arg)++;
}

/* foreach_own: exactly this node's instances, not the others'. */
START_TEST(test_foreach_own)
{
	int	n = 0;

	set_own("web", 8080, 1);
	set_own("db", 8081, 1);
	put_inst("web", "n1", 1);
	put_inst("api", "n1", 1);
	clusterview_foreach_own(cv, count_own, &n);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(clusterview_set_own(cv, "db", NULL, 0), 1);
	n = 0;
	clusterview_foreach_own(cv, count_own, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_null(clusterview_own(cv, "db"));
	ck_assert_ptr_null(clusterview_own(cv, "api"));
}
END_TEST

static void
collect_inst(const char *node, const char *host, uint16_t port, void *arg)
{
	char	*out = arg;

	snprintf(out + strlen(out), 200 - strlen(out), "%s %s %u;", node, host,
	    port);
}

/* What DNS reads of a name: each instance's node, host and port. */
START_TEST(test_foreach_instance)
{
	char	out[200] = "", *v;

	ck_assert_int_eq(put("services/web/n1", WEB_N1), 1);
	v = inst("web", "n0", "port", "81");
	ck_assert_int_eq(put("services/web/n0", v), 1);
	free(v);
	ck_assert_uint_eq(clusterview_foreach_instance(cv, "web",
	    collect_inst, out), 2);
	ck_assert_str_eq(out, "n0 10.0.0.1 81;n1 10.0.0.1 8080;");
	/* changed: the new host and port are what is read */
	v = inst("web", "n1", "host", "\"db.example\"");
	ck_assert_int_eq(put("services/web/n1", v), 1);
	free(v);
	out[0] = '\0';
	clusterview_foreach_instance(cv, "web", collect_inst, out);
	ck_assert_str_eq(out, "n0 10.0.0.1 81;n1 db.example 8080;");
	ck_assert_uint_eq(clusterview_foreach_instance(cv, "nope",
	    collect_inst, out), 0);
	ck_assert_int_eq(put("nodes/n1", "{\"node\":\"n1\",\"address\":"
	    "\"10.0.0.2\",\"version\":\"0.9\"}"), 1);
	ck_assert_str_eq(clusterview_node_address(cv, "n1"), "10.0.0.2");
	ck_assert_ptr_null(clusterview_node_address(cv, "n9"));
}
END_TEST

static Suite *
clusterview_suite(void)
{
	Suite	*s = suite_create("clusterview");
	TCase	*tc = tcase_create("clusterview");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_instance_shown_exactly);
	tcase_add_loop_test(tc, test_invalid_refused, 0,
	    sizeof bad_values / sizeof bad_values[0]);
	tcase_add_test(tc, test_keys_ignored);
	tcase_add_test(tc, test_own_keys_from_etcd_ignored);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_read_sweeps_unseen_keeps_own);
	tcase_add_test(tc, test_index_moves_only_on_change);
	tcase_add_test(tc, test_list_sorted);
	tcase_add_test(tc, test_lookup_missing);
	tcase_add_test(tc, test_has_ready);
	tcase_add_test(tc, test_node_records);
	tcase_add_test(tc, test_foreach_own);
	tcase_add_test(tc, test_foreach_instance);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(clusterview_suite()));
}
