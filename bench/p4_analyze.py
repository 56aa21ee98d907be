#!/usr/bin/env python3
"""Break P4 freshness down from the diagnostics of `DIAG=1 TAP=1 bench/p4_fresh.sh`
(bench/results/p4_diag/): per-probe timestamps (probes.csv) and the server log
of every bridge statement with its duration (pg.log).  Analysis only; prints
percentiles in ms.  Usage: bench/p4_analyze.py [dir]"""
import csv, re, sys, statistics
from datetime import datetime, timezone

d = sys.argv[1] if len(sys.argv) > 1 else "bench/results/p4_diag"

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")

def show(name, v):
    if not v:
        print(f"{name:48s} (none)"); return
    print(f"{name:48s} n={len(v):6d} p50 {pct(v,.5):8.2f} p95 {pct(v,.95):8.2f} p99 {pct(v,.99):8.2f} max {max(v):8.2f}")

rows = [list(map(int, r)) for r in csv.reader(open(f"{d}/probes.csv"))]
# seq,due,start,commit,tap,updated_at,apply_commit (µs)
print("per probe (ms):")
show("insert: start lag behind schedule", [(r[2]-r[1])/1e3 for r in rows])
show("insert: commit round trip", [(r[3]-r[2])/1e3 for r in rows])
show("commit -> at broker (tap)", [(r[4]-r[3])/1e3 for r in rows if r[4]])
show("at broker -> apply statement (updated_at)", [(r[5]-r[4])/1e3 for r in rows if r[4]])
show("apply statement -> apply commit", [(r[6]-r[5])/1e3 for r in rows if r[6]])
show("commit -> apply commit (P4)", [(r[6]-r[3])/1e3 for r in rows if r[6]])

# server log: "2026-.. UTC|app|LOG:  duration: X ms  execute <unnamed>: SQL"
pat = re.compile(r"^(\S+ \S+) UTC\|sharecount-bridge (\w+)\|LOG:  duration: ([0-9.]+) ms  (parse|bind|execute) [^:]*: (.*)$")
ev = []
for line in open(f"{d}/pg.log", errors="replace"):
    m = pat.match(line)
    if not m:
        continue
    t = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp() * 1e3
    ev.append((t, m[2], float(m[3]), m[4], m[5]))
t_first, t_last = rows[0][2] / 1e3, rows[-1][3] / 1e3
ev = [e for e in ev if t_first <= e[0] <= t_last]
def stmt(role, key):
    return [e for e in ev if e[1] == role and e[3] == "execute" and key in e[4]]
print("\nbridge statements during the measured run, server-side execute time (ms):")
claims = stmt("publisher", "sharecount_outbox_claim")
show("publisher: claim", [e[2] for e in claims])
dones = stmt("publisher", "sharecount_outbox_done")
show("publisher: outbox_done", [e[2] for e in dones])
show("publisher: COMMIT (WAL flush)", [e[2] for e in stmt("publisher", "COMMIT")])
show("publisher: sleep()", [e[2] for e in stmt("publisher", "publisher_sleep")])
show("consumer: apply_batch (before its commit)", [e[2] for e in stmt("consumer", "apply_batch")])
# publish + confirm wait: from the end of a claim to the end of the next outbox_done
# minus the done's own time (ms timestamps: ±1 ms)
pub = [e for e in ev if e[1] == "publisher" and e[3] == "execute"]
gaps, cycles, nsleep, last_begin = [], [], 0, None
for i, e in enumerate(pub):
    if "outbox_claim" in e[4] and i + 1 < len(pub) and "outbox_done" in pub[i + 1][4]:
        gaps.append(pub[i + 1][0] - pub[i + 1][2] - e[0])
    if e[4] == "BEGIN":
        if last_begin is not None:
            cycles.append(e[0] - last_begin)
        last_begin = e[0]
    if "publisher_sleep" in e[4]:
        nsleep += 1
show("publisher: claim end -> done start (publish+confirms)", gaps)
show("publisher: BEGIN to next BEGIN (cycle)", cycles)
if cycles:
    # a row committed at a random moment waits for the cycle in progress to end:
    # the length-biased mean residual E[C^2] / (2 E[C])
    print(f"{'publisher: expected wait for the cycle in progress':48s} "
          f"mean {sum(c * c for c in cycles) / (2 * sum(cycles)):8.2f} (length-biased residual of the cycles above)")
print(f"publisher went to sleep {nsleep} times; "
      f"{len(claims)} claims, {len(dones)} non-empty ({len(rows) / max(1, len(dones)):.1f} jobs per non-empty claim)")
ap = stmt("consumer", "apply_batch")
ac = [b[0] - a[0] for a, b in zip(ap, ap[1:])]
show("consumer: apply to next apply", ac)
if ac:
    print(f"{'consumer: expected wait for the batch in progress':48s} "
          f"mean {sum(c * c for c in ac) / (2 * sum(ac)):8.2f}")
tb = [(r[4]-r[3])/1e3 for r in rows if r[4]]
if tb:
    print(f"{'(observed mean commit -> at broker)':48s} mean {sum(tb) / len(tb):8.2f}")
