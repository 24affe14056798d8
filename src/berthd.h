/*
 * berthd.h: the daemon's internal interfaces, one section per source file.
 *
 * The core (log, clock, lease, pool, owner, store, broker, leasereq) has no
 * libevent in it and is linked into libberthcore.a, which both berthd and
 * the unit tests use. The event-driven parts (http, api-*, waiters, reaper,
 * listen, notify, main) sit on top of it.
 */
#ifndef BERTHD_H
#define BERTHD_H

#include <sys/queue.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define BERTH_DEFAULT_PORT	62893
#define BERTH_DEFAULT_LISTEN	"127.0.0.1:62893"
#define BERTH_DEFAULT_HOST	"127.0.0.1"	/* a lease's host */
#define BERTH_NAME_MAX		63
#define BERTH_HOST_MAX		253
#define BERTH_META_MAX		4096	/* encoded bytes */
#define BERTH_TTL_MAX		31536000	/* one year, seconds */
#define BERTH_TOKEN_HEX		32	/* 128 random bits */
#define BERTH_WAIT_MAX		300	/* seconds */
#define BERTH_BODY_MAX		65536

/* log.c */
enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
int		 log_parse_level(const char *, enum log_level *);
void		 log_init(enum log_level, const char *);
int		 log_reopen(void);
void		 log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* A warning that may repeat many times a second, said once per period. */
struct log_every {
	uint64_t	 said;		/* ms, when last said (0: never) */
	uint64_t	 quiet;		/* times not said since */
};
int		 log_every(struct log_every *, uint64_t, uint64_t *);
void		 fatal(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
void		 fatalx(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));

/* clock.c */
uint64_t	 clock_now_ms(void);
void		 clock_set_fake(uint64_t);	/* tests: freeze time */
void		 clock_advance(uint64_t);
void		 clock_use_real(void);
void		 clock_format_rfc3339(uint64_t, char *, size_t);

/* owner.c: a process identity that survives pid reuse and reboots */
struct owner {
	pid_t		 pid;		/* 0: no owner */
	uint64_t	 start;		/* starttime from /proc/PID/stat */
	char		 boot_id[40];
};
int		 owner_read(pid_t, struct owner *);
int		 owner_alive(const struct owner *);
const char	*owner_boot_id(void);
const char	*owner_pid_namespace(void);
int		 owner_nested(pid_t);
int		 owner_pidfd(const struct owner *);

/* pool.c: the ports berthd hands out, and which of them are free */
struct port_range {
	uint16_t	 lo;
	uint16_t	 hi;
};
#define POOL_MAX_RANGES	64
struct pool;
typedef int	(*pool_probe_fn)(uint16_t, void *);
struct pool	*pool_new(const struct port_range *, size_t, uint64_t);
void		 pool_free(struct pool *);
int		 pool_contains(const struct pool *, uint16_t);
size_t		 pool_size(const struct pool *);
size_t		 pool_free_count(const struct pool *);
size_t		 pool_ranges(const struct pool *, const struct port_range **);
int		 pool_take(struct pool *, uint32_t, uint64_t, pool_probe_fn,
		    void *, uint16_t *);
int		 pool_take_port(struct pool *, uint16_t, uint32_t, uint64_t,
		    int);
void		 pool_release(struct pool *, uint16_t, uint32_t, uint64_t);
void		 pool_reset(struct pool *);
int		 pool_parse_ranges(const char *, struct port_range *, size_t *,
		    char *, size_t);
size_t		 pool_default_ranges(struct port_range *, const uint16_t *,
		    size_t, int *);
uint32_t	 pool_name_hash(const char *);

/* probe.c: is a port really free on this host right now? */
void		 probe_init(void);
int		 probe_port(uint16_t, int);
int		 probe_have_ipv6(void);

/* lease.c: leases and the in-memory registry that indexes them */
enum lease_proto { PROTO_TCP = 1, PROTO_UDP = 2, PROTO_BOTH = 3 };

/* Why a lease ended; LEASE_LIVE while it has not. */
enum lease_state {
	LEASE_LIVE,		/* holds its port */
	LEASE_RELEASED,		/* released by its holder, with the token */
	LEASE_EXPIRED,		/* ttl passed without a renew */
	LEASE_OWNER_DEAD,	/* its owner process is gone */
	LEASE_REVOKED,		/* removed by an admin */
	LEASE_TAKEN_OVER	/* replaced by a new acquire of a dead holder's name */
};

struct lease {
	char		 name[BERTH_NAME_MAX + 1];
	char		 token[BERTH_TOKEN_HEX + 1];
	char		*host;
	char		*meta;		/* JSON object text, or NULL */
	char		*json_text;	/* lease_json_text's cache, or NULL */
	size_t		 json_len;
	uint16_t	 port;
	uint8_t		 proto;
	enum lease_state state;
	uint32_t	 ttl;		/* seconds, 0 = no expiry */
	uint64_t	 expires_at;	/* ms since the epoch, 0 = never */
	uint64_t	 created_at;
	uint64_t	 renewed_at;
	struct owner	 owner;

	struct lease	*hash_next;
	size_t		 heap_index;	/* in the expiry heap, or SIZE_MAX */
	void		*watch;		/* owner's pidfd watch (reaper.c) */
	int		 polled;	/* owner polled instead (no pidfd) */
	TAILQ_ENTRY(lease) entry;
};
TAILQ_HEAD(lease_list, lease);

/* The last port a name held: what makes ports sticky. */
struct name_memo {
	char		 name[BERTH_NAME_MAX + 1];
	uint16_t	 port;
	struct name_memo *next;
};

struct registry {
	struct lease	**buckets;
	size_t		  nbuckets;
	size_t		  count;
	struct lease	 *by_port[65536];
	struct lease_list all;
	struct lease	**heap;		/* min-heap on expires_at */
	size_t		  heap_len;
	size_t		  heap_cap;
	struct name_memo **memos;
	size_t		  nmemos;
	size_t		  memo_count;
};
int		 lease_name_valid(const char *);
int		 lease_host_valid(const char *);
const char	*lease_proto_name(int);
int		 lease_proto_parse(const char *);
int		 lease_expired(const struct lease *, uint64_t);
const char	*lease_state_name(enum lease_state);
json_t		*lease_to_json(const struct lease *, int);
const char	*lease_json_text(struct lease *, size_t *);
void		 lease_json_forget(struct lease *);
struct lease	*lease_new(void);
void		 lease_free(struct lease *);
void		 registry_init(struct registry *);
void		 registry_clear(struct registry *);
void		 registry_add(struct registry *, struct lease *);
void		 registry_remove(struct registry *, struct lease *);
struct lease	*registry_find(const struct registry *, const char *);
struct lease	*registry_by_port(const struct registry *, uint16_t);
void		 registry_heap_update(struct registry *, struct lease *);
struct lease	*registry_heap_top(const struct registry *);
void		 registry_memo_set(struct registry *, const char *, uint16_t);
int		 registry_memo_get(const struct registry *, const char *,
		    uint16_t *);

/* leasereq.c: the body of POST /v1/services, validated */
struct lease_req {
	char		 name[BERTH_NAME_MAX + 1];
	uint16_t	 port;		/* 0: any */
	int		 proto;
	char		 host[BERTH_HOST_MAX + 1];
	uint32_t	 ttl;
	int		 has_ttl;
	pid_t		 pid;
	char		*meta;		/* compact JSON text or NULL */
};
struct berr {
	int		 status;	/* HTTP status */
	const char	*code;		/* snake_case error code */
	char		 message[256];
};
void		 berr_set(struct berr *, int, const char *, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
int		 leasereq_parse(const char *, size_t, struct lease_req *,
		    struct berr *);
int		 leasereq_parse_renew(const char *, size_t, uint32_t *, int *,
		    struct berr *);
void		 leasereq_clear(struct lease_req *);

/* store.c: SQLite, the durable copy of every lease */
struct store;
typedef void	(*store_lease_cb)(struct lease *, void *);
typedef void	(*store_memo_cb)(const char *, uint16_t, uint64_t, void *);
struct store	*store_open(const char *, int, char *, size_t);
void		 store_close(struct store *);
int		 store_begin(struct store *);
int		 store_commit(struct store *);
void		 store_rollback(struct store *);
int		 store_put_lease(struct store *, const struct lease *);
int		 store_delete_lease(struct store *, const char *);
int		 store_put_memo(struct store *, const char *, uint16_t, uint64_t);
int		 store_load(struct store *, store_lease_cb, store_memo_cb,
		    void *);
int		 store_get_index(struct store *, uint64_t *);
int		 store_put_index(struct store *, uint64_t);
int		 store_ping(struct store *);
int		 store_probe_write(struct store *, uint64_t);
const char	*store_errmsg(struct store *);
const char	*store_sync_mode(void);

/* broker.c: the lease rules of SPEC §3 over registry, pool and store */
struct broker_hooks {
	void	(*txn_opened)(void *);
	void	(*acquired)(const struct lease *, void *);
	void	(*watch)(struct lease *, void *);
	void	(*unwatch)(struct lease *, void *);
	void	*arg;
};
/*
 * A latency histogram for /metrics: counts per bucket (not cumulative;
 * the last one is +Inf), the count and the sum. The bounds are fixed,
 * 25 us to 10 s, and shared by every histogram berthd keeps.
 */
#define LATENCY_BUCKETS	18
struct latency_bound {
	uint64_t	 ns;
	const char	*le;		/* the bound in seconds, as printed */
};
extern const struct latency_bound latency_bounds[LATENCY_BUCKETS];
struct latency_hist {
	uint64_t	 bucket[LATENCY_BUCKETS + 1];
	uint64_t	 count;
	uint64_t	 sum_ns;
};
uint64_t	 latency_now_ns(void);	/* monotonic */
void		 latency_observe(struct latency_hist *, uint64_t);
/* Lease events for /metrics; a rolled-back turn's events are taken back. */
struct broker_stats {
	uint64_t	 acquired;
	uint64_t	 renewed;
	uint64_t	 released;
	uint64_t	 expired;
	uint64_t	 owner_dead;
	uint64_t	 revoked;
	uint64_t	 taken_over;
	uint64_t	 commits;
	uint64_t	 commit_failures;
	struct latency_hist commit_latency;	/* successful commits */
};
typedef int	(*broker_probe_fn)(uint16_t, int);
struct broker {
	struct registry	 reg;
	struct pool	*pool;
	struct store	*store;
	broker_probe_fn	 probe;
	uint64_t	 reuse_delay;	/* ms, as the pool's */
	struct broker_hooks hooks;
	uint64_t	 index;		/* change index, bumped per mutation */
	int		 in_txn;
	int		 txn_failed;
	int		 db_ok;		/* last commit or ping succeeded */
	int		 reloading;	/* inside broker_load */
	uint64_t	 txn_index;	/* index when the transaction began */
	char		 db_error[256];	/* why the last write failed */
	struct broker_stats stats;
	struct broker_stats txn_stats;	/* stats when the transaction began */
};
struct broker	*broker_new(struct store *, struct pool *, uint64_t,
		    broker_probe_fn, const struct broker_hooks *);
void		 broker_free(struct broker *);
int		 broker_load(struct broker *, char *, size_t);
int		 broker_acquire(struct broker *, const struct lease_req *,
		    const char *, struct lease **, int *, struct berr *);
int		 broker_acquire_anon(struct broker *, pid_t, struct lease **,
		    struct berr *);
int		 broker_renew(struct broker *, const char *, const char *,
		    const uint32_t *, struct lease **, struct berr *);
int		 broker_release(struct broker *, const char *, const char *,
		    struct berr *);
int		 broker_revoke(struct broker *, const char *, struct berr *);
struct lease	*broker_lookup(struct broker *, const char *);
int		 broker_expire_due(struct broker *);
uint64_t	 broker_next_expiry(const struct broker *);
void		 broker_owner_dead(struct broker *, struct lease *);
int		 broker_check_owners(struct broker *);
int		 broker_commit(struct broker *);
int		 broker_probe_db(struct broker *);
size_t		 broker_live_count(const struct broker *);
int		 broker_token_equal(const char *, const char *);

/*
 * The event-driven daemon on top of the core.
 */
#include <sys/socket.h>

struct event;
struct event_base;
struct evhttp;
struct evhttp_request;
struct evconnlistener;
struct evbuffer;
struct evkeyvalq;

/* config.c: flags and their environment twins; the flag wins */
#define CONFIG_MAX_LISTEN	16
#define CONFIG_MAX_ORIGINS	16
struct listen_addr {
	int		 family;	/* AF_INET, AF_INET6 or AF_UNIX */
	struct sockaddr_storage ss;
	socklen_t	 sslen;
	char		 text[128];	/* as given, e.g. 127.0.0.1:62893 */
	char		 host[128];	/* host part for the Host allow-list */
	uint16_t	 port;		/* 0 for unix sockets */
	int		 loopback;
};
struct config {
	struct listen_addr listen[CONFIG_MAX_LISTEN];
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
	unsigned int	 max_header_size;
	unsigned int	 idle_timeout;		/* seconds */
	unsigned int	 socket_mode;
	int		 full_sync;	/* --sync full */
	struct listen_addr portserver;	/* --portserver, if has_portserver */
	int		 has_portserver;
};
enum config_result { CONFIG_OK, CONFIG_EXIT, CONFIG_ERROR };
enum config_result config_parse(struct config *, int, char **, char *,
		    size_t);
void		 config_free(struct config *);
int		 config_parse_listen(const char *, struct listen_addr *, char *,
		    size_t);
void		 config_usage(void);

/* server.c: the daemon-wide state every event callback reaches */
struct reply;
TAILQ_HEAD(reply_list, reply);
struct server {
	struct event_base *base;
	struct evhttp	*http;
	struct broker	*broker;
	struct config	*cfg;
	struct event	*commit_ev;
	struct reply_list pending;	/* answers waiting for the commit */
	struct evconnlistener *listeners[CONFIG_MAX_LISTEN];
	size_t		 nlisteners;
	struct listen_addr bound[CONFIG_MAX_LISTEN];	/* real ports */
	uint64_t	 started_at;	/* ms */
	unsigned int	 connections;
	int		 stopping;
	uint64_t	 stop_at;	/* ms, when stopping began */
	int		 pool_fallback;
	struct waiters	*waiters;
	struct reaper	*reaper;
	struct metrics	*metrics;
	struct portserver *portserver;	/* NULL without --portserver */
};

int		 server_init(struct server *, struct config *, struct broker *);
int		 server_conn_admit(struct server *, const char *);
void		 server_stop(struct server *);
void		 server_commit(struct server *);
void		 server_free(struct server *);

/*
 * request.c: an API request, whatever carried it (http.c, or the fuzz
 * harness): checks, routing, JSON answers, group-commit holding.
 */
struct api_req;
typedef void	(*api_send_fn)(struct api_req *, int, struct evbuffer *);
struct api_req {
	int		 method;	/* one EVHTTP_REQ_* bit */
	const char	*path;		/* NULL or "" means "/" */
	const char	*query;		/* after '?', or NULL */
	const char	*uri_host;	/* host of an absolute-form URI, or NULL */
	struct evkeyvalq *in;		/* request headers */
	struct evkeyvalq *out;		/* answer headers */
	const char	*body;
	size_t		 body_len;
	int		 local;		/* came over a unix socket */
	int		 admin;		/* local, from uid 0 or berthd's uid */
	api_send_fn	 send;		/* sends status and body, frees req */
	void		(*parked)(struct api_req *, unsigned int);
					/* optional: it will wait this long */
	void		*ctx;		/* the carrier's */
	uint64_t	 began;		/* dispatched, monotonic ns; 0 once
					   parked: a wait is not a latency */
};
void		 req_dispatch(struct server *, struct api_req *);
void		 req_reply_json(struct server *, struct api_req *, int,
		    json_t *);
void		 req_reply_error(struct server *, struct api_req *,
		    const struct berr *);
void		 req_reply_text(struct server *, struct api_req *, int,
		    const char *, const char *, size_t);
void		 req_reply_lease(struct server *, struct api_req *,
		    struct lease *);
void		 req_send_pending(struct server *, int);
const char	*req_bearer(struct api_req *);
int		 req_body(struct api_req *, char **, size_t *, struct berr *);
int		 req_query_uint(struct api_req *, const char *, uint64_t,
		    uint64_t *, int *, struct berr *);
int		 req_host_allowed(const struct server *, const char *);

/* http.c: the HTTP carrier, on evhttp */
int		 http_init(struct server *);
void		 http_free(struct server *);

/* conn.c: client connections: the limit, and the idle/slow deadline */
struct bufferevent;
struct bufferevent *conn_new_bev(struct event_base *, void *);
void		 conn_request_begin(struct evhttp_request *, int *, int *);
void		 conn_request_end(struct evhttp_request *);
int		 conn_all_flushed(void);

/* api-services.c: /v1/services */
void		 api_services(struct server *, struct api_req *, const char *);
json_t		*api_lease_list(struct server *);

/* api-status.c: /v1/health, /v1/status, /metrics */
void		 api_health(struct server *, struct api_req *);
void		 api_status(struct server *, struct api_req *);
void		 api_metrics(struct server *, struct api_req *);

/* api-page.c: the status page at / */
void		 api_index_page(struct server *, struct api_req *);

/* metrics.c: counters for /metrics (docs/monitoring.md) */
struct metrics;
struct metrics	*metrics_new(void);
void		 metrics_free(struct metrics *);
void		 metrics_count_request(struct metrics *,
		    const struct api_req *, int);
void		 metrics_write(struct server *, struct evbuffer *);

/* waiters.c: blocking lookups and watches, parked as callbacks */
struct waiters;
struct waiters	*waiters_new(struct server *);
void		 waiters_free(struct waiters *);
void		 waiters_park_name(struct waiters *, struct api_req *,
		    const char *, unsigned int);
void		 waiters_park_index(struct waiters *, struct api_req *,
		    uint64_t, unsigned int);
void		 waiters_name_acquired(struct waiters *, const char *);
void		 waiters_wake(struct waiters *);
void		 waiters_flush(struct waiters *);
size_t		 waiters_count(const struct waiters *);

/* reaper.c: TTL expiry on a timer, owner death through pidfds or polling */
struct reaper;
struct reaper	*reaper_new(struct server *);
void		 reaper_free(struct reaper *);
void		 reaper_schedule(struct reaper *);
void		 reaper_watch(struct lease *, void *);
void		 reaper_unwatch(struct lease *, void *);

/* portserver.c: portpicker's portserver protocol (SPEC §6) */
struct portserver;
struct portserver *portserver_open(struct server *, char *, size_t);
void		 portserver_committed(struct portserver *, int);
void		 portserver_stop(struct portserver *);
int		 portserver_flushed(const struct portserver *);
void		 portserver_free(struct portserver *);
uint64_t	 portserver_granted(const struct portserver *);
uint64_t	 portserver_refused(const struct portserver *);
unsigned int	 portserver_connections(const struct portserver *);

/* listen.c: the listening sockets */
int		 listen_open(struct server *, char *, size_t);
int		 listen_socket(struct server *, const struct listen_addr *, char *,
		    size_t);
void		 listen_accept_error(struct evconnlistener *, void *);
void		 listen_close(struct server *);

/* notify.c: systemd's readiness protocol */
int		 notify_ready(const char *);

#endif /* BERTHD_H */
