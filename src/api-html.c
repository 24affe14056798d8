/*
 * api-html.c: the HTML that the status page's parts share (api-page.c,
 * api-page-cluster.c): escaping, and the cells that a lease's row and a
 * cluster instance's row both have: the address, readiness in words, meta.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "berthd.h"

/* HTML-escape s into out. */
void
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

/*
 * A lease's "ready" as the page says it, in words (never by colour alone)
 * and as the class that styles it: true, false, or null or absent when
 * berthd cannot tell.
 */
const char *
api_html_ready(json_t *ready, const char **words)
{
	if (json_is_true(ready)) {
		*words = "listening";
		return ("yes");
	}
	if (json_is_false(ready)) {
		*words = "not listening";
		return ("no");
	}
	*words = "unknown";
	return ("unknown");
}

/*
 * The address cell: a link for TCP (and both), which a browser can open;
 * the address as text for UDP.
 */
void
api_html_addr(struct evbuffer *out, const char *host, unsigned int port,
    const char *proto)
{
	char	addr[300];

	snprintf(addr, sizeof addr, strchr(host, ':') != NULL ? "[%s]:%u" :
	    "%s:%u", host, port);
	evbuffer_add_printf(out, "<td class=\"addr\">");
	if (proto != NULL &&
	    (strcmp(proto, "tcp") == 0 || strcmp(proto, "both") == 0)) {
		evbuffer_add_printf(out, "<a href=\"http://");
		api_html(out, addr);
		evbuffer_add_printf(out, "/\" rel=\"noopener noreferrer\">");
		api_html(out, addr);
		evbuffer_add_printf(out, "</a>");
	} else
		api_html(out, addr);
	evbuffer_add_printf(out, "</td>");
}

/* The meta cell: each key=value on a line of its own, escaped. */
void
api_html_meta(struct evbuffer *out, json_t *meta)
{
	const char	*key;
	json_t		*v;

	evbuffer_add_printf(out, "<td class=\"meta\">");
	json_object_foreach(meta, key, v) {
		evbuffer_add_printf(out, "<div>");
		api_html(out, key);
		evbuffer_add(out, "=", 1);
		api_html(out, json_string_value(v));
		evbuffer_add_printf(out, "</div>");
	}
	evbuffer_add_printf(out, "</td>");
}
