/*
 * http_live_ws.c — the http role's live thread (docs/live.md "WebSocket",
 * "Capacity"): one thread drives every WebSocket and every stream the bridge
 * serves itself with epoll, one hub subscriber each.  A WebSocket comes from
 * libmicrohttpd's upgrade (a handshake on a kept-alive connection: answered
 * by http_live.c) or from the door (http_stream.c wrote its 101): a struct
 * live_ws (wslay).  A Server-Sent Events stream comes from the door
 * (http_stream.c routed it): a struct live_sse; its 200 head goes out with
 * its snapshot (a 503 instead when the snapshot cannot be read).  A
 * connection from the door is the bridge's own socket: nothing of
 * libmicrohttpd is kept for it.
 *
 * A subscribe is checked and applied by the hub (all or nothing); its
 * snapshot is one share_count_changed message per key, the hub's latest when
 * known, else read from the database through the pool (sharecount_get_many,
 * asynchronously: the thread never waits on the database).  While a
 * connection's snapshot is being read its queued changes wait, so the
 * snapshot comes first.  Changes are moved from the hub to wslay when the
 * hub's wake callback marks the connection ready; a subscriber the hub drops
 * as slow, or one whose wslay output passes LIVE_WS_MAX_QUEUED, is closed
 * with 1008.  Every HTTP_LIVE_WS_TICK_MS each connection's timers run
 * (ping, idle close, close wait).
 *
 * Rules (threads, memory): libmicrohttpd's threads only put new connections
 * on `pending`; the database workers only put finished snapshot reads on
 * `snaps_done`; the hub's wake callback only puts a connection on `ready`
 * (once: its `queued` flag) — all three under ws.mu, each followed by a
 * write to the eventfd.  Everything else belongs to the WebSocket thread.
 * Lock order: the hub's mutex, then ws.mu.  A connection is freed only by
 * this thread, after live_hub_detach() (no wake after it), taken off
 * `ready`, and once no snapshot read of it is in flight (`closing` waits for
 * them).  An upgraded socket is closed by libmicrohttpd
 * (MHD_UPGRADE_ACTION_CLOSE), one from the door here (then
 * http_door_release()).  Memory: per connection its struct, its live_ws or
 * live_sse (each small while idle), a stream's head and keys until its
 * snapshot is written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "dbpool.h"
#include "http_door.h"
#include "http_live_int.h"
#include "http_stream.h"
#include "live_sse.h"
#include "live_ws.h"
#include "log.h"
#include "metrics.h"

/* The connections' timers run this often (ping, idle and close-wait are whole seconds) */
#define HTTP_LIVE_WS_TICK_MS 1000
/* epoll events taken per wake-up */
#define HTTP_LIVE_WS_EVENTS 256

struct ws_conn
{
	struct ws_conn *prev, *next; /* ws.conns (this thread's) */
	struct ws_conn *ready_next;	 /* ws.ready, under ws.mu */
	bool queued;				 /* on ws.ready, under ws.mu */
	int fd;
	struct MHD_UpgradeResponseHandle *urh; /* NULL: the door's socket (http_stream.c) */
	struct live_ws *ws;					   /* a WebSocket, or */
	struct live_sse *sse;				   /* a stream (is_sse) */
	bool is_sse;
	char *head;					 /* a stream's 200 head, until its snapshot goes out */
	struct live_client_msg keys; /* a stream's keys, until adopted */
	struct live_sub *sub;
	short events; /* what epoll watches now */
	int snaps;	  /* snapshot reads in flight */
	bool closing; /* done: freed once snaps is 0 */
	bool failed;  /* a stream that must end (too slow, out of memory) */
	char *extra;  /* bytes libmicrohttpd read past the handshake, until live_ws_new */
	size_t extra_len;
};

/* One snapshot read: the subscribe message's keys and their counts. */
struct ws_snap
{
	struct dbpool_job job;
	struct ws_conn *c;
	struct live_client_msg m;
	struct ws_snap *next; /* ws.snaps_done */
};

static struct
{
	pthread_mutex_t mu;
	struct ws_conn *pending; /* upgraded, not adopted yet */
	struct ws_conn *ready;	 /* changes queued in the hub */
	struct ws_snap *snaps_done;
	int ep, wake_fd;
	pthread_t thread;
	bool started;
	atomic_int stop;
	int db_timeout_ms;
	struct ws_conn *conns;
	atomic_uint_fast64_t nws, nsse; /* open connections of each kind */
} ws = {.mu = PTHREAD_MUTEX_INITIALIZER, .ep = -1, .wake_fd = -1};

uint64_t
http_live_ws_count(void)
{
	return atomic_load(&ws.nws);
}

uint64_t
http_live_thread_sse_count(void)
{
	return atomic_load(&ws.nsse);
}

static void
wake_thread(void)
{
	uint64_t one = 1;

	if (write(ws.wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("eventfd: %s", strerror(errno));
}

/* The hub's wake callback (under the hub's mutex): queue the connection for pump(). */
static void
conn_wake(void *arg)
{
	struct ws_conn *c = arg;
	bool first;

	pthread_mutex_lock(&ws.mu);
	first = !c->queued;
	if (first)
	{
		c->queued = true;
		c->ready_next = ws.ready;
		ws.ready = c;
	}
	pthread_mutex_unlock(&ws.mu);
	if (first)
		wake_thread();
}

static void
conn_free(struct ws_conn *c)
{
	free(c->extra);
	free(c->head);
	live_client_msg_free(&c->keys);
	live_ws_free(c->ws);
	live_sse_free(c->sse);
	if (c->urh)
		MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
	else
	{
		close(c->fd);
		http_door_release();
	}
	free(c);
}

/* Hand a new connection to the thread (any thread); during stop it is closed at once. */
static void
enqueue(struct ws_conn *c)
{
	pthread_mutex_lock(&ws.mu);
	if (atomic_load(&ws.stop))
	{
		pthread_mutex_unlock(&ws.mu);
		conn_free(c); /* the role is stopping */
		return;
	}
	c->next = ws.pending;
	ws.pending = c;
	pthread_mutex_unlock(&ws.mu);
	wake_thread();
}

void
http_live_ws_upgraded(void *cls, struct MHD_Connection *connection, void *req_cls, const char *extra_in,
					  size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct ws_conn *c = calloc(1, sizeof(*c));

	(void) cls, (void) connection, (void) req_cls;
	if (!c || (extra_in_size > 0 && !(c->extra = malloc(extra_in_size))))
	{
		free(c);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	c->fd = sock;
	c->urh = urh;
	if (extra_in_size > 0)
		memcpy(c->extra, extra_in, extra_in_size);
	c->extra_len = extra_in_size;
	enqueue(c);
}

int
http_live_ws_adopt(int fd)
{
	struct ws_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	c->fd = fd;
	enqueue(c);
	return 0;
}

int
http_live_sse_adopt(int fd, struct route *rt, const char *cors)
{
	struct ws_conn *c = calloc(1, sizeof(*c));

	if (!c || !(c->head = http_stream_sse_head(cors)))
	{
		free(c);
		return -1;
	}
	c->fd = fd;
	c->is_sse = true;
	snprintf(c->keys.content_type, sizeof(c->keys.content_type), "%s", rt->content_type);
	c->keys.ids = rt->ids; /* taken over */
	c->keys.nids = (int) rt->nids;
	rt->ids = NULL;
	rt->nids = 0;
	enqueue(c);
	return 0;
}

/* ---------------------------------------------------------------- sending -- */

/* Queue msg (taken over; NULL: out of memory, nothing sent).  A stream too slow to take it ends. */
static void
send_text(struct ws_conn *c, char *msg)
{
	if (msg && c->ws)
		live_ws_send(c->ws, msg, strlen(msg));
	else if (msg && c->sse && live_sse_send(c->sse, msg, strlen(msg)) != 0)
		c->failed = true;
	free(msg);
}

/* One event's data text in the connection's framing. */
static char *
wrap_data(struct ws_conn *c, const char *data)
{
	return c->is_sse ? live_sse_frame(data) : live_ws_event_msg(data);
}

/* An error event (a stream has none: it ends). */
static void
send_error(struct ws_conn *c, int status, const char *message)
{
	if (c->is_sse)
		c->failed = true;
	else
		send_text(c, live_ws_error_msg(status, message));
}

static void
send_count(struct ws_conn *c, const struct live_count *k)
{
	char *data = live_event_data_json(k);

	send_text(c, data ? wrap_data(c, data) : NULL);
	free(data);
}

/* Hub -> wslay: every queued change; a subscriber the hub dropped is closed (1008). */
static void
pump(struct ws_conn *c)
{
	char *data;
	int rc = 0;

	if (c->snaps > 0 || c->closing || c->failed)
		return; /* the snapshot first; finish_snap() pumps */
	/* a stream takes changes while its output is short (conn_io pumps again as it drains) */
	while ((!c->sse || live_sse_pending(c->sse) < LIVE_SSE_PULL_BYTES) &&
		   (rc = live_hub_next(http_live_hub(), c->sub, &data)) == 1)
	{
		send_text(c, wrap_data(c, data));
		free(data);
	}
	if (rc < 0 && c->ws)
		live_ws_close(c->ws, LIVE_WS_CLOSE_POLICY, "too slow: dropped");
	else if (rc < 0)
		c->failed = true; /* a stream just ends */
}

/* ------------------------------------------------------------- snapshots -- */

static void
snap_done(struct dbpool_job *job)
{
	struct ws_snap *sn = job->cls;

	pthread_mutex_lock(&ws.mu);
	sn->next = ws.snaps_done;
	ws.snaps_done = sn;
	pthread_mutex_unlock(&ws.mu);
	wake_thread();
}

static void
snap_free(struct ws_snap *sn)
{
	live_client_msg_free(&sn->m);
	free(sn->job.counts);
	free(sn);
}

/* Send a subscribe's snapshot: the hub's latest per key, else counts[i] (NULL: none read). */
static void
send_snapshot(struct ws_conn *c, const struct live_client_msg *m, const int64_t *counts)
{
	if (c->head) /* a stream's 200 head comes first */
	{
		send_text(c, c->head);
		c->head = NULL;
		metrics_http_status(200);
	}
	for (int i = 0; i < m->nids; i++)
	{
		struct live_count k;

		if (!live_hub_latest(http_live_hub(), m->content_type, m->ids[i], &k))
			http_live_db_count(&k, m->content_type, m->ids[i], counts ? counts[i] : 0, 0);
		send_count(c, &k);
	}
}

/* A subscribe is applied: send its snapshot now if the hub knows every key, else read the database. */
static void
start_snapshot(struct ws_conn *c, struct live_client_msg *m)
{
	struct ws_snap *sn;
	struct live_count k;
	int known = 0;

	for (int i = 0; i < m->nids && known == i; i++)
		known += live_hub_latest(http_live_hub(), m->content_type, m->ids[i], &k);
	if (known == m->nids && c->snaps == 0)
	{
		send_snapshot(c, m, NULL);
		return;
	}
	if (!(sn = calloc(1, sizeof(*sn))) || !(sn->job.counts = calloc((size_t) m->nids, sizeof(int64_t))))
	{
		free(sn);
		send_error(c, 500, "out of memory: no snapshot");
		return;
	}
	sn->c = c;
	sn->m = *m; /* the snapshot owns the ids now */
	memset(m, 0, sizeof(*m));
	sn->job.kind = DBPOOL_GET_MANY;
	sn->job.type = sn->m.content_type;
	sn->job.ids = sn->m.ids;
	sn->job.nids = (size_t) sn->m.nids;
	sn->job.deadline = clock_now_ms() + ws.db_timeout_ms;
	sn->job.done = snap_done;
	sn->job.cls = sn;
	c->snaps++;
	dbpool_submit(&sn->job);
}

static void
finish_snap(struct ws_snap *sn)
{
	struct ws_conn *c = sn->c;

	c->snaps--;
	if (c->closing)
		; /* the connection is gone: nothing to send */
	else if (sn->job.rc != DBPOOL_OK && c->is_sse)
	{
		http_stream_send_db_error(c->fd, sn->job.rc, sn->job.err); /* instead of the 200 */
		c->failed = true;
	}
	else if (sn->job.rc != DBPOOL_OK)
		send_error(c, 503, "database unavailable: no snapshot, changes follow");
	else
		send_snapshot(c, &sn->m, sn->job.counts);
	if (!c->closing)
		pump(c);
	snap_free(sn);
}

/* A client message (inside live_ws_io): subscribe / unsubscribe, or an error event. */
static void
on_text(struct live_ws *lws, const char *msg, size_t len, void *arg)
{
	struct ws_conn *c = arg;
	struct live_client_msg m;
	char err[256];

	(void) lws;
	if (live_client_parse(msg, len, &m, err, sizeof(err)) < 0)
	{
		send_error(c, 400, err);
		return;
	}
	if (m.op == LIVE_UNSUBSCRIBE)
		live_hub_unsubscribe(http_live_hub(), c->sub, m.content_type, m.ids, m.nids);
	else if (live_hub_subscribe(http_live_hub(), c->sub, m.content_type, m.ids, m.nids, err, sizeof(err)) < 0)
		send_error(c, 400, err);
	else
		start_snapshot(c, &m);
	live_client_msg_free(&m);
}

/* ------------------------------------------------------------ connections -- */

/* The connection is done: unsubscribe, unlink; freed now or when its last snapshot read returns. */
static void
conn_close(struct ws_conn *c)
{
	if (c->sub)
		live_hub_detach(http_live_hub(), c->sub);
	c->sub = NULL;
	pthread_mutex_lock(&ws.mu);
	if (c->queued)
		for (struct ws_conn **pp = &ws.ready; *pp; pp = &(*pp)->ready_next)
			if (*pp == c)
			{
				*pp = c->ready_next;
				break;
			}
	c->queued = false;
	pthread_mutex_unlock(&ws.mu);
	epoll_ctl(ws.ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->prev)
		c->prev->next = c->next;
	else
		ws.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->closing = true;
	atomic_fetch_sub(c->is_sse ? &ws.nsse : &ws.nws, 1);
	if (c->snaps == 0)
		conn_free(c);
}

/* Run the connection's I/O and timers; keep epoll's interest in step; close it when done. */
static void
conn_io(struct ws_conn *c, short revents, int64_t now)
{
	short want = 0;

	if (c->failed)
		want = 0;
	else if (c->sse)
	{
		pump(c); /* what the hub kept while the output was long (nothing before the snapshot) */
		want = c->failed || live_sse_io(c->sse, revents, now) < 0 ? 0 : live_sse_events(c->sse);
	}
	else if (live_ws_io(c->ws, revents, now) == 0)
		want = live_ws_events(c->ws);
	if (want == 0)
	{
		conn_close(c);
		return;
	}
	if (want != c->events)
	{
		struct epoll_event ev = {.events = (uint32_t) want, .data.ptr = c};

		if (epoll_ctl(ws.ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
			c->events = want;
	}
}

/* A stream's subscription: 0, or -1 with the JSON 503 written (no room for it). */
static int
adopt_stream(struct ws_conn *c)
{
	char why[160];

	if (!c->sub)
		http_stream_send_error(c->fd, 503, "no room for more subscribers, try later", NULL);
	else if (live_hub_subscribe(http_live_hub(), c->sub, c->keys.content_type, c->keys.ids, c->keys.nids, why,
								sizeof(why)) != 0)
		http_stream_send_error(c->fd, 503, "no room for more subscriptions, try later", NULL);
	else
		return 0;
	return -1;
}

static void
adopt(struct ws_conn *c, int64_t now)
{
	struct epoll_event ev = {.data.ptr = c};
	int one = 1, zero = 0, bad;

	http_live_set_sndbuf(c->fd);
	/* each message is sent at once: no Nagle delay behind an unacknowledged one, no cork left by libmicrohttpd */
	(void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void) setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
	if (c->is_sse)
		c->sse = live_sse_new(c->fd, now);
	else
		c->ws = live_ws_new(c->fd, c->extra, c->extra_len, on_text, c);
	free(c->extra);
	c->extra = NULL;
	if (c->ws || c->sse)
		c->sub = live_hub_attach(http_live_hub(), conn_wake, c);
	ev.events = c->ws ? (uint32_t) (c->events = live_ws_events(c->ws)) :
		c->sse		  ? (uint32_t) (c->events = live_sse_events(c->sse)) :
						0;
	bad = !c->ws && !c->sse;
	if (!bad && (c->is_sse ? adopt_stream(c) != 0 : !c->sub))
	{
		bad = 1;
		log_warn("no room for another live subscriber: connection closed");
	}
	if (bad || epoll_ctl(ws.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
	{
		if (c->sub)
			live_hub_detach(http_live_hub(), c->sub);
		conn_free(c);
		return;
	}
	c->next = ws.conns;
	if (ws.conns)
		ws.conns->prev = c;
	ws.conns = c;
	atomic_fetch_add(c->is_sse ? &ws.nsse : &ws.nws, 1);
	if (c->is_sse)
	{
		start_snapshot(c, &c->keys); /* takes the keys when it reads the database */
		live_client_msg_free(&c->keys);
	}
	conn_io(c, 0, now); /* the bytes libmicrohttpd read already; a stream's snapshot */
}

/* Everything other threads handed over: new connections, finished reads, ready connections. */
static void
take_handovers(int64_t now)
{
	struct ws_conn *pend, *ready;
	struct ws_snap *done;
	uint64_t v;

	if (read(ws.wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&ws.mu);
	pend = ws.pending;
	done = ws.snaps_done;
	ws.pending = NULL;
	ws.snaps_done = NULL;
	pthread_mutex_unlock(&ws.mu);
	for (struct ws_conn *c = pend, *nx; c; c = nx)
	{
		nx = c->next;
		adopt(c, now);
	}
	for (struct ws_snap *sn = done, *nx; sn; sn = nx)
	{
		struct ws_conn *c = sn->c;

		nx = sn->next;
		finish_snap(sn);
		if (c->closing && c->snaps == 0)
			conn_free(c);
		else if (!c->closing)
			conn_io(c, 0, now);
	}
	for (;;)
	{
		pthread_mutex_lock(&ws.mu);
		if ((ready = ws.ready) != NULL)
		{
			ws.ready = ready->ready_next;
			ready->queued = false;
		}
		pthread_mutex_unlock(&ws.mu);
		if (!ready)
			break;
		pump(ready);
		conn_io(ready, 0, now);
	}
}

static void *
ws_main(void *arg)
{
	struct epoll_event ev[HTTP_LIVE_WS_EVENTS];
	int64_t next_tick = clock_now_ms() + HTTP_LIVE_WS_TICK_MS;

	(void) arg;
	log_set_role("http");
	while (!atomic_load(&ws.stop))
	{
		int n = epoll_wait(ws.ep, ev, HTTP_LIVE_WS_EVENTS, HTTP_LIVE_WS_TICK_MS);
		int64_t now = clock_now_ms();

		for (int i = 0; i < n; i++)
			if (ev[i].data.ptr != &ws.wake_fd)
				conn_io(ev[i].data.ptr, (short) ev[i].events, now);
		take_handovers(now);
		if (now >= next_tick)
		{
			for (struct ws_conn *c = ws.conns, *nx; c; c = nx)
			{
				nx = c->next;
				conn_io(c, 0, now);
			}
			next_tick = now + HTTP_LIVE_WS_TICK_MS;
		}
	}
	return NULL;
}

int
http_live_ws_start(int db_timeout_ms)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ws.wake_fd};

	ws.db_timeout_ms = db_timeout_ms;
	atomic_store(&ws.stop, 0);
	ws.ep = epoll_create1(EPOLL_CLOEXEC);
	if (ws.wake_fd < 0) /* kept open for good: libmicrohttpd's threads may still write to it */
		ws.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ws.ep < 0 || ws.wake_fd < 0 || epoll_ctl(ws.ep, EPOLL_CTL_ADD, ws.wake_fd, &ev) != 0 ||
		pthread_create(&ws.thread, NULL, ws_main, NULL) != 0)
	{
		log_error("cannot start the WebSocket thread: %s", strerror(errno));
		http_live_ws_stop();
		return -1;
	}
	ws.started = true;
	return 0;
}

/*
 * Stop the thread and close every connection (1001 is not sent: the role is
 * going away).  The database pool is drained by now, so every snapshot read
 * has come back.
 */
void
http_live_ws_stop(void)
{
	pthread_mutex_lock(&ws.mu);
	atomic_store(&ws.stop, 1); /* under ws.mu: no upgrade is queued after it */
	pthread_mutex_unlock(&ws.mu);
	if (ws.started)
	{
		wake_thread();
		pthread_join(ws.thread, NULL);
		ws.started = false;
		take_handovers(clock_now_ms());
		while (ws.conns)
			conn_close(ws.conns);
	}
	if (ws.ep >= 0)
		close(ws.ep);
	ws.ep = -1;
}
