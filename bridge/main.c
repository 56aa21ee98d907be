/*
 * main.c — sharecount-bridge: loads the configuration, starts one thread per
 * role (publisher, consumer; the http role runs libmicrohttpd's own threads),
 * and handles the signals.
 *
 * Rules: signals are handled in one place, this file's main thread, with
 * sigtimedwait(): SIGTERM, SIGINT and SIGHUP are blocked before any thread
 * exists (every thread, libmicrohttpd's and the http pool's included,
 * inherits the mask), so none is ever delivered to another thread or
 * interrupts its system calls.  SIGTERM/SIGINT set sc_stop; the role threads
 * notice it within poll_interval_ms (or a blocking wait's timeout), finish and
 * acknowledge the batch in hand, close their connections and return; main
 * then joins them and exits 0.  SIGHUP reloads the configuration on this
 * thread (config_reload.c; docs/bridge.md "Reload"): it never stops a role,
 * so no message is dropped.  SIGPIPE is ignored process-wide.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "config.h"
#include "consumer.h"
#include "dlq.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "publisher.h"

volatile sig_atomic_t sc_stop;

/* SIGPIPE: a write to a closed socket fails with EPIPE instead (every command, dlq too). */
static void
ignore_sigpipe(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Block the handled signals in this thread and (by inheritance) every later one. */
static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/*
 * SIGHUP: reload, apply the new log level, and log one line with what
 * changed (plus one warning for settings that need a restart, or one error
 * when the new configuration is bad and nothing changed).
 */
static void
reload(struct sc_config *cfg, int argc, char **argv)
{
	struct sc_reload_result res;
	char err[1024];

	if (config_reload(cfg, argc, argv, &res, err, sizeof(err)) < 0)
	{
		log_error("reload failed, keeping the running configuration: %s", err);
		return;
	}
	log_set_level((enum sc_log_level) log_parse_level(cfg->log_level));
	if (res.nrefused)
		log_warn("reload: %s cannot be changed without restarting; keeping the running value%s", res.refused,
				 res.nrefused > 1 ? "s" : "");
	if (res.nchanged)
		log_info("configuration reloaded (log_level = %s); changed: %s", cfg->log_level, res.changed);
	else
		log_info("configuration reloaded (log_level = %s); nothing changed", cfg->log_level);
}

/* Wait for the signals in set until sc_stop; reload on SIGHUP. */
static void
wait_for_signals(const sigset_t *set, struct sc_config *cfg, int argc, char **argv)
{
	const struct timespec tick = {SC_SIGNAL_TICK_MS / 1000, (SC_SIGNAL_TICK_MS % 1000) * 1000000L};

	while (!sc_stop)
	{
		int sig = sigtimedwait(set, NULL, &tick);

		if (sig == SIGHUP)
			reload(cfg, argc, argv);
		else if (sig == SIGTERM || sig == SIGINT)
			sc_stop = 1;
		else if (sig < 0 && errno != EAGAIN && errno != EINTR)
		{
			/* can't happen (EINVAL only for a bad timeout): stop rather than spin */
			log_error("sigtimedwait: %s; stopping", strerror(errno));
			sc_stop = 1;
		}
	}
}

static int
start_thread(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	sigset_t all, old;
	int rc;

	/* the new thread inherits a mask with every signal blocked */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		log_error("cannot start the %s thread: %s", name, strerror(rc));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sc_config cfg;
	char err[1024];
	int rc;
	sigset_t handled;
	pthread_t pub_thread, con_thread;
	int pub_started = 0, con_started = 0, http_started = 0;
	int exit_code = 0;

	ignore_sigpipe();
	if (argc > 1 && strcmp(argv[1], "dlq") == 0)
		return dlq_main(argc - 1, argv + 1);
	rc = config_load(&cfg, argc, argv, err, sizeof(err));
	if (rc == 1)
	{
		config_free(&cfg);
		return 0;
	}
	if (rc < 0)
	{
		fprintf(stderr, "sharecount-bridge: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (cfg.check_only)
	{
		config_print(&cfg);
		config_free(&cfg);
		return 0;
	}
	block_signals(&handled); /* before metrics_init and http_start start threads */
	log_set_level((enum sc_log_level) log_parse_level(cfg.log_level));
	metrics_init();

	log_info("sharecount-bridge %s starting (roles %s)", SHARECOUNT_VERSION, cfg.roles);

	if ((cfg.role_mask & SC_ROLE_HTTP) && cfg.http_listen[0])
	{
		log_set_role("http"); /* this thread logs for the http role while starting it */
		rc = http_start(&cfg);
		log_set_role(NULL);
		if (rc < 0)
		{
			config_free(&cfg);
			return 1;
		}
		http_started = 1;
	}
	if (cfg.role_mask & SC_ROLE_PUBLISHER)
		pub_started = start_thread(&pub_thread, publisher_main, &cfg, "publisher") == 0;
	if (cfg.role_mask & SC_ROLE_CONSUMER)
		con_started = start_thread(&con_thread, consumer_main, &cfg, "consumer") == 0;
	if (((cfg.role_mask & SC_ROLE_PUBLISHER) && !pub_started) || ((cfg.role_mask & SC_ROLE_CONSUMER) && !con_started))
	{
		sc_stop = 1;
		exit_code = 1;
	}

	wait_for_signals(&handled, &cfg, argc, argv);
	log_info("stopping: finishing the batch in hand");
	if (pub_started)
		pthread_join(pub_thread, NULL);
	if (con_started)
		pthread_join(con_thread, NULL);
	if (http_started)
		http_stop();
	log_info("stopped");
	config_free(&cfg);
	return exit_code;
}
