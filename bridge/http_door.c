/*
 * http_door.c — the http role's front door (docs/http.md "Request size
 * limits").  libmicrohttpd 0.9.75 answers a request line or headers that do
 * not fit http_conn_memory with a fixed HTML page, or closes the connection
 * without any answer; it has no hook to change that.  So the bridge owns the
 * listening socket: it accepts each connection, looks at its first
 * request's head with MSG_PEEK (nothing is consumed) and either hands the
 * connection to libmicrohttpd (http_loop_add; the head is read again
 * there) or, when http_head_read() finds the head too large, writes the
 * JSON 414/431 itself (http_send_raw_error), reads and drops what the client
 * still sends (so closing does not reset the connection before the client
 * has read the answer) and closes.  Later requests on a kept-alive
 * connection are read by libmicrohttpd and checked here too, as far as it
 * lets us: http_uri_check() when it has read a request line,
 * http_head_refused() at the handler's first call.
 *
 * A first request that is a live stream or WebSocket (GET
 * /share-links/stream/…, GET /share-links/ws) is offered to http_stream.c
 * before that: it answers it and gives the socket to the live thread, so
 * libmicrohttpd never holds such a connection (docs/live.md "Capacity").
 *
 * It also enforces http_max_connections: connections held here, those
 * handed to libmicrohttpd until it reports them closed, and those the live
 * thread took until it closes them (http_door_release) count; at the limit
 * the listening socket is left alone, so new clients wait in the kernel's
 * listen backlog.
 *
 * Rules: one thread (door_main) owns the listening socket, the epoll set and
 * each connection until it is handed over; libmicrohttpd owns it after.
 * Shared with other threads: `live` (atomic) and the eventfd that wakes the
 * thread (created once and never closed, so a libmicrohttpd thread reporting
 * a close during http_door_stop() never writes to a reused descriptor).
 * Memory: one peek buffer of http_conn_memory bytes, and one struct pending
 * per connection held, freed when it is handed over or closed.  A
 * connection libmicrohttpd drops before it reports the connection started
 * (only when libmicrohttpd runs out of memory) keeps its place in `live`.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dbpool.h"
#include "clock.h"
#include "http_door.h"
#include "http_head.h"
#include "http_loop.h"
#include "http_reply.h"
#include "http_stream.h"
#include "log.h"
#include "route.h"

/* after our 414/431: how long, and how many bytes, the rest of the request is read and dropped */
#define DOOR_DRAIN_MS 2000
#define DOOR_DRAIN_BYTES (1024 * 1024)
/* epoll events taken per wake-up */
#define DOOR_EVENTS 64

struct pending
{
	int fd;
	int draining; /* answered: reading and dropping until EOF or the deadline */
	size_t seen;  /* bytes peeked last time (draining: bytes dropped) */
	int64_t deadline_ms;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct pending *prev, *next;
};

static struct
{
	int listen_fd, ep, wake_fd;
	int accepting; /* listen_fd is in the epoll set */
	pthread_t thread;
	int started;
	size_t conn_memory;
	unsigned max_conn;
	int timeout_ms;
	char *buf;			  /* conn_memory bytes, for MSG_PEEK and draining */
	struct pending *head; /* connections held here */
	atomic_int live;	  /* held here + handed to libmicrohttpd and not closed */
	atomic_int stop;
} door = {.listen_fd = -1, .ep = -1, .wake_fd = -1};

int
http_door_open(const struct sockaddr_storage *ss, socklen_t sslen)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
	{
		log_error("cannot create the listening socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *) ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0)
	{
		log_error("cannot listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	door.listen_fd = fd;
	return 0;
}

static void
door_unlink(struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		door.head = p->next;
	if (p->next)
		p->next->prev = p->prev;
}

static void
door_close(struct pending *p)
{
	door_unlink(p);
	close(p->fd); /* also leaves the epoll set */
	free(p);
	atomic_fetch_sub(&door.live, 1);
}

/* The head fits: libmicrohttpd takes the connection (it closes it on failure). */
static void
door_handoff(struct pending *p)
{
	epoll_ctl(door.ep, EPOLL_CTL_DEL, p->fd, NULL);
	door_unlink(p);
	if (http_loop_add(p->fd, (const struct sockaddr *) &p->addr, p->addrlen) != 0)
	{
		log_warn("libmicrohttpd refused a connection: %s", strerror(errno));
		atomic_fetch_sub(&door.live, 1);
	}
	free(p); /* still live: until http_door_closed() */
}

static void door_drain(struct pending *p);

/* An answer is written: shut our side, read and drop what the client still sends, then close. */
static void
door_answered(struct pending *p)
{
	shutdown(p->fd, SHUT_WR);
	p->draining = 1;
	p->seen = 0;
	p->deadline_ms = clock_now_ms() + DOOR_DRAIN_MS;
	door_drain(p);
}

/*
 * The head fits: a live route's first request is http_stream.c's, any other
 * libmicrohttpd's.  The socket leaves the epoll set first: once the live
 * thread has it, it may close it at any time.
 */
static void
door_pass(struct pending *p, const struct http_head *head)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = p};
	enum http_stream_rc rc;

	epoll_ctl(door.ep, EPOLL_CTL_DEL, p->fd, NULL);
	rc = http_stream_take(p->fd, door.buf, head);
	if (rc == HTTP_STREAM_NOT_OURS)
		door_handoff(p);
	else if (rc == HTTP_STREAM_TAKEN)
	{
		door_unlink(p); /* still live: until http_door_release() */
		free(p);
	}
	else if (epoll_ctl(door.ep, EPOLL_CTL_ADD, p->fd, &ev) != 0)
		door_close(p);
	else
		door_answered(p);
}

/* Read and drop what an answered client still sends; close at EOF, an error or the byte cap. */
static void
door_drain(struct pending *p)
{
	for (;;)
	{
		ssize_t n = recv(p->fd, door.buf, door.conn_memory, 0);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0 || (p->seen += (size_t) n) > DOOR_DRAIN_BYTES)
		{
			door_close(p);
			return;
		}
	}
}

/* New bytes (or EOF) on a connection held here. */
static void
door_serve(struct pending *p, uint32_t events)
{
	ssize_t n;
	struct http_head head;
	enum http_head_status st;

	if (p->draining)
	{
		door_drain(p);
		return;
	}
	n = recv(p->fd, door.buf, door.conn_memory, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
	{
		door_close(p); /* the client left before sending a request */
		return;
	}
	if ((size_t) n == p->seen && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return;
	p->seen = (size_t) n;
	st = http_head_read(door.buf, (size_t) n, door.conn_memory, &head);
	if (st == HTTP_HEAD_OK)
		door_pass(p, &head);
	else if (st == HTTP_HEAD_MORE && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		door_close(p); /* half a head, then the client stopped sending */
	else if (st != HTTP_HEAD_MORE)
	{
		log_debug("a request's head is too large for http_conn_memory: answered %d", (int) st);
		http_send_raw_error(p->fd, (unsigned) st, head.is_head);
		door_answered(p);
	}
}

/* -------------------------------------- later requests on a connection -- */

int http_uri_answered_marker;

/*
 * libmicrohttpd has read a request line (of a later request on a kept-alive
 * connection: http_door.c checked the first).  A request-target too long for
 * http_conn_memory gets the JSON 414 now, before libmicrohttpd reads the
 * headers (they may not fit, and then it would answer with its own page or
 * not at all), and the connection's sending side is shut: whatever
 * libmicrohttpd tries to send after it fails and it closes the connection.
 * The answer to a HEAD carries the body too (the method is not known here).
 */
void *
http_uri_check(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *fd;

	(void) cls;
	if (strlen(uri) <= route_uri_max(door.conn_memory))
		return NULL;
	fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (fd)
	{
		http_send_raw_error(fd->connect_fd, 414, 0);
		shutdown(fd->connect_fd, SHUT_WR);
	}
	return HTTP_URI_ANSWERED;
}

/* Count libmicrohttpd's records of a request (header fields, query parameters, cookies). */
static enum MHD_Result
count_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void) kind;
	(void) key;
	(void) value;
	(*(size_t *) cls)++;
	return MHD_YES;
}

/*
 * The handler's first call: 1 if the request is answered already — by
 * http_uri_check() (cls HTTP_URI_ANSWERED), or here, with the JSON 431 written to the
 * socket, because its head leaves libmicrohttpd too little room for our
 * answer's header (route_head_cost() over route_head_budget()).
 */
int
http_head_refused(struct MHD_Connection *conn, const char *method, void *cls)
{
	const union MHD_ConnectionInfo *hs = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	const union MHD_ConnectionInfo *fd;
	const char *cookie;
	size_t records = 0;

	if (cls == HTTP_URI_ANSWERED)
		return 1;
	if (!hs || route_head_cost(hs->header_size, 0, 0) > route_head_budget(door.conn_memory))
		records = 0; /* too large on its bytes alone: no need to count */
	else
	{
		MHD_get_connection_values(conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND | MHD_COOKIE_KIND, count_value,
								  &records);
		cookie = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
		if (route_head_cost(hs->header_size, records, cookie ? strlen(cookie) + ROUTE_COOKIE_EXTRA : 0) <=
			route_head_budget(door.conn_memory))
			return 0;
	}
	fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (fd)
		http_send_raw_error(fd->connect_fd, 431, strcmp(method, "HEAD") == 0);
	return 1;
}

void
http_door_release(void)
{
	uint64_t one = 1;

	atomic_fetch_sub(&door.live, 1);
	if (door.wake_fd >= 0 && write(door.wake_fd, &one, sizeof(one)) < 0)
		log_debug("eventfd: %s", strerror(errno));
}

void
http_door_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
				 enum MHD_ConnectionNotificationCode code)
{
	(void) cls;
	(void) conn;
	(void) socket_context;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		http_door_release();
}

/* ------------------------------------------------------------- the door -- */

/* Accept while there is room; each new connection waits here for its head. */
static void
door_accept(void)
{
	while (atomic_load(&door.live) < (int) door.max_conn)
	{
		struct pending *p = calloc(1, sizeof(*p));
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET};

		if (!p)
			return; /* out of memory: the client waits in the backlog */
		p->addrlen = sizeof(p->addr);
		p->fd = accept4(door.listen_fd, (struct sockaddr *) &p->addr, &p->addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (p->fd < 0)
		{
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			free(p);
			return;
		}
		ev.data.ptr = p;
		if (epoll_ctl(door.ep, EPOLL_CTL_ADD, p->fd, &ev) != 0)
		{
			log_warn("epoll_ctl: %s", strerror(errno));
			close(p->fd);
			free(p);
			continue;
		}
		p->deadline_ms = clock_now_ms() + door.timeout_ms;
		p->next = door.head;
		if (door.head)
			door.head->prev = p;
		door.head = p;
		atomic_fetch_add(&door.live, 1);
	}
}

/* Watch the listening socket only while there is room (http_max_connections). */
static void
door_update_accepting(void)
{
	int room = atomic_load(&door.live) < (int) door.max_conn;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &door.listen_fd};

	if (room == door.accepting)
		return;
	if (epoll_ctl(door.ep, room ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, door.listen_fd, &ev) == 0)
		door.accepting = room;
}

/* Close connections past their deadline; the milliseconds to the next one (-1: none). */
static int
door_expire(void)
{
	int64_t now = clock_now_ms(), next = -1;
	struct pending *p, *nx;

	for (p = door.head; p; p = nx)
	{
		nx = p->next;
		if (p->deadline_ms <= now)
			door_close(p);
		else if (next < 0 || p->deadline_ms - now < next)
			next = p->deadline_ms - now;
	}
	return (int) next;
}

static void *
door_main(void *arg)
{
	struct epoll_event ev[DOOR_EVENTS];

	log_set_role("http");

	(void) arg;
	while (!atomic_load(&door.stop))
	{
		int n;

		door_update_accepting();
		n = epoll_wait(door.ep, ev, DOOR_EVENTS, door_expire());
		for (int i = 0; i < n; i++)
		{
			if (ev[i].data.ptr == &door.listen_fd)
				door_accept();
			else if (ev[i].data.ptr == &door.wake_fd)
			{
				uint64_t v;

				if (read(door.wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_debug("eventfd: %s", strerror(errno));
			}
			else
				door_serve(ev[i].data.ptr, ev[i].events);
		}
	}
	return NULL;
}


int
http_door_start(size_t conn_memory, unsigned max_conn, int timeout_ms)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &door.wake_fd};

	door.conn_memory = conn_memory;
	door.max_conn = max_conn;
	door.timeout_ms = timeout_ms;
	atomic_store(&door.live, 0);
	atomic_store(&door.stop, 0);
	door.buf = malloc(conn_memory);
	door.ep = epoll_create1(EPOLL_CLOEXEC);
	if (door.wake_fd < 0) /* kept open for good: libmicrohttpd's threads may still write to it */
		door.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!door.buf || door.ep < 0 || door.wake_fd < 0 || epoll_ctl(door.ep, EPOLL_CTL_ADD, door.wake_fd, &ev) != 0 ||
		pthread_create(&door.thread, NULL, door_main, NULL) != 0)
	{
		log_error("cannot start the front door: %s", strerror(errno));
		http_door_stop();
		return -1;
	}
	door.started = 1;
	return 0;
}

void
http_door_stop(void)
{
	uint64_t one = 1;

	atomic_store(&door.stop, 1);
	if (door.started)
	{
		if (write(door.wake_fd, &one, sizeof(one)) < 0)
			log_debug("eventfd: %s", strerror(errno));
		pthread_join(door.thread, NULL);
		door.started = 0;
	}
	while (door.head)
		door_close(door.head);
	if (door.listen_fd >= 0)
		close(door.listen_fd);
	if (door.ep >= 0)
		close(door.ep);
	door.listen_fd = door.ep = -1;
	door.accepting = 0;
	free(door.buf);
	door.buf = NULL;
}
