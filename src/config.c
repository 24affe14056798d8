/*
 * config.c: berthd's flags and their environment twins (berthd(8)). The
 * environment is read first and flags override it; a repeatable flag given
 * on the command line replaces its twin's whole list.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "berthd.h"
#include "etcd.h"

enum {
	OPT_LISTEN = 256, OPT_DB, OPT_RANGE, OPT_REUSE_DELAY, OPT_LOG_LEVEL,
	OPT_LOG_FILE, OPT_ALLOW_REMOTE, OPT_ALLOW_ORIGIN, OPT_MAX_CONN,
	OPT_MAX_HEADER, OPT_IDLE_TIMEOUT, OPT_SOCKET_MODE, OPT_SYNC,
	OPT_PORTSERVER, OPT_FOREGROUND, OPT_MAX_LEASES, OPT_CLUSTER,
	OPT_NODE, OPT_ADVERTISE, OPT_CLUSTER_PREFIX, OPT_CLUSTER_TTL,
	OPT_CLUSTER_CACERT, OPT_CLUSTER_CERT, OPT_CLUSTER_KEY, OPT_DNS,
	OPT_HELP, OPT_VERSION
};

static const struct option config_options[] = {
	{ "listen",		required_argument, NULL, OPT_LISTEN },
	{ "db",			required_argument, NULL, OPT_DB },
	{ "range",		required_argument, NULL, OPT_RANGE },
	{ "reuse-delay",	required_argument, NULL, OPT_REUSE_DELAY },
	{ "log-level",		required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-file",		required_argument, NULL, OPT_LOG_FILE },
	{ "allow-remote",	no_argument,	   NULL, OPT_ALLOW_REMOTE },
	{ "allow-origin",	required_argument, NULL, OPT_ALLOW_ORIGIN },
	{ "max-connections",	required_argument, NULL, OPT_MAX_CONN },
	{ "max-header-size",	required_argument, NULL, OPT_MAX_HEADER },
	{ "max-leases",		required_argument, NULL, OPT_MAX_LEASES },
	{ "idle-timeout",	required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "socket-mode",	required_argument, NULL, OPT_SOCKET_MODE },
	{ "sync",		required_argument, NULL, OPT_SYNC },
	{ "portserver",		required_argument, NULL, OPT_PORTSERVER },
	{ "dns",		required_argument, NULL, OPT_DNS },
	{ "foreground",		no_argument,	   NULL, OPT_FOREGROUND },
	{ "cluster",		required_argument, NULL, OPT_CLUSTER },
	{ "node",		required_argument, NULL, OPT_NODE },
	{ "advertise",		required_argument, NULL, OPT_ADVERTISE },
	{ "cluster-prefix",	required_argument, NULL, OPT_CLUSTER_PREFIX },
	{ "cluster-ttl",	required_argument, NULL, OPT_CLUSTER_TTL },
	{ "cluster-cacert",	required_argument, NULL, OPT_CLUSTER_CACERT },
	{ "cluster-cert",	required_argument, NULL, OPT_CLUSTER_CERT },
	{ "cluster-key",	required_argument, NULL, OPT_CLUSTER_KEY },
	{ "help",		no_argument,	   NULL, OPT_HELP },
	{ "version",		no_argument,	   NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

void
config_usage(void)
{
	printf(
"usage: berthd [options]\n"
"\n"
"berthd hands out free local ports under names and answers lookups, over\n"
"HTTP/JSON on a loopback address. Every flag has an environment twin; the\n"
"flag wins.\n"
"\n"
"  --listen ADDR          listen address, repeatable or comma-separated:\n"
"                         127.0.0.1:62893 (default), [::1]:62893,\n"
"                         unix:/path/berth.sock                [BERTH_LISTEN]\n"
"  --allow-remote         allow non-loopback listen addresses [BERTH_ALLOW_REMOTE=1]\n"
"  --db PATH              lease database; :memory: for none   [BERTH_DB]\n"
"                         default: /var/lib/berth/berth.db as root, else\n"
"                         ${XDG_STATE_HOME:-$HOME/.local/state}/berth/berth.db\n"
"  --sync normal|full     normal (default): a commit survives kill -9 of\n"
"                         berthd; full: it survives power loss too (an\n"
"                         fsync per commit)                  [BERTH_SYNC]\n"
"  --range LO-HI[,LO-HI]  ports to hand out; default: 49152-65535 less the\n"
"                         kernel's ephemeral and reserved ports  [BERTH_RANGE]\n"
"  --reuse-delay S        seconds before a released port goes to another\n"
"                         name (default 60)                   [BERTH_REUSE_DELAY]\n"
"  --allow-origin ORIGIN  accept requests with this Origin header; repeatable,\n"
"                         '*' for any                         [BERTH_ALLOW_ORIGIN]\n"
"  --max-connections N    open client connections (default 4096)\n"
"                                                             [BERTH_MAX_CONNECTIONS]\n"
"  --max-header-size B    request header bytes (default 8192) [BERTH_MAX_HEADER_SIZE]\n"
"  --max-leases N         live leases at once, and ended names remembered\n"
"                         (default 65536)                     [BERTH_MAX_LEASES]\n"
"  --idle-timeout S       close a connection idle or slow for S seconds\n"
"                         (default 60)                        [BERTH_IDLE_TIMEOUT]\n"
"  --socket-mode MODE     permissions of unix sockets (default 0660)\n"
"                                                             [BERTH_SOCKET_MODE]\n"
"  --portserver ADDR      also answer portpicker's portserver protocol on\n"
"                         this unix socket: @name (abstract) or a path\n"
"                                                             [BERTH_PORTSERVER]\n"
"  --dns ADDR|off         answer DNS for the zone berth. on this UDP address\n"
"                         (default: the first TCP --listen address and\n"
"                         port); off for none                 [BERTH_DNS]\n"
"  --cluster URL[,URL]    share published leases with other hosts' berthds\n"
"                         through these etcd endpoints, http:// or https://\n"
"                                                             [BERTH_CLUSTER]\n"
"  --advertise ADDR       the address other hosts reach this host's published\n"
"                         services at; needed with --cluster [BERTH_ADVERTISE]\n"
"  --node NAME            this host's name in the cluster (default: the host\n"
"                         name, made a lease name)            [BERTH_NODE]\n"
"  --cluster-prefix P     etcd key prefix (default /berth/)   [BERTH_CLUSTER_PREFIX]\n"
"  --cluster-ttl S        seconds a dead host's records outlive it (default\n"
"                         10)                                 [BERTH_CLUSTER_TTL]\n"
"  --cluster-cacert PATH, --cluster-cert PATH, --cluster-key PATH\n"
"                         TLS to https:// endpoints: the CA to trust (default:\n"
"                         the system's), a client certificate and its key\n"
"                         [BERTH_CLUSTER_CACERT, _CERT, _KEY]\n"
"  --log-level LEVEL      error, warn, info (default) or debug [BERTH_LOG_LEVEL]\n"
"  --log-file PATH        log here instead of stderr; reopened on SIGHUP\n"
"                                                             [BERTH_LOG_FILE]\n"
"  --foreground           accepted for compatibility: berthd never daemonises\n"
"  --help, --version\n");
}

static int config_set_errno(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Write a message to err and return -1, for one-line error exits. */
static int
config_set_errno(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return (-1);
}

/* --dns: off, or one IP address and port for UDP. */
static int
config_dns(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	if (strcmp(arg, "off") == 0) {
		cfg->dns_mode = CONFIG_DNS_OFF;
		return (0);
	}
	if (addr_parse(arg, ADDR_PORT0, "dns", &cfg->dns, err, errlen) == -1 ||
	    cfg->dns.family == AF_UNIX)
		return (config_set_errno(err, errlen, "bad --dns '%s': want an "
		    "IP address and UDP port (127.0.0.1:62893, [::1]:62893) or "
		    "off", arg));
	cfg->dns_mode = CONFIG_DNS_ADDR;
	return (0);
}

/* Add every comma-separated address of s to cfg->listen. */
static int
config_add_listen(struct config *cfg, const char *s, char *err, size_t errlen)
{
	char	*copy, *tok, *save = NULL;
	int	 rc = 0;

	if ((copy = strdup(s)) == NULL)
		return (config_set_errno(err, errlen, "%s", "out of memory"));
	for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	    tok = strtok_r(NULL, ",", &save)) {
		if (cfg->nlisten == CONFIG_MAX_LISTEN) {
			snprintf(err, errlen, "too many listen addresses (at "
			    "most %d)", CONFIG_MAX_LISTEN);
			rc = -1;
		} else
			rc = addr_parse(tok, ADDR_PORT0, "listen",
			    &cfg->listen[cfg->nlisten++], err, errlen);
	}
	free(copy);
	return (rc);
}

static int
config_add_origins(struct config *cfg, const char *s, char *err, size_t errlen)
{
	char	*copy, *tok, *save = NULL;

	if ((copy = strdup(s)) == NULL)
		return (config_set_errno(err, errlen, "%s", "out of memory"));
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (cfg->norigins == CONFIG_MAX_ORIGINS) {
			free(copy);
			snprintf(err, errlen, "too many allowed origins (at "
			    "most %d)", CONFIG_MAX_ORIGINS);
			return (-1);
		}
		cfg->origins[cfg->norigins++] = strdup(tok);
	}
	free(copy);
	return (0);
}

/* One etcd endpoint: http[s]://HOST[:PORT][/], HOST a name, an IPv4
 * address or a bracketed IPv6 one. */
static int
config_endpoint(const char *s, struct etcd_endpoint *ep, char *err,
    size_t errlen)
{
	const char	*p, *end;
	size_t		 len;
	char		*pend;
	unsigned long	 port = 2379;

	memset(ep, 0, sizeof *ep);
	if (strncmp(s, "http://", 7) == 0)
		p = s + 7;
	else if (strncmp(s, "https://", 8) == 0) {
		p = s + 8;
		ep->tls = 1;
	} else
		goto bad;
	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			goto bad;
		len = (size_t)(end - p - 1);
		memcpy(ep->host, p + 1, len < sizeof ep->host ? len : 0);
		p = end + 1;
	} else {
		len = strcspn(p, ":/");
		if (len >= sizeof ep->host)
			goto bad;
		memcpy(ep->host, p, len);
		p += len;
	}
	if (ep->host[0] == '\0' || strspn(ep->host, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") != strlen(ep->host))
		goto bad;
	if (*p == ':') {
		errno = 0;
		port = strtoul(p + 1, &pend, 10);
		if (pend == p + 1 || errno != 0 || port == 0 || port > 65535)
			goto bad;
		p = pend;
	}
	if (strcmp(p, "") != 0 && strcmp(p, "/") != 0)
		goto bad;
	ep->port = (uint16_t)port;
	len = strlen(s) - (*p == '/');
	if (len >= sizeof ep->text)
		goto bad;
	memcpy(ep->text, s, len);
	return (0);
bad:
	return (config_set_errno(err, errlen, "bad cluster endpoint '%s' (want "
	    "http://HOST:PORT or https://HOST:PORT, e.g. http://10.0.0.1:2379)",
	    s));
}

/* Add every comma-separated endpoint of s to cfg->cluster. */
static int
config_add_cluster(struct config *cfg, const char *s, char *err, size_t errlen)
{
	char	*copy, *tok, *save = NULL;
	int	 rc = 0;

	cfg->ncluster = 0;	/* the flag (or its twin) gives the whole list */
	if ((copy = strdup(s)) == NULL)
		return (config_set_errno(err, errlen, "%s", "out of memory"));
	for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	    tok = strtok_r(NULL, ",", &save)) {
		if (cfg->ncluster == CONFIG_MAX_ENDPOINTS)
			rc = config_set_errno(err, errlen, "too many cluster "
			    "endpoints (at most %d)", CONFIG_MAX_ENDPOINTS);
		else
			rc = config_endpoint(tok, &cfg->cluster[cfg->ncluster++],
			    err, errlen);
	}
	free(copy);
	return (rc);
}

/* A path flag: non-empty and short enough. */
static int
config_path(const char *what, const char *s, char *out, size_t outlen,
    char *err, size_t errlen)
{
	if (s[0] == '\0' || strlen(s) >= outlen)
		return (config_set_errno(err, errlen, "bad %s path '%s'", what,
		    s));
	snprintf(out, outlen, "%s", s);
	return (0);
}

/* A whole number in base (10, or 8 for modes) from lo to hi. */
static int
config_number(const char *what, const char *s, int base, unsigned long lo,
    unsigned long hi, unsigned int *out, char *err, size_t errlen)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	v = strtoul(s, &end, base);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < lo ||
	    v > hi) {
		if (base == 8)
			snprintf(err, errlen, "bad %s '%s' (want an octal mode "
			    "from %lo to %lo)", what, s, lo, hi);
		else
			snprintf(err, errlen, "bad %s '%s' (want a number from "
			    "%lu to %lu)", what, s, lo, hi);
		return (-1);
	}
	*out = (unsigned int)v;
	return (0);
}

static int
config_bool(const char *s)
{
	return (s != NULL && (strcmp(s, "1") == 0 || strcasecmp(s, "true") == 0 ||
	    strcasecmp(s, "yes") == 0 || strcasecmp(s, "on") == 0));
}

/* berthd(8), --db: /var/lib/berth for root, else the XDG state directory. */
static int
config_default_db(struct config *cfg, char *err, size_t errlen)
{
	const char	*state, *home;
	struct passwd	*pw;

	if (geteuid() == 0) {
		snprintf(cfg->db, sizeof cfg->db, "/var/lib/berth/berth.db");
		return (0);
	}
	if ((state = getenv("XDG_STATE_HOME")) != NULL && state[0] == '/') {
		snprintf(cfg->db, sizeof cfg->db, "%s/berth/berth.db", state);
		return (0);
	}
	if ((home = getenv("HOME")) == NULL || home[0] == '\0') {
		if ((pw = getpwuid(geteuid())) == NULL) {
			snprintf(err, errlen, "cannot find a home directory "
			    "for the database; give --db PATH");
			return (-1);
		}
		home = pw->pw_dir;
	}
	snprintf(cfg->db, sizeof cfg->db, "%s/.local/state/berth/berth.db",
	    home);
	return (0);
}

/* Apply one of the cluster's options. */
static int
config_apply_cluster(struct config *cfg, int opt, const char *arg, char *err,
    size_t errlen)
{
	char	nerr[256];
	size_t	len;

	switch (opt) {
	case OPT_CLUSTER:
		return (config_add_cluster(cfg, arg, err, errlen));
	case OPT_NODE:
		if (!names_valid(arg))
			return (config_set_errno(err, errlen, "bad --node: %s",
			    names_message(arg, nerr, sizeof nerr)));
		snprintf(cfg->node, sizeof cfg->node, "%s", arg);
		return (0);
	case OPT_ADVERTISE:
		if (!lease_host_valid(arg))
			return (config_set_errno(err, errlen, "bad --advertise "
			    "'%s' (want a host name or an IP address)", arg));
		if (strcmp(arg, "0.0.0.0") == 0 || strcmp(arg, "::") == 0)
			return (config_set_errno(err, errlen, "bad --advertise "
			    "'%s': the wildcard address is not one other hosts "
			    "can connect to; give this host's own address", arg));
		snprintf(cfg->advertise, sizeof cfg->advertise, "%s", arg);
		return (0);
	case OPT_CLUSTER_PREFIX:
		len = strlen(arg);
		if (len < 2 || len >= sizeof cfg->cluster_prefix ||
		    arg[0] != '/' || arg[len - 1] != '/' ||
		    strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
		    "UVWXYZ0123456789._-/") != len)
			return (config_set_errno(err, errlen, "bad --cluster-prefix"
			    " '%s' (want /WORDS/, e.g. /berth/)", arg));
		snprintf(cfg->cluster_prefix, sizeof cfg->cluster_prefix, "%s",
		    arg);
		return (0);
	case OPT_CLUSTER_TTL:
		return (config_number("cluster TTL", arg, 10, 3, 3600,
		    &cfg->cluster_ttl, err, errlen));
	case OPT_CLUSTER_CACERT:
		return (config_path("--cluster-cacert", arg, cfg->cluster_cacert,
		    sizeof cfg->cluster_cacert, err, errlen));
	case OPT_CLUSTER_CERT:
		return (config_path("--cluster-cert", arg, cfg->cluster_cert,
		    sizeof cfg->cluster_cert, err, errlen));
	case OPT_CLUSTER_KEY:
		return (config_path("--cluster-key", arg, cfg->cluster_key,
		    sizeof cfg->cluster_key, err, errlen));
	}
	return (0);
}

/* Apply one option (from a flag or its environment twin). */
static int
config_apply(struct config *cfg, int opt, const char *arg, char *err,
    size_t errlen)
{
	unsigned int	v;
	char		rerr[256];

	switch (opt) {
	case OPT_LISTEN:
		return (config_add_listen(cfg, arg, err, errlen));
	case OPT_DB:
		if (arg[0] == '\0' || strlen(arg) >= sizeof cfg->db)
			return (config_set_errno(err, errlen, "bad database "
			    "path '%s'", arg));
		snprintf(cfg->db, sizeof cfg->db, "%s", arg);
		return (0);
	case OPT_RANGE:
		if (pool_parse_ranges(arg, cfg->ranges, &cfg->nranges, rerr,
		    sizeof rerr) == -1)
			return (config_set_errno(err, errlen, "%s", rerr));
		return (0);
	case OPT_REUSE_DELAY:
		if (config_number("reuse delay", arg, 10, 0, 86400, &v, err,
		    errlen) == -1)
			return (-1);
		cfg->reuse_delay_ms = (uint64_t)v * 1000;
		return (0);
	case OPT_LOG_LEVEL:
		if (log_parse_level(arg, &cfg->log_level) == -1)
			return (config_set_errno(err, errlen, "bad log level "
			    "'%s' (want error, warn, info or debug)", arg));
		return (0);
	case OPT_LOG_FILE:
		snprintf(cfg->log_file, sizeof cfg->log_file, "%s", arg);
		return (0);
	case OPT_ALLOW_REMOTE:
		cfg->allow_remote = arg == NULL || config_bool(arg);
		return (0);
	case OPT_ALLOW_ORIGIN:
		return (config_add_origins(cfg, arg, err, errlen));
	case OPT_MAX_CONN:
		return (config_number("connection limit", arg, 10, 1, 1000000,
		    &cfg->max_connections, err, errlen));
	case OPT_MAX_LEASES:
		return (config_number("lease limit", arg, 10, 1, 1000000,
		    &cfg->max_leases, err, errlen));
	case OPT_MAX_HEADER:
		return (config_number("header size limit", arg, 10, 1024, 1048576,
		    &cfg->max_header_size, err, errlen));
	case OPT_IDLE_TIMEOUT:
		return (config_number("idle timeout", arg, 10, 1, 86400,
		    &cfg->idle_timeout, err, errlen));
	case OPT_SYNC:
		if (strcmp(arg, "normal") == 0)
			cfg->full_sync = 0;
		else if (strcmp(arg, "full") == 0)
			cfg->full_sync = 1;
		else
			return (config_set_errno(err, errlen, "bad --sync '%s' "
			    "(want normal or full)", arg));
		return (0);
	case OPT_SOCKET_MODE:
		return (config_number("socket mode", arg, 8, 0, 0777,
		    &cfg->socket_mode, err, errlen));
	case OPT_PORTSERVER:
		if (addr_parse(arg, ADDR_UNIX_BARE, "portserver",
		    &cfg->portserver, err, errlen) == -1)
			return (-1);
		cfg->has_portserver = 1;
		return (0);
	case OPT_DNS:
		return (config_dns(cfg, arg, err, errlen));
	default:
		return (config_apply_cluster(cfg, opt, arg, err, errlen));
	}
}

static const struct {
	const char	*env;
	int		 opt;
} config_env[] = {
	{ "BERTH_LISTEN", OPT_LISTEN },
	{ "BERTH_DB", OPT_DB },
	{ "BERTH_RANGE", OPT_RANGE },
	{ "BERTH_REUSE_DELAY", OPT_REUSE_DELAY },
	{ "BERTH_LOG_LEVEL", OPT_LOG_LEVEL },
	{ "BERTH_LOG_FILE", OPT_LOG_FILE },
	{ "BERTH_ALLOW_REMOTE", OPT_ALLOW_REMOTE },
	{ "BERTH_ALLOW_ORIGIN", OPT_ALLOW_ORIGIN },
	{ "BERTH_MAX_CONNECTIONS", OPT_MAX_CONN },
	{ "BERTH_MAX_HEADER_SIZE", OPT_MAX_HEADER },
	{ "BERTH_MAX_LEASES", OPT_MAX_LEASES },
	{ "BERTH_IDLE_TIMEOUT", OPT_IDLE_TIMEOUT },
	{ "BERTH_SOCKET_MODE", OPT_SOCKET_MODE },
	{ "BERTH_SYNC", OPT_SYNC },
	{ "BERTH_PORTSERVER", OPT_PORTSERVER },
	{ "BERTH_DNS", OPT_DNS },
	{ "BERTH_CLUSTER", OPT_CLUSTER },
	{ "BERTH_NODE", OPT_NODE },
	{ "BERTH_ADVERTISE", OPT_ADVERTISE },
	{ "BERTH_CLUSTER_PREFIX", OPT_CLUSTER_PREFIX },
	{ "BERTH_CLUSTER_TTL", OPT_CLUSTER_TTL },
	{ "BERTH_CLUSTER_CACERT", OPT_CLUSTER_CACERT },
	{ "BERTH_CLUSTER_CERT", OPT_CLUSTER_CERT },
	{ "BERTH_CLUSTER_KEY", OPT_CLUSTER_KEY },
};

static void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->reuse_delay_ms = 60 * 1000;
	cfg->log_level = LOG_LVL_INFO;
	cfg->max_connections = 4096;
	cfg->max_leases = BROKER_MAX_LEASES;
	cfg->max_header_size = 8192;
	cfg->idle_timeout = 60;
	cfg->socket_mode = 0660;
	snprintf(cfg->cluster_prefix, sizeof cfg->cluster_prefix, "/berth/");
	cfg->cluster_ttl = 10;
}

/* Reset a list option before the command line's first use of it. */
static void
config_reset_list(struct config *cfg, int opt, int *seen)
{
	size_t	i;

	if (*seen)
		return;
	*seen = 1;
	if (opt == OPT_LISTEN)
		cfg->nlisten = 0;
	else {
		for (i = 0; i < cfg->norigins; i++)
			free(cfg->origins[i]);
		cfg->norigins = 0;
	}
}

/* The host name as a lease name: lower case, other characters '-'. */
static void
config_default_node(struct config *cfg)
{
	char	host[256], *p;
	size_t	i = 0;

	if (gethostname(host, sizeof host) == -1)
		host[0] = '\0';
	host[sizeof host - 1] = '\0';
	for (p = host; *p != '\0' && i < sizeof cfg->node - 1; p++) {
		if (*p >= 'A' && *p <= 'Z')
			cfg->node[i++] = (char)(*p - 'A' + 'a');
		else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    ((*p == '.' || *p == '_' || *p == '-') && i > 0))
			cfg->node[i++] = *p;
		else if (i > 0)
			cfg->node[i++] = '-';
	}
	cfg->node[i] = '\0';
	if (!names_valid(cfg->node))
		snprintf(cfg->node, sizeof cfg->node, "node");
}

/* A TLS file berthd reads at start: there, readable, a regular file. */
static int
config_readable(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat	st;
	int		fd;

	if (path[0] == '\0')
		return (0);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return (config_set_errno(err, errlen, "cannot read %s %s: %s",
		    what, path, strerror(errno)));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return (config_set_errno(err, errlen, "cannot read %s %s: not "
		    "a regular file", what, path));
	}
	close(fd);
	return (0);
}

/*
 * The TLS flags: with https:// endpoints only, all of them https:// (a
 * failover to an http:// one would drop TLS unseen), a client certificate
 * with its key, and files that make a TLS client now, not at the first
 * connection. Without --cluster-cacert, the system's CAs.
 */
static int
config_check_tls(struct config *cfg, char *err, size_t errlen)
{
	size_t	i, tls = 0;

	for (i = 0; i < cfg->ncluster; i++)
		tls += cfg->cluster[i].tls != 0;
	if (tls != 0 && tls != cfg->ncluster)
		return (config_set_errno(err, errlen, "--cluster mixes http:// "
		    "and https:// endpoints: give them all one scheme (a "
		    "failover would drop TLS)"));
	if (tls == 0 && (cfg->cluster_cacert[0] != '\0' ||
	    cfg->cluster_cert[0] != '\0' || cfg->cluster_key[0] != '\0'))
		return (config_set_errno(err, errlen, "--cluster-cacert, "
		    "--cluster-cert and --cluster-key need https:// endpoints"));
	if ((cfg->cluster_cert[0] == '\0') != (cfg->cluster_key[0] == '\0'))
		return (config_set_errno(err, errlen, "--cluster-cert and "
		    "--cluster-key go together"));
	if (tls == 0)
		return (0);
	if (config_readable("--cluster-cacert", cfg->cluster_cacert, err,
	    errlen) == -1 || config_readable("--cluster-cert",
	    cfg->cluster_cert, err, errlen) == -1 ||
	    config_readable("--cluster-key", cfg->cluster_key, err,
	    errlen) == -1)
		return (-1);
	return (etcd_tls_check(cfg->cluster_cacert, cfg->cluster_cert,
	    cfg->cluster_key, err, errlen));
}

/* The cluster's flags go together: --advertise with --cluster, and the
 * TLS flags as config_check_tls wants them. */
static int
config_check_cluster(struct config *cfg, char *err, size_t errlen)
{
	if (cfg->ncluster == 0) {
		if (cfg->advertise[0] != '\0' || cfg->node[0] != '\0' ||
		    cfg->cluster_cacert[0] != '\0' || cfg->cluster_cert[0] != '\0' ||
		    cfg->cluster_key[0] != '\0')
			return (config_set_errno(err, errlen, "--advertise, --node "
			    "and --cluster-* need --cluster URL (etcd's client "
			    "endpoints)"));
		return (0);
	}
	if (cfg->advertise[0] == '\0')
		return (config_set_errno(err, errlen, "--cluster needs "
		    "--advertise ADDR: the address other hosts reach this "
		    "host's published services at"));
	if (config_check_tls(cfg, err, errlen) == -1)
		return (-1);
	if (cfg->node[0] == '\0')
		config_default_node(cfg);
	return (0);
}

static enum config_result
config_check(struct config *cfg, char *err, size_t errlen)
{
	size_t	i;

	if (cfg->nlisten == 0 && config_add_listen(cfg, BERTH_DEFAULT_ADDR,
	    err, errlen) == -1)
		return (CONFIG_ERROR);
	for (i = 0; i < cfg->nlisten; i++) {
		if (!cfg->listen[i].loopback && !cfg->allow_remote) {
			snprintf(err, errlen, "refusing to listen on %s: not a "
			    "loopback address (give --allow-remote to allow "
			    "it)", cfg->listen[i].text);
			return (CONFIG_ERROR);
		}
	}
	if (cfg->dns_mode == CONFIG_DNS_ADDR && !cfg->dns.loopback &&
	    !cfg->allow_remote) {
		snprintf(err, errlen, "refusing to answer DNS on %s: not a "
		    "loopback address (give --allow-remote to allow it)",
		    cfg->dns.text);
		return (CONFIG_ERROR);
	}
	if (cfg->db[0] == '\0' && config_default_db(cfg, err, errlen) == -1)
		return (CONFIG_ERROR);
	if (config_check_cluster(cfg, err, errlen) == -1)
		return (CONFIG_ERROR);
	return (CONFIG_OK);
}

enum config_result
config_parse(struct config *cfg, int argc, char **argv, char *err,
    size_t errlen)
{
	const char	*v;
	size_t		 i;
	int		 opt, seen_listen = 0, seen_origin = 0;

	config_defaults(cfg);
	for (i = 0; i < sizeof config_env / sizeof config_env[0]; i++) {
		if ((v = getenv(config_env[i].env)) == NULL || v[0] == '\0')
			continue;
		if (config_apply(cfg, config_env[i].opt, v, err, errlen) == -1) {
			size_t	len = strlen(err);

			snprintf(err + len, errlen - len, " (from %s)",
			    config_env[i].env);
			return (CONFIG_ERROR);
		}
	}
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", config_options, NULL)) !=
	    -1) {
		switch (opt) {
		case 'h':
		case OPT_HELP:
			config_usage();
			return (CONFIG_EXIT);
		case OPT_VERSION:
			printf("berthd %s\n", PACKAGE_VERSION);
			return (CONFIG_EXIT);
		case OPT_FOREGROUND:
			break;
		case '?':
			snprintf(err, errlen, "unknown or incomplete option "
			    "'%s' (see berthd --help)", argv[optind - 1]);
			return (CONFIG_ERROR);
		case OPT_LISTEN:
			config_reset_list(cfg, opt, &seen_listen);
			/* FALLTHROUGH */
		default:
			if (opt == OPT_ALLOW_ORIGIN)
				config_reset_list(cfg, opt, &seen_origin);
			if (config_apply(cfg, opt, optarg, err, errlen) == -1)
				return (CONFIG_ERROR);
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see berthd "
		    "--help)", argv[optind]);
		return (CONFIG_ERROR);
	}
	return (config_check(cfg, err, errlen));
}

void
config_free(struct config *cfg)
{
	size_t	i;

	for (i = 0; i < cfg->norigins; i++)
		free(cfg->origins[i]);
	cfg->norigins = 0;
}
