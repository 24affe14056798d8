/*
 * sockets.c: who holds a port on this host. The kernel lists every socket
 * of our network namespace in /proc/net/{tcp,tcp6,udp,udp6} with its local
 * address, state and inode; the process behind an inode is found by
 * reading the "socket:[INODE]" links under /proc/PID/fd. That scan is the
 * expensive part, so it is done at most once per call and only for the
 * inodes asked about. Processes of other users (without privilege) and of
 * other PID namespaces stay invisible: their sockets get pid 0.
 */
#include "config.h"

#include <sys/types.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Kernel TCP states (include/net/tcp_states.h) as /proc/net prints them. */
#define SOCK_ST_ESTABLISHED	0x01
#define SOCK_ST_TIME_WAIT	0x06
#define SOCK_ST_CLOSE		0x07
#define SOCK_ST_LISTEN		0x0a

/* One line of a /proc/net table. */
struct sock_entry {
	int		 proto;
	int		 v6;
	int		 state;
	uint16_t	 port;
	unsigned long	 inode;
	char		 local[64];
};

/* Called for each socket; returns nonzero to stop the scan. */
typedef int	(*sock_entry_fn)(const struct sock_entry *, void *);

static const struct sock_table {
	const char	*path;
	int		 proto;
	int		 v6;
} sock_tables[] = {
	{ "/proc/net/tcp",	SOCK_PROTO_TCP,	0 },
	{ "/proc/net/tcp6",	SOCK_PROTO_TCP,	1 },
	{ "/proc/net/udp",	SOCK_PROTO_UDP,	0 },
	{ "/proc/net/udp6",	SOCK_PROTO_UDP,	1 },
};

static const char *const sock_tcp_states[] = {
	"UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
	"FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
	"LISTEN", "CLOSING", "NEW_SYN_RECV"
};

/*
 * Turn the kernel's hex address into text. The kernel prints each 32-bit
 * word of the address as the number it is in memory, so reading a word
 * back with strtoul on the same host gives the same bytes.
 */
static int
sockets_addr(const char *hex, int v6, uint16_t port, char *out, size_t len)
{
	struct in6_addr	 a6;
	struct in_addr	 a4;
	uint32_t	 w[4];
	char		 word[9], text[INET6_ADDRSTRLEN];
	size_t		 i, nw = v6 ? 4 : 1;

	if (strlen(hex) != nw * 8)
		return (-1);
	for (i = 0; i < nw; i++) {
		memcpy(word, hex + i * 8, 8);
		word[8] = '\0';
		w[i] = (uint32_t)strtoul(word, NULL, 16);
	}
	if (v6) {
		memcpy(&a6, w, sizeof a6);
		if (inet_ntop(AF_INET6, &a6, text, sizeof text) == NULL)
			return (-1);
		snprintf(out, len, "[%s]:%u", text, port);
	} else {
		memcpy(&a4, w, sizeof a4);
		if (inet_ntop(AF_INET, &a4, text, sizeof text) == NULL)
			return (-1);
		snprintf(out, len, "%s:%u", text, port);
	}
	return (0);
}

/*
 * Parse one table line:
 *   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when
 *   retrnsmt   uid  timeout inode ...
 * Only the port is decoded unless want_addr is set.
 */
static int
sockets_parse(const char *line, const struct sock_table *t, int want_addr,
    struct sock_entry *e)
{
	char		 laddr[40];
	unsigned int	 lport, st;
	unsigned long	 inode;

	if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x "
	    "%*x:%*x %*x:%*x %*x %*u %*u %lu", laddr, &lport, &st,
	    &inode) != 4 || lport > 65535)
		return (-1);
	memset(e, 0, sizeof *e);
	e->proto = t->proto;
	e->v6 = t->v6;
	e->state = (int)st;
	e->port = (uint16_t)lport;
	e->inode = inode;
	if (want_addr && sockets_addr(laddr, t->v6, e->port, e->local,
	    sizeof e->local) == -1)
		snprintf(e->local, sizeof e->local, "?:%u", lport);
	return (0);
}

/*
 * Walk the tables of the protocols in mask (SOCK_PROTO_* bits), calling fn
 * for each socket. Missing tables (no IPv6) are skipped.
 */
static void
sockets_scan(int mask, int want_addr, sock_entry_fn fn, void *arg)
{
	const struct sock_table	*t;
	struct sock_entry	 e;
	FILE			*f;
	char			 line[512];
	size_t			 i;
	int			 stop = 0;

	for (i = 0; i < sizeof sock_tables / sizeof sock_tables[0] && !stop;
	    i++) {
		t = &sock_tables[i];
		if ((t->proto & mask) == 0)
			continue;
		if ((f = fopen(t->path, "re")) == NULL)
			continue;
		/* The first line is the column header. */
		if (fgets(line, sizeof line, f) != NULL) {
			while (!stop && fgets(line, sizeof line, f) != NULL) {
				if (sockets_parse(line, t, want_addr, &e) == 0)
					stop = fn(&e, arg);
			}
		}
		fclose(f);
	}
}

/* A socket counts as a server: a TCP listener or an unconnected UDP one. */
static int
sockets_is_listening(const struct sock_entry *e)
{
	if (e->proto == SOCK_PROTO_TCP)
		return (e->state == SOCK_ST_LISTEN);
	return (e->state == SOCK_ST_CLOSE);
}

static const char *
sockets_state_name(const struct sock_entry *e)
{
	if (e->proto == SOCK_PROTO_UDP) {
		/* UDP reuses TCP's numbers; name them as ss(8) does. */
		if (e->state == SOCK_ST_CLOSE)
			return ("UNCONN");
		if (e->state == SOCK_ST_ESTABLISHED)
			return ("ESTAB");
	}
	if (e->state >= 0 && (size_t)e->state <
	    sizeof sock_tcp_states / sizeof sock_tcp_states[0])
		return (sock_tcp_states[e->state]);
	return ("UNKNOWN");
}

/*
 * The command line of pid, NULs turned into spaces; a process without one
 * (a kernel thread, a zombie) is shown by its name in brackets.
 */
void
sockets_cmdline(pid_t pid, char *out, size_t len)
{
	char	 path[64];
	ssize_t	 n, i;
	int	 fd;

	out[0] = '\0';
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, out, len - 1);
		close(fd);
		if (n > 0) {
			while (n > 0 && out[n - 1] == '\0')
				n--;
			for (i = 0; i < n; i++) {
				if (out[i] == '\0' || out[i] == '\n' ||
				    out[i] == '\t')
					out[i] = ' ';
			}
			out[n] = '\0';
			if (n > 0)
				return;
		}
	}
	snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		char	comm[32];

		n = read(fd, comm, sizeof comm - 1);
		close(fd);
		if (n > 0) {
			comm[n] = '\0';
			comm[strcspn(comm, "\n")] = '\0';
			snprintf(out, len, "[%s]", comm);
		}
	}
}

static int
sockets_cmp_inode(const void *a, const void *b)
{
	unsigned long	x = *(const unsigned long *)a;
	unsigned long	y = *(const unsigned long *)b;

	return (x < y ? -1 : x > y);
}

/* "socket:[12345]" -> 12345, else 0. */
static unsigned long
sockets_link_inode(const char *link)
{
	char		*end;
	unsigned long	 v;

	if (strncmp(link, "socket:[", 8) != 0)
		return (0);
	v = strtoul(link + 8, &end, 10);
	if (*end != ']')
		return (0);
	return (v);
}

/*
 * Fill pids[i] with the process holding inodes[i] (sorted, nonzero), by one
 * pass over /proc/PID/fd that stops as soon as every inode is placed. A
 * socket shared after fork goes to the first process found, which is
 * usually the parent (lower pid).
 */
static void
sockets_owners(const unsigned long *inodes, pid_t *pids, size_t n)
{
	DIR		*proc, *fds;
	struct dirent	*de, *fe;
	char		 path[PATH_MAX], link[64];
	unsigned long	 ino, *hit;
	size_t		 left = n;
	ssize_t		 len;
	pid_t		 pid;

	if (n == 0 || (proc = opendir("/proc")) == NULL)
		return;
	while (left > 0 && (de = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = (pid_t)strtol(de->d_name, NULL, 10);
		snprintf(path, sizeof path, "/proc/%s/fd", de->d_name);
		if ((fds = opendir(path)) == NULL)
			continue;	/* gone, or not ours to see */
		while (left > 0 && (fe = readdir(fds)) != NULL) {
			if (fe->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "/proc/%s/fd/%s",
			    de->d_name, fe->d_name);
			if ((len = readlink(path, link, sizeof link - 1)) <= 0)
				continue;
			link[len] = '\0';
			if ((ino = sockets_link_inode(link)) == 0)
				continue;
			hit = bsearch(&ino, inodes, n, sizeof *inodes,
			    sockets_cmp_inode);
			if (hit != NULL && pids[hit - inodes] == 0) {
				pids[hit - inodes] = pid;
				left--;
			}
		}
		closedir(fds);
	}
	closedir(proc);
}

struct sockets_find_ctx {
	uint16_t		 port;
	struct sock_holder	*arr;
	unsigned long		*inodes;	/* parallel to arr */
	size_t			 n, cap;
	int			 nomem;
};

static int
sockets_find_one(const struct sock_entry *e, void *arg)
{
	struct sockets_find_ctx	*ctx = arg;
	struct sock_holder	*h, *na;
	unsigned long		*ni;
	size_t			 cap;

	if (e->port != ctx->port)
		return (0);
	if (ctx->n == ctx->cap) {
		cap = ctx->cap == 0 ? 8 : ctx->cap * 2;
		if ((na = reallocarray(ctx->arr, cap, sizeof *na)) == NULL) {
			ctx->nomem = 1;
			return (1);
		}
		ctx->arr = na;
		if ((ni = reallocarray(ctx->inodes, cap, sizeof *ni)) == NULL) {
			ctx->nomem = 1;
			return (1);
		}
		ctx->inodes = ni;
		ctx->cap = cap;
	}
	h = &ctx->arr[ctx->n];
	memset(h, 0, sizeof *h);
	h->proto = e->proto;
	h->v6 = e->v6;
	h->listening = sockets_is_listening(e);
	snprintf(h->local, sizeof h->local, "%s", e->local);
	snprintf(h->state, sizeof h->state, "%s", sockets_state_name(e));
	ctx->inodes[ctx->n] = e->inode;
	ctx->n++;
	return (0);
}

/*
 * Every TCP and UDP socket of this network namespace whose local port is
 * port, listening or not, with the process holding it. *out is a malloc'd
 * array of *n holders (NULL when none). Returns 0, or -1 on no memory.
 */
int
sockets_find(uint16_t port, struct sock_holder **out, size_t *n)
{
	struct sockets_find_ctx	 ctx;
	unsigned long		*want = NULL;
	pid_t			*pids = NULL;
	size_t			 i, nwant = 0;
	unsigned long		*hit;

	*out = NULL;
	*n = 0;
	memset(&ctx, 0, sizeof ctx);
	ctx.port = port;
	sockets_scan(SOCK_PROTO_TCP | SOCK_PROTO_UDP, 1, sockets_find_one,
	    &ctx);
	if (ctx.nomem)
		goto nomem;

	/* The distinct nonzero inodes (TIME_WAIT sockets have none). */
	if (ctx.n > 0) {
		if ((want = calloc(ctx.n, sizeof *want)) == NULL ||
		    (pids = calloc(ctx.n, sizeof *pids)) == NULL)
			goto nomem;
		for (i = 0; i < ctx.n; i++) {
			if (ctx.inodes[i] != 0)
				want[nwant++] = ctx.inodes[i];
		}
		qsort(want, nwant, sizeof *want, sockets_cmp_inode);
		for (i = 0; i + 1 < nwant; i++) {
			if (want[i] == want[i + 1]) {
				memmove(&want[i], &want[i + 1],
				    (nwant - i - 1) * sizeof *want);
				nwant--;
				i--;
			}
		}
		sockets_owners(want, pids, nwant);
		for (i = 0; i < ctx.n; i++) {
			if (ctx.inodes[i] == 0)
				continue;
			hit = bsearch(&ctx.inodes[i], want, nwant,
			    sizeof *want, sockets_cmp_inode);
			if (hit == NULL || pids[hit - want] == 0)
				continue;
			ctx.arr[i].pid = pids[hit - want];
			sockets_cmdline(ctx.arr[i].pid, ctx.arr[i].cmd,
			    sizeof ctx.arr[i].cmd);
		}
	}
	free(want);
	free(pids);
	free(ctx.inodes);
	*out = ctx.arr;
	*n = ctx.n;
	return (0);
nomem:
	free(want);
	free(pids);
	free(ctx.inodes);
	free(ctx.arr);
	return (-1);
}

struct sockets_listening_ctx {
	uint16_t	port;
	int		mask;
	int		found;
};

static int
sockets_listening_one(const struct sock_entry *e, void *arg)
{
	struct sockets_listening_ctx	*ctx = arg;

	if (e->port == ctx->port && (e->proto & ctx->mask) != 0 &&
	    sockets_is_listening(e))
		ctx->found = 1;
	return (ctx->found);
}

/*
 * 1 if a server holds port: a TCP listener for SOCK_PROTO_TCP, a bound
 * unconnected UDP socket for SOCK_PROTO_UDP (proto may be both bits: any
 * of them counts). Reads only /proc/net, never /proc/PID.
 */
int
sockets_listening(uint16_t port, int proto)
{
	struct sockets_listening_ctx	ctx = { port, proto, 0 };

	sockets_scan(proto, 0, sockets_listening_one, &ctx);
	return (ctx.found);
}

struct sockets_bound_ctx {
	uint8_t	*map;
	size_t	 count;
};

static int
sockets_bound_one(const struct sock_entry *e, void *arg)
{
	struct sockets_bound_ctx	*ctx = arg;

	/* A TIME_WAIT leftover belongs to no process and binds nothing. */
	if (e->port == 0 || (e->proto == SOCK_PROTO_TCP &&
	    e->state == SOCK_ST_TIME_WAIT))
		return (0);
	if (ctx->map[e->port] == 0) {
		ctx->map[e->port] = 1;
		ctx->count++;
	}
	return (0);
}

/*
 * Mark map[port] = 1 (map has 65536 entries) for every port a socket of
 * this namespace is bound to: listeners, UDP sockets and the local ends of
 * connections. Returns how many entries this call changed from 0 to 1.
 */
size_t
sockets_bound_ports(uint8_t *map)
{
	struct sockets_bound_ctx	ctx = { map, 0 };

	sockets_scan(SOCK_PROTO_TCP | SOCK_PROTO_UDP, 0, sockets_bound_one,
	    &ctx);
	return (ctx.count);
}
