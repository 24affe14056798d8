/*
 * main.c: berthd starts here: configuration, the database, the pool, the
 * listeners, then the event loop until SIGTERM or SIGINT.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "berthd.h"
#include "cluster.h"

/* mkdir -p for the database's directory. */
static int
main_mkdirs(const char *dbpath)
{
	char	copy[4096], path[4096], *p;

	snprintf(copy, sizeof copy, "%s", dbpath);
	p = dirname(copy);
	if (strcmp(p, ".") == 0 || strcmp(p, "/") == 0)
		return (0);
	snprintf(path, sizeof path, "%s", p);
	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			return (-1);
		*p = '/';
	}
	if (mkdir(path, 0750) == -1 && errno != EEXIST)
		return (-1);
	return (0);
}

/* Leases hold pidfds and clients hold sockets: allow as many as we may. */
static void
main_raise_nofile(struct config *cfg)
{
	struct rlimit	rl;
	rlim_t		reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	/*
	 * Keep some descriptors from clients for the database, listeners and
	 * owners' pidfds (the reaper polls an owner it gets no pidfd for):
	 * 256, or half of a small limit.
	 */
	if (rl.rlim_cur == RLIM_INFINITY)
		return;
	reserve = rl.rlim_cur > 1024 ? 256 : rl.rlim_cur / 2;
	if (cfg->max_connections > rl.rlim_cur - reserve) {
		cfg->max_connections = rl.rlim_cur - reserve > 16 ?
		    (unsigned int)(rl.rlim_cur - reserve) : 16;
		log_warnx("open file limit %llu: at most %u client "
		    "connections", (unsigned long long)rl.rlim_cur,
		    cfg->max_connections);
	}
}

/*
 * A --range in the kernel's ephemeral range shares its ports with every
 * outgoing connection, which takes one now and then (and holds it): say
 * so once at start, with the ways out. Reserving the ports is offered
 * only while that leaves the kernel most of its range.
 */
static void
main_warn_ephemeral(const struct port_range *r, size_t n)
{
	struct port_range	eph;
	char			list[256], fix[384];
	size_t			count;

	if ((count = pool_ephemeral_overlap(r, n, &eph, list, sizeof list)) ==
	    0)
		return;
	if (count <= ((size_t)eph.hi - eph.lo + 1) / 2)
		snprintf(fix, sizeof fix, ", or reserve %s by adding %s to "
		    "net.ipv4.ip_local_reserved_ports", count == 1 ? "it" :
		    "them", list);
	else
		snprintf(fix, sizeof fix, " (reserving them in "
		    "net.ipv4.ip_local_reserved_ports would leave outgoing "
		    "connections too few)");
	log_warnx("pool: %zu port%s of --range (%s) %s in the kernel's "
	    "ephemeral range %u-%u, from which outgoing connections take "
	    "their ports too: give a --range outside it%s", count,
	    count == 1 ? "" : "s", list, count == 1 ? "is" : "are", eph.lo,
	    eph.hi, fix);
}

static struct pool *
main_pool(struct config *cfg, int *fallback)
{
	struct port_range	ranges[POOL_MAX_RANGES];
	uint16_t		own[CONFIG_MAX_LISTEN + 1];	/* and DNS */
	size_t			i, n = 0, nranges;

	*fallback = 0;
	if (cfg->nranges > 0) {
		main_warn_ephemeral(cfg->ranges, cfg->nranges);
		return (pool_new(cfg->ranges, cfg->nranges,
		    cfg->reuse_delay_ms));
	}
	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].port != 0)
			own[n++] = cfg->listen[i].port;
	}
	if (cfg->dns_mode == CONFIG_DNS_ADDR && cfg->dns.port != 0)
		own[n++] = cfg->dns.port;
	nranges = pool_default_ranges(ranges, own, n, fallback);
	if (*fallback)
		log_warnx("pool: fewer than 256 ports left after the kernel's "
		    "ephemeral and reserved ranges; using 49152-65535, whose "
		    "ephemeral ports outgoing connections take too: give a "
		    "--range, or widen net.ipv4.ip_local_reserved_ports");
	return (pool_new(ranges, nranges, cfg->reuse_delay_ms));
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server	*srv = arg;

	(void)what;
	/*
	 * berthd starts no processes, but as PID 1 of a container whose PID
	 * namespace other services share it inherits their orphans: reap
	 * them, as an init must, so no zombies pile up.
	 */
	if (sig == SIGCHLD) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		return;
	}
	if (sig == SIGHUP) {
		if (log_reopen() == -1)
			log_warn("log: reopen");
		else
			log_info("log reopened");
		return;
	}
	log_info("caught %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	server_stop(srv);
}

/*
 * The API's listeners; with --portserver, the portserver's; DNS; and
 * with --cluster, the cluster client.
 */
static void
main_listen(struct server *srv, const struct config *cfg)
{
	char	err[512];

	if (listen_open(srv, http_accept, err, sizeof err) == -1)
		fatalx("cannot listen on %s", err);
	if (cfg->has_portserver &&
	    (srv->portserver = portserver_open(srv, err, sizeof err)) == NULL) {
		listen_close(srv);	/* no unix socket file left behind */
		fatalx("cannot listen for portserver clients on %s", err);
	}
	if (srv->portserver != NULL &&
	    server_on_commit(srv, portserver_committed, srv->portserver) == -1)
		fatalx("cannot set up the event loop");
	if (dns_open(srv, &srv->dns, err, sizeof err) == -1) {
		listen_close(srv);
		fatalx("cannot answer DNS on %s", err);
	}
	if (srv->dns != NULL &&
	    server_on_commit(srv, dns_committed, srv->dns) == -1)
		fatalx("cannot set up the event loop");
	/* The cluster never holds up the start: it joins in the loop. */
	if (cfg->ncluster > 0 &&
	    ((srv->cluster = cluster_open(srv, err, sizeof err)) == NULL ||
	    server_on_commit(srv, cluster_committed, srv->cluster) == -1))
		fatalx("cannot start the cluster client: %s", err);
}

int
main(int argc, char **argv)
{
	static struct config	 cfg;
	static struct server	 srv;
	struct event		*sigs[4];
	const int		 signums[4] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	struct store		*store;
	struct broker		*broker;
	struct pool		*pool;
	char			 err[512], status[ADDR_TEXT_MAX + 16];
	size_t			 i;
	int			 fallback;

	/*
	 * The database and its WAL hold tokens: every file berthd creates
	 * (database, sidecars, directories, log) is its user's alone from
	 * the moment it exists. Unix sockets get --socket-mode explicitly.
	 */
	umask(077);
	switch (config_parse(&cfg, argc, argv, err, sizeof err)) {
	case CONFIG_EXIT:
		return (0);
	case CONFIG_ERROR:
		fprintf(stderr, "berthd: %s\n", err);
		return (2);
	default:
		break;
	}
	log_init(cfg.log_level, cfg.log_file[0] != '\0' ? cfg.log_file : NULL);
	signal(SIGPIPE, SIG_IGN);
	main_raise_nofile(&cfg);
	probe_init();

	if (strcmp(cfg.db, ":memory:") != 0 && main_mkdirs(cfg.db) == -1)
		fatal("cannot create the directory for database %s", cfg.db);
	if ((store = store_open(cfg.db, cfg.full_sync, err, sizeof err)) ==
	    NULL)
		fatalx("cannot open database %s: %s", cfg.db, err);
	if ((pool = main_pool(&cfg, &fallback)) == NULL)
		fatalx("pool: out of memory");
	probe_set_pool(pool);
	if ((broker = broker_new(store, pool, cfg.reuse_delay_ms, probe_port,
	    NULL)) == NULL)
		fatalx("broker: out of memory");
	broker_set_limits(broker, cfg.max_leases, cfg.max_leases);
	srv.pool_fallback = fallback;
	if (server_init(&srv, &cfg, broker) == -1)
		fatalx("cannot set up the event loop");
	if (broker_load(broker, err, sizeof err) == -1)
		fatalx("database %s: %s", cfg.db, err);
	main_listen(&srv, &cfg);

	for (i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(srv.base, signums[i], main_signal_cb, &srv);
		if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) == -1)
			fatalx("cannot handle signal %d", signums[i]);
	}
	snprintf(status, sizeof status, "serving on %s", srv.bound[0].text);
	log_info("berthd %s %s, database %s (%zu leases), pool of %zu ports",
	    PACKAGE_VERSION, status, cfg.db, broker_live_count(broker),
	    pool_size(pool));
	notify_ready(status);

	event_base_dispatch(srv.base);

	for (i = 0; i < 4; i++)
		event_free(sigs[i]);
	server_free(&srv);
	broker_free(broker);
	pool_free(pool);
	store_close(store);
	config_free(&cfg);
	log_info("stopped; database closed");
	return (0);
}
