/*
 * live_ws.c — one WebSocket connection driven by wslay (docs/live.md).
 *
 * Rules: see live_ws.h (one owning thread, no locks, the socket is never
 * closed here).  wslay does all framing: masking, fragments, control frames
 * (it answers pings and close frames by itself), the size limit (it closes
 * with 1009 itself).  We give it recv/send callbacks over the non-blocking
 * socket (EAGAIN -> WSLAY_ERR_WOULDBLOCK), reject binary messages (1003),
 * bound queued output, and keep three timers: ping when quiet, close when
 * idle, give up on a close that the client does not answer.
 * Memory: the struct, a copy of MHD's extra bytes (freed once fed), wslay's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <wslay/wslay.h>

#include "live_ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define WS_KEY_BYTES 16								   /* Sec-WebSocket-Key decodes to 16 bytes */

struct live_ws
{
	int fd;
	wslay_event_context_ptr ctx;
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
	return n > 0 ? n : -1;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	struct live_ws *ws = user;
	ssize_t n;

	while ((n = send(ws->fd, data, len, MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0))) < 0 &&
		   errno == EINTR)
		;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else if (n < 0)
	{
		ws->eof = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return n >= 0 ? n : -1;
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

struct live_ws *
live_ws_new(int fd, const char *extra, size_t extra_len, live_ws_text_fn on_text, void *arg)
{
	static const struct wslay_event_callbacks cbs = {recv_cb, send_cb, NULL, NULL, NULL, NULL, on_msg};
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
	if ((extra_len > 0 && ws->extra == NULL) || wslay_event_context_server_init(&ws->ctx, &cbs, ws) != 0)
	{
		free(ws->extra);
		free(ws);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(ws->ctx, LIVE_WS_MAX_MESSAGE);
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
	free(ws->extra);
	free(ws);
}

short
live_ws_events(struct live_ws *ws)
{
	return (short) ((wslay_event_want_read(ws->ctx) || wslay_event_get_close_sent(ws->ctx) ? POLLIN : 0) |
					(wslay_event_want_write(ws->ctx) ? POLLOUT : 0)); /* after our close: linger() drains */
}

int
live_ws_send(struct live_ws *ws, const char *text, size_t len)
{
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *) text, len};

	if (ws->closing_ms != 0 || wslay_event_get_close_sent(ws->ctx))
		return -1;
	if (wslay_event_get_queued_msg_length(ws->ctx) + len > LIVE_WS_MAX_QUEUED)
	{
		live_ws_close(ws, LIVE_WS_CLOSE_POLICY, "too slow: output over the limit");
		return -1;
	}
	return wslay_event_queue_msg(ws->ctx, &m) == 0 ? 0 : -1;
}

void
live_ws_close(struct live_ws *ws, uint16_t code, const char *reason)
{
	if (ws->closing_ms == 0 && !wslay_event_get_close_sent(ws->ctx))
		(void) wslay_event_queue_close(ws->ctx, code, (const uint8_t *) reason, strlen(reason));
	if (ws->closing_ms == 0)
		ws->closing_ms = -1; /* stamped with the clock by the next live_ws_io() */
}

uint16_t
live_ws_close_code(struct live_ws *ws)
{
	return wslay_event_get_close_sent(ws->ctx) || ws->closing_ms != 0 ? wslay_event_get_status_code_sent(ws->ctx) : 0;
}

/* Timers: ping when quiet, close when idle, give up on an unanswered close.  -1 = done. */
static int
tick(struct live_ws *ws, int64_t now)
{
	struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};

	if (ws->last_rx_ms == 0)
		ws->last_rx_ms = ws->last_ping_ms = now;
	if (ws->closing_ms == 0 && wslay_event_get_close_sent(ws->ctx))
		ws->closing_ms = -1; /* wslay closed by itself (1009, protocol error, answered close) */
	if (ws->closing_ms == -1)
		ws->closing_ms = now;
	if (ws->closing_ms > 0)
		return now - ws->closing_ms > LIVE_WS_CLOSE_WAIT_MS ? -1 : 0;
	if (now - ws->last_rx_ms > LIVE_WS_IDLE_MS)
		live_ws_close(ws, LIVE_WS_CLOSE_GOING_AWAY, "idle");
	else if (now - ws->last_rx_ms >= LIVE_WS_PING_MS && now - ws->last_ping_ms >= LIVE_WS_PING_MS)
	{
		(void) wslay_event_queue_msg(ws->ctx, &ping);
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

int
live_ws_io(struct live_ws *ws, short revents, int64_t now_ms)
{
	if ((revents & (POLLIN | POLLHUP | POLLERR)) || ws->extra_off < ws->extra_len)
	{
		if (wslay_event_recv(ws->ctx) != 0)
			ws->eof = true; /* broken socket or a protocol violation wslay could not answer */
		else if (revents & POLLIN)
			ws->last_rx_ms = now_ms;
	}
	if (!ws->eof && wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0)
		ws->eof = true;
	if (ws->eof || tick(ws, now_ms) < 0)
		return -1;
	/* tick may have queued a ping or a close: try to write it now */
	if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0)
		return -1;
	if (wslay_event_want_read(ws->ctx) || wslay_event_want_write(ws->ctx))
		return 0;
	return linger(ws, revents);
}
