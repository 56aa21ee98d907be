-- sharecount_outbox_claim_packed() (src/claim.c, "Packed claim"): the same
-- claim as sharecount_outbox_claim(), its jobs as one text value of lines
-- "<id>\t<body>\t<job_name>\t<job_id>\n".  For the same outbox the value is
-- exactly the SRF's rows joined that way, in the same order, and splits back
-- into them: user fields with every control character (tab, newline, CR...),
-- quotes, backslashes and non-ASCII; optional fields absent; all three kinds;
-- a 1.0 row with a UUID job_id; a row with neither job_id nor origin.  Then
-- the claim's semantics (taken for the transaction, done, written back),
-- errors, privileges, and the size limit.
SET client_min_messages = error;
TRUNCATE sharecount.outbox;

CREATE TABLE claim_packed_links (id text PRIMARY KEY, content_type text, content_id text,
	user_id text, channel_id text, campaign_id text);
SELECT sharecount_track('claim_packed_links');
-- every byte 1..127 and some non-ASCII characters (2, 3 and 4 bytes; U+2028)
-- in every text field, alone and inside other text; optional fields NULL on
-- every third row
INSERT INTO claim_packed_links
	SELECT 'k' || b || E'\t' || chr(b), 'article', 'c' || chr(b) || 'x' || b,
		CASE WHEN b % 3 <> 0 THEN 'u' || chr(b) || E'\n' END,
		CASE WHEN b % 3 = 1 THEN chr(b) END, CASE WHEN b % 3 = 2 THEN E'\r\t' || chr(b) || '"' END
	FROM unnest(ARRAY(SELECT generate_series(1, 127)) || ARRAY[233, 8364, 128512, 8232]) b;
DELETE FROM claim_packed_links WHERE id LIKE 'k5%';
SELECT sharecount_untrack('claim_packed_links');
-- by hand: a share_count_update, a 1.0 row (UUID job_id, no origin), a row
-- with neither (jobId nojobid-<id>-<microseconds>)
INSERT INTO sharecount.outbox (id, job, job_id, amount, content_type, content_id, origin) VALUES
	(900001, 'u', NULL, -7, E'ty\tpe', E'id\n1', 1),
	(900002, 'c', '9e7b6f0c-5b0e-4c39-8d1e-0a6b2f6f1d11', NULL, 'article', 'uuid-row', NULL),
	(900003, 'd', NULL, NULL, 'article', 'no-job-id', NULL);
SELECT count(*) AS outbox_rows, count(DISTINCT job) AS kinds FROM sharecount.outbox;

-- the SRF's rows, joined into lines in its order
BEGIN;
SELECT string_agg(id || E'\t' || body || E'\t' || job_name || E'\t' || job_id || E'\n', '' ORDER BY n) AS srf,
	count(*) AS srf_rows
	FROM sharecount_outbox_claim(1000) WITH ORDINALITY AS c(id, job_name, job_id, body, n) \gset
ROLLBACK;
BEGIN;
SELECT sharecount_outbox_claim_packed(1000) AS packed \gset
ROLLBACK;
SELECT :srf_rows AS srf_rows, :'packed' = :'srf' AS packed_equals_srf_rows,
	octet_length(:'packed') AS bytes;

-- it splits back: one line per row, four fields per line, no tab or newline
-- inside a field, every body valid JSON whose jobId and pattern are the
-- line's, every row of the outbox once
CREATE TEMP TABLE claim_packed_lines AS
	SELECT n, f[1]::bigint AS id, f[2] AS body, f[3] AS job_name, f[4] AS job_id, cardinality(f) AS fields
	FROM regexp_split_to_table(rtrim(:'packed', E'\n'), E'\n') WITH ORDINALITY AS l(line, n),
		LATERAL string_to_array(line, E'\t') AS f;
SELECT count(*) AS lines, count(*) FILTER (WHERE fields = 4) AS four_fields,
	count(*) FILTER (WHERE body::jsonb->>'pattern' = job_name AND body::jsonb->'data'->>'jobId' = job_id) AS consistent,
	count(DISTINCT id) AS ids, right(:'packed', 1) = E'\n' AS ends_with_newline
	FROM claim_packed_lines;
SELECT count(*) AS outbox_rows_matched FROM sharecount.outbox_jobs o JOIN claim_packed_lines l
	ON l.id = o.id AND l.body = o.body AND l.job_name = o.job_name AND l.job_id = o.job_id;
-- the user fields came back intact through the JSON
SELECT count(*) AS user_ids_intact FROM claim_packed_lines l JOIN claim_packed_links t
	ON t.id = l.body::jsonb->'data'->>'shareId' AND t.user_id IS NOT DISTINCT FROM l.body::jsonb->'data'->>'userId'
	AND t.channel_id IS NOT DISTINCT FROM l.body::jsonb->'data'->>'channelId'
	AND t.campaign_id IS NOT DISTINCT FROM l.body::jsonb->'data'->>'campaignId';
SELECT id, job_name, CASE WHEN job_id ~ '^nojobid-900003-[0-9]+$' THEN 'nojobid-900003-<created_at>' ELSE job_id END
	FROM claim_packed_lines
	WHERE id > 900000 ORDER BY id;

-- the claim's semantics: taken for the transaction (a second claim gets the
-- rest, then ''), confirmed rows removed at commit, the others written back
BEGIN;
SELECT array_length(string_to_array(rtrim(sharecount_outbox_claim_packed(100), E'\n'), E'\n'), 1) AS first_claim;
SELECT array_length(string_to_array(rtrim(sharecount_outbox_claim_packed(1000), E'\n'), E'\n'), 1) AS second_claim;
SELECT sharecount_outbox_claim_packed(1000) = '' AS third_claim_empty;
SELECT count(*) AS visible_in_claiming_transaction FROM sharecount.outbox;
SELECT sharecount_outbox_done((SELECT array_agg(id) FROM claim_packed_lines WHERE id <= 900001)) AS done;
COMMIT;
SELECT array_agg(id ORDER BY id) AS written_back FROM sharecount.outbox;
TRUNCATE sharecount.outbox;
SELECT sharecount_outbox_claim_packed(5) = '' AS empty_outbox, sharecount_outbox_claim_packed(NULL) IS NULL AS strict;

-- errors: as sharecount_outbox_claim()
\set VERBOSITY sqlstate
SELECT sharecount_outbox_claim_packed(0);
BEGIN READ ONLY;
SELECT sharecount_outbox_claim_packed(1);
ROLLBACK;
\set VERBOSITY default

-- privileges: not executable by PUBLIC; the bridge role gets it by GRANT
CREATE ROLE regress_sc_packed;
SET ROLE regress_sc_packed;
SELECT sharecount_outbox_claim_packed(1);
RESET ROLE;
GRANT EXECUTE ON FUNCTION sharecount_outbox_claim_packed(int) TO regress_sc_packed;
SET ROLE regress_sc_packed;
SELECT sharecount_outbox_claim_packed(1) = '' AS granted;
RESET ROLE;
SELECT p.prosecdef AS security_definer, p.proconfig AS config, p.provolatile AS volatility, p.proisstrict AS strict
	FROM pg_proc p WHERE p.oid = 'sharecount_outbox_claim_packed(int)'::regprocedure;
REVOKE ALL ON FUNCTION sharecount_outbox_claim_packed(int) FROM regress_sc_packed;
DROP ROLE regress_sc_packed;

-- the size limit: a claim stops before its value could pass 16 MiB (fewer
-- jobs than max); the rest stays for the next claim
INSERT INTO sharecount.outbox (id, job, amount, content_type, content_id, share_id, user_id, channel_id, campaign_id)
	SELECT n, 'c', NULL, 'article', repeat('i', 256), repeat('s', 1000), repeat('u', 1000),
		repeat('h', 1000), repeat('m', 1000)
	FROM generate_series(1, 4500) n;
BEGIN;
CREATE TEMP TABLE claim_packed_big ON COMMIT DROP AS SELECT sharecount_outbox_claim_packed(10000) AS v;
SELECT octet_length(v) <= 16 * 1024 * 1024 AS within_limit, octet_length(v) > 15 * 1024 * 1024 AS nearly_full,
	cardinality(string_to_array(v, E'\n')) - 1 AS jobs FROM claim_packed_big;
SELECT count(*) AS rest FROM sharecount_outbox_claim(10000);
ROLLBACK;

DROP TABLE claim_packed_links;
TRUNCATE sharecount.outbox;
