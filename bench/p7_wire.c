/*
 * p7_wire.c — the client of bench/p7_wire.sh: on the libpq connection of the
 * PG* environment, print the backend's pid, then run the consumer's apply
 * statement as the bridge does (prepared once, extended protocol, text
 * results: bridge/consumer_apply.c) on the first K lines of BODIES (one
 * batch each, a JSON array), and print how many rows came back.
 *
 * Usage: p7_wire BODIES K APPLIED_ROWS(true|false)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <libpq-fe.h>

#define STMT \
	"SELECT ord, status, error, content_type, content_id, share_count, delta, version " \
	"FROM sharecount_apply_json($1, $2, $3)"

static int
fail(PGconn *c, const char *what)
{
	fprintf(stderr, "p7_wire: %s: %s", what, c ? PQerrorMessage(c) : "\n");
	return 1;
}

int
main(int argc, char **argv)
{
	PGconn *c;
	FILE *f;
	PGresult *r;
	char *line = NULL;
	size_t cap = 0;
	long rows = 0;
	int k;

	if (argc != 4)
		return fail(NULL, "usage: p7_wire BODIES K APPLIED_ROWS");
	k = atoi(argv[2]);
	f = fopen(argv[1], "r");
	c = PQconnectdb("");
	if (!f || PQstatus(c) != CONNECTION_OK)
		return fail(c, "connect or open");
	r = PQexec(c, "SELECT pg_backend_pid()");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return fail(c, "pid");
	printf("pid %s\n", PQgetvalue(r, 0, 0));
	PQclear(r);
	r = PQprepare(c, "apply", STMT, 3, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return fail(c, "prepare");
	PQclear(r);
	for (int i = 0; i < k; i++)
	{
		ssize_t n = getline(&line, &cap, f);
		const char *params[3] = {line, "true", argv[3]};

		if (n <= 0)
			return fail(NULL, "fewer batches than K");
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		r = PQexecPrepared(c, "apply", 3, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			return fail(c, "apply");
		rows += PQntuples(r);
		PQclear(r);
	}
	printf("rows %ld\n", rows);
	free(line);
	fclose(f);
	PQfinish(c);
	return 0;
}
