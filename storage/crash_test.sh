#!/usr/bin/env bash
# Real processes, real files: crash_writer appends and syncs batches, and is
# killed with SIGKILL at random moments, many times. After each restart,
# every batch it reported acknowledged must still be there.
set -euo pipefail
writer="$1"
rounds="${2:-30}"
dir="${TEST_TMPDIR:-$(mktemp -d)}/crash-data"
rm -rf "$dir"
acked=0
for round in $(seq 1 "$rounds"); do
  out="${TEST_TMPDIR:-/tmp}/writer.$round.out"
  "$writer" "$dir" $((1 + RANDOM % 16)) >"$out" 2>&1 &
  pid=$!
  # Wait until it has recovered (a long log takes a while to replay, more so
  # under a sanitizer), then let it write for 20-300 ms and pull the plug.
  for _ in $(seq 1 300); do
    grep -q '^recovered' "$out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  sleep "0.$(printf '%03d' $((20 + RANDOM % 280)))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  recovered=$(sed -n 's/^recovered \([0-9]*\).*/\1/p' "$out" | head -1)
  if [ -z "$recovered" ]; then
    echo "round $round: the writer did not start:"; cat "$out"; exit 1
  fi
  if [ "$recovered" -lt "$acked" ]; then
    echo "round $round: recovered only $recovered, but $acked was acknowledged before the kill"
    exit 1
  fi
  last_acked=$(sed -n 's/^acked \([0-9]*\)$/\1/p' "$out" | tail -1)
  acked=${last_acked:-$recovered}
  echo "round $round: recovered $recovered (>= previously acked), acked up to $acked, $(grep -c '^acked' "$out") batches"
done
# A final clean open sees everything acknowledged.
out="${TEST_TMPDIR:-/tmp}/writer.final.out"
"$writer" "$dir" 1 >"$out" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  grep -q '^recovered' "$out" 2>/dev/null && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
recovered=$(sed -n 's/^recovered \([0-9]*\).*/\1/p' "$out" | head -1)
[ "$recovered" -ge "$acked" ] || { echo "final: recovered $recovered < acked $acked"; exit 1; }
echo "ok: $rounds SIGKILLs, every acknowledged batch survived (last acked $acked)"
