#!/usr/bin/env bash
# The consumer's stage of P7 over the wire (docs/performance.md "P7
# consumer"), counted in instructions by valgrind's callgrind: what
# bench/p7_callgrind.sh counts in a single-user backend, plus what a real
# connection adds per row (the executor's scan of the result, printtup, the
# DataRow messages) and per batch (Bind with the batch's text, Execute).  Not
# part of `make bench`.
#
# The same cluster as p7_callgrind.sh (KEYS keys, STATE_KEYS other keys,
# STATE_BLOCKS dedupe blocks) is started under valgrind (a postmaster whose
# backends callgrind follows); the client bench/p7_wire.c runs the bridge's
# prepared statement, sharecount_apply_json($1, true, applied_rows), on K1
# batches of B jobs, and on a copy of the cluster on K2; instructions per job
# of its backend = (Ir(K2) - Ir(K1)) / ((K2 - K1) * B), for applied_rows true
# (a row per applied job, as before 1.1's applied_rows) and false (the bridge).
#
# Usage: bench/p7_wire.sh [B (500)] [K1 (2)] [K2 (6)]
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
. "$(dirname "$0")/p7_state.sh"
B=${1:-500}; K1=${2:-2}; K2=${3:-6}
STATE_KEYS=${STATE_KEYS:-100000}; STATE_BLOCKS=${STATE_BLOCKS:-10000}; KEYS=${KEYS:-50}
cd "$SC_ROOT"
command -v valgrind >/dev/null || { echo "p7_wire: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
sc_init
sc_install
W=$SC_TMP/wire
mkdir -p "$W/cg" "$W/sock"
cc -O2 -Wall -Wextra -I"$($PG_CONFIG --includedir)" -o "$W/p7_wire" bench/p7_wire.c -L"$($PG_CONFIG --libdir)" -lpq
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$W"
d0=$W/data
sc_as_pg "$SC_PGBIN/initdb" -D "$d0" -A trust >/dev/null
p7_state_sql "" |
  sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$d0" postgres >/dev/null 2>&1
echo "VACUUM ANALYZE" | sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$d0" postgres >/dev/null 2>&1
port=$(sc_free_port)
export PGHOST=$W/sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres
sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$d0" -o "-k $W/sock -p $port -c listen_addresses=" -w start >/dev/null
psql -XAtc "SELECT body FROM p7_batches ORDER BY id" > "$W/bodies"
sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$d0" -m fast -w stop >/dev/null

instructions() { # instructions APPLIED_ROWS K -> Ir of the client's backend, K batches on a copy of the cluster
  local d=$W/run tag=$1.$2 pid
  rm -rf "$d"; cp -a "$d0" "$d"
  sc_as_pg valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$W/cg/$tag.%p.out" \
    "$SC_SHADOW_BIN/postgres" -D "$d" -k "$W/sock" -p "$port" -c listen_addresses= -c autovacuum=off \
    > "$W/pg.$tag.log" 2>&1 &
  for _ in $(seq 600); do "$SC_PGBIN/pg_isready" -q && break; sleep 0.5; done
  "$W/p7_wire" "$W/bodies" "$2" "$1" > "$W/client.$tag.txt" || { echo "p7_wire: the client failed" >&2; exit 1; }
  pid=$(awk '/^pid/ {print $2}' "$W/client.$tag.txt")
  sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$d" -m fast -w -t 300 stop >/dev/null
  wait
  [ "$(psql_applied "$d")" = $(( $2 * B )) ] || { echo "p7_wire: the batches were not applied" >&2; exit 1; }
  callgrind_annotate "$W/cg/$tag.$pid.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
psql_applied() { # the jobs applied in the cluster at $1 (stopped)
  echo "SELECT sum(jobs_applied) AS applied FROM sharecount.stats" |
    sc_as_pg "$SC_SHADOW_BIN/postgres" --single -D "$1" postgres 2>/dev/null | sed -n 's/.*applied = "\([0-9]*\)".*/\1/p'
}

for ar in true false; do
  a=$(instructions "$ar" "$K1")
  b=$(instructions "$ar" "$K2")
  echo "# applied_rows $ar: Ir($K1) $a, Ir($K2) $b; rows returned: $(grep rows "$W/client.$ar.$K2.txt")" >&2
  printf 'applied_rows=%-5s B=%-5s %8d instructions per job applied (the backend, over the wire)\n' "$ar" "$B" \
    $(( (b - a) / ((K2 - K1) * B) ))
done
