/*
 * sc_limits.h — every fixed limit and fixed timing of the bridge, in one
 * place, each with why.  What an operator may change is a setting instead:
 * config.c's settings table is the only source of the settings' defaults and
 * bounds (docs/bridge.md "Configuration"); nothing here duplicates one.
 *
 * Rules: sizes in bytes, times in milliseconds of clock_now_ms() (clock.h).
 * A value here is part of the documented behaviour when docs/ names it:
 * change the page with it.
 */
#ifndef SC_LIMITS_H
#define SC_LIMITS_H

/* ------------------------------------------------------------ the keys -- */

/* Longest contentType and contentId, in bytes (docs/extension.md "Jobs"; the
 * extension enforces the same limits). */
#define SC_MAX_CONTENT_TYPE_BYTES 64
#define SC_MAX_CONTENT_ID_BYTES 256

/* Most ids in one /share-links/counts request (docs/http.md). */
#define SC_MAX_COUNTS_IDS 1000

/* ------------------------------------------------------------ messages -- */

/* Largest consumed message body; larger ones are dead-lettered (docs/bridge.md). */
#define SC_JOB_MAX_BODY 65536

/* Most original headers a dead letter keeps (more are dropped). */
#define SC_DLQ_MAX_HEADERS 64

/* How long a dead letter (and `dlq replay`) waits for the broker's confirm. */
#define SC_DEAD_LETTER_CONFIRM_MS 10000

/* ------------------------------------------------------------- threads -- */

/* Upper bound of the publish_pipeline setting (config.c uses it as the bound). */
#define SC_MAX_PIPELINE 8

/* libmicrohttpd threads: one per CPU, at most this (http_loop.c). */
#define SC_HTTP_MAX_THREADS 8

/*
 * A libmicrohttpd thread answering single counts itself (dbpool_local.c)
 * waits on PostgreSQL at most this long per round trip, connecting and
 * preparing included; slower, its connection is closed and its jobs go to
 * the pool's workers.  A stalled server so holds the thread's other
 * connections (/healthz, cached reads) this long at most once per
 * SC_HTTP_LOCAL_RETRY_MS.  A round trip here takes 0.1-1 ms.
 */
#define SC_HTTP_LOCAL_WAIT_MS 100

/* How often a libmicrohttpd thread whose connection is down tries to make it again. */
#define SC_HTTP_LOCAL_RETRY_MS 1000

/* --------------------------------------------------------------- pauses -- */

/* First pause of every reconnect backoff (then backoff_next() up to reconnect_max_ms). */
#define SC_RECONNECT_FIRST_MS 100

/* While a role sleeps holding a broker connection, it sends a heartbeat this often. */
#define SC_HEARTBEAT_SEND_MS 1000

/* A sleep is cut in slices of this, so sc_stop is noticed within it. */
#define SC_SLEEP_SLICE_MS 100

/* The publisher's waits (idle or in flight) wake at least this often to see sc_stop. */
#define SC_PUBLISHER_WAIT_SLICE_MS 200

/* The main thread's wait for signals wakes this often to notice a role that set sc_stop. */
#define SC_SIGNAL_TICK_MS 200

/* The consumer reads the queue depth (a passive declare) at most this often. */
#define SC_QUEUE_DEPTH_EVERY_MS 2000

/* The publisher refreshes the outbox gauges (sharecount_stats()) at most this often. */
#define SC_OUTBOX_GAUGES_EVERY_MS 5000

/*
 * Bounded failures of the consumer (docs/bridge.md, "Failures,
 * dead-lettering and attempt counting").
 */
/* Extra tries of a whole failing batch, for errors that may pass (40001,
 * 40P01, classes 53/55/57/58/XX), before it is split in halves. */
#define SC_APPLY_BATCH_RETRIES 3
/* Pause before retry n of a batch or of a lone delivery: n times this. */
#define SC_APPLY_RETRY_PAUSE_MS 100
/* First pause while the database is not ready (the probe fails too); it
 * doubles up to reconnect_max_ms and is reset by a successful apply. */
#define SC_NOT_READY_PAUSE_MS 100

/*
 * lock_timeout of every publisher session, in ms.  The publisher drives
 * several claim transactions from one thread; if DDL on the outbox (e.g.
 * ALTER EXTENSION sharecount UPDATE) queues an ACCESS EXCLUSIVE lock behind
 * slot A's open claim, slot B's next claim waits behind that DDL while the
 * thread waits for slot B: slot A is never finished and nothing moves (a
 * deadlock PostgreSQL cannot see, since one side is the client).  With a
 * lock timeout slot B's claim fails after this long, is rolled back and
 * retried, slot A commits, and the DDL goes through.
 */
#define SC_PUBLISHER_LOCK_TIMEOUT_MS 2000
#define SC_STR_(x) #x
#define SC_STR(x) SC_STR_(x) /* a numeric constant as a string literal */

/*
 * Nacks (docs/bridge.md "Broker failover"): after this many claims in a row
 * that the broker nacked (at least one nack, no ack), the publisher drops its
 * AMQP connection and opens a fresh one.  A channel that published to a
 * quorum queue while it had no leader can stay nacking every publish for
 * good (RabbitMQ 3.10) while a fresh connection to the same node is fine.
 */
#define SC_NACKED_CLAIMS_BEFORE_RECONNECT 2
/* Pause before that fresh connection: doubles per nack reconnect that did
 * not help, up to reconnect_max_ms; back to this after an acked claim. */
#define SC_NACK_RECONNECT_MIN_MS 100

/* The publisher's pause after a claim that did not fill a batch while other
 * slots are in flight: SC_CLAIM_GAP_MS, or SC_CLAIM_LOADED_GAP_MS under load
 * (below); after an empty claim it doubles per empty claim up to
 * SC_CLAIM_GAP_MAX_MS. */
#define SC_CLAIM_GAP_MS 1
#define SC_CLAIM_GAP_MAX_MS 8
#define SC_CLAIM_LOADED_GAP_MS 20
/* After sharecount_outbox_claim_packed() is missing (an older schema) or not
 * granted, the publisher claims with sharecount_outbox_claim() and tries the
 * packed claim again after this long (publisher_rows.c). */
#define SC_CLAIM_PACKED_RECHECK_MS 60000
/* After the consumer applied at SC_PACE_LOADED_PER_S or more, its next batch
 * lingers at least SC_APPLY_LOADED_LINGER_MS (unless apply_linger_ms = 0). */
#define SC_APPLY_LOADED_LINGER_MS 50
/*
 * Under load (pace.h): a role that claimed (publisher) or applied (consumer)
 * SC_PACE_LOADED_PER_S jobs/s or more over its last window of
 * SC_PACE_WINDOW_MS pauses longer (the two values above): fewer, larger
 * claims and batches, each one's fixed database cost shared by more jobs
 * (docs/performance.md, "P7 bridge").  A steady 1,000 jobs/s, and a burst
 * after a stall, stay below it: their pauses are unchanged.
 */
#define SC_PACE_WINDOW_MS 200
#define SC_PACE_LOADED_PER_S 2000

/* ---------------------------------------------- count-change events -- */
/* (docs/live.md "Publishing"; bridge/live_pub.c) */

/* Events waiting for the events publisher; a change offered while it is full
 * is dropped (sharecount_events_dropped_total{reason="queue_full"}), so the
 * consumer never waits.  ~400 bytes each: 0.8 MB at most (P6 counts it: four
 * default batches of distinct keys). */
#define SC_EVENTS_QUEUE 2048
/* The events publisher's idle wait: it sends a heartbeat and reads the
 * broker's frames (connection.blocked, a channel closed) at least this often. */
#define SC_EVENTS_IDLE_MS 1000
/* Its pause while the broker blocks the connection (events pile up, then drop). */
#define SC_EVENTS_BLOCKED_POLL_MS 100
/* Events taken from the queue and published at once (one lock per burst). */
#define SC_EVENTS_BURST 64
/* At stop, how long the consumer waits for the events thread to publish what
 * is queued; past it the thread is left to the process's exit (a write the
 * broker stopped reading can block in rabbitmq-c, which has no send timeout). */
#define SC_EVENTS_STOP_WAIT_MS 5000
/* After sharecount_apply_batch_changes() is missing (1.0 schema) or not
 * granted, the consumer applies with sharecount_apply_batch() (no events)
 * and tries the changes function again after this long. */
#define SC_EVENTS_RECHECK_MS 60000
/* After sharecount_apply_json() is missing or not granted, the consumer
 * applies through the jsonb[] functions and tries it again after this long. */
#define SC_APPLY_JSON_RECHECK_MS 60000

#endif
