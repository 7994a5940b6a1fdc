#!/usr/bin/python3
"""A key tree whose snapshot is past protobuf's 2 GiB message limit, on real
processes: a member holding about 2.3 GB of values writes a snapshot file
larger than 2 GiB, restarts from it with every value, and sends it to a
member added afterwards, which then holds and hashes the same. Manual (it
writes gigabytes and holds a few in memory): run it as

    bazel test //server:large_snapshot_test   # or
    large_snapshot_test.py <etc binary>
"""
import base64
import glob
import os
import re
import subprocess
import sys
import threading

import e2e_lib
from e2e_lib import b64, check, check_true, http_call, log, log_text, section, until

SERVER = sys.argv[1] if len(sys.argv) > 1 else ''
NAMES = ['ls0', 'ls1']
VALUE_BYTES = 1048572             # about 1 MiB (a multiple of 6)
LARGE_KEYS = 2200                 # 2.3 GB of values: the snapshot passes 2 GiB
SMALL_KEYS = 11000                # then past --snapshot-count: one snapshot, and
SNAPSHOT_COUNT = 10000            # the log released past what a new member needs
TWO_GIB = 1 << 31


def value_of(n):
    return ('%06d' % n) * (VALUE_BYTES // 6)


def put(url, key, value, timeout=30):
    try:
        request = {'key': b64(key), 'value': b64(value)}
        http_call(url, 0, '/v3/kv/put', request, timeout)
        return True
    except Exception as e:
        log('put %s failed: %s' % (key, e))
        return False


class Url(object):
    """What e2e_lib's http_call takes: something with client_url[i]."""

    def __init__(self, url):
        self.client_url = [url]


def start(work, i, client_url, peer_url, initial, state):
    name = NAMES[i]
    logf = open(os.path.join(work, name + '.log'), 'ab')
    e2e_lib.procs[i] = subprocess.Popen(
        [SERVER, '--name', name, '--data-dir', os.path.join(work, name),
         '--listen-client-urls', client_url, '--advertise-client-urls', client_url,
         '--listen-peer-urls', peer_url, '--initial-advertise-peer-urls', peer_url,
         '--initial-cluster', initial, '--initial-cluster-state', state,
         '--quota-backend-bytes', str(4 << 30), '--snapshot-count', str(SNAPSHOT_COUNT)],
        stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()


def snapshot_files(work, name):
    return glob.glob(os.path.join(work, name, 'member', 'snap', '*.snap'))


def count(url, serializable=True):
    got = http_call(url, 0, '/v3/kv/range',
                    {'key': b64('/'), 'range_end': b64('0'), 'count_only': True,
                     'serializable': serializable}, timeout=30)
    return int(got.get('count', 0))


def count_or_none(url):
    """count(url), or None while the member does not answer."""
    try:
        return count(url)
    except Exception:
        return None


def value_at(url, n):
    got = http_call(url, 0, '/v3/kv/range', {'key': b64('/big/%05d' % n), 'serializable': True},
                    timeout=30)
    kvs = got.get('kvs', [])
    return base64.b64decode(kvs[0]['value']).decode() if kvs else None


def body(work):
    ports = [e2e_lib.free_port() for _ in range(4)]
    client = ['http://127.0.0.1:%d' % p for p in ports[:2]]
    peer = ['http://127.0.0.1:%d' % p for p in ports[2:]]
    first = Url(client[0])

    section('a member with more than 2 GiB of snapshot')
    start(work, 0, client[0], peer[0], 'ls0=' + peer[0], 'new')
    check_true('the member answers a write', until(lambda: put(first, '/ready', '1'), timeout=30))
    failed = []

    def writer(part):
        for n in range(part, LARGE_KEYS, 4):
            if not until(lambda: put(first, '/big/%05d' % n, value_of(n)), timeout=60, quiet=True):
                failed.append(n)
    threads = [threading.Thread(target=writer, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check('every large value is acknowledged', [], failed)
    for n in range(SMALL_KEYS):
        if not until(lambda: put(first, '/small/%05d' % n, 'v'), timeout=30, quiet=True):
            failed.append(n)
    check('every small value is acknowledged', [], failed)
    total = LARGE_KEYS + SMALL_KEYS + 1

    def large_file():
        return [f for f in snapshot_files(work, 'ls0') if os.path.getsize(f) > TWO_GIB]
    check_true('a snapshot file larger than 2 GiB is written', until(large_file, timeout=300))
    log('snapshot files: %s' % [(os.path.basename(f), os.path.getsize(f))
                                for f in snapshot_files(work, 'ls0')])

    section('a restart reads it back')
    e2e_lib.stop(0)
    start(work, 0, client[0], peer[0], 'ls0=' + peer[0], 'new')
    check_true('the restarted member serves',
               until(lambda: count_or_none(first) == total, timeout=300, interval=1, quiet=True),
               str(count_or_none(first)))
    for n in (0, LARGE_KEYS // 2, LARGE_KEYS - 1):
        check('value %d after the restart' % n, True, value_at(first, n) == value_of(n))

    section('a new member gets it over the network')
    added = http_call(first, 0, '/v3/cluster/member/add', {'peerURLs': [peer[1]]}, timeout=30)
    check_true('the member is added', 'member' in added, str(added))
    start(work, 1, client[1], peer[1], 'ls0=%s,ls1=%s' % (peer[0], peer[1]), 'existing')
    second = Url(client[1])
    check_true('the new member holds every key',
               until(lambda: count_or_none(second) == total, timeout=600, interval=2, quiet=True),
               str(count_or_none(second)))
    received = re.findall(r'received a snapshot at index \d+ \((\d+) bytes\)', log_text(work, 'ls1'))
    check_true('it received a snapshot larger than 2 GiB',
               any(int(b) > TWO_GIB for b in received), str(received))
    for n in (0, LARGE_KEYS // 2, LARGE_KEYS - 1):
        check('value %d on the new member' % n, True, value_at(second, n) == value_of(n))

    def hashes():
        return [http_call(u, 0, '/v3/maintenance/hash', {}, timeout=120)['hash']
                for u in (first, second)]
    check_true('both members hash the same',
               until(lambda: len(set(hashes())) == 1, timeout=300, interval=5, quiet=True),
               str(e2e_lib.attempt('hashes', hashes)))


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'large-snapshot-', NAMES, body))
