/*
 * http.c: the HTTP carrier of API requests. evhttp parses the request;
 * we wrap it in a struct api_req, hand it to router_dispatch (router.c),
 * and send what comes back, once the turn's commit allows.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "berthd.h"

static const char *
http_reason(int status)
{
	switch (status) {
	case 200: return ("OK");
	case 201: return ("Created");
	case 204: return ("No Content");
	case 400: return ("Bad Request");
	case 403: return ("Forbidden");
	case 404: return ("Not Found");
	case 405: return ("Method Not Allowed");
	case 409: return ("Conflict");
	case 411: return ("Length Required");
	case 413: return ("Payload Too Large");
	case 415: return ("Unsupported Media Type");
	case 500: return ("Internal Server Error");
	case 503: return ("Service Unavailable");
	default: return ("Unknown");
	}
}

/* The carrier's send: put the answer on the wire and free req. */
static void
http_send(struct api_req *req, int status, struct evbuffer *body)
{
	struct evhttp_request	*evreq = req->ctx;
	char			 len[32];

	conn_request_end(evreq);
	/* evhttp would send a HEAD answer's body; send its length only. */
	if (req->method == EVHTTP_REQ_HEAD && body != NULL) {
		snprintf(len, sizeof len, "%zu", evbuffer_get_length(body));
		evhttp_add_header(req->out, "Content-Length", len);
		evhttp_send_reply(evreq, status, http_reason(status), NULL);
	} else
		evhttp_send_reply(evreq, status, http_reason(status),
		    status == 204 ? NULL : body);
	if (body != NULL)
		evbuffer_free(body);
	free(req);
}

/* A parked request: the connection's idle timeout must not cut it short. */
static void
http_parked(struct api_req *req, unsigned int wait)
{
	struct evhttp_connection	*evcon;

	if ((evcon = evhttp_request_get_connection(req->ctx)) != NULL)
		evhttp_connection_set_timeout(evcon, (int)wait + 5);
}

/* evhttp has a whole request: wrap it and dispatch it. */
static void
http_request_cb(struct evhttp_request *evreq, void *arg)
{
	struct server		*srv = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(evreq);
	struct evbuffer		*in = evhttp_request_get_input_buffer(evreq);
	struct api_req		*req;

	if ((req = calloc(1, sizeof *req)) == NULL) {
		evhttp_send_error(evreq, 500, "out of memory");
		return;
	}
	req->method = (int)evhttp_request_get_command(evreq);
	req->path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	req->query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	req->uri_host = uri != NULL ? evhttp_uri_get_host(uri) : NULL;
	req->in = evhttp_request_get_input_headers(evreq);
	req->out = evhttp_request_get_output_headers(evreq);
	req->body_len = evbuffer_get_length(in);
	req->body = req->body_len > 0 ?
	    (const char *)evbuffer_pullup(in, -1) : NULL;
	conn_request_begin(evreq, &req->local, &req->admin);
	req->send = http_send;
	req->parked = http_parked;
	req->ctx = evreq;
	router_dispatch(srv, req);
}

int
http_init(struct server *srv)
{
	if ((srv->http = evhttp_new(srv->base)) == NULL)
		return (-1);
	/* Every method reaches the router, so a wrong one gets a JSON 405. */
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	/* Bodies up to 1 MiB are read so that we answer 413 in JSON. */
	evhttp_set_max_body_size(srv->http, 1024 * 1024);
	evhttp_set_max_headers_size(srv->http, srv->cfg->max_header_size);
	evhttp_set_timeout(srv->http, (int)srv->cfg->idle_timeout);
	evhttp_set_bevcb(srv->http, conn_new_bev, srv);
	evhttp_set_gencb(srv->http, http_request_cb, srv);
	return (0);
}

void
http_free(struct server *srv)
{
	if (srv->http != NULL)
		evhttp_free(srv->http);
	srv->http = NULL;
}
