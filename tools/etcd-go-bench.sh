#!/usr/bin/env bash
# Builds etcd-go-bench (tools/etcd-go-bench/main.go), the load generator on
# etcd's own Go client, offline: GOPATH mode over the Go sources Debian's
# golang-etcd-server-dev installs (tools/setup.sh installs it), into
# ~/.cache/etc-go-bench. Prints the binary's path; rebuilds only when the
# source changed.
#
#   bench=$(tools/etcd-go-bench.sh) && "$bench" --workload=put --total=1000
set -euo pipefail
cd "$(dirname "$0")/.."
out="${ETC_GO_BENCH_DIR:-$HOME/.cache/etc-go-bench}"
mkdir -p "$out"
binary="$out/etcd-go-bench"
if [ ! -x "$binary" ] || [ tools/etcd-go-bench/main.go -nt "$binary" ]; then
  if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]; then
    echo "etcd-go-bench: needs golang-go and golang-etcd-server-dev (run tools/setup.sh)" >&2
    exit 1
  fi
  (cd tools/etcd-go-bench &&
   GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$out/gocache" \
     go build -o "$binary.tmp" . >&2)
  mv "$binary.tmp" "$binary"
fi
echo "$binary"
