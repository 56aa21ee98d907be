/*
 * job.c — parsing of consumed messages (see job.h).
 *
 * Rules: the envelope passed to SQL is the original body when the message is
 * already an envelope (SQL tolerates the NestJS "id" key), or a compact
 * re-serialisation when a bare job is wrapped.  All field checks beyond
 * "is this an envelope with an object as data" are SQL's (one source of truth),
 * but a body SQL could not even read as jsonb (a number beyond numeric's
 * range) is rejected here: it would fail the whole batch's statement.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "job.h"

static char *
dup_str_field(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

double
sc_job_parse_time(const char *iso)
{
	struct tm tm;
	int ms = 0, n = 0;
	char rest[16] = "";

	memset(&tm, 0, sizeof(tm));
	if (!iso ||
		sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			   &tm.tm_sec, &n) != 6)
		return 0;
	iso += n;
	if (*iso == '.')
	{
		int digits = 0;

		iso++;
		while (*iso >= '0' && *iso <= '9')
		{
			if (digits < 3)
				ms = ms * 10 + (*iso - '0');
			digits++;
			iso++;
		}
		while (digits < 3)
			ms *= 10, digits++;
	}
	snprintf(rest, sizeof(rest), "%s", iso);
	if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0 && rest[0] != '\0')
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (double) timegm(&tm) + ms / 1000.0;
}

/*
 * Whether every number of a JSON text (syntax already checked by jansson)
 * fits PostgreSQL's numeric, which jsonb stores numbers in: at most
 * SC_JOB_NUMERIC_DSCALE_MAX digits after the decimal point once the exponent
 * is applied, and an exponent below SC_JOB_NUMERIC_EXP_LIMIT.  jansson reads
 * 1e-16384 as 0.0, but its text would make the batch's jsonb cast fail.
 */
static int
numbers_fit_numeric(const char *s, size_t len)
{
	int in_string = 0;

	for (size_t i = 0; i < len; i++)
	{
		long frac = 0, exp = 0;
		int exp_neg = 0;

		if (in_string)
		{
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
			continue;
		}
		if (s[i] == '"')
			in_string = 1;
		if (s[i] != '-' && !isdigit((unsigned char) s[i]))
			continue;
		while (i < len && (s[i] == '-' || isdigit((unsigned char) s[i])))
			i++;
		if (i < len && s[i] == '.')
			for (i++; i < len && isdigit((unsigned char) s[i]); i++)
				frac++;
		if (i < len && (s[i] == 'e' || s[i] == 'E'))
		{
			i++;
			if (i < len && (s[i] == '+' || s[i] == '-'))
				exp_neg = s[i++] == '-';
			for (; i < len && isdigit((unsigned char) s[i]); i++)
				if (exp < SC_JOB_NUMERIC_EXP_LIMIT)
					exp = exp * 10 + (s[i] - '0');
		}
		if (exp >= SC_JOB_NUMERIC_EXP_LIMIT || frac + (exp_neg ? exp : -exp) > SC_JOB_NUMERIC_DSCALE_MAX)
			return 0;
		i--; /* s[i] ended the number: look at it again */
	}
	return 1;
}

/*
 * The body as a JSON object whose numbers PostgreSQL can store, or NULL with
 * the reason (one line) for a body that is too large, holds a NUL byte, is not
 * JSON, not an object, or has a number beyond numeric's range.
 */
static json_t *
load_body(const struct sc_job_in *in, char *reason, size_t reasonlen)
{
	json_error_t jerr;
	json_t *root;

	if (in->len > SC_JOB_MAX_BODY)
	{
		snprintf(reason, reasonlen, "body of %zu bytes is larger than 64 KiB", in->len);
		return NULL;
	}
	/*
	 * JSON has no raw NUL byte, but jansson's reader takes one after a number
	 * as the end of it and reads on; the envelope (a C string) would end there.
	 */
	if (in->len && memchr(in->body, '\0', in->len))
	{
		snprintf(reason, reasonlen, "not JSON: the body contains a NUL byte");
		return NULL;
	}
	root = json_loadb(in->body, in->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
	{
		snprintf(reason, reasonlen, "not JSON: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
		for (char *c = reason; *c; c++) /* jansson quotes the input: keep the logged reason one line */
			if ((unsigned char) *c < 0x20 || *c == 0x7f)
				*c = '?';
		return NULL;
	}
	if (!json_is_object(root))
		snprintf(reason, reasonlen, "not a JSON object");
	else if (!numbers_fit_numeric(in->body, in->len))
		snprintf(reason, reasonlen,
				 "a number is beyond PostgreSQL's numeric range (at most %d digits "
				 "after the decimal point)",
				 SC_JOB_NUMERIC_DSCALE_MAX);
	else
		return root;
	json_decref(root);
	return NULL;
}

int
sc_job_parse(const struct sc_job_in *in, struct sc_job *out, char *reason, size_t reasonlen)
{
	json_t *root, *pattern, *data;

	memset(out, 0, sizeof(*out));
	root = load_body(in, reason, reasonlen);
	if (!root)
		return -1;
	pattern = json_object_get(root, "pattern");
	if (pattern)
	{
		/* the NestJS envelope */
		if (!json_is_string(pattern) || json_string_length(pattern) == 0 ||
			json_string_length(pattern) >= sizeof(out->name))
		{
			snprintf(reason, reasonlen, "envelope \"pattern\" is not a job name");
			json_decref(root);
			return -1;
		}
		data = json_object_get(root, "data");
		if (!data)
		{
			snprintf(reason, reasonlen, "envelope without \"data\"");
			json_decref(root);
			return -1;
		}
		if (!json_is_object(data))
		{
			snprintf(reason, reasonlen, "envelope \"data\" is not an object");
			json_decref(root);
			return -1;
		}
		snprintf(out->name, sizeof(out->name), "%s", json_string_value(pattern));
		out->is_request = json_object_get(root, "id") != NULL && in->has_reply_to;
		out->envelope = strndup(in->body, in->len);
	}
	else
	{
		/* a bare job: its name comes from the type property or the routing key */
		const char *name = NULL;
		json_t *env, *jname;

		if (in->type && in->type[0])
			name = in->type;
		else if (in->routing_key && in->routing_key[0] && !(in->queue && strcmp(in->routing_key, in->queue) == 0))
			name = in->routing_key;
		if (!name)
		{
			snprintf(reason, reasonlen,
					 "no job name: no \"pattern\", no type property, and the routing key names no job");
			json_decref(root);
			return -1;
		}
		if (strlen(name) >= sizeof(out->name))
		{
			snprintf(reason, reasonlen, "job name is too long");
			json_decref(root);
			return -1;
		}
		snprintf(out->name, sizeof(out->name), "%s", name);
		data = root;
		jname = json_string(name); /* NULL when the name is not UTF-8 */
		if (!jname)
		{
			snprintf(reason, reasonlen, "job name (type property or routing key) is not valid UTF-8");
			json_decref(root);
			return -1;
		}
		env = json_pack("{s:o, s:O}", "pattern", jname, "data", root);
		if (!env)
		{
			snprintf(reason, reasonlen, "out of memory");
			json_decref(root);
			return -1;
		}
		out->envelope = json_dumps(env, JSON_COMPACT);
		json_decref(env);
	}
	if (!out->envelope)
	{
		snprintf(reason, reasonlen, "out of memory");
		json_decref(root);
		return -1;
	}
	out->job_id = dup_str_field(data, "jobId");
	out->content_type = dup_str_field(data, "contentType");
	out->content_id = dup_str_field(data, "contentId");
	{
		json_t *ts = json_object_get(data, "timestamp");

		out->timestamp = json_is_string(ts) ? sc_job_parse_time(json_string_value(ts)) : 0;
	}
	json_decref(root);
	return 0;
}

void
sc_job_free(struct sc_job *job)
{
	free(job->envelope);
	free(job->job_id);
	free(job->content_type);
	free(job->content_id);
	memset(job, 0, sizeof(*job));
}

char *
sc_job_reply(const struct sc_job *job, int success, long processing_ms, long long share_count)
{
	json_t *r = json_pack("{s:{s:o, s:b, s:I, s:{s:o, s:o, s:o}}, s:b}", "response", "jobId",
						  job->job_id ? json_string(job->job_id) : json_null(), "success", success, "processingTime",
						  (json_int_t) processing_ms, "data", "contentType",
						  job->content_type ? json_string(job->content_type) : json_null(), "contentId",
						  job->content_id ? json_string(job->content_id) : json_null(), "shareCount",
						  share_count >= 0 ? json_integer(share_count) : json_null(), "isDisposed", 1);
	char *s;

	if (!r)
		return NULL;
	s = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return s;
}
