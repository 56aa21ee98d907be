/*
 * unit_live.h — a count-change event for the live unit tests (test_live_hub,
 * test_live_cache): contentType/contentId, count and version as given, delta
 * 1, a fixed timestamp.
 */
#ifndef SC_UNIT_LIVE_H
#define SC_UNIT_LIVE_H

#include <stdio.h>
#include <string.h>

#include "live_event.h"

static inline struct live_count
unit_count(const char *type, const char *id, long long n, long long version)
{
	struct live_count c;

	memset(&c, 0, sizeof(c));
	snprintf(c.content_type, sizeof(c.content_type), "%s", type);
	snprintf(c.content_id, sizeof(c.content_id), "%s", id);
	c.share_count = n;
	c.delta = 1;
	c.version = version;
	snprintf(c.timestamp, sizeof(c.timestamp), "2026-01-02T03:04:05.678Z");
	return c;
}

#endif
