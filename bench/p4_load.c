/*
 * p4_load.c — the open-loop load generator of benchmark P4 (docs/performance.md,
 * freshness at a steady insert rate).  Built by bench/p4_fresh.sh into
 * bench/bin/p4_load; not part of the bridge or of `make test`.
 *
 * Insert number i (0-based) is due at t0 + i / rate.  Several connections
 * (threads) take the next number from one shared counter, sleep until its
 * due time (absolute CLOCK_REALTIME sleep) and run ONE autocommit INSERT of a
 * share link on its own probe key (content_type given, content_id = i), then
 * record the wall-clock time right after the commit returned.  A slow commit
 * on one connection therefore delays only that insert: the others keep the
 * schedule (open loop).  If every connection is busy, inserts start late;
 * the start lag is recorded and summarised so a run that could not keep the
 * rate is visible, never hidden.
 *
 * Optional tap (-a AMQP_URL): a side consumer on its own exclusive queue bound
 * to the bridge's exchange (as any other service may bind, docs/wire.md) records
 * when each probe job reached the broker's consumers.  That splits the
 * freshness into "commit → published" and "published → applied" for the
 * analysis in docs/performance.md.  Off by default (the official figure is
 * taken without an extra queue).
 *
 * Output: a CSV file, one line per insert: seq,due_us,start_us,commit_us,tap_us
 * (microseconds since the epoch; tap_us 0 when not seen or no tap), read back
 * by the script with \copy.  A summary goes to stderr.
 *
 * Rules: each thread owns its PGconn; the result arrays are indexed by seq and
 * each slot is written by exactly one thread (the one that took the number,
 * or the tap thread for tap_us), then read after every thread was joined —
 * except tap_us, which main polls while the tap runs (atomic loads/stores).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <libpq-fe.h>

struct slot
{
	int64_t due_us, start_us, commit_us, tap_us;
};

static const char *conninfo;
static const char *content_type = "p4";
static const char *amqp_url;
static const char *exchange = "sharecount";
static double rate = 1000;
static int seconds = 30;
static int nconn = 8;
static long total;
static int64_t t0_us;
static atomic_long next_seq;
static atomic_long failures;
static atomic_int tap_ready;
static atomic_int tap_stop;
static struct slot *slots;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
sleep_until_us(int64_t t)
{
	struct timespec ts = {t / 1000000, (t % 1000000) * 1000};

	while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void *
inserter(void *arg)
{
	PGconn *conn = PQconnectdb(conninfo);
	PGresult *r;
	char idbuf[32];
	const char *params[2] = {content_type, idbuf};

	(void) arg;
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "p4_load: connecting: %s", PQerrorMessage(conn));
		exit(1);
	}
	r = PQprepare(conn, "ins", "INSERT INTO share_links (content_type, content_id, user_id) VALUES ($1, $2, 'p4')", 2,
				  NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "p4_load: prepare: %s", PQerrorMessage(conn));
		exit(1);
	}
	PQclear(r);
	for (;;)
	{
		long i = atomic_fetch_add(&next_seq, 1);
		struct slot *s;

		if (i >= total)
			break;
		s = &slots[i];
		s->due_us = t0_us + (int64_t) ((double) i * 1e6 / rate);
		sleep_until_us(s->due_us);
		s->start_us = now_us();
		snprintf(idbuf, sizeof(idbuf), "%ld", i);
		r = PQexecPrepared(conn, "ins", 2, params, NULL, NULL, 0);
		s->commit_us = now_us();
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "p4_load: insert %ld: %s", i, PQerrorMessage(conn));
			atomic_fetch_add(&failures, 1);
			s->commit_us = 0;
		}
		PQclear(r);
	}
	PQfinish(conn);
	return NULL;
}

static int
amqp_ok(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	fprintf(stderr, "p4_load: tap: %s failed (reply type %d)\n", what, r.reply_type);
	return 0;
}

/*
 * The tap: consume copies of share_created jobs from an exclusive queue and
 * note when each probe arrived.  The probe's seq is its contentId; the body is
 * the bridge's compact JSON, so a plain search for the two fields suffices.
 */
static void *
tap(void *arg)
{
	char *url = strdup(amqp_url);
	struct amqp_connection_info ci;
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(c);
	amqp_queue_declare_ok_t *q;
	amqp_bytes_t qname;
	char typepat[128];

	(void) arg;
	snprintf(typepat, sizeof(typepat), "\"contentType\":\"%s\",\"contentId\":\"", content_type);
	if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK || amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK)
	{
		fprintf(stderr, "p4_load: tap: cannot connect to %s\n", amqp_url);
		exit(1);
	}
	if (!amqp_ok(amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password), "login"))
		exit(1);
	amqp_channel_open(c, 1);
	if (!amqp_ok(amqp_get_rpc_reply(c), "channel.open"))
		exit(1);
	q = amqp_queue_declare(c, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
	if (!amqp_ok(amqp_get_rpc_reply(c), "queue.declare"))
		exit(1);
	qname = amqp_bytes_malloc_dup(q->queue);
	amqp_queue_bind(c, 1, qname, amqp_cstring_bytes(exchange), amqp_cstring_bytes("share_created"), amqp_empty_table);
	if (!amqp_ok(amqp_get_rpc_reply(c), "queue.bind (does the exchange exist yet?)"))
		exit(1);
	amqp_basic_consume(c, 1, qname, amqp_empty_bytes, 0, 1, 1, amqp_empty_table);
	if (!amqp_ok(amqp_get_rpc_reply(c), "basic.consume"))
		exit(1);
	atomic_store(&tap_ready, 1);
	while (!atomic_load(&tap_stop))
	{
		amqp_envelope_t env;
		struct timeval tv = {0, 200000};
		amqp_rpc_reply_t r;

		amqp_maybe_release_buffers(c);
		r = amqp_consume_message(c, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_NORMAL)
		{
			int64_t t = now_us();
			size_t len = env.message.body.len;
			char *body = malloc(len + 1);
			char *p;

			memcpy(body, env.message.body.bytes, len);
			body[len] = '\0';
			p = strstr(body, typepat);
			if (p)
			{
				long i = strtol(p + strlen(typepat), NULL, 10);

				if (i >= 0 && i < total && __atomic_load_n(&slots[i].tap_us, __ATOMIC_RELAXED) == 0)
					__atomic_store_n(&slots[i].tap_us, t, __ATOMIC_RELAXED);
			}
			free(body);
			amqp_destroy_envelope(&env);
			continue;
		}
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
			continue;
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
		{
			amqp_frame_t f;

			if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
				break;
			continue;
		}
		fprintf(stderr, "p4_load: tap: consume failed (reply type %d)\n", r.reply_type);
		break;
	}
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	amqp_bytes_free(qname);
	free(url);
	return NULL;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

static void
usage(void)
{
	fprintf(
		stderr,
		"usage: p4_load -d CONNINFO -o OUT.csv [-r rate/s (1000)] [-s seconds (30)] [-c connections (8)]\n"
		"               [-t content_type (p4)] [-a AMQP_URL [-x exchange (sharecount)] [-w tap-wait-seconds (10)]]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *out = NULL;
	int opt, tap_wait = 10;
	pthread_t *th, tap_th;
	FILE *f;
	int64_t *lag, first_start = 0, last_commit = 0;
	long late = 0;

	while ((opt = getopt(argc, argv, "d:o:r:s:c:t:a:x:w:")) != -1)
	{
		switch (opt)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'o':
				out = optarg;
				break;
			case 'r':
				rate = atof(optarg);
				break;
			case 's':
				seconds = atoi(optarg);
				break;
			case 'c':
				nconn = atoi(optarg);
				break;
			case 't':
				content_type = optarg;
				break;
			case 'a':
				amqp_url = optarg;
				break;
			case 'x':
				exchange = optarg;
				break;
			case 'w':
				tap_wait = atoi(optarg);
				break;
			default:
				usage();
		}
	}
	if (!conninfo || !out || rate <= 0 || seconds <= 0 || nconn <= 0)
		usage();
	total = (long) (rate * seconds);
	slots = calloc((size_t) total, sizeof(struct slot));
	th = calloc((size_t) nconn, sizeof(pthread_t));
	lag = calloc((size_t) total, sizeof(int64_t));
	if (!slots || !th || !lag)
	{
		fprintf(stderr, "p4_load: out of memory\n");
		return 1;
	}
	if (amqp_url)
	{
		pthread_create(&tap_th, NULL, tap, NULL);
		while (!atomic_load(&tap_ready))
			usleep(10000);
	}
	/* start 200 ms from now so every connection is open before the first due time */
	t0_us = now_us() + 200000;
	for (int i = 0; i < nconn; i++)
		pthread_create(&th[i], NULL, inserter, NULL);
	for (int i = 0; i < nconn; i++)
		pthread_join(th[i], NULL);
	if (amqp_url)
	{
		/* wait until every probe passed the broker, or tap_wait seconds */
		int64_t end = now_us() + (int64_t) tap_wait * 1000000;

		for (;;)
		{
			long seen = 0;

			for (long i = 0; i < total; i++)
				seen += __atomic_load_n(&slots[i].tap_us, __ATOMIC_RELAXED) != 0;
			if (seen == total || now_us() > end)
				break;
			usleep(50000);
		}
		atomic_store(&tap_stop, 1);
		pthread_join(tap_th, NULL);
	}

	f = fopen(out, "w");
	if (!f)
	{
		perror(out);
		return 1;
	}
	for (long i = 0; i < total; i++)
	{
		struct slot *s = &slots[i];

		fprintf(f, "%ld,%lld,%lld,%lld,%lld\n", i, (long long) s->due_us, (long long) s->start_us,
				(long long) s->commit_us, (long long) s->tap_us);
		lag[i] = s->start_us - s->due_us;
		late += lag[i] > 1000;
		if (i == 0 || s->start_us < first_start)
			first_start = s->start_us;
		if (s->commit_us > last_commit)
			last_commit = s->commit_us;
	}
	if (fclose(f) != 0)
	{
		perror(out);
		return 1;
	}
	qsort(lag, (size_t) total, sizeof(int64_t), cmp64);
	fprintf(stderr,
			"p4_load: %ld inserts on %d connections in %.3f s = %.1f/s (target %.0f/s); "
			"start lag behind schedule p50 %.3f ms, p99 %.3f ms, max %.3f ms; %ld started > 1 ms late; %ld failed\n",
			total, nconn, (last_commit - first_start) / 1e6, total / ((last_commit - first_start) / 1e6), rate,
			lag[total / 2] / 1e3, lag[(long) (total * 0.99)] / 1e3, lag[total - 1] / 1e3, late, atomic_load(&failures));
	return atomic_load(&failures) ? 1 : 0;
}
