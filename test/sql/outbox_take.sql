-- A claim takes its rows (deletes them in its transaction); done confirms
-- them; rows taken and not confirmed are written back at commit with the same
-- jobId; a rollback, of the transaction or of a savepoint, undoes the claim or
-- the confirmation (src/claim.c).  Rows written by 1.0 keep their UUID jobId.
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
CREATE TABLE take_links (id int PRIMARY KEY, content_type text, content_id text, user_id text);
SELECT sharecount_track('take_links');
INSERT INTO take_links SELECT g, 'article', 't' || g, 'u' FROM generate_series(1, 4) g;
CREATE TABLE before_claim AS SELECT id, job_id, body FROM sharecount.outbox_jobs;

-- claim 3, confirm 1, commit: the other 2 are back, same id, jobId and body
BEGIN;
CREATE TEMP TABLE c1 AS SELECT * FROM sharecount_outbox_claim(3);
SELECT count(*) AS claimed, count(*) FILTER (WHERE b.body = c1.body AND b.job_id = c1.job_id) AS same_as_before
	FROM c1 JOIN before_claim b USING (id);
SELECT count(*) AS visible_to_claimer FROM sharecount.outbox;
SELECT status FROM sharecount_apply_batch((SELECT array_agg(body::jsonb) FROM c1 WHERE body::jsonb->'data'->>'contentId' = 't1'));
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM c1 WHERE body::jsonb->'data'->>'contentId' = 't1')) AS confirmed;
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM c1 WHERE body::jsonb->'data'->>'contentId' = 't1')) AS again;
COMMIT;
SELECT o.body::jsonb->'data'->>'contentId' AS content_id, o.job_id = b.job_id AND o.body = b.body AS same
	FROM sharecount.outbox_jobs o JOIN before_claim b USING (id) ORDER BY 1;

-- a rollback undoes the claim and the confirmation
BEGIN;
SELECT count(*) AS claimed FROM sharecount_outbox_claim(100);
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM before_claim)) AS confirmed;
ROLLBACK;
SELECT count(*) AS after_rollback FROM sharecount.outbox;

-- savepoints: a claim rolled back to its savepoint is undone (its rows are
-- visible again, and done on them deletes by id); a confirmation rolled back
-- to its savepoint is undone (the row is written back at commit)
BEGIN;
CREATE TEMP TABLE c2 AS SELECT * FROM sharecount_outbox_claim(1);
SAVEPOINT a;
CREATE TEMP TABLE c3 AS SELECT * FROM sharecount_outbox_claim(1);
ROLLBACK TO SAVEPOINT a;
SELECT count(*) AS visible_again FROM sharecount.outbox;
SAVEPOINT b;
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM c2)) AS confirmed_in_b;
ROLLBACK TO SAVEPOINT b;
SAVEPOINT c;
SELECT count(*) AS claimed_in_c FROM sharecount_outbox_claim(100);
RELEASE SAVEPOINT c;
COMMIT;
SELECT o.body::jsonb->'data'->>'contentId' AS content_id, o.job_id = b.job_id AND o.body = b.body AS same
	FROM sharecount.outbox_jobs o JOIN before_claim b USING (id) ORDER BY 1;

-- a claim needs a read-write transaction
BEGIN READ ONLY;
SELECT count(*) FROM sharecount_outbox_claim(1);
ROLLBACK;

-- drained by claim + done: nothing left, counts exact
BEGIN;
CREATE TEMP TABLE c4 AS SELECT * FROM sharecount_outbox_claim(100);
SELECT status, count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb ORDER BY id) FROM c4)) GROUP BY 1;
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM c4)) AS confirmed;
COMMIT;
SELECT count(*) AS left_over FROM sharecount.outbox;
SELECT count(*) AS drift FROM sharecount_verify();

-- a row as release 1.0 wrote it (a UUID, no origin) is claimed with its UUID;
-- two rows sharing an id (only by hand) are both taken, written back, confirmed
INSERT INTO sharecount.outbox (id, job, job_id, amount, content_type, content_id)
	VALUES (900001, 'u', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 2, 'article', 'old'),
		(900002, 'u', NULL, 1, 'article', 'dup'), (900002, 'u', NULL, 1, 'article', 'dup');
UPDATE sharecount.outbox SET origin = 1 WHERE id = 900002;
SELECT id, job_id, body::jsonb->'data'->>'jobId' AS body_job_id FROM sharecount_outbox_claim(10) ORDER BY id;
BEGIN;
SELECT count(*) AS claimed FROM sharecount_outbox_claim(10);
SELECT sharecount_outbox_done('{900002}') AS confirmed_dups;
COMMIT;
SELECT id, job_id FROM sharecount.outbox_jobs ORDER BY id;

-- a row inserted by hand gets this session's origin (column default); one
-- with neither job_id nor origin is still published (WARNING), with a stable
-- jobId that is not dense
DELETE FROM sharecount.outbox;
INSERT INTO sharecount.outbox (id, job, amount, content_type, content_id) VALUES (900003, 'u', 1, 'article', 'hand');
INSERT INTO sharecount.outbox (id, job, amount, content_type, content_id, origin) VALUES (900004, 'u', 1, 'article', 'hand', NULL);
SELECT id, job_id = sharecount._origin() || '-900003' AS dense, job_id ~ '^nojobid-900004-[0-9]+$' AS nojobid,
	job_id = body::jsonb->'data'->>'jobId' AS in_body
	FROM sharecount_outbox_claim(10) ORDER BY id;
DELETE FROM sharecount.outbox;

-- the outbox part of sharecount_stats(): cheap, from the statistics system
SELECT pg_stat_force_next_flush();
SELECT depth >= 0 AS depth_ok, oldest_age_s >= 0 AS age_ok FROM sharecount._outbox_stats();

SELECT sharecount_untrack('take_links');
DROP TABLE take_links, before_claim;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
