#!/usr/bin/python3
"""A member whose newest snapshot file was damaged (cut in half, as a disk
that lost writes it had acknowledged leaves it) restarts from the snapshot
before it and its log, as etcd does: every key is back, the three members
hash the same, and the damaged file is kept aside as <name>.broken and
logged. With no snapshot file intact the member refuses to start (exit
status 1) with the DATA_LOSS error naming the file and leaves its files as
they were; put back, they start it again.

    snapshot_fallback_test.py <etc binary>
"""
import glob
import os
import shutil
import sys

import e2e_lib
from e2e_lib import (check, check_true, http_put, local_keys, log, log_size, log_text,
                     same_hashes, section, stop, until, write_keys)

SERVER = sys.argv[1] if len(sys.argv) > 1 else ''
NAMES = ['snap0', 'snap1', 'snap2']
SNAPSHOT_COUNT = 20


def snapshot_files(work, name):
    return sorted(glob.glob(os.path.join(work, name, 'member', 'snap', '*.snap')))


def body(work):
    cluster = e2e_lib.Cluster(SERVER, work, NAMES,
                              extra_flags=['--snapshot-count', str(SNAPSHOT_COUNT)])
    written = e2e_lib.start_and_write(cluster, 1, 100)
    check_true('snap0 has taken snapshots',
               until(lambda: len(snapshot_files(work, 'snap0')) >= 3, timeout=20))

    section("snap0's newest snapshot file is cut in half")
    stop(0)
    files = snapshot_files(work, 'snap0')
    newest = files[-1]
    with open(newest, 'rb') as f:
        whole = f.read()
    with open(newest, 'wb') as f:
        f.write(whole[:len(whole) // 2])
    log('cut %s from %d to %d bytes (%d snapshot files)' %
        (os.path.basename(newest), len(whole), len(whole) // 2, len(files)))
    write_keys(cluster, 1, written, 100, 20)  # while it is down
    since = log_size(work, 'snap0')
    cluster.start(0)
    check_true('snap0 restarts and holds every acknowledged key',
               until(lambda: local_keys(cluster, 0) == written, timeout=30, quiet=True),
               str(len(e2e_lib.attempt('keys', local_keys, cluster, 0) or {})))
    same_hashes(cluster)
    check_true('the damaged file is kept aside', os.path.exists(newest + '.broken'))
    # Replaying the log, snap0 may take a snapshot at the very index and term
    # it lost, under the same name; what must be gone is the cut copy.
    def cut_copy_left():
        if newest not in snapshot_files(work, 'snap0'):
            return False
        with open(newest, 'rb') as f:
            return f.read() == whole[:len(whole) // 2]
    check_true('and the cut copy is out of the snapshot files', not cut_copy_left())
    text = log_text(work, 'snap0', since)
    check_true('snap0 says which file it set aside, why, and what it starts from',
               newest in text and 'its header says' in text and
               'set aside as %s.broken' % os.path.basename(newest) in text and
               'starts from the snapshot at index' in text, text[-1500:])

    section('no snapshot file of snap0 intact')
    write_keys(cluster, 1, written, 120, 2 * SNAPSHOT_COUNT)  # new snapshots on snap0
    stop(0)
    saved = os.path.join(work, 'snap0-snap-saved')
    snap_dir = os.path.join(work, 'snap0', 'member', 'snap')
    shutil.copytree(snap_dir, saved)
    files = snapshot_files(work, 'snap0')
    for path in files:
        with open(path, 'r+b') as f:
            f.truncate(os.path.getsize(path) // 2)
    cut = sorted(os.listdir(snap_dir))
    since = log_size(work, 'snap0')
    cluster.start(0)
    check_true('snap0 refuses to start',
               until(lambda: e2e_lib.procs[0].poll() is not None, timeout=20))
    check('with exit status 1 (a clean stop, not a crash)', 1, e2e_lib.procs[0].poll())
    text = log_text(work, 'snap0', since)
    check_true('saying DATA_LOSS and naming the newest file',
               'DATA_LOSS' in text and os.path.basename(files[-1]) in text and
               'no older snapshot file reads back whole' in text, text[-1500:])
    check('its files are left as they were', cut, sorted(os.listdir(snap_dir)))
    check_true('the other two go on', http_put(cluster, 1, '/after-refusal', '1'))

    section('its files put back, snap0 starts again')
    shutil.rmtree(snap_dir)
    shutil.copytree(saved, snap_dir)
    written['/k-last'] = 'last'
    check_true('a write', until(lambda: http_put(cluster, 1, '/k-last', 'last'), timeout=10))
    cluster.start(0)
    check_true('snap0 holds every acknowledged key',
               until(lambda: local_keys(cluster, 0) == written, timeout=30, quiet=True))
    same_hashes(cluster)


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'snapfall-', NAMES, body))
