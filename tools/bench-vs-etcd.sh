#!/usr/bin/env bash
# etc and etcd 3.4 side by side, in one run, on this machine: a 3-member
# cluster of each on loopback with the same flags (fsync on for both), the
# same workloads against each, and the servers' resident memory after
# loading keys. The request rows run with two load generators: etc-bench
# (etc's C++ client) and etcd-go-bench (tools/etcd-go-bench/, on etcd's own
# Go client), so no figure depends on etc's client alone. Prints a table per
# load generator with ratios (etc / etcd), writes them to
# docs/benchmarks.md, and draws put throughput against the number of
# clients for both servers (docs/benchmarks-put-vs-clients.svg; etc-bench).
#
#   tools/bench-vs-etcd.sh                      # the full run
#   tools/bench-vs-etcd.sh --quick              # short runs, 100k keys for memory
#   tools/bench-vs-etcd.sh --keys=1000000       # keys loaded for the memory figure
#   tools/bench-vs-etcd.sh --loadgen=etc-bench  # one load generator (or etcd-go-bench)
#   tools/bench-vs-etcd.sh --quick --no-write   # print only, leave docs/ alone (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
write=true
keys=1000000
loadgens=(etc-bench etcd-go-bench)
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true; keys=100000 ;;
    --keys=*) keys="${arg#--keys=}" ;;
    --no-write) write=false ;;
    --loadgen=etc-bench|--loadgen=etcd-go-bench) loadgens=("${arg#--loadgen=}") ;;
    *) echo "usage: tools/bench-vs-etcd.sh [--quick] [--keys=N] [--loadgen=etc-bench|etcd-go-bench] [--no-write]" >&2; exit 2 ;;
  esac
done
source tools/cluster_lib.sh
prepare_load_run
# The load generators, by name (both print the same JSON line).
declare -A loadgen_binary=([etc-bench]="$bench")
for loadgen in "${loadgens[@]}"; do
  [ "$loadgen" == etcd-go-bench ] && loadgen_binary[etcd-go-bench]=$(tools/etcd-go-bench.sh)
done
trap 'kill_cluster; rm -rf "$work"' EXIT
requests=$($quick && echo 20000 || echo 100000)
sweep=(1 8 32 64 128 256 512)
sweep_duration=$($quick && echo 3s || echo 10s)

# name -> JSON line per server; and the servers' CPU per request (µs)
declare -A result cpu_us switches
run() {  # run <server name> <row name> <etc-bench flags...> (with etc-bench)
  run_with etc-bench "$@"
}
run_with() {  # run_with <load generator> <server name> <row name> <flags...>
  local loadgen=$1 server=$2 row=$3; shift 3
  [ "$loadgen" != etc-bench ] && row="$loadgen: $row"
  local line before after switches_before switches_after
  before=$(cpu_ticks)
  switches_before=$(context_switches)
  line=$("${loadgen_binary[$loadgen]}" --endpoints="$endpoints" "$@" | grep '^{"workload"')
  # What the row's writes set going in the background (etc's snapshot of
  # them, in a forked child at idle priority) finishes before the next row
  # starts, and its CPU is this row's: a row is measured apart from the
  # one before it, and pays for what it causes.
  wait_idle
  after=$(cpu_ticks)
  switches_after=$(context_switches)
  result["$server/$row"]="$line"
  cpu_us["$server/$row"]=$(python3 -c 'import json,sys,os; r=json.loads(sys.argv[1]); n=r["ok"]+r["errors"]
print(round((int(sys.argv[3])-int(sys.argv[2]))/os.sysconf("SC_CLK_TCK")*1e6/n) if n else 0)' "$line" "$before" "$after")
  switches["$server/$row"]=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); n=r["ok"]+r["errors"]
print("%.1f" % ((int(sys.argv[3])-int(sys.argv[2]))/n) if n else 0)' "$line" "$switches_before" "$switches_after")
  printf '  %-28s %s\n' "$row" "$(field throughput "$line")/s p99 $(field p99_ms "$line") ms, $(field errors "$line") errors, servers' CPU ${cpu_us[$server/$row]} us/request, ${switches[$server/$row]} context switches/request"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"; }

declare -A memory
for server in ${BENCH_SERVERS:-etcd etc}; do
  binary=$([ "$server" == etc ] && echo "$etc_server" || echo "$etcd_server")
  echo "== $server"
  start_cluster "$binary" "$server"
  # The keys the ranges read, written first (not measured, not counted).
  "$bench" --endpoints="$endpoints" --workload=range --clients=1 --connections=1 --total=1 >/dev/null
  for loadgen in "${loadgens[@]}"; do
    run_with "$loadgen" "$server" "put, 64 clients" --workload=put --clients=64 --connections=8 --total="$requests" --target=leader
    run_with "$loadgen" "$server" "put, 256 clients" --workload=put --clients=256 --connections=16 --total="$requests" --target=leader
    run_with "$loadgen" "$server" "range (linearizable)" --workload=range --clients=64 --connections=8 --total="$requests" --fill=false
    run_with "$loadgen" "$server" "range (serializable)" --workload=range --clients=64 --connections=8 --total="$requests" --consistency=s --fill=false
    run_with "$loadgen" "$server" "txn (compare-and-put)" --workload=txn --clients=64 --connections=8 --total="$requests" --target=leader
    run_with "$loadgen" "$server" "watch delivery" --workload=watch --clients=4 --connections=4 --watchers=100 --total=$(( requests / 20 ))
  done
  # Memory after loading keys (32 B keys, 256 B values), per member, on top
  # of the history the request rows above wrote: the same for both servers,
  # since each row writes a fixed count (the sweep below runs for a fixed
  # time, so a faster server would write more history there).
  "$bench" --endpoints="$endpoints" --workload=put --clients=64 --connections=8 --total="$keys" \
    --sequential-keys=true --key-space="$keys" --key-size=32 --value-size=256 --target=leader >/dev/null
  # Once the members are idle (no snapshot child, no snapshot being
  # written), as growth-bench measures: the memory the keys hold, not a
  # snapshot's copies caught in flight (docs/benchmarks.md has those peaks).
  wait_idle
  memory[$server]=$(( $(settled_rss_kib) / 3 ))
  echo "  resident memory per member after $keys keys: $(( memory[$server] / 1024 )) MiB"
  # Throughput against concurrency, for the chart.
  for clients in "${sweep[@]}"; do
    run "$server" "put, sweep $clients" --workload=put --clients="$clients" \
      --connections=$(( clients < 16 ? clients : 16 )) --duration="$sweep_duration" --target=leader
  done
  kill_cluster
done

# One row per workload and load generator (etcd-go-bench's rows say so).
rows=()
for loadgen in "${loadgens[@]}"; do
  for row in "put, 64 clients" "put, 256 clients" "range (linearizable)" "range (serializable)" \
             "txn (compare-and-put)" "watch delivery"; do
    if [ "$loadgen" == etc-bench ]; then rows+=("$row"); else rows+=("$loadgen: $row"); fi
  done
done
table="| workload | etcd ops/s | etc ops/s | ratio | etcd p99 ms | etc p99 ms | ratio | etcd CPU µs/req | etc CPU µs/req | ratio | etcd switches/req | etc switches/req |
|---|---|---|---|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  e="${result[etcd/$row]}"; c="${result[etc/$row]}"
  et=$(field throughput "$e"); ct=$(field throughput "$c"); ep=$(field p99_ms "$e"); cp=$(field p99_ms "$c")
  table+=$'\n'"$(python3 -c 'import sys; et,ct,ep,cp,eu,cu=map(float,sys.argv[2:8]); print("| %s | %.0f | %.0f | %.2fx | %.2f | %.2f | %.2fx | %.0f | %.0f | %.2fx | %s | %s |" % (sys.argv[1],et,ct,ct/et if et else 0,ep,cp,cp/ep if ep else 0,eu,cu,cu/eu if eu else 0,sys.argv[8],sys.argv[9]))' "$row" "$et" "$ct" "$ep" "$cp" "${cpu_us[etcd/$row]}" "${cpu_us[etc/$row]}" "${switches[etcd/$row]}" "${switches[etc/$row]}")"
done
table+=$'\n'"$(python3 -c 'import sys; e,c=map(int,sys.argv[1:3]); print("| resident memory per member, %s keys | %d MiB | %d MiB | %.2fx | | | | | | | | |" % (sys.argv[3], e//1024, c//1024, c/e if e else 0))' "${memory[etcd]}" "${memory[etc]}" "$keys")"
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
  echo "Requests per row: $requests (watch: $(( requests / 20 )) writes to 100 watchers). Load generators of the request rows: ${loadgens[*]} (etcd-go-bench is built on etcd's own Go client; its rows name it); the put sweep and the memory load use etc-bench."
  echo
  echo "$table"
  echo
  echo "CPU µs/req: user and system CPU of the three members together over the run and until they are idle after it (etc's snapshot of the row's writes included; each row starts on idle members), per request: what the servers would spend per request on any machine, whatever the load generator beside them costs. Switches/req: voluntary and involuntary context switches of the three members' threads together, per request (watch: per event delivered). Requests that failed: ${errors:-none}."
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
