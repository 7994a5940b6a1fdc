#!/usr/bin/python3
"""etcctl in a terminal, used as a person would (tmux: send-keys,
capture-pane): `watch --tree` redraws as keys change through another
member, colours appear on the terminal and not in a pipe, and Ctrl-C ends
the watch with exit code 0. Runs against a three-member etc cluster and,
unchanged, against Debian's etcd 3.4 (where etcctl falls back to prefix
ranges and watches).

    /usr/bin/python3 client/etcctl_tmux_test.py <server binary> <etcctl binary>
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'server'))
import e2e_lib  # noqa: E402 (server/e2e_lib.py)
from e2e_lib import check, check_true, log, section, until  # noqa: E402

SERVER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
ETCCTL = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
NAMES = ['t1', 't2', 't3']


class Terminal(object):
    """A tmux server of its own (its own socket), one 120x40 window."""

    def __init__(self):
        # A socket path must be short (Bazel's temporary folders are not).
        self.dir = tempfile.mkdtemp(prefix='etcctl-tmux-', dir='/tmp')
        self.socket = os.path.join(self.dir, 's')
        self.tmux(['-f', '/dev/null', 'new-session', '-d', '-s', 'etcctl', '-x', '120',
                   '-y', '40', 'env -u NO_COLOR TERM=xterm-256color PS1="$ " sh'])

    def tmux(self, args):
        return subprocess.run(['tmux', '-S', self.socket] + args, check=True,
                              stdout=subprocess.PIPE, timeout=10).stdout.decode('utf-8', 'replace')

    def type(self, line):
        self.tmux(['send-keys', '-t', 'etcctl', '-l', line])
        self.tmux(['send-keys', '-t', 'etcctl', 'Enter'])

    def key(self, name):
        self.tmux(['send-keys', '-t', 'etcctl', name])

    def screen(self, colours=False):
        return self.tmux(['capture-pane', '-p', '-t', 'etcctl'] + (['-e'] if colours else []))

    def wait_for(self, text, timeout=10):
        return until(lambda: text in self.screen(), timeout=timeout)

    def close(self):
        subprocess.run(['tmux', '-S', self.socket, 'kill-server'], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def etcctl(endpoints, *args):
    return subprocess.run([ETCCTL, '--endpoints=' + endpoints] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)


def test_watch_tree(term, endpoints, other):
    section('watch --tree in a terminal')
    etcctl(endpoints, 'put', '/services/web/port', '80')
    etcctl(endpoints, 'put', '/services/db/port', '5432')
    term.type('%s --endpoints=%s watch --tree /services; echo "EXIT=$?"' % (ETCCTL, endpoints))
    check_true('the view shows the tree as it is', term.wait_for('port = 5432'), term.screen())
    check_true('the view names the revision it shows', term.wait_for('revision'), term.screen())
    # Writes through another member show up in the view.
    etcctl(other, 'put', '/services/web/host', 'example.com')
    check_true('a key put through another member appears',
               term.wait_for('host = example.com'), term.screen())
    check_true('and is marked new', '(new)' in term.screen(), term.screen())
    etcctl(other, 'del', '/services/db/port')
    check_true('a deleted key is shown deleted', term.wait_for('(deleted)'), term.screen())
    etcctl(other, 'put', '/services/queue/q1', 'x')
    check_true('the deleted key is gone at the next change',
               term.wait_for('q1 = x') and 'port = 5432' not in term.screen(), term.screen())
    check('directories are coloured on a terminal', True, coloured(term.screen(colours=True)))
    term.key('C-c')
    check_true('Ctrl-C ends the watch with exit code 0', term.wait_for('EXIT=0'), term.screen())


def coloured(screen):
    """Whether capture-pane -e shows any cell in a colour or bold (tmux
    writes its own SGR sequences for the cells' attributes)."""
    for params in re.findall(r'\x1b\[([0-9;]*)m', screen):
        if any(p not in ('', '0', '39', '49') for p in params.split(';')):
            return True
    return False


def test_pipes_have_no_colour(term, endpoints):
    section('colour only on a terminal')
    term.type('clear')
    term.type('%s --endpoints=%s tree /services | cat; echo "PIPED=$?"' % (ETCCTL, endpoints))
    check_true('tree in a pipe runs', term.wait_for('PIPED=0'), term.screen())
    piped = term.screen(colours=True)
    check_true('tree in a pipe draws the tree', 'queue/' in piped and 'q1 = x' in piped, piped)
    check('with no colour in it', False, coloured(piped))
    term.type('clear')
    term.type('%s --endpoints=%s tree /services; echo "DIRECT=$?"' % (ETCCTL, endpoints))
    check_true('tree on the terminal runs', term.wait_for('DIRECT=0'), term.screen())
    check('and is coloured', True, coloured(term.screen(colours=True)))
    term.type('clear')
    term.type('NO_COLOR=1 %s --endpoints=%s tree /services; echo "NOCOLOR=$?"' %
              (ETCCTL, endpoints))
    check_true('NO_COLOR runs', term.wait_for('NOCOLOR=0'), term.screen())
    check('NO_COLOR turns colour off on a terminal', False, coloured(term.screen(colours=True)))
    out = etcctl(endpoints, 'tree', '/services')
    check('a captured tree has no escape sequences', False, b'\x1b[' in out.stdout)


def body(work):
    if not ETCCTL or not os.access(ETCCTL, os.X_OK):
        raise RuntimeError('usage: etcctl_tmux_test.py <server> <etcctl>')
    cl = e2e_lib.Cluster(SERVER, work, NAMES)
    for i in range(3):
        cl.start(i)
    endpoints = ','.join('127.0.0.1:%d' % p for p in cl.client_port)
    ready = until(lambda: etcctl(endpoints, 'put', '/ready', '1').returncode == 0, timeout=20,
                  quiet=True)
    check_true('the cluster answers', ready)
    term = Terminal()
    try:
        one = '127.0.0.1:%d' % cl.client_port[0]
        other = '127.0.0.1:%d' % cl.client_port[1]
        e2e_lib.attempt('test_watch_tree', test_watch_tree, term, one, other)
        e2e_lib.attempt('test_pipes_have_no_colour', test_pipes_have_no_colour, term, one)
    finally:
        if e2e_lib.failures:
            log('last screen:\n' + term.screen())
        term.close()


if __name__ == '__main__':
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'tmux-', NAMES, body,
                                                 usage='<server binary> <etcctl binary>'))
