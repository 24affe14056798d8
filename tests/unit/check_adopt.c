/*
 * check_adopt.c: unit tests for adopt.c, adopting a running service. Over
 * a fake process table and fake socket tables (struct adopt_sys): who
 * descends from whom, the parent read out of a /proc/PID/stat line, and
 * which acquires adopt_port grants and what it says when it does not;
 * then once over this host's real tables, with a listener of this process.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "unit.h"

/*
 * The fake process table: init; a shell that started postgres, whose
 * worker it started; an unrelated process; two processes that name each
 * other as parent (the kernel never shows that, the walk must end anyway).
 */
static const struct fake_proc {
	pid_t		 pid;
	pid_t		 ppid;
	const char	*comm;
} procs[] = {
	{ 1, 0, "init" },
	{ 10, 1, "sh" },
	{ 11, 10, "postgres" },
	{ 12, 11, "postgres" },
	{ 20, 1, "other" },
	{ 30, 31, "loop" },
	{ 31, 30, "loop" },
};

/* The fake socket tables: who holds each socket on a port (0: unseen). */
#define HELD_MAX	3
static const struct fake_port {
	int		 protocol;
	uint16_t	 port;
	size_t		 n;
	pid_t		 pids[HELD_MAX];
} ports[] = {
	{ IPPROTO_TCP, 5432, 1, { 12 } },
	{ IPPROTO_TCP, 53, 1, { 11 } },
	{ IPPROTO_UDP, 53, 1, { 11 } },
	{ IPPROTO_TCP, 6000, 2, { 11, 20 } },	/* SO_REUSEPORT, two users */
	{ IPPROTO_TCP, 7000, 1, { 0 } },
	{ IPPROTO_TCP, 7001, 2, { 11, 0 } },
};
#define BROKEN_PORT	9000	/* its tables cannot be read */

static int	 holder_calls;

static int
fake_holders(int protocol, uint16_t port, pid_t **pids, size_t *n)
{
	size_t	i;

	holder_calls++;
	*pids = NULL;
	*n = 0;
	if (port == BROKEN_PORT)
		return (-1);
	for (i = 0; i < sizeof ports / sizeof ports[0]; i++) {
		if (ports[i].protocol != protocol || ports[i].port != port)
			continue;
		*pids = calloc(HELD_MAX, sizeof **pids);
		ck_assert_ptr_nonnull(*pids);
		memcpy(*pids, ports[i].pids, sizeof ports[i].pids);
		*n = ports[i].n;
	}
	return (0);
}

static const struct fake_proc *
fake_find(pid_t pid)
{
	size_t	i;

	for (i = 0; i < sizeof procs / sizeof procs[0]; i++)
		if (procs[i].pid == pid)
			return (&procs[i]);
	return (NULL);
}

static int
fake_ppid(pid_t pid, pid_t *ppid)
{
	const struct fake_proc	*p;

	if ((p = fake_find(pid)) == NULL)
		return (-1);
	*ppid = p->ppid;
	return (0);
}

static void
fake_comm(pid_t pid, char *buf, size_t len)
{
	const struct fake_proc	*p = fake_find(pid);

	snprintf(buf, len, "%s", p != NULL ? p->comm : "?");
}

static const struct adopt_sys fake_sys = {
	fake_holders, fake_ppid, fake_comm
};

static void
fake_setup(void)
{
	holder_calls = 0;
	adopt_set_sys(&fake_sys);
}

static void
fake_teardown(void)
{
	adopt_set_sys(NULL);
}

/* adopt_port must refuse, with port_unavailable and a message saying want. */
static void
refused(uint16_t port, int proto, pid_t pid, const char *want)
{
	struct berr	e;

	memset(&e, 0, sizeof e);
	ck_assert_msg(adopt_port(port, proto, pid, &e) == -1,
	    "port %u proto %d pid %ld adopted", port, proto, (long)pid);
	ck_assert_int_eq(e.code, BERR_PORT_UNAVAILABLE);
	ck_assert_msg(strstr(e.message, want) != NULL, "port %u pid %ld: "
	    "\"%s\" lacks \"%s\"", port, (long)pid, e.message, want);
}

static void
adopted(uint16_t port, int proto, pid_t pid)
{
	struct berr	e;

	memset(&e, 0, sizeof e);
	ck_assert_msg(adopt_port(port, proto, pid, &e) == 0,
	    "port %u proto %d pid %ld: %s", port, proto, (long)pid,
	    e.message);
}

/* What adopt_port says to an acquire over the fake tables; NULL: granted. */
static const struct adopt_case {
	uint16_t	 port;
	int		 proto;
	pid_t		 pid;
	const char	*want;
} cases[] = {
	/* The holder, its parent and its grandparent may register it. */
	{ 5432, PROTO_TCP, 12, NULL },
	{ 5432, PROTO_TCP, 11, NULL },
	{ 5432, PROTO_TCP, 10, NULL },
	{ 53, PROTO_UDP, 10, NULL },
	{ 53, PROTO_BOTH, 11, NULL },
	{ 6000, PROTO_TCP, 1, NULL },	/* both holders are init's */
	/* Anyone else is told who holds the port. */
	{ 5432, PROTO_TCP, 20, "port 5432 is in use by pid 12 (postgres), "
	    "not by pid 20 or its children" },
	{ 5432, PROTO_TCP, 99, "pid 12 (postgres), not by pid 99" },
	{ 53, PROTO_UDP, 12, "pid 11 (postgres), not by pid 12" },
	/* Every socket on the port counts, not only the first. */
	{ 6000, PROTO_TCP, 11, "pid 20 (other), not by pid 11" },
	{ 6000, PROTO_TCP, 20, "pid 11 (postgres), not by pid 20" },
	/* proto both: each protocol held, by the owner's tree. */
	{ 5432, PROTO_BOTH, 11, "no socket is bound to port 5432/udp: for "
	    "proto both" },
	{ 53, PROTO_BOTH, 20, "port 53/tcp is in use by pid 11" },
	/* A holder berthd cannot see is said to be one... */
	{ 7000, PROTO_TCP, 11, "in use by a process berthd cannot see" },
	{ 7001, PROTO_TCP, 11, "cannot see" },
	/* ...but one it can see that is no descendant is named first. */
	{ 7001, PROTO_TCP, 20, "pid 11 (postgres), not by pid 20" },
	/* In use, yet no listener (a connection holds a pool port). */
	{ 8000, PROTO_TCP, 11, "no socket listens on port 8000, so" },
	{ 8000, PROTO_UDP, 11, "no socket is bound to port 8000, so" },
	{ BROKEN_PORT, PROTO_TCP, 11, "cannot read the kernel's socket "
	    "tables" },
	/* No pid: how to register what holds the port. */
	{ 5432, PROTO_TCP, 0, "port 5432 is in use by another process" },
	{ 5432, PROTO_TCP, 0, "--pid" },
	{ 5432, PROTO_TCP, 0, "berth who 5432" },
};

/* Down the tree only: a process, its children and theirs; never up. */
START_TEST(test_descends)
{
	ck_assert_int_eq(adopt_descends(11, 11), 1);
	ck_assert_int_eq(adopt_descends(12, 11), 1);
	ck_assert_int_eq(adopt_descends(12, 10), 1);
	ck_assert_int_eq(adopt_descends(12, 1), 1);
	ck_assert_int_eq(adopt_descends(10, 11), 0);	/* a parent */
	ck_assert_int_eq(adopt_descends(11, 12), 0);
	ck_assert_int_eq(adopt_descends(20, 10), 0);	/* a cousin */
	ck_assert_int_eq(adopt_descends(12, 20), 0);
	ck_assert_int_eq(adopt_descends(99, 10), 0);	/* gone */
	ck_assert_int_eq(adopt_descends(30, 10), 0);	/* a loop ends */
}
END_TEST

/* The parent is read after the command name, whatever that holds. */
START_TEST(test_stat_ppid)
{
	pid_t	ppid = -7;

	ck_assert_int_eq(adopt_stat_ppid("812 (postgres) S 1 812 812 0 -1 "
	    "4194560 2049 0 0 0 3 5 0 0 20 0 1 0 1880 222408704", &ppid), 0);
	ck_assert_int_eq(ppid, 1);
	ck_assert_int_eq(adopt_stat_ppid("77 (a) b) (c) R 42 77 1\n", &ppid),
	    0);
	ck_assert_int_eq(ppid, 42);
	ck_assert_int_eq(adopt_stat_ppid("1 (init) S 0 1 1", &ppid), 0);
	ck_assert_int_eq(ppid, 0);
	ppid = -7;
	ck_assert_int_eq(adopt_stat_ppid("77 no parens S 42", &ppid), -1);
	ck_assert_int_eq(adopt_stat_ppid("77 (cut)", &ppid), -1);
	ck_assert_int_eq(adopt_stat_ppid("77 (x) S", &ppid), -1);
	ck_assert_int_eq(adopt_stat_ppid("", &ppid), -1);
	ck_assert_int_eq(ppid, -7);
}
END_TEST

/* One row of cases; the tables are read only when a pid is given. */
START_TEST(test_case)
{
	const struct adopt_case	*c = &cases[_i];

	if (c->want == NULL)
		adopted(c->port, c->proto, c->pid);
	else
		refused(c->port, c->proto, c->pid, c->want);
	ck_assert_int_eq(holder_calls != 0, c->pid != 0);
}
END_TEST

/*
 * The real tables: this process's own listener, by its pid or an
 * ancestor's; a child of ours (started first, so it never shares the
 * socket, and ended by the pipe's closing with us) is no ancestor.
 */
START_TEST(test_real_listener)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof sin;
	pid_t			 child;
	char			 want[64], c;
	int			 fd, p[2], status;

	ck_assert_int_eq(adopt_descends(getpid(), getppid()), 1);
	ck_assert_int_eq(adopt_descends(getppid(), getpid()), 0);
	ck_assert_int_eq(pipe(p), 0);
	if ((child = fork()) == 0) {
		close(p[1]);
		while (read(p[0], &c, 1) == -1)
			;
		_exit(0);
	}
	ck_assert_int_gt(child, 0);
	close(p[0]);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	adopted(ntohs(sin.sin_port), PROTO_TCP, getpid());
	adopted(ntohs(sin.sin_port), PROTO_TCP, getppid());
	snprintf(want, sizeof want, "in use by pid %ld (", (long)getpid());
	refused(ntohs(sin.sin_port), PROTO_TCP, child, want);
	close(p[1]);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	close(fd);
}
END_TEST

static Suite *
adopt_suite(void)
{
	Suite	*s = suite_create("adopt");
	TCase	*tc;

	tc = tcase_create("fake");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_add_test(tc, test_descends);
	tcase_add_test(tc, test_stat_ppid);
	tcase_add_loop_test(tc, test_case, 0, sizeof cases / sizeof cases[0]);
	suite_add_tcase(s, tc);

	tc = tcase_create("real");
	tcase_add_test(tc, test_real_listener);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	log_init(LOG_LVL_ERROR, NULL);
	return (unit_run(adopt_suite()));
}
