#!/usr/bin/env bash
# The publisher's claim as the server runs it for the bridge, result sent to
# the client included (docs/performance.md, "P7 bridge"), counted in
# instructions by valgrind's callgrind (not part of `make bench`).
# bench/p1_callgrind.sh claim runs in a single-user backend, whose results go
# to no client; here a real postmaster runs under callgrind (each backend
# writes its own count when it exits) and pgbench, outside valgrind, runs the
# statement as the bridge does: prepared (extended protocol), every row sent
# and received, in a transaction of its own, here rolled back, so every claim
# takes the same B jobs of an outbox filled once (through the tracked table,
# every optional field set).
#
# Per statement: one connection runs it K1 times, another K2 times;
# instructions per job = (Ir(backend of K2) - Ir(backend of K1)) / ((K2 - K1) * B),
# which cancels start-up, the connection and the prepare (after a first
# session of 2 claims, not counted).  Statements:
#   rows    SELECT id, job_name, job_id, body FROM sharecount_outbox_claim(B)
#           (the bridge's claim until 1.1's packed claim)
#   packed  SELECT sharecount_outbox_claim_packed(B)   (the bridge's claim now)
#   count   SELECT count(*) FROM sharecount_outbox_claim(B)   (no row sent)
#
# Usage: bench/claim_wire_callgrind.sh [B (500)] [K1 (10)] [K2 (60)] [statements (rows packed count)]
# Needs valgrind and pgbench.  Note: valgrind counts each byte a rep movsb/stosb
# copies or sets (glibc's memcpy/memset of large blocks) as an instruction.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
. "$(dirname "$0")/claim_wire.sh"
B=${1:-500}; K1=${2:-10}; K2=${3:-60}
shift $(($# < 3 ? $# : 3))
[ $# -gt 0 ] || set -- rows packed count
cd "$SC_ROOT"
command -v valgrind >/dev/null || { echo "claim_wire_callgrind: valgrind is not installed" >&2; exit 2; }
sc_init
sc_install
W=$SC_TMP/cg
mkdir -p "$W/out"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$W"
d=$W/data
sc_as_pg "$SC_PGBIN/initdb" -D "$d" -A trust >/dev/null
echo "CREATE EXTENSION sharecount; $(echo "$SC_SHARE_LINKS_DDL" | tr '\n' ' ')
      SELECT sharecount_track('share_links');
      INSERT INTO share_links (content_type, content_id, user_id, channel_id, campaign_id)
        SELECT 'article', (i % 13)::text, 'user' || i, 'web', 'spring' FROM generate_series(1, 2 * $B) i;" |
  tr '\n' ' ' | sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$d" postgres >/dev/null 2>&1
port=$(sc_free_port)
sc_as_pg valgrind --tool=callgrind --callgrind-out-file="$W/out/cg.%p" \
  "$SC_SHADOW_BIN/postgres" -D "$d" -p "$port" -k "$W" -c listen_addresses= -c autovacuum=off \
  -c fsync=off >"$W/pg.log" 2>&1 &
sc_on_exit "sc_as_pg $SC_SHADOW_BIN/pg_ctl -D $d -m fast -w stop >/dev/null 2>&1"
for _ in $(seq 600); do pg_isready -q -h "$W" -p "$port" && break; sleep 0.2; done

# ir SQL K -> Ir of the backend that ran SQL K times for pgbench -M prepared
# (extended protocol, as the bridge: a simple-protocol EXECUTE would put the
# result in a tuplestore first); its callgrind file is the new one that ran
# the claim
ir() {
  local before f
  printf 'BEGIN;\n%s;\nROLLBACK;\n' "$1" > "$W/script.sql"
  before=$(ls "$W/out")
  pgbench -n -M prepared -c 1 -t "$2" -f "$W/script.sql" -h "$W" -p "$port" -U postgres postgres >/dev/null
  for _ in $(seq 600); do
    for f in $(ls "$W/out" | grep -vxF "$before"); do
      grep -q '^totals:' "$W/out/$f" && grep -q 'claim_into' "$W/out/$f" && break 2
    done
    f=
    sleep 0.2
  done
  [ -n "$f" ] || { echo "claim_wire_callgrind: no callgrind output of the backend" >&2; return 1; }
  callgrind_annotate "$W/out/$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

for s in "$@"; do
  sql=$(claim_stmt "$s" "$B")
  [ -n "$sql" ] || { echo "claim_wire_callgrind: unknown statement $s" >&2; exit 2; }
  ir "$sql" 2 >/dev/null # a session first: hint bits, the first claims' one-time work
  a=$(ir "$sql" "$K1")
  b=$(ir "$sql" "$K2")
  printf '%-8s %8d instructions per claimed job (claims of %d, result sent; %s)\n' "$s" \
    $(( (b - a) / ((K2 - K1) * B) )) "$B" "$sql"
done
