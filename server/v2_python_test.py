#!/usr/bin/python3
"""etcd's v2 keys API (`--enable-v2`) on a three-member cluster on loopback,
driven with Debian's python-etcd (the v2 client library, `etcd.Client`) and,
for exact status codes, headers and error bodies, with raw HTTP: keys,
directories, TTLs and refresh, compare-and-swap/-delete, in-order keys,
long-poll watches (woken through another member), the error classes the
library raises, members/machines/stats, python-etcd's Lock, malformed input,
and access control.

Runs against etc and, as the referee, against Debian's etcd 3.4:

    /usr/bin/python3 server/v2_python_test.py <server binary>

The referee is recognised by the binary's name (`etcd`) or a second argument
`referee`. Where etc deliberately differs from etcd 3.4 the test branches in
one place per difference, each in a function named `differs_*` below:
  (a) one keyspace: v2 and v3 see the same keys (etcd 3.4: separate stores);
  (b) explicit v2 directories show to v3 as a marker key "<dir>/";
  (c) a waitIndex older than etcd's 1,000-event window is served from history
      (error 401 only below the compacted revision);
  (d) in-order key names are 20 zero-padded digits in creation order, not
      necessarily the createdIndex;
  (e) v2 access control uses the v3 users and roles with HTTP basic auth
      (etcd 3.4: a separate v2 auth store under /v2/auth);
  (f) a TTL is a lease, whose clock each member keeps: the expiration one
      member shows may differ from another's by the time between their
      applies (etcd 3.4 replicates the expiration time itself);
  (g) a v2 request is one log entry, held to --max-request-bytes (1.5 MiB
      by default) as v3's are (etcd 3.4's v2 API takes up to 10 MiB), and
      the client port reads no request over 8 MiB.
Everything else must behave as etcd 3.4 does (notes: what etcd 3.4 answered
to the same requests, recorded with curl).
"""
import base64
import http.client
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import etcd
import etcd.auth

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402 (beside this file)
from e2e_lib import check, check_true, log, section, until  # noqa: E402

SERVER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
REFEREE = bool(SERVER) and (os.path.basename(SERVER) == 'etcd' or
                            'referee' in sys.argv[2:])
NAMES = ['m1', 'm2', 'm3']
TIMEOUT = 10  # seconds, for every single request
FORM = 'application/x-www-form-urlencoded'
ETCDCTL = '/usr/bin/etcdctl'


def outcome(fn):
    """('ok', result) or (exception class name, payload dict or message)."""
    try:
        return 'ok', fn()
    except etcd.EtcdException as e:
        return type(e).__name__, (e.payload if isinstance(e.payload, dict)
                                  else str(e))
    except Exception as e:  # noqa
        return type(e).__name__, str(e)


def check_raises(name, fn, exc, code=None, cause=None):
    """fn raises python-etcd's `exc` (a class name) with errorCode `code` and
    cause `cause` in the server's error body (None: not checked). Returns the
    payload."""
    kind, payload = outcome(fn)
    got = (kind,)
    want = (exc,)
    if code is not None:
        want += (code,)
        got += (payload.get('errorCode') if isinstance(payload, dict) else payload,)
    if cause is not None:
        want += (cause,)
        got += (payload.get('cause') if isinstance(payload, dict) else None,)
    check(name + ' -> ' + exc, want, got)
    return payload if isinstance(payload, dict) else {}


class Raised(dict):
    """What `tried` gives for a call that raised: empty to .get, len and
    iteration, so the checks after it fail and show the error."""

    def __init__(self, e):
        dict.__init__(self)
        self.error = '%s: %s' % (type(e).__name__, e)

    def __repr__(self):
        return 'raised ' + self.error

    def startswith(self, _):
        return False


def tried(fn):
    """fn's result, or Raised."""
    try:
        return fn()
    except Exception as e:  # noqa
        return Raised(e)


class Cluster(e2e_lib.Cluster):
    """e2e_lib's three members with the v2 API on, and python-etcd clients
    of them."""

    def __init__(self, work):
        e2e_lib.Cluster.__init__(self, SERVER, work, NAMES, ['--enable-v2=true'])

    def client(self, i, **kw):
        return etcd.Client(host='127.0.0.1', port=self.client_port[i],
                           read_timeout=TIMEOUT, **kw)


# --- raw HTTP --------------------------------------------------------------

class Raw(object):
    """One answer: status, headers (lower-case names), body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode('utf-8'))
        except Exception:  # noqa
            return None

    def h(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return 'Raw(%d, %r)' % (self.status, self.body[:300])


def raw(port, method, path, form=None, body=None, ctype=FORM, headers=None,
        timeout=TIMEOUT):
    """An HTTP request sent as given (the path is not normalised, redirects
    are not followed). `form` is url-encoded into the body."""
    hdrs = dict(headers or {})
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
    if body is not None and ctype is not None:
        hdrs['Content-Type'] = ctype
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Raw(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def gw(port, path, req, headers=None):
    """The v3 JSON gateway: POST req to /v3/<path>; the decoded answer."""
    r = raw(port, 'POST', '/v3/' + path, body=json.dumps(req).encode(),
            ctype='application/json', headers=headers)
    return r.status, r.json()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s or '').decode('utf-8', 'replace')


def v3_get(port, key):
    """(value or None) of key through the v3 gateway."""
    _, resp = gw(port, 'kv/range', {'key': b64(key)})
    kvs = (resp or {}).get('kvs') or []
    return unb64(kvs[0].get('value')) if kvs else None


def v3_keys(port, prefix):
    _, resp = gw(port, 'kv/range', {'key': b64(prefix),
                                    'range_end': b64(prefix[:-1] +
                                                     chr(ord(prefix[-1]) + 1))})
    return [(unb64(kv['key']), unb64(kv.get('value')))
            for kv in (resp or {}).get('kvs') or []]


def etcdctl3(port, *args):
    env = dict(os.environ, ETCDCTL_API='3')
    p = subprocess.run([ETCDCTL, '--endpoints', '127.0.0.1:%d' % port] +
                       list(args), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=TIMEOUT)
    return p.stdout.decode('utf-8', 'replace').strip()


def in_thread(fn):
    """Runs fn in a daemon thread; the returned queue gets outcome(fn)."""
    q = queue.Queue()
    t = threading.Thread(target=lambda: q.put(outcome(fn)), daemon=True)
    t.start()
    return q


def take(q, timeout):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return ('no answer within %ss' % timeout, None)


INDEX_RE = re.compile(r'^\d+$')
EXPIRATION_RE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$')


# --- the differences from etcd 3.4, one function each ------------------------

def differs_keyspace(c, cl, leader, f1, f2):
    """(a) one keyspace and (b) directory markers. etcd 3.4 keeps the v2 store
    apart from v3: a v3 put is invisible to /v2/keys and the other way round.
    etc serves one keyspace: both APIs see every key, an explicit v2 directory
    is the v3 key "<dir>/" with an empty value, and watches of either API see
    writes of the other (checked across members)."""
    section('v2 and v3 keyspaces (%s)' % ('separate: etcd 3.4' if REFEREE
                                          else 'one keyspace: etc'))
    p = cl.client_port
    st, _ = gw(p[f1], 'kv/put', {'key': b64('/ks/v3key'), 'value': b64('x3')})
    check('v3 gateway put', 200, st)
    check('etcdctl (v3) put', 'OK', etcdctl3(p[f2], 'put', '/ks/ctl', 'c3'))
    c[leader].write('/ks/v2key', 'x2')
    c[leader].write('/ks/v2dir', None, dir=True)
    if REFEREE:
        check_raises('v3 put is not visible to v2 (separate stores)',
                     lambda: c[f1].read('/ks/v3key', quorum=True),
                     'EtcdKeyNotFound', 100)
        check_raises('etcdctl v3 put is not visible to v2',
                     lambda: c[f2].read('/ks/ctl', quorum=True),
                     'EtcdKeyNotFound', 100)
        check('v2 write is not visible to v3', None, v3_get(p[f2], '/ks/v2key'))
        check('v2 directory is not visible to v3', [],
              v3_keys(p[f1], '/ks/v2dir'))
        check('v3 sees only its own keys under /ks/',
              [('/ks/ctl', 'c3'), ('/ks/v3key', 'x3')], v3_keys(p[f1], '/ks/'))
        return
    check('v3 put is visible to v2', 'x3',
          getattr(until(lambda: c[f2].read('/ks/v3key', quorum=True),
                        quiet=True), 'value', None))
    check('etcdctl v3 put is visible to v2', 'c3',
          getattr(until(lambda: c[f1].read('/ks/ctl', quorum=True),
                        quiet=True), 'value', None))
    check('v2 write is visible to v3', 'x2', v3_get(p[f1], '/ks/v2key'))
    check('v2 directory is a v3 marker key "<dir>/" with an empty value',
          [('/ks/v2dir/', '')], v3_keys(p[f2], '/ks/v2dir'))
    listing = c[f1].read('/ks', sorted=True, quorum=True)
    check('v2 listing shows v3 keys and v2 ones alike',
          ['/ks/ctl', '/ks/v2dir', '/ks/v2key', '/ks/v3key'],
          [n['key'] for n in listing._children])
    # A v3 write wakes a v2 watcher on another member.
    idx = c[f1].read('/ks', quorum=True).etcd_index
    w = in_thread(lambda: c[f1].watch('/ks/cross', index=idx + 1, timeout=8))
    time.sleep(0.5)
    gw(p[f2], 'kv/put', {'key': b64('/ks/cross'), 'value': b64('from-v3')})
    kind, r = take(w, 9)
    check('a v3 put on one member wakes a v2 watch on another',
          ('ok', 'set', 'from-v3'),
          (kind, getattr(r, 'action', None), getattr(r, 'value', None)))
    # A v2 write reaches a v3 watcher (etcdctl watch, over gRPC) on another
    # member. The watch starts at the next revision: no race with its setup.
    _, resp = gw(p[leader], 'kv/range', {'key': b64('/ks/fromv2')})
    rev = int(((resp or {}).get('header') or {}).get('revision', 0))
    watcher = subprocess.Popen(
        [ETCDCTL, '--endpoints', '127.0.0.1:%d' % p[leader], 'watch',
         '--rev', str(rev + 1), '/ks/fromv2'],
        env=dict(os.environ, ETCDCTL_API='3'), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        lines = in_thread(lambda: [watcher.stdout.readline().decode().strip()
                                   for _ in range(3)])
        c[f2].write('/ks/fromv2', 'v2-value')
        kind, got = take(lines, 8)
    finally:
        watcher.kill()
        watcher.wait(timeout=5)
    check('a v2 write on one member reaches a v3 watch (etcdctl) on another',
          ('ok', ['PUT', '/ks/fromv2', 'v2-value']), (kind, got))


def differs_same_expiration(written, read):
    """(f) The expiration a write answered and the one a read on another
    member shows. etcd 3.4: the same instant. etc: within a second."""
    if REFEREE:
        return written == read
    def nanos(t):
        m = re.match(r'^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$', t or '')
        if not m:
            return None
        whole = time.mktime(time.strptime(m.group(1), '%Y-%m-%dT%H:%M:%S'))
        return int(whole) * 10**9 + int((m.group(2) or '0').ljust(9, '0'))
    a, b = nanos(written), nanos(read)
    return a is not None and b is not None and abs(a - b) < 10**9


def differs_big_value(p):
    """(g) A 2 MiB value. etcd 3.4: stored (201) and read back whole. etc:
    refused as too large for a log entry (400, 209, nothing stored)."""
    big = 'x' * (2 * 1024 * 1024)
    r = raw(p, 'PUT', '/v2/keys/raw/big', form={'value': big})
    if not REFEREE:
        check('a 2 MiB value is refused: larger than --max-request-bytes',
              (400, 209, 'etcdserver: request is too large'),
              (r.status, (r.json() or {}).get('errorCode'), (r.json() or {}).get('cause')))
        check('... and nothing is stored', 404, raw(p, 'GET', '/v2/keys/raw/big').status)
        return
    check('a 2 MiB value is accepted', 201, r.status)
    check('... and reads back whole', len(big), len(
        ((raw(p, 'GET', '/v2/keys/raw/big?quorum=true').json() or {}).get(
            'node') or {}).get('value') or ''))
    raw(p, 'DELETE', '/v2/keys/raw/big')


def differs_huge_body(p):
    """(g) A form body over 10 MiB. etcd 3.4: read, then 400 with 210 "http:
    POST too large". etc: the client port takes no request over 8 MiB; it
    answers 413 as soon as the head says so and closes the connection, so the
    client may see the answer or its send fail."""
    body = 'y' * (10 * 1024 * 1024 + 10)
    if REFEREE:
        r = raw(p, 'PUT', '/v2/keys/raw/huge', form={'value': body})
        check('a form body over 10 MiB: 400, 210 http: POST too large',
              (400, 210, 'http: POST too large'),
              (r.status, (r.json() or {}).get('errorCode'),
               (r.json() or {}).get('cause')))
        return
    try:
        status = raw(p, 'PUT', '/v2/keys/raw/huge', form={'value': body}).status
    except (BrokenPipeError, ConnectionResetError):
        status = 'closed'
    check('a form body over 8 MiB: 413 or the connection closed', True, status in (413, 'closed'))
    check('... nothing stored', 404, raw(p, 'GET', '/v2/keys/raw/huge').status)


def differs_inorder_name(name, created_index):
    """(d) The name of an in-order key. etcd 3.4: "%020d" of its createdIndex.
    etc: 20 zero-padded digits that sort in creation order (checked by the
    caller), not necessarily the createdIndex."""
    if REFEREE:
        return name == '%020d' % created_index
    return re.match(r'^\d{20}$', name) is not None


def differs_history_window(c, cl, leader, f1, f2):
    """(c) etcd 3.4 keeps the last 1,000 v2 events; a watch from before
    them fails with 401 "The event in requested index is outdated and
    cleared". etc serves any index from its history and answers 401 only
    below the compacted revision."""
    section('watch history window (%s)' % ('1,000 events: etcd 3.4' if REFEREE
                                           else 'history until compaction: etc'))
    first = c[f1].write('/win/k', 'first').modifiedIndex
    conn = http.client.HTTPConnection('127.0.0.1', cl.client_port[leader],
                                      timeout=TIMEOUT)
    last = None
    for i in range(1005):  # keep-alive, one member: quick
        conn.request('PUT', '/v2/keys/win/fill', body='value=%d' % i,
                     headers={'Content-Type': FORM})
        r = conn.getresponse()
        r.read()
        last = r.getheader('X-Etcd-Index')
    conn.close()
    check('1,005 writes later the index moved on', True,
          last is not None and int(last) >= first + 1005)
    if REFEREE:
        # A quorum read first: the member has applied every write by then.
        cur = c[f1].read('/win/fill', quorum=True).etcd_index
        p = check_raises('watch from before the 1,000-event window',
                         lambda: c[f1].watch('/win/k', index=first, timeout=5),
                         'EtcdEventIndexCleared', 401)
        check('... message', 'The event in requested index is outdated and cleared',
              p.get('message'))
        check('... cause names the oldest kept index and the asked one',
              'the requested history has been cleared [%d/%d]' %
              (cur - 999, first), p.get('cause'))
        check('... index is the current index', cur, p.get('index'))
        r = c[f2].watch('/win/fill', index=cur - 999, timeout=5)
        check('watch at the oldest kept index is served', cur - 999,
              r.modifiedIndex)
        return
    kind, r = outcome(lambda: c[f1].watch('/win/k', index=first, timeout=5))
    check('watch from 1,005 events ago is served from history',
          ('ok', 'set', 'first', first),
          (kind, getattr(r, 'action', None), getattr(r, 'value', None),
           getattr(r, 'modifiedIndex', None)))
    _, resp = gw(cl.client_port[leader], 'kv/range', {'key': b64('/win/fill')})
    rev = int(((resp or {}).get('header') or {}).get('revision', 0))
    st, _ = gw(cl.client_port[leader], 'kv/compaction',
               {'revision': str(rev), 'physical': True})
    check('v3 compaction at the current revision', 200, st)
    # A quorum read on f2 first: it has applied the compaction by then (a
    # watch is served from the member's own state, as etcd's are; under
    # load f2 could still be behind the leader).
    c[f2].read('/win/fill', quorum=True)
    p = check_raises('watch from below the compacted revision',
                     lambda: c[f2].watch('/win/k', index=first, timeout=5),
                     'EtcdEventIndexCleared', 401)
    check('... message', 'The event in requested index is outdated and cleared',
          p.get('message'))


def differs_auth_setup(c, cl, leader):
    """(e) A user `u` (password upw) who may read and write /au/ and below
    only; `root` (rootpw) may do everything; unauthenticated requests may do
    nothing. etc: the v3 users and roles (etcdctl), checked with HTTP basic
    auth on /v2/keys. etcd 3.4: its separate v2 auth store (python-etcd's
    etcd.auth over /v2/auth), where enabling auth also creates a `guest`
    role with full access that has to be revoked."""
    port = cl.client_port[leader]
    if not REFEREE:
        for args, want in ((('user', 'add', 'root:rootpw'), 'User root created'),
                           (('user', 'grant-role', 'root', 'root'),
                            'Role root is granted to user root'),
                           (('role', 'add', 'ra'), 'Role ra created'),
                           (('role', 'grant-permission', 'ra', 'readwrite',
                             '/au/', '--prefix=true'), 'Role ra updated'),
                           (('user', 'add', 'u:upw'), 'User u created'),
                           (('user', 'grant-role', 'u', 'ra'),
                            'Role ra is granted to user u'),
                           (('auth', 'enable'), 'Authentication Enabled')):
            check('etcdctl ' + ' '.join(args[:2]), want, etcdctl3(port, *args))
        return
    admin = c[leader]
    root = etcd.auth.EtcdUser(admin, 'root')
    root.password = 'rootpw'
    root.write()
    role = etcd.auth.EtcdRole(admin, 'ra')
    role.grant('/au/*', 'RW')
    role.write()
    u = etcd.auth.EtcdUser(admin, 'u')
    u.password = 'upw'
    u.roles = ['ra']
    u.write()
    etcd.auth.Auth(admin).active = True
    rootc = cl.client(leader, username='root', password='rootpw')
    guest = etcd.auth.EtcdRole(rootc, 'guest')
    guest.read()
    guest.revoke('/*', 'RW')
    guest.write()
    check('v2 auth enabled (etcd 3.4 /v2/auth)', True,
          etcd.auth.Auth(rootc).active)


def differs_auth_teardown(cl, leader):
    port = cl.client_port[leader]
    if not REFEREE:
        env = dict(os.environ, ETCDCTL_API='3')
        out = subprocess.run([ETCDCTL, '--endpoints', '127.0.0.1:%d' % port,
                              '--user', 'root:rootpw', 'auth', 'disable'],
                             env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=TIMEOUT)
        check('auth disable', 'Authentication Disabled',
              out.stdout.decode().strip())
        return
    rootc = cl.client(leader, username='root', password='rootpw')
    etcd.auth.Auth(rootc).active = False
    check('v2 auth disabled', False, etcd.auth.Auth(rootc).active)


# --- the checks ---------------------------------------------------------------

def test_keys(c, cl, leader, f1, f2):
    section('keys')
    r = c[f1].write('/k/a', '1')
    check('set of a new key: action, value, 201 (newKey)',
          ('set', '/k/a', '1', True), (r.action, r.key, r.value, r.newKey))
    check('createdIndex == modifiedIndex == X-Etcd-Index', True,
          r.createdIndex == r.modifiedIndex == r.etcd_index)
    check('a new key has no prevNode', False, hasattr(r, '_prev_node'))
    r2 = c[leader].write('/k/a', '2')
    check('overwrite: action set, 200, prevNode carries the old value',
          ('set', False, '1', r.modifiedIndex),
          (r2.action, r2.newKey, r2._prev_node.value,
           r2._prev_node.modifiedIndex))
    # A plain set replaces the node: createdIndex is the new index.
    check('overwrite: createdIndex is the new index (set replaces the node)',
          (r2.modifiedIndex, True),
          (r2.createdIndex, r2.modifiedIndex > r.modifiedIndex))
    g = c[f2].read('/k/a', quorum=True)
    check('quorum read on another member', ('get', '2', r2.modifiedIndex),
          (g.action, g.value, g.modifiedIndex))
    check('read has no ttl or expiration', (None, None), (g.ttl, g.expiration))
    check('a read answers X-Etcd-Index at least the write\'s', True,
          g.etcd_index >= r2.modifiedIndex)
    g = until(lambda: (lambda x: x if x.value == '2' else None)(
        c[f1].read('/k/a')), timeout=5, quiet=True)
    check('non-quorum read on a member catches up', '2', getattr(g, 'value', None))
    check('get() is read()', '2', c[f2].get('/k/a').value)
    check('"in" finds the key', (True, False),
          ('/k/a' in c[f1], '/k/nope' in c[f1]))
    check_raises('read of a missing key', lambda: c[f1].read('/k/nope'),
                 'EtcdKeyNotFound', 100, '/k/nope')
    check_raises('read below a missing directory names the first missing part',
                 lambda: c[f1].read('/k/none/x/y'), 'EtcdKeyNotFound', 100,
                 '/k/none')
    check_raises('read below a file', lambda: c[f1].read('/k/a/b'),
                 'EtcdNotDir', 104, '/k/a')
    check_raises('write below a file', lambda: c[f2].write('/k/a/b', 'x'),
                 'EtcdNotDir', 104, '/k/a')
    v = 'späce <&> "q" \\ \u2603'
    c[leader].write('/k/uni code', v)
    check('values and keys with spaces, quotes and non-ASCII round-trip',
          ('/k/uni code', v), (lambda x: (x.key, x.value))(
              c[f1].read('/k/uni code', quorum=True)))
    check('an empty value', '', c[leader].write('/k/empty', '').value)
    d = c[f2].delete('/k/a')
    check('delete: action, no value, prevNode value',
          ('delete', None, '2', r2.createdIndex),
          (d.action, d.value, d._prev_node.value, d.createdIndex))
    check('delete: modifiedIndex is the delete\'s index', True,
          d.modifiedIndex > r2.modifiedIndex and d.modifiedIndex == d.etcd_index)
    check_raises('delete of a missing key', lambda: c[f1].delete('/k/a'),
                 'EtcdKeyNotFound', 100, '/k/a')
    c[f1].write('/k/p', 'popped')
    check('pop returns the value deleted', 'popped', c[leader].pop('/k/p').value)
    idx = [c[i].write('/k/every', NAMES[i]).modifiedIndex for i in range(3)]
    check('writes through every member get increasing indexes', sorted(idx), idx)
    check('... the last one wins', NAMES[2],
          c[leader].read('/k/every', quorum=True).value)


def test_dirs(c, cl, leader, f1, f2):
    section('directories')
    r = c[f1].write('/dirs/d', None, dir=True)
    check('mkdir: action set, dir, 201', ('set', True, True, None),
          (r.action, r.dir, r.newKey, r.value))
    check_raises('mkdir of an existing directory', lambda: c[f2].write(
        '/dirs/d', None, dir=True), 'EtcdNotFile', 102, '/dirs/d')
    e = c[leader].read('/dirs/d', quorum=True)
    check('an empty directory: dir, no children', (True, []),
          (e.dir, e._children))
    check('python-etcd lists an empty directory as itself', ['/dirs/d'],
          [x.key for x in e.leaves])
    jr = raw(cl.client_port[leader], 'GET', '/v2/keys/dirs/d?quorum=true').json()
    check('an empty directory has no "nodes" field in the JSON',
          {'key': '/dirs/d', 'dir': True, 'modifiedIndex': r.modifiedIndex,
           'createdIndex': r.createdIndex}, (jr or {}).get('node'))
    for k, v in (('/dirs/d/b', 'B'), ('/dirs/d/a', 'A'), ('/dirs/d/sub/c', 'C'),
                 ('/dirs/d/sub/deeper/e', 'E')):
        c[f1].write(k, v)
    sub = c[f2].read('/dirs/d/sub', quorum=True)
    c_idx = c[f2].read('/dirs/d/sub/c', quorum=True).createdIndex
    check('an implicit parent is created at its first child\'s index',
          (c_idx, c_idx), (sub.createdIndex, sub.modifiedIndex))
    r = c[f1].read('/dirs/d', sorted=True)
    check('listing (sorted) names the immediate children',
          ['/dirs/d/a', '/dirs/d/b', '/dirs/d/sub'],
          [n['key'] for n in r._children])
    sub_node = [n for n in r._children if n['key'] == '/dirs/d/sub']
    check('a non-recursive listing shows a sub-directory without its nodes',
          [(True, False)], [(n.get('dir'), 'nodes' in n) for n in sub_node])
    check('a directory keeps the modifiedIndex of its creation',
          r.createdIndex, r.modifiedIndex)
    rr = c[f2].read('/dirs/d', recursive=True, sorted=True, quorum=True)
    check('recursive sorted read: leaves in key order',
          [('/dirs/d/a', 'A'), ('/dirs/d/b', 'B'), ('/dirs/d/sub/c', 'C'),
           ('/dirs/d/sub/deeper/e', 'E')],
          [(x.key, x.value) for x in rr.leaves])
    check('children is leaves', [x.key for x in rr.leaves],
          [x.key for x in rr.children])
    check('get_subtree visits directories too',
          ['/dirs/d', '/dirs/d/a', '/dirs/d/b', '/dirs/d/sub', '/dirs/d/sub/c',
           '/dirs/d/sub/deeper', '/dirs/d/sub/deeper/e'],
          [x.key for x in rr.get_subtree()])
    unsorted = c[leader].read('/dirs/d', recursive=True, quorum=True)
    check('unsorted recursive read has the same leaves',
          sorted(x.key for x in rr.leaves),
          sorted(x.key for x in unsorted.leaves))
    check('read with a trailing slash', '/dirs/d',
          c[f1].read('/dirs/d/', quorum=True).key)
    check('a file read with a trailing slash', 'A',
          c[f1].read('/dirs/d/a/', quorum=True).value)
    check_raises('write a value to a directory',
                 lambda: c[f1].write('/dirs/d', 'x'), 'EtcdNotFile', 102,
                 '/dirs/d')
    check_raises('update a directory with a value',
                 lambda: c[f2].write('/dirs/d', 'x', prevExist=True),
                 'EtcdNotFile', 102, '/dirs/d')
    check_raises('create a directory over a directory',
                 lambda: c[f1].write('/dirs/d', None, dir=True, prevExist=False),
                 'EtcdAlreadyExist', 105, '/dirs/d')
    r = c[leader].write('/dirs/d/a', None, dir=True)
    check('mkdir over a file replaces it with an empty directory',
          ('set', True, 'A', False), (r.action, r.dir, r._prev_node.value,
                                      r.newKey))
    check_raises('delete a directory as a file', lambda: c[f1].delete('/dirs/d'),
                 'EtcdNotFile', 102, '/dirs/d')
    check_raises('delete a non-empty directory with dir=true',
                 lambda: c[f2].delete('/dirs/d', dir=True),
                 'EtcdDirNotEmpty', 108, '/dirs/d')
    d = c[f1].delete('/dirs/d/a', dir=True)
    check('delete an empty directory with dir=true', ('delete', True, True),
          (d.action, d.dir, d._prev_node.dir))
    d = c[f1].delete('/dirs/d/b', dir=True)
    check('dir=true also deletes a file', ('delete', 'B'),
          (d.action, d._prev_node.value))
    d = c[f2].delete('/dirs/d', recursive=True)
    check('recursive delete of a directory', ('delete', True, '/dirs/d'),
          (d.action, d.dir, d.key))
    check_raises('... and its children are gone',
                 lambda: c[leader].read('/dirs/d/sub/c', quorum=True),
                 'EtcdKeyNotFound', 100, '/dirs/d')
    # Root.
    root = c[f1].read('/')
    check('root: a directory without key or indexes', (True, None, None, None),
          (root.dir, root.key, root.modifiedIndex, root.createdIndex))
    check_raises('write to the root', lambda: c[f1].write('/', 'x'),
                 'EtcdRootReadOnly', 107, '/')
    check_raises('mkdir of the root', lambda: c[f1].write('/', None, dir=True),
                 'EtcdRootReadOnly', 107, '/')
    check_raises('recursive delete of the root',
                 lambda: c[f2].delete('/', recursive=True),
                 'EtcdRootReadOnly', 107, '/')
    # Hidden keys: a last component starting with "_" is not listed.
    c[f1].write('/dirs/h/_hidden', 'h')
    c[f1].write('/dirs/h/shown', 's')
    c[f1].write('/dirs/h/_hdir/x', 'x')
    check('hidden keys ("_...") are not listed, even recursively',
          ['/dirs/h/shown'],
          [x.key for x in c[f1].read('/dirs/h', recursive=True).leaves])
    check('... but can be read directly', 'h', c[f1].read('/dirs/h/_hidden').value)


def test_ttl_start(c, cl, leader, f1, f2):
    """Keys with short TTLs; test_ttl_finish looks at them after they ran
    out, so that the waiting overlaps other checks."""
    section('TTL (start)')
    st = {}
    r = c[f1].write('/ttl/short', 'v', ttl=2)
    st['short'] = r
    check('write with ttl: ttl and expiration', (2, True),
          (r.ttl, bool(EXPIRATION_RE.match(r.expiration or ''))))
    g = c[leader].read('/ttl/short', quorum=True)
    check('read: remaining ttl rounded up, same expiration', (True, True),
          (g.ttl in (1, 2), differs_same_expiration(r.expiration, g.expiration)))
    st['dir'] = c[f2].write('/ttl/dir', None, dir=True, ttl=2)
    c[f2].write('/ttl/dir/child', 'c')
    st['refreshed'] = c[f1].write('/ttl/refreshed', 'keep', ttl=2)
    c[f1].write('/ttl/outlives', 'kept', ttl=2)
    st['cleared'] = c[f1].write('/ttl/cleared', 'x', ttl=2)
    st['updated'] = c[f1].write('/ttl/updated', 'x', ttl=2)
    r = c[f1].write('/ttl/cleared', 'y')
    check('a set without ttl makes the key permanent', (None, None),
          (r.ttl, r.expiration))
    r = c[f1].write('/ttl/updated', 'z', prevExist=True)
    check('an update without ttl makes the key permanent',
          ('update', None, True), (r.action, r.ttl, r._prev_node.ttl in (1, 2)))
    resp = raw(cl.client_port[f1], 'PUT', '/v2/keys/ttl/emptyttl',
               form={'value': 'v', 'ttl': ''})
    check('ttl= (empty) means no TTL', (201, None),
          (resp.status, ((resp.json() or {}).get('node') or {}).get('ttl')))
    # Refresh: the TTL is reset, the value kept, watchers are not told.
    ref = c[f2].refresh('/ttl/refreshed', ttl=300)
    c[f2].refresh('/ttl/outlives', ttl=300)
    check('refresh: action update, value and createdIndex kept, new ttl',
          ('update', 'keep', st['refreshed'].createdIndex, 300),
          (ref.action, ref.value, ref.createdIndex, ref.ttl))
    check('refresh: modifiedIndex advances', True,
          ref.modifiedIndex > st['refreshed'].modifiedIndex)
    after = c[f2].write('/ttl/refreshed', 'after-refresh')
    w = c[f1].watch('/ttl/refreshed', index=ref.modifiedIndex, timeout=5)
    check('a watch from the refresh\'s index skips the refresh',
          ('set', after.modifiedIndex), (w.action, w.modifiedIndex))
    check_raises('refresh of a missing key',
                 lambda: c[f1].refresh('/ttl/none', ttl=5),
                 'EtcdKeyNotFound', 100, '/ttl/none')
    p = cl.client_port[f1]
    resp = raw(p, 'PUT', '/v2/keys/ttl/refreshed',
               form={'ttl': '5', 'refresh': 'true', 'value': 'x'})
    check('refresh with a value: 400, error 211',
          (400, {'errorCode': 211, 'message': 'Value provided on refresh',
                 'cause': 'A value was provided on a refresh', 'index': 0}),
          (resp.status, resp.json()))
    resp = raw(p, 'PUT', '/v2/keys/ttl/refreshed',
               form={'refresh': 'true', 'prevExist': 'true'})
    check('refresh without a ttl: 400, error 212',
          (400, {'errorCode': 212, 'message': 'A TTL must be provided on refresh',
                 'cause': 'No TTL value set', 'index': 0}),
          (resp.status, resp.json()))
    return st


def test_ttl_finish(c, cl, leader, f1, f2, st):
    section('TTL (expiry)')
    short = st['short']
    deadline = time.time() + 8
    w = outcome(lambda: c[f2].watch('/ttl/short', index=short.modifiedIndex + 1,
                                    timeout=8))
    check('a watch sees the key expire: action expire', ('ok', 'expire'),
          (w[0], getattr(w[1], 'action', None)))
    if w[0] == 'ok':
        e = w[1]
        check('expire event: createdIndex, prevNode value', (short.createdIndex,
                                                            'v', None),
              (e.createdIndex, e._prev_node.value, e.value))
    check_raises('an expired key is gone',
                 lambda: c[leader].read('/ttl/short', quorum=True),
                 'EtcdKeyNotFound', 100, '/ttl/short')
    check('the expiry came in time', True, time.time() < deadline)
    gone = until(lambda: not (lambda: outcome(lambda: c[f1].read(
        '/ttl/dir', quorum=True))[0] == 'ok')(), timeout=5)
    check('a directory with a TTL expires with its children', True, bool(gone))
    check_raises('... its child is gone',
                 lambda: c[f1].read('/ttl/dir/child', quorum=True),
                 'EtcdKeyNotFound', 100, '/ttl/dir')
    w = outcome(lambda: c[f1].watch('/ttl/dir/child',
                                    index=st['dir'].modifiedIndex + 2,
                                    timeout=3))
    check('a watch on the child sees the directory expire',
          ('ok', 'expire', '/ttl/dir', True),
          (w[0], getattr(w[1], 'action', None), getattr(w[1], 'key', None),
           getattr(w[1], 'dir', None)))
    check('a refreshed key outlives its first TTL, value kept', 'kept',
          c[leader].read('/ttl/outlives', quorum=True).value)
    check('keys made permanent stay', ('y', 'z'),
          (c[f2].read('/ttl/cleared', quorum=True).value,
           c[f2].read('/ttl/updated', quorum=True).value))


def test_cas(c, cl, leader, f1, f2):
    section('compare-and-swap, compare-and-delete')
    r0 = c[f1].write('/cas/k', 'one')
    r = c[f2].test_and_set('/cas/k', 'two', 'one')
    check('test_and_set: compareAndSwap, createdIndex kept, prevNode',
          ('compareAndSwap', 'two', r0.createdIndex, 'one'),
          (r.action, r.value, r.createdIndex, r._prev_node.value))
    p = check_raises('test_and_set with a wrong previous value',
                     lambda: c[leader].test_and_set('/cas/k', 'x', 'one'),
                     'EtcdCompareFailed', 101, '[one != two]')
    check('... message; index is the current index', ('Compare failed', True),
          (p.get('message'), (p.get('index') or 0) >= r.modifiedIndex))
    r2 = c[f1].write('/cas/k', 'three', prevIndex=r.modifiedIndex)
    check('write with the right prevIndex', ('compareAndSwap', 'three'),
          (r2.action, r2.value))
    check_raises('write with a wrong prevIndex',
                 lambda: c[f2].write('/cas/k', 'x', prevIndex=1),
                 'EtcdCompareFailed', 101, '[1 != %d]' % r2.modifiedIndex)
    check_raises('wrong prevValue and prevIndex: both named',
                 lambda: c[f2].write('/cas/k', 'x', prevValue='no', prevIndex=1),
                 'EtcdCompareFailed', 101,
                 '[no != three] [1 != %d]' % r2.modifiedIndex)
    check_raises('right prevValue, wrong prevIndex: only the index named',
                 lambda: c[f2].write('/cas/k', 'x', prevValue='three',
                                     prevIndex=1),
                 'EtcdCompareFailed', 101, '[1 != %d]' % r2.modifiedIndex)
    r3 = c[leader].write('/cas/k', 'four', prevValue='three',
                         prevIndex=r2.modifiedIndex)
    check('right prevValue and prevIndex', ('compareAndSwap', 'four'),
          (r3.action, r3.value))
    check_raises('compare-and-swap on a missing key',
                 lambda: c[f1].write('/cas/none', 'x', prevValue='a'),
                 'EtcdKeyNotFound', 100, '/cas/none')
    c[f1].write('/cas/dir', None, dir=True)
    check_raises('compare-and-swap on a directory',
                 lambda: c[f1].write('/cas/dir', 'x', prevValue='a'),
                 'EtcdNotFile', 102, '/cas/dir')
    # prevExist.
    r = c[f2].write('/cas/new', 'n', prevExist=False)
    check('prevExist=false on a missing key: create, 201',
          ('create', True, r.modifiedIndex), (r.action, r.newKey, r.createdIndex))
    check_raises('prevExist=false on an existing key',
                 lambda: c[f1].write('/cas/new', 'm', prevExist=False),
                 'EtcdAlreadyExist', 105, '/cas/new')
    check_raises('prevExist=false beats prevValue',
                 lambda: c[f1].write('/cas/new', 'm', prevExist=False,
                                     prevValue='n'),
                 'EtcdAlreadyExist', 105, '/cas/new')
    u = c[leader].write('/cas/new', 'm', prevExist=True)
    check('prevExist=true on an existing key: update, createdIndex kept',
          ('update', 'm', r.createdIndex, 'n'),
          (u.action, u.value, u.createdIndex, u._prev_node.value))
    check_raises('prevExist=true on a missing key',
                 lambda: c[f2].write('/cas/none', 'm', prevExist=True),
                 'EtcdKeyNotFound', 100, '/cas/none')
    u2 = c[f1].write('/cas/new', 'l', prevExist=True, prevValue='m')
    check('prevExist=true with prevValue is a compare-and-swap',
          'compareAndSwap', u2.action)
    obj = c[f2].read('/cas/new', quorum=True)
    obj.value = 'via update()'
    r = c[f2].update(obj)
    check('python-etcd update(): compare-and-swap on prevIndex',
          ('compareAndSwap', 'via update()'), (r.action, r.value))
    check_raises('update() of a stale result',
                 lambda: c[f1].update(obj), 'EtcdCompareFailed', 101)
    # Compare-and-delete.
    r = c[f1].write('/cas/del', 'dv')
    check_raises('delete with a wrong prevValue',
                 lambda: c[f2].delete('/cas/del', prevValue='no'),
                 'EtcdCompareFailed', 101, '[no != dv]')
    check_raises('delete with a wrong prevIndex',
                 lambda: c[f2].delete('/cas/del', prevIndex=1),
                 'EtcdCompareFailed', 101, '[1 != %d]' % r.modifiedIndex)
    d = c[leader].delete('/cas/del', prevValue='dv')
    check('delete with the right prevValue: compareAndDelete',
          ('compareAndDelete', 'dv', r.createdIndex),
          (d.action, d._prev_node.value, d.createdIndex))
    r = c[f1].write('/cas/del', 'dv2')
    d = c[f2].delete('/cas/del', prevIndex=r.modifiedIndex)
    check('delete with the right prevIndex: compareAndDelete',
          'compareAndDelete', d.action)
    check_raises('compare-and-delete of a missing key',
                 lambda: c[f2].delete('/cas/del', prevValue='x'),
                 'EtcdKeyNotFound', 100, '/cas/del')
    check_raises('compare-and-delete of a directory',
                 lambda: c[f2].delete('/cas/dir', prevValue='x'),
                 'EtcdNotFile', 102, '/cas/dir')
    # A counter incremented by compare-and-swap through all three members.
    c[leader].write('/cas/counter', '0')
    errors = []

    def bump(cli, n):
        done = 0
        while done < n:
            try:
                cur = cli.read('/cas/counter', quorum=True)
                cli.write('/cas/counter', str(int(cur.value) + 1),
                          prevIndex=cur.modifiedIndex)
                done += 1
            except etcd.EtcdCompareFailed:
                continue
            except Exception as e:  # noqa
                errors.append(repr(e))
                return
    ts = [threading.Thread(target=bump, args=(c[i], 5), daemon=True)
          for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    check('15 compare-and-swap increments through 3 members: no lost update',
          ('15', []), (c[f1].read('/cas/counter', quorum=True).value, errors))


def test_inorder(c, cl, leader, f1, f2):
    section('in-order keys')
    made = []
    for i in range(6):
        r = c[i % 3].write('/queue', 'job%d' % i, append=True)
        made.append(r)
    check('append: action create, 201', [('create', True)] * 6,
          [(r.action, r.newKey) for r in made])
    names = [r.key[len('/queue/'):] for r in made]
    check('in-order key names (etcd 3.4: %020d of createdIndex; etc: 20 digits)',
          [True] * 6, [differs_inorder_name(n, r.createdIndex)
                       for n, r in zip(names, made)])
    check('in-order names sort in creation order', names, sorted(names))
    r = c[f2].read('/queue', sorted=True, quorum=True)
    check('a sorted listing gives the jobs in order',
          ['job%d' % i for i in range(6)], [x.value for x in r.leaves])
    r = c[f1].write('/queue', 'with-ttl', append=True, ttl=300)
    check('append with ttl', ('with-ttl', 300), (r.value, r.ttl))
    r = c[leader].write('/queue', None, append=True, dir=True)
    check('append a directory', ('create', True), (r.action, r.dir))
    c[f1].write('/qfile', 'x')
    check_raises('append under a file', lambda: c[f1].write('/qfile', 'y',
                                                           append=True),
                 'EtcdNotDir', 104, '/qfile')
    r = c[f2].write('/newqueue/sub', 'first', append=True)
    check('append creates missing parents', True,
          r.key.startswith('/newqueue/sub/'))


def threads_of(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('Threads:'):
                return int(line.split()[1])
    return None


def watchers_of(port):
    """etc's watcher gauge (v3 and v2 watches alike); None for etcd, whose
    v2 watchers it does not count."""
    r = raw(port, 'GET', '/metrics')
    m = re.search(rb'^etcd_debugging_mvcc_watcher_total (\d+)', r.body, re.M)
    return int(m.group(1)) if m and not REFEREE else None


def test_waiters(c, cl, leader, f1, f2):
    """Long-poll watches hold no thread each, and ones whose clients leave
    are forgotten (bounded memory per waiter)."""
    section('long-poll waiters')
    p = cl.client_port[f1]
    pid = e2e_lib.procs[f1].pid
    before = threads_of(pid)
    idle = watchers_of(p)
    socks = []
    for i in range(60):
        s = socket.create_connection(('127.0.0.1', p), timeout=TIMEOUT)
        s.sendall(b'GET /v2/keys/waiters/k%d?wait=true HTTP/1.1\r\nHost: x\r\n\r\n' % i)
        socks.append(s)
    time.sleep(1)
    check_true('60 waiting long-polls add no thread each',
               threads_of(pid) <= before + 8, '%s -> %s threads' % (before, threads_of(pid)))
    if idle is not None:
        until(lambda: watchers_of(p) == idle + 60, timeout=5)
        check('... each a watch of the member\'s', idle + 60, watchers_of(p))
    for s in socks:
        s.close()
    if idle is not None:
        until(lambda: watchers_of(p) == idle, timeout=5)
        check('clients that leave take their watches with them', idle, watchers_of(p))
    r = c[f1].write('/waiters/after', 'ok')
    check('the member still serves', 'ok', c[f2].read('/waiters/after', quorum=True).value)


def test_watch(c, cl, leader, f1, f2):
    section('watches')
    base = c[f1].write('/w/k', '0').modifiedIndex
    # Woken by a write through another member.
    q = in_thread(lambda: c[f1].watch('/w/k', index=base + 1, timeout=8))
    time.sleep(0.5)
    wr = c[f2].write('/w/k', '1')
    kind, r = take(q, 9)
    check('watch on one member woken by a write through another',
          ('ok', 'set', '1', wr.modifiedIndex, '0'),
          (kind, getattr(r, 'action', None), getattr(r, 'value', None),
           getattr(r, 'modifiedIndex', None),
           getattr(getattr(r, '_prev_node', None), 'value', None)))
    # Without an index: the next change from now.
    q = in_thread(lambda: c[leader].watch('/w/k', timeout=8))
    time.sleep(0.5)
    c[f1].write('/w/k', '2')
    kind, r = take(q, 9)
    check('watch without an index waits for the next change',
          ('ok', '2'), (kind, getattr(r, 'value', None)))
    # From history.
    r = c[f2].watch('/w/k', index=base, timeout=5)
    check('watch with a past index answers from history at once',
          ('set', '0', base), (r.action, r.value, r.modifiedIndex))
    r = c[f2].read('/w/k', wait=True, waitIndex=base + 1, timeout=5)
    check('read(wait=True, waitIndex=..) is the same', ('1', wr.modifiedIndex),
          (r.value, r.modifiedIndex))
    # Recursive and not.
    cur = c[f1].write('/w/d/x', 'x').modifiedIndex
    q = in_thread(lambda: c[f2].watch('/w/d', index=cur + 1, recursive=True,
                                      timeout=8))
    time.sleep(0.3)
    c[leader].write('/w/d/sub/y', 'y')
    kind, r = take(q, 9)
    check('recursive watch on a directory fires for a grandchild',
          ('ok', '/w/d/sub/y', 'y'),
          (kind, getattr(r, 'key', None), getattr(r, 'value', None)))
    check_raises('non-recursive watch on a directory ignores children',
                 lambda: c[f1].watch('/w/d', index=cur + 1, timeout=1.5),
                 'EtcdWatchTimedOut')
    # A future index: the first event at or after it.
    now = c[f1].write('/w/f', 'a').modifiedIndex
    q = in_thread(lambda: c[f2].watch('/w/f', index=now + 3, timeout=8))
    time.sleep(0.3)
    c[f1].write('/w/f', 'b')
    c[f1].write('/w/f', 'c')
    last = c[f1].write('/w/f', 'd')
    kind, r = take(q, 9)
    check('watch at a future index waits for that index',
          ('ok', 'd', last.modifiedIndex),
          (kind, getattr(r, 'value', None), getattr(r, 'modifiedIndex', None)))
    # Every action name, read back as watch events.
    start = c[f1].write('/w/act', 'set').modifiedIndex
    c[f2].delete('/w/act')
    c[f2].write('/w/act', 'created', prevExist=False)
    c[leader].write('/w/act', 'updated', prevExist=True)
    c[f1].write('/w/act', 'swapped', prevValue='updated')
    c[f2].delete('/w/act', prevValue='swapped')
    c[f1].write('/w/act/child', 'c')
    c[f1].delete('/w/act', recursive=True)
    got = []
    idx = start
    for _ in range(8):
        kind, r = outcome(lambda: c[leader].watch('/w/act', index=idx,
                                                  recursive=True, timeout=3))
        if kind != 'ok':
            got.append(kind)
            break
        got.append((r.action, r.key))
        idx = r.modifiedIndex + 1
    check('watch actions: set, delete, create, update, compareAndSwap, '
          'compareAndDelete, delete (dir)',
          [('set', '/w/act'), ('delete', '/w/act'), ('create', '/w/act'),
           ('update', '/w/act'), ('compareAndSwap', '/w/act'),
           ('compareAndDelete', '/w/act'), ('set', '/w/act/child'),
           ('delete', '/w/act')], got)
    r = c[f2].watch('/w/act/child', index=idx - 1, timeout=3)
    check('a watch below a deleted directory sees the directory\'s delete',
          ('delete', '/w/act', True), (r.action, r.key, r.dir))
    # eternal_watch, a few steps, woken through other members.
    first = c[f1].write('/w/eternal', 'e0').modifiedIndex
    q = queue.Queue()

    def eternal():
        try:
            for i, ev in enumerate(c[f1].eternal_watch('/w/eternal',
                                                       index=first + 1)):
                q.put((ev.action, ev.value))
                if i == 2:
                    return
        except Exception as e:  # noqa
            q.put(('error', repr(e)))
    threading.Thread(target=eternal, daemon=True).start()
    c[f2].write('/w/eternal', 'e1')
    time.sleep(0.3)
    c[leader].write('/w/eternal', 'e2', prevValue='e1')
    time.sleep(0.3)
    c[f2].write('/w/eternal', 'e3', prevExist=True)
    got = [take(q, 5) for _ in range(3)]
    check('eternal_watch yields each change in order',
          [('set', 'e1'), ('compareAndSwap', 'e2'), ('update', 'e3')], got)
    # Hidden keys do not wake a recursive watch on their parent.
    h = c[f1].write('/w/h/visible', '1').modifiedIndex
    c[f1].write('/w/h/_hidden', 'x')
    q = in_thread(lambda: c[f2].watch('/w/h', index=h + 2, recursive=True,
                                      timeout=8))
    time.sleep(0.5)
    c[f1].write('/w/h/_hidden', 'y')
    c[f1].write('/w/h/visible', '2')
    kind, r = take(q, 9)
    check('a recursive watch is not woken by a hidden key',
          ('ok', '/w/h/visible'), (kind, getattr(r, 'key', None)))
    check_raises('watch with an invalid waitIndex (raw "abc")',
                 lambda: c[f1].read('/w/k', wait=True, waitIndex='abc'),
                 'EtcdValueError', 203)


def test_raw(c, cl, leader, f1, f2):
    """Headers, exact bodies and malformed input over plain HTTP."""
    section('raw HTTP: headers, bodies, malformed input')
    p = cl.client_port[f1]
    r = raw(p, 'PUT', '/v2/keys/raw/k', form={'value': 'v'})
    j = r.json() or {}
    n = (j.get('node') or {}).get('modifiedIndex')
    check('set: 201 and the exact body',
          (201, ('{"action":"set","node":{"key":"/raw/k","value":"v",'
                 '"modifiedIndex":%s,"createdIndex":%s}}\n' % (n, n)).encode()),
          (r.status, r.body))
    check('set: headers', ('application/json', str(n), True, True, True),
          (r.h('Content-Type'), r.h('X-Etcd-Index'),
           INDEX_RE.match(r.h('X-Raft-Index') or '') is not None,
           INDEX_RE.match(r.h('X-Raft-Term') or '') is not None,
           re.match(r'^[0-9a-f]{1,16}$', r.h('X-Etcd-Cluster-Id') or '')
           is not None))
    _, st = gw(p, 'maintenance/status', {})
    cid = int(((st or {}).get('header') or {}).get('cluster_id', 0))
    check('X-Etcd-Cluster-Id is the v3 cluster id in hex', '%x' % cid,
          r.h('X-Etcd-Cluster-Id'))
    check('every member answers the same X-Etcd-Cluster-Id',
          {r.h('X-Etcd-Cluster-Id')},
          {raw(port, 'GET', '/v2/keys/').h('X-Etcd-Cluster-Id')
           for port in cl.client_port})
    r = raw(p, 'PUT', '/v2/keys/raw/k', form={'value': 'w'})
    m = (r.json() or {}).get('node', {}).get('modifiedIndex')
    check('overwrite: 200 and the exact body with prevNode',
          (200, ('{"action":"set","node":{"key":"/raw/k","value":"w",'
                 '"modifiedIndex":%s,"createdIndex":%s},"prevNode":{"key":'
                 '"/raw/k","value":"v","modifiedIndex":%s,"createdIndex":%s}}\n'
                 % (m, m, n, n)).encode()), (r.status, r.body))
    r = raw(p, 'GET', '/v2/keys/raw/nope')
    idx = r.h('X-Etcd-Index')
    check('404: exact error body, X-Etcd-Index = its index',
          (404, ('{"errorCode":100,"message":"Key not found","cause":'
                 '"/raw/nope","index":%s}\n' % idx).encode(), 'application/json'),
          (r.status, r.body, r.h('Content-Type')))
    check('an error answer has no X-Raft-* headers but the cluster id',
          (None, None, True), (r.h('X-Raft-Index'), r.h('X-Raft-Term'),
                               r.h('X-Etcd-Cluster-Id') is not None))
    r = raw(p, 'GET', '/v2/keys/raw/k/sub')
    check('below a file: 400 (not 403), error 104',
          (400, 104, '/raw/k'), (r.status, (r.json() or {}).get('errorCode'),
                                 (r.json() or {}).get('cause')))
    r = raw(p, 'DELETE', '/v2/keys/?recursive=true')
    check('recursive delete of the root: 400 (not 403), error 107',
          (400, 107, 'Root is read only', '/'),
          (r.status,) + tuple((r.json() or {}).get(k)
                              for k in ('errorCode', 'message', 'cause')))
    r = raw(p, 'PUT', '/v2/keys', form={'value': 'x'})
    check('/v2/keys without a trailing slash is the root too', (400, 107),
          (r.status, (r.json() or {}).get('errorCode')))
    r = raw(p, 'GET', '/v2/keys')
    check('GET /v2/keys: the root directory', (200, True),
          (r.status, ((r.json() or {}).get('node') or {}).get('dir')))
    r = raw(p, 'PUT', '/v2/keys/raw/cf', form={'value': '1'})
    r = raw(p, 'PUT', '/v2/keys/raw/cf', form={'value': '2', 'prevValue': '0'})
    check('compare failed: 412, exact body',
          (412, ('{"errorCode":101,"message":"Compare failed","cause":'
                 '"[0 != 1]","index":%s}\n' % r.h('X-Etcd-Index')).encode()),
          (r.status, r.body))
    r = raw(p, 'PUT', '/v2/keys/raw/cf', form={'value': '2', 'prevExist': 'false'})
    check('already exists: 412, 105', (412, 105),
          (r.status, (r.json() or {}).get('errorCode')))
    raw(p, 'PUT', '/v2/keys/raw/dir/x', form={'value': '1'})
    r = raw(p, 'DELETE', '/v2/keys/raw/dir?dir=true')
    check('directory not empty: 403, 108', (403, 108),
          (r.status, (r.json() or {}).get('errorCode')))
    r = raw(p, 'PUT', '/v2/keys/raw/dir', form={'value': 'x'})
    check('not a file: 403, 102', (403, 102),
          (r.status, (r.json() or {}).get('errorCode')))

    def bad(name, method, path, form, code, cause, message):
        r = raw(p, method, path, form=form)
        check(name, (400, {'errorCode': code, 'message': message,
                           'cause': cause, 'index': 0}, '0'),
              (r.status, r.json(), r.h('X-Etcd-Index')))
    ttl_nan = 'The given TTL in POST form is not a number'
    idx_nan = 'The given index in POST form is not a number'
    bad('ttl=abc', 'PUT', '/v2/keys/raw/t', {'value': '1', 'ttl': 'abc'},
        202, 'invalid value for "ttl"', ttl_nan)
    bad('ttl=-1', 'PUT', '/v2/keys/raw/t', {'value': '1', 'ttl': '-1'},
        202, 'invalid value for "ttl"', ttl_nan)
    bad('ttl=1.5', 'PUT', '/v2/keys/raw/t', {'value': '1', 'ttl': '1.5'},
        202, 'invalid value for "ttl"', ttl_nan)
    bad('waitIndex=abc', 'GET', '/v2/keys/raw/k?wait=true&waitIndex=abc', None,
        203, 'invalid value for "waitIndex"', idx_nan)
    bad('waitIndex=-1', 'GET', '/v2/keys/raw/k?wait=true&waitIndex=-1', None,
        203, 'invalid value for "waitIndex"', idx_nan)
    bad('prevIndex=abc', 'PUT', '/v2/keys/raw/k',
        {'value': '1', 'prevIndex': 'abc'}, 203, 'invalid value for "prevIndex"',
        idx_nan)
    bad('prevExist=maybe', 'PUT', '/v2/keys/raw/k',
        {'value': '1', 'prevExist': 'maybe'}, 209,
        'invalid value for prevExist', 'Invalid field')
    bad('recursive=yes', 'GET', '/v2/keys/raw?recursive=yes', None, 209,
        'invalid value for "recursive"', 'Invalid field')
    bad('recursive without a value', 'GET', '/v2/keys/raw?recursive', None, 209,
        'invalid value for "recursive"', 'Invalid field')
    bad('dir=x', 'PUT', '/v2/keys/raw/k', {'dir': 'x'}, 209,
        'invalid value for "dir"', 'Invalid field')
    bad('wait on a PUT', 'PUT', '/v2/keys/raw/k', {'value': '1', 'wait': 'true'},
        209, '"wait" can only be used with GET requests', 'Invalid field')
    bad('empty prevValue', 'PUT', '/v2/keys/raw/k',
        {'value': '1', 'prevValue': ''}, 201, '"prevValue" cannot be empty',
        'PrevValue is Required in POST form')
    bad('a bad escape in the form', 'PUT', '/v2/keys/raw/k?value=%ZZ', None,
        210, 'invalid URL escape "%ZZ"', 'Invalid POST form')
    r = raw(p, 'GET', '/v2/keys/raw/k?recursive=1&sorted=T&quorum=TRUE&foo=bar')
    check('Go booleans (1, T, TRUE) and unknown parameters are accepted',
          (200, 'w'), (r.status, ((r.json() or {}).get('node') or {}).get('value')))
    # Form encoding: query string and body.
    r = raw(p, 'PUT', '/v2/keys/raw/q?value=fromquery')
    check('value in the query string', (201, 'fromquery'),
          (r.status, ((r.json() or {}).get('node') or {}).get('value')))
    r = raw(p, 'PUT', '/v2/keys/raw/q?value=fromquery', form={'value': 'frombody'})
    check('the body wins over the query string', 'frombody',
          ((r.json() or {}).get('node') or {}).get('value'))
    r = raw(p, 'PUT', '/v2/keys/raw/q', body=b'value=1', ctype=None)
    check('a body without a form Content-Type is ignored', (200, ''),
          (r.status, ((r.json() or {}).get('node') or {}).get('value')))
    r = raw(p, 'PUT', '/v2/keys/raw/q', body=b'value=a+b%20c',
            ctype=FORM + '; charset=utf-8')
    check('a form with charset, + and %20', 'a b c',
          ((r.json() or {}).get('node') or {}).get('value'))
    raw(p, 'PUT', '/v2/keys/raw/dq', form={'value': 'keep'})
    r = raw(p, 'DELETE', '/v2/keys/raw/dq', form={'prevValue': 'wrong'})
    check('DELETE reads the query string only (a body prevValue is ignored)',
          (200, 'delete'), (r.status, (r.json() or {}).get('action')))
    r = raw(p, 'PUT', '/v2/keys/raw/nv', form={'value': 'x',
                                              'noValueOnSuccess': 'true'})
    check('noValueOnSuccess=true: only the action', (201, b'{"action":"set"}\n'),
          (r.status, r.body))
    # Escapes and bytes.
    r = raw(p, 'PUT', '/v2/keys/raw/html', form={'value': '<a&b>'})
    check('JSON escapes < > & as \\u003c \\u003e \\u0026', True,
          b'"value":"\\u003ca\\u0026b\\u003e"' in r.body)
    r = raw(p, 'PUT', '/v2/keys/raw/sp%20ace%3Fq', form={'value': 'é'})
    check('escaped key characters are decoded', (201, '/raw/sp ace?q', 'é'),
          (r.status, ((r.json() or {}).get('node') or {}).get('key'),
           ((r.json() or {}).get('node') or {}).get('value')))
    r = raw(p, 'PUT', '/v2/keys/raw/bad%FF', body=b'value=%FF%FE')
    check('non-UTF-8 key and value: stored, rendered as U+FFFD',
          (201, '/raw/bad\ufffd', '\ufffd\ufffd'),
          (r.status, ((r.json() or {}).get('node') or {}).get('key'),
           ((r.json() or {}).get('node') or {}).get('value')))
    r = raw(p, 'GET', '/v2/keys/raw/bad%FF')
    check('... and read back by the same bytes', (200, '\ufffd\ufffd'),
          (r.status, ((r.json() or {}).get('node') or {}).get('value')))
    # Unclean paths: Go's mux redirects to the cleaned path, writes nothing.
    for path, loc in (('/v2/keys/raw/x/../k', '/v2/keys/raw/k'),
                      ('/v2/keys/raw//k', '/v2/keys/raw/k'),
                      ('/v2/keys/raw/./k', '/v2/keys/raw/k'),
                      ('/v2/keys/../../version', '/version')):
        r = raw(p, 'GET', path)
        check('GET %s: 301 to the clean path' % path, (301, loc),
              (r.status, r.h('Location')))
    r = raw(p, 'PUT', '/v2/keys/raw/dd//ee', form={'value': '1'})
    check('PUT with // : 301, nothing written', (301, '/v2/keys/raw/dd/ee', 404),
          (r.status, r.h('Location'),
           raw(p, 'GET', '/v2/keys/raw/dd/ee').status))
    # Methods.
    r = raw(p, 'PATCH', '/v2/keys/raw/k', form={'value': 'x'})
    check('PATCH: 405 with Allow', (405, 'HEAD,GET,PUT,POST,DELETE',
                                    b'Method Not Allowed\n'),
          (r.status, r.h('Allow'), r.body))
    r = raw(p, 'HEAD', '/v2/keys/raw/k')
    check('HEAD: 200, JSON headers, no body', (200, 'application/json', b''),
          (r.status, r.h('Content-Type'), r.body))
    r = raw(p, 'HEAD', '/v2/keys/raw/nope')
    check('HEAD of a missing key: 404', 404, r.status)
    # Sizes.
    differs_big_value(p)
    differs_huge_body(p)
    check('... the member still serves', 'w',
          getattr(tried(lambda: c[f1].read('/raw/k', quorum=True)), 'value',
                  None))


def test_raw_shapes(c, cl, leader, f1, f2):
    """Exact JSON of listings, deletes and TTL nodes; refresh without
    prevExist; watch headers."""
    section('raw HTTP: JSON shapes, refresh, watch headers')
    p = cl.client_port[f2]
    w = raw(p, 'PUT', '/v2/keys/shape/ld/a', form={'value': '1'})
    n = ((w.json() or {}).get('node') or {}).get('modifiedIndex')
    r = raw(p, 'GET', '/v2/keys/shape/ld')
    check('a listing: exact body; X-Etcd-Index is the current index',
          (200, ('{"action":"get","node":{"key":"/shape/ld","dir":true,"nodes":'
                 '[{"key":"/shape/ld/a","value":"1","modifiedIndex":%s,'
                 '"createdIndex":%s}],"modifiedIndex":%s,"createdIndex":%s}}\n'
                 % (n, n, n, n)).encode(), str(n)),
          (r.status, r.body, r.h('X-Etcd-Index')))
    r = raw(p, 'GET', '/v2/keys/')
    root = (r.json() or {}).get('node') or {}
    check('the root node: dir and nodes only', ['dir', 'nodes'], sorted(root))
    r = raw(p, 'DELETE', '/v2/keys/shape/ld/a')
    d = ((r.json() or {}).get('node') or {}).get('modifiedIndex')
    check('delete: exact body',
          (200, ('{"action":"delete","node":{"key":"/shape/ld/a","modifiedIndex":'
                 '%s,"createdIndex":%s},"prevNode":{"key":"/shape/ld/a","value":'
                 '"1","modifiedIndex":%s,"createdIndex":%s}}\n' % (d, n, n, n)
                 ).encode()), (r.status, r.body))
    r = raw(p, 'DELETE', '/v2/keys/shape/ld?dir=true')
    check('delete of a directory: node and prevNode carry dir',
          (200, '{"action":"delete","node":{"key":"/shape/ld","dir":true,'
                '"modifiedIndex":%d,"createdIndex":%s},"prevNode":{"key":'
                '"/shape/ld","dir":true,"modifiedIndex":%s,"createdIndex":%s}}\n'
                % (int(d) + 1, n, n, n)), (r.status, r.body.decode()))
    r = raw(p, 'PUT', '/v2/keys/shape/t', form={'value': 'v', 'ttl': '100'})
    check_true('a TTL node: key, value, expiration, ttl, modifiedIndex, '
               'createdIndex', re.match(
                   r'^\{"action":"set","node":\{"key":"/shape/t","value":"v",'
                   r'"expiration":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d'
                   r'(?:\.\d{1,9})?Z","ttl":100,"modifiedIndex":(\d+),'
                   r'"createdIndex":\1\}\}\n$', r.body.decode()) is not None,
               repr(r.body))
    r = raw(p, 'PUT', '/v2/keys/shape/dt', form={'dir': 'true', 'ttl': '100'})
    node = (r.json() or {}).get('node') or {}
    check('a directory with a TTL', (201, True, 100, False),
          (r.status, node.get('dir'), node.get('ttl'), 'nodes' in node))
    # refresh=true without prevExist: a "set" keeping the value, and a new
    # createdIndex; with prevExist=false on a missing key it creates "".
    made = c[f2].write('/shape/rf', 'kept', ttl=100)
    r = raw(p, 'PUT', '/v2/keys/shape/rf', form={'ttl': '200', 'refresh': 'true'})
    j = r.json() or {}
    node = j.get('node') or {}
    check('refresh without prevExist: action set, value kept, ttl 200, 200 OK',
          (200, 'set', 'kept', 200, 'kept'),
          (r.status, j.get('action'), node.get('value'), node.get('ttl'),
           (j.get('prevNode') or {}).get('value')))
    check('... createdIndex is the new index (set replaces the node)',
          (node.get('modifiedIndex'), True),
          (node.get('createdIndex'),
           (node.get('modifiedIndex') or 0) > made.modifiedIndex))
    r = raw(p, 'PUT', '/v2/keys/shape/rfnew',
            form={'ttl': '100', 'refresh': 'true', 'prevExist': 'false'})
    j = r.json() or {}
    check('refresh with prevExist=false on a missing key creates it empty',
          (201, 'create', '', 100),
          (r.status, j.get('action'), (j.get('node') or {}).get('value'),
           (j.get('node') or {}).get('ttl')))
    r = raw(p, 'PUT', '/v2/keys/shape/rfnone', form={'ttl': '100',
                                                     'refresh': 'true'})
    check('refresh of a missing key without prevExist: 404',
          (404, 100), (r.status, (r.json() or {}).get('errorCode')))
    r = raw(p, 'PUT', '/v2/keys/shape/rf', form={'value': 'p0', 'prevIndex': '0'})
    check('prevIndex=0 is no condition', (200, 'set'),
          (r.status, (r.json() or {}).get('action')))
    check_raises('python-etcd write with a ttl that is not a number',
                 lambda: c[f1].write('/shape/badttl', 'v', ttl='abc'),
                 'EtcdValueError', 202)
    # Watch headers: X-Etcd-Index is the index when the watch started.
    past = c[f2].write('/shape/w', 'old').modifiedIndex
    c[f2].write('/shape/w', 'new')
    cur = c[f2].read('/shape/w', quorum=True).etcd_index
    r = raw(p, 'GET', '/v2/keys/shape/w?wait=true&waitIndex=%d' % past)
    check('a watch answered from history: the event, X-Etcd-Index = current',
          (200, 'old', str(cur), 'application/json'),
          (r.status, ((r.json() or {}).get('node') or {}).get('value'),
           r.h('X-Etcd-Index'), r.h('Content-Type')))
    q = in_thread(lambda: raw(p, 'GET', '/v2/keys/shape/w?wait=true'))
    time.sleep(0.5)
    later = c[f1].write('/shape/w', 'later').modifiedIndex
    kind, r = take(q, 9)
    check('a waiting watch: the event, X-Etcd-Index = index at its start',
          ('ok', 200, later, str(cur)),
          (kind, getattr(r, 'status', None),
           ((getattr(r, 'json', lambda: {})() or {}).get('node') or {}).get(
               'modifiedIndex'),
           getattr(r, 'h', lambda _: None)('X-Etcd-Index')))
    check('... with X-Raft-Index and X-Raft-Term', (True, True),
          (INDEX_RE.match(getattr(r, 'h', lambda _: '')('X-Raft-Index') or '')
           is not None,
           INDEX_RE.match(getattr(r, 'h', lambda _: '')('X-Raft-Term') or '')
           is not None))


def test_cluster(c, cl, leader, f1, f2, member_ids):
    section('members, machines, stats, version')
    m = tried(lambda: c[f1].machines)
    check('machines lists every client URL', sorted(cl.client_url), sorted(m))
    r = raw(cl.client_port[f2], 'GET', '/v2/machines')
    check('/v2/machines is text/plain, ", " separated',
          (200, True, ', '.join(sorted(cl.client_url))),
          (r.status, (r.h('Content-Type') or '').startswith('text/plain'),
           ', '.join(sorted(r.body.decode().split(', ')))))
    mem = tried(lambda: c[leader].members)
    check('members: three, by id', sorted('%x' % i for i in member_ids),
          sorted(mem))
    check('members: names and URLs',
          sorted(zip(NAMES, [[u] for u in cl.peer_url],
                     [[u] for u in cl.client_url])),
          sorted((v.get('name'), v.get('peerURLs'), v.get('clientURLs'))
                 for v in mem.values()))
    ld = tried(lambda: c[f2].leader)
    check('leader is the member the v3 status names', NAMES[leader],
          ld.get('name'))
    r = raw(cl.client_port[f1], 'GET', '/v2/members/leader')
    check('/v2/members/leader', (200, NAMES[leader]),
          (r.status, (r.json() or {}).get('name')))
    for i in range(3):
        s = tried(lambda: c[i].stats)
        check('stats on %s: name, id, state' % NAMES[i],
              (NAMES[i], '%x' % member_ids[i],
               'StateLeader' if i == leader else 'StateFollower',
               '%x' % member_ids[leader]),
              (s.get('name'), s.get('id'), s.get('state'),
               (s.get('leaderInfo') or {}).get('leader')))
    ls = tried(lambda: c[leader].leader_stats)
    check('leader_stats on the leader names both followers',
          ('%x' % member_ids[leader],
           sorted('%x' % member_ids[i] for i in (f1, f2))),
          (ls.get('leader'), sorted((ls.get('followers') or {}).keys())))
    r = raw(cl.client_port[f1], 'GET', '/v2/stats/leader')
    check('/v2/stats/leader on a follower: 403 not current leader',
          (403, {'message': 'not current leader'}), (r.status, r.json()))
    check_raises('python-etcd leader_stats on a follower',
                 lambda: c[f1].leader_stats, 'EtcdException')
    ss = tried(lambda: c[f2].store_stats)
    check('store_stats fields', True, all(
        k in ss for k in ('getsSuccess', 'setsSuccess', 'deleteSuccess',
                          'compareAndSwapSuccess', 'expireCount', 'watchers')))
    r = raw(cl.client_port[f2], 'GET', '/version')
    check('/version: JSON with etcdserver and etcdcluster',
          (200, 'application/json', ['etcdcluster', 'etcdserver']),
          (r.status, r.h('Content-Type'), sorted(r.json() or {})))
    r = raw(cl.client_port[f2], 'GET', '/v2/members')
    check('/v2/members: JSON, cluster id header, fields of a member',
          (200, 'application/json', True,
           [['clientURLs', 'id', 'name', 'peerURLs']] * 3),
          (r.status, r.h('Content-Type'), r.h('X-Etcd-Cluster-Id') is not None,
           [sorted(x) for x in (r.json() or {}).get('members', [])]))
    check('version and cluster_version', (True, '3.4.0'),
          (tried(lambda: c[f1].version).startswith('3.4.'),
           tried(lambda: c[f1].cluster_version)))
    rc = tried(lambda: etcd.Client(host=(('127.0.0.1', cl.client_port[f1]),),
                                   allow_reconnect=True, read_timeout=TIMEOUT))
    check('allow_reconnect discovers the other members through /v2/machines',
          sorted(cl.client_url[i] for i in range(3) if i != f1),
          sorted(getattr(rc, '_machines_cache', [])))


def test_lock(c, cl, leader, f1, f2):
    section('python-etcd Lock')
    a = etcd.Lock(c[f1], 'job')
    b = etcd.Lock(c[f2], 'job')
    check('first lock acquired', True, a.acquire(blocking=False, lock_ttl=20))
    check('is_acquired', True, a.is_acquired)
    check('second lock not acquired while held', False,
          b.acquire(blocking=False, lock_ttl=20))
    q = in_thread(lambda: b.acquire(blocking=True, lock_ttl=20, timeout=8))
    time.sleep(0.5)
    a.release()
    kind, got = take(q, 9)
    check('a waiting lock is acquired when the holder releases (other member)',
          ('ok', True), (kind, got))
    check('the released lock is no longer held', False, a.is_acquired)
    lk = c[leader].read('/_locks/job', recursive=True, quorum=True)
    check('lock keys live under /_locks/job (one left)', 1,
          len([x for x in lk.leaves if x.key != '/_locks/job']))
    b.release()
    with etcd.Lock(c[leader], 'ctx') as lck:
        check('lock as a context manager', True, lck.is_acquired)


def test_auth(c, cl, leader, f1, f2):
    section('access control (%s)' % ('v2 auth store: etcd 3.4' if REFEREE
                                     else 'v3 users and roles: etc'))
    c[leader].write('/au/x', 'before')
    c[leader].write('/other/y', 'secret')
    differs_auth_setup(c, cl, leader)
    # Every member applies the change (a moment later on followers).
    check('every member refuses an unauthenticated read', [True] * 3,
          [bool(until(lambda i=i: outcome(lambda: c[i].read('/other/y'))[0] ==
                      'EtcdInsufficientPermissions', timeout=5))
           for i in range(3)])
    u = cl.client(f1, username='u', password='upw')
    r = u.write('/au/x', 'by-u')
    check('user writes under /au/', ('set', 'by-u'), (r.action, r.value))
    check('user reads under /au/', 'by-u', u.read('/au/x', quorum=True).value)
    u.write('/au/sub/z', 'z')
    r = u.read('/au/', recursive=True, sorted=True)
    check('user lists /au/ recursively', ['/au/sub/z', '/au/x'],
          [x.key for x in r.leaves])
    wq = in_thread(lambda: cl.client(f2, username='u', password='upw').watch(
        '/au/x', index=r.etcd_index + 1, timeout=8))
    time.sleep(0.5)
    cl.client(leader, username='root', password='rootpw').write('/au/x', 'root')
    kind, w = take(wq, 9)
    check('user watches under /au/ (woken by root through another member)',
          ('ok', 'root'), (kind, getattr(w, 'value', None)))
    check('user deletes under /au/', 'delete', u.delete('/au/sub/z').action)
    p = check_raises('user writes outside /au/',
                     lambda: u.write('/other/y', 'x'),
                     'EtcdInsufficientPermissions', 110)
    check('... etcd\'s message and status',
          ('The request requires user authentication', 401),
          (p.get('message'), p.get('status')))
    check_raises('user reads outside /au/', lambda: u.read('/other/y'),
                 'EtcdInsufficientPermissions', 110)
    check_raises('user deletes outside /au/', lambda: u.delete('/other/y'),
                 'EtcdInsufficientPermissions', 110)
    check_raises('user watches outside /au/',
                 lambda: u.watch('/other/y', timeout=3),
                 'EtcdInsufficientPermissions', 110)
    kind, root = outcome(lambda: u.read('/', recursive=True))
    shown = [x.key for x in root.leaves] if kind == 'ok' else []
    check('a listing of / never shows what the user may not read', [],
          [k for k in shown if not k.startswith('/au/')])
    kind, root = outcome(lambda: u.read('/'))
    shown = [n.get('key') for n in root._children] if kind == 'ok' else []
    check('a non-recursive listing of / shows no /other', False,
          '/other' in shown)
    check_raises('no credentials', lambda: c[f2].read('/au/x'),
                 'EtcdInsufficientPermissions', 110)
    check_raises('a wrong password',
                 lambda: cl.client(f2, username='u', password='no').read('/au/x'),
                 'EtcdInsufficientPermissions', 110)
    r = raw(cl.client_port[f2], 'PUT', '/v2/keys/other/y', form={'value': 'x'},
            headers={'Authorization': 'Basic ' + b64('u:upw')})
    check('refusal: 401 with etcd\'s error body',
          (401, 110, 'The request requires user authentication'),
          (r.status, (r.json() or {}).get('errorCode'),
           (r.json() or {}).get('message')))
    rootc = cl.client(f2, username='root', password='rootpw')
    check('root reads anywhere', 'secret', rootc.read('/other/y').value)
    differs_auth_teardown(cl, leader)
    # Another member may apply the change a moment later.
    check('after auth disable anyone reads again (on every member)',
          ['secret'] * 3,
          [getattr(until(lambda i=i: c[i].read('/other/y', quorum=True),
                         timeout=5, quiet=True), 'value', None) for i in range(3)])


# --- main -------------------------------------------------------------------

def wait_ready(cl, deadline_s=40):
    """Every member answers /health, then a quorum v2 read (a leader exists
    and the v2 API is served)."""
    deadline = time.time() + deadline_s
    for i, port in enumerate(cl.client_port):
        while True:
            try:
                r = raw(port, 'GET', '/health', timeout=2)
                if r.status == 200 and b'true' in r.body:
                    break
            except Exception:  # noqa
                pass
            if e2e_lib.procs[i].poll() is not None:
                raise RuntimeError('%s exited with %s' % (
                    NAMES[i], e2e_lib.procs[i].poll()))
            if time.time() > deadline:
                raise RuntimeError('member on %d never became healthy' % port)
            time.sleep(0.1)
    ok = True
    deadline = time.time() + 15
    for port in cl.client_port:
        while True:
            try:
                r = raw(port, 'GET', '/v2/keys/?quorum=true', timeout=2)
                if r.status == 200:
                    break
            except Exception:  # noqa
                pass
            if time.time() > deadline:
                ok = False
                break
            time.sleep(0.1)
    check('every member serves /v2/keys', True, ok)


def test_bare_flag(work):
    """etcd's boolean flags are Go booleans: a bare `--enable-v2` (no value,
    here followed by another flag, which it must not take as its value) is
    how deployments write it. One member on its own ports."""
    section('a bare --enable-v2')
    port, peer = e2e_lib.free_port(), e2e_lib.free_port()
    purl, curl = 'http://127.0.0.1:%d' % peer, 'http://127.0.0.1:%d' % port
    logf = open(os.path.join(work, 'bare.log'), 'ab')
    p = subprocess.Popen(
        [SERVER, '--name', 'bare', '--data-dir', os.path.join(work, 'bare'),
         '--listen-client-urls', curl, '--advertise-client-urls', curl,
         '--listen-peer-urls', purl, '--initial-advertise-peer-urls', purl,
         '--enable-v2', '--initial-cluster', 'bare=' + purl],
        stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()
    e2e_lib.others.append(p)  # killed however the test ends
    status = None
    deadline = time.time() + 15
    while time.time() < deadline and p.poll() is None:
        try:
            status = raw(port, 'GET', '/v2/keys/', timeout=2).status
            if status == 200:
                break
        except Exception:  # noqa
            pass
        time.sleep(0.1)
    check('a member started with a bare --enable-v2 serves /v2/keys',
          (None, 200), (p.poll(), status))
    p.kill()
    p.wait(timeout=5)


def member_status(cl):
    """(member ids, index of the leader) from the v3 gateway's status."""
    ids, leaders = [], set()
    for port in cl.client_port:
        _, st = gw(port, 'maintenance/status', {})
        ids.append(int(st['header']['member_id']))
        leaders.add(int(st['leader']))
    check('one leader known to every member', 1, len(leaders))
    lid = leaders.pop()
    return ids, (ids.index(lid) if lid in ids else 0)


def body(work):
    log('server %s (%s)' % (SERVER, 'referee: etcd 3.4' if REFEREE else 'etc'))
    cl = Cluster(work)
    t_start = time.time()
    for i in range(3):
        cl.start(i)
    wait_ready(cl)
    log('cluster ready after %.1fs' % (time.time() - t_start))
    member_ids, leader = member_status(cl)
    f1, f2 = [i for i in range(3) if i != leader]
    log('leader is %s; followers %s, %s' % (NAMES[leader], NAMES[f1],
                                            NAMES[f2]))
    c = [cl.client(i) for i in range(3)]
    args = (c, cl, leader, f1, f2)
    ttl_state = e2e_lib.attempt('test_ttl_start', test_ttl_start, *args)
    for test in (test_keys, test_dirs, test_cas, test_inorder):
        e2e_lib.attempt(test.__name__, test, *args)
    if ttl_state:
        e2e_lib.attempt('test_ttl_finish', test_ttl_finish, *(args + (ttl_state,)))
    for test in (test_watch, test_waiters, test_raw, test_raw_shapes, differs_keyspace,
                 test_lock):
        e2e_lib.attempt(test.__name__, test, *args)
    e2e_lib.attempt('test_cluster', test_cluster, *(args + (member_ids,)))
    e2e_lib.attempt('differs_history_window', differs_history_window, *args)
    e2e_lib.attempt('test_auth', test_auth, *args)
    e2e_lib.attempt('test_bare_flag', test_bare_flag, work)


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(
        SERVER, 'v2py-', NAMES, body, usage='<server binary> [referee]'))
