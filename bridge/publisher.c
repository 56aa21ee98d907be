/*
 * publisher.c — the publisher role.  Interim: this commit only lets main.c link so the
 * http role can be run; the role itself lands in the next commits.
 */
#include "publisher.h"
#include "log.h"

void *
publisher_main(void *arg)
{
	(void) arg;
	log_error("publisher role: not in this build yet");
	return NULL;
}
