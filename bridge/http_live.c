/*
 * http_live.c — the http role's live routes (docs/live.md, docs/http.md
 * "Live counts"): GET / (the page), the WebSocket handshake (the upgraded
 * sockets go to the live thread: live_conn.c), the routing of streams (http_live_sse.c),
 * the http_allowed_origins check, the subscriber metrics, and the
 * descriptor limit that many subscribers need.
 *
 * Rules: the origins list and the hub pointer are set by http_live_start()
 * before the daemon runs and only read afterwards; `stopping` (atomic) makes
 * a WebSocket handshake during shutdown a 503.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "http_live.h"
#include "http_live_int.h"
#include "http_reply.h"
#include "live_page.h"
#include "live_ws.h"
#include "log.h"
#include "metrics.h"

/* Descriptors kept beyond http_max_connections: database, broker, log, epoll, eventfds */
#define HTTP_LIVE_FD_RESERVE 256

static struct
{
	struct live_hub *hub;
	char **origins; /* http_allowed_origins, split */
	int norigins;
	bool any_origin; /* "*" */
	atomic_int stopping;
} lv;

struct live_hub *
http_live_hub(void)
{
	return lv.hub;
}

/* A count read from the database: delta 0, version 0 (sharecount_get_many reads none), stamped now. */
static void
db_count(struct live_count *c, const char *type, const char *id, int64_t count)
{
	struct timespec ts;
	struct tm tm;
	char sec[24];

	memset(c, 0, sizeof(*c));
	snprintf(c->content_type, sizeof(c->content_type), "%s", type);
	snprintf(c->content_id, sizeof(c->content_id), "%s", id);
	c->share_count = count;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(c->timestamp, sizeof(c->timestamp), "%.20s.%03dZ", sec, (int) (ts.tv_nsec / 1000000) % 1000);
}

void
http_live_snapshot_count(struct live_count *c, const char *type, const char *id, int64_t count)
{
	if (!live_hub_latest(lv.hub, type, id, c))
		db_count(c, type, id, count);
}

void
http_live_set_sndbuf(int fd)
{
	int size = HTTP_LIVE_SNDBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) != 0)
		log_debug("SO_SNDBUF: %s", strerror(errno));
}

/* ---------------------------------------------------------------- origins -- */

static int
parse_origins(const char *list)
{
	char *copy = strdup(list ? list : ""), *save = NULL;

	if (!copy)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char **o;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		for (char *e = tok + strlen(tok); e > tok && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '/');)
			*--e = '\0'; /* "https://a.example/" and "https://a.example" are one origin */
		if (!*tok)
			continue;
		if (strcmp(tok, "*") == 0)
			lv.any_origin = true;
		if (!(o = realloc(lv.origins, (lv.norigins + 1) * sizeof(*o))) || !(o[lv.norigins] = strdup(tok)))
		{
			lv.origins = o ? o : lv.origins;
			free(copy);
			return -1;
		}
		lv.origins = o;
		lv.norigins++;
	}
	free(copy);
	return 0;
}

/* Is origin the page's own: http(s):// followed by the request's Host? */
static bool
same_origin(const char *origin, const char *host)
{
	const char *rest = strncasecmp(origin, "http://", 7) == 0 ? origin + 7 :
		strncasecmp(origin, "https://", 8) == 0				  ? origin + 8 :
																NULL;

	return rest && host && strcasecmp(rest, host) == 0;
}

/*
 * docs/config.md http_allowed_origins: no Origin header (not a browser, or a
 * same-origin GET), the request's own origin, a listed one, or any with "*".
 * 1 allowed (*cors: the Origin to echo in Access-Control-Allow-Origin, or NULL).
 */
int
http_live_origin_ok(const char *origin, const char *host, const char **cors)
{
	*cors = NULL;
	if (!origin || same_origin(origin, host))
		return 1;
	for (int i = 0; i < lv.norigins; i++)
		if (lv.any_origin || strcasecmp(origin, lv.origins[i]) == 0)
		{
			*cors = origin;
			return 1;
		}
	return 0;
}

int
http_live_origin_allowed(struct MHD_Connection *conn, const char **cors)
{
	return http_live_origin_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
							   MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST), cors);
}

/* ---------------------------------------------------------------- routing -- */

#define STREAM_PREFIX "/share-links/stream/"
#define COUNTS_PREFIX "/share-links/counts/"

enum http_live_kind
http_live_kind(const char *url)
{
	if (strcmp(url, "/") == 0)
		return HTTP_LIVE_PAGE;
	if (strcmp(url, "/share-links/ws") == 0)
		return HTTP_LIVE_WS;
	if (strncmp(url, STREAM_PREFIX, strlen(STREAM_PREFIX)) == 0 || strcmp(url, "/share-links/stream") == 0)
		return HTTP_LIVE_STREAM;
	return HTTP_LIVE_NONE;
}

static enum MHD_Result
answer_page(struct MHD_Connection *conn)
{
	size_t len;
	const char *page = live_page(&len);
	char *body = malloc(len);

	if (!body)
		return http_send_error(conn, 500, "out of memory", NULL);
	memcpy(body, page, len);
	return http_send_body(conn, 200, body, len, LIVE_PAGE_CONTENT_TYPE, NULL);
}

const char *
http_live_ws_refusal(const char *up, const char *co, const char *ver, const char *key, char accept[LIVE_WS_ACCEPT_LEN],
					 unsigned *status)
{
	*status = 400;
	if (!up || !live_ws_has_token(up, "websocket") || !co || !live_ws_has_token(co, "upgrade") || !ver ||
		strcmp(ver, "13") != 0)
		return "a WebSocket upgrade (RFC 6455, version 13) is required";
	if (live_ws_accept_key(key, accept) < 0)
		return "Sec-WebSocket-Key must be the base64 of 16 bytes";
	*status = 503;
	if (atomic_load(&lv.stopping))
		return "shutting down";
	return NULL;
}

/* The RFC 6455 handshake (docs/live.md "WebSocket"): 101 and the socket to the live thread, or 400. */
static enum MHD_Result
answer_ws(struct MHD_Connection *conn)
{
	char accept[LIVE_WS_ACCEPT_LEN];
	unsigned status;
	const char *why =
		http_live_ws_refusal(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE),
							 MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION),
							 MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version"),
							 MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key"), accept, &status);
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (why)
		return http_send_error(conn, status, why, NULL);
	r = MHD_create_response_for_upgrade(http_live_ws_upgraded, NULL);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
	ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	metrics_http_status(MHD_HTTP_SWITCHING_PROTOCOLS);
	return ret;
}

int
http_live_answer_now(struct MHD_Connection *conn, enum http_live_kind kind, const char *method, enum MHD_Result *ret)
{
	const char *cors;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		*ret = http_send_error(conn, 405, "only GET and HEAD are allowed here", ROUTE_ALLOW);
	else if (!http_live_origin_allowed(conn, &cors)) /* route_reason() knows no 403: the error shape by hand */
		*ret = http_send_json(
			conn, 403,
			json_pack("{s:i, s:s, s:s}", "statusCode", 403, "message", HTTP_LIVE_ORIGIN_REFUSED, "error", "Forbidden"),
			NULL);
	else if (kind == HTTP_LIVE_PAGE)
		*ret = answer_page(conn);
	else if (kind == HTTP_LIVE_WS)
		*ret = answer_ws(conn);
	else
		return 0;
	return 1;
}

int
http_live_stream_route(const char *method, const char *url, const char *ids_raw, int ids_count, struct route *rt)
{
	/* the path of /counts with the same type segment(s): its checks and messages */
	size_t rest = strlen(url) > strlen(STREAM_PREFIX) ? strlen(url) - strlen(STREAM_PREFIX) : 0;
	char *path = malloc(strlen(COUNTS_PREFIX) + rest + 1);
	char *m;

	if (!path)
	{
		memset(rt, 0, sizeof(*rt));
		rt->status = 503;
		snprintf(rt->message, sizeof(rt->message), "out of memory");
		return rt->status;
	}
	memcpy(path, COUNTS_PREFIX, strlen(COUNTS_PREFIX));
	memcpy(path + strlen(COUNTS_PREFIX), url + strlen(url) - rest, rest + 1);
	route_parse(method, path, ids_raw, ids_count, rt);
	free(path);
	if (rt->status != 0 && (m = strstr(rt->message, COUNTS_PREFIX)) != NULL)
		memcpy(m, STREAM_PREFIX, strlen(STREAM_PREFIX)); /* same length: the message names this route */
	return rt->status;
}

/* --------------------------------------------------------------- metrics -- */

static void
render_metrics(struct metrics_out *out)
{
	struct live_hub_stats st;

	if (!lv.hub)
		return;
	live_hub_get_stats(lv.hub, &st);
	metrics_printf(out,
				   "# HELP sharecount_live_subscribers Live-count connections open now, by transport.\n"
				   "# TYPE sharecount_live_subscribers gauge\n"
				   "sharecount_live_subscribers{transport=\"sse\"} %llu\n"
				   "sharecount_live_subscribers{transport=\"ws\"} %llu\n",
				   (unsigned long long) (http_live_sse_count() + http_live_thread_sse_count()),
				   (unsigned long long) http_live_ws_count());
	metrics_printf(out,
				   "# HELP sharecount_live_subscriptions (connection, key) subscriptions now.\n"
				   "# TYPE sharecount_live_subscriptions gauge\nsharecount_live_subscriptions %llu\n"
				   "# HELP sharecount_live_events_queued_total Count changes queued to subscribers.\n"
				   "# TYPE sharecount_live_events_queued_total counter\nsharecount_live_events_queued_total %llu\n",
				   (unsigned long long) st.subscriptions, (unsigned long long) st.queued);
	metrics_printf(out,
				   "# HELP sharecount_live_subscribers_dropped_total Subscribers dropped as too slow to read.\n"
				   "# TYPE sharecount_live_subscribers_dropped_total counter\n"
				   "sharecount_live_subscribers_dropped_total %llu\n",
				   (unsigned long long) st.dropped);
}

/* ------------------------------------------------------------ start/stop -- */

/* Each connection is a descriptor: raise the soft RLIMIT_NOFILE toward the hard one if it is too low. */
static void
raise_nofile(int max_conn)
{
	struct rlimit rl;
	rlim_t want = (rlim_t) max_conn + HTTP_LIVE_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("cannot raise the open-file limit: %s", strerror(errno));
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
		log_warn("open-file limit %llu is below http_max_connections + %d: raise LimitNOFILE / ulimit -n",
				 (unsigned long long) rl.rlim_cur, HTTP_LIVE_FD_RESERVE);
}

int
http_live_start(const struct sc_config *cfg, struct live_hub *hub)
{
	static atomic_int registered;

	lv.hub = hub;
	atomic_store(&lv.stopping, 0);
	raise_nofile(cfg->http_max_connections);
	if (parse_origins(cfg->http_allowed_origins) != 0 || http_live_thread_start(cfg->http_db_timeout_ms) != 0 ||
		http_live_sse_start() != 0)
	{
		log_error("cannot start the live routes");
		http_live_stop();
		return -1;
	}
	if (atomic_exchange(&registered, 1) == 0)
		metrics_add_section(render_metrics);
	return 0;
}

void
http_live_quiesce(void)
{
	atomic_store(&lv.stopping, 1);
	http_live_sse_quiesce();
	http_live_thread_stop();
}

void
http_live_stop(void)
{
	http_live_quiesce();
	lv.hub = NULL;
	for (int i = 0; i < lv.norigins; i++)
		free(lv.origins[i]);
	free(lv.origins);
	lv.origins = NULL;
	lv.norigins = 0;
	lv.any_origin = false;
}
