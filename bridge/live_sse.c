/*
 * live_sse.c — one Server-Sent Events stream the bridge serves itself
 * (live_sse.h; docs/live.md "Server-Sent Events").
 *
 * Rules: one owning thread, no locks; the socket is the caller's.  Memory:
 * the struct and its live_out (freed when drained): an idle stream costs
 * its struct.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "live_event.h"
#include "live_out.h"
#include "live_sse.h"

/* Bytes read (and dropped) per recv() from a stream's client */
#define LIVE_SSE_SINK 512

struct live_sse
{
	int fd;
	struct live_out out;
	int64_t last_write_ms; /* the last time the socket took bytes (or the stream began) */
	bool begun;			   /* something was queued: heartbeats may follow (never before the head) */
};

struct live_sse *
live_sse_new(int fd, int64_t now_ms)
{
	struct live_sse *s = calloc(1, sizeof(*s));
	int fl = fcntl(fd, F_GETFL);

	if (!s)
		return NULL;
	s->fd = fd;
	s->last_write_ms = now_ms;
	if (fl >= 0)
		(void) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return s;
}

void
live_sse_free(struct live_sse *s)
{
	if (!s)
		return;
	live_out_free(&s->out);
	free(s);
}

short
live_sse_events(struct live_sse *s)
{
	return (short) (POLLIN | (live_out_pending(&s->out) > 0 ? POLLOUT : 0));
}

size_t
live_sse_pending(const struct live_sse *s)
{
	return live_out_pending(&s->out);
}

int
live_sse_send(struct live_sse *s, const char *text, size_t len)
{
	if (live_out_pending(&s->out) + len > LIVE_SSE_MAX_QUEUED)
		return -1;
	s->begun = true;
	return live_out_append(&s->out, text, len);
}

/* Read and drop what the client sends: -1 once it has closed (or the socket broke). */
static int
drain_input(struct live_sse *s)
{
	char sink[LIVE_SSE_SINK];
	ssize_t n;

	while ((n = recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		;
	return (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) ? -1 : 0;
}

int
live_sse_io(struct live_sse *s, short revents, int64_t now_ms)
{
	long n;

	if ((revents & (POLLIN | POLLHUP | POLLERR)) && drain_input(s) < 0)
		return -1;
	if (s->begun && live_out_pending(&s->out) == 0 && now_ms - s->last_write_ms >= LIVE_SSE_HEARTBEAT_MS &&
		live_out_append(&s->out, LIVE_SSE_HEARTBEAT, strlen(LIVE_SSE_HEARTBEAT)) != 0)
		return -1;
	if (live_out_pending(&s->out) == 0)
		return 0;
	if ((n = live_out_flush(&s->out, s->fd)) < 0)
		return -1;
	if (n > 0)
		s->last_write_ms = now_ms;
	return live_out_pending(&s->out) > 0 && now_ms - s->last_write_ms > LIVE_SSE_STALL_MS ? -1 : 0;
}
