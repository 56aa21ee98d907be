#!/usr/bin/env bash
# pg_dump / pg_restore of a database using sharecount keeps the counts, the
# unpublished outbox jobs (and the id sequence), the dedupe records, the stats
# and the tracked-table registry; the restored table is still tracked.
# Uses the harness's PostgreSQL (or starts one when run standalone); makes and
# drops its own two databases.  Needs no RabbitMQ.
set -euo pipefail
. "$(dirname "$0")/dump_pair.inc"
dump_pair_setup dump

createdb "$SRC"
sc_psql -d "$SRC" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION sharecount;
:share_links_ddl
INSERT INTO share_links (content_type, content_id, user_id) SELECT 'article', (g % 7)::text, 'u' || g FROM generate_series(1, 50) g;
SELECT sharecount_track('share_links');
INSERT INTO share_links (content_type, content_id, user_id, channel_id) SELECT 'post', (g % 3)::text, 'u' || g, 'tw' FROM generate_series(1, 20) g;
DELETE FROM share_links WHERE user_id IN ('u1', 'u2', 'u3');
-- drain what is there (as a bridge would), then leave a few jobs unpublished
SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount_outbox_claim(1000)));
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM sharecount.outbox));
INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', '1', 'late1'), ('video', 'v', 'late2');
-- every dedupe structure holds something: a dense block, and a past day (the
-- bucket of a head moved to yesterday, then written again); net count 0
-- (+1 -1 dense, +1 -1 foreign)
CREATE FUNCTION pgd(id text, op text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', 'share_count_update', 'data', jsonb_build_object('jobId', id,
		'contentType', 'dump', 'contentId', 'x', 'operation', op, 'timestamp', '2026-12-02T10:00:00Z'))
$$;
SELECT sharecount_apply(pgd('00000000000d0d0d-77', 'increment'));
SELECT sharecount_apply(pgd('00000000000d0d0d-78', 'decrement'));
-- the trigger's jobs are dense: one foreign jobId (as a NestJS emit would send) fills a head
SELECT sharecount_apply(pgd('pgd-seed', 'increment'));
UPDATE sharecount.dedupe_foreign_head SET day = day - 1 WHERE octet_length(hashes) > 0;
SELECT sharecount_apply(pgd((SELECT 'pgd-' || g FROM generate_series(1, 400000) g WHERE substr(md5('pgd-' || g), 1, 4)
	= (SELECT lpad(to_hex(min(bucket)), 4, '0') FROM sharecount.dedupe_foreign_head WHERE octet_length(hashes) > 0) LIMIT 1),
	'decrement'));
DROP FUNCTION pgd(text, text);
SQL
[ "$(sc_psql -d "$SRC" -c 'SELECT count(*) FROM sharecount.dedupe_foreign')" = 1 ] || fail "no past-day dedupe row to dump"

snapshot() { # snapshot DB: a text digest of every state table
  sc_psql -d "$1" <<'SQL'
SELECT 'counts', content_type, content_id, share_count, updated_at FROM sharecount.counts ORDER BY 2, 3;
SELECT 'outbox', o.* FROM sharecount.outbox o ORDER BY id;
SELECT 'outbox_jobs', id, job_name, job_id, body FROM sharecount.outbox_jobs ORDER BY id;
SELECT 'dedupe', count(*), md5(string_agg(job_id || applied_at, ',' ORDER BY job_id)) FROM sharecount.applied_jobs;
SELECT 'dedupe_dense', count(*), md5(string_agg(origin || ':' || block || ':' || n || ':' || day || ':' || encode(bits, 'hex'),
	',' ORDER BY origin, block)) FROM sharecount.dedupe_dense;
SELECT 'dedupe_heads', count(*), md5(string_agg(bucket || ':' || day || ':' || encode(hashes, 'hex'), ',' ORDER BY bucket))
	FROM sharecount.dedupe_foreign_head;
SELECT 'dedupe_days', count(*), md5(string_agg(bucket || ':' || day || ':' || slot || ':' || encode(hashes, 'hex'),
	',' ORDER BY bucket, day)) FROM sharecount.dedupe_foreign;
SELECT 'dedupe_days', day, shard, records FROM sharecount.dedupe_days ORDER BY 2, 3;
SELECT 'stats', sharecount_stats() - 'outbox_oldest_age_seconds';
SELECT 'tracked', tbl, id_column, content_type_column, content_id_column, user_id_column, channel_id_column, campaign_id_column FROM sharecount.tracked;
SELECT 'links', count(*) FROM share_links;
SQL
}
before=$(snapshot "$SRC")
[ "$(sc_psql -d "$SRC" -c 'SELECT count(*) FROM sharecount.counts')" -gt 0 ] || fail "no counts before the dump"
[ "$(sc_psql -d "$SRC" -c 'SELECT count(*) FROM sharecount.outbox')" = 2 ] || fail "expected 2 unpublished jobs"

pg_dump -Fc -f "$DUMP" "$SRC"
createdb "$DST"
pg_restore --exit-on-error -d "$DST" "$DUMP"

after=$(snapshot "$DST")
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") >&2 || true
  fail "state differs after restore"
fi
echo "ok: counts, outbox, dedupe, stats and registry restored ($(echo "$before" | grep -c '^counts') keys)"

# the restored table is still tracked: a new row writes a job with a fresh outbox id
sc_psql -d "$DST" <<'SQL'
INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', '1', 'after-restore');
SQL
n=$(sc_psql -d "$DST" -c "SELECT count(*) FROM sharecount.outbox_jobs WHERE body LIKE '%after-restore%' AND id > (SELECT max(id) FROM sharecount.outbox WHERE user_id <> 'after-restore')")
[ "$n" = 1 ] || fail "restored table is not tracked or the outbox id went backwards ($n)"

# drained, the restored database's counts equal COUNT(*) of the rows
sc_psql -d "$DST" >/dev/null <<'SQL'
SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount_outbox_claim(1000)));
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM sharecount.outbox));
SQL
drift=$(sc_psql -d "$DST" -c 'SELECT count(*) FROM sharecount_verify()')
[ "$drift" = 0 ] || { sc_psql -d "$DST" -c 'SELECT * FROM sharecount_verify()' >&2; fail "verify found $drift drifting keys"; }
got=$(sc_psql -d "$DST" -c "SELECT sharecount_get('article', '1')")
want=$(sc_psql -d "$DST" -c "SELECT count(*) FROM share_links WHERE content_type = 'article' AND content_id = '1'")
[ "$got" = "$want" ] || fail "article/1: count $got, rows $want"
echo "ok: restored database tracks and counts exactly (article/1 = $got)"
