/*
 * test_publisher_rows.c — publisher_split_packed(): a packed claim's value
 * (docs/sql.md, sharecount_outbox_claim_packed) split in place into rows
 * that point into it; a malformed value (cannot happen: the extension renders
 * it) is refused with a reason, never read past its end.
 */
#include <stdlib.h>
#include <string.h>

#include "publisher_rows.h"
#include "unit.h"

#define MAXROWS 4
/* a body as render.c writes it: a tab in a value is the two bytes \t */
#define BODY0 "{\"pattern\":\"share_created\",\"a\":\"x\\ty\"}"

/* Split s (copied to a buffer of exactly its length, no NUL after it) into rows. */
static int
split(const char *s, struct pub_row *rows, int max, const char **why, char **buf)
{
	size_t len = strlen(s);

	*buf = malloc(len ? len : 1);
	memcpy(*buf, s, len);
	*why = NULL;
	return publisher_split_packed(*buf, len, rows, max, why);
}

static void
refused(const char *s, int max, const char *reason)
{
	struct pub_row rows[MAXROWS];
	const char *why;
	char *buf;
	int n = split(s, rows, max, &why, &buf);

	CHECK(n == -1 && why && strstr(why, reason), "%.40s: n=%d why=%s (wanted %s)", s, n, why ? why : "-", reason);
	free(buf);
}

int
main(void)
{
	struct pub_row rows[MAXROWS];
	const char *why;
	char *buf;
	int n;

	/* two jobs: fields in place, NUL-terminated, the body by its length */
	n = split("12\t" BODY0 "\tshare_created\t00000000000000ab-12\n"
			  "-3\t{}\tshare_count_update\t9e7b6f0c-5b0e-4c39-8d1e-0a6b2f6f1d11\n",
			  rows, MAXROWS, &why, &buf);
	CHECK(n == 2, "n=%d why=%s", n, why ? why : "-");
	CHECK(strcmp(rows[0].id, "12") == 0);
	CHECK(rows[0].body_len == (int) strlen(BODY0) && memcmp(rows[0].body, BODY0, strlen(BODY0)) == 0);
	CHECK(strcmp(rows[0].job_name, "share_created") == 0);
	CHECK(strcmp(rows[0].job_id, "00000000000000ab-12") == 0);
	CHECK(rows[0].id >= buf && rows[0].job_id < buf + 200, "rows point into the value");
	CHECK(strcmp(rows[1].id, "-3") == 0 && rows[1].body_len == 2 &&
		  strcmp(rows[1].job_name, "share_count_update") == 0);
	CHECK(strcmp(rows[1].job_id, "9e7b6f0c-5b0e-4c39-8d1e-0a6b2f6f1d11") == 0);
	free(buf);

	/* an empty claim */
	n = split("", rows, MAXROWS, &why, &buf);
	CHECK(n == 0);
	free(buf);

	/* exactly max jobs, then one too many */
	n = split("1\tb\tn\ti\n2\tb\tn\ti\n", rows, 2, &why, &buf);
	CHECK(n == 2);
	free(buf);
	refused("1\tb\tn\ti\n2\tb\tn\ti\n3\tb\tn\ti\n", 2, "more jobs than publish_batch");

	/* malformed: cut short, a missing newline, fields wrong */
	refused("1\tb\tn\ti", MAXROWS, "four fields");
	refused("1\tb\tn", MAXROWS, "four fields");
	refused("1", MAXROWS, "four fields");
	refused("1\tb\tn\ti\n2\tb", MAXROWS, "four fields");
	refused("x1\tb\tn\ti\n", MAXROWS, "malformed");
	refused("\tb\tn\ti\n", MAXROWS, "malformed");
	refused("-\tb\tn\ti\n", MAXROWS, "malformed");
	refused("12345678901234567890\tb\tn\ti\n", MAXROWS, "malformed");
	refused("1\t\tn\ti\n", MAXROWS, "malformed");
	refused("1\tb\t\ti\n", MAXROWS, "malformed");
	refused("1\tb\tn\t\n", MAXROWS, "malformed");
	refused("1\tb\nx\tn\ti\n", MAXROWS, "malformed"); /* a newline inside the body */
	refused("1\tb\tn\nx\ti\n", MAXROWS, "malformed"); /* inside the job name */
	refused("1\tb\tn\ti\tj\n", MAXROWS, "malformed"); /* a fifth field */
	return unit_done("publisher_rows");
}
