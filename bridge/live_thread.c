/*
 * live_thread.c — the http role's live thread (docs/live.md "WebSocket",
 * "Capacity"): one thread drives, with one epoll set, every WebSocket and
 * every stream the bridge serves itself.  This file is the thread: its loop,
 * the table of its connections, the timer tick, and the hand-over lists
 * other threads fill; one connection's set-up, I/O and messages are
 * live_conn.c's, a subscribe's snapshot live_snap.c's (live_thread_int.h).
 *
 * Connections come from libmicrohttpd's upgrade (a WebSocket handshake on a
 * kept-alive connection, answered by http_live.c) or from the door
 * (http_stream.c wrote the 101, or routed a stream), through
 * live_thread_enqueue().  Every LIVE_THREAD_TICK_MS each connection's
 * timers run (ping, idle close, close wait, heartbeat, stall).
 *
 * Rules (threads): libmicrohttpd's threads and the door only put new
 * connections on `pending`; the database workers only put finished snapshot
 * reads on `snaps_done`; the hub's wake callback only puts a connection on
 * `ready` (once: its `queued` flag) — all three under lt.mu, each followed by
 * a write to the eventfd.  Everything else belongs to the live thread.  Lock
 * order: the hub's mutex, then lt.mu.  The eventfd stays open for good
 * (another thread may still write to it after a stop).  Memory: the table's
 * connections are freed as live_thread_int.h says; this file allocates
 * nothing but the epoll set and the eventfd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "http_live_int.h"
#include "live_thread_int.h"
#include "log.h"

/* The connections' timers run this often (ping, idle and close-wait are whole seconds) */
#define LIVE_THREAD_TICK_MS 1000
/* epoll events taken per wake-up */
#define LIVE_THREAD_EVENTS 256

static struct
{
	pthread_mutex_t mu;
	struct live_conn *pending; /* handed over, not adopted yet */
	struct live_conn *ready;   /* changes queued in the hub */
	struct live_snap *snaps_done;
	int ep, wake_fd;
	pthread_t thread;
	bool started;
	atomic_int stop;
	int db_timeout_ms;
	struct live_conn *conns;		/* the table: every adopted connection not closed yet */
	atomic_uint_fast64_t nws, nsse; /* open connections of each kind */
} lt = {.mu = PTHREAD_MUTEX_INITIALIZER, .ep = -1, .wake_fd = -1};

uint64_t
http_live_ws_count(void)
{
	return atomic_load(&lt.nws);
}

uint64_t
http_live_thread_sse_count(void)
{
	return atomic_load(&lt.nsse);
}

int
live_thread_db_timeout_ms(void)
{
	return lt.db_timeout_ms;
}

static void
wake_thread(void)
{
	uint64_t one = 1;

	if (write(lt.wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("eventfd: %s", strerror(errno));
}

void
live_thread_wake_conn(void *arg)
{
	struct live_conn *c = arg;
	bool first;

	pthread_mutex_lock(&lt.mu);
	first = !c->queued;
	if (first)
	{
		c->queued = true;
		c->ready_next = lt.ready;
		lt.ready = c;
	}
	pthread_mutex_unlock(&lt.mu);
	if (first)
		wake_thread();
}

/*
 * Put c on `pending` (during a stop: -1, c not taken) or sn on `snaps_done`,
 * and wake the thread.  Any thread.
 */
static int
hand_over(struct live_conn *c, struct live_snap *sn)
{
	int rc = 0;

	pthread_mutex_lock(&lt.mu);
	if (c && atomic_load(&lt.stop))
		rc = -1;
	else if (c)
	{
		c->next = lt.pending;
		lt.pending = c;
	}
	else
	{
		sn->next = lt.snaps_done;
		lt.snaps_done = sn;
	}
	pthread_mutex_unlock(&lt.mu);
	if (rc == 0)
		wake_thread();
	return rc;
}

void
live_thread_enqueue(struct live_conn *c)
{
	if (hand_over(c, NULL) != 0)
		live_conn_free(c); /* the role is stopping */
}

void
live_thread_post_snap(struct live_snap *sn)
{
	hand_over(NULL, sn);
}

/* ---------------------------------------------------------------- the table -- */

int
live_thread_add(struct live_conn *c)
{
	struct epoll_event ev = {.events = (uint32_t) c->events, .data.ptr = c};

	if (epoll_ctl(lt.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		return -1;
	c->prev = NULL;
	c->next = lt.conns;
	if (lt.conns)
		lt.conns->prev = c;
	lt.conns = c;
	atomic_fetch_add(c->is_sse ? &lt.nsse : &lt.nws, 1);
	return 0;
}

void
live_thread_watch(struct live_conn *c, short events)
{
	struct epoll_event ev = {.events = (uint32_t) events, .data.ptr = c};

	if (events != c->events && epoll_ctl(lt.ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

void
live_thread_remove(struct live_conn *c)
{
	pthread_mutex_lock(&lt.mu);
	if (c->queued)
		for (struct live_conn **pp = &lt.ready; *pp; pp = &(*pp)->ready_next)
			if (*pp == c)
			{
				*pp = c->ready_next;
				break;
			}
	c->queued = false;
	pthread_mutex_unlock(&lt.mu);
	epoll_ctl(lt.ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->prev)
		c->prev->next = c->next;
	else
		lt.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub(c->is_sse ? &lt.nsse : &lt.nws, 1);
}

/* ----------------------------------------------------------------- the loop -- */

/* Finished snapshot reads: sent, then their connection freed if it closed meanwhile, else run. */
static void
finish_snaps(struct live_snap *done, int64_t now)
{
	for (struct live_snap *sn = done, *nx; sn; sn = nx)
	{
		struct live_conn *c = sn->c;

		nx = sn->next;
		live_snap_finish(sn);
		if (c->closing && c->snaps == 0)
			live_conn_free(c);
		else if (!c->closing)
			live_conn_io(c, 0, now);
	}
}

/* Everything other threads handed over: new connections, finished reads, ready connections. */
static void
take_handovers(int64_t now)
{
	struct live_conn *pend, *ready;
	struct live_snap *done;
	uint64_t v;

	if (read(lt.wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&lt.mu);
	pend = lt.pending;
	done = lt.snaps_done;
	lt.pending = NULL;
	lt.snaps_done = NULL;
	pthread_mutex_unlock(&lt.mu);
	for (struct live_conn *c = pend, *nx; c; c = nx)
	{
		nx = c->next;
		live_conn_adopt(c, now);
	}
	finish_snaps(done, now);
	for (;;)
	{
		pthread_mutex_lock(&lt.mu);
		if ((ready = lt.ready) != NULL)
		{
			lt.ready = ready->ready_next;
			ready->queued = false;
		}
		pthread_mutex_unlock(&lt.mu);
		if (!ready)
			break;
		live_conn_pump(ready);
		live_conn_io(ready, 0, now);
	}
}

static void *
thread_main(void *arg)
{
	struct epoll_event ev[LIVE_THREAD_EVENTS];
	int64_t next_tick = clock_now_ms() + LIVE_THREAD_TICK_MS;

	(void) arg;
	log_set_role("http");
	while (!atomic_load(&lt.stop))
	{
		int n = epoll_wait(lt.ep, ev, LIVE_THREAD_EVENTS, LIVE_THREAD_TICK_MS);
		int64_t now = clock_now_ms();

		for (int i = 0; i < n; i++)
			if (ev[i].data.ptr != &lt.wake_fd)
				live_conn_io(ev[i].data.ptr, (short) ev[i].events, now);
		take_handovers(now);
		if (now >= next_tick)
		{
			for (struct live_conn *c = lt.conns, *nx; c; c = nx)
			{
				nx = c->next;
				live_conn_io(c, 0, now);
			}
			next_tick = now + LIVE_THREAD_TICK_MS;
		}
	}
	return NULL;
}

/* ----------------------------------------------------------- start / stop -- */

int
http_live_thread_start(int db_timeout_ms)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lt.wake_fd};

	lt.db_timeout_ms = db_timeout_ms;
	atomic_store(&lt.stop, 0);
	lt.ep = epoll_create1(EPOLL_CLOEXEC);
	if (lt.wake_fd < 0) /* kept open for good: other threads may still write to it */
		lt.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (lt.ep < 0 || lt.wake_fd < 0 || epoll_ctl(lt.ep, EPOLL_CTL_ADD, lt.wake_fd, &ev) != 0 ||
		pthread_create(&lt.thread, NULL, thread_main, NULL) != 0)
	{
		log_error("cannot start the live thread: %s", strerror(errno));
		http_live_thread_stop();
		return -1;
	}
	lt.started = true;
	return 0;
}

/*
 * Stop the thread and close every connection (1001 is not sent: the role is
 * going away).  The database pool is drained by now: a snapshot read asked
 * for a connection adopted here fails at once (dbpool_submit while not
 * accepting), so the last take_handovers() finds it and frees both.
 */
void
http_live_thread_stop(void)
{
	pthread_mutex_lock(&lt.mu);
	atomic_store(&lt.stop, 1); /* under lt.mu: nothing is put on `pending` after it */
	pthread_mutex_unlock(&lt.mu);
	if (lt.started)
	{
		wake_thread();
		pthread_join(lt.thread, NULL);
		lt.started = false;
		take_handovers(clock_now_ms());
		while (lt.conns)
			live_conn_close(lt.conns);
		take_handovers(clock_now_ms());
	}
	if (lt.ep >= 0)
		close(lt.ep);
	lt.ep = -1;
}
