#!/usr/bin/env bash
# The per-stage table of P7 (docs/performance.md): where PostgreSQL's CPU goes
# per share, from `perf record` profiles that bench/p7_cost.sh writes with
# P7_PERF=FILE (FILE.p<round>: N plain INSERTs; FILE.r<round>: N tracked
# INSERTs drained by a bridge).  Each sample is put in the first stage whose
# function is on its call stack:
#   trigger     sharecount_trigger (outbox row written in the app's INSERT)
#   claim       sharecount_outbox_claim      done   sharecount_outbox_done
#   apply       sharecount_apply_batch / sharecount_apply (the consumer)
#   autovacuum  an autovacuum worker (do_autovacuum)
#   commit      CommitTransaction / XLogFlush outside the above (WAL flush, clog)
#   other       everything else (parse, executor of the INSERT itself, idle
#               loops, stacks perf could not unwind)
# and the stage's share of the phase's samples is scaled to the phase's
# measured CPU per share (us) given on the command line.
#
# Usage: bench/p7_stages.sh PERF_FILE US_PER_SHARE [PERF_FILE US_PER_SHARE]...
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,18p "$0" >&2; exit 2; }
printf '%-28s %8s %8s %8s %8s %8s %8s %8s %8s\n' profile trigger claim done apply autovac commit other total_us
while [ $# -ge 2 ]; do
  f=$1 us=$2; shift 2
  perf script -i "$f" -F ip,sym 2>/dev/null | awk -v us="$us" -v name="$(basename "$f")" '
    function flush() {
      if (st == "") return
      c = "other"
      if (st ~ / sharecount_trigger /) c = "trigger"
      else if (st ~ / sharecount_outbox_claim /) c = "claim"
      else if (st ~ / sharecount_outbox_done /) c = "done"
      else if (st ~ / sharecount_apply(_batch)? /) c = "apply"
      else if (st ~ / (do_autovacuum|AutoVacWorkerMain) /) c = "autovac"
      else if (st ~ / (CommitTransaction|CommitTransactionCommand|XLogFlush) /) c = "commit"
      n[c]++; total++; st = ""
    }
    NF == 0 { flush(); next }
    { st = st " " $2 " " }
    END {
      flush()
      printf "%-28s", name
      split("trigger claim done apply autovac commit other", k, " ")
      for (i = 1; i <= 7; i++) printf " %8.1f", (total ? n[k[i]] / total * us : 0)
      printf " %8.1f\n", us
    }'
done
