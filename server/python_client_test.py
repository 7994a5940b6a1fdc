#!/usr/bin/python3
"""A three-member cluster on loopback, driven with the python-etcd3 client
library (a gRPC client independent of etcdctl) and, for the exact status codes
of bad requests, with raw gRPC stubs: KV, transactions, watches, leases, locks,
cluster and maintenance calls, writes through every member (followers too),
and bad input that must be refused with etcd's status code and message while
the member goes on serving. Runs against etc and, unchanged, against Debian's
etcd 3.4.

    /usr/bin/python3 server/python_client_test.py <server binary>
"""
import os
import queue
import socket
import sys
import threading
import time

import grpc
import etcd3
import etcd3.events
import etcd3.exceptions
import etcd3.locks
import etcd3.utils
import tenacity
from etcd3 import etcdrpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402 (beside this file)
from e2e_lib import VERBOSE, Cluster, check, check_true, log, section, until  # noqa: E402


class _TenacityCompat(object):
    """etcd3 0.12's Lock.acquire hands tenacity a wait function of the old
    (attempt_number, seconds_since_start) form, which Debian's tenacity 8
    calls with one retry_state and fails on (TypeError) the first time a lock
    is contended. Adapt that one argument; everything else is tenacity's."""

    def __getattr__(self, name):
        return getattr(tenacity, name)

    @staticmethod
    def retry(*args, **kwargs):
        wait = kwargs.get('wait')
        if wait is not None and getattr(wait, '__code__', None) is not None \
                and wait.__code__.co_argcount == 2:
            kwargs['wait'] = lambda rs: wait(rs.attempt_number,
                                             rs.seconds_since_start)
        return tenacity.retry(*args, **kwargs)


etcd3.locks.tenacity = _TenacityCompat()

SERVER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
NAMES = ['m1', 'm2', 'm3']
TIMEOUT = 10  # seconds, for every single RPC


def rpc_error(fn):
    """Runs fn; returns (code, details) of the gRPC error it raised, or
    ('OK', result) if it did not fail."""
    try:
        return 'OK', fn()
    except grpc.RpcError as e:
        return e.code().name, e.details() or ''
    except etcd3.exceptions.Etcd3Exception as e:
        # The library turns INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED and
        # FAILED_PRECONDITION into its own exceptions; report the status.
        cause = e.__context__
        if isinstance(cause, grpc.RpcError):
            return cause.code().name, cause.details() or ''
        return type(e).__name__, str(e)


def check_error(name, fn, code, message):
    """fn must fail with gRPC status `code` whose details contain `message`
    (None: any message)."""
    got_code, details = rpc_error(fn)
    ok = got_code == code and (message is None or message in str(details))
    check_true('%s -> %s %r' % (name, code, message), ok,
               '\n  actual:   %s %r' % (got_code, details))
    if ok and VERBOSE:
        log('       (%s %r)' % (got_code, details))


def new_cluster(work):
    return Cluster(SERVER, work, NAMES,
                   ['--experimental-watch-progress-notify-interval', '1s'])


def client(cl, i):
    return etcd3.client(host='127.0.0.1', port=cl.client_port[i],
                        timeout=TIMEOUT)


def wait_listening(ports, deadline_s=30):
    """Every client port accepts TCP connections. (Clients are made only
    then: a gRPC channel refused early backs off for seconds.)"""
    deadline = time.time() + deadline_s
    for port in ports:
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError('port %d never listened' % port)
                time.sleep(0.05)


def wait_ready(clients, deadline_s=30):
    """Every member answers a linearizable read (so a leader exists)."""
    deadline = time.time() + deadline_s
    for c in clients:
        while True:
            try:
                kv_stub(c).Range(etcdrpc.RangeRequest(key=b'/ready-probe'),
                                 timeout=1)
                break
            except Exception:
                if time.time() > deadline:
                    raise RuntimeError('cluster did not become ready')
                time.sleep(0.1)


def kv_stub(c):
    return etcdrpc.KVStub(c.channel)


def lease_stub(c):
    return etcdrpc.LeaseStub(c.channel)


def maint_stub(c):
    return etcdrpc.MaintenanceStub(c.channel)


def get_at(c, key, revision):
    """Values of key at a revision. Raw Range: etcd3 0.12's get/get_prefix
    accept a `revision` argument but never put it in the request."""
    resp = kv_stub(c).Range(etcdrpc.RangeRequest(key=etcd3.utils.to_bytes(key),
                                                 revision=revision),
                            timeout=TIMEOUT)
    return [kv.value for kv in resp.kvs]


def collect(q, n, timeout=10):
    """Up to n items from q within timeout seconds."""
    out = []
    deadline = time.time() + timeout
    while len(out) < n:
        left = deadline - time.time()
        if left <= 0:
            break
        try:
            out.append(q.get(timeout=left))
        except queue.Empty:
            break
    return out


def events_of(responses):
    evs = []
    for r in responses:
        if isinstance(r, Exception):
            evs.append(r)
        else:
            evs.extend(r.events)
    return evs


def describe(ev):
    if isinstance(ev, Exception):
        return ('error', type(ev).__name__)
    kind = 'put' if isinstance(ev, etcd3.events.PutEvent) else (
        'delete' if isinstance(ev, etcd3.events.DeleteEvent) else '?')
    return (kind, ev.key, ev.value)


# ---------------------------------------------------------------------------

def test_kv(c, leader, f1, f2):
    section('KV')
    r1 = c[f1].put('/kv/a', '1')
    rev1 = r1.header.revision
    check_true('put returns a header with a revision', rev1 > 0)
    check('put without prev_kv has no prev_kv', False, r1.HasField('prev_kv'))
    r2 = c[leader].put('/kv/a', '2', prev_kv=True)
    rev2 = r2.header.revision
    check('put with prev_kv returns the previous value', b'1', r2.prev_kv.value)
    check('prev_kv carries the previous mod revision', rev1,
          r2.prev_kv.mod_revision)
    check('revision advances by one per put', rev1 + 1, rev2)
    value, meta = c[f2].get('/kv/a')
    check('get on a follower sees the latest value', b'2', value)
    check('metadata key', b'/kv/a', meta.key)
    check('metadata version counts puts', 2, meta.version)
    check('metadata create_revision', rev1, meta.create_revision)
    check('metadata mod_revision', rev2, meta.mod_revision)
    check('metadata lease_id is 0 without a lease', 0, meta.lease_id)
    check_true('response header revision is at least the mod revision',
               meta.response_header.revision >= rev2)
    check('header cluster_id is the same on every member', 1,
          len({x.get('/kv/a')[1].response_header.cluster_id for x in c}))
    check('get of a missing key', (None, None), c[f1].get('/kv/missing'))
    old = get_at(c[f1], '/kv/a', rev1)
    check('get at a past revision sees the old value', [b'1'], old)
    check_error('get at a future revision',
                lambda: get_at(c[f1], '/kv/a', rev2 + 1000),
                'OUT_OF_RANGE', 'etcdserver: mvcc: required revision is a future revision')

    # Prefix, sort and range.
    for k, v in (('/kv/p/c', 'x1'), ('/kv/p/a', 'x3'), ('/kv/p/b', 'x2'),
                 ('/kv/p/b', 'x2b'), ('/kv/q', 'outside')):
        c[leader].put(k, v)
    keys = lambda it: [m.key for _, m in it]
    check('get_prefix lists the prefix in key order',
          [b'/kv/p/a', b'/kv/p/b', b'/kv/p/c'], keys(c[f1].get_prefix('/kv/p/')))
    check('get_prefix values',
          [b'x3', b'x2b', b'x1'], [v for v, _ in c[f2].get_prefix('/kv/p/')])
    check('sort by key descending',
          [b'/kv/p/c', b'/kv/p/b', b'/kv/p/a'],
          keys(c[f1].get_prefix('/kv/p/', sort_order='descend')))
    check('sort by value ascending',
          [b'/kv/p/c', b'/kv/p/b', b'/kv/p/a'],
          keys(c[f1].get_prefix('/kv/p/', sort_order='ascend',
                                sort_target='value')))
    check('sort by version descending (b has two versions)',
          b'/kv/p/b', keys(c[f1].get_prefix('/kv/p/', sort_order='descend',
                                            sort_target='version'))[0])
    check('sort by create revision ascending',
          [b'/kv/p/c', b'/kv/p/a', b'/kv/p/b'],
          keys(c[f2].get_prefix('/kv/p/', sort_order='ascend',
                                sort_target='create')))
    check('sort by mod revision descending',
          [b'/kv/p/b', b'/kv/p/a', b'/kv/p/c'],
          keys(c[f2].get_prefix('/kv/p/', sort_order='descend',
                                sort_target='mod')))
    check('keys_only returns empty values', [b'', b'', b''],
          [v for v, _ in c[f1].get_prefix('/kv/p/', keys_only=True)])
    check('get_range is end-exclusive', [b'/kv/p/a', b'/kv/p/b'],
          keys(c[f1].get_range('/kv/p/a', '/kv/p/c')))
    check('get_range sorted descending', [b'/kv/p/b', b'/kv/p/a'],
          keys(c[f2].get_range('/kv/p/a', '/kv/p/c', sort_order='descend')))
    allkeys = keys(c[f2].get_all())
    check_true('get_all includes every written key',
               all(k in allkeys for k in (b'/kv/a', b'/kv/p/a', b'/kv/q')),
               repr(allkeys))
    check('get_all is in key order', sorted(allkeys), allkeys)
    # Limit and count_only are not exposed by the library: raw Range.
    resp = kv_stub(c[f1]).Range(etcdrpc.RangeRequest(
        key=b'/kv/p/', range_end=b'/kv/p0', limit=2), timeout=TIMEOUT)
    check('range with limit: kvs, more, count',
          ([b'/kv/p/a', b'/kv/p/b'], True, 3),
          ([kv.key for kv in resp.kvs], resp.more, resp.count))
    resp = kv_stub(c[f2]).Range(etcdrpc.RangeRequest(
        key=b'/kv/p/', range_end=b'/kv/p0', count_only=True), timeout=TIMEOUT)
    check('range count_only', (0, 3), (len(resp.kvs), resp.count))
    resp = kv_stub(c[f2]).Range(etcdrpc.RangeRequest(
        key=b'/kv/p/', range_end=b'/kv/p0', min_mod_revision=rev2 + 2),
        timeout=TIMEOUT)
    check('range min_mod_revision filter (c is older)', [b'/kv/p/a', b'/kv/p/b'],
          [kv.key for kv in resp.kvs])
    resp = kv_stub(c[f1]).Range(etcdrpc.RangeRequest(
        key=b'/kv/p/a', range_end=b'/kv/p/a\x00'), timeout=TIMEOUT)
    check('range [k, k\\0) is the single key k', [b'/kv/p/a'],
          [kv.key for kv in resp.kvs])

    # Deletes.
    check('delete of an existing key', True, c[f1].delete('/kv/p/a'))
    check('delete of a missing key', False, c[f2].delete('/kv/p/a'))
    dr = c[leader].delete('/kv/q', prev_kv=True, return_response=True)
    check('delete with prev_kv', (1, [b'/kv/q'], [b'outside']),
          (dr.deleted, [kv.key for kv in dr.prev_kvs],
           [kv.value for kv in dr.prev_kvs]))
    dp = c[f2].delete_prefix('/kv/p/')
    check('delete_prefix deletes every key under the prefix', 2, dp.deleted)
    check('nothing left under the prefix', [], list(c[f1].get_prefix('/kv/p/')))
    check('delete does not touch keys outside the prefix', b'2',
          c[f1].get('/kv/a')[0])
    c[f1].delete('/kv/a')
    r = c[f1].put('/kv/a', 'again')
    _, meta = c[f2].get('/kv/a')
    check('re-created key has version 1 and a new create revision',
          (1, r.header.revision), (meta.version, meta.create_revision))
    c[f1].put(b'/kv/bin\xfe', b'\x00\xff\x01')
    check('put/get of a binary key and value', b'\x00\xff\x01',
          c[f2].get(b'/kv/bin\xfe')[0])


def test_txn(c, leader, f1, f2):
    section('transactions')
    t = c[f1].transactions
    rev = c[f1].put('/tx/k', 'v1').header.revision
    ok, responses = c[f1].transaction(
        compare=[t.value('/tx/k') == 'v1', t.version('/tx/k') == 1,
                 t.create('/tx/k') == rev, t.mod('/tx/k') == rev],
        success=[t.put('/tx/k', 'v2'), t.get('/tx/k')],
        failure=[t.put('/tx/failed', 'yes')])
    check('txn with value/version/create/mod == takes the success branch',
          True, ok)
    check('txn success responses: put, then range sees the put',
          b'v2', responses[1][0][0] if len(responses) == 2 and responses[1]
          else responses)
    check('txn success branch applied (read on a follower)', b'v2',
          c[f2].get('/tx/k')[0])
    check('txn failure branch not applied', (None, None),
          c[f2].get('/tx/failed'))
    ok, responses = c[f2].transaction(
        compare=[t.value('/tx/k') == 'v1'],
        success=[t.put('/tx/k', 'wrong')],
        failure=[t.put('/tx/failed', 'yes'), t.get('/tx/k')])
    check('txn with a false value compare takes the failure branch',
          (False, b'v2'), (ok, responses[1][0][0] if len(responses) == 2
                           and responses[1] else responses))
    check('txn failure branch applied', b'yes', c[leader].get('/tx/failed')[0])
    check('txn success branch not applied', b'v2', c[leader].get('/tx/k')[0])
    ok, _ = c[leader].transaction(
        compare=[t.version('/tx/k') > 1, t.version('/tx/k') < 3,
                 t.mod('/tx/k') > rev, t.create('/tx/k') < rev + 1,
                 t.value('/tx/k') != 'v1'],
        success=[], failure=[])
    check('txn with >, <, != compares all true', True, ok)
    ok, _ = c[leader].transaction(
        compare=[t.version('/tx/k') > 1, t.mod('/tx/k') < rev], success=[],
        failure=[])
    check('txn fails when one compare is false', False, ok)
    check('txn create == 0 on a missing key (put_if_not_exists)', True,
          c[f1].put_if_not_exists('/tx/new', 'n1'))
    check('put_if_not_exists again fails', False,
          c[f2].put_if_not_exists('/tx/new', 'n2'))
    check('replace with the right old value', True,
          c[f2].replace('/tx/new', 'n1', 'n3'))
    check('replace with a wrong old value', False,
          c[f1].replace('/tx/new', 'n1', 'n4'))
    check('value after replace', b'n3', c[f1].get('/tx/new')[0])
    ok, responses = c[f1].transaction(
        compare=[], success=[t.delete('/tx/new', prev_kv=True)], failure=[])
    check('txn delete with prev_kv',
          (True, 1, b'n3'),
          (ok, responses[0].response_delete_range.deleted,
           responses[0].response_delete_range.prev_kvs[0].value
           if responses[0].response_delete_range.prev_kvs else None))
    ok, responses = c[f2].transaction(
        compare=[t.value('/tx/k') == 'v2'],
        success=[t.txn(compare=[t.version('/tx/nested') == 0],
                       success=[t.put('/tx/nested', 'inner')],
                       failure=[])],
        failure=[])
    check('nested txn', (True, True, b'inner'),
          (ok, responses[0].response_txn.succeeded if responses else None,
           c[leader].get('/tx/nested')[0]))
    ok, responses = c[f1].transaction(
        compare=[], success=[t.get('/tx/', '/tx0')], failure=[])
    check('txn range op over a range',
          [b'/tx/failed', b'/tx/k', b'/tx/nested'],
          [m.key for _, m in responses[0]])


def test_watch(c, leader, f1, f2):
    section('watch')
    rev0 = c[leader].put('/w/a', '1').header.revision
    c[f1].put('/w/a', '2')
    c[f2].delete('/w/a')
    c[leader].put('/w/b', 'x')
    c[leader].put('/wz', 'outside the prefix')

    q = queue.Queue()
    wid = c[f1].add_watch_prefix_callback('/w/', q.put, start_revision=rev0,
                                          prev_kv=True)
    evs = events_of(collect(q, 4))
    check('watch a prefix from a past revision replays the history',
          [('put', b'/w/a', b'1'), ('put', b'/w/a', b'2'),
           ('delete', b'/w/a', b''), ('put', b'/w/b', b'x')],
          [describe(e) for e in evs])
    if len(evs) == 4 and not any(isinstance(e, Exception) for e in evs):
        check('history events carry their mod revisions',
              [rev0, rev0 + 1, rev0 + 2, rev0 + 3],
              [e.mod_revision for e in evs])
        check('prev_kv on the second put and on the delete',
              (b'1', b'2'), (evs[1].prev_value, evs[2].prev_value))
        check('the first put has no previous value', b'', evs[0].prev_value)
    c[f2].put('/w/c', 'live')
    evs = events_of(collect(q, 1))
    check('the same watch then gets live events from another member',
          [('put', b'/w/c', b'live')], [describe(e) for e in evs])
    c[f1].cancel_watch(wid)
    c[leader].put('/w/d', 'after cancel')
    check('no events after cancel', [], collect(q, 1, timeout=1))

    # Iterator API on a single key, cancelled by a timer if events never come.
    events, cancel = c[f2].watch('/w/key', prev_kv=True)
    timer = threading.Timer(10, cancel)
    timer.start()
    got = []

    def writer():
        time.sleep(0.2)
        c[leader].put('/w/key2', 'sibling, not watched')
        c[leader].put('/w/key', 'k1')
        c[f1].put('/w/key', 'k2')
        c[f1].delete('/w/key')
    threading.Thread(target=writer).start()
    for ev in events:
        got.append((describe(ev), ev.prev_value))
        if len(got) == 3:
            break
    cancel()
    timer.cancel()
    check('watch iterator on one key: put, put, delete with prev_kv',
          [(('put', b'/w/key', b'k1'), b''), (('put', b'/w/key', b'k2'), b'k1'),
           (('delete', b'/w/key', b''), b'k2')], got)

    # watch_once with a timeout.
    try:
        c[f1].watch_once('/w/never', timeout=0.5)
        timed_out = False
    except etcd3.exceptions.WatchTimedOut:
        timed_out = True
    check('watch_once times out when nothing happens', True, timed_out)
    result = {}

    def once():
        try:
            result['ev'] = c[f2].watch_once('/w/once', timeout=10)
        except Exception as e:  # noqa
            result['ev'] = e
    th = threading.Thread(target=once)
    th.start()
    time.sleep(0.5)
    c[leader].put('/w/once', 'fired')
    th.join(12)
    check('watch_once returns the first event', ('put', b'/w/once', b'fired'),
          describe(result.get('ev', Exception('none'))))

    # A raw watch with progress_notify: with the servers' progress interval
    # of 1 s, an idle watcher hears the current revision, without events.
    requests = queue.Queue()

    def feed():
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
            key=b'/w/idle', progress_notify=True))
        requests.get()  # keeps the stream open until the check is done

    stream = etcdrpc.WatchStub(c[f1].channel).Watch(feed(), timeout=15)
    created = next(stream)
    check('a progress_notify watcher is created', True, created.created)
    revision = kv_stub(c[f2]).Range(
        etcdrpc.RangeRequest(key=b'/w/idle'), timeout=TIMEOUT).header.revision
    started = time.time()
    progress = next(stream)
    requests.put(None)
    check('it gets a progress notification within the interval',
          (created.watch_id, 0, True), (progress.watch_id, len(progress.events),
                         progress.header.revision >= revision and
                         time.time() - started < 5))
    stream.cancel()


def test_leases(c, leader, f1, f2):
    section('leases')
    lease = c[f1].lease(60)
    check_true('lease grant through a follower returns an id', lease.id > 0)
    check('lease grant returns the requested TTL', 60, lease.ttl)
    c[f2].put('/lease/k1', 'a', lease=lease)
    c[leader].put('/lease/k2', 'b', lease=lease.id)
    check('key metadata names its lease', lease.id, c[f1].get('/lease/k1')[1].lease_id)
    check('lease.keys lists the attached keys (through a follower)',
          [b'/lease/k1', b'/lease/k2'], sorted(lease.keys))
    check('granted_ttl', 60, lease.granted_ttl)
    rem = lease.remaining_ttl
    check_true('remaining_ttl is in (50, 60]', 50 < rem <= 60, repr(rem))
    ka = lease.refresh()
    check('refresh (keep-alive) answers with the id and the full TTL',
          [(lease.id, 60)], [(r.ID, r.TTL) for r in ka])
    l2 = c[f2]
    ka = list(l2.refresh_lease(lease.id))
    check('keep-alive through another member', [(lease.id, 60)],
          [(r.ID, r.TTL) for r in ka])
    mine = c[leader].lease(30, lease_id=0x1234abcd)
    check('lease grant with a chosen id', (0x1234abcd, 30), (mine.id, mine.ttl))
    check_error('lease grant with an id in use',
                lambda: lease_stub(c[f1]).LeaseGrant(
                    etcdrpc.LeaseGrantRequest(TTL=30, ID=0x1234abcd),
                    timeout=TIMEOUT),
                'FAILED_PRECONDITION', 'etcdserver: lease already exists')
    listed = lease_stub(c[f2]).LeaseLeases(etcdrpc.LeaseLeasesRequest(),
                                           timeout=TIMEOUT)
    ids = sorted(l.ID for l in listed.leases)
    check_true('LeaseLeases lists both leases',
               lease.id in ids and 0x1234abcd in ids, repr(ids))
    c[f1].revoke_lease(mine.id)
    lease.revoke()
    check('revoke deletes the attached keys (read on another member)', [],
          list(c[f2].get_prefix('/lease/')))
    info = c[f2].get_lease_info(lease.id)
    check('time-to-live of a revoked lease is -1', -1, info.TTL)
    listed = lease_stub(c[leader]).LeaseLeases(etcdrpc.LeaseLeasesRequest(),
                                               timeout=TIMEOUT)
    check_true('LeaseLeases no longer lists revoked leases',
               lease.id not in [l.ID for l in listed.leases])
    check_error('revoke of an unknown lease',
                lambda: lease_stub(c[f1]).LeaseRevoke(
                    etcdrpc.LeaseRevokeRequest(ID=lease.id), timeout=TIMEOUT),
                'NOT_FOUND', 'etcdserver: requested lease not found')
    ka = list(c[f1].refresh_lease(lease.id))
    check('keep-alive of a revoked lease answers TTL 0', [(lease.id, 0)],
          [(r.ID, r.TTL) for r in ka])
    check_error('lease grant with a too large TTL',
                lambda: lease_stub(c[f2]).LeaseGrant(
                    etcdrpc.LeaseGrantRequest(TTL=9000000001), timeout=TIMEOUT),
                'OUT_OF_RANGE', 'etcdserver: too large lease TTL')

    # Expiry: a 1 s lease (servers may round it up to their minimum TTL).
    short = c[f2].lease(1)
    check_true('a 1 s lease is granted with a small TTL', 1 <= short.ttl <= 5,
               repr(short.ttl))
    start = time.time()
    c[f1].put('/lease/short', 'gone soon', lease=short)
    check('the key exists right after the put', b'gone soon',
          c[leader].get('/lease/short')[0])
    gone = until(lambda: c[f1].get('/lease/short') == (None, None), timeout=10)
    check_true('the key of an expired lease is deleted within 10 s', gone,
               'still there after %.1fs' % (time.time() - start))
    log('     (expired after %.1fs)' % (time.time() - start))
    check('time-to-live of an expired lease is -1', -1,
          until(lambda: c[f2].get_lease_info(short.id).TTL == -1 and -1,
                timeout=5) or c[f2].get_lease_info(short.id).TTL)


def test_locks(c, leader, f1, f2):
    section('locks')
    a = c[f1].lock('resource', ttl=10)
    b = c[f2].lock('resource', ttl=10)
    check('first client acquires the lock', True, a.acquire(timeout=5))
    check('is_acquired for the holder', True, a.is_acquired())
    t0 = time.time()
    check('second client (other member) cannot acquire while held', False,
          b.acquire(timeout=1))
    check_true('the failed acquire waited for its timeout',
               time.time() - t0 >= 0.9, '%.2fs' % (time.time() - t0))
    check('is_acquired for the other client', False, b.is_acquired())
    holder = c[leader].get('/locks/resource')
    check('the lock key is held under the holder lease', a.lease.id,
          holder[1].lease_id if holder[1] else None)
    check('release by the holder', True, a.release())
    check('second client acquires after release', True, b.acquire(timeout=5))
    check('the first client no longer holds it', False, a.is_acquired())
    check('release by a non-holder fails', False, a.release())
    check('release by the new holder', True, b.release())
    with c[leader].lock('ctx', ttl=10) as lk:
        check('lock as a context manager', True, lk.is_acquired())
        other = c[f1].lock('ctx', ttl=10)
        check('context-managed lock excludes others', False,
              other.acquire(timeout=0.5))
    check('context manager released the lock', (None, None),
          c[f2].get('/locks/ctx'))
    # A holder that dies (its lease expires) frees the lock.
    dead = c[f1].lock('expiring', ttl=2)
    check('a short-lived holder acquires', True, dead.acquire(timeout=5))
    waiter = c[f2].lock('expiring', ttl=10)
    t0 = time.time()
    check('a waiter acquires once the holder lease expires', True,
          waiter.acquire(timeout=12))
    log('     (waited %.1fs)' % (time.time() - t0))
    waiter.release()


def test_cluster(c, cl, leader, f1, f2, member_ids):
    section('cluster and maintenance')
    for i, cli in enumerate(c):
        ms = sorted(((m.name, list(m.peer_urls), list(m.client_urls))
                     for m in cli.members))
        check('member list on %s: names, peer and client URLs' % NAMES[i],
              sorted((NAMES[j], [cl.peer_url[j]], [cl.client_url[j]])
                     for j in range(3)), ms)
    ids = sorted(m.id for m in c[f1].members)
    check('member ids are distinct and nonzero', 3, len(set(i for i in ids if i)))
    leaders = set()
    for i, cli in enumerate(c):
        st = cli.status()
        raw = maint_stub(cli).Status(etcdrpc.StatusRequest(), timeout=TIMEOUT)
        leaders.add(raw.leader)
        check_true('status on %s names a member as leader' % NAMES[i],
                   st.leader is not None and st.leader.id == raw.leader)
        check_true('status on %s: db size > 0' % NAMES[i], st.db_size > 0,
                   repr(st.db_size))
        check_true('status on %s: raft index and term > 0' % NAMES[i],
                   st.raft_index > 0 and st.raft_term > 0,
                   repr((st.raft_index, st.raft_term)))
        check_true('status on %s: version 3.4.x' % NAMES[i],
                   st.version.startswith('3.4.'), repr(st.version))
        check('status header names the member answering', member_ids[i],
              raw.header.member_id)
    check('every member names the same leader', [member_ids[leader]],
          sorted(leaders))
    h = c[f1].hash()
    check_true('hash returns a nonzero integer', isinstance(h, int) and h != 0,
               repr(h))
    check('alarm list is empty', [], list(c[f2].list_alarms()))
    check('defragment a follower', 'OK', rpc_error(c[f2].defragment)[0])

    # Compaction.
    r1 = c[leader].put('/compact/k', 'v1').header.revision
    r2 = c[f1].put('/compact/k', 'v2').header.revision
    r3 = c[f2].put('/compact/k', 'v3').header.revision
    c[f1].compact(r2, physical=True)
    check_error('get at a compacted revision',
                lambda: get_at(c[f1], '/compact/k', r1),
                'OUT_OF_RANGE', 'etcdserver: mvcc: required revision has been compacted')
    check_error('get at a compacted revision on another member',
                lambda: get_at(c[f2], '/compact/k', r1),
                'OUT_OF_RANGE', 'etcdserver: mvcc: required revision has been compacted')
    check('get at the compaction revision still works', [b'v2'],
          get_at(c[f2], '/compact/k', r2))
    check('get at the latest revision', [b'v3'],
          get_at(c[leader], '/compact/k', r3))
    check_error('compact again at the same revision',
                lambda: c[f2].compact(r2),
                'OUT_OF_RANGE', 'etcdserver: mvcc: required revision has been compacted')
    check_error('compact at a future revision',
                lambda: c[f2].compact(r3 + 1000),
                'OUT_OF_RANGE', 'etcdserver: mvcc: required revision is a future revision')
    q = queue.Queue()
    err = None
    try:
        c[f2].add_watch_callback('/compact/k', q.put, start_revision=r1)
    except Exception as e:  # noqa
        err = e
    got = collect(q, 1, timeout=5) if err is None else [err]
    check('watch from a compacted revision reports the compaction revision',
          ('RevisionCompactedError', r2),
          (type(got[0]).__name__ if got else None,
           getattr(got[0], 'compacted_revision', None) if got else None))
    # HashKV at one revision is the same on every member.
    rev = c[leader].put('/compact/settle', '1').header.revision
    hashes = []
    for cli in c:
        def hkv(cli=cli):
            return maint_stub(cli).HashKV(etcdrpc.HashKVRequest(revision=rev),
                                          timeout=TIMEOUT)
        resp = until(lambda: rpc_error(hkv)[0] == 'OK' and hkv(), timeout=5)
        hashes.append((resp.hash, resp.compact_revision) if resp else None)
    check('HashKV at one revision agrees on every member', 1, len(set(hashes)))
    check('HashKV reports the compaction revision', r2,
          hashes[0][1] if hashes[0] else None)


def test_every_member(c, leader, f1, f2):
    section('writes through every member')
    revs = []
    for i, cli in enumerate(c):
        revs.append(cli.put('/every/%s' % NAMES[i], 'from %s' % NAMES[i])
                    .header.revision)
    check('revisions increase across members', sorted(revs), revs)
    for i, cli in enumerate(c):
        check('linearizable read on %s sees every write' % NAMES[i],
              [(b'/every/' + n.encode(), b'from ' + n.encode()) for n in NAMES],
              [(m.key, v) for v, m in cli.get_prefix('/every/')])
    for i, cli in enumerate(c):
        got = until(lambda cli=cli: [
            m.key for _, m in cli.get_prefix('/every/', serializable=True)]
            if len(list(cli.get_prefix('/every/', serializable=True))) == 3
            else None, timeout=5)
        check('serializable read on %s catches up' % NAMES[i],
              [b'/every/' + n.encode() for n in NAMES], got)
    tx_revs = []
    for i, cli in enumerate(c):
        t = cli.transactions
        ok, _ = cli.transaction(
            compare=[t.version('/every/counter') == i],
            success=[t.put('/every/counter', str(i + 1))], failure=[])
        tx_revs.append(ok)
    check('a txn chain through every member', ([True] * 3, b'3'),
          (tx_revs, c[f1].get('/every/counter')[0]))


def test_bad_input(c, leader, f1, f2):
    section('bad input')
    kv = kv_stub(c[f1])
    n = [0]

    def still_serving(what, cli=c[f1]):
        n[0] += 1
        key = '/bad/alive/%d' % n[0]
        try:
            cli.put(key, what)
            got = cli.get(key)[0]
        except Exception as e:  # noqa
            got = e
        check('  ... and the member still serves a put/get', what.encode(), got)

    def put(key=b'/bad/k', value=b'v', **kw):
        return kv.Put(etcdrpc.PutRequest(key=key, value=value, **kw),
                      timeout=TIMEOUT)

    big = b'x' * (1572864 + 100 * 1024)
    check_error('put of a value over --max-request-bytes (1.5 MiB + 100 KiB)',
                lambda: put(value=big), 'INVALID_ARGUMENT',
                'etcdserver: request is too large')
    still_serving('after a too large request')
    check_error('the library raises the same for a too large put',
                lambda: c[leader].put('/bad/big', big), 'INVALID_ARGUMENT',
                'etcdserver: request is too large')
    still_serving('after a too large request on the leader', c[leader])
    huge = b'x' * (3 * 1024 * 1024)
    # The message is the gRPC transport's own (grpc-go says "grpc: received
    # message larger than max", grpc C++ "Received message larger than
    # max"); clients match on the code.
    check_error('put of a 3 MiB value (over the gRPC receive limit)',
                lambda: put(value=huge), 'RESOURCE_EXHAUSTED', None)
    still_serving('after a message over the gRPC limit')
    # etcd's gRPC receive limit is --max-request-bytes + 512 KiB = 2 MiB: a
    # put between 2 and 2.5 MiB is refused by gRPC itself, not by etcdserver.
    check_error('put of a 2 MiB + 64 KiB value (over the 2 MiB gRPC limit)',
                lambda: put(value=b'x' * (2 * 1024 * 1024 + 64 * 1024)),
                'RESOURCE_EXHAUSTED', None)
    still_serving('after a message just over the gRPC limit')
    code, _ = rpc_error(lambda: put(key=b'/bad/1mib', value=b'y' * (1024 * 1024)))
    check('a 1 MiB value (under the limit) is accepted', 'OK', code)
    check('... and reads back whole', 1024 * 1024,
          len(c[f2].get('/bad/1mib')[0] or b''))
    c[f2].delete('/bad/1mib')

    resp = kv.Range(etcdrpc.RangeRequest(key=b'/bad/z', range_end=b'/bad/a'),
                    timeout=TIMEOUT)
    check('range with range_end < key is empty, not an error',
          (0, 0), (resp.count, len(resp.kvs)))
    c[f1].put('/bad/m', 'kept')
    resp = kv.DeleteRange(etcdrpc.DeleteRangeRequest(
        key=b'/bad/z', range_end=b'/bad/a'), timeout=TIMEOUT)
    check('delete with range_end < key deletes nothing', 0, resp.deleted)
    check('... the key inside [a, z) is kept', b'kept', c[f2].get('/bad/m')[0])
    # etcd 3.4 does not validate the sort order: an unknown one (7) is
    # served, unsorted (keys come in key order). (An unknown sort *target*
    # is not tested: etcd 3.4.23 dies of a nil pointer in sort.Sort.)
    code, resp = rpc_error(lambda: kv.Range(etcdrpc.RangeRequest(
        key=b'/bad/', range_end=b'/bad0', sort_order=7), timeout=TIMEOUT))
    keys = [kv.key for kv in resp.kvs] if code == 'OK' else []
    check('range with an unknown sort order is served in key order',
          ('OK', True, True), (code, b'/bad/m' in keys, keys == sorted(keys))
          if code == 'OK' else (code, resp))
    still_serving('after invalid ranges')

    check_error('put with an unknown lease id',
                lambda: put(lease=0x7eadbeef), 'NOT_FOUND',
                'etcdserver: requested lease not found')
    check_error('the library raises the same for an unknown lease',
                lambda: c[f2].put('/bad/k', 'v', lease=0x7eadbeef), 'NOT_FOUND',
                'etcdserver: requested lease not found')
    still_serving('after an unknown lease')

    t = c[f1].transactions
    ops = [t.put('/bad/txn/%03d' % i, 'v') for i in range(129)]
    check_error('txn with 129 operations (over --max-txn-ops 128)',
                lambda: c[f1].transaction(compare=[], success=ops, failure=[]),
                'INVALID_ARGUMENT', 'etcdserver: too many operations in txn request')
    check('... and none of it is applied', [],
          list(c[f2].get_prefix('/bad/txn/')))
    check_error('txn with 129 operations in the failure branch',
                lambda: c[f1].transaction(compare=[], success=[],
                                          failure=ops),
                'INVALID_ARGUMENT', 'etcdserver: too many operations in txn request')
    ok, _ = c[f1].transaction(compare=[], success=ops[:128], failure=[])
    check('txn with exactly 128 operations is accepted', (True, 128),
          (ok, len(list(c[f2].get_prefix('/bad/txn/', keys_only=True)))))
    c[f1].delete_prefix('/bad/txn/')
    check_error('txn that puts the same key twice',
                lambda: c[f1].transaction(
                    compare=[], success=[t.put('/bad/dup', '1'),
                                         t.put('/bad/dup', '2')], failure=[]),
                'INVALID_ARGUMENT', 'etcdserver: duplicate key given in txn request')
    still_serving('after bad transactions')

    check_error('put with an empty key', lambda: put(key=b''),
                'INVALID_ARGUMENT', 'etcdserver: key is not provided')
    check_error('range with an empty key',
                lambda: kv.Range(etcdrpc.RangeRequest(key=b''), timeout=TIMEOUT),
                'INVALID_ARGUMENT', 'etcdserver: key is not provided')
    check_error('delete with an empty key',
                lambda: kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b''),
                                       timeout=TIMEOUT),
                'INVALID_ARGUMENT', 'etcdserver: key is not provided')
    check_error('txn put with an empty key',
                lambda: c[f1].transaction(compare=[], success=[t.put('', 'v')],
                                          failure=[]),
                'INVALID_ARGUMENT', 'etcdserver: key is not provided')
    check_error('put with ignore_value of a missing key',
                lambda: put(key=b'/bad/none', value=b'', ignore_value=True),
                'INVALID_ARGUMENT', 'etcdserver: key not found')
    still_serving('after empty keys')

    raw = c[f1].channel.unary_unary('/etcdserverpb.KV/Put',
                                    request_serializer=None,
                                    response_deserializer=None)
    # The code is the transport's (INTERNAL in grpc-go and grpc C++ alike);
    # the message is each implementation's own wording.
    check_error('malformed protobuf bytes in a Put',
                lambda: raw(b'\xff\xff\xff garbage', timeout=TIMEOUT),
                'INTERNAL', None)
    still_serving('after malformed protobuf')
    rawr = c[leader].channel.unary_unary('/etcdserverpb.KV/Range',
                                         request_serializer=None,
                                         response_deserializer=None)
    check_error('a truncated protobuf Range',
                lambda: rawr(b'\x0a\x50short', timeout=TIMEOUT),
                'INTERNAL', None)
    still_serving('after truncated protobuf', c[leader])
    rawu = c[f2].channel.unary_unary('/etcdserverpb.KV/NoSuchMethod',
                                     request_serializer=None,
                                     response_deserializer=None)
    check_error('an unknown method', lambda: rawu(b'', timeout=TIMEOUT),
                'UNIMPLEMENTED', None)
    still_serving('after an unknown method', c[f2])


def body(work):
    cl = new_cluster(work)
    t_start = time.time()
    for i in range(3):
        cl.start(i)
    wait_listening(cl.client_port)
    c = [client(cl, i) for i in range(3)]
    wait_ready(c)
    log('cluster ready after %.1fs' % (time.time() - t_start))
    member_ids = []
    leader_ids = set()
    for cli in c:
        st = maint_stub(cli).Status(etcdrpc.StatusRequest(), timeout=TIMEOUT)
        member_ids.append(st.header.member_id)
        leader_ids.add(st.leader)
    check('one leader known to every member', 1, len(leader_ids))
    lid = leader_ids.pop()
    leader = member_ids.index(lid) if lid in member_ids else 0
    f1, f2 = [i for i in range(3) if i != leader]
    log('leader is %s; followers %s, %s' % (NAMES[leader], NAMES[f1],
                                            NAMES[f2]))
    for test in (test_kv, test_txn, test_watch, test_leases, test_locks,
                 test_every_member, test_bad_input):
        e2e_lib.attempt(test.__name__, test, c, leader, f1, f2)
    e2e_lib.attempt('test_cluster', test_cluster, c, cl, leader, f1, f2, member_ids)


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'pyclient-', NAMES, body))
