/*
 * fuzz_live.c — libFuzzer harness for the live-count texts and registry,
 * bridge/live_event.c and bridge/live_hub.c (docs/live.md, docs/fuzzing.md).
 *
 * Input: one flag byte, then the body (every remaining byte).  Flag bit 0
 * clear: the body is an event received from the broker (live_event_decode);
 * set: a ws client message (live_client_parse).  Either way an accepted one
 * is applied to a fresh hub with one subscriber.
 *
 * Invariants checked beyond the sanitizers: a rejection has a one-line
 * reason; an accepted event re-encodes to a body that decodes to the same
 * struct, and after a hub update the key's latest is exactly it (a second
 * update with the same version is stale); an accepted client message has 1 to
 * LIVE_MAX_IDS_PER_SUBSCRIBE ids of 1..LIVE_MAX_ID_BYTES bytes, and
 * subscribing never leaves more than LIVE_MAX_SUBS_PER_CONN subscriptions.
 *
 * Rules: no state between inputs (the received/rejected counters only
 * grow); everything allocated here is freed here.
 */
#include "fuzz.h"
#include "live_event.h"
#include "live_hub.h"

static void
check_reason(const char *err)
{
	FZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
}

static void
check_event(const char *body, size_t len)
{
	struct live_count c, again, latest;
	char err[256] = "", *enc, *id[1];
	struct live_hub *hub;
	struct live_sub *sub;

	if (live_event_decode(body, len, &c, err, sizeof(err)) < 0)
	{
		check_reason(err);
		return;
	}
	FZ_CHECK(c.content_type[0] && c.content_id[0] && c.share_count >= 0 && c.version >= 1);
	enc = live_event_encode(&c);
	FZ_CHECK(enc != NULL);
	FZ_CHECK(live_event_decode(enc, strlen(enc), &again, err, sizeof(err)) == 0);
	FZ_CHECK(memcmp(&c, &again, sizeof(c)) == 0);
	free(enc);
	hub = live_hub_new();
	sub = live_hub_attach(hub, NULL, NULL);
	id[0] = c.content_id;
	FZ_CHECK(live_hub_subscribe(hub, sub, c.content_type, id, 1, err, sizeof(err)) == 0);
	FZ_CHECK(live_hub_update(hub, &c) == 1 && live_hub_update(hub, &c) == 0);
	FZ_CHECK(live_hub_latest(hub, c.content_type, c.content_id, &latest) == 1);
	FZ_CHECK(memcmp(&c, &latest, sizeof(c)) == 0);
	live_hub_free(hub);
}

static void
check_client(const char *msg, size_t len)
{
	struct live_client_msg m;
	char err[256] = "";
	struct live_hub *hub;
	struct live_sub *sub;

	if (live_client_parse(msg, len, &m, err, sizeof(err)) < 0)
	{
		check_reason(err);
		FZ_CHECK(m.ids == NULL && m.nids == 0);
		return;
	}
	FZ_CHECK(m.nids >= 1 && m.nids <= LIVE_MAX_IDS_PER_SUBSCRIBE && m.content_type[0]);
	for (int i = 0; i < m.nids; i++)
		FZ_CHECK(m.ids[i][0] != '\0' && strlen(m.ids[i]) <= LIVE_MAX_ID_BYTES);
	hub = live_hub_new();
	sub = live_hub_attach(hub, NULL, NULL);
	if (live_hub_subscribe(hub, sub, m.content_type, m.ids, m.nids, err, sizeof(err)) < 0)
		check_reason(err);
	FZ_CHECK(live_hub_sub_count(hub, sub) <= LIVE_MAX_SUBS_PER_CONN);
	if (m.op == LIVE_UNSUBSCRIBE)
		FZ_CHECK(live_hub_unsubscribe(hub, sub, m.content_type, m.ids, m.nids) >= 1 &&
				 live_hub_sub_count(hub, sub) == 0);
	live_hub_free(hub);
	live_client_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	uint8_t flags = fz_byte(&in);
	char *body = fz_copy(in.p, in.left);

	if (flags & 1)
		check_client(body, in.left);
	else
		check_event(body, in.left);
	free(body);
	return 0;
}
