/*
 * cmd-lease.c: the commands that work on one lease: acquire, renew,
 * release, revoke and lookup. Plain output is made for shell substitution
 * (PORT=$(berth acquire api)); --json prints the API object.
 */
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Option values of getopt_long; no short options. */
enum {
	OPT_PORT = 256,
	OPT_TTL,
	OPT_PROTO,
	OPT_HOST,
	OPT_META,
	OPT_PID,
	OPT_TOKEN,
	OPT_ENV,
	OPT_WAIT,
	OPT_ADDR_ONLY,
	OPT_READY,
	OPT_PUBLISH,
	OPT_CLUSTER,
	OPT_ALL
};

static int	 lease_bad_option(const char *, int, const struct cli_args *,
		    char **);
static int	 lease_name(const char *, struct cli_args *);
static int	 lease_number(const char *, const char *, const char *, long,
		    long, long *);
static const char *lease_token(const char *);
static void	 lease_print_env(const char *, const char *);
static int	 lease_ended(struct cli *);

/* Report the option getopt_long refused (ch is '?' or ':'). */
static int
lease_bad_option(const char *cmd, int ch, const struct cli_args *args,
    char **argv)
{
	const char	*opt = args_refused(args, argv);

	if (ch == ':')
		return (cli_usage(cmd, "option '%s' needs a value", opt));
	if (optopt != 0 && optopt < OPT_PORT)
		return (cli_usage(cmd, "unknown option '-%c'", optopt));
	return (cli_usage(cmd, "unknown option '%s'", opt));
}

/* Check that the command got exactly one valid NAME. */
static int
lease_name(const char *cmd, struct cli_args *args)
{
	char	msg[256];

	if (args->name == NULL)
		return (cli_usage(cmd, "missing NAME"));
	if (args->extra != NULL)
		return (cli_usage(cmd, "unexpected argument '%s'", args->extra));
	if (!names_valid(args->name))
		return (cli_usage(cmd, "%s", names_message(args->name, msg,
		    sizeof msg)));
	return (0);
}

/* Parse an option's number, or say which option was wrong and why. */
static int
lease_number(const char *cmd, const char *opt, const char *s, long min,
    long max, long *out)
{
	if (cli_parse_long(s, min, max, out) != 0)
		return (cli_usage(cmd, "--%s: '%s' is not a number from %ld "
		    "to %ld", opt, s, min, max));
	return (0);
}

/* The token to use: --token, else $BERTH_TOKEN, else NULL. */
static const char *
lease_token(const char *opt)
{
	const char	*env;

	if (opt != NULL)
		return (opt);
	env = getenv("BERTH_TOKEN");
	if (env != NULL && *env != '\0')
		return (env);
	return (NULL);
}

/*
 * Print NAME=VALUE for eval in a shell. Names, ports and hex tokens need
 * no quoting, but quote anything else so the line stays safe to eval.
 */
static void
lease_print_env(const char *var, const char *value)
{
	const char	*p;

	if (*value != '\0' && strspn(value, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/@%+,") ==
	    strlen(value)) {
		printf("%s=%s\n", var, value);
		return;
	}
	printf("%s='", var);
	for (p = value; *p != '\0'; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*p);
	}
	fputs("'\n", stdout);
}

/* One option of acquire into o (or *env); 0, or the usage exit code. */
static int
lease_acquire_option(const char *cmd, int ch, berth_acquire_opts *o,
    int *env)
{
	const char	*value;
	long		 n;
	int		 rc = 0;

	switch (ch) {
	case OPT_PORT:
		if ((rc = lease_number(cmd, "port", optarg, 1, 65535, &n)) == 0)
			berth_acquire_opts_set_port(o, (int)n);
		break;
	case OPT_TTL:
		if ((rc = cli_parse_ttl(cmd, optarg, &n)) == 0)
			berth_acquire_opts_set_ttl(o, n);
		break;
	case OPT_PROTO:
		if ((rc = cli_check_proto(cmd, optarg)) == 0)
			berth_acquire_opts_set_proto(o, optarg);
		break;
	case OPT_HOST:
		if (*optarg == '\0')
			return (cli_usage(cmd, "--host: empty host"));
		berth_acquire_opts_set_host(o, optarg);
		break;
	case OPT_META:
		if ((rc = cli_split_meta(cmd, optarg, &value)) == 0)
			berth_acquire_opts_add_meta(o, optarg, value);
		break;
	case OPT_PID:
		if ((rc = lease_number(cmd, "pid", optarg, 1, INT_MAX,
		    &n)) == 0)
			berth_acquire_opts_set_pid(o, n);
		break;
	case OPT_TOKEN:
		berth_acquire_opts_set_token(o, optarg);
		break;
	case OPT_ENV:
		*env = 1;
		break;
	case OPT_PUBLISH:
		berth_acquire_opts_set_publish(o, 1);
		break;
	}
	return (rc);
}

/* What acquire prints: the port, the API object, or lines for eval. */
static void
lease_print_acquired(struct cli *cli, const berth_lease *l, int env)
{
	char	port[16];

	if (cli->json)
		cli_print_json(berth_lease_json(l));
	else if (env) {
		snprintf(port, sizeof port, "%d", berth_lease_port(l));
		lease_print_env("BERTH_NAME", berth_lease_name(l));
		lease_print_env("BERTH_PORT", port);
		/* berthd's choice with --publish: its --advertise address */
		lease_print_env("BERTH_HOST", berth_lease_host(l));
		lease_print_env("BERTH_TOKEN", berth_lease_token(l));
	} else
		printf("%d\n", berth_lease_port(l));
}

/*
 * acquire NAME [--port N] [--ttl S] [--proto P] [--host H] [--meta k=v]...
 *     [--pid P] [--token T] [--publish] [--env]
 */
int
cmd_acquire(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port",	required_argument,	NULL,	OPT_PORT },
		{ "ttl",	required_argument,	NULL,	OPT_TTL },
		{ "proto",	required_argument,	NULL,	OPT_PROTO },
		{ "host",	required_argument,	NULL,	OPT_HOST },
		{ "meta",	required_argument,	NULL,	OPT_META },
		{ "pid",	required_argument,	NULL,	OPT_PID },
		{ "token",	required_argument,	NULL,	OPT_TOKEN },
		{ "env",	no_argument,		NULL,	OPT_ENV },
		{ "publish",	no_argument,		NULL,	OPT_PUBLISH },
		{ NULL,		0,			NULL,	0 }
	};
	const char		*cmd = argv[0];
	struct cli_args		 args;
	berth_acquire_opts	*opts;
	berth_lease		*lease;
	berth_error		 err;
	int			 ch, env = 0, rc = 0;

	if ((opts = berth_acquire_opts_new(NULL)) == NULL) {
		cli_warn("out of memory");
		return (CLI_EXIT_ERROR);
	}
	args_init(&args, ARGS_WORDS, longopts);
	while (rc == 0 && (ch = args_next(&args, argc, argv)) != -1) {
		if (ch == '?' || ch == ':')
			rc = lease_bad_option(cmd, ch, &args, argv);
		else
			rc = lease_acquire_option(cmd, ch, opts, &env);
	}
	if (rc == 0 && (rc = lease_name(cmd, &args)) == 0)
		berth_acquire_opts_set_name(opts, args.name);
	if (rc != 0) {
		berth_acquire_opts_free(opts);
		return (rc);
	}
	rc = berth_acquire(cli_client(cli), opts, &lease, &err);
	berth_acquire_opts_free(opts);
	if (rc != 0)
		return (cli_fail(cli, &err));
	lease_print_acquired(cli, lease, env);
	berth_lease_free(lease);
	return (CLI_EXIT_OK);
}

/*
 * The arguments renew and release share: NAME, --token T (else
 * $BERTH_TOKEN) and, where ttl is not NULL, --ttl S. 0, or the exit code.
 */
static int
lease_token_args(int argc, char **argv, struct cli_args *args,
    const char **token, long *ttl)
{
	static const struct option longopts[] = {
		{ "token",	required_argument,	NULL,	OPT_TOKEN },
		{ "ttl",	required_argument,	NULL,	OPT_TTL },
		{ NULL,		0,			NULL,	0 }
	};
	const char	*cmd = argv[0];
	int		 ch, rc;

	*token = NULL;
	args_init(args, ARGS_WORDS, longopts);
	while ((ch = args_next(args, argc, argv)) != -1) {
		switch (ch) {
		case OPT_TOKEN:
			*token = optarg;
			break;
		case OPT_TTL:
			if (ttl == NULL)
				return (cli_usage(cmd, "unknown option "
				    "'--ttl'"));
			if ((rc = cli_parse_ttl(cmd, optarg, ttl)) != 0)
				return (rc);
			break;
		default:
			return (lease_bad_option(cmd, ch, args, argv));
		}
	}
	if ((rc = lease_name(cmd, args)) != 0)
		return (rc);
	if ((*token = lease_token(*token)) != NULL)
		return (0);
	if (ttl != NULL)
		cli_warn("%s: no token for %s: pass the one acquire printed, "
		    "with --token T or BERTH_TOKEN", cmd, args->name);
	else
		cli_warn("%s: no token for %s: pass the one acquire printed, "
		    "with --token T or BERTH_TOKEN; without it, root or "
		    "berthd's own user can end the lease with 'berth revoke "
		    "%s'", cmd, args->name, args->name);
	return (CLI_EXIT_USAGE);
}

/* renew NAME [--token T] [--ttl S]: prints the new expiry, if any. */
int
cmd_renew(struct cli *cli, int argc, char **argv)
{
	struct cli_args		 args;
	const char		*token;
	berth_lease		*lease;
	berth_error		 err;
	char			 when[40];
	long			 ttl = -1;
	int			 rc;

	if ((rc = lease_token_args(argc, argv, &args, &token, &ttl)) != 0)
		return (rc);
	if (berth_renew(cli_client(cli), args.name, token, ttl, &lease,
	    &err) != 0)
		return (cli_fail(cli, &err));
	if (cli->json)
		cli_print_json(berth_lease_json(lease));
	else if (berth_lease_expires_at(lease) != 0) {
		rfc3339_format(berth_lease_expires_at(lease), when,
		    sizeof when);
		printf("%s\n", when);
	}
	berth_lease_free(lease);
	return (CLI_EXIT_OK);
}

/* release NAME [--token T]: prints nothing on success. */
int
cmd_release(struct cli *cli, int argc, char **argv)
{
	struct cli_args		 args;
	const char		*token;
	berth_error		 err;
	int			 rc;

	if ((rc = lease_token_args(argc, argv, &args, &token, NULL)) != 0)
		return (rc);
	if (berth_release(cli_client(cli), args.name, token, &err) != 0)
		return (cli_fail(cli, &err));
	return (lease_ended(cli));
}

/*
 * After a release or revoke that "worked": berthd answers every request
 * with X-Berth-Index, and ending a lease moves the index past 0, so an
 * answer without it came from something else (a web server that says 200
 * or 204 to any DELETE). 0, or exit 69 after saying so.
 */
static int
lease_ended(struct cli *cli)
{
	if (berth_last_index(cli->client) == 0)
		return (cli_not_broker_warn(cli, "it answered without "
		    "berthd's X-Berth-Index header"));
	return (CLI_EXIT_OK);
}

/*
 * revoke NAME: release without the token. berthd takes it only from root
 * or its own user (on any socket), so on 403 say so: the bare "forbidden"
 * would not tell people what to do.
 */
int
cmd_revoke(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ NULL,		0,			NULL,	0 }
	};
	const char		*cmd = argv[0];
	struct cli_args		 args;
	berth_error		 err;
	int			 ch, rc;

	args_init(&args, ARGS_WORDS, longopts);
	while ((ch = args_next(&args, argc, argv)) != -1)
		return (lease_bad_option(cmd, ch, &args, argv));
	if ((rc = lease_name(cmd, &args)) != 0)
		return (rc);

	if (berth_revoke(cli_client(cli), args.name, &err) != 0) {
		rc = cli_fail(cli, &err);
		if (err.code == BERTH_EFORBIDDEN && rc != CLI_EXIT_UNREACHABLE)
			cli_warn("revoke is for root and berthd's own "
			    "user: run it as one of them (sudo berth "
			    "revoke %s)", args.name);
		return (rc);
	}
	return (lease_ended(cli));
}

/*
 * lookup NAME [--wait S] [--addr-only] [--ready] [--cluster [--all]]:
 * prints the port or host:port; with --ready, only once something listens
 * on the port; with --cluster, of an instance in the cluster
 * (cmd-cluster.c).
 */
int
cmd_lookup(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "wait",	required_argument,	NULL,	OPT_WAIT },
		{ "addr-only",	no_argument,		NULL,	OPT_ADDR_ONLY },
		{ "ready",	no_argument,		NULL,	OPT_READY },
		{ "cluster",	no_argument,		NULL,	OPT_CLUSTER },
		{ "all",	no_argument,		NULL,	OPT_ALL },
		{ NULL,		0,			NULL,	0 }
	};
	const char		*cmd = argv[0];
	struct cli_args		 args;
	berth_lease		*lease;
	berth_error		 err;
	berth_client		*c;
	long			 wait = 0;
	char			 addr[300];
	int			 ch, rc, addr_only = 0, ready = 0;
	int			 cluster = 0, all = 0;

	args_init(&args, ARGS_WORDS, longopts);
	while ((ch = args_next(&args, argc, argv)) != -1) {
		switch (ch) {
		case OPT_WAIT:
			if ((rc = lease_number(cmd, "wait", optarg, 0,
			    BERTH_WAIT_MAX, &wait)) != 0)
				return (rc);
			break;
		case OPT_ADDR_ONLY:
			addr_only = 1;
			break;
		case OPT_READY:
			ready = 1;
			break;
		case OPT_CLUSTER:
			cluster = 1;
			break;
		case OPT_ALL:
			all = 1;
			break;
		default:
			return (lease_bad_option(cmd, ch, &args, argv));
		}
	}
	if ((rc = lease_name(cmd, &args)) != 0)
		return (rc);
	if (all && !cluster)
		return (cli_usage(cmd, "--all prints every instance in the "
		    "cluster: it goes with --cluster"));
	if (cluster)
		return (cluster_lookup(cli, args.name, wait, ready, all,
		    addr_only));

	c = cli_client(cli);
	/* Leave the answer time to come: the broker holds the request. */
	if (wait > 0)
		berth_set_timeout(c, (int)(wait + 10) * 1000);
	if ((ready ? berth_lookup_ready(c, args.name, (int)wait, &lease,
	    &err) : berth_lookup(c, args.name, (int)wait, &lease, &err)) != 0)
		return (cli_fail(cli, &err));
	if (cli->json)
		cli_print_json(berth_lease_json(lease));
	else if (addr_only) {
		cli_format_addr(lease, addr, sizeof addr);
		puts(addr);
	} else
		printf("%d\n", berth_lease_port(lease));
	berth_lease_free(lease);
	return (CLI_EXIT_OK);
}
