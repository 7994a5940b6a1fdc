#!/usr/bin/env python3
"""Planted bugs: proves the tests catch the mistakes real Raft
implementations made (../shared/docs/raft-traps.md).

Each mutant replaces one exact snippet of production code with a buggy
version, runs the given Bazel tests, and requires at least one to fail. The
source is always restored. Run from the workspace root:

    tools/mutants.py            # all mutants
    tools/mutants.py figure8    # the ones whose name contains "figure8"

Exit status is non-zero if any mutant survives (its tests still pass) or a
snippet no longer matches the code (update the mutant with the code).
"""
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Mutant:
    name: str
    trap: str
    path: str
    original: str
    mutated: str
    tests: tuple


MUTANTS = [
    Mutant("figure8-commit-old-term", "#1 commit an earlier-term entry by counting",
           "raft/raft_leader.cc",
           "if (!term.has_value() || *term != term_) return false;",
           "if (!term.has_value()) return false;",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("vote-without-up-to-date-check", "#2 grant a vote without the log check",
           "raft/raft.cc",
           "if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {",
           "if (can_vote) {",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("vote-twice-in-a-term", "#3 forget the vote (vote twice in one term)",
           "raft/raft.cc",
           "bool can_vote = vote_ == m.from() || (vote_ == kNoNode && lead_ == kNoNode) ||",
           "bool can_vote = true ||",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("truncate-on-stale-append", "#4 truncate even when entries are present",
           "raft/log.cc",
           "    if (!MatchTerm(entry.index(), entry.term())) return entry.index();",
           "    return entry.index();",
           ("//raft:log_test", "//raft:raft_property_test")),
    Mutant("read-without-quorum-round", "#5 leader answers ReadIndex without confirming leadership",
           "raft/raft_leader.cc",
           "  if (LeaseValid()) {\n    RespondToRead(from, log_.committed(), std::move(context));",
           "  if (true) {\n    RespondToRead(from, log_.committed(), std::move(context));",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("read-before-commit-in-term", "#6 new leader answers reads before committing in its term",
           "raft/raft_leader.cc",
           "  if (!CommittedEntryInCurrentTerm()) {\n    // Our commit index may lag",
           "  if (false) {\n    // Our commit index may lag",
           ("//raft:interaction_test",)),
    Mutant("lease-outlives-election-timeout", "#5/#13 a lease longer than followers wait before voting",
           "raft/raft.cc",
           "return (election_timeout_ticks - 1) * 100 / (100 + lease_clock_drift_max_percent);",
           "return 3 * election_timeout_ticks;",
           ("//raft:raft_property_test",)),
    Mutant("lease-ignores-drift", "#13 lease as long as the election timeout",
           "raft/raft.cc",
           "return (election_timeout_ticks - 1) * 100 / (100 + lease_clock_drift_max_percent);",
           "return election_timeout_ticks;",
           ("//raft:interaction_test",)),
    Mutant("lease-after-timeout-now", "#11/#13 keep serving lease reads after sending TimeoutNow",
           "raft/raft_leader.cc",
           "         !timeout_now_sent_ && lead_transferee_ == kNoNode && lease_start_tick_.has_value() &&",
           "         lead_transferee_ == kNoNode && lease_start_tick_.has_value() &&",
           ("//raft:interaction_test",)),
    Mutant("conf-change-while-pending", "#8/#15 allow a second pending conf change",
           "raft/raft_leader.cc",
           "  if (pending_conf_index_ > log_.applied()) {",
           "  if (false) {",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("learner-counts-in-quorum", "#8 count learners in the commit quorum",
           "raft/tracker/tracker.cc",
           "  return config.voters.CommittedIndex([this](NodeId id) -> std::optional<Index> {\n"
           "    auto it = progress.find(id);\n"
           "    if (it == progress.end()) return std::nullopt;\n"
           "    return it->second.match;",
           "  quorum::MajorityConfig all;\n"
           "  for (const auto& [id, pr] : progress) all.Insert(id);\n"
           "  return all.CommittedIndex([this](NodeId id) -> std::optional<Index> {\n"
           "    auto it = progress.find(id);\n"
           "    if (it == progress.end()) return std::nullopt;\n"
           "    return it->second.match;",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("old-snapshot-installed", "#9 install a snapshot not newer than the commit",
           "raft/raft_follower.cc",
           "  if (meta.index() <= log_.committed()) {",
           "  if (false) {",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("stuck-probe-ignores-hint", "#10 ignore the rejection hint (probe one index at a time)",
           "raft/raft_leader.cc",
           "    if (m.log_term() > 0) next_probe = log_.FindConflictByTerm(m.reject_hint(), m.log_term()).first;",
           "    next_probe = m.index() - 1;",
           ("//raft:interaction_test",)),
    Mutant("proposals-during-transfer", "#11 accept proposals during a leadership transfer",
           "raft/raft_leader.cc",
           "  if (lead_transferee_ != kNoNode) {\n    // Raft-traps #11",
           "  if (false) {\n    // Raft-traps #11",
           ("//raft:interaction_test",)),
    Mutant("stale-timeout-now", "#11 obey a TimeoutNow from a non-leader",
           "raft/raft_follower.cc",
           "  if (m.from() != lead_) {",
           "  if (false) {",
           ("//raft:interaction_test",)),
    Mutant("replay-wal-onto-snapshot", "#12 replay entries the snapshot covers",
           "raft/raft.cc",
           "  while (first_new != durable.entries.end() && first_new->index() <= meta.index()) {",
           "  while (false) {",
           ("//raft:node_test", "//raft:interaction_test")),
    Mutant("single-voter-commits-unstable", "#17 leader counts its own unpersisted entries",
           "raft/raft_leader.cc",
           "  tracker::Progress& self = tracker_.progress.at(id());\n  self.next = log_.last_index() + 1;",
           "  tracker::Progress& self = tracker_.progress.at(id());\n  self.next = log_.last_index() + 1;\n  self.match = log_.last_index();",
           ("//raft:node_test", "//raft:interaction_test")),
    Mutant("aba-stable-marking", "#19 mark entries durable without checking their term",
           "raft/log.cc",
           "  if (!MatchTerm(index, term)) return;\n  stable_ = index;",
           "  stable_ = std::min(index, last_index());",
           ("//raft:log_test",)),
    Mutant("compacted-follower-probes-forever", "#20 never switch a lagging follower to snapshot",
           "raft/raft_leader.cc",
           "    return SendSnapshot(to, pr);",
           "    return false;",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("send-before-persist", "#3 a vote is answered before the term/vote is durable",
           "raft/raft.cc",
           "      election_elapsed_ticks_ = 0;\n      vote_ = m.from();",
           "      election_elapsed_ticks_ = 0;",
           ("//raft:interaction_test", "//raft:raft_property_test")),
]


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
