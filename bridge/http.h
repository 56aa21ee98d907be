/*
 * http.h — the http role (docs/http.md): a read-only API on libmicrohttpd with its
 * own small pool of PostgreSQL connections.  Started and stopped by main.c.
 */
#ifndef SC_HTTP_H
#define SC_HTTP_H

#include "config.h"

/* Start listening on cfg->http_listen; 0 on success, -1 (logged) on failure. */
int http_start(const struct sc_config *cfg);
/* Stop accepting, finish in-flight requests, close the pool. */
void http_stop(void);

#endif
