#!/usr/bin/env bash
# docs/bridge.md "Failures, dead-lettering and attempt counting": when the
# database is not ready for jobs, the consumer holds them, counts no attempt
# and dead-letters nothing, however long it lasts; once fixed, every job is
# applied exactly once.  Three ways of not being ready, one after the other:
#   1. the bridge's role lacks EXECUTE on sharecount_apply_batch (GRANT missing)
#   2. the function is missing (as with an extension not yet upgraded)
#   3. a broken trigger on sharecount.counts fails for every key (42P01)
# Each time the probe job fails too, which is what tells these apart from a
# message at fault (bridge_poison*.sh).
. "$(dirname "$0")/bridge.inc"
e2e_setup notready
role=sc_e2e_notready
sc_psql -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 || true
sc_psql -c "CREATE ROLE $role LOGIN" >/dev/null
sc_on_exit "sc_psql -c 'DROP ROLE IF EXISTS $role'"
sc_on_exit "sc_psql -d $E2E_DB -c 'DROP OWNED BY $role'"
log=$SC_TMP/notready.bridge1.log
job() { printf '{"pattern":"share_count_update","data":{"jobId":"%s","contentType":"video","contentId":"nr","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}' "$1"; }
# wait_not_ready SQLSTATE: the bridge has logged "not ready" with SQLSTATE 4
# times (more rounds than max_delivery_attempts, 2: no attempt was counted)
wait_not_ready() {
  local i
  for i in $(seq 600); do
    [ "$(grep -c "database is not ready .*$1" "$log" || true)" -ge 4 ] && return 0; sleep 0.1
  done
  fail "the bridge did not report the database not ready ($1) 4 times"
}
# held N C: N jobs wait in the queue (its figures lag: waited for), none
# dead-lettered, the key still counts C
held() {
  local i
  for i in $(seq 300); do [ "$(queue_depth sharecount.jobs)" = "$1" ] && break; sleep 0.1; done
  [ "$(queue_depth sharecount.jobs)" = "$1" ] || fail "queue holds $(queue_depth sharecount.jobs), expected $1"
  [ "$(queue_depth sharecount.dead)" = 0 ] || fail "dead-lettered while the database was not ready"
  [ "$(q "SELECT sharecount_get('video', 'nr')")" = "$2" ] || fail "counted while the database was not ready"
}
# applied N: the queue drains and the key counts N
applied() {
  local i
  for i in $(seq 600); do
    [ "$(queue_depth sharecount.jobs)" = 0 ] && [ "$(q "SELECT sharecount_get('video', 'nr')")" = "$1" ] && break; sleep 0.1
  done
  [ "$(q "SELECT sharecount_get('video', 'nr')")" = "$1" ] || fail "count $(q "SELECT sharecount_get('video', 'nr')"), expected $1"
  [ "$(queue_depth sharecount.dead)" = 0 ] || fail "something was dead-lettered"
}
q "GRANT USAGE ON SCHEMA public TO $role; GRANT EXECUTE ON FUNCTION sharecount_get(text, text) TO $role" >/dev/null
bridge_start --roles=consumer --max_delivery_attempts=2 --pg_conninfo="${E2E_PGURL/user=postgres/user=$role}"
# the bridge declares the queues: publishing before that would drop the jobs
for i in $(seq 300); do [ -n "$(queue_depth sharecount.dead)" ] && break; sleep 0.1; done
[ -n "$(queue_depth sharecount.dead)" ] || fail "the bridge declared no queues"
for i in 1 2 3; do amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job g-$i)"; done
# 1. GRANT missing
wait_not_ready 42501
held 3 0
q "GRANT EXECUTE ON FUNCTION sharecount_apply_batch(jsonb[]) TO $role" >/dev/null
applied 3
# 2. function missing
q "ALTER FUNCTION sharecount_apply_batch(jsonb[]) RENAME TO sharecount_apply_batch_away" >/dev/null
for i in 1 2 3; do amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job f-$i)"; done
wait_not_ready 42883
held 3 3
q "ALTER FUNCTION sharecount_apply_batch_away(jsonb[]) RENAME TO sharecount_apply_batch" >/dev/null
applied 6
# 3. a trigger that fails for every key
q "CREATE FUNCTION broken() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN RAISE EXCEPTION 'relation \"audit\" does not exist' USING ERRCODE = '42P01'; END \$\$;
   CREATE TRIGGER broken BEFORE INSERT OR UPDATE ON sharecount.counts FOR EACH ROW EXECUTE FUNCTION broken();" >/dev/null
for i in 1 2 3; do amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job t-$i)"; done
wait_not_ready 42P01
held 3 6
q "DROP TRIGGER broken ON sharecount.counts" >/dev/null
applied 9
grep -q "dead-lettering" "$log" && fail "a dead-letter line was logged"
kill -0 "$BRIDGE_PID" || fail "bridge died"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
