/*
 * berth.c: the berth command-line tool: global options, dispatch to the
 * commands (one cmd-*.c file per group), and the output and error helpers
 * they share. Plain output is made for shell substitution; --json prints
 * the API's objects.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

static const struct {
	const char	*name;
	cli_cmd_fn	 fn;
	const char	*usage;
} cli_cmds[] = {
	{ "acquire", cmd_acquire, "acquire NAME [--port N] [--ttl S] "
	    "[--proto P] [--host H] [--meta K=V]... [--pid P] [--token T] "
	    "[--publish] [--env]" },
	{ "renew", cmd_renew, "renew NAME [--token T] [--ttl S]" },
	{ "release", cmd_release, "release NAME [--token T]" },
	{ "lookup", cmd_lookup, "lookup NAME [--wait S] [--addr-only] "
	    "[--ready] [--cluster [--all]]" },
	{ "list", cmd_list, "list [--probe] [--cluster]" },
	{ "run", cmd_run, "run NAME [--ttl S] [--port N] [--host H] "
	    "[--proto P] [--meta K=V]... [--need DEP]... [--timeout S] [--fd] "
	    "[--publish] -- CMD [ARG...]" },
	{ "who", cmd_who, "who PORT" },
	{ "doctor", cmd_doctor, "doctor [NAME]" },
	{ "nodes", cmd_nodes, "nodes" },
	{ "status", cmd_status, "status" },
	{ "health", cmd_health, "health" },
	{ "version", cmd_version, "version" },
	{ "revoke", cmd_revoke, "revoke NAME" },
};
#define CLI_NCMDS	(sizeof cli_cmds / sizeof cli_cmds[0])

static void
cli_print_usage(FILE *f)
{
	size_t	i;

	fprintf(f, "usage: berth [--addr ADDR] [--json] COMMAND [ARGS]\n\n"
	    "commands:\n");
	for (i = 0; i < CLI_NCMDS; i++)
		fprintf(f, "  %s\n", cli_cmds[i].usage);
	fprintf(f, "\nADDR is 127.0.0.1:PORT, [::1]:PORT or unix:/PATH; "
	    "default $BERTH_ADDR, else %s.\nSee berth(1).\n",
	    BERTH_DEFAULT_ADDR);
}

void
cli_warn(const char *fmt, ...)
{
	va_list	ap;

	fputs("berth: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A usage error in command cmd: one line, a pointer to help, exit 2. */
int
cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list	ap;
	size_t	i;

	fputs("berth: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	for (i = 0; cmd != NULL && i < CLI_NCMDS; i++) {
		if (strcmp(cli_cmds[i].name, cmd) == 0)
			fprintf(stderr, "usage: berth %s\n", cli_cmds[i].usage);
	}
	return (CLI_EXIT_USAGE);
}

/* The client, opened on first use; exits 2 on a bad address. */
berth_client *
cli_client(struct cli *cli)
{
	berth_error	err;

	if (cli->client != NULL)
		return (cli->client);
	if ((cli->client = berth_open(cli->addr, &err)) == NULL) {
		cli_warn("%s", err.message);
		exit(err.code == BERTH_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_ERROR);
	}
	return (cli->client);
}

int
cli_exit_code(int code)
{
	switch (code) {
	case BERTH_OK:
		return (CLI_EXIT_OK);
	case BERTH_EINVAL:
		return (CLI_EXIT_USAGE);
	case BERTH_EUNREACHABLE:
		return (CLI_EXIT_UNREACHABLE);
	case BERTH_ENOTFOUND:
		return (CLI_EXIT_NOTFOUND);
	case BERTH_ECONFLICT:
		return (CLI_EXIT_CONFLICT);
	case BERTH_ENOCLUSTER:
		return (CLI_EXIT_NOCLUSTER);
	default:
		return (CLI_EXIT_ERROR);
	}
}

/*
 * 1 if err shows that what answers at the address is not berthd, with
 * the reason in why (may be NULL): an answer that is not HTTP as berthd
 * sends it, a body berthd would not send, or an HTTP error without the
 * JSON error object berthd puts in every error answer. Else 0.
 */
int
cli_not_broker(const berth_error *err, char *why, size_t len)
{
	char	buf[128];

	if (why == NULL) {
		why = buf;
		len = sizeof buf;
	}
	if (err->code == BERTH_EPROTO && err->http_status == 0)
		snprintf(why, len, "its answer is not HTTP as berthd sends it");
	else if (err->code == BERTH_EPROTO)
		snprintf(why, len, "it answered HTTP %d with a body berthd "
		    "does not send", err->http_status);
	else if (err->http_status != 0 && err->api_code[0] == '\0')
		snprintf(why, len, "it answered HTTP %d without berthd's JSON "
		    "error", err->http_status);
	else
		return (0);
	return (1);
}

/* Say that the address is not berthd's, and why; returns exit code 69. */
int
cli_not_broker_warn(struct cli *cli, const char *why)
{
	cli_warn("%s is not a berth broker (%s); point --addr or BERTH_ADDR "
	    "at berthd", cli->client != NULL ? berth_addr(cli->client) :
	    cli->addr, why);
	return (CLI_EXIT_UNREACHABLE);
}

/*
 * 1 if the broker's address is a unix socket that exists but that this
 * user may not connect to, with what would let it in, in hint. berthd
 * runs then: telling the user to start it would send them the wrong way.
 */
static int
cli_socket_denied(struct cli *cli, char *hint, size_t len)
{
	const char	*addr = cli->client ? berth_addr(cli->client) : NULL;
	struct stat	 st;

	if (addr == NULL || strncmp(addr, "unix:", 5) != 0)
		return (0);
	if (stat(addr + 5, &st) == -1) {
		if (errno != EACCES)
			return (0);
		snprintf(hint, len, "a directory on its path is closed to "
		    "uid %lu", (unsigned long)geteuid());
		return (1);
	}
	if (!S_ISSOCK(st.st_mode) || access(addr + 5, W_OK) == 0 ||
	    errno != EACCES)
		return (0);
	snprintf(hint, len, "the socket is uid %lu gid %lu mode %04o, you are "
	    "uid %lu: run as uid %lu, join group %lu, or start berthd with "
	    "--socket-mode 0666", (unsigned long)st.st_uid,
	    (unsigned long)st.st_gid, (unsigned)(st.st_mode & 07777),
	    (unsigned long)geteuid(), (unsigned long)st.st_uid,
	    (unsigned long)st.st_gid);
	return (1);
}

/*
 * Report a failed call in one line and return the exit code for it. An
 * unreachable broker names the address, the error and how to start one;
 * something else at the address is not taken for a broker's answer
 * ("not found" from a web server is not berthd's): it exits 69 too. A
 * broker without --cluster gets the same line from every command that
 * needs one, saying what would give it one.
 */
int
cli_fail(struct cli *cli, const berth_error *err)
{
	char	why[256];

	if (cli_not_broker(err, why, sizeof why))
		return (cli_not_broker_warn(cli, why));
	if (err->code == BERTH_EUNREACHABLE &&
	    cli_socket_denied(cli, why, sizeof why))
		cli_warn("%s (%s)", err->message, why);
	else if (err->code == BERTH_EUNREACHABLE)
		cli_warn("%s; start it with 'berthd'", err->message);
	else if (err->code == BERTH_ENOCLUSTER)
		cli_warn("berthd at %s runs without --cluster: it serves this "
		    "host only; publishing and the cluster's services and "
		    "nodes need berthd --cluster URL --advertise ADDR",
		    berth_addr(cli->client));
	else
		cli_warn("%s", err->message);
	return (cli_exit_code(err->code));
}

/*
 * Print obj indented (it is taken: NULL means it could not be built) as
 * --json does; the exit status: 0, or 1 out of memory.
 */
int
cli_print_json_obj(json_t *obj)
{
	char	*out;

	out = obj != NULL ? json_dumps(obj, JSON_INDENT(2) |
	    JSON_PRESERVE_ORDER) : NULL;
	json_decref(obj);
	if (out == NULL) {
		cli_warn("out of memory");
		return (CLI_EXIT_ERROR);
	}
	puts(out);
	free(out);
	return (CLI_EXIT_OK);
}

/* Print JSON text indented, for people reading --json output. */
void
cli_print_json(const char *text)
{
	json_t	*j;
	char	*out;

	if ((j = json_loads(text, JSON_DECODE_ANY, NULL)) == NULL) {
		puts(text);
		return;
	}
	out = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	json_decref(j);
	if (out != NULL) {
		puts(out);
		free(out);
	}
}

/* A whole number from lo to hi; -1 if s is not one. */
int
cli_parse_long(const char *s, long lo, long hi, long *out)
{
	char	*end;
	long	 v;

	if (s == NULL || *s == '\0')
		return (-1);
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return (-1);
	*out = v;
	return (0);
}

/*
 * --ttl S, as acquire, renew and run take it: what the API takes, 0 (no
 * expiry) to BERTH_TTL_MAX, so that no command sends what berthd would
 * refuse and all refuse it in the same line. 0, or the usage exit code.
 */
int
cli_parse_ttl(const char *cmd, const char *s, long *ttl)
{
	if (cli_parse_long(s, 0, BERTH_TTL_MAX, ttl) == -1) {
		cli_warn("%s: --ttl '%s': want whole seconds from 0 to %d "
		    "(a year), 0 for no expiry", cmd, s, BERTH_TTL_MAX);
		return (CLI_EXIT_USAGE);
	}
	return (0);
}

/* --proto P, as acquire and run take it: 0, or the usage exit code. */
int
cli_check_proto(const char *cmd, const char *proto)
{
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 &&
	    strcmp(proto, "both") != 0)
		return (cli_usage(cmd, "--proto: '%s' is not tcp, udp or both",
		    proto));
	return (0);
}

/*
 * --meta KEY=VALUE, as acquire and run take it: split in place (argv is
 * ours to change) into kv, the key, and *value. 0, or the usage exit code.
 */
int
cli_split_meta(const char *cmd, char *kv, const char **value)
{
	char	*eq;

	if ((eq = strchr(kv, '=')) == NULL || eq == kv)
		return (cli_usage(cmd, "--meta: '%s' is not KEY=VALUE", kv));
	*eq = '\0';
	*value = eq + 1;
	return (0);
}

/* host:port as clients connect to it, with an IPv6 host in brackets. */
void
cli_format_addr(const berth_lease *l, char *buf, size_t len)
{
	const char	*host = berth_lease_host(l);

	if (strchr(host, ':') != NULL && host[0] != '[')
		snprintf(buf, len, "[%s]:%d", host, berth_lease_port(l));
	else
		snprintf(buf, len, "%s:%d", host, berth_lease_port(l));
}

/* A duration for people: 42s, 5m03s, 2h07m, 3d04h. */
void
cli_format_age(long secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(buf, len, "%lds", secs);
	else if (secs < 3600)
		snprintf(buf, len, "%ldm%02lds", secs / 60, secs % 60);
	else if (secs < 86400)
		snprintf(buf, len, "%ldh%02ldm", secs / 3600, secs % 3600 / 60);
	else
		snprintf(buf, len, "%ldd%02ldh", secs / 86400,
		    secs % 86400 / 3600);
}

/*
 * Take --addr ADDR, --addr=ADDR and --json out of argv wherever they stand
 * before "--" (so `berth list --json` works as well as `berth --json
 * list`). Returns the new argc, or -1 after a usage message.
 */
static int
cli_global_options(struct cli *cli, int argc, char **argv)
{
	int	i, n = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else if (strcmp(argv[i], "--addr") == 0) {
			if (i + 1 >= argc) {
				cli_usage(NULL, "--addr needs an address");
				return (-1);
			}
			cli->addr = argv[++i];
		} else if (strncmp(argv[i], "--addr=", 7) == 0)
			cli->addr = argv[i] + 7;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return (n);
}

int
main(int argc, char **argv)
{
	struct cli	cli;
	size_t		i;
	int		rc;

	memset(&cli, 0, sizeof cli);
	if ((argc = cli_global_options(&cli, argc, argv)) == -1)
		return (CLI_EXIT_USAGE);
	if (argc < 2) {
		cli_print_usage(stderr);
		return (CLI_EXIT_USAGE);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		cli_print_usage(stdout);
		return (CLI_EXIT_OK);
	}
	if (strcmp(argv[1], "--version") == 0)
		argv[1] = (char *)"version";
	for (i = 0; i < CLI_NCMDS; i++) {
		if (strcmp(argv[1], cli_cmds[i].name) == 0) {
			rc = cli_cmds[i].fn(&cli, argc - 1, argv + 1);
			berth_close(cli.client);
			return (rc);
		}
	}
	cli_usage(NULL, "unknown command '%s'", argv[1]);
	cli_print_usage(stderr);
	return (CLI_EXIT_USAGE);
}
