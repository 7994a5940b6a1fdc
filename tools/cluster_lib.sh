# Building, starting and stopping 3-member clusters on loopback for the load
# scripts (bench-vs-etcd.sh, overload.sh): etc or etcd 3.4 alike, started
# with etcd's flags. Sourced, not run:
#
#   source tools/cluster_lib.sh
#   prepare_load_run                   # builds; sets etc_server, etcd_server, bench, work
#   trap 'kill_cluster; rm -rf "$work"' EXIT
#   start_cluster /usr/bin/etcd etcd   # sets endpoints, pids, client_urls
#   ... etcdctl --endpoints="$endpoints" ...
#   echo "$(cpu_ticks) ticks, $(context_switches) switches, $(rss_kib) KiB, $(settled_rss_kib) KiB once steady"
#   restart_member 3; add_member /usr/bin/etcd   # SIGTERM and start m3 again; add m4
#   kill_cluster
#
# Data directories and logs go under $work/<name>.<n> (n counts the
# clusters started); the members inherit the caller's limits (ulimit -n).

# Installs what is missing and builds etc and etc-bench (optimized); sets
# etc_server, etcd_server and bench to the binaries and work to a new
# directory for the run.
prepare_load_run() {
  tools/setup.sh
  bazel build --config=opt //server:etc //client:etc-bench
  local bin
  bin="$(bazel info --config=opt bazel-bin)"
  # ETC_SERVER=<path> runs another etc binary (A/B pairs of a lever).
  etc_server="${ETC_SERVER:-$bin/server/etc}"
  etcd_server=/usr/bin/etcd
  bench="$bin/client/etc-bench"
  work="$(mktemp -d)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pids=()         # the members' process ids, m1 first
member_args=()  # member_args[i]: the command line that started member m<i> (quoted)
cluster_dir=""  # where the members' data and logs are
cluster_urls="" # the --initial-cluster of the members started
endpoints=""    # host:port of each member's client URL, comma-separated
client_urls=()  # http://host:port of each member, m1 first

kill_cluster() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

cluster_starts=0
cluster_members=${cluster_members:-3}  # members start_cluster starts
start_cluster() {  # start_cluster <binary> <name> [more flags for every member...]
  local binary=$1 name=$2 cluster="" i dir
  shift 2
  local -a client peer
  # A new cluster each time: data and logs of an earlier one are left alone.
  cluster_starts=$(( cluster_starts + 1 ))
  dir="$work/$name.$cluster_starts"
  mkdir -p "$dir"
  for i in $(seq 1 "$cluster_members"); do client[$i]=$(free_port); peer[$i]=$(free_port); done
  for i in $(seq 1 "$cluster_members"); do cluster+="${cluster:+,}m$i=http://127.0.0.1:${peer[$i]}"; done
  endpoints=""
  client_urls=()
  # Room for a whole run without compaction: etcd's bolt file grows with
  # every revision. 8 GiB, the largest either accepts.
  local quota=8589934592
  cluster_dir=$dir
  cluster_urls=$cluster
  member_args=()
  for i in $(seq 1 "$cluster_members"); do
    member_args[$i]="$(printf '%q ' "$binary" --name "m$i" --data-dir "$dir/m$i" \
      --listen-client-urls "http://127.0.0.1:${client[$i]}" --advertise-client-urls "http://127.0.0.1:${client[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${peer[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${peer[$i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --quota-backend-bytes=$quota "$@")"
    eval "${member_args[$i]}" '>>"$dir/m$i.log" 2>&1 &'
    pids+=("$!")
    endpoints+="${endpoints:+,}127.0.0.1:${client[$i]}"
    client_urls+=("http://127.0.0.1:${client[$i]}")
  done
  for _ in $(seq 1 100); do
    etcdctl --endpoints="$endpoints" --dial-timeout=1s --command-timeout=1s endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the $name cluster did not start:" >&2; for f in "$dir"/m*.log; do tail -n 5 "$f" >&2; done; exit 1
}

cpu_ticks() {  # user + system clock ticks of the cluster's members, with their children that ended (etc's snapshot writers)
  local total=0 p
  for p in "${pids[@]}"; do total=$(( total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat") )); done
  echo "$total"
}

context_switches() {  # voluntary + involuntary context switches of the members' live threads
  local p
  for p in "${pids[@]}"; do cat /proc/"$p"/task/*/status 2>/dev/null || true; done |
    awk '/ctxt_switches/ {n += $2} END {print n + 0}'
}

rss_kib() {  # total resident memory of the cluster's members
  local total=0 p
  for p in "${pids[@]}"; do total=$(( total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status") )); done
  echo "$total"
}

settled_rss_kib() {  # rss_kib once it stops moving (a snapshot in progress holds extra copies for a few seconds), at most a minute
  local previous=0 current
  for _ in $(seq 1 30); do
    sleep 2
    current=$(rss_kib)
    [ $(( current > previous ? current - previous : previous - current )) -lt $(( current / 100 )) ] && break
    previous=$current
  done
  rss_kib
}

wait_idle() {  # until the members use under 5% of a core over 2 s and have no child running (etc writes snapshots in a forked child), at most 2 minutes
  local before after p children
  for _ in $(seq 1 60); do
    before=$(cpu_ticks)
    sleep 2
    after=$(cpu_ticks)
    children=0
    for p in "${pids[@]}"; do pgrep -P "$p" >/dev/null && children=1; done
    [ $children == 0 ] && [ $(( (after - before) * 100 )) -lt $(( 2 * $(getconf CLK_TCK) * 5 )) ] && return 0
  done
}

restart_member() {  # restart_member <i>: stops m<i> (SIGTERM) and starts it again on its data
  local i=$1
  kill -TERM "${pids[$((i - 1))]}" 2>/dev/null || true
  wait "${pids[$((i - 1))]}" 2>/dev/null || true
  eval "${member_args[$i]}" '>>"$cluster_dir/m$i.log" 2>&1 &'
  pids[$((i - 1))]=$!
}

add_member() {  # add_member <binary> [more flags]: adds m4 to the cluster (member add, then starts it); sets new_endpoint
  local binary=$1 c p
  shift
  c=$(free_port); p=$(free_port)
  # etcd refuses a member while one was (re)started in the last seconds
  # ("unhealthy cluster"): try again for up to a minute.
  local tries=0
  until etcdctl --endpoints="$endpoints" member add m4 --peer-urls="http://127.0.0.1:$p" >/dev/null 2>&1; do
    tries=$(( tries + 1 ))
    if [ $tries -ge 60 ]; then
      etcdctl --endpoints="$endpoints" member add m4 --peer-urls="http://127.0.0.1:$p" >&2 || true
      return 1
    fi
    sleep 1
  done
  "$binary" --name m4 --data-dir "$cluster_dir/m4" \
    --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
    --initial-cluster "$cluster_urls,m4=http://127.0.0.1:$p" --initial-cluster-state existing \
    "$@" >>"$cluster_dir/m4.log" 2>&1 &
  pids+=("$!")
  new_endpoint="127.0.0.1:$c"
}

# The per-request measuring tools (switches-by-thread.sh,
# syscalls-per-request.sh) take "[etc|etcd] [etc-bench flags...]". Sets
# `server` and `flags`: the defaults (a put from 64 clients to the leader,
# 20,000 requests), then the caller's, since etc-bench takes the last of a
# repeated flag (`--total=150000` alone once replaced the defaults and
# measured a put from 16 clients spread over every member, forwarded by the
# followers). Exits with the usage line on a bad server name.
measure_args() {
  local tool=$1
  shift
  server=${1:-etc}
  [ $# -gt 0 ] && shift
  if [ "$server" != etc ] && [ "$server" != etcd ]; then
    echo "usage: $tool [etc|etcd] [etc-bench flags...]" >&2
    exit 2
  fi
  flags=(--workload=put --clients=64 --connections=8 --target=leader --total=20000 "$@")
}

# Builds, starts a 3-member cluster of `server` (removed on exit) and writes
# the keys range workloads read.
start_measured_cluster() {
  prepare_load_run
  trap 'kill_cluster; rm -rf "$work"' EXIT
  start_cluster "$([ "$server" == etc ] && echo "$etc_server" || echo "$etcd_server")" "$server"
  "$bench" --endpoints="$endpoints" --workload=range --clients=1 --connections=1 --total=1 >/dev/null
}
