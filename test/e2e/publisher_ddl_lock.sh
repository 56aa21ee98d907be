#!/usr/bin/env bash
# The publisher's lock_timeout against DDL on the outbox (docs/bridge.md,
# "Publisher", Lock timeout), made to happen for sure rather than by timing:
#   1. the bridge talks to RabbitMQ through publisher_ddl_lock_proxy.py, which
#      holds back what the broker sends (so its publisher confirms) on SIGUSR1;
#   2. one transaction of rows: slot A claims them all and publishes them; its
#      claim stays open (a transaction with an xid, idle) while its confirms are
#      held, and slot B keeps claiming (empty) meanwhile;
#   3. LOCK TABLE sharecount.outbox IN ACCESS EXCLUSIVE MODE (the lock an ALTER
#      EXTENSION UPDATE adding a column takes) queues behind slot A's claim;
#      the application's inserts and deletes queue behind the LOCK;
#   4. once slot B's claim waits behind the LOCK (seen in pg_locks, or its lock
#      timeout already logged), the confirms are let through.
# Slot A can only commit when the publisher thread is back from slot B's
# claim.  Without the lock timeout that claim waits forever: the LOCK, the
# application and the publisher stay stuck, and this test fails once
# DDL_WAIT_S has passed.  With it: the LOCK completes, the publisher logs the
# 55P03 lock timeout of a claim and carries on, the application's writes
# complete, every count ends exact, nothing is dead-lettered.
. "$(dirname "$0")/bridge.inc"
e2e_setup publisher_ddl_lock
STEP_WAIT_S=30 # generous deadline of each step that does not depend on the lock timeout
DDL_WAIT_S=30  # the LOCK must complete within this after the confirms are let through
PUB_APP="sharecount-bridge publisher"
DDL_APP=locktest_ddl
APP_APP=locktest_app

# wait_for WHAT SECONDS CMD...: until CMD succeeds; fail after SECONDS.
wait_for() {
  local what=$1 t=$2 start=$SECONDS
  shift 2
  until "$@"; do
    [ $((SECONDS - start)) -lt "$t" ] || fail "$what: not within ${t}s"
    sleep 0.05
  done
}

# proxy_signal SIG WORD: signal the proxy, wait until it prints "WORD N" for a new N.
proxy_said() { [ "$(grep -c "^$1 " "$proxy_log" || true)" -gt "$2" ]; }
proxy_signal() {
  local before
  before=$(grep -c "^$2 " "$proxy_log" || true)
  kill -"$1" "$proxy_pid"
  wait_for "the proxy's \"$2\"" "$STEP_WAIT_S" proxy_said "$2" "$before"
}

# backends SQL_CONDITION: how many sessions of the test database match it.
backends() { q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND ($1)"; }
slot_a_open() { [ "$(backends "application_name = '$PUB_APP' AND state = 'idle in transaction' AND backend_xid IS NOT NULL")" = 1 ]; }
ddl_waits() { [ "$(backends "application_name = '$DDL_APP' AND wait_event_type = 'Lock'")" = 1 ]; }
app_waits() { [ "$(backends "application_name = '$APP_APP' AND wait_event_type = 'Lock'")" = 1 ]; }
lock_timeouts() { grep -c 'publisher: .*55P03' "$bridge_log" || true; }
slot_b_blocked() {
  [ "$(backends "application_name = '$PUB_APP' AND wait_event_type = 'Lock'")" -ge 1 ] || [ "$(lock_timeouts)" -gt 0 ]
}
done_file() { [ -f "$1" ]; }

proxy_log=$SC_TMP/$E2E_NAME.proxy.log
python3 "$SC_ROOT/test/e2e/publisher_ddl_lock_proxy.py" "$SC_AMQP_PORT" "$SC_TMP/$E2E_NAME.proxy.port" >"$proxy_log" 2>&1 &
proxy_pid=$!
sc_on_exit "kill $proxy_pid"
wait_for "proxy listening" "$STEP_WAIT_S" done_file "$SC_TMP/$E2E_NAME.proxy.port"
proxy_port=$(cat "$SC_TMP/$E2E_NAME.proxy.port")

# two claim slots; confirms held far shorter than confirm_timeout_ms, so slot A
# is finished by its confirms, never given up
bridge_start --amqp_url="amqp://guest:guest@127.0.0.1:$proxy_port/$E2E_VHOST" --publish_pipeline=2 \
  --publish_batch=500 --confirm_timeout_ms=120000
bridge_log=$SC_TMP/$E2E_NAME.bridge$E2E_NB.log
insert_rows 50 10
wait_drained "$STEP_WAIT_S"

proxy_signal USR1 held
# one transaction, fewer rows than publish_batch: one claim takes them all
insert_rows 40 10
wait_for "slot A's claim open (its confirms held)" "$STEP_WAIT_S" slot_a_open

ddl_rc=$SC_TMP/$E2E_NAME.ddl.rc
(
  set +e
  PGAPPNAME=$DDL_APP sc_psql -d "$E2E_DB" -c "BEGIN" -c "LOCK TABLE sharecount.outbox IN ACCESS EXCLUSIVE MODE" \
    -c "COMMIT" >"$SC_TMP/$E2E_NAME.ddl.out" 2>&1
  echo $? >"$ddl_rc"
) &
wait_for "the LOCK queued behind slot A" "$STEP_WAIT_S" ddl_waits

app_rc=$SC_TMP/$E2E_NAME.app.rc
(
  set +e
  PGAPPNAME=$APP_APP churn 300 20 7 >"$SC_TMP/$E2E_NAME.app.out" 2>&1
  echo $? >"$app_rc"
) &
wait_for "the application's writes queued behind the LOCK" "$STEP_WAIT_S" app_waits

wait_for "slot B's claim waiting behind the LOCK" "$STEP_WAIT_S" slot_b_blocked
proxy_signal USR2 released

start=$SECONDS
until done_file "$ddl_rc"; do
  if [ $((SECONDS - start)) -ge "$DDL_WAIT_S" ]; then
    q "SELECT application_name, state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY 1" >&2 || true
    fail "the LOCK on sharecount.outbox still waits ${DDL_WAIT_S}s after the confirms were let through:" \
      "slot B's claim waits behind it while the publisher thread waits for slot B (no lock timeout?)"
  fi
  sleep 0.1
done
[ "$(cat "$ddl_rc")" = 0 ] || fail "the LOCK failed: $(cat "$SC_TMP/$E2E_NAME.ddl.out")"
echo "# the LOCK completed $((SECONDS - start))s after the confirms were let through"
wait_for "the application's writes" "$STEP_WAIT_S" done_file "$app_rc"
[ "$(cat "$app_rc")" = 0 ] || fail "the application's writes failed: $(cat "$SC_TMP/$E2E_NAME.app.out")"

n=$(lock_timeouts)
[ "$n" -gt 0 ] || fail "no lock timeout (55P03) logged by the publisher"
# slot A was finished by its confirms: no confirm timeout, no new broker connection
[ "$(grep -c 'publisher: connected to amqp' "$bridge_log")" = 1 ] || fail "the publisher reconnected to the broker"
# carries on: new writes are published and applied too
insert_rows 30 10
wait_drained 60
kill -0 "$BRIDGE_PID" 2>/dev/null || fail "the bridge died"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "something was dead-lettered"
applied=$(stat jobs_applied)
echo "# $n claim(s) ended by the lock timeout; $applied jobs applied, counts exact"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
