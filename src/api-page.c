/*
 * api-page.c: the status page at / for people: the live lease table.
 *
 * The table is filled in here, so the page shows the leases without
 * JavaScript (and then reloads itself every 10 s). An inline script keeps
 * it current through the watch API, GET /v1/services?index=N&wait=S, and
 * counts TTLs and ages down each second; it builds rows with textContent
 * only, never markup from data. The Content-Security-Policy admits exactly
 * that script and style by their SHA-256 hashes: after changing either
 * text, put its new hash below (tests/e2e/test_page.py checks both and
 * prints the right values).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "berthd.h"

#define API_PAGE_STYLE_HASH	"sha256-WJElOOuyTyxpjUDbtHXR2V70+T1fZQUyMQ2X2LDEyjw="
#define API_PAGE_SCRIPT_HASH	"sha256-hb1RxAsMOo/BGICJQWv5Z1kT6/bD7ItKpv1Pu+ncfow="

/* The page's inline style and script, byte for byte as hashed. */
static const char api_page_style[] =
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}\n"
    "table{border-collapse:collapse}\n"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\n"
    "th{background:#f3f3f3}\n"
    "#state{color:#666}\n";

static const char api_page_script[] =
    "'use strict';\n"
    "(() => {\n"
    "  const body = document.getElementById('leases');\n"
    "  const count = document.getElementById('count');\n"
    "  const shown = document.getElementById('index');\n"
    "  const state = document.getElementById('state');\n"
    "  const skew = Number(body.dataset.now) - Date.now();\n"
    "  let index = body.dataset.index;\n"
    "  let delay = 1000;\n"
    "\n"
    "  const dur = (ms) => {\n"
    "    const s = Math.max(0, Math.floor(ms / 1000));\n"
    "    if (s < 60) return s + ' s';\n"
    "    if (s < 3600) return Math.floor(s / 60) + ' min ' + s % 60 + ' s';\n"
    "    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';\n"
    "    return Math.floor(s / 86400) + ' d ' + Math.floor(s % 86400 / 3600) + ' h';\n"
    "  };\n"
    "\n"
    "  const tick = () => {\n"
    "    const now = Date.now() + skew;\n"
    "    for (const tr of body.rows) {\n"
    "      const exp = Number(tr.dataset.expires);\n"
    "      tr.cells[3].textContent = exp === 0 ? 'no expiry' :\n"
    "        exp > now ? dur(exp - now) : 'expired';\n"
    "      tr.cells[5].textContent = dur(now - Number(tr.dataset.created));\n"
    "    }\n"
    "  };\n"
    "\n"
    "  const cell = (tr, text) => {\n"
    "    const td = tr.insertCell();\n"
    "    td.textContent = text;\n"
    "    return td;\n"
    "  };\n"
    "\n"
    "  const row = (l) => {\n"
    "    const tr = document.createElement('tr');\n"
    "    const host = l.host.includes(':') ? '[' + l.host + ']' : l.host;\n"
    "    const a = document.createElement('a');\n"
    "    tr.dataset.name = l.name;\n"
    "    tr.dataset.expires = l.expires_at === null ? 0 : Date.parse(l.expires_at);\n"
    "    tr.dataset.created = Date.parse(l.created_at);\n"
    "    cell(tr, l.name);\n"
    "    a.href = 'http://' + host + ':' + l.port + '/';\n"
    "    a.rel = 'noopener noreferrer';\n"
    "    a.textContent = host + ':' + l.port;\n"
    "    tr.insertCell().append(a);\n"
    "    cell(tr, l.proto);\n"
    "    cell(tr, '');\n"
    "    cell(tr, l.pid === null ? '-' : String(l.pid));\n"
    "    cell(tr, '');\n"
    "    const meta = tr.insertCell();\n"
    "    for (const [k, v] of Object.entries(l.meta)) {\n"
    "      const div = document.createElement('div');\n"
    "      div.textContent = k + '=' + v;\n"
    "      meta.append(div);\n"
    "    }\n"
    "    return tr;\n"
    "  };\n"
    "\n"
    "  const show = (list) => {\n"
    "    body.replaceChildren(...list.services.map(row));\n"
    "    count.textContent = String(list.services.length);\n"
    "    shown.textContent = String(list.index);\n"
    "    index = list.index;\n"
    "    tick();\n"
    "  };\n"
    "\n"
    "  const watch = async () => {\n"
    "    for (;;) {\n"
    "      try {\n"
    "        const r = await fetch('/v1/services?index=' + index + '&wait=30',\n"
    "          { cache: 'no-store', credentials: 'omit' });\n"
    "        if (!r.ok) throw new Error('HTTP ' + r.status);\n"
    "        const list = await r.json();\n"
    "        const same = String(list.index) === String(index);\n"
    "        show(list);\n"
    "        state.textContent = 'live';\n"
    "        delay = 1000;\n"
    "        // No change: the wait ran out, or berthd is stopping and answers\n"
    "        // at once; do not ask again in a tight loop.\n"
    "        if (same) await new Promise((done) => setTimeout(done, 1000));\n"
    "      } catch (e) {\n"
    "        state.textContent = 'not connected (' + e.message + '), retrying';\n"
    "        await new Promise((done) => setTimeout(done, delay));\n"
    "        delay = Math.min(delay * 2, 10000);\n"
    "      }\n"
    "    }\n"
    "  };\n"
    "\n"
    "  state.textContent = 'live';\n"
    "  tick();\n"
    "  setInterval(tick, 1000);\n"
    "  watch();\n"
    "})();\n";

#define API_PAGE_CSP \
	"default-src 'none'; script-src '" API_PAGE_SCRIPT_HASH "'; " \
	"style-src '" API_PAGE_STYLE_HASH "'; connect-src 'self'; " \
	"img-src 'none'; base-uri 'none'; form-action 'none'; " \
	"frame-ancestors 'none'"

/* HTML-escape s into out. */
static void
api_html(struct evbuffer *out, const char *s)
{
	if (s == NULL)
		return;
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

/* A duration as the script shows it: "42 s", "3 min 7 s", "2 h 5 min". */
static void
api_page_dur(struct evbuffer *out, int64_t ms)
{
	long long	s = ms > 0 ? ms / 1000 : 0;

	if (s < 60)
		evbuffer_add_printf(out, "%lld s", s);
	else if (s < 3600)
		evbuffer_add_printf(out, "%lld min %lld s", s / 60, s % 60);
	else if (s < 86400)
		evbuffer_add_printf(out, "%lld h %lld min", s / 3600,
		    s % 3600 / 60);
	else
		evbuffer_add_printf(out, "%lld d %lld h", s / 86400,
		    s % 86400 / 3600);
}

/*
 * One row, the same cells and data attributes the script makes, so that
 * it can count down rows it did not make.
 */
static void
api_page_row(struct server *srv, struct evbuffer *out, json_t *j,
    uint64_t now)
{
	const char	*name = json_string_value(json_object_get(j, "name"));
	const char	*host = json_string_value(json_object_get(j, "host"));
	const char	*key;
	json_t		*pid = json_object_get(j, "pid"), *v;
	struct lease	*l;
	char		 addr[300];

	if (name == NULL || host == NULL ||
	    (l = broker_lookup(srv->broker, name)) == NULL)
		return;
	snprintf(addr, sizeof addr, strchr(host, ':') != NULL ? "[%s]:%u" :
	    "%s:%u", host, (unsigned int)l->port);
	evbuffer_add_printf(out, "<tr data-name=\"");
	api_html(out, name);
	evbuffer_add_printf(out, "\" data-expires=\"%llu\" data-created=\"%llu\">"
	    "<td>", (unsigned long long)clock_wall_ms(l->expires_at),
	    (unsigned long long)clock_wall_ms(l->created_at));
	api_html(out, name);
	evbuffer_add_printf(out, "</td><td><a href=\"http://");
	api_html(out, addr);
	evbuffer_add_printf(out, "/\" rel=\"noopener noreferrer\">");
	api_html(out, addr);
	evbuffer_add_printf(out, "</a></td><td>");
	api_html(out, json_string_value(json_object_get(j, "proto")));
	evbuffer_add_printf(out, "</td><td>");
	if (l->expires_at == 0)
		evbuffer_add_printf(out, "no expiry");
	else if (l->expires_at > now)
		api_page_dur(out, (int64_t)(l->expires_at - now));
	else
		evbuffer_add_printf(out, "expired");
	evbuffer_add_printf(out, "</td><td>");
	if (json_is_integer(pid))
		evbuffer_add_printf(out, "%lld",
		    (long long)json_integer_value(pid));
	else
		evbuffer_add_printf(out, "-");
	evbuffer_add_printf(out, "</td><td>");
	api_page_dur(out, (int64_t)now - (int64_t)l->created_at);
	evbuffer_add_printf(out, "</td><td>");
	json_object_foreach(json_object_get(j, "meta"), key, v) {
		evbuffer_add_printf(out, "<div>");
		api_html(out, key);
		evbuffer_add(out, "=", 1);
		api_html(out, json_string_value(v));
		evbuffer_add_printf(out, "</div>");
	}
	evbuffer_add_printf(out, "</td></tr>\n");
}

/*
 * A page for people: the live lease table, filled in now and kept live by
 * its script; no external assets, and a CSP that allows nothing else.
 */
void
api_index_page(struct server *srv, struct api_req *req)
{
	struct evbuffer	*out = evbuffer_new();
	json_t		*list = api_lease_list(srv), *services, *l;
	uint64_t	 now = clock_now_ms();
	long long	 index;
	size_t		 i, len;
	char		*text;

	if (out == NULL || list == NULL) {
		if (out != NULL)
			evbuffer_free(out);
		json_decref(list);
		req_fail(srv, req, 500, "internal", "out of memory");
		return;
	}
	services = json_object_get(list, "services");
	index = (long long)json_integer_value(json_object_get(list, "index"));
	evbuffer_add_printf(out, "<!doctype html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width\">\n"
	    "<title>berth</title>\n"
	    "<noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>\n"
	    "<style>%s</style>\n</head><body>\n<h1>berth</h1>\n"
	    "<p>Live leases: <span id=\"count\">%zu</span>. "
	    "Change index: <span id=\"index\">%lld</span>. "
	    "Updates: <span id=\"state\">off (no JavaScript), "
	    "reloading every 10 s</span>.</p>\n"
	    "<table><thead><tr><th>name</th><th>address</th><th>proto</th>"
	    "<th>TTL left</th><th>owner pid</th><th>age</th><th>meta</th>"
	    "</tr></thead>\n<tbody id=\"leases\" data-index=\"%lld\" "
	    "data-now=\"%llu\">\n", api_page_style, json_array_size(services),
	    index, index, (unsigned long long)now);
	json_array_foreach(services, i, l)
		api_page_row(srv, out, l, now);
	evbuffer_add_printf(out, "</tbody></table>\n<script>%s</script>\n"
	    "</body></html>\n", api_page_script);
	json_decref(list);
	req_add_header(req, "Content-Security-Policy", API_PAGE_CSP);
	req_add_header(req, "Referrer-Policy", "no-referrer");
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, -1);
	req_reply_text(srv, req, 200, "text/html; charset=utf-8", text, len);
	evbuffer_free(out);
}
