#!/usr/bin/env bash
# docs/bridge.md "Failures, dead-lettering and attempt counting": failures are
# bounded.  A trigger on sharecount.counts raises SQLSTATE 53200 (out of
# memory, an error class that may pass) for one key only.  Jobs for that key
# and for 300 others stream through the real bridge (publisher + consumer,
# full batches): the failing batches are retried, split in halves until each
# poisoned job is alone, and those are dead-lettered after
# max_delivery_attempts; every other key ends exact, the queue drains, and the
# dead-letter queue holds exactly the poisoned jobs.  (Release 1.0 held such a
# batch forever: the queue never drained.)
. "$(dirname "$0")/bridge.inc"
e2e_setup poisonsplit
T=${POISON_SPLIT_TIMEOUT:-240}
q "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN
     IF NEW.content_id = 'poison' THEN
       RAISE EXCEPTION 'poisoned key' USING ERRCODE = '53200';
     END IF;
     RETURN NEW;
   END \$\$;
   CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON sharecount.counts FOR EACH ROW EXECUTE FUNCTION poison();" >/dev/null
# a backlog first (so the bridge meets full batches): 3,003 rows, 11 of them poisoned
q "INSERT INTO share_links (content_type, content_id, user_id)
   SELECT 'article', CASE WHEN g % 273 = 0 THEN 'poison' ELSE 'p' || (g % 300) END, 'u' || g
   FROM generate_series(1, 3003) g" >/dev/null
bridge_start --max_delivery_attempts=3
# then a stream while it runs: churn over other keys, 4 more poisoned rows
churn 1500 300 41
for i in 1 2 3 4; do
  q "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', 'poison', 'late$i')" >/dev/null
  churn 200 300 $((41 + i))
done
P=15
start=$SECONDS
while :; do
  ob=$(stat outbox_depth); qd=$(queue_depth sharecount.jobs); dq=$(queue_depth sharecount.dead)
  bad=$(q "SELECT count(*) FROM sharecount_verify(1000) WHERE content_id <> 'poison'")
  [ "$ob" = 0 ] && [ "$qd" = 0 ] && [ "$dq" = "$P" ] && [ "$bad" = 0 ] && break
  [ $((SECONDS - start)) -ge "$T" ] &&
    fail "not drained after ${T}s: outbox=$ob queue=$qd dead=$dq (expected $P) mismatched_keys=$bad"
  sleep 1
done
[ "$(q "SELECT sharecount_get('article', 'poison')")" = 0 ] || fail "the poisoned key was counted"
[ "$(q "SELECT count(*) FROM sharecount_verify(1000)")" = 1 ] || fail "other keys are off"
log=$SC_TMP/poisonsplit.bridge1.log
n=$(grep -c "dead-lettering .*failed 3 times applying it alone; last error: 53200: poisoned key" "$log" || true)
[ "$n" = "$P" ] || fail "$n dead-letter lines with the reason, expected $P"
grep -q "splitting a failing batch" "$log" || fail "no batch was split"
grep -q "database is not ready" "$log" && fail "a poisoned job was taken for the database not being ready"
sleep 2
[ "$(queue_depth sharecount.dead)" = "$P" ] || fail "dead-letter queue changed: $(queue_depth sharecount.dead)"
kill -0 "$BRIDGE_PID" || fail "bridge died"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
