-- The row trigger's values as the outbox stores them (each value the text the
-- job carries, stored inline, neither compressed nor a TOAST pointer, with the
-- header heap_form_tuple gives its length), and the per-backend registration
-- cache (src/registry.c) across tables, re-registration, ALTER TABLE and
-- DROP/CREATE EXTENSION in one session.  Runs in a database of its own, made
-- here and dropped at the end (DROP EXTENSION; keep that last).
\set regress_db :DBNAME
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sc_trigger_values;
RESET client_min_messages;
CREATE DATABASE regress_sc_trigger_values;
\c regress_sc_trigger_values
CREATE EXTENSION sharecount;
CREATE EXTENSION citext;

-- every source kind: uuid, varchar, text, another type (citext, int)
CREATE TABLE v (id uuid, content_type varchar(64), content_id text, user_id citext,
	channel_id int, campaign_id text, n int);
SELECT sharecount_track('v');
INSERT INTO v VALUES
	('0123abcd-ef01-4567-89ab-cdef01234567', 'article', 'k1', 'MixedCase', 42, NULL, 1),
	('ffffffff-0000-4000-8000-00000000000a', repeat('t', 64), repeat('i', 256), repeat('u', 126), -7,
		repeat('c', 127), 2),
	('00000000-0000-0000-0000-000000000000', 'é', 'ü "q" \', '', 0, e'tab\there', 3);
-- a compressed value and a TOAST pointer: rows over the TOAST threshold are
-- toasted down to 128 bytes, campaign_id compressed in place, user_id (storage
-- EXTERNAL) out of line (pg_column_size: the value's 1000 bytes, no header);
-- pad is not mapped, it only makes the row large
ALTER TABLE v ADD COLUMN pad text, SET (toast_tuple_target = 128), ALTER COLUMN user_id SET STORAGE EXTERNAL;
INSERT INTO v VALUES ('00000000-0000-4000-8000-000000000004', 'article', 'k2', repeat('x', 1000), 1,
	repeat('ab', 400), 4, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 19) g));
SELECT n, pg_column_compression(campaign_id) AS campaign_compressed,
	pg_column_size(campaign_id) < 100 AS campaign_small, pg_column_size(user_id) AS user_size
FROM v WHERE n = 4;
-- the outbox row: the same text, stored inline and uncompressed (1-byte header
-- up to 126 bytes), also from the compressed and the out-of-line value
SELECT v.n,
	o.share_id = v.id::text AS id_ok, o.content_type = v.content_type::text AS type_ok,
	o.content_id = v.content_id AS cid_ok, o.user_id = v.user_id::text AS user_ok,
	o.channel_id = v.channel_id::text AS channel_ok,
	o.campaign_id IS NOT DISTINCT FROM v.campaign_id AS campaign_ok,
	pg_column_compression(o.user_id) AS user_compressed,
	pg_column_compression(o.campaign_id) AS campaign_compressed,
	array[pg_column_size(o.share_id), pg_column_size(o.content_type), pg_column_size(o.content_id),
		pg_column_size(o.user_id), pg_column_size(o.channel_id), pg_column_size(o.campaign_id)] AS sizes
FROM sharecount.outbox o JOIN v ON o.share_id = v.id::text ORDER BY v.n;
SELECT job_name, body::jsonb->'data'->>'shareId' AS share_id, body::jsonb->'data'->>'userId' AS user_id,
	body::jsonb->'data'->>'channelId' AS channel_id
FROM sharecount.outbox_jobs WHERE body::jsonb->'data'->>'contentId' IN ('k1', 'ü "q" \') ORDER BY id;
-- an UPDATE that keeps the key, channel and campaign writes nothing, also
-- with an out-of-line user id and a compressed campaign; changing one byte of the campaign moves the share
DELETE FROM sharecount.outbox;
UPDATE v SET user_id = user_id || 'x' WHERE n IN (1, 4);
SELECT count(*) AS no_jobs FROM sharecount.outbox;
UPDATE v SET campaign_id = repeat('ab', 399) || 'aB' WHERE n = 4;
SELECT job_name, length(body::jsonb->'data'->>'campaignId') AS campaign_len,
	right(body::jsonb->'data'->>'campaignId', 1) AS last FROM sharecount.outbox_jobs ORDER BY id;
DELETE FROM sharecount.outbox;
DROP TABLE v;

-- the registration cache: two tables written in turn, each with its own mapping
CREATE TABLE a (id int, kind text, item text, other text);
CREATE TABLE b (id int, content_type text, content_id text);
SELECT sharecount_track('a', id_column => 'id', content_type_column => 'kind', content_id_column => 'item',
	user_id_column => NULL, channel_id_column => NULL, campaign_id_column => NULL);
SELECT sharecount_track('b');
INSERT INTO a VALUES (1, 'A', 'item1', 'other1');
INSERT INTO b VALUES (2, 'B', 'b2');
INSERT INTO a VALUES (3, 'A', 'item3', 'other3');
-- re-registered in this session with another content id column
SELECT sharecount_untrack('a');
INSERT INTO a VALUES (4, 'A', 'item4', 'other4');
SELECT sharecount_track('a', id_column => 'id', content_type_column => 'kind', content_id_column => 'other',
	user_id_column => NULL, channel_id_column => NULL, campaign_id_column => NULL);
INSERT INTO a VALUES (5, 'A', 'item5', 'other5');
-- ALTER TABLE: a new type is read as that type at once
ALTER TABLE a ALTER COLUMN other TYPE uuid USING '00000000-0000-4000-8000-000000000001';
INSERT INTO a VALUES (6, 'A', 'item6', '00000000-0000-4000-8000-0000000000ff');
ALTER TABLE a ALTER COLUMN other TYPE text;
INSERT INTO a VALUES (7, 'A', 'item7', 'other7');
INSERT INTO b VALUES (8, 'B', 'b8');
SELECT job_name, body::jsonb->'data'->>'shareId' AS share_id, body::jsonb->'data'->>'contentType' AS ctype,
	body::jsonb->'data'->>'contentId' AS cid, body::jsonb->'data'->>'amount' AS amount
FROM sharecount.outbox_jobs WHERE job_name = 'share_created' ORDER BY id;

-- DROP/CREATE EXTENSION in this session: b, written last, is no longer tracked,
-- so a trigger attached by hand writes nothing; a re-tracked a writes the new outbox
\set VERBOSITY terse
DROP EXTENSION sharecount CASCADE;
\set VERBOSITY default
CREATE EXTENSION sharecount;
CREATE TRIGGER sharecount_row AFTER INSERT ON b FOR EACH ROW EXECUTE FUNCTION sharecount_trigger();
INSERT INTO b VALUES (9, 'B', 'b9');
SELECT sharecount_track('a', id_column => 'id', content_type_column => 'kind', content_id_column => 'item',
	user_id_column => NULL, channel_id_column => NULL, campaign_id_column => NULL);
INSERT INTO a VALUES (10, 'A', 'item10', 'other10');
SELECT job_name, body::jsonb->'data'->>'shareId' AS share_id, body::jsonb->'data'->>'contentId' AS cid,
	body::jsonb->'data'->>'amount' AS amount
FROM sharecount.outbox_jobs WHERE job_name = 'share_created' ORDER BY id;
DROP TABLE b;
SELECT sharecount_untrack('a');
DROP TABLE a;

\c :regress_db
DROP DATABASE regress_sc_trigger_values;
