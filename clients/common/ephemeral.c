/*
 * ephemeral.c: the kernel's ephemeral port range, from which it picks the
 * local port of every outgoing connection that did not bind one. A pool
 * that overlaps it shares ports with the whole host's outgoing traffic:
 * berthd warns when it starts, and berth doctor says so too.
 */
#include "config.h"

#include <stdio.h>

#include "common.h"

/* net.ipv4.ip_local_port_range: 0, or -1 if /proc does not say. */
int
ephemeral_range(unsigned long *lo, unsigned long *hi)
{
	FILE	*f;
	int	 rc;

	if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re")) ==
	    NULL)
		return (-1);
	rc = fscanf(f, "%lu %lu", lo, hi) == 2 && *lo <= *hi && *hi <= 65535 ?
	    0 : -1;
	fclose(f);
	return (rc);
}
