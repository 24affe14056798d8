/*
 * http.h: libberth's internals: the client struct and a minimal blocking
 * HTTP/1.1 client over one keep-alive connection. Nothing here is
 * exported from the shared library.
 */
#ifndef BERTH_HTTP_H
#define BERTH_HTTP_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "berth.h"

#define BERTH_HIDDEN	__attribute__((visibility("hidden")))

struct berth_client {
	char		 addr[256];	/* as given, for messages */
	char		 host_header[300];
	struct sockaddr_storage ss;
	socklen_t	 sslen;
	int		 fd;		/* -1 while not connected */
	int		 timeout_ms;
	uint64_t	 last_index;
	char		*buf;		/* bytes read but not yet used */
	size_t		 len;
	size_t		 cap;
};

/* One answer. body is NUL-terminated (free it). */
struct bhttp_response {
	int		 status;
	char		*body;
	size_t		 body_len;
};

int	bhttp_parse_addr(struct berth_client *, const char *, berth_error *)
	    BERTH_HIDDEN;
int	bhttp_request(struct berth_client *, const char *, const char *,
	    const char *, const char *, int, struct bhttp_response *,
	    berth_error *) BERTH_HIDDEN;
void	bhttp_disconnect(struct berth_client *) BERTH_HIDDEN;
void	bhttp_set_error(berth_error *, int, int, const char *, const char *,
	    ...) __attribute__((format(printf, 5, 6))) BERTH_HIDDEN;

#endif /* BERTH_HTTP_H */
