#!/usr/bin/env bash
# P9 (docs/performance.md) — commit -> new count at a Server-Sent Events and a
# WebSocket subscriber, with many subscribers on one bridge, and that
# bridge's resident memory.
#
#   bridge A   publisher + consumer (default settings): applies the shares
#              and publishes their count changes to sharecount.updates
#   bridge B   http role only, the one measured: http_max_connections =
#              subscribers + 1,000 and http_conn_memory = 4096 (docs/live.md
#              "Capacity"; P9_BRIDGE_FLAGS replaces the latter), defaults else
#   client     bench/p9_client.c: NSSE streams + NWS WebSockets to B, each
#              subscribed to one of NKEYS keys; once all have their snapshot
#              it INSERTs RATE shares/s over the keys for SECONDS, and times
#              each count it receives against the commit of the share that
#              made it (one process, one clock)
#   P9         p50 <= 20 ms and p99 <= 100 ms over both transports; B's VmHWM
#              (peak RSS) <= 64 MiB
#
# Usage: bench/p9_push.sh [NSSE (5000)] [NWS (5000)] [NKEYS (1000)] [RATE (1000)] [SECONDS (20)]
# Env: PGURL / AMQP_URL to use existing servers (sc_bench_servers, test/lib.sh);
# P9_BRIDGE_FLAGS: bridge B's extra flags (default --http_conn_memory=4096).
# Prints its rows; writes bench/results/p9_push.json.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
NSSE=${1:-5000} NWS=${2:-5000} NKEYS=${3:-1000} RATE=${4:-1000} SECS=${5:-20}
# docs/live.md "Capacity": the smallest per-connection memory (the subscribers' requests are short)
P9_BRIDGE_FLAGS=${P9_BRIDGE_FLAGS---http_conn_memory=4096}
cd "$SC_ROOT"
sc_init
make -s all >&2
cc -O2 -Wall $([ "${WERROR:-}" = 1 ] && echo -Werror) -pthread -I"$($PG_CONFIG --includedir)" \
  -o "$SC_TMP/p9_client" bench/p9_client.c -L"$($PG_CONFIG --libdir)" -lpq
ulimit -n "$(ulimit -Hn)"
sc_bench_servers
sc_setup_tracked

sc_bench_bridge "$SC_TMP/bridgeA.log"
PORT=$(sc_free_port)
# shellcheck disable=SC2086 # SC_BENCH_NAMES is a list of flags
"$SC_ROOT/bridge/sharecount-bridge" -c /dev/null --pg_conninfo="$SC_PGURL" --amqp_url="$SC_AMQP_URL" \
  --roles=http --http_listen=127.0.0.1:$PORT --http_max_connections=$((NSSE + NWS + 1000)) ${P9_BRIDGE_FLAGS:-} \
  ${SC_BENCH_NAMES:-} 2>"$SC_TMP/bridgeB.log" &
BP=$!
sc_on_exit "kill -9 $BP"
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
rss0=$(awk '/VmRSS/ {print $2}' /proc/$BP/status)

"$SC_TMP/p9_client" 127.0.0.1 "$PORT" "$NSSE" "$NWS" "$NKEYS" "$RATE" "$SECS" "$SC_PGURL" > "$SC_TMP/client.json" &
CP=$!
max_rss=0
while kill -0 $CP 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$BP/status 2>/dev/null || echo 0)
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss
  sleep 0.5
done
wait $CP || { tail "$SC_TMP/bridgeB.log" >&2; echo "p9_client failed" >&2; exit 1; }
hwm=$(awk '/VmHWM/ {print $2}' /proc/$BP/status)
subs=$(curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^sharecount_live_(subscribers|subscribers_dropped_total)' | tr '\n' ' ')
kill -TERM $BP; wait $BP || true
client=$(cat "$SC_TMP/client.json")
echo "# bridge B: RSS idle ${rss0} KiB, peak ${hwm} KiB (sampled max ${max_rss} KiB); $subs" >&2
echo "# client: $client" >&2
p50=$(sed -E 's/.*"p50_ms":([0-9.-]+).*/\1/' <<<"$client")
p99=$(sed -E 's/.*"p99_ms":([0-9.-]+).*/\1/' <<<"$client")
met=$(awk -v a="$p50" -v b="$p99" -v m="$hwm" 'BEGIN { print (a >= 0 && a <= 20 && b <= 100 && m <= 65536) ? "true" : "false" }')
if [ "$met" != true ]; then
  # a miss: what both bridges logged (the client's per_second says when, above)
  for b in A B; do echo "# bridge $b log, last lines:" >&2; tail -n 15 "$SC_TMP/bridge$b.log" >&2; done
fi
printf 'P9  p50 %s ms  p99 %s ms  bridge peak RSS %s MiB  (%s SSE + %s WS subscribers, %s keys, %s shares/s, %s s)  met=%s\n' \
  "$p50" "$p99" "$(awk -v k="$hwm" 'BEGIN{printf "%.1f", k/1024}')" "$NSSE" "$NWS" "$NKEYS" "$RATE" "$SECS" "$met"
mkdir -p bench/results
printf '{"P9":{"p50_ms":%s,"p99_ms":%s,"rss_peak_kib":%s,"rss_idle_kib":%s,"sse":%s,"ws":%s,"keys":%s,"rate":%s,"seconds":%s,"bridge_flags":"%s","client":%s,"met":%s}}\n' \
  "$p50" "$p99" "$hwm" "$rss0" "$NSSE" "$NWS" "$NKEYS" "$RATE" "$SECS" "$P9_BRIDGE_FLAGS" "$client" "$met" > bench/results/p9_push.json
