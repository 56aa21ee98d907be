#!/usr/bin/env bash
# fuzz/run.sh — drives the libFuzzer harnesses (docs/fuzzing.md).
#   fuzz/run.sh replay BIN   pass every file of every corpus (fuzz/corpus/*/)
#                            through BIN once; prints "N inputs"; exit 0 if no
#                            input crashed, leaked or broke an invariant.
#   fuzz/run.sh run BIN...   fuzz each BIN for $FUZZ_SECONDS (default 60) from
#                            its seeds, then print one line per harness:
#                            executions, exec/s, coverage (edges), features,
#                            corpus size, crashes.  Exit 1 if any crashed.
# New inputs found while fuzzing go to fuzz/build/corpus/<harness>/ (not the
# repository); crash inputs to fuzz/build/artifacts/.  `fuzz/run.sh merge BIN`
# adds the coverage-increasing ones to fuzz/corpus/<harness>/.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}; shift || true
secs=${FUZZ_SECONDS:-60}

# Harness name, its repository corpus, its dictionary option (if any).
setup() {
  name=$(basename "$1"); seeds=fuzz/corpus/$name
  dict=(); [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
  mkdir -p "$seeds" "fuzz/build/corpus/$name" fuzz/build/artifacts
}

case $mode in
  replay)
    setup "$1"
    mapfile -t files < <(find fuzz/corpus -type f | sort)
    [ ${#files[@]} -gt 0 ] || { echo "no corpus files"; exit 1; }
    out=$("$1" -timeout=25 "${files[@]}" 2>&1); st=$?
    if [ $st -ne 0 ]; then echo "$out" | grep -v '^Running: \|^Executed ' | tail -40; fi
    echo "${#files[@]} inputs"
    exit $st ;;
  run)
    crashed=0
    printf '%-16s %12s %8s %6s %7s %7s %s\n' harness executions exec/s cov ft corpus crashes
    for bin in "$@"; do
      setup "$bin"
      log=fuzz/build/$name.log
      "$bin" -max_total_time="$secs" -timeout=25 -print_final_stats=1 "${dict[@]}" \
        -artifact_prefix="fuzz/build/artifacts/$name-" "fuzz/build/corpus/$name" "$seeds" > "$log" 2>&1
      st=$?
      execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
      rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -1)
      last=$(grep -E '^#[0-9]+' "$log" | tail -1)
      cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last"); ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
      corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
      n=0; [ $st -ne 0 ] && { n=1; crashed=1; }
      printf '%-16s %12s %8s %6s %7s %7s %s\n' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$n"
      [ $st -ne 0 ] && grep -A25 -E 'ERROR: |fuzz invariant|runtime error' "$log" | head -40 | sed 's/^/#   /'
    done
    exit $crashed ;;
  merge)
    for bin in "$@"; do
      setup "$bin"
      "$bin" -merge=1 "${dict[@]}" "$seeds" "fuzz/build/corpus/$name" 2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
    done ;;
  *) echo "usage: fuzz/run.sh replay BIN | run BIN... | merge BIN..." >&2; exit 2 ;;
esac
