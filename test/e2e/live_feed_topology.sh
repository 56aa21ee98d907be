#!/usr/bin/env bash
# The http role's events feed declares only what it uses (docs/live.md
# "Feed", docs/wire.md "Topology"): an http-only bridge B on an empty vhost
# brings its event stream up and creates the updates exchange and its own
# queue, but none of the jobs topology (exchange, dead-letter exchange, jobs
# and dead-letter queues).  Then, with its jobs queue (`queue`) existing with
# other arguments (a 406 for a bridge declaring it), a new B still brings its
# stream up and receives events.  Each part fails on a feed that declares the
# jobs topology.
. "$(dirname "$0")/bridge.inc"
e2e_setup live_feed_topology
PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT

metric() { curl -s --max-time 20 "$B/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
# wait_up: B's feed consumes (sharecount_event_stream_up 1) within 60 s
wait_up() {
  local start=$SECONDS
  until [ "$(metric sharecount_event_stream_up)" = 1 ]; do
    [ $((SECONDS - start)) -lt 60 ] || fail "B's event stream never came up"
    sleep 0.2
  done
}
queues() { sc_rmqctl -q list_queues -p "$E2E_VHOST" name 2>/dev/null; }
exchanges() { sc_rmqctl -q list_exchanges -p "$E2E_VHOST" name 2>/dev/null; }

bridge_start --roles=http --http_listen="127.0.0.1:$PORT"
B_PID=$BRIDGE_PID
wait_up
exchanges | grep -qx sharecount.updates || fail "no updates exchange: $(exchanges | tr '\n' ' ')"
queues | grep -q '^amq\.gen-' || fail "no feed queue: $(queues | tr '\n' ' ')"
for x in sharecount sharecount.dlx; do
  ! exchanges | grep -qx "$x" || fail "the http-only bridge declared the exchange $x"
done
for x in sharecount.jobs sharecount.dead; do
  ! queues | grep -qx "$x" || fail "the http-only bridge declared the queue $x"
done
echo "ok: an http-only bridge's feed declares the updates exchange and its own queue, none of the jobs topology"
bridge_stop "$B_PID"
[ "$STOP_STATUS" = 0 ] || fail "B: exit $STOP_STATUS"

# a jobs queue with other arguments (durable, no x-dead-letter-exchange: a bridge declaring it gets a 406;
# a queue name of its own, declared before any bridge): the feed does not care
amqp_tool bind "$E2E_AMQP" odd.jobs sharecount share_created || fail "declaring the odd jobs queue"
bridge_start --roles=http --http_listen="127.0.0.1:$PORT" --queue=odd.jobs
B_PID=$BRIDGE_PID
wait_up
r0=$(metric sharecount_events_received_total)
amqp_tool publish "$E2E_AMQP" sharecount.updates article '{"pattern":"share_count_changed","data":{
  "contentType":"article","contentId":"t1","shareCount":1,"delta":1,"version":1,
  "timestamp":"2026-01-02T03:04:05.678Z"}}' || fail "publishing an event"
start=$SECONDS
until [ "$(metric sharecount_events_received_total)" -gt "$r0" ]; do
  [ $((SECONDS - start)) -lt 60 ] || fail "B did not receive the event"
  sleep 0.2
done
echo "ok: with a jobs queue of other arguments the feed still comes up and receives events"
bridge_stop "$B_PID"
[ "$STOP_STATUS" = 0 ] || fail "B: exit $STOP_STATUS"
