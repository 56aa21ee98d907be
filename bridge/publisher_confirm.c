/*
 * publisher_confirm.c — the publisher's AMQP frames: publisher confirms
 * (basic.ack / basic.nack, `multiple` included) dispatched to the slots by
 * delivery tag, basic.return matched to its row by message_id, other frames
 * handed to amqp.c; and the reaction to repeated nacks (docs/bridge.md
 * "Broker failover"): a fresh connection with a doubling pause.
 *
 * Rules: runs on the publisher thread only.  A confirm only ever marks a row
 * that is still PENDING, and only rows of busy slots whose tag range covers
 * it; a confirm for a rolled-back claim matches nothing.  A nacked row stays
 * in the outbox (published again: the consumer's dedupe makes a second copy
 * harmless).  Nothing decoded from a frame is kept past the next read (the
 * connection's buffers are released before each read).
 */
#include <string.h>
#include <sys/time.h>

#include <poll.h>

#include "amqp.h"
#include "bridge.h"
#include "log.h"
#include "metrics.h"
#include "publisher.h"
#include "publisher_int.h"

/*
 * Mark a slot's rows for an ack/nack of tag (and every earlier one if
 * multiple).  Tags outside the slot's range belong to another slot or to a
 * rolled-back claim and are ignored here.
 */
static void
mark(struct slot *s, uint64_t tag, int multiple, enum row_state st)
{
	uint64_t lo = multiple ? s->base : tag;

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
int
publisher_read_frame(struct publisher *p, int timeout_ms)
{
	amqp_frame_t f;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int rc;

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
		log_error("broker connection lost: %s", amqp_error_string2(rc));
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

				log_debug("broker nacked delivery tag %llu%s", (unsigned long long) m->delivery_tag,
						  m->multiple ? " and earlier" : "");
				mark_all(p, m->delivery_tag, m->multiple, ROW_NACKED);
				return 1;
			}
		case AMQP_BASIC_RETURN_METHOD:
			{
				amqp_basic_return_t *m = f.payload.method.decoded;
				amqp_message_t msg;
				amqp_rpc_reply_t r;
				char rk[256], text[256];

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
							memcmp(msg.properties.message_id.bytes, s->rows[i].job_id, msg.properties.message_id.len) ==
								0)
							s->rows[i].returned = 1;
				}
				log_error("exchange \"%s\" returned a %s job (%s): no queue is bound for routing key "
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
int
publisher_amqp_readable(struct publisher *p)
{
	struct pollfd pf = {amqp_get_sockfd(p->amqp.conn), POLLIN, 0};

	return amqp_frames_enqueued(p->amqp.conn) || amqp_data_in_buffer(p->amqp.conn) || poll(&pf, 1, 0) > 0;
}

/* Handle every frame that is already there; -1 if the connection broke. */
int
publisher_drain_frames(struct publisher *p)
{
	while (publisher_amqp_readable(p))
		if (publisher_read_frame(p, 0) < 0)
			return -1;
	return 0;
}

/*
 * Slot s has no confirm outstanding: count its nacks (metric, one WARN per
 * claim) and keep the run of claims nacked without any ack that leads to a
 * fresh connection (nack_reconnect).
 */
void
publisher_note_nacks(struct publisher *p, const struct slot *s)
{
	int acked = 0, nacked = 0;

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
	if (nacked > 0 && acked > 0)
		log_warn("the broker nacked %d of %d published jobs; they stay in the outbox and are "
				 "published again",
				 nacked, s->sent);
	else if (nacked > 0)
		log_warn("the broker nacked all %d published jobs (%d claim%s in a row without an ack); "
				 "they stay in the outbox and are published again",
				 nacked, p->nacked_claims, p->nacked_claims == 1 ? "" : "s");
}

/*
 * Repeated nacks, no slot in flight: replace the AMQP connection by a fresh
 * one after a pause that doubles while nack reconnects do not help
 * (docs/bridge.md "Broker failover").  The caller reconnects.
 */
void
publisher_nack_reconnect(struct publisher *p)
{
	p->nack_reconnects++;
	log_warn("%d claims in a row nacked by the broker (a quorum queue without a leader after a "
			 "failover?); opening a fresh connection in %d ms (nack reconnect %ld)",
			 p->nacked_claims, p->nack_backoff_ms, p->nack_reconnects);
	sc_amqp_disconnect(&p->amqp);
	p->nacked_claims = 0;
	sc_amqp_sleep(NULL, p->nack_backoff_ms);
	p->nack_backoff_ms = backoff_next(p->nack_backoff_ms, SC_LIVE(p->cfg, reconnect_max_ms));
}
