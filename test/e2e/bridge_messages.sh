#!/usr/bin/env bash
# Consumed messages (docs/interop.md): every invalid kind lands in sharecount.dead and
# changes no count while the bridge keeps running; a duplicate counts once; a
# NestJS emit() (default exchange, routing key = queue, no content type), a
# bare job named by its `type` property and one named by its routing key are
# applied; a NestJS send() is answered on reply_to with the right shape.
. "$(dirname "$0")/bridge.inc"
e2e_setup messages
bridge_start --roles=consumer
amqp_tool publish "$E2E_AMQP" "" nothing '{}' 2>/dev/null || true   # builds the tool
# wait for the topology (the consumer declares it)
for i in $(seq 100); do [ -n "$(queue_depth sharecount.dead)" ] && break; sleep 0.1; done

TS=2026-01-02T03:04:05.678Z
Q=sharecount.jobs
emit() { amqp_tool publish "$E2E_AMQP" "" "$Q" "$1" "${@:2}"; }
upd() { # upd JOBID CT CID [amount]
  printf '{"jobId":"%s","contentType":"%s","contentId":"%s","operation":"increment","amount":%s,"timestamp":"%s"}' \
    "$1" "$2" "$3" "${4:-1}" "$TS"
}

# --- invalid messages, one of each kind ---
big=$(head -c 70000 /dev/zero | tr '\0' 'x')
bad=(
  '{not json'
  '[1,2,3]'
  '"a string"'
  '{"pattern":"share_count_update"}'
  '{"pattern":"share_count_update","data":5}'
  '{"pattern":7,"data":{}}'
  "{\"pattern\":\"share_exploded\",\"data\":$(upd j-bad1 article bad)}"
  '{"pattern":"share_count_update","data":{"jobId":"j-bad2","contentType":"article","operation":"increment","timestamp":"'$TS'"}}'
  '{"pattern":"share_count_update","data":{"jobId":"j-bad3","contentType":"article","contentId":5,"operation":"increment","timestamp":"'$TS'"}}'
  "{\"pattern\":\"share_count_update\",\"data\":$(upd j-bad4 article bad 2000000)}"
  '{"pattern":"share_count_update","data":{"jobId":"j-bad5","contentType":"article","contentId":"bad","operation":"double","timestamp":"'$TS'"}}'
  "{\"pattern\":\"share_count_update\",\"data\":{\"jobId\":\"j-bad6\",\"pad\":\"$big\"}}"
  $'{"pattern":"share_count_update","data":{"jobId":"j-bad7","contentType":"article","contentId":"bad\xff","operation":"increment","timestamp":"'$TS'"}}'
  "$(upd j-bad8 article bad)"   # bare job, default exchange: no job name
)
for b in "${bad[@]}"; do emit "$b"; done
nbad=${#bad[@]}

# --- valid ones ---
emit "{\"pattern\":\"share_count_update\",\"data\":$(upd j-emit video v1 3)}"              # NestJS emit
emit "{\"pattern\":\"share_count_update\",\"data\":$(upd j-dup video v2 1)}"               # twice: counts once
emit "{\"pattern\":\"share_count_update\",\"data\":$(upd j-dup video v2 1)}"
emit "$(upd j-typed video v3 2)" type=share_count_update                                     # bare job, type property
amqp_tool publish "$E2E_AMQP" sharecount share_count_update "$(upd j-rk video v4 5)"         # bare job, routing key
amqp_tool publish "$E2E_AMQP" sharecount share_created \
  '{"pattern":"share_created","data":{"jobId":"j-created","shareId":"s1","contentType":"video","contentId":"v5","userId":"u1","timestamp":"'$TS'"}}' \
  ct=application/json persistent mid=j-created type=share_created                           # as the publisher sends it
reply=$(amqp_tool rpc "$E2E_AMQP" "$Q" \
  "{\"pattern\":\"share_count_update\",\"data\":$(upd j-send video v6 4),\"id\":\"req-1\"}" req-1 20) ||
  fail "no reply to the send() request"

badreply=$(amqp_tool rpc "$E2E_AMQP" "$Q" '{"pattern":"share_count_update","id":"req-2"}' req-2 20) ||
  fail "no reply to a malformed send() request"
nbad=$((nbad + 1))

# --- checks ---
for i in $(seq 150); do
  [ "$(queue_depth sharecount.dead)" = "$nbad" ] && [ "$(queue_depth $Q)" = 0 ] &&
    [ "$(q "SELECT sharecount_get('video','v5')")" = 1 ] && break
  sleep 0.2
done
[ "$(queue_depth sharecount.dead)" = "$nbad" ] || fail "dead queue holds $(queue_depth sharecount.dead) messages, expected $nbad"
[ "$(queue_depth $Q)" = 0 ] || fail "queue not empty: $(queue_depth $Q)"
kill -0 "$BRIDGE_PID" || fail "bridge died"
got=$(q "SELECT string_agg(content_id || '=' || sharecount_get('video', content_id), ' ' ORDER BY content_id)
         FROM unnest(ARRAY['v1','v2','v3','v4','v5','v6']) content_id")
[ "$got" = "v1=3 v2=1 v3=2 v4=5 v5=1 v6=4" ] || fail "video counts: $got"
[ "$(q "SELECT count(*) FROM sharecount.counts WHERE content_type <> 'video' AND share_count <> 0")" = 0 ] ||
  fail "an invalid message changed a count: $(q "SELECT * FROM sharecount.counts WHERE content_type <> 'video'")"
[ "$(stat duplicates)" = 1 ] || fail "duplicates = $(stat duplicates), expected 1"

# the send() reply: correlation id, then the NestJS response body
corr=${reply%%$'\t'*}; body=${reply#*$'\t'}
[ "$corr" = req-1 ] || fail "reply correlation_id '$corr'"
check=$(q "SELECT (j->'response'->>'jobId') = 'j-send' AND (j->'response'->>'success')::bool
           AND jsonb_typeof(j->'response'->'processingTime') = 'number'
           AND j->'response'->'data' = '{\"contentType\":\"video\",\"contentId\":\"v6\",\"shareCount\":4}'
           AND (j->>'isDisposed')::bool FROM (SELECT '$body'::jsonb j) s")
[ "$check" = t ] || fail "reply body: $body"

corr=${badreply%%$'\t'*}; body=${badreply#*$'\t'}
[ "$corr" = req-2 ] || fail "bad reply correlation_id '$corr'"
[ "$(q "SELECT (j->'response'->>'success')::bool = false AND (j->>'isDisposed')::bool FROM (SELECT '$body'::jsonb j) s")" = t ] ||
  fail "malformed send() reply: $body"

# the reasons are logged, one line each
grep -c "dead-lettering" "$SC_TMP/messages.bridge1.log" | grep -qx "$nbad" ||
  fail "expected $nbad dead-lettering log lines"
grep -q "larger than 64 KiB" "$SC_TMP/messages.bridge1.log" || fail "oversized reason not logged"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
