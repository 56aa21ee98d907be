#!/usr/bin/env bash
# Dense jobIds <origin>-<id> (docs/extension.md, "Jobs"; src/origin.c) across
# pg_dump / pg_restore and a server restart:
# - unpublished jobs restored by pg_restore keep their jobIds (the origin is
#   stored in each outbox row), so a job published before the dump and again
#   after the restore is recognised as a duplicate;
# - jobs written in the restored database get another origin, so ids that
#   the restored sequence hands out again never look like the old stream's;
# - after a server restart new jobs get a new origin and old ones keep theirs.
# Uses the harness's PostgreSQL (or starts one when run standalone); makes and
# drops its own two databases.  Needs no RabbitMQ.
set -euo pipefail
. "$(dirname "$0")/dump_pair.inc"
dump_pair_setup origin
DENSE='^[0-9a-f]{16}-[1-9][0-9]{0,18}$'

createdb "$SRC"
sc_psql -d "$SRC" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION sharecount;
:share_links_ddl
SELECT sharecount_track('share_links');
INSERT INTO share_links (content_type, content_id, user_id) SELECT 'article', 'o', 'u' || g FROM generate_series(1, 3) g;
SQL
o_src=$(sc_psql -d "$SRC" -c "SELECT sharecount._origin()")
jobs_src=$(sc_psql -d "$SRC" -c "SELECT string_agg(job_id, ' ' ORDER BY id) FROM sharecount.outbox_jobs")
for j in $jobs_src; do [[ $j =~ $DENSE ]] && [[ $j == "$o_src"-* ]] || fail "jobId $j is not dense with origin $o_src"; done
[ "$(wc -w <<<"$jobs_src")" = 3 ] || fail "expected 3 jobs, got: $jobs_src"

pg_dump -Fc -f "$DUMP" "$SRC"
createdb "$DST"
pg_restore --exit-on-error -d "$DST" "$DUMP"
jobs_dst=$(sc_psql -d "$DST" -c "SELECT string_agg(job_id, ' ' ORDER BY id) FROM sharecount.outbox_jobs")
[ "$jobs_dst" = "$jobs_src" ] || fail "restored jobs changed their jobIds: $jobs_src -> $jobs_dst"
o_dst=$(sc_psql -d "$DST" -c "SELECT sharecount._origin()")
[ "$o_dst" != "$o_src" ] || fail "the restored database has the same origin $o_src"
new=$(sc_psql -d "$DST" -c "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', 'o', 'after')" \
  -c "SELECT job_id FROM sharecount.outbox_jobs WHERE body LIKE '%\"after\"%'")
[[ $new == "$o_dst"-* ]] || fail "a job written after the restore has jobId $new, not origin $o_dst"
echo "ok: restored jobs keep their jobIds; new jobs get origin $o_dst (source: $o_src)"

# a server restart starts a new stream; the jobs already written keep theirs
sc_pg_restart fast || fail "postgresql restart"
o_after=$(sc_psql -d "$SRC" -c "SELECT sharecount._origin()")
[ "$o_after" != "$o_src" ] || fail "origin $o_src unchanged after a restart"
sc_psql -d "$SRC" -c "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', 'o', 'restarted')" >/dev/null
kept=$(sc_psql -d "$SRC" -c "SELECT string_agg(job_id, ' ' ORDER BY id) FROM sharecount.outbox_jobs WHERE body NOT LIKE '%\"restarted\"%'")
[ "$kept" = "$jobs_src" ] || fail "jobs changed their jobIds across the restart: $jobs_src -> $kept"
newer=$(sc_psql -d "$SRC" -c "SELECT job_id FROM sharecount.outbox_jobs WHERE body LIKE '%\"restarted\"%'")
[[ $newer == "$o_after"-* ]] || fail "a job written after the restart has jobId $newer, not origin $o_after"

# drained through claim + done + apply, the counts are exact in both
for db in "$SRC" "$DST"; do
  sc_psql -d "$db" >/dev/null <<'SQL'
BEGIN;
CREATE TEMP TABLE c AS SELECT * FROM sharecount_outbox_claim(1000);
SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb ORDER BY id) FROM c));
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM c));
COMMIT;
SQL
  [ "$(sc_psql -d "$db" -c "SELECT count(*) FROM sharecount_verify()")" = 0 ] || fail "$db: counts drift"
  [ "$(sc_psql -d "$db" -c "SELECT count(*) FROM sharecount.outbox")" = 0 ] || fail "$db: outbox not drained"
done
echo "ok: a restart starts origin $o_after; old jobs keep theirs; both databases drain exactly"
