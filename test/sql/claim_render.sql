-- The claim's rendering (src/render.c, src/claim.c) byte for byte against
-- to_json(): a byte to escape (or one next to the escaped range) at every
-- position 0..40 of a value, since the check reads 8 bytes at a time and then
-- the tail; timestamps around day boundaries, before 2000 and at the ends of
-- the range, in an order that leaves the day kept by render_timestamp() and
-- comes back to it; job names and jobIds of every kind, as text values made
-- without a copy, in two claims of one session, in result rows formed by hand.
SET client_min_messages = warning;
TRUNCATE sharecount.outbox;

CREATE TABLE claim_render_links (id text PRIMARY KEY, content_type text, content_id text,
	user_id text, channel_id text, campaign_id text);
SELECT sharecount_track('claim_render_links');

-- bytes: controls 1, 10, 31; the first plain byte 32; '"' 34 and '\' 92 and
-- their neighbours 33, 35, 91, 93; 127; a two-byte UTF-8 character (233)
INSERT INTO claim_render_links
	SELECT 'p' || p || '-' || b, 'article', repeat('a', p) || chr(b) || repeat('b', 40 - p),
		repeat('u', p) || chr(b), chr(b) || repeat('c', p), repeat('d', 40 - p) || chr(b)
	FROM generate_series(0, 40) p, unnest(ARRAY[1, 10, 31, 32, 34, 92, 33, 35, 91, 93, 127, 233]) b
	ORDER BY p, b;
SELECT sharecount_untrack('claim_render_links');

-- rows by hand: every kind, timestamps in an order that changes day and back,
-- origins that change from row to row (the claim keeps the last one's digits)
INSERT INTO sharecount.outbox (id, job, created_at, amount, content_type, content_id, origin)
	SELECT -1000 - n, (ARRAY['c', 'd', 'u'])[1 + n % 3]::"char", ts::timestamptz,
		CASE n % 3 WHEN 2 THEN (n - 9) * 3 END, 'ts', n::text,
		(ARRAY[1, -1, 0, 9223372036854775807, -9223372036854775808, 1, 1])[1 + n % 7]
	FROM unnest(ARRAY['2026-12-03 00:00:00Z', '2026-12-03 13:14:15.678901Z', '2026-12-03 23:59:59.999999Z',
		'2026-12-04 00:00:00.000001Z', '2026-12-03 23:59:59.9995Z', '2026-12-03 00:00:00.0009Z',
		'1999-12-31 23:59:59.999999Z', '1999-12-31 12:34:56.789Z', '2000-01-01 00:00:00Z',
		'1999-12-31 00:00:00Z', '1999-12-30 23:59:59.999Z', '1970-01-01 00:00:00.0005Z',
		'0001-01-01 00:00:00Z', '0001-01-01 23:59:59.999999Z', '9999-12-31 23:59:59.999999Z',
		'9999-12-31 00:00:00.001Z', '2026-12-03 12:00:00Z', '2024-02-29 06:07:08.009Z'])
		WITH ORDINALITY AS t(ts, n)
	ORDER BY n;

-- the body expected from the row's columns, written with to_json()
CREATE FUNCTION claim_render_expected(o sharecount.outbox) RETURNS text LANGUAGE sql AS $$
	SELECT '{"pattern":"' || CASE o.job WHEN 'c' THEN 'share_created' WHEN 'd' THEN 'share_deleted'
			ELSE 'share_count_update' END
		|| '","data":{"jobId":"' || lpad(to_hex(o.origin), 16, '0') || '-' || o.id || '"'
		|| CASE WHEN o.job = 'u' THEN
			',"contentType":' || to_json(o.content_type)::text
			|| ',"contentId":' || to_json(o.content_id)::text
			|| ',"operation":"' || CASE WHEN o.amount > 0 THEN 'increment' ELSE 'decrement' END
			|| '","amount":' || abs(o.amount)
		ELSE
			',"shareId":' || coalesce(to_json(o.share_id)::text, 'null')
			|| ',"contentType":' || to_json(o.content_type)::text
			|| ',"contentId":' || to_json(o.content_id)::text
			|| ',"userId":' || coalesce(to_json(o.user_id)::text, 'null') END
		|| coalesce(',"channelId":' || to_json(o.channel_id)::text, '')
		|| coalesce(',"campaignId":' || to_json(o.campaign_id)::text, '')
		|| ',"timestamp":"' || to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}}'
$$;
CREATE TEMP TABLE claim_render_expect AS
	SELECT o.id, claim_render_expected(o) AS body, sharecount.job_name(o) AS job_name,
		sharecount.job_id(o) AS job_id
	FROM sharecount.outbox o;

-- through job_body() (the view's path)
SELECT count(*) AS rows, count(*) FILTER (WHERE sharecount.job_body(o) = e.body) AS exact
	FROM sharecount.outbox o JOIN claim_render_expect e USING (id);

BEGIN;
-- the result rows as the claim forms them (src/claim.c, put_row), read in
-- place: values with the headers heap_form_minimal_tuple() gives them (a
-- 1-byte header up to 126 bytes of text, else 4 bytes); with a work_mem that
-- the result exceeds, so the tuplestore writes the rows to a temporary file
-- and reads them back
SET LOCAL work_mem = '64kB';
SELECT count(*) AS rows, count(*) FILTER (WHERE size_ok) AS formed_exact FROM (
	SELECT pg_column_size(c.id) = 8
		AND pg_column_size(c.job_name) = octet_length(c.job_name) + CASE WHEN octet_length(c.job_name) <= 126 THEN 1 ELSE 4 END
		AND pg_column_size(c.job_id) = octet_length(c.job_id) + CASE WHEN octet_length(c.job_id) <= 126 THEN 1 ELSE 4 END
		AND pg_column_size(c.body) = octet_length(c.body) + CASE WHEN octet_length(c.body) <= 126 THEN 1 ELSE 4 END
		AND c.body = e.body AND c.job_name = e.job_name AND c.job_id = e.job_id AS size_ok
	FROM sharecount_outbox_claim(2000) c JOIN claim_render_expect e USING (id)) r;
ROLLBACK;

-- through two claims in one session (the second starts where the first ended)
BEGIN;
CREATE TEMP TABLE claim_render_got AS SELECT * FROM sharecount_outbox_claim(300);
INSERT INTO claim_render_got SELECT * FROM sharecount_outbox_claim(1000);
SELECT count(*) AS claimed, count(*) FILTER (WHERE c.body = e.body) AS exact,
	count(*) FILTER (WHERE c.job_name = e.job_name AND c.job_id = e.job_id) AS names_and_ids,
	count(DISTINCT c.job_name) AS kinds
	FROM claim_render_got c JOIN claim_render_expect e USING (id);
SELECT c.id, c.body, e.body AS expected FROM claim_render_got c JOIN claim_render_expect e USING (id)
	WHERE c.body <> e.body ORDER BY c.id LIMIT 5;
SELECT c.id, c.job_name, c.job_id FROM claim_render_got c JOIN claim_render_expect e USING (id)
	WHERE c.job_name <> e.job_name OR c.job_id <> e.job_id ORDER BY c.id LIMIT 5;
ROLLBACK;

-- the rows stay as they were: the claim was rolled back
SELECT count(*) AS still_there FROM sharecount.outbox;

DROP FUNCTION claim_render_expected(sharecount.outbox);
DROP TABLE claim_render_links;
TRUNCATE sharecount.outbox;
