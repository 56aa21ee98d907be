-- The claim keeps a copy of each row it takes, not its place in the heap
-- (src/claim.c, remember): the write-back of unconfirmed rows at commit must
-- not depend on the deleted row still being where it was.  It is not after a
-- TRUNCATE of the outbox in the claiming transaction (new storage, the old
-- rows gone), and a value stored out of line (TOAST) is copied flattened, so
-- the row written back does not point at the deleted row's TOAST data.
-- (the big value is left out of the job with a WARNING: bodies without it)
SET client_min_messages = error;
TRUNCATE sharecount.outbox;

-- two rows, one with a value TOASTed out of line (uncompressible, > 2 kB)
INSERT INTO sharecount.outbox (id, job, created_at, content_type, content_id, campaign_id)
	VALUES (-1, 'c', '2026-01-02 03:04:05.678Z', 'wb', 'small', NULL),
		(-2, 'c', '2026-01-02 03:04:05.678Z', 'wb', 'big',
		 (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 120) g));
SELECT id, pg_column_size(campaign_id) > 2000 AS big_value FROM sharecount.outbox ORDER BY id;
CREATE TEMP TABLE wb_before AS SELECT o.id, sharecount.job_body(o) AS body, md5(o.campaign_id) AS campaign_md5
	FROM sharecount.outbox o;

-- claimed, not confirmed, then the outbox truncated in the same transaction:
-- at commit both rows are written back, whole, into the new storage
BEGIN;
SELECT count(*) AS claimed FROM sharecount_outbox_claim(10);
TRUNCATE sharecount.outbox;
SELECT count(*) AS after_truncate FROM sharecount.outbox;
COMMIT;
SELECT o.id, sharecount.job_body(o) = b.body AS same_body, md5(o.campaign_id) IS NOT DISTINCT FROM b.campaign_md5 AS same_value
	FROM sharecount.outbox o JOIN wb_before b USING (id)
	ORDER BY o.id;

-- the claim renders the rows written back, the TOASTed value too
BEGIN;
SELECT c.id, c.body = b.body AS same_body FROM sharecount_outbox_claim(10) c JOIN wb_before b USING (id)
	ORDER BY c.id;
ROLLBACK;

-- claimed, the big one confirmed, committed: only the small one is back
BEGIN;
SELECT count(*) AS claimed FROM sharecount_outbox_claim(10);
SELECT sharecount_outbox_done(ARRAY[-2]::bigint[]) AS confirmed;
COMMIT;
SELECT o.id, sharecount.job_body(o) = b.body AS same_body, md5(o.campaign_id) IS NOT DISTINCT FROM b.campaign_md5 AS same_value
	FROM sharecount.outbox o JOIN wb_before b USING (id)
	ORDER BY o.id;
TRUNCATE sharecount.outbox;
