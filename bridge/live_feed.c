/*
 * live_feed.c — the http role's consumer of count-change events (see
 * live_feed.h, docs/live.md "Feed").
 *
 * Rules: the thread runs connect -> declare -> consume -> (broken) -> down
 * -> backoff -> connect until stopped.  "Up" is set only after basic.consume
 * is acknowledged on a bound queue, and cleared (live_cache_stream(false))
 * before anything else when the connection breaks, so the cache is never
 * used while events may be missed.  Events are consumed with no_ack (they
 * are not persistent and a lost one costs freshness only); bad events are
 * counted by live_event_decode, logged at debug and dropped.  Waits are
 * bounded by LIVE_FEED_WAIT_MS so live_feed_stop (or sc_stop) is noticed
 * quickly; rabbitmq-c services heartbeats inside amqp_consume_message.
 * The connection declares only what the feed uses — the updates exchange,
 * its own queue and binding — none of the jobs topology (amqp.c's
 * no_topology): an http-only bridge neither creates the jobs queue nor
 * depends on its arguments (a mismatch there, 406, is the job roles' error).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp.h"
#include "bridge.h"
#include "clock.h"
#include "live_feed.h"
#include "log.h"
#include "metrics.h"

static struct
{
	const struct sc_config *cfg;
	struct live_hub *hub;
	struct live_cache *cache;
	pthread_t thread;
	int started;
	atomic_int stop;
	atomic_int up;
	struct sc_amqp amqp;
	amqp_bytes_t queue; /* the server-named queue, while connected */
} feed;

static atomic_flag registered = ATOMIC_FLAG_INIT;

bool
live_feed_up(void)
{
	return atomic_load(&feed.up) != 0;
}

static bool
stopping(void)
{
	return sc_stop || atomic_load(&feed.stop);
}

/* Up or down, for the cache and /metrics; logged when it changes. */
static void
set_up(bool up)
{
	if (atomic_exchange(&feed.up, up ? 1 : 0) == (up ? 1 : 0))
		return;
	live_cache_stream(feed.cache, up, clock_now_ms());
	if (up)
		log_info("event stream up: consuming %s (cache in use)", feed.cfg->updates_exchange);
	else
		log_warn("event stream down: the cache is bypassed until it is back");
}

/* Declare the exchange, our queue, bind it with "#" and consume: 0, or -1 (logged). */
static int
subscribe(struct sc_amqp *a)
{
	amqp_connection_state_t c = a->conn;
	amqp_table_t none = {0, NULL};
	amqp_table_entry_t qargs[1];
	amqp_table_t qtable = {1, qargs};
	amqp_queue_declare_ok_t *q;

	if (sc_amqp_declare_updates_exchange(a) < 0)
		return -1;
	memset(qargs, 0, sizeof(qargs));
	qargs[0].key = amqp_cstring_bytes("x-max-length");
	qargs[0].value.kind = AMQP_FIELD_KIND_I64;
	qargs[0].value.value.i64 = LIVE_FEED_QUEUE_MAX;
	q = amqp_queue_declare(c, SC_CH, amqp_empty_bytes, 0, 0, 1, 1, qtable);
	if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(c), "declaring the feed's queue (exclusive, auto-delete)", NULL) < 0)
		return -1;
	amqp_bytes_free(feed.queue);
	feed.queue = amqp_bytes_malloc_dup(q->queue);
	if (!feed.queue.bytes)
		return -1;
	amqp_queue_bind(c, SC_CH, feed.queue, amqp_cstring_bytes(a->cfg->updates_exchange), amqp_cstring_bytes("#"), none);
	if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(c), "binding the feed's queue with \"#\"", NULL) < 0)
		return -1;
	amqp_basic_consume(c, SC_CH, feed.queue, amqp_empty_bytes, 0, 1, 1, none);
	return sc_amqp_reply_ok(a, amqp_get_rpc_reply(c), "consuming the feed's queue", NULL);
}

/* One delivered event: decoded strictly, then to the cache and the hub. */
static void
take_event(const amqp_bytes_t body)
{
	struct live_count ev;
	char err[256];

	if (live_event_decode(body.bytes, body.len, &ev, err, sizeof(err)) < 0)
	{
		log_debug("event rejected: %s", err);
		return;
	}
	live_cache_update(feed.cache, &ev);
	if (feed.hub && live_hub_update(feed.hub, &ev) < 0)
		log_warn("out of memory queueing an event to subscribers");
}

/* Consume until the connection breaks or the feed stops; 0 stopped, -1 broken. */
static int
consume(struct sc_amqp *a)
{
	while (!stopping())
	{
		amqp_envelope_t env;
		struct timeval tv = {0, LIVE_FEED_WAIT_MS * 1000};
		amqp_rpc_reply_t r;

		amqp_maybe_release_buffers(a->conn);
		r = amqp_consume_message(a->conn, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_NORMAL)
		{
			take_event(env.message.body);
			amqp_destroy_envelope(&env);
			continue;
		}
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
			continue;
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
		{
			amqp_frame_t f;
			struct timeval zero = {0, 0};
			int rc = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);

			if (rc == AMQP_STATUS_TIMEOUT || (rc == AMQP_STATUS_OK && sc_amqp_async_frame(a, &f) == 0))
				continue;
			return -1;
		}
		sc_amqp_reply_ok(a, r, "consuming events", NULL);
		return -1;
	}
	return 0;
}

/* Sleep ms unless stopped first. */
static void
pause_ms(int ms)
{
	int64_t end = clock_now_ms() + ms;

	while (!stopping() && clock_now_ms() < end)
	{
		struct timespec ts = {0, SC_SLEEP_SLICE_MS * 1000000L};

		nanosleep(&ts, NULL);
	}
}

static void *
feed_main(void *arg)
{
	int backoff = SC_RECONNECT_FIRST_MS;

	(void) arg;
	log_set_role("feed");
	sc_amqp_init(&feed.amqp, feed.cfg, "live feed", NULL, SC_CONN_UNTRACKED);
	feed.amqp.no_topology = 1; /* the updates exchange and its own queue only (subscribe) */
	while (!stopping())
	{
		if (sc_amqp_connect(&feed.amqp) == 0 && subscribe(&feed.amqp) == 0)
		{
			backoff = SC_RECONNECT_FIRST_MS;
			set_up(true);
			if (consume(&feed.amqp) == 0)
				break;
		}
		set_up(false);
		sc_amqp_disconnect(&feed.amqp);
		pause_ms(backoff);
		backoff = backoff_next(backoff, SC_LIVE(feed.cfg, reconnect_max_ms));
	}
	set_up(false);
	sc_amqp_disconnect(&feed.amqp);
	amqp_bytes_free(feed.queue);
	feed.queue = amqp_empty_bytes;
	return NULL;
}

/* The cache's and the feed's lines of /metrics (docs/http.md "GET /metrics"). */
static void
render(struct metrics_out *out)
{
	static const struct
	{
		const char *name, *type, *help;
	} rows[] = {
		{"cache_hits_total", "counter", "Count requests answered from the cache."},
		{"cache_misses_total", "counter", "Count requests that read the database while the cache was usable."},
		{"cache_bypasses_total", "counter", "Count requests that read the database because the event stream was down."},
		{"cache_entries", "gauge", "Keys in the cache."},
		{"cache_evictions_total", "counter", "Keys evicted from the full cache."},
		{"events_received_total", "counter", "Count-change events received from the updates exchange."},
		{"events_rejected_total", "counter", "Received events that were malformed and ignored."},
		{"event_stream_up", "gauge", "1 while the events feed consumes the updates exchange (the cache is usable)."},
	};
	struct live_cache_stats st;
	unsigned long long v[sizeof(rows) / sizeof(rows[0])];
	size_t i;

	live_cache_get_stats(feed.cache, &st);
	v[0] = st.hits;
	v[1] = st.misses;
	v[2] = st.bypasses;
	v[3] = st.entries;
	v[4] = st.evicted;
	v[5] = live_event_received();
	v[6] = live_event_rejected();
	v[7] = live_feed_up();
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		metrics_printf(out, "# HELP sharecount_%s %s\n# TYPE sharecount_%s %s\nsharecount_%s %llu\n", rows[i].name,
					   rows[i].help, rows[i].name, rows[i].type, rows[i].name, v[i]);
}

int
live_feed_start(const struct sc_config *cfg, struct live_hub *hub, struct live_cache *cache)
{
	sigset_t all, old;
	int rc;

	feed.cfg = cfg;
	feed.hub = hub;
	feed.cache = cache;
	atomic_store(&feed.stop, 0);
	atomic_store(&feed.up, 0);
	if (!atomic_flag_test_and_set(&registered))
		metrics_add_section(render);
	if (!cache && !hub)
		return 0;
	/* the thread inherits a mask with every signal blocked (main.c handles them) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&feed.thread, NULL, feed_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		log_error("cannot start the events feed thread: %s", strerror(rc));
		return -1;
	}
	feed.started = 1;
	return 0;
}

void
live_feed_stop(void)
{
	if (!feed.started)
		return;
	atomic_store(&feed.stop, 1);
	pthread_join(feed.thread, NULL);
	feed.started = 0;
}
