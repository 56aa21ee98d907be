-- DROP EXTENSION never drops application tables: without CASCADE it is
-- refused while tables are tracked (the app keeps working); with CASCADE only
-- the triggers go and the app can still insert.  Re-creating it in the same
-- session works (cached plans are re-planned).  Runs in a database of its
-- own, made here and dropped at the end (keep that last): the other tests
-- never see the extension missing, in any order.
\set regress_db :DBNAME
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sc_drop;
RESET client_min_messages;
CREATE DATABASE regress_sc_drop;
\c regress_sc_drop
CREATE EXTENSION sharecount;
CREATE TABLE keep_links (id int PRIMARY KEY, content_type text, content_id text, user_id text);
SELECT sharecount_track('keep_links');
INSERT INTO keep_links VALUES (1, 'article', '1', 'u');
SELECT sharecount_get('article', '1');

\set VERBOSITY terse
DROP EXTENSION sharecount;
\set VERBOSITY default
INSERT INTO keep_links VALUES (2, 'article', '1', 'u');
SELECT count(*) FROM sharecount.outbox;

DROP EXTENSION sharecount CASCADE;
SELECT count(*) FROM keep_links;
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'keep_links'::regclass AND NOT tgisinternal;
INSERT INTO keep_links VALUES (3, 'article', '1', 'u');
SELECT count(*) FROM keep_links;
SELECT count(*) FROM pg_namespace WHERE nspname = 'sharecount';

-- again, in this session: the trigger's saved plan follows the new outbox
CREATE EXTENSION sharecount;
SELECT sharecount_track('keep_links');
SELECT job_name, body::jsonb->'data'->'amount' AS amount FROM sharecount.outbox_jobs;
INSERT INTO keep_links VALUES (4, 'article', '1', 'u');
SELECT count(*) FROM sharecount_apply_batch((SELECT array_agg(body::jsonb) FROM sharecount.outbox_jobs));
SELECT sharecount_get('article', '1');

SELECT sharecount_untrack('keep_links');
DROP TABLE keep_links;
\c :regress_db
DROP DATABASE regress_sc_drop;
