#!/usr/bin/env bash
# ALTER EXTENSION sharecount UPDATE (1.0 -> 1.1) while a bridge publishes and
# applies a stream of inserts and deletes: every count ends exact, no job is
# counted twice across the switch from 1.0's applied_jobs to the 1.1 dedupe
# state, and jobs applied under 1.0 that are redelivered after the update are
# duplicates (docs/extension.md, "Dedupe").  Rows carry channels and
# campaigns: the update backfills breakdowns and they end exact too, with jobs
# 1.0 wrote still in flight (docs/extension.md, "Channels and trends").
. "$(dirname "$0")/bridge.inc"
E2E_NAME=upgrade_live
E2E_DB=e2e_upgrade_live
E2E_VHOST=e2e_upgrade_live
dropdb --if-exists "$E2E_DB" >/dev/null 2>&1 || true
createdb "$E2E_DB"
sc_on_exit "dropdb --if-exists --force '$E2E_DB'"
sc_rmqctl -q delete_vhost "$E2E_VHOST" >/dev/null 2>&1 || true
sc_rmqctl -q add_vhost "$E2E_VHOST" >/dev/null
sc_rmqctl -q set_permissions -p "$E2E_VHOST" guest '.*' '.*' '.*' >/dev/null
sc_on_exit "sc_rmqctl -q delete_vhost '$E2E_VHOST'"
E2E_PGURL=${SC_PGURL/dbname=postgres/dbname=$E2E_DB}
E2E_AMQP="$SC_AMQP_URL/$E2E_VHOST"
q "CREATE EXTENSION sharecount VERSION '1.0';
   $SC_SHARE_LINKS_DDL
   CREATE INDEX ON share_links (content_type, content_id);
   ALTER TABLE share_links ALTER COLUMN channel_id SET DEFAULT (ARRAY['web', 'mail', NULL])[1 + floor(random() * 3)::int],
     ALTER COLUMN campaign_id SET DEFAULT (ARRAY['spring', NULL])[1 + floor(random() * 2)::int];
   SELECT sharecount_track('share_links');" >/dev/null

# jobs that will be applied under 1.0 and redelivered after the update
insert_rows 50 20
q "CREATE TABLE redeliver AS SELECT body::jsonb AS m FROM sharecount.outbox_jobs ORDER BY id LIMIT 30" >/dev/null
bridge_start
churn 1500 100 11 &
churn_pid=$!
for i in $(seq 100); do [ "$(q "SELECT count(*) FROM sharecount.applied_jobs")" -gt 200 ] && break; sleep 0.1; done
q "ALTER EXTENSION sharecount UPDATE" >/dev/null
[ "$(q "SELECT extversion FROM pg_extension WHERE extname = 'sharecount'")" = 1.1 ] || fail "not updated"
legacy=$(q "SELECT count(*) FROM sharecount.applied_jobs")
echo "# updated with $legacy jobIds applied under 1.0"
wait "$churn_pid"
# channel moves under 1.1 (share_deleted + share_created)
q "UPDATE share_links SET channel_id = 'sms' WHERE id IN (SELECT id FROM share_links ORDER BY random() LIMIT 40)" >/dev/null
churn 1500 100 12
wait_drained 180
bd=$(q "SELECT count(*) FROM sharecount_verify_breakdown(1000)")
[ "$bd" = 0 ] || fail "$bd breakdown rows differ from COUNT(*) GROUP BY: $(q "SELECT * FROM sharecount_verify_breakdown(5)")"
[ "$(q "SELECT count(*) FROM sharecount.breakdown WHERE value = 'sms' AND share_count > 0")" -gt 0 ] || fail "no channel moved"

[ "$(q "SELECT count(*) FROM sharecount.applied_jobs")" = "$legacy" ] || fail "applied_jobs written after the update"
# jobs written after the update have dense jobIds: their dedupe is bits in dedupe_dense
new=$(q "SELECT count(*) FROM sharecount.dedupe_dense")
[ "$new" -gt 0 ] || fail "nothing went to the 1.1 dedupe state (no dense block)"
# a redelivery of jobs applied under 1.0: all duplicates, counts unchanged
dups=$(q "SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(m) FROM redeliver)) WHERE status = 'duplicate'")
[ "$dups" = 30 ] || fail "$dups of 30 redelivered 1.0 jobs were duplicates"
[ "$(q "SELECT count(*) FROM sharecount_verify(1000)")" = 0 ] || fail "counts drifted after the redelivery"
applied=$(stat jobs_applied); records=$(stat dedupe_records)
[ "$applied" = "$records" ] || fail "jobs_applied $applied != dedupe_records $records"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "something was dead-lettered"
echo "# applied $applied jobs, $legacy under 1.0; 30 redelivered 1.0 jobs were duplicates"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
