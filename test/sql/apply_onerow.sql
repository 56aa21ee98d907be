-- A hot key's batch (one dense block, one key) takes the apply path's one-row
-- statements (src/dedupe.c, src/apply.c; docs/performance.md "P7 apply
-- internals"): the block is locked first and created only when missing, and
-- the block and the counts row are written with scalar arguments.  Batches of
-- several blocks or keys keep the array statements.  Both give the same
-- statuses, counts, changes and dedupe state; the status rows are copies of
-- one row per status with their ord set.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
RESET client_min_messages;
CREATE FUNCTION oj(id text, cid text DEFAULT 'one', pattern text DEFAULT 'share_created') RETURNS text
LANGUAGE sql AS $$
	SELECT format('{"pattern": "%s", "data": {"jobId": "%s", "shareId": "s", "userId": "u", '
		'"contentType": "article", "contentId": "%s", "timestamp": "2026-12-02T10:00:00.000Z"}}',
		pattern, id, cid)
$$;
CREATE FUNCTION batch(VARIADIC m text[]) RETURNS text LANGUAGE sql AS $$
	SELECT '[' || array_to_string(m, ', ') || ']'
$$;
CREATE FUNCTION state() RETURNS TABLE (count bigint, version bigint, blocks bigint, bits bigint, applied bigint,
	duplicates bigint, invalid bigint, records bigint) LANGUAGE sql AS $$
	SELECT (SELECT share_count FROM sharecount.counts WHERE content_id = 'one'),
		(SELECT version FROM sharecount.counts WHERE content_id = 'one'),
		(SELECT count(*) FROM sharecount.dedupe_dense), (SELECT sum(n) FROM sharecount.dedupe_dense),
		sum(jobs_applied), sum(duplicates), sum(invalid), (sharecount_stats()->>'dedupe_records')::bigint
	FROM sharecount.stats
$$;

-- a new block (created, then locked), then the same block again (locked first)
SELECT * FROM sharecount_apply_json(batch(oj('00000000000000c1-1'), oj('00000000000000c1-2')), true);
SELECT * FROM sharecount_apply_json(batch(oj('00000000000000c1-2'), oj('00000000000000c1-3'),
	oj('00000000000000c1-3'), oj('00000000000000c1-4', 'one', 'share_deleted')), true);
SELECT * FROM state();
-- the one-row statements were used: their generic plans exist
SELECT count(*) FILTER (WHERE ident LIKE 'SELECT d.origin, d.block, d.bits, d.n, d.day FROM sharecount.dedupe_dense d WHERE %') AS lock_one,
	count(*) FILTER (WHERE ident LIKE 'UPDATE sharecount.dedupe_dense d SET bits = $3%') AS write_one,
	count(*) FILTER (WHERE ident LIKE 'INSERT INTO sharecount.counts %(VALUES ($1, $2, $3))%') AS counts_one,
	count(*) FILTER (WHERE ident LIKE 'INSERT INTO sharecount.counts %unnest($1, $2, $3)%') AS counts_arrays
	FROM pg_backend_memory_contexts WHERE name = 'CachedPlan';

-- two blocks and two keys: the array statements, same results
SELECT * FROM sharecount_apply_json(batch(oj('00000000000000c1-4095'), oj('00000000000000c1-4096'),
	oj('00000000000000c1-1'), oj('00000000000000c1-4097', 'two')), true);
SELECT * FROM state();
SELECT sharecount_get('article', 'two') AS two;
SELECT origin, block, n FROM sharecount.dedupe_dense ORDER BY 1, 2;

-- every status: invalid rows keep their error, the others their ord
SELECT * FROM sharecount_apply_json(batch(oj('00000000000000c1-5'), '{"pattern": "share_created"}', oj('00000000000000c1-5'),
	'7', oj('00000000000000c1-6'), oj('00000000000000c1-1')), false);
SELECT * FROM state();

-- a block removed between batches (prune) is created again on the next one
UPDATE sharecount.dedupe_dense SET day = day - 8 WHERE block = 0;
SELECT sharecount_prune() AS pruned;
SELECT * FROM sharecount_apply_json(batch(oj('00000000000000c1-1'), oj('00000000000000c1-7')), true);
SELECT * FROM state();

DROP FUNCTION oj(text, text, text), batch(text[]), state();
SET client_min_messages = warning;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
