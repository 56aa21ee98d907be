#!/usr/bin/env bash
# P9's memory table (docs/performance.md "P9: live push", "Memory per
# connection"): one http bridge, N idle Server-Sent Events streams then N idle
# WebSockets (each a new connection, subscribed to one of 10 keys, snapshot
# received: test/e2e/live_capacity.py), the bridge's RSS growth per
# connection, at each http_conn_memory given.
#
# Usage: bench/p9_memory.sh [N (5000)] [CONN_MEMORY... (4096 16384)]
# Env: PGURL / AMQP_URL to use existing servers (sc_bench_servers, test/lib.sh).
# Prints one row per http_conn_memory; writes bench/results/p9_memory.json.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
N=${1:-5000}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then MEMS=("$@"); else MEMS=(4096 16384); fi
cd "$SC_ROOT"
sc_init
make -s all >&2
ulimit -n "$(ulimit -Hn)"
sc_bench_servers
sc_setup_tracked
rows=()
for mem in "${MEMS[@]}"; do
  PORT=$(sc_free_port)
  "$SC_ROOT/bridge/sharecount-bridge" -c /dev/null --pg_conninfo="$SC_PGURL" --amqp_url="$SC_AMQP_URL" \
    --roles=http --http_listen=127.0.0.1:$PORT --http_max_connections=$((2 * N + 1000)) \
    --http_conn_memory="$mem" 2>"$SC_TMP/bridge.$mem.log" &
  BP=$!
  sc_on_exit "kill -9 $BP"
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$PORT/share-links/counts/article?ids=c0" >/dev/null
  out=$(python3 test/e2e/live_capacity.py "$PORT" "$BP" "$N")
  kill -TERM $BP; wait $BP || true
  row=$(python3 -c '
import json, sys
d = json.loads(sys.argv[1]); n = d["n"]
print(json.dumps({"http_conn_memory": int(sys.argv[2]), "n": n, "rss_idle_kib": d["rss0"],
                  "rss_all_kib": d["rss_ws"], "sse_kib": round((d["rss_sse"] - d["rss0"]) / n, 2),
                  "ws_kib": round((d["rss_ws"] - d["rss_sse"]) / n, 2)}))' "$out" "$mem")
  echo "$row" >&2
  rows+=("$row")
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("P9 memory  http_conn_memory %d: %d streams %.2f KiB each, %d WebSockets %.2f KiB each; RSS idle %.1f MiB, with all %.1f MiB" % (d["http_conn_memory"], d["n"], d["sse_kib"], d["n"], d["ws_kib"], d["rss_idle_kib"]/1024, d["rss_all_kib"]/1024))' "$row"
done
mkdir -p bench/results
(IFS=,; echo "{\"P9_memory\":[${rows[*]}]}") > bench/results/p9_memory.json
