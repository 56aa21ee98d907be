-- Per-key versions (#14, docs/sql.md): sharecount_apply_batch_changes returns
-- the statuses and one row per changed key from the counts upsert; a version
-- grows by exactly 1 per batch that changes the key's count (duplicates,
-- invalid jobs and a net delta of 0 do not bump it), recount bumps a count it
-- changes; sharecount_get_versioned reads counts with their versions.
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;

CREATE FUNCTION vjob(job_id text, cid text, op text DEFAULT 'increment', amount int DEFAULT 1) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', 'share_count_update', 'data', jsonb_build_object('jobId', job_id,
		'contentType', 'article', 'contentId', cid, 'operation', op, 'amount', amount,
		'timestamp', '2026-12-02T10:00:00.000Z'))
$$;

-- one batch: 3 jobs on a, 1 on b, a duplicate, an invalid one; statuses first,
-- then one change row per key (sorted), version 1 for new keys
SELECT * FROM sharecount_apply_batch_changes(ARRAY[vjob('v1', 'a'), vjob('v2', 'a'), vjob('v3', 'b'),
	vjob('v1', 'a'), '{"pattern":"nope"}', vjob('v4', 'a', 'increment', 5)]);
-- the next batch touching a: one more version, whatever the number of jobs
SELECT status, count(*), max(content_id) AS content_id, max(share_count) AS share_count, max(delta) AS delta,
	max(version) AS version
	FROM sharecount_apply_batch_changes((SELECT array_agg(vjob('h' || g, 'a') ORDER BY g)
		FROM generate_series(1, 1000) g)) GROUP BY 1 ORDER BY 1;
-- only duplicates: no change rows, no bump
SELECT * FROM sharecount_apply_batch_changes(ARRAY[vjob('v1', 'a'), vjob('v3', 'b')]);
-- a net delta of 0 (+2 -2 on b): no change row, no bump; a decrement gives a negative delta
SELECT * FROM sharecount_apply_batch_changes(ARRAY[vjob('z1', 'b', 'increment', 2), vjob('z2', 'b', 'decrement', 2),
	vjob('z3', 'a', 'decrement', 3)]);
SELECT content_id, share_count, version FROM sharecount.counts ORDER BY 1;
-- sharecount_apply_batch (1.0's signature) is unchanged and bumps versions too;
-- sharecount_apply too
SELECT * FROM sharecount_apply_batch(ARRAY[vjob('o1', 'b'), vjob('o1', 'b')]);
SELECT sharecount_apply(vjob('o2', 'b'));
SELECT content_id, share_count, version FROM sharecount.counts ORDER BY 1;
-- a count below zero: the change row reads 0 (as sharecount_get), the delta is exact
SELECT * FROM sharecount_apply_batch_changes(ARRAY[vjob('n1', 'neg', 'decrement', 2)]);
SELECT * FROM sharecount_apply_batch_changes(ARRAY[vjob('n2', 'neg', 'increment', 3)]);
-- empty and bad arrays
SELECT * FROM sharecount_apply_batch_changes('{}');
SELECT * FROM sharecount_apply_batch_changes(NULL);
SELECT * FROM sharecount_apply_batch_changes(ARRAY[ARRAY[vjob('m1', 'a')]]);
-- a rolled-back batch leaves versions as they were
BEGIN;
SELECT count(*) FROM sharecount_apply_batch_changes(ARRAY[vjob('r1', 'a')]);
ROLLBACK;
SELECT version FROM sharecount.counts WHERE content_id = 'a';

-- recount: a count it changes gets version + 1, one it confirms does not
UPDATE sharecount.counts SET share_count = 99 WHERE content_id = 'a';
SELECT sharecount_recount('article', 'a');
SELECT share_count, version FROM sharecount.counts WHERE content_id = 'a';
SELECT sharecount_recount('article', 'a');
SELECT share_count, version FROM sharecount.counts WHERE content_id = 'a';

-- sharecount_get_versioned: one row per asked id, in order; 0/0 for unknown keys
SELECT * FROM sharecount_get_versioned('article', ARRAY['b', 'nope', NULL, 'a', 'neg', 'b']);
SELECT * FROM sharecount_get_versioned('article', '{}');
SELECT * FROM sharecount_get_versioned(NULL, '{a}');
SELECT * FROM sharecount_get_versioned('article', '{{a}}');
SELECT provolatile, proisstrict FROM pg_proc WHERE proname = 'sharecount_get_versioned';

-- privileges: the write side is not executable by PUBLIC, the read is
CREATE ROLE regress_sc_versions;
SET ROLE regress_sc_versions;
SELECT * FROM sharecount_apply_batch_changes(ARRAY[vjob('p1', 'a')]);
SELECT * FROM sharecount_get_versioned('article', '{b}');
RESET ROLE;
DROP ROLE regress_sc_versions;

DROP FUNCTION vjob(text, text, text, int);
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
