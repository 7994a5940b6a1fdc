#!/usr/bin/env bash
# Installs what is missing, then runs the deterministic cluster simulator
# over seeds 1..200 (each seed a
# cluster of 1-7 members under its own mix of network, process, clock and
# disk faults, checked for safety, linearizability and liveness). Exits
# non-zero if any seed fails; a failure prints the command that replays it.
# Arguments replace the default (try --seed=7 --trace, or --seeds=1:10000).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
if [ "$#" -eq 0 ]; then set -- --seeds=1:200; fi
bazel run --config=opt //sim:etc-sim -- "$@"
