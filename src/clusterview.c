/*
 * clusterview.c: berthd's copy of the cluster (cluster.c keeps it up to
 * date from etcd): every node's record and every published instance,
 * by name, each instance kept as the JSON text the API shows, so that a
 * cluster lookup is a copy of bytes, never a question to etcd.
 *
 * What etcd holds is read with suspicion: a value is taken only if it is
 * an instance (or node record) of the name and node its key says, with
 * fields of the right kinds, and it is kept as berthd writes it again,
 * never as it came. This node's own entries are set from its own leases
 * (clusterview_set_own), not from etcd, which may lag behind them.
 *
 * The index moves on every change and on nothing else: a fresh read of
 * etcd that finds what the view had changes nothing (a mark and sweep by
 * generation, not a clear and reload).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define CV_BUCKETS	256
#define CV_LIST_HEAD	"{\"services\":["
#define CV_NAMES	"services/"
#define CV_NODES	"nodes/"

struct cv_inst {
	char		*node;
	char		*text;		/* compact JSON, no newline */
	size_t		 len;
	char		*host;		/* the text's host and port, for DNS */
	uint16_t	 port;
	int		 ready;		/* enum lease_ready */
	uint64_t	 gen;		/* the read that last saw it */
};

struct cv_name {
	struct nametab_entry entry;
	char		 name[BERTH_NAME_MAX + 1];
	struct cv_inst	*inst;		/* by node name */
	size_t		 n;
	size_t		 cap;
};

struct cv_node {
	json_t		*rec;
	uint64_t	 gen;
};

struct clusterview {
	char		 self[BERTH_NAME_MAX + 1];
	struct nametab	 names;
	size_t		 ninst;
	json_t		*nodes;		/* node -> record (json_t, canonical) */
	json_t		*node_gen;	/* node -> the read that last saw it */
	uint64_t	 index;
	uint64_t	 gen;
	struct registry_text *list;	/* the list's text, for list_index */
	uint64_t	 list_index;
	int		 list_stale;
};

#define NAME_OF(e)	((struct cv_name *)(void *)((char *)(e) - \
			    offsetof(struct cv_name, entry)))

static int	cv_apply_node(struct clusterview *, const char *, const char *,
		    size_t);

/*
 * Every name, to fn, which may take the name it is given out of the
 * view (and free it), but no other.
 */
static void
cv_walk(const struct clusterview *cv, void (*fn)(struct cv_name *, void *),
    void *arg)
{
	struct nametab_entry	*e, *next;
	size_t			 b;

	for (b = 0; b < cv->names.nbuckets; b++) {
		for (e = cv->names.buckets[b]; e != NULL; e = next) {
			next = e->next;
			fn(NAME_OF(e), arg);
		}
	}
}

struct clusterview *
clusterview_new(const char *self)
{
	struct clusterview *cv;

	if ((cv = calloc(1, sizeof *cv)) == NULL)
		return (NULL);
	snprintf(cv->self, sizeof cv->self, "%s", self);
	cv->index = 1;
	if (nametab_init(&cv->names, CV_BUCKETS) == -1 ||
	    (cv->nodes = json_object()) == NULL ||
	    (cv->node_gen = json_object()) == NULL) {
		clusterview_free(cv);
		return (NULL);
	}
	return (cv);
}

static void
cv_name_free(struct cv_name *cn)
{
	size_t	i;

	for (i = 0; i < cn->n; i++) {
		free(cn->inst[i].node);
		free(cn->inst[i].text);
		free(cn->inst[i].host);
	}
	free(cn->inst);
	free(cn);
}

static void
cv_free_name(struct cv_name *cn, void *arg)
{
	(void)arg;
	cv_name_free(cn);
}

void
clusterview_free(struct clusterview *cv)
{
	if (cv == NULL)
		return;
	if (cv->names.buckets != NULL)
		cv_walk(cv, cv_free_name, NULL);
	nametab_free(&cv->names);
	json_decref(cv->nodes);
	json_decref(cv->node_gen);
	registry_text_unref(cv->list);
	free(cv);
}

uint64_t
clusterview_index(const struct clusterview *cv)
{
	return (cv->index);
}

size_t
clusterview_count(const struct clusterview *cv)
{
	return (cv->ninst);
}

const json_t *
clusterview_nodes(const struct clusterview *cv)
{
	return (cv->nodes);
}

/* --- what an instance is --- */

static int
cv_meta_valid(json_t *meta)
{
	const char	*k;
	json_t		*v;

	/* None (absent or null) shows as {}, as a lease without meta does. */
	if (meta == NULL || json_is_null(meta))
		return (1);
	if (!json_is_object(meta))
		return (0);
	json_object_foreach(meta, k, v) {
		if (!json_is_string(v))
			return (0);
	}
	return (1);
}

static json_t *
cv_ready_json(int ready)
{
	return (ready == LEASE_READY ? json_true() : ready == LEASE_NOT_READY ?
	    json_false() : json_null());
}

/*
 * An instance as the API shows it, compact JSON (the caller frees it):
 * what this node publishes for a lease, and what it keeps of another
 * node's. meta is a JSON object, or NULL for none.
 */
char *
clusterview_instance_text(const char *name, const char *node, const char *host,
    unsigned int port, int proto, json_t *meta, int ready)
{
	json_t	*o;
	char	*text;

	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:o, s:o}", "name", name,
	    "node", node, "host", host, "port", (int)port, "proto",
	    lease_proto_name(proto), "meta", json_is_object(meta) ?
	    json_incref(meta) : json_object(), "ready", cv_ready_json(ready));
	if (o == NULL)
		return (NULL);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return (text);
}

/*
 * Another node's value for services/NAME/NODE, checked and written
 * again; NULL if it is not an instance of that name on that node.
 */
static char *
cv_instance_parse(const char *name, const char *node, const char *value,
    size_t len, int *ready)
{
	json_t		*o, *v;
	json_int_t	 port;
	const char	*host, *proto;
	char		*text = NULL;
	int		 p;

	if ((o = json_loadb(value, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return (NULL);
	host = json_string_value(json_object_get(o, "host"));
	proto = json_string_value(json_object_get(o, "proto"));
	port = json_integer_value(json_object_get(o, "port"));
	v = json_object_get(o, "ready");
	if (json_is_object(o) && json_is_string(json_object_get(o, "name")) &&
	    strcmp(json_string_value(json_object_get(o, "name")), name) == 0 &&
	    json_is_string(json_object_get(o, "node")) &&
	    strcmp(json_string_value(json_object_get(o, "node")), node) == 0 &&
	    lease_host_valid(host) && json_is_integer(json_object_get(o,
	    "port")) && port >= 1 && port <= 65535 && proto != NULL &&
	    (p = lease_proto_parse(proto)) != -1 &&
	    (v == NULL || json_is_boolean(v) || json_is_null(v)) &&
	    cv_meta_valid(json_object_get(o, "meta"))) {
		*ready = json_is_true(v) ? LEASE_READY : json_is_false(v) ?
		    LEASE_NOT_READY : LEASE_READY_UNKNOWN;
		text = clusterview_instance_text(name, node, host,
		    (unsigned int)port, p, json_object_get(o, "meta"), *ready);
	}
	json_decref(o);
	return (text);
}

/* Another node's record for nodes/NODE, checked and written again. */
static json_t *
cv_node_parse(const char *node, const char *value, size_t len)
{
	json_t		*o, *rec = NULL;
	const char	*addr, *version, *joined;

	if ((o = json_loadb(value, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return (NULL);
	addr = json_string_value(json_object_get(o, "address"));
	version = json_string_value(json_object_get(o, "version"));
	joined = json_string_value(json_object_get(o, "joined_at"));
	if (json_is_string(json_object_get(o, "node")) &&
	    strcmp(json_string_value(json_object_get(o, "node")), node) == 0 &&
	    lease_host_valid(addr) && version != NULL && strlen(version) <= 64)
		rec = clusterview_node_record(node, addr, version, joined);
	json_decref(o);
	return (rec);
}

/*
 * A node record as etcd holds it and /v1/cluster/nodes shows it. The
 * time is written again as berthd writes times (rfc3339_format): one
 * from another writer ("+01:00", one-digit fields, a month 13 that
 * timegm carries over) shows as that instant; one that is not a time, or
 * is before 1970, as null, not as garbage.
 */
json_t *
clusterview_node_record(const char *node, const char *address,
    const char *version, const char *joined_at)
{
	int64_t	ms;
	char	again[40];

	if (joined_at != NULL) {
		if (rfc3339_parse(joined_at, &ms) == -1 || ms < 0)
			joined_at = NULL;
		else {
			rfc3339_format(ms, again, sizeof again);
			joined_at = again[0] != '\0' ? again : NULL;
		}
	}
	return (json_pack("{s:s, s:s, s:s, s:s?}", "node", node, "address",
	    address, "version", version, "joined_at", joined_at));
}

/* --- names and their instances --- */

static struct cv_name *
cv_find(const struct clusterview *cv, const char *name)
{
	struct nametab_entry	*e;

	return ((e = nametab_find(&cv->names, name)) != NULL ? NAME_OF(e) :
	    NULL);
}

/* Where node is, or goes, among cn's instances (sorted by node). */
static size_t
cv_slot(const struct cv_name *cn, const char *node, int *found)
{
	size_t	lo = 0, hi = cn->n, mid;
	int	c;

	*found = 0;
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if ((c = strcmp(cn->inst[mid].node, node)) == 0) {
			*found = 1;
			return (mid);
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo);
}

static void
cv_changed(struct clusterview *cv)
{
	cv->index++;
}

/* Take node's instance of name out; 1 if there was one. */
static int
cv_remove(struct clusterview *cv, struct cv_name *cn, size_t i)
{
	free(cn->inst[i].node);
	free(cn->inst[i].text);
	free(cn->inst[i].host);
	memmove(&cn->inst[i], &cn->inst[i + 1], (cn->n - i - 1) *
	    sizeof *cn->inst);
	cn->n--;
	cv->ninst--;
	if (cn->n == 0) {
		nametab_remove(&cv->names, &cn->entry);
		cv_name_free(cn);
	}
	cv_changed(cv);
	return (1);
}

/* The host and port of an instance's text (as the view writes it). */
static char *
cv_text_host(const char *text, uint16_t *port)
{
	json_t	*o;
	char	*host = NULL;

	if ((o = json_loads(text, 0, NULL)) == NULL)
		return (NULL);
	if (json_is_string(json_object_get(o, "host")))
		host = strdup(json_string_value(json_object_get(o, "host")));
	*port = (uint16_t)json_integer_value(json_object_get(o, "port"));
	json_decref(o);
	return (host);
}

/*
 * Set node's instance of name to text (which the view takes), or take
 * it out (text NULL). 1: the view changed; 0: it was so already; -1: no
 * memory (text is freed, the view as it was).
 */
static int
cv_set(struct clusterview *cv, const char *name, const char *node, char *text,
    int ready)
{
	struct cv_name	*cn = cv_find(cv, name);
	struct cv_inst	*v, *in;
	size_t		 i;
	uint16_t	 port;
	char		*host;
	int		 found = 0;

	if (cn != NULL)
		i = cv_slot(cn, node, &found);
	if (text == NULL)
		return (found ? cv_remove(cv, cn, i) : 0);
	if (found && strcmp(cn->inst[i].text, text) == 0) {
		cn->inst[i].gen = cv->gen;
		free(text);
		return (0);
	}
	if ((host = cv_text_host(text, &port)) == NULL)
		goto nomem;
	if (found) {
		in = &cn->inst[i];
		in->gen = cv->gen;
		free(in->text);
		free(in->host);
		in->text = text;
		in->len = strlen(text);
		in->host = host;
		in->port = port;
		in->ready = ready;
		cv_changed(cv);
		return (1);
	}
	if (cn == NULL) {
		if ((cn = calloc(1, sizeof *cn)) == NULL)
			goto nomem;
		snprintf(cn->name, sizeof cn->name, "%s", name);
		nametab_add(&cv->names, &cn->entry, cn->name);
		i = 0;
	}
	if (cn->n == cn->cap) {
		if ((v = reallocarray(cn->inst, cn->cap + 1 + cn->cap / 2,
		    sizeof *v)) == NULL)
			goto nomem_name;
		cn->inst = v;
		cn->cap += 1 + cn->cap / 2;
	}
	memmove(&cn->inst[i + 1], &cn->inst[i], (cn->n - i) * sizeof *cn->inst);
	in = &cn->inst[i];
	if ((in->node = strdup(node)) == NULL) {
		memmove(&cn->inst[i], &cn->inst[i + 1], (cn->n - i) *
		    sizeof *cn->inst);
		goto nomem_name;
	}
	in->text = text;
	in->len = strlen(text);
	in->host = host;
	in->port = port;
	in->ready = ready;
	in->gen = cv->gen;
	cn->n++;
	cv->ninst++;
	cv_changed(cv);
	return (1);
nomem_name:
	if (cn->n == 0) {
		nametab_remove(&cv->names, &cn->entry);
		cv_name_free(cn);
	}
	free(host);
nomem:
	free(text);
	return (-1);
}

/* This node's instance of name: text (the view takes it), or NULL for none. */
int
clusterview_set_own(struct clusterview *cv, const char *name, char *text,
    int ready)
{
	return (cv_set(cv, name, cv->self, text, ready));
}

/* This node's instance of name, as the view has it, or NULL. */
const char *
clusterview_own(const struct clusterview *cv, const char *name)
{
	const struct cv_name	*cn = cv_find(cv, name);
	size_t			 i;
	int			 found = 0;

	if (cn != NULL)
		i = cv_slot(cn, cv->self, &found);
	return (found ? cn->inst[i].text : NULL);
}

struct cv_own_walk {
	const struct clusterview *cv;
	void	(*fn)(const char *, const char *, void *);
	void	*arg;
};

static void
cv_own_one(struct cv_name *cn, void *arg)
{
	struct cv_own_walk	*w = arg;
	const char		*text;

	if ((text = clusterview_own(w->cv, cn->name)) != NULL)
		w->fn(cn->name, text, w->arg);
}

/* Every name this node publishes, and its text, to fn: a republish. */
void
clusterview_foreach_own(const struct clusterview *cv,
    void (*fn)(const char *, const char *, void *), void *arg)
{
	struct cv_own_walk	w = { cv, fn, arg };

	cv_walk(cv, cv_own_one, &w);
}

/* --- what etcd says --- */

/*
 * A key's new value from etcd (value NULL: deleted); key is what follows
 * the cluster prefix. 1: the view changed; 0: not (the same, or not a key
 * of an instance or node record); -1: no memory. A value that is not an
 * instance (or node record) of the name and node its key says takes out
 * what the key held: etcd holds that no more. A key of this node's own is
 * left alone: its leases say what it publishes.
 */
int
clusterview_apply(struct clusterview *cv, const char *key, const char *value,
    size_t len)
{
	const char	*slash, *node;
	char		 name[BERTH_NAME_MAX + 1], *text = NULL;
	size_t		 n;
	int		 ready = LEASE_READY_UNKNOWN;

	if (strncmp(key, CV_NODES, sizeof CV_NODES - 1) == 0)
		return (cv_apply_node(cv, key + sizeof CV_NODES - 1, value,
		    len));
	if (strncmp(key, CV_NAMES, sizeof CV_NAMES - 1) != 0)
		return (0);
	key += sizeof CV_NAMES - 1;
	if ((slash = strchr(key, '/')) == NULL ||
	    (n = (size_t)(slash - key)) >= sizeof name)
		return (0);
	memcpy(name, key, n);
	name[n] = '\0';
	node = slash + 1;
	if (!names_valid(name) || !names_valid(node) ||
	    strcmp(node, cv->self) == 0)
		return (0);
	if (value != NULL)
		text = cv_instance_parse(name, node, value, len, &ready);
	return (cv_set(cv, name, node, text, ready));
}

static int
cv_apply_node(struct clusterview *cv, const char *node, const char *value,
    size_t len)
{
	json_t	*rec, *old;

	if (!names_valid(node) || strcmp(node, cv->self) == 0)
		return (0);
	/* Deleted, or not a record of this node: what there was goes. */
	if (value == NULL || (rec = cv_node_parse(node, value, len)) == NULL) {
		json_object_del(cv->node_gen, node);
		if (json_object_del(cv->nodes, node) == -1)
			return (0);
		cv_changed(cv);
		return (1);
	}
	json_object_set_new(cv->node_gen, node, json_integer((json_int_t)
	    cv->gen));
	if ((old = json_object_get(cv->nodes, node)) != NULL &&
	    json_equal(old, rec)) {
		json_decref(rec);
		return (0);
	}
	if (json_object_set_new(cv->nodes, node, rec) == -1)
		return (-1);
	cv_changed(cv);
	return (1);
}

/*
 * This node's own record (the view takes rec): set here, never taken from
 * etcd. 1: the view changed; 0: it was so already; -1: no memory.
 */
int
clusterview_set_own_node(struct clusterview *cv, json_t *rec)
{
	json_t	*old;

	if (rec == NULL)
		return (-1);
	json_object_set_new(cv->node_gen, cv->self, json_integer(0));
	if ((old = json_object_get(cv->nodes, cv->self)) != NULL &&
	    json_equal(old, rec)) {
		json_decref(rec);
		return (0);
	}
	if (json_object_set_new(cv->nodes, cv->self, rec) == -1)
		return (-1);
	cv_changed(cv);
	return (1);
}

/*
 * A fresh read of everything: clusterview_read_begin, clusterview_apply
 * for each key read, clusterview_read_end, which takes out what the read
 * did not find (but this node's own).
 */
void
clusterview_read_begin(struct clusterview *cv)
{
	cv->gen++;
}

/* Take out the instances of cn the read did not see (not this node's). */
static void
cv_sweep_name(struct cv_name *cn, void *arg)
{
	struct clusterview	*cv = arg;
	size_t			 i;

	for (i = cn->n; i-- > 0; ) {
		if (cn->inst[i].gen == cv->gen ||
		    strcmp(cn->inst[i].node, cv->self) == 0)
			continue;
		/* Taking the last one out frees cn. */
		if (cn->n == 1) {
			cv_remove(cv, cn, i);
			return;
		}
		cv_remove(cv, cn, i);
	}
}

void
clusterview_read_end(struct clusterview *cv)
{
	const char	*node;
	json_t		*g;
	void		*tmp;

	cv_walk(cv, cv_sweep_name, cv);
	json_object_foreach_safe(cv->node_gen, tmp, node, g) {
		if ((uint64_t)json_integer_value(g) != cv->gen &&
		    strcmp(node, cv->self) != 0) {
			json_object_del(cv->nodes, node);
			json_object_del(cv->node_gen, node);
			cv_changed(cv);
		}
	}
}

/* --- answers --- */

/*
 * name's instances as GET /v1/cluster/services/NAME answers, with a
 * newline, in *text (the caller frees it): 1; 0 if there is none; -1
 * without memory.
 */
int
clusterview_lookup(const struct clusterview *cv, const char *name, int stale,
    char **text, size_t *len)
{
	const struct cv_name	*cn;
	size_t			 i, total;
	char			*p;

	*text = NULL;
	*len = 0;
	if ((cn = cv_find(cv, name)) == NULL)
		return (0);
	total = strlen(cn->name) + 96;
	for (i = 0; i < cn->n; i++)
		total += cn->inst[i].len + 1;
	if ((p = *text = malloc(total)) == NULL)
		return (-1);
	p += snprintf(p, total, "{\"name\":\"%s\",\"instances\":[", cn->name);
	for (i = 0; i < cn->n; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, cn->inst[i].text, cn->inst[i].len);
		p += cn->inst[i].len;
	}
	p += snprintf(p, total - (size_t)(p - *text),
	    "],\"index\":%llu,\"stale\":%s}\n", (unsigned long long)cv->index,
	    stale ? "true" : "false");
	*len = (size_t)(p - *text);
	return (1);
}

/*
 * Each instance of name, by node name, to fn (node, host, port, arg);
 * the number of instances.
 */
size_t
clusterview_foreach_instance(const struct clusterview *cv, const char *name,
    void (*fn)(const char *, const char *, uint16_t, void *), void *arg)
{
	const struct cv_name	*cn;
	size_t			 i;

	if ((cn = cv_find(cv, name)) == NULL)
		return (0);
	for (i = 0; i < cn->n; i++)
		fn(cn->inst[i].node, cn->inst[i].host, cn->inst[i].port, arg);
	return (cn->n);
}

/* node's address, from its record, or NULL. */
const char *
clusterview_node_address(const struct clusterview *cv, const char *node)
{
	return (json_string_value(json_object_get(json_object_get(cv->nodes,
	    node), "address")));
}

/* Is there an instance of name; and is one of them ready (or unknown)? */
int
clusterview_has(const struct clusterview *cv, const char *name)
{
	const struct cv_name	*cn;
	size_t			 i;

	if ((cn = cv_find(cv, name)) == NULL)
		return (-1);
	for (i = 0; i < cn->n; i++) {
		if (cn->inst[i].ready != LEASE_NOT_READY)
			return (LEASE_READY);
	}
	return (LEASE_NOT_READY);
}

static int
cv_name_cmp(const void *a, const void *b)
{
	return (strcmp((*(struct cv_name *const *)a)->name,
	    (*(struct cv_name *const *)b)->name));
}

/* The list's text, built once per index (and staleness). */
struct cv_collect {
	struct cv_name	**v;
	size_t		  n;
	size_t		  total;
};

static void
cv_collect_one(struct cv_name *cn, void *arg)
{
	struct cv_collect	*c = arg;
	size_t			 i;

	c->v[c->n++] = cn;
	for (i = 0; i < cn->n; i++)
		c->total += cn->inst[i].len + 1;
}

static struct registry_text *
cv_list_build(const struct clusterview *cv, int stale)
{
	struct registry_text	 *t;
	struct cv_name		**v;
	struct cv_collect	  c;
	size_t			  n, i, j, total;
	char			 *p;

	if ((v = calloc(cv->names.count + 1, sizeof *v)) == NULL)
		return (NULL);
	c.v = v;
	c.n = 0;
	c.total = sizeof CV_LIST_HEAD + 64;
	cv_walk(cv, cv_collect_one, &c);
	n = c.n;
	total = c.total;
	qsort(v, n, sizeof *v, cv_name_cmp);
	if ((t = malloc(sizeof *t + total)) == NULL) {
		free(v);
		return (NULL);
	}
	t->refs = 1;
	p = t->text;
	memcpy(p, CV_LIST_HEAD, sizeof CV_LIST_HEAD - 1);
	p += sizeof CV_LIST_HEAD - 1;
	for (i = 0; i < n; i++) {
		for (j = 0; j < v[i]->n; j++) {
			if (p[-1] == '}')
				*p++ = ',';
			memcpy(p, v[i]->inst[j].text, v[i]->inst[j].len);
			p += v[i]->inst[j].len;
		}
	}
	p += snprintf(p, total - (size_t)(p - t->text),
	    "],\"index\":%llu,\"stale\":%s}\n", (unsigned long long)cv->index,
	    stale ? "true" : "false");
	t->len = (size_t)(p - t->text);
	free(v);
	return (t);
}

/*
 * GET /v1/cluster/services' answer, shared: the caller holds a reference
 * (registry_text_unref). NULL without memory.
 */
struct registry_text *
clusterview_list_text(struct clusterview *cv, int stale)
{
	struct registry_text	*t;

	if (cv->list == NULL || cv->list_index != cv->index ||
	    cv->list_stale != stale) {
		if ((t = cv_list_build(cv, stale)) == NULL)
			return (NULL);
		registry_text_unref(cv->list);
		cv->list = t;
		cv->list_index = cv->index;
		cv->list_stale = stale;
	}
	cv->list->refs++;
	return (cv->list);
}
