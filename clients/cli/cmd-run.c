/*
 * cmd-run.c: berth run NAME [options] -- CMD ARGS...
 *
 * The way most services start under berth: wait for the leases the
 * service needs, take a lease for it with this process as the owner, run
 * the command with the port in its environment and arguments, keep the
 * lease alive while the command runs, and give it back when it exits.
 *
 * There are no threads. After the fork, one poll() loop waits on a
 * self-pipe that the signal handlers write to (SIGCHLD, and the signals
 * to forward), and the group witness too (see run_witness), and wakes up
 * when the next renewal or a deferred forward is due.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "cli.h"

#define RUN_TTL		30	/* default lease TTL, seconds */
#define RUN_TIMEOUT	60	/* default --need timeout, seconds */
#define RUN_NEED_SLICE	1000	/* ms: a cluster's --need looks here this often */
#define RUN_LISTEN_FD	3	/* SD_LISTEN_FDS_START */
#define RUN_FROM_KERNEL	0x80	/* flag in a self-pipe byte, see below */
#define RUN_FROM_WITNESS 0x40	/* flag in a self-pipe byte: the witness */
#define RUN_SIG_MASK	0x3f	/* the signal number in a self-pipe byte */
#define RUN_NFORWARD	3	/* the signals forwarded, run_forward[] */
#define RUN_GROUP_MS	500	/* a group's signal reaches all within this */
#define RUN_LINGER_MS	500	/* a server's last sockets close within this */
#define RUN_CMD_SHOWN	60	/* how much of a command line to quote */

/* What the renewals have seen lately, so a warning is said once. */
enum run_renew_state {
	RUN_RENEW_OK,		/* the last renewal worked */
	RUN_RENEW_FAILING,	/* the broker did not answer; retrying */
	RUN_RENEW_GONE,		/* the lease ended; retrying to take it */
	RUN_RENEW_LOST,		/* ended for good, or another holder's */
};

/* What the wait for one --need dependency has seen and said so far. */
struct run_need_state {
	int			 said;		/* see run_need_say */
	int			 said_there;	/* said: published, not ready */
	int			 known_here;	/* it has a lease here */
	int			 known_there;	/* it is published elsewhere */
	uint64_t		 index;		/* the cluster view's, watched */
};

struct run {
	struct cli		*cli;
	berth_client		*client;
	const char		*name;
	long			 ttl;
	long			 port;
	const char		*host;
	const char		*proto;		/* --proto, or NULL: tcp */
	char			**meta;		/* --meta: key, value, ... */
	size_t			 nmeta;		/* pairs in meta */
	char			**needs;
	size_t			 nneeds;
	long			 timeout;	/* --need timeout, 0 = forever */
	int			 fd;		/* --fd */
	int			 publish;	/* --publish */
	char			*node;		/* berthd's in the cluster, or NULL */
	int			 clustered;	/* --need looks in the cluster too */
	char			**cmd;		/* the command as given */
	char			**argv;		/* {port}, {host} replaced */
	berth_lease		*lease;		/* ours, once acquired */
	pid_t			 owner;		/* the lease's pid, or 0 */
	int			 listen_fd;
	pid_t			 child;
	pid_t			 parent;	/* berth run itself, for the child */
	pid_t			 witness;	/* run_witness, or 0 */
	/* Per run_forward[]: when to forward ours, when the witness saw it. */
	long long		 due[RUN_NFORWARD];
	long long		 seen[RUN_NFORWARD];
	int			 signalled;	/* we got a signal to forward */
	enum run_renew_state	 renew_state;
	struct sigaction	 old_pipe;	/* SIGPIPE as we found it */
	sigset_t		 old_mask;
};

static int	run_sigpipe[2] = { -1, -1 };
static const int run_forward[RUN_NFORWARD] = { SIGINT, SIGTERM, SIGHUP };

static int	run_option(struct run *, const char *, int,
		    const struct cli_args *, char **);
static int	run_parse(struct run *, int, char **);
static long long run_now(void);
static void	run_envname(const char *, const char *, char *, size_t);
static int	run_need_say(struct run *, const char *, int *,
		    berth_error *);
static void	run_need_export(const char *, const berth_lease *);
static int	run_need_clustered(struct run *);
static int	run_need_cluster(struct run *, const char *, long long,
		    struct run_need_state *);
static int	run_need_gave_up(struct run *, const char *,
		    const struct run_need_state *);
static int	run_need(struct run *, const char *);
static void	run_choose_owner(struct run *);
static int	run_acquire(struct run *, int, const char *, berth_error *);
static int	run_listen(struct run *);
static void	run_ready_now(struct run *);
static char	*run_subst(const char *, const char *, const char *);
static int	run_command(struct run *, char **);
static void	run_onsignal(int, siginfo_t *, void *);
static int	run_signals(struct run *);
static void	run_exec(struct run *) __attribute__((noreturn));
static int	run_taken(const berth_error *);
static void	run_renew(struct run *);
static pid_t	run_witness(struct run *);
static void	run_witness_end(struct run *);
static int	run_forward_index(int);
static int	run_child_in_group(struct run *);
static void	run_got_signal(struct run *, int, int, long long);
static void	run_witness_saw(struct run *, int, long long);
static void	run_forward_due(struct run *, long long, int);
static int	run_poll_timeout(struct run *, long long, long long);
static int	run_wait(struct run *);
static void	run_release(struct run *);
static int	run_port_holder(struct run *, struct sock_holder *);
static void	run_check_background(struct run *);

static const struct option run_options[] = {
	{ "ttl",	required_argument,	NULL,	't' },
	{ "port",	required_argument,	NULL,	'p' },
	{ "host",	required_argument,	NULL,	'H' },
	{ "proto",	required_argument,	NULL,	'P' },
	{ "meta",	required_argument,	NULL,	'm' },
	{ "need",	required_argument,	NULL,	'n' },
	{ "timeout",	required_argument,	NULL,	'T' },
	{ "fd",		no_argument,		NULL,	'f' },
	{ "publish",	no_argument,		NULL,	'u' },
	{ NULL,		0,			NULL,	0 }
};

/* One option of run into r; -1 when it is fine, else the exit code. */
static int
run_option(struct run *r, const char *cmdname, int ch,
    const struct cli_args *a, char **argv)
{
	const char	 *value;
	char		**more;
	long		  v;
	int		  rc;

	switch (ch) {
	case 't':
		if ((rc = cli_parse_ttl(cmdname, optarg, &v)) != 0)
			return (rc);
		r->ttl = v;
		break;
	case 'p':
		if (cli_parse_long(optarg, 1, 65535, &v) == -1)
			return (cli_usage(cmdname, "run: bad --port '%s'",
			    optarg));
		r->port = v;
		break;
	case 'H':
		if (*optarg == '\0')
			return (cli_usage(cmdname, "--host: empty host"));
		r->host = optarg;
		break;
	case 'P':
		if ((rc = cli_check_proto(cmdname, optarg)) != 0)
			return (rc);
		r->proto = optarg;
		break;
	case 'm':
		if ((rc = cli_split_meta(cmdname, optarg, &value)) != 0)
			return (rc);
		more = reallocarray(r->meta, 2 * (r->nmeta + 1),
		    sizeof *r->meta);
		if (more == NULL) {
			cli_warn("run: out of memory");
			return (CLI_EXIT_ERROR);
		}
		r->meta = more;
		r->meta[2 * r->nmeta] = optarg;
		r->meta[2 * r->nmeta + 1] = (char *)value;
		r->nmeta++;
		break;
	case 'n':
		more = reallocarray(r->needs, r->nneeds + 1, sizeof *r->needs);
		if (more == NULL) {
			cli_warn("run: out of memory");
			return (CLI_EXIT_ERROR);
		}
		r->needs = more;
		r->needs[r->nneeds++] = optarg;
		break;
	case 'T':
		if (cli_parse_long(optarg, 0, INT_MAX / 1000, &v) == -1)
			return (cli_usage(cmdname, "run: bad --timeout '%s': "
			    "want seconds, 0 to wait forever", optarg));
		r->timeout = v;
		break;
	case 'f':
		r->fd = 1;
		break;
	case 'u':
		r->publish = 1;
		break;
	case ':':
		return (cli_usage(cmdname, "run: %s needs a value",
		    args_refused(a, argv)));
	default:
		return (cli_usage(cmdname, "run: unknown option '%s'",
		    args_refused(a, argv)));
	}
	return (-1);
}

/*
 * Options may come before or after NAME ("run api --ttl 5 -- cmd" as in
 * the synopsis, or "run --ttl 5 api -- cmd"). The command must follow
 * "--": the global options (--addr, --json) are taken from anywhere
 * before it, so a command without it could lose its own. Returns -1 when
 * all is well, else the exit code.
 */
static int
run_parse(struct run *r, int argc, char **argv)
{
	const char	*cmdname = argv[0];
	struct cli_args	 a;
	int		 ch, rc;

	args_init(&a, ARGS_COMMAND, run_options);
	while ((ch = args_next(&a, argc, argv)) != -1) {
		if ((rc = run_option(r, cmdname, ch, &a, argv)) != -1)
			return (rc);
	}
	r->name = a.name;
	if (r->name == NULL)
		return (cli_usage(cmdname, "run: which name?"));
	if (a.extra != NULL)
		return (cli_usage(cmdname, "run: put the command after '--' "
		    "(at '%s')", a.extra));
	if (a.command == NULL || a.command[0] == NULL)
		return (cli_usage(cmdname, "run: no command to run after "
		    "'--'"));
	if (r->fd && r->proto != NULL && strcmp(r->proto, "udp") == 0)
		return (cli_usage(cmdname, "run: --fd hands over a listening "
		    "TCP socket; it does not go with --proto udp"));
	r->cmd = a.command;
	return (-1);
}

/* CLOCK_MONOTONIC in ms: deadlines must not move with the wall clock. */
static long long
run_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* BERTH_<DEP>_<suffix>: DEP upper-cased, anything not [A-Z0-9] as '_'. */
static void
run_envname(const char *dep, const char *suffix, char *buf, size_t len)
{
	char	*p;

	snprintf(buf, len, "BERTH_%s_%s", dep, suffix);
	for (p = buf + 6; *p != '\0' && p < buf + 6 + strlen(dep); p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = *p - 'a' + 'A';
		else if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	}
}

/*
 * dep has no ready lease: is it registered at all? Says what run waits
 * for, once each: a name not registered yet (on a terminal only: it is
 * the usual start-up order), and a registered one whose port nothing
 * serves (always: a service that does not use $PORT waits for ever). 1
 * registered, 0 not, or the broker's error in err (-1).
 */
static int
run_need_say(struct run *r, const char *dep, int *said, berth_error *err)
{
	berth_lease	*l;
	char		 addr[300];

	if (berth_lookup(r->client, dep, 0, &l, err) != 0) {
		if (err->code != BERTH_ENOTFOUND)
			return (-1);
		if (*said == 0 && isatty(STDERR_FILENO)) {
			fprintf(stderr, "berth: waiting for %s at %s...\n",
			    dep, berth_addr(r->client));
			*said = 1;
		}
		return (0);
	}
	if (*said != 2) {
		cli_format_addr(l, addr, sizeof addr);
		cli_warn("waiting for %s (%s: nothing %s yet)", dep, addr,
		    strcmp(berth_lease_proto(l), "udp") == 0 ?
		    "is bound there" : "listens");
		*said = 2;
	}
	berth_lease_free(l);
	return (1);
}

/* Where dep is, for the command: BERTH_<DEP>_ADDR and BERTH_<DEP>_PORT. */
static void
run_need_export(const char *dep, const berth_lease *l)
{
	char	var[128], val[300];

	run_envname(dep, "ADDR", var, sizeof var);
	cli_format_addr(l, val, sizeof val);
	setenv(var, val, 1);
	run_envname(dep, "PORT", var, sizeof var);
	snprintf(val, sizeof val, "%d", berth_lease_port(l));
	setenv(var, val, 1);
}

/*
 * Is berthd a node of a cluster, whose instances --need may use? Its
 * /v1/status says, and which node it is (r->node), whose instances come
 * first. 0, or the exit code.
 */
static int
run_need_clustered(struct run *r)
{
	berth_error	err;

	if (cluster_this_node(r->client, &r->node, &err) != 0)
		return (cli_fail(r->cli, &err));
	r->clustered = r->node != NULL;
	return (0);
}

/*
 * dep has no ready lease here: look in the cluster's view for a ready
 * instance of it, this node's first, and export that one. The look is a
 * watch until slice, so an instance published meanwhile ends it at once;
 * the caller looks here again between slices, as a lease that is not
 * published is not in the view. A berthd that has left the cluster, or
 * does not serve its services, is asked about this host only from then
 * on. -1 none yet, 0 exported, else the exit code.
 */
static int
run_need_cluster(struct run *r, const char *dep, long long slice,
    struct run_need_state *st)
{
	const berth_lease	*l;
	berth_leases		*v;
	berth_error		 err;
	char			 addr[300];

	if (cluster_watch(r->client, dep, 1, slice, &st->index, &v,
	    &err) != 0) {
		if ((err.code != BERTH_ENOCLUSTER &&
		    err.code != BERTH_ENOTFOUND) || cli_not_broker(&err, NULL, 0))
			return (cli_fail(r->cli, &err));
		if (err.code == BERTH_ENOTFOUND)
			cli_warn("run: berthd at %s does not serve the "
			    "cluster's services (%s); looking for %s on this "
			    "host only", berth_addr(r->client), err.message,
			    dep);
		r->clustered = 0;
		return (-1);
	}
	cluster_warn_stale(r->cli, v);
	if ((l = cluster_pick(v, dep, r->node, 1)) != NULL) {
		run_need_export(dep, l);
		berth_leases_free(v);
		return (0);
	}
	if ((l = cluster_pick(v, dep, r->node, 0)) != NULL) {
		st->known_there = 1;
		if (!st->said_there) {
			cli_format_addr(l, addr, sizeof addr);
			cli_warn("waiting for %s (%s on node %s: nothing %s "
			    "yet)", dep, addr, berth_lease_node(l),
			    strcmp(berth_lease_proto(l), "udp") == 0 ?
			    "is bound there" : "listens");
			st->said_there = 1;
		}
	}
	berth_leases_free(v);
	return (-1);
}

/* --timeout has passed without dep: say what was missing; exit 1. */
static int
run_need_gave_up(struct run *r, const char *dep,
    const struct run_need_state *st)
{
	const char	*why;

	if (st->known_here)
		why = "it is registered, but nothing listens on its port";
	else if (st->known_there)
		why = "it is published in the cluster, but nothing listens "
		    "on its port there";
	else if (r->node != NULL)
		why = "it is neither registered here nor published in the "
		    "cluster";
	else
		why = "it is not registered";
	cli_warn("run: gave up waiting for %s at %s after %lds (--need, "
	    "--timeout): %s", dep, berth_addr(r->client), r->timeout, why);
	return (CLI_EXIT_ERROR);
}

/*
 * Wait until dep is registered and ready (something listens on its
 * port, or berthd cannot tell), until the --timeout deadline; then export
 * where it is. Alone, berthd is asked in blocking lookups of at most its
 * 300 s each (libberth stretches its answer timeout to match). As a
 * cluster's node, a ready lease here comes first, else a ready instance
 * in the cluster (run_need_cluster), looked for in turn, the wait itself
 * a watch of the cluster's view of RUN_NEED_SLICE: berthd sees a lease
 * here become ready once a second anyway. Returns 0, or the exit code.
 */
static int
run_need(struct run *r, const char *dep)
{
	struct run_need_state	 st;
	berth_lease		*l;
	berth_error		 err;
	long long		 deadline = 0, left;
	int			 wait = 0, rc;

	memset(&st, 0, sizeof st);
	if (r->timeout > 0)
		deadline = run_now() + r->timeout * 1000LL;
	for (;;) {
		if (berth_lookup_ready(r->client, dep, wait, &l, &err) == 0)
			break;
		if (err.code != BERTH_ENOTFOUND ||
		    cli_not_broker(&err, NULL, 0) ||
		    (st.known_here = run_need_say(r, dep, &st.said,
		    &err)) == -1)
			return (cli_fail(r->cli, &err));
		left = deadline == 0 ? RUN_NEED_SLICE : deadline - run_now();
		if (r->clustered && (rc = run_need_cluster(r, dep, run_now() +
		    (left < RUN_NEED_SLICE ? left : RUN_NEED_SLICE),
		    &st)) != -1)
			return (rc);
		if (deadline != 0 && (left = deadline - run_now()) <= 0)
			return (run_need_gave_up(r, dep, &st));
		if (r->clustered)
			wait = 0;
		else if (deadline == 0)
			wait = BERTH_WAIT_MAX;
		else {
			left = (left + 999) / 1000;
			wait = left > BERTH_WAIT_MAX ? BERTH_WAIT_MAX :
			    (int)left;
		}
	}
	run_need_export(dep, l);
	berth_lease_free(l);
	return (0);
}

/*
 * Does berthd see our pid as ours: same host (boot id) and same PID
 * namespace, by what /v1/status says of berthd's? 1 yes, 0 no, -1
 * cannot tell (no /proc here, or a broker that does not say), -2 the
 * broker did not answer (the acquire that follows will say so).
 */
static int
run_same_pid_space(struct run *r)
{
	berth_info	*st;
	berth_error	 err;
	const char	*myns, *ns, *boot;
	int		 same = -1;

	if ((myns = procid_pid_namespace()) == NULL ||
	    procid_boot_id()[0] == '\0')
		return (-1);
	if (berth_status(r->client, &st, &err) != 0)
		return (-2);
	if ((ns = berth_info_pid_namespace(st)) != NULL &&
	    (boot = berth_info_boot_id(st)) != NULL)
		same = strcmp(ns, myns) == 0 &&
		    strcmp(boot, procid_boot_id()) == 0;
	berth_info_free(st);
	return (same);
}

/* Lease by TTL alone from now on, and say why. */
static void
run_disown(struct run *r, const char *why)
{
	r->owner = 0;
	if (r->ttl == 0)
		r->ttl = RUN_TTL;
	cli_warn("run: %s; the lease of %s lives by its %ld s TTL, renewed "
	    "while the command runs", why, r->name, r->ttl);
}

/*
 * The lease's owner is berth run itself, so the lease ends at once if it
 * dies; its TTL, renewed while the command runs, is the second line.
 * berthd reads pids in its own PID namespace on its own host, though:
 * from another namespace (another container) our pid names some
 * unrelated process there, or none. So compare with what berthd says of
 * itself, and lease by TTL alone unless the pid is surely ours to give.
 * PID 1 (a container's init) never is: berthd refuses it.
 */
static void
run_choose_owner(struct run *r)
{
	if (getpid() == 1) {
		run_disown(r, "running as PID 1");
		return;
	}
	switch (run_same_pid_space(r)) {
	case 1:
		r->owner = getpid();
		break;
	case 0:
		run_disown(r, "berthd is in another PID namespace or on "
		    "another host");
		break;
	case -2:
		/* Should the acquire get through, pid_not_visible is retried. */
		r->owner = getpid();
		break;
	default:
		run_disown(r, "cannot tell whether berthd sees this process");
		break;
	}
}

/*
 * The acquire options for NAME now, with token to reclaim a lease that
 * lapsed (NULL: a new lease); NULL when out of memory.
 */
static berth_acquire_opts *
run_opts(struct run *r, int port, const char *token)
{
	berth_acquire_opts	*o;
	size_t			 i;

	if ((o = berth_acquire_opts_new(r->name)) == NULL)
		return (NULL);
	berth_acquire_opts_set_port(o, port);
	berth_acquire_opts_set_ttl(o, r->ttl);
	berth_acquire_opts_set_pid(o, r->owner);
	berth_acquire_opts_set_publish(o, r->publish);
	if (berth_acquire_opts_set_host(o, r->host) != 0 ||
	    berth_acquire_opts_set_proto(o, r->proto) != 0 ||
	    (token != NULL && berth_acquire_opts_set_token(o, token) != 0))
		goto fail;
	for (i = 0; i < r->nmeta; i++) {
		if (berth_acquire_opts_add_meta(o, r->meta[2 * i],
		    r->meta[2 * i + 1]) != 0)
			goto fail;
	}
	return (o);
fail:
	berth_acquire_opts_free(o);
	return (NULL);
}

/*
 * Take NAME, owned by r->owner (run_choose_owner). port overrides --port;
 * token, the lapsed lease's, reclaims it on the port the command already
 * uses. r->lease changes only on success, so its token stays usable.
 */
static int
run_acquire(struct run *r, int port, const char *token, berth_error *err)
{
	berth_acquire_opts	*o;
	berth_lease		*l;
	int			 rc;

	if ((o = run_opts(r, port, token)) == NULL)
		goto nomem;
	rc = berth_acquire(r->client, o, &l, err);
	berth_acquire_opts_free(o);
	if (rc != 0 && r->owner != 0 &&
	    strcmp(err->api_code, "pid_not_visible") == 0) {
		/* Our namespace looked like berthd's, yet it cannot see us. */
		run_disown(r, "berthd cannot see this process");
		if ((o = run_opts(r, port, token)) == NULL)
			goto nomem;
		rc = berth_acquire(r->client, o, &l, err);
		berth_acquire_opts_free(o);
	}
	if (rc != 0)
		return (-1);
	berth_lease_free(r->lease);
	r->lease = l;
	return (0);
nomem:
	memset(err, 0, sizeof *err);
	err->code = BERTH_ENOMEM;
	snprintf(err->message, sizeof err->message, "out of memory");
	return (-1);
}

/*
 * --fd: bind and listen on the leased port here, before the command
 * runs, so nothing can take the port in between. Binds the lease's host
 * when it is an IP literal, else the wildcard.
 */
static int
run_listen(struct run *r)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	char			 host[256], *p;
	int			 fd, one = 1;

	snprintf(host, sizeof host, "%s", berth_lease_host(r->lease));
	if (host[0] == '[' && (p = strchr(host, ']')) != NULL) {
		*p = '\0';
		memmove(host, host + 1, strlen(host + 1) + 1);
	}
	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(berth_lease_port(r->lease));
		len = sizeof *sin6;
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(berth_lease_port(r->lease));
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
			snprintf(host, sizeof host, "0.0.0.0");
		}
		len = sizeof *sin;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		cli_warn("run: --fd: socket: %s", strerror(errno));
		return (-1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 128) == -1) {
		cli_warn("run: --fd: cannot listen on %s port %d for %s: %s",
		    host, berth_lease_port(r->lease), r->name,
		    strerror(errno));
		close(fd);
		return (-1);
	}
	return (fd);
}

/*
 * --fd: the port is served from now on (its socket queues connections
 * until the command takes them). A renewal makes berthd look at once, so
 * that services waiting for this one (--need) go on now rather than at
 * berthd's next look; should it fail, the renewals will say so.
 */
static void
run_ready_now(struct run *r)
{
	berth_error	err;

	(void)berth_renew(r->client, r->name, berth_lease_token(r->lease), -1,
	    NULL, &err);
}

/*
 * arg with every "{port}" replaced by port and every "{host}" by host;
 * NULL when out of memory.
 */
static char *
run_subst(const char *arg, const char *port, const char *host)
{
	const char	*p, *val;
	char		*out, *o;
	size_t		 n = strlen(arg) + 1;

	for (p = arg; *p != '\0'; p++) {
		if (strncmp(p, "{port}", 6) == 0)
			n += strlen(port);
		else if (strncmp(p, "{host}", 6) == 0)
			n += strlen(host);
	}
	if ((out = malloc(n)) == NULL)
		return (NULL);
	for (p = arg, o = out; *p != '\0';) {
		val = strncmp(p, "{port}", 6) == 0 ? port :
		    strncmp(p, "{host}", 6) == 0 ? host : NULL;
		if (val == NULL) {
			*o++ = *p++;
			continue;
		}
		memcpy(o, val, strlen(val));
		o += strlen(val);
		p += 6;
	}
	*o = '\0';
	return (out);
}

/* The command's argv with {port} and {host} replaced; -1 without memory. */
static int
run_command(struct run *r, char **cmd)
{
	char	  port[16];
	size_t	  i, n;

	for (n = 0; cmd[n] != NULL; n++)
		;
	if ((r->argv = calloc(n + 1, sizeof *r->argv)) == NULL)
		return (-1);
	snprintf(port, sizeof port, "%d", berth_lease_port(r->lease));
	for (i = 0; i < n; i++) {
		if ((r->argv[i] = run_subst(cmd[i], port,
		    berth_lease_host(r->lease))) == NULL)
			return (-1);
	}
	return (0);
}

/*
 * A signal becomes one byte on the self-pipe for the poll() loop. The
 * high bit says the kernel sent it (a terminal's ^C or hangup), which
 * the command got too when it shares our process group.
 */
static void
run_onsignal(int sig, siginfo_t *si, void *uctx)
{
	unsigned char	b = (unsigned char)sig;
	int		saved = errno;

	(void)uctx;
	if (si != NULL && si->si_code == SI_KERNEL)
		b |= RUN_FROM_KERNEL;
	(void)write(run_sigpipe[1], &b, 1);
	errno = saved;
}

/*
 * The self-pipe and the handlers, installed with the signals blocked so
 * none is lost or handled in the child between fork and exec. The
 * caller unblocks them after the fork. SIGPIPE is ignored here (a
 * broker that hangs up must not kill us) but restored for the command.
 */
static int
run_signals(struct run *r)
{
	struct sigaction	sa;
	sigset_t		set;
	size_t			i;

	if (pipe2(run_sigpipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		cli_warn("run: pipe: %s", strerror(errno));
		return (-1);
	}
	sigemptyset(&set);
	for (i = 0; i < sizeof run_forward / sizeof run_forward[0]; i++)
		sigaddset(&set, run_forward[i]);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &r->old_mask);

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = run_onsignal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof run_forward / sizeof run_forward[0]; i++)
		sigaction(run_forward[i], &sa, NULL);
	sa.sa_flags |= SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &r->old_pipe);
	return (0);
}

/*
 * In the child: signals as we found them, the environment, the
 * listening socket as fd 3 with LISTEN_PID naming this very process,
 * then exec. Fails like a shell: 127 not found, 126 not executable.
 */
static void
run_exec(struct run *r)
{
	struct sigaction	sa;
	char			pid[32];
	size_t			i;
	int			e;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < sizeof run_forward / sizeof run_forward[0]; i++)
		sigaction(run_forward[i], &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGPIPE, &r->old_pipe, NULL);
	sigprocmask(SIG_SETMASK, &r->old_mask, NULL);

	/*
	 * If berth run dies (kill -9), its lease ends; the command must not
	 * go on serving a port no longer leased to it, so it gets SIGTERM,
	 * as systemd stops the rest of a unit whose main process died.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != r->parent)
		_exit(CLI_EXIT_ERROR);

	if (r->listen_fd != -1) {
		if (r->listen_fd != RUN_LISTEN_FD) {
			if (dup2(r->listen_fd, RUN_LISTEN_FD) == -1) {
				cli_warn("run: --fd: dup2: %s",
				    strerror(errno));
				_exit(CLI_EXIT_ERROR);
			}
			close(r->listen_fd);
		}
		fcntl(RUN_LISTEN_FD, F_SETFD, 0);
		snprintf(pid, sizeof pid, "%ld", (long)getpid());
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_PID", pid, 1);
		setenv("LISTEN_FDNAMES", r->name, 1);
	} else {
		/* Ours, if any, were not meant for the command. */
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDNAMES");
	}
	execvp(r->argv[0], r->argv);
	e = errno;
	cli_warn("run: %s: %s", r->argv[0], strerror(e));
	_exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
}

/* The name has a live lease that is not ours. */
static int
run_taken(const berth_error *err)
{
	return (err->code == BERTH_ECONFLICT &&
	    strcmp(err->api_code, "name_taken") == 0);
}

/*
 * Renew when due. An unreachable broker is retried at the next turn
 * (warned once, until it answers again). A lease that lapsed (expired
 * while the broker was away, the laptop slept, we were stopped) is
 * reclaimed with its token, on the port the command is using. One that
 * was revoked or released is not: berthd refuses its token, and the
 * command runs on, unregistered.
 */
static void
run_renew(struct run *r)
{
	berth_error	err;

	if (r->renew_state == RUN_RENEW_LOST)
		return;
	if (berth_renew(r->client, r->name, berth_lease_token(r->lease), -1,
	    NULL, &err) == 0) {
		if (r->renew_state != RUN_RENEW_OK)
			cli_warn("run: renewed %s again", r->name);
		r->renew_state = RUN_RENEW_OK;
		return;
	}
	if (err.code == BERTH_ENOTFOUND) {
		if (run_acquire(r, berth_lease_port(r->lease),
		    berth_lease_token(r->lease), &err) == 0) {
			cli_warn("run: the lease on %s had lapsed; reclaimed "
			    "it (port %d)", r->name, berth_lease_port(r->lease));
			r->renew_state = RUN_RENEW_OK;
			return;
		}
		if (err.code == BERTH_EFORBIDDEN) {
			cli_warn("run: the lease on %s was revoked or released; "
			    "no longer renewing it (the command runs on, "
			    "unregistered)", r->name);
			r->renew_state = RUN_RENEW_LOST;
			return;
		}
		if (!run_taken(&err)) {
			if (r->renew_state != RUN_RENEW_GONE)
				cli_warn("run: the lease on %s has ended and "
				    "cannot be taken again yet, will retry: "
				    "%s", r->name, err.message);
			r->renew_state = RUN_RENEW_GONE;
			return;
		}
	}
	if (err.code == BERTH_EFORBIDDEN || run_taken(&err)) {
		cli_warn("run: %s now belongs to another holder; no longer "
		    "renewing it: %s", r->name, err.message);
		r->renew_state = RUN_RENEW_LOST;
		return;
	}
	if (r->renew_state != RUN_RENEW_FAILING)
		cli_warn("run: cannot renew %s, will retry: %s", r->name,
		    err.message);
	r->renew_state = RUN_RENEW_FAILING;
}

/*
 * Each signal must reach the command once. One sent to berth run alone
 * (kill PID, docker stop) is passed on; one sent to the whole process
 * group (a terminal's ^C, kill -TERM -PGID) or to every process of the
 * unit (systemd's KillMode=control-group) has reached the command
 * already, when it is in our group, and must not be passed on again:
 * many servers take a second SIGTERM or SIGINT as "quit now, without
 * cleaning up".
 *
 * The signal itself cannot tell them apart: kill(pid) and kill(-pgrp)
 * give the same siginfo (SI_USER, the sender's pid and uid), and only a
 * terminal's signals say SI_KERNEL. So berth run asks a second member of
 * the group: the witness, a child that does nothing but wait for these
 * signals, all blocked, and write each one it gets to our self-pipe. A
 * signal both of us got within RUN_GROUP_MS was sent to the group (or
 * to the whole unit) and is not passed on; one only berth run got is
 * passed on when the witness has not reported it in that time. The
 * witness is in our process group and our cgroup, but holds none of our
 * descriptors, sockets or the lease; it dies with us (PR_SET_PDEATHSIG).
 * Returns its pid, or 0 when it could not be started (then only the
 * terminal's SI_KERNEL signals are known to be the group's).
 */
static pid_t
run_witness(struct run *r)
{
	sigset_t	 all, fwd;
	unsigned char	 b;
	pid_t		 pid;
	size_t		 i;
	int		 sig, fd, w = run_sigpipe[1];

	if ((pid = fork()) != 0)
		return (pid == -1 ? 0 : pid);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != r->parent)
		_exit(0);
	(void)prctl(PR_SET_NAME, "berth-witness");
	/* Started with stdio closed, the pipe may be 0-2: keep it clear. */
	if (w < 3 && (w = fcntl(w, F_DUPFD, 3)) == -1)
		_exit(0);
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (w > 3)
		close_range(3, w - 1, 0);
	close_range(w + 1, ~0U, 0);
	sigemptyset(&fwd);
	for (i = 0; i < RUN_NFORWARD; i++)
		sigaddset(&fwd, run_forward[i]);
	for (;;) {
		if ((sig = sigwaitinfo(&fwd, NULL)) == -1)
			continue;
		b = (unsigned char)sig | RUN_FROM_WITNESS;
		if (write(w, &b, 1) == -1 && errno != EAGAIN)
			_exit(0);
	}
}

/* The witness is done with: end it (by its pid) and reap it. */
static void
run_witness_end(struct run *r)
{
	if (r->witness <= 0)
		return;
	kill(r->witness, SIGKILL);
	while (waitpid(r->witness, NULL, 0) == -1 && errno == EINTR)
		;
	r->witness = 0;
}

/* sig's place in run_forward[], or -1. */
static int
run_forward_index(int sig)
{
	int	i;

	for (i = 0; i < RUN_NFORWARD; i++) {
		if (run_forward[i] == sig)
			return (i);
	}
	return (-1);
}

/* 1 if the command is still in our process group (it may leave it). */
static int
run_child_in_group(struct run *r)
{
	return (getpgid(r->child) == getpgrp());
}

/*
 * berth run got sig at now. Pass it on at once when the command is not
 * in our group (a signal to the group missed it); else wait for the
 * witness to say whether the group got it too. Without a witness, only
 * a terminal's signal (SI_KERNEL) is known to be the group's.
 */
static void
run_got_signal(struct run *r, int sig, int from_kernel, long long now)
{
	int	i = run_forward_index(sig);

	if (i == -1)
		return;
	r->signalled = 1;
	if (!run_child_in_group(r)) {
		kill(r->child, sig);
		return;
	}
	if (r->witness <= 0) {
		if (!from_kernel)
			kill(r->child, sig);
		return;
	}
	if (r->seen[i] != 0 && now - r->seen[i] <= RUN_GROUP_MS) {
		r->seen[i] = 0;		/* the group's: the command has it */
		return;
	}
	if (r->due[i] != 0)
		kill(r->child, sig);	/* an earlier one, not the group's */
	r->due[i] = now + RUN_GROUP_MS;
}

/* The witness got sig at now: the group's, if berth run got it too. */
static void
run_witness_saw(struct run *r, int sig, long long now)
{
	int	i = run_forward_index(sig);

	if (i == -1)
		return;
	if (r->due[i] != 0) {
		r->due[i] = 0;
		if (!run_child_in_group(r))
			kill(r->child, sig);
	} else
		r->seen[i] = now;
}

/* Pass on the signals whose wait for the witness is over (all: force). */
static void
run_forward_due(struct run *r, long long now, int force)
{
	int	i;

	for (i = 0; i < RUN_NFORWARD; i++) {
		if (r->due[i] != 0 && (force || now >= r->due[i])) {
			r->due[i] = 0;
			kill(r->child, run_forward[i]);
		}
	}
}

/* poll()'s timeout: until the next renewal (0: none) or deferred forward. */
static int
run_poll_timeout(struct run *r, long long now, long long next)
{
	long long	t = next;
	int		i;

	for (i = 0; i < RUN_NFORWARD; i++) {
		if (r->due[i] != 0 && (t == 0 || r->due[i] < t))
			t = r->due[i];
	}
	if (t == 0)
		return (-1);
	if (t <= now)
		return (0);
	/* A third of a year's TTL is more ms than an int holds. */
	return (t - now > INT_MAX ? INT_MAX : (int)(t - now));
}

/*
 * The parent's loop while the command runs: forward signals, renew
 * when due, and return the command's exit status once it has exited.
 */
static int
run_wait(struct run *r)
{
	struct pollfd	 pfd;
	unsigned char	 buf[64];
	long long	 next = 0, interval = 0, now;
	ssize_t		 n, i;
	int		 status;

	if (r->ttl > 0) {
		interval = r->ttl * 1000LL / 3;
		next = run_now() + interval;
		/* A broker that hangs must not hold up signals for long. */
		berth_set_timeout(r->client, interval < 1000 ? 1000 :
		    interval > 5000 ? 5000 : (int)interval);
	}
	pfd.fd = run_sigpipe[0];
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, run_poll_timeout(r, run_now(), next)) == -1 &&
		    errno != EINTR) {
			cli_warn("run: poll: %s", strerror(errno));
			sleep(1);
		}
		now = run_now();
		while ((n = read(run_sigpipe[0], buf, sizeof buf)) > 0) {
			for (i = 0; i < n; i++) {
				if (buf[i] & RUN_FROM_WITNESS)
					run_witness_saw(r,
					    buf[i] & RUN_SIG_MASK, now);
				else
					run_got_signal(r, buf[i] & RUN_SIG_MASK,
					    buf[i] & RUN_FROM_KERNEL, now);
			}
		}
		if (r->witness > 0 &&
		    waitpid(r->witness, NULL, WNOHANG) == r->witness) {
			r->witness = 0;		/* killed: ask no more */
			run_forward_due(r, now, 1);
		}
		run_forward_due(r, now, 0);
		if (waitpid(r->child, &status, WNOHANG) == r->child)
			return (status);
		if (interval > 0 && now >= next) {
			run_renew(r);
			next = run_now() + interval;
		}
	}
}

/* Give the lease back; if that fails, owner death ends it anyway. */
static void
run_release(struct run *r)
{
	berth_error	err;

	if (r->renew_state == RUN_RENEW_LOST)
		return;
	if (berth_release(r->client, r->name, berth_lease_token(r->lease),
	    &err) != 0 &&
	    err.code != BERTH_ENOTFOUND)
		cli_warn("run: cannot release %s (it ends when this process "
		    "does): %s", r->name, err.message);
}

/*
 * Whether a process still listens on the lease's port (TCP) or is bound
 * to it (UDP), and which: 1 and *h filled in, or 0.
 */
static int
run_port_holder(struct run *r, struct sock_holder *h)
{
	struct sock_holder	*all = NULL;
	const char		*proto = berth_lease_proto(r->lease);
	size_t			 n = 0, i;
	int			 found = 0;

	if (sockets_find((uint16_t)berth_lease_port(r->lease), &all,
	    &n) == -1)
		return (0);
	for (i = 0; i < n && !found; i++) {
		if (!all[i].listening)
			continue;
		if ((all[i].proto == SOCK_PROTO_TCP &&
		    strcmp(proto, "udp") != 0) ||
		    (all[i].proto == SOCK_PROTO_UDP &&
		    strcmp(proto, "tcp") != 0)) {
			*h = all[i];
			found = 1;
		}
	}
	free(all);
	return (found);
}

/*
 * The command exited 0 by itself, yet something still serves on its port:
 * it put itself in the background (a daemonising server: nginx without
 * "daemon off;", a script ending in "server &"). Its port is about to be
 * released while it serves on, and nothing will stop it: say so, once.
 * A server's last workers may close their sockets just after it exits,
 * so the port is looked at again for a moment before that is believed.
 */
static void
run_check_background(struct run *r)
{
	struct sock_holder	h;
	long long		deadline = run_now() + RUN_LINGER_MS;
	char			who[320];

	while (run_port_holder(r, &h)) {
		if (run_now() >= deadline) {
			if (h.pid == 0)
				snprintf(who, sizeof who, "a process not "
				    "visible here");
			else
				snprintf(who, sizeof who, "pid %ld (%.*s%s)",
				    (long)h.pid, RUN_CMD_SHOWN, h.cmd,
				    strlen(h.cmd) > RUN_CMD_SHOWN ? "..." : "");
			cli_warn("run: %s exited 0, but %s still %s on port "
			    "%d, whose lease ends now: the command put its "
			    "server in the background; run it in the "
			    "foreground instead (for nginx, 'daemon off;')",
			    r->argv[0], who, h.proto == SOCK_PROTO_TCP ?
			    "listens" : "is bound", berth_lease_port(r->lease));
			return;
		}
		usleep(50 * 1000);
	}
}

/* Bad names are found before any waiting, not after: -1, or exit code. */
static int
run_check_names(struct run *r, const char *cmdname)
{
	const char	*name;
	char		 msg[256];
	size_t		 i;

	for (i = 0; i <= r->nneeds; i++) {
		name = i < r->nneeds ? r->needs[i] : r->name;
		if (!names_valid(name))
			return (cli_usage(cmdname, "run: %s",
			    names_message(name, msg, sizeof msg)));
	}
	return (-1);
}

/*
 * With the lease taken: the environment, the command, --fd's socket and
 * the signals, then fork, exec and wait. Returns the exit code: the
 * command's, or 1 when it could not be started.
 */
static int
run_serve(struct run *r)
{
	char	port[16], addr[300];
	int	status;

	snprintf(port, sizeof port, "%d", berth_lease_port(r->lease));
	if (setenv("PORT", port, 1) == -1 ||
	    setenv("BERTH_PORT", port, 1) == -1 ||
	    setenv("BERTH_HOST", berth_lease_host(r->lease), 1) == -1 ||
	    setenv("BERTH_NAME", r->name, 1) == -1 ||
	    setenv("BERTH_ADDR", berth_addr(r->client), 1) == -1 ||
	    run_command(r, r->cmd) == -1) {
		cli_warn("run: out of memory");
		return (CLI_EXIT_ERROR);
	}
	if (r->fd && (r->listen_fd = run_listen(r)) == -1)
		return (CLI_EXIT_ERROR);
	if (r->fd)
		run_ready_now(r);
	if (run_signals(r) == -1)
		return (CLI_EXIT_ERROR);
	cli_format_addr(r->lease, addr, sizeof addr);
	cli_warn("%s on %s", r->name, addr);
	fflush(NULL);
	r->parent = getpid();
	r->witness = run_witness(r);
	if ((r->child = fork()) == -1) {
		cli_warn("run: fork: %s", strerror(errno));
		run_witness_end(r);
		return (CLI_EXIT_ERROR);
	}
	if (r->child == 0)
		run_exec(r);
	if (r->listen_fd != -1)
		close(r->listen_fd);
	sigprocmask(SIG_SETMASK, &r->old_mask, NULL);

	status = run_wait(r);
	run_witness_end(r);
	if (WIFSIGNALED(status))
		return (128 + WTERMSIG(status));
	return (WEXITSTATUS(status));
}

int
cmd_run(struct cli *cli, int argc, char **argv)
{
	struct run	 r;
	berth_error	 err;
	size_t		 i;
	int		 rc;

	memset(&r, 0, sizeof r);
	r.cli = cli;
	r.ttl = RUN_TTL;
	r.timeout = RUN_TIMEOUT;
	r.listen_fd = -1;
	if ((rc = run_parse(&r, argc, argv)) != -1 ||
	    (rc = run_check_names(&r, argv[0])) != -1)
		goto out;
	r.client = cli_client(cli);
	if (r.nneeds > 0 && (rc = run_need_clustered(&r)) != 0)
		goto out;
	for (i = 0; i < r.nneeds; i++) {
		if ((rc = run_need(&r, r.needs[i])) != 0)
			goto out;
	}
	run_choose_owner(&r);
	if (run_acquire(&r, (int)r.port, NULL, &err) != 0) {
		rc = cli_fail(cli, &err);
		goto out;
	}
	rc = run_serve(&r);
	if (rc == 0 && !r.signalled && r.renew_state != RUN_RENEW_LOST)
		run_check_background(&r);
	run_release(&r);
out:
	berth_lease_free(r.lease);
	for (i = 0; r.argv != NULL && r.argv[i] != NULL; i++)
		free(r.argv[i]);
	free(r.argv);
	free(r.needs);
	free(r.meta);
	free(r.node);
	return (rc);
}
