/*
 * http_live_sse.c — Server-Sent Events (docs/live.md "Server-Sent Events"):
 * GET /share-links/stream/:contentType?ids=a,b, routed by http.c and
 * http_live.c.
 *
 * A stream is a libmicrohttpd response from a callback (stream_read).  It is
 * subscribed to its keys when routed, before http.c suspends the connection
 * for the snapshot read (sharecount_get_many through the pool), so no change
 * is missed; its first bytes are one `count` event per key (the hub's latest
 * when known, else the database's count), then every change the hub queues
 * for it.  With nothing to send the callback suspends the connection; the
 * hub's wake callback (a change, or the subscriber dropped as slow) and the
 * heartbeat thread (LIVE_SSE_HEARTBEAT_MS of silence) resume it.  A
 * suspended connection does not time out; a stream whose client stops
 * reading fills its hub queue and is dropped (LIVE_SUB_QUEUE_BYTES), and a
 * write that cannot progress times out by http_timeout_ms.
 *
 * Rules (locking): each stream's mutex guards its suspended / pending flags
 * and is held across MHD_suspend_connection() and MHD_resume_connection(),
 * so a resume always follows its suspend.  Lock order: the hub's mutex (wake
 * callbacks run under it), then sse.mu, then a stream's mutex; the read
 * callback holds no lock while it calls into the hub.  `stopping` is read
 * under a stream's mutex before suspending: http_live_sse_quiesce() sets it,
 * then resumes every suspended stream, so none stays suspended when
 * libmicrohttpd stops.  Memory: a stream owns its pending output (`out`,
 * malloc'ed: the snapshot, then one frame at a time); libmicrohttpd's buffer
 * for it (HTTP_LIVE_SSE_BLOCK) comes from the connection's http_conn_memory.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "http_live.h"
#include "http_live_int.h"
#include "http_loop.h"
#include "http_reply.h"
#include "live_sse.h"
#include "log.h"
#include "metrics.h"

/* How often the heartbeat thread looks for silent streams */
#define HTTP_LIVE_TICK_MS 1000
/* libmicrohttpd's output buffer of one stream (from its http_conn_memory) */
#define HTTP_LIVE_SSE_BLOCK 4096


struct http_live_stream
{
	struct MHD_Connection *conn;
	struct live_sub *sub;
	pthread_mutex_t mu;
	bool suspended; /* by stream_read (not by http.c's snapshot hand-off) */
	bool pending;	/* woken while not suspended: look again before suspending */
	_Atomic int64_t last_write_ms;
	char *out; /* bytes to send before the next event */
	size_t out_len, out_off;
	char *allow_origin; /* the Access-Control-Allow-Origin value, or NULL */
	struct http_live_stream *prev, *next;
};

static struct
{
	pthread_mutex_t mu; /* the list of streams */
	pthread_cond_t tick;
	struct http_live_stream *streams;
	atomic_int stopping;
	atomic_uint_fast64_t nstreams;
	pthread_t heartbeat;
	bool started;
} sse = {.mu = PTHREAD_MUTEX_INITIALIZER, .tick = PTHREAD_COND_INITIALIZER};

uint64_t
http_live_sse_count(void)
{
	return atomic_load(&sse.nstreams);
}

/* The hub's wake callback (under the hub's mutex): resume the stream if its read callback suspended it. */
static void
stream_wake(void *arg)
{
	struct http_live_stream *s = arg;

	pthread_mutex_lock(&s->mu);
	if (s->suspended)
	{
		s->suspended = false;
		http_loop_resume(s->conn);
	}
	else
		s->pending = true;
	pthread_mutex_unlock(&s->mu);
}

struct http_live_stream *
http_live_stream_new(struct MHD_Connection *conn, const struct route *rt, const char **err)
{
	struct http_live_stream *s = calloc(1, sizeof(*s));
	const char *cors = NULL;
	const union MHD_ConnectionInfo *fd;
	char why[160];

	*err = "out of memory";
	if (!s)
		return NULL;
	http_live_origin_allowed(conn, &cors); /* checked already: only the CORS value is wanted */
	if (cors && !(s->allow_origin = strdup(cors)))
	{
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->conn = conn;
	if ((fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD)) != NULL)
		http_live_set_sndbuf(fd->connect_fd);
	if (!(s->sub = live_hub_attach(http_live_hub(), stream_wake, s)))
		*err = "no room for more subscribers, try later";
	else if (live_hub_subscribe(http_live_hub(), s->sub, rt->content_type, rt->ids, (int) rt->nids, why, sizeof(why)) !=
			 0)
		*err = "no room for more subscriptions, try later";
	else
	{
		atomic_store(&s->last_write_ms, clock_now_ms());
		pthread_mutex_lock(&sse.mu);
		s->next = sse.streams;
		if (sse.streams)
			sse.streams->prev = s;
		sse.streams = s;
		pthread_mutex_unlock(&sse.mu);
		atomic_fetch_add(&sse.nstreams, 1);
		return s;
	}
	if (s->sub)
		live_hub_detach(http_live_hub(), s->sub);
	pthread_mutex_destroy(&s->mu);
	free(s->allow_origin);
	free(s);
	return NULL;
}

void
http_live_stream_done(struct http_live_stream *s)
{
	live_hub_detach(http_live_hub(), s->sub); /* no wake after this */
	pthread_mutex_lock(&sse.mu);
	if (s->prev)
		s->prev->next = s->next;
	else
		sse.streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&sse.mu);
	atomic_fetch_sub(&sse.nstreams, 1);
	pthread_mutex_destroy(&s->mu);
	free(s->out);
	free(s->allow_origin);
	free(s);
}

/* Make text (malloc'ed, taken over) the stream's next output. */
static void
stream_set_out(struct http_live_stream *s, char *text)
{
	free(s->out);
	s->out = text;
	s->out_len = text ? strlen(text) : 0;
	s->out_off = 0;
}

/* Copy what is left of s->out into buf[0..max); how many bytes. */
static size_t
stream_take(struct http_live_stream *s, char *buf, size_t max)
{
	size_t n = s->out_len - s->out_off;

	if (n > max)
		n = max;
	memcpy(buf, s->out + s->out_off, n);
	s->out_off += n;
	if (s->out_off == s->out_len)
		stream_set_out(s, NULL);
	return n;
}

/*
 * Nothing to send: suspend (0), unless a wake came in meanwhile (1: look
 * again) or the role is stopping (-1: end the stream).
 */
static int
stream_idle(struct http_live_stream *s)
{
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if (atomic_load(&sse.stopping))
		rc = -1;
	else if (s->pending)
	{
		s->pending = false;
		rc = 1;
	}
	else
	{
		s->suspended = true;
		MHD_suspend_connection(s->conn);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* libmicrohttpd's read callback of a stream (see the file's header). */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_live_stream *s = cls;
	size_t n = 0;

	(void) pos;
	for (;;)
	{
		char *data = NULL;
		int rc;

		if (s->out)
			n += stream_take(s, buf + n, max - n);
		if (n == max || s->out)
			break;
		rc = live_hub_next(http_live_hub(), s->sub, &data);
		if (rc < 0) /* dropped as slow: close the connection */
			return n ? (ssize_t) n : MHD_CONTENT_READER_END_WITH_ERROR;
		if (rc == 1)
		{
			stream_set_out(s, live_sse_frame(data));
			free(data);
			continue;
		}
		if (n > 0)
			break;
		if (clock_now_ms() - atomic_load(&s->last_write_ms) >= LIVE_SSE_HEARTBEAT_MS)
		{
			stream_set_out(s, strdup(LIVE_SSE_HEARTBEAT));
			continue;
		}
		if ((rc = stream_idle(s)) < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (rc == 0)
			return 0; /* suspended: libmicrohttpd calls again once resumed */
	}
	atomic_store(&s->last_write_ms, clock_now_ms());
	return (ssize_t) n;
}

/* The snapshot: one count frame per key, the hub's latest if known, else the database's count. */
static char *
snapshot_text(const struct dbpool_job *job, const struct route *rt)
{
	size_t len = 0, cap = 0;
	char *all = NULL;

	for (size_t i = 0; i < rt->nids; i++)
	{
		struct live_count c;
		char *data, *frame;
		size_t n;

		http_live_snapshot_count(&c, rt->content_type, rt->ids[i], job->counts[i]);
		data = live_event_data_json(&c);
		frame = data ? live_sse_frame(data) : NULL;
		free(data);
		n = frame ? strlen(frame) : 0;
		if (frame && len + n + 1 > cap)
		{
			char *b = realloc(all, cap = 2 * (len + n + 1));

			if (!b)
			{
				free(frame);
				frame = NULL;
			}
			else
				all = b;
		}
		if (!frame)
		{
			free(all);
			return NULL;
		}
		memcpy(all + len, frame, n + 1);
		len += n;
		free(frame);
	}
	return all;
}

enum MHD_Result
http_live_stream_answer(struct MHD_Connection *conn, struct http_live_stream *s, const struct dbpool_job *job,
						const struct route *rt)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *snap;

	if (job->rc != DBPOOL_OK)
		return http_send_db_error(conn, job->rc, job->err);
	if (!(snap = snapshot_text(job, rt)))
		return http_send_error(conn, 500, "out of memory", NULL);
	stream_set_out(s, snap);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_LIVE_SSE_BLOCK, stream_read, s, NULL);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, HTTP_LIVE_SSE_TYPE);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* a proxy in front must not hold events back */
	if (s->allow_origin)
	{
		MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, s->allow_origin);
		MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
	}
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	metrics_http_status(MHD_HTTP_OK);
	return ret;
}

/* ------------------------------------------------------------- heartbeat -- */

/* Resume every suspended stream (all of them, or those silent for LIVE_SSE_HEARTBEAT_MS). */
static void
resume_streams(bool all)
{
	int64_t now = clock_now_ms();

	pthread_mutex_lock(&sse.mu);
	for (struct http_live_stream *s = sse.streams; s; s = s->next)
	{
		pthread_mutex_lock(&s->mu);
		if (s->suspended && (all || now - atomic_load(&s->last_write_ms) >= LIVE_SSE_HEARTBEAT_MS))
		{
			s->suspended = false;
			http_loop_resume(s->conn);
		}
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&sse.mu);
}

static void *
heartbeat_main(void *arg)
{
	(void) arg;
	log_set_role("http");
	pthread_mutex_lock(&sse.mu);
	while (!atomic_load(&sse.stopping))
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += HTTP_LIVE_TICK_MS / 1000;
		pthread_cond_timedwait(&sse.tick, &sse.mu, &ts);
		pthread_mutex_unlock(&sse.mu);
		resume_streams(false);
		pthread_mutex_lock(&sse.mu);
	}
	pthread_mutex_unlock(&sse.mu);
	return NULL;
}

int
http_live_sse_start(void)
{
	atomic_store(&sse.stopping, 0);
	if (pthread_create(&sse.heartbeat, NULL, heartbeat_main, NULL) != 0)
	{
		log_error("cannot start the heartbeat thread");
		return -1;
	}
	sse.started = true;
	return 0;
}

void
http_live_sse_quiesce(void)
{
	pthread_mutex_lock(&sse.mu);
	atomic_store(&sse.stopping, 1);
	pthread_cond_broadcast(&sse.tick);
	pthread_mutex_unlock(&sse.mu);
	resume_streams(true);
	if (sse.started)
		pthread_join(sse.heartbeat, NULL);
	sse.started = false;
}
