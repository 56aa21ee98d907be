/*
 * live_pub.c — the events publisher (docs/live.md "Publishing"): a bounded
 * queue filled by the consumer thread after each commit, and a thread of its
 * own that publishes one share_count_changed event per queued change to
 * updates_exchange on its own AMQP connection.
 *
 * Rules:
 * - Locking: one mutex guards the queue (ring, head, n) and stop; the
 *   condition variable is signalled by an offer and by stop.  Nothing does
 *   I/O while holding the mutex: the events thread copies a burst out, then
 *   publishes it.  The AMQP connection belongs to the events thread alone.
 * - The consumer never waits: an offer that does not fit is dropped and
 *   counted (queue_full).  While the connection is down or blocked
 *   (connection.blocked) the queue fills and later changes are dropped; a
 *   publish that fails drops the rest of its burst (broker) and the thread
 *   reconnects with backoff_next (sc_amqp_backoff_sleep).
 * - Events are not persistent (delivery_mode 1) and not confirmed: one that
 *   was sent when the broker lost it (e.g. the exchange was deleted: the
 *   channel closes, the thread reconnects and declares it again) is lost,
 *   which costs a notification, never a count.
 * - Memory: the ring (SC_EVENTS_QUEUE fixed-size entries) is allocated once;
 *   each event's JSON is malloc'ed by live_event_encode and freed after its
 *   publish.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp.h"
#include "bridge.h"
#include "live_pub.h"
#include "log.h"
#include "metrics.h"

struct live_pub
{
	const struct sc_config *cfg;
	struct sc_amqp amqp; /* the events thread's own connection */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct live_count *ring; /* SC_EVENTS_QUEUE slots */
	int head;				 /* oldest queued */
	int n;					 /* queued */
	int stop;
	int done; /* the thread has returned (under mu) */
};

int
live_pub_offer(struct live_pub *p, const struct live_count *changes, int n)
{
	int dropped = 0;

	if (!p || n <= 0)
		return 0;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < n; i++)
	{
		if (p->n == SC_EVENTS_QUEUE)
		{
			dropped = n - i;
			break;
		}
		p->ring[(p->head + p->n++) % SC_EVENTS_QUEUE] = changes[i];
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (dropped)
		metrics_count_events_dropped(SC_EVENT_DROP_QUEUE_FULL, (uint64_t) dropped);
	return dropped;
}

/* Whether live_pub_stop was called, or the process stops (nothing could be published any more). */
static int
stopping(struct live_pub *p)
{
	int stop;

	pthread_mutex_lock(&p->mu);
	stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop || sc_stop;
}

/* Move up to max queued changes into out, waiting up to wait_ms for one; how many, or -1 if stopping. */
static int
take(struct live_pub *p, struct live_count *out, int max, int wait_ms)
{
	struct timespec until;
	int k = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L)
	{
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	while (p->n == 0 && !p->stop)
		if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT)
			break;
	while (k < max && p->n > 0)
	{
		out[k++] = p->ring[p->head];
		p->head = (p->head + 1) % SC_EVENTS_QUEUE;
		p->n--;
	}
	if (k == 0 && p->stop)
		k = -1;
	pthread_mutex_unlock(&p->mu);
	return k;
}

/* Publish one event; 0, or -1 if the connection failed under it. */
static int
publish_one(struct live_pub *p, const struct live_count *c)
{
	amqp_basic_properties_t props;
	char *body = live_event_encode(c);
	int rc;

	if (!body)
	{
		SC_AMQP_LOG(LOG_LVL_WARN, &p->amqp, "out of memory encoding an event; dropped");
		metrics_count_events_dropped(SC_EVENT_DROP_BROKER, 1);
		return 0;
	}
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_NONPERSISTENT;
	rc = amqp_basic_publish(p->amqp.conn, SC_CH, amqp_cstring_bytes(p->cfg->updates_exchange),
							amqp_cstring_bytes(c->content_type), 0, 0, &props, amqp_cstring_bytes(body));
	free(body);
	if (rc != AMQP_STATUS_OK)
	{
		SC_AMQP_LOG(LOG_LVL_WARN, &p->amqp, "publishing an event failed: %s", amqp_error_string2(rc));
		return -1;
	}
	metrics_count_events_published(1);
	return 0;
}

/* Publish burst[0..k); -1 (the rest counted as dropped) if the connection failed. */
static int
publish_burst(struct live_pub *p, const struct live_count *burst, int k)
{
	for (int i = 0; i < k; i++)
		if (publish_one(p, &burst[i]) < 0)
		{
			metrics_count_events_dropped(SC_EVENT_DROP_BROKER, (uint64_t) (k - i));
			return -1;
		}
	return 0;
}

/*
 * Read what the broker sent (heartbeats, connection.blocked / unblocked, a
 * channel or connection closed) without waiting; -1 if the connection (or
 * its channel) is gone.
 */
static int
read_frames(struct live_pub *p)
{
	for (;;)
	{
		amqp_frame_t f;
		struct timeval zero = {0, 0};
		int rc;

		amqp_maybe_release_buffers(p->amqp.conn);
		rc = amqp_simple_wait_frame_noblock(p->amqp.conn, &f, &zero);
		if (rc == AMQP_STATUS_TIMEOUT)
			return 0;
		if (rc != AMQP_STATUS_OK)
		{
			SC_AMQP_LOG(LOG_LVL_WARN, &p->amqp, "connection lost: %s", amqp_error_string2(rc));
			return -1;
		}
		if (sc_amqp_async_frame(&p->amqp, &f) < 0)
			return -1;
	}
}

/* Connected, with updates_exchange declared: 0, or -1 (disconnected, logged). */
static int
ensure_connected(struct live_pub *p)
{
	if (p->amqp.conn)
		return 0;
	if (sc_amqp_connect(&p->amqp) < 0)
		return -1;
	if (sc_amqp_declare_updates_exchange(&p->amqp) < 0)
	{
		sc_amqp_disconnect(&p->amqp);
		return -1;
	}
	return 0;
}

/* At stop: publish what is still queued if the broker takes it now. */
static void
drain(struct live_pub *p, struct live_count *burst)
{
	int k;

	while (p->amqp.conn && !p->amqp.blocked && read_frames(p) == 0 && (k = take(p, burst, SC_EVENTS_BURST, 0)) > 0)
		if (publish_burst(p, burst, k) < 0)
			break;
}

static void *
pub_main(void *arg)
{
	struct live_pub *p = arg;
	struct live_count *burst = malloc(sizeof(struct live_count) * SC_EVENTS_BURST);

	log_set_role("consumer");
	if (!burst)
	{
		SC_AMQP_LOG(LOG_LVL_ERROR, &p->amqp, "out of memory; no events will be published");
		goto out;
	}
	SC_AMQP_LOG(LOG_LVL_INFO, &p->amqp, "publishing count-change events to \"%s\"", p->cfg->updates_exchange);
	for (;;)
	{
		int k;

		if (ensure_connected(p) < 0)
		{
			if (stopping(p))
				break;
			sc_amqp_backoff_sleep(&p->amqp, SC_LIVE(p->cfg, reconnect_max_ms));
			continue;
		}
		if (read_frames(p) < 0)
		{
			sc_amqp_disconnect(&p->amqp);
			continue;
		}
		if (p->amqp.blocked)
		{
			if (stopping(p))
				break;
			sc_amqp_sleep(&p->amqp, SC_EVENTS_BLOCKED_POLL_MS);
			continue;
		}
		k = take(p, burst, SC_EVENTS_BURST, SC_EVENTS_IDLE_MS);
		if (k < 0)
			break;
		if (k == 0 && p->cfg->heartbeat_s > 0 && sc_amqp_heartbeat(&p->amqp) < 0)
			sc_amqp_disconnect(&p->amqp);
		else if (k > 0 && publish_burst(p, burst, k) < 0)
			sc_amqp_disconnect(&p->amqp);
	}
	drain(p, burst);
out:
	sc_amqp_disconnect(&p->amqp);
	free(burst);
	pthread_mutex_lock(&p->mu);
	p->done = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct live_pub *
live_pub_start(const struct sc_config *cfg)
{
	struct live_pub *p = calloc(1, sizeof(*p));
	int rc;

	if (p)
		p->ring = calloc(SC_EVENTS_QUEUE, sizeof(struct live_count));
	if (!p || !p->ring)
	{
		log_error("out of memory for the events queue; no events will be published");
		free(p);
		return NULL;
	}
	p->cfg = cfg;
	sc_amqp_init(&p->amqp, cfg, "consumer (events)", "events", SC_CONN_UNTRACKED);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	rc = pthread_create(&p->thread, NULL, pub_main, p);
	if (rc != 0)
	{
		log_error("cannot start the events thread: %s; no events will be published", strerror(rc));
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p->ring);
		free(p);
		return NULL;
	}
	return p;
}

void
live_pub_stop(struct live_pub *p)
{
	int64_t end = clock_now_ms() + SC_EVENTS_STOP_WAIT_MS;
	int done;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	while (!p->done && clock_now_ms() < end)
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&p->cv, &p->mu, &until);
	}
	done = p->done;
	pthread_mutex_unlock(&p->mu);
	if (!done)
	{
		/* blocked in a write the broker does not read: the process's exit ends it */
		log_warn("the events thread did not stop within %d ms; leaving it", SC_EVENTS_STOP_WAIT_MS);
		pthread_detach(p->thread);
		return;
	}
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->ring);
	free(p);
}
