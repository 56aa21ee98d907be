/*
 * live_thread_int.h — private to the live thread's three files
 * (docs/live.md "WebSocket", "Capacity"): live_thread.c (the thread: its
 * epoll loop, the connection table, what other threads hand over),
 * live_conn.c (one connection: its set-up, I/O, messages in and out, close)
 * and live_snap.c (a subscribe's snapshot, read through the database pool).
 * Their entry points for the rest of the http role are in http_live_int.h.
 *
 * Rules (threads): everything here runs on the live thread, except
 * live_thread_enqueue() (any thread: libmicrohttpd's upgrade callback, the
 * door), live_thread_wake_conn() (the hub's wake callback, under the hub's
 * mutex) and live_thread_post_snap() (a database worker).  Those three only
 * put something on a list under the thread's mutex (lt.mu in live_thread.c)
 * and write to its eventfd.  Lock order: the hub's mutex, then lt.mu.
 *
 * Rules (memory): a struct live_conn is allocated by live_conn.c's entry
 * points, owned by the live thread from live_thread_enqueue() on, and freed
 * only by live_conn_free() on the live thread: after live_hub_detach() (no
 * wake after it), off the ready list, and with no snapshot read in flight
 * (`closing` waits for `snaps` to reach 0).  A struct live_snap is owned by
 * the database pool while its read runs, then by the live thread, which frees
 * it in live_snap_finish().
 */
#ifndef SC_LIVE_THREAD_INT_H
#define SC_LIVE_THREAD_INT_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbpool.h"
#include "live_event.h"
#include "live_hub.h"
#include "live_sse.h"
#include "live_ws.h"

/* One connection of the live thread: a WebSocket (live_ws) or a stream the bridge serves itself (live_sse). */
struct live_conn
{
	struct live_conn *prev, *next; /* the connection table (the live thread's); `next` also links lt.pending */
	struct live_conn *ready_next;  /* lt.ready, under lt.mu */
	bool queued;				   /* on lt.ready, under lt.mu */
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
struct live_snap
{
	struct dbpool_job job;
	struct live_conn *c;
	struct live_client_msg m;
	struct live_snap *next; /* lt.snaps_done */
};

/* ---------------------------------------------------- live_thread.c -- */

/* Hand a new connection to the thread (any thread); while stopping it is freed at once. */
void live_thread_enqueue(struct live_conn *c);
/* The hub's wake callback (arg: the connection): queue it for live_conn_pump(). */
void live_thread_wake_conn(void *arg);
/* A finished snapshot read (a database worker): hand it back to the thread. */
void live_thread_post_snap(struct live_snap *sn);
/* Add an adopted connection to the table and the epoll set (c->events): 0, or -1 (not added). */
int live_thread_add(struct live_conn *c);
/* Make epoll watch c for events (kept in c->events when it worked). */
void live_thread_watch(struct live_conn *c, short events);
/* Take c out of the table, the epoll set and the ready list (the hub has detached it). */
void live_thread_remove(struct live_conn *c);
/* http_db_timeout_ms: a snapshot read's deadline. */
int live_thread_db_timeout_ms(void);

/* ------------------------------------------------------ live_conn.c -- */

/* Set up a connection the thread took over (socket options, its live_ws or live_sse, its hub subscriber). */
void live_conn_adopt(struct live_conn *c, int64_t now);
/* Run the connection's I/O and timers; keep epoll's interest in step; close it when done. */
void live_conn_io(struct live_conn *c, short revents, int64_t now);
/* Hub -> the connection: every queued change (not before its snapshot); a dropped subscriber is closed. */
void live_conn_pump(struct live_conn *c);
/* The connection is done: unsubscribe, unlink; freed now or when its last snapshot read returns. */
void live_conn_close(struct live_conn *c);
/* Free c and close (or give back to libmicrohttpd) its socket. */
void live_conn_free(struct live_conn *c);
/* Queue msg (taken over; NULL: out of memory, nothing sent).  A stream too slow to take it ends. */
void live_conn_send_text(struct live_conn *c, char *msg);
/* An error event (a stream has none: it ends). */
void live_conn_send_error(struct live_conn *c, int status, const char *message);
/* One count in the connection's framing (a WebSocket message or an SSE frame). */
void live_conn_send_count(struct live_conn *c, const struct live_count *k);

/* ------------------------------------------------------ live_snap.c -- */

/*
 * A subscribe to m's keys is applied: send its snapshot now if the hub knows
 * every key, else read the database (m's ids are then taken over).
 */
void live_snap_start(struct live_conn *c, struct live_client_msg *m);
/* A read came back (on the live thread): send the snapshot or the error, pump the changes, free sn. */
void live_snap_finish(struct live_snap *sn);

#endif
