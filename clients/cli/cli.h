/*
 * cli.h: the berth command-line tool's internal interfaces, one section
 * per source file. The tool is a thin layer over libberth (berth.h).
 */
#ifndef CLI_H
#define CLI_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "berth.h"
#include "common.h"

struct option;

/* The exit codes, as berth(1) lists them. */
#define CLI_EXIT_OK		0
#define CLI_EXIT_ERROR		1
#define CLI_EXIT_USAGE		2
#define CLI_EXIT_NOTFOUND	3
#define CLI_EXIT_CONFLICT	4
#define CLI_EXIT_NOCLUSTER	5	/* berthd runs without --cluster */
#define CLI_EXIT_UNREACHABLE	69

/* What every command gets: the global options and a lazy client. */
struct cli {
	const char	*addr;		/* --addr, else NULL ($BERTH_ADDR) */
	int		 json;		/* --json */
	berth_client	*client;	/* opened by cli_client() */
};

/* A command: argv[0] is the command's name; returns the exit code. */
typedef int	(*cli_cmd_fn)(struct cli *, int, char **);

/* berth.c: main, global options, dispatch, shared output helpers */
berth_client	*cli_client(struct cli *);
int		 cli_fail(struct cli *, const berth_error *);
int		 cli_not_broker(const berth_error *, char *, size_t);
int		 cli_not_broker_warn(struct cli *, const char *);
int		 cli_exit_code(int);
int		 cli_usage(const char *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 cli_warn(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
void		 cli_print_json(const char *);
int		 cli_print_json_obj(json_t *);
int		 cli_parse_long(const char *, long, long, long *);
int		 cli_parse_ttl(const char *, const char *, long *);
int		 cli_check_proto(const char *, const char *);
int		 cli_split_meta(const char *, char *, const char **);
void		 cli_format_age(long, char *, size_t);
void		 cli_format_addr(const berth_lease *, char *, size_t);

/* args.c: NAME among the options */
#define ARGS_WORDS	0	/* every word is NAME or extra, "--" or not */
#define ARGS_COMMAND	1	/* NAME, then "--" and a command */
struct cli_args {
	int			 mode;		/* ARGS_WORDS or ARGS_COMMAND */
	const struct option	*longopts;
	char			*name;		/* the first word, or NULL */
	char			*extra;		/* the first unexpected word */
	char			**command;	/* ARGS_COMMAND: after "--" */
	int			 dashdash;	/* "--" was seen */
	int			 state;		/* getopt's slice starts here */
};
void		 args_init(struct cli_args *, int, const struct option *);
int		 args_next(struct cli_args *, int, char **);
const char	*args_refused(const struct cli_args *, char **);

/* table.c: aligned tables for people */
#define TABLE_MAXCOL	8
struct table {
	int		  ncol;
	const char	**headers;
	char		**cells;	/* nrows rows of ncol */
	size_t		  nrows;
	size_t		  width[TABLE_MAXCOL];
};
void		 table_init(struct table *, int, const char **);
int		 table_add(struct table *, const char *const *);
void		 table_print(const struct table *);
void		 table_free(struct table *);

/* cmd-lease.c: acquire, renew, release, revoke, lookup */
int		 cmd_acquire(struct cli *, int, char **);
int		 cmd_renew(struct cli *, int, char **);
int		 cmd_release(struct cli *, int, char **);
int		 cmd_revoke(struct cli *, int, char **);
int		 cmd_lookup(struct cli *, int, char **);

/* cmd-list.c: list [--probe] [--cluster] */
int		 cmd_list(struct cli *, int, char **);

/*
 * cmd-cluster.c: lookup --cluster, and what list --cluster and run --need
 * share with it
 */
int		 cluster_lookup(struct cli *, const char *, long, int, int,
		    int);
int		 cluster_this_node(berth_client *, char **, berth_error *);
size_t		 cluster_count(const berth_leases *, const char *, int);
const berth_lease *cluster_pick(const berth_leases *, const char *,
		    const char *, int);
int		 cluster_watch(berth_client *, const char *, int, long long,
		    uint64_t *, berth_leases **, berth_error *);
void		 cluster_warn_stale(struct cli *, const berth_leases *);
long long	 cluster_now(void);

/* cmd-info.c: status, health, version, nodes */
int		 cmd_status(struct cli *, int, char **);
int		 cmd_health(struct cli *, int, char **);
int		 cmd_version(struct cli *, int, char **);
int		 cmd_nodes(struct cli *, int, char **);

/* cmd-run.c: run NAME ... -- CMD ARGS */
int		 cmd_run(struct cli *, int, char **);

/* cmd-who.c: who PORT */
int		 cmd_who(struct cli *, int, char **);

/* cmd-doctor.c: doctor [NAME] */
int		 cmd_doctor(struct cli *, int, char **);

/* sockets.c: who holds a port on this host, from /proc/net and /proc/PID/fd */
#define SOCK_PROTO_TCP	1
#define SOCK_PROTO_UDP	2
struct sock_holder {
	int		 proto;		/* SOCK_PROTO_TCP or SOCK_PROTO_UDP */
	int		 v6;		/* from tcp6/udp6 */
	int		 listening;	/* TCP LISTEN, or a bound UDP socket */
	char		 local[64];	/* local address:port as text */
	char		 state[16];	/* TCP state name ("LISTEN", ...) */
	pid_t		 pid;		/* 0 if no visible process holds it */
	char		 cmd[256];	/* the holder's command line */
};
int		 sockets_find(uint16_t, struct sock_holder **, size_t *);
size_t		 sockets_bound_ports(uint8_t *);
void		 sockets_cmdline(pid_t, char *, size_t);

#endif /* CLI_H */
