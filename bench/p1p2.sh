#!/usr/bin/env bash
# P1/P2 (docs/performance.md) — write-path cost of tracking, measured side by side.
#
# pgbench, 16 clients, every INSERT on ONE hot key ('article','1'), against
# three tables of the same shape in one private cluster (fsync on: real commits):
#   plain    share_links_plain: no trigger                       (P1 baseline)
#   tracked  share_links: sharecount_track() — C trigger + outbox
#   sync     share_links_sync: plpgsql trigger that UPSERTs a counter row in
#            the same transaction                                  (P2 baseline)
# and two floors that say what P1 can be at best on this design (printed as
# "floor" rows, not targets; docs/performance.md explains them):
#   trigger only  share_links_nokey: tracked, but every row has a NULL content
#            type, so the C trigger fires (AFTER ROW machinery, column reads)
#            and writes no job — tracking minus the outbox row
#   2nd row  plain INSERT plus the smallest possible second row (one int, no
#            index) in the same statement (a writable CTE) — what any durable
#            job record written in the app's transaction costs at least
# Rounds are interleaved (the order rotating from round to round) so drift
# hits all alike.  P1's pair (plain, tracked) runs in every round; the sync
# counter and the two floors, whose ratios have a wide margin or are only
# information, run in every other round.  The tps shown per variant is the
# median of its rounds; each ratio is the median of the per-round ratios of
# the rounds that ran both sides (a burst of load from elsewhere then spoils
# one round, not the result).  Many short rounds (10 x 4 s for P1) rather than
# few long ones: single 5-10 s slots on this 2-core VM vary by ±15 %, so the
# median needs rounds more than length.  Between runs the tables are
# truncated (no VACUUM: an empty table needs none, and a database-wide VACUUM
# cost ~1.5 s per run that now goes to rounds).  The bridge is not running:
# the outbox only grows, which is the cost the app pays.
#
# Usage: bench/p1p2.sh [seconds-per-round (default 4)] [rounds (default 10)]
# Env: PGURL to use an existing server instead of a private one (the extension
# must be installable there).  Prints a table; writes bench/results/p1p2.json.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
secs=${1:-4}; rounds=${2:-10}; clients=${CLIENTS:-16}
cd "$SC_ROOT"
sc_init
if [ -n "${PGURL:-}" ]; then
  export PGDATABASE=$PGURL
  psqlb() { sc_psql -d "$PGURL" "$@"; }
else
  sc_bench_pg_start
  psqlb() { sc_psql "$@"; }
fi
pgbench_bin=$SC_PGBIN/pgbench

psqlb <<'SQL'
DROP TABLE IF EXISTS share_links, share_links_plain, share_links_sync, share_links_nokey, second_row, sync_counts CASCADE;
DROP EXTENSION IF EXISTS sharecount CASCADE;
CREATE EXTENSION sharecount;
:share_links_ddl
CREATE TABLE share_links_plain (LIKE share_links INCLUDING ALL);
CREATE TABLE share_links_sync (LIKE share_links INCLUDING ALL);
CREATE TABLE share_links_nokey (LIKE share_links INCLUDING ALL);
ALTER TABLE share_links_nokey ALTER COLUMN content_type DROP NOT NULL;
CREATE TABLE second_row (x int);
SELECT sharecount_track('share_links');
SELECT sharecount_track('share_links_nokey');
CREATE TABLE sync_counts (content_type text, content_id text, share_count bigint NOT NULL,
  PRIMARY KEY (content_type, content_id));
CREATE FUNCTION sync_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO sync_counts VALUES (NEW.content_type, NEW.content_id, 1)
  ON CONFLICT (content_type, content_id) DO UPDATE SET share_count = sync_counts.share_count + 1;
  RETURN NEW;
END $$;
CREATE TRIGGER sync_count AFTER INSERT ON share_links_sync FOR EACH ROW EXECUTE FUNCTION sync_count();
SQL

run_one() { # run_one VARIANT -> tps
  local f=$SC_TMP/$1.sql ins="INSERT INTO %s (content_type, content_id, user_id) VALUES (%s, '1', 'user' || :client_id)"
  case $1 in
    share_links_nokey) printf "$ins;\n" "$1" "NULL" > "$f" ;;
    second_row) printf "WITH a AS ($ins) INSERT INTO second_row VALUES (1);\n" share_links_plain "'article'" > "$f" ;;
    *) printf "$ins;\n" "$1" "'article'" > "$f" ;;
  esac
  psqlb -c "TRUNCATE share_links, share_links_plain, share_links_sync, share_links_nokey, second_row, sync_counts" \
        -c "TRUNCATE sharecount.outbox" >/dev/null 2>&1 || true
  "$pgbench_bin" -n -M prepared -c "$clients" -j 2 -T "$secs" -f "$f" 2>/dev/null |
    sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -1
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# res[variant,round] = tps
declare -A res
all=(share_links_plain share_links share_links_sync share_links_nokey second_row)
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then variants=("${all[@]}"); else variants=(share_links_plain share_links); fi
  # the order rotates each round, so no variant always follows the same one
  for i in "${!variants[@]}"; do
    t=${variants[$(( (i + r - 1) % ${#variants[@]} ))]}
    tps=$(run_one $t); res[$t,$r]=$tps
    echo "# round $r $t: $tps tps" >&2
  done
done
tps_of() { # tps_of VARIANT -> its tps, one per round it ran in
  local r; for r in $(seq "$rounds"); do if [ -n "${res[$1,$r]:-}" ]; then echo "${res[$1,$r]}"; fi; done
}
ratio_of() { # ratio_of A B -> median over the rounds that ran both of A/B
  local r; for r in $(seq "$rounds"); do
    if [ -n "${res[$1,$r]:-}" ] && [ -n "${res[$2,$r]:-}" ]; then
      awk -v a="${res[$1,$r]}" -v b="${res[$2,$r]}" 'BEGIN{printf "%.4f\n", a/b}'
    fi
  done | median
}
plain=$(tps_of share_links_plain | median)
tracked=$(tps_of share_links | median)
sync=$(tps_of share_links_sync | median)
p1=$(ratio_of share_links share_links_plain | awk '{printf "%.3f", $1}')
p2=$(ratio_of share_links share_links_sync | awk '{printf "%.2f", $1}')
f_trig=$(ratio_of share_links_nokey share_links_plain | awk '{printf "%.3f", $1}')
f_row=$(ratio_of second_row share_links_plain | awk '{printf "%.3f", $1}')
p1ok=$(awk -v r="$p1" 'BEGIN{print (r>=0.85)?"met":"NOT met"}')
p2ok=$(awk -v r="$p2" 'BEGIN{print (r>=4)?"met":"NOT met"}')
printf '%-4s %-44s %12s %12s %8s %8s %s\n' id what measured baseline ratio target status
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P1 "tracked/plain INSERT tps, $clients clients, 1 key" "$tracked" "$plain" "$p1" ">=0.85" "$p1ok"
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P2 "tracked/sync-counter INSERT tps" "$tracked" "$sync" "$p2" ">=4" "$p2ok"
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P1f "floor: trigger fires, writes no job" "$(tps_of share_links_nokey | median)" "$plain" "$f_trig" "-" "(information)"
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P1f "floor: plain + smallest 2nd row (SQL)" "$(tps_of second_row | median)" "$plain" "$f_row" "-" "(information)"
mkdir -p bench/results
cat > bench/results/p1p2.json <<JSON
{"P1": {"measured_tps": $tracked, "baseline_tps": $plain, "ratio": $p1, "target": 0.85, "met": $([ "$p1ok" = met ] && echo true || echo false)},
 "P2": {"measured_tps": $tracked, "baseline_tps": $sync, "ratio": $p2, "target": 4, "met": $([ "$p2ok" = met ] && echo true || echo false)},
 "P1_floors": {"trigger_only_ratio": $f_trig, "second_row_ratio": $f_row},
 "clients": $clients, "seconds_per_round": $secs, "rounds": $rounds,
 "rounds_tps": {"plain": "$(tps_of share_links_plain | xargs)", "tracked": "$(tps_of share_links | xargs)", "sync": "$(tps_of share_links_sync | xargs)",
                "trigger_only": "$(tps_of share_links_nokey | xargs)", "second_row": "$(tps_of second_row | xargs)"},
 "rounds_p1_ratio": "$(for r in $(seq "$rounds"); do awk -v a="${res[share_links,$r]}" -v b="${res[share_links_plain,$r]}" 'BEGIN{printf "%.3f ", a/b}'; done | xargs)"}
JSON
