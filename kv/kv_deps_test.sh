#!/usr/bin/env bash
# Fails if //kv:store depends (transitively) on anything but Abseil,
# Protobuf, OpenSSL's libcrypto (password hashing), base/ and its own
# packages: never Raft, gRPC, the member glue, the simulator or the server.
set -euo pipefail
deps_file="$1"
forbidden='^(@system//:grpc|//raft|//member|//server|//sim|//client|//tests)'
if grep -E "$forbidden" "$deps_file"; then
  echo "FAIL: //kv:store depends on the targets above" >&2
  exit 1
fi
bad_system=$(grep -E '^@system//:' "$deps_file" |
  grep -vE '^@system//:(absl_[a-z_]+|protobuf|libcrypto)$' || true)
if [ -n "$bad_system" ]; then
  echo "FAIL: //kv:store links system libraries other than Abseil, Protobuf and libcrypto:" >&2
  echo "$bad_system" >&2
  exit 1
fi
grep -q '^//kv:store$' "$deps_file" || { echo "FAIL: empty dependency list" >&2; exit 1; }
echo "ok: $(grep -c . "$deps_file") targets checked"
