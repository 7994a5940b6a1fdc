#!/usr/bin/python3
"""A member out of descriptors and threads keeps serving: 400 half-open HTTP
connections (200 silent, 200 with half a request) on a member limited to
256 descriptors, with no thread to spare, and the member still answers new
gRPC and HTTP clients (put, get), refuses what it cannot do with an error
(a HashKV, its own snapshots) instead of aborting, logs each kind of
trouble at most once every 10 s, does not spin, runs no thread per
connection, and is alive at the end; once threads can start again its
snapshots and HashKV work again.

What it relies on. A task limit (systemd's TasksMax, a container's pids
limit, RLIMIT_NPROC) makes pthread_create fail with EAGAIN. RLIMIT_NPROC
does not hold root, which is what Bazel's sandbox maps the test to (with
no other user to become), and the sandbox's cgroup file system is
read-only. So "no thread to spare" is made with two limits on the member:
RLIMIT_STACK of 2 GiB at its start (glibc then gives every new thread a
2 GiB stack) and, once it serves, RLIMIT_AS of its address space plus
1 GiB (prlimit --pid): every new thread's stack fails to map, so
pthread_create fails with EAGAIN exactly as under a task limit, while fork
(which maps nothing new) still works: the state of a member whose last
task a fork takes. Memory for anything else has 1 GiB of room.

Before the fixes it fails both ways: the accept loop spun on EMFILE with
the new clients left in the backlog (their requests time out), and a
snapshot's fork took the last task and the reader's std::thread threw on
the member thread (the member aborts).

    edge_limits_test.py <etc binary>
"""
import base64
import os
import re
import socket
import subprocess
import sys
import time

import e2e_lib
from e2e_lib import b64, check, check_true, log, section, until

SERVER = sys.argv[1] if len(sys.argv) > 1 else ''
NAMES = ['edge0']
DESCRIPTORS = 256
HALF_OPEN = 400
STACK_BYTES = 2 << 30
HEADROOM_BYTES = 1 << 30
SNAPSHOT_COUNT = 50


def http_put(cluster, key, value):
    e2e_lib.http_call(cluster, 0, '/v3/kv/put', {'key': b64(key), 'value': b64(value)}, 5)
    return True


def http_get(cluster, key):
    kvs = e2e_lib.http_call(cluster, 0, '/v3/kv/range', {'key': b64(key)}, 5).get('kvs', [])
    return base64.b64decode(kvs[0]['value']).decode() if kvs else None


def grpc_client(cluster):
    import etcd3
    return etcd3.client(host='127.0.0.1', port=cluster.client_port[0], timeout=5)


def hash_kv(client):
    """HashKV's answer: ('ok', hash) or ('error', the gRPC code's name)."""
    import grpc
    from etcd3 import etcdrpc
    stub = etcdrpc.MaintenanceStub(client.channel)
    try:
        return ('ok', stub.HashKV(etcdrpc.HashKVRequest(), timeout=5).hash)
    except grpc.RpcError as e:
        return ('error', e.code().name)


def threads_of(pid):
    return len(os.listdir('/proc/%d/task' % pid))


def cpu_seconds(pid):
    fields = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def address_space_bytes(pid):
    for line in open('/proc/%d/status' % pid):
        if line.startswith('VmSize:'):
            return int(line.split()[1]) * 1024
    raise RuntimeError('no VmSize for %d' % pid)


def set_address_space(pid, limit):
    subprocess.run(['prlimit', '--pid', str(pid), '--as=%s:unlimited' % limit],
                   check=True)


def log_text(work):
    with open(os.path.join(work, NAMES[0] + '.log'), 'rb') as f:
        return f.read().decode('utf-8', 'replace')


def half_open(cluster):
    """HALF_OPEN connections: half send nothing, half half a request."""
    conns = []
    for n in range(HALF_OPEN):
        s = socket.socket()
        s.settimeout(5)
        s.connect(('127.0.0.1', cluster.client_port[0]))
        if n % 2:
            s.sendall(b'POST /v3/kv/put HTTP/1.1\r\nHost: edge\r\nContent-Length: 40\r\n')
        conns.append(s)
    return conns


def body(work):
    # The member under its limits: a wrapper that sets them and execs it
    # (the process keeps its pid).
    wrapper = os.path.join(work, 'limited-etc')
    with open(wrapper, 'w') as f:
        f.write('#!/bin/sh\nexec prlimit --nofile=%d:%d --stack=%d "%s" "$@"\n' %
                (DESCRIPTORS, DESCRIPTORS, STACK_BYTES, SERVER))
    os.chmod(wrapper, 0o755)
    cluster = e2e_lib.Cluster(wrapper, work, NAMES,
                              extra_flags=['--snapshot-count', str(SNAPSHOT_COUNT)])
    cluster.start(0)
    pid = e2e_lib.procs[0].pid
    check_true('the member serves', until(lambda: http_put(cluster, '/ready', '1'),
                                          timeout=30, quiet=True))

    section('no thread to spare')
    set_address_space(pid, address_space_bytes(pid) + HEADROOM_BYTES)
    threads_before = threads_of(pid)
    log('the member runs %d threads, may map %d MiB more, no 2 GiB stack' %
        (threads_before, HEADROOM_BYTES >> 20))
    # Writes past --snapshot-count: each snapshot would fork and start a
    # reader thread.
    written = 0
    for n in range(3 * SNAPSHOT_COUNT):
        if e2e_lib.procs[0].poll() is not None:
            break
        if until(lambda: http_put(cluster, '/k%d' % n, 'v%d' % n), timeout=5, quiet=True):
            written += 1
    check('every write is answered while no thread can start', 3 * SNAPSHOT_COUNT, written)
    check_true('the member is alive after its snapshots were due',
               e2e_lib.procs[0].poll() is None)

    section('%d half-open connections on %d descriptors' % (HALF_OPEN, DESCRIPTORS))
    conns = half_open(cluster)
    check('an HTTP put through a new connection', True,
          e2e_lib.attempt('http put', http_put, cluster, '/http', 'over-http'))
    check('an HTTP get through a new connection', 'over-http',
          e2e_lib.attempt('http get', http_get, cluster, '/http'))
    client = grpc_client(cluster)
    e2e_lib.attempt('grpc put', client.put, '/grpc', 'over-grpc')
    got = e2e_lib.attempt('grpc get', client.get, '/grpc')
    check('a gRPC put and get through a new connection', b'over-grpc',
          got[0] if got else None)
    check('the value written over gRPC reads back over HTTP', 'over-grpc',
          e2e_lib.attempt('http get', http_get, cluster, '/grpc'))
    answer = hash_kv(client)
    log('HashKV with no thread to spare: %r' % (answer,))
    check_true('HashKV is answered or refused with an error (RESOURCE_EXHAUSTED)',
               answer[0] == 'ok' or answer == ('error', 'RESOURCE_EXHAUSTED'), answer)
    check_true('no thread per connection', threads_of(pid) <= threads_before + 2,
               '%d threads, %d before' % (threads_of(pid), threads_before))
    cpu_before = cpu_seconds(pid)
    time.sleep(2)
    spent = cpu_seconds(pid) - cpu_before
    log('CPU in 2 s with %d half-open connections: %.2f s' % (HALF_OPEN, spent))
    check_true('the member does not spin', spent < 0.5, '%.2f CPU-seconds in 2 s' % spent)
    check_true('the member is alive', e2e_lib.procs[0].poll() is None)
    for s in conns:
        s.close()
    text = log_text(work)
    port_lines = [l for l in text.splitlines() if 'client port' in l]
    for line in port_lines:
        log('  ' + line)
    check_true('the connections it closed or refused are logged',
               any('Too many open files' in l for l in port_lines), text[-2000:])
    # One line per kind at once, then at most one per kind every 10 s.
    check_true('those lines are rate-limited', len(port_lines) <= 9, len(port_lines))
    check_true('the snapshots that could not start are logged',
               'background work on the key tree: cannot start a thread: Resource '
               'temporarily unavailable' in text, text[-2000:])

    section('threads can start again')
    def computed():
        return len(re.findall(r'background work on the key tree: \d+ bytes', log_text(work)))
    computed_before = computed()
    set_address_space(pid, 'unlimited')
    for n in range(SNAPSHOT_COUNT + 5):
        e2e_lib.attempt('put after', http_put, cluster, '/after%d' % n, 'v')
    check_true('a snapshot is taken again',
               until(lambda: computed() > computed_before, timeout=20), computed_before)
    check('HashKV works again', 'ok', hash_kv(client)[0])
    check('every key is there', 'v%d' % (3 * SNAPSHOT_COUNT - 1),
          e2e_lib.attempt('http get', http_get, cluster, '/k%d' % (3 * SNAPSHOT_COUNT - 1)))


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'edge-', NAMES, body))
