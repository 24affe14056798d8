/*
 * berthd.h: the daemon's event layer, one section per source file: the
 * loop and its turn (server.c), the carriers (http.c, portserver.c), the
 * request and its routes (request.c, router.c, api-*.c), waiters, the
 * reaper. It sits on the core (core.h), which knows nothing of it.
 */
#ifndef BERTHD_H
#define BERTHD_H

#include "core.h"
#include "http-parse.h"

#include <sys/socket.h>

struct event;
struct event_base;
struct evconnlistener;
struct evbuffer;

/* config.c: flags and their environment twins; the flag wins */
#define CONFIG_MAX_LISTEN	16
#define CONFIG_MAX_ORIGINS	16
#define CONFIG_MAX_ENDPOINTS	16
/* An etcd client endpoint of --cluster: http[s]://HOST[:PORT][/] */
struct etcd_endpoint {
	int		 tls;		/* https */
	char		 host[256];	/* no brackets */
	uint16_t	 port;		/* default 2379 */
	char		 text[300];	/* as given, without a trailing '/' */
};
struct config {
	struct addr	 listen[CONFIG_MAX_LISTEN];
	size_t		 nlisten;
	int		 allow_remote;
	char		 db[4096];
	struct port_range ranges[POOL_MAX_RANGES];
	size_t		 nranges;	/* 0: the default pool */
	uint64_t	 reuse_delay_ms;
	enum log_level	 log_level;
	char		 log_file[4096];
	char		*origins[CONFIG_MAX_ORIGINS];
	size_t		 norigins;
	unsigned int	 max_connections;
	unsigned int	 max_leases;
	unsigned int	 max_header_size;
	unsigned int	 idle_timeout;		/* seconds */
	unsigned int	 socket_mode;
	int		 full_sync;	/* --sync full */
	struct addr	 portserver;	/* --portserver, if has_portserver */
	int		 has_portserver;
	enum { CONFIG_DNS_DEFAULT, CONFIG_DNS_OFF, CONFIG_DNS_ADDR } dns_mode;
	struct addr	 dns;		/* --dns ADDR */
	/* --cluster and its companions (none: this host only) */
	struct etcd_endpoint cluster[CONFIG_MAX_ENDPOINTS];
	size_t		 ncluster;
	char		 node[BERTH_NAME_MAX + 1];	/* --node */
	char		 advertise[BERTH_HOST_MAX + 1];	/* --advertise */
	char		 cluster_prefix[128];	/* --cluster-prefix */
	unsigned int	 cluster_ttl;		/* seconds */
	char		 cluster_cacert[4096];
	char		 cluster_cert[4096];
	char		 cluster_key[4096];
};
enum config_result { CONFIG_OK, CONFIG_EXIT, CONFIG_ERROR };
enum config_result config_parse(struct config *, int, char **, char *,
		    size_t);
void		 config_free(struct config *);
void		 config_usage(void);

/*
 * server.c: the daemon-wide state every event callback reaches, the turn
 * (one commit at the end of each loop turn, then the commit hooks), and
 * the orderly stop.
 */
struct api_req;
TAILQ_HEAD(req_list, api_req);
typedef void	(*server_commit_fn)(void *, int);
#define SERVER_MAX_HOOKS	8
struct server {
	struct event_base *base;
	struct http	*http;		/* the HTTP carrier (http.c) */
	struct broker	*broker;
	struct config	*cfg;
	struct event	*commit_ev;
	struct {
		server_commit_fn fn;
		void		*arg;
	}		 hooks[SERVER_MAX_HOOKS];	/* run after each commit */
	size_t		 nhooks;
	struct req_list	 held;		/* answers waiting for the commit */
	struct evconnlistener *listeners[CONFIG_MAX_LISTEN];
	size_t		 nlisteners;
	struct addr bound[CONFIG_MAX_LISTEN];	/* real ports */
	uint64_t	 started_at;	/* ms */
	int		 stopping;
	uint64_t	 stop_at;	/* ms, when stopping began */
	int		 pool_fallback;
	struct waiters	*waiters;
	struct reaper	*reaper;
	struct ready	*ready;		/* leases' readiness (ready.c) */
	struct event	*ready_ev;	/* its pass, once a second */
	struct metrics	*metrics;
	struct portserver *portserver;	/* NULL without --portserver */
	struct cluster	*cluster;	/* NULL without --cluster */
	struct dns	*dns;		/* NULL with --dns off */
};

int		 server_init(struct server *, struct config *, struct broker *);
int		 server_on_commit(struct server *, server_commit_fn, void *);
void		 server_stop(struct server *);
void		 server_commit(struct server *);
void		 server_free(struct server *);

/*
 * request.c: an API request, whatever carried it (http.c, or the fuzz
 * harness): its state, its headers, its answers, the hold for the commit.
 */
enum req_state {
	REQ_NEW,	/* filled in by its carrier, not yet routed */
	REQ_ROUTED,	/* checked and routed; a handler is on it */
	REQ_PARKED,	/* a blocking query, waiting in waiters.c */
	REQ_HELD,	/* answered; the answer waits for the turn's commit */
	REQ_SENT	/* handed back to its carrier, which frees it */
};
struct route;
struct waiter;
typedef void	(*api_send_fn)(struct api_req *, int, struct evbuffer *);
struct api_req {
	enum req_state	 state;		/* moved by req_set_state only */
	int		 method;	/* one HTTP_* bit (http-parse.h) */
	const char	*path;		/* NULL or "" means "/" */
	const char	*query;		/* after '?', or NULL */
	const char	*uri_host;	/* host of an absolute-form URI, or NULL */
	const struct http_field *fields;	/* request headers */
	size_t		 nfields;
	char		*out;		/* answer headers, "Name: value\r\n"... */
	size_t		 outlen;	/* (req_add_header; the carrier frees) */
	size_t		 outcap;
	int		 out_fixed;	/* out is the carrier's room, not */
					/* malloc'd: grown by a copy */
	const char	*body;
	size_t		 body_len;
	const char	*text;		/* an answer's body by pointer, in */
	size_t		 textlen;	/* send's time only (body NULL) */
	int		 local;		/* came over a unix socket */
	int		 browser;	/* Origin or Sec-Fetch-* (router.c) */
	long		 uid;		/* the peer's; -1 unknown, */
#define REQ_UID_UNASKED	(-2)		/* or not asked yet: */
	long		(*peer_uid)(struct api_req *);	/* the carrier's */
	api_send_fn	 send;		/* sends status and body (NULL: text, */
					/* if any), frees req */
	void		*ctx;		/* the carrier's */

	int		 refused;	/* by its carrier (req_refuse) */
	struct waiter	*waiter;	/* while parked (waiters.c) */
	const struct route *route;	/* matched (router.c), or NULL */
	char		 name[BERTH_NAME_MAX + 2];	/* its path's {name} */
	uint64_t	 began;		/* routed, monotonic ns; 0 once parked */
	uint64_t	 index;		/* X-Berth-Index, if not the broker's */
	int		 status;	/* while held: the answer */
	struct evbuffer	*answer;
	TAILQ_ENTRY(api_req) held_entry;
};
void		 req_set_state(struct api_req *, enum req_state);
void		 req_reply_json(struct server *, struct api_req *, int,
		    json_t *);
void		 req_reply_error(struct server *, struct api_req *,
		    const struct berr *);
void		 req_fail(struct server *, struct api_req *, int,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));
void		 req_refuse(struct server *, struct api_req *, int,
		    const char *, const char *);
void		 req_reply_text(struct server *, struct api_req *, int,
		    const char *, const char *, size_t);
void		 req_reply_buffer(struct server *, struct api_req *, int,
		    const char *, struct evbuffer *);
void		 req_reply_lease(struct server *, struct api_req *,
		    struct lease *);
void		 req_reply_shared(struct server *, struct api_req *,
		    struct registry_text *);
void		 req_send_held(struct server *, int,
		    void (*)(struct server *, struct api_req *));
const char	*req_header(const struct api_req *, const char *);
long		 req_uid(struct api_req *);
int		 req_is_admin(struct api_req *);
int		 req_add_header(struct api_req *, const char *, const char *);
char		*fmt_u64(char *, uint64_t);
const char	*req_bearer(struct api_req *);
int		 req_body(struct server *, struct api_req *, char **, size_t *);
int		 req_query_uint(struct server *, struct api_req *, const char *,
		    uint64_t, uint64_t *, int *);

/* router.c: the route table, browser-safety checks, dispatch */
typedef void	(*route_fn)(struct server *, struct api_req *);
#define ROUTE_MAX_HANDLERS	2
struct route {
	unsigned int	 id;		/* its row: /metrics counts by it */
	const char	*pattern;	/* also /metrics' route label */
	int		 collection;	/* PATTERN/ is PATTERN too */
	struct {
		int	 methods;	/* HTTP_* bits */
		route_fn fn;
	}		 handlers[ROUTE_MAX_HANDLERS];
};
#define ROUTE_MAX	16		/* rows the table may grow to */
void		 router_dispatch(struct server *, struct api_req *);
void		 router_committed(void *, int);
int		 router_host_allowed(const struct server *, const char *);

/* http.c: the HTTP/1.1 carrier, on bufferevents */
struct sockaddr;
int		 http_init(struct server *);
void		 http_accept(struct evconnlistener *, int, struct sockaddr *,
		    int, void *);
int		 http_flushed(const struct server *);
void		 http_close_all(struct server *);
void		 http_free(struct server *);

/*
 * conn.c: client connections: the one budget (--max-connections) that
 * HTTP and portserver clients share, and who is on the other end
 */
void		 conn_init(struct server *);
int		 conn_admit(const char *);
void		 conn_leave(void);
unsigned int	 conn_count(void);
int		 conn_local(int);
long		 conn_peer_uid(int);

/* api-services.c: /v1/services */
void		 api_list(struct server *, struct api_req *);
void		 api_acquire(struct server *, struct api_req *);
void		 api_lookup(struct server *, struct api_req *);
void		 api_release(struct server *, struct api_req *);
void		 api_renew(struct server *, struct api_req *);
json_t		*api_lease_list(struct server *);

/* api-status.c: /v1/health, /v1/status */
void		 api_health(struct server *, struct api_req *);
void		 api_status(struct server *, struct api_req *);
json_t		*api_status_json(struct server *);
/* api-cluster.c: /v1/cluster/... and the status's "cluster" */
void		 api_cluster_nodes(struct server *, struct api_req *);
void		 api_cluster_list(struct server *, struct api_req *);
void		 api_cluster_lookup(struct server *, struct api_req *);
json_t		*api_cluster_status(struct server *);

/* api-metrics.c: /metrics, in Prometheus's text format */
void		 api_metrics(struct server *, struct api_req *);

/* api-page.c: the status page at / */
void		 api_index_page(struct server *, struct api_req *);

/* api-page-cluster.c: the status page's cluster section */
int		 api_page_cluster(struct server *, struct evbuffer *, json_t *);

/* api-html.c: the HTML the status page's parts share */
void		 api_html(struct evbuffer *, const char *);
const char	*api_html_ready(json_t *, const char **);
void		 api_html_addr(struct evbuffer *, const char *, unsigned int,
		    const char *);
void		 api_html_meta(struct evbuffer *, json_t *);

/* metrics.c: API requests counted by route, method and status, and timed */
#define METRICS_STATUS_MIN	100
#define METRICS_STATUS_COUNT	500		/* 100 to 599 */
enum metrics_method {
	METHOD_GET,
	METHOD_HEAD,
	METHOD_POST,
	METHOD_DELETE,
	METHOD_OPTIONS,
	METHOD_OTHER,
	METHOD_COUNT
};
struct metrics;
struct metrics	*metrics_new(void);
void		 metrics_free(struct metrics *);
void		 metrics_count_request(struct metrics *,
		    const struct api_req *, int);
const char	*metrics_route_label(const struct metrics *, size_t);
const char	*metrics_method_name(enum metrics_method);
uint64_t	 metrics_requests(const struct metrics *, size_t,
		    enum metrics_method, size_t);
const struct latency_hist *metrics_latency(const struct metrics *, size_t);

/*
 * waiters.c: blocking lookups and watches, parked as callbacks. A parked
 * request is answered by the function it was parked with, once its
 * condition holds after a commit, at its deadline, or at shutdown.
 */
struct waiters;
typedef void	(*waiter_answer_fn)(struct server *, struct api_req *);
/* What the waiters wait on: the broker's leases, or the cluster's view. */
struct waiters_source {
	int		(*find)(void *, const char *);	/* -1, or lease_ready */
	uint64_t	(*index)(void *);
	void		*arg;
};
struct waiters	*waiters_new(struct server *, const struct waiters_source *);
void		 waiters_free(struct waiters *);
int		 waiters_park_name(struct waiters *, struct api_req *,
		    unsigned int, int, waiter_answer_fn);
int		 waiters_park_index(struct waiters *, struct api_req *,
		    uint64_t, unsigned int, waiter_answer_fn);
void		 waiters_cancel(struct waiters *, struct api_req *);
void		 waiters_name_changed(struct waiters *, const char *);
void		 waiters_committed(void *, int);
void		 waiters_wake(struct waiters *);
void		 waiters_flush(struct waiters *);
size_t		 waiters_count(const struct waiters *);

/* reaper.c: TTL expiry on a timer, owner death through pidfds or polling */
struct reaper;
struct reaper	*reaper_new(struct server *);
void		 reaper_free(struct reaper *);
void		 reaper_schedule(struct reaper *);
void		 reaper_committed(void *, int);
void		 reaper_watch(struct lease *, void *);
void		 reaper_unwatch(struct lease *, void *);

/* portserver.c: portpicker's portserver protocol (docs/portpicker.md) */
struct portserver;
struct portserver *portserver_open(struct server *, char *, size_t);
void		 portserver_committed(void *, int);
void		 portserver_stop(struct portserver *);
int		 portserver_flushed(const struct portserver *);
void		 portserver_free(struct portserver *);

/*
 * dns.c: the zone berth. over UDP (libevent's evdns server): questions
 * counted by type and answer code, answers held while a turn's
 * transaction is open, as HTTP's are
 */
enum dns_qtype { DNS_Q_A, DNS_Q_AAAA, DNS_Q_SRV, DNS_Q_TXT, DNS_Q_SOA,
    DNS_Q_ANY, DNS_Q_OTHER, DNS_NQTYPES };
#define DNS_NRCODES	6	/* NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP
				   REFUSED */
struct dns_stats {
	uint64_t	 queries[DNS_NQTYPES][DNS_NRCODES];
	uint64_t	 truncated;	/* answers cut to fit, TC set */
	uint64_t	 dropped;	/* datagrams no answer could be sent to */
};
extern const char *const dns_qtype_names[DNS_NQTYPES];
extern const char *const dns_rcode_names[DNS_NRCODES];
struct dns;
int		 dns_open(struct server *, struct dns **, char *, size_t);
void		 dns_committed(void *, int);
void		 dns_stop(struct dns *);
void		 dns_free(struct dns *);
const char	*dns_address(const struct dns *);
const struct dns_stats *dns_stats(const struct dns *);

/* dns-answer.c: the records that answer a question, from the leases */
struct dnsname;
struct dnsmsg;
int		 dns_answer(struct server *, const struct dnsname *,
		    const char *, uint16_t, struct dnsmsg *);
uint64_t	 portserver_granted(const struct portserver *);
uint64_t	 portserver_refused(const struct portserver *);

/* listen.c: the listening sockets */
typedef void	(*listen_accept_fn)(struct evconnlistener *, int,
		    struct sockaddr *, int, void *);
int		 listen_open(struct server *, listen_accept_fn, char *, size_t);
int		 listen_socket(struct server *, const struct addr *, char *,
		    size_t);
void		 listen_accept_error(struct evconnlistener *, void *);
void		 listen_close(struct server *);
void		 listen_record(struct addr *, const struct addr *, int);

/* notify.c: systemd's readiness protocol */
int		 notify_ready(const char *);

#endif /* BERTHD_H */
