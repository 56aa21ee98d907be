-- Job bodies are bounded (docs/extension.md, "Jobs"): whatever a tracked row
-- holds, sharecount.job_body() renders at most 8,192 bytes.  An optional field
-- (shareId, userId, channelId, campaignId) taking more than 1,024 bytes as JSON
-- is left out of the job with a WARNING; the share is still counted, and its
-- share_deleted takes it back out.  Release 1.0 wrote a 70,242-byte body for a
-- 70,000-byte campaign id (over the bridge's 64 KiB limit: dead-lettered).
SET client_min_messages = warning;
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;

CREATE TABLE big_links (id text PRIMARY KEY, content_type text, content_id text,
	user_id text, channel_id text, campaign_id text);
SELECT sharecount_track('big_links');
-- the jobs of the outbox, oldest first: size, and which fields they carry
CREATE FUNCTION shape() RETURNS TABLE (job_name text, bytes int, share_id int, user_id int,
	channel_id int, campaign_id int, content_id text) LANGUAGE sql AS $$
	-- bytes as with a 36-byte jobId (a UUID; a dense jobId's length varies with the id)
	SELECT job_name, octet_length(body) - octet_length(body::jsonb->'data'->>'jobId') + 36,
		octet_length(body::jsonb->'data'->>'shareId'), octet_length(body::jsonb->'data'->>'userId'),
		octet_length(body::jsonb->'data'->>'channelId'), octet_length(body::jsonb->'data'->>'campaignId'),
		left(body::jsonb->'data'->>'contentId', 12)
	FROM sharecount.outbox_jobs ORDER BY id
$$;

-- the issue's row: a 70,000-byte campaign id is left out, with a WARNING
INSERT INTO big_links VALUES ('huge-campaign', 'article', 'a1', 'u1', 'web', repeat('c', 70000));
-- every optional field huge: all four left out (shareId and userId become null)
INSERT INTO big_links VALUES (repeat('s', 5000), 'article', 'a1', repeat('u', 5000),
	repeat('h', 5000), repeat('k', 5000));
-- escape-heavy but short (171 control characters = 1,026 bytes as JSON): left out
INSERT INTO big_links VALUES ('ctl-171', 'article', 'a1', 'u', 'web', repeat(chr(1), 171));
-- at the limits, nothing left out: 1,024 plain bytes; 170 control characters
-- (1,020); 512 quotes or backslashes (1,024); 1,024 bytes of 2-byte UTF-8
INSERT INTO big_links VALUES (repeat('s', 1024), 'article', 'a1', repeat('u', 1024),
	repeat('h', 1024), repeat('k', 1024));
INSERT INTO big_links VALUES ('ctl-170', 'article', 'a1', repeat(chr(1), 170),
	repeat(E'\t', 512), repeat('"', 512));
INSERT INTO big_links VALUES ('utf8', 'article', 'a1', repeat('\', 512), repeat('é', 512), NULL);
-- the worst case: the longest key, all control characters, and every optional field at its limit
INSERT INTO big_links VALUES (repeat(chr(2), 170), repeat(chr(3), 64), repeat(chr(4), 256),
	repeat(chr(5), 170), repeat(chr(6), 170), repeat(chr(7), 170));
SELECT * FROM shape();
SELECT max(octet_length(body) - octet_length(body::jsonb->'data'->>'jobId') + 36) AS longest,
	max(octet_length(body)) <= 8192 AS bounded
	FROM sharecount.outbox_jobs;

-- deletes: share_deleted leaves the same fields out, with the same WARNING
DELETE FROM big_links WHERE id IN ('huge-campaign', repeat('s', 5000), 'ctl-171');
-- an UPDATE that re-targets the key: share_deleted + share_created, both bounded
UPDATE big_links SET content_id = 'a2' WHERE id = 'ctl-170';
SELECT * FROM shape() OFFSET 7;

-- every body applies, and the counts are exact
SELECT status, count(*) FROM sharecount_apply_batch(
	(SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount.outbox_jobs)) GROUP BY 1;
SELECT sharecount_get('article', 'a1') AS a1, sharecount_get('article', 'a2') AS a2,
	sharecount_get(repeat(chr(3), 64), repeat(chr(4), 256)) AS worst;
SELECT count(*) FILTER (WHERE content_id = 'a1') AS a1, count(*) FILTER (WHERE content_id = 'a2') AS a2,
	count(*) FILTER (WHERE content_type = repeat(chr(3), 64)) AS worst FROM big_links;
SELECT count(*) AS mismatched FROM sharecount_verify(100);
TRUNCATE sharecount.outbox;
-- and the rest of the rows go: every count back to 0
DELETE FROM big_links;
SELECT job_name, bytes, share_id, user_id, content_id FROM shape();
SELECT status, count(*) FROM sharecount_apply_batch(
	(SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount.outbox_jobs)) GROUP BY 1;
SELECT count(*) AS nonzero FROM sharecount.counts WHERE share_count <> 0;
TRUNCATE sharecount.outbox;

-- rows the trigger did not write (left by release 1.0, or made by hand) are
-- rendered under the same rule: an over-long field is left out with the
-- WARNING; a key outside the limits is rendered empty (the consumer
-- dead-letters the job as invalid) instead of failing every claim.  A
-- share_count_update with the worst key stays bounded.
INSERT INTO sharecount.outbox (id, job, job_id, created_at, amount, share_id, content_type,
	content_id, user_id, channel_id, campaign_id) VALUES
	(1, 'c', '00000000-0000-4000-8000-000000000001', '2026-01-01 00:00Z', NULL, 's1', 'article', 'old',
	 'u1', NULL, repeat('c', 70000)),
	(2, 'u', '00000000-0000-4000-8000-000000000002', '2026-01-01 00:00Z', 1, NULL, 'article',
	 repeat('x', 300), NULL, NULL, NULL),
	(3, 'u', '00000000-0000-4000-8000-000000000003', '2026-01-01 00:00Z', -1000000, NULL, repeat(chr(3), 64),
	 repeat(chr(4), 256), NULL, NULL, NULL);
SELECT id, CASE WHEN id < 3 THEN body END AS body, octet_length(body) AS bytes
	FROM (SELECT id, sharecount.job_body(o) AS body FROM sharecount.outbox o OFFSET 0) b ORDER BY id;
SELECT ord, status, error FROM sharecount_apply_batch(
	(SELECT array_agg(sharecount.job_body(o)::jsonb ORDER BY id) FROM sharecount.outbox o WHERE id < 3));
TRUNCATE sharecount.outbox;

SELECT sharecount_untrack('big_links');
DROP TABLE big_links;
DROP FUNCTION shape();
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
