-- SQL-level fuzz of sharecount_apply / sharecount_apply_batch (docs/fuzzing.md):
-- 8,000 valid, mutated, byte-mutated and random JSON documents made
-- from a fixed seed (setseed + random(), so every run sees the same ones).
-- Each result is compared with a model written from docs/extension.md
-- ("Validation"): a valid job is applied once (then duplicate), an invalid
-- one is SQLSTATE 22023 / status invalid and changes nothing.  At the end the
-- counts, dedupe records and stats moved exactly by what the model applied.
-- Another seed: psql -v fuzz_seed=N -f test/sql/fuzz_apply.sql (then only
-- the seed and the tallies differ from test/expected/fuzz_apply.out).
-- Runs in a database of its own, made here and dropped at the end (keep
-- that last): its jobIds must not have been applied before, in any order.
\set regress_db :DBNAME
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sc_fuzz_apply;
RESET client_min_messages;
CREATE DATABASE regress_sc_fuzz_apply;
\c regress_sc_fuzz_apply
CREATE EXTENSION sharecount;
\if :{?fuzz_seed}
\else
\set fuzz_seed 20261202
\endif
SELECT :fuzz_seed AS seed FROM (SELECT setseed((:fuzz_seed % 1000003) / 1000003.0)) s;

-- the generator and the model (not echoed: see test/sql/fuzz_apply.sql)
\set ECHO none
CREATE TEMP TABLE fz_before AS SELECT content_type, content_id, share_count FROM sharecount.counts;
CREATE TEMP TABLE fz_stats_before AS
	SELECT coalesce(sum(jobs_applied), 0) AS a, coalesce(sum(duplicates), 0) AS d,
		coalesce(sum(invalid), 0) AS i, (SELECT coalesce(sum(dedupe_records), 0) FROM sharecount.stats) AS ids
	FROM sharecount.stats;
CREATE TEMP TABLE fz_applied (job_id text COLLATE "C" PRIMARY KEY);	-- model: jobIds applied
CREATE TEMP TABLE fz_delta (content_type text COLLATE "C", content_id text COLLATE "C",
	delta bigint, PRIMARY KEY (content_type, content_id));				-- model: net delta per key
CREATE TEMP TABLE fz_bad (n int, via text, doc jsonb, expected text, got text);
CREATE TEMP TABLE fz_tally (what text PRIMARY KEY, n int);

CREATE FUNCTION fz_int(n int) RETURNS int LANGUAGE sql AS $$ SELECT floor(random() * n)::int $$;
CREATE FUNCTION fz_pick(a text[]) RETURNS text LANGUAGE sql AS $$
	SELECT a[1 + floor(random() * cardinality(a))::int] $$;
CREATE FUNCTION fz_pickj(a jsonb[]) RETURNS jsonb LANGUAGE sql AS $$
	SELECT a[1 + floor(random() * cardinality(a))::int] $$;
CREATE FUNCTION fz_count(what text) RETURNS void LANGUAGE sql AS $$
	INSERT INTO fz_tally VALUES (what, 1) ON CONFLICT (what) DO UPDATE SET n = fz_tally.n + 1 $$;

-- value pools: valid ones, limits (64/128/256 bytes, multi-byte), and broken ones
CREATE FUNCTION fz_ctype() RETURNS text LANGUAGE sql AS $$
	SELECT CASE fz_int(4) WHEN 0 THEN 'fz' || repeat('é', 29 + fz_int(4))	-- 60 to 68 bytes
		ELSE fz_pick(ARRAY['fz_article', 'fz_post', 'fz_é', 'fz_' || repeat('t', 61), 'fz_😀', 'fz "q"',
			'fz\b', 'fz_' || repeat('é', 30) || 'x']) END $$;
CREATE FUNCTION fz_cid() RETURNS text LANGUAGE sql AS $$
	SELECT CASE fz_int(5) WHEN 0 THEN repeat('ü', 126 + fz_int(4))			-- 252 to 258 bytes
		ELSE fz_pick(ARRAY['1', '2', '3', 'x y', repeat('i', 256), '"', 'ሴ', '0', '-1', fz_int(20)::text]) END $$;
CREATE FUNCTION fz_jobid() RETURNS text LANGUAGE sql AS $$
	SELECT CASE fz_int(12) WHEN 0 THEN repeat('j', 128) WHEN 1 THEN repeat('é', 62 + fz_int(4))
		WHEN 2 THEN 'fz-' || fz_int(40) ELSE 'fz-' || fz_int(100000) END $$;
-- a timestamp: one of the documented forms, or one built from edge values (the model decides)
CREATE FUNCTION fz_time() RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN fz_int(3) > 0 THEN fz_pick(ARRAY['2026-11-27T20:15:03.123Z', '2026-11-27 20:15',
		'2024-02-29T23:59:60+05:30', '2026-01-01t00:00:00,5z', '0000-02-29T00:00Z',
		'2026-12-31T23:59:59.999999999-0800', '2026-06-15T12:00:00+23', '2026-11-27T20:15:03'])
	ELSE fz_pick(ARRAY['0000', '1900', '2000', '2023', '2024', '9999']) || '-' || lpad(fz_int(14)::text, 2, '0')
		|| '-' || lpad(fz_int(33)::text, 2, '0') || fz_pick(ARRAY['T', 't', ' ', '_'])
		|| lpad(fz_int(25)::text, 2, '0') || ':' || lpad(fz_int(61)::text, 2, '0')
		|| fz_pick(ARRAY['', ':' || lpad(fz_int(62)::text, 2, '0'),
			':' || lpad(fz_int(62)::text, 2, '0') || fz_pick(ARRAY['.1', '.123456789', ',5', '.', '.x'])])
		|| fz_pick(ARRAY['', 'Z', 'z', '+05:30', '-0800', '+23', '+24:00', '+05:', 'Z ', '+05:60', '-00:00', '+5'])
	END $$;
CREATE FUNCTION fz_bad_string() RETURNS jsonb LANGUAGE sql AS $$
	SELECT to_jsonb(fz_pick(ARRAY['', repeat('x', 65), repeat('x', 129), repeat('x', 257), repeat('é', 33),
		repeat('é', 65), repeat('ü', 129), '2026-02-29T00:00Z', '2026-11-27T24:00Z', '2026-11-27',
		'2026-11-27T20:15:03.Z', '2026-11-27T20:15+05:', '2026-13-01T00:00Z', '2026-11-27T20:15Z ',
		'2026-11-27T20:15:03.123ZZ', '٢٠٢٦-11-27T20:15Z', '2026-11-27T20:15:61Z', '2026-11-27T20:15+24:00',
		'2026-04-31T00:00Z', '1900-02-29T00:00Z', '2026-1-27T20:15Z', 'Increment', 'decrement ',
		'share_created', 'SHARE_DELETED', 'share_count_update', '\u0001', 'null', '1'])) $$;
CREATE FUNCTION fz_number() RETURNS jsonb LANGUAGE sql AS $$
	SELECT fz_pick(ARRAY['0', '-1', '1', '2', '1000000', '1000001', '2.5', '1e12', '1e6', '1e3',
		'1000000.0', '-0', '0.1e1', '1e-16383', '99999999999999999999', '7.00', '1E+2',
		(1 + fz_int(1000000))::text])::jsonb $$;

-- any JSON value, keys from the job vocabulary
CREATE FUNCTION fz_any(depth int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	v jsonb;
	k int;
BEGIN
	CASE fz_int(CASE WHEN depth > 0 THEN 8 ELSE 6 END)
		WHEN 0 THEN RETURN 'null';
		WHEN 1 THEN RETURN to_jsonb(fz_int(2) = 1);
		WHEN 2 THEN RETURN fz_number();
		WHEN 3 THEN RETURN fz_bad_string();
		WHEN 4 THEN RETURN to_jsonb(fz_pick(ARRAY[fz_ctype(), fz_cid(), fz_jobid(), fz_time()]));
		WHEN 5 THEN RETURN to_jsonb(fz_pick(ARRAY['share_created', 'share_deleted', 'share_count_update',
			'increment', 'decrement']));
		WHEN 6 THEN
			v := '[]';
			FOR k IN 1..fz_int(4) LOOP v := v || jsonb_build_array(fz_any(depth - 1)); END LOOP;
			RETURN v;
		ELSE
			v := '{}';
			FOR k IN 1..fz_int(6) LOOP
				v := v || jsonb_build_object(fz_pick(ARRAY['pattern', 'data', 'id', 'jobId', 'shareId',
					'contentType', 'contentId', 'userId', 'channelId', 'campaignId', 'timestamp',
					'operation', 'amount', 'x', '', 'JobId', ' jobId']), fz_any(depth - 1));
			END LOOP;
			RETURN v;
	END CASE;
END $$;

-- a valid job of docs/extension.md ("Jobs")
CREATE FUNCTION fz_valid() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	p text := fz_pick(ARRAY['share_created', 'share_deleted', 'share_count_update']);
	d jsonb := jsonb_build_object('jobId', fz_jobid(), 'contentType', fz_ctype(), 'contentId', fz_cid(),
		'timestamp', fz_time());
	m jsonb;
BEGIN
	IF p = 'share_count_update' THEN
		d := d || jsonb_build_object('operation', fz_pick(ARRAY['increment', 'decrement']));
		CASE fz_int(7)
			WHEN 0 THEN NULL;
			WHEN 6 THEN d := d || jsonb_build_object('amount', fz_number());
			WHEN 1 THEN d := d || '{"amount": null}';
			WHEN 2 THEN d := d || jsonb_build_object('amount', 1 + fz_int(1000000));
			ELSE d := d || jsonb_build_object('amount', fz_pickj(ARRAY['1', '1000000', '1e3', '0.1e1', '1E+2',
				'3']::jsonb[]));
		END CASE;
	ELSE
		d := d || jsonb_build_object('shareId', CASE WHEN fz_int(4) = 0 THEN NULL ELSE 's' || fz_int(99) END,
			'userId', CASE WHEN fz_int(4) = 0 THEN NULL ELSE fz_pick(ARRAY['u1', repeat('u', 300), '']) END);
		IF p = 'share_created' AND fz_int(2) = 0 THEN
			d := d || jsonb_build_object('channelId', fz_pick(ARRAY['twitter', NULL, repeat('c', 500)]));
		END IF;
		IF p = 'share_created' AND fz_int(2) = 0 THEN
			d := d || jsonb_build_object('campaignId', fz_pick(ARRAY['spring', NULL, '']));
		END IF;
	END IF;
	m := jsonb_build_object('pattern', p, 'data', d);
	IF fz_int(6) = 0 THEN
		m := m || jsonb_build_object('id', fz_any(1));
	END IF;
	RETURN m;
END $$;

-- one structural mutation
CREATE FUNCTION fz_mutate(m jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	field text := fz_pick(ARRAY['jobId', 'shareId', 'contentType', 'contentId', 'userId', 'channelId',
		'campaignId', 'timestamp', 'operation', 'amount', 'x', 'id', 'pattern', 'data']);
	isobj boolean := jsonb_typeof(m) = 'object' AND jsonb_typeof(m -> 'data') = 'object';
BEGIN
	IF jsonb_typeof(m) <> 'object' THEN
		RETURN fz_any(2);
	END IF;
	CASE fz_int(9)
		WHEN 0 THEN RETURN CASE WHEN isobj THEN jsonb_set(m, '{data}', (m -> 'data') - field) ELSE m - field END;
		WHEN 1 THEN RETURN m - fz_pick(ARRAY['pattern', 'data', 'id']);
		WHEN 2 THEN RETURN CASE WHEN isobj THEN jsonb_set(m, ARRAY['data', field], fz_any(2)) ELSE m END;
		WHEN 3 THEN RETURN m || jsonb_build_object(fz_pick(ARRAY['x', 'Pattern', 'data ', 'id']), fz_any(1));
		WHEN 4 THEN RETURN jsonb_set(m, '{pattern}', fz_any(0));
		WHEN 5 THEN RETURN jsonb_set(m, '{data}', fz_any(2));
		WHEN 6 THEN RETURN CASE WHEN isobj THEN jsonb_set(m, ARRAY['data', field], fz_bad_string()) ELSE m END;
		WHEN 7 THEN RETURN CASE WHEN isobj THEN jsonb_set(m, '{data,amount}', fz_number()) ELSE m END;
		ELSE RETURN jsonb_set(m, '{pattern}', to_jsonb(fz_pick(ARRAY['share_created', 'share_deleted',
			'share_count_update'])));
	END CASE;
END $$;

-- byte-level mutation of the document's text; NULL when it is no longer JSON
CREATE FUNCTION fz_bytes(m jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	t text := m::text;
	pos int;
	k int;
BEGIN
	FOR k IN 0..fz_int(3) LOOP
		pos := 1 + fz_int(length(t));
		CASE fz_int(3)
			WHEN 0 THEN t := overlay(t PLACING '' FROM pos FOR 1);
			WHEN 1 THEN t := overlay(t PLACING fz_pick(ARRAY['{', '}', '"', ',', ':', '\', '0', 'e', '-', '[',
				']', ' ', 'é', 'x', '1', 'null']) FROM pos FOR 0);
			ELSE t := overlay(t PLACING substr(t, 1 + fz_int(length(t)), fz_int(12)) FROM pos FOR 0);
		END CASE;
	END LOOP;
	RETURN t::jsonb;
EXCEPTION WHEN others THEN
	RETURN NULL;
END $$;

-- the model: NULL if the message is valid (docs/extension.md, Validation), else why not
CREATE FUNCTION fz_invalid(m jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	d jsonb := m -> 'data';
	p text;
	allowed text[];
	required text[];
	f text;
	ts text;
	a jsonb;
	x text[];
BEGIN
	IF jsonb_typeof(m) <> 'object' THEN RETURN 'not an object'; END IF;
	IF EXISTS (SELECT FROM jsonb_object_keys(m) k WHERE k NOT IN ('pattern', 'data', 'id')) THEN
		RETURN 'envelope key';
	END IF;
	IF jsonb_typeof(m -> 'pattern') IS DISTINCT FROM 'string' THEN RETURN 'pattern'; END IF;
	p := m ->> 'pattern';
	CASE p
		WHEN 'share_created' THEN
			allowed := '{jobId,shareId,contentType,contentId,userId,channelId,campaignId,timestamp}';
			required := '{jobId,shareId,contentType,contentId,userId,timestamp}';
		WHEN 'share_deleted' THEN
			allowed := '{jobId,shareId,contentType,contentId,userId,channelId,campaignId,timestamp}';
			required := '{jobId,shareId,contentType,contentId,userId,timestamp}';
		WHEN 'share_count_update' THEN
			allowed := '{jobId,contentType,contentId,operation,amount,channelId,campaignId,timestamp}';
			required := '{jobId,contentType,contentId,operation,timestamp}';
		ELSE RETURN 'pattern name';
	END CASE;
	IF jsonb_typeof(d) IS DISTINCT FROM 'object' THEN RETURN 'data'; END IF;
	IF EXISTS (SELECT FROM jsonb_object_keys(d) k WHERE k <> ALL (allowed)) THEN RETURN 'unknown field'; END IF;
	IF NOT d ?& required THEN RETURN 'missing field'; END IF;
	FOREACH f IN ARRAY ARRAY['jobId', 'contentType', 'contentId', 'timestamp', 'operation'] LOOP
		IF d ? f AND jsonb_typeof(d -> f) <> 'string' THEN RETURN f || ' type'; END IF;
	END LOOP;
	FOREACH f IN ARRAY ARRAY['shareId', 'userId', 'channelId', 'campaignId'] LOOP
		IF d ? f AND jsonb_typeof(d -> f) NOT IN ('string', 'null') THEN RETURN f || ' type'; END IF;
	END LOOP;
	IF octet_length(d ->> 'jobId') NOT BETWEEN 1 AND 128 THEN RETURN 'jobId size'; END IF;
	IF octet_length(d ->> 'contentType') NOT BETWEEN 1 AND 64 THEN RETURN 'contentType size'; END IF;
	IF octet_length(d ->> 'contentId') NOT BETWEEN 1 AND 256 THEN RETURN 'contentId size'; END IF;
	IF d ? 'operation' AND (d ->> 'operation') NOT IN ('increment', 'decrement') THEN RETURN 'operation'; END IF;
	a := d -> 'amount';
	IF a IS NOT NULL AND jsonb_typeof(a) <> 'null' AND (jsonb_typeof(a) <> 'number' OR a::text !~ '^[0-9]{1,7}$'
		OR a::text::int NOT BETWEEN 1 AND 1000000) THEN
		RETURN 'amount';
	END IF;
	-- YYYY-MM-DD(T|t| )HH:MM[:SS[(.|,)digits]][Z|z|(+|-)HH[[:]MM]], then the calendar
	ts := d ->> 'timestamp';
	x := regexp_match(ts, '^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})'
		'(:([0-9]{2})([.,][0-9]+)?)?([Zz]|[+-]([0-9]{2})(:?([0-9]{2}))?)?$');
	IF x IS NULL OR x[2]::int NOT BETWEEN 1 AND 12 OR x[3]::int < 1
		OR x[3]::int > (ARRAY[31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[x[2]::int]
		OR (x[2]::int = 2 AND x[3]::int = 29 AND NOT (x[1]::int % 4 = 0 AND x[1]::int % 100 <> 0
			OR x[1]::int % 400 = 0))
		OR x[4]::int > 23 OR x[5]::int > 59 OR coalesce(x[7]::int, 0) > 60
		OR coalesce(x[10]::int, 0) > 23 OR coalesce(x[12]::int, 0) > 59 THEN
		RETURN 'timestamp';
	END IF;
	RETURN NULL;
END $$;

-- the model's outcome for a valid message, recording what it applies
CREATE FUNCTION fz_expect(m jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	d jsonb := m -> 'data';
	delta bigint;
BEGIN
	IF m IS NULL OR fz_invalid(m) IS NOT NULL THEN
		RETURN 'invalid';
	END IF;
	INSERT INTO fz_applied VALUES (d ->> 'jobId') ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RETURN 'duplicate';
	END IF;
	delta := CASE m ->> 'pattern' WHEN 'share_created' THEN 1 WHEN 'share_deleted' THEN -1
		ELSE CASE d ->> 'operation' WHEN 'increment' THEN 1 ELSE -1 END
			* coalesce((d ->> 'amount')::numeric::bigint, 1) END;
	INSERT INTO fz_delta VALUES (d ->> 'contentType', d ->> 'contentId', delta)
		ON CONFLICT (content_type, content_id) DO UPDATE SET delta = fz_delta.delta + excluded.delta;
	RETURN 'applied';
END $$;

-- the next document: a valid job, mutated 0-3 times, byte-mutated, or random
CREATE FUNCTION fz_doc() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	m jsonb;
	k int;
BEGIN
	CASE fz_int(10)
		WHEN 0, 1 THEN m := fz_valid();
		WHEN 2 THEN m := fz_any(3);
		WHEN 3 THEN m := jsonb_build_object('pattern', fz_any(0), 'data', fz_any(2));
		WHEN 4 THEN m := fz_bytes(fz_valid());
		ELSE
			m := fz_valid();
			FOR k IN 1..1 + fz_int(3) LOOP m := fz_mutate(m); END LOOP;
	END CASE;
	RETURN m;
END $$;

-- n documents one by one through sharecount_apply, then n more in batches
CREATE FUNCTION fz_run(n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	m jsonb;
	want text;
	got text;
	i int;
	batch jsonb[];
	wants text[];
	r record;
BEGIN
	FOR i IN 1..n LOOP
		m := fz_doc();
		IF m IS NULL THEN PERFORM fz_count('not JSON after byte mutation'); CONTINUE; END IF;
		want := fz_expect(m);
		BEGIN
			got := CASE WHEN sharecount_apply(m) THEN 'applied' ELSE 'duplicate' END;
		EXCEPTION WHEN invalid_parameter_value THEN
			got := CASE WHEN SQLERRM LIKE 'invalid job: %' THEN 'invalid' ELSE 'bad message: ' || SQLERRM END;
		WHEN others THEN
			got := SQLSTATE || ' ' || SQLERRM;
		END;
		PERFORM fz_count('apply: ' || got);
		IF got IS DISTINCT FROM want THEN INSERT INTO fz_bad VALUES (i, 'apply', m, want, got); END IF;
	END LOOP;
	i := 0;
	WHILE i < n LOOP
		batch := '{}';
		wants := '{}';
		FOR k IN 1..1 + fz_int(40) LOOP
			m := CASE WHEN fz_int(30) = 0 THEN NULL ELSE fz_doc() END;
			batch := batch || m;
			wants := wants || fz_expect(m);
		END LOOP;
		i := i + cardinality(batch);
		FOR r IN SELECT * FROM sharecount_apply_batch(batch) LOOP
			got := r.status || CASE WHEN r.status = 'invalid' AND r.error NOT LIKE 'invalid job: %'
				THEN ' bad error ' || coalesce(r.error, 'NULL') ELSE '' END;
			PERFORM fz_count('batch: ' || got);
			IF got IS DISTINCT FROM wants[r.ord] THEN
				INSERT INTO fz_bad VALUES (r.ord, 'batch', batch[r.ord], wants[r.ord], got);
			END IF;
		END LOOP;
	END LOOP;
END $$;

\set ECHO all
SELECT fz_run(4000);

-- every document got the model's outcome
SELECT * FROM fz_tally ORDER BY what;
SELECT n, via, expected, got, left(doc::text, 300) AS doc FROM fz_bad ORDER BY via, n LIMIT 10;
-- counts moved exactly by the model's deltas, and no other key moved
SELECT coalesce(a.content_type, b.content_type, m.content_type) AS content_type,
	coalesce(a.content_id, b.content_id, m.content_id) AS content_id,
	coalesce(a.share_count, 0) - coalesce(b.share_count, 0) AS moved, coalesce(m.delta, 0) AS model
FROM sharecount.counts a
	FULL JOIN fz_before b USING (content_type, content_id)
	FULL JOIN fz_delta m ON m.content_type = coalesce(a.content_type, b.content_type)
		AND m.content_id = coalesce(a.content_id, b.content_id)
WHERE coalesce(a.share_count, 0) - coalesce(b.share_count, 0) IS DISTINCT FROM coalesce(m.delta, 0);
SELECT count(*) AS keys_moved, sum(abs(delta)) AS total_abs_delta FROM fz_delta WHERE delta <> 0;
-- dedupe records and stats: applied = new jobIds; duplicates and batch invalids counted
SELECT (SELECT sum(dedupe_records) FROM sharecount.stats) - s.ids = (SELECT count(*) FROM fz_applied) AS dedupe_ok,
	(SELECT sum(jobs_applied) FROM sharecount.stats) - s.a = (SELECT count(*) FROM fz_applied) AS applied_ok,
	(SELECT sum(duplicates) FROM sharecount.stats) - s.d
		= (SELECT sum(n) FROM fz_tally WHERE what IN ('apply: duplicate', 'batch: duplicate')) AS duplicates_ok,
	(SELECT sum(invalid) FROM sharecount.stats) - s.i
		= (SELECT sum(n) FROM fz_tally WHERE what = 'batch: invalid') AS invalid_ok
FROM fz_stats_before s;

\set ECHO none
DROP FUNCTION fz_run(int), fz_doc(), fz_expect(jsonb), fz_invalid(jsonb), fz_bytes(jsonb), fz_mutate(jsonb),
	fz_valid(), fz_any(int), fz_number(), fz_bad_string(), fz_time(), fz_jobid(), fz_cid(), fz_ctype(),
	fz_count(text), fz_pickj(jsonb[]), fz_pick(text[]), fz_int(int);
\set ECHO all
\c :regress_db
DROP DATABASE regress_sc_fuzz_apply;
