/*
 * ws_echo_server.c — a standalone WebSocket test server for bridge/live_ws.c
 * and bridge/live_hub.c (docs/live.md), run by test/e2e/live_ws_echo.sh with
 * a real client (Debian's python3-websockets).  Not the bridge: it needs no
 * change to http.c and no database.
 *
 * libmicrohttpd answers GET /share-links/ws with the RFC 6455 handshake
 * (Sec-WebSocket-Accept from live_ws_accept_key) and hands the upgraded
 * socket to the main thread's poll loop, which drives one struct live_ws per
 * client.  Clients send {"event":"subscribe"|"unsubscribe",...}; a subscribe
 * gets one share_count_changed snapshot per id (the hub's latest, or from a
 * fake in-memory database: shareCount = length of the id, version 1)
 * and then every change; the key (article, tick) changes every TICK_MS.
 *
 * Usage: ws_echo_server.bin PORTFILE — listens on 127.0.0.1 at a free port,
 * writes the port to PORTFILE, runs until SIGTERM/SIGINT.
 *
 * Rules: MHD's thread only queues new connections (under pending_mu) and
 * writes the wake pipe; everything else, including every live_ws, belongs to
 * the main thread.  The hub is thread-safe by itself; its wake callback only
 * writes the pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "live_event.h"
#include "live_hub.h"
#include "live_ws.h"

volatile sig_atomic_t sc_stop;
volatile sig_atomic_t sc_reload;

#define TICK_MS 100	 /* (article, tick) gets a new version this often */
#define MAX_CONNS 64 /* clients of this test server */
#define POLL_MS 50	 /* poll timeout: the tick's resolution */

struct conn
{
	struct conn *next;
	int fd;
	struct MHD_UpgradeResponseHandle *urh;
	struct live_ws *ws;
	struct live_sub *sub;
	char *extra;
	size_t extra_len;
};

static struct live_hub *hub;
static int wake_pipe[2];
static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static struct conn *pending; /* handed over by MHD's thread */
static struct conn *conns;	 /* the main thread's */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
wake(void *arg)
{
	ssize_t n;

	(void) arg;
	n = write(wake_pipe[1], "w", 1); /* a full pipe already wakes the loop */
	(void) n;
}

static void
on_signal(int sig)
{
	(void) sig;
	sc_stop = 1;
}

static struct live_count
fake_count(const char *type, const char *id, int64_t n, int64_t version)
{
	struct live_count c = {.share_count = n, .delta = n, .version = version};

	snprintf(c.content_type, sizeof(c.content_type), "%s", type);
	snprintf(c.content_id, sizeof(c.content_id), "%s", id);
	snprintf(c.timestamp, sizeof(c.timestamp), "2026-01-02T03:04:05.678Z");
	return c;
}

static void
send_error(struct live_ws *ws, const char *message)
{
	char *m = live_ws_error_msg(400, message);

	if (m)
		live_ws_send(ws, m, strlen(m));
	free(m);
}

static void
send_count(struct live_ws *ws, const struct live_count *c)
{
	char *data = live_event_data_json(c), *m = data ? live_ws_event_msg(data) : NULL;

	if (m)
		live_ws_send(ws, m, strlen(m));
	free(m);
	free(data);
}

/*
 * Snapshot, written straight to the socket (a 1,000-key snapshot would not
 * fit the hub's per-subscriber queue): the hub's latest, else the fake
 * database's count.
 */
static void
snapshot(struct conn *c, const struct live_client_msg *m)
{
	for (int i = 0; i < m->nids; i++)
	{
		struct live_count k;

		if (!live_hub_latest(hub, m->content_type, m->ids[i], &k))
			k = fake_count(m->content_type, m->ids[i], (int64_t) strlen(m->ids[i]), 1);
		send_count(c->ws, &k);
	}
}

static void
on_text(struct live_ws *ws, const char *msg, size_t len, void *arg)
{
	struct conn *c = arg;
	struct live_client_msg m;
	char err[256];

	if (live_client_parse(msg, len, &m, err, sizeof(err)) < 0)
		send_error(ws, err);
	else if (m.op == LIVE_UNSUBSCRIBE)
		live_hub_unsubscribe(hub, c->sub, m.content_type, m.ids, m.nids);
	else if (live_hub_subscribe(hub, c->sub, m.content_type, m.ids, m.nids, err, sizeof(err)) < 0)
		send_error(ws, err);
	else
		snapshot(c, &m);
	live_client_msg_free(&m);
}

static void
upgraded(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in, size_t extra_in_size,
		 MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct conn *c = calloc(1, sizeof(*c));

	(void) cls, (void) connection, (void) con_cls;
	if (c == NULL || (extra_in_size > 0 && (c->extra = malloc(extra_in_size)) == NULL))
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
	pthread_mutex_lock(&pending_mu);
	c->next = pending;
	pending = c;
	pthread_mutex_unlock(&pending_mu);
	wake(NULL);
}

static enum MHD_Result
answer_json(struct MHD_Connection *conn, unsigned status, const char *message, const char *error)
{
	char body[512];
	struct MHD_Response *r;
	enum MHD_Result ret;

	snprintf(body, sizeof(body), "{\"statusCode\":%u,\"message\":\"%s\",\"error\":\"%s\"}", status, message, error);
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
	   const char *upload, size_t *upload_size, void **con_cls)
{
	const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade"),
			   *co = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Connection"),
			   *ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version"),
			   *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
	char accept[LIVE_WS_ACCEPT_LEN];
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void) cls, (void) version, (void) upload, (void) upload_size, (void) con_cls;
	if (strcmp(url, "/share-links/ws") != 0)
		return answer_json(conn, 404, "Not Found", "Not Found");
	if (strcmp(method, "GET") != 0)
		return answer_json(conn, 405, "Method Not Allowed", "Method Not Allowed");
	if (!up || !live_ws_has_token(up, "websocket") || !co || !live_ws_has_token(co, "upgrade") || !ver ||
		strcmp(ver, "13") != 0)
		return answer_json(conn, 400, "a WebSocket upgrade (RFC 6455, version 13) is required", "Bad Request");
	if (live_ws_accept_key(key, accept) < 0)
		return answer_json(conn, 400, "Sec-WebSocket-Key must be the base64 of 16 bytes", "Bad Request");
	r = MHD_create_response_for_upgrade(upgraded, NULL);
	MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
	ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	return ret;
}

static void
conn_free(struct conn *c)
{
	if (c->sub)
		live_hub_detach(hub, c->sub);
	live_ws_free(c->ws);
	MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(c->extra);
	free(c);
}

/* Move MHD's new connections into conns (at most MAX_CONNS; more are closed). */
static void
adopt_pending(int *nconns)
{
	struct conn *list;

	pthread_mutex_lock(&pending_mu);
	list = pending;
	pending = NULL;
	pthread_mutex_unlock(&pending_mu);
	while (list)
	{
		struct conn *c = list;

		list = c->next;
		c->ws = live_ws_new(c->fd, c->extra, c->extra_len, on_text, c);
		c->sub = live_hub_attach(hub, wake, NULL);
		if (c->ws == NULL || c->sub == NULL || *nconns >= MAX_CONNS)
		{
			conn_free(c);
			continue;
		}
		c->next = conns;
		conns = c;
		(*nconns)++;
	}
}

/* Hub -> socket: every queued change as a ws event; a dropped subscriber is closed. */
static void
pump(struct conn *c)
{
	char *data, *m;
	int rc;

	while ((rc = live_hub_next(hub, c->sub, &data)) == 1)
	{
		if ((m = live_ws_event_msg(data)) != NULL)
			live_ws_send(c->ws, m, strlen(m));
		free(m);
		free(data);
	}
	if (rc < 0)
		live_ws_close(c->ws, LIVE_WS_CLOSE_POLICY, "too slow");
}

static void
loop(void)
{
	struct pollfd pfd[MAX_CONNS + 1];
	struct conn *at[MAX_CONNS + 1];
	int64_t next_tick = now_ms(), tickv = 0;
	int nconns = 0;
	char drain[256];

	while (!sc_stop)
	{
		int n = 1;
		int64_t now;

		adopt_pending(&nconns);
		pfd[0] = (struct pollfd){wake_pipe[0], POLLIN, 0};
		for (struct conn *c = conns; c; c = c->next, n++)
		{
			pump(c);
			pfd[n] = (struct pollfd){c->fd, live_ws_events(c->ws), 0};
			at[n] = c;
		}
		if (poll(pfd, n, POLL_MS) < 0 && errno != EINTR)
			break;
		while (read(wake_pipe[0], drain, sizeof(drain)) > 0)
			;
		now = now_ms();
		if (now >= next_tick)
		{
			struct live_count k;

			tickv++;
			k = fake_count("article", "tick", tickv, tickv);
			live_hub_update(hub, &k);
			next_tick = now + TICK_MS;
		}
		conns = NULL; /* rebuilt with the connections that live on */
		for (int i = n - 1; i >= 1; i--)
		{
			if (live_ws_io(at[i]->ws, pfd[i].revents, now) < 0)
			{
				fprintf(stderr, "ws_echo_server: connection closed (close code sent %u)\n",
						live_ws_close_code(at[i]->ws));
				conn_free(at[i]);
				nconns--;
				continue;
			}
			at[i]->next = conns;
			conns = at[i];
		}
	}
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	FILE *f;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s PORTFILE\n", argv[0]);
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0 || (hub = live_hub_new()) == NULL)
		return 1;
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle,
						 NULL, MHD_OPTION_END);
	if (d == NULL || (info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) == NULL ||
		(f = fopen(argv[1], "w")) == NULL)
		return 1;
	fprintf(f, "%u\n", (unsigned) info->port);
	fclose(f);
	loop();
	while (conns)
	{
		struct conn *c = conns;

		conns = c->next;
		conn_free(c);
	}
	MHD_stop_daemon(d);
	live_hub_free(hub);
	return 0;
}
