/*
 * broker.c: the lease rules (docs/api.md, from POST /v1/services on),
 * over the registry (memory), the pool (which ports are free) and the
 * store (SQLite).
 *
 * Every mutation is written to the store inside the transaction of the
 * current event-loop turn; memory keeps a change only if its store
 * write succeeded. The caller answers requests after broker_commit()
 * succeeds (group commit). If a
 * statement or the commit fails, the transaction is rolled back and
 * memory is reloaded from the store, so memory never holds what the
 * database does not.
 */
#include "config.h"

#include <sys/random.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core.h"

struct broker {
	struct registry	 reg;
	struct pool	*pool;
	struct store	*store;
	broker_probe_fn	 probe;
	uint64_t	 reuse_delay;	/* ms, as the pool's */
	size_t		 max_leases;	/* live at once (--max-leases) */
	size_t		 max_memos;	/* ended names remembered */
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

struct broker_probe_ctx {
	struct broker	*b;
	int		 proto;
};

struct broker *
broker_new(struct store *store, struct pool *pool, uint64_t reuse_delay_ms,
    broker_probe_fn probe, const struct broker_hooks *hooks)
{
	struct broker	*b;

	if ((b = calloc(1, sizeof *b)) == NULL)
		return (NULL);
	if (registry_init(&b->reg) == -1) {
		free(b);
		return (NULL);
	}
	b->store = store;
	b->pool = pool;
	b->reuse_delay = reuse_delay_ms;
	b->probe = probe;
	b->max_leases = b->max_memos = BROKER_MAX_LEASES;
	if (hooks != NULL)
		b->hooks = *hooks;
	b->db_ok = 1;
	return (b);
}

/*
 * At most max_leases live leases; and at most max_memos names whose lease
 * ended are remembered (their sticky port and reclaim token), the oldest
 * forgotten first, so that churning names cannot grow memory or the
 * database without bound.
 */
void
broker_set_limits(struct broker *b, size_t max_leases, size_t max_memos)
{
	b->max_leases = max_leases;
	b->max_memos = max_memos;
}

static void
broker_unwatch_all(struct broker *b)
{
	struct lease	*l;

	if (b->hooks.unwatch == NULL)
		return;
	TAILQ_FOREACH(l, &b->reg.all, entry)
		b->hooks.unwatch(l, b->hooks.arg);
}

void
broker_free(struct broker *b)
{
	if (b == NULL)
		return;
	broker_unwatch_all(b);
	registry_free(&b->reg);
	free(b);
}

/* Constant-time token comparison: how long it takes says nothing. */
int
broker_token_equal(const char *given, const char *token)
{
	size_t		i, n = strlen(token);
	unsigned char	diff = 0;

	if (given == NULL || strlen(given) != n)
		return (0);
	for (i = 0; i < n; i++)
		diff |= (unsigned char)given[i] ^ (unsigned char)token[i];
	return (diff == 0);
}

static int
broker_new_token(char *out)
{
	unsigned char	raw[BERTH_TOKEN_HEX / 2];
	size_t		i;

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		return (-1);
	for (i = 0; i < sizeof raw; i++) {
		out[2 * i] = "0123456789abcdef"[raw[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[raw[i] & 0xf];
	}
	out[2 * i] = '\0';
	return (0);
}

/*
 * SHA-256 of a token: what berthd keeps of it once its lease has ended,
 * so that the holder can reclaim the lease, while the database does not
 * hand the token itself to whoever reads it later. -1 if libcrypto fails.
 */
static int
broker_token_hash(const char *token, unsigned char *hash)
{
	static const EVP_MD	*sha256;
	unsigned int		 n = 0;

	/*
	 * Once: without OpenSSL's configuration file (berthd needs none of
	 * it, and reading it costs memory), and the digest looked up once.
	 */
	if (sha256 == NULL &&
	    (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1 ||
	    (sha256 = EVP_sha256()) == NULL))
		return (-1);
	if (EVP_Digest(token, strlen(token), hash, &n, sha256, NULL) != 1 ||
	    n != BERTH_TOKEN_HASH)
		return (-1);
	return (0);
}

/* A write failed: remember why, for the log and /v1/health. */
static void
broker_db_down(struct broker *b, const char *what)
{
	snprintf(b->db_error, sizeof b->db_error, "%s: %s", what,
	    store_errmsg(b->store));
	log_warnx("store: %s", b->db_error);
	b->db_ok = 0;
}

/* Open the turn's transaction if it is not open yet. */
static int
broker_txn(struct broker *b)
{
	if (b->in_txn)
		return (b->txn_failed ? -1 : 0);
	if (store_begin(b->store) == -1) {
		broker_db_down(b, "begin");
		return (-1);
	}
	b->in_txn = 1;
	b->txn_failed = 0;
	b->txn_index = b->index;
	b->txn_stats = b->stats;
	if (b->hooks.txn_opened != NULL)
		b->hooks.txn_opened(b->hooks.arg);
	return (0);
}

static void
broker_db_failed(struct broker *b, const char *what)
{
	broker_db_down(b, what);
	b->txn_failed = 1;
}

static void
broker_db_refused(struct berr *e)
{
	berr_set(e, BERR_DB_UNAVAILABLE, "the lease database cannot be "
	    "written; see berthd's log");
}

/*
 * Forget the names whose lease ended longest ago, past max_memos. -1 if
 * the store refused.
 */
static int
broker_prune_memos(struct broker *b)
{
	const char	*name;

	while (registry_memo_freed(&b->reg) > b->max_memos &&
	    (name = registry_memo_oldest(&b->reg)) != NULL) {
		if (store_delete_memo(b->store, name) == -1) {
			broker_db_failed(b, "forget name");
			return (-1);
		}
		registry_memo_drop(&b->reg, name);
	}
	return (0);
}

/*
 * Remember that l's name ended on its port. Its token's hash stays while
 * the holder may want the lease back (it lapsed: TTL, owner gone, taken
 * over); a release or revoke ends the registration for good.
 */
static int
broker_memo_end(struct broker *b, const struct lease *l,
    enum lease_state why, uint64_t now)
{
	unsigned char	 buf[BERTH_TOKEN_HASH], *hash = NULL;

	if (why != LEASE_RELEASED && why != LEASE_REVOKED &&
	    broker_token_hash(l->token, buf) == 0)
		hash = buf;
	if (store_put_memo(b->store, l->name, l->port, now, hash) == -1 ||
	    registry_memo_set(&b->reg, l->name, l->port, hash, now) == -1)
		return (-1);
	return (broker_prune_memos(b));
}

/*
 * End a live lease: record it, then free its port (it cools before another
 * name may take it) and forget it. -1 if the store refused.
 */
static int
broker_end(struct broker *b, struct lease *l, enum lease_state why)
{
	uint64_t	now = clock_now_ms();

	if (broker_txn(b) == -1)
		return (-1);
	if (store_delete_lease(b->store, l->name) == -1 ||
	    broker_memo_end(b, l, why, now) == -1) {
		broker_db_failed(b, "end lease");
		return (-1);
	}
	log_info("lease %s: port %u %s", l->name, l->port,
	    why == LEASE_OWNER_DEAD ? "freed, owner is gone" :
	    why == LEASE_EXPIRED ? "freed, ttl expired" :
	    why == LEASE_REVOKED ? "revoked" :
	    why == LEASE_TAKEN_OVER ? "taken over" : "released");
	switch (why) {
	case LEASE_RELEASED:
		b->stats.released++;
		break;
	case LEASE_EXPIRED:
		b->stats.expired++;
		break;
	case LEASE_OWNER_DEAD:
		b->stats.owner_dead++;
		break;
	case LEASE_REVOKED:
		b->stats.revoked++;
		break;
	default:
		break;
	}
	l->state = why;
	if (b->hooks.unwatch != NULL)
		b->hooks.unwatch(l, b->hooks.arg);
	if (b->hooks.ended != NULL)
		b->hooks.ended(l, b->hooks.arg);
	pool_release(b->pool, l->port, pool_name_hash(l->name), now);
	registry_remove(&b->reg, l);
	lease_free(l);
	b->index++;
	return (0);
}

/* The live lease named name, or NULL; a lease past its TTL is not live. */
struct lease *
broker_lookup(struct broker *b, const char *name)
{
	struct lease	*l;

	if ((l = registry_find(&b->reg, name)) == NULL ||
	    lease_expired(l, clock_now_ms()))
		return (NULL);
	return (l);
}

static int
broker_pool_probe(uint16_t port, void *arg)
{
	struct broker_probe_ctx	*ctx = arg;

	return (ctx->b->probe == NULL || ctx->b->probe(port, ctx->proto));
}

/* Is port held by a live lease? One past its TTL is ended first. */
static int
broker_port_held(struct broker *b, uint16_t port)
{
	struct lease	*l;

	if ((l = registry_by_port(&b->reg, port)) == NULL)
		return (0);
	if (lease_expired(l, clock_now_ms()) &&
	    broker_end(b, l, LEASE_EXPIRED) == 0)
		return (0);
	return (1);
}

/* Choose the port for a new lease: the one named, the sticky one, or any. */
static int
broker_choose_port(struct broker *b, const struct lease_req *r,
    uint16_t *port, struct berr *e)
{
	struct broker_probe_ctx	 ctx = { b, r->proto };
	uint32_t		 hash = pool_name_hash(r->name);
	uint64_t		 now = clock_now_ms();
	uint16_t		 memo;

	if (r->port != 0) {
		if (broker_port_held(b, r->port)) {
			berr_set(e, BERR_PORT_UNAVAILABLE, "port %u is leased "
			    "to '%s'", r->port,
			    registry_by_port(&b->reg, r->port)->name);
			return (-1);
		}
		/* In use: only its holder (or an ancestor) may have it. */
		if (!broker_pool_probe(r->port, &ctx) &&
		    adopt_port(r->port, r->proto, r->pid, e) == -1)
			return (-1);
		pool_take_port(b->pool, r->port, hash, now, 1);
		*port = r->port;
		return (0);
	}
	if (registry_memo_get(&b->reg, r->name, &memo) == 0 &&
	    pool_contains(b->pool, memo) && !broker_port_held(b, memo) &&
	    broker_pool_probe(memo, &ctx) &&
	    pool_take_port(b->pool, memo, hash, now, 0) == 0) {
		*port = memo;
		return (0);
	}
	if (pool_take(b->pool, hash, now, broker_pool_probe, &ctx, port) == 0)
		return (0);
	berr_set(e, BERR_POOL_EXHAUSTED, "no free port left in the pool "
	    "(%zu ports, %zu not leased, none of them bindable)",
	    pool_size(b->pool), pool_free_count(b->pool));
	return (-1);
}

/*
 * Renew l for ttl seconds (0: no expiry) from now; -1 with e set if the
 * store refused or there was no memory to index the new expiry.
 */
static int
broker_apply_renew(struct broker *b, struct lease *l, uint32_t ttl,
    struct berr *e)
{
	struct lease	 saved = *l;
	uint64_t	 now = clock_now_ms();

	if (broker_txn(b) == -1) {
		broker_db_refused(e);
		return (-1);
	}
	l->ttl = ttl;
	l->expires_at = ttl != 0 ? now + (uint64_t)ttl * 1000 : 0;
	l->renewed_at = now;
	if (registry_heap_update(&b->reg, l) == -1) {
		berr_set(e, BERR_NOMEM, "out of memory");
		goto undo;
	}
	if (store_put_lease(b->store, l) == -1) {
		broker_db_failed(b, "renew lease");
		broker_db_refused(e);
		goto undo;
	}
	lease_json_forget(l);
	/*
	 * No index change: watchers wait for names, addresses and readiness,
	 * and a service renewing every few seconds must not wake them all.
	 */
	b->stats.renewed++;
	return (0);
undo:
	l->ttl = saved.ttl;
	l->expires_at = saved.expires_at;
	l->renewed_at = saved.renewed_at;
	registry_heap_update(&b->reg, l);	/* back where it was: no growth */
	return (-1);
}

/*
 * Has a lease's holder gone, so that its name may be taken: why
 * (LEASE_EXPIRED or LEASE_OWNER_DEAD), or LEASE_LIVE if it holds on.
 */
static enum lease_state
broker_holder_gone(const struct lease *l)
{
	if (lease_expired(l, clock_now_ms()))
		return (LEASE_EXPIRED);
	if (!owner_alive(&l->owner))
		return (LEASE_OWNER_DEAD);
	return (LEASE_LIVE);
}


/* Age or time left, short: "40s", "12m", "3h", "2d". */
static void
broker_span(uint64_t ms, char *buf, size_t len)
{
	uint64_t	s = ms / 1000;

	if (s < 120)
		snprintf(buf, len, "%llus", (unsigned long long)s);
	else if (s < 7200)
		snprintf(buf, len, "%llum", (unsigned long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, len, "%lluh", (unsigned long long)(s / 3600));
	else
		snprintf(buf, len, "%llud", (unsigned long long)(s / 86400));
}

/*
 * name_taken: who holds the name (owner pid and command, age) and how the
 * lease will end, which is the only true hint: with its TTL, with its
 * owner, or only when released or revoked.
 */
static void
broker_name_taken(const struct lease *l, struct berr *e)
{
	char		who[96], age[16], left[16], comm[32];
	uint64_t	now = clock_now_ms();

	broker_span(now > l->created_at ? now - l->created_at : 0, age,
	    sizeof age);
	if (l->owner.pid > 0) {
		owner_comm(l->owner.pid, comm, sizeof comm);
		snprintf(who, sizeof who, "owner pid %ld (%s)",
		    (long)l->owner.pid, comm);
	} else
		snprintf(who, sizeof who, "no owner process");
	if (l->ttl != 0) {
		broker_span(l->expires_at > now ? l->expires_at - now : 0,
		    left, sizeof left);
		berr_set(e, BERR_NAME_TAKEN, "'%s' is held by a live lease on "
		    "port %u (%s, %s old); it ends in %s unless renewed, or "
		    "release it with its token", l->name, l->port, who, age,
		    left);
	} else if (l->owner.pid > 0)
		berr_set(e, BERR_NAME_TAKEN, "'%s' is held by a live lease on "
		    "port %u (%s, %s old); it ends when that process exits, or "
		    "release it with its token", l->name, l->port, who, age);
	else
		berr_set(e, BERR_NAME_TAKEN, "'%s' is held by a live lease on "
		    "port %u (%s, no TTL, %s old); it lasts until released with "
		    "its token, or revoked by root or berthd's user (berth "
		    "revoke %s)", l->name, l->port, who, age, l->name);
}

/*
 * An acquire meets a live lease of the same name. With its token: the
 * same lease, renewed (*done = 1). Held by a dead owner or past its TTL:
 * end it and go on (*done = 0). Otherwise name_taken.
 */
static int
broker_acquire_existing(struct broker *b, const struct lease_req *r,
    const char *bearer, struct lease *l, int *done, struct berr *e)
{
	enum lease_state	gone = broker_holder_gone(l);

	*done = 0;
	if (gone != LEASE_EXPIRED && bearer != NULL &&
	    broker_token_equal(bearer, l->token)) {
		if (broker_apply_renew(b, l, r->has_ttl ? r->ttl : l->ttl,
		    e) == -1)
			return (-1);
		*done = 1;
		return (0);
	}
	if (gone == LEASE_LIVE) {
		broker_name_taken(l, e);
		return (-1);
	}
	if (broker_end(b, l, gone) == -1) {
		broker_db_refused(e);
		return (-1);
	}
	b->stats.taken_over++;
	return (0);
}

/*
 * Make the lease r describes on port (already taken from the pool) inside
 * the open transaction: store, registry, memo, owner watch. Its token is
 * token when the lease is reclaimed, else a new one.
 */
static int
broker_grant(struct broker *b, const struct lease_req *r,
    const struct owner *owner, uint16_t port, const char *token,
    struct lease **out, struct berr *e)
{
	unsigned char	 hash[BERTH_TOKEN_HASH];
	struct lease	*l;
	uint64_t	 now;

	now = clock_now_ms();
	if ((l = lease_new()) == NULL ||
	    (token == NULL && broker_new_token(l->token) == -1) ||
	    (l->host = strdup(r->host)) == NULL ||
	    (r->meta != NULL && (l->meta = strdup(r->meta)) == NULL))
		goto nomem;
	if (token != NULL)
		snprintf(l->token, sizeof l->token, "%s", token);
	if (broker_token_hash(l->token, hash) == -1)
		goto nomem;
	snprintf(l->name, sizeof l->name, "%s", r->name);
	l->port = port;
	l->proto = (uint8_t)r->proto;
	l->ttl = r->ttl;
	l->expires_at = r->ttl != 0 ? now + (uint64_t)r->ttl * 1000 : 0;
	l->created_at = l->renewed_at = now;
	l->owner = *owner;
	l->uid = r->uid;
	l->publish = r->publish;
	if (registry_memo_set(&b->reg, l->name, port, hash, 0) == -1 ||
	    registry_add(&b->reg, l) == -1)
		goto nomem;
	if (store_put_lease(b->store, l) == -1 ||
	    store_put_memo(b->store, l->name, port, 0, hash) == -1) {
		broker_db_failed(b, "put lease");
		registry_remove(&b->reg, l);
		lease_free(l);
		broker_db_refused(e);
		return (-1);
	}
	if (b->hooks.watch != NULL && l->owner.pid > 0)
		b->hooks.watch(l, b->hooks.arg);
	if (b->hooks.acquired != NULL)
		b->hooks.acquired(l, b->hooks.arg);
	b->index++;
	b->stats.acquired++;
	log_info("lease %s: port %u %s%s", l->name, port,
	    token != NULL ? "reclaimed with its token" : "granted",
	    l->owner.pid > 0 ? ", owner watched" : "");
	*out = l;
	return (0);
nomem:
	lease_free(l);
	pool_release(b->pool, port, pool_name_hash(r->name), 0);
	berr_set(e, BERR_NOMEM, "out of memory or entropy");
	return (-1);
}


/*
 * May the asker name r->pid as owner? Not berthd itself (the lease would
 * never end), and only a process of the asker's own user, unless an admin
 * asks: else anyone could tie a name to another user's long-lived process.
 */
static int
broker_owner_refused(const struct lease_req *r, struct berr *e)
{
	if (r->pid == getpid()) {
		berr_set(e, BERR_INVALID_FIELD, "pid %ld is berthd's own; give "
		    "the pid of the service that holds the lease",
		    (long)r->pid);
		return (1);
	}
	if (r->admin || owner_of_uid(r->pid, r->uid))
		return (0);
	if (r->uid < 0)
		berr_set(e, BERR_INVALID_FIELD, "berthd cannot tell which "
		    "user asks (not a loopback or unix-socket client), so it "
		    "cannot take pid %ld as owner", (long)r->pid);
	else
		berr_set(e, BERR_INVALID_FIELD, "pid %ld is not a process of "
		    "your user (uid %ld); only root or berthd's user may name "
		    "another user's process", (long)r->pid, r->uid);
	return (1);
}

/* Are there --max-leases live leases already? Then 503 lease_limit. */
static int
broker_at_limit(struct broker *b, struct berr *e)
{
	if (registry_count(&b->reg) < b->max_leases)
		return (0);
	berr_set(e, BERR_LEASE_LIMIT, "berthd holds %zu leases, its limit "
	    "(--max-leases); release some, or raise the limit",
	    registry_count(&b->reg));
	return (1);
}

/*
 * An acquire with a token for a name without a live lease: the holder of
 * a lease that lapsed (broker down past its TTL, suspend, SIGSTOP) takes
 * it back, on its last port and with the same token. The port is not
 * test-bound: the holder's own service is usually still listening on it.
 * A token that is not the name's last (released, revoked, or never its)
 * is refused, so a registration that was ended for good stays ended.
 */
static int
broker_reclaim_port(struct broker *b, const struct lease_req *r,
    const char *bearer, uint16_t *port, struct berr *e)
{
	unsigned char	 want[BERTH_TOKEN_HASH], have[BERTH_TOKEN_HASH];
	struct lease	*l;
	uint16_t	 memo;

	if (broker_token_hash(bearer, want) == -1) {
		berr_set(e, BERR_NOMEM, "out of memory");
		return (-1);
	}
	if (registry_memo_hash(&b->reg, r->name, have) == -1 ||
	    CRYPTO_memcmp(want, have, sizeof want) != 0 ||
	    registry_memo_get(&b->reg, r->name, &memo) == -1) {
		berr_set(e, BERR_BAD_TOKEN, "the token is not that of the last "
		    "lease on '%s', or that lease was released or revoked, "
		    "which ends it for good; acquire without the token for a "
		    "new lease", r->name);
		return (-1);
	}
	if (r->port != 0 && r->port != memo) {
		berr_set(e, BERR_INVALID_FIELD, "the lease on '%s' being "
		    "reclaimed had port %u, not %u", r->name, memo, r->port);
		return (-1);
	}
	if (broker_port_held(b, memo)) {
		l = registry_by_port(&b->reg, memo);
		berr_set(e, BERR_PORT_UNAVAILABLE, "port %u, the last of '%s', "
		    "is leased to '%s' now", memo, r->name, l->name);
		return (-1);
	}
	pool_take_port(b->pool, memo, pool_name_hash(r->name), clock_now_ms(),
	    1);
	*port = memo;
	return (0);
}

/*
 * POST /v1/services. On success *out is the lease and *created is 1 for a
 * new lease (201) or 0 for an idempotent re-acquire with the token (200).
 */
int
broker_acquire(struct broker *b, const struct lease_req *r, const char *bearer,
    struct lease **out, int *created, struct berr *e)
{
	struct lease	*l;
	struct owner	 owner;
	uint16_t	 port;
	int		 done;

	memset(&owner, 0, sizeof owner);
	if (r->pid != 0 && owner_read(r->pid, &owner) == -1) {
		berr_set(e, BERR_PID_NOT_VISIBLE, "pid %ld is no user "
		    "process berthd can see (another PID namespace?)",
		    (long)r->pid);
		return (-1);
	}
	if (r->pid != 0 && broker_owner_refused(r, e))
		return (-1);
	if ((l = registry_find(&b->reg, r->name)) != NULL) {
		if (broker_acquire_existing(b, r, bearer, l, &done, e) == -1)
			return (-1);
		if (done) {
			*out = l;
			*created = 0;
			return (0);
		}
	}
	if (broker_txn(b) == -1) {
		broker_db_refused(e);
		return (-1);
	}
	if (broker_at_limit(b, e))
		return (-1);
	if (bearer != NULL) {
		if (broker_reclaim_port(b, r, bearer, &port, e) == -1)
			return (-1);
	} else if (broker_choose_port(b, r, &port, e) == -1)
		return (-1);
	if (broker_grant(b, r, &owner, port, bearer, out, e) == -1)
		return (-1);
	*created = 1;
	return (0);
}

/*
 * A lease for a client that names no service: portpicker's portserver
 * protocol (docs/portpicker.md). Any pool port free on TCP and UDP, owned
 * by pid, named "portpicker-PORT": unique while the port is leased, and its
 * sticky-port memo is bounded by the pool. Should an HTTP client hold that
 * name on another port, the port is set aside and another drawn.
 */
#define BROKER_ANON_TRIES	8

int
broker_acquire_anon(struct broker *b, pid_t pid, struct lease **out,
    struct berr *e)
{
	struct broker_probe_ctx	 ctx = { b, PROTO_BOTH };
	struct lease_req	 r;
	struct lease		*held;
	struct owner		 owner;
	enum lease_state	 why;
	uint16_t		 port, aside[BROKER_ANON_TRIES];
	size_t			 naside = 0, i;
	int			 rc = -1;

	if (pid <= 1 || owner_read(pid, &owner) == -1 || !owner_alive(&owner)) {
		berr_set(e, BERR_PID_NOT_VISIBLE, "pid %ld is no live user "
		    "process berthd can see", (long)pid);
		return (-1);
	}
	if (broker_txn(b) == -1) {
		broker_db_refused(e);
		return (-1);
	}
	if (broker_at_limit(b, e))
		return (-1);
	memset(&r, 0, sizeof r);
	snprintf(r.host, sizeof r.host, "%s", BERTH_DEFAULT_HOST);
	r.proto = PROTO_BOTH;
	r.pid = pid;
	r.uid = -1;		/* the portserver does not say */
	for (;;) {
		if (pool_take(b->pool, 0, clock_now_ms(), broker_pool_probe,
		    &ctx, &port) == -1) {
			berr_set(e, BERR_POOL_EXHAUSTED, "no free port left "
			    "in the pool");
			break;
		}
		snprintf(r.name, sizeof r.name, "portpicker-%u", port);
		held = registry_find(&b->reg, r.name);
		/* A holder that is gone gives the name up, as in an acquire. */
		if (held != NULL && (why = broker_holder_gone(held)) !=
		    LEASE_LIVE) {
			if (broker_end(b, held, why) == -1) {
				aside[naside++] = port;
				broker_db_refused(e);
				break;
			}
			held = NULL;
		}
		if (held == NULL) {
			rc = broker_grant(b, &r, &owner, port, NULL, out, e);
			break;
		}
		aside[naside++] = port;
		if (naside == BROKER_ANON_TRIES) {
			berr_set(e, BERR_POOL_EXHAUSTED, "no port whose "
			    "portpicker- name is free");
			break;
		}
	}
	for (i = 0; i < naside; i++)
		pool_release(b->pool, aside[i], 0, 0);
	return (rc);
}

/* The lease named name if bearer is its token; 404 or 403 otherwise. */
static struct lease *
broker_authorize(struct broker *b, const char *name, const char *bearer,
    struct berr *e)
{
	struct lease	*l;

	if ((l = broker_lookup(b, name)) == NULL) {
		berr_set(e, BERR_NOT_FOUND, "no live lease named '%s'", name);
		return (NULL);
	}
	if (bearer == NULL) {
		berr_set(e, BERR_BAD_TOKEN, "this call needs the lease's "
		    "token: Authorization: Bearer TOKEN");
		return (NULL);
	}
	if (!broker_token_equal(bearer, l->token)) {
		berr_set(e, BERR_BAD_TOKEN, "the token does not match the "
		    "lease '%s'", name);
		return (NULL);
	}
	return (l);
}

int
broker_renew(struct broker *b, const char *name, const char *bearer,
    const uint32_t *ttl, struct lease **out, struct berr *e)
{
	struct lease	*l;

	if ((l = broker_authorize(b, name, bearer, e)) == NULL)
		return (-1);
	if (broker_apply_renew(b, l, ttl != NULL ? *ttl : l->ttl, e) == -1)
		return (-1);
	*out = l;
	return (0);
}

int
broker_release(struct broker *b, const char *name, const char *bearer,
    struct berr *e)
{
	struct lease	*l;

	if ((l = broker_authorize(b, name, bearer, e)) == NULL)
		return (-1);
	if (broker_end(b, l, LEASE_RELEASED) == -1) {
		broker_db_refused(e);
		return (-1);
	}
	return (0);
}

int
broker_revoke(struct broker *b, const char *name, struct berr *e)
{
	struct lease	*l;

	if ((l = broker_lookup(b, name)) == NULL) {
		berr_set(e, BERR_NOT_FOUND, "no live lease named '%s'", name);
		return (-1);
	}
	if (broker_end(b, l, LEASE_REVOKED) == -1) {
		broker_db_refused(e);
		return (-1);
	}
	return (0);
}

/*
 * Lease l's service is there, or not (ready.c). Readiness is not stored,
 * but to watchers it is a change like any other: the index moves inside
 * the turn's transaction, whose commit stores it, so the index never goes
 * back across a restart; and the lease's JSON and the list are built
 * again. -1, l unchanged, when the transaction cannot be opened, or
 * while the database refuses writes: a commit of the index alone would
 * fail and reload every lease each time (the reaper's probe finds out
 * when it takes writes again).
 */
int
broker_set_ready(struct broker *b, struct lease *l, enum lease_ready ready)
{
	if (l->ready == ready)
		return (0);
	if (!b->db_ok || broker_txn(b) == -1)
		return (-1);
	l->ready = ready;
	lease_json_forget(l);
	b->reg.version++;
	b->index++;
	return (0);
}

/* End every lease whose TTL has passed; the number ended, -1 on a db error. */
int
broker_expire_due(struct broker *b)
{
	struct lease	*l;
	uint64_t	 now = clock_now_ms();
	int		 n = 0;

	while ((l = registry_heap_top(&b->reg)) != NULL &&
	    lease_expired(l, now)) {
		if (broker_end(b, l, LEASE_EXPIRED) == -1)
			return (-1);
		n++;
	}
	return (n);
}

/* When the next lease expires (ms since the epoch), or 0 if none will. */
uint64_t
broker_next_expiry(const struct broker *b)
{
	const struct lease	*l = registry_heap_top(&b->reg);

	return (l != NULL ? l->expires_at : 0);
}

void
broker_owner_dead(struct broker *b, struct lease *l)
{
	if (broker_end(b, l, LEASE_OWNER_DEAD) == -1)
		log_warnx("lease %s: owner is gone, but the store refused to "
		    "end it; will retry", l->name);
}

/*
 * The poll of one owner without a pidfd watch: end l if the kernel says
 * its owner is gone (else the store refused, and the next poll retries).
 * Returns owner_check's answer, errno set for OWNER_UNKNOWN; l is freed
 * if it ended.
 */
enum owner_state
broker_check_owner(struct broker *b, struct lease *l)
{
	enum owner_state	state = owner_check(&l->owner);
	int			err = errno;

	if (state == OWNER_GONE)
		broker_owner_dead(b, l);
	errno = err;
	return (state);
}

size_t
broker_live_count(const struct broker *b)
{
	return (registry_count(&b->reg));
}

/* The live leases, in no order: broker_first, then broker_next. */
struct lease *
broker_first(const struct broker *b)
{
	return (TAILQ_FIRST(&b->reg.all));
}

struct lease *
broker_next(const struct lease *l)
{
	return (TAILQ_NEXT(l, entry));
}

uint64_t
broker_index(const struct broker *b)
{
	return (b->index);
}

/* Is this turn's transaction open, its answers to be held for the commit? */
int
broker_in_txn(const struct broker *b)
{
	return (b->in_txn);
}

int
broker_db_ok(const struct broker *b)
{
	return (b->db_ok);
}

/* Why the last write failed, for /v1/health. */
const char *
broker_db_error(const struct broker *b)
{
	return (b->db_error);
}

/* Does the database answer, and did the last write to it succeed? */
int
broker_db_healthy(struct broker *b)
{
	return (store_ping(b->store) == 0 && b->db_ok);
}

struct pool *
broker_pool(const struct broker *b)
{
	return (b->pool);
}

/* The registry, to read (the unit tests check its indexes). */
const struct registry *
broker_registry(const struct broker *b)
{
	return (&b->reg);
}

const struct broker_stats *
broker_stats(const struct broker *b)
{
	return (&b->stats);
}

void
broker_set_hooks(struct broker *b, const struct broker_hooks *hooks)
{
	b->hooks = *hooks;
}

/* The hooks' owner goes away: end every owner watch, then forget them. */
void
broker_drop_hooks(struct broker *b)
{
	broker_unwatch_all(b);
	memset(&b->hooks, 0, sizeof b->hooks);
}

struct broker_load_ctx {
	struct broker	*b;
	uint64_t	 now;
};

static int
broker_load_lease(struct lease *l, void *arg)
{
	struct broker_load_ctx	*ctx = arg;

	if (registry_add(&ctx->b->reg, l) == -1) {
		lease_free(l);
		return (-1);
	}
	pool_take_port(ctx->b->pool, l->port, pool_name_hash(l->name),
	    ctx->now, 1);
	return (0);
}

static int
broker_load_memo(const char *name, uint16_t port, uint64_t freed_at,
    const unsigned char *hash, void *arg)
{
	struct broker_load_ctx	*ctx = arg;
	struct broker		*b = ctx->b;

	if (registry_memo_set(&b->reg, name, port, hash, freed_at) == -1)
		return (-1);
	/* A port released shortly before the restart still cools. */
	if (freed_at != 0 && freed_at + b->reuse_delay > ctx->now &&
	    registry_by_port(&b->reg, port) == NULL &&
	    pool_contains(b->pool, port) &&
	    pool_take_port(b->pool, port, 0, ctx->now, 1) == 0)
		pool_release(b->pool, port, pool_name_hash(name), freed_at);
	return (0);
}

/*
 * (Re)build memory from the store: every lease, every sticky port, and the
 * change index. Leases that ended while berthd was down (past their TTL,
 * owner gone, or owned by a pid from before a reboot) are ended now.
 */
int
broker_load(struct broker *b, char *err, size_t errlen)
{
	struct broker_load_ctx	 ctx = { b, clock_now_ms() };
	struct lease		*l, *next;
	uint64_t		 index;

	broker_unwatch_all(b);
	pool_reset(b->pool);
	if (registry_clear(&b->reg) == -1) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	if (store_get_index(b->store, &index) == -1 ||
	    store_load(b->store, broker_load_lease, broker_load_memo,
	    &ctx) == -1) {
		snprintf(err, errlen, "cannot read leases: %s",
		    store_errmsg(b->store));
		return (-1);
	}
	if (index > b->index)
		b->index = index;
	for (l = TAILQ_FIRST(&b->reg.all); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if (lease_expired(l, ctx.now)) {
			if (broker_end(b, l, LEASE_EXPIRED) == -1)
				goto fail;
		} else if (l->owner.pid > 0 && !owner_alive(&l->owner)) {
			if (broker_end(b, l, LEASE_OWNER_DEAD) == -1)
				goto fail;
		} else if (l->owner.pid > 0 && b->hooks.watch != NULL)
			b->hooks.watch(l, b->hooks.arg);
	}
	if (registry_memo_freed(&b->reg) > b->max_memos &&
	    (broker_txn(b) == -1 || broker_prune_memos(b) == -1))
		goto fail;
	if (b->in_txn && broker_commit(b) == -1)
		goto fail;
	b->db_ok = 1;
	return (0);
fail:
	snprintf(err, errlen, "cannot end stale leases: %s",
	    store_errmsg(b->store));
	return (-1);
}

/*
 * Commit the turn's transaction. On failure everything of this turn is
 * rolled back, memory is reloaded from the store, and -1 tells the caller
 * to answer this turn's requests 503.
 */
int
broker_commit(struct broker *b)
{
	char		err[256];
	uint64_t	start;

	if (!b->in_txn)
		return (0);
	b->in_txn = 0;
	start = latency_now_ns();
	if (!b->txn_failed && store_put_index(b->store, b->index) == 0 &&
	    store_commit(b->store) == 0) {
		latency_observe(&b->stats.commit_latency,
		    latency_now_ns() - start);
		b->stats.commits++;
		b->db_ok = 1;
		return (0);
	}
	if (!b->txn_failed)
		broker_db_down(b, "commit");
	log_warnx("store: this turn's changes are rolled back and answered "
	    "503");
	store_rollback(b->store);
	/* What the turn counted did not happen either. */
	b->stats = b->txn_stats;
	b->stats.commit_failures++;
	b->db_ok = 0;
	b->txn_failed = 0;
	/* Nothing of the turn happened: the index is as it was before it. */
	b->index = b->txn_index;
	/* Reloading may end stale leases and commit again; do not recurse. */
	if (!b->reloading) {
		b->reloading = 1;
		if (broker_load(b, err, sizeof err) == -1)
			log_warnx("store: reload after a failed commit: %s",
			    err);
		b->reloading = 0;
	}
	b->db_ok = 0;
	return (-1);
}

/*
 * Try a small write of our own (a probe row in the state table): after a
 * failed write, each second, so recovery shows without client writes;
 * and for /v1/health. Not while a turn's transaction is open. Returns
 * db_ok.
 */
int
broker_probe_db(struct broker *b)
{
	if (b->in_txn)
		return (b->db_ok);
	if (store_begin(b->store) == -1) {
		broker_db_down(b, "probe");
		return (0);
	}
	if (store_probe_write(b->store, clock_now_ms()) == -1 ||
	    store_commit(b->store) == -1) {
		broker_db_down(b, "probe");
		store_rollback(b->store);
		return (0);
	}
	if (!b->db_ok)
		log_info("store: the database is writable again");
	return (b->db_ok = 1);
}
