#!/usr/bin/python3
"""etcctl end to end: a three-member cluster (etc, or etcd 3.4 as the
referee, unchanged) and a transcript of etcctl commands (kv, txn from
stdin, watch, lease, member, endpoint, snapshot, alarm, errors and exit
codes, help, completion) compared with client/testdata/etcctl/transcript.golden
after masking what differs between runs and servers (cluster and member
ids, lease ids, ports, raft terms, durations). With a third argument (stock
etcdctl), every read-only step is also run through etcdctl and etcctl's
output must equal it byte for byte (before masking).

    /usr/bin/python3 client/etcctl_test.py <etcctl> <server> [<etcdctl>]
    ETCCTL_GOLDEN_UPDATE=1 ... rewrites the golden file (run from the source tree)
"""
import os
import json
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'server'))
import e2e_lib  # noqa: E402 (server/, beside this folder)
from e2e_lib import check, check_true, log, section, until  # noqa: E402

ETCCTL = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
SERVER = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
ETCDCTL = sys.argv[3] if len(sys.argv) > 3 else None
NAMES = ['c1', 'c2', 'c3']
GOLDEN = os.path.join(HERE, 'testdata', 'etcctl', 'transcript.golden')

MASKS = [
    (re.compile(r'"(cluster_id|member_id|leader|raft_term|ID|id|raftTerm|raftIndex|'
                r'raftAppliedIndex|dbSize|dbSizeInUse)":\d+'), r'"\1":N'),
    (re.compile(r'"(ClusterID|MemberID|RaftTerm|ID)" : \d+'), r'"\1" : N'),
    (re.compile(r'\| +[0-9a-f]{12,16} \|'), '| HEXID |'),  # %x ids are 12-16 wide
    (re.compile(r'(Member|cluster) +[0-9a-f]{12,16}\b'), r'\1 HEXID'),  # and %16x pads
    (re.compile(r'\b[0-9a-f]{12,16}\b'), 'HEXID'),
    (re.compile(r'127\.0\.0\.1:\d+'), '127.0.0.1:PORT'),
    (re.compile(r'took = [0-9.]+[µmn]?s'), 'took = D'),
    (re.compile(r'remaining\(\d+s\)'), 'remaining(Ns)'),
    (re.compile(r'"ttl":\d+'), '"ttl":N'),
    (re.compile(r'TTL\((\d+)\)'), 'TTL(N)'),
]


REVISIONS = [
    re.compile(r'("(?:revision|create_revision|mod_revision)":)(\d+)'),
    # etcctl ls -l's revision column, and watch --tree's lines in a pipe.
    re.compile(r'(?m)^( *)(\d+)(?=  +\d+  +(?:-|\w+)  +\d+  )'),
    re.compile(r'(?m)^()(\d+)(?= (?:PUT|DELETE) )'),
    re.compile(r'(?m)^(\|[^|\n]*\| key \|[^|\n]*\| +)(\d+)(?= \|)'),
    re.compile(r'("\w*Revision" : )(\d+)'),
    re.compile(r'(compacted revision )(\d+)'),
]
# etcd's first write is revision 2, etc's revision 1: revisions are shown
# in etcd's numbering (REVISION_SHIFT is added) so one golden file serves both.
REVISION_SHIFT = [0]


def mask(text):
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    for pattern in REVISIONS:
        text = pattern.sub(lambda m: m.group(1) + str(int(m.group(2)) + REVISION_SHIFT[0])
                           if int(m.group(2)) > 0 else m.group(0), text)
    return text


def rev(n):
    """Revision n of etcd's numbering as the server under test numbers it."""
    return str(n - REVISION_SHIFT[0])


def run(binary, args, stdin=None, env_extra=None, endpoints=None):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith('ETCDCTL_'):
            del env[k]
    env['ETCDCTL_ENDPOINTS'] = endpoints
    env['ETCDCTL_API'] = '3'
    env.update(env_extra or {})
    p = subprocess.run([binary] + args, input=(stdin or '').encode(), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    err = '\n'.join(l for l in p.stderr.decode('utf-8', 'replace').splitlines()
                    if '"level":"warn"' not in l)
    return p.stdout.decode('utf-8', 'replace'), err, p.returncode


class Transcript(object):
    def __init__(self, endpoints):
        self.endpoints = endpoints
        self.lines = []

    def step(self, args, stdin=None, env=None, readonly=False, sort=False, referee=True, shown=None):
        out, err, rc = run(ETCCTL, args, stdin, env, self.endpoints)
        shown_args = shown or args
        shown = out
        if sort:
            # Members come in id order, and ids change with every run: sort
            # the rows (a table keeps its borders and title in place).
            lines = out.splitlines(True)
            head, tail = (3, 1) if lines and lines[0].startswith('+') else (0, 0)
            body = sorted(mask(l) for l in lines[head:len(lines) - tail])
            shown = ''.join(lines[:head] + body + lines[len(lines) - tail:])
        self.lines.append(mask('$ etcctl %s%s\n' % (' '.join(shown_args), ' <<< %r' % stdin if stdin else '')))
        self.lines.append(mask(shown))
        if err:
            self.lines.append('[stderr] %s\n' % mask(err))
        self.lines.append('[rc=%d]\n' % rc)
        if ETCDCTL and readonly and referee:
            # One endpoint for both: etcdctl picks any of several, and the
            # header names the member that answered.
            one = self.endpoints.split(',')[0]
            out, err, rc = run(ETCCTL, args, stdin, env, one)
            rout, rerr, rrc = run(ETCDCTL, args, stdin, env, one)
            check('etcdctl prints what etcctl prints: %s' % ' '.join(args), rout, out)
            check('etcdctl fails as etcctl fails: %s' % ' '.join(args), rrc != 0, rc != 0)
        return out, err, rc


def kv_steps(t):
    section('kv')
    t.step(['put', '/a/1', 'one'])
    t.step(['put', '/a/2', 'two', '-w', 'json'])
    t.step(['put', '/a/3', 'x<y>&"z"'])
    t.step(['put', '/a/2', 'deux', '--prev-kv'])
    t.step(['put', '/b'], stdin='from stdin')
    t.step(['get', '/a/1'], readonly=True)
    t.step(['get', '/a/', '--prefix'], readonly=True)
    t.step(['get', '/a/', '--prefix', '-w', 'json'], readonly=True)
    t.step(['get', '/a/', '--prefix', '-w', 'fields'], readonly=True)
    t.step(['get', '/a/', '--prefix', '--keys-only', '--limit=2'], readonly=True)
    # etcdctl 3.4 has no --count-only.
    t.step(['get', '/a/', '--prefix', '--count-only', '-w', 'json'], readonly=True, referee=False)
    t.step(['get', '/a/', '--prefix', '--print-value-only', '--sort-by=VALUE', '--order=DESCEND'], readonly=True)
    t.step(['get', '/a/2', '--rev=' + rev(3)], readonly=True, shown=['get', '/a/2', '--rev=3'])
    t.step(['get', '/a/1', '/a/3', '--hex'], readonly=True)
    t.step(['get', '--from-key', '/b', '-w', 'json'], readonly=True)
    t.step(['get', '/a/1', '-w', 'table'], readonly=True)
    t.step(['del', '/a/3', '--prev-kv'])
    t.step(['del', '/nothing', '-w', 'json'])
    t.step(['compaction', rev(3)], shown=['compaction', '3'])
    t.step(['get', '/a/1', '--rev=' + rev(2)], readonly=True, shown=['get', '/a/1', '--rev=2'])


def txn_steps(t):
    section('txn')
    body = 'value("/a/1") = "one"\n\nput /t/ok yes\nget /a/1\n\nput /t/ok no\n\n'
    t.step(['txn'], stdin=body)
    t.step(['txn', '-w', 'json'], stdin='mod("/t/ok") > "1000"\n\ndel /t/ok\n\nget /t/ok\n\n')
    t.step(['txn', '-i'], stdin='version("/t/ok") = "1"\n\ndel /t/ok --prev-kv\n\n\n')
    t.step(['txn'], stdin='bogus\n\n\n\n')
    t.step(['get', '/t/', '--prefix', '-w', 'fields'], readonly=True)


def watch_steps(t, endpoints):
    section('watch')
    out, _, _ = t.step(['put', '/w/1', 'a', '-w', 'json'])
    rev = int(re.search(r'"revision":(\d+)', out).group(1))
    t.step(['put', '/w/1', 'b'])
    t.step(['del', '/w/1'])
    for fmt in ['simple', 'json']:
        env = dict(os.environ, ETCDCTL_ENDPOINTS=endpoints)
        p = subprocess.Popen([ETCCTL, 'watch', '/w/', '--prefix', '--prev-kv', '--rev=%d' % rev,
                              '-w', fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        want = 13 if fmt == 'simple' else 3
        got = b''
        deadline = time.time() + 10
        while got.count(b'\n') < want and time.time() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                got += chunk
        lines = [got.decode()]
        p.terminate()
        _, err = p.communicate(timeout=5)
        check('watch -w %s ends on SIGTERM' % fmt, 128 + 15, p.returncode)
        if err:
            log('watch stderr: ' + err.decode())
        t.lines.append('$ etcctl watch /w/ --prefix --prev-kv --rev=REV -w %s\n' % fmt)
        t.lines.append(mask(''.join(lines)))
    t.step(['watch'], referee=False)


def lease_steps(t):
    section('lease')
    out, _, _ = t.step(['lease', 'grant', '100'])
    lease = out.split()[1]
    t.step(['put', '/l/1', 'v', '--lease=' + lease])
    t.step(['lease', 'timetolive', lease, '--keys'], readonly=True)
    t.step(['lease', 'timetolive', lease, '-w', 'json'], readonly=True)
    t.step(['lease', 'list'], readonly=True)
    t.step(['lease', 'keep-alive', '--once', lease])
    t.step(['lease', 'grant', '100', '-w', 'json'])
    t.step(['lease', 'revoke', lease])
    t.step(['lease', 'timetolive', lease], readonly=True)
    t.step(['lease', 'revoke', lease])
    t.step(['get', '/l/1', '-w', 'json'], readonly=True)


def cluster_steps(t, work):
    section('cluster')
    t.step(['member', 'list'], readonly=True, sort=True, referee=False)
    t.step(['member', 'list', '-w', 'table'], readonly=True, sort=True, referee=False)
    out, _, rc = run(ETCCTL, ['member', 'list', '-w', 'json'], None, None, t.endpoints)
    names = sorted(m.get('name') for m in json.loads(out)['members'])
    check('member list -w json names the members', (0, NAMES), (rc, names))
    t.step(['endpoint', 'health', '--cluster'], readonly=True, sort=True, referee=False)
    out, _, rc = run(ETCCTL, ['endpoint', 'status', '-w', 'table'], None, None, t.endpoints)
    check('endpoint status -w table: 3 rows', (0, 7), (rc, len(out.splitlines())))
    snap = os.path.join(work, 'snap.db')
    out, err, rc = run(ETCCTL, ['--endpoints', t.endpoints.split(',')[0], 'snapshot', 'save', snap],
                       None, None, t.endpoints)
    check('snapshot save', (0, 'Snapshot saved at %s\n' % snap), (rc, out))
    check_true('snapshot file is not empty', os.path.exists(snap) and os.path.getsize(snap) > 0)
    head = json.loads(run(ETCCTL, ['get', '/', '-w', 'json'], None, None, t.endpoints)[0])['header']
    out, _, rc = run(ETCCTL, ['endpoint', 'hashkv', '--cluster', '--rev=%d' % head['revision'], '-w', 'json'],
                     None, None, t.endpoints)
    hashes = [e['HashKV'].get('hash') for e in json.loads(out)] if rc == 0 else []
    check_true('endpoint hashkv: three members, one hash at one revision',
               len(hashes) == 3 and len(set(hashes)) == 1, out)
    out, _, rc = run(ETCCTL, ['endpoint', 'hashkv', '-w', 'table'], None, None, t.endpoints)
    check('endpoint hashkv -w table: 3 rows', (0, 7), (rc, len(out.splitlines())))
    t.step(['alarm', 'list'], readonly=True)
    t.step(['defrag'])
    t.step(['member', 'remove', 'zz'])
    t.step(['member', 'add', 'x'])


def error_steps(t):
    section('errors, exit codes, environment')
    t.step(['get'], readonly=True)
    t.step(['get', '/a', '--bogus'])
    t.step(['bogus'])
    t.step(['get', '/a', '--prefix', '--from-key'], readonly=True)
    t.step(['get', '/a/1', '--print-value-only', '-w', 'json'])
    t.step(['put', '/x', '-w', 'yaml'])
    t.step(['get', '/a/1'], env={'ETCDCTL_API': '2'})
    t.step(['get', '/a/1'], env={'ETCDCTL_WRITE_OUT': 'json'}, readonly=True)
    t.step(['--endpoints', t.endpoints, 'get', '/a/1'], env={'ETCDCTL_ENDPOINTS': '127.0.0.1:1'})
    t.step(['--endpoints', '127.0.0.1:1', '--dial-timeout=200ms', '--command-timeout=500ms', 'get', '/a'])


def help_steps(t):
    section('help and completion')
    out, _, rc = run(ETCCTL, ['--help'], None, None, t.endpoints)
    check_true('etcctl --help lists commands', rc == 0 and 'COMMANDS:' in out and 'lease grant' in out
               and '--endpoints' in out, out[:200])
    out, _, rc = run(ETCCTL, ['help', 'get'], None, None, t.endpoints)
    check_true('etcctl help get: usage, flags, examples', rc == 0 and '--prefix' in out
               and 'Examples:' in out, out[:200])
    out2, _, rc = run(ETCCTL, ['get', '--help'], None, None, t.endpoints)
    check('etcctl get --help is etcctl help get', (0, out), (rc, out2))
    out, _, rc = run(ETCCTL, ['completion', 'bash'], None, None, t.endpoints)
    check_true('completion bash names commands, subcommands and flags',
               rc == 0 and 'complete -F _etcctl etcctl' in out and 'keep-alive' in out and
               '--prefix' in out and '--write-out' in out)
    syntax = subprocess.run(['bash', '-n'], input=out.encode())
    check('completion script is valid bash', 0, syntax.returncode)
    t.step(['completion', 'zsh'])


def auth_steps(t):
    section('users, roles, auth, lock, elect')
    t.step(['lock', 'L', '--', 'sh', '-c', 'echo holding $ETCD_LOCK_KEY'])
    t.step(['lock', 'L', 'false'])
    t.step(['lock'])
    t.step(['elect', 'E'])
    t.step(['role', 'add', 'reader'])
    t.step(['role', 'grant-permission', 'reader', 'read', '/a/', '--prefix'])
    t.step(['role', 'grant-permission', 'reader', 'readwrite', '/k'])
    t.step(['role', 'grant-permission', 'reader', 'bogus', '/k'])
    t.step(['role', 'get', 'reader'], readonly=True)
    t.step(['role', 'get', 'reader', '-w', 'json'], readonly=True)
    t.step(['role', 'list', '-w', 'fields'], readonly=True)
    t.step(['user', 'add', 'ann:secret'])
    t.step(['user', 'add', 'root', '--interactive=false'], stdin='rootpw\n')
    t.step(['user', 'grant-role', 'ann', 'reader'])
    t.step(['user', 'get', 'ann'], readonly=True)
    t.step(['user', 'get', 'ann', '--detail'], readonly=True)
    t.step(['user', 'list', '-w', 'json'], readonly=True)
    t.step(['role', 'revoke-permission', 'reader', '/k'])
    t.step(['user', 'revoke-role', 'ann', 'reader'])
    t.step(['user', 'revoke-role', 'ann', 'reader'])
    t.step(['auth', 'enable'])
    t.step(['get', '/a/1'])
    t.step(['--user=root:rootpw', 'get', '/a/1'])
    t.step(['--user=root', '--password=rootpw', 'auth', 'disable'])
    t.step(['user', 'delete', 'ann'])
    t.step(['role', 'delete', 'reader'])


def membership_steps(t):
    section('membership, keep-alive, watch -i')
    peer = 'http://127.0.0.1:%d' % e2e_lib.free_port()
    out, err, rc = run(ETCCTL, ['member', 'add', 'l1', '--peer-urls=' + peer, '--learner'], None, None,
                       t.endpoints)
    check_true('member add --learner', rc == 0 and re.match(r'Member +[0-9a-f]+ added to cluster', out)
               and 'ETCD_NAME="l1"' in out and 'ETCD_INITIAL_CLUSTER_STATE="existing"' in out, out + err)
    listed, _, _ = run(ETCCTL, ['member', 'list'], None, None, t.endpoints)
    learner = [l.split(', ') for l in listed.splitlines() if 'unstarted' in l]
    check('member list shows the unstarted learner', [['unstarted', '', peer, '', 'true']],
          [l[1:] for l in learner])
    if learner:
        t.step(['member', 'promote', learner[0][0]], shown=['member', 'promote', 'ID'])
        t.step(['member', 'update', learner[0][0], '--peer-urls=' + peer], shown=['member', 'update', 'ID'])
        t.step(['member', 'remove', learner[0][0]], shown=['member', 'remove', 'ID'])
    lease = run(ETCCTL, ['lease', 'grant', '30'], None, None, t.endpoints)[0].split()[1]
    env = dict(os.environ, ETCDCTL_ENDPOINTS=t.endpoints)
    p = subprocess.Popen([ETCCTL, 'lease', 'keep-alive', lease], stdout=subprocess.PIPE, env=env)
    first = p.stdout.readline().decode()
    p.terminate()
    p.wait(timeout=5)
    check('lease keep-alive renews until SIGTERM', ('lease %s keepalived with TTL(30)\n' % lease, 143),
          (first, p.returncode))
    p = subprocess.Popen([ETCCTL, 'watch', '-i'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    p.stdin.write(b'watch /i/ --prefix\n')
    p.stdin.flush()
    time.sleep(1)  # the watch is made after the line is read
    run(ETCCTL, ['put', '/i/x', 'ix'], None, None, t.endpoints)
    lines = [p.stdout.readline().decode() for _ in range(3)]
    p.terminate()
    p.wait(timeout=5)
    check('watch -i', ['PUT\n', '/i/x\n', 'ix\n'], lines)


def tree_steps(t):
    """The tree commands (etcctl's own: no etcdctl referee). Against etcd
    they go through TreeClient's fallback, and the transcript must be the
    same as against etc's Tree service."""
    section('tree: ls, tree, du, watch --tree')
    for key, value in [('/s/web/port', '8080'), ('/s/web/host', 'web-1.internal'),
                       ('/s/web', 'a key and a directory'), ('/s/db/port', '5432'),
                       ('/s/db/replicas/1', 'a value long enough to be shortened in the tree'),
                       ('/s/db/replicas/2', 'r2'), ('/s/cache', 'two\nlines')]:
        run(ETCCTL, ['put', key, value], None, None, t.endpoints)
    for args in (['tree', '/s'], ['tree', '/s', '--depth=1'], ['tree', '/s', '--value-width=0'],
                 ['tree', '/s/db/replicas/'], ['ls', '/s'], ['ls', '-l', '/s'],
                 ['ls', '-l', '/s/db'], ['ls', '/s', '-w', 'json'], ['ls', '/s/db', '--limit=1'], ['ls', '/s/db', '--limit=1', '--after=port'],
                 ['tree', '/s/db', '-w', 'json'], ['du', '/s'], ['du', '-s', '/s'],
                 ['du', '/s', '--depth=1'], ['ls', '/nothing'], ['tree', '/nothing'],
                 ['ls', '/a', '/b'], ['tree', '/s', '--depth=-1'], ['ls', '/s', '-w', 'table'],
                 ['ls', '/s', '--consistency=s'], ['ls', '/s', '--consistency=x']):
        t.step(args, readonly=True, referee=False)
    # The live view in a pipe: one indented line per change. Read at the
    # current revision, it sees exactly the changes made after it.
    head = json.loads(run(ETCCTL, ['get', '/', '-w', 'json'], None, None, t.endpoints)[0])['header']
    env = dict(os.environ, ETCDCTL_ENDPOINTS=t.endpoints)
    p = subprocess.Popen([ETCCTL, 'watch', '--tree', '/s', '--rev=%d' % head['revision']],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    run(ETCCTL, ['put', '/s/web/port', '8081'], None, None, t.endpoints)
    run(ETCCTL, ['del', '/s/cache'], None, None, t.endpoints)
    run(ETCCTL, ['put', '/s/queue/jobs/1', 'x'], None, None, t.endpoints)
    got = b''
    deadline = time.time() + 10
    while got.count(b'\n') < 3 and time.time() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            got += chunk
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=5)
    check('watch --tree ends on Ctrl-C (SIGINT) with exit code 0', 0, p.returncode)
    if err:
        log('watch --tree stderr: ' + err.decode())
    t.lines.append('$ etcctl watch --tree /s --rev=REV | cat\n')
    t.lines.append(mask(got.decode()))
    t.step(['tree', '/s', '--depth=2'], readonly=True, referee=False)
    t.step(['del', '/s/', '--prefix'])


def make_certs(work):
    """A CA, a member certificate and a client one (as server/tls_e2e_test.sh)."""
    def sh(*args):
        subprocess.run(args, cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    sh('openssl', 'req', '-x509', *ec, '-days', '2', '-subj', '/CN=etcctl test CA',
       '-keyout', 'ca-key.pem', '-out', 'ca.pem')
    for name, usage in [('member', 'serverAuth,clientAuth'), ('client', 'clientAuth')]:
        sh('openssl', 'req', *ec, '-subj', '/CN=' + name, '-keyout', name + '-key.pem', '-out', name + '.csr')
        with open(os.path.join(work, name + '.ext'), 'w') as f:
            f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' % usage)
        sh('openssl', 'x509', '-req', '-in', name + '.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem',
           '-CAcreateserial', '-days', '2', '-extfile', name + '.ext', '-out', name + '.pem')
    return lambda name: os.path.join(work, name)


def tls_steps(work):
    section('TLS (one member asking for client certificates)')
    tls_dir = os.path.join(work, 'tls')
    os.mkdir(tls_dir)
    f = make_certs(tls_dir)
    port, peer = e2e_lib.free_port(), e2e_lib.free_port()
    url, peer_url = 'https://127.0.0.1:%d' % port, 'http://127.0.0.1:%d' % peer
    log_file = open(os.path.join(work, 'tls.log'), 'ab')
    e2e_lib.others.append(subprocess.Popen(
        [SERVER, '--name', 't1', '--data-dir', f('data'), '--listen-client-urls', url,
         '--advertise-client-urls', url, '--listen-peer-urls', peer_url,
         '--initial-advertise-peer-urls', peer_url, '--initial-cluster', 't1=' + peer_url,
         '--cert-file', f('member.pem'), '--key-file', f('member-key.pem'),
         '--trusted-ca-file', f('ca.pem'), '--client-cert-auth=true'],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    certs = ['--cacert', f('ca.pem'), '--cert', f('client.pem'), '--key', f('client-key.pem')]
    ok = until(lambda: run(ETCCTL, certs + ['put', '/tls', 'yes'], None, None, url)[2] == 0, timeout=20)
    check_true('put over TLS with --cacert/--cert/--key', ok)
    env = {'ETCDCTL_CACERT': f('ca.pem'), 'ETCDCTL_CERT': f('client.pem'), 'ETCDCTL_KEY': f('client-key.pem')}
    check('get over TLS with ETCDCTL_CACERT/CERT/KEY', ('/tls\nyes\n', '', 0),
          run(ETCCTL, ['get', '/tls'], None, env, url))
    check('--insecure-skip-tls-verify with a client certificate', ('/tls\nyes\n', '', 0),
          run(ETCCTL, ['--insecure-skip-tls-verify', '--cert', f('client.pem'), '--key',
                       f('client-key.pem'), 'get', '/tls'], None, None, url))
    out, err, rc = run(ETCCTL, ['--cacert', f('ca.pem'), '--dial-timeout=500ms', 'get', '/tls'], None, None, url)
    check('without a client certificate: one error line, exit 1',
          ('', 1, 1), (out, rc, len(err.splitlines())))
    check('a missing --cacert file is a usage error', 2,
          run(ETCCTL, ['--cacert', f('nope.pem'), 'get', '/tls'], None, None, url)[2])


def body(work):
    cluster = e2e_lib.Cluster(SERVER, work, NAMES)
    for i in range(len(NAMES)):
        cluster.start(i)
    endpoints = ','.join(u.replace('http://', '') for u in cluster.client_url)
    healthy = until(lambda: run(ETCCTL, ['endpoint', 'health'], None, None, endpoints)[2] == 0, timeout=20)
    check_true('cluster is healthy', healthy)
    out, _, _ = run(ETCCTL, ['get', '/', '-w', 'json'], None, None, endpoints)
    REVISION_SHIFT[0] = 1 - json.loads(out)['header'].get('revision', 0)
    log('revision shift to etcd numbering: %d' % REVISION_SHIFT[0])
    t = Transcript(endpoints)
    for steps in [kv_steps, txn_steps, lease_steps, error_steps, help_steps, auth_steps]:
        e2e_lib.attempt(steps.__name__, steps, t)
    e2e_lib.attempt('watch_steps', watch_steps, t, endpoints)
    e2e_lib.attempt('membership_steps', membership_steps, t)
    e2e_lib.attempt('cluster_steps', cluster_steps, t, work)
    e2e_lib.attempt('tree_steps', tree_steps, t)
    e2e_lib.attempt('tls_steps', tls_steps, work)
    got = ''.join(t.lines)
    if os.environ.get('ETCCTL_GOLDEN_UPDATE'):
        with open(GOLDEN, 'w') as f:
            f.write(got)
        log('wrote ' + GOLDEN)
    with open(GOLDEN) as f:
        want = f.read()
    if want != got:
        import difflib
        log(''.join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                         'golden', 'got')))
    check('transcript equals %s' % os.path.relpath(GOLDEN, HERE), True, want == got)


if __name__ == '__main__':
    if ETCCTL is None or not os.access(ETCCTL, os.X_OK):
        print('usage: etcctl_test.py <etcctl> <server> [<etcdctl>]')
        sys.exit(2)
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'etcctl-', NAMES, body,
                                                 '<etcctl> <server> [<etcdctl>]'))
