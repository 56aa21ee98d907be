-- Privileges: write-side functions are not executable by PUBLIC; reads are;
-- an application role with no right on schema sharecount still gets its jobs
-- written (INSERT, DELETE, UPDATE, TRUNCATE); the documented bridge GRANTs
-- are enough for the bridge; SECURITY DEFINER functions pin search_path.
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
SELECT sharecount_apply('{"pattern": "share_count_update", "data": {"jobId": "p0", "contentType": "article",
	"contentId": "1", "operation": "increment", "amount": 7, "timestamp": "2026-11-27T20:15:03.123Z"}}');

CREATE ROLE regress_sc_nobody;
CREATE ROLE regress_sc_app;
CREATE ROLE regress_sc_bridge;
CREATE TABLE app_links (id int PRIMARY KEY, content_type text, content_id text, user_id text);
SELECT sharecount_track('app_links');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON app_links TO regress_sc_app;
-- the bridge GRANTs of docs/extension.md
GRANT EXECUTE ON FUNCTION sharecount_outbox_claim(int), sharecount_outbox_done(bigint[]),
	sharecount_outbox_claim_packed(int),
	sharecount_apply(jsonb), sharecount_apply_batch(jsonb[]), sharecount_apply_batch_changes(jsonb[]),
	sharecount_apply_json(text, boolean, boolean),
	sharecount_stats(), sharecount_publisher_sleep(), sharecount_publisher_wake(), sharecount_prune(interval)
	TO regress_sc_bridge;

-- no grants: every write-side function is refused, reads work
SET ROLE regress_sc_nobody;
SELECT sharecount_get('article', '1');
SELECT * FROM sharecount_get_many('article', '{1,2}');
SELECT sharecount_apply('{}');
SELECT * FROM sharecount_apply_batch('{}');
SELECT * FROM sharecount_apply_batch_changes('{}');
SELECT * FROM sharecount_apply_json('[]', true);
SELECT * FROM sharecount_outbox_claim(1);
SELECT sharecount_outbox_claim_packed(1);
SELECT sharecount_outbox_done('{1}');
SELECT sharecount_recount('article', '1');
SELECT sharecount_prune();
SELECT * FROM sharecount_verify();
SELECT sharecount_stats();
SELECT sharecount_track('app_links');
SELECT sharecount_untrack('app_links');
SELECT sharecount_publisher_sleep();
SELECT sharecount_publisher_wake();
SELECT sharecount._enqueue_counts('app_links', 'content_type', 'content_id', 'decrement');
SELECT count(*) FROM sharecount.outbox;
SELECT count(*) FROM sharecount.counts;
UPDATE sharecount.counts SET share_count = 1000;
RESET ROLE;
SELECT sharecount_get('article', '1');

-- the application role: no right on schema sharecount, its writes still queue jobs
SELECT has_schema_privilege('regress_sc_app', 'sharecount', 'USAGE') AS app_has_usage;
SET ROLE regress_sc_app;
INSERT INTO app_links VALUES (1, 'article', '1', 'u1'), (2, 'article', '1', 'u2'), (3, 'post', '2', 'u3');
UPDATE app_links SET content_id = '3' WHERE id = 3;
DELETE FROM app_links WHERE id = 2;
TRUNCATE app_links;
SELECT count(*) FROM sharecount.outbox;
RESET ROLE;
SELECT body::jsonb->'data'->>'contentId' AS cid, job_name, body::jsonb->'data'->>'operation' AS op FROM sharecount.outbox_jobs ORDER BY 1, 2;

-- the bridge role: claims, publishes, applies, marks done, reads stats
SET ROLE regress_sc_bridge;
BEGIN;
CREATE TEMP TABLE b AS SELECT * FROM sharecount_outbox_claim(100);
SELECT status, count(*) FROM sharecount_apply_batch_changes((SELECT array_agg(body::jsonb ORDER BY id) FROM b))
	GROUP BY 1 ORDER BY 1;
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM b));
COMMIT;
SELECT * FROM sharecount_apply_json('[]', true);
SELECT * FROM sharecount_apply_json('[]', true, false);
SELECT sharecount_outbox_claim_packed(100) AS packed_claim;
SELECT sharecount_stats()->'outbox_depth' AS depth;
SELECT sharecount_publisher_sleep(), sharecount_publisher_wake();
SELECT sharecount_prune();
SELECT sharecount_recount('article', '1');
SELECT count(*) FROM sharecount.counts;
RESET ROLE;
SELECT * FROM sharecount_get_many('article', '{1}');
SELECT * FROM sharecount_get_many('post', '{2,3}');

-- every SECURITY DEFINER function pins search_path; nothing writable is PUBLIC
SELECT p.proname FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sharecount'
	WHERE p.prosecdef AND NOT coalesce(p.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false);
SELECT p.proname FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sharecount'
	WHERE has_function_privilege('regress_sc_nobody', p.oid, 'EXECUTE') ORDER BY 1;

SELECT sharecount_untrack('app_links');
DROP TABLE app_links;
DROP OWNED BY regress_sc_bridge;
DROP ROLE regress_sc_nobody, regress_sc_app, regress_sc_bridge;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
