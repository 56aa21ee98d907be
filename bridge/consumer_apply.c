/*
 * consumer_apply.c — the consumer's apply: the batch's pending deliveries in
 * ONE sharecount_apply_json() call (one transaction: the envelopes as one
 * JSON array in text, read by the extension without building a jsonb,
 * docs/sql.md), and what a failure leads to.
 *
 * Failure rules (docs/bridge.md, "Failures, dead-lettering and attempt
 * counting"):
 * - What SQL cannot see (size, JSON, shape, no job name) is rejected in C
 *   before the transaction (job.c).
 * - The database is away (connection lost, cannot connect, 08xxx, 57Pxx;
 *   pgconn_away): the batch is held, nothing acked, rejected or counted as an
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
 * Count-change events (docs/live.md "Publishing"): with publish_events the
 * same call also returns the keys the batch changed (with_changes = true,
 * same transaction); they are kept in c->changes and offered to the events
 * publisher by consumer.c after the batch is settled.
 *
 * Prepared statements: each of these statements is prepared on the
 * consumer's connection the first time it runs there (pgconn_exec_prepared:
 * parsed and planned once per connection, prepared again after a reconnect,
 * or when the server lost it or its function changed).
 *
 * Fallbacks: if sharecount_apply_json() is missing (the database still has
 * the 1.0 schema) or not granted, the batch is applied again at once through
 * the jsonb[] functions (nothing was written: the failed call rolled back),
 * for SC_APPLY_JSON_RECHECK_MS: sharecount_apply_batch_changes() with
 * events, and if that one is unusable too, sharecount_apply_batch() without
 * events for SC_EVENTS_RECHECK_MS: events never hold jobs.
 *
 * Rules: runs on the consumer thread only (consumer_int.h); it sets each
 * delivery's status and reason, and settles nothing itself (consumer.c does,
 * after the commit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "consumer.h"
#include "consumer_int.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"

enum apply_rc
{
	APPLY_OK = 0,
	APPLY_AWAY,
	APPLY_FAILED
};

/*
 * The statements that apply a JSON array of envelopes (the probe uses the
 * same): sharecount_apply_json() reads the array as text ($1), returns the
 * changed keys with $2 = true, and with applied_rows false no row per applied
 * message but one with their number (read_rows); the jsonb[] functions are
 * the fallback.
 */
#define APPLY_COLS "ord, status, error, content_type, content_id, share_count, delta, version"
#define APPLY_JSON_SQL "SELECT " APPLY_COLS " FROM sharecount_apply_json($1, $2, false)"
#define APPLY_ARRAY "ARRAY(SELECT e FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, n) ORDER BY n)"
#define APPLY_SQL "SELECT ord, status, error FROM sharecount_apply_batch(" APPLY_ARRAY ")"
/* With events: the same, plus one row per changed key (ord NULL), docs/sql.md */
#define APPLY_CHANGES_SQL "SELECT " APPLY_COLS " FROM sharecount_apply_batch_changes(" APPLY_ARRAY ")"
#define APPLY_CHANGES_COLS 8

/* Prepared once per connection (c->prep, docs/bridge.md "Prepared statements"). */
static const struct pgconn_stmt apply_json_stmt = {"sharecount_bridge_apply_json", APPLY_JSON_SQL, 2, 0x1};
static const struct pgconn_stmt apply_changes_stmt = {"sharecount_bridge_apply_changes", APPLY_CHANGES_SQL, 1, 0x2};
static const struct pgconn_stmt apply_stmt = {"sharecount_bridge_apply", APPLY_SQL, 1, 0x4};

/* Whether to apply with the changed keys: events are published and the function is usable. */
static int
with_changes(const struct consumer *c)
{
	return c->events && clock_now_ms() >= c->changes_fn_retry_ms;
}

/*
 * Run the apply statement on the JSON array arr: sharecount_apply_json(),
 * else (unusable) sharecount_apply_batch_changes() with events, else
 * sharecount_apply_batch().  fallback = 0 (the probe, inside a transaction)
 * runs only the first one usable, without falling back.
 */
static PGresult *
run_apply(struct consumer *c, const char *arr, int fallback)
{
	const char *params[2] = {arr, c->events ? "true" : "false"};
	int changes = with_changes(c);
	PGresult *r;

	if (clock_now_ms() >= c->json_fn_retry_ms)
	{
		r = pgconn_run_prepared(c->pg, &apply_json_stmt, &c->prep, params, &c->amqp);
		if (!fallback || (r && PQresultStatus(r) == PGRES_TUPLES_OK) ||
			!pgconn_fn_unusable(r, "sharecount_apply_json", "applying through the jsonb[] functions",
								SC_APPLY_JSON_RECHECK_MS, &c->json_fn_retry_ms))
			return r;
		PQclear(r);
	}
	r = pgconn_run_prepared(c->pg, changes ? &apply_changes_stmt : &apply_stmt, &c->prep, params, &c->amqp);
	if (fallback && changes && (!r || PQresultStatus(r) != PGRES_TUPLES_OK) &&
		pgconn_fn_unusable(r, "sharecount_apply_batch_changes", "applying without count-change events",
						   SC_EVENTS_RECHECK_MS, &c->changes_fn_retry_ms))
	{
		PQclear(r);
		r = pgconn_run_prepared(c->pg, &apply_stmt, &c->prep, params, &c->amqp);
	}
	return r;
}

/* Now, as an event's timestamp: ISO 8601 UTC with milliseconds (24 bytes and the NUL). */
static void
iso_now(char *buf, size_t len)
{
	struct timespec now;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03uZ", (unsigned) (now.tv_nsec / 1000000L) % 1000u);
}

/* Keep the changed key of row (content_type .. version) for the events publisher. */
static void
add_change(struct consumer *c, const PGresult *r, int row, const char *ts)
{
	struct live_count *ch;

	if (c->nchanges == c->changes_cap)
	{
		int cap = c->changes_cap ? c->changes_cap * 2 : 64;
		struct live_count *v = realloc(c->changes, sizeof(*v) * (size_t) cap);

		if (!v)
		{
			metrics_count_events_dropped(SC_EVENT_DROP_QUEUE_FULL, 1);
			return;
		}
		c->changes = v;
		c->changes_cap = cap;
	}
	ch = &c->changes[c->nchanges++];
	snprintf(ch->content_type, sizeof(ch->content_type), "%s", PQgetvalue(r, row, 3));
	snprintf(ch->content_id, sizeof(ch->content_id), "%s", PQgetvalue(r, row, 4));
	ch->share_count = strtoll(PQgetvalue(r, row, 5), NULL, 10);
	ch->delta = strtoll(PQgetvalue(r, row, 6), NULL, 10);
	ch->version = strtoll(PQgetvalue(r, row, 7), NULL, 10);
	snprintf(ch->timestamp, sizeof(ch->timestamp), "%s", ts);
}

/*
 * Set the statuses of idx[0..k) from the rows r with an ord (1..k, each at
 * most once, else -1); *listed of them, *napplied the sum of the rows (ord
 * NULL, status 'applied') that count the applied ones not listed, *nsum those
 * rows.
 */
static int
set_statuses(struct consumer *c, const PGresult *r, const int *idx, int k, int *listed, long *napplied, int *nsum)
{
	for (int row = 0; row < PQntuples(r); row++)
	{
		const char *st = PQgetvalue(r, row, 1);
		struct delivery *d;
		int ord;

		if (PQgetisnull(r, row, 0))
		{
			if (!strcmp(st, "applied") && PQnfields(r) == APPLY_CHANGES_COLS)
			{
				*napplied += PQgetisnull(r, row, 5) ? -1 : strtol(PQgetvalue(r, row, 5), NULL, 10);
				(*nsum)++;
			}
			continue;
		}
		ord = atoi(PQgetvalue(r, row, 0));
		if (ord < 1 || ord > k || c->batch[idx[ord - 1]].status != D_PENDING)
			return -1;
		d = &c->batch[idx[ord - 1]];
		(*listed)++;
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
	return 0;
}

/*
 * The rows of a successful apply of idx[0..k): a status per delivery (ord
 * 1..k), except that sharecount_apply_json() without applied rows lists only
 * those not applied and ends with one row (ord NULL, status 'applied') with
 * the number of the others; then, from the changes statements, the changed
 * keys (ord NULL, status 'changed').  The listed and the counted must add up
 * to k, so that a row missing by mistake is never taken as applied.  0 with
 * the statuses set and the changes kept; -1 if the rows do not match (the
 * statuses left pending).
 */
static int
read_rows(struct consumer *c, const PGresult *r, const int *idx, int k)
{
	int listed = 0, nsum = 0;
	long napplied = 0;
	char ts[LIVE_MAX_TS_BYTES];

	if (set_statuses(c, r, idx, k, &listed, &napplied, &nsum) < 0 || nsum > 1 || listed + napplied != k)
	{
		log_error("sharecount_apply returned %d statuses and %ld applied (%d counts) for %d jobs", listed, napplied,
				  nsum, k);
		for (int i = 0; i < k; i++)
			c->batch[idx[i]].status = D_PENDING;
		if (k == 1)
			snprintf(c->batch[idx[0]].reason, sizeof(c->batch[idx[0]].reason),
					 "the apply's rows do not match the job (%d statuses, %ld applied)", listed, napplied);
		return -1;
	}
	for (int i = 0; i < k; i++)
		if (c->batch[idx[i]].status == D_PENDING)
			c->batch[idx[i]].status = D_APPLIED;
	iso_now(ts, sizeof(ts));
	for (int row = 0; row < PQntuples(r); row++)
		if (PQgetisnull(r, row, 0) && PQnfields(r) == APPLY_CHANGES_COLS && !strcmp(PQgetvalue(r, row, 1), "changed"))
			add_change(c, r, row, ts);
	return 0;
}

/* Note a failed apply: its SQLSTATE, and the reason of a lone delivery. */
static enum apply_rc
apply_failed(struct consumer *c, const PGresult *r, const int *idx, int k)
{
	char err[512];
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	enum apply_rc rc = pgconn_away(c->pg, r) ? APPLY_AWAY : APPLY_FAILED;

	snprintf(c->last_sqlstate, sizeof(c->last_sqlstate), "%s", st ? st : "");
	pgconn_error(c->pg, r, err, sizeof(err));
	if (k == 1)
		pgconn_error(c->pg, r, c->batch[idx[0]].reason, sizeof(c->batch[idx[0]].reason));
	log_warn("applying %d job(s) failed (%s): %s", k, rc == APPLY_AWAY ? "database away, will retry" : "checking", err);
	return rc;
}

/* The JSON array of the envelopes of idx[0..k), malloc'ed; NULL if out of memory. */
static char *
envelopes(const struct consumer *c, const int *idx, int k)
{
	size_t cap = 2, len = 0;
	char *arr;

	for (int i = 0; i < k; i++)
		cap += strlen(c->batch[idx[i]].job.envelope) + 1;
	arr = malloc(cap + 1);
	if (!arr)
		return NULL;
	arr[len++] = '[';
	for (int i = 0; i < k; i++)
	{
		size_t l = strlen(c->batch[idx[i]].job.envelope);

		if (i)
			arr[len++] = ',';
		memcpy(arr + len, c->batch[idx[i]].job.envelope, l);
		len += l;
	}
	arr[len++] = ']';
	arr[len] = '\0';
	return arr;
}

/*
 * Apply the deliveries idx[0..k-1] (all parsed, still pending) in one
 * sharecount_apply_batch[_changes]() call.  On APPLY_OK their statuses are
 * set and the keys it changed are kept in c->changes.
 */
static enum apply_rc
apply(struct consumer *c, const int *idx, int k)
{
	char *arr = envelopes(c, idx, k);
	PGresult *r;
	int64_t t0 = clock_now_ms();

	if (!arr)
	{
		log_warn("out of memory building a batch of %d job(s)", k);
		snprintf(c->last_sqlstate, sizeof(c->last_sqlstate), "53200");
		return APPLY_FAILED; /* counts as an attempt: halves need less */
	}
	r = run_apply(c, arr, 1);
	free(arr);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		enum apply_rc rc = apply_failed(c, r, idx, k);

		PQclear(r);
		return rc;
	}
	if (read_rows(c, r, idx, k) < 0)
	{
		PQclear(r);
		c->last_sqlstate[0] = '\0';
		return APPLY_FAILED;
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
	char body[320];
	PGresult *r;
	int ready;

	snprintf(body, sizeof(body),
			 "[{\"pattern\":\"share_count_update\",\"data\":{\"jobId\":\"sharecount-bridge-probe-%ld-%u\","
			 "\"contentType\":\"%s\",\"contentId\":\"%s\",\"operation\":\"increment\","
			 "\"timestamp\":\"2000-01-01T00:00:00.000Z\"}}]",
			 (long) getpid(), ++c->probe_seq, SC_PROBE_CONTENT_TYPE, SC_PROBE_CONTENT_ID);
	r = pgconn_run(c->pg, "BEGIN", 0, NULL, &c->amqp);
	if (r && PQresultStatus(r) == PGRES_COMMAND_OK)
	{
		PQclear(r);
		r = run_apply(c, body, 0);
	}
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
		ready = 1;
	else
	{
		ready = pgconn_away(c->pg, r) ? -1 : 0;
		pgconn_error(c->pg, r, why, len);
	}
	PQclear(r);
	if (ready >= 0)
	{
		r = pgconn_run(c->pg, "ROLLBACK", 0, NULL, &c->amqp);
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
			consumer_pg_drop(c);
		if (consumer_pg_ensure(c) == 0)
			return 0;
	}
}

/* Whether retrying the same batch may help (contention, resources, internal). */
static int
may_pass(const char *sqlstate)
{
	return !sqlstate[0] || !strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01") || !strncmp(sqlstate, "53", 2) ||
		!strncmp(sqlstate, "55", 2) || !strncmp(sqlstate, "57", 2) || !strncmp(sqlstate, "58", 2) ||
		!strncmp(sqlstate, "XX", 2);
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
	char why[512];
	int ready = probe(c, why, sizeof(why));

	if (ready > 0)
		return sc_stop ? -1 : 1;
	if (ready < 0)
		return hold_until_db(c) < 0 ? -1 : 0;
	log_warn("the database is not ready for jobs (a probe job fails too: %s); "
			 "holding %d deliveries without counting attempts, next try in %d ms",
			 why, k, c->not_ready_ms);
	for (int i = 0; i < c->n; i++)
		if (c->batch[i].status == D_PENDING)
			metrics_count(SC_M_FAILED, c->batch[i].kind, 1);
	consumer_pg_drop(c);
	sc_amqp_sleep(&c->amqp, c->not_ready_ms);
	c->not_ready_ms = backoff_next(c->not_ready_ms, SC_LIVE(c->cfg, reconnect_max_ms));
	return sc_stop ? -1 : 0;
}

static int apply_range(struct consumer *c, int *idx, int k, int retries);

/*
 * A failing batch holding deliveries that came back from a quorum queue
 * (x-delivery-count > 0: likely the poisoned ones) applies those alone
 * first, then the rest as one range: 1 done, 0 none there, -1 stopping.
 */
static int
isolate_returned(struct consumer *c, int *idx, int k)
{
	int s = 0;

	for (int i = 0; i < k; i++)
		if (c->batch[idx[i]].prior > 0)
		{
			int t = idx[s];

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
	int failures = 0;

	for (;;)
	{
		int rc = consumer_pg_ensure(c) < 0 ? APPLY_AWAY : apply(c, idx, k);
		int counted;

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
				char last[sizeof(d->reason)];

				memcpy(last, d->reason, sizeof(last));
				d->status = D_INVALID;
				snprintf(d->reason, sizeof(d->reason), "failed %d times applying it alone; last error: %.200s",
						 d->prior + d->attempts, last);
				return 0;
			}
			sc_amqp_sleep(&c->amqp, SC_APPLY_RETRY_PAUSE_MS * (d->prior + d->attempts));
			if (c->quorum)
			{
				d->status = D_REQUEUE; /* the broker counts the return */
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

/* See consumer_int.h. */
int
consumer_apply_all(struct consumer *c)
{
	int *idx = malloc(sizeof(int) * (size_t) (c->n ? c->n : 1));
	int k = 0, rc;

	if (!idx)
		return -1;
	for (int i = 0; i < c->n; i++)
		if (c->batch[i].status == D_PENDING)
			idx[k++] = i;
	rc = k ? apply_range(c, idx, k, SC_APPLY_BATCH_RETRIES) : 0;
	free(idx);
	return rc;
}
