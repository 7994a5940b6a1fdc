#!/usr/bin/python3
"""A member whose disk fills raises the NOSPACE alarm instead of dying (etcd
raises NOSPACE only for its own quota, and panics on an I/O error from its
log): writes that grow the tree get etcd's "database space exceeded" on
every member, reads, deletes and watches go on, and once the disk has space
again the member clears its alarm and writes resume, without a restart.
Nothing acknowledged is lost, and the three members hash the same.

The full disk is real: member disk0's data directory is a 200 MiB tmpfs the
test mounts itself, in a mount namespace of its own (unshare; as root, or
as a user namespace's root), and fills with a file to the last byte; the
log's preallocated segment still has room for the alarm and the deletes.

    disk_full_test.py <etc binary>
"""
import os
import shutil
import subprocess
import sys
import threading
import time

import etcd3
import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402 (beside this file)
from e2e_lib import check, check_true, log, section, until  # noqa: E402

SERVER = sys.argv[1] if len(sys.argv) > 1 else ''
NAMES = ['disk0', 'disk1', 'disk2']
MIB = 1 << 20
TMPFS_BYTES = 200 * MIB
# The member raises NOSPACE once the free space and the room left in its
# log's current segment (64 MiB, preallocated) make less than a segment:
# every free byte is taken.
LEFT_FREE_BYTES = 0
NOSPACE_MESSAGE = 'etcdserver: mvcc: database space exceeded'


def in_own_mount_namespace():
    """Re-runs this script in a private mount namespace (once)."""
    if os.environ.get('ETC_DISK_FULL_TEST_NS') == '1':
        return
    unshare = shutil.which('unshare') or '/usr/bin/unshare'
    command = [unshare, '--mount', '--propagation', 'private']
    if os.geteuid() != 0:
        command[1:1] = ['--user', '--map-root-user']
    env = dict(os.environ, ETC_DISK_FULL_TEST_NS='1')
    os.execve(unshare, command + [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def put_error(c, key, value):
    """None if the put succeeded, else the gRPC error's details."""
    try:
        c.put(key, value)
        return None
    except grpc.RpcError as e:
        return '%s %s' % (e.code().name, e.details())
    except etcd3.exceptions.Etcd3Exception as e:
        cause = e.__context__
        if isinstance(cause, grpc.RpcError):
            return '%s %s' % (cause.code().name, cause.details())
        return '%s %s' % (type(e).__name__, e)


def nospace_members(c):
    return sorted(a.member_id for a in c.list_alarms() if a.alarm_type == 1)  # NOSPACE


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def body(work):
    disk = os.path.join(work, NAMES[0])
    os.makedirs(disk)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%d' % TMPFS_BYTES, 'tmpfs', disk],
                   check=True)
    cluster = e2e_lib.Cluster(SERVER, work, NAMES)
    for i in range(3):
        cluster.start(i)
    clients = [etcd3.client(host='127.0.0.1', port=p, timeout=5) for p in cluster.client_port]

    def ready():
        try:
            clients[0].get('/ready')
            return all(c.status().leader is not None for c in clients)
        except Exception:
            return False
    check_true('the cluster serves', until(ready, timeout=30, quiet=True))
    acknowledged = {}
    for n in range(20):
        if put_error(clients[n % 3], '/k%d' % n, 'before-%d' % n) is None:
            acknowledged['/k%d' % n] = 'before-%d' % n
    check('writes before the disk fills', 20, len(acknowledged))
    events = []
    watch_id = clients[2].add_watch_callback(
        '/watched', lambda response: events.extend(
            e.value.decode() for e in getattr(response, 'events', [])))

    section('disk0 fills (%d bytes left free)' % LEFT_FREE_BYTES)
    filler = os.path.join(disk, 'filler')
    with open(filler, 'wb') as f:
        os.posix_fallocate(f.fileno(), 0, free_bytes(disk) - LEFT_FREE_BYTES)
    check('nothing is left free on disk0', LEFT_FREE_BYTES, free_bytes(disk))
    log('free on disk0: %.1f MiB' % (free_bytes(disk) / MIB))
    raised = until(lambda: len(nospace_members(clients[1])) == 1, timeout=10, quiet=True)
    check_true('disk0 raises NOSPACE, seen on every member', raised and all(
        len(nospace_members(c)) == 1 for c in clients), str(nospace_members(clients[1])))
    for i, c in enumerate(clients):
        error = put_error(c, '/refused', 'x')
        check_true('a put on %s is refused with etcd\'s error' % NAMES[i],
                   error is not None and 'RESOURCE_EXHAUSTED' in error and
                   NOSPACE_MESSAGE in error, str(error))
    for i, c in enumerate(clients):
        value, _ = c.get('/k%d' % i)
        check('a linearizable read on %s' % NAMES[i], 'before-%d' % i,
              value.decode() if value else None)
    check_true('a delete goes through', clients[0].delete('/k19'))
    del acknowledged['/k19']
    check('the watch saw nothing yet', [], list(events))
    log('%s still running: %s' % (NAMES[0], e2e_lib.procs[0].poll() is None))

    section('space again')
    os.remove(filler)
    cleared = until(lambda: nospace_members(clients[1]) == [], timeout=10, quiet=True)
    check_true('disk0 clears its alarm without a restart', cleared)
    resumed = until(lambda: put_error(clients[0], '/watched', 'after') is None, timeout=10,
                    quiet=True)
    check_true('writes resume', resumed)
    acknowledged['/watched'] = 'after'
    for n in range(20, 40):
        if put_error(clients[n % 3], '/k%d' % n, 'after-%d' % n) is None:
            acknowledged['/k%d' % n] = 'after-%d' % n
    check('every write acknowledged', 40, len(acknowledged))
    check_true('the watch, open throughout, sees the write',
               until(lambda: 'after' in events, timeout=10, quiet=True), str(events))
    clients[2].cancel_watch(watch_id)

    def all_there(c):
        for k, v in acknowledged.items():
            got, _ = c.get(k, serializable=True)
            if got is None or got.decode() != v:
                return False
        return True
    for i, c in enumerate(clients):
        check_true('%s holds every acknowledged write' % NAMES[i],
                   until(lambda: all_there(c), timeout=20, quiet=True))

    def hashes():
        return [etcd3.etcdrpc.MaintenanceStub(c.channel).Hash(
            etcd3.etcdrpc.HashRequest(), timeout=5).hash for c in clients]
    check_true('the three members hash the same',
               until(lambda: len(set(hashes())) == 1, timeout=20, quiet=True),
               str(e2e_lib.attempt('hashes', hashes)))
    with open(os.path.join(work, 'disk0.log'), 'rb') as f:
        text = f.read().decode('utf-8', 'replace')
    check_true('disk0 did not stop', '"level":"fatal"' not in text, text[-600:])
    check_true('disk0 says why writes stopped and that they resumed',
               'NOSPACE raised' in text and 'NOSPACE cleared' in text, text[-600:])


if __name__ == '__main__':
    if not SERVER or not os.access(SERVER, os.X_OK):
        print('usage: disk_full_test.py <etc binary>')
        sys.exit(2)
    in_own_mount_namespace()
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'full-', NAMES, body))
