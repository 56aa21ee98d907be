#!/usr/bin/env bash
# The bridge's two database stages of P7 (docs/performance.md, "P7"), each on
# its own, with fixed batch sizes, so that a change to one of them can be
# measured without the timing noise of a whole pipeline (whose batch sizes
# follow the load):
#   apply  the consumer's statement (bridge/consumer_apply.c, APPLY_SQL) on
#          batches of B fresh jobs in the bridge's wire form (a JSON array
#          as text), 1 client
#   claim  the publisher's work per batch: claim up to B rows and confirm
#          them (sharecount_outbox_claim + sharecount_outbox_done) in one
#          transaction, 2 clients at once (the publisher's pipeline of 2)
#          draining an outbox filled beforehand
# CPU time of a phase = every PostgreSQL process's utime + stime, reaped ones
# included (as bench/p7_cost.sh), per job.
#
# P7_OLD_LIB=PATH: also measure another build of sharecount.so (e.g. main's)
# in the same cluster, in its own database whose C functions are pointed at
# that library (pg_proc.probin), in paired rounds alternating the order.  Both
# builds must have the same SQL install scripts (the ones of this tree are
# used for both).
#
# Usage: bench/p7_parts.sh [B (100)] [batches per round (300)] [rounds (5)]
# Prints per round and the medians, in us per job.  Not a test.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
B=${1:-100}; batches=${2:-300}; rounds=${3:-5}
cd "$SC_ROOT"
sc_init
make -s all >&2
sc_install >&2
dbs=(new)
if [ -n "${P7_OLD_LIB:-}" ]; then
  cp "$P7_OLD_LIB" "$SC_TMP/inst$($PG_CONFIG --pkglibdir)/sharecount_old.so"
  dbs=(new old)
fi
sc_bench_pg_start
pm=$(head -1 "$SC_TMP/pgdata/postmaster.pid")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
cluster_ticks() {
  local t c
  t=$(awk '{print $16 + $17}' "/proc/$pm/stat")
  for c in $(ps -o pid= --ppid "$pm"); do t=$(( t + $(cpu_ticks "$c") )); done
  echo "$t"
}
tck=$(getconf CLK_TCK)
qdb() { local d=$1; shift; sc_psql -d "p7_$d" "$@"; }

for d in "${dbs[@]}"; do
  sc_psql -c "CREATE DATABASE p7_$d" >/dev/null
  qdb "$d" -c "CREATE EXTENSION sharecount" -c "$SC_SHARE_LINKS_DDL" \
    -c "SELECT sharecount_track('share_links')" >/dev/null
  [ "$d" = old ] && qdb old -c "UPDATE pg_proc SET probin = '\$libdir/sharecount_old'
      WHERE probin = '\$libdir/sharecount'" >/dev/null
  # every batch of every round, fresh dense jobIds, in the bridge's wire form
  qdb "$d" -q <<SQL
CREATE TABLE p7_batches (id bigint PRIMARY KEY, body text NOT NULL);
INSERT INTO p7_batches
  SELECT b, json_agg(json_build_object('pattern', 'share_created', 'data', json_build_object(
      'jobId', '00000000000000aa-' || (b * $B + j), 'shareId', 's' || j, 'contentType', 'article',
      'contentId', 'k' || (j % 50), 'userId', 'u' || j, 'timestamp', '2026-12-02T16:00:00.000Z')))::text
  FROM generate_series(1, $(( batches * rounds ))) b, generate_series(1, $B) j GROUP BY b;
CREATE SEQUENCE p7_next;
SQL
done
cat > "$SC_TMP/apply.sql" <<'SQL'
SELECT nextval('p7_next') AS bid \gset
SELECT count(*) FROM sharecount_apply_batch(ARRAY(SELECT e FROM jsonb_array_elements((SELECT body FROM p7_batches WHERE id = :bid)::jsonb) WITH ORDINALITY AS t(e, n) ORDER BY n));
SQL
cat > "$SC_TMP/claim.sql" <<SQL
BEGIN;
SELECT sharecount_outbox_done(array_agg(id)) FROM sharecount_outbox_claim($B);
COMMIT;
SQL

# phase DB KIND: CPU ticks of one phase
phase() {
  local d=$1 kind=$2 c0 c1 clients=1
  if [ "$kind" = claim ]; then
    clients=2
    qdb "$d" -c "INSERT INTO share_links (content_type, content_id, user_id)
      SELECT 'article', 'c' || (g % 50), 'u' || g FROM generate_series(1, $(( batches * B ))) g" >/dev/null
  fi
  sc_psql -c "CHECKPOINT" >/dev/null
  c0=$(cluster_ticks)
  sc_as_pg "$SC_PGBIN/pgbench" -n -h "$PGHOST" -p "$PGPORT" -U postgres -c "$clients" -j "$clients" \
    -t $(( batches / clients )) -f "$SC_TMP/$kind.sql" "p7_$d" >"$SC_TMP/pgbench.out" 2>&1 ||
    { cat "$SC_TMP/pgbench.out" >&2; exit 1; }
  sleep 0.2                      # the sessions are reaped
  c1=$(cluster_ticks)
  echo $(( c1 - c0 ))
}
us() { awk -v t="$1" -v k="$tck" -v n="$(( batches * B ))" 'BEGIN{printf "%.2f", t / k * 1e6 / n}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A res
for r in $(seq "$rounds"); do
  order=("${dbs[@]}"); [ $((r % 2)) = 0 ] && [ ${#dbs[@]} = 2 ] && order=(old new)
  line="# round $r:"
  for kind in apply claim; do
    for d in "${order[@]}"; do
      v=$(us "$(phase "$d" "$kind")")
      res[$kind.$d]+="$v "
      line+=" $kind/$d $v"
    done
  done
  echo "$line us/job" >&2
done
for d in "${dbs[@]}"; do
  [ "$(qdb "$d" -c "SELECT count(*) FROM sharecount.outbox")" = 0 ] || echo "# $d: outbox not drained" >&2
  printf '%-4s B=%-5s apply %6s us/job   claim+done %6s us/job (medians of %s rounds)\n' "$d" "$B" \
    "$(printf '%s\n' ${res[apply.$d]} | median)" "$(printf '%s\n' ${res[claim.$d]} | median)" "$rounds"
done
