#!/usr/bin/env bash
# e2e: the http role reads from a streaming replica (docs/bridge.md, "Read
# replicas"; docs/http.md).  A replica of the shared cluster
# (sc_pg_replica_start), a publisher/consumer bridge applying counts on the
# primary, and two http-only bridges reading from the replica:
#   H  read_max_lag_ms = 1000: the bridge under test;
#   S  read_max_lag_ms = 1 hour: never leaves the replica for lag, so its
#      answers show what the replica holds.
# Cases, each checked by the count a GET answers, by sharecount_read_source /
# sharecount_replica_lag_seconds on /metrics, and by which server ran H's
# reads (pg_stat_activity: a sharecount_get started after a mark, by the
# application_name H's conninfos carry):
#   1. replica healthy: reads served by the replica;
#   2. replay paused on the replica, then writes on the primary: H sends reads
#      to the primary and shows the fresh count; S (still on the replica)
#      shows the old one, and the lag metric passes read_max_lag_ms;
#   3. replay resumed: H reads from the replica again;
#   4. replica stopped during a stream of GETs: every GET is answered 200 (no
#      503), H reads from the primary and shows fresh counts;
#   5. replica started again: H goes back to it.
. "$(dirname "$0")/bridge.inc"
e2e_setup http_replica
W=$SC_TMP/http_replica
mkdir -p "$W"
MAX_LAG_MS=1000           # H's read_max_lag_ms
WAIT_S=60                 # deadline of every wait (generous: shared, slow machine)
GETS_DURING_STOP=150      # sequential GETs while the replica stops

sc_pg_replica_start || fail "cannot start a streaming replica"
R_URL=${SC_REPLICA_URL/dbname=postgres/dbname=$E2E_DB}
rq() { sc_replica_psql -d "$E2E_DB" -c "$1"; }
bridge_start              # publisher + consumer: counts are applied on the primary

# http_start NAME MAX_LAG_MS: an http-only bridge; sets PORT_<NAME>, PID_<NAME>.
http_start() {
  local name=$1 port
  port=$(sc_free_port)
  "$BRIDGE" -c /dev/null --roles=http --http_listen="127.0.0.1:$port" \
    --pg_conninfo="$E2E_PGURL application_name=replica_$name" \
    --pg_read_conninfo="$R_URL application_name=replica_$name" \
    --read_max_lag_ms="$2" --read_check_interval_ms=100 > "$W/$name.log" 2>&1 &
  eval "PORT_$name=$port PID_$name=$!"
  sc_on_exit "kill $! 2>/dev/null"
}
url() { local p="PORT_$1"; echo "http://127.0.0.1:${!p}$2"; }
count() { curl -s --max-time 10 "$(url "$1" "/share-links/count/article/$2")" | jq -r '.shareCount // "error"'; }
metric() { curl -s --max-time 10 "$(url "$1" /metrics)" | awk -v m="$2" '$1 == m { print $2 }'; }
source_is() { [ "$(metric "$1" "sharecount_read_source{server=\"$2\"}")" = 1 ]; }
lag_over() { awk -v l="$(metric "$1" sharecount_replica_lag_seconds)" -v s="$2" 'BEGIN { exit !(l != "" && l > s) }'; }
count_is() { [ "$(count "$1" "$2")" = "$3" ]; }
# wait_for WHAT CMD...: retry CMD until it succeeds, or fail after WAIT_S.
wait_for() {
  local what=$1 end=$((SECONDS + WAIT_S)); shift
  until "$@"; do [ $SECONDS -ge $end ] && fail "after ${WAIT_S}s: $what"; sleep 0.2; done
}
# ran_on SERVER NAME MARK: bridge NAME's workers started a sharecount_get on
# SERVER (primary|replica) after MARK (a timestamptz; both servers share the clock).
ran_on() {
  local sql="SELECT count(*) FROM pg_stat_activity WHERE application_name = 'replica_$2'
    AND query LIKE '%sharecount_get%(%' AND query_start > '$3'" # sharecount_get or _versioned (the cache's reads)
  if [ "$1" = replica ]; then [ "$(rq "$sql")" -gt 0 ]; else [ "$(q "$sql")" -gt 0 ]; fi
}
mark() { q "SELECT clock_timestamp()"; }
# read_until NAME KEY WANT: GET until bridge NAME answers WANT for KEY.
read_until() { wait_for "$1 answers $2 = $3 (last: $(count "$1" "$2"))" count_is "$1" "$2" "$3"; }

http_start H "$MAX_LAG_MS"
http_start S 3600000
for b in H S; do
  wait_for "bridge $b ready" curl -sf --max-time 5 -o /dev/null "$(url $b /readyz)"
done

# --------------------------------------------------- 1. replica healthy ----
insert_rows 3 1           # key a0
wait_drained
for b in H S; do
  wait_for "$b reads from the replica" source_is $b replica
  read_until $b a0 3
done
m=$(mark)
count H a0 >/dev/null
wait_for "H's read ran on the replica" ran_on replica H "$m"
ran_on primary H "$m" && fail "H's read also ran on the primary"
lag_over H 0.5 && fail "lag $(metric H sharecount_replica_lag_seconds) s on a healthy replica"
[ -n "$(metric H sharecount_outbox_depth)" ] || fail "no outbox gauge: sharecount_stats() failed on the replica"
echo "ok 1 - reads served by the replica (H and S: read_source replica, sharecount_get on the replica only)"

# ------------------------------------------------------ 2. replay paused ----
rq "SELECT pg_wal_replay_pause()" >/dev/null
insert_rows 2 1           # a0: 3 -> 5 on the primary only
wait_drained
read_until H a0 5
wait_for "H read_source primary" source_is H primary
lag_over H "$(awk -v m=$MAX_LAG_MS 'BEGIN { print m / 1000 }')" ||
  fail "H on the primary but lag $(metric H sharecount_replica_lag_seconds) s <= read_max_lag_ms"
[ "$(count S a0)" = 3 ] || fail "S should still read the paused replica (3), got $(count S a0)"
source_is S replica || fail "S (read_max_lag_ms 1 h) left the replica"
m=$(mark)
[ "$(count H a0)" = 5 ] || fail "H should read the primary's fresh count"
wait_for "H's read ran on the primary" ran_on primary H "$m"
echo "ok 2 - replay paused: H reads fresh counts from the primary (lag $(metric H sharecount_replica_lag_seconds) s), S still sees the replica's 3"

# ----------------------------------------------------- 3. replay resumed ----
rq "SELECT pg_wal_replay_resume()" >/dev/null
wait_for "H back on the replica" source_is H replica
read_until S a0 5
m=$(mark)
[ "$(count H a0)" = 5 ] || fail "H after resume: $(count H a0), want 5"
wait_for "H's read ran on the replica after resume" ran_on replica H "$m"
lag_over H 0.5 && fail "lag $(metric H sharecount_replica_lag_seconds) s after resume"
echo "ok 3 - replay resumed: H reads from the replica again"

# ---------------------------------------------------- 4. replica stopped ----
kill "$PID_S" 2>/dev/null || true
( for _ in $(seq $GETS_DURING_STOP); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "$(url H /share-links/count/article/a0)"
  done ) > "$W/codes" &
GETS=$!
sleep 0.3                 # let the stream start (the check below does not depend on it)
sc_pg_replica_stop fast
wait "$GETS"
[ "$(grep -c . "$W/codes")" = "$GETS_DURING_STOP" ] || fail "only $(grep -c . "$W/codes") GETs answered"
bad=$(grep -vc '^200$' "$W/codes" || true)
[ "$bad" = 0 ] || fail "$bad of $GETS_DURING_STOP GETs failed while the replica stopped: $(sort "$W/codes" | uniq -c | tr '\n' ' ')"
wait_for "H read_source primary with the replica down" source_is H primary
insert_rows 1 1           # a0: 6
wait_drained
[ "$(count H a0)" = 6 ] || fail "H with the replica down: $(count H a0), want 6"
curl -sf --max-time 10 -o /dev/null "$(url H /readyz)" || fail "/readyz not 200 with the replica down"
echo "ok 4 - replica stopped: $GETS_DURING_STOP GETs all 200, fresh counts from the primary"

# ---------------------------------------------------- 5. replica is back ----
sc_pg_replica_ctl start || fail "cannot restart the replica"
wait_for "H back on the replica after its restart" source_is H replica
m=$(mark)
[ "$(count H a0)" = 6 ] || fail "H after the replica's restart: $(count H a0), want 6"
wait_for "H's read ran on the restarted replica" ran_on replica H "$m"
echo "ok 5 - replica back: H reads from it again"
grep -h "reads go to" "$W/H.log" | sed 's/^/# H: /'
