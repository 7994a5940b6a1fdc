#!/usr/bin/env bash
# How cost grows with the number of keys, etc beside etcd 3.4 (issue 21,
# item 3). For each size, a fresh 3-member cluster of each on loopback
# (cluster_lib.sh, fsync on) is loaded with that many keys (32-byte keys,
# 256-byte values, 64 clients), then measured:
#   load                  puts per second while loading
#   resident memory       per member, once it stops moving
#   put p99               20,000 overwrites of random loaded keys, 64 clients,
#                         once the members are idle after the load
#   List of a directory   median of 20 Lists of 1,000 keys (etc's Tree
#                         service; on etcd, prefix ranges: tree_bench)
#   restart               one member stopped (SIGTERM) and started again:
#                         from its start until it serves the last loaded key
#   new member            member add, then its start until it serves the
#                         last loaded key (a snapshot sent and restored, or
#                         the log replayed, as the leader decides)
#   compaction            etcdctl compact of the whole history, physical
#   defragment            etcdctl defrag of one member
# A size a server cannot hold (its load fails) says so in its column.
# --members=1 measures single-member clusters (restart: that member; new
# member: a second one): three members of either at 10,000,000 keys do not
# fit a 24 GiB machine (etcd holds about 6 GB per member there).
# Prints the table; --write adds it to docs/benchmarks.md.
#
#   tools/growth-bench.sh                               # 100,000 and 1,000,000 keys
#   tools/growth-bench.sh --sizes=10000000 --members=1 --servers="etc etcd" --write
#   tools/growth-bench.sh --sizes=20000 --servers=etc   # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=100000,1000000
servers="etcd etc"
write=false
for arg in "$@"; do
  case "$arg" in
    --sizes=*) sizes="${arg#--sizes=}" ;;
    --servers=*) servers="${arg#--servers=}" ;;
    --members=*) cluster_members="${arg#--members=}" ;;
    --write) write=true ;;
    *) echo "usage: tools/growth-bench.sh [--sizes=N,M,...] [--servers=\"etcd etc\"] [--members=N] [--write]" >&2; exit 2 ;;
  esac
done
source tools/cluster_lib.sh
prepare_load_run
bazel build --config=opt //client:tree_bench
tree_bench="$(bazel info --config=opt bazel-bin)/client/tree_bench"
trap 'kill_cluster; rm -rf "$work"' EXIT

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
key_of() { printf '%032d' "$1"; }  # etc-bench's key n, 32 digits
seconds_since() { python3 -c 'import sys; print("%.1f" % ((int(sys.argv[2]) - int(sys.argv[1])) / 1000))' "$1" "$(now_ms)"; }

# Waits (at most `limit` s) until <endpoint> serves key, holding a value;
# prints the seconds since <start ms>, or "no answer in <limit> s".
time_until_served() {  # time_until_served <endpoint> <key> <start ms> <limit s>
  local deadline=$(( $3 + $4 * 1000 )) out
  while [ "$(now_ms)" -lt "$deadline" ]; do
    out=$(etcdctl --endpoints="$1" --dial-timeout=1s --command-timeout=5s get "$2" --consistency=s \
          --print-value-only 2>/dev/null || true)
    if [ -n "$out" ]; then seconds_since "$3"; return; fi
    sleep 0.05
  done
  echo "no answer in $4 s"
}

declare -A cell  # "<server>/<size>/<metric>" -> text
metrics=(load rss p99 list restart new_member compact defrag)
declare -A label=([load]="load (puts/s)" [rss]="resident memory per member (MiB)" [p99]="put p99 (ms)"
                  [list]="List of a 1,000-key directory (ms)" [restart]="restart to serving (s)"
                  [new_member]="new member to serving (s)" [compact]="compaction (s)" [defrag]="defragment (s)")

measure() {  # measure <server> <size>
  local server=$1 size=$2 binary line start last rev
  binary=$([ "$server" == etc ] && echo "$etc_server" || echo "$etcd_server")
  echo "== $server, $size keys"
  start_cluster "$binary" "$server"
  local first_endpoint=${endpoints%%,*}
  start=$(now_ms)
  line=$("$bench" --endpoints="$endpoints" --workload=put --clients=64 --connections=8 --total="$size" \
    --sequential-keys=true --key-space="$size" --key-size=32 --value-size=256 --target=leader |
    grep '^{"workload"')
  if [ "$(field errors "$line")" != 0 ]; then
    cell[$server/$size/load]="failed: $(field errors "$line") of $size puts refused"
    echo "  load failed: $(field errors "$line") errors"
    kill_cluster
    return
  fi
  cell[$server/$size/load]=$(python3 -c 'import sys; print("%.0f" % (int(sys.argv[1]) / ((int(sys.argv[3]) - int(sys.argv[2])) / 1000)))' \
    "$size" "$start" "$(now_ms)")
  # What the load left running in the background (a snapshot being
  # written, compaction of the log) would otherwise land in the p99, and
  # in the memory figure: at 10M keys etc's member holds the 3 GB snapshot
  # its child sends it for a minute after the load.
  wait_idle
  cell[$server/$size/rss]=$(( $(settled_rss_kib) / cluster_members / 1024 ))
  line=$("$bench" --endpoints="$endpoints" --workload=put --clients=64 --connections=8 --total=20000 \
    --key-space="$size" --key-size=32 --value-size=256 --target=leader | grep '^{"workload"')
  cell[$server/$size/p99]=$(field p99_ms "$line")
  line=$("$tree_bench" "$first_endpoint" list-dir /growth/dir 1000 20 | grep '^{"list_dir"')
  cell[$server/$size/list]=$(field median_ms "$line")
  last=$(key_of $(( size - 1 )))
  restart_member "$cluster_members"
  start=$(now_ms)
  cell[$server/$size/restart]=$(time_until_served "${endpoints##*,}" "$last" "$start" 600)
  local quota=8589934592
  add_member "$binary" --quota-backend-bytes=$quota
  start=$(now_ms)
  cell[$server/$size/new_member]=$(time_until_served "$new_endpoint" "$last" "$start" 600)
  rev=$(etcdctl --endpoints="$first_endpoint" endpoint status -w json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])')
  start=$(now_ms)
  etcdctl --endpoints="$first_endpoint" --command-timeout=600s compact "$rev" --physical >/dev/null
  cell[$server/$size/compact]=$(seconds_since "$start")
  start=$(now_ms)
  etcdctl --endpoints="$first_endpoint" --command-timeout=600s defrag >/dev/null
  cell[$server/$size/defrag]=$(seconds_since "$start")
  for metric in "${metrics[@]}"; do printf '  %-40s %s\n' "${label[$metric]}" "${cell[$server/$size/$metric]}"; done
  kill_cluster
}

IFS=, read -r -a size_list <<<"$sizes"
for size in "${size_list[@]}"; do
  for server in $servers; do measure "$server" "$size"; done
done

header="| metric |"
rule="|---|"
for size in "${size_list[@]}"; do
  for server in $servers; do
    header+=" $server, $(python3 -c 'import sys; print(f"{int(sys.argv[1]):,}")' "$size") keys |"
    rule+="---|"
  done
done
table="$header"$'\n'"$rule"
for metric in "${metrics[@]}"; do
  row="| ${label[$metric]} |"
  for size in "${size_list[@]}"; do
    for server in $servers; do row+=" ${cell[$server/$size/$metric]:-not measured} |"; done
  done
  table+=$'\n'"$row"
done
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
echo
echo "$table"
$write || exit 0
{
  echo "## $(date -u +%Y-%m-%d): how cost grows, \`tools/growth-bench.sh $*\`"
  echo
  echo "Machine: $machine. Both clusters: $cluster_members member(s) on loopback, default flags (fsync on), etcd $("$etcd_server" --version | head -1 | awk '{print $3}')."
  echo
  echo "$table"
  echo
} >"$work/section.md"
python3 - "$work/section.md" <<'PY'
import sys, pathlib
section = pathlib.Path(sys.argv[1]).read_text()
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text()
marker = "newest run first.\n\n"
i = text.find(marker)
text = text[: i + len(marker)] + section + text[i + len(marker):] if i >= 0 else text + section
path.write_text(text)
PY
echo "written to docs/benchmarks.md"
