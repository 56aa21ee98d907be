/*
 * bridge.h — what every part of sharecount-bridge shares: the process-wide
 * stop flag and the role bits.
 *
 * Rules: the signal handler in main.c only sets sc_stop (and sc_reload); role
 * threads poll sc_stop at least every poll_interval_ms and at every blocking
 * wait's timeout, finish the batch in hand, close their connections and return.
 */
#ifndef SC_BRIDGE_H
#define SC_BRIDGE_H

#include <signal.h>

#ifndef SHARECOUNT_VERSION
#define SHARECOUNT_VERSION "1.0.0"
#endif

#define SC_ROLE_PUBLISHER 0x1
#define SC_ROLE_CONSUMER  0x2
#define SC_ROLE_HTTP      0x4

/* Set by SIGTERM/SIGINT (stop) and SIGHUP (reload); read by the main loops. */
extern volatile sig_atomic_t sc_stop;
extern volatile sig_atomic_t sc_reload;

#endif
