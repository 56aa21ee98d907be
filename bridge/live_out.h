/*
 * live_out.h — the bytes a live connection (a WebSocket, live_ws.c, or a
 * Server-Sent Events stream, live_sse.c) still has to write to its socket
 * (docs/live.md "Capacity").
 *
 * Rules: owned and driven by the one thread that owns the socket; nothing
 * here locks.  Memory: the buffer is allocated when bytes are appended and
 * freed as soon as the socket has taken them all, so an idle connection
 * costs nothing here.
 */
#ifndef SC_LIVE_OUT_H
#define SC_LIVE_OUT_H

#include <stddef.h>

/* The first allocation of a connection's output (most events are one small frame) */
#define LIVE_OUT_MIN 512

struct live_out
{
	char *buf; /* NULL while empty */
	size_t off, len, cap;
};

/* Append n bytes: 0, or -1 out of memory (nothing appended). */
int live_out_append(struct live_out *o, const void *p, size_t n);

/* Bytes not written yet. */
size_t live_out_pending(const struct live_out *o);

/*
 * Write what the non-blocking socket fd takes now; the buffer is freed once
 * empty.  Returns the bytes written (0: none, the socket is full or nothing
 * was pending), or -1 when the socket is broken.
 */
long live_out_flush(struct live_out *o, int fd);

void live_out_free(struct live_out *o);

#endif
