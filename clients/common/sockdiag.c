/*
 * sockdiag.c: the kernel's socket tables of this network namespace, for
 * berthd (is a port in use, is a lease's service listening, who is on the
 * other end of a connection) and the CLI (who holds a port).
 *
 * sock_diag netlink first: the kernel filters on the port itself, and a
 * dump of TCP listeners walks only the listening hash, so a question
 * about one port costs little whatever else the host runs. Where netlink
 * is not to be had (some containers, seccomp), /proc/net/{tcp,udp}{,6}
 * say the same, more slowly. A table a host without IPv6 lacks is empty.
 *
 * The process behind a socket is found by its inode in the
 * "socket:[INODE]" links under /proc/PID/fd (sockdiag_holders).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* Tests: read /proc/net even where netlink answers. */
static int	sockdiag_proc_only;

void
sockdiag_set_proc_only(int yes)
{
	sockdiag_proc_only = yes;
}

/* What a walk asked for, and what it passes on. */
struct sockdiag_query {
	int		 protocol;
	uint32_t	 states;
	uint16_t	 port;
	sockdiag_fn	 fn;
	void		*arg;
	int		 stop;
};

static int
sockdiag_netlink(void)
{
	return (socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
	    NETLINK_SOCK_DIAG));
}

/* One inet_diag answer as a struct sockdiag_sock. */
static void
sockdiag_from_msg(const struct inet_diag_msg *m, int protocol,
    struct sockdiag_sock *s)
{
	memset(s, 0, sizeof *s);
	s->family = m->idiag_family;
	s->protocol = protocol;
	s->state = m->idiag_state;
	s->port = ntohs(m->id.idiag_sport);
	memcpy(s->addr, m->id.idiag_src,
	    m->idiag_family == AF_INET ? 4 : 16);
	s->uid = m->idiag_uid;
	s->inode = m->idiag_inode;
}

/*
 * One family's dump over netlink: 0 done (or stopped), -1 the kernel
 * would not say (errno set).
 */
static int
sockdiag_dump(struct sockdiag_query *q, int family)
{
	struct {
		struct nlmsghdr		nlh;
		struct inet_diag_req_v2	req;
	}			 msg;
	struct sockaddr_nl	 sa;
	struct nlmsghdr		*h;
	struct nlmsgerr		*ne;
	struct sockdiag_sock	 s;
	uint32_t		 buf[8192];
	ssize_t			 n;
	int			 fd, len;

	if ((fd = sockdiag_netlink()) == -1)
		return (-1);
	memset(&sa, 0, sizeof sa);
	sa.nl_family = AF_NETLINK;
	memset(&msg, 0, sizeof msg);
	msg.nlh.nlmsg_len = sizeof msg;
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	msg.req.sdiag_family = (uint8_t)family;
	msg.req.sdiag_protocol = (uint8_t)q->protocol;
	msg.req.idiag_states = q->states;
	msg.req.id.idiag_sport = htons(q->port);
	msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&sa,
	    sizeof sa) == -1) {
		close(fd);
		return (-1);
	}
	for (;;) {
		if ((n = recv(fd, buf, sizeof buf, 0)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			close(fd);
			return (-1);
		}
		len = (int)n;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
		    h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				close(fd);
				return (0);
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				ne = NLMSG_DATA(h);
				errno = -ne->error;
				close(fd);
				return (-1);
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof
			    (struct inet_diag_msg)) || q->stop)
				continue;
			sockdiag_from_msg(NLMSG_DATA(h), q->protocol, &s);
			/* The kernel filtered on the port; older ones may not. */
			if (q->port != 0 && s.port != q->port)
				continue;
			q->stop = q->fn(&s, q->arg);
		}
	}
}

/*
 * A /proc/net address: each 32-bit word printed as the number it is in
 * memory, so reading a word back with strtoul on the same host gives the
 * same bytes.
 */
static int
sockdiag_proc_addr(const char *hex, int family, unsigned char *addr)
{
	uint32_t	 w[4];
	char		 word[9];
	size_t		 i, nw = family == AF_INET6 ? 4 : 1;

	if (strlen(hex) != nw * 8)
		return (-1);
	for (i = 0; i < nw; i++) {
		memcpy(word, hex + i * 8, 8);
		word[8] = '\0';
		w[i] = (uint32_t)strtoul(word, NULL, 16);
	}
	memcpy(addr, w, nw * 4);
	return (0);
}

/*
 * The same walk over /proc/net/FILE. A line is
 *   sl local_address rem_address st tx_queue:rx_queue tr:tm->when
 *   retrnsmt uid timeout inode ...
 * The kernel lists TCP listeners before any other socket, so a walk of
 * listeners only stops at the first socket that is not one: tens of
 * thousands of connections in the file then cost nothing.
 */
static int
sockdiag_proc(struct sockdiag_query *q, int family)
{
	struct sockdiag_sock	 s;
	char			 path[64], line[512], laddr[40];
	const char		*base;
	FILE			*f;
	unsigned int		 lport, st, uid;
	unsigned long		 inode;
	int			 tcp = q->protocol == IPPROTO_TCP;
	int			 listen_only = tcp &&
				    q->states == 1U << SOCKDIAG_TCP_LISTEN;

	base = tcp ? "tcp" : "udp";
	snprintf(path, sizeof path, "/proc/net/%s%s", base,
	    family == AF_INET6 ? "6" : "");
	if ((f = fopen(path, "re")) == NULL)
		return (-1);
	if (fgets(line, sizeof line, f) == NULL) {	/* the heading */
		fclose(f);
		return (-1);
	}
	while (!q->stop && fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x "
		    "%x %*x:%*x %*x:%*x %*x %u %*u %lu", laddr, &lport, &st,
		    &uid, &inode) != 5 || lport > 65535 || st > 31)
			continue;
		if (listen_only && st != SOCKDIAG_TCP_LISTEN)
			break;
		if ((q->port != 0 && lport != q->port) ||
		    (tcp && (q->states & (1U << st)) == 0))
			continue;
		memset(&s, 0, sizeof s);
		if (sockdiag_proc_addr(laddr, family, s.addr) == -1)
			continue;
		s.family = family;
		s.protocol = q->protocol;
		s.state = (int)st;
		s.port = (uint16_t)lport;
		s.uid = uid;
		s.inode = inode;
		q->stop = q->fn(&s, q->arg);
	}
	fclose(f);
	return (0);
}

/*
 * Call fn for each socket of protocol (IPPROTO_TCP or IPPROTO_UDP), IPv4
 * then IPv6, on local port port (0: every port), whose TCP state is in
 * states (a mask of 1 << state; UDP sockets are in state 7, unconnected,
 * or 1, connected). fn returning non-zero stops the walk. 0, or -1 when
 * a table could be read neither way.
 */
int
sockdiag_walk(int protocol, uint32_t states, uint16_t port, sockdiag_fn fn,
    void *arg)
{
	const int		families[2] = { AF_INET, AF_INET6 };
	struct sockdiag_query	q;
	size_t			i;

	memset(&q, 0, sizeof q);
	q.protocol = protocol;
	q.states = states;
	q.port = port;
	q.fn = fn;
	q.arg = arg;
	for (i = 0; i < 2 && !q.stop; i++) {
		if (!sockdiag_proc_only && sockdiag_dump(&q, families[i]) == 0)
			continue;
		if (q.stop)		/* stopped by fn midway: done */
			break;
		if (sockdiag_proc(&q, families[i]) == -1 &&
		    !(families[i] == AF_INET6 && errno == ENOENT))
			return (-1);
	}
	return (0);
}

/*
 * The socket of protocol whose local end is (src, sport) and remote end
 * (dst, dport), addresses of family's size, looked up by the kernel in its
 * hash (no dump). With dst unspecified and dport 0, TCP finds the listener
 * that would take a connection to (src, sport): one on src or a wildcard.
 * 0 and *s filled, or -1 (none, or the kernel would not say).
 */
int
sockdiag_find(int family, int protocol, const void *src, uint16_t sport,
    const void *dst, uint16_t dport, struct sockdiag_sock *s)
{
	struct {
		struct nlmsghdr		nlh;
		struct inet_diag_req_v2	r;
	}			 q;
	union {
		struct nlmsghdr	nlh;
		char		buf[1024];
	}			 a;
	size_t			 alen = family == AF_INET ? 4 : 16;
	ssize_t			 n;
	int			 fd, rc = -1;

	memset(&q, 0, sizeof q);
	q.nlh.nlmsg_len = sizeof q;
	q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nlh.nlmsg_flags = NLM_F_REQUEST;
	q.r.sdiag_family = (uint8_t)family;
	q.r.sdiag_protocol = (uint8_t)protocol;
	q.r.idiag_states = ~0U;
	q.r.id.idiag_sport = htons(sport);
	q.r.id.idiag_dport = htons(dport);
	memcpy(q.r.id.idiag_src, src, alen);
	if (dst != NULL)
		memcpy(q.r.id.idiag_dst, dst, alen);
	q.r.id.idiag_cookie[0] = q.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if ((fd = sockdiag_netlink()) == -1)
		return (-1);
	if (send(fd, &q, sizeof q, 0) == (ssize_t)sizeof q &&
	    (n = recv(fd, &a, sizeof a, 0)) >= (ssize_t)sizeof a.nlh &&
	    NLMSG_OK(&a.nlh, (size_t)n) &&
	    a.nlh.nlmsg_type == SOCK_DIAG_BY_FAMILY &&
	    a.nlh.nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
		sockdiag_from_msg(NLMSG_DATA(&a.nlh), protocol, s);
		rc = 0;
	}
	close(fd);
	return (rc);
}

static int
sockdiag_cmp_inode(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a;
	uint64_t	y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/* "socket:[12345]" -> 12345, else 0. */
static uint64_t
sockdiag_link_inode(const char *link)
{
	char			*end;
	unsigned long long	 v;

	if (strncmp(link, "socket:[", 8) != 0)
		return (0);
	v = strtoull(link + 8, &end, 10);
	return (*end == ']' ? (uint64_t)v : 0);
}

/*
 * Does /proc/PID/fd (pid's directory name) hold one of inodes (sorted,
 * nonzero) not placed yet? Places what it finds; returns how many.
 */
static size_t
sockdiag_scan_fds(const char *pid, const uint64_t *inodes, pid_t *pids,
    size_t n)
{
	DIR		*fds;
	struct dirent	*fe;
	char		 path[PATH_MAX], link[64];
	const uint64_t	*hit;
	uint64_t	 ino;
	ssize_t		 len;
	size_t		 placed = 0;

	snprintf(path, sizeof path, "/proc/%s/fd", pid);
	if ((fds = opendir(path)) == NULL)
		return (0);		/* gone, or not ours to see */
	while ((fe = readdir(fds)) != NULL) {
		if (fe->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%s/fd/%s", pid, fe->d_name);
		if ((len = readlink(path, link, sizeof link - 1)) <= 0)
			continue;
		link[len] = '\0';
		if ((ino = sockdiag_link_inode(link)) == 0)
			continue;
		hit = bsearch(&ino, inodes, n, sizeof *inodes,
		    sockdiag_cmp_inode);
		if (hit != NULL && pids[hit - inodes] == 0) {
			pids[hit - inodes] = (pid_t)strtol(pid, NULL, 10);
			placed++;
		}
	}
	closedir(fds);
	return (placed);
}

/*
 * Fill pids[i] with a process holding inodes[i] (sorted, nonzero), by one
 * pass over /proc/PID/fd that stops as soon as every inode is placed; 0
 * where none is found (gone, or another user's without privilege). A
 * socket shared after fork goes to the first process found, which is
 * usually the parent (lower pid).
 */
void
sockdiag_holders(const uint64_t *inodes, pid_t *pids, size_t n)
{
	DIR		*proc;
	struct dirent	*de;
	size_t		 left = n;

	if (n == 0)		/* pids may be NULL then */
		return;
	memset(pids, 0, n * sizeof *pids);
	if ((proc = opendir("/proc")) == NULL)
		return;
	while (left > 0 && (de = readdir(proc)) != NULL) {
		if (isdigit((unsigned char)de->d_name[0]))
			left -= sockdiag_scan_fds(de->d_name, inodes, pids,
			    n);
	}
	closedir(proc);
}

/* Sort inodes and drop repeats and zeros; returns how many are left. */
size_t
sockdiag_inodes_unique(uint64_t *inodes, size_t n)
{
	size_t	i, k = 0;

	if (n == 0)		/* inodes may be NULL then */
		return (0);
	qsort(inodes, n, sizeof *inodes, sockdiag_cmp_inode);
	for (i = 0; i < n; i++) {
		if (inodes[i] != 0 && (k == 0 || inodes[k - 1] != inodes[i]))
			inodes[k++] = inodes[i];
	}
	return (k);
}
