/*
 * live_page.h — the live-count page (bridge/page.html, docs/live.md) as
 * bytes compiled into the daemon, for the http role's GET /.
 * Rules: the bytes are static and read-only; any thread may call this.
 */
#ifndef SC_LIVE_PAGE_H
#define SC_LIVE_PAGE_H

#include <stddef.h>

#define LIVE_PAGE_CONTENT_TYPE "text/html; charset=utf-8"

/* The page's bytes (NUL-terminated) and their length without the NUL. */
const char *live_page(size_t *len);

#endif
