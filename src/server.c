/*
 * server.c: the glue between the broker and the event loop: the group
 * commit at the end of each loop turn, the broker's hooks, the timer of
 * the readiness pass (ready.c), and the orderly shutdown on
 * SIGTERM/SIGINT.
 *
 * The commit event runs at the lowest of three priorities, so every
 * request that arrived in this turn has been handled (and has joined the
 * open transaction) before the one COMMIT (with --sync full, its one
 * fsync of the WAL).
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>

#include <event2/event.h>

#include "berthd.h"
#include "cluster.h"

#define SERVER_PRIORITIES	3
#define SERVER_GRACE_MS		1000	/* at most, for answers to drain */
#define SERVER_DRAIN_TICK_MS	5	/* how often to look meanwhile */
#define SERVER_READY_MS		1000	/* from one readiness pass on */

/*
 * Have fn(arg, ok) called after each commit, in the order registered:
 * what each carrier held for the commit goes out (or 503 if it failed),
 * then waiters wake and the expiry timer is set again.
 */
int
server_on_commit(struct server *srv, server_commit_fn fn, void *arg)
{
	if (srv->nhooks == SERVER_MAX_HOOKS)
		return (-1);
	srv->hooks[srv->nhooks].fn = fn;
	srv->hooks[srv->nhooks].arg = arg;
	srv->nhooks++;
	return (0);
}

/* The end of a turn: commit, then tell every hook how it went. */
void
server_commit(struct server *srv)
{
	size_t	i;
	int	ok;

	ok = broker_commit(srv->broker) == 0;
	for (i = 0; i < srv->nhooks; i++)
		srv->hooks[i].fn(srv->hooks[i].arg, ok);
}

static void
server_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	server_commit(arg);
}

static void
server_txn_opened(void *arg)
{
	struct server	*srv = arg;

	event_active(srv->commit_ev, EV_TIMEOUT, 0);
}

static void
server_acquired(const struct lease *l, void *arg)
{
	struct server	*srv = arg;

	waiters_name_changed(srv->waiters, l->name);
	cluster_lease_changed(srv->cluster, l->name);
}

/* A lease ended: the cluster forgets it, if it was published. */
static void
server_ended(const struct lease *l, void *arg)
{
	struct server	*srv = arg;

	cluster_lease_changed(srv->cluster, l->name);
}

/* ready.c: a lease's readiness changed; its waiters look after the commit. */
static void
server_ready_changed(struct lease *l, void *arg)
{
	struct server	*srv = arg;

	waiters_name_changed(srv->waiters, l->name);
	cluster_lease_changed(srv->cluster, l->name);
}

/*
 * The readiness pass runs ms from now, unless it is set already: once a
 * second while there are leases, not at all without (nor when stopping).
 */
static void
server_ready_arm(struct server *srv, uint64_t ms)
{
	struct timeval	tv = { (time_t)(ms / 1000),
			    (suseconds_t)((ms % 1000) * 1000) };

	if (srv->stopping || broker_live_count(srv->broker) == 0 ||
	    evtimer_pending(srv->ready_ev, NULL))
		return;
	evtimer_add(srv->ready_ev, &tv);
}

static void
server_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	(void)fd;
	(void)what;
	ready_pass(srv->ready);
	server_ready_arm(srv, SERVER_READY_MS);
}

/* A commit hook: a first lease sets the readiness pass going. */
static void
server_ready_committed(void *arg, int ok)
{
	(void)ok;
	server_ready_arm(arg, SERVER_READY_MS);
}

/*
 * Readiness: its pass, and its timer, which runs once at once, for the
 * leases loaded from the store (readiness is not stored).
 */
static int
server_ready_init(struct server *srv)
{
	struct timeval	now = { 0, 0 };

	if ((srv->ready = ready_new(srv->broker, server_ready_changed,
	    srv)) == NULL || (srv->ready_ev = evtimer_new(srv->base,
	    server_ready_cb, srv)) == NULL ||
	    server_on_commit(srv, server_ready_committed, srv) == -1)
		return (-1);
	evtimer_add(srv->ready_ev, &now);
	return (0);
}

/* The broker's leases, as the waiters see them. */
static int
server_find(void *arg, const char *name)
{
	struct lease	*l = broker_lookup(arg, name);

	return (l != NULL ? (int)l->ready : -1);
}

static uint64_t
server_index(void *arg)
{
	return (broker_index(arg));
}

/* Set up the loop, HTTP, waiters and reaper; then hand broker its hooks. */
int
server_init(struct server *srv, struct config *cfg, struct broker *b)
{
	struct broker_hooks	 hooks = {
		.txn_opened = server_txn_opened,
		.acquired = server_acquired,
		.ended = server_ended,
		.watch = reaper_watch,
		.unwatch = reaper_unwatch,
		.arg = srv
	};
	struct waiters_source	 src = { server_find, server_index, b };
	struct event_config	*ecfg;

	TAILQ_INIT(&srv->held);
	conn_init(srv);
	srv->cfg = cfg;
	srv->broker = b;
	srv->started_at = clock_now_ms();
	/* The epoll changelist folds a turn's add/del of one fd into one call. */
	if ((ecfg = event_config_new()) == NULL)
		return (-1);
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	srv->base = event_base_new_with_config(ecfg);
	event_config_free(ecfg);
	if (srv->base == NULL ||
	    event_base_priority_init(srv->base, SERVER_PRIORITIES) == -1)
		return (-1);
	if ((srv->commit_ev = event_new(srv->base, -1, 0, server_commit_cb,
	    srv)) == NULL)
		return (-1);
	event_priority_set(srv->commit_ev, SERVER_PRIORITIES - 1);
	if ((srv->metrics = metrics_new()) == NULL ||
	    (srv->waiters = waiters_new(srv, &src)) == NULL ||
	    (srv->reaper = reaper_new(srv)) == NULL ||
	    http_init(srv) == -1 ||
	    server_on_commit(srv, router_committed, srv) == -1 ||
	    server_on_commit(srv, waiters_committed, srv->waiters) == -1 ||
	    server_on_commit(srv, reaper_committed, srv->reaper) == -1 ||
	    server_ready_init(srv) == -1)
		return (-1);
	broker_set_hooks(b, &hooks);
	return (0);
}

/*
 * Leave the loop once every answer is out, or when the grace is over.
 * The HTTP connections close first, inside the loop, and the loop ends
 * after this turn, not at once: a bufferevent frees itself in callbacks
 * that run later in the turn, and never if the loop has stopped.
 */
static void
server_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct timeval	 tick = { 0, SERVER_DRAIN_TICK_MS * 1000 };

	(void)fd;
	(void)what;
	if ((http_flushed(srv) && portserver_flushed(srv->portserver) &&
	    cluster_flushed(srv->cluster)) ||
	    clock_now_ms() - srv->stop_at >= SERVER_GRACE_MS) {
		/* Answers held for a turn still open go out first. */
		if (broker_in_txn(srv->broker))
			server_commit(srv);
		http_close_all(srv);
		event_base_loopexit(srv->base, NULL);
		return;
	}
	event_base_once(srv->base, -1, EV_TIMEOUT, server_drain_cb, srv, &tick);
}

/*
 * Stop accepting, commit what this turn holds, answer every parked
 * request, then leave the loop as soon as the answers have gone out
 * (SERVER_GRACE_MS at most).
 */
void
server_stop(struct server *srv)
{
	struct timeval	tick = { 0, 0 };

	if (srv->stopping)
		return;
	srv->stopping = 1;
	srv->stop_at = clock_now_ms();
	log_info("stopping: no new connections; answering parked requests");
	listen_close(srv);
	portserver_stop(srv->portserver);
	cluster_leave(srv->cluster);
	evtimer_del(srv->ready_ev);
	if (broker_in_txn(srv->broker))
		server_commit(srv);
	waiters_flush(srv->waiters);
	if (broker_in_txn(srv->broker))
		server_commit(srv);
	dns_stop(srv->dns);	/* after the commit has answered its held */
	event_base_once(srv->base, -1, EV_TIMEOUT, server_drain_cb, srv, &tick);
}

void
server_free(struct server *srv)
{
	waiters_free(srv->waiters);
	portserver_free(srv->portserver);
	cluster_free(srv->cluster);
	dns_free(srv->dns);
	srv->portserver = NULL;
	srv->dns = NULL;
	listen_close(srv);	/* if the loop ended without server_stop */
	http_free(srv);
	if (broker_in_txn(srv->broker) && broker_commit(srv->broker) == -1)
		log_warnx("store: last commit failed");
	/* Owner watches live on the event base: end them before it goes. */
	broker_drop_hooks(srv->broker);
	reaper_free(srv->reaper);
	if (srv->ready_ev != NULL)
		event_free(srv->ready_ev);
	ready_free(srv->ready);
	metrics_free(srv->metrics);
	if (srv->commit_ev != NULL)
		event_free(srv->commit_ev);
	if (srv->base != NULL)
		event_base_free(srv->base);
}
