/*
 * rfc3339.c: the API's times, "2026-11-26T06:05:43.412Z". berthd writes
 * them; libberth reads them into ms since the epoch for its callers, and
 * the CLI writes them back out where it prints one.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

/*
 * UTC with milliseconds, always: whole seconds would show an expiry up
 * to a second before the real one.
 */
void
rfc3339_format(int64_t ms, char *buf, size_t len)
{
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;
	char		base[32];

	if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "%s", "");
		return;
	}
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", base, (unsigned int)(ms % 1000));
}

/* The zone after the seconds: "Z" or "+hh:mm"/"-hh:mm", as seconds east. */
static int
rfc3339_zone(const char *p, long *east)
{
	int	n = 0, oh, om;

	if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
		*east = 0;
		return (0);
	}
	if ((*p != '+' && *p != '-') ||
	    sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || p[1 + n] != '\0')
		return (-1);
	*east = (*p == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
	return (0);
}

int
rfc3339_parse(const char *s, int64_t *ms)
{
	struct tm	 tm;
	const char	*p;
	int64_t		 frac = 0, scale = 1000;
	long		 east;
	int		 n = 0;
	time_t		 t;

	memset(&tm, 0, sizeof tm);
	if (s == NULL || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n",
	    &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	    &tm.tm_sec, &n) != 6 || n == 0)
		return (-1);
	p = s + n;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
		}
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1 || rfc3339_zone(p, &east) == -1)
		return (-1);
	*ms = ((int64_t)t - east) * 1000 + frac;
	return (0);
}
