/*
 * owner.c: a lease's owner is a process, not a number. We record the pid
 * with the process's start time and the boot id, so a recycled pid, or any
 * pid recorded before a reboot, reads as dead. An owner is dead only when
 * the kernel says so: a failure to look (no descriptor left, no memory,
 * no permission) leaves it alive, for it must never end a lease.
 */
#include "config.h"

#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define OWNER_PF_KTHREAD	0x00200000	/* linux/sched.h: a kernel thread */

/*
 * Is pid in a PID namespace below the one our /proc shows (and so below
 * berthd's), where the pids it knows are not ours? Its NSpid line then
 * lists more than one number.
 */
int
owner_nested(pid_t pid)
{
	char	 path[64], line[256];
	FILE	*f;
	int	 nested = 0;

	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return (0);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "NSpid:", 6) == 0) {
			nested = strchr(line + 7, '\t') != NULL ||
			    strchr(line + 7, ' ') != NULL;
			break;
		}
	}
	fclose(f);
	return (nested);
}

/*
 * Read the state (field 3), flags (field 9) and start time (field 22) of
 * /proc/PID/stat. The command name in field 2 may hold spaces and
 * parentheses, so parse from the last ')'. On -1, errno says why: ENOENT
 * or ESRCH when the kernel has no such process, anything else when berthd
 * could not look.
 */
static int
owner_stat(pid_t pid, char *state, unsigned int *flags, uint64_t *start)
{
	char		 path[64], buf[1024], *p;
	int		 fd, saved;
	ssize_t		 n;
	unsigned long long v;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	n = read(fd, buf, sizeof buf - 1);
	saved = errno;
	close(fd);
	errno = n == 0 ? EIO : saved;
	if (n <= 0)
		return (-1);
	buf[n] = '\0';
	errno = EINVAL;
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ' || p[2] == '\0')
		return (-1);
	/* state, 5 ids, flags, 6 counters and times, 6 more, starttime */
	if (sscanf(p + 2, "%c %*d %*d %*d %*d %*d %u %*u %*u %*u %*u %*u %*u "
	    "%*d %*d %*d %*d %*d %*d %llu", state, flags, &v) != 3)
		return (-1);
	*start = v;
	return (0);
}

/*
 * owner_stat failed: is that the kernel saying pid is gone? ENOENT or
 * ESRCH from /proc says so; for any other failure (EMFILE, ENFILE,
 * ENOMEM, EACCES...) ask kill(pid, 0), which needs no descriptor: ESRCH
 * is "no such process". Keeps errno for the caller.
 */
static int
owner_absent(pid_t pid)
{
	int	saved = errno;

	if (saved == ENOENT || saved == ESRCH)
		return (1);
	if (kill(pid, 0) == -1 && errno == ESRCH)
		return (1);
	errno = saved;
	return (0);
}

/* A zombie (Z) or dead (X) process has exited; only its parent lags. */
static int
owner_exited(char state)
{
	return (state == 'Z' || state == 'X');
}

/*
 * Fill in the identity of a live process; -1 if it is not visible (errno
 * ESRCH), or if berthd could not look (errno says why). A kernel thread
 * never exits: as an owner it would hold its lease for ever (a pid from
 * another PID namespace may well name one here).
 */
int
owner_read(pid_t pid, struct owner *o)
{
	unsigned int	 flags;
	const char	*boot;
	char		 state;

	memset(o, 0, sizeof *o);
	errno = ESRCH;
	if (pid <= 0)
		return (-1);
	if (owner_stat(pid, &state, &flags, &o->start) == -1) {
		if (owner_absent(pid))
			errno = ESRCH;
		return (-1);
	}
	errno = ESRCH;
	if (owner_exited(state) || (flags & OWNER_PF_KTHREAD))
		return (-1);
	if (*(boot = procid_boot_id()) == '\0') {
		errno = EIO;	/* a lease with no boot id would die at once */
		return (-1);
	}
	o->pid = pid;
	snprintf(o->boot_id, sizeof o->boot_id, "%s", boot);
	return (0);
}

/*
 * Is the very process we recorded still running? OWNER_GONE only when
 * the kernel says so: no such pid, a zombie, another start time, another
 * boot. OWNER_UNKNOWN, errno set, when berthd could not look.
 */
enum owner_state
owner_check(const struct owner *o)
{
	uint64_t	 start;
	unsigned int	 flags;
	const char	*boot;
	char		 state;

	if (o->pid <= 0)
		return (OWNER_LIVE);
	if (*(boot = procid_boot_id()) == '\0') {
		errno = EIO;
		return (OWNER_UNKNOWN);
	}
	if (strcmp(o->boot_id, boot) != 0)
		return (OWNER_GONE);
	if (owner_stat(o->pid, &state, &flags, &start) == -1)
		return (owner_absent(o->pid) ? OWNER_GONE : OWNER_UNKNOWN);
	if (start != o->start || owner_exited(state))
		return (OWNER_GONE);
	return (OWNER_LIVE);
}

/* May the lease go on? Yes unless the kernel says its owner is gone. */
int
owner_alive(const struct owner *o)
{
	return (owner_check(o) != OWNER_GONE);
}

/*
 * A pidfd for the owner, readable once it exits; -1 where the kernel has
 * no pidfd_open (ENOSYS) or berthd has no descriptor left (EMFILE): then
 * the reaper polls. The identity is checked again after opening, so the
 * fd cannot belong to a recycled pid: ESRCH if the owner is gone, and
 * the error of the look if berthd could not tell.
 */
int
owner_pidfd(const struct owner *o)
{
#ifdef SYS_pidfd_open
	int	fd, saved;

	fd = (int)syscall(SYS_pidfd_open, o->pid, 0);
	if (fd == -1)
		return (-1);
	switch (owner_check(o)) {
	case OWNER_LIVE:
		return (fd);
	case OWNER_GONE:
		saved = ESRCH;
		break;
	default:
		saved = errno;
		break;
	}
	close(fd);
	errno = saved;
	return (-1);
#else
	(void)o;
	errno = ENOSYS;
	return (-1);
#endif
}

/* The command name of pid (its /proc comm), or "?" if it cannot be read. */
void
owner_comm(pid_t pid, char *buf, size_t len)
{
	char	 path[64];
	FILE	*f;
	size_t	 n = 0;

	snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
	if ((f = fopen(path, "re")) != NULL) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
		n--;
	if (n == 0)
		buf[n++] = '?';
	buf[n] = '\0';
}

/* Does pid run as uid (its real or effective uid)? */
int
owner_of_uid(pid_t pid, long uid)
{
	char		 path[64], line[256];
	FILE		*f;
	unsigned long	 real, eff;
	int		 yes = 0;

	if (uid < 0)
		return (0);
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return (0);
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "Uid: %lu %lu", &real, &eff) == 2) {
			yes = real == (unsigned long)uid ||
			    eff == (unsigned long)uid;
			break;
		}
	}
	fclose(f);
	return (yes);
}
