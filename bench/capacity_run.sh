#!/usr/bin/env bash
# Capacity notes (docs/capacity.md): runs the three capacity benchmarks one
# after the other and writes bench/results/capacity.json (their figures, the
# machine, the date, the commit, and the sizing figures derived from them).
#
#   bench/capacity_insert.sh   database CPU per plain / tracked INSERT (~1 min)
#   bench/capacity_drain.sh    drain rate and CPU per job: 1 and 2 bridges,
#                              single node classic / 3-node cluster quorum (~3.5 min)
#   bench/capacity_replica.sh  HTTP reads from the primary vs a replica (~1.5 min)
#
# Derived (all from this run):
#   db_us_per_share     tracked INSERT + drain (classic x1) database CPU
#   p7_estimate         db_us_per_share / plain INSERT (P7 built from parts)
#   shares_per_s_per_db_core = 1e6 / db_us_per_share
#   bridge_cores_per_db_core = bridge CPU per job / db_us_per_share
# Usage: bench/capacity_run.sh (env: DRAIN_N, DRAIN_ROUNDS, SECS, ROUNDS).
# Not part of `make test` or `make bench`; about 6 minutes here.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
mkdir -p bench/results
status=0
t0=$SECONDS
for s in "capacity_insert ${SECS:-5} ${ROUNDS:-3}" "capacity_drain ${DRAIN_N:-50000} ${DRAIN_ROUNDS:-5}" \
         "capacity_replica ${SECS:-5} ${ROUNDS:-5}"; do
  set -- $s
  name=$1; shift
  rm -f "bench/results/$name.json"
  echo "== bench/$name.sh $*" >&2
  timeout --kill-after=20 400 "bench/$name.sh" "$@" || { echo "# bench/$name.sh failed ($?)" >&2; status=1; }
done
CAP_MACHINE="$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/Mem:/{print $2}') GiB, shared with other users"
CAP_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
CAP_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
CAP_TOTAL=$((SECONDS - t0))
export CAP_MACHINE CAP_DATE CAP_COMMIT CAP_TOTAL
perl -MJSON::PP -e '
use strict; use warnings;
my %in;
for my $s (qw(capacity_insert capacity_drain capacity_replica)) {
  open my $f, "<", "bench/results/$s.json" or next; local $/; $in{$s} = JSON::PP->new->decode(<$f>);
}
my $out = { machine => $ENV{CAP_MACHINE}, date => $ENV{CAP_DATE}, commit => $ENV{CAP_COMMIT},
            total_seconds => $ENV{CAP_TOTAL} + 0, loadavg_at_end => `cut -d" " -f1-3 /proc/loadavg` =~ s/\n//r, %in };
my ($i, $d) = ($in{capacity_insert}, $in{capacity_drain});
if ($i && $d) {
  my $per = $i->{share_links}{us_per_insert} + $d->{"classic x1"}{pg_us_per_job};
  $out->{derived} = {
    db_us_per_share => sprintf("%.1f", $per) + 0,
    p7_estimate => sprintf("%.2f", $per / $i->{plain_links}{us_per_insert}) + 0,
    shares_per_s_per_db_core => int(1e6 / $per),
    bridge_cores_per_db_core => sprintf("%.3f", $d->{"classic x1"}{bridge_us_per_job} / $per) + 0,
    rmq_classic_cores_per_db_core => sprintf("%.3f", $d->{"classic x1"}{rmq_us_per_job} / $per) + 0,
    rmq_quorum_cores_per_db_core => sprintf("%.3f", $d->{"quorum x1"}{rmq_us_per_job} / $per) + 0,
  };
  printf "derived: %s\n", JSON::PP->new->canonical->encode($out->{derived});
}
open my $o, ">", "bench/results/capacity.json" or die; print $o JSON::PP->new->canonical->pretty->encode($out); close $o;
' || status=1
echo "# wrote bench/results/capacity.json in ${CAP_TOTAL}s" >&2
exit $status
