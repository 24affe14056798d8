/*
 * cmd-info.c: the commands about the broker itself: status, health,
 * version, and nodes, the hosts of its cluster.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

static int	 info_no_args(int, char **);

/*
 * The four commands take no options and no arguments: refuse anything,
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

/*
 * Print a list of strings comma-separated, "-" when empty; count and get
 * are one of the list accessors of berth_info.
 */
static void
info_print_list(const berth_info *st, int count,
    const char *(*get)(const berth_info *, int))
{
	int	i;

	if (count <= 0) {
		printf("-\n");
		return;
	}
	for (i = 0; i < count; i++)
		printf("%s%s", i > 0 ? ", " : "",
		    get(st, i) != NULL ? get(st, i) : "?");
	printf("\n");
}

/* The pool's lines, when the broker said anything about its pool. */
static void
info_print_pool(const berth_info *st)
{
	int	nranges = berth_info_pool_range_count(st);

	if (nranges < 0 && berth_info_pool_size(st) < 0 &&
	    berth_info_pool_free(st) < 0)
		return;
	printf("pool:      ");
	info_print_list(st, nranges, berth_info_pool_range);
	if (berth_info_pool_size(st) >= 0)
		printf("pool size: %lld\n",
		    (long long)berth_info_pool_size(st));
	if (berth_info_pool_free(st) >= 0)
		printf("pool free: %lld\n",
		    (long long)berth_info_pool_free(st));
	if (berth_info_pool_fallback(st))
		printf("pool note: the default range was too small; fell back "
		    "to 49152-65535\n");
}

/*
 * Status for people, one "key: value" line each. Fields the broker does
 * not send are left out rather than shown as garbage, so an older or
 * newer berthd still prints what it can.
 */
static void
info_print_status(struct cli *cli, const berth_info *st)
{
	char	age[64];

	if (berth_info_version(st) != NULL)
		printf("version:   %s\n", berth_info_version(st));
	printf("address:   %s\n", berth_addr(cli_client(cli)));
	if (berth_info_listen_count(st) >= 0) {
		printf("listen:    ");
		info_print_list(st, berth_info_listen_count(st),
		    berth_info_listen);
	}
	if (berth_info_uptime(st) >= 0) {
		cli_format_age((long)berth_info_uptime(st), age, sizeof age);
		printf("uptime:    %s\n", age);
	}
	info_print_pool(st);
	if (berth_info_leases(st) >= 0)
		printf("leases:    %lld\n", (long long)berth_info_leases(st));
	if (berth_info_waiters(st) >= 0)
		printf("waiters:   %lld\n", (long long)berth_info_waiters(st));
	if (berth_info_db(st) != NULL)
		printf("database:  %s%s\n", berth_info_db(st),
		    berth_info_db_ok(st) == 0 ? " (NOT OK)" : "");
	if (berth_info_cluster_node(st) != NULL)
		printf("cluster:   node %s, %s\n", berth_info_cluster_node(st),
		    berth_info_cluster_connected(st) == 0 ?
		    "NOT connected to etcd" : "connected to etcd");
}

/* status: what the broker says about itself. */
int
cmd_status(struct cli *cli, int argc, char **argv)
{
	berth_info	*st;
	berth_error	 err;
	int		 rc;

	if ((rc = info_no_args(argc, argv)) != 0)
		return (rc);
	if (berth_status(cli_client(cli), &st, &err) != 0)
		return (cli_fail(cli, &err));
	if (cli->json)
		cli_print_json(berth_info_json(st));
	else
		info_print_status(cli, st);
	berth_info_free(st);
	return (CLI_EXIT_OK);
}

/*
 * A 2xx from /v1/health says little: many servers answer 200 to any path.
 * berthd's /v1/status is a JSON object with its version. 0 when that is
 * what the address serves, else exit 69 after saying what it is not.
 */
static int
info_is_berthd(struct cli *cli)
{
	berth_info	*st;
	berth_error	 err;
	char		 why[128];
	int		 rc = 0;

	if (berth_status(cli_client(cli), &st, &err) != 0)
		return (cli_not_broker(&err, why, sizeof why) ?
		    cli_not_broker_warn(cli, why) : 0);
	if (berth_info_version(st) == NULL)
		rc = cli_not_broker_warn(cli, "its /v1/status names no "
		    "berthd version");
	berth_info_free(st);
	return (rc);
}

/*
 * health: exit 0 and "ok" when the broker and its database are well,
 * else the one-line error and exit 1 -- also when no broker answers, as
 * Docker's HEALTHCHECK takes any status but 0 for unhealthy. Something
 * other than berthd at the address is a mistake in --addr, not a state
 * of health: that exits 69, as it does for every command.
 */
int
cmd_health(struct cli *cli, int argc, char **argv)
{
	berth_error	err;
	int		rc;

	if ((rc = info_no_args(argc, argv)) != 0)
		return (rc);
	if (berth_health(cli_client(cli), &err) != 0 ||
	    (rc = info_is_berthd(cli)) != 0) {
		if (cli->json)
			printf("{\"status\": \"unhealthy\"}\n");
		if (rc != 0)
			return (rc);
		rc = cli_fail(cli, &err);
		return (rc == CLI_EXIT_UNREACHABLE && cli_not_broker(&err,
		    NULL, 0) ? rc : CLI_EXIT_ERROR);
	}
	if (cli->json)
		printf("{\"status\": \"ok\"}\n");
	else
		printf("ok\n");
	return (CLI_EXIT_OK);
}

/* version --json: both versions, the address, and whether it answered. */
static void
info_print_version_json(berth_client *c, const char *bv, int up)
{
	json_t	*out;
	char	*text;

	out = json_pack("{s:s, s:s, s:s?, s:b}", "berth", BERTH_VERSION,
	    "addr", berth_addr(c), "berthd", bv, "reachable", up);
	text = out != NULL ? json_dumps(out, JSON_PRESERVE_ORDER) : NULL;
	if (text != NULL)
		cli_print_json(text);
	free(text);
	json_decref(out);
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
	berth_info	*st;
	berth_error	 err;
	const char	*bv = NULL;
	char		 why[128];
	int		 rc, up;

	if ((rc = info_no_args(argc, argv)) != 0)
		return (rc);
	c = cli_client(cli);
	up = berth_status(c, &st, &err) == 0;
	if (up)
		bv = berth_info_version(st);
	if (cli->json)
		info_print_version_json(c, bv, up);
	else {
		printf("berth %s\n", BERTH_VERSION);
		if (up)
			printf("berthd %s at %s\n", bv != NULL ? bv : "?",
			    berth_addr(c));
		else if (err.code == BERTH_EUNREACHABLE ||
		    err.code == BERTH_ETIMEOUT)
			printf("no broker at %s\n", berth_addr(c));
		else if (cli_not_broker(&err, why, sizeof why))
			printf("%s is not a berth broker (%s)\n",
			    berth_addr(c), why);
		else
			printf("broker at %s: %s\n", berth_addr(c),
			    err.message[0] != '\0' ? err.message :
			    berth_strerror(err.code));
	}
	berth_info_free(st);
	return (CLI_EXIT_OK);
}

/* nodes --json: the API's object, {"nodes":[...]}, rebuilt. */
static int
info_print_nodes_json(const berth_nodes *v)
{
	json_t	*arr;
	size_t	 i;

	if ((arr = json_array()) == NULL)
		goto nomem;
	for (i = 0; i < berth_nodes_count(v); i++) {
		if (json_array_append_new(arr, json_loads(berth_node_json(
		    berth_nodes_get(v, i)), 0, NULL)) != 0) {
			json_decref(arr);
			goto nomem;
		}
	}
	return (cli_print_json_obj(json_pack("{s:o}", "nodes", arr)));
nomem:
	cli_warn("out of memory");
	return (CLI_EXIT_ERROR);
}

/* nodes for people: NODE ADDRESS VERSION JOINED, by node name. */
static int
info_print_nodes(const berth_nodes *v)
{
	static const char	*headers[] = {
		"NODE", "ADDRESS", "VERSION", "JOINED"
	};
	const berth_node	*n;
	struct table		 t;
	const char		*cells[4];
	char			 joined[40];
	size_t			 i;
	int			 rc = CLI_EXIT_OK;

	table_init(&t, 4, headers);
	for (i = 0; (n = berth_nodes_get(v, i)) != NULL; i++) {
		if (berth_node_joined_at(n) != 0)
			rfc3339_format(berth_node_joined_at(n), joined,
			    sizeof joined);
		else
			snprintf(joined, sizeof joined, "-");
		cells[0] = berth_node_name(n);
		cells[1] = berth_node_address(n)[0] != '\0' ?
		    berth_node_address(n) : "-";
		cells[2] = berth_node_version(n)[0] != '\0' ?
		    berth_node_version(n) : "-";
		cells[3] = joined;
		if (table_add(&t, cells) == -1) {
			cli_warn("out of memory");
			rc = CLI_EXIT_ERROR;
			break;
		}
	}
	if (rc == CLI_EXIT_OK)
		table_print(&t);
	table_free(&t);
	return (rc);
}

/* nodes: the hosts of the broker's cluster, as it sees them. */
int
cmd_nodes(struct cli *cli, int argc, char **argv)
{
	berth_nodes	*v;
	berth_error	 err;
	int		 rc;

	if ((rc = info_no_args(argc, argv)) != 0)
		return (rc);
	if (berth_cluster_nodes(cli_client(cli), &v, &err) != 0)
		return (cli_fail(cli, &err));
	rc = cli->json ? info_print_nodes_json(v) : info_print_nodes(v);
	berth_nodes_free(v);
	return (rc);
}
