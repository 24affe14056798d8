/*
 * sockets.c: who holds a port on this host, as the CLI shows it. The
 * kernel's socket tables (sockdiag.c) give each socket's local address,
 * state and inode; the process behind an inode is found under
 * /proc/PID/fd. That scan is the expensive part, so it is done at most
 * once per call and only for the inodes asked about. Processes of other users (without privilege) and of
 * other PID namespaces stay invisible: their sockets get pid 0.
 */
#include "config.h"

#include <sys/types.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* One socket, as the CLI shows it. */
struct sock_entry {
	int		 proto;
	int		 v6;
	int		 state;
	uint16_t	 port;
	uint64_t	 inode;
	char		 local[64];
};

/* Called for each socket; returns nonzero to stop the scan. */
typedef int	(*sock_entry_fn)(const struct sock_entry *, void *);

static const char *const sock_tcp_states[] = {
	"UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
	"FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
	"LISTEN", "CLOSING", "NEW_SYN_RECV"
};

struct sockets_scan_ctx {
	int		 proto;		/* SOCK_PROTO_* */
	int		 want_addr;
	sock_entry_fn	 fn;
	void		*arg;
};

static int
sockets_scan_one(const struct sockdiag_sock *s, void *arg)
{
	struct sockets_scan_ctx	*ctx = arg;
	struct sock_entry	 e;
	char			 text[INET6_ADDRSTRLEN];

	memset(&e, 0, sizeof e);
	e.proto = ctx->proto;
	e.v6 = s->family == AF_INET6;
	e.state = s->state;
	e.port = s->port;
	e.inode = s->inode;
	if (ctx->want_addr) {
		if (inet_ntop(s->family, s->addr, text, sizeof text) == NULL)
			snprintf(e.local, sizeof e.local, "?:%u", e.port);
		else
			snprintf(e.local, sizeof e.local, e.v6 ? "[%s]:%u" :
			    "%s:%u", text, e.port);
	}
	return (ctx->fn(&e, ctx->arg));
}

/*
 * Walk the sockets of the protocols in mask (SOCK_PROTO_* bits) on port
 * (0: every port), calling fn for each. Tables that cannot be read are
 * skipped.
 */
static void
sockets_scan(int mask, uint16_t port, int want_addr, sock_entry_fn fn,
    void *arg)
{
	struct sockets_scan_ctx	ctx = { 0, want_addr, fn, arg };

	/*
	 * A TCP socket that is only bound is left out, as ss(8) and
	 * /proc/net leave it out: newer kernels' sock_diag lists it, as
	 * CLOSE, when asked for state 13 (bound, inactive).
	 */
	if (mask & SOCK_PROTO_TCP) {
		ctx.proto = SOCK_PROTO_TCP;
		sockdiag_walk(IPPROTO_TCP, 0xfffU & ~(1U << SOCKDIAG_TCP_CLOSE),
		    port, sockets_scan_one, &ctx);
	}
	if (mask & SOCK_PROTO_UDP) {
		ctx.proto = SOCK_PROTO_UDP;
		sockdiag_walk(IPPROTO_UDP, ~0U, port, sockets_scan_one, &ctx);
	}
}

/* A socket counts as a server: a TCP listener or an unconnected UDP one. */
static int
sockets_is_listening(const struct sock_entry *e)
{
	if (e->proto == SOCK_PROTO_TCP)
		return (e->state == SOCKDIAG_TCP_LISTEN);
	return (e->state == SOCKDIAG_TCP_CLOSE);
}

static const char *
sockets_state_name(const struct sock_entry *e)
{
	if (e->proto == SOCK_PROTO_UDP) {
		/* UDP reuses TCP's numbers; name them as ss(8) does. */
		if (e->state == SOCKDIAG_TCP_CLOSE)
			return ("UNCONN");
		if (e->state == SOCKDIAG_TCP_ESTABLISHED)
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

struct sockets_find_ctx {
	struct sock_holder	*arr;
	uint64_t		*inodes;	/* parallel to arr */
	size_t			 n, cap;
	int			 nomem;
};

static int
sockets_find_one(const struct sock_entry *e, void *arg)
{
	struct sockets_find_ctx	*ctx = arg;
	struct sock_holder	*h, *na;
	uint64_t		*ni;
	size_t			 cap;

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
	uint64_t		*want = NULL;
	pid_t			*pids = NULL;
	size_t			 i, k, nwant;

	*out = NULL;
	*n = 0;
	memset(&ctx, 0, sizeof ctx);
	sockets_scan(SOCK_PROTO_TCP | SOCK_PROTO_UDP, port, 1,
	    sockets_find_one, &ctx);
	if (ctx.nomem)
		goto nomem;

	/* The distinct nonzero inodes (TIME_WAIT sockets have none). */
	if (ctx.n > 0) {
		if ((want = calloc(ctx.n, sizeof *want)) == NULL ||
		    (pids = calloc(ctx.n, sizeof *pids)) == NULL)
			goto nomem;
		memcpy(want, ctx.inodes, ctx.n * sizeof *want);
		nwant = sockdiag_inodes_unique(want, ctx.n);
		sockdiag_holders(want, pids, nwant);
		for (i = 0; i < ctx.n; i++) {
			for (k = 0; k < nwant && want[k] != ctx.inodes[i]; k++)
				;
			if (k == nwant || pids[k] == 0)
				continue;
			ctx.arr[i].pid = pids[k];
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
	    e->state == SOCKDIAG_TCP_TIME_WAIT))
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

	sockets_scan(SOCK_PROTO_TCP | SOCK_PROTO_UDP, 0, 0, sockets_bound_one,
	    &ctx);
	return (ctx.count);
}
