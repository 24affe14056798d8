/*
 * skip-check.c: what each Check program is built from when configure
 * found no Check, so that `make check' lists it as skipped (exit status
 * 77) instead of failing to build it.
 */
#include <stdio.h>

int
main(void)
{
	printf("SKIP: Check (libcheck) was not found at configure time "
	    "(install check, re-run configure)\n");
	return (77);
}
