#!/usr/bin/env bash
# P5 of SPEC §9 — HTTP read throughput against the database's own ceiling.
#
#   http     wrk, 32 connections (2 threads), GET /share-links/count/article/1
#            against a sharecount-bridge running only the http role
#            (its configured http_pool_size unless HTTP_POOL is set; prepared,
#            pipelined sharecount_get)
#   pgbench  pgbench -M prepared, 32 clients, SELECT sharecount_get('article','1')
#            against the same private cluster
# Rounds are interleaved (http, pgbench, http, …) so drift hits both alike; the
# figure per side is the median of its rounds; the ratio is http / pgbench.
# Not a test: nothing here is asserted except that every answer was a 200.
#
# Usage: bench/p5_http.sh [seconds-per-round (default 10)] [rounds (default 3)]
# Env: PGURL to use an existing server (the extension must be installable
# there); CLIENTS (default 32); HTTP_POOL (bridge http_pool_size; default: the
# bridge's default).
# Prints a table; writes bench/results/p5_http.json.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
secs=${1:-10}; rounds=${2:-3}; clients=${CLIENTS:-32}; pool=${HTTP_POOL:-}
cd "$SC_ROOT"
sc_init
if [ -n "${PGURL:-}" ]; then
  conninfo=$PGURL
  psqlb() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$PGURL" "$@"; }
  make -s all >&2
else
  sc_pg_start "shared_buffers = 256MB" >&2
  conninfo=$SC_PGURL
  psqlb() { sc_psql "$@"; }
fi
[ -x bridge/sharecount-bridge ] || { echo "bench/p5_http.sh: bridge/sharecount-bridge is not built" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/p5_http.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

psqlb >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sharecount CASCADE;
CREATE EXTENSION sharecount;
SELECT sharecount_apply('{"pattern":"share_count_update","data":{"jobId":"p5-bench-1","contentType":"article",
  "contentId":"1","operation":"increment","amount":42,"timestamp":"2026-01-01T00:00:00.000Z"}}');
SQL
[ "$(psqlb -c "SELECT sharecount_get('article','1')")" = 42 ] || { echo "bench/p5_http.sh: setup failed" >&2; exit 1; }

port=$(sc_free_port)
bridge/sharecount-bridge --roles=http --pg-conninfo="$conninfo" --http-listen="127.0.0.1:$port" \
  ${pool:+--http-pool-size="$pool"} --http-max-connections=1024 --log-level=warn > "$SC_TMP/bridge.log" 2>&1 &
bpid=$!
sc_on_exit "kill $bpid 2>/dev/null; wait $bpid 2>/dev/null"
url=http://127.0.0.1:$port/share-links/count/article/1
for i in $(seq 100); do
  curl -s "$url" 2>/dev/null | grep -q '"shareCount":42' && break
  [ "$i" = 100 ] && { echo "bench/p5_http.sh: bridge did not answer:" >&2; cat "$SC_TMP/bridge.log" >&2; exit 1; }
  sleep 0.1
done

echo "SELECT sharecount_get('article', '1');" > "$SC_TMP/get.sql"
run_http() {
  local out
  out=$(wrk -t2 -c"$clients" -d"${secs}s" "$url")
  if grep -q 'Non-2xx' <<<"$out"; then echo "# wrk saw non-200 answers:" >&2; echo "$out" >&2; return 1; fi
  sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' <<<"$out"
}
run_pgbench() {
  PGDATABASE=${PGURL:-$PGDATABASE} "$SC_PGBIN/pgbench" -n -M prepared -c "$clients" -j 2 -T "$secs" \
    -f "$SC_TMP/get.sql" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -1
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

hs=""; ps=""
for r in $(seq "$rounds"); do
  h=$(run_http); hs+="$h "
  echo "# round $r http: $h req/s" >&2
  p=$(run_pgbench); ps+="$p "
  echo "# round $r pgbench: $p tps" >&2
done
http=$(echo $hs | tr ' ' '\n' | median)
pgb=$(echo $ps | tr ' ' '\n' | median)
ratio=$(awk -v a="$http" -v b="$pgb" 'BEGIN{printf "%.3f", a/b}')
okp=$(awk -v r="$ratio" 'BEGIN{print (r>=0.7)?"met":"NOT met"}')
printf '%-4s %-44s %12s %12s %8s %8s %s\n' id what measured baseline ratio target status
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P5 "HTTP GET count / pgbench get, $clients conns" "$http" "$pgb" "$ratio" ">=0.7" "$okp"
mkdir -p bench/results
cat > bench/results/p5_http.json <<JSON
{"P5": {"measured_rps": $http, "baseline_tps": $pgb, "ratio": $ratio, "target": 0.7, "met": $([ "$okp" = met ] && echo true || echo false)},
 "clients": $clients, "http_pool_size": "${pool:-default}", "seconds_per_round": $secs, "rounds": $rounds,
 "rounds_http": "${hs% }", "rounds_pgbench": "${ps% }"}
JSON
