#!/usr/bin/env bash
# The live routes on a kept-alive connection (docs/live.md "WebSocket",
# "Server-Sent Events", "Capacity"): bridge A (publisher, consumer) applies
# shares INSERTed by SQL; bridge B (http only) serves a WebSocket and a stream
# that are a connection's SECOND request, so libmicrohttpd answers them (its
# upgrade hands the WebSocket's socket, and the bytes it read past the
# handshake, to the live thread; the stream is http_live_sse.c's), and a
# WebSocket on a new connection (the door's path) next to them
# (live_keepalive.py).  Checks: a subscribe sent in the same write as the
# handshake gets its snapshot on both paths, the kept-alive stream gets its
# snapshot, one change reaches all three, the client's close is answered
# with 1000; B's subscriber gauges count them and fall back to 0; B stops
# cleanly.
. "$(dirname "$0")/bridge.inc"
e2e_setup live_keepalive
PB=$(sc_free_port)
B="http://127.0.0.1:$PB"

bridge_start --poll_interval_ms=100
bridge_start --roles=http --http_listen=127.0.0.1:$PB
BPID=$BRIDGE_PID
for _ in $(seq 300); do curl -sf "$B/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$B/healthz" >/dev/null || fail "the http bridge did not start"
# changes reach B only through its events feed: wait until it consumes
for _ in $(seq 300); do
  curl -s "$B/metrics" | grep -qx 'sharecount_event_stream_up 1' && break; sleep 0.2
done
curl -s "$B/metrics" | grep -qx 'sharecount_event_stream_up 1' || fail "B's event stream never came up"
q "INSERT INTO share_links (content_type, content_id, user_id) SELECT 'article', 'k1', 'u' || g FROM generate_series(1, 3) g" >/dev/null
wait_drained

timeout 600 /usr/bin/python3 "$SC_ROOT/test/e2e/live_keepalive.py" "$PB" "$E2E_DB" 3 || fail "kept-alive checks"

# every connection is gone: the gauges come back to 0 (the live thread's at once; libmicrohttpd's
# stream when a heartbeat, every 15 s, finds its client gone: a generous deadline of 120 s)
for _ in $(seq 600); do
  m=$(curl -s "$B/metrics")
  grep -qx 'sharecount_live_subscribers{transport="ws"} 0' <<<"$m" &&
    grep -qx 'sharecount_live_subscribers{transport="sse"} 0' <<<"$m" && break
  sleep 0.2
done
grep -qx 'sharecount_live_subscribers{transport="ws"} 0' <<<"$m" || fail "ws gauge: $(grep live_subscribers <<<"$m")"
grep -qx 'sharecount_live_subscribers{transport="sse"} 0' <<<"$m" || fail "sse gauge: $(grep live_subscribers <<<"$m")"
echo "ok: the subscriber gauges are back to 0"

bridge_stop "$BPID"
[ "$STOP_STATUS" = 0 ] || fail "bridge B: exit $STOP_STATUS"
echo "ok: B stops cleanly"
