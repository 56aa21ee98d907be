/*
 * consumer.c — the consumer role.  Interim: this commit only lets main.c link so the
 * http role can be run; the role itself lands in the next commits.
 */
#include "consumer.h"
#include "log.h"

void *
consumer_main(void *arg)
{
	(void) arg;
	log_error("consumer role: not in this build yet");
	return NULL;
}
