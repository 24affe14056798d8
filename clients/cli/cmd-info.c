/*
 * cmd-info.c: the commands about the broker itself: status, health and
 * version.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

static int	 info_no_args(int, char **);
static void	 info_print_ranges(json_t *);
static void	 info_print_status(struct cli *, const char *);

/*
 * The three commands take no options and no arguments: refuse anything,
 * so a typo does not pass for a successful check. Returns 0 or the
 * usage exit code.
 */
static int
info_no_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ NULL,		0,	NULL,	0 }
	};
	int	ch;

	optind = 0;
	opterr = 0;
	if ((ch = getopt_long(argc, argv, "+:", longopts, NULL)) != -1) {
		if (optopt != 0)
			return (cli_usage(argv[0], "unknown option '-%c'",
			    optopt));
		return (cli_usage(argv[0], "unknown option '%s'",
		    argv[optind - 1]));
	}
	if (optind < argc)
		return (cli_usage(argv[0], "unexpected argument '%s'",
		    argv[optind]));
	return (0);
}

/* Print a JSON array of strings comma-separated, "-" when empty. */
static void
info_print_ranges(json_t *a)
{
	size_t	 i;

	if (!json_is_array(a) || json_array_size(a) == 0) {
		printf("-\n");
		return;
	}
	for (i = 0; i < json_array_size(a); i++)
		printf("%s%s", i > 0 ? ", " : "",
		    json_string_value(json_array_get(a, i)) != NULL ?
		    json_string_value(json_array_get(a, i)) : "?");
	printf("\n");
}

/*
 * Status for people, one "key: value" line each. Fields the broker does
 * not send are left out rather than shown as garbage, so an older or
 * newer berthd still prints what it can.
 */
static void
info_print_status(struct cli *cli, const char *text)
{
	json_t		*st, *pool, *v;
	json_error_t	 jerr;
	char		 age[64];

	if ((st = json_loads(text, 0, &jerr)) == NULL ||
	    !json_is_object(st)) {
		json_decref(st);
		printf("%s\n", text);
		return;
	}
	pool = json_object_get(st, "pool");
	if (json_is_string(v = json_object_get(st, "version")))
		printf("version:   %s\n", json_string_value(v));
	printf("address:   %s\n", berth_addr(cli_client(cli)));
	if (json_is_array(v = json_object_get(st, "listen"))) {
		printf("listen:    ");
		info_print_ranges(v);
	}
	if (json_is_integer(v = json_object_get(st, "uptime"))) {
		cli_format_age((long)json_integer_value(v), age, sizeof age);
		printf("uptime:    %s\n", age);
	}
	if (json_is_object(pool)) {
		printf("pool:      ");
		info_print_ranges(json_object_get(pool, "ranges"));
		if (json_is_integer(v = json_object_get(pool, "size")))
			printf("pool size: %lld\n",
			    (long long)json_integer_value(v));
		if (json_is_integer(v = json_object_get(pool, "free")))
			printf("pool free: %lld\n",
			    (long long)json_integer_value(v));
		if (json_is_true(json_object_get(pool, "fallback")))
			printf("pool note: the default range was too small; "
			    "fell back to 49152-65535\n");
	}
	if (json_is_integer(v = json_object_get(st, "leases")))
		printf("leases:    %lld\n", (long long)json_integer_value(v));
	if (json_is_integer(v = json_object_get(st, "waiters")))
		printf("waiters:   %lld\n", (long long)json_integer_value(v));
	if (json_is_string(v = json_object_get(st, "db")))
		printf("database:  %s%s\n", json_string_value(v),
		    json_is_false(json_object_get(st, "db_ok")) ?
		    " (NOT OK)" : "");
	json_decref(st);
}

/* status: what the broker says about itself. */
int
cmd_status(struct cli *cli, int argc, char **argv)
{
	berth_client	*c;
	berth_error	 err;
	char		*json = NULL;
	int		 rc;

	if ((rc = info_no_args(argc, argv)) != 0)
		return (rc);
	if ((c = cli_client(cli)) == NULL)
		return (CLI_EXIT_ERROR);
	memset(&err, 0, sizeof err);
	if (berth_status(c, &json, &err) != 0)
		return (cli_fail(cli, &err));
	if (cli->json)
		cli_print_json(json);
	else
		info_print_status(cli, json);
	berth_free(json);
	return (CLI_EXIT_OK);
}

/*
 * health: exit 0 and "ok" when the broker and its database are well,
 * else the one-line error and exit 1 -- also when no broker answers, as
 * Docker's HEALTHCHECK knows only 0 (healthy) and 1 (unhealthy).
 */
int
cmd_health(struct cli *cli, int argc, char **argv)
{
	berth_client	*c;
	berth_error	 err;
	int		 rc;

	if ((rc = info_no_args(argc, argv)) != 0)
		return (rc);
	if ((c = cli_client(cli)) == NULL)
		return (CLI_EXIT_ERROR);
	memset(&err, 0, sizeof err);
	if (berth_health(c, &err) != 0) {
		if (cli->json)
			printf("{\"status\": \"unhealthy\"}\n");
		(void)cli_fail(cli, &err);
		return (CLI_EXIT_ERROR);
	}
	if (cli->json)
		printf("{\"status\": \"ok\"}\n");
	else
		printf("ok\n");
	return (CLI_EXIT_OK);
}

/*
 * version: this tool's version, then the broker's if one answers. A
 * missing broker is not an error here: people ask for the version to
 * debug exactly that.
 */
int
cmd_version(struct cli *cli, int argc, char **argv)
{
	berth_client	*c;
	berth_error	 err;
	json_t		*st, *v;
	json_t		*out;
	char		*json = NULL, *text;
	const char	*bv = NULL;
	int		 rc, up;

	if ((rc = info_no_args(argc, argv)) != 0)
		return (rc);
	if ((c = cli_client(cli)) == NULL) {
		printf("berth %s\n", BERTH_VERSION);
		return (CLI_EXIT_ERROR);
	}
	memset(&err, 0, sizeof err);
	up = berth_status(c, &json, &err) == 0;
	st = up ? json_loads(json, 0, NULL) : NULL;
	if (json_is_string(v = json_object_get(st, "version")))
		bv = json_string_value(v);

	if (cli->json) {
		out = json_pack("{s:s, s:s, s:s?, s:b}", "berth",
		    BERTH_VERSION, "addr", berth_addr(c), "berthd", bv,
		    "reachable", up);
		text = out != NULL ? json_dumps(out, JSON_PRESERVE_ORDER) :
		    NULL;
		if (text != NULL)
			cli_print_json(text);
		free(text);
		json_decref(out);
	} else {
		printf("berth %s\n", BERTH_VERSION);
		if (up)
			printf("berthd %s at %s\n", bv != NULL ? bv : "?",
			    berth_addr(c));
		else if (err.code == BERTH_EUNREACHABLE ||
		    err.code == BERTH_ETIMEOUT)
			printf("no broker at %s\n", berth_addr(c));
		else
			printf("broker at %s: %s\n", berth_addr(c),
			    err.message[0] != '\0' ? err.message :
			    berth_strerror(err.code));
	}
	json_decref(st);
	berth_free(json);
	return (CLI_EXIT_OK);
}
