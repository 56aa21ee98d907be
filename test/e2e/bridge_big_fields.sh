#!/usr/bin/env bash
# Huge optional fields (issue #11 item 4, docs/extension.md "Jobs"): a row
# with a 70,000-byte campaign id, and one with an escape-heavy user id and a
# huge channel, go through the real bridge.  Their share_created jobs are
# bounded (the fields are left out, with a WARNING at INSERT), published and
# applied; deleting the rows brings the count back to 0, not -1, and nothing
# is dead-lettered.  Release 1.0 wrote a 70,242-byte body, over the bridge's
# 64 KiB limit: the share_created was dead-lettered, the share_deleted applied.
. "$(dirname "$0")/bridge.inc"
e2e_setup big_fields

raw_count() { q "SELECT coalesce((SELECT share_count FROM sharecount.counts WHERE content_type = 'article' AND content_id = 'big'), 0)"; }
# wait_settled N: outbox and queue empty, and the raw count N (at most 60 s)
wait_settled() {
  local start=$SECONDS
  while [ $((SECONDS - start)) -lt 60 ]; do
    [ "$(stat outbox_depth)" = 0 ] && [ "$(queue_depth sharecount.jobs)" = 0 ] && [ "$(raw_count)" = "$1" ] && return 0
    sleep 0.2
  done
  fail "count of article/big is $(raw_count), expected $1; outbox $(stat outbox_depth), queue $(queue_depth sharecount.jobs), dead $(queue_depth sharecount.dead)"
}

bridge_start
for i in $(seq 100); do [ -n "$(queue_depth sharecount.dead)" ] && break; sleep 0.1; done
warn=$(q "INSERT INTO share_links (content_type, content_id, user_id, channel_id, campaign_id)
  VALUES ('article', 'big', 'u1', 'web', repeat('c', 70000)),
         ('article', 'big', repeat(chr(1), 5000), repeat('h', 70000), NULL)" 2>&1)
q "DELETE FROM share_links WHERE content_id = 'big'" >/dev/null 2>&1
# every job published and consumed, the count back to 0 (release 1.0: -2, two dead letters)
wait_settled 0
wait_drained 60
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "$(queue_depth sharecount.dead) messages dead-lettered"
[ "$(stat jobs_applied)" = 4 ] || fail "jobs_applied = $(stat jobs_applied), expected 4"
! grep -q "dead-lettering" "$SC_TMP/$E2E_NAME.bridge1.log" || fail "the bridge dead-lettered something"
for f in campaignId userId channelId; do
  grep -q "WARNING:  sharecount: $f left out of a share_created job" <<<"$warn" || fail "no WARNING for $f at INSERT: $warn"
done

# the same through a running pipeline: the share counts while the row exists
q "INSERT INTO share_links (content_type, content_id, user_id, campaign_id)
  VALUES ('article', 'big', 'u1', repeat('c', 70000))" >/dev/null 2>&1
wait_settled 1
q "DELETE FROM share_links WHERE content_id = 'big'" >/dev/null 2>&1
wait_settled 0
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "$(queue_depth sharecount.dead) messages dead-lettered"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
