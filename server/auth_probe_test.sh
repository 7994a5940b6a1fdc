#!/usr/bin/env bash
# A user who may read and write /a/ only, probing everything else with
# stock etcdctl 3.4 over gRPC and with curl over the JSON gateway: every key
# outside /a/ and every admin call must be refused, and a put with a lease
# (alone or inside a txn) must not attach a key to a lease holding keys the
# user could not write.
#
#   auth_probe_test.sh <etc binary>           # etc
#   auth_probe_test.sh /usr/bin/etcd referee  # etcd 3.4, with its known
#                                             # differences (see below)
#
# etcd 3.4 lets any user compact, disarm alarms and list leases; etc keeps
# those for root. The referee run expects etcd's answers there, so the
# script is checked against a real etcd as well.
set -uo pipefail
server="$1"
mode="${2:-etc}"
source "$(dirname "$0")/e2e_lib.sh"
work=$(e2e_workdir auth-probe)
need_etcdctl

client=$(free_port)
peer=$(free_port)
export ETCDCTL_API=3
E() { etcdctl --endpoints="127.0.0.1:$client" --command-timeout=10s "$@" 2>&1 | grep -v '"level":"warn"'; }
A() { E --user alice:apw "$@"; }
R() { E --user root:rootpw "$@"; }

"$server" --name probe --data-dir "$work/data" \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "probe=http://127.0.0.1:$peer" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null' EXIT
deadline=$((SECONDS + 60))
until etcdctl --endpoints="127.0.0.1:$client" --dial-timeout=1s --command-timeout=2s endpoint health \
    >/dev/null 2>&1; do
  kill -0 $pid 2>/dev/null || { echo "the server exited:"; tail -20 "$work/server.log"; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { echo "not healthy within 60 s"; exit 1; }
  sleep 0.1
done

failures=0
denied="Error: etcdserver: permission denied"
# etcd's answer where it allows what etc keeps for root.
allowed_by_etcd() { [ "$mode" == "referee" ]; }

E user add root:rootpw >/dev/null
E user grant-role root root >/dev/null
E role add a-rw >/dev/null
E role grant-permission a-rw readwrite /a/ --prefix=true >/dev/null
E user add alice:apw >/dev/null
E user grant-role alice a-rw >/dev/null
E put /b/secret s >/dev/null
lease=$(E lease grant 600 | sed -E 's/^lease ([0-9a-f]+) granted.*/\1/')
E put /b/leased v --lease="$lease" >/dev/null
check "auth enable" "Authentication Enabled" "$(E auth enable)"

# ---- keys ----
check "put inside /a/" "OK" "$(A put /a/x 1)"
check "get inside /a/" "1" "$(A get /a/x --print-value-only)"
check "put outside" "$denied" "$(A put /b/x 1)"
check "get outside" "$denied" "$(A get /b/secret)"
check "get everything" "$denied" "$(A get "" --from-key)"
check "delete outside" "$denied" "$(A del /b/secret)"
check "prefix covering /a/ and more" "$denied" "$(A get / --prefix)"
# Where etcdctl words the refusal its own way, only the server's reason is compared.
reason="etcdserver: permission denied"
why() { grep -o "$reason" | head -1; }
check "watch outside" "$reason" "$(timeout 5 etcdctl --endpoints="127.0.0.1:$client" --user alice:apw watch /b/secret 2>&1 | why)"
check "txn writing outside" "$denied" "$(printf '\n\nput /b/x 1\n\n' | A txn)"
# A lease holding /b/leased: attaching /a/y to it would let alice revoke it.
check "put with another's lease" "$denied" "$(A put /a/y v --lease="$lease")"
# etcd 3.4 checks the lease's keys for a top-level put only (a txn is the
# way around it); etc checks both.
if allowed_by_etcd; then txn_lease_answer="SUCCESS"; else txn_lease_answer="$denied"; fi
check "txn put with another's lease" "$txn_lease_answer" \
  "$(printf '\n\nput /a/y v --lease=%s\n\n' "$lease" | A txn | head -1)"
check "lease revoke of another's" "$reason" "$(A lease revoke "$lease" | why)"
check "the leased key is still there" "v" "$(R get /b/leased --print-value-only)"

# ---- admin calls ----
check "user add" "$denied" "$(A user add mallory:m)"
check "grant root to self" "$denied" "$(A user grant-role alice root)"
check "role add" "$denied" "$(A role add r2)"
check "auth disable" "$denied" "$(A auth disable)"
check "member add" "$denied" "$(A member add x --peer-urls=http://127.0.0.1:1)"
check "member remove" "$denied" "$(A member remove 1234)"
# etcd 3.4 refuses these two for a user with a role with a wrapped error
# (code Unknown, "auth: permission denied").
if allowed_by_etcd; then admin_reason="auth: permission denied"; else admin_reason="$reason"; fi
check "snapshot save" "$admin_reason" "$(A snapshot save "$work/alice.db" | grep -o "$admin_reason" | head -1)"
check "defrag" "$admin_reason" "$(A defrag | grep -o "$admin_reason" | head -1)"
if allowed_by_etcd; then
  check "compaction (etcd allows)" "compacted revision 2" "$(A compaction 2)"
  check "lease list (etcd allows)" "found 1 leases" "$(A lease list | head -1)"
else
  check "compaction" "$denied" "$(A compaction 2)"
  check "lease list" "$denied" "$(A lease list)"
  check "endpoint hashkv" "$reason" "$(A endpoint hashkv | why)"
  check "move-leader" "$reason" "$(A move-leader 1 | why)"
  check "root compacts" "compacted revision 2" "$(R compaction 2)"
  check "root lists leases" "found 1 leases" "$(R lease list | head -1)"
fi

# ---- the JSON gateway, with alice's token ----
b64() { printf '%s' "$1" | base64 -w0; }
# POSTs JSON to the gateway (with alice's token) and prints the answer.
post() {  # post <path> <json> [token]
  python3 - "http://127.0.0.1:$client$1" "$2" "${3:-}" <<'PY'
import sys, urllib.request, urllib.error
url, body, token = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
request = urllib.request.Request(url, data=body, method="POST")
if token:
    request.add_header("Authorization", token)
try:
    print(urllib.request.urlopen(request, timeout=10).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())
PY
}
token=$(post /v3/auth/authenticate '{"name":"alice","password":"apw"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
gw() { post "$1" "$2" "$token"; }
code() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("code", 0), d.get("error", d.get("message", "")) if d.get("code", 0) else "")'; }
check "gateway: put inside /a/" "0 " "$(gw /v3/kv/put "{\"key\":\"$(b64 /a/g)\",\"value\":\"$(b64 v)\"}" | code)"
check "gateway: put outside" "7 etcdserver: permission denied" \
  "$(gw /v3/kv/put "{\"key\":\"$(b64 /b/g)\",\"value\":\"$(b64 v)\"}" | code)"
check "gateway: range outside" "7 etcdserver: permission denied" \
  "$(gw /v3/kv/range "{\"key\":\"$(b64 /b/secret)\"}" | code)"
check "gateway: user add" "7 etcdserver: permission denied" \
  "$(gw /v3/auth/user/add '{"name":"mallory","password":"m"}' | code)"
# etcdctl disarms only the alarms it lists (none is raised here), so the
# deactivation is sent directly.
disarm='{"action":"DEACTIVATE","memberID":"0","alarm":"NOSPACE"}'
if allowed_by_etcd; then
  check "gateway: alarm disarm (etcd allows)" "0 " "$(gw /v3/maintenance/alarm "$disarm" | code)"
else
  check "gateway: alarm disarm" "7 etcdserver: permission denied" \
    "$(gw /v3/maintenance/alarm "$disarm" | code)"
fi
if ! allowed_by_etcd; then
  check "gateway: compaction" "7 etcdserver: permission denied" \
    "$(gw /v3/kv/compaction '{"revision":"2"}' | code)"
  check "gateway: hash" "7 etcdserver: permission denied" "$(gw /v3/maintenance/hash '{}' | code)"
  check "gateway: lease list" "7 etcdserver: permission denied" "$(gw /v3/lease/leases '{}' | code)"
fi

kill -TERM $pid; wait $pid 2>/dev/null
echo "$failures failures"
[ "$failures" -eq 0 ]
