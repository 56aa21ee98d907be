/*
 * job.h — pure parsing of consumed messages (docs/bridge.md "Consumer"), separate from the
 * consumer so it can be unit-tested: checks what SQL cannot see (size, JSON,
 * shape), turns a bare job into the {"pattern","data"} envelope, recognises a
 * NestJS send() request, and builds its reply.
 *
 * Rules: no I/O, no globals; every string in struct sc_job is malloc'ed and
 * released by sc_job_free().
 */
#ifndef SC_JOB_H
#define SC_JOB_H

#include <stddef.h>

#include "sc_limits.h"

/* PostgreSQL's numeric (jsonb numbers): NUMERIC_DSCALE_MAX, and exponents must stay below INT_MAX / 2 */
#define SC_JOB_NUMERIC_DSCALE_MAX 16383
#define SC_JOB_NUMERIC_EXP_LIMIT 1073741823L

struct sc_job_in
{
	const char *body;
	size_t len;
	const char *type;		 /* `type` property, NULL if absent */
	const char *routing_key; /* NULL if absent */
	const char *queue;		 /* our queue: a routing key equal to it names no job */
	int has_reply_to;		 /* reply_to property present */
};

struct sc_job
{
	char *envelope;		/* JSON text to pass to sharecount_apply_batch */
	char name[72];		/* job name (pattern) */
	int is_request;		/* NestJS send(): "id" present and reply_to set */
	char *job_id;		/* data.jobId when a string, else NULL */
	char *content_type; /* data.contentType when a string, else NULL */
	char *content_id;	/* data.contentId when a string, else NULL */
	double timestamp;	/* data.timestamp as epoch seconds, 0 if absent/unparsable */
};

/*
 * Parse one delivery.  0 on success (out filled); -1 if the message must be
 * rejected without requeue, with the reason (one line) in reason.
 */
int sc_job_parse(const struct sc_job_in *in, struct sc_job *out, char *reason, size_t reasonlen);
void sc_job_free(struct sc_job *job);

/*
 * The NestJS reply body: {"response":{"jobId","success","processingTime",
 * "data":{"contentType","contentId","shareCount"}},"isDisposed":true}.
 * share_count < 0 means unknown (null).  malloc'ed; NULL on out of memory.
 */
char *sc_job_reply(const struct sc_job *job, int success, long processing_ms, long long share_count);

/* "2026-01-02T03:04:05.678Z" (also without millis or with +00:00) → epoch seconds; 0 if unparsable. */
double sc_job_parse_time(const char *iso);

#endif
