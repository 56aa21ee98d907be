/*
 * publisher.c — the publisher role: outbox rows → RabbitMQ, with publisher
 * confirms, removing only confirmed rows.
 *
 * One cycle: BEGIN; sharecount_outbox_claim(publish_batch) (rows locked FOR
 * UPDATE SKIP LOCKED, so other bridges skip them); publish every row with
 * `mandatory` on channel 1 in confirm mode; wait until every delivery tag is
 * acked, nacked or the timeout passes; sharecount_outbox_done(acked ids that
 * were not returned); COMMIT.  Anything else — a nack, a basic.return, a
 * timeout, a broken connection, a crash — leaves the rows in the outbox to be
 * published again; the consumer's dedupe makes a second copy harmless.
 *
 * Idle: LISTEN sharecount_wakeup once per connection; after an empty claim,
 * sharecount_publisher_sleep(), claim again (closes the race with a writer
 * that saw no idle publisher), then poll() PQsocket and the AMQP socket up to
 * poll_interval_ms, then sharecount_publisher_wake().
 *
 * Rules: this thread owns its PGconn and its AMQP connection.  The claim
 * transaction is kept short (no waiting inside it except for confirms).
 * Confirms are tracked per row, since they arrive out of order and with
 * `multiple`.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp.h"
#include "bridge.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "publisher.h"

enum row_state { ROW_PENDING = 0, ROW_UNSENT, ROW_ACKED, ROW_NACKED };

struct pub_row
{
	const char *id;				/* points into the claim PGresult */
	const char *job_name;
	const char *job_id;
	const char *body;
	int			body_len;
	enum row_state state;
	int			returned;		/* basic.return seen for it */
};

struct publisher
{
	const struct sc_config *cfg;
	struct sc_amqp amqp;
	PGconn	   *pg;
	int			pg_backoff_ms;
	uint64_t	next_tag;		/* delivery tag of the next publish on channel 1 */
	int			have_sleep_fn;	/* sharecount_publisher_sleep() exists */
	long long	next_stats_ms;	/* next outbox gauge refresh */
	int			fail_backoff_ms;	/* pause after a failed cycle; reset by a good one */
	struct pub_row *rows;
};

static void
pg_drop(struct publisher *p)
{
	PQfinish(p->pg);
	p->pg = NULL;
	metrics_set_conn(SC_CONN_PUBLISHER_PG, 0);
}

static int
pg_ensure(struct publisher *p)
{
	if (p->pg && PQstatus(p->pg) == CONNECTION_OK)
		return 0;
	pg_drop(p);
	p->pg = sc_pg_connect(p->cfg->pg_conninfo, "sharecount-bridge publisher", "publisher", &p->amqp);
	if (!p->pg)
		return -1;
	if (sc_pg_command(p->pg, "LISTEN sharecount_wakeup", NULL, "publisher") < 0)
	{
		pg_drop(p);
		return -1;
	}
	p->have_sleep_fn = 1;
	p->pg_backoff_ms = 100;
	metrics_set_conn(SC_CONN_PUBLISHER_PG, 1);
	log_info("publisher: connected to PostgreSQL");
	return 0;
}

static int
amqp_ensure(struct publisher *p)
{
	if (p->amqp.conn)
		return 0;
	if (sc_amqp_connect(&p->amqp) < 0)
		return -1;
	amqp_confirm_select(p->amqp.conn, SC_CH);
	if (sc_amqp_reply_ok(&p->amqp, amqp_get_rpc_reply(p->amqp.conn), "confirm.select", NULL) < 0)
	{
		sc_amqp_disconnect(&p->amqp);
		return -1;
	}
	p->next_tag = 1;
	return 0;
}

/* Mark rows for an ack/nack of tag (and every earlier one if multiple). */
static void
mark(struct publisher *p, uint64_t base, int n, uint64_t tag, int multiple, enum row_state st)
{
	uint64_t	lo = multiple ? base : tag;

	if (tag < base)
		return;					/* a confirm from an earlier cycle */
	for (uint64_t t = lo < base ? base : lo; t <= tag && t < base + (uint64_t) n; t++)
		if (p->rows[t - base].state == ROW_PENDING)
			p->rows[t - base].state = st;
}

/*
 * Read one frame (waiting up to timeout_ms) and apply it to the rows of the
 * current cycle.  Returns 1 if a frame was handled, 0 on timeout, -1 if the
 * connection or channel is gone.
 */
static int
read_frame(struct publisher *p, uint64_t base, int n, int timeout_ms)
{
	amqp_frame_t f;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int			rc = amqp_simple_wait_frame_noblock(p->amqp.conn, &f, &tv);

	if (rc == AMQP_STATUS_TIMEOUT)
		return 0;
	if (rc != AMQP_STATUS_OK)
	{
		log_error("publisher: broker connection lost: %s", amqp_error_string2(rc));
		return -1;
	}
	if (f.frame_type != AMQP_FRAME_METHOD)
		return 1;
	switch (f.payload.method.id)
	{
		case AMQP_BASIC_ACK_METHOD:
			{
				amqp_basic_ack_t *m = f.payload.method.decoded;

				mark(p, base, n, m->delivery_tag, m->multiple, ROW_ACKED);
				return 1;
			}
		case AMQP_BASIC_NACK_METHOD:
			{
				amqp_basic_nack_t *m = f.payload.method.decoded;

				log_warn("publisher: broker nacked delivery tag %llu%s; the job stays in the outbox",
						 (unsigned long long) m->delivery_tag, m->multiple ? " and earlier" : "");
				mark(p, base, n, m->delivery_tag, m->multiple, ROW_NACKED);
				return 1;
			}
		case AMQP_BASIC_RETURN_METHOD:
			{
				amqp_basic_return_t *m = f.payload.method.decoded;
				amqp_message_t msg;
				amqp_rpc_reply_t r;
				char		rk[256],
							text[256];

				snprintf(rk, sizeof(rk), "%.*s", (int) m->routing_key.len, (char *) m->routing_key.bytes);
				snprintf(text, sizeof(text), "%.*s", (int) m->reply_text.len, (char *) m->reply_text.bytes);
				r = amqp_read_message(p->amqp.conn, f.channel, &msg, 0);
				if (r.reply_type != AMQP_RESPONSE_NORMAL)
					return sc_amqp_reply_ok(&p->amqp, r, "reading a returned message", NULL) < 0 ? -1 : 1;
				for (int i = 0; i < n; i++)
					if ((msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
						msg.properties.message_id.len == strlen(p->rows[i].job_id) &&
						memcmp(msg.properties.message_id.bytes, p->rows[i].job_id, msg.properties.message_id.len) == 0)
						p->rows[i].returned = 1;
				log_error("publisher: exchange \"%s\" returned a %s job (%s): no queue is bound for routing key "
						  "\"%s\"; the job stays in the outbox (check the bindings of queue \"%s\")",
						  p->cfg->exchange, rk, text, rk, p->cfg->queue);
				amqp_destroy_message(&msg);
				return 1;
			}
		default:
			return sc_amqp_async_frame(&p->amqp, &f) < 0 ? -1 : 1;
	}
}

/* Whether the AMQP connection has a frame ready without blocking. */
static int
amqp_readable(struct publisher *p)
{
	struct pollfd pf = {amqp_get_sockfd(p->amqp.conn), POLLIN, 0};

	return amqp_frames_enqueued(p->amqp.conn) || amqp_data_in_buffer(p->amqp.conn) ||
		poll(&pf, 1, 0) > 0;
}

/*
 * One claim/publish/confirm/done cycle.  Returns the number of rows claimed
 * (>= 0), or -1 if a connection broke (the transaction is rolled back).
 * *retry_later is set when rows were nacked/returned/unsent, so the caller
 * backs off instead of spinning on them.
 */
static int
cycle(struct publisher *p, int *retry_later)
{
	const struct sc_config *cfg = p->cfg;
	char		nbuf[16],
				err[512];
	const char *params[1] = {nbuf};
	PGresult   *claim,
			   *r;
	int			n,
				sent = 0,
				outstanding;
	uint64_t	base;
	long long	deadline;
	char	   *ids;
	size_t		idlen = 0;
	int			ndone = 0;

	*retry_later = 0;
	if (sc_pg_command(p->pg, "BEGIN", &p->amqp, "publisher") < 0)
		return -1;
	snprintf(nbuf, sizeof(nbuf), "%d", cfg->publish_batch);
	claim = sc_pg_exec(p->pg, "SELECT id, job_name, job_id, body FROM sharecount_outbox_claim($1::int)",
					   1, params, &p->amqp);
	if (!claim || PQresultStatus(claim) != PGRES_TUPLES_OK)
	{
		log_error("publisher: claiming outbox rows: %s", sc_pg_error(p->pg, claim, err, sizeof(err)));
		PQclear(claim);
		sc_pg_command(p->pg, "ROLLBACK", NULL, "publisher");
		return -1;
	}
	n = PQntuples(claim);
	if (n == 0)
	{
		PQclear(claim);
		return sc_pg_command(p->pg, "COMMIT", NULL, "publisher") < 0 ? -1 : 0;
	}

	base = p->next_tag;
	for (int i = 0; i < n; i++)
	{
		struct pub_row *row = &p->rows[i];

		row->id = PQgetvalue(claim, i, 0);
		row->job_name = PQgetvalue(claim, i, 1);
		row->job_id = PQgetvalue(claim, i, 2);
		row->body = PQgetvalue(claim, i, 3);
		row->body_len = PQgetlength(claim, i, 3);
		row->state = ROW_UNSENT;
		row->returned = 0;
	}
	for (int i = 0; i < n && !p->amqp.blocked; i++)
	{
		struct pub_row *row = &p->rows[i];
		amqp_basic_properties_t props;
		int			rc;

		memset(&props, 0, sizeof(props));
		props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
			AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
			AMQP_BASIC_APP_ID_FLAG;
		props.content_type = amqp_cstring_bytes("application/json");
		props.delivery_mode = 2;
		props.message_id = amqp_cstring_bytes(row->job_id);
		props.type = amqp_cstring_bytes(row->job_name);
		props.timestamp = (uint64_t) time(NULL);
		props.app_id = amqp_cstring_bytes("sharecount-bridge");
		rc = amqp_basic_publish(p->amqp.conn, SC_CH, amqp_cstring_bytes(cfg->exchange),
								amqp_cstring_bytes(row->job_name), 1, 0, &props,
								(amqp_bytes_t) {(size_t) row->body_len, (void *) row->body});
		if (rc != AMQP_STATUS_OK)
		{
			log_error("publisher: publishing: %s", amqp_error_string2(rc));
			goto broken;
		}
		row->state = ROW_PENDING;
		p->next_tag++;
		sent++;
		/* read confirms and connection.blocked as they come, every 64 messages */
		if ((i & 63) == 63)
			while (amqp_readable(p))
				if (read_frame(p, base, sent, 0) < 0)
					goto broken;
	}

	/* wait for the confirm window to drain */
	deadline = sc_now_ms() + cfg->confirm_timeout_ms;
	for (;;)
	{
		long long	left;
		int			rc;

		outstanding = 0;
		for (int i = 0; i < sent; i++)
			outstanding += p->rows[i].state == ROW_PENDING;
		if (outstanding == 0)
			break;
		left = deadline - sc_now_ms();
		if (left <= 0 && p->amqp.blocked)
		{
			/*
			 * The broker stopped reading from us (memory or disk alarm).
			 * Do not hold the claim transaction open for the length of an
			 * alarm: roll back (the rows stay) and keep the connection; the
			 * main loop waits for connection.unblocked before claiming again.
			 * Confirms that arrive later belong to an old cycle and are
			 * ignored; the republished copies are deduplicated downstream.
			 */
			log_warn("publisher: %d of %d publishes unconfirmed while the broker blocks us; rolling back, the jobs stay in the outbox",
					 outstanding, sent);
			PQclear(claim);
			sc_pg_command(p->pg, "ROLLBACK", NULL, "publisher");
			*retry_later = 1;
			return 0;
		}
		if (left <= 0)
		{
			log_error("publisher: %d of %d publishes not confirmed within %d ms; rolling back (the jobs stay in the outbox) and reconnecting",
					  outstanding, sent, cfg->confirm_timeout_ms);
			goto broken;
		}
		rc = read_frame(p, base, sent, left > 1000 ? 1000 : (int) left);
		if (rc < 0)
			goto broken;
	}

	/* remove what the broker confirmed and did not return */
	ids = malloc((size_t) n * 24 + 3);
	if (!ids)
		goto broken;
	ids[idlen++] = '{';
	for (int i = 0; i < n; i++)
	{
		struct pub_row *row = &p->rows[i];

		if (row->state != ROW_ACKED || row->returned)
		{
			*retry_later = 1;
			continue;
		}
		idlen += snprintf(ids + idlen, 24, "%s%s", ndone ? "," : "", row->id);
		ndone++;
	}
	ids[idlen++] = '}';
	ids[idlen] = '\0';
	if (ndone > 0)
	{
		const char *dp[1] = {ids};

		r = sc_pg_exec(p->pg, "SELECT sharecount_outbox_done($1::bigint[])", 1, dp, &p->amqp);
		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			log_error("publisher: removing published rows: %s (they will be published again)",
					  sc_pg_error(p->pg, r, err, sizeof(err)));
			PQclear(r);
			free(ids);
			PQclear(claim);
			sc_pg_command(p->pg, "ROLLBACK", NULL, "publisher");
			return -1;
		}
		PQclear(r);
	}
	free(ids);
	if (sc_pg_command(p->pg, "COMMIT", &p->amqp, "publisher") < 0)
	{
		PQclear(claim);
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (p->rows[i].state == ROW_ACKED && !p->rows[i].returned)
			metrics_count(SC_M_PUBLISHED, metrics_job_kind(p->rows[i].job_name), 1);
	log_debug("publisher: published %d of %d claimed jobs", ndone, n);
	PQclear(claim);
	return n;

broken:
	PQclear(claim);
	sc_pg_command(p->pg, "ROLLBACK", NULL, "publisher");
	sc_amqp_disconnect(&p->amqp);
	return -1;
}

/* SELECT a boolean-returning idle-mark function; tolerate its absence. */
static int
idle_mark(struct publisher *p, const char *sql)
{
	PGresult   *r;
	char		err[512];

	if (!p->have_sleep_fn)
		return 0;
	r = sc_pg_exec(p->pg, sql, 0, NULL, &p->amqp);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
	{
		PQclear(r);
		return 0;
	}
	if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
		strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42883") == 0)
	{
		log_warn("publisher: %s does not exist (old extension?); relying on polling", sql);
		p->have_sleep_fn = 0;
		PQclear(r);
		return 0;
	}
	log_error("publisher: %s: %s", sql, sc_pg_error(p->pg, r, err, sizeof(err)));
	PQclear(r);
	return -1;
}

/*
 * Wait up to poll_interval_ms for a wake-up notification, servicing the
 * AMQP connection (heartbeats, connection.blocked) meanwhile.
 */
static int
idle_wait(struct publisher *p)
{
	long long	end = sc_now_ms() + p->cfg->poll_interval_ms;
	PGnotify   *nt;
	int			woke = 0;

	while (!sc_stop && !woke)
	{
		long long	left = end - sc_now_ms();
		struct pollfd pf[2];
		int			rc;

		if (left <= 0)
			break;
		pf[0].fd = PQsocket(p->pg);
		pf[0].events = POLLIN;
		pf[1].fd = amqp_get_sockfd(p->amqp.conn);
		pf[1].events = POLLIN;
		pf[0].revents = pf[1].revents = 0;
		if (amqp_readable(p))
			rc = 1, pf[1].revents = POLLIN;
		else
			rc = poll(pf, 2, left > 200 ? 200 : (int) left);
		if (rc < 0 && errno != EINTR)
			return -1;
		if (pf[0].revents)
		{
			if (!PQconsumeInput(p->pg))
				return -1;
			while ((nt = PQnotifies(p->pg)) != NULL)
			{
				woke = 1;
				PQfreemem(nt);
			}
		}
		/* zero-timeout read: also sends a heartbeat when one is due */
		while (amqp_readable(p) || pf[1].revents)
		{
			pf[1].revents = 0;
			if (read_frame(p, 0, 0, 0) < 0)
			{
				sc_amqp_disconnect(&p->amqp);
				return -1;
			}
		}
		if (read_frame(p, 0, 0, 0) < 0)
		{
			sc_amqp_disconnect(&p->amqp);
			return -1;
		}
	}
	return 0;
}

/*
 * Refresh the outbox gauges (depth, oldest job age) from sharecount_stats()
 * every 5 s, outside any claim transaction.  A failure only leaves the
 * gauges stale: it is logged at debug level and retried next time.
 */
static void
refresh_outbox_gauges(struct publisher *p)
{
	PGresult   *r;

	if (sc_now_ms() < p->next_stats_ms)
		return;
	p->next_stats_ms = sc_now_ms() + 5000;
	r = sc_pg_exec(p->pg, "SELECT (s->>'outbox_depth')::bigint, (s->>'outbox_oldest_age_seconds')::float8 "
				   "FROM sharecount_stats() s", 0, NULL, &p->amqp);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		!PQgetisnull(r, 0, 0) && !PQgetisnull(r, 0, 1))
		metrics_set_outbox(atoll(PQgetvalue(r, 0, 0)), atof(PQgetvalue(r, 0, 1)));
	else
		log_debug("publisher: cannot read sharecount_stats() for the outbox gauges");
	PQclear(r);
}

void *
publisher_main(void *arg)
{
	struct publisher p;

	memset(&p, 0, sizeof(p));
	p.cfg = arg;
	p.pg_backoff_ms = 100;
	p.fail_backoff_ms = 100;
	sc_amqp_init(&p.amqp, p.cfg, "publisher", SC_CONN_PUBLISHER_AMQP);
	metrics_use_conn(SC_CONN_PUBLISHER_PG);
	p.rows = calloc((size_t) p.cfg->publish_batch, sizeof(struct pub_row));
	if (!p.rows)
	{
		log_error("publisher: out of memory");
		sc_stop = 1;
		return NULL;
	}
	log_info("publisher: started");
	while (!sc_stop)
	{
		int			retry_later = 0,
					n;

		if (pg_ensure(&p) < 0)
		{
			sc_amqp_sleep(&p.amqp, p.pg_backoff_ms);
			p.pg_backoff_ms = p.pg_backoff_ms * 2 > p.cfg->reconnect_max_ms ? p.cfg->reconnect_max_ms : p.pg_backoff_ms * 2;
			continue;
		}
		if (amqp_ensure(&p) < 0)
		{
			sc_backoff_sleep(&p.amqp.backoff_ms, p.cfg->reconnect_max_ms);
			continue;
		}
		if (p.amqp.blocked)
		{
			/* paused: only read frames until connection.unblocked */
			if (read_frame(&p, 0, 0, 200) < 0)
				sc_amqp_disconnect(&p.amqp);
			continue;
		}
		refresh_outbox_gauges(&p);
		n = cycle(&p, &retry_later);
		if (n < 0)
		{
			if (p.pg && PQstatus(p.pg) != CONNECTION_OK)
				pg_drop(&p);
			/* something broke: back off before the next attempt */
			sc_amqp_sleep(&p.amqp, p.fail_backoff_ms);
			p.fail_backoff_ms = p.fail_backoff_ms * 2 > p.cfg->reconnect_max_ms ? p.cfg->reconnect_max_ms : p.fail_backoff_ms * 2;
			continue;
		}
		p.fail_backoff_ms = 100;
		if (retry_later)
		{
			sc_amqp_sleep(&p.amqp, p.cfg->poll_interval_ms);
			continue;
		}
		if (n > 0)
			continue;
		/* nothing to publish: mark ourselves idle, re-check, then wait */
		if (idle_mark(&p, "SELECT sharecount_publisher_sleep()") < 0)
		{
			pg_drop(&p);
			continue;
		}
		n = cycle(&p, &retry_later);
		if (n == 0 && idle_wait(&p) < 0)
		{
			if (PQstatus(p.pg) != CONNECTION_OK)
				pg_drop(&p);
		}
		if (p.pg && PQstatus(p.pg) == CONNECTION_OK &&
			idle_mark(&p, "SELECT sharecount_publisher_wake()") < 0)
			pg_drop(&p);
	}
	sc_amqp_disconnect(&p.amqp);
	pg_drop(&p);
	free(p.rows);
	log_info("publisher: stopped");
	return NULL;
}
