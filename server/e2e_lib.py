"""Shared by the server's Python end-to-end tests (imported, not run), as
e2e_lib.sh is by the shell ones: checks that count failures, a three-member
loopback cluster of etc or etcd, keys written to it and read back from one
member, its hashes and logs, processes killed however the test ends, and the
summary that makes the exit code.

    import e2e_lib
    from e2e_lib import check, check_true, log, section

    def body(work):
        cluster = e2e_lib.Cluster(SERVER, work, NAMES)
        ...
        e2e_lib.attempt('test_kv', test_kv, cluster)

    if __name__ == '__main__':
        e2e_lib.run(lambda: e2e_lib.run_cluster_test(SERVER, 'kv-', NAMES, body))
"""
import base64
import json
import os
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

VERBOSE = bool(os.environ.get('VERBOSE'))

failures = []  # the names of the checks that failed
passes = 0
procs = {}     # the cluster's members, by index
others = []    # other processes the test started (clients)


def log(msg):
    print(msg, flush=True)


def check(name, expected, actual):
    global passes
    if expected == actual:
        passes += 1
        log('ok   ' + name)
    else:
        failures.append(name)
        log('FAIL %s\n  expected: %r\n  actual:   %r' % (name, expected, actual))


def check_true(name, cond, detail=''):
    global passes
    if cond:
        passes += 1
        log('ok   ' + name)
    else:
        failures.append(name)
        log('FAIL %s %s' % (name, detail))


def section(name):
    log('--- ' + name)


def until(fn, timeout=10, interval=0.05, quiet=False):
    """fn() once it is true, or its last value after timeout seconds. With
    quiet, an exception fn raises counts as the value None (the call is tried
    again) rather than going up."""
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
        except Exception:
            if not quiet:
                raise
            v = None
        if v or time.time() > deadline:
            return v
        time.sleep(interval)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def b64(text):
    return base64.b64encode(text.encode()).decode()


def http_call(cluster, i, path, body, timeout=3):
    """POSTs `body` as JSON to member i's gateway path; its JSON answer."""
    request = urllib.request.Request(
        cluster.client_url[i] + path, data=json.dumps(body).encode(),
        headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def http_put(cluster, i, key, value, timeout=3):
    """A put through member i's gateway; False if it failed."""
    try:
        http_call(cluster, i, '/v3/kv/put', {'key': b64(key), 'value': b64(value)}, timeout)
        return True
    except Exception:
        return False


def local_keys(cluster, i):
    """Every /k key (as write_keys writes) and its value that member i holds:
    a serializable read, its own state."""
    got = http_call(cluster, i, '/v3/kv/range',
                    {'key': b64('/k'), 'range_end': b64('/l'), 'serializable': True})
    return {base64.b64decode(kv['key']).decode(): base64.b64decode(kv['value']).decode()
            for kv in got.get('kvs', [])}


def write_keys(cluster, i, written, first, count):
    """Puts /k<n> = v<n> for n from `first` through member i, each tried for
    up to 10 s; the acknowledged ones go into `written`."""
    for n in range(first, first + count):
        key, value = '/k%03d' % n, 'v%d' % n
        if until(lambda: http_put(cluster, i, key, value), timeout=10):
            written[key] = value


def start_and_write(cluster, via, count):
    """Starts every member, waits for the cluster to take a write, and
    writes /k000../k<count-1> through member `via` (write_keys), checking
    that each was acknowledged. Returns the written keys and values."""
    for i in range(len(cluster.names)):
        cluster.start(i)
    check_true('the cluster answers a write',
               until(lambda: http_put(cluster, via, '/ready', '1'), timeout=30))
    written = {}
    write_keys(cluster, via, written, 0, count)
    check('every write is acknowledged', count, len(written))
    return written


def same_hashes(cluster):
    """Checks that every member hashes the same (within 20 s)."""
    def hashes():
        return [http_call(cluster, i, '/v3/maintenance/hash', {})['hash']
                for i in range(len(cluster.names))]
    same = until(lambda: len(set(hashes())) == 1, timeout=20, quiet=True)
    check_true('the %d members hash the same' % len(cluster.names), same,
               str(attempt('hashes', hashes)))


def stop(i):
    """Stops member i as an operator does (SIGTERM) and waits for it."""
    procs[i].send_signal(signal.SIGTERM)
    procs[i].wait(timeout=20)


def log_size(work, name):
    return os.path.getsize(os.path.join(work, name + '.log'))


def log_text(work, name, since=0):
    """What member `name` logged from byte `since` on (each start appends)."""
    with open(os.path.join(work, name + '.log'), 'rb') as f:
        f.seek(since)
        return f.read().decode('utf-8', 'replace')


def kill_all():
    every = others + list(procs.values())
    for p in every:
        if p.poll() is None:
            p.kill()
    for p in every:
        try:
            p.wait(timeout=5)
        except Exception:
            pass


class Cluster(object):
    """Members named `names` on loopback ports, each started with etcd's
    flags (and `extra_flags`), logging to <work>/<name>.log."""

    def __init__(self, server, work, names, extra_flags=()):
        self.server = server
        self.work = work
        self.names = names
        self.extra_flags = list(extra_flags)
        self.client_port = [free_port() for _ in names]
        self.peer_port = [free_port() for _ in names]
        self.peer_url = ['http://127.0.0.1:%d' % p for p in self.peer_port]
        self.client_url = ['http://127.0.0.1:%d' % p for p in self.client_port]
        self.initial = ','.join('%s=%s' % (n, u)
                                for n, u in zip(names, self.peer_url))

    def start(self, i, env=None, flags=()):
        """Starts member i; `env`: extra environment variables for it,
        `flags`: extra flags for this start only (after `extra_flags`)."""
        logf = open(os.path.join(self.work, self.names[i] + '.log'), 'ab')
        procs[i] = subprocess.Popen(
            [self.server, '--name', self.names[i],
             '--data-dir', os.path.join(self.work, self.names[i]),
             '--listen-client-urls', self.client_url[i],
             '--advertise-client-urls', self.client_url[i],
             '--listen-peer-urls', self.peer_url[i],
             '--initial-advertise-peer-urls', self.peer_url[i],
             '--initial-cluster', self.initial,
             '--initial-cluster-state', 'new'] + self.extra_flags + list(flags),
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, **(env or {})))
        logf.close()


def attempt(name, fn, *args):
    """fn(*args), an exception counted as a failure and the test going on;
    returns fn's result (None if it raised)."""
    try:
        return fn(*args)
    except Exception:
        failures.append(name + ' raised')
        log('FAIL %s raised:\n%s' % (name, traceback.format_exc()))
        return None


def run_cluster_test(server, prefix, names, body, usage='<server binary>'):
    """Runs body(work) in a new work folder (it starts the cluster and runs
    the checks), checks that every member still runs, kills what the test
    started and reports; returns the exit code. `usage`: the arguments the
    usage line names when the server binary is missing."""
    if not server or not os.access(server, os.X_OK):
        print('usage: %s %s' % (os.path.basename(sys.argv[0]), usage))
        return 2
    base = os.environ.get('TEST_TMPDIR') or tempfile.mkdtemp()
    work = tempfile.mkdtemp(prefix=prefix, dir=base)
    t_start = time.time()
    try:
        body(work)
        for i, p in procs.items():
            check('%s is still running at the end' % names[i], None, p.poll())
    except Exception:
        failures.append('setup')
        log('FAIL setup:\n%s' % traceback.format_exc())
    finally:
        kill_all()
    log('ran in %.1fs' % (time.time() - t_start))
    rc = report(server, work, names)
    if rc == 0 and not os.environ.get('TEST_TMPDIR'):
        shutil.rmtree(base, ignore_errors=True)
    return rc


def report(server, work, names):
    """Prints the summary (and the members' last log lines if a check
    failed); returns the exit code."""
    if failures:
        log('%d check(s) failed (%d passed) against %s (logs in %s):' %
            (len(failures), passes, server, work))
        for f in failures:
            log('  ' + f)
        for name in names:
            try:
                with open(os.path.join(work, name + '.log'), 'rb') as f:
                    tail = f.read().decode('utf-8', 'replace').splitlines()[-3:]
                log('%s log tail:\n  %s' % (name, '\n  '.join(tail)))
            except OSError:
                pass
        return 1
    log('all %d checks passed against %s' % (passes, server))
    return 0


def _on_signal(signum, _frame):
    kill_all()
    os._exit(128 + signum)


def run(main):
    """Runs main() and exits with its code, the processes killed however it
    ends."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    rc = 1
    try:
        rc = main()
    except BaseException:
        traceback.print_exc()
    finally:
        kill_all()
    sys.stdout.flush()
    sys.stderr.flush()
    # The clients' own threads (etcd3's watch thread, etcd3gw's executors)
    # may still be blocked on the stopped servers; leave without them.
    os._exit(rc)
