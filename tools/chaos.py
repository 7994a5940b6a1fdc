#!/usr/bin/python3
"""A real-process fault loop: a three-member cluster of real server processes
(etc, or Debian's etcd as the referee) under SIGKILL/restart and
SIGSTOP/SIGCONT, while client threads read, write, compare-and-set (a txn
comparing the value, or the version with 0 for "absent", then a put) and
delete a few keys with python3-etcd3. Every operation's invocation and
completion is recorded in etc-lincheck's JSON-lines format
(docs/lincheck.md) and the history is checked with etc-lincheck.

    /usr/bin/python3 tools/chaos.py --seconds=600 \\
        --lincheck=bazel-bin/sim/etc-lincheck bazel-bin/server/etc
    /usr/bin/python3 tools/chaos.py --lincheck=... /usr/bin/etcd   # the referee

Exit code 0 when the history is linearizable and the run did enough to
mean something (operations completed on every kind, faults injected,
every member running at the end); 1 otherwise. The check must be able to
fail: every run also checks a copy of its history with one read corrupted
and wants etc-lincheck to call it a violation; --corrupt-read checks that
copy as the run's own history (the run then fails, by design).

Debian's /usr/bin/python3 has the etcd3 module; a pyenv python3 may not.
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import etcd3
import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'server'))
import e2e_lib  # noqa: E402 (server/e2e_lib.py)
from e2e_lib import check, check_true, log, section  # noqa: E402

NAMES = ['c1', 'c2', 'c3']
REQUEST_TIMEOUT_S = 2
# Short reconnect backoff: a member restarted after SIGKILL should get
# requests again within a second, not after gRPC's default 1-120 s backoff.
# (Not grpc.min_reconnect_backoff_ms: it is also the connect deadline, and
# a loaded machine's member misses a short one.)
GRPC_OPTIONS = [('grpc.initial_reconnect_backoff_ms', 100),
                ('grpc.max_reconnect_backoff_ms', 1000)]


class Recorder(object):
    """The history, one JSON line per event, written as it happens (a run
    killed halfway still leaves what it recorded)."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, 'w')
        self.counts = {}

    def event(self, record):
        line = json.dumps(record, separators=(',', ':'))
        with self.lock:
            self.file.write(line + '\n')
            key = (record['type'], record['f'])
            self.counts[key] = self.counts.get(key, 0) + 1

    def close(self):
        with self.lock:
            self.file.close()


def grpc_cause(exc):
    """The gRPC error behind an etcd3 exception (etcd3 raises its own from
    inside the handler), or None."""
    cause = exc if isinstance(exc, grpc.RpcError) else exc.__context__
    return cause if isinstance(cause, grpc.RpcError) else None


def error_text(exc):
    cause = grpc_cause(exc)
    if cause is None:
        return type(exc).__name__
    return '%s: %s' % (cause.code().name, (cause.details() or '')[:160])


# etc's own Unavailable answers, each a certain failure by its contract
# (docs/ARCHITECTURE.md, "Certain failures"; the simulator's certain-failure
# checker holds it to that): a proposal refused before it reached a log, a
# read whose leader changed before it got an index.
ETC_CERTAIN_FAILURES = ('proposal dropped:', 'read dropped:', 'leader changed; retry the read')


def known_not_applied(exc, trust_etc_unavailable):
    """Whether a failed request certainly took no effect: gRPC could not
    connect (nothing was sent), or, with trust_etc_unavailable, etc said so.
    Anything else (a timeout, a dropped connection, etcd's "leader
    changed") may have been applied."""
    cause = grpc_cause(exc)
    if cause is None or cause.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    details = cause.details() or ''
    if 'failed to connect to all addresses' in details.lower():
        return True
    return trust_etc_unavailable and details.startswith(ETC_CERTAIN_FAILURES)


class Worker(object):
    """One client thread: operations one at a time on random keys through
    random members. After an unknown outcome it takes a new process id,
    as Jepsen's clients do, so that no process has two operations open."""

    def __init__(self, index, clients, cluster_clients, keys, recorder, rng, trust_etc_unavailable):
        self.index = index
        self.trust_etc_unavailable = trust_etc_unavailable
        self.clients = clients
        self.process = index
        self.members = cluster_clients
        self.keys = keys
        self.recorder = recorder
        self.rng = rng
        self.counter = 0
        self.last_seen = {}  # key -> the value this worker last read or wrote

    def new_value(self):
        self.counter += 1
        return 'p%d-%d' % (self.process, self.counter)

    def run(self, stop):
        while not stop.is_set():
            self.one_operation()

    def one_operation(self):
        key = self.rng.choice(self.keys)
        client = self.rng.choice(self.members)
        roll = self.rng.random()
        if roll < 0.4:
            self.perform(key, 'read', None, lambda: self.read(client, key))
        elif roll < 0.65:
            value = self.new_value()
            self.perform(key, 'write', value, lambda: client.put(key, value) and None)
        elif roll < 0.9:
            expected, value = self.last_seen.get(key), self.new_value()
            self.perform(key, 'cas', [expected, value], lambda: self.cas(client, key, expected, value))
        else:
            self.perform(key, 'delete', None, lambda: client.delete(key) and None)

    def read(self, client, key):
        value, _ = client.get(key)
        value = None if value is None else value.decode()
        self.last_seen[key] = value
        return {'value': value}

    def cas(self, client, key, expected, value):
        tx = client.transactions
        compare = (tx.version(key) == 0 if expected is None else tx.value(key) == expected)
        succeeded, _ = client.transaction(compare=[compare], success=[tx.put(key, value)], failure=[])
        if succeeded:
            self.last_seen[key] = value
        return {'swapped': bool(succeeded)}

    def perform(self, key, f, value, call):
        invoke = {'process': self.process, 'type': 'invoke', 'f': f, 'key': key,
                  'time': time.monotonic_ns()}
        if value is not None:
            invoke['value'] = value
        self.recorder.event(invoke)
        completion = {'process': self.process, 'f': f, 'key': key}
        try:
            completion.update(call() or {})
            completion['type'] = 'ok'
        except Exception as exc:  # every failure is recorded, none ends the run
            completion['type'] = 'fail' if known_not_applied(exc, self.trust_etc_unavailable) else 'info'
            completion['error'] = error_text(exc)
        completion['time'] = time.monotonic_ns()
        self.recorder.event(completion)
        if completion['type'] == 'info':
            self.process += self.clients


class Nemesis(object):
    """One member at a time: SIGKILL and a restart after a while, or
    SIGSTOP and SIGCONT after a while."""

    def __init__(self, cluster, recorder, rng):
        self.cluster = cluster
        self.recorder = recorder
        self.rng = rng
        self.faults = {'kill': 0, 'pause': 0}

    def note(self, f, member):
        self.recorder.event({'process': 'nemesis', 'type': 'info', 'f': f,
                             'value': NAMES[member], 'time': time.monotonic_ns()})

    def run(self, stop):
        while not stop.wait(self.rng.uniform(0.3, 1.5)):
            member = self.rng.randrange(len(NAMES))
            proc = e2e_lib.procs[member]
            if self.rng.random() < 0.5:
                self.note('kill', member)
                proc.kill()
                proc.wait()
                stop.wait(self.rng.uniform(0.3, 2.0))
                self.cluster.start(member)
                self.note('restart', member)
                self.faults['kill'] += 1
            else:
                self.note('pause', member)
                proc.send_signal(signal.SIGSTOP)
                stop.wait(self.rng.uniform(0.3, 3.0))
                proc.send_signal(signal.SIGCONT)
                self.note('resume', member)
                self.faults['pause'] += 1


def wait_listening(ports, deadline_s=30):
    """Every client port accepts connections (a gRPC channel made before
    then starts out backing off)."""
    for port in ports:
        ok = e2e_lib.until(lambda: socket.create_connection(('127.0.0.1', port), timeout=1).close() or True,
                           timeout=deadline_s, quiet=True)
        if not ok:
            raise RuntimeError('port %d never listened' % port)


def wait_writable(clients, deadline_s=60):
    """Every member accepts a write (so a leader exists and it reaches it)."""
    for member, c in enumerate(clients):
        ok = e2e_lib.until(lambda: c.put('/chaos-ready', 'x') is not None, timeout=deadline_s,
                           interval=0.2, quiet=True)
        if not ok:
            c.put('/chaos-ready', 'x')  # raises what stops it
            raise RuntimeError('%s did not accept writes' % NAMES[member])


def run_workload(cluster, recorder, args, rng):
    wait_listening(cluster.client_port)
    clients = [etcd3.client(host='127.0.0.1', port=port, timeout=REQUEST_TIMEOUT_S,
                            grpc_options=GRPC_OPTIONS) for port in cluster.client_port]
    wait_writable(clients)
    keys = ['/chaos/k%d' % i for i in range(args.keys)]
    workers = [Worker(i, args.clients, clients, keys, recorder, random.Random(rng.random()),
                      args.trust_etc_unavailable)
               for i in range(args.clients)]
    nemesis = Nemesis(cluster, recorder, random.Random(rng.random()))
    stop_clients, stop_faults = threading.Event(), threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop_clients,), daemon=True) for w in workers]
    fault_thread = threading.Thread(target=nemesis.run, args=(stop_faults,), daemon=True)
    for t in threads + [fault_thread]:
        t.start()
    time.sleep(args.seconds)
    stop_faults.set()
    fault_thread.join()
    # Healing: every member runs again; the clients go on a while so the
    # history ends with operations a healthy cluster answered.
    time.sleep(args.heal_seconds)
    stop_clients.set()
    for t in threads:
        t.join(REQUEST_TIMEOUT_S * 3)
    return nemesis.faults


def corrupt_one_read(src, dst):
    """A copy of the history with one answered read changed to a value no
    one wrote: a violation whatever else happened. The first read: the
    search proves it quickly there, before unknown outcomes pile up (each
    one open doubles what it must rule out)."""
    with open(src) as f:
        lines = f.readlines()
    reads = [i for i, line in enumerate(lines)
             if '"type":"ok"' in line and '"f":"read"' in line]
    if reads:
        i = reads[0]
        record = json.loads(lines[i])
        record['value'] = 'never-written'
        lines[i] = json.dumps(record, separators=(',', ':')) + '\n'
    with open(dst, 'w') as f:
        f.writelines(lines)
    return bool(reads)


def lincheck(args, history, html):
    result = subprocess.run([args.lincheck, history, '--html=' + html],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return result.returncode, result.stdout


def check_history(args, work, history):
    section('etc-lincheck')
    teeth = os.path.join(work, 'history-corrupted.jsonl')
    check_true('the history has an answered read to corrupt', corrupt_one_read(history, teeth))
    rc, out = lincheck(args, teeth, os.path.join(work, 'corrupted.html'))
    check('etc-lincheck calls the history with one corrupted read NOT linearizable (exit 1)', 1, rc)
    checked = teeth if args.corrupt_read else history
    rc, out = lincheck(args, checked, os.path.join(work, 'timeline.html'))
    log(out.rstrip())
    check('etc-lincheck: %s is linearizable (exit 0)' % os.path.basename(checked), 0, rc)


def check_counts(counts, faults, args):
    section('what the run did')
    log('faults: %s; events: %s' % (faults, ', '.join(
        '%s %s %d' % (f, t, n) for (t, f), n in sorted(counts.items()))))
    minimum = max(5, int(5 * args.seconds))
    for f in ('read', 'write', 'cas', 'delete'):
        got = counts.get(('ok', f), 0)
        check_true('at least %d %s operations answered' % (minimum // 5 if f == 'delete' else minimum, f),
                   got >= (minimum // 5 if f == 'delete' else minimum), 'only %d' % got)
    check_true('faults injected (kills and pauses)', faults['kill'] >= 1 and faults['pause'] >= 1,
               str(faults))


def body(args, work):
    # Kept after the run (the work folder goes when every check passed).
    out_dir = args.out or os.environ.get('TEST_UNDECLARED_OUTPUTS_DIR') or tempfile.mkdtemp(
        prefix='chaos-history-')
    os.makedirs(out_dir, exist_ok=True)
    history = os.path.join(out_dir, 'history.jsonl')
    rng = random.Random(args.seed)
    cluster = e2e_lib.Cluster(args.server, work, NAMES)
    for i in range(len(NAMES)):
        cluster.start(i)
    recorder = Recorder(history)
    section('%d clients on %d keys for %ss of faults and %ss of healing (seed %d), history %s'
            % (args.clients, args.keys, args.seconds, args.heal_seconds, args.seed, history))
    try:
        faults = run_workload(cluster, recorder, args, rng)
    finally:
        recorder.close()
    check_counts(recorder.counts, faults, args)
    check_history(args, out_dir, history)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('server', help='the server binary (etc, or /usr/bin/etcd)')
    parser.add_argument('--lincheck', default='bazel-bin/sim/etc-lincheck', help='etc-lincheck')
    parser.add_argument('--seconds', type=float, default=30, help='seconds of faults')
    parser.add_argument('--heal-seconds', type=float, default=5, help='seconds without faults after')
    parser.add_argument('--clients', type=int, default=6, help='client threads')
    parser.add_argument('--keys', type=int, default=3, help='keys the clients share')
    parser.add_argument('--seed', type=int, default=int(time.time()), help='seeds the choices')
    parser.add_argument('--out', help='where to keep the history and timelines (default: a new '
                        'folder under $TMPDIR, or the test outputs under bazel test)')
    parser.add_argument('--trust-etc-unavailable', choices=['auto', 'yes', 'no'], default='auto',
                        help="record etc's Unavailable answers as certain failures (auto: unless "
                        'the server is named etcd)')
    parser.add_argument('--corrupt-read', action='store_true',
                        help='check the history with one read corrupted (must fail)')
    args = parser.parse_args()
    args.server = os.path.abspath(args.server)
    args.trust_etc_unavailable = (args.trust_etc_unavailable == 'yes' or (
        args.trust_etc_unavailable == 'auto' and os.path.basename(args.server) != 'etcd'))
    args.lincheck = os.path.abspath(args.lincheck)
    if not os.access(args.lincheck, os.X_OK):
        parser.error('no etc-lincheck at %s (bazel build //sim:etc-lincheck)' % args.lincheck)
    if args.clients < 1 or args.keys < 1 or args.seconds <= 0:
        parser.error('--clients, --keys and --seconds must be positive')
    return args


if __name__ == '__main__':
    ARGS = parse_args()
    e2e_lib.run(lambda: e2e_lib.run_cluster_test(
        ARGS.server, 'chaos-', NAMES, lambda work: body(ARGS, work)))
