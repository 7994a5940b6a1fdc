#!/usr/bin/env python3
"""The catalog of planted bugs: classic Raft mistakes (see
../shared/docs/raft-traps.md), each an exact snippet of production code and
a buggy replacement. Two tools use it, so a bug is defined once:

  tools/mutants.py        applies each bug to the source tree in turn and
                          requires its unit/golden tests to fail;
  //sim/planted:*         builds simulator binaries with a patched copy of the
                          one source (production code is never built with a bug)
                          and requires the simulator to catch each one.

As a script:  planted_bugs.py apply BUG OUT SRC...  writes to OUT the one
SRC file BUG names, with BUG applied; fails unless the snippet matches
exactly once among them.
"""
import os
import sys
from dataclasses import dataclass


@dataclass
class Mutant:
    name: str
    trap: str
    path: str
    original: str
    mutated: str
    # Bazel tests of which at least one must fail (tools/mutants.py).
    tests: tuple
    # Whether the simulator must catch it within 2,000 seeds (//sim/planted).
    in_simulator: bool = False


MUTANTS = [
    Mutant("figure8-commit-old-term", "#1 commit an earlier-term entry by counting",
           "raft/raft_leader.cc",
           "if (!term.has_value() || *term != term_) return false;",
           "if (!term.has_value()) return false;",
           ("//raft:interaction_test", "//raft:raft_property_test"), in_simulator=True),
    Mutant("vote-without-up-to-date-check", "#2 grant a vote without the log check",
           "raft/raft_election.cc",
           "if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {",
           "if (can_vote) {",
           ("//raft:interaction_test", "//raft:raft_property_test"), in_simulator=True),
    Mutant("vote-twice-in-a-term", "#3 forget the vote (vote twice in one term)",
           "raft/raft_election.cc",
           "bool can_vote = vote_ == m.from() || (vote_ == kNoNode && lead_ == kNoNode) ||",
           "bool can_vote = true ||",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("truncate-on-stale-append", "#4 truncate even when entries are present",
           "raft/log.cc",
           "    if (!MatchTerm(entry.index(), entry.term())) return entry.index();",
           "    return entry.index();",
           ("//raft:log_test", "//raft:raft_property_test"), in_simulator=True),
    Mutant("read-without-quorum-round", "#5 leader answers ReadIndex without confirming leadership",
           "raft/raft_leader.cc",
           "  if (LeaseValid()) {\n    RespondToRead(from, log_.committed(), std::move(context));",
           "  if (true) {\n    RespondToRead(from, log_.committed(), std::move(context));",
           ("//raft:interaction_test", "//raft:raft_property_test"), in_simulator=True),
    Mutant("campaign-during-lease", "#5/#13 campaign on request while a leader's lease counts on this member",
           "raft/raft.cc",
           "  if (config_.read_only == ReadOnlyOption::kLeaseBased && role_ != Role::kLeader &&",
           "  if (false &&",
           ("//raft:node_test", "//raft:interaction_test")),
    Mutant("read-before-commit-in-term", "#6 new leader answers reads before committing in its term",
           "raft/raft_leader.cc",
           "  if (!CommittedEntryInCurrentTerm()) {\n    // Our commit index may lag",
           "  if (false) {\n    // Our commit index may lag",
           ("//raft:interaction_test",)),
    Mutant("lease-outlives-election-timeout", "#5/#13 a lease longer than followers wait before voting",
           "raft/raft.cc",
           "return (election_timeout_ticks - 1) * 100 / (100 + lease_clock_drift_max_percent);",
           "return 3 * election_timeout_ticks;",
           ("//raft:interaction_test", "//raft:raft_property_test"), in_simulator=True),
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
           # Harm needs two changes proposed together and then disjoint
           # majorities between members that applied different numbers of
           # them; the fault schedule does not reach that (2,000 seeds).
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
           ("//raft:interaction_test", "//raft:raft_property_test"), in_simulator=True),
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
           # Not a simulator bug any more: the real storage code (which the
           # simulator now runs) drops covered entries itself, so the
           # mistake cannot be reached end to end; the unit tests catch it.
           ("//raft:node_test", "//raft:interaction_test")),
    Mutant("single-voter-commits-unstable", "#17 leader counts its own unpersisted entries",
           "raft/raft_leader.cc",
           "  if (tracker::Progress* self = SelfProgress(); self != nullptr) self->next = log_.last_index() + 1;",
           "  if (tracker::Progress* self = SelfProgress(); self != nullptr) {\n"
           "    self->next = log_.last_index() + 1;\n"
           "    self->match = log_.last_index();\n"
           "  }",
           ("//raft:node_test", "//raft:interaction_test"), in_simulator=True),
    Mutant("aba-stable-marking", "#19 mark entries durable without checking their term",
           "raft/log.cc",
           "  if (!MatchTerm(index, term)) return;\n  stable_ = index;",
           "  stable_ = std::min(index, last_index());",
           # Node::Advance checks the term too, so only the unit test sees it.
           ("//raft:log_test",)),
    Mutant("ack-replaced-entries", "#19 send acknowledgements of entries a newer append replaced",
           "raft/raft_follower.cc",
           "  if (truncated_from != 0) WithdrawAppendAcks(truncated_from);",
           "  (void)truncated_from;",
           ("//raft:node_test",), in_simulator=True),
    Mutant("aba-advance-marks-replaced", "#19 mark a finished write's index durable at today's term",
           "raft/node.cc",
           "    if (raft_.log().MatchTerm(it->index(), it->term())) {\n"
           "      raft_.EntriesPersisted(it->index(), it->term());",
           "    if (true) {\n"
           "      raft_.EntriesPersisted(it->index(), raft_.log().TermAt(it->index()).value_or(it->term()));",
           ("//raft:node_test",), in_simulator=True),
    Mutant("compacted-follower-probes-forever", "#20 never switch a lagging follower to snapshot",
           "raft/raft_leader.cc",
           "    return SendSnapshot(to, pr);",
           "    return false;",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("send-before-persist", "#3 a vote is answered before the term/vote is durable",
           "raft/raft_election.cc",
           "      election_elapsed_ticks_ = 0;\n      vote_ = m.from();",
           "      election_elapsed_ticks_ = 0;",
           ("//raft:interaction_test", "//raft:raft_property_test")),
    Mutant("snapshot-keeps-old-commit", "#9 install a snapshot without moving commit/applied",
           "raft/log.cc",
           "  snapshot_term_ = term;\n  committed_ = index;",
           "  snapshot_term_ = term;",
           ("//raft:log_test", "//raft:interaction_test"), in_simulator=True),
    Mutant("learner-vote-counts", "#8 count a learner's vote in an election",
           "raft/tracker/tracker.cc",
           "  tally.result = config.voters.Vote(votes_);",
           "  quorum::MajorityConfig everyone;\n"
           "  for (const auto& [id, pr] : progress) everyone.Insert(id);\n"
           "  tally.result = everyone.Vote(votes_);",
           ("//raft:interaction_test", "//raft:raft_property_test"), in_simulator=True),
    Mutant("no-step-down-on-higher-term", "#3/#7 keep the old term after seeing a higher one",
           "raft/raft.cc",
           "      BecomeFollower(m.term(), from_leader ? m.from() : kNoNode);",
           "      (void)from_leader;",
           ("//raft:interaction_test",), in_simulator=True),
    Mutant("member-sends-before-persisting", "#3 send a Ready's messages before it is durable",
           "member/member.cc",
           "    store_->Persist(std::move(request), next_persist_token_);\n    return;",
           "    for (raftpb::Message& message : ready.messages) transport_->Send(std::move(message));\n"
           "    ready.messages.clear();\n"
           "    store_->Persist(std::move(request), next_persist_token_);\n    return;",
           ("//member:member_test",), in_simulator=True),
    Mutant("early-acknowledgements", "#3 let acknowledgements leave before the write (the early-send path)",
           "raft/node.cc",
           "  if (!from_settled_leader) return false;\n"
           "  switch (message.type()) {\n"
           "    case raftpb::MSG_APP:",
           "  switch (message.type()) {\n"
           "    case raftpb::MSG_APP_RESP:\n"
           "    case raftpb::MSG_VOTE_RESP:\n"
           "    case raftpb::MSG_APP:",
           ("//raft:node_test",), in_simulator=True),
    Mutant("early-send-before-new-term-durable", "#3 a leader sends before its new term is durable",
           "raft/node.cc",
           "      raft_.role() == Role::kLeader && !vote_changed && ready.snapshot == nullptr;",
           "      raft_.role() == Role::kLeader && ready.snapshot == nullptr;",
           ("//raft:node_test",)),
    Mutant("read-joins-outstanding-batch", "#18 answer a read with a ReadIndex asked for before it arrived",
           "member/member.cc",
           "  unbatched_reads_.push_back(sequence);",
           "  (read_batch_.has_value() ? read_batch_reads_ : unbatched_reads_).push_back(sequence);",
           ("//member:member_test",), in_simulator=True),
    Mutant("apply-duplicate-proposal", "#14 apply every copy of a proposal the network duplicated",
           "member/member.cc",
           "  if (!Admit(proposal.id())) {",
           "  if (false) {",
           ("//member:member_test",), in_simulator=True),
    Mutant("refusal-means-not-applied", "#14 fail a refused forwarded proposal as certainly not applied",
           "member/member.cc",
           "  if (!it->second.refused_at_tick.has_value()) it->second.refused_at_tick = ticks_;\n"
           "  refused_.insert(proposal.id().sequence());",
           "  Complete(proposal.id(), absl::UnavailableError(reason));",
           ("//member:member_test",), in_simulator=True),
    Mutant("stale-term-non-voter-silent", "#7 a member that cannot campaign ignores a stale leader's appends",
           "raft/raft.cc",
           "    if ((config_.check_quorum || config_.pre_vote || !Promotable()) &&",
           "    if ((config_.check_quorum || config_.pre_vote) &&",
           ("//raft:interaction_test",)),
    # Repair of a damaged member (issue 20; raft/raft_repair.cc): the
    # careless repairs of Alagappan et al. (FAST 2018).
    Mutant("repair-truncate-and-rejoin",
           "repair: a damaged member drops what it lost and rejoins at once as a voter",
           "raft/raft.cc",
           "  raft.repairing_ = durable.damaged;",
           "  raft.repairing_ = false;",
           ("//raft:interaction_test",), in_simulator=True),
    Mutant("repair-votes", "repair: a member repairing its log still grants votes",
           "raft/raft_election.cc",
           "  if (repairing_) can_vote = false;",
           "",
           ("//raft:interaction_test",), in_simulator=True),
    Mutant("repair-forgets-acknowledged-index",
           "repair: rejoin once the log matches the leader's anywhere, not through what it may have acknowledged",
           "raft/raft_repair.cc",
           "  if (repair_target_ == 0 || repair_confirmed_ < repair_target_) return;",
           "  if (repair_confirmed_ == 0) return;",
           ("//raft:interaction_test",), in_simulator=True),
    # The host policies (member/kv_member.cc, kv/lease.cc) the server and the
    # simulator both run.
    Mutant("lease-promote-skipped", "leases: a new leader keeps its old lease clocks",
           "member/kv_member.cc",
           "    store().lessor().Promote(now_ms, options_.election_ticks * options_.tick_ms);",
           "    (void)0;",
           ("//member:kv_member_test",), in_simulator=True),
    Mutant("lease-renewed-before-term-applied", "leases: a new leader renews before applying its term's first entry",
           "member/kv_member.cc",
           "  if (raft.log().TermAt(member_->applied_index()) != raft.term()) {",
           "  if (false) {",
           ("//member:kv_member_test",), in_simulator=True),
    Mutant("expired-lease-renewed", "leases: renew a lease whose revocation is under way",
           "kv/lease.cc",
           "  if (it->second.expires_at_ms <= now_ms) {",
           "  if (false) {",
           ("//kv:store_test",), in_simulator=True),
    Mutant("learner-promoted-out-of-sync", "#8 promote a learner whose log is far behind",
           "member/kv_member.cc",
           "      static_cast<double>(progress->second.match) < in_sync_index) {",
           "      false) {",
           ("//member:kv_member_test",), in_simulator=True),
    Mutant("peer-snapshot-unchecked", "#9 persist a peer's snapshot before checking it restores",
           "member/member.cc",
           "    if (absl::Status s = CheckSnapshotData(message.snapshot().data()); !s.ok()) {",
           "    if (absl::Status s = absl::OkStatus(); !s.ok()) {",
           ("//member:member_test",)),
    Mutant("watch-full-stream-watcher-dropped", "watches: a watcher whose stream was full is never fed again",
           "member/watch_streams.cc",
           "    if (DeliverOne(id)) deferred_.erase(id);",
           "    DeliverOne(id);\n    deferred_.erase(id);",
           ("//member:watch_streams_test",), in_simulator=True),
    Mutant("watch-created-out-of-order", "watches: a created response waits behind the stream's backlog",
           "member/watch_streams.cc",
           "  std::vector<etcdserverpb::WatchResponse> created = store_->watches().Take(*id, 1);\n"
           "  ETC_CHECK(created.size() == 1 && created[0].created());\n"
           "  created[0].set_watch_id(local);\n"
           "  stream.sink->Push(std::move(created), 0);\n",
           "",
           ("//member:watch_streams_test",), in_simulator=True),
    Mutant("watch-progress-overtakes-events", "watches: progress notified while events are undelivered (etcd #15220)",
           "kv/watch.cc",
           "  if (!watcher.synced || watcher.canceled || !watcher.queue.empty()) return std::nullopt;",
           "  if (watcher.canceled) return std::nullopt;",
           ("//kv:watch_test", "//member:watch_streams_test"), in_simulator=True),
    # Access control: the simulator's intruder (a read-only user) keeps
    # trying to write, with auth on in the seeds that draw it.
    Mutant("read-permission-grants-writes", "auth: a read-only permission lets its user write",
           "kv/auth.cc",
           "      bool allows = p.permtype() == authpb::Permission::READWRITE ||",
           "      bool allows = true ||",
           ("//kv:store_test",), in_simulator=True),
    Mutant("v2-cas-ignores-prev-index", "v2: a compare on prevIndex (compare-and-swap, -and-delete) passes whatever the key's index",
           "kv/store_tree.cc",
           "  bool index_differs = prev_index != 0 && prev_index != file.mod_revision();",
           "  bool index_differs = false;",
           ("//kv:store_tree_test", "//kv:store_model_test"), in_simulator=True),
    # Storage (raft-traps #12), in the real WAL and snapshot code the
    # simulator runs over its simulated disk.
    Mutant("storage-sync-skipped", "#12 acknowledge before fsync (the sync does nothing)",
           "storage/data_dir.cc",
           "absl::Status DataDir::Sync() { return wal_->Sync(); }",
           "absl::Status DataDir::Sync() { return absl::OkStatus(); }",
           ("//storage:data_dir_test",), in_simulator=True),
    Mutant("snapshot-rename-not-synced", "#12 not fsyncing the directory after the snapshot rename",
           "storage/snapshotter.cc",
           "  // released behind a snapshot that is gone (raft-traps #12).\n"
           "  if (absl::Status s = fs_->SyncDir(dir_); !s.ok()) return NotRetryable(s);",
           "  // released behind a snapshot that is gone (raft-traps #12).",
           ("//storage:data_dir_test",), in_simulator=True),
    Mutant("fsync-error-retried-as-success",
           "#12 retry a failed fsync (Linux reports a failed writeback once and drops the pages: "
           "the retry succeeds over lost data)",
           "member/data_dir_log_store.cc",
           "      absl::Status synced = dir_->Sync();\n",
           "      absl::Status synced = dir_->Sync();\n"
           "      if (!synced.ok()) synced = dir_->Sync();\n",
           ("//sim:testing_test", "//member:data_dir_log_store_test")),
    Mutant("checksum-ignored", "#12 ignore a checksum failure",
           "storage/record.cc",
           "  if (base::GetLittleEndian32(rest.data() + 9) != base::Crc32c(payload) ||",
           "  if (false &&",
           ("//storage:record_test", "//storage:wal_test"), in_simulator=True),
    Mutant("snapshot-checksum-ignored", "#12 start from a snapshot file whose checksum fails",
           "storage/snapshotter.cc",
           "  if (base::Crc32c(payload) != crc) return absl::DataLossError",
           "  if (false) return absl::DataLossError",
           ("//storage:data_dir_test", "//sim:components_test"), in_simulator=True),
    Mutant("any-damage-is-a-torn-tail", "#12 treat a mid-log checksum failure as a torn tail",
           "storage/wal.cc",
           "        bool torn = false;",
           "        bool torn = true;",
           ("//storage:wal_test",), in_simulator=True),
]


SIMULATOR_BUGS = [m for m in MUTANTS if m.in_simulator]


def find(name):
    for mutant in MUTANTS:
        if mutant.name == name:
            return mutant
    raise SystemExit(f"unknown planted bug {name!r}")


def apply(name, out, sources):
    mutant = find(name)
    hits = 0
    for source in sources:
        if source != mutant.path and not source.endswith("/" + mutant.path):
            continue
        with open(source) as f:
            text = f.read()
        hits += text.count(mutant.original)
        with open(out, "w") as f:
            f.write(text.replace(mutant.original, mutant.mutated))
    if hits != 1:
        raise SystemExit(f"planted bug {name}: snippet matched {hits} times in {mutant.path}; "
                         "update tools/planted_bugs.py with the code")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "apply":
        apply(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 2 and sys.argv[1] == "simulator-bugs":
        print("\n".join(m.name for m in SIMULATOR_BUGS))
    else:
        raise SystemExit(__doc__)
