#!/usr/bin/env bash
# Context switches per request, by thread, across a 3-member cluster (the
# measure issue 21 sets a put below 2 on): starts a cluster of etc (or
# etcd) as bench-vs-etcd.sh does, runs one etc-bench workload, and prints
# the voluntary and involuntary switches of the members' threads per
# request, grouped by thread name (etc names its threads: etc-member,
# etc-peer-send, etc-peer-recv, ...; gRPC's and Go's threads keep theirs).
#
#   tools/switches-by-thread.sh                                  # etc, put, 64 clients
#   tools/switches-by-thread.sh etcd --workload=range --clients=64 --connections=8 --fill=false
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/cluster_lib.sh
measure_args tools/switches-by-thread.sh "$@"
start_measured_cluster

snapshot() {  # one line per live thread: "<member> <tid> <name> <switches>"
  local i=0 p task
  for p in "${pids[@]}"; do
    i=$(( i + 1 ))
    for task in /proc/"$p"/task/*; do
      awk -v m="m$i" -v t="${task##*/}" '/^Name:/ {name = $2} /ctxt_switches/ {n += $2}
        END {print m, t, name, n + 0}' "$task/status" 2>/dev/null || true
    done
  done
}
snapshot >"$work/before"
line=$("$bench" --endpoints="$endpoints" "${flags[@]}" | grep '^{"workload"')
snapshot >"$work/after"
python3 - "$work/before" "$work/after" "$line" <<'PY'
import collections, json, sys
def read(path):
    rows = {}
    for line in open(path):
        member, tid, name, n = line.split()
        rows[(member, tid)] = (name, int(n))
    return rows
before, after, result = read(sys.argv[1]), read(sys.argv[2]), json.loads(sys.argv[3])
requests = result["ok"] + result["errors"]
by_name, by_member = collections.Counter(), collections.Counter()
for key, (name, n) in after.items():
    # A thread born during the run counts from zero; one that ended is lost.
    delta = n - before.get(key, (name, 0))[1]
    by_name[name] += delta
    by_member[(key[0], name)] += delta
total = sum(by_name.values())
print(f'{result["workload"]}: {requests} requests, {result["throughput"]:.0f}/s, '
      f'{total / requests:.2f} context switches per request across the members')
print("| thread | per request | of which m1 | m2 | m3 |")
print("|---|---|---|---|---|")
for name, n in by_name.most_common():
    if n / requests < 0.005:
        continue
    cells = " | ".join(f'{by_member[(m, name)] / requests:.2f}' for m in ("m1", "m2", "m3"))
    print(f"| {name} | {n / requests:.2f} | {cells} |")
PY
