#!/usr/bin/env bash
# P3 (docs/performance.md) — how fast the bridge drains an outbox backlog, compared with
# the broker alone (and, for information, the bridge's memory meanwhile; P6
# itself, over 1M jobs, is bench/p6_memory.sh).
#
#   backlog  N share_links inserts over 200 keys with no bridge running
#            (N outbox rows, fsync on: real commits)
#   bridge   start one bridge (publisher + consumer, default settings) and time
#            until the outbox is empty and all N jobs are applied; sample its
#            VmRSS every 0.2 s (max, the RSS at 20 % and at the end)
#   raw      bench/raw_broker: N persistent messages of the same average body
#            size, published with confirms (window = publish_batch), then
#            consumed with prefetch 1000 and multiple acks, same broker
#   P3 = bridge rate / raw rate, where raw rate = N / (publish time + consume time)
#
# Usage: bench/p3_drain.sh [N (default 200000)]
# Env: PGURL / AMQP_URL to use existing servers (see sc_bench_servers in
# test/lib.sh: a scratch database; scbench.* names on the broker).
# Prints a table; writes bench/results/p3_drain.json.  Not a test: the
# machine is shared, so treat the figures as indicative.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
N=${1:-200000}
cd "$SC_ROOT"
sc_init
make -s all >&2
sc_bench_servers              # private servers, or PGURL / AMQP_URL (test/lib.sh)
raw=$SC_TMP/raw_broker

sc_setup_tracked
echo "# building a backlog of $N jobs" >&2
left=$N
while [ "$left" -gt 0 ]; do     # 10k rows per transaction
  n=$(( left > 10000 ? 10000 : left ))
  sc_psql -c "INSERT INTO share_links (content_type, content_id, user_id)
              SELECT 'article', 'a' || (g % 200), 'user' || g FROM generate_series(1, $n) g"
  left=$((left - n))
done
depth=$(sc_psql -c "SELECT count(*) FROM sharecount.outbox")
size=$(sc_psql -c "SELECT round(avg(octet_length(body)))::int FROM sharecount.outbox_jobs")
echo "# outbox: $depth rows, average body $size bytes" >&2

log=$SC_TMP/bridge.log
t0=$(date +%s.%N)
sc_bench_bridge "$log"
BP=$SC_BRIDGE_PID
rss20=
bench_sample() { if [ -z "$rss20" ] && [ "$2" -ge $((N / 5)) ]; then rss20=$1; fi; }
sc_bench_watch "$BP" "$log" "$N" "SELECT (sharecount_stats()->>'jobs_applied')::bigint" 0.2
max_rss=$SC_MAX_RSS
t1=$(date +%s.%N)
rss_end=$(awk '/VmRSS/ {print $2}' /proc/$BP/status)
kill -TERM $BP; wait $BP || true
bridge_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
bridge_rate=$(awk -v n="$N" -v s="$bridge_s" 'BEGIN{printf "%.0f", n/s}')
[ "$(sc_psql -c "SELECT count(*) FROM sharecount_verify(10)")" = 0 ] || echo "# WARNING: counts not exact after the drain" >&2

echo "# raw broker: $N x $size bytes" >&2
rawline=$("$raw" "$SC_AMQP_URL" bench.raw "$N" "$size" 500)
echo "# raw: $rawline" >&2
raw_rate=$(sed -nE 's/.* rate=([0-9]+).*/\1/p' <<<"$rawline")
p3=$(awk -v a="$bridge_rate" -v b="$raw_rate" 'BEGIN{printf "%.2f", a/b}')
p3ok=$(awk -v r="$p3" 'BEGIN{print (r>=0.8)?"met":"NOT met"}')
max_mib=$(awk -v k="$max_rss" 'BEGIN{printf "%.1f", k/1024}')
printf '%-4s %-44s %12s %12s %8s %8s %s\n' id what measured baseline ratio target status
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P3 "bridge drain / raw broker, jobs/s, N=$N" "$bridge_rate" "$raw_rate" "$p3" ">=0.8" "$p3ok"
printf '# bridge max RSS %s MiB during the drain (20%%: %s KiB, end: %s KiB); P6 is bench/p6_memory.sh\n' "$max_mib" "${rss20:-?}" "$rss_end"
mkdir -p bench/results
cat > bench/results/p3_drain.json <<JSON
{"P3": {"jobs": $N, "body_bytes": $size, "bridge_seconds": $bridge_s, "bridge_rate": $bridge_rate,
        "raw": "$rawline", "raw_rate": $raw_rate, "ratio": $p3, "target": 0.8, "met": $([ "$p3ok" = met ] && echo true || echo false)},
 "bridge_rss": {"max_rss_kib": $max_rss, "rss_at_20pct_kib": ${rss20:-null}, "rss_end_kib": $rss_end}}
JSON
