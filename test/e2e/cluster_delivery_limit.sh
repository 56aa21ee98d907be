#!/usr/bin/env bash
# docs/bridge.md "Failures, dead-lettering and attempt counting": with
# queue_type = quorum, attempts are counted by RabbitMQ (x-delivery-count),
# so they survive a bridge restart.  A single node hosts the quorum queue.
# The jobs queue is declared with x-delivery-limit = max_delivery_attempts.
# A poisoned job fails (a trigger raises for its key); the bridge is killed
# with SIGKILL after its first failure, a second bridge takes over, and the
# job is dead-lettered after max_delivery_attempts failures IN TOTAL (not per
# bridge), with x-sharecount-attempts = 4.  A third bridge with another
# max_delivery_attempts (a queue declared with other arguments, 406) uses the
# existing queue as it is, says so, and still applies jobs.
# (Release 1.0 declared no x-delivery-limit and counted attempts per bridge.)
. "$(dirname "$0")/bridge.inc"
e2e_setup dlimit
q "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN IF NEW.content_id = 'poison' THEN PERFORM pg_sleep(0.3); RAISE EXCEPTION 'poisoned key'; END IF; RETURN NEW; END \$\$;
   CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON sharecount.counts FOR EACH ROW EXECUTE FUNCTION poison();" >/dev/null
M=4
flags=(--roles=consumer --queue_type=quorum --max_delivery_attempts=$M --apply_linger_ms=100)
bridge_start "${flags[@]}"
B1=$BRIDGE_PID
for i in $(seq 600); do [ -n "$(queue_depth sharecount.dead)" ] && break; sleep 0.1; done
args=$(sc_rmqctl -q list_queues -p "$E2E_VHOST" name type arguments 2>/dev/null | awk '$1 == "sharecount.jobs"')
echo "$args" | grep -q quorum || fail "sharecount.jobs is not a quorum queue: $args"
echo "$args" | grep -q "x-delivery-limit.*$M" || fail "sharecount.jobs has no x-delivery-limit=$M: $args"
job() { printf '{"pattern":"share_count_update","data":{"jobId":"%s","contentType":"video","contentId":"%s","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}' "$1" "$2"; }
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job L-1 poison)" persistent
log1=$SC_TMP/dlimit.bridge1.log log2=$SC_TMP/dlimit.bridge2.log
failed() { grep -c "applying 1 job(s) failed" "$1" || true; }
for i in $(seq 600); do [ "$(failed "$log1")" -ge 1 ] && break; sleep 0.05; done
bridge_stop "$B1" KILL
f1=$(failed "$log1")
[ "$f1" -ge 1 ] && [ "$f1" -lt $M ] || fail "the first bridge failed $f1 times before the kill (expected 1..$((M - 1)))"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "dead-lettered before the kill"
bridge_start "${flags[@]}"
B2=$BRIDGE_PID
for i in $(seq 600); do [ "$(queue_depth sharecount.dead)" = 1 ] && break; sleep 0.2; done
[ "$(queue_depth sharecount.dead)" = 1 ] || fail "not dead-lettered after the restart"
f2=$(failed "$log2")
echo "# failures: first bridge $f1, second bridge $f2 (max_delivery_attempts $M)" >&2
[ $((f1 + f2)) -le $M ] || fail "$((f1 + f2)) failed attempts in total (first $f1, second $f2): counted per bridge, not by the queue"
[ "$f2" -lt $M ] || fail "the second bridge started counting from zero ($f2 failures)"
row=$("$BRIDGE" dlq list -c /dev/null --amqp_url="$E2E_AMQP" --queue_type=quorum --max_delivery_attempts=$M)
echo "$row" | grep -q $'^L-1\tshare_count_update\t'$M$'\t.*\tfailed '$M' times applying it alone; last error: P0001: poisoned key$' ||
  fail "dead letter row: $row"
[ "$(q "SELECT sharecount_get('video','poison')")" = 0 ] || fail "the poisoned key was counted"
bridge_stop "$B2"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"

# an existing queue declared with other arguments: used as it is, with a warning
bridge_start --roles=consumer --queue_type=quorum --max_delivery_attempts=7
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job L-2 good)" persistent
for i in $(seq 300); do [ "$(q "SELECT sharecount_get('video','good')")" = 1 ] && break; sleep 0.2; done
[ "$(q "SELECT sharecount_get('video','good')")" = 1 ] || fail "the bridge on the existing queue applied nothing"
grep -q 'using the existing queue "sharecount.jobs" as it is' "$SC_TMP/dlimit.bridge3.log" || fail "no warning about the queue's arguments"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
