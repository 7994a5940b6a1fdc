#!/usr/bin/python3
"""The life of an auth token on a three-member cluster, through raw gRPC
stubs (exact status codes): changing a user's password or deleting the
user drops that user's tokens on every member, turning auth off drops every
token, and changes that do not touch a user leave its token working. Each
token is taken from one member and used on all three. Then, restarted with
--auth-token-ttl=2, a token unused for longer than that is gone on that
member while one in use stays. Runs against etc and, unchanged, against
Debian's etcd 3.4 as the referee (issue 22: an attacker kept an admin
token past a password change, a delete and re-create, and auth off and on,
and created a root user with it).

    /usr/bin/python3 server/auth_token_test.py <server binary>

Where etc deliberately differs from etcd 3.4 the test branches, in
differs_dropped_token_at_once (a member that has not applied the change
yet: etcd 3.4 may still run an admin request from the dropped token, etc
never) and differs_token_while_auth_is_off.
"""
import os
import sys
import time

import grpc
from etcd3 import etcdrpc
from etcd3.etcdrpc import auth_pb2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_lib  # noqa: E402 (beside this file)
from e2e_lib import Cluster, check, check_true, section, until  # noqa: E402

SERVER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
REFEREE = bool(SERVER) and os.path.basename(SERVER) == 'etcd'
NAMES = ['tok1', 'tok2', 'tok3']
TIMEOUT_S = 10  # for every single call

OK = 'OK'
INVALID_TOKEN = 'UNAUTHENTICATED etcdserver: invalid auth token'
DENIED = 'PERMISSION_DENIED etcdserver: permission denied'
NO_USER = 'FAILED_PRECONDITION etcdserver: user name not found'
OLD_REVISION = 'INVALID_ARGUMENT etcdserver: revision of auth store is old'
OLD_REVISION_RETRIES = 20

PASSWORDS = {'root': 'rootpw', 'alice': 'alicepw', 'bob': 'bobpw', 'carol': 'carolpw'}


class Member(object):
    """One member's client port, called with an explicit token (or none)."""

    def __init__(self, port):
        channel = grpc.insecure_channel('127.0.0.1:%d' % port)
        self.auth = etcdrpc.AuthStub(channel)
        self.kv = etcdrpc.KVStub(channel)

    def call(self, stub, method, request, token=None):
        """'OK', or the gRPC code and message of the refusal. A request
        stamped with the auth revision this member knew and applied after a
        later auth change is refused as OLD_REVISION and asked again, as
        clientv3 does: a member that has not applied root's last change yet
        stamps the revision before it (etcd does the same)."""
        metadata = [('token', token)] if token else None
        for _ in range(OLD_REVISION_RETRIES):
            try:
                getattr(getattr(self, stub), method)(request, timeout=TIMEOUT_S,
                                                     metadata=metadata)
                return OK
            except grpc.RpcError as e:
                answer = '%s %s' % (e.code().name, e.details())
            if answer != OLD_REVISION:
                break
            time.sleep(0.05)
        return answer

    def login(self, user, password=None):
        return self.auth.Authenticate(etcdrpc.AuthenticateRequest(
            name=user, password=password or PASSWORDS[user]), timeout=TIMEOUT_S).token

    # ---- the calls the scenario makes, each answering as call() ----
    def put(self, token, key):
        return self.call('kv', 'Put', etcdrpc.PutRequest(key=key.encode(), value=b'v'), token)

    def get(self, token, key):
        return self.call('kv', 'Range', etcdrpc.RangeRequest(key=key.encode()), token)

    def admin(self, method, token, **fields):
        """An Auth call by its name: admin('UserAdd', token, name='x',
        password='p') sends AuthUserAddRequest(name='x', password='p')
        (AuthEnable an AuthEnableRequest)."""
        message = method if method.startswith('Auth') else 'Auth' + method
        request = getattr(etcdrpc, message + 'Request')(**fields)
        return self.call('auth', method, request, token)


def readwrite_prefix(prefix):
    """A readwrite permission on every key that starts with `prefix`."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return auth_pb2.Permission(permType=auth_pb2.Permission.READWRITE,
                               key=prefix.encode(), range_end=end.encode())


def as_root(m, what, method, **fields):
    """Runs the Auth call `method` with `fields` on member m as a fresh root
    login; checks it succeeds (`what` names the check)."""
    check(what, OK, m.admin(method, m.login('root'), **fields))


def on_every_member(members, name, expected, step):
    """step(member) answers `expected` on each of the three."""
    for i, m in enumerate(members):
        check('%s on %s' % (name, NAMES[i]), expected, step(m))


def mallory_is_absent(m):
    check('no user mallory was made', NO_USER, m.admin('UserGet', m.login('root'), name='mallory'))


def old_token_makes_no_root_user(m, token):
    """Issue 22's attack with a dropped admin token, on every member."""
    on_every_member(m, "alice's old token adds mallory", INVALID_TOKEN,
                    lambda x: x.admin('UserAdd', token, name='mallory', password='pw'))
    on_every_member(m, "alice's old token grants mallory root", INVALID_TOKEN,
                    lambda x: x.admin('UserGrantRole', token, user='mallory', role='root'))
    mallory_is_absent(m[0])


def all_applied(m, auth_on=True):
    """Every member has applied what root changed (a linearizable read
    waits for its read index), so what follows does not depend on which
    member is behind: differs_dropped_token_at_once tries the moment
    before."""
    root = m[0].login('root') if auth_on else None
    for i, x in enumerate(m):
        answer = x.get(root, '/applied')
        if answer != OK:
            raise RuntimeError('a read on %s: %s' % (NAMES[i], answer))


# ---------------------------------------------------------------------------

def set_up(m):
    section('users: root and alice hold the root role, bob may write /b/, carol /c/')
    steps = [(0, 'UserAdd', dict(name='root', password=PASSWORDS['root'])),
             (0, 'UserGrantRole', dict(user='root', role='root')),
             (1, 'UserAdd', dict(name='alice', password=PASSWORDS['alice'])),
             (1, 'UserGrantRole', dict(user='alice', role='root')),
             (2, 'RoleAdd', dict(name='b-rw')),
             (2, 'RoleGrantPermission', dict(name='b-rw', perm=readwrite_prefix('/b/'))),
             (0, 'UserAdd', dict(name='bob', password=PASSWORDS['bob'])),
             (0, 'UserGrantRole', dict(user='bob', role='b-rw')),
             (1, 'RoleAdd', dict(name='c-rw')),
             (1, 'RoleGrantPermission', dict(name='c-rw', perm=readwrite_prefix('/c/'))),
             (2, 'UserAdd', dict(name='carol', password=PASSWORDS['carol'])),
             (2, 'UserGrantRole', dict(user='carol', role='c-rw')),
             (0, 'AuthEnable', dict())]
    for i, method, fields in steps:
        answer = m[i].admin(method, None, **fields)
        if answer != OK:
            raise RuntimeError('setting up, %s: %s' % (method, answer))


def test_unrelated_changes(m):
    section("auth changes about other users leave alice's and bob's tokens working")
    alice = m[0].login('alice')
    bob = m[1].login('bob')
    as_root(m[2], "carol's new password", 'UserChangePassword', name='carol', password='carol2')
    PASSWORDS['carol'] = 'carol2'
    as_root(m[0], 'a new role', 'RoleAdd', name='unrelated')
    as_root(m[1], "carol's role grows", 'RoleGrantPermission', name='c-rw',
            perm=readwrite_prefix('/c2/'))
    as_root(m[2], "carol's role revoked", 'UserRevokeRole', name='carol', role='c-rw')
    as_root(m[0], 'carol deleted', 'UserDelete', name='carol')
    on_every_member(m, "alice's token adds a role", OK,
                    lambda x: x.admin('RoleAdd', alice, name='by-alice-%d' % m.index(x)))
    on_every_member(m, "alice's token writes", OK, lambda x: x.put(alice, '/a/k'))
    on_every_member(m, "bob's token writes /b/", OK, lambda x: x.put(bob, '/b/k'))
    on_every_member(m, "bob's token still may not read /a/", DENIED,
                    lambda x: x.get(bob, '/a/k'))


def test_password_change(m):
    section("root changes alice's password: her tokens fail on every member")
    alice = m[0].login('alice')
    bob = m[0].login('bob')
    on_every_member(m, "alice's token from %s writes" % NAMES[0], OK,
                    lambda x: x.put(alice, '/a/before'))
    as_root(m[1], "alice's new password", 'UserChangePassword', name='alice', password='alice2')
    PASSWORDS['alice'] = 'alice2'
    differs_dropped_token_at_once(m, alice)
    all_applied(m)
    old_token_makes_no_root_user(m, alice)
    on_every_member(m, "alice's old token writes", INVALID_TOKEN,
                    lambda x: x.put(alice, '/a/after'))
    on_every_member(m, "bob's token (issued beside hers) writes /b/", OK,
                    lambda x: x.put(bob, '/b/after-password'))
    fresh = m[2].login('alice')
    on_every_member(m, "alice's new token adds a role", OK,
                    lambda x: x.admin('RoleAdd', fresh, name='after-password-%d' % m.index(x)))


def test_delete_and_recreate(m):
    section('root deletes alice and makes her again with the root role: her old token fails')
    alice = m[1].login('alice')
    bob = m[2].login('bob')
    as_root(m[0], 'alice deleted', 'UserDelete', name='alice')
    as_root(m[1], 'alice made again', 'UserAdd', name='alice', password=PASSWORDS['alice'])
    as_root(m[2], 'alice holds root again', 'UserGrantRole', user='alice', role='root')
    differs_dropped_token_at_once(m, alice)
    all_applied(m)
    old_token_makes_no_root_user(m, alice)
    on_every_member(m, "bob's token writes /b/", OK, lambda x: x.put(bob, '/b/after-delete'))


def test_revoked_roles(m):
    section("a revoked or deleted role: the token stays, the role's rights go at once")
    alice = m[2].login('alice')
    bob = m[0].login('bob')
    as_root(m[1], 'root role revoked from alice', 'UserRevokeRole', name='alice', role='root')
    all_applied(m)
    on_every_member(m, "alice's token adds mallory", DENIED,
                    lambda x: x.admin('UserAdd', alice, name='mallory', password='pw'))
    on_every_member(m, "alice's token writes", DENIED, lambda x: x.put(alice, '/a/revoked'))
    as_root(m[2], "bob's role deleted", 'RoleDelete', role='b-rw')
    all_applied(m)
    on_every_member(m, "bob's token writes /b/", DENIED, lambda x: x.put(bob, '/b/deleted'))
    mallory_is_absent(m[1])
    # The token was never dropped: rights granted again work through it.
    as_root(m[0], 'root role granted again', 'UserGrantRole', user='alice', role='root')
    on_every_member(m, "alice's same token adds a role", OK,
                    lambda x: x.admin('RoleAdd', alice, name='regranted-%d' % m.index(x)))
    as_root(m[0], "bob's role made again", 'RoleAdd', name='b-rw')
    as_root(m[1], "bob's role may write /b/", 'RoleGrantPermission', name='b-rw',
            perm=readwrite_prefix('/b/'))
    as_root(m[2], "bob holds his role again", 'UserGrantRole', user='bob', role='b-rw')
    on_every_member(m, "bob's same token writes /b/", OK, lambda x: x.put(bob, '/b/regranted'))


def differs_dropped_token_at_once(m, token):
    """Right after root's change is answered, a member that has not applied
    it yet still knows the dropped token. etcd 3.4 stamps the request there
    and applies it after the change, and its admin check looks at the user
    only: mallory may be made (then the next member answers that she
    exists). etc's admin check refuses a request checked against an older
    auth revision; asked again, the token is gone."""
    answers = [x.admin('UserAdd', token, name='mallory', password='pw') for x in m]
    if not REFEREE:
        check("at once, the dropped token adds mallory on every member (etc: never)",
              [INVALID_TOKEN] * 3, answers)
        return
    exists = 'FAILED_PRECONDITION etcdserver: user name already exists'
    check_true('at once, the dropped token adds mallory or is refused (etcd 3.4: either)',
               all(a in (OK, INVALID_TOKEN, exists) for a in answers), str(answers))
    root = m[0].login('root')
    if OK in answers:
        check('etcd made mallory; root deletes her', OK,
              m[0].admin('UserDelete', root, name='mallory'))


def differs_token_while_auth_is_off(m, token):
    """etcd 3.4 keeps no tokens while auth is off, so any token is refused
    ('invalid auth token'); etc lets a request with auth off go as nobody,
    which may do everything anyway."""
    expected = INVALID_TOKEN if REFEREE else OK
    check('with auth off, an old token writes (%s)' % ('etcd: refused' if REFEREE else 'etc'),
          expected, m.put(token, '/off/k'))


def test_auth_off_and_on(m):
    section('auth off and on: every token fails on every member')
    alice = m[0].login('alice')
    bob = m[1].login('bob')
    root = m[2].login('root')
    check('root turns auth off', OK, m[2].admin('AuthDisable', root))
    all_applied(m, auth_on=False)
    differs_token_while_auth_is_off(m[1], alice)
    check('auth on again', OK, m[0].admin('AuthEnable', None))
    all_applied(m)
    for who, token in (('alice', alice), ('bob', bob), ('root', root)):
        on_every_member(m, "%s's old token writes" % who, INVALID_TOKEN,
                        lambda x: x.put(token, '/b/old-token'))
    old_token_makes_no_root_user(m, alice)
    fresh = m[1].login('bob')
    on_every_member(m, "bob's new token writes /b/", OK, lambda x: x.put(fresh, '/b/new-token'))


def test_ttl(cluster):
    section('restarted with --auth-token-ttl=2: a token unused on a member for 4 s is gone there')
    for i in range(3):
        e2e_lib.procs[i].kill()
        e2e_lib.procs[i].wait()
    cluster.extra_flags = ['--auth-token-ttl=2']
    for i in range(3):
        cluster.start(i)
    m = [Member(port) for port in cluster.client_port]
    if not until(lambda: m[0].login('bob'), timeout=30, quiet=True):
        raise RuntimeError('the restarted cluster gives no token')
    bob = m[0].login('bob')
    on_every_member(m, "bob's new token writes /b/", OK, lambda x: x.put(bob, '/b/ttl'))
    # In use on the first member every half second for 5 s: it stays there,
    # and is gone on the members that did not see it used for that long.
    started = time.time()
    kept = []
    while time.time() - started < 5:
        kept.append(m[0].put(bob, '/b/ttl'))
        time.sleep(0.5)
    check('used every 0.5 s for 5 s on %s, it keeps working' % NAMES[0], [OK] * len(kept), kept)
    for i in (1, 2):
        check('unused for 5 s on %s, it is gone there' % NAMES[i], INVALID_TOKEN,
              m[i].put(bob, '/b/ttl'))
    time.sleep(4)
    check('then unused for 4 s on %s, it is gone there too' % NAMES[0], INVALID_TOKEN,
          m[0].put(bob, '/b/ttl'))
    check('a new login works', OK, m[2].put(m[1].login('bob'), '/b/ttl'))


def body(work):
    cluster = Cluster(SERVER, work, NAMES)
    for i in range(3):
        cluster.start(i)
    m = [Member(port) for port in cluster.client_port]
    if not until(lambda: all(x.put(None, '/ready') == OK for x in m), timeout=30, quiet=True):
        raise RuntimeError('the cluster did not become ready')
    set_up(m)
    for test in (test_unrelated_changes, test_password_change, test_delete_and_recreate,
                 test_revoked_roles, test_auth_off_and_on):
        e2e_lib.attempt(test.__name__, test, m)
    e2e_lib.attempt('test_ttl', test_ttl, cluster)


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'token-', NAMES, body))
