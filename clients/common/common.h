/*
 * common.h: the rules berthd, libberth and the berth CLI share, written
 * once. Each of the three compiles these files into itself (as curl's
 * curlx does); nothing here is exported from libberth, which exports only
 * berth_* (and builds these with -fvisibility=hidden). One section per
 * source file. No libevent, no jansson: plain libc only.
 */
#ifndef BERTH_COMMON_H
#define BERTH_COMMON_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The shared limits. BERTH_DEFAULT_ADDR is also in the public berth.h,
 * which cannot include this file: the two definitions are token for token
 * the same, so a translation unit that sees both (libberth's client.c)
 * makes the compiler warn should they ever differ.
 */
#define BERTH_DEFAULT_PORT	62893
#define BERTH_DEFAULT_ADDR	"127.0.0.1:62893"
#define BERTH_NAME_MAX		63	/* characters in a lease name */
#define BERTH_WAIT_MAX		300	/* seconds of a blocking lookup/watch */
#define BERTH_TTL_MAX		31536000	/* seconds of a lease's TTL: a year */

/* addr.c: one parser for broker addresses */

/*
 * The forms, and what the flags allow:
 *
 *	IPv4:PORT		127.0.0.1:62893
 *	[IPv6]:PORT		[::1]:62893 (an IPv6 literal needs brackets)
 *	localhost:PORT		means 127.0.0.1, never looked up
 *	unix:/PATH		a unix socket; the path is 1-107 bytes
 *	NAME:PORT		only with ADDR_RESOLVE (getaddrinfo, the
 *				first address); without it a name is refused
 *
 * PORT is 1-65535 in decimal digits; 0 only with ADDR_PORT0 (a listener
 * that lets the kernel choose). With ADDR_UNIX_BARE the whole text is a
 * unix socket instead, without "unix:": "@NAME" is an abstract socket
 * (the bytes after '@', no trailing NUL, as portpicker connects to it),
 * anything else a path; the TCP forms are then refused.
 */
#define ADDR_PORT0	0x1	/* allow port 0 */
#define ADDR_RESOLVE	0x2	/* look other host names up */
#define ADDR_UNIX_BARE	0x4	/* "@NAME" or a path, nothing else */

#define ADDR_TEXT_MAX	288
struct addr {
	int			 family;	/* AF_INET, AF_INET6, AF_UNIX */
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 text[ADDR_TEXT_MAX];	/* as given */
	char			 host[256];	/* no brackets; "localhost" as
						   "127.0.0.1"; "" for unix */
	uint16_t		 port;		/* 0 for unix sockets */
	int			 abstract;	/* an abstract unix socket */
	int			 loopback;	/* unix, 127/8 or ::1 */
};

/*
 * Parse s into *a. what names the address in messages ("broker",
 * "listen", "portserver"). Returns 0, or -1 with one line in err that
 * quotes s and shows the accepted forms.
 */
int	 addr_parse(const char *s, int flags, const char *what, struct addr *a,
	    char *err, size_t errlen);

/* names.c: the lease-name rule */

/* The rule as people read it, for every message about a bad name. */
#define BERTH_NAME_RULE	"1-63 characters, [a-z0-9] first, then [a-z0-9._-]"

/* 1 if s is a lease name: [a-z0-9][a-z0-9._-]{0,62}, in any locale. */
int		 names_valid(const char *s);
/*
 * The one message for a bad name, "'NAME' is not a valid name: RULE"
 * (NAME cut at 64 bytes), written to buf; returns buf.
 */
const char	*names_message(const char *name, char *buf, size_t len);

/* procid.c: who this process is to the kernel, read once */

/* The kernel's boot id; "" where /proc does not have it (tried again). */
const char	*procid_boot_id(void);
/* This PID namespace, "pid:[INODE]"; NULL where /proc does not say. */
const char	*procid_pid_namespace(void);

/*
 * sockdiag.c: the kernel's socket tables of this network namespace
 * (sock_diag netlink, else /proc/net), and the processes behind sockets.
 */
#define SOCKDIAG_TCP_ESTABLISHED 1
#define SOCKDIAG_TCP_TIME_WAIT	6
#define SOCKDIAG_TCP_CLOSE	7	/* also an unconnected UDP socket */
#define SOCKDIAG_TCP_LISTEN	10
struct sockdiag_sock {
	int		 family;	/* AF_INET or AF_INET6 */
	int		 protocol;	/* IPPROTO_TCP or IPPROTO_UDP */
	int		 state;		/* the kernel's TCP state number */
	uint16_t	 port;		/* local port */
	unsigned char	 addr[16];	/* local address; 4 bytes for AF_INET */
	uint32_t	 uid;
	uint64_t	 inode;		/* 0: no process holds it (TIME_WAIT) */
};
typedef int	(*sockdiag_fn)(const struct sockdiag_sock *, void *);
int	 sockdiag_walk(int protocol, uint32_t states, uint16_t port,
	    sockdiag_fn fn, void *arg);
int	 sockdiag_find(int family, int protocol, const void *src,
	    uint16_t sport, const void *dst, uint16_t dport,
	    struct sockdiag_sock *s);
void	 sockdiag_holders(const uint64_t *inodes, pid_t *pids, size_t n);
size_t	 sockdiag_inodes_unique(uint64_t *inodes, size_t n);
void	 sockdiag_set_proc_only(int yes);	/* tests */

/* ephemeral.c: net.ipv4.ip_local_port_range; 0, or -1 if unknown */
int	 ephemeral_range(unsigned long *lo, unsigned long *hi);

/* rfc3339.c: the API's times */

/* ms since the epoch as "2024-05-01T12:00:00.123Z" (UTC, always ms). */
void	 rfc3339_format(int64_t ms, char *buf, size_t len);
/*
 * "2024-05-01T12:00:00.123Z", with any fraction or none, and "Z" or an
 * offset such as "+02:00", into ms since the epoch. -1 if s is not one.
 */
int	 rfc3339_parse(const char *s, int64_t *ms);

#endif /* BERTH_COMMON_H */
