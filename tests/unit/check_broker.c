/*
 * check_broker.c: unit tests for broker.c, the lease rules of docs/api.md over
 * the registry, the pool and the store: granting, conflicts, idempotent
 * re-acquire, sticky ports, the reuse delay, explicit ports, exhaustion,
 * TTL expiry on a fake clock, renew, release, revoke, owners, and what
 * survives closing and reopening the database. And owner.c's own rule, on
 * which the broker's owners rest: an owner is gone only when the kernel
 * says so (reaped, a zombie, another start time or boot), never because
 * berthd could not look.
 *
 * As in the daemon, every mutation is followed by broker_commit().
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "unit.h"

#define LO	50000		/* the test pool: LO..HI */
#define HI	50009
#define NPORTS	(HI - LO + 1)
#define DELAY	60000		/* reuse delay, ms */
#define T0	1700000000000ULL

static struct store	*st;
static struct pool	*pl;
static struct broker	*br;
static uint8_t		 busy[65536];	/* ports the fake probe refuses */
static char		 tmpdir[64];

/* The test bind, faked: a port is free unless marked busy. */
static int
fake_probe(uint16_t port, int proto)
{
	(void)proto;
	return (!busy[port]);
}

static void
open_broker(const char *path)
{
	struct port_range	r = { LO, HI };
	char			err[256];

	st = store_open(path, 1, err, sizeof err);
	ck_assert_msg(st != NULL, "store_open %s: %s", path, err);
	pl = pool_new(&r, 1, DELAY);
	ck_assert_ptr_nonnull(pl);
	br = broker_new(st, pl, DELAY, fake_probe, NULL);
	ck_assert_ptr_nonnull(br);
}

static void
close_broker(void)
{
	broker_free(br);
	pool_free(pl);
	store_close(st);
	br = NULL;
	pl = NULL;
	st = NULL;
}

/* Close and reopen the same database, then load it as berthd starts. */
static void
reopen_broker(const char *path)
{
	char	err[256];

	close_broker();
	open_broker(path);
	ck_assert_msg(broker_load(br, err, sizeof err) == 0, "broker_load: %s",
	    err);
}

static void
mem_setup(void)
{
	memset(busy, 0, sizeof busy);
	clock_set_fake(T0);
	open_broker(":memory:");
}

static void
mem_teardown(void)
{
	close_broker();
}

/* Unchecked fixture, in the parent: one temporary directory per run. */
static void
dir_setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check_broker.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(EXIT_FAILURE);
	}
}

static void
dir_teardown(void)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[512];

	if ((d = opendir(tmpdir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

static void
file_setup(void)
{
	memset(busy, 0, sizeof busy);
	clock_set_fake(T0);
}

static const char *
db_path(const char *name)
{
	static char	path[256];

	snprintf(path, sizeof path, "%s/%s.db", tmpdir, name);
	return (path);
}

/*
 * Acquire as POST /v1/services does: parse the body, acquire, commit.
 * Returns broker_acquire's result; the commit must always succeed.
 */
static int
acquire(const char *body, const char *bearer, struct lease **out,
    int *created, struct berr *e)
{
	struct lease_req	r;
	int			rc;

	memset(e, 0, sizeof *e);
	ck_assert_msg(leasereq_parse(body, strlen(body), &r, e) == 0,
	    "body %s: %s", body, e->message);
	r.uid = (long)geteuid();	/* as the API says: we ask */
	*out = NULL;
	*created = -1;
	rc = broker_acquire(br, &r, bearer, out, created, e);
	leasereq_clear(&r);
	ck_assert_int_eq(broker_commit(br), 0);
	return (rc);
}

/* Acquire that must succeed with a new lease. */
static struct lease *
grant(const char *body)
{
	struct lease	*l;
	struct berr	 e;
	int		 created;

	ck_assert_msg(acquire(body, NULL, &l, &created, &e) == 0,
	    "%s: %s: %s", body, berr_name(e.code), e.message);
	ck_assert_int_eq(created, 1);
	ck_assert_ptr_nonnull(l);
	return (l);
}

/* A new lease named name, owned by pid. */
static struct lease *
grant_owned(const char *name, pid_t pid)
{
	char	body[128];

	snprintf(body, sizeof body, "{\"name\":\"%s\",\"pid\":%ld}", name,
	    (long)pid);
	return (grant(body));
}

/* Acquire that must fail with code. */
static void
refuse(const char *body, const char *bearer, enum berr_code code)
{
	struct lease	*l;
	struct berr	 e;
	int		 created;

	ck_assert_msg(acquire(body, bearer, &l, &created, &e) == -1,
	    "%s granted (port %u)", body, l != NULL ? l->port : 0);
	ck_assert_msg(e.code == code, "%s: got %s, want %s", body,
	    berr_name(e.code), berr_name(code));
}

static int
release(const char *name, const char *bearer, struct berr *e)
{
	int	rc;

	memset(e, 0, sizeof *e);
	rc = broker_release(br, name, bearer, e);
	ck_assert_int_eq(broker_commit(br), 0);
	return (rc);
}

static void
release_ok(struct lease *l)
{
	char		name[BERTH_NAME_MAX + 1], token[BERTH_TOKEN_HEX + 1];
	struct berr	e;

	/* l is freed by the release: copy what we pass. */
	snprintf(name, sizeof name, "%s", l->name);
	snprintf(token, sizeof token, "%s", l->token);
	ck_assert_msg(release(name, token, &e) == 0, "release %s: %s", name,
	    e.message);
	ck_assert_ptr_null(broker_lookup(br, name));
}

static void
assert_error(const struct berr *e, enum berr_code code)
{
	ck_assert_str_eq(berr_name(e->code), berr_name(code));
	ck_assert_str_ne(e->message, "");
}

/* A child that lives until we close the pipe. */
static pid_t
spawn_child(int *wfd)
{
	int	fds[2];
	char	c;
	pid_t	pid;

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(fds[1]);
		while (read(fds[0], &c, 1) == -1 && errno == EINTR)
			;
		_exit(0);
	}
	close(fds[0]);
	*wfd = fds[1];
	return (pid);
}

static void
end_child(pid_t pid, int wfd)
{
	close(wfd);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}

/* A child as an owner, recorded in *o. */
static pid_t
spawn_owner(struct owner *o, int *wfd)
{
	pid_t	pid = spawn_child(wfd);

	ck_assert_int_eq(owner_read(pid, o), 0);
	return (pid);
}

/*
 * No descriptor left: every open() and pidfd_open() fails with EMFILE
 * until the limit saved in *saved is set again.
 */
static void
exhaust_descriptors(struct rlimit *saved)
{
	struct rlimit	rl;
	int		fd;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, saved), 0);
	ck_assert_int_ne(fd = dup(0), -1);
	close(fd);
	rl = *saved;
	rl.rlim_cur = (rlim_t)fd;	/* the lowest free descriptor */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_int_eq(open("/dev/null", O_RDONLY), -1);
	ck_assert_int_eq(errno, EMFILE);
}

static int
is_hex(const char *s)
{
	for (; *s != '\0'; s++)
		if (strchr("0123456789abcdef", *s) == NULL)
			return (0);
	return (1);
}

/*
 * Granting: a new name gets a pool port, a fresh token, 201 (created=1).
 */
START_TEST(test_acquire_new)
{
	struct lease	*l, *m;
	uint64_t	 index = broker_index(br);

	l = grant("{\"name\":\"api\"}");
	ck_assert_uint_ge(l->port, LO);
	ck_assert_uint_le(l->port, HI);
	ck_assert_str_eq(l->name, "api");
	ck_assert_uint_eq(strlen(l->token), BERTH_TOKEN_HEX);
	ck_assert(is_hex(l->token));
	ck_assert_uint_eq(l->created_at, T0);
	ck_assert_uint_eq(l->renewed_at, T0);
	ck_assert_uint_eq(l->expires_at, 0);
	ck_assert_int_eq(l->owner.pid, 0);
	ck_assert_ptr_eq(broker_lookup(br, "api"), l);
	ck_assert_uint_eq(broker_live_count(br), 1);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);
	ck_assert_uint_gt(broker_index(br), index);
	ck_assert_uint_eq(broker_stats(br)->acquired, 1);
	ck_assert_int_eq(broker_in_txn(br), 0);

	m = grant("{\"name\":\"web\",\"ttl\":5,\"proto\":\"both\","
	    "\"host\":\"::1\",\"meta\":{\"k\":\"v\"}}");
	ck_assert_uint_ne(m->port, l->port);
	ck_assert_str_ne(m->token, l->token);
	ck_assert_int_eq(m->proto, PROTO_BOTH);
	ck_assert_str_eq(m->host, "::1");
	ck_assert_str_eq(m->meta, "{\"k\":\"v\"}");
	ck_assert_uint_eq(m->ttl, 5);
	ck_assert_uint_eq(m->expires_at, T0 + 5000);
	ck_assert_ptr_null(broker_lookup(br, "nope"));
}
END_TEST

/* A live name without its token: 409 name_taken, a wrong token too. */
START_TEST(test_name_taken)
{
	struct lease	*l;
	char		 bad[BERTH_TOKEN_HEX + 1];

	l = grant("{\"name\":\"api\"}");
	refuse("{\"name\":\"api\"}", NULL, BERR_NAME_TAKEN);
	snprintf(bad, sizeof bad, "%s", l->token);
	bad[0] = bad[0] == '0' ? '1' : '0';
	refuse("{\"name\":\"api\"}", bad, BERR_NAME_TAKEN);
	refuse("{\"name\":\"api\",\"port\":50005}", "", BERR_NAME_TAKEN);
	ck_assert_uint_eq(broker_live_count(br), 1);
	ck_assert_ptr_eq(broker_lookup(br, "api"), l);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);
}
END_TEST

/* With the token: the same lease, renewed, created=0 (200). */
START_TEST(test_reacquire_token)
{
	struct lease	*l, *m;
	struct berr	 e;
	char		 token[BERTH_TOKEN_HEX + 1];
	uint16_t	 port;
	int		 created;

	l = grant("{\"name\":\"api\",\"ttl\":10}");
	port = l->port;
	snprintf(token, sizeof token, "%s", l->token);
	clock_advance(5000);
	ck_assert_int_eq(acquire("{\"name\":\"api\",\"ttl\":10}", token, &m,
	    &created, &e), 0);
	ck_assert_int_eq(created, 0);
	ck_assert_ptr_eq(m, l);
	ck_assert_uint_eq(m->port, port);
	ck_assert_str_eq(m->token, token);
	ck_assert_uint_eq(m->created_at, T0);
	ck_assert_uint_eq(m->renewed_at, T0 + 5000);
	ck_assert_uint_eq(m->expires_at, T0 + 15000);
	ck_assert_uint_eq(broker_live_count(br), 1);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);

	/* A new ttl in the body applies. */
	ck_assert_int_eq(acquire("{\"name\":\"api\",\"ttl\":60}", token, &m,
	    &created, &e), 0);
	ck_assert_int_eq(created, 0);
	ck_assert_uint_eq(m->ttl, 60);
	ck_assert_uint_eq(m->expires_at, T0 + 5000 + 60000);
}
END_TEST

/* Sticky: a name that comes back gets its last port. */
START_TEST(test_sticky)
{
	struct lease	*l;
	uint16_t	 port;
	char		 body[64];
	int		 i;

	l = grant("{\"name\":\"api\"}");
	port = l->port;
	release_ok(l);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS);
	l = grant("{\"name\":\"other\"}");
	ck_assert_uint_ne(l->port, port);
	l = grant("{\"name\":\"api\"}");
	ck_assert_uint_eq(l->port, port);

	/* Still after the delay, when others took ports in between. */
	release_ok(l);
	clock_advance(DELAY * 2);
	for (i = 0; i < 3; i++) {
		snprintf(body, sizeof body, "{\"name\":\"n%d\"}", i);
		l = grant(body);
		ck_assert_uint_ne(l->port, port);
	}
	l = grant("{\"name\":\"api\"}");
	ck_assert_uint_eq(l->port, port);
}
END_TEST

/* A sticky port some other process holds now: any other port will do. */
START_TEST(test_sticky_busy)
{
	struct lease	*l;
	uint16_t	 port;

	l = grant("{\"name\":\"api\"}");
	port = l->port;
	release_ok(l);
	busy[port] = 1;
	l = grant("{\"name\":\"api\"}");
	ck_assert_uint_ne(l->port, port);
	ck_assert_uint_ge(l->port, LO);
	ck_assert_uint_le(l->port, HI);
}
END_TEST

/*
 * No back-to-back reuse: a port freed by one name goes to no other name
 * while other pool ports are free; when none is, it may.
 */
START_TEST(test_reuse_delay)
{
	static const char *const names[] = { "{\"name\":\"b0\"}",
	    "{\"name\":\"b1\"}", "{\"name\":\"b2\"}", "{\"name\":\"b3\"}",
	    "{\"name\":\"b4\"}", "{\"name\":\"b5\"}", "{\"name\":\"b6\"}",
	    "{\"name\":\"b7\"}", "{\"name\":\"b8\"}" };
	struct lease	*l;
	uint16_t	 port;
	size_t		 i;

	l = grant("{\"name\":\"a\"}");
	port = l->port;
	release_ok(l);
	clock_advance(1000);
	for (i = 0; i < NPORTS - 1; i++) {
		l = grant(names[i]);
		ck_assert_msg(l->port != port, "port %u freed by 'a' handed "
		    "to '%s' while other ports were free", port, l->name);
	}
	l = grant("{\"name\":\"last\"}");
	ck_assert_uint_eq(l->port, port);
}
END_TEST

/* Once the delay has passed, the port is anyone's. */
START_TEST(test_reuse_delay_passes)
{
	struct lease	*l;
	uint16_t	 port;
	unsigned int	 p;

	l = grant("{\"name\":\"a\"}");
	port = l->port;
	release_ok(l);
	/* Only the released port binds; the others are busy elsewhere. */
	for (p = LO; p <= HI; p++)
		busy[p] = p != port;
	clock_advance(DELAY);
	l = grant("{\"name\":\"b\"}");
	ck_assert_uint_eq(l->port, port);
}
END_TEST

/*
 * A released port that binds, when every other free pool port is busy
 * elsewhere: nothing else is free, so it is handed out rather than
 * 503 pool_exhausted.
 */
START_TEST(test_reuse_only_bindable)
{
	struct lease	*l;
	uint16_t	 port;
	unsigned int	 p;

	l = grant("{\"name\":\"a\"}");
	port = l->port;
	release_ok(l);
	for (p = LO; p <= HI; p++)
		busy[p] = p != port;
	clock_advance(1000);
	l = grant("{\"name\":\"b\"}");
	ck_assert_uint_eq(l->port, port);
}
END_TEST

/*
 * Explicit ports: granted in or out of the pool when they bind and no
 * lease holds them, else 409 port_unavailable.
 */
START_TEST(test_explicit_port)
{
	struct lease	*l;
	char		 body[64];
	int		 i;

	l = grant("{\"name\":\"a\",\"port\":50005}");
	ck_assert_uint_eq(l->port, 50005);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);
	refuse("{\"name\":\"b\",\"port\":50005}", NULL, BERR_PORT_UNAVAILABLE);

	/* Outside the pool. */
	l = grant("{\"name\":\"c\",\"port\":40000}");
	ck_assert_uint_eq(l->port, 40000);
	ck_assert_ptr_eq(registry_by_port(broker_registry(br), 40000), l);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);
	refuse("{\"name\":\"d\",\"port\":40000}", NULL, BERR_PORT_UNAVAILABLE);

	/* Used by another process: in the pool and out. */
	busy[40001] = 1;
	busy[50006] = 1;
	refuse("{\"name\":\"d\",\"port\":40001}", NULL, BERR_PORT_UNAVAILABLE);
	refuse("{\"name\":\"d\",\"port\":50006}", NULL, BERR_PORT_UNAVAILABLE);
	ck_assert_ptr_null(broker_lookup(br, "d"));

	/* An ended lease frees its port at once, for an explicit request. */
	release_ok(broker_lookup(br, "a"));
	l = grant("{\"name\":\"b\",\"port\":50005}");
	ck_assert_uint_eq(l->port, 50005);
	release_ok(broker_lookup(br, "c"));
	ck_assert_ptr_null(registry_by_port(broker_registry(br), 40000));
	l = grant("{\"name\":\"d\",\"port\":40000}");
	ck_assert_uint_eq(l->port, 40000);

	/* Pooled acquires never hand out a port explicitly taken. */
	busy[50006] = 0;
	for (i = 0; pool_free_count(pl) > 0; i++) {
		snprintf(body, sizeof body, "{\"name\":\"x%d\"}", i);
		l = grant(body);
		ck_assert_uint_ne(l->port, 50005);
	}
	ck_assert_int_eq(i, NPORTS - 1);
}
END_TEST

/*
 * Adoption, over fake socket tables: a busy explicit port is granted to
 * the pid whose child holds it (in the pool and out); anyone else, or no
 * pid, gets 409; proto both needs both held; a leased port stays taken.
 */
#define FAKE_HOLDER	7000001		/* a child of getppid(), faked */

static int
fake_holders(int protocol, uint16_t port, pid_t **pids, size_t *n)
{
	*n = 0;
	if ((*pids = calloc(1, sizeof **pids)) == NULL)
		return (-1);
	if (protocol == IPPROTO_TCP && busy[port]) {
		(*pids)[0] = FAKE_HOLDER;
		*n = 1;
	}
	return (0);
}

static int
fake_ppid(pid_t pid, pid_t *ppid)
{
	if (pid != FAKE_HOLDER)
		return (-1);
	*ppid = getppid();
	return (0);
}

static void
fake_comm(pid_t pid, char *buf, size_t len)
{
	snprintf(buf, len, "%s", pid == FAKE_HOLDER ? "postgres" : "?");
}

static void
adopt_refused(const char *body, const char *want)
{
	struct lease	*l;
	struct berr	 e;
	int		 created;

	ck_assert_int_eq(acquire(body, NULL, &l, &created, &e), -1);
	ck_assert_int_eq(e.code, BERR_PORT_UNAVAILABLE);
	ck_assert_msg(strstr(e.message, want) != NULL, "%s: \"%s\" lacks "
	    "\"%s\"", body, e.message, want);
}

START_TEST(test_adopt)
{
	static const struct adopt_sys sys = {
		fake_holders, fake_ppid, fake_comm
	};
	struct lease	*l;
	char		 body[128], want[96];
	long		 owner = (long)getppid();
	pid_t		 child;
	int		 wfd;

	adopt_set_sys(&sys);
	busy[40001] = busy[50006] = 1;
	adopt_refused("{\"name\":\"pg\",\"port\":40001}", "--pid");
	snprintf(body, sizeof body, "{\"name\":\"pg\",\"port\":40001,"
	    "\"pid\":%ld,\"proto\":\"both\"}", owner);
	adopt_refused(body, "40001/udp");
	snprintf(body, sizeof body, "{\"name\":\"pg\",\"port\":40001,"
	    "\"pid\":%ld}", owner);
	l = grant(body);
	ck_assert_uint_eq(l->port, 40001);
	ck_assert_int_eq(l->owner.pid, owner);
	snprintf(body, sizeof body, "{\"name\":\"pg2\",\"port\":40001,"
	    "\"pid\":%ld}", owner);
	adopt_refused(body, "leased to 'pg'");

	/* In the pool: taken out of it, as any explicit port. */
	snprintf(body, sizeof body, "{\"name\":\"in\",\"port\":50006,"
	    "\"pid\":%ld}", owner);
	ck_assert_uint_eq(grant(body)->port, 50006);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);

	/* Another process of ours, no ancestor of the holder. */
	busy[40002] = 1;
	child = spawn_child(&wfd);
	snprintf(body, sizeof body, "{\"name\":\"x\",\"port\":40002,"
	    "\"pid\":%ld}", (long)child);
	snprintf(want, sizeof want, "in use by pid %d (postgres), not by pid "
	    "%ld or its children", FAKE_HOLDER, (long)child);
	adopt_refused(body, want);
	end_child(child, wfd);
	ck_assert_ptr_null(broker_lookup(br, "x"));
	adopt_set_sys(NULL);
}
END_TEST

/* Every pool port leased, or busy elsewhere: 503 pool_exhausted. */
START_TEST(test_pool_exhausted)
{
	static uint8_t	 seen[65536];
	struct lease	*l;
	char		 body[64];
	int		 i;

	for (i = 0; i < NPORTS; i++) {
		snprintf(body, sizeof body, "{\"name\":\"s%d\"}", i);
		l = grant(body);
		ck_assert_msg(!seen[l->port], "port %u granted twice", l->port);
		seen[l->port] = 1;
	}
	ck_assert_uint_eq(pool_free_count(pl), 0);
	refuse("{\"name\":\"more\"}", NULL, BERR_POOL_EXHAUSTED);
	ck_assert_uint_eq(broker_live_count(br), NPORTS);
	/* An explicit port outside the pool is still fine. */
	grant("{\"name\":\"more\",\"port\":40000}");
}
END_TEST

START_TEST(test_pool_all_busy)
{
	unsigned int	p;

	for (p = LO; p <= HI; p++)
		busy[p] = 1;
	refuse("{\"name\":\"a\"}", NULL, BERR_POOL_EXHAUSTED);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS);
	ck_assert_uint_eq(broker_live_count(br), 0);
	busy[LO + 3] = 0;
	ck_assert_uint_eq(grant("{\"name\":\"a\"}")->port, LO + 3);
}
END_TEST

/*
 * TTL expiry: never shown past its TTL, even before it is recorded;
 * broker_expire_due ends it and frees the port.
 */
START_TEST(test_ttl_expiry)
{
	struct lease	*l;
	uint16_t	 port;

	l = grant("{\"name\":\"a\",\"ttl\":10}");
	port = l->port;
	grant("{\"name\":\"forever\"}");
	ck_assert_uint_eq(broker_next_expiry(br), T0 + 10000);
	clock_advance(9000);
	ck_assert_ptr_eq(broker_lookup(br, "a"), l);
	ck_assert_int_eq(broker_expire_due(br), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	clock_advance(2000);
	ck_assert_ptr_null(broker_lookup(br, "a"));
	ck_assert_uint_eq(broker_live_count(br), 2);	/* not recorded yet */
	ck_assert_int_eq(broker_expire_due(br), 1);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(broker_live_count(br), 1);
	ck_assert_ptr_null(registry_find(broker_registry(br), "a"));
	ck_assert_ptr_null(registry_by_port(broker_registry(br), port));
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);
	ck_assert_uint_eq(broker_stats(br)->expired, 1);
	ck_assert_uint_eq(broker_next_expiry(br), 0);
	ck_assert_ptr_nonnull(broker_lookup(br, "forever"));
	/* The name comes back to its port... */
	l = grant("{\"name\":\"a\"}");
	ck_assert_uint_eq(l->port, port);
	release_ok(l);
	/* ...and another name may ask for the port by number. */
	l = grant("{\"name\":\"b\",\"port\":50000}");
	ck_assert_uint_eq(port, 50000);
	ck_assert_uint_eq(l->port, port);
}
END_TEST

/* Due exactly at expires_at; several due at once all end. */
START_TEST(test_ttl_expiry_many)
{
	grant("{\"name\":\"a\",\"ttl\":3}");
	grant("{\"name\":\"b\",\"ttl\":1}");
	grant("{\"name\":\"c\",\"ttl\":2}");
	grant("{\"name\":\"d\",\"ttl\":100}");
	ck_assert_uint_eq(broker_next_expiry(br), T0 + 1000);
	clock_advance(3000);
	ck_assert_ptr_null(broker_lookup(br, "a"));
	ck_assert_int_eq(broker_expire_due(br), 3);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(broker_live_count(br), 1);
	ck_assert_uint_eq(broker_next_expiry(br), T0 + 100000);
}
END_TEST

/* A lease past its TTL, not yet recorded, does not block its name. */
START_TEST(test_ttl_takeover)
{
	struct lease	*l;
	char		 token[BERTH_TOKEN_HEX + 1];
	struct berr	 e;
	int		 created;

	l = grant("{\"name\":\"a\",\"ttl\":10}");
	snprintf(token, sizeof token, "%s", l->token);
	clock_advance(10000);
	l = grant("{\"name\":\"a\"}");
	ck_assert_str_ne(l->token, token);
	ck_assert_uint_eq(l->expires_at, 0);
	ck_assert_uint_eq(broker_live_count(br), 1);
	/* The old token is worth nothing now. */
	ck_assert_int_eq(release("a", token, &e), -1);
	assert_error(&e, BERR_BAD_TOKEN);
	ck_assert_int_eq(acquire("{\"name\":\"a\"}", token, &l, &created, &e),
	    -1);
	assert_error(&e, BERR_NAME_TAKEN);
}
END_TEST

/* A port held by a lease past its TTL may be named by another. */
START_TEST(test_ttl_port_takeover)
{
	struct lease	*l;

	l = grant("{\"name\":\"a\",\"ttl\":10,\"port\":50003}");
	ck_assert_uint_eq(l->port, 50003);
	clock_advance(10001);
	l = grant("{\"name\":\"b\",\"port\":50003}");
	ck_assert_uint_eq(l->port, 50003);
	ck_assert_ptr_null(registry_find(broker_registry(br), "a"));
	ck_assert_uint_eq(broker_live_count(br), 1);
}
END_TEST

/*
 * Renew: with the token, from now, optionally with a new ttl.
 */
START_TEST(test_renew)
{
	struct lease	*l, *m;
	struct berr	 e;
	char		 token[BERTH_TOKEN_HEX + 1];
	uint32_t	 ttl;

	l = grant("{\"name\":\"a\",\"ttl\":10}");
	snprintf(token, sizeof token, "%s", l->token);
	clock_advance(9000);
	ck_assert_int_eq(broker_renew(br, "a", token, NULL, &m, &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_ptr_eq(m, l);
	ck_assert_uint_eq(m->ttl, 10);
	ck_assert_uint_eq(m->renewed_at, T0 + 9000);
	ck_assert_uint_eq(m->expires_at, T0 + 19000);
	ck_assert_uint_eq(broker_next_expiry(br), T0 + 19000);
	clock_advance(9000);			/* 18 s after the grant */
	ck_assert_ptr_eq(broker_lookup(br, "a"), l);
	ck_assert_int_eq(broker_expire_due(br), 0);

	ttl = 30;
	ck_assert_int_eq(broker_renew(br, "a", token, &ttl, &m, &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(m->ttl, 30);
	ck_assert_uint_eq(m->expires_at, T0 + 18000 + 30000);

	/* ttl 0: no expiry any more. */
	ttl = 0;
	ck_assert_int_eq(broker_renew(br, "a", token, &ttl, &m, &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(m->expires_at, 0);
	ck_assert_uint_eq(broker_next_expiry(br), 0);
	clock_advance(1000000);
	ck_assert_ptr_eq(broker_lookup(br, "a"), l);
}
END_TEST

START_TEST(test_renew_refused)
{
	struct lease	*l, *m;
	struct berr	 e;
	char		 token[BERTH_TOKEN_HEX + 1];

	l = grant("{\"name\":\"a\",\"ttl\":10}");
	snprintf(token, sizeof token, "%s", l->token);
	grant("{\"name\":\"b\"}");
	ck_assert_int_eq(broker_renew(br, "a", NULL, NULL, &m, &e), -1);
	assert_error(&e, BERR_BAD_TOKEN);
	ck_assert_int_eq(broker_renew(br, "a", "nope", NULL, &m, &e), -1);
	assert_error(&e, BERR_BAD_TOKEN);
	ck_assert_int_eq(broker_renew(br, "b", token, NULL, &m, &e), -1);
	assert_error(&e, BERR_BAD_TOKEN);
	ck_assert_int_eq(broker_renew(br, "zz", token, NULL, &m, &e), -1);
	assert_error(&e, BERR_NOT_FOUND);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(l->expires_at, T0 + 10000);
	/* Too late: a lease past its TTL cannot be renewed. */
	clock_advance(10000);
	ck_assert_int_eq(broker_renew(br, "a", token, NULL, &m, &e), -1);
	assert_error(&e, BERR_NOT_FOUND);
	ck_assert_int_eq(broker_commit(br), 0);
}
END_TEST

/*
 * Release: only with the lease's own token.
 */
START_TEST(test_release)
{
	struct lease	*a, *b;
	struct berr	 e;
	char		 token[BERTH_TOKEN_HEX + 1];
	uint16_t	 port;

	a = grant("{\"name\":\"a\"}");
	b = grant("{\"name\":\"b\"}");
	port = a->port;
	snprintf(token, sizeof token, "%s", a->token);

	ck_assert_int_eq(release("a", NULL, &e), -1);
	assert_error(&e, BERR_BAD_TOKEN);
	ck_assert_int_eq(release("a", "", &e), -1);
	assert_error(&e, BERR_BAD_TOKEN);
	ck_assert_int_eq(release("a", "0123456789abcdef0123456789abcdef", &e),
	    -1);
	assert_error(&e, BERR_BAD_TOKEN);
	ck_assert_int_eq(release("a", b->token, &e), -1);
	assert_error(&e, BERR_BAD_TOKEN);
	token[BERTH_TOKEN_HEX - 1] = '\0';		/* a prefix */
	ck_assert_int_eq(release("a", token, &e), -1);
	assert_error(&e, BERR_BAD_TOKEN);
	ck_assert_ptr_eq(broker_lookup(br, "a"), a);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 2);

	ck_assert_int_eq(release("zz", a->token, &e), -1);
	assert_error(&e, BERR_NOT_FOUND);

	snprintf(token, sizeof token, "%s", a->token);
	ck_assert_int_eq(release("a", token, &e), 0);
	ck_assert_ptr_null(broker_lookup(br, "a"));
	ck_assert_ptr_null(registry_by_port(broker_registry(br), port));
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);
	ck_assert_uint_eq(broker_live_count(br), 1);
	ck_assert_uint_eq(broker_stats(br)->released, 1);
	ck_assert_int_eq(release("a", token, &e), -1);
	assert_error(&e, BERR_NOT_FOUND);
}
END_TEST

/* Revoke: no token needed (the admin check is the caller's). */
START_TEST(test_revoke)
{
	struct lease	*a;
	struct berr	 e;
	uint16_t	 port;

	a = grant("{\"name\":\"a\",\"ttl\":100}");
	port = a->port;
	ck_assert_int_eq(broker_revoke(br, "a", &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_ptr_null(broker_lookup(br, "a"));
	ck_assert_ptr_null(registry_by_port(broker_registry(br), port));
	ck_assert_uint_eq(pool_free_count(pl), NPORTS);
	ck_assert_uint_eq(broker_next_expiry(br), 0);
	ck_assert_uint_eq(broker_stats(br)->revoked, 1);
	ck_assert_int_eq(broker_revoke(br, "a", &e), -1);
	assert_error(&e, BERR_NOT_FOUND);
	ck_assert_int_eq(broker_commit(br), 0);
	/* The name is free again and keeps its port. */
	ck_assert_uint_eq(grant("{\"name\":\"a\"}")->port, port);
}
END_TEST

/* A commit closes the turn's transaction; an idle commit is a no-op. */
START_TEST(test_commit)
{
	struct lease_req	 r;
	struct lease		*l;
	struct berr		 e;
	uint64_t		 commits, index;
	int			 created;

	ck_assert_int_eq(broker_commit(br), 0);
	commits = broker_stats(br)->commits;
	index = broker_index(br);
	ck_assert_int_eq(leasereq_parse("{\"name\":\"a\"}", 12, &r, &e), 0);
	ck_assert_int_eq(broker_acquire(br, &r, NULL, &l, &created, &e), 0);
	ck_assert_int_eq(broker_in_txn(br), 1);
	snprintf(r.name, sizeof r.name, "b");
	ck_assert_int_eq(broker_acquire(br, &r, NULL, &l, &created, &e), 0);
	ck_assert_uint_eq(broker_index(br), index + 2);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_int_eq(broker_in_txn(br), 0);
	ck_assert_uint_eq(broker_stats(br)->commits, commits + 1);
	ck_assert_uint_eq(broker_stats(br)->commit_failures, 0);
	ck_assert_int_eq(broker_db_ok(br), 1);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(broker_stats(br)->commits, commits + 1);
	leasereq_clear(&r);
}
END_TEST

/* Owners: never berthd's own pid; another user's only for an admin. */
START_TEST(test_owner_who_asks)
{
	struct lease_req	r;
	struct lease		*l;
	struct berr		 e;
	char			 body[96];
	int			 created;

	snprintf(body, sizeof body, "{\"name\":\"self\",\"pid\":%ld}",
	    (long)getpid());
	ck_assert_int_eq(leasereq_parse(body, strlen(body), &r, &e), 0);
	r.uid = (long)geteuid();
	ck_assert_int_eq(broker_acquire(br, &r, NULL, &l, &created, &e), -1);
	ck_assert_int_eq(e.code, BERR_INVALID_FIELD);
	ck_assert_ptr_nonnull(strstr(e.message, "berthd's own"));
	snprintf(body, sizeof body, "{\"name\":\"other\",\"pid\":%ld}",
	    (long)getppid());
	ck_assert_int_eq(leasereq_parse(body, strlen(body), &r, &e), 0);
	r.uid = (long)geteuid() + 4242;		/* someone else asks */
	ck_assert_int_eq(broker_acquire(br, &r, NULL, &l, &created, &e), -1);
	ck_assert_int_eq(e.code, BERR_INVALID_FIELD);
	ck_assert_ptr_nonnull(strstr(e.message, "not a process of your"));
	r.uid = -1;				/* nobody knows who */
	ck_assert_int_eq(broker_acquire(br, &r, NULL, &l, &created, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.message, "cannot tell"));
	r.admin = 1;				/* an admin may */
	ck_assert_int_eq(broker_acquire(br, &r, NULL, &l, &created, &e), 0);
	ck_assert_int_eq(l->owner.pid, getppid());
	ck_assert_int_eq(broker_commit(br), 0);
}
END_TEST

/*
 * Owners: the pid must be visible; a dead owner's name can be taken.
 */
START_TEST(test_pid_not_visible)
{
	char	body[64];
	pid_t	pid;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	ck_assert_int_eq(kill(pid, 0), -1);
	snprintf(body, sizeof body, "{\"name\":\"a\",\"pid\":%ld}", (long)pid);
	refuse(body, NULL, BERR_PID_NOT_VISIBLE);
	ck_assert_uint_eq(broker_live_count(br), 0);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS);
}
END_TEST

START_TEST(test_owner_takeover)
{
	struct lease	*l;
	char		 body[64];
	pid_t		 pid;
	int		 wfd;
	uint16_t	 port;

	pid = spawn_child(&wfd);
	snprintf(body, sizeof body, "{\"name\":\"a\",\"pid\":%ld}", (long)pid);
	l = grant(body);
	port = l->port;
	ck_assert_int_eq(l->owner.pid, pid);
	ck_assert_uint_gt(l->owner.start, 0);
	ck_assert_str_eq(l->owner.boot_id, procid_boot_id());
	ck_assert(owner_alive(&l->owner));
	refuse("{\"name\":\"a\"}", NULL, BERR_NAME_TAKEN);

	end_child(pid, wfd);
	ck_assert(!owner_alive(&l->owner));
	l = grant("{\"name\":\"a\"}");
	ck_assert_int_eq(l->owner.pid, 0);
	ck_assert_uint_eq(l->port, port);
	ck_assert_uint_eq(broker_live_count(br), 1);
}
END_TEST

/* owner.c: a live child is live; another start time or boot id is not it. */
START_TEST(test_owner_live_and_gone)
{
	struct owner	o, other;
	pid_t		pid;
	int		wfd;

	pid = spawn_owner(&o, &wfd);
	ck_assert_int_eq(o.pid, pid);
	ck_assert_uint_gt(o.start, 0);
	ck_assert_str_eq(o.boot_id, procid_boot_id());
	ck_assert_int_eq(owner_check(&o), OWNER_LIVE);
	ck_assert(owner_alive(&o));

	other = o;
	other.start++;
	ck_assert_int_eq(owner_check(&other), OWNER_GONE);
	other = o;
	other.boot_id[0] = other.boot_id[0] == '0' ? '1' : '0';
	ck_assert_int_eq(owner_check(&other), OWNER_GONE);

	end_child(pid, wfd);
	ck_assert_int_eq(owner_check(&o), OWNER_GONE);
	ck_assert(!owner_alive(&o));
	ck_assert_int_eq(owner_read(pid, &o), -1);
	ck_assert_int_eq(errno, ESRCH);
}
END_TEST

/* owner.c: a zombie has exited: gone, and no owner for a new lease. */
START_TEST(test_owner_zombie)
{
	struct owner	o, z;
	siginfo_t	info;
	pid_t		pid;
	int		wfd;

	pid = spawn_owner(&o, &wfd);
	close(wfd);
	/* Wait for it to exit, and leave it unreaped. */
	memset(&info, 0, sizeof info);
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT),
	    0);
	ck_assert_int_eq(owner_check(&o), OWNER_GONE);
	ck_assert_int_eq(owner_read(pid, &z), -1);
	ck_assert_int_eq(errno, ESRCH);
	ck_assert_int_eq(owner_pidfd(&o), -1);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

/*
 * owner.c: no descriptor left to read /proc with. A live owner is not
 * gone (unknown, with the error) and gets no pidfd; a reaped one is still
 * known gone (kill(pid, 0) needs no descriptor).
 */
START_TEST(test_owner_cannot_look)
{
	struct rlimit	saved;
	struct owner	o, dead, fresh;
	pid_t		pid, gone;
	int		wfd, wfd2;

	pid = spawn_owner(&o, &wfd);
	gone = spawn_owner(&dead, &wfd2);
	end_child(gone, wfd2);

	exhaust_descriptors(&saved);
	ck_assert(owner_alive(&o));
	ck_assert_int_eq(owner_check(&o), OWNER_UNKNOWN);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(owner_pidfd(&o), -1);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(owner_read(pid, &fresh), -1);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(owner_check(&dead), OWNER_GONE);
	ck_assert_int_eq(owner_read(gone, &fresh), -1);
	ck_assert_int_eq(errno, ESRCH);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);

	ck_assert_int_eq(owner_check(&o), OWNER_LIVE);
	end_child(pid, wfd);
}
END_TEST

/* owner.c: a pidfd only for the very process recorded. */
START_TEST(test_owner_pidfd)
{
	struct owner	o;
	pid_t		pid;
	int		wfd, fd;

	pid = spawn_owner(&o, &wfd);
	fd = owner_pidfd(&o);
	if (fd == -1 && errno == ENOSYS) {
		end_child(pid, wfd);
		return;		/* no pidfd_open: the reaper polls */
	}
	ck_assert_int_ge(fd, 0);
	o.start++;
	ck_assert_int_eq(owner_pidfd(&o), -1);
	ck_assert_int_eq(errno, ESRCH);
	close(fd);
	end_child(pid, wfd);
}
END_TEST

/*
 * berthd cannot look at the holder's owner (no descriptor left): the
 * holder is not gone, so the name stays taken; once berthd can look and
 * the owner has exited, it is taken over.
 */
START_TEST(test_owner_unreadable_keeps_name)
{
	struct rlimit	 saved;
	struct lease	*l;
	pid_t		 pid;
	int		 wfd;

	pid = spawn_child(&wfd);
	l = grant_owned("a", pid);
	exhaust_descriptors(&saved);
	refuse("{\"name\":\"a\"}", NULL, BERR_NAME_TAKEN);
	ck_assert(owner_alive(&l->owner));
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
	ck_assert_ptr_eq(broker_lookup(br, "a"), l);

	end_child(pid, wfd);
	l = grant("{\"name\":\"a\"}");
	ck_assert_int_eq(l->owner.pid, 0);
}
END_TEST

/* broker_check_owner, one owner's poll, ends a lease whose owner is gone. */
START_TEST(test_check_owner)
{
	struct lease	*l, *me;
	pid_t		 pid;
	int		 wfd;

	pid = spawn_child(&wfd);
	l = grant_owned("a", pid);
	/* A process that outlives the test (this one is the "berthd"). */
	me = grant_owned("me", getppid());
	ck_assert_int_eq(broker_check_owner(br, l), OWNER_LIVE);
	ck_assert_int_eq(broker_check_owner(br, me), OWNER_LIVE);
	end_child(pid, wfd);
	ck_assert_int_eq(broker_check_owner(br, me), OWNER_LIVE);
	ck_assert_int_eq(broker_check_owner(br, l), OWNER_GONE);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_ptr_null(broker_lookup(br, "a"));
	ck_assert_ptr_nonnull(broker_lookup(br, "me"));
	ck_assert_uint_eq(broker_stats(br)->owner_dead, 1);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 1);
}
END_TEST

/*
 * The portserver's anonymous leases: a pool port free for TCP and UDP,
 * named after it, owned by a live pid; pid <= 1 or dead pids refused.
 */
START_TEST(test_acquire_anon)
{
	struct lease	*l, *m, *second;
	struct berr	 e;
	char		 name[32];
	pid_t		 pid, dead;
	int		 wfd;

	pid = spawn_child(&wfd);
	busy[LO] = 1;
	ck_assert_int_eq(broker_acquire_anon(br, pid, &l, &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_ne(l->port, LO);
	snprintf(name, sizeof name, "portpicker-%u", l->port);
	ck_assert_str_eq(l->name, name);
	ck_assert_int_eq(l->proto, PROTO_BOTH);
	ck_assert_str_eq(l->host, "127.0.0.1");
	ck_assert_int_eq(l->owner.pid, pid);
	ck_assert_uint_eq(l->expires_at, 0);
	ck_assert_ptr_eq(broker_lookup(br, name), l);
	ck_assert_int_eq(broker_acquire_anon(br, pid, &m, &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_ne(m->port, l->port);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 2);
	second = m;

	memset(&e, 0, sizeof e);
	ck_assert_int_eq(broker_acquire_anon(br, 1, &m, &e), -1);
	ck_assert_int_eq(broker_acquire_anon(br, 0, &m, &e), -1);
	ck_assert_int_eq(broker_acquire_anon(br, -7, &m, &e), -1);
	dead = fork();
	ck_assert_int_ne(dead, -1);
	if (dead == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
	ck_assert_int_eq(broker_acquire_anon(br, dead, &m, &e), -1);
	ck_assert_int_eq(e.code, BERR_PID_NOT_VISIBLE);
	ck_assert_uint_eq(broker_live_count(br), 2);

	/* The owner dies: both leases end, the ports go back. */
	end_child(pid, wfd);
	ck_assert_int_eq(broker_check_owner(br, l), OWNER_GONE);
	ck_assert_int_eq(broker_check_owner(br, second), OWNER_GONE);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(broker_live_count(br), 0);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS);
}
END_TEST

/* A name portpicker-P already held on another port: P is set aside. */
START_TEST(test_acquire_anon_name_clash)
{
	struct lease	*l, *h;
	struct berr	 e;
	char		 body[96];

	snprintf(body, sizeof body, "{\"name\":\"portpicker-%u\",\"port\":%u}",
	    LO, LO + 5);
	h = grant(body);
	ck_assert_uint_eq(h->port, LO + 5);
	ck_assert_int_eq(broker_acquire_anon(br, getpid(), &l, &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_ne(l->port, LO);
	ck_assert_uint_ne(l->port, LO + 5);
	ck_assert_uint_eq(broker_live_count(br), 2);
	/* LO went back: only the two leased ports are out of the pool. */
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 2);
}
END_TEST

/* An exhausted pool (or every port busy) refuses with 503. */
START_TEST(test_acquire_anon_exhausted)
{
	struct lease	*l;
	struct berr	 e;
	unsigned int	 p;

	for (p = LO; p <= HI; p++)
		busy[p] = 1;
	memset(&e, 0, sizeof e);
	ck_assert_int_eq(broker_acquire_anon(br, getpid(), &l, &e), -1);
	ck_assert_int_eq(e.code, BERR_POOL_EXHAUSTED);
	ck_assert_uint_eq(broker_live_count(br), 0);
}
END_TEST

START_TEST(test_token_equal)
{
	const char	*t = "0123456789abcdef0123456789abcdef";

	ck_assert(broker_token_equal("0123456789abcdef0123456789abcdef", t));
	ck_assert(!broker_token_equal("0123456789abcdef0123456789abcdee", t));
	ck_assert(!broker_token_equal("1123456789abcdef0123456789abcdef", t));
	ck_assert(!broker_token_equal("0123456789abcdef0123456789abcde", t));
	ck_assert(!broker_token_equal("0123456789abcdef0123456789abcdef0", t));
	ck_assert(!broker_token_equal("0123456789ABCDEF0123456789ABCDEF", t));
	ck_assert(!broker_token_equal("", t));
	ck_assert(!broker_token_equal(NULL, t));
}
END_TEST

/*
 * Durability: what a commit wrote is what a new broker on the same
 * database loads.
 */
START_TEST(test_durable_reload)
{
	struct lease	*a, *b, *c;
	char		 ta[BERTH_TOKEN_HEX + 1], tb[BERTH_TOKEN_HEX + 1];
	const char	*path = db_path("reload");
	uint16_t	 pa, pb, pc;
	uint64_t	 index;
	struct berr	 e;
	char		 body[64];
	int		 i;

	open_broker(path);
	a = grant("{\"name\":\"a\"}");
	b = grant("{\"name\":\"b\",\"ttl\":100,\"proto\":\"udp\","
	    "\"host\":\"::1\",\"meta\":{\"k\":\"v\"}}");
	c = grant("{\"name\":\"c\"}");
	pa = a->port;
	pb = b->port;
	pc = c->port;
	snprintf(ta, sizeof ta, "%s", a->token);
	snprintf(tb, sizeof tb, "%s", b->token);
	release_ok(c);
	index = broker_index(br);

	clock_advance(1000);
	reopen_broker(path);
	ck_assert_uint_ge(broker_index(br), index);
	ck_assert_uint_eq(broker_live_count(br), 2);
	a = broker_lookup(br, "a");
	b = broker_lookup(br, "b");
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(broker_lookup(br, "c"));
	ck_assert_uint_eq(a->port, pa);
	ck_assert_str_eq(a->token, ta);
	ck_assert_uint_eq(a->created_at, T0);
	ck_assert_uint_eq(a->expires_at, 0);
	ck_assert_uint_eq(b->port, pb);
	ck_assert_str_eq(b->token, tb);
	ck_assert_uint_eq(b->ttl, 100);
	ck_assert_uint_eq(b->expires_at, T0 + 100000);
	ck_assert_int_eq(b->proto, PROTO_UDP);
	ck_assert_str_eq(b->host, "::1");
	ck_assert_str_eq(b->meta, "{\"k\":\"v\"}");
	ck_assert_uint_eq(broker_next_expiry(br), T0 + 100000);
	ck_assert_ptr_eq(registry_by_port(broker_registry(br), pa), a);
	ck_assert_ptr_eq(registry_by_port(broker_registry(br), pb), b);
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 2);

	/* No port is held twice; c's port still cools for other names. */
	for (i = 0; i < NPORTS - 3; i++) {
		snprintf(body, sizeof body, "{\"name\":\"n%d\"}", i);
		c = grant(body);
		ck_assert_uint_ne(c->port, pa);
		ck_assert_uint_ne(c->port, pb);
		ck_assert_msg(c->port != pc, "port %u freed by 'c' before the "
		    "restart handed to '%s'", pc, c->name);
	}
	/* c comes back to its port. */
	ck_assert_uint_eq(grant("{\"name\":\"c\"}")->port, pc);

	/* The tokens still work. */
	refuse("{\"name\":\"a\"}", NULL, BERR_NAME_TAKEN);
	ck_assert_int_eq(release("b", tb, &e), 0);
	ck_assert_int_eq(release("a", ta, &e), 0);
	reopen_broker(path);
	ck_assert_ptr_null(broker_lookup(br, "a"));
	ck_assert_ptr_null(broker_lookup(br, "b"));
	ck_assert_uint_eq(broker_live_count(br), NPORTS - 2);
	close_broker();
}
END_TEST

/* A renew is durable too. */
START_TEST(test_durable_renew)
{
	struct lease	*l;
	struct berr	 e;
	const char	*path = db_path("renew");
	char		 token[BERTH_TOKEN_HEX + 1];
	uint32_t	 ttl = 50;

	open_broker(path);
	l = grant("{\"name\":\"a\",\"ttl\":10}");
	snprintf(token, sizeof token, "%s", l->token);
	clock_advance(5000);
	ck_assert_int_eq(broker_renew(br, "a", token, &ttl, &l, &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	clock_advance(10000);
	reopen_broker(path);
	l = broker_lookup(br, "a");
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(l->ttl, 50);
	ck_assert_uint_eq(l->expires_at, T0 + 5000 + 50000);
	ck_assert_uint_eq(l->renewed_at, T0 + 5000);
	close_broker();
}
END_TEST

/* Leases that ended while berthd was down end at load, for good. */
START_TEST(test_durable_owner_dead)
{
	struct lease	*l;
	const char	*path = db_path("owner");
	char		 body[64];
	uint16_t	 port;
	pid_t		 pid;
	int		 wfd;

	pid = spawn_child(&wfd);
	open_broker(path);
	snprintf(body, sizeof body, "{\"name\":\"dead\",\"pid\":%ld}",
	    (long)pid);
	l = grant(body);
	port = l->port;
	snprintf(body, sizeof body, "{\"name\":\"alive\",\"pid\":%ld}",
	    (long)getppid());
	grant(body);
	grant("{\"name\":\"short\",\"ttl\":10}");
	grant("{\"name\":\"long\",\"ttl\":1000}");

	end_child(pid, wfd);
	clock_advance(20000);
	reopen_broker(path);
	ck_assert_ptr_null(registry_find(broker_registry(br), "dead"));
	ck_assert_ptr_null(registry_find(broker_registry(br), "short"));
	ck_assert_ptr_nonnull(broker_lookup(br, "alive"));
	ck_assert_ptr_nonnull(broker_lookup(br, "long"));
	ck_assert_uint_eq(broker_live_count(br), 2);
	ck_assert_uint_eq(broker_stats(br)->owner_dead, 1);
	ck_assert_uint_eq(broker_stats(br)->expired, 1);
	ck_assert_ptr_null(registry_by_port(broker_registry(br), port));
	ck_assert_uint_eq(pool_free_count(pl), NPORTS - 2);
	ck_assert_int_eq(broker_in_txn(br), 0);

	/* The ends were committed: the next load finds nothing to end. */
	reopen_broker(path);
	ck_assert_uint_eq(broker_live_count(br), 2);
	ck_assert_uint_eq(broker_stats(br)->owner_dead, 0);
	ck_assert_uint_eq(broker_stats(br)->expired, 0);
	/* And the dead owner's name comes back to its port. */
	ck_assert_uint_eq(grant("{\"name\":\"dead\"}")->port, port);
	close_broker();
}
END_TEST

/* A second store on the same file is refused: the database is locked. */
START_TEST(test_store_locked)
{
	struct store	*s2;
	const char	*path = db_path("locked");
	char		 err[256] = "";

	open_broker(path);
	s2 = store_open(path, 1, err, sizeof err);
	ck_assert_msg(s2 == NULL, "second store_open on %s succeeded", path);
	ck_assert_msg(strstr(err, "locked") != NULL, "error: %s", err);
	close_broker();
	s2 = store_open(path, 1, err, sizeof err);
	ck_assert_msg(s2 != NULL, "reopen after close: %s", err);
	store_close(s2);
}
END_TEST

/*
 * Readiness (set by ready.c) is a change to watchers: the index and the
 * registry's version move, and the lease's cached JSON goes; setting the
 * same value again, or renewing, moves nothing.
 */
START_TEST(test_set_ready)
{
	const struct registry	*reg = broker_registry(br);
	struct lease		*l, *m;
	struct berr		 e;
	char			 token[BERTH_TOKEN_HEX + 1];
	const char		*text;
	size_t			 len;
	uint64_t		 index, version;

	l = grant("{\"name\":\"a\",\"ttl\":10}");
	snprintf(token, sizeof token, "%s", l->token);
	ck_assert_int_eq(l->ready, LEASE_NOT_READY);
	ck_assert_ptr_nonnull(lease_json_text(l, &len));
	index = broker_index(br);
	version = reg->version;

	ck_assert_int_eq(broker_set_ready(br, l, LEASE_READY), 0);
	/* The turn's transaction is open: its commit stores the index. */
	ck_assert_int_eq(broker_in_txn(br), 1);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(broker_index(br), index + 1);
	ck_assert_uint_gt(reg->version, version);
	ck_assert_ptr_nonnull(text = lease_json_text(l, &len));
	ck_assert_ptr_nonnull(strstr(text, "\"ready\":true"));

	version = reg->version;
	ck_assert_int_eq(broker_set_ready(br, l, LEASE_READY), 0);
	ck_assert_int_eq(broker_in_txn(br), 0);
	ck_assert_uint_eq(broker_index(br), index + 1);
	ck_assert_uint_eq(reg->version, version);

	ck_assert_int_eq(broker_renew(br, "a", token, NULL, &m, &e), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(broker_index(br), index + 1);
	ck_assert_int_eq(m->ready, LEASE_READY);

	ck_assert_int_eq(broker_set_ready(br, l, LEASE_READY_UNKNOWN), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	ck_assert_uint_eq(broker_index(br), index + 2);
	ck_assert_ptr_nonnull(strstr(lease_json_text(l, &len),
	    "\"ready\":null"));
}
END_TEST

/*
 * Readiness is not stored, but the index it moved is: after a restart
 * the index does not go back, and the lease is looked at again.
 */
START_TEST(test_durable_ready)
{
	const char	*path = db_path("ready");
	struct lease	*l;
	uint64_t	 index;

	open_broker(path);
	l = grant("{\"name\":\"a\"}");
	ck_assert_int_eq(broker_set_ready(br, l, LEASE_READY), 0);
	ck_assert_int_eq(broker_commit(br), 0);
	index = broker_index(br);

	reopen_broker(path);
	ck_assert_uint_ge(broker_index(br), index);
	ck_assert_ptr_nonnull(l = broker_lookup(br, "a"));
	ck_assert_int_eq(l->ready, LEASE_NOT_READY);
	close_broker();
}
END_TEST

static Suite *
broker_suite(void)
{
	Suite	*s = suite_create("broker");
	TCase	*tc;

	tc = tcase_create("acquire");
	tcase_add_checked_fixture(tc, mem_setup, mem_teardown);
	tcase_add_test(tc, test_acquire_new);
	tcase_add_test(tc, test_name_taken);
	tcase_add_test(tc, test_reacquire_token);
	tcase_add_test(tc, test_sticky);
	tcase_add_test(tc, test_sticky_busy);
	tcase_add_test(tc, test_reuse_delay);
	tcase_add_test(tc, test_reuse_delay_passes);
	tcase_add_test(tc, test_reuse_only_bindable);
	tcase_add_test(tc, test_explicit_port);
	tcase_add_test(tc, test_adopt);
	tcase_add_test(tc, test_pool_exhausted);
	tcase_add_test(tc, test_pool_all_busy);
	tcase_add_test(tc, test_commit);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_add_checked_fixture(tc, mem_setup, mem_teardown);
	tcase_add_test(tc, test_ttl_expiry);
	tcase_add_test(tc, test_ttl_expiry_many);
	tcase_add_test(tc, test_ttl_takeover);
	tcase_add_test(tc, test_ttl_port_takeover);
	tcase_add_test(tc, test_renew);
	tcase_add_test(tc, test_renew_refused);
	tcase_add_test(tc, test_set_ready);
	tcase_add_test(tc, test_release);
	tcase_add_test(tc, test_revoke);
	tcase_add_test(tc, test_token_equal);
	suite_add_tcase(s, tc);

	tc = tcase_create("owner.c");
	tcase_add_test(tc, test_owner_live_and_gone);
	tcase_add_test(tc, test_owner_zombie);
	tcase_add_test(tc, test_owner_cannot_look);
	tcase_add_test(tc, test_owner_pidfd);
	suite_add_tcase(s, tc);

	tc = tcase_create("owner");
	tcase_add_checked_fixture(tc, mem_setup, mem_teardown);
	tcase_add_test(tc, test_pid_not_visible);
	tcase_add_test(tc, test_owner_takeover);
	tcase_add_test(tc, test_owner_unreadable_keeps_name);
	tcase_add_test(tc, test_check_owner);
	tcase_add_test(tc, test_owner_who_asks);
	tcase_add_test(tc, test_acquire_anon);
	tcase_add_test(tc, test_acquire_anon_exhausted);
	tcase_add_test(tc, test_acquire_anon_name_clash);
	suite_add_tcase(s, tc);

	tc = tcase_create("durable");
	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_checked_fixture(tc, file_setup, NULL);
	tcase_add_test(tc, test_durable_reload);
	tcase_add_test(tc, test_durable_renew);
	tcase_add_test(tc, test_durable_ready);
	tcase_add_test(tc, test_durable_owner_dead);
	tcase_add_test(tc, test_store_locked);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	log_init(LOG_LVL_ERROR, NULL);
	return (unit_run(broker_suite()));
}
