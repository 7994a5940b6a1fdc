#include "member/member.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace etc::member {

namespace {

std::string EncodeSequence(uint64_t sequence) { return absl::StrCat(sequence); }

std::optional<uint64_t> DecodeSequence(const std::string& context) {
  uint64_t sequence = 0;
  if (!absl::SimpleAtoi(context, &sequence)) return std::nullopt;
  return sequence;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Member>> Member::Start(MemberConfig config,
                                                      raft::DurableState durable,
                                                      Transport* transport, LogStore* store,
                                                      StateMachine* machine) {
  ETC_CHECK(transport != nullptr && store != nullptr && machine != nullptr);
  // The state machine is rebuilt from the snapshot; Raft then hands out the
  // committed entries after it again.
  if (absl::Status status = machine->Restore(durable.snapshot.data()); !status.ok()) {
    return absl::DataLossError(absl::StrCat("restoring the snapshot: ", status.message()));
  }
  uint64_t snapshot_index = durable.snapshot.metadata().index();
  absl::StatusOr<raft::Node> node = raft::Node::Start(config.raft, std::move(durable));
  if (!node.ok()) return node.status();
  std::unique_ptr<Member> member(
      new Member(std::move(config), std::move(*node), transport, store, machine));
  member->applied_index_ = snapshot_index;
  member->snapshot_index_ = snapshot_index;
  member->Pump();
  return member;
}

Member::Member(MemberConfig config, raft::Node node, Transport* transport, LogStore* store,
               StateMachine* machine)
    : config_(std::move(config)),
      node_(std::move(node)),
      transport_(transport),
      store_(store),
      machine_(machine) {}

void Member::Tick() {
  node_.Tick();
  Pump();
}

absl::Status Member::Receive(const raftpb::Message& message) {
  absl::Status status = node_.Step(message);
  Pump();
  return status;
}

memberpb::RequestId Member::NextRequestId() {
  memberpb::RequestId id;
  id.set_member_id(config_.raft.id);
  id.set_incarnation(config_.incarnation);
  id.set_sequence(next_sequence_++);
  return id;
}

bool Member::IsMine(const memberpb::RequestId& id) const {
  return id.member_id() == config_.raft.id && id.incarnation() == config_.incarnation;
}

void Member::Complete(const memberpb::RequestId& id, absl::StatusOr<std::string> result) {
  if (!IsMine(id)) return;
  auto it = pending_.find(id.sequence());
  if (it == pending_.end()) return;
  Callback done = std::move(it->second);
  pending_.erase(it);
  done(std::move(result));
}

void Member::Write(std::string command, Callback done) {
  memberpb::Proposal proposal;
  *proposal.mutable_id() = NextRequestId();
  proposal.set_command(std::move(command));
  uint64_t sequence = proposal.id().sequence();
  pending_.emplace(sequence, std::move(done));
  absl::Status status = node_.Propose(proposal.SerializeAsString());
  if (!status.ok()) {
    // Dropped before reaching any log: it certainly did not happen.
    Complete(proposal.id(), status);
    return;
  }
  Pump();
}

void Member::ChangeMembership(raftpb::ConfChange change, Callback done) {
  memberpb::RequestId id = NextRequestId();
  change.set_context(id.SerializeAsString());
  pending_.emplace(id.sequence(), std::move(done));
  absl::Status status = node_.ProposeConfChange(change);
  if (!status.ok()) {
    Complete(id, status);
    return;
  }
  Pump();
}

void Member::Read(std::string query, Callback done) {
  uint64_t sequence = next_sequence_++;
  reads_.emplace(sequence, PendingRead{std::move(query), std::move(done), std::nullopt});
  absl::Status status = node_.ReadIndex(EncodeSequence(sequence));
  if (!status.ok()) {
    Callback failed = std::move(reads_.at(sequence).done);
    reads_.erase(sequence);
    failed(status);
    return;
  }
  Pump();
}

absl::Status Member::TransferLeadership(raft::NodeId target) {
  absl::Status status = node_.TransferLeadership(target);
  Pump();
  return status;
}

absl::Status Member::Campaign() {
  absl::Status status = node_.Campaign();
  Pump();
  return status;
}

void Member::Pump() {
  while (!in_flight_.has_value() && node_.HasReady()) {
    in_flight_ = node_.GetReady();
    raft::Ready& ready = *in_flight_;
    bool needs_store =
        ready.snapshot != nullptr || !ready.entries.empty() || ready.hard_state.has_value();
    if (!needs_store) {
      FinishReady();
      continue;
    }
    // The durability rule: nothing in this Ready leaves before the store
    // says it is durable (FinishReady runs from OnPersisted).
    PersistRequest request;
    request.snapshot = ready.snapshot;
    request.entries = ready.entries;
    request.hard_state = ready.hard_state;
    request.must_sync = ready.must_sync;
    store_->Persist(std::move(request), next_persist_token_);
    return;
  }
}

void Member::OnPersisted(uint64_t token) {
  ETC_CHECK(in_flight_.has_value()) << "OnPersisted without a persist in flight";
  ETC_CHECK_EQ(token, next_persist_token_) << "persist completions out of order";
  ++next_persist_token_;
  FinishReady();
  Pump();
}

void Member::FinishReady() {
  raft::Ready& ready = *in_flight_;
  for (raftpb::Message& message : ready.messages) transport_->Send(std::move(message));
  if (ready.snapshot != nullptr) {
    absl::Status status = machine_->Restore(ready.snapshot->data());
    // The leader's snapshot came from a correct state machine.
    ETC_CHECK(status.ok()) << "member " << id() << " cannot restore a snapshot: " << status;
    applied_index_ = ready.snapshot->metadata().index();
    snapshot_index_ = applied_index_;
  }
  for (const raftpb::Entry& entry : ready.committed_entries) {
    ETC_CHECK_EQ(entry.index(), applied_index_ + 1) << "member " << id() << " applies out of order";
    if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
      ApplyConfChange(entry);
    } else {
      Apply(entry);
    }
    applied_index_ = entry.index();
    if (apply_observer_) apply_observer_(entry);
  }
  for (const raft::ReadState& read : ready.read_states) {
    std::optional<uint64_t> sequence = DecodeSequence(read.context);
    if (!sequence.has_value()) continue;
    auto it = reads_.find(*sequence);
    if (it != reads_.end()) it->second.read_index = read.index;
  }
  for (const raft::DroppedProposal& dropped : ready.dropped_proposals) {
    memberpb::Proposal proposal;
    if (proposal.ParseFromString(dropped.entry.data())) {
      Complete(proposal.id(), absl::UnavailableError(dropped.reason));
    }
  }
  if (ready.soft_state.has_value() && ready.soft_state->leader != known_leader_) {
    known_leader_ = ready.soft_state->leader;
    // Reads not yet given an index were sent to a leader that is gone; they
    // have no effect, so failing them is safe and lets clients retry now.
    for (auto it = reads_.begin(); it != reads_.end();) {
      if (it->second.read_index.has_value()) {
        ++it;
        continue;
      }
      Callback done = std::move(it->second.done);
      it = reads_.erase(it);
      done(absl::UnavailableError("leader changed; retry the read"));
    }
  }
  raft::Ready finished = std::move(*in_flight_);
  in_flight_.reset();
  node_.Advance(finished);
  AnswerReads();
  MaybeSnapshot();
}

void Member::Apply(const raftpb::Entry& entry) {
  // The leader's empty entry of each term carries no command.
  if (entry.data().empty()) return;
  memberpb::Proposal proposal;
  if (!proposal.ParseFromString(entry.data())) {
    // Every member sees the same bytes, so every member skips it alike.
    return;
  }
  std::string result = machine_->Apply(entry.index(), proposal.command());
  Complete(proposal.id(), std::move(result));
}

void Member::ApplyConfChange(const raftpb::Entry& entry) {
  raftpb::ConfChange change;
  if (!change.ParseFromString(entry.data())) return;
  absl::StatusOr<raftpb::ConfState> state = node_.ApplyConfChange(change);
  memberpb::RequestId id;
  if (!id.ParseFromString(change.context())) return;
  if (!state.ok()) {
    Complete(id, state.status());
    return;
  }
  Complete(id, state->ShortDebugString());
}

void Member::AnswerReads() {
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (!it->second.read_index.has_value() || *it->second.read_index > applied_index_) {
      ++it;
      continue;
    }
    PendingRead read = std::move(it->second);
    it = reads_.erase(it);
    read.done(machine_->Query(read.query));
  }
}

void Member::SnapshotNow() {
  if (applied_index_ > snapshot_index_) TakeSnapshot();
}

void Member::MaybeSnapshot() {
  if (config_.snapshot_every_entries == 0) return;
  if (applied_index_ < snapshot_index_ + config_.snapshot_every_entries) return;
  TakeSnapshot();
}

void Member::TakeSnapshot() {
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> snapshot =
      node_.CreateSnapshot(applied_index_, machine_->Snapshot());
  if (!snapshot.ok()) return;  // e.g. a conf change just applied; retry later
  store_->SaveSnapshot(**snapshot);
  snapshot_index_ = applied_index_;
  if (applied_index_ > config_.catch_up_entries) {
    uint64_t compact_to = applied_index_ - config_.catch_up_entries;
    if (node_.Compact(compact_to).ok()) store_->CompactLog(compact_to);
  }
}

}  // namespace etc::member
