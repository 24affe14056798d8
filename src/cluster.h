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

struct cluster	*cluster_open(struct server *, char *, size_t);
void		 cluster_leave(struct cluster *);
int		 cluster_flushed(const struct cluster *);
void		 cluster_free(struct cluster *);
int		 cluster_connected(const struct cluster *);
const json_t	*cluster_nodes(const struct cluster *);
int64_t		 cluster_revision(const struct cluster *);
const char	*cluster_last_error(const struct cluster *);

#endif
