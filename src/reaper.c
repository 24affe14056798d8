/*
 * reaper.c: leases end on their own here. TTL expiry runs off one timer
 * set to the earliest expiry in the registry's heap, so no periodic scan
 * of all leases is needed. Owner death is watched through a pidfd per
 * owned lease (readable when the process exits); where the kernel has no
 * pidfd_open, or no fd is left, those leases are polled once a second.
 * The same one-second tick probes the database after a failed write.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "berthd.h"

struct owner_watch {
	struct event	*ev;
	int		 fd;
	struct lease	*lease;
	struct server	*srv;
};

struct reaper {
	struct server	*srv;
	struct event	*expiry;
	struct event	*poll;
	size_t		 polled;	/* owned leases without a pidfd */
};

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

static void
reaper_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reaper	*rp = arg;

	(void)fd;
	(void)what;
	if (rp->polled > 0)
		broker_check_owners(rp->srv->broker);
	/* A failed write: see whether the database takes writes again. */
	if (!broker_db_ok(rp->srv->broker))
		broker_probe_db(rp->srv->broker);
}

struct reaper *
reaper_new(struct server *srv)
{
	struct reaper	*rp;
	struct timeval	 sec = { 1, 0 };

	if ((rp = calloc(1, sizeof *rp)) == NULL)
		return (NULL);
	rp->srv = srv;
	rp->expiry = evtimer_new(srv->base, reaper_expiry_cb, rp);
	rp->poll = event_new(srv->base, -1, EV_PERSIST, reaper_poll_cb, rp);
	if (rp->expiry == NULL || rp->poll == NULL) {
		reaper_free(rp);
		return (NULL);
	}
	event_add(rp->poll, &sec);
	return (rp);
}

void
reaper_free(struct reaper *rp)
{
	if (rp == NULL)
		return;
	if (rp->expiry != NULL)
		event_free(rp->expiry);
	if (rp->poll != NULL)
		event_free(rp->poll);
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

static void
reaper_pidfd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct owner_watch	*w = arg;

	(void)fd;
	(void)what;
	log_debug("lease %s: owner pid %ld exited", w->lease->name,
	    (long)w->lease->owner.pid);
	/* Ending the lease calls reaper_unwatch, which frees w. */
	broker_owner_dead(w->srv->broker, w->lease);
}

/* Broker hook: lease l has an owner to watch. */
void
reaper_watch(struct lease *l, void *arg)
{
	struct server		*srv = arg;
	struct owner_watch	*w;
	int			 fd;

	l->watch = NULL;
	if ((fd = owner_pidfd(&l->owner)) == -1) {
		if (errno != ESRCH && errno != ENOSYS)
			log_debug("lease %s: pidfd: %s; polling its owner",
			    l->name, strerror(errno));
		l->polled = 1;
		srv->reaper->polled++;
		return;
	}
	if ((w = calloc(1, sizeof *w)) == NULL ||
	    (w->ev = event_new(srv->base, fd, EV_READ, reaper_pidfd_cb, w)) ==
	    NULL) {
		free(w);
		close(fd);
		l->polled = 1;
		srv->reaper->polled++;
		return;
	}
	w->fd = fd;
	w->lease = l;
	w->srv = srv;
	event_add(w->ev, NULL);
	l->watch = w;
}

/* Broker hook: lease l ends or is forgotten; stop watching its owner. */
void
reaper_unwatch(struct lease *l, void *arg)
{
	struct server		*srv = arg;
	struct owner_watch	*w = l->watch;

	if (l->polled) {
		l->polled = 0;
		srv->reaper->polled--;
	}
	if (w == NULL)
		return;
	event_free(w->ev);
	close(w->fd);
	free(w);
	l->watch = NULL;
}

/* A commit hook: the turn may have changed the next expiry. */
void
reaper_committed(void *arg, int ok)
{
	(void)ok;
	reaper_schedule(arg);
}
