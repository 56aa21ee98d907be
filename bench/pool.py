#!/usr/bin/env python3
"""Where each target of docs/performance.md stands across `make bench` runs.

One run is one sample of a noisy, shared machine: a ratio that sits at its
target is met in one run and missed in the next.  This pools the runs kept in
bench/results/runs/ that measured the same code as a given commit (HEAD by
default): a run is taken for a target when neither the product (PRODUCT:
src/, sql/, bridge/, the Makefile, the control file, test/lib.sh) nor that
target's script and the files it builds or reads (COMPANIONS) differ between
the run's commit and the given one, and the run had no local changes.  Runs
of other code are left out, whatever their figures.  With --product-only a
change of the script or its companions does not leave a run out (for scripts
changed only in what they print besides the figure; say so when quoting it).

For each target it prints the runs taken, how many met the target, the range
and median of their figures, and, for the targets measured in paired rounds
(P1, P5, P7, P8, P10, P10d), the quartiles and the share meeting the target
of all their rounds together.  --json adds the highest host CPU steal during
the script among the runs that recorded it (bench/run.sh).

Usage: bench/pool.py [COMMIT (default HEAD)] [--product-only] [--json]
BENCH_RUNS_DIR: read the runs from there instead (test/e2e/bench_pool.sh).
Reads only; writes nothing.
"""
import glob
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCT = ["src", "sql", "bridge", "Makefile", "sharecount.control", "test/lib.sh"]
# what a script builds or reads besides itself: a change there changes its measurement too
# (the P9 client's start-up burst was fixed in p9_client.c, not in p9_push.sh)
COMPANIONS = {"p3_drain": ["bench/raw_broker.c"], "p4_fresh": ["bench/p4_load.c"],
              "p5_http": ["bench/wrk_keys.lua"], "p9_push": ["bench/p9_client.c"],
              "p10_cache": ["bench/p10_state.sh", "bench/wrk_keys.lua"]}

# id -> (script, how a run's figure is read, how its rounds are read, target, "le"/"ge")
def _get(*path):
    def read(results):
        v = results
        for p in path:
            if not isinstance(v, dict) or p not in v:
                return None
            v = v[p]
        return v
    return read

TARGETS = [
    ("P1", "p1p2", _get("p1p2", "P1", "ratio"), _get("p1p2", "rounds_p1_ratio"), 0.85, "ge"),
    ("P2", "p1p2", _get("p1p2", "P2", "ratio"), None, 4, "ge"),
    ("P3", "p3_drain", _get("p3_drain", "P3", "ratio"), None, 0.8, "ge"),
    ("P4 p50", "p4_fresh", _get("p4_fresh", "P4", "p50_ms"), None, 10, "le"),
    ("P4 p99", "p4_fresh", _get("p4_fresh", "P4", "p99_ms"), None, 50, "le"),
    ("P5", "p5_http", _get("p5_http", "P5", "ratio"), _get("p5_http", "rounds_ratio"), 0.7, "ge"),
    ("P6 KiB", "p6_memory", _get("p6_memory", "P6", "max_rss_kib"), None, 16 * 1024, "le"),
    ("P7", "p7_cost", _get("p7_cost", "P7", "ratio"), _get("p7_cost", "P7", "rounds_ratio"), 1.3, "le"),
    ("P8", "p8_dedupe", _get("p8_dedupe", "P8", "ratio"), _get("p8_dedupe", "P8", "round_ratios"), 0.9, "ge"),
    ("P9 p50", "p9_push", _get("p9_push", "P9", "p50_ms"), None, 20, "le"),
    ("P9 p99", "p9_push", _get("p9_push", "P9", "p99_ms"), None, 100, "le"),
    ("P10", "p10_cache", _get("p10_cache", "P10", "ratio"), _get("p10_cache", "rounds_ratio_healthz"), 0.8, "ge"),
    ("P10d", "p10_cache", _get("p10_cache", "P10d", "ratio"), _get("p10_cache", "rounds_ratio_pgbench"), 1.6, "ge"),
    ("P11 ms", "p11_top", _get("p11_top", "P11", "measured"), None, 50, "le"),
]


def numbers(v):
    """A list of floats from a JSON list or a space-separated string."""
    if v is None:
        return []
    if isinstance(v, str):
        v = v.split()
    out = []
    for x in v:
        try:
            out.append(float(x))
        except (TypeError, ValueError):
            pass
    return out


def git(*args):
    return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)


def same_code(commit, base, script, cache):
    """True when commit and base hold the same product code (and script, if given)."""
    key = (commit, script)
    if key not in cache:
        known = git("cat-file", "-e", commit + "^{commit}").returncode == 0
        paths = PRODUCT + (["bench/%s.sh" % script] + COMPANIONS.get(script, []) if script else [])
        cache[key] = known and git("diff", "--quiet", commit, base, "--", *paths).returncode == 0
    return cache[key]


def quartiles(xs):
    s = sorted(xs)
    return s[len(s) // 4], statistics.median(s), s[(3 * len(s)) // 4]


def main():
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if flags - {"--json", "--product-only"}:
        sys.exit("usage: bench/pool.py [COMMIT] [--product-only] [--json]")
    base = args[0] if args else "HEAD"
    if git("rev-parse", "--verify", "-q", base + "^{commit}").returncode != 0:
        sys.exit("bench/pool.py: %s is not a commit here" % base)
    runs = []
    runs_dir = os.environ.get("BENCH_RUNS_DIR") or os.path.join(ROOT, "bench/results/runs")
    for f in sorted(glob.glob(os.path.join(runs_dir, "*.json"))):
        with open(f) as fh:
            d = json.load(fh)
        if d.get("reconstructed") or d.get("local_changes") or "results" not in d:
            continue
        runs.append((os.path.basename(f)[:-5], d))
    cache, report = {}, []
    for tid, script, fig, rnd, target, way in TARGETS:
        ok = (lambda v: v <= target) if way == "le" else (lambda v: v >= target)
        taken, rounds, steal = [], [], []
        for name, d in runs:
            v = fig(d["results"])
            which = None if "--product-only" in flags else script
            if v is None or not same_code(d.get("commit", ""), base, which, cache):
                continue
            taken.append((name, float(v)))
            if rnd:
                rounds += numbers(rnd(d["results"]))
            s = d.get("scripts", {}).get(script, {}).get("steal_pct")
            if s is not None:
                steal.append(s)
        row = {"id": tid, "target": ("<= " if way == "le" else ">= ") + "%g" % target, "runs": len(taken)}
        if taken:
            vals = [v for _, v in taken]
            row.update(met=sum(ok(v) for v in vals), min=min(vals), median=round(statistics.median(vals), 4),
                       max=max(vals), first=taken[0][0], last=taken[-1][0])
        if rounds:
            q1, med, q3 = quartiles(rounds)
            row.update(rounds=len(rounds), rounds_q1=q1, rounds_median=round(med, 4), rounds_q3=q3,
                       rounds_met_share=round(sum(ok(v) for v in rounds) / len(rounds), 3))
        if steal:
            row["steal_pct_max"] = max(steal)
        report.append(row)
    if "--json" in flags:
        print(json.dumps({"base": git("rev-parse", "--short", base).stdout.strip(),
                          "product_only": "--product-only" in flags, "targets": report}, indent=1))
        return
    print("# make bench runs of the same %s as %s (bench/results/runs/), pooled" % (
        "product code" if "--product-only" in flags else "product code and script", base))
    print("%-7s %-9s %5s %4s %22s %7s %26s %6s" % ("id", "target", "runs", "met", "runs: min median max",
                                                   "rounds", "rounds: q1 median q3", "met %"))
    for r in report:
        runs_txt = "%.4g %.4g %.4g" % (r["min"], r["median"], r["max"]) if r["runs"] else "-"
        rnd_txt = "%.4g %.4g %.4g" % (r["rounds_q1"], r["rounds_median"], r["rounds_q3"]) if "rounds" in r else "-"
        print("%-7s %-9s %5d %4s %22s %7s %26s %6s" % (
            r["id"], r["target"], r["runs"], r.get("met", "-"), runs_txt, r.get("rounds", "-"), rnd_txt,
            "%.0f" % (100 * r["rounds_met_share"]) if "rounds" in r else "-"))
    if report and report[0]["runs"]:
        print("# runs from %s to %s" % (report[0]["first"], report[0]["last"]))


if __name__ == "__main__":
    main()
