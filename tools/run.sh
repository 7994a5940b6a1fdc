#!/usr/bin/env bash
# Quick start, first command: installs what is missing, builds the etc
# server, and runs a local cluster on loopback in the foreground until
# Ctrl-C, which stops every member cleanly (they finish in-flight requests
# and flush). Data is kept in ./etc-data (set ETC_DATA to move it), so a
# second run brings the same cluster back.
#
#   tools/run.sh                 # three members: clients on 2379, 22379, 32379
#   tools/run.sh --members=1     # one member on 2379
#   tools/run.sh --check         # start, write and read through every member
#                                # with etcdctl, stop cleanly (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
members=3
check=false
for arg in "$@"; do
  case "$arg" in
    --members=1) members=1 ;;
    --members=3) members=3 ;;
    --check) check=true ;;
    *) echo "usage: tools/run.sh [--members=1|3] [--check]" >&2; exit 2 ;;
  esac
done
tools/setup.sh
bazel build --config=opt //server:etc
binary="$(bazel info --config=opt bazel-bin)/server/etc"

data="${ETC_DATA:-$PWD/etc-data}"
if $check; then data="$(mktemp -d)/etc-data"; fi
mkdir -p "$data"
client_port=(0 2379 22379 32379)
peer_port=(0 2380 22380 32380)
cluster=""
for i in $(seq 1 "$members"); do
  cluster+="${cluster:+,}m$i=http://127.0.0.1:${peer_port[$i]}"
done
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'echo; echo "stopping the cluster..."; stop; echo "stopped; data kept in $data"; exit 0' INT TERM
for i in $(seq 1 "$members"); do
  "$binary" --name "m$i" --data-dir "$data/m$i" \
    --listen-client-urls "http://127.0.0.1:${client_port[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${client_port[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${peer_port[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${peer_port[$i]}" \
    --initial-cluster "$cluster" --initial-cluster-state new --enable-v2 2>>"$data/m$i.log" &
  pids+=("$!")
done
endpoints=""
for i in $(seq 1 "$members"); do endpoints+="${endpoints:+,}127.0.0.1:${client_port[$i]}"; done
healthy=false
for _ in $(seq 1 100); do
  if etcdctl --endpoints="$endpoints" endpoint health >/dev/null 2>&1; then healthy=true; break; fi
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a member failed to start; its log:" >&2; tail -5 "$data"/m*.log >&2; stop; exit 1
    fi
  done
  sleep 0.1
done
if ! $healthy; then echo "the cluster did not become healthy:" >&2; tail -5 "$data"/m*.log >&2; stop; exit 1; fi

if $check; then
  failed=0
  for i in $(seq 1 "$members"); do
    e="127.0.0.1:${client_port[$i]}"
    [ "$(etcdctl --endpoints="$e" put "/quickstart/m$i" "hello from m$i" 2>&1)" == "OK" ] || failed=1
  done
  for i in $(seq 1 "$members"); do
    e="127.0.0.1:${client_port[$i]}"
    got=$(etcdctl --endpoints="$e" get /quickstart/ --prefix --keys-only 2>&1 | grep -c .)
    [ "$got" == "$members" ] || failed=1
  done
  [ "$(etcdctl --endpoints="$endpoints" member list 2>/dev/null | grep -c started)" == "$members" ] || failed=1
  # The same keys as a tree, through etcd's v2 API on the last member.
  listing=$(curl -s "http://127.0.0.1:${client_port[$members]}/v2/keys/quickstart?sorted=true&quorum=true")
  [ "$(grep -o '"key":"/quickstart/m[0-9]"' <<<"$listing" | grep -c .)" == "$members" ] || failed=1
  stop
  if [ "$failed" -ne 0 ]; then echo "run.sh --check: FAILED (logs in $data)"; exit 1; fi
  echo "run.sh --check: a $members-member cluster started, served writes and reads on every member (v3, and a v2 listing), and stopped cleanly"
  exit 0
fi

cat <<BANNER

  etc is running: a $members-member cluster on loopback (data in $data).

    export ETCDCTL_API=3 ENDPOINTS=$endpoints
    etcdctl --endpoints=\$ENDPOINTS put /greeting hello
    etcdctl --endpoints=\$ENDPOINTS get /greeting
    etcdctl --endpoints=\$ENDPOINTS member list -w table
    curl -s 'http://127.0.0.1:2379/v2/keys/?recursive=true'   # the same keys as a tree (etcd's v2 API)
    curl -s http://127.0.0.1:2379/metrics | head

  Logs: $data/m*.log.  Ctrl-C stops every member cleanly.

BANNER
wait
