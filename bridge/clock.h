/*
 * clock.h — the bridge's one clock and its one backoff rule.
 *
 * Rules: every deadline, interval and timestamp the bridge compares is in
 * milliseconds of clock_now_ms() (CLOCK_MONOTONIC: never jumps with the wall
 * clock).  Wall-clock time is read only where a value leaves the process
 * (log lines, dead-letter headers, the lag of a job's own timestamp).  Every
 * retry pause that grows does so with backoff_next(): doubled, capped.
 * No state: safe from any thread.
 */
#ifndef SC_CLOCK_H
#define SC_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds (an arbitrary origin: only differences mean anything). */
int64_t clock_now_ms(void);

/* The pause after one of cur_ms: twice cur_ms, at most max_ms. */
int backoff_next(int cur_ms, int max_ms);

#endif
