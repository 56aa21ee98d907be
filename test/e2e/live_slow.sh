#!/usr/bin/env bash
# A slow Server-Sent Events client is dropped, not buffered without bound
# (docs/live.md "Server-Sent Events", "The hub"): one bridge with every role;
# client S subscribes to 1,000 keys with a 4 KiB receive buffer and never
# reads; client F (curl -N) watches one of those keys.  3,000 shares over the
# 1,000 keys queue ~500 KB for S, far more than its socket (HTTP_LIVE_SNDBUF),
# libmicrohttpd's buffer and LIVE_SUB_QUEUE_BYTES hold: S is dropped
# (sharecount_live_subscribers_dropped_total, its subscriptions removed, its
# connection closed) while F gets every change up to the key's final count,
# and the bridge's RSS stays bounded.  (Without HTTP_LIVE_SNDBUF the kernel
# took all 500 KB into S's send buffer and S was never dropped.)
. "$(dirname "$0")/bridge.inc"
e2e_setup live_slow
P=$(sc_free_port)
B="http://127.0.0.1:$P"
bridge_start --roles=publisher,consumer,http --http_listen=127.0.0.1:$P --poll_interval_ms=100
BPID=$BRIDGE_PID
for _ in $(seq 300); do curl -sf "$B/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$B/healthz" >/dev/null || fail "the http bridge did not start"
ids=$(seq -s, -f 'k%g' 0 999)

# S: a raw socket that asks for 1,000 keys and then never reads (it only waits for the end)
/usr/bin/python3 - "$P" "$ids" > "$SC_TMP/live_slow.s" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET /share-links/stream/article?ids=%s HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[2]).encode())
print("connected", flush=True)
while True:
    time.sleep(1)   # never reads: the bridge must drop it
EOF
SPID=$!
sc_on_exit "kill $SPID"
curl -sN --max-time 600 "$B/share-links/stream/article?ids=k7" > "$SC_TMP/live_slow.f" 2>&1 &
FPID=$!
sc_on_exit "kill $FPID"
for _ in $(seq 600); do grep -q '"shareCount":0' "$SC_TMP/live_slow.f" && break; sleep 0.1; done
grep -q '"shareCount":0' "$SC_TMP/live_slow.f" || fail "F got no snapshot"
for _ in $(seq 600); do
  curl -s "$B/metrics" | grep -qE '^sharecount_live_subscriptions 1001$' && break; sleep 0.1
done
echo "ok: S subscribed to 1,000 keys (not reading), F to one"

for r in 1 2 3; do
  q "INSERT INTO share_links (content_type, content_id, user_id) SELECT 'article', 'k' || g, 'u$r' FROM generate_series(0, 999) g" >/dev/null
  sleep 1
done
wait_drained 120
end=$((SECONDS + 120))
until curl -s "$B/metrics" | grep -qE '^sharecount_live_subscribers_dropped_total [1-9]'; do
  [ $SECONDS -lt $end ] || fail "S was not dropped: $(curl -s "$B/metrics" | grep sharecount_live_)"
  sleep 0.5
done
echo "ok: S dropped (sharecount_live_subscribers_dropped_total >= 1)"
until curl -s "$B/metrics" | grep -qE '^sharecount_live_subscriptions 1$'; do
  [ $SECONDS -lt $end ] || fail "S's subscriptions stayed: $(curl -s "$B/metrics" | grep sharecount_live_subscriptions)"
  sleep 0.5
done
echo "ok: its 1,000 subscriptions are gone"
until curl -s "$B/metrics" | grep -qE '^sharecount_live_subscribers\{transport="sse"\} 1$'; do
  [ $SECONDS -lt $end ] || fail "S's stream stayed open: $(curl -s "$B/metrics" | grep 'sharecount_live_subscribers{')"
  sleep 0.5
done
echo "ok: its stream is closed (at most http_timeout_ms after its socket filled)"
for _ in $(seq 600); do grep -q '"contentId":"k7","shareCount":3,' "$SC_TMP/live_slow.f" && break; sleep 0.1; done
grep -q '"contentId":"k7","shareCount":3,' "$SC_TMP/live_slow.f" || fail "F did not get k7 = 3: $(tail -3 "$SC_TMP/live_slow.f")"
kill -0 "$FPID" || fail "F's stream ended"
echo "ok: F kept receiving (k7 = 3)"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$BPID/status")
if [[ $(ldd "$BRIDGE" 2>/dev/null) == *libasan* ]]; then
  echo "ok: bridge RSS $((rss / 1024)) MiB (AddressSanitizer build: not checked)"
else
  [ "$rss" -lt 65536 ] || fail "bridge RSS $rss KiB"
  echo "ok: bridge RSS $((rss / 1024)) MiB (< 64)"
fi
