/*
 * fuzz_job.c — libFuzzer harness for the consumer's message parser,
 * bridge/job.c: sc_job_parse(), sc_job_reply(), sc_job_parse_time()
 * (docs/fuzzing.md).
 *
 * Input: one flag byte (bit 0: a `type` property, bit 1: a routing key,
 * bit 2: our queue name, bit 3: reply_to set), then the present strings, each
 * ended by a NUL byte, then the message body (every remaining byte, NULs
 * included; an empty body is passed as NULL, as rabbitmq-c does).
 *
 * Invariants checked beyond the sanitizers: a rejection has a one-line reason
 * (it is logged) that is not "out of memory"; an accepted message has a job name of 1..71
 * bytes and an envelope that jansson reads back as {"pattern": name, "data":
 * {...}} with the same jobId/contentType/contentId; a body over 64 KiB is never
 * accepted; the NestJS reply is JSON and carries the same jobId.
 *
 * Rules: no state between inputs; everything allocated here is freed here.
 */
#include <math.h>

#include <jansson.h>

#include "fuzz.h"
#include "job.h"

/* `field` of the accepted job equals data.<key> of its envelope (both absent, or equal strings). */
static void
check_field(json_t *data, const char *key, const char *field)
{
	json_t *v = json_object_get(data, key);

	if (json_is_string(v))
		FZ_CHECK(field != NULL && strcmp(field, json_string_value(v)) == 0);
	else
		FZ_CHECK(field == NULL);
}

static void
check_accepted(const struct sc_job_in *in, const struct sc_job *job)
{
	json_error_t jerr;
	json_t *env, *data;
	char *reply;

	FZ_CHECK(in->len <= SC_JOB_MAX_BODY);
	FZ_CHECK(job->name[0] != '\0' && strlen(job->name) < sizeof(job->name));
	FZ_CHECK(job->envelope != NULL);
	env = json_loads(job->envelope, JSON_REJECT_DUPLICATES, &jerr);
	FZ_CHECK(env != NULL && json_is_object(env));
	FZ_CHECK(json_is_string(json_object_get(env, "pattern")));
	FZ_CHECK(strcmp(json_string_value(json_object_get(env, "pattern")), job->name) == 0);
	data = json_object_get(env, "data");
	FZ_CHECK(json_is_object(data));
	check_field(data, "jobId", job->job_id);
	check_field(data, "contentType", job->content_type);
	check_field(data, "contentId", job->content_id);
	FZ_CHECK(isfinite(job->timestamp));
	json_decref(env);

	reply = sc_job_reply(job, job->name[0] & 1, (long) in->len, (long long) in->len - 7);
	FZ_CHECK(reply != NULL);
	env = json_loads(reply, 0, &jerr);
	FZ_CHECK(env != NULL);
	check_field(json_object_get(env, "response"), "jobId", job->job_id);
	json_decref(env);
	free(reply);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	uint8_t flags = fz_byte(&in);
	char *type = (flags & 1) ? fz_take(&in) : NULL;
	char *rk = (flags & 2) ? fz_take(&in) : NULL;
	char *queue = (flags & 4) ? fz_take(&in) : NULL;
	char *body = fz_copy(in.p, in.left);
	struct sc_job_in jin = {body, in.left, type, rk, queue, (flags & 8) != 0};
	struct sc_job job;
	char reason[256];
	double t;

	memset(reason, 'x', sizeof(reason));
	if (sc_job_parse(&jin, &job, reason, sizeof(reason)) == 0)
		check_accepted(&jin, &job);
	else
	{
		FZ_CHECK(memchr(reason, '\0', sizeof(reason)) != NULL);
		FZ_CHECK(reason[0] != '\0' && strchr(reason, '\n') == NULL);
		FZ_CHECK(strcmp(reason, "out of memory") != 0); /* no allocation fails here */
		FZ_CHECK(job.envelope == NULL && job.job_id == NULL);
	}
	sc_job_free(&job);

	/* the timestamp parser on the type string (any NUL-free text) */
	t = sc_job_parse_time(type ? type : "");
	FZ_CHECK(isfinite(t));

	free(type);
	free(rk);
	free(queue);
	free(body);
	return 0;
}
