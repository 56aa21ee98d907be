#!/usr/bin/env bash
# test/browser.sh — a real headless browser for tests (docs/live.md): Debian's
# chromium driven through the DevTools protocol (test/browser_cdp.py).
#
# Sourced, it defines:
#   browser_start URL      start chromium (--headless=new --no-sandbox
#                          --disable-gpu, a fresh profile in $BROWSER_DIR) on URL
#   browser_eval EXPR      print the value of a JavaScript expression in the page
#   browser_wait EXPR WANT [SECONDS]
#                          poll EXPR until it prints WANT (default deadline
#                          60 s, a deadline only: nothing is timed); prints the
#                          last value and returns 1 if it never did
#   browser_stop           stop chromium, remove the profile
# Run directly, it tests itself: bridge/page.html served by a fake SSE server
# (test/browser_fake_sse.py) must show the first count, then the second one
# after it is sent, and neither an older version nor another id's count.
# Needs: chromium, python3-websockets (test/deps.sh installs both).
BROWSER_PY=${BROWSER_PY:-/usr/bin/python3}
BROWSER_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

browser_start() {
  BROWSER_DIR=$(mktemp -d)
  chromium --headless=new --no-sandbox --disable-gpu --no-first-run --no-default-browser-check \
    --disable-extensions --disable-background-networking --user-data-dir="$BROWSER_DIR/profile" \
    --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 "$1" > "$BROWSER_DIR/chromium.log" 2>&1 &
  BROWSER_PID=$!
  local f=$BROWSER_DIR/profile/DevToolsActivePort
  for _ in $(seq 600); do [ -s "$f" ] && break; sleep 0.1; done
  [ -s "$f" ] || { echo "browser: chromium did not start" >&2; tail -20 "$BROWSER_DIR/chromium.log" >&2; return 1; }
  BROWSER_PORT=$(head -1 "$f")
}

browser_eval() { "$BROWSER_PY" "$BROWSER_HERE/browser_cdp.py" "$BROWSER_PORT" "$1"; }

browser_wait() {
  local expr=$1 want=$2 end=$((SECONDS + ${3:-60})) got=
  while [ $SECONDS -lt $end ]; do
    got=$(browser_eval "$expr" 2>/dev/null) || got="(no answer)"
    [ "$got" = "$want" ] && { echo "$got"; return 0; }
    sleep 0.2
  done
  echo "$got"; return 1
}

# Never fails (it runs in EXIT traps under set -e): chromium's helper
# processes may still be writing its profile when the main one has exited.
browser_stop() {
  if [ -n "${BROWSER_PID:-}" ]; then
    kill "$BROWSER_PID" 2>/dev/null || true
    wait "$BROWSER_PID" 2>/dev/null || true
  fi
  if [ -n "${BROWSER_DIR:-}" ]; then
    rm -rf "$BROWSER_DIR" 2>/dev/null || { sleep 1; rm -rf "$BROWSER_DIR" 2>/dev/null || true; }
  fi
  BROWSER_PID= BROWSER_DIR=
}

browser_selftest() {
  set -euo pipefail
  local root got
  root=$(cd "$BROWSER_HERE/.." && pwd)
  BROWSER_T=$(mktemp -d)
  local t=$BROWSER_T
  trap 'set +e; kill ${BROWSER_FAKE_PID:-} 2>/dev/null; browser_stop; wait 2>/dev/null; rm -rf "$BROWSER_T" 2>/dev/null' EXIT
  "$BROWSER_PY" "$BROWSER_HERE/browser_fake_sse.py" "$root/bridge/page.html" "$t/port" 2> "$t/server.log" &
  BROWSER_FAKE_PID=$!
  for _ in $(seq 300); do [ -s "$t/port" ] && break; sleep 0.1; done
  [ -s "$t/port" ] || { echo "FAIL: fake SSE server did not start"; cat "$t/server.log"; exit 1; }
  local base="http://127.0.0.1:$(cat "$t/port")"
  browser_start "$base/?contentType=article&contentId=123"
  count='document.getElementById("count").textContent'
  got=$(browser_wait "$count" 5) || { echo "FAIL: page shows '$got', want the first count 5"; exit 1; }
  echo "ok: the page shows the first count (5)"
  curl -sf --max-time 30 "$base/next" > /dev/null
  got=$(browser_wait 'document.body.dataset.events' 4) || { echo "FAIL: page read '$got' events, want 4"; exit 1; }
  got=$(browser_eval "$count")
  [ "$got" = 6 ] || { echo "FAIL: after v2=6, stale v1=4, other id=100 the page shows '$got', want 6"; exit 1; }
  echo "ok: then the second count (6); an older version and another id's count do not show"
  [ "$(browser_eval 'document.getElementById("status").textContent')" = live ] || { echo "FAIL: status"; exit 1; }
  echo "ok: status live"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  browser_selftest
fi
