#!/usr/bin/env bash
# The http role's database pool on /metrics (docs/http.md, "GET /metrics"):
#   - every sharecount_http_pool_* gauge and counter is rendered, each error
#     class labelled;
#   - concurrent single counts are all answered (200, right number) and counted:
#     jobs sent >= requests, batches, and coalesced reads (retried in bursts
#     until one happened: coalescing needs two counts in one batch);
#   - an SQL error (the reading role may not run sharecount_get_many) is a 500
#     counted as class "sql", exactly once per request, and nothing else;
#   - a pooled connection the server closed while idle (idle_session_timeout,
#     SQLSTATE 57P05) is made again: the next count is a 200, not an error,
#     and connects_total grows.
# Asserts on /metrics and HTTP answers only, never on log text.
. "$(dirname "$0")/bridge.inc"
e2e_setup http_pool_metrics
ROLE=pool_reader_$$
q "CREATE ROLE $ROLE LOGIN;
   REVOKE EXECUTE ON FUNCTION sharecount_get_many(text, text[]) FROM PUBLIC;
   GRANT EXECUTE ON FUNCTION sharecount_stats() TO $ROLE;
   ALTER ROLE $ROLE SET idle_session_timeout = '1500ms';" >/dev/null || fail "reader role"
sc_on_exit "sc_psql -d '$E2E_DB' -c 'DROP OWNED BY $ROLE'; sc_psql -c 'DROP ROLE IF EXISTS $ROLE'"
http_seed_counts pm

PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT
bridge_start --roles=http --http_listen="127.0.0.1:$PORT" --http_pool_size=2 --http_db_timeout_ms=5000 \
  --pg_conninfo="$E2E_PGURL user=$ROLE" --http_cache_entries=0 # every count goes to the pool (no cache, docs/live.md)
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@"; }
metric() { curl -s --max-time 20 "$B/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
http_wait_ready "$B"

# 1. every pool metric is there
curl -s --max-time 20 "$B/metrics" > "$SC_TMP/$E2E_NAME.metrics" || fail "GET /metrics"
for m in queued in_flight busy_workers jobs_sent_total batches_total batches_single_total \
         batches_overlap_total coalesced_reads_total coalesced_jobs_total coalesced_keys_total connects_total \
         local_jobs_total local_handed_total \
         'errors_total{class="sql"}' 'errors_total{class="unavailable"}' 'errors_total{class="timeout"}' \
         'errors_total{class="shutdown"}'; do
  grep -qF "sharecount_http_pool_$m " "$SC_TMP/$E2E_NAME.metrics" || fail "/metrics has no sharecount_http_pool_$m"
done
grep -q '^# TYPE sharecount_http_pool_jobs_sent_total counter$' "$SC_TMP/$E2E_NAME.metrics" || fail "jobs_sent_total type"
grep -q '^# TYPE sharecount_http_pool_queued gauge$' "$SC_TMP/$E2E_NAME.metrics" || fail "queued type"

# 2. bursts of concurrent single counts: answered, counted, coalesced
sent0=$(metric sharecount_http_pool_jobs_sent_total)
bursts=0
while :; do
  bursts=$((bursts + 1))
  http_count_burst "$B" "burst $bursts"
  [ "$(metric sharecount_http_pool_coalesced_reads_total)" -gt 0 ] && break
  [ "$bursts" -lt 20 ] || fail "no coalesced read in 20 bursts of 60 concurrent counts"
done
sent=$(( $(metric sharecount_http_pool_jobs_sent_total) - sent0 ))
[ "$sent" -ge $((bursts * 60)) ] || fail "jobs_sent_total grew by $sent for $((bursts * 60)) counts"
[ "$(metric sharecount_http_pool_batches_total)" -ge 1 ] || fail "no batch counted"
[ "$(metric sharecount_http_pool_coalesced_jobs_total)" -ge 2 ] || fail "a coalesced read answered fewer than 2 counts"
[ "$(metric sharecount_http_pool_coalesced_keys_total)" -ge 1 ] || fail "a coalesced read read no key"
[ "$(metric sharecount_http_pool_queued)" = 0 ] || fail "jobs still queued when idle"
[ "$(metric sharecount_http_pool_in_flight)" -le 1 ] || fail "more than the scrape itself in flight when idle"
[ "$(metric 'sharecount_http_pool_errors_total{class="sql"}')" = 0 ] || fail "sql errors before any was caused"

# 3. an SQL error is a 500 counted once per request, as class sql
for i in 1 2 3; do
  [ "$(status "$B/share-links/counts/article?ids=k1,k2")" = 500 ] || fail "counts without EXECUTE: not a 500"
done
[ "$(metric 'sharecount_http_pool_errors_total{class="sql"}')" = 3 ] || fail "sql errors counted: $(metric 'sharecount_http_pool_errors_total{class="sql"}'), expected 3"
[ "$(metric 'sharecount_http_pool_errors_total{class="unavailable"}')" = 0 ] || fail "unavailable counted for SQL errors"
[ "$(status "$B/share-links/count/article/k3")" = 200 ] || fail "a single count after the SQL errors"

# 4. connections the server closed while idle (57P05) are made again, no error
c0=$(metric sharecount_http_pool_connects_total)
sleep 4                         # > idle_session_timeout: the server ends both pooled sessions
for i in 1 2 3 4; do
  [ "$(status "$B/share-links/count/article/k2")" = 200 ] || fail "count $i after the idle timeout: not a 200"
done
[ "$(metric sharecount_http_pool_connects_total)" -gt "$c0" ] || fail "no new connection after the idle timeout"
[ "$(metric 'sharecount_http_pool_errors_total{class="sql"}')" = 3 ] || fail "the idle timeout was counted as an SQL error"
[ "$(metric 'sharecount_http_pool_errors_total{class="unavailable"}')" = 0 ] || fail "the idle timeout failed a request"

bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge exit status $STOP_STATUS"
echo "ok - pool metrics: $bursts burst(s), $sent jobs sent, sql errors counted, idle-closed connections remade"
