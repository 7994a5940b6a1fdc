#!/usr/bin/python3
"""A member whose disk fails an fsync stops serving and exits with a clear
message (exit status 1, not a crash dump), never retrying the sync as if
nothing happened; the cluster goes on without it; restarted on a working
disk, it recovers from what was durable, catches up, and holds every
acknowledged write, with the same key-value hash as the others.

The failing disk is real I/O with a shim: libfail_sync.so (LD_PRELOAD)
makes fsync and fdatasync fail with EIO while a trigger file exists.

    disk_error_test.py <etc binary> <libfail_sync.so>
"""
import base64
import os
import sys
import time

import e2e_lib
from e2e_lib import check, check_true, log, section, until

SERVER = sys.argv[1] if len(sys.argv) > 1 else ''
SHIM = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else ''
NAMES = ['disk0', 'disk1', 'disk2']


call = e2e_lib.http_call
put = e2e_lib.http_put
b64 = e2e_lib.b64


def get_local(cluster, i, key):
    """The value member i holds (a serializable read: its own state)."""
    got = call(cluster, i, '/v3/kv/range', {'key': b64(key), 'serializable': True})
    kvs = got.get('kvs', [])
    return base64.b64decode(kvs[0]['value']).decode() if kvs else None


def body(work):
    cluster = e2e_lib.Cluster(SERVER, work, NAMES)
    trigger = os.path.join(work, 'fail-syncs-now')
    cluster.start(0, env={'LD_PRELOAD': SHIM, 'ETC_TEST_FAIL_SYNC_IF': trigger})
    cluster.start(1)
    cluster.start(2)
    check_true('the cluster answers a write',
               until(lambda: put(cluster, 1, '/ready', '1'), timeout=30))

    section('an fsync fails on disk0')
    acknowledged = {}
    for n in range(10):
        if put(cluster, 1, '/k%d' % n, 'before-%d' % n):
            acknowledged['/k%d' % n] = 'before-%d' % n
    with open(trigger, 'w'):
        pass
    for n in range(10, 30):
        if put(cluster, 1, '/k%d' % n, 'during-%d' % n):
            acknowledged['/k%d' % n] = 'during-%d' % n
    exited = until(lambda: e2e_lib.procs[0].poll() is not None, timeout=20)
    check_true('disk0 exits once its fsync fails', exited)
    check('disk0 exits with status 1 (a clean stop, not a crash)', 1,
          e2e_lib.procs[0].poll())
    with open(os.path.join(work, 'disk0.log'), 'rb') as f:
        text = f.read().decode('utf-8', 'replace')
    check_true('disk0 says why', 'syncing the write-ahead log failed' in text and
               'Input/output error' in text and '"level":"fatal"' in text,
               text[-600:])
    check('the other two acknowledged every write', 30, len(acknowledged))

    section('disk0 restarts on a working disk')
    os.remove(trigger)
    cluster.start(0)
    for n in range(30, 40):
        if put(cluster, 1, '/k%d' % n, 'after-%d' % n):
            acknowledged['/k%d' % n] = 'after-%d' % n

    def caught_up():
        return all(get_local(cluster, 0, k) == v for k, v in acknowledged.items())
    check_true('disk0 holds every acknowledged write',
               until(caught_up, timeout=30, quiet=True))
    def hashes():
        return [call(cluster, i, '/v3/maintenance/hash', {})['hash'] for i in range(3)]
    same = until(lambda: len(set(hashes())) == 1, timeout=20, quiet=True)
    check_true('the three members hash the same', same,
               str(e2e_lib.attempt('hashes', hashes)))
    log('disk0 stopped on the failed fsync and came back with all %d writes' %
        len(acknowledged))


if __name__ == '__main__':
    if not SHIM or not os.path.exists(SHIM):
        print('usage: disk_error_test.py <etc binary> <libfail_sync.so>')
        sys.exit(2)
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'disk-', NAMES, body))
