/*
 * publisher.c — the publisher role: outbox rows → RabbitMQ, with publisher
 * confirms, removing only confirmed rows.
 *
 * Pipeline of publish_pipeline slots (K).  A slot is one PostgreSQL
 * connection and at most one open claim transaction: BEGIN;
 * sharecount_outbox_claim(publish_batch) (rows locked FOR UPDATE SKIP LOCKED,
 * so other slots and other bridges skip them); publish every row with
 * `mandatory` on channel 1 in confirm mode; then the slot waits.  While it
 * waits for its confirms another slot claims and publishes.  All slots share
 * the one AMQP connection, its channel and its delivery-tag sequence: a slot
 * owns the contiguous tags [base, base + sent), so an ack/nack (with
 * `multiple`, possibly covering several slots) is dispatched by tag.  As soon
 * as every tag of a slot is settled it runs sharecount_outbox_done(acked ids
 * that were not returned) and COMMITs.  Anything else — a nack, a
 * basic.return, a timeout, a broken connection, a crash — leaves the rows in
 * the outbox to be published again; the consumer's dedupe makes a second copy
 * harmless.  With K = 1 this is the sequential claim → publish → confirm →
 * done → COMMIT cycle.
 *
 * Claim pacing: a claim that filled publish_batch is followed at once by the
 * next (on a free slot); after a partial claim the next one waits
 * CLAIM_GAP_MS, after consecutive empty claims the gap doubles up to
 * CLAIM_GAP_MAX_MS, so a slot waiting for slow confirms does not make the
 * others spin on empty claims.  The gap applies only while a slot is in
 * flight: once none is, a free slot claims at once.
 *
 * Idle: LISTEN sharecount_wakeup on slot 0's connection; only when no slot
 * has a transaction open and a claim found nothing:
 * sharecount_publisher_sleep(), claim again on slot 0 (closes the race with
 * a writer that saw no idle publisher), then poll() PQsocket and the AMQP
 * socket up to poll_interval_ms, then sharecount_publisher_wake().
 *
 * Failures: a broken AMQP connection (or a confirm timeout) rolls back every
 * slot in flight; a PostgreSQL error rolls back only its slot (its
 * connection is dropped if broken) and delays the next claim with a doubling
 * backoff.  Dropped connections are reopened when no slot is in flight.
 * Nacked rows stay in the outbox; after SC_NACKED_CLAIMS_BEFORE_RECONNECT
 * claims in a row were nacked and none acked, no slot claims, and once none
 * is in flight the AMQP connection is replaced by a fresh one after a
 * doubling pause (docs/bridge.md "Broker failover").  Only then, with no tag
 * outstanding, so no confirm of the old channel can be taken for one of the
 * new channel (tags restart at 1).
 *
 * Rules: one thread owns the slots' PGconns and the AMQP connection; every
 * wait reads AMQP frames (heartbeats, connection.blocked) or sends
 * heartbeats (sc_pg_exec).  Claim transactions are kept short (no waiting
 * inside them except for confirms).  A slot's rows point into its claim
 * PGresult, freed when the slot commits or rolls back.
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

#define SC_MAX_PIPELINE 8		/* upper bound of publish_pipeline (config.c) */
#define CLAIM_GAP_MS 1			/* pause after a claim that did not fill a batch */
#define CLAIM_GAP_MAX_MS 8		/* ... doubled per empty claim up to this */

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

struct slot
{
	PGconn	   *pg;
	int			busy;			/* a claim transaction is open */
	PGresult   *claim;			/* its rows (busy only) */
	struct pub_row *rows;		/* publish_batch entries */
	int			n;				/* rows claimed */
	int			sent;			/* rows published: tags base .. base + sent - 1 */
	uint64_t	base;
	long long	deadline;		/* give up on the confirms at this time */
};

struct publisher
{
	const struct sc_config *cfg;
	struct sc_amqp amqp;
	struct slot slots[SC_MAX_PIPELINE];
	int			nslots;
	int			pg_backoff_ms;
	uint64_t	next_tag;		/* delivery tag of the next publish on channel 1 */
	int			have_sleep_fn;	/* sharecount_publisher_sleep() exists */
	long long	next_stats_ms;	/* next outbox gauge refresh */
	int			fail_backoff_ms;	/* pause after a failure; reset by a good claim */
	long long	retry_at_ms;	/* no claim before this time (failure, nack) */
	long long	gap_until_ms;	/* no claim before this while a slot is in flight */
	int			empty_claims;	/* consecutive empty claims while slots were in flight */
	int			nacked_claims;	/* claims in a row settled with nacks and no ack */
	int			nack_backoff_ms;	/* pause before the next nack reconnect */
	long		nack_reconnects;	/* fresh connections opened because of nacks */
};

static int
any_busy(const struct publisher *p)
{
	for (int i = 0; i < p->nslots; i++)
		if (p->slots[i].busy)
			return 1;
	return 0;
}

/* Close a slot's connection; an open transaction dies with it (rolled back). */
static void
slot_drop(struct slot *s)
{
	PQclear(s->claim);
	s->claim = NULL;
	s->busy = 0;
	PQfinish(s->pg);
	s->pg = NULL;
	metrics_set_conn(SC_CONN_PUBLISHER_PG, 0);
}

static int
slot_ok(const struct slot *s)
{
	return s->pg && PQstatus(s->pg) == CONNECTION_OK;
}

/* Open every slot's connection that is not open (call with no slot busy). */
static int
pg_ensure(struct publisher *p)
{
	int			opened = 0;

	for (int i = 0; i < p->nslots; i++)
	{
		struct slot *s = &p->slots[i];

		if (slot_ok(s))
			continue;
		slot_drop(s);
		s->pg = sc_pg_connect(p->cfg->pg_conninfo, "sharecount-bridge publisher", "publisher", &p->amqp);
		if (!s->pg)
			return -1;
		if (i == 0 && sc_pg_command(s->pg, "LISTEN sharecount_wakeup", NULL, "publisher") < 0)
		{
			slot_drop(s);
			return -1;
		}
		if (i == 0)
			p->have_sleep_fn = 1;
		opened++;
	}
	if (opened)
	{
		p->pg_backoff_ms = 100;
		metrics_set_conn(SC_CONN_PUBLISHER_PG, 1);
		log_info("publisher: connected to PostgreSQL (%d connection%s)", opened, opened > 1 ? "s" : "");
	}
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

/* Roll back a slot's claim transaction (its rows stay in the outbox). */
static void
slot_rollback(struct slot *s)
{
	if (!s->busy)
		return;
	PQclear(s->claim);
	s->claim = NULL;
	s->busy = 0;
	if (slot_ok(s) && sc_pg_command(s->pg, "ROLLBACK", NULL, "publisher") < 0)
		slot_drop(s);
}

/* The AMQP connection is unusable: roll back every slot, disconnect. */
static void
amqp_broken(struct publisher *p)
{
	for (int i = 0; i < p->nslots; i++)
		slot_rollback(&p->slots[i]);
	sc_amqp_disconnect(&p->amqp);
}

/* A failure: wait before the next claim, doubling up to reconnect_max_ms. */
static void
fail_backoff(struct publisher *p)
{
	p->retry_at_ms = sc_now_ms() + p->fail_backoff_ms;
	p->fail_backoff_ms = p->fail_backoff_ms * 2 > p->cfg->reconnect_max_ms ? p->cfg->reconnect_max_ms : p->fail_backoff_ms * 2;
}

/*
 * Mark a slot's rows for an ack/nack of tag (and every earlier one if
 * multiple).  Tags outside the slot's range belong to another slot or to a
 * rolled-back claim and are ignored here.
 */
static void
mark(struct slot *s, uint64_t tag, int multiple, enum row_state st)
{
	uint64_t	lo = multiple ? s->base : tag;

	if (!s->busy || tag < s->base)
		return;
	for (uint64_t t = lo < s->base ? s->base : lo; t <= tag && t < s->base + (uint64_t) s->sent; t++)
		if (s->rows[t - s->base].state == ROW_PENDING)
			s->rows[t - s->base].state = st;
}

static void
mark_all(struct publisher *p, uint64_t tag, int multiple, enum row_state st)
{
	for (int i = 0; i < p->nslots; i++)
		mark(&p->slots[i], tag, multiple, st);
}

/*
 * Read one frame (waiting up to timeout_ms) and apply it to the slots in
 * flight.  Returns 1 if a frame was handled, 0 on timeout, -1 if the
 * connection or channel is gone (the caller calls amqp_broken).
 */
static int
read_frame(struct publisher *p, int timeout_ms)
{
	amqp_frame_t f;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int			rc;

	/*
	 * rabbitmq-c decodes every frame (each basic.ack of a confirm) into the
	 * channel's memory pool, which is only recycled by amqp_release_buffers:
	 * without this the pool grew by ~1.7 MiB per million jobs (P6,
	 * bench/p6_memory.sh).  Nothing decoded from an earlier frame is kept.
	 */
	amqp_maybe_release_buffers(p->amqp.conn);
	rc = amqp_simple_wait_frame_noblock(p->amqp.conn, &f, &tv);

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

				mark_all(p, m->delivery_tag, m->multiple, ROW_ACKED);
				return 1;
			}
		case AMQP_BASIC_NACK_METHOD:
			{
				amqp_basic_nack_t *m = f.payload.method.decoded;

				log_debug("publisher: broker nacked delivery tag %llu%s",
						  (unsigned long long) m->delivery_tag, m->multiple ? " and earlier" : "");
				mark_all(p, m->delivery_tag, m->multiple, ROW_NACKED);
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
				for (int k = 0; k < p->nslots; k++)
				{
					struct slot *s = &p->slots[k];

					for (int i = 0; s->busy && i < s->sent; i++)
						if ((msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
							msg.properties.message_id.len == strlen(s->rows[i].job_id) &&
							memcmp(msg.properties.message_id.bytes, s->rows[i].job_id, msg.properties.message_id.len) == 0)
							s->rows[i].returned = 1;
				}
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

/* Handle every frame that is already there; -1 if the connection broke. */
static int
drain_frames(struct publisher *p)
{
	while (amqp_readable(p))
		if (read_frame(p, 0) < 0)
			return -1;
	return 0;
}

/*
 * Claim on slot s (free, connected) and publish what it claimed.  Returns the
 * number of rows claimed (>= 0; 0 = nothing, the transaction is committed),
 * -1 on a PostgreSQL failure (the slot is rolled back) or -2 if the AMQP
 * connection broke (every slot is rolled back, the connection closed).
 */
static int
claim(struct publisher *p, struct slot *s)
{
	const struct sc_config *cfg = p->cfg;
	char		nbuf[16],
				err[512];
	const char *params[1] = {nbuf};
	int			n;

	if (sc_pg_command(s->pg, "BEGIN", &p->amqp, "publisher") < 0)
		return -1;
	snprintf(nbuf, sizeof(nbuf), "%d", cfg->publish_batch);
	s->claim = sc_pg_exec(s->pg, "SELECT id, job_name, job_id, body FROM sharecount_outbox_claim($1::int)",
						  1, params, &p->amqp);
	if (!s->claim || PQresultStatus(s->claim) != PGRES_TUPLES_OK)
	{
		log_error("publisher: claiming outbox rows: %s", sc_pg_error(s->pg, s->claim, err, sizeof(err)));
		s->busy = 1;
		slot_rollback(s);
		return -1;
	}
	n = PQntuples(s->claim);
	if (n == 0)
	{
		PQclear(s->claim);
		s->claim = NULL;
		return sc_pg_command(s->pg, "COMMIT", NULL, "publisher") < 0 ? -1 : 0;
	}

	s->busy = 1;
	s->n = n;
	s->sent = 0;
	s->base = p->next_tag;
	for (int i = 0; i < n; i++)
	{
		struct pub_row *row = &s->rows[i];

		row->id = PQgetvalue(s->claim, i, 0);
		row->job_name = PQgetvalue(s->claim, i, 1);
		row->job_id = PQgetvalue(s->claim, i, 2);
		row->body = PQgetvalue(s->claim, i, 3);
		row->body_len = PQgetlength(s->claim, i, 3);
		row->state = ROW_UNSENT;
		row->returned = 0;
	}
	for (int i = 0; i < n && !p->amqp.blocked; i++)
	{
		struct pub_row *row = &s->rows[i];
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
			amqp_broken(p);
			return -2;
		}
		row->state = ROW_PENDING;
		p->next_tag++;
		s->sent++;
		/* read confirms and connection.blocked as they come, every 64 messages */
		if ((i & 63) == 63 && drain_frames(p) < 0)
		{
			amqp_broken(p);
			return -2;
		}
	}
	s->deadline = sc_now_ms() + cfg->confirm_timeout_ms;
	{
		int			waiting = 0;

		for (int i = 0; i < p->nslots; i++)
			waiting += p->slots[i].busy && &p->slots[i] != s;
		if (waiting)
			log_debug("publisher: slot %d published %d of %d claimed jobs while %d other slot%s wait%s for confirms",
					  (int) (s - p->slots), s->sent, n, waiting, waiting > 1 ? "s" : "", waiting > 1 ? "" : "s");
	}
	return n;
}

/*
 * Slot s has no confirm outstanding: count its nacks (metric, one WARN per
 * claim) and keep the run of claims nacked without any ack that leads to a
 * fresh connection (nack_reconnect).
 */
static void
note_nacks(struct publisher *p, const struct slot *s)
{
	int			acked = 0,
				nacked = 0;

	for (int i = 0; i < s->sent; i++)
	{
		if (s->rows[i].state == ROW_ACKED)
			acked++;
		else if (s->rows[i].state == ROW_NACKED)
		{
			nacked++;
			metrics_count(SC_M_NACKED, metrics_job_kind(s->rows[i].job_name), 1);
		}
	}
	if (acked > 0)
	{
		p->nacked_claims = 0;
		p->nack_backoff_ms = SC_NACK_RECONNECT_MIN_MS;
	}
	else if (nacked > 0)
		p->nacked_claims++;
	if (nacked > 0)
		log_warn("publisher: the broker nacked %d of %d published jobs (%d claim%s in a row without an ack); "
				 "they stay in the outbox and are published again",
				 nacked, s->sent, p->nacked_claims, p->nacked_claims == 1 ? "" : "s");
}

/*
 * Repeated nacks, no slot in flight: replace the AMQP connection by a fresh
 * one after a pause that doubles while nack reconnects do not help
 * (docs/bridge.md "Broker failover").  The caller reconnects.
 */
static void
nack_reconnect(struct publisher *p)
{
	p->nack_reconnects++;
	log_warn("publisher: %d claims in a row nacked by the broker (a quorum queue without a leader after a "
			 "failover?); opening a fresh connection in %d ms (nack reconnect %ld)",
			 p->nacked_claims, p->nack_backoff_ms, p->nack_reconnects);
	sc_amqp_disconnect(&p->amqp);
	p->nacked_claims = 0;
	sc_amqp_sleep(NULL, p->nack_backoff_ms);
	p->nack_backoff_ms = p->nack_backoff_ms * 2 > p->cfg->reconnect_max_ms ?
		p->cfg->reconnect_max_ms : p->nack_backoff_ms * 2;
}

/*
 * Slot s has no confirm outstanding: remove what the broker confirmed and
 * did not return, COMMIT.  0 on success (*retry_later set if some rows stay
 * because they were nacked, returned or not sent); -1 on a PostgreSQL
 * failure (the slot is rolled back).
 */
static int
slot_finish(struct publisher *p, struct slot *s, int *retry_later)
{
	char		err[512];
	char	   *ids;
	size_t		idlen = 0;
	int			ndone = 0;

	ids = malloc((size_t) s->n * 24 + 3);
	if (!ids)
	{
		log_error("publisher: out of memory");
		slot_rollback(s);
		return -1;
	}
	ids[idlen++] = '{';
	for (int i = 0; i < s->n; i++)
	{
		struct pub_row *row = &s->rows[i];

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
		PGresult   *r = sc_pg_exec(s->pg, "SELECT sharecount_outbox_done($1::bigint[])", 1, dp, &p->amqp);

		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			log_error("publisher: removing published rows: %s (they will be published again)",
					  sc_pg_error(s->pg, r, err, sizeof(err)));
			PQclear(r);
			free(ids);
			slot_rollback(s);
			return -1;
		}
		PQclear(r);
	}
	free(ids);
	if (sc_pg_command(s->pg, "COMMIT", &p->amqp, "publisher") < 0)
	{
		PQclear(s->claim);
		s->claim = NULL;
		s->busy = 0;
		return -1;
	}
	for (int i = 0; i < s->n; i++)
		if (s->rows[i].state == ROW_ACKED && !s->rows[i].returned)
			metrics_count(SC_M_PUBLISHED, metrics_job_kind(s->rows[i].job_name), 1);
	log_debug("publisher: published %d of %d claimed jobs", ndone, s->n);
	PQclear(s->claim);
	s->claim = NULL;
	s->busy = 0;
	return 0;
}

/*
 * Commit every slot whose confirms are all in; handle slots past their
 * confirm deadline.  Returns 0, -1 if a slot failed on PostgreSQL (only that
 * slot is rolled back), or -2 if the AMQP connection was given up (every
 * slot rolled back).
 */
static int
settle(struct publisher *p, int *retry_later)
{
	int			rc = 0;

	for (int k = 0; k < p->nslots; k++)
	{
		struct slot *s = &p->slots[k];
		int			outstanding = 0;

		if (!s->busy)
			continue;
		for (int i = 0; i < s->sent; i++)
			outstanding += s->rows[i].state == ROW_PENDING;
		if (outstanding == 0)
		{
			note_nacks(p, s);
			if (slot_finish(p, s, retry_later) < 0)
				rc = -1;
			continue;
		}
		if (sc_now_ms() < s->deadline)
			continue;
		if (p->amqp.blocked)
		{
			/*
			 * The broker stopped reading from us (memory or disk alarm).
			 * Do not hold the claim transaction open for the length of an
			 * alarm: roll back (the rows stay) and keep the connection; no
			 * slot claims until connection.unblocked.  Confirms that
			 * arrive later match no slot and are ignored; the republished
			 * copies are deduplicated downstream.
			 */
			log_warn("publisher: %d of %d publishes unconfirmed while the broker blocks us; rolling back, the jobs stay in the outbox",
					 outstanding, s->sent);
			slot_rollback(s);
			*retry_later = 1;
			continue;
		}
		log_error("publisher: %d of %d publishes not confirmed within %d ms; rolling back (the jobs stay in the outbox) and reconnecting",
				  outstanding, s->sent, p->cfg->confirm_timeout_ms);
		amqp_broken(p);
		return -2;
	}
	return rc;
}

/* SELECT a boolean-returning idle-mark function on slot 0; tolerate its absence. */
static int
idle_mark(struct publisher *p, const char *sql)
{
	PGconn	   *conn = p->slots[0].pg;
	PGresult   *r;
	char		err[512];

	if (!p->have_sleep_fn)
		return 0;
	r = sc_pg_exec(conn, sql, 0, NULL, &p->amqp);
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
	log_error("publisher: %s: %s", sql, sc_pg_error(conn, r, err, sizeof(err)));
	PQclear(r);
	return -1;
}

/*
 * Wait up to poll_interval_ms for a wake-up notification on slot 0's
 * connection, servicing the AMQP connection (heartbeats, connection.blocked)
 * meanwhile.  Called with no slot in flight.
 */
static int
idle_wait(struct publisher *p)
{
	PGconn	   *conn = p->slots[0].pg;
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
		pf[0].fd = PQsocket(conn);
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
			if (!PQconsumeInput(conn))
				return -1;
			while ((nt = PQnotifies(conn)) != NULL)
			{
				woke = 1;
				PQfreemem(nt);
			}
		}
		/* zero-timeout read: also sends a heartbeat when one is due */
		while (amqp_readable(p) || pf[1].revents)
		{
			pf[1].revents = 0;
			if (read_frame(p, 0) < 0)
			{
				sc_amqp_disconnect(&p->amqp);
				return -1;
			}
		}
		if (read_frame(p, 0) < 0)
		{
			sc_amqp_disconnect(&p->amqp);
			return -1;
		}
	}
	return 0;
}

/*
 * Refresh the outbox gauges (depth, oldest job age) from sharecount_stats()
 * every 5 s on a free slot's connection, outside any claim transaction.  A
 * failure only leaves the gauges stale: it is logged at debug level and
 * retried next time.
 */
static void
refresh_outbox_gauges(struct publisher *p, struct slot *s)
{
	PGresult   *r;

	if (sc_now_ms() < p->next_stats_ms)
		return;
	p->next_stats_ms = sc_now_ms() + 5000;
	r = sc_pg_exec(s->pg, "SELECT (s->>'outbox_depth')::bigint, (s->>'outbox_oldest_age_seconds')::float8 "
				   "FROM sharecount_stats() s", 0, NULL, &p->amqp);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		!PQgetisnull(r, 0, 0) && !PQgetisnull(r, 0, 1))
		metrics_set_outbox(atoll(PQgetvalue(r, 0, 0)), atof(PQgetvalue(r, 0, 1)));
	else
		log_debug("publisher: cannot read sharecount_stats() for the outbox gauges");
	PQclear(r);
}

/* A slot that can take a claim now, or NULL. */
static struct slot *
free_slot(struct publisher *p)
{
	for (int i = 0; i < p->nslots; i++)
		if (!p->slots[i].busy && slot_ok(&p->slots[i]))
			return &p->slots[i];
	return NULL;
}

/*
 * Nothing in flight and a claim found nothing: the wake-up protocol of
 * docs/wakeup.md on slot 0.  If the re-check claim finds rows, slot 0 is in
 * flight when this returns (and the sleep mark is already released).
 */
static void
go_idle(struct publisher *p)
{
	struct slot *s0 = &p->slots[0];
	int			n;

	if (idle_mark(p, "SELECT sharecount_publisher_sleep()") < 0)
	{
		slot_drop(s0);
		return;
	}
	n = claim(p, s0);
	if (n == 0 && idle_wait(p) < 0)
	{
		if (!slot_ok(s0))
			slot_drop(s0);
	}
	if (slot_ok(s0) && idle_mark(p, "SELECT sharecount_publisher_wake()") < 0)
		slot_drop(s0);
	if (n < 0)
		fail_backoff(p);
}

/* When the next claim may start. */
static long long
next_claim_at(const struct publisher *p)
{
	if (any_busy(p) && p->gap_until_ms > p->retry_at_ms)
		return p->gap_until_ms;
	return p->retry_at_ms;
}

/*
 * How long the event loop may wait for a frame: until the earliest confirm
 * deadline, and, if a slot could claim, until the next claim is due.
 */
static int
wait_ms(struct publisher *p)
{
	long long	now = sc_now_ms();
	long long	until = now + 200;	/* sc_stop is checked at least this often */

	if (p->nacked_claims >= SC_NACKED_CLAIMS_BEFORE_RECONNECT && !any_busy(p))
		return 0;				/* nack_reconnect is due at the top of the loop */

	for (int i = 0; i < p->nslots; i++)
		if (p->slots[i].busy && p->slots[i].deadline < until)
			until = p->slots[i].deadline;
	if (!sc_stop && !p->amqp.blocked && p->nacked_claims < SC_NACKED_CLAIMS_BEFORE_RECONNECT &&
		free_slot(p) && next_claim_at(p) < until)
		until = next_claim_at(p);
	return until <= now ? 0 : (int) (until - now);
}

void *
publisher_main(void *arg)
{
	struct publisher p;

	memset(&p, 0, sizeof(p));
	p.cfg = arg;
	p.pg_backoff_ms = 100;
	p.fail_backoff_ms = 100;
	p.nack_backoff_ms = SC_NACK_RECONNECT_MIN_MS;
	p.nslots = p.cfg->publish_pipeline < 1 ? 1 :
		p.cfg->publish_pipeline > SC_MAX_PIPELINE ? SC_MAX_PIPELINE : p.cfg->publish_pipeline;
	sc_amqp_init(&p.amqp, p.cfg, "publisher", SC_CONN_PUBLISHER_AMQP);
	metrics_use_conn(SC_CONN_PUBLISHER_PG);
	for (int i = 0; i < p.nslots; i++)
	{
		p.slots[i].rows = calloc((size_t) p.cfg->publish_batch, sizeof(struct pub_row));
		if (!p.slots[i].rows)
		{
			log_error("publisher: out of memory");
			sc_stop = 1;
			for (int k = 0; k < i; k++)
				free(p.slots[k].rows);
			return NULL;
		}
	}
	log_info("publisher: started (%d claim transaction%s in flight at most)", p.nslots, p.nslots > 1 ? "s" : "");

	/* on SIGTERM: no new claims, but settle (or give up) the slots in flight */
	while (!sc_stop || any_busy(&p))
	{
		int			retry_later = 0,
					rc;
		struct slot *s;

		if (!any_busy(&p))
		{
			if (p.nacked_claims >= SC_NACKED_CLAIMS_BEFORE_RECONNECT && !sc_stop)
				nack_reconnect(&p);
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
				if (read_frame(&p, 200) < 0)
					amqp_broken(&p);
				continue;
			}
		}

		/* commit what the confirms read so far settle */
		rc = settle(&p, &retry_later);
		if (rc < 0)
			fail_backoff(&p);
		if (retry_later)
		{
			/* nacked/returned/unsent rows: do not spin on them */
			long long	later = sc_now_ms() + p.cfg->poll_interval_ms;

			if (p.retry_at_ms < later)
				p.retry_at_ms = later;
		}
		if (!p.amqp.conn)
			continue;

		s = free_slot(&p);
		if (!sc_stop && s && !p.amqp.blocked && p.nacked_claims < SC_NACKED_CLAIMS_BEFORE_RECONNECT &&
			sc_now_ms() >= next_claim_at(&p))
		{
			int			n;
			int			was_busy = any_busy(&p);

			refresh_outbox_gauges(&p, s);
			n = claim(&p, s);
			if (n < 0)
			{
				fail_backoff(&p);
				continue;
			}
			p.fail_backoff_ms = 100;
			if (n > 0)
			{
				p.gap_until_ms = n == p.cfg->publish_batch ? 0 : sc_now_ms() + CLAIM_GAP_MS;
				p.empty_claims = 0;
				continue;
			}
			if (!was_busy)
			{
				/* nothing in flight and nothing to claim: sleep */
				p.empty_claims = 0;
				go_idle(&p);
				continue;
			}
			p.gap_until_ms = sc_now_ms() + (CLAIM_GAP_MS << p.empty_claims);
			if ((CLAIM_GAP_MS << p.empty_claims) < CLAIM_GAP_MAX_MS)
				p.empty_claims++;
		}

		/* wait for a confirm, a claim that is due, or a confirm deadline */
		if (amqp_readable(&p))
			rc = drain_frames(&p);
		else
			rc = read_frame(&p, wait_ms(&p));
		if (rc < 0)
		{
			amqp_broken(&p);
			fail_backoff(&p);
		}
	}
	amqp_broken(&p);
	for (int i = 0; i < p.nslots; i++)
	{
		slot_drop(&p.slots[i]);
		free(p.slots[i].rows);
	}
	log_info("publisher: stopped");
	return NULL;
}
