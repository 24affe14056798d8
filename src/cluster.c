/*
 * cluster.c: this berthd as a node of a cluster over etcd (--cluster).
 * One etcd lease of --cluster-ttl seconds, kept alive at a third of it,
 * carries the node record (PREFIX nodes/NODE); a range read of PREFIX and
 * then a watch from the next revision keep the cluster view in memory.
 * Any failure drops to "disconnected": the view is kept and marked stale,
 * and the connection is made again, endpoint after endpoint, with a
 * backoff. Nothing local waits on any of this; it all runs on the loop.
 *
 * Not done yet (issue 13): published leases (services/NAME/NODE), the
 * cluster API, TLS.
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
	json_t			*nodes;		/* node -> record */
	json_t			*services;	/* name -> node -> instance */
	char			 last_error[512];
	char			 prefix_b64[256], end_b64[256];
	int			 leaving;	/* the revoke is out */
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
	if (body == NULL || etcd_call(cl->etcd, path, body, fn, cl) == -1) {
		char	why[600];

		snprintf(why, sizeof why, "cannot send to %s: %s",
		    etcd_endpoint(cl->etcd), etcd_last_error(cl->etcd));
		cluster_fail(cl, why);
	}
	json_decref(body);
}

/* --- the view --- */

/* Apply one key's new value (NULL: deleted) to the view. */
static void
cluster_view_set(struct cluster *cl, const char *key, const char *value)
{
	const char	*rest, *slash;
	json_t		*v = NULL, *per;
	char		 name[BERTH_NAME_MAX + 1];
	size_t		 plen = strlen(cl->cfg->cluster_prefix), n;

	if (strncmp(key, cl->cfg->cluster_prefix, plen) != 0)
		return;
	rest = key + plen;
	if (value != NULL && ((v = json_loads(value, 0, NULL)) == NULL ||
	    !json_is_object(v))) {
		json_decref(v);
		log_debug("cluster: %s holds no JSON object: ignored", key);
		return;
	}
	if (strncmp(rest, "nodes/", 6) == 0 && names_valid(rest + 6)) {
		if (v != NULL)
			json_object_set_new(cl->nodes, rest + 6, v);
		else
			json_object_del(cl->nodes, rest + 6);
		return;
	}
	if (strncmp(rest, "services/", 9) != 0 ||
	    (slash = strchr(rest + 9, '/')) == NULL ||
	    (n = (size_t)(slash - rest - 9)) >= sizeof name) {
		json_decref(v);
		return;
	}
	memcpy(name, rest + 9, n);
	name[n] = '\0';
	if (!names_valid(name) || !names_valid(slash + 1)) {
		json_decref(v);
		return;
	}
	if ((per = json_object_get(cl->services, name)) == NULL) {
		if (v == NULL)
			return;
		per = json_object();
		json_object_set_new(cl->services, name, per);
	}
	if (v != NULL)
		json_object_set_new(per, slash + 1, v);
	else if (json_object_del(per, slash + 1) == 0 && json_object_size(per) == 0)
		json_object_del(cl->services, name);
}

/* One kv of a range answer or a watch event: base64 key and value. */
static void
cluster_view_kv(struct cluster *cl, json_t *kv, int deleted)
{
	const char	*k = json_string_value(json_object_get(kv, "key"));
	const char	*v = json_string_value(json_object_get(kv, "value"));
	char		*key, *value = NULL;
	size_t		 klen, vlen;

	if (k == NULL || (key = etcd_unb64(k, &klen)) == NULL)
		return;
	if (!deleted && (value = etcd_unb64(v != NULL ? v : "", &vlen)) == NULL) {
		free(key);
		return;
	}
	if (strlen(key) == klen)
		cluster_view_set(cl, key, deleted ? NULL : value);
	free(key);
	free(value);
}

/* --- the watch --- */

static void
cluster_watch_event(void *arg, json_t *result)
{
	struct cluster	*cl = arg;
	json_t		*events, *ev;
	size_t		 i;
	int64_t		 rev;

	if (etcd_int(result, "compact_revision") != 0) {
		/* What we missed is gone: read the whole prefix again. */
		log_info("cluster: watch compacted at revision %lld; reading "
		    "the view afresh", (long long)etcd_int(result,
		    "compact_revision"));
		cluster_fail(cl, "watch compacted");
		return;
	}
	events = json_object_get(result, "events");
	json_array_foreach(events, i, ev) {
		/* A PUT has no "type" in the gateway's JSON (enum 0). */
		cluster_view_kv(cl, json_object_get(ev, "kv"),
		    json_is_string(json_object_get(ev, "type")) &&
		    strcmp(json_string_value(json_object_get(ev, "type")),
		    "DELETE") == 0);
	}
	if ((rev = etcd_int(json_object_get(result, "header"), "revision")) >
	    cl->revision)
		cl->revision = rev;
}

static void
cluster_watch_end(void *arg, const char *why)
{
	struct cluster	*cl = arg;
	char		 msg[600];

	snprintf(msg, sizeof msg, "watch on %s ended: %s",
	    etcd_endpoint(cl->etcd), why);
	cluster_fail(cl, msg);
}

/* --- connecting: grant, join, read, watch --- */

static void
cluster_read_done(void *arg, json_t *ans, const char *why)
{
	struct cluster	*cl = arg;
	json_t		*kvs, *kv, *req;
	size_t		 i;

	if (why != NULL) {
		cluster_fail(cl, why);
		return;
	}
	json_object_clear(cl->nodes);
	json_object_clear(cl->services);
	kvs = json_object_get(ans, "kvs");
	json_array_foreach(kvs, i, kv)
		cluster_view_kv(cl, kv, 0);
	cl->revision = etcd_int(json_object_get(ans, "header"), "revision");
	req = json_pack("{ssssss}", "key", cl->prefix_b64, "range_end",
	    cl->end_b64, "start_revision", "");
	if (req != NULL) {
		char	rev[32];

		snprintf(rev, sizeof rev, "%lld", (long long)cl->revision + 1);
		json_object_set_new(req, "start_revision", json_string(rev));
	}
	if (req == NULL || (cl->watch = etcd_watch(cl->etcd, req,
	    cluster_watch_event, cluster_watch_end, cl)) == NULL) {
		json_decref(req);
		cluster_fail(cl, "cannot start the watch");
		return;
	}
	json_decref(req);
	cl->state = CL_UP;
	cl->backoff_ms = 0;
	log_info("cluster: node %s joined through %s (revision %lld, nodes: %zu)",
	    cl->cfg->node, etcd_endpoint(cl->etcd), (long long)cl->revision,
	    json_object_size(cl->nodes));
	cl->last_error[0] = '\0';
	cluster_arm(cl, (uint64_t)cl->cfg->cluster_ttl * 1000 / 3);
}

static void
cluster_joined(void *arg, json_t *ans, const char *why)
{
	struct cluster	*cl = arg;

	(void)ans;
	if (why != NULL) {
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

	rec = json_pack("{sssssssI}", "node", cl->cfg->node, "address",
	    cl->cfg->advertise, "version", PACKAGE_VERSION, "joined_at",
	    (json_int_t)(cl->joined_at / 1000));
	text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	{
		char	rest[BERTH_NAME_MAX + 8];

		snprintf(rest, sizeof rest, "nodes/%s", cl->cfg->node);
		key = cluster_key(cl, rest);
	}
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

struct cluster *
cluster_open(struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	struct cluster	*cl;
	char		*p, *e;
	size_t		 n;

	if ((cl = calloc(1, sizeof *cl)) == NULL ||
	    (cl->nodes = json_object()) == NULL ||
	    (cl->services = json_object()) == NULL ||
	    (cl->etcd = etcd_new(srv->base, cfg->cluster, cfg->ncluster,
	    cfg->cluster_cacert, cfg->cluster_cert, cfg->cluster_key)) ==
	    NULL || (cl->timer = evtimer_new(srv->base, cluster_timer, cl)) ==
	    NULL) {
		snprintf(err, errlen, "out of memory");
		cluster_free(cl);
		return (NULL);
	}
	cl->srv = srv;
	cl->cfg = cfg;
	cl->joined_at = clock_wall_ms(clock_now_ms());
	/* The prefix's range: [PREFIX, PREFIX with its last byte + 1). */
	n = strlen(cfg->cluster_prefix);
	p = etcd_b64(cfg->cluster_prefix, n);
	{
		char	end[sizeof cfg->cluster_prefix];

		memcpy(end, cfg->cluster_prefix, n + 1);
		end[n - 1]++;
		e = etcd_b64(end, n);
	}
	if (p == NULL || e == NULL || strlen(p) >= sizeof cl->prefix_b64 ||
	    strlen(e) >= sizeof cl->end_b64) {
		free(p);
		free(e);
		snprintf(err, errlen, "out of memory");
		cluster_free(cl);
		return (NULL);
	}
	snprintf(cl->prefix_b64, sizeof cl->prefix_b64, "%s", p);
	snprintf(cl->end_b64, sizeof cl->end_b64, "%s", e);
	free(p);
	free(e);
	log_info("cluster: node %s, advertising %s, etcd at %s%s", cfg->node,
	    cfg->advertise, cfg->cluster[0].text, cfg->ncluster > 1 ?
	    " (and more)" : "");
	cluster_connect(cl);
	return (cl);
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
	json_decref(cl->nodes);
	json_decref(cl->services);
	free(cl);
}

int
cluster_connected(const struct cluster *cl)
{
	return (cl->state == CL_UP);
}

const json_t *
cluster_nodes(const struct cluster *cl)
{
	return (cl->nodes);
}

int64_t
cluster_revision(const struct cluster *cl)
{
	return (cl->revision);
}

/* Why the cluster is not (or was last not) connected; NULL when it is. */
const char *
cluster_last_error(const struct cluster *cl)
{
	return (cl->state == CL_UP || cl->last_error[0] == '\0' ? NULL :
	    cl->last_error);
}
