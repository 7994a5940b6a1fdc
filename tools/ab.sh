#!/usr/bin/env bash
# A/B pairs for a lever: two etc binaries, each on a fresh 3-member cluster,
# alternating, the same etc-bench run against each; prints per run the
# throughput, p99, the members' CPU per request and their context switches
# per request (docs/benchmarks.md keeps the pairs of every lever tried).
#
#   cp bazel-bin/server/etc /tmp/etc-a   # (build --config=opt) before the change
#   cp bazel-bin/server/etc /tmp/etc-b   # after
#   tools/ab.sh /tmp/etc-a /tmp/etc-b                  # 3 pairs, put, 64 clients, 60,000 each
#   tools/ab.sh /tmp/etc-a /tmp/etc-b --pairs=5 --workload=range --fill=false
#   AB_LOADGEN=go tools/ab.sh /tmp/etc-a /tmp/etc-b --workload=watch --clients=4 \
#     --connections=4 --watchers=100 --total=3000   # measured with etcd-go-bench
#   AB_HISTORY=300000 ...   # each cluster first takes that many puts (etc-bench's
#                           # default put), then goes idle, before the measured run
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
  echo "usage: tools/ab.sh <etc binary A> <etc binary B> [--pairs=N] [etc-bench flags...]" >&2
  exit 2
fi
binaries=("$1" "$2")
shift 2
pairs=3
if [ $# -gt 0 ] && [[ "$1" == --pairs=* ]]; then
  pairs="${1#--pairs=}"
  shift
fi
if ! [[ "${AB_HISTORY:-0}" =~ ^[0-9]+$ ]]; then
  echo "tools/ab.sh: AB_HISTORY must be a number of puts, not '$AB_HISTORY'" >&2
  exit 2
fi
source tools/cluster_lib.sh
measure_args tools/ab.sh etc --total=60000 "$@"
prepare_load_run
trap 'kill_cluster; rm -rf "$work"' EXIT
# The measured run's load generator: etc-bench, or with AB_LOADGEN=go the
# one on etcd's own Go client (same flags and result line).
loadgen="$bench"
[ "${AB_LOADGEN:-}" = go ] && loadgen=$(tools/etcd-go-bench.sh)
printf '| pair | binary | ops/s | p99 ms | CPU µs/request | switches/request |\n|---|---|---|---|---|---|\n'
for pair in $(seq 1 "$pairs"); do
  for side in 0 1; do
    start_cluster "${binaries[$side]}" etc
    "$bench" --endpoints="$endpoints" --workload=range --clients=1 --connections=1 --total=1 >/dev/null
    if [ "${AB_HISTORY:-0}" -gt 0 ]; then
      "$bench" --endpoints="$endpoints" --workload=put --clients=64 --connections=8 --target=leader \
        --total="$AB_HISTORY" >/dev/null
      wait_idle
    fi
    ticks_before=$(cpu_ticks)
    switches_before=$(context_switches)
    line=$("$loadgen" --endpoints="$endpoints" "${flags[@]}" | grep '^{"workload"')
    ticks_after=$(cpu_ticks)
    switches_after=$(context_switches)
    kill_cluster
    python3 - "$pair" "$([ $side == 0 ] && echo A || echo B)" "$line" "$ticks_before" "$ticks_after" \
        "$switches_before" "$switches_after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
pair, side, line = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ticks = int(sys.argv[5]) - int(sys.argv[4])
switches = int(sys.argv[7]) - int(sys.argv[6])
n = line["ok"] + line["errors"]
cpu_us = ticks / int(sys.argv[8]) * 1e6 / n if n else 0
print(f'| {pair} | {side} | {line["throughput"]:.0f} | {line["p99_ms"]:.2f} | {cpu_us:.0f} | {switches / n:.2f} |')
PY
  done
done
