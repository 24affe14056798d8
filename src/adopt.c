/*
 * adopt.c: adopting a running service (docs/api.md, POST /v1/services).
 *
 * An acquire that names a port already in use is granted when the
 * process that holds the port (listens on it over TCP, has it bound over
 * UDP) is the lease's owner pid or a descendant of it: a service that did
 * not get its port from berthd (postgres on 5432) is registered by its
 * pid, or by the pid of whatever started it. Anyone else gets
 * port_unavailable, told who holds the port when berthd can see it.
 *
 * Only this rare call pays for it: the sockets on the port come from
 * sockdiag_walk (filtered by port), their holders from sockdiag_holders,
 * one pass over /proc/PID/fd, O(processes); each holder's ancestry is
 * then walked up by the parent links of /proc/PID/stat, which costs the
 * depth of the process tree, not its size. A socket shared after fork
 * counts for the process sockdiag_holders finds first (usually the
 * parent, which opened it).
 *
 * The kernel is reached through struct adopt_sys, so the unit tests can
 * put a fake process table and socket tables in its place.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define ADOPT_DEPTH_MAX		4096	/* parent links walked at most */

/* The sockets of one port and protocol, as sockdiag_walk finds them. */
struct adopt_inodes {
	uint64_t	*v;
	size_t		 n;
	size_t		 cap;
	int		 nomem;
};

static int	adopt_sys_holders(int, uint16_t, pid_t **, size_t *);
static int	adopt_sys_ppid(pid_t, pid_t *);

static const struct adopt_sys adopt_real = {
	adopt_sys_holders, adopt_sys_ppid, owner_comm
};
static const struct adopt_sys *adopt_sys = &adopt_real;

/* Tests: the kernel's tables faked; NULL puts the real ones back. */
void
adopt_set_sys(const struct adopt_sys *sys)
{
	adopt_sys = sys != NULL ? sys : &adopt_real;
}

static int
adopt_note_inode(const struct sockdiag_sock *s, void *arg)
{
	struct adopt_inodes	*in = arg;
	uint64_t		*v;
	size_t			 cap;

	if (in->n == in->cap) {
		cap = in->cap != 0 ? in->cap * 2 : 8;
		if ((v = reallocarray(in->v, cap, sizeof *v)) == NULL) {
			in->nomem = 1;
			return (1);
		}
		in->v = v;
		in->cap = cap;
	}
	in->v[in->n++] = s->inode;
	return (0);
}

/*
 * The real adopt_sys.holders: the pids holding each socket of protocol
 * (IPPROTO_TCP listeners, IPPROTO_UDP sockets in any state) on port, 0
 * for one whose holder berthd cannot see. 0, or -1 with errno (ENOMEM,
 * or the tables could not be read).
 */
static int
adopt_sys_holders(int protocol, uint16_t port, pid_t **pids, size_t *n)
{
	struct adopt_inodes	in;
	uint32_t		states = protocol == IPPROTO_TCP ?
				    1U << SOCKDIAG_TCP_LISTEN : ~0U;

	memset(&in, 0, sizeof in);
	*pids = NULL;
	*n = 0;
	if (sockdiag_walk(protocol, states, port, adopt_note_inode,
	    &in) == -1 || in.nomem) {
		if (in.nomem)
			errno = ENOMEM;
		free(in.v);
		return (-1);
	}
	in.n = sockdiag_inodes_unique(in.v, in.n);
	if (in.n != 0 && (*pids = calloc(in.n, sizeof **pids)) == NULL) {
		free(in.v);
		errno = ENOMEM;
		return (-1);
	}
	sockdiag_holders(in.v, *pids, in.n);
	*n = in.n;
	free(in.v);
	return (0);
}

/*
 * The parent (field 4) in the text of /proc/PID/stat. The command name
 * before it is in parentheses and may hold spaces and parentheses itself,
 * so the fields are read from the last ')'. 0, or -1 if it is not there.
 */
int
adopt_stat_ppid(const char *stat, pid_t *ppid)
{
	const char	*p;
	char		 state;
	long		 v;

	if ((p = strrchr(stat, ')')) == NULL ||
	    sscanf(p + 1, " %c %ld", &state, &v) != 2 || v < 0)
		return (-1);
	*ppid = (pid_t)v;
	return (0);
}

/* The real adopt_sys.ppid: pid's parent; -1 if pid is gone. */
static int
adopt_sys_ppid(pid_t pid, pid_t *ppid)
{
	char	 path[64], line[1024];
	FILE	*f;
	int	 rc = -1;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return (-1);
	if (fgets(line, sizeof line, f) != NULL)
		rc = adopt_stat_ppid(line, ppid);
	fclose(f);
	return (rc);
}

/*
 * Is pid root itself or a descendant of it? Up from pid by parent links
 * until root, init (or a PID namespace's top, whose parent reads 0), or a
 * process that is gone.
 */
int
adopt_descends(pid_t pid, pid_t root)
{
	int	hops;

	for (hops = 0; hops < ADOPT_DEPTH_MAX; hops++) {
		if (pid == root)
			return (1);
		if (pid <= 1 || adopt_sys->ppid(pid, &pid) == -1)
			return (0);
	}
	return (0);
}

/*
 * One protocol of the port: every socket on it must be held by pid or a
 * descendant, and there must be one. tag is "/tcp" or "/udp" where the
 * lease asks for both, else "". 0, or -1 with e set.
 */
static int
adopt_proto(uint16_t port, int protocol, const char *tag, pid_t pid,
    struct berr *e)
{
	const char	*holds = protocol == IPPROTO_TCP ? "listens on" :
			    "is bound to";
	char		 comm[32];
	pid_t		*pids;
	size_t		 n, i, unseen = 0;
	int		 rc = -1;

	if (adopt_sys->holders(protocol, port, &pids, &n) == -1) {
		if (errno == ENOMEM)
			berr_set(e, BERR_NOMEM, "out of memory");
		else
			berr_set(e, BERR_PORT_UNAVAILABLE, "port %u%s is in "
			    "use, and berthd cannot read the kernel's socket "
			    "tables to see whether pid %ld holds it", port,
			    tag, (long)pid);
		return (-1);
	}
	for (i = 0; i < n; i++) {
		if (pids[i] == 0)
			unseen++;
		else if (!adopt_descends(pids[i], pid))
			break;
	}
	if (i < n) {
		adopt_sys->comm(pids[i], comm, sizeof comm);
		berr_set(e, BERR_PORT_UNAVAILABLE, "port %u%s is in use by pid "
		    "%ld (%s), not by pid %ld or its children", port, tag,
		    (long)pids[i], comm, (long)pid);
	} else if (unseen != 0)
		berr_set(e, BERR_PORT_UNAVAILABLE, "port %u%s is in use by a "
		    "process berthd cannot see (another user's, or in another "
		    "PID namespace), so it cannot tell whether that is pid %ld "
		    "or one of its children", port, tag, (long)pid);
	else if (n == 0 && *tag != '\0')
		berr_set(e, BERR_PORT_UNAVAILABLE, "no socket %s port %u%s: "
		    "for proto both, pid %ld or its children must hold the "
		    "port on tcp and udp alike", holds, port, tag, (long)pid);
	else if (n == 0)
		berr_set(e, BERR_PORT_UNAVAILABLE, "no socket %s port %u, so "
		    "there is no service of pid %ld there to register", holds,
		    port, (long)pid);
	else
		rc = 0;
	free(pids);
	return (rc);
}

/*
 * May the lease of owner pid (0: none) have port, which is in use on this
 * host, for proto (PROTO_*)? Yes (0) when every protocol's holder is pid
 * or a descendant of it; else -1 with e set to port_unavailable, which
 * names the holder when it can, or (no pid) says how to register it.
 */
int
adopt_port(uint16_t port, int proto, pid_t pid, struct berr *e)
{
	int	both = proto == PROTO_BOTH;

	if (pid <= 0) {
		berr_set(e, BERR_PORT_UNAVAILABLE, "port %u is in use by "
		    "another process on this host; to register the service "
		    "that holds it, acquire with that process's pid (\"pid\", "
		    "berth acquire --pid; berth who %u names it)", port, port);
		return (-1);
	}
	if ((proto & PROTO_TCP) && adopt_proto(port, IPPROTO_TCP,
	    both ? "/tcp" : "", pid, e) == -1)
		return (-1);
	if ((proto & PROTO_UDP) && adopt_proto(port, IPPROTO_UDP,
	    both ? "/udp" : "", pid, e) == -1)
		return (-1);
	log_info("adopt: port %u is held by pid %ld or its children; granted "
	    "to it", port, (long)pid);
	return (0);
}
