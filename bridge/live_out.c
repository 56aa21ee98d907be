/*
 * live_out.c — a live connection's pending output (live_out.h).
 *
 * Rules: one owning thread, no locks (live_out.h).  Memory: one buffer,
 * grown by doubling from LIVE_OUT_MIN, compacted before growing, freed when
 * drained.  The callers bound it (LIVE_WS_MAX_QUEUED, LIVE_SSE_MAX_QUEUED).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "live_out.h"

size_t
live_out_pending(const struct live_out *o)
{
	return o->len - o->off;
}

void
live_out_free(struct live_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

int
live_out_append(struct live_out *o, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (o->off > 0 && o->len + n > o->cap)
	{
		memmove(o->buf, o->buf + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
	if (o->len + n > o->cap)
	{
		size_t cap = o->cap ? o->cap : LIVE_OUT_MIN;
		char *b;

		while (cap < o->len + n)
			cap *= 2;
		if (!(b = realloc(o->buf, cap)))
			return -1;
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

long
live_out_flush(struct live_out *o, int fd)
{
	long total = 0;

	while (o->off < o->len)
	{
		ssize_t n = send(fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return -1;
		o->off += (size_t) n;
		total += n;
	}
	if (o->off == o->len)
		live_out_free(o);
	return total;
}
