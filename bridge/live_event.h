/*
 * live_event.h — the text formats of live counts (docs/live.md): the
 * `share_count_changed` event that bridges exchange through RabbitMQ (a NestJS
 * envelope), the Server-Sent Events frame, and the WebSocket messages in
 * NestJS's ws adapter shape (server events, error events, client subscribe /
 * unsubscribe).  Pure functions over jansson: no I/O, no globals but the
 * received/rejected counters.
 *
 * Rules: every function that returns char * returns a malloc'ed,
 * NUL-terminated string the caller frees (NULL only when out of memory).
 * Decoders never trust their input: any byte sequence gives either a filled
 * struct or -1 with a one-line reason in err, and never reads past len.
 * The counters are atomics; any thread may decode.
 */
#ifndef SC_LIVE_EVENT_H
#define SC_LIVE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"

#define LIVE_EVENT_PATTERN "share_count_changed" /* NestJS pattern of a count change (docs/live.md) */
#define LIVE_MAX_TYPE_BYTES ROUTE_MAX_TYPE_BYTES /* contentType, as everywhere (docs/sql.md) */
#define LIVE_MAX_ID_BYTES ROUTE_MAX_ID_BYTES	 /* contentId, as everywhere (docs/sql.md) */
#define LIVE_MAX_TS_BYTES 40					 /* data.timestamp: ISO 8601 with fraction and offset fits in 35 */
/* Largest event body accepted from the broker: two maximal strings, escaped as \uXXXX, plus numbers */
#define LIVE_EVENT_MAX_BODY (16 * 1024)
/* Ids in one ws subscribe / unsubscribe message, as in GET /share-links/counts (docs/http.md) */
#define LIVE_MAX_IDS_PER_SUBSCRIBE ROUTE_MAX_IDS
/* The comment line an SSE stream sends when it has had nothing to say for a while */
#define LIVE_SSE_HEARTBEAT ": heartbeat\n\n"

/* One key's count after a change: the data object of the event. */
struct live_count
{
	char content_type[LIVE_MAX_TYPE_BYTES + 1];
	char content_id[LIVE_MAX_ID_BYTES + 1];
	int64_t share_count;			   /* >= 0 */
	int64_t delta;					   /* change since the previous version */
	int64_t version;				   /* >= 1, only increases per key */
	char timestamp[LIVE_MAX_TS_BYTES]; /* ISO 8601 UTC, e.g. 2026-01-02T03:04:05.678Z */
};

enum live_client_op
{
	LIVE_SUBSCRIBE = 1,
	LIVE_UNSUBSCRIBE
};

/* A parsed ws client message; live_client_msg_free() releases ids. */
struct live_client_msg
{
	enum live_client_op op;
	char content_type[LIVE_MAX_TYPE_BYTES + 1];
	char **ids; /* nids malloc'ed strings, each 1..LIVE_MAX_ID_BYTES bytes */
	int nids;	/* 1..LIVE_MAX_IDS_PER_SUBSCRIBE */
};

/* {"contentType":…,"contentId":…,"shareCount":…,"delta":…,"version":…,"timestamp":…} */
char *live_event_data_json(const struct live_count *c);

/* {"pattern":"share_count_changed","data":{…}} — the body published to sharecount.updates */
char *live_event_encode(const struct live_count *c);

/*
 * Strict decode of a received event body: 0 and *out filled, or -1 with the
 * reason in err (the event is to be ignored).  Counts every call in
 * live_event_received() and every rejection in live_event_rejected().
 */
int live_event_decode(const char *body, size_t len, struct live_count *out, char *err, size_t errlen);
uint64_t live_event_received(void);
uint64_t live_event_rejected(void);

/* "event: count\ndata: <data_json>\n\n" */
char *live_sse_frame(const char *data_json);

/* {"event":"share_count_changed","data":<data_json>} */
char *live_ws_event_msg(const char *data_json);

/* {"event":"error","data":{"statusCode":status,"message":message}} */
char *live_ws_error_msg(int status, const char *message);

/*
 * Parse one ws text message from a client:
 * {"event":"subscribe"|"unsubscribe","data":{"contentType":"…","ids":["…",…]}}.
 * 0 and *out filled, or -1 with a message for the client in err (it is sent
 * back as an error event).
 */
int live_client_parse(const char *msg, size_t len, struct live_client_msg *out, char *err, size_t errlen);
void live_client_msg_free(struct live_client_msg *m);

#endif
