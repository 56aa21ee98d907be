#!/usr/bin/env bash
# P4 (docs/performance.md) — freshness at a steady 1,000 inserts/s: the time from an
# insert's commit until its count is visible.
#
# Setup: a private PostgreSQL (fsync on, track_commit_timestamp on) and a
# private RabbitMQ node (test/lib.sh), the extension, a tracked share_links,
# and bridge/sharecount-bridge with its default settings, roles
# publisher,consumer, HTTP off.  Then bench/bin/p4_load (bench/p4_load.c,
# built here) inserts at a FIXED rate (open-loop schedule over several
# connections), each insert its own transaction on its own probe key
# ('p4', seq), recording the client's clock right after COMMIT returned.
# A 3 s warm-up at the same rate (content type 'p4warm') comes first and is
# not counted.
#
# After the run (waiting until every probe is applied) each probe's freshness
# is joined from the database:
#   fresh   = counts.updated_at − client commit time.  updated_at is
#             clock_timestamp() inside the apply statement (src/apply.c), so
#             it is a few hundred µs to one WAL flush BEFORE the count is
#             visible to readers: a slight under-estimate.
#   visible = pg_xact_commit_timestamp(counts.xmin) − client commit time: the
#             apply transaction's commit time (track_commit_timestamp), the
#             closer "count visible" figure when the server has it on.
# The reported P4 figure is `visible` when available, else `fresh`.
# Validation (exit 1 on failure): every probe key counts exactly 1,
# sum of counts = COUNT(*) of the probe rows, sharecount_verify() finds no
# drift, no insert failed.
#
# Usage: bench/p4_fresh.sh [seconds (default 30)] [rate/s (default 1000)]
# Env: CONNS (load connections, default 16); TAP=1 adds a side consumer on its
# own queue bound to the exchange and reports commit → broker → applied
# (analysis only); PGURL / AMQP_URL to use existing servers (PGURL: a scratch
# database — the extension is dropped and re-created there, share_links too;
# AMQP_URL: the bridge uses exchange/queue names prefixed with p4bench.);
# DIAG=1 keeps the bridge's debug log, the server log of every bridge
# statement with its duration, and the joined per-probe timestamps in
# bench/results/p4_diag/ (for docs/performance.md);
# BRIDGES=N runs N bridges side by side (analysis: a second publisher claims
# while the first waits for confirms);
# BRIDGE_ARGS extra bridge flags (e.g. --apply-linger-ms=0) for experiments.
# Prints table rows; writes bench/results/p4_fresh.json.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
secs=${1:-30}; rate=${2:-1000}; conns=${CONNS:-16}; tap=${TAP:-0}
cd "$SC_ROOT"
sc_init
say() { echo "# p4: $*" >&2; }
diag=${DIAG:-0}

if [ -n "${PGURL:-}" ]; then
  conninfo=$PGURL
  psqlb() { sc_psql -d "$PGURL" "$@"; }
  make -s all >&2
else
  SC_PG_FSYNC=on sc_pg_start "shared_buffers = 256MB" "track_commit_timestamp = on" \
    "log_line_prefix = '%m|%a|'" >&2
  conninfo=$SC_PGURL
  psqlb() { sc_psql "$@"; }
fi
[ -x bridge/sharecount-bridge ] || { echo "bench/p4_fresh.sh: bridge/sharecount-bridge is not built" >&2; exit 1; }
names=()
if [ -n "${AMQP_URL:-}" ]; then
  amqp=$AMQP_URL
  names=(--exchange=p4bench.sharecount --queue=p4bench.jobs --dead-letter-exchange=p4bench.dlx
         --dead-letter-queue=p4bench.dead)
  exchange=p4bench.sharecount
else
  sc_rmq_start >&2
  amqp=$SC_AMQP_URL
  exchange=sharecount
fi

mkdir -p bench/bin
cc -O2 -g -std=gnu11 -Wall -Wextra -Werror -pthread -I"$($PG_CONFIG --includedir)" \
  -o bench/bin/p4_load bench/p4_load.c -L"$($PG_CONFIG --libdir)" -lpq -lrabbitmq

psqlb >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS share_links CASCADE;
DROP EXTENSION IF EXISTS sharecount CASCADE;
CREATE EXTENSION sharecount;
:share_links_ddl
SELECT sharecount_track('share_links');
DROP TABLE IF EXISTS p4_probe;
CREATE TABLE p4_probe (seq bigint PRIMARY KEY, due_us bigint, start_us bigint, commit_us bigint, tap_us bigint);
SQL
ctsok=$(psqlb -c "SELECT current_setting('track_commit_timestamp') = 'on'")
[ "$ctsok" = t ] && ctsbool=true || ctsbool=false

blog=$SC_TMP/bridge.log
if [ "$diag" = 1 ]; then
  # analysis: every bridge statement with its duration in the server log, and
  # the bridge's per-cycle debug lines (ms timestamps)
  export PGOPTIONS="-c log_min_duration_statement=0"
  BRIDGE_ARGS="${BRIDGE_ARGS:-} --log-level=debug"
fi
nbridges=${BRIDGES:-1}
for b in $(seq "$nbridges"); do
  # shellcheck disable=SC2086
  bridge/sharecount-bridge -c /dev/null --pg-conninfo="$conninfo" --amqp-url="$amqp" --roles=publisher,consumer \
    --http-listen= "${names[@]}" ${BRIDGE_ARGS:-} > "$blog.$b" 2>&1 &
  bpid=$!
  sc_on_exit "kill $bpid 2>/dev/null; wait $bpid 2>/dev/null"
  for i in $(seq 200); do
    grep -q 'consumer: consuming' "$blog.$b" && grep -q 'publisher: connected to PostgreSQL' "$blog.$b" && break
    if [ "$i" = 200 ] || ! kill -0 $bpid 2>/dev/null; then
      echo "bench/p4_fresh.sh: the bridge did not start:" >&2; cat "$blog.$b" >&2; exit 1
    fi
    sleep 0.1
  done
done
ln -sf "$blog.1" "$blog"
unset PGOPTIONS
say "$nbridges bridge(s) up ($(bridge/sharecount-bridge --version 2>&1 | head -1)); extra args: ${BRIDGE_ARGS:-none}"

tapargs=()
[ "$tap" = 1 ] && tapargs=(-a "$amqp" -x "$exchange")
say "warm-up: 3 s at $rate/s"
bench/bin/p4_load -d "$conninfo" -o "$SC_TMP/warm.csv" -r "$rate" -s 3 -c "$conns" -t p4warm 2>&1 | sed 's/^/# /' >&2
say "measuring: $secs s at $rate/s on $conns connections${tapargs:+ (with tap)}"
psi() { sed -nE 's/^some .*total=([0-9]+)/\1/p' "/proc/pressure/$1" 2>/dev/null || echo 0; }
cpu0=$(psi cpu); io0=$(psi io); w0=$(date +%s%N)
load_out=$(bench/bin/p4_load -d "$conninfo" -o "$SC_TMP/load.csv" -r "$rate" -s "$secs" -c "$conns" -t p4 \
  "${tapargs[@]}" 2>&1) || { echo "$load_out" >&2; echo "bench/p4_fresh.sh: the load generator failed" >&2; exit 1; }
echo "# $load_out" >&2
# CPU / IO pressure during the run (PSI "some": share of wall time in which at
# least one runnable task waited for a CPU / for IO): a shared machine's noise
# made visible.  -1 where /proc/pressure is not available.
w1=$(date +%s%N); cpu1=$(psi cpu); io1=$(psi io)
cpu_psi=$(awk -v a="$cpu0" -v b="$cpu1" -v t=$(( (w1 - w0) / 1000 )) 'BEGIN{printf "%.1f", (a>0 && b>0) ? (b-a)*100/t : -1}')
io_psi=$(awk -v a="$io0" -v b="$io1" -v t=$(( (w1 - w0) / 1000 )) 'BEGIN{printf "%.1f", (a>0 && b>0) ? (b-a)*100/t : -1}')
say "pressure during the run: cpu some ${cpu_psi}% io some ${io_psi}% (load average $(cut -d' ' -f1 /proc/loadavg))"
total=$(wc -l < "$SC_TMP/load.csv")

# wait until every probe is applied (the outbox and the queue drained)
t0=$SECONDS
until [ "$(psqlb -c "SELECT count(*) FROM sharecount.counts WHERE content_type = 'p4'")" = "$total" ]; do
  if [ $((SECONDS - t0)) -gt 120 ]; then
    echo "bench/p4_fresh.sh: not drained after 120 s:" >&2
    psqlb -c "SELECT sharecount_stats()" >&2; tail -20 "$blog" >&2; exit 1
  fi
  sleep 0.2
done
say "drained $((SECONDS - t0)) s after the last insert returned"

psqlb -c "\\copy p4_probe FROM '$SC_TMP/load.csv' WITH (FORMAT csv)"

# validation: the measurement means something only if the counts are exact
bad=$(psqlb <<'SQL'
SELECT (SELECT count(*) FROM sharecount.counts c WHERE c.content_type = 'p4' AND c.share_count <> 1)
     + (SELECT count(*) FROM p4_probe WHERE commit_us = 0)
     + abs((SELECT coalesce(sum(share_count), 0) FROM sharecount.counts WHERE content_type = 'p4')
           - (SELECT count(*) FROM share_links WHERE content_type = 'p4'))
     + abs((SELECT count(*) FROM share_links WHERE content_type = 'p4') - (SELECT count(*) FROM p4_probe))
     + (SELECT count(*) FROM sharecount_verify(100));
SQL
)
if [ "$bad" != 0 ]; then
  echo "bench/p4_fresh.sh: validation FAILED ($bad problems): counts differ from COUNT(*)" >&2
  psqlb -c "SELECT * FROM sharecount_verify(10)" >&2; exit 1
fi
say "validated: $total probe keys each count 1, sum of counts = COUNT(*) = $total, sharecount_verify() empty"

# freshness figures (ms), computed in SQL from the joined timestamps
figures=$(psqlb -F ' ' <<SQL
WITH j AS (
  SELECT p.*, extract(epoch FROM c.updated_at) * 1e6 AS upd_us,
         CASE WHEN $ctsbool THEN extract(epoch FROM pg_xact_commit_timestamp(c.xmin)) * 1e6 END AS vis_us
  FROM p4_probe p JOIN sharecount.counts c ON c.content_type = 'p4' AND c.content_id = p.seq::text),
d AS (SELECT (upd_us - commit_us) / 1e3 AS fresh, (vis_us - commit_us) / 1e3 AS vis,
             CASE WHEN tap_us > 0 THEN (tap_us - commit_us) / 1e3 END AS to_broker,
             CASE WHEN tap_us > 0 THEN (coalesce(vis_us, upd_us) - tap_us) / 1e3 END AS after_broker,
             start_us - due_us AS lag_us FROM j)
SELECT round((count(*) / ((SELECT max(commit_us) - min(start_us) FROM p4_probe) / 1e6))::numeric, 1),
       count(*) FILTER (WHERE lag_us > 1000),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY fresh)::numeric, 2),
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY fresh)::numeric, 2),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY fresh)::numeric, 2),
       round(max(fresh)::numeric, 2),
       count(*) FILTER (WHERE fresh < 0),
       coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY vis)::numeric, 2)::text, 'null'),
       coalesce(round(percentile_cont(0.95) WITHIN GROUP (ORDER BY vis)::numeric, 2)::text, 'null'),
       coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY vis)::numeric, 2)::text, 'null'),
       coalesce(round(max(vis)::numeric, 2)::text, 'null'),
       coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY to_broker)::numeric, 2)::text, 'null'),
       coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY to_broker)::numeric, 2)::text, 'null'),
       coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY after_broker)::numeric, 2)::text, 'null'),
       coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY after_broker)::numeric, 2)::text, 'null')
FROM d;
SQL
)
read -r achieved late f50 f95 f99 fmax fneg v50 v95 v99 vmax t50 t99 a50 a99 <<<"$figures"
[ -n "${a99:-}" ] || { echo "bench/p4_fresh.sh: computing the figures failed" >&2; exit 1; }
if [ "$diag" = 1 ]; then
  out=bench/results/p4_diag; rm -rf "$out"; mkdir -p "$out"
  cat "$blog".* > "$out/bridge.log"; cp "$SC_TMP/pg.log" "$out/pg.log" 2>/dev/null || true
  psqlb -c "\\copy (SELECT p.seq, p.due_us, p.start_us, p.commit_us, p.tap_us, (extract(epoch FROM c.updated_at) * 1e6)::bigint, (extract(epoch FROM pg_xact_commit_timestamp(c.xmin)) * 1e6)::bigint FROM p4_probe p JOIN sharecount.counts c ON c.content_type = 'p4' AND c.content_id = p.seq::text ORDER BY p.seq) TO '$PWD/$out/probes.csv' WITH (FORMAT csv)"
  say "diagnostics in $out/ (probes.csv: seq,due,start,commit,tap,updated_at,apply_commit in µs)"
fi
if [ "$ctsok" = t ]; then p50=$v50 p95=$v95 p99=$v99 pmax=$vmax basis=commit_timestamp
else p50=$f50 p95=$f95 p99=$f99 pmax=$fmax basis=updated_at; fi
ok=$(awk -v a="$p50" -v b="$p99" 'BEGIN{print (a<=10 && b<=50)?"met":"NOT met"}')
say "freshness by counts.updated_at (ms): p50 $f50 p95 $f95 p99 $f99 max $fmax ($fneg below 0)"
[ "$ctsok" = t ] && say "freshness by the apply commit timestamp (ms): p50 $v50 p95 $v95 p99 $v99 max $vmax"
[ "$tap" = 1 ] && say "split (ms): commit → at broker p50 $t50 p99 $t99; at broker → applied p50 $a50 p99 $a99"
say "achieved $achieved inserts/s (target $rate); $late of $total inserts started > 1 ms behind schedule"
printf '%-4s %-44s %12s %12s %8s %8s %s\n' id what measured baseline ratio target status
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P4 "freshness p50 ms at $achieved ins/s" "$p50" - - "<=10" "$ok"
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P4 "freshness p99 ms (p95 $p95, max $pmax)" "$p99" - - "<=50" "$ok"
mkdir -p bench/results
cat > bench/results/p4_fresh.json <<JSON
{"P4": {"p50_ms": $p50, "p95_ms": $p95, "p99_ms": $p99, "max_ms": $pmax, "target_p50_ms": 10, "target_p99_ms": 50,
        "met": $([ "$ok" = met ] && echo true || echo false), "basis": "$basis"},
 "inserts": $total, "seconds": $secs, "rate_target": $rate, "rate_achieved": $achieved, "connections": $conns,
 "started_late_over_1ms": $late,
 "by_updated_at_ms": {"p50": $f50, "p95": $f95, "p99": $f99, "max": $fmax, "negative": $fneg},
 "by_commit_timestamp_ms": {"p50": $v50, "p95": $v95, "p99": $v99, "max": $vmax},
 "tap_ms": {"commit_to_broker_p50": $t50, "commit_to_broker_p99": $t99, "broker_to_applied_p50": $a50, "broker_to_applied_p99": $a99},
 "cpu_pressure_pct": $cpu_psi, "io_pressure_pct": $io_psi, "loadavg": $(cut -d' ' -f1 /proc/loadavg),
 "bridge_args": "${BRIDGE_ARGS:-}", "bridges": $nbridges, "validated": true}
JSON
