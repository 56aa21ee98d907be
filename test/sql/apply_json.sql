-- sharecount_apply_json (docs/sql.md): the consumer's batch as one JSON array
-- in text, read without building a jsonb.  For the same messages it must
-- give exactly what sharecount_apply_batch_changes gives from jsonb[]
-- (statuses, errors, change rows), including where the text has what jsonb
-- folds away: keys given twice (the last wins), key order (the first
-- unknown key in jsonb's order is the one named), escapes, nested values.
-- Each side runs in a transaction that is rolled back, from the same state.
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
SELECT sharecount_apply_batch(ARRAY['{"pattern": "share_created", "data": {"shareId": null, "userId": null, "jobId": "aj-0",
	"contentType": "article", "contentId": "k1", "timestamp": "2026-11-27T20:15:03.123Z"}}'::jsonb]);

CREATE TABLE aj_msgs (n serial PRIMARY KEY, m text NOT NULL);
CREATE FUNCTION aj_job(id text, extra text DEFAULT '', pattern text DEFAULT 'share_created') RETURNS text
LANGUAGE sql AS $$
	SELECT format('{"pattern": "%s", "data": {"jobId": "%s", "contentType": "article", "contentId": "k1", '
		'"timestamp": "2026-11-27T20:15:03.123Z"%s%s}}', pattern, id,
		CASE WHEN pattern <> 'share_count_update' THEN ', "shareId": "s", "userId": "u"' END, extra)
$$;
INSERT INTO aj_msgs (m) VALUES
	(aj_job('aj-1')),
	(aj_job('aj-0')),	-- applied before: duplicate
	(aj_job('aj-1')),	-- earlier in the batch: duplicate
	(aj_job('aj-2', ', "shareId": "s", "userId": null, "channelId": "email", "campaignId": "c1"')),
	(aj_job('aj-3', '', 'share_deleted')),
	(aj_job('aj-4', ', "operation": "increment", "amount": 3', 'share_count_update')),
	(aj_job('aj-5', ', "operation": "decrement", "amount": 1e1', 'share_count_update')),
	(aj_job('aj-6', ', "operation": "increment", "amount": 2.0', 'share_count_update')),
	(aj_job('aj-7', ', "operation": "increment", "amount": "3"', 'share_count_update')),
	(aj_job('aj-8', ', "operation": "increment", "amount": null', 'share_count_update')),
	(aj_job('aj-9', ', "operation": "increment", "amount": 1000001', 'share_count_update')),
	(aj_job('aj-10', ', "operation": "increment", "amount": 0', 'share_count_update')),
	(aj_job('aj-11', ', "operation": "up"', 'share_count_update')),
	-- keys given twice: the last one wins
	('{"pattern": "share_deleted", "pattern": "share_created", "data": {"shareId": null, "userId": null, "jobId": "aj-12", "contentType": "article",
	  "contentId": "k2", "timestamp": "2026-11-27T20:15:03.123Z"}}'),
	('{"pattern": "share_created", "data": {"shareId": null, "userId": null, "jobId": "aj-13", "contentType": "article", "contentId": "k2",
	  "timestamp": "2026-11-27T20:15:03.123Z"}, "data": {"contentType": "article"}}'),
	('{"pattern": "share_created", "data": "x", "data": {"shareId": null, "userId": null, "jobId": "aj-14", "contentType": "article",
	  "contentId": "k2", "timestamp": "2026-11-27T20:15:03.123Z"}}'),
	('{"pattern": "share_created", "data": {"shareId": null, "userId": null, "jobId": "aj-15", "contentType": "article", "contentId": "k2",
	  "timestamp": "2026-11-27T20:15:03.123Z"}, "data": [1]}'),
	('{"pattern": "share_created", "data": {"shareId": null, "userId": null, "jobId": 5, "contentType": "article", "contentId": "k2",
	  "timestamp": "2026-11-27T20:15:03.123Z", "jobId": "aj-16"}}'),
	('{"pattern": "share_created", "data": {"shareId": null, "userId": null, "jobId": "aj-17", "contentType": "article", "contentId": "k2",
	  "timestamp": "2026-11-27T20:15:03.123Z", "jobId": 5}}'),
	('{"pattern": "share_created", "data": {"zz": 1, "jobId": "aj-18", "zz": 2}}'),
	-- unknown keys: the first in jsonb's order (shorter first, then bytewise) is named
	('{"zz": 1, "b": 2, "pattern": "share_created", "data": {}}'),
	('{"pattern": "share_created", "data": {}, "id": 1, "ba": 1, "ab": 2, "zzz": 0}'),
	(aj_job('aj-19', ', "zzz": 1, "ab": 2, "amount": 1')),
	(aj_job('aj-20', ', "operation": "increment", "amount": 1, "xyzxyzxyzxyz": 1')),
	(aj_job('aj-21', ', "pattern": "share_created"')),
	(aj_job('aj-22', ', "é": 1, "z": 1')),
	-- what the envelope's "id" or a field's nested value holds does not count
	('{"id": {"pattern": 1, "data": 2, "x": 3}, "pattern": "share_created", "data": {"shareId": null, "userId": null, "jobId": "aj-23",
	  "contentType": "article", "contentId": "k3", "timestamp": "2026-11-27T20:15:03.123Z"}}'),
	(aj_job('aj-24', ', "shareId": {"jobId": "x", "a": [1, {"zz": 2}]}')),
	(aj_job('aj-25', ', "userId": [null]')),
	(aj_job('aj-26', ', "channelId": true')),
	('{"pattern": {"a": 1}, "data": {}}'),
	('{"pattern": ["share_created"], "data": {}}'),
	('{"pattern": "share_created", "data": {"shareId": null, "userId": null, "jobId": "aj-27", "contentType": "article", "contentId": "k3",
	  "timestamp": "2026-11-27T20:15:03.123Z", "campaignId": {"x": {"y": "z"}}}}'),
	-- escapes: the unescaped string is what counts (and is measured in bytes)
	('{"pattern": "share_\u0063reated", "data": {"shareId": null, "userId": null, "jobId": "aj-28\t\"\\", "contentType": "article",
	  "contentId": "\u00e9\ud83d\ude00 \/", "timestamp": "2026-11-27T20:15:03.123Z"}}'),
	(aj_job('aj-29', format(', "contentId": "%s"', repeat('\u00e9', 128)))),
	(aj_job('aj-30', format(', "contentId": "%s"', repeat('\u00e9', 129)))),
	(aj_job(repeat('j', 129))),
	(aj_job('')),
	(aj_job('aj-31', ', "timestamp": "2026-02-30T00:00:00Z"')),
	(aj_job('aj-32', ', "timestamp": "2026-11-27T20:15:03.123+05:30"')),
	-- spacing, literals and numbers anywhere
	(E' \t{"pattern" :"share_created" ,"data":{ "jobId":"aj-33","shareId":null,"userId":"u","contentType":"a",\n'
	 '"contentId":"k4","timestamp":"2026-11-27T20:15:03Z","campaignId" : null } , "id" : [true,false,null,-0.5e+3,{},[]] }\r\n'),
	(aj_job('aj-34', ', "channelId": 0')),
	(aj_job('aj-35', ', "channelId": -1.25E-2')),
	(aj_job('aj-36', ', "channelId": false')),
	-- not a message object
	('[]'), ('[{"pattern": "share_created"}]'), ('"share_created"'), ('42'), ('null'), ('true'), ('{}'),
	('{"data": {}}'), ('{"pattern": 1, "data": {}}'), ('{"pattern": "share_moved", "data": {}}'),
	('{"pattern": "share_created"}'), ('{"pattern": "share_created", "data": null}'),
	('{"pattern": "share_created", "data": {}}');

-- the messages' jobIds, patterns and texts are what the next statements compare
SELECT count(*) AS messages FROM aj_msgs;

BEGIN;
SELECT string_agg(concat_ws(' | ', ord, status, error, content_type, content_id, share_count, delta, version),
	E'\n' ORDER BY ord NULLS LAST, content_type, content_id) AS via_jsonb
	FROM sharecount_apply_batch_changes((SELECT array_agg(m::jsonb ORDER BY n) FROM aj_msgs)) \gset
ROLLBACK;
BEGIN;
SELECT string_agg(concat_ws(' | ', ord, status, error, content_type, content_id, share_count, delta, version),
	E'\n' ORDER BY ord NULLS LAST, content_type, content_id) AS via_text
	FROM sharecount_apply_json((SELECT '[' || string_agg(m, E',\n ' ORDER BY n) || ']' FROM aj_msgs), true) \gset
ROLLBACK;
SELECT :'via_jsonb' = :'via_text' AS same_rows;
\echo :via_text
-- the same without the messages that hold an escape: read by the scanner
-- that gives up on escapes (jobjson.c, fast_parse), not by pg_parse_json
BEGIN;
SELECT string_agg(concat_ws(' | ', ord, status, error, content_type, content_id, share_count, delta, version),
	E'\n' ORDER BY ord NULLS LAST, content_type, content_id) AS via_jsonb
	FROM sharecount_apply_batch_changes((SELECT array_agg(m::jsonb ORDER BY n) FROM aj_msgs WHERE m NOT LIKE '%\\%')) \gset
ROLLBACK;
BEGIN;
SELECT string_agg(concat_ws(' | ', ord, status, error, content_type, content_id, share_count, delta, version),
	E'\n' ORDER BY ord NULLS LAST, content_type, content_id) AS via_text
	FROM sharecount_apply_json((SELECT '[' || string_agg(m, E',\n ' ORDER BY n) || ']' FROM aj_msgs
		WHERE m NOT LIKE '%\\%'), true) \gset
ROLLBACK;
SELECT :'via_jsonb' = :'via_text' AS same_rows_without_escapes,
	(SELECT count(*) FROM aj_msgs WHERE m NOT LIKE '%\\%') AS messages_without_escapes;

-- without changes: the same statuses, no change rows; and it applies
SELECT ord, status, error FROM sharecount_apply_json((SELECT '[' || string_agg(m, ',' ORDER BY n) || ']'
	FROM aj_msgs WHERE n <= 6), false) ORDER BY ord;
SELECT content_id, share_count, version FROM sharecount.counts ORDER BY 1;
SELECT jobs_applied, duplicates, invalid FROM sharecount_stats() s,
	LATERAL (SELECT (s->>'jobs_applied')::int AS jobs_applied, (s->>'duplicates')::int AS duplicates,
		(s->>'invalid')::int AS invalid) x;
SELECT * FROM sharecount_apply_json('[]', true);
SELECT * FROM sharecount_apply_json(' [ ] ', false);

-- a random sample: 2,000 messages mutated from valid ones, text-level too
-- (a key given again in front), compared the same way
SELECT setseed(0.4242);
CREATE TEMP TABLE aj_fuzz AS
	SELECT g AS n, CASE WHEN random() < 0.3
		THEN regexp_replace(j::text, '"data": \{', '"data": {' || (ARRAY['"jobId": 7, ', '"amount": "x", ',
			'"contentId": null, ', '"zz": 1, ', '"timestamp": "bad", '])[1 + floor(random() * 5)::int])
		ELSE j::text END AS m
	FROM (SELECT g, CASE floor(random() * 4)::int
		WHEN 0 THEN jsonb_set(b, ARRAY['data', (ARRAY['jobId', 'contentId', 'amount', 'operation', 'shareId',
			'timestamp', 'channelId', 'other'])[1 + floor(random() * 8)::int]],
			(ARRAY['1', '"s"', 'null', '{}', '[]', 'true', '2.5', '1e3', '"2026-01-01T00:00:00Z"',
				'"increment"', to_jsonb(repeat('x', 300))])[1 + floor(random() * 11)::int])
		WHEN 1 THEN b #- ARRAY['data', (ARRAY['jobId', 'contentId', 'timestamp', 'operation'])[1 + floor(random() * 4)::int]]
		WHEN 2 THEN jsonb_set(b, '{pattern}', to_jsonb((ARRAY['share_created', 'share_deleted', 'share_count_update',
			'x'])[1 + floor(random() * 4)::int]))
		ELSE b || jsonb_build_object((ARRAY['id', 'x', 'data2'])[1 + floor(random() * 3)::int], 1) END AS j
		FROM (SELECT g, jsonb_build_object('pattern', 'share_count_update', 'data', jsonb_build_object(
			'jobId', 'fz-' || floor(random() * 1500)::int, 'contentType', 'fuzz', 'contentId', 'k' || g % 7,
			'operation', 'increment', 'amount', 2, 'timestamp', '2026-11-27T20:15:03Z')) AS b
			FROM generate_series(1, 2000) g) s) t;
BEGIN;
SELECT md5(string_agg(concat_ws(' | ', ord, status, error, content_id, share_count, delta, version),
	E'\n' ORDER BY ord NULLS LAST, content_type, content_id)) AS fz_jsonb,
	count(*) FILTER (WHERE status = 'applied') AS fz_applied, count(*) FILTER (WHERE status = 'invalid') > 300 AS fz_invalid
	FROM sharecount_apply_batch_changes((SELECT array_agg(m::jsonb ORDER BY n) FROM aj_fuzz)) \gset
ROLLBACK;
BEGIN;
SELECT md5(string_agg(concat_ws(' | ', ord, status, error, content_id, share_count, delta, version),
	E'\n' ORDER BY ord NULLS LAST, content_type, content_id)) AS fz_text
	FROM sharecount_apply_json((SELECT '[' || string_agg(m, ',' ORDER BY n) || ']' FROM aj_fuzz), true) \gset
ROLLBACK;
SELECT :'fz_jsonb' = :'fz_text' AS same_fuzz_rows, :fz_applied > 200 AS many_applied, :'fz_invalid' AS many_invalid;

-- the document itself: not an array, not JSON, a number numeric cannot hold
SELECT * FROM sharecount_apply_json('{"pattern": "share_created"}', true);
SELECT * FROM sharecount_apply_json('"[]"', true);
SELECT * FROM sharecount_apply_json('[{"pattern": "share_created",]', true);
SELECT * FROM sharecount_apply_json('[{"id": 1e1000000}]', true);
SELECT * FROM sharecount_apply_json('[{"id": "\u0000"}]', true);
SELECT * FROM sharecount_apply_json(NULL, true);
SELECT count(*) FROM sharecount.counts;
