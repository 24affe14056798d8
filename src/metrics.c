/*
 * metrics.c: API requests counted for /metrics by route, method and
 * status, and timed from routing to answer (api-metrics.c writes them
 * out). Routes are the route table's rows (router.c), a fixed set: a raw
 * path would make one series per name. A request that matched no row
 * counts as "other".
 *
 * Counting costs array increments and a clock read per request: no
 * allocation, no locks (one thread).
 */
#include "config.h"

#include <stdlib.h>


#include "berthd.h"

#define METRICS_OTHER	ROUTE_MAX	/* the id of "other" */

struct metrics {
	const char	*label[ROUTE_MAX + 1];	/* as first counted */
	uint64_t	 requests[ROUTE_MAX + 1][METHOD_COUNT]
			    [METRICS_STATUS_COUNT];
	struct latency_hist latency[ROUTE_MAX + 1];
};

static const char *const metrics_method_names[METHOD_COUNT] = {
	"GET", "HEAD", "POST", "DELETE", "OPTIONS", "other"
};

struct metrics *
metrics_new(void)
{
	return (calloc(1, sizeof(struct metrics)));
}

void
metrics_free(struct metrics *m)
{
	free(m);
}

static enum metrics_method
metrics_method(int method)
{
	switch (method) {
	case HTTP_GET:
		return (METHOD_GET);
	case HTTP_HEAD:
		return (METHOD_HEAD);
	case HTTP_POST:
		return (METHOD_POST);
	case HTTP_DELETE:
		return (METHOD_DELETE);
	case HTTP_OPTIONS:
		return (METHOD_OPTIONS);
	default:
		return (METHOD_OTHER);
	}
}

/* Count req's answer; time it from its routing unless it was parked. */
void
metrics_count_request(struct metrics *m, const struct api_req *req,
    int status)
{
	size_t	id = METRICS_OTHER;

	if (req->route != NULL && req->route->id < ROUTE_MAX)
		id = req->route->id;
	m->label[id] = id == METRICS_OTHER ? "other" : req->route->pattern;
	if (status >= METRICS_STATUS_MIN &&
	    status < METRICS_STATUS_MIN + METRICS_STATUS_COUNT)
		m->requests[id][metrics_method(req->method)]
		    [status - METRICS_STATUS_MIN]++;
	if (req->began != 0)
		latency_observe(&m->latency[id], latency_now_ns() - req->began);
}

/* The label of route id, or NULL if nothing was counted for it yet. */
const char *
metrics_route_label(const struct metrics *m, size_t id)
{
	return (id <= ROUTE_MAX ? m->label[id] : NULL);
}

const char *
metrics_method_name(enum metrics_method k)
{
	return (metrics_method_names[k]);
}

/* Requests of route id and method k answered with status code. */
uint64_t
metrics_requests(const struct metrics *m, size_t id, enum metrics_method k,
    size_t code)
{
	return (m->requests[id][k][code - METRICS_STATUS_MIN]);
}

const struct latency_hist *
metrics_latency(const struct metrics *m, size_t id)
{
	return (&m->latency[id]);
}
