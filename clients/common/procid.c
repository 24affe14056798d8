/*
 * procid.c: the kernel's boot id and this process's PID namespace. A pid
 * names a process only on one boot of one host and inside one PID
 * namespace, so berthd records both with a lease's owner and publishes
 * them in /v1/status, and a client compares them with its own before it
 * names itself as an owner. Each is read once and kept.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static char	procid_boot[40];
static char	procid_ns[64];

/* The boot id, newline cut; "" (and read again next time) if unreadable. */
const char *
procid_boot_id(void)
{
	FILE	*f;

	if (procid_boot[0] != '\0')
		return (procid_boot);
	if ((f = fopen("/proc/sys/kernel/random/boot_id", "re")) == NULL)
		return (procid_boot);
	if (fgets(procid_boot, sizeof procid_boot, f) == NULL)
		procid_boot[0] = '\0';
	fclose(f);
	procid_boot[strcspn(procid_boot, "\n")] = '\0';
	return (procid_boot);
}

/* "pid:[4026531836]"; NULL (and read again next time) if unreadable. */
const char *
procid_pid_namespace(void)
{
	ssize_t	n;

	if (procid_ns[0] != '\0')
		return (procid_ns);
	n = readlink("/proc/self/ns/pid", procid_ns, sizeof procid_ns - 1);
	if (n <= 0) {
		procid_ns[0] = '\0';
		return (NULL);
	}
	procid_ns[n] = '\0';
	return (procid_ns);
}
