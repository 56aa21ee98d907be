/*
 * test_live_ws.c — unit tests for bridge/live_ws.c (docs/live.md): the
 * Sec-WebSocket-Accept computation (RFC 6455's own example) and key checks,
 * and one connection over a socketpair: a masked text frame is delivered, a
 * ping is answered, a frame over LIVE_WS_MAX_MESSAGE gets close 1009, MHD's
 * extra bytes are read first; wslay's context exists only while a frame or
 * a fragmented message is half read (live_ws_idle).  The client side writes frames by hand
 * (test input, not a parser).  Plain program: exit 0 = pass.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "live_ws.h"

#include "unit.h"

static void
test_accept_key(void)
{
	char out[LIVE_WS_ACCEPT_LEN];

	CHECK(live_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out) == 0 && strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
		  "RFC 6455 example: %s", out);
	CHECK(live_ws_accept_key(NULL, out) < 0, "no key");
	CHECK(live_ws_accept_key("", out) < 0, "empty key");
	CHECK(live_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", out) < 0, "23 chars");
	CHECK(live_ws_accept_key("dGhlIHNhbXBsZSBub25jZ!==", out) < 0, "not base64");
	CHECK(live_ws_accept_key("dGhlIHNhbXBsZSBub25jZXg", out) < 0, "17 bytes, unpadded");
}

static char got[64];
static size_t got_len;
static int got_n;

static void
on_text(struct live_ws *ws, const char *msg, size_t len, void *arg)
{
	(void) arg;
	got_n++;
	got_len = len;
	memcpy(got, msg, len < sizeof(got) ? len : sizeof(got));
	live_ws_send(ws, "pong:", 5);
}

/* A masked client frame (mask 0x01020304) with a 7-bit length. */
static size_t
client_frame(unsigned char *buf, unsigned char opcode, const char *payload, size_t n)
{
	static const unsigned char mask[4] = {1, 2, 3, 4};

	buf[0] = 0x80 | opcode;
	buf[1] = 0x80 | (unsigned char) n;
	memcpy(buf + 2, mask, 4);
	for (size_t i = 0; i < n; i++)
		buf[6 + i] = (unsigned char) payload[i] ^ mask[i % 4];
	return 6 + n;
}

/* Run the server side until it wants nothing or 50 rounds pass; returns live_ws_io's last result. */
static int
drive(struct live_ws *ws, int fd)
{
	int rc = 0;

	for (int i = 0; i < 50 && rc == 0; i++)
	{
		struct pollfd p = {fd, live_ws_events(ws), 0};

		poll(&p, 1, 20);
		rc = live_ws_io(ws, p.revents, 1000 + i);
	}
	return rc;
}

/* Half a frame, then the rest; a fragmented message, then its end: busy in between, idle after. */
static void
idle_and_back(struct live_ws *ws, const int sv[2])
{
	unsigned char buf[64], in[64];
	size_t n = client_frame(buf, 0x1, "again", 5);

	CHECK(write(sv[1], buf, 3) == 3, "write half");
	drive(ws, sv[0]);
	CHECK(!live_ws_idle(ws) && got_n == 1, "half a frame read: the context stays");
	CHECK(write(sv[1], buf + 3, n - 3) == (ssize_t) (n - 3), "write the rest");
	drive(ws, sv[0]);
	CHECK(got_n == 2 && memcmp(got, "again", 5) == 0 && read(sv[1], in, sizeof(in)) == 7, "delivered, answered");
	CHECK(live_ws_idle(ws), "idle again");
	n = client_frame(buf, 0x1, "fr", 2);
	buf[0] = 0x01; /* text, no fin */
	CHECK(write(sv[1], buf, n) == (ssize_t) n, "write a first fragment");
	drive(ws, sv[0]);
	CHECK(!live_ws_idle(ws) && got_n == 2, "a message half received: the context stays");
	n = client_frame(buf, 0x0, "ag", 2); /* continuation, fin */
	CHECK(write(sv[1], buf, n) == (ssize_t) n, "write the last fragment");
	drive(ws, sv[0]);
	CHECK(got_n == 3 && memcmp(got, "frag", 4) == 0 && read(sv[1], in, sizeof(in)) == 7, "reassembled");
	CHECK(live_ws_idle(ws), "idle after the message");
}

static void
test_connection(void)
{
	int sv[2];
	unsigned char buf[256], in[256];
	size_t n;
	ssize_t r;
	struct live_ws *ws;

	struct timeval tv = {30, 0}; /* a read that finds nothing fails the check instead of hanging */

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = client_frame(buf, 0x1, "hello", 5);
	/* the first 3 bytes as MHD's extra_in, the rest through the socket */
	ws = live_ws_new(sv[0], (const char *) buf, 3, on_text, NULL);
	CHECK(write(sv[1], buf + 3, n - 3) == (ssize_t) (n - 3), "write");
	n = client_frame(buf, 0x9, "pi", 2); /* ping */
	CHECK(write(sv[1], buf, n) == (ssize_t) n, "write ping");
	drive(ws, sv[0]);
	CHECK(got_n == 1 && got_len == 5 && memcmp(got, "hello", 5) == 0, "text delivered (%d)", got_n);
	r = read(sv[1], in, sizeof(in));
	/* the pong to "pi" and our "pong:" text, in either order */
	CHECK(r == 4 + 7 && memmem(in, r, "\x8a\x02pi", 4) && memmem(in, r, "\x81\x05pong:", 7),
		  "server wrote %zd bytes: pong and text", r);
	CHECK(live_ws_idle(ws), "idle after whole frames: wslay's context freed, output drained");
	idle_and_back(ws, sv);
	/* a frame announcing LIVE_WS_MAX_MESSAGE + 1 bytes (0x40001), and its first 4: close 1009 */
	_Static_assert(LIVE_WS_MAX_MESSAGE == 0x40000, "the frame below announces 0x40001 bytes");
	memcpy(buf,
		   "\x81\xff\x00\x00\x00\x00\x00\x04\x00\x01\x01\x02\x03\x04"
		   "abcd",
		   18);
	CHECK(write(sv[1], buf, 18) == 18, "write big header");
	drive(ws, sv[0]);
	r = read(sv[1], in, sizeof(in));
	CHECK(r >= 4 && in[0] == 0x88 && in[2] == 0x03 && in[3] == 0xf1, "close 1009 sent (%zd bytes, %02x %02x%02x)", r,
		  in[0], in[2], in[3]);
	CHECK(live_ws_close_code(ws) == LIVE_WS_CLOSE_TOO_BIG, "close code %u", live_ws_close_code(ws));
	CHECK(live_ws_send(ws, "x", 1) < 0, "no sending after close");
	close(sv[1]); /* the peer goes away: the connection is done */
	CHECK(drive(ws, sv[0]) < 0, "done after the peer closed");
	live_ws_free(ws);
	close(sv[0]);
}

int
main(void)
{
	test_accept_key();
	test_connection();
	return unit_done("test_live_ws");
}
