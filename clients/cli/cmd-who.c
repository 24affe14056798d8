/*
 * cmd-who.c: `berth who PORT`, which process holds a port on this host and
 * which lease names it. The answer comes from /proc (sockets.c), so it
 * works without a broker; the broker only adds the lease's name.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

/* How long to wait for the broker: it only adds the lease's name. */
#define WHO_TIMEOUT_MS	3000

static const struct option who_options[] = {
	{ "help",	no_argument,	NULL,	'h' },
	{ NULL,		0,		NULL,	0 }
};

/* "tcp", "tcp6", "udp" or "udp6", as netstat names the tables. */
static const char *
who_proto(const struct sock_holder *h)
{
	if (h->proto == SOCK_PROTO_TCP)
		return (h->v6 ? "tcp6" : "tcp");
	return (h->v6 ? "udp6" : "udp");
}

/*
 * Find the live lease on port, if a broker answers. Returns 1 and points
 * *out into *list (the caller frees the list) when one names it, 0 when
 * none does, -1 when the broker could not tell (after saying so).
 */
static int
who_lease(struct cli *cli, uint16_t port, berth_leases **list,
    const berth_lease **out)
{
	berth_client		*c = cli_client(cli);
	const berth_lease	*l;
	berth_error		 err;
	size_t			 i;

	berth_set_timeout(c, WHO_TIMEOUT_MS);
	if (berth_list(c, 0, 0, list, &err) != 0) {
		if (err.code == BERTH_EUNREACHABLE)
			cli_warn("no broker at %s; lease names unknown",
			    berth_addr(c));
		else
			cli_warn("%s; lease names unknown", err.message);
		return (-1);
	}
	for (i = 0; (l = berth_leases_get(*list, i)) != NULL; i++) {
		if (berth_lease_port(l) == port) {
			*out = l;
			return (1);
		}
	}
	return (0);
}

static void
who_print_plain(uint16_t port, const struct sock_holder *h, size_t n,
    const berth_lease *lease)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		printf("%-5s %-24s %-12s ", who_proto(&h[i]), h[i].local,
		    h[i].state);
		if (h[i].pid != 0)
			printf("pid %ld  %s\n", (long)h[i].pid, h[i].cmd);
		else if (strcmp(h[i].state, "TIME_WAIT") == 0)
			printf("no process (a closed connection)\n");
		else
			printf("pid unknown (no process visible here)\n");
	}
	if (n == 0 && lease != NULL)
		printf("no socket holds port %u\n", port);
	if (lease != NULL) {
		printf("lease %s (%s:%d %s", berth_lease_name(lease),
		    berth_lease_host(lease), berth_lease_port(lease),
		    berth_lease_proto(lease));
		if (berth_lease_pid(lease) != 0)
			printf(", owner pid %ld", berth_lease_pid(lease));
		printf(")\n");
	}
}

static int
who_print_json(uint16_t port, const struct sock_holder *h, size_t n,
    const berth_lease *lease)
{
	json_t	*o, *arr, *e;
	char	*text;
	size_t	 i;

	if ((arr = json_array()) == NULL)
		return (-1);
	for (i = 0; i < n; i++) {
		e = json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:o}",
		    "proto", h[i].proto == SOCK_PROTO_TCP ? "tcp" : "udp",
		    "family", h[i].v6 ? "ipv6" : "ipv4",
		    "local", h[i].local,
		    "state", h[i].state,
		    "listening", h[i].listening,
		    "pid", h[i].pid != 0 ?
		    json_integer(h[i].pid) : json_null(),
		    "cmd", h[i].pid != 0 ? json_string(h[i].cmd) : json_null());
		if (e == NULL || json_array_append_new(arr, e) == -1) {
			json_decref(arr);
			return (-1);
		}
	}
	o = json_pack("{s:i, s:o, s:o}", "port", (int)port, "holders", arr,
	    "lease", lease != NULL ? json_string(berth_lease_name(lease)) :
	    json_null());
	if (o == NULL || (text = json_dumps(o, JSON_COMPACT |
	    JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(o);
		return (-1);
	}
	cli_print_json(text);
	free(text);
	json_decref(o);
	return (0);
}

/*
 * who PORT: every socket on PORT with its process, then the lease naming
 * the port. Exits 0 when something holds the port or a lease names it, 3
 * when nothing does.
 */
int
cmd_who(struct cli *cli, int argc, char **argv)
{
	struct sock_holder	*h;
	berth_leases		*list = NULL;
	const berth_lease	*lease = NULL;
	size_t			 n;
	long			 port;
	int			 ch, have_lease, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+h", who_options, NULL)) != -1) {
		switch (ch) {
		case 'h':
			printf("usage: berth who PORT\n");
			return (CLI_EXIT_OK);
		default:
			return (cli_usage("who", "who: unknown option '%s'",
			    argv[optind - 1]));
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		return (cli_usage("who", "who: %s", argc == 0 ?
		    "which port?" : "one port at a time"));
	if (cli_parse_long(argv[0], 1, 65535, &port) == -1)
		return (cli_usage("who", "who: '%s' is not a port (1-65535)",
		    argv[0]));

	if (sockets_find((uint16_t)port, &h, &n) == -1) {
		cli_warn("who: out of memory");
		return (CLI_EXIT_ERROR);
	}
	have_lease = who_lease(cli, (uint16_t)port, &list, &lease) == 1;

	rc = n > 0 || have_lease ? CLI_EXIT_OK : CLI_EXIT_NOTFOUND;
	if (cli->json) {
		if (who_print_json((uint16_t)port, h, n, lease) == -1) {
			cli_warn("who: out of memory");
			rc = CLI_EXIT_ERROR;
		}
	} else if (rc == CLI_EXIT_NOTFOUND)
		cli_warn("nothing holds port %ld", port);
	else
		who_print_plain((uint16_t)port, h, n, lease);
	berth_leases_free(list);
	free(h);
	return (rc);
}
