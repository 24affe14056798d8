/*
 * clock.c: berthd's clock, milliseconds since the epoch. Lease times are
 * persisted and compared across restarts, so they are wall-clock times;
 * but while berthd runs its clock advances with CLOCK_BOOTTIME (which
 * counts suspend and which nobody sets) from the wall-clock time it read
 * first, so setting the system clock back or forth neither keeps an
 * expired lease alive nor ends a live one early. Times shown to clients
 * go through clock_wall_ms, which puts them on the wall clock of now.
 * Unit tests freeze and advance the clock to test expiry without
 * sleeping.
 */
#include "config.h"

#include <stdio.h>
#include <time.h>

#include "core.h"

static int	 clock_fake;
static uint64_t	 clock_fake_now;
static int	 clock_started;
static int64_t	 clock_boot_to_wall;	/* ns, when first read */

static int64_t
clock_read_ns(clockid_t id)
{
	struct timespec	ts;

	clock_gettime(id, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* How far the wall clock is ahead of CLOCK_BOOTTIME, in ns. */
static int64_t
clock_wall_offset(void)
{
	return (clock_read_ns(CLOCK_REALTIME) - clock_read_ns(CLOCK_BOOTTIME));
}

uint64_t
clock_now_ms(void)
{
	if (clock_fake)
		return (clock_fake_now);
	if (!clock_started) {
		clock_boot_to_wall = clock_wall_offset();
		clock_started = 1;
	}
	return ((uint64_t)((clock_read_ns(CLOCK_BOOTTIME) +
	    clock_boot_to_wall) / 1000000));
}

/*
 * A time t of berthd's clock as the system's wall clock shows it now: the
 * same distance from now. The two differ by how far the wall clock was
 * set since berthd started. Only a difference of a second or more is
 * followed: NTP's slewing moves the wall clock against CLOCK_BOOTTIME by
 * up to half a millisecond a second, and following that would show one
 * lease's times a millisecond apart in two answers. 0 (never) stays 0.
 */
uint64_t
clock_wall_ms(uint64_t t)
{
	static int64_t	shown;	/* ms, the setting times are shown with */
	int64_t		set;

	if (clock_fake || t == 0)
		return (t);
	clock_now_ms();
	set = (clock_wall_offset() - clock_boot_to_wall) / 1000000;
	if (set - shown >= 1000 || shown - set >= 1000)
		shown = set;
	return ((int64_t)t + shown > 0 ? (uint64_t)((int64_t)t + shown) : 1);
}

void
clock_set_fake(uint64_t now)
{
	clock_fake = 1;
	clock_fake_now = now;
}

void
clock_advance(uint64_t ms)
{
	clock_fake_now += ms;
}

void
clock_use_real(void)
{
	clock_fake = 0;
}
