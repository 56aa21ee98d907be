#!/usr/bin/env bash
# The http role's cost per cached read (P10, docs/performance.md), counted in
# instructions by valgrind's callgrind, so that a change to the request path
# can be judged without the machine's noise (not part of `make bench`).
#
# As bench/p10_cache.sh: an http-only bridge, its cache on and its events feed
# up on a private RabbitMQ, 100 keys with a count (P10_KEYS).  The bridge runs
# under callgrind; wrk (32 connections, bench/wrk_keys.lua) reads the keys for
# SECONDS; then the bridge is stopped and the inclusive instructions of the
# request handler (http.c's handle(), which routes, looks in the cache and
# queues the answer) and of the count answer are divided by the requests
# served.  What libmicrohttpd does around the handler (reading the request,
# sending the answer) is not in these figures; valgrind counts each byte of a
# `rep stosb` memset as an instruction, so whole-process totals overstate
# libmicrohttpd's zeroing of the connection's memory and are not printed.
# Under valgrind the bridge is ~100x slower, so some reads miss the cache
# (it ages): the script prints the share.
#
# Usage: bench/p10_callgrind.sh [SECONDS (10)]
# Env: BRIDGE (the binary, default bridge/sharecount-bridge), P10_KEYS.
# Needs valgrind (apt-get install valgrind) and wrk.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
secs=${1:-10}; nkeys=${P10_KEYS:-100}
cd "$SC_ROOT"
bridge=${BRIDGE:-bridge/sharecount-bridge}
[ -x "$bridge" ] || { echo "bench/p10_callgrind.sh: $bridge is not built" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "bench/p10_callgrind.sh: valgrind is not installed" >&2; exit 1; }
sc_init
sc_pg_start >&2
sc_rmq_start >&2
. bench/p10_state.sh
p10_seed "$nkeys"
port=$(sc_free_port)
out=$SC_TMP/callgrind.out
valgrind --tool=callgrind --callgrind-out-file="$out" "$bridge" -c /dev/null --roles=http --pg-conninfo="$SC_PGURL" \
  --amqp-url="$SC_AMQP_URL" --http-listen="127.0.0.1:$port" --log-level=warning > "$SC_TMP/bridge.log" 2>&1 &
bpid=$!
sc_on_exit "kill -9 $bpid 2>/dev/null"
metric() { p10_metric "http://127.0.0.1:$port" "$1"; }
p10_await_stream "http://127.0.0.1:$port" 600 bench/p10_callgrind.sh
k0=$(metric sharecount_cache_hits_total); m0=$(metric sharecount_cache_misses_total)
wrk -t2 -c32 -d"${secs}s" -s bench/wrk_keys.lua "http://127.0.0.1:$port/" -- "$nkeys" > "$SC_TMP/wrk.out"
k1=$(metric sharecount_cache_hits_total); m1=$(metric sharecount_cache_misses_total)
kill -INT $bpid; wait $bpid || true
# inclusive Ir of a function (callgrind_annotate --inclusive), by name
ir() { callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v f="$1" '$0 ~ f { gsub(",", "", $1); print $1; exit }'; }
reqs=$(awk '/requests in/ { print $1 }' "$SC_TMP/wrk.out")
printf 'requests %s (cache hits %d, misses %d)\n' "$reqs" $((k1 - k0)) $((m1 - m0))
for f in 'http.c:handle ' 'http_reply.c:http_send_count ' 'http_reply.c:http_send_body ' 'route.c:route_parse '; do
  printf '%-32s %8.0f instructions per request\n' "${f% }" "$(awk -v a="$(ir "$f")" -v n="$reqs" 'BEGIN{print a / n}')"
done
