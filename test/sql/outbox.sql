-- sharecount_outbox_claim / sharecount_outbox_done: insertion order, bodies ready
-- to publish, done removes exactly the confirmed rows.  (Two sessions never
-- claiming the same row is the isolation spec outbox_claim.)
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
CREATE TABLE links (id int PRIMARY KEY, content_type text, content_id text, user_id text);
SELECT sharecount_track('links');
INSERT INTO links SELECT g, 'article', (g % 2)::text, 'u' FROM generate_series(1, 5) g;
DELETE FROM links WHERE id = 1;

CREATE TEMP TABLE claimed AS SELECT * FROM sharecount_outbox_claim(4);
SELECT job_name, body::jsonb->'data'->>'shareId' AS share_id, job_id = body::jsonb->'data'->>'jobId' AS id_ok
	FROM claimed ORDER BY id;
-- claim order is the outbox order
SELECT array_agg(id ORDER BY id) = (SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM sharecount.outbox_jobs ORDER BY id LIMIT 4) o) AS oldest_first
	FROM claimed;
-- the outbox keeps a job as columns; a claim renders the body the view shows
SELECT o.job, sharecount.job_id(o) = c.job_id AS job_id_ok, o.share_id, o.content_type, o.content_id, o.user_id, o.amount
	FROM sharecount.outbox o JOIN claimed c USING (id) ORDER BY o.id;
SELECT count(*) AS same_as_view FROM claimed c JOIN sharecount.outbox_jobs j USING (id)
	WHERE c.body = j.body AND c.job_name = j.job_name AND c.job_id = j.job_id;
-- bodies are applied as they are published
SELECT status, count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb ORDER BY id) FROM claimed)) GROUP BY 1;
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM claimed));
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM claimed));
SELECT sharecount_outbox_done('{}');
SELECT sharecount_outbox_done(NULL);
SELECT job_name, body::jsonb->'data'->>'shareId' AS share_id FROM sharecount_outbox_claim(100);
SELECT count(*) FROM sharecount.outbox;
SELECT * FROM sharecount_outbox_claim(0);
SELECT * FROM sharecount_outbox_claim(-5);
SELECT * FROM sharecount_outbox_claim(NULL);
SELECT (sharecount_stats()->>'outbox_depth')::int AS depth, (sharecount_stats()->>'outbox_oldest_age_seconds')::numeric >= 0 AS age_ok;

-- drain the rest and check the counts are exact
SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount_outbox_claim(100)));
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM sharecount.outbox_jobs));
SELECT * FROM sharecount_get_many('article', '{0,1}');
SELECT content_id, count(*) FROM links GROUP BY 1 ORDER BY 1;
SELECT (sharecount_stats()->>'outbox_depth')::int AS depth, (sharecount_stats()->>'outbox_oldest_age_seconds')::numeric AS age;

SELECT sharecount_untrack('links');
DROP TABLE links;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;

-- done: rows claimed in the same transaction were taken (deleted) by the
-- claim and are only confirmed, any other id is deleted after a scan of the
-- outbox; rows claimed and not confirmed are back at commit; a publication of
-- the outbox (no primary key: replica identity FULL) does not stop the deletes
SET client_min_messages = error;
CREATE PUBLICATION outbox_pub FOR TABLE sharecount.outbox;
RESET client_min_messages;
CREATE TABLE done_links (id int, content_type text, content_id text);
SELECT sharecount_track('done_links');
INSERT INTO done_links SELECT g, 'article', 'd' || g FROM generate_series(1, 6) g;
BEGIN;
CREATE TEMP TABLE c1 AS SELECT id FROM sharecount_outbox_claim(2);
SELECT sharecount_outbox_done(array_agg(id) || (SELECT max(id) FROM sharecount.outbox)) AS fast_and_slow FROM c1;
COMMIT;
SELECT content_id FROM sharecount.outbox ORDER BY id;
BEGIN;
CREATE TEMP TABLE c2 AS SELECT id FROM sharecount_outbox_claim(2);
COMMIT;
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM c2)) AS claimed_earlier;
SELECT sharecount_outbox_done(ARRAY[NULL, -1]::bigint[]) AS nothing;
SELECT sharecount_outbox_done('{{1,2},{3,4}}'::bigint[]);
SELECT content_id FROM sharecount.outbox ORDER BY id;
SELECT sharecount_untrack('done_links');
DROP TABLE done_links;
DROP PUBLICATION outbox_pub;
TRUNCATE sharecount.outbox;

-- ids: one nextval() per block of 64 (the sequence's increment); a session
-- uses its block in order, a row inserted by hand takes the next block's start,
-- and a changed increment is followed at once (ids stay unique)
CREATE TABLE id_links (id int, content_type text, content_id text);
SELECT sharecount_track('id_links');
SELECT increment_by FROM pg_sequences WHERE schemaname = 'sharecount' AND sequencename = 'outbox_id_seq';
INSERT INTO id_links SELECT g, 'article', 'blk' FROM generate_series(101, 103) g;
INSERT INTO sharecount.outbox (job, job_id, amount, content_type, content_id)
	VALUES ('u', gen_random_uuid(), 1, 'article', 'by-hand');
INSERT INTO id_links VALUES (104, 'article', 'blk');
SELECT max(id) - min(id) AS span, count(*) AS n FROM sharecount.outbox WHERE content_id = 'blk';
SELECT (SELECT id FROM sharecount.outbox WHERE content_id = 'by-hand') - min(id) AS by_hand_offset
	FROM sharecount.outbox WHERE content_id = 'blk';
ALTER SEQUENCE sharecount.outbox_id_seq INCREMENT BY 1;
INSERT INTO id_links VALUES (105, 'article', 'inc1');
INSERT INTO sharecount.outbox (job, job_id, amount, content_type, content_id)
	VALUES ('u', gen_random_uuid(), 1, 'article', 'by-hand-2');
INSERT INTO id_links VALUES (106, 'article', 'inc1');
SELECT count(*) AS n, count(DISTINCT id) AS distinct_ids FROM sharecount.outbox;
SELECT array_agg(id - (SELECT min(id) FROM sharecount.outbox WHERE content_id = 'inc1') ORDER BY id) AS after_alter
	FROM sharecount.outbox WHERE content_id IN ('inc1', 'by-hand-2');
ALTER SEQUENCE sharecount.outbox_id_seq INCREMENT BY 64;
DROP TABLE id_links;
TRUNCATE sharecount.outbox;
