/*
 * consumer.c — the consumer role: deliveries from the queue are collected
 * into a batch (up to apply_batch, or until apply_linger_ms has passed since
 * its first delivery), applied with ONE sharecount_apply_batch() call (one
 * transaction), and only after it committed: invalid ones are dead-lettered
 * with their reason (dlq.c: published to the dead-letter exchange, then
 * acked), NestJS send() requests get their reply (consumer_reply.c), and the
 * rest are acked with one basic.ack multiple.
 *
 * Failure rules (docs/bridge.md, "Failures, dead-lettering and attempt
 * counting"):
 * - What SQL cannot see (size, JSON, shape, no job name) is rejected in C
 *   before the transaction (job.c).
 * - The database is away (connection lost, cannot connect, 08xxx, 57P01-03;
 *   sc_pg_away): the batch is held, nothing acked, rejected or counted as an
 *   attempt; the thread reconnects with capped backoff, sending AMQP
 *   heartbeats meanwhile, and applies the same batch again (a commit whose
 *   outcome was unknown is deduplicated by jobId in SQL).
 * - Any other failure: a probe (one synthetic job on a reserved key, applied
 *   in a transaction that is rolled back) tells "the database is not ready"
 *   (the probe fails too: missing function or privilege, disk full, a broken
 *   trigger...; held like an outage, after a reconnect) from "something in
 *   this batch is at fault" (the probe applies).  Only the latter counts: the
 *   whole batch is retried up to SC_APPLY_BATCH_RETRIES times for errors that
 *   may pass (40001, 40P01, classes 53/55/57/58/XX), then split in halves,
 *   recursively; a half that applies is done, a single message that fails
 *   max_delivery_attempts times is dead-lettered with its last error.  With
 *   a quorum queue its attempts are RabbitMQ's x-delivery-count plus this
 *   delivery's failure, and a failure below the limit returns it to the queue
 *   (D_REQUEUE) so that the count survives restarts; when a batch fails,
 *   the deliveries in it that came back (count > 0) are applied alone first.
 * - On SIGTERM while holding or retrying, the batch is abandoned unsettled
 *   (the broker redelivers it; what was applied is deduplicated).
 *
 * Rules: this thread owns its PGconn and AMQP connection.  Every delivery of
 * a batch is settled (ack or reject) before the next batch is read, so an
 * ack `multiple` never covers a delivery that is not settled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "amqp.h"
#include "bridge.h"
#include "consumer.h"
#include "dlq.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"

enum dstatus { D_PENDING = 0, D_APPLIED, D_DUPLICATE, D_INVALID, D_REJECTED, D_REQUEUE };

struct delivery
{
	uint64_t	tag;
	struct sc_job job;
	enum dstatus status;
	char		reason[320];	/* why rejected / invalid */
	char	   *reply_to;		/* NestJS send(): where to answer */
	char	   *correlation_id;
	enum sc_job_kind kind;
	long long	received_ms;
	int			attempts;		/* failures applying it alone (in memory) */
	int			prior;			/* x-delivery-count: earlier returns (quorum) */
	amqp_envelope_t env;		/* as received (for the dead letter); owned */
};

struct consumer
{
	const struct sc_config *cfg;
	struct sc_amqp amqp;
	struct sc_amqp dl;			/* dead letters: opened per settle that has some */
	int			quorum;			/* queue_type = quorum: attempts counted by the broker */
	PGconn	   *pg;
	int			pg_backoff_ms;
	struct delivery *batch;
	int			n;
	long long	next_depth_ms;
	int			not_ready_ms;	/* next pause while the database is not ready */
	unsigned	probe_seq;		/* makes each probe's jobId unique */
	char		last_sqlstate[6];	/* of the last failed apply ("" if none) */
};

static char *
bytes_dup(amqp_bytes_t b)
{
	char	   *s = malloc(b.len + 1);

	if (s)
	{
		memcpy(s, b.bytes, b.len);
		s[b.len] = '\0';
	}
	return s;
}

static void
pg_drop(struct consumer *c)
{
	PQfinish(c->pg);
	c->pg = NULL;
	metrics_set_conn(SC_CONN_CONSUMER_PG, 0);
}

static int
pg_ensure(struct consumer *c)
{
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	pg_drop(c);
	c->pg = sc_pg_connect(c->cfg->pg_conninfo, "sharecount-bridge consumer", "consumer", &c->amqp);
	if (!c->pg)
		return -1;
	c->pg_backoff_ms = SC_RECONNECT_FIRST_MS;
	metrics_set_conn(SC_CONN_CONSUMER_PG, 1);
	log_info("connected to PostgreSQL");
	return 0;
}

static int
amqp_ensure(struct consumer *c)
{
	const struct sc_config *cfg = c->cfg;

	if (c->amqp.conn)
		return 0;
	if (sc_amqp_connect(&c->amqp) < 0)
		return -1;
	amqp_basic_qos(c->amqp.conn, SC_CH, 0, (uint16_t) cfg->prefetch, 0);
	if (sc_amqp_reply_ok(&c->amqp, amqp_get_rpc_reply(c->amqp.conn), "basic.qos", NULL) < 0)
		goto fail;
	amqp_basic_consume(c->amqp.conn, SC_CH, amqp_cstring_bytes(cfg->queue), amqp_empty_bytes,
					   0, 0, 0, amqp_empty_table);
	if (sc_amqp_reply_ok(&c->amqp, amqp_get_rpc_reply(c->amqp.conn), "basic.consume", NULL) < 0)
		goto fail;
	log_info("consuming from \"%s\" (prefetch %d)", cfg->queue, cfg->prefetch);
	return 0;
fail:
	sc_amqp_disconnect(&c->amqp);
	return -1;
}

static void
batch_clear(struct consumer *c)
{
	for (int i = 0; i < c->n; i++)
	{
		sc_job_free(&c->batch[i].job);
		free(c->batch[i].reply_to);
		free(c->batch[i].correlation_id);
		amqp_destroy_envelope(&c->batch[i].env);
	}
	memset(c->batch, 0, sizeof(struct delivery) * (size_t) c->n);
	c->n = 0;
}

/* Take one delivery into the batch (and ownership of env), parsing it. */
static void
add_delivery(struct consumer *c, amqp_envelope_t *env)
{
	struct delivery *d = &c->batch[c->n++];
	amqp_basic_properties_t *pr = &env->message.properties;
	char	   *type = (pr->_flags & AMQP_BASIC_TYPE_FLAG) ? bytes_dup(pr->type) : NULL;
	char	   *rk = bytes_dup(env->routing_key);
	struct sc_job_in in;

	memset(d, 0, sizeof(*d));
	d->tag = env->delivery_tag;
	d->received_ms = clock_now_ms();
	d->env = *env;
	d->prior = dlq_delivery_count(pr);
	if ((pr->_flags & AMQP_BASIC_REPLY_TO_FLAG) && pr->reply_to.len > 0)
		d->reply_to = bytes_dup(pr->reply_to);
	if (pr->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
		d->correlation_id = bytes_dup(pr->correlation_id);
	in.body = env->message.body.bytes;
	in.len = env->message.body.len;
	in.type = type;
	in.routing_key = rk;
	in.queue = c->cfg->queue;
	in.has_reply_to = d->reply_to != NULL;
	if (sc_job_parse(&in, &d->job, d->reason, sizeof(d->reason)) < 0)
		d->status = D_REJECTED;
	d->kind = metrics_job_kind(d->job.name[0] ? d->job.name : (type ? type : ""));
	metrics_count(SC_M_CONSUMED, d->kind, 1);
	free(type);
	free(rk);
}

/*
 * Collect deliveries: wait up to first_wait_ms for the first one, then keep
 * taking them until apply_batch or until apply_linger_ms has passed since
 * the batch's first delivery.  The linger is bounded from the first delivery,
 * not renewed by each new one: with a steady stream (a pipelined publisher
 * spreads deliveries evenly) a renewed linger would keep a batch open until
 * a gap of apply_linger_ms, adding that latency to every job in it.  Returns 0 (c->n may be 0), or -1 if the broker connection broke (the
 * batch is dropped: the broker requeues unacked deliveries).
 */
static int
collect(struct consumer *c, int first_wait_ms)
{
	int			wait_ms = first_wait_ms;
	long long	linger_end = clock_now_ms() + SC_LIVE(c->cfg, apply_linger_ms);

	while (c->n < c->cfg->apply_batch && !sc_stop)
	{
		amqp_envelope_t env;
		amqp_rpc_reply_t r;
		struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};

		amqp_maybe_release_buffers(c->amqp.conn);
		r = amqp_consume_message(c->amqp.conn, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_NORMAL)
		{
			if (c->n == 0)
				linger_end = clock_now_ms() + SC_LIVE(c->cfg, apply_linger_ms);
			add_delivery(c, &env);
			wait_ms = (int) (linger_end > clock_now_ms() ? linger_end - clock_now_ms() : 0);
			continue;
		}
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
			return 0;
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
		{
			amqp_frame_t f;
			struct timeval zero = {0, 0};
			int			rc = amqp_simple_wait_frame_noblock(c->amqp.conn, &f, &zero);

			if (rc == AMQP_STATUS_TIMEOUT)
				continue;
			if (rc != AMQP_STATUS_OK || sc_amqp_async_frame(&c->amqp, &f) < 0)
				goto broken;
			continue;
		}
		sc_amqp_reply_ok(&c->amqp, r, "consuming", NULL);
		goto broken;
	}
	return 0;
broken:
	if (c->n > 0)
		log_warn("broker connection lost with %d unacknowledged deliveries; the broker redelivers them", c->n);
	batch_clear(c);
	sc_amqp_disconnect(&c->amqp);
	return -1;
}

enum apply_rc { APPLY_OK = 0, APPLY_AWAY, APPLY_FAILED };

/* The statement that applies a JSON array of envelopes (the probe uses it too). */
#define APPLY_SQL \
	"SELECT ord, status, error FROM sharecount_apply_batch(" \
	"ARRAY(SELECT e FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, n) ORDER BY n))"

/* Note a failed apply: its SQLSTATE, and the reason of a lone delivery. */
static enum apply_rc
apply_failed(struct consumer *c, const PGresult *r, const int *idx, int k)
{
	char		err[512];
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	enum apply_rc rc = sc_pg_away(c->pg, r) ? APPLY_AWAY : APPLY_FAILED;

	snprintf(c->last_sqlstate, sizeof(c->last_sqlstate), "%s", st ? st : "");
	sc_pg_error(c->pg, r, err, sizeof(err));
	if (k == 1)
		sc_pg_error(c->pg, r, c->batch[idx[0]].reason, sizeof(c->batch[idx[0]].reason));
	log_warn("applying %d job(s) failed (%s): %s", k,
			 rc == APPLY_AWAY ? "database away, will retry" : "checking", err);
	return rc;
}

/*
 * Apply the deliveries idx[0..k-1] (all parsed, still pending) in one
 * sharecount_apply_batch() call.  On APPLY_OK their statuses are set.
 */
static enum apply_rc
apply(struct consumer *c, const int *idx, int k)
{
	size_t		cap = 2,
				len = 0;
	char	   *arr;
	const char *params[1];
	PGresult   *r;
	long long	t0 = clock_now_ms();

	for (int i = 0; i < k; i++)
		cap += strlen(c->batch[idx[i]].job.envelope) + 1;
	arr = malloc(cap + 1);
	if (!arr)
	{
		log_warn("out of memory building a batch of %d job(s)", k);
		snprintf(c->last_sqlstate, sizeof(c->last_sqlstate), "53200");
		return APPLY_FAILED;	/* counts as an attempt: halves need less */
	}
	arr[len++] = '[';
	for (int i = 0; i < k; i++)
	{
		size_t		l = strlen(c->batch[idx[i]].job.envelope);

		if (i)
			arr[len++] = ',';
		memcpy(arr + len, c->batch[idx[i]].job.envelope, l);
		len += l;
	}
	arr[len++] = ']';
	arr[len] = '\0';
	params[0] = arr;
	r = sc_pg_exec(c->pg, APPLY_SQL, 1, params, &c->amqp);
	free(arr);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		enum apply_rc rc = apply_failed(c, r, idx, k);

		PQclear(r);
		return rc;
	}
	if (PQntuples(r) != k)
	{
		log_error("sharecount_apply_batch returned %d rows for %d jobs", PQntuples(r), k);
		PQclear(r);
		c->last_sqlstate[0] = '\0';
		return APPLY_FAILED;
	}
	for (int row = 0; row < k; row++)
	{
		int			ord = atoi(PQgetvalue(r, row, 0));
		const char *st = PQgetvalue(r, row, 1);
		struct delivery *d;

		if (ord < 1 || ord > k)
			continue;
		d = &c->batch[idx[ord - 1]];
		if (!strcmp(st, "applied"))
			d->status = D_APPLIED;
		else if (!strcmp(st, "duplicate"))
			d->status = D_DUPLICATE;
		else
		{
			d->status = D_INVALID;
			snprintf(d->reason, sizeof(d->reason), "%s", PQgetisnull(r, row, 2) ? st : PQgetvalue(r, row, 2));
		}
	}
	PQclear(r);
	metrics_observe_apply_seconds((clock_now_ms() - t0) / 1000.0);
	return APPLY_OK;
}

/*
 * Is the database ready for jobs?  Applies one synthetic job on the reserved
 * key SC_PROBE_CONTENT_TYPE/SC_PROBE_CONTENT_ID through the same statement as
 * a batch, inside a transaction that is rolled back (nothing stays).
 * 1 ready, 0 not ready (why in buf), -1 the database is away.
 */
static int
probe(struct consumer *c, char *why, size_t len)
{
	char		body[320];
	const char *params[1] = {body};
	PGresult   *r;
	int			ready;

	snprintf(body, sizeof(body),
			 "[{\"pattern\":\"share_count_update\",\"data\":{\"jobId\":\"sharecount-bridge-probe-%ld-%u\","
			 "\"contentType\":\"%s\",\"contentId\":\"%s\",\"operation\":\"increment\","
			 "\"timestamp\":\"2000-01-01T00:00:00.000Z\"}}]",
			 (long) getpid(), ++c->probe_seq, SC_PROBE_CONTENT_TYPE, SC_PROBE_CONTENT_ID);
	r = sc_pg_exec(c->pg, "BEGIN", 0, NULL, &c->amqp);
	if (r && PQresultStatus(r) == PGRES_COMMAND_OK)
	{
		PQclear(r);
		r = sc_pg_exec(c->pg, APPLY_SQL, 1, params, &c->amqp);
	}
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
		ready = 1;
	else
	{
		ready = sc_pg_away(c->pg, r) ? -1 : 0;
		sc_pg_error(c->pg, r, why, len);
	}
	PQclear(r);
	if (ready >= 0)
	{
		r = sc_pg_exec(c->pg, "ROLLBACK", 0, NULL, &c->amqp);
		if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
			ready = -1;
		PQclear(r);
	}
	return ready;
}

/*
 * Hold: reconnect to PostgreSQL with capped backoff (keeping the broker
 * connection alive) until it answers.  -1 if stopping or the broker is gone.
 */
static int
hold_until_db(struct consumer *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->batch[i].status == D_PENDING)
			metrics_count(SC_M_FAILED, c->batch[i].kind, 1);
	for (;;)
	{
		sc_amqp_sleep(&c->amqp, c->pg_backoff_ms);
		c->pg_backoff_ms = backoff_next(c->pg_backoff_ms, SC_LIVE(c->cfg, reconnect_max_ms));
		if (sc_stop)
			return -1;
		if (c->pg && PQstatus(c->pg) != CONNECTION_OK)
			pg_drop(c);
		if (pg_ensure(c) == 0)
			return 0;
	}
}

/* Whether retrying the same batch may help (contention, resources, internal). */
static int
may_pass(const char *sqlstate)
{
	return !sqlstate[0] || !strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01") ||
		!strncmp(sqlstate, "53", 2) || !strncmp(sqlstate, "55", 2) || !strncmp(sqlstate, "57", 2) ||
		!strncmp(sqlstate, "58", 2) || !strncmp(sqlstate, "XX", 2);
}

/*
 * A non-away failure of idx[0..k-1]: 1 if it counts as an attempt (the probe
 * applies: something in these deliveries is at fault), 0 if the batch was
 * held (away: until the database answers again; not ready, i.e. the probe
 * fails too: one pause of capped, doubling length, after which the
 * connection is reopened, as a stale session may be the cause), -1 if
 * stopping.
 */
static int
judge_failure(struct consumer *c, int k)
{
	char		why[512];
	int			ready = probe(c, why, sizeof(why));

	if (ready > 0)
		return sc_stop ? -1 : 1;
	if (ready < 0)
		return hold_until_db(c) < 0 ? -1 : 0;
	log_warn("the database is not ready for jobs (a probe job fails too: %s); "
			 "holding %d deliveries without counting attempts, next try in %d ms", why, k, c->not_ready_ms);
	for (int i = 0; i < c->n; i++)
		if (c->batch[i].status == D_PENDING)
			metrics_count(SC_M_FAILED, c->batch[i].kind, 1);
	pg_drop(c);
	sc_amqp_sleep(&c->amqp, c->not_ready_ms);
	c->not_ready_ms = backoff_next(c->not_ready_ms, SC_LIVE(c->cfg, reconnect_max_ms));
	return sc_stop ? -1 : 0;
}

static int	apply_range(struct consumer *c, int *idx, int k, int retries);

/*
 * A failing batch holding deliveries that came back from a quorum queue
 * (x-delivery-count > 0: likely the poisoned ones) applies those alone
 * first, then the rest as one range: 1 done, 0 none there, -1 stopping.
 */
static int
isolate_returned(struct consumer *c, int *idx, int k)
{
	int			s = 0;

	for (int i = 0; i < k; i++)
		if (c->batch[idx[i]].prior > 0)
		{
			int			t = idx[s];

			idx[s++] = idx[i];
			idx[i] = t;
		}
	if (s == 0 || s == k)
		return 0;
	log_info("applying %d returned deliveries of a failing batch of %d alone first", s, k);
	for (int i = 0; i < s; i++)
		if (apply_range(c, idx + i, 1, 0) < 0)
			return -1;
	return apply_range(c, idx + s, k - s, 0) < 0 ? -1 : 1;
}

/*
 * Apply idx[0..k-1] until each has a final status: the whole range is retried
 * up to `retries` times (for errors that may pass), then split in halves
 * (each half with no retries of its own); a lone delivery is dead-lettered
 * after max_delivery_attempts counted failures.  0, or -1 if stopping.
 */
static int
apply_range(struct consumer *c, int *idx, int k, int retries)
{
	int			failures = 0;

	for (;;)
	{
		int			rc = pg_ensure(c) < 0 ? APPLY_AWAY : apply(c, idx, k);
		int			counted;

		if (rc == APPLY_OK)
		{
			c->not_ready_ms = SC_NOT_READY_PAUSE_MS;
			return 0;
		}
		counted = rc == APPLY_AWAY ? (hold_until_db(c) < 0 ? -1 : 0) : judge_failure(c, k);
		if (counted < 0)
			return -1;
		if (counted == 0)
			continue;
		failures++;
		if (k == 1)
		{
			struct delivery *d = &c->batch[idx[0]];

			if (d->prior + ++d->attempts >= SC_LIVE(c->cfg, max_delivery_attempts))
			{
				char		last[sizeof(d->reason)];

				memcpy(last, d->reason, sizeof(last));
				d->status = D_INVALID;
				snprintf(d->reason, sizeof(d->reason), "failed %d times applying it alone; last error: %.200s",
						 d->prior + d->attempts, last);
				return 0;
			}
			sc_amqp_sleep(&c->amqp, SC_APPLY_RETRY_PAUSE_MS * (d->prior + d->attempts));
			if (c->quorum)
			{
				d->status = D_REQUEUE;	/* the broker counts the return */
				return 0;
			}
			continue;
		}
		if (failures <= retries && may_pass(c->last_sqlstate))
		{
			sc_amqp_sleep(&c->amqp, SC_APPLY_RETRY_PAUSE_MS * failures);
			continue;
		}
		if ((rc = isolate_returned(c, idx, k)) != 0)
			return rc < 0 ? -1 : 0;
		log_info("splitting a failing batch of %d job(s) in halves", k);
		if (apply_range(c, idx, k / 2, 0) < 0)
			return -1;
		return apply_range(c, idx + k / 2, k - k / 2, 0);
	}
}

/*
 * Apply every pending, parsed delivery of the batch.  0 when each has a
 * final status; -1 if the batch must be abandoned unsettled (stopping while
 * the database is down or a retry is pending; the broker redelivers).
 */
static int
apply_all(struct consumer *c)
{
	int		   *idx = malloc(sizeof(int) * (size_t) (c->n ? c->n : 1));
	int			k = 0,
				rc;

	if (!idx)
		return -1;
	for (int i = 0; i < c->n; i++)
		if (c->batch[i].status == D_PENDING)
			idx[k++] = i;
	rc = k ? apply_range(c, idx, k, SC_APPLY_BATCH_RETRIES) : 0;
	free(idx);
	return rc;
}

/* Dead-letter d with its reason (docs/bridge.md, "Dead letters"); -1 if the broker connection broke. */
static int
dead_letter(struct consumer *c, const struct delivery *d)
{
	struct sc_dead_letter dlv;

	dlv.env = &d->env;
	dlv.reason = d->reason;
	dlv.attempts = d->status == D_INVALID && d->prior + d->attempts > 0 ? d->prior + d->attempts : 1;
	dlv.job_name = d->job.name;
	dlv.job_id = d->job.job_id;
	return dlq_settle(&c->dl, &c->amqp, d->tag, &dlv);
}

/*
 * Settle the batch after the commit: reject invalid deliveries without
 * requeue (dead-letter), answer send() requests, ack the rest with one
 * basic.ack multiple.  -1 if the broker connection broke (the broker
 * redelivers; SQL dedupes what was applied).  A message rejected before SQL
 * that carries reply_to is answered too (success false), so a NestJS send()
 * with a malformed body fails fast instead of timing out.
 */
static int
settle(struct consumer *c)
{
	uint64_t	ack_tag = 0;
	int			napplied = 0;
	struct timespec now;
	double		now_s;

	clock_gettime(CLOCK_REALTIME, &now);
	now_s = now.tv_sec + now.tv_nsec / 1e9;
	for (int i = 0; i < c->n; i++)
	{
		struct delivery *d = &c->batch[i];

		if (d->status == D_REJECTED || d->status == D_INVALID)
		{
			log_warn("dead-lettering delivery %llu (%s%s%s): %s", (unsigned long long) d->tag,
					 d->job.name[0] ? d->job.name : "no job name",
					 d->job.job_id ? " " : "", d->job.job_id ? d->job.job_id : "", d->reason);
			if (dead_letter(c, d) < 0)
				goto broken;
			metrics_count(SC_M_DEAD_LETTERED, d->kind, 1);
		}
		else if (d->status == D_REQUEUE)
		{
			if (amqp_basic_reject(c->amqp.conn, SC_CH, d->tag, 1) != AMQP_STATUS_OK)
				goto broken;
		}
		else
		{
			if (d->tag > ack_tag)
				ack_tag = d->tag;
			if (d->status == D_APPLIED)
			{
				metrics_count(SC_M_APPLIED, d->kind, 1);
				napplied++;
				if (d->job.timestamp > 0)
					metrics_observe_lag_seconds(now_s - d->job.timestamp > 0 ? now_s - d->job.timestamp : 0);
			}
			else
				metrics_count(SC_M_DUPLICATE, d->kind, 1);
		}
		if (d->reply_to && d->status != D_REQUEUE && (d->job.is_request || d->status == D_REJECTED))
			consumer_reply(&c->amqp, c->pg, &d->job, d->reply_to, d->correlation_id, d->received_ms,
						   d->status == D_APPLIED || d->status == D_DUPLICATE);
	}
	if (ack_tag && amqp_basic_ack(c->amqp.conn, SC_CH, ack_tag, 1) != AMQP_STATUS_OK)
		goto broken;
	sc_amqp_disconnect(&c->dl);
	log_debug("batch of %d settled (%d applied)", c->n, napplied);
	return 0;
broken:
	sc_amqp_disconnect(&c->dl);
	log_error("broker connection lost while acknowledging; the broker redelivers (deduplicated)");
	sc_amqp_disconnect(&c->amqp);
	return -1;
}

void *
consumer_main(void *arg)
{
	struct consumer c;

	log_set_role("consumer");
	memset(&c, 0, sizeof(c));
	c.cfg = arg;
	c.pg_backoff_ms = SC_RECONNECT_FIRST_MS;
	c.not_ready_ms = SC_NOT_READY_PAUSE_MS;
	sc_amqp_init(&c.amqp, c.cfg, "consumer", NULL, SC_CONN_CONSUMER_AMQP);
	sc_amqp_init(&c.dl, c.cfg, "consumer (dead letters)", "dead letters", SC_CONN_UNTRACKED);
	c.quorum = strcmp(c.cfg->queue_type, "quorum") == 0;
	metrics_use_conn(SC_CONN_CONSUMER_PG);
	c.batch = calloc((size_t) c.cfg->apply_batch, sizeof(struct delivery));
	if (!c.batch)
	{
		log_error("out of memory");
		sc_stop = 1;
		return NULL;
	}
	log_info("started");
	while (!sc_stop)
	{
		if (pg_ensure(&c) < 0)
		{
			sc_amqp_sleep(&c.amqp, c.pg_backoff_ms);
			c.pg_backoff_ms = backoff_next(c.pg_backoff_ms, SC_LIVE(c.cfg, reconnect_max_ms));
			continue;
		}
		if (amqp_ensure(&c) < 0)
		{
			sc_amqp_backoff_sleep(&c.amqp, SC_LIVE(c.cfg, reconnect_max_ms));
			continue;
		}
		if (clock_now_ms() >= c.next_depth_ms)
		{
			long		depth = sc_amqp_queue_depth(&c.amqp, c.cfg->queue);

			metrics_set_queue_depth(depth);
			c.next_depth_ms = clock_now_ms() + SC_QUEUE_DEPTH_EVERY_MS;
		}
		if (collect(&c, 200) < 0 || c.n == 0)
			continue;
		if (apply_all(&c) < 0)
		{
			log_warn("stopping with %d deliveries unapplied; the broker redelivers them", c.n);
			batch_clear(&c);
			sc_amqp_disconnect(&c.amqp);
			break;
		}
		settle(&c);
		batch_clear(&c);
	}
	sc_amqp_disconnect(&c.amqp);
	pg_drop(&c);
	free(c.batch);
	log_info("stopped");
	return NULL;
}
