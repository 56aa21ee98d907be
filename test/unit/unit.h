/*
 * unit.h — what every bridge unit test (test/unit/test_*.c) shares: the
 * stop flag main.c defines in the daemon, and the CHECK macro.
 *
 * Rules: a test program includes this header once, in its only .c file (it
 * defines sc_stop: the bridge objects a test links use it, and main.o,
 * which defines it in the daemon, is not linked).  CHECK counts
 * every check; a failed one prints one line, "FAIL file:line: condition" and
 * the optional printf-style message.  main() ends with
 * `return unit_done("name");`: a summary line, exit 0 only if nothing failed.
 * Code that finds a failure itself does `failures++` and prints a FAIL line.
 */
#ifndef SC_UNIT_H
#define SC_UNIT_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>

#include "bridge.h"

volatile sig_atomic_t sc_stop;

static int failures; /* failed checks (and failures found by hand) */
static int checks;	 /* checks made with CHECK */

/* CHECK(cond) or CHECK(cond, "fmt", args...) */
#define CHECK(cond, ...) unit_check(!!(cond), __FILE__, __LINE__, #cond, " " __VA_ARGS__)

/* fmt starts with the space CHECK adds (never an empty format string). */
static inline void __attribute__((format(printf, 5, 6)))
unit_check(int ok, const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (ok)
		return;
	failures++;
	printf("FAIL %s:%d: %s", file, line, cond);
	if (fmt[1] != '\0')
	{
		printf(" --");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("\n");
}

/* The summary line; the exit status of main(). */
static inline int
unit_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, checks, failures);
	return failures ? 1 : 0;
}

#endif /* SC_UNIT_H */
