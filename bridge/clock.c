/*
 * clock.c — the monotonic clock and the doubling backoff (see clock.h).
 */
#include <time.h>

#include "clock.h"

int64_t
clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
backoff_next(int cur_ms, int max_ms)
{
	return cur_ms > max_ms / 2 ? max_ms : cur_ms * 2;
}
