/*
 * clock.c: wall-clock milliseconds. Lease times are persisted and compared
 * across restarts, so they are wall-clock, not monotonic. Unit tests freeze
 * and advance the clock to test expiry without sleeping.
 */
#include "config.h"

#include <stdio.h>
#include <time.h>

#include "core.h"

static int	 clock_fake;
static uint64_t	 clock_fake_now;

uint64_t
clock_now_ms(void)
{
	struct timespec	ts;

	if (clock_fake)
		return (clock_fake_now);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
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
