#!/usr/bin/env bash
# `make bench`: runs every benchmark script that exists, each printing its own
# table rows and writing bench/results/<name>.json, then merges those into
# bench/results/latest.json.  Benchmarks are never part of `make test`.
#   p1p2.sh      P1, P2  (write path: plain vs tracked vs synchronous counter)
#   p3_drain.sh  P3, P6  (bridge drain rate vs raw broker; bridge memory)
#   p5_http.sh   P5      (HTTP GET count vs pgbench on sharecount_get)
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
rm -f bench/results/p*.json
status=0
for s in p1p2 p3_drain p4_fresh p5_http; do
  [ -x bench/$s.sh ] || { echo "# bench/$s.sh: not written yet" >&2; continue; }
  echo "== $s" >&2
  bench/$s.sh || { echo "# bench/$s.sh failed" >&2; status=1; }
done
{
  echo "{"
  echo "  \"machine\": \"$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME")\","
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  first=1
  for f in bench/results/p*.json; do
    [ -f "$f" ] || continue
    [ $first -eq 1 ] || echo ","
    first=0
    printf '  "%s": ' "$(basename "$f" .json)"; cat "$f"
  done
  echo "}"
} > bench/results/latest.json
echo "# wrote bench/results/latest.json" >&2
exit $status
