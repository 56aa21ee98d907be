#!/usr/bin/env bash
# `make run` (test/run-stack.sh) against the servers of this run (PGURL and
# AMQP_URL set, so it starts none): sets up the extension and share_links
# idempotently (run twice), a share inserted with psql shows in
# sharecount_get within a few seconds, SIGTERM stops it with status 0.
# The full private-servers path (./.sharecount) is exercised by hand; see
# docs/bridge.md.
. "$(dirname "$0")/bridge.inc"
e2e_setup makerun
q "DROP TABLE share_links" >/dev/null   # run-stack.sh creates and tracks it
port=$(sc_free_port)
for run in 1 2; do
  log=$SC_TMP/makerun.bridge$run.log
  PGURL=$E2E_PGURL AMQP_URL=$E2E_AMQP HTTP_LISTEN=127.0.0.1:$port BRIDGE_ARGS=--roles=publisher,consumer \
    setsid bash "$SC_ROOT/test/run-stack.sh" >"$log" 2>&1 &
  RS=$!
  sc_on_exit "kill -TERM $RS"
  for i in $(seq 150); do grep -q "consumer: consuming" "$log" && break; sleep 0.2; done
  grep -q "sharecount is up" "$log" || fail "run $run: no banner"
  grep -q "psql .*sharecount_get" "$log" || fail "run $run: no psql line printed"
  grep -q "curl -s http://127.0.0.1:$port/share-links/count/article/123" "$log" || fail "run $run: no curl line"
  q "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', 'mr', 'u$run')" >/dev/null
  for i in $(seq 100); do [ "$(q "SELECT sharecount_get('article', 'mr')")" = "$run" ] && break; sleep 0.1; done
  [ "$(q "SELECT sharecount_get('article', 'mr')")" = "$run" ] || fail "run $run: count is not $run"
  kill -TERM "$RS"   # a background script ignores SIGINT (bash rule); Ctrl-C works in a terminal
  for i in $(seq 100); do kill -0 "$RS" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$RS" 2>/dev/null && fail "run $run: still running 10 s after SIGTERM"
  set +e; wait "$RS"; st=$?; set -e
  [ "$st" = 0 ] || { cat "$log" >&2; fail "run $run: exit status $st"; }
  grep -q "INFO stopped" "$log" || fail "run $run: the bridge did not stop cleanly"
done
[ "$(q "SELECT count(*) FROM sharecount.tracked")" = 1 ] || fail "share_links tracked twice"
