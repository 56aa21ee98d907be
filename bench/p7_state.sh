# p7_state.sh — sourced by bench/p7_callgrind.sh and bench/p7_wire.sh: the
# setup both count the consumer's statement on (docs/performance.md, "P7").
#
# p7_state_sql EXTRA: the SQL that installs the extension, a tracked table,
# p7_batches (K2 batches of B fresh dense jobs over KEYS keys, in the bridge's
# wire form) and the state of a running system (STATE_KEYS other keys,
# STATE_BLOCKS dense dedupe blocks of another origin), on one line; EXTRA is
# run right after sharecount_track().
p7_state_sql() {
  echo "CREATE EXTENSION sharecount; $(echo "$SC_SHARE_LINKS_DDL" | tr '\n' ' ')
    SELECT sharecount_track('share_links'); $1
    CREATE TABLE p7_batches (id bigint PRIMARY KEY, body text NOT NULL);
    INSERT INTO p7_batches SELECT b, json_agg(json_build_object('pattern', 'share_created', 'data',
      json_build_object('jobId', '00000000000000aa-' || (b * $B + j), 'shareId', 's' || j,
      'contentType', 'article', 'contentId', 'k' || (j % $KEYS), 'userId', 'u' || j,
      'timestamp', '2026-12-02T16:00:00.000Z')))::text
      FROM generate_series(1, $K2) b, generate_series(1, $B) j GROUP BY b;
    INSERT INTO sharecount.counts (content_type, content_id, share_count, updated_at)
      SELECT 'video', g::text, 1, now() FROM generate_series(1, $STATE_KEYS) g;
    INSERT INTO sharecount.dedupe_dense (origin, block, n, bits)
      SELECT 187, g, 4096, '\\x00'::bytea FROM generate_series(1, $STATE_BLOCKS) g;" | tr '\n' ' '
}
