#!/usr/bin/env bash
# A three-member cluster on loopback, driven with stock etcdctl 3.4: writes
# and reads through every member, leases kept alive through a follower, the
# leader killed with SIGKILL (the others elect a new one and go on), the
# killed member restarted (it catches up: every member's hash agrees). Runs
# against etc and, unchanged, against Debian's etcd 3.4.
#
#   cluster_e2e_test.sh <server binary>
set -uo pipefail
server="$1"
source "$(dirname "$0")/e2e_lib.sh"
work=$(e2e_workdir cluster)
declare -a client peer pid
for i in 1 2 3; do client[$i]=$(free_port); peer[$i]=$(free_port); done
cluster="m1=http://127.0.0.1:${peer[1]},m2=http://127.0.0.1:${peer[2]},m3=http://127.0.0.1:${peer[3]}"
all="127.0.0.1:${client[1]},127.0.0.1:${client[2]},127.0.0.1:${client[3]}"
ctl() { local i=$1; shift; etcdctl --endpoints="127.0.0.1:${client[$i]}" --command-timeout=10s "$@" 2>&1 | grep -v '"level":"warn"'; }
# A membership change, retried while etcd says the cluster is unhealthy
# (it refuses changes until every member has been connected for 5 s).
ctl_change() {
  local out
  for _ in $(seq 1 60); do
    out=$(ctl "$@")
    grep -q "unhealthy cluster" <<<"$out" || break
    sleep 0.25
  done
  echo "$out"
}

start() {
  local i=$1
  "$server" --name "m$i" --data-dir "$work/m$i" \
    --listen-client-urls "http://127.0.0.1:${client[$i]}" --advertise-client-urls "http://127.0.0.1:${client[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${peer[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${peer[$i]}" \
    --initial-cluster "$cluster" --initial-cluster-state new --snapshot-count 20 >>"$work/m$i.log" 2>&1 &
  pid[$i]=$!
}
trap 'for p in "${pid[@]}"; do kill -9 $p 2>/dev/null; done' EXIT
for i in 1 2 3; do start $i; done
for _ in $(seq 1 100); do
  etcdctl --endpoints="$all" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done

failures=0
check() {
  if [ "$2" == "$3" ]; then echo "ok   $1"; else
    echo "FAIL $1"; echo "  expected: $(printf %q "$2")"; echo "  actual:   $(printf %q "$3")"
    failures=$((failures + 1)); fi
}
# Passes if `output` contains `pattern` (shows the output if not).
check_says() {
  if grep -q -- "$2" <<<"$3"; then echo "ok   $1"; else
    echo "FAIL $1"; echo "  expected to contain: $2"; echo "  actual: $3"
    failures=$((failures + 1)); fi
}
leader_index() {
  for i in 1 2 3; do
    local status
    status=$(ctl "$i" endpoint status -w fields)
    local me lead
    me=$(sed -n 's/^"MemberID" : //p' <<<"$status"); lead=$(sed -n 's/^"Leader" : //p' <<<"$status")
    if [ -n "$me" ] && [ "$me" == "$lead" ]; then echo "$i"; return; fi
  done
}

for i in 1 2 3; do check "put through member $i" "OK" "$(ctl $i put "/k$i" "v$i")"; done
for i in 1 2 3; do
  check "linearizable read on member $i" $'/k1\n/k2\n/k3' "$(ctl $i get /k --prefix --keys-only | grep .)"
done
leader=$(leader_index)
check "one leader" "yes" "$([ -n "$leader" ] && echo yes)"
follower=$(( leader % 3 + 1 ))
lease=$(ctl "$follower" lease grant 60 | awk '{print $2}')
check "keep-alive through a follower" "lease $lease keepalived with TTL(60)" \
  "$(timeout 2 etcdctl --endpoints="127.0.0.1:${client[$follower]}" lease keep-alive "$lease" 2>/dev/null | head -1)"
check "time-to-live through a follower" "60" \
  "$(ctl "$follower" lease timetolive "$lease" -w fields | sed -n 's/^"GrantedTTL" : //p')"

# The leader dies without warning; the others go on.
kill -9 "${pid[$leader]}"
wait "${pid[$leader]}" 2>/dev/null
survivor=$follower
ok=""
for _ in $(seq 1 50); do
  out=$(ctl "$survivor" put /after-kill yes)
  if [ "$out" == "OK" ]; then ok=yes; break; fi
  sleep 0.2
done
check "writes go on after the leader is killed" "yes" "$ok"
# Enough, and large enough, that the member catches up from a snapshot of
# several megabytes (--snapshot-count 20), not from the log.
head -c 700000 /dev/zero | tr '\0' x >"$work/big"
for n in 1 2 3; do ctl "$survivor" put "/big$n" <"$work/big" >/dev/null; done
for n in $(seq 1 30); do ctl "$survivor" put "/while-down/$n" "$n" >/dev/null; done
check "the new leader is another member" "yes" "$(l=$(leader_index); [ -n "$l" ] && [ "$l" != "$leader" ] && echo yes)"

# It comes back and catches up.
start "$leader"
caught=""
for _ in $(seq 1 50); do
  if [ "$(ctl "$leader" get /after-kill --print-value-only --consistency=s)" == "yes" ]; then caught=yes; break; fi
  sleep 0.2
done
check "the restarted member catches up" "yes" "$caught"
check "it has the large values and every write" "700000 30" \
  "$(ctl "$leader" get /big3 --print-value-only --consistency=s | tr -d '\n' | wc -c) $(ctl "$leader" get /while-down/ --prefix --keys-only --consistency=s | grep -c .)"
ctl "$survivor" put /settle 1 >/dev/null
sleep 1
hashes=$(etcdctl --endpoints="$all" endpoint hashkv 2>/dev/null | awk '{print $2}' | sort -u | wc -l)
check "every member's hash agrees" "1" "$hashes"

# Every member lists every member with its client URL (published by each).
expected_list=""
for i in 1 2 3; do expected_list+="m$i http://127.0.0.1:${peer[$i]} http://127.0.0.1:${client[$i]} false"$'\n'; done
check "member list names every member's URLs" "${expected_list%$'\n'}" \
  "$(ctl "$survivor" member list | awk -F', ' '{print $3, $4, $5, $6}' | sort)"

# Leadership moves on request.
leader=$(leader_index)
target=$(( leader % 3 + 1 ))
target_id=$(ctl "$target" endpoint status -w fields | sed -n 's/^"MemberID" : //p')
target_hex=$(printf '%x' "$target_id")
out=$(ctl "$leader" move-leader "$target_hex")
check "move-leader" "yes" "$(grep -q "Leadership transferred from .* to $target_hex" <<<"$out" && echo yes)"
check "the new leader is the target" "$target" "$(leader_index)"

# A fourth member: added as a learner, started with
# --initial-cluster-state=existing, promoted, used, then removed.
client[4]=$(free_port); peer[4]=$(free_port)
add=$(ctl_change 1 member add m4 --learner --peer-urls="http://127.0.0.1:${peer[4]}")
sed 's/^/  | /' <<<"$add"
# etcdctl pads the id to 16 columns ("Member  6af348fd1a3d218 added"):
# an id with a leading zero digit has two spaces before it.
check "member add --learner" "yes" "$(grep -qE 'Member +[0-9a-f]+ added to cluster' <<<"$add" && echo yes)"
joined=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$add")
check "member add prints the cluster to join" "yes" \
  "$(grep -q "m4=http://127.0.0.1:${peer[4]}" <<<"$joined" && echo yes)"
check_says "the learner is listed before it starts" ", http://127.0.0.1:${peer[4]}, , true" \
  "$(ctl 2 member list)"
if [ -z "$joined" ]; then echo "$add"; exit 1; fi
"$server" --name m4 --data-dir "$work/m4" \
  --listen-client-urls "http://127.0.0.1:${client[4]}" --advertise-client-urls "http://127.0.0.1:${client[4]}" \
  --listen-peer-urls "http://127.0.0.1:${peer[4]}" --initial-advertise-peer-urls "http://127.0.0.1:${peer[4]}" \
  --initial-cluster "$joined" --initial-cluster-state existing >>"$work/m4.log" 2>&1 &
pid[4]=$!
caught=""
for _ in $(seq 1 100); do
  if [ "$(ctl 4 get /after-kill --print-value-only --consistency=s)" == "yes" ]; then caught=yes; break; fi
  sleep 0.2
done
check "the learner catches up" "yes" "$caught"
check_says "a learner refuses linearizable reads" 'learner' \
  "$(ctl 4 get /after-kill)"
m4_hex=$(sed -n 's/^Member  *\([0-9a-f]*\) added.*/\1/p' <<<"$add")
promoted=""
for _ in $(seq 1 50); do
  out=$(ctl_change 2 member promote "$m4_hex")
  if grep -q "promoted in cluster" <<<"$out"; then promoted=yes; break; fi
  sleep 0.2
done
check "member promote" "yes" "$promoted"
check_says "member promote of a voter fails" 'can only promote a learner member' \
  "$(ctl_change 1 member promote "$m4_hex")"
check "put through the new member" "OK" "$(ctl 4 put /via-m4 yes)"
check_says "the new member lists itself with its client URL" "m4, http://127.0.0.1:${peer[4]}, http://127.0.0.1:${client[4]}, false" \
  "$(ctl 1 member list)"
check_says "member update" "updated in cluster" \
  "$(ctl_change 3 member update "$m4_hex" --peer-urls="http://127.0.0.1:${peer[4]}")"
check_says "member add with a taken peer URL fails" 'Peer URLs already exists' \
  "$(ctl_change 1 member add m5 --peer-urls="http://127.0.0.1:${peer[1]}")"
check_says "member remove of an unknown member fails" 'member not found' \
  "$(ctl_change 1 member remove 1234)"
check_says "member remove" "removed from cluster" \
  "$(ctl_change 1 member remove "$m4_hex")"
gone=""
for _ in $(seq 1 100); do
  if ! kill -0 "${pid[4]}" 2>/dev/null; then gone=yes; break; fi
  sleep 0.2
done
check "the removed member stops by itself" "yes" "$gone"
check "three members remain" "3" "$(ctl 1 member list | grep -c started)"
check "writes go on after the removal" "OK" "$(ctl 2 put /after-remove yes)"

# Without a quorum a write can never commit: the member answers etcd's
# "request timed out" after etcd's request timeout (5 s + 2 election
# timeouts), and keeps serving serializable reads.
kill -TERM "${pid[2]}" "${pid[3]}"; wait "${pid[2]}" "${pid[3]}" 2>/dev/null
started_at=$SECONDS
check_says "a member without a quorum times writes out" "etcdserver: request timed out" \
  "$(etcdctl --endpoints="127.0.0.1:${client[1]}" --command-timeout=20s put /no-quorum x 2>&1)"
check "... after about 7 s" "yes" "$(elapsed=$((SECONDS - started_at)); [ "$elapsed" -ge 5 ] && [ "$elapsed" -le 12 ] && echo yes)"
check "... and still serves serializable reads" "yes" "$(ctl 1 get /after-remove --print-value-only --consistency=s)"

for i in 1 2 3 4; do kill -TERM "${pid[$i]}" 2>/dev/null; done
for i in 1 2 3 4; do wait "${pid[$i]}" 2>/dev/null; done
if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed against $server"; for i in 1 2 3; do tail -3 "$work/m$i.log"; done; exit 1
fi
echo "all checks passed against $server"
