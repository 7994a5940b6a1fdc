#!/usr/bin/env bash
# Overload without collapse: a 3-member cluster of etc, and of etcd 3.4 as
# the referee, on loopback (fsync on, started with etcd's flags by
# cluster_lib.sh, as bench-vs-etcd.sh starts them), under two overloads.
# Prints a table of each, side by side; --write appends them to
# docs/benchmarks.md with the date, the machine and the command.
#
#   tools/overload.sh                  # both scenarios, both servers (about 12 min here)
#   tools/overload.sh --write          # the same, and append the tables to docs/benchmarks.md
#   tools/overload.sh --servers=etc --leases=20000 --idle=2000   # a shorter look at one server
#   tools/overload.sh --keep           # keep the raw output (per-second JSON lines, logs): prints where
#   tools/overload.sh --server-flags=--snapshot-count=100000000   # more flags for every member
#
# 1. Mass lease expiry (etc-bench --workload=lease-expiry, see
#    client/bench_lease_expiry.h): 100,000 leases granted, 10,000 of them
#    with a key, all renewed once in a burst and then left to expire
#    together, while 16 clients put without pause to the leader. Per
#    second: put p50/p99, leases left (LeaseLeases on a follower), keys
#    deleted (a watch), every member's leader and term; and the leader
#    changes each member counted (etcd_server_leader_changes_seen_total on
#    /metrics). Both servers revoke at a bounded rate by design (etc:
#    member/kv_member.h, 500 leases per proposal every 500 ms; etcd:
#    leaseRevokeRate, 1,000 a second), so the expiry itself takes about
#    100 s: what must hold is no election and no blow-up of the put p99.
#    The TTL is 45 s, not a few seconds: the grants are proposals (100,000
#    took 10 s on etc and 20-26 s on etcd here, with other work on the
#    machine), and every lease must be granted and given its key before the
#    first one may expire (etc-bench refuses to go on otherwise); the
#    renewal burst (2 s on etc, 8 s on etcd) is what makes them expire
#    together.
# 2. Idle connections (etc-bench --idle-silent/--idle-http, see
#    client/bench_idle.h): the put and the (linearizable) range workload
#    against the leader alone, without and then with 10,000 idle TCP
#    connections held open to the leader's client port, half of them silent
#    (they never send a byte, not even HTTP/2's preface) and half idle
#    HTTP/1.1 keep-alive (one GET /version answered). The workload's own
#    gRPC connections are open before the idle ones. Also: whether a new
#    client gets through while they are held (a new connection and a put,
#    3 s each), the leader's threads and resident memory (before, with
#    them, after they closed), and which of them the server closes within
#    70 s. How each server treats them: etc's client port sniffs every
#    connection on one epoll thread (server/http.cc): an HTTP/2 preface
#    hands it to gRPC, where it no longer counts; until then, and for
#    HTTP/1.1, it counts towards a limit of 10,000 connections (at the
#    limit a new connection takes the place of the one silent longest, one
#    that never spoke first) and is closed after 60 s without a byte.
#    etcd 3.4 (cmux, then Go's HTTP server) gives each connection a
#    goroutine, sets no limit and no idle timeout. Idle gRPC connections (a
#    preface, then nothing) are not part of the run: once etc hands one to
#    gRPC it no longer counts it, and gRPC sets no limit on their number.
#
# Needs a hard limit on open files (ulimit -Hn) of at least --idle plus a
# few hundred: the script raises its soft limit to the hard one, and the
# members and etc-bench inherit it.
set -euo pipefail
cd "$(dirname "$0")/.."
write=false
keep=false
servers="etcd etc"
leases=100000
lease_keys=10000
lease_ttl=45
idle=10000
server_flags=()
for arg in "$@"; do
  case "$arg" in
    --write) write=true ;;
    --keep) keep=true ;;
    --servers=*) servers="${arg#--servers=}"; servers="${servers//,/ }" ;;
    --leases=*) leases="${arg#--leases=}" ;;
    --lease-keys=*) lease_keys="${arg#--lease-keys=}" ;;
    --lease-ttl=*) lease_ttl="${arg#--lease-ttl=}" ;;
    --idle=*) idle="${arg#--idle=}" ;;
    --server-flags=*) read -r -a more <<<"${arg#--server-flags=}"; server_flags+=("${more[@]}") ;;
    *) echo "usage: tools/overload.sh [--write] [--keep] [--servers=etcd,etc] [--leases=N] [--lease-keys=N] [--lease-ttl=S] [--idle=N] [--server-flags=FLAGS]" >&2; exit 2 ;;
  esac
done
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $(( idle + 500 )) ]; then
  echo "overload.sh: $idle idle connections need more open files than the hard limit allows ($(ulimit -Hn))" >&2
  exit 1
fi
source tools/cluster_lib.sh
prepare_load_run
if $keep; then
  trap 'kill_cluster; echo "raw output kept in $work"' EXIT
else
  trap 'kill_cluster; rm -rf "$work"' EXIT
fi
started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

leader_changes() {  # the most leader changes any member has counted
  local url most=0 n
  for url in "${client_urls[@]}"; do
    n=$(curl -s -m 5 "$url/metrics" | awk '/^etcd_server_leader_changes_seen_total/ {print $2}')
    [ "${n:-0}" -gt "$most" ] && most=$n
  done
  echo "$most"
}

member_pid() {  # the pid of the member whose client port is host:port $1
  local i
  for i in "${!client_urls[@]}"; do
    [ "${client_urls[$i]}" == "http://$1" ] && { echo "${pids[$i]}"; return; }
  done
}

process_facts() {  # threads, resident KiB and open descriptors of pid $1
  echo "$(awk '/^Threads/ {print $2}' "/proc/$1/status") $(awk '/^VmRSS/ {print $2}' "/proc/$1/status") $(ls "/proc/$1/fd" | wc -l)"
}

lease_expiry() {  # lease_expiry <server>
  local server=$1 before after
  echo "== $server: mass lease expiry ($leases leases, TTL $lease_ttl s, $lease_keys with a key, 16 clients putting)"
  before=$(leader_changes)
  if ! "$bench" --endpoints="$endpoints" --workload=lease-expiry --target=leader --clients=16 --connections=4 \
      --leases="$leases" --lease-keys="$lease_keys" --lease-ttl="$lease_ttl" --after=10s --duration=400s \
      >"$work/$server-expiry.out" 2> >(sed "s/^/  $server: /" >&2); then
    echo "  $server: the mass lease expiry did not run (above: why)"
    return 0
  fi
  after=$(leader_changes)
  echo "leader_changes $(( after - before ))" >>"$work/$server-facts"
  grep '^{"workload"' "$work/$server-expiry.out" | sed "s/^/  /"
}

idle_run() {  # idle_run <server> <name> <etc-bench flags...>
  # Samples the leader before the run (if an earlier run found it), once
  # the idle connections are open (before the workload starts), and 2 s
  # after the run, once they are closed.
  local server=$1 name=$2; shift 2
  local out="$work/$server-idle-$name.out" pid="" endpoint
  if [ -f "$work/$server-leader-pid" ]; then
    echo "threads_rss_fds_before_$name $(process_facts "$(cat "$work/$server-leader-pid")")" >>"$work/$server-facts"
  fi
  "$bench" --endpoints="$endpoints" --target=leader --clients=16 --connections=4 "$@" >"$out" 2>&1 &
  local bench_pid=$!
  while kill -0 "$bench_pid" 2>/dev/null && ! grep -qs '^{"idle_opened"' "$out"; do sleep 0.1; done
  if grep -qs '^{"idle_opened"' "$out"; then
    endpoint=$(grep '^{"idle_opened"' "$out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["idle_opened"])')
    pid=$(member_pid "$endpoint")
    echo "threads_rss_fds_$name $(process_facts "$pid")" >>"$work/$server-facts"
  fi
  wait "$bench_pid" || { echo "etc-bench failed:" >&2; cat "$out" >&2; exit 1; }
  grep '^{' "$out" | sed "s/^/  /"
  if [ -n "$pid" ]; then
    echo "$pid" >"$work/$server-leader-pid"
    sleep 2
    echo "threads_rss_fds_after_$name $(process_facts "$pid")" >>"$work/$server-facts"
  fi
}

idle_connections() {  # idle_connections <server>
  local server=$1 silent=$(( idle / 2 )) http=$(( idle - idle / 2 ))
  echo "== $server: $idle idle connections on the leader ($silent silent, $http HTTP/1.1 keep-alive)"
  # The keys the ranges read, written first (not measured).
  "$bench" --endpoints="$endpoints" --workload=range --clients=1 --connections=1 --total=1 >/dev/null
  idle_run "$server" put-none --workload=put --duration=10s --idle-silent=0 --idle-http=0
  idle_run "$server" range-none --workload=range --fill=false --duration=10s --idle-silent=0 --idle-http=0
  idle_run "$server" put-idle --workload=put --duration=10s --idle-silent="$silent" --idle-http="$http"
  idle_run "$server" range-idle --workload=range --fill=false --duration=10s --idle-silent="$silent" \
    --idle-http="$http" --idle-hold=70s
}

for server in $servers; do
  binary=$([ "$server" == etc ] && echo "$etc_server" || echo "$etcd_server")
  if [ "$server" == etc ]; then
    echo "version etc $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server || echo +changes)" >"$work/$server-facts"
  else
    echo "version etcd $("$etcd_server" --version | head -1 | awk '{print $3}')" >"$work/$server-facts"
  fi
  start_cluster "$binary" "$server" ${server_flags[@]+"${server_flags[@]}"}
  lease_expiry "$server"
  kill_cluster
  start_cluster "$binary" "$server" ${server_flags[@]+"${server_flags[@]}"}
  idle_connections "$server"
  kill_cluster
done
minutes=$(( ($(date +%s) - started + 30) / 60 ))

tables=$(python3 tools/overload_report.py "$work" $servers)
echo
echo "$tables"
echo
echo "(${minutes} min)"
if ! $write; then
  echo "not written (no --write): docs/ left as they were"
  exit 0
fi
machine="$(lscpu | grep 'Model name' | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -r)"
{
  echo
  echo "## $(date -u +%Y-%m-%d): overload without collapse, \`tools/overload.sh $*\`"
  echo
  echo "Machine: $machine; load average (1, 5, 15 min) $load_at_start at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end (the machine is shared). Both clusters: 3 members on loopback, default flags (fsync on)${server_flags[*]:+, and ${server_flags[*]}}; the load generator on the same machine. The whole run took ${minutes} min."
  echo
  echo "$tables"
} >>docs/benchmarks.md
echo "appended to docs/benchmarks.md"
