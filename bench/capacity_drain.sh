#!/usr/bin/env bash
# Capacity (docs/capacity.md): how fast one and two bridges drain an outbox
# backlog, and what each job costs in CPU on every side, on a single RabbitMQ
# node (classic queue, the default) and on a 3-node RabbitMQ cluster
# (queue_type = quorum, amqp_url listing the three nodes).
#
#   servers  one private PostgreSQL (fsync on, as bench/p3_drain.sh), one
#            private RabbitMQ node and a 3-node cluster (test/lib.sh), all up
#            for the whole run, so the configurations are measured
#            interleaved: each round runs classic x1, classic x2, quorum x1,
#            quorum x2 in that order, on the same database.
#   a drain  N share_links inserts over 200 keys (10k rows per transaction)
#            with no bridge running; then B bridges (publisher + consumer,
#            default settings, HTTP off) start; timed until
#            sharecount_stats()'s jobs_applied has grown by N (polled every
#            0.5 s by psql: each poll is a new backend, ~1 % of the backend
#            CPU counted); then the bridges get SIGTERM and are reaped.
#   CPU      from /proc (utime + stime, clock ticks), between the bridges'
#            start and their exit (reaped): the bridges (each process, all
#            its threads), PostgreSQL (every child of the postmaster, the
#            reaped ones through the postmaster's cutime/cstime: the bridges'
#            backends, autovacuum, walwriter, checkpointer), RabbitMQ (the
#            beam VM of each node: 1 or 3).  The backlog's INSERTs are not in
#            it (the application's own cost: P1/P7).
# The second bridge gets the cluster's URLs starting at node 2 (the first
# at node 1), so the two bridges' connections land on different nodes.
#
# Usage: bench/capacity_drain.sh [N (default 50000)] [rounds (default 3)]
# Prints one line per drain and a table of medians; writes
# bench/results/capacity_drain.json.  Not a test: the machine is shared and
# noisy, the figures are indicative; the spread (min-max) is printed.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
N=${1:-50000}; rounds=${2:-3}
POLL_S=0.5               # how often the applied count is polled
cd "$SC_ROOT"
sc_init
make -s all >&2
sc_bench_pg_start
sc_rmq_start >&2
sc_rmq_cluster_start 3
sc_setup_tracked
pm=$(head -1 "$SC_TMP/pgdata/postmaster.pid")
tck=$(getconf CLK_TCK)
single_beam() { cat "$SC_TMP/rmq/rabbitmq.pid"; }
cluster_beams() { local i; for i in 1 2 3; do echo "$(sc_cluster_pid "$i")"; done; }   # pid files have no newline
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {   # every live child of the postmaster + the reaped ones
  local s c
  s=$(awk '{print $16+$17}' "/proc/$pm/stat")
  for c in $(pgrep -P "$pm"); do s=$((s + $(ticks "$c"))); done
  echo "$s"
}
sum_ticks() { local s=0 p; for p in "$@"; do s=$((s + $(ticks "$p"))); done; echo "$s"; }
applied() { sc_psql -c "SELECT (sharecount_stats()->>'jobs_applied')::bigint"; }

backlog() {
  local left=$N n
  while [ "$left" -gt 0 ]; do
    n=$(( left > 10000 ? 10000 : left ))
    sc_psql -c "INSERT INTO share_links (content_type, content_id, user_id)
                SELECT 'article', 'a' || (g % 200), 'user' || g FROM generate_series(1, $n) g"
    left=$((left - n))
  done
}

# drain CFG BRIDGES -> one result line "cfg bridges secs rate bridge_ticks pg_ticks beam_ticks"
drain() {
  local cfg=$1 nb=$2 i pids=() beams target t0 t1 b=0 p0 p1 r0 r1 urls args
  backlog
  if [ "$cfg" = classic ]; then beams=$(single_beam); else beams=$(cluster_beams); fi
  target=$(( $(applied) + N ))
  sleep 1   # let the reaped psql backends settle into cutime
  p0=$(pg_ticks); r0=$(sum_ticks $beams)
  t0=$(date +%s.%N)
  for i in $(seq "$nb"); do
    if [ "$cfg" = classic ]; then urls=$SC_AMQP_URL; args=()
    else   # the cluster's URLs, starting at node i
      urls=$(echo "$SC_CLUSTER_URLS" | tr , '\n' | awk -v s="$i" '{u[NR]=$0} END {for (k = 0; k < NR; k++) printf "%s%s", (k ? "," : ""), u[(s - 1 + k) % NR + 1]}')
      args=(--queue_type=quorum)
    fi
    "$SC_ROOT/bridge/sharecount-bridge" -c /dev/null --pg_conninfo="$SC_PGURL" --amqp_url="$urls" \
      --roles=publisher,consumer --http_listen= "${args[@]}" 2>"$SC_TMP/bridge.$cfg.$i.log" &
    pids+=($!)
    sc_on_exit "kill -9 ${pids[-1]}"
  done
  while [ "$(applied)" -lt "$target" ]; do
    for i in "${pids[@]}"; do
      kill -0 "$i" 2>/dev/null || { tail "$SC_TMP"/bridge.$cfg.*.log >&2; echo "a bridge died" >&2; exit 1; }
    done
    sleep "$POLL_S"
  done
  t1=$(date +%s.%N)
  r1=$(sum_ticks $beams)
  for i in "${pids[@]}"; do b=$((b + $(ticks "$i"))); kill -TERM "$i"; done
  for i in "${pids[@]}"; do wait "$i" || true; done
  sleep 0.5   # the bridges' backends exit after their clients
  p1=$(pg_ticks)
  [ "$(sc_psql -c "SELECT count(*) FROM sharecount.outbox")" = 0 ] || echo "# WARNING: outbox not empty" >&2
  awk -v c="$cfg" -v nb="$nb" -v n="$N" -v a="$t0" -v z="$t1" -v b="$b" -v p=$((p1 - p0)) -v r=$((r1 - r0)) \
    'BEGIN {s = z - a; printf "%s %d %.2f %.0f %d %d %d\n", c, nb, s, n / s, b, p, r}'
}

results=$SC_TMP/results
: > "$results"
for r in $(seq "$rounds"); do
  for cfg in "classic 1" "classic 2" "quorum 1" "quorum 2"; do
    line=$(drain $cfg)
    echo "$r $line" >> "$results"
    echo "# round $r: $line (cfg bridges seconds jobs/s bridge_ticks pg_ticks beam_ticks)" >&2
  done
done
[ "$(sc_psql -c "SELECT count(*) FROM sharecount_verify(10)")" = 0 ] || echo "# WARNING: counts not exact" >&2

# medians per configuration; CPU per job in µs; jobs/s per core = 1e6 / µs per job
export N tck results
perl -MJSON::PP -e '
use strict; use warnings;
my ($n, $hz) = ($ENV{N}, $ENV{tck});
my %r;
open my $f, "<", $ENV{results} or die; while (<$f>) { my @a = split; push @{$r{"$a[1] x$a[2]"}}, [@a[3..7]]; }
sub med { my @s = sort { $a <=> $b } @_; my $m = int(@s / 2); @s % 2 ? $s[$m] : ($s[$m-1] + $s[$m]) / 2 }
my %out = (jobs_per_drain => $n + 0, rounds => scalar @{(values %r)[0]}, clock_ticks_per_s => $hz + 0,
           loadavg => `cut -d" " -f1-3 /proc/loadavg` =~ s/\n//r);
printf "%-11s %8s %18s %14s %12s %12s %12s %12s\n", "config", "jobs/s", "(min-max)", "bridge us/job", "pg us/job", "rmq us/job",
  "jobs/s/bridge-core", "jobs/s/pg-core";
for my $k (sort keys %r) {
  my @x = @{$r{$k}};
  my @rate = map { $_->[1] } @x;
  my @us = map { my $t = $_; [ map { $t->[$_] / $hz * 1e6 / $n } 2..4 ] } @x;
  my %c = (
    seconds => [map { $_->[0] + 0 } @x], rates => [map { $_ + 0 } @rate], rate_median => med(@rate) + 0,
    bridge_us_per_job => sprintf("%.1f", med(map { $_->[0] } @us)) + 0,
    pg_us_per_job => sprintf("%.1f", med(map { $_->[1] } @us)) + 0,
    rmq_us_per_job => sprintf("%.1f", med(map { $_->[2] } @us)) + 0,
    bridge_us_range => [map { sprintf("%.1f", $_) + 0 } (sort { $a <=> $b } map { $_->[0] } @us)[0, -1]],
    pg_us_range => [map { sprintf("%.1f", $_) + 0 } (sort { $a <=> $b } map { $_->[1] } @us)[0, -1]],
    rmq_us_range => [map { sprintf("%.1f", $_) + 0 } (sort { $a <=> $b } map { $_->[2] } @us)[0, -1]],
  );
  for my $s (qw(bridge pg rmq)) { my $u = $c{"${s}_us_per_job"}; $c{"jobs_per_s_per_${s}_core"} = $u > 0 ? int(1e6 / $u) : undef; }
  $out{$k} = \%c;
  printf "%-11s %8d %18s %14.1f %12.1f %12.1f %12d %12d\n", $k, $c{rate_median}, "(" . join("-", (sort { $a <=> $b } @rate)[0, -1]) . ")",
    $c{bridge_us_per_job}, $c{pg_us_per_job}, $c{rmq_us_per_job}, $c{jobs_per_s_per_bridge_core} // 0, $c{jobs_per_s_per_pg_core} // 0;
}
mkdir "bench/results" unless -d "bench/results";
open my $o, ">", "bench/results/capacity_drain.json" or die; print $o JSON::PP->new->canonical->pretty->encode(\%out); close $o;
'
echo "# wrote bench/results/capacity_drain.json" >&2
