/*
 * http_loop.c — the http role's libmicrohttpd threads (docs/http.md
 * "Threads"): one per CPU (at most SC_HTTP_MAX_THREADS), each running a
 * libmicrohttpd daemon of its own in external epoll mode.  A thread's turn:
 * wait until its daemon's epoll set is ready (a socket, or libmicrohttpd's
 * inter-thread eventfd that MHD_resume_connection writes) or a connection
 * timeout is due; let libmicrohttpd process what is ready (MHD_run); answer
 * the single counts its handlers kept (http_loop_defer) in one pipelined
 * round trip on the thread's own PostgreSQL connection (dbpool_local.c);
 * MHD_run again, which sends the answers and may keep more.  Other database
 * jobs go to the pool's workers (dbpool.h) and come back through
 * http_loop_resume().  Answering single counts here saves the hand-off to a
 * worker and back: ~3 µs of the bridge's CPU per request, +10 % requests/s
 * (docs/http.md "Decisions and why").
 *
 * Connections resumed by other threads (a worker's answer, a live stream's
 * event) go through http_loop_resume(), which also wakes the owning thread.
 *
 * Rules: libmicrohttpd 0.9.75 is not thread-safe for MHD_add_connection on a
 * daemon without an internal thread, so each daemon has a lock, held while
 * MHD_run or MHD_add_connection runs on it and never while the thread waits
 * for its epoll set or on PostgreSQL.  The jobs kept are thread-local and all
 * answered (or handed to the workers) before the turn ends, so a thread
 * that stops leaves no connection suspended on a kept job.  A thread waits
 * at most LOOP_TICK_MS at a time, so it sees `stop` within that.
 */
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "dbpool.h"
#include "http_loop.h"
#include "log.h"
#include "sc_limits.h"

/* Longest wait for a thread's epoll set (it sees `stop` within this). */
#define LOOP_TICK_MS 200
/* Single counts kept in one turn at most (more go to the workers). */
#define LOOP_TURN_MAX 256

struct loop
{
	pthread_t thread;
	int started;
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock; /* around MHD_run and MHD_add_connection on mhd */
	int epoll_fd;		  /* mhd's epoll set */
	int wake_fd;		  /* eventfd: a connection of mhd was resumed by another thread */
};

static struct loop loops[SC_HTTP_MAX_THREADS];
static unsigned nloops;
static atomic_uint next_loop; /* round robin for new connections */
static atomic_int stop;

/* The turn's kept jobs, of the thread running it. */
static _Thread_local int on_loop;
static _Thread_local struct loop *my_loop;
static _Thread_local struct dbpool_job *kept[LOOP_TURN_MAX];
static _Thread_local size_t nkept;

int
http_loop_defer(struct dbpool_job *job)
{
	if (!on_loop || nkept >= LOOP_TURN_MAX)
		return 0;
	kept[nkept++] = job;
	return 1;
}

/*
 * libmicrohttpd 0.9.75 looks for resumed connections before its epoll_wait,
 * which clears the inter-thread eventfd: a resume from another thread that
 * falls between the two leaves the daemon with work and nothing to wake its
 * thread (its own loop would go round at once; ours waits in poll()).  So a
 * resume from another thread also writes the thread's own eventfd, which
 * only the thread clears, before MHD_run.
 */
void
http_loop_resume(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
	struct MHD_Daemon *d = info ? info->daemon : NULL; /* read before the resume: conn may go after it */
	unsigned i;

	MHD_resume_connection(conn);
	if (my_loop && my_loop->mhd == d)
		return; /* the thread runs libmicrohttpd again before it waits */
	for (i = 0; i < nloops; i++)
		if (loops[i].mhd == d && loops[i].wake_fd >= 0)
			eventfd_write(loops[i].wake_fd, 1);
}

void
http_loop_wake_all(void)
{
	unsigned i;

	for (i = 0; i < nloops; i++)
		if (loops[i].wake_fd >= 0)
			eventfd_write(loops[i].wake_fd, 1);
}

/* How long the thread may wait now: libmicrohttpd's next timeout, at most LOOP_TICK_MS. */
static int
wait_ms(struct loop *lp)
{
	MHD_UNSIGNED_LONG_LONG to = 0;
	int ms = LOOP_TICK_MS;

	pthread_mutex_lock(&lp->lock);
	if (MHD_get_timeout(lp->mhd, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG) LOOP_TICK_MS)
		ms = (int) to;
	pthread_mutex_unlock(&lp->lock);
	return ms;
}

/* One turn: process what is ready, then answer the kept jobs and process again, until none is kept. */
static void
turn(struct loop *lp, struct dbpool_local *db)
{
	for (;;)
	{
		struct dbpool_job *jobs[LOOP_TURN_MAX];
		size_t n;

		pthread_mutex_lock(&lp->lock);
		MHD_run(lp->mhd);
		pthread_mutex_unlock(&lp->lock);
		if (nkept == 0)
			return;
		n = nkept;
		memcpy(jobs, kept, n * sizeof(jobs[0]));
		nkept = 0;
		dbpool_local_serve(db, jobs, n); /* each answered job resumes its connection */
	}
}

static void *
loop_main(void *arg)
{
	struct loop *lp = arg;
	struct dbpool_local *db = dbpool_local_new();
	struct pollfd pfd[2] = {{.fd = lp->epoll_fd, .events = POLLIN}, {.fd = lp->wake_fd, .events = POLLIN}};

	log_set_role("http");
	my_loop = lp;
	on_loop = db != NULL; /* out of memory: every job goes to the workers */
	while (!atomic_load(&stop))
	{
		int ms = wait_ms(lp);
		eventfd_t n;

		if (ms > 0)
			poll(pfd, 2, ms);
		eventfd_read(lp->wake_fd, &n); /* clear it before MHD_run looks for resumed connections */
		turn(lp, db);
	}
	dbpool_local_free(db);
	return NULL;
}

int
http_loop_add(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct loop *lp;
	enum MHD_Result ok;

	if (nloops == 0)
		return -1;
	lp = &loops[atomic_fetch_add(&next_loop, 1) % nloops];
	pthread_mutex_lock(&lp->lock);
	ok = MHD_add_connection(lp->mhd, fd, addr, addrlen); /* it closes fd when it fails */
	pthread_mutex_unlock(&lp->lock);
	return ok == MHD_YES ? 0 : -1;
}

int
http_loop_start(unsigned n, http_loop_make_fn make)
{
	unsigned i;

	atomic_store(&stop, 0);
	nloops = 0;
	for (i = 0; i < n && i < SC_HTTP_MAX_THREADS; i++)
	{
		struct loop *lp = &loops[i];
		const union MHD_DaemonInfo *info;

		memset(lp, 0, sizeof(*lp));
		pthread_mutex_init(&lp->lock, NULL);
		lp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		nloops = i + 1; /* http_loop_stop() cleans up what is set */
		lp->mhd = lp->wake_fd >= 0 ? make() : NULL;
		info = lp->mhd ? MHD_get_daemon_info(lp->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
		if (!info)
			break;
		lp->epoll_fd = info->epoll_fd;
		if (pthread_create(&lp->thread, NULL, loop_main, lp) != 0)
			break;
		lp->started = 1;
	}
	if (i < n)
	{
		log_error("cannot start libmicrohttpd thread %u of %u", i + 1, n);
		http_loop_stop();
		return -1;
	}
	return 0;
}

void
http_loop_stop(void)
{
	unsigned i;

	atomic_store(&stop, 1);
	for (i = 0; i < nloops; i++)
		if (loops[i].started)
			pthread_join(loops[i].thread, NULL);
	for (i = 0; i < nloops; i++)
	{
		if (loops[i].mhd)
			MHD_stop_daemon(loops[i].mhd);
		if (loops[i].wake_fd >= 0)
			close(loops[i].wake_fd);
		pthread_mutex_destroy(&loops[i].lock);
		memset(&loops[i], 0, sizeof(loops[i]));
	}
	nloops = 0;
}
