#!/usr/bin/env bash
# Runs each planted-bug simulator over seeds 1..MAX (default 2000), stopping
# at the first seed that catches the bug, and prints which seed and checker
# caught it. Fails if any bug survives MAX seeds.
#
#   bazel run -c opt //sim:planted-bugs            # or: -- 500 for fewer seeds
set -uo pipefail
max_seeds="${1:-2000}"
# Seeds on as many threads as there are cores (at most 4): the output is the
# same as on one, in seed order.
jobs=$(nproc 2>/dev/null || echo 1)
if [ "$jobs" -gt 4 ]; then jobs=4; fi
here="$(dirname "$0")"
# Under `bazel run` and `bazel test` the binaries sit next to this script.
if [ -n "${RUNFILES_DIR:-}" ] && [ -d "$RUNFILES_DIR/etc/sim/planted" ]; then
  here="$RUNFILES_DIR/etc/sim/planted"
elif [ -d "$0.runfiles/etc/sim/planted" ]; then
  here="$0.runfiles/etc/sim/planted"
fi
bugs=$(cd "$here" && ls | grep -v -e '\.' -e '^run_planted_bugs' -e '^planted_bugs' | sort)
survivors=0
printf "%-34s %-8s %s\n" "planted bug" "seed" "caught by"
for bug in $bugs; do
  [ -x "$here/$bug" ] || continue
  output=$("$here/$bug" --seeds="1:$max_seeds" --stop_at_first_failure --jobs="$jobs" --progress=false 2>&1)
  status=$?
  line=$(grep -m1 -E '^seed [0-9]+ FAILED' <<<"$output")
  if [ $status -eq 0 ] || [ -z "$line" ]; then
    printf "%-34s %-8s %s\n" "$bug" "-" "SURVIVED $max_seeds seeds"
    survivors=$((survivors + 1))
    continue
  fi
  seed=$(sed -E 's/^seed ([0-9]+) FAILED.*/\1/' <<<"$line")
  checker=$(sed -E 's/^seed [0-9]+ FAILED: ([^:]+):.*/\1/' <<<"$line")
  printf "%-34s %-8s %s\n" "$bug" "$seed" "$checker"
done
if [ "$survivors" -ne 0 ]; then
  echo "FAIL: $survivors planted bug(s) survived $max_seeds seeds"
  exit 1
fi
echo "all planted bugs caught within $max_seeds seeds"
