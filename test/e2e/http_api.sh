#!/usr/bin/env bash
# e2e: the HTTP API of docs/http.md with curl against a running sharecount-bridge
# (all roles) on its own database, RabbitMQ vhost and free port:
#   - every row of docs/http.md (Endpoints, Errors) (200s, 400s, 404, 405 + Allow, exact JSON bodies);
#   - ids with spaces, slashes (%2F), quotes, backslashes, commas, unicode
#     round-trip through share_links -> outbox -> RabbitMQ -> counts -> HTTP;
#   - /metrics parses (line-format check) and its publisher/consumer counters
#     equal the jobs this test caused;
#   - abuse: 1,000 requests over 100 parallel connections, an idle connection
#     closed after http_timeout_ms, a 100 KB header, a 100 KB URL;
#   - 503 while PostgreSQL is down (keys not in the cache), 200 again after
#     it is back (the PostgreSQL server is shared: it is always restarted);
#   - concurrent single counts, coalesced into one query per batch, each get
#     their own key's count (and coalescing did happen: the pool's counters
#     on /metrics, sharecount_http_pool_coalesced_*, moved);
#   - an SQL error (a reading role without rights on sharecount_get_many) fails
#     only its own requests, not the others pipelined with them;
#   - an http-only bridge listening on [::1].
# Standalone: `bash test/e2e/http_api.sh` starts its own servers.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
if [ -z "${SC_PGURL:-}" ]; then
  sc_init; sc_pg_start || exit 1; sc_rmq_start || exit 1
else
  SC_KEEP_TMP=1; trap sc_cleanup EXIT   # run.sh owns the servers and SC_TMP
fi
SC_SHADOW_BIN=${SC_SHADOW_BIN:-$SC_TMP/inst$SC_PGBIN}
W=$(mktemp -d "$SC_TMP/http_api.XXXXXX")
DB=http_api_$$
VHOST=http_api_$$
BRIDGE=$SC_ROOT/bridge/sharecount-bridge

fails=0; n=0; failed=()
# The last answer status() saw (curl's exit, status, body), printed by bad() and forgotten after each check.
LAST=$W/last_answer
ok()   { n=$((n+1)); echo "ok $n - $1"; rm -f "$LAST"; }
bad()  {
  local last=""
  [ -f "$LAST" ] && last="; last answer (curl exit, status, body): $(head -c 400 "$LAST" | tr -d '\r' | tr '\n' ' ')"
  n=$((n+1)); fails=$((fails+1)); echo "not ok $n - $1"; [ -n "$last" ] && echo "#   $last"
  failed+=("$n - $1$last"); rm -f "$LAST"
}
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds.
wait_for() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done; }

# start_http_bridge LOG LISTEN [flags…]: an http-only bridge; sets HPID
# (killed on exit if the test does not stop it).
start_http_bridge() {
  local log=$1 listen=$2; shift 2
  "$BRIDGE" --roles=http --http-listen="$listen" "$@" > "$log" 2>&1 &
  HPID=$!
  sc_on_exit "kill $HPID 2>/dev/null; wait $HPID 2>/dev/null"
}

# ------------------------------------------------------------------ setup ----
createdb "$DB" || exit 1
sc_on_exit "dropdb --if-exists '$DB'"
sc_rmqctl -q add_vhost "$VHOST" >/dev/null && sc_rmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null || exit 1
sc_on_exit "sc_rmqctl -q delete_vhost '$VHOST'"
# If anything below fails while PostgreSQL is stopped, bring it back for the others.
sc_on_exit "pg_isready -q -h '$PGHOST' -p '$PGPORT' || sc_as_pg '$SC_SHADOW_BIN/pg_ctl' -D '$SC_TMP/pgdata' -l '$SC_TMP/pg.log' -w -t 60 start"

sc_setup_tracked -d "$DB" || exit 1

PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT
"$BRIDGE" --pg-conninfo="$SC_PGURL dbname=$DB" --amqp-url="$SC_AMQP_URL/$VHOST" \
  --http-listen="127.0.0.1:$PORT" --http-timeout-ms=2000 --http-db-timeout-ms=1000 \
  --http-max-connections=256 --poll-interval-ms=100 --reconnect-max-ms=1000 \
  > "$W/bridge.log" 2>&1 &
BPID=$!
sc_on_exit "kill $BPID 2>/dev/null; wait $BPID 2>/dev/null"
alive() { kill -0 "$BPID" 2>/dev/null; }
# status CURL-ARGS…: the status code (000: no answer); the answer is kept in $LAST for bad()
status() {
  local code rc=0
  code=$(curl -s -o "$LAST.body" -w '%{http_code}' --max-time 10 "$@") || rc=$?
  { echo "curl exit $rc, status $code:"; head -c 300 "$LAST.body" 2>/dev/null; } > "$LAST"
  echo "$code"
}
is_200() { [ "$(status "$1")" = 200 ]; }
# parallel_codes CFG MAXPAR OUT: run a curl config's requests in parallel, one status per line into OUT
parallel_codes() { curl -s --parallel --parallel-max "$2" --max-time 30 -K "$1" -w '%{http_code}\n' > "$3" 2>/dev/null || true; }
# tally FILE: "code:count " for each status code in FILE, sorted
tally() { sort "$1" | uniq -c | awk '{printf "%s:%s ", $2, $1}'; }
if ! wait_for 30 is_200 "$B/readyz"; then
  echo "# bridge never became ready:"; tail -20 "$W/bridge.log" | sed 's/^/#   /'; exit 1
fi
ok "bridge ready (/readyz 200)"

# --------------------------------------------- data: odd ids round-trip ----
# id | rows inserted | rows deleted again
IDS=( '123' 'a/b' 'he said "hi"' 'back\slash' 'x,y' 'a b' 'a+b' '100%' 'ünï cödé ✓' '日本語' 'emoji 😀' '..' )
INS=(  3     2     1               2            1     4     1     1      5              1        2          1  )
DEL=(  1     0     0               1            0     2     0     0      1              0        0          0  )
ninsert=0; ndelete=0
for i in "${!IDS[@]}"; do
  sc_psql -d "$DB" -v id="${IDS[$i]}" -v k="${INS[$i]}" -v d="${DEL[$i]}" <<'SQL' || bad "insert ${IDS[$i]}"
INSERT INTO share_links (content_type, content_id, user_id) SELECT 'article', :'id', 'u' || g FROM generate_series(1, :k) g;
DELETE FROM share_links WHERE id IN (SELECT id FROM share_links WHERE content_type = 'article' AND content_id = :'id' LIMIT :d);
SQL
  ninsert=$((ninsert + INS[i])); ndelete=$((ndelete + DEL[i]))
done
drained() {
  [ "$(sc_psql -d "$DB" -c "SELECT (sharecount_stats()->>'outbox_depth')::bigint = 0 AND NOT EXISTS (SELECT 1 FROM sharecount_verify(1000))")" = t ]
}
check "pipeline drained ($ninsert inserts, $ndelete deletes)" wait_for 60 drained

# enc STRING: percent-encode every byte (exercises decoding of all of them)
enc() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n' | sed 's/../%&/g'; }
# jstr STRING: the JSON string jansson writes (only " and \ need escaping here)
jstr() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
# body_is NAME URL STATUS BODY [CURL ARGS...]: exact status, JSON type, byte-exact body
body_is() {
  local name=$1 url=$2 st=$3 want=$4 got code
  shift 4
  got=$(curl -s --max-time 10 -w '\n%{http_code} %{content_type}' "$@" "$url")
  code=${got##*$'\n'}; got=${got%$'\n'*}
  if [ "$code" = "$st application/json; charset=utf-8" ] && [ "$got" = "$want" ]; then ok "$name"
  else echo "status, type: $code; body: $got" > "$LAST"; bad "$name"; echo "#   want: $st $want"; fi
}
err_body() { printf '{"statusCode":%s,"message":"%s","error":"%s"}' "$1" "$2" "$3"; }

counts_json=""; ids_param=""
for i in "${!IDS[@]}"; do
  id=${IDS[$i]}; want=$((INS[i] - DEL[i]))
  body_is "count of $(jstr "$id") (every byte %-encoded)" "$B/share-links/count/article/$(enc "$id")" 200 \
    "{\"contentType\":\"article\",\"contentId\":$(jstr "$id"),\"shareCount\":$want}"
  counts_json+="${counts_json:+,}$(jstr "$id"):$want"
  ids_param+="${ids_param:+,}$(enc "$id")"
done
body_is "count with an unencoded + in the path (literal)" "$B/share-links/count/article/a+b" 200 \
  '{"contentType":"article","contentId":"a+b","shareCount":1}'
body_is "count of an unknown key is 0" "$B/share-links/count/video/nope" 200 \
  '{"contentType":"video","contentId":"nope","shareCount":0}'
body_is "counts of every id in order" "$B/share-links/counts/article?ids=$ids_param,unknown" 200 \
  "{\"contentType\":\"article\",\"counts\":{$counts_json,\"unknown\":0}}"
body_is "counts: repeated ids answered once, + in a query is a space" "$B/share-links/counts/article?ids=123,a+b,123,a%2Bb" 200 \
  '{"contentType":"article","counts":{"123":2,"a b":2,"a+b":1}}'
body_is "healthz" "$B/healthz" 200 '{"status":"ok"}'
body_is "readyz" "$B/readyz" 200 '{"status":"ok"}'

# ------------------------------------------- docs/http.md error rows ----
long65=$(printf 'a%.0s' $(seq 65)); long257=$(printf 'b%.0s' $(seq 257))
body_is "400 empty contentId" "$B/share-links/count/article/" 400 "$(err_body 400 'contentId must not be empty' 'Bad Request')"
body_is "400 empty contentType" "$B/share-links/count//1" 400 "$(err_body 400 'contentType must not be empty' 'Bad Request')"
body_is "400 contentType > 64 bytes" "$B/share-links/count/$long65/1" 400 "$(err_body 400 'contentType is longer than 64 bytes' 'Bad Request')"
body_is "400 contentId > 256 bytes" "$B/share-links/count/t/$long257" 400 "$(err_body 400 'contentId is longer than 256 bytes' 'Bad Request')"
body_is "400 bad percent-encoding" "$B/share-links/count/article/%zz" 400 "$(err_body 400 'contentId has an invalid percent-encoding' 'Bad Request')"
body_is "400 invalid UTF-8" "$B/share-links/count/article/%C3%28" 400 "$(err_body 400 'contentId is not valid UTF-8' 'Bad Request')"
body_is "400 NUL" "$B/share-links/count/article/a%00" 400 "$(err_body 400 'contentId must not contain NUL' 'Bad Request')"
body_is "400 extra path segment" "$B/share-links/count/article/1/2" 400 \
  "$(err_body 400 'too many path segments: expected /share-links/count/:contentType/:contentId' 'Bad Request')"
body_is "400 missing ids" "$B/share-links/counts/article" 400 "$(err_body 400 'ids query parameter is required' 'Bad Request')"
body_is "400 empty id in ids" "$B/share-links/counts/article?ids=a,,b" 400 "$(err_body 400 'each id in ids must not be empty' 'Bad Request')"
body_is "400 too many ids" "$B/share-links/counts/article?ids=$(seq -s, 1 1001)" 400 "$(err_body 400 'ids lists more than 1000 ids' 'Bad Request')"
check "1000 ids are fine" is_200 "$B/share-links/counts/article?ids=$(seq -s, 1 1000)"
# http_conn_memory bounds the request line + headers (docs/http.md): at the
# 16 KiB default ~420 UUIDs fit in one /counts URL, 1,000 get libmicrohttpd's
# 414; a bridge with http_conn_memory = 65536 answers 1,000 UUIDs.
uuids() { sc_psql -d "$DB" -c "SELECT string_agg(gen_random_uuid()::text, ',') FROM generate_series(1, $1)"; }
u1000=$(uuids 1000)
check "400 UUIDs in one /counts URL -> 200 (default http_conn_memory)" is_200 "$B/share-links/counts/article?ids=$(uuids 400)"
check "1000 UUIDs in one /counts URL -> 414 (default http_conn_memory)" [ "$(status "$B/share-links/counts/article?ids=$u1000")" = 414 ]
PM=$(sc_free_port)
start_http_bridge "$W/bridge_mem.log" "127.0.0.1:$PM" --pg-conninfo="$SC_PGURL dbname=$DB" --http-conn-memory=65536
MPID=$HPID
check "http_conn_memory = 65536: bridge serves counts" wait_for 15 is_200 "http://127.0.0.1:$PM/share-links/count/article/123"
got=$(curl -s --max-time 10 "http://127.0.0.1:$PM/share-links/counts/article?ids=$u1000")
check "http_conn_memory = 65536: 1000 UUIDs in one /counts URL -> 200 with 1000 counts" \
  [ "$(grep -o '"[0-9a-f-]\{36\}":0' <<<"$got" | wc -l)" = 1000 ]
kill "$MPID"; wait "$MPID"
body_is "404 unknown path" "$B/nope" 404 "$(err_body 404 'no such endpoint' 'Not Found')"
body_is "405 POST" "$B/share-links/count/article/1" 405 "$(err_body 405 'only GET and HEAD are allowed here' 'Method Not Allowed')" -X POST -d x=1
body_is "404 before 405 on an unknown path" "$B/nope" 404 "$(err_body 404 'no such endpoint' 'Not Found')" -X PUT
got=$(curl -s -i -X DELETE "$B/share-links/count/article/1" | tr -d '\r')
check "405 DELETE with Allow: GET, HEAD and the JSON shape" \
  grep -q '^Allow: GET, HEAD$' <<<"$got"
check "405 body" grep -qx "$(err_body 405 'only GET and HEAD are allowed here' 'Method Not Allowed')" <<<"$got"
got=$(curl -s -I "$B/share-links/count/article/123" | tr -d '\r')
check "HEAD count: 200, JSON type, no body" grep -q '^Content-Type: application/json; charset=utf-8$' <<<"$got"

# ------------------------------------------------------------- /metrics ----
curl -s -D "$W/mh" -o "$W/metrics" "$B/metrics"
check "/metrics content type" grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$W/mh"
# Prometheus text format: comments are "# HELP name text" / "# TYPE name kind";
# every other line is name{label="v",...} value.
check "/metrics parses" awk '
  /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* / { next }
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [-+]?([0-9.]+([eE][-+]?[0-9]+)?|Inf|NaN)$/ { n++; next }
  { print "#   bad metrics line: " $0; bad = 1 }
  END { exit bad || n < 10 }' "$W/metrics"
metric() { curl -s "$B/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
counters_match() {
  [ "$(metric 'sharecount_jobs_published_total{job="share_created"}')" = "$ninsert" ] &&
  [ "$(metric 'sharecount_jobs_published_total{job="share_deleted"}')" = "$ndelete" ] &&
  [ "$(metric 'sharecount_jobs_applied_total{job="share_created"}')" = "$ninsert" ] &&
  [ "$(metric 'sharecount_jobs_applied_total{job="share_deleted"}')" = "$ndelete" ]
}
if wait_for 10 counters_match; then ok "metrics: published and applied = $ninsert created + $ndelete deleted"
else bad "metrics counters match the jobs sent"; grep -E 'published_total|applied_total' "$W/metrics" | sed 's/^/#   /'; fi
check "metrics: outbox depth gauge from sharecount_stats() is 0" [ "$(metric sharecount_outbox_depth)" = 0 ]
check "metrics: http_pg connection up" [ "$(metric 'sharecount_connection_up{conn="http_pg"}')" = 1 ]
check "metrics: 400s counted" [ "$(metric 'sharecount_http_requests_total{status="400"}')" -ge 11 ]
check "metrics: resident memory" [ "$(metric process_resident_memory_bytes)" -gt 0 ]

# ----------------------------------------------------------------- abuse ----
# 1,000 requests over up to 100 parallel connections: counts, errors, 404s.
for i in $(seq 1000); do
  case $((i % 4)) in
    0) echo "url = \"$B/share-links/count/article/123\"" ;;
    1) echo "url = \"$B/share-links/counts/article?ids=123,a%2Fb,$i\"" ;;
    2) echo "url = \"$B/share-links/count/article/%zz$i\"" ;;
    3) echo "url = \"$B/nope/$i\"" ;;
  esac
  echo 'output = "/dev/null"'
done > "$W/curl.cfg"
parallel_codes "$W/curl.cfg" 100 "$W/codes"
check "1000 parallel requests: 500 x 200, 250 x 400, 250 x 404" [ "$(tally "$W/codes")" = "200:500 400:250 404:250 " ]
sort "$W/codes" | uniq -c | sed 's/^/#   /'

# An idle connection (slowloris: sends nothing) is closed after http_timeout_ms
# (2 s here) while other clients are served.
t0=$(date +%s%N)
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
check "served while a connection idles" is_200 "$B/healthz"
timeout 15 cat <&3 >/dev/null
exec 3<&-
idle_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "idle connection closed by the server after ~2 s (took ${idle_ms} ms)" [ "$idle_ms" -ge 1500 -a "$idle_ms" -lt 10000 ]
# A request that trickles in and never ends is closed too.
t0=$(date +%s%N)
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n' >&3
timeout 15 cat <&3 >/dev/null
exec 3<&-
idle_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "half-sent request closed after the timeout (took ${idle_ms} ms)" [ "$idle_ms" -lt 10000 ]

# (one argv string may not exceed 128 KiB, so 100 KB for both)
big=$(head -c 100000 /dev/zero | tr '\0' a)
check "100 KB header -> 431" [ "$(status -H "X-Big: $big" "$B/healthz")" = 431 ]
check "100 KB URL -> 414" [ "$(status "$B/share-links/count/article/$big")" = 414 ]
check "process alive after abuse" alive
check "still serving after abuse" is_200 "$B/share-links/count/article/123"

# ----------------------------------- coalesced reads answer the right key ----
# Concurrent single counts are answered by one coalesced query per batch (one
# row per request, in order): 600 requests over 60 connections for 60 keys of
# two types, each with its own count, must each get their own key's count.
sc_psql -d "$DB" -c "SELECT sharecount_apply(jsonb_build_object('pattern', 'share_count_update', 'data',
  jsonb_build_object('jobId', 'coal-' || t || '-' || g, 'contentType', t, 'contentId', 'k' || g,
    'operation', 'increment', 'amount', g * 10 + length(t), 'timestamp', '2026-01-01T00:00:00.000Z')))
  FROM generate_series(1, 30) g, unnest(ARRAY['coal', 'coalx']) t" >/dev/null || bad "coalesce setup"
mkdir -p "$W/coal"
# the pool's coalescing counters (docs/http.md, Metrics) before the burst
pool() { metric "sharecount_http_pool_$1_total"; }
reads0=$(pool coalesced_reads); jobs0=$(pool coalesced_jobs); keys0=$(pool coalesced_keys)
for r in $(seq 10); do
  for g in $(seq 30); do
    for t in coal coalx; do
      echo "url = \"$B/share-links/count/$t/k$g\""; echo "output = \"$W/coal/$t-$g-$r\""
    done
  done
done > "$W/curl3.cfg"
curl -s --parallel --parallel-max 60 --max-time 30 -K "$W/curl3.cfg" -w '%{http_code}\n' > "$W/codes3" 2>/dev/null
wrong=0
for r in $(seq 10); do
  for g in $(seq 30); do
    for t in coal coalx; do
      [ "$(cat "$W/coal/$t-$g-$r" 2>/dev/null)" = "{\"contentType\":\"$t\",\"contentId\":\"k$g\",\"shareCount\":$((g * 10 + ${#t}))}" ] ||
        { wrong=$((wrong + 1)); [ $wrong -le 3 ] && echo "#   $t/k$g round $r: $(cat "$W/coal/$t-$g-$r" 2>/dev/null)"; }
    done
  done
done
check "600 concurrent counts of 60 keys: every answer is its own key's count ($wrong wrong)" [ "$wrong" = 0 ]
# ... and they shared queries (one query per request would mean no coalescing):
# at least one coalesced read, each answering two or more of the requests.
reads1=$(pool coalesced_reads); jobs1=$(pool coalesced_jobs); keys1=$(pool coalesced_keys)
coalesced() {
  [ -n "$reads0" ] && [ -n "$reads1" ] && [ -n "$jobs0" ] && [ -n "$jobs1" ] || return 1
  [ $((reads1 - reads0)) -ge 1 ] && [ $((jobs1 - jobs0)) -ge $((2 * (reads1 - reads0))) ] &&
    [ $((jobs1 - jobs0)) -le 600 ]
}
check "single counts were coalesced ($((${jobs1:-0} - ${jobs0:-0})) requests in $((${reads1:-0} - ${reads0:-0})) queries \
reading $((${keys1:-0} - ${keys0:-0})) keys, from /metrics)" coalesced

# ------------------------------------------------------ PostgreSQL outage ----
# The keys asked while the database is down were never read before: a count
# the http role confirmed less than http_cache_max_age_ms ago is answered from
# its cache, database or not, while the event stream is up (docs/live.md
# "Cache"), so a recently read key (article/123 above) may rightly get a 200.
sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -m fast -w stop >/dev/null
t0=$(date +%s%N)
got=$(curl -s --max-time 10 -w ' %{http_code}' "$B/share-links/count/article/outage-$$")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "$got" > "$LAST"
# (no hang: the answer came within curl's 10 s; the time is printed, not asserted)
check "database down: count -> 503 (took ${ms} ms, db timeout 1000 ms)" \
  [ "$got" = "$(err_body 503 'database unavailable' 'Service Unavailable') 503" ]
check "database down: counts -> 503" [ "$(status "$B/share-links/counts/article?ids=outage-$$,1")" = 503 ]
check "database down: readyz -> 503" [ "$(status "$B/readyz")" = 503 ]
check "database down: healthz -> 200" is_200 "$B/healthz"
check "database down: metrics still served" is_200 "$B/metrics"
check "database down: http_pg connection reported down" [ "$(metric 'sharecount_connection_up{conn="http_pg"}')" = 0 ]
sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -l "$SC_TMP/pg.log" -w -t 60 start >/dev/null
check "database back: count -> 200 again" wait_for 20 is_200 "$B/share-links/count/article/123"
body_is "database back: the count is still right" "$B/share-links/count/article/123" 200 \
  '{"contentType":"article","contentId":"123","shareCount":2}'
check "database back: readyz -> 200 (all roles reconnected)" wait_for 30 is_200 "$B/readyz"
check "process alive at the end" alive

# ------------------------------ SQL errors stay with their own request ----
# A reading role that may call sharecount_get but not sharecount_get_many (nor
# sharecount_stats): each /counts fails with an SQL error inside pipelined
# batches that also carry /count requests, which must all still succeed.
RROLE=http_reader_$$
sc_psql -d "$DB" -c "CREATE ROLE $RROLE LOGIN" -c "REVOKE EXECUTE ON FUNCTION sharecount_get_many(text, text[]) FROM PUBLIC" || bad "reader role"
sc_on_exit "psql -X -q -d postgres -c 'DROP ROLE IF EXISTS $RROLE'"
PR=$(sc_free_port)
start_http_bridge "$W/bridge_reader.log" "127.0.0.1:$PR" --pg-conninfo="$SC_PGURL dbname=$DB user=$RROLE" --http-pool-size=1
RPID=$HPID
check "reader bridge serves counts" wait_for 15 is_200 "http://127.0.0.1:$PR/share-links/count/article/123"
for i in $(seq 400); do
  if [ $((i % 2)) = 0 ]; then echo "url = \"http://127.0.0.1:$PR/share-links/count/article/123\""
  else echo "url = \"http://127.0.0.1:$PR/share-links/counts/article?ids=123,$i\""; fi
  echo 'output = "/dev/null"'
done > "$W/curl2.cfg"
parallel_codes "$W/curl2.cfg" 64 "$W/codes2"
check "mixed batches: 200 x 200 for /count, 200 x 500 for the failing /counts" [ "$(tally "$W/codes2")" = "200:200 500:200 " ]
sort "$W/codes2" | uniq -c | sed 's/^/#   /'
body_is "SQL error -> 500 in the error shape" "http://127.0.0.1:$PR/share-links/counts/article?ids=1" 500 \
  "$(err_body 500 'database query failed' 'Internal Server Error')"
check "SQL errors do not make the reader unready" is_200 "http://127.0.0.1:$PR/readyz"
curl -s -o "$W/metrics2" "http://127.0.0.1:$PR/metrics"
check "metrics without sharecount_stats rights: served, outbox gauge withdrawn" \
  eval "grep -q '^sharecount_http_requests_total{status=\"500\"}' '$W/metrics2' && ! grep -q '^sharecount_outbox_depth' '$W/metrics2'"
kill "$RPID"; wait "$RPID"; rc=$?
check "reader bridge exits 0 on SIGTERM" [ "$rc" = 0 ]

# --------------------------------------------- IPv6 listen, http role only ----
if [ -e /proc/net/if_inet6 ] && grep -q '^0\{31\}1 ' /proc/net/if_inet6; then
  P6=$(sc_free_port)
  start_http_bridge "$W/bridge6.log" "[::1]:$P6" --pg-conninfo="$SC_PGURL dbname=$DB"
  B6PID=$HPID
  check "http-only bridge on [::1] serves counts" wait_for 15 is_200 "http://[::1]:$P6/share-links/count/article/123"
  kill "$B6PID"; wait "$B6PID"; rc=$?
  check "http-only bridge exits 0 on SIGTERM" [ "$rc" = 0 ]
else
  ok "# SKIP no IPv6 loopback"
fi

kill "$BPID"; wait "$BPID"; rc=$?
check "bridge exits 0 on SIGTERM" [ "$rc" = 0 ]
if [ $fails -ne 0 ]; then
  echo "# bridge log:"; tail -30 "$W/bridge.log" | sed 's/^/#   /'
  printf '# failed: %s\n' "${failed[@]}"   # last, so that run.sh's tail of the output shows them
fi
echo "# http_api: $((n - fails)) passed, $fails failed"
[ $fails -eq 0 ]
