/*
 * fuzz.h — what every libFuzzer harness in fuzz/ shares (docs/fuzzing.md).
 *
 * Rules:
 * - Harnesses link the real bridge objects (every bridge .c file but main.c,
 *   compiled by clang with -fsanitize=fuzzer-no-link,address,undefined into
 *   fuzz/build/bridge/); nothing here re-implements a parser.
 * - A harness owns no state between inputs: whatever global a parser touches
 *   (environment, the config file, stdout) is reset before it returns.
 * - A broken invariant calls FZ_CHECK, which aborts with the condition: the
 *   input is then saved by libFuzzer as a crash artifact, like a sanitizer
 *   report.  Memory: every input is copied into a malloc'ed buffer of exactly
 *   its size, so ASan sees any read past its end.
 * - This header defines sc_stop (main.c does in the daemon);
 *   include it from exactly one file per harness binary.
 */
#ifndef SC_FUZZ_H
#define SC_FUZZ_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile sig_atomic_t sc_stop;

#define FZ_CHECK(cond) \
	do \
	{ \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* The input cursor: fz_take() cuts NUL-separated fields off its front. */
struct fz_in
{
	const uint8_t *p;
	size_t left;
};

/*
 * The next field, up to (not including) the next NUL byte or the end, as a
 * malloc'ed NUL-terminated string (never NULL: abort on out of memory).
 */
static inline char *
fz_take(struct fz_in *in)
{
	const uint8_t *nul = in->left ? memchr(in->p, 0, in->left) : NULL;
	size_t n = nul ? (size_t) (nul - in->p) : in->left;
	char *s = malloc(n + 1);

	FZ_CHECK(s != NULL);
	memcpy(s, in->p, n);
	s[n] = '\0';
	in->p += n + (nul ? 1 : 0);
	in->left -= n + (nul ? 1 : 0);
	return s;
}

/* One byte off the front (0 when the input is exhausted). */
static inline uint8_t
fz_byte(struct fz_in *in)
{
	uint8_t b = in->left ? in->p[0] : 0;

	if (in->left)
		in->p++, in->left--;
	return b;
}

/* A malloc'ed copy of exactly n bytes (NULL only for n == 0). */
static inline char *
fz_copy(const uint8_t *p, size_t n)
{
	char *s;

	if (n == 0)
		return NULL;
	s = malloc(n);
	FZ_CHECK(s != NULL);
	memcpy(s, p, n);
	return s;
}

#endif
