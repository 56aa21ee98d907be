#!/usr/bin/env bash
# `make test`: checks the formatting, builds with -Werror, starts a private
# PostgreSQL (and RabbitMQ when there are end-to-end tests), and runs every
# suite in order:
#   0. make format-check (clang-format, .clang-format and src/.clang-format)
#   1. bridge unit tests  (test/unit/test_*.c, one binary each), then the fuzz
#      corpora replayed through the libFuzzer harnesses (fuzz/fuzz_*.c)
#   2. pg_regress + isolation specs (`make installcheck`)
#   3. end-to-end tests   (test/e2e/*.sh, each against the shared servers)
# Each test prints one "ok N - name" / "not ok N - name" line; the run ends with
# "N passed, N failed" and exits non-zero if anything failed.
# TEST_ONLY=regex limits stage 3 to matching e2e scripts; SKIP_E2E=1 skips it.
# TEST_ORDER=reverse runs the regress, isolation and e2e tests in reverse
# order: every test makes its own state (database, vhost, tables, roles) and
# none may depend on another having run before it; this checks that.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$SC_ROOT"
sc_init
# CI and make test build with -Werror (a user's plain `make` does not).
export WERROR=${WERROR:-1}

pass=0; fail=0; n=0
# in_order: the lines of stdin in the order TEST_ORDER asks for
in_order() { if [ "${TEST_ORDER:-}" = reverse ]; then tac; else cat; fi; }
# names FILES...: the base names without extension, in order, on one line
names() { local f; for f in "$@"; do f=${f##*/}; echo "${f%.*}"; done | in_order | tr '\n' ' '; }
report() { # report STATUS NAME
  n=$((n+1))
  if [ "$1" = 0 ]; then pass=$((pass+1)); echo "ok $n - $2"; else fail=$((fail+1)); echo "not ok $n - $2"; fi
}

# 0. formatting: a test like the others (the files that differ are listed)
out=$(make -s format-check 2>&1); st=$?
[ $st -ne 0 ] && echo "$out" | grep -o '^[^:]*\.[ch]' | sort -u | sed 's/^/#   not formatted (make format): /'
report $st "make format-check"

sc_install || { report 1 build; echo "$pass passed, $fail failed"; exit 1; }

# 1. unit tests
if ls test/unit/test_*.c >/dev/null 2>&1; then
  make -s unit >&2 || report 1 "unit tests build"
  for b in test/unit/test_*.bin; do
    [ -x "$b" ] || continue
    out=$("$b" 2>&1); st=$?
    [ $st -ne 0 ] && echo "$out" | sed 's/^/#   /'
    report $st "unit $(basename "$b" .bin)"
  done
fi

# 1b. fuzz corpora: every corpus file through each libFuzzer harness (docs/fuzzing.md)
if ls fuzz/fuzz_*.c >/dev/null 2>&1; then
  if make -s fuzz-build > "$SC_TMP/fuzz-build.out" 2>&1; then
    for b in fuzz/build/fuzz_*; do
      [ -x "$b" ] || continue
      out=$(./fuzz/run.sh replay "$b" 2>&1); st=$?
      [ $st -ne 0 ] && echo "$out" | sed 's/^/#   /'
      report $st "fuzz replay $(basename "$b") ($(echo "$out" | tail -1))"
    done
  else
    tail -20 "$SC_TMP/fuzz-build.out" | sed 's/^/#   /'; report 1 "fuzz harnesses build"
  fi
fi

# 2. pg_regress and isolation
sc_pg_start || { report 1 "postgresql start"; echo "$pass passed, $fail failed"; exit 1; }
rm -rf results output_iso regression.diffs
make -s installcheck REGRESS="$(names test/sql/*.sql)" ISOLATION="$(names test/specs/*.spec)" \
  > "$SC_TMP/installcheck.out" 2>&1
ic=$?
while read -r name status; do
  kind=regress; [ -f "test/specs/$name.spec" ] && kind=isolation
  report "$([ "$status" = ok ] && echo 0 || echo 1)" "$kind $name"
done < <(sed -nE 's/^[ ]*(test |[+ ]? *)?([a-z0-9_-]+)[ ]+\.\.\. (ok|FAILED|failed).*/\2 \3/p' "$SC_TMP/installcheck.out")
if [ $ic -ne 0 ]; then
  report 1 "make installcheck"
  sed 's/^/#   /' "$SC_TMP/installcheck.out" | tail -40
  for f in regression.diffs output_iso/regression.diffs; do [ -f "$f" ] && head -200 "$f" | sed 's/^/#   /'; done
fi

# 3. end-to-end tests
if [ "${SKIP_E2E:-0}" != 1 ] && ls test/e2e/*.sh >/dev/null 2>&1 && [ -x bridge/sharecount-bridge ]; then
  sc_rmq_start || { report 1 "rabbitmq start"; echo "$pass passed, $fail failed"; exit 1; }
  # A bridge built with BRIDGE_SANITIZE=-fsanitize=address writes every report
  # (errors, and LeakSanitizer's at exit) to a file here; bridges that tests
  # stop without looking at their exit status would otherwise hide leaks.
  san=""
  # (ldd's output captured first: `ldd | grep -q` fails under pipefail when
  # grep exits before ldd has written everything, which skipped this check)
  if [[ $(ldd bridge/sharecount-bridge 2>/dev/null) == *libasan* ]]; then
    san=$SC_TMP/sanitizer; mkdir -p "$san"; chmod 777 "$san"
    export ASAN_OPTIONS="log_path=$san/report${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  fi
  for t in $(ls test/e2e/*.sh | in_order); do
    name=$(basename "$t" .sh)
    [ -n "${TEST_ONLY:-}" ] && ! [[ $name =~ $TEST_ONLY ]] && continue
    start=$SECONDS
    # output to a file, not a pipe: a process a test leaks would hold a pipe
    # open and the run would wait for it forever; E2E_TIMEOUT bounds a test
    timeout --kill-after=20 "${E2E_TIMEOUT:-900}" bash "$t" > "$SC_TMP/e2e-$name.out" 2>&1; st=$?
    [ $st -eq 124 ] && echo "# $name: killed after ${E2E_TIMEOUT:-900} s (E2E_TIMEOUT)"
    out=$(cat "$SC_TMP/e2e-$name.out")
    if [ $st -ne 0 ]; then echo "$out" | tail -40 | sed 's/^/#   /'; fi
    report $st "e2e $name ($((SECONDS-start)) s)"
  done
  if [ -n "$san" ]; then
    reports=$(ls "$san" 2>/dev/null)
    [ -n "$reports" ] && for f in $reports; do head -60 "$san/$f" | sed "s|^|#   $f: |"; done
    report "$([ -z "$reports" ] && echo 0 || echo 1)" "no AddressSanitizer/LeakSanitizer reports from any bridge"
  fi
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
