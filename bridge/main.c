/*
 * main.c — sharecount-bridge: loads the configuration, starts one thread per
 * role (publisher, consumer; the http role runs libmicrohttpd's own threads),
 * and waits for a signal.
 *
 * Rules: signal handlers only set sc_stop / sc_reload (bridge.h).  The role
 * threads notice sc_stop within poll_interval_ms (or a blocking wait's
 * timeout), finish and acknowledge the batch in hand, close their connections
 * and return; main then joins them and exits 0.  Signals are blocked in the
 * role threads so that they are always delivered to the main thread.
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
volatile sig_atomic_t sc_reload;

static void
on_stop(int sig)
{
	(void) sig;
	sc_stop = 1;
}

static void
on_hup(int sig)
{
	(void) sig;
	sc_reload = 1;
}

static int
start_thread(pthread_t *t, void *(*fn) (void *), void *arg, const char *name)
{
	sigset_t	all,
				old;
	int			rc;

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
	char		err[1024];
	int			rc;
	struct sigaction sa;
	pthread_t	pub_thread,
				con_thread;
	int			pub_started = 0,
				con_started = 0,
				http_started = 0;
	int			exit_code = 0;

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
	log_set_level((enum sc_log_level) log_parse_level(cfg.log_level));
	metrics_init();

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;	/* no SA_RESTART: let sleeps return early */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	log_info("sharecount-bridge %s starting (roles %s)", SHARECOUNT_VERSION, cfg.roles);

	if ((cfg.role_mask & SC_ROLE_HTTP) && cfg.http_listen[0])
	{
		if (http_start(&cfg) < 0)
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
	if (((cfg.role_mask & SC_ROLE_PUBLISHER) && !pub_started) ||
		((cfg.role_mask & SC_ROLE_CONSUMER) && !con_started))
	{
		sc_stop = 1;
		exit_code = 1;
	}

	while (!sc_stop)
	{
		struct timespec ts = {0, 100 * 1000 * 1000};

		nanosleep(&ts, NULL);
		if (sc_reload)
		{
			sc_reload = 0;
			if (config_reload(&cfg, argc, argv, err, sizeof(err)) < 0)
				log_error("reload ignored: %s", err);
			else
			{
				log_set_level((enum sc_log_level) log_parse_level(cfg.log_level));
				log_info("configuration reloaded (log_level = %s; other settings need a restart)", cfg.log_level);
			}
		}
	}
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
