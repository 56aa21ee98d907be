#!/usr/bin/env bash
# WebSocket groundwork of docs/live.md, end to end without the bridge:
# test/unit/ws_echo_server.bin (libmicrohttpd's upgrade + bridge/live_ws.c over
# wslay + bridge/live_hub.c) against a real client (Debian's python3-websockets,
# test/unit/ws_live_client.py).  Needs no database or broker.
# Checks: a GET without the upgrade headers or with a bad Sec-WebSocket-Key is a
# 400 in the JSON error shape; the client library accepts our handshake (it
# verifies Sec-WebSocket-Accept); garbage, bad shapes, 10,000 ids, 10,000
# subscriptions get error events; binary, oversized and unmasked frames get
# close 1003 / 1009 / 1002; another client is unaffected; the server survives.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s test/unit/ws_echo_server.bin
T=$(mktemp -d)
SPID=
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$T/server.log" >&2; exit 1; }

./test/unit/ws_echo_server.bin "$T/port" 2> "$T/server.log" &
SPID=$!
for _ in $(seq 300); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "ws_echo_server did not start"
P=$(cat "$T/port")

body=$(curl -s --max-time 30 -w ' %{http_code}' "http://127.0.0.1:$P/share-links/ws")
[[ $body == *'"statusCode":400'*'"error":"Bad Request"}'*' 400' ]] || fail "plain GET: $body"
body=$(curl -s --max-time 30 -w ' %{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
  -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: tooshort' "http://127.0.0.1:$P/share-links/ws")
[[ $body == *'Sec-WebSocket-Key must be the base64 of 16 bytes'*' 400' ]] || fail "bad key: $body"
echo "ok: handshake without upgrade headers or with a bad key -> 400 JSON"

timeout 300 /usr/bin/python3 test/unit/ws_live_client.py "$P" || fail "ws client checks"
kill -0 "$SPID" || fail "ws_echo_server died"
echo "ok: server still running"
