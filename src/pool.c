/*
 * pool.c: the pool of ports berthd hands out.
 *
 * Every port is in exactly one state. Free ports sit on a FIFO list, and
 * ports just released sit on a cooling FIFO until the reuse delay has
 * passed, so a port freed by one name is not handed straight to another
 * (berthd(8), --reuse-delay). Both lists are doubly linked through two
 * arrays indexed by port, with port 0 (never in a pool) as the end
 * marker: taking, releasing and taking a named port are all O(1), and
 * choosing a port probes a bounded number of candidates (POOL_PROBES from
 * each list).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define POOL_PROBES	256	/* candidates tried before giving up */

enum port_state {
	PORT_OUTSIDE,		/* not in the pool */
	PORT_FREE,		/* on the free list */
	PORT_COOLING,		/* on the cooling list */
	PORT_USED		/* held by a lease */
};

struct pool_list {
	uint16_t	head;
	uint16_t	tail;
	size_t		count;
};

struct pool {
	struct port_range ranges[POOL_MAX_RANGES];
	size_t		  nranges;
	uint64_t	  reuse_delay;	/* ms */
	size_t		  size;
	size_t		  nused;
	struct pool_list  free;
	struct pool_list  cooling;
	uint8_t		  state[65536];
	uint16_t	  next[65536];
	uint16_t	  prev[65536];
	uint32_t	  freed_by[65536];	/* pool_name_hash of the last holder */
	uint64_t	  freed_at[65536];
};

/* FNV-1a: names are short, and a collision only relaxes the reuse delay. */
uint32_t
pool_name_hash(const char *s)
{
	uint32_t	h = 2166136261u;

	while (*s != '\0') {
		h ^= (uint8_t)*s++;
		h *= 16777619u;
	}
	return (h);
}

static void
pool_list_append(struct pool *p, struct pool_list *l, uint16_t port)
{
	l->count++;
	p->next[port] = 0;
	p->prev[port] = l->tail;
	if (l->tail != 0)
		p->next[l->tail] = port;
	else
		l->head = port;
	l->tail = port;
}

static void
pool_list_unlink(struct pool *p, struct pool_list *l, uint16_t port)
{
	l->count--;
	if (p->prev[port] != 0)
		p->next[p->prev[port]] = p->next[port];
	else
		l->head = p->next[port];
	if (p->next[port] != 0)
		p->prev[p->next[port]] = p->prev[port];
	else
		l->tail = p->prev[port];
	p->next[port] = p->prev[port] = 0;
}

static struct pool_list *
pool_list_of(struct pool *p, uint16_t port)
{
	switch (p->state[port]) {
	case PORT_FREE:
		return (&p->free);
	case PORT_COOLING:
		return (&p->cooling);
	default:
		return (NULL);
	}
}

struct pool *
pool_new(const struct port_range *ranges, size_t n, uint64_t reuse_delay_ms)
{
	struct pool	*p;

	if (n > POOL_MAX_RANGES)
		n = POOL_MAX_RANGES;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return (NULL);
	memcpy(p->ranges, ranges, n * sizeof *ranges);
	p->nranges = n;
	p->reuse_delay = reuse_delay_ms;
	pool_reset(p);
	return (p);
}

void
pool_free(struct pool *p)
{
	free(p);
}

/* Put every pool port back on the free list, in ascending order. */
void
pool_reset(struct pool *p)
{
	size_t		i;
	unsigned int	port;

	memset(p->state, PORT_OUTSIDE, sizeof p->state);
	memset(p->next, 0, sizeof p->next);
	memset(p->prev, 0, sizeof p->prev);
	memset(&p->free, 0, sizeof p->free);
	memset(&p->cooling, 0, sizeof p->cooling);
	p->size = p->nused = 0;
	for (i = 0; i < p->nranges; i++) {
		for (port = p->ranges[i].lo; port <= p->ranges[i].hi; port++) {
			if (port == 0 || p->state[port] != PORT_OUTSIDE)
				continue;
			p->state[port] = PORT_FREE;
			pool_list_append(p, &p->free, (uint16_t)port);
			p->size++;
		}
	}
}

int
pool_contains(const struct pool *p, uint16_t port)
{
	return (p->state[port] != PORT_OUTSIDE);
}

size_t
pool_size(const struct pool *p)
{
	return (p->size);
}

size_t
pool_free_count(const struct pool *p)
{
	return (p->size - p->nused);
}

size_t
pool_ranges(const struct pool *p, const struct port_range **out)
{
	*out = p->ranges;
	return (p->nranges);
}

/* Move ports whose reuse delay has passed from cooling to free. */
static void
pool_cool(struct pool *p, uint64_t now)
{
	uint16_t	port;

	while ((port = p->cooling.head) != 0 &&
	    p->freed_at[port] + p->reuse_delay <= now) {
		pool_list_unlink(p, &p->cooling, port);
		p->state[port] = PORT_FREE;
		pool_list_append(p, &p->free, port);
	}
}

static void
pool_mark_used(struct pool *p, uint16_t port)
{
	struct pool_list	*l;

	if ((l = pool_list_of(p, port)) != NULL)
		pool_list_unlink(p, l, port);
	p->state[port] = PORT_USED;
	p->nused++;
}

/*
 * Choose a free pool port that passes probe. Free ports are tried first,
 * oldest first; a busy one goes to the back of the list so the next call
 * does not trip over it again. Only when no free port will do are cooling
 * ports handed out, the longest-cooled first. Returns -1 when none of the
 * candidates tried is usable: the pool is exhausted.
 */
int
pool_take(struct pool *p, uint32_t name_hash, uint64_t now,
    pool_probe_fn probe, void *arg, uint16_t *out)
{
	size_t		tries, budget;
	uint16_t	port, next;

	(void)name_hash;
	pool_cool(p, now);
	/* One trip round the free list at most: a busy port goes to the back. */
	budget = p->free.count < POOL_PROBES ? p->free.count : POOL_PROBES;
	for (tries = 0; tries < budget && (port = p->free.head) != 0; tries++) {
		if (probe == NULL || probe(port, arg)) {
			pool_mark_used(p, port);
			*out = port;
			return (0);
		}
		pool_list_unlink(p, &p->free, port);
		pool_list_append(p, &p->free, port);
	}
	budget = POOL_PROBES;
	for (port = p->cooling.head, tries = 0; port != 0 && tries < budget;
	    port = next, tries++) {
		next = p->next[port];
		if (probe == NULL || probe(port, arg)) {
			pool_mark_used(p, port);
			*out = port;
			return (0);
		}
	}
	return (-1);
}

/*
 * Take one given port: a sticky port (explicit == 0), or a port the request
 * named (explicit == 1). A sticky port must be in the pool and must not be
 * cooling after another name released it while free ports remain. The
 * caller has checked that no lease holds it and that it probes free.
 */
int
pool_take_port(struct pool *p, uint16_t port, uint32_t name_hash,
    uint64_t now, int explicit)
{
	if (port == 0)
		return (-1);
	pool_cool(p, now);
	switch (p->state[port]) {
	case PORT_USED:
		return (-1);
	case PORT_OUTSIDE:
		return (explicit ? 0 : -1);
	case PORT_COOLING:
		if (!explicit && p->freed_by[port] != name_hash &&
		    p->free.head != 0)
			return (-1);
		break;
	default:
		break;
	}
	pool_mark_used(p, port);
	return (0);
}

/* A lease on port ended at time now; it cools before another name gets it. */
void
pool_release(struct pool *p, uint16_t port, uint32_t name_hash, uint64_t now)
{
	if (p->state[port] == PORT_OUTSIDE)
		return;
	if (p->state[port] == PORT_USED)
		p->nused--;
	else
		pool_list_unlink(p, pool_list_of(p, port), port);
	p->freed_by[port] = name_hash;
	p->freed_at[port] = now;
	if (p->reuse_delay == 0) {
		p->state[port] = PORT_FREE;
		pool_list_append(p, &p->free, port);
	} else {
		p->state[port] = PORT_COOLING;
		pool_list_append(p, &p->cooling, port);
	}
}

/* Parse "LO-HI[,LO-HI...]"; 0 on success, else -1 with a message. */
int
pool_parse_ranges(const char *s, struct port_range *out, size_t *n,
    char *err, size_t errlen)
{
	const char	*p = s;
	char		*end;
	unsigned long	 lo, hi;

	*n = 0;
	while (*p != '\0') {
		if (*n == POOL_MAX_RANGES) {
			snprintf(err, errlen, "too many ranges (at most %d)",
			    POOL_MAX_RANGES);
			return (-1);
		}
		if (!isdigit((unsigned char)*p))
			goto bad;
		errno = 0;
		lo = strtoul(p, &end, 10);
		if (*end != '-' || !isdigit((unsigned char)end[1]))
			goto bad;
		hi = strtoul(end + 1, &end, 10);
		if (errno != 0 || lo < 1 || hi > 65535 || lo > hi)
			goto bad;
		out[*n].lo = (uint16_t)lo;
		out[*n].hi = (uint16_t)hi;
		(*n)++;
		if (*end == ',' && end[1] != '\0')
			end++;
		else if (*end != '\0')
			goto bad;
		p = end;
	}
	if (*n == 0)
		goto bad;
	return (0);
bad:
	snprintf(err, errlen, "invalid port range '%s' (want LO-HI with "
	    "1 <= LO <= HI <= 65535, e.g. 50000-50999)", s);
	return (-1);
}

/* Clear bits lo..hi in the candidate map. */
static void
pool_map_clear(uint8_t *map, unsigned long lo, unsigned long hi)
{
	unsigned long	port;

	for (port = lo; port <= hi && port <= 65535; port++)
		map[port] = 0;
}

/* Clear the ports of ip_local_reserved_ports ("a,b-c,...") in map. */
static void
pool_map_clear_reserved(uint8_t *map)
{
	FILE		*f;
	char		 buf[4096], *p, *end;
	unsigned long	 lo, hi;

	if ((f = fopen("/proc/sys/net/ipv4/ip_local_reserved_ports", "re")) ==
	    NULL)
		return;
	if (fgets(buf, sizeof buf, f) != NULL) {
		for (p = buf; *p != '\0' && *p != '\n'; p = end) {
			lo = strtoul(p, &end, 10);
			if (end == p)
				break;
			hi = lo;
			if (*end == '-')
				hi = strtoul(end + 1, &end, 10);
			pool_map_clear(map, lo, hi);
			if (*end == ',')
				end++;
		}
	}
	fclose(f);
}

static void
pool_map_clear_proc(uint8_t *map)
{
	unsigned long	lo, hi;

	if (ephemeral_range(&lo, &hi) == 0)
		pool_map_clear(map, lo, hi);
	pool_map_clear_reserved(map);
}

/* Append "lo-hi" (or "lo") to the comma list in buf; "..." once full. */
static void
pool_list_add(char *buf, size_t len, unsigned long lo, unsigned long hi)
{
	size_t	used = strlen(buf);
	char	item[16];
	int	n;

	if (used >= 3 && strcmp(buf + used - 3, "...") == 0)
		return;
	n = lo == hi ? snprintf(item, sizeof item, "%s%lu",
	    used > 0 ? "," : "", lo) : snprintf(item, sizeof item,
	    "%s%lu-%lu", used > 0 ? "," : "", lo, hi);
	if (used + (size_t)n + 4 < len)
		memcpy(buf + used, item, (size_t)n + 1);
	else if (used + 4 < len)
		memcpy(buf + used, ",...", 5);
}

/*
 * How many of the n ranges' ports are in the kernel's ephemeral range
 * and not reserved (ip_local_reserved_ports)? The kernel picks the local
 * port of outgoing connections among those, so such pool ports are taken
 * by ordinary traffic now and then. *eph is the ephemeral range; list
 * gets those ports as ip_local_reserved_ports writes them ("a-b,c").
 * 0 if /proc does not say.
 */
size_t
pool_ephemeral_overlap(const struct port_range *r, size_t n,
    struct port_range *eph, char *list, size_t listlen)
{
	static uint8_t	map[65537];
	unsigned long	lo, hi, port, start = 0;
	size_t		i, count = 0;

	memset(eph, 0, sizeof *eph);
	if (listlen > 0)
		list[0] = '\0';
	if (ephemeral_range(&lo, &hi) == -1 || hi > 65535)
		return (0);
	eph->lo = (uint16_t)lo;
	eph->hi = (uint16_t)hi;
	memset(map, 0, sizeof map);
	for (i = 0; i < n; i++)
		memset(map + r[i].lo, 1, (size_t)r[i].hi - r[i].lo + 1);
	pool_map_clear_reserved(map);
	map[65536] = 0;
	for (port = lo; port <= hi + 1; port++) {
		if (port <= hi && map[port]) {
			if (start == 0)
				start = port;
			count++;
		} else if (start != 0) {
			if (listlen > 0)
				pool_list_add(list, listlen, start, port - 1);
			start = 0;
		}
	}
	return (count);
}

/* Turn the candidate map into ranges; returns the number of ports. */
static size_t
pool_map_ranges(const uint8_t *map, struct port_range *out, size_t *n)
{
	unsigned int	port, start = 0;
	size_t		count = 0;

	*n = 0;
	for (port = 49152; port <= 65536; port++) {
		if (port <= 65535 && map[port]) {
			if (start == 0)
				start = port;
			count++;
			continue;
		}
		if (start != 0 && *n < POOL_MAX_RANGES) {
			out[*n].lo = (uint16_t)start;
			out[(*n)++].hi = (uint16_t)(port - 1);
		}
		start = 0;
	}
	return (count);
}

/*
 * The default pool (berthd(8), --pool): the IANA dynamic range less the
 * kernel's ephemeral range, its reserved ports and berthd's own ports; if
 * fewer than 256 remain, the whole dynamic range less our own ports
 * (*fallback is then set, for the caller to warn). Returns the number of
 * ranges.
 */
size_t
pool_default_ranges(struct port_range *out, const uint16_t *own, size_t nown,
    int *fallback)
{
	static uint8_t	map[65536];
	size_t		i, n;

	*fallback = 0;
	memset(map, 0, sizeof map);
	memset(map + 49152, 1, 65536 - 49152);
	pool_map_clear_proc(map);
	for (i = 0; i < nown; i++)
		map[own[i]] = 0;
	if (pool_map_ranges(map, out, &n) >= 256)
		return (n);
	*fallback = 1;
	memset(map + 49152, 1, 65536 - 49152);
	for (i = 0; i < nown; i++)
		map[own[i]] = 0;
	pool_map_ranges(map, out, &n);
	return (n);
}
