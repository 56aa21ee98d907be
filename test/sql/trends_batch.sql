-- A batch's breakdown, history and trailing-window deltas (src/trends.c,
-- docs/extension.md "Channels and trends"): the same jobs applied as one
-- batch (content type tb1) and one job per batch (tb2) leave the same
-- breakdowns, history and window, and these equal what the jobs say.  The
-- batch mixes what the per-batch aggregation must keep apart: runs of one
-- key with a change of channel, of campaign, of hour, of kind (a
-- share_count_update has no hour) or of legacy status, invalid and duplicate
-- jobs inside a run, keys alternating, and keys with hours before, inside and
-- across the window's start.  Then the batch again (all duplicates: nothing
-- changes), and the statement that wrote it (its generic plan) is the one
-- that picks the window's rows without grouping.
\set SHOW_CONTEXT never
SET TIME ZONE 'UTC';
SET client_min_messages = warning;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
RESET client_min_messages;
-- legacy jobs exist only with trends_state set; the backend reads it once
INSERT INTO sharecount.trends_state (legacy_before) VALUES (now() - interval '20 hours');
\c
\set SHOW_CONTEXT never
SET TIME ZONE 'UTC';

-- n: order in the batch; ago: the job's age (hours before, inside and across
-- the start of the window, the UTC hour holding now() - 24 hours, kept away
-- from it); legacy: a UUID jobId (release 1.0's trigger)
CREATE TABLE tb_jobs (n int PRIMARY KEY, pattern text, cid text, ch text, ca text, ago interval,
	amount int, legacy boolean DEFAULT false, bad boolean DEFAULT false, ts timestamptz);
INSERT INTO tb_jobs (n, pattern, cid, ch, ca, ago, amount) VALUES
	(1, 'share_created', 'a', 'web', 'c1', '2 hours', NULL),
	(2, 'share_created', 'a', 'web', 'c1', '2 hours', NULL),
	(3, 'share_created', 'a', 'web', 'c2', '2 hours', NULL),       -- campaign changes
	(4, 'share_created', 'a', 'app', 'c2', '2 hours', NULL),       -- channel changes
	(5, 'share_created', 'a', 'app', 'c2', '3 hours', NULL),       -- hour changes
	(6, 'share_count_update', 'a', 'app', 'c2', '3 hours', 4),     -- no hour
	(7, 'share_created', 'a', 'app', 'c2', '3 hours', NULL),
	(8, 'share_deleted', 'a', 'app', 'c2', '3 hours', NULL),
	(9, 'share_created', 'a', NULL, NULL, '30 hours', NULL),       -- before the window
	(10, 'share_created', 'a', NULL, NULL, '30 hours', NULL),
	(11, 'share_created', 'b', NULL, 'c1', '30 hours', NULL),      -- keys alternate
	(12, 'share_created', 'a', NULL, 'c1', '30 hours', NULL),
	(13, 'share_created', 'b', NULL, 'c1', '26 hours', NULL),
	(14, 'share_created', 'a', NULL, 'c1', '26 hours', NULL),
	(15, 'share_created', 'b', 'web', NULL, '1 hour', NULL),       -- b: before and inside
	(16, 'share_deleted', 'b', 'web', NULL, '1 hour', NULL),
	(17, 'share_deleted', 'b', 'web', NULL, '1 hour', NULL),
	(18, 'share_created', 'c', 'mail', NULL, '48 hours', NULL),    -- c: only before
	(19, 'share_created', 'c', 'mail', NULL, '30 hours', NULL),
	(20, 'share_deleted', 'c', 'mail', NULL, '30 hours', NULL),
	(21, 'share_count_update', 'c', 'mail', NULL, '30 hours', -2),
	(22, 'share_created', 'd', 'web', 'c9', '1 hour', NULL),       -- d: a net 0 in the window
	(23, 'share_deleted', 'd', 'web', 'c9', '2 hours', NULL),
	(24, 'share_created', 'd', 'web', 'c9', '30 hours', NULL),
	(25, 'share_created', 'e', repeat('w', 2000), 'c1', '1 hour', NULL), -- too long: unattributed
	(26, 'share_created', 'e', NULL, 'c1', '1 hour', NULL),
	(27, 'share_created', 'e', repeat('v', 2000), 'c1', '1 hour', NULL);
INSERT INTO tb_jobs (n, pattern, cid, ch, ca, ago, amount, legacy) VALUES
	(28, 'share_created', 'f', 'web', 'c1', '22 hours', NULL, true), -- legacy: no breakdown
	(29, 'share_created', 'f', 'web', 'c1', '22 hours', NULL, false),
	(30, 'share_created', 'f', 'web', 'c1', '22 hours', NULL, true),
	(31, 'share_created', 'f', 'web', 'c1', '2 hours', NULL, true),  -- after legacy_before: counts
	(32, 'share_created', 'f', 'web', 'c1', '22 hours', NULL, true);
INSERT INTO tb_jobs (n, pattern, cid, ch, ca, ago, amount, bad) VALUES
	(33, 'share_created', 'f', 'web', 'c1', '22 hours', NULL, true),  -- invalid, inside a run
	(34, 'share_created', 'f', 'web', 'c1', '22 hours', NULL, false);
-- a duplicate inside a run (job 2's jobId again)
INSERT INTO tb_jobs (n, pattern, cid, ch, ca, ago, amount) VALUES (35, 'share_created', 'a', 'web', 'c1', '2 hours', NULL);

-- one now() for every job, so that no hour moves between statements
UPDATE tb_jobs SET ts = now() - ago;
CREATE VIEW tb_ref AS SELECT date_trunc('hour', min(ts + ago), 'UTC') AS h FROM tb_jobs;

-- the message of job n as content type t (a duplicate repeats job 2's jobId)
CREATE FUNCTION tb_msg(j tb_jobs, t text) RETURNS text LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', j.pattern, 'data', jsonb_strip_nulls(jsonb_build_object(
		'jobId', CASE WHEN j.legacy THEN
				md5(t || j.n)::uuid::text
			ELSE (CASE t WHEN 'tb1' THEN '00000000000000b1-' ELSE '00000000000000b2-' END)
				|| CASE WHEN j.n = 35 THEN 2 ELSE j.n END END,
		'shareId', CASE WHEN j.pattern <> 'share_count_update' THEN 's' END,
		'userId', CASE WHEN j.pattern <> 'share_count_update' THEN 'u' END,
		'operation', CASE WHEN j.pattern = 'share_count_update' THEN
			CASE WHEN j.amount < 0 THEN 'decrement' ELSE 'increment' END END,
		'amount', abs(j.amount),
		'contentType', CASE WHEN j.bad THEN NULL ELSE t END, 'contentId', j.cid,
		'channelId', j.ch, 'campaignId', j.ca,
		'timestamp', to_char(j.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))::text
$$;
-- every job's effect, as the docs state it: d = its delta, in_bd = it counts
-- in breakdowns, hour = its history hour (NULL: none)
CREATE VIEW tb_effect AS
	SELECT n, cid, ch, ca, CASE pattern WHEN 'share_deleted' THEN -1 WHEN 'share_count_update' THEN amount ELSE 1 END AS d,
		NOT (legacy AND ts < (SELECT legacy_before FROM sharecount.trends_state)) AS in_bd,
		CASE WHEN pattern <> 'share_count_update' THEN date_trunc('hour', ts, 'UTC') END AS hour
	FROM tb_jobs WHERE NOT bad AND n <> 35;

-- one batch, in order; then one job per batch
SELECT status, count(*) FROM sharecount_apply_json(
	(SELECT '[' || string_agg(tb_msg(j, 'tb1'), ', ' ORDER BY n) || ']' FROM tb_jobs j), true)
	GROUP BY 1 ORDER BY 1;
SELECT status, count(*) FROM tb_jobs j, sharecount_apply_json('[' || tb_msg(j, 'tb2') || ']', true)
	GROUP BY 1 ORDER BY 1;

-- breakdowns: per key, dimension and value, the sum of the counted jobs'
-- deltas (values too long for a job: unattributed)
CREATE FUNCTION tb_breakdown(t text) RETURNS TABLE (cid text, dimension text, value text, share_count bigint)
LANGUAGE sql AS $$
	SELECT content_id, dimension, value, share_count FROM sharecount.breakdown WHERE content_type = t
$$;
SELECT * FROM tb_breakdown('tb1') ORDER BY 1, 2, 3 NULLS FIRST;
SELECT (SELECT array_agg(b ORDER BY b) FROM tb_breakdown('tb1') b WHERE b.share_count <> 0)
	= (SELECT array_agg(e ORDER BY e) FROM (
		SELECT cid, dim, v, sum(d)::bigint FROM tb_effect,
			LATERAL (VALUES ('channel', CASE WHEN length(ch) <= 1024 THEN ch END),
				('campaign', CASE WHEN length(ca) <= 1024 THEN ca END)) x(dim, v)
		WHERE in_bd GROUP BY 1, 2, 3 HAVING sum(d) <> 0) e) AS breakdown_as_jobs,
	(SELECT array_agg(b ORDER BY b) FROM tb_breakdown('tb1') b WHERE b.share_count <> 0)
	= (SELECT array_agg(b ORDER BY b) FROM tb_breakdown('tb2') b WHERE b.share_count <> 0) AS breakdown_batch_eq_single;

-- history: per key and hour, the net shares (hours relative to now: shown
-- as hours ago)
SELECT content_id, (extract(epoch FROM (SELECT h FROM tb_ref) - hour) / 3600)::int AS hours_ago, shares
	FROM sharecount.history WHERE content_type = 'tb1' ORDER BY 1, 2;
-- (one job per batch may leave rows at 0 where the batch wrote none)
CREATE FUNCTION tb_history(t text) RETURNS TABLE (cid text, hour timestamptz, shares bigint) LANGUAGE sql AS $$
	SELECT content_id, hour, shares FROM sharecount.history WHERE content_type = t AND shares <> 0
$$;
SELECT (SELECT array_agg(h ORDER BY h) FROM tb_history('tb1') h)
	= (SELECT array_agg(e ORDER BY e) FROM (SELECT cid, hour, sum(d)::bigint AS s FROM tb_effect
		WHERE hour IS NOT NULL GROUP BY 1, 2 HAVING sum(d) <> 0) e) AS history_as_jobs,
	(SELECT array_agg(h ORDER BY h) FROM tb_history('tb1') h)
	= (SELECT array_agg(h ORDER BY h) FROM tb_history('tb2') h) AS history_batch_eq_single;

-- the trailing window: per key, the net shares of the hours from
-- window_start on (a key at 0 may have a row or none)
CREATE FUNCTION tb_window(t text) RETURNS TABLE (cid text, shares bigint, expected bigint) LANGUAGE sql AS $$
	SELECT k.cid, coalesce(w.shares, 0), coalesce((SELECT sum(h.shares) FROM sharecount.history h
			WHERE h.content_type = t AND h.content_id = k.cid
			AND h.hour >= (SELECT window_start FROM sharecount.trend_clock)), 0)
	FROM (SELECT DISTINCT cid FROM tb_jobs) k
	LEFT JOIN sharecount.trend_window w ON w.content_type = t AND w.content_id = k.cid
$$;
SELECT * FROM tb_window('tb1') ORDER BY 1;
SELECT bool_and(shares = expected) AS window_tb2 FROM tb_window('tb2');

-- counts
SELECT content_id, share_count FROM sharecount.counts WHERE content_type = 'tb1' ORDER BY 1;
SELECT (SELECT array_agg((content_id, share_count) ORDER BY content_id) FROM sharecount.counts WHERE content_type = 'tb1')
	= (SELECT array_agg((content_id, share_count) ORDER BY content_id) FROM sharecount.counts WHERE content_type = 'tb2')
	AS counts_batch_eq_single;

-- redelivered: every job a duplicate (the invalid one invalid again),
-- nothing changes
CREATE TABLE tb_before AS
	SELECT 'b' AS t, content_type, content_id, dimension || ':' || coalesce(value, '-') AS k, share_count AS v
		FROM sharecount.breakdown WHERE content_type = 'tb1'
	UNION ALL SELECT 'h', content_type, content_id, hour::text, shares FROM sharecount.history WHERE content_type = 'tb1'
	UNION ALL SELECT 'w', content_type, content_id, '', shares FROM sharecount.trend_window WHERE content_type = 'tb1';
SELECT status, count(*) FROM sharecount_apply_json(
	(SELECT '[' || string_agg(tb_msg(j, 'tb1'), ', ' ORDER BY n) || ']' FROM tb_jobs j), true)
	GROUP BY 1 ORDER BY 1;
SELECT count(*) AS changed FROM (
	(SELECT 'b' AS t, content_type, content_id, dimension || ':' || coalesce(value, '-') AS k, share_count AS v
		FROM sharecount.breakdown WHERE content_type = 'tb1'
	UNION ALL SELECT 'h', content_type, content_id, hour::text, shares FROM sharecount.history WHERE content_type = 'tb1'
	UNION ALL SELECT 'w', content_type, content_id, '', shares FROM sharecount.trend_window WHERE content_type = 'tb1')
	EXCEPT ALL SELECT * FROM tb_before) x;

-- the statement that wrote them: the window's rows picked by the key's
-- previous hour and suffix sum, computed in C (no GROUP BY)
SELECT count(*) AS window_by_range FROM pg_backend_memory_contexts
	WHERE name = 'CachedPlan' AND ident LIKE '%INSERT INTO sharecount.trend_window%tstzrange(u.p, u.h, ''(]'')%';

DROP VIEW tb_effect, tb_ref;
DROP FUNCTION tb_msg, tb_breakdown, tb_history, tb_window;
DROP TABLE tb_jobs, tb_before;
DELETE FROM sharecount.trends_state;
