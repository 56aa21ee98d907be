# workload.awk — one chunk of the chaos soak's application workload (docs/soak.md).
#
#   awk -v seed=S -v client=C -v chunk=J -v units=N -v keys=K -f workload.awk
#
# Prints N units of SQL for psql: single-row INSERTs, DELETEs, re-targeting
# UPDATEs (content id and/or content type), UPDATEs that change no key,
# multi-row INSERTs and DELETEs, transactions (committed or rolled back, with
# savepoints) and now and then a TRUNCATE (alone, inside a transaction, or
# rolled back).  Keys are ('article'|'post', 'k0'..'k<K-1>').
#
# Rules: the output depends only on (seed, client, chunk, units, keys), so a
# chunk is replayed exactly from the seed; no statement depends on the result
# of another (a DELETE or UPDATE of a key with no row is a no-op), so a chunk
# cut short by a lost connection leaves nothing half-done but its open
# transaction, which PostgreSQL rolls back.

# Unit mix, cumulative thresholds on rand() (the rest, 1 - P_TRUNC_END, are
# UPDATEs that change no key).
BEGIN {
	P_INSERT = 0.42          # single-row INSERT
	P_INSERT_MANY = 0.46     # INSERT ... SELECT of 2-20 rows over a few keys
	P_DELETE = 0.64          # DELETE one row of a key
	P_DELETE_KEY = 0.655     # DELETE every row of a key
	P_RETARGET = 0.79        # UPDATE one row's content id (sometimes its type too)
	P_RETARGET_KEY = 0.80    # UPDATE every row of a key to another key
	P_TXN = 0.93             # BEGIN; 2-5 units; COMMIT (80 %) or ROLLBACK
	P_TRUNC_END = 0.9305     # TRUNCATE (0.05 % of units; 1 in 3 inside a transaction)
}

function key_type() { return rand() < 0.7 ? "article" : "post" }
function key_id() { return "k" int(rand() * keys) }
function where_key(   t, k) { t = key_type(); k = key_id(); return "content_type = '" t "' AND content_id = '" k "'" }
function one_row() { return "(SELECT id FROM share_links WHERE " where_key() " LIMIT 1)" }

function ins(   ch, camp) {
	ch = rand() < 0.5 ? "'c" int(rand() * 5) "'" : "NULL"
	camp = rand() < 0.3 ? "'camp" int(rand() * 3) "'" : "NULL"
	nins++
	return "INSERT INTO share_links (content_type, content_id, user_id, channel_id, campaign_id) VALUES ('" \
		key_type() "', '" key_id() "', 'u" client "." chunk "." nins "', " ch ", " camp ");"
}
function ins_many(   n, spread, t) {
	n = 2 + int(rand() * 19); spread = 1 + int(rand() * 4); t = key_type()
	return "INSERT INTO share_links (content_type, content_id, user_id) SELECT '" t "', 'k' || ((g % " spread ") + " \
		int(rand() * keys) ") % " keys ", 'm" client "." chunk "' FROM generate_series(1, " n ") g;"
}
function del() { return "DELETE FROM share_links WHERE id = " one_row() ";" }
function del_key() { return "DELETE FROM share_links WHERE " where_key() ";" }
function retarget(   set) {
	set = "content_id = '" key_id() "'"
	if (rand() < 0.3) set = set ", content_type = '" key_type() "'"
	return "UPDATE share_links SET " set " WHERE id = " one_row() ";"
}
function retarget_key() { return "UPDATE share_links SET content_id = '" key_id() "' WHERE " where_key() ";" }
function no_key_change() { return "UPDATE share_links SET channel_id = 'c" int(rand() * 5) "' WHERE id = " one_row() ";" }
function truncate_unit(   r) {
	r = rand()
	if (r < 0.67) return "TRUNCATE share_links;"
	if (r < 0.84) return "BEGIN;\n" ins() "\nTRUNCATE share_links;\n" ins() "\nCOMMIT;"
	return "BEGIN;\nTRUNCATE share_links;\nROLLBACK;"
}

# simple(): one statement outside a transaction (no TRUNCATE, no nesting).
function simple(   r) {
	r = rand() * P_RETARGET_KEY
	if (r < P_INSERT) return ins()
	if (r < P_INSERT_MANY) return ins_many()
	if (r < P_DELETE) return del()
	if (r < P_DELETE_KEY) return del_key()
	if (r < P_RETARGET) return retarget()
	return retarget_key()
}

function txn(   n, i, s) {
	n = 2 + int(rand() * 4); s = "BEGIN;"
	for (i = 0; i < n; i++) {
		if (rand() < 0.15) s = s "\nSAVEPOINT sp;\n" simple() "\nROLLBACK TO SAVEPOINT sp;"
		else s = s "\n" simple()
	}
	return s "\n" (rand() < 0.8 ? "COMMIT;" : "ROLLBACK;")
}

BEGIN {
	# mawk keeps only the low bits of a large seed: fold it below 2^31 first
	srand((seed * 1000003 + client * 10007 + chunk) % 2147483647)
	for (u = 0; u < units; u++) {
		r = rand()
		if (r < P_RETARGET_KEY) print simple()
		else if (r < P_TXN) print txn()
		else if (r < P_TRUNC_END) print truncate_unit()
		else print no_key_change()
	}
}
