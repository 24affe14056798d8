/*
 * names.c: the lease-name rule and the one message that states it, so
 * the broker, the library and the CLI refuse the same names in the same
 * words.
 */
#include "config.h"

#include <stdio.h>

#include "common.h"

/* [a-z0-9] by value, not islower(): a locale must not widen the rule. */
static int
names_alnum(char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
}

int
names_valid(const char *s)
{
	size_t	i;

	if (s == NULL || !names_alnum(s[0]))
		return (0);
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= BERTH_NAME_MAX)
			return (0);
		if (!names_alnum(s[i]) && s[i] != '.' && s[i] != '_' &&
		    s[i] != '-')
			return (0);
	}
	return (1);
}

const char *
names_message(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "'%.64s' is not a valid name: " BERTH_NAME_RULE,
	    name != NULL ? name : "");
	return (buf);
}
