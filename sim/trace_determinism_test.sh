#!/usr/bin/env bash
# Same seed, same binary, separate processes: byte-identical event trace
# (everything but the summary line, which reports wall-clock time).
set -euo pipefail
sim=sim/etc-sim
for seed in 7 99; do
  first=$("$sim" --seed=$seed --trace | grep -v '^seeds=' | sha256sum)
  second=$("$sim" --seed=$seed --trace | grep -v '^seeds=' | sha256sum)
  if [ "$first" != "$second" ]; then
    echo "FAIL: seed $seed traced differently in two runs" >&2
    exit 1
  fi
  lines=$("$sim" --seed=$seed --trace | wc -l)
  [ "$lines" -gt 1000 ] || { echo "FAIL: suspiciously short trace ($lines lines)" >&2; exit 1; }
done
echo "ok: identical traces"

# Seeds on threads (--jobs) give each seed's own results, printed in seed
# order: the same lines, trace hashes included, as one job prints.
one_job=$("$sim" --seeds=1:6 --summaries --progress=false --jobs=1 | grep -v '^seeds=')
two_jobs=$("$sim" --seeds=1:6 --summaries --progress=false --jobs=2 | grep -v '^seeds=')
hashes=$(grep -c ', trace [0-9a-f]\{16\}$' <<<"$one_job")
[ "$hashes" -eq 6 ] || { echo "FAIL: expected 6 seed summaries, got $hashes" >&2; exit 1; }
if [ "$one_job" != "$two_jobs" ]; then
  echo "FAIL: --jobs=2 printed differently from --jobs=1:" >&2
  diff <(echo "$one_job") <(echo "$two_jobs") >&2 || true
  exit 1
fi
echo "ok: --jobs=2 prints what --jobs=1 prints"
