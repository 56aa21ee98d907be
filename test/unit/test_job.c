/*
 * test_job.c — sc_job_parse(): what the consumer rejects before SQL (size,
 * JSON, shape, no job name), how bare jobs are wrapped into the envelope,
 * NestJS send() detection, the reply shape, and timestamp parsing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge.h"
#include "job.h"
#include "unit.h"

static int
parse(const char *body, const char *type, const char *rk, int reply_to, struct sc_job *job, char *reason)
{
	struct sc_job_in in = {body, strlen(body), type, rk, "sharecount.jobs", reply_to};

	reason[0] = '\0';
	return sc_job_parse(&in, job, reason, 256);
}

static void
rejects(const char *body, const char *type, const char *rk, const char *needle)
{
	struct sc_job job;
	char reason[256];
	int rc = parse(body, type, rk, 0, &job, reason);

	if (rc != -1 || !strstr(reason, needle))
	{
		failures++;
		printf("FAIL: %.60s: rc=%d reason=\"%s\" (wanted \"%s\")\n", body, rc, reason, needle);
	}
	sc_job_free(&job);
}

int
main(void)
{
	struct sc_job job;
	char reason[256];
	char *big, *s;
	json_t *j;

	/* an envelope passes through unchanged */
	const char *env = "{\"pattern\":\"share_created\",\"data\":{\"jobId\":\"j1\",\"contentType\":\"article\","
					  "\"contentId\":\"1\",\"timestamp\":\"2026-01-02T03:04:05.678Z\"}}";

	CHECK(parse(env, NULL, "share_created", 0, &job, reason) == 0);
	CHECK(strcmp(job.envelope, env) == 0);
	CHECK(strcmp(job.name, "share_created") == 0);
	CHECK(job.job_id && strcmp(job.job_id, "j1") == 0);
	CHECK(job.content_type && strcmp(job.content_type, "article") == 0);
	CHECK(job.content_id && strcmp(job.content_id, "1") == 0);
	CHECK(job.timestamp > 1767323045.6 && job.timestamp < 1767323045.7);
	CHECK(!job.is_request);
	sc_job_free(&job);

	/* NestJS send(): "id" + reply_to; "id" without reply_to is just a job */
	CHECK(parse("{\"pattern\":\"share_created\",\"data\":{},\"id\":\"r1\"}", NULL, "q", 1, &job, reason) == 0);
	CHECK(job.is_request);
	sc_job_free(&job);
	CHECK(parse("{\"pattern\":\"share_created\",\"data\":{},\"id\":null}", NULL, "q", 0, &job, reason) == 0);
	CHECK(!job.is_request);
	sc_job_free(&job);

	/* a bare job is wrapped; its name comes from type, else the routing key */
	CHECK(parse("{\"jobId\":\"j2\",\"contentId\":\"x\"}", "share_count_update", "sharecount.jobs", 0, &job, reason) ==
		  0);
	j = json_loads(job.envelope, 0, NULL);
	CHECK(j && strcmp(json_string_value(json_object_get(j, "pattern")), "share_count_update") == 0);
	CHECK(j && strcmp(json_string_value(json_object_get(json_object_get(j, "data"), "jobId")), "j2") == 0);
	json_decref(j);
	sc_job_free(&job);
	CHECK(parse("{\"jobId\":\"j3\"}", NULL, "share_deleted", 0, &job, reason) == 0);
	CHECK(strcmp(job.name, "share_deleted") == 0);
	CHECK(strstr(job.envelope, "\"pattern\":\"share_deleted\"") != NULL);
	sc_job_free(&job);
	CHECK(parse("{\"jobId\":\"j4\"}", "", "share_deleted", 0, &job, reason) == 0); /* empty type: routing key */
	CHECK(strcmp(job.name, "share_deleted") == 0);
	sc_job_free(&job);

	/* rejects */
	big = malloc(SC_JOB_MAX_BODY + 100);
	memset(big, ' ', SC_JOB_MAX_BODY + 99);
	big[0] = '{';
	big[SC_JOB_MAX_BODY + 97] = '}';
	big[SC_JOB_MAX_BODY + 99] = '\0';
	rejects(big, "share_created", "share_created", "larger than 64 KiB");
	free(big);
	rejects("{not json", NULL, "q", "not JSON");
	rejects("", NULL, "q", "not JSON");
	rejects("[1]", NULL, "q", "not a JSON object");
	rejects("{\"a\":1,\"a\":2}", "share_created", "q", "not JSON"); /* duplicate keys: ambiguous */
	rejects("{\"pattern\":\"share_created\"}", NULL, "q", "without \"data\"");
	rejects("{\"pattern\":\"share_created\",\"data\":[1]}", NULL, "q", "\"data\" is not an object");
	rejects("{\"pattern\":5,\"data\":{}}", NULL, "q", "not a job name");
	rejects("{\"pattern\":\"\",\"data\":{}}", NULL, "q", "not a job name");
	rejects("{\"jobId\":\"j\"}", NULL, "sharecount.jobs", "no job name"); /* default exchange, no type */
	rejects("{\"jobId\":\"j\"}", NULL, "", "no job name");
	rejects("{\"x\":\"\xff\"}", "share_created", "q", "not JSON"); /* invalid UTF-8 */

	/* reply shape */
	CHECK(parse(env, NULL, "q", 1, &job, reason) == 0);
	s = sc_job_reply(&job, 1, 12, 42);
	CHECK(s &&
		  strcmp(s,
				 "{\"response\":{\"jobId\":\"j1\",\"success\":true,\"processingTime\":12,"
				 "\"data\":{\"contentType\":\"article\",\"contentId\":\"1\",\"shareCount\":42}},"
				 "\"isDisposed\":true}") == 0);
	if (s && failures)
		printf("  reply: %s\n", s);
	free(s);
	s = sc_job_reply(&job, 0, 3, -1);
	CHECK(s && strstr(s, "\"success\":false") && strstr(s, "\"shareCount\":null"));
	free(s);
	sc_job_free(&job);

	/* timestamps */
	CHECK(sc_job_parse_time("1970-01-01T00:00:01Z") == 1.0);
	CHECK(sc_job_parse_time("1970-01-01T00:00:01.5Z") == 1.5);
	CHECK(sc_job_parse_time("1970-01-01T00:00:01.250+00:00") == 1.25);
	CHECK(sc_job_parse_time("yesterday") == 0);
	CHECK(sc_job_parse_time("1970-01-01T00:00:01+02:00") == 0);

	return unit_done("test_job");
}
