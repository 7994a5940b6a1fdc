#!/usr/bin/python3
"""The value log of real processes (storage/value_log.h): every member
keeps its values in <data-dir>/member/values; a value damaged in a member's
running log (bytes flipped in its segment file) is never served: the member
exits with status 1 and a fatal line naming the checksum mismatch, and once
restarted it rebuilds the log from its snapshot and WAL and serves every
acknowledged value, hashing as the others do. The same when a snapshot's
child process finds the damaged value: the member stops too. With
--values-in-memory the values stay in the heap and it serves the same.

    value_log_test.py <etc binary>
"""
import glob
import os
import sys

import e2e_lib
from e2e_lib import (b64, check, check_true, http_call, http_put, local_keys, log, log_size,
                     log_text, same_hashes, section, stop, until)

SERVER = sys.argv[1] if len(sys.argv) > 1 else ''
NAMES = ['vl0', 'vl1', 'vl2']
VALUE_BYTES = 1000
KEYS = 200  # 200 KB of values: most of them past the 64 KiB write buffer


def value_of(n):
    return ('%04d' % n) * (VALUE_BYTES // 4)


def segments(work, name):
    return sorted(glob.glob(os.path.join(work, name, 'member', 'values', '*.vlog')))


def flip_in_value(path, value):
    """Flips a byte in the middle of `value`'s record in segment `path`."""
    with open(path, 'rb') as f:
        data = f.read()
    at = data.find(value.encode())
    if at < 0:
        return False
    at += len(value) // 2
    with open(path, 'r+b') as f:
        f.seek(at)
        f.write(bytes([data[at] ^ 0xFF]))
    log('flipped the byte at offset %d of %s' % (at, path))
    return True


def exited(i):
    return e2e_lib.procs[i].poll() is not None


def body(work):
    cluster = e2e_lib.Cluster(SERVER, work, NAMES)
    for i in range(3):
        cluster.start(i)
    check_true('the cluster answers a write',
               until(lambda: http_put(cluster, 0, '/ready', '1'), timeout=30))
    written = {}
    for n in range(KEYS):
        key = '/k%03d' % n
        if until(lambda: http_put(cluster, 0, key, value_of(n)), timeout=10):
            written[key] = value_of(n)
    check('every write is acknowledged', KEYS, len(written))
    for i in range(3):
        check_true('%s holds every value' % NAMES[i],
                   until(lambda: local_keys(cluster, i) == written, timeout=20, quiet=True))

    section('the values are in each member\'s value log, not only in its memory')
    for name in NAMES:
        files = segments(work, name)
        stored = b''.join(open(path, 'rb').read() for path in files)
        check_true('%s: member/values holds the first value' % name,
                   value_of(0).encode() in stored, str(files))

    section('a value damaged in vl1\'s running log: vl1 stops rather than serve it')
    check_true('the byte flipped', flip_in_value(segments(work, 'vl1')[0], value_of(10)))
    since = log_size(work, 'vl1')
    try:
        http_call(cluster, 1, '/v3/kv/range',
                  {'key': b64('/k010'), 'serializable': True}, timeout=5)
        served = True
    except Exception:
        served = False
    check_true('the damaged value is not served', not served)
    check_true('vl1 exits', until(lambda: exited(1), timeout=10))
    check('with status 1', 1, e2e_lib.procs[1].poll())
    text = log_text(work, 'vl1', since)
    check_true('logging the checksum mismatch',
               '"level":"fatal","msg":"a value cannot be read back: value log: checksum mismatch'
               in text, text[-1500:])

    section('restarted, vl1 rebuilds its value log and serves every value')
    cluster.start(1)
    check_true('vl1 holds every acknowledged value',
               until(lambda: local_keys(cluster, 1) == written, timeout=30, quiet=True))
    same_hashes(cluster)
    written['/k-after'] = 'after'
    check_true('a write through vl1', until(lambda: http_put(cluster, 1, '/k-after', 'after')))

    section('a damaged value only a snapshot reads: the snapshot\'s child finds it, vl0 stops')
    check_true('the byte flipped', flip_in_value(segments(work, 'vl0')[0], value_of(20)))
    since = log_size(work, 'vl0')
    try:
        # Starts a snapshot. Its child may find the damage and the member
        # stop before the answer leaves: a dropped connection is no failure.
        http_call(cluster, 0, '/v3/maintenance/defragment', {})
    except Exception as e:
        log('defragment: %s (the member stopping)' % e)
    check_true('vl0 exits', until(lambda: exited(0), timeout=20))
    check('with status 1', 1, e2e_lib.procs[0].poll())
    text = log_text(work, 'vl0', since)
    check_true('logging the mismatch the child found, and that the member stops',
               'value log: checksum mismatch' in text and
               'a snapshot or hash found a value that cannot be read back; exiting' in text,
               text[-1500:])
    cluster.start(0)
    check_true('restarted, vl0 holds every acknowledged value',
               until(lambda: local_keys(cluster, 0) == written, timeout=30, quiet=True))
    same_hashes(cluster)

    section('--values-in-memory serves the same')
    stop(2)
    cluster.start(2, flags=['--values-in-memory'])
    check_true('vl2 holds every acknowledged value',
               until(lambda: local_keys(cluster, 2) == written, timeout=30, quiet=True))
    same_hashes(cluster)


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'value-log-', NAMES, body))
