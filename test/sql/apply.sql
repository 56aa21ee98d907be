-- sharecount_apply / sharecount_apply_batch: exact counts whatever the order,
-- duplicates counted once, never negative on read, per-job batch status.
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;

CREATE FUNCTION job(pattern text, job_id text, ctype text, cid text, extra jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', pattern, 'data',
		CASE pattern WHEN 'share_count_update'
			THEN jsonb_build_object('jobId', job_id, 'contentType', ctype, 'contentId', cid,
				'operation', 'increment', 'timestamp', '2026-11-27T20:15:03.123Z')
			ELSE jsonb_build_object('jobId', job_id, 'shareId', 's-' || job_id, 'contentType', ctype,
				'contentId', cid, 'userId', 'u1', 'timestamp', '2026-11-27T20:15:03.123Z') END || extra)
$$;

-- one job: true when applied, false when its jobId was applied before
SELECT sharecount_apply(job('share_created', 'j1', 'article', '1'));
SELECT sharecount_apply(job('share_created', 'j1', 'article', '1'));
SELECT sharecount_get('article', '1');
SELECT sharecount_apply(job('share_created', 'j2', 'article', '1', '{"channelId": "tw", "campaignId": null}'));
SELECT sharecount_apply(job('share_deleted', 'j3', 'article', '1'));
SELECT sharecount_get('article', '1');
-- share_count_update: amount default 1, increment and decrement
SELECT sharecount_apply(job('share_count_update', 'j4', 'article', '1'));
SELECT sharecount_apply(job('share_count_update', 'j5', 'article', '1', '{"amount": 10}'));
SELECT sharecount_apply(job('share_count_update', 'j6', 'article', '1', '{"operation": "decrement", "amount": 3}'));
SELECT sharecount_get('article', '1');
-- the NestJS send() envelope has an "id": accepted, ignored
SELECT sharecount_apply('{"id": "req-1", "pattern": "share_created", "data": {"jobId": "j7", "shareId": "s7",
	"contentType": "article", "contentId": "1", "userId": "u7", "timestamp": "2026-11-27T20:15:03Z"}}');
SELECT sharecount_get('article', '1');
-- updated_at is the clock time of the apply
SELECT share_count, updated_at > now() - interval '1 minute' AND updated_at <= clock_timestamp() AS fresh
	FROM sharecount.counts WHERE content_type = 'article' AND content_id = '1';

-- a decrement below zero never reads negative, and the stored sum stays exact
SELECT sharecount_apply(job('share_deleted', 'd1', 'post', '9'));
SELECT sharecount_apply(job('share_deleted', 'd2', 'post', '9'));
SELECT sharecount_get('post', '9'), (SELECT share_count FROM sharecount.counts WHERE content_id = '9');
SELECT * FROM sharecount_get_many('post', ARRAY['9']);
SELECT sharecount_apply(job('share_created', 'c1', 'post', '9'));
SELECT sharecount_apply(job('share_created', 'c2', 'post', '9'));
SELECT sharecount_apply(job('share_created', 'c3', 'post', '9'));
SELECT sharecount_get('post', '9');

-- unknown keys read 0; get_many: one row per asked id, in order, duplicates kept
SELECT sharecount_get('article', 'nope'), sharecount_get('nope', '1'), sharecount_get(NULL, '1') IS NULL AS strict;
SELECT * FROM sharecount_get_many('article', ARRAY['nope', '1', NULL, '1']);
SELECT * FROM sharecount_get_many('article', '{}');

-- a batch: per-job status in order, invalid members reported, the rest applied;
-- a jobId repeated inside the batch counts once
SELECT * FROM sharecount_apply_batch(ARRAY[
	job('share_created', 'b1', 'video', 'v'),
	job('share_created', 'b2', 'video', 'v'),
	'{"pattern": "share_created", "data": {}}',
	job('share_created', 'b1', 'video', 'v'),
	job('share_created', 'j1', 'article', '1'),
	NULL,
	job('share_created', 'b3', 'video', 'w', '{"contentType": ""}'),
	job('share_deleted', 'b4', 'video', 'v'),
	job('share_count_update', 'b5', 'video', 'w', '{"amount": 5}')]);
SELECT * FROM sharecount_get_many('video', ARRAY['v', 'w']);
SELECT * FROM sharecount_apply_batch('{}');
SELECT * FROM sharecount_apply_batch(NULL);

-- any order, twice: the count is the number of creates minus deletes
CREATE TABLE ev AS
	SELECT g, CASE WHEN g % 4 = 0 THEN 'share_deleted' ELSE 'share_created' END AS pattern FROM generate_series(1, 200) g;
-- reversed, in batches of 7
SELECT count(*) FILTER (WHERE status = 'applied') AS applied, count(*) AS total FROM (
	SELECT b.* FROM (SELECT (g - 1) / 7 AS grp, array_agg(job(pattern, 'o' || g, 'article', 'order') ORDER BY g DESC) AS msgs
		FROM ev GROUP BY 1) x, sharecount_apply_batch(x.msgs) b) s;
-- shuffled, all again plus a second copy in one batch
SELECT count(*) FILTER (WHERE status = 'duplicate') AS duplicates, count(*) AS total
	FROM sharecount_apply_batch((SELECT array_agg(job(pattern, 'o' || g, 'article', 'order') ORDER BY md5(g::text))
		FROM ev, generate_series(1, 2)));
SELECT sharecount_get('article', 'order') AS count,
	(SELECT count(*) FILTER (WHERE pattern = 'share_created') - count(*) FILTER (WHERE pattern = 'share_deleted') FROM ev) AS expected;

-- one row write per key per batch: 50 jobs on two keys write two rows
CREATE TABLE row_writes (n int);
CREATE FUNCTION note_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.row_writes VALUES (1); RETURN NULL; END $$;
CREATE TRIGGER note_write AFTER INSERT OR UPDATE ON sharecount.counts FOR EACH ROW EXECUTE FUNCTION note_write();
SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(job('share_created', 'hot' || g, 'article',
	CASE WHEN g % 2 = 0 THEN 'hot' ELSE 'warm' END)) FROM generate_series(1, 50) g));
SELECT count(*) AS row_writes FROM row_writes;
DROP TRIGGER note_write ON sharecount.counts;
DROP TABLE row_writes;
DROP FUNCTION note_write;
SELECT * FROM sharecount_get_many('article', ARRAY['hot', 'warm']);

-- stats are real counts
SELECT jsonb_pretty(sharecount_stats() - 'outbox_oldest_age_seconds' - 'tracked_tables');

-- prune drops dedupe records past the window only: here the buckets of half
-- the foreign jobIds hold a day that ended 8 days ago; foreign records of the
-- current day stay even with a window of 0 (docs/extension.md, "Dedupe")
UPDATE sharecount.dedupe_foreign_head SET day = day - 8 WHERE bucket % 2 = 0;
SELECT sharecount_prune();
SELECT sharecount_prune('1 hour');
SELECT sharecount_prune('0');
SELECT sharecount_prune('-1 day');
SELECT sharecount_stats()->'dedupe_records' AS dedupe_records;

DROP TABLE ev;
DROP FUNCTION job;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
