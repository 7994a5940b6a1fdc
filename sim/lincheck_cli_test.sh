#!/usr/bin/env bash
# etc-lincheck on the hand-made histories of sim/testdata/lincheck: the exit
# code of each verdict, what it prints, the HTML timeline, and usage and
# parse errors (exit 2, the line named).
set -uo pipefail
lincheck=sim/etc-lincheck
data=sim/testdata/lincheck
out="${TEST_TMPDIR:-/tmp}"
failures=0

# expect NAME WANTED_EXIT PATTERN -- ARGS...: runs etc-lincheck ARGS, wants
# the exit code and PATTERN (grep -E) in its stdout+stderr.
expect() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local output rc
  output=$("$lincheck" "$@" 2>&1)
  rc=$?
  if [[ $rc -ne $want ]] || ! grep -qE -- "$pattern" <<<"$output"; then
    echo "FAIL $name: exit $rc (want $want), output wants /$pattern/:"
    echo "$output" | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

expect linearizable 0 '^verdict: linearizable$' -- "$data/linearizable.jsonl"
expect per-key-counts 0 'key "y": 2 operations, linearizable' -- "$data/linearizable.jsonl"
expect unknown-outcomes 0 '3 ok, 3 unknown outcome\), 1 failed' -- "$data/unknown_outcomes.jsonl"
expect stale-read 1 '^verdict: NOT linearizable$' -- "$data/stale_read.jsonl" --html="$out/stale.html"
expect stale-read-excerpt 1 '!! line 5-6  process 1  time 500..600  r→v1' -- "$data/stale_read.jsonl"
expect stale-read-state 1 'leaving the key "v2"' -- "$data/stale_read.jsonl"
expect failed-write-seen 1 'NOT linearizable' -- "$data/failed_write_seen.jsonl"
expect lost-delete 1 '!! line 5-6  process 0  time 5..6  cas\(v1→v2\) ok' -- "$data/lost_delete.jsonl"
expect stdin 1 'NOT linearizable' -- - <"$data/stale_read.jsonl"
expect malformed 2 'malformed.jsonl: line 2: malformed JSON' -- "$data/malformed.jsonl"
expect missing-file 2 'cannot read' -- "$out/no-such-file.jsonl"
expect no-args 2 'usage: etc-lincheck' --
expect unknown-flag 2 "unknown flag '--frobnicate'" -- --frobnicate "$data/linearizable.jsonl"
expect bad-max-states 2 'positive integer' -- --max-states=x "$data/linearizable.jsonl"
expect help 0 'exit codes: 0 linearizable' -- --help
# A search that may not explore enough states gives up: "unknown", exit 3.
expect gave-up 3 '^verdict: unknown' -- --max-states=2 "$data/linearizable.jsonl"

if ! grep -q '<svg' "$out/stale.html" || ! grep -q 'NOT linearizable' "$out/stale.html"; then
  echo "FAIL html: $out/stale.html is not the timeline"
  failures=$((failures + 1))
fi
# A linearizable history writes no timeline.
rm -f "$out/none.html"
"$lincheck" "$data/linearizable.jsonl" --html="$out/none.html" >/dev/null
if [[ -e "$out/none.html" ]]; then
  echo "FAIL html: a linearizable history wrote a timeline"
  failures=$((failures + 1))
fi
[[ $failures -eq 0 ]] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
