/*
 * cluster.h: this berthd as a node of a cluster over etcd (cluster.c).
 */
#ifndef CLUSTER_H
#define CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct server;
struct cluster;
struct clusterview;
struct waiters;

/* What /metrics counts of the cluster's work. */
struct cluster_stats {
	uint64_t	 joins;		/* (re)joins: a lease, a read, a watch */
	uint64_t	 publishes;	/* puts of a lease that began or changed */
	uint64_t	 republishes;	/* puts of every lease, on a (re)join */
	uint64_t	 withdrawals;	/* deletes of an ended lease's key */
	uint64_t	 watch_events;
	uint64_t	 etcd_errors;	/* failed calls and ended watches */
};

struct cluster	*cluster_open(struct server *, char *, size_t);
void		 cluster_lease_changed(struct cluster *, const char *);
void		 cluster_committed(void *, int);
void		 cluster_leave(struct cluster *);
int		 cluster_flushed(const struct cluster *);
void		 cluster_free(struct cluster *);
int		 cluster_connected(const struct cluster *);
struct clusterview *cluster_view(const struct cluster *);
struct waiters	*cluster_waiters(const struct cluster *);
size_t		 cluster_waiting(const struct cluster *);
const struct cluster_stats *cluster_stats(const struct cluster *);
int64_t		 cluster_revision(const struct cluster *);
const char	*cluster_endpoint(const struct cluster *);
const char	*cluster_last_error(const struct cluster *);

#endif
