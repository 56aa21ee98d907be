#!/usr/bin/env bash
# The http role's libmicrohttpd threads answer single counts themselves, on a
# PostgreSQL connection of their own (docs/http.md "Threads"):
#   1. concurrent single counts are answered right, and counted in
#      sharecount_http_pool_local_jobs_total (the threads), not handed to the
#      workers; a batch read (/counts) still goes to the workers, and its
#      answer wakes the thread at once (/readyz's median under 100 ms);
#   2. the bridge's sessions terminated by the server: every count is still a
#      200 with the right number (the threads hand their jobs to the workers,
#      local_handed_total grows), and the threads make their connections again
#      (local_jobs_total grows again);
#   3. a stalled server (the bridge's backends SIGSTOPped, http_db_timeout_ms
#      8000): /healthz keeps answering within 1 s on every thread (a thread
#      waits on PostgreSQL 100 ms at most, then leaves that connection), and
#      a count asked meanwhile is answered (no hang); after SIGCONT counts are
#      right again.
# Asserts on HTTP answers and /metrics, never on log text.
. "$(dirname "$0")/bridge.inc"
e2e_setup http_loop
http_seed_counts hl

PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT
bridge_start --roles=http --http_listen="127.0.0.1:$PORT" --http_pool_size=2 --http_db_timeout_ms=8000 \
  --http_cache_entries=0 # every count reads the database (no cache, docs/live.md)
metric() { curl -s --max-time 20 "$B/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
http_wait_ready "$B"

burst() { http_count_burst "$B" "$1"; }

# 1. single counts are the threads'; a batch read is the workers'
grep -q '^# TYPE sharecount_http_pool_local_jobs_total counter$' <(curl -s --max-time 20 "$B/metrics") ||
  fail "/metrics has no sharecount_http_pool_local_jobs_total counter"
local0=$(metric sharecount_http_pool_local_jobs_total)
handed0=$(metric sharecount_http_pool_local_handed_total)
burst "first burst"
local1=$(metric sharecount_http_pool_local_jobs_total)
[ $((local1 - local0)) -ge 60 ] || fail "local_jobs_total grew by $((local1 - local0)) for 60 counts"
[ "$(metric sharecount_http_pool_local_handed_total)" = "$handed0" ] || fail "counts handed to the workers while the server was up"
sent0=$(metric sharecount_http_pool_jobs_sent_total)
curl -s --max-time 20 "$B/share-links/counts/article?ids=k1,k6" | grep -q '"counts":{"k1":1,"k6":6}' || fail "/counts"
[ "$(metric sharecount_http_pool_local_jobs_total)" = "$local1" ] || fail "a /counts read was counted as a thread's single count"
[ "$(metric sharecount_http_pool_jobs_sent_total)" -gt "$sent0" ] || fail "no job sent for /counts"

# 1b. an answer a worker resumes wakes its libmicrohttpd thread at once (libmicrohttpd alone can miss
# such a resume and leave it to the thread's next 200 ms tick): the median of 15 /readyz (a worker's
# SELECT 1) is under 100 ms
for i in $(seq 15); do curl -s -o /dev/null -w '%{time_total}\n' --max-time 10 "$B/readyz"; done | sort -n > "$SC_TMP/$E2E_NAME.readyz"
med=$(sed -n 8p "$SC_TMP/$E2E_NAME.readyz")
awk -v t="$med" 'BEGIN { exit !(t < 0.1) }' || fail "/readyz took $med s (median of 15): a resume waited for the thread's tick"

# 2. the server ends the bridge's sessions: counts still right, connections made again
n=$(q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'sharecount-bridge http'")
[ "$n" -ge 1 ] || fail "no session of the bridge to terminate"
burst "burst after the sessions were terminated"
handed1=$(metric sharecount_http_pool_local_handed_total)
[ "$handed1" -gt "$handed0" ] || fail "no count handed to the workers after the threads' sessions were terminated"
sleep 1.5 # > SC_HTTP_LOCAL_RETRY_MS: the threads connect again
local2=$(metric sharecount_http_pool_local_jobs_total)
burst "burst after the threads' retry interval"
[ $(( $(metric sharecount_http_pool_local_jobs_total) - local2 )) -ge 60 ] ||
  fail "the threads did not answer counts again after their connections were lost"

# 3. a stalled server: /healthz keeps answering, a count does not hang
pids=$(q "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'sharecount-bridge http'")
[ -n "$pids" ] || fail "no session of the bridge to stall"
sc_on_exit "kill -CONT $pids 2>/dev/null"
kill -STOP $pids
(curl -s -o "$SC_TMP/$E2E_NAME.stalled" -w '%{http_code}' --max-time 30 "$B/share-links/count/article/k4" \
  > "$SC_TMP/$E2E_NAME.stalled.code") &
cpid=$!
slow=0; askers=()
# three connections a round (a count, two /healthz): the door's round robin puts
# counts and /healthz on every thread
for i in $(seq 8); do
  curl -s -o /dev/null --max-time 10 "$B/share-links/count/article/k$((i % 6 + 1))" & # keep the threads asking
  askers+=($!)
  sleep 0.1
  for j in 1 2; do
    t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "$B/healthz")
    [ "${t% *}" = 200 ] || fail "/healthz during the stall: $t"
    awk -v t="${t#* }" 'BEGIN { exit !(t < 1.0) }' || slow=$((slow + 1))
  done
  sleep 0.2
done
kill -CONT $pids
wait "$cpid"
[ "$slow" = 0 ] || fail "/healthz took 1 s or more $slow times of 16 while the server was stalled"
code=$(cat "$SC_TMP/$E2E_NAME.stalled.code")
case "$code" in
  200) grep -q '"shareCount":4}' "$SC_TMP/$E2E_NAME.stalled" || fail "count during the stall: $(cat "$SC_TMP/$E2E_NAME.stalled")" ;;
  503) grep -q '"statusCode":503' "$SC_TMP/$E2E_NAME.stalled" || fail "503 not in the JSON shape" ;;
  *) fail "a count asked during the stall was answered $code" ;;
esac
wait "${askers[@]}" # not a bare wait: the bridge is a child too
burst "burst after the stall"

bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge exit status $STOP_STATUS"
echo "ok - threads answer single counts; sessions lost: handed over and remade; stall: /healthz fast, count $code"
