#!/usr/bin/env bash
# Large batch reads and "every request gets an answer" (docs/http.md, "POST
# /share-links/counts" and "Errors"), end to end with curl against an
# http-only bridge at the default http_conn_memory (16 KiB):
#   - POST of 1,000 UUIDs -> 200, body byte for byte what sharecount_get says
#     (counts applied by a publisher+consumer bridge first), keep-alive kept;
#   - the largest valid body (1,000 ids of 256 \u escapes, 1.5 MB) -> 200;
#   - body over 2 MiB -> 413 (with Content-Length and chunked), bad JSON,
#     ids not an array of strings, 1,001 ids -> 400, wrong Content-Type -> 415,
#     405s with their Allow header; all in the JSON error shape;
#   (requests too large for http_conn_memory: test/e2e/http_limits_answer.sh).
. "$(dirname "$0")/bridge.inc"
e2e_setup http_post
W=$SC_TMP/http_post
mkdir -p "$W"
JSON='application/json; charset=utf-8'
err_body() { printf '{"statusCode":%s,"message":"%s","error":"%s"}' "$1" "$2" "$3"; }

# 1,000 UUIDs; the first 40 get 1..40 rows each, applied by a broker bridge
q "CREATE TABLE ids AS SELECT g, gen_random_uuid()::text AS id FROM generate_series(1, 1000) g" >/dev/null
q "INSERT INTO share_links (content_type, content_id, user_id)
   SELECT 'article', id, 'u' || k FROM ids, generate_series(1, 40) k WHERE k <= g AND g <= 40" >/dev/null
bridge_start
wait_drained 120
bridge_stop "$BRIDGE_PID"
[ "$(q "SELECT sum(sharecount_get('article', id)) FROM ids")" = 820 ] || fail "counts not applied"

PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT
# HTTP_POST_BRIDGE=path runs another binary as the http bridge (to check this test against 1.0)
"${HTTP_POST_BRIDGE:-$BRIDGE}" -c /dev/null --roles=http --pg-conninfo="$E2E_PGURL" --http-listen="127.0.0.1:$PORT" \
  --http-timeout-ms=3000 > "$W/bridge.log" 2>&1 &
HPID=$!
sc_on_exit "kill $HPID 2>/dev/null; wait $HPID 2>/dev/null"
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$B/healthz" || true)" = 200 ] && break; sleep 0.2
done

# call NAME CURL-ARGS…: run curl, set RC (curl's exit), CODE, CTYPE, BODY
call() {
  local out
  RC=0; out=$(curl -s --max-time 60 -w '\n%{http_code} %{content_type}' "$@") || RC=$?
  BODY=${out%$'\n'*}; local tail=${out##*$'\n'}; CODE=${tail%% *}; CTYPE=${tail#* }
}
# expect NAME STATUS WANT-BODY CURL-ARGS…: a JSON answer with exactly that body
expect() {
  local name=$1 st=$2 want=$3; shift 3
  call "$@"
  [ "$RC" = 0 ] && [ "$CODE" = "$st" ] && [ "$CTYPE" = "$JSON" ] && [ "$BODY" = "$want" ] ||
    fail "$name: curl exit $RC, $CODE $CTYPE, body ${BODY:0:300} (want $st ${want:0:300})"
  echo "ok: $name"
}
post() { curl_args=(-X POST -H 'Content-Type: application/json' --data-binary "@$1" "$B/share-links/counts/article"); }

# ---------------------------------------------------- POST 1,000 UUIDs -----
q "SELECT '{\"ids\":[' || string_agg('\"' || id || '\"', ',' ORDER BY g) || ']}' FROM ids" > "$W/1000.json"
want=$(q "SELECT '{\"contentType\":\"article\",\"counts\":{'
           || string_agg('\"' || id || '\":' || sharecount_get('article', id), ',' ORDER BY g) || '}}' FROM ids")
post "$W/1000.json"
expect "POST of 1,000 UUIDs -> 200, every count equal to sharecount_get" 200 "$want" "${curl_args[@]}"
# two POSTs on one connection: the connection stays usable after a POST
n=$(curl -s -w '%{http_code} %{num_connects}\n' -o /dev/null -o /dev/null -X POST \
      -H 'Content-Type: application/json' --data-binary "@$W/1000.json" \
      "$B/share-links/counts/article" "$B/share-links/counts/article" | tr '\n' ' ')
[ "$n" = "200 1 200 0 " ] || fail "two POSTs on one keep-alive connection: $n"
echo "ok: two POSTs on one keep-alive connection"
expect "repeats answered once, first-seen order; other keys ignored; charset parameter" 200 \
  "{\"contentType\":\"article\",\"counts\":{\"b\":0,\"a\":0}}" \
  -X POST -H 'Content-Type: Application/JSON; charset=utf-8' --data-binary '{"x":1,"ids":["b","a","b"]}' \
  "$B/share-links/counts/article?ids=ignored"

# the largest valid body: 1,000 distinct ids of 256 bytes, each byte a \u escape
q "SELECT '{\"ids\":[' || string_agg('\"' || lpad(to_hex(g), 4, '0') || repeat('\\u0001', 252) || '\"', ','
   ORDER BY g) || ']}' FROM generate_series(1, 1000) g" > "$W/big.json"
size=$(wc -c < "$W/big.json")
post "$W/big.json"; call "${curl_args[@]}"
[ "$RC" = 0 ] && [ "$CODE" = 200 ] && [ "$(grep -o '":0' <<<"$BODY" | wc -l)" = 1000 ] ||
  fail "largest valid body ($size bytes) -> exit $RC, $CODE ${BODY:0:200}"
echo "ok: 1,000 ids of 256 escaped bytes ($size bytes) -> 200 with 1,000 counts"

# ------------------------------------------------------------ bad bodies ----
head -c $((2 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' > "$W/over.json"
E413=$(err_body 413 'body is larger than 2097152 bytes' 'Payload Too Large')
post "$W/over.json"
expect "body of 2 MiB + 1 byte (Content-Length) -> 413" 413 "$E413" "${curl_args[@]}"
expect "body of 2 MiB + 1 byte (chunked) -> 413" 413 "$E413" -H 'Transfer-Encoding: chunked' "${curl_args[@]}"
expect "not JSON -> 400" 400 "$(err_body 400 'body is not valid JSON in UTF-8 (line 1, column 8)' 'Bad Request')" \
  -X POST -H 'Content-Type: application/json' --data-binary '{"ids":]' "$B/share-links/counts/article"
expect "invalid UTF-8 in a string -> 400" 400 "$(err_body 400 'body is not valid JSON in UTF-8 (line 1, column 9)' 'Bad Request')" \
  -X POST -H 'Content-Type: application/json' --data-binary $'{"ids":["\xff"]}' "$B/share-links/counts/article"
expect "ids not an array -> 400" 400 "$(err_body 400 'ids must be an array of strings' 'Bad Request')" \
  -X POST -H 'Content-Type: application/json' --data-binary '{"ids":"a,b"}' "$B/share-links/counts/article"
expect "an id that is a number -> 400" 400 "$(err_body 400 'each id in ids must be a string' 'Bad Request')" \
  -X POST -H 'Content-Type: application/json' --data-binary '{"ids":["a",1]}' "$B/share-links/counts/article"
expect "an array body -> 400" 400 "$(err_body 400 'body must be a JSON object: {\"ids\":[\"a\",\"b\"]}' 'Bad Request')" \
  -X POST -H 'Content-Type: application/json' --data-binary '["a"]' "$B/share-links/counts/article"
expect "empty body -> 400" 400 "$(err_body 400 'body is not valid JSON in UTF-8 (line 1, column 0)' 'Bad Request')" \
  -X POST -H 'Content-Type: application/json' --data-binary '' "$B/share-links/counts/article"
expect "an id with NUL -> 400, like the GET" 400 "$(err_body 400 'each id in ids must not contain NUL' 'Bad Request')" \
  -X POST -H 'Content-Type: application/json' --data-binary '{"ids":["a\u0000b"]}' "$B/share-links/counts/article"
q "SELECT '{\"ids\":[' || string_agg('\"' || g || '\"', ',') || ']}' FROM generate_series(1, 1001) g" > "$W/1001.json"
post "$W/1001.json"
expect "1,001 ids -> 400 like the GET" 400 "$(err_body 400 'ids lists more than 1000 ids' 'Bad Request')" "${curl_args[@]}"
expect "form Content-Type -> 415" 415 "$(err_body 415 'Content-Type must be application/json' 'Unsupported Media Type')" \
  -X POST --data-binary '{"ids":["a"]}' "$B/share-links/counts/article"
expect "bad contentType segment -> 400 before the body is read" 400 \
  "$(err_body 400 'contentType has an invalid percent-encoding' 'Bad Request')" \
  -X POST -H 'Content-Type: application/json' --data-binary '{"ids":["a"]}' "$B/share-links/counts/a%zz"
call -D - -X PUT "$B/share-links/counts/article"
grep -q $'^Allow: GET, HEAD, POST\r$' <<<"$BODY" && [ "$CODE" = 405 ] || fail "PUT /counts: $CODE ${BODY:0:300}"
echo "ok: PUT /share-links/counts -> 405, Allow: GET, HEAD, POST"
expect "POST /share-links/count -> 405" 405 "$(err_body 405 'only GET and HEAD are allowed here' 'Method Not Allowed')" \
  -X POST -H 'Content-Type: application/json' --data-binary '{"ids":["a"]}' "$B/share-links/count/article/1"

# Requests too large for http_conn_memory (GET URLs, headers): test/e2e/http_limits_answer.sh.
expect "the bridge still answers" 200 '{"status":"ok"}' "$B/healthz"
