#!/usr/bin/env bash
# SIGHUP reload (docs/bridge.md "Reload") of a bridge running all three roles
# from a config file, while inserts stream in and /healthz is polled:
#   - log_level info -> debug and max_delivery_attempts 5 -> 3 in the file:
#     one "configuration reloaded" line listing exactly those two, DEBUG lines
#     appear, same PID, a poisoned job is dead-lettered after 3 failures (the
#     consumer uses the new value); poll_interval_ms (a flag) and apply_linger_ms
#     (SHARECOUNT_APPLY_LINGER_MS) changed in the file stay as given: flags and
#     the environment keep winning;
#   - a bad file: one "reload failed" error naming the line, still running,
#     old values kept (DEBUG lines go on);
#   - pg_conninfo changed (to a database that does not exist, with a password):
#     one WARNING "cannot be changed without restarting", password not logged,
#     the bridge keeps counting into the right database;
#   - a burst of SIGHUPs: still running;
#   - at the end every insert is counted exactly (none dropped, none twice),
#     nothing else dead-lettered, /healthz never failed, SIGTERM -> exit 0.
. "$(dirname "$0")/bridge.inc"
e2e_setup reload
# one key whose apply always fails (as in bridge_poison), to see max_delivery_attempts at work
q "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN IF NEW.content_id = 'poison' THEN RAISE EXCEPTION 'poisoned key'; END IF; RETURN NEW; END \$\$;
   CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON sharecount.counts FOR EACH ROW EXECUTE FUNCTION poison();" >/dev/null

HTTP_PORT=$(sc_free_port)
CONF=$SC_TMP/$E2E_NAME.conf
E2E_NB=1
LOG=$SC_TMP/$E2E_NAME.bridge1.log
W=$(mktemp -d "$SC_TMP/$E2E_NAME.XXXXXX")

# write_conf PG_CONNINFO LOG_LEVEL MAX_DELIVERY_ATTEMPTS [EXTRA_LINE]: replace the file at once
write_conf() {
  printf '%s\n' "# bridge_reload" "pg_conninfo = $1" "amqp_url = $E2E_AMQP" \
    "roles = publisher,consumer,http" "http_listen = 127.0.0.1:$HTTP_PORT" "heartbeat_s = 10" \
    "log_level = $2" "max_delivery_attempts = $3" "${4:-}" > "$CONF.new"
  mv "$CONF.new" "$CONF"
}
# reloads: how many reloads the bridge has logged (either outcome)
reloads() { grep -cE 'configuration reloaded|reload failed' "$LOG" || true; }
# hup_and_wait: SIGHUP, then wait (60 s) for one more reload line; prints it
hup_and_wait() {
  local before i
  before=$(reloads)
  kill -HUP "$BRIDGE_PID"
  for i in $(seq 600); do [ "$(reloads)" -gt "$before" ] && break; sleep 0.1; done
  [ "$(reloads)" -gt "$before" ] || fail "no reload logged within 60 s of SIGHUP"
  grep -E 'configuration reloaded|reload failed' "$LOG" | tail -1
}
# debug_after N: wait (60 s) for a DEBUG line after line N of the log
debug_after() {
  local i
  for i in $(seq 600); do
    tail -n +"$(( $1 + 1 ))" "$LOG" | grep -q ' DEBUG ' && return 0
    sleep 0.1
  done
  return 1
}
alive() { kill -0 "$BRIDGE_PID" 2>/dev/null || fail "the bridge exited (pid $BRIDGE_PID)"; }

write_conf "$E2E_PGURL" info 5 "poll_interval_ms = 300"
echo "apply_linger_ms = 40" >> "$CONF"
SHARECOUNT_APPLY_LINGER_MS=2 "$BRIDGE" -c "$CONF" --poll_interval_ms=200 --reconnect_max_ms=1000 >>"$LOG" 2>&1 &
BRIDGE_PID=$!
E2E_BRIDGES+=("$BRIDGE_PID")
sc_on_exit "kill -9 $BRIDGE_PID"
for i in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$HTTP_PORT/healthz")" = 200 ] && break
  sleep 0.2
done
[ "$i" -lt 300 ] || fail "/healthz never answered 200"

# the stream: one psql session, an INSERT of 20 rows every 20 ms until told to
# stop; the rows sent so far in a file (all committed once psql exits 0)
stream() {
  local n=0
  while [ ! -e "$W/stop" ]; do
    echo "INSERT INTO share_links (content_type, content_id, user_id)
          SELECT 'article', 'a' || (random() * 49)::int, 'u' || g FROM generate_series(1, 20) g;"
    n=$((n + 20)); echo $n > "$W/inserted.new"; mv "$W/inserted.new" "$W/inserted"; sleep 0.02
  done
}
( stream | sc_psql -d "$E2E_DB" >/dev/null ) &
sent() { cat "$W/inserted" 2>/dev/null || echo 0; }   # the file is replaced whole (mv), never read half-written
LOAD_PID=$!
# the prober: /healthz every 50 ms; every answer that is not 200 is written down
( while [ ! -e "$W/stop" ]; do
    c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$HTTP_PORT/healthz" || true)
    echo "$c" >> "$W/probes"; sleep 0.05
  done ) &
PROBE_PID=$!
sc_on_exit "touch '$W/stop'; kill $LOAD_PID $PROBE_PID"
for i in $(seq 600); do [ "$(sent)" -ge 1000 ] && break; sleep 0.1; done
grep -q ' DEBUG ' "$LOG" && fail "DEBUG lines at log_level = info"

# 1. log_level and max_delivery_attempts reloaded; a flag and the environment still win
write_conf "$E2E_PGURL" debug 3 "poll_interval_ms = 1000"
echo "apply_linger_ms = 50" >> "$CONF"
mark=$(wc -l < "$LOG")
line=$(hup_and_wait)
echo "# $line"
[[ $line == *'configuration reloaded (log_level = debug); changed: max_delivery_attempts 5 -> 3, log_level "info" -> "debug"' ]] ||
  fail "reload line does not list exactly log_level and max_delivery_attempts: $line"
debug_after "$mark" || fail "no DEBUG line after log_level = debug was reloaded"
alive
# the consumer uses the reloaded max_delivery_attempts: a poisoned job is dead-lettered after 3 failures, not 5
job='{"pattern":"share_count_update","data":{"jobId":"p-reload","contentType":"video","contentId":"poison","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}'
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$job"
for i in $(seq 600); do grep -q 'dead-lettering .*p-reload' "$LOG" && break; sleep 0.1; done
grep -q 'dead-lettering .*p-reload.*failed 3 times applying it alone; last error: P0001: poisoned key' "$LOG" ||
  fail "the poisoned job was not dead-lettered after the reloaded 3 attempts: $(grep 'dead-lettering' "$LOG" | tail -1)"
[ "$(grep -c 'starting (roles' "$LOG")" = 1 ] || fail "the bridge restarted"

# 2. a bad file: one error naming the line, nothing changes, still running
printf 'log_level = info\nmax_delivery_attempts = zero\n' > "$CONF.new"; mv "$CONF.new" "$CONF"
line=$(hup_and_wait)
echo "# $line"
[[ $line == *"ERROR reload failed, keeping the running configuration: $CONF:2: invalid integer for max_delivery_attempts"* ]] ||
  fail "bad file: not the one clear error expected: $line"
mark=$(wc -l < "$LOG")
debug_after "$mark" || fail "log_level changed by a bad file (no DEBUG line after it)"
alive

# 3. pg_conninfo is not reloadable: a warning, the old value kept
write_conf "dbname=e2e_reload_nowhere password=hunter2" info 3
line=$(hup_and_wait)
echo "# $line"
[[ $line == *'configuration reloaded (log_level = info); changed: log_level "debug" -> "info"' ]] ||
  fail "reload with pg_conninfo changed: unexpected line: $line"
grep -q 'WARN reload: pg_conninfo, pg_read_conninfo cannot be changed without restarting; keeping the running values' "$LOG" ||
  fail "no warning for pg_conninfo: $(grep ' WARN ' "$LOG" | tail -2)"
grep -q hunter2 "$LOG" && fail "a password was logged"
alive

# 4. a burst of SIGHUPs (they coalesce; each one handled is one more line)
for i in $(seq 20); do kill -HUP "$BRIDGE_PID"; done
sleep 1
alive
[ "$(grep -c 'starting (roles' "$LOG")" = 1 ] || fail "the bridge restarted"

# the stream goes on after all that: more rows are counted, then everything is exact
before=$(sent)
for i in $(seq 600); do [ "$(sent)" -ge $((before + 1000)) ] && break; sleep 0.1; done
[ "$(sent)" -ge $((before + 1000)) ] || fail "the insert stream stalled at $(sent) rows"
touch "$W/stop"
wait "$LOAD_PID" || fail "the insert stream failed"
wait "$PROBE_PID" || true
inserted=$(sent)
wait_drained 120
counted=$(q "SELECT coalesce(sum(share_count), 0) FROM sharecount.counts")
rows=$(q "SELECT count(*) FROM share_links")
applied=$(stat jobs_applied)
[ "$rows" = "$inserted" ] || fail "share_links has $rows rows, the stream committed $inserted"
[ "$counted" = "$inserted" ] || fail "counts add up to $counted, $inserted inserts were committed"
[ "$applied" = "$inserted" ] || fail "jobs_applied $applied != $inserted inserts (a job dropped or applied twice)"
[ "$(stat duplicates)" = 0 ] || fail "duplicates: $(stat duplicates)"
[ "$(queue_depth sharecount.dead)" = 1 ] || fail "dead-lettered: $(queue_depth sharecount.dead) messages, expected only the poisoned job"
probes=$(wc -l < "$W/probes")
badp=$(grep -vcx 200 "$W/probes" || true)
[ "$badp" = 0 ] || fail "/healthz failed $badp of $probes probes: $(sort "$W/probes" | uniq -c | tr '\n' ' ')"
echo "# $inserted inserts counted exactly across $(reloads) reloads; /healthz answered 200 to all $probes probes"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
