#!/usr/bin/env python3
"""The tables of tools/overload.sh, from what its runs left in its work
directory: <server>-expiry.out (etc-bench --workload=lease-expiry),
<server>-idle-<run>.out (etc-bench with --idle-*) and <server>-facts
(lines "name value...": the version, leader changes, and the leader's
threads, resident KiB and descriptors at each sampling point).

    tools/overload_report.py <work dir> etcd etc
"""
import json
import pathlib
import sys


def json_lines(path, start):
    """Every JSON line of `path` that starts with `start`."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith(start)]


def one(path, start):
    lines = json_lines(path, start)
    return lines[-1] if lines else None


def facts(path):
    result = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            result[name] = value.split()
    return result


def ms(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def n(x):
    return f"{x:,.0f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def expiry_tables(work, servers):
    runs = {s: (one(work / f"{s}-expiry.out", '{"workload"'), json_lines(work / f"{s}-expiry.out", '{"second"'),
                facts(work / f"{s}-facts")) for s in servers}
    if not any(r[0] for r in runs.values()):
        return ""
    first = next(r[0] for r in runs.values() if r[0])
    rows = []

    def row(name, cell):
        rows.append([name] + [cell(*runs[s]) if runs[s][0] else "did not run" for s in servers])

    def phases(fmt):
        return lambda r, _b, _f: " / ".join(fmt(r, p) for p in ("before", "expiry", "after"))

    row("leases granted; keys put on them; renewal burst",
        lambda r, _b, _f: f"{n(r['granted'])} in {r['grant_s']:.1f} s; {n(r['attached'])} in {r['attach_s']:.1f} s; "
                          f"{r['renew_s']:.1f} s" + (f" ({n(r['renew_gone'])} already expired)" if r['renew_gone'] else ""))
    for phase, label in (("before", "before the expiry"), ("expiry", "during the expiry"), ("after", "after")):
        row(f"put p50 / p99 {label} (ms)", lambda r, _b, _f, p=phase: f"{ms(r[p + '_p50_ms'])} / {ms(r[p + '_p99_ms'])}")
    row("worst one-second put p99: before / during / after (ms)", phases(lambda r, p: ms(r[p + "_worst_p99_ms"])))
    row("puts/s: before / during / after", phases(lambda r, p: n(r[p + "_puts_per_s"])))
    row("put errors: before / during / after", phases(lambda r, p: n(r[p + "_errors"])))
    row("leases gone per second: mean / best second",
        lambda r, _b, _f: f"{n(r['revoked_per_s_mean'])} / {n(r['revoked_per_s_peak'])}")
    row("all leases gone, after the first TTL ended",
        lambda r, _b, _f: f"{r['all_gone_s']:.0f} s" if r["all_gone_s"] >= 0 else "not within the run")
    row("keys deleted with their leases (seen by a watch)", lambda r, _b, _f: n(r["keys_deleted"]))
    row("leader changes (members' metrics; seen by the samples); Raft term",
        lambda r, _b, f: f"{f.get('leader_changes', ['?'])[0]}; {r['leader_changes']}; "
                         f"{r['term_first']} to {r['term_last']}")
    header = [f"mass lease expiry: {n(first['leases'])} leases (TTL {first['ttl_s']} s, {n(first['lease_keys'])} "
              f"with a key), {first['clients']} clients putting"] + [version(runs[s][2], s) for s in servers]
    out = table(header, rows)

    # The expiry second by second, in 10-second windows from its start.
    windows = {}
    for s in servers:
        r, buckets, _ = runs[s]
        if not r:
            continue
        for b in buckets:
            w = int((b["second"] - r["expiry_start_s"]) // 10)
            cell = windows.setdefault(w, {}).setdefault(s, {"puts": 0, "seconds": 0, "worst": 0.0, "leases": None,
                                                             "errors": 0})
            cell["puts"] += b["puts"]
            cell["seconds"] += 1
            cell["errors"] += b["errors"]
            cell["worst"] = max(cell["worst"], b["p99_ms"])
            if b["leases"] >= 0:
                cell["leases"] = b["leases"]
    rows = []
    for w in sorted(windows):
        row = [f"{w * 10:+d} to {w * 10 + 10:+d} s"]
        for s in servers:
            c = windows[w].get(s)
            if not c:
                row += ["", "", ""]
                continue
            row += [n(c["leases"]) if c["leases"] is not None else "?", n(c["puts"] / c["seconds"]),
                    ms(c["worst"]) + (f" ({c['errors']} errors)" if c["errors"] else "")]
        rows.append(row)
    header = ["time since the first TTL ended"]
    for s in servers:
        header += [f"{s}: leases left", f"{s}: puts/s", f"{s}: worst 1 s p99 ms"]
    return out + "\n\n" + table(header, rows)


def version(f, server):
    return " ".join(f.get("version", [server]))


def idle_table(work, servers):
    runs = {}
    for s in servers:
        runs[s] = {name: (one(work / f"{s}-idle-{name}.out", '{"workload"'),
                          one(work / f"{s}-idle-{name}.out", '{"idle_opened"'),
                          one(work / f"{s}-idle-{name}.out", '{"idle_held"'))
                   for name in ("put-none", "range-none", "put-idle", "range-idle")}
    if not any(runs[s]["put-idle"][1] for s in servers):
        return ""
    opened = next(runs[s]["put-idle"][1] for s in servers if runs[s]["put-idle"][1])
    total = opened["silent"] + opened["http"] + opened["failed"] + opened["unanswered"]
    rows = []

    def row(name, cell):
        cells = []
        for s in servers:
            try:
                cells.append(cell(runs[s], facts(work / f"{s}-facts")))
            except (TypeError, KeyError, IndexError):
                cells.append("did not run")
        rows.append([name] + cells)

    for workload, label, plural in (("put", "put", "puts"), ("range", "range (linearizable)", "ranges")):
        row(f"{label} p50 / p99 (ms): none idle, then {n(total)} idle",
            lambda r, _f, w=workload: f"{ms(r[w + '-none'][0]['p50_ms'])} / {ms(r[w + '-none'][0]['p99_ms'])}, then "
                                      f"{ms(r[w + '-idle'][0]['p50_ms'])} / {ms(r[w + '-idle'][0]['p99_ms'])}")
        row(f"{plural}/s (errors): none idle, then idle",
            lambda r, _f, w=workload: f"{n(r[w + '-none'][0]['throughput'])} ({r[w + '-none'][0]['errors']}), then "
                                      f"{n(r[w + '-idle'][0]['throughput'])} ({r[w + '-idle'][0]['errors']})")
    row("idle connections held: silent + HTTP/1.1 (not connected; HTTP not answered)",
        lambda r, _f: f"{n(r['put-idle'][1]['silent'])} + {n(r['put-idle'][1]['http'])} "
                      f"({r['put-idle'][1]['failed']}; {r['put-idle'][1]['unanswered']})")
    row("a new client (connect and put, 3 s each) while they are held: in the put run / the range run",
        lambda r, _f: " / ".join(r[name][1]["new_client"] for name in ("put-idle", "range-idle")))
    # Around the range run: it adds no keys, so what changes is the idle
    # connections' doing.
    points = ("threads_rss_fds_before_range-idle", "threads_rss_fds_range-idle", "threads_rss_fds_after_range-idle")
    row("the leader's threads: before, with them open, after they closed",
        lambda _r, f: ", ".join(f[k][0] for k in points))
    row("the leader's resident memory (MiB): before, with them open, after they closed",
        lambda _r, f: ", ".join(n(int(f[k][1]) / 1024) for k in points))
    row("the leader's open descriptors: before, with them open, after they closed",
        lambda _r, f: ", ".join(f[k][2] for k in points))
    row("closed by the server within 70 s of opening (when)",
        lambda r, _f: f"{n(r['range-idle'][2]['closed'])}" +
                      (f" ({r['range-idle'][2]['first_closed_s']:.0f} to {r['range-idle'][2]['last_closed_s']:.0f} s)"
                       if r["range-idle"][2]["closed"] else ""))
    row("a new client after those 70 s", lambda r, _f: r["range-idle"][2]["new_client"])
    header = [f"{n(total)} idle connections on the leader's client port, 16 clients"] + \
             [version(facts(work / f"{s}-facts"), s) for s in servers]
    return table(header, rows)


def main():
    work = pathlib.Path(sys.argv[1])
    servers = sys.argv[2:]
    print("\n\n".join(t for t in (expiry_tables(work, servers), idle_table(work, servers)) if t))


if __name__ == "__main__":
    main()
