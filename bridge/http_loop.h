/*
 * http_loop.h — the http role's libmicrohttpd threads (http_loop.c).
 */
#ifndef SC_HTTP_LOOP_H
#define SC_HTTP_LOOP_H

#include <sys/socket.h>

struct MHD_Connection;
struct MHD_Daemon;
struct dbpool_job;

/* Start one libmicrohttpd daemon (external epoll mode) for a thread; NULL on failure. */
typedef struct MHD_Daemon *(*http_loop_make_fn)(void);

/* Start n threads (1..SC_HTTP_MAX_THREADS), each with a daemon from make(); 0, or -1 (nothing left running). */
int http_loop_start(unsigned n, http_loop_make_fn make);
/* Give a connection to the thread whose turn it is (libmicrohttpd's MHD_add_connection); 0, or -1 (closed). */
int http_loop_add(int fd, const struct sockaddr *addr, socklen_t addrlen);
/*
 * In a handler called by one of the threads: keep a DBPOOL_GET job for the
 * end of the thread's turn (its connection already suspended); 1 if kept,
 * 0 if not (another thread, or the turn is full): then dbpool_submit it.
 */
int http_loop_defer(struct dbpool_job *job);
/*
 * MHD_resume_connection(conn) and wake the thread that runs conn's daemon:
 * every resume goes through here (libmicrohttpd alone can miss one made from
 * another thread, see http_loop.c).  Thread-safe.
 */
void http_loop_resume(struct MHD_Connection *conn);
/* Wake every thread (after MHD_upgrade_action from another thread). */
void http_loop_wake_all(void);
/* Stop the threads (each finishes its turn) and their daemons; safe when not started. */
void http_loop_stop(void);

#endif
