#!/usr/bin/env bash
# Broker failover (docs/bridge.md): a 3-node RabbitMQ cluster (test/lib.sh
# sc_rmq_cluster_start), queue_type = quorum, amqp_url listing the three
# nodes.  In the middle of a stream of inserts and deletes, kill -9 the node
# that leads sharecount.jobs.  Inserts never fail; the publisher, which
# reconnects to a survivor before the queue has a new leader and sees its
# publishes nacked, must get going again (a fresh channel / connection after
# repeated nacks, docs/bridge.md "Broker failover"); the consumer keeps
# consuming from a survivor; outbox and queue drain, every count is exact and
# nothing is dead-lettered.  A second bridge, consumer only, is connected to a
# node that survives: its consumer must go on receiving after the leader
# changes under it.  On release 1.0 the publisher was nacked forever and the
# outbox never drained (4 runs of 4).
. "$(dirname "$0")/bridge.inc"
e2e_setup cluster_failover
sc_rmq_cluster_start 3 || fail "the rabbitmq cluster did not start"
E2E_AMQP=$SC_CLUSTER_URLS
W=$SC_TMP/cluster_failover
mkdir -p "$W"

# queue_depth Q: messages (ready + unacked) of Q in the cluster's vhost "/", from a running node
queue_depth() {
  local i d
  for i in $(seq "$SC_CLUSTER_N"); do
    [ -n "$(sc_cluster_pid "$i")" ] || continue
    d=$(sc_cluster_ctl "$i" -q list_queues name messages 2>/dev/null | awk -v q="$1" '$1 == q { print $2 }')
    [ -n "$d" ] && { echo "$d"; return; }
  done
}

HTTP_PORT=$(sc_free_port)
bridge_start --queue_type=quorum --http_listen=127.0.0.1:$HTTP_PORT --roles=publisher,consumer,http
LOG=$SC_TMP/cluster_failover.bridge1.log

# stream: churn in chunks until $W/stop exists; a failed chunk is recorded
stream() {
  local seed=100
  while [ ! -f "$W/stop" ]; do
    churn 300 200 $seed || echo "chunk $seed failed" >> "$W/errors"
    seed=$((seed + 1))
  done
}
stream &
STREAM=$!
sc_on_exit "touch '$W/stop'; kill $STREAM"

# the queue exists and jobs flow before the fault
t0=$SECONDS
until [ "$(stat jobs_applied)" -gt 500 ]; do
  [ $((SECONDS - t0)) -lt 60 ] || fail "no jobs applied within 60 s of the bridge starting"
  sleep 0.5
done
# bridge 2: consumer only, nodes listed from node 2 (bridge 1 declared the queue on node 1)
E2E_AMQP="$(sc_cluster_url 2),$(sc_cluster_url 3),$(sc_cluster_url 1)"
HTTP_PORT2=$(sc_free_port)
bridge_start --queue_type=quorum --http_listen=127.0.0.1:$HTTP_PORT2 --roles=consumer,http
metric_sum() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($1, m "{") == 1 { n += $2 } END { print n + 0 }'; }
t0=$SECONDS
until [ "$(metric_sum "$HTTP_PORT2" sharecount_jobs_consumed_total)" -gt 0 ]; do
  [ $((SECONDS - t0)) -lt 60 ] || fail "bridge 2 consumed nothing within 60 s"
  sleep 0.5
done
leader=$(sc_cluster_leader sharecount.jobs)
[ -n "$leader" ] || fail "no leader for sharecount.jobs"
port_of() { grep -m1 "$1: connected to amqp" "$LOG" | sed 's/.*:\([0-9]*\)$/\1/'; }
consumer_port=$(port_of consumer)
applied0=$(stat jobs_applied)
consumed2=$(metric_sum "$HTTP_PORT2" sharecount_jobs_consumed_total)
sc_cluster_kill9 "$leader" || fail "could not kill node $leader"
echo "# killed node $leader ($(sc_cluster_node "$leader")), the leader of sharecount.jobs, after $applied0 jobs applied"
sleep 6
touch "$W/stop"
wait "$STREAM"
[ ! -s "$W/errors" ] || fail "inserts/deletes failed during the failover: $(cat "$W/errors")"
for b in "${E2E_BRIDGES[@]}"; do kill -0 "$b" || fail "a bridge died during the failover"; done
wait_drained 90
echo "# drained and exact: new leader node $(sc_cluster_leader sharecount.jobs); jobs applied $(stat jobs_applied), duplicates $(stat duplicates)"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "$(queue_depth sharecount.dead) messages dead-lettered"

# the consumer: if its node was the one killed, it went on from a survivor
if [ "$consumer_port" = "$(sc_cluster_port "$leader")" ]; then
  grep "consumer: connected to amqp" "$LOG" | grep -qv ":$consumer_port\$" ||
    fail "the consumer did not reconnect to a surviving node"
  [ "$(grep -c 'consumer: consuming from' "$LOG")" -ge 2 ] || fail "the consumer did not consume again"
fi
after2=$(metric_sum "$HTTP_PORT2" sharecount_jobs_consumed_total)
[ "$after2" -gt "$consumed2" ] || fail "bridge 2's consumer (on a surviving node) consumed nothing after the failover"
echo "# bridge 2 (consumer on node $(grep -m1 'consumer: connected to amqp' "$SC_TMP/cluster_failover.bridge2.log" | sed 's/.*:\([0-9]*\)$/\1/' | { read -r p; for i in 1 2 3; do [ "$(sc_cluster_port $i)" = "$p" ] && echo $i; done; })): consumed $consumed2 before the kill, $after2 in all"
nacked=$(metric_sum "$HTTP_PORT" sharecount_jobs_nacked_total)
echo "# nacked jobs (sharecount_jobs_nacked_total): $nacked; nack reconnects: $(grep -c 'opening a fresh connection' "$LOG" || true);" \
  "publisher connects: $(grep -c 'publisher: connected to amqp' "$LOG"); consumer connects: $(grep -c 'consumer: connected to amqp' "$LOG")"
for b in "${E2E_BRIDGES[@]}"; do
  bridge_stop "$b"
  [ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
done
