#!/bin/bash
# Starts one etc member (big quota, txns of 128 ops, a fresh data dir) and
# runs //client:tree_bench against it: List of 100 children above N keys.
#   tools/tree-bench.sh [keys=1000000] [runs=5]
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build -c opt //server:etc //client:tree_bench
dir=$(mktemp -d)
port=$((20000 + RANDOM % 10000))
peer=$((port + 1))
bazel-bin/server/etc --name b --data-dir "$dir/data" \
  --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "b=http://127.0.0.1:$peer" --quota-backend-bytes 1610612736 \
  --max-txn-ops 128 2>"$dir/etc.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 2
bazel-bin/client/tree_bench "127.0.0.1:$port" "${1:-1000000}" "${2:-5}"
