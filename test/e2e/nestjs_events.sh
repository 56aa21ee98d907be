#!/usr/bin/env bash
# A real NestJS service receives a bridge's count-change events (docs/interop.md,
# "Count-change events in a NestJS service"): test/nestjs (@nestjs/microservices
# Transport.RMQ, @EventPattern('share_count_changed'), installed by `npm ci` from
# its committed package-lock.json) declares its own queue, asserts the
# sharecount.updates exchange as the bridge declares it (a mismatch would be a
# 406 and crash it) and binds the queue with '#'.  What it prints must match
# the database: contentId, shareCount and version of the last event per key
# (two content types), deltas adding up to the count, a DELETE's negative delta.
# Skipped (with a message, counted as passed) only when npm is not installed.
. "$(dirname "$0")/bridge.inc"
if ! command -v npm >/dev/null 2>&1; then
  echo "# SKIP nestjs_events: npm is not installed (Debian: apt-get install npm), no NestJS service to run"
  exit 0
fi
NEST=$SC_ROOT/test/nestjs
# npm ci only when node_modules is missing or older than the lock file
(cd "$NEST" && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } \
  && npx --no-install tsc -p tsconfig.json) >&2 || fail "npm ci / tsc in test/nestjs"

e2e_setup nestjs_events
bridge_start --roles=publisher,consumer
NEST_LOG=$SC_TMP/$E2E_NAME.nest.log
AMQP_URL=$E2E_AMQP EVENTS_QUEUE=e2e.nest-events node "$NEST/dist/main.js" > "$NEST_LOG" 2>&1 &
NEST_PID=$!
sc_on_exit "kill $NEST_PID"
for i in $(seq 600); do grep -q 'listening' "$NEST_LOG" && break; kill -0 $NEST_PID || break; sleep 0.1; done
grep -q 'listening' "$NEST_LOG" || { cat "$NEST_LOG" >&2; fail "the NestJS service did not start"; }

# received KEY: the events the service printed for contentType/contentId KEY, one data object a line
received() { grep '^{"received"' "$NEST_LOG" | jq -c --arg k "$1" 'select(.received.contentType + "/" + .received.contentId == $k) | .received'; }
# wait_received KEY COUNT: until the service printed an event of KEY with shareCount COUNT (60 s)
wait_received() {
  for i in $(seq 600); do received "$1" | jq -e --argjson n "$2" 'select(.shareCount == $n)' >/dev/null && return 0; sleep 0.1; done
  cat "$NEST_LOG" >&2; fail "the NestJS service got no event for $1 with shareCount $2"
}
# check KEY: its last event equals the database's count and version, and its deltas add up to the count
check() {
  local t=${1%%/*} id=${1#*/} db last
  db=$(q "SELECT share_count || ' ' || version FROM sharecount_get_versioned('$t', '{$id}')")
  last=$(received "$1" | jq -s -r 'last | "\(.shareCount) \(.version)"')
  [ "$last" = "$db" ] || fail "$1: the service's last event says '$last' (count version), the database '$db'"
  [ "$(received "$1" | jq -s '[.[].delta] | add')" = "${db%% *}" ] || fail "$1: deltas do not add up to ${db%% *}"
}

q "INSERT INTO share_links (content_type, content_id, user_id) SELECT 'article', 'n1', 'u' || g FROM generate_series(1, 30) g;
   INSERT INTO share_links (content_type, content_id, user_id) SELECT 'post', 'p9', 'u' || g FROM generate_series(1, 5) g;" >/dev/null
wait_drained 60
wait_received article/n1 30
wait_received post/p9 5
check article/n1
check post/p9
q "DELETE FROM share_links WHERE id IN (SELECT id FROM share_links WHERE content_id = 'n1' LIMIT 3)" >/dev/null
wait_drained 60
wait_received article/n1 27
check article/n1
received article/n1 | jq -e -s 'any(.[]; .delta < 0)' >/dev/null || fail "no negative delta after the DELETE"
kill -0 $NEST_PID || fail "the NestJS service died"
echo "# the NestJS service received $(grep -c '^{"received"' "$NEST_LOG") events" >&2
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
