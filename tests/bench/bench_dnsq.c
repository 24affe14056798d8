/*
 * bench_dnsq.c: a DNS load generator over UDP, for bench_dns.sh: queries
 * per second and the latency of every answer.
 *
 * usage: bench_dnsq -p PORT -d FILE [-s ADDR] [-l SECONDS] [-q OUTSTANDING]
 *                   [-Q RATE]
 *
 * FILE holds one question a line, "NAME TYPE" (TYPE A, AAAA, SRV, TXT,
 * SOA or ANY), asked in order, over and over, from one UDP socket, with
 * RD clear and no EDNS. Without -Q as many are kept outstanding as -q
 * says (default 100), for a server's most queries per second; with -Q,
 * RATE queries a second are sent on schedule (at most -q outstanding),
 * for the latency of a server that is not saturated.
 *
 * dnsperf (2.10) does the same but prints no percentiles, and on a
 * two-core machine it spends about as much CPU per query as the servers
 * it measures (two threads, a lock, a syscall per packet), so with the
 * server on one core and dnsperf on the other it often sets the pace.
 * This one sends and receives in batches (sendmmsg, recvmmsg), so the
 * server is the side that runs out of CPU.
 *
 * An answer counts if its ID is outstanding and it is a response; its
 * latency runs from the send call that carried the query to the
 * recvmmsg that returned it (one clock read per batch either way). A
 * query not answered within 2 s is lost. Queries per second counts the
 * answers that came within the SECONDS; the latencies are of every
 * answer, those that came while the last queries drained included.
 * Prints one line for scripts:
 *   bench_dnsq sent=N answered=N lost=N seconds=S qps=Q p50_ms=A
 *     p99_ms=B max_ms=C noerror=N other_rcode=N
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <err.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench.h"

#define DNSQ_BATCH	64
#define DNSQ_PKT	512		/* the largest query or answer kept */
#define DNSQ_IDS	65536
#define DNSQ_TIMEOUT_NS	2000000000ULL
#define DNSQ_HIST_US	1000000		/* 1 us buckets up to 1 s */

struct dnsq_query {
	unsigned char	 pkt[DNSQ_PKT];
	size_t		 len;
};

static struct dnsq_query *queries;
static size_t	 nqueries;
static uint64_t	 sent_at[DNSQ_IDS];	/* 0: ID free */
static uint16_t	 next_id;
static uint64_t	 hist[DNSQ_HIST_US + 1];	/* the last: 1 s or more */

static void
usage(void)
{
	fprintf(stderr, "usage: bench_dnsq -p PORT -d FILE [-s ADDR] "
	    "[-l SECONDS] [-q OUTSTANDING] [-Q RATE]\n");
	exit(2);
}

static int
dnsq_type(const char *s)
{
	static const struct {
		const char	*name;
		int		 type;
	} types[] = {
		{ "A", 1 }, { "SOA", 6 }, { "TXT", 16 }, { "AAAA", 28 },
		{ "SRV", 33 }, { "ANY", 255 },
	};
	size_t	i;

	for (i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcasecmp(s, types[i].name) == 0)
			return (types[i].type);
	return (-1);
}

/* The question's packet, ID left 0; -1 if the name will not encode. */
static int
dnsq_encode(struct dnsq_query *q, const char *name, int type)
{
	unsigned char	*p = q->pkt;
	const char	*label = name, *dot;
	size_t		 len;

	memset(p, 0, 12);
	p[5] = 1;			/* QDCOUNT 1; flags 0: no RD */
	p += 12;
	while (*label != '\0') {
		dot = strchr(label, '.');
		len = dot ? (size_t)(dot - label) : strlen(label);
		if (len == 0 || len > 63 ||
		    (size_t)(p - q->pkt) + len + 1 + 5 > DNSQ_PKT)
			return (-1);
		*p++ = (unsigned char)len;
		memcpy(p, label, len);
		p += len;
		label += len;
		if (*label == '.')
			label++;
	}
	*p++ = 0;
	*p++ = (unsigned char)(type >> 8);
	*p++ = (unsigned char)type;
	*p++ = 0;
	*p++ = 1;			/* class IN */
	q->len = (size_t)(p - q->pkt);
	return (0);
}

static void
dnsq_load(const char *path)
{
	FILE	*f;
	char	 line[512], name[300], type[16];
	size_t	 cap = 0;
	int	 t;

	if ((f = fopen(path, "r")) == NULL)
		err(2, "%s", path);
	while (fgets(line, sizeof line, f) != NULL) {
		if (line[0] == '#' || sscanf(line, "%299s %15s", name,
		    type) != 2)
			continue;
		if ((t = dnsq_type(type)) == -1)
			errx(2, "%s: unknown type %s", path, type);
		if (nqueries == cap) {
			cap = cap ? cap * 2 : 16;
			if ((queries = reallocarray(queries, cap,
			    sizeof *queries)) == NULL)
				err(1, "reallocarray");
		}
		if (dnsq_encode(&queries[nqueries], name, t) == -1)
			errx(2, "%s: cannot encode %s", path, name);
		nqueries++;
	}
	fclose(f);
	if (nqueries == 0)
		errx(2, "%s: no questions", path);
}

/* A free ID for the next query, or -1 if all 65536 are outstanding. */
static int
dnsq_id(void)
{
	int	i;

	for (i = 0; i < DNSQ_IDS; i++, next_id++)
		if (sent_at[next_id] == 0)
			return (next_id++);
	return (-1);
}

int
main(int argc, char **argv)
{
	struct mmsghdr		 out[DNSQ_BATCH], in[DNSQ_BATCH];
	struct iovec		 oiov[DNSQ_BATCH], iiov[DNSQ_BATCH];
	static unsigned char	 obuf[DNSQ_BATCH][DNSQ_PKT];
	static unsigned char	 ibuf[DNSQ_BATCH][DNSQ_PKT];
	struct sockaddr_in	 sin;
	const char		*addr = "127.0.0.1", *file = NULL;
	long			 port = 0, secs = 5, maxout = 100, rate = 0;
	uint64_t		 start, end, now, last_scan, sent = 0, answered = 0;
	uint64_t		 lost = 0, noerror = 0, other = 0, outstanding = 0;
	uint64_t		 in_time = 0, c, p50 = 0, p99 = 0, max = 0, us, want;
	size_t			 qi = 0;
	int			 fd, ch, i, n, id, draining = 0;

	while ((ch = getopt(argc, argv, "d:l:p:Q:q:s:")) != -1) {
		switch (ch) {
		case 'd':
			file = optarg;
			break;
		case 'l':
			secs = parse_count(optarg, "seconds", 1, 3600);
			break;
		case 'p':
			port = parse_count(optarg, "port", 1, 65535);
			break;
		case 'Q':
			rate = parse_count(optarg, "rate", 1, 10000000);
			break;
		case 'q':
			maxout = parse_count(optarg, "outstanding", 1, 60000);
			break;
		case 's':
			addr = optarg;
			break;
		default:
			usage();
		}
	}
	if (port == 0 || file == NULL || optind != argc)
		usage();
	dnsq_load(file);

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		errx(2, "bad IPv4 address: %s", addr);
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1)
		err(1, "connect %s:%ld", addr, port);

	memset(out, 0, sizeof out);
	memset(in, 0, sizeof in);
	for (i = 0; i < DNSQ_BATCH; i++) {
		oiov[i].iov_base = obuf[i];
		out[i].msg_hdr.msg_iov = &oiov[i];
		out[i].msg_hdr.msg_iovlen = 1;
		iiov[i].iov_base = ibuf[i];
		iiov[i].iov_len = DNSQ_PKT;
		in[i].msg_hdr.msg_iov = &iiov[i];
		in[i].msg_hdr.msg_iovlen = 1;
	}

	start = last_scan = now_ns();
	end = start + (uint64_t)secs * 1000000000ULL;
	for (;;) {
		now = now_ns();
		if (!draining && now >= end) {
			draining = 1;
			in_time = answered;
		}
		if (draining && (outstanding == 0 ||
		    now >= end + DNSQ_TIMEOUT_NS))
			break;

		/* Send: up to the outstanding limit, or what is due. */
		n = 0;
		if (!draining) {
			want = (uint64_t)maxout - outstanding;
			if (rate > 0) {
				uint64_t due = (now - start) * (uint64_t)rate /
				    1000000000ULL + 1;

				want = due > sent ? (due - sent < want ?
				    due - sent : want) : 0;
			}
			while ((uint64_t)n < want && n < DNSQ_BATCH &&
			    (id = dnsq_id()) != -1) {
				const struct dnsq_query *q = &queries[qi];

				qi = (qi + 1) % nqueries;
				memcpy(obuf[n], q->pkt, q->len);
				obuf[n][0] = (unsigned char)(id >> 8);
				obuf[n][1] = (unsigned char)id;
				oiov[n].iov_len = q->len;
				sent_at[id] = now;
				n++;
			}
		}
		if (n > 0) {
			int	k = sendmmsg(fd, out, (unsigned)n, 0);

			if (k == -1) {
				if (errno != EAGAIN && errno != ENOBUFS)
					err(1, "sendmmsg");
				k = 0;
			}
			/* The unsent give their IDs back. */
			for (i = k; i < n; i++)
				sent_at[(obuf[i][0] << 8) | obuf[i][1]] = 0;
			sent += (uint64_t)k;
			outstanding += (uint64_t)k;
		}

		/* Receive whatever has come. */
		n = recvmmsg(fd, in, DNSQ_BATCH, MSG_DONTWAIT, NULL);
		if (n == -1) {
			if (errno == ECONNREFUSED)
				errx(1, "nothing answers on udp %s:%ld", addr,
				    port);
			if (errno != EAGAIN && errno != EINTR)
				err(1, "recvmmsg");
			n = 0;
		}
		if (n > 0)
			now = now_ns();
		for (i = 0; i < n; i++) {
			const unsigned char *a = ibuf[i];

			if (in[i].msg_len < 12 || !(a[2] & 0x80))
				continue;
			id = (a[0] << 8) | a[1];
			if (sent_at[id] == 0)
				continue;	/* late: counted lost */
			us = (now - sent_at[id]) / 1000;
			if (us > DNSQ_HIST_US)
				us = DNSQ_HIST_US;
			hist[us]++;
			if (us > max)
				max = us;
			sent_at[id] = 0;
			outstanding--;
			answered++;
			if ((a[3] & 0x0f) == 0)
				noerror++;
			else
				other++;
		}

		/* Give up on queries unanswered for 2 s, now and then. */
		if (now - last_scan > DNSQ_TIMEOUT_NS / 4) {
			last_scan = now;
			for (i = 0; i < DNSQ_IDS; i++)
				if (sent_at[i] != 0 &&
				    now - sent_at[i] > DNSQ_TIMEOUT_NS) {
					sent_at[i] = 0;
					outstanding--;
					lost++;
				}
		}

		/* Nothing came and nothing is due: wait for an answer. */
		if (n == 0) {
			struct pollfd	pfd = { .fd = fd, .events = POLLIN };
			struct timespec	ts = { 0, 1000000 };	/* 1 ms */

			if (rate > 0 && !draining) {
				uint64_t next = start + (sent + 1) *
				    1000000000ULL / (uint64_t)rate;

				now = now_ns();
				if (next <= now)
					continue;
				if (next - now < 1000000)
					ts.tv_nsec = (long)(next - now);
			} else if (!draining && outstanding < (uint64_t)maxout)
				continue;
			ppoll(&pfd, 1, &ts, NULL);
		}
	}
	lost += outstanding;

	/* Nearest rank, in 1 us buckets. */
	c = 0;
	for (us = 0, i = 0; us <= DNSQ_HIST_US && answered > 0; us++) {
		c += hist[us];
		if (!i && c * 2 >= answered) {
			p50 = us;
			i = 1;
		}
		if (c * 100 >= answered * 99) {
			p99 = us;
			break;
		}
	}
	printf("bench_dnsq sent=%llu answered=%llu lost=%llu seconds=%.3f "
	    "qps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f noerror=%llu "
	    "other_rcode=%llu\n", (unsigned long long)sent,
	    (unsigned long long)answered, (unsigned long long)lost,
	    (double)secs, (double)in_time / (double)secs, (double)p50 / 1e3,
	    (double)p99 / 1e3, (double)max / 1e3, (unsigned long long)noerror,
	    (unsigned long long)other);
	return (0);
}
