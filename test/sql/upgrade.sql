-- ALTER EXTENSION sharecount UPDATE from 1.0 to 1.1 with a table tracked under
-- 1.0 (triggers with column arguments, counts applied, a job still in the
-- outbox, an optional column dropped): counts stay exact, the old triggers
-- keep working, renamed columns are followed, untrack/re-track are exact.
-- Runs in a database of its own, made here and dropped at the end (keep
-- that last): the other tests never see the extension at 1.0, in any order.
\set regress_db :DBNAME
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sc_upgrade;
CREATE DATABASE regress_sc_upgrade;
\c regress_sc_upgrade
SET client_min_messages = warning;
CREATE EXTENSION sharecount VERSION '1.0';
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'sharecount';
CREATE FUNCTION drain() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	SELECT count(*) INTO n FROM sharecount_apply_batch(coalesce(
		(SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount.outbox_jobs), '{}'));
	DELETE FROM sharecount.outbox;
	RETURN n;
END
$$;

-- under 1.0
CREATE TABLE up_links (id int PRIMARY KEY, content_type text, content_id text, user_id text, channel_id text);
-- counts equal the rows, per sharecount_verify and per key
CREATE FUNCTION exact() RETURNS boolean LANGUAGE sql AS $$
	SELECT NOT EXISTS (SELECT FROM sharecount_verify())
		AND sharecount_get('article', 'up') = (SELECT count(*) FROM up_links)
$$;
INSERT INTO up_links SELECT g, 'article', 'up', 'u', 'mail' FROM generate_series(1, 3) g;
SELECT sharecount_track('up_links');
INSERT INTO up_links VALUES (4, 'article', 'up', 'u', 'mail'), (5, 'article', 'up', 'u', 'mail');
-- #15: a table with channels and campaigns
CREATE TABLE up_chan (id int PRIMARY KEY, content_type text, content_id text, user_id text,
	channel_id text, campaign_id text);
SELECT sharecount_track('up_chan');
INSERT INTO up_chan VALUES (1, 'article', 'ch', 'u', 'tw', 's'), (2, 'article', 'ch', 'u', 'tw', NULL),
	(3, 'article', 'ch', 'u', NULL, NULL), (4, 'article', 'ch2', 'u', 'mail', 'f');
SELECT drain();
-- written by 1.0 and still in the outbox at the update: a delete, an insert
-- and a channel move, whose effect is already in the tracked rows
DELETE FROM up_chan WHERE id = 2;
INSERT INTO up_chan VALUES (5, 'article', 'ch', 'u', 'mail', 's');
UPDATE up_chan SET channel_id = 'sms' WHERE id = 1;
ALTER TABLE up_links DROP COLUMN channel_id;
INSERT INTO up_links VALUES (6, 'article', 'up', 'u');
SELECT count(*) AS pending FROM sharecount.outbox;
-- a job applied under 1.0 (its record in sharecount.applied_jobs) that the
-- broker will redeliver after the update
CREATE FUNCTION lj(id text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', 'share_count_update', 'data', jsonb_build_object('jobId', id,
		'contentType', 'article', 'contentId', 'legacy', 'operation', 'increment', 'timestamp', '2026-12-02T10:00:00Z'))
$$;
SELECT sharecount_apply(lj('8d0e5c1a-1f2b-4c3d-9e8f-0a1b2c3d4e5f')) AS applied_under_1_0;
SELECT count(*) AS records_1_0 FROM sharecount.applied_jobs;

ALTER EXTENSION sharecount UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'sharecount';
-- #14 events: keys counted under 1.0 start at version 0
SELECT content_id, share_count, version FROM sharecount.counts ORDER BY 1;
-- breakdowns equal COUNT(*) GROUP BY channel and campaign of up_chan
CREATE FUNCTION breakdown_exact() RETURNS boolean LANGUAGE sql AS $$
	SELECT NOT EXISTS (SELECT FROM sharecount_verify_breakdown()) AND NOT EXISTS (
		(SELECT content_type, content_id, 'channel', channel_id, count(*) FROM up_chan GROUP BY 1, 2, 4
		 UNION ALL SELECT content_type, content_id, 'campaign', campaign_id, count(*) FROM up_chan GROUP BY 1, 2, 4)
		EXCEPT SELECT content_type, content_id, dimension, value, share_count FROM sharecount.breakdown
		WHERE share_count <> 0 AND content_id IN ('ch', 'ch2'))
$$;
-- #15: breakdowns backfilled from the rows; the jobs 1.0 wrote are legacy
SELECT breakdown_exact() AS backfilled, (SELECT legacy_before <= now() FROM sharecount.trends_state) AS legacy_set;
SELECT channel_id_column IS NULL AS dropped_column_unmapped FROM sharecount.tracked WHERE tbl = 'up_links'::regclass;
SELECT count(*) AS public_grants FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
	WHERE p.oid = 'sharecount_trigger()'::regprocedure AND a.grantee = 0;
-- #13 outbox: the job written under 1.0 is claimed with its UUID jobId (the
-- claim, unconfirmed, puts it back at commit)
SELECT job_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_from_1_0,
	job_id = body::jsonb->'data'->>'jobId' AS in_body FROM sharecount_outbox_claim(10);
SELECT drain();
SELECT exact(), breakdown_exact();
-- ... and count from there: one version per batch that changes them
SELECT * FROM sharecount_get_versioned('article', '{up,legacy}');
SELECT * FROM sharecount_get_breakdown('article', 'ch');
-- 1.1 jobs move breakdowns: a delete, a move, a new row
DELETE FROM up_chan WHERE id = 3;
UPDATE up_chan SET campaign_id = 'f' WHERE id = 5;
INSERT INTO up_chan VALUES (6, 'article', 'ch2', 'u', NULL, 'f');
SELECT drain();
SELECT breakdown_exact(), sharecount_get('article', 'ch') AS ch, sharecount_get('article', 'ch2') AS ch2;
SELECT * FROM sharecount_get_breakdown('article', 'ch', 'campaign');
TRUNCATE up_chan;
SELECT drain();
SELECT breakdown_exact(), sharecount_get('article', 'ch') AS ch;
SELECT sharecount_untrack('up_chan');
DROP TABLE up_chan;
DROP FUNCTION breakdown_exact();
-- 1.0's records keep deduping: the redelivery is a duplicate, the counter
-- starts from them, new jobs go to the 1.1 state (docs/extension.md, "Dedupe")
SELECT sharecount_apply(lj('8d0e5c1a-1f2b-4c3d-9e8f-0a1b2c3d4e5f')) AS redelivered_after_update,
	sharecount_get('article', 'legacy') AS legacy_count;
SELECT (sharecount_stats()->>'dedupe_records')::int - (SELECT count(*) FROM sharecount.applied_jobs) AS new_records,
	(SELECT count(*) FROM sharecount.applied_jobs) AS records_1_0;
-- and are pruned with the same window (they are never written again)
UPDATE sharecount.applied_jobs SET applied_at = now() - interval '8 days';
SELECT sharecount_prune() AS pruned;
SELECT count(*) AS records_1_0 FROM sharecount.applied_jobs;
SELECT sharecount_apply(lj('8d0e5c1a-1f2b-4c3d-9e8f-0a1b2c3d4e5f')) AS past_window;
SELECT sharecount_apply(lj('8d0e5c1a-1f2b-4c3d-9e8f-0a1b2c3d4e5f')) AS now_in_1_1_state;
DROP FUNCTION lj(text);
SELECT sharecount_recount('article', 'legacy') AS legacy_key_reset;
-- (a recount that changes a count bumps its version too)
SELECT * FROM sharecount_get_versioned('article', '{legacy}');
SELECT status, content_id, share_count, delta, version FROM sharecount_apply_batch_changes(ARRAY[
	jsonb_build_object('pattern', 'share_count_update', 'data', jsonb_build_object('jobId', 'up-v1',
		'contentType', 'article', 'contentId', 'legacy', 'operation', 'increment', 'amount', 2,
		'timestamp', '2026-12-02T10:00:00Z'))]);
SELECT sharecount_apply(jsonb_build_object('pattern', 'share_count_update', 'data', jsonb_build_object(
	'jobId', 'up-v2', 'contentType', 'article', 'contentId', 'legacy', 'operation', 'decrement', 'amount', 2,
	'timestamp', '2026-12-02T10:00:00Z')));
SELECT * FROM sharecount_get_versioned('article', '{legacy}');
-- #13 P7: the consumer's text batch function is there after the update (a
-- jobId applied before is a duplicate through it too; net 0: no change row)
SELECT ord, status, content_id, share_count, delta, version FROM sharecount_apply_json(
	'[{"pattern": "share_count_update", "data": {"jobId": "up-v3", "contentType": "article",
	"contentId": "legacy", "operation": "increment", "amount": 1, "timestamp": "2026-12-02T10:00:00Z"}},
	{"pattern": "share_count_update", "data": {"jobId": "up-v4", "contentType": "article",
	"contentId": "legacy", "operation": "decrement", "amount": 1, "timestamp": "2026-12-02T10:00:00Z"}},
	{"pattern": "share_count_update", "data": {"jobId": "up-v1", "contentType": "article",
	"contentId": "legacy", "operation": "increment", "amount": 1, "timestamp": "2026-12-02T10:00:00Z"}}]',
	true);

-- the triggers 1.0 attached (with arguments) keep working
SELECT tgname, tgnargs FROM pg_trigger WHERE tgrelid = 'up_links'::regclass ORDER BY 1;
INSERT INTO up_links VALUES (7, 'article', 'up', 'u');
DELETE FROM up_links WHERE id = 1;
-- #13 outbox: jobs written after the update have dense jobIds
SELECT job_name, job_id = sharecount._origin() || '-' || id AS dense FROM sharecount.outbox_jobs ORDER BY id;
SELECT drain();
SELECT exact();
-- a renamed column is followed
ALTER TABLE up_links RENAME COLUMN content_id TO item_id;
INSERT INTO up_links VALUES (8, 'article', 'up', 'u');
DELETE FROM up_links WHERE id = 2;
SELECT drain();
SELECT exact();
-- untrack takes the rows back, re-track counts them once
SELECT sharecount_untrack('up_links');
SELECT drain();
SELECT sharecount_get('article', 'up');
INSERT INTO up_links VALUES (9, 'article', 'up', 'u');
SELECT sharecount_track('up_links', content_id_column => 'item_id');
SELECT drain();
SELECT exact(), sharecount_get('article', 'up');
SELECT tgname, tgnargs FROM pg_trigger WHERE tgrelid = 'up_links'::regclass ORDER BY 1;
TRUNCATE up_links;
SELECT drain();
SELECT exact(), sharecount_get('article', 'up');

SELECT sharecount_untrack('up_links');
DROP TABLE up_links;
DROP FUNCTION drain(), exact();
\c :regress_db
DROP DATABASE regress_sc_upgrade;
