/*
 * test_live_pub.c — the events publisher's queue (docs/live.md "Publishing")
 * with no broker to talk to (amqp_url names a closed port): offers never
 * block, take events up to SC_EVENTS_QUEUE, drop the rest and count them
 * (sharecount_events_dropped_total{reason="queue_full"}); live_pub_stop
 * returns promptly while the thread is reconnecting; a NULL publisher (events
 * off) takes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "live_pub.h"
#include "metrics.h"
#include "unit.h"

/* sharecount_events_dropped_total{reason="queue_full"} as /metrics shows it; -1 if absent */
static long long
dropped_queue_full(void)
{
	char *text = NULL;
	const char *key = "sharecount_events_dropped_total{reason=\"queue_full\"} ";
	char *p;
	long long v = -1;

	metrics_render(&text);
	p = text ? strstr(text, key) : NULL;
	if (p)
		v = atoll(p + strlen(key));
	free(text);
	return v;
}

int
main(void)
{
	struct sc_config cfg;
	char err[512];
	char *argv[] = {"sharecount-bridge",	  "-c", "/dev/null", "--amqp_url=amqp://guest:guest@127.0.0.1:1",
					"--reconnect_max_ms=200", NULL};
	struct live_count *ev = calloc(SC_EVENTS_QUEUE + 10, sizeof(*ev));
	struct live_pub *p;
	int64_t t0;
	int dropped;

	metrics_init();
	CHECK(config_load(&cfg, 5, argv, err, sizeof(err)) == 0, "%s", err);
	CHECK(cfg.publish_events == 1 && !strcmp(cfg.updates_exchange, "sharecount.updates"), "defaults");
	CHECK(dropped_queue_full() == 0);
	for (int i = 0; i < SC_EVENTS_QUEUE + 10; i++)
	{
		snprintf(ev[i].content_type, sizeof(ev[i].content_type), "article");
		snprintf(ev[i].content_id, sizeof(ev[i].content_id), "k%d", i);
		ev[i].share_count = ev[i].delta = ev[i].version = 1;
	}
	CHECK(live_pub_offer(NULL, ev, 5) == 0, "events off: nothing taken, nothing dropped");

	p = live_pub_start(&cfg);
	CHECK(p != NULL);
	t0 = clock_now_ms();
	dropped = live_pub_offer(p, ev, SC_EVENTS_QUEUE - 5);
	CHECK(dropped == 0, "%d dropped below the limit", dropped);
	dropped = live_pub_offer(p, ev + SC_EVENTS_QUEUE - 5, 15);
	CHECK(dropped == 10, "%d dropped, want 10", dropped);
	CHECK(live_pub_offer(p, ev, 1) == 1, "full: one more is dropped");
	CHECK(clock_now_ms() - t0 < 1000, "offers took %lld ms", (long long) (clock_now_ms() - t0));
	CHECK(dropped_queue_full() == 11, "metric %lld, want 11", dropped_queue_full());
	t0 = clock_now_ms();
	live_pub_stop(p);
	CHECK(clock_now_ms() - t0 < SC_EVENTS_STOP_WAIT_MS, "stop took %lld ms", (long long) (clock_now_ms() - t0));
	CHECK(live_pub_offer(NULL, ev, 1) == 0);

	free(ev);
	config_free(&cfg);
	return unit_done("test_live_pub");
}
