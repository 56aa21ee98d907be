-- Channels and trends (docs/extension.md, "Channels and trends"): breakdowns
-- per channel and campaign stay equal to COUNT(*) GROUP BY of the tracked
-- rows through inserts, deletes, moves of key, channel and campaign,
-- TRUNCATE, untrack/track and redelivered jobs; history in hour and day
-- buckets; top; verify/recount; pruning; every bad input is 22023.
\set SHOW_CONTEXT never
SET TIME ZONE 'UTC';
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
CREATE TABLE tr_links (id int PRIMARY KEY, content_type text, content_id text, user_id text,
	channel_id text, campaign_id text);
SELECT sharecount_track('tr_links');
-- the pipeline by hand, every job delivered twice (the second time: duplicates)
CREATE FUNCTION drain() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	jobs jsonb[] := (SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount.outbox_jobs);
	first text;
	second text;
BEGIN
	SELECT string_agg(DISTINCT b.status, ',') INTO first FROM sharecount_apply_batch(coalesce(jobs, '{}')) b;
	SELECT string_agg(DISTINCT b.status, ',') INTO second FROM sharecount_apply_batch(coalesce(jobs, '{}')) b;
	DELETE FROM sharecount.outbox;
	RETURN coalesce(first, '-') || ' then ' || coalesce(second, '-');
END
$$;
-- breakdowns equal the rows, per dimension, and verify agrees
CREATE FUNCTION exact() RETURNS boolean LANGUAGE sql AS $$
	SELECT NOT EXISTS (SELECT FROM sharecount_verify()) AND NOT EXISTS (SELECT FROM sharecount_verify_breakdown())
		AND NOT EXISTS (
			(SELECT content_type, content_id, 'channel', channel_id, count(*) FROM tr_links GROUP BY 1, 2, 4
			 UNION ALL
			 SELECT content_type, content_id, 'campaign', campaign_id, count(*) FROM tr_links GROUP BY 1, 2, 4)
			EXCEPT
			SELECT content_type, content_id, dimension, value, share_count FROM sharecount.breakdown WHERE share_count <> 0)
		AND NOT EXISTS (
			SELECT content_type, content_id, dimension, value, share_count FROM sharecount.breakdown WHERE share_count <> 0
			EXCEPT
			(SELECT content_type, content_id, 'channel', channel_id, count(*) FROM tr_links GROUP BY 1, 2, 4
			 UNION ALL
			 SELECT content_type, content_id, 'campaign', campaign_id, count(*) FROM tr_links GROUP BY 1, 2, 4))
$$;

-- inserts, then a delete, a re-target of the key, of the channel, of the campaign
INSERT INTO tr_links VALUES (1, 'article', 'a', 'u', 'twitter', 'spring'), (2, 'article', 'a', 'u', 'twitter', NULL),
	(3, 'article', 'a', 'u', 'mail', 'spring'), (4, 'article', 'a', 'u', NULL, NULL), (5, 'article', 'b', 'u', 'mail', 'fall');
SELECT drain(), exact();
SELECT * FROM sharecount_get_breakdown('article', 'a');
SELECT * FROM sharecount_get_breakdown('article', 'a', 'campaign');
DELETE FROM tr_links WHERE id = 2;
UPDATE tr_links SET content_id = 'b' WHERE id = 3;
UPDATE tr_links SET channel_id = 'mail' WHERE id = 1;
UPDATE tr_links SET campaign_id = 'fall' WHERE id = 4;
UPDATE tr_links SET user_id = 'v' WHERE id = 5;			-- no job
SELECT job_name, count(*) FROM sharecount.outbox_jobs GROUP BY 1 ORDER BY 1;
SELECT drain(), exact();
SELECT sharecount_get('article', 'a') AS a, sharecount_get('article', 'b') AS b;
SELECT * FROM sharecount_get_breakdown('article', 'a');
SELECT * FROM sharecount_get_breakdown('article', 'b', 'campaign');
-- the jobs applied in any order (deletes before creates) end exact
INSERT INTO tr_links VALUES (6, 'article', 'c', 'u', 'sms', NULL);
DELETE FROM tr_links WHERE id = 6;
INSERT INTO tr_links VALUES (7, 'article', 'c', 'u', 'sms', 'x');
SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb ORDER BY id DESC) FROM sharecount.outbox_jobs));
SELECT drain(), exact();

-- TRUNCATE (decrements per key, channel and campaign), untrack and re-track
TRUNCATE tr_links;
SELECT drain(), exact();
SELECT * FROM sharecount_get_breakdown('article', 'a');
INSERT INTO tr_links VALUES (1, 'article', 'a', 'u', 'twitter', 'spring'), (2, 'article', 'a', 'u', NULL, 'spring');
SELECT drain(), exact();
SELECT sharecount_untrack('tr_links');
SELECT drain(), sharecount_get('article', 'a');
SELECT * FROM sharecount_get_breakdown('article', 'a');
INSERT INTO tr_links VALUES (3, 'article', 'a', 'u', 'mail', NULL);
SELECT sharecount_track('tr_links');
SELECT job_name, body::jsonb->'data'->>'channelId' AS channel, body::jsonb->'data'->>'amount' AS amount
	FROM sharecount.outbox_jobs ORDER BY 2 NULLS FIRST;
SELECT drain(), exact();

-- drift: verify lists the key (totals right), verify_breakdown says where;
-- recount repairs the key's breakdowns too
UPDATE sharecount.breakdown SET share_count = share_count + 2 WHERE content_id = 'a' AND value = 'mail';
INSERT INTO sharecount.breakdown VALUES ('article', 'a', 'campaign', 'ghost', 1);
SELECT * FROM sharecount_verify();
SELECT * FROM sharecount_verify_breakdown();
SELECT * FROM sharecount_verify_breakdown(1);
SELECT sharecount_recount('article', 'a'), exact();

-- jobs from other publishers: share_count_update counts as unattributed or
-- under its channelId/campaignId; a share_deleted without them as unattributed;
-- a value too long for a job field as unattributed
CREATE FUNCTION job(pattern text, job_id text, extra jsonb DEFAULT '{}', cid text DEFAULT 'x') RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', pattern, 'data',
		CASE pattern WHEN 'share_count_update'
			THEN jsonb_build_object('jobId', job_id, 'contentType', 'other', 'contentId', cid,
				'operation', 'increment', 'timestamp', '2026-01-01T10:15:00Z')
			ELSE jsonb_build_object('jobId', job_id, 'shareId', 's', 'contentType', 'other',
				'contentId', cid, 'userId', 'u', 'timestamp', '2026-01-01T10:15:00Z') END || extra)
$$;
SELECT status, count(*) FROM sharecount_apply_batch(ARRAY[
	job('share_created', 'o1', '{"channelId": "web", "campaignId": "c1"}'),
	job('share_created', 'o2', '{"channelId": "web"}'),
	job('share_created', 'o2', '{"channelId": "web"}'),
	job('share_count_update', 'o3', '{"amount": 5}'),
	job('share_count_update', 'o4', '{"amount": 2, "channelId": "web", "campaignId": "c1"}'),
	job('share_count_update', 'o5', '{"operation": "decrement", "channelId": "web"}'),
	job('share_deleted', 'o6', '{"channelId": "web", "campaignId": null}'),
	job('share_deleted', 'o7'),
	job('share_created', 'o8', jsonb_build_object('channelId', repeat('w', 2000)))]) GROUP BY 1 ORDER BY 1;
SELECT sharecount_get('other', 'x');
SELECT * FROM sharecount_get_breakdown('other', 'x');
SELECT * FROM sharecount_get_breakdown('other', 'x', 'campaign');
SELECT sum(share_count) FILTER (WHERE dimension = 'channel') AS channel_total,
	sum(share_count) FILTER (WHERE dimension = 'campaign') AS campaign_total
	FROM sharecount.breakdown WHERE content_type = 'other';

-- legacy jobs: with trends_state set (an upgraded 1.0 database), a job with
-- a UUID jobId and an earlier timestamp (release 1.0's trigger) changes the
-- count and history but not the breakdowns (the upgrade's backfill has its
-- row); later or dense ones do
INSERT INTO sharecount.trends_state (legacy_before) VALUES ('2026-06-01');
\c
SET TIME ZONE 'UTC';
\set SHOW_CONTEXT never
SELECT count(*) FROM sharecount_apply_batch(ARRAY[
	job('share_created', '8d0e5c1a-1f2b-4c3d-9e8f-0a1b2c3d4e5f', '{"channelId": "old", "timestamp": "2026-05-31T23:59:59Z"}', 'l'),
	job('share_created', '9d0e5c1a-1f2b-4c3d-9e8f-0a1b2c3d4e5f', '{"channelId": "new", "timestamp": "2026-06-01T00:00:00Z"}', 'l'),
	job('share_created', 'e88889140bf7dcff-1', '{"channelId": "dense", "timestamp": "2026-05-31T23:59:59Z"}', 'l')]);
SELECT sharecount_get('other', 'l');
SELECT * FROM sharecount_get_breakdown('other', 'l');
SELECT sum(shares) FROM sharecount.history WHERE content_id = 'l';
DELETE FROM sharecount.trends_state;
\c
SET TIME ZONE 'UTC';
\set SHOW_CONTEXT never

-- history: net shares per UTC hour of the jobs' timestamps (created +1,
-- deleted -1, share_count_update not a share event), hour or day buckets
SELECT count(*) FROM sharecount_apply_batch(ARRAY[
	job('share_created', 'h1', '{"timestamp": "2026-01-01T10:59:59.999Z"}', 'h'),
	job('share_created', 'h2', '{"timestamp": "2026-01-01T11:00:00Z"}', 'h'),
	job('share_created', 'h3', '{"timestamp": "2026-01-01T12:30:00+01:00"}', 'h'),
	job('share_created', 'h4', '{"timestamp": "2026-01-01T11:45:00.5"}', 'h'),
	job('share_deleted', 'h5', '{"timestamp": "2026-01-02T00:10:00Z"}', 'h'),
	job('share_created', 'h6', '{"timestamp": "2026-01-02T05:00:00+05:30"}', 'h'),
	job('share_count_update', 'h7', '{"timestamp": "2026-01-01T11:00:00Z", "amount": 9}', 'h'),
	job('share_created', 'h8', '{"timestamp": "0000-01-01T00:00:00Z"}', 'h')]);
SELECT * FROM sharecount_history('other', 'h', '2026-01-01', '2026-01-03');
SELECT * FROM sharecount_history('other', 'h', '2026-01-01 11:30', '2026-01-02');
SELECT * FROM sharecount_history('other', 'h', '2026-01-01', '2026-01-03', 'day');
SELECT * FROM sharecount_history('other', 'h', '2026-01-01 10:00', '2026-01-01 10:00');
SELECT * FROM sharecount_history('other', 'nothing', '2026-01-01', '2026-01-03');
SELECT count(*) AS year_zero_hours FROM sharecount.history WHERE content_id = 'h' AND hour < '1000-01-01';

-- top: net new shares in the window (UTC hours overlapping it), largest first,
-- ties by content id; keys with no net share left out
CREATE FUNCTION ago(d interval) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('timestamp', to_char((now() - d) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;
CREATE FUNCTION tjob(pattern text, job_id text, cid text, d interval) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', pattern, 'data', jsonb_build_object('jobId', job_id, 'shareId', 's',
		'contentType', 'video', 'contentId', cid, 'userId', 'u') || ago(d))
$$;
SELECT count(*) FROM sharecount_apply_batch(ARRAY(
	SELECT tjob('share_created', 't' || g, CASE WHEN g <= 5 THEN 'v1' WHEN g <= 8 THEN 'v2' WHEN g <= 10 THEN 'v3'
		WHEN g <= 12 THEN 'v4' ELSE 'v5' END, CASE WHEN g = 13 THEN interval '30 hours' ELSE interval '1 minute' END)
	FROM generate_series(1, 13) g));
SELECT count(*) FROM sharecount_apply_batch(ARRAY[tjob('share_deleted', 'td1', 'v4', '1 minute'),
	tjob('share_deleted', 'td2', 'v4', '1 minute'), tjob('share_created', 'old1', 'v2', '3 days')]);
SELECT * FROM sharecount_top('video');
SELECT * FROM sharecount_top('video', '24 hours', 2);
SELECT * FROM sharecount_top('video', '7 days', 100);
SELECT * FROM sharecount_top('video', '5 minutes');
SELECT * FROM sharecount_top('nothing');
-- the trailing window lags two hours (as when no batch came for a while):
-- top takes the hours that left the window out of it, and the next batch of a
-- new session moves the window
CREATE FUNCTION top_direct(since interval) RETURNS TABLE (content_id text, shares bigint) LANGUAGE sql AS $$
	SELECT h.content_id, sum(h.shares) FROM sharecount.history h
	WHERE h.content_type = 'video' AND h.hour >= date_trunc('hour', now() - since, 'UTC')
	GROUP BY 1 HAVING sum(h.shares) > 0 ORDER BY 2 DESC, 1 LIMIT 100
$$;
SELECT count(*) FROM sharecount_apply_batch(ARRAY[tjob('share_created', 'lag1', 'v5', '25 hours'),
	tjob('share_created', 'lag2', 'v5', '25 hours'), tjob('share_created', 'lag3', 'v1', '26 hours')]);
UPDATE sharecount.trend_clock SET window_start = window_start - interval '2 hours';
DELETE FROM sharecount.trend_window;
INSERT INTO sharecount.trend_window SELECT h.content_type, h.content_id, sum(h.shares) FROM sharecount.history h
	WHERE h.hour >= (SELECT window_start FROM sharecount.trend_clock) GROUP BY 1, 2;
SELECT * FROM sharecount.trend_window WHERE content_type = 'video' ORDER BY 2;
SELECT (SELECT array_agg(t) FROM sharecount_top('video', '24 hours', 100) t)
	= (SELECT array_agg(t) FROM top_direct('24 hours') t) AS corrected;
\c
SET TIME ZONE 'UTC';
SELECT count(*) FROM sharecount_apply_batch(ARRAY[jsonb_build_object('pattern', 'share_created', 'data',
	jsonb_build_object('jobId', 'move1', 'shareId', 's', 'contentType', 'video', 'contentId', 'v3', 'userId', 'u',
		'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))]);
SELECT window_start = date_trunc('hour', now() - interval '24 hours', 'UTC') AS moved FROM sharecount.trend_clock;
SELECT content_id, shares FROM sharecount.trend_window WHERE content_type = 'video' ORDER BY 1;
SELECT (SELECT array_agg(t) FROM sharecount_top('video', '24 hours', 100) t)
	= (SELECT array_agg(t) FROM top_direct('24 hours') t) AS exact_after_move;
-- no clock (TRUNCATE of counts, a restore): top sums history; a batch rebuilds
DELETE FROM sharecount.trend_clock;
SELECT (SELECT array_agg(t) FROM sharecount_top('video', '24 hours', 100) t)
	= (SELECT array_agg(t) FROM top_direct('24 hours') t) AS exact_without_clock;

-- bad input: 22023 with a hint, nothing changed
CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	hint text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
	RETURN st || ' ' || msg || ' / ' || hint;
END
$$;
SELECT try(q) FROM (VALUES
	($$SELECT * FROM sharecount_get_breakdown('article', 'a', 'medium')$$),
	($$SELECT * FROM sharecount_get_breakdown('article', 'a', '')$$),
	($$SELECT * FROM sharecount_history('other', 'h', '2026-01-01', '2026-01-03', 'week')$$),
	($$SELECT * FROM sharecount_history('other', 'h', '2026-01-03', '2026-01-01')$$),
	($$SELECT * FROM sharecount_top('video', '0 hours')$$),
	($$SELECT * FROM sharecount_top('video', '-1 day')$$),
	($$SELECT * FROM sharecount_top('video', '24 hours', 0)$$),
	($$SELECT * FROM sharecount_top('video', '24 hours', 101)$$),
	($$SELECT * FROM sharecount_verify_breakdown(0)$$)) v(q);
SELECT count(*) FROM sharecount_get_breakdown(NULL, 'a');

-- retention: sharecount_prune drops history past sharecount.history_retention
SELECT count(*) FROM sharecount.history WHERE content_id = 'h';
SET sharecount.history_retention = 'soon';
SELECT try('SELECT sharecount_prune()');
SET sharecount.history_retention = '-1 day';
SELECT try('SELECT sharecount_prune()');
SET sharecount.history_retention = '30 days';
SELECT sharecount_prune() >= 0 AS pruned;
SELECT count(*) FILTER (WHERE content_id = 'h') AS left_h,
	count(*) FILTER (WHERE hour >= now() - interval '30 days') = count(*) AS kept_the_rest,
	count(*) FILTER (WHERE content_type = 'video') > 0 AS video_kept
	FROM sharecount.history;
RESET sharecount.history_retention;

-- pg_dump carries breakdowns, history and trends_state; the trailing window
-- is a cache of history, rebuilt after a restore
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) x JOIN pg_class c ON c.oid = x
	WHERE e.extname = 'sharecount' AND c.relname IN ('breakdown', 'history', 'trends_state', 'trend_window', 'trend_clock')
	ORDER BY 1;

-- TRUNCATE sharecount.counts forgets breakdowns and history with the counts
TRUNCATE sharecount.counts;
SELECT (SELECT count(*) FROM sharecount.breakdown) AS breakdown, (SELECT count(*) FROM sharecount.history) AS history,
	(SELECT count(*) FROM sharecount.trend_window) AS trend_window;

RESET TIME ZONE;
SELECT sharecount_untrack('tr_links');
DROP TABLE tr_links;
DROP FUNCTION drain(), exact(), job(text, text, jsonb, text), ago(interval), tjob(text, text, text, interval),
	top_direct(interval), try(text);
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
