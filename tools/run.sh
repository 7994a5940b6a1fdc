#!/usr/bin/env bash
# Quick start, first command: installs what is missing, then runs the main
# job. For now that is the Raft demo: a three-member cluster in one process
# that elects a leader, replicates writes, loses its leader and recovers.
# Extra arguments go to the demo (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel run --config=opt //sim:raft_demo -- "$@"
