/*
 * check_libberth.c: libberth end to end (libberth(3), berth.h) against a real
 * berthd: opening clients, acquire/lookup/list/renew/release/revoke, the
 * error mapping, blocking lookups and watches, keep-alive and transparent
 * reconnection after a daemon restart, unreachable and silent brokers,
 * status and health, and that only berth_* symbols are exported. The
 * cluster's calls are also tried against canned answers (the HTTP
 * contract of berthd --cluster), which need no etcd.
 *
 * Each test starts its own berthd (path in $BERTHD) on 127.0.0.1:0 with a
 * temporary database and learns the address from the "STATUS=serving on
 * ADDR" datagram berthd sends to NOTIFY_SOCKET, as systemd would. The
 * daemon is ended by pid when the test ends; an atexit handler and
 * PR_SET_PDEATHSIG cover tests that fail half-way.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"

#define START_TIMEOUT_MS	10000
#define BAD_TOKEN	"ffffffffffffffffffffffffffffffff"
#define NAME63		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
			"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

struct daemon {
	pid_t	pid;
	pid_t	owner;		/* the process that started it */
	int	port;		/* 0 for a unix socket */
	char	addr[160];	/* from STATUS=serving on ADDR */
	char	dir[64];	/* temporary directory */
	char	db[128];
	char	sock[128];	/* unix listen socket, when asked for */
};

static struct daemon	 D;	/* the daemon of the running test */

static void	 daemon_start(struct daemon *, const char *);
static void	 daemon_stop(struct daemon *);
static void	 daemon_cleanup(void);

/* Seconds on the monotonic clock. */
static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static void
msleep(int ms)
{
	struct timespec	ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Start berthd listening on listen (NULL: 127.0.0.1:0, "unix": a socket
 * in d->dir) and wait until it is ready. d->dir and d->db are kept when
 * already set, so a restart reuses the database.
 *
 * The e2e harness's helper does the starting and the waiting, for every
 * suite alike: `$PYTHON3 -m berthtest start --exec ...` (PYTHONPATH holds
 * tests/e2e) waits for berthd's READY datagram, prints "PID ADDR" on our
 * pipe, and becomes berthd itself (exec), so berthd is our child: ended
 * by pid and reaped by daemon_stop(), and sent SIGTERM by the kernel if
 * this process dies first (PR_SET_PDEATHSIG lasts across the exec).
 */
/*
 * Read what the start helper says on fd into buf (NUL-terminated): up to
 * its line's newline, or EOF. -1 if it says nothing in time.
 */
static int
daemon_read_line(int fd, char *buf, size_t size)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	double		 deadline = now() + 2 * START_TIMEOUT_MS / 1000.0;
	size_t		 len = 0;
	ssize_t		 n;

	buf[0] = '\0';
	while (memchr(buf, '\n', len) == NULL && len < size - 1) {
		if (now() > deadline)
			return (-1);
		if (poll(&pfd, 1, 100) != 1)
			continue;
		n = read(fd, buf + len, size - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return (0);
}

static void
daemon_start(struct daemon *d, const char *listen)
{
	const char		*python, *p;
	char			 lst[192], log[128], buf[256], *end;
	char			 timeout[16];
	size_t			 len;
	pid_t			 parent;
	long			 pid;
	int			 fds[2], fd, status;

	ck_assert_msg(getenv("BERTHD") != NULL, "BERTHD is not set");
	if ((python = getenv("PYTHON3")) == NULL || *python == '\0')
		python = "python3";
	if (d->dir[0] == '\0') {
		snprintf(d->dir, sizeof d->dir, "/tmp/check-libberth-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(d->dir));
		snprintf(d->db, sizeof d->db, "%s/berth.db", d->dir);
		snprintf(d->sock, sizeof d->sock, "%s/berth.sock", d->dir);
	}
	if (listen == NULL)
		listen = "127.0.0.1:0";
	else if (strcmp(listen, "unix") == 0) {
		snprintf(lst, sizeof lst, "unix:%s", d->sock);
		listen = lst;
	}
	snprintf(log, sizeof log, "%s/berthd.log", d->dir);
	snprintf(timeout, sizeof timeout, "%d", START_TIMEOUT_MS / 1000);

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	parent = getpid();
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		dup2(fds[1], 1);
		if ((fd = open("/dev/null", O_RDONLY)) != -1)
			dup2(fd, 0);
		execlp(python, python, "-m", "berthtest", "start", "--exec",
		    "--log", log, "--timeout", timeout, "--db", d->db,
		    "--listen", listen, "--log-level", "debug", (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", python, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	d->owner = getpid();

	/* One line, "PID ADDR", then EOF; EOF alone: it did not start. */
	if (daemon_read_line(fds[0], buf, sizeof buf) == -1) {
		daemon_stop(d);
		ck_abort_msg("no word from %s -m berthtest start in time; log "
		    "in %s", python, log);
	}
	close(fds[0]);
	len = strlen(buf);
	if (memchr(buf, '\n', len) == NULL) {
		/* Exited, or running but not ready in time: end it. */
		kill(d->pid, SIGKILL);
		status = -1;
		waitpid(d->pid, &status, 0);
		d->pid = 0;
		ck_abort_msg("berthd did not start (wait status %d; the "
		    "reason is on stderr above, berthd's log in %s; "
		    "%s -m berthtest needs PYTHONPATH to hold tests/e2e)",
		    status, log, python);
	}
	pid = strtol(buf, &end, 10);
	ck_assert_msg(pid == d->pid && *end == ' ', "helper said '%s', "
	    "not '%ld ADDR'", buf, (long)d->pid);
	p = end + 1;
	len = strcspn(p, "\n");
	ck_assert_uint_lt(len, sizeof d->addr);
	memcpy(d->addr, p, len);
	d->addr[len] = '\0';
	if (strncmp(d->addr, "unix:", 5) == 0)
		d->port = 0;
	else {
		p = strrchr(d->addr, ':');
		ck_assert_ptr_nonnull(p);
		d->port = atoi(p + 1);
		ck_assert_int_gt(d->port, 0);
	}
}

/* End the daemon with SIGTERM (SIGKILL if it lingers) and reap it. */
static void
daemon_stop(struct daemon *d)
{
	double	deadline;
	int	status;

	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	deadline = now() + 5;
	while (waitpid(d->pid, &status, WNOHANG) == 0) {
		if (now() > deadline) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			break;
		}
		msleep(10);
	}
	d->pid = 0;
}

/* Remove the daemon's temporary directory and everything in it. */
static void
daemon_rmdir(struct daemon *d)
{
	struct dirent	*de;
	DIR		*dir;
	char		 path[512];

	if (d->dir[0] == '\0')
		return;
	if ((dir = opendir(d->dir)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof path, "%s/%s", d->dir,
			    de->d_name);
			unlink(path);
		}
		closedir(dir);
	}
	rmdir(d->dir);
	d->dir[0] = '\0';
}

/*
 * Run at exit of a test process too (a failed ck_assert exits the
 * forked test), but only in the process that started the daemon: a
 * helper child forked by a test must not end it.
 */
static void
daemon_cleanup(void)
{
	if (D.owner != getpid())
		return;
	daemon_stop(&D);
	daemon_rmdir(&D);
}

static void
setup(void)
{
	memset(&D, 0, sizeof D);
	unsetenv("BERTH_ADDR");
	daemon_start(&D, NULL);
}

static void
teardown(void)
{
	daemon_cleanup();
}

/* A client of the test daemon. */
static berth_client *
client(void)
{
	berth_client	*c;
	berth_error	 err;

	memset(&err, 0, sizeof err);
	c = berth_open(D.addr, &err);
	ck_assert_msg(c != NULL, "berth_open %s: %s", D.addr, err.message);
	return (c);
}

/* Acquire name with defaults; returns the port, and the lease in *out. */
static int
acquire(berth_client *c, const char *name, berth_lease **out)
{
	berth_acquire_opts	*o;
	berth_lease		*l;
	berth_error		 err;
	int			 port;

	o = berth_acquire_opts_new(name);
	ck_assert_ptr_nonnull(o);
	ck_assert_msg(berth_acquire(c, o, &l, &err) == 0, "acquire %s: %s",
	    name, err.message);
	berth_acquire_opts_free(o);
	port = berth_lease_port(l);
	if (out != NULL)
		*out = l;
	else
		berth_lease_free(l);
	return (port);
}

/* Now on the wall clock, in ms since the epoch, as lease times are. */
static int64_t
wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* A loopback port nobody listens on: bind port 0, note it, close it. */
static int
unused_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	int			s, port;

	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(s);
	return (port);
}

/* Fork a child that acquires name after delay_ms on its own client. */
static pid_t
acquire_later(const char *name, int delay_ms)
{
	berth_acquire_opts	*o;
	berth_client		*c;
	berth_lease		*l;
	berth_error		 err;
	pid_t			 pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid != 0)
		return (pid);
	msleep(delay_ms);
	if ((c = berth_open(D.addr, &err)) == NULL)
		_exit(1);
	if ((o = berth_acquire_opts_new(name)) == NULL)
		_exit(3);
	if (berth_acquire(c, o, &l, &err) != 0)
		_exit(2);
	berth_acquire_opts_free(o);
	berth_lease_free(l);
	berth_close(c);
	_exit(0);
}

static void
reap_ok(pid_t pid)
{
	int	status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "helper child failed: status %d", status);
}

/* The inode numbers of this process's sockets, as a sorted-free set. */
static size_t
socket_inodes(unsigned long *out, size_t max)
{
	struct dirent	*de;
	DIR		*dir;
	char		 path[300], link[64];
	ssize_t		 n;
	size_t		 count = 0;

	dir = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir)) != NULL) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
		if ((n = readlink(path, link, sizeof link - 1)) <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, "socket:[", 8) == 0 && count < max)
			out[count++] = strtoul(link + 8, NULL, 10);
	}
	closedir(dir);
	return (count);
}

static int
has_inode(const unsigned long *set, size_t n, unsigned long ino)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (set[i] == ino)
			return (1);
	return (0);
}

START_TEST(test_open_env)
{
	berth_client	*c;
	berth_error	 err;

	ck_assert_int_eq(setenv("BERTH_ADDR", D.addr, 1), 0);
	c = berth_open(NULL, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(berth_addr(c), D.addr);
	ck_assert_int_eq(berth_last_index(c), 0);
	ck_assert_msg(berth_health(c, &err) == 0, "health: %s", err.message);
	berth_close(c);

	unsetenv("BERTH_ADDR");
	c = berth_open(NULL, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(berth_addr(c), BERTH_DEFAULT_ADDR);
	berth_close(c);

	/* an explicit address wins over BERTH_ADDR */
	ck_assert_int_eq(setenv("BERTH_ADDR", "127.0.0.1:1", 1), 0);
	c = client();
	ck_assert_str_eq(berth_addr(c), D.addr);
	ck_assert_int_eq(berth_health(c, &err), 0);
	berth_close(c);
	unsetenv("BERTH_ADDR");
}
END_TEST

START_TEST(test_open_bad)
{
	static const char	*bad[] = { "nonsense", "127.0.0.1:99999",
	    "127.0.0.1:abc", "127.0.0.1:", "[::1", "[::1]", "unix:",
	    "http://127.0.0.1:62893", "127.0.0.1:0", "::1:62893",
	    "[localhost]:62893", "127.0.0.1:+80", "127.0.0.1: 80" };
	berth_client		*c;
	berth_error		 err;
	size_t			 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&err, 0, sizeof err);
		c = berth_open(bad[i], &err);
		ck_assert_msg(c == NULL, "berth_open(\"%s\") accepted", bad[i]);
		ck_assert_int_eq(err.code, BERTH_EINVAL);
		ck_assert_int_eq(err.http_status, 0);
		/* the message quotes what was wrong */
		ck_assert_msg(strstr(err.message, bad[i]) != NULL,
		    "message \"%s\" does not quote %s", err.message, bad[i]);
	}
	/* and shows what would be right */
	c = berth_open("nonsense", &err);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err.message, "[::1]:PORT") != NULL &&
	    strstr(err.message, "unix:/PATH") != NULL, "message: %s",
	    err.message);
	/* the good forms */
	c = berth_open("[::1]:62893", &err);
	ck_assert_ptr_nonnull(c);
	berth_close(c);
	c = berth_open("localhost:62893", &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(berth_addr(c), "localhost:62893");
	berth_close(c);
	c = berth_open("unix:/tmp/x.sock", &err);
	ck_assert_ptr_nonnull(c);
	berth_close(c);
}
END_TEST

/* localhost means 127.0.0.1, and that is where the client connects. */
START_TEST(test_open_localhost)
{
	berth_client	*c;
	berth_error	 err;
	char		 addr[64];

	snprintf(addr, sizeof addr, "localhost:%d", D.port);
	c = berth_open(addr, &err);
	ck_assert_msg(c != NULL, "berth_open %s: %s", addr, err.message);
	ck_assert_msg(berth_health(c, &err) == 0, "health: %s", err.message);
	berth_close(c);
}
END_TEST

START_TEST(test_acquire_fields)
{
	berth_acquire_opts	*o;
	berth_client		*c;
	berth_lease		*l, *again;
	berth_error		 err;
	json_t			*m, *want, *whole;
	const char		*tok;
	int64_t			 t0 = wall_ms();
	size_t			 i;

	c = client();
	o = berth_acquire_opts_new("api");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(berth_acquire_opts_set_proto(o, "udp"), 0);
	berth_acquire_opts_set_ttl(o, 60);
	berth_acquire_opts_set_pid(o, (long)getpid());
	ck_assert_int_eq(berth_acquire_opts_add_meta(o, "team", "core"), 0);
	ck_assert_int_eq(berth_acquire_opts_add_meta(o, "q",
	    "a \"quoted\" \\ value"), 0);
	ck_assert_msg(berth_acquire(c, o, &l, &err) == 0, "acquire: %s",
	    err.message);
	ck_assert_str_eq(berth_lease_name(l), "api");
	ck_assert_int_gt(berth_lease_port(l), 0);
	ck_assert_int_le(berth_lease_port(l), 65535);
	ck_assert_str_eq(berth_lease_proto(l), "udp");
	ck_assert_str_eq(berth_lease_host(l), "127.0.0.1");
	ck_assert_int_eq(berth_lease_ttl(l), 60);
	ck_assert_int_eq(berth_lease_pid(l), getpid());

	/* times: ms since the epoch, now-ish, expiring a TTL after renewal */
	ck_assert_msg(berth_lease_created_at(l) >= t0 - 5000 &&
	    berth_lease_created_at(l) <= wall_ms() + 5000, "created_at %lld "
	    "is not now (%lld)", (long long)berth_lease_created_at(l),
	    (long long)t0);
	ck_assert_int_eq(berth_lease_renewed_at(l), berth_lease_created_at(l));
	ck_assert_int_eq(berth_lease_expires_at(l),
	    berth_lease_renewed_at(l) + 60000);

	tok = berth_lease_token(l);
	ck_assert_uint_ge(strlen(tok), 32);
	for (i = 0; tok[i] != '\0'; i++)
		ck_assert_msg(strchr("0123456789abcdefABCDEF", tok[i]),
		    "token not hex: %s", tok);
	m = json_loads(berth_lease_meta(l), 0, NULL);
	ck_assert_msg(m != NULL, "meta not JSON: %s", berth_lease_meta(l));
	want = json_pack("{s:s, s:s}", "team", "core", "q",
	    "a \"quoted\" \\ value");
	ck_assert_msg(json_equal(m, want), "meta %s", berth_lease_meta(l));
	json_decref(m);
	json_decref(want);
	ck_assert_str_eq(berth_lease_meta_get(l, "team"), "core");
	ck_assert_str_eq(berth_lease_meta_get(l, "q"), "a \"quoted\" \\ value");
	ck_assert_ptr_null(berth_lease_meta_get(l, "nope"));
	ck_assert_ptr_null(berth_lease_meta_get(l, NULL));
	whole = json_loads(berth_lease_json(l), 0, NULL);
	ck_assert_msg(whole != NULL, "json not JSON: %s", berth_lease_json(l));
	ck_assert_int_eq(json_integer_value(json_object_get(whole, "port")),
	    berth_lease_port(l));
	ck_assert_str_eq(json_string_value(json_object_get(whole, "token")),
	    tok);
	json_decref(whole);
	ck_assert_uint_gt(berth_last_index(c), 0);
	berth_acquire_opts_free(o);

	/* again with the token: the same lease */
	o = berth_acquire_opts_new("api");
	berth_acquire_opts_set_proto(o, "udp");
	ck_assert_int_eq(berth_acquire_opts_set_token(o, tok), 0);
	ck_assert_msg(berth_acquire(c, o, &again, &err) == 0,
	    "re-acquire: %s", err.message);
	ck_assert_int_eq(berth_lease_port(again), berth_lease_port(l));
	ck_assert_str_eq(berth_lease_name(again), "api");
	berth_lease_free(again);

	/* without it: taken; the return value is err.code, positive */
	ck_assert_int_eq(berth_acquire_opts_set_token(o, NULL), 0);
	memset(&err, 0, sizeof err);
	again = l;
	ck_assert_int_eq(berth_acquire(c, o, &again, &err), BERTH_ECONFLICT);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(err.code, BERTH_ECONFLICT);
	ck_assert_int_eq(err.http_status, 409);
	ck_assert_str_eq(err.api_code, "name_taken");
	ck_assert_msg(err.message[0] != '\0' && strchr(err.message, '\n') ==
	    NULL, "message: \"%s\"", err.message);
	berth_acquire_opts_free(o);
	berth_lease_free(l);
	berth_close(c);
}
END_TEST

START_TEST(test_acquire_defaults)
{
	berth_acquire_opts	*o;
	berth_client		*c;
	berth_lease		*l;
	berth_error		 err;
	int			 port;

	c = client();
	o = berth_acquire_opts_new("plain");
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), 0);
	ck_assert_str_eq(berth_lease_proto(l), "tcp");
	ck_assert_str_eq(berth_lease_host(l), "127.0.0.1");
	ck_assert_int_eq(berth_lease_ttl(l), 0);
	ck_assert_int_eq(berth_lease_expires_at(l), 0);
	ck_assert_int_gt(berth_lease_created_at(l), 0);
	ck_assert_int_eq(berth_lease_pid(l), 0);
	ck_assert_str_eq(berth_lease_meta(l), "{}");
	/* a lease of this broker's, not published: no node */
	ck_assert_int_eq(berth_lease_publish(l), 0);
	ck_assert_ptr_null(berth_lease_node(l));
	berth_lease_free(l);

	/* the same options, another name and an explicit port */
	ck_assert_int_eq(berth_acquire_opts_set_name(o, "fixed"), 0);
	port = unused_port();
	berth_acquire_opts_set_port(o, port);
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), 0);
	ck_assert_str_eq(berth_lease_name(l), "fixed");
	ck_assert_int_eq(berth_lease_port(l), port);
	berth_lease_free(l);
	berth_acquire_opts_free(o);
	berth_close(c);
}
END_TEST

/*
 * Bad options are refused by the library, before any request: the client
 * points where nobody listens, so a request would be EUNREACHABLE.
 */
START_TEST(test_acquire_opts_refused)
{
	static const char	 latin1[] = { 'a', (char)0xe9, '\0' };
	berth_acquire_opts	*o;
	berth_client		*c;
	berth_lease		*l;
	berth_error		 err;
	char			 addr[64];

	snprintf(addr, sizeof addr, "127.0.0.1:%d", unused_port());
	c = berth_open(addr, &err);
	ck_assert_ptr_nonnull(c);

	/* no name at all */
	o = berth_acquire_opts_new(NULL);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), BERTH_EINVAL);
	ck_assert_int_eq(err.code, BERTH_EINVAL);
	ck_assert_str_eq(err.api_code, "invalid_name");

	/* a setter that failed, unchecked, still fails the acquire */
	ck_assert_int_eq(berth_acquire_opts_set_name(o, "ok"), 0);
	ck_assert_int_eq(berth_acquire_opts_add_meta(o, NULL, "v"),
	    BERTH_EINVAL);
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), BERTH_EINVAL);
	ck_assert_ptr_null(l);
	berth_acquire_opts_free(o);

	/* a string that is not UTF-8 */
	o = berth_acquire_opts_new("ok");
	berth_acquire_opts_add_meta(o, "k", latin1);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), BERTH_EINVAL);
	ck_assert_msg(strstr(err.message, "UTF-8") != NULL, "message: %s",
	    err.message);
	berth_acquire_opts_free(o);

	/* and a good one does reach out, and finds nobody */
	o = berth_acquire_opts_new("ok");
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), BERTH_EUNREACHABLE);
	ck_assert_int_eq(err.code, BERTH_EUNREACHABLE);
	berth_acquire_opts_free(o);
	berth_acquire_opts_free(NULL);
	berth_close(c);
}
END_TEST

START_TEST(test_lookup)
{
	berth_client	*c;
	berth_lease	*a, *l;
	berth_error	 err;

	c = client();
	acquire(c, "db", &a);
	ck_assert_msg(berth_lookup(c, "db", 0, &l, &err) == 0, "lookup: %s",
	    err.message);
	ck_assert_str_eq(berth_lease_name(l), "db");
	ck_assert_int_eq(berth_lease_port(l), berth_lease_port(a));
	ck_assert_str_eq(berth_lease_host(l), berth_lease_host(a));
	ck_assert_int_eq(berth_lease_created_at(l), berth_lease_created_at(a));
	ck_assert_str_eq(berth_lease_token(l), "");
	ck_assert_ptr_null(strstr(berth_lease_json(l), "token"));
	berth_lease_free(l);

	memset(&err, 0, sizeof err);
	ck_assert_int_eq(berth_lookup(c, "ghost", 0, &l, &err),
	    BERTH_ENOTFOUND);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(err.code, BERTH_ENOTFOUND);
	ck_assert_int_eq(err.http_status, 404);
	ck_assert_str_eq(err.api_code, "not_found");
	ck_assert_msg(err.message[0] != '\0', "no message");
	berth_lease_free(a);
	berth_close(c);
}
END_TEST

START_TEST(test_lookup_wait)
{
	berth_client	*c;
	berth_lease	*l;
	berth_error	 err;
	double		 t0, took;
	pid_t		 pid;

	c = client();
	pid = acquire_later("late", 500);
	t0 = now();
	ck_assert_msg(berth_lookup(c, "late", 10, &l, &err) == 0,
	    "lookup wait: %s", err.message);
	took = now() - t0;
	reap_ok(pid);
	ck_assert_str_eq(berth_lease_name(l), "late");
	ck_assert_int_gt(berth_lease_port(l), 0);
	/* it came back on the acquire, not at the end of the wait */
	ck_assert_msg(took < 8, "lookup took %.1fs", took);
	berth_lease_free(l);

	/* nothing comes: not found after about the wait */
	t0 = now();
	ck_assert_int_eq(berth_lookup(c, "never", 1, &l, &err),
	    BERTH_ENOTFOUND);
	ck_assert_msg(now() - t0 >= 0.9, "returned after %.2fs", now() - t0);
	berth_close(c);
}
END_TEST

/* A TCP socket listening on 127.0.0.1:port, as a service's would. */
static int
listen_on(int port)
{
	struct sockaddr_in	sin;
	int			fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
	    listen(fd, 8) == 0, "listen on port %d: %s", port,
	    strerror(errno));
	return (fd);
}

/*
 * Readiness: berth_lease_ready says what the broker saw, and
 * berth_lookup_ready finds a lease only once its service listens (a
 * renewal makes the broker look at once), or when the broker cannot tell.
 */
START_TEST(test_lookup_ready)
{
	berth_client		*c;
	berth_acquire_opts	*o;
	berth_lease		*a, *l, *far;
	berth_error		 err;
	int			 fd;

	c = client();
	acquire(c, "svc", &a);
	ck_assert_int_eq(berth_lease_ready(a), 0);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(berth_lookup_ready(c, "svc", 0, &l, &err),
	    BERTH_ENOTFOUND);
	ck_assert_ptr_null(l);
	ck_assert_str_eq(err.api_code, "not_found");
	ck_assert_msg(strstr(err.message, "nothing listens") != NULL,
	    "message: %s", err.message);
	ck_assert_int_eq(berth_lookup_ready(c, "svc", 1, &l, &err),
	    BERTH_ENOTFOUND);
	ck_assert_int_eq(berth_lookup(c, "svc", 0, &l, &err), 0);
	ck_assert_int_eq(berth_lease_ready(l), 0);
	berth_lease_free(l);

	fd = listen_on(berth_lease_port(a));
	ck_assert_int_eq(berth_renew(c, "svc", berth_lease_token(a), -1, &l,
	    &err), 0);
	ck_assert_int_eq(berth_lease_ready(l), 1);
	berth_lease_free(l);
	ck_assert_msg(berth_lookup_ready(c, "svc", 0, &l, &err) == 0,
	    "lookup_ready: %s", err.message);
	ck_assert_int_eq(berth_lease_port(l), berth_lease_port(a));
	ck_assert_int_eq(berth_lease_ready(l), 1);
	berth_lease_free(l);
	close(fd);

	/* A host that is not the broker's: it cannot tell, and says so. */
	o = berth_acquire_opts_new("far");
	berth_acquire_opts_set_host(o, "db.example");
	ck_assert_int_eq(berth_acquire(c, o, &far, &err), 0);
	berth_acquire_opts_free(o);
	ck_assert_int_eq(berth_lease_ready(far), -1);
	ck_assert_msg(berth_lookup_ready(c, "far", 0, &l, &err) == 0,
	    "lookup_ready far: %s", err.message);
	ck_assert_int_eq(berth_lease_ready(l), -1);
	berth_lease_free(l);
	berth_lease_free(far);
	berth_lease_free(a);
	berth_close(c);
}
END_TEST

START_TEST(test_list)
{
	static const char	*names[] = { "alpha", "bravo", "charlie.1" };
	berth_client		*c;
	berth_leases		*v;
	const berth_lease	*l;
	berth_error		 err;
	size_t			 i;

	c = client();
	ck_assert_int_eq(berth_list(c, 0, 0, &v, &err), 0);
	ck_assert_uint_eq(berth_leases_count(v), 0);
	ck_assert_ptr_null(berth_leases_get(v, 0));
	berth_leases_free(v);

	acquire(c, "bravo", NULL);
	acquire(c, "alpha", NULL);
	acquire(c, "charlie.1", NULL);
	ck_assert_msg(berth_list(c, 0, 0, &v, &err) == 0, "list: %s",
	    err.message);
	ck_assert_uint_eq(berth_leases_count(v), 3);
	for (i = 0; i < 3; i++) {
		l = berth_leases_get(v, i);
		ck_assert_ptr_nonnull(l);
		ck_assert_str_eq(berth_lease_name(l), names[i]);
		ck_assert_int_gt(berth_lease_port(l), 0);
		ck_assert_int_gt(berth_lease_created_at(l), 0);
		ck_assert_str_eq(berth_lease_token(l), "");
		ck_assert_str_eq(berth_lease_meta(l), "{}");
		ck_assert_ptr_nonnull(strstr(berth_lease_json(l), names[i]));
	}
	ck_assert_ptr_null(berth_leases_get(v, 3));
	ck_assert_uint_gt(berth_leases_index(v), 0);
	ck_assert_uint_eq(berth_last_index(c), berth_leases_index(v));
	berth_leases_free(v);
	berth_close(c);
}
END_TEST

START_TEST(test_list_watch)
{
	berth_client	*c;
	berth_leases	*v;
	berth_error	 err;
	uint64_t	 idx, idx2;
	double		 t0, took;
	pid_t		 pid;

	c = client();
	acquire(c, "first", NULL);
	ck_assert_int_eq(berth_list(c, 0, 0, &v, &err), 0);
	idx = berth_leases_index(v);
	berth_leases_free(v);
	ck_assert_uint_gt(idx, 0);

	pid = acquire_later("second", 500);
	t0 = now();
	ck_assert_msg(berth_list(c, idx, 10, &v, &err) == 0, "watch: %s",
	    err.message);
	took = now() - t0;
	reap_ok(pid);
	idx2 = berth_leases_index(v);
	ck_assert_uint_gt(idx2, idx);
	ck_assert_uint_eq(berth_leases_count(v), 2);
	ck_assert_str_eq(berth_lease_name(berth_leases_get(v, 1)), "second");
	ck_assert_msg(took >= 0.3, "watch returned at once (%.2fs)", took);
	ck_assert_msg(took < 8, "watch took %.1fs", took);
	berth_leases_free(v);

	/* no change: back after about the wait, same index */
	t0 = now();
	ck_assert_int_eq(berth_list(c, idx2, 1, &v, &err), 0);
	ck_assert_msg(now() - t0 >= 0.9, "returned after %.2fs", now() - t0);
	ck_assert_uint_eq(berth_leases_index(v), idx2);
	ck_assert_uint_eq(berth_leases_count(v), 2);
	berth_leases_free(v);
	berth_close(c);
}
END_TEST

START_TEST(test_renew)
{
	berth_acquire_opts	*o;
	berth_client		*c;
	berth_lease		*l, *r;
	berth_error		 err;
	int64_t			 t0;

	c = client();
	o = berth_acquire_opts_new("r");
	berth_acquire_opts_set_ttl(o, 30);
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), 0);
	berth_acquire_opts_free(o);

	msleep(20);
	t0 = wall_ms();
	ck_assert_msg(berth_renew(c, "r", berth_lease_token(l), 120, &r,
	    &err) == 0, "renew: %s", err.message);
	ck_assert_str_eq(berth_lease_name(r), "r");
	ck_assert_int_eq(berth_lease_port(r), berth_lease_port(l));
	ck_assert_int_eq(berth_lease_ttl(r), 120);
	ck_assert_int_gt(berth_lease_renewed_at(r), berth_lease_renewed_at(l));
	ck_assert_int_eq(berth_lease_created_at(r), berth_lease_created_at(l));
	ck_assert_int_eq(berth_lease_expires_at(r),
	    berth_lease_renewed_at(r) + 120000);
	ck_assert_msg(berth_lease_expires_at(r) >= t0 + 115000 &&
	    berth_lease_expires_at(r) <= wall_ms() + 125000,
	    "expires_at %lld is not 120 s from now",
	    (long long)berth_lease_expires_at(r));
	berth_lease_free(r);

	/* ttl -1 keeps the TTL */
	ck_assert_int_eq(berth_renew(c, "r", berth_lease_token(l), -1, &r,
	    &err), 0);
	ck_assert_int_eq(berth_lease_ttl(r), 120);
	berth_lease_free(r);
	ck_assert_int_eq(berth_lookup(c, "r", 0, &r, &err), 0);
	ck_assert_int_eq(berth_lease_ttl(r), 120);
	berth_lease_free(r);

	/* out may be NULL */
	ck_assert_int_eq(berth_renew(c, "r", berth_lease_token(l), -1, NULL,
	    &err), 0);

	memset(&err, 0, sizeof err);
	ck_assert_int_eq(berth_renew(c, "r", "00000000000000000000000000000000",
	    -1, NULL, &err), BERTH_EFORBIDDEN);
	ck_assert_int_eq(err.code, BERTH_EFORBIDDEN);
	ck_assert_int_eq(err.http_status, 403);
	ck_assert_str_eq(err.api_code, "bad_token");

	memset(&err, 0, sizeof err);
	ck_assert_int_eq(berth_renew(c, "nosuch", berth_lease_token(l), -1,
	    NULL, &err), BERTH_ENOTFOUND);
	ck_assert_str_eq(err.api_code, "not_found");
	berth_lease_free(l);
	berth_close(c);
}
END_TEST

START_TEST(test_release)
{
	berth_client	*c;
	berth_lease	*l, *r;
	berth_error	 err;

	c = client();
	acquire(c, "rel", &l);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(berth_release(c, "rel", BAD_TOKEN, &err),
	    BERTH_EFORBIDDEN);
	ck_assert_int_eq(err.http_status, 403);
	ck_assert_str_eq(err.api_code, "bad_token");
	ck_assert_int_eq(berth_lookup(c, "rel", 0, &r, &err), 0);
	berth_lease_free(r);

	ck_assert_msg(berth_release(c, "rel", berth_lease_token(l), &err) == 0,
	    "release: %s", err.message);
	ck_assert_int_eq(err.code, BERTH_OK);
	ck_assert_int_eq(berth_lookup(c, "rel", 0, &r, &err), BERTH_ENOTFOUND);
	ck_assert_int_eq(berth_release(c, "rel", berth_lease_token(l), &err),
	    BERTH_ENOTFOUND);
	berth_lease_free(l);
	berth_close(c);
}
END_TEST

/*
 * Over TCP too, berthd knows who asks: root and berthd's own user may
 * revoke; anyone else gets BERTH_EFORBIDDEN (test_who_asks.py runs a
 * second user).
 */
START_TEST(test_revoke_tcp)
{
	berth_client	*c;
	berth_lease	*l;
	berth_error	 err;
	int		 admin = geteuid() == 0;

	c = client();
	acquire(c, "victim", NULL);
	memset(&err, 0, sizeof err);
	if (!admin) {
		ck_assert_int_eq(berth_revoke(c, "victim", &err),
		    BERTH_EFORBIDDEN);
		ck_assert_int_eq(err.http_status, 403);
		ck_assert_msg(err.message[0] != '\0', "no message");
		ck_assert_int_eq(berth_lookup(c, "victim", 0, &l, &err), 0);
		berth_lease_free(l);
	} else {
		ck_assert_int_eq(berth_revoke(c, "victim", &err), 0);
		ck_assert_int_eq(berth_lookup(c, "victim", 0, &l, &err),
		    BERTH_ENOTFOUND);
	}
	berth_close(c);
}
END_TEST

/* The same calls over berthd's unix socket, where revoke is allowed. */
START_TEST(test_unix_socket)
{
	berth_client	*c;
	berth_lease	*l;
	berth_info	*st;
	berth_error	 err;

	daemon_stop(&D);
	daemon_start(&D, "unix");
	ck_assert_msg(strncmp(D.addr, "unix:", 5) == 0, "addr %s", D.addr);
	c = client();
	acquire(c, "victim", &l);
	ck_assert_int_gt(berth_lease_port(l), 0);
	berth_lease_free(l);
	ck_assert_int_eq(berth_lookup(c, "victim", 0, &l, &err), 0);
	berth_lease_free(l);
	ck_assert_int_eq(berth_status(c, &st, &err), 0);
	ck_assert_int_eq(berth_info_listen_count(st), 1);
	ck_assert_str_eq(berth_info_listen(st, 0), D.addr);
	berth_info_free(st);
	ck_assert_msg(berth_revoke(c, "victim", &err) == 0, "revoke: %s",
	    err.message);
	ck_assert_int_eq(berth_lookup(c, "victim", 0, &l, &err),
	    BERTH_ENOTFOUND);
	ck_assert_int_eq(berth_revoke(c, "victim", &err), BERTH_ENOTFOUND);
	berth_close(c);
}
END_TEST

START_TEST(test_invalid_name_no_request)
{
	static const char	*bad[] = { "", "Bad", "-a", "a b", "a/b",
	    NAME63 "x" };
	berth_acquire_opts	*o;
	berth_client		*c;
	berth_lease		*l;
	berth_leases		*v;
	berth_error		 err;
	char			 addr[64], want[192];
	size_t			 i;

	/* nobody listens there: a request would give EUNREACHABLE */
	snprintf(addr, sizeof addr, "127.0.0.1:%d", unused_port());
	c = berth_open(addr, &err);
	ck_assert_ptr_nonnull(c);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(berth_name_valid(bad[i]), 0);
		o = berth_acquire_opts_new(bad[i]);
		memset(&err, 0, sizeof err);
		ck_assert_int_eq(berth_acquire(c, o, &l, &err), BERTH_EINVAL);
		berth_acquire_opts_free(o);
		ck_assert_int_eq(err.code, BERTH_EINVAL);
		ck_assert_int_eq(err.http_status, 0);
		/* the broker's own words for a bad name */
		snprintf(want, sizeof want, "'%.64s' is not a valid name: "
		    "1-63 characters, [a-z0-9] first, then [a-z0-9._-]",
		    bad[i]);
		ck_assert_str_eq(err.message, want);
		ck_assert_int_eq(berth_lookup(c, bad[i], 0, &l, &err),
		    BERTH_EINVAL);
		ck_assert_int_eq(berth_renew(c, bad[i], "ab", -1, NULL, &err),
		    BERTH_EINVAL);
		ck_assert_int_eq(berth_release(c, bad[i], "ab", &err),
		    BERTH_EINVAL);
		ck_assert_int_eq(berth_revoke(c, bad[i], &err), BERTH_EINVAL);
	}
	ck_assert_int_eq(berth_acquire(c, NULL, &l, &err), BERTH_EINVAL);
	ck_assert_int_eq(berth_name_valid(NULL), 0);
	ck_assert_int_eq(berth_name_valid("a"), 1);
	ck_assert_int_eq(berth_name_valid("0a.b_c-d"), 1);
	ck_assert_int_eq(berth_name_valid(NAME63), 1);
	/* a valid name does reach out, and finds nobody */
	ck_assert_int_eq(berth_list(c, 0, 0, &v, &err), BERTH_EUNREACHABLE);
	ck_assert_ptr_null(v);
	berth_close(c);
}
END_TEST

START_TEST(test_keepalive)
{
	unsigned long	 before[64], after[64];
	berth_client	*c;
	berth_lease	*l;
	berth_error	 err;
	char		 name[32];
	size_t		 nb, na, i;
	int		 k;

	c = client();
	nb = socket_inodes(before, 64);
	acquire(c, "ka", NULL);
	na = socket_inodes(after, 64);
	ck_assert_uint_eq(na, nb + 1);	/* one connection, kept open */
	for (i = 0; i < na; i++)
		if (!has_inode(before, nb, after[i]))
			break;
	ck_assert_uint_lt(i, na);
	memcpy(before, after, sizeof after);
	nb = na;

	for (k = 0; k < 200; k++) {
		snprintf(name, sizeof name, "ka-%d", k % 20);
		if (k < 20)
			acquire(c, name, NULL);
		ck_assert_msg(berth_lookup(c, name, 0, &l, &err) == 0,
		    "call %d: %s", k, err.message);
		berth_lease_free(l);
		ck_assert_int_eq(berth_lookup(c, "nope", 0, &l, &err),
		    BERTH_ENOTFOUND);
	}
	ck_assert_int_eq(berth_health(c, &err), 0);
	na = socket_inodes(after, 64);
	ck_assert_uint_eq(na, nb);
	for (i = 0; i < na; i++)
		ck_assert_msg(has_inode(before, nb, after[i]),
		    "a new socket: the connection was not kept alive");
	berth_close(c);
	/* berth_close closes it */
	na = socket_inodes(after, 64);
	ck_assert_uint_eq(na, nb - 1);
}
END_TEST

START_TEST(test_reconnect_after_restart)
{
	berth_client	*c;
	berth_lease	*l;
	berth_error	 err;
	char		 listen[64], addr[160];
	int		 port;

	c = client();
	port = acquire(c, "survivor", NULL);
	ck_assert_int_eq(berth_health(c, &err), 0);
	snprintf(addr, sizeof addr, "%s", D.addr);

	snprintf(listen, sizeof listen, "127.0.0.1:%d", D.port);
	daemon_stop(&D);
	daemon_start(&D, listen);
	ck_assert_str_eq(D.addr, addr);

	/* the kept connection is dead; the client reconnects by itself */
	ck_assert_msg(berth_lookup(c, "survivor", 0, &l, &err) == 0,
	    "lookup after restart: %s", err.message);
	ck_assert_int_eq(berth_lease_port(l), port);
	berth_lease_free(l);

	/* and a POST on a dead kept connection too */
	daemon_stop(&D);
	daemon_start(&D, listen);
	acquire(c, "newcomer", NULL);
	ck_assert_int_eq(berth_lookup(c, "newcomer", 0, &l, &err), 0);
	berth_lease_free(l);

	/* while it is down: unreachable, then back again */
	daemon_stop(&D);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(berth_health(c, &err), BERTH_EUNREACHABLE);
	daemon_start(&D, listen);
	ck_assert_msg(berth_health(c, &err) == 0, "health: %s", err.message);
	berth_close(c);
}
END_TEST

START_TEST(test_unreachable)
{
	berth_client	*c;
	berth_lease	*l;
	berth_error	 err;
	char		 addr[160];

	snprintf(addr, sizeof addr, "127.0.0.1:%d", unused_port());
	c = berth_open(addr, &err);
	ck_assert_ptr_nonnull(c);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(berth_lookup(c, "x", 0, &l, &err),
	    BERTH_EUNREACHABLE);
	ck_assert_int_eq(err.code, BERTH_EUNREACHABLE);
	ck_assert_int_eq(err.http_status, 0);
	ck_assert_msg(strstr(err.message, addr) != NULL,
	    "message \"%s\" does not name %s", err.message, addr);
	ck_assert_int_eq(berth_health(c, &err), BERTH_EUNREACHABLE);
	berth_close(c);

	snprintf(addr, sizeof addr, "unix:%s/none.sock", D.dir);
	c = berth_open(addr, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(berth_health(c, &err), BERTH_EUNREACHABLE);
	ck_assert_msg(strstr(err.message, addr + 5) != NULL,
	    "message \"%s\" does not name %s", err.message, addr);
	berth_close(c);
}
END_TEST

/* A loopback listener that never answers; *addr gets its address. */
static int
silent_server(char *addr, size_t len)
{
	struct sockaddr_in	sin;
	socklen_t		slen = sizeof sin;
	int			s;

	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(s, 8), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sin, &slen), 0);
	snprintf(addr, len, "127.0.0.1:%d", ntohs(sin.sin_port));
	return (s);
}

START_TEST(test_timeout)
{
	berth_client	*c;
	berth_error	 err;
	char		 addr[64];
	double		 t0, took;
	int		 s, rc;

	/* a server that accepts (in the kernel) but never answers */
	s = silent_server(addr, sizeof addr);
	c = berth_open(addr, &err);
	ck_assert_ptr_nonnull(c);
	berth_set_timeout(c, 500);
	t0 = now();
	memset(&err, 0, sizeof err);
	rc = berth_health(c, &err);
	took = now() - t0;
	ck_assert_int_eq(rc, BERTH_ETIMEOUT);
	ck_assert_int_eq(err.code, BERTH_ETIMEOUT);
	ck_assert_msg(took >= 0.4 && took < 5, "timed out after %.2fs", took);
	ck_assert_msg(strstr(err.message, addr) != NULL,
	    "message \"%s\" does not name %s", err.message, addr);
	berth_close(c);
	close(s);
}
END_TEST

/* The first line of a small file, newline cut. */
static void
read_line(const char *path, char *buf, size_t len)
{
	FILE	*f;

	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "open %s", path);
	ck_assert_ptr_nonnull(fgets(buf, (int)len, f));
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

START_TEST(test_status_health)
{
	berth_client	*c;
	berth_info	*st;
	berth_error	 err;
	json_t		*j;
	char		 boot[64], ns[64];
	ssize_t		 n;

	c = client();
	acquire(c, "s", NULL);
	ck_assert_msg(berth_status(c, &st, &err) == 0, "status: %s",
	    err.message);
	ck_assert_ptr_nonnull(st);
	ck_assert_str_eq(berth_info_version(st), BERTH_VERSION);
	ck_assert_int_ge(berth_info_uptime(st), 0);
	ck_assert_int_eq(berth_info_leases(st), 1);
	ck_assert_int_eq(berth_info_waiters(st), 0);
	ck_assert_int_eq(berth_info_listen_count(st), 1);
	ck_assert_str_eq(berth_info_listen(st, 0), D.addr);
	ck_assert_ptr_null(berth_info_listen(st, 1));
	ck_assert_ptr_null(berth_info_listen(st, -1));
	ck_assert_str_eq(berth_info_db(st), D.db);
	ck_assert_int_eq(berth_info_db_ok(st), 1);
	ck_assert_int_gt(berth_info_pool_size(st), 0);
	ck_assert_int_lt(berth_info_pool_free(st), berth_info_pool_size(st));
	ck_assert_int_ge(berth_info_pool_free(st), 0);
	ck_assert_int_ge(berth_info_pool_range_count(st), 1);
	ck_assert_ptr_nonnull(strchr(berth_info_pool_range(st, 0), '-'));
	ck_assert_ptr_null(berth_info_pool_range(st,
	    berth_info_pool_range_count(st)));
	ck_assert_int_ge(berth_info_pool_fallback(st), 0);
	ck_assert_ptr_null(berth_info_portserver(st));
	/* without --cluster: no node, and the cluster's calls say so */
	ck_assert_ptr_null(berth_info_cluster_node(st));
	ck_assert_int_eq(berth_info_cluster_connected(st), -1);
	ck_assert_int_eq(berth_cluster_nodes(c, NULL, &err), BERTH_ENOCLUSTER);
	ck_assert_str_eq(err.api_code, "cluster_disabled");
	/* berthd runs here: the same boot and PID namespace as this test */
	read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
	ck_assert_str_eq(berth_info_boot_id(st), boot);
	n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
	ck_assert_int_gt(n, 0);
	ns[n] = '\0';
	ck_assert_str_eq(berth_info_pid_namespace(st), ns);
	/* and the answer as it came, for those who want all of it */
	j = json_loads(berth_info_json(st), 0, NULL);
	ck_assert_msg(j != NULL, "status not JSON: %s", berth_info_json(st));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j,
	    "pool"), "size")), berth_info_pool_size(st));
	json_decref(j);
	berth_info_free(st);
	ck_assert_int_eq(berth_health(c, &err), 0);
	berth_close(c);
}
END_TEST

/*
 * Something that answers HTTP but is not berthd: a status that is not
 * JSON is EPROTO with the HTTP status, and no object to free.
 */
START_TEST(test_status_not_berthd)
{
	static const char	 reply[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Length: 5\r\nConnection: close\r\n\r\nhello";
	berth_client		*c;
	berth_info		*st = (berth_info *)&st;
	berth_error		 err;
	char			 addr[64], buf[1024];
	pid_t			 pid;
	int			 s, fd;

	s = silent_server(addr, sizeof addr);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if ((fd = accept(s, NULL, NULL)) == -1 ||
		    read(fd, buf, sizeof buf) <= 0 ||
		    write(fd, reply, sizeof reply - 1) == -1)
			_exit(1);
		close(fd);
		_exit(0);
	}
	close(s);
	c = berth_open(addr, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(berth_status(c, &st, &err), BERTH_EPROTO);
	ck_assert_ptr_null(st);
	ck_assert_int_eq(err.code, BERTH_EPROTO);
	ck_assert_int_eq(err.http_status, 200);
	ck_assert_msg(strstr(err.message, addr) != NULL, "message: %s",
	    err.message);
	reap_ok(pid);
	berth_close(c);
}
END_TEST

/*
 * A broker of one canned answer: a child that accepts one connection,
 * reads one request (head and Content-Length body), copies it to a pipe
 * for the test to read and answers with status and body. For the calls
 * whose broker side is not in this berthd yet (the cluster's), or whose
 * answers a real berthd gives only with etcd behind it.
 */
struct canned {
	pid_t	pid;
	int	fd;		/* the request as the child read it */
	char	addr[64];
};

/* In the child: read one request from fd; its length, or -1. */
static ssize_t
canned_read(int fd, char *buf, size_t size)
{
	const char	*end, *cl;
	size_t		 len = 0, want = 0;
	ssize_t		 n;

	for (;;) {
		if (len == size - 1)
			return (-1);
		if ((n = read(fd, buf + len, size - 1 - len)) <= 0)
			return (-1);
		len += (size_t)n;
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		if (want == 0) {
			cl = strcasestr(buf, "\r\nContent-Length:");
			want = (size_t)(end + 4 - buf) +
			    (cl != NULL && cl < end ? strtoul(cl + 17, NULL,
			    10) : 0);
		}
		if (len >= want)
			return ((ssize_t)len);
	}
}

static void
canned_start(struct canned *cn, int status, const char *body)
{
	char	req[8192], reply[8192];
	int	s, fd, p[2];

	s = silent_server(cn->addr, sizeof cn->addr);
	ck_assert_int_eq(pipe(p), 0);
	cn->pid = fork();
	ck_assert_int_ge(cn->pid, 0);
	if (cn->pid == 0) {
		close(p[0]);
		snprintf(reply, sizeof reply, "HTTP/1.1 %d Canned\r\n"
		    "Content-Type: application/json\r\nX-Berth-Index: 7\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		    status, strlen(body), body);
		if ((fd = accept(s, NULL, NULL)) == -1 ||
		    canned_read(fd, req, sizeof req) == -1 ||
		    write(p[1], req, strlen(req)) == -1 ||
		    write(fd, reply, strlen(reply)) == -1)
			_exit(1);
		close(fd);
		_exit(0);
	}
	close(p[1]);
	close(s);
	cn->fd = p[0];
}

/* The request the canned broker got, once it has answered. */
static void
canned_request(struct canned *cn, char *buf, size_t size)
{
	size_t	len = 0;
	ssize_t	n;

	while (len < size - 1 &&
	    (n = read(cn->fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(cn->fd);
	reap_ok(cn->pid);
}

/* A client of the canned broker. */
static berth_client *
canned_client(struct canned *cn)
{
	berth_client	*c;
	berth_error	 err;

	c = berth_open(cn->addr, &err);
	ck_assert_msg(c != NULL, "berth_open %s: %s", cn->addr, err.message);
	return (c);
}

/* The request's first line is want. */
static void
assert_request_line(const char *req, const char *want)
{
	ck_assert_msg(strncmp(req, want, strlen(want)) == 0 &&
	    strncmp(req + strlen(want), "\r\n", 2) == 0,
	    "request \"%.*s\", want \"%s\"", (int)strcspn(req, "\r"), req,
	    want);
}

/*
 * GET /v1/cluster/services/NAME: its instances as a list of leases, each
 * with its node, published; meta null reads as "{}" and ready null as -1;
 * the view's index and staleness; ?wait= as a local lookup has it.
 */
START_TEST(test_cluster_lookup)
{
	static const char	 body[] = "{\"name\":\"db\",\"instances\":["
	    "{\"name\":\"db\",\"node\":\"a\",\"host\":\"10.0.0.1\","
	    "\"port\":5432,\"proto\":\"tcp\",\"meta\":{\"role\":\"primary\"},"
	    "\"ready\":true},"
	    "{\"name\":\"db\",\"node\":\"b\",\"host\":\"10.0.0.2\","
	    "\"port\":5433,\"proto\":\"both\",\"meta\":null,\"ready\":null},"
	    "42],\"index\":12,\"stale\":true}";
	struct canned		 cn;
	berth_client		*c;
	berth_leases		*v;
	const berth_lease	*a, *b;
	berth_error		 err;
	char			 req[8192];

	canned_start(&cn, 200, body);
	c = canned_client(&cn);
	ck_assert_msg(berth_cluster_lookup(c, "db", 5, &v, &err) == 0,
	    "cluster lookup: %s", err.message);
	canned_request(&cn, req, sizeof req);
	assert_request_line(req, "GET /v1/cluster/services/db?wait=5 HTTP/1.1");
	/* what is not an instance is left out, as a list leaves it */
	ck_assert_uint_eq(berth_leases_count(v), 2);
	a = berth_leases_get(v, 0);
	b = berth_leases_get(v, 1);
	ck_assert_ptr_null(berth_leases_get(v, 2));
	ck_assert_str_eq(berth_lease_name(a), "db");
	ck_assert_str_eq(berth_lease_node(a), "a");
	ck_assert_str_eq(berth_lease_host(a), "10.0.0.1");
	ck_assert_int_eq(berth_lease_port(a), 5432);
	ck_assert_str_eq(berth_lease_proto(a), "tcp");
	ck_assert_str_eq(berth_lease_meta_get(a, "role"), "primary");
	ck_assert_int_eq(berth_lease_ready(a), 1);
	ck_assert_int_eq(berth_lease_publish(a), 1);
	ck_assert_str_eq(berth_lease_node(b), "b");
	ck_assert_str_eq(berth_lease_proto(b), "both");
	ck_assert_str_eq(berth_lease_meta(b), "{}");
	ck_assert_int_eq(berth_lease_ready(b), -1);
	ck_assert_int_eq(berth_lease_publish(b), 1);
	/* what a cluster instance does not have reads as none */
	ck_assert_str_eq(berth_lease_token(b), "");
	ck_assert_int_eq(berth_lease_ttl(b), 0);
	ck_assert_int_eq(berth_lease_created_at(b), 0);
	ck_assert_uint_eq(berth_leases_index(v), 12);
	ck_assert_int_eq(berth_leases_stale(v), 1);
	berth_leases_free(v);
	berth_close(c);

	/* no wait: no query; a bad name: no request at all */
	canned_start(&cn, 200, "{\"name\":\"db\",\"instances\":[],"
	    "\"index\":1,\"stale\":false}");
	c = canned_client(&cn);
	ck_assert_int_eq(berth_cluster_lookup(c, "Bad", 0, &v, &err),
	    BERTH_EINVAL);
	ck_assert_ptr_null(v);
	ck_assert_str_eq(err.api_code, "invalid_name");
	ck_assert_int_eq(berth_cluster_lookup(c, "db", 0, &v, &err), 0);
	canned_request(&cn, req, sizeof req);
	assert_request_line(req, "GET /v1/cluster/services/db HTTP/1.1");
	ck_assert_uint_eq(berth_leases_count(v), 0);
	ck_assert_int_eq(berth_leases_stale(v), 0);
	berth_leases_free(v);
	berth_close(c);
}
END_TEST

/* GET /v1/cluster/services, plain and as a watch; wait is clamped. */
START_TEST(test_cluster_list)
{
	static const char	 body[] = "{\"services\":["
	    "{\"name\":\"api\",\"node\":\"b\",\"host\":\"10.0.0.2\","
	    "\"port\":8080,\"proto\":\"tcp\",\"meta\":null,\"ready\":false},"
	    "{\"name\":\"db\",\"node\":\"a\",\"host\":\"10.0.0.1\","
	    "\"port\":5432,\"proto\":\"tcp\",\"meta\":{},\"ready\":true}],"
	    "\"index\":4,\"stale\":false}";
	struct canned		 cn;
	berth_client		*c;
	berth_leases		*v;
	berth_error		 err;
	char			 req[8192];

	canned_start(&cn, 200, body);
	c = canned_client(&cn);
	ck_assert_msg(berth_cluster_list(c, 3, 1000, &v, &err) == 0,
	    "cluster list: %s", err.message);
	canned_request(&cn, req, sizeof req);
	assert_request_line(req,
	    "GET /v1/cluster/services?index=3&wait=300 HTTP/1.1");
	ck_assert_uint_eq(berth_leases_count(v), 2);
	ck_assert_str_eq(berth_lease_name(berth_leases_get(v, 0)), "api");
	ck_assert_str_eq(berth_lease_node(berth_leases_get(v, 0)), "b");
	ck_assert_int_eq(berth_lease_ready(berth_leases_get(v, 0)), 0);
	ck_assert_str_eq(berth_lease_node(berth_leases_get(v, 1)), "a");
	ck_assert_uint_eq(berth_leases_index(v), 4);
	ck_assert_uint_eq(berth_last_index(c), 7);	/* the header's */
	ck_assert_int_eq(berth_leases_stale(v), 0);
	berth_leases_free(v);
	berth_close(c);

	canned_start(&cn, 200, "{\"services\":[],\"index\":4,\"stale\":true}");
	c = canned_client(&cn);
	ck_assert_int_eq(berth_cluster_list(c, 0, 30, &v, &err), 0);
	canned_request(&cn, req, sizeof req);
	assert_request_line(req, "GET /v1/cluster/services HTTP/1.1");
	ck_assert_int_eq(berth_leases_stale(v), 1);
	berth_leases_free(v);
	berth_close(c);

	/* an answer without its list is not berthd's */
	canned_start(&cn, 200, "{\"instances\":[]}");
	c = canned_client(&cn);
	ck_assert_int_eq(berth_cluster_list(c, 0, 0, &v, &err), BERTH_EPROTO);
	ck_assert_ptr_null(v);
	canned_request(&cn, req, sizeof req);
	berth_close(c);
}
END_TEST

/* GET /v1/cluster/nodes: each node's fields, joined_at in ms. */
START_TEST(test_cluster_nodes)
{
	static const char	 body[] = "{\"nodes\":["
	    "{\"node\":\"a\",\"address\":\"10.0.0.1\",\"version\":\"0.9.0\","
	    "\"joined_at\":\"2026-11-26T06:05:43.412Z\"},"
	    "{\"address\":\"nameless\"},"
	    "{\"node\":\"b\",\"address\":\"10.0.0.2\"}]}";
	struct canned		 cn;
	berth_client		*c;
	berth_nodes		*v;
	const berth_node	*a, *b;
	berth_error		 err;
	struct tm		 tm;
	char			 req[8192];

	canned_start(&cn, 200, body);
	c = canned_client(&cn);
	ck_assert_msg(berth_cluster_nodes(c, &v, &err) == 0, "nodes: %s",
	    err.message);
	canned_request(&cn, req, sizeof req);
	assert_request_line(req, "GET /v1/cluster/nodes HTTP/1.1");
	/* an entry without its node's name is left out */
	ck_assert_uint_eq(berth_nodes_count(v), 2);
	a = berth_nodes_get(v, 0);
	b = berth_nodes_get(v, 1);
	ck_assert_ptr_null(berth_nodes_get(v, 2));
	ck_assert_str_eq(berth_node_name(a), "a");
	ck_assert_str_eq(berth_node_address(a), "10.0.0.1");
	ck_assert_str_eq(berth_node_version(a), "0.9.0");
	memset(&tm, 0, sizeof tm);
	tm.tm_year = 2026 - 1900;
	tm.tm_mon = 10;
	tm.tm_mday = 26;
	tm.tm_hour = 6;
	tm.tm_min = 5;
	tm.tm_sec = 43;
	ck_assert_int_eq(berth_node_joined_at(a),
	    (int64_t)timegm(&tm) * 1000 + 412);
	ck_assert_ptr_nonnull(strstr(berth_node_json(a), "\"0.9.0\""));
	/* what a node did not send reads as "" or 0 */
	ck_assert_str_eq(berth_node_name(b), "b");
	ck_assert_str_eq(berth_node_version(b), "");
	ck_assert_int_eq(berth_node_joined_at(b), 0);
	berth_nodes_free(v);
	berth_close(c);

	canned_start(&cn, 200, "{\"nodes\":{}}");
	c = canned_client(&cn);
	v = (berth_nodes *)&v;
	ck_assert_int_eq(berth_cluster_nodes(c, &v, &err), BERTH_EPROTO);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(err.http_status, 200);
	canned_request(&cn, req, sizeof req);
	berth_close(c);
}
END_TEST

/*
 * cluster_disabled is BERTH_ENOCLUSTER whatever its status: 404 from
 * /v1/cluster/..., 400 from an acquire with publish, whose body says
 * "publish": true (and an acquire without it says nothing of publish,
 * which an older berthd would refuse as an unknown field).
 */
START_TEST(test_cluster_disabled)
{
	static const char	 off[] = "{\"error\":{\"code\":"
	    "\"cluster_disabled\",\"message\":\"berthd runs without "
	    "--cluster\"}}";
	struct canned		 cn;
	berth_client		*c;
	berth_acquire_opts	*o;
	berth_leases		*v;
	berth_lease		*l;
	berth_error		 err;
	char			 req[8192];

	canned_start(&cn, 404, off);
	c = canned_client(&cn);
	ck_assert_int_eq(berth_cluster_lookup(c, "db", 0, &v, &err),
	    BERTH_ENOCLUSTER);
	canned_request(&cn, req, sizeof req);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(err.code, BERTH_ENOCLUSTER);
	ck_assert_int_eq(err.http_status, 404);
	ck_assert_str_eq(err.api_code, "cluster_disabled");
	ck_assert_str_eq(err.message,
	    "berthd runs without --cluster (cluster_disabled)");
	berth_close(c);

	o = berth_acquire_opts_new("web");
	ck_assert_ptr_nonnull(o);
	berth_acquire_opts_set_publish(o, 1);
	canned_start(&cn, 400, off);
	c = canned_client(&cn);
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), BERTH_ENOCLUSTER);
	canned_request(&cn, req, sizeof req);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(err.http_status, 400);
	ck_assert_msg(strstr(req, "\"publish\":true") != NULL,
	    "no publish in %s", req);
	berth_close(c);

	/* an API error of another code keeps the status's mapping */
	berth_acquire_opts_set_publish(o, 0);
	canned_start(&cn, 400, "{\"error\":{\"code\":\"invalid_field\","
	    "\"message\":\"no\"}}");
	c = canned_client(&cn);
	ck_assert_int_eq(berth_acquire(c, o, &l, &err), BERTH_EINVAL);
	canned_request(&cn, req, sizeof req);
	ck_assert_msg(strstr(req, "publish") == NULL, "publish in %s", req);
	berth_close(c);
	berth_acquire_opts_free(o);
}
END_TEST

/* /v1/status's "cluster": this broker's node and whether it reaches etcd. */
START_TEST(test_cluster_status)
{
	struct canned	 cn;
	berth_client	*c;
	berth_info	*st;
	berth_error	 err;
	char		 req[8192];

	canned_start(&cn, 200, "{\"version\":\"9\",\"cluster\":{\"node\":\"a\","
	    "\"endpoints\":[\"http://127.0.0.1:2379\"],\"connected\":false,"
	    "\"revision\":3,\"last_error\":\"etcd: connection refused\"}}");
	c = canned_client(&cn);
	ck_assert_int_eq(berth_status(c, &st, &err), 0);
	canned_request(&cn, req, sizeof req);
	ck_assert_str_eq(berth_info_cluster_node(st), "a");
	ck_assert_int_eq(berth_info_cluster_connected(st), 0);
	berth_info_free(st);
	berth_close(c);

	/* an older berthd says nothing of a cluster */
	canned_start(&cn, 200, "{\"version\":\"0.1.0\"}");
	c = canned_client(&cn);
	ck_assert_int_eq(berth_status(c, &st, &err), 0);
	canned_request(&cn, req, sizeof req);
	ck_assert_ptr_null(berth_info_cluster_node(st));
	ck_assert_int_eq(berth_info_cluster_connected(st), -1);
	berth_info_free(st);
	berth_close(c);
}
END_TEST

START_TEST(test_strerror_version)
{
	int	code;

	for (code = BERTH_OK; code <= BERTH_ENOCLUSTER; code++) {
		ck_assert_ptr_nonnull(berth_strerror(code));
		ck_assert_msg(berth_strerror(code)[0] != '\0', "code %d", code);
		ck_assert_str_ne(berth_strerror(code), "unknown error");
	}
	/* one sign convention: a negative code is no code */
	ck_assert_str_eq(berth_strerror(-BERTH_EINVAL), "unknown error");
	ck_assert_str_eq(berth_strerror(12345), "unknown error");
	/* the version is configure's, in the header and in the library */
	ck_assert_str_eq(BERTH_VERSION, PACKAGE_VERSION);
	ck_assert_str_eq(berth_version(), BERTH_VERSION);
	ck_assert_int_ge(BERTH_API_VERSION, 1);
	/* NULL is harmless where a free is */
	berth_close(NULL);
	berth_lease_free(NULL);
	berth_leases_free(NULL);
	berth_info_free(NULL);
	berth_nodes_free(NULL);
	berth_acquire_opts_free(NULL);
	ck_assert_uint_eq(berth_leases_count(NULL), 0);
	ck_assert_uint_eq(berth_nodes_count(NULL), 0);
	ck_assert_ptr_null(berth_nodes_get(NULL, 0));
	ck_assert_int_eq(berth_leases_stale(NULL), 0);
}
END_TEST

/* Find the file of the loaded libberth shared object, if any. */
static int
find_libberth(struct dl_phdr_info *info, size_t size, void *arg)
{
	char	*out = arg;

	(void)size;
	if (info->dlpi_name != NULL && strstr(info->dlpi_name, "libberth") &&
	    strstr(info->dlpi_name, ".so")) {
		snprintf(out, PATH_MAX, "%s", info->dlpi_name);
		return (1);
	}
	return (0);
}

/*
 * The shared object's soname, from its .dynamic section: its major number
 * is BERTH_API_VERSION (libberth(3) says how the two move together).
 */
static void
check_soname(const char *map, ElfW(Shdr) *sh, size_t nsh)
{
	ElfW(Dyn)	*dyn;
	const char	*soname = NULL;
	char		 want[64];
	size_t		 i, j;

	for (i = 0; i < nsh; i++) {
		if (sh[i].sh_type != SHT_DYNAMIC)
			continue;
		dyn = (ElfW(Dyn) *)(map + sh[i].sh_offset);
		for (j = 0; j < sh[i].sh_size / sizeof *dyn; j++)
			if (dyn[j].d_tag == DT_SONAME)
				soname = map + sh[sh[i].sh_link].sh_offset +
				    dyn[j].d_un.d_val;
	}
	ck_assert_msg(soname != NULL, "libberth has no soname");
	snprintf(want, sizeof want, "libberth.so.%d", BERTH_API_VERSION);
	ck_assert_str_eq(soname, want);
}

/*
 * Only berth_* is exported: read the shared object's .dynsym and check
 * every defined global symbol, and its soname. Skipped when libberth is
 * linked statically.
 */
START_TEST(test_exports)
{
	static const char	*linker[] = { "_init", "_fini", "_edata",
	    "_end", "__bss_start" };
	ElfW(Ehdr)		*eh;
	ElfW(Shdr)		*sh, *dyn, *str;
	ElfW(Sym)		*sym;
	struct stat		 sb;
	char			 path[PATH_MAX], *map, bad[1024];
	const char		*name;
	size_t			 i, j, nsym, nberth = 0;
	int			 fd, ok;

	path[0] = '\0';
	if (dl_iterate_phdr(find_libberth, path) == 0 || path[0] == '\0') {
		fprintf(stderr, "test_exports: libberth is not a shared "
		    "object here; skipped\n");
		return;
	}
	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s", path);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	map = malloc(sb.st_size);
	ck_assert_ptr_nonnull(map);
	ck_assert_int_eq(pread(fd, map, sb.st_size, 0), sb.st_size);
	close(fd);
	eh = (ElfW(Ehdr) *)map;
	ck_assert(memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0);
	sh = (ElfW(Shdr) *)(map + eh->e_shoff);
	dyn = NULL;
	for (i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_type == SHT_DYNSYM)
			dyn = &sh[i];
	ck_assert_ptr_nonnull(dyn);
	str = &sh[dyn->sh_link];
	sym = (ElfW(Sym) *)(map + dyn->sh_offset);
	nsym = dyn->sh_size / sizeof *sym;
	bad[0] = '\0';
	for (i = 0; i < nsym; i++) {
		if (sym[i].st_shndx == SHN_UNDEF)
			continue;
		if (ELF64_ST_BIND(sym[i].st_info) != STB_GLOBAL &&
		    ELF64_ST_BIND(sym[i].st_info) != STB_WEAK)
			continue;
		if (ELF64_ST_VISIBILITY(sym[i].st_other) != STV_DEFAULT &&
		    ELF64_ST_VISIBILITY(sym[i].st_other) != STV_PROTECTED)
			continue;
		name = map + str->sh_offset + sym[i].st_name;
		if (strncmp(name, "berth_", 6) == 0) {
			nberth++;
			continue;
		}
		ok = 0;
		for (j = 0; j < sizeof linker / sizeof linker[0]; j++)
			if (strcmp(name, linker[j]) == 0)
				ok = 1;
		if (!ok && strlen(bad) + strlen(name) + 2 < sizeof bad) {
			strcat(bad, " ");
			strcat(bad, name);
		}
	}
	check_soname(map, sh, eh->e_shnum);
	free(map);
	ck_assert_msg(bad[0] == '\0', "%s exports non-berth_ symbols:%s",
	    path, bad);
	ck_assert_uint_ge(nberth, 15);
}
END_TEST

static Suite *
libberth_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("libberth");

	tc = tcase_create("offline");
	tcase_add_test(tc, test_strerror_version);
	tcase_add_test(tc, test_exports);
	suite_add_tcase(s, tc);

	tc = tcase_create("calls");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_env);
	tcase_add_test(tc, test_open_bad);
	tcase_add_test(tc, test_open_localhost);
	tcase_add_test(tc, test_acquire_fields);
	tcase_add_test(tc, test_acquire_defaults);
	tcase_add_test(tc, test_acquire_opts_refused);
	tcase_add_test(tc, test_lookup);
	tcase_add_test(tc, test_lookup_wait);
	tcase_add_test(tc, test_lookup_ready);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_list_watch);
	tcase_add_test(tc, test_renew);
	tcase_add_test(tc, test_release);
	tcase_add_test(tc, test_revoke_tcp);
	tcase_add_test(tc, test_unix_socket);
	tcase_add_test(tc, test_invalid_name_no_request);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("cluster");
	tcase_add_test(tc, test_cluster_lookup);
	tcase_add_test(tc, test_cluster_list);
	tcase_add_test(tc, test_cluster_nodes);
	tcase_add_test(tc, test_cluster_disabled);
	tcase_add_test(tc, test_cluster_status);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("connection");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_keepalive);
	tcase_add_test(tc, test_reconnect_after_restart);
	tcase_add_test(tc, test_unreachable);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_status_health);
	tcase_add_test(tc, test_status_not_berthd);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	atexit(daemon_cleanup);
	sr = srunner_create(libberth_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
