/*
 * test_http_reply.c — unit tests for http_count_body() in bridge/http_reply.c:
 * the hand-written body of a count answer (docs/http.md) is byte for byte
 * what jansson writes for the same object (json_dumps, JSON_COMPACT |
 * JSON_PRESERVE_ORDER, as http_send_json sends it), at the limits of an
 * int64 count and of the characters that go into a JSON string unescaped;
 * a string that needs escaping gets NULL (the caller then uses jansson).
 * Plain program: exit 0 = pass; every failed check prints one line.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_reply.h"

#include "unit.h"

/* jansson's body for the same answer (malloc'ed) */
static char *
jansson_body(const char *type, const char *id, int64_t count)
{
	json_t *v = json_object();
	char *s;

	json_object_set_new(v, "contentType", json_string(type));
	json_object_set_new(v, "contentId", json_string(id));
	json_object_set_new(v, "shareCount", json_integer(count));
	s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(v);
	return s;
}

static void
same_as_jansson(const char *type, const char *id, int64_t count)
{
	size_t len = 0;
	char *mine = http_count_body(type, id, count, &len);
	char *theirs = jansson_body(type, id, count);

	CHECK(mine != NULL, "(%s, %s, %lld): no body", type, id, (long long) count);
	if (mine)
		CHECK(len == strlen(theirs) && memcmp(mine, theirs, len) == 0, "(%s, %s, %lld): %.*s, jansson %s", type, id,
			  (long long) count, (int) len, mine, theirs);
	free(mine);
	free(theirs);
}

static void
needs_jansson(const char *type, const char *id)
{
	size_t len = 0;
	char *mine = http_count_body(type, id, 1, &len);

	CHECK(mine == NULL, "(%s, %s): written by hand, needs escaping", type, id);
	free(mine);
}

int
main(void)
{
	static const int64_t counts[] = {0,	 1,	  9,		  10,		 99,		100,		   12345,
									 -1, -10, 1000000007, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1};
	char printable[0x7f - 0x20 + 1], big[5000];
	size_t i, n = 0;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		same_as_jansson("article", "1", counts[i]);
	same_as_jansson("", "", 7);
	same_as_jansson("a", "550e8400-e29b-41d4-a716-446655440000", 42);
	/* every printable ASCII character but '"' and '\\' goes in as is */
	for (i = 0x20; i < 0x7f; i++)
		if (i != '"' && i != '\\')
			printable[n++] = (char) i;
	printable[n] = '\0';
	same_as_jansson(printable, printable, 3);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	same_as_jansson(big, big, INT64_MIN);

	needs_jansson("a\"b", "1");
	needs_jansson("article", "back\\slash");
	needs_jansson("article", "tab\there");
	needs_jansson("article", "\x1f");
	needs_jansson("article", "\x7f");
	needs_jansson("caf\xc3\xa9", "1");
	needs_jansson("article", "\xe2\x82\xac");
	return unit_done("http_reply");
}
