-- The trigger of tracked tables: which rows write which jobs, and the exact
-- job JSON (field by field, field order, no spaces).  Random parts (jobId,
-- timestamp) are checked by pattern, then masked.
SET client_min_messages = notice;
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;

CREATE FUNCTION masked(body text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(regexp_replace(body,
		'"jobId":"[0-9a-f]{16}-[1-9][0-9]{0,18}"', '"jobId":"<jobid>"'),
		'"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"', '"timestamp":"<ts>"')
$$;
CREATE VIEW jobs AS
	SELECT job_name, masked(body) AS body FROM sharecount.outbox_jobs ORDER BY id;
-- empty the outbox between steps
CREATE FUNCTION take() RETURNS SETOF jobs LANGUAGE sql AS $$
	WITH d AS (DELETE FROM sharecount.outbox o RETURNING o.id, sharecount.job_name(o) AS job_name, sharecount.job_body(o) AS body)
	SELECT job_name, masked(body) FROM d ORDER BY id
$$;

CREATE TABLE share_links (id text PRIMARY KEY, content_type text, content_id text,
	user_id text, channel_id text, campaign_id text, created_at timestamptz NOT NULL DEFAULT now());
SELECT sharecount_track('share_links');
SELECT tgname, tgtype FROM pg_trigger WHERE tgrelid = 'share_links'::regclass ORDER BY tgname;

-- INSERT: share_created with every field, in the order of docs/interop.md
INSERT INTO share_links VALUES ('s1', 'article', '123', 'u1', 'twitter', 'spring');
SELECT * FROM jobs;
-- jobId is dense, <origin>-<outbox id>, with this session's origin and no UUID stored;
-- timestamp is ISO-8601 UTC with ms, close to now
SELECT job_id = body::jsonb->'data'->>'jobId' AS same_job_id,
	job_id = sharecount._origin() || '-' || id AS dense,
	sharecount._origin() ~ '^[0-9a-f]{16}$' AS origin_hex,
	(SELECT o.job_id IS NULL FROM sharecount.outbox o WHERE o.id = j.id) AS no_uuid,
	body::jsonb->'data'->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$' AS iso_ms,
	abs(extract(epoch FROM (body::jsonb->'data'->>'timestamp')::timestamptz - now())) < 60 AS recent,
	to_char((body::jsonb->'data'->>'timestamp')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
		= body::jsonb->'data'->>'timestamp' AS round_trip,
	body NOT LIKE '% %' AS no_spaces
FROM sharecount.outbox_jobs j;
SELECT key, value FROM sharecount.outbox_jobs, jsonb_each(body::jsonb->'data') WHERE key NOT IN ('jobId', 'timestamp')
	ORDER BY key;
SELECT count(*) FROM take();

-- optional fields are omitted when NULL; userId is null when NULL
INSERT INTO share_links (id, content_type, content_id, user_id) VALUES ('s2', 'article', '123', 'u2');
INSERT INTO share_links (id, content_type, content_id, campaign_id) VALUES ('s3', 'post', '7', 'c9');
SELECT * FROM take();

-- DELETE: share_deleted, with the row's channelId/campaignId (breakdowns)
DELETE FROM share_links WHERE id = 's1';
SELECT * FROM take();

-- UPDATE that re-targets: deleted(old) then created(new), for type or id changes
UPDATE share_links SET content_id = '124' WHERE id = 's2';
SELECT * FROM take();
UPDATE share_links SET content_type = 'video' WHERE id = 's2';
SELECT * FROM take();
-- an UPDATE of the channel or campaign moves the share: deleted(old) then created(new)
UPDATE share_links SET user_id = 'u22', channel_id = 'mail' WHERE id = 's2';
SELECT * FROM take();
-- other UPDATEs: nothing (also the share id itself)
UPDATE share_links SET user_id = 'u23' WHERE id = 's2';
UPDATE share_links SET content_id = content_id WHERE id = 's2';
UPDATE share_links SET id = 's2b' WHERE id = 's2';
SELECT * FROM take();

-- keys are compared as text: a type whose equality ignores case still re-targets
CREATE EXTENSION citext;
CREATE TABLE ci_links (id int, content_type text, content_id citext);
SELECT sharecount_track('ci_links', user_id_column => NULL, channel_id_column => NULL, campaign_id_column => NULL);
INSERT INTO ci_links VALUES (1, 'article', 'Abc');
UPDATE ci_links SET content_id = 'abc';
UPDATE ci_links SET content_id = 'abc';
SELECT job_name, body::jsonb->'data'->>'contentId' AS content_id FROM take();
DROP TABLE ci_links;
DROP EXTENSION citext;

-- rolled back: no job, ever (also a rolled-back savepoint)
BEGIN;
INSERT INTO share_links VALUES ('r1', 'article', '123', 'u1');
DELETE FROM share_links WHERE id = 's3';
ROLLBACK;
BEGIN;
INSERT INTO share_links VALUES ('r2', 'article', '123', 'u1');
SAVEPOINT a;
INSERT INTO share_links VALUES ('r3', 'article', '123', 'u1');
ROLLBACK TO a;
COMMIT;
SELECT * FROM take();

-- NULL content type or id: not countable, no job; becoming countable creates
INSERT INTO share_links (id, content_type, content_id) VALUES ('n1', NULL, '1'), ('n2', 'article', NULL);
SELECT count(*) FROM take();
UPDATE share_links SET content_id = '5' WHERE id = 'n2';
SELECT * FROM take();
UPDATE share_links SET content_id = NULL WHERE id = 'n2';
SELECT * FROM take();
DELETE FROM share_links WHERE id IN ('n1', 'n2');
SELECT count(*) FROM take();

-- keys out of range never fail the application's INSERT: a WARNING, no job
INSERT INTO share_links (id, content_type, content_id) VALUES ('big1', repeat('t', 65), '1');
INSERT INTO share_links (id, content_type, content_id) VALUES ('big2', 'article', repeat('i', 257));
INSERT INTO share_links (id, content_type, content_id) VALUES ('empty', '', '1');
INSERT INTO share_links (id, content_type, content_id) VALUES ('max', repeat('t', 64), repeat('i', 256));
SELECT job_name, length(body::jsonb->'data'->>'contentType'), length(body::jsonb->'data'->>'contentId') FROM take();
DELETE FROM share_links WHERE id IN ('big1', 'big2', 'empty', 'max');
SELECT job_name FROM take();

-- JSON escaping of odd values
INSERT INTO share_links (id, content_type, content_id, user_id) VALUES ('q"1', 'art"icle', E'a\\b\n\t', E'\u00e9\u0001');
SELECT body::jsonb->'data'->>'shareId' = 'q"1' AS share_id, body::jsonb->'data'->>'contentType' = 'art"icle' AS type,
	body::jsonb->'data'->>'contentId' = E'a\\b\n\t' AS id, body::jsonb->'data'->>'userId' = E'\u00e9\u0001' AS user_id
	FROM sharecount.outbox_jobs;
SELECT count(*) FROM take();

-- TRUNCATE: one decrement job per key carrying COUNT(*), order-independent
SELECT content_type, content_id, count(*) FROM share_links WHERE content_type IS NOT NULL AND content_id IS NOT NULL
	GROUP BY 1, 2 ORDER BY 1, 2;
TRUNCATE share_links;
SELECT job_name, body::jsonb->'data'->>'contentType' AS type, body::jsonb->'data'->>'contentId' AS id,
	body::jsonb->'data'->>'operation' AS op, body::jsonb->'data'->'amount' AS amount
	FROM sharecount.outbox_jobs ORDER BY 2, 3;
SELECT * FROM take() ORDER BY body LIMIT 1;

-- ids of other types are JSON strings; optional columns may be absent
CREATE TABLE int_links (share_no bigint PRIMARY KEY, kind text, item uuid, who int);
SELECT sharecount_track('int_links', id_column => 'share_no', content_type_column => 'kind',
	content_id_column => 'item', user_id_column => 'who');
INSERT INTO int_links VALUES (42, 'product', '00000000-0000-0000-0000-00000000abcd', 7);
SELECT * FROM take();
DELETE FROM int_links;
SELECT * FROM take();

-- each session keeps how the trigger reads the columns; ALTER TABLE renews it
CREATE TABLE alt_links (id uuid, content_type text, content_id int, user_id int, channel_id text);
SELECT sharecount_track('alt_links');
INSERT INTO alt_links VALUES ('00000000-0000-4000-8000-000000000001', 'video', 7, 70, 'mail');
ALTER TABLE alt_links ALTER COLUMN id TYPE text, ALTER COLUMN content_id TYPE text, ALTER COLUMN user_id TYPE uuid
	USING ('00000000-0000-4000-8000-0000000000' || user_id)::uuid;
INSERT INTO alt_links VALUES ('plain-text-id', 'video', 'seven', '00000000-0000-4000-8000-000000000071', 'mail');
ALTER TABLE alt_links DROP COLUMN channel_id;
INSERT INTO alt_links VALUES ('s3', 'video', '8', NULL);
SELECT * FROM take();
ALTER TABLE alt_links RENAME COLUMN content_id TO item;
INSERT INTO alt_links VALUES ('s4', 'video', '9', NULL);
ALTER TABLE alt_links RENAME COLUMN item TO content_id;
INSERT INTO alt_links VALUES ('s5', 'video', '9', NULL);
SELECT * FROM take();
DROP TABLE alt_links;

-- quoted identifiers: table and column names needing quotes
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Share Links" ("Share Id" int, "Kind" text, "the id" text, "User" text);
INSERT INTO "Odd Schema"."Share Links" VALUES (1, 'article', 'x', 'u');
SELECT sharecount_track('"Odd Schema"."Share Links"', id_column => 'Share Id', content_type_column => 'Kind',
	content_id_column => 'the id', user_id_column => 'User', channel_id_column => NULL, campaign_id_column => NULL);
INSERT INTO "Odd Schema"."Share Links" VALUES (2, 'article', 'x', 'u2');
UPDATE "Odd Schema"."Share Links" SET "the id" = 'y' WHERE "Share Id" = 2;
SELECT * FROM take();
TRUNCATE "Odd Schema"."Share Links";
SELECT * FROM take() ORDER BY body;
SELECT * FROM sharecount_verify();
DROP SCHEMA "Odd Schema" CASCADE;
SELECT count(*) FROM sharecount.tracked WHERE tbl::text LIKE '%Odd%';

-- backfill: existing rows are counted in the same call, split at 1,000,000
CREATE TABLE old_links (id int, content_type text, content_id text);
INSERT INTO old_links SELECT g, 'article', (g % 3)::text FROM generate_series(1, 10) g;
INSERT INTO old_links VALUES (11, NULL, 'x'), (12, repeat('t', 65), 'x');
SELECT sharecount_track('old_links');
SELECT * FROM take() ORDER BY body;
CREATE TABLE huge_links (id int, content_type text, content_id text);
INSERT INTO huge_links SELECT g, 'article', 'hot' FROM generate_series(1, 1000001) g;
SELECT sharecount_track('huge_links');
SELECT body::jsonb->'data'->'amount' AS amount FROM sharecount.outbox_jobs ORDER BY 1;
SELECT count(*) FROM take();
TRUNCATE huge_links;
SELECT body::jsonb->'data'->>'operation' AS op, body::jsonb->'data'->'amount' AS amount FROM sharecount.outbox_jobs ORDER BY 2;
SELECT count(*) FROM take();
DROP TABLE huge_links;
-- many keys (read through a cursor in batches of 1,000)
CREATE TABLE many_links (id int, content_type text, content_id text);
INSERT INTO many_links SELECT g, 'article', (g % 2500)::text FROM generate_series(1, 5000) g;
SELECT sharecount_track('many_links');
SELECT count(*) AS jobs, count(DISTINCT body::jsonb->'data'->>'contentId') AS keys,
	sum((body::jsonb->'data'->>'amount')::int) AS amount FROM sharecount.outbox_jobs;
SELECT count(*) FROM take();
DROP TABLE many_links;

-- bad arguments: clear errors, nothing attached
SELECT sharecount_track('share_links');
SELECT sharecount_track('jobs');
SELECT sharecount_track('no_such_table');
CREATE TABLE parted (id int, content_type text, content_id text) PARTITION BY LIST (content_type);
SELECT sharecount_track('parted');
DROP TABLE parted;
CREATE TABLE char_links (id int, content_type char(10), content_id text);
SELECT sharecount_track('char_links');
DROP TABLE char_links;
CREATE TEMP TABLE temp_links (id int, content_type text, content_id text);
SELECT sharecount_track('temp_links');
CREATE TABLE t_bad (id int, kind text);
SELECT sharecount_track('t_bad', content_type_column => 'kind');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 't_bad'::regclass;
SELECT sharecount_untrack('t_bad');
SELECT sharecount_track(NULL);

-- untrack: triggers gone, inserts write nothing, counts stay
SELECT sharecount_untrack('int_links');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'int_links'::regclass AND NOT tgisinternal;
INSERT INTO int_links VALUES (43, 'product', '00000000-0000-0000-0000-00000000abcd', 7);
SELECT count(*) FROM take();
SELECT tbl FROM sharecount.tracked ORDER BY tbl::text;

-- calling the trigger function by hand is refused
SELECT sharecount_trigger();

DROP TABLE int_links, old_links, t_bad, share_links;
DROP FUNCTION take();
DROP VIEW jobs;
DROP FUNCTION masked(text);
TRUNCATE sharecount.outbox;
