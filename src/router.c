/*
 * router.c: the one route table, and what every request passes through
 * before its handler: the browser-safety checks (a Host allow-list
 * against DNS rebinding, Origin refusal, CORS for allowed origins), the
 * match of its path, the name check, and the method check (405 with an
 * Allow header made from the same table). /metrics labels requests by
 * the pattern they matched, from the table too.
 *
 * To add an endpoint: write its handler in api-*.c, declare it in
 * berthd.h, add a row here (and a section to docs/api.md).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>


#include "berthd.h"

#define GET	(HTTP_GET | HTTP_HEAD)
#define POST	HTTP_POST
#define DELETE	HTTP_DELETE

/*
 * Each path pattern once, with a handler per method. A "{name}" segment
 * matches one path segment, which must be a lease name; a collection
 * also answers its path with a trailing '/'. The order of the rows is
 * the order of /metrics' route ids.
 */
static const struct route router_table[] = {
	{ 0, "/", 0, { { GET, api_index_page } } },
	{ 1, "/metrics", 0, { { GET, api_metrics } } },
	{ 2, "/v1/health", 0, { { GET, api_health } } },
	{ 3, "/v1/status", 0, { { GET, api_status } } },
	{ 4, "/v1/services", 1, { { GET, api_list }, { POST, api_acquire } } },
	{ 5, "/v1/services/{name}", 0, { { GET, api_lookup },
	    { DELETE, api_release } } },
	{ 6, "/v1/services/{name}/renew", 0, { { POST, api_renew } } },
	{ 7, "/v1/cluster/nodes", 0, { { GET, api_cluster_nodes } } },
	{ 8, "/v1/cluster/services", 1, { { GET, api_cluster_list } } },
	{ 9, "/v1/cluster/services/{name}", 0,
	    { { GET, api_cluster_lookup } } },
};
#define ROUTER_NROUTES	(sizeof router_table / sizeof router_table[0])

/* The methods, in the order an Allow header names them. */
static const struct {
	int		 bit;
	const char	*name;
} router_methods[] = {
	{ HTTP_GET, "GET" }, { HTTP_HEAD, "HEAD" },
	{ HTTP_POST, "POST" }, { HTTP_DELETE, "DELETE" }
};

/*
 * Does path match rt's pattern? A {name} segment is copied to name (cut
 * at its size); *named says one was met, even where the rest did not
 * match. A collection takes a trailing '/': "/v1/services/".
 */
static int
router_match(const struct route *rt, const char *path, char *name,
    size_t namesize, int *named)
{
	const char	*pattern = rt->pattern;
	size_t		 len, n;

	while (*pattern != '\0') {
		if (*pattern == '{' && strncmp(pattern, "{name}", 6) == 0) {
			if (*path == '\0' || *path == '/')
				return (0);
			len = strcspn(path, "/");
			n = len < namesize - 1 ? len : namesize - 1;
			memcpy(name, path, n);
			name[n] = '\0';
			*named = 1;
			path += len;
			pattern += 6;
			if (*pattern == '\0' && *path != '\0')
				return (0);
			continue;
		}
		if (*pattern++ != *path++)
			return (0);
	}
	return (*path == '\0' || (rt->collection && strcmp(path, "/") == 0));
}

/* The route path matches (req->name filled in if it has one), or NULL. */
static const struct route *
router_find(struct api_req *req, const char *path, int *named)
{
	size_t	i;

	*named = 0;
	for (i = 0; i < ROUTER_NROUTES; i++) {
		if (router_match(&router_table[i], path, req->name,
		    sizeof req->name, named))
			return (&router_table[i]);
	}
	return (NULL);
}

/* 405, with the methods the route takes in Allow. */
static void
router_not_allowed(struct server *srv, struct api_req *req,
    const struct route *rt)
{
	char	allow[64] = "";
	int	bits = 0;
	size_t	i;

	for (i = 0; i < ROUTE_MAX_HANDLERS; i++)
		bits |= rt->handlers[i].methods;
	for (i = 0; i < sizeof router_methods / sizeof router_methods[0]; i++) {
		if (bits & router_methods[i].bit)
			snprintf(allow + strlen(allow), sizeof allow -
			    strlen(allow), "%s%s", allow[0] != '\0' ? ", " : "",
			    router_methods[i].name);
	}
	req_add_header(req, "Allow", allow);
	req_fail(srv, req, 405, "method_not_allowed", "use %s on this path",
	    allow);
}

/*
 * Host header allow-list against DNS rebinding: a loopback name or address,
 * or the host of one of our listen addresses, with an optional port.
 */
int
router_host_allowed(const struct server *srv, const char *host)
{
	char		 name[256];
	const char	*end;
	struct in_addr	 a4;
	struct in6_addr	 a6;
	size_t		 len, i;

	if (host[0] == '[') {
		if ((end = strchr(host, ']')) == NULL)
			return (0);
		len = (size_t)(end - host - 1);
		if (len >= sizeof name)
			return (0);
		memcpy(name, host + 1, len);
		name[len] = '\0';
		end++;
	} else {
		end = strchr(host, ':');
		len = end != NULL ? (size_t)(end - host) : strlen(host);
		if (len >= sizeof name)
			return (0);
		memcpy(name, host, len);
		name[len] = '\0';
		if (end == NULL)
			end = host + len;
	}
	if (*end == ':') {
		for (i = 1; end[i] != '\0'; i++)
			if (!isdigit((unsigned char)end[i]))
				return (0);
		if (i == 1 || i > 6)
			return (0);
	} else if (*end != '\0')
		return (0);
	if (strcasecmp(name, "localhost") == 0)
		return (1);
	if (len > 10 && strcasecmp(name + len - 10, ".localhost") == 0)
		return (1);
	if (inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127)
		return (1);
	if (inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))
		return (1);
	for (i = 0; i < srv->cfg->nlisten; i++) {
		if (srv->cfg->listen[i].family != AF_UNIX &&
		    strcasecmp(srv->cfg->listen[i].host, name) == 0)
			return (1);
	}
	return (0);
}

/* An Origin is allowed if configured, or if it is our own (same-origin). */
static int
router_origin_allowed(const struct server *srv, const char *origin,
    const char *host)
{
	char	self[300];
	size_t	i;

	for (i = 0; i < srv->cfg->norigins; i++) {
		if (strcmp(srv->cfg->origins[i], "*") == 0 ||
		    strcasecmp(srv->cfg->origins[i], origin) == 0)
			return (1);
	}
	if (host != NULL) {
		snprintf(self, sizeof self, "http://%s", host);
		if (strcasecmp(self, origin) == 0)
			return (1);
	}
	return (0);
}

/* An absolute-form request line (GET http://host/...) names a host too. */
static int
router_uri_host_allowed(const struct server *srv, struct api_req *req)
{
	const char	*host = req->uri_host;
	char		 buf[300];

	if (host == NULL)
		return (1);
	if (strchr(host, ':') != NULL && host[0] != '[') {
		snprintf(buf, sizeof buf, "[%s]", host);
		host = buf;
	}
	return (router_host_allowed(srv, host));
}

/*
 * An allowed origin may read our answers (CORS). A preflight OPTIONS is
 * answered in router_dispatch.
 */
static void
router_cors(struct api_req *req, const char *origin)
{
	req_add_header(req, "Access-Control-Allow-Origin", origin);
	req_add_header(req, "Vary", "Origin");
	if (req->method != HTTP_OPTIONS)
		return;
	req_add_header(req, "Access-Control-Allow-Methods",
	    "GET, HEAD, POST, DELETE");
	req_add_header(req, "Access-Control-Allow-Headers",
	    "Authorization, Content-Type");
	req_add_header(req, "Access-Control-Expose-Headers",
	    "X-Berth-Index, Location");
	req_add_header(req, "Access-Control-Max-Age", "600");
}

/* Does a browser speak for this request: Origin, or any Sec-Fetch-*? */
static int
router_from_browser(const struct api_req *req)
{
	size_t	i;

	for (i = 0; i < req->nfields; i++) {
		if (strcasecmp(req->fields[i].name, "Origin") == 0 ||
		    strncasecmp(req->fields[i].name, "Sec-Fetch-", 10) == 0)
			return (1);
	}
	return (0);
}

/*
 * A cross-site request without CORS (an <img>, a no-cors fetch) carries
 * no Origin, but a browser says where it comes from in Sec-Fetch-Site:
 * only the user's own navigation ("none") or our own page
 * ("same-origin") may go on, so a page cannot even time our answers.
 */
static int
router_fetch_site_allowed(const struct api_req *req)
{
	const char	*site = req_header(req, "Sec-Fetch-Site");

	return (site == NULL || strcasecmp(site, "none") == 0 ||
	    strcasecmp(site, "same-origin") == 0);
}

/* The checks every request passes before it is routed; -1: answered. */
static int
router_admit(struct server *srv, struct api_req *req)
{
	const char	*host, *origin;

	host = req_header(req, "Host");
	/* No browser reaches a unix socket: no rebinding to refuse there. */
	if (!req->local && ((host != NULL &&
	    !router_host_allowed(srv, host)) ||
	    !router_uri_host_allowed(srv, req))) {
		req_fail(srv, req, 403, "forbidden_host", "the Host header is "
		    "not a loopback name or a listen address of this berthd "
		    "(DNS rebinding?)");
		return (-1);
	}
	/* A browser acts for a page, whoever runs it: never an admin. */
	req->browser = router_from_browser(req);
	if (!router_fetch_site_allowed(req)) {
		req_fail(srv, req, 403, "forbidden_origin", "requests made by "
		    "web pages of other sites are refused (Sec-Fetch-Site)");
		return (-1);
	}
	origin = req_header(req, "Origin");
	if (origin == NULL)
		return (0);
	if (!router_origin_allowed(srv, origin, host)) {
		req_fail(srv, req, 403, "forbidden_origin", "requests from web "
		    "pages are refused unless berthd runs with --allow-origin "
		    "for that origin");
		return (-1);
	}
	router_cors(req, origin);
	return (0);
}

/* Route a request that is routed already (new, or asked again). */
static void
router_route(struct server *srv, struct api_req *req)
{
	const char		*path = req->path;
	const struct route	*rt;
	char			 msg[160];
	int			 named;
	size_t			 i;

	if (path == NULL || path[0] == '\0')
		path = "/";
	req->route = rt = router_find(req, path, &named);
	if (router_admit(srv, req) == -1)
		return;
	/* A CORS preflight from an allowed origin (router_admit said so). */
	if (req->method == HTTP_OPTIONS &&
	    req_header(req, "Origin") != NULL) {
		req_reply_json(srv, req, 204, NULL);
		return;
	}
	if (named && !names_valid(req->name)) {
		req_fail(srv, req, 400, "invalid_name", "%s",
		    names_message(req->name, msg, sizeof msg));
		return;
	}
	if (rt == NULL) {
		req_fail(srv, req, 404, "not_found", "no such endpoint; see "
		    "GET /v1/status and docs/api.md");
		return;
	}
	for (i = 0; i < ROUTE_MAX_HANDLERS; i++) {
		if (req->method & rt->handlers[i].methods) {
			rt->handlers[i].fn(srv, req);
			return;
		}
	}
	router_not_allowed(srv, req, rt);
}

/* Check, route and answer one request from its carrier. */
void
router_dispatch(struct server *srv, struct api_req *req)
{
	req_set_state(req, REQ_ROUTED);
	router_route(srv, req);
}

/*
 * A commit hook: the turn is over; send the answers held for it, and ask
 * again the reads of a turn that failed (request.c).
 */
void
router_committed(void *arg, int ok)
{
	req_send_held(arg, ok, router_route);
}
