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

/*
 * RFC 3339 UTC with milliseconds: 2026-11-26T06:05:43.412Z. Whole seconds
 * would show an expiry up to a second before the real one.
 */
void
clock_format_rfc3339(uint64_t ms, char *buf, size_t len)
{
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;
	char		base[32];

	gmtime_r(&t, &tm);
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", base, (unsigned int)(ms % 1000));
}
