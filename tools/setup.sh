#!/usr/bin/env bash
# Installs every Debian 12 package etc needs to build and test, idempotently.
# Run as root (or through sudo). Prints what it checks, what it installs and
# what failed; exits non-zero if anything is still missing afterwards.
set -euo pipefail

# Build: Bazel and the C++ libraries (see ../shared/docs/build.md).
BUILD_PACKAGES=(
  bazel-bootstrap bazel-rules-java default-jdk-headless g++ pkg-config
  libabsl-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev googletest libbenchmark-dev librapidcheck-dev libssl-dev
)

# Tests: stock etcdctl 3.4 drives the server end to end, and Debian's etcd
# 3.4 is the referee the same tests run against; Debian's Python clients
# (python3-etcd3 for gRPC, python3-etcd for the v2 API, python3-etcd3gw and
# curl for the JSON gateway) are clients of their own; tmux is the terminal
# in which a test uses etcctl as a person would; Go and etcd's Go client
# sources build etcd-go-bench, the side-by-side benchmark's second load
# generator (tools/etcd-go-bench.sh).
TEST_PACKAGES=(etcd-client etcd-server python3 python3-etcd3 python3-etcd python3-etcd3gw
               python3-requests curl openssl tmux golang-go golang-etcd-server-dev)

missing=()
for package in "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    continue
  fi
  missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all $(( ${#BUILD_PACKAGES[@]} + ${#TEST_PACKAGES[@]} )) packages already installed"
  exit 0
fi

echo "setup: installing ${#missing[@]} missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    SUDO=sudo
  else
    echo "setup: error: must run as root to install packages (no sudo available)" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -q; then
  echo "setup: error: apt-get update failed; is Debian's archive reachable?" >&2
  exit 1
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  echo "setup: error: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi

still_missing=()
for package in "${missing[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    still_missing+=("$package")
  fi
done
if [ ${#still_missing[@]} -ne 0 ]; then
  echo "setup: error: still missing after install: ${still_missing[*]}" >&2
  exit 1
fi
echo "setup: done"
