-- Release 1.1 hardening (docs/extension.md): only registered tables produce
-- jobs, untrack takes the rows back out of the counts, renamed columns are
-- followed, counting runs as the table's owner, inheritance children are not
-- counted.  Jobs are applied by hand (drain) instead of by a bridge.
SET client_min_messages = notice;
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
CREATE FUNCTION drain() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	SELECT count(*) INTO n FROM sharecount_apply_batch(coalesce(
		(SELECT array_agg(body::jsonb ORDER BY id) FROM sharecount.outbox_jobs), '{}'));
	DELETE FROM sharecount.outbox;
	RETURN n;
END
$$;
-- counts equal the rows of the tracked tables, per sharecount_verify
CREATE FUNCTION exact() RETURNS boolean LANGUAGE sql AS $$
	SELECT NOT EXISTS (SELECT FROM sharecount_verify())
$$;

-- 1. Forged triggers.  Real shares of ('article', 'victim'):
CREATE TABLE real_links (id int PRIMARY KEY, content_type text, content_id text, user_id text);
SELECT sharecount_track('real_links');
INSERT INTO real_links SELECT g, 'article', 'victim', 'u' FROM generate_series(1, 3) g;
SELECT drain();
SELECT sharecount_get('article', 'victim');
-- PUBLIC cannot execute sharecount_trigger(), so cannot attach it
SELECT count(*) AS public_grants FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
	WHERE p.oid = 'sharecount_trigger()'::regprocedure AND a.grantee = 0;
CREATE ROLE sc_forger;
SET ROLE sc_forger;
CREATE TEMP TABLE forged (id int, content_type text, content_id text, user_id text);
CREATE TRIGGER sharecount_row AFTER INSERT OR UPDATE OR DELETE ON forged FOR EACH ROW
	EXECUTE FUNCTION sharecount_trigger('id', 'content_type', 'content_id', 'user_id', '', '');
RESET ROLE;
-- with EXECUTE granted (as under 1.0), a trigger on an unregistered table
-- still writes nothing: the statement fails
GRANT EXECUTE ON FUNCTION sharecount_trigger() TO sc_forger;
SET ROLE sc_forger;
CREATE TRIGGER sharecount_row AFTER INSERT OR UPDATE OR DELETE ON forged FOR EACH ROW
	EXECUTE FUNCTION sharecount_trigger('id', 'content_type', 'content_id', 'user_id', '', '');
CREATE TRIGGER sharecount_truncate BEFORE TRUNCATE ON forged FOR EACH STATEMENT
	EXECUTE FUNCTION sharecount_trigger('content_type', 'content_id');
INSERT INTO forged SELECT g, 'article', 'victim', 'x' FROM generate_series(1, 5) g;
ALTER TABLE forged DISABLE TRIGGER sharecount_row;
INSERT INTO forged SELECT g, 'article', 'victim', 'x' FROM generate_series(1, 5) g;
TRUNCATE forged;
SELECT count(*) FROM forged;
RESET ROLE;
SELECT count(*) AS outbox FROM sharecount.outbox;
SELECT drain();
SELECT sharecount_get('article', 'victim');
REVOKE EXECUTE ON FUNCTION sharecount_trigger() FROM sc_forger;
-- on a tracked table, only the two triggers sharecount_track() attached count
CREATE TRIGGER extra AFTER INSERT ON real_links FOR EACH ROW EXECUTE FUNCTION sharecount_trigger();
INSERT INTO real_links VALUES (10, 'article', 'victim', 'u');
DROP TRIGGER extra ON real_links;
SELECT count(*) AS outbox FROM sharecount.outbox;

-- 2. Untrack takes the rows back; any track/untrack sequence stays exact.
CREATE TABLE hl (id serial PRIMARY KEY, content_type text, content_id text, user_id text);
INSERT INTO hl (content_type, content_id) SELECT 'article', 'rt' FROM generate_series(1, 3);
SELECT sharecount_track('hl');
SELECT drain();
SELECT sharecount_get('article', 'rt');
SELECT sharecount_untrack('hl');
SELECT body::jsonb->'data'->>'operation' AS op, body::jsonb->'data'->'amount' AS amount FROM sharecount.outbox_jobs;
SELECT drain();
SELECT sharecount_get('article', 'rt');
SELECT sharecount_track('hl');
SELECT drain();
SELECT sharecount_get('article', 'rt');
INSERT INTO hl (content_type, content_id) VALUES ('article', 'rt');
SELECT sharecount_untrack('hl');
DELETE FROM hl WHERE id = 1;
INSERT INTO hl (content_type, content_id) VALUES ('article', 'rt'), ('article', 'rt2');
SELECT sharecount_track('hl');
DELETE FROM hl WHERE id = 2;
SELECT drain();
SELECT sharecount_get('article', 'rt'), sharecount_get('article', 'rt2'), exact();
-- untrack and re-track in one transaction, with writes between
BEGIN;
INSERT INTO hl (content_type, content_id) VALUES ('article', 'rt');
SELECT sharecount_untrack('hl');
INSERT INTO hl (content_type, content_id) VALUES ('article', 'rt');
SELECT sharecount_track('hl');
COMMIT;
SELECT drain();
SELECT sharecount_get('article', 'rt'), (SELECT count(*) FROM hl WHERE content_id = 'rt') AS rows, exact();

-- Renaming a tracked column needs nothing from the operator
ALTER TABLE hl RENAME COLUMN content_id TO item_id;
SELECT content_id_column FROM sharecount.tracked WHERE tbl = 'hl'::regclass;
INSERT INTO hl (content_type, item_id) VALUES ('article', 'rt');
DELETE FROM hl WHERE id = 3;
UPDATE hl SET item_id = 'rt2' WHERE id = 4;
SELECT drain();
SELECT sharecount_get('article', 'rt'), sharecount_get('article', 'rt2'), exact();
TRUNCATE hl;
SELECT drain();
SELECT sharecount_get('article', 'rt'), sharecount_get('article', 'rt2'), exact();
-- dropping a required column is refused, an optional one is unmapped
ALTER TABLE hl DROP COLUMN item_id;
ALTER TABLE hl DROP COLUMN user_id;
SELECT id_column, content_type_column, content_id_column, user_id_column FROM sharecount.tracked WHERE tbl = 'hl'::regclass;
INSERT INTO hl (content_type, item_id) VALUES ('article', 'rt');
SELECT body::jsonb->'data' ? 'userId' AS has_user FROM sharecount.outbox_jobs;
SELECT drain();
SELECT exact();
SELECT sharecount_untrack('hl');
SELECT drain();
SELECT sharecount_get('article', 'rt');
DROP TABLE hl;

-- 5. verify and recount evaluate a table's casts as the table's owner (who
-- must schema-qualify: they run under the caller's search_path)
CREATE ROLE sc_table_owner;
GRANT CREATE ON SCHEMA public TO sc_table_owner;
SET ROLE sc_table_owner;
CREATE TYPE link_kind AS ENUM ('article', 'video');
CREATE TABLE who_ran (who name);
CREATE FUNCTION link_kind_text(link_kind) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.who_ran VALUES (current_user);
	RETURN format('%s', $1);
END
$$;
CREATE CAST (link_kind AS text) WITH FUNCTION link_kind_text(link_kind);
CREATE TABLE owned_links (id int, content_type link_kind, content_id text);
INSERT INTO owned_links VALUES (1, 'article', 'owned');
RESET ROLE;
SELECT sharecount_track('owned_links');
SELECT drain();
SELECT sharecount_get('article', 'owned');
DELETE FROM who_ran;
SELECT * FROM sharecount_verify();
SELECT sharecount_recount('article', 'owned');
SELECT who = 'sc_table_owner' AS ran_as_table_owner, count(*) > 0 AS ran FROM who_ran GROUP BY 1;

-- 6. Inheritance: a child's rows are never counted by the parent's tracking
CREATE TABLE parent_links (id int, content_type text, content_id text);
CREATE TABLE child_links () INHERITS (parent_links);
INSERT INTO parent_links VALUES (1, 'article', 'inh'), (2, 'article', 'inh');
INSERT INTO child_links VALUES (3, 'article', 'inh');
SELECT sharecount_track('parent_links');
SELECT body::jsonb->'data'->'amount' AS backfill FROM sharecount.outbox_jobs;
SELECT drain();
SELECT sharecount_get('article', 'inh'), exact();
INSERT INTO child_links VALUES (4, 'article', 'inh');
SELECT sharecount_recount('article', 'inh'), exact();
TRUNCATE parent_links;
SELECT body::jsonb->'data'->'amount' AS truncated FROM sharecount.outbox_jobs;
SELECT drain();
SELECT sharecount_get('article', 'inh'), exact();
-- a tracked child follows a column renamed through its parent
INSERT INTO child_links VALUES (5, 'article', 'inh');
SELECT sharecount_track('child_links');
ALTER TABLE parent_links RENAME COLUMN content_id TO item_id;
SELECT tbl, content_id_column FROM sharecount.tracked WHERE tbl IN ('parent_links'::regclass, 'child_links'::regclass) ORDER BY 1;
INSERT INTO child_links VALUES (6, 'article', 'inh');
INSERT INTO parent_links VALUES (7, 'article', 'inh');
SELECT drain();
SELECT sharecount_get('article', 'inh'), exact();

SELECT sharecount_untrack('real_links'), sharecount_untrack('owned_links'),
	sharecount_untrack('parent_links'), sharecount_untrack('child_links');
SELECT drain();
SELECT count(*) AS keys_left FROM sharecount.counts WHERE share_count <> 0;
DROP TABLE real_links, parent_links, child_links, forged;
DROP OWNED BY sc_table_owner CASCADE;
REVOKE CREATE ON SCHEMA public FROM sc_table_owner;
DROP ROLE sc_table_owner, sc_forger;
DROP FUNCTION drain(), exact();
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
