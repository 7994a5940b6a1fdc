#include "raft/node.h"

#include "base/check.h"

namespace etc::raft {

namespace {

bool SameHardState(const raftpb::HardState& a, const raftpb::HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

}  // namespace

bool Ready::empty() const {
  return !soft_state.has_value() && !hard_state.has_value() && snapshot == nullptr &&
         entries.empty() && committed_entries.empty() && messages.empty() &&
         read_states.empty() && dropped_proposals.empty() && !repair_finished;
}

absl::StatusOr<Node> Node::Start(Config config, DurableState durable) {
  raftpb::HardState persisted = durable.hard_state;
  absl::StatusOr<Raft> raft = Raft::Create(std::move(config), std::move(durable));
  if (!raft.ok()) return raft.status();
  Node node(std::move(*raft));
  node.previous_hard_state_ = persisted;
  node.previous_repairing_ = node.raft_.repairing();
  node.AfterInput();
  return node;
}

Node::Node(Raft raft) : raft_(std::move(raft)) { previous_soft_state_ = CurrentSoftState(); }

SoftState Node::CurrentSoftState() const { return SoftState{raft_.leader(), raft_.role()}; }

void Node::AfterInput() {
#ifndef NDEBUG
  raft_.CheckInvariants();
#endif
}

void Node::Tick() {
  raft_.Tick();
  AfterInput();
}

absl::Status Node::Step(const raftpb::Message& message) {
  absl::Status status = raft_.Step(message);
  AfterInput();
  return status;
}

absl::Status Node::Campaign() {
  absl::Status status = raft_.Campaign();
  AfterInput();
  return status;
}

absl::Status Node::Propose(std::string data) {
  std::vector<std::string> batch;
  batch.push_back(std::move(data));
  return ProposeBatch(std::move(batch));
}

absl::Status Node::ProposeBatch(std::vector<std::string> data) {
  absl::Status status = raft_.Propose(std::move(data));
  AfterInput();
  return status;
}

absl::Status Node::ProposeConfChange(const raftpb::ConfChange& change) {
  absl::Status status = raft_.ProposeConfChange(change);
  AfterInput();
  return status;
}

absl::StatusOr<raftpb::ConfState> Node::ApplyConfChange(const raftpb::ConfChange& change) {
  absl::StatusOr<raftpb::ConfState> state = raft_.ApplyConfChange(change);
  AfterInput();
  return state;
}

absl::Status Node::ReadIndex(std::string context) {
  absl::Status status = raft_.ReadIndex(std::move(context));
  AfterInput();
  return status;
}

absl::Status Node::TransferLeadership(NodeId target) {
  absl::Status status = raft_.TransferLeadership(target);
  AfterInput();
  return status;
}

void Node::ReportUnreachable(NodeId id) {
  raft_.ReportUnreachable(id);
  AfterInput();
}

void Node::ReportSnapshot(NodeId id, bool applied) {
  raft_.ReportSnapshot(id, applied);
  AfterInput();
}

absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> Node::CreateSnapshot(Index index,
                                                                             std::string data) {
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> snapshot =
      raft_.CreateSnapshot(index, std::move(data));
  AfterInput();
  return snapshot;
}

absl::Status Node::Compact(Index index) {
  absl::Status status = raft_.Compact(index);
  AfterInput();
  return status;
}

bool Node::HasReady() const {
  if (ready_outstanding_) return false;
  const RaftLog& log = raft_.log();
  return CurrentSoftState() != previous_soft_state_ ||
         !SameHardState(raft_.hard_state(), previous_hard_state_) ||
         raft_.unstable_snapshot() != nullptr || log.HasUnstableEntries() ||
         raft_.repairing() != previous_repairing_ ||
         log.HasNextCommittedEntries() || raft_.HasOutput() || raft_.HasPendingBroadcasts();
}

Ready Node::GetReady() {
  ETC_CHECK(!ready_outstanding_) << "GetReady called twice without Advance";
  raft_.FlushBroadcasts();
  Ready ready;
  SoftState soft = CurrentSoftState();
  if (soft != previous_soft_state_) {
    ready.soft_state = soft;
    previous_soft_state_ = soft;
  }
  raftpb::HardState hard = raft_.hard_state();
  bool vote_changed = hard.term() != previous_hard_state_.term() ||
                      hard.vote() != previous_hard_state_.vote();
  if (!SameHardState(hard, previous_hard_state_)) {
    ready.hard_state = hard;
    previous_hard_state_ = hard;
  }
  ready.snapshot = raft_.unstable_snapshot();
  ready.entries = raft_.log().UnstableEntries();
  ready.committed_entries =
      raft_.log().NextCommittedEntries(raft_.config().max_committed_payload_bytes_per_ready);
  ready.messages = raft_.TakeMessages();
  ready.read_states = raft_.TakeReadStates();
  ready.dropped_proposals = raft_.TakeDroppedProposals();
  ready.repair_finished = previous_repairing_ && !raft_.repairing();
  previous_repairing_ = raft_.repairing();
  ready.must_sync = vote_changed || !ready.entries.empty() || ready.snapshot != nullptr ||
                    ready.repair_finished;
  ready.from_settled_leader =
      raft_.role() == Role::kLeader && !vote_changed && ready.snapshot == nullptr;
  ready_outstanding_ = true;
  AfterInput();
  return ready;
}

bool Ready::MayPrecedePersist(const raftpb::Message& message) const {
  if (!from_settled_leader) return false;
  switch (message.type()) {
    case raftpb::MSG_APP:
    case raftpb::MSG_HEARTBEAT:
    case raftpb::MSG_SNAP:
      return true;
    default:
      return false;
  }
}

void Node::Advance(const Ready& ready) {
  ETC_CHECK(ready_outstanding_) << "Advance without an outstanding Ready";
  ready_outstanding_ = false;
  if (ready.snapshot != nullptr) raft_.SnapshotPersisted(ready.snapshot->metadata().index());
  // The newest persisted entry still in the log marks everything before it
  // durable; entries replaced since GetReady are not (raft-traps #19).
  for (auto it = ready.entries.rbegin(); it != ready.entries.rend(); ++it) {
    if (raft_.log().MatchTerm(it->index(), it->term())) {
      raft_.EntriesPersisted(it->index(), it->term());
      break;
    }
  }
  if (!ready.committed_entries.empty()) raft_.EntriesApplied(ready.committed_entries.back().index());
  AfterInput();
}

NodeStatus Node::Status() const {
  NodeStatus status;
  status.id = raft_.id();
  status.term = raft_.term();
  status.vote = raft_.vote();
  status.leader = raft_.leader();
  status.role = raft_.role();
  status.commit = raft_.log().committed();
  status.applied = raft_.log().applied();
  status.stable = raft_.log().stable();
  status.first_index = raft_.log().first_index();
  status.last_index = raft_.log().last_index();
  status.repairing = raft_.repairing();
  status.repair_target = raft_.repair_target();
  status.majority_damaged = raft_.majority_damaged();
  status.lead_transferee = raft_.lead_transferee();
  status.lease_valid = raft_.LeaseValid();
  status.config = raft_.tracker().config.Describe();
  status.conf_state = raft_.tracker().config.ToConfState();
  if (raft_.role() == Role::kLeader) {
    for (const auto& [id, pr] : raft_.tracker().progress) status.progress[id] = pr.Describe();
  }
  return status;
}

}  // namespace etc::raft
