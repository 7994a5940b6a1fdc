#!/usr/bin/env bash
# End to end with stock etcdctl 3.4: starts a three-member cluster on free
# loopback ports and drives it (through member 1, whichever member leads)
# the way users and scripts do. The same script runs against
# etc and against Debian's etcd 3.4 (--server=etcd): that is how we know it
# expects etcd's behaviour, not ours.
#
#   e2e_test.sh <etc binary>            # etc
#   e2e_test.sh /usr/bin/etcd           # the referee
set -uo pipefail
server="$1"
source "$(dirname "$0")/e2e_lib.sh"
work=$(e2e_workdir e2e)
need_etcdctl

declare -a clients peers pids
for i in 1 2 3; do clients[$i]=$(free_port); peers[$i]=$(free_port); done
client=${clients[1]}
peer=${peers[1]}
cluster="e2e1=http://127.0.0.1:${peers[1]},e2e2=http://127.0.0.1:${peers[2]},e2e3=http://127.0.0.1:${peers[3]}"
export ETCDCTL_API=3
# The client library logs its retries on stderr; the checks read stdout and
# etcdctl's own "Error:" lines.
etcdctl_() { etcdctl --endpoints="127.0.0.1:$client" --command-timeout=10s "$@" 2>&1 | grep -v '"level":"warn"'; }
E=etcdctl_
pids=()

start() {
  pids=()
  for i in 1 2 3; do
    "$server" --name "e2e$i" --data-dir "$work/data$i" \
      --listen-client-urls "http://127.0.0.1:${clients[$i]}" --advertise-client-urls "http://127.0.0.1:${clients[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${peers[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${peers[$i]}" \
      --initial-cluster "$cluster" >>"$work/server$i.log" 2>&1 &
    pids+=("$!")
  done
  local all="127.0.0.1:${clients[1]},127.0.0.1:${clients[2]},127.0.0.1:${clients[3]}"
  # Bounded by the clock, not by a count of tries: a try against a member
  # that is not up yet can take its whole dial timeout.
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    etcdctl --endpoints="$all" --dial-timeout=1s --command-timeout=2s endpoint health >/dev/null 2>&1 && return 0
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null && continue
      echo "a member exited while the cluster started:"; tail -20 "$work"/server*.log; exit 1
    done
    sleep 0.1
  done
  echo "the cluster did not become healthy within 60 s:"; tail -20 "$work"/server*.log; exit 1
}
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  pids=()
}
trap 'for p in "${pids[@]}"; do kill -9 $p 2>/dev/null; done' EXIT

failures=0

start

# ---- put / get with options ----
check "put" "OK" "$($E put /app/a 1 2>&1)"
$E put /app/b 2 >/dev/null; $E put /app/c/d 3 >/dev/null; $E put /other x >/dev/null
check "get" $'/app/a\n1' "$($E get /app/a 2>&1)"
check "get --print-value-only" "1" "$($E get /app/a --print-value-only 2>&1)"
check "get --prefix --keys-only" $'/app/a\n/app/b\n/app/c/d' "$($E get /app/ --prefix --keys-only 2>&1 | grep .)"
check "get range [a, c)" $'/app/a\n/app/b' "$($E get /app/a /app/c --keys-only 2>&1 | grep .)"
check "get --limit" $'/app/a\n1' "$($E get /app/ --prefix --limit=1 2>&1)"
check "get -w fields count" "3" "$($E get /app/ --prefix --limit=1 -w fields 2>&1 | sed -n 's/^"Count" : //p')"
check "get -w fields more" "true" "$($E get /app/ --prefix --limit=1 -w fields 2>&1 | sed -n 's/^"More" : //p')"
check "get --sort-by=key --order=DESCEND" $'/app/c/d\n/app/b\n/app/a' \
  "$($E get /app/ --prefix --keys-only --sort-by=KEY --order=DESCEND 2>&1 | grep .)"
check "get --from-key" $'/app/c/d\n/other' "$($E get /app/c --from-key --keys-only 2>&1 | grep .)"
rev=$($E get /app/a -w fields 2>&1 | sed -n 's/^"Revision" : //p')
$E put /app/a 1b >/dev/null
check "get --rev (history)" "1" "$($E get /app/a --rev="$rev" --print-value-only 2>&1)"
check "put --prev-kv" $'OK\n/app/a\n1b' "$($E put /app/a 1c --prev-kv 2>&1)"
check "put --ignore-value" "OK" "$($E put /app/a --ignore-value 2>&1)"
check "value kept by --ignore-value" "1c" "$($E get /app/a --print-value-only 2>&1)"
check "put --ignore-value on a missing key" "Error: etcdserver: key not found" \
  "$($E put /missing --ignore-value 2>&1)"
check "version counts puts" "4" "$($E get /app/a -w fields 2>&1 | sed -n 's/^"Version" : //p')"

# ---- delete ----
check "del" "1" "$($E del /other 2>&1)"
check "del range --prev-kv" $'2\n/app/b\n2\n/app/c/d\n3' "$($E del /app/b /app/d --prev-kv 2>&1)"
check "get after del" "" "$($E get /app/b 2>&1)"

# ---- txn ----
txn_out=$(printf 'value("/app/a") = "1c"\n\nput /txn yes\n\nput /txn no\n\n' | $E txn 2>&1)
check "txn success branch" $'SUCCESS\n\nOK' "$txn_out"
check "txn result" "yes" "$($E get /txn --print-value-only 2>&1)"
txn_out=$(printf 'mod("/app/a") = "0"\n\nput /txn yes\n\nput /txn no\n\n' | $E txn 2>&1)
check "txn failure branch" $'FAILURE\n\nOK' "$txn_out"
check "txn failure result" "no" "$($E get /txn --print-value-only 2>&1)"

# ---- watch ----
timeout 4 etcdctl --endpoints="127.0.0.1:$client" watch /w --prefix >"$work/watch.out" 2>/dev/null &
watcher=$!
sleep 0.7
$E put /w/1 a >/dev/null; $E put /w/2 b >/dev/null; $E del /w/1 >/dev/null
wait $watcher 2>/dev/null
check "watch --prefix" $'PUT\n/w/1\na\nPUT\n/w/2\nb\nDELETE\n/w/1' "$(cat "$work/watch.out")"
wrev=$($E get /w/2 -w fields 2>&1 | sed -n 's/^"ModRevision" : //p')
check "watch --rev (history) --prev-kv" $'PUT\n/w/2\nb\nDELETE\n/w/1\na\n/w/1' \
  "$(timeout 2 etcdctl --endpoints="127.0.0.1:$client" watch /w --prefix --rev="$wrev" --prev-kv 2>/dev/null)"

# ---- leases ----
lease=$($E lease grant 60 2>&1 | awk '{print $2}')
check "lease grant" "60" "$($E lease timetolive "$lease" -w fields 2>&1 | sed -n 's/^"GrantedTTL" : //p')"
$E put /leased v --lease="$lease" >/dev/null
check "lease timetolive --keys" "[/leased]" "$($E lease timetolive "$lease" --keys 2>&1 | sed 's/.*attached keys(\(.*\))/\1/')"
check "lease list" "yes" "$($E lease list 2>&1 | grep -q "$lease" && echo yes)"
check "lease keep-alive" "lease $lease keepalived with TTL(60)" "$(timeout 2 etcdctl --endpoints="127.0.0.1:$client" lease keep-alive "$lease" 2>/dev/null | head -1)"
check "lease revoke" "lease $lease revoked" "$($E lease revoke "$lease" 2>&1)"
check "revoke deleted the key" "" "$($E get /leased 2>&1)"
short=$($E lease grant 2 2>&1 | awk '{print $2}')
$E put /short v --lease="$short" >/dev/null
sleep 4.5
check "lease expiry deletes the key" "" "$($E get /short 2>&1)"
check "expired lease" "lease $short already expired" "$($E lease timetolive "$short" 2>&1)"
check "unknown lease" "Error: failed to revoke lease (etcdserver: requested lease not found)" "$($E lease revoke 1234 2>&1)"

# ---- compaction ----
crev=$($E get /app/a -w fields 2>&1 | sed -n 's/^"Revision" : //p')
check "compaction" "compacted revision $crev" "$($E compaction "$crev" 2>&1)"
check "read below the compaction" "Error: etcdserver: mvcc: required revision has been compacted" \
  "$($E get /app/a --rev=2 2>&1 | grep Error)"

# ---- maintenance and cluster ----
check "endpoint health" "yes" "$($E endpoint health 2>&1 | grep -q 'is healthy' && echo yes)"
status=$($E endpoint status -w fields 2>&1)
status2=$(etcdctl --endpoints="127.0.0.1:${clients[2]}" endpoint status -w fields 2>/dev/null)
leader_id=$(sed -n 's/^"Leader" : //p' <<<"$status")
check "endpoint status: members agree on a leader" "yes" \
  "$([ -n "$leader_id" ] && [ "$leader_id" != 0 ] && [ "$leader_id" == "$(sed -n 's/^"Leader" : //p' <<<"$status2")" ] && echo yes)"
check "endpoint status: version" '"3.4.23"' "$(sed -n 's/^"Version" : //p' <<<"$status")"
check "endpoint hashkv" "yes" "$($E endpoint hashkv 2>&1 | grep -q "127.0.0.1:$client, [0-9]" && echo yes)"
check "alarm list (none)" "" "$($E alarm list 2>&1)"
check "defrag" "yes" "$($E defrag 2>&1 | grep -q 'Finished defragmenting' && echo yes)"
expected_members=""
for i in 1 2 3; do expected_members+="e2e$i, http://127.0.0.1:${peers[$i]}, http://127.0.0.1:${clients[$i]}, false"$'\n'; done
check "member list" "${expected_members%$'\n'}" "$($E member list 2>&1 | cut -d, -f3- | sed 's/^ //' | sort)"

# ---- lock and election (etcdctl's recipes over leases, txns and watches) ----
etcdctl --endpoints="127.0.0.1:$client" lock /locks/l -- sh -c 'echo A-in; sleep 1.5; echo A-out' \
  >"$work/lock-a.out" 2>&1 &
holder=$!
sleep 0.5
etcdctl --endpoints="127.0.0.1:$client" lock /locks/l -- sh -c 'echo B-in' >"$work/lock-b.out" 2>&1
wait $holder
check "lock: mutual exclusion" $'A-in\nA-out\nB-in' "$(cat "$work/lock-a.out" "$work/lock-b.out")"
timeout 3 etcdctl --endpoints="127.0.0.1:$client" elect /elections/e candidate-1 >/dev/null 2>&1 &
elector=$!
sleep 0.7
check "elect: the leader is observed" "candidate-1" \
  "$(timeout 2 etcdctl --endpoints="127.0.0.1:$client" elect -l /elections/e 2>/dev/null | sed -n 2p)"
wait $elector

# ---- auth: users, roles, permissions on a prefix, denial ----
check "user add root" "User root created" "$($E user add root:rootpw 2>&1)"
check "grant root" "Role root is granted to user root" "$($E user grant-role root root 2>&1)"
check "role add" "Role app created" "$($E role add app 2>&1)"
check "grant a prefix" "Role app updated" "$($E role grant-permission app readwrite /app/ --prefix=true 2>&1)"
check "user add alice" "User alice created" "$($E user add alice:apw 2>&1)"
check "grant app" "Role app is granted to user alice" "$($E user grant-role alice app 2>&1)"
check "auth enable" "Authentication Enabled" "$($E auth enable 2>&1)"
check "no user" "Error: etcdserver: user name is empty" "$($E put /app/x 1 2>&1)"
check "allowed write" "OK" "$($E --user alice:apw put /app/x 1 2>&1)"
check "allowed read" "1" "$($E --user alice:apw get /app/x --print-value-only 2>&1)"
check "denied write" "Error: etcdserver: permission denied" "$($E --user alice:apw put /other 1 2>&1)"
check "wrong password" "Error: etcdserver: authentication failed, invalid user ID or password" \
  "$($E --user alice:nope get /app/x 2>&1)"
check "admin only" "Error: etcdserver: permission denied" "$($E --user alice:apw user list 2>&1)"
check "root lists users" $'alice\nroot' "$($E --user root:rootpw user list 2>&1)"
check "auth disable" "Authentication Disabled" "$($E --user root:rootpw auth disable 2>&1)"
check "open again" "OK" "$($E put /app/y 1 2>&1)"

# ---- HTTP on the client port: /health, /version, /metrics, JSON gateway ----
http() {  # http <GET|POST> <path> [json body] -> "<status> <body>"
  python3 - "$client" "$@" <<'PY'
import sys, urllib.request, urllib.error
port, method, path = sys.argv[1], sys.argv[2], sys.argv[3]
data = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
PY
}
check "GET /health" '200 {"health":"true"}' "$(http GET /health)"
check "GET /version" "yes" "$(http GET /version | grep -q '^200 {"etcdserver":"3.4.[0-9]*","etcdcluster":"3.4.0"}' && echo yes)"
metrics=$(http GET /metrics)
check "/metrics: has a leader" "etcd_server_has_leader 1" "$(grep -x 'etcd_server_has_leader 1' <<<"$metrics")"
check "/metrics: counts gRPC calls" "yes" \
  "$(grep -q '^grpc_server_handled_total{.*grpc_method="Put".*} [1-9]' <<<"$metrics" && echo yes)"
check "/metrics: WAL fsync latency" "yes" \
  "$(grep -q '^etcd_disk_wal_fsync_duration_seconds_count [1-9]' <<<"$metrics" && echo yes)"
# {"key":"/gw","value":"json"} in base64, as the gateway takes bytes.
check "gateway put" "200" "$(http POST /v3/kv/put '{"key":"L2d3","value":"anNvbg=="}' | cut -d' ' -f1)"
check "gateway range" "yes" \
  "$(http POST /v3/kv/range '{"key":"L2d3"}' | grep -q '^200 .*"kvs":\[{"key":"L2d3",.*"value":"anNvbg=="' && echo yes)"
check "etcdctl reads the gateway's write" "json" "$($E get /gw --print-value-only)"
check "gateway error" "yes" \
  "$(http POST /v3/kv/put '{"key":"","value":"eA=="}' | grep -q '^400 .*"message":"etcdserver: key is not provided"' && echo yes)"
check "gateway unknown path" "404" "$(http POST /v3/nothing '{}' | cut -d' ' -f1)"

# ---- v3lock and v3election services (through the JSON gateway) ----
b64() { printf '%s' "$1" | base64 -w0; }
json_field() {  # json_field <field> <"status body"> -> the field's value
  python3 -c 'import json,sys; b=sys.argv[2].split(" ",1)[1]; v=json.loads(b)
for k in sys.argv[1].split("."): v=v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1" "$2"
}
lease1=$((16#$($E lease grant 60 | awk '{print $2}')))
lease2=$((16#$($E lease grant 60 | awk '{print $2}')))
locked=$(http POST /v3/lock/lock "{\"name\":\"$(b64 mylock)\",\"lease\":\"$lease1\"}")
key1=$(json_field key "$locked" | base64 -d)
check "lock: the holder's key is name/lease" "mylock/$(printf %x "$lease1")" "$key1"
http POST /v3/lock/lock "{\"name\":\"$(b64 mylock)\",\"lease\":\"$lease2\"}" >"$work/lock2" &
waiter=$!
sleep 1
check "lock: a second locker waits" "" "$(cat "$work/lock2")"
check "unlock" "200" "$(http POST /v3/lock/unlock "{\"key\":\"$(b64 "$key1")\"}" | cut -d' ' -f1)"
wait "$waiter"
check "lock: the waiter gets it after the unlock" "mylock/$(printf %x "$lease2")" \
  "$(json_field key "$(cat "$work/lock2")" | base64 -d)"
campaign=$(http POST /v3/election/campaign \
  "{\"name\":\"$(b64 myelection)\",\"lease\":\"$lease1\",\"value\":\"$(b64 first)\"}")
check "campaign: elected" "myelection/$(printf %x "$lease1")" \
  "$(json_field leader.key "$campaign" | base64 -d)"
rev=$(json_field leader.rev "$campaign")
leader_key="{\"name\":\"$(b64 myelection)\",\"key\":\"$(json_field leader.key "$campaign")\",\"rev\":\"$rev\",\"lease\":\"$lease1\"}"
check "election leader" "first" \
  "$(json_field kv.value "$(http POST /v3/election/leader "{\"name\":\"$(b64 myelection)\"}")" | base64 -d)"
check "proclaim" "200" \
  "$(http POST /v3/election/proclaim "{\"leader\":$leader_key,\"value\":\"$(b64 second)\"}" | cut -d' ' -f1)"
check "the leader's new value" "second" \
  "$(json_field kv.value "$(http POST /v3/election/leader "{\"name\":\"$(b64 myelection)\"}")" | base64 -d)"
check "resign" "200" "$(http POST /v3/election/resign "{\"leader\":$leader_key}" | cut -d' ' -f1)"
check "no leader after resigning" "yes" \
  "$(http POST /v3/election/leader "{\"name\":\"$(b64 myelection)\"}" | grep -q 'election: no leader' && echo yes)"
check "proclaim by a non-leader fails" "yes" \
  "$(http POST /v3/election/proclaim "{\"leader\":$leader_key,\"value\":\"$(b64 x)\"}" | grep -q 'election: not leader' && echo yes)"

# ---- restart: everything acknowledged is still there ----
$E put /durable yes >/dev/null
stop
start
check "restart keeps data" "yes" "$($E get /durable --print-value-only 2>&1)"

# ---- snapshot save, and a new cluster restored from it ----
check "snapshot save" "Snapshot saved at $work/backup.db" \
  "$(etcdctl --endpoints="127.0.0.1:$client" snapshot save "$work/backup.db" 2>/dev/null)"
stop
rclient=$(free_port); rpeer=$(free_port)
restore_flags=(--name restored --data-dir "$work/restored" --initial-cluster "restored=http://127.0.0.1:$rpeer"
               --initial-advertise-peer-urls "http://127.0.0.1:$rpeer")
# The one step that differs: etcd's data files are restored by etcdctl,
# etc's by etc itself.
if [ "$(basename "$server")" == "etcd" ]; then
  etcdctl snapshot restore "$work/backup.db" "${restore_flags[@]}" >>"$work/server-restored.log" 2>&1
else
  "$server" snapshot restore "$work/backup.db" "${restore_flags[@]}" >>"$work/server-restored.log" 2>&1
fi
check "snapshot restore" "0" "$?"
"$server" "${restore_flags[@]}" --listen-client-urls "http://127.0.0.1:$rclient" \
  --advertise-client-urls "http://127.0.0.1:$rclient" --listen-peer-urls "http://127.0.0.1:$rpeer" \
  >>"$work/server-restored.log" 2>&1 &
pids=("$!")
restored=""
for _ in $(seq 1 100); do
  restored=$(etcdctl --endpoints="127.0.0.1:$rclient" get /durable --print-value-only 2>/dev/null)
  [ -n "$restored" ] && break
  sleep 0.1
done
check "the restored member has the data" "yes" "$restored"
check "the restored member takes writes" "OK" \
  "$(etcdctl --endpoints="127.0.0.1:$rclient" put /after-restore 1 2>&1)"
# Told to stop while a lock waits: the member stops cleanly (etc once
# crashed there, cleaning up the waiter's key over a server shutting down).
client=$rclient
lease_a=$((16#$($E lease grant 60 | awk '{print $2}')))
lease_b=$((16#$($E lease grant 60 | awk '{print $2}')))
http POST /v3/lock/lock "{\"name\":\"$(b64 stoplock)\",\"lease\":\"$lease_a\"}" >/dev/null
http POST /v3/lock/lock "{\"name\":\"$(b64 stoplock)\",\"lease\":\"$lease_b\"}" >/dev/null 2>&1 &
sleep 0.5
kill -TERM "${pids[0]}"
wait "${pids[0]}"
status=$?
# etc exits 0; etcd 3.4 ends by its own SIGTERM (143). Either, not a crash.
check "a member with a waiting lock stops without crashing" "stopped" \
  "$([ "$status" -eq 0 ] || [ "$status" -eq 143 ] && echo stopped || echo "exit status $status")"
pids=()
stop
printf 'garbage' >"$work/bad.db"
if [ "$(basename "$server")" != "etcd" ]; then
  check "restoring a damaged file fails" "1" \
    "$("$server" snapshot restore "$work/bad.db" --data-dir "$work/bad" >/dev/null 2>&1; echo $?)"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed against $server"; tail -5 "$work"/server*.log; exit 1
fi
echo "all checks passed against $server"
