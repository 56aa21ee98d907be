#!/usr/bin/env bash
# P11 of docs/performance.md — trending: sharecount_top('article', '24 hours', 10)
# with KEYS keys shared in the window (docs/extension.md, "Channels and trends").
#
# The state is built through the real apply path: sharecount_apply_batch of
# generated share_created jobs in batches of 5,000 — one job per key (so every
# key is in the window), then 2 x KEYS more on skewed keys (key =
# KEYS * random()^3: a few hot keys, a long tail), each with a timestamp spread
# over the last 24 hours and one of three channels.  That is about 2.6 history
# rows per key (257k rows at 100k keys).
#   measured  the median of ROUNDS calls of sharecount_top('article', '24 hours', 10)
#   baseline  the median of the same answer summed from sharecount.history (what
#             sharecount_top does for windows the trailing window does not fit)
# Both medians are in-database wall time of one call (clock_timestamp around an
# EXECUTE, plpgsql), after one warm-up call each; the answers must be equal.
#
# Usage: bench/p11_top.sh [keys (default 100000)] [rounds (default 21)]
# Prints its row; writes bench/results/p11_top.json.  Not a test: the only
# assertion is that both queries give the same top 10.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
keys=${1:-100000}; rounds=${2:-21}
cd "$SC_ROOT"
sc_init
sc_bench_pg_start
sc_psql >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION sharecount;
CREATE FUNCTION p11_median_ms(sql text, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE
	t timestamptz;
	ms float8[] := '{}';
BEGIN
	EXECUTE sql;						-- warm-up
	FOR i IN 1..n LOOP
		t := clock_timestamp();
		EXECUTE sql;
		ms := ms || extract(epoch FROM clock_timestamp() - t) * 1000;
	END LOOP;
	RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END
\$\$;
CREATE FUNCTION p11_direct() RETURNS TABLE (content_id text, shares bigint) LANGUAGE sql AS \$\$
	SELECT h.content_id, sum(h.shares)::bigint FROM sharecount.history h
	WHERE h.content_type = 'article' AND h.hour >= date_trunc('hour', now() - interval '24 hours', 'UTC')
	GROUP BY 1 HAVING sum(h.shares) > 0 ORDER BY 2 DESC, 1 LIMIT 10
\$\$;
SQL
t0=$SECONDS
total=$(( 3 * keys ))
for (( first = 0; first < total; first += 5000 )); do
  sc_psql -c "SELECT count(*) FROM sharecount_apply_batch(ARRAY(
    SELECT jsonb_build_object('pattern', 'share_created', 'data', jsonb_build_object(
      'jobId', 'p11-' || n, 'shareId', NULL, 'userId', NULL, 'contentType', 'article',
      'contentId', CASE WHEN n < $keys THEN n ELSE floor($keys * power(random(), 3))::int END::text,
      'channelId', (ARRAY['twitter', 'facebook', 'mail'])[1 + n % 3],
      'timestamp', to_char((now() - random() * interval '24 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')))
    FROM generate_series($first, least($first + 4999, $total - 1)) n)) WHERE status = 'applied'" >/dev/null
done
build_s=$(( SECONDS - t0 ))
sc_psql -c "VACUUM ANALYZE sharecount.history" -c "VACUUM ANALYZE sharecount.trend_window" >/dev/null
rows=$(sc_psql -c "SELECT count(*) FROM sharecount.history")
in_window=$(sc_psql -c "SELECT count(DISTINCT content_id) FROM sharecount.history WHERE hour >= date_trunc('hour', now() - interval '24 hours', 'UTC')")
same=$(sc_psql -c "SELECT (SELECT array_agg(t) FROM sharecount_top('article', '24 hours', 10) t) = (SELECT array_agg(t) FROM p11_direct() t)")
[ "$same" = t ] || { echo "p11_top: sharecount_top and the sum over history disagree" >&2; exit 1; }
top_ms=$(sc_psql -c "SELECT round(p11_median_ms('SELECT * FROM sharecount_top(''article'', ''24 hours'', 10)', $rounds)::numeric, 3)")
direct_ms=$(sc_psql -c "SELECT round(p11_median_ms('SELECT * FROM p11_direct()', $rounds)::numeric, 3)")
ratio=$(awk -v a="$top_ms" -v b="$direct_ms" 'BEGIN{printf "%.4f", a / b}')
ok=$(awk -v a="$top_ms" 'BEGIN{print (a <= 50) ? "met" : "NOT met"}')
printf '%-4s %-52s %12s %12s %8s %s\n' id what measured baseline ratio status
printf '%-4s %-52s %12s %12s %8s %s\n' P11 "sharecount_top 24 h ms / sum over history ms" "$top_ms" "$direct_ms" "$ratio" "$ok"
echo "# $in_window keys in the window, $rows history rows, state built in ${build_s}s through sharecount_apply_batch" >&2
mkdir -p bench/results
cat > bench/results/p11_top.json <<JSON
{"P11": {"measured": $top_ms, "baseline": $direct_ms, "ratio": $ratio, "unit": "ms (median of $rounds calls)",
         "keys_in_window": $in_window, "history_rows": $rows, "jobs": $total, "build_seconds": $build_s,
         "target": "<= 50 ms", "met": $([ "$ok" = met ] && echo true || echo false)}}
JSON
