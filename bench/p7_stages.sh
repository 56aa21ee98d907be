#!/usr/bin/env bash
# The per-stage table of P7 (docs/performance.md): where PostgreSQL's CPU goes
# per share, from `perf record` profiles that bench/p7_cost.sh writes with
# P7_PERF=FILE (FILE.p<round>: N plain INSERTs; FILE.r<round>: N tracked
# INSERTs drained by a bridge; FILE.<key>.pids names the bridge's sessions).
# Each sample is put in one stage, by process, then by the first matching
# function on its call stack:
#   the bridge's publisher sessions:
#     claim       sharecount_outbox_claim      done   sharecount_outbox_done
#     pub_rest    the rest of those sessions (parse/plan of the bridge's SQL,
#                 COMMIT, protocol)
#   the bridge's consumer session:
#     apply       the extension's apply functions: any sharecount_apply*
#                 (sharecount_apply_batch, sharecount_apply_batch_changes,
#                 the bridge's call) or their inner apply_batch / apply_items
#                 (validation, dedupe, counts and stats upserts)
#     con_rest    the rest (jsonb input of the batch, parse/plan of the
#                 bridge's SQL, COMMIT, protocol)
#   every other process (the application's sessions, autovacuum, ...):
#     trigger     sharecount_trigger (outbox row written in the app's INSERT)
#     autovac     an autovacuum worker (do_autovacuum)
#     commit      CommitTransaction / XLogFlush (WAL flush, clog, wake-up probe)
#     other       everything else (parse, executor of the INSERT itself, the
#                 AFTER-trigger queue, idle loops, stacks perf could not unwind)
# and the stage's share of the phase's samples is scaled to the phase's
# measured CPU per share (us) given on the command line.
#
# Usage: bench/p7_stages.sh PERF_FILE US_PER_SHARE [PERF_FILE US_PER_SHARE]...
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,29p "$0" >&2; exit 2; }
cols="trigger autovac commit other claim done pub_rest apply con_rest"
printf '%-16s' profile; for c in $cols total_us; do printf ' %8s' "$c"; done; echo
while [ $# -ge 2 ]; do
  f=$1 us=$2; shift 2
  roles=$(cat "$f.pids" 2>/dev/null | tr '\n' ' ' || true)   # "publisher PID consumer PID ..."
  perf script -i "$f" -F pid,ip,sym 2>/dev/null | awk -v us="$us" -v name="$(basename "$f")" \
      -v roles="$roles" -v cols="$cols" '
    BEGIN { n = split(roles, r, " "); for (i = 1; i < n; i += 2) role[r[i + 1]] = r[i] }
    function flush() {
      if (st == "") return
      c = "other"
      if (role[pid] == "publisher")
        c = (st ~ / sharecount_outbox_claim /) ? "claim" : (st ~ / sharecount_outbox_done /) ? "done" : "pub_rest"
      else if (role[pid] == "consumer")
        c = (st ~ / (sharecount_apply[a-z_]*|apply_batch|apply_items) /) ? "apply" : "con_rest"
      else if (st ~ / sharecount_trigger /) c = "trigger"
      else if (st ~ / (do_autovacuum|AutoVacWorkerMain) /) c = "autovac"
      else if (st ~ / (CommitTransaction|CommitTransactionCommand|XLogFlush) /) c = "commit"
      cnt[c]++; total++; st = ""
    }
    NF == 0 { flush(); next }
    NF == 1 && $1 ~ /^[0-9]+$/ { flush(); pid = $1; next }
    { st = st " " $2 " " }
    END {
      flush()
      printf "%-16s", name
      k = split(cols, kc, " ")
      for (i = 1; i <= k; i++) printf " %8.1f", (total ? cnt[kc[i]] / total * us : 0)
      printf " %8.1f\n", us
    }'
done
