#!/usr/bin/env bash
# P5 (docs/performance.md) — HTTP read throughput against the database's own ceiling.
#
#   http     wrk, 32 connections (2 threads), GET /share-links/count/article/1
#            against a sharecount-bridge running only the http role
#            (its configured http_pool_size unless HTTP_POOL is set; prepared,
#            pipelined sharecount_get)
#   pgbench  pgbench -M prepared, 32 clients, SELECT sharecount_get('article','1')
#            against the same private cluster
# Rounds are interleaved (http, pgbench, http, …) so drift hits both alike; the
# figure per side is the median of its rounds; the ratio is the median of the
# per-round ratios http / pgbench (paired by round, as P1's: the VM's speed
# drifts between rounds, and a ratio of medians can pair a slow http round
# with a fast pgbench round).  For information each round also runs pgbench
# over TCP to 127.0.0.1 (wrk reaches the bridge over TCP; pgbench's default is
# the Unix socket, ~15 % faster here) and prints http / that as "P5t".
# Not a test: nothing here is asserted except that every answer was a 200.
#
# Usage: bench/p5_http.sh [seconds-per-round (default 6)] [rounds (default 5)]
# Env: PGURL to use an existing server (the extension must be installable
# there); CLIENTS (default 32); HTTP_POOL (bridge http_pool_size; default: the
# bridge's default); BRIDGE (the binary, default bridge/sharecount-bridge);
# BRIDGE_B (a second binary, e.g. an older build: each round then also runs
# wrk against it, right after the first, and its figures are printed as
# "http B" lines — an A/B comparison under the same machine load; the table
# and the JSON stay the first binary's); P5_KEYS (default 1, the P5
# definition: every request reads article/1): with N > 1 both wrk (a Lua
# script) and pgbench (\set random) read article/1..N uniformly at random,
# each key holding a count — the bridge then cannot share one key's probe
# between concurrent requests, which shows what coalescing alone gives.
# Prints a table; writes bench/results/p5_http.json.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
secs=${1:-6}; rounds=${2:-5}; clients=${CLIENTS:-32}; pool=${HTTP_POOL:-}
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
bridge_a=${BRIDGE:-bridge/sharecount-bridge}; bridge_b=${BRIDGE_B:-}
for b in "$bridge_a" ${bridge_b:+"$bridge_b"}; do
  [ -x "$b" ] || { echo "bench/p5_http.sh: $b is not built" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench/p5_http.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

psqlb >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sharecount CASCADE;
CREATE EXTENSION sharecount;
SELECT sharecount_apply('{"pattern":"share_count_update","data":{"jobId":"p5-bench-1","contentType":"article",
  "contentId":"1","operation":"increment","amount":42,"timestamp":"2026-01-01T00:00:00.000Z"}}');
SQL
nkeys=${P5_KEYS:-1}
if [ "$nkeys" -gt 1 ]; then
  psqlb -c "SELECT count(sharecount_apply(jsonb_build_object('pattern', 'share_count_update', 'data',
    jsonb_build_object('jobId', 'p5-bench-k' || g, 'contentType', 'article', 'contentId', g::text,
      'operation', 'increment', 'amount', g, 'timestamp', '2026-01-01T00:00:00.000Z'))))
    FROM generate_series(2, $nkeys) g" >/dev/null
fi
[ "$(psqlb -c "SELECT sharecount_get('article','1')")" = 42 ] || { echo "bench/p5_http.sh: setup failed" >&2; exit 1; }

# start_bridge BINARY LOG -> sets bpid, url (info level: its shutdown line
# tells how many requests shared a query)
start_bridge() {
  local port i
  port=$(sc_free_port)
  "$1" --roles=http --pg-conninfo="$conninfo" --http-listen="127.0.0.1:$port" \
    ${pool:+--http-pool-size="$pool"} --http-max-connections=1024 --log-level=info > "$2" 2>&1 &
  bpid=$!
  sc_on_exit "kill $bpid 2>/dev/null; wait $bpid 2>/dev/null"
  url=http://127.0.0.1:$port/share-links/count/article/1
  for i in $(seq 100); do
    curl -s "$url" 2>/dev/null | grep -q '"shareCount":42' && break
    [ "$i" = 100 ] && { echo "bench/p5_http.sh: bridge did not answer:" >&2; cat "$2" >&2; exit 1; }
    sleep 0.1
  done
}
start_bridge "$bridge_a" "$SC_TMP/bridge.log"; bpid_a=$bpid; url_a=$url
if [ -n "$bridge_b" ]; then start_bridge "$bridge_b" "$SC_TMP/bridge_b.log"; bpid_b=$bpid; url_b=$url; fi

if [ "$nkeys" -gt 1 ]; then
  printf '\\set k random(1, %d)\nSELECT sharecount_get('"'"'article'"'"', :k);\n' "$nkeys" > "$SC_TMP/get.sql"
  wrk_script=(-s bench/wrk_keys.lua); wrk_args=(-- "$nkeys")
else
  echo "SELECT sharecount_get('article', '1');" > "$SC_TMP/get.sql"
  wrk_script=(); wrk_args=()
fi
# CPU accounting (private cluster only): on a shared machine the throughput
# ratio also depends on how the scheduler splits the CPUs between 32 pgbench
# backends and the bridge's few threads, so each round also reports the CPU
# time spent per request on every side: client (wrk / pgbench), bridge, and
# PostgreSQL backends.  Ticks come from /proc; a backend's ticks reach the
# postmaster's children counters when it exits (pgbench's do at its end).
tck=$(getconf CLK_TCK)
pm=$( [ -z "${PGURL:-}" ] && head -1 "$SC_TMP/pgdata/postmaster.pid" 2>/dev/null || true)
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
child_ticks() { awk '{print $16+$17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
backend_ticks() { local s=0 c; for c in $(pgrep -P "$pm"); do s=$((s + $(ticks "$c"))); done; echo $s; }
us_per() { awk -v t="$1" -v n="$2" -v hz="$tck" 'BEGIN{ if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "?" }'; }
TIMEFORMAT='%U %S'
# Whole-machine CPU busy share (all processes, /proc/stat) over a round, and
# the bridge's context switches (all threads) per request: a round that leaves
# CPU idle is bound by latency/hand-offs, not by CPU.
cpu_sample() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
cpu_busy() { awk -v a="$1" -v b="$2" -v c="$3" -v d="$4" 'BEGIN{ if (d > b) printf "%.0f%%", 100 * (c - a) / (d - b); else print "?" }'; }
ctxsw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }

run_http() {  # PID URL -> "req/s client_us bridge_us backend_us"
  local bpid=$1 url=$2 out b0 p0 b1 p1 n cl
  b0=$(ticks "$bpid"); p0=$([ -n "$pm" ] && backend_ticks || echo 0)
  read -r ub0 ut0 < <(cpu_sample); cs0=$(ctxsw "$bpid")
  { time wrk -t2 -c"$clients" -d"${secs}s" ${wrk_script[@]+"${wrk_script[@]}"} "$url" ${wrk_args[@]+"${wrk_args[@]}"} > "$SC_TMP/wrk.out"; } 2> "$SC_TMP/wrk.time"
  b1=$(ticks "$bpid"); p1=$([ -n "$pm" ] && backend_ticks || echo 0)
  read -r ub1 ut1 < <(cpu_sample); cs1=$(ctxsw "$bpid")
  out=$(cat "$SC_TMP/wrk.out")
  if grep -q 'Non-2xx' <<<"$out"; then echo "# wrk saw non-200 answers:" >&2; echo "$out" >&2; return 1; fi
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  cl=$(awk -v hz="$tck" '{printf "%d", ($1 + $2) * hz}' "$SC_TMP/wrk.time")
  echo "# http round: machine CPU busy $(cpu_busy "$ub0" "$ut0" "$ub1" "$ut1"), bridge context switches/request $(awk -v a=$((cs1 - cs0)) -v n="$n" 'BEGIN{printf "%.2f", n ? a / n : 0}')" >&2
  echo "$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' <<<"$out") $(us_per "$cl" "$n") $(us_per $((b1 - b0)) "$n") $( [ -n "$pm" ] && us_per $((p1 - p0)) "$n" || echo '?')"
}
run_pgbench() {  # [HOST] -> "tps client_us backend_us" (HOST: connect over TCP to it)
  local c0 c1 n cl tps host=${1:-}
  c0=$([ -n "$pm" ] && child_ticks "$pm" || echo 0)
  read -r ub0 ut0 < <(cpu_sample)
  { time PGDATABASE=${PGURL:-$PGDATABASE} "$SC_PGBIN/pgbench" -n -M prepared -c "$clients" -j 2 -T "$secs" \
      ${host:+-h "$host"} -f "$SC_TMP/get.sql" > "$SC_TMP/pgbench.out" 2>/dev/null; } 2> "$SC_TMP/pgbench.time"
  read -r ub1 ut1 < <(cpu_sample)
  echo "# pgbench round: machine CPU busy $(cpu_busy "$ub0" "$ut0" "$ub1" "$ut1")" >&2
  sleep 0.5   # let the postmaster reap the backends
  c1=$([ -n "$pm" ] && child_ticks "$pm" || echo 0)
  tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$SC_TMP/pgbench.out" | head -1)
  n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$SC_TMP/pgbench.out")
  cl=$(awk -v hz="$tck" '{printf "%d", ($1 + $2) * hz}' "$SC_TMP/pgbench.time")
  echo "$tps $(us_per "$cl" "$n") $( [ -n "$pm" ] && us_per $((c1 - c0)) "$n" || echo '?')"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

hs=""; ps=""; hcpu=""; pcpu=""; hs_b=""; rr=""; rr_b=""; ts=""; rt=""
for r in $(seq "$rounds"); do
  read -r h hc hb hp < <(run_http "$bpid_a" "$url_a")
  hs+="$h "; hcpu+="$(awk -v a="$hc" -v b="$hb" -v c="$hp" 'BEGIN{printf "%.1f", a + b + c}') "
  echo "# round $r http: $h req/s; CPU us/request: wrk $hc, bridge $hb, backends $hp" >&2
  if [ -n "$bridge_b" ]; then
    read -r hB hc hb hp < <(run_http "$bpid_b" "$url_b")
    hs_b+="$hB "
    echo "# round $r http B ($bridge_b): $hB req/s; CPU us/request: wrk $hc, bridge $hb, backends $hp" >&2
  fi
  read -r p pc pp < <(run_pgbench)
  ps+="$p "; pcpu+="$(awk -v a="$pc" -v b="$pp" 'BEGIN{printf "%.1f", a + b}') "
  rr+="$(awk -v a="$h" -v b="$p" 'BEGIN{printf "%.4f", a/b}') "
  [ -n "$bridge_b" ] && rr_b+="$(awk -v a="$hB" -v b="$p" 'BEGIN{printf "%.4f", a/b}') "
  echo "# round $r pgbench: $p tps; CPU us/transaction: pgbench $pc, backends $pp" >&2
  if [ -z "${PGURL:-}" ]; then
    read -r t _ _ < <(run_pgbench 127.0.0.1)
    ts+="$t "; rt+="$(awk -v a="$h" -v b="$t" 'BEGIN{printf "%.4f", a/b}') "
    echo "# round $r pgbench over TCP: $t tps" >&2
  fi
done
http=$(echo $hs | tr ' ' '\n' | median)
pgb=$(echo $ps | tr ' ' '\n' | median)
hcpu_m=$(echo $hcpu | tr ' ' '\n' | median)
pcpu_m=$(echo $pcpu | tr ' ' '\n' | median)
ratio=$(echo $rr | tr ' ' '\n' | median | awk '{printf "%.3f", $1}')
ratio_medians=$(awk -v a="$http" -v b="$pgb" 'BEGIN{printf "%.3f", a/b}')
pgb_tcp=$( [ -n "$ts" ] && echo $ts | tr ' ' '\n' | median || echo null)
ratio_tcp=$( [ -n "$rt" ] && echo $rt | tr ' ' '\n' | median | awk '{printf "%.3f", $1}' || echo null)
cratio=$(awk -v a="$hcpu_m" -v b="$pcpu_m" 'BEGIN{ if (a > 0) printf "%.3f", b/a; else print "null" }')
okp=$(awk -v r="$ratio" 'BEGIN{print (r>=0.7)?"met":"NOT met"}')
printf '%-4s %-44s %12s %12s %8s %8s %s\n' id what measured baseline ratio target status
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P5 "HTTP GET count / pgbench get, $clients conns$([ "$nkeys" -gt 1 ] && echo ", $nkeys keys")" "$http" "$pgb" "$ratio" ">=0.7" "$okp"
printf '%-4s %-44s %12s %12s %8s\n' "" "ratio of the medians (information)" "$http" "$pgb" "$ratio_medians"
[ -n "$ts" ] && printf '%-4s %-44s %12s %12s %8s %8s %s\n' P5t "HTTP / pgbench over TCP (same transport)" "$http" "$pgb_tcp" "$ratio_tcp" "-" "(information)"
printf '%-4s %-44s %12s %12s %8s\n' "" "CPU us per request (all processes), inverse" "$hcpu_m" "$pcpu_m" "$cratio"
# the bridges' own account of their batches (logged when they stop)
stop_report() {  # PID LOG NAME
  kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true
  grep -o 'database jobs sent.*' "$2" | sed "s/^/# bridge $3: /" >&2 || true
}
stop_report "$bpid_a" "$SC_TMP/bridge.log" A
[ -n "$bridge_b" ] && stop_report "$bpid_b" "$SC_TMP/bridge_b.log" B
[ -n "$bridge_b" ] && echo "# http B median: $(echo $hs_b | tr ' ' '\n' | median) req/s (A: $http); B's P5 (median of paired ratios): $(echo $rr_b | tr ' ' '\n' | median | awk '{printf "%.3f", $1}') (A: $ratio); rounds A: ${rr% }; B: ${rr_b% }" >&2
mkdir -p bench/results
cat > bench/results/p5_http.json <<JSON
{"P5": {"measured_rps": $http, "baseline_tps": $pgb, "ratio": $ratio, "target": 0.7, "met": $([ "$okp" = met ] && echo true || echo false)},
 "ratio_of_medians": $ratio_medians, "rounds_ratio": "${rr% }",
 "pgbench_tcp": {"baseline_tps": $pgb_tcp, "ratio": $ratio_tcp, "rounds_tps": "${ts% }"},
 "clients": $clients, "keys": $nkeys, "http_pool_size": "${pool:-default}", "seconds_per_round": $secs, "rounds": $rounds,
 "rounds_http": "${hs% }", "rounds_pgbench": "${ps% }",
 "cpu_us_per_request": {"http": ${hcpu_m:-null}, "pgbench": ${pcpu_m:-null}, "ratio": ${cratio:-null},
   "rounds_http": "${hcpu% }", "rounds_pgbench": "${pcpu% }"}}
JSON
