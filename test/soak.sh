#!/usr/bin/env bash
# The chaos soak (docs/soak.md): `make soak` runs it for SOAK_SECONDS (600 by
# default); test/e2e/soak_short.sh runs it for about a minute inside `make test`.
#
# SOAK_CLIENTS psql clients run the random workload of test/soak/workload.awk
# (inserts, deletes, re-targets, TRUNCATEs, transactions) while two bridges
# move the jobs, and a fault schedule drawn from SOAK_SEED kills bridges
# (SIGKILL, restarted later), pauses them (SIGSTOP, SIGCONT later), stops and
# starts RabbitMQ (clean stop or SIGKILL) and restarts PostgreSQL (fast or
# immediate stop).  Then everything is brought back, the clients stop, and the
# run must end exact: sharecount_verify empty, outbox and jobs queue drained,
# dead-letter queue empty (every job the soak writes is valid), both bridges
# alive and exiting 0 on SIGTERM, and no client error caused by a bridge or a
# broker fault.
#
# Rules a reader must know:
# - Standalone it starts its own PostgreSQL and RabbitMQ (test/e2e/bridge.inc);
#   under test/run.sh it uses the shared ones and restarts them, like the
#   other e2e tests do, and leaves them running.
# - Only this shell injects faults and starts bridges (bridge PIDs are its
#   children: a killed bridge is reaped with `wait` so a zombie never looks
#   alive).  Clients are background subshells that stop when $SOAK_DIR/stop
#   exists; they never signal anything.
# - Fault kinds, order, targets, durations and planned times come from the
#   seed alone; the actual times drift when a restart takes longer than planned.
# - Client errors are classified after the run from each chunk's stderr and
#   its start/end time (ms): losing PostgreSQL is expected only while a
#   PostgreSQL restart is in progress; a deadlock or serialization failure is
#   the application's own; a statement timeout (blocked) or any other error
#   fails the soak.
set -euo pipefail
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_SEED=${SOAK_SEED:-$(( (RANDOM * 32768 + RANDOM) % 999999 + 1 ))}
SOAK_CLIENTS=${SOAK_CLIENTS:-4}          # concurrent psql clients
SOAK_KEYS=${SOAK_KEYS:-40}               # content ids per content type
SOAK_CHUNK=${SOAK_CHUNK:-100}            # workload units per psql session
SOAK_PAUSE_MS=${SOAK_PAUSE_MS:-200}      # between a client's chunks (the machine is shared)
SOAK_DRAIN_SECONDS=${SOAK_DRAIN_SECONDS:-300}   # deadline for the final drain
SOAK_STMT_TIMEOUT_S=${SOAK_STMT_TIMEOUT_S:-60}  # a statement this slow counts as blocked
SOAK_ISOLATION=${SOAK_ISOLATION:-read committed} # the clients' default_transaction_isolation
SOAK_GAP_MIN_S=2                          # planned gap between two faults: 2-10 s
SOAK_GAP_SPAN_S=8
SOAK_PG_GRACE_MS=5000                     # slack around a PostgreSQL restart window
E2E_NAME=soak
. "$(dirname "$0")/e2e/bridge.inc"
# a command failing under set -e says so (else the soak would end without a word)
set -o errtrace
trap 'st=$?; echo "FAIL: test/soak.sh line $LINENO: \"$BASH_COMMAND\" exited $st (seed $SOAK_SEED)" >&2' ERR
SOAK_DIR=$SC_TMP/soak.$$
mkdir -p "$SOAK_DIR"
# SOAK_DIR goes with the temp dir (kept with SC_KEEP_TMP=1 when standalone)
sc_on_exit "touch '$SOAK_DIR/stop'"
SOAK_GEN=$SC_ROOT/test/soak/workload.awk

now_ms() { local t=$EPOCHREALTIME; t=${t/./}; echo $(( 10#$t / 1000 )); }
slog() { echo "# soak $(date -u +%H:%M:%S) $*"; }

# ------------------------------------------------------------ the schedule ----

# soak_schedule: one line per fault, "at_ms kind target dur_ms mode", drawn from
# the seed.  The first four faults are one of each kind (in a seeded order) so
# that even a one-minute run sees every kind.
soak_schedule() {
  awk -v seed="$SOAK_SEED" -v total_ms="$((SOAK_SECONDS * 1000))" \
      -v gmin="$((SOAK_GAP_MIN_S * 1000))" -v gspan="$((SOAK_GAP_SPAN_S * 1000))" 'BEGIN {
    srand(seed % 2147483647)
    split("bridge_kill bridge_stop rmq_restart pg_restart", kinds, " ")
    for (i = 4; i > 1; i--) { j = 1 + int(rand() * i); t = kinds[i]; kinds[i] = kinds[j]; kinds[j] = t }
    at = 0
    for (n = 1; ; n++) {
      at += gmin + int(rand() * gspan)
      if (at >= total_ms) break
      if (n <= 4) kind = kinds[n]
      else { r = rand(); kind = r < 0.3 ? "bridge_kill" : r < 0.55 ? "bridge_stop" : r < 0.75 ? "rmq_restart" : "pg_restart" }
      target = int(rand() * 2)
      if (kind == "bridge_kill") { dur = 500 + int(rand() * 4500); mode = "-" }          # down 0.5-5 s
      else if (kind == "bridge_stop") { dur = 1000 + int(rand() * 19000); mode = "-" }   # paused 1-20 s
      else if (kind == "rmq_restart") { dur = int(rand() * 5000); mode = rand() < 0.7 ? "stop" : "kill" }
      else { dur = int(rand() * 5000); mode = rand() < 0.5 ? "fast" : "immediate" }
      print at, kind, target, dur, mode
    }
  }'
}

# --------------------------------------------------------------- bridges ----

# Two bridges with different batch shapes; heartbeat 5 s, so a long SIGSTOP
# also makes the broker drop the paused bridge's connections.
SOAK_BR_FLAGS=("--heartbeat_s=5" "--heartbeat_s=5 --publish_batch=50 --apply_batch=50 --publish_pipeline=1 --prefetch=200")
SOAK_BR_PID=(0 0); SOAK_BR_STATE=(down down); SOAK_BR_UNTIL=(0 0)
SOAK_BRIDGE_STARTS=0; SOAK_BRIDGE_CRASHES=0

alive() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ "$s" != Z ]; }

soak_bridge_start() { # SLOT
  # shellcheck disable=SC2086 # the flags are a list
  bridge_start ${SOAK_BR_FLAGS[$1]}
  SOAK_BR_PID[$1]=$BRIDGE_PID; SOAK_BR_STATE[$1]=run
  SOAK_BRIDGE_STARTS=$((SOAK_BRIDGE_STARTS + 1))
}

# soak_recover [all]: bring back the bridges whose downtime is over (all: every one).
soak_recover() {
  local s now; now=$(now_ms)
  for s in 0 1; do
    if [ "${SOAK_BR_STATE[$s]}" = run ] && ! alive "${SOAK_BR_PID[$s]}"; then
      wait "${SOAK_BR_PID[$s]}" 2>/dev/null || true
      SOAK_BRIDGE_CRASHES=$((SOAK_BRIDGE_CRASHES + 1))
      slog "BRIDGE $s (pid ${SOAK_BR_PID[$s]}) DIED ON ITS OWN; restarting it"
      echo "crash $now $now bridge$s" >> "$SOAK_DIR/faults"
      soak_bridge_start "$s"
      continue
    fi
    [ "${1:-}" = all ] || [ "$now" -ge "${SOAK_BR_UNTIL[$s]}" ] || continue
    case ${SOAK_BR_STATE[$s]} in
      stopped) kill -CONT "${SOAK_BR_PID[$s]}" || true; SOAK_BR_STATE[$s]=run ;;
      killed) soak_bridge_start "$s" ;;
    esac
  done
}

# soak_pick TARGET: TARGET if that bridge runs, else the other one; prints
# nothing when neither runs.
soak_pick() {
  local s
  for s in "$1" $((1 - $1)); do [ "${SOAK_BR_STATE[$s]}" = run ] && { echo "$s"; return 0; }; done
  return 0
}

# ---------------------------------------------------------------- faults ----

soak_fault() { # KIND TARGET DUR_MS MODE
  local kind=$1 dur=$3 mode=$4 s t0 t1
  t0=$(now_ms)
  case $kind in
    bridge_kill|bridge_stop)
      s=$(soak_pick "$2")
      if [ -z "$s" ]; then echo "skipped(both_bridges_down) $t0 $t0 $kind" >> "$SOAK_DIR/faults"; return; fi
      if [ "$kind" = bridge_kill ]; then
        kill -KILL "${SOAK_BR_PID[$s]}" || true; wait "${SOAK_BR_PID[$s]}" 2>/dev/null || true
        SOAK_BR_STATE[$s]=killed
      else
        kill -STOP "${SOAK_BR_PID[$s]}" || true; SOAK_BR_STATE[$s]=stopped
      fi
      SOAK_BR_UNTIL[$s]=$((t0 + dur))
      mode=bridge$s ;;
    rmq_restart)
      if [ "$mode" = kill ]; then
        local pid; pid=$(cat "$SC_TMP/rmq/rabbitmq.pid" 2>/dev/null || true)
        if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
      fi
      sc_rmq_stop || true         # (|| : its kill of a PID already gone must not end the soak)
      sleep "$(awk -v d="$dur" 'BEGIN { print d / 1000 }')"
      soak_recover
      sc_rmq_boot || fail "rabbitmq did not come back" ;;
    pg_restart)
      sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -m "$mode" -w stop >/dev/null 2>&1 ||
        fail "pg_ctl stop -m $mode"
      sleep "$(awk -v d="$dur" 'BEGIN { print d / 1000 }')"
      sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -l "$SC_TMP/pg.log" -w -t 120 start >/dev/null ||
        fail "postgresql did not come back" ;;
  esac
  t1=$(now_ms)
  echo "$kind $t0 $t1 $mode" >> "$SOAK_DIR/faults"
  slog "$kind $mode (planned ${dur} ms, took $((t1 - t0)) ms)"
}

# --------------------------------------------------------------- clients ----

# soak_client ID: run chunks until the stop file appears.  Per chunk: the
# command tags counted into $base.tags, "T0_MS T1_MS" into $base.times, and, if anything went wrong, a header
# "=== chunk J T0_MS T1_MS PSQL_STATUS" and its stderr into $base.err.
soak_client() {
  set +e; trap - ERR
  local id=$1 chunk=0 t0 t1 st base=$SOAK_DIR/client$1
  while [ -d "$SOAK_DIR" ] && [ ! -e "$SOAK_DIR/stop" ]; do
    awk -v seed="$SOAK_SEED" -v client="$id" -v chunk="$chunk" -v units="$SOAK_CHUNK" -v keys="$SOAK_KEYS" \
      -f "$SOAK_GEN" > "$base.sql"
    t0=$(now_ms)
    PGOPTIONS="-c statement_timeout=${SOAK_STMT_TIMEOUT_S}s -c default_transaction_isolation=${SOAK_ISOLATION// /\\ }" \
      psql -X -d "$E2E_DB" -f "$base.sql" 2>"$base.stderr" |
      awk '{ n[$1 " " $NF]++ } END { for (k in n) print k, n[k] }' >> "$base.tags"
    st=${PIPESTATUS[0]}
    t1=$(now_ms)
    echo "$t0 $t1" >> "$base.times"
    if [ "$st" != 0 ] || grep -q ERROR "$base.stderr"; then
      { echo "=== chunk $chunk $t0 $t1 $st"; cat "$base.stderr"; } >> "$base.err"
    fi
    [ "$st" = 2 ] && sleep 0.2                        # the server is away: do not spin
    sleep "$(awk -v d="$SOAK_PAUSE_MS" 'BEGIN { print d / 1000 }')"
    chunk=$((chunk + 1))
  done
  echo "$chunk" > "$base.chunks"
}

# soak_client_errors: "cause count" lines; a cause starting with FAIL: fails the soak.
soak_client_errors() {
  cat "$SOAK_DIR"/client*.err 2>/dev/null | awk -v grace="$SOAK_PG_GRACE_MS" -v faults="$SOAK_DIR/faults" '
    BEGIN { while ((getline l < faults) > 0) { split(l, f, " "); if (f[1] == "pg_restart") { a[++nw] = f[2]; b[nw] = f[3] } } }
    function in_restart(t0, t1,   i) { for (i = 1; i <= nw; i++) if (t1 >= a[i] - grace && t0 <= b[i] + grace) return 1; return 0 }
    function close_chunk() {
      if (!open) return
      if (lost || st == 2) n[in_restart(t0, t1) ? "postgresql_restart(connection)" : "FAIL:connection_lost_outside_a_postgresql_restart"]++
      open = 0
    }
    /^=== chunk / { close_chunk(); open = 1; t0 = $4; t1 = $5; st = $6; lost = 0; next }
    # follow-ons of an error counted already: statements of the aborted
    # transaction, and its ROLLBACK TO a SAVEPOINT that was never made
    /current transaction is aborted|savepoint "sp" does not exist/ { next }
    /deadlock detected/ { n["deadlock(application)"]++; next }
    /could not serialize access/ { n["serialization_failure(application)"]++; next }
    /statement timeout/ { n["FAIL:statement_timeout(blocked)"]++; next }
    /FATAL|server closed the connection|connection to server|Connection refused|No such file or directory|the database system is/ { lost = 1; next }
    /ERROR:/ { n["FAIL:other_error"]++; print "# unexpected: " $0 > "/dev/stderr"; next }
    END { close_chunk(); for (k in n) print k, n[k] }'
}

# soak_chunk_times: "N chunks away from PostgreSQL restarts: median X ms, slowest Y ms"
# (a figure for the report, never asserted: the machine is shared and noisy).
soak_chunk_times() {
  cat "$SOAK_DIR"/client*.times | awk -v grace="$SOAK_PG_GRACE_MS" -v faults="$SOAK_DIR/faults" '
    BEGIN { while ((getline l < faults) > 0) { split(l, f, " "); if (f[1] == "pg_restart") { a[++nw] = f[2]; b[nw] = f[3] } } }
    { for (i = 1; i <= nw; i++) if ($2 >= a[i] - grace && $1 <= b[i] + grace) next; print $2 - $1 }' |
    sort -n | awk '{ d[NR] = $1 } END { printf "%d chunks away from PostgreSQL restarts: median %d ms, slowest %d ms", NR, d[int((NR + 1) / 2)], d[NR] }'
}

# ------------------------------------------------------------------- run ----

slog "seed $SOAK_SEED, $SOAK_SECONDS s, $SOAK_CLIENTS clients, $SOAK_KEYS keys per type, isolation $SOAK_ISOLATION"
slog "replay: SOAK_SEED=$SOAK_SEED SOAK_SECONDS=$SOAK_SECONDS make soak"
e2e_setup soak
soak_bridge_start 0
soak_bridge_start 1
soak_schedule > "$SOAK_DIR/schedule"
: > "$SOAK_DIR/faults"
slog "$(wc -l < "$SOAK_DIR/schedule") faults planned: $(awk '{ n[$2]++ } END { for (k in n) printf "%s %d ", k, n[k] }' "$SOAK_DIR/schedule")"

SOAK_CLIENT_PIDS=()
for ((c = 0; c < SOAK_CLIENTS; c++)); do
  soak_client "$c" &
  SOAK_CLIENT_PIDS+=("$!")
  sc_on_exit "kill $!"
done
start=$(now_ms)

# A fault is injected only while the run lasts: restarts that took longer than
# planned leave the end of the schedule out (counted), so the run stays
# SOAK_SECONDS plus at most one restart.  The schedule is read on fd 3: the
# servers and bridges started in the loop must not read it.
late=0
while read -r at kind target dur mode <&3; do
  while [ "$(now_ms)" -lt $((start + at)) ]; do soak_recover; sleep 0.1; done
  if [ "$(now_ms)" -ge $((start + SOAK_SECONDS * 1000)) ]; then late=$((late + 1)); continue; fi
  soak_recover
  soak_fault "$kind" "$target" "$dur" "$mode"
done 3< "$SOAK_DIR/schedule"
while [ "$(now_ms)" -lt $((start + SOAK_SECONDS * 1000)) ]; do soak_recover; sleep 0.2; done

# --------------------------------------------------------------- the end ----

slog "workload over; bringing every bridge back and stopping the clients"
soak_recover all
touch "$SOAK_DIR/stop"
for p in "${SOAK_CLIENT_PIDS[@]}"; do wait "$p" || true; done
soak_recover                      # a bridge that died meanwhile is counted and restarted

# Drained: outbox empty, jobs queue empty (ready and unacked), verify empty.
# Outbox and queue empty while verify is not, 10 polls in a row: nothing is in
# flight any more, so the counts are final and wrong; stop waiting.
t0=$SECONDS; settled=0; drain_failure=""
while :; do
  ob=$(stat outbox_depth 2>/dev/null || echo '?')
  qd=$(queue_depth sharecount.jobs || true); qd=${qd:-?}
  bad=$(q "SELECT count(*) FROM sharecount_verify(1000)" 2>/dev/null || echo '?')
  [ "$ob$qd$bad" = 000 ] && break
  if [ "$ob$qd" = 00 ]; then settled=$((settled + 1)); else settled=0; fi
  if [ "$settled" -ge 10 ] || [ $((SECONDS - t0)) -ge "$SOAK_DRAIN_SECONDS" ]; then
    q "SELECT * FROM sharecount_verify(20)" | sed 's/^/# counted wrong (type|id|counted|actual): /' >&2 || true
    drain_failure="not exact after $((SECONDS - t0)) s: outbox=$ob queue=$qd mismatched_keys=$bad"
    break
  fi
  soak_recover
  sleep 1
done
drain_s=$((SECONDS - t0))

# ------------------------------------------------------------- the report ----

dead=$(queue_depth sharecount.dead || true); dead=${dead:-?}
slog "${drain_failure:-drained in ${drain_s} s; verify empty}; dead-lettered $dead"
if [ "$dead" != 0 ]; then
  amqp-get --url="$E2E_AMQP" -q sharecount.dead >&2 || true
fi
errors=$(soak_client_errors)
slog "faults injected: $(awk '{ k = $1 ($4 ~ /^(fast|immediate|stop|kill)$/ ? "/" $4 : ""); n[k]++ } END { for (k in n) printf "%s %d  ", k, n[k] }' "$SOAK_DIR/faults")"
[ "$late" = 0 ] || slog "$late planned faults left out: the restarts before them ran past ${SOAK_SECONDS} s"
slog "client chunks: $(cat "$SOAK_DIR"/client*.chunks | awk '{ n += $1 } END { print n }') of $SOAK_CHUNK units"
slog "client statements (command tag, rows): $(cat "$SOAK_DIR"/client*.tags | awk '
  $1 ~ /^(INSERT|DELETE|UPDATE)$/ { s[$1] += $3; r[$1] += $2 * $3; next } { s[$1] += $3 }
  END { for (k in s) printf "%s %d%s  ", k, s[k], (k in r) ? " (" r[k] " rows)" : "" }')"
slog "client chunk times: $(soak_chunk_times)"
slog "client errors by cause: $(echo "${errors:-none}" | paste -sd, | sed 's/,/, /g')"
slog "end state: $(q "SELECT count(*) || ' rows, ' || count(DISTINCT (content_type, content_id)) || ' keys' FROM share_links"); stats $(q "SELECT sharecount_stats() - 'outbox_oldest_age_seconds'")"
slog "bridge log lines by level: $(cat "$SC_TMP"/soak.bridge*.log | awk '{ n[$2]++ } END { for (k in n) printf "%s %d  ", k, n[k] }')"
slog "logs: $SC_TMP/soak.bridge*.log, $SOAK_DIR (client chunks, errors, faults)"
slog "bridges: $SOAK_BRIDGE_STARTS started, $SOAK_BRIDGE_CRASHES died on their own; seed $SOAK_SEED"

[ -z "$drain_failure" ] || fail "$drain_failure (seed $SOAK_SEED)"
[ "$dead" = 0 ] || fail "$dead jobs dead-lettered (every job the soak writes is valid)"
[ "$SOAK_BRIDGE_CRASHES" = 0 ] || fail "$SOAK_BRIDGE_CRASHES bridge(s) died without being killed"
echo "$errors" | grep -q '^FAIL:' && fail "client errors that no PostgreSQL restart explains: $(echo "$errors" | grep '^FAIL:' | paste -sd,)"
for s in 0 1; do
  bridge_stop "${SOAK_BR_PID[$s]}"
  [ "$STOP_STATUS" = 0 ] || fail "bridge $s: exit status $STOP_STATUS on SIGTERM"
done
slog "exact (seed $SOAK_SEED)"
