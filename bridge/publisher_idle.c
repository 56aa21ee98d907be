/*
 * publisher_idle.c — the publisher with nothing in flight: the wake-up
 * protocol of docs/wakeup.md on slot 0 (sleep mark, re-check claim, poll of
 * PQsocket and the AMQP socket, wake mark), and the outbox gauges.
 *
 * Rules: runs on the publisher thread only, with no slot in flight except the
 * one the re-check claim may open.  Every wait also reads AMQP frames
 * (heartbeats, connection.blocked); a wait is at most SC_PUBLISHER_WAIT_SLICE_MS, so sc_stop is
 * seen promptly.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "amqp.h"
#include "bridge.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"
#include "publisher_int.h"

/* SELECT an idle-mark function (sharecount_publisher_sleep/_wake) on slot 0. */
static int
idle_mark(struct publisher *p, const char *sql)
{
	PGconn *conn = p->slots[0].pg;
	PGresult *r;
	char err[512];

	r = pgconn_run(conn, sql, 0, NULL, &p->amqp);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
	{
		PQclear(r);
		return 0;
	}
	log_error("%s: %s", sql, pgconn_error(conn, r, err, sizeof(err)));
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
	PGconn *conn = p->slots[0].pg;
	int64_t end = clock_now_ms() + SC_LIVE(p->cfg, poll_interval_ms);
	PGnotify *nt;
	int woke = 0;

	while (!sc_stop && !woke)
	{
		int64_t left = end - clock_now_ms();
		struct pollfd pf[2];
		int rc;

		if (left <= 0)
			break;
		pf[0].fd = PQsocket(conn);
		pf[0].events = POLLIN;
		pf[1].fd = amqp_get_sockfd(p->amqp.conn);
		pf[1].events = POLLIN;
		pf[0].revents = pf[1].revents = 0;
		if (publisher_amqp_readable(p))
			rc = 1, pf[1].revents = POLLIN;
		else
			rc = poll(pf, 2, left > SC_PUBLISHER_WAIT_SLICE_MS ? SC_PUBLISHER_WAIT_SLICE_MS : (int) left);
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
		while (publisher_amqp_readable(p) || pf[1].revents)
		{
			pf[1].revents = 0;
			if (publisher_read_frame(p, 0) < 0)
			{
				sc_amqp_disconnect(&p->amqp);
				return -1;
			}
		}
		if (publisher_read_frame(p, 0) < 0)
		{
			sc_amqp_disconnect(&p->amqp);
			return -1;
		}
	}
	return 0;
}

/*
 * Refresh the outbox gauges (depth, oldest job age) from sharecount_stats()
 * every SC_OUTBOX_GAUGES_EVERY_MS on a free slot's connection, outside any claim transaction.  A
 * failure only leaves the gauges stale: it is logged at debug level and
 * retried next time.
 */
void
publisher_refresh_outbox_gauges(struct publisher *p, struct slot *s)
{
	PGresult *r;

	if (clock_now_ms() < p->next_stats_ms)
		return;
	p->next_stats_ms = clock_now_ms() + SC_OUTBOX_GAUGES_EVERY_MS;
	r = pgconn_run(s->pg,
				   "SELECT (s->>'outbox_depth')::bigint, (s->>'outbox_oldest_age_seconds')::float8 "
				   "FROM sharecount_stats() s",
				   0, NULL, &p->amqp);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) &&
		!PQgetisnull(r, 0, 1))
		metrics_set_outbox(atoll(PQgetvalue(r, 0, 0)), atof(PQgetvalue(r, 0, 1)));
	else
		log_debug("cannot read sharecount_stats() for the outbox gauges");
	PQclear(r);
}

/*
 * Nothing in flight and a claim found nothing: the wake-up protocol of
 * docs/wakeup.md on slot 0.  If the re-check claim finds rows, slot 0 is in
 * flight when this returns (and the sleep mark is already released).
 */
void
publisher_go_idle(struct publisher *p)
{
	struct slot *s0 = &p->slots[0];
	int n;

	if (idle_mark(p, "SELECT sharecount_publisher_sleep()") < 0)
	{
		publisher_slot_drop(s0);
		return;
	}
	n = publisher_claim(p, s0);
	if (n == 0 && idle_wait(p) < 0)
	{
		if (!publisher_slot_ok(s0))
			publisher_slot_drop(s0);
	}
	if (publisher_slot_ok(s0) && idle_mark(p, "SELECT sharecount_publisher_wake()") < 0)
		publisher_slot_drop(s0);
	if (n < 0)
		publisher_fail_backoff(p);
}
