-- Sealed days (docs/extension.md, "Dedupe"): sharecount_prune() seals every
-- day that has ended, building a Bloom filter per group of 16 buckets from the
-- day's rows; a foreign jobId's lookup reads the filter, and the day's row only
-- when the filter says "maybe".
SET client_min_messages = warning;
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
RESET client_min_messages;
CREATE FUNCTION dj(id text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', 'share_created', 'data', jsonb_build_object('jobId', id,
		'shareId', id, 'contentType', 'article', 'contentId', 'sealed', 'userId', 'u',
		'timestamp', '2026-12-02T10:00:00.000Z'))
$$;
CREATE FUNCTION applied(ids text[]) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FILTER (WHERE status = 'applied') FROM sharecount_apply_batch(
		ARRAY(SELECT dj(i) FROM unnest(ids) i))
$$;
CREATE FUNCTION yesterday() RETURNS date LANGUAGE sql AS $$ SELECT (now() AT TIME ZONE 'UTC')::date - 1 $$;
-- the filter's answer for id on day d, from the stored bits (src/dedupe_filter.c:
-- group = the MD5's first 12 bits; probe i = (h1 + i * h2) mod bits, h1 and h2
-- the MD5's bytes 4-7 and 8-11 (h2 odd); bit p is bit p % 8 of byte p / 8)
CREATE FUNCTION filter_says(id text, d date) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce((SELECT CASE WHEN bool_and(get_bit(f.bits, (p.h1 + i * p.h2) % (8 * octet_length(f.bits))) = 1)
			THEN 'maybe' ELSE 'absent' END
		FROM sharecount.dedupe_filter f, generate_series(0, 6) i
		WHERE f.grp = p.grp AND f.day = d GROUP BY f.bits), 'no row')
	FROM (SELECT ('x' || substr(md5(id), 1, 3))::bit(12)::int AS grp,
		('x' || substr(md5(id), 9, 8))::bit(32)::bigint AS h1,
		('x' || substr(md5(id), 17, 8))::bit(32)::bigint | 1 AS h2) p
$$;

-- jobIds of one filter group (the 16 buckets sharing md5('nest-1')'s first 12
-- bits), ranked per bucket: rank 1 is applied "yesterday", rank 2 moves it
-- into yesterday's partition, rank 3 is kept for later, the others are fresh
CREATE TEMP TABLE cand AS
	SELECT id, ('x' || substr(md5(id), 1, 4))::bit(16)::int AS bucket,
		row_number() OVER (PARTITION BY substr(md5(id), 1, 4) ORDER BY g) AS rank
	FROM (SELECT g, 'seal-' || g AS id FROM generate_series(1, 300000) g) s
	WHERE substr(md5(id), 1, 3) = substr(md5('nest-1'), 1, 3);
SELECT count(DISTINCT bucket) AS buckets, count(*) FILTER (WHERE rank = 1) AS rank1,
	count(*) FILTER (WHERE rank >= 4) AS fresh FROM cand;
SELECT applied(ARRAY(SELECT id FROM cand WHERE rank = 1)) AS applied_rank1;
UPDATE sharecount.dedupe_foreign_head SET day = day - 1 WHERE bucket IN (SELECT bucket FROM cand);
SELECT applied(ARRAY(SELECT id FROM cand WHERE rank = 2)) AS applied_rank2;
SELECT count(*) AS yesterday_rows, sum(octet_length(hashes)) / 16 AS yesterday_hashes
	FROM sharecount.dedupe_foreign WHERE day = yesterday();

-- sealing yesterday: a filter row for the group, nothing else changes
SELECT sharecount_prune() AS pruned;
SELECT day = yesterday() AS yesterday, hashes FROM sharecount.dedupe_sealed;
SELECT grp = ('x' || substr(md5('nest-1'), 1, 3))::bit(12)::int AS the_group, octet_length(bits) AS bytes,
	slot = (day - date '2000-01-01') % 16 AS right_slot FROM sharecount.dedupe_filter;
-- no false negative: every hash of the day is "maybe" (a bucket without a
-- rank 2 still holds its rank 1 in its head)
SELECT filter_says(id, yesterday()) AS says, count(*) FROM cand WHERE rank = 1
	AND bucket IN (SELECT bucket FROM cand WHERE rank = 2) GROUP BY 1;
-- a jobId applied on the sealed day, redelivered: a duplicate (the filter says
-- maybe, the day's row has it)
SELECT applied(ARRAY(SELECT id FROM cand WHERE rank = 1)) AS redelivered_rank1;
-- fresh jobIds of the group: the filter says "absent" for most and "maybe"
-- for some (false positives: 16 hashes in 64 bits); each is applied once
SELECT filter_says(id, yesterday()) AS says, count(*) FROM cand WHERE rank >= 4 GROUP BY 1 ORDER BY 1;
SELECT applied(ARRAY(SELECT id FROM cand WHERE rank >= 4)) = (SELECT count(*) FROM cand WHERE rank >= 4) AS fresh_applied,
	applied(ARRAY(SELECT id FROM cand WHERE rank >= 4)) AS fresh_again;
-- a jobId of another group: no filter row that day
SELECT filter_says('nest-other', yesterday()) AS says, applied('{nest-other}') AS applied,
	applied('{nest-other}') AS again;
-- the filter is what answers: with its bits cleared, a redelivery would count
-- again (rolled back)
BEGIN;
UPDATE sharecount.dedupe_filter SET bits = decode(repeat('00', octet_length(bits)), 'hex');
SELECT applied(ARRAY(SELECT id FROM cand WHERE rank = 1 ORDER BY id LIMIT 1)) AS without_filter;
ROLLBACK;
SELECT applied(ARRAY(SELECT id FROM cand WHERE rank = 1 ORDER BY id LIMIT 1)) AS with_filter;

-- a head still holding a sealed day keeps its hashes as a later day's: the
-- sealed day gets no new row (its filter stays complete)
CREATE TEMP TABLE straggler AS SELECT bucket FROM cand WHERE rank = 3 ORDER BY id LIMIT 1;
UPDATE sharecount.dedupe_foreign_head SET day = yesterday() WHERE bucket = (SELECT bucket FROM straggler);
SELECT octet_length(hashes) / 16 AS head_hashes FROM sharecount.dedupe_foreign_head
	WHERE bucket = (SELECT bucket FROM straggler);
SELECT applied(ARRAY(SELECT id FROM cand WHERE bucket = (SELECT bucket FROM straggler) AND rank = 3)) AS applied_rank3;
SELECT count(*) AS yesterday_rows FROM sharecount.dedupe_foreign WHERE day = yesterday();
SELECT day = (now() AT TIME ZONE 'UTC')::date AS today, octet_length(hashes) / 16 AS head_hashes
	FROM sharecount.dedupe_foreign_head WHERE bucket = (SELECT bucket FROM straggler);
SELECT applied(ARRAY(SELECT id FROM cand WHERE bucket = (SELECT bucket FROM straggler) AND rank >= 2)) AS redelivered;

-- only a day that has ended can be sealed; sealing twice does nothing
SELECT sharecount._dedupe_seal((now() AT TIME ZONE 'UTC')::date);
SELECT sharecount._dedupe_seal(yesterday()) AS sealed_again;

-- the O(1) counter still matches the state
SELECT (sharecount_stats()->>'dedupe_records')::bigint = (SELECT (SELECT coalesce(sum(octet_length(hashes)), 0) / 16
	FROM sharecount.dedupe_foreign_head) + (SELECT coalesce(sum(octet_length(hashes)), 0) / 16 FROM sharecount.dedupe_foreign))
	AS counter_exact;
SELECT sharecount_get('article', 'sealed') = (SELECT sum(jobs_applied) FROM sharecount.stats) AS count_exact;

-- TRUNCATE sharecount.applied_jobs forgets the filters too (rolled back)
BEGIN;
SELECT (SELECT count(*) FROM sharecount.dedupe_filter) AS filters, (SELECT count(*) FROM sharecount.dedupe_sealed) AS sealed;
TRUNCATE sharecount.applied_jobs;
SELECT (SELECT count(*) FROM sharecount.dedupe_filter) AS filters, (SELECT count(*) FROM sharecount.dedupe_sealed) AS sealed;
ROLLBACK;

-- past the window, a sealed day goes whole: partition, filters and mark
UPDATE sharecount.dedupe_foreign SET day = day - 8, slot = (day - 8 - date '2000-01-01') % 16;
UPDATE sharecount.dedupe_filter SET day = day - 8, slot = (day - 8 - date '2000-01-01') % 16;
UPDATE sharecount.dedupe_days SET day = day - 8;
UPDATE sharecount.dedupe_sealed SET day = day - 8;
SELECT sharecount_prune() > 0 AS pruned;
SELECT (SELECT count(*) FROM sharecount.dedupe_foreign) AS day_rows, (SELECT count(*) FROM sharecount.dedupe_filter) AS filters,
	(SELECT count(*) FROM sharecount.dedupe_sealed) AS sealed;

DROP FUNCTION dj(text), applied(text[]), yesterday(), filter_says(text, date);
DROP TABLE cand, straggler;
SET client_min_messages = warning;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
