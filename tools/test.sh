#!/usr/bin/env bash
# Quick start, second command: installs what is missing, then runs the whole
# test suite. Extra arguments go to `bazel test` (e.g. --config=asan).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel test //... "$@"
