/*
 * fuzz_body.c: libFuzzer harness for berthd's input validation: the
 * acquire and renew bodies (leasereq.c), and the name, host, port range
 * and listen address parsers. Beyond the sanitizers it checks that what
 * is accepted really is valid: an accepted acquire has a valid name and
 * host and a meta that re-parses as a JSON object of strings.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check_accepted(const struct lease_req *r)
{
	json_t		*meta, *v;
	const char	*k;

	if (!names_valid(r->name) || !lease_host_valid(r->host) ||
	    lease_proto_parse(lease_proto_name(r->proto)) != r->proto ||
	    r->ttl > BERTH_TTL_MAX)
		abort();
	if (r->meta == NULL)
		return;
	if (strlen(r->meta) > BERTH_META_MAX ||
	    (meta = json_loads(r->meta, 0, NULL)) == NULL ||
	    !json_is_object(meta))
		abort();
	json_object_foreach(meta, k, v) {
		if (!json_is_string(v))
			abort();
	}
	json_decref(meta);
}

/* A refused body is the client's fault: one of the 400 codes, no other. */
static int
fuzz_body_error(const struct berr *e)
{
	return (e->code == BERR_BAD_JSON || e->code == BERR_INVALID_FIELD ||
	    e->code == BERR_INVALID_NAME);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lease_req	 r;
	struct addr	 la;
	struct port_range	 ranges[POOL_MAX_RANGES];
	struct berr		 e;
	uint32_t		 ttl;
	size_t			 n;
	char			*s, err[256];
	int			 has_ttl;

	if (leasereq_parse((const char *)data, size, &r, &e) == 0) {
		fuzz_check_accepted(&r);
		leasereq_clear(&r);
	} else if (!fuzz_body_error(&e) || e.message[0] == '\0')
		abort();
	if (leasereq_parse_renew((const char *)data, size, &ttl, &has_ttl,
	    &e) == 0) {
		if (has_ttl && ttl > BERTH_TTL_MAX)
			abort();
	} else if (!fuzz_body_error(&e))
		abort();
	if ((s = malloc(size + 1)) == NULL)
		return (0);
	memcpy(s, data, size);
	s[size] = '\0';
	if (names_valid(s) && (strlen(s) > BERTH_NAME_MAX || s[0] == '-'))
		abort();
	(void)lease_host_valid(s);
	if (pool_parse_ranges(s, ranges, &n, err, sizeof err) == 0) {
		while (n-- > 0)
			if (ranges[n].lo == 0 || ranges[n].lo > ranges[n].hi)
				abort();
	}
	(void)addr_parse(s, ADDR_PORT0, "listen", &la, err, sizeof err);
	(void)addr_parse(s, ADDR_UNIX_BARE, "portserver", &la, err,
	    sizeof err);
	free(s);
	return (0);
}
