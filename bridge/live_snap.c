/*
 * live_snap.c — a subscribe's snapshot on the live thread (docs/live.md
 * "WebSocket", "Server-Sent Events"): one count per key, in the order asked,
 * the hub's latest when known, else read from the database through the pool
 * (sharecount_get_many, asynchronously: the live thread never waits on the
 * database).  While a connection's snapshot is being read its queued changes
 * wait (live_conn_pump() does nothing while `snaps` > 0), so the snapshot
 * comes first.  A read that fails: a WebSocket gets an error event (503) and
 * keeps its subscription; a stream gets the JSON 503 instead of its 200 and
 * ends.
 *
 * Rules: everything runs on the live thread except snap_done(), the pool's
 * callback on a database worker, which only hands the read back
 * (live_thread_post_snap()).  Memory: a struct live_snap owns the subscribe's
 * ids and the counts read; it lives from live_snap_start() to
 * live_snap_finish(); its connection is not freed while it is out (`snaps`).
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http_live_int.h"
#include "http_stream.h"
#include "live_thread_int.h"
#include "metrics.h"

/* The pool's callback (a database worker): back to the live thread. */
static void
snap_done(struct dbpool_job *job)
{
	live_thread_post_snap(job->cls);
}

static void
snap_free(struct live_snap *sn)
{
	live_client_msg_free(&sn->m);
	free(sn->job.counts);
	free(sn);
}

/* Send a subscribe's snapshot: the hub's latest per key, else counts[i] (NULL: none read). */
static void
send_snapshot(struct live_conn *c, const struct live_client_msg *m, const int64_t *counts)
{
	if (c->head) /* a stream's 200 head comes first */
	{
		live_conn_send_text(c, c->head);
		c->head = NULL;
		metrics_http_status(200);
	}
	for (int i = 0; i < m->nids; i++)
	{
		struct live_count k;

		http_live_snapshot_count(&k, m->content_type, m->ids[i], counts ? counts[i] : 0);
		live_conn_send_count(c, &k);
	}
}

void
live_snap_start(struct live_conn *c, struct live_client_msg *m)
{
	struct live_snap *sn;
	struct live_count k;
	int known = 0;

	for (int i = 0; i < m->nids && known == i; i++)
		known += live_hub_latest(http_live_hub(), m->content_type, m->ids[i], &k);
	if (known == m->nids && c->snaps == 0)
	{
		send_snapshot(c, m, NULL);
		return;
	}
	if (!(sn = calloc(1, sizeof(*sn))) || !(sn->job.counts = calloc((size_t) m->nids, sizeof(int64_t))))
	{
		free(sn);
		live_conn_send_error(c, 500, "out of memory: no snapshot");
		return;
	}
	sn->c = c;
	sn->m = *m; /* the snapshot owns the ids now */
	memset(m, 0, sizeof(*m));
	sn->job.kind = DBPOOL_GET_MANY;
	sn->job.type = sn->m.content_type;
	sn->job.ids = sn->m.ids;
	sn->job.nids = (size_t) sn->m.nids;
	sn->job.deadline = clock_now_ms() + live_thread_db_timeout_ms();
	sn->job.done = snap_done;
	sn->job.cls = sn;
	c->snaps++;
	dbpool_submit(&sn->job);
}

void
live_snap_finish(struct live_snap *sn)
{
	struct live_conn *c = sn->c;

	c->snaps--;
	if (c->closing)
		; /* the connection is gone: nothing to send */
	else if (sn->job.rc != DBPOOL_OK && c->is_sse)
	{
		http_stream_send_db_error(c->fd, sn->job.rc, sn->job.err); /* instead of the 200 */
		c->failed = true;
	}
	else if (sn->job.rc != DBPOOL_OK)
		live_conn_send_error(c, 503, "database unavailable: no snapshot, changes follow");
	else
		send_snapshot(c, &sn->m, sn->job.counts);
	if (!c->closing)
		live_conn_pump(c);
	snap_free(sn);
}
