/*
 * api-status.c: the endpoints that describe berthd itself: /v1/health,
 * /v1/status, /metrics, and the status page at / for people.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "berthd.h"

/*
 * Liveness: the database answers and takes a write. The write probe (one
 * small commit) runs at most once a second; in between the last result
 * stands.
 */
void
api_health(struct server *srv, struct api_req *req)
{
	static uint64_t	 last_probe;
	struct broker	*b = srv->broker;
	struct berr	 e;
	uint64_t	 now = clock_now_ms();

	if (now - last_probe >= 1000) {
		last_probe = now;
		broker_probe_db(b);
	}
	if (store_ping(b->store) == -1 || !b->db_ok) {
		berr_set(&e, 503, "db_unavailable", "the lease database does "
		    "not take writes (%s)", b->db_error);
		req_reply_error(srv, req, &e);
		return;
	}
	req_reply_json(srv, req, 200, json_pack("{s:s}", "status", "ok"));
}

static json_t *
api_status_pool(struct server *srv)
{
	const struct port_range	*r;
	json_t			*ranges = json_array();
	char			 buf[16];
	size_t			 i, n;

	n = pool_ranges(srv->broker->pool, &r);
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "%u-%u", r[i].lo, r[i].hi);
		json_array_append_new(ranges, json_string(buf));
	}
	return (json_pack("{s:o, s:I, s:I, s:b, s:I}",
	    "ranges", ranges,
	    "size", (json_int_t)pool_size(srv->broker->pool),
	    "free", (json_int_t)pool_free_count(srv->broker->pool),
	    "fallback", srv->pool_fallback,
	    "reuse_delay", (json_int_t)(srv->cfg->reuse_delay_ms / 1000)));
}

void
api_status(struct server *srv, struct api_req *req)
{
	json_t	*listen = json_array();
	size_t	 i;

	for (i = 0; i < srv->nlisteners; i++)
		json_array_append_new(listen, json_string(srv->bound[i].text));
	req_reply_json(srv, req, 200, json_pack(
	    "{s:s, s:I, s:o, s:I, s:I, s:o, s:s, s:s, s:b}",
	    "version", PACKAGE_VERSION,
	    "uptime", (json_int_t)((clock_now_ms() - srv->started_at) / 1000),
	    "pool", api_status_pool(srv),
	    "leases", (json_int_t)broker_live_count(srv->broker),
	    "waiters", (json_int_t)waiters_count(srv->waiters),
	    "listen", listen,
	    "db", srv->cfg->db,
	    "synchronous", store_sync_mode(),
	    "db_ok", srv->broker->db_ok));
}

void
api_metrics(struct server *srv, struct api_req *req)
{
	struct evbuffer	*out = evbuffer_new();
	size_t		 len;
	char		*text;

	if (out == NULL)
		return;
	metrics_write(srv, out);
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, -1);
	req_reply_text(srv, req, 200, "text/plain; version=0.0.4; "
	    "charset=utf-8", text != NULL ? text : "", text != NULL ? len : 0);
	evbuffer_free(out);
}

/* HTML-escape s into out. */
static void
api_html(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<': evbuffer_add(out, "&lt;", 4); break;
		case '>': evbuffer_add(out, "&gt;", 4); break;
		case '&': evbuffer_add(out, "&amp;", 5); break;
		case '"': evbuffer_add(out, "&quot;", 6); break;
		case '\'': evbuffer_add(out, "&#39;", 5); break;
		default: evbuffer_add(out, s, 1);
		}
	}
}

static void
api_page_row(struct evbuffer *out, json_t *l)
{
	char		 addr[300], num[32];
	json_t		*pid = json_object_get(l, "pid");
	json_t		*exp = json_object_get(l, "expires_at");

	snprintf(addr, sizeof addr, "%s:%lld",
	    json_string_value(json_object_get(l, "host")),
	    (long long)json_integer_value(json_object_get(l, "port")));
	evbuffer_add_printf(out, "<tr><td>");
	api_html(out, json_string_value(json_object_get(l, "name")));
	evbuffer_add_printf(out, "</td><td><a href=\"http://");
	api_html(out, addr);
	evbuffer_add_printf(out, "/\">");
	api_html(out, addr);
	evbuffer_add_printf(out, "</a></td><td>");
	api_html(out, json_string_value(json_object_get(l, "proto")));
	evbuffer_add_printf(out, "</td><td>");
	api_html(out, json_is_string(exp) ? json_string_value(exp) : "-");
	evbuffer_add_printf(out, "</td><td>");
	snprintf(num, sizeof num, "%lld", (long long)json_integer_value(pid));
	api_html(out, json_is_integer(pid) ? num : "-");
	evbuffer_add_printf(out, "</td><td>");
	api_html(out, json_string_value(json_object_get(l, "created_at")));
	evbuffer_add_printf(out, "</td></tr>\n");
}

/* A page for people: the live lease table, no external assets. */
void
api_index_page(struct server *srv, struct api_req *req)
{
	struct evbuffer	*out = evbuffer_new();
	json_t		*list = api_lease_list(srv), *l;
	size_t		 i, len;
	char		*text;

	if (out == NULL || list == NULL) {
		if (out != NULL)
			evbuffer_free(out);
		json_decref(list);
		return;
	}
	evbuffer_add_printf(out, "<!doctype html>\n<html><head>"
	    "<meta charset=\"utf-8\"><title>berth</title><style>"
	    "body{font-family:sans-serif;margin:2em}"
	    "table{border-collapse:collapse}"
	    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
	    "</style></head><body><h1>berth</h1>"
	    "<p>%zu live leases, change index %llu</p>"
	    "<table><tr><th>name</th><th>address</th><th>proto</th>"
	    "<th>expires</th><th>pid</th><th>created</th></tr>\n",
	    json_array_size(json_object_get(list, "services")),
	    (unsigned long long)srv->broker->index);
	json_array_foreach(json_object_get(list, "services"), i, l)
		api_page_row(out, l);
	evbuffer_add_printf(out, "</table></body></html>\n");
	json_decref(list);
	evhttp_add_header(req->out,
	    "Content-Security-Policy", "default-src 'none'; style-src "
	    "'unsafe-inline'; frame-ancestors 'none'");
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, -1);
	req_reply_text(srv, req, 200, "text/html; charset=utf-8", text, len);
	evbuffer_free(out);
}
