/*
 * http.h: libberth's internals, one section per source file: the client
 * struct, a minimal blocking HTTP/1.1 client over one keep-alive
 * connection, and the objects the public calls hand out. Nothing here is
 * exported from the shared library.
 */
#ifndef BERTH_HTTP_H
#define BERTH_HTTP_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "berth.h"
#include "common.h"

#define BERTH_HIDDEN	__attribute__((visibility("hidden")))
#define BERTH_EXPORT	__attribute__((visibility("default")))

struct berth_client {
	struct addr	 addr;		/* text as given, for messages */
	char		 host_header[ADDR_TEXT_MAX];
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

/* http.c */
int	bhttp_parse_addr(struct berth_client *, const char *, berth_error *)
	    BERTH_HIDDEN;
int	bhttp_request(struct berth_client *, const char *, const char *,
	    const char *, const char *, int, struct bhttp_response *,
	    berth_error *) BERTH_HIDDEN;
void	bhttp_disconnect(struct berth_client *) BERTH_HIDDEN;
void	bhttp_set_error(berth_error *, int, int, const char *, const char *,
	    ...) __attribute__((format(printf, 5, 6))) BERTH_HIDDEN;

/* lease.c: leases, lists of them, and the acquire options */
struct berth_lease {
	json_t		*obj;		/* the API object */
	char		*json;		/* obj as text */
	char		*meta;		/* obj's meta as text */
	int64_t		 expires_at;
	int64_t		 created_at;
	int64_t		 renewed_at;
};
struct berth_leases {
	struct berth_lease	*v;
	size_t			 n;
	uint64_t		 index;
	int			 stale;		/* the cluster's view only */
};
struct berth_meta {
	char		*key;
	char		*value;
};
struct berth_acquire_opts {
	char		*name;
	int		 port;
	long		 ttl;
	long		 pid;
	char		*proto;
	char		*host;
	char		*token;
	struct berth_meta *meta;
	size_t		 nmeta;
	int		 publish;	/* to the cluster */
	int		 failed;	/* a setter's error, for acquire */
};
int	 lease_from_json(json_t *, struct berth_lease *) BERTH_HIDDEN;
void	 lease_clear(struct berth_lease *) BERTH_HIDDEN;
json_t	*lease_acquire_body(const struct berth_acquire_opts *) BERTH_HIDDEN;

/* info.c: the broker's status, and the nodes of its cluster */
struct berth_info {
	json_t		*obj;
	char		*json;		/* the answer as it came */
};
struct berth_node {
	json_t		*obj;		/* the API object */
	char		*json;		/* obj as text */
	int64_t		 joined_at;
};
struct berth_nodes {
	struct berth_node	*v;
	size_t			 n;
};
int	 info_nodes_from_json(json_t *, struct berth_nodes *) BERTH_HIDDEN;

#endif /* BERTH_HTTP_H */
