/*
 * render.c: an outbox row rendered as the job it is (docs/extension.md,
 * "Jobs"): {"pattern":"<job>","data":{...}}, fields in the order of
 * docs/extension.md, no spaces, optional fields omitted when NULL; userId and
 * shareId are null when NULL.  Used by the claim (claim.c, straight from the
 * heap tuple) and by sharecount.job_body()/job_name() (the view
 * sharecount.outbox_jobs).
 *
 * The jobId is the row's job_id (a UUID) when it has one (rows written by
 * release 1.0), else the dense "<origin>-<id>" (origin.c).
 *
 * Rules:
 * - Every rendered body is at most SC_JOB_BODY_MAX bytes, for any row of the
 *   outbox (also ones written by 1.0 or by hand): an optional field that does
 *   not fit is left out with a WARNING, as outbox_insert() does, and a key
 *   outside the limits renders empty (the consumer dead-letters it).
 * - Memory: palloc'd in the caller's context; the column map of a composite
 *   row is kept in fn_extra for the rest of the query.  Per backend, in
 *   statics: the hex digits of the last origin (replaced when a row has
 *   another); sc_format_timestamp() keeps the date of the last day.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "sharecount.h"
#include "outbox.h"

PG_FUNCTION_INFO_V1(sharecount_job_name);
PG_FUNCTION_INFO_V1(sharecount_job_body);
PG_FUNCTION_INFO_V1(sharecount_job_id);

/*
 * The columns of one outbox row given as a composite (sharecount.outbox),
 * deformed once.  The tuple descriptor comes from the type cache, and the
 * column map is kept in fn_extra for the rest of the query.
 */
typedef struct RowReader
{
	Oid typid;
	int32 typmod;
	int attno[NCOLS];
} RowReader;

static void
read_row(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(0);
	Oid typid = HeapTupleHeaderGetTypeId(th);
	int32 typmod = HeapTupleHeaderGetTypMod(th);
	RowReader *rr = (RowReader *) fcinfo->flinfo->fn_extra;
	TupleDesc desc = lookup_rowtype_tupdesc(typid, typmod);
	HeapTupleData tuple;
	Datum *all_values = palloc(desc->natts * sizeof(Datum));
	bool *all_nulls = palloc(desc->natts * sizeof(bool));
	int c;

	if (rr == NULL || rr->typid != typid || rr->typmod != typmod)
	{
		if (rr == NULL)
			rr =
				MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(RowReader));
		outbox_map_columns(desc, rr->attno);
		rr->typid = typid;
		rr->typmod = typmod;
		fcinfo->flinfo->fn_extra = rr;
	}
	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	heap_deform_tuple(&tuple, desc, all_values, all_nulls);
	for (c = 0; c < NCOLS; c++)
	{
		values[c] = rr->attno[c] ? all_values[rr->attno[c] - 1] : (Datum) 0;
		nulls[c] = rr->attno[c] ? all_nulls[rr->attno[c] - 1] : true;
	}
	ReleaseTupleDesc(desc);
}

/* The job's name (also its routing key) for a kind of sharecount.outbox.job. */
const char *
outbox_job_name(char kind)
{
	switch (kind)
	{
		case SC_JOB_CREATED:
			return "share_created";
		case SC_JOB_DELETED:
			return "share_deleted";
		case SC_JOB_COUNT_UPDATE:
			return "share_count_update";
	}
	elog(ERROR, "unknown job kind '%c' in sharecount.outbox", kind);
	return NULL; /* keep compiler quiet */
}

/*
 * Append s[0..len) to buf: appendBinaryStringInfo() without the call, with
 * the same guarantee (room for the terminating NUL, which outbox_render()
 * writes once at the end).  A call per piece was ~60 instructions, eight
 * pieces and more per body (bench/p1_callgrind.sh claim).
 */
static inline void
append_bytes(StringInfo buf, const char *s, int len)
{
	if (unlikely(buf->len + len >= buf->maxlen))
		enlargeStringInfo(buf, len);
	memcpy(buf->data + buf->len, s, len);
	buf->len += len;
}

/* Append a string literal (its length known at compile time). */
#define APPEND_LIT(buf, lit) append_bytes((buf), (lit), sizeof(lit) - 1)

/* Bytes of a uint64 each equal to b. */
#define SC_BYTES8(b) (UINT64CONST(0x0101010101010101) * (b))

/*
 * Whether any of the 8 bytes of w is below 0x20, '"' or '\\' (what
 * escape_json() escapes): the exact "has a byte below n" / "has a zero byte"
 * tests on a word (no false answer for the word as a whole; bytes >= 0x80,
 * UTF-8, never match).
 */
static inline bool
word_needs_escape(uint64 w)
{
	uint64 quote = w ^ SC_BYTES8('"');
	uint64 bslash = w ^ SC_BYTES8('\\');
	uint64 hit = ((w - SC_BYTES8(0x20)) & ~w) |
		((quote - SC_BYTES8(0x01)) & ~quote) |
		((bslash - SC_BYTES8(0x01)) & ~bslash);

	return (hit & SC_BYTES8(0x80)) != 0;
}

/* word_needs_escape() of 4 bytes: the bytes, then 4 bytes that never match */
static inline bool
word4_needs_escape(const char *s)
{
	uint32 w4;

	memcpy(&w4, s, 4);
	return word_needs_escape((uint64) w4 | (SC_BYTES8('a') << 32));
}

/*
 * s[0..len) (no NUL inside: text) as a JSON string, byte for byte what
 * escape_json() writes: a value with nothing to escape (the usual case) is
 * copied in one piece; any other goes through escape_json() itself.
 * escape_json() appends a byte at a time, about 80 instructions per byte of
 * a short value (docs/performance.md, "Publisher and application side").
 * The check reads 8 bytes at a time (word_needs_escape), then 4, then the
 * last 3 at most one by one.
 */
static void
append_json(StringInfo buf, const char *s, int len)
{
	int i = 0;

	for (; i + 8 <= len; i += 8)
	{
		uint64 w;

		memcpy(&w, s + i, 8);
		if (word_needs_escape(w))
			break;
	}
	if (i + 4 <= len && !word4_needs_escape(s + i))
		i += 4;
	for (; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < ' ' || c == '"' || c == '\\')
			break;
	}
	if (i < len)
	{
		escape_json(buf, pnstrdup(s, len));
		return;
	}
	if (unlikely(buf->len + len + 2 >= buf->maxlen))
		enlargeStringInfo(buf, len + 2);
	buf->data[buf->len++] = '"';
	memcpy(buf->data + buf->len, s, len);
	buf->len += len;
	buf->data[buf->len++] = '"';
}

/* A text value, not copied: data and length (data NULL = SQL NULL). */
typedef struct TextRef
{
	const char *data;
	int len;
} TextRef;

/* The text datum d, detoasted if needed, not copied when it is not. */
static TextRef
text_ref(Datum d)
{
	text *t = (text *) DatumGetPointer(d);
	TextRef r;

	/* pg_detoast_datum_packed()'s own test, without the call when false */
	if (VARATT_IS_COMPRESSED(t) || VARATT_IS_EXTERNAL(t))
		t = pg_detoast_datum_packed(t);
	r.data = VARDATA_ANY(t);
	r.len = VARSIZE_ANY_EXHDR(t);
	return r;
}

/* ,"name":"value" (or null); name is a literal */
#define ADD_FIELD(buf, name, value) \
	(APPEND_LIT((buf), ",\"" name "\":"), add_value((buf), (value)))

static void
add_value(StringInfo buf, TextRef v)
{
	if (v.data == NULL)
		APPEND_LIT(buf, "null");
	else
		append_json(buf, v.data, v.len);
}

/*
 * Column col of a row being rendered; data NULL if it is NULL or, as
 * outbox_insert() would have decided, too long for a job (a row that release
 * 1.0 wrote, or one made by hand): then with the same WARNING.
 */
static TextRef
optional_text(const Datum *values, const bool *nulls, int col,
			  const char *job_name, TextRef ctype, TextRef cid)
{
	TextRef v = {NULL, 0};

	if (nulls[col])
		return v;
	v = text_ref(values[col]);
	if (outbox_field_fits(v.data, v.len))
		return v;
	outbox_warn_field_left_out(col, job_name, v.len,
							   pnstrdup(ctype.data, ctype.len),
							   pnstrdup(cid.data, cid.len));
	v.data = NULL;
	return v;
}

/*
 * The row's jobId into job_id (SC_JOB_ID_TEXT bytes): its UUID (rows of 1.0),
 * else dense "<origin>-<id>".  A row made by hand with neither gets a jobId
 * made of its own id and timestamp, with a WARNING: stable across
 * redeliveries, and not dense, so the consumer treats it as foreign; failing
 * instead would stop every claim at that row.
 */
static void
render_job_id(const Datum *values, const bool *nulls, char *job_id)
{
	static const char hexdigits[] = "0123456789abcdef";
	static uint64 origin_last;	/* the origin of the last dense jobId */
	static char origin_hex[16]; /* ... as 16 hex digits */
	static bool origin_valid = false;
	int64 id = DatumGetInt64(values[COL_ID]);
	uint64 hex;
	int i;

	if (!nulls[COL_JOB_ID])
	{
		sc_uuid_format(job_id, DatumGetUUIDP(values[COL_JOB_ID])->data);
		return;
	}
	if (nulls[COL_ORIGIN])
	{
		snprintf(job_id, SC_JOB_ID_TEXT,
				 "nojobid-" INT64_FORMAT "-" INT64_FORMAT, id,
				 nulls[COL_CREATED_AT] ?
					 (int64) 0 :
					 (int64) DatumGetTimestampTz(values[COL_CREATED_AT]));
		ereport(
			WARNING,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg(
				 "sharecount: outbox row " INT64_FORMAT
				 " has neither job_id nor origin; published with jobId nojobid-<id>-<created_at in microseconds>",
				 id),
			 errhint(
				 "Rows inserted by hand get origin from the column default; do not set it to NULL.")));
		return;
	}
	/*
	 * "%016x-%lld" written by hand: snprintf() took ~1,000 instructions.  The
	 * origin's digits are kept for the next row: a claim's rows mostly share
	 * one origin (one per writing server, docs/extension.md "Jobs").
	 */
	hex = (uint64) DatumGetInt64(values[COL_ORIGIN]);
	if (!origin_valid || hex != origin_last)
	{
		origin_last = hex;
		for (i = 15; i >= 0; i--, hex >>= 4)
			origin_hex[i] = hexdigits[hex & 0xf];
		origin_valid = true;
	}
	memcpy(job_id, origin_hex, sizeof(origin_hex));
	job_id[16] = '-';
	pg_lltoa(id, job_id + 17); /* at most 20 digits and a sign, and a NUL */
}

/* ,"channelId":…,"campaignId":… of the row, each omitted when NULL. */
static void
render_channel(const Datum *values, const bool *nulls, const char *name,
			   TextRef ctype, TextRef cid, StringInfo buf)
{
	TextRef v;

	if ((v = optional_text(values, nulls, COL_CHANNEL_ID, name, ctype, cid))
			.data != NULL)
		ADD_FIELD(buf, "channelId", v);
	if ((v = optional_text(values, nulls, COL_CAMPAIGN_ID, name, ctype, cid))
			.data != NULL)
		ADD_FIELD(buf, "campaignId", v);
}

/*
 * The data fields between jobId and timestamp.  Every kind carries the row's
 * channelId and campaignId when it has them: share_deleted and
 * share_count_update too, from 1.1 on (breakdowns, docs/extension.md
 * "Channels and trends").
 */
static void
render_fields(const Datum *values, const bool *nulls, char kind,
			  const char *name, TextRef ctype, TextRef cid, StringInfo buf)
{
	if (kind == SC_JOB_COUNT_UPDATE)
	{
		int64 amount;

		if (nulls[COL_AMOUNT] || DatumGetInt64(values[COL_AMOUNT]) == 0)
			elog(ERROR, "share_count_update outbox row without an amount");
		amount = DatumGetInt64(values[COL_AMOUNT]);
		ADD_FIELD(buf, "contentType", ctype);
		ADD_FIELD(buf, "contentId", cid);
		appendStringInfo(buf, ",\"operation\":\"%s\",\"amount\":" INT64_FORMAT,
						 amount > 0 ? "increment" : "decrement",
						 amount > 0 ? amount : -amount);
		render_channel(values, nulls, name, ctype, cid, buf);
		return;
	}
	ADD_FIELD(buf, "shareId",
			  optional_text(values, nulls, COL_SHARE_ID, name, ctype, cid));
	ADD_FIELD(buf, "contentType", ctype);
	ADD_FIELD(buf, "contentId", cid);
	ADD_FIELD(buf, "userId",
			  optional_text(values, nulls, COL_USER_ID, name, ctype, cid));
	render_channel(values, nulls, name, ctype, cid, buf);
}

/*
 * Render the row given as its columns (our column order): the body is
 * appended to body, the jobId written to job_id (SC_JOB_ID_TEXT bytes), the
 * job's name returned.
 */
const char *
outbox_render(const Datum *values, const bool *nulls, StringInfo body,
			  char *job_id)
{
	char kind;
	const char *name;
	char ts[32];
	TextRef ctype, cid;
	int start = body->len;

	if (nulls[COL_JOB] || nulls[COL_CREATED_AT] || nulls[COL_CONTENT_TYPE] ||
		nulls[COL_CONTENT_ID])
		elog(
			ERROR,
			"outbox row with a NULL job, created_at, content_type or content_id");
	kind = DatumGetChar(values[COL_JOB]);
	name = outbox_job_name(kind);
	render_job_id(values, nulls, job_id);
	sc_format_timestamp(ts, DatumGetTimestampTz(values[COL_CREATED_AT]));
	ctype = text_ref(values[COL_CONTENT_TYPE]);
	cid = text_ref(values[COL_CONTENT_ID]);
	if (!outbox_key_fits(ctype.len, cid.len))
	{
		/*
		 * Not from outbox_insert(), which refuses such keys.  An empty key
		 * keeps the body bounded, and the consumer dead-letters the job as
		 * invalid, with its reason, instead of the claim failing for good.
		 */
		ereport(
			WARNING,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg(
				 "sharecount: outbox row %s has a content key outside the limits; rendered with an empty key",
				 job_id),
			 errhint(
				 "The consumer dead-letters the job as invalid; to drop it sooner, delete the row from sharecount.outbox.")));
		ctype.data = cid.data = "";
		ctype.len = cid.len = 0;
	}

	APPEND_LIT(body, "{\"pattern\":\"");
	append_bytes(body, name, strlen(name));
	APPEND_LIT(body, "\",\"data\":{\"jobId\":\"");
	append_bytes(body, job_id, strlen(job_id));
	APPEND_LIT(body, "\"");
	render_fields(values, nulls, kind, name, ctype, cid, body);
	APPEND_LIT(body, ",\"timestamp\":\"");
	append_bytes(body, ts, SC_TS_LEN);
	APPEND_LIT(body, "\"}}");
	body->data[body->len] = '\0'; /* append_bytes() left room for it */
	Assert(body->len - start <= SC_JOB_BODY_MAX);
	(void) start;
	return name;
}

/*
 * sharecount.job_name(sharecount.outbox) -> text: the job's name, which is
 * also its routing key.
 */
Datum
sharecount_job_name(PG_FUNCTION_ARGS)
{
	Datum values[NCOLS];
	bool nulls[NCOLS];

	read_row(fcinfo, values, nulls);
	if (nulls[COL_JOB])
		elog(ERROR, "outbox row without a job kind");
	PG_RETURN_TEXT_P(
		cstring_to_text(outbox_job_name(DatumGetChar(values[COL_JOB]))));
}

/*
 * sharecount.job_body(sharecount.outbox) -> text: the message body of
 * docs/extension.md ("Jobs"), ready to publish.
 */
Datum
sharecount_job_body(PG_FUNCTION_ARGS)
{
	Datum values[NCOLS];
	bool nulls[NCOLS];
	char job_id[SC_JOB_ID_TEXT];
	StringInfoData buf;

	read_row(fcinfo, values, nulls);
	initStringInfo(&buf);
	outbox_render(values, nulls, &buf, job_id);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/*
 * sharecount.job_id(sharecount.outbox) -> text: the job's jobId (its UUID,
 * else "<origin>-<id>").
 */
Datum
sharecount_job_id(PG_FUNCTION_ARGS)
{
	Datum values[NCOLS];
	bool nulls[NCOLS];
	char job_id[SC_JOB_ID_TEXT];

	read_row(fcinfo, values, nulls);
	render_job_id(values, nulls, job_id);
	PG_RETURN_TEXT_P(cstring_to_text(job_id));
}
