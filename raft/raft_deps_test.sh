#!/usr/bin/env bash
# Fails if //raft depends (transitively) on anything but Abseil, Protobuf,
# the C++ toolchain and its own packages.
set -euo pipefail
deps_file="$1"
forbidden='^(@system//:grpc|//server|//sim|//kv|//client|//tests)'
if grep -E "$forbidden" "$deps_file"; then
  echo "FAIL: //raft depends on the targets above" >&2
  exit 1
fi
# Every system library it links must be Abseil or Protobuf.
bad_system=$(grep -E '^@system//:' "$deps_file" | grep -vE '^@system//:(absl_[a-z_]+|protobuf)$' || true)
if [ -n "$bad_system" ]; then
  echo "FAIL: //raft links system libraries other than Abseil and Protobuf:" >&2
  echo "$bad_system" >&2
  exit 1
fi
# And it must actually have been given the dependency list.
grep -q '^//raft:raft$' "$deps_file" || { echo "FAIL: empty dependency list" >&2; exit 1; }
echo "ok: $(grep -c . "$deps_file") targets checked"
