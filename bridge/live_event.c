/*
 * live_event.c — encode/decode of live-count texts (docs/live.md): the
 * share_count_changed event, SSE frames, ws server and client messages.
 *
 * Rules: no I/O and no state but two atomic counters (events received /
 * rejected), so any thread may call anything here.  Every returned string is
 * malloc'ed (jansson's json_dumps or our own concatenation) and freed by the
 * caller.  Inputs are parsed with json_loadb (never past len; jansson rejects
 * invalid UTF-8 and \u0000), duplicate keys are rejected, and every field is
 * type- and size-checked before it is copied into a fixed-size struct field.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "live_event.h"

static _Atomic uint64_t n_received;
static _Atomic uint64_t n_rejected;

uint64_t
live_event_received(void)
{
	return atomic_load(&n_received);
}

uint64_t
live_event_rejected(void)
{
	return atomic_load(&n_rejected);
}

/* Write the reason into err as one printable line; returns -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* one line: jansson quotes the offending input, which may hold control bytes */
	for (char *p = err; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

static json_t *
data_object(const struct live_count *c)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "contentType", c->content_type, "contentId", c->content_id,
					 "shareCount", (json_int_t) c->share_count, "delta", (json_int_t) c->delta, "version",
					 (json_int_t) c->version, "timestamp", c->timestamp);
}

static char *
dump_and_free(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

char *
live_event_data_json(const struct live_count *c)
{
	return dump_and_free(data_object(c));
}

char *
live_event_encode(const struct live_count *c)
{
	json_t *data = data_object(c);

	return data ? dump_and_free(json_pack("{s:s, s:o}", "pattern", LIVE_EVENT_PATTERN, "data", data)) : NULL;
}

/* Copy data.<key>, a string of 1..max bytes, into dst (max + 1 bytes). */
static int
get_string(json_t *data, const char *key, char *dst, size_t max, int allow_empty, char *err, size_t errlen)
{
	json_t *v = json_object_get(data, key);
	size_t n;

	if (!json_is_string(v))
		return fail(err, errlen, "\"%s\" must be a string", key);
	n = json_string_length(v);
	if ((n == 0 && !allow_empty) || n > max)
		return fail(err, errlen, "\"%s\" must be %d to %zu bytes", key, allow_empty ? 0 : 1, max);
	memcpy(dst, json_string_value(v), n + 1);
	return 0;
}

/* data.<key> as an integer >= min. */
static int
get_int(json_t *data, const char *key, int64_t min, int64_t *dst, char *err, size_t errlen)
{
	json_t *v = json_object_get(data, key);

	if (!json_is_integer(v))
		return fail(err, errlen, "\"%s\" must be an integer", key);
	if (json_integer_value(v) < min)
		return fail(err, errlen, "\"%s\" must be at least %lld", key, (long long) min);
	*dst = json_integer_value(v);
	return 0;
}

static int
decode_data(json_t *data, struct live_count *out, char *err, size_t errlen)
{
	if (!json_is_object(data))
		return fail(err, errlen, "\"data\" must be an object");
	if (get_string(data, "contentType", out->content_type, LIVE_MAX_TYPE_BYTES, 0, err, errlen) < 0 ||
		get_string(data, "contentId", out->content_id, LIVE_MAX_ID_BYTES, 0, err, errlen) < 0 ||
		get_int(data, "shareCount", 0, &out->share_count, err, errlen) < 0 ||
		get_int(data, "delta", INT64_MIN, &out->delta, err, errlen) < 0 ||
		get_int(data, "version", 1, &out->version, err, errlen) < 0 ||
		get_string(data, "timestamp", out->timestamp, LIVE_MAX_TS_BYTES - 1, 1, err, errlen) < 0)
		return -1;
	return 0;
}

static int
decode(const char *body, size_t len, struct live_count *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *pattern;
	int rc;

	if (body == NULL || len == 0)
		return fail(err, errlen, "empty body");
	if (len > LIVE_EVENT_MAX_BODY)
		return fail(err, errlen, "body of %zu bytes is over %d", len, LIVE_EVENT_MAX_BODY);
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return fail(err, errlen, "not JSON: %s", jerr.text);
	pattern = json_object_get(root, "pattern");
	if (!json_is_object(root))
		rc = fail(err, errlen, "not a JSON object");
	else if (!json_is_string(pattern) || strcmp(json_string_value(pattern), LIVE_EVENT_PATTERN) != 0)
		rc = fail(err, errlen, "\"pattern\" is not \"%s\"", LIVE_EVENT_PATTERN);
	else if (json_object_get(root, "id") != NULL)
		rc = fail(err, errlen, "has an \"id\": a NestJS request, not an event");
	else
		rc = decode_data(json_object_get(root, "data"), out, err, errlen);
	json_decref(root);
	return rc;
}

int
live_event_decode(const char *body, size_t len, struct live_count *out, char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof(*out));
	atomic_fetch_add(&n_received, 1);
	rc = decode(body, len, out, err, errlen);
	if (rc < 0)
	{
		atomic_fetch_add(&n_rejected, 1);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

/* prefix + middle + suffix, malloc'ed. */
static char *
concat3(const char *prefix, const char *middle, const char *suffix)
{
	size_t a = strlen(prefix), b = strlen(middle), c = strlen(suffix);
	char *s = malloc(a + b + c + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, prefix, a);
	memcpy(s + a, middle, b);
	memcpy(s + a + b, suffix, c + 1);
	return s;
}

char *
live_sse_frame(const char *data_json)
{
	return concat3("event: count\ndata: ", data_json, "\n\n");
}

char *
live_ws_event_msg(const char *data_json)
{
	return concat3("{\"event\":\"" LIVE_EVENT_PATTERN "\",\"data\":", data_json, "}");
}

char *
live_ws_error_msg(int status, const char *message)
{
	return dump_and_free(
		json_pack("{s:s, s:{s:i, s:s}}", "event", "error", "data", "statusCode", status, "message", message));
}

static int
client_ids(json_t *ids, struct live_client_msg *out, char *err, size_t errlen)
{
	size_t n = json_array_size(ids);

	if (!json_is_array(ids))
		return fail(err, errlen, "\"data.ids\" must be an array of strings");
	if (n == 0 || n > LIVE_MAX_IDS_PER_SUBSCRIBE)
		return fail(err, errlen, "\"data.ids\" must hold 1 to %d ids, not %zu", LIVE_MAX_IDS_PER_SUBSCRIBE, n);
	out->ids = calloc(n, sizeof(char *));
	if (out->ids == NULL)
		return fail(err, errlen, "out of memory");
	for (size_t i = 0; i < n; i++)
	{
		json_t *v = json_array_get(ids, i);
		size_t len = json_string_length(v);

		if (!json_is_string(v) || len == 0 || len > LIVE_MAX_ID_BYTES)
			return fail(err, errlen, "\"data.ids\"[%zu] must be a string of 1 to %d bytes", i, LIVE_MAX_ID_BYTES);
		out->ids[i] = strdup(json_string_value(v));
		if (out->ids[i] == NULL)
			return fail(err, errlen, "out of memory");
		out->nids = (int) i + 1;
	}
	return 0;
}

static int
client_parse(json_t *root, struct live_client_msg *out, char *err, size_t errlen)
{
	json_t *ev = json_object_get(root, "event"), *data = json_object_get(root, "data");
	const char *name = json_string_value(ev);

	if (!json_is_object(root))
		return fail(err, errlen, "a message must be a JSON object {\"event\":…,\"data\":…}");
	if (name && strcmp(name, "subscribe") == 0)
		out->op = LIVE_SUBSCRIBE;
	else if (name && strcmp(name, "unsubscribe") == 0)
		out->op = LIVE_UNSUBSCRIBE;
	else
		return fail(err, errlen, "\"event\" must be \"subscribe\" or \"unsubscribe\"");
	if (!json_is_object(data))
		return fail(err, errlen, "\"data\" must be an object {\"contentType\":…,\"ids\":[…]}");
	if (get_string(data, "contentType", out->content_type, LIVE_MAX_TYPE_BYTES, 0, err, errlen) < 0)
		return fail(err, errlen, "\"data.contentType\" must be a string of 1 to %d bytes", LIVE_MAX_TYPE_BYTES);
	return client_ids(json_object_get(data, "ids"), out, err, errlen);
}

int
live_client_parse(const char *msg, size_t len, struct live_client_msg *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	root = msg ? json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (root == NULL)
		return fail(err, errlen, "not JSON: %s", msg ? jerr.text : "empty message");
	rc = client_parse(root, out, err, errlen);
	json_decref(root);
	if (rc < 0)
		live_client_msg_free(out);
	return rc;
}

void
live_client_msg_free(struct live_client_msg *m)
{
	for (int i = 0; i < m->nids; i++)
		free(m->ids[i]);
	free(m->ids);
	m->ids = NULL;
	m->nids = 0;
}
