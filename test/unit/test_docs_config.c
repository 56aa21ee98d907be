/*
 * test_docs_config.c — docs/config.md against the bridge's settings table
 * (config.c, through config_settings()), so the reference cannot drift.
 *
 * Between the markers "<!-- settings table begin -->" and "<!-- settings
 * table end -->" docs/config.md must have exactly one row per setting that
 * starts with the columns derived here from the table:
 *
 *   | `name` | type | default | bounds | reload | `SHARECOUNT_NAME` | meaning |
 *
 * type is "integer" or "string"; default is the default in backticks (`""`
 * for an empty string, "unset" for none); bounds are "min–max" for an integer
 * and "–" for a string; reload is "yes" or "no".  The meaning column is free
 * text.  A row for a name that is not a setting fails too.
 *
 * Usage: test_docs_config.bin [FILE] (default docs/config.md, relative to the
 * repository root, where test/run.sh runs it); test_docs_config.bin --print
 * prints the rows as they should start, with config.c's help text as the
 * meaning, to paste into docs/config.md after a settings change.
 *
 * Rules: reads the file once into memory; exits 1 on any failure, printing one
 * FAIL line per problem with the row expected.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "config.h"
#include "config_table.h"

volatile sig_atomic_t sc_stop;
volatile sig_atomic_t sc_reload;

#define TABLE_BEGIN "<!-- settings table begin -->"
#define TABLE_END "<!-- settings table end -->"
/* Longest row prefix built here (name, default and bounds are short). */
#define ROW_MAX 512

static int failures;

/* The columns a row for s must start with, up to and including the env var's "| ". */
static void
row_prefix(const struct setting *s, char *buf, size_t len)
{
	char def[256];
	char bounds[64];
	char env[96];
	size_t j;

	if (!s->def)
		snprintf(def, sizeof(def), "unset");
	else
		snprintf(def, sizeof(def), "`%s`", s->def[0] ? s->def : "\"\"");
	if (s->type == T_INT)
		snprintf(bounds, sizeof(bounds), "%ld–%ld", s->min, s->max);
	else
		snprintf(bounds, sizeof(bounds), "–");
	snprintf(env, sizeof(env), "SHARECOUNT_");
	for (j = 0; s->name[j] && 11 + j + 1 < sizeof(env); j++)
		env[11 + j] = (char) (s->name[j] >= 'a' && s->name[j] <= 'z' ? s->name[j] - 32 : s->name[j]);
	env[11 + j] = '\0';
	snprintf(buf, len, "| `%s` | %s | %s | %s | %s | `%s` | ", s->name, s->type == T_INT ? "integer" : "string", def,
			 bounds, s->reloadable ? "yes" : "no", env);
}

static char *
read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) n + 1);
	if (buf && fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Every row of the table that names a setting (starts with "| `"), checked one way. */
static void
check_rows_are_settings(char *table, const struct setting *set, size_t n)
{
	for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n"))
	{
		char *end;
		size_t i;

		if (strncmp(line, "| `", 3) != 0)
			continue;
		end = strchr(line + 3, '`');
		for (i = 0; end && i < n; i++)
			if (strlen(set[i].name) == (size_t) (end - line - 3) &&
				!strncmp(set[i].name, line + 3, (size_t) (end - line - 3)))
				break;
		if (!end || i == n)
		{
			failures++;
			printf("FAIL docs/config.md has a row for a setting config.c does not have: %s\n", line);
		}
	}
}

int
main(int argc, char **argv)
{
	size_t n;
	const struct setting *set = config_settings(&n);
	const char *path = argc > 1 ? argv[1] : "docs/config.md";
	char want[ROW_MAX];
	char *doc, *begin, *end;

	if (argc > 1 && !strcmp(argv[1], "--print"))
	{
		for (size_t i = 0; i < n; i++)
		{
			row_prefix(&set[i], want, sizeof(want));
			printf("%s%s |\n", want, set[i].help);
		}
		return 0;
	}
	doc = read_all(path);
	if (!doc)
	{
		printf("FAIL cannot read %s (run from the repository root)\n", path);
		return 1;
	}
	begin = strstr(doc, TABLE_BEGIN);
	end = begin ? strstr(begin, TABLE_END) : NULL;
	if (!begin || !end)
	{
		printf("FAIL %s: no \"%s\" ... \"%s\" section\n", path, TABLE_BEGIN, TABLE_END);
		return 1;
	}
	*end = '\0';
	for (size_t i = 0; i < n; i++)
	{
		char line[ROW_MAX + 2];
		const char *hit;

		row_prefix(&set[i], want, sizeof(want));
		snprintf(line, sizeof(line), "\n%s", want);
		hit = strstr(begin, line);
		if (!hit || strstr(hit + 1, line))
		{
			failures++;
			printf("FAIL %s: %s row for setting %s; it must start with:\n    %s\n", path,
				   hit ? "more than one" : "no (or an out-of-date)", set[i].name, want);
		}
	}
	check_rows_are_settings(begin, set, n);
	free(doc);
	if (failures)
		printf(
			"%d failure(s): docs/config.md disagrees with bridge/config.c (test_docs_config.bin --print shows the rows)\n",
			failures);
	return failures ? 1 : 0;
}
