/*
 * faultfs.c: an LD_PRELOAD shim that makes one directory's files fail
 * their writes on demand, so the tests can show what berthd does when
 * its disk fills up, is remounted read-only or starts returning I/O
 * errors, and what it does once the fault clears.
 *
 * Environment:
 *   FAULTFS_PATH     a path prefix; only files whose absolute path starts
 *                    with it are touched (the database, its -wal and
 *                    -journal). Unset or empty: nothing is touched.
 *   FAULTFS_CONTROL  a file; while it exists and holds one of
 *                    "enospc"  writes fail with ENOSPC,
 *                    "erofs"   writes and opens for writing fail with EROFS,
 *                    "eio"     writes, fsync and fdatasync fail with EIO.
 *                    Absent, empty or anything else: calls pass through.
 *
 * And, for owners that berthd cannot look at:
 *   FAULTFS_PROC     a file; while it exists and holds an error name,
 *                    "eacces", "emfile", "enfile" or "enomem", then
 *                    optionally pids (all on one line, space separated),
 *                    opening /proc/PID/stat fails with that error for
 *                    those pids, or for every pid if none is given. The
 *                    process is not touched: it runs on, unseen. Unset,
 *                    empty, absent or anything else: opens pass through.
 *
 * "Writes" are write, pwrite(64), writev, pwritev(64)(2), ftruncate(64),
 * fallocate(64) and posix_fallocate(64). Debian's libsqlite3 writes with
 * pwrite64, syncs with fdatasync and shrinks files with ftruncate64.
 *
 * The control files are read at most every FAULTFS_RECHECK_NS (through raw
 * syscalls, so the shim never calls itself), and a descriptor's path is
 * only looked up while a fault is active, so an idle shim costs one
 * clock_gettime per call. Per-descriptor answers are cached with the
 * file's device and inode, so a descriptor number reused behind our back
 * (fclose, close_range) is noticed. Written for a single-threaded daemon:
 * shared state is read and written with relaxed atomics, nothing more.
 */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAULTFS_RECHECK_NS	(50 * 1000 * 1000LL)
#define FAULTFS_NFD		1024
#define FAULTFS_PROC_PIDS	64	/* pids FAULTFS_PROC may name */

enum faultfs_mode {
	FAULT_NONE = 0,
	FAULT_ENOSPC,
	FAULT_EROFS,
	FAULT_EIO
};

enum faultfs_kind {
	KIND_WRITE,		/* data or size changes */
	KIND_SYNC		/* fsync, fdatasync */
};

struct faultfs_fd {
	dev_t		 dev;
	ino_t		 ino;
	unsigned char	 known;		/* dev/ino/inside are valid */
	unsigned char	 inside;	/* the path starts with the prefix */
};

static char			 faultfs_prefix[PATH_MAX];
static size_t			 faultfs_prefixlen;
static char			 faultfs_control[PATH_MAX];
static int			 faultfs_mode_cached;
static long long		 faultfs_checked_at = -1;
static struct faultfs_fd	 faultfs_fds[FAULTFS_NFD];
static char			 faultfs_proc_control[PATH_MAX];
static long long		 faultfs_proc_checked_at = -1;
static int			 faultfs_proc_err;	/* 0: no fault */
static long			 faultfs_proc_pids[FAULTFS_PROC_PIDS];
static size_t			 faultfs_proc_npids;	/* 0: every pid */

static ssize_t	(*real_write)(int, const void *, size_t);
static ssize_t	(*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t	(*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t	(*real_writev)(int, const struct iovec *, int);
static ssize_t	(*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t	(*real_pwritev64)(int, const struct iovec *, int, off64_t);
static ssize_t	(*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t	(*real_pwritev64v2)(int, const struct iovec *, int, off64_t,
		    int);
static int	(*real_ftruncate)(int, off_t);
static int	(*real_ftruncate64)(int, off64_t);
static int	(*real_fallocate)(int, int, off_t, off_t);
static int	(*real_fallocate64)(int, int, off64_t, off64_t);
static int	(*real_posix_fallocate)(int, off_t, off_t);
static int	(*real_posix_fallocate64)(int, off64_t, off64_t);
static int	(*real_fsync)(int);
static int	(*real_fdatasync)(int);
static int	(*real_close)(int);
static int	(*real_dup2)(int, int);
static int	(*real_dup3)(int, int, int);
static int	(*real_open)(const char *, int, ...);
static int	(*real_open64)(const char *, int, ...);
static int	(*real_openat)(int, const char *, int, ...);
static int	(*real_openat64)(int, const char *, int, ...);

/* Look a symbol up in the libraries after us; NULL if there is none. */
static void *
faultfs_sym(const char *name)
{
	return (dlsym(RTLD_NEXT, name));
}

/*
 * Resolve the real functions and read the environment once, at load
 * time, before the program runs. A call that comes in earlier (from
 * another library's constructor) resolves its own function lazily.
 */
__attribute__((constructor)) static void
faultfs_init(void)
{
	const char	*p;

	real_write = faultfs_sym("write");
	real_pwrite = faultfs_sym("pwrite");
	real_pwrite64 = faultfs_sym("pwrite64");
	real_writev = faultfs_sym("writev");
	real_pwritev = faultfs_sym("pwritev");
	real_pwritev64 = faultfs_sym("pwritev64");
	real_pwritev2 = faultfs_sym("pwritev2");
	real_pwritev64v2 = faultfs_sym("pwritev64v2");
	real_ftruncate = faultfs_sym("ftruncate");
	real_ftruncate64 = faultfs_sym("ftruncate64");
	real_fallocate = faultfs_sym("fallocate");
	real_fallocate64 = faultfs_sym("fallocate64");
	real_posix_fallocate = faultfs_sym("posix_fallocate");
	real_posix_fallocate64 = faultfs_sym("posix_fallocate64");
	real_fsync = faultfs_sym("fsync");
	real_fdatasync = faultfs_sym("fdatasync");
	real_close = faultfs_sym("close");
	real_dup2 = faultfs_sym("dup2");
	real_dup3 = faultfs_sym("dup3");
	real_open = faultfs_sym("open");
	real_open64 = faultfs_sym("open64");
	real_openat = faultfs_sym("openat");
	real_openat64 = faultfs_sym("openat64");

	if ((p = getenv("FAULTFS_PATH")) != NULL && *p != '\0' &&
	    strlen(p) < sizeof faultfs_prefix) {
		memcpy(faultfs_prefix, p, strlen(p) + 1);
		faultfs_prefixlen = strlen(p);
	}
	if ((p = getenv("FAULTFS_CONTROL")) != NULL && *p != '\0' &&
	    strlen(p) < sizeof faultfs_control)
		memcpy(faultfs_control, p, strlen(p) + 1);
	if ((p = getenv("FAULTFS_PROC")) != NULL && *p != '\0' &&
	    strlen(p) < sizeof faultfs_proc_control)
		memcpy(faultfs_proc_control, p, strlen(p) + 1);
}

#define FAULTFS_REAL(fn)	do {					\
	if (real_##fn == NULL &&					\
	    (real_##fn = faultfs_sym(#fn)) == NULL) {			\
		errno = ENOSYS;						\
		return (-1);						\
	}								\
} while (0)

static long long
faultfs_now(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return (0);
	return ((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

/* Read the control file with raw syscalls: the shim must not call itself. */
static int
faultfs_read_control(void)
{
	char		 buf[32];
	ssize_t		 n;
	long		 fd;
	size_t		 len;

	if (faultfs_control[0] == '\0')
		return (FAULT_NONE);
	fd = syscall(SYS_openat, AT_FDCWD, faultfs_control,
	    O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return (FAULT_NONE);
	n = syscall(SYS_read, (int)fd, buf, sizeof buf - 1);
	syscall(SYS_close, (int)fd);
	if (n <= 0)
		return (FAULT_NONE);
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	    buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (strcmp(buf, "enospc") == 0)
		return (FAULT_ENOSPC);
	if (strcmp(buf, "erofs") == 0)
		return (FAULT_EROFS);
	if (strcmp(buf, "eio") == 0)
		return (FAULT_EIO);
	return (FAULT_NONE);
}

/* The active fault, re-read from the control file every ~50 ms. */
static int
faultfs_mode(void)
{
	long long	 now, then;
	int		 mode;

	if (faultfs_prefixlen == 0 || faultfs_control[0] == '\0')
		return (FAULT_NONE);
	now = faultfs_now();
	then = __atomic_load_n(&faultfs_checked_at, __ATOMIC_RELAXED);
	if (then >= 0 && now - then < FAULTFS_RECHECK_NS)
		return (__atomic_load_n(&faultfs_mode_cached,
		    __ATOMIC_RELAXED));
	mode = faultfs_read_control();
	__atomic_store_n(&faultfs_mode_cached, mode, __ATOMIC_RELAXED);
	__atomic_store_n(&faultfs_checked_at, now, __ATOMIC_RELAXED);
	return (mode);
}

static int
faultfs_path_inside(const char *path)
{
	return (faultfs_prefixlen > 0 &&
	    strncmp(path, faultfs_prefix, faultfs_prefixlen) == 0);
}

/* Does fd name a file under the prefix? Asked only while a fault is on. */
static int
faultfs_fd_inside(int fd)
{
	struct stat	 st;
	char		 link[64], path[PATH_MAX];
	long		 n;
	int		 inside;

	if (fd < 0 || syscall(SYS_fstat, fd, &st) == -1)
		return (0);
	if (fd < FAULTFS_NFD && faultfs_fds[fd].known &&
	    faultfs_fds[fd].dev == st.st_dev && faultfs_fds[fd].ino == st.st_ino)
		return (faultfs_fds[fd].inside);
	inside = 0;
	if (S_ISREG(st.st_mode)) {
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		n = syscall(SYS_readlinkat, AT_FDCWD, link, path,
		    sizeof path - 1);
		if (n > 0) {
			path[n] = '\0';
			inside = faultfs_path_inside(path);
		}
	}
	if (fd < FAULTFS_NFD) {
		faultfs_fds[fd].dev = st.st_dev;
		faultfs_fds[fd].ino = st.st_ino;
		faultfs_fds[fd].inside = inside != 0;
		faultfs_fds[fd].known = 1;
	}
	return (inside);
}

static void
faultfs_forget(int fd)
{
	if (fd >= 0 && fd < FAULTFS_NFD)
		faultfs_fds[fd].known = 0;
}

/*
 * Should this call on fd fail? Returns the errno to fail with, or 0 to
 * pass through. errno is left as it was when the call goes through.
 */
static int
faultfs_check(int fd, enum faultfs_kind kind)
{
	int	 mode, saved, err;

	saved = errno;
	mode = faultfs_mode();
	err = 0;
	switch (mode) {
	case FAULT_ENOSPC:
		err = kind == KIND_WRITE ? ENOSPC : 0;
		break;
	case FAULT_EROFS:
		err = kind == KIND_WRITE ? EROFS : 0;
		break;
	case FAULT_EIO:
		err = EIO;
		break;
	default:
		break;
	}
	if (err != 0 && !faultfs_fd_inside(fd))
		err = 0;
	errno = saved;
	return (err);
}

#define FAULTFS_FAIL(fd, kind)	do {					\
	int	 faultfs_err_;						\
									\
	if ((faultfs_err_ = faultfs_check((fd), (kind))) != 0) {	\
		errno = faultfs_err_;					\
		return (-1);						\
	}								\
} while (0)

ssize_t
write(int fd, const void *buf, size_t len)
{
	FAULTFS_REAL(write);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_write(fd, buf, len));
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	FAULTFS_REAL(pwrite);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_pwrite(fd, buf, len, off));
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	FAULTFS_REAL(pwrite64);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_pwrite64(fd, buf, len, off));
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	FAULTFS_REAL(writev);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_writev(fd, iov, iovcnt));
}

ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	FAULTFS_REAL(pwritev);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_pwritev(fd, iov, iovcnt, off));
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t off)
{
	FAULTFS_REAL(pwritev64);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_pwritev64(fd, iov, iovcnt, off));
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
	FAULTFS_REAL(pwritev2);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_pwritev2(fd, iov, iovcnt, off, flags));
}

ssize_t
pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off64_t off,
    int flags)
{
	FAULTFS_REAL(pwritev64v2);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_pwritev64v2(fd, iov, iovcnt, off, flags));
}

int
ftruncate(int fd, off_t len)
{
	FAULTFS_REAL(ftruncate);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_ftruncate(fd, len));
}

int
ftruncate64(int fd, off64_t len)
{
	FAULTFS_REAL(ftruncate64);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_ftruncate64(fd, len));
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	FAULTFS_REAL(fallocate);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_fallocate(fd, mode, off, len));
}

int
fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	FAULTFS_REAL(fallocate64);
	FAULTFS_FAIL(fd, KIND_WRITE);
	return (real_fallocate64(fd, mode, off, len));
}

/* posix_fallocate returns the error number instead of setting errno. */
int
posix_fallocate(int fd, off_t off, off_t len)
{
	int	 err;

	if (real_posix_fallocate == NULL && (real_posix_fallocate =
	    faultfs_sym("posix_fallocate")) == NULL)
		return (ENOSYS);
	if ((err = faultfs_check(fd, KIND_WRITE)) != 0)
		return (err);
	return (real_posix_fallocate(fd, off, len));
}

int
posix_fallocate64(int fd, off64_t off, off64_t len)
{
	int	 err;

	if (real_posix_fallocate64 == NULL && (real_posix_fallocate64 =
	    faultfs_sym("posix_fallocate64")) == NULL)
		return (ENOSYS);
	if ((err = faultfs_check(fd, KIND_WRITE)) != 0)
		return (err);
	return (real_posix_fallocate64(fd, off, len));
}

int
fsync(int fd)
{
	FAULTFS_REAL(fsync);
	FAULTFS_FAIL(fd, KIND_SYNC);
	return (real_fsync(fd));
}

int
fdatasync(int fd)
{
	FAULTFS_REAL(fdatasync);
	FAULTFS_FAIL(fd, KIND_SYNC);
	return (real_fdatasync(fd));
}

int
close(int fd)
{
	FAULTFS_REAL(close);
	faultfs_forget(fd);
	return (real_close(fd));
}

int
dup2(int oldfd, int newfd)
{
	FAULTFS_REAL(dup2);
	faultfs_forget(newfd);
	return (real_dup2(oldfd, newfd));
}

int
dup3(int oldfd, int newfd, int flags)
{
	FAULTFS_REAL(dup3);
	faultfs_forget(newfd);
	return (real_dup3(oldfd, newfd, flags));
}

/*
 * A read-only file system refuses to open a file for writing. Resolve
 * path (relative to dirfd) to an absolute one to compare with the prefix.
 * Returns 1 when this open must fail with EROFS.
 */
static int
faultfs_open_refused(int dirfd, const char *path, int flags)
{
	char	 abs[PATH_MAX], link[64];
	long	 n;
	int	 saved, refused;

	if ((flags & O_ACCMODE) == O_RDONLY && (flags & (O_CREAT |
	    O_TRUNC)) == 0)
		return (0);
	saved = errno;
	refused = 0;
	if (faultfs_mode() != FAULT_EROFS || path == NULL)
		goto out;
	if (path[0] == '/') {
		refused = faultfs_path_inside(path);
		goto out;
	}
	if (dirfd == AT_FDCWD) {
		n = syscall(SYS_getcwd, abs, sizeof abs);
		if (n <= 0)
			goto out;
		n = (long)strlen(abs);
	} else {
		snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
		n = syscall(SYS_readlinkat, AT_FDCWD, link, abs,
		    sizeof abs - 1);
		if (n <= 0)
			goto out;
		abs[n] = '\0';
	}
	if ((size_t)n + 1 + strlen(path) >= sizeof abs)
		goto out;
	abs[n] = '/';
	memcpy(abs + n + 1, path, strlen(path) + 1);
	refused = faultfs_path_inside(abs);
 out:
	errno = saved;
	return (refused);
}

/*
 * Read FAULTFS_PROC (raw syscalls, as for FAULTFS_CONTROL): the error to
 * fail with and the pids it applies to.
 */
static void
faultfs_proc_read(void)
{
	static const struct {
		const char	*name;
		int		 err;
	}		 errs[] = { { "eacces", EACCES }, { "emfile", EMFILE },
			    { "enfile", ENFILE }, { "enomem", ENOMEM } };
	char		 buf[1024], *word, *last, *end;
	ssize_t		 n;
	size_t		 i;
	long		 fd, pid;

	faultfs_proc_err = 0;
	faultfs_proc_npids = 0;
	fd = syscall(SYS_openat, AT_FDCWD, faultfs_proc_control,
	    O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return;
	n = syscall(SYS_read, (int)fd, buf, sizeof buf - 1);
	syscall(SYS_close, (int)fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if ((word = strtok_r(buf, " \t\r\n", &last)) == NULL)
		return;
	for (i = 0; i < sizeof errs / sizeof errs[0]; i++)
		if (strcmp(word, errs[i].name) == 0)
			faultfs_proc_err = errs[i].err;
	while ((word = strtok_r(NULL, " \t\r\n", &last)) != NULL &&
	    faultfs_proc_npids < FAULTFS_PROC_PIDS) {
		pid = strtol(word, &end, 10);
		if (end != word && *end == '\0' && pid > 0)
			faultfs_proc_pids[faultfs_proc_npids++] = pid;
	}
}

/*
 * Must this open fail as an unreadable /proc/PID/stat? The errno to fail
 * with, or 0. errno is left as it was.
 */
static int
faultfs_proc_refused(const char *path)
{
	long long	 now;
	char		*end;
	long		 pid;
	size_t		 i;
	int		 saved, err;

	if (faultfs_proc_control[0] == '\0' || path == NULL ||
	    strncmp(path, "/proc/", 6) != 0 || path[6] < '1' || path[6] > '9')
		return (0);
	saved = errno;
	pid = strtol(path + 6, &end, 10);
	err = 0;
	if (strcmp(end, "/stat") != 0)
		goto out;
	now = faultfs_now();
	if (faultfs_proc_checked_at < 0 ||
	    now - faultfs_proc_checked_at >= FAULTFS_RECHECK_NS) {
		faultfs_proc_read();
		faultfs_proc_checked_at = now;
	}
	err = faultfs_proc_err;
	if (err == 0 || faultfs_proc_npids == 0)
		goto out;
	for (i = 0; i < faultfs_proc_npids; i++)
		if (faultfs_proc_pids[i] == pid)
			goto out;
	err = 0;
 out:
	errno = saved;
	return (err);
}

/* The mode argument is there only when O_CREAT or O_TMPFILE is set. */
#define FAULTFS_OPEN_MODE(flags, mode)	do {				\
	(mode) = 0;							\
	if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) {\
		va_list	 ap;						\
									\
		va_start(ap, flags);					\
		(mode) = va_arg(ap, mode_t);				\
		va_end(ap);						\
	}								\
} while (0)

/* Forget whatever was cached for the descriptor an open returns. */
static int
faultfs_opened(int fd)
{
	faultfs_forget(fd);
	return (fd);
}

int
open(const char *path, int flags, ...)
{
	mode_t	 mode;
	int	 err;

	FAULTFS_OPEN_MODE(flags, mode);
	FAULTFS_REAL(open);
	if ((err = faultfs_proc_refused(path)) != 0) {
		errno = err;
		return (-1);
	}
	if (faultfs_open_refused(AT_FDCWD, path, flags)) {
		errno = EROFS;
		return (-1);
	}
	return (faultfs_opened(real_open(path, flags, mode)));
}

int
open64(const char *path, int flags, ...)
{
	mode_t	 mode;
	int	 err;

	FAULTFS_OPEN_MODE(flags, mode);
	FAULTFS_REAL(open64);
	if ((err = faultfs_proc_refused(path)) != 0) {
		errno = err;
		return (-1);
	}
	if (faultfs_open_refused(AT_FDCWD, path, flags)) {
		errno = EROFS;
		return (-1);
	}
	return (faultfs_opened(real_open64(path, flags, mode)));
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t	 mode;
	int	 err;

	FAULTFS_OPEN_MODE(flags, mode);
	FAULTFS_REAL(openat);
	if ((err = faultfs_proc_refused(path)) != 0) {
		errno = err;
		return (-1);
	}
	if (faultfs_open_refused(dirfd, path, flags)) {
		errno = EROFS;
		return (-1);
	}
	return (faultfs_opened(real_openat(dirfd, path, flags, mode)));
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t	 mode;
	int	 err;

	FAULTFS_OPEN_MODE(flags, mode);
	FAULTFS_REAL(openat64);
	if ((err = faultfs_proc_refused(path)) != 0) {
		errno = err;
		return (-1);
	}
	if (faultfs_open_refused(dirfd, path, flags)) {
		errno = EROFS;
		return (-1);
	}
	return (faultfs_opened(real_openat64(dirfd, path, flags, mode)));
}
