#!/usr/bin/python3
"""Resident memory of a member while one client's watch stream is stalled:
50 watchers on a prefix, over one gRPC stream the client never reads, while
200 puts of 100 KiB (20 MiB) land under the prefix. etc beside Debian's
etcd 3.4, one single-member server each on loopback, one after the other.
Prints a table of each server's resident memory before and after and its
growth; exits 1 if etc grew more than twice what etcd did (issue 22's bar).

    bazel build //server:etc && tools/watch-memory-bench.py [bazel-bin/server/etc] [/usr/bin/etcd]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import etcd3
from etcd3 import etcdrpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'server'))
from e2e_lib import free_port  # noqa: E402 (the end-to-end tests' helpers)

WATCHERS = 50
PUTS = 200
VALUE_BYTES = 100 * 1024
PREFIX = b'/stalled/'


def rss_mib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def measure(binary, work):
    client_port, peer_port = free_port(), free_port()
    client_url = 'http://127.0.0.1:%d' % client_port
    peer_url = 'http://127.0.0.1:%d' % peer_port
    data = os.path.join(work, os.path.basename(binary))
    log = open(data + '.log', 'wb')
    server = subprocess.Popen(
        [binary, '--name', 'm0', '--data-dir', data,
         '--listen-client-urls', client_url, '--advertise-client-urls', client_url,
         '--listen-peer-urls', peer_url, '--initial-advertise-peer-urls', peer_url,
         '--initial-cluster', 'm0=' + peer_url, '--initial-cluster-state', 'new'],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        client = etcd3.client(host='127.0.0.1', port=client_port, timeout=10)
        deadline = time.time() + 30
        while True:
            try:
                client.get('/ready')
                break
            except Exception:
                if time.time() > deadline:
                    raise RuntimeError('%s did not start' % binary)
                time.sleep(0.1)
        time.sleep(1)
        before = rss_mib(server.pid)
        # The stalled stream: 50 create requests, then the request side
        # stays open and nobody ever reads a response.
        release = threading.Event()
        end = PREFIX[:-1] + bytes([PREFIX[-1] + 1])

        def requests():
            for _ in range(WATCHERS):
                yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                    key=PREFIX, range_end=end))
            release.wait()
        stalled = etcdrpc.WatchStub(client.channel).Watch(requests())
        time.sleep(1)
        value = b'v' * VALUE_BYTES
        writer = etcd3.client(host='127.0.0.1', port=client_port, timeout=10)
        for i in range(PUTS):
            writer.put(PREFIX + b'%d' % i, value)
        time.sleep(2)
        after = rss_mib(server.pid)
        release.set()
        stalled.cancel()
        return before, after
    finally:
        server.kill()
        server.wait()
        log.close()


def main():
    etc = sys.argv[1] if len(sys.argv) > 1 else 'bazel-bin/server/etc'
    etcd = sys.argv[2] if len(sys.argv) > 2 else '/usr/bin/etcd'
    work = tempfile.mkdtemp(prefix='watch-memory-')
    rows = []
    try:
        for name, binary in (('etcd', etcd), ('etc', etc)):
            before, after = measure(os.path.abspath(binary), work)
            rows.append((name, before, after, after - before))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('%d watchers on one stalled stream, %d puts of %d KiB under their prefix' %
          (WATCHERS, PUTS, VALUE_BYTES // 1024))
    print('| server | RSS before MiB | RSS after MiB | growth MiB |')
    print('|---|---|---|---|')
    for name, before, after, growth in rows:
        print('| %s | %.1f | %.1f | %.1f |' % (name, before, after, growth))
    etcd_growth, etc_growth = rows[0][3], rows[1][3]
    ratio = etc_growth / max(etcd_growth, 1.0)
    print('etc grew %.2fx what etcd did (the bar: at most 2x)' % ratio)
    return 0 if ratio <= 2.0 else 1


if __name__ == '__main__':
    sys.exit(main())
