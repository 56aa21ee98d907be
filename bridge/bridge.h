/*
 * bridge.h — what every part of sharecount-bridge shares: the process-wide
 * stop flag and the role bits.
 *
 * Rules: only main.c's main thread takes signals (sigtimedwait) and only it
 * sets sc_stop, on SIGTERM/SIGINT (or when a role cannot start); role threads
 * poll sc_stop at least every poll_interval_ms and at every blocking wait's
 * timeout, finish the batch in hand, close their connections and return.
 * SIGHUP reloads on the main thread itself (config_reload.c).
 */
#ifndef SC_BRIDGE_H
#define SC_BRIDGE_H

#include <signal.h>

#ifndef SHARECOUNT_VERSION
#define SHARECOUNT_VERSION "1.0.0"
#endif

#define SC_ROLE_PUBLISHER 0x1
#define SC_ROLE_CONSUMER 0x2
#define SC_ROLE_HTTP 0x4

/* Set by the main thread on SIGTERM/SIGINT; read by every role's loop. */
extern volatile sig_atomic_t sc_stop;

#endif
