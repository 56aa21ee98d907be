/*
 * amqp.h — the bridge's RabbitMQ connection layer on rabbitmq-c 0.11:
 * connect (URL list, amqps, heartbeats, connection.blocked capability),
 * topology declaration, asynchronous frames, capped exponential backoff.
 *
 * Rules: one struct sc_amqp per role thread; nothing in rabbitmq-c is
 * thread-safe, so a connection never leaves the thread that opened it.
 * Channel 1 is the role's working channel; channel 2 is opened on demand for
 * passive declares (a failing passive declare closes only channel 2).
 */
#ifndef SC_AMQP_H
#define SC_AMQP_H

#include <amqp.h>
#include <amqp_framing.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "sc_limits.h"

#define SC_CH 1		/* working channel */
#define SC_CH_AUX 2 /* passive declares (queue depth) */
/* A connection that feeds no connection gauge (short-lived: dead letters, the dlq command). */
#define SC_CONN_UNTRACKED SC_CONNS

/*
 * Log about connection a (pgbouncer-style: the context is an argument, never
 * typed): log.c prints the thread's role, then a's log_ctx when the role has
 * more than one connection ("consumer: dead letters: connected to ...").
 */
#define SC_AMQP_LOG(lvl, a, fmt, ...) \
	log_msg((lvl), "%s%s" fmt, (a)->log_ctx ? (a)->log_ctx : "", (a)->log_ctx ? ": " : "", ##__VA_ARGS__)

struct sc_amqp
{
	const struct sc_config *cfg;
	const char *name;	 /* connection_name the broker shows ("publisher", "consumer", ...) */
	const char *log_ctx; /* which connection, in logs; NULL for the role's own one */
	enum sc_conn metric;
	amqp_connection_state_t conn; /* NULL when disconnected */
	int url_next;				  /* index of the next URL of amqp_url to try */
	int blocked;				  /* connection.blocked received, not yet unblocked */
	int aux_open;				  /* channel 2 is open */
	int backoff_ms;				  /* current reconnect delay */
	int confirming;				  /* confirm.select done on channel 1 */
	int no_topology;			  /* set after sc_amqp_init: connect declares none of the jobs topology */
};

void sc_amqp_init(struct sc_amqp *a, const struct sc_config *cfg, const char *name, const char *log_ctx,
				  enum sc_conn metric);

/*
 * Connect to the first reachable URL of amqp_url (starting after the last
 * one that worked or failed), log in, open channel 1 and declare the
 * topology (unless no_topology).  0 on success; -1 (logged) otherwise,
 * disconnected.
 */
int sc_amqp_connect(struct sc_amqp *a);
void sc_amqp_disconnect(struct sc_amqp *a);

/*
 * Check an RPC reply; 0 if normal.  Otherwise log "what" with the server's
 * reason, answer a channel/connection close, and return -1; *chan_only is set
 * when only the channel died (the connection is still usable).
 */
int sc_amqp_reply_ok(struct sc_amqp *a, amqp_rpc_reply_t r, const char *what, int *chan_only);

/*
 * Handle a frame that is not what the caller waits for: connection.blocked /
 * unblocked, channel.close, connection.close, basic.cancel.  Returns 0 if the
 * connection is still usable, -1 if it (or the working channel) is gone.
 */
int sc_amqp_async_frame(struct sc_amqp *a, const amqp_frame_t *f);

/*
 * Declare updates_exchange (topic, durable: the count-change events, docs/live.md)
 * on channel 1.  Not part of the topology every connection declares: only the
 * connections that publish or consume events need it, and a mismatch (406)
 * must not stop the jobs.  0, or -1 (logged; the channel is closed).
 */
int sc_amqp_declare_updates_exchange(struct sc_amqp *a);

/* Send a heartbeat frame now (used while waiting on PostgreSQL). */
int sc_amqp_heartbeat(struct sc_amqp *a);

/* Passive declare of the queue on channel 2; message count or -1. */
long sc_amqp_queue_depth(struct sc_amqp *a, const char *queue);

/* Sleep a's reconnect backoff (returning early on sc_stop), then double it (backoff_next, capped at max_ms). */
void sc_amqp_backoff_sleep(struct sc_amqp *a, int max_ms);

/* AMQP table entries (headers, queue arguments) of a string; not copied. */
amqp_table_entry_t sc_amqp_bytes_entry(const char *key, amqp_bytes_t v);
amqp_table_entry_t sc_amqp_str_entry(const char *key, const char *v);

/*
 * Sleep ms (returning early on sc_stop) while keeping a's connection alive
 * with a heartbeat frame every second; a may be NULL or disconnected.  Used
 * for every pause a role takes while it holds a broker connection.
 */
void sc_amqp_sleep(struct sc_amqp *a, int ms);

/*
 * Publish one message on channel 1 (mandatory; confirm mode is selected on
 * first use) and wait up to SC_DEAD_LETTER_CONFIRM_MS (sc_limits.h) for its confirm.  Only for a
 * connection with no consumer on it (docs/bridge.md, "Dead letters").  0 when
 * the broker acked it (routed: a returned message is a failure); -1 with why.
 */
int sc_amqp_publish_confirmed(struct sc_amqp *a, const char *exchange, const char *routing_key,
							  const amqp_basic_properties_t *props, amqp_bytes_t body, char *why, size_t len);

#endif
