/*
 * live_ws.c — one WebSocket connection driven by wslay (docs/live.md).
 *
 * Rules: see live_ws.h (one owning thread, no locks, the socket is never
 * closed here).  wslay does all framing: masking, fragments, control frames
 * (it answers pings and close frames by itself), the size limit (it closes
 * with 1009 itself).  We give it a recv callback over the non-blocking socket
 * (EAGAIN -> WSLAY_ERR_WOULDBLOCK), reject binary messages (1003), bound
 * queued output, and keep three timers: ping when quiet, close when idle,
 * give up on a close that the client does not answer.
 *
 * Memory (docs/live.md "Capacity"): wslay's event context (8.8 KiB: two
 * 4 KiB input buffers) exists only while the client is sending.  It is made
 * when the socket is readable and freed again as soon as it is back in its
 * initial state: every byte read has been consumed by whole frames (counted
 * with wslay's frame start / end callbacks: header length from the payload
 * length, client frames masked), no fragmented message is half received,
 * nothing is queued and no close was queued, sent or received.  Every byte
 * we send — our messages and pings, framed by wslay's frame layer
 * (wslay_frame_send, one shared context), and whatever the event context
 * queues (pongs, close frames) — goes through one output buffer (live_out.c,
 * freed when drained), so frames never interleave.  An idle connection costs
 * its struct.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <wslay/wslay.h>

#include "live_out.h"
#include "live_ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define WS_KEY_BYTES 16								   /* Sec-WebSocket-Key decodes to 16 bytes */

/* Header bytes of a client frame: 2, the extended length (0, 2 or 8), the 4-byte mask (RFC 6455 §5.2) */
#define WS_HDR_MIN 2
#define WS_HDR_MASK 4
#define WS_LEN16_MIN 126
#define WS_LEN64_MIN 65536

struct live_ws
{
	int fd;
	wslay_event_context_ptr ctx; /* NULL while the client is not sending (see the file's header) */
	struct live_out out;		 /* every byte not yet written, frames whole */
	uint64_t fed, consumed;		 /* bytes given to wslay; bytes of whole frames it has read */
	uint64_t frame_len;			 /* payload length of the frame being read */
	bool fragmented;			 /* a data message's first frame came without fin */
	live_ws_text_fn on_text;
	void *arg;
	char *extra; /* MHD's already-read bytes, fed before the socket */
	size_t extra_len, extra_off;
	bool eof;					  /* the peer closed or the socket broke */
	bool lingering;				  /* our close is sent: shut our side, drain theirs */
	int64_t last_rx_ms,			  /* last time anything arrived */
		last_ping_ms, closing_ms; /* when we queued our close, 0 if not */
};

bool
live_ws_has_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = value; p && *p; p++)
		if (strncasecmp(p, token, n) == 0 && (p == value || p[-1] == ' ' || p[-1] == ',') &&
			(p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
	return false;
}

int
live_ws_accept_key(const char *key, char out[LIVE_WS_ACCEPT_LEN])
{
	struct base64_decode_ctx b64;
	uint8_t raw[BASE64_DECODE_LENGTH(24)], digest[SHA1_DIGEST_SIZE];
	size_t n = sizeof(raw), klen = key ? strlen(key) : 0;
	struct sha1_ctx sha;

	base64_decode_init(&b64);
	if (klen != 24 || !base64_decode_update(&b64, &n, raw, klen, key) || !base64_decode_final(&b64) ||
		n != WS_KEY_BYTES)
		return -1;
	sha1_init(&sha);
	sha1_update(&sha, klen, (const uint8_t *) key);
	sha1_update(&sha, strlen(WS_GUID), (const uint8_t *) WS_GUID);
	sha1_digest(&sha, SHA1_DIGEST_SIZE, digest);
	base64_encode_raw(out, SHA1_DIGEST_SIZE, digest);
	out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
	return 0;
}

/* Bytes of a masked client frame with this payload length. */
static uint64_t
frame_bytes(uint64_t payload)
{
	return WS_HDR_MIN + WS_HDR_MASK + (payload < WS_LEN16_MIN ? 0 : payload < WS_LEN64_MIN ? 2 : 8) + payload;
}

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct live_ws *ws = user;
	ssize_t n;

	(void) flags;
	if (ws->extra_off < ws->extra_len)
	{
		n = (ssize_t) (ws->extra_len - ws->extra_off < len ? ws->extra_len - ws->extra_off : len);
		memcpy(buf, ws->extra + ws->extra_off, n);
		ws->extra_off += n;
		ws->fed += (uint64_t) n;
		return n;
	}
	if (len > LIVE_WS_READ_CHUNK)
		len = LIVE_WS_READ_CHUNK;
	while ((n = recv(ws->fd, buf, len, 0)) < 0 && errno == EINTR)
		;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else if (n <= 0)
	{
		ws->eof = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	if (n > 0)
		ws->fed += (uint64_t) n;
	return n > 0 ? n : -1;
}

/* The event context's frames (pongs, close) join our output buffer: it always takes everything. */
static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	struct live_ws *ws = user;

	(void) flags;
	if (live_out_append(&ws->out, data, len) == 0)
		return (ssize_t) len;
	ws->eof = true;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static void
on_frame_start(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *a, void *user)
{
	struct live_ws *ws = user;

	(void) ctx;
	ws->frame_len = a->payload_length;
	if (!(a->opcode & 0x8)) /* a data frame (text, binary, continuation); control frames are never fragmented */
		ws->fragmented = !a->fin;
}

static void
on_frame_end(wslay_event_context_ptr ctx, void *user)
{
	struct live_ws *ws = user;

	(void) ctx;
	ws->consumed += frame_bytes(ws->frame_len);
}

static void
on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m, void *user)
{
	struct live_ws *ws = user;

	(void) ctx;
	if (m->opcode == WSLAY_TEXT_FRAME && ws->closing_ms == 0)
		ws->on_text(ws, (const char *) m->msg, m->msg_length, ws->arg);
	else if (m->opcode == WSLAY_BINARY_FRAME)
		live_ws_close(ws, LIVE_WS_CLOSE_UNSUPPORTED, "text messages only");
}

/* The event context, made now if the connection has none: 0, or -1 out of memory. */
static int
ctx_get(struct live_ws *ws)
{
	static const struct wslay_event_callbacks cbs = {recv_cb, send_cb,		NULL,  on_frame_start,
													 NULL,	  on_frame_end, on_msg};

	if (ws->ctx)
		return 0;
	if (wslay_event_context_server_init(&ws->ctx, &cbs, ws) != 0)
	{
		ws->ctx = NULL;
		return -1;
	}
	wslay_event_config_set_max_recv_msg_length(ws->ctx, LIVE_WS_MAX_MESSAGE);
	return 0;
}

/* Free the event context once it is back in its initial state (see the file's header). */
static void
ctx_release(struct live_ws *ws)
{
	if (!ws->ctx || ws->closing_ms != 0 || ws->fed != ws->consumed || ws->fragmented || ws->extra_off < ws->extra_len ||
		wslay_event_want_write(ws->ctx) || !wslay_event_get_read_enabled(ws->ctx) ||
		wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx))
		return;
	wslay_event_context_free(ws->ctx);
	ws->ctx = NULL;
}

/* ---------------------------------------------------------------- framing -- */

static struct
{
	pthread_mutex_t mu;
	wslay_frame_context_ptr ctx; /* made once, kept for the process's life */
	struct live_out *to;		 /* where the frame being made goes */
	int failed;
} enc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static ssize_t
enc_send(const uint8_t *data, size_t len, int flags, void *user)
{
	(void) flags, (void) user;
	if (live_out_append(enc.to, data, len) == 0)
		return (ssize_t) len;
	enc.failed = 1;
	return -1;
}

static ssize_t
enc_recv(uint8_t *buf, size_t len, int flags, void *user)
{
	(void) buf, (void) len, (void) flags, (void) user;
	return -1; /* the encoder never reads */
}

/* One whole unmasked frame of ours (text or ping) onto ws->out: 0, or -1 out of memory. */
static int
frame_out(struct live_ws *ws, uint8_t opcode, const char *payload, size_t len)
{
	static const struct wslay_frame_callbacks cbs = {enc_send, enc_recv, NULL};
	struct wslay_frame_iocb io = {1, 0, opcode, len, 0, (const uint8_t *) payload, len};
	size_t before = live_out_pending(&ws->out);
	int rc = 0;

	pthread_mutex_lock(&enc.mu);
	if (!enc.ctx && wslay_frame_context_init(&enc.ctx, &cbs, NULL) != 0)
		enc.ctx = NULL;
	enc.to = &ws->out;
	enc.failed = 0;
	/* the send callback takes everything, so one call writes the whole frame and the context is idle again */
	if (!enc.ctx || wslay_frame_send(enc.ctx, &io) != (ssize_t) len || enc.failed)
		rc = -1;
	pthread_mutex_unlock(&enc.mu);
	if (rc < 0 && live_out_pending(&ws->out) != before)
		ws->eof = true; /* half a frame is out: the stream is broken */
	return rc;
}

/* --------------------------------------------------------------- the API -- */

struct live_ws *
live_ws_new(int fd, const char *extra, size_t extra_len, live_ws_text_fn on_text, void *arg)
{
	struct live_ws *ws = calloc(1, sizeof(*ws));
	int fl = fcntl(fd, F_GETFL);

	if (ws == NULL)
		return NULL;
	ws->fd = fd;
	ws->on_text = on_text;
	ws->arg = arg;
	if (extra_len > 0 && (ws->extra = malloc(extra_len)) != NULL)
	{
		memcpy(ws->extra, extra, extra_len);
		ws->extra_len = extra_len;
	}
	if (extra_len > 0 && ws->extra == NULL)
	{
		free(ws);
		return NULL;
	}
	if (fl >= 0)
		(void) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return ws;
}

void
live_ws_free(struct live_ws *ws)
{
	if (ws == NULL)
		return;
	wslay_event_context_free(ws->ctx);
	live_out_free(&ws->out);
	free(ws->extra);
	free(ws);
}

/* Our close is queued or sent (by us, or by wslay on its own). */
static bool
closing(const struct live_ws *ws)
{
	return ws->closing_ms != 0 || (ws->ctx && wslay_event_get_close_sent(ws->ctx));
}

short
live_ws_events(struct live_ws *ws)
{
	bool rd = !ws->ctx || wslay_event_want_read(ws->ctx) || wslay_event_get_close_sent(ws->ctx);

	/* after our close: linger() drains */
	return (short) ((rd ? POLLIN : 0) |
					(live_out_pending(&ws->out) > 0 || (ws->ctx && wslay_event_want_write(ws->ctx)) ? POLLOUT : 0));
}

int
live_ws_send(struct live_ws *ws, const char *text, size_t len)
{
	if (closing(ws) || ws->eof)
		return -1;
	if (live_out_pending(&ws->out) + len > LIVE_WS_MAX_QUEUED)
	{
		live_ws_close(ws, LIVE_WS_CLOSE_POLICY, "too slow: output over the limit");
		return -1;
	}
	return frame_out(ws, WSLAY_TEXT_FRAME, text, len);
}

void
live_ws_close(struct live_ws *ws, uint16_t code, const char *reason)
{
	if (ctx_get(ws) != 0)
		ws->eof = true; /* out of memory: no close frame, the connection just ends */
	else if (!closing(ws))
		(void) wslay_event_queue_close(ws->ctx, code, (const uint8_t *) reason, strlen(reason));
	if (ws->closing_ms == 0)
		ws->closing_ms = -1; /* stamped with the clock by the next live_ws_io() */
}

bool
live_ws_idle(const struct live_ws *ws)
{
	return !ws->ctx && live_out_pending(&ws->out) == 0;
}

uint16_t
live_ws_close_code(struct live_ws *ws)
{
	return ws->ctx && closing(ws) ? wslay_event_get_status_code_sent(ws->ctx) : 0;
}

/* Timers: ping when quiet, close when idle, give up on an unanswered close.  -1 = done. */
static int
tick(struct live_ws *ws, int64_t now)
{
	if (ws->last_rx_ms == 0)
		ws->last_rx_ms = ws->last_ping_ms = now;
	if (ws->closing_ms == 0 && closing(ws))
		ws->closing_ms = -1; /* wslay closed by itself (1009, protocol error, answered close) */
	if (ws->closing_ms == -1)
		ws->closing_ms = now;
	if (ws->closing_ms > 0)
		return now - ws->closing_ms > LIVE_WS_CLOSE_WAIT_MS ? -1 : 0;
	if (now - ws->last_rx_ms > LIVE_WS_IDLE_MS)
		live_ws_close(ws, LIVE_WS_CLOSE_GOING_AWAY, "idle");
	else if (now - ws->last_rx_ms >= LIVE_WS_PING_MS && now - ws->last_ping_ms >= LIVE_WS_PING_MS)
	{
		(void) frame_out(ws, WSLAY_PING, NULL, 0);
		ws->last_ping_ms = now;
	}
	return 0;
}

/*
 * Our close frame is out and wslay reads no more (it stops reading after a
 * close it sent itself, e.g. 1009 while the client is still sending the
 * oversized message).  Closing the socket now, with the client's bytes unread,
 * would make the kernel send a reset that can destroy the close frame before
 * the client reads it.  So shut our sending side once and read and discard
 * until the client closes, bounded by tick()'s LIVE_WS_CLOSE_WAIT_MS.
 * 0 = keep polling, -1 = done.
 */
static int
linger(struct live_ws *ws, short revents)
{
	char sink[4096];
	ssize_t n;

	if (!ws->lingering)
	{
		(void) shutdown(ws->fd, SHUT_WR);
		ws->lingering = true;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	while ((n = recv(ws->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		;
	return (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) ? -1 : 0;
}

/* Move what the event context queued to the output buffer, and the buffer to the socket. */
static void
write_out(struct live_ws *ws)
{
	if (!ws->eof && ws->ctx && wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0)
		ws->eof = true;
	if (!ws->eof && live_out_pending(&ws->out) > 0 && live_out_flush(&ws->out, ws->fd) < 0)
		ws->eof = true;
}

int
live_ws_io(struct live_ws *ws, short revents, int64_t now_ms)
{
	if (((revents & (POLLIN | POLLHUP | POLLERR)) || ws->extra_off < ws->extra_len) && !ws->lingering)
	{
		if (ctx_get(ws) != 0 || wslay_event_recv(ws->ctx) != 0)
			ws->eof = true; /* out of memory, broken socket or a protocol violation wslay could not answer */
		else if (revents & POLLIN)
			ws->last_rx_ms = now_ms;
	}
	write_out(ws);
	if (ws->eof || tick(ws, now_ms) < 0)
		return -1;
	write_out(ws); /* tick may have queued a ping or a close */
	if (ws->eof)
		return -1;
	ctx_release(ws);
	if (!ws->ctx || wslay_event_want_read(ws->ctx) || wslay_event_want_write(ws->ctx) || live_out_pending(&ws->out) > 0)
		return 0;
	return linger(ws, revents);
}
