/*
 * etcd.c: berthd's client of etcd's v3 JSON gateway (the kv, lease
 * and watch calls) over libevent's HTTP client. Calls are POSTs of
 * a JSON body answered by one JSON object; a watch is one long POST whose
 * answer streams a JSON object per event batch. Keys and values are
 * base64 on the wire, as the gateway maps protobuf's bytes. On a
 * connection error the next endpoint is tried, after a backoff once all
 * have failed. Everything runs on berthd's event loop and nothing local
 * waits for it: the caller's callback runs when etcd has answered.
 *
 * https:// endpoints go through libevent's OpenSSL bufferevents, with one
 * SSL_CTX made at the start: etcd's certificate must chain to
 * --cluster-cacert (else to the system's CAs) and name the endpoint's
 * host (an IP address: in its subjectAltName); --cluster-cert and
 * --cluster-key, if given, are berthd's client certificate.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "berthd.h"
#include "etcd.h"

#define ETCD_TIMEOUT		5	/* seconds, a call's answer */
/*
 * A watch's: evhttp has one timeout for connect, write and read, and
 * without one it reads for 50 s only, so a quiet cluster's watch ended
 * every 50 s. A dead etcd is noticed by the keepalive calls instead.
 */
#define ETCD_WATCH_TIMEOUT	(24 * 60 * 60)
#define ETCD_MAX_ANSWER		(64 * 1024 * 1024)	/* a range of a big view */
#define ETCD_MAX_EVENT		(4 * 1024 * 1024)	/* one watch message */

/*
 * One connection to an endpoint, for one call or one watch and never for
 * a second request: evhttp would reconnect it with the same bufferevent
 * (and, with TLS, the same SSL object cleared for reuse). Its owner
 * retires it, and etcd_reap frees it on a later turn of the loop: never
 * from inside one of evhttp's callbacks, which use it after they return.
 */
struct etcd_conn {
	TAILQ_ENTRY(etcd_conn)	 entry;
	struct etcd		*e;
	const struct etcd_endpoint *ep;
	struct evhttp_connection *evcon;
	int			 retired;	/* its owner is done with it */
	etcd_answer_fn		 fn;		/* a call's */
	void			*arg;
	struct etcd_watch	*watch;		/* or the watch's */
	struct bufferevent	*tls;		/* OpenSSL's, for its errors */
	long			 verify_err;	/* the first, X509_V_OK: none */
	int			 hello;		/* the TLS handshake began */
	int			 handshaken;	/* and ended well */
	int			 failed;	/* evhttp said the request failed */
};
TAILQ_HEAD(etcd_conns, etcd_conn);

struct etcd {
	struct event_base	*base;
	const struct etcd_endpoint *eps;
	size_t			 neps;
	size_t			 cur;		/* endpoint in use */
	SSL_CTX			*ssl_ctx;	/* NULL: no https endpoint */
	int			 client_cert;	/* --cluster-cert given */
	struct etcd_conns	 conns;		/* open, and retired ones */
	struct event		*reap;		/* frees the retired */
	char			 last_error[512];
};

struct etcd_watch {
	struct etcd		*e;
	struct etcd_conn	*conn;
	struct evbuffer		*pending;	/* a message not yet whole */
	etcd_event_fn		 fn;
	etcd_end_fn		 end;
	void			*arg;
	int			 failed;
};

static void
etcd_conn_free(struct etcd_conn *c)
{
	TAILQ_REMOVE(&c->e->conns, c, entry);
	/* libevent frees the SSL object later: let it point nowhere. */
	if (c->tls != NULL)
		SSL_set_app_data(bufferevent_openssl_get_ssl(c->tls), NULL);
	/* Frees a request still on it without calling its callback. */
	evhttp_connection_free(c->evcon);
	free(c);
}

/* Done with c: its callbacks do nothing from now on; freed soon. */
static void
etcd_conn_retire(struct etcd_conn *c)
{
	c->retired = 1;
	event_active(c->e->reap, EV_TIMEOUT, 1);
}

static void
etcd_reap(evutil_socket_t fd, short what, void *arg)
{
	struct etcd		*e = arg;
	struct etcd_conn	*c, *next;

	(void)fd;
	(void)what;
	for (c = TAILQ_FIRST(&e->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->retired)
			etcd_conn_free(c);
	}
}

/* --- TLS --- */

/* The reason of an OpenSSL error code, as OpenSSL words it. */
static const char *
etcd_tls_reason(unsigned long code, char *buf, size_t len)
{
	const char	*r;

	if ((r = ERR_reason_error_string(code)) != NULL)
		return (r);
	ERR_error_string_n(code, buf, len);
	return (buf);
}

/* why: what failed, then the first error OpenSSL queued (the cause; the
 * later ones say where it surfaced), then more. Clears the queue. */
static int
etcd_tls_fail(char *err, size_t errlen, const char *why, const char *more)
{
	unsigned long	code = ERR_get_error();
	char		buf[256];

	snprintf(err, errlen, "%s (%s)%s", why, code != 0 ?
	    etcd_tls_reason(code, buf, sizeof buf) : "no reason given", more);
	ERR_clear_error();
	return (-1);
}

/* Never ask for a passphrase on the terminal: a key that has one fails. */
static int
etcd_tls_nopass(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return (0);
}

/* Keep the first reason OpenSSL refuses etcd's certificate chain for:
 * after the handshake fails, evhttp's reset clears the SSL object. */
static int
etcd_tls_verify(int ok, X509_STORE_CTX *store)
{
	SSL		 *ssl;
	struct etcd_conn *c;

	ssl = X509_STORE_CTX_get_ex_data(store,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (!ok && ssl != NULL && (c = SSL_get_app_data(ssl)) != NULL &&
	    c->verify_err == X509_V_OK)
		c->verify_err = X509_STORE_CTX_get_error(store);
	return (ok);
}

static void
etcd_tls_info(const SSL *ssl, int where, int ret)
{
	struct etcd_conn *c;

	(void)ret;
	if ((where & SSL_CB_HANDSHAKE_START) &&
	    (c = SSL_get_app_data(ssl)) != NULL)
		c->hello = 1;
	if ((where & SSL_CB_HANDSHAKE_DONE) &&
	    (c = SSL_get_app_data(ssl)) != NULL)
		c->handshaken = 1;
}

/* The client certificate (with any chain after it) and its key. */
static int
etcd_tls_client(SSL_CTX *ctx, const char *cert, const char *key, char *err,
    size_t errlen)
{
	unsigned long	code;
	char		what[4200];

	snprintf(what, sizeof what, "--cluster-cert %s: no certificate "
	    "berthd can use in it", cert);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return (etcd_tls_fail(err, errlen, what, ""));
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		code = ERR_peek_error();
		if (ERR_GET_LIB(code) == ERR_LIB_X509 &&
		    (ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH ||
		    ERR_GET_REASON(code) == X509_R_KEY_TYPE_MISMATCH)) {
			ERR_clear_error();
			snprintf(err, errlen, "--cluster-key %s is not the key "
			    "of --cluster-cert %s", key, cert);
			return (-1);
		}
		snprintf(what, sizeof what, "--cluster-key %s: no private key "
		    "berthd can use in it", key);
		return (etcd_tls_fail(err, errlen, what, "; berthd reads PEM "
		    "keys without a passphrase"));
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "--cluster-key %s is not the key of "
		    "--cluster-cert %s", key, cert);
		return (-1);
	}
	return (0);
}

/* The client's trust (the CA file, else the system's), its certificate
 * and key, and what it asks of a server: TLS 1.2 on, a verified peer. */
static SSL_CTX *
etcd_tls_ctx(const char *cacert, const char *cert, const char *key,
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	char	 what[4200];
	int	 rc = 0;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		etcd_tls_fail(err, errlen, "cannot set up TLS", "");
		return (NULL);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* An end without close_notify is the EOF libevent 2.1 expects;
	 * HTTP's own framing tells a cut answer. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, etcd_tls_verify);
	SSL_CTX_set_default_passwd_cb(ctx, etcd_tls_nopass);
	if (cacert != NULL && cacert[0] != '\0') {
		snprintf(what, sizeof what, "--cluster-cacert %s: no CA "
		    "certificate berthd can use in it", cacert);
		if (SSL_CTX_load_verify_locations(ctx, cacert, NULL) != 1)
			rc = etcd_tls_fail(err, errlen, what, "");
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		rc = etcd_tls_fail(err, errlen, "cannot load the system's CA "
		    "certificates", "");
	if (rc == 0 && cert != NULL && cert[0] != '\0')
		rc = etcd_tls_client(ctx, cert, key, err, errlen);
	if (rc == -1) {
		SSL_CTX_free(ctx);
		return (NULL);
	}
	return (ctx);
}

/*
 * Whether the TLS files make a client context, without keeping it: for
 * the configuration's checks at start, so that a mistake stops berthd
 * before it runs (as etcd_new would, later).
 */
int
etcd_tls_check(const char *cacert, const char *cert, const char *key,
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = etcd_tls_ctx(cacert, cert, key, err, errlen)) == NULL)
		return (-1);
	SSL_CTX_free(ctx);
	return (0);
}

/* A fresh SSL object for c: SNI and the name check for a host name, the
 * address check for an IP address (which SNI must not carry). */
static SSL *
etcd_tls_ssl(struct etcd_conn *c)
{
	const char	*host = c->ep->host;
	unsigned char	 addr[sizeof(struct in6_addr)];
	SSL		*ssl;
	int		 ok;

	if ((ssl = SSL_new(c->e->ssl_ctx)) == NULL)
		return (NULL);
	SSL_set_app_data(ssl, c);
	SSL_set_info_callback(ssl, etcd_tls_info);
	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    host) == 1;
	else {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = SSL_set_tlsext_host_name(ssl, host) == 1 &&
		    SSL_set1_host(ssl, host) == 1;
	}
	if (!ok) {
		SSL_free(ssl);
		return (NULL);
	}
	return (ssl);
}

/* An alert by which the server refuses the client's certificate, or
 * says it wants one. */
static int
etcd_tls_client_refused(unsigned long code)
{
	if (ERR_GET_LIB(code) != ERR_LIB_SSL)
		return (0);
	switch (ERR_GET_REASON(code)) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		return (1);
	}
	return (0);
}

/*
 * When etcd ended a TLS connection with no alert berthd saw: on the
 * client hello (closed or reset), as a plain HTTP server does; or just after
 * the handshake, before evhttp saw it connected, as etcd does when it
 * refuses the client's certificate (TLS 1.3: the client's handshake ends
 * first, and the reset can beat the alert).
 */
static int
etcd_tls_cut(struct etcd_conn *c, int any, char *err, size_t errlen)
{
	/* Closed or reset: a plain server under load resets as often. */
	if (c->hello && !c->handshaken && !any && c->failed)
		return (snprintf(err, errlen, "%s: TLS handshake failed: etcd "
		    "closed the connection (is it http://, not https://?)",
		    c->ep->text) >= 0);
	if (c->handshaken && !any && !c->failed)
		return (snprintf(err, errlen, "%s: TLS connection failed: "
		    "etcd reset it right after the handshake (%s)", c->ep->text,
		    c->e->client_cert ? "did etcd refuse berthd's client "
		    "certificate, --cluster-cert?" : "does etcd want a client "
		    "certificate? give --cluster-cert and --cluster-key") >= 0);
	return (0);
}

/*
 * Why TLS failed on c, in err, from the certificate check's own reason
 * and OpenSSL's first queued error; 0 when TLS had nothing to do with it
 * (a refused connection, a timeout).
 */
static int
etcd_tls_why(struct etcd_conn *c, char *err, size_t errlen)
{
	unsigned long	 code, first = 0;
	const char	*reason = "certificate verify failed", *hint = "";
	char		 buf[256], verify[300] = "";
	int		 any = 0, refused;

	if (c->tls == NULL)
		return (0);
	/* libevent hands them back last first, SSL_get_error's own codes
	 * (library 0) among them. */
	while ((code = bufferevent_get_openssl_error(c->tls)) != 0) {
		any = 1;
		if (ERR_GET_LIB(code) != 0)
			first = code;
	}
	if (first == 0 && c->verify_err == X509_V_OK)
		return (etcd_tls_cut(c, any, err, errlen));
	if (first != 0)
		reason = etcd_tls_reason(first, buf, sizeof buf);
	if (c->verify_err == X509_V_ERR_HOSTNAME_MISMATCH ||
	    c->verify_err == X509_V_ERR_IP_ADDRESS_MISMATCH)
		snprintf(verify, sizeof verify, " (%s: the certificate is not "
		    "for %s)", X509_verify_cert_error_string(c->verify_err),
		    c->ep->host);
	else if (c->verify_err != X509_V_OK)
		snprintf(verify, sizeof verify, " (%s)",
		    X509_verify_cert_error_string(c->verify_err));
	if ((refused = etcd_tls_client_refused(first)))
		hint = c->e->client_cert ? " (etcd refused berthd's client "
		    "certificate, --cluster-cert)" : " (etcd wants a client "
		    "certificate: give --cluster-cert and --cluster-key)";
	else if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
	    ERR_GET_REASON(first) == SSL_R_WRONG_VERSION_NUMBER)
		hint = " (is it http://, not https://?)";
	/* A message too long for err is cut short. */
	return (snprintf(err, errlen, "%s: TLS %s failed: %s%s%s", c->ep->text,
	    c->handshaken && !refused ? "connection" : "handshake", reason,
	    verify, hint) >= 0);
}

/*
 * A client of the etcd endpoints eps, with TLS from these files (NULL or
 * "": none) when one is https://. NULL if that cannot be set up (said in
 * the log; the configuration's check said it first, with etcd_tls_check)
 * or memory ran out.
 */
struct etcd *
etcd_new(struct event_base *base, const struct etcd_endpoint *eps,
    size_t neps, const char *cacert, const char *cert, const char *key)
{
	struct etcd	*e;
	char		 err[512];
	size_t		 i;

	if (neps == 0 || (e = calloc(1, sizeof *e)) == NULL)
		return (NULL);
	e->base = base;
	e->eps = eps;
	e->neps = neps;
	e->client_cert = cert != NULL && cert[0] != '\0';
	TAILQ_INIT(&e->conns);
	for (i = 0; i < neps && !eps[i].tls; i++)
		;
	if (i < neps && (e->ssl_ctx = etcd_tls_ctx(cacert, cert, key, err,
	    sizeof err)) == NULL) {
		log_warnx("etcd: %s", err);
		free(e);
		return (NULL);
	}
	if ((e->reap = event_new(base, -1, 0, etcd_reap, e)) == NULL) {
		SSL_CTX_free(e->ssl_ctx);
		free(e);
		return (NULL);
	}
	return (e);
}

/* Every connection goes, calls in flight unanswered: free the watches
 * first. */
void
etcd_free(struct etcd *e)
{
	if (e == NULL)
		return;
	while (!TAILQ_EMPTY(&e->conns))
		etcd_conn_free(TAILQ_FIRST(&e->conns));
	event_free(e->reap);
	/* Each SSL object holds a reference, dropped as libevent frees its
	 * bufferevent (at the latest when the event base goes). */
	SSL_CTX_free(e->ssl_ctx);
	free(e);
}

const char *
etcd_endpoint(const struct etcd *e)
{
	return (e->eps[e->cur].text);
}

const char *
etcd_last_error(const struct etcd *e)
{
	return (e->last_error);
}

/*
 * Leave the endpoint in use for the next one; 1 when that wraps around
 * to the first, so the caller can back off before trying them all again.
 * Calls in flight are dropped unanswered: the caller starts afresh.
 */
int
etcd_failover(struct etcd *e)
{
	struct etcd_conn	*c;

	TAILQ_FOREACH(c, &e->conns, entry) {
		if (c->watch == NULL && !c->retired)
			etcd_conn_retire(c);
	}
	e->cur = (e->cur + 1) % e->neps;
	return (e->cur == 0);
}

/* The bufferevent under c's evhttp connection: OpenSSL's for https. Its
 * callbacks are deferred, so none runs inside evhttp_make_request. */
static struct bufferevent *
etcd_bufferevent(struct etcd_conn *c)
{
	struct bufferevent	*bev;
	SSL			*ssl;
	int			 opts = BEV_OPT_CLOSE_ON_FREE |
				    BEV_OPT_DEFER_CALLBACKS;

	if (!c->ep->tls)
		return (bufferevent_socket_new(c->e->base, -1, opts));
	if (c->e->ssl_ctx == NULL || (ssl = etcd_tls_ssl(c)) == NULL)
		return (NULL);
	/* On failure this frees ssl (BEV_OPT_CLOSE_ON_FREE). */
	if ((bev = bufferevent_openssl_socket_new(c->e->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, opts)) == NULL)
		return (NULL);
	/* etcd, as Go's servers do, may close without close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->tls = bev;
	return (bev);
}

/* A connection to the endpoint in use, for one request. */
static struct etcd_conn *
etcd_connect(struct etcd *e, int timeout)
{
	const struct etcd_endpoint *ep = &e->eps[e->cur];
	struct etcd_conn	*c;
	struct bufferevent	*bev;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return (NULL);
	c->e = e;
	c->ep = ep;
	c->verify_err = X509_V_OK;
	if ((bev = etcd_bufferevent(c)) == NULL) {
		snprintf(e->last_error, sizeof e->last_error, "%s: cannot set "
		    "up a connection (out of memory?)", ep->text);
		free(c);
		return (NULL);
	}
	if ((c->evcon = evhttp_connection_base_bufferevent_new(e->base, NULL,
	    bev, ep->host, ep->port)) == NULL) {
		bufferevent_free(bev);
		free(c);
		return (NULL);
	}
	evhttp_connection_set_retries(c->evcon, 0);
	evhttp_connection_set_timeout(c->evcon, timeout);
	evhttp_connection_set_max_body_size(c->evcon, ETCD_MAX_ANSWER);
	TAILQ_INSERT_TAIL(&e->conns, c, entry);
	return (c);
}

/* That a request failed, for etcd_tls_why. Not called when evhttp gives
 * up while connecting (refused, timed out, or reset just after the TLS
 * handshake). */
static void
etcd_request_error(enum evhttp_request_error how, void *arg)
{
	struct etcd_conn *c = arg;

	(void)how;
	c->failed = 1;
}

/* A POST of body to path on c, headers as the gateway wants them; on
 * failure req is gone. */
static int
etcd_send(struct etcd_conn *c, struct evhttp_request *req, const char *path,
    json_t *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char		*text, hostport[300];
	int		 v6 = strchr(c->ep->host, ':') != NULL;

	if ((text = json_dumps(body, JSON_COMPACT)) == NULL) {
		evhttp_request_free(req);
		return (-1);
	}
	snprintf(hostport, sizeof hostport, "%s%s%s:%u", v6 ? "[" : "",
	    c->ep->host, v6 ? "]" : "", c->ep->port);
	evhttp_request_set_error_cb(req, etcd_request_error);
	evhttp_add_header(h, "Host", hostport);
	evhttp_add_header(h, "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), text,
	    strlen(text));
	free(text);
	/* evhttp frees req if this fails, but for a failure to even start
	 * connecting (out of memory in the bufferevent): then it leaks. */
	return (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, path));
}

/*
 * What went wrong with an answer on c, in last_error: no answer (the
 * connection failed), an HTTP error with etcd's message, or a body that
 * is not a JSON object. NULL when the answer is good: then *out holds it.
 */
static const char *
etcd_answer(struct etcd_conn *c, struct evhttp_request *req, json_t **out)
{
	char		*err = c->e->last_error;
	size_t		 errlen = sizeof c->e->last_error;
	struct evbuffer	*in;
	json_error_t	 jerr;
	json_t		*j, *msg;
	size_t		 len;
	int		 code;

	*out = NULL;
	if (req == NULL || (code = evhttp_request_get_response_code(req)) == 0) {
		if (!etcd_tls_why(c, err, errlen))
			snprintf(err, errlen, "%s: no answer (connection "
			    "refused, reset or timed out)", c->ep->text);
		return (err);
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	j = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &jerr);
	if (code != 200) {
		msg = j != NULL ? json_object_get(j, "message") : NULL;
		if (msg == NULL)
			msg = j != NULL ? json_object_get(j, "error") : NULL;
		snprintf(err, errlen, "%s: HTTP %d%s%s", c->ep->text, code,
		    json_is_string(msg) ? ": " : "",
		    json_is_string(msg) ? json_string_value(msg) : "");
		json_decref(j);
		return (err);
	}
	if (!json_is_object(j)) {
		snprintf(err, errlen, "%s: an answer that is not a JSON object",
		    c->ep->text);
		json_decref(j);
		return (err);
	}
	*out = j;
	return (NULL);
}

static void
etcd_call_done(struct evhttp_request *req, void *arg)
{
	struct etcd_conn *c = arg;
	const char	*why;
	json_t		*j;

	if (c->retired)		/* dropped by a failover */
		return;
	why = etcd_answer(c, req, &j);
	etcd_conn_retire(c);
	if (c->fn != NULL)
		c->fn(c->arg, j, why);
	json_decref(j);
}

/* A call on a connection of its own; its callback never runs before this
 * returns. */
int
etcd_call(struct etcd *e, const char *path, json_t *body, etcd_answer_fn fn,
    void *arg)
{
	struct etcd_conn	*c;
	struct evhttp_request	*req;

	if ((c = etcd_connect(e, ETCD_TIMEOUT)) == NULL)
		return (-1);
	c->fn = fn;
	c->arg = arg;
	if ((req = evhttp_request_new(etcd_call_done, c)) == NULL ||
	    etcd_send(c, req, path, body) == -1) {
		etcd_conn_retire(c);
		return (-1);
	}
	return (0);
}

/* --- watch: one streaming answer, a JSON object per message --- */

/* Hand every whole message in w->pending to the caller, who may free the
 * watch from its callback: c (retired then, not freed) tells. */
static void
etcd_watch_messages(struct etcd_conn *c)
{
	struct etcd_watch	*w = c->watch;
	struct evbuffer_ptr	 nl;
	json_error_t		 jerr;
	json_t			*j, *result;
	char			*line;
	size_t			 len;

	for (;;) {
		nl = evbuffer_search(w->pending, "\n", 1, NULL);
		if (nl.pos == -1)
			break;
		len = (size_t)nl.pos;
		if ((line = malloc(len + 1)) == NULL) {
			w->failed = 1;
			return;
		}
		evbuffer_remove(w->pending, line, len);
		evbuffer_drain(w->pending, 1);
		line[len] = '\0';
		j = json_loadb(line, len, 0, &jerr);
		free(line);
		if (len == 0 && j == NULL)
			continue;
		/* The gateway wraps each WatchResponse in "result". */
		result = j != NULL ? json_object_get(j, "result") : NULL;
		if (!json_is_object(result)) {
			snprintf(w->e->last_error, sizeof w->e->last_error,
			    "%s: a watch message berthd cannot read",
			    c->ep->text);
			w->failed = 1;
			json_decref(j);
			return;
		}
		w->fn(w->arg, result);
		json_decref(j);
		if (c->retired)
			return;
	}
	if (evbuffer_get_length(w->pending) > ETCD_MAX_EVENT) {
		snprintf(w->e->last_error, sizeof w->e->last_error, "%s: a watch "
		    "message over %d bytes", c->ep->text, ETCD_MAX_EVENT);
		w->failed = 1;
	}
}

static void
etcd_watch_chunk(struct evhttp_request *req, void *arg)
{
	struct etcd_conn *c = arg;

	if (c->retired || c->watch->failed)
		return;
	evbuffer_add_buffer(c->watch->pending,
	    evhttp_request_get_input_buffer(req));
	etcd_watch_messages(c);
}

static void
etcd_watch_done(struct evhttp_request *req, void *arg)
{
	struct etcd_conn *c = arg;
	struct etcd_watch *w = c->watch;
	json_t		*j;
	const char	*why;

	if (c->retired)
		return;
	if (req != NULL && evhttp_request_get_response_code(req) == 200 &&
	    !w->failed)
		why = "the watch stream ended";
	else if (w->failed)
		why = w->e->last_error;
	else {
		why = etcd_answer(c, req, &j);
		json_decref(j);
		if (why == NULL)
			why = "the watch stream ended";
	}
	w->end(w->arg, why);
}

struct etcd_watch *
etcd_watch(struct etcd *e, json_t *create_request, etcd_event_fn fn,
    etcd_end_fn end, void *arg)
{
	struct etcd_watch	*w;
	struct evhttp_request	*req;
	json_t			*body;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return (NULL);
	w->e = e;
	w->fn = fn;
	w->end = end;
	w->arg = arg;
	/* A quiet cluster sends nothing for as long as it likes. */
	if ((w->pending = evbuffer_new()) == NULL ||
	    (w->conn = etcd_connect(e, ETCD_WATCH_TIMEOUT)) == NULL)
		goto fail;
	w->conn->watch = w;
	if ((req = evhttp_request_new(etcd_watch_done, w->conn)) == NULL)
		goto fail;
	evhttp_request_set_chunked_cb(req, etcd_watch_chunk);
	body = json_pack("{sO}", "create_request", create_request);
	if (body == NULL) {
		evhttp_request_free(req);
		goto fail;
	}
	if (etcd_send(w->conn, req, "/v3/watch", body) == -1) {
		json_decref(body);
		goto fail;
	}
	json_decref(body);
	return (w);
fail:
	etcd_watch_free(w);
	return (NULL);
}

/* Safe from the watch's own callbacks. */
void
etcd_watch_free(struct etcd_watch *w)
{
	if (w == NULL)
		return;
	/* Its request in flight, if any, goes with the connection. */
	if (w->conn != NULL)
		etcd_conn_retire(w->conn);
	if (w->pending != NULL)
		evbuffer_free(w->pending);
	free(w);
}

/* --- the gateway's encodings --- */

/* len bytes as base64, NUL-terminated; NULL when out of memory. */
char *
etcd_b64(const void *data, size_t len)
{
	char	*out;

	if (len > (size_t)INT32_MAX / 2 ||
	    (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return (NULL);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return (out);
}

/* The bytes base64 s stands for, NUL-terminated, their count in *len;
 * NULL when s is not base64 or memory runs out. */
char *
etcd_unb64(const char *s, size_t *len)
{
	size_t		 n = strlen(s);
	unsigned char	*out;
	int		 got;

	/* Strictly the alphabet: EVP_DecodeBlock would skip blanks. */
	if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/=") != n)
		return (NULL);
	if (n % 4 != 0 || n > (size_t)INT32_MAX ||
	    (out = malloc(n / 4 * 3 + 1)) == NULL)
		return (NULL);
	if ((got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n)) < 0) {
		free(out);
		return (NULL);
	}
	/* EVP_DecodeBlock counts the padding as bytes. */
	if (n >= 1 && s[n - 1] == '=')
		got--;
	if (n >= 2 && s[n - 2] == '=')
		got--;
	out[got] = '\0';
	*len = (size_t)got;
	return ((char *)out);
}

/* The gateway writes int64 fields as decimal strings; 0 when absent. */
int64_t
etcd_int(json_t *obj, const char *key)
{
	json_t	*v = json_object_get(obj, key);

	if (json_is_integer(v))
		return (json_integer_value(v));
	if (json_is_string(v))
		return (strtoll(json_string_value(v), NULL, 10));
	return (0);
}
