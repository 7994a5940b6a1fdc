#!/usr/bin/env python3
"""Planted bugs: proves the tests catch the mistakes real Raft
implementations made (../shared/docs/raft-traps.md). The bugs themselves are
in tools/planted_bugs.py (shared with the simulator's //sim/planted).

Each mutant replaces one exact snippet of production code with a buggy
version, runs the given Bazel tests, and requires at least one to fail. The
source is always restored. Run from the workspace root:

    tools/mutants.py            # all mutants
    tools/mutants.py figure8    # the ones whose name contains "figure8"

Exit status is non-zero if any mutant survives (its tests still pass) or a
snippet no longer matches the code (update the mutant with the code).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from planted_bugs import MUTANTS  # noqa: E402

def run(mutant):
    with open(mutant.path) as f:
        source = f.read()
    count = source.count(mutant.original)
    if count != 1:
        return "STALE", f"snippet found {count} times in {mutant.path}"
    try:
        with open(mutant.path, "w") as f:
            f.write(source.replace(mutant.original, mutant.mutated))
        result = subprocess.run(
            ["bazel", "test", "--test_output=summary", "--noshow_progress", *mutant.tests],
            capture_output=True, text=True)
        failed = [line.split()[0] for line in result.stdout.splitlines() if "FAILED" in line and line.startswith("//")]
        if result.returncode == 0:
            return "SURVIVED", "all tests passed"
        if not failed and "FAILED TO BUILD" in result.stdout + result.stderr:
            return "NO-BUILD", "the mutant does not compile"
        return "CAUGHT", "by " + ", ".join(failed) if failed else "tests failed"
    finally:
        with open(mutant.path, "w") as f:
            f.write(source)


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    bad = 0
    for mutant in MUTANTS:
        if pattern not in mutant.name:
            continue
        verdict, detail = run(mutant)
        print(f"{verdict:9} {mutant.name:36} trap {mutant.trap}: {detail}", flush=True)
        if verdict != "CAUGHT":
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
