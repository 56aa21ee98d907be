/*
 * p9_client.c — the load client of P9 (bench/p9_push.sh, docs/performance.md):
 * holds NSSE Server-Sent Events streams and NWS WebSocket connections to one
 * bridge, each subscribed to one key (article-like content type "p9", ids
 * k0..k(NKEYS-1), round robin), and writes RATE shares per second over those
 * keys with libpq (one multi-row INSERT every TICK_MS) for SECONDS seconds.
 *
 * Latency: the writer is the only one writing these keys, so the n-th share
 * of key k makes its count n; the time its INSERT returned (committed) is
 * kept per (k, n).  Every event a subscriber reads for (k, n) gives one
 * sample: its arrival minus that commit (one process, one monotonic clock).
 * Coalesced counts (n skipped) give no sample.  Prints one JSON line:
 * samples, p50/p99/max in ms, events, connections that failed, and
 * "per_second": each second of writing whose slowest sample exceeds SHOWN_MS,
 * with the writer's slowest INSERT in that second (see struct second).
 *
 * Usage: p9_client HOST PORT NSSE NWS NKEYS RATE SECONDS 'conninfo'
 * Rules: one thread runs epoll over every connection (non-blocking, a 16 KiB
 * buffer each), another writes; commit times are atomics.  HTTP/1.0 for the
 * streams (no chunked encoding); the WebSocket frames from the server are
 * unmasked text frames (RFC 6455), the one client frame is masked.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 10			/* one INSERT this often */
#define BUF 16384			/* per connection */
#define MAX_PER_KEY 4096	/* shares per key the run may write */
#define MAX_SAMPLES 4000000 /* latency samples kept */
#define MAX_SECONDS 600		/* seconds of the run broken down (per_second) */
#define SLOW_MS 100			/* a sample over P9's p99 target: counted per second */
#define SHOWN_MS 50			/* per_second lists the seconds whose slowest sample exceeds this */

/*
 * Per second of writing (by the commit's second): samples, those over
 * SLOW_MS, the slowest, and the writer's slowest INSERT and how far it fell
 * behind its schedule.  It says in which second a tail happened and whether
 * the database's commits were slow then (a stall before the commit) or not
 * (a stall in the pipeline after it).
 */
struct second
{
	long n, slow;
	double max;
	int64_t insert_max, lag_max;
};

enum kind
{
	SSE,
	WS
};

struct conn
{
	int fd;
	enum kind kind;
	int key;
	int state; /* 0: waiting for the HTTP header, 1: streaming */
	int got;   /* events read */
	size_t len;
	char buf[BUF];
};

static int nkeys, rate, seconds;
static _Atomic int64_t *commit_ms; /* [key * MAX_PER_KEY + n] */
static double *samples;
static atomic_long nsamples;
static atomic_int writing, done_writing;
static _Atomic int64_t write_start;
static struct second secs[MAX_SECONDS];
static long events, failed, ready;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double
now_msf(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* One event's data object: a sample for (key, shareCount) if its commit time is known. */
static void
on_event(struct conn *c, const char *json, size_t len)
{
	const char *p = memmem(json, len, "\"shareCount\":", 13);
	long n;
	int64_t t;

	c->got++;
	events++;
	if (c->got == 1)
		ready++;
	if (!p)
		return;
	n = strtol(p + 13, NULL, 10);
	if (n <= 0 || n >= MAX_PER_KEY)
		return;
	t = atomic_load(&commit_ms[(size_t) c->key * MAX_PER_KEY + n]);
	if (t > 0)
	{
		long i = atomic_fetch_add(&nsamples, 1);
		double ms = now_msf() - (double) t;
		int64_t s = (t - atomic_load(&write_start)) / 1000;

		if (i < MAX_SAMPLES)
			samples[i] = ms;
		if (s >= 0 && s < MAX_SECONDS)
		{
			secs[s].n++;
			secs[s].slow += ms > SLOW_MS;
			if (ms > secs[s].max)
				secs[s].max = ms;
		}
	}
}

static void
parse_sse(struct conn *c)
{
	char *start = c->buf, *end = c->buf + c->len, *nl;

	while ((nl = memchr(start, '\n', (size_t) (end - start))) != NULL)
	{
		if (strncmp(start, "data: ", 6) == 0)
			on_event(c, start + 6, (size_t) (nl - start - 6));
		start = nl + 1;
	}
	c->len = (size_t) (end - start);
	memmove(c->buf, start, c->len);
}

static void
parse_ws(struct conn *c)
{
	size_t off = 0;

	while (c->len - off >= 2)
	{
		unsigned char *h = (unsigned char *) c->buf + off;
		size_t plen = h[1] & 0x7f, hl = 2;

		if (plen == 126)
		{
			if (c->len - off < 4)
				break;
			plen = (size_t) h[2] << 8 | h[3];
			hl = 4;
		}
		else if (plen == 127)
		{
			failed++; /* never this large here */
			c->len = 0;
			return;
		}
		if (c->len - off < hl + plen)
			break;
		if ((h[0] & 0x0f) == 1)
			on_event(c, (char *) h + hl, plen);
		off += hl + plen;
	}
	c->len -= off;
	memmove(c->buf, c->buf + off, c->len);
}

/* The WebSocket subscribe message, masked with a zero key (RFC 6455 allows any key). */
static void
ws_subscribe(struct conn *c)
{
	char msg[128], frame[160];
	int n = snprintf(msg, sizeof(msg), "{\"event\":\"subscribe\",\"data\":{\"contentType\":\"p9\",\"ids\":[\"k%d\"]}}",
					 c->key);

	frame[0] = (char) 0x81;
	frame[1] = (char) (0x80 | n);
	memset(frame + 2, 0, 4);
	memcpy(frame + 6, msg, (size_t) n);
	if (send(c->fd, frame, (size_t) n + 6, MSG_NOSIGNAL) != n + 6)
		failed++;
}

static void
conn_read(struct conn *c)
{
	for (;;)
	{
		ssize_t r = recv(c->fd, c->buf + c->len, BUF - c->len, 0);
		char *hend;

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0 || c->len + (size_t) r >= BUF)
		{
			failed++;
			close(c->fd);
			c->fd = -1;
			return;
		}
		c->len += (size_t) r;
		if (c->state == 0 && (hend = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL)
		{
			size_t hl = (size_t) (hend + 4 - c->buf);

			c->state = 1;
			memmove(c->buf, c->buf + hl, c->len - hl);
			c->len -= hl;
			if (c->kind == WS)
				ws_subscribe(c);
		}
		if (c->state == 1)
			(c->kind == SSE ? parse_sse : parse_ws)(c);
	}
}

static int
conn_open(struct conn *c, const struct sockaddr_in *sa, int ep, const char *host)
{
	char req[512];
	int n, one = 1;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || connect(c->fd, (const struct sockaddr *) sa, sizeof(*sa)) != 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c->kind == SSE)
		n = snprintf(req, sizeof(req), "GET /share-links/stream/p9?ids=k%d HTTP/1.0\r\nHost: %s\r\n\r\n", c->key, host);
	else
		n = snprintf(req, sizeof(req),
					 "GET /share-links/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
					 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
					 host);
	if (send(c->fd, req, (size_t) n, MSG_NOSIGNAL) != n)
		return -1;
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Writer: every TICK_MS one INSERT of rate*TICK_MS/1000 shares, keys in turn. */
static void *
writer(void *arg)
{
	PGconn *pg = PQconnectdb(arg);
	int per = rate * TICK_MS / 1000, next = 0, *n = calloc((size_t) nkeys, sizeof(int));
	int64_t t, t0, end;
	char *sql = malloc((size_t) per * 64 + 256);

	if (PQstatus(pg) != CONNECTION_OK)
	{
		fprintf(stderr, "p9_client: %s", PQerrorMessage(pg));
		exit(1);
	}
	while (!atomic_load(&writing))
		usleep(10000);
	/*
	 * The schedule starts now, not at connect: a start taken before the wait
	 * (the subscribers connecting, ~1 s) made the first INSERTs a catch-up
	 * burst of ~1,000 shares at once, not RATE per second.
	 */
	t = t0 = now_ms();
	atomic_store(&write_start, t0);
	end = t0 + (int64_t) seconds * 1000;
	for (; t < end; t += TICK_MS)
	{
		int len = sprintf(sql, "INSERT INTO share_links (content_type, content_id, user_id) VALUES ");
		int keys[1024];
		PGresult *r;
		int64_t now, before, s = (t - t0) / 1000;

		for (int i = 0; i < per && i < 1024; i++, next = (next + 1) % nkeys)
		{
			keys[i] = next;
			len += sprintf(sql + len, "%s('p9','k%d','w')", i ? "," : "", next);
		}
		before = now_ms();
		r = PQexec(pg, sql);
		now = now_ms();
		if (s < MAX_SECONDS)
		{
			if (now - before > secs[s].insert_max)
				secs[s].insert_max = now - before;
			if (before - t > secs[s].lag_max)
				secs[s].lag_max = before - t;
		}
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fprintf(stderr, "p9_client: %s", PQerrorMessage(pg));
		PQclear(r);
		for (int i = 0; i < per && i < 1024; i++)
			if (++n[keys[i]] < MAX_PER_KEY)
				atomic_store(&commit_ms[(size_t) keys[i] * MAX_PER_KEY + n[keys[i]]], now);
		if (now < t + TICK_MS)
			usleep((useconds_t) (t + TICK_MS - now) * 1000);
	}
	atomic_store(&done_writing, 1);
	PQfinish(pg);
	return NULL;
}

/* "per_second": the seconds whose slowest sample exceeds SHOWN_MS, and the writer's slowest second. */
static void
print_seconds(void)
{
	int first = 1, worst = 0;

	printf("\"per_second\":[");
	for (int s = 0; s < MAX_SECONDS && s < seconds + 2; s++)
	{
		if (secs[s].insert_max > secs[worst].insert_max)
			worst = s;
		if (secs[s].max <= SHOWN_MS)
			continue;
		printf("%s{\"s\":%d,\"n\":%ld,\"slow\":%ld,\"max_ms\":%.1f,\"insert_max_ms\":%lld,\"lag_max_ms\":%lld}",
			   first ? "" : ",", s, secs[s].n, secs[s].slow, secs[s].max, (long long) secs[s].insert_max,
			   (long long) secs[s].lag_max);
		first = 0;
	}
	printf("],\"insert_max_ms\":%lld,\"insert_max_s\":%d", (long long) secs[worst].insert_max, worst);
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static void
loop(int ep, long nconns, int64_t until_ms)
{
	struct epoll_event ev[512];

	while (now_ms() < until_ms && !(atomic_load(&done_writing) && until_ms == INT64_MAX))
	{
		int n = epoll_wait(ep, ev, 512, 100);

		for (int i = 0; i < n; i++)
		{
			struct conn *c = ev[i].data.ptr;

			if (c->fd >= 0)
				conn_read(c);
		}
		if (until_ms == INT64_MAX - 1 && ready >= nconns - failed)
			return; /* every subscriber has its snapshot */
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	long nsse, nws, total, ns;
	struct conn *cs;
	int ep = epoll_create1(0);
	pthread_t w;
	int64_t t0;

	if (argc != 9)
	{
		fprintf(stderr, "usage: %s HOST PORT NSSE NWS NKEYS RATE SECONDS conninfo\n", argv[0]);
		return 2;
	}
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	sa.sin_port = htons((uint16_t) atoi(argv[2]));
	nsse = atol(argv[3]), nws = atol(argv[4]), nkeys = atoi(argv[5]), rate = atoi(argv[6]), seconds = atoi(argv[7]);
	total = nsse + nws;
	cs = calloc((size_t) total, sizeof(*cs));
	commit_ms = calloc((size_t) nkeys * MAX_PER_KEY, sizeof(*commit_ms));
	samples = malloc(MAX_SAMPLES * sizeof(double));
	pthread_create(&w, NULL, writer, argv[8]);
	t0 = now_ms();
	for (long i = 0; i < total; i++)
	{
		cs[i].kind = i < nsse ? SSE : WS;
		cs[i].key = (int) (i % nkeys);
		if (conn_open(&cs[i], &sa, ep, argv[1]) != 0)
		{
			failed++;
			cs[i].fd = -1;
		}
		if (i % 500 == 499)
			loop(ep, total, now_ms() + 1); /* read snapshots while connecting */
	}
	loop(ep, total, INT64_MAX - 1);
	fprintf(stderr, "p9_client: %ld subscribers ready in %lld ms (%ld failed)\n", ready, (long long) (now_ms() - t0),
			failed);
	atomic_store(&writing, 1);
	loop(ep, total, INT64_MAX);
	loop(ep, total, now_ms() + 2000); /* the last events */
	ns = atomic_load(&nsamples);
	ns = ns > MAX_SAMPLES ? MAX_SAMPLES : ns;
	qsort(samples, (size_t) ns, sizeof(double), cmp);
	pthread_join(w, NULL);
	printf("{\"subscribers\":%ld,\"ready\":%ld,\"failed\":%ld,\"events\":%ld,\"samples\":%ld,"
		   "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,",
		   total, ready, failed, events, ns, ns ? samples[ns / 2] : -1, ns ? samples[ns * 99 / 100] : -1,
		   ns ? samples[ns - 1] : -1);
	print_seconds();
	printf("}\n");
	return 0;
}
