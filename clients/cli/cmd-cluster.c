/*
 * cmd-cluster.c: the cluster's side of the tool, for a berthd started with
 * --cluster: lookup --cluster, and what it shares with list --cluster and
 * run --need: this broker's node, which instance of a name to use, a
 * watch of the cluster's view for one, and the warning that the view may
 * be out of date.
 *
 * Of several instances of a name, the one on this broker's node is used
 * (it is the nearest, and the one this host's own lookups agree on), else
 * the first by node name, so that every host picks the same one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

/*
 * A watch of a view that changes all the time answers at once, again and
 * again: looks are at least this far apart, so waiting is never a busy
 * loop.
 */
#define CLUSTER_ROUND_MS	250

static int	cluster_match(const berth_lease *, const char *, int);
static int	cluster_print(struct cli *, const berth_leases *, const char *,
		    int, int, int);
static int	cluster_print_all(struct cli *, const berth_leases *,
		    const char *, int, int);
static void	cluster_print_one(struct cli *, const berth_lease *, int);

/* CLOCK_MONOTONIC in ms: deadlines must not move with the wall clock. */
long long
cluster_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * This broker's node, from its /v1/status, into *node (to free; NULL
 * when it runs without --cluster). 0, or the error code of err.
 */
int
cluster_this_node(berth_client *c, char **node, berth_error *err)
{
	berth_info	*st;
	const char	*n;
	int		 rc = 0;

	*node = NULL;
	if (berth_status(c, &st, err) != 0)
		return (err->code);
	if ((n = berth_info_cluster_node(st)) != NULL &&
	    (*node = strdup(n)) == NULL) {
		memset(err, 0, sizeof *err);
		err->code = rc = BERTH_ENOMEM;
		snprintf(err->message, sizeof err->message, "out of memory");
	}
	berth_info_free(st);
	return (rc);
}

/*
 * Does l count: an instance of name (of any, name NULL) and, with ready,
 * one whose service is there or whose readiness cannot be told, as
 * lookup --ready counts a lease on a host that is not berthd's.
 */
static int
cluster_match(const berth_lease *l, const char *name, int ready)
{
	if (name != NULL && strcmp(berth_lease_name(l), name) != 0)
		return (0);
	return (!ready || berth_lease_ready(l) != 0);
}

/* How many instances in v count (cluster_match). */
size_t
cluster_count(const berth_leases *v, const char *name, int ready)
{
	size_t	i, n = 0;

	for (i = 0; i < berth_leases_count(v); i++)
		n += cluster_match(berth_leases_get(v, i), name, ready);
	return (n);
}

/*
 * The instance of name to use: node's (this broker's; NULL: none) if it
 * counts, else the first that does, by node name as berthd sorts them.
 * NULL when none counts.
 */
const berth_lease *
cluster_pick(const berth_leases *v, const char *name, const char *node,
    int ready)
{
	const berth_lease	*l, *first = NULL;
	const char		*ln;
	size_t			 i;

	for (i = 0; (l = berth_leases_get(v, i)) != NULL; i++) {
		if (!cluster_match(l, name, ready))
			continue;
		if (node != NULL && (ln = berth_lease_node(l)) != NULL &&
		    strcmp(ln, node) == 0)
			return (l);
		if (first == NULL)
			first = l;
	}
	return (first);
}

/*
 * Watch the cluster's view until it holds an instance of name that
 * counts (cluster_match) or the deadline (cluster_now) has passed, in
 * blocking watches from *index (0: the view as it is now), which is
 * updated. 0 with the last view in *out, whether or not it holds one: the
 * caller picks. Else the error code of err.
 */
int
cluster_watch(berth_client *c, const char *name, int ready,
    long long deadline, uint64_t *index, berth_leases **out,
    berth_error *err)
{
	berth_leases	*v;
	long long	 start, left;
	int		 wait;

	*out = NULL;
	for (;;) {
		start = cluster_now();
		left = deadline - start;
		wait = 0;
		if (*index > 0 && left > 0)
			wait = left >= BERTH_WAIT_MAX * 1000LL ?
			    BERTH_WAIT_MAX : (int)((left + 999) / 1000);
		if (berth_cluster_list(c, *index, wait, &v, err) != 0)
			return (err->code);
		*index = berth_leases_index(v);
		if (cluster_count(v, name, ready) > 0 ||
		    cluster_now() >= deadline) {
			*out = v;
			return (0);
		}
		berth_leases_free(v);
		left = start + CLUSTER_ROUND_MS - cluster_now();
		if (left > 0)
			usleep((useconds_t)left * 1000);
	}
}

/*
 * Say once that berthd has lost etcd, so its view may be out of date:
 * what is printed may have moved or gone. On stderr, so that output for
 * scripts stays what it is.
 */
void
cluster_warn_stale(struct cli *cli, const berth_leases *v)
{
	static int	said;

	if (said || !berth_leases_stale(v))
		return;
	said = 1;
	cli_warn("warning: berthd at %s has lost etcd: its view of the "
	    "cluster may be out of date ('berth status' says more)",
	    berth_addr(cli->client));
}

/* One instance as lookup prints a lease: port, host:port, or JSON. */
static void
cluster_print_one(struct cli *cli, const berth_lease *l, int addr_only)
{
	char	addr[300];

	if (cli->json)
		cli_print_json(berth_lease_json(l));
	else if (addr_only) {
		cli_format_addr(l, addr, sizeof addr);
		puts(addr);
	} else
		printf("%d\n", berth_lease_port(l));
}

/*
 * --all: every instance of name that counts, one a line as lookup
 * prints one; with --json, the API's object for the name rebuilt with
 * those instances.
 */
static int
cluster_print_all(struct cli *cli, const berth_leases *v, const char *name,
    int ready, int addr_only)
{
	const berth_lease	*l;
	json_t			*arr, *obj;
	size_t			 i;

	if (!cli->json) {
		for (i = 0; (l = berth_leases_get(v, i)) != NULL; i++) {
			if (cluster_match(l, name, ready))
				cluster_print_one(cli, l, addr_only);
		}
		return (CLI_EXIT_OK);
	}
	if ((arr = json_array()) == NULL)
		goto nomem;
	for (i = 0; (l = berth_leases_get(v, i)) != NULL; i++) {
		if (cluster_match(l, name, ready) && json_array_append_new(arr,
		    json_loads(berth_lease_json(l), 0, NULL)) != 0) {
			json_decref(arr);
			goto nomem;
		}
	}
	obj = json_pack("{s:s, s:o, s:I, s:b}", "name", name, "instances",
	    arr, "index", (json_int_t)berth_leases_index(v), "stale",
	    berth_leases_stale(v));
	return (cli_print_json_obj(obj));
nomem:
	cli_warn("out of memory");
	return (CLI_EXIT_ERROR);
}

/*
 * What lookup --cluster prints of the instances of name in v: the one to
 * use, or with all every one; exit 3, in the words berthd has for a local
 * lease, when none counts.
 */
static int
cluster_print(struct cli *cli, const berth_leases *v, const char *name,
    int ready, int all, int addr_only)
{
	berth_error	 err;
	char		*node = NULL;
	size_t		 n = cluster_count(v, name, ready);
	size_t		 published = cluster_count(v, name, 0);

	if (n == 0 && published == 0) {
		cli_warn("no node of the cluster publishes '%s'", name);
		return (CLI_EXIT_NOTFOUND);
	}
	if (n == 0) {
		cli_warn("'%s' is published by %zu node%s, but nothing listens "
		    "on its port there yet", name, published,
		    published == 1 ? "" : "s");
		return (CLI_EXIT_NOTFOUND);
	}
	if (all)
		return (cluster_print_all(cli, v, name, ready, addr_only));
	/* Only a choice needs to know which node is this one. */
	if (n > 1 && cluster_this_node(cli->client, &node, &err) != 0)
		return (cli_fail(cli, &err));
	cluster_print_one(cli, cluster_pick(v, name, node, ready), addr_only);
	free(node);
	return (CLI_EXIT_OK);
}

/*
 * lookup NAME --cluster [--all] [--wait S] [--ready] [--addr-only]: the
 * instance of NAME to use, printed as lookup prints a lease. --wait waits
 * on berthd's side for NAME to be published; with --ready, for one of its
 * instances to be ready too, by watches of the cluster's view until the
 * same deadline.
 */
int
cluster_lookup(struct cli *cli, const char *name, long wait, int ready,
    int all, int addr_only)
{
	berth_client	*c = cli_client(cli);
	berth_leases	*v;
	berth_error	 err;
	uint64_t	 index;
	long long	 deadline = cluster_now() + wait * 1000;
	int		 rc;

	if (wait > 0)
		berth_set_timeout(c, (int)(wait + 10) * 1000);
	if (berth_cluster_lookup(c, name, (int)wait, &v, &err) != 0)
		return (cli_fail(cli, &err));
	if (ready && wait > 0 && cluster_count(v, name, 1) == 0) {
		index = berth_leases_index(v);
		berth_leases_free(v);
		if (cluster_watch(c, name, 1, deadline, &index, &v, &err) != 0)
			return (cli_fail(cli, &err));
	}
	cluster_warn_stale(cli, v);
	rc = cluster_print(cli, v, name, ready, all, addr_only);
	berth_leases_free(v);
	return (rc);
}
