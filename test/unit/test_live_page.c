/*
 * test_live_page.c — unit test for bridge/live_page.c (docs/live.md): the
 * compiled-in page is byte for byte bridge/page.html (so the build picked up
 * the current page), NUL-terminated, and uses the stream endpoint with
 * EventSource.  Run from the repository root (test/run.sh does).
 * Plain program: exit 0 = pass.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_page.h"

/* defined by main.c, which unit tests do not link; other bridge objects use them */
volatile sig_atomic_t sc_stop;
volatile sig_atomic_t sc_reload;

#define PAGE_MAX (256 * 1024) /* far above the page's size: a read that fills it is a failure */

int
main(void)
{
	static char file[PAGE_MAX];
	FILE *f = fopen("bridge/page.html", "rb");
	size_t n = f ? fread(file, 1, sizeof(file), f) : 0, len;
	const char *page = live_page(&len);
	int failures = 0;

	if (f)
		fclose(f);
	if (n == 0 || n == sizeof(file) || len != n || memcmp(page, file, n) != 0)
		printf("FAIL: compiled-in page (%zu bytes) differs from bridge/page.html (%zu bytes)\n", len, n), failures++;
	if (page[len] != '\0' || strlen(page) != len)
		printf("FAIL: page not a NUL-terminated string without NULs\n"), failures++;
	if (!strstr(page, "new EventSource(\"/share-links/stream/") || !strstr(page, "contentType") ||
		!strstr(page, "<meta charset=\"utf-8\">"))
		printf("FAIL: page lacks EventSource on /share-links/stream/, contentType or its charset\n"), failures++;
	if (strstr(page, "<script src") || strstr(page, "<link "))
		printf("FAIL: page loads something from elsewhere (it must be self-contained)\n"), failures++;
	printf("page %zu bytes, %d failures\n", len, failures);
	return failures ? 1 : 0;
}
