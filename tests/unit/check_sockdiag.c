/*
 * check_sockdiag.c: unit tests for sockdiag.c against this host's real
 * socket tables, over netlink and over /proc/net alike: a listener and a
 * bound UDP socket of this process are found by port, with their inode
 * and uid; a port nobody holds is not; the kernel's own lookup finds the
 * listener behind an address; and the inode leads back to this process.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "unit.h"

struct seen {
	uint16_t	port;
	int		count;
	int		state;
	uint64_t	inode;
	uint32_t	uid;
};

static int
note(const struct sockdiag_sock *s, void *arg)
{
	struct seen	*w = arg;

	ck_assert_uint_eq(s->port, w->port);
	w->count++;
	w->state = s->state;
	w->inode = s->inode;
	w->uid = s->uid;
	return (0);
}

/* A socket of type on 127.0.0.1, listening if TCP; its port. */
static int
open_local(int type, uint16_t *port, uint64_t *inode)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	struct stat		st;
	int			fd;

	fd = socket(AF_INET, type, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	if (type == SOCK_STREAM)
		ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	*port = ntohs(sin.sin_port);
	*inode = (uint64_t)st.st_ino;
	return (fd);
}

static void
walk_finds(int proc_only)
{
	struct seen	w;
	uint64_t	tcp_ino, udp_ino;
	uint16_t	tcp_port, udp_port;
	int		tfd, ufd;

	sockdiag_set_proc_only(proc_only);
	tfd = open_local(SOCK_STREAM, &tcp_port, &tcp_ino);
	ufd = open_local(SOCK_DGRAM, &udp_port, &udp_ino);

	memset(&w, 0, sizeof w);
	w.port = tcp_port;
	ck_assert_int_eq(sockdiag_walk(IPPROTO_TCP,
	    1U << SOCKDIAG_TCP_LISTEN, tcp_port, note, &w), 0);
	ck_assert_int_eq(w.count, 1);
	ck_assert_int_eq(w.state, SOCKDIAG_TCP_LISTEN);
	ck_assert_uint_eq(w.inode, tcp_ino);
	ck_assert_uint_eq(w.uid, geteuid());

	memset(&w, 0, sizeof w);
	w.port = udp_port;
	ck_assert_int_eq(sockdiag_walk(IPPROTO_UDP, ~0U, udp_port, note, &w),
	    0);
	ck_assert_int_eq(w.count, 1);
	ck_assert_int_eq(w.state, SOCKDIAG_TCP_CLOSE);
	ck_assert_uint_eq(w.inode, udp_ino);

	/* Closed: gone from the tables. */
	close(tfd);
	close(ufd);
	memset(&w, 0, sizeof w);
	w.port = tcp_port;
	ck_assert_int_eq(sockdiag_walk(IPPROTO_TCP,
	    1U << SOCKDIAG_TCP_LISTEN, tcp_port, note, &w), 0);
	ck_assert_int_eq(w.count, 0);
	sockdiag_set_proc_only(0);
}

START_TEST(test_walk_netlink)
{
	walk_finds(0);
}
END_TEST

START_TEST(test_walk_proc)
{
	walk_finds(1);
}
END_TEST

static int
stop_at_first(const struct sockdiag_sock *s, void *arg)
{
	(void)s;
	(*(int *)arg)++;
	return (1);
}

/* A callback's non-zero ends the walk: one call, however many sockets. */
START_TEST(test_walk_stops)
{
	uint64_t	ino;
	uint16_t	port;
	int		fds[3], i, calls = 0;

	for (i = 0; i < 3; i++)
		fds[i] = open_local(SOCK_STREAM, &port, &ino);
	sockdiag_set_proc_only(_i);
	ck_assert_int_eq(sockdiag_walk(IPPROTO_TCP, 1U << SOCKDIAG_TCP_LISTEN,
	    0, stop_at_first, &calls), 0);
	ck_assert_int_eq(calls, 1);
	sockdiag_set_proc_only(0);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}
END_TEST

/* The kernel finds the listener that takes connections to an address. */
START_TEST(test_find_listener)
{
	struct sockdiag_sock	s;
	struct in_addr		lo = { htonl(INADDR_LOOPBACK) };
	struct in_addr		other = { htonl(INADDR_LOOPBACK + 1) };
	uint64_t		ino;
	uint16_t		port;
	int			fd;

	fd = open_local(SOCK_STREAM, &port, &ino);
	ck_assert_int_eq(sockdiag_find(AF_INET, IPPROTO_TCP, &lo, port, NULL,
	    0, &s), 0);
	ck_assert_int_eq(s.state, SOCKDIAG_TCP_LISTEN);
	ck_assert_uint_eq(s.inode, ino);
	/* Bound to 127.0.0.1 only: 127.0.0.2 has no listener there. */
	ck_assert_int_eq(sockdiag_find(AF_INET, IPPROTO_TCP, &other, port,
	    NULL, 0, &s), -1);
	close(fd);
	ck_assert_int_eq(sockdiag_find(AF_INET, IPPROTO_TCP, &lo, port, NULL,
	    0, &s), -1);
}
END_TEST

/* From inodes to processes: ours is found, an unknown one is not. */
START_TEST(test_holders)
{
	uint64_t	inodes[4];
	pid_t		pids[4];
	uint16_t	port;
	size_t		n;
	int		fd;

	fd = open_local(SOCK_STREAM, &port, &inodes[0]);
	inodes[1] = inodes[0];
	inodes[2] = 0;
	inodes[3] = UINT64_MAX;
	n = sockdiag_inodes_unique(inodes, 4);
	ck_assert_uint_eq(n, 2);
	sockdiag_holders(inodes, pids, n);
	ck_assert_int_eq(pids[0], getpid());
	ck_assert_int_eq(pids[1], 0);
	close(fd);
}
END_TEST

/* Nothing to look for: nothing touched (no array need exist). */
START_TEST(test_holders_of_nothing)
{
	ck_assert_uint_eq(sockdiag_inodes_unique(NULL, 0), 0);
	sockdiag_holders(NULL, NULL, 0);
}
END_TEST

static Suite *
sockdiag_suite(void)
{
	Suite	*s = suite_create("sockdiag");
	TCase	*tc = tcase_create("tables");

	tcase_add_test(tc, test_walk_netlink);
	tcase_add_test(tc, test_walk_proc);
	tcase_add_loop_test(tc, test_walk_stops, 0, 2);
	tcase_add_test(tc, test_find_listener);
	tcase_add_test(tc, test_holders);
	tcase_add_test(tc, test_holders_of_nothing);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(sockdiag_suite()));
}
