#!/bin/bash
# `etcctl tree` of 10,000 keys against `etcdctl get --prefix` of the same
# subtree: starts one etc member and one etcd 3.4 member, loads N keys
# (10 directories of 10 subdirectories of N/100 keys, 64-byte values) into
# both, and prints the best wall time of R runs of each command, output to
# /dev/null, as a table with the machine. Not a test.
#   tools/etcctl-tree-bench.sh [keys=10000] [runs=5]
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-10000}
runs=${2:-5}
bazel build -c opt //server:etc //client:etcctl >/dev/null 2>&1
etcctl=bazel-bin/client/etcctl
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

start() {  # name binary port
  local peer=$(($3 + 1))
  "$2" --name "$1" --data-dir "$dir/$1" \
    --listen-client-urls "http://127.0.0.1:$3" --advertise-client-urls "http://127.0.0.1:$3" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$1=http://127.0.0.1:$peer" >"$dir/$1.log" 2>&1 &
  pids+=($!)
}

base=$((20000 + RANDOM % 10000))
etc_port=$base
etcd_port=$((base + 2))
start etc bazel-bin/server/etc "$etc_port"
start etcd /usr/bin/etcd "$etcd_port"
for port in "$etc_port" "$etcd_port"; do
  for _ in $(seq 50); do
    "$etcctl" --endpoints="127.0.0.1:$port" put /ready 1 >/dev/null 2>&1 && break
    sleep 0.2
  done
  # Loaded through the Python gRPC client, 100 puts a transaction.
  /usr/bin/python3 - "$port" "$keys" <<'PY'
import sys
import etcd3
port, keys = int(sys.argv[1]), int(sys.argv[2])
c = etcd3.client(host='127.0.0.1', port=port)
per_leaf = max(1, keys // 100)
ops = []
for i in range(keys):
    leaf = i // per_leaf
    key = '/t10k/d%d/s%d/k%06d' % (leaf // 10 % 10, leaf % 10, i)
    ops.append(c.transactions.put(key, 'v' * 64))
    if len(ops) == 100 or i + 1 == keys:
        c.transaction(compare=[], success=ops, failure=[])
        ops = []
PY
done

best() {  # runs the command R times, prints the best wall time in ms
  local best_ms=999999999
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    local ms=$(( (t1 - t0) / 1000000 ))
    (( ms < best_ms )) && best_ms=$ms
  done
  echo "$best_ms"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "command: tools/etcctl-tree-bench.sh $keys $runs (best of $runs, wall time, output to /dev/null)"
echo "keys: $keys under /t10k (10 x 10 directories, 64-byte values)"
printf '%-48s %12s %12s\n' "command" "etc (ms)" "etcd (ms)"
row() {  # label, then the command with ENDPOINT standing for the endpoint
  local label=$1
  shift
  local cells=()
  for port in "$etc_port" "$etcd_port"; do
    local cmd=("${@//ENDPOINT/127.0.0.1:$port}")
    cells+=("$(best "${cmd[@]}")")
  done
  printf '%-48s %12s %12s\n' "$label" "${cells[0]}" "${cells[1]}"
}
row "etcctl tree /t10k" "$etcctl" --endpoints=ENDPOINT tree /t10k
row "etcctl tree /t10k --depth=2" "$etcctl" --endpoints=ENDPOINT tree /t10k --depth=2
row "etcctl ls -l /t10k/d0/s0" "$etcctl" --endpoints=ENDPOINT ls -l /t10k/d0/s0
row "etcctl du /t10k" "$etcctl" --endpoints=ENDPOINT du /t10k
row "etcctl get --prefix /t10k/" "$etcctl" --endpoints=ENDPOINT get --prefix /t10k/
row "etcdctl get --prefix /t10k/" /usr/bin/etcdctl --endpoints=ENDPOINT get --prefix /t10k/
row "etcdctl get --prefix --keys-only /t10k/" /usr/bin/etcdctl --endpoints=ENDPOINT get --prefix --keys-only /t10k/
