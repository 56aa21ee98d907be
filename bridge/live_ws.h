/*
 * live_ws.h — one WebSocket connection (RFC 6455) over a socket handed over
 * by libmicrohttpd's upgrade (MHD_create_response_for_upgrade) or by the
 * door (http_stream.c wrote the 101), framed by wslay (Debian's libwslay):
 * text messages in, text messages out, ping/pong, close, a message size
 * limit and a bound on queued output (docs/live.md).  The HTTP handshake
 * (Sec-WebSocket-Accept) is the caller's: live_ws_accept_key().
 *
 * Rules:
 * - A struct live_ws is driven by one thread (the poll loop that owns its
 *   socket: the live thread, live_conn.c); nothing here locks.  The socket
 *   is made non-blocking; it is never closed here (the owner's, after
 *   live_ws_free(): MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE) for an
 *   upgraded one).
 * - The text callback runs inside live_ws_io(); it may call live_ws_send()
 *   and live_ws_close() on the same connection, never live_ws_free().
 * - Memory: the struct; wslay's event context only while the client is
 *   sending (live_ws.c's header), with one reassembly buffer while a message
 *   arrives (at most LIVE_WS_MAX_MESSAGE); output not yet written (at most
 *   LIVE_WS_MAX_QUEUED, freed when drained).
 */
#ifndef SC_LIVE_WS_H
#define SC_LIVE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest client message: a subscribe of 1,000 ids of ~250 bytes.  Over it: close 1009 */
#define LIVE_WS_MAX_MESSAGE (256 * 1024)
/* Output queued for one client (a snapshot of 1,000 keys is ~150 KiB); over it the client is slow: close 1008 */
#define LIVE_WS_MAX_QUEUED (512 * 1024)
/* A ping this often when the client has sent nothing */
#define LIVE_WS_PING_MS 15000
/* Nothing at all from the client (not even a pong) for this long: close 1001 */
#define LIVE_WS_IDLE_MS (3 * LIVE_WS_PING_MS)
/* After our close frame, wait this long for the client's before giving up on it */
#define LIVE_WS_CLOSE_WAIT_MS 5000
/* Bytes read from the socket per recv() */
#define LIVE_WS_READ_CHUNK 4096

/* Close codes (RFC 6455 §7.4.1) */
#define LIVE_WS_CLOSE_NORMAL 1000
#define LIVE_WS_CLOSE_GOING_AWAY 1001
#define LIVE_WS_CLOSE_UNSUPPORTED 1003 /* a binary message: we speak text only */
#define LIVE_WS_CLOSE_POLICY 1008	   /* too slow to read what it asked for */
#define LIVE_WS_CLOSE_TOO_BIG 1009

/* Length of the Sec-WebSocket-Accept value with its NUL */
#define LIVE_WS_ACCEPT_LEN 29

struct live_ws;

typedef void (*live_ws_text_fn)(struct live_ws *ws, const char *msg, size_t len, void *arg);

/*
 * base64(SHA-1(key + the RFC 6455 GUID)) into out: 0, or -1 if key is not
 * the base64 of 16 bytes (the handshake must then be answered 400).
 */
/* Case-insensitive: does the comma-separated header value (Upgrade, Connection) hold token? */
bool live_ws_has_token(const char *value, const char *token);
int live_ws_accept_key(const char *key, char out[LIVE_WS_ACCEPT_LEN]);

/* Take over fd; extra holds bytes MHD read past the HTTP header (fed first).  NULL when out of memory. */
struct live_ws *live_ws_new(int fd, const char *extra, size_t extra_len, live_ws_text_fn on_text, void *arg);
void live_ws_free(struct live_ws *ws);

/* The poll(2) events to wait for: POLLIN and/or POLLOUT (0 once done). */
short live_ws_events(struct live_ws *ws);

/*
 * After poll: read and/or write what the socket allows, deliver complete text
 * messages, answer pings, and handle close, limits and timers (now in ms of a
 * monotonic clock).  Returns 0 while the connection lives, -1 once it is done
 * (closed both ways, broken, or timed out): then live_ws_free() it.
 */
int live_ws_io(struct live_ws *ws, short revents, int64_t now_ms);

/* Queue one text message: 0; -1 if the connection is closing or the client too slow (then close 1008). */
int live_ws_send(struct live_ws *ws, const char *text, size_t len);

/* Start the closing handshake with code and reason. */
void live_ws_close(struct live_ws *ws, uint16_t code, const char *reason);

/*
 * Idle: no wslay context (nothing half read from the client, no close under
 * way) and no output pending; the connection costs its struct only.
 */
bool live_ws_idle(const struct live_ws *ws);

/* The close code we sent (0 if none yet), for logs and tests. */
uint16_t live_ws_close_code(struct live_ws *ws);

#endif
