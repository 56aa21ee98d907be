/*
 * consumer.c — the consumer role: deliveries from the queue are collected
 * into a batch (up to apply_batch, or until apply_linger_ms has passed since
 * its first delivery; longer under load, consumer_linger_ms), applied with ONE sharecount_apply_batch() call (one
 * transaction), and only after it committed: invalid ones are dead-lettered
 * with their reason (dlq.c: published to the dead-letter exchange, then
 * acked), NestJS send() requests get their reply (consumer_reply.c), and the
 * rest are acked with one basic.ack multiple.
 *
 * The apply itself and what a failure leads to: consumer_apply.c.  The keys
 * a batch changed are offered to the events publisher (live_pub.c, its own
 * thread and connection) once the batch is settled: acks never wait for
 * events, and live_pub_offer never blocks.
 *
 * Rules: this thread owns its PGconn and AMQP connection.  Every delivery of
 * a batch is settled (ack or reject) before the next batch is read, so an
 * ack `multiple` never covers a delivery that is not settled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp.h"
#include "bridge.h"
#include "consumer.h"
#include "consumer_int.h"
#include "dlq.h"
#include "job.h"
#include "live_pub.h"
#include "log.h"
#include "metrics.h"
#include "pace.h"
#include "pgconn.h"

static char *
bytes_dup(amqp_bytes_t b)
{
	char *s = malloc(b.len + 1);

	if (s)
	{
		memcpy(s, b.bytes, b.len);
		s[b.len] = '\0';
	}
	return s;
}

void
consumer_pg_drop(struct consumer *c)
{
	PQfinish(c->pg);
	c->pg = NULL;
	memset(&c->prep, 0, sizeof(c->prep));
	metrics_set_conn(SC_CONN_CONSUMER_PG, 0);
}

int
consumer_pg_ensure(struct consumer *c)
{
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	consumer_pg_drop(c);
	c->pg = pgconn_open(c->cfg->pg_conninfo, "sharecount-bridge consumer", &c->amqp);
	if (!c->pg)
		return -1;
	c->pg_backoff_ms = SC_RECONNECT_FIRST_MS;
	metrics_set_conn(SC_CONN_CONSUMER_PG, 1);
	log_info("connected to PostgreSQL");
	return 0;
}

static int
consumer_amqp_ensure(struct consumer *c)
{
	const struct sc_config *cfg = c->cfg;

	if (c->amqp.conn)
		return 0;
	if (sc_amqp_connect(&c->amqp) < 0)
		return -1;
	amqp_basic_qos(c->amqp.conn, SC_CH, 0, (uint16_t) cfg->prefetch, 0);
	if (sc_amqp_reply_ok(&c->amqp, amqp_get_rpc_reply(c->amqp.conn), "basic.qos", NULL) < 0)
		goto fail;
	amqp_basic_consume(c->amqp.conn, SC_CH, amqp_cstring_bytes(cfg->queue), amqp_empty_bytes, 0, 0, 0,
					   amqp_empty_table);
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
	char *type = (pr->_flags & AMQP_BASIC_TYPE_FLAG) ? bytes_dup(pr->type) : NULL;
	char *rk = bytes_dup(env->routing_key);
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
 * The linger of the next batch (docs/bridge.md "Consumer"): apply_linger_ms,
 * or at least SC_APPLY_LOADED_LINGER_MS while the consumer applies
 * SC_PACE_LOADED_PER_S jobs/s or more (fewer, larger batches, each batch's
 * fixed database cost shared by more jobs).  apply_linger_ms = 0 never waits.
 */
int
consumer_linger_ms(int per_s, int linger_ms)
{
	if (linger_ms > 0 && per_s >= SC_PACE_LOADED_PER_S && linger_ms < SC_APPLY_LOADED_LINGER_MS)
		return SC_APPLY_LOADED_LINGER_MS;
	return linger_ms;
}

/*
 * Collect deliveries: wait up to first_wait_ms for the first one, then keep
 * taking them until apply_batch or until the linger (consumer_linger_ms) has
 * passed since the batch's first delivery.  The linger is bounded from the
 * first delivery, not renewed by each new one: with a steady stream (a
 * pipelined publisher spreads deliveries evenly) a renewed linger would keep
 * a batch open until a gap of apply_linger_ms, adding that latency to every
 * job in it.  Returns 0 (c->n may be 0), or -1 if the broker connection broke
 * (the batch is dropped: the broker requeues unacked deliveries).
 */
static int
collect(struct consumer *c, int first_wait_ms)
{
	int wait_ms = first_wait_ms;
	int per_s = sc_pace_per_s(&c->pace, clock_now_ms());
	int linger_ms = consumer_linger_ms(per_s, SC_LIVE(c->cfg, apply_linger_ms));
	int64_t linger_end = clock_now_ms() + linger_ms;

	if (sc_pace_note(&c->pace, linger_ms != SC_LIVE(c->cfg, apply_linger_ms)))
		log_debug("applying %d jobs/s: batches linger %d ms", per_s, linger_ms);

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
				linger_end = clock_now_ms() + linger_ms;
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
			int rc = amqp_simple_wait_frame_noblock(c->amqp.conn, &f, &zero);

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
consumer_settle(struct consumer *c)
{
	uint64_t ack_tag = 0;
	int napplied = 0;
	struct timespec now;
	double now_s;

	clock_gettime(CLOCK_REALTIME, &now);
	now_s = now.tv_sec + now.tv_nsec / 1e9;
	for (int i = 0; i < c->n; i++)
	{
		struct delivery *d = &c->batch[i];

		if (d->status == D_REJECTED || d->status == D_INVALID)
		{
			log_warn("dead-lettering delivery %llu (%s%s%s): %s", (unsigned long long) d->tag,
					 d->job.name[0] ? d->job.name : "no job name", d->job.job_id ? " " : "",
					 d->job.job_id ? d->job.job_id : "", d->reason);
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

/* Hand the keys changed by the batch's commits to the events publisher. */
static void
offer_changes(struct consumer *c)
{
	if (c->nchanges > 0)
	{
		int dropped = live_pub_offer(c->events, c->changes, c->nchanges);

		if (dropped)
			log_debug("events queue full: %d of %d count-change events dropped", dropped, c->nchanges);
	}
	c->nchanges = 0;
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
	if (c.cfg->publish_events)
		c.events = live_pub_start(c.cfg);
	log_info("started");
	while (!sc_stop)
	{
		if (consumer_pg_ensure(&c) < 0)
		{
			sc_amqp_sleep(&c.amqp, c.pg_backoff_ms);
			c.pg_backoff_ms = backoff_next(c.pg_backoff_ms, SC_LIVE(c.cfg, reconnect_max_ms));
			continue;
		}
		if (consumer_amqp_ensure(&c) < 0)
		{
			sc_amqp_backoff_sleep(&c.amqp, SC_LIVE(c.cfg, reconnect_max_ms));
			continue;
		}
		if (clock_now_ms() >= c.next_depth_ms)
		{
			long depth = sc_amqp_queue_depth(&c.amqp, c.cfg->queue);

			metrics_set_queue_depth(depth);
			c.next_depth_ms = clock_now_ms() + SC_QUEUE_DEPTH_EVERY_MS;
		}
		if (collect(&c, 200) < 0)
			continue;
		sc_pace_add(&c.pace, c.n, clock_now_ms());
		if (c.n == 0)
			continue;
		if (consumer_apply_all(&c) < 0)
		{
			log_warn("stopping with %d deliveries unapplied; the broker redelivers them", c.n);
			offer_changes(&c); /* of the parts that committed */
			batch_clear(&c);
			sc_amqp_disconnect(&c.amqp);
			break;
		}
		consumer_settle(&c);
		offer_changes(&c);
		batch_clear(&c);
	}
	sc_amqp_disconnect(&c.amqp);
	consumer_pg_drop(&c);
	live_pub_stop(c.events);
	free(c.changes);
	free(c.batch);
	log_info("stopped");
	return NULL;
}
