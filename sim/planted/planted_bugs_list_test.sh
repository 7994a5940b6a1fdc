#!/usr/bin/env bash
# The bugs built in sim/planted/BUILD.bazel are exactly the catalog's
# simulator bugs.
set -euo pipefail
expected=$(python3 tools/planted_bugs.py simulator-bugs | sort)
actual=$(printf '%s\n' "$@" | sort)
if [ "$expected" != "$actual" ]; then
  echo "sim/planted/BUILD.bazel SIMULATOR_BUGS and tools/planted_bugs.py disagree:"
  diff <(echo "$expected") <(echo "$actual")
  exit 1
fi
echo "ok: $(echo "$actual" | wc -l) planted simulator bugs"
