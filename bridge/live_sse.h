/*
 * live_sse.h — one Server-Sent Events stream on a socket the bridge serves
 * itself (docs/live.md "Server-Sent Events", "Capacity"): text out, a
 * heartbeat comment when quiet, a bound on output not yet written, and the
 * client's end noticed (what it sends is read and dropped).
 *
 * Rules: driven by the one thread that owns the socket (the live thread's: live_conn.c);
 * nothing here locks; the socket is never closed here.  Memory: the struct
 * and the output not yet written (live_out.c: freed when drained).
 */
#ifndef SC_LIVE_SSE_H
#define SC_LIVE_SSE_H

#include <stddef.h>
#include <stdint.h>

/* A stream silent this long gets the heartbeat comment (docs/live.md "Server-Sent Events") */
#define LIVE_SSE_HEARTBEAT_MS 15000
/*
 * Output not yet written for one stream; over it the client is too slow and
 * the stream ends (as a WebSocket's LIVE_WS_MAX_QUEUED: a snapshot of 1,000
 * keys is ~150 KiB).
 */
#define LIVE_SSE_MAX_QUEUED (512 * 1024)
/*
 * Output pending above which the live thread leaves a stream's changes in its
 * hub queue: a client that stops reading then fills that queue and is dropped
 * there (LIVE_SUB_QUEUE_BYTES, sharecount_live_subscribers_dropped_total).
 */
#define LIVE_SSE_PULL_BYTES (16 * 1024)
/* Output pending with no byte taken by the socket for this long: the client is gone, the stream ends */
#define LIVE_SSE_STALL_MS 60000

struct live_sse;

/* A stream on the non-blocking socket fd (made non-blocking here); NULL out of memory. */
struct live_sse *live_sse_new(int fd, int64_t now_ms);
void live_sse_free(struct live_sse *s);

/* The poll(2) events to wait for: POLLIN, and POLLOUT while output is pending. */
short live_sse_events(struct live_sse *s);

/* Bytes queued and not yet written. */
size_t live_sse_pending(const struct live_sse *s);

/* Queue bytes: 0; -1 out of memory or over LIVE_SSE_MAX_QUEUED (the stream must end). */
int live_sse_send(struct live_sse *s, const char *text, size_t len);

/*
 * After poll: read and drop what the client sent, write what the socket
 * takes, send the heartbeat when due (once something was sent: never before
 * the caller's first bytes, the response head; now in ms of a monotonic clock).
 * 0 while the stream lives; -1 when it is over (the client closed, the socket
 * broke, or the output stalled for LIVE_SSE_STALL_MS).
 */
int live_sse_io(struct live_sse *s, short revents, int64_t now_ms);

#endif
