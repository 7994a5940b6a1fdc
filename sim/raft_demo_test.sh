#!/usr/bin/env bash
# The quick-start demo must succeed and say so.
set -euo pipefail
output=$(sim/raft_demo --writes=200 --seed=7)
echo "$output"
grep -q "applied identical logs: OK" <<<"$output"
# The same seed gives the same run.
[ "$output" == "$(sim/raft_demo --writes=200 --seed=7)" ]
