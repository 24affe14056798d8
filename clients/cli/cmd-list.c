/*
 * cmd-list.c: list [--probe] [--cluster], the live leases as a table for
 * people or as the API's list object with --json; with --cluster, every
 * instance in the cluster's view instead, with the node of each. What
 * --probe shows is berthd's word, each lease's "ready", read from the
 * kernel's socket tables on berthd's host (for an instance, on its node's),
 * not this one's.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"

/* The table's columns, in order; a cluster's has its own (CCOL_). */
enum list_col {
	COL_NAME,
	COL_ADDRESS,
	COL_PROTO,
	COL_TTL,
	COL_PID,
	COL_AGE,
	COL_LISTENING,
	COL_MAX
};
enum list_ccol {
	CCOL_NAME,
	CCOL_NODE,
	CCOL_ADDRESS,
	CCOL_PROTO,
	CCOL_LISTENING,
	CCOL_MAX
};

static const char *list_headers[COL_MAX] = {
	"NAME", "ADDRESS", "PROTO", "TTL", "PID", "AGE", "LISTENING"
};
static const char *list_cluster_headers[CCOL_MAX] = {
	"NAME", "NODE", "ADDRESS", "PROTO", "LISTENING"
};

/* One row of text; the address may be a long host name. */
struct list_row {
	char	cell[COL_MAX][320];
};

static long long list_now_ms(void);
static void	 list_fill_row(const berth_lease *, long long, int,
		    struct list_row *);
static void	 list_fill_instance(const berth_lease *, int,
		    struct list_row *);
static int	 list_print_table(const berth_leases *, int, int);
static int	 list_print_json(const berth_leases *, int, int);
static int	 list_probe(const berth_lease *);
static void	 list_listening(const berth_lease *, char *, size_t);

static long long
list_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * Whether something listens on the lease's port at its host (TCP; for a
 * UDP lease, is bound to it; both for both), as berthd last saw: 1 yes,
 * 0 no, -1 berthd cannot tell.
 */
static int
list_probe(const berth_lease *l)
{
	return (berth_lease_ready(l));
}

/* The LISTENING cell: yes, no, or ? when berthd cannot tell. */
static void
list_listening(const berth_lease *l, char *buf, size_t len)
{
	int	up = list_probe(l);

	snprintf(buf, len, "%s", up > 0 ? "yes" : up == 0 ? "no" : "?");
}

/* Turn one lease into the table's text cells. */
static void
list_fill_row(const berth_lease *l, long long now, int probe,
    struct list_row *row)
{
	long long	t;

	snprintf(row->cell[COL_NAME], sizeof row->cell[COL_NAME], "%s",
	    berth_lease_name(l));
	cli_format_addr(l, row->cell[COL_ADDRESS],
	    sizeof row->cell[COL_ADDRESS]);
	snprintf(row->cell[COL_PROTO], sizeof row->cell[COL_PROTO], "%s",
	    berth_lease_proto(l));
	/* Round time left up: a live lease never reads "0s". */
	if (berth_lease_ttl(l) > 0 && (t = berth_lease_expires_at(l)) != 0)
		cli_format_age(t > now ? (long)((t - now + 999) / 1000) : 0,
		    row->cell[COL_TTL], sizeof row->cell[COL_TTL]);
	else
		snprintf(row->cell[COL_TTL], sizeof row->cell[COL_TTL], "-");
	if (berth_lease_pid(l) > 0)
		snprintf(row->cell[COL_PID], sizeof row->cell[COL_PID], "%ld",
		    berth_lease_pid(l));
	else
		snprintf(row->cell[COL_PID], sizeof row->cell[COL_PID], "-");
	if ((t = berth_lease_created_at(l)) != 0)
		cli_format_age((long)((now - t) / 1000), row->cell[COL_AGE],
		    sizeof row->cell[COL_AGE]);
	else
		snprintf(row->cell[COL_AGE], sizeof row->cell[COL_AGE], "-");
	row->cell[COL_LISTENING][0] = '\0';
	if (probe)
		list_listening(l, row->cell[COL_LISTENING],
		    sizeof row->cell[COL_LISTENING]);
}

/*
 * One instance of the cluster's into the cells of its table: an instance
 * has no TTL, owner or age to show, only where it is and on which node.
 */
static void
list_fill_instance(const berth_lease *l, int probe, struct list_row *row)
{
	const char	*node = berth_lease_node(l);

	snprintf(row->cell[CCOL_NAME], sizeof row->cell[CCOL_NAME], "%s",
	    berth_lease_name(l));
	snprintf(row->cell[CCOL_NODE], sizeof row->cell[CCOL_NODE], "%s",
	    node != NULL ? node : "-");
	cli_format_addr(l, row->cell[CCOL_ADDRESS],
	    sizeof row->cell[CCOL_ADDRESS]);
	snprintf(row->cell[CCOL_PROTO], sizeof row->cell[CCOL_PROTO], "%s",
	    berth_lease_proto(l));
	row->cell[CCOL_LISTENING][0] = '\0';
	if (probe)
		list_listening(l, row->cell[CCOL_LISTENING],
		    sizeof row->cell[CCOL_LISTENING]);
}

/* The table for people: a header, then one aligned row per lease. */
static int
list_print_table(const berth_leases *leases, int probe, int cluster)
{
	struct table	 t;
	struct list_row	 row;
	const char	*cells[COL_MAX];
	size_t		 i, n = berth_leases_count(leases);
	long long	 now = list_now_ms();
	int		 c, ncol;

	if (cluster) {
		ncol = probe ? CCOL_MAX : CCOL_LISTENING;
		table_init(&t, ncol, list_cluster_headers);
	} else {
		ncol = probe ? COL_MAX : COL_LISTENING;
		table_init(&t, ncol, list_headers);
	}
	for (i = 0; i < n; i++) {
		if (cluster)
			list_fill_instance(berth_leases_get(leases, i), probe,
			    &row);
		else
			list_fill_row(berth_leases_get(leases, i), now, probe,
			    &row);
		for (c = 0; c < ncol; c++)
			cells[c] = row.cell[c];
		if (table_add(&t, cells) == -1) {
			table_free(&t);
			cli_warn("out of memory");
			return (CLI_EXIT_ERROR);
		}
	}
	table_print(&t);
	table_free(&t);
	return (CLI_EXIT_OK);
}

/*
 * The API's list object, {"services":[...],"index":N}, rebuilt, with the
 * cluster's "stale" too for its view. Each lease says "ready" as berthd
 * does; with probe, it also says "listening", the same (the name the
 * table's LISTENING column has): true, false, or null when that cannot be
 * told.
 */
static int
list_print_json(const berth_leases *leases, int probe, int cluster)
{
	const berth_lease	*lease;
	json_t			*services, *obj, *l;
	json_error_t		 jerr;
	size_t			 i, n = berth_leases_count(leases);
	int			 up;

	if ((services = json_array()) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		lease = berth_leases_get(leases, i);
		if ((l = json_loads(berth_lease_json(lease), 0,
		    &jerr)) == NULL) {
			cli_warn("the broker sent a lease that is not JSON: "
			    "%s", jerr.text);
			json_decref(services);
			return (CLI_EXIT_ERROR);
		}
		if (probe) {
			up = list_probe(lease);
			if (json_object_set_new(l, "listening", up < 0 ?
			    json_null() : json_boolean(up)) != 0) {
				json_decref(l);
				json_decref(services);
				goto nomem;
			}
		}
		if (json_array_append_new(services, l) != 0) {
			json_decref(services);
			goto nomem;
		}
	}
	obj = json_pack("{s:o, s:I}", "services", services,
	    "index", (json_int_t)berth_leases_index(leases));
	if (obj != NULL && cluster && json_object_set_new(obj, "stale",
	    json_boolean(berth_leases_stale(leases))) != 0) {
		json_decref(obj);
		obj = NULL;
	}
	return (cli_print_json_obj(obj));
nomem:
	cli_warn("out of memory");
	return (CLI_EXIT_ERROR);
}

/* list [--probe] [--cluster] */
int
cmd_list(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "probe",	no_argument,	NULL,	'p' },
		{ "cluster",	no_argument,	NULL,	'c' },
		{ NULL,		0,		NULL,	0 }
	};
	const char	*cmd = argv[0];
	berth_leases	*leases;
	berth_error	 err;
	int		 ch, probe = 0, cluster = 0, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:p", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			probe = 1;
			break;
		case 'c':
			cluster = 1;
			break;
		case ':':
			return (cli_usage(cmd, "option '%s' needs a value",
			    argv[optind - 1]));
		default:
			if (optopt != 0)
				return (cli_usage(cmd, "unknown option '-%c'",
				    optopt));
			return (cli_usage(cmd, "unknown option '%s'",
			    argv[optind - 1]));
		}
	}
	if (optind < argc)
		return (cli_usage(cmd, "unexpected argument '%s'",
		    argv[optind]));

	if ((cluster ? berth_cluster_list(cli_client(cli), 0, 0, &leases,
	    &err) : berth_list(cli_client(cli), 0, 0, &leases, &err)) != 0)
		return (cli_fail(cli, &err));
	if (cluster)
		cluster_warn_stale(cli, leases);
	if (cli->json)
		rc = list_print_json(leases, probe, cluster);
	else
		rc = list_print_table(leases, probe, cluster);
	berth_leases_free(leases);
	return (rc);
}
