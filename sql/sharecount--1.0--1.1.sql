/*
 * sharecount--1.0--1.1.sql: upgrade of the sharecount extension to 1.1
 * (docs/extension.md).  CREATE EXTENSION sharecount installs 1.0 and runs this.
 *
 * Rules (in addition to those of sharecount--1.0.sql):
 * - The registry (sharecount.tracked) is the single source of a tracked
 *   table's mapping: the C trigger reads it (by OID, cached per backend) and
 *   ignores its arguments, so only tables registered by sharecount_track()
 *   produce jobs, and sharecount_trigger() is not executable by PUBLIC.
 * - Column names in the registry follow ALTER TABLE (event trigger
 *   sharecount_follow_columns); names, not attribute numbers, are stored
 *   because the registry is dumped by pg_dump and a restored table loses its
 *   dropped columns, which renumbers the others.
 * - Every COUNT(*) over a tracked table (TRUNCATE, backfill, untrack, verify,
 *   recount) runs in C as the table's owner, over ONLY the table, with a fresh
 *   snapshot (src/counts.c).
 */

\echo Use "ALTER EXTENSION sharecount UPDATE TO '1.1'" to load this file. \quit

REVOKE ALL ON FUNCTION sharecount_trigger() FROM PUBLIC;

-- Optional columns dropped under 1.0 left their names behind; the event
-- trigger below relies on every registered name being a live column.
UPDATE sharecount.tracked t SET
	user_id_column = CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.tbl
		AND a.attname = t.user_id_column AND a.attnum > 0 AND NOT a.attisdropped) THEN t.user_id_column END,
	channel_id_column = CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.tbl
		AND a.attname = t.channel_id_column AND a.attnum > 0 AND NOT a.attisdropped) THEN t.channel_id_column END,
	campaign_id_column = CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.tbl
		AND a.attname = t.campaign_id_column AND a.attnum > 0 AND NOT a.attisdropped) THEN t.campaign_id_column END;

-- ------------------------------------------------------------- tracking ----

CREATE OR REPLACE FUNCTION sharecount_track(tbl regclass, id_column name DEFAULT 'id',
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

	-- No writer may slip between the trigger's creation and the backfill,
	-- whose count reads with a fresh snapshot taken under this lock (so also
	-- rows committed while we waited for it, under any isolation level).  The
	-- trigger takes no arguments: it reads the mapping from the registry, and
	-- the executor copies every trigger's arguments at the start of each
	-- INSERT (docs/performance.md).
	EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', tbl);
	EXECUTE format('CREATE TRIGGER sharecount_row AFTER INSERT OR UPDATE OR DELETE ON %s '
			'FOR EACH ROW EXECUTE FUNCTION @extschema@.sharecount_trigger()', tbl);
	EXECUTE format('CREATE TRIGGER sharecount_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
			'EXECUTE FUNCTION @extschema@.sharecount_trigger()', tbl);
	INSERT INTO sharecount.tracked (tbl, id_column, content_type_column, content_id_column,
			user_id_column, channel_id_column, campaign_id_column)
		VALUES (tbl, id_column, content_type_column, content_id_column, opt[1], opt[2], opt[3]);
	jobs := sharecount._enqueue_counts(tbl, content_type_column, content_id_column, 'increment', opt[2], opt[3]);
	IF jobs > 0 THEN
		RAISE NOTICE 'table "%" already has rows: % backfill jobs queued', tbl, jobs;
	END IF;
END
$f$;

-- Untracking takes the table's rows back out of the counts: decrement jobs
-- of COUNT(*) per key, under the same lock as the backfill, so any sequence of
-- track, untrack and re-track, with writes in between, stays exact.  The
-- registry row is deleted after the lock is held, so of two concurrent calls
-- only one takes the rows back (the other finds nothing, or fails to
-- serialize).
CREATE OR REPLACE FUNCTION sharecount_untrack(tbl regclass) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	t sharecount.tracked;
	jobs bigint;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
	END IF;
	IF NOT EXISTS (SELECT FROM sharecount.tracked r WHERE r.tbl = sharecount_untrack.tbl) THEN
		RAISE EXCEPTION 'table "%" is not tracked', tbl USING ERRCODE = '42704',
			HINT = 'sharecount.tracked lists the tracked tables.';
	END IF;
	EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', tbl);
	DELETE FROM sharecount.tracked r WHERE r.tbl = sharecount_untrack.tbl RETURNING r.* INTO t;
	IF t.tbl IS NULL THEN
		RAISE EXCEPTION 'table "%" is not tracked', tbl USING ERRCODE = '42704',
			HINT = 'Another session untracked it meanwhile.';
	END IF;
	EXECUTE format('DROP TRIGGER IF EXISTS sharecount_row ON %s', tbl);
	EXECUTE format('DROP TRIGGER IF EXISTS sharecount_truncate ON %s', tbl);
	jobs := sharecount._enqueue_counts(tbl, t.content_type_column, t.content_id_column, 'decrement',
		t.channel_id_column, t.campaign_id_column);
	IF jobs > 0 THEN
		RAISE NOTICE 'table "%" has rows: % jobs queued to take them out of the counts', tbl, jobs;
	END IF;
END
$f$;

-- Keep the registry's column names right after ALTER TABLE: a RENAME COLUMN
-- of a mapped column (also one inherited by a tracked child) renames it in
-- the registry; dropping a required column (id, content type, content id) is
-- refused; dropping an optional one unmaps it (its job field is omitted from
-- then on).  SECURITY DEFINER: the table's owner has no right on schema
-- sharecount.
CREATE FUNCTION sharecount._follow_columns() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	cmd record;
	renamed name;
	t sharecount.tracked;
	cols name[];
	labels CONSTANT text[] := ARRAY['id', 'content type', 'content id'];
	i int;
	changed boolean;
BEGIN
	FOR cmd IN SELECT DISTINCT d.objid, d.objsubid FROM pg_catalog.pg_event_trigger_ddl_commands() d
			WHERE d.classid = 'pg_catalog.pg_class'::regclass LOOP
		-- a RENAME COLUMN reports the renamed column (objsubid = its attnum)
		renamed := NULL;
		IF cmd.objsubid > 0 THEN
			SELECT a.attname INTO renamed FROM pg_catalog.pg_attribute a
				WHERE a.attrelid = cmd.objid AND a.attnum = cmd.objsubid AND NOT a.attisdropped;
		END IF;
		FOR t IN SELECT r.* FROM sharecount.tracked r WHERE r.tbl::oid IN (
				WITH RECURSIVE h(rel) AS (SELECT cmd.objid UNION
					SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN h ON i.inhparent = h.rel)
				SELECT h.rel FROM h) FOR UPDATE LOOP
			cols := ARRAY[t.id_column, t.content_type_column, t.content_id_column,
				t.user_id_column, t.channel_id_column, t.campaign_id_column];
			changed := false;
			FOR i IN 1..6 LOOP
				CONTINUE WHEN cols[i] IS NULL OR EXISTS (SELECT FROM pg_catalog.pg_attribute a
					WHERE a.attrelid = t.tbl AND a.attname = cols[i] AND a.attnum > 0 AND NOT a.attisdropped);
				changed := true;
				IF renamed IS NOT NULL AND EXISTS (SELECT FROM pg_catalog.pg_attribute a
						WHERE a.attrelid = t.tbl AND a.attname = renamed AND a.attnum > 0 AND NOT a.attisdropped) THEN
					cols[i] := renamed;
				ELSIF i <= 3 THEN
					RAISE EXCEPTION 'column "%" is the % column of tracked table "%"', cols[i], labels[i], t.tbl
						USING ERRCODE = '2BP01', HINT = 'Call sharecount_untrack() first.';
				ELSE
					cols[i] := NULL;
				END IF;
			END LOOP;
			IF changed THEN
				UPDATE sharecount.tracked r SET id_column = cols[1], content_type_column = cols[2],
					content_id_column = cols[3], user_id_column = cols[4], channel_id_column = cols[5],
					campaign_id_column = cols[6]
					WHERE r.tbl = t.tbl;
			END IF;
		END LOOP;
	END LOOP;
END
$f$;
REVOKE ALL ON FUNCTION sharecount._follow_columns() FROM PUBLIC;
CREATE EVENT TRIGGER sharecount_follow_columns ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION sharecount._follow_columns();

-- ----------------------------------------------------- verify / repair ----

-- Internal: (content_type, content_id, n) = COUNT(*) of the countable rows per
-- key and tracked table (a key appears once per table holding it), each table
-- counted as its owner over ONLY itself (src/counts.c).  NULL, NULL: every key.
CREATE FUNCTION sharecount._actual_counts(content_type text, content_id text)
	RETURNS TABLE (content_type text, content_id text, n bigint)
	AS 'MODULE_PATHNAME', 'sharecount_actual_counts' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION sharecount._actual_counts(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION sharecount_verify(max int DEFAULT 100)
	RETURNS TABLE (content_type text, content_id text, counted bigint, actual bigint)
	LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	IF max < 1 THEN
		RAISE EXCEPTION 'max must be at least 1' USING ERRCODE = '22023', HINT = 'Pass a positive limit.';
	END IF;
	RETURN QUERY
		SELECT coalesce(c.content_type, a.ct)::text, coalesce(c.content_id, a.ci)::text,
			coalesce(c.share_count, 0), coalesce(a.n, 0)
		FROM sharecount.counts c FULL JOIN (
			SELECT x.content_type COLLATE "C" AS ct, x.content_id COLLATE "C" AS ci, sum(x.n)::bigint AS n
			FROM sharecount._actual_counts(NULL, NULL) x GROUP BY 1, 2) a
			ON c.content_type = a.ct AND c.content_id = a.ci
		WHERE coalesce(c.share_count, 0) <> coalesce(a.n, 0)
			-- #15: or its breakdown differs (sharecount_verify_breakdown() says where)
			OR (coalesce(c.content_type, a.ct), coalesce(c.content_id, a.ci)) IN (
				SELECT d.content_type COLLATE "C", d.content_id COLLATE "C" FROM sharecount._breakdown_diff() d)
		ORDER BY 1, 2 LIMIT sharecount_verify.max;
END
$f$;

CREATE OR REPLACE FUNCTION sharecount_recount(content_type text, content_id text) RETURNS bigint
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
	-- #15: the key's breakdowns are set too (values no row holds any more to 0)
	WITH x AS MATERIALIZED (SELECT a.channel COLLATE "C" AS channel, a.campaign COLLATE "C" AS campaign, a.n
			FROM sharecount._actual_breakdown(sharecount_recount.content_type, sharecount_recount.content_id) a),
		v AS (SELECT 'channel' AS dim, x.channel AS val, x.n FROM x
			UNION ALL SELECT 'campaign', x.campaign, x.n FROM x
			UNION ALL SELECT b.dimension, b.value, 0 FROM sharecount.breakdown b
				WHERE b.content_type = sharecount_recount.content_type AND b.content_id = sharecount_recount.content_id),
		w AS (INSERT INTO sharecount.breakdown AS b (content_type, content_id, dimension, value, share_count)
			SELECT sharecount_recount.content_type, sharecount_recount.content_id, v.dim, v.val, sum(v.n) FROM v
			GROUP BY v.dim, v.val
			ON CONFLICT ON CONSTRAINT breakdown_key DO UPDATE SET share_count = excluded.share_count)
	SELECT coalesce(sum(x.n), 0)::bigint INTO n FROM x;
	-- a count it changes gets version + 1 (#14 events, below)
	INSERT INTO sharecount.counts AS c (content_type, content_id, share_count, updated_at, version)
		VALUES (sharecount_recount.content_type, sharecount_recount.content_id, n, clock_timestamp(),
			CASE WHEN n <> 0 THEN 1 ELSE 0 END)
		ON CONFLICT ON CONSTRAINT counts_pkey
		DO UPDATE SET share_count = excluded.share_count, updated_at = excluded.updated_at,
			version = c.version + CASE WHEN c.share_count <> excluded.share_count THEN 1 ELSE 0 END;
	RETURN n;
END
$f$;

DROP FUNCTION sharecount._actual_counts_sql(text);

-- ------------------------------------------------------------ #13 outbox ----
-- Dense jobIds (docs/extension.md, "Jobs"; src/origin.c): a job written from
-- 1.1 on has no UUID; its jobId is "<origin>-<id>", origin being the 64-bit
-- origin of the server life that wrote it, stored in the row so that every
-- redelivery of the job renders the same jobId.  Rows written by 1.0 keep
-- their job_id (a UUID) and are published with it.
ALTER TABLE sharecount.outbox ADD COLUMN origin bigint, ALTER COLUMN job_id DROP NOT NULL;
COMMENT ON COLUMN sharecount.outbox.origin IS 'origin of the dense jobId <origin>-<id> (NULL in rows written by 1.0, which have a job_id)';

-- The origin this session's jobs get (NULL on a standby).
CREATE FUNCTION sharecount._origin() RETURNS text
	AS 'MODULE_PATHNAME', 'sharecount_origin' LANGUAGE C STABLE STRICT;
-- a row inserted by hand (the trigger sets origin itself) gets this session's origin
ALTER TABLE sharecount.outbox ALTER COLUMN origin SET DEFAULT ('x' || sharecount._origin())::bit(64)::bigint;
CREATE FUNCTION sharecount.job_id(sharecount.outbox) RETURNS text
	AS 'MODULE_PATHNAME', 'sharecount_job_id' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE VIEW sharecount.outbox_jobs AS
	SELECT o.id, sharecount.job_name(o) AS job_name, sharecount.job_id(o) AS job_id,
		sharecount.job_body(o) AS body, o.created_at
	FROM sharecount.outbox o;

-- The outbox part of sharecount_stats(), cheap at any depth: depth is the
-- statistics system's live-row count of the outbox (inserts minus deletes,
-- as of the last statistics flush, about a second behind); oldest_age_s is the
-- age of the oldest of the first 1,000 rows in physical order, which is
-- insertion order but for space reused after VACUUM (0 when empty).
CREATE FUNCTION sharecount._outbox_stats(OUT depth bigint, OUT oldest_age_s double precision)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
	SELECT GREATEST(pg_catalog.pg_stat_get_live_tuples('sharecount.outbox'::pg_catalog.regclass), 0),
		coalesce((SELECT EXTRACT(epoch FROM pg_catalog.now() - pg_catalog.min(f.created_at))::float8
			FROM (SELECT o.created_at FROM sharecount.outbox o LIMIT 1000) f), 0)
$f$;

-- Claims take rows (delete them in the claiming transaction) and done only
-- confirms them; unconfirmed rows are written back at commit (src/claim.c).
COMMENT ON FUNCTION sharecount_outbox_claim(int) IS 'take up to max outbox jobs for this transaction; rows not confirmed by sharecount_outbox_done() return to the outbox at commit';

REVOKE ALL ON FUNCTION sharecount._origin() FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount.job_id(sharecount.outbox) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount._outbox_stats() FROM PUBLIC;

-- The same claim (same code path, src/claim.c) with its jobs as ONE text value,
-- one line per job: id, body, job_name, job_id, tab-separated (no field can
-- hold a tab or a newline); '' when it took none.  The bridge's publisher uses
-- it: no result row, tuplestore or output calls per job (docs/performance.md).
CREATE FUNCTION sharecount_outbox_claim_packed(max int) RETURNS text
	AS 'MODULE_PATHNAME', 'sharecount_outbox_claim_packed'
	LANGUAGE C STRICT VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sharecount_outbox_claim_packed(int) IS 'sharecount_outbox_claim(max) as one text value: a line per job, id<TAB>body<TAB>job_name<TAB>job_id';
REVOKE ALL ON FUNCTION sharecount_outbox_claim_packed(int) FROM PUBLIC;

-- ------------------------------------------------------- #13 dedupe ----
-- The dedupe state that stays small (docs/extension.md, "Dedupe"; src/dedupe.c).
-- No apply that decided on the 1.0 path may overlap this upgrade: every apply
-- takes ROW EXCLUSIVE on sharecount.applied_jobs before it looks at the schema.
LOCK TABLE sharecount.applied_jobs IN ACCESS EXCLUSIVE MODE;
COMMENT ON TABLE sharecount.applied_jobs IS
	'1.0 dedupe records: still read for foreign jobIds until sharecount_prune() empties it; TRUNCATE forgets every dedupe record';

-- Dense jobIds ("<16 hex>-<n>"): a bit per job, 4,096 jobs per 512-byte row,
-- updated in place (HOT: bits and n are not indexed, and day changes at most
-- once a day).
CREATE TABLE sharecount.dedupe_dense (
	origin bigint NOT NULL,				-- the 16 hex digits as 64 bits
	block bigint NOT NULL,				-- n / 4096
	n int NOT NULL DEFAULT 0,			-- bits set
	day date NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,	-- UTC day of the last write: pruned whole after it
	bits bytea NOT NULL,				-- 512 bytes, bit n % 4096 (LSB first)
	PRIMARY KEY (origin, block)
) WITH (fillfactor = 75);
CREATE INDEX ON sharecount.dedupe_dense (day);

-- Foreign jobIds: MD5 (16 bytes) in 65,536 buckets (its first two bytes).
-- Today's: one head row per bucket, the bucket's lock.  New hashes go in
-- front, so a HOT update logs little more than them (heap_update's
-- prefix/suffix compression); fillfactor leaves room for the row to grow.
CREATE TABLE sharecount.dedupe_foreign_head (
	bucket int PRIMARY KEY,
	day date NOT NULL,					-- the UTC day of its hashes
	hashes bytea NOT NULL				-- 16-byte hashes, newest first
) WITH (fillfactor = 70);
CREATE INDEX ON sharecount.dedupe_foreign_head (day);
-- Earlier days: a head's hashes move here as one packed row when its bucket is
-- first written on a later day; never updated; partitioned by day slot
-- ((day - 2000-01-01) mod 16), so that pruning a day truncates its partition.
CREATE TABLE sharecount.dedupe_foreign (
	slot smallint NOT NULL,
	day date NOT NULL,
	bucket int NOT NULL,
	hashes bytea NOT NULL,
	PRIMARY KEY (bucket, day, slot)
) PARTITION BY LIST (slot);
DO $d$
BEGIN
	FOR i IN 0..15 LOOP
		EXECUTE format('CREATE TABLE sharecount.dedupe_foreign_%s PARTITION OF sharecount.dedupe_foreign '
			'FOR VALUES IN (%s)', i, i);
		EXECUTE format('CREATE INDEX ON sharecount.dedupe_foreign_%s (day)', i);
		PERFORM pg_catalog.pg_extension_config_dump(format('sharecount.dedupe_foreign_%s', i), '');
	END LOOP;
END
$d$;
-- How many hashes each past day holds, sharded like stats (written when heads
-- move a day into its partition): prune's count, without a scan.
CREATE TABLE sharecount.dedupe_days (
	day date NOT NULL,
	shard int NOT NULL,
	records bigint NOT NULL,
	PRIMARY KEY (day, shard)
);
SELECT pg_catalog.pg_extension_config_dump('sharecount.dedupe_days', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.dedupe_dense', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.dedupe_foreign_head', '');

-- O(1) stats: dedupe records counted as they are written and pruned.
ALTER TABLE sharecount.stats ADD COLUMN dedupe_records bigint NOT NULL DEFAULT 0;
-- (no row on a fresh install: a restore's COPY of stats would collide with it)
INSERT INTO sharecount.stats AS s (shard, dedupe_records)
	SELECT -1, count(*) FROM sharecount.applied_jobs HAVING count(*) > 0
	ON CONFLICT (shard) DO UPDATE SET dedupe_records = s.dedupe_records + excluded.dedupe_records;

-- TRUNCATE sharecount.applied_jobs keeps its 1.0 meaning: forget every dedupe
-- record (all structures; the counter follows).
CREATE FUNCTION sharecount._dedupe_truncate() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	TRUNCATE sharecount.dedupe_dense, sharecount.dedupe_foreign_head, sharecount.dedupe_foreign,
		sharecount.dedupe_days;
	UPDATE sharecount.stats SET dedupe_records = 0 WHERE dedupe_records <> 0;
	RETURN NULL;
END
$f$;
REVOKE ALL ON FUNCTION sharecount._dedupe_truncate() FROM PUBLIC;
CREATE TRIGGER dedupe_truncate BEFORE TRUNCATE ON sharecount.applied_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION sharecount._dedupe_truncate();

-- sharecount_prune() for this state is defined once, at the end of this script
-- (sharecount._prune_dedupe, with the sealed days' filters).

CREATE OR REPLACE FUNCTION sharecount_stats() RETURNS jsonb
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
	SELECT jsonb_build_object(
		'outbox_depth', (SELECT count(*) FROM sharecount.outbox),
		'outbox_oldest_age_seconds', (SELECT coalesce(round(extract(epoch FROM now() - min(created_at)), 3), 0)
			FROM sharecount.outbox),
		'keys_counted', (SELECT count(*) FROM sharecount.counts),
		'jobs_applied', s.applied,
		'duplicates', s.dups,
		'invalid', s.invalid,
		'dedupe_records', s.records,
		'tracked_tables', (SELECT count(*) FROM sharecount.tracked t JOIN pg_class c ON c.oid = t.tbl))
	FROM (SELECT coalesce(sum(jobs_applied), 0) AS applied, coalesce(sum(duplicates), 0) AS dups,
		coalesce(sum(invalid), 0) AS invalid, coalesce(sum(dedupe_records), 0) AS records
		FROM sharecount.stats) s;
$f$;

-- ------------------------------------------------------- #14 events ----
-- Per-key versions for count-change events and caches (docs/live.md, "The
-- event"; src/apply.c): every apply that changes a key's count (its net delta
-- in the batch is not 0) adds exactly 1 to the key's version, and so does a
-- sharecount_recount() that changes it; a version never decreases.  Existing
-- keys start at 0 (a constant default: no table rewrite).
ALTER TABLE sharecount.counts ADD COLUMN version bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN sharecount.counts.version IS
	'+1 with every transaction that changes share_count (apply batch, recount); never decreases';

-- sharecount_apply_batch() plus, in the same call and transaction, one row
-- per key whose count changed: (NULL, 'changed', NULL, type, id, count,
-- delta, version), from the counts upsert itself.  Used by the consumer.
CREATE FUNCTION sharecount_apply_batch_changes(messages jsonb[])
	RETURNS TABLE (ord int, status text, error text, content_type text, content_id text,
		share_count bigint, delta bigint, version bigint)
	AS 'MODULE_PATHNAME', 'sharecount_apply_batch_changes'
	LANGUAGE C STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION sharecount_apply_batch_changes(jsonb[]) FROM PUBLIC;

-- Counts with their versions, for caches (the HTTP role): readable like
-- sharecount_get_many.
CREATE FUNCTION sharecount_get_versioned(content_type text, content_ids text[])
	RETURNS TABLE (content_id text, share_count bigint, version bigint)
	AS 'MODULE_PATHNAME', 'sharecount_get_versioned' LANGUAGE C STABLE PARALLEL SAFE STRICT ROWS 10;

-- ------------------------------------------------------- #15 trends ----
-- Breakdowns per channel and campaign, hourly history and trending keys
-- (docs/extension.md, "Channels and trends"; src/trends.c).  The apply path
-- (sharecount_apply*) adds each batch's deltas: one row write per
-- (key, dimension, value) and per (key, hour) per batch.

-- Counts per key and value of a dimension ('channel' or 'campaign'); value
-- NULL = unattributed.  Per key and dimension the values sum to the count of
-- the jobs applied since 1.1 plus the backfill below.
CREATE TABLE sharecount.breakdown (
	content_type text COLLATE "C" NOT NULL,
	content_id text COLLATE "C" NOT NULL,
	dimension text COLLATE "C" NOT NULL CHECK (dimension IN ('channel', 'campaign')),
	value text COLLATE "C",				-- NULL = unattributed
	share_count bigint NOT NULL DEFAULT 0,
	CONSTRAINT breakdown_key UNIQUE NULLS NOT DISTINCT (content_type, content_id, dimension, value)
) WITH (fillfactor = 80);

-- Net shares (share_created - share_deleted) per key and UTC hour of the
-- jobs' timestamps.  Rows older than sharecount.history_retention are removed
-- by sharecount_prune().
CREATE TABLE sharecount.history (
	content_type text COLLATE "C" NOT NULL,
	content_id text COLLATE "C" NOT NULL,
	hour timestamptz NOT NULL,			-- the UTC hour's start
	shares bigint NOT NULL,
	PRIMARY KEY (content_type, content_id, hour)
) WITH (fillfactor = 80);
CREATE INDEX history_type_hour ON sharecount.history (content_type, hour);
-- prune's range: rows arrive roughly in hour order, so a BRIN finds the
-- expired ones without a scan (and, hour never being updated, keeps HOT)
CREATE INDEX history_hour ON sharecount.history USING brin (hour);

-- The trailing window of sharecount_top() (src/trends_window.c): per key, the
-- net shares of the history hours from trend_clock.window_start on (the UTC
-- hours overlapping the last 24 hours, moved by the apply path each hour).  A
-- cache of history: not dumped; rebuilt when trend_clock has no row.
CREATE TABLE sharecount.trend_window (
	content_type text COLLATE "C" NOT NULL,
	content_id text COLLATE "C" NOT NULL,
	shares bigint NOT NULL,
	PRIMARY KEY (content_type, content_id)
);
CREATE INDEX trend_window_rank ON sharecount.trend_window (content_type, shares DESC, content_id);
CREATE TABLE sharecount.trend_clock (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	window_start timestamptz NOT NULL
);

-- Set by this upgrade on a database that already tracked tables: a job with
-- a UUID jobId (release 1.0's trigger) and a timestamp before legacy_before
-- was written before the breakdown backfill below, which already holds its
-- row's effect, so it changes counts and history but not breakdowns.  No row
-- (a fresh install): no job is legacy.
CREATE TABLE sharecount.trends_state (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	legacy_before timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('sharecount.breakdown', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.history', '');
SELECT pg_catalog.pg_extension_config_dump('sharecount.trends_state', '');

-- Internal: COUNT(*) of the countable rows per key, channel and campaign and
-- tracked table, each table counted as its owner over ONLY itself
-- (src/counts.c); channel/campaign NULL when unmapped.  NULL, NULL: every key.
CREATE FUNCTION sharecount._actual_breakdown(content_type text, content_id text)
	RETURNS TABLE (content_type text, content_id text, channel text, campaign text, n bigint)
	AS 'MODULE_PATHNAME', 'sharecount_actual_breakdown' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION sharecount._actual_breakdown(text, text) FROM PUBLIC;

-- Internal: the backfill of sharecount_track() and the take-back of
-- sharecount_untrack(), now per key, channel and campaign (the jobs carry
-- channelId/campaignId), so breakdowns stay exact.
DROP FUNCTION sharecount._enqueue_counts(regclass, name, name, text);
CREATE FUNCTION sharecount._enqueue_counts(tbl regclass, content_type_column name,
		content_id_column name, operation text, channel_id_column name, campaign_id_column name)
	RETURNS bigint AS 'MODULE_PATHNAME', 'sharecount_enqueue_counts' LANGUAGE C;
REVOKE ALL ON FUNCTION sharecount._enqueue_counts(regclass, name, name, text, name, name) FROM PUBLIC;

-- Internal: breakdown rows that differ from the tracked rows (sharecount_verify
-- and sharecount_verify_breakdown); counted = the stored value, actual = the
-- rows; value NULL = unattributed.  Keys holding no breakdown row at all
-- (nothing applied since the upgrade) compare as 0.
CREATE FUNCTION sharecount._breakdown_diff()
	RETURNS TABLE (content_type text, content_id text, dimension text, value text, counted bigint, actual bigint)
	LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
	WITH x AS MATERIALIZED (
		SELECT a.content_type COLLATE "C" AS ct, a.content_id COLLATE "C" AS ci,
			a.channel COLLATE "C" AS ch, a.campaign COLLATE "C" AS cp, a.n
		FROM sharecount._actual_breakdown(NULL, NULL) a),
	act AS (
		SELECT x.ct, x.ci, 'channel'::text COLLATE "C" AS dim, x.ch AS val, sum(x.n)::bigint AS n FROM x GROUP BY 1, 2, 4
		UNION ALL
		SELECT x.ct, x.ci, 'campaign', x.cp, sum(x.n)::bigint FROM x GROUP BY 1, 2, 4)
	SELECT coalesce(b.content_type, act.ct)::text, coalesce(b.content_id, act.ci)::text,
		coalesce(b.dimension, act.dim)::text, CASE WHEN b.content_type IS NOT NULL THEN b.value ELSE act.val END::text,
		coalesce(b.share_count, 0), coalesce(act.n, 0)
	FROM (SELECT * FROM sharecount.breakdown WHERE share_count <> 0) b FULL JOIN act
		ON b.content_type = act.ct AND b.content_id = act.ci AND b.dimension = act.dim
		AND (b.value IS NULL) = (act.val IS NULL) AND coalesce(b.value, '') = coalesce(act.val, '')
	WHERE coalesce(b.share_count, 0) <> coalesce(act.n, 0)
$f$;
REVOKE ALL ON FUNCTION sharecount._breakdown_diff() FROM PUBLIC;

CREATE FUNCTION sharecount_verify_breakdown(max int DEFAULT 100)
	RETURNS TABLE (content_type text, content_id text, dimension text, value text, counted bigint, actual bigint)
	LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	IF max < 1 THEN
		RAISE EXCEPTION 'max must be at least 1' USING ERRCODE = '22023', HINT = 'Pass a positive limit.';
	END IF;
	RETURN QUERY SELECT d.* FROM sharecount._breakdown_diff() d
		ORDER BY 1, 2, 3, 4 NULLS FIRST LIMIT sharecount_verify_breakdown.max;
END
$f$;

-- The dimension's name checked (22023 with a hint).
CREATE FUNCTION sharecount._check_dimension(dimension text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	IF dimension IS NULL OR dimension NOT IN ('channel', 'campaign') THEN
		RAISE EXCEPTION 'unknown dimension "%"', dimension USING ERRCODE = '22023',
			HINT = 'The dimension is ''channel'' or ''campaign''.';
	END IF;
	RETURN dimension;
END
$f$;

CREATE FUNCTION sharecount_get_breakdown(content_type text, content_id text, dimension text DEFAULT 'channel')
	RETURNS TABLE (value text, share_count bigint)
	LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM sharecount._check_dimension(dimension);
	RETURN QUERY SELECT b.value::text, b.share_count FROM sharecount.breakdown b
		WHERE b.content_type = sharecount_get_breakdown.content_type
			AND b.content_id = sharecount_get_breakdown.content_id
			AND b.dimension = sharecount_get_breakdown.dimension AND b.share_count > 0
		ORDER BY b.share_count DESC, b.value NULLS LAST;
END
$f$;

CREATE FUNCTION sharecount_history(content_type text, content_id text, since timestamptz,
		until timestamptz DEFAULT now(), bucket text DEFAULT 'hour')
	RETURNS TABLE (bucket_start timestamptz, shares bigint)
	LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	IF bucket NOT IN ('hour', 'day') THEN
		RAISE EXCEPTION 'unknown bucket "%"', bucket USING ERRCODE = '22023',
			HINT = 'The bucket is ''hour'' or ''day''.';
	END IF;
	IF since > until THEN
		RAISE EXCEPTION 'since (%) is after until (%)', since, until USING ERRCODE = '22023',
			HINT = 'Pass since <= until.';
	END IF;
	-- buckets overlapping [since, until): UTC hours or days
	RETURN QUERY SELECT date_trunc(bucket, h.hour, 'UTC') AS b, sum(h.shares)::bigint
		FROM sharecount.history h
		WHERE h.content_type = sharecount_history.content_type AND h.content_id = sharecount_history.content_id
			AND h.hour >= date_trunc(bucket, since, 'UTC') AND h.hour < until
		GROUP BY 1 HAVING sum(h.shares) <> 0 ORDER BY 1;
END
$f$;

CREATE FUNCTION sharecount_top(content_type text, since interval DEFAULT '24 hours', n int DEFAULT 10)
	RETURNS TABLE (content_id text, shares bigint)
	LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	cutoff timestamptz;					-- the first UTC hour of the window
	ws timestamptz;
BEGIN
	IF since <= interval '0' THEN
		RAISE EXCEPTION 'window must be positive' USING ERRCODE = '22023', HINT = 'Pass e.g. ''24 hours''.';
	END IF;
	IF n NOT BETWEEN 1 AND 100 THEN
		RAISE EXCEPTION 'n must be 1 to 100' USING ERRCODE = '22023', HINT = 'Ask for at most 100 keys.';
	END IF;
	-- the UTC hours overlapping [now() - since, now()]
	cutoff := date_trunc('hour', now() - since, 'UTC');
	SELECT c.window_start INTO ws FROM sharecount.trend_clock c;
	IF ws IS NULL OR cutoff < ws OR cutoff > ws + interval '3 hours' THEN
		-- no trailing window that fits: sum the window's history
		RETURN QUERY SELECT h.content_id::text, sum(h.shares)::bigint
			FROM sharecount.history h
			WHERE h.content_type = sharecount_top.content_type AND h.hour >= cutoff
			GROUP BY 1 HAVING sum(h.shares) > 0 ORDER BY 2 DESC, 1 LIMIT n;
		RETURN;
	END IF;
	-- trend_window covers [ws, ...): take out the hours [ws, cutoff).  Keys
	-- without such hours keep their order, so the first n + |e| by
	-- (shares DESC, content_id) of the window, with e's keys, hold the answer.
	RETURN QUERY
		WITH e AS MATERIALIZED (
			SELECT h.content_id, sum(h.shares) AS s FROM sharecount.history h
			WHERE h.content_type = sharecount_top.content_type AND h.hour >= ws AND h.hour < cutoff
			GROUP BY 1 HAVING sum(h.shares) <> 0),
		cand AS (
			(SELECT w.content_id, w.shares FROM sharecount.trend_window w
				WHERE w.content_type = sharecount_top.content_type
				ORDER BY w.shares DESC, w.content_id LIMIT n + (SELECT count(*) FROM e))
			UNION
			SELECT w.content_id, w.shares FROM sharecount.trend_window w JOIN e ON e.content_id = w.content_id
				WHERE w.content_type = sharecount_top.content_type)
		SELECT c.content_id::text, (c.shares - coalesce(e.s, 0))::bigint
		FROM cand c LEFT JOIN e ON e.content_id = c.content_id
		WHERE c.shares - coalesce(e.s, 0) > 0
		ORDER BY 2 DESC, 1 LIMIT n;
END
$f$;

-- History retention: the custom setting sharecount.history_retention (an
-- interval, default 90 days), read when sharecount_prune() runs: one DELETE
-- of the expired hours, found through the BRIN index history_hour.
CREATE FUNCTION sharecount._prune_history() RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	setting text := nullif(current_setting('sharecount.history_retention', true), '');
	retention interval;
	k bigint;
BEGIN
	BEGIN
		retention := coalesce(setting, '90 days')::interval;
	EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR syntax_error THEN
		RAISE EXCEPTION 'sharecount.history_retention must be an interval, not "%"', setting
			USING ERRCODE = '22023', HINT = 'Set it to e.g. ''90 days''.';
	END;
	IF retention <= interval '0' THEN
		RAISE EXCEPTION 'sharecount.history_retention must be positive, not "%"', setting
			USING ERRCODE = '22023', HINT = 'Set it to e.g. ''90 days''.';
	END IF;
	DELETE FROM sharecount.history h WHERE h.hour < now() - retention;
	GET DIAGNOSTICS k = ROW_COUNT;
	RETURN k;
END
$f$;
REVOKE ALL ON FUNCTION sharecount._prune_history() FROM PUBLIC;

-- TRUNCATE sharecount.counts forgets every count: the breakdowns and the
-- history go with them.
CREATE FUNCTION sharecount._trends_truncate() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	TRUNCATE sharecount.breakdown, sharecount.history, sharecount.trend_window, sharecount.trend_clock;
	RETURN NULL;
END
$f$;
REVOKE ALL ON FUNCTION sharecount._trends_truncate() FROM PUBLIC;
CREATE TRIGGER trends_truncate BEFORE TRUNCATE ON sharecount.counts
	FOR EACH STATEMENT EXECUTE FUNCTION sharecount._trends_truncate();

REVOKE ALL ON FUNCTION sharecount_verify_breakdown(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION sharecount._check_dimension(text) FROM PUBLIC;

-- Backfill: the breakdowns of every tracked row (the outbox is locked above,
-- so no tracked write is in flight); jobs written by 1.0 before this point
-- are legacy (see trends_state).
WITH a AS MATERIALIZED (SELECT * FROM sharecount._actual_breakdown(NULL, NULL))
INSERT INTO sharecount.breakdown (content_type, content_id, dimension, value, share_count)
	SELECT a.content_type, a.content_id, 'channel', a.channel, sum(a.n) FROM a GROUP BY 1, 2, 4
	UNION ALL
	SELECT a.content_type, a.content_id, 'campaign', a.campaign, sum(a.n) FROM a GROUP BY 1, 2, 4;
INSERT INTO sharecount.trends_state (legacy_before)
	SELECT clock_timestamp() WHERE EXISTS (SELECT FROM sharecount.tracked);

-- --------------------------------------- #13 P8: sealed days' filters ----
-- A sealed day (docs/extension.md, "Dedupe"; src/dedupe_filter.c): once a day
-- has ended, sharecount_prune() builds a Bloom filter per group of 16 buckets
-- from all of the day's rows in dedupe_foreign, so that looking up a new
-- foreign jobId reads the small filter row of each sealed day, and the day's
-- row only when the filter says "maybe" (~1 % of the time).
-- Filters are never updated and are partitioned by day slot like
-- dedupe_foreign: a day's filters go with its partition (TRUNCATE).
CREATE TABLE sharecount.dedupe_filter (
	slot smallint NOT NULL,				-- (day - 2000-01-01) mod 16
	day date NOT NULL,
	grp int NOT NULL,					-- the hashes' first 12 bits (16 buckets)
	bits bytea NOT NULL,				-- 10 bits per hash of the day, 7 probes
	PRIMARY KEY (grp, day, slot)
) PARTITION BY LIST (slot);
DO $d$
BEGIN
	FOR i IN 0..15 LOOP
		EXECUTE format('CREATE TABLE sharecount.dedupe_filter_%s PARTITION OF sharecount.dedupe_filter '
			'FOR VALUES IN (%s)', i, i);
		PERFORM pg_catalog.pg_extension_config_dump(format('sharecount.dedupe_filter_%s', i), '');
	END LOOP;
END
$d$;
-- The sealed days.  A sealed day never gets another row in dedupe_foreign (a
-- head still holding it moves its hashes to a later day instead), so its
-- filters cover the day for good: a batch that may move a head's day into a
-- partition takes ROW EXCLUSIVE on this table before it decides, sealing takes
-- SHARE ROW EXCLUSIVE before it reads the day.
CREATE TABLE sharecount.dedupe_sealed (
	day date PRIMARY KEY,
	hashes bigint NOT NULL				-- the hashes its filters were built from
);
SELECT pg_catalog.pg_extension_config_dump('sharecount.dedupe_sealed', '');

-- Internal: seal a day that has ended (UTC); returns its number of hashes (0
-- if it holds none or is sealed already).
CREATE FUNCTION sharecount._dedupe_seal(day date) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sharecount_dedupe_seal' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION sharecount._dedupe_seal(date) FROM PUBLIC;

CREATE OR REPLACE FUNCTION sharecount._dedupe_truncate() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	TRUNCATE sharecount.dedupe_dense, sharecount.dedupe_foreign_head, sharecount.dedupe_foreign,
		sharecount.dedupe_days, sharecount.dedupe_filter, sharecount.dedupe_sealed;
	UPDATE sharecount.stats SET dedupe_records = 0 WHERE dedupe_records <> 0;
	RETURN NULL;
END
$f$;

-- The dedupe part of sharecount_prune(): whole dense blocks whose last write
-- is older than the window, whole day partitions (TRUNCATE, with their
-- filters) of days that ended before it, heads holding such a day, and 1.0
-- records older than it; then seals every day that has ended and is kept.
-- Subtracts what it removed from the dedupe_records counter and returns it.
CREATE FUNCTION sharecount._prune_dedupe(cutoff timestamptz) RETURNS bigint
	LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	cutoff_day date := (cutoff AT TIME ZONE 'UTC')::date;	-- days before it ended before the cutoff
	n bigint := 0;
	k bigint;
	s int;
	d date;
BEGIN
	-- dense blocks, locked in key order as apply does
	WITH gone AS (
		DELETE FROM sharecount.dedupe_dense b WHERE (b.origin, b.block) IN (
			SELECT x.origin, x.block FROM sharecount.dedupe_dense x WHERE x.day < cutoff_day
			ORDER BY 1, 2 FOR UPDATE)
		RETURNING b.n)
	SELECT coalesce(sum(gone.n), 0) INTO k FROM gone;
	n := n + k;
	-- heads still holding a day that ended before the cutoff
	WITH gone AS (
		UPDATE sharecount.dedupe_foreign_head h SET hashes = ''::bytea
		FROM (SELECT x.bucket, octet_length(x.hashes) AS len FROM sharecount.dedupe_foreign_head x
			WHERE x.day < cutoff_day AND octet_length(x.hashes) > 0 ORDER BY 1 FOR UPDATE) o
		WHERE h.bucket = o.bucket
		RETURNING o.len)
	SELECT coalesce(sum(gone.len), 0) / 16 INTO k FROM gone;
	n := n + k;
	-- past days: a partition goes whole (TRUNCATE) when every day it holds
	-- ended before the cutoff; dedupe_days says which days, and how many hashes
	FOR s IN SELECT DISTINCT (x.day - date '2000-01-01') % 16 FROM sharecount.dedupe_days x
			WHERE x.day < cutoff_day ORDER BY 1 LOOP
		IF EXISTS (SELECT FROM sharecount.dedupe_days x
				WHERE x.day >= cutoff_day AND (x.day - date '2000-01-01') % 16 = s) THEN
			-- a window over 15 days: this slot also holds a live day
			EXECUTE format('DELETE FROM sharecount.dedupe_foreign_%s f WHERE f.day < $1', s) USING cutoff_day;
			EXECUTE format('DELETE FROM sharecount.dedupe_filter_%s f WHERE f.day < $1', s) USING cutoff_day;
		ELSE
			EXECUTE format('TRUNCATE sharecount.dedupe_foreign_%s, sharecount.dedupe_filter_%s', s, s);
		END IF;
	END LOOP;
	WITH gone AS (DELETE FROM sharecount.dedupe_days x WHERE x.day < cutoff_day RETURNING x.records)
	SELECT coalesce(sum(gone.records), 0) INTO k FROM gone;
	n := n + k;
	DELETE FROM sharecount.dedupe_sealed x WHERE x.day < cutoff_day;
	-- 1.0's records (never written again)
	DELETE FROM sharecount.applied_jobs a WHERE a.applied_at < cutoff;
	GET DIAGNOSTICS k = ROW_COUNT;
	n := n + k;
	IF n > 0 THEN
		INSERT INTO sharecount.stats AS st (shard, dedupe_records) VALUES (-1, -n)
			ON CONFLICT (shard) DO UPDATE SET dedupe_records = st.dedupe_records + excluded.dedupe_records;
	END IF;
	-- last, after every row lock this takes: sealing waits for (and then
	-- blocks) batches moving a day into a partition, which hold head locks
	FOR d IN SELECT DISTINCT x.day FROM sharecount.dedupe_days x
			WHERE x.day >= cutoff_day AND x.day < (now() AT TIME ZONE 'UTC')::date
				AND NOT EXISTS (SELECT FROM sharecount.dedupe_sealed y WHERE y.day = x.day)
			ORDER BY 1 LOOP
		PERFORM sharecount._dedupe_seal(d);
	END LOOP;
	RETURN n;
END
$f$;
REVOKE ALL ON FUNCTION sharecount._prune_dedupe(timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION sharecount_prune(older_than interval DEFAULT '7 days') RETURNS bigint
	LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
	n bigint;
BEGIN
	IF older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must not be negative' USING ERRCODE = '22023',
			HINT = 'Pass the redelivery window, e.g. ''7 days''.';
	END IF;
	n := sharecount._prune_dedupe(now() - older_than);
	PERFORM sharecount._prune_history();	-- #15: history past sharecount.history_retention
	RETURN n;
END
$f$;

-- ------------------------------------- #13 P7: the consumer's batch as text ----
-- sharecount_apply_batch_changes() for the messages of one JSON array given
-- as text (what the bridge's consumer sends), read without building a jsonb
-- per message (src/jobjson.c); the change rows only with with_changes.
-- Same statuses and errors as the jsonb[] functions for the same messages.
-- With applied_rows false (the bridge's call), an applied message gets no
-- row: one row (ord NULL, status 'applied', share_count = their number) ends
-- the result instead, so that a row missing by mistake is still noticed.
CREATE FUNCTION sharecount_apply_json(messages text, with_changes boolean,
		applied_rows boolean DEFAULT true)
	RETURNS TABLE (ord int, status text, error text, content_type text, content_id text,
		share_count bigint, delta bigint, version bigint)
	AS 'MODULE_PATHNAME', 'sharecount_apply_json'
	LANGUAGE C STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION sharecount_apply_json(text, boolean, boolean) FROM PUBLIC;
