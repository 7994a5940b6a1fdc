#!/usr/bin/env bash
# TLS for clients and peers, with a CA the test makes itself: a three-member
# cluster whose client and peer URLs are https:// and which requires client
# certificates on both, driven with stock etcdctl. Runs against etc and,
# unchanged, against Debian's etcd 3.4.
#
#   tls_e2e_test.sh <server binary>
set -uo pipefail
server="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"  # absolute: the test cds
source "$(dirname "$0")/e2e_lib.sh"
work=$(e2e_workdir tls)
command -v openssl >/dev/null || { echo "openssl is missing (Debian package openssl)"; exit 1; }

# ---- the test's own CA, a server/peer certificate and a client one ----
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=etc test CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
issue() {  # issue <name> <extendedKeyUsage>
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
    -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' "$2" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
issue member serverAuth,clientAuth
issue client clientAuth
# A certificate from another CA, which the cluster must refuse.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=stranger" -addext "extendedKeyUsage=clientAuth" -keyout stranger-key.pem \
  -out stranger.pem 2>/dev/null

declare -a client peer pid
for i in 1 2 3; do client[$i]=$(free_port); peer[$i]=$(free_port); done
cluster="m1=https://127.0.0.1:${peer[1]},m2=https://127.0.0.1:${peer[2]},m3=https://127.0.0.1:${peer[3]}"
for i in 1 2 3; do
  "$server" --name "m$i" --data-dir "$work/m$i" \
    --listen-client-urls "https://127.0.0.1:${client[$i]}" --advertise-client-urls "https://127.0.0.1:${client[$i]}" \
    --listen-peer-urls "https://127.0.0.1:${peer[$i]}" --initial-advertise-peer-urls "https://127.0.0.1:${peer[$i]}" \
    --initial-cluster "$cluster" --initial-cluster-state new \
    --cert-file member.pem --key-file member-key.pem --trusted-ca-file ca.pem --client-cert-auth=true \
    --peer-cert-file member.pem --peer-key-file member-key.pem --peer-trusted-ca-file ca.pem \
    --peer-client-cert-auth=true >>"$work/m$i.log" 2>&1 &
  pid[$i]=$!
done
trap 'for p in "${pid[@]}"; do kill -9 $p 2>/dev/null; done' EXIT
tls=(--cacert ca.pem --cert client.pem --key client-key.pem)
ctl() { local i=$1; shift; etcdctl --endpoints="https://127.0.0.1:${client[$i]}" --command-timeout=5s "$@" 2>&1 | grep -v '"level":"warn"'; }
for _ in $(seq 1 100); do
  ctl 1 "${tls[@]}" endpoint health >/dev/null 2>&1 && ctl 3 "${tls[@]}" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done

failures=0
check() {
  if [ "$2" == "$3" ]; then echo "ok   $1"; else
    echo "FAIL $1"; echo "  expected: $(printf %q "$2")"; echo "  actual:   $(printf %q "$3")"
    failures=$((failures + 1)); fi
}
refused() {  # the command must fail without printing a value
  local out; out=$("$@" 2>&1)
  if grep -q "^Error" <<<"$out"; then echo yes; else echo "no: $out"; fi
}

for i in 1 2 3; do check "put over TLS through member $i" "OK" "$(ctl $i "${tls[@]}" put /tls$i v$i)"; done
for i in 1 2 3; do
  check "read over TLS on member $i" $'/tls1\n/tls2\n/tls3' "$(ctl $i "${tls[@]}" get /tls --prefix --keys-only | grep .)"
done
check "members list their https URLs" "3" \
  "$(ctl 2 "${tls[@]}" member list | grep -c "https://127.0.0.1:[0-9]*, https://127.0.0.1:[0-9]*, false")"
check "no client certificate is refused" "yes" "$(refused ctl 1 --cacert ca.pem get /tls1)"
check "a certificate from another CA is refused" "yes" \
  "$(refused ctl 1 --cacert ca.pem --cert stranger.pem --key stranger-key.pem get /tls1)"
check "a server the client cannot verify is refused" "yes" \
  "$(refused ctl 1 --cert client.pem --key client-key.pem get /tls1)"
check "plaintext to a TLS port is refused" "yes" \
  "$(refused etcdctl --endpoints="http://127.0.0.1:${client[1]}" --command-timeout=3s get /tls1)"
check "still serving" "v1" "$(ctl 1 "${tls[@]}" get /tls1 --print-value-only)"

for i in 1 2 3; do kill -TERM "${pid[$i]}" 2>/dev/null; done
for i in 1 2 3; do wait "${pid[$i]}" 2>/dev/null; done
if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed against $server"; for i in 1 2 3; do tail -3 "$work/m$i.log"; done; exit 1
fi
echo "all checks passed against $server"
