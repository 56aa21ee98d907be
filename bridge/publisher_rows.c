/*
 * publisher_rows.c — the publisher's claim statement and the rows it gives:
 * sharecount_outbox_claim_packed(publish_batch), the claimed jobs as ONE text
 * value (docs/sql.md: a line per job, "<id>\t<body>\t<job_name>\t<job_id>\n"),
 * split in place into the slot's rows; no result row, output function call
 * or DataRow message per job on the server (docs/performance.md, "P7
 * bridge").
 *
 * Fallback: if the packed function cannot be called — missing (42883: the
 * database is still on 1.0, or an older 1.1) or not granted (42501) — the
 * failed statement has aborted the claim transaction: it is rolled back, a
 * new one begun, and the rows are claimed with sharecount_outbox_claim() (one
 * result row per job), until SC_CLAIM_PACKED_RECHECK_MS have passed
 * (pgconn_fn_unusable, as the consumer's apply falls back).
 *
 * Rules: the publisher thread only.  Splitting writes NULs over the value's
 * tabs and newlines: the rows point into the claim PGresult either way and
 * live as long as it (publisher_int.h).  A value that does not split into
 * well-formed lines (cannot happen: the extension renders it) fails the
 * claim like a database error: never a crash, never a partial publish.
 */
#include <string.h>

#include "bridge.h"
#include "log.h"
#include "pgconn.h"
#include "publisher_int.h"

/* Prepared once per slot connection (s->prep); done_stmt (publisher.c) has bit 0x2. */
static const struct pgconn_stmt claim_packed_stmt = {"sharecount_bridge_claim_packed",
													 "SELECT sharecount_outbox_claim_packed($1::int)", 1, 0x4};
static const struct pgconn_stmt claim_stmt = {
	"sharecount_bridge_claim", "SELECT id, job_name, job_id, body FROM sharecount_outbox_claim($1::int)", 1, 0x1};

PGresult *
publisher_run_claim(struct publisher *p, struct slot *s, const char *const *params, int *packed)
{
	PGresult *r;

	*packed = 0;
	if (clock_now_ms() >= p->packed_fn_retry_ms)
	{
		r = pgconn_run_prepared(s->pg, &claim_packed_stmt, &s->prep, params, &p->amqp);
		if ((r && PQresultStatus(r) == PGRES_TUPLES_OK) ||
			!pgconn_fn_unusable(r, "sharecount_outbox_claim_packed", "claiming with sharecount_outbox_claim()",
								SC_CLAIM_PACKED_RECHECK_MS, &p->packed_fn_retry_ms))
		{
			*packed = 1;
			return r;
		}
		PQclear(r);
		/* the failed statement aborted the claim transaction */
		if (pgconn_command(s->pg, "ROLLBACK", &p->amqp) < 0 || pgconn_command(s->pg, "BEGIN", &p->amqp) < 0)
			return NULL;
	}
	return pgconn_run_prepared(s->pg, &claim_stmt, &s->prep, params, &p->amqp);
}

/* The end of the field starting at v, ended by sep before end, made a NUL; NULL if none. */
static char *
field_end(char *v, const char *end, char sep)
{
	char *e = memchr(v, sep, (size_t) (end - v));

	if (e)
		*e = '\0';
	return e;
}

/* Whether id is an int8's text: an optional '-', then 1 to 19 digits. */
static int
id_ok(const char *id)
{
	size_t n;

	if (*id == '-')
		id++;
	n = strlen(id);
	return n >= 1 && n <= 19 && strspn(id, "0123456789") == n;
}

int
publisher_split_packed(char *v, size_t len, struct pub_row *rows, int max, const char **why)
{
	const char *end = v + len;
	int n = 0;

	while (v < end)
	{
		struct pub_row *row = &rows[n];
		char *f[4], *e = NULL;

		if (n == max)
			return *why = "more jobs than publish_batch", -1;
		for (int k = 0; k < 4; k++)
		{
			f[k] = v;
			/* a line's end before its fourth field's is malformed too (id_ok or the lengths catch it) */
			if (!(e = field_end(v, end, k < 3 ? '\t' : '\n')))
				return *why = "a line without its four fields", -1;
			v = e + 1;
		}
		if (!id_ok(f[0]) || f[2] - 1 == f[1] || memchr(f[1], '\n', (size_t) (f[2] - 1 - f[1])) || f[2][0] == '\0' ||
			f[3][0] == '\0' || strlen(f[2]) > 255 || strlen(f[3]) > 255 || strchr(f[2], '\n') || strchr(f[3], '\t'))
			return *why = "a malformed line", -1;
		row->id = f[0];
		row->body = f[1];
		row->body_len = (int) (f[2] - 1 - f[1]);
		row->job_name = f[2];
		row->job_id = f[3];
		n++;
	}
	return n;
}

int
publisher_claimed_rows(struct slot *s, int packed, int max)
{
	const char *why = NULL;
	int n;

	if (!packed)
	{
		n = PQntuples(s->claim);
		for (int i = 0; i < n && i < max; i++)
		{
			struct pub_row *row = &s->rows[i];

			row->id = PQgetvalue(s->claim, i, 0);
			row->job_name = PQgetvalue(s->claim, i, 1);
			row->job_id = PQgetvalue(s->claim, i, 2);
			row->body = PQgetvalue(s->claim, i, 3);
			row->body_len = PQgetlength(s->claim, i, 3);
		}
		if (n <= max)
			return n;
		why = "more jobs than publish_batch";
	}
	else if (PQntuples(s->claim) != 1 || PQnfields(s->claim) != 1)
		why = "not one value";
	else if (PQgetisnull(s->claim, 0, 0))
		why = "NULL";
	else if ((n = publisher_split_packed(PQgetvalue(s->claim, 0, 0), (size_t) PQgetlength(s->claim, 0, 0), s->rows, max,
										 &why)) >= 0)
		return n;
	log_error("claiming outbox rows: the claim's result is malformed (%s); rolling back", why);
	return -1;
}
