#!/usr/bin/env bash
# Start a Redis Cluster of three masters on loopback (redis-server --cluster-enabled yes,
# redis-cli --cluster create) and run the store's cluster tests against it: replay records,
# failure counts and rates shared by two replicas. Stops the cluster when done.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  if [ -n "${CALLGUARD_REQUIRE_REDIS:-}" ]; then
    echo "redis_cluster: redis-server and redis-cli are required here" >&2; exit 1
  fi
  echo "redis_cluster: redis-server is not installed; the cluster was not checked" >&2
  exit 0
fi

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# start_node N: one cluster-enabled redis-server in its own directory, its log kept; waits
# until it answers (15 s at most) and adds its address to $nodes (not in a subshell, so
# its process id is kept for the cleanup).
start_node() {
  local n=$1 port
  # The cluster bus listens 10000 above the port: keep both in range.
  port=$(free_port)
  while [ "$port" -gt 55000 ]; do port=$(free_port); done
  mkdir -p "$dir/$n"
  (cd "$dir/$n" && exec redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
    --cluster-config-file nodes.conf --save '' --appendonly no >"$dir/$n/log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 150); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then nodes+=("127.0.0.1:$port"); return 0; fi
    sleep 0.1
  done
  echo "redis_cluster: node $n did not answer on port $port; its log:" >&2
  cat "$dir/$n/log" >&2
  return 1
}

nodes=()
for n in 1 2 3; do
  # Each node is up before the next port is chosen, so no two can pick one port.
  start_node "$n"
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 || {
  echo "redis_cluster: redis-cli --cluster create failed:" >&2; cat "$dir/create.log" >&2
  for n in 1 2 3; do echo "-- node $n" >&2; cat "$dir/$n/log" >&2; done
  exit 1
}
# Every node must see the whole cluster before the tests start: a node that has not yet
# learnt the slot map answers CLUSTERDOWN, and the client's retries give up.
cluster_ready() {
  local node
  for node in "${nodes[@]}"; do
    redis-cli -p "${node#*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || return 1
    [ "$(redis-cli -p "${node#*:}" cluster slots 2>/dev/null | grep -c '^127.0.0.1$')" -ge 3 ] || return 1
  done
}
for _ in $(seq 1 300); do cluster_ready && break; sleep 0.1; done
cluster_ready || { echo "redis_cluster: the cluster did not form" >&2; exit 1; }

urls=$(printf 'redis://%s,' "${nodes[@]}")
export CALLGUARD_REDIS_CLUSTER="${urls%,}"
export CALLGUARD_REQUIRE_REDIS_CLUSTER=1
cargo test --quiet --all-features --test replay_redis_cluster
echo "redis_cluster: three masters, two replicas: replay, failure counts, rates and one-time codes shared: ok"
