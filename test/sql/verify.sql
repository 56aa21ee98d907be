-- sharecount_verify finds drift between counts and the tracked rows (keys on
-- either side, over every tracked table); sharecount_recount repairs a key.
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
CREATE TABLE va (id int PRIMARY KEY, content_type text, content_id text);
CREATE TABLE vb (sid uuid PRIMARY KEY DEFAULT gen_random_uuid(), kind text, item int);
SELECT sharecount_track('va');
SELECT sharecount_track('vb', id_column => 'sid', content_type_column => 'kind', content_id_column => 'item');
INSERT INTO va SELECT g, 'article', (g % 3)::text FROM generate_series(1, 9) g;
INSERT INTO va VALUES (100, NULL, 'x'), (101, repeat('t', 65), 'x');
INSERT INTO vb (kind, item) SELECT 'article', g % 2 FROM generate_series(1, 4) g;
-- the pipeline, drained by hand
CREATE FUNCTION drain() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount.outbox_jobs)) b;
	DELETE FROM sharecount.outbox;
	SELECT count(*) FROM sharecount.counts;
$$;
SELECT drain();
SELECT * FROM sharecount_verify();
SELECT content_type, content_id, share_count FROM sharecount.counts ORDER BY 1, 2;

-- inject drift: a wrong count, a missing row, a row for a key with no rows, a negative one
UPDATE sharecount.counts SET share_count = 40 WHERE content_id = '0';
DELETE FROM sharecount.counts WHERE content_id = '1';
INSERT INTO sharecount.counts VALUES ('article', 'ghost', 2, now()), ('video', 'neg', -1, now());
SELECT * FROM sharecount_verify();
SELECT * FROM sharecount_verify(2);
SELECT * FROM sharecount_verify(0);

-- recount repairs each key from COUNT(*) over both tables
SELECT sharecount_recount('article', '0'), sharecount_recount('article', '1'),
	sharecount_recount('article', 'ghost'), sharecount_recount('video', 'neg');
SELECT * FROM sharecount_verify();
SELECT sharecount_get('article', '0'), sharecount_get('article', '1'), sharecount_get('article', 'ghost');
SELECT sharecount_recount('article', '');
SELECT sharecount_recount(repeat('t', 65), '1');
SELECT sharecount_recount('article', repeat('i', 257));

-- a dropped tracked table is forgotten (event trigger); verify goes on without it
DROP TABLE vb;
SELECT tbl FROM sharecount.tracked;
SELECT * FROM sharecount_verify();

SELECT sharecount_untrack('va');
DROP TABLE va;
DROP FUNCTION drain;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
