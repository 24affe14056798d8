/*
 * cluster.c: this berthd as a node of a cluster over etcd (--cluster).
 * One etcd lease of --cluster-ttl seconds, kept alive at a third of it,
 * carries the node record (PREFIX nodes/NODE); a range read of PREFIX and
 * then a watch from the next revision keep the cluster view in memory.
 * Any failure drops to "disconnected": the view is kept and marked stale,
 * and the connection is made again, endpoint after endpoint, with a
 * backoff. Nothing local waits on any of this; it all runs on the loop.
 *
 * Publishing: a lease acquired with "publish" is PREFIX services/NAME/NODE
 * under the same etcd lease. The broker's hooks name each lease that
 * began, ended or changed readiness in a turn; after the turn's commit
 * (never before: etcd must not see what SQLite may not keep) this node's
 * entries in the view are set from the leases, and what changed goes to
 * etcd in one transaction. On every (re)join the whole of this node's
 * entries is written again and its keys that no lease stands for are
 * deleted: what etcd holds of this node is then exactly its live
 * published leases.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "berthd.h"
#include "cluster.h"
#include "etcd.h"

#define CLUSTER_BACKOFF_MIN_MS	500
#define CLUSTER_BACKOFF_MAX_MS	10000
#define CLUSTER_TXN_OPS		128	/* etcd's --max-txn-ops default */

enum cluster_state {
	CL_DOWN,	/* waiting to (re)connect */
	CL_GRANTING,	/* lease grant sent */
	CL_JOINING,	/* node record put sent */
	CL_READING,	/* range of the prefix sent */
	CL_UP		/* watching; keepalives going */
};

struct cluster {
	struct server		*srv;
	const struct config	*cfg;
	struct etcd		*etcd;
	struct etcd_watch	*watch;
	enum cluster_state	 state;
	int64_t			 lease;		/* etcd lease ID, 0: none */
	int64_t			 revision;	/* of the view */
	uint64_t		 backoff_ms;
	uint64_t		 joined_at;	/* wall ms, this run */
	struct event		*timer;		/* keepalive, or the retry */
	struct clusterview	*view;
	struct waiters		*waiters;	/* on the view's changes */
	char			(*dirty)[BERTH_NAME_MAX + 1];	/* this turn */
	size_t			 ndirty;
	size_t			 dirtycap;
	int			 resync;	/* the dirty list overflowed */
	json_t			*ops;		/* a transaction being built */
	struct cluster_stats	 stats;
	char			 last_error[512];
	char			 prefix_b64[256], end_b64[256];
	int			 leaving;	/* the revoke is out */
	int			 stopped;	/* berthd is stopping: no more calls */
};

static void	cluster_connect(struct cluster *);
static void	cluster_fail(struct cluster *, const char *);

/* PREFIX + rest, as etcd's key bytes in base64; NULL if too long. */
static char *
cluster_key(struct cluster *cl, const char *rest)
{
	char	key[512];
	int	n;

	n = snprintf(key, sizeof key, "%s%s", cl->cfg->cluster_prefix, rest);
	if (n < 0 || (size_t)n >= sizeof key)
		return (NULL);
	return (etcd_b64(key, (size_t)n));
}

static void
cluster_arm(struct cluster *cl, uint64_t ms)
{
	struct timeval	tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(cl->timer, &tv);
}

/* Lost etcd: say why once, keep the view (stale), retry after a backoff. */
static void
cluster_fail(struct cluster *cl, const char *why)
{
	int	wrapped;

	/* On the way out, what fails no longer matters: the TTL covers it. */
	if (cl->stopped) {
		cl->state = CL_DOWN;
		return;
	}
	if (cl->state == CL_UP || strcmp(cl->last_error, why) != 0)
		log_warnx("cluster: %s", why);
	snprintf(cl->last_error, sizeof cl->last_error, "%s", why);
	cl->state = CL_DOWN;
	etcd_watch_free(cl->watch);
	cl->watch = NULL;
	wrapped = etcd_failover(cl->etcd);
	if (wrapped) {
		cl->backoff_ms = cl->backoff_ms == 0 ? CLUSTER_BACKOFF_MIN_MS :
		    cl->backoff_ms * 2;
		if (cl->backoff_ms > CLUSTER_BACKOFF_MAX_MS)
			cl->backoff_ms = CLUSTER_BACKOFF_MAX_MS;
	}
	evtimer_del(cl->timer);
	cluster_arm(cl, wrapped ? cl->backoff_ms : 0);
}

/* A call, or a failure when it cannot even be sent. */
static void
cluster_call(struct cluster *cl, const char *path, json_t *body,
    etcd_answer_fn fn)
{
	if (cl->stopped) {
		json_decref(body);
		return;
	}
	if (body == NULL || etcd_call(cl->etcd, path, body, fn, cl) == -1) {
		char	why[600];

		snprintf(why, sizeof why, "cannot send to %s: %s",
		    etcd_endpoint(cl->etcd), etcd_last_error(cl->etcd));
		cluster_fail(cl, why);
	}
	json_decref(body);
}

/* --- keys --- */

/* The key's bytes from etcd, less the prefix; NULL if not ours to read. */
static char *
cluster_key_rest(struct cluster *cl, const char *b64)
{
	char	*key;
	size_t	 klen, plen = strlen(cl->cfg->cluster_prefix);

	if (b64 == NULL || (key = etcd_unb64(b64, &klen)) == NULL)
		return (NULL);
	if (strlen(key) != klen || klen < plen ||
	    strncmp(key, cl->cfg->cluster_prefix, plen) != 0) {
		free(key);
		return (NULL);
	}
	memmove(key, key + plen, klen - plen + 1);
	return (key);
}

/*
 * A kv of a range answer or a watch event, decoded: its key less the
 * prefix and, unless deleted, its value. -1 if it is not one to read.
 */
static int
cluster_kv(struct cluster *cl, json_t *kv, int deleted, char **rest,
    char **val, size_t *vlen)
{
	const char	*v = json_string_value(json_object_get(kv, "value"));

	*val = NULL;
	*vlen = 0;
	if ((*rest = cluster_key_rest(cl, json_string_value(json_object_get(kv,
	    "key")))) == NULL)
		return (-1);
	if (!deleted && (*val = etcd_unb64(v != NULL ? v : "", vlen)) ==
	    NULL) {
		free(*rest);
		return (-1);
	}
	return (0);
}

/* NAME of a "services/NAME/NODE" key, in name; NODE, or NULL if not one. */
static const char *
cluster_key_name(const char *rest, char *name, size_t size)
{
	const char	*slash;
	size_t		 n;

	if (strncmp(rest, "services/", 9) != 0 ||
	    (slash = strchr(rest + 9, '/')) == NULL ||
	    (n = (size_t)(slash - rest - 9)) >= size)
		return (NULL);
	memcpy(name, rest + 9, n);
	name[n] = '\0';
	return (slash + 1);
}

/* Is it "services/NAME/NODE" of this node (NAME in name)? */
static int
cluster_own_key(struct cluster *cl, const char *rest, char *name, size_t size)
{
	const char	*node = cluster_key_name(rest, name, size);

	return (node != NULL && strcmp(node, cl->cfg->node) == 0 &&
	    names_valid(name));
}

/* --- writes: one transaction of puts and deletes --- */

static void
cluster_txn_done(void *arg, json_t *ans, const char *why)
{
	struct cluster	*cl = arg;

	(void)ans;
	if (why != NULL) {
		cl->stats.etcd_errors++;
		cluster_fail(cl, why);
	}
}

/* Send the operations gathered, CLUSTER_TXN_OPS at a time. */
static void
cluster_flush_ops(struct cluster *cl)
{
	json_t	*part;
	size_t	 i, j, n = json_array_size(cl->ops);

	for (i = 0; i < n && cl->state == CL_UP; i += CLUSTER_TXN_OPS) {
		if ((part = json_array()) != NULL)
			for (j = i; j < n && j < i + CLUSTER_TXN_OPS; j++)
				json_array_append(part, json_array_get(cl->ops,
				    j));
		cluster_call(cl, "/v3/kv/txn", json_pack("{s:o}", "success",
		    part), cluster_txn_done);
	}
	json_array_clear(cl->ops);
}

/* A put of this node's instance of name, under our etcd lease. */
static void
cluster_op_put(struct cluster *cl, const char *name, const char *text)
{
	char	rest[BERTH_NAME_MAX * 2 + 16], id[32], *key, *val;

	snprintf(rest, sizeof rest, "services/%s/%s", name, cl->cfg->node);
	snprintf(id, sizeof id, "%lld", (long long)cl->lease);
	key = cluster_key(cl, rest);
	val = etcd_b64(text, strlen(text));
	if (key != NULL && val != NULL)
		json_array_append_new(cl->ops, json_pack("{s:{s:s, s:s, s:s}}",
		    "request_put", "key", key, "value", val, "lease", id));
	free(key);
	free(val);
}

static void
cluster_op_delete(struct cluster *cl, const char *name)
{
	char	rest[BERTH_NAME_MAX * 2 + 16], *key;

	snprintf(rest, sizeof rest, "services/%s/%s", name, cl->cfg->node);
	if ((key = cluster_key(cl, rest)) != NULL)
		json_array_append_new(cl->ops, json_pack("{s:{s:s}}",
		    "request_delete_range", "key", key));
	free(key);
}

/* --- this node's leases --- */

/* What this node publishes for name now: its instance, or NULL. */
static char *
cluster_own_text(struct cluster *cl, const char *name, int *ready)
{
	struct lease	*l = broker_lookup(cl->srv->broker, name);
	json_t		*meta = NULL;
	char		*text;

	if (l == NULL || !l->publish)
		return (NULL);
	if (l->meta != NULL)
		meta = json_loads(l->meta, 0, NULL);
	text = clusterview_instance_text(l->name, cl->cfg->node, l->host,
	    l->port, l->proto, meta, l->ready);
	json_decref(meta);
	*ready = l->ready;
	return (text);
}

/*
 * Bring this node's entry for name in line with its lease; and etcd,
 * when connected (else the next join does). 1 if the view changed.
 */
static int
cluster_sync_name(struct cluster *cl, const char *name)
{
	const char	*cur = clusterview_own(cl->view, name);
	char		*want;
	int		 ready = LEASE_READY_UNKNOWN;

	want = cluster_own_text(cl, name, &ready);
	if ((want == NULL && cur == NULL) ||
	    (want != NULL && cur != NULL && strcmp(want, cur) == 0)) {
		free(want);
		return (0);
	}
	if (cl->state == CL_UP) {
		if (want != NULL) {
			cluster_op_put(cl, name, want);
			cl->stats.publishes++;
		} else {
			cluster_op_delete(cl, name);
			cl->stats.withdrawals++;
		}
	}
	if (clusterview_set_own(cl->view, name, want, ready) == -1)
		log_warnx("cluster: no memory for %s in the view", name);
	waiters_name_changed(cl->waiters, name);
	return (1);
}

/* Every published lease, as at the start or after the dirty list failed. */
static void
cluster_sync_all(struct cluster *cl)
{
	struct lease	*l;

	for (l = broker_first(cl->srv->broker); l != NULL; l = broker_next(l))
		if (l->publish)
			cluster_sync_name(cl, l->name);
}

/* A lease began, ended or changed readiness in this turn. */
void
cluster_lease_changed(struct cluster *cl, const char *name)
{
	char	(*v)[BERTH_NAME_MAX + 1];
	size_t	 cap;

	if (cl == NULL || cl->resync)
		return;
	if (cl->ndirty == cl->dirtycap) {
		cap = cl->dirtycap == 0 ? 16 : cl->dirtycap * 2;
		if ((v = reallocarray(cl->dirty, cap, sizeof *v)) == NULL) {
			cl->resync = 1;
			return;
		}
		cl->dirty = v;
		cl->dirtycap = cap;
	}
	snprintf(cl->dirty[cl->ndirty++], sizeof *cl->dirty, "%s", name);
}

/*
 * A commit hook: the turn's leases are durable (or rolled back: then the
 * broker shows them as before, and nothing changes here).
 */
void
cluster_committed(void *arg, int ok)
{
	struct cluster	*cl = arg;
	size_t		 i;
	int		 changed = 0;

	(void)ok;
	if (cl->resync) {
		cl->resync = 0;
		cluster_sync_all(cl);
		changed = 1;
	}
	/* Ended leases are only names by now: look each one up again. */
	for (i = 0; i < cl->ndirty; i++)
		changed |= cluster_sync_name(cl, cl->dirty[i]);
	cl->ndirty = 0;
	if (cl->dirtycap > 1024) {
		free(cl->dirty);
		cl->dirty = NULL;
		cl->dirtycap = 0;
	}
	cluster_flush_ops(cl);
	if (changed)
		waiters_wake(cl->waiters);
}

/* --- the watch --- */

static void
cluster_watch_event(void *arg, json_t *result)
{
	struct cluster	*cl = arg;
	json_t		*events, *ev, *kv;
	const char	*type;
	char		*rest, *val, name[BERTH_NAME_MAX + 1];
	size_t		 i, vlen;
	int64_t		 rev;
	int		 deleted, changed = 0;

	if (json_is_true(json_object_get(result, "canceled")) ||
	    etcd_int(result, "compact_revision") != 0) {
		char	why[400];

		/* What we missed may be gone: read the whole prefix again. */
		snprintf(why, sizeof why, "etcd cancelled the watch (%s)",
		    etcd_int(result, "compact_revision") != 0 ?
		    "revision compacted" : json_string_value(json_object_get(
		    result, "cancel_reason")) != NULL ? json_string_value(
		    json_object_get(result, "cancel_reason")) : "no reason");
		cl->stats.etcd_errors++;
		cluster_fail(cl, why);
		return;
	}
	events = json_object_get(result, "events");
	json_array_foreach(events, i, ev) {
		cl->stats.watch_events++;
		kv = json_object_get(ev, "kv");
		/* A PUT has no "type" in the gateway's JSON (enum 0). */
		type = json_string_value(json_object_get(ev, "type"));
		deleted = type != NULL && strcmp(type, "DELETE") == 0;
		if (cluster_kv(cl, kv, deleted, &rest, &val, &vlen) == -1)
			continue;
		if (clusterview_apply(cl->view, rest, val, vlen) == 1) {
			changed = 1;
			if (cluster_key_name(rest, name, sizeof name) != NULL)
				waiters_name_changed(cl->waiters, name);
		}
		/* Our own key deleted under us: write it again. */
		if (deleted && cluster_own_key(cl, rest, name, sizeof name) &&
		    clusterview_own(cl->view, name) != NULL) {
			cluster_op_put(cl, name, clusterview_own(cl->view, name));
			cl->stats.republishes++;
		}
		free(val);
		free(rest);
	}
	if ((rev = etcd_int(json_object_get(result, "header"), "revision")) >
	    cl->revision)
		cl->revision = rev;
	cluster_flush_ops(cl);
	if (changed)
		waiters_wake(cl->waiters);
}

static void
cluster_watch_end(void *arg, const char *why)
{
	struct cluster	*cl = arg;
	char		 msg[600];

	snprintf(msg, sizeof msg, "watch on %s ended: %s",
	    etcd_endpoint(cl->etcd), why);
	cl->stats.etcd_errors++;
	cluster_fail(cl, msg);
}

/* --- connecting: grant, join, read, republish, watch --- */

static void
cluster_republish_one(const char *name, const char *text, void *arg)
{
	struct cluster	*cl = arg;

	cluster_op_put(cl, name, text);
	cl->stats.republishes++;
}

/*
 * The range read of everything: the view afresh (this node's entries
 * kept: they come from its leases), this node's keys that no lease stands
 * for deleted, every one it publishes written under the new etcd lease.
 */
static void
cluster_read_kvs(struct cluster *cl, json_t *kvs)
{
	json_t		*kv;
	char		*rest, *val, name[BERTH_NAME_MAX + 1];
	size_t		 i, vlen;

	clusterview_read_begin(cl->view);
	json_array_foreach(kvs, i, kv) {
		if (cluster_kv(cl, kv, 0, &rest, &val, &vlen) == -1)
			continue;
		if (cluster_own_key(cl, rest, name, sizeof name) &&
		    clusterview_own(cl->view, name) == NULL) {
			cluster_op_delete(cl, name);
			cl->stats.withdrawals++;
		}
		clusterview_apply(cl->view, rest, val, vlen);
		free(val);
		free(rest);
	}
	clusterview_read_end(cl->view);
	clusterview_foreach_own(cl->view, cluster_republish_one, cl);
}

static void
cluster_read_done(void *arg, json_t *ans, const char *why)
{
	struct cluster	*cl = arg;
	json_t		*req;
	char		 rev[32];

	if (why != NULL) {
		cl->stats.etcd_errors++;
		cluster_fail(cl, why);
		return;
	}
	cl->revision = etcd_int(json_object_get(ans, "header"), "revision");
	snprintf(rev, sizeof rev, "%lld", (long long)cl->revision + 1);
	req = json_pack("{ssssss}", "key", cl->prefix_b64, "range_end",
	    cl->end_b64, "start_revision", rev);
	if (req == NULL || (cl->watch = etcd_watch(cl->etcd, req,
	    cluster_watch_event, cluster_watch_end, cl)) == NULL) {
		json_decref(req);
		cluster_fail(cl, "cannot start the watch");
		return;
	}
	json_decref(req);
	cl->state = CL_UP;
	cl->backoff_ms = 0;
	cl->last_error[0] = '\0';
	cl->stats.joins++;
	cluster_read_kvs(cl, json_object_get(ans, "kvs"));
	log_info("cluster: node %s joined through %s (revision %lld, nodes: "
	    "%zu, instances: %zu)", cl->cfg->node, etcd_endpoint(cl->etcd),
	    (long long)cl->revision, json_object_size(clusterview_nodes(
	    cl->view)), clusterview_count(cl->view));
	cluster_flush_ops(cl);
	cluster_arm(cl, (uint64_t)cl->cfg->cluster_ttl * 1000 / 3);
	waiters_wake(cl->waiters);
}

static void
cluster_joined(void *arg, json_t *ans, const char *why)
{
	struct cluster	*cl = arg;

	(void)ans;
	if (why != NULL) {
		cl->stats.etcd_errors++;
		cluster_fail(cl, why);
		return;
	}
	cl->state = CL_READING;
	cluster_call(cl, "/v3/kv/range", json_pack("{ssss}", "key",
	    cl->prefix_b64, "range_end", cl->end_b64), cluster_read_done);
}

/* The node record, under the lease: who we are and where we are. */
static void
cluster_join(struct cluster *cl)
{
	json_t	*rec;
	char	*text, *key, *val, id[32];
	char	 rest[BERTH_NAME_MAX + 8];

	rec = json_object_get(clusterview_nodes(cl->view), cl->cfg->node);
	text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
	snprintf(rest, sizeof rest, "nodes/%s", cl->cfg->node);
	key = cluster_key(cl, rest);
	val = text != NULL ? etcd_b64(text, strlen(text)) : NULL;
	free(text);
	snprintf(id, sizeof id, "%lld", (long long)cl->lease);
	cl->state = CL_JOINING;
	cluster_call(cl, "/v3/kv/put", key != NULL && val != NULL ?
	    json_pack("{ssssss}", "key", key, "value", val, "lease", id) :
	    NULL, cluster_joined);
	free(key);
	free(val);
}

static void
cluster_granted(void *arg, json_t *ans, const char *why)
{
	struct cluster	*cl = arg;

	if (why != NULL) {
		cl->stats.etcd_errors++;
		cluster_fail(cl, why);
		return;
	}
	if ((cl->lease = etcd_int(ans, "ID")) == 0) {
		cluster_fail(cl, "etcd granted no lease");
		return;
	}
	cluster_join(cl);
}

static void
cluster_connect(struct cluster *cl)
{
	cl->state = CL_GRANTING;
	cluster_call(cl, "/v3/lease/grant", json_pack("{sI}", "TTL",
	    (json_int_t)cl->cfg->cluster_ttl), cluster_granted);
}

/* --- keepalive --- */

static void
cluster_kept(void *arg, json_t *ans, const char *why)
{
	struct cluster	*cl = arg;

	if (why != NULL) {
		cl->stats.etcd_errors++;
		cluster_fail(cl, why);
		return;
	}
	/* TTL 0 (or absent): the lease ran out while we were away. */
	if (etcd_int(json_object_get(ans, "result"), "TTL") <= 0) {
		cl->lease = 0;
		cluster_fail(cl, "etcd lease expired; joining again");
		return;
	}
	cluster_arm(cl, (uint64_t)cl->cfg->cluster_ttl * 1000 / 3);
}

static void
cluster_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cluster	*cl = arg;
	char		 id[32];

	(void)fd;
	(void)what;
	if (cl->state != CL_UP) {
		cluster_connect(cl);
		return;
	}
	snprintf(id, sizeof id, "%lld", (long long)cl->lease);
	cluster_call(cl, "/v3/lease/keepalive", json_pack("{ss}", "ID", id),
	    cluster_kept);
}

/* --- life --- */

/* The view, as the cluster's waiters see it. */
static int
cluster_find(void *arg, const char *name)
{
	struct cluster	*cl = arg;

	return (clusterview_has(cl->view, name));
}

static uint64_t
cluster_index(void *arg)
{
	struct cluster	*cl = arg;

	return (clusterview_index(cl->view));
}

/* The prefix's key and range end ([PREFIX, PREFIX + 1)) in base64. */
static int
cluster_prefix_range(struct cluster *cl)
{
	const char	*prefix = cl->cfg->cluster_prefix;
	char		 end[sizeof cl->cfg->cluster_prefix], *p, *e;
	size_t		 n = strlen(prefix);
	int		 rc = -1;

	memcpy(end, prefix, n + 1);
	end[n - 1]++;
	p = etcd_b64(prefix, n);
	e = etcd_b64(end, n);
	if (p != NULL && e != NULL && strlen(p) < sizeof cl->prefix_b64 &&
	    strlen(e) < sizeof cl->end_b64) {
		snprintf(cl->prefix_b64, sizeof cl->prefix_b64, "%s", p);
		snprintf(cl->end_b64, sizeof cl->end_b64, "%s", e);
		rc = 0;
	}
	free(p);
	free(e);
	return (rc);
}

/* This node's record, in the view from the start: it is one of the nodes. */
static int
cluster_own_record(struct cluster *cl)
{
	char	joined[40];

	rfc3339_format((int64_t)cl->joined_at, joined, sizeof joined);
	return (clusterview_set_own_node(cl->view, clusterview_node_record(
	    cl->cfg->node, cl->cfg->advertise, PACKAGE_VERSION, joined)));
}

/*
 * An advertise address no other host can reach is right only for nodes
 * that share one machine (tests, a demo): say so, once, at start.
 */
static void
cluster_warn_advertise(const char *advertise)
{
	struct ready_host	h;

	ready_parse_host(advertise, &h);
	if (h.kind == READY_HOST_LOCALHOST ||
	    (h.kind == READY_HOST_V4 && h.addr[0] == 127) ||
	    (h.kind == READY_HOST_V6 && memcmp(h.addr,
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0))
		log_warnx("cluster: --advertise %s is a loopback address: only "
		    "nodes on this machine reach the services it publishes; "
		    "give the address other hosts reach this one at",
		    advertise);
}

struct cluster *
cluster_open(struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	struct cluster	*cl;
	struct waiters_source src = { cluster_find, cluster_index, NULL };

	if ((cl = calloc(1, sizeof *cl)) == NULL)
		goto nomem;
	cl->srv = srv;
	cl->cfg = cfg;
	src.arg = cl;
	cl->joined_at = clock_wall_ms(clock_now_ms());
	if ((cl->view = clusterview_new(cfg->node)) == NULL ||
	    (cl->ops = json_array()) == NULL ||
	    (cl->waiters = waiters_new(srv, &src)) == NULL ||
	    (cl->timer = evtimer_new(srv->base, cluster_timer, cl)) == NULL ||
	    cluster_prefix_range(cl) == -1 || cluster_own_record(cl) == -1)
		goto nomem;
	/* etcd_new says why it failed (TLS: the files were read at start). */
	if ((cl->etcd = etcd_new(srv->base, cfg->cluster, cfg->ncluster,
	    cfg->cluster_cacert, cfg->cluster_cert, cfg->cluster_key)) == NULL) {
		snprintf(err, errlen, "cannot set up the etcd client (see the "
		    "log line above)");
		cluster_free(cl);
		return (NULL);
	}
	snprintf(cl->last_error, sizeof cl->last_error, "not joined yet");
	cluster_warn_advertise(cfg->advertise);
	cluster_sync_all(cl);
	log_info("cluster: node %s, advertising %s, etcd at %s%s; %zu "
	    "published lease%s", cfg->node, cfg->advertise, cfg->cluster[0].text,
	    cfg->ncluster > 1 ? " (and more)" : "", clusterview_count(cl->view),
	    clusterview_count(cl->view) == 1 ? "" : "s");
	cluster_connect(cl);
	return (cl);
nomem:
	snprintf(err, errlen, "out of memory");
	cluster_free(cl);
	return (NULL);
}

static void
cluster_left(void *arg, json_t *ans, const char *why)
{
	struct cluster	*cl = arg;

	(void)ans;
	cl->leaving = 0;
	if (why != NULL)
		log_warnx("cluster: could not leave (%s); this node's records "
		    "go within %u s", why, cl->cfg->cluster_ttl);
	else
		log_info("cluster: node %s left", cl->cfg->node);
}

/* On the way out: give the lease back, so our records go at once. The
 * stop waits for the answer (cluster_flushed), within its grace; the
 * TTL covers the rest. */
void
cluster_leave(struct cluster *cl)
{
	char	id[32];
	json_t	*body;

	if (cl == NULL)
		return;
	evtimer_del(cl->timer);
	waiters_flush(cl->waiters);
	/*
	 * No more calls, nor the watch: the revoke's own deletes would come
	 * back on it as this node's keys lost, to be written again.
	 */
	cl->stopped = 1;
	etcd_watch_free(cl->watch);
	cl->watch = NULL;
	if (cl->state != CL_UP || cl->lease == 0)
		return;
	snprintf(id, sizeof id, "%lld", (long long)cl->lease);
	if ((body = json_pack("{ss}", "ID", id)) != NULL &&
	    etcd_call(cl->etcd, "/v3/lease/revoke", body, cluster_left, cl) == 0)
		cl->leaving = 1;
	json_decref(body);
}

int
cluster_flushed(const struct cluster *cl)
{
	return (cl == NULL || !cl->leaving);
}

void
cluster_free(struct cluster *cl)
{
	if (cl == NULL)
		return;
	etcd_watch_free(cl->watch);
	if (cl->timer != NULL)
		event_free(cl->timer);
	etcd_free(cl->etcd);
	waiters_free(cl->waiters);
	clusterview_free(cl->view);
	json_decref(cl->ops);
	free(cl->dirty);
	free(cl);
}

int
cluster_connected(const struct cluster *cl)
{
	return (cl->state == CL_UP);
}

struct clusterview *
cluster_view(const struct cluster *cl)
{
	return (cl->view);
}

/* Requests parked on the view (none without --cluster). */
size_t
cluster_waiting(const struct cluster *cl)
{
	return (cl != NULL ? waiters_count(cl->waiters) : 0);
}

struct waiters *
cluster_waiters(const struct cluster *cl)
{
	return (cl->waiters);
}

const struct cluster_stats *
cluster_stats(const struct cluster *cl)
{
	return (&cl->stats);
}

int64_t
cluster_revision(const struct cluster *cl)
{
	return (cl->revision);
}

/* The etcd endpoint this node is connected through; NULL when it is not. */
const char *
cluster_endpoint(const struct cluster *cl)
{
	return (cl->state == CL_UP ? etcd_endpoint(cl->etcd) : NULL);
}

/* Why the cluster is not (or was last not) connected; NULL when it is. */
const char *
cluster_last_error(const struct cluster *cl)
{
	return (cl->state == CL_UP || cl->last_error[0] == '\0' ? NULL :
	    cl->last_error);
}
