#!/usr/bin/env bash
# P8 and P8s of docs/performance.md — a week of dedupe state (docs/extension.md, "Dedupe").
#
#   P8   sharecount_apply_batch throughput (batches of 1,000 fresh jobs: 950
#        dense jobIds of one stream, 50 foreign ones like a NestJS emit; 1,000
#        keys; 2 clients, pgbench) against a database holding a week of dedupe
#        state / the same against a database with none.  Each round runs both
#        at the same time for P8_SECONDS (P8_MODE=together, the default: the
#        two share whatever the host gives at that moment, so its swings cancel
#        in the round's ratio), or one after the other for P8_TX batches per
#        client in alternating order (P8_MODE=alternate, the method until
#        2026-12-03).  The ratio is the median of the per-round ratios.
#   P8s  the size of that week of state; sharecount_stats() and a /metrics
#        scrape (a bridge with the http role) at that size, medians; one day of
#        it pruned (sharecount_prune), with the sizes before and after.  Also
#        reported: the time to seal one day (the other part of the daily
#        sharecount_prune, which seals yesterday).
#
# The week (7 days at 1,000 jobs/s = 604.8M jobIds, 5 % foreign) is written
# directly with SQL, as exactly what the apply path leaves (src/dedupe.c):
#   - 574.6M dense jobIds of one stream: 140,274 full 512-byte blocks, their
#     last writes spread over the 7 days;
#   - 6 past days of 4.32M foreign jobIds each: per day one packed row of
#     sorted MD5s per bucket (what a head row moves into its day partition);
#   - today's 4.32M foreign jobIds (a whole day: the worst case) in the
#     65,536 head rows;
#   - the 6 past days sealed by sharecount._dedupe_seal(), the function
#     sharecount_prune() seals with (their Bloom filters; each seal timed).  (Every day holds the same 4.32M hashes, generated
#     once: lookups of new jobIds cost the same, and it saves a minute.)
#   - the stats counter (dedupe_records) set to what that holds.
# The foreign hashes are MD5s of real jobIds ('p8-week-<n>'), so they spread
# over buckets as applied ones do.  Head rows are written once here; the apply
# path rewrites them in place during the day (HOT updates, fillfactor 70), so
# their table may hold up to about twice this size in free space by evening:
# the figure "heads_bytes" shows what that bound adds.
#
# Why together: on a shared 2-core host with ~17 % steal time, rounds run
# one database after the other (alternate) gave per-round ratios of
# 0.71-1.19 in one run, whatever their length (20 or 60 batches per client),
# and the median of 5-7 fell either side of the target by chance
# (docs/performance.md, P8).  Also reported: the WAL full-page images of the
# counted rounds (pg_stat_wal; per database in alternate mode, both together
# otherwise) -- the week's head rows are big (~1 KiB), so the first write of
# each head page after the build's CHECKPOINT logs 8 KiB.
#
# Usage: bench/p8_dedupe.sh [rounds (default 7)]
# Env: P8_MODE (together | alternate), P8_SECONDS (a together round, default
# 5), P8_TX (batches per client in an alternate round, default 60), P8_CLIENTS (2 per database),
# P8_SHARED_BUFFERS (default 256MB, as 1.0 was measured: the week's state does
# not fit, its pages come from the OS cache), P8_STATEMENTS=1 (print each
# database's statements by total time, from pg_stat_statements).
# Prints its rows; writes bench/results/p8_dedupe.json.  Not a test: the only
# assertions are that every benchmark job was applied once.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
rounds=${1:-7}; tx=${P8_TX:-60}; clients=${P8_CLIENTS:-2}; mode=${P8_MODE:-together}; secs=${P8_SECONDS:-5}
MAX_BPS=40                       # batches/s one database may reach in a together round (~20 seen here): sizes the pre-built batches
case $mode in together|alternate) ;; *) echo "bench/p8_dedupe.sh: P8_MODE must be together or alternate" >&2; exit 2;; esac
cd "$SC_ROOT"
sc_init
sb="shared_buffers = ${P8_SHARED_BUFFERS:-256MB}"
if [ -n "${P8_STATEMENTS:-}" ]; then   # diagnosis: the statements' times per database at the end
  sc_bench_pg_start "$sb" "shared_preload_libraries = 'pg_stat_statements'" "pg_stat_statements.track = all"
else
  sc_bench_pg_start "$sb"
fi
qdb() { local db=$1; shift; SC_PSQL_DB=$db sc_psql "$@"; }
origin=0000000000000b8c          # the dense stream of the week and of the benchmark jobs
blocks=140274                    # ceil(574,560,000 / 4,096)
base=$(( blocks * 4096 ))        # benchmark dense ids follow the week's
if [ "$mode" = together ]; then nbatch=$(( (rounds + 1) * secs * MAX_BPS )); else nbatch=$(( (rounds + 1) * clients * tx )); fi

for db in p8_empty p8_week; do
  sc_psql -c "CREATE DATABASE $db" >/dev/null
  qdb $db >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION sharecount;
-- the benchmark's batches, the same in both databases
CREATE TABLE p8_batches (id int PRIMARY KEY, jobs jsonb[] NOT NULL);
INSERT INTO p8_batches
SELECT b, array_agg(jsonb_build_object('pattern', 'share_created', 'data', jsonb_build_object(
		'jobId', CASE WHEN i <= 950 THEN '$origin-' || ($base + (b - 1) * 950 + i) ELSE 'p8-emit-' || b || '-' || i END,
		'shareId', 's' || i, 'contentType', 'article', 'contentId', 'k' || ((b * 7 + i) % 1000),
		'userId', 'u', 'timestamp', '2026-12-02T10:00:00.000Z')) ORDER BY i)
	FROM generate_series(1, $nbatch) b, generate_series(1, 1000) i GROUP BY b;
CREATE SEQUENCE p8_next;
CREATE FUNCTION p8_median_ms(sql text, n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE
	t timestamptz;
	ms float8[] := '{}';
BEGIN
	FOR i IN 1..n LOOP
		t := clock_timestamp();
		EXECUTE sql;
		ms := ms || extract(epoch FROM clock_timestamp() - t) * 1000;
	END LOOP;
	RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END
\$\$;
SQL
done

echo "# building a week of dedupe state in p8_week" >&2
t0=$SECONDS
qdb p8_week >/dev/null <<SQL
SET client_min_messages = warning;
INSERT INTO sharecount.dedupe_dense (origin, block, n, day, bits)
	SELECT x'$origin'::bigint, b, 4096, (now() AT TIME ZONE 'UTC')::date - floor(7 * (1 - (b + 1)::float8 / $blocks))::int,
		decode(repeat('ff', 512), 'hex')
	FROM generate_series(0, $blocks - 1) b;
CREATE TEMP TABLE p8_day AS
	SELECT get_byte(h, 0) * 256 + get_byte(h, 1) AS bucket, string_agg(h, ''::bytea ORDER BY h) AS hashes
	FROM (SELECT decode(md5('p8-week-' || g), 'hex') AS h FROM generate_series(1, 4320000) g) s GROUP BY 1;
INSERT INTO sharecount.dedupe_foreign (slot, day, bucket, hashes)
	SELECT ((d - date '2000-01-01') % 16)::int2, d, bucket, hashes
	FROM (SELECT (now() AT TIME ZONE 'UTC')::date - k AS d FROM generate_series(1, 6) k) days, p8_day;
INSERT INTO sharecount.dedupe_days (day, shard, records)
	SELECT day, 0, sum(octet_length(hashes)) / 16 FROM sharecount.dedupe_foreign GROUP BY 1;
INSERT INTO sharecount.dedupe_foreign_head (bucket, day, hashes)
	SELECT bucket, (now() AT TIME ZONE 'UTC')::date, hashes FROM p8_day;
INSERT INTO sharecount.stats AS s (shard, dedupe_records)
	SELECT -1, (SELECT sum(n) FROM sharecount.dedupe_dense)
		+ (SELECT sum(octet_length(hashes)) / 16 FROM sharecount.dedupe_foreign)
		+ (SELECT sum(octet_length(hashes)) / 16 FROM sharecount.dedupe_foreign_head)
	ON CONFLICT (shard) DO UPDATE SET dedupe_records = s.dedupe_records + excluded.dedupe_records;
-- the past days sealed as sharecount_prune() seals them, the oldest first; the
-- time of each seal (a whole day: 4.32M hashes) kept for the report
CREATE TABLE p8_seal_ms AS SELECT 0::float8 AS ms LIMIT 0;
DO \$\$
DECLARE
	t timestamptz;
BEGIN
	FOR k IN REVERSE 6..1 LOOP
		t := clock_timestamp();
		PERFORM sharecount._dedupe_seal((now() AT TIME ZONE 'UTC')::date - k);
		INSERT INTO p8_seal_ms VALUES (extract(epoch FROM clock_timestamp() - t) * 1000);
	END LOOP;
END
\$\$;
SQL
qdb p8_week -c "VACUUM ANALYZE" >/dev/null
qdb p8_empty -c "VACUUM ANALYZE" >/dev/null
sc_psql -c "CHECKPOINT" >/dev/null
records=$(qdb p8_week -c "SELECT sharecount_stats()->>'dedupe_records'")
seal_ms=$(qdb p8_week -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM p8_seal_ms")
sealed=$(qdb p8_week -c "SELECT count(*) FROM sharecount.dedupe_sealed")
[ "$sealed" = 6 ] || { echo "bench/p8_dedupe.sh: $sealed past days sealed, expected 6" >&2; exit 1; }
echo "# built $records dedupe records in $((SECONDS - t0)) s" >&2

size_sql="SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'sharecount' AND c.relkind = 'r' AND (c.relname LIKE 'dedupe%' OR c.relname = 'applied_jobs')"
state_bytes=$(qdb p8_week -c "$size_sql")
part_sql() { qdb p8_week -c "SELECT coalesce(sum(pg_total_relation_size(relid)), pg_total_relation_size('sharecount.$1'))
  FROM pg_partition_tree('sharecount.$1')"; }
dense_bytes=$(part_sql dedupe_dense); heads_bytes=$(part_sql dedupe_foreign_head)
filter_bytes=$(part_sql dedupe_filter)

# P8: paired rounds
cat > "$SC_TMP/apply.sql" <<'SQL'
SELECT nextval('p8_next') AS bid \gset
SELECT count(*) FROM sharecount_apply_batch((SELECT jobs FROM p8_batches WHERE id = :bid));
SQL
declare -A fpi=([p8_empty]=0 [p8_week]=0 [both]=0)
wal_fpi() { sc_psql -c "SELECT wal_fpi FROM pg_stat_wal"; }
counted() {  # KEY CMD...: run CMD, adding the WAL full-page images written meanwhile to fpi[KEY]
  local k=$1 f0; shift
  f0=$(wal_fpi); "$@"; fpi[$k]=$(( fpi[$k] + $(wal_fpi) - f0 ))
}
run() { tps=$(run_pgbench "$1"); }  # DB: sets tps (jobs/s)
run_pgbench() {  # DB [pgbench length flag]
  sc_as_pg "$SC_PGBIN/pgbench" -n -h "$PGHOST" -p "$PGPORT" -U postgres -c "$clients" -j "$clients" "${2:--t$tx}" \
    -f "$SC_TMP/apply.sql" "$1" 2>&1 | awk '/^tps = / {printf "%.0f", $3 * 1000}'
}
run_together() {  # both databases at once for secs: sets w and e (jobs/s)
  run_pgbench p8_week "-T$secs" > "$SC_TMP/week.tps" & local pw=$!
  run_pgbench p8_empty "-T$secs" > "$SC_TMP/empty.tps" & local pe=$!
  wait $pw $pe
  w=$(cat "$SC_TMP/week.tps"); e=$(cat "$SC_TMP/empty.tps")
}
if [ "$mode" = together ]; then run_together; else run p8_empty; run p8_week; fi  # warm-up round, not counted
[ -z "${P8_STATEMENTS:-}" ] || sc_psql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
ratios=(); weeks=(); empties=()
for r in $(seq "$rounds"); do
  if [ "$mode" = together ]; then counted both run_together
  elif [ $((r % 2)) = 1 ]; then counted p8_empty run p8_empty; e=$tps; counted p8_week run p8_week; w=$tps
  else counted p8_week run p8_week; w=$tps; counted p8_empty run p8_empty; e=$tps; fi
  ratio=$(awk -v w="$w" -v e="$e" 'BEGIN{printf "%.3f", w / e}')
  echo "# round $r: week $w jobs/s, empty $e jobs/s, ratio $ratio" >&2
  ratios+=("$ratio"); weeks+=("$w"); empties+=("$e")
done
if [ -n "${P8_STATEMENTS:-}" ]; then
  for db in p8_empty p8_week; do
    echo "# $db: statements by total time" >&2
    sc_psql -F ' | ' -c "SELECT round(s.total_exec_time::numeric, 1) AS ms, s.calls,
      round((s.total_exec_time / greatest(s.calls, 1))::numeric, 3) AS ms_per_call, left(regexp_replace(s.query, '\s+', ' ', 'g'), 110)
      FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$db' ORDER BY 1 DESC LIMIT 14" >&2
  done
fi
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
p8=$(median "${ratios[@]}"); wmed=$(median "${weeks[@]}"); emed=$(median "${empties[@]}")
for db in p8_empty p8_week; do
  used=$(qdb $db -c "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM p8_next")
  [ "$used" -le "$nbatch" ] || { echo "bench/p8_dedupe.sh: $db ran out of pre-built batches ($used > $nbatch): raise MAX_BPS" >&2; exit 1; }
  got=$(qdb $db -c "SELECT sum(jobs_applied) || ' ' || sum(duplicates) FROM sharecount.stats")
  want="$(( used * 1000 )) 0"
  [ "$got" = "$want" ] || { echo "bench/p8_dedupe.sh: $db applied/duplicates $got, expected $want" >&2; exit 1; }
done

# P8s: stats and a /metrics scrape at that size
stats_ms=$(qdb p8_week -c "SELECT round(p8_median_ms('SELECT sharecount_stats()', 21)::numeric, 3)")
port=$(sc_free_port)
bridge/sharecount-bridge --roles=http --pg-conninfo="host=$PGHOST port=$PGPORT user=postgres dbname=p8_week" \
  --http-listen="127.0.0.1:$port" --log-level=warn > "$SC_TMP/bridge.log" 2>&1 &
bpid=$!
sc_on_exit "kill $bpid 2>/dev/null; wait $bpid 2>/dev/null"
for i in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/metrics" >/dev/null 2>&1 && break
  [ "$i" = 100 ] && { echo "bench/p8_dedupe.sh: bridge did not answer" >&2; cat "$SC_TMP/bridge.log" >&2; exit 1; }
  sleep 0.1
done
scrapes=()
for i in $(seq 21); do
  scrapes+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/metrics" | awk '{printf "%.3f", $1 * 1000}')")
done
metrics_ms=$(median "${scrapes[@]}")

# P8s: prune one day: the day partition of 6 days ago and the dense blocks
# last written before that day ended (cutoff = the start of the day after it)
prune_ms=$(qdb p8_week -c "SELECT round(p8_median_ms(format('SELECT sharecount_prune(%L::interval)',
  now() - (((now() AT TIME ZONE 'UTC')::date - 5)::timestamp AT TIME ZONE 'UTC')), 1)::numeric, 1)")
pruned=$(qdb p8_week -c "SELECT sum(dedupe_records) FROM sharecount.stats")
state_after=$(qdb p8_week -c "$size_sql")
left_days=$(qdb p8_week -c "SELECT count(DISTINCT day) FROM sharecount.dedupe_foreign")

gib=1073741824
ok8=$(awk -v r="$p8" 'BEGIN{print (r >= 0.9) ? "met" : "NOT met"}')
ok8s=$(awk -v s="$state_bytes" -v a="$stats_ms" -v m="$metrics_ms" -v p="$prune_ms" -v g=$gib \
  'BEGIN{print (s <= g && a <= 10 && m <= 10 && p <= 1000) ? "met" : "NOT met"}')
mib() { awk -v b="$1" 'BEGIN{printf "%.0f", b / 1048576}'; }
printf '%-4s %-52s %16s %14s %8s %s\n' id what measured baseline ratio status
printf '%-4s %-52s %16s %14s %8s %s\n' P8 "apply with a week of state / with none (jobs/s)" "$wmed" "$emed" "$p8" "$ok8"
printf '%-4s %-52s %16s %14s %8s %s\n' P8s "state MiB; stats ms; /metrics ms; prune 1 day ms" \
  "$(mib "$state_bytes");$stats_ms;$metrics_ms;$prune_ms" "1024;10;10;1000" "-" "$ok8s"
echo "# records $records ($(mib "$dense_bytes") MiB dense, $(mib "$heads_bytes") MiB today's heads, $(mib "$filter_bytes") MiB filters); sealing a day $seal_ms ms (median of 6)" >&2
if [ "$mode" = together ]; then
  echo "# WAL full-page images in the counted rounds: ${fpi[both]} (both databases)" >&2
else
  echo "# WAL full-page images in the counted rounds: week ${fpi[p8_week]}, empty ${fpi[p8_empty]} ($(( rounds * clients * tx * 50 )) foreign ids, i.e. head touches, per database)" >&2
fi
echo "# after the prune: $pruned records, $(mib "$state_after") MiB, $left_days past days" >&2
mkdir -p bench/results
cat > bench/results/p8_dedupe.json <<JSON
{"P8": {"measured": $wmed, "baseline": $emed, "ratio": $p8, "unit": "jobs/s",
        "rounds": $rounds, "round_ratios": [$(IFS=,; echo "${ratios[*]}")], "clients": $clients,
        "batch": 1000, "mode": "$mode", $([ "$mode" = together ] && echo "\"seconds_per_round\": $secs, \"wal_fpi_both\": ${fpi[both]}," || echo "\"batches_per_client_per_round\": $tx, \"wal_fpi_week\": ${fpi[p8_week]}, \"wal_fpi_empty\": ${fpi[p8_empty]},")
        "target": 0.9, "met": $([ "$ok8" = met ] && echo true || echo false)},
 "P8s": {"measured": "$(mib "$state_bytes") MiB; stats $stats_ms ms; /metrics $metrics_ms ms; prune $prune_ms ms",
         "state_bytes": $state_bytes, "dedupe_records": $records, "dense_bytes": $dense_bytes, "heads_bytes": $heads_bytes, "filter_bytes": $filter_bytes, "seal_day_ms": $seal_ms,
         "stats_ms": $stats_ms, "metrics_ms": $metrics_ms, "prune_ms": $prune_ms,
         "records_after_prune": $pruned, "state_bytes_after_prune": $state_after, "past_days_after_prune": $left_days,
         "target": "<= 1 GiB; <= 10 ms; <= 10 ms; <= 1000 ms", "met": $([ "$ok8s" = met ] && echo true || echo false)}}
JSON
