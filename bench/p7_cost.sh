#!/usr/bin/env bash
# P7 of docs/performance.md — the database's CPU time per share, end to end.
#
# One private cluster (fsync on), one private broker, one bridge (publisher +
# consumer, default settings) running the whole time.  Each round runs, in an
# order that alternates from round to round:
#   plain    N INSERTs into share_links_plain (no trigger), 16 clients
#            (pgbench -t N/16 each), one hot key
#   tracked  N INSERTs into share_links (sharecount_track), 16 clients, one
#            hot key (a new key per round), then wait until the bridge has
#            drained the outbox and the key's count is exact
# and measures the PostgreSQL CPU time of each phase: utime + stime of every
# process of the cluster, reaped ones included = the postmaster's cutime +
# cstime (/proc/<postmaster>/stat fields 16-17: every backend, autovacuum
# worker and other child it has waited for) plus utime + stime (fields 14-15)
# of each live child, taken before and after the phase.  A child that exits
# during the phase is counted once: its live figure at the start, its whole
# time in cutime at the end.  The bridge and pgbench are not PostgreSQL
# processes and are not counted.  A CHECKPOINT (not measured) precedes each
# phase, so both start with the same full-page-write state.
#
# P7 = median over the rounds of (tracked CPU / plain CPU).  Also printed, per
# tracked phase, where the time went by process (docs/performance.md, "P7"):
# the bridge's publisher session (claim + done), its consumer session
# (apply), the application's sessions and other reaped children (inserts +
# trigger; autovacuum workers), and the live background processes; per round
# also the application side alone: the CPU of the processes that exited
# during the phase (pgbench's sessions when it ends, autovacuum workers),
# tracked / plain, so a round's ratio splits into the application's part and
# the bridge's sessions.
#
# Usage: bench/p7_cost.sh [N (default 100000)] [rounds (default 9)]
# P7_BUDGET_S (default 300): after 5 rounds, no round is started that would
# end past this many seconds from the script's start (the rounds so far
# taken as its length), so a slow machine gets fewer rounds, not a timeout
# (make bench stops the script at 420 s).
# P7_PERF=FILE: also `perf record` the whole cluster (the postmaster and
# every process it forks, and the bridge's sessions) during each phase into
# FILE.<key> (p<round> plain,
# r<round> tracked); bench/p7_stages.sh turns them into the per-stage table of
# docs/performance.md.  The ratio of such a run is not comparable.
# P7_SQL=STATEMENTS: run once after the setup, before the bridge starts (to
# measure a variant, e.g. a setting).
# Prints a table; writes bench/results/p7_cost.json.  Not a test: the machine
# is shared, so treat the figures as indicative.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"
N=${1:-100000}; rounds=${2:-9}; clients=${CLIENTS:-16}; budget=${P7_BUDGET_S:-300}
MIN_ROUNDS=5                  # rounds run whatever the budget
P7_TARGET=1.3                 # docs/performance.md, P7
DRAIN_WAIT_S=600              # generous: the machine is shared
cd "$SC_ROOT"
sc_init
make -s all >&2
sc_bench_servers              # private servers, or PGURL / AMQP_URL (test/lib.sh)
[ -z "${PGURL:-}" ] || { echo "p7_cost.sh measures a private cluster's processes: unset PGURL" >&2; exit 1; }
sc_setup_tracked
sc_psql -c "CREATE TABLE share_links_plain (LIKE share_links INCLUDING ALL)"
# P7_SQL: statements run once before the bridge starts (experiments, e.g. a setting)
[ -z "${P7_SQL:-}" ] || sc_psql -c "$P7_SQL" >&2
pm=$(head -1 "$SC_TMP/pgdata/postmaster.pid")
tck=$(getconf CLK_TCK)
per_client=$(( N / clients ))
N=$(( per_client * clients ))

# cpu_ticks PID: utime + stime of a live process (0 if gone)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# reaped_ticks: the CPU of the cluster's children that have exited (the
# application's sessions once pgbench has ended, autovacuum workers)
reaped_ticks() { awk '{print $16 + $17}' "/proc/$pm/stat"; }
# cluster_ticks: every PostgreSQL process's CPU so far, reaped ones included
cluster_ticks() {
  local t c
  t=$(reaped_ticks)
  for c in $(ps -o pid= --ppid "$pm"); do t=$(( t + $(cpu_ticks "$c") )); done
  echo "$t"
}
# where_ticks CONDITION: CPU of the live processes that pg_stat_activity lists under CONDITION
where_ticks() {
  local t=0 p
  for p in $(sc_psql -c "SELECT pid FROM pg_stat_activity WHERE $1"); do t=$(( t + $(cpu_ticks "$p") )); done
  echo "$t"
}
# session_ticks APPNAME: the bridge's sessions with that application_name
session_ticks() { where_ticks "application_name = '$1'"; }
# background_ticks: the live children that are not client sessions
background_ticks() { where_ticks "backend_type <> 'client backend'"; }
secs() { awk -v t="$1" -v k="$tck" 'BEGIN{printf "%.2f", t / k}'; }

log=$SC_TMP/bridge.log
sc_bench_bridge "$log"
BP=$SC_BRIDGE_PID
# wait until the bridge's sessions are there (they are measured by name)
for _ in $(seq 600); do
  [ "$(sc_psql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name IN
        ('sharecount-bridge publisher', 'sharecount-bridge consumer')")" -ge 2 ] && break
  kill -0 "$BP" 2>/dev/null || { tail "$log" >&2; echo "bridge died" >&2; exit 1; }
  sleep 0.1
done

# poll SQL: one answer from a session kept open for the whole run (a new
# connection per poll would be a new backend, whose CPU would count)
coproc POLL { psql -X -q -At ${SC_PSQL_DB:+-d "$SC_PSQL_DB"} 2>&1; }
poll() { echo "$1;" >&"${POLL[1]}"; local a; read -r a <&"${POLL[0]}"; echo "$a"; }
[ "$(poll "SELECT 1")" = 1 ] || { echo "the polling session does not answer" >&2; exit 1; }

# phase TABLE KEY: N inserts on one key; for share_links, then wait for the drain
phase() {
  local tbl=$1 key=$2 f=$SC_TMP/$1.sql deadline
  printf "INSERT INTO %s (content_type, content_id, user_id) VALUES ('article', '%s', 'user' || :client_id);\n" \
    "$tbl" "$key" > "$f"
  sc_psql -c "CHECKPOINT" >/dev/null
  local c0 p0 k0 b0 a0
  a0=$(reaped_ticks); c0=$(cluster_ticks); p0=$(session_ticks 'sharecount-bridge publisher')
  k0=$(session_ticks 'sharecount-bridge consumer'); b0=$(background_ticks)
  if [ -n "${P7_PERF:-}" ]; then   # profile the cluster: the postmaster and every child it forks
    # plus the bridge's two sessions, which the postmaster forked before
    local sess
    sess=$(sc_psql -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity
            WHERE application_name LIKE 'sharecount-bridge %'")
    sc_psql -c "SELECT split_part(application_name, ' ', 2) || ' ' || pid FROM pg_stat_activity
            WHERE application_name LIKE 'sharecount-bridge %'" > "$P7_PERF.$key.pids"
    perf record -q -F 999 -g -o "$P7_PERF.$key" -p "$pm${sess:+,$sess}" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1                         # perf attached before the phase starts
  fi
  "$SC_PGBIN/pgbench" -n -M prepared -c "$clients" -j 2 -t "$per_client" -f "$f" >"$SC_TMP/pgbench.out" 2>&1 ||
    { cat "$SC_TMP/pgbench.out" >&2; exit 1; }
  if [ "$tbl" = share_links ]; then
    deadline=$(( SECONDS + DRAIN_WAIT_S ))
    until [ "$(poll "SELECT sharecount_get('article', '$key') = $N AND NOT EXISTS (SELECT FROM sharecount.outbox)")" = t ]; do
      kill -0 "$BP" 2>/dev/null || { tail "$log" >&2; echo "bridge died" >&2; exit 1; }
      [ "$SECONDS" -lt "$deadline" ] || { echo "not drained after ${DRAIN_WAIT_S}s" >&2; exit 1; }
      sleep 0.5
    done
  fi
  if [ -n "${perf_pid:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; perf_pid=; fi
  local c1 p1 k1 b1 a1
  a1=$(reaped_ticks); c1=$(cluster_ticks); p1=$(session_ticks 'sharecount-bridge publisher')
  k1=$(session_ticks 'sharecount-bridge consumer'); b1=$(background_ticks)
  # total publisher consumer background reaped (ticks)
  echo "$(( c1 - c0 )) $(( p1 - p0 )) $(( k1 - k0 )) $(( b1 - b0 )) $(( a1 - a0 ))"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -a ratios plain_s tracked_s pub_s con_s bg_s app_ratios
t_rounds=$SECONDS
for r in $(seq "$rounds"); do
  if [ "$r" -gt "$MIN_ROUNDS" ] && [ $(( SECONDS + (SECONDS - t_rounds) / (r - 1) )) -gt "$budget" ]; then
    echo "# stopping after $((r - 1)) rounds: another would end past P7_BUDGET_S=${budget}s" >&2
    break
  fi
  order=(plain tracked); [ $((r % 2)) = 0 ] && order=(tracked plain)
  for v in "${order[@]}"; do
    if [ "$v" = plain ]; then read -r pt _ _ _ pa < <(phase share_links_plain "p$r")
    else read -r tt tp tk tb ta < <(phase share_links "r$r"); fi
  done
  ratios+=("$(awk -v a="$tt" -v b="$pt" 'BEGIN{printf "%.3f", a/b}')")
  app_ratios+=("$(awk -v a="$ta" -v b="$pa" 'BEGIN{printf "%.3f", (b > 0 ? a / b : 0)}')")
  plain_s+=("$(secs "$pt")"); tracked_s+=("$(secs "$tt")")
  pub_s+=("$(secs "$tp")"); con_s+=("$(secs "$tk")"); bg_s+=("$(secs "$tb")")
  echo "# round $r: plain $(secs "$pt") s, tracked $(secs "$tt") s (publisher $(secs "$tp"), consumer $(secs "$tk"), background $(secs "$tb"); exited processes $(secs "$ta") against plain's $(secs "$pa"): ${app_ratios[-1]}): ${ratios[-1]}" >&2
done
rounds=${#ratios[@]}
kill -TERM "$BP"; wait "$BP" || true
[ "$(sc_psql -c "SELECT count(*) FROM sharecount_verify(10)")" = 0 ] || { echo "counts not exact after the drain" >&2; exit 1; }

p7=$(printf '%s\n' "${ratios[@]}" | median)
mp=$(printf '%s\n' "${plain_s[@]}" | median); mt=$(printf '%s\n' "${tracked_s[@]}" | median)
mpub=$(printf '%s\n' "${pub_s[@]}" | median); mcon=$(printf '%s\n' "${con_s[@]}" | median)
mbg=$(printf '%s\n' "${bg_s[@]}" | median)
mapp=$(printf '%s\n' "${app_ratios[@]}" | median)
ok=$(awk -v r="$p7" -v t="$P7_TARGET" 'BEGIN{print (r<=t)?"met":"NOT met"}')
us() { awk -v s="$1" -v n="$N" 'BEGIN{printf "%.1f", s * 1e6 / n}'; }
printf '%-4s %-44s %12s %12s %8s %8s %s\n' id what measured baseline ratio target status
printf '%-4s %-44s %12s %12s %8s %8s %s\n' P7 "PG CPU/share, tracked+drained / plain, N=$N" "${mt}s" "${mp}s" "$p7" "<=$P7_TARGET" "$ok"
printf '# per share (medians): plain %s us; tracked %s us, of which bridge publisher session %s us, consumer session %s us, live background %s us\n' \
  "$(us "$mp")" "$(us "$mt")" "$(us "$mpub")" "$(us "$mcon")" "$(us "$mbg")"
printf '# the application side alone (exited processes: pgbench sessions, autovacuum workers), tracked / plain, median: %s\n' "$mapp"
mkdir -p bench/results
j() { printf '%s\n' "$@" | paste -sd, -; }
cat > bench/results/p7_cost.json <<JSON
{"P7": {"shares": $N, "clients": $clients, "rounds": $rounds,
        "measured_cpu_s": $mt, "baseline_cpu_s": $mp, "ratio": $p7, "target": $P7_TARGET,
        "met": $([ "$ok" = met ] && echo true || echo false),
        "rounds_ratio": [$(j "${ratios[@]}")], "rounds_plain_cpu_s": [$(j "${plain_s[@]}")],
        "rounds_tracked_cpu_s": [$(j "${tracked_s[@]}")],
        "application_ratio": $mapp, "rounds_application_ratio": [$(j "${app_ratios[@]}")],
        "tracked_by_process_cpu_s": {"publisher_session": $mpub, "consumer_session": $mcon,
          "live_background": $mbg,
          "method": "medians; the rest of tracked is the application's sessions and reaped children (autovacuum workers)"}}}
JSON
