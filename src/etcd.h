/*
 * etcd.h: berthd's client of etcd's v3 JSON gateway (etcd.c).
 */
#ifndef ETCD_H
#define ETCD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct etcd_endpoint;
struct etcd;
struct etcd_watch;

/* An answer: the JSON object, or NULL and why (one line) on failure. */
typedef void	(*etcd_answer_fn)(void *, json_t *, const char *);
/* One WatchResponse ("result" of a watch message). */
typedef void	(*etcd_event_fn)(void *, json_t *);
/* The watch ended (etcd went away, or the stream failed), and why. */
typedef void	(*etcd_end_fn)(void *, const char *);

/* TLS for https:// endpoints: the CA file, client certificate and key
 * (NULL or "": the system's CAs, no client certificate). */
struct etcd	*etcd_new(struct event_base *, const struct etcd_endpoint *,
		    size_t, const char *, const char *, const char *);
int		 etcd_tls_check(const char *, const char *, const char *,
		    char *, size_t);
void		 etcd_free(struct etcd *);
const char	*etcd_endpoint(const struct etcd *);
const char	*etcd_last_error(const struct etcd *);
int		 etcd_failover(struct etcd *);
/* POST body to path ("/v3/kv/put"...); -1 if it could not be sent. */
int		 etcd_call(struct etcd *, const char *, json_t *,
		    etcd_answer_fn, void *);
/* Watch from a WatchCreateRequest object, on a connection of its own. */
struct etcd_watch *etcd_watch(struct etcd *, json_t *, etcd_event_fn,
		    etcd_end_fn, void *);
void		 etcd_watch_free(struct etcd_watch *);

char		*etcd_b64(const void *, size_t);
char		*etcd_unb64(const char *, size_t *);
int64_t		 etcd_int(json_t *, const char *);

#endif
