/*
 * amqp.c — RabbitMQ connection layer (see amqp.h).
 *
 * Rules: every function runs on the thread that owns the struct sc_amqp.
 * Errors are logged here once, with the server's reply text when there is
 * one; callers only decide whether to reconnect.  URLs are logged redacted.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "amqp.h"
#include "bridge.h"
#include "clock.h"
#include "log.h"

void
sc_amqp_backoff_sleep(struct sc_amqp *a, int max_ms)
{
	sc_amqp_sleep(NULL, a->backoff_ms);
	a->backoff_ms = backoff_next(a->backoff_ms, max_ms);
}

void
sc_amqp_sleep(struct sc_amqp *a, int ms)
{
	int64_t end = clock_now_ms() + ms;
	int64_t next_hb = clock_now_ms() + SC_HEARTBEAT_SEND_MS;

	while (!sc_stop)
	{
		int64_t left = end - clock_now_ms();
		struct timespec ts;

		if (left <= 0)
			break;
		if (left > SC_SLEEP_SLICE_MS)
			left = SC_SLEEP_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = left * 1000000L;
		nanosleep(&ts, NULL);
		if (a && a->conn && a->cfg->heartbeat_s > 0 && clock_now_ms() >= next_hb)
		{
			sc_amqp_heartbeat(a);
			next_hb = clock_now_ms() + SC_HEARTBEAT_SEND_MS;
		}
	}
}

void
sc_amqp_init(struct sc_amqp *a, const struct sc_config *cfg, const char *name, const char *log_ctx, enum sc_conn metric)
{
	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->name = name;
	a->log_ctx = log_ctx;
	a->metric = metric;
	a->backoff_ms = SC_RECONNECT_FIRST_MS;
	if (metric != SC_CONN_UNTRACKED)
	{
		metrics_use_conn(metric);
		metrics_set_conn(metric, 0);
	}
}


/* connection.blocked state, mirrored on /metrics (sharecount_connection_blocked) */
static void
set_blocked(struct sc_amqp *a, int blocked)
{
	a->blocked = blocked;
	if (a->metric != SC_CONN_UNTRACKED)
		metrics_set_blocked(a->metric, blocked);
}

static void
bytes_str(amqp_bytes_t b, char *buf, size_t len)
{
	snprintf(buf, len, "%.*s", (int) b.len, b.bytes ? (const char *) b.bytes : "");
}

void
sc_amqp_disconnect(struct sc_amqp *a)
{
	if (!a->conn)
		return;
	/* best effort: a broken socket makes these fail quickly */
	if (amqp_get_socket(a->conn))
		amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(a->conn);
	a->conn = NULL;
	set_blocked(a, 0);
	a->aux_open = 0;
	a->confirming = 0;
	if (a->metric != SC_CONN_UNTRACKED)
		metrics_set_conn(a->metric, 0);
}

int
sc_amqp_reply_ok(struct sc_amqp *a, amqp_rpc_reply_t r, const char *what, int *chan_only)
{
	char text[512];

	if (chan_only)
		*chan_only = 0;
	switch (r.reply_type)
	{
		case AMQP_RESPONSE_NORMAL:
			return 0;
		case AMQP_RESPONSE_NONE:
			SC_AMQP_LOG(LOG_LVL_ERROR, a, "%s: missing RPC reply", what);
			break;
		case AMQP_RESPONSE_LIBRARY_EXCEPTION:
			SC_AMQP_LOG(LOG_LVL_ERROR, a, "%s: %s", what, amqp_error_string2(r.library_error));
			break;
		case AMQP_RESPONSE_SERVER_EXCEPTION:
			if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
			{
				amqp_channel_close_t *m = r.reply.decoded;
				amqp_channel_close_ok_t ok;
				amqp_channel_t ch = SC_CH;

				bytes_str(m->reply_text, text, sizeof(text));
				if (m->reply_code == AMQP_PRECONDITION_FAILED)
					SC_AMQP_LOG(LOG_LVL_ERROR, a,
								"%s: the broker refused it (%u %s): an existing exchange or "
								"queue was declared with other arguments; make exchange, queue, queue_type and "
								"dead_letter_exchange match it (docs/interop.md) or delete it",
								what, m->reply_code, text);
				else
					SC_AMQP_LOG(LOG_LVL_ERROR, a, "%s: channel closed by the broker: %u %s", what, m->reply_code, text);
				/* which channel: callers pass the aux channel's replies through "aux:" names */
				if (strncmp(what, "aux:", 4) == 0)
				{
					ch = SC_CH_AUX;
					a->aux_open = 0;
				}
				memset(&ok, 0, sizeof(ok));
				amqp_send_method(a->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
				if (chan_only)
					*chan_only = 1;
			}
			else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
			{
				amqp_connection_close_t *m = r.reply.decoded;
				amqp_connection_close_ok_t ok;

				bytes_str(m->reply_text, text, sizeof(text));
				SC_AMQP_LOG(LOG_LVL_ERROR, a, "%s: connection closed by the broker: %u %s", what, m->reply_code, text);
				memset(&ok, 0, sizeof(ok));
				amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
			}
			else
				SC_AMQP_LOG(LOG_LVL_ERROR, a, "%s: unexpected server method 0x%08x", what, r.reply.id);
			break;
	}
	return -1;
}

int
sc_amqp_async_frame(struct sc_amqp *a, const amqp_frame_t *f)
{
	char text[512];

	if (f->frame_type != AMQP_FRAME_METHOD)
	{
		/* stray content of a message nobody asked for: ignore it */
		return 0;
	}
	switch (f->payload.method.id)
	{
		case AMQP_CONNECTION_BLOCKED_METHOD:
			{
				amqp_connection_blocked_t *m = f->payload.method.decoded;

				bytes_str(m->reason, text, sizeof(text));
				if (!a->blocked)
					SC_AMQP_LOG(LOG_LVL_WARN, a, "broker blocked the connection (%s); publishing paused", text);
				set_blocked(a, 1);
				return 0;
			}
		case AMQP_CONNECTION_UNBLOCKED_METHOD:
			if (a->blocked)
				SC_AMQP_LOG(LOG_LVL_INFO, a, "broker unblocked the connection");
			set_blocked(a, 0);
			return 0;
		case AMQP_CHANNEL_CLOSE_METHOD:
			{
				amqp_channel_close_t *m = f->payload.method.decoded;
				amqp_channel_close_ok_t ok;

				bytes_str(m->reply_text, text, sizeof(text));
				memset(&ok, 0, sizeof(ok));
				amqp_send_method(a->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
				if (f->channel == SC_CH_AUX)
				{
					a->aux_open = 0;
					SC_AMQP_LOG(LOG_LVL_WARN, a, "auxiliary channel closed by the broker: %u %s", m->reply_code, text);
					return 0;
				}
				SC_AMQP_LOG(LOG_LVL_ERROR, a, "channel closed by the broker: %u %s", m->reply_code, text);
				return -1;
			}
		case AMQP_CONNECTION_CLOSE_METHOD:
			{
				amqp_connection_close_t *m = f->payload.method.decoded;
				amqp_connection_close_ok_t ok;

				bytes_str(m->reply_text, text, sizeof(text));
				memset(&ok, 0, sizeof(ok));
				amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
				SC_AMQP_LOG(LOG_LVL_ERROR, a, "connection closed by the broker: %u %s", m->reply_code, text);
				return -1;
			}
		case AMQP_BASIC_CANCEL_METHOD:
			SC_AMQP_LOG(LOG_LVL_ERROR, a, "the broker cancelled our consumer (queue deleted?)");
			return -1;
		default:
			SC_AMQP_LOG(LOG_LVL_DEBUG, a, "ignoring method 0x%08x on channel %u", f->payload.method.id, f->channel);
			return 0;
	}
}

int
sc_amqp_heartbeat(struct sc_amqp *a)
{
	amqp_frame_t f;

	if (!a->conn)
		return -1;
	memset(&f, 0, sizeof(f));
	f.frame_type = AMQP_FRAME_HEARTBEAT;
	f.channel = 0;
	return amqp_send_frame(a->conn, &f) == AMQP_STATUS_OK ? 0 : -1;
}

/* A table entry of that key and kind, its value zero: the callers below set it. */
static amqp_table_entry_t
entry_of(const char *key, uint8_t kind)
{
	amqp_table_entry_t e;

	memset(&e, 0, sizeof(e));
	e.key = amqp_cstring_bytes(key);
	e.value.kind = kind;
	return e;
}

static amqp_table_entry_t
bool_entry(const char *key, int v)
{
	amqp_table_entry_t e = entry_of(key, AMQP_FIELD_KIND_BOOLEAN);

	e.value.value.boolean = v;
	return e;
}

/* A table entry holding a string (header or argument); v is not copied. */
amqp_table_entry_t
sc_amqp_bytes_entry(const char *key, amqp_bytes_t v)
{
	amqp_table_entry_t e = entry_of(key, AMQP_FIELD_KIND_UTF8);

	e.value.value.bytes = v;
	return e;
}

amqp_table_entry_t
sc_amqp_str_entry(const char *key, const char *v)
{
	return sc_amqp_bytes_entry(key, amqp_cstring_bytes(v));
}

static amqp_table_entry_t
i64_entry(const char *key, int64_t v)
{
	amqp_table_entry_t e = entry_of(key, AMQP_FIELD_KIND_I64);

	e.value.value.i64 = v;
	return e;
}

/*
 * One declare of the jobs queue (passive or not).  0 done; 1 refused with 406
 * because of `tolerate` (an argument name in the reply text; the channel is
 * reopened, nothing logged); -1 any other failure (logged by sc_amqp_reply_ok).
 */
static int
try_declare(struct sc_amqp *a, amqp_table_t args, int passive, const char *tolerate)
{
	const struct sc_config *cfg = a->cfg;
	amqp_rpc_reply_t r;
	char what[512];

	amqp_queue_declare(a->conn, SC_CH, amqp_cstring_bytes(cfg->queue), passive, !passive, 0, 0, args);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	if (tolerate && r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
	{
		amqp_channel_close_t *m = r.reply.decoded;
		amqp_channel_close_ok_t ok;

		if (m->reply_code == AMQP_PRECONDITION_FAILED &&
			memmem(m->reply_text.bytes, m->reply_text.len, tolerate, strlen(tolerate)))
		{
			memset(&ok, 0, sizeof(ok));
			amqp_send_method(a->conn, SC_CH, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
			amqp_channel_open(a->conn, SC_CH);
			return sc_amqp_reply_ok(a, amqp_get_rpc_reply(a->conn), "reopening the channel", NULL) < 0 ? -1 : 1;
		}
	}
	snprintf(what, sizeof(what), "declaring queue \"%s\" (durable, %s, x-dead-letter-exchange=%s%s)", cfg->queue,
			 cfg->queue_type, cfg->dead_letter_exchange, tolerate ? ", x-delivery-limit" : "");
	sc_amqp_reply_ok(a, r, what, NULL);
	return -1;
}

/*
 * Declare the jobs queue with args (x-delivery-limit last when quorum).  A
 * quorum queue that already exists without x-delivery-limit (declared before
 * release 1.1) or with another value is refused with 406; it is then used as
 * it is, with one warning: attempts are still counted from x-delivery-count,
 * only the broker's own cap is missing (docs/interop.md, "Topology").  Any
 * other mismatch (e.g. classic vs quorum) stays an error.
 */
static int
declare_jobs_queue(struct sc_amqp *a, amqp_table_t qtable)
{
	const struct sc_config *cfg = a->cfg;
	const char *lim = strcmp(cfg->queue_type, "quorum") == 0 ? "x-delivery-limit" : NULL;
	amqp_table_t none = {0, NULL};
	int rc = try_declare(a, qtable, 0, lim), other = 0;

	if (rc <= 0)
		return rc;
	qtable.num_entries--; /* without x-delivery-limit */
	rc = try_declare(a, qtable, 0, lim);
	if (rc == 1) /* it has another limit: take it as it is */
	{
		other = 1;
		rc = try_declare(a, none, 1, NULL);
	}
	if (rc < 0)
		return -1;
	SC_AMQP_LOG(LOG_LVL_WARN, a,
				"using the existing queue \"%s\" as it is: it was declared %s "
				"x-delivery-limit=%d; attempts are still counted from x-delivery-count, but RabbitMQ does "
				"not cap them at max_delivery_attempts (docs/interop.md)",
				cfg->queue, other ? "with another value than" : "without", cfg->max_delivery_attempts);
	return 0;
}

/*
 * Declare exchange, dead-letter exchange, dead queue, queue and bindings on
 * channel 1.  Every declare is idempotent when the arguments match; a
 * mismatch is a 406 that closes the channel, reported by sc_amqp_reply_ok.
 */
static int
declare_topology(struct sc_amqp *a)
{
	const struct sc_config *cfg = a->cfg;
	amqp_connection_state_t c = a->conn;
	static const char *const keys[] = {"share_created", "share_deleted", "share_count_update"};
	amqp_table_entry_t qargs[3];
	amqp_table_t args = {0, NULL};
	amqp_table_t qtable;
	char what[512];
	int nq = 0;

	amqp_exchange_declare(c, SC_CH, amqp_cstring_bytes(cfg->exchange), amqp_cstring_bytes("topic"), 0, 1, 0, 0, args);
	snprintf(what, sizeof(what), "declaring exchange \"%s\" (topic, durable)", cfg->exchange);
	if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(c), what, NULL) < 0)
		return -1;
	amqp_exchange_declare(c, SC_CH, amqp_cstring_bytes(cfg->dead_letter_exchange), amqp_cstring_bytes("fanout"), 0, 1,
						  0, 0, args);
	snprintf(what, sizeof(what), "declaring dead-letter exchange \"%s\" (fanout, durable)", cfg->dead_letter_exchange);
	if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(c), what, NULL) < 0)
		return -1;

	if (strcmp(cfg->queue_type, "quorum") == 0)
		qargs[nq++] = sc_amqp_str_entry("x-queue-type", "quorum");
	qtable.num_entries = nq;
	qtable.entries = qargs;
	amqp_queue_declare(c, SC_CH, amqp_cstring_bytes(cfg->dead_letter_queue), 0, 1, 0, 0, qtable);
	snprintf(what, sizeof(what), "declaring dead-letter queue \"%s\" (durable, %s)", cfg->dead_letter_queue,
			 cfg->queue_type);
	if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(c), what, NULL) < 0)
		return -1;
	amqp_queue_bind(c, SC_CH, amqp_cstring_bytes(cfg->dead_letter_queue), amqp_cstring_bytes(cfg->dead_letter_exchange),
					amqp_cstring_bytes(""), args);
	snprintf(what, sizeof(what), "binding \"%s\" to \"%s\"", cfg->dead_letter_queue, cfg->dead_letter_exchange);
	if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(c), what, NULL) < 0)
		return -1;

	qargs[nq++] = sc_amqp_str_entry("x-dead-letter-exchange", cfg->dead_letter_exchange);
	if (strcmp(cfg->queue_type, "quorum") == 0)
		qargs[nq++] = i64_entry("x-delivery-limit", cfg->max_delivery_attempts);
	qtable.num_entries = nq;
	if (declare_jobs_queue(a, qtable) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
	{
		amqp_queue_bind(c, SC_CH, amqp_cstring_bytes(cfg->queue), amqp_cstring_bytes(cfg->exchange),
						amqp_cstring_bytes(keys[i]), args);
		snprintf(what, sizeof(what), "binding \"%s\" to \"%s\" with \"%s\"", cfg->queue, cfg->exchange, keys[i]);
		if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(c), what, NULL) < 0)
			return -1;
	}
	return 0;
}

int
sc_amqp_declare_updates_exchange(struct sc_amqp *a)
{
	amqp_table_t args = {0, NULL};
	char what[512];

	amqp_exchange_declare(a->conn, SC_CH, amqp_cstring_bytes(a->cfg->updates_exchange), amqp_cstring_bytes("topic"), 0,
						  1, 0, 0, args);
	snprintf(what, sizeof(what), "declaring updates exchange \"%s\" (topic, durable)", a->cfg->updates_exchange);
	return sc_amqp_reply_ok(a, amqp_get_rpc_reply(a->conn), what, NULL);
}

/* Try one URL (len bytes at url).  0 on success with a->conn set. */
static int
connect_one(struct sc_amqp *a, const char *url, size_t len)
{
	const struct sc_config *cfg = a->cfg;
	char *copy = strndup(url, len);
	char red[512];
	struct amqp_connection_info info;
	amqp_socket_t *sock;
	struct timeval tv = {5, 0};
	amqp_table_entry_t caps[2], props[3];
	amqp_table_t client_props;
	amqp_rpc_reply_t r;
	int rc;

	if (!copy)
		return -1;
	{
		char *shown = strndup(url, len);

		log_redact(shown ? shown : "", red, sizeof(red));
		free(shown);
	}
	amqp_default_connection_info(&info);
	if (amqp_parse_url(copy, &info) != AMQP_STATUS_OK)
	{
		SC_AMQP_LOG(LOG_LVL_ERROR, a, "cannot parse amqp_url entry %s", red);
		free(copy);
		return -1;
	}
	a->conn = amqp_new_connection();
	if (!a->conn)
	{
		free(copy);
		return -1;
	}
	if (info.ssl)
	{
		sock = amqp_ssl_socket_new(a->conn);
		if (sock && cfg->amqp_cacert[0] && amqp_ssl_socket_set_cacert(sock, cfg->amqp_cacert) != AMQP_STATUS_OK)
		{
			SC_AMQP_LOG(LOG_LVL_ERROR, a, "cannot load amqp_cacert \"%s\"", cfg->amqp_cacert);
			goto fail;
		}
	}
	else
		sock = amqp_tcp_socket_new(a->conn);
	if (!sock)
	{
		SC_AMQP_LOG(LOG_LVL_ERROR, a, "cannot create a socket for %s", red);
		goto fail;
	}
	rc = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
	if (rc != AMQP_STATUS_OK)
	{
		SC_AMQP_LOG(LOG_LVL_WARN, a, "cannot connect to %s: %s", red, amqp_error_string2(rc));
		goto fail;
	}
	caps[0] = bool_entry("connection.blocked", 1);
	caps[1] = bool_entry("consumer_cancel_notify", 1);
	props[0].key = amqp_cstring_bytes("capabilities");
	props[0].value.kind = AMQP_FIELD_KIND_TABLE;
	props[0].value.value.table.num_entries = 2;
	props[0].value.value.table.entries = caps;
	props[1] = sc_amqp_str_entry("product", "sharecount-bridge");
	props[2] = sc_amqp_str_entry("connection_name", a->name);
	client_props.num_entries = 3;
	client_props.entries = props;
	r = amqp_login_with_properties(a->conn, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, cfg->heartbeat_s, &client_props,
								   AMQP_SASL_METHOD_PLAIN, info.user, info.password);
	if (sc_amqp_reply_ok(a, r, "login", NULL) < 0)
		goto fail;
	amqp_channel_open(a->conn, SC_CH);
	if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(a->conn), "opening a channel", NULL) < 0)
		goto fail;
	if (!a->no_topology && declare_topology(a) < 0)
		goto fail;
	SC_AMQP_LOG(LOG_LVL_INFO, a, "connected to %s", red);
	free(copy);
	return 0;

fail:
	amqp_destroy_connection(a->conn);
	a->conn = NULL;
	free(copy);
	return -1;
}

int
sc_amqp_connect(struct sc_amqp *a)
{
	const char *list = a->cfg->amqp_url;
	int n = 1;
	int first;

	for (const char *p = list; *p; p++)
		n += *p == ',';
	sc_amqp_disconnect(a);
	/* one round over the list from url_next: each URL once, in order */
	first = a->url_next % n;
	for (int k = 0; k < n && !sc_stop; k++)
	{
		int idx = (first + k) % n;
		const char *p = list;
		size_t len;

		for (int i = 0; i < idx; i++)
			p = strchr(p, ',') + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		len = strchr(p, ',') ? (size_t) (strchr(p, ',') - p) : strlen(p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (connect_one(a, p, len) == 0)
		{
			a->url_next = idx; /* stay on a working node */
			set_blocked(a, 0);
			a->aux_open = 0;
			a->backoff_ms = SC_RECONNECT_FIRST_MS;
			if (a->metric != SC_CONN_UNTRACKED)
				metrics_set_conn(a->metric, 1);
			return 0;
		}
		a->url_next = (idx + 1) % n;
	}
	return -1;
}

long
sc_amqp_queue_depth(struct sc_amqp *a, const char *queue)
{
	amqp_queue_declare_ok_t *ok;
	amqp_table_t none = {0, NULL};
	int chan_only;

	if (!a->conn)
		return -1;
	if (!a->aux_open)
	{
		amqp_channel_open(a->conn, SC_CH_AUX);
		if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(a->conn), "aux:opening the auxiliary channel", &chan_only) < 0)
			return -1;
		a->aux_open = 1;
	}
	ok = amqp_queue_declare(a->conn, SC_CH_AUX, amqp_cstring_bytes(queue), 1, 0, 0, 0, none);
	if (!ok)
	{
		sc_amqp_reply_ok(a, amqp_get_rpc_reply(a->conn), "aux:passive declare of the queue", &chan_only);
		return -1;
	}
	return (long) ok->message_count;
}

/*
 * Wait for the confirm of the single message just published on channel 1
 * (the connection has no consumer, so only confirms, returns and control
 * frames arrive).  0 acked; -1 nacked, returned, timed out or broken (why).
 */
static int
wait_confirm(struct sc_amqp *a, int timeout_ms, char *why, size_t len)
{
	int64_t end = clock_now_ms() + timeout_ms;
	int returned = 0;

	for (;;)
	{
		int64_t left = end - clock_now_ms();
		struct timeval tv = {left / 1000, (left % 1000) * 1000};
		amqp_frame_t f;
		int rc;

		if (left <= 0)
			return snprintf(why, len, "no confirm within %d ms", timeout_ms), -1;
		amqp_maybe_release_buffers(a->conn);
		rc = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
		if (rc == AMQP_STATUS_TIMEOUT)
			continue;
		if (rc != AMQP_STATUS_OK)
			return snprintf(why, len, "connection lost: %s", amqp_error_string2(rc)), -1;
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue; /* the content of a returned message */
		if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD)
			returned = 1;
		else if (f.payload.method.id == AMQP_BASIC_ACK_METHOD)
			return returned ? (snprintf(why, len, "unroutable (returned by the broker)"), -1) : 0;
		else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD)
			return snprintf(why, len, "nacked by the broker"), -1;
		else if (sc_amqp_async_frame(a, &f) < 0)
			return snprintf(why, len, "channel or connection closed by the broker"), -1;
	}
}

int
sc_amqp_publish_confirmed(struct sc_amqp *a, const char *exchange, const char *routing_key,
						  const amqp_basic_properties_t *props, amqp_bytes_t body, char *why, size_t len)
{
	int rc;

	if (!a->conn)
		return snprintf(why, len, "not connected"), -1;
	if (!a->confirming)
	{
		amqp_confirm_select(a->conn, SC_CH);
		if (sc_amqp_reply_ok(a, amqp_get_rpc_reply(a->conn), "confirm.select", NULL) < 0)
			return snprintf(why, len, "confirm.select refused"), -1;
		a->confirming = 1;
	}
	rc = amqp_basic_publish(a->conn, SC_CH, amqp_cstring_bytes(exchange), amqp_cstring_bytes(routing_key), 1, 0, props,
							body);
	if (rc != AMQP_STATUS_OK)
		return snprintf(why, len, "publish failed: %s", amqp_error_string2(rc)), -1;
	return wait_confirm(a, SC_DEAD_LETTER_CONFIRM_MS, why, len);
}
