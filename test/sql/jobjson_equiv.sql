-- sharecount_apply_json's two readers (src/jobjson.c): the scanner that
-- reads escape-free documents and fills the messages itself, and
-- pg_parse_json, which reads any other document through callbacks.  For the
-- same messages, the rows (statuses, errors, change rows) must be the same
-- whichever reader reads them, and the same as sharecount_apply_batch_changes
-- gives from jsonb[].  Each batch is given three ways, each in a transaction
-- that is rolled back, from the same state:
--   jsonb:   the messages as jsonb[], and a last message "A";
--   scanner: the array as text, the last message written "A";
--   parser:  the same text, the last message written "\u0041" (one escape:
--            the scanner gives up and pg_parse_json reads the whole batch).
-- Then documents that are no batch (bad JSON, numbers numeric cannot hold,
-- not an array): the same error both ways.
\set SHOW_CONTEXT never
TRUNCATE sharecount.outbox, sharecount.counts, sharecount.applied_jobs, sharecount.stats;

CREATE TABLE je_msgs (n serial PRIMARY KEY, m text NOT NULL);
-- je_job(jobId, fields after "jobId", pattern): a message in the bridge's compact form
CREATE FUNCTION je_job(id text, rest text, pattern text DEFAULT 'share_created') RETURNS text
LANGUAGE sql AS $$
	SELECT format('{"pattern":"%s","data":{"jobId":"%s"%s}}', pattern, id, rest)
$$;
CREATE FUNCTION je_created(id text, extra text DEFAULT '') RETURNS text
LANGUAGE sql AS $$
	SELECT je_job(id, ',"shareId":"s","contentType":"article","contentId":"k1","userId":"u"'
		',"timestamp":"2026-11-27T20:15:03.123Z"' || extra)
$$;
CREATE FUNCTION je_update(id text, extra text) RETURNS text
LANGUAGE sql AS $$
	SELECT je_job(id, ',"contentType":"article","contentId":"k2","timestamp":"2026-11-27T20:15:03Z"' || extra,
		'share_count_update')
$$;

INSERT INTO je_msgs (m) VALUES
	-- the bridge's three kinds, compact
	(je_created('je-1')),
	(je_created('je-2', ',"channelId":"email","campaignId":null')),
	(je_job('je-3', ',"shareId":null,"contentType":"article","contentId":"k1","userId":null,"channelId":null,'
		'"campaignId":"c","timestamp":"2026-11-27T20:15:03.123Z"', 'share_deleted')),
	(je_update('je-4', ',"operation":"increment","amount":5,"channelId":"x"')),
	(je_update('je-5', ',"operation":"decrement","amount":1000000')),
	(je_update('je-6', ',"operation":"decrement","amount":null')),
	(je_update('je-7', ',"operation":"increment"')),
	-- whitespace everywhere
	(E' \t\r\n{ \t"pattern"\n:\r"share_created"\t,\n"data" : { "jobId" : "je-8" , "shareId" :null ,'
	 '"contentType"\t:\t"article", "contentId":"k3" ,"userId": null,\r\n"timestamp":"2026-11-27T20:15:03Z" } }\n\t'),
	(E'{"pattern":"share_created","data":{}\n}'),
	-- numbers at the limits, anywhere
	(je_update('je-9', ',"operation":"increment","amount":1e6')),
	(je_update('je-10', ',"operation":"increment","amount":1E+6')),
	(je_update('je-11', ',"operation":"increment","amount":10.0e5')),
	(je_update('je-12', ',"operation":"increment","amount":1000000.000')),
	(je_update('je-13', ',"operation":"increment","amount":1000000.001')),
	(je_update('je-14', ',"operation":"increment","amount":0.1e1')),
	(je_update('je-15', ',"operation":"increment","amount":-0')),
	(je_update('je-16', ',"operation":"increment","amount":0e0')),
	(je_update('je-17', ',"operation":"increment","amount":-1')),
	(je_update('je-18', ',"operation":"increment","amount":123456789012345678901234567890')),
	(je_update('je-19', ',"operation":"increment","amount":1e-0')),
	(je_update('je-20', ',"operation":"increment","amount":5E-1')),
	(je_update('je-21', ',"operation":"increment","amount":true')),
	(je_update('je-22', ',"operation":"increment","amount":false')),
	(je_update('je-23', ',"operation":"increment","amount":"1"')),
	(je_update('je-24', ',"operation":"increment","amount":[1]')),
	(je_update('je-25', ',"operation":"increment","amount":{"a":1}')),
	(je_created('je-26', ',"zz":[1e300,-1e-300,0.000000001,-0.0E-0,99999999999999999999]')),
	('{"id":1e1000,"pattern":"share_created","data":{}}'),
	-- keys given twice: the last one wins, in the envelope and in data
	(je_created('je-27', ',"contentId":"k4"')),
	(je_created('je-28', ',"jobId":"je-28b"')),
	(je_created('je-29', ',"timestamp":"bad"')),
	(je_created('je-30', ',"timestamp":"bad","timestamp":"2026-11-27T20:15:03Z"')),
	(je_update('je-31', ',"operation":"increment","amount":7,"amount":null')),
	(je_update('je-32', ',"operation":"increment","amount":null,"amount":7')),
	(je_update('je-33', ',"amount":2,"operation":"increment","operation":"decrement"')),
	(je_created('je-34', ',"userId":{"a":1},"userId":"u2"')),
	(je_created('je-35', ',"userId":"u2","userId":[]')),
	('{"pattern":"share_created","data":{"jobId":"je-36","shareId":"s","contentType":"a","contentId":"k","userId":"u",'
	 '"timestamp":"2026-11-27T20:15:03Z"},"data":{"jobId":"je-36"}}'),
	('{"pattern":"share_created","data":{"jobId":"je-37","zz":1},"data":{"jobId":"je-37","shareId":"s","contentType":"a",'
	 '"contentId":"k","userId":"u","timestamp":"2026-11-27T20:15:03Z"}}'),
	('{"pattern":"share_created","data":null,"data":{"jobId":"je-38","shareId":"s","contentType":"a",'
	 '"contentId":"k","userId":"u","timestamp":"2026-11-27T20:15:03Z"}}'),
	('{"pattern":"share_created","data":{"jobId":"je-39","shareId":"s","contentType":"a",'
	 '"contentId":"k","userId":"u","timestamp":"2026-11-27T20:15:03Z"},"data":[{"jobId":1}]}'),
	('{"pattern":"share_deleted","data":{"jobId":"je-40","shareId":"s","contentType":"a","contentId":"k","userId":"u",'
	 '"timestamp":"2026-11-27T20:15:03Z"},"pattern":"share_created","pattern":"share_count_update"}'),
	('{"pattern":"share_created","id":1,"id":{"pattern":1},"data":{"jobId":"je-41","shareId":"s","contentType":"a",'
	 '"contentId":"k","userId":"u","timestamp":"2026-11-27T20:15:03Z"}}'),
	-- keys near the job fields' names (same length, first bytes, prefixes), and the first unknown one named
	(je_created('je-42', ',"jobID":1')),
	(je_created('je-43', ',"jobIdx":1,"job":1')),
	(je_created('je-44', ',"userID":1,"amounT":1')),
	(je_created('je-45', ',"uxxxxx":1,"axxxxx":1')),
	(je_created('je-46', ',"shareIdx":1,"sharedI":1')),
	(je_created('je-47', ',"cxxxxxxxx":1')),
	(je_created('je-48', ',"chxxxxxxx":1')),
	(je_created('je-49', ',"oxxxxxxxx":1')),
	(je_created('je-50', ',"txxxxxxxx":1')),
	(je_created('je-51', ',"contentIds":1,"campaignIX":1')),
	(je_created('je-52', ',"contentTypf":1')),
	(je_created('je-53', ',"":1')),
	(je_created('je-54', ',"operation":"increment"')),
	(je_created('je-55', ',"amount":1')),
	('{"patterns":"share_created","pattern":"share_created","data":{}}'),
	('{"Data":1,"dat":2,"ID":3,"pattern":"share_created","data":{}}'),
	('{"":1,"pattern":"share_created","data":{}}'),
	-- wrong types, missing fields
	('{"pattern":1,"data":{}}'), ('{"pattern":null,"data":{}}'), ('{"pattern":true,"data":{}}'),
	('{"pattern":"share_created","data":"x"}'), ('{"pattern":"share_created","data":1.5}'),
	('{"pattern":"share_created","data":false}'), ('{"pattern":"share_created","data":[]}'),
	('{"pattern":"Share_created","data":{}}'), ('{"pattern":"","data":{}}'),
	(je_job('je-56', ',"shareId":1,"contentType":"a","contentId":"k","userId":"u","timestamp":"2026-11-27T20:15:03Z"')),
	(je_job('je-57', ',"shareId":"s","contentType":null,"contentId":"k","userId":"u","timestamp":"2026-11-27T20:15:03Z"')),
	(je_job('je-58', ',"shareId":"s","contentType":"a","contentId":"k","userId":"u","timestamp":20261127')),
	(je_job('je-59', ',"shareId":"s","contentType":"a","userId":"u","timestamp":"2026-11-27T20:15:03Z"')),
	(je_job('je-60', ',"contentType":"a","contentId":"k","userId":"u","timestamp":"2026-11-27T20:15:03Z"')),
	(je_job('je-61', ',"shareId":"s","contentType":"a","contentId":"k","userId":"u"', 'share_deleted')),
	(je_update('je-62', ',"amount":1')),
	(je_update('je-63', ',"operation":"Increment"')),
	(je_update('je-64', ',"operation":"incremen"')),
	(je_update('je-65', ',"operation":"increments"')),
	(je_update('je-66', ',"operation":null')),
	(je_update('je-67', ',"operation":"increment","shareId":"s"')),
	('{"pattern":"share_created","data":{"jobId":7,"shareId":"s","contentType":"a","contentId":"k","userId":"u",'
	 '"timestamp":"2026-11-27T20:15:03Z"}}'),
	-- timestamps
	(je_created('je-68', ',"timestamp":"2026-11-27t20:15:03.123456789+05:30"')),
	(je_created('je-69', ',"timestamp":"2024-02-29 00:00:60z"')),
	(je_created('je-70', ',"timestamp":"2023-02-29T00:00:00Z"')),
	(je_created('je-71', ',"timestamp":"2026-11-27T20:15"')),
	(je_created('je-72', ',"timestamp":"2026-11-27T20:15:03-0130"')),
	(je_created('je-73', ',"timestamp":"294277-01-01T00:00:00Z"')),
	-- strings: lengths around 16-byte steps, the limits, non-ASCII, DEL, quotes of the other kind
	(je_created('je-74', ',"contentId":"' || repeat('a', 15) || '"')),
	(je_created('je-75', ',"contentId":"' || repeat('b', 16) || '"')),
	(je_created('je-76', ',"contentId":"' || repeat('c', 17) || '"')),
	(je_created('je-77', ',"contentId":"' || repeat('d', 31) || '"')),
	(je_created('je-78', ',"contentId":"' || repeat('e', 32) || '"')),
	(je_created('je-79', ',"contentId":"' || repeat('f', 33) || '"')),
	(je_created(repeat('j', 128))),
	(je_created(repeat('k', 129))),
	(je_created('')),
	(je_created('je-80', ',"contentId":"' || repeat('é', 64) || '"')),
	(je_created('je-81', ',"contentId":"' || repeat('é', 65) || '"')),
	(je_created('je-82', ',"contentId":"😀 ü ' || chr(127) || ' '' / ~"')),
	(je_created('je-83', ',"contentType":"' || repeat('t', 200) || '"')),
	(je_created('je-84', ',"channelId":"' || repeat('€', 40) || '","campaignId":""')),
	(je_created('je-85', ',"zz":"' || repeat('0123456789abcdef', 6400) || '"')),
	(je_created('je-86', ',"' || repeat('y', 300) || '":1')),
	-- nesting: as deep as the scanner goes (16 containers), in data's fields and elsewhere
	(je_created('je-87', ',"campaignId":' || repeat('[', 13) || repeat(']', 13))),
	('{"id":' || repeat('{"a":', 14) || '1' || repeat('}', 14) || ',"pattern":"share_created","data":{}}'),
	(je_created('je-88', ',"zz":{"jobId":"x","pattern":"y","data":{"contentId":1}}')),
	('{"pattern":{"pattern":"share_created","data":{"jobId":1}},"data":{}}'),
	('{"pattern":"share_created","data":{"jobId":"je-89","shareId":"s","contentType":"a","contentId":"k","userId":"u",'
	 '"timestamp":"2026-11-27T20:15:03Z","x":{"data":{"jobId":2}}}}'),
	-- not a message object
	('[]'), ('[' || je_created('je-90') || ']'), ('"share_created"'), ('0'), ('-1.5e3'), ('null'), ('true'),
	('false'), ('{}'), ('[{}]'), ('[[{"pattern":"share_created"}]]'),
	-- after all of the above, a valid one again (nothing of the others left over)
	(je_created('je-91'));

-- escapes and deep nesting, in a batch of their own (the scanner gives up
-- on any document with one: pg_parse_json reads it)
CREATE TABLE je_esc (n serial PRIMARY KEY, m text NOT NULL);
INSERT INTO je_esc (m) VALUES
	(je_created('je-e1', ',"contentId":"\u006b\u0031"')),
	(je_created('je-e2', ',"contentId":"\"\\\/\b\f\n\r\t"')),
	(je_created('je-e3', ',"contentId":"\ud83d\ude00\u00e9"')),
	(je_created('je-e4', ',"contentId":"' || repeat('\u00e9', 64) || '"')),
	(je_created('je-e5', ',"contentId":"' || repeat('\u00e9', 65) || '"')),
	(je_created('je-e6', ',"\u0063ontentId":"k9"')),
	(je_created('je-e7', ',"\u0063ontentId":"k9","contentId":"k10"')),
	(je_created('je-e8', ',"z\u00e9":1,"z\"":2')),
	('{"\u0070attern":"share_\u0063reated","data":{"\u006aobId":"je-e9","shareId":"s","contentType":"a",'
	 '"contentId":"k","userId":"u","timestamp":"2026-11-27T20:15:03Z"},"\u0064ata":{}}'),
	(je_update('je-e10', ',"operation":"\u0064ecrement","amount":3')),
	(je_created('je-e11', ',"timestamp":"2026-11-27T20:15:03\u005a"')),
	(je_created(repeat('\u006a', 128))),
	(je_created(repeat('\u006a', 129))),
	-- deeper than the scanner goes
	('{"id":' || repeat('[', 20) || repeat(']', 20) || ',"pattern":"share_created","data":{}}'),
	('{"id":' || repeat('{"a":', 15) || '1' || repeat('}', 15) || ',"pattern":"share_created","data":{}}'),
	(je_created('je-e12', ',"campaignId":' || repeat('[', 14) || repeat(']', 14))),
	(je_created('je-e13'));

-- je_rows(text of the array): the rows of sharecount_apply_json, one line each
CREATE FUNCTION je_rows(arr text) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(concat_ws(' | ', ord, status, error, content_type, content_id, share_count, delta, version),
		E'\n' ORDER BY ord NULLS LAST, content_type, content_id)
	FROM sharecount_apply_json(arr, true)
$$;
CREATE FUNCTION je_rows_jsonb(msgs jsonb[]) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(concat_ws(' | ', ord, status, error, content_type, content_id, share_count, delta, version),
		E'\n' ORDER BY ord NULLS LAST, content_type, content_id)
	FROM sharecount_apply_batch_changes(msgs)
$$;

SELECT count(*) AS messages, count(*) FILTER (WHERE m LIKE '%\\%') AS with_escapes FROM je_msgs;
BEGIN;
SELECT je_rows_jsonb((SELECT array_agg(m::jsonb ORDER BY n) || '"A"'::jsonb FROM je_msgs)) AS via_jsonb \gset
ROLLBACK;
BEGIN;
SELECT je_rows((SELECT '[' || string_agg(m, ',' ORDER BY n) || ',"A"]' FROM je_msgs)) AS via_scanner \gset
ROLLBACK;
BEGIN;
SELECT je_rows((SELECT '[' || string_agg(m, ',' ORDER BY n) || ',"\u0041"]' FROM je_msgs)) AS via_parser \gset
ROLLBACK;
SELECT :'via_jsonb' = :'via_scanner' AS scanner_as_jsonb, :'via_jsonb' = :'via_parser' AS parser_as_jsonb;
\echo :via_scanner

-- the messages with escapes: pg_parse_json, and jsonb
BEGIN;
SELECT je_rows_jsonb((SELECT array_agg(m::jsonb ORDER BY n) FROM je_esc)) AS esc_jsonb \gset
ROLLBACK;
BEGIN;
SELECT je_rows((SELECT '[' || string_agg(m, ',' ORDER BY n) || ']' FROM je_esc)) AS esc_text \gset
ROLLBACK;
SELECT :'esc_jsonb' = :'esc_text' AS fallback_as_jsonb;
\echo :esc_text

-- documents that are no batch: the error (SQLSTATE, message, detail) of
-- sharecount_apply_json and of jsonb_in, which reads JSON with the same
-- lexer (a document that is JSON but no array is an error of its own)
CREATE FUNCTION je_error(doc text, as_jsonb boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	IF as_jsonb THEN
		PERFORM doc::jsonb;
	ELSE
		PERFORM count(*) FROM sharecount_apply_json(doc, true);
	END IF;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN concat_ws(' | ', st, msg, nullif(det, ''));
END
$$;
CREATE TABLE je_docs (n serial PRIMARY KEY, d text NOT NULL);
INSERT INTO je_docs (d) VALUES
	('[{"id":1e1000000}]'), ('[{"pattern":"share_created","data":{"amount":-1e131073}}]'), ('[{"id":1e131071}]'),
	('[1e131072]'), ('[{"id":1e-1000000}]'), ('[0.1e-16384]'), ('[1,2,{"a":[3,1e999999]}]'),
	(E'[{"pattern":"share_created","data":{"jobId":"a\tb"}}]'), (E'[{"id":"\x01"}]'), (E'[{"i\nd":1}]'),
	('[{"id":"\u0000"}]'), ('[{"id":"\ud800"}]'), ('[{"id":"\x"}]'), ('[{"id":"\u12"}]'),
	('[{"a":1,}]'), ('[1,]'), ('[,1]'), ('[{"a" 1}]'), ('[{"a":}]'), ('[{a:1}]'), ('[{"a":1]'), ('[{"a":1}}]'),
	('[01]'), ('[1.]'), ('[.5]'), ('[-]'), ('[1e]'), ('[1e+]'), ('[+1]'), ('[0x1]'), ('[1.5x]'), ('[Infinity]'),
	('[NaN]'), ('[tru]'), ('[truex]'), ('[nul]'), ('[null1]'), ('[falsee]'), ('[True]'), ('[1 2]'),
	('[{"id":1}{"id":2}]'), ('[[]]'), ('[]]'), ('[] []'), ('[] x'), ('['), ('[{'), ('[{"a'), ('[{"a"'),
	('[{"a":"b'), ('[{"a":"b"'), ('["\'), (''), (' '), ('{}'), ('"[]"'), ('42'), ('null'), ('{"a":[1]}'),
	(E'\n[\n1\n,\n{ }\n]\n'), ('[{"pattern":"share_created"}]');
SELECT n, d, je_error(d, false) AS apply_json, je_error(d, true) AS jsonb_in FROM je_docs ORDER BY n;
SELECT count(*) FILTER (WHERE je_error(d, true) <> 'no error' AND je_error(d, false) <> je_error(d, true))
	AS errors_not_as_jsonb FROM je_docs;
SELECT count(*) FROM sharecount.counts;
DROP TABLE je_msgs, je_esc, je_docs;
DROP FUNCTION je_job, je_created, je_update, je_rows, je_rows_jsonb, je_error;
