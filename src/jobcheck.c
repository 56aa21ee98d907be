/*
 * jobcheck.c: validation of one job message for sharecount_apply*()
 * (docs/extension.md, "Applying jobs"): the envelope, each field's type and
 * limits, and the delta the job carries.
 *
 * Rules:
 * - A job is validated completely before anything is written; the result is
 *   NULL (valid, *job filled) or the error message naming the field, never an
 *   ERROR, so that a batch can report an invalid job and apply the others.
 * - Memory: strings are palloc'd in the caller's context.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "sharecount.h"
#include "apply.h"

typedef enum
{
	F_STRING,		  /* a JSON string */
	F_STRING_OR_NULL, /* a JSON string or null */
	F_AMOUNT		  /* an integer 1..1,000,000 or null */
} FieldType;

/* The job kinds as bits, for FieldSpec.required and FieldSpec.optional. */
#define IN_CREATED 0x1 /* share_created */
#define IN_DELETED 0x2 /* share_deleted */
#define IN_UPDATE 0x4  /* share_count_update */
#define IN_ALL (IN_CREATED | IN_DELETED | IN_UPDATE)

typedef struct FieldSpec
{
	const char *name;
	FieldType type;
	int required; /* IN_* bits: the kinds whose jobs must carry the field */
	int optional; /* IN_* bits: the kinds whose jobs may carry it */
} FieldSpec;

/*
 * The fields of the jobs, docs/extension.md "Jobs", in the order they are
 * checked (so the first bad one is the one reported); a field that is neither
 * required nor optional in a kind is an unknown field there.
 */
static const FieldSpec job_fields[] = {
	{"jobId", F_STRING, IN_ALL, 0},
	{"shareId", F_STRING_OR_NULL, IN_CREATED | IN_DELETED, 0},
	{"contentType", F_STRING, IN_ALL, 0},
	{"contentId", F_STRING, IN_ALL, 0},
	{"userId", F_STRING_OR_NULL, IN_CREATED | IN_DELETED, 0},
	{"channelId", F_STRING_OR_NULL, 0, IN_ALL},
	{"campaignId", F_STRING_OR_NULL, 0, IN_ALL},
	{"operation", F_STRING, IN_UPDATE, 0},
	{"amount", F_AMOUNT, 0, IN_UPDATE},
	{"timestamp", F_STRING, IN_ALL, 0},
	{NULL, 0, 0, 0}};

static bool
digits(const char *s, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
num(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/*
 * Whether s is an ISO-8601 date and time: YYYY-MM-DDTHH:MM[:SS[.fraction]]
 * followed by an optional Z or +HH[:MM]/-HH[:MM].  A hand-written check (not
 * timestamptz_in) because a batch must report a bad timestamp without an
 * error, and PostgreSQL 15 has no soft input errors.
 */
static bool
iso8601_valid(const char *s, int len)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
								31, 31, 30, 31, 30, 31};
	int p = 0, y, mo, d;

	if (len < 16 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
		s[7] != '-' || !digits(s + 8, 2) ||
		(s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2) ||
		s[13] != ':' || !digits(s + 14, 2))
		return false;
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	if (num(s + 11, 2) > 23 || num(s + 14, 2) > 59)
		return false;
	p = 16;
	if (p < len && s[p] == ':')
	{
		if (p + 3 > len || !digits(s + p + 1, 2) || num(s + p + 1, 2) > 60)
			return false;
		p += 3;
		if (p < len && (s[p] == '.' || s[p] == ','))
		{
			int start = ++p;

			while (p < len && s[p] >= '0' && s[p] <= '9')
				p++;
			if (p == start)
				return false;
		}
	}
	if (p == len)
		return true;
	if ((s[p] == 'Z' || s[p] == 'z') && p + 1 == len)
		return true;
	if (s[p] == '+' || s[p] == '-')
	{
		p++;
		if (p + 2 > len || !digits(s + p, 2) || num(s + p, 2) > 23)
			return false;
		p += 2;
		if (p == len)
			return true;
		if (s[p] == ':')
			p++;
		if (p + 2 == len && digits(s + p, 2) && num(s + p, 2) <= 59)
			return true;
	}
	return false;
}

/*
 * The instant of a timestamp that iso8601_valid() accepted (no zone = UTC);
 * false if PostgreSQL cannot represent it (its history hour is then left out).
 */
static bool
iso8601_timestamp(const char *s, int len, TimestampTz *ts)
{
	struct pg_tm tm;
	fsec_t fsec = 0;
	int tz = 0; /* seconds west of UTC, as tm2timestamp wants it */
	int p = 16;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = num(s, 4);
	tm.tm_mon = num(s + 5, 2);
	tm.tm_mday = num(s + 8, 2);
	tm.tm_hour = num(s + 11, 2);
	tm.tm_min = num(s + 14, 2);
	if (p < len && s[p] == ':')
	{
		tm.tm_sec = num(s + p + 1, 2);
		p += 3;
		if (p < len && (s[p] == '.' || s[p] == ','))
		{
			int scale = 100000; /* the first digit's microseconds */

			for (p++; p < len && s[p] >= '0' && s[p] <= '9'; p++, scale /= 10)
				fsec += (s[p] - '0') * scale;
		}
	}
	if (p < len && (s[p] == '+' || s[p] == '-'))
	{
		int off = num(s + p + 1, 2) * SECS_PER_HOUR;

		if (p + 3 < len)
			off += num(s + len - 2, 2) * SECS_PER_MINUTE;
		tz = s[p] == '+' ? -off : off;
	}
	return tm2timestamp(&tm, fsec, &tz, ts) == 0;
}

/* "name" must be N to M bytes */
static char *
check_length(const char *name, int len, int max)
{
	if (len < 1 || len > max)
		return psprintf("invalid job: \"%s\" must be 1 to %d bytes", name,
						max);
	return NULL;
}

/*
 * The envelope of one message (docs/extension.md, "Applying jobs"): only
 * "pattern", "data" and "id"; the pattern names the job kind (job->kind, its
 * IN_* bit *in) and "data" is an object (*dc).  NULL, or the error naming the key.
 */
static char *
read_envelope(Jsonb *jb, ScJob *job, int *in, char **pname,
			  JsonbContainer **dc)
{
	JsonbValue v;
	JsonbValue pattern;
	JsonbValue data;
	JsonbIterator *it;
	JsonbIteratorToken tok;

	if (JB_ROOT_IS_SCALAR(jb) || !JB_ROOT_IS_OBJECT(jb))
		return pstrdup("invalid job: the message must be a JSON object");

	/* envelope: "pattern", "data" and the optional NestJS request "id" */
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if (!((v.val.string.len == 7 &&
			   strncmp(v.val.string.val, "pattern", 7) == 0) ||
			  (v.val.string.len == 4 &&
			   strncmp(v.val.string.val, "data", 4) == 0) ||
			  (v.val.string.len == 2 &&
			   strncmp(v.val.string.val, "id", 2) == 0)))
			return psprintf("invalid job: unknown key \"%s\" in the message",
							pnstrdup(v.val.string.val, v.val.string.len));
	}
	if (getKeyJsonValueFromContainer(&jb->root, "pattern", 7, &pattern) ==
		NULL)
		return pstrdup("invalid job: \"pattern\" is missing");
	if (pattern.type != jbvString)
		return pstrdup("invalid job: \"pattern\" must be a string");
	*pname = pnstrdup(pattern.val.string.val, pattern.val.string.len);
	if (strcmp(*pname, "share_created") == 0)
	{
		job->kind = SC_JOB_CREATED;
		*in = IN_CREATED;
	}
	else if (strcmp(*pname, "share_deleted") == 0)
	{
		job->kind = SC_JOB_DELETED;
		*in = IN_DELETED;
	}
	else if (strcmp(*pname, "share_count_update") == 0)
	{
		job->kind = SC_JOB_COUNT_UPDATE;
		*in = IN_UPDATE;
	}
	else
		return pstrdup(
			"invalid job: \"pattern\" must be \"share_created\", \"share_deleted\" or \"share_count_update\"");

	if (getKeyJsonValueFromContainer(&jb->root, "data", 4, &data) == NULL)
		return pstrdup("invalid job: \"data\" is missing");
	if (data.type != jbvBinary || !JsonContainerIsObject(data.val.binary.data))
		return pstrdup("invalid job: \"data\" must be a JSON object");
	*dc = data.val.binary.data;
	return NULL;
}

/* Check one present field of the job's data and keep what apply needs; NULL or why not. */
static char *
check_field(const FieldSpec *f, JsonbValue *v, ScJob *job, char **operation,
			int64 *amount)
{
	char *s;
	int len;
	char *err;

	switch (f->type)
	{
		case F_STRING:
			if (v->type != jbvString)
				return psprintf("invalid job: \"%s\" must be a string",
								f->name);
			break;
		case F_STRING_OR_NULL:
			if (v->type != jbvString && v->type != jbvNull)
				return psprintf("invalid job: \"%s\" must be a string or null",
								f->name);
			break;
		case F_AMOUNT:
			if (v->type == jbvNull)
				return NULL;
			if (v->type != jbvNumeric)
				return pstrdup(
					"invalid job: \"amount\" must be an integer from 1 to 1000000");
			s = DatumGetCString(DirectFunctionCall1(
				numeric_out, NumericGetDatum(v->val.numeric)));
			len = strlen(s);
			if (len < 1 || len > 7 || !digits(s, len) || num(s, len) < 1 ||
				num(s, len) > SC_AMOUNT_MAX)
				return pstrdup(
					"invalid job: \"amount\" must be an integer from 1 to 1000000");
			*amount = num(s, len);
			return NULL;
	}
	if (v->type != jbvString)
		return NULL;
	s = v->val.string.val;
	len = v->val.string.len;
	if (strcmp(f->name, "jobId") == 0)
	{
		if ((err = check_length("jobId", len, SC_JOB_ID_MAX)) != NULL)
			return err;
		job->job_id = pnstrdup(s, len);
	}
	else if (strcmp(f->name, "contentType") == 0)
	{
		if ((err = check_length("contentType", len, SC_CONTENT_TYPE_MAX)) !=
			NULL)
			return err;
		job->ctype = pnstrdup(s, len);
	}
	else if (strcmp(f->name, "contentId") == 0)
	{
		if ((err = check_length("contentId", len, SC_CONTENT_ID_MAX)) != NULL)
			return err;
		job->cid = pnstrdup(s, len);
	}
	else if (strcmp(f->name, "operation") == 0)
	{
		*operation = pnstrdup(s, len);
		if (strcmp(*operation, "increment") != 0 &&
			strcmp(*operation, "decrement") != 0)
			return pstrdup(
				"invalid job: \"operation\" must be \"increment\" or \"decrement\"");
	}
	else if (strcmp(f->name, "timestamp") == 0)
	{
		if (!iso8601_valid(s, len))
			return pstrdup(
				"invalid job: \"timestamp\" must be an ISO-8601 date and time");
		job->ts_valid = iso8601_timestamp(s, len, &job->ts);
	}
	else if (strcmp(f->name, "channelId") == 0)
		job->channel = pnstrdup(s, len);
	else if (strcmp(f->name, "campaignId") == 0)
		job->campaign = pnstrdup(s, len);
	return NULL;
}

/*
 * Validate one message and fill job.  Returns NULL if it is valid, else the
 * error message naming the field.
 */
char *
sc_validate_message(Jsonb *jb, ScJob *job)
{
	JsonbValue v;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbContainer *dc = NULL;
	int in = 0; /* the job kind's IN_* bit */
	const FieldSpec *f;
	char *pname = NULL;
	char *err;
	char *operation = NULL;
	int64 amount = 1;

	memset(job, 0, sizeof(*job));
	if ((err = read_envelope(jb, job, &in, &pname, &dc)) != NULL)
		return err;

	/* no key but the job's own fields */
	it = JsonbIteratorInit(dc);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool known = false;

		if (tok != WJB_KEY)
			continue;
		for (f = job_fields; f->name; f++)
			if (((f->required | f->optional) & in) &&
				strlen(f->name) == v.val.string.len &&
				strncmp(f->name, v.val.string.val, v.val.string.len) == 0)
				known = true;
		if (!known)
			return psprintf("invalid job: unknown field \"%s\" for %s",
							pnstrdup(v.val.string.val, v.val.string.len),
							pname);
	}

	for (f = job_fields; f->name; f++)
	{
		if (!((f->required | f->optional) & in))
			continue;
		if (getKeyJsonValueFromContainer(dc, f->name, strlen(f->name), &v) ==
			NULL)
		{
			if (f->required & in)
				return psprintf("invalid job: \"%s\" is missing", f->name);
			continue;
		}
		if ((err = check_field(f, &v, job, &operation, &amount)) != NULL)
			return err;
	}

	switch (job->kind)
	{
		case SC_JOB_CREATED:
			job->delta = 1;
			break;
		case SC_JOB_DELETED:
			job->delta = -1;
			break;
		case SC_JOB_COUNT_UPDATE:
			job->delta =
				strcmp(operation, "increment") == 0 ? amount : -amount;
			break;
	}
	return NULL;
}
