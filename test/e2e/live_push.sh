#!/usr/bin/env bash
# Live push end to end (docs/live.md): bridge A (publisher, consumer) applies
# shares INSERTed by SQL and publishes their count changes; bridge B (http
# only) pushes them to Server-Sent Events (curl -N) and WebSocket
# (python3-websockets, live_push_ws.py) subscribers.
# Checks: the stream's errors are /counts' (400 JSON), another method is a
# 405, a foreign Origin a 403 and a listed one gets CORS; GET / is the page;
# a subscriber gets the current counts first, then each change; a WebSocket
# client sending garbage, a 300 KiB frame or 10,000 subscriptions gets an
# error event / close 1009 while another client keeps receiving; a
# reconnected subscriber gets the current count first; the subscriber
# metrics; a stream quiet for 15 s gets a heartbeat and outlives
# http_timeout_ms; B stops cleanly with subscribers connected.
. "$(dirname "$0")/bridge.inc"
e2e_setup live_push
PB=$(sc_free_port)
B="http://127.0.0.1:$PB"
SSE_PIDS=()
sse_stop() { local p; for p in "${SSE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
sc_on_exit sse_stop

# sse_open NAME URL [curl args...]: a stream read into $SC_TMP/live_push.NAME.sse in the background.
sse_open() {
  local name=$1 url=$2; shift 2
  curl -sN --max-time 600 "$@" "$url" > "$SC_TMP/live_push.$name.sse" 2>&1 &
  SSE_PIDS+=($!)
}
# sse_wait NAME PATTERN [SECONDS]: until the stream holds a line matching PATTERN (grep -E).
sse_wait() {
  local f=$SC_TMP/live_push.$1.sse end=$((SECONDS + ${3:-60}))
  until grep -qE "$2" "$f" 2>/dev/null; do
    [ $SECONDS -lt $end ] || { cat "$f" >&2; fail "stream $1: no line matching $2"; }
    sleep 0.2
  done
}
count_line() { echo "^data: \\{\"contentType\":\"article\",\"contentId\":\"$1\",\"shareCount\":$2,"; }

bridge_start --poll_interval_ms=100
bridge_start --roles=http --http_listen=127.0.0.1:$PB --http_allowed_origins=http://allowed.example \
  --http_timeout_ms=2000
BPID=$BRIDGE_PID
for _ in $(seq 300); do curl -sf "$B/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$B/healthz" >/dev/null || fail "the http bridge did not start"
q "INSERT INTO share_links (content_type, content_id, user_id) SELECT 'article', 'p1', 'u' || g FROM generate_series(1, 3) g" >/dev/null
wait_drained

# errors: the /counts rules, another method, a foreign Origin
body=$(curl -s -w ' %{http_code}' "$B/share-links/stream/article")
[[ $body == '{"statusCode":400,"message":"ids query parameter is required","error":"Bad Request"} 400' ]] || fail "no ids: $body"
ids=$(seq -s, 1 1001)
body=$(curl -s -w ' %{http_code}' "$B/share-links/stream/article?ids=$ids")
[[ $body == *'"message":"ids lists more than 1000 ids"'*' 400' ]] || fail "1001 ids: $body"
body=$(curl -s -w ' %{http_code}' "$B/share-links/stream/article/x?ids=1")
[[ $body == *'too many path segments: expected /share-links/stream/:contentType?ids=a,b,c'*' 400' ]] || fail "segments: $body"
body=$(curl -s -w ' %{http_code}' -X POST -d x "$B/share-links/stream/article?ids=1")
[[ $body == *'"statusCode":405'*' 405' ]] || fail "POST: $body"
body=$(curl -s -w ' %{http_code}' -H 'Origin: http://evil.example' "$B/share-links/stream/article?ids=p1")
[[ $body == '{"statusCode":403,"message":"this Origin is not allowed (http_allowed_origins)","error":"Forbidden"} 403' ]] \
  || fail "foreign Origin: $body"
body=$(curl -s -w ' %{http_code}' -H 'Origin: http://evil.example' "$B/")
[[ $body == *'"statusCode":403'*' 403' ]] || fail "page, foreign Origin: $body"
# the same answers on a kept-alive connection (libmicrohttpd's path; a first request is the bridge's own)
w=' %{http_code} %{num_connects}\n'
body=$(curl -s -w "$w" "$B/healthz" "$B/share-links/stream/article" --next -s -w "$w" \
  -H 'Origin: http://evil.example' "$B/share-links/stream/article?ids=p1" 2>&1 | tail -2 | tr '\n' '|')
[[ $body == '{"statusCode":400,"message":"ids query parameter is required","error":"Bad Request"} 400 0|{"statusCode":403,"message":"this Origin is not allowed (http_allowed_origins)","error":"Forbidden"} 403 0|' ]] \
  || fail "kept-alive connection: $body"
echo "ok: stream errors as /counts' (400 JSON), POST 405, a foreign Origin 403 (new and kept-alive connections)"

page=$(curl -s -D "$SC_TMP/live_push.page.h" "$B/?contentType=article&contentId=p1")
grep -qi '^content-type: text/html' "$SC_TMP/live_push.page.h" || fail "GET / content type"
[[ $page == *'new EventSource("/share-links/stream/"'* ]] || fail "GET / is not the live page"
echo "ok: GET / serves the live page"

# SSE: the current counts first
sse_open one "$B/share-links/stream/article?ids=p1,p2" -H "Origin: http://127.0.0.1:$PB"
sse_wait one "$(count_line p1 3)"
sse_wait one "$(count_line p2 0)"
[ "$(grep -c '^event: count' "$SC_TMP/live_push.one.sse")" = 2 ] || fail "snapshot: $(cat "$SC_TMP/live_push.one.sse")"
echo "ok: SSE subscribe (same Origin) -> one count event per key first (p1=3, p2=0)"
curl -s -D "$SC_TMP/live_push.cors.h" --max-time 5 -H 'Origin: http://allowed.example' \
  "$B/share-links/stream/article?ids=p1" >/dev/null || true
grep -qi '^access-control-allow-origin: http://allowed.example' "$SC_TMP/live_push.cors.h" \
  || fail "listed Origin: no CORS header: $(cat "$SC_TMP/live_push.cors.h")"
grep -qi '^content-type: text/event-stream' "$SC_TMP/live_push.cors.h" || fail "stream content type"
echo "ok: a listed Origin gets Access-Control-Allow-Origin"

# WebSocket, and the changes (two shares INSERTed by live_push_ws.py)
timeout 600 /usr/bin/python3 "$SC_ROOT/test/e2e/live_push_ws.py" "$PB" "$E2E_DB" 3 || fail "WebSocket checks"
sse_wait one "$(count_line p1 4)"
sse_wait one "$(count_line p1 5)"
echo "ok: the SSE subscriber got each change (4, 5) through B"

sse_open two "$B/share-links/stream/article?ids=p1"
sse_wait two '^data: '
first=$(grep -m1 '^data: ' "$SC_TMP/live_push.two.sse")
[[ $first =~ $(count_line p1 5) ]] || fail "reconnected stream's first event: $first"
echo "ok: a reconnected SSE subscriber gets the current count (5) first"

m=$(curl -s "$B/metrics")
grep -qE '^sharecount_live_subscribers\{transport="sse"\} [1-9]' <<<"$m" || fail "metrics: $(grep live_ <<<"$m")"
grep -qE '^sharecount_live_subscriptions [1-9]' <<<"$m" || fail "metrics subscriptions"
grep -qE '^sharecount_live_events_queued_total [1-9]' <<<"$m" || fail "metrics queued"
grep -qE '^sharecount_live_subscribers_dropped_total 0$' <<<"$m" || fail "metrics dropped"
grep -qE '^sharecount_live_subscribers\{transport="ws"\} 0$' <<<"$m" || fail "metrics ws after the clients left"
echo "ok: subscriber metrics"

sse_wait one '^: heartbeat$' 90
kill -0 "${SSE_PIDS[0]}" 2>/dev/null || fail "the quiet stream was closed"
echo "ok: a quiet stream gets the heartbeat and outlives http_timeout_ms (2 s)"

bridge_stop "$BPID"
[ "$STOP_STATUS" = 0 ] || fail "bridge B with open streams: exit $STOP_STATUS"
echo "ok: B stops cleanly with streams open"
