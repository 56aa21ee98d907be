#!/usr/bin/env bash
# e2e (no servers): bench/pool.py pools the `make bench` runs of the same code
# and only those.  Six made-up runs: two of HEAD (taken), one with local
# changes, one of an unknown commit, one reconstructed and one of the first
# commit (other product code): all four left out.  Checks the runs taken,
# how many met P7 (<= 1.3), the range, the pooled rounds and the host steal,
# and that --product-only and a bad argument behave.
set -euo pipefail
cd "$(dirname "$0")/../.."
git rev-parse --git-dir >/dev/null 2>&1 || { echo "bench_pool: not a git checkout"; exit 1; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
head=$(git rev-parse --short HEAD); root=$(git rev-list --max-parents=0 HEAD | tail -1)
run() { # run FILE COMMIT EXTRA P7 ROUNDS
  printf '{"commit":"%s",%s"results":{"p7_cost":{"P7":{"ratio":%s,"rounds_ratio":%s}},
   "p5_http":{"P5":{"ratio":0.75},"rounds_ratio":"0.7 0.75 0.8"}},
   "scripts":{"p7_cost":{"status":"ok","seconds":300,"steal_pct":%s}}}\n' "$2" "$3" "$4" "$5" "$6" > "$d/$1.json"
}
run 2026-01-01T000000Z-a "$head" '"local_changes":false,' 1.25 '[1.2, 1.25, 1.4]' 3.5
run 2026-01-01T000001Z-b "$head" '' 1.35 '[1.3, 1.35, 1.5]' 0.5
run 2026-01-01T000002Z-c "$head" '"local_changes":true,' 9 '[9]' 0
run 2026-01-01T000003Z-d 0000000 '' 9 '[9]' 0
run 2026-01-01T000004Z-e "$head" '"reconstructed":true,' 9 '[9]' 0
run 2026-01-01T000005Z-f "$root" '' 9 '[9]' 0
out=$(BENCH_RUNS_DIR=$d python3 bench/pool.py --json)
BENCH_RUNS_DIR=$d python3 bench/pool.py >/dev/null
python3 - "$out" <<'PY'
import json, sys
t = {r["id"]: r for r in json.loads(sys.argv[1])["targets"]}
p7, p5, p1 = t["P7"], t["P5"], t["P1"]
want = {"runs": 2, "met": 1, "min": 1.25, "max": 1.35, "rounds": 6, "rounds_median": 1.325,
        "rounds_met_share": 0.5, "steal_pct_max": 3.5}
bad = {k: (p7.get(k), v) for k, v in want.items() if p7.get(k) != v}
assert not bad, "P7 pooled wrong (got, want): %s" % bad
assert p5["runs"] == 2 and p5["met"] == 2 and p5["rounds"] == 6, p5
assert p1["runs"] == 0 and "rounds" not in p1, p1
print("bench_pool: P7 %s" % {k: p7[k] for k in want})
PY
# --product-only takes the same runs here (HEAD's script is HEAD's)
[ "$(BENCH_RUNS_DIR=$d python3 bench/pool.py --product-only --json | python3 -c 'import json,sys; print([r for r in json.load(sys.stdin)["targets"] if r["id"]=="P7"][0]["runs"])')" = 2 ]
if BENCH_RUNS_DIR=$d python3 bench/pool.py --nonsense 2>/dev/null; then echo "bench_pool: a bad flag was accepted"; exit 1; fi
if BENCH_RUNS_DIR=$d python3 bench/pool.py no-such-commit 2>/dev/null; then echo "bench_pool: a bad commit was accepted"; exit 1; fi
echo "bench_pool: ok"
