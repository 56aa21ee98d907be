/*
 * jobjson.c: the messages of sharecount_apply_json() (docs/sql.md), a JSON
 * array given as text, read in one pass straight into one JobMessage per
 * message (apply.h), which jobcheck.c validates.  A scanner for the
 * escape-free documents the bridge sends fills the messages directly; any
 * other document is read by PostgreSQL's own JSON parser (the one jsonb_in
 * uses, so the same documents are accepted, with the same unescaping and
 * the same errors) through callbacks that fill them the same way.  No jsonb
 * is built: no tree, no sorted key arrays, no copy per element
 * (docs/performance.md "P7 consumer").
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
 * - The scanner and the callbacks share envelope_key(), data_key() and
 *   number_value(): what a key or a number does to a message is decided once.
 * - Memory: the messages, the scanner's copy of the text (its strings ended
 *   in place) and the strings and keys pg_parse_json hands over are palloc'd
 *   in the caller's context and stay with it: every JobValue string is
 *   NUL-terminated (JobMessage.nul_terminated), and the validated jobs keep
 *   pointers into them.
 */
#include "postgres.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonfuncs.h"
#include "utils/memutils.h"

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

/* A new message, zeroed, at the end of ps's (room made as needed). */
static JobMessage *
new_message(ParseState *ps)
{
	JobMessage *m;

	if (ps->n == ps->cap)
	{
		ps->cap *= 2;
		ps->msgs = repalloc(ps->msgs, sizeof(JobMessage) * ps->cap);
	}
	m = &ps->msgs[ps->n++];
	memset(m, 0, sizeof(JobMessage));
	m->nul_terminated = true; /* both parsers end their strings */
	return m;
}

/*
 * A key of m's envelope (depth 2): which one it is.  "data" forgets an
 * earlier "data"'s fields (the last one wins); a key that is none of
 * pattern, data and id is noted as m's bad key if it comes first.
 */
static EnvKey
envelope_key(JobMessage *m, const char *key, int len)
{
	if (len == 7 && memcmp(key, "pattern", 7) == 0)
		return ENV_PATTERN;
	if (len == 4 && memcmp(key, "data", 4) == 0)
	{
		memset(m->field, 0, sizeof(m->field));
		m->extra_key = NULL;
		m->extra_key_len = 0;
		return ENV_DATA;
	}
	if (!(len == 2 && memcmp(key, "id", 2) == 0))
		sc_job_first_key(key, len, &m->bad_key, &m->bad_key_len);
	return ENV_OTHER;
}

/* A key of m's "data" object (depth 3): its job field, or -1 (noted). */
static int
data_key(JobMessage *m, const char *key, int len)
{
	int field = sc_job_field_index(key, len);

	if (field < 0)
		sc_job_first_key(key, len, &m->extra_key, &m->extra_key_len);
	return field;
}

/* A JSON number as jsonb_in reads it: every number goes through numeric_in. */
static Datum
number_value(char *token)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum(token),
							   ObjectIdGetDatum(InvalidOid),
							   Int32GetDatum(-1));
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

	if (ps->depth == 1)
		(void) new_message(ps);
}

static void
field_start(void *state, char *fname, bool isnull)
{
	ParseState *ps = (ParseState *) state;

	if (ps->n == 0)
		return;
	if (ps->depth == 2)
	{
		ps->env = envelope_key(cur(ps), fname, strlen(fname));
		ps->field = -1;
	}
	else if (ps->depth == 3 && ps->env == ENV_DATA)
		ps->field = data_key(cur(ps), fname, strlen(fname));
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
			v.type = JV_NUMBER;
			v.num = number_value(token);
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
 * any string, nesting at most FAST_MAX_DEPTH) that fills the messages
 * directly, with what the callbacks above would have put there: an element
 * of the top-level array is a message, an object message's keys go through
 * envelope_key() and its "data" object's keys through data_key(), the
 * values of "pattern", "data" and the job fields fill their JobValue, and
 * every number goes through number_value() wherever it is.  It reads a copy
 * of the text whose strings it ends in place; the copy's NUL after its last
 * byte ends every loop (a text holds no NUL byte), and FAST_PAD more bytes
 * let fast_string() read 16 at a time.  Whatever it does not expect (an
 * escape, a control character, a token PostgreSQL might read otherwise, bad
 * syntax, a top level that is no array) makes it give up (NULL), and the
 * whole text is parsed again by pg_parse_json(), which then decides, errors
 * included.  Each function takes the position of what it reads and returns
 * the position after it, or NULL.
 */
#define FAST_MAX_DEPTH 16
#define FAST_PAD 16 /* zero bytes after the copy's NUL: one 16-byte load */

/* What the members of an object are to the fast path. */
typedef enum
{
	OBJ_SKIP,	  /* nothing: read and dropped */
	OBJ_ENVELOPE, /* a message's envelope */
	OBJ_DATA	  /* the job fields of a message's "data" */
} ObjRole;

static char *fast_value(char *p, JobValue *slot, JobMessage *m, ObjRole role,
						int depth);

static inline char *
fast_ws(char *p)
{
	while ((unsigned char) *p <= ' ' &&
		   (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* Whether p ends a number or a literal, as PostgreSQL's lexer sees it. */
static bool
fast_delim(const char *p)
{
	return *p == '\0' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' ||
		*p == ',' || *p == ']' || *p == '}';
}

#ifndef __SSE2__
/*
 * The bytes a fast string stops at: '"', '\\' and the control characters,
 * among them the NUL that ends the copy (so the loop needs no bound).
 */
static bool fast_stop[256];
#endif

/*
 * The end of a string without escapes whose first byte is at s: its closing
 * '"', made a NUL; NULL if a backslash or a control character comes first.
 * With SSE2, 16 bytes at a time (a job's strings are 2 to 30 bytes).
 */
static inline char *
fast_string(char *s)
{
	char *p = s;
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"');
	const __m128i backslash = _mm_set1_epi8('\\');
	const __m128i control = _mm_set1_epi8(0x1f);

	for (;; p += 16)
	{
		__m128i v = _mm_loadu_si128((const __m128i *) p);
		__m128i stop =
			_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
									  _mm_cmpeq_epi8(v, backslash)),
						 _mm_cmpeq_epi8(_mm_min_epu8(v, control), v));
		int mask = _mm_movemask_epi8(stop);

		if (mask != 0)
		{
			p += __builtin_ctz(mask);
			break;
		}
	}
#else
	if (!fast_stop['"'])
	{
		int c;

		for (c = 0; c < 0x20; c++)
			fast_stop[c] = true;
		fast_stop['"'] = fast_stop['\\'] = true;
	}
	while (!fast_stop[(unsigned char) *p])
		p++;
#endif
	if (*p != '"')
		return NULL;
	*p = '\0';
	return p;
}

/* Digits at p: past them. */
static char *
fast_digits(char *p)
{
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

/* The end of a number (JSON's grammar) or a literal at p, its type *type. */
static char *
fast_token_end(char *p, JobValueType *type)
{
	*type = JV_NUMBER;
	if (p[0] == 't' && p[1] == 'r' && p[2] == 'u' && p[3] == 'e')
		return *type = JV_BOOL, p + 4;
	if (p[0] == 'f' && p[1] == 'a' && p[2] == 'l' && p[3] == 's' &&
		p[4] == 'e')
		return *type = JV_BOOL, p + 5;
	if (p[0] == 'n' && p[1] == 'u' && p[2] == 'l' && p[3] == 'l')
		return *type = JV_NULL, p + 4;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		p = fast_digits(p);
	else
		return NULL;
	if (*p == '.')
	{
		if (!isdigit((unsigned char) *++p))
			return NULL;
		p = fast_digits(p);
	}
	if (*p == 'e' || *p == 'E')
	{
		if (*++p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char) *p))
			return NULL;
		p = fast_digits(p);
	}
	return p;
}

/*
 * A number or a literal at p, into *slot (NULL: read and dropped; a number
 * still goes through number_value()).
 */
static char *
fast_token(char *p, JobValue *slot)
{
	JobValueType type;
	char *end = fast_token_end(p, &type);
	char saved;
	Datum num = (Datum) 0;

	if (end == NULL || !fast_delim(end))
		return NULL;
	if (type == JV_NUMBER)
	{
		saved = *end; /* the copy has a NUL after its end */
		*end = '\0';
		num = number_value(p);
		*end = saved;
	}
	if (slot != NULL)
	{
		slot->type = type;
		slot->num = num;
	}
	return end;
}

/*
 * After a member or an element at p: past the ',' and the space after it,
 * or past close (then the result's [-1] is close); NULL if neither follows.
 */
static inline char *
fast_next(char *p, char close)
{
	p = fast_ws(p);
	if (*p == ',')
		return fast_ws(p + 1);
	return *p == close ? p + 1 : NULL;
}

/* A string value at p (its '"') into *slot (NULL: dropped). */
static inline char *
fast_string_value(char *p, JobValue *slot)
{
	char *end = fast_string(p + 1);

	if (end != NULL && slot != NULL)
	{
		slot->type = JV_STRING;
		slot->str = p + 1;
		slot->len = end - (p + 1);
	}
	return end ? end + 1 : NULL;
}

/* The members of an object, p after its '{', as role says. */
static char *
fast_object(char *p, JobMessage *m, ObjRole role, int depth)
{
	p = fast_ws(p);
	if (*p == '}')
		return p + 1;
	do
	{
		char *key = p + 1;
		char *end;
		JobValue *slot = NULL;
		ObjRole sub = OBJ_SKIP;

		if (*p != '"' || (end = fast_string(key)) == NULL)
			return NULL;
		p = fast_ws(end + 1);
		if (*p != ':')
			return NULL;
		p = fast_ws(p + 1);
		if (role == OBJ_DATA)
		{
			int field = data_key(m, key, end - key);

			slot = field >= 0 ? &m->field[field] : NULL;
		}
		else if (role == OBJ_ENVELOPE)
		{
			EnvKey env = envelope_key(m, key, end - key);

			slot = env == ENV_PATTERN ? &m->pattern :
				env == ENV_DATA		  ? &m->data :
										NULL;
			sub = env == ENV_DATA ? OBJ_DATA : OBJ_SKIP;
		}
		p = *p == '"' ? fast_string_value(p, slot) :
						fast_value(p, slot, m, sub, depth);
		if (p == NULL || (p = fast_next(p, '}')) == NULL)
			return NULL;
	} while (p[-1] != '}');
	return p;
}

/*
 * The elements of an array, p after its '[': each a message when ps is
 * given (the top-level array), else read and dropped.
 */
static char *
fast_array(char *p, ParseState *ps, int depth)
{
	p = fast_ws(p);
	if (*p == ']')
		return p + 1;
	do
	{
		JobMessage *m = NULL;

		if (ps != NULL)
		{
			m = new_message(ps);
			m->is_object = *p == '{';
		}
		p = fast_value(p, NULL, m, m ? OBJ_ENVELOPE : OBJ_SKIP, depth);
		if (p == NULL || (p = fast_next(p, ']')) == NULL)
			return NULL;
	} while (p[-1] != ']');
	return p;
}

/*
 * A value at p into *slot (NULL: dropped; a container only sets its type);
 * an object's members are read as role says.
 */
static char *
fast_value(char *p, JobValue *slot, JobMessage *m, ObjRole role, int depth)
{
	if (*p == '{' || *p == '[')
	{
		if (depth >= FAST_MAX_DEPTH)
			return NULL;
		if (slot != NULL)
			slot->type = *p == '{' ? JV_OBJECT : JV_ARRAY;
		return *p == '{' ? fast_object(p + 1, m, role, depth + 1) :
						   fast_array(p + 1, NULL, depth + 1);
	}
	if (*p == '"')
		return fast_string_value(p, slot);
	return fast_token(p, slot);
}

/* The fast path over a copy of the text; false: parse it with pg_parse_json. */
static bool
fast_parse(ParseState *ps, text *json)
{
	Size len = VARSIZE_ANY_EXHDR(json);
	char *copy;
	char *p;

	if (!AllocSizeIsValid(len + 1 + FAST_PAD))
		return false; /* a text of nearly 1 GB: pg_parse_json reads it */
	copy = palloc(len + 1 + FAST_PAD);
	memcpy(copy, VARDATA_ANY(json), len);
	memset(copy + len, 0, 1 + FAST_PAD); /* the scanner's bound */
	p = fast_ws(copy);
	if (*p != '[')
		return false;
	ps->top_array = true;
	p = fast_array(p + 1, ps, 1);
	return p != NULL && *fast_ws(p) == '\0';
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
