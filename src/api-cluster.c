/*
 * api-cluster.c: the cluster's API, answered from berthd's own view of
 * the cluster (clusterview.c, kept by cluster.c), never by asking etcd:
 *
 *   GET /v1/cluster/services[?index=N&wait=S]	every published instance
 *   GET /v1/cluster/services/NAME[?wait=S]	NAME's instances, one a node
 *   GET /v1/cluster/nodes			the nodes
 *
 * and the "cluster" part of /v1/status. While etcd cannot be reached the
 * view is the last one seen, and answers say "stale": true. Without
 * --cluster the routes answer 404 cluster_disabled. X-Berth-Index on
 * these answers is the view's index, not the local leases'.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "berthd.h"
#include "cluster.h"

static int
api_cluster_off(struct server *srv, struct api_req *req)
{
	if (srv->cluster != NULL) {
		req->index = clusterview_index(cluster_view(srv->cluster));
		return (0);
	}
	req_fail(srv, req, 404, "cluster_disabled", "%s", "berthd runs without "
	    "--cluster: it serves this host only");
	return (1);
}

static int
api_cluster_cmp(const void *a, const void *b)
{
	return (strcmp(*(const char *const *)a, *(const char *const *)b));
}

/* GET /v1/cluster/nodes: the node records, by node name. */
void
api_cluster_nodes(struct server *srv, struct api_req *req)
{
	const json_t	*nodes;
	const char	*key, **keys;
	json_t		*rec, *out;
	size_t		 i = 0, n;

	if (api_cluster_off(srv, req))
		return;
	nodes = clusterview_nodes(cluster_view(srv->cluster));
	n = json_object_size(nodes);
	if ((out = json_array()) == NULL ||
	    (keys = calloc(n + 1, sizeof *keys)) == NULL) {
		json_decref(out);
		req_fail(srv, req, 500, "internal", "%s", "out of memory");
		return;
	}
	json_object_foreach((json_t *)nodes, key, rec)
		keys[i++] = key;
	qsort(keys, n, sizeof *keys, api_cluster_cmp);
	for (i = 0; i < n; i++)
		json_array_append(out, json_object_get(nodes, keys[i]));
	free(keys);
	req_reply_json(srv, req, 200, json_pack("{s:o}", "nodes", out));
}

/* The list, now: built once per change of the view, shared by answers. */
static void
api_cluster_list_now(struct server *srv, struct api_req *req)
{
	req->index = clusterview_index(cluster_view(srv->cluster));
	req_reply_shared(srv, req, clusterview_list_text(cluster_view(
	    srv->cluster), !cluster_connected(srv->cluster)));
}

/* GET /v1/cluster/services[?index=N&wait=S] */
void
api_cluster_list(struct server *srv, struct api_req *req)
{
	uint64_t	index = 0, wait = 0;
	int		has_index, has_wait;

	if (api_cluster_off(srv, req) ||
	    req_query_uint(srv, req, "index", UINT64_MAX, &index,
	    &has_index) == -1 || req_query_uint(srv, req, "wait",
	    BERTH_WAIT_MAX, &wait, &has_wait) == -1)
		return;
	/*
	 * The view's index starts again when berthd does: an index from
	 * before (above today's) is answered at once, with today's.
	 */
	if (has_index && index == clusterview_index(cluster_view(
	    srv->cluster)) && !srv->stopping && (!has_wait || wait > 0)) {
		if (waiters_park_index(cluster_waiters(srv->cluster), req,
		    index, has_wait ? (unsigned int)wait : BERTH_WAIT_MAX,
		    api_cluster_list_now) == -1)
			req_fail(srv, req, 500, "internal", "out of memory "
			    "parking the request");
		return;
	}
	api_cluster_list_now(srv, req);
}

/* NAME's instances now, or 404. */
static void
api_cluster_lookup_now(struct server *srv, struct api_req *req)
{
	struct evbuffer	*buf;
	char		*text;
	size_t		 len;
	int		 rc;

	req->index = clusterview_index(cluster_view(srv->cluster));
	rc = clusterview_lookup(cluster_view(srv->cluster), req->name,
	    !cluster_connected(srv->cluster), &text, &len);
	if (rc == 0) {
		req_fail(srv, req, 404, "not_found", "no node publishes '%s'%s",
		    req->name, req->state == REQ_PARKED ? " (waited)" : "");
		return;
	}
	if (rc == -1 || (buf = evbuffer_new()) == NULL) {
		free(text);
		req_fail(srv, req, 500, "internal", "out of memory");
		return;
	}
	evbuffer_add(buf, text, len);
	free(text);
	req_reply_buffer(srv, req, 200, "application/json", buf);
}

/* GET /v1/cluster/services/NAME[?wait=S] */
void
api_cluster_lookup(struct server *srv, struct api_req *req)
{
	uint64_t	wait = 0;
	int		has_wait;

	if (api_cluster_off(srv, req) || req_query_uint(srv, req, "wait",
	    BERTH_WAIT_MAX, &wait, &has_wait) == -1)
		return;
	if (wait > 0 && !srv->stopping && clusterview_has(cluster_view(
	    srv->cluster), req->name) == -1) {
		if (waiters_park_name(cluster_waiters(srv->cluster), req,
		    (unsigned int)wait, 0, api_cluster_lookup_now) == -1)
			req_fail(srv, req, 500, "internal", "out of memory "
			    "parking the request");
		return;
	}
	api_cluster_lookup_now(srv, req);
}

/*
 * /v1/status's "cluster": null without --cluster; "endpoint" is the one
 * of "endpoints" this node is connected through, null while it is not.
 */
json_t *
api_cluster_status(struct server *srv)
{
	const struct clusterview *cv;
	json_t	*eps;
	size_t	 i;

	if (srv->cluster == NULL)
		return (json_null());
	if ((eps = json_array()) == NULL)
		return (NULL);
	for (i = 0; i < srv->cfg->ncluster; i++)
		json_array_append_new(eps, json_string(srv->cfg->cluster[i].text));
	cv = cluster_view(srv->cluster);
	return (json_pack("{s:s, s:s, s:o, s:b, s:s?, s:I, s:s?, s:I, s:I, "
	    "s:I}", "node", srv->cfg->node, "advertise", srv->cfg->advertise,
	    "endpoints", eps, "connected", cluster_connected(srv->cluster),
	    "endpoint", cluster_endpoint(srv->cluster),
	    "revision", (json_int_t)cluster_revision(srv->cluster),
	    "last_error", cluster_last_error(srv->cluster),
	    "nodes", (json_int_t)json_object_size(clusterview_nodes(cv)),
	    "instances", (json_int_t)clusterview_count(cv),
	    "index", (json_int_t)clusterview_index(cv)));
}
