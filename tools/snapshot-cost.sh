#!/usr/bin/env bash
# The CPU one snapshot costs a 3-member etc cluster: a fresh cluster takes
# <fill> puts (etc-bench's default put: 256-byte values over 100,000 keys)
# and goes idle; then 1,000 more puts cross the next multiple of the
# snapshot count (100,000 entries) and the members' CPU is counted until
# they are idle again (the forked snapshot children included). With
# <fill> 250000 the same 1,000 puts cross none: the difference is the
# snapshot's. Prints the seconds and the snapshot files of m1.
#
#   tools/snapshot-cost.sh /tmp/etc-a 299500
#   tools/snapshot-cost.sh /tmp/etc-b 299500
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ] || [ ! -x "$1" ]; then
  echo "usage: tools/snapshot-cost.sh <etc binary> <puts before>" >&2
  exit 2
fi
source tools/cluster_lib.sh
binary=$1 fill=$2
prepare_load_run >/dev/null
trap 'kill_cluster; rm -rf "$work"' EXIT
start_cluster "$binary" etc
"$bench" --endpoints="$endpoints" --workload=put --clients=64 --connections=8 --target=leader \
  --total="$fill" >/dev/null
wait_idle
before=$(cpu_ticks)
"$bench" --endpoints="$endpoints" --workload=put --clients=8 --connections=8 --target=leader \
  --total=1000 >/dev/null
wait_idle
after=$(cpu_ticks)
echo "$binary after $fill puts: 1,000 puts took $(python3 -c "print(round(($after - $before) / $(getconf CLK_TCK), 2))") s of the members' CPU; m1's snapshots: $(cd "$cluster_dir/m1/member/snap" && ls -s --block-size=M | tail -n +2 | tr '\n' ' ')"
