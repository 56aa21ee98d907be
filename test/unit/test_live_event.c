/*
 * test_live_event.c — unit tests for bridge/live_event.c (docs/live.md): the
 * share_count_changed envelope round trip, strict decoding of received events
 * (each bad one rejected with a reason and counted), SSE frames, ws server
 * messages, and client subscribe / unsubscribe parsing with clear errors.
 * Plain program: exit 0 = pass; every failed check prints one line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "live_event.h"

#include "unit.h"

static void
test_round_trip(void)
{
	struct live_count c = {.share_count = 42, .delta = -3, .version = 7}, d;
	char *body, err[200];

	snprintf(c.content_type, sizeof(c.content_type), "article");
	snprintf(c.content_id, sizeof(c.content_id), "caf\xc3\xa9 \"1\"\n");
	snprintf(c.timestamp, sizeof(c.timestamp), "2026-01-02T03:04:05.678Z");
	body = live_event_encode(&c);
	CHECK(body &&
			  strcmp(body,
					 "{\"pattern\":\"share_count_changed\",\"data\":{\"contentType\":\"article\","
					 "\"contentId\":\"caf\xc3\xa9 \\\"1\\\"\\n\",\"shareCount\":42,\"delta\":-3,\"version\":7,"
					 "\"timestamp\":\"2026-01-02T03:04:05.678Z\"}}") == 0,
		  "envelope: %s", body);
	CHECK(live_event_decode(body, strlen(body), &d, err, sizeof(err)) == 0, "decode own: %s", err);
	CHECK(memcmp(&c, &d, sizeof(c)) == 0, "round trip equal");
	free(body);
}

/* body must be rejected with a reason containing why; the rejected counter moves by one. */
static void
expect_reject(const char *body, const char *why)
{
	struct live_count d;
	char err[200] = "";
	uint64_t before = live_event_rejected();

	CHECK(live_event_decode(body, strlen(body), &d, err, sizeof(err)) == -1, "accepted: %s", body);
	CHECK(strstr(err, why) != NULL, "%s: reason \"%s\" lacks \"%s\"", body, err, why);
	for (const char *p = err; *p; p++)
		CHECK((unsigned char) *p >= 0x20, "%s: reason has control byte 0x%02x (it is logged as one line)", body, *p);
	CHECK(live_event_rejected() == before + 1, "%s: not counted", body);
	CHECK(d.content_type[0] == '\0' && d.version == 0, "%s: output left filled", body);
}

#define OKDATA \
	"\"contentType\":\"a\",\"contentId\":\"1\",\"shareCount\":1,\"delta\":1,\"version\":1,\"timestamp\":\"t\""

static void
test_reject(void)
{
	char big[LIVE_EVENT_MAX_BODY + 64];

	expect_reject("", "empty");
	expect_reject("{", "not JSON");
	expect_reject("{\"pattern\"\n\x01:1}", "not JSON"); /* jansson quotes the newline and \x01 */
	expect_reject("[1]", "not a JSON object");
	expect_reject("{\"pattern\":\"share_created\",\"data\":{" OKDATA "}}", "pattern");
	expect_reject("{\"pattern\":\"share_count_changed\",\"id\":\"x\",\"data\":{" OKDATA "}}", "request");
	expect_reject("{\"pattern\":\"share_count_changed\",\"pattern\":\"share_count_changed\",\"data\":{" OKDATA "}}",
				  "not JSON");
	expect_reject("{\"pattern\":\"share_count_changed\",\"data\":[]}", "\"data\" must be an object");
	expect_reject("{\"pattern\":\"share_count_changed\",\"data\":{\"contentType\":\"\",\"contentId\":\"1\"}}",
				  "contentType");
	expect_reject("{\"pattern\":\"share_count_changed\",\"data\":{\"contentType\":\"a\",\"contentId\":\"1\\u0000\"}}",
				  "not JSON");
	expect_reject(
		"{\"pattern\":\"share_count_changed\",\"data\":{\"contentType\":\"a\",\"contentId\":\"1\",\"shareCount\":-1}}",
		"shareCount");
	expect_reject(
		"{\"pattern\":\"share_count_changed\",\"data\":{\"contentType\":\"a\",\"contentId\":\"1\",\"shareCount\":1.5}}",
		"shareCount");
	expect_reject(
		"{\"pattern\":\"share_count_changed\",\"data\":{\"contentType\":\"a\",\"contentId\":\"1\",\"shareCount\":1,"
		"\"delta\":1,\"version\":0,\"timestamp\":\"t\"}}",
		"version");
	expect_reject(
		"{\"pattern\":\"share_count_changed\",\"data\":{\"contentType\":\"a\",\"contentId\":\"1\",\"shareCount\":1,"
		"\"delta\":1,\"version\":1}}",
		"timestamp");
	expect_reject("{\"pattern\":\"share_count_changed\",\"data\":{\"contentType\":\"a\",\"contentId\":\"\xff\"}}",
				  "not JSON");
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_reject(big, "over");
}

static void
test_frames(void)
{
	char *s = live_sse_frame("{\"a\":1}");

	CHECK(s && strcmp(s, "event: count\ndata: {\"a\":1}\n\n") == 0, "sse: %s", s);
	free(s);
	CHECK(strcmp(LIVE_SSE_HEARTBEAT, ": heartbeat\n\n") == 0 && LIVE_SSE_HEARTBEAT[0] == ':', "heartbeat is a comment");
	s = live_ws_event_msg("{\"a\":1}");
	CHECK(s && strcmp(s, "{\"event\":\"share_count_changed\",\"data\":{\"a\":1}}") == 0, "ws event: %s", s);
	free(s);
	s = live_ws_error_msg(400, "bad \"x\"");
	CHECK(s && strcmp(s, "{\"event\":\"error\",\"data\":{\"statusCode\":400,\"message\":\"bad \\\"x\\\"\"}}") == 0,
		  "ws error: %s", s);
	free(s);
}

static void
expect_client_error(const char *msg, const char *why)
{
	struct live_client_msg m;
	char err[200] = "";

	CHECK(live_client_parse(msg, strlen(msg), &m, err, sizeof(err)) == -1, "accepted: %.80s", msg);
	CHECK(strstr(err, why) != NULL, "%.80s: error \"%s\" lacks \"%s\"", msg, err, why);
	CHECK(m.ids == NULL && m.nids == 0, "%.80s: ids left allocated", msg);
}

static void
test_client(void)
{
	struct live_client_msg m;
	char err[200];
	const char *ok = "{\"event\":\"subscribe\",\"data\":{\"contentType\":\"article\",\"ids\":[\"1\",\"2\"]}}";
	const char *un = "{\"event\":\"unsubscribe\",\"data\":{\"contentType\":\"article\",\"ids\":[\"2\"]}}";
	json_t *ids = json_array(), *root;
	char *many;

	CHECK(live_client_parse(ok, strlen(ok), &m, err, sizeof(err)) == 0 && m.op == LIVE_SUBSCRIBE && m.nids == 2 &&
			  strcmp(m.content_type, "article") == 0 && strcmp(m.ids[1], "2") == 0,
		  "subscribe: %s", err);
	live_client_msg_free(&m);
	CHECK(live_client_parse(un, strlen(un), &m, err, sizeof(err)) == 0 && m.op == LIVE_UNSUBSCRIBE && m.nids == 1,
		  "unsubscribe: %s", err);
	live_client_msg_free(&m);
	expect_client_error("garbage", "not JSON");
	expect_client_error("[]", "JSON object");
	expect_client_error("{\"event\":\"publish\",\"data\":{}}", "\"subscribe\" or \"unsubscribe\"");
	expect_client_error("{\"event\":\"subscribe\"}", "\"data\" must be an object");
	expect_client_error("{\"event\":\"subscribe\",\"data\":{\"ids\":[\"1\"]}}", "contentType");
	expect_client_error("{\"event\":\"subscribe\",\"data\":{\"contentType\":\"a\",\"ids\":\"1\"}}", "array");
	expect_client_error("{\"event\":\"subscribe\",\"data\":{\"contentType\":\"a\",\"ids\":[]}}", "1 to 1000 ids");
	expect_client_error("{\"event\":\"subscribe\",\"data\":{\"contentType\":\"a\",\"ids\":[\"1\",2]}}",
						"[1] must be a string");
	expect_client_error("{\"event\":\"subscribe\",\"data\":{\"contentType\":\"a\",\"ids\":[\"1\",\"\"]}}", "[1]");
	for (int i = 0; i < 10000; i++)
		json_array_append_new(ids, json_sprintf("%d", i));
	root = json_pack("{s:s, s:{s:s, s:o}}", "event", "subscribe", "data", "contentType", "a", "ids", ids);
	many = json_dumps(root, JSON_COMPACT);
	expect_client_error(many, "not 10000");
	free(many);
	json_decref(root);
}

int
main(void)
{
	test_round_trip();
	test_reject();
	test_frames();
	test_client();
	return unit_done("test_live_event");
}
