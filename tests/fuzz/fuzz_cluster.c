/*
 * fuzz_cluster.c: libFuzzer harness for berthd's view of the cluster
 * (clusterview.c) and the etcd answers cluster.c feeds it.
 *
 * An input is lines, each an operation on one view of node "self":
 *
 *   P<key> <value>	etcd put: key (what follows the cluster prefix, up
 *			to the first space) and the raw bytes after it
 *   D<key>		etcd delete
 *   G<bytes>, g<bytes>	put (delete) an instance made from the bytes: a
 *			valid one, or one with a defect they pick
 *   N<bytes>, n<bytes>	the same for a node record
 *   B, E		a full read begins, ends (clusterview_read_begin,
 *			_end); the puts between are the read's keys (a B
 *			within a read, an E outside one, do nothing)
 *   S<name> <bytes>	this node publishes name (clusterview_set_own)
 *   U<name>		it stops publishing name
 *   W<bytes>		this node's own record (clusterview_set_own_node)
 *   L<name>, H<name>	clusterview_lookup, clusterview_has
 *   A<0|1>		clusterview_list_text, stale or not
 *   {...}		a message of etcd's JSON gateway, read as cluster.c
 *			reads it: a watch message ({"result":{"events":
 *			[...]}}) or a range answer ({"header":...,"kvs":
 *			[...]}); keys (under /berth/) and values base64,
 *			decoded with etcd.c's etcd_unb64
 *
 * The harness keeps a model: what etcd holds (or what the read under way
 * has returned so far) and what this node publishes. After every
 * operation it checks the view, and aborts with a line on stderr if: a
 * lookup or the list is not valid JSON of the documented shape; an
 * instance shown is not a valid one (name, node, host, port 1-65535,
 * proto, meta of strings only, ready) or not the re-serialised value
 * etcd holds for its key; a node record is not valid (its joined_at null
 * or a time as berthd writes one) or not etcd's; a name's instances are
 * not sorted by node, or a node appears twice; clusterview_count is not
 * the list's length; the index went back, or moved without a change of
 * the view, or stood still with one, or an operation's answer (1
 * changed, 0 not) lies; this node's own entries are not exactly what it
 * set (after reads and whatever etcd says); the cached list differs from
 * one built afresh; clusterview_has disagrees with the list; or, outside
 * a read, the view differs from one made by a fresh read of the model.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "etcd.h"

#define FZ_SELF		"self"
#define FZ_PREFIX	"/berth/"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz_kv {
	char		*key;
	char		*val;
	size_t		 len;
	int		 ready;		/* own: enum lease_ready */
};

struct fz_map {
	struct fz_kv	*v;
	size_t		 n;
	size_t		 cap;
};

static struct {
	struct clusterview *cv;
	struct fz_map	 etcd;		/* what etcd holds */
	struct fz_map	 read;		/* the read under way */
	struct fz_map	 own;		/* name -> own text */
	json_t		*own_node;	/* own record, or NULL */
	int		 in_read;
	char		*snap;		/* the view, last seen */
} fz;

static const char *const fz_names[] = { "web", "db", "a", "z-9.x_y" };
static const char *const fz_nodes[] = { "n1", "n2", FZ_SELF, "n10", "n2x" };

static void	fz_fail(const char *, const char *)
		    __attribute__((noreturn));

static void
fz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_cluster: %s%s%s\n", what, detail != NULL ?
	    ": " : "", detail != NULL ? detail : "");
	abort();
}

/* --- the model: small maps of byte strings --- */

static struct fz_kv *
fz_map_find(const struct fz_map *m, const char *key)
{
	size_t	i;

	for (i = 0; i < m->n; i++) {
		if (strcmp(m->v[i].key, key) == 0)
			return (&m->v[i]);
	}
	return (NULL);
}

static void
fz_map_set(struct fz_map *m, const char *key, const char *val, size_t len,
    int ready)
{
	struct fz_kv	*kv;

	if ((kv = fz_map_find(m, key)) == NULL) {
		if (m->n == m->cap) {
			m->cap = m->cap * 2 + 8;
			if ((m->v = realloc(m->v, m->cap * sizeof *m->v)) ==
			    NULL)
				abort();
		}
		kv = &m->v[m->n++];
		if ((kv->key = strdup(key)) == NULL)
			abort();
	} else
		free(kv->val);
	if ((kv->val = malloc(len + 1)) == NULL)
		abort();
	memcpy(kv->val, val, len);
	kv->val[len] = '\0';
	kv->len = len;
	kv->ready = ready;
}

static void
fz_map_del(struct fz_map *m, const char *key)
{
	struct fz_kv	*kv;

	if ((kv = fz_map_find(m, key)) == NULL)
		return;
	free(kv->key);
	free(kv->val);
	*kv = m->v[--m->n];
}

static void
fz_map_clear(struct fz_map *m)
{
	while (m->n > 0)
		fz_map_del(m, m->v[0].key);
}

/* What etcd holds for key, as the view should know it now. */
static const struct fz_kv *
fz_model_get(const char *key)
{
	const struct fz_kv	*kv;

	if (fz.in_read && (kv = fz_map_find(&fz.read, key)) != NULL)
		return (kv);
	return (fz_map_find(&fz.etcd, key));
}

/* --- what the view shows, checked --- */

static int
fz_meta_ok(const json_t *meta)
{
	const char	*k;
	json_t		*v;

	if (!json_is_object(meta))
		return (0);
	json_object_foreach((json_t *)meta, k, v) {
		if (!json_is_string(v))
			return (0);
	}
	return (1);
}

/* An instance as shown: exactly its seven fields, each valid. */
static void
fz_check_instance(const json_t *in)
{
	const json_t	*port = json_object_get(in, "port");
	const json_t	*ready = json_object_get(in, "ready");
	const char	*proto;

	proto = json_string_value(json_object_get(in, "proto"));
	if (!json_is_object(in) || json_object_size(in) != 7)
		fz_fail("an instance is not an object of 7 fields", NULL);
	if (!names_valid(json_string_value(json_object_get(in, "name"))) ||
	    !names_valid(json_string_value(json_object_get(in, "node"))))
		fz_fail("an instance with an invalid name or node", NULL);
	if (!lease_host_valid(json_string_value(json_object_get(in, "host"))))
		fz_fail("an instance with an invalid host", NULL);
	if (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535)
		fz_fail("an instance with a port outside 1-65535", NULL);
	if (proto == NULL || lease_proto_parse(proto) == -1)
		fz_fail("an instance with an invalid proto", proto);
	if (!fz_meta_ok(json_object_get(in, "meta")))
		fz_fail("an instance whose meta is not strings only", NULL);
	if (!json_is_boolean(ready) && !json_is_null(ready))
		fz_fail("an instance whose ready is not true/false/null", NULL);
}

/* Field f of etcd's value o as the view must show it. */
static json_t *
fz_expect_field(json_t *o, const char *f)
{
	json_t	*v = json_object_get(o, f);

	if (strcmp(f, "meta") == 0 && (v == NULL || json_is_null(v)))
		return (json_object());
	if (strcmp(f, "ready") == 0 && v == NULL)
		return (json_null());
	return (json_incref(v));
}

/* Another node's instance: etcd's value for its key, written again. */
static void
fz_check_theirs(const json_t *in, const char *name, const char *node)
{
	static const char *const fields[] = { "name", "node", "host", "port",
	    "proto", "meta", "ready" };
	const struct fz_kv	*kv;
	char			 key[256];
	json_t			*o, *want;
	size_t			 i;

	snprintf(key, sizeof key, "services/%s/%s", name, node);
	if ((kv = fz_model_get(key)) == NULL)
		fz_fail("an instance shown that etcd does not hold", key);
	if ((o = json_loadb(kv->val, kv->len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL)
		fz_fail("an instance shown whose value is not JSON", key);
	for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		want = fz_expect_field(o, fields[i]);
		if (!json_equal(want, json_object_get(in, fields[i])))
			fz_fail("an instance shown is not etcd's value", key);
		json_decref(want);
	}
	json_decref(o);
}

/* This node's instance: exactly what it set. */
static void
fz_check_mine(const json_t *in, const char *name)
{
	const struct fz_kv	*kv;
	json_t			*o;

	if ((kv = fz_map_find(&fz.own, name)) == NULL)
		fz_fail("an instance of this node's that it never set", name);
	if ((o = json_loads(kv->val, 0, NULL)) == NULL || !json_equal(o, in))
		fz_fail("this node's instance is not what it set", name);
	json_decref(o);
}

/*
 * A name's instances (from the list, or a lookup), sorted by node with
 * no node twice, each valid and where it comes from; 1 if one is ready
 * or of unknown readiness.
 */
static int
fz_check_instances(const json_t *arr, size_t from, size_t to,
    const char *name)
{
	const json_t	*in, *ready;
	const char	*node, *prev = NULL;
	size_t		 i;
	int		 any = 0;

	for (i = from; i < to; i++) {
		in = json_array_get(arr, i);
		fz_check_instance(in);
		node = json_string_value(json_object_get(in, "node"));
		if (strcmp(json_string_value(json_object_get(in, "name")),
		    name) != 0)
			fz_fail("an instance under another name", name);
		if (prev != NULL && strcmp(prev, node) >= 0)
			fz_fail("a name's instances not sorted by node, or a "
			    "node twice", name);
		prev = node;
		if (strcmp(node, FZ_SELF) == 0)
			fz_check_mine(in, name);
		else
			fz_check_theirs(in, name, node);
		ready = json_object_get(in, "ready");
		if (!json_is_false(ready))
			any = 1;
	}
	return (any);
}

/* text is the JSON object of an answer, with index and stale as said. */
static json_t *
fz_answer(const char *text, size_t len, size_t nfields, int stale)
{
	json_t	*o, *idx;

	if (len == 0 || text[len - 1] != '\n' || memchr(text, '\0', len) !=
	    NULL)
		fz_fail("an answer without its newline, or with a NUL", NULL);
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		fz_fail("an answer is not JSON", text);
	idx = json_object_get(o, "index");
	if (!json_is_object(o) || json_object_size(o) != nfields ||
	    !json_is_integer(idx) || (uint64_t)json_integer_value(idx) !=
	    clusterview_index(fz.cv) || !json_is_boolean(json_object_get(o,
	    "stale")) || json_is_true(json_object_get(o, "stale")) != stale)
		fz_fail("an answer's index or stale is wrong", text);
	return (o);
}

/* clusterview_lookup and clusterview_has of name, against the list. */
static void
fz_check_lookup(const char *name, const json_t *list, size_t from, size_t to,
    int ready)
{
	json_t	*o, *arr;
	char	*text;
	size_t	 len, i;
	int	 rc, stale = (int)(to & 1);

	rc = clusterview_lookup(fz.cv, name, stale, &text, &len);
	if (from == to) {
		if (rc != 0 || text != NULL || len != 0)
			fz_fail("a lookup of a name with no instance", name);
		if (clusterview_has(fz.cv, name) != -1)
			fz_fail("has() finds a name with no instance", name);
		return;
	}
	if (rc != 1)
		fz_fail("a lookup does not find a name listed", name);
	o = fz_answer(text, len, 4, stale);
	arr = json_object_get(o, "instances");
	if (!json_is_string(json_object_get(o, "name")) || strcmp(name,
	    json_string_value(json_object_get(o, "name"))) != 0 ||
	    !json_is_array(arr) || json_array_size(arr) != to - from)
		fz_fail("a lookup's answer is not the list's", name);
	for (i = from; i < to; i++) {
		if (!json_equal(json_array_get(arr, i - from),
		    json_array_get(list, i)))
			fz_fail("a lookup's instance is not the list's", name);
	}
	if (clusterview_has(fz.cv, name) != (ready ? LEASE_READY :
	    LEASE_NOT_READY))
		fz_fail("has() disagrees with the instances' ready", name);
	json_decref(o);
	free(text);
}

/*
 * The list's instances: sorted by name then node, every name's lookup
 * the same instances, clusterview_count their number.
 */
static void
fz_check_services(const json_t *arr)
{
	const char	*name, *prev = NULL;
	size_t		 i, from = 0, n = json_array_size(arr);
	int		 ready;

	if (clusterview_count(fz.cv) != n)
		fz_fail("clusterview_count is not the list's length", NULL);
	for (i = 0; i <= n; i++) {
		name = i < n ? json_string_value(json_object_get(
		    json_array_get(arr, i), "name")) : NULL;
		if (i < n && name == NULL)
			fz_fail("a listed instance without a name", NULL);
		if (prev != NULL && (name == NULL || strcmp(prev, name) != 0)) {
			if (name != NULL && strcmp(prev, name) > 0)
				fz_fail("the list is not sorted by name", name);
			ready = fz_check_instances(arr, from, i, prev);
			fz_check_lookup(prev, arr, from, i, ready);
			from = i;
		}
		prev = name;
	}
	/* Names with nothing: an empty name, and every name the model has. */
	fz_check_lookup("", arr, 0, 0, 0);
	for (i = 0; i < sizeof fz_names / sizeof fz_names[0]; i++) {
		if (clusterview_has(fz.cv, fz_names[i]) == -1)
			fz_check_lookup(fz_names[i], arr, 0, 0, 0);
	}
}

/* Is s a time as berthd writes one (rfc3339_format)? Its ms in *ms. */
static int
fz_time_canonical(const char *s, int64_t *ms)
{
	char	again[40];

	if (rfc3339_parse(s, ms) == -1)
		return (0);
	rfc3339_format(*ms, again, sizeof again);
	return (strcmp(again, s) == 0);
}

/* A node record shown: valid, and etcd's (or this node's own) record. */
static void
fz_check_node(const char *node, const json_t *rec)
{
	const struct fz_kv	*kv;
	const json_t		*joined = json_object_get(rec, "joined_at");
	const char		*version;
	char			 key[256];
	json_t			*o;
	int64_t			 ms, want;

	version = json_string_value(json_object_get(rec, "version"));
	if (!names_valid(node) || !json_is_object(rec) ||
	    json_object_size(rec) != 4 || !json_is_string(json_object_get(rec,
	    "node")) || strcmp(json_string_value(json_object_get(rec, "node")),
	    node) != 0 || !lease_host_valid(json_string_value(json_object_get(
	    rec, "address"))) || version == NULL || strlen(version) > 64 ||
	    (!json_is_null(joined) && !json_is_string(joined)))
		fz_fail("a node record that is not valid", node);
	/* A time is shown as berthd writes one, or as null. */
	if (json_is_string(joined) && !fz_time_canonical(json_string_value(
	    joined), &ms))
		fz_fail("a node's joined_at is not a time as berthd writes it",
		    json_string_value(joined));
	if (strcmp(node, FZ_SELF) == 0) {
		if (fz.own_node == NULL || !json_equal(fz.own_node, rec))
			fz_fail("this node's record is not what it set", NULL);
		return;
	}
	snprintf(key, sizeof key, "nodes/%s", node);
	if ((kv = fz_model_get(key)) == NULL ||
	    (o = json_loadb(kv->val, kv->len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL)
		fz_fail("a node record shown that etcd does not hold", key);
	if (!json_equal(json_object_get(o, "node"), json_object_get(rec,
	    "node")) || !json_equal(json_object_get(o, "address"),
	    json_object_get(rec, "address")) || !json_equal(json_object_get(o,
	    "version"), json_object_get(rec, "version")))
		fz_fail("a node record shown is not etcd's", key);
	if (json_is_string(joined) && (rfc3339_parse(json_string_value(
	    json_object_get(o, "joined_at")), &want) == -1 || want != ms))
		fz_fail("a node's joined_at is not etcd's time", key);
	json_decref(o);
}

static void
fz_check_nodes(void)
{
	const char	*node;
	json_t		*rec;

	json_object_foreach((json_t *)clusterview_nodes(fz.cv), node, rec)
		fz_check_node(node, rec);
	if (fz.own_node != NULL && json_object_get(clusterview_nodes(fz.cv),
	    FZ_SELF) == NULL)
		fz_fail("this node's record is gone", NULL);
}

/* clusterview_own and clusterview_foreach_own: the own entries, exactly. */
static void
fz_own_one(const char *name, const char *text, void *arg)
{
	const struct fz_kv	*kv;
	size_t			*n = arg;

	if ((kv = fz_map_find(&fz.own, name)) == NULL ||
	    strcmp(kv->val, text) != 0)
		fz_fail("foreach_own gives what this node did not set", name);
	(*n)++;
}

static void
fz_check_own(void)
{
	const char	*text;
	size_t		 i, n = 0;

	for (i = 0; i < fz.own.n; i++) {
		text = clusterview_own(fz.cv, fz.own.v[i].key);
		if (text == NULL || strcmp(text, fz.own.v[i].val) != 0)
			fz_fail("this node's instance lost or replaced",
			    fz.own.v[i].key);
	}
	for (i = 0; i < sizeof fz_names / sizeof fz_names[0]; i++) {
		if (fz_map_find(&fz.own, fz_names[i]) == NULL &&
		    clusterview_own(fz.cv, fz_names[i]) != NULL)
			fz_fail("an own instance this node never set",
			    fz_names[i]);
	}
	clusterview_foreach_own(fz.cv, fz_own_one, &n);
	if (n != fz.own.n)
		fz_fail("foreach_own misses an own instance", NULL);
}

/* The view's content: its instances and node records, as one string. */
static char *
fz_content(struct clusterview *cv, const json_t *services)
{
	json_t	*both;
	char	*s;

	if ((both = json_pack("[O,O]", services, clusterview_nodes(cv))) ==
	    NULL || (s = json_dumps(both, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL)
		abort();
	json_decref(both);
	return (s);
}

/*
 * Every check of the view; its content. The list is asked for stale,
 * not stale and stale again, so the last is built afresh: the first,
 * maybe kept from before, must be the same bytes.
 */
static char *
fz_check_view(void)
{
	struct registry_text	*t[3];
	json_t			*o;
	char			*content;
	int			 i, stale;

	stale = (int)(clusterview_index(fz.cv) & 1);
	for (i = 0; i < 3; i++)
		if ((t[i] = clusterview_list_text(fz.cv, i == 1 ? !stale :
		    stale)) == NULL)
			abort();
	if (t[0]->len != t[2]->len || memcmp(t[0]->text, t[2]->text,
	    t[0]->len) != 0)
		fz_fail("the list kept is not the list as it is now",
		    t[0]->text);
	json_decref(fz_answer(t[1]->text, t[1]->len, 3, !stale));
	o = fz_answer(t[2]->text, t[2]->len, 3, stale);
	if (!json_is_array(json_object_get(o, "services")))
		fz_fail("the list has no services array", t[2]->text);
	for (i = 0; i < 3; i++)
		registry_text_unref(t[i]);
	fz_check_services(json_object_get(o, "services"));
	fz_check_nodes();
	fz_check_own();
	content = fz_content(fz.cv, json_object_get(o, "services"));
	json_decref(o);
	return (content);
}

/*
 * Outside a read the view must be what a fresh read of etcd (the model)
 * gives, with this node's own entries: a watch event may not leave
 * behind anything a join would not show.
 */
static void
fz_check_fresh(void)
{
	struct clusterview	*cv;
	struct registry_text	*t;
	json_t			*o;
	char			*content, *text;
	size_t			 i;

	if ((cv = clusterview_new(FZ_SELF)) == NULL)
		abort();
	for (i = 0; i < fz.own.n; i++) {
		if ((text = strdup(fz.own.v[i].val)) == NULL ||
		    clusterview_set_own(cv, fz.own.v[i].key, text,
		    fz.own.v[i].ready) != 1)
			abort();
	}
	if (fz.own_node != NULL &&
	    clusterview_set_own_node(cv, json_deep_copy(fz.own_node)) == -1)
		abort();
	clusterview_read_begin(cv);
	for (i = 0; i < fz.etcd.n; i++)
		(void)clusterview_apply(cv, fz.etcd.v[i].key, fz.etcd.v[i].val,
		    fz.etcd.v[i].len);
	clusterview_read_end(cv);
	if ((t = clusterview_list_text(cv, 0)) == NULL ||
	    (o = json_loadb(t->text, t->len, 0, NULL)) == NULL)
		abort();
	content = fz_content(cv, json_object_get(o, "services"));
	if (strcmp(content, fz.snap) != 0) {
		fprintf(stderr, "fuzz_cluster: fresh read: %s\n", content);
		fz_fail("the view is not what a fresh read gives", fz.snap);
	}
	free(content);
	json_decref(o);
	registry_text_unref(t);
	clusterview_free(cv);
}

/*
 * After an operation that answered rc (1 changed, 0 not, 2 says
 * nothing) with the index at idx0 before it: check everything, and
 * against a fresh read if the model may have changed.
 */
static void
fz_after(int rc, uint64_t idx0, int model_changed)
{
	uint64_t	 idx1 = clusterview_index(fz.cv);
	char		*content = fz_check_view();
	int		 changed = strcmp(content, fz.snap) != 0;

	if (rc == -1)
		fz_fail("out of memory", NULL);
	if (idx1 < idx0)
		fz_fail("the index went back", NULL);
	if (changed && idx1 == idx0)
		fz_fail("the view changed, the index did not", content);
	if (!changed && idx1 != idx0)
		fz_fail("the index moved, the view did not", content);
	if ((rc == 0 && changed) || (rc == 1 && !changed))
		fz_fail("an operation's answer says otherwise", content);
	free(fz.snap);
	fz.snap = content;
	if (!fz.in_read && model_changed)
		fz_check_fresh();
}

/* --- the operations --- */

/* etcd puts key (value NULL: deletes it), and the view hears of it. */
static void
fz_put(const char *key, const char *val, size_t len)
{
	struct fz_map	*m = fz.in_read ? &fz.read : &fz.etcd;
	uint64_t	 idx0 = clusterview_index(fz.cv);
	int		 rc;

	if (val != NULL)
		fz_map_set(m, key, val, len, 0);
	else
		fz_map_del(m, key);
	rc = clusterview_apply(fz.cv, key, val, len);
	fz_after(rc, idx0, 1);
}

/*
 * A read begins. cluster.c reads all at once, so none begins while one
 * is under way: a B (or a range answer) within a read adds to it.
 */
static void
fz_read_begin(void)
{
	uint64_t	idx0 = clusterview_index(fz.cv);

	if (fz.in_read)
		return;
	fz.in_read = 1;
	clusterview_read_begin(fz.cv);
	fz_after(0, idx0, 1);
}

/* The read ends: etcd holds what it returned, and nothing else. */
static void
fz_read_end(void)
{
	struct fz_map	tmp;
	uint64_t	idx0 = clusterview_index(fz.cv);

	if (!fz.in_read)
		return;
	tmp = fz.etcd;
	fz.etcd = fz.read;
	fz.read = tmp;
	fz_map_clear(&fz.read);
	fz.in_read = 0;
	clusterview_read_end(fz.cv);
	fz_after(2, idx0, 1);
}

static unsigned int
fz_byte(const char *b, size_t len, size_t i)
{
	return (i < len ? (unsigned char)b[i] : 0);
}

/* An instance value from the bytes, valid or with the defect they say. */
static char *
fz_gen_instance(const char *b, size_t len, char *key, size_t keysize)
{
	static const char *const hosts[] = { "10.0.0.1", "::1", "h.example",
	    "bad host" };
	static const char *const protos[] = { "tcp", "udp", "both", "sctp" };
	static const char *const metas[] = { "{}", "{\"k\":\"v\"}",
	    "{\"k\":1}", "null", "[]" };
	const char	*name = fz_names[fz_byte(b, len, 0) % 4];
	const char	*node = fz_nodes[fz_byte(b, len, 1) % 5];
	unsigned int	 port = fz_byte(b, len, 2) << 8 |
			    fz_byte(b, len, 3);
	unsigned int	 defect = fz_byte(b, len, 8) % 10;
	json_t		*o;
	char		*s;

	snprintf(key, keysize, "services/%s/%s", name, node);
	o = json_pack("{s:s, s:s, s:s, s:I}", "name", defect == 1 ? "other" :
	    name, "node", defect == 2 ? "other" : node, "host",
	    hosts[fz_byte(b, len, 4) % 4], "port", defect == 3 ? 65536 :
	    defect == 4 ? 0 : (json_int_t)port);
	if (o == NULL)
		abort();
	if (fz_byte(b, len, 5) % 5 != 4)
		json_object_set_new(o, "proto",
		    json_string(protos[fz_byte(b, len, 5) % 5]));
	if (fz_byte(b, len, 6) % 4 != 3)
		json_object_set_new(o, "ready", fz_byte(b, len, 6) % 4 == 0 ?
		    json_true() : fz_byte(b, len, 6) % 4 == 1 ? json_false() :
		    json_null());
	if (fz_byte(b, len, 7) % 6 != 5)
		json_object_set_new(o, "meta", json_loads(metas[fz_byte(b,
		    len, 7) % 6], JSON_DECODE_ANY, NULL));
	if (defect == 5)
		json_object_set_new(o, "extra", json_integer(1));
	if (defect == 6)
		json_object_set_new(o, "port", json_string("80"));
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		abort();
	json_decref(o);
	return (s);
}

/* A value text with a defect of its bytes: duplicate key, garbage. */
static void
fz_gen_put(const char *key, char *s, unsigned int defect)
{
	char	*t;
	size_t	 len = strlen(s);

	if (defect == 7 && len > 1 && (t = malloc(len + 16)) != NULL) {
		/* The last field again: a duplicate key. */
		snprintf(t, len + 16, "%.*s,\"port\":1}", (int)(len - 1), s);
		free(s);
		s = t;
		len = strlen(s);
	} else if (defect == 8)
		len /= 2;		/* not JSON */
	else if (defect == 9 && len > 0)
		s[len - 1] = ' ';	/* no closing brace */
	fz_put(key, s, len);
	free(s);
}

/* A node record from the bytes, valid or with the defect they say. */
static char *
fz_gen_node(const char *b, size_t len, char *key, size_t keysize)
{
	static const char *const addrs[] = { "10.0.0.2", "n.example",
	    "bad addr" };
	static const char *const joined[] = { "2026-01-02T03:04:05.678Z",
	    "2026-01-02T03:04:05Z", "2026-01-02T04:04:05+01:00",
	    "2026-13-45T99:99:99Z", "garbage", "1969-12-31T23:59:59Z",
	    "2026- 1- 2T 3: 4: 5.6789z" };
	const char	*node = fz_nodes[fz_byte(b, len, 0) % 5];
	unsigned int	 defect = fz_byte(b, len, 4) % 8;
	json_t		*o;
	char		*s;

	snprintf(key, keysize, "nodes/%s", node);
	o = json_pack("{s:s, s:s}", "node", defect == 1 ? "other" : node,
	    "address", addrs[fz_byte(b, len, 1) % 3]);
	if (o == NULL)
		abort();
	if (fz_byte(b, len, 2) % 3 != 2)
		json_object_set_new(o, "version", json_string(fz_byte(b, len,
		    2) % 3 == 0 ? "0.9" : "0123456789012345678901234567890123"
		    "4567890123456789012345678901234"));
	if (fz_byte(b, len, 3) % 8 != 7)
		json_object_set_new(o, "joined_at",
		    json_string(joined[fz_byte(b, len, 3) % 8]));
	if (defect == 2)
		json_object_set_new(o, "extra", json_true());
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		abort();
	json_decref(o);
	return (s);
}

/* A node record's defect of its text: 3 half, 4 unclosed, 5 duplicate. */
static unsigned int
fz_node_defect(const char *b, size_t len)
{
	switch (fz_byte(b, len, 4) % 8) {
	case 3:
		return (8);
	case 4:
		return (9);
	case 5:
		return (7);
	default:
		return (0);
	}
}

/* This node publishes name, with fields from the bytes. */
static void
fz_set_own(const char *name, const char *b, size_t len)
{
	uint64_t	 idx0 = clusterview_index(fz.cv);
	unsigned int	 port = fz_byte(b, len, 2) << 8 |
			    fz_byte(b, len, 3);
	int		 ready = (int)(fz_byte(b, len, 1) % 3), rc;
	json_t		*meta;
	char		*text;

	if (!names_valid(name))
		return;		/* a lease's name always is */
	meta = fz_byte(b, len, 4) & 1 ? json_pack("{s:s}", "v", "1") : NULL;
	text = clusterview_instance_text(name, FZ_SELF, fz_byte(b, len, 5) & 1 ?
	    "127.0.0.1" : "self.example", port == 0 ? 1 : port,
	    (int)(fz_byte(b, len, 0) % 3) + PROTO_TCP, meta, ready);
	json_decref(meta);
	if (text == NULL)
		abort();
	fz_map_set(&fz.own, name, text, strlen(text), ready);
	rc = clusterview_set_own(fz.cv, name, text, ready);
	fz_after(rc, idx0, 1);
}

static void
fz_unset_own(const char *name)
{
	uint64_t	idx0 = clusterview_index(fz.cv);
	int		rc;

	fz_map_del(&fz.own, name);
	rc = clusterview_set_own(fz.cv, name, NULL, 0);
	fz_after(rc, idx0, 1);
}

/* This node's own record, set (again) as cluster.c sets it on a join. */
static void
fz_set_own_node(const char *b, size_t len)
{
	uint64_t	 idx0 = clusterview_index(fz.cv);
	json_t		*rec;
	int		 rc;

	rec = clusterview_node_record(FZ_SELF, "10.0.0.9", fz_byte(b, len, 0) &
	    1 ? "1.0" : "1.1", fz_byte(b, len, 1) & 1 ?
	    "2026-01-02T03:04:05.678Z" : NULL);
	if (rec == NULL)
		abort();
	json_decref(fz.own_node);
	fz.own_node = json_deep_copy(rec);
	rc = clusterview_set_own_node(fz.cv, rec);
	fz_after(rc, idx0, 1);
}

/* --- etcd's JSON gateway, read as cluster.c reads it --- */

/* cluster.c's cluster_key_rest: the key less the prefix, or NULL. */
static char *
fz_key_rest(const char *b64)
{
	char	*key;
	size_t	 klen, plen = strlen(FZ_PREFIX);

	if (b64 == NULL || (key = etcd_unb64(b64, &klen)) == NULL)
		return (NULL);
	if (strlen(key) != klen || klen < plen ||
	    strncmp(key, FZ_PREFIX, plen) != 0) {
		free(key);
		return (NULL);
	}
	memmove(key, key + plen, klen - plen + 1);
	return (key);
}

/* One kv of a watch event or a range answer: its value to the view. */
static void
fz_etcd_kv(const json_t *kv, int deleted)
{
	const char	*value;
	char		*rest, *val = NULL;
	size_t		 vlen = 0;

	if ((rest = fz_key_rest(json_string_value(json_object_get(kv,
	    "key")))) == NULL)
		return;
	value = json_string_value(json_object_get(kv, "value"));
	if (!deleted)
		val = etcd_unb64(value != NULL ? value : "", &vlen);
	if (deleted || val != NULL)
		fz_put(rest, val, vlen);
	free(val);
	free(rest);
}

/* cluster.c's cluster_watch_event, less the waiters and the writes. */
static void
fz_etcd_watch(json_t *result)
{
	json_t		*events, *ev;
	const char	*type;
	size_t		 i;

	if (json_is_true(json_object_get(result, "canceled")) ||
	    etcd_int(result, "compact_revision") != 0)
		return;		/* berthd reads everything again */
	events = json_object_get(result, "events");
	json_array_foreach(events, i, ev) {
		type = json_string_value(json_object_get(ev, "type"));
		fz_etcd_kv(json_object_get(ev, "kv"), type != NULL &&
		    strcmp(type, "DELETE") == 0);
	}
	(void)etcd_int(json_object_get(result, "header"), "revision");
}

/* cluster.c's cluster_read_kvs: the range answer of a join. */
static void
fz_etcd_range(json_t *ans)
{
	json_t	*kvs = json_object_get(ans, "kvs"), *kv;
	size_t	 i;

	(void)etcd_int(json_object_get(ans, "header"), "revision");
	fz_read_begin();
	json_array_foreach(kvs, i, kv)
		fz_etcd_kv(kv, 0);
	fz_read_end();
}

/* A line of the gateway's answer, as etcd.c splits its stream. */
static void
fz_etcd_line(const char *line, size_t len)
{
	json_t	*j, *result;

	if ((j = json_loadb(line, len, 0, NULL)) == NULL)
		return;		/* the watch fails; nothing is read */
	result = json_object_get(j, "result");
	if (json_is_object(result))
		fz_etcd_watch(result);
	else if (json_object_get(j, "kvs") != NULL ||
	    json_object_get(j, "header") != NULL)
		fz_etcd_range(j);
	json_decref(j);
}

/* --- the input --- */

/* A question (L, H, A): it changes nothing, and its answer is right. */
static void
fz_ask(char op, const char *arg, size_t len)
{
	uint64_t	 idx0 = clusterview_index(fz.cv);
	json_t		*o;
	char		*text;
	size_t		 tlen;
	int		 stale = len > 0 && arg[0] == '1', i;

	switch (op) {
	case 'L':
		if (clusterview_lookup(fz.cv, arg, stale, &text, &tlen) == 1) {
			o = fz_answer(text, tlen, 4, stale);
			if (!json_is_string(json_object_get(o, "name")) ||
			    strcmp(json_string_value(json_object_get(o,
			    "name")), arg) != 0)
				fz_fail("a lookup answers another name", arg);
			json_decref(o);
		} else if (clusterview_has(fz.cv, arg) != -1)
			fz_fail("a lookup finds nothing, has() finds it", arg);
		free(text);
		break;
	case 'H':
		(void)clusterview_has(fz.cv, arg);
		break;
	case 'A':
		for (i = 0; i < 2; i++)
			registry_text_unref(clusterview_list_text(fz.cv,
			    stale));
		break;
	default:
		return;		/* not an operation */
	}
	fz_after(0, idx0, 0);
}

/* One line: an operation and its argument (NUL-terminated, len bytes). */
static void
fz_op(char op, char *arg, size_t len)
{
	char	*sp, key[256], *s;
	size_t	 klen;

	switch (op) {
	case 'P':
	case 'D':
		klen = (sp = memchr(arg, ' ', len)) != NULL ?
		    (size_t)(sp - arg) : len;
		arg[klen] = '\0';
		fz_put(arg, op == 'D' ? NULL : klen < len ? arg + klen + 1 :
		    "", klen < len ? len - klen - 1 : 0);
		break;
	case 'G':
	case 'g':
		s = fz_gen_instance(arg, len, key, sizeof key);
		if (op == 'g') {
			free(s);
			fz_put(key, NULL, 0);
		} else
			fz_gen_put(key, s, fz_byte(arg, len, 8) % 10);
		break;
	case 'N':
	case 'n':
		s = fz_gen_node(arg, len, key, sizeof key);
		if (op == 'n') {
			free(s);
			fz_put(key, NULL, 0);
		} else
			fz_gen_put(key, s, fz_node_defect(arg, len));
		break;
	case 'B':
		fz_read_begin();
		break;
	case 'E':
		fz_read_end();
		break;
	case 'S':
		klen = (sp = memchr(arg, ' ', len)) != NULL ?
		    (size_t)(sp - arg) : len;
		arg[klen] = '\0';
		fz_set_own(arg, klen < len ? arg + klen + 1 : "", klen < len ?
		    len - klen - 1 : 0);
		break;
	case 'U':
		fz_unset_own(arg);
		break;
	case 'W':
		fz_set_own_node(arg, len);
		break;
	default:
		fz_ask(op, arg, len);
		break;
	}
}

static void
fz_reset(void)
{
	clusterview_free(fz.cv);
	fz.cv = NULL;
	fz_map_clear(&fz.etcd);
	fz_map_clear(&fz.read);
	fz_map_clear(&fz.own);
	json_decref(fz.own_node);
	fz.own_node = NULL;
	fz.in_read = 0;
	free(fz.snap);
	fz.snap = NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*p = (const char *)data, *end = p + size, *nl;
	char		*line;
	size_t		 len;

	if ((fz.cv = clusterview_new(FZ_SELF)) == NULL)
		abort();
	fz.snap = fz_check_view();
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((len = (size_t)(nl - p)) == 0)
			continue;
		if ((line = malloc(len + 1)) == NULL)
			abort();
		memcpy(line, p, len);
		line[len] = '\0';
		if (line[0] == '{')
			fz_etcd_line(line, len);
		else
			fz_op(line[0], line + 1, len - 1);
		free(line);
	}
	fz_reset();
	return (0);
}
