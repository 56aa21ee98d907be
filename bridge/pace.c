/*
 * pace.c — rates over windows for the publisher's claim pacing and the
 * consumer's linger (see pace.h).
 *
 * Rules: no state but the caller's struct sc_pace; no clock reads (the caller
 * passes now), so that the unit test drives it.
 */
#include "pace.h"

#include "sc_limits.h"

void
sc_pace_add(struct sc_pace *p, int n, int64_t now)
{
	if (p->start_ms == 0 || now < p->start_ms)
	{
		p->start_ms = now;
		p->jobs = 0;
	}
	p->jobs += n;
	if (now - p->start_ms >= SC_PACE_WINDOW_MS)
	{
		p->per_s = (int) (p->jobs * 1000 / (now - p->start_ms));
		p->end_ms = now;
		p->start_ms = now;
		p->jobs = 0;
	}
}

int
sc_pace_per_s(const struct sc_pace *p, int64_t now)
{
	return p->end_ms > 0 && now - p->end_ms <= 2 * SC_PACE_WINDOW_MS ? p->per_s : 0;
}

int
sc_pace_note(struct sc_pace *p, int loaded)
{
	loaded = loaded != 0;
	if (p->loaded == loaded)
		return 0;
	p->loaded = loaded;
	return 1;
}
