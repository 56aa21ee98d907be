-- The 1.1 dedupe state (docs/extension.md, "Dedupe"): dense jobIds as bits per
-- block, foreign jobIds as hashes per bucket and day, pruning by whole blocks
-- and day partitions, O(1) stats.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
RESET client_min_messages;
CREATE FUNCTION dj(id text, cid text DEFAULT 'dd') RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('pattern', 'share_created', 'data', jsonb_build_object('jobId', id,
		'shareId', id, 'contentType', 'article', 'contentId', cid, 'userId', 'u',
		'timestamp', '2026-12-02T10:00:00.000Z'))
$$;
CREATE FUNCTION records() RETURNS bigint LANGUAGE sql AS $$
	SELECT (sharecount_stats()->>'dedupe_records')::bigint
$$;
-- what the state holds, counted the slow way (to check the O(1) counter)
CREATE FUNCTION counted() RETURNS bigint LANGUAGE sql AS $$
	SELECT (SELECT coalesce(sum(n), 0) FROM sharecount.dedupe_dense)
		+ (SELECT coalesce(sum(octet_length(hashes)), 0) / 16 FROM sharecount.dedupe_foreign_head)
		+ (SELECT coalesce(sum(octet_length(hashes)), 0) / 16 FROM sharecount.dedupe_foreign)
		+ (SELECT count(*) FROM sharecount.applied_jobs)
$$;

-- dense: one bit in the block of its origin
SELECT sharecount_apply(dj('3f2a9c0d11e4b7a8-1')) AS first, sharecount_apply(dj('3f2a9c0d11e4b7a8-1')) AS again;
SELECT to_hex(origin) AS origin, block, n, octet_length(bits) AS bytes FROM sharecount.dedupe_dense;
-- a job redelivered after its block was written by another bridge (another
-- transaction writing a neighbour in the same block, then the same job again)
BEGIN;
SELECT sharecount_apply(dj('3f2a9c0d11e4b7a8-4095')) AS bridge1;
COMMIT;
BEGIN;
SELECT status FROM sharecount_apply_batch(ARRAY[dj('3f2a9c0d11e4b7a8-4094'), dj('3f2a9c0d11e4b7a8-4096')]);
COMMIT;
SELECT status FROM sharecount_apply_batch(ARRAY[dj('3f2a9c0d11e4b7a8-4095'), dj('3f2a9c0d11e4b7a8-4096'),
	dj('3f2a9c0d11e4b7a8-1'), dj('3f2a9c0d11e4b7a8-4095')]);
SELECT block, n FROM sharecount.dedupe_dense ORDER BY 1;
-- another origin is another stream: the same n is another job
SELECT sharecount_apply(dj('00000000000000ff-1')) AS other_origin;
-- the largest n, and look-alikes that are foreign (upper case, leading zero,
-- 15 or 17 hex digits, n = 0, n past 2^63 - 1)
SELECT sharecount_apply(dj('ffffffffffffffff-9223372036854775807')) AS max_dense;
SELECT to_hex(origin) AS origin, block FROM sharecount.dedupe_dense WHERE origin = -1;
SELECT count(*) AS dense_rows FROM sharecount.dedupe_dense;
SELECT ord, status FROM sharecount_apply_batch(ARRAY[dj('3F2A9C0D11E4B7A8-7'), dj('3f2a9c0d11e4b7a8-07'),
	dj('3f2a9c0d11e4b7a-7'), dj('3f2a9c0d11e4b7a88-7'), dj('3f2a9c0d11e4b7a8-0'),
	dj('3f2a9c0d11e4b7a8-9223372036854775808'), dj('3f2a9c0d11e4b7a8-7 ')]);
SELECT count(*) AS dense_rows, sum(n) AS dense_bits FROM sharecount.dedupe_dense;
SELECT sum(octet_length(hashes)) / 16 AS foreign_today FROM sharecount.dedupe_foreign_head;

-- foreign: a UUID (1.0 rows, other publishers), a NestJS-style id
SELECT sharecount_apply(dj('6f1c2b9e-2a51-4c1e-9d7e-0b8f4c1a2d3e')) AS uuid,
	sharecount_apply(dj('6f1c2b9e-2a51-4c1e-9d7e-0b8f4c1a2d3e')) AS uuid_again,
	sharecount_apply(dj('nest-1')) AS nest, sharecount_apply(dj('nest-1')) AS nest_again;
SELECT count(*) AS heads, sum(octet_length(hashes)) / 16 AS hashes,
	bool_and(day = (now() AT TIME ZONE 'UTC')::date) AS today FROM sharecount.dedupe_foreign_head
	WHERE octet_length(hashes) > 0;

-- a new day: the head's hashes move to the day's partition as one packed row
-- when its bucket is next written; the old jobId is still a duplicate
CREATE TEMP TABLE same_bucket AS
	SELECT 'nest-b' || g AS id FROM generate_series(1, 400000) g
	WHERE substr(md5('nest-b' || g), 1, 4) = substr(md5('nest-1'), 1, 4) LIMIT 2;
SELECT count(*) AS same_bucket_ids FROM same_bucket;
UPDATE sharecount.dedupe_foreign_head SET day = day - 1
	WHERE bucket = ('x' || substr(md5('nest-1'), 1, 4))::bit(16)::int;
SELECT sharecount_apply(dj((SELECT min(id) FROM same_bucket))) AS next_day;
SELECT day = (now() AT TIME ZONE 'UTC')::date - 1 AS yesterday, slot = (day - date '2000-01-01') % 16 AS right_slot,
	octet_length(hashes) / 16 AS hashes FROM sharecount.dedupe_foreign;
SELECT day = (now() AT TIME ZONE 'UTC')::date - 1 AS yesterday, records FROM sharecount.dedupe_days;
SELECT octet_length(hashes) / 16 AS head_hashes FROM sharecount.dedupe_foreign_head
	WHERE bucket = ('x' || substr(md5('nest-1'), 1, 4))::bit(16)::int;
SELECT sharecount_apply(dj('nest-1')) AS old_day_again, sharecount_apply(dj((SELECT min(id) FROM same_bucket))) AS today_again,
	sharecount_apply(dj((SELECT max(id) FROM same_bucket))) AS new_in_bucket;

-- counts are exact and the O(1) counter matches the state
SELECT sharecount_get('article', 'dd') AS count, (SELECT sum(jobs_applied) FROM sharecount.stats) AS applied;
SELECT records() AS records, counted() AS counted;

-- across a prune boundary.  The redelivery window is older_than: a dense
-- block goes when the day of its last write ended before now() - older_than,
-- a foreign day likewise.  Age one dense block and yesterday's partition past 7 days.
UPDATE sharecount.dedupe_dense SET day = day - 8 WHERE origin = 255;
UPDATE sharecount.dedupe_foreign SET day = day - 8, slot = (day - 8 - date '2000-01-01') % 16;
UPDATE sharecount.dedupe_days SET day = day - 8;
SELECT sharecount_prune('-1 day');
SELECT sharecount_prune() AS pruned;
SELECT count(*) AS partitions_left FROM sharecount.dedupe_foreign;
SELECT records() AS records, counted() AS counted;
-- inside the window: still duplicates after the prune
SELECT sharecount_apply(dj('3f2a9c0d11e4b7a8-4095')) AS dense_in_window,
	sharecount_apply(dj((SELECT min(id) FROM same_bucket))) AS foreign_in_window;
-- outside it: forgotten, so a redelivery that late is applied again
SELECT sharecount_apply(dj('00000000000000ff-1')) AS dense_past_window,
	sharecount_apply(dj('nest-1')) AS foreign_past_window;
-- a head still holding a day that ended before the window is emptied
UPDATE sharecount.dedupe_foreign_head SET day = day - 9 WHERE octet_length(hashes) > 0
	AND bucket = ('x' || substr(md5('nest-1'), 1, 4))::bit(16)::int;
SELECT sharecount_prune() AS pruned_head;
SELECT sharecount_apply(dj((SELECT min(id) FROM same_bucket))) AS head_past_window;
SELECT records() AS records, counted() AS counted;
-- a window of 0 forgets every day that has ended; today's records stay until
-- midnight UTC
SELECT sharecount_prune('0') >= 0 AS pruned_all;
SELECT records() AS records, counted() AS counted;

-- TRUNCATE sharecount.applied_jobs still forgets every dedupe record
SELECT sharecount_apply(dj('3f2a9c0d11e4b7a8-99')) AS before_truncate;
TRUNCATE sharecount.applied_jobs;
SELECT (SELECT count(*) FROM sharecount.dedupe_dense) + (SELECT count(*) FROM sharecount.dedupe_foreign_head)
	+ (SELECT count(*) FROM sharecount.dedupe_foreign) AS rows_left, records() AS records;

-- the state is dumped by pg_dump
SELECT count(*) AS dumped FROM pg_extension e, unnest(e.extconfig) c
	WHERE e.extname = 'sharecount' AND c::regclass::text LIKE 'sharecount.dedupe%';

DROP FUNCTION dj(text, text), records(), counted();
SET client_min_messages = warning;
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;
