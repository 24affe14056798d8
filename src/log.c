/*
 * log.c: one line per event on stderr (or a file, reopened on SIGHUP),
 * timestamped and levelled, in the manner of OpenBSD daemons' log.c.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

static enum log_level	 log_level = LOG_LVL_INFO;
static char		*log_path;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

int
log_parse_level(const char *s, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < sizeof log_names / sizeof log_names[0]; i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return (0);
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return (0);
	}
	return (-1);
}

/*
 * Is the log path a symlink that a user other than berthd's (or root)
 * owns? Following it would let that user choose which file berthd
 * appends to (or creates), with berthd's rights.
 */
static int
log_foreign_symlink(uid_t *uid)
{
	struct stat	st;

	if (lstat(log_path, &st) == -1 || !S_ISLNK(st.st_mode))
		return (0);
	*uid = st.st_uid;
	return (st.st_uid != geteuid() && st.st_uid != 0);
}

/* Set the level, and a file to write to instead of stderr (NULL: stderr). */
void
log_init(enum log_level level, const char *path)
{
	uid_t	uid;

	log_level = level;
	free(log_path);
	log_path = path != NULL ? strdup(path) : NULL;
	if (log_path != NULL && log_foreign_symlink(&uid))
		fatalx("log: %s is a symlink owned by uid %lu, not by berthd's "
		    "user (uid %lu) or root: refusing to follow it", log_path,
		    (unsigned long)uid, (unsigned long)geteuid());
	if (log_path != NULL && log_reopen() == -1)
		fatal("log: cannot open %s", log_path);
}

/*
 * Reopen the log file in place of fd 2, so logrotate can move the old one.
 * -1 with errno set if it cannot be opened; EPERM, keeping the old file,
 * if the path has become another user's symlink.
 */
int
log_reopen(void)
{
	int	fd;
	uid_t	uid;

	if (log_path == NULL)
		return (0);
	if (log_foreign_symlink(&uid)) {
		log_warnx("log: %s is now a symlink owned by uid %lu: not "
		    "following it", log_path, (unsigned long)uid);
		errno = EPERM;
		return (-1);
	}
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return (-1);
	if (fd != STDERR_FILENO) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	return (0);
}

static void	 log_vwrite(enum log_level, const char *, const char *,
		    va_list) __attribute__((format(printf, 3, 0)));

static void
log_vwrite(enum log_level level, const char *err, const char *fmt,
    va_list ap)
{
	char		 stamp[32], msg[1024];
	struct timeval	 tv;
	struct tm	 tm;

	if (level > log_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (err != NULL)
		fprintf(stderr, "%s.%03ldZ berthd[%ld]: %s: %s: %s\n", stamp,
		    (long)(tv.tv_usec / 1000), (long)getpid(), log_names[level],
		    msg, err);
	else
		fprintf(stderr, "%s.%03ldZ berthd[%ld]: %s: %s\n", stamp,
		    (long)(tv.tv_usec / 1000), (long)getpid(), log_names[level],
		    msg);
}

#define LOG_FN(fn, level, with_errno)				\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list	 ap;						\
	int	 saved = errno;					\
								\
	va_start(ap, fmt);					\
	log_vwrite(level, with_errno ? strerror(saved) : NULL,	\
	    fmt, ap);						\
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_error, LOG_LVL_ERROR, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * Should a repeating warning be said now? Yes the first time and then at
 * most once per period_ms; when yes, *quiet is how many times it was
 * not said since, for the message.
 */
int
log_every(struct log_every *le, uint64_t period_ms, uint64_t *quiet)
{
	uint64_t	now = clock_now_ms();

	if (le->said != 0 && now - le->said < period_ms) {
		le->quiet++;
		return (0);
	}
	le->said = now != 0 ? now : 1;
	*quiet = le->quiet;
	le->quiet = 0;
	return (1);
}
