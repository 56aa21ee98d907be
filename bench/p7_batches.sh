#!/usr/bin/env bash
# P7 of docs/performance.md — the sizes of the bridge's batches in a debug log:
# the consumer's apply batches ("batch of N settled") and the publisher's
# claims ("published K of N claimed jobs"), as counts, jobs, mean, median,
# 10th/90th percentiles and a histogram weighted by jobs (the share of jobs
# that went through a batch of that size).
#
# Usage: bench/p7_batches.sh LOG
# The log of a bridge run with log_level = debug, e.g.
#   SHARECOUNT_LOG_LEVEL=debug SC_KEEP_TMP=1 bench/p7_cost.sh 30000 1
# then bench/p7_batches.sh /tmp/sharecount-test.XXXXXX/bridge.log.
# Empty claims are not logged by the bridge and are not counted.
set -euo pipefail
log=${1:?usage: bench/p7_batches.sh LOG}
[ -r "$log" ] || { echo "cannot read $log" >&2; exit 1; }

# hist WHAT: sizes on stdin, one a line
hist() {
  sort -n | awk -v what="$1" '
    { v[NR] = $1; s += $1 }
    END {
      if (NR == 0) { printf "%-9s none\n", what; exit }
      p90 = int(NR * 0.9); if (p90 < 1) p90 = 1
      printf "%-9s %6d batches, %7d jobs, mean %6.1f, median %4d, p10 %4d, p90 %4d | jobs in batches of",
        what, NR, s, s / NR, v[int((NR + 1) / 2)], v[int(NR * 0.1) + 1], v[p90]
      n = split("1 8 32 64 128 256 500 100000", edge, " "); lo = 1
      for (i = 1; i <= n; i++) {
        w = 0
        for (k = 1; k <= NR; k++) if (v[k] >= lo && v[k] <= edge[i]) w += v[k]
        if (w > 0) printf " %d-%d: %.0f%%", lo, edge[i], 100 * w / s
        lo = edge[i] + 1
      }
      printf "\n"
    }'
}
sed -n 's/.*consumer: batch of \([0-9]*\) settled.*/\1/p' "$log" | hist apply
sed -n 's/.*publisher: published [0-9]* of \([0-9]*\) claimed jobs.*/\1/p' "$log" | hist claim
