/*
 * pace.h — the rate the publisher claims and the consumer applies jobs at,
 * over windows of SC_PACE_WINDOW_MS, and the pauses it decides
 * (docs/bridge.md "Publisher" claim pacing and "Consumer" batch size under
 * load): only a sustained rate of SC_PACE_LOADED_PER_S jobs/s or more makes
 * the publisher pause longer between claims and the consumer linger longer
 * for a batch, so that a burst after a stall (a backlog, not a high rate)
 * does not delay the jobs that follow it.
 *
 * Rules: pure functions of their arguments and of the struct sc_pace the
 * caller owns (one per role thread, no locking); times are clock_now_ms().
 */
#ifndef SC_PACE_H
#define SC_PACE_H

#include <stdint.h>

struct sc_pace
{
	int64_t start_ms; /* the current window's start (0: none yet) */
	long jobs;		  /* jobs counted since then */
	int per_s;		  /* the rate of the last full window, jobs/s */
	int64_t end_ms;	  /* when that window ended */
	int loaded;		  /* the caller's last decision (sc_pace_note) */
};

/* Count n jobs (n >= 0) at now; closes the window once SC_PACE_WINDOW_MS passed. */
void sc_pace_add(struct sc_pace *p, int n, int64_t now);
/* The rate of the last full window, or 0 if it ended more than two windows ago. */
int sc_pace_per_s(const struct sc_pace *p, int64_t now);

/* Note whether the caller paces as loaded now; 1 if that changed (the caller logs it). */
int sc_pace_note(struct sc_pace *p, int loaded);

/* publisher.c: the pause after a partial claim, given the claim rate (jobs/s). */
int publisher_partial_gap_ms(int per_s);
/* consumer.c: the linger of the next batch, given the apply rate and apply_linger_ms. */
int consumer_linger_ms(int per_s, int linger_ms);

#endif
