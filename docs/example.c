/*
 * example.c: a small service that finds its port through libberth.
 *
 * It acquires a port under a name (the first argument, "example" by
 * default) with a TTL and itself as the owner, listens on that port,
 * looks its own name up as a client of the service would, renews the
 * lease once and releases it. Build it against an installed libberth:
 *
 *	cc example.c $(pkg-config --cflags --libs berth)
 *
 * and run it with a berthd listening on $BERTH_ADDR (default
 * 127.0.0.1:62893). It is plain C99 plus POSIX: berth's build compiles it
 * with -std=c99 -Wall -Wextra -pedantic -Werror.
 */

#define _POSIX_C_SOURCE	200809L

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <berth.h>

#define EXAMPLE_TTL	30	/* seconds without a renew before it ends */

static int		 listen_on(const char *, int);
static berth_lease	*acquire(berth_client *, const char *);
static int		 serve(berth_client *, const char *);

/*
 * Bind and listen on host:port. The lease names the address clients
 * connect to, so the server listens there rather than on a guess.
 * Returns the socket, or -1 after printing why.
 */
static int
listen_on(const char *host, int port)
{
	struct addrinfo	 hints, *res, *ai;
	char		 serv[16];
	int		 fd = -1, on = 1, error;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%d", port);
	if ((error = getaddrinfo(host, serv, &hints, &res)) != 0) {
		fprintf(stderr, "example: %s: %s\n", host, gai_strerror(error));
		return (-1);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)) == 0 &&
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 128) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd == -1)
		fprintf(stderr, "example: listen on %s:%d: %s\n", host, port,
		    strerror(errno));
	freeaddrinfo(res);
	return (fd);
}

/* Acquire name for this process, with a TTL; NULL after printing why. */
static berth_lease *
acquire(berth_client *c, const char *name)
{
	berth_acquire_opts	*opts;
	berth_lease		*lease = NULL;
	berth_error		 err;

	if ((opts = berth_acquire_opts_new(name)) == NULL) {
		fprintf(stderr, "example: out of memory\n");
		return (NULL);
	}
	berth_acquire_opts_set_ttl(opts, EXAMPLE_TTL);
	berth_acquire_opts_set_pid(opts, (long)getpid());
	if (berth_acquire(c, opts, &lease, &err) != 0)
		fprintf(stderr, "example: %s\n", err.message);
	berth_acquire_opts_free(opts);
	return (lease);
}

/*
 * The life of one lease: acquire, listen, look up, renew, release.
 * The lease is owned by this process, so should we exit early berthd
 * ends it by itself; releasing it is still the polite way out.
 */
static int
serve(berth_client *c, const char *name)
{
	berth_lease	*lease, *found = NULL;
	berth_error	 err;
	const char	*host;
	int		 fd = -1, rc = 1;

	if ((lease = acquire(c, name)) == NULL)
		return (1);
	if ((fd = listen_on(berth_lease_host(lease),
	    berth_lease_port(lease))) == -1)
		goto release;

	/* What any other service would do to find this one. */
	if (berth_lookup(c, name, 0, &found, &err) != 0) {
		fprintf(stderr, "example: %s\n", err.message);
		goto release;
	}
	host = berth_lease_host(found);
	printf("listening on %s%s%s:%d\n", strchr(host, ':') ? "[" : "",
	    host, strchr(host, ':') ? "]" : "", berth_lease_port(found));
	fflush(stdout);

	/* A long-running service would do this every EXAMPLE_TTL / 3 s. */
	if (berth_renew(c, name, berth_lease_token(lease), -1, NULL,
	    &err) != 0) {
		fprintf(stderr, "example: %s\n", err.message);
		goto release;
	}
	rc = 0;

 release:
	if (berth_release(c, name, berth_lease_token(lease), &err) != 0) {
		fprintf(stderr, "example: %s\n", err.message);
		rc = 1;
	}
	if (fd != -1)
		close(fd);
	berth_lease_free(found);
	berth_lease_free(lease);
	return (rc);
}

int
main(int argc, char *argv[])
{
	berth_client	*c;
	berth_error	 err;
	const char	*name = "example";
	int		 rc;

	if (argc > 2) {
		fprintf(stderr, "usage: example [name]\n");
		return (2);
	}
	if (argc == 2)
		name = argv[1];

	/* NULL: the address in $BERTH_ADDR, else 127.0.0.1:62893. */
	if ((c = berth_open(NULL, &err)) == NULL) {
		fprintf(stderr, "example: %s\n", err.message);
		return (1);
	}
	rc = serve(c, name);
	berth_close(c);
	return (rc);
}
