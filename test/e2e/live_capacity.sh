#!/usr/bin/env bash
# Memory per live subscriber (docs/live.md "Capacity"): 1,000 Server-Sent
# Events streams and 1,000 WebSockets, each a new connection, held open on
# one http bridge with the default http_conn_memory (16 KiB).  The bridge
# serves them itself (http_stream.c, the live thread), so each costs a
# small state and no libmicrohttpd connection: the bridge's RSS must grow by
# at most LIVE_CAP_MAX_KIB per subscriber (libmicrohttpd's path cost 19 KiB
# per stream and 23 KiB per WebSocket at this setting).  Every subscriber gets
# its snapshot; the subscriber metrics count them; B stops cleanly.
# Under a sanitizer (BRIDGE_SANITIZE) memory is not comparable: only the
# function is checked.
. "$(dirname "$0")/bridge.inc"
e2e_setup live_capacity
N=1000
LIVE_CAP_MAX_KIB=4 # measured ~1 KiB per stream, ~1.5 KiB per WebSocket
PB=$(sc_free_port)
B="http://127.0.0.1:$PB"
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((2 * N + 200)) ] || { echo "ok: skipped (open-file limit $(ulimit -n))"; exit 0; }

bridge_start --roles=http --http_listen=127.0.0.1:$PB --http_max_connections=$((2 * N + 100))
BPID=$BRIDGE_PID
for _ in $(seq 300); do curl -sf "$B/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$B/healthz" >/dev/null || fail "the http bridge did not start"
curl -sf "$B/share-links/counts/article?ids=c0" >/dev/null || fail "a first read"

out=$(timeout 600 /usr/bin/python3 "$SC_ROOT/test/e2e/live_capacity.py" "$PB" "$BPID" "$N" 2>&1) \
  || fail "subscribers: $out"
echo "# $out"
read -r rss0 sse ws < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["rss0"], d["rss_sse"], d["rss_ws"])' "$out")
per_sse=$(( (sse - rss0) / N )) per_ws=$(( (ws - sse) / N ))
echo "ok: $N streams and $N WebSockets got their snapshots ($per_sse KiB per stream, $per_ws KiB per WebSocket)"
if [ -z "${BRIDGE_SANITIZE:-}" ] && ! ldd "$BRIDGE" | grep -q libasan; then
  [ "$per_sse" -le $LIVE_CAP_MAX_KIB ] || fail "a stream costs $per_sse KiB (at most $LIVE_CAP_MAX_KIB)"
  [ "$per_ws" -le $LIVE_CAP_MAX_KIB ] || fail "a WebSocket costs $per_ws KiB (at most $LIVE_CAP_MAX_KIB)"
  echo "ok: at most $LIVE_CAP_MAX_KIB KiB of RSS per subscriber"
fi

for _ in $(seq 300); do
  m=$(curl -s "$B/metrics")
  grep -qE '^sharecount_live_subscribers\{transport="(sse|ws)"\} 0$' <<<"$m" &&
    [ "$(grep -cE '^sharecount_live_subscribers\{transport="(sse|ws)"\} 0$' <<<"$m")" = 2 ] && break
  sleep 0.1
done
[ "$(grep -cE '^sharecount_live_subscribers\{transport="(sse|ws)"\} 0$' <<<"$m")" = 2 ] \
  || fail "subscriber gauges after the clients left: $(grep live_sub <<<"$m")"
echo "ok: the subscriber gauges fall to 0 when the clients leave"
bridge_stop "$BPID"
[ "$STOP_STATUS" = 0 ] || fail "bridge exit $STOP_STATUS"
echo "ok: B stops cleanly"
