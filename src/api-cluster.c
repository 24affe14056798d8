/*
 * api-cluster.c: the cluster's API: /v1/cluster/nodes and the "cluster"
 * part of /v1/status. Everything is answered from berthd's own view of
 * the cluster (cluster.c), never by asking etcd. Without --cluster the
 * routes answer 404 cluster_disabled.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "berthd.h"
#include "cluster.h"

static int
api_cluster_off(struct server *srv, struct api_req *req)
{
	if (srv->cluster != NULL)
		return (0);
	req_fail(srv, req, 404, "cluster_disabled", "%s", "berthd runs without "
	    "--cluster: this host only");
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
	nodes = cluster_nodes(srv->cluster);
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
	for (i = 0; i < n; i++) {
		rec = json_object_get(nodes, keys[i]);
		json_array_append_new(out, json_pack("{s:s, s:O?, s:O?, s:O?}",
		    "node", keys[i], "address", json_object_get(rec, "address"),
		    "version", json_object_get(rec, "version"), "joined_at",
		    json_object_get(rec, "joined_at")));
	}
	free(keys);
	req_reply_json(srv, req, 200, json_pack("{s:o}", "nodes", out));
}

/* /v1/status's "cluster": null without --cluster. */
json_t *
api_cluster_status(struct server *srv)
{
	json_t	*eps;
	size_t	 i;

	if (srv->cluster == NULL)
		return (json_null());
	if ((eps = json_array()) == NULL)
		return (NULL);
	for (i = 0; i < srv->cfg->ncluster; i++)
		json_array_append_new(eps, json_string(srv->cfg->cluster[i].text));
	return (json_pack("{s:s, s:o, s:b, s:I, s:s?}", "node", srv->cfg->node,
	    "endpoints", eps, "connected", cluster_connected(srv->cluster),
	    "revision", (json_int_t)cluster_revision(srv->cluster),
	    "last_error", cluster_last_error(srv->cluster)));
}
