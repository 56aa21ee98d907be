#!/usr/bin/env bash
# Every HTTP request gets an answer (docs/http.md, "Request size limits"), end
# to end against an http-only bridge at the default http_conn_memory (16 KiB):
#   - curl GET /share-links/counts with 400..460 UUIDs, 1,000 and 2,000: 200 up
#     to a 15,360-byte request-target, the JSON 414 above it (1.0 answered
#     some with libmicrohttpd's HTML 431/414 and closed 439..441 without any);
#   - the same and more over raw sockets (http_limits_answer.py), on new
#     connections and after a first request on a kept-alive one: headers,
#     header fields, query parameters and cookies around the head budget (200
#     / the JSON 431), headers of 100 KB and 1 MB, HEAD, no line end, bare LF,
#     POST with Content-Length over 2 MiB and a chunked body over it (413);
#   - the answers are counted in sharecount_http_requests_total, and the
#     bridge answers normally after each group.
# HTTP_LIMITS_BRIDGE=path runs another binary (to check this test against an older build).
. "$(dirname "$0")/bridge.inc"
e2e_setup http_limits_answer
W=$SC_TMP/http_limits_answer
mkdir -p "$W"
MEM=16384
URI_MAX=$((MEM - 1024))
JSON='application/json; charset=utf-8'
UUID=0b6f7e2c-3c1a-4f5e-9d7a-2b8c4e6f8a01
E414='{"statusCode":414,"message":"the URL is too long: POST the ids to /share-links/counts/:contentType","error":"URI Too Long"}'

PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT
"${HTTP_LIMITS_BRIDGE:-$BRIDGE}" -c /dev/null --roles=http --pg-conninfo="$E2E_PGURL" \
  --http-listen="127.0.0.1:$PORT" --http-timeout-ms=5000 > "$W/bridge.log" 2>&1 &
HPID=$!
sc_on_exit "kill $HPID 2>/dev/null; wait $HPID 2>/dev/null"
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$B/healthz" || true)" = 200 ] && break; sleep 0.2
done

# call CURL-ARGS…: run curl, set RC (curl's exit), CODE, CTYPE, BODY
call() {
  local out
  RC=0; out=$(curl -s --max-time 60 -w '\n%{http_code} %{content_type}' "$@") || RC=$?
  BODY=${out%$'\n'*}; local tail=${out##*$'\n'}; CODE=${tail%% *}; CTYPE=${tail#* }
}
still_answers() {
  call "$B/healthz"
  [ "$RC" = 0 ] && [ "$CODE" = 200 ] && [ "$BODY" = '{"status":"ok"}' ] || fail "after $1: /healthz got $RC $CODE $BODY"
  echo "ok: a normal request after $1 is answered"
}
counted() { curl -s "$B/metrics" | sed -n "s/^sharecount_http_requests_total{status=\"$1\"} //p"; }

# ------------------------------------------------ curl, URLs at the limit ----
seen=""
for n in $(seq 400 460) 1000 2000; do
  ids=$(printf "$UUID,%.0s" $(seq "$n")); ids=${ids%,}
  target="/share-links/counts/article?ids=$ids"
  call "$B$target"
  [ "$RC" = 0 ] || fail "curl GET with $n UUIDs: no answer (curl exit $RC)"
  [ "$CTYPE" = "$JSON" ] || fail "curl GET with $n UUIDs: $CODE, Content-Type '$CTYPE': ${BODY:0:120}"
  if [ "${#target}" -le "$URI_MAX" ]; then
    [ "$CODE" = 200 ] && [ "$BODY" = "{\"contentType\":\"article\",\"counts\":{\"$UUID\":0}}" ] ||
      fail "curl GET with $n UUIDs (${#target}-byte URL): $CODE ${BODY:0:120}"
  else
    [ "$CODE" = 414 ] && [ "$BODY" = "$E414" ] || fail "curl GET with $n UUIDs (${#target}-byte URL): $CODE ${BODY:0:120}"
  fi
  seen+="$n:$CODE "
done
echo "# $seen"
echo "ok: curl GET /counts with 400..460, 1,000 and 2,000 UUIDs: 200 up to a $URI_MAX-byte URL, then the JSON 414"
still_answers "the URL sweep"
[ "$(counted 414)" -ge 48 ] || fail "sharecount_http_requests_total{status=\"414\"} is '$(counted 414)'"
echo "ok: the 414s are counted in sharecount_http_requests_total"

# -------------------------------------------------------------- raw sockets ----
for group in uuids headers misc; do
  python3 "$(dirname "$0")/http_limits_answer.py" "$PORT" "$MEM" "$group" || fail "raw-socket group $group"
  still_answers "the $group group"
done
[ "$(counted 431)" -ge 10 ] || fail "sharecount_http_requests_total{status=\"431\"} is '$(counted 431)'"
echo "ok: the 431s are counted in sharecount_http_requests_total"
