-- Rendering a job (src/render.c) byte for byte: every string field is the JSON
-- that PostgreSQL's own to_json() writes for it (escape_json), for values with
-- every ASCII byte, quotes, backslashes and multibyte characters, and the
-- jobId is "<origin as 16 hex digits>-<id>"; the same through the claim and
-- through sharecount.job_body().  Bodies are compared whole, not parsed.
SET client_min_messages = warning;
TRUNCATE sharecount.outbox;

CREATE TABLE render_links (id text PRIMARY KEY, content_type text, content_id text,
	user_id text, channel_id text, campaign_id text);
SELECT sharecount_track('render_links');

-- one row per ASCII byte 1..127 in the middle of a value, and a few odd ones
INSERT INTO render_links
	SELECT 's' || b, 'type' || chr(b), 'x' || chr(b) || 'y', chr(b), 'ch' || chr(b), chr(b) || 'camp'
	FROM generate_series(1, 127) b;
INSERT INTO render_links VALUES
	('plain', 'article', '123', 'u1', NULL, NULL),
	(E'q"\\', E'\u00e9\u4e2d', E'\U0001F600', E'\n\r\t\b\f', E'\u00e9', '"'),
	('nulls', 'a', 'b', NULL, NULL, NULL);

-- the body expected from the row's columns, written with to_json()
CREATE FUNCTION expected(o sharecount.outbox) RETURNS text LANGUAGE sql AS $$
	SELECT '{"pattern":"share_created","data":{"jobId":"'
		|| lpad(to_hex(o.origin), 16, '0') || '-' || o.id || '"'
		|| ',"shareId":' || coalesce(to_json(o.share_id)::text, 'null')
		|| ',"contentType":' || to_json(o.content_type)::text
		|| ',"contentId":' || to_json(o.content_id)::text
		|| ',"userId":' || coalesce(to_json(o.user_id)::text, 'null')
		|| coalesce(',"channelId":' || to_json(o.channel_id)::text, '')
		|| coalesce(',"campaignId":' || to_json(o.campaign_id)::text, '')
		|| ',"timestamp":"' || to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}}'
$$;

-- through job_body() (the view's path)
SELECT count(*) AS rows, count(*) FILTER (WHERE sharecount.job_body(o) = expected(o)) AS exact,
	count(*) FILTER (WHERE sharecount.job_id(o) = lpad(to_hex(o.origin), 16, '0') || '-' || o.id) AS job_ids
	FROM sharecount.outbox o;
SELECT sharecount.job_body(o) = expected(o) AS exact, o.share_id FROM sharecount.outbox o
	WHERE sharecount.job_body(o) <> expected(o);

-- through the claim (rendered from the heap tuple, one buffer reused row to row)
CREATE TEMP TABLE expect AS SELECT o.id, expected(o) AS body FROM sharecount.outbox o;
BEGIN;
CREATE TEMP TABLE claimed AS SELECT * FROM sharecount_outbox_claim(1000);
SELECT count(*) AS claimed, count(*) FILTER (WHERE c.body = e.body) AS exact,
	count(*) FILTER (WHERE c.job_id = substr(e.body, 45, length(c.job_id))) AS job_ids
	FROM claimed c JOIN expect e USING (id);
SELECT c.id, c.body FROM claimed c JOIN expect e USING (id) WHERE c.body <> e.body;
ROLLBACK;

-- a negative id (a row made by hand) renders like snprintf's %lld
INSERT INTO sharecount.outbox (id, job, created_at, content_type, content_id, origin)
	VALUES (-9223372036854775808, 'c', '2026-01-02 03:04:05.678Z', 'a', 'b', -1);
SELECT sharecount.job_id(o), sharecount.job_body(o) FROM sharecount.outbox o WHERE id < 0;
DELETE FROM sharecount.outbox WHERE id < 0;

SELECT sharecount_untrack('render_links');
DROP TABLE render_links;
DROP FUNCTION expected(sharecount.outbox);
TRUNCATE sharecount.outbox;
