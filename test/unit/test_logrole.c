/*
 * test_logrole.c — log_set_role() (the role prefix each thread's lines get,
 * thread-local, never doubled) and the clock helpers: backoff_next() doubling and capping, clock_now_ms() moving
 * forward.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "clock.h"
#include "log.h"

volatile sig_atomic_t sc_stop;

static int failures;

#define CHECK(cond) \
	do \
	{ \
		if (!(cond)) \
		{ \
			failures++; \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

static char captured[4096];
static FILE *capture_file;
static int saved_stderr = -1;

/* Send fd 2 (where log_msg writes) to a temporary file until captured_text(). */
static void
capture_start(void)
{
	capture_file = tmpfile();
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fileno(capture_file), STDERR_FILENO);
}

/* Restore fd 2 and return what was written meanwhile. */
static const char *
captured_text(void)
{
	size_t n;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	rewind(capture_file);
	n = fread(captured, 1, sizeof(captured) - 1, capture_file);
	captured[n] = '\0';
	fclose(capture_file);
	return captured;
}

/* The text after "<time> INFO " of the one line logged by log_info(msg). */
static const char *
logged(const char *msg)
{
	const char *s;

	capture_start();
	log_info("%s", msg);
	s = strstr(captured_text(), " INFO ");
	return s ? s + 6 : "";
}

static void *
thread_without_role(void *arg)
{
	(void) arg;
	log_info("from another thread");
	return NULL;
}

static void
test_roles(void)
{
	pthread_t t;
	const char *s;

	log_set_level(LOG_LVL_INFO);
	CHECK(strcmp(logged("no role yet"), "no role yet\n") == 0);
	log_set_role("consumer");
	CHECK(strcmp(logged("connected to PostgreSQL"), "consumer: connected to PostgreSQL\n") == 0);
	/* a call that still types its role is not prefixed twice */
	CHECK(strcmp(logged("consumer: typed by hand"), "consumer: typed by hand\n") == 0);
	/* ... but a message that only starts with the same word is */
	CHECK(strcmp(logged("consumers are"), "consumer: consumers are\n") == 0);
	CHECK(strcmp(logged("consumer:x"), "consumer: consumer:x\n") == 0);

	/* the role is the thread's own: another thread has none */
	capture_start();
	pthread_create(&t, NULL, thread_without_role, NULL);
	pthread_join(t, NULL);
	s = captured_text();
	CHECK(strstr(s, " INFO from another thread\n") != NULL);

	/* the level filter still applies */
	log_set_level(LOG_LVL_WARN);
	CHECK(strcmp(logged("filtered"), "") == 0);
	log_set_level(LOG_LVL_INFO);
	log_set_role("consumer");

	log_set_role(NULL);
	CHECK(strcmp(logged("role cleared"), "role cleared\n") == 0);
}

static void
test_clock(void)
{
	int64_t t0 = clock_now_ms(), t1;
	struct timespec pause = {0, 20 * 1000000L};

	CHECK(backoff_next(100, 10000) == 200);
	CHECK(backoff_next(4999, 10000) == 9998);
	CHECK(backoff_next(5000, 10000) == 10000);
	CHECK(backoff_next(6000, 10000) == 10000);
	CHECK(backoff_next(10000, 10000) == 10000);
	CHECK(backoff_next(60, 101) == 101);
	CHECK(backoff_next(INT_MAX / 2 + 1, INT_MAX) == INT_MAX); /* no overflow */
	nanosleep(&pause, NULL);
	t1 = clock_now_ms();
	CHECK(t1 - t0 >= 19); /* at least the 20 ms slept, whole ms */
}

int
main(void)
{
	test_roles();
	test_clock();
	if (failures)
		printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
