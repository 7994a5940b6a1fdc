#!/usr/bin/env bash
# etc-bench smoke test: every workload against one etc member (and, as the
# referee, etcd), a few hundred requests each; each must report requests
# done, no errors, and a well-formed JSON line.
#   bench_test.sh <etc-bench> <server binary>
set -uo pipefail
bench="$1"; server="$2"
work="${TEST_TMPDIR:-$(mktemp -d)}/bench-$$"
mkdir -p "$work"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
client=$(port); peer=$(port)
"$server" --name b --data-dir "$work/data" \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "b=http://127.0.0.1:$peer" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do etcdctl --endpoints="127.0.0.1:$client" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
failures=0
for workload in put range txn watch lease-keepalive mixed; do
  line=$("$bench" --endpoints="127.0.0.1:$client" --workload=$workload --clients=4 --connections=2 \
           --total=200 --key-space=50 --watchers=5 --target=leader | grep '^{"workload"')
  verdict=$(python3 -c 'import json,sys
r = json.loads(sys.argv[1])
print("ok" if r["ok"] > 0 and r["errors"] == 0 and r["p50_ms"] > 0 and r["throughput"] > 0 else "bad")' "$line" 2>/dev/null)
  if [ "$verdict" == "ok" ]; then echo "ok   $workload: $line"; else echo "FAIL $workload: $line"; failures=$((failures + 1)); fi
done
# A small mass expiry: every lease granted and gone, every key deleted with
# its lease, puts measured before and during it.
line=$("$bench" --endpoints="127.0.0.1:$client" --workload=lease-expiry --clients=4 --connections=2 \
         --leases=300 --lease-keys=30 --lease-ttl=6 --after=1s --duration=60s --target=leader 2>/dev/null |
       grep '^{"workload"')
verdict=$(python3 -c 'import json,sys
r = json.loads(sys.argv[1])
print("ok" if r["granted"] == 300 and r["renewed"] == 300 and r["all_gone_s"] >= 0 and r["keys_deleted"] == 30
      and r["before_puts_per_s"] > 0 and r["expiry_puts_per_s"] > 0 and r["term_first"] == r["term_last"] else "bad")' "$line" 2>/dev/null)
if [ "$verdict" == "ok" ]; then echo "ok   lease-expiry: $line"; else echo "FAIL lease-expiry: $line"; failures=$((failures + 1)); fi
# Idle connections held to the member while puts run: all opened (the HTTP
# ones answered), a new client still served, the puts unharmed.
out=$("$bench" --endpoints="127.0.0.1:$client" --workload=put --clients=4 --connections=2 --total=200 \
        --idle-silent=20 --idle-http=20 --idle-hold=0s)
verdict=$(python3 -c 'import json,sys
lines = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
opened = next(l for l in lines if "idle_opened" in l)
held = next(l for l in lines if "idle_held" in l)
put = next(l for l in lines if "workload" in l)
print("ok" if opened["silent"] == 20 and opened["http"] == 20 and opened["new_client"] == "ok"
      and held["open"] + held["closed"] == 40 and put["ok"] == 200 and put["errors"] == 0 else "bad")' "$out" 2>/dev/null)
if [ "$verdict" == "ok" ]; then echo "ok   idle connections: $(grep idle_opened <<<"$out")"; else echo "FAIL idle connections: $out"; failures=$((failures + 1)); fi
line=$("$bench" --workload=nonsense 2>&1)
if grep -q "workload: one of" <<<"$line"; then echo "ok   bad flag is a clear error"; else echo "FAIL bad flag: $line"; failures=$((failures + 1)); fi
kill -TERM $pid; wait $pid
[ "$failures" -eq 0 ] && echo "all checks passed against $server" || { echo "$failures failed"; exit 1; }
