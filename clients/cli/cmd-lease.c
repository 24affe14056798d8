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

/* The longest TTL or wait we pass on; the broker enforces its own limits. */
#define LEASE_TTL_MAX	((long)INT_MAX)
#define LEASE_WAIT_MAX	300

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
	OPT_ADDR_ONLY
};

/* The NAME argument and what is left over after the options. */
struct lease_args {
	char	*name;
	char	*extra;		/* the first unexpected argument, or NULL */
};

static int	 lease_getopt(int, char **, const char *,
		    const struct option *, struct lease_args *, int *);
static int	 lease_bad_option(const char *, int, char **, int);
static int	 lease_name(const char *, struct lease_args *);
static int	 lease_number(const char *, const char *, const char *, long,
		    long, long *);
static const char *lease_token(const char *);
static void	 lease_print_env(const char *, const char *);

/*
 * One step of option parsing that lets NAME stand anywhere among the
 * options, as in "berth acquire api --port 8080": getopt stops at the first
 * non-option ("+"), so when it does we take that word as NAME (or note it
 * as extra) and restart getopt on the rest. Returns the option character,
 * or -1 when all of argv is consumed. *state carries the position between
 * calls; start it at 0.
 */
static int
lease_getopt(int argc, char **argv, const char *optstring,
    const struct option *longopts, struct lease_args *args, int *state)
{
	int	ch;

	for (;;) {
		/* *state is the offset of the argv slice getopt works on. */
		ch = getopt_long(argc - *state, argv + *state, optstring,
		    longopts, NULL);
		if (ch != -1)
			return (ch);
		if (*state + optind >= argc)
			return (-1);
		if (strcmp(argv[*state + optind - 1], "--") == 0) {
			/* Everything after "--" is an argument. */
			for (ch = *state + optind; ch < argc; ch++) {
				if (args->name == NULL)
					args->name = argv[ch];
				else if (args->extra == NULL)
					args->extra = argv[ch];
			}
			return (-1);
		}
		/* argv[*state + optind] is a word: NAME or extra. */
		*state += optind;
		if (args->name == NULL)
			args->name = argv[*state];
		else if (args->extra == NULL)
			args->extra = argv[*state];
		/* Restart getopt; it skips the word as the slice's argv[0]. */
		optind = 0;
	}
}

/* Report the option getopt_long refused (ch is '?' or ':'). */
static int
lease_bad_option(const char *cmd, int ch, char **argv, int state)
{
	const char	*opt = argv[state + optind - 1];

	if (ch == ':')
		return (cli_usage(cmd, "option '%s' needs a value", opt));
	if (optopt != 0 && optopt < OPT_PORT)
		return (cli_usage(cmd, "unknown option '-%c'", optopt));
	return (cli_usage(cmd, "unknown option '%s'", opt));
}

/* Check that the command got exactly one valid NAME. */
static int
lease_name(const char *cmd, struct lease_args *args)
{
	if (args->name == NULL)
		return (cli_usage(cmd, "missing NAME"));
	if (args->extra != NULL)
		return (cli_usage(cmd, "unexpected argument '%s'", args->extra));
	if (!berth_name_valid(args->name))
		return (cli_usage(cmd, "invalid name '%s': 1-63 characters of "
		    "a-z 0-9 . _ -, starting with a letter or digit",
		    args->name));
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

/*
 * acquire NAME [--port N] [--ttl S] [--proto P] [--host H] [--meta k=v]...
 *     [--pid P] [--token T] [--env]
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
		{ NULL,		0,			NULL,	0 }
	};
	const char		*cmd = argv[0];
	struct lease_args	 args = { NULL, NULL };
	berth_acquire_opts	 opts;
	berth_meta		*meta;
	berth_lease		 lease;
	berth_error		 err;
	berth_client		*c;
	char			*eq, port[16];
	long			 n;
	int			 ch, state = 0, env = 0, rc;

	memset(&opts, 0, sizeof opts);
	if ((meta = calloc(argc, sizeof *meta)) == NULL) {
		cli_warn("out of memory");
		return (CLI_EXIT_ERROR);
	}
	opts.meta = meta;

	optind = 0;
	opterr = 0;
	while ((ch = lease_getopt(argc, argv, "+:", longopts, &args,
	    &state)) != -1) {
		rc = 0;
		switch (ch) {
		case OPT_PORT:
			if ((rc = lease_number(cmd, "port", optarg, 1, 65535,
			    &n)) == 0)
				opts.port = (int)n;
			break;
		case OPT_TTL:
			if ((rc = lease_number(cmd, "ttl", optarg, 0,
			    LEASE_TTL_MAX, &n)) == 0)
				opts.ttl = n;
			break;
		case OPT_PROTO:
			if (strcmp(optarg, "tcp") != 0 &&
			    strcmp(optarg, "udp") != 0 &&
			    strcmp(optarg, "both") != 0)
				rc = cli_usage(cmd, "--proto: '%s' is not tcp, "
				    "udp or both", optarg);
			opts.proto = optarg;
			break;
		case OPT_HOST:
			if (*optarg == '\0')
				rc = cli_usage(cmd, "--host: empty host");
			opts.host = optarg;
			break;
		case OPT_META:
			eq = strchr(optarg, '=');
			if (eq == NULL || eq == optarg) {
				rc = cli_usage(cmd, "--meta: '%s' is not "
				    "KEY=VALUE", optarg);
				break;
			}
			/* Split in place: argv is ours to change. */
			*eq = '\0';
			meta[opts.nmeta].key = optarg;
			meta[opts.nmeta].value = eq + 1;
			opts.nmeta++;
			break;
		case OPT_PID:
			if ((rc = lease_number(cmd, "pid", optarg, 1, INT_MAX,
			    &n)) == 0)
				opts.pid = (pid_t)n;
			break;
		case OPT_TOKEN:
			opts.token = optarg;
			break;
		case OPT_ENV:
			env = 1;
			break;
		default:
			rc = lease_bad_option(cmd, ch, argv, state);
			break;
		}
		if (rc != 0) {
			free(meta);
			return (rc);
		}
	}
	if ((rc = lease_name(cmd, &args)) != 0) {
		free(meta);
		return (rc);
	}
	opts.name = args.name;

	if ((c = cli_client(cli)) == NULL) {
		free(meta);
		return (CLI_EXIT_ERROR);
	}
	memset(&lease, 0, sizeof lease);
	memset(&err, 0, sizeof err);
	if (berth_acquire(c, &opts, &lease, &err) != 0) {
		free(meta);
		return (cli_fail(cli, &err));
	}
	free(meta);

	if (cli->json)
		cli_print_json(lease.json);
	else if (env) {
		snprintf(port, sizeof port, "%d", lease.port);
		lease_print_env("BERTH_NAME", lease.name);
		lease_print_env("BERTH_PORT", port);
		lease_print_env("BERTH_TOKEN", lease.token);
	} else
		printf("%d\n", lease.port);
	berth_lease_clear(&lease);
	return (CLI_EXIT_OK);
}

/*
 * The arguments renew and release share: NAME, --token T (else
 * $BERTH_TOKEN) and, where ttl is not NULL, --ttl S. 0, or the exit code.
 */
static int
lease_token_args(int argc, char **argv, struct lease_args *args,
    const char **token, long *ttl)
{
	static const struct option longopts[] = {
		{ "token",	required_argument,	NULL,	OPT_TOKEN },
		{ "ttl",	required_argument,	NULL,	OPT_TTL },
		{ NULL,		0,			NULL,	0 }
	};
	const char	*cmd = argv[0];
	int		 ch, state = 0, rc;

	*token = NULL;
	optind = 0;
	opterr = 0;
	while ((ch = lease_getopt(argc, argv, "+:", longopts, args,
	    &state)) != -1) {
		switch (ch) {
		case OPT_TOKEN:
			*token = optarg;
			break;
		case OPT_TTL:
			if (ttl == NULL)
				return (cli_usage(cmd, "unknown option "
				    "'--ttl'"));
			if ((rc = lease_number(cmd, "ttl", optarg, 0,
			    LEASE_TTL_MAX, ttl)) != 0)
				return (rc);
			break;
		default:
			return (lease_bad_option(cmd, ch, argv, state));
		}
	}
	if ((rc = lease_name(cmd, args)) != 0)
		return (rc);
	if ((*token = lease_token(*token)) == NULL)
		return (cli_usage(cmd, "no token: give --token T or set "
		    "BERTH_TOKEN"));
	return (0);
}

/* renew NAME [--token T] [--ttl S]: prints the new expiry, if any. */
int
cmd_renew(struct cli *cli, int argc, char **argv)
{
	struct lease_args	 args = { NULL, NULL };
	const char		*token;
	berth_lease		 lease;
	berth_error		 err;
	berth_client		*c;
	long			 ttl = -1;
	int			 rc;

	if ((rc = lease_token_args(argc, argv, &args, &token, &ttl)) != 0)
		return (rc);
	if ((c = cli_client(cli)) == NULL)
		return (CLI_EXIT_ERROR);
	memset(&lease, 0, sizeof lease);
	memset(&err, 0, sizeof err);
	if (berth_renew(c, args.name, token, ttl, &lease, &err) != 0)
		return (cli_fail(cli, &err));
	if (cli->json)
		cli_print_json(lease.json);
	else if (lease.expires_at[0] != '\0')
		printf("%s\n", lease.expires_at);
	berth_lease_clear(&lease);
	return (CLI_EXIT_OK);
}

/* release NAME [--token T]: prints nothing on success. */
int
cmd_release(struct cli *cli, int argc, char **argv)
{
	struct lease_args	 args = { NULL, NULL };
	const char		*token;
	berth_error		 err;
	berth_client		*c;
	int			 rc;

	if ((rc = lease_token_args(argc, argv, &args, &token, NULL)) != 0)
		return (rc);
	if ((c = cli_client(cli)) == NULL)
		return (CLI_EXIT_ERROR);
	memset(&err, 0, sizeof err);
	if (berth_release(c, args.name, token, &err) != 0)
		return (cli_fail(cli, &err));
	return (CLI_EXIT_OK);
}

/*
 * revoke NAME: release without the token. berthd takes it only from a
 * unix socket peer that is root or berthd's own user, so on 403 say so:
 * the bare "forbidden" would not tell people what to do.
 */
int
cmd_revoke(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ NULL,		0,			NULL,	0 }
	};
	const char		*cmd = argv[0];
	struct lease_args	 args = { NULL, NULL };
	berth_error		 err;
	berth_client		*c;
	int			 ch, state = 0, rc;

	optind = 0;
	opterr = 0;
	while ((ch = lease_getopt(argc, argv, "+:", longopts, &args,
	    &state)) != -1)
		return (lease_bad_option(cmd, ch, argv, state));
	if ((rc = lease_name(cmd, &args)) != 0)
		return (rc);

	if ((c = cli_client(cli)) == NULL)
		return (CLI_EXIT_ERROR);
	memset(&err, 0, sizeof err);
	if (berth_revoke(c, args.name, &err) != 0) {
		rc = cli_fail(cli, &err);
		if (err.code == BERTH_EFORBIDDEN)
			cli_warn("revoke needs berthd's unix socket "
			    "(--addr unix:/path), as root or as berthd's "
			    "user");
		return (rc);
	}
	return (CLI_EXIT_OK);
}

/* lookup NAME [--wait S] [--addr-only]: prints the port or host:port. */
int
cmd_lookup(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "wait",	required_argument,	NULL,	OPT_WAIT },
		{ "addr-only",	no_argument,		NULL,	OPT_ADDR_ONLY },
		{ NULL,		0,			NULL,	0 }
	};
	const char		*cmd = argv[0];
	struct lease_args	 args = { NULL, NULL };
	berth_lease		 lease;
	berth_error		 err;
	berth_client		*c;
	long			 wait = 0;
	char			 addr[300];
	int			 ch, state = 0, rc, addr_only = 0;

	optind = 0;
	opterr = 0;
	while ((ch = lease_getopt(argc, argv, "+:", longopts, &args,
	    &state)) != -1) {
		switch (ch) {
		case OPT_WAIT:
			if ((rc = lease_number(cmd, "wait", optarg, 0,
			    LEASE_WAIT_MAX, &wait)) != 0)
				return (rc);
			break;
		case OPT_ADDR_ONLY:
			addr_only = 1;
			break;
		default:
			return (lease_bad_option(cmd, ch, argv, state));
		}
	}
	if ((rc = lease_name(cmd, &args)) != 0)
		return (rc);

	if ((c = cli_client(cli)) == NULL)
		return (CLI_EXIT_ERROR);
	/* Leave the answer time to come: the broker holds the request. */
	if (wait > 0)
		berth_set_timeout(c, (int)(wait + 10) * 1000);
	memset(&lease, 0, sizeof lease);
	memset(&err, 0, sizeof err);
	if (berth_lookup(c, args.name, (int)wait, &lease, &err) != 0)
		return (cli_fail(cli, &err));
	if (cli->json)
		cli_print_json(lease.json);
	else if (addr_only) {
		cli_format_addr(&lease, addr, sizeof addr);
		puts(addr);
	} else
		printf("%d\n", lease.port);
	berth_lease_clear(&lease);
	return (CLI_EXIT_OK);
}
