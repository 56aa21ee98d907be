#!/usr/bin/env bash
# The publisher's claim, result sent to the client included, in backend CPU
# time (docs/performance.md, "P7 bridge"; bench/claim_wire_callgrind.sh counts
# instructions instead).  A private server gets an outbox of 2 * B jobs
# (through the tracked table, every optional field set); then, in paired
# rounds, one psql session per statement runs it N times, each in a
# transaction rolled back (every claim takes the same B jobs), its rows sent
# to psql (output to /dev/null), and the backend reads its own CPU time from
# /proc/self/schedstat (nanoseconds on CPU) before and after.  Prints each
# round's microseconds per job, then the median of each statement.  The
# statements, as in claim_wire_callgrind.sh: rows (sharecount_outbox_claim,
# one result row per job), packed (sharecount_outbox_claim_packed, one value),
# count (count(*) over sharecount_outbox_claim: no row sent).  Run it on a
# quiet machine; the paired rounds and the median only soften the noise.
#
# Usage: bench/claim_wire_cpu.sh [B (500)] [N (300)] [ROUNDS (7)] [statements (rows packed count)]
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
. "$(dirname "$0")/claim_wire.sh"
B=${1:-500}; N=${2:-300}; ROUNDS=${3:-7}
shift $(($# < 3 ? $# : 3))
[ $# -gt 0 ] || set -- rows packed count
cd "$SC_ROOT"
sc_init
sc_pg_start "autovacuum = off" >/dev/null
sc_psql -c "CREATE EXTENSION sharecount; $SC_SHARE_LINKS_DDL
  SELECT sharecount_track('share_links');
  INSERT INTO share_links (content_type, content_id, user_id, channel_id, campaign_id)
    SELECT 'article', (i % 13)::text, 'user' || i, 'web', 'spring' FROM generate_series(1, 2 * $B) i;" >/dev/null

# us_per_job SQL: one session's backend CPU per claimed job, in microseconds
us_per_job() {
  { echo "SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint AS t0 \\gset"
    echo '\o /dev/null'
    for _ in $(seq "$N"); do printf 'BEGIN;\n%s;\nROLLBACK;\n' "$1"; done
    echo '\o'
    echo "SELECT round((split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - :t0) / 1000.0 / ($N * $B), 3);"
  } | sc_psql
}

declare -A all
for r in $(seq "$ROUNDS"); do
  line="round $r:"
  for s in "$@"; do
    sql=$(claim_stmt "$s" "$B")
    [ -n "$sql" ] || { echo "claim_wire_cpu: unknown statement $s" >&2; exit 2; }
    v=$(us_per_job "$sql")
    all[$s]="${all[$s]:-} $v"
    line="$line $s $v"
  done
  echo "$line us/job"
done
for s in "$@"; do
  printf '%-8s median %s us per claimed job (%d rounds of %d claims of %d)\n' "$s" \
    "$(echo ${all[$s]} | tr ' ' '\n' | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')" "$ROUNDS" "$N" "$B"
done
