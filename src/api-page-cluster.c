/*
 * api-page-cluster.c: the status page's cluster section, with --cluster
 * only: a line with this node's name, its link to etcd (the endpoint it
 * is connected through, or why it is not, and that the table below is
 * the last view it had) and how many nodes and published instances the
 * cluster has; then a table of every published instance in this node's
 * view, sorted by name then node, this node's own marked "(this node)".
 *
 * It is filled in here, so it works without JavaScript; the page's script
 * (api-page.c) keeps it live with the same ids, classes and data
 * attributes. Everything in it comes from nodes and their clients, so all
 * of it is escaped.
 */
#include "config.h"

#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "berthd.h"
#include "cluster.h"

/*
 * The line, from /v1/status's "cluster": "cluster: node NAME · connected
 * through ENDPOINT · N nodes · M published instances", or "not connected:
 * WHY — showing the last view" in the middle.
 */
static void
api_page_cluster_line(struct evbuffer *out, json_t *c)
{
	json_t		*why = json_object_get(c, "last_error");
	long long	 nodes, count;
	int		 up;

	up = json_is_true(json_object_get(c, "connected"));
	nodes = (long long)json_integer_value(json_object_get(c, "nodes"));
	count = (long long)json_integer_value(json_object_get(c, "instances"));
	evbuffer_add_printf(out, "<p id=\"cluster-line\">cluster: node "
	    "<strong id=\"cluster-node\">");
	api_html(out, json_string_value(json_object_get(c, "node")));
	evbuffer_add_printf(out, "</strong> &middot; <span id=\"cluster-conn\""
	    "%s>", up ? "" : " class=\"off\"");
	if (up) {
		evbuffer_add_printf(out, "connected through ");
		api_html(out, json_string_value(json_object_get(c,
		    "endpoint")));
	} else {
		evbuffer_add_printf(out, "not connected: ");
		api_html(out, json_is_string(why) ? json_string_value(why) :
		    "unknown");
		evbuffer_add_printf(out, " &mdash; showing the last view");
	}
	evbuffer_add_printf(out, "</span> &middot; <span id=\"cluster-nodes\" "
	    "class=\"item\">%lld node%s</span> &middot; <span "
	    "id=\"cluster-count\" class=\"item\">%lld published instance%s"
	    "</span></p>\n", nodes, nodes == 1 ? "" : "s", count,
	    count == 1 ? "" : "s");
}

/*
 * One published instance: name, node ("(this node)" after its own),
 * address, state in words, proto, meta; the row's classes say "own" and,
 * as in the lease table, "down".
 */
static void
api_page_cluster_row(struct evbuffer *out, json_t *j, const char *self)
{
	const char	*name = json_string_value(json_object_get(j, "name"));
	const char	*node = json_string_value(json_object_get(j, "node"));
	const char	*host = json_string_value(json_object_get(j, "host"));
	const char	*proto = json_string_value(json_object_get(j, "proto"));
	const char	*ready, *said;
	int		 own, down;

	if (name == NULL || node == NULL || host == NULL)
		return;
	own = self != NULL && strcmp(node, self) == 0;
	ready = api_html_ready(json_object_get(j, "ready"), &said);
	down = strcmp(ready, "no") == 0;
	evbuffer_add_printf(out, "<tr");
	if (own || down)
		evbuffer_add_printf(out, " class=\"%s%s%s\"", own ? "own" : "",
		    own && down ? " " : "", down ? "down" : "");
	evbuffer_add_printf(out, " data-name=\"");
	api_html(out, name);
	evbuffer_add_printf(out, "\" data-node=\"");
	api_html(out, node);
	evbuffer_add_printf(out, "\"><td class=\"name\">");
	api_html(out, name);
	evbuffer_add_printf(out, "</td><td class=\"node\">");
	api_html(out, node);
	evbuffer_add_printf(out, "%s</td>", own ? " (this node)" : "");
	api_html_addr(out, host, (unsigned int)json_integer_value(
	    json_object_get(j, "port")), proto);
	evbuffer_add_printf(out, "<td class=\"ready ready-%s\">%s</td>"
	    "<td class=\"proto\">", ready, said);
	api_html(out, proto);
	evbuffer_add_printf(out, "</td>");
	api_html_meta(out, json_object_get(j, "meta"));
	evbuffer_add_printf(out, "</tr>\n");
}

/* The table, or the line saying there is nothing in it yet. */
static void
api_page_cluster_table(struct evbuffer *out, json_t *list, const char *self)
{
	json_t		*services = json_object_get(list, "services"), *s;
	size_t		 i, n = json_array_size(services);

	evbuffer_add_printf(out, "<p id=\"cluster-empty\"%s>No node publishes "
	    "a lease yet. A lease acquired with <code>\"publish\": true</code> "
	    "shows here, on every node's page.</p>\n"
	    "<div id=\"cluster-table\" class=\"wide\"%s>"
	    "<table aria-label=\"published instances in the cluster\">"
	    "<thead><tr><th>name</th><th>node</th><th>address</th>"
	    "<th title=\"Whether something listens on the port, as the node "
	    "that publishes it last said; unknown when it cannot tell\">state"
	    "</th><th>proto</th><th>meta</th></tr></thead>\n"
	    "<tbody id=\"instances\" data-index=\"%lld\">\n",
	    n > 0 ? " hidden" : "", n == 0 ? " hidden" : "",
	    (long long)json_integer_value(json_object_get(list, "index")));
	json_array_foreach(services, i, s)
		api_page_cluster_row(out, s, self);
	evbuffer_add_printf(out, "</tbody></table></div>\n");
}

/*
 * The section, after the lease table; nothing without --cluster. status
 * is api_status_json's. -1 if out of memory.
 */
int
api_page_cluster(struct server *srv, struct evbuffer *out, json_t *status)
{
	json_t			*c = json_object_get(status, "cluster"), *list;
	struct registry_text	*t;

	if (srv->cluster == NULL || !json_is_object(c))
		return (0);
	t = clusterview_list_text(cluster_view(srv->cluster),
	    !cluster_connected(srv->cluster));
	if (t == NULL)
		return (-1);
	list = json_loadb(t->text, t->len, 0, NULL);
	registry_text_unref(t);
	if (list == NULL)
		return (-1);
	evbuffer_add_printf(out, "<section id=\"cluster\" "
	    "aria-label=\"cluster\">\n");
	api_page_cluster_line(out, c);
	api_page_cluster_table(out, list, json_string_value(json_object_get(c,
	    "node")));
	evbuffer_add_printf(out, "</section>\n");
	json_decref(list);
	return (0);
}
