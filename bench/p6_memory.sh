#!/usr/bin/env bash
# P6 (docs/performance.md) — the bridge's resident memory while it moves 1M jobs, and
# whether it grows.
#
#   backlog  N (default 1,000,000) share_created jobs over 200 keys written
#            straight into sharecount.outbox by SQL (the trigger's cost is P1;
#            here only the bridge matters, and this takes seconds, not minutes)
#   bridge   one bridge (publisher + consumer, default settings) drains them;
#            its VmRSS is sampled every 0.5 s together with the number of
#            jobs applied (the sum of the counts)
#   P6       max RSS ≤ 16 MiB, and no growth: RSS at the end minus RSS once
#            20 % of the jobs were applied (start-up and the first batches
#            have filled every buffer by then).  "None" is taken as at most
#            1 MiB over the last 800k jobs: a leak of even 2 bytes per job
#            would be 1.6 MiB, and malloc's own jitter is a few hundred KiB.
#
# Usage: bench/p6_memory.sh [N]
# Env: PGURL / AMQP_URL to use existing servers (see sc_bench_servers in
# test/lib.sh: a scratch database; scbench.* names on the broker).
# Prints its rows; writes bench/results/p6_memory.json.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
N=${1:-1000000}
cd "$SC_ROOT"
sc_init
make -s all >&2

sc_bench_servers              # private servers, or PGURL / AMQP_URL (test/lib.sh)
sc_setup_tracked
echo "# writing a backlog of $N jobs" >&2
left=$N
while [ "$left" -gt 0 ]; do     # 100k rows per statement
  n=$(( left > 100000 ? 100000 : left ))
  sc_psql -c "INSERT INTO sharecount.outbox (job, job_id, share_id, content_type, content_id, user_id)
              SELECT 'c', gen_random_uuid(), gen_random_uuid()::text, 'article', 'a' || (g % 200), 'user' || g
              FROM generate_series(1, $n) g"
  left=$((left - n))
done
sc_psql -c "VACUUM ANALYZE sharecount.outbox"

log=$SC_TMP/bridge.log
t0=$(date +%s.%N)
sc_bench_bridge "$log"
BP=$SC_BRIDGE_PID
next=10
declare -A at              # percent of jobs applied → RSS (KiB) when first seen
bench_sample() {
  while [ "$next" -le 100 ] && [ "$2" -ge $(( N * next / 100 )) ]; do at[$next]=$1; next=$((next + 10)); done
}
sc_bench_watch "$BP" "$log" "$N" "SELECT coalesce(sum(share_count), 0) FROM sharecount.counts" 0.5
max_rss=$SC_MAX_RSS; applied=$SC_APPLIED
t1=$(date +%s.%N)
rss_end=$(awk '/VmRSS/ {print $2}' /proc/$BP/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$BP/status)
[ "$hwm" -gt "$max_rss" ] && max_rss=$hwm
kill -TERM $BP; wait $BP || true
[ "$applied" = "$N" ] || { echo "applied $applied jobs, expected $N" >&2; exit 1; }
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
growth=$(( rss_end - ${at[20]} ))
curve=$(for p in 10 20 30 40 50 60 70 80 90 100; do printf '%s ' "${at[$p]:-?}"; done)
echo "# RSS (KiB) at 10 %, 20 %, … 100 % of $N jobs applied: $curve; drained in $secs s" >&2
max_mib=$(awk -v k="$max_rss" 'BEGIN{printf "%.1f", k/1024}')
ok=$(awk -v m="$max_rss" -v g="$growth" 'BEGIN{print (m <= 16*1024 && g <= 1024) ? "met" : "NOT met"}')
printf '%-4s %-44s %12s %12s %8s %8s %s\n' id what measured baseline growth target status
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P6 "bridge max RSS over $N jobs (VmHWM)" "$max_mib MiB" "-" "${growth} KiB" "16MiB;0" "$ok"
mkdir -p bench/results
cat > bench/results/p6_memory.json <<JSON
{"P6": {"jobs": $N, "seconds": $secs, "max_rss_kib": $max_rss, "rss_at_20pct_kib": ${at[20]}, "rss_end_kib": $rss_end,
        "growth_kib": $growth, "rss_kib_at_each_10pct": [$(echo $curve | tr ' ' ',')],
        "target_mib": 16, "max_growth_kib": 1024, "met": $([ "$ok" = met ] && echo true || echo false)}}
JSON
