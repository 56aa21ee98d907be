#!/usr/bin/env bash
# `make run` (README.md, Two commands): the whole stack on this machine, in the foreground.
#
# Without PGURL / AMQP_URL: a private PostgreSQL cluster and a private
# RabbitMQ node under ./.sharecount/ (kept between runs: the node name is
# fixed, so its data is reused; ports are picked free each time).  The
# extension is installed into a private shadow tree (no root needed), a
# tracked share_links table is created (idempotent), and the bridge runs in
# the foreground with HTTP on $HTTP_LISTEN (default 127.0.0.1:8080).
# With PGURL (a libpq conninfo or URI) and/or AMQP_URL set, those servers are
# used instead and none is started (the extension must then be installed on
# that server: `sudo make install`).
# Ctrl-C (SIGINT) or SIGTERM stops the bridge and everything started here.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$SC_ROOT"
HTTP_LISTEN=${HTTP_LISTEN:-127.0.0.1:8080}

SC_RMQ_NODE=${SC_RMQ_NODE:-sharecount@localhost}
sc_init "$SC_ROOT/.sharecount"
make -s all >&2

if [ -n "${PGURL:-}" ]; then
  export SC_PGURL=$PGURL
  PSQL_TARGET=$PGURL
  sc_log "using PostgreSQL at PGURL"
else
  sc_install >/dev/null
  sc_pg_start >/dev/null
  PSQL_TARGET=$SC_PGURL
  sc_log "PostgreSQL 15 running (data in .sharecount/pgdata, port $PGPORT)"
fi
if [ -n "${AMQP_URL:-}" ]; then
  SC_AMQP_URL=$AMQP_URL
  sc_log "using RabbitMQ at AMQP_URL"
else
  export SC_RMQ_NODE
  sc_rmq_start >/dev/null
  sc_log "RabbitMQ running (node $SC_RMQ_NODE, port $SC_AMQP_PORT)"
fi

psql -X -q -v ON_ERROR_STOP=1 -d "$PSQL_TARGET" >/dev/null <<'SQL' || { echo "run-stack: cannot set up the database (is the extension installed? sudo make install)" >&2; exit 1; }
CREATE EXTENSION IF NOT EXISTS sharecount;
CREATE TABLE IF NOT EXISTS share_links (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), content_type text NOT NULL,
  content_id text NOT NULL, user_id text NOT NULL, channel_id text, campaign_id text,
  created_at timestamptz NOT NULL DEFAULT now());
SELECT sharecount_track('share_links')
 WHERE NOT EXISTS (SELECT 1 FROM sharecount.tracked WHERE tbl = 'share_links'::regclass);
SQL

cat <<EOF

  sharecount is up.  Try, in another terminal:

    psql "$PSQL_TARGET" -c "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', '123', 'alice')"
    psql "$PSQL_TARGET" -Atc "SELECT sharecount_get('article', '123')"
    curl -s http://$HTTP_LISTEN/share-links/count/article/123

  Ctrl-C stops the bridge and the servers started here.

EOF

"$SC_ROOT/bridge/sharecount-bridge" -c /dev/null --pg_conninfo="$SC_PGURL" --amqp_url="$SC_AMQP_URL" \
  --http_listen="$HTTP_LISTEN" ${BRIDGE_ARGS:-} &
BRIDGE_PID=$!
stop_all() { trap - INT TERM; kill -INT "$BRIDGE_PID" 2>/dev/null || true; wait "$BRIDGE_PID" 2>/dev/null || true; exit 0; }
trap stop_all INT TERM
set +e
wait "$BRIDGE_PID"
st=$?
# the bridge exited by itself (bad config, port taken…)
trap - INT TERM
exit $st
