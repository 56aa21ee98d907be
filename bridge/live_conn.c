/*
 * live_conn.c — one connection of the live thread (docs/live.md "WebSocket",
 * "Server-Sent Events", "Capacity"): how it arrives (libmicrohttpd's upgrade,
 * or the door's socket), its set-up (socket options, a live_ws framed by
 * wslay or a live_sse, one hub subscriber), its I/O step, the messages it
 * sends (changes moved from the hub, errors) and reads (a WebSocket's
 * subscribe / unsubscribe), and its close.  The thread's loop and table are
 * live_thread.c's, snapshots live_snap.c's.
 *
 * A WebSocket's subscribe is checked and applied by the hub (all or nothing),
 * then its snapshot is sent (live_snap.c).  A stream is subscribed to its
 * keys when adopted (a JSON 503 when the hub has no room), then its 200 head
 * goes out with its snapshot.  Changes are moved from the hub when the hub's
 * wake callback marks the connection ready, never before its snapshot; a
 * stream takes them only while its output is short (LIVE_SSE_PULL_BYTES), so
 * a client that stops reading fills its hub queue.  A subscriber the hub
 * drops as slow, or a WebSocket whose output passes LIVE_WS_MAX_QUEUED, is
 * closed with 1008; a stream just ends.
 *
 * Rules: the entry points http_live_ws_upgraded(), http_live_ws_adopt() and
 * http_live_sse_adopt() run on libmicrohttpd's threads or the door's: they
 * only allocate the struct and hand it to live_thread_enqueue().  Everything
 * else runs on the live thread (live_thread_int.h).  An upgraded socket is
 * closed by libmicrohttpd (MHD_UPGRADE_ACTION_CLOSE), one from the door here
 * (then http_door_release()).  Memory: per connection its struct, its
 * live_ws or live_sse (each small while idle), a stream's head and keys
 * until its snapshot is written, libmicrohttpd's extra bytes until live_ws_new.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_door.h"
#include "http_live_int.h"
#include "http_loop.h"
#include "http_stream.h"
#include "live_thread_int.h"
#include "log.h"

void
live_conn_free(struct live_conn *c)
{
	free(c->extra);
	free(c->head);
	live_client_msg_free(&c->keys);
	live_ws_free(c->ws);
	live_sse_free(c->sse);
	if (c->urh)
	{
		MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
		http_loop_wake_all(); /* its thread cleans the connection up (http_loop.h) */
	}
	else
	{
		close(c->fd);
		http_door_release();
	}
	free(c);
}

/* ------------------------------------------------------------ arrivals -- */

void
http_live_ws_upgraded(void *cls, struct MHD_Connection *connection, void *req_cls, const char *extra_in,
					  size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct live_conn *c = calloc(1, sizeof(*c));

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
	live_thread_enqueue(c);
}

int
http_live_ws_adopt(int fd)
{
	struct live_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	c->fd = fd;
	live_thread_enqueue(c);
	return 0;
}

int
http_live_sse_adopt(int fd, struct route *rt, const char *cors)
{
	struct live_conn *c = calloc(1, sizeof(*c));

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
	live_thread_enqueue(c);
	return 0;
}

/* ---------------------------------------------------------------- sending -- */

void
live_conn_send_text(struct live_conn *c, char *msg)
{
	if (msg && c->ws)
		live_ws_send(c->ws, msg, strlen(msg));
	else if (msg && c->sse && live_sse_send(c->sse, msg, strlen(msg)) != 0)
		c->failed = true;
	free(msg);
}

/* One event's data text in the connection's framing. */
static char *
wrap_data(struct live_conn *c, const char *data)
{
	return c->is_sse ? live_sse_frame(data) : live_ws_event_msg(data);
}

void
live_conn_send_error(struct live_conn *c, int status, const char *message)
{
	if (c->is_sse)
		c->failed = true;
	else
		live_conn_send_text(c, live_ws_error_msg(status, message));
}

void
live_conn_send_count(struct live_conn *c, const struct live_count *k)
{
	char *data = live_event_data_json(k);

	live_conn_send_text(c, data ? wrap_data(c, data) : NULL);
	free(data);
}

void
live_conn_pump(struct live_conn *c)
{
	char *data;
	int rc = 0;

	if (c->snaps > 0 || c->closing || c->failed)
		return; /* the snapshot first; live_snap_finish() pumps */
	/* a stream takes changes while its output is short (live_conn_io pumps again as it drains) */
	while ((!c->sse || live_sse_pending(c->sse) < LIVE_SSE_PULL_BYTES) &&
		   (rc = live_hub_next(http_live_hub(), c->sub, &data)) == 1)
	{
		live_conn_send_text(c, wrap_data(c, data));
		free(data);
	}
	if (rc < 0 && c->ws)
		live_ws_close(c->ws, LIVE_WS_CLOSE_POLICY, "too slow: dropped");
	else if (rc < 0)
		c->failed = true; /* a stream just ends */
}

/* -------------------------------------------------------------- reading -- */

/* A WebSocket client's message (inside live_ws_io): subscribe / unsubscribe, or an error event. */
static void
on_text(struct live_ws *lws, const char *msg, size_t len, void *arg)
{
	struct live_conn *c = arg;
	struct live_client_msg m;
	char err[256];

	(void) lws;
	if (live_client_parse(msg, len, &m, err, sizeof(err)) < 0)
	{
		live_conn_send_error(c, 400, err);
		return;
	}
	if (m.op == LIVE_UNSUBSCRIBE)
		live_hub_unsubscribe(http_live_hub(), c->sub, m.content_type, m.ids, m.nids);
	else if (live_hub_subscribe(http_live_hub(), c->sub, m.content_type, m.ids, m.nids, err, sizeof(err)) < 0)
		live_conn_send_error(c, 400, err);
	else
		live_snap_start(c, &m);
	live_client_msg_free(&m);
}

/* ------------------------------------------------------------ life cycle -- */

void
live_conn_close(struct live_conn *c)
{
	if (c->sub)
		live_hub_detach(http_live_hub(), c->sub);
	c->sub = NULL;
	live_thread_remove(c);
	c->closing = true;
	if (c->snaps == 0)
		live_conn_free(c);
}

void
live_conn_io(struct live_conn *c, short revents, int64_t now)
{
	short want = 0;

	if (c->failed)
		want = 0;
	else if (c->sse)
	{
		live_conn_pump(c); /* what the hub kept while the output was long (nothing before the snapshot) */
		want = c->failed || live_sse_io(c->sse, revents, now) < 0 ? 0 : live_sse_events(c->sse);
	}
	else if (live_ws_io(c->ws, revents, now) == 0)
		want = live_ws_events(c->ws);
	if (want == 0)
		live_conn_close(c);
	else
		live_thread_watch(c, want);
}

/* A stream's subscription: 0, or -1 with the JSON 503 written (no room for it). */
static int
adopt_stream(struct live_conn *c)
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

void
live_conn_adopt(struct live_conn *c, int64_t now)
{
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
		c->sub = live_hub_attach(http_live_hub(), live_thread_wake_conn, c);
	c->events = c->ws ? live_ws_events(c->ws) : c->sse ? live_sse_events(c->sse) : 0;
	bad = !c->ws && !c->sse;
	if (!bad && (c->is_sse ? adopt_stream(c) != 0 : !c->sub))
	{
		bad = 1;
		log_warn("no room for another live subscriber: connection closed");
	}
	if (bad || live_thread_add(c) != 0)
	{
		if (c->sub)
			live_hub_detach(http_live_hub(), c->sub);
		live_conn_free(c);
		return;
	}
	if (c->is_sse)
	{
		live_snap_start(c, &c->keys); /* takes the keys when it reads the database */
		live_client_msg_free(&c->keys);
	}
	live_conn_io(c, 0, now); /* the bytes libmicrohttpd read already; a stream's snapshot */
}
