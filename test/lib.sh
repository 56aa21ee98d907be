#!/usr/bin/env bash
# The test harness: starts a private PostgreSQL cluster and a private RabbitMQ
# node on free ports inside one temp dir, and always stops them (sc_cleanup is
# installed as an EXIT trap by sc_init).  Sourced by test/run.sh, the e2e tests,
# bench/ and `make run`.
#
# Rules a reader must know:
# - As root, PostgreSQL runs as the `postgres` user (initdb refuses root); the
#   temp dir is made world-traversable for it.  As a normal user it runs as you.
# - The extension is never installed into the system: sc_install builds a
#   private "shadow" PostgreSQL tree in $SC_TMP/inst (a copy of the postgres and
#   pg_ctl binaries, symlinks to the system share/lib dirs) and `make install
#   DESTDIR=` puts sharecount into it.  PostgreSQL finds its share and lib dirs
#   relative to its own binary, so a server started from the shadow tree sees
#   the extension, and no root is needed.
# - Every function that starts something registers how to stop it; sc_cleanup
#   runs those in reverse order.
#
# After sc_pg_start: PGHOST (socket dir), PGPORT, PGUSER=postgres, PGDATABASE,
# SC_PGURL (a libpq conninfo).  After sc_rmq_start: SC_AMQP_PORT, SC_AMQP_URL,
# SC_RMQ_NODE, and sc_rmqctl runs rabbitmqctl against the node.

SC_ROOT=${SC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PG_CONFIG=${PG_CONFIG:-pg_config}
SC_PGBIN=$($PG_CONFIG --bindir)
SC_STOPS=()

sc_log() { echo "# $*" >&2; }

# sc_init [dir]: make the temp dir (or use dir, e.g. ./.sharecount for make run)
# and install the cleanup trap.
sc_init() {
  if [ -n "${1:-}" ]; then SC_TMP=$1; mkdir -p "$SC_TMP"; SC_KEEP_TMP=1
  else SC_TMP=$(mktemp -d /tmp/sharecount-test.XXXXXX); SC_KEEP_TMP=${SC_KEEP_TMP:-0}; fi
  SC_TMP=$(cd "$SC_TMP" && pwd)
  chmod 755 "$SC_TMP"
  export SC_TMP
  trap sc_cleanup EXIT
  trap 'exit 130' INT TERM
}

sc_cleanup() {
  local i
  for (( i=${#SC_STOPS[@]}-1; i>=0; i-- )); do eval "${SC_STOPS[$i]}" >/dev/null 2>&1 || true; done
  SC_STOPS=()
  if [ "${SC_KEEP_TMP:-0}" != 1 ] && [ -n "${SC_TMP:-}" ]; then rm -rf "$SC_TMP"; fi
}

sc_on_exit() { SC_STOPS+=("$*"); }

# sc_free_port: a TCP port nobody listens on (127.0.0.1), from a random range.
sc_free_port() {
  local p lo hi used=${SC_TMP:+$SC_TMP/ports}
  # Below the kernel's ephemeral range, so no outgoing connection (ours or the
  # previous test's, thousands of them in http_api) can hold the port when a
  # server binds it: picking inside that range made PostgreSQL and RabbitMQ
  # fail to start with EADDRINUSE about once in ten standalone runs.
  read -r lo _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
  hi=$(( lo - 1 ))
  [ "$hi" -ge 12000 ] || hi=32767     # odd ranges: fall back to 10000-32767
  while :; do
    p=$(( 10000 + (RANDOM * 32768 + RANDOM) % (hi - 10000 + 1) ))
    # not handed out before in this run (the file outlives the $(...) subshell)
    [ -n "$used" ] && grep -qx "$p" "$used" 2>/dev/null && continue
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then   # no listener
      [ -n "$used" ] && echo "$p" >> "$used"
      echo "$p"; return
    fi
  done
}

# sc_as_pg CMD...: run CMD as the server's owner.
sc_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# sc_install: build everything and install the extension into the shadow tree.
sc_install() {
  local inst=$SC_TMP/inst share lib bin
  share=$($PG_CONFIG --sharedir); lib=$($PG_CONFIG --pkglibdir); bin=$SC_PGBIN
  rm -rf "$inst"
  mkdir -p "$inst$bin" "$inst$(dirname "$share")" "$inst$(dirname "$lib")"
  cp "$bin/postgres" "$bin/pg_ctl" "$inst$bin/"
  cp -rs "$share" "$inst$share"
  cp -rs "$lib" "$inst$lib"
  # the extension dir holds symlinks into the system; our files replace any
  rm -f "$inst$share/extension/sharecount"* "$inst$lib/sharecount.so"
  make -C "$SC_ROOT" -s all >&2 || return 1
  make -C "$SC_ROOT" -s install DESTDIR="$inst" bridge_prefix=/usr >&2 || return 1
  export SC_SHADOW_BIN=$inst$bin
}

# sc_pg_start [extra postgresql.conf lines...]: initdb + start; sets PG* vars.
sc_pg_start() {
  [ -n "${SC_SHADOW_BIN:-}" ] || sc_install
  local data=$SC_TMP/pgdata sock=$SC_TMP/pgsock
  mkdir -p "$data" "$sock"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$data" "$sock"
  PGPORT=$(sc_free_port)
  if [ ! -f "$data/PG_VERSION" ]; then
    sc_as_pg "$SC_PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$SC_TMP/initdb.log" 2>&1 ||
      { cat "$SC_TMP/initdb.log" >&2; return 1; }
  fi
  {
    echo "port = $PGPORT"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$sock'"
    echo "max_connections = 200"
    echo "fsync = ${SC_PG_FSYNC:-off}"
    echo "log_min_messages = warning"
    for l in "$@"; do echo "$l"; done
  } > "$SC_TMP/pg.conf"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$SC_TMP/pg.conf"
  grep -q "include = '$SC_TMP/pg.conf'" "$data/postgresql.conf" ||
    sc_as_pg sh -c "echo \"include = '$SC_TMP/pg.conf'\" >> '$data/postgresql.conf'"
  : > "$SC_TMP/pg.log"; [ "$(id -u)" -eq 0 ] && chown postgres: "$SC_TMP/pg.log"
  sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$data" -l "$SC_TMP/pg.log" -w -t 60 start >/dev/null ||
    { cat "$SC_TMP/pg.log" >&2; return 1; }
  sc_on_exit "sc_pg_stop"
  export PGHOST=$sock PGPORT PGUSER=postgres PGDATABASE=postgres
  export SC_PGURL="host=$sock port=$PGPORT user=postgres dbname=postgres"
  export SC_PGURL_TCP="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
}

sc_pg_stop() { sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -m fast -w stop >/dev/null 2>&1 || true; }
sc_pg_restart() {
  sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -m "${1:-fast}" -w stop >/dev/null 2>&1 || true
  sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -l "$SC_TMP/pg.log" -w -t 60 start >/dev/null
}

# sc_rmq_start: a private RabbitMQ node (about 7 s).  Sets SC_AMQP_URL.
sc_rmq_start() {
  local d=$SC_TMP/rmq
  mkdir -p "$d/home" "$d/mnesia" "$d/log"
  SC_AMQP_PORT=$(sc_free_port)
  SC_RMQ_DIST_PORT=$(sc_free_port)
  # a fixed SC_RMQ_NODE (make run) keeps the node's mnesia data across runs
  SC_RMQ_NODE=${SC_RMQ_NODE:-sc$SC_AMQP_PORT@localhost}
  echo '[].' > "$d/enabled_plugins"
  cat > "$d/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$SC_AMQP_PORT
loopback_users.guest = false
log.file.level = warning
log.console = false
CONF
  pgrep -x epmd >/dev/null 2>&1 && SC_EPMD_WAS_UP=1 || SC_EPMD_WAS_UP=0
  export SC_RMQ_ENV="HOME=$d/home RABBITMQ_HOME=$d RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log \
RABBITMQ_NODE_PORT=$SC_AMQP_PORT RABBITMQ_DIST_PORT=$SC_RMQ_DIST_PORT RABBITMQ_NODENAME=$SC_RMQ_NODE \
RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf \
RABBITMQ_PID_FILE=$d/rabbitmq.pid"
  sc_on_exit "sc_rmq_stop; [ \$SC_EPMD_WAS_UP = 1 ] || epmd -kill"
  sc_rmq_boot || return 1
  export SC_AMQP_PORT SC_RMQ_NODE
  export SC_AMQP_URL="amqp://guest:guest@127.0.0.1:$SC_AMQP_PORT"
}

sc_rmqctl() { env $SC_RMQ_ENV /usr/lib/rabbitmq/bin/rabbitmqctl -n "$SC_RMQ_NODE" "$@"; }

sc_rmq_boot() {
  local d=$SC_TMP/rmq
  env $SC_RMQ_ENV setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$d/server.out" 2>&1 &
  SC_RMQ_PID=$!
  # await_startup fails at once while the node has not registered with epmd
  # yet, so retry it until the node answers or 90 s pass.
  local t0=$SECONDS
  until env $SC_RMQ_ENV /usr/lib/rabbitmq/bin/rabbitmqctl -n "$SC_RMQ_NODE" -q await_startup --timeout 60 >/dev/null 2>&1; do
    if [ $((SECONDS - t0)) -gt 90 ] || ! kill -0 "$SC_RMQ_PID" 2>/dev/null; then
      echo "rabbitmq did not start:" >&2; tail -20 "$d/server.out" >&2; return 1
    fi
    sleep 0.5
  done
}

sc_rmq_stop() {
  sc_rmqctl -q stop >/dev/null 2>&1 || true
  [ -n "${SC_RMQ_PID:-}" ] && kill "$SC_RMQ_PID" 2>/dev/null
  # the Erlang VM may outlive the script wrapper for a moment
  local i; for i in $(seq 50); do pgrep -f "nodename $SC_RMQ_NODE|sname $SC_RMQ_NODE" >/dev/null || break; sleep 0.1; done
  pkill -9 -f -- "-sname $SC_RMQ_NODE" 2>/dev/null || true
}

# sc_psql ARGS...: psql against the private cluster, quiet, stop on error.
# Every call can use :share_links_ddl in its SQL (the table of docs/extension.md, Quick start).
# SC_PSQL_DB (set by sc_bench_servers for PGURL) names the database when the
# libpq environment does not.
sc_psql() { psql -X -q -v ON_ERROR_STOP=1 -v share_links_ddl="$SC_SHARE_LINKS_DDL" -At ${SC_PSQL_DB:+-d "$SC_PSQL_DB"} "$@"; }

# The application table of docs/extension.md (Quick start), as the tests, benchmarks and make run create it.
SC_SHARE_LINKS_DDL="CREATE TABLE share_links (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), content_type text NOT NULL,
  content_id text NOT NULL, user_id text NOT NULL, channel_id text, campaign_id text,
  created_at timestamptz NOT NULL DEFAULT now());"

# sc_setup_tracked [psql args]: the extension and a tracked share_links table.
sc_setup_tracked() {
  sc_psql "$@" -c "CREATE EXTENSION sharecount" -c "$SC_SHARE_LINKS_DDL" \
    -c "SELECT sharecount_track('share_links')" >/dev/null
}

# sc_bench_pg_start [extra postgresql.conf lines...]: the private cluster of
# the write-path benchmarks: fsync on (real commits), room for a big outbox,
# no checkpoint during a run.
sc_bench_pg_start() {
  SC_PG_FSYNC=on sc_pg_start "shared_buffers = 256MB" "max_wal_size = 4GB" "checkpoint_timeout = 30min" "$@" >&2
}

# sc_bench_servers: the servers of the bridge benchmarks (p3_drain, p6_memory),
# and $SC_TMP/raw_broker (bench/raw_broker.c) built.
#   PGURL set: a scratch database on an existing server, where the extension
#     is installed (make install); the extension (with all its state) and
#     share_links are dropped there first.  Otherwise a private cluster.
#   AMQP_URL set: an existing broker; the bridge then uses scbench.* names
#     (exchanges scbench.sharecount and scbench.dlx stay, empty), and the
#     queues scbench.jobs and scbench.dead are deleted before and after.
#     Otherwise a private RabbitMQ node.
sc_bench_servers() {
  cc -O2 -Wall $([ "${WERROR:-}" = 1 ] && echo -Werror) -o "$SC_TMP/raw_broker" "$SC_ROOT/bench/raw_broker.c" -lrabbitmq || return 1
  if [ -n "${PGURL:-}" ]; then
    export SC_PGURL=$PGURL SC_PSQL_DB=$PGURL
    sc_psql -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS share_links CASCADE" \
      -c "DROP EXTENSION IF EXISTS sharecount CASCADE" >/dev/null || return 1
  else
    sc_bench_pg_start || return 1
  fi
  if [ -n "${AMQP_URL:-}" ]; then
    export SC_AMQP_URL=$AMQP_URL
    SC_BENCH_NAMES="--exchange=scbench.sharecount --queue=scbench.jobs --dead-letter-exchange=scbench.dlx --dead-letter-queue=scbench.dead"
    sc_bench_delete_queues || return 1
    sc_on_exit sc_bench_delete_queues
  else
    sc_rmq_start >&2 || return 1
  fi
}

# raw_broker with COUNT 0 only deletes its queue.
sc_bench_delete_queues() {
  local q
  for q in scbench.jobs scbench.dead; do "$SC_TMP/raw_broker" "$SC_AMQP_URL" "$q" 0 1 >/dev/null || return 1; done
}

# sc_bench_bridge LOG: one bridge with the publisher and consumer roles and
# default settings, HTTP off, logging to LOG; sets SC_BRIDGE_PID and kills it
# on exit.
sc_bench_bridge() {
  # shellcheck disable=SC2086 # SC_BENCH_NAMES is a list of flags
  "$SC_ROOT/bridge/sharecount-bridge" -c /dev/null --pg_conninfo="$SC_PGURL" --amqp_url="$SC_AMQP_URL" \
    --roles=publisher,consumer --http_listen= ${SC_BENCH_NAMES:-} 2>"$1" &
  SC_BRIDGE_PID=$!
  sc_on_exit "kill -9 $SC_BRIDGE_PID"
}

# sc_bench_watch PID LOG N SQL SECONDS: wait until SQL (a count of the jobs
# applied) reaches N, sampling the bridge PID's VmRSS every SECONDS; after
# each sample calls bench_sample RSS APPLIED if the caller defines it.  Sets
# SC_MAX_RSS (KiB) and SC_APPLIED; exits 1 (with the log's tail) if the bridge
# dies first.
sc_bench_watch() {
  local pid=$1 log=$2 n=$3 sql=$4 every=$5 rss
  SC_MAX_RSS=0; SC_APPLIED=0
  while :; do
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$SC_MAX_RSS" ] && SC_MAX_RSS=$rss
    SC_APPLIED=$(sc_psql -c "$sql")
    if declare -F bench_sample >/dev/null; then bench_sample "$rss" "$SC_APPLIED"; fi
    [ "$SC_APPLIED" -ge "$n" ] && return 0
    kill -0 "$pid" 2>/dev/null || { tail "$log" >&2; echo "bridge died" >&2; exit 1; }
    sleep "$every"
  done
}

# ---------------------------------------------------------- read replica ----
# sc_pg_replica_start: a streaming replica of the private cluster (after
# sc_pg_start): `pg_basebackup -R` as the server's owner into
# $SC_TMP/pgreplica, started from the shadow tree on a free port with its own
# socket dir (command-line settings override the port and socket dir the copy
# of postgresql.conf names); waits until it streams.  sc_cleanup stops it.
# Sets SC_REPLICA_PORT, SC_REPLICA_HOST (socket dir) and SC_REPLICA_URL (a
# libpq conninfo like SC_PGURL).  sc_pg_replica_stop [mode] / sc_pg_replica_ctl
# start for the tests; sc_replica_psql runs psql against it.
SC_REPLICA_WAIT_S=60     # seconds for the replica to stream (generous: shared machine)
sc_pg_replica_start() {
  local data=$SC_TMP/pgreplica sock=$SC_TMP/pgsock_replica i st
  [ -n "${PGPORT:-}" ] || { sc_log "sc_pg_replica_start: start the primary first (sc_pg_start)"; return 1; }
  rm -rf "$data"; mkdir -p "$data" "$sock"; chmod 700 "$data"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$data" "$sock"
  sc_as_pg "$SC_PGBIN/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres -D "$data" -R -X stream -c fast \
    >"$SC_TMP/basebackup.log" 2>&1 || { cat "$SC_TMP/basebackup.log" >&2; return 1; }
  SC_REPLICA_PORT=$(sc_free_port)
  SC_REPLICA_HOST=$sock
  : > "$SC_TMP/pgreplica.log"; [ "$(id -u)" -eq 0 ] && chown postgres: "$SC_TMP/pgreplica.log"
  sc_pg_replica_ctl start || { cat "$SC_TMP/pgreplica.log" >&2; return 1; }
  sc_on_exit "sc_pg_replica_stop immediate"
  export SC_REPLICA_PORT SC_REPLICA_HOST
  export SC_REPLICA_URL="host=$sock port=$SC_REPLICA_PORT user=postgres dbname=postgres"
  for (( i = 0; i < SC_REPLICA_WAIT_S * 5; i++ )); do
    st=$(sc_replica_psql -c "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null || true)
    [ "$st" = streaming ] && return 0
    sleep 0.2
  done
  sc_log "sc_pg_replica_start: the replica is not streaming after ${SC_REPLICA_WAIT_S}s"
  cat "$SC_TMP/pgreplica.log" >&2
  return 1
}

# sc_pg_replica_ctl start|stop [mode]: pg_ctl on the replica.
sc_pg_replica_ctl() {
  local data=$SC_TMP/pgreplica
  case $1 in
    start) sc_as_pg "${SC_SHADOW_BIN:-$SC_TMP/inst$SC_PGBIN}/pg_ctl" -D "$data" -l "$SC_TMP/pgreplica.log" -w -t 60 \
             -o "-c port=$SC_REPLICA_PORT -c unix_socket_directories='$SC_REPLICA_HOST'" start >/dev/null ;;
    stop) sc_as_pg "${SC_SHADOW_BIN:-$SC_TMP/inst$SC_PGBIN}/pg_ctl" -D "$data" -m "${2:-fast}" -w stop >/dev/null 2>&1 ;;
  esac
}
sc_pg_replica_stop() { sc_pg_replica_ctl stop "${1:-fast}" || true; }

# sc_replica_psql ARGS: psql against the replica (database from -d or postgres).
sc_replica_psql() { PGHOST=$SC_REPLICA_HOST PGPORT=$SC_REPLICA_PORT psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# ------------------------------------------------------------ RabbitMQ cluster
# sc_rmq_cluster_start [N]: an N-node RabbitMQ cluster (default 3) on this
# machine, apart from the node of sc_rmq_start.  Each node has its own name
# (scc<port>_<i>@localhost), AMQP and distribution ports, and dir
# $SC_CLUSTER_DIR/<i> (mnesia, logs, config, pid file, and a HOME whose
# .erlang.cookie, mode 400, is the one cookie all nodes share).  The nodes
# boot in parallel, then nodes 2..N join node 1 (stop_app, join_cluster,
# start_app): 15-40 s here, more on a loaded machine.  sc_cleanup stops
# every node.  Sets and exports SC_CLUSTER_DIR ($SC_TMP/cluster.<port>, so
# several clusters in one run never share a dir), SC_CLUSTER_N,
# SC_CLUSTER_NODES and SC_CLUSTER_PORTS (space-separated, node I is word I)
# and SC_CLUSTER_URLS (the nodes' AMQP URLs, comma-separated, vhost "/": an
# amqp_url).  The helpers below act on the last cluster started:
#   sc_cluster_ctl I ARGS    rabbitmqctl against node I
#   sc_cluster_node I, sc_cluster_port I, sc_cluster_url I, sc_cluster_pid I
#                            (empty while node I is down)
#   sc_cluster_kill9 I       SIGKILL node I's Erlang VM, wait until it is gone
#   sc_cluster_boot I        start node I again (it rejoins the cluster)
#   sc_cluster_leader Q [VH] the index of the node leading quorum queue Q
sc_rmq_cluster_start() {
  local n=${1:-3} i base cookie d port dist pids=() t0=$SECONDS
  base=$(sc_free_port)
  cookie=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  SC_CLUSTER_N=$n SC_CLUSTER_NODES="" SC_CLUSTER_PORTS="" SC_CLUSTER_URLS=""
  SC_CLUSTER_DIR=$SC_TMP/cluster.$base
  pgrep -x epmd >/dev/null 2>&1 && SC_EPMD_WAS_UP=1 || SC_EPMD_WAS_UP=${SC_EPMD_WAS_UP:-0}
  for i in $(seq "$n"); do
    d=$SC_CLUSTER_DIR/$i
    mkdir -p "$d/home" "$d/mnesia" "$d/log"
    printf '%s' "$cookie" > "$d/home/.erlang.cookie"; chmod 400 "$d/home/.erlang.cookie"
    port=$(sc_free_port); dist=$(sc_free_port)
    echo '[].' > "$d/enabled_plugins"
    cat > "$d/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$port
loopback_users.guest = false
log.file.level = warning
log.console = false
CONF
    echo "scc${base}_$i@localhost" > "$d/node"
    echo "HOME=$d/home RABBITMQ_HOME=$d RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log \
RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$dist RABBITMQ_NODENAME=scc${base}_$i@localhost \
RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf \
RABBITMQ_PID_FILE=$d/rabbitmq.pid" > "$d/env"
    SC_CLUSTER_NODES+="${SC_CLUSTER_NODES:+ }scc${base}_$i@localhost"
    SC_CLUSTER_PORTS+="${SC_CLUSTER_PORTS:+ }$port"
    SC_CLUSTER_URLS+="${SC_CLUSTER_URLS:+,}amqp://guest:guest@127.0.0.1:$port"
  done
  export SC_CLUSTER_DIR SC_CLUSTER_N SC_CLUSTER_NODES SC_CLUSTER_PORTS SC_CLUSTER_URLS
  sc_on_exit "sc_rmq_cluster_stop '$SC_CLUSTER_DIR'; [ \$SC_EPMD_WAS_UP = 1 ] || epmd -kill"
  for i in $(seq "$n"); do sc_cluster_boot "$i" nowait & pids+=($!); done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || return 1; done
  for i in $(seq "$n"); do sc_cluster_await "$i" || return 1; done
  for i in $(seq 2 "$n"); do
    { sc_cluster_ctl "$i" -q stop_app && sc_cluster_ctl "$i" -q join_cluster "$(sc_cluster_node 1)" &&
      sc_cluster_ctl "$i" -q start_app; } >"$SC_CLUSTER_DIR/$i/join.out" 2>&1 ||
      { echo "node $i did not join the cluster:" >&2; cat "$SC_CLUSTER_DIR/$i/join.out" >&2; return 1; }
  done
  sc_cluster_ctl 1 -q await_online_nodes "$n" --timeout 60000 >/dev/null 2>&1 ||
    { echo "the cluster did not reach $n running nodes" >&2; sc_cluster_ctl 1 cluster_status >&2; return 1; }
  sc_log "rabbitmq cluster of $n nodes up in $((SECONDS - t0)) s: $SC_CLUSTER_URLS"
}

sc_cluster_node() { cat "$SC_CLUSTER_DIR/$1/node"; }
sc_cluster_port() { local a=($SC_CLUSTER_PORTS); echo "${a[$(($1 - 1))]}"; }
sc_cluster_url() { echo "amqp://guest:guest@127.0.0.1:$(sc_cluster_port "$1")"; }
sc_cluster_pid() { cat "$SC_CLUSTER_DIR/$1/rabbitmq.pid" 2>/dev/null; }
sc_cluster_ctl() { local i=$1; shift; _sc_cluster_ctl "$SC_CLUSTER_DIR/$i" "$@"; }
# _sc_cluster_ctl NODE_DIR ARGS: rabbitmqctl with that node's environment (HOME: the cookie)
_sc_cluster_ctl() {
  local d=$1; shift
  env $(cat "$d/env") /usr/lib/rabbitmq/bin/rabbitmqctl -n "$(cat "$d/node")" "$@"
}

# sc_cluster_boot I [nowait]: start node I (again); without nowait, wait until it runs.
sc_cluster_boot() {
  local d=$SC_CLUSTER_DIR/$1
  rm -f "$d/rabbitmq.pid"
  env $(cat "$d/env") setsid /usr/lib/rabbitmq/bin/rabbitmq-server >>"$d/server.out" 2>&1 &
  echo $! > "$d/wrapper.pid"
  [ "${2:-}" = nowait ] || sc_cluster_await "$1"
}

# sc_cluster_await I: wait (at most 120 s) until node I has booted; as in
# sc_rmq_boot, await_startup is retried while the node is not registered yet.
sc_cluster_await() {
  local d=$SC_CLUSTER_DIR/$1 t0=$SECONDS
  until sc_cluster_ctl "$1" -q await_startup --timeout 60 >/dev/null 2>&1; do
    if [ $((SECONDS - t0)) -gt 120 ] || ! kill -0 "$(cat "$d/wrapper.pid")" 2>/dev/null; then
      echo "rabbitmq node $1 did not start:" >&2; tail -20 "$d/server.out" >&2; return 1
    fi
    sleep 0.5
  done
}

# sc_cluster_kill9 I: SIGKILL node I's Erlang VM (its pid file names it) and wait until it is gone.
sc_cluster_kill9() {
  local pid i
  pid=$(sc_cluster_pid "$1")
  [ -n "$pid" ] || { echo "node $1 has no pid file" >&2; return 1; }
  kill -9 "$pid" || return 1
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$SC_CLUSTER_DIR/$1/rabbitmq.pid"
}

# sc_cluster_leader QUEUE [VHOST]: the index (1..N) of the node leading quorum
# queue QUEUE, asked of the running nodes in turn; empty if none knows.
sc_cluster_leader() {
  local i k leader
  for i in $(seq "$SC_CLUSTER_N"); do
    [ -n "$(sc_cluster_pid "$i")" ] || continue
    leader=$(sc_cluster_ctl "$i" -q list_queues -p "${2:-/}" name leader 2>/dev/null | awk -v q="$1" '$1 == q { print $2 }')
    [ -n "$leader" ] || continue
    for k in $(seq "$SC_CLUSTER_N"); do
      [ "$(sc_cluster_node "$k")" = "$leader" ] && { echo "$k"; return 0; }
    done
  done
}

# sc_rmq_cluster_stop DIR: stop every node of the cluster in DIR (registered by sc_rmq_cluster_start).
sc_rmq_cluster_stop() {
  local d pid pids=() stops=() k
  for d in "$1"/*/; do
    pid=$(cat "$d/rabbitmq.pid" 2>/dev/null)
    [ -n "$pid" ] || continue
    pids+=("$pid")
    _sc_cluster_ctl "$d" -q stop >/dev/null 2>&1 &
    stops+=($!)
  done
  # not a bare "wait": it would wait for sc_rmq_start's node too, forever
  for pid in "${stops[@]}"; do wait "$pid"; done
  # the VMs may outlive "stop" (and their pid files) for a moment
  for pid in "${pids[@]}"; do
    for k in $(seq 100); do kill -0 "$pid" 2>/dev/null || continue 2; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  # the rabbitmq-server script that started a node, if it is still there
  for d in "$1"/*/; do
    pid=$(cat "$d/wrapper.pid" 2>/dev/null)
    [ -n "$pid" ] && grep -qs rabbitmq-server "/proc/$pid/cmdline" && kill "$pid" 2>/dev/null
  done
  return 0
}
