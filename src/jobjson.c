/*
 * jobjson.c: the messages of sharecount_apply_json() (docs/sql.md), a JSON
 * array given as text, read in one pass of PostgreSQL's own JSON parser
 * (the one jsonb_in uses, so the same documents are accepted, with the same
 * unescaping and the same errors) straight into one JobMessage per message
 * (apply.h), which jobcheck.c validates.  No jsonb is built: no tree, no
 * sorted key arrays, no copy per element; that was 40 % of the consumer's
 * cost per job (docs/performance.md "P7 consumer").
 *
 * What a message keeps is what validation reads from a jsonb: for a key
 * given twice the last value wins (a second "data" object replaces the
 * first one's fields), and of the other keys only the first one in jsonb's
 * key order.  Every number is read with numeric_in, as jsonb_in does, so a
 * number numeric cannot hold is an error wherever it is.
 *
 * Rules:
 * - Depth 0 is the array, 1 a message, 2 the envelope's values, 3 the values
 *   of "data"'s keys; deeper values only count as an object or array.
 * - Memory: the messages, the unescaped strings and keys the parser hands
 *   over are palloc'd in the caller's context and stay with it.
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonfuncs.h"

#include "sharecount.h"
#include "apply.h"

/* The envelope key whose value is being read (depth 2). */
typedef enum
{
	ENV_OTHER,
	ENV_PATTERN,
	ENV_DATA
} EnvKey;

/*
 * Room is first made for one message per PARSE_BYTES_PER_MSG bytes of the
 * text (PARSE_FIRST_CAP to PARSE_MAX_FIRST_CAP: 1.7 MB at most, whatever the
 * text holds), doubled as needed: a bridge's job message is 200 to 300
 * bytes, so its batch is read without copying the array again.
 */
#define PARSE_FIRST_CAP 64
#define PARSE_MAX_FIRST_CAP 4096
#define PARSE_BYTES_PER_MSG 128

typedef struct ParseState
{
	JobMessage *msgs;
	int n;
	int cap;
	int depth;
	bool top_array; /* the document is an array */
	EnvKey env;		/* of the message's current key */
	int field;		/* the data key being read: a job_fields index, or -1 */
} ParseState;

static JobMessage *
cur(ParseState *ps)
{
	return &ps->msgs[ps->n - 1];
}

/*
 * Where a value that starts at the current depth goes: the envelope's
 * pattern or data, a data field, or nowhere (NULL).
 */
static JobValue *
value_slot(ParseState *ps)
{
	if (ps->n == 0)
		return NULL;
	if (ps->depth == 2)
		return ps->env == ENV_PATTERN ? &cur(ps)->pattern :
			ps->env == ENV_DATA		  ? &cur(ps)->data :
										NULL;
	if (ps->depth == 3 && ps->env == ENV_DATA && ps->field >= 0)
		return &cur(ps)->field[ps->field];
	return NULL;
}

static void
container_start(ParseState *ps, JobValueType type)
{
	JobValue *slot = value_slot(ps);

	if (ps->depth == 0 && type == JV_ARRAY)
		ps->top_array = true;
	else if (ps->depth == 1 && type == JV_OBJECT)
		cur(ps)->is_object = true;
	else if (slot != NULL)
		slot->type = type;
	ps->depth++;
}

static void
object_start(void *state)
{
	container_start((ParseState *) state, JV_OBJECT);
}

static void
array_start(void *state)
{
	container_start((ParseState *) state, JV_ARRAY);
}

static void
container_end(void *state)
{
	((ParseState *) state)->depth--;
}

/* A new message: an element of the top-level array. */
static void
element_start(void *state, bool isnull)
{
	ParseState *ps = (ParseState *) state;

	if (ps->depth != 1)
		return;
	if (ps->n == ps->cap)
	{
		ps->cap *= 2;
		ps->msgs = repalloc(ps->msgs, sizeof(JobMessage) * ps->cap);
	}
	memset(&ps->msgs[ps->n++], 0, sizeof(JobMessage));
}

static void
field_start(void *state, char *fname, bool isnull)
{
	ParseState *ps = (ParseState *) state;
	JobMessage *m;
	int len = strlen(fname);

	if (ps->n == 0)
		return;
	m = cur(ps);
	if (ps->depth == 2)
	{
		ps->env = ENV_OTHER;
		ps->field = -1;
		if (len == 7 && memcmp(fname, "pattern", 7) == 0)
			ps->env = ENV_PATTERN;
		else if (len == 4 && memcmp(fname, "data", 4) == 0)
		{
			/* the last "data" wins: forget an earlier one's fields */
			ps->env = ENV_DATA;
			memset(m->field, 0, sizeof(m->field));
			m->extra_key = NULL;
			m->extra_key_len = 0;
		}
		else if (!(len == 2 && memcmp(fname, "id", 2) == 0))
			sc_job_first_key(fname, len, &m->bad_key, &m->bad_key_len);
	}
	else if (ps->depth == 3 && ps->env == ENV_DATA)
	{
		ps->field = sc_job_field_index(fname, len);
		if (ps->field < 0)
			sc_job_first_key(fname, len, &m->extra_key, &m->extra_key_len);
	}
}

static void
scalar(void *state, char *token, JsonTokenType tokentype)
{
	ParseState *ps = (ParseState *) state;
	JobValue *slot = value_slot(ps);
	JobValue v;

	memset(&v, 0, sizeof(v));
	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = JV_STRING;
			v.str = token;
			v.len = strlen(token);
			break;
		case JSON_TOKEN_NUMBER:
			/* as jsonb_in: every number goes through numeric_in */
			v.type = JV_NUMBER;
			v.num = DirectFunctionCall3(numeric_in, CStringGetDatum(token),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
			break;
		case JSON_TOKEN_NULL:
			v.type = JV_NULL;
			break;
		default:
			v.type = JV_BOOL;
			break;
	}
	if (ps->depth > 1 && slot != NULL)
		*slot = v;
}

/*
 * The fast path: a scanner for the documents the bridge sends (no escape in
 * any string, nesting at most FAST_MAX_DEPTH) that makes the same callback
 * calls as pg_parse_json() would, in the same order, on a copy of the text
 * whose strings it ends in place.  Whatever it does not expect (an escape, a
 * control character, a token PostgreSQL might read otherwise, bad syntax)
 * makes it give up (false), and the whole text is parsed again by
 * pg_parse_json(), which then decides, errors included.
 */
#define FAST_MAX_DEPTH 16

static bool fast_value(ParseState *ps, char **pp, char *end, int depth);

static char *
fast_ws(char *p, char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* Whether p ends a number or a literal, as PostgreSQL's lexer sees it. */
static bool
fast_delim(const char *p, const char *end)
{
	return p == end || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' ||
		*p == ',' || *p == ']' || *p == '}';
}

/*
 * The bytes a fast string stops at: '"', '\\' and the control characters,
 * among them the NUL that ends the copy (so the loop needs no bound).
 */
static bool fast_stop[256];

static void
fast_stop_init(void)
{
	int c;

	for (c = 0; c < 0x20; c++)
		fast_stop[c] = true;
	fast_stop['"'] = fast_stop['\\'] = true;
}

/* A string without escapes at *pp (a '"'): *out, NUL-terminated in place. */
static bool
fast_string(char **pp, char *end, char **out)
{
	char *p = *pp + 1;

	while (!fast_stop[(unsigned char) *p])
		p++;
	if (p == end || *p != '"')
		return false;
	*p = '\0';
	*out = *pp + 1;
	*pp = p + 1;
	return true;
}

/* A number (JSON's grammar) or a literal at *pp, handed to scalar(). */
static bool
fast_token(ParseState *ps, char **pp, char *end)
{
	char *p = *pp;
	char saved;
	JsonTokenType type = JSON_TOKEN_NUMBER;

	if (end - p >= 4 && memcmp(p, "true", 4) == 0)
		p += 4, type = JSON_TOKEN_TRUE;
	else if (end - p >= 5 && memcmp(p, "false", 5) == 0)
		p += 5, type = JSON_TOKEN_FALSE;
	else if (end - p >= 4 && memcmp(p, "null", 4) == 0)
		p += 4, type = JSON_TOKEN_NULL;
	else
	{
		if (p < end && *p == '-')
			p++;
		if (p < end && *p == '0')
			p++;
		else if (p < end && *p >= '1' && *p <= '9')
			while (p < end && isdigit((unsigned char) *p))
				p++;
		else
			return false;
		if (p < end && *p == '.')
		{
			if (++p == end || !isdigit((unsigned char) *p))
				return false;
			while (p < end && isdigit((unsigned char) *p))
				p++;
		}
		if (p < end && (*p == 'e' || *p == 'E'))
		{
			if (++p < end && (*p == '+' || *p == '-'))
				p++;
			if (p == end || !isdigit((unsigned char) *p))
				return false;
			while (p < end && isdigit((unsigned char) *p))
				p++;
		}
	}
	if (!fast_delim(p, end))
		return false;
	saved = *p; /* the copy has a NUL after its end */
	*p = '\0';
	scalar(ps, *pp, type);
	*p = saved;
	*pp = p;
	return true;
}

/* The members of an object or the elements of an array, *pp after its opener. */
static bool
fast_members(ParseState *ps, char **pp, char *end, int depth, bool object)
{
	char *p = fast_ws(*pp, end);
	char close = object ? '}' : ']';

	if (p < end && *p == close)
	{
		*pp = p + 1;
		return true;
	}
	for (;;)
	{
		char *key;

		if (object)
		{
			if (p == end || *p != '"' || !fast_string(&p, end, &key))
				return false;
			p = fast_ws(p, end);
			if (p == end || *p != ':')
				return false;
			p = fast_ws(p + 1, end);
			field_start(ps, key, p < end && *p == 'n');
		}
		else
			element_start(ps, p < end && *p == 'n');
		if (!fast_value(ps, &p, end, depth))
			return false;
		p = fast_ws(p, end);
		if (p < end && *p == ',')
		{
			p = fast_ws(p + 1, end);
			continue;
		}
		if (p == end || *p != close)
			return false;
		*pp = p + 1;
		return true;
	}
}

static bool
fast_value(ParseState *ps, char **pp, char *end, int depth)
{
	char *str;

	if (*pp == end)
		return false;
	if (**pp == '{' || **pp == '[')
	{
		bool object = **pp == '{';

		if (depth >= FAST_MAX_DEPTH)
			return false;
		container_start(ps, object ? JV_OBJECT : JV_ARRAY);
		(*pp)++;
		if (!fast_members(ps, pp, end, depth + 1, object))
			return false;
		container_end(ps);
		return true;
	}
	if (**pp == '"')
	{
		if (!fast_string(pp, end, &str))
			return false;
		scalar(ps, str, JSON_TOKEN_STRING);
		return true;
	}
	return fast_token(ps, pp, end);
}

/* The fast path over a copy of the text; false: parse it with pg_parse_json. */
static bool
fast_parse(ParseState *ps, text *json)
{
	int len = VARSIZE_ANY_EXHDR(json);
	char *copy = palloc(len + 1);
	char *p = copy;
	char *end = copy + len;

	memcpy(copy, VARDATA_ANY(json), len);
	copy[len] = '\0'; /* fast_string's bound */
	if (!fast_stop['"'])
		fast_stop_init();
	p = fast_ws(p, end);
	if (!fast_value(ps, &p, end, 0))
		return false;
	return fast_ws(p, end) == end;
}

/* Parse state before the first callback. */
static void
parse_init(ParseState *ps)
{
	ps->n = 0;
	ps->depth = 0;
	ps->top_array = false;
	ps->env = ENV_OTHER;
	ps->field = -1;
}

/* See apply.h. */
BatchItem *
sc_parse_batch(text *json, int *n)
{
	ParseState ps;
	BatchItem *items;
	int i;

	memset(&ps, 0, sizeof(ps));
	ps.cap = Min(Max(PARSE_FIRST_CAP,
					 VARSIZE_ANY_EXHDR(json) / PARSE_BYTES_PER_MSG + 1),
				 PARSE_MAX_FIRST_CAP);
	ps.msgs = palloc(sizeof(JobMessage) * ps.cap);
	parse_init(&ps);
	if (!fast_parse(&ps, json))
	{
		JsonLexContext *lex = makeJsonLexContextCstringLen(
			VARDATA_ANY(json), VARSIZE_ANY_EXHDR(json), GetDatabaseEncoding(),
			true);
		JsonSemAction sem;

		memset(&sem, 0, sizeof(sem));
		sem.semstate = &ps;
		sem.object_start = object_start;
		sem.object_end = container_end;
		sem.array_start = array_start;
		sem.array_end = container_end;
		sem.array_element_start = element_start;
		sem.object_field_start = field_start;
		sem.scalar = scalar;
		parse_init(&ps);
		pg_parse_json_or_ereport(lex, &sem);
	}
	if (!ps.top_array)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("messages must be a JSON array"),
			 errhint(
				 "Pass the jobs as one JSON array of messages, as "
				 "the bridge does: '[{\"pattern\": ..., \"data\": ...}]'.")));

	items = palloc0(sizeof(BatchItem) * Max(ps.n, 1));
	for (i = 0; i < ps.n; i++)
	{
		items[i].error = sc_validate_parsed(&ps.msgs[i], &items[i].job);
		items[i].status = items[i].error ? ST_INVALID : ST_PENDING;
	}
	*n = ps.n;
	return items;
}
