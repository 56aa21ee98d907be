-- sharecount_apply_json(messages, with_changes, applied_rows => false), the
-- bridge's call (docs/sql.md): no row per applied message; the rows of the
-- messages not applied (duplicate, invalid) in order, the changed keys, and
-- one last row (ord NULL, status 'applied') whose share_count is the number
-- of messages applied.  Apart from the applied rows, the same rows as with
-- applied_rows (the default), and the same writes.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
RESET client_min_messages;
CREATE FUNCTION ar_job(id text, cid text DEFAULT 'k1', pattern text DEFAULT 'share_created') RETURNS text
LANGUAGE sql AS $$
	SELECT format('{"pattern": "%s", "data": {"jobId": "%s", "shareId": "s", "userId": "u", '
		'"contentType": "article", "contentId": "%s", "timestamp": "2026-12-03T10:00:00.000Z"}}',
		pattern, id, cid)
$$;
CREATE FUNCTION ar_batch(VARIADIC m text[]) RETURNS text LANGUAGE sql AS $$
	SELECT '[' || array_to_string(m, ', ') || ']'
$$;
-- ar_rows(batch, with_changes, applied_rows): the rows, one line each, in the function's order
CREATE FUNCTION ar_rows(b text, ch boolean, ar boolean) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT concat_ws(' | ', coalesce(ord::text, '-'), status, error, content_type, content_id, share_count, delta, version)
	FROM sharecount_apply_json(b, ch, ar)
$$;
CREATE FUNCTION ar_state() RETURNS TABLE (k1 bigint, k2 bigint, versions bigint, applied bigint, duplicates bigint,
	invalid bigint, records bigint) LANGUAGE sql AS $$
	SELECT sharecount_get('article', 'k1'), sharecount_get('article', 'k2'),
		(SELECT sum(version) FROM sharecount.counts), sum(jobs_applied), sum(duplicates), sum(invalid),
		(sharecount_stats()->>'dedupe_records')::bigint
	FROM sharecount.stats
$$;

SELECT * FROM sharecount_apply_json(ar_batch(ar_job('ar-0')), false, false);

-- every status: applied, duplicate of an earlier job and of one in the batch,
-- invalid (an error from validation, a non-object), two keys, one netting to 0
\set b 'ar_batch(ar_job(''ar-1''), ar_job(''ar-0''), ar_job(''ar-2''), ''{"pattern": "share_created"}'', ar_job(''ar-1''), ar_job(''ar-3'', ''k2''), ''7'', ar_job(''ar-4'', ''k2'', ''share_deleted''), ar_job(''ar-5''))'
-- with applied_rows first, rolled back, then without
BEGIN;
SELECT string_agg(r, E'\n' ORDER BY n) AS all_rows FROM ar_rows(:b, true, true) WITH ORDINALITY AS t(r, n) \gset
ROLLBACK;
SELECT string_agg(r, E'\n' ORDER BY n) AS rows FROM ar_rows(:b, true, false) WITH ORDINALITY AS t(r, n) \gset
SELECT r AS "row"
	FROM regexp_split_to_table(:'rows', E'\n') WITH ORDINALITY AS t(r, n) ORDER BY n;
SELECT * FROM ar_state();
-- the same rows as with applied_rows, the applied ones (5) replaced by the count at the end
SELECT count(*) FILTER (WHERE r LIKE '% | applied') AS applied_rows_before,
	string_agg(r, E'\n' ORDER BY n) FILTER (WHERE r NOT LIKE '% | applied') || E'\n- | applied | 5' = :'rows' AS same_rows
	FROM regexp_split_to_table(:'all_rows', E'\n') WITH ORDINALITY AS t(r, n);
-- (the batch again: all duplicates now, nothing applied, no change)
SELECT * FROM sharecount_apply_json(:b, true, false);

-- all applied: only the changed key and the count
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('ar-6'), ar_job('ar-7'), ar_job('ar-8')), true, false);
-- without the changes: only the count
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('ar-9'), ar_job('ar-10')), false, false);
-- only invalid ones: their rows and a count of 0
SELECT * FROM sharecount_apply_json(ar_batch('null', '{}'), true, false);
-- an empty batch: the count alone
SELECT * FROM sharecount_apply_json('[]', true, false);
SELECT * FROM sharecount_apply_json(' [ ] ', false, false);
SELECT * FROM ar_state();
-- applied_rows true (as the default) keeps a row per message and has no count
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('ar-11'), ar_job('ar-11')), false, true);
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('ar-12')), false);
-- NULL is NULL (STRICT)
SELECT count(*) FROM sharecount_apply_json(ar_batch(ar_job('ar-13')), true, NULL);
SELECT * FROM ar_state();

-- the batch's repeated jobIds (src/apply.c): jobIds that increase, shorter
-- first, need no set; any other order is checked with one
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('id-9'), ar_job('id-10'), ar_job('id-11'), ar_job('id-100')), false);
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('id-20'), ar_job('id-21'), ar_job('id-20')), false);
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('id-30'), ar_job('id-3'), ar_job('id-31')), false);
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('id-40'), 'null', ar_job('id-40'), ar_job('id-41')), false, false);
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('id-50'), ar_job('id-50')), false);
SELECT * FROM sharecount_apply_json(ar_batch(ar_job('id-61'), ar_job('id-62'), ar_job('id-60'), ar_job('id-61')), false);
SELECT * FROM ar_state();

-- a declaration with two arguments (a 1.1 script from before applied_rows) gets every row
CREATE FUNCTION ar_two_args(messages text, with_changes boolean)
	RETURNS TABLE (ord int, status text, error text, content_type text, content_id text,
		share_count bigint, delta bigint, version bigint)
	AS '$libdir/sharecount', 'sharecount_apply_json' LANGUAGE C STRICT;
SELECT * FROM ar_two_args(ar_batch(ar_job('id-70'), ar_job('id-70')), true);
DROP FUNCTION ar_two_args(text, boolean);

DROP FUNCTION ar_job(text, text, text), ar_batch(text[]), ar_rows(text, boolean, boolean), ar_state();
