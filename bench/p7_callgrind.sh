#!/usr/bin/env bash
# The consumer's stage of P7 (docs/performance.md, "P7"), counted in
# instructions by valgrind's callgrind, so that a change to the apply path can
# be judged without the machine's noise (not part of `make bench`).
#
# A fresh cluster gets the extension, a tracked table and pre-built batches of
# B fresh jobs in the bridge's wire form (a JSON array as text, dense jobIds
# over KEYS keys: 50 by default, 1 for P7's one hot key), and state as a
# running system has it: STATE_KEYS other keys in sharecount.counts and
# STATE_BLOCKS dense dedupe blocks of another origin, analyzed.  A
# single-user backend (`postgres --single`) then runs the consumer's
# statement (bridge/consumer_apply.c: sharecount_apply_json(body, true,
# false), with the changed keys, as with events on, and no row per applied
# job; P7_APPLIED_ROWS=true: a row each, as the bridge had them before) on K1
# batches, and on a copy of the same cluster on K2 batches; instructions
# per job = (Ir(K2) - Ir(K1)) / ((K2 - K1) * B), which cancels start-up and
# includes the parse, validation, dedupe, the counts, trends and stats writes
# and the commit (not printtup and the protocol: single-user mode).
#
# P7_OLD_LIB=PATH: also count another build of sharecount.so (e.g. main's) on
# the same cluster, in a second database whose C functions are pointed at
# that library (pg_proc.probin); both builds must share this tree's SQL.  The
# old build runs the statement the bridge used before sharecount_apply_json
# (sharecount_apply_batch_changes over jsonb_array_elements of the text);
# P7_OLD_STMT=json gives it the new one.
# P7_PROFILE=N: also print the N functions with the most inclusive
# instructions per batch ((K2 run - K1 run) / (K2 - K1), callgrind_annotate).
#
# Usage: bench/p7_callgrind.sh [B (100)] [K1 (10)] [K2 (60)]
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
. "$(dirname "$0")/p7_state.sh"
B=${1:-100}; K1=${2:-10}; K2=${3:-60}
STATE_KEYS=${STATE_KEYS:-100000}      # counts rows already there (other keys)
STATE_BLOCKS=${STATE_BLOCKS:-10000}   # dense dedupe blocks already there (another origin)
KEYS=${KEYS:-50}                      # distinct keys in a batch (P7's pipeline: 1, one hot key)
cd "$SC_ROOT"
command -v valgrind >/dev/null || { echo "p7_callgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
sc_init
sc_install
dbs=(new)
if [ -n "${P7_OLD_LIB:-}" ]; then
  cp "$P7_OLD_LIB" "$SC_TMP/inst$($PG_CONFIG --pkglibdir)/sharecount_old.so"
  dbs=(new old)
fi
W=$SC_TMP/cg
[ "${SC_KEEP_TMP:-0}" != 1 ] || echo "# kept in $SC_TMP" >&2
mkdir -p "$W"
[ "$(id -u)" -eq 0 ] && chown postgres: "$W"
d0=$W/data
sc_as_pg "$SC_PGBIN/initdb" -D "$d0" -A trust >/dev/null
for db in "${dbs[@]}"; do
  probin=
  [ "$db" = old ] && probin="UPDATE pg_proc SET probin = '\$libdir/sharecount_old' WHERE probin = '\$libdir/sharecount';"
  echo "CREATE DATABASE p7_$db" | sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$d0" postgres >/dev/null 2>&1
  p7_state_sql "$probin" |
    sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$d0" "p7_$db" >/dev/null 2>&1
  echo "VACUUM ANALYZE" | sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$d0" "p7_$db" >/dev/null 2>&1
  # the database's C functions load the library meant for it
  lib=sharecount; [ "$db" = old ] && lib=sharecount_old
  echo "SELECT count(*) AS libfuncs FROM pg_proc WHERE probin = '\$libdir/$lib'" |
    sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$d0" "p7_$db" 2>/dev/null | grep -q 'libfuncs = "[1-9]' ||
    { echo "p7_callgrind: the functions of p7_$db do not use $lib.so" >&2; exit 1; }
done

instructions() { # instructions DB K -> Ir of a run of K batches on a copy of the cluster
  local d=$W/run
  rm -rf "$d"; cp -a "$d0" "$d"
  for k in $(seq "$2"); do
    if [ "$1" = old ] && [ "${P7_OLD_STMT:-array}" = array ]; then
      echo "SELECT count(*) FROM sharecount_apply_batch_changes(ARRAY(SELECT e FROM jsonb_array_elements((SELECT body FROM p7_batches WHERE id = $k)::jsonb) WITH ORDINALITY AS t(e, n) ORDER BY n)) WHERE ord IS NOT NULL;"
    else
      echo "SELECT count(*) FROM sharecount_apply_json((SELECT body FROM p7_batches WHERE id = $k), true, ${P7_APPLIED_ROWS:-false}) WHERE ord IS NOT NULL;"
    fi
  done > "$W/script.sql"
  # (without applied rows there is no row to count: the stats count them, once per run)
  echo "SELECT sum(jobs_applied) AS applied FROM sharecount.stats;" >> "$W/script.sql"
  sc_as_pg valgrind --tool=callgrind --callgrind-out-file="$W/cg.$1.$2.out" \
    "$SC_SHADOW_BIN/postgres" --single -D "$d" "p7_$1" < "$W/script.sql" > "$W/out.txt" 2>&1
  grep -q "applied = \"$(( $2 * B ))\"" "$W/out.txt" || { echo "p7_callgrind: the batches were not applied" >&2; tail "$W/out.txt" >&2; exit 1; }
  callgrind_annotate "$W/cg.$1.$2.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

# per_batch DB: the functions' inclusive instructions per batch, (K2 run - K1 run) / (K2 - K1), top P7_PROFILE
per_batch() {
  for k in "$K1" "$K2"; do
    callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$W/cg.$1.$k.out" 2>/dev/null |
      awk -v k="$k" '$2 ~ /^\(/ {gsub(",", "", $1); f = $0; sub(/^[^:]*:/, "", f); sub(/ \[.*/, "", f); print k, f, $1}'
  done | awk -v k1="$K1" -v k2="$K2" '{ if ($1 == k1) { if (!($2 in a)) a[$2] = $3 } else if (!($2 in b)) b[$2] = $3 }
    END { for (f in b) printf "%12d  %s\n", (b[f] - a[f]) / (k2 - k1), f }' | sort -rn | awk -v n="$P7_PROFILE" 'NR <= n'
}

for db in "${dbs[@]}"; do
  a=$(instructions "$db" "$K1")
  b=$(instructions "$db" "$K2")
  echo "# $db: Ir($K1) $a, Ir($K2) $b" >&2
  printf '%-4s B=%-5s %8d instructions per job applied\n' "$db" "$B" $(( (b - a) / ((K2 - K1) * B) ))
  [ -z "${P7_PROFILE:-}" ] || per_batch "$db"
done
