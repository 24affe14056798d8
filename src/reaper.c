/*
 * reaper.c: leases end on their own here. TTL expiry runs off one timer
 * set to the earliest expiry in the registry's heap, so no periodic scan
 * of all leases is needed.
 *
 * Owner death is watched through a pidfd per owned lease (readable when
 * the process exits), but only within a budget of descriptors set at
 * start from RLIMIT_NOFILE, so that leases never take the descriptors
 * clients, listeners and the database need. Owners beyond the budget, or
 * all of them where the kernel has no pidfd_open, are polled: every
 * REAPER_TICK_MS a slice of them, sized to the time since the last one,
 * so that each is looked at once every REAPER_CYCLE_MS (0.8 s) even when
 * ticks run late, and no tick holds the loop for a whole pass. A pidfd
 * given back by an ended lease goes to a polled owner. An owner berthd
 * cannot look at (owner_check's OWNER_UNKNOWN) keeps its lease.
 *
 * A one-second tick probes the database after a failed write.
 */
#include "config.h"

#include <sys/resource.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "berthd.h"

#define REAPER_TICK_MS		10	/* a slice of the polled owners */
#define REAPER_CYCLE_MS		800	/* each polled owner looked at once */
#define REAPER_PROMOTE_MAX	64	/* owners moved to a pidfd a tick */
#define REAPER_FD_SPARE		32	/* fds for neither pidfd nor client */
#define REAPER_SAY_MS		10000	/* how often to say one is unknown */

/* A pidfd watch: the owner's pidfd and its event. */
struct owner_watch {
	struct event	*ev;
	int		 fd;
	struct lease	*lease;
	struct reaper	*rp;
};

TAILQ_HEAD(reaper_polled, lease);

struct reaper {
	struct server	*srv;
	struct event	*expiry;
	struct event	*dbprobe;	/* once a second */
	struct event	*tick;		/* while owners are polled */
	struct reaper_polled polled;	/* owners without a pidfd */
	size_t		 npolled;
	struct lease	*cursor;	/* the next polled owner to look at */
	uint64_t	 ticked_ns;	/* when the last slice was polled */
	uint64_t	 due;		/* owner-ns of polling owed, to cycle */
	int		 said_full;	/* the budget's end was logged */
	size_t		 pidfds;	/* pidfds held */
	size_t		 budget;	/* pidfds we may hold */
	int		 no_pidfd;	/* the kernel has no pidfd_open */
};

static void	reaper_pidfd_cb(evutil_socket_t, short, void *);

static void
reaper_expiry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reaper	*rp = arg;
	struct timeval	 retry = { 1, 0 };

	(void)fd;
	(void)what;
	if (broker_expire_due(rp->srv->broker) == -1) {
		/* The store failed; lookups already hide these leases. */
		evtimer_add(rp->expiry, &retry);
		return;
	}
	reaper_schedule(rp);
}

/* A failed write: see whether the database takes writes again. */
static void
reaper_dbprobe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reaper	*rp = arg;

	(void)fd;
	(void)what;
	if (!broker_db_ok(rp->srv->broker))
		broker_probe_db(rp->srv->broker);
}

/*
 * How many pidfds leases may hold: the open file limit less what else
 * berthd may hold at once: --max-connections clients (main.c has fitted
 * them under the limit), the listeners, and REAPER_FD_SPARE for stdio,
 * the database and its WAL, the event loop's own, the log, and those
 * held for a moment (test binds, /proc reads, sock_diag). Said at start.
 */
static size_t
reaper_budget(const struct config *cfg)
{
	struct rlimit	rl;
	rlim_t		others;
	size_t		budget;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("reaper: getrlimit; every owner will be polled");
		return (0);
	}
	if (rl.rlim_cur == RLIM_INFINITY) {
		log_info("reaper: no open file limit: every owner gets a "
		    "pidfd");
		return (SIZE_MAX);
	}
	others = (rlim_t)cfg->max_connections + cfg->nlisten +
	    (cfg->has_portserver ? 1 : 0) + REAPER_FD_SPARE;
	budget = rl.rlim_cur > others ? (size_t)(rl.rlim_cur - others) : 0;
	log_info("reaper: up to %zu owners watched by pidfd, the others polled "
	    "(open file limit %llu: %u kept for client connections, %zu for "
	    "listeners, %d spare)", budget, (unsigned long long)rl.rlim_cur,
	    cfg->max_connections, cfg->nlisten + (cfg->has_portserver ? 1 : 0),
	    REAPER_FD_SPARE);
	return (budget);
}

/* Poll l's owner: at the back of the list, looked at within a cycle. */
static void
reaper_poll_add(struct reaper *rp, struct lease *l)
{
	struct timeval	tick = { 0, REAPER_TICK_MS * 1000 };

	TAILQ_INSERT_TAIL(&rp->polled, l, poll_entry);
	l->polled = 1;
	if (rp->npolled++ == 0) {
		rp->ticked_ns = latency_now_ns();
		rp->due = 0;
		event_add(rp->tick, &tick);
	}
}

static void
reaper_poll_remove(struct reaper *rp, struct lease *l)
{
	if (rp->cursor == l)
		rp->cursor = TAILQ_NEXT(l, poll_entry);
	TAILQ_REMOVE(&rp->polled, l, poll_entry);
	l->polled = 0;
	rp->npolled--;
}

/*
 * Watch l's owner through a pidfd, if the budget has one and the owner
 * is verified live; -1 otherwise (the caller polls it).
 */
static int
reaper_pidfd_watch(struct reaper *rp, struct lease *l)
{
	struct owner_watch	*w;
	int			 fd;

	if (rp->no_pidfd)
		return (-1);
	if (rp->pidfds >= rp->budget) {
		if (!rp->said_full)
			log_warnx("reaper: the pidfd budget (%zu) is used up; "
			    "owners beyond it are polled, which costs CPU: "
			    "raise the open file limit, or lower "
			    "--max-connections", rp->budget);
		rp->said_full = 1;
		return (-1);
	}
	if ((fd = owner_pidfd(&l->owner)) == -1) {
		if (errno == ENOSYS) {
			log_info("reaper: the kernel has no pidfd_open; "
			    "every owner is polled");
			rp->no_pidfd = 1;
		} else if (errno != ESRCH)
			log_debug("lease %s: pidfd: %s; polling its owner",
			    l->name, strerror(errno));
		return (-1);
	}
	if ((w = calloc(1, sizeof *w)) == NULL ||
	    (w->ev = event_new(rp->srv->base, fd, EV_READ, reaper_pidfd_cb,
	    w)) == NULL || event_add(w->ev, NULL) == -1) {
		if (w != NULL && w->ev != NULL)
			event_free(w->ev);
		free(w);
		close(fd);
		return (-1);
	}
	w->fd = fd;
	w->lease = l;
	w->rp = rp;
	l->watch = w;
	rp->pidfds++;
	return (0);
}

static void
reaper_pidfd_drop(struct reaper *rp, struct lease *l)
{
	struct owner_watch	*w = l->watch;

	event_free(w->ev);
	close(w->fd);
	free(w);
	l->watch = NULL;
	rp->pidfds--;
}

/*
 * The owner's pidfd is readable: it has exited. It is polled from now
 * on, so that should the store refuse to end the lease, the poll tries
 * again; ending it takes it off the poll.
 */
static void
reaper_pidfd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct owner_watch	*w = arg;
	struct reaper		*rp = w->rp;
	struct lease		*l = w->lease;

	(void)fd;
	(void)what;
	log_debug("lease %s: owner pid %ld exited", l->name,
	    (long)l->owner.pid);
	reaper_pidfd_drop(rp, l);
	reaper_poll_add(rp, l);
	broker_owner_dead(rp->srv->broker, l);
}

/*
 * Pidfds given back by ended leases go to polled owners, longest polled
 * first, at most REAPER_PROMOTE_MAX a tick. One that gets none (its owner
 * gone, or no descriptor) goes to the back and stays polled.
 */
static void
reaper_promote(struct reaper *rp)
{
	struct lease	*l;
	size_t		 n;

	for (n = 0; n < REAPER_PROMOTE_MAX && rp->pidfds < rp->budget &&
	    !rp->no_pidfd && (l = TAILQ_FIRST(&rp->polled)) != NULL; n++) {
		reaper_poll_remove(rp, l);
		if (reaper_pidfd_watch(rp, l) == -1)
			reaper_poll_add(rp, l);
	}
}

/* Look at one polled owner: its lease ends if the kernel says it is gone. */
static void
reaper_poll_one(struct reaper *rp, struct lease *l)
{
	static struct log_every	said;
	uint64_t		quiet;
	int			err;

	/* l is freed if its lease ends, and kept if its owner is unknown. */
	if (broker_check_owner(rp->srv->broker, l) != OWNER_UNKNOWN)
		return;
	err = errno;
	if (log_every(&said, REAPER_SAY_MS, &quiet))
		log_warnx("reaper: cannot tell whether pid %ld, owner of %s, "
		    "still runs (%s); its lease stays (%llu more since last "
		    "said)", (long)l->owner.pid, l->name, strerror(err),
		    (unsigned long long)quiet);
}

/*
 * Every REAPER_TICK_MS while owners are polled: the next slice of them.
 * Each tick owes npolled looks per REAPER_CYCLE_MS of the time since the
 * last one, so the cursor goes round them all once a cycle however late
 * the ticks run, and a few owners are not looked at every tick.
 */
static void
reaper_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reaper	*rp = arg;
	struct lease	*l;
	const uint64_t	 cycle = REAPER_CYCLE_MS * 1000000ULL;
	uint64_t	 now = latency_now_ns(), n;

	(void)fd;
	(void)what;
	rp->due += (uint64_t)rp->npolled * (now - rp->ticked_ns);
	if (rp->due > (uint64_t)rp->npolled * cycle)
		rp->due = (uint64_t)rp->npolled * cycle;	/* one pass */
	rp->ticked_ns = now;
	reaper_promote(rp);
	/* While the store refuses writes no lease can end: wait for it. */
	if (!broker_db_ok(rp->srv->broker))
		rp->due = 0;
	for (n = rp->due / cycle; n > 0 && rp->npolled > 0 &&
	    broker_db_ok(rp->srv->broker); n--) {
		if ((l = rp->cursor) == NULL)
			l = TAILQ_FIRST(&rp->polled);
		rp->cursor = TAILQ_NEXT(l, poll_entry);
		reaper_poll_one(rp, l);
		rp->due -= cycle;
	}
	if (rp->npolled == 0)
		event_del(rp->tick);
}

struct reaper *
reaper_new(struct server *srv)
{
	struct reaper	*rp;
	struct timeval	 sec = { 1, 0 };

	if ((rp = calloc(1, sizeof *rp)) == NULL)
		return (NULL);
	rp->srv = srv;
	TAILQ_INIT(&rp->polled);
	rp->expiry = evtimer_new(srv->base, reaper_expiry_cb, rp);
	rp->dbprobe = event_new(srv->base, -1, EV_PERSIST, reaper_dbprobe_cb,
	    rp);
	rp->tick = event_new(srv->base, -1, EV_PERSIST, reaper_tick_cb, rp);
	if (rp->expiry == NULL || rp->dbprobe == NULL || rp->tick == NULL) {
		reaper_free(rp);
		return (NULL);
	}
	event_add(rp->dbprobe, &sec);
	rp->budget = reaper_budget(srv->cfg);
	/* Read now: owners are recorded and checked with it. */
	if (*procid_boot_id() == '\0')
		log_warnx("reaper: cannot read the boot id; until it can be "
		    "read no acquire can name an owner, and no owner ends");
	return (rp);
}

void
reaper_free(struct reaper *rp)
{
	if (rp == NULL)
		return;
	if (rp->expiry != NULL)
		event_free(rp->expiry);
	if (rp->dbprobe != NULL)
		event_free(rp->dbprobe);
	if (rp->tick != NULL)
		event_free(rp->tick);
	free(rp);
}

/* Set the expiry timer to the earliest expiry; called after each commit. */
void
reaper_schedule(struct reaper *rp)
{
	uint64_t	next = broker_next_expiry(rp->srv->broker);
	uint64_t	now = clock_now_ms(), delay;
	struct timeval	tv;

	if (next == 0) {
		evtimer_del(rp->expiry);
		return;
	}
	delay = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
	evtimer_add(rp->expiry, &tv);
}

/* Broker hook: lease l has an owner to watch, by pidfd or by poll. */
void
reaper_watch(struct lease *l, void *arg)
{
	struct server	*srv = arg;

	l->watch = NULL;
	l->polled = 0;
	if (reaper_pidfd_watch(srv->reaper, l) == -1)
		reaper_poll_add(srv->reaper, l);
}

/* Broker hook: lease l ends or is forgotten; stop watching its owner. */
void
reaper_unwatch(struct lease *l, void *arg)
{
	struct server	*srv = arg;

	if (l->watch != NULL)
		reaper_pidfd_drop(srv->reaper, l);
	if (l->polled)
		reaper_poll_remove(srv->reaper, l);
}

/* A commit hook: the turn may have changed the next expiry. */
void
reaper_committed(void *arg, int ok)
{
	(void)ok;
	reaper_schedule(arg);
}
