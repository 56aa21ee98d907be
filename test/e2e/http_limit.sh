#!/usr/bin/env bash
# http_max_connections, end to end (docs/http.md, "Limits and timeouts"): at the limit a
# new client is not refused or reset but waits (in the listen backlog) until
# a connection closes, and connections that closed free their place again (no
# slot is lost, also after many short-lived connections).
. "$(dirname "$0")/bridge.inc"
e2e_setup http_limit
W=$SC_TMP/http_limit
mkdir -p "$W"
PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT
"$BRIDGE" --roles=http --pg-conninfo="$E2E_PGURL" --http-listen="127.0.0.1:$PORT" \
  --http-max-connections=2 --http-timeout-ms=20000 > "$W/bridge.log" 2>&1 &
BPID=$!
sc_on_exit "kill $BPID 2>/dev/null; wait $BPID 2>/dev/null"
code() { curl -s -o /dev/null -w '%{http_code}' --max-time "$1" "$B/healthz"; }
for _ in $(seq 50); do [ "$(code 1 || true)" = 200 ] && break; sleep 0.2; done
[ "$(code 2)" = 200 ] || { tail "$W/bridge.log" >&2; fail "bridge did not answer"; }

# 60 short-lived connections, one after the other: each closes, so with a
# limit of 2 every one must be served (a leaked slot would stall the third)
for i in $(seq 60); do
  c=$(code 5 || true)
  [ "$c" = 200 ] || fail "short-lived connection $i got '$c'"
done
echo "ok: 60 sequential connections served with http_max_connections = 2"

# two idle connections fill the limit; a third client waits, it is not refused
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
sleep 0.5
rc=0; curl -s -o /dev/null --max-time 2 "$B/healthz" || rc=$?
[ "$rc" = 28 ] || fail "a client over the limit should wait (curl timeout, exit 28), got exit $rc"
echo "ok: at the limit a new client waits instead of being refused"

# closing one idle connection lets a waiting client in
exec 3<&- 3>&-
c=$(code 5 || true)
[ "$c" = 200 ] || fail "after a connection closed, a new client got '$c'"
exec 4<&- 4>&-
echo "ok: a closed connection frees its place"

