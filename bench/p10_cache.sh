#!/usr/bin/env bash
# P10 (docs/performance.md) — cached reads: the http role answering hot counts
# from its coherent cache (docs/live.md "Cache") against two ceilings:
#   P10   HTTP GET /share-links/count/article/K / the same bridge's GET /healthz
#         (what the HTTP stack alone can do: the cache should cost little)   >= 0.8
#   P10d  HTTP GET count / pgbench -M prepared SELECT sharecount_get('article', K)
#         (the database's own ceiling for the same reads)                    >= 1.6
# wrk with 32 connections (2 threads) reading article/1..K at random (K =
# P10_KEYS, default 100 hot keys, each holding a count), against a bridge with
# only the http role, its cache on (defaults) and its events feed up (a private
# RabbitMQ); pgbench reads the same keys.  wrk's requests are formatted once
# (bench/wrk_keys.lua), so its cost per request is that of a fixed request,
# like /healthz's.  A round runs count, healthz, pgbench, healthz, count
# (ABCBA: each measure is centred on the middle of the round, so load that
# drifts within the round hits all three alike); count's figure in a round is
# the mean of its two runs, and healthz's too; each ratio is the median of the
# per-round ratios (paired by round).
# Not a test: nothing is asserted except that every answer was a 200 and the
# cache answered (hits > 0).
#
# Usage: bench/p10_cache.sh [seconds-per-run (default 4)] [rounds (default 5)]
# Env: CLIENTS (default 32), P10_KEYS (default 100), BRIDGE (the binary).
# Prints a table; writes bench/results/p10_cache.json.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
secs=${1:-4}; rounds=${2:-5}; clients=${CLIENTS:-32}; nkeys=${P10_KEYS:-100}
cd "$SC_ROOT"
sc_init
sc_pg_start "shared_buffers = 256MB" >&2
sc_rmq_start >&2
bridge=${BRIDGE:-bridge/sharecount-bridge}
[ -x "$bridge" ] || { echo "bench/p10_cache.sh: $bridge is not built" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/p10_cache.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

. bench/p10_state.sh
p10_seed "$nkeys"

port=$(sc_free_port)
base=http://127.0.0.1:$port
"$bridge" -c /dev/null --roles=http --pg-conninfo="$SC_PGURL" --amqp-url="$SC_AMQP_URL" \
  --http-listen="127.0.0.1:$port" --http-max-connections=1024 --log-level=info > "$SC_TMP/bridge.log" 2>&1 &
bpid=$!
sc_on_exit "kill $bpid 2>/dev/null; wait $bpid 2>/dev/null"
metric() { p10_metric "$base" "$1"; }
p10_await_stream "$base" 150 bench/p10_cache.sh

printf '\\set k random(1, %d)\nSELECT sharecount_get('"'"'article'"'"', :k::text);\n' "$nkeys" > "$SC_TMP/get.sql"
run_wrk() {  # URL [nkeys: read article/1..nkeys at random (bench/wrk_keys.lua)] -> req/s
  local out
  out=$(wrk -t2 -c"$clients" -d"${secs}s" ${2:+-s bench/wrk_keys.lua} "$1" ${2:+-- "$2"})
  if grep -q 'Non-2xx' <<<"$out"; then echo "# wrk saw non-200 answers:" >&2; echo "$out" >&2; return 1; fi
  sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' <<<"$out"
}
run_pgbench() {
  PGDATABASE=$PGDATABASE "$SC_PGBIN/pgbench" -n -M prepared -c "$clients" -j 2 -T "$secs" -f "$SC_TMP/get.sql" 2>/dev/null |
    sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -1
  sleep 0.5
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", a/b}'; }

k0=$(metric sharecount_cache_hits_total); m0=$(metric sharecount_cache_misses_total)
cs=""; hs=""; ps=""; r1=""; r2=""
for r in $(seq "$rounds"); do
  c1=$(run_wrk "$base/share-links/count/article/1" "$nkeys")
  h1=$(run_wrk "$base/healthz")
  p=$(run_pgbench)
  h2=$(run_wrk "$base/healthz")
  c2=$(run_wrk "$base/share-links/count/article/1" "$nkeys")
  c=$(awk -v a="$c1" -v b="$c2" 'BEGIN{printf "%.2f", (a + b) / 2}')
  h=$(awk -v a="$h1" -v b="$h2" 'BEGIN{printf "%.2f", (a + b) / 2}')
  cs+="$c "; hs+="$h "; ps+="$p "; r1+="$(ratio "$c" "$h") "; r2+="$(ratio "$c" "$p") "
  echo "# round $r: count $c1 $c2 req/s, healthz $h1 $h2 req/s, pgbench $p tps" >&2
done
k1=$(metric sharecount_cache_hits_total); m1=$(metric sharecount_cache_misses_total)
[ $((k1 - k0)) -gt 0 ] || { echo "bench/p10_cache.sh: no cache hits" >&2; exit 1; }
count=$(echo $cs | tr ' ' '\n' | median); healthz=$(echo $hs | tr ' ' '\n' | median); pgb=$(echo $ps | tr ' ' '\n' | median)
ratio1=$(echo $r1 | tr ' ' '\n' | median | awk '{printf "%.3f", $1}')
ratio2=$(echo $r2 | tr ' ' '\n' | median | awk '{printf "%.3f", $1}')
ok1=$(awk -v r="$ratio1" 'BEGIN{print (r>=0.8)?"met":"NOT met"}')
ok2=$(awk -v r="$ratio2" 'BEGIN{print (r>=1.6)?"met":"NOT met"}')
hitshare=$(awk -v h=$((k1 - k0)) -v m=$((m1 - m0)) 'BEGIN{printf "%.4f", h / (h + m)}')
printf '%-4s %-44s %12s %12s %8s %8s %s\n' id what measured baseline ratio target status
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P10 "GET count (cached) / GET /healthz, $clients conns" "$count" "$healthz" "$ratio1" ">=0.8" "$ok1"
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P10d "GET count (cached) / pgbench get, $nkeys keys" "$count" "$pgb" "$ratio2" ">=1.6" "$ok2"
echo "# cache: $((k1 - k0)) hits, $((m1 - m0)) misses (hit share $hitshare)" >&2
mkdir -p bench/results
cat > bench/results/p10_cache.json <<JSON
{"P10": {"measured_rps": $count, "baseline_healthz_rps": $healthz, "ratio": $ratio1, "target": 0.8, "met": $([ "$ok1" = met ] && echo true || echo false)},
 "P10d": {"measured_rps": $count, "baseline_pgbench_tps": $pgb, "ratio": $ratio2, "target": 1.6, "met": $([ "$ok2" = met ] && echo true || echo false)},
 "clients": $clients, "keys": $nkeys, "seconds_per_round": $secs, "rounds": $rounds,
 "rounds_count": "${cs% }", "rounds_healthz": "${hs% }", "rounds_pgbench": "${ps% }",
 "rounds_ratio_healthz": "${r1% }", "rounds_ratio_pgbench": "${r2% }",
 "cache_hits": $((k1 - k0)), "cache_misses": $((m1 - m0)), "hit_share": $hitshare}
JSON
