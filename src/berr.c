/*
 * berr.c: the core's errors. The core (broker, lease rules, request
 * bodies) says what went wrong as an enum berr_code and a message for
 * people; each carrier decides what that means on its wire (the HTTP API
 * maps codes to statuses in request.c, the portserver only logs).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "core.h"

/* The API's snake_case error codes (docs/api.md), by enum berr_code. */
static const char *const berr_names[BERR_COUNT] = {
	[BERR_BAD_JSON] = "bad_json",
	[BERR_INVALID_FIELD] = "invalid_field",
	[BERR_INVALID_NAME] = "invalid_name",
	[BERR_PID_NOT_VISIBLE] = "pid_not_visible",
	[BERR_BAD_TOKEN] = "bad_token",
	[BERR_NOT_FOUND] = "not_found",
	[BERR_NAME_TAKEN] = "name_taken",
	[BERR_PORT_UNAVAILABLE] = "port_unavailable",
	[BERR_POOL_EXHAUSTED] = "pool_exhausted",
	[BERR_LEASE_LIMIT] = "lease_limit",
	[BERR_DB_UNAVAILABLE] = "db_unavailable",
	[BERR_NOMEM] = "internal"
};

void
berr_set(struct berr *e, enum berr_code code, const char *fmt, ...)
{
	va_list	ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

const char *
berr_name(enum berr_code code)
{
	return (code < BERR_COUNT ? berr_names[code] : "internal");
}
