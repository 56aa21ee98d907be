/*
 * jobcheck.c: validation of one job message for sharecount_apply*()
 * (docs/extension.md, "Applying jobs"): the envelope, each field's type and
 * limits, and the delta the job carries.
 *
 * A message is read into a JobMessage (apply.h) first, from a jsonb here or
 * from the batch's JSON text in jobjson.c, and validated from that, so both
 * inputs get the same checks in the same order.
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

/* The job fields, by their index in job_fields. */
typedef enum
{
	FLD_JOB_ID,
	FLD_SHARE_ID,
	FLD_CONTENT_TYPE,
	FLD_CONTENT_ID,
	FLD_USER_ID,
	FLD_CHANNEL,
	FLD_CAMPAIGN,
	FLD_OPERATION,
	FLD_AMOUNT,
	FLD_TIMESTAMP
} FieldId;

typedef struct FieldSpec
{
	const char *name;
	FieldId id; /* = its index */
	FieldType type;
	int required; /* IN_* bits: the kinds whose jobs must carry the field */
	int optional; /* IN_* bits: the kinds whose jobs may carry it */
} FieldSpec;

/*
 * The fields of the jobs, docs/extension.md "Jobs", in the order they are
 * checked (so the first bad one is the one reported); a field that is neither
 * required nor optional in a kind is an unknown field there.
 */
static const FieldSpec job_fields[SC_JOB_NFIELDS] = {
	{"jobId", FLD_JOB_ID, F_STRING, IN_ALL, 0},
	{"shareId", FLD_SHARE_ID, F_STRING_OR_NULL, IN_CREATED | IN_DELETED, 0},
	{"contentType", FLD_CONTENT_TYPE, F_STRING, IN_ALL, 0},
	{"contentId", FLD_CONTENT_ID, F_STRING, IN_ALL, 0},
	{"userId", FLD_USER_ID, F_STRING_OR_NULL, IN_CREATED | IN_DELETED, 0},
	{"channelId", FLD_CHANNEL, F_STRING_OR_NULL, 0, IN_ALL},
	{"campaignId", FLD_CAMPAIGN, F_STRING_OR_NULL, 0, IN_ALL},
	{"operation", FLD_OPERATION, F_STRING, IN_UPDATE, 0},
	{"amount", FLD_AMOUNT, F_AMOUNT, 0, IN_UPDATE},
	{"timestamp", FLD_TIMESTAMP, F_STRING, IN_ALL, 0}};

/* strlen() of each job_fields name. */
static const int job_field_len[SC_JOB_NFIELDS] = {5, 7,	 11, 9, 6,
												  9, 10, 9,	 6, 9};

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
 * The offset of a zone +HH[:MM] or -HH[:MM] at s[p] (its sign) to the end
 * (len), in seconds west of UTC as tm2timestamp wants it; false if it is
 * none.
 */
static bool
iso8601_zone(const char *s, int p, int len, int *tz)
{
	int off;
	bool east = s[p] == '+';

	p++;
	if (p + 2 > len || !digits(s + p, 2) || num(s + p, 2) > 23)
		return false;
	off = num(s + p, 2) * SECS_PER_HOUR;
	p += 2;
	if (p < len)
	{
		if (s[p] == ':')
			p++;
		if (p + 2 != len || !digits(s + p, 2) || num(s + p, 2) > 59)
			return false;
		off += num(s + p, 2) * SECS_PER_MINUTE;
	}
	*tz = east ? -off : off;
	return true;
}

/*
 * Whether s is an ISO-8601 date and time: YYYY-MM-DDTHH:MM[:SS[.fraction]]
 * followed by an optional Z or +HH[:MM]/-HH[:MM].  A hand-written check (not
 * timestamptz_in) because a batch must report a bad timestamp without an
 * error, and PostgreSQL 15 has no soft input errors.  If it is, *ts is its
 * instant (no zone = UTC; the fraction's digits after the sixth dropped) and
 * *ts_valid false if PostgreSQL cannot represent it (its history hour is
 * then left out).
 */
static bool
iso8601_read(const char *s, int len, TimestampTz *ts, bool *ts_valid)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
								31, 31, 30, 31, 30, 31};
	struct pg_tm tm;
	fsec_t fsec = 0;
	int tz = 0; /* seconds west of UTC */
	int p, y;

	if (len < 16 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
		s[7] != '-' || !digits(s + 8, 2) ||
		(s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2) ||
		s[13] != ':' || !digits(s + 14, 2))
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y = num(s, 4);
	tm.tm_mon = num(s + 5, 2);
	tm.tm_mday = num(s + 8, 2);
	tm.tm_hour = num(s + 11, 2);
	tm.tm_min = num(s + 14, 2);
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
		tm.tm_mday > mdays[tm.tm_mon - 1])
		return false;
	if (tm.tm_mon == 2 && tm.tm_mday == 29 &&
		!((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	if (tm.tm_hour > 23 || tm.tm_min > 59)
		return false;
	p = 16;
	if (p < len && s[p] == ':')
	{
		if (p + 3 > len || !digits(s + p + 1, 2) || num(s + p + 1, 2) > 60)
			return false;
		tm.tm_sec = num(s + p + 1, 2);
		p += 3;
		if (p < len && (s[p] == '.' || s[p] == ','))
		{
			int start = ++p;
			int scale = 100000; /* the first digit's microseconds */

			for (; p < len && s[p] >= '0' && s[p] <= '9'; p++, scale /= 10)
				fsec += (s[p] - '0') * scale;
			if (p == start)
				return false;
		}
	}
	if (p < len && !((s[p] == 'Z' || s[p] == 'z') && p + 1 == len) &&
		!((s[p] == '+' || s[p] == '-') && iso8601_zone(s, p, len, &tz)))
		return false;
	*ts_valid = tm2timestamp(&tm, fsec, &tz, ts) == 0;
	return true;
}

/* Whether JobValue *v (a JV_STRING) is the string literal lit. */
#define STR_IS(v, lit) \
	((v)->len == sizeof(lit) - 1 && \
	 memcmp((v)->str, lit, sizeof(lit) - 1) == 0)

/* "name" must be N to M bytes */
static char *
check_length(const char *name, int len, int max)
{
	if (len < 1 || len > max)
		return psprintf("invalid job: \"%s\" must be 1 to %d bytes", name,
						max);
	return NULL;
}
/* Whether key a (alen bytes) comes before key b in jsonb's key order. */
static bool
key_before(const char *a, int alen, const char *b, int blen)
{
	if (alen != blen)
		return alen < blen;
	return memcmp(a, b, alen) < 0;
}

/* See apply.h. */
void
sc_job_first_key(const char *key, int len, const char **first, int *first_len)
{
	if (*first == NULL || key_before(key, len, *first, *first_len))
	{
		*first = key;
		*first_len = len;
	}
}

/*
 * Whether name (at least sizeof(lit) - 1 bytes) is the job field name lit:
 * its id, or -1.  A compare of constant length, which the compiler inlines.
 */
#define FIELD_IS(name, lit, id) \
	(memcmp(name, lit, sizeof(lit) - 1) == 0 ? (int) (id) : -1)

/*
 * See apply.h.  The one job field a name can be, by its length and first
 * bytes (no two names of job_fields share them), then compared whole; the
 * names are job_fields' (regress tests jobjson_equiv and apply_json use each
 * one, and names one byte off).
 */
int
sc_job_field_index(const char *name, int len)
{
	switch (len)
	{
		case 5:
			return FIELD_IS(name, "jobId", FLD_JOB_ID);
		case 6:
			return name[0] == 'u' ? FIELD_IS(name, "userId", FLD_USER_ID) :
									FIELD_IS(name, "amount", FLD_AMOUNT);
		case 7:
			return FIELD_IS(name, "shareId", FLD_SHARE_ID);
		case 9:
			if (name[0] == 'o')
				return FIELD_IS(name, "operation", FLD_OPERATION);
			if (name[0] == 't')
				return FIELD_IS(name, "timestamp", FLD_TIMESTAMP);
			return name[1] == 'h' ?
				FIELD_IS(name, "channelId", FLD_CHANNEL) :
				FIELD_IS(name, "contentId", FLD_CONTENT_ID);
		case 10:
			return FIELD_IS(name, "campaignId", FLD_CAMPAIGN);
		case 11:
			return FIELD_IS(name, "contentType", FLD_CONTENT_TYPE);
		default:
			return -1;
	}
}

/*
 * The envelope of one message (docs/extension.md, "Applying jobs"): only
 * "pattern", "data" and "id"; the pattern names the job kind (job->kind, its
 * IN_* bit *in) and "data" is an object.  NULL, or the error naming the key.
 */
static char *
check_envelope(const JobMessage *m, ScJob *job, int *in, const char **pname)
{
	const JobValue *p = &m->pattern;

	if (!m->is_object)
		return pstrdup("invalid job: the message must be a JSON object");
	if (m->bad_key != NULL)
		return psprintf("invalid job: unknown key \"%s\" in the message",
						pnstrdup(m->bad_key, m->bad_key_len));
	if (m->pattern.type == JV_ABSENT)
		return pstrdup("invalid job: \"pattern\" is missing");
	if (m->pattern.type != JV_STRING)
		return pstrdup("invalid job: \"pattern\" must be a string");
	if (STR_IS(p, "share_created"))
	{
		job->kind = SC_JOB_CREATED;
		*in = IN_CREATED;
		*pname = "share_created";
	}
	else if (STR_IS(p, "share_deleted"))
	{
		job->kind = SC_JOB_DELETED;
		*in = IN_DELETED;
		*pname = "share_deleted";
	}
	else if (STR_IS(p, "share_count_update"))
	{
		job->kind = SC_JOB_COUNT_UPDATE;
		*in = IN_UPDATE;
		*pname = "share_count_update";
	}
	else
		return pstrdup(
			"invalid job: \"pattern\" must be \"share_created\", \"share_deleted\" or \"share_count_update\"");

	if (m->data.type == JV_ABSENT)
		return pstrdup("invalid job: \"data\" is missing");
	if (m->data.type != JV_OBJECT)
		return pstrdup("invalid job: \"data\" must be a JSON object");
	return NULL;
}

/* A valid "amount" (JV_NUMBER) into *amount; false if it is not 1 to SC_AMOUNT_MAX. */
static bool
check_amount(const JobValue *v, int64 *amount)
{
	char *s = DatumGetCString(DirectFunctionCall1(numeric_out, v->num));
	int len = strlen(s);

	if (len < 1 || len > 7 || !digits(s, len) || num(s, len) < 1 ||
		num(s, len) > SC_AMOUNT_MAX)
		return false;
	*amount = num(s, len);
	return true;
}

/*
 * v's string as the job keeps it: v's own when the message's strings are
 * NUL-terminated (they live as long as the job), else a copy.
 */
static char *
kept_string(const JobValue *v, bool nul_terminated)
{
	return nul_terminated ? unconstify(char *, v->str) :
							pnstrdup(v->str, v->len);
}

/*
 * Check one present field of the job's data and keep what apply needs
 * (strings as kept_string() says); NULL or why not.
 */
static char *
check_field(const FieldSpec *f, const JobValue *v, bool nul_terminated,
			ScJob *job, bool *decrement, int64 *amount)
{
	const char *s;
	int len;
	char *err;

	switch (f->type)
	{
		case F_STRING:
			if (v->type != JV_STRING)
				return psprintf("invalid job: \"%s\" must be a string",
								f->name);
			break;
		case F_STRING_OR_NULL:
			if (v->type != JV_STRING && v->type != JV_NULL)
				return psprintf("invalid job: \"%s\" must be a string or null",
								f->name);
			break;
		case F_AMOUNT:
			if (v->type == JV_NULL)
				return NULL;
			if (v->type != JV_NUMBER || !check_amount(v, amount))
				return pstrdup(
					"invalid job: \"amount\" must be an integer from 1 to 1000000");
			return NULL;
	}
	if (v->type != JV_STRING)
		return NULL;
	s = v->str;
	len = v->len;
	switch (f->id)
	{
		case FLD_JOB_ID:
			if ((err = check_length("jobId", len, SC_JOB_ID_MAX)) != NULL)
				return err;
			job->job_id = kept_string(v, nul_terminated);
			break;
		case FLD_CONTENT_TYPE:
			if ((err = check_length("contentType", len,
									SC_CONTENT_TYPE_MAX)) != NULL)
				return err;
			job->ctype = kept_string(v, nul_terminated);
			break;
		case FLD_CONTENT_ID:
			if ((err = check_length("contentId", len, SC_CONTENT_ID_MAX)) !=
				NULL)
				return err;
			job->cid = kept_string(v, nul_terminated);
			break;
		case FLD_OPERATION:
			*decrement = STR_IS(v, "decrement");
			if (!*decrement && !STR_IS(v, "increment"))
				return pstrdup(
					"invalid job: \"operation\" must be \"increment\" or \"decrement\"");
			break;
		case FLD_TIMESTAMP:
			if (!iso8601_read(s, len, &job->ts, &job->ts_valid))
				return pstrdup(
					"invalid job: \"timestamp\" must be an ISO-8601 date and time");
			break;
		case FLD_CHANNEL:
			job->channel = kept_string(v, nul_terminated);
			break;
		case FLD_CAMPAIGN:
			job->campaign = kept_string(v, nul_terminated);
			break;
		default:
			break;
	}
	return NULL;
}

/* See apply.h. */
char *
sc_validate_parsed(const JobMessage *m, ScJob *job)
{
	int in = 0; /* the job kind's IN_* bit */
	int i;
	const char *pname = NULL;
	char *err;
	bool decrement = false;
	int64 amount = 1;
	const char *unknown;
	int unknown_len;

	memset(job, 0, sizeof(*job));
	if ((err = check_envelope(m, job, &in, &pname)) != NULL)
		return err;

	/* no key but the job's own fields: the first other one in key order */
	unknown = m->extra_key;
	unknown_len = m->extra_key_len;
	for (i = 0; i < SC_JOB_NFIELDS; i++)
		if (m->field[i].type != JV_ABSENT &&
			!((job_fields[i].required | job_fields[i].optional) & in))
			sc_job_first_key(job_fields[i].name, job_field_len[i], &unknown,
							 &unknown_len);
	if (unknown != NULL)
		return psprintf("invalid job: unknown field \"%s\" for %s",
						pnstrdup(unknown, unknown_len), pname);

	for (i = 0; i < SC_JOB_NFIELDS; i++)
	{
		const FieldSpec *f = &job_fields[i];

		if (!((f->required | f->optional) & in))
			continue;
		if (m->field[i].type == JV_ABSENT)
		{
			if (f->required & in)
				return psprintf("invalid job: \"%s\" is missing", f->name);
			continue;
		}
		if ((err = check_field(f, &m->field[i], m->nul_terminated, job,
							   &decrement, &amount)) != NULL)
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
			job->delta = decrement ? -amount : amount;
			break;
	}
	return NULL;
}

/* A jsonb value (skipNested: containers as jbvBinary) as validation sees it. */
static void
value_of(const JsonbValue *v, JobValue *out)
{
	memset(out, 0, sizeof(*out));
	switch (v->type)
	{
		case jbvNull:
			out->type = JV_NULL;
			break;
		case jbvString:
			out->type = JV_STRING;
			out->str = v->val.string.val;
			out->len = v->val.string.len;
			break;
		case jbvNumeric:
			out->type = JV_NUMBER;
			out->num = NumericGetDatum(v->val.numeric);
			break;
		case jbvBool:
			out->type = JV_BOOL;
			break;
		default:
			out->type = v->type == jbvBinary &&
					JsonContainerIsObject(v->val.binary.data) ?
				JV_OBJECT :
				JV_ARRAY;
			break;
	}
}

/* The keys of the jsonb object c with their values, one call per pair. */
static void
read_object(JsonbContainer *c, JobMessage *m, bool envelope)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbIteratorToken tok;
	JsonbValue k, v;

	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		const char *key;
		int len;

		if (tok != WJB_KEY)
			continue;
		key = k.val.string.val;
		len = k.val.string.len;
		if (JsonbIteratorNext(&it, &v, true) != WJB_VALUE)
			elog(ERROR, "jsonb object key without a value");
		if (envelope)
		{
			if (len == 7 && memcmp(key, "pattern", 7) == 0)
				value_of(&v, &m->pattern);
			else if (len == 4 && memcmp(key, "data", 4) == 0)
			{
				value_of(&v, &m->data);
				if (m->data.type == JV_OBJECT)
					read_object(v.val.binary.data, m, false);
			}
			else if (!(len == 2 && memcmp(key, "id", 2) == 0))
				sc_job_first_key(key, len, &m->bad_key, &m->bad_key_len);
		}
		else
		{
			int i = sc_job_field_index(key, len);

			if (i >= 0)
				value_of(&v, &m->field[i]);
			else
				sc_job_first_key(key, len, &m->extra_key, &m->extra_key_len);
		}
	}
}

/*
 * Validate one message and fill job.  Returns NULL if it is valid, else the
 * error message naming the field.
 */
char *
sc_validate_message(Jsonb *jb, ScJob *job)
{
	JobMessage m;

	memset(&m, 0, sizeof(m));
	m.is_object = !JB_ROOT_IS_SCALAR(jb) && JB_ROOT_IS_OBJECT(jb);
	if (m.is_object)
		read_object(&jb->root, &m, true);
	return sc_validate_parsed(&m, job);
}
