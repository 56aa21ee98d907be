#!/usr/bin/env bash
# Count-change events (docs/live.md, "Publishing"), against the real broker:
# - 1,000 INSERTs on one key in a few transactions give far fewer events
#   (one per apply batch), in strictly increasing versions, each
#   share_count_changed in the NestJS envelope, not persistent,
#   application/json, routing key = contentType; the last one's shareCount is
#   1,000 = sharecount_get; the deltas add up; a DELETE gives a negative delta;
# - the events exchange deleted under the bridge: counts stay exact, nothing
#   dead-lettered, the bridge declares it again and events resume;
# - the broker's memory alarm (connection.blocked) while 5,000 keys change:
#   counts stay exact, no job dead-lettered, the events that did not fit the
#   queue are dropped and counted (sharecount_events_dropped_total), the
#   bridge stops cleanly;
# - publish_events=0: no events.
# Changes the shared node's memory watermark and always restores it.
. "$(dirname "$0")/bridge.inc"
e2e_setup live_events
EX=sharecount.updates
EVQ=e2e_events
HTTP_PORT=$(sc_free_port)
metric() { curl -s --max-time 20 "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
dead() { local d; d=$(queue_depth sharecount.dead); echo "${d:-0}"; }
EVENTS=$SC_TMP/$E2E_NAME.events
: > "$EVENTS"
# collect_until JQ_COND [SECONDS]: drain $EVQ into $EVENTS until the last event satisfies JQ_COND
collect_until() {
  local t=${2:-60} start=$SECONDS
  while :; do
    amqp_tool drain "$E2E_AMQP" "$EVQ" >> "$EVENTS" || fail "draining $EVQ"
    if [ -s "$EVENTS" ] && tail -1 "$EVENTS" | cut -f4 | jq -e "$1" >/dev/null; then return 0; fi
    [ $((SECONDS - start)) -lt "$t" ] || fail "no event with $1 after ${t}s (last: $(tail -1 "$EVENTS"))"
    sleep 0.3
  done
}
bodies() { cut -f4 "$EVENTS"; }

amqp_tool bind "$E2E_AMQP" "$EVQ" "$EX" article
bridge_start --roles=publisher,consumer,http --http_listen=127.0.0.1:$HTTP_PORT

# 1,000 shares of one key, in 4 transactions
for i in 1 2 3 4; do
  q "INSERT INTO share_links (content_type, content_id, user_id) SELECT 'article', 'hot', 'u' || g
     FROM generate_series(1, 250) g;" >/dev/null
done
wait_drained 60
[ "$(q "SELECT sharecount_get('article', 'hot')")" = 1000 ] || fail "count is not 1000"
collect_until '.data.shareCount == 1000'
n=$(wc -l < "$EVENTS")
echo "# 1,000 inserts gave $n events" >&2
[ "$n" -ge 1 ] && [ "$n" -le 250 ] || fail "$n events for 1,000 inserts (want coalesced: 1..250)"
# properties: not persistent, application/json, routing key = contentType
bad=$(awk -F'\t' '$1 != 1 || $2 != "application/json" || $3 != "article"' "$EVENTS" | wc -l)
[ "$bad" = 0 ] || fail "$bad events with other properties: $(head -3 "$EVENTS")"
# the envelope: pattern, no id, every field
bodies | jq -e -s 'all(.[]; .pattern == "share_count_changed" and (has("id") | not)
  and .data.contentType == "article" and .data.contentId == "hot" and (.data.timestamp | test("^[0-9-]{10}T[0-9:]{8}[.][0-9]{3}Z$")))' \
  >/dev/null || fail "malformed events: $(head -2 "$EVENTS")"
# versions strictly increasing, counts consistent with deltas, deltas add up
bodies | jq -e -s '[.[].data.version] as $v | all(range(1; $v | length); $v[.] > $v[. - 1])' >/dev/null \
  || fail "versions not strictly increasing: $(bodies | jq -c '.data.version' | tr '\n' ' ')"
[ "$(bodies | jq -s '[.[].data.delta] | add')" = 1000 ] || fail "deltas do not add up to 1000"
[ "$(bodies | jq -s 'last.data.version')" = "$(q "SELECT version FROM sharecount_get_versioned('article', '{hot}')")" ] \
  || fail "last event's version differs from the database's"

# a DELETE: a negative delta, the count follows
: > "$EVENTS"
q "DELETE FROM share_links WHERE id IN (SELECT id FROM share_links WHERE content_id = 'hot' LIMIT 10)" >/dev/null
wait_drained 60
collect_until '.data.shareCount == 990'
[ "$(bodies | jq -s '[.[].data.delta] | add')" = -10 ] || fail "DELETE of 10: deltas $(bodies | jq -c .data.delta | tr '\n' ' ')"
[ "$(metric sharecount_events_published_total)" -ge "$((n + 1))" ] || fail "sharecount_events_published_total below the events received"

# the events exchange deleted under the bridge: jobs unaffected, the exchange comes back, events resume
amqp_tool delete-exchange "$E2E_AMQP" "$EX"
insert_rows 200 20
wait_drained 60
[ "$(dead)" = 0 ] || fail "$(dead) jobs dead-lettered after the events exchange was deleted"
kill -0 "$BRIDGE_PID" || fail "the bridge died when the events exchange was deleted"
: > "$EVENTS"
for i in $(seq 60); do # the binding went with the exchange: bind again until new events arrive
  amqp_tool bind "$E2E_AMQP" "$EVQ" "$EX" article
  q "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', 'back', 'u$i')" >/dev/null
  amqp_tool drain "$E2E_AMQP" "$EVQ" >> "$EVENTS"
  grep -q '"contentId":"back"' "$EVENTS" && break
  sleep 0.5
done
grep -q '"contentId":"back"' "$EVENTS" || fail "no events after the exchange was deleted"
wait_drained 60
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"

# the broker blocked (memory alarm) while a consumer applies 5,000 keys:
# jobs are published first (no consumer), then the alarm, then the consumer
bridge_start --roles=publisher
insert_rows_keys() { q "INSERT INTO share_links (content_type, content_id, user_id)
  SELECT 'article', 'k' || g, 'u' FROM generate_series(1, $1) g;" >/dev/null; }
insert_rows_keys 5000
for i in $(seq 600); do [ "$(stat outbox_depth)" = 0 ] && [ "$(queue_depth sharecount.jobs)" = 5000 ] && break; sleep 0.1; done
[ "$(queue_depth sharecount.jobs)" = 5000 ] || fail "5,000 jobs not queued: $(queue_depth sharecount.jobs)"
bridge_stop "$BRIDGE_PID"
sc_on_exit "sc_rmqctl -q set_vm_memory_high_watermark 0.4"
sc_rmqctl -q set_vm_memory_high_watermark 0.000001 >/dev/null
bridge_start --roles=consumer,http --http_listen=127.0.0.1:$HTTP_PORT
wait_drained 90
[ "$(dead)" = 0 ] || fail "$(dead) jobs dead-lettered while the broker was blocked"
for i in $(seq 100); do
  [ "$(metric 'sharecount_events_dropped_total{reason="queue_full"}')" -gt 0 ] 2>/dev/null && break; sleep 0.1
done
dropped=$(metric 'sharecount_events_dropped_total{reason="queue_full"}')
echo "# blocked: $dropped events dropped (queue full), $(metric sharecount_events_published_total) published" >&2
[ "${dropped:-0}" -gt 0 ] || fail "no events dropped while blocked (dropped=$dropped)"
kill -0 "$BRIDGE_PID" || fail "bridge died while blocked"
sc_rmqctl -q set_vm_memory_high_watermark 0.4 >/dev/null
# unblocked: what was queued is published
for i in $(seq 300); do [ "$(metric sharecount_events_published_total)" -gt 0 ] && break; sleep 0.1; done
[ "$(metric sharecount_events_published_total)" -gt 0 ] || fail "nothing published after the alarm cleared"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS after the blocked phase"

# publish_events=0: applies as before, no events
amqp_tool drain "$E2E_AMQP" "$EVQ" > /dev/null
bridge_start --roles=publisher,consumer --publish_events=0
q "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', 'quiet', 'u')" >/dev/null
wait_drained 60
sleep 1
[ -z "$(amqp_tool drain "$E2E_AMQP" "$EVQ")" ] || fail "events published with publish_events=0"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
