-- The extension's kept SPI plans are generic (src/sharecount.c, sc_prepare_once):
-- planned once per backend, not again at each call, so a batch pays no planning
-- (docs/performance.md, P7).  The plan cache keeps a generic plan in a
-- "CachedPlan" memory context named by its query; a custom plan is freed after
-- its call.  Left to the plan cache, the first five calls are custom plans, so
-- after ONE call a generic plan exists only when it was asked for.
\set SHOW_CONTEXT never
SELECT status, error FROM sharecount_apply_batch(ARRAY[
	'{"pattern": "share_created", "data": {"jobId": "plans-1", "shareId": "s1", "userId": "u1", "contentType": "article", "contentId": "plans", "timestamp": "2026-12-02T16:00:00.000Z"}}'::jsonb,
	'{"pattern": "share_created", "data": {"jobId": "plans-2", "shareId": "s2", "userId": "u1", "contentType": "article", "contentId": "plans", "timestamp": "2026-12-02T16:00:00.000Z"}}'::jsonb]);
SELECT sharecount_get('article', 'plans');
-- the counts upsert and the stats upsert of that one call: generic plans, kept
SELECT count(*) FILTER (WHERE ident LIKE 'INSERT INTO sharecount.counts %') AS counts_plan,
	count(*) FILTER (WHERE ident LIKE 'INSERT INTO sharecount.stats %') AS stats_plan
	FROM pg_backend_memory_contexts WHERE name = 'CachedPlan';
-- a second call plans nothing new: still one of each
SELECT status, error FROM sharecount_apply_batch(ARRAY[
	'{"pattern": "share_deleted", "data": {"jobId": "plans-3", "shareId": "s3", "userId": "u1", "contentType": "article", "contentId": "plans", "timestamp": "2026-12-02T16:00:01.000Z"}}'::jsonb]);
SELECT sharecount_get('article', 'plans');
SELECT count(*) FILTER (WHERE ident LIKE 'INSERT INTO sharecount.counts %') AS counts_plan,
	count(*) FILTER (WHERE ident LIKE 'INSERT INTO sharecount.stats %') AS stats_plan
	FROM pg_backend_memory_contexts WHERE name = 'CachedPlan';
