/*
 * check_owner.c: unit tests for owner.c. An owner is the process recorded
 * (pid, start time, boot id); it is gone only when the kernel says so:
 * reaped, a zombie, another start time, another boot. When berthd cannot
 * look (here: no descriptor left), the owner is not gone.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

static struct rlimit	saved_nofile;

/* A child that lives until wfd closes. */
static pid_t
spawn_child(int *wfd)
{
	int	fds[2];
	char	c;
	pid_t	pid;

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(fds[1]);
		while (read(fds[0], &c, 1) == -1 && errno == EINTR)
			;
		_exit(0);
	}
	close(fds[0]);
	*wfd = fds[1];
	return (pid);
}

/* End the child and leave it a zombie: exited, not reaped. */
static void
zombie_child(pid_t pid, int wfd)
{
	siginfo_t	info;

	close(wfd);
	memset(&info, 0, sizeof info);
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT),
	    0);
	ck_assert_int_eq(info.si_pid, pid);
}

/* No descriptor left: every open() and pidfd_open() fails with EMFILE. */
static void
exhaust_descriptors(void)
{
	struct rlimit	rl;
	int		fd;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	ck_assert_int_ne(fd = dup(0), -1);
	close(fd);
	rl = saved_nofile;
	rl.rlim_cur = (rlim_t)fd;	/* the lowest free descriptor */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_int_eq(open("/dev/null", O_RDONLY), -1);
	ck_assert_int_eq(errno, EMFILE);
}

static void
restore_descriptors(void)
{
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
}

/* A live child is live; another start time or boot id is not it. */
START_TEST(test_live_and_gone)
{
	struct owner	o, other;
	pid_t		pid;
	int		wfd;

	pid = spawn_child(&wfd);
	ck_assert_int_eq(owner_read(pid, &o), 0);
	ck_assert_int_eq(o.pid, pid);
	ck_assert_uint_gt(o.start, 0);
	ck_assert_str_eq(o.boot_id, procid_boot_id());
	ck_assert_int_eq(owner_check(&o), OWNER_LIVE);
	ck_assert(owner_alive(&o));

	other = o;
	other.start++;
	ck_assert_int_eq(owner_check(&other), OWNER_GONE);
	other = o;
	other.boot_id[0] = other.boot_id[0] == '0' ? '1' : '0';
	ck_assert_int_eq(owner_check(&other), OWNER_GONE);

	close(wfd);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	ck_assert_int_eq(owner_check(&o), OWNER_GONE);
	ck_assert(!owner_alive(&o));
	ck_assert_int_eq(owner_read(pid, &o), -1);
	ck_assert_int_eq(errno, ESRCH);
}
END_TEST

/* A zombie has exited: gone, and no owner for a new lease. */
START_TEST(test_zombie)
{
	struct owner	o, z;
	pid_t		pid;
	int		wfd;

	pid = spawn_child(&wfd);
	ck_assert_int_eq(owner_read(pid, &o), 0);
	zombie_child(pid, wfd);
	ck_assert_int_eq(owner_check(&o), OWNER_GONE);
	ck_assert_int_eq(owner_read(pid, &z), -1);
	ck_assert_int_eq(errno, ESRCH);
	ck_assert_int_eq(owner_pidfd(&o), -1);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

/*
 * No descriptor left to read /proc with: a live owner is not gone
 * (unknown, with the error), and it gets no pidfd; a reaped one is still
 * known gone (kill(pid, 0) needs no descriptor).
 */
START_TEST(test_cannot_look)
{
	struct owner	o, dead, fresh;
	pid_t		pid, gone;
	int		wfd, wfd2;

	pid = spawn_child(&wfd);
	ck_assert_int_eq(owner_read(pid, &o), 0);
	gone = spawn_child(&wfd2);
	ck_assert_int_eq(owner_read(gone, &dead), 0);
	close(wfd2);
	ck_assert_int_eq(waitpid(gone, NULL, 0), gone);

	exhaust_descriptors();
	ck_assert(owner_alive(&o));
	ck_assert_int_eq(owner_check(&o), OWNER_UNKNOWN);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(owner_pidfd(&o), -1);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(owner_read(pid, &fresh), -1);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(owner_check(&dead), OWNER_GONE);
	ck_assert_int_eq(owner_read(gone, &fresh), -1);
	ck_assert_int_eq(errno, ESRCH);
	restore_descriptors();

	ck_assert_int_eq(owner_check(&o), OWNER_LIVE);
	close(wfd);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

/* The pidfd of a live owner becomes readable when it exits. */
START_TEST(test_pidfd)
{
	struct owner	o;
	pid_t		pid;
	int		wfd, fd;

	pid = spawn_child(&wfd);
	ck_assert_int_eq(owner_read(pid, &o), 0);
	fd = owner_pidfd(&o);
	if (fd == -1 && errno == ENOSYS) {
		close(wfd);
		ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
		return;		/* no pidfd_open: the reaper polls */
	}
	ck_assert_int_ge(fd, 0);
	o.start++;
	ck_assert_int_eq(owner_pidfd(&o), -1);
	ck_assert_int_eq(errno, ESRCH);
	close(fd);
	close(wfd);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

static Suite *
owner_suite(void)
{
	Suite	*s = suite_create("owner");
	TCase	*tc = tcase_create("owner");

	tcase_add_test(tc, test_live_and_gone);
	tcase_add_test(tc, test_zombie);
	tcase_add_test(tc, test_cannot_look);
	tcase_add_test(tc, test_pidfd);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	log_init(LOG_LVL_ERROR, NULL);
	sr = srunner_create(owner_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed ? EXIT_FAILURE : EXIT_SUCCESS);
}
