/*
 * core.h: the daemon's core, one section per source file: leases and
 * their rules, the pool, the store, logging and time. No libevent and no
 * HTTP in here; it is built into libberthcore.a, which berthd, the unit
 * tests and the fuzzers link. The event layer (berthd.h) sits on top.
 */
#ifndef CORE_H
#define CORE_H

#include <sys/queue.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The rules shared with libberth and the CLI: limits, names, addresses. */
#include "common.h"

#define BERTH_DEFAULT_HOST	"127.0.0.1"	/* a lease's host */
#define BERTH_HOST_MAX		253
#define BERTH_META_MAX		4096	/* encoded bytes */
#define BERTH_TOKEN_HEX		32	/* 128 random bits */
#define BERTH_TOKEN_HASH	32	/* SHA-256 of a token, bytes */
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
uint64_t	 clock_wall_ms(uint64_t);
void		 clock_set_fake(uint64_t);	/* tests: freeze time */
void		 clock_advance(uint64_t);
void		 clock_use_real(void);

/* owner.c: a process identity that survives pid reuse and reboots */
struct owner {
	pid_t		 pid;		/* 0: no owner */
	uint64_t	 start;		/* starttime from /proc/PID/stat */
	char		 boot_id[40];
};
enum owner_state {
	OWNER_LIVE,		/* the very process recorded runs */
	OWNER_GONE,		/* the kernel says it has exited */
	OWNER_UNKNOWN		/* berthd could not look (errno): not gone */
};
int		 owner_read(pid_t, struct owner *);
enum owner_state owner_check(const struct owner *);
int		 owner_alive(const struct owner *);
int		 owner_nested(pid_t);
int		 owner_pidfd(const struct owner *);
void		 owner_comm(pid_t, char *, size_t);
int		 owner_of_uid(pid_t, long);

/* nametab.c: a hash table of named entries that grows by doubling */
struct nametab_entry {
	struct nametab_entry	*next;
	const char		*name;
};
struct nametab {
	struct nametab_entry	**buckets;
	size_t			  nbuckets;	/* a power of two */
	size_t			  count;
};
int		 nametab_init(struct nametab *, size_t);
void		 nametab_free(struct nametab *);
struct nametab_entry *nametab_find(const struct nametab *, const char *);
void		 nametab_add(struct nametab *, struct nametab_entry *,
		    const char *);
void		 nametab_remove(struct nametab *, struct nametab_entry *);
struct nametab_entry *nametab_next(const struct nametab *, size_t *);

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
size_t		 pool_ephemeral_overlap(const struct port_range *, size_t,
		    struct port_range *, char *, size_t);
uint32_t	 pool_name_hash(const char *);

/* probe.c: is a port really free on this host right now? */
void		 probe_init(void);
void		 probe_set_pool(const struct pool *);
int		 probe_port(uint16_t, int);
int		 probe_have_ipv6(void);

/*
 * berr.c: what went wrong, in the core's own terms. Each carrier maps the
 * code to its wire (HTTP statuses in request.c); the message is for people.
 */
enum berr_code {
	BERR_BAD_JSON,		/* the body is not the JSON object asked for */
	BERR_INVALID_FIELD,	/* a field's value is out of its range */
	BERR_INVALID_NAME,	/* not a lease name */
	BERR_PID_NOT_VISIBLE,	/* an owner pid berthd cannot watch */
	BERR_BAD_TOKEN,		/* no token, or not the lease's */
	BERR_NOT_FOUND,		/* no live lease of that name */
	BERR_NAME_TAKEN,	/* a live holder has the name */
	BERR_PORT_UNAVAILABLE,	/* the port asked for is leased or bound */
	BERR_POOL_EXHAUSTED,	/* no port of the pool can be had */
	BERR_LEASE_LIMIT,	/* --max-leases live leases already */
	BERR_DB_UNAVAILABLE,	/* the store refused the change */
	BERR_NOMEM,		/* out of memory (or entropy) for this call */
	BERR_COUNT
};
struct berr {
	enum berr_code	 code;
	char		 message[256];
};
void		 berr_set(struct berr *, enum berr_code, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
const char	*berr_name(enum berr_code);

/*
 * adopt.c: may a lease take a port in use? Yes when its holder is the
 * lease's owner pid or a descendant of it (a running service registered)
 */
struct adopt_sys {		/* the kernel, as adopt.c reads it */
	/* pids holding each TCP listener / UDP socket on a port, 0 unseen */
	int	(*holders)(int, uint16_t, pid_t **, size_t *);
	int	(*ppid)(pid_t, pid_t *);
	void	(*comm)(pid_t, char *, size_t);
};
int		 adopt_port(uint16_t, int, pid_t, struct berr *);
int		 adopt_descends(pid_t, pid_t);
int		 adopt_stat_ppid(const char *, pid_t *);
void		 adopt_set_sys(const struct adopt_sys *);	/* tests */

/* lease.c: what a lease is, and how it reads as JSON */
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

/*
 * Is the lease's service there (ready.c): something listens on its port
 * (TCP) or is bound to it (UDP) at its host? The API's false, true, null.
 */
enum lease_ready {
	LEASE_NOT_READY,	/* nothing there (a new lease starts so) */
	LEASE_READY,		/* every protocol of the lease is served */
	LEASE_READY_UNKNOWN	/* berthd cannot tell: the host is not local */
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
	enum lease_ready ready;		/* not stored: ready.c finds it again */
	uint32_t	 ttl;		/* seconds, 0 = no expiry */
	uint64_t	 expires_at;	/* ms since the epoch, 0 = never */
	uint64_t	 created_at;
	uint64_t	 renewed_at;
	long		 uid;		/* who created it; -1: unknown */
	int		 publish;	/* shared with the cluster (cluster.c) */
	struct owner	 owner;

	struct nametab_entry node;	/* in the registry's name table */
	size_t		 heap_index;	/* in the expiry heap, or SIZE_MAX */
	void		*watch;		/* owner's pidfd watch (reaper.c) */
	int		 polled;	/* owner polled instead (reaper.c) */
	TAILQ_ENTRY(lease) poll_entry;	/* in the reaper's polled owners */
	TAILQ_ENTRY(lease) entry;
};
TAILQ_HEAD(lease_list, lease);

int		 names_valid(const char *);
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

/*
 * registry.c: the live leases in memory, by name, port and expiry; and
 * the list of them as GET /v1/services answers it, built once and shared
 */
struct registry_text {		/* the list's JSON text, counted references */
	size_t		  refs;
	size_t		  len;		/* of text, which ends in a newline */
	char		  text[];
};
struct registry_list;
struct name_memo;
TAILQ_HEAD(memo_list, name_memo);
struct registry {
	struct nametab	  names;	/* live leases */
	struct lease	 *by_port[65536];
	struct lease_list all;
	struct lease	**heap;		/* min-heap on expires_at */
	size_t		  heap_len;
	size_t		  heap_cap;
	struct nametab	  memos;	/* the last port of every name */
	struct memo_list  freed;	/* memos of ended leases, oldest first */
	size_t		  nfreed;
	/*
	 * Bumped by registry_add, _remove, _heap_update and _clear: the list
	 * text (registry_list_text) is built again after. Whatever else
	 * changes how a live lease reads must bump it too (and call
	 * lease_json_forget), or lists keep showing the lease as it was.
	 */
	uint64_t	  version;
	struct registry_list *list;	/* registry_list_text's cache */
};
int		 registry_init(struct registry *);
void		 registry_free(struct registry *);
int		 registry_clear(struct registry *);
size_t		 registry_count(const struct registry *);
int		 registry_add(struct registry *, struct lease *);
void		 registry_remove(struct registry *, struct lease *);
struct lease	*registry_find(const struct registry *, const char *);
struct lease	*registry_by_port(const struct registry *, uint16_t);
int		 registry_heap_update(struct registry *, struct lease *);
struct lease	*registry_heap_top(const struct registry *);
int		 registry_memo_set(struct registry *, const char *, uint16_t,
		    const unsigned char *, uint64_t);
int		 registry_memo_get(const struct registry *, const char *,
		    uint16_t *);
int		 registry_memo_hash(const struct registry *, const char *,
		    unsigned char *);
size_t		 registry_memo_freed(const struct registry *);
const char	*registry_memo_oldest(const struct registry *);
void		 registry_memo_drop(struct registry *, const char *);
struct registry_text *registry_list_text(const struct registry *, uint64_t,
		    uint64_t);
void		 registry_text_unref(struct registry_text *);

/*
 * clusterview.c: berthd's copy of the cluster, every node's record and
 * published instances, kept up to date by cluster.c; the API answers
 * from it and never waits on etcd
 */
struct clusterview;
struct clusterview *clusterview_new(const char *);
void		 clusterview_free(struct clusterview *);
uint64_t	 clusterview_index(const struct clusterview *);
size_t		 clusterview_count(const struct clusterview *);
const json_t	*clusterview_nodes(const struct clusterview *);
char		*clusterview_instance_text(const char *, const char *,
		    const char *, unsigned int, int, json_t *, int);
json_t		*clusterview_node_record(const char *, const char *,
		    const char *, const char *);
int		 clusterview_set_own(struct clusterview *, const char *, char *,
		    int);
int		 clusterview_set_own_node(struct clusterview *, json_t *);
const char	*clusterview_own(const struct clusterview *, const char *);
void		 clusterview_foreach_own(const struct clusterview *,
		    void (*)(const char *, const char *, void *), void *);
int		 clusterview_apply(struct clusterview *, const char *,
		    const char *, size_t);
void		 clusterview_read_begin(struct clusterview *);
void		 clusterview_read_end(struct clusterview *);
int		 clusterview_lookup(const struct clusterview *, const char *,
		    int, char **, size_t *);
int		 clusterview_has(const struct clusterview *, const char *);
size_t		 clusterview_foreach_instance(const struct clusterview *,
		    const char *, void (*)(const char *, const char *, uint16_t,
		    void *), void *);
const char	*clusterview_node_address(const struct clusterview *,
		    const char *);
struct registry_text *clusterview_list_text(struct clusterview *, int);

/*
 * dnsrr.c: the names of berthd's DNS zone, berth., and the parts of an
 * answer evdns cannot make: SRV, TXT and SOA data, and a plan of whole
 * records that fits in 512 bytes
 */
#define DNS_T_A		1
#define DNS_T_NS	2
#define DNS_T_CNAME	5
#define DNS_T_SOA	6
#define DNS_T_TXT	16
#define DNS_T_AAAA	28
#define DNS_T_SRV	33
#define DNS_T_ANY	255
#define DNS_SEC_ANSWER		0	/* as evdns numbers its sections */
#define DNS_SEC_AUTHORITY	1
#define DNS_SEC_ADDITIONAL	2
#define DNS_UDP_MAX	512
enum dnsname_kind {
	DNSN_OUTSIDE,		/* not in berth.: REFUSED */
	DNSN_NONE,		/* in berth., but no name it can hold */
	DNSN_APEX,		/* berth. */
	DNSN_EMPTY,		/* cluster.berth., node.berth. */
	DNSN_LOCAL,		/* NAME.berth. */
	DNSN_SRV,		/* _NAME._tcp.berth., _NAME._udp.berth. */
	DNSN_CLUSTER,		/* NAME.cluster.berth. */
	DNSN_NODE,		/* NODE.node.berth. */
	DNSN_ADDR		/* HEX.addr.berth.: that address */
};
struct dnsname {
	enum dnsname_kind kind;
	int		 proto;		/* DNSN_SRV: PROTO_TCP or PROTO_UDP */
	char		 name[BERTH_NAME_MAX + 1];	/* lease or node */
	unsigned char	 addr[16];	/* DNSN_ADDR */
	int		 addrlen;	/* 4 or 16 */
};
#define DNSMSG_MAX	64
struct dnsmsg_rr {
	int		 section;
	uint16_t	 type;
	uint32_t	 ttl;
	int		 is_name;	/* data is a name evdns compresses */
	int		 fits;		/* dnsmsg_fit: goes out */
	char		 owner[256];
	unsigned char	 data[DNS_UDP_MAX];
	size_t		 len;
};
struct dnsmsg {
	struct dnsmsg_rr rr[DNSMSG_MAX];
	size_t		 n;
	int		 full;		/* an answer record was left out */
};
void		 dnsname_parse(const char *, struct dnsname *);
int		 dnsname_writable(const char *);
int		 dnsname_of_addr(const char *, char *, size_t);
int		 dnsrr_name(unsigned char *, size_t, const char *);
int		 dnsrr_srv(unsigned char *, size_t, uint16_t, uint16_t,
		    uint16_t, const char *);
int		 dnsrr_txt(unsigned char *, size_t, const char *,
		    const char *);
int		 dnsrr_soa(unsigned char *, size_t, uint32_t);
int		 dnsrr_addr(const char *, unsigned char *, uint16_t *);
void		 dnsmsg_init(struct dnsmsg *);
int		 dnsmsg_add(struct dnsmsg *, int, const char *, uint16_t,
		    uint32_t, int, const void *, size_t);
int		 dnsmsg_has(const struct dnsmsg *, int, const char *,
		    uint16_t, const void *, size_t);
int		 dnsmsg_fit(struct dnsmsg *, const char *, size_t);

/* leasereq.c: the body of POST /v1/services, validated */
struct lease_req {
	char		 name[BERTH_NAME_MAX + 1];
	uint16_t	 port;		/* 0: any */
	int		 proto;
	char		 host[BERTH_HOST_MAX + 1];
	int		 has_host;	/* given, not the default */
	int		 publish;	/* to the cluster (cluster.c) */
	uint32_t	 ttl;
	int		 has_ttl;
	pid_t		 pid;
	char		*meta;		/* compact JSON text or NULL */
	long		 uid;		/* who asks (the API's), -1: unknown */
	int		 admin;		/* root or berthd's user asks */
};
int		 leasereq_parse(const char *, size_t, struct lease_req *,
		    struct berr *);
int		 leasereq_parse_renew(const char *, size_t, uint32_t *, int *,
		    struct berr *);
void		 leasereq_clear(struct lease_req *);

/* store.c: SQLite, the durable copy of every lease */
struct store;
typedef int	(*store_lease_cb)(struct lease *, void *);
typedef int	(*store_memo_cb)(const char *, uint16_t, uint64_t,
		    const unsigned char *, void *);
struct store	*store_open(const char *, int, char *, size_t);
void		 store_close(struct store *);
int		 store_begin(struct store *);
int		 store_commit(struct store *);
void		 store_rollback(struct store *);
int		 store_put_lease(struct store *, const struct lease *);
int		 store_delete_lease(struct store *, const char *);
int		 store_put_memo(struct store *, const char *, uint16_t, uint64_t,
		    const unsigned char *);
int		 store_delete_memo(struct store *, const char *);
int		 store_load(struct store *, store_lease_cb, store_memo_cb,
		    void *);
int		 store_get_index(struct store *, uint64_t *);
int		 store_put_index(struct store *, uint64_t);
int		 store_ping(struct store *);
int		 store_probe_write(struct store *, uint64_t);
const char	*store_errmsg(struct store *);
const char	*store_sync_mode(void);

/*
 * latency.c: latency histograms for /metrics: counts per bucket (not
 * cumulative; the last one is +Inf), the count and the sum. The bounds
 * are fixed, 25 us to 10 s, and shared by every histogram berthd keeps.
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

/*
 * broker.c: the lease rules (docs/api.md, from POST /v1/services on)
 * over the registry, the pool and the store. struct broker is the
 * broker's own; the event
 * layer reads it through the accessors below and hears of changes
 * through its hooks.
 */
struct broker_hooks {
	void	(*txn_opened)(void *);
	void	(*acquired)(const struct lease *, void *);
	void	(*ended)(const struct lease *, void *);
	void	(*watch)(struct lease *, void *);
	void	(*unwatch)(struct lease *, void *);
	void	*arg;
};
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
struct broker;
struct broker	*broker_new(struct store *, struct pool *, uint64_t,
		    broker_probe_fn, const struct broker_hooks *);
void		 broker_free(struct broker *);
void		 broker_set_hooks(struct broker *, const struct broker_hooks *);
void		 broker_drop_hooks(struct broker *);
int		 broker_load(struct broker *, char *, size_t);
#define BROKER_MAX_LEASES	65536	/* --max-leases' default */
void		 broker_set_limits(struct broker *, size_t, size_t);
int		 broker_acquire(struct broker *, const struct lease_req *,
		    const char *, struct lease **, int *, struct berr *);
int		 broker_acquire_anon(struct broker *, pid_t, struct lease **,
		    struct berr *);
int		 broker_renew(struct broker *, const char *, const char *,
		    const uint32_t *, struct lease **, struct berr *);
int		 broker_release(struct broker *, const char *, const char *,
		    struct berr *);
int		 broker_revoke(struct broker *, const char *, struct berr *);
int		 broker_set_ready(struct broker *, struct lease *,
		    enum lease_ready);
struct lease	*broker_lookup(struct broker *, const char *);
struct lease	*broker_first(const struct broker *);
struct lease	*broker_next(const struct lease *);
int		 broker_expire_due(struct broker *);
uint64_t	 broker_next_expiry(const struct broker *);
void		 broker_owner_dead(struct broker *, struct lease *);
enum owner_state broker_check_owner(struct broker *, struct lease *);
int		 broker_commit(struct broker *);
int		 broker_in_txn(const struct broker *);
int		 broker_probe_db(struct broker *);
int		 broker_db_ok(const struct broker *);
int		 broker_db_healthy(struct broker *);
const char	*broker_db_error(const struct broker *);
uint64_t	 broker_index(const struct broker *);
size_t		 broker_live_count(const struct broker *);
struct pool	*broker_pool(const struct broker *);
const struct registry *broker_registry(const struct broker *);
const struct broker_stats *broker_stats(const struct broker *);
int		 broker_token_equal(const char *, const char *);

/*
 * ready.c: is each lease's service there, from the kernel's socket tables
 * (sockdiag.c): once a second all of them in one pass over the tables,
 * and one lease at once, on its port only, when its holder renews it.
 */
enum ready_host_kind {
	READY_HOST_NAME,	/* a DNS name berthd does not resolve */
	READY_HOST_LOCALHOST,	/* "localhost": either loopback address */
	READY_HOST_ANY,		/* 0.0.0.0 or :: */
	READY_HOST_V4,
	READY_HOST_V6
};
struct ready_host {
	enum ready_host_kind kind;
	unsigned char	 addr[16];	/* V4: 4 bytes; V6: 16 */
};
struct ready;
typedef void	(*ready_changed_fn)(struct lease *, void *);
struct ready	*ready_new(struct broker *, ready_changed_fn, void *);
void		 ready_free(struct ready *);
int		 ready_pass(struct ready *);
int		 ready_check(struct ready *, struct lease *);
int		 ready_granted(struct ready *, struct lease *);
void		 ready_parse_host(const char *, struct ready_host *);
int		 ready_serves(const struct ready_host *, int,
		    const unsigned char *);

#endif /* CORE_H */
