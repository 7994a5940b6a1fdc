# Shared by the server's end-to-end scripts (sourced, not run):
#   source "$(dirname "$0")/e2e_lib.sh"
#   work=$(e2e_workdir cluster)

# A directory of its own under the test's scratch space.
e2e_workdir() {  # e2e_workdir <name>
  local dir="${TEST_TMPDIR:-$(mktemp -d)}/$1-$$"
  mkdir -p "$dir"
  echo "$dir"
}

# A TCP port nothing listens on now (each test runs in its own network
# namespace, so no other test can take it meanwhile).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

need_etcdctl() {
  command -v etcdctl >/dev/null || { echo "etcdctl is missing (Debian package etcd-client)"; exit 1; }
}

# Compares what a step printed with what it should: counts a mismatch in
# $failures (the caller starts it at 0 and exits non-zero unless it stays 0).
check() {  # check <name> <expected> <actual>
  if [ "$2" == "$3" ]; then
    echo "ok   $1"
  else
    echo "FAIL $1"; echo "  expected: $(printf %q "$2")"; echo "  actual:   $(printf %q "$3")"
    failures=$((failures + 1))
  fi
}
