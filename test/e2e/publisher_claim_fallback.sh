#!/usr/bin/env bash
# The publisher claims with sharecount_outbox_claim_packed() (one value per
# claim, docs/bridge.md "Publisher", "Packed claim"), and falls back to
# sharecount_outbox_claim() when it cannot call it: not granted (42501: its
# role has the other GRANTs of docs/sql.md but not this one) or missing
# (42883: an older schema; here the function renamed away).  Each time the
# bridge logs one warning saying so, never a failed claim, and every count
# ends exact.  Which claim ran is read from pg_stat_user_functions
# (track_functions = all; a session's function counts are flushed when it ends,
# so each phase stops its bridge first).
. "$(dirname "$0")/bridge.inc"
e2e_setup claim_fallback
role=e2e_claim_fallback_$$
q "ALTER DATABASE $E2E_DB SET track_functions = 'all';
   CREATE ROLE $role LOGIN;
   GRANT USAGE ON SCHEMA public TO $role;
   GRANT EXECUTE ON FUNCTION
     sharecount_outbox_claim(int), sharecount_outbox_done(bigint[]),
     sharecount_apply(jsonb), sharecount_apply_batch(jsonb[]), sharecount_apply_batch_changes(jsonb[]),
     sharecount_apply_json(text, boolean, boolean),
     sharecount_stats(), sharecount_prune(interval),
     sharecount_publisher_sleep(), sharecount_publisher_wake()
     TO $role;" >/dev/null
sc_on_exit "sc_psql -d '$E2E_DB' -c 'DROP OWNED BY $role; DROP ROLE $role' >/dev/null 2>&1"

# calls FN: calls of FN so far, by every session that has ended
calls() { q "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = '$1'"; }
# phase NAME ROWS [bridge flags...]: ROWS jobs through a new bridge, drained, bridge stopped
phase() {
  local name=$1 rows=$2
  shift 2
  bridge_start "$@"
  insert_rows "$rows" 20
  wait_drained 120
  bridge_stop "$BRIDGE_PID"
  [ "$STOP_STATUS" = 0 ] || fail "$name: bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
  log=$SC_TMP/$E2E_NAME.bridge$E2E_NB.log
  ! grep -q "claiming outbox rows" "$log" || fail "$name: a claim failed: $(grep -m1 "claiming outbox rows" "$log")"
  [ "$(queue_depth sharecount.dead)" = 0 ] || fail "$name: something was dead-lettered"
}

# 1. not granted: the SRF claims
phase not_granted 300 --pg_conninfo="${E2E_PGURL/user=postgres/user=$role}"
grep -q "sharecount_outbox_claim_packed() cannot be called (42501): claiming with sharecount_outbox_claim()" "$log" ||
  fail "no 42501 fallback warning"
packed1=$(calls sharecount_outbox_claim_packed); srf1=$(calls sharecount_outbox_claim)
echo "# not granted: $srf1 SRF claims, $packed1 packed"
[ "$packed1" = 0 ] && [ "$srf1" -gt 0 ] || fail "not granted: packed $packed1, SRF $srf1 calls"

# 2. missing (renamed away): the SRF claims
q "ALTER FUNCTION sharecount_outbox_claim_packed(int) RENAME TO claim_packed_away" >/dev/null
phase missing 300
grep -q "sharecount_outbox_claim_packed() cannot be called (42883): claiming with sharecount_outbox_claim()" "$log" ||
  fail "no 42883 fallback warning"
srf2=$(calls sharecount_outbox_claim)
[ "$(calls claim_packed_away)" = 0 ] && [ "$srf2" -gt "$srf1" ] || fail "missing: SRF calls $srf1 -> $srf2"

# 3. back and granted: only the packed claim, no warning
q "ALTER FUNCTION claim_packed_away(int) RENAME TO sharecount_outbox_claim_packed;
   GRANT EXECUTE ON FUNCTION sharecount_outbox_claim_packed(int) TO $role" >/dev/null
phase packed 300 --pg_conninfo="${E2E_PGURL/user=postgres/user=$role}"
! grep -q "cannot be called" "$log" || fail "packed: $(grep -m1 "cannot be called" "$log")"
packed3=$(calls sharecount_outbox_claim_packed); srf3=$(calls sharecount_outbox_claim)
echo "# granted: $packed3 packed claims, SRF claims $srf2 -> $srf3"
[ "$packed3" -gt 0 ] && [ "$srf3" = "$srf2" ] || fail "packed: packed $packed3, SRF $srf2 -> $srf3 calls"
[ "$(q "SELECT count(*) FROM share_links")" = 900 ] || fail "rows: $(q "SELECT count(*) FROM share_links")"
