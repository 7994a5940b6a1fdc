#!/usr/bin/python3
"""A member whose write-ahead log was damaged in the middle (bytes flipped
inside a record of a copy of its data directory put in its place) repairs
from the leader (issue 20): it logs the damaged file and that it is
repairing, keeps the damaged segment aside as <name>.broken, logs when the
repair finished, then holds every acknowledged key, hashes as the others do,
takes writes, and starts again without repairing. With
--repair-damaged-data=false it refuses to start (exit status 1, DATA_LOSS
naming the file), as etcd does. With two of the three damaged no leader is
left to repair from: both stop with status 1 naming their damaged file, the
third never leads, and with the originals put back the cluster serves every
acknowledged key again.

    repair_test.py <etc binary>
"""
import glob
import os
import shutil
import sys

import e2e_lib
from e2e_lib import (check, check_true, http_call, http_put, local_keys, log, log_size,
                     log_text, same_hashes, section, stop, until, write_keys)

SERVER = sys.argv[1] if len(sys.argv) > 1 else ''
NAMES = ['rep0', 'rep1', 'rep2']
RECORD_HEADER_BYTES = 13  # storage/record.h: length (u32 LE), type, two CRCs
FLIPPED_BYTES = 3


def newest_segment(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, 'member', 'wal', '*.wal')))[-1]


def flip_mid_record(path):
    """Flips bytes in the payload of the record that holds the middle of the
    written part of WAL segment `path` (preallocated: zeros follow it)."""
    with open(path, 'rb') as f:
        data = f.read()
    middle = len(data.rstrip(b'\0')) // 2
    at = 0
    while True:  # records follow each other: header, payload, end mark
        length = int.from_bytes(data[at:at + 4], 'little')
        end = at + RECORD_HEADER_BYTES + length + 1
        if end > middle:
            break
        at = end
    flip = at + RECORD_HEADER_BYTES + length // 2
    with open(path, 'r+b') as f:
        f.seek(flip)
        f.write(bytes(b ^ 0xFF for b in data[flip:flip + FLIPPED_BYTES]))
    log('flipped %d bytes at offset %d of %s (a %d-byte record at %d; %d bytes written)' %
        (FLIPPED_BYTES, flip, path, length, at, len(data.rstrip(b'\0'))))


def damage(work, name):
    """Puts a copy of member `name`'s (stopped) data directory with its newest
    WAL segment damaged in the middle in place of the original, which is
    kept; returns where the original is and the damaged segment's path."""
    data_dir = os.path.join(work, name)
    kept = data_dir + '-original'
    shutil.copytree(data_dir, data_dir + '-damaged')
    segment = newest_segment(data_dir)
    flip_mid_record(segment.replace(data_dir, data_dir + '-damaged', 1))
    os.rename(data_dir, kept)
    os.rename(data_dir + '-damaged', data_dir)
    return kept, segment


def put_back(work, name, kept):
    data_dir = os.path.join(work, name)
    shutil.rmtree(data_dir)
    os.rename(kept, data_dir)


def exited(i):
    return e2e_lib.procs[i].poll() is not None


def leads(cluster, i):
    """Whether member i says it leads (None: it does not answer)."""
    try:
        status = http_call(cluster, i, '/v3/maintenance/status', {}, timeout=1)
    except Exception:
        return None
    return status.get('leader') == status['header']['member_id']


def body(work):
    cluster = e2e_lib.Cluster(SERVER, work, NAMES)
    written = e2e_lib.start_and_write(cluster, 0, 150)

    section("rep1's log damaged in the middle: it repairs from the leader")
    stop(1)
    kept, segment = damage(work, 'rep1')
    write_keys(cluster, 0, written, 150, 20)  # while it is down
    since = log_size(work, 'rep1')
    cluster.start(1)
    check_true('rep1 logs the damaged file and that it is repairing',
               until(lambda: 'damaged data in %s at offset' % segment in log_text(work, 'rep1', since)
                     and 'repairing: the member keeps' in log_text(work, 'rep1', since),
                     timeout=20), log_text(work, 'rep1', since)[-1500:])
    check_true('then that the repair finished',
               until(lambda: 'repair finished: the log matches leader'
                     in log_text(work, 'rep1', since), timeout=30),
               log_text(work, 'rep1', since)[-1500:])
    check_true('rep1 holds every acknowledged key',
               until(lambda: local_keys(cluster, 1) == written, timeout=30, quiet=True),
               str(len(e2e_lib.attempt('keys', local_keys, cluster, 1) or {})))
    same_hashes(cluster)
    check_true('the damaged segment is kept aside', os.path.exists(segment + '.broken'))
    repairing = os.path.join(work, 'rep1', 'member', 'REPAIRING')
    check_true('member/REPAIRING is gone', until(lambda: not os.path.exists(repairing)))
    written['/k-rep1'] = 'after repair'
    check_true('a write through rep1',
               until(lambda: http_put(cluster, 1, '/k-rep1', 'after repair'), timeout=10))

    section('restarted, rep1 does not repair again')
    stop(1)
    since = log_size(work, 'rep1')
    cluster.start(1)
    check_true('rep1 holds every acknowledged key',
               until(lambda: local_keys(cluster, 1) == written, timeout=30, quiet=True))
    text = log_text(work, 'rep1', since)
    check_true('without damage or repairing logged',
               'damaged data' not in text and 'repairing' not in text, text[-1500:])
    shutil.rmtree(kept)

    section('with --repair-damaged-data=false rep1 refuses to start')
    stop(1)
    kept, segment = damage(work, 'rep1')
    since = log_size(work, 'rep1')
    cluster.start(1, flags=['--repair-damaged-data=false'])
    check_true('rep1 stops', until(lambda: exited(1), timeout=20))
    check('with exit status 1', 1, e2e_lib.procs[1].poll())
    text = log_text(work, 'rep1', since)
    check_true('saying DATA_LOSS and naming the file',
               'DATA_LOSS' in text and segment in text, text[-1500:])
    put_back(work, 'rep1', kept)
    cluster.start(1)
    check_true('put back, rep1 holds every acknowledged key',
               until(lambda: local_keys(cluster, 1) == written, timeout=30, quiet=True))

    section('rep1 and rep2 damaged: no leader is left to repair from')
    for i in range(3):
        stop(i)
    kept1, segment1 = damage(work, 'rep1')
    kept2, segment2 = damage(work, 'rep2')
    since = [log_size(work, name) for name in NAMES]
    for i in range(3):
        cluster.start(i)
    led = []
    check_true('rep1 and rep2 stop within 20 s',
               until(lambda: led.append(leads(cluster, 0)) or (exited(1) and exited(2)),
                     timeout=20, interval=0.2))
    check_true('rep0 answers and never leads meanwhile', False in led and True not in led,
               str(led))
    for i, segment in ((1, segment1), (2, segment2)):
        check('%s exits with status 1' % NAMES[i], 1, e2e_lib.procs[i].poll())
        text = log_text(work, NAMES[i], since[i])
        check_true('%s logs that it cannot repair %s' % (NAMES[i], os.path.basename(segment)),
                   '"level":"fatal","msg":"cannot repair the damaged data in %s' % segment in text
                   and 'a quorum of voters is repairing and no leader is left' in text,
                   text[-1500:])
    check_true('a write through rep0 fails', not http_put(cluster, 0, '/none', 'x', timeout=5))

    section('the originals put back, the cluster serves again')
    for i in (1, 2):
        if not exited(i):
            stop(i)  # it failed to stop (checked above); its files are replaced
    put_back(work, 'rep1', kept1)
    put_back(work, 'rep2', kept2)
    cluster.start(1)
    cluster.start(2)
    written['/k-last'] = 'last'
    check_true('a write', until(lambda: http_put(cluster, 0, '/k-last', 'last'), timeout=30))
    for i in range(3):
        check_true('%s holds every acknowledged key' % NAMES[i],
                   until(lambda: local_keys(cluster, i) == written, timeout=30, quiet=True))
    same_hashes(cluster)


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'repair-', NAMES, body))
