/*
 * apply.c: sharecount_apply() and sharecount_apply_batch(), the consumer side:
 * validate jobs, dedupe them by jobId, and add their deltas to the counts.
 *
 * A job is validated completely before anything is written; a malformed job
 * is SQLSTATE 22023 in sharecount_apply() and status 'invalid' in a batch, and
 * changes nothing.  Per batch the work is three statements: one INSERT of the
 * new jobIds into sharecount.applied_jobs (ON CONFLICT DO NOTHING RETURNING:
 * what comes back is applied, the rest is duplicate), one upsert of the
 * deltas aggregated per key, one upsert of the stats shard.
 *
 * Rules:
 * - jobIds and keys are written in sorted order so that concurrent batches
 *   sharing jobs or keys wait on each other instead of deadlocking; a batch
 *   that waits on another's uncommitted jobId sees it as a duplicate once the
 *   other commits (or applies it if the other rolls back).
 * - Plans are prepared once per backend (SPI_keepplan).  These functions are
 *   SECURITY DEFINER with search_path = pg_catalog, pg_temp, so the plans run
 *   as the extension owner under a fixed path.
 * - Memory: everything is palloc'd in the function's context and freed with it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "sharecount.h"

PG_FUNCTION_INFO_V1(sharecount_apply);
PG_FUNCTION_INFO_V1(sharecount_apply_batch);

typedef enum
{
	JOB_CREATED,
	JOB_DELETED,
	JOB_UPDATE
} JobKind;

typedef enum
{
	F_STRING,					/* a JSON string */
	F_STRING_OR_NULL,			/* a JSON string or null */
	F_AMOUNT					/* an integer 1..1,000,000 or null */
} FieldType;

typedef struct FieldSpec
{
	const char *name;
	bool		required;
	FieldType	type;
} FieldSpec;

/* The fields of each job, SPEC section 4 ("?" = optional). */
static const FieldSpec created_fields[] = {
	{"jobId", true, F_STRING}, {"shareId", true, F_STRING_OR_NULL},
	{"contentType", true, F_STRING}, {"contentId", true, F_STRING},
	{"userId", true, F_STRING_OR_NULL}, {"channelId", false, F_STRING_OR_NULL},
	{"campaignId", false, F_STRING_OR_NULL}, {"timestamp", true, F_STRING}, {NULL, false, 0}
};
static const FieldSpec deleted_fields[] = {
	{"jobId", true, F_STRING}, {"shareId", true, F_STRING_OR_NULL},
	{"contentType", true, F_STRING}, {"contentId", true, F_STRING},
	{"userId", true, F_STRING_OR_NULL}, {"timestamp", true, F_STRING}, {NULL, false, 0}
};
static const FieldSpec update_fields[] = {
	{"jobId", true, F_STRING}, {"contentType", true, F_STRING},
	{"contentId", true, F_STRING}, {"operation", true, F_STRING},
	{"amount", false, F_AMOUNT}, {"timestamp", true, F_STRING}, {NULL, false, 0}
};

typedef struct ScJob
{
	JobKind		kind;
	char	   *job_id;
	char	   *ctype;
	char	   *cid;
	int64		delta;
} ScJob;

typedef enum
{
	ST_INVALID,
	ST_PENDING,
	ST_APPLIED,
	ST_DUPLICATE
} ItemStatus;

typedef struct BatchItem
{
	ItemStatus	status;
	char	   *error;
	ScJob		job;
} BatchItem;

typedef struct JobIdEntry
{
	char		job_id[SC_JOB_ID_MAX + 1];
	int			first;			/* index of the item that carries it */
} JobIdEntry;

typedef struct KeyEntry
{
	struct
	{
		char		ctype[SC_CONTENT_TYPE_MAX + 1];
		char		cid[SC_CONTENT_ID_MAX + 1];
	}			key;
	int64		delta;
} KeyEntry;

static SPIPlanPtr dedupe_plan = NULL;
static SPIPlanPtr counts_plan = NULL;
static SPIPlanPtr stats_plan = NULL;

static bool
digits(const char *s, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
num(const char *s, int n)
{
	int			v = 0,
				i;

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
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			p = 0,
				y,
				mo,
				d;

	if (len < 16 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
		!digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		!digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2))
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
			int			start = ++p;

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

/* "name" must be N to M bytes */
static char *
check_length(const char *name, int len, int max)
{
	if (len < 1 || len > max)
		return psprintf("invalid job: \"%s\" must be 1 to %d bytes", name, max);
	return NULL;
}

/*
 * The envelope of one message (docs/extension.md, "Applying jobs"): only
 * "pattern", "data" and "id"; the pattern names the job kind (job->kind, its
 * fields) and "data" is an object (*dc).  NULL, or the error naming the key.
 */
static char *
read_envelope(Jsonb *jb, ScJob *job, const FieldSpec **fields, char **pname, JsonbContainer **dc)
{
	JsonbValue	v;
	JsonbValue	pattern;
	JsonbValue	data;
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
		if (!((v.val.string.len == 7 && strncmp(v.val.string.val, "pattern", 7) == 0) ||
			  (v.val.string.len == 4 && strncmp(v.val.string.val, "data", 4) == 0) ||
			  (v.val.string.len == 2 && strncmp(v.val.string.val, "id", 2) == 0)))
			return psprintf("invalid job: unknown key \"%s\" in the message",
							pnstrdup(v.val.string.val, v.val.string.len));
	}
	if (getKeyJsonValueFromContainer(&jb->root, "pattern", 7, &pattern) == NULL)
		return pstrdup("invalid job: \"pattern\" is missing");
	if (pattern.type != jbvString)
		return pstrdup("invalid job: \"pattern\" must be a string");
	*pname = pnstrdup(pattern.val.string.val, pattern.val.string.len);
	if (strcmp(*pname, "share_created") == 0)
	{
		job->kind = JOB_CREATED;
		*fields = created_fields;
	}
	else if (strcmp(*pname, "share_deleted") == 0)
	{
		job->kind = JOB_DELETED;
		*fields = deleted_fields;
	}
	else if (strcmp(*pname, "share_count_update") == 0)
	{
		job->kind = JOB_UPDATE;
		*fields = update_fields;
	}
	else
		return pstrdup("invalid job: \"pattern\" must be \"share_created\", \"share_deleted\" or \"share_count_update\"");

	if (getKeyJsonValueFromContainer(&jb->root, "data", 4, &data) == NULL)
		return pstrdup("invalid job: \"data\" is missing");
	if (data.type != jbvBinary || !JsonContainerIsObject(data.val.binary.data))
		return pstrdup("invalid job: \"data\" must be a JSON object");
	*dc = data.val.binary.data;
	return NULL;
}

/* Check one present field of the job's data and keep what apply needs; NULL or why not. */
static char *
check_field(const FieldSpec *f, JsonbValue *v, ScJob *job, char **operation, int64 *amount)
{
	char	   *s;
	int			len;
	char	   *err;

	switch (f->type)
	{
		case F_STRING:
			if (v->type != jbvString)
				return psprintf("invalid job: \"%s\" must be a string", f->name);
			break;
		case F_STRING_OR_NULL:
			if (v->type != jbvString && v->type != jbvNull)
				return psprintf("invalid job: \"%s\" must be a string or null", f->name);
			break;
		case F_AMOUNT:
			if (v->type == jbvNull)
				return NULL;
			if (v->type != jbvNumeric)
				return pstrdup("invalid job: \"amount\" must be an integer from 1 to 1000000");
			s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
			len = strlen(s);
			if (len < 1 || len > 7 || !digits(s, len) || num(s, len) < 1 || num(s, len) > SC_AMOUNT_MAX)
				return pstrdup("invalid job: \"amount\" must be an integer from 1 to 1000000");
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
		if ((err = check_length("contentType", len, SC_CONTENT_TYPE_MAX)) != NULL)
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
		if (strcmp(*operation, "increment") != 0 && strcmp(*operation, "decrement") != 0)
			return pstrdup("invalid job: \"operation\" must be \"increment\" or \"decrement\"");
	}
	else if (strcmp(f->name, "timestamp") == 0)
	{
		if (!iso8601_valid(s, len))
			return pstrdup("invalid job: \"timestamp\" must be an ISO-8601 date and time");
	}
	return NULL;
}

/*
 * Validate one message and fill job.  Returns NULL if it is valid, else the
 * error message naming the field.
 */
static char *
validate_message(Jsonb *jb, ScJob *job)
{
	JsonbValue	v;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbContainer *dc = NULL;
	const FieldSpec *fields = NULL;
	const FieldSpec *f;
	char	   *pname = NULL;
	char	   *err;
	char	   *operation = NULL;
	int64		amount = 1;

	memset(job, 0, sizeof(*job));
	if ((err = read_envelope(jb, job, &fields, &pname, &dc)) != NULL)
		return err;

	/* no key but the job's own fields */
	it = JsonbIteratorInit(dc);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (f = fields; f->name; f++)
			if (strlen(f->name) == v.val.string.len &&
				strncmp(f->name, v.val.string.val, v.val.string.len) == 0)
				known = true;
		if (!known)
			return psprintf("invalid job: unknown field \"%s\" for %s",
							pnstrdup(v.val.string.val, v.val.string.len), pname);
	}

	for (f = fields; f->name; f++)
	{
		if (getKeyJsonValueFromContainer(dc, f->name, strlen(f->name), &v) == NULL)
		{
			if (f->required)
				return psprintf("invalid job: \"%s\" is missing", f->name);
			continue;
		}
		if ((err = check_field(f, &v, job, &operation, &amount)) != NULL)
			return err;
	}

	switch (job->kind)
	{
		case JOB_CREATED:
			job->delta = 1;
			break;
		case JOB_DELETED:
			job->delta = -1;
			break;
		case JOB_UPDATE:
			job->delta = strcmp(operation, "increment") == 0 ? amount : -amount;
			break;
	}
	return NULL;
}

static int
cmp_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
cmp_key(const void *a, const void *b)
{
	const KeyEntry *x = *(KeyEntry *const *) a;
	const KeyEntry *y = *(KeyEntry *const *) b;
	int			c = strcmp(x->key.ctype, y->key.ctype);

	return c != 0 ? c : strcmp(x->key.cid, y->key.cid);
}

static Datum
text_array(char **strs, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(strs[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Apply the valid items (status ST_PENDING on entry): dedupe, write counts,
 * update stats.  On return every item is ST_APPLIED, ST_DUPLICATE or
 * ST_INVALID.  Caller is connected to SPI.
 */
static void
apply_items(BatchItem *items, int n)
{
	HASHCTL		ctl;
	HTAB	   *ids;
	HTAB	   *keys;
	char	  **idlist = palloc(sizeof(char *) * Max(n, 1));
	int			nids = 0;
	int64		napplied = 0,
				ndup = 0,
				ninvalid = 0;
	int			i;
	int			rc;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = SC_JOB_ID_MAX + 1;
	ctl.entrysize = sizeof(JobIdEntry);
	ctl.hcxt = CurrentMemoryContext;
	ids = hash_create("sharecount batch jobIds", Max(n, 16), &ctl,
					  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/* a jobId repeated inside the batch counts once */
	for (i = 0; i < n; i++)
	{
		JobIdEntry *e;
		bool		found;

		if (items[i].status != ST_PENDING)
			continue;
		e = hash_search(ids, items[i].job.job_id, HASH_ENTER, &found);
		if (found)
			items[i].status = ST_DUPLICATE;
		else
		{
			e->first = i;
			idlist[nids++] = items[i].job.job_id;
		}
	}

	if (nids > 0)
	{
		Oid			types[3];
		Datum		values[3];
		uint64		r;
		SPITupleTable *tt;
		KeyEntry  **klist;
		int			nkeys = 0;
		char	  **kt;
		char	  **ki;
		Datum	   *kd;
		HASH_SEQ_STATUS seq;
		KeyEntry   *ke;

		qsort(idlist, nids, sizeof(char *), cmp_cstring);
		types[0] = TEXTARRAYOID;
		values[0] = text_array(idlist, nids);
		sc_prepare_once(&dedupe_plan,
					 "INSERT INTO sharecount.applied_jobs (job_id) "
					 "SELECT u.j FROM pg_catalog.unnest($1) AS u(j) "
					 "ON CONFLICT (job_id) DO NOTHING RETURNING job_id", 1, types);
		rc = SPI_execute_plan(dedupe_plan, values, NULL, false, 0);
		if (rc != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "dedupe insert failed: %s", SPI_result_code_string(rc));
		tt = SPI_tuptable;
		for (r = 0; r < SPI_processed; r++)
		{
			char	   *id = SPI_getvalue(tt->vals[r], tt->tupdesc, 1);
			JobIdEntry *e = hash_search(ids, id, HASH_FIND, NULL);

			if (e == NULL)
				elog(ERROR, "dedupe insert returned an unknown jobId");
			items[e->first].status = ST_APPLIED;
		}

		/* aggregate the applied deltas per key */
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(((KeyEntry *) 0)->key);
		ctl.entrysize = sizeof(KeyEntry);
		ctl.hcxt = CurrentMemoryContext;
		keys = hash_create("sharecount batch keys", Max(n, 16), &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		for (i = 0; i < n; i++)
		{
			KeyEntry	k;
			bool		found;

			if (items[i].status == ST_PENDING)
				items[i].status = ST_DUPLICATE;
			if (items[i].status != ST_APPLIED)
				continue;
			memset(&k, 0, sizeof(k));
			strlcpy(k.key.ctype, items[i].job.ctype, sizeof(k.key.ctype));
			strlcpy(k.key.cid, items[i].job.cid, sizeof(k.key.cid));
			ke = hash_search(keys, &k.key, HASH_ENTER, &found);
			if (!found)
			{
				ke->delta = 0;
				nkeys++;
			}
			ke->delta += items[i].job.delta;
		}

		if (nkeys > 0)
		{
			klist = palloc(sizeof(KeyEntry *) * nkeys);
			i = 0;
			hash_seq_init(&seq, keys);
			while ((ke = hash_seq_search(&seq)) != NULL)
				klist[i++] = ke;
			qsort(klist, nkeys, sizeof(KeyEntry *), cmp_key);
			kt = palloc(sizeof(char *) * nkeys);
			ki = palloc(sizeof(char *) * nkeys);
			kd = palloc(sizeof(Datum) * nkeys);
			for (i = 0; i < nkeys; i++)
			{
				kt[i] = klist[i]->key.ctype;
				ki[i] = klist[i]->key.cid;
				kd[i] = Int64GetDatum(klist[i]->delta);
			}
			types[0] = TEXTARRAYOID;
			types[1] = TEXTARRAYOID;
			types[2] = INT8ARRAYOID;
			values[0] = text_array(kt, nkeys);
			values[1] = text_array(ki, nkeys);
			values[2] = PointerGetDatum(construct_array(kd, nkeys, INT8OID, 8, FLOAT8PASSBYVAL,
														TYPALIGN_DOUBLE));
			sc_prepare_once(&counts_plan,
						 "INSERT INTO sharecount.counts AS c (content_type, content_id, share_count, updated_at) "
						 "SELECT u.t, u.i, u.d, pg_catalog.clock_timestamp() "
						 "FROM unnest($1, $2, $3) AS u(t, i, d) "
						 "ON CONFLICT (content_type, content_id) DO UPDATE "
						 "SET share_count = c.share_count + excluded.share_count, "
						 "updated_at = excluded.updated_at", 3, types);
			rc = SPI_execute_plan(counts_plan, values, NULL, false, 0);
			if (rc != SPI_OK_INSERT)
				elog(ERROR, "counts upsert failed: %s", SPI_result_code_string(rc));
		}
	}

	for (i = 0; i < n; i++)
	{
		if (items[i].status == ST_APPLIED)
			napplied++;
		else if (items[i].status == ST_DUPLICATE)
			ndup++;
		else
			ninvalid++;
	}
	if (n > 0)
	{
		Oid			types[4] = {INT4OID, INT8OID, INT8OID, INT8OID};
		Datum		values[4];

		values[0] = Int32GetDatum(MyProcPid % 16);
		values[1] = Int64GetDatum(napplied);
		values[2] = Int64GetDatum(ndup);
		values[3] = Int64GetDatum(ninvalid);
		sc_prepare_once(&stats_plan,
					 "INSERT INTO sharecount.stats AS s (shard, jobs_applied, duplicates, invalid) "
					 "VALUES ($1, $2, $3, $4) ON CONFLICT (shard) DO UPDATE "
					 "SET jobs_applied = s.jobs_applied + excluded.jobs_applied, "
					 "duplicates = s.duplicates + excluded.duplicates, "
					 "invalid = s.invalid + excluded.invalid", 4, types);
		rc = SPI_execute_plan(stats_plan, values, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "stats upsert failed: %s", SPI_result_code_string(rc));
	}
}

/*
 * sharecount_apply(message jsonb) -> boolean: true if applied, false if its
 * jobId was applied before.  A malformed message is an error (22023).
 */
Datum
sharecount_apply(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	BatchItem		item;

	item.error = validate_message(jb, &item.job);
	if (item.error != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", item.error)));
	item.status = ST_PENDING;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	apply_items(&item, 1);
	SPI_finish();
	PG_RETURN_BOOL(item.status == ST_APPLIED);
}

/*
 * sharecount_apply_batch(messages jsonb[]) -> TABLE(ord, status, error):
 * one row per message, in order; invalid messages never abort the others.
 */
Datum
sharecount_apply_batch(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	BatchItem	   *items;

	InitMaterializedSRF(fcinfo, 0);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("messages must be a one-dimensional array")));
	deconstruct_array(arr, JSONBOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);

	items = palloc0(sizeof(BatchItem) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
		{
			items[i].status = ST_INVALID;
			items[i].error = pstrdup("invalid job: the message is null");
			continue;
		}
		items[i].error = validate_message(DatumGetJsonbP(elems[i]), &items[i].job);
		items[i].status = items[i].error ? ST_INVALID : ST_PENDING;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	apply_items(items, n);
	SPI_finish();

	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		vnulls[3] = {false, false, false};

		values[0] = Int32GetDatum(i + 1);
		switch (items[i].status)
		{
			case ST_APPLIED:
				values[1] = CStringGetTextDatum("applied");
				break;
			case ST_DUPLICATE:
				values[1] = CStringGetTextDatum("duplicate");
				break;
			default:
				values[1] = CStringGetTextDatum("invalid");
				break;
		}
		if (items[i].status == ST_INVALID)
			values[2] = CStringGetTextDatum(items[i].error);
		else
			vnulls[2] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, vnulls);
	}
	return (Datum) 0;
}
