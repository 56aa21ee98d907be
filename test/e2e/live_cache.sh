#!/usr/bin/env bash
# docs/live.md "Cache": the http role's coherent cache, end to end, with two
# bridges on one database and broker — A (publisher, consumer) and B (http
# only, http_cache_max_age_ms = 60 s, so within this test's deadlines a new
# count can only reach B's cache through an event):
#   - B's feed comes up (sharecount_event_stream_up 1); a malformed event is
#     rejected and counted, B keeps going;
#   - an event for a cached key moves B's answer at once (the database row
#     changed with SQL, its share_count_changed event published by hand), and
#     B's hit counter rises on repeated reads;
#   - a share inserted into share_links and applied by A reaches B's answer
#     (A's consumer publishes its event);
#     a list of cached keys (/counts) is a hit too;
#   - RabbitMQ stopped for ~10 s: B's stream goes down, a change made with
#     SQL meanwhile is read exactly through B (bypass counted); RabbitMQ back:
#     the stream comes back and B answers from the cache again;
#   - no answer of B is ever lower than one it gave before (counts only grow
#     here);
#   - a third bridge on a database still at extension 1.0 serves exact counts
#     (read without versions, never from the cache) and says why once.
# Restarts the shared RabbitMQ node and leaves it running.
. "$(dirname "$0")/bridge.inc"
e2e_setup live_cache
bridge_start
A_PID=$BRIDGE_PID
PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT
bridge_start --roles=http --http_listen="127.0.0.1:$PORT" --http_cache_max_age_ms=60000
B_PID=$BRIDGE_PID

metric() { curl -s --max-time 20 "$B/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
# wait_for DESCRIPTION SECONDS CMD...: poll CMD every 0.2 s until it succeeds
wait_for() {
  local what=$1 t=$2 start=$SECONDS; shift 2
  until "$@"; do
    [ $((SECONDS - start)) -lt "$t" ] || fail "$what (waited ${t}s)"
    sleep 0.2
  done
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }
db_count() { q "SELECT sharecount_get('article', '$1')"; }
db_is() { [ "$(db_count "$1")" = "$2" ]; }
# add KEY N: N shares for KEY straight into the counts (no broker involved)
seq_job=0
add() {
  seq_job=$((seq_job + 1))
  q "SELECT sharecount_apply('{\"pattern\":\"share_count_update\",\"data\":{\"jobId\":\"lc-$$-$seq_job\",
     \"contentType\":\"article\",\"contentId\":\"$1\",\"operation\":\"increment\",\"amount\":$2,
     \"timestamp\":\"2026-01-01T00:00:00.000Z\"}}')" >/dev/null || fail "apply $1"
}
# publish_event KEY: the key's share_count_changed event as a consumer publishes it (docs/live.md "The event")
publish_event() {
  local row n v
  row=$(q "SELECT share_count || ' ' || version FROM sharecount_get_versioned('article', ARRAY['$1'])")
  read -r n v <<<"$row"
  amqp_tool publish "$E2E_AMQP" sharecount.updates article "{\"pattern\":\"share_count_changed\",\"data\":{
    \"contentType\":\"article\",\"contentId\":\"$1\",\"shareCount\":$n,\"delta\":1,\"version\":$v,
    \"timestamp\":\"2026-01-02T03:04:05.678Z\"}}" || fail "publish the event of $1"
}
# read_b KEY: B's answer in $got (never lower than B's previous answer for KEY; not in $(...): seen[] must stay)
declare -A seen
read_b() {
  got=$(curl -s --max-time 20 "$B/share-links/count/article/$1" | sed -nE 's/.*"shareCount":([0-9]+)\}$/\1/p')
  [ -n "$got" ] || fail "no count for $1 from B"
  [ "$got" -ge "${seen[$1]:-0}" ] || fail "B went back in time for $1: ${seen[$1]} then $got"
  seen[$1]=$got
}
# b_is KEY N: B answers N for KEY
b_is() { read_b "$1"; [ "$got" = "$2" ]; }

wait_for "B's event stream never came up" 60 metric_is sharecount_event_stream_up 1
amqp_tool publish "$E2E_AMQP" sharecount.updates article '{"pattern":"share_count_changed","data":{}}'
wait_for "the malformed event was not counted" 30 metric_is sharecount_events_rejected_total 1
kill -0 "$B_PID" || fail "B died on a malformed event"

# an event moves a cached count at once
add k1 5
b_is k1 5 || fail "first read of k1"
h0=$(metric sharecount_cache_hits_total)
for i in $(seq 20); do b_is k1 5 || fail "k1 changed without a change"; done
h1=$(metric sharecount_cache_hits_total)
[ $((h1 - h0)) -ge 20 ] || fail "20 repeated reads of k1 made $((h1 - h0)) cache hits"
add k1 3
b_is k1 5 || fail "B read k1 anew before its event came: not from the cache (max age 60 s)"
publish_event k1
wait_for "B never showed k1's event (8)" 30 b_is k1 8
echo "# the event of k1 reached B's cache; $((h1 - h0)) hits for 20 reads"

# a share applied by bridge A reaches B
b_is k2 0 || fail "k2 before any share"
q "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', 'k2', 'u1')" >/dev/null
wait_for "A never applied the share of k2" 60 db_is k2 1
wait_for "B never showed A's share of k2" 30 b_is k2 1
# a list of cached keys is answered from the cache too
h0=$(metric sharecount_cache_hits_total)
[ "$(curl -s --max-time 20 "$B/share-links/counts/article?ids=k1,k2")" = '{"contentType":"article","counts":{"k1":8,"k2":1}}' ] ||
  fail "counts of k1,k2 through B"
[ "$(metric sharecount_cache_hits_total)" = $((h0 + 1)) ] || fail "a list of cached keys was not a cache hit"

# the broker stops: B bypasses its cache, and stays exact
by0=$(metric sharecount_cache_bypasses_total)
sc_rmq_stop
t0=$SECONDS
wait_for "B's stream never went down" 60 metric_is sharecount_event_stream_up 0
add k1 4
b_is k1 12 || fail "k1 through B while the broker is down: $got, database 12"
add k1 1
b_is k1 13 || fail "k1 through B while the broker is down: $got, database 13"
by1=$(metric sharecount_cache_bypasses_total)
[ $((by1 - by0)) -ge 2 ] || fail "bypasses $by0 -> $by1 while the stream was down"
sleep $((10 - (SECONDS - t0) > 0 ? 10 - (SECONDS - t0) : 0))
echo "# broker down $((SECONDS - t0)) s; B exact (13) with $((by1 - by0)) bypasses"
sc_rmq_boot || fail "rabbitmq did not come back"

# back: the cache is used again (re-confirmed first), still exact
wait_for "B's stream never came back" 90 metric_is sharecount_event_stream_up 1
b_is k1 13 || fail "k1 after the outage"
h2=$(metric sharecount_cache_hits_total)
for i in $(seq 10); do b_is k1 13 || fail "k1 changed without a change"; done
h3=$(metric sharecount_cache_hits_total)
[ $((h3 - h2)) -ge 10 ] || fail "after the outage: 10 reads of k1 made $((h3 - h2)) cache hits"
add k1 2
publish_event k1
wait_for "B never showed k1's event after the outage (15)" 30 b_is k1 15
kill -0 "$A_PID" || fail "bridge A died"

# a database still at extension 1.0 (no sharecount_get_versioned): counts served, nothing from the cache
OLD_DB=${E2E_DB}_10
dropdb --if-exists "$OLD_DB" >/dev/null 2>&1 || true
createdb "$OLD_DB"
sc_on_exit "dropdb --if-exists --force '$OLD_DB'"
sc_psql -d "$OLD_DB" -c "CREATE EXTENSION sharecount VERSION '1.0'" \
  -c "SELECT sharecount_apply('{\"pattern\":\"share_count_update\",\"data\":{\"jobId\":\"old-1\",
      \"contentType\":\"article\",\"contentId\":\"o1\",\"operation\":\"increment\",\"amount\":7,
      \"timestamp\":\"2026-01-01T00:00:00.000Z\"}}')" >/dev/null || fail "1.0 database"
PORT_C=$(sc_free_port)
bridge_start --roles=http --http_listen="127.0.0.1:$PORT_C" --pg_conninfo="${SC_PGURL/dbname=postgres/dbname=$OLD_DB}"
C_PID=$BRIDGE_PID
C=http://127.0.0.1:$PORT_C
c_up() { [ "$(curl -s --max-time 20 "$C/metrics" | awk '$1 == "sharecount_event_stream_up" { print $2 }')" = 1 ]; }
wait_for "the 1.0 bridge's stream never came up" 60 c_up
for i in 1 2 3; do
  [ "$(curl -s --max-time 20 "$C/share-links/count/article/o1")" = '{"contentType":"article","contentId":"o1","shareCount":7}' ] ||
    fail "a count from a 1.0 database"
done
[ "$(curl -s --max-time 20 "$C/metrics" | awk '$1 == "sharecount_cache_hits_total" { print $2 }')" = 0 ] ||
  fail "counts without versions were served from the cache"
grep -q 'WARN http: sc_get_v is not in the database (extension older than 1.1)' "$SC_TMP/$E2E_NAME.bridge3.log" ||
  fail "no warning about the 1.0 database"
bridge_stop "$C_PID"
[ "$STOP_STATUS" = 0 ] || fail "C exit status $STOP_STATUS"
bridge_stop "$B_PID"
[ "$STOP_STATUS" = 0 ] || fail "B exit status $STOP_STATUS"
bridge_stop "$A_PID"
[ "$STOP_STATUS" = 0 ] || fail "A exit status $STOP_STATUS"
echo "ok - live cache: events reach B's cache, hits counted, bypassed and exact while the broker was down, back after"
