/*
 * publisher.c — the publisher role: outbox rows → RabbitMQ, with publisher
 * confirms, removing only confirmed rows.
 *
 * Pipeline of publish_pipeline slots (K).  A slot is one PostgreSQL
 * connection and at most one open claim transaction: BEGIN;
 * sharecount_outbox_claim_packed(publish_batch) (rows taken for the
 * transaction, so other slots and other bridges skip them; the jobs as one
 * value, split by publisher_rows.c, with sharecount_outbox_claim() as the
 * fallback of an older schema); publish every row with
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
 * SC_CLAIM_GAP_MS, or SC_CLAIM_LOADED_GAP_MS while the publisher claims
 * SC_PACE_LOADED_PER_S jobs/s or more (publisher_partial_gap_ms, pace.h:
 * under load, fewer and larger claims); after consecutive empty claims the gap doubles up to
 * SC_CLAIM_GAP_MAX_MS, so a slot waiting for slow confirms does not make the
 * others spin on empty claims.  The gap applies only while a slot is in
 * flight: once none is, a free slot claims at once.
 *
 * Idle (publisher_idle.c): LISTEN sharecount_wakeup on slot 0's connection;
 * only when no slot has a transaction open and a claim found nothing:
 * sharecount_publisher_sleep(), claim again on slot 0 (closes the race with
 * a writer that saw no idle publisher), then poll() PQsocket and the AMQP
 * socket up to poll_interval_ms, then sharecount_publisher_wake().
 *
 * Frames (publisher_confirm.c): acks, nacks and returns are applied to the
 * slots by delivery tag; other frames go to amqp.c.
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
 * Prepared statements: the claim and the done are prepared on a slot's
 * connection at their first use there (pgconn_exec_prepared, docs/bridge.md
 * "Prepared statements"); inside the claim transaction a statement the server
 * lost fails like any other statement (rolled back, claimed again later,
 * prepared again then).
 *
 * Rules: one thread owns the slots' PGconns and the AMQP connection; every
 * wait reads AMQP frames (heartbeats, connection.blocked) or sends
 * heartbeats (pgconn_run).  Claim transactions are kept short (no waiting
 * inside them except for confirms).  A slot's rows point into its claim
 * PGresult (into its one packed value, split in place), freed when the slot
 * commits or rolls back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp.h"
#include "bridge.h"
#include "log.h"
#include "metrics.h"
#include "pace.h"
#include "pgconn.h"
#include "publisher.h"
#include "publisher_int.h"

/* The done, prepared once per slot connection (s->prep); the claims' are in publisher_rows.c. */
static const struct pgconn_stmt done_stmt = {"sharecount_bridge_done", "SELECT sharecount_outbox_done($1::bigint[])", 1,
											 0x2};

static int
any_busy(const struct publisher *p)
{
	for (int i = 0; i < p->nslots; i++)
		if (p->slots[i].busy)
			return 1;
	return 0;
}

/* Close a slot's connection; an open transaction dies with it (rolled back). */
void
publisher_slot_drop(struct slot *s)
{
	PQclear(s->claim);
	s->claim = NULL;
	s->busy = 0;
	PQfinish(s->pg);
	s->pg = NULL;
	memset(&s->prep, 0, sizeof(s->prep));
	metrics_set_conn(SC_CONN_PUBLISHER_PG, 0);
}

int
publisher_slot_ok(const struct slot *s)
{
	return s->pg && PQstatus(s->pg) == CONNECTION_OK;
}

/* Open every slot's connection that is not open (call with no slot busy). */
static int
publisher_pg_ensure(struct publisher *p)
{
	int opened = 0;

	for (int i = 0; i < p->nslots; i++)
	{
		struct slot *s = &p->slots[i];

		if (publisher_slot_ok(s))
			continue;
		publisher_slot_drop(s);
		s->pg = pgconn_open(p->cfg->pg_conninfo, "sharecount-bridge publisher", &p->amqp);
		if (!s->pg)
			return -1;
		if (pgconn_command(s->pg, "SET lock_timeout = " SC_STR(SC_PUBLISHER_LOCK_TIMEOUT_MS), NULL) < 0 ||
			(i == 0 && pgconn_command(s->pg, "LISTEN sharecount_wakeup", NULL) < 0))
		{
			publisher_slot_drop(s);
			return -1;
		}
		opened++;
	}
	if (opened)
	{
		p->pg_backoff_ms = SC_RECONNECT_FIRST_MS;
		metrics_set_conn(SC_CONN_PUBLISHER_PG, 1);
		log_info("connected to PostgreSQL (%d connection%s)", opened, opened > 1 ? "s" : "");
	}
	return 0;
}

static int
publisher_amqp_ensure(struct publisher *p)
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
	if (publisher_slot_ok(s) && pgconn_command(s->pg, "ROLLBACK", NULL) < 0)
		publisher_slot_drop(s);
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
void
publisher_fail_backoff(struct publisher *p)
{
	p->retry_at_ms = clock_now_ms() + p->fail_backoff_ms;
	p->fail_backoff_ms = backoff_next(p->fail_backoff_ms, SC_LIVE(p->cfg, reconnect_max_ms));
}

/*
 * Claim on slot s (free, connected) and publish what it claimed.  Returns the
 * number of rows claimed (>= 0; 0 = nothing, the transaction is committed),
 * -1 on a PostgreSQL failure (the slot is rolled back) or -2 if the AMQP
 * connection broke (every slot is rolled back, the connection closed).
 */
int
publisher_claim(struct publisher *p, struct slot *s)
{
	const struct sc_config *cfg = p->cfg;
	char nbuf[16], err[512];
	const char *params[1] = {nbuf};
	int n, packed;

	if (pgconn_command(s->pg, "BEGIN", &p->amqp) < 0)
		return -1;
	snprintf(nbuf, sizeof(nbuf), "%d", cfg->publish_batch);
	s->claim = publisher_run_claim(p, s, params, &packed);
	if (!s->claim || PQresultStatus(s->claim) != PGRES_TUPLES_OK)
		log_error("claiming outbox rows: %s", pgconn_error(s->pg, s->claim, err, sizeof(err)));
	if (!s->claim || PQresultStatus(s->claim) != PGRES_TUPLES_OK ||
		(n = publisher_claimed_rows(s, packed, cfg->publish_batch)) < 0)
	{
		s->busy = 1;
		slot_rollback(s);
		return -1;
	}
	if (n == 0)
	{
		PQclear(s->claim);
		s->claim = NULL;
		return pgconn_command(s->pg, "COMMIT", NULL) < 0 ? -1 : 0;
	}

	s->busy = 1;
	s->n = n;
	s->sent = 0;
	s->base = p->next_tag;
	for (int i = 0; i < n; i++)
	{
		s->rows[i].state = ROW_UNSENT;
		s->rows[i].returned = 0;
	}
	for (int i = 0; i < n && !p->amqp.blocked; i++)
	{
		struct pub_row *row = &s->rows[i];
		amqp_basic_properties_t props;
		int rc;

		memset(&props, 0, sizeof(props));
		props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
			AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
		props.content_type = amqp_cstring_bytes("application/json");
		props.delivery_mode = 2;
		props.message_id = amqp_cstring_bytes(row->job_id);
		props.type = amqp_cstring_bytes(row->job_name);
		props.timestamp = (uint64_t) time(NULL);
		props.app_id = amqp_cstring_bytes("sharecount-bridge");
		rc = amqp_basic_publish(p->amqp.conn, SC_CH, amqp_cstring_bytes(cfg->exchange),
								amqp_cstring_bytes(row->job_name), 1, 0, &props,
								(amqp_bytes_t){(size_t) row->body_len, (void *) row->body});
		if (rc != AMQP_STATUS_OK)
		{
			log_error("publishing: %s", amqp_error_string2(rc));
			amqp_broken(p);
			return -2;
		}
		row->state = ROW_PENDING;
		p->next_tag++;
		s->sent++;
		/* read confirms and connection.blocked as they come, every 64 messages */
		if ((i & 63) == 63 && publisher_drain_frames(p) < 0)
		{
			amqp_broken(p);
			return -2;
		}
	}
	s->deadline = clock_now_ms() + SC_LIVE(cfg, confirm_timeout_ms);
	{
		int waiting = 0;

		for (int i = 0; i < p->nslots; i++)
			waiting += p->slots[i].busy && &p->slots[i] != s;
		if (waiting)
		{
			metrics_count_overlapped_claim();
			log_debug("slot %d published %d of %d claimed jobs while %d other slot%s wait%s for confirms",
					  (int) (s - p->slots), s->sent, n, waiting, waiting > 1 ? "s" : "", waiting > 1 ? "" : "s");
		}
	}
	return n;
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
	char err[512];
	char *ids;
	size_t idlen = 0;
	int ndone = 0;

	ids = malloc((size_t) s->n * 24 + 3);
	if (!ids)
	{
		log_error("out of memory");
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
		PGresult *r = pgconn_run_prepared(s->pg, &done_stmt, &s->prep, dp, &p->amqp);

		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			log_error("removing published rows: %s (they will be published again)",
					  pgconn_error(s->pg, r, err, sizeof(err)));
			PQclear(r);
			free(ids);
			slot_rollback(s);
			return -1;
		}
		PQclear(r);
	}
	free(ids);
	if (pgconn_command(s->pg, "COMMIT", &p->amqp) < 0)
	{
		PQclear(s->claim);
		s->claim = NULL;
		s->busy = 0;
		return -1;
	}
	for (int i = 0; i < s->n; i++)
		if (s->rows[i].state == ROW_ACKED && !s->rows[i].returned)
			metrics_count(SC_M_PUBLISHED, metrics_job_kind(s->rows[i].job_name), 1);
	log_debug("published %d of %d claimed jobs", ndone, s->n);
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
publisher_settle(struct publisher *p, int *retry_later)
{
	int rc = 0;

	for (int k = 0; k < p->nslots; k++)
	{
		struct slot *s = &p->slots[k];
		int outstanding = 0;

		if (!s->busy)
			continue;
		for (int i = 0; i < s->sent; i++)
			outstanding += s->rows[i].state == ROW_PENDING;
		if (outstanding == 0)
		{
			publisher_note_nacks(p, s);
			if (slot_finish(p, s, retry_later) < 0)
				rc = -1;
			continue;
		}
		if (clock_now_ms() < s->deadline)
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
			log_warn(
				"%d of %d publishes unconfirmed while the broker blocks us; rolling back, the jobs stay in the outbox",
				outstanding, s->sent);
			slot_rollback(s);
			*retry_later = 1;
			continue;
		}
		log_error(
			"%d of %d publishes not confirmed within %d ms; rolling back (the jobs stay in the outbox) and reconnecting",
			outstanding, s->sent, SC_LIVE(p->cfg, confirm_timeout_ms));
		amqp_broken(p);
		return -2;
	}
	return rc;
}

/* A slot that can take a claim now, or NULL. */
static struct slot *
free_slot(struct publisher *p)
{
	for (int i = 0; i < p->nslots; i++)
		if (!p->slots[i].busy && publisher_slot_ok(&p->slots[i]))
			return &p->slots[i];
	return NULL;
}

/* When the next claim may start. */
static int64_t
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
	int64_t now = clock_now_ms();
	int64_t until = now + SC_PUBLISHER_WAIT_SLICE_MS; /* sc_stop is checked at least this often */

	if (p->nacked_claims >= SC_NACKED_CLAIMS_BEFORE_RECONNECT && !any_busy(p))
		return 0; /* nack_reconnect is due at the top of the loop */

	for (int i = 0; i < p->nslots; i++)
		if (p->slots[i].busy && p->slots[i].deadline < until)
			until = p->slots[i].deadline;
	if (!sc_stop && !p->amqp.blocked && p->nacked_claims < SC_NACKED_CLAIMS_BEFORE_RECONNECT && free_slot(p) &&
		next_claim_at(p) < until)
		until = next_claim_at(p);
	return until <= now ? 0 : (int) (until - now);
}

/*
 * With no slot in flight: a nack reconnect if one is due, then (re)open the
 * PostgreSQL and AMQP connections; while the broker blocks us, only read
 * frames.  Returns 1 when the loop may go on to settle and claim, 0 when it
 * should start over (after a backoff or a frame).
 */
static int
ready_to_claim(struct publisher *p)
{
	if (p->nacked_claims >= SC_NACKED_CLAIMS_BEFORE_RECONNECT && !sc_stop)
		publisher_nack_reconnect(p);
	if (publisher_pg_ensure(p) < 0)
	{
		sc_amqp_sleep(&p->amqp, p->pg_backoff_ms);
		p->pg_backoff_ms = backoff_next(p->pg_backoff_ms, SC_LIVE(p->cfg, reconnect_max_ms));
		return 0;
	}
	if (publisher_amqp_ensure(p) < 0)
	{
		sc_amqp_backoff_sleep(&p->amqp, SC_LIVE(p->cfg, reconnect_max_ms));
		return 0;
	}
	if (p->amqp.blocked)
	{
		/* paused: only read frames until connection.unblocked */
		if (publisher_read_frame(p, 200) < 0)
			amqp_broken(p);
		return 0;
	}
	return 1;
}

/*
 * The pause after a partial claim (0 < rows < publish_batch): SC_CLAIM_GAP_MS
 * (freshness), or SC_CLAIM_LOADED_GAP_MS while the publisher claims
 * SC_PACE_LOADED_PER_S jobs/s or more (under load: fewer, larger claims).
 */
int
publisher_partial_gap_ms(int per_s)
{
	return per_s >= SC_PACE_LOADED_PER_S ? SC_CLAIM_LOADED_GAP_MS : SC_CLAIM_GAP_MS;
}

/*
 * Claim on free slot s and pace the next claim (SC_CLAIM_GAP_MS); an empty
 * claim with nothing in flight leads to the idle protocol.  Returns 1 if the
 * loop should start over at once, 0 if it should wait for frames.
 */
static int
claim_next(struct publisher *p, struct slot *s)
{
	int n;
	int was_busy = any_busy(p);

	publisher_refresh_outbox_gauges(p, s);
	n = publisher_claim(p, s);
	if (n < 0)
	{
		publisher_fail_backoff(p);
		return 1;
	}
	p->fail_backoff_ms = SC_RECONNECT_FIRST_MS;
	sc_pace_add(&p->pace, n, clock_now_ms());
	if (n > 0)
	{
		int per_s = sc_pace_per_s(&p->pace, clock_now_ms()), gap = publisher_partial_gap_ms(per_s);

		if (sc_pace_note(&p->pace, gap != SC_CLAIM_GAP_MS))
			log_debug("claiming %d jobs/s: %d ms between partial claims", per_s, gap);
		p->gap_until_ms = n == p->cfg->publish_batch ? 0 : clock_now_ms() + gap;
		p->empty_claims = 0;
		return 1;
	}
	if (!was_busy)
	{
		/* nothing in flight and nothing to claim: sleep */
		p->empty_claims = 0;
		publisher_go_idle(p);
		return 1;
	}
	p->gap_until_ms = clock_now_ms() + (SC_CLAIM_GAP_MS << p->empty_claims);
	if ((SC_CLAIM_GAP_MS << p->empty_claims) < SC_CLAIM_GAP_MAX_MS)
		p->empty_claims++;
	return 0;
}

/* The state of a new publisher: slots with their row arrays.  -1 on out of memory. */
static int
publisher_init(struct publisher *p, const struct sc_config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->pg_backoff_ms = SC_RECONNECT_FIRST_MS;
	p->fail_backoff_ms = SC_RECONNECT_FIRST_MS;
	p->nack_backoff_ms = SC_NACK_RECONNECT_MIN_MS;
	p->nslots = cfg->publish_pipeline < 1		? 1 :
		cfg->publish_pipeline > SC_MAX_PIPELINE ? SC_MAX_PIPELINE :
												  cfg->publish_pipeline;
	sc_amqp_init(&p->amqp, cfg, "publisher", NULL, SC_CONN_PUBLISHER_AMQP);
	metrics_use_conn(SC_CONN_PUBLISHER_PG);
	for (int i = 0; i < p->nslots; i++)
	{
		p->slots[i].rows = calloc((size_t) cfg->publish_batch, sizeof(struct pub_row));
		if (!p->slots[i].rows)
		{
			log_error("out of memory");
			for (int k = 0; k < i; k++)
				free(p->slots[k].rows);
			return -1;
		}
	}
	return 0;
}

void *
publisher_main(void *arg)
{
	struct publisher p;

	log_set_role("publisher");
	if (publisher_init(&p, arg) < 0)
	{
		sc_stop = 1;
		return NULL;
	}
	log_info("started (%d claim transaction%s in flight at most)", p.nslots, p.nslots > 1 ? "s" : "");

	/* on SIGTERM: no new claims, but settle (or give up) the slots in flight */
	while (!sc_stop || any_busy(&p))
	{
		int retry_later = 0, rc;
		struct slot *s;

		if (!any_busy(&p) && !ready_to_claim(&p))
			continue;

		/* commit what the confirms read so far settle */
		rc = publisher_settle(&p, &retry_later);
		if (rc < 0)
			publisher_fail_backoff(&p);
		if (retry_later)
		{
			/* nacked/returned/unsent rows: do not spin on them */
			int64_t later = clock_now_ms() + SC_LIVE(p.cfg, poll_interval_ms);

			if (p.retry_at_ms < later)
				p.retry_at_ms = later;
		}
		if (!p.amqp.conn)
			continue;

		s = free_slot(&p);
		if (!sc_stop && s && !p.amqp.blocked && p.nacked_claims < SC_NACKED_CLAIMS_BEFORE_RECONNECT &&
			clock_now_ms() >= next_claim_at(&p) && claim_next(&p, s))
			continue;

		/* wait for a confirm, a claim that is due, or a confirm deadline */
		if (publisher_amqp_readable(&p))
			rc = publisher_drain_frames(&p);
		else
			rc = publisher_read_frame(&p, wait_ms(&p));
		if (rc < 0)
		{
			amqp_broken(&p);
			publisher_fail_backoff(&p);
		}
	}
	amqp_broken(&p);
	for (int i = 0; i < p.nslots; i++)
	{
		publisher_slot_drop(&p.slots[i]);
		free(p.slots[i].rows);
	}
	log_info("stopped");
	return NULL;
}
