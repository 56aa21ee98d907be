# Sourced by bench/p10_cache.sh and bench/p10_callgrind.sh: P10's state and
# the wait for a bridge's events feed (docs/performance.md "P10").
#   p10_seed N           the extension re-created, article/1..N each holding a count
#   p10_metric BASE KEY  a value of BASE/metrics
#   p10_await_stream BASE TRIES WHO   wait (0.2 s a try) for sharecount_event_stream_up 1, else exit 1
p10_seed() {
  sc_psql >/dev/null <<SQL
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sharecount CASCADE;
CREATE EXTENSION sharecount;
SELECT count(sharecount_apply(jsonb_build_object('pattern', 'share_count_update', 'data',
  jsonb_build_object('jobId', 'p10-' || g, 'contentType', 'article', 'contentId', g::text,
    'operation', 'increment', 'amount', g, 'timestamp', '2026-01-01T00:00:00.000Z'))))
  FROM generate_series(1, $1) g;
SQL
}
p10_metric() { curl -s --max-time 20 "$1/metrics" | awk -v k="$2" '$1 == k { print $2 }'; }
p10_await_stream() {
  local i
  for i in $(seq "$2"); do
    [ "$(p10_metric "$1" sharecount_event_stream_up)" = 1 ] && return 0
    sleep 0.2
  done
  echo "$3: the bridge's event stream never came up:" >&2; cat "$SC_TMP/bridge.log" >&2; exit 1
}
