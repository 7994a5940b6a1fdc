#!/usr/bin/env bash
# etc and etcd 3.4 side by side, in one run, on this machine: a 3-member
# cluster of each on loopback with the same flags (fsync on for both), the
# same etc-bench workloads against each, and the servers' resident memory
# after loading keys. Prints a table with ratios (etc / etcd), writes it to
# docs/benchmarks.md, and draws put throughput against the number of
# clients for both (docs/benchmarks-put-vs-clients.svg).
#
#   tools/bench-vs-etcd.sh                      # the full run
#   tools/bench-vs-etcd.sh --quick              # short runs, 100k keys for memory
#   tools/bench-vs-etcd.sh --keys=1000000       # keys loaded for the memory figure
#   tools/bench-vs-etcd.sh --quick --no-write   # print only, leave docs/ alone (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
write=true
keys=1000000
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true; keys=100000 ;;
    --keys=*) keys="${arg#--keys=}" ;;
    --no-write) write=false ;;
    *) echo "usage: tools/bench-vs-etcd.sh [--quick] [--keys=N] [--no-write]" >&2; exit 2 ;;
  esac
done
source tools/cluster_lib.sh
prepare_load_run
trap 'kill_cluster; rm -rf "$work"' EXIT
requests=$($quick && echo 20000 || echo 100000)
sweep=(1 8 32 64 128 256 512)
sweep_duration=$($quick && echo 3s || echo 10s)

# name -> JSON line per server; and the servers' CPU per request (µs)
declare -A result cpu_us
run() {  # run <server name> <row name> <etc-bench flags...>
  local server=$1 row=$2; shift 2
  local line before after
  before=$(cpu_ticks)
  line=$("$bench" --endpoints="$endpoints" "$@" | grep '^{"workload"')
  after=$(cpu_ticks)
  result["$server/$row"]="$line"
  cpu_us["$server/$row"]=$(python3 -c 'import json,sys,os; r=json.loads(sys.argv[1]); n=r["ok"]+r["errors"]
print(round((int(sys.argv[3])-int(sys.argv[2]))/os.sysconf("SC_CLK_TCK")*1e6/n) if n else 0)' "$line" "$before" "$after")
  printf '  %-28s %s\n' "$row" "$(field throughput "$line")/s p99 $(field p99_ms "$line") ms, $(field errors "$line") errors, servers' CPU ${cpu_us[$server/$row]} us/request"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"; }

declare -A memory
for server in ${BENCH_SERVERS:-etcd etc}; do
  binary=$([ "$server" == etc ] && echo "$etc_server" || echo "$etcd_server")
  echo "== $server"
  start_cluster "$binary" "$server"
  run "$server" "put, 64 clients" --workload=put --clients=64 --connections=8 --total="$requests" --target=leader
  run "$server" "put, 256 clients" --workload=put --clients=256 --connections=16 --total="$requests" --target=leader
  # The keys the ranges read, written first (not measured, not counted).
  "$bench" --endpoints="$endpoints" --workload=range --clients=1 --connections=1 --total=1 >/dev/null
  run "$server" "range (linearizable)" --workload=range --clients=64 --connections=8 --total="$requests" --fill=false
  run "$server" "range (serializable)" --workload=range --clients=64 --connections=8 --total="$requests" --consistency=s --fill=false
  run "$server" "txn (compare-and-put)" --workload=txn --clients=64 --connections=8 --total="$requests" --target=leader
  run "$server" "watch delivery" --workload=watch --clients=4 --connections=4 --watchers=100 --total=$(( requests / 20 ))
  # Throughput against concurrency, for the chart.
  for clients in "${sweep[@]}"; do
    run "$server" "put, sweep $clients" --workload=put --clients="$clients" \
      --connections=$(( clients < 16 ? clients : 16 )) --duration="$sweep_duration" --target=leader
  done
  # Memory after loading keys (32 B keys, 256 B values), per member, on top
  # of the history the rows above wrote (the same for both servers).
  "$bench" --endpoints="$endpoints" --workload=put --clients=64 --connections=8 --total="$keys" \
    --sequential-keys=true --key-space="$keys" --key-size=32 --value-size=256 --target=leader >/dev/null
  # Steady state: wait until the members' memory stops moving (a snapshot
  # in progress holds extra copies for a few seconds), at most a minute.
  previous=0
  for _ in $(seq 1 30); do
    sleep 2
    now=$(rss_kib)
    [ $(( now > previous ? now - previous : previous - now )) -lt $(( now / 100 )) ] && break
    previous=$now
  done
  memory[$server]=$(( $(rss_kib) / 3 ))
  echo "  resident memory per member after $keys keys: $(( memory[$server] / 1024 )) MiB"
  kill_cluster
done

rows=("put, 64 clients" "put, 256 clients" "range (linearizable)" "range (serializable)" "txn (compare-and-put)" "watch delivery")
table="| workload | etcd ops/s | etc ops/s | ratio | etcd p99 ms | etc p99 ms | ratio | etcd CPU µs/req | etc CPU µs/req | ratio |
|---|---|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  e="${result[etcd/$row]}"; c="${result[etc/$row]}"
  et=$(field throughput "$e"); ct=$(field throughput "$c"); ep=$(field p99_ms "$e"); cp=$(field p99_ms "$c")
  table+=$'\n'"$(python3 -c 'import sys; et,ct,ep,cp,eu,cu=map(float,sys.argv[2:8]); print("| %s | %.0f | %.0f | %.2fx | %.2f | %.2f | %.2fx | %.0f | %.0f | %.2fx |" % (sys.argv[1],et,ct,ct/et if et else 0,ep,cp,cp/ep if ep else 0,eu,cu,cu/eu if eu else 0))' "$row" "$et" "$ct" "$ep" "$cp" "${cpu_us[etcd/$row]}" "${cpu_us[etc/$row]}")"
done
table+=$'\n'"$(python3 -c 'import sys; e,c=map(int,sys.argv[1:3]); print("| resident memory per member, %s keys | %d MiB | %d MiB | %.2fx | | | | | | |" % (sys.argv[3], e//1024, c//1024, c/e if e else 0))' "${memory[etcd]}" "${memory[etc]}" "$keys")"
errors=""
for row in "${rows[@]}"; do
  for server in etcd etc; do
    n=$(field errors "${result[$server/$row]}")
    [ "$n" != 0 ] && errors+="${errors:+; }$server, $row: $n errors"
  done
done
# The chart: put throughput against concurrent clients, both servers.
chart_points=""
for server in etcd etc; do
  for clients in "${sweep[@]}"; do
    chart_points+="$server $clients $(field throughput "${result[$server/put, sweep $clients]}")"$'\n'
  done
done
chart=docs/benchmarks-put-vs-clients.svg
$write || chart="$work/benchmarks-put-vs-clients.svg"
python3 tools/bench_chart.py "$chart" "put throughput (3 members, fsync on) against concurrent clients, $(date -u +%Y-%m-%d)" <<<"$chart_points"
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -r)"
echo
echo "$table"
if ! $write; then
  echo "not written (--no-write): docs/ left as they were"
  exit 0
fi
{
  echo "## $(date -u +%Y-%m-%d) run: \`tools/bench-vs-etcd.sh $*\`"
  echo
  echo "Machine: $machine. Both clusters: 3 members on loopback, default flags (fsync on), etcd $("$etcd_server" --version | head -1 | awk '{print $3}')."
  echo "Requests per row: $requests (watch: $(( requests / 20 )) writes to 100 watchers)."
  echo
  echo "$table"
  echo
  echo "CPU µs/req: user and system CPU of the three members together over the run, per request: what the servers would spend per request on any machine, whatever the load generator beside them costs. Requests that failed: ${errors:-none}."
  echo
  echo "![put throughput against concurrent clients]($(basename "$chart"))"
  echo
} >"$work/section.md"
python3 - "$work/section.md" <<'PY'
import sys, pathlib
section = pathlib.Path(sys.argv[1]).read_text()
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text() if path.exists() else "# Benchmarks: etc and etcd side by side\n\nWritten by `tools/bench-vs-etcd.sh`; newest run first.\n\n"
marker = "newest run first.\n\n"
i = text.find(marker)
text = text[: i + len(marker)] + section + text[i + len(marker):] if i >= 0 else text + section
path.write_text(text)
PY
echo "written to docs/benchmarks.md"
