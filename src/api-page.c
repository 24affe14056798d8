/*
 * api-page.c: the status page at / for people: the broker line (version,
 * uptime, pool, from api_status_json) and the live lease table, each lease
 * with its readiness in words; a hint with the commands to run when there
 * are no leases; with --cluster, the cluster's section (api-page-cluster.c).
 *
 * All of it is filled in here, so the page works without JavaScript (and
 * then reloads itself every 10 s). An inline script keeps it current
 * through the watch API, GET /v1/services?index=N&wait=S (and
 * GET /v1/cluster/services?index=N&wait=S), and GET /v1/status, and counts
 * TTLs, ages and uptime each second; it builds rows with textContent
 * only, never markup from data. The
 * Content-Security-Policy admits exactly that script and style by their
 * SHA-256 hashes: after changing either text, put its new hash below
 * (tests/e2e/test_page.py checks both and prints the right values).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "berthd.h"

#define API_PAGE_STYLE_HASH	"sha256-jw2fTPOAcc5R5WRiFVM1SIgZuIV7tsFiGlaMzq4cMbU="
#define API_PAGE_SCRIPT_HASH	"sha256-P7zdKBTHinjUsHy8QGMODBd33QFwu7Z3KnCuKGwxLsU="

/* The page's inline style and script, byte for byte as hashed. */
static const char api_page_style[] =
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}\n"
    "h1{margin:0 0 .3em}\n"
    "header p{margin:.3em 0}\n"
    "[hidden]{display:none!important}\n"
    "[title]{text-decoration:underline dotted;cursor:help}\n"
    "meter{width:8em;vertical-align:middle}\n"
    ".item{white-space:nowrap}\n"
    "#state{color:#666}\n"
    "main{margin-top:1.2em}\n"
    ".wide{overflow-x:auto}\n"
    "table{border-collapse:collapse}\n"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}\n"
    "th{background:#f3f3f3}\n"
    "td.name,td.meta{white-space:normal;overflow-wrap:anywhere;min-width:8em;max-width:28em}\n"
    ".ready::before{content:\"\\25CF\\A0\";content:\"\\25CF\\A0\"/\"\"}\n"
    ".ready-yes{color:#17692e}\n"
    ".ready-no{color:#a3281f;font-weight:bold}\n"
    ".ready-no::before{content:\"\\25CB\\A0\";content:\"\\25CB\\A0\"/\"\"}\n"
    ".ready-unknown{color:#666}\n"
    ".ready-unknown::before{content:\"?\\A0\";content:\"?\\A0\"/\"\"}\n"
    "tr.down td{background:#fdf3f2}\n"
    "tr.down a{color:#555}\n"
    "#empty{border:1px dashed #aaa;padding:.2em 1.2em;max-width:46em}\n"
    "#cluster{margin-top:1.5em}\n"
    "#cluster-conn.off{color:#a3281f;font-weight:bold}\n"
    "tr.own td.node{font-weight:bold}\n"
    "pre{background:#f4f4f4;padding:.5em .8em;overflow-x:auto}\n"
    "code{font-family:ui-monospace,monospace;font-size:.95em}\n";

static const char api_page_script[] =
    "'use strict';\n"
    "(() => {\n"
    "  const $ = (id) => document.getElementById(id);\n"
    "  const body = $('leases');\n"
    "  const table = $('table');\n"
    "  const empty = $('empty');\n"
    "  const count = $('count');\n"
    "  const noun = $('noun');\n"
    "  const shown = $('index');\n"
    "  const state = $('state');\n"
    "  const version = $('version');\n"
    "  const uptime = $('uptime');\n"
    "  const pool = $('pool');\n"
    "  const poolText = $('pool-text');\n"
    "  // The cluster section: there with --cluster only.\n"
    "  const cluster = $('cluster');\n"
    "  const instances = $('instances');\n"
    "  const skew = Number(body.dataset.now) - Date.now();\n"
    "  let started = Number(uptime.dataset.started);\n"
    "  let index = body.dataset.index;\n"
    "  let delay = 1000;\n"
    "  let viewIndex = instances === null ? null : instances.dataset.index;\n"
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
    "    uptime.textContent = dur(now - started);\n"
    "    for (const tr of body.rows) {\n"
    "      const exp = Number(tr.dataset.expires);\n"
    "      tr.querySelector('.ttl').textContent = exp === 0 ? 'no expiry' :\n"
    "        exp > now ? dur(exp - now) : 'expired';\n"
    "      tr.querySelector('.age').textContent =\n"
    "        dur(now - Number(tr.dataset.created));\n"
    "    }\n"
    "  };\n"
    "\n"
    "  const cell = (tr, cls, text) => {\n"
    "    const td = tr.insertCell();\n"
    "    td.className = cls;\n"
    "    td.textContent = text;\n"
    "    return td;\n"
    "  };\n"
    "\n"
    "  // \"ready\": true, false, or null (or absent) when berthd cannot tell.\n"
    "  const ready = (v) => v === true ? ['yes', 'listening'] :\n"
    "    v === false ? ['no', 'not listening'] : ['unknown', 'unknown'];\n"
    "\n"
    "  // The address: a link for TCP (and both), text for UDP.\n"
    "  const addrCell = (tr, l) => {\n"
    "    const host = l.host.includes(':') ? '[' + l.host + ']' : l.host;\n"
    "    const addr = host + ':' + l.port;\n"
    "    const web = l.proto === 'tcp' || l.proto === 'both';\n"
    "    const where = cell(tr, 'addr', web ? '' : addr);\n"
    "    if (web) {\n"
    "      const a = document.createElement('a');\n"
    "      a.href = 'http://' + addr + '/';\n"
    "      a.rel = 'noopener noreferrer';\n"
    "      a.textContent = addr;\n"
    "      where.append(a);\n"
    "    }\n"
    "  };\n"
    "\n"
    "  const metaCell = (tr, meta) => {\n"
    "    const td = cell(tr, 'meta', '');\n"
    "    for (const [k, v] of Object.entries(meta)) {\n"
    "      const div = document.createElement('div');\n"
    "      div.textContent = k + '=' + v;\n"
    "      td.append(div);\n"
    "    }\n"
    "  };\n"
    "\n"
    "  const row = (l) => {\n"
    "    const tr = document.createElement('tr');\n"
    "    const [yn, said] = ready(l.ready);\n"
    "    tr.dataset.name = l.name;\n"
    "    tr.dataset.expires = l.expires_at === null ? 0 : Date.parse(l.expires_at);\n"
    "    tr.dataset.created = Date.parse(l.created_at);\n"
    "    if (l.ready === false) tr.className = 'down';\n"
    "    cell(tr, 'name', l.name);\n"
    "    addrCell(tr, l);\n"
    "    cell(tr, 'ready ready-' + yn, said);\n"
    "    cell(tr, 'proto', l.proto);\n"
    "    cell(tr, 'ttl', '');\n"
    "    cell(tr, 'pid', l.pid === null ? '-' : String(l.pid));\n"
    "    cell(tr, 'age', '');\n"
    "    metaCell(tr, l.meta);\n"
    "    return tr;\n"
    "  };\n"
    "\n"
    "  // A published instance, as api-page-cluster.c makes it; self is this\n"
    "  // node's name.\n"
    "  const instance = (self) => (s) => {\n"
    "    const tr = document.createElement('tr');\n"
    "    const own = s.node === self;\n"
    "    const [yn, said] = ready(s.ready);\n"
    "    tr.dataset.name = s.name;\n"
    "    tr.dataset.node = s.node;\n"
    "    if (own) tr.classList.add('own');\n"
    "    if (s.ready === false) tr.classList.add('down');\n"
    "    cell(tr, 'name', s.name);\n"
    "    cell(tr, 'node', own ? s.node + ' (this node)' : s.node);\n"
    "    addrCell(tr, s);\n"
    "    cell(tr, 'ready ready-' + yn, said);\n"
    "    cell(tr, 'proto', s.proto);\n"
    "    metaCell(tr, s.meta);\n"
    "    return tr;\n"
    "  };\n"
    "\n"
    "  const show = (list) => {\n"
    "    const n = list.services.length;\n"
    "    body.replaceChildren(...list.services.map(row));\n"
    "    count.textContent = String(n);\n"
    "    noun.textContent = n === 1 ? 'lease' : 'leases';\n"
    "    table.hidden = n === 0;\n"
    "    empty.hidden = n !== 0;\n"
    "    shown.textContent = String(list.index);\n"
    "    index = list.index;\n"
    "    tick();\n"
    "  };\n"
    "\n"
    "  // The broker line again, from /v1/status.\n"
    "  const about = (s) => {\n"
    "    const size = s.pool.size;\n"
    "    version.textContent = s.version;\n"
    "    started = Date.now() + skew - s.uptime * 1000;\n"
    "    pool.max = size;\n"
    "    pool.low = Math.floor(size * 3 / 4);\n"
    "    pool.high = Math.floor(size * 9 / 10);\n"
    "    pool.value = size - s.pool.free;\n"
    "    poolText.textContent = s.pool.free + ' free of ' + size;\n"
    "    poolText.title = 'ports ' + s.pool.ranges.join(', ');\n"
    "    tick();\n"
    "  };\n"
    "\n"
    "  const plural = (n, one) => n + ' ' + one + (n === 1 ? '' : 's');\n"
    "\n"
    "  // The cluster's table again, from GET /v1/cluster/services.\n"
    "  const showView = (list) => {\n"
    "    const n = list.services.length;\n"
    "    instances.replaceChildren(...list.services.map(\n"
    "      instance($('cluster-node').textContent)));\n"
    "    $('cluster-table').hidden = n === 0;\n"
    "    $('cluster-empty').hidden = n !== 0;\n"
    "    viewIndex = list.index;\n"
    "  };\n"
    "\n"
    "  const get = async (path) => {\n"
    "    const r = await fetch(path, { cache: 'no-store', credentials: 'omit' });\n"
    "    if (!r.ok) throw new Error('HTTP ' + r.status);\n"
    "    return r.json();\n"
    "  };\n"
    "\n"
    "  // Each read of /v1/status: the cluster's line again, and its table when\n"
    "  // the view's index moved. Without --cluster there is no section.\n"
    "  const aboutCluster = async (c) => {\n"
    "    if (cluster === null) return;\n"
    "    cluster.hidden = !c;\n"
    "    if (!c) return;\n"
    "    const conn = $('cluster-conn');\n"
    "    $('cluster-node').textContent = c.node;\n"
    "    conn.textContent = c.connected ? 'connected through ' + c.endpoint :\n"
    "      'not connected: ' + (c.last_error || 'unknown') +\n"
    "      ' \\u2014 showing the last view';\n"
    "    conn.className = c.connected ? '' : 'off';\n"
    "    $('cluster-nodes').textContent = plural(c.nodes, 'node');\n"
    "    $('cluster-count').textContent = plural(c.instances, 'published instance');\n"
    "    if (String(c.index) !== String(viewIndex))\n"
    "      showView(await get('/v1/cluster/services'));\n"
    "  };\n"
    "\n"
    "  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));\n"
    "\n"
    "  const watch = async () => {\n"
    "    for (;;) {\n"
    "      try {\n"
    "        const list = await get('/v1/services?index=' + index + '&wait=30');\n"
    "        const same = String(list.index) === String(index);\n"
    "        show(list);\n"
    "        const status = await get('/v1/status');\n"
    "        about(status);\n"
    "        await aboutCluster(status.cluster);\n"
    "        state.textContent = 'live';\n"
    "        delay = 1000;\n"
    "        // No change: the wait ran out, or berthd is stopping and answers\n"
    "        // at once; do not ask again in a tight loop.\n"
    "        if (same) await sleep(1000);\n"
    "      } catch (e) {\n"
    "        state.textContent = 'not connected (' + e.message + '), retrying';\n"
    "        await sleep(delay);\n"
    "        delay = Math.min(delay * 2, 10000);\n"
    "      }\n"
    "    }\n"
    "  };\n"
    "\n"
    "  // Another node's change touches no lease of this one, and etcd can go\n"
    "  // away: watch the view itself too, at most 4 s at a time, and read the\n"
    "  // status after each answer, so that the line follows the connection.\n"
    "  // watch() says whether berthd answers.\n"
    "  const watchCluster = async () => {\n"
    "    let retry = 1000;\n"
    "    for (;;) {\n"
    "      try {\n"
    "        const list = await get('/v1/cluster/services?index=' + viewIndex +\n"
    "          '&wait=4');\n"
    "        const same = String(list.index) === String(viewIndex);\n"
    "        if (!same) showView(list);\n"
    "        await aboutCluster((await get('/v1/status')).cluster);\n"
    "        retry = 1000;\n"
    "        if (same) await sleep(1000);\n"
    "      } catch (e) {\n"
    "        await sleep(retry);\n"
    "        retry = Math.min(retry * 2, 10000);\n"
    "      }\n"
    "    }\n"
    "  };\n"
    "\n"
    "  state.textContent = 'live';\n"
    "  tick();\n"
    "  setInterval(tick, 1000);\n"
    "  watch();\n"
    "  if (cluster !== null) watchCluster();\n"
    "})();\n";

#define API_PAGE_CSP \
	"default-src 'none'; script-src '" API_PAGE_SCRIPT_HASH "'; " \
	"style-src '" API_PAGE_STYLE_HASH "'; connect-src 'self'; " \
	"img-src 'none'; base-uri 'none'; form-action 'none'; " \
	"frame-ancestors 'none'"

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
 * One row, the same cells, classes and data attributes the script makes,
 * so that it can count down rows it did not make.
 */
static void
api_page_row(struct server *srv, struct evbuffer *out, json_t *j,
    uint64_t now)
{
	const char	*name = json_string_value(json_object_get(j, "name"));
	const char	*host = json_string_value(json_object_get(j, "host"));
	const char	*proto = json_string_value(json_object_get(j, "proto"));
	const char	*ready, *said;
	json_t		*pid = json_object_get(j, "pid");
	struct lease	*l;

	if (name == NULL || host == NULL ||
	    (l = broker_lookup(srv->broker, name)) == NULL)
		return;
	ready = api_html_ready(json_object_get(j, "ready"), &said);
	evbuffer_add_printf(out, "<tr%s data-name=\"",
	    strcmp(ready, "no") == 0 ? " class=\"down\"" : "");
	api_html(out, name);
	evbuffer_add_printf(out, "\" data-expires=\"%llu\" "
	    "data-created=\"%llu\"><td class=\"name\">",
	    (unsigned long long)clock_wall_ms(l->expires_at),
	    (unsigned long long)clock_wall_ms(l->created_at));
	api_html(out, name);
	evbuffer_add_printf(out, "</td>");
	api_html_addr(out, host, (unsigned int)l->port, proto);
	evbuffer_add_printf(out, "<td class=\"ready ready-%s\">%s</td>"
	    "<td class=\"proto\">", ready, said);
	api_html(out, proto);
	evbuffer_add_printf(out, "</td><td class=\"ttl\">");
	if (l->expires_at == 0)
		evbuffer_add_printf(out, "no expiry");
	else if (l->expires_at > now)
		api_page_dur(out, (int64_t)(l->expires_at - now));
	else
		evbuffer_add_printf(out, "expired");
	evbuffer_add_printf(out, "</td><td class=\"pid\">");
	if (json_is_integer(pid))
		evbuffer_add_printf(out, "%lld",
		    (long long)json_integer_value(pid));
	else
		evbuffer_add_printf(out, "-");
	evbuffer_add_printf(out, "</td><td class=\"age\">");
	api_page_dur(out, (int64_t)now - (int64_t)l->created_at);
	evbuffer_add_printf(out, "</td>");
	api_html_meta(out, json_object_get(j, "meta"));
	evbuffer_add_printf(out, "</tr>\n");
}

/* Where DNS is answered (dig's @ and -p), or that it is off. */
static void
api_page_dns(struct evbuffer *out, json_t *dns)
{
	const char	*addr = json_string_value(json_object_get(dns, "address"));

	evbuffer_add_printf(out, " &middot; <span class=\"item\" id=\"dns\" "
	    "title=\"berthd answers DNS for the zone berth. here, over UDP: "
	    "NAME.berth, _NAME._tcp.berth\">DNS: ");
	if (addr == NULL)
		evbuffer_add_printf(out, "off");
	else {
		evbuffer_add_printf(out, "udp ");
		api_html(out, addr);
	}
	evbuffer_add_printf(out, "</span>");
}

/*
 * The broker line, from /v1/status's object: version, uptime, how full
 * the pool is, as "N free of M" beside a <meter> of the ports in use
 * (HTML alone draws it; the script only updates it), and DNS.
 */
static void
api_page_about(struct evbuffer *out, json_t *status, uint64_t now)
{
	json_t		*pool = json_object_get(status, "pool"), *r;
	long long	 size, nfree, up;
	size_t		 i;

	size = (long long)json_integer_value(json_object_get(pool, "size"));
	nfree = (long long)json_integer_value(json_object_get(pool, "free"));
	up = (long long)json_integer_value(json_object_get(status, "uptime"));
	evbuffer_add_printf(out, "<p>berthd <span id=\"version\">");
	api_html(out, json_string_value(json_object_get(status, "version")));
	evbuffer_add_printf(out, "</span> &middot; <span class=\"item\">up "
	    "<span id=\"uptime\" data-started=\"%llu\">",
	    (unsigned long long)(now - up * 1000));
	api_page_dur(out, up * 1000);
	evbuffer_add_printf(out, "</span></span> &middot; <span class=\"item\">"
	    "<label for=\"pool\">port pool</label> <meter id=\"pool\" "
	    "min=\"0\" max=\"%lld\" low=\"%lld\" high=\"%lld\" optimum=\"0\" "
	    "value=\"%lld\" aria-describedby=\"pool-text\"></meter> "
	    "<span id=\"pool-text\" title=\"ports ", size, size * 3 / 4,
	    size * 9 / 10, size - nfree);
	json_array_foreach(json_object_get(pool, "ranges"), i, r) {
		if (i > 0)
			evbuffer_add_printf(out, ", ");
		api_html(out, json_string_value(r));
	}
	evbuffer_add_printf(out, "\">%lld free of %lld</span></span>",
	    nfree, size);
	api_page_dns(out, json_object_get(status, "dns"));
	evbuffer_add_printf(out, "</p>\n");
}

/* "berth", with --addr ADDR unless ADDR is where the CLI looks anyway. */
static void
api_page_cli(struct evbuffer *out, const char *addr)
{
	evbuffer_add_printf(out, "berth");
	if (addr != NULL && strcmp(addr, BERTH_DEFAULT_ADDR) != 0) {
		evbuffer_add_printf(out, " --addr ");
		api_html(out, addr);
	}
}

/*
 * What a person sees when there are no leases: the commands that make
 * one, aimed at this berthd (its first TCP listener, as /v1/status lists
 * them).
 */
static void
api_page_empty(struct evbuffer *out, json_t *status, int hidden)
{
	json_t		*a;
	const char	*addr = NULL, *t;
	size_t		 i;

	json_array_foreach(json_object_get(status, "listen"), i, a) {
		if ((t = json_string_value(a)) != NULL && addr == NULL &&
		    strncmp(t, "unix:", 5) != 0)
			addr = t;
	}
	evbuffer_add_printf(out, "<div id=\"empty\"%s>\n<p><strong>No leases "
	    "yet.</strong> Start a service through berth and it appears "
	    "here:</p>\n<pre><code>", hidden ? " hidden" : "");
	api_page_cli(out, addr);
	evbuffer_add_printf(out, " run api -- ./server --port {port}</code>"
	    "</pre>\n<p>berth picks a free port, puts it in place of <code>"
	    "{port}</code>, runs the command, and frees the port when the "
	    "command exits. To reserve a port for a service you start "
	    "yourself (berth prints the port):</p>\n<pre><code>");
	api_page_cli(out, addr);
	evbuffer_add_printf(out, " acquire api</code></pre>\n</div>\n");
}

/* The head, the broker line, the lease count and the update state. */
static void
api_page_head(struct evbuffer *out, json_t *status, size_t n,
    long long index, uint64_t now)
{
	evbuffer_add_printf(out, "<!doctype html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width\">\n"
	    "<title>berth</title>\n"
	    "<noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>\n"
	    "<style>%s</style>\n</head><body>\n<header>\n<h1>berth</h1>\n",
	    api_page_style);
	api_page_about(out, status, now);
	evbuffer_add_printf(out, "<p><span id=\"summary\"><span id=\"count\">"
	    "%zu</span> <span id=\"noun\">%s</span></span> &middot; "
	    "<span id=\"changes\" title=\"How many times the lease table has "
	    "changed since the database was created (the API's change index, "
	    "X-Berth-Index)\">changes: <span id=\"index\">%lld</span></span> "
	    "&middot; updates: <span id=\"state\">off (no JavaScript), "
	    "reloading every 10 s</span></p>\n</header>\n<main>\n", n,
	    n == 1 ? "lease" : "leases", index);
}

/*
 * A page for people: the broker line, the live lease table and, with
 * --cluster, the cluster's section (api-page-cluster.c), filled in now
 * and kept live by its script; no external assets, and a CSP that allows
 * nothing else.
 */
void
api_index_page(struct server *srv, struct api_req *req)
{
	struct evbuffer	*out = evbuffer_new();
	json_t		*list = api_lease_list(srv), *services, *l;
	json_t		*status = api_status_json(srv);
	uint64_t	 now = clock_now_ms();
	long long	 index;
	size_t		 i, n, len;
	char		*text;

	if (out == NULL || list == NULL || status == NULL)
		goto nomem;
	services = json_object_get(list, "services");
	n = json_array_size(services);
	index = (long long)json_integer_value(json_object_get(list, "index"));
	api_page_head(out, status, n, index, now);
	api_page_empty(out, status, n > 0);
	evbuffer_add_printf(out, "<div id=\"table\" class=\"wide\"%s>"
	    "<table aria-label=\"leases\">"
	    "<thead><tr><th>name</th><th>address</th><th title=\"Whether "
	    "something listens on the port (TCP) or is bound to it (UDP); "
	    "unknown when berthd cannot tell, as for a host that is not this "
	    "machine\">state</th><th>proto</th><th>TTL left</th>"
	    "<th>owner pid</th><th>age</th><th>meta</th></tr></thead>\n"
	    "<tbody id=\"leases\" data-index=\"%lld\" data-now=\"%llu\">\n",
	    n == 0 ? " hidden" : "", index, (unsigned long long)now);
	json_array_foreach(services, i, l)
		api_page_row(srv, out, l, now);
	evbuffer_add_printf(out, "</tbody></table></div>\n");
	if (api_page_cluster(srv, out, status) == -1)
		goto nomem;
	evbuffer_add_printf(out, "</main>\n<script>%s</script>\n</body>"
	    "</html>\n", api_page_script);
	json_decref(list);
	json_decref(status);
	req_add_header(req, "Content-Security-Policy", API_PAGE_CSP);
	req_add_header(req, "Referrer-Policy", "no-referrer");
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, -1);
	req_reply_text(srv, req, 200, "text/html; charset=utf-8", text, len);
	evbuffer_free(out);
	return;
nomem:
	if (out != NULL)
		evbuffer_free(out);
	json_decref(list);
	json_decref(status);
	req_fail(srv, req, 500, "internal", "out of memory");
}
