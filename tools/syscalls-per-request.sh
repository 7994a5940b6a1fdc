#!/usr/bin/env bash
# System calls per request across a 3-member cluster, by call, and which
# threads make the futex calls (threads waking threads, the calls etc makes
# four times as often as etcd on a put; docs/benchmarks.md): starts a
# cluster of etc (or etcd) as bench-vs-etcd.sh does, counts the members'
# system calls with perf's syscall tracepoints over one etc-bench run, and
# prints them per request. Needs perf (Debian: apt-get install linux-perf).
#
#   tools/syscalls-per-request.sh                               # etc, put, 64 clients, to the leader
#   tools/syscalls-per-request.sh etcd --workload=range --fill=false
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/cluster_lib.sh
measure_args tools/syscalls-per-request.sh "$@"
if ! command -v perf >/dev/null; then
  echo "tools/syscalls-per-request.sh needs perf: apt-get install linux-perf" >&2
  exit 2
fi
start_measured_cluster

members=$(IFS=,; echo "${pids[*]}")
calls=(futex sendmsg write writev recvmsg read epoll_wait epoll_pwait poll ppoll
  nanosleep sched_yield pwrite64 fdatasync fsync sendto recvfrom mmap munmap madvise)
events=$(printf 'syscalls:sys_enter_%s,' "${calls[@]}")
perf stat -x, -e "${events%,}" -p "$members" -o "$work/counts.csv" &
counting=$!
perf record -q -e syscalls:sys_enter_futex -p "$members" -o "$work/futex.data" >/dev/null 2>&1 &
recording=$!
sleep 1  # perf attaches
line=$("$bench" --endpoints="$endpoints" "${flags[@]}" | grep '^{"workload"')
kill -INT "$counting" "$recording"
wait "$counting" "$recording" || true
perf script -i "$work/futex.data" -F comm 2>/dev/null >"$work/futex_threads.txt" || true
python3 - "$work/counts.csv" "$work/futex_threads.txt" "$line" <<'PY'
import collections, json, sys
result = json.loads(sys.argv[3])
requests = result["ok"] + result["errors"]
print(f'{result["workload"]}: {requests} requests, {result["throughput"]:.0f}/s; '
      'system calls per request across the members')
print("| system call | per request |")
print("|---|---|")
for line in open(sys.argv[1]):
    fields = line.strip().split(",")
    if len(fields) < 3 or not fields[0].replace(".", "").isdigit():
        continue
    count = float(fields[0])
    if count > 0:
        name = fields[2].replace("syscalls:sys_enter_", "")
        print(f"| {name} | {count / requests:.2f} |")
threads = collections.Counter(line.strip() for line in open(sys.argv[2]) if line.strip())
total = sum(threads.values())
if total:
    print("\nfutex calls by thread:")
    print("| thread | per request | share |")
    print("|---|---|---|")
    for name, n in threads.most_common():
        if n / total >= 0.005:
            print(f"| {name} | {n / requests:.2f} | {100 * n / total:.0f}% |")
PY
