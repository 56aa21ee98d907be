#!/usr/bin/env bash
# e2e: the trends routes of docs/http.md ("Channels and trends") against a
# bridge with every role, on real PostgreSQL and RabbitMQ:
#   - GET /share-links/count/:type/:id?by=channel|campaign equals COUNT(*) …
#     GROUP BY channel_id / campaign_id of the tracked rows (NULL as
#     "unattributed", '' as a key of its own), before and after an UPDATE
#     moves a share to another channel and a DELETE; exact bodies; without
#     `by` the body is byte for byte the plain count;
#   - GET /share-links/history/:type/:id: hour and day buckets of jobs applied
#     with timestamps days ago, since/until bounds, the echoed since/until,
#     equal to sharecount_history() in SQL;
#   - GET /share-links/top/:type: order, limit, windows (90m, 24h, 7d);
#   - every bad input's 400 body, 404/405 on the new paths, HEAD;
#   - SQLSTATE 22023 from the database answers 400 with its message (a bridge
#     whose search_path finds a sharecount_top that raises it);
#   - the database unreachable: each route answers 503 in the error shape.
# Standalone: `bash test/e2e/http_trends.sh` starts its own servers.
. "$(dirname "$0")/bridge.inc"
e2e_setup http_trends

PORT=$(sc_free_port)
B=http://127.0.0.1:$PORT
bridge_start --roles=publisher,consumer,http --http_listen=127.0.0.1:$PORT --http_db_timeout_ms=2000

n=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
# body_is NAME URL STATUS BODY [CURL ARGS...]: exact status, JSON type, byte-exact body
body_is() {
  local name=$1 url=$2 st=$3 want=$4 got code
  shift 4
  got=$(curl -s --max-time 10 -w '\n%{http_code} %{content_type}' "$@" "$url")
  code=${got##*$'\n'}; got=${got%$'\n'*}
  [ "$code" = "$st application/json; charset=utf-8" ] && [ "$got" = "$want" ] ||
    fail "$name: got $code $got; want $st $want"
  ok "$name"
}
err_body() { printf '{"statusCode":%s,"message":"%s","error":"%s"}' "$1" "$2" "$3"; }
bad_is() { body_is "$1" "$2" 400 "$(err_body 400 "$3" 'Bad Request')"; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$B/readyz")" = 200 ]; }
for _ in $(seq 150); do ready && break; sleep 0.2; done
ready || fail "bridge never became ready"

# ------------------------------------------------------------ breakdown ----
# article/a1: channels web 3, email 2, '' 1, NULL 1; campaigns spring 2, fall 1, NULL 4
q "INSERT INTO share_links (content_type, content_id, user_id, channel_id, campaign_id) VALUES
   ('article','a1','u1','web','spring'), ('article','a1','u2','web','spring'), ('article','a1','u3','web',NULL),
   ('article','a1','u4','email','fall'), ('article','a1','u5','email',NULL), ('article','a1','u6','',NULL),
   ('article','a1','u7',NULL,NULL)" >/dev/null
wait_drained 60

# by_sql DIM: the breakdown of article/a1 from the tracked rows, as {"value":n} most first (NULL left out)
by_sql() {
  q "SELECT coalesce(json_object_agg(v, n ORDER BY n DESC, v), '{}') FROM
     (SELECT $1 AS v, count(*) AS n FROM share_links WHERE content_type = 'article' AND content_id = 'a1'
      AND $1 IS NOT NULL GROUP BY 1) s"
}
# same_breakdown DIM FIELD: the HTTP answer's FIELD object and unattributed equal the tracked rows'
same_breakdown() {
  local got want_by want_un
  got=$(curl -s --max-time 10 "$B/share-links/count/article/a1?by=$1")
  want_by=$(by_sql "${1}_id" | jq -cS .)
  want_un=$(q "SELECT count(*) FROM share_links WHERE content_type = 'article' AND content_id = 'a1' AND ${1}_id IS NULL")
  [ "$(jq -cS ".$2" <<<"$got")" = "$want_by" ] && [ "$(jq .unattributed <<<"$got")" = "$want_un" ] &&
    [ "$(jq .shareCount <<<"$got")" = "$(jq "([.$2[]] | add // 0) + .unattributed" <<<"$got")" ] ||
    fail "by=$1: $got; tracked rows say $want_by, unattributed $want_un"
  ok "by=$1 equals COUNT(*) GROUP BY ${1}_id ($want_by, unattributed $want_un)"
}
body_is "by=channel: exact body, most shares first, '' a key of its own, NULL as unattributed" \
  "$B/share-links/count/article/a1?by=channel" 200 \
  '{"contentType":"article","contentId":"a1","shareCount":7,"byChannel":{"web":3,"email":2,"":1},"unattributed":1}'
body_is "by=campaign: exact body" "$B/share-links/count/article/a1?by=campaign" 200 \
  '{"contentType":"article","contentId":"a1","shareCount":7,"byCampaign":{"spring":2,"fall":1},"unattributed":4}'
body_is "without by: the plain count, byte for byte" "$B/share-links/count/article/a1" 200 \
  '{"contentType":"article","contentId":"a1","shareCount":7}'
body_is "other parameters beside by are ignored, as on the plain count" \
  "$B/share-links/count/article/a1?_=1&by=channel&x" 200 \
  '{"contentType":"article","contentId":"a1","shareCount":7,"byChannel":{"web":3,"email":2,"":1},"unattributed":1}'
body_is "by on an unknown key: empty object, zero" "$B/share-links/count/article/nope?by=channel" 200 \
  '{"contentType":"article","contentId":"nope","shareCount":0,"byChannel":{},"unattributed":0}'
same_breakdown channel byChannel
same_breakdown campaign byCampaign

# move two shares from web to email (and one out of its campaign), delete the '' one
q "UPDATE share_links SET channel_id = 'email' WHERE user_id IN ('u1', 'u2');
   UPDATE share_links SET campaign_id = NULL WHERE user_id = 'u4';
   DELETE FROM share_links WHERE user_id = 'u6'" >/dev/null
wait_drained 60
body_is "after the UPDATEs and the DELETE: shares moved, total unchanged but the deleted one" \
  "$B/share-links/count/article/a1?by=channel" 200 \
  '{"contentType":"article","contentId":"a1","shareCount":6,"byChannel":{"email":4,"web":1},"unattributed":1}'
same_breakdown channel byChannel
same_breakdown campaign byCampaign

# -------------------------------------------------------------- history ----
# video keys get share_created/share_deleted jobs applied by hand with timestamps of our choosing
# (wait_drained leaves 'video' out).
# D = today 00:00 UTC; v1: +3 at D-3 10:15, +2 at D-3 11:20, -1 at D-3 11:50, +5 at D-2 09:00;
# v2: +100 three days ago; v3: +7 thirty minutes ago.
D=$(q "SELECT extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC'))::bigint")
iso() { date -u -d "@$(( D + $1 ))" +%Y-%m-%dT%H:%M:%S.000Z; }  # iso SECONDS-AFTER-D
apply() { # apply ID JOB N TIMESTAMP: N share_created or share_deleted jobs (history counts those)
  q "SELECT count(sharecount_apply(jsonb_build_object('pattern', '$2', 'data', jsonb_build_object(
     'jobId', gen_random_uuid()::text, 'shareId', gen_random_uuid()::text, 'contentType', 'video',
     'contentId', '$1', 'userId', 'u' || g, 'timestamp', '$4')))) FROM generate_series(1, $3) g" >/dev/null
}
DAY=86400
apply v1 share_created 3 "$(iso $(( -3*DAY + 10*3600 + 15*60 )))"
apply v1 share_created 2 "$(iso $(( -3*DAY + 11*3600 + 20*60 )))"
apply v1 share_deleted 1 "$(iso $(( -3*DAY + 11*3600 + 50*60 )))"
apply v1 share_created 5 "$(iso $(( -2*DAY + 9*3600 )))"
apply v2 share_created 100 "$(q "SELECT to_char((now() - interval '3 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")"
apply v3 share_created 7 "$(q "SELECT to_char((now() - interval '30 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")"

S=$(iso $(( -3*DAY ))); U=$(iso 0)
hist() { printf '{"contentType":"video","contentId":"v1","bucket":"%s","since":"%s","until":"%s","history":[%s]}' "$@"; }
pt() { printf '{"bucketStart":"%s","shares":%s}' "$(iso "$1")" "$2"; }
body_is "history, hour buckets (net shares per hour, empty hours left out)" \
  "$B/share-links/history/video/v1?since=$S&until=$U&bucket=hour" 200 \
  "$(hist hour "$S" "$U" "$(pt $(( -3*DAY + 10*3600 )) 3),$(pt $(( -3*DAY + 11*3600 )) 1),$(pt $(( -2*DAY + 9*3600 )) 5)")"
body_is "history, day buckets (UTC days)" "$B/share-links/history/video/v1?since=$S&until=$U&bucket=day" 200 \
  "$(hist day "$S" "$U" "$(pt $(( -3*DAY )) 4),$(pt $(( -2*DAY )) 5)")"
S11=$(iso $(( -3*DAY + 11*3600 ))); U11=$(iso $(( -3*DAY + 11*3600 )))
body_is "history: until is exclusive" "$B/share-links/history/video/v1?since=$S&until=$U11" 200 \
  "$(hist hour "$S" "$U11" "$(pt $(( -3*DAY + 10*3600 )) 3)")"
body_is "history: the bucket holding since counts whole (day)" \
  "$B/share-links/history/video/v1?since=$S11&until=$U&bucket=day" 200 \
  "$(hist day "$S11" "$U" "$(pt $(( -3*DAY )) 4),$(pt $(( -2*DAY )) 5)")"
# since with an offset, percent-encoded, and with a raw '+' (a space): the same instant
OFF=$(date -u -d "@$(( D - 3*DAY + 3600 ))" +%Y-%m-%dT%H:%M:%S)
body_is "history: since with %2B01:00 is echoed in UTC" \
  "$B/share-links/history/video/v1?since=${OFF}%2B01:00&until=$U&bucket=day" 200 \
  "$(hist day "$S" "$U" "$(pt $(( -3*DAY )) 4),$(pt $(( -2*DAY )) 5)")"
body_is "history: a raw + in the offset (arrives as a space) means the same" \
  "$B/share-links/history/video/v1?since=${OFF}+01:00&until=$U&bucket=day" 200 \
  "$(hist day "$S" "$U" "$(pt $(( -3*DAY )) 4),$(pt $(( -2*DAY )) 5)")"
got=$(curl -s --max-time 10 "$B/share-links/history/video/v1?since=$S&until=$U")
want=$(q "SELECT coalesce(json_agg(json_build_object('bucketStart', to_char(bucket_start AT TIME ZONE 'UTC',
  'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'shares', shares) ORDER BY bucket_start), '[]')
  FROM sharecount_history('video', 'v1', '$S', '$U', 'hour')" | jq -c .)
[ "$(jq -c .history <<<"$got")" = "$want" ] || fail "history differs from sharecount_history(): $got vs $want"
ok "history equals sharecount_history() in SQL"
got=$(curl -s --max-time 10 "$B/share-links/history/video/v3")
[ "$(jq -c '[.bucket, (.history | map(.shares))]' <<<"$got")" = '["hour",[7]]' ] &&
  [ "$(jq -r .until <<<"$got")" \> "$(jq -r .since <<<"$got")" ] || fail "history defaults: $got"
ok "history defaults: the last 24 hours in hour buckets ($(jq -c '[.since, .until]' <<<"$got"))"

# ------------------------------------------------------------------ top ----
q "INSERT INTO share_links (content_type, content_id, user_id)
   SELECT 'article', k, 'u' || g FROM (VALUES ('t1', 5), ('t2', 3), ('t3', 1)) v(k, c), generate_series(1, c) g" >/dev/null
wait_drained 60
topb() { printf '{"contentType":"%s","window":"%s","top":[%s]}' "$@"; }
te() { printf '{"contentId":"%s","shares":%s}' "$1" "$2"; }
body_is "top: default window 24h and limit 10, most shares first (a1 has 6 net: 7 inserted, 1 deleted)" \
  "$B/share-links/top/article" 200 "$(topb article 24h "$(te a1 6),$(te t1 5),$(te t2 3),$(te t3 1)")"
body_is "top: limit=2" "$B/share-links/top/article?limit=2" 200 "$(topb article 24h "$(te a1 6),$(te t1 5)")"
body_is "top: 24h leaves out shares of days ago" "$B/share-links/top/video?window=24h" 200 \
  "$(topb video 24h "$(te v3 7)")"
body_is "top: 7d" "$B/share-links/top/video?window=7d" 200 "$(topb video 7d "$(te v2 100),$(te v1 9),$(te v3 7)")"
body_is "top: 90m, limit=1" "$B/share-links/top/video?window=90m&limit=1" 200 "$(topb video 90m "$(te v3 7)")"
body_is "top: a type without shares" "$B/share-links/top/nothing" 200 "$(topb nothing 24h "")"
body_is "top: window in minutes echoed as asked" "$B/share-links/top/video?window=10080m&limit=100" 200 \
  "$(topb video 10080m "$(te v2 100),$(te v1 9),$(te v3 7)")"

# ------------------------------------------------------------ bad input ----
C=$B/share-links/count/article/a1
H=$B/share-links/history/video/v1
T=$B/share-links/top/video
bad_is "by=country" "$C?by=country" "by must be channel or campaign"
bad_is "by empty" "$C?by=" "by must be channel or campaign"
bad_is "by twice" "$C?by=channel&by=campaign" "by must be given once"
bad_is "bucket=week" "$H?bucket=week" "bucket must be hour or day"
bad_is "since not a time" "$H?since=yesterday" \
  "since must be an ISO 8601 time with a time zone, such as 2026-12-02T10:00:00Z, or a date"
bad_is "since without a zone" "$H?since=2026-12-01T10:00:00" \
  "since must be an ISO 8601 time with a time zone, such as 2026-12-02T10:00:00Z, or a date"
bad_is "until on the 31st of November" "$H?until=2026-11-31" \
  "until must be an ISO 8601 time with a time zone, such as 2026-12-02T10:00:00Z, or a date"
bad_is "since > until" "$H?since=$U&until=$S" "since is after until"
bad_is "more than 10000 hour buckets" "$H?since=2020-01-01&until=$U" "since to until spans more than 10000 hours"
bad_is "since before 1970" "$H?since=1969-12-31T23:00:00Z" "since must be from 1970 to 9999"
bad_is "since given twice" "$H?since=$S&since=$S" "since must be given once"
bad_is "history: unknown parameter" "$H?window=24h" \
  "unknown query parameter: /share-links/history takes since, until and bucket"
bad_is "history: over-long value" "$H?since=$(printf '%065d' 0)" "since is longer than 64 bytes"
bad_is "history: bad percent-encoding" "$H?since=2026-12-01T10%3" "since has an invalid percent-encoding"
bad_is "window=0h" "$T?window=0h" "window must be a whole number of minutes, hours or days, such as 90m, 24h or 7d"
bad_is "window=24 (no unit)" "$T?window=24" "window must be a whole number of minutes, hours or days, such as 90m, 24h or 7d"
bad_is "window=1w" "$T?window=1w" "window must be a whole number of minutes, hours or days, such as 90m, 24h or 7d"
bad_is "window=91d (over-long)" "$T?window=91d" "window is longer than 90 days"
bad_is "window=9999999m (too many digits)" "$T?window=9999999m" \
  "window must be a whole number of minutes, hours or days, such as 90m, 24h or 7d"
bad_is "limit=0" "$T?limit=0" "limit must be a whole number from 1 to 100"
bad_is "limit=101" "$T?limit=101" "limit must be a whole number from 1 to 100"
bad_is "limit=ten" "$T?limit=ten" "limit must be a whole number from 1 to 100"
bad_is "top: unknown parameter" "$T?since=24h" "unknown query parameter: /share-links/top takes window and limit"
bad_is "top: extra path segment" "$T/x" "too many path segments: expected /share-links/top/:contentType"
bad_is "history: missing id" "$B/share-links/history/video" \
  "expected /share-links/history/:contentType/:contentId"
body_is "top: POST is 405 with Allow" "$T" 405 "$(err_body 405 'only GET and HEAD are allowed here' 'Method Not Allowed')" \
  -X POST -H 'Content-Type: application/json' -d '{}'
[ "$(curl -s -o /dev/null -w '%{header_json}' -X DELETE "$H" | jq -r '.allow[0]')" = "GET, HEAD" ] ||
  fail "history: DELETE has no Allow: GET, HEAD"
ok "history: DELETE 405 carries Allow: GET, HEAD"
body_is "/share-links/tops: 404" "$B/share-links/tops/video" 404 "$(err_body 404 'no such endpoint' 'Not Found')"
got=$(curl -s -I --max-time 10 -w '%{http_code} %{size_download}' -o /dev/null "$T?window=7d")
[ "$got" = "200 0" ] || fail "HEAD top: $got"
ok "HEAD top: 200, no body"

# -------------------------------------- SQLSTATE 22023 from the database ----
# A schema whose sharecount_top raises 22023, first on the search_path of a second (http-only) bridge.
q "CREATE SCHEMA shadow;
   CREATE FUNCTION shadow.sharecount_top(text, interval, int) RETURNS TABLE (content_id text, shares bigint)
   LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'n must be 1 to 100' USING ERRCODE = '22023'; END \$\$" >/dev/null
P2=$(sc_free_port)
bridge_start --roles=http --http_listen=127.0.0.1:$P2 "--pg_conninfo=$E2E_PGURL options=-csearch_path=shadow,public"
for _ in $(seq 150); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/readyz")" = 200 ] && break; sleep 0.2; done
body_is "SQLSTATE 22023 from the database: 400 with its message" "http://127.0.0.1:$P2/share-links/top/video" 400 \
  "$(err_body 400 'n must be 1 to 100' 'Bad Request')"
body_is "... and the other routes of that bridge still answer" "http://127.0.0.1:$P2/share-links/count/article/a1?by=campaign" \
  200 '{"contentType":"article","contentId":"a1","shareCount":6,"byCampaign":{"spring":2},"unattributed":4}'

# ------------------------------------------------------ database down ----
P3=$(sc_free_port); DEAD=$(sc_free_port)
bridge_start --roles=http --http_listen=127.0.0.1:$P3 --http_db_timeout_ms=1000 \
  "--pg_conninfo=host=127.0.0.1 port=$DEAD dbname=none connect_timeout=1"
for _ in $(seq 150); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/healthz")" = 200 ] && break; sleep 0.2; done
for path in count/article/a1?by=channel history/video/v1 top/video; do
  body_is "database unreachable: $path -> 503" "http://127.0.0.1:$P3/share-links/$path" 503 \
    "$(err_body 503 'database unavailable' 'Service Unavailable')"
done

for pid in "${E2E_BRIDGES[@]}"; do
  bridge_stop "$pid"
  [ "$STOP_STATUS" = 0 ] || fail "bridge $pid exited with $STOP_STATUS"
done
ok "every bridge stopped cleanly (exit 0)"
grep -h "ERROR\|AddressSanitizer\|LeakSanitizer" "$SC_TMP"/http_trends.bridge*.log && fail "errors in the bridge logs"
ok "no errors or sanitizer reports in the bridge logs"
echo "# http_trends: $n checks passed"
