/*
 * http.c — the http role (docs/http.md) on libmicrohttpd: the count API
 * (GET, and POST of a JSON list of ids), /healthz, /readyz and /metrics.
 *
 * Rules: libmicrohttpd runs on http_loop.c's threads (one per CPU, at most
 * 8, a daemon each).  A request that needs the database is routed and its
 * connection suspended; a single count is kept for the end of the thread's
 * turn, which answers it on the thread's own connection (dbpool_local.c,
 * waiting SC_HTTP_LOCAL_WAIT_MS at most), and any other job is handed to
 * dbpool.c's workers (http_pool_size connections, pipelined).  Either way
 * the job's callback resumes the connection and libmicrohttpd calls the
 * handler again to answer.  A
 * `struct request` lives from that hand-off (a POST's from its first call)
 * until request_done().  Every job is completed within http_db_timeout_ms.
 * URL unescaping by libmicrohttpd is switched off (identity callback):
 * route.c decodes path segments and ids itself, so an encoded '/' (%2F) or
 * ',' (%2C) stays inside its segment or id.  Every answer we produce is
 * counted with metrics_http_status().  JSON is built with jansson, except the
 * single-count body when nothing needs escaping (answer_count); responses own
 * their malloc'ed bodies (http_reply.c sends them).  A POST's body is kept
 * in its `struct request` (at most ROUTE_MAX_BODY_BYTES, malloc'ed, freed
 * once parsed or by request_done()).  Request size limits (docs/http.md
 * "Request size limits"): http_door.c owns the listening socket and checks
 * each connection's first request before libmicrohttpd reads it; a later
 * request on a kept-alive connection is checked by http_door.c's
 * http_uri_check() when libmicrohttpd has read its line and
 * http_head_refused() at the handler's first call.  The live routes (/,
 * /share-links/stream, /share-links/ws; docs/http.md "Live counts") are
 * http_live*.c's: http.c routes them, creates the hub the events feed fills,
 * and hands a stream's snapshot read to the pool like /counts (its `struct
 * request` carries the stream, freed by request_done()); /readyz and
 * /metrics answers are http_ops.c's.
 */
#include <microhttpd.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include "clock.h"
#include "dbpool.h"
#include "http.h"
#include "http_door.h"
#include "http_live.h"
#include "http_loop.h"
#include "http_ops.h"
#include "http_reply.h"
#include "http_trends.h"
#include "live_hub.h"
#include "live_cache_http.h"
#include "live_feed.h"
#include "log.h"
#include "metrics.h"
#include "route.h"

/* ROUTE_MAX_BODY_BYTES as text, for the 413 message (checked at compile time below) */
#define HTTP_MAX_BODY_TEXT "2097152"
_Static_assert(ROUTE_MAX_BODY_BYTES == 2097152, "HTTP_MAX_BODY_TEXT must match ROUTE_MAX_BODY_BYTES");
/* first allocation for a POST body of unknown length; it doubles from there */
#define HTTP_BODY_FIRST_ALLOC 16384

static struct live_hub *hub;	 /* live counts (docs/live.md): http_live.c's subscribers, fed by the events */
static int db_timeout_ms;		 /* http_db_timeout_ms, set by http_start() */
static struct live_cache *cache; /* the count cache (docs/live.md "Cache"); NULL: disabled */

static void http_stop_parts(void);

/* -------------------------------------------------------------- endpoints -- */

/*
 * One request that needs the database.  It lives from the handler's routing
 * call until libmicrohttpd reports the request completed (request_done), so
 * the job's inputs (the route's strings) outlive the database work.
 */
struct request
{
	struct dbpool_job job;
	struct route rt;
	struct MHD_Connection *conn;
	struct http_live_stream *live; /* GET /share-links/stream: the snapshot read, then http_live.c's */
	int64_t asked_ms;			   /* when the job was handed to the pool (live_cache_http_fill) */
	/* a POST's body while it is received (route.rt.from_body); see post_*() */
	int receiving;	/* 1 until the body is complete */
	int body_error; /* 413 past ROUTE_MAX_BODY_BYTES, 500 out of memory */
	char *body;
	size_t body_len;
	size_t body_cap;
};

/* *req_cls while the request is still being received (GET/HEAD) */
static int receiving_marker;
#define RECEIVING ((void *) &receiving_marker)

/* Stop protocol with http_stop(), see start_job(). */
static atomic_int stopping;
static atomic_int in_handoff;

/* GET /share-links/count: see http_send_count() (the hot path of P5 and P10) */
static enum MHD_Result
answer_count(struct MHD_Connection *conn, struct request *req)
{
	return http_send_count(conn, req->rt.content_type, req->rt.content_id, req->job.count);
}

static enum MHD_Result
answer_counts(struct MHD_Connection *conn, struct request *req)
{
	json_t *v = json_object();
	json_t *obj = json_object();
	size_t i;

	json_object_set_new(v, "contentType", json_string(req->rt.content_type));
	for (i = 0; i < req->rt.nids; i++)
		json_object_set_new(obj, req->rt.ids[i], json_integer(req->job.counts[i]));
	json_object_set_new(v, "counts", obj);
	return http_send_json(conn, 200, v, NULL);
}

/* Called by a database worker: the job is done, let libmicrohttpd call us again. */
static void
job_done(struct dbpool_job *job)
{
	struct request *req = job->cls;

	http_loop_resume(req->conn);
}

/* The handler's call after the job is done (the connection was resumed). */
static enum MHD_Result
answer(struct MHD_Connection *conn, struct request *req)
{
	if (req->rt.kind == ROUTE_METRICS)
		return http_ops_metrics(conn, &req->job);
	if (req->rt.kind == ROUTE_READYZ)
		return http_ops_readyz(conn, &req->job);
	if (http_trends_route(req->rt.kind))
		return http_trends_answer(conn, &req->rt, &req->job);
	if (req->job.rc != DBPOOL_OK)
		return http_send_db_error(conn, req->job.rc, req->job.err);
	live_cache_http_fill(cache, &req->rt, &req->job, req->asked_ms);
	if (req->live)
		return http_live_stream_answer(conn, req->live, &req->job, &req->rt);
	if (req->rt.kind == ROUTE_COUNT)
		return answer_count(conn, req);
	return answer_counts(conn, req);
}

/*
 * Hand a routed request to the database: suspend the connection and keep
 * the job for the end of this thread's turn (a single count, http_loop_defer)
 * or submit it to the workers; job_done() resumes it.  http_stop() must never find a
 * connection suspended with no job behind it (libmicrohttpd forbids stopping
 * with suspended connections), so the handler announces itself in in_handoff
 * before looking at `stopping`, and http_stop() sets `stopping` before
 * waiting for in_handoff to drop to 0: one of them always sees the other.
 * *req_cls is req already (request_done() frees it).
 */
static enum MHD_Result
start_job(struct MHD_Connection *conn, struct request *req)
{
	static const enum dbpool_kind kinds[] = {
		[ROUTE_COUNT] = DBPOOL_GET,
		[ROUTE_COUNTS] = DBPOOL_GET_MANY,
		[ROUTE_READYZ] = DBPOOL_PING,
		[ROUTE_METRICS] = DBPOOL_STATS,
	};

	if (req->rt.kind == ROUTE_COUNTS)
	{
		req->job.counts = calloc(req->rt.nids ? req->rt.nids : 1, sizeof(int64_t));
		if (!req->job.counts)
			return http_send_error(conn, 500, "out of memory", NULL);
	}
	if (live_cache_http_lookup(cache, &req->rt, &req->job, &req->asked_ms))
		return answer(conn, req); /* a cache hit: no database */
	req->conn = conn;
	req->job.kind = http_trends_route(req->rt.kind) ? http_trends_kind(req->rt.kind) : kinds[req->rt.kind];
	req->job.type = req->rt.content_type;
	req->job.id = req->rt.content_id;
	req->job.ids = req->rt.ids;
	req->job.nids = req->rt.nids;
	route_trends_args(&req->rt, req->job.args);
	req->job.deadline = clock_now_ms() + db_timeout_ms;
	req->job.done = job_done;
	req->job.cls = req;

	atomic_fetch_add(&in_handoff, 1);
	if (atomic_load(&stopping))
	{
		atomic_fetch_sub(&in_handoff, 1);
		req->job.rc = DBPOOL_UNAVAILABLE;
		snprintf(req->job.err, sizeof(req->job.err), "shutting down");
		return answer(conn, req);
	}
	MHD_suspend_connection(conn);
	if (req->job.kind != DBPOOL_GET || !http_loop_defer(&req->job))
		dbpool_submit(&req->job);
	atomic_fetch_sub(&in_handoff, 1);
	return MHD_YES;
}

/* Hand a routed GET/HEAD request to the database workers (start_job). */
static enum MHD_Result
handoff_db(struct MHD_Connection *conn, struct route *rt, struct http_live_stream *live, void **req_cls)
{
	struct request *req = calloc(1, sizeof(*req));

	if (!req)
	{
		if (live)
			http_live_stream_done(live);
		route_free(rt);
		return http_send_error(conn, 500, "out of memory", NULL);
	}
	req->live = live;
	req->rt = *rt;	/* the request owns the route's strings now */
	*req_cls = req; /* freed by request_done() */
	return start_job(conn, req);
}

static void
request_done(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct request *req = *req_cls;

	(void) cls;
	(void) conn;
	(void) toe;
	if (req && req != RECEIVING && req != HTTP_URI_ANSWERED)
	{
		if (req->live)
			http_live_stream_done(req->live);
		route_free(&req->rt);
		free(req->body);
		free(req->job.counts);
		dbpool_job_free(&req->job);
		free(req);
	}
	*req_cls = NULL;
}

/* ------------------------------------------------------------ POST bodies -- */

/* Send a route's error (405s with their Allow header) and release the route. */
static enum MHD_Result
send_route_error(struct MHD_Connection *conn, struct route *rt)
{
	enum MHD_Result ret =
		http_send_error(conn, (unsigned) rt->status, rt->message, rt->status == 405 ? rt->allow : NULL);

	route_free(rt);
	return ret;
}

/*
 * POST, first call (headers in): route the path (only /share-links/counts
 * takes a POST), check Content-Type and a declared Content-Length, and start
 * keeping the body.  An answer queued now makes libmicrohttpd skip the body
 * (no "100 Continue") and close the connection after the answer.
 */
static enum MHD_Result
post_begin(struct MHD_Connection *conn, const char *url, void **req_cls)
{
	struct route rt;
	struct request *req;
	const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long declared = len ? strtoull(len, NULL, 10) : 0;

	if (route_parse("POST", url, NULL, 0, &rt) != 0)
		return send_route_error(conn, &rt);
	if (!route_json_content_type(type))
	{
		route_free(&rt);
		return http_send_error(conn, 415, "Content-Type must be application/json", NULL);
	}
	if (declared > ROUTE_MAX_BODY_BYTES)
	{
		route_free(&rt);
		return http_send_error(conn, 413, "body is larger than " HTTP_MAX_BODY_TEXT " bytes", NULL);
	}
	req = calloc(1, sizeof(*req));
	if (!req)
	{
		route_free(&rt);
		return http_send_error(conn, 500, "out of memory", NULL);
	}
	req->rt = rt; /* the request owns the route's strings now */
	req->receiving = 1;
	*req_cls = req; /* freed by request_done() */
	return MHD_YES;
}

/* Keep a piece of a POST body (whole body at most ROUTE_MAX_BODY_BYTES). */
static void
post_append(struct request *req, const char *data, size_t size)
{
	size_t need = req->body_len + size;

	if (req->body_error)
		return; /* past the limit: the rest is read and dropped */
	if (size > ROUTE_MAX_BODY_BYTES || need > ROUTE_MAX_BODY_BYTES)
		req->body_error = 413;
	else if (need > req->body_cap)
	{
		size_t cap = req->body_cap ? req->body_cap * 2 : HTTP_BODY_FIRST_ALLOC;
		char *b;

		cap = cap < need ? need : cap > ROUTE_MAX_BODY_BYTES ? ROUTE_MAX_BODY_BYTES : cap;
		b = realloc(req->body, cap);
		if (!b)
			req->body_error = 500;
		else
		{
			req->body = b;
			req->body_cap = cap;
		}
	}
	if (req->body_error)
	{
		free(req->body);
		req->body = NULL;
		req->body_len = req->body_cap = 0;
		return;
	}
	memcpy(req->body + req->body_len, data, size);
	req->body_len = need;
}

/* POST, later calls: a piece of the body, or (size 0) the body is complete. */
static enum MHD_Result
post_receive(struct MHD_Connection *conn, struct request *req, const char *data, size_t *size)
{
	if (*size != 0)
	{
		post_append(req, data, *size);
		*size = 0;
		return MHD_YES;
	}
	req->receiving = 0;
	if (req->body_error == 413)
		return http_send_error(conn, 413, "body is larger than " HTTP_MAX_BODY_TEXT " bytes", NULL);
	if (req->body_error)
		return http_send_error(conn, 500, "out of memory", NULL);
	if (route_parse_body(&req->rt, req->body ? req->body : "", req->body_len) != 0)
		return http_send_error(conn, (unsigned) req->rt.status, req->rt.message, NULL);
	free(req->body);
	req->body = NULL;
	return start_job(conn, req);
}

/* ---------------------------------------------------------------- handler -- */

struct ids_arg
{
	const char *value;
	int count;
};

static enum MHD_Result
find_ids(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct ids_arg *a = cls;

	(void) kind;
	if (key && strcmp(key, "ids") == 0)
	{
		if (a->count++ == 0)
			a->value = value ? value : "";
	}
	return MHD_YES;
}

/* The live routes (http_live.c); a stream, once subscribed, reads its snapshot like a /counts request. */
static enum MHD_Result
live_route(struct MHD_Connection *conn, enum http_live_kind kind, const char *url, const char *method,
		   struct ids_arg *ids, void **req_cls)
{
	struct route rt;
	struct http_live_stream *s;
	const char *why;
	enum MHD_Result ret;

	if (http_live_answer_now(conn, kind, method, &ret))
		return ret;
	if (http_live_stream_route(method, url, ids->value, ids->count, &rt) != 0)
		return send_route_error(conn, &rt);
	if (!(s = http_live_stream_new(conn, &rt, &why)))
	{
		route_free(&rt);
		return http_send_error(conn, 503, why, NULL);
	}
	return handoff_db(conn, &rt, s, req_cls);
}

/*
 * libmicrohttpd calls this (1) when the headers are in, (2) with each piece
 * of a body, (3) once the request is complete, and (4) again after a
 * suspended connection is resumed.  GET and HEAD are answered at (3) —
 * libmicrohttpd keeps a connection alive only then — and a body on them is
 * read and discarded.  A POST to /share-links/counts is checked at (1)
 * (post_begin), its body kept at (2) and parsed at (3) (post_receive).  Any
 * other method, and a POST refused at (1), is answered before its body is
 * read, and libmicrohttpd then closes the connection.
 */
static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
	   const char *upload_data, size_t *upload_size, void **req_cls)
{
	struct route rt;
	struct ids_arg ids = {NULL, 0};
	enum MHD_Result ret;
	enum http_live_kind live = http_live_kind(url);

	(void) cls;
	(void) version;

	if ((*req_cls == NULL || *req_cls == HTTP_URI_ANSWERED) && http_head_refused(conn, method, *req_cls))
		return MHD_NO; /* answered already: libmicrohttpd closes the connection */
	if (*req_cls == NULL && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
	{
		*req_cls = RECEIVING;
		return MHD_YES;
	}
	if (*req_cls == NULL && live != HTTP_LIVE_NONE) /* another method: a 405 before any body */
		return live_route(conn, live, url, method, &ids, req_cls);
	if (*req_cls == NULL && strcmp(method, "POST") == 0)
		return post_begin(conn, url, req_cls);
	if (*req_cls != NULL && *req_cls != RECEIVING && ((struct request *) *req_cls)->receiving)
		return post_receive(conn, *req_cls, upload_data, upload_size);
	if (*upload_size != 0)
	{
		*upload_size = 0;
		return MHD_YES;
	}
	if (*req_cls != NULL && *req_cls != RECEIVING)
		return answer(conn, *req_cls);

	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, find_ids, &ids);
	if (live != HTTP_LIVE_NONE)
		return live_route(conn, live, url, method, &ids, req_cls);
	if (route_parse(method, url, ids.value, ids.count, &rt) != 0 || http_trends_query(conn, &rt) != 0)
		return send_route_error(conn, &rt);
	switch (rt.kind)
	{
		case ROUTE_COUNT:
		case ROUTE_COUNTS:
		case ROUTE_READYZ:
		case ROUTE_METRICS:
		case ROUTE_BREAKDOWN:
		case ROUTE_HISTORY:
		case ROUTE_TOP:
			return handoff_db(conn, &rt, NULL, req_cls);
		case ROUTE_HEALTHZ:
			ret = http_send_json(conn, 200, json_pack("{s:s}", "status", "ok"), NULL);
			break;
		default:
			ret = http_send_error(conn, 404, "no such endpoint", NULL);
			break;
	}
	route_free(&rt);
	return ret;
}

/*
 * libmicrohttpd would percent-decode the path before we see it, which loses
 * the difference between "/" and "%2F" inside a segment; hand it over raw.
 */
static size_t
unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	(void) cls;
	(void) c;
	return strlen(s);
}

/*
 * A connection starts: libmicrohttpd calls this on the thread that will serve
 * it, before any other callback for it, so that thread's lines carry the role.
 */
static void
connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
				  enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		log_set_role("http"); /* libmicrohttpd's threads log as the http role */
	http_door_notify(cls, conn, socket_context, code);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void) cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("libmicrohttpd: %s", line);
}

/* What each libmicrohttpd daemon is started with (http_start() sets it; make_daemon() reads it). */
static struct
{
	unsigned max_conn;
	unsigned timeout_s;
	size_t conn_memory;
} mhd_conf;
static int running; /* http_start() succeeded and http_stop() has not run */

/*
 * One libmicrohttpd daemon for one of http_loop.c's threads: external epoll
 * mode (the thread drives it), no listening socket (http_door.c accepts and
 * hands connections over), suspend/resume, and the inter-thread eventfd
 * (MHD_USE_ITC) through which a resume from another thread wakes it.
 */
static struct MHD_Daemon *
make_daemon(void)
{
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET |
		MHD_USE_ITC | MHD_ALLOW_UPGRADE;

	/*
	 * Per-connection memory (http_conn_memory): the request line and headers
	 * must fit (docs/http.md "Request size limits").  libmicrohttpd 0.9.75
	 * zeroes all of it after every request on a keep-alive connection, so it
	 * is paid on every request: the 16 KiB default (Node.js's header limit,
	 * what the NestJS service accepted) against 64 KiB is about +20 % req/s
	 * (docs/http.md "Throughput").
	 * http_door.c enforces max_conn; the limit here only backs it up (a place
	 * is freed a moment after libmicrohttpd reports the connection closed).
	 */
	return MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
							MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL, MHD_OPTION_NOTIFY_COMPLETED,
							request_done, NULL, MHD_OPTION_NOTIFY_CONNECTION, connection_notify, NULL,
							MHD_OPTION_URI_LOG_CALLBACK, http_uri_check, NULL, MHD_OPTION_CONNECTION_LIMIT,
							2 * mhd_conf.max_conn, MHD_OPTION_CONNECTION_TIMEOUT, mhd_conf.timeout_s,
							MHD_OPTION_CONNECTION_MEMORY_LIMIT, mhd_conf.conn_memory, MHD_OPTION_END);
}

int
http_start(const struct sc_config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char err[512];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = ncpu < 1 ? 1 : ncpu > SC_HTTP_MAX_THREADS ? SC_HTTP_MAX_THREADS : (unsigned) ncpu;
	/* the settings are validated (config.c's bounds): no fallbacks here */
	int pool = cfg->http_pool_size;
	struct readsrc_conf reads = {cfg->pg_conninfo, cfg->pg_read_conninfo, cfg->read_max_lag_ms,
								 cfg->read_check_interval_ms};

	if (!cfg->http_listen || !cfg->http_listen[0])
		return 0;
	if (route_parse_listen(cfg->http_listen, &ss, &sslen, err, sizeof(err)) != 0)
	{
		log_error("%s", err);
		return -1;
	}
	mhd_conf.max_conn = (unsigned) cfg->http_max_connections;
	mhd_conf.timeout_s = (unsigned) ((cfg->http_timeout_ms + 999) / 1000);
	mhd_conf.conn_memory = (size_t) cfg->http_conn_memory;
	atomic_store(&stopping, 0);
	if (http_door_open(&ss, sslen) != 0)
	{
		log_error("cannot listen on %s", cfg->http_listen);
		return -1;
	}
	cache = live_cache_new(cfg->http_cache_entries, cfg->http_cache_max_age_ms);
	dbpool_set_versioned(cache != NULL);
	if (dbpool_init(&reads, pool) != 0)
	{
		log_error("cannot set up the PostgreSQL pool (pg_read_conninfo)");
		http_door_stop();
		live_cache_free(cache);
		cache = NULL;
		return -1;
	}
	json_object_seed(0); /* seed jansson's hash once, before any thread uses it */
	running = 1;
	hub = live_hub_new();
	if (!hub || live_feed_start(cfg, hub, cache) != 0 || http_live_start(cfg, hub) != 0 ||
		http_loop_start(threads, make_daemon) != 0 ||
		http_door_start(mhd_conf.conn_memory, mhd_conf.max_conn, cfg->http_timeout_ms) != 0)
	{
		log_error("cannot start libmicrohttpd on %s", cfg->http_listen);
		http_stop_parts();
		running = 0;
		return -1;
	}
	db_timeout_ms = cfg->http_db_timeout_ms;
	log_info("listening on %s (%u threads, %d database connections and one per thread, %u connections max, "
			 "%zu bytes per connection, timeout %u s, db timeout %d ms)",
			 cfg->http_listen, threads, pool, mhd_conf.max_conn, mhd_conf.conn_memory, mhd_conf.timeout_s,
			 db_timeout_ms);
	return 0;
}

/*
 * Stop order matters: no request may be suspended when libmicrohttpd stops.
 * So: no new connections (the door), no new hand-offs (stopping +
 * in_handoff, see start_job), then every
 * accepted job completed (each resumes its connection), then the daemon
 * (in-flight answers are sent or their connections closed), then the workers.
 */
static void
http_stop_parts(void)
{
	live_feed_stop();
	http_door_stop();
	atomic_store(&stopping, 1);
	while (atomic_load(&in_handoff) > 0)
		sched_yield();
	dbpool_drain();
	http_live_quiesce(); /* no stream stays suspended, no WebSocket open */
	http_loop_stop();	 /* each thread ends its turn: no single count kept */
	http_live_stop();
	live_hub_free(hub);
	hub = NULL;
	dbpool_shutdown();
	live_cache_free(cache);
	cache = NULL;
}

void
http_stop(void)
{
	if (running)
		http_stop_parts();
	running = 0;
}
