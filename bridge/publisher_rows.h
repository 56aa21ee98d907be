/*
 * publisher_rows.h — a claimed job as the publisher holds it (struct
 * pub_row) and the splitting of a packed claim's value into them
 * (publisher_rows.c), apart from publisher_int.h so that a unit test can use
 * them without the AMQP and libpq headers.
 *
 * Rules: a row's strings point into the claim PGresult (publisher_int.h); a
 * packed value is split in place: its tabs and newlines become NULs.
 */
#ifndef SC_PUBLISHER_ROWS_H
#define SC_PUBLISHER_ROWS_H

#include <stddef.h>

enum row_state
{
	ROW_PENDING = 0,
	ROW_UNSENT,
	ROW_ACKED,
	ROW_NACKED
};

struct pub_row
{
	const char *id; /* points into the claim PGresult */
	const char *job_name;
	const char *job_id;
	const char *body;
	int body_len;
	enum row_state state;
	int returned; /* basic.return seen for it */
};

/*
 * Split a packed claim's value v[0..len) (docs/sql.md: a line per job,
 * "<id>\t<body>\t<job_name>\t<job_id>\n") in place into rows[0..max): the
 * number of rows, or -1 with *why if it is malformed or holds more than max.
 */
int publisher_split_packed(char *v, size_t len, struct pub_row *rows, int max, const char **why);

#endif
