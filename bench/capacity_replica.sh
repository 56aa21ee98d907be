#!/usr/bin/env bash
# Capacity (docs/capacity.md): what a streaming replica adds for HTTP reads.
#
#   servers  a private PostgreSQL (test/lib.sh) holding one count
#            (article/1 = 42, the key of P5) and a streaming replica of it
#            (sc_pg_replica_start); two bridges with only the http role
#            (default http_pool_size): P reads from the primary (no
#            pg_read_conninfo), R has pg_read_conninfo = the replica
#            (checked: its /metrics says sharecount_read_source
#            {server="replica"} 1 before any round).
#   a round  wrk -t2 -c32 for S seconds against P, then against R, then
#            against P and R at the same time (16 connections each, the sum
#            of the two is the figure): interleaved, so drift hits all three.
#   CPU      from /proc (utime + stime): each bridge, and each server's
#            backends (children of its postmaster, the reaped ones through
#            its cutime/cstime), per request.
# On this machine the replica shares the same 2 cores with the primary, wrk
# and the bridges: "both" shows how the CPUs split, not what a replica on
# its own machine adds; the transferable figure is the backend CPU per
# request on each server (docs/capacity.md says how to use it).
#
# Usage: bench/capacity_replica.sh [seconds-per-run (default 5)] [rounds (default 3)]
# Prints one line per run and a table of medians; writes
# bench/results/capacity_replica.json.  Not a test: indicative figures.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
secs=${1:-5}; rounds=${2:-3}
CLIENTS=32               # wrk connections in all (P5's figure), split in two for "both"
cd "$SC_ROOT"
sc_init
make -s all >&2
command -v wrk >/dev/null || { echo "bench/capacity_replica.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
sc_pg_start "shared_buffers = 256MB" >&2
sc_psql >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION sharecount;
SELECT sharecount_apply('{"pattern":"share_count_update","data":{"jobId":"cap-1","contentType":"article",
  "contentId":"1","operation":"increment","amount":42,"timestamp":"2026-01-01T00:00:00.000Z"}}');
SQL
sc_pg_replica_start >&2
for i in $(seq 300); do   # the replica has replayed the count
  [ "$(sc_replica_psql -c "SELECT sharecount_get('article','1')" 2>/dev/null)" = 42 ] && break
  [ "$i" = 300 ] && { echo "the replica never showed the count" >&2; exit 1; }
  sleep 0.2
done
pm_p=$(head -1 "$SC_TMP/pgdata/postmaster.pid"); pm_r=$(head -1 "$SC_TMP/pgreplica/postmaster.pid")
tck=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() { local s c; s=$(awk '{print $16+$17}' "/proc/$1/stat"); for c in $(pgrep -P "$1"); do s=$((s + $(ticks "$c"))); done; echo "$s"; }

# start_bridge NAME [extra flags] -> sets bpid, port
start_bridge() {
  local name=$1 i; shift
  port=$(sc_free_port)
  "$SC_ROOT/bridge/sharecount-bridge" -c /dev/null --roles=http --pg-conninfo="$SC_PGURL" \
    --http-listen="127.0.0.1:$port" --http-max-connections=1024 "$@" > "$SC_TMP/bridge.$name.log" 2>&1 &
  bpid=$!
  sc_on_exit "kill $bpid 2>/dev/null; wait $bpid 2>/dev/null"
  for i in $(seq 150); do
    curl -s "http://127.0.0.1:$port/share-links/count/article/1" 2>/dev/null | grep -q '"shareCount":42' && return 0
    sleep 0.2
  done
  echo "bridge $name did not answer:" >&2; cat "$SC_TMP/bridge.$name.log" >&2; exit 1
}
start_bridge primary; bp=$bpid; port_p=$port
start_bridge replica --pg-read-conninfo="$SC_REPLICA_URL"; br=$bpid; port_r=$port
for i in $(seq 150); do
  curl -s "http://127.0.0.1:$port_r/metrics" | grep -q '^sharecount_read_source{server="replica"} 1' && break
  [ "$i" = 150 ] && { echo "bridge R does not read from the replica" >&2; curl -s "http://127.0.0.1:$port_r/metrics" | grep read_source >&2; exit 1; }
  sleep 0.2
done

# wrk_run PORT CONNS OUT: wrk in the background, its output in OUT
wrk_run() { wrk -t2 -c"$2" -d"${secs}s" "http://127.0.0.1:$1/share-links/count/article/1" > "$3" 2>&1; }
reqs() { grep -q 'Non-2xx' "$1" && { echo "wrk saw non-200 answers:" >&2; cat "$1" >&2; exit 1; }; awk '/requests in/ {print $1}' "$1"; }
# run WHICH -> "which req/s bridge_ticks primary_ticks replica_ticks requests"
run() {
  local w=$1 b0 p0 r0 n
  b0=$(( $(ticks "$bp") + $(ticks "$br") )); p0=$(pg_ticks "$pm_p"); r0=$(pg_ticks "$pm_r")
  case $w in
    primary) wrk_run "$port_p" "$CLIENTS" "$SC_TMP/w1"; n=$(reqs "$SC_TMP/w1") ;;
    replica) wrk_run "$port_r" "$CLIENTS" "$SC_TMP/w1"; n=$(reqs "$SC_TMP/w1") ;;
    both) wrk_run "$port_p" $((CLIENTS / 2)) "$SC_TMP/w1" & wrk_run "$port_r" $((CLIENTS / 2)) "$SC_TMP/w2"; wait $!
          n=$(( $(reqs "$SC_TMP/w1") + $(reqs "$SC_TMP/w2") )) ;;
  esac
  sleep 0.3
  echo "$w $(awk -v n="$n" -v s="$secs" 'BEGIN{printf "%.0f", n / s}') $(( $(ticks "$bp") + $(ticks "$br") - b0 )) \
$(( $(pg_ticks "$pm_p") - p0 )) $(( $(pg_ticks "$pm_r") - r0 )) $n"
}
results=$SC_TMP/results
: > "$results"
for r in $(seq "$rounds"); do
  for w in primary replica both; do
    line=$(run "$w")
    echo "$r $line" >> "$results"
    echo "# round $r: $line (which req/s bridge_ticks primary_ticks replica_ticks requests)" >&2
  done
done
grep -q '^sharecount_read_source{server="replica"} 1' <(curl -s "http://127.0.0.1:$port_r/metrics") ||
  echo "# WARNING: bridge R left the replica during the run" >&2

export tck results
perl -MJSON::PP -e '
use strict; use warnings;
my $hz = $ENV{tck};
my %r;
open my $f, "<", $ENV{results} or die; while (<$f>) { my @a = split; push @{$r{$a[1]}}, [@a[2..6]]; }
sub med { my @s = sort { $a <=> $b } @_; my $m = int(@s / 2); @s % 2 ? $s[$m] : ($s[$m-1] + $s[$m]) / 2 }
my %out = (clock_ticks_per_s => $hz + 0, wrk_connections => 32, key => "article/1",
           loadavg => `cut -d" " -f1-3 /proc/loadavg` =~ s/\n//r);
printf "%-8s %9s %18s %15s %16s %16s\n", "reads", "req/s", "(min-max)", "bridge us/req", "primary us/req", "replica us/req";
for my $k (qw(primary replica both)) {
  my @x = @{$r{$k}};
  my @rate = map { $_->[0] } @x;
  my @us = map { my $t = $_; [ map { $t->[$_] / $hz * 1e6 / $t->[4] } 1..3 ] } @x;
  my %c = (rates => [map { $_ + 0 } @rate], rate_median => med(@rate) + 0,
    bridge_us_per_req => sprintf("%.1f", med(map { $_->[0] } @us)) + 0,
    primary_us_per_req => sprintf("%.1f", med(map { $_->[1] } @us)) + 0,
    replica_us_per_req => sprintf("%.1f", med(map { $_->[2] } @us)) + 0);
  $out{$k} = \%c;
  printf "%-8s %9d %18s %15.1f %16.1f %16.1f\n", $k, $c{rate_median}, "(" . join("-", (sort { $a <=> $b } @rate)[0, -1]) . ")",
    @c{qw(bridge_us_per_req primary_us_per_req replica_us_per_req)};
}
mkdir "bench/results" unless -d "bench/results";
open my $o, ">", "bench/results/capacity_replica.json" or die; print $o JSON::PP->new->canonical->pretty->encode(\%out); close $o;
'
echo "# wrote bench/results/capacity_replica.json" >&2
