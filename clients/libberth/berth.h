/*
 * berth.h: libberth, the C client of the berth port broker.
 *
 * A small blocking client for berthd's HTTP/JSON API (see docs/api.md and
 * libberth(3)). It depends on libc and jansson only. One berth_client
 * holds one keep-alive connection to one broker; it is not thread-safe
 * (use one client per thread).
 *
 * Every call that can fail returns 0 on success or a negative
 * BERTH_E* code, and fills in a berth_error (when one is given) with the
 * code, the HTTP status and API error code when the broker answered, and
 * a human message that names the broker's address.
 */
#ifndef BERTH_H
#define BERTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_VERSION		"0.1.0"
#define BERTH_DEFAULT_ADDR	"127.0.0.1:62893"

/* Error codes: the return values of every call (negated) and err->code. */
enum berth_errcode {
	BERTH_OK = 0,
	BERTH_EINVAL = 1,	/* a bad argument (name, address, option) */
	BERTH_EUNREACHABLE = 2,	/* no broker answers at the address */
	BERTH_ETIMEOUT = 3,	/* the broker did not answer in time */
	BERTH_EPROTO = 4,	/* the answer was not what berthd sends */
	BERTH_ENOTFOUND = 5,	/* 404: no such lease */
	BERTH_ECONFLICT = 6,	/* 409: name taken or port unavailable */
	BERTH_EFORBIDDEN = 7,	/* 403: bad token, not admin, Host/Origin */
	BERTH_EUNAVAILABLE = 8,	/* 503: pool exhausted or database down */
	BERTH_EAPI = 9,		/* any other error answer from the broker */
	BERTH_ENOMEM = 10	/* out of memory */
};

typedef struct berth_error {
	int		 code;		/* enum berth_errcode */
	int		 http_status;	/* 0 if the broker did not answer */
	char		 api_code[48];	/* e.g. "name_taken", or "" */
	char		 message[384];	/* one line for people */
} berth_error;

/* A lease as the broker shows it. Free with berth_lease_clear. */
typedef struct berth_lease {
	char		 name[64];
	int		 port;
	char		 proto[8];	/* "tcp", "udp" or "both" */
	char		 host[256];	/* where clients connect */
	long		 ttl;		/* seconds, 0 = no expiry */
	char		 expires_at[40];/* RFC 3339, "" when ttl is 0 */
	long		 pid;		/* owner, 0 if none */
	char		 created_at[40];
	char		 renewed_at[40];
	char		 token[72];	/* only from acquire, else "" */
	char		*meta;		/* JSON object text, "{}" if empty */
	char		*json;		/* the whole API object as JSON text */
} berth_lease;

/* A meta key/value pair for berth_acquire. */
typedef struct berth_meta {
	const char	*key;
	const char	*value;
} berth_meta;

/* What to ask for; zero the struct, then set name and what you need. */
typedef struct berth_acquire_opts {
	const char		*name;		/* required */
	int			 port;		/* 0: any pool port */
	const char		*proto;		/* NULL: "tcp" */
	const char		*host;		/* NULL: "127.0.0.1" */
	long			 ttl;		/* seconds; 0: no expiry */
	pid_t			 pid;		/* owner; 0: none */
	const berth_meta	*meta;
	size_t			 nmeta;
	const char		*token;		/* re-acquire idempotently */
} berth_acquire_opts;

typedef struct berth_client berth_client;

/*
 * Connect lazily to addr: "127.0.0.1:62893", "[::1]:62893",
 * "localhost:62893" or "unix:/path". NULL means $BERTH_ADDR, else
 * BERTH_DEFAULT_ADDR. Returns NULL (with err filled in) only for a bad
 * address or no memory; an unreachable broker is reported by the calls.
 */
berth_client	*berth_open(const char *addr, berth_error *err);
void		 berth_close(berth_client *);
const char	*berth_addr(const berth_client *);
/* Timeout for connecting and for each answer, in ms (default 10000). */
void		 berth_set_timeout(berth_client *, int);
/* The X-Berth-Index of the last answer (0 before any). */
uint64_t	 berth_last_index(const berth_client *);

int	berth_acquire(berth_client *, const berth_acquire_opts *,
	    berth_lease *, berth_error *);
/* ttl < 0 keeps the lease's TTL. out may be NULL. */
int	berth_renew(berth_client *, const char *name, const char *token,
	    long ttl, berth_lease *out, berth_error *);
int	berth_release(berth_client *, const char *name, const char *token,
	    berth_error *);
/* Admin release without the token; needs berthd's unix socket. */
int	berth_revoke(berth_client *, const char *name, berth_error *);
/* wait > 0: wait up to that many seconds (at most 300) for the name. */
int	berth_lookup(berth_client *, const char *name, int wait,
	    berth_lease *, berth_error *);
/*
 * All live leases, sorted by name; *out is an array of *n leases to free
 * with berth_leases_free. With index > 0 and wait > 0, waits until the
 * registry changes past index (a watch). *index_out may be NULL.
 */
int	berth_list(berth_client *, uint64_t index, int wait,
	    berth_lease **out, size_t *n, uint64_t *index_out, berth_error *);
/* GET /v1/status: the JSON text in *json (free with berth_free). */
int	berth_status(berth_client *, char **json, berth_error *);
/* GET /v1/health: 0 when the broker and its database are well. */
int	berth_health(berth_client *, berth_error *);

void		 berth_lease_clear(berth_lease *);
void		 berth_leases_free(berth_lease *, size_t);
void		 berth_free(void *);
const char	*berth_strerror(int code);
/* 1 if name is a valid lease name: [a-z0-9][a-z0-9._-]{0,62}. */
int		 berth_name_valid(const char *);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_H */
