#!/usr/bin/env bash
# Capacity (docs/capacity.md): the application's own database CPU per
# INSERT, plain and tracked, so that bench/capacity_drain.sh's database CPU
# per job (claim + done + apply) can be added to it: tracked INSERT + drain
# = the database's whole cost per share (P7's numerator, built from parts),
# plain INSERT = P7's denominator.
#
#   servers  one private PostgreSQL, fsync on (sc_bench_pg_start); two tables
#            of the same shape: plain_links (no trigger) and share_links
#            (sharecount_track); no bridge (the outbox only grows).
#   a run    pgbench -n -c 16 -j 2 -T S, one single-row INSERT per
#            transaction, every row the same key (P7: one hot key);
#            interleaved plain, tracked, plain, tracked, ...
#   CPU      every backend of the postmaster (pgbench's backends are reaped
#            at its end: the postmaster's cutime/cstime) plus the live
#            children (walwriter, checkpointer, autovacuum), per INSERT.
#
# Usage: bench/capacity_insert.sh [seconds-per-run (default 5)] [rounds (default 3)]
# Writes bench/results/capacity_insert.json.  Not a test: indicative figures.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
secs=${1:-5}; rounds=${2:-3}
CLIENTS=16               # P7's client count
cd "$SC_ROOT"
sc_init
make -s all >&2
sc_bench_pg_start
sc_setup_tracked
sc_psql -c "CREATE TABLE plain_links (LIKE share_links INCLUDING ALL)" >/dev/null
pm=$(head -1 "$SC_TMP/pgdata/postmaster.pid")
tck=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() { local s c; s=$(awk '{print $16+$17}' "/proc/$pm/stat"); for c in $(pgrep -P "$pm"); do s=$((s + $(ticks "$c"))); done; echo "$s"; }
for t in plain_links share_links; do
  echo "INSERT INTO $t (content_type, content_id, user_id) VALUES ('article', 'hot', 'u');" > "$SC_TMP/$t.sql"
done
results=$SC_TMP/results
: > "$results"
for r in $(seq "$rounds"); do
  for t in plain_links share_links; do
    p0=$(pg_ticks)
    "$SC_PGBIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$secs" -f "$SC_TMP/$t.sql" > "$SC_TMP/pgbench.out" 2>&1 ||
      { cat "$SC_TMP/pgbench.out" >&2; exit 1; }
    sleep 0.5   # let the postmaster reap the backends
    n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$SC_TMP/pgbench.out")
    line="$t $n $(( $(pg_ticks) - p0 ))"
    echo "$r $line" >> "$results"
    echo "# round $r: $line (table inserts pg_ticks) $(awk -v n="$n" -v s="$secs" 'BEGIN{printf "%.0f tps", n / s}')" >&2
  done
done
export tck results secs
perl -MJSON::PP -e '
use strict; use warnings;
my $hz = $ENV{tck};
my %r;
open my $f, "<", $ENV{results} or die; while (<$f>) { my @a = split; push @{$r{$a[1]}}, [@a[2..3]]; }
sub med { my @s = sort { $a <=> $b } @_; my $m = int(@s / 2); @s % 2 ? $s[$m] : ($s[$m-1] + $s[$m]) / 2 }
my %out = (clock_ticks_per_s => $hz + 0, clients => 16, loadavg => `cut -d" " -f1-3 /proc/loadavg` =~ s/\n//r);
for my $k (qw(plain_links share_links)) {
  my @us = map { $_->[1] / $hz * 1e6 / $_->[0] } @{$r{$k}};
  my @tps = map { $_->[0] / $ENV{secs} } @{$r{$k}};
  $out{$k} = { us_per_insert => sprintf("%.1f", med(@us)) + 0, us_range => [map { sprintf("%.1f", $_) + 0 } (sort { $a <=> $b } @us)[0, -1]],
               tps_median => int(med(@tps)) };
  printf "%-12s %8.1f us/INSERT (%s) database CPU, %d tps\n", $k, $out{$k}{us_per_insert}, join("-", @{$out{$k}{us_range}}), $out{$k}{tps_median};
}
open my $o, ">", "bench/results/capacity_insert.json" or die; print $o JSON::PP->new->canonical->pretty->encode(\%out); close $o;
'
echo "# wrote bench/results/capacity_insert.json" >&2
