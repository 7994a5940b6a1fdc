# Building, starting and stopping 3-member clusters on loopback for the load
# scripts (bench-vs-etcd.sh, overload.sh): etc or etcd 3.4 alike, started
# with etcd's flags. Sourced, not run:
#
#   source tools/cluster_lib.sh
#   prepare_load_run                   # builds; sets etc_server, etcd_server, bench, work
#   trap 'kill_cluster; rm -rf "$work"' EXIT
#   start_cluster /usr/bin/etcd etcd   # sets endpoints, pids, client_urls
#   ... etcdctl --endpoints="$endpoints" ...
#   echo "$(cpu_ticks) ticks, $(rss_kib) KiB"
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
  etc_server="$bin/server/etc"
  etcd_server=/usr/bin/etcd
  bench="$bin/client/etc-bench"
  work="$(mktemp -d)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pids=()         # the members' process ids, m1 first
endpoints=""    # host:port of each member's client URL, comma-separated
client_urls=()  # http://host:port of each member, m1 first

kill_cluster() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

cluster_starts=0
start_cluster() {  # start_cluster <binary> <name> [more flags for every member...]
  local binary=$1 name=$2 cluster="" i dir
  shift 2
  local -a client peer
  # A new cluster each time: data and logs of an earlier one are left alone.
  cluster_starts=$(( cluster_starts + 1 ))
  dir="$work/$name.$cluster_starts"
  mkdir -p "$dir"
  for i in 1 2 3; do client[$i]=$(free_port); peer[$i]=$(free_port); done
  for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:${peer[$i]}"; done
  endpoints=""
  client_urls=()
  # Room for a whole run without compaction: etcd's bolt file grows with
  # every revision; etc accepts at most 1.5 GiB (what a snapshot file can
  # hold), which its accounting of the same load stays well below.
  local quota=8589934592
  [[ "$name" == etc ]] && quota=1610612736
  for i in 1 2 3; do
    "$binary" --name "m$i" --data-dir "$dir/m$i" \
      --listen-client-urls "http://127.0.0.1:${client[$i]}" --advertise-client-urls "http://127.0.0.1:${client[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${peer[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${peer[$i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --quota-backend-bytes=$quota "$@" >>"$dir/m$i.log" 2>&1 &
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

cpu_ticks() {  # user + system clock ticks of the cluster's members
  local total=0 p
  for p in "${pids[@]}"; do total=$(( total + $(awk '{print $14 + $15}' "/proc/$p/stat") )); done
  echo "$total"
}

rss_kib() {  # total resident memory of the cluster's members
  local total=0 p
  for p in "${pids[@]}"; do total=$(( total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status") )); done
  echo "$total"
}
