#!/usr/bin/python3
"""The JSON gateway's streaming calls (POST /v3/watch, /v3/lease/keepalive)
on a three-member cluster, driven with curl and with Debian's python3-etcd3gw
(the grpc-gateway client OpenStack uses): watches of a key and a prefix fed
by writes through another member, cancel, several creates in one body, a
start revision, lease keep-alives, a client that leaves, more open watches
than the server has HTTP workers, a watch refused with auth on, malformed
bodies, and the /v3beta/ prefix. Runs against etc and, unchanged, against
Debian's etcd 3.4 (a few checks of etc's own limits are skipped there).

    /usr/bin/python3 server/gateway_stream_test.py <server binary>
"""
import base64
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.lease import Lease

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402 (beside this file)
from e2e_lib import check, check_true, log, section, until  # noqa: E402

SERVER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
IS_ETCD = SERVER is not None and os.path.basename(SERVER) == 'etcd'
NAMES = ['g1', 'g2', 'g3']
TIMEOUT = 10  # seconds, for every request


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


def post(port, path, body, token=None, timeout=TIMEOUT):
    """POSTs a JSON body (a dict, or text as it is) with curl; returns
    (HTTP status, body text)."""
    data = body if isinstance(body, str) else json.dumps(body)
    args = ['curl', '-s', '-o', '-', '-w', '\n%{http_code}', '--max-time',
            str(timeout), '-X', 'POST', '--data-binary', '@-',
            'http://127.0.0.1:%d%s' % (port, path)]
    if token:
        args[1:1] = ['-H', 'Authorization: ' + token]
    out = subprocess.run(args, input=data.encode(), stdout=subprocess.PIPE,
                         check=False).stdout.decode()
    text, _, code = out.rpartition('\n')
    return int(code or 0), text


def post_json(port, path, body, token=None):
    code, text = post(port, path, body, token)
    if code != 200:
        raise RuntimeError('%s: %d %s' % (path, code, text))
    return json.loads(text)


class CurlStream(object):
    """A streaming call held open by curl (-N: no buffering), read line by
    line as it comes; stop() is the client going away."""

    def __init__(self, port, path, body, token=None):
        data = body if isinstance(body, str) else ''.join(
            json.dumps(b) for b in body)
        args = ['curl', '-s', '-N', '-i', '-X', 'POST', '--data-binary', data,
                'http://127.0.0.1:%d%s' % (port, path)]
        if token:
            args[1:1] = ['-H', 'Authorization: ' + token]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        e2e_lib.others.append(self.proc)
        self.buffer = b''
        self.status = None

    def _fill(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            return False
        ready, _, _ = select.select([self.proc.stdout], [], [], left)
        if not ready:
            return False
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            return False
        self.buffer += data
        return True

    def line(self, timeout=TIMEOUT):
        """The next line of the body (headers skipped), parsed; None if
        none came in time."""
        deadline = time.time() + timeout
        while True:
            if self.status is None and b'\r\n\r\n' in self.buffer:
                head, self.buffer = self.buffer.split(b'\r\n\r\n', 1)
                self.status = int(head.split(b' ')[1])
            if self.status is not None and b'\n' in self.buffer:
                text, self.buffer = self.buffer.split(b'\n', 1)
                if text.strip():
                    return json.loads(text)
                continue
            if not self._fill(deadline):
                if self.status is not None and self.buffer.strip():
                    text, self.buffer = self.buffer, b''
                    return json.loads(text)  # the last one, without '\n'
                return None

    def lines(self, n, timeout=TIMEOUT):
        out = []
        deadline = time.time() + timeout
        while len(out) < n:
            got = self.line(max(0.01, deadline - time.time()))
            if got is None:
                break
            out.append(got)
        return out

    def ended(self, timeout=TIMEOUT):
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def results(lines):
    return [line.get('result', line) for line in lines]


def events(lines):
    """(type, key, value) of every event in the lines."""
    out = []
    for r in results(lines):
        for e in r.get('events', []):
            kv = e['kv']
            out.append((e.get('type', 'PUT'), unb64(kv['key']).decode(),
                        unb64(kv.get('value', '')).decode()))
    return out


def open_watch_streams(port):
    """Watch streams the member's gRPC server has open (its
    grpc_server_started_total less its grpc_server_handled_total)."""
    try:
        out = subprocess.run(['curl', '-s', 'http://127.0.0.1:%d/metrics' % port],
                             stdout=subprocess.PIPE, check=False, timeout=TIMEOUT)
        text = out.stdout.decode()
    except Exception:
        return None
    started = handled = 0
    for line in text.splitlines():
        if 'grpc_service="etcdserverpb.Watch"' not in line:
            continue
        value = int(float(line.rsplit(' ', 1)[1]))
        if line.startswith('grpc_server_started_total{'):
            started += value
        elif line.startswith('grpc_server_handled_total{'):
            handled += value
    return started - handled


def take(iterator, n, timeout=TIMEOUT):
    """Up to n items of an etcd3gw events iterator, within timeout seconds
    (its next() blocks for as long as no event comes)."""
    out = []

    def run():
        for _ in range(n):
            out.append(next(iterator))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return list(out)


def wait_ready(ports, deadline_s=30):
    deadline = time.time() + deadline_s
    for port in ports:
        while True:
            try:
                code, _ = post(port, '/v3/kv/range', {'key': b64('/ready')},
                               timeout=1)
                if code == 200:
                    break
            except Exception:
                pass
            if time.time() > deadline:
                raise RuntimeError('cluster did not become ready')
            time.sleep(0.1)


# ---------------------------------------------------------------------------

def test_prefixes(p):
    section('API prefixes (etcd 3.4: /v3/ and /v3beta/, not /v3alpha/)')
    check('unary call under /v3beta/', 200,
          post(p[0], '/v3beta/kv/put', {'key': b64('/pre/k'), 'value': b64('v')})[0])
    code, text = post(p[1], '/v3/kv/range', {'key': b64('/pre/k')})
    check('read back under /v3/', 'v', unb64(json.loads(text)['kvs'][0]['value']).decode())
    check('/v3alpha/ is not served', 404,
          post(p[0], '/v3alpha/kv/range', {'key': b64('/pre/k')})[0])
    check('unknown fields are ignored, as grpc-gateway ignores them', 200,
          post(p[0], '/v3/kv/range', {'key': b64('/pre/k'), 'no_such': 1})[0])
    code, text = post(p[0], '/v3/auth/authenticate', {'name': 'x', 'password': 'y'})
    check('FAILED_PRECONDITION is HTTP 412 (grpc-gateway 1.6.4)', (412, 9),
          (code, json.loads(text).get('code')))


def test_etcd3gw_watch(p):
    section('python3-etcd3gw: watches, fed through another member')
    c0 = Etcd3Client(host='127.0.0.1', port=p[0], api_path='/v3/', timeout=TIMEOUT)
    c1 = Etcd3Client(host='127.0.0.1', port=p[1], api_path='/v3beta/', timeout=TIMEOUT)
    # watch() returns once the answer's head came, with the created
    # response: the watcher is in place.
    it, cancel = c0.watch('/gw/key')
    c1.put('/gw/key', 'one')
    c1.put('/gw/other', 'not watched')
    c1.put('/gw/key', 'two')
    got = take(it, 2)
    check('watch of a key sees its puts, in order',
          [(b'/gw/key', b'one'), (b'/gw/key', b'two')],
          [(e['kv']['key'], e['kv']['value']) for e in got])
    c1.delete('/gw/key')
    deleted = take(it, 1)
    check('and its delete', [('DELETE', b'/gw/key')],
          [(e.get('type'), e['kv']['key']) for e in deleted])
    cancel()

    it, cancel = c0.watch_prefix('/gw/p/')
    for k, v in (('/gw/p/a', '1'), ('/gw/q', 'outside'), ('/gw/p/b', '2')):
        c1.put(k, v)
    got = take(it, 2)
    check('watch of a prefix sees the keys under it only',
          [(b'/gw/p/a', b'1'), (b'/gw/p/b', b'2')],
          [(e['kv']['key'], e['kv']['value']) for e in got])
    cancel()

    rev = int(post_json(p[1], '/v3/kv/put', {'key': b64('/gw/old'), 'value': b64('first')})
              ['header']['revision'])
    c1.put('/gw/old', 'second')
    it, cancel = c0.watch('/gw/old', start_revision=rev)
    got = take(it, 2)
    check('watch from a start revision replays the history',
          [b'first', b'second'], [e['kv']['value'] for e in got])
    cancel()

    event = None
    try:
        w = c0.watch_once('/gw/once', timeout=0.5)
        event = ('event', w)
    except Exception as e:
        event = type(e).__name__
    check('watch_once with nothing written times out', 'WatchTimedOut', event)


def test_curl_watch(p):
    section('curl: several requests in one body, cancel, progress')
    w = CurlStream(p[0], '/v3/watch', [
        {'create_request': {'key': b64('/cw/a')}},
        {'create_request': {'key': b64('/cw/b'), 'prev_kv': True}},
        {'progress_request': {}}])
    first = results(w.lines(3))
    check('two creates in one body: two created responses, ids 0 and 1',
          [(True, '0'), (True, '1')],
          [(r.get('created', False), r.get('watch_id', '0')) for r in first[:2]])
    check('the answer is chunked with status 200', 200, w.status)
    check('a progress request is answered with watch id -1', '-1',
          first[2].get('watch_id') if len(first) > 2 else first)
    post_json(p[1], '/v3/kv/put', {'key': b64('/cw/b'), 'value': b64('B1')})
    post_json(p[2], '/v3/kv/put', {'key': b64('/cw/a'), 'value': b64('A1')})
    post_json(p[1], '/v3/kv/put', {'key': b64('/cw/b'), 'value': b64('B2')})
    got = results(w.lines(3))
    check('each watcher gets its own key, with its id',
          [('1', 'B1'), ('0', 'A1'), ('1', 'B2')],
          [(r.get('watch_id', '0'), unb64(r['events'][0]['kv']['value']).decode())
           for r in got])
    check('prev_kv comes with the watcher that asked', 'B1',
          unb64(got[2]['events'][0]['prev_kv']['value']).decode() if len(got) > 2 else got)
    check('the stream stays open after the body ended', None, w.proc.poll())
    w.stop()

    w = CurlStream(p[0], '/v3/watch', [
        {'create_request': {'key': b64('/cw/c')}},
        {'cancel_request': {'watch_id': 0}}])
    got = results(w.lines(2))
    check('create then cancel in one body: created, then canceled',
          [(True, False), (False, True)],
          [(r.get('created', False), r.get('canceled', False)) for r in got])
    post_json(p[1], '/v3/kv/put', {'key': b64('/cw/c'), 'value': b64('x')})
    check('a cancelled watcher sees nothing more', None, w.line(timeout=0.5))
    w.stop()


def test_keepalive(p):
    section('lease keep-alive')
    c = Etcd3Client(host='127.0.0.1', port=p[0], api_path='/v3/', timeout=TIMEOUT)
    lease = c.lease(ttl=20)
    check('lease.refresh() renews it (TTL back to 20)', 20, lease.refresh())
    check_true('lease.ttl() counts down from 20', 0 < lease.ttl() <= 20)
    c.put('/ka/leased', 'v', lease=lease)
    check('lease.keys() lists the key put with it', [b'/ka/leased'], lease.keys())
    gone = Lease(12345, client=c)
    check('refresh of an unknown lease: TTL absent, the library says -1', -1, gone.refresh())
    code, text = post(p[1], '/v3/lease/keepalive',
                      '{"ID":"%d"}\n{"ID":12345}' % lease.id)
    lines = [json.loads(l)['result'] for l in text.splitlines() if l.strip()]
    check('two renewals in one body (through a follower or the leader): each answered',
          [(str(lease.id), '20'), ('12345', None)],
          [(r.get('ID'), r.get('TTL')) for r in lines])
    code, text = post(p[0], '/v3/lease/keepalive', '')
    check('an empty body: an empty stream', (200, ''), (code, text))
    # python-requests sends a generator's body chunked.
    answer = requests.post('http://127.0.0.1:%d/v3/lease/keepalive' % p[2],
                           data=iter([b'{"ID":', b'"%d"}' % lease.id]), timeout=TIMEOUT)
    check('a request body sent chunked is read whole', (200, str(lease.id)),
          (answer.status_code, answer.json()['result'].get('ID')))
    lease.revoke()
    check('after revoke, refresh says -1', -1, lease.refresh())


def test_leaving(p):
    section('clients that leave, and more watches than HTTP workers')
    base = open_watch_streams(p[2])
    watches = [CurlStream(p[2], '/v3/watch', [{'create_request': {'key': b64('/many')}}])
               for _ in range(12)]
    created = [w.line() for w in watches]
    check('12 watches open at once are all created', 12,
          sum(1 for r in created if r and r['result'].get('created')))
    check('and the member serves unary calls meanwhile', 200,
          post(p[2], '/v3/kv/range', {'key': b64('/many')})[0])
    post_json(p[0], '/v3/kv/put', {'key': b64('/many'), 'value': b64('all')})
    got = [events([w.line() or {}]) for w in watches]
    check('each of them sees the put', 12, sum(1 for e in got if e == [('PUT', '/many', 'all')]))
    check('the member holds 12 more watch streams', base + 12, open_watch_streams(p[2]))
    for w in watches:
        w.stop()
    until(lambda: open_watch_streams(p[2]) == base)
    check('the clients gone, their gRPC watch streams are cancelled', base,
          open_watch_streams(p[2]))


def test_malformed(p):
    section('malformed bodies')
    code, text = post(p[0], '/v3/watch', '{"create_request":{"key":')
    check('a first request that is not JSON: 500, code 2 (as grpc-gateway answers)',
          (500, 2), (code, json.loads(text).get('code')))
    code, text = post(p[0], '/v3/lease/keepalive', '{"ID":"not a number"}')
    check('a first request of the wrong type: 500, code 2', (500, 2),
          (code, json.loads(text).get('code')))
    w = CurlStream(p[0], '/v3/watch',
                   '{"create_request":{"key":"%s","bogus":1}} {broken' % b64('/mal'))
    r = w.line()
    check('unknown fields ignored; a broken second request stops the requests there',
          True, bool(r and r['result'].get('created')))
    w.stop()
    code, text = post(p[0], '/v3/lease/keepalive', '{"ID":"1"} [1,2] {"ID":"2"}')
    check('a keep-alive body with a bad second request: the first answered, then the end',
          (200, ['1']), (code, [json.loads(l)['result'].get('ID')
                                for l in text.splitlines() if l.strip()]))
    code, _ = post(p[0], '/v3/watch', '{"create_request":{"key":"%s"}}' % ('A' * (9 << 20)),
                   timeout=20)
    check('a body over the size limit is refused', True, code in (413, 400, 0) or IS_ETCD)
    check('GET is not a streaming call', 405,
          int(subprocess.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
                              'http://127.0.0.1:%d/v3/watch' % p[0]],
                             stdout=subprocess.PIPE).stdout or 0))
    check('the member still serves', 200, post(p[0], '/v3/kv/range', {'key': b64('/mal')})[0])


def test_slow_reader(p):
    section('a watch whose client reads nothing (etc only: etcd buffers it)')
    if IS_ETCD:
        log('skip (etcd 3.4 has no cap)')
        return
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(('127.0.0.1', p[0]))
    body = json.dumps({'create_request': {'key': b64('/slow')}})
    s.sendall(('POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s'
               % (len(body), body)).encode())
    value = b64(os.urandom(768 << 10))
    for _ in range(24):  # 18 MiB of values, 24 MiB of JSON: past the 4 MiB cap
        post_json(p[1], '/v3/kv/put', {'key': b64('/slow'), 'value': value})
    s.settimeout(10)
    closed = False
    try:
        while True:
            if not s.recv(1 << 20):
                closed = True
                break
    except socket.timeout:
        pass
    except OSError:
        closed = True
    s.close()
    check('it is cut off (the connection ends), not buffered without bound', True, closed)
    check('the member still serves', 200, post(p[0], '/v3/kv/range', {'key': b64('/x')})[0])


def test_auth(p):
    section('auth: a watch refused, and one allowed')
    for path, body in (
            ('/v3/auth/user/add', {'name': 'root', 'password': 'rootpw'}),
            ('/v3/auth/role/add', {'name': 'root'}),
            ('/v3/auth/user/grant', {'user': 'root', 'role': 'root'}),
            ('/v3/auth/user/add', {'name': 'alice', 'password': 'alicepw'}),
            ('/v3/auth/role/add', {'name': 'a-rw'}),
            ('/v3/auth/role/grant', {'name': 'a-rw', 'perm': {
                'permType': 'READWRITE', 'key': b64('/a/'), 'range_end': b64('/a0')}}),
            ('/v3/auth/user/grant', {'user': 'alice', 'role': 'a-rw'}),
            ('/v3/auth/enable', {})):
        post_json(p[0], path, body)
    root = post_json(p[0], '/v3/auth/authenticate', {'name': 'root', 'password': 'rootpw'})['token']
    alice = post_json(p[1], '/v3/auth/authenticate',
                      {'name': 'alice', 'password': 'alicepw'})['token']
    try:
        w = CurlStream(p[1], '/v3/watch', [{'create_request': {'key': b64('/b/secret')}}], alice)
        r = (w.line() or {}).get('result', {})
        check('a watch outside her permission: created and canceled, permission denied',
              (True, True, True), (r.get('created', False), r.get('canceled', False),
                                   'permission denied' in r.get('cancel_reason', '')))
        w.stop()
        w = CurlStream(p[1], '/v3/watch', [{'create_request': {'key': b64('/a/x')}}])
        r = (w.line() or {}).get('result', {})
        check('a watch without a token: canceled, user name is empty',
              (True, True), (r.get('canceled', False),
                             'user name is empty' in r.get('cancel_reason', '')))
        w.stop()
        w = CurlStream(p[1], '/v3/watch', [{'create_request': {'key': b64('/a/x')}}], alice)
        r = (w.line() or {}).get('result', {})
        check('a watch inside her permission is created', (True, False),
              (r.get('created', False), r.get('canceled', False)))
        post_json(p[2], '/v3/kv/put', {'key': b64('/a/x'), 'value': b64('seen')}, root)
        check('and sees a put by root through another member', [('PUT', '/a/x', 'seen')],
              events([w.line() or {}]))
        w.stop()
    finally:
        post(p[0], '/v3/auth/disable', {}, root)


def body(work):
    cl = e2e_lib.Cluster(SERVER, work, NAMES)
    t_start = time.time()
    for i in range(3):
        cl.start(i)
    wait_ready(cl.client_port)
    log('cluster ready after %.1fs' % (time.time() - t_start))
    for test in (test_prefixes, test_etcd3gw_watch, test_curl_watch, test_keepalive,
                 test_leaving, test_malformed, test_slow_reader, test_auth):
        e2e_lib.attempt(test.__name__, test, cl.client_port)


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'gwstream-', NAMES, body))
