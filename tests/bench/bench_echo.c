/*
 * bench_echo.c: the loopback ceiling for one-connection request/response.
 *
 * usage: bench_echo [-n ROUNDTRIPS] [-s BYTES]
 *
 * Forks a child that echoes whatever it reads on one TCP loopback
 * connection, and sends it BYTES (default 200, about one berth request)
 * at a time, waiting for each echo before the next, as a client does
 * with one keep-alive connection. Neither side does anything else, so
 * no server that answers over such a connection can do more round trips
 * per second than this; a berth acquire+release pair is two of them.
 *
 * Prints a human summary and one line for scripts:
 *   bench_echo roundtrips=N seconds=S roundtrips_per_s=R p50_ms=A p99_ms=B
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define ECHO_MAX	4096

static void
usage(void)
{
	fprintf(stderr, "usage: bench_echo [-n ROUNDTRIPS] [-s BYTES]\n");
	exit(2);
}

static void
nodelay(int fd)
{
	int	one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1)
		err(1, "setsockopt TCP_NODELAY");
}

/* The child: echo until the peer closes. */
static void
echo_serve(int lfd)
{
	char	buf[ECHO_MAX];
	ssize_t	n;
	int	fd;

	if ((fd = accept(lfd, NULL, NULL)) == -1)
		err(1, "accept");
	nodelay(fd);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		if (write(fd, buf, (size_t)n) != n)
			err(1, "echo write");
	_exit(0);
}

/* One round trip: send size bytes, read all of them back. */
static void
roundtrip(int fd, char *buf, size_t size)
{
	size_t	got = 0;
	ssize_t	n;

	if (write(fd, buf, size) != (ssize_t)size)
		err(1, "write");
	while (got < size) {
		if ((n = read(fd, buf + got, size - got)) <= 0)
			errx(1, "echo connection ended early");
		got += (size_t)n;
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof sin;
	char			 buf[ECHO_MAX];
	uint64_t		*lat, t0, start, secs_ns;
	long			 n = 20000, size = 200, i;
	int			 ch, lfd, fd, status;
	pid_t			 child;

	while ((ch = getopt(argc, argv, "n:s:")) != -1) {
		switch (ch) {
		case 'n':
			n = parse_count(optarg, "round trip count", 1, 10000000);
			break;
		case 's':
			size = parse_count(optarg, "size", 1, ECHO_MAX);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if ((lat = calloc((size_t)n, sizeof *lat)) == NULL)
		err(1, "calloc");

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    listen(lfd, 1) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) == -1)
		err(1, "listen on 127.0.0.1");
	if ((child = fork()) == -1)
		err(1, "fork");
	if (child == 0)
		echo_serve(lfd);
	close(lfd);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1)
		err(1, "connect");
	nodelay(fd);
	memset(buf, 'x', sizeof buf);

	for (i = 0; i < 200; i++)	/* warm-up */
		roundtrip(fd, buf, (size_t)size);
	start = now_ns();
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		roundtrip(fd, buf, (size_t)size);
		lat[i] = now_ns() - t0;
	}
	secs_ns = now_ns() - start;
	close(fd);
	if (waitpid(child, &status, 0) == -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		errx(1, "the echo child failed");

	qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
	printf("%ld round trips of %ld bytes on one loopback connection in "
	    "%.3f s: %.0f/s\n", n, size, (double)secs_ns / 1e9,
	    (double)n * 1e9 / (double)secs_ns);
	printf("bench_echo roundtrips=%ld seconds=%.6f roundtrips_per_s=%.1f "
	    "p50_ms=%.4f p99_ms=%.4f\n", n, (double)secs_ns / 1e9,
	    (double)n * 1e9 / (double)secs_ns, quantile_ms(lat, (size_t)n, 0.5),
	    quantile_ms(lat, (size_t)n, 0.99));
	free(lat);
	return (0);
}
