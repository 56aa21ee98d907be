-- Every malformed job is SQLSTATE 22023 with the field named, and changes
-- nothing: no count, no dedupe record, no stats.
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
\set VERBOSITY default

CREATE FUNCTION try_apply(m jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM sharecount_apply(m);
	RETURN 'applied';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || SQLERRM;
END $$;

CREATE TABLE bad (n serial, m jsonb);
CREATE FUNCTION created(patch jsonb DEFAULT '{}', drop_key text DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', 'share_created', 'data',
		('{"jobId": "bad", "shareId": "s", "contentType": "article", "contentId": "1", "userId": "u",
		   "timestamp": "2026-11-27T20:15:03.123Z"}'::jsonb || patch) - coalesce(drop_key, ''))
$$;
CREATE FUNCTION updated(patch jsonb DEFAULT '{}', drop_key text DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', 'share_count_update', 'data',
		('{"jobId": "bad", "contentType": "article", "contentId": "1", "operation": "increment",
		   "amount": 2, "timestamp": "2026-11-27T20:15:03.123Z"}'::jsonb || patch) - coalesce(drop_key, ''))
$$;
INSERT INTO bad (m) VALUES
	-- not an object / envelope problems
	('[]'), ('"share_created"'), ('42'), ('null'), ('{}'),
	('{"data": {}}'),
	('{"pattern": 1, "data": {}}'),
	('{"pattern": "share_liked", "data": {}}'),
	('{"pattern": "share_created"}'),
	('{"pattern": "share_created", "data": []}'),
	('{"pattern": "share_created", "data": "x"}'),
	('{"pattern": "share_created", "data": {}, "extra": 1}'),
	-- missing required fields
	(created(drop_key => 'jobId')), (created(drop_key => 'shareId')), (created(drop_key => 'contentType')),
	(created(drop_key => 'contentId')), (created(drop_key => 'userId')), (created(drop_key => 'timestamp')),
	(updated(drop_key => 'operation')),
	-- unknown / foreign fields
	(created('{"extra": 1}')), (created('{"operation": "increment"}')), (updated('{"shareId": "s"}')),
	(jsonb_build_object('pattern', 'share_deleted', 'data', created()->'data' || '{"operation": "increment"}')),
	-- wrong JSON types
	(created('{"jobId": 1}')), (created('{"jobId": null}')), (created('{"shareId": 5}')),
	(created('{"contentType": ["a"]}')), (created('{"contentId": 123}')), (created('{"userId": true}')),
	(created('{"channelId": 1}')), (created('{"campaignId": {}}')), (created('{"timestamp": 1700000000}')),
	(updated('{"operation": 1}')), (updated('{"amount": "2"}')),
	-- sizes
	(created('{"jobId": ""}')), (created(jsonb_build_object('jobId', repeat('j', 129)))),
	(created('{"contentType": ""}')), (created(jsonb_build_object('contentType', repeat('t', 65)))),
	(created('{"contentId": ""}')), (created(jsonb_build_object('contentId', repeat('i', 257)))),
	-- bad values
	(updated('{"operation": "add"}')), (updated('{"operation": "INCREMENT"}')),
	(updated('{"amount": 0}')), (updated('{"amount": -1}')), (updated('{"amount": 1000001}')),
	(updated('{"amount": 1e12}')), (updated('{"amount": 2.5}')),
	(created('{"timestamp": "yesterday"}')), (created('{"timestamp": "2026-13-01T00:00:00Z"}')),
	(created('{"timestamp": "2026-02-30T00:00:00Z"}')), (created('{"timestamp": "2026-11-27"}')),
	(created('{"timestamp": "2026-11-27T25:00:00Z"}')), (created('{"timestamp": "2026-11-27T20:15:03.Z"}')),
	(created('{"timestamp": "2026-11-27T20:15:03Zjunk"}')), (created('{"timestamp": ""}'));

SELECT n, try_apply(m) FROM bad ORDER BY n;
-- the same in one batch: every member invalid, in order, same messages
SELECT count(*) FILTER (WHERE b.status = 'invalid' AND b.error = substr(try_apply(bad.m), 7)) AS same_error, count(*) AS total
	FROM sharecount_apply_batch((SELECT array_agg(m ORDER BY n) FROM bad)) b JOIN bad ON bad.n = b.ord;
-- nothing changed (the batch's invalid count is the only trace)
SELECT (SELECT count(*) FROM sharecount.counts) AS counts, sharecount_stats()->'dedupe_records' AS dedupe,
	sharecount_stats()->'jobs_applied' AS applied, sharecount_stats()->'invalid' AS invalid;

-- the limits themselves are accepted, and timestamp variants of ISO-8601
SELECT try_apply(updated(jsonb_build_object('jobId', repeat('j', 128), 'contentType', repeat('t', 64),
	'contentId', repeat('i', 256), 'amount', 1000000)));
SELECT try_apply(updated('{"jobId": "a1", "amount": 1, "operation": "decrement"}'));
SELECT try_apply(updated('{"jobId": "a2", "amount": null}'));
SELECT try_apply(updated('{"jobId": "a3", "amount": 1e2}'));
SELECT try_apply(updated('{"jobId": "a4"}', drop_key => 'amount'));
SELECT try_apply(created(jsonb_build_object('jobId', 't' || g, 'timestamp', ts)))
	FROM unnest(ARRAY['2026-11-27T20:15:03Z', '2026-11-27T20:15:03.123456Z', '2026-11-27T20:15Z',
		'2026-11-27T20:15:03+01:00', '2026-11-27T20:15:03-0530', '2026-11-27T20:15:03', '2024-02-29T00:00:00Z',
		'2026-11-27 20:15:03.1z']) WITH ORDINALITY AS u(ts, g);
SELECT try_apply(created('{"jobId": "n1", "shareId": null, "userId": null, "channelId": null, "campaignId": null}'));
SELECT sharecount_get('article', '1'), sharecount_get(repeat('t', 64), repeat('i', 256));

-- the error as the client sees it
SELECT sharecount_apply(created('{"contentId": ""}'));

DROP TABLE bad;
DROP FUNCTION try_apply, created, updated;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
