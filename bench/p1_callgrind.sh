#!/usr/bin/env bash
# P1's deterministic yardstick: instructions per INSERT in a backend, plain
# vs tracked, counted by valgrind's callgrind (not part of `make bench`; the
# tps ratio of bench/p1p2.sh is the target, this explains it and does not
# depend on the machine's load).
#
# For each variant a fresh cluster is initdb'd with the extension and the
# tables of bench/p1p2.sh, then a single-user backend (`postgres --single`)
# runs `PREPARE p AS INSERT …` and `EXECUTE p` 200 times, and again 1,200
# times; instructions per INSERT = (Ir(1,200) − Ir(200)) / 1,000, which
# cancels start-up and includes execution, the trigger and the commit (not
# the kernel, the client or the WAL flush).  Repeatable to about ±1 %.
#
# Usage: bench/p1_callgrind.sh [variant…]   variants: plain tracked
#   tracked_pk (the outbox with the primary key on id it had until session 3:
#   what an index costs)
#   claim (the publisher's side, docs/performance.md "Publisher and
#   application side"): instructions per job of a claim of CLAIM_B (500) jobs
#   and its done, `SELECT sharecount_outbox_done(array_agg(id)) FROM
#   sharecount_outbox_claim(B)` in its own transaction, on an outbox filled
#   in the same script (through the tracked table, 13 rows per key, every
#   optional field set); (Ir(12 claims) − Ir(2 claims)) / (10 · B).  The
#   rows are aggregated in the backend, not sent to a client.
# P1_PROFILE=FILE keeps the callgrind output of the last run (for claim: of
# the 12 claims) in FILE, for callgrind_annotate --inclusive=yes --tree=caller.
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
cd "$SC_ROOT"
command -v valgrind >/dev/null || { echo "p1_callgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
[ $# -gt 0 ] || set -- plain tracked tracked_pk claim
CLAIM_B=${CLAIM_B:-500}
sc_init
sc_install
W=$SC_TMP/cg
mkdir -p "$W"
[ "$(id -u)" -eq 0 ] && chown postgres: "$W"

instructions() { # instructions DATADIR TABLE N -> Ir of the whole run
  { echo "PREPARE p AS INSERT INTO $2 (content_type, content_id, user_id) VALUES ('article', '1', 'user1');"
    for _ in $(seq "$3"); do echo "EXECUTE p;"; done; } > "$W/script.sql"
  sc_as_pg valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" \
    "$SC_SHADOW_BIN/postgres" --single -D "$1" postgres < "$W/script.sql" >/dev/null 2>&1
  callgrind_annotate "$W/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

# claims DATADIR K -> Ir of a run that fills the outbox with 12 claims' worth
# of jobs, then makes K claims (each in its own transaction) on a copy of DATADIR
claims() {
  rm -rf "$W/copy"; cp -a "$1" "$W/copy"
  { echo "INSERT INTO share_links (content_type, content_id, user_id, channel_id, campaign_id)
          SELECT 'article', (i % 13)::text, 'user' || i, 'web', 'spring' FROM generate_series(1, $((12 * CLAIM_B))) i;" | tr '\n' ' '
    echo
    for _ in $(seq "$2"); do
      echo "BEGIN;"
      echo "SELECT sharecount_outbox_done(array_agg(id)) FROM sharecount_outbox_claim($CLAIM_B);"
      echo "COMMIT;"
    done; } > "$W/script.sql"
  sc_as_pg valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" \
    "$SC_SHADOW_BIN/postgres" --single -D "$W/copy" postgres < "$W/script.sql" >/dev/null 2>&1
  callgrind_annotate "$W/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

for v in "$@"; do
  case $v in
    plain) tbl=share_links_plain; extra= ;;
    tracked) tbl=share_links; extra= ;;
    tracked_pk) tbl=share_links; extra="ALTER TABLE sharecount.outbox ADD PRIMARY KEY (id);" ;;
    claim) tbl=; extra= ;;
    *) echo "p1_callgrind: unknown variant $v" >&2; exit 2 ;;
  esac
  d=$W/data-$v
  sc_as_pg "$SC_PGBIN/initdb" -D "$d" -A trust >/dev/null
  echo "CREATE EXTENSION sharecount; $(echo "$SC_SHARE_LINKS_DDL" | tr '\n' ' ')
        CREATE TABLE share_links_plain (LIKE share_links INCLUDING ALL);
        SELECT sharecount_track('share_links'); $extra" | tr '\n' ' ' |
    sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$d" postgres >/dev/null 2>&1
  if [ "$v" = claim ]; then
    a=$(claims "$d" 2)
    b=$(claims "$d" 12)
    [ -z "${P1_PROFILE:-}" ] || cp "$W/cg.out" "$P1_PROFILE"
    printf '%-16s %8d instructions per claimed job (claims of %d, with done)\n' "$v" $(( (b - a) / (10 * CLAIM_B) )) "$CLAIM_B"
    continue
  fi
  a=$(instructions "$d" "$tbl" 200)
  b=$(instructions "$d" "$tbl" 1200)
  [ -z "${P1_PROFILE:-}" ] || cp "$W/cg.out" "$P1_PROFILE"
  printf '%-16s %8d instructions per INSERT\n' "$v" $(( (b - a) / 1000 ))
done
