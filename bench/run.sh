#!/usr/bin/env bash
# `make bench`: the benchmarks of docs/performance.md (P1-P11), side by side in one run.
#
#   p1p2.sh      P1, P2  write path: tracked vs plain INSERT vs synchronous counter
#   p3_drain.sh  P3      bridge drain rate vs raw broker
#   p4_fresh.sh  P4      freshness at a steady 1,000 inserts/s
#   p5_http.sh   P5      HTTP GET count vs pgbench on sharecount_get
#   p6_memory.sh P6      bridge memory while it drains 1M jobs
#   p7_cost.sh   P7      PostgreSQL CPU per share, end to end, vs plain INSERT
#   p8_dedupe.sh P8, P8s apply with a week of dedupe state; its size, stats, prune
#   p9_push.sh   P9      commit -> SSE/WebSocket subscriber, 10,000 subscribers; bridge RSS
#   p10_cache.sh P10, P10d cached HTTP GET count vs GET /healthz and vs pgbench
#   p11_top.sh   P11     sharecount_top over 24 h with 100k keys shared in it
#
# Each script starts its own private servers (test/lib.sh; or uses PGURL /
# AMQP_URL), prints its own rows and writes bench/results/<script>.json.
# This driver runs every script that exists (a missing, failing or timed-out
# one is reported as "not measured", never skipped silently), then prints ONE
# table of P1–P11 from the JSON files and writes bench/results/latest.json:
# the machine, the date, the commit, each script's status and duration and
# the host's CPU steal and idle share while it ran (/proc/stat), and every
# figure, and a copy of it as bench/results/runs/<date>-<commit>.json
# (the run history).  The whole run is kept under BENCH_BUDGET seconds (default
# 2400, i.e. under 40 minutes): each script gets at most its own cap and what
# is left of the budget.  Benchmarks are never part of `make test`.
# BENCH_REPORT_ONLY=1 runs nothing and re-prints the table from the JSON
# files already in bench/results/.
#
# Exit status: 0 when every script ran (targets met or not: that is in the
# table), 1 when a script is missing, failed or timed out.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
mkdir -p bench/results
budget=${BENCH_BUDGET:-2400}
start=$SECONDS
status=0
declare -A state dur steal idle
# host_ticks: the machine's CPU ticks so far, "total steal idle" (/proc/stat:
# idle counts idle + iowait; steal is time the hypervisor gave to other guests)
host_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9, $5 + $6 }' /proc/stat; }
# host_share BEFORE AFTER: the steal and idle percentages between two host_ticks
host_share() {
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1]
    if (t <= 0) { print "- -"; exit }
    printf "%.1f %.1f\n", 100 * (y[2] - x[2]) / t, 100 * (y[3] - x[3]) / t }'
}
# script → its cap in seconds (its expected time plus a margin)
scripts=(p1p2 p3_drain p4_fresh p5_http p6_memory p7_cost p8_dedupe p9_push p10_cache p11_top)
declare -A cap=([p1p2]=220 [p3_drain]=120 [p4_fresh]=100 [p5_http]=160 [p6_memory]=240 [p7_cost]=420 [p8_dedupe]=300
  [p9_push]=180 [p10_cache]=150 [p11_top]=240)

# local changes to the code, taken before the scripts rewrite bench/results/
BENCH_DIRTY=$([ -n "$(git status --porcelain --untracked-files=no -- . ':!bench/results' 2>/dev/null)" ] && echo true || echo false)
make -s all >&2 || { echo "make bench: the build failed" >&2; exit 1; }
for s in "${scripts[@]}"; do
  if [ -n "${BENCH_REPORT_ONLY:-}" ]; then
    # re-print the table from the JSON files of an earlier run
    [ -s "bench/results/$s.json" ] && state[$s]="ok" || { state[$s]="no results"; status=1; }
    dur[$s]=0; continue
  fi
  rm -f "bench/results/$s.json"
  if [ ! -x "bench/$s.sh" ]; then
    echo "# bench/$s.sh: does not exist (not measured)" >&2
    state[$s]="missing"; dur[$s]=0; status=1; continue
  fi
  left=$(( budget - (SECONDS - start) ))
  t=${cap[$s]}; [ "$left" -lt "$t" ] && t=$left
  if [ "$t" -lt 30 ]; then
    echo "# bench/$s.sh: skipped, ${left}s left of the ${budget}s budget (not measured)" >&2
    state[$s]="no time left"; dur[$s]=0; status=1; continue
  fi
  echo "== bench/$s.sh (at most ${t}s)" >&2
  t0=$SECONDS; c0=$(host_ticks)
  timeout --kill-after=20 "$t" "bench/$s.sh"
  rc=$?
  dur[$s]=$(( SECONDS - t0 ))
  read -r steal[$s] idle[$s] <<<"$(host_share "$c0" "$(host_ticks)")"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then state[$s]="timed out after ${t}s"; status=1
  elif [ $rc -ne 0 ]; then state[$s]="failed (exit $rc)"; status=1
  elif [ ! -s "bench/results/$s.json" ]; then state[$s]="wrote no results"; status=1
  else state[$s]="ok"; fi
  echo "# bench/$s.sh: ${state[$s]} in ${dur[$s]}s (host: ${steal[$s]} % steal, ${idle[$s]} % idle)" >&2
done

# Everything below only reads the JSON files (perl's JSON::PP ships with the
# perl that postgresql-common depends on).
machine="$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), \
$(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
BENCH_MACHINE=$machine
BENCH_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
BENCH_LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_TOTAL=$(( SECONDS - start ))
BENCH_STATES=$(for s in "${scripts[@]}"; do
  printf '%s=%s=%s=%s=%s\n' "$s" "${dur[$s]}" "${steal[$s]:--}" "${idle[$s]:--}" "${state[$s]}"; done)
export BENCH_MACHINE BENCH_DATE BENCH_COMMIT BENCH_DIRTY BENCH_LOADAVG BENCH_TOTAL BENCH_STATES
perl -MJSON::PP -e '
use strict; use warnings;
my %st; my %du; my %host; my @order;
for (split /\n/, $ENV{BENCH_STATES}) {
  my ($s, $d, $steal, $idle, $v) = split /=/, $_, 5;
  push @order, $s;
  $st{$s} = $v; $du{$s} = $d + 0;
  $host{$s} = { steal_pct => $steal + 0, idle_pct => $idle + 0 } if $steal =~ /^[0-9.]+$/;
}
my %res;
for my $s (keys %st) {
  next unless $st{$s} eq "ok";
  open my $f, "<", "bench/results/$s.json" or next;
  local $/; my $txt = <$f>; close $f;
  my $j = eval { JSON::PP->new->decode($txt) };
  if ($j) { $res{$s} = $j } else { $st{$s} = "unreadable JSON: $@"; $st{$s} =~ s/\s+at .*//s }
}
# id → [script, what, target text]
my @ids = (
  ["P1", "p1p2",     "tracked / plain INSERT tps, 16 clients, 1 key",   ">=0.85"],
  ["P2", "p1p2",     "tracked / sync-counter INSERT tps",               ">=4"],
  ["P3", "p3_drain", "bridge drain of 200k backlog / raw broker",       ">=0.8"],
  ["P4", "p4_fresh", "freshness commit->visible at 1,000/s (p50/p99)",  "10/50 ms"],
  ["P5", "p5_http",  "HTTP GET count / pgbench sharecount_get, 32 conns", ">=0.7"],
  ["P6", "p6_memory", "bridge RSS draining 1M jobs; growth 20%->end",  "16 MiB;none"],
  ["P7", "p7_cost",  "PG CPU s per 100k shares, drained / plain INSERT", "<=1.3"],
  ["P8", "p8_dedupe", "apply w/ a week of dedupe state / none (jobs/s)", ">=0.9"],
  ["P8s", "p8_dedupe", "week state MiB; stats ms; /metrics ms; prune day ms", "1024;10;10;1000"],
  ["P9", "p9_push",  "commit->SSE/WS subscriber p50/p99, 10k subs; RSS", "20/100 ms;64 MiB"],
  ["P10", "p10_cache", "cached HTTP GET count / GET /healthz, 32 conns", ">=0.8"],
  ["P10d", "p10_cache", "cached HTTP GET count / pgbench sharecount_get", ">=1.6"],
  ["P11", "p11_top", "sharecount_top 24 h, 100k keys (ms) / sum of history", "<=50 ms"],
);
sub fmt { my $v = shift; return "-" unless defined $v;
  return $v ? "yes" : "no" if JSON::PP::is_bool($v);
  return ref $v ? JSON::PP->new->canonical->encode($v) : $v =~ /^-?[0-9.]+$/ ? sprintf("%.6g", $v) : $v; }
# first value whose key starts with one of the prefixes
sub pick { my ($h, @p) = @_; for my $p (@p) { for my $k (sort keys %$h) { return $h->{$k} if $k =~ /^\Q$p\E/ } } undef }
my @rows;
for my $i (@ids) {
  my ($id, $s, $what, $target) = @$i;
  my $r = { id => $id, what => $what, target => $target, script => "bench/$s.sh" };
  my $h = $res{$s} ? $res{$s}{$id} : undef;
  if (!$h) {
    $r->{status} = "not measured (" . (!exists $st{$s} ? "not run" : $st{$s} ne "ok" ? "bench/$s.sh: $st{$s}" : "no $id in bench/$s.json") . ")";
    $r->{measured} = $r->{baseline} = $r->{ratio} = "-";
  } elsif ($id eq "P4") {
    $r->{measured} = fmt($h->{p50_ms}) . "/" . fmt($h->{p99_ms}) . " ms";
    $r->{baseline} = "-"; $r->{ratio} = "-";
    $r->{status} = $h->{met} ? "met" : "NOT met";
  } elsif ($id eq "P9" && defined $h->{rss_peak_kib}) {
    $r->{measured} = fmt($h->{p50_ms}) . "/" . fmt($h->{p99_ms}) . " ms";
    $r->{baseline} = "-";
    $r->{ratio} = sprintf("%.1f MiB", $h->{rss_peak_kib} / 1024);
    $r->{status} = $h->{met} ? "met" : "NOT met";
  } elsif ($id eq "P3" && defined $h->{bridge_rate}) {
    $r->{measured} = fmt($h->{bridge_rate}) . " jobs/s";
    $r->{baseline} = fmt($h->{raw_rate}) . " msg/s";
    $r->{ratio} = fmt($h->{ratio});
    $r->{status} = $h->{met} ? "met" : "NOT met";
  } elsif ($id eq "P6" && defined $h->{max_rss_kib}) {
    $r->{measured} = sprintf("%.1f MiB", $h->{max_rss_kib} / 1024);
    $r->{baseline} = "-";
    # growth: RSS at the end against RSS once 20 % of the jobs were applied
    $r->{ratio} = defined $h->{rss_at_20pct_kib} && defined $h->{rss_end_kib}
      ? sprintf("%+d KiB", $h->{rss_end_kib} - $h->{rss_at_20pct_kib}) : "-";
    $r->{baseline} = sprintf("%d jobs", $h->{jobs}) if defined $h->{jobs};
    $r->{status} = $h->{met} ? "met" : "NOT met";
  } else {
    $r->{measured} = fmt(pick($h, "measured", "rss", "value"));
    $r->{baseline} = fmt(pick($h, "baseline"));
    $r->{ratio} = fmt(pick($h, "ratio", "growth"));
    $r->{status} = !exists $h->{met} ? "no verdict" : $h->{met} ? "met" : "NOT met";
  }
  $r->{figures} = $h if $h;
  push @rows, $r;
}
printf "\n%-4s %-50s %14s %12s %8s %12s %s\n", qw(id what measured baseline ratio target status);
printf "%-4s %-50s %14s %12s %8s %12s %s\n", @$_{qw(id what measured baseline ratio target status)} for @rows;
printf "# %s; %s; commit %s%s; load average at the end %s; %ss in all\n",
  $ENV{BENCH_DATE}, $ENV{BENCH_MACHINE}, $ENV{BENCH_COMMIT}, $ENV{BENCH_DIRTY} eq "true" ? " (with local changes)" : "",
  $ENV{BENCH_LOADAVG}, $ENV{BENCH_TOTAL};
# the host during each script: steal time (CPU the hypervisor gave to other
# guests) is what slows a run down from outside (docs/performance.md, "Method")
my @h = map { $host{$_} ? sprintf("%s %.1f/%.0f", $_, $host{$_}{steal_pct}, $host{$_}{idle_pct}) : () }
  @order;
printf "# host CPU %% steal/idle during each script: %s\n", join(", ", @h) if @h;
my $out = {
  machine => $ENV{BENCH_MACHINE}, date => $ENV{BENCH_DATE}, commit => $ENV{BENCH_COMMIT},
  local_changes => $ENV{BENCH_DIRTY} eq "true" ? JSON::PP::true : JSON::PP::false,
  loadavg_at_end => $ENV{BENCH_LOADAVG}, total_seconds => $ENV{BENCH_TOTAL} + 0,
  scripts => { map { $_ => { status => $st{$_}, seconds => $du{$_}, %{ $host{$_} // {} } } } keys %st },
  table => [ map { my %c = %$_; delete $c{figures}; \%c } @rows ],
  results => \%res,
};
open my $o, ">", "bench/results/latest.json" or die "bench/results/latest.json: $!";
print $o JSON::PP->new->canonical->pretty->encode($out); close $o;
' || { echo "make bench: writing the table failed" >&2; exit 1; }
echo "# wrote bench/results/latest.json" >&2
# Run history: every run that measured something keeps a copy of latest.json
# as bench/results/runs/<UTC date and time>-<commit>.json (docs/performance.md
# "Run history"); a report-only run, or one where no script ran, adds none.
if [ -z "${BENCH_REPORT_ONLY:-}" ] && printf '%s\n' "$BENCH_STATES" | grep -q '=ok$'; then
  mkdir -p bench/results/runs
  run_file="bench/results/runs/$(date -u -d "$BENCH_DATE" +%Y-%m-%dT%H%M%SZ)-$BENCH_COMMIT.json"
  cp bench/results/latest.json "$run_file" && echo "# wrote $run_file" >&2
fi
exit $status
