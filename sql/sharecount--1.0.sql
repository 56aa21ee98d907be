/*
 * sharecount--1.0.sql: install script of the sharecount extension.
 *
 * Functions are named sharecount_* and live in the extension's schema (public
 * by default); state lives in schema "sharecount".  Rules:
 * - Every state table is registered with pg_extension_config_dump so pg_dump
 *   keeps it; nothing here inserts rows (a restore would collide with them).
 * - Write-side functions are REVOKE'd from PUBLIC.  The ones that touch state
 *   tables are SECURITY DEFINER with search_path pinned to pg_catalog, pg_temp
 *   and schema-qualify everything, so a bridge role needs EXECUTE only.
 * - The row trigger (C) writes the outbox as the outbox's owner, so the
 *   application's role needs no grant on schema sharecount.
 * - Keys are compared byte-wise (COLLATE "C"): content ids are identifiers.
 */

\echo Use "CREATE EXTENSION sharecount" to load this file. \quit

CREATE SCHEMA sharecount;
COMMENT ON SCHEMA sharecount IS 'state of the sharecount extension (outbox, counts, dedupe records)';

-- Jobs written by the trigger, waiting to be published by a bridge.  A queue
-- table: rows are inserted at the end and deleted after the broker confirmed
-- them, so let autovacuum visit it often.  A job is kept as columns, not as its
-- JSON: the row is written in the application's transaction, where every byte
-- is WAL (src/outbox.c); sharecount.job_body() renders the message when the
-- job is claimed, and the view sharecount.outbox_jobs shows jobs as published.
-- The trigger writes rows directly, so constraints added here are not checked.
CREATE TABLE sharecount.outbox (
	id bigserial NOT NULL,			-- unique by construction (the sequence); no index, see src/claim.c
	job "char" NOT NULL,			-- c = share_created, d = share_deleted, u = share_count_update
	job_id uuid NOT NULL,			-- the jobId
	created_at timestamptz NOT NULL DEFAULT clock_timestamp(),	-- the job's timestamp
	amount bigint,					-- u: +n = increment by n, -n = decrement by n
	share_id text,
	content_type text NOT NULL,
	content_id text NOT NULL,
	user_id text,
	channel_id text,
	campaign_id text
) WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 5000,
		autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 5000);
-- Each backend takes outbox ids 64 at a time: the trigger (outbox.c) takes
-- one nextval() = n and then uses n .. n+63 itself, so only every 64th
-- tracked row touches the sequence (with one nextval() per row, every tracked
-- row locked the sequence's one buffer exclusively and all writers queued on
-- it).  A row inserted by hand gets n from the column default.  Ids stay unique
-- and increase within a session; across sessions claims are only
-- approximately oldest first, which is all the publisher needs (a range left
-- unused when a session ends is a gap).
ALTER SEQUENCE sharecount.outbox_id_seq INCREMENT BY 64;
-- No primary key, so name the replica identity: a publication that includes
-- the outbox (FOR ALL TABLES) would otherwise refuse sharecount_outbox_done's
-- DELETE.  FULL costs WAL only under wal_level = logical.
ALTER TABLE sharecount.outbox REPLICA IDENTITY FULL;

-- The counts: the exact sum of applied deltas per key.  May be negative for a
-- moment (a delete applied before its create); readers clamp at 0.
CREATE TABLE sharecount.counts (
	content_type text COLLATE "C" NOT NULL,
	content_id text COLLATE "C" NOT NULL,
	share_count bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (content_type, content_id)
) WITH (fillfactor = 80);

-- Dedupe records: the jobIds already applied.  Pruned by sharecount_prune();
-- a BRIN index makes that cheap without slowing the inserts.
CREATE TABLE sharecount.applied_jobs (
	job_id text COLLATE "C" PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_jobs_applied_at ON sharecount.applied_jobs USING brin (applied_at);

-- Tracked application tables and their column mapping (used by verify,
-- recount and untrack; the trigger gets the same names as arguments).
CREATE TABLE sharecount.tracked (
	tbl regclass PRIMARY KEY,
	id_column name NOT NULL,
	content_type_column name NOT NULL,
	content_id_column name NOT NULL,
	user_id_column name,
	channel_id_column name,
	campaign_id_column name,
	tracked_at timestamptz NOT NULL DEFAULT now()
);

-- Apply statistics, sharded by backend (pid % 16) so that concurrent bridges
-- do not all update one hot row; sharecount_stats() sums the shards.  Each
-- apply call updates one row once.
CREATE TABLE sharecount.stats (
	shard int PRIMARY KEY,
	jobs_applied bigint NOT NULL DEFAULT 0,
	duplicates bigint NOT NULL DEFAULT 0,
	invalid bigint NOT NULL DEFAULT 0
);

SELECT pg_catalog.pg_extension_config_dump('sharecount.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.counts', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.applied_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.tracked', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.stats', '');

-- ------------------------------------------------------------- trigger ----

-- The row and TRUNCATE trigger attached by sharecount_track().  Arguments:
-- id, content type, content id, user id, channel id, campaign id column names
-- ('' = the table has no such column).
CREATE FUNCTION sharecount_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'sharecount_trigger' LANGUAGE C;

-- Internal: write share_count_update jobs of COUNT(*) per key of a table
-- (split at 1,000,000).  Used by sharecount_track() for the backfill.
CREATE FUNCTION sharecount._enqueue_counts(tbl regclass, content_type_column name,
		content_id_column name, operation text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sharecount_enqueue_counts' LANGUAGE C STRICT;

CREATE FUNCTION sharecount_track(tbl regclass, id_column name DEFAULT 'id',
		content_type_column name DEFAULT 'content_type', content_id_column name DEFAULT 'content_id',
		user_id_column name DEFAULT 'user_id', channel_id_column name DEFAULT 'channel_id',
		campaign_id_column name DEFAULT 'campaign_id')
	RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	kind "char";
	opt name[];
	col name;
	i int;
	jobs bigint;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
	IF kind = 'p' THEN
		-- TRUNCATE of one partition would not fire the parent's trigger
		RAISE EXCEPTION 'partitioned table "%" cannot be tracked', tbl USING ERRCODE = '0A000',
			HINT = 'Track an ordinary table.';
	END IF;
	IF kind IS NULL OR kind <> 'r' THEN
		RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = tbl AND c.relpersistence = 't') THEN
		-- its end with the session would leave the registry naming a dropped table
		RAISE EXCEPTION 'temporary table "%" cannot be tracked', tbl USING ERRCODE = '0A000';
	END IF;
	-- forget tables that were dropped since they were tracked
	DELETE FROM sharecount.tracked t WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = t.tbl);
	IF EXISTS (SELECT FROM sharecount.tracked t WHERE t.tbl = sharecount_track.tbl) THEN
		RAISE EXCEPTION 'table "%" is already tracked', tbl USING ERRCODE = '42710',
			HINT = 'Call sharecount_untrack() first to change its column mapping.';
	END IF;
	FOREACH col IN ARRAY ARRAY[id_column, content_type_column, content_id_column] LOOP
		IF col IS NULL OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
				WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped) THEN
			RAISE EXCEPTION 'column "%" of table "%" does not exist', col, tbl USING ERRCODE = '42703';
		END IF;
	END LOOP;
	-- char(n) renders differently as output (padded) and as ::text (trimmed);
	-- the trigger uses the first and TRUNCATE/verify the second
	IF EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl
			AND a.attname IN (content_type_column, content_id_column) AND a.atttypid = 'pg_catalog.bpchar'::regtype) THEN
		RAISE EXCEPTION 'content type and id columns of type character(n) cannot be tracked' USING ERRCODE = '0A000',
			HINT = 'Use text or varchar.';
	END IF;
	-- optional columns: absent from the table means the job field is omitted
	opt := ARRAY[user_id_column, channel_id_column, campaign_id_column];
	FOR i IN 1..3 LOOP
		IF opt[i] IS NOT NULL AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
				WHERE a.attrelid = tbl AND a.attname = opt[i] AND a.attnum > 0 AND NOT a.attisdropped) THEN
			RAISE NOTICE 'column "%" of table "%" does not exist, its job field will be omitted', opt[i], tbl;
			opt[i] := NULL;
		END IF;
	END LOOP;

	-- No writer may slip between the trigger's creation and the backfill.  One
	-- row trigger serves INSERT, UPDATE and DELETE: the C function compares an
	-- UPDATE's old and new key as text, the way jobs carry them (a type whose
	-- equality ignores differences the text shows, e.g. citext, must still
	-- re-target), and ignores UPDATEs that keep the key.  The executor copies
	-- every trigger of the table, with its arguments, at the start of each
	-- INSERT, so fewer triggers and arguments make every tracked INSERT cheaper
	-- (docs/performance.md); TRUNCATE needs only the key columns.
	EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', tbl);
	EXECUTE format('CREATE TRIGGER sharecount_row AFTER INSERT OR UPDATE OR DELETE ON %s '
			'FOR EACH ROW EXECUTE FUNCTION @extschema@.sharecount_trigger(%L, %L, %L, %L, %L, %L)',
		tbl, id_column, content_type_column, content_id_column,
		coalesce(opt[1], ''), coalesce(opt[2], ''), coalesce(opt[3], ''));
	EXECUTE format('CREATE TRIGGER sharecount_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
			'EXECUTE FUNCTION @extschema@.sharecount_trigger(%L, %L)',
		tbl, content_type_column, content_id_column);
	INSERT INTO sharecount.tracked (tbl, id_column, content_type_column, content_id_column,
			user_id_column, channel_id_column, campaign_id_column)
		VALUES (tbl, id_column, content_type_column, content_id_column, opt[1], opt[2], opt[3]);
	jobs := sharecount._enqueue_counts(tbl, content_type_column, content_id_column, 'increment');
	IF jobs > 0 THEN
		RAISE NOTICE 'table "%" already has rows: % backfill jobs queued', tbl, jobs;
	END IF;
END
$f$;

CREATE FUNCTION sharecount_untrack(tbl regclass) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
	END IF;
	IF NOT EXISTS (SELECT FROM sharecount.tracked t WHERE t.tbl = sharecount_untrack.tbl) THEN
		RAISE EXCEPTION 'table "%" is not tracked', tbl USING ERRCODE = '42704';
	END IF;
	EXECUTE format('DROP TRIGGER IF EXISTS sharecount_row ON %s', tbl);
	EXECUTE format('DROP TRIGGER IF EXISTS sharecount_truncate ON %s', tbl);
	DELETE FROM sharecount.tracked t WHERE t.tbl = sharecount_untrack.tbl;
END
$f$;

-- Forget a tracked table when it is dropped, so the registry (and pg_dump of
-- it) never names a table that no longer exists.  SECURITY DEFINER: the role
-- dropping a table needs no right on schema sharecount.
CREATE FUNCTION sharecount._forget_dropped() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	DELETE FROM sharecount.tracked t USING pg_catalog.pg_event_trigger_dropped_objects() d
		WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = t.tbl::oid;
END
$f$;
REVOKE ALL ON FUNCTION sharecount._forget_dropped() FROM PUBLIC;
CREATE EVENT TRIGGER sharecount_forget_dropped ON sql_drop
	WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION sharecount._forget_dropped();

-- --------------------------------------------------------------- reads ----

-- The hot read path: a direct primary-key lookup in C (no SPI, no planning).
CREATE FUNCTION sharecount_get(content_type text, content_id text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sharecount_get' LANGUAGE C STABLE PARALLEL SAFE STRICT;

CREATE FUNCTION sharecount_get_many(content_type text, content_ids text[])
	RETURNS TABLE (content_id text, share_count bigint)
	AS 'MODULE_PATHNAME', 'sharecount_get_many' LANGUAGE C STABLE PARALLEL SAFE STRICT ROWS 10;

-- -------------------------------------------------------------- outbox ----

-- The message of a stored job (SPEC section 5) and its name (= routing key).
CREATE FUNCTION sharecount.job_body(sharecount.outbox) RETURNS text
	AS 'MODULE_PATHNAME', 'sharecount_job_body' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION sharecount.job_name(sharecount.outbox) RETURNS text
	AS 'MODULE_PATHNAME', 'sharecount_job_name' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The outbox as it will be published, for operators and tests.
CREATE VIEW sharecount.outbox_jobs AS
	SELECT o.id, sharecount.job_name(o) AS job_name, o.job_id::text AS job_id,
		sharecount.job_body(o) AS body, o.created_at
	FROM sharecount.outbox o;

-- Claims scan the outbox in physical order from a per-session cursor and
-- done deletes by the ctids the claim remembered (src/claim.c): the outbox has
-- no index, which is what a tracked INSERT saves.
CREATE FUNCTION sharecount_outbox_claim(max int)
	RETURNS TABLE (id bigint, job_name text, job_id text, body text)
	AS 'MODULE_PATHNAME', 'sharecount_outbox_claim'
	LANGUAGE C STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION sharecount_outbox_done(ids bigint[]) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sharecount_outbox_done'
	LANGUAGE C STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- --------------------------------------------------------------- apply ----

CREATE FUNCTION sharecount_apply(message jsonb) RETURNS boolean
	AS 'MODULE_PATHNAME', 'sharecount_apply'
	LANGUAGE C STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION sharecount_apply_batch(messages jsonb[])
	RETURNS TABLE (ord int, status text, error text)
	AS 'MODULE_PATHNAME', 'sharecount_apply_batch'
	LANGUAGE C STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION sharecount_prune(older_than interval DEFAULT '7 days') RETURNS bigint
	LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	n bigint;
BEGIN
	IF older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must not be negative' USING ERRCODE = '22023';
	END IF;
	DELETE FROM sharecount.applied_jobs a WHERE a.applied_at < pg_catalog.now() - older_than;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$f$;

-- ----------------------------------------------------- verify / repair ----

-- Internal: one query giving (content_type, content_id, n) = COUNT(*) of the
-- countable rows per key over every tracked table that still exists, with
-- key_filter ('' or an AND condition on columns ct, ci) applied.
CREATE FUNCTION sharecount._actual_counts_sql(key_filter text) RETURNS text
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	parts text[] := '{}';
	t record;
BEGIN
	FOR t IN SELECT tr.tbl, tr.content_type_column, tr.content_id_column FROM sharecount.tracked tr
			JOIN pg_catalog.pg_class c ON c.oid = tr.tbl ORDER BY tr.tbl::oid LOOP
		parts := parts || format(
			'SELECT ct, ci FROM (SELECT (%I)::text COLLATE "C" AS ct, (%I)::text COLLATE "C" AS ci FROM %s) s '
			'WHERE octet_length(ct) BETWEEN 1 AND 64 AND octet_length(ci) BETWEEN 1 AND 256%s',
			t.content_type_column, t.content_id_column, t.tbl, key_filter);
	END LOOP;
	IF cardinality(parts) = 0 THEN
		RETURN 'SELECT NULL::text COLLATE "C" AS content_type, NULL::text COLLATE "C" AS content_id, 0::bigint AS n WHERE false';
	END IF;
	RETURN 'SELECT ct AS content_type, ci AS content_id, count(*) AS n FROM ('
		|| array_to_string(parts, ' UNION ALL ') || ') u GROUP BY 1, 2';
END
$f$;

CREATE FUNCTION sharecount_verify(max int DEFAULT 100)
	RETURNS TABLE (content_type text, content_id text, counted bigint, actual bigint)
	LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	IF max < 1 THEN
		RAISE EXCEPTION 'max must be at least 1' USING ERRCODE = '22023';
	END IF;
	RETURN QUERY EXECUTE
		'SELECT coalesce(c.content_type, a.content_type)::text, coalesce(c.content_id, a.content_id)::text, '
		'coalesce(c.share_count, 0), coalesce(a.n, 0) '
		'FROM sharecount.counts c FULL JOIN (' || sharecount._actual_counts_sql('') || ') a '
		'ON c.content_type = a.content_type AND c.content_id = a.content_id '
		'WHERE coalesce(c.share_count, 0) <> coalesce(a.n, 0) ORDER BY 1, 2 LIMIT $1'
		USING max;
END
$f$;

CREATE FUNCTION sharecount_recount(content_type text, content_id text) RETURNS bigint
	LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	n bigint;
BEGIN
	IF octet_length(content_type) NOT BETWEEN 1 AND 64 THEN
		RAISE EXCEPTION 'content_type must be 1 to 64 bytes' USING ERRCODE = '22023';
	END IF;
	IF octet_length(content_id) NOT BETWEEN 1 AND 256 THEN
		RAISE EXCEPTION 'content_id must be 1 to 256 bytes' USING ERRCODE = '22023';
	END IF;
	EXECUTE 'SELECT coalesce(sum(n), 0)::bigint FROM ('
		|| sharecount._actual_counts_sql(' AND ct = $1 AND ci = $2') || ') a'
		INTO n USING content_type, content_id;
	INSERT INTO sharecount.counts AS c (content_type, content_id, share_count, updated_at)
		VALUES (sharecount_recount.content_type, sharecount_recount.content_id, n, clock_timestamp())
		ON CONFLICT ON CONSTRAINT counts_pkey
		DO UPDATE SET share_count = excluded.share_count, updated_at = excluded.updated_at;
	RETURN n;
END
$f$;

CREATE FUNCTION sharecount_stats() RETURNS jsonb
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
	SELECT jsonb_build_object(
		'outbox_depth', (SELECT count(*) FROM sharecount.outbox),
		'outbox_oldest_age_seconds', (SELECT coalesce(round(extract(epoch FROM now() - min(created_at)), 3), 0)
			FROM sharecount.outbox),
		'keys_counted', (SELECT count(*) FROM sharecount.counts),
		'jobs_applied', (SELECT coalesce(sum(jobs_applied), 0) FROM sharecount.stats),
		'duplicates', (SELECT coalesce(sum(duplicates), 0) FROM sharecount.stats),
		'invalid', (SELECT coalesce(sum(invalid), 0) FROM sharecount.stats),
		'dedupe_records', (SELECT count(*) FROM sharecount.applied_jobs),
		'tracked_tables', (SELECT count(*) FROM sharecount.tracked t JOIN pg_class c ON c.oid = t.tbl));
$f$;

-- ------------------------------------------------------------- wake-up ----

-- See docs/wakeup.md.  Session-level advisory lock (key 1935896180, 1) taken
-- by an idle publisher; a committing writer that finds it taken sends
-- NOTIFY sharecount_wakeup.
CREATE FUNCTION sharecount_publisher_sleep() RETURNS boolean
	AS 'MODULE_PATHNAME', 'sharecount_publisher_sleep' LANGUAGE C VOLATILE;

CREATE FUNCTION sharecount_publisher_wake() RETURNS void
	AS 'MODULE_PATHNAME', 'sharecount_publisher_wake' LANGUAGE C VOLATILE;

-- ---------------------------------------------------------- privileges ----

REVOKE ALL ON SCHEMA sharecount FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_track(regclass, name, name, name, name, name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_untrack(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount._enqueue_counts(regclass, name, name, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount._actual_counts_sql(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount.job_body(sharecount.outbox) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount.job_name(sharecount.outbox) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_outbox_claim(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_outbox_done(bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_apply(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_apply_batch(jsonb[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_prune(interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_verify(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_recount(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_stats() FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_publisher_sleep() FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount_publisher_wake() FROM PUBLIC;
