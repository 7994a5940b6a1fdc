#include "member/member.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/wire_fields.h"
#include "raft/conf_state.h"

namespace etc::member {

namespace {

// How far proposals of one member may be applied out of order (a forwarded
// proposal overtaken by later ones) before the older ones expire.
constexpr size_t kMaxOutOfOrder = 4096;

// MSG_REMOVED's context when a removed member asks whether its removal was
// applied (without it, the message is the answer: "you were removed").
constexpr char kRemovalProbe[] = "probe";
// MSG_REMOVED's context when the sender is a voter of the configuration
// without the removed member and its commit index covering the removal is
// durable: even if it crashes now, it restarts with the removal applied and
// never needs the removed member's vote again. Only this answer lets a
// removed member shut down (a learner, or a voter that could forget the
// commit, might leave the others needing it).
constexpr char kRemovalConfirmed[] = "confirmed";

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
  uint64_t snapshot_index = durable.snapshot.metadata().index();
  uint64_t durable_commit = std::max(durable.hard_state.commit(), snapshot_index);
  std::string snapshot_data = durable.snapshot.data();
  absl::StatusOr<raft::Node> node = raft::Node::Start(config.raft, std::move(durable));
  if (!node.ok()) return node.status();
  std::unique_ptr<Member> member(
      new Member(std::move(config), std::move(*node), transport, store, machine));
  // The state machine is rebuilt from the snapshot; Raft then hands out the
  // committed entries after it again.
  if (absl::Status status = member->RestoreSnapshot(snapshot_data); !status.ok()) {
    return absl::DataLossError(absl::StrCat("restoring the snapshot: ", status.message()));
  }
  member->applied_index_ = snapshot_index;
  member->snapshot_index_ = snapshot_index;
  member->written_commit_ = durable_commit;
  member->synced_commit_ = durable_commit;
  for (raft::NodeId removed : member->removed_) member->removed_at_[removed] = snapshot_index;
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
  ++ticks_;
  if (removed_from_cluster_) {
    ++ticks_since_removal_;
    if (!removal_confirmed_ && ticks_since_removal_ % config_.raft.election_timeout_ticks == 0) {
      ProbeRemoval();
    }
  }
  node_.Tick();
  ProposeRefusedAgain();
  CompactSome();
  // A ReadIndex request or its answer can be lost (a message dropped, a
  // leader that has not committed in its term yet refusing it): ask again
  // rather than let every later read wait behind it.
  if (read_batch_.has_value() &&
      ticks_ - read_batch_sent_tick_ >= config_.raft.election_timeout_ticks) {
    SendReadBatch(/*retry=*/true);
  }
  Pump();
}

void Member::ProbeRemoval() {
  // Ask the members of the configuration we last applied whether they
  // applied our removal; one that did answers with a notice.
  std::set<raft::NodeId> peers = raft::MembersOf(node_.Status().conf_state);
  peers.erase(config_.raft.id);
  for (raft::NodeId peer : peers) {
    raftpb::Message probe;
    probe.set_type(raftpb::MSG_REMOVED);
    probe.set_from(config_.raft.id);
    probe.set_to(peer);
    probe.set_context(kRemovalProbe);
    transport_->Send(std::move(probe));
  }
}

void Member::CompleteRestoredRequests() {
  // Proposals of ours that the snapshot records as applied (or expired)
  // will never be applied here entry by entry: their results are lost.
  auto it = applied_requests_.find(config_.raft.id);
  if (it == applied_requests_.end() || it->second.incarnation != config_.incarnation) return;
  const AppliedRequests& applied = it->second;
  for (auto pending = pending_.begin(); pending != pending_.end();) {
    uint64_t sequence = pending->first;
    if (sequence > applied.through && !applied.above.contains(sequence)) {
      ++pending;
      continue;
    }
    Callback done = std::move(pending->second.done);
    refused_.erase(sequence);
    pending = pending_.erase(pending);
    done(absl::UnknownError(
        "this member caught up from a snapshot that covers the request; its outcome is unknown"));
  }
}

namespace {

// A member snapshot's bytes: a memberpb.MemberSnapshot, written and read
// with its application state (field 1, nearly all of it) apart, in place:
// never copied into or out of a message, and free of protobuf's 2 GiB
// message limit (base/wire_fields.h). The bytes are what serializing the
// whole message gives.
std::string EncodeMemberSnapshot(const memberpb::MemberSnapshot& rest,
                                 std::string_view application) {
  std::string head = application.empty()
                         ? std::string()
                         : base::LengthDelimitedFieldHead(
                               memberpb::MemberSnapshot::kApplicationFieldNumber, application.size());
  std::string tail = rest.SerializeAsString();
  std::string out;
  out.reserve(head.size() + application.size() + tail.size());
  out.append(head).append(application).append(tail);
  return out;
}

// An empty snapshot (a new cluster's bootstrap) is an empty state.
absl::Status DecodeMemberSnapshot(std::string_view data, memberpb::MemberSnapshot* rest,
                                  std::string_view* application) {
  absl::StatusOr<base::WireSplit> split =
      base::SplitWireField(data, memberpb::MemberSnapshot::kApplicationFieldNumber);
  if (!split.ok() || !rest->ParseFromString(split->rest)) {
    return absl::DataLossError("member snapshot does not parse");
  }
  *application = split->field;
  return absl::OkStatus();
}

}  // namespace

absl::Status Member::RestoreSnapshot(const std::string& data) {
  memberpb::MemberSnapshot snapshot;
  std::string_view application;
  if (absl::Status s = DecodeMemberSnapshot(data, &snapshot, &application); !s.ok()) return s;
  removed_ = std::set<raft::NodeId>(snapshot.removed_members().begin(),
                                    snapshot.removed_members().end());
  // Removals the snapshot records were applied at or before its index.
  removed_at_.clear();
  for (raft::NodeId removed : removed_) removed_at_[removed] = 0;
  applied_requests_.clear();
  for (const memberpb::AppliedRequests& applied : snapshot.applied_requests()) {
    applied_requests_[applied.member_id()] =
        AppliedRequests{applied.incarnation(), applied.through(),
                        std::set<uint64_t>(applied.above().begin(), applied.above().end())};
  }
  attributes_.clear();
  for (const memberpb::MemberAttributes& attributes : snapshot.attributes()) {
    attributes_[attributes.member_id()] = attributes.data();
  }
  ++membership_version_;
  return machine_->Restore(application);
}

std::string Member::BootstrapData(const std::map<raft::NodeId, std::string>& attributes,
                                  std::string_view application) {
  memberpb::MemberSnapshot data;
  for (const auto& [member_id, bytes] : attributes) {
    memberpb::MemberAttributes* out = data.add_attributes();
    out->set_member_id(member_id);
    out->set_data(bytes);
  }
  return EncodeMemberSnapshot(data, application);
}

absl::Status Member::Receive(const raftpb::Message& message) {
  if (message.type() == raftpb::MSG_REMOVED) {
    if (message.context() == kRemovalProbe) {
      if (removed_.contains(message.from())) SendRemovedNotice(message.from());
    } else if (message.to() == config_.raft.id) {
      // A peer applied our removal: it is committed. If it also confirms,
      // the rest of the cluster can finish without us.
      removed_from_cluster_ = true;
      if (message.context() == kRemovalConfirmed) removal_confirmed_ = true;
    }
    return absl::OkStatus();
  }
  // A removed leader hands over with TimeoutNow as it leaves; the core only
  // obeys that from the current leader of the current term.
  if (removed_.contains(message.from()) && message.type() != raftpb::MSG_TIMEOUT_NOW) {
    // A removed member that does not know it yet (see MemberSnapshot): tell
    // it, and ignore what it says.
    SendRemovedNotice(message.from());
    return absl::OkStatus();
  }
  if (message.type() == raftpb::MSG_SNAP) {
    // Persisted before it is restored: bytes that would not restore must
    // never get that far (they would leave a member it cannot restart).
    if (absl::Status s = CheckSnapshotData(message.snapshot().data()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshot from member ", message.from(), " refused: ", s.message()));
    }
  }
  absl::Status status = node_.Step(message);
  Pump();
  return status;
}

absl::Status Member::CheckSnapshotData(const std::string& data) const {
  memberpb::MemberSnapshot snapshot;
  std::string_view application;
  if (absl::Status s = DecodeMemberSnapshot(data, &snapshot, &application); !s.ok()) return s;
  return machine_->CheckSnapshot(application);
}

bool Member::IsVoter() const {
  return raft::IsVoter(node_.Status().conf_state, config_.raft.id);
}

bool Member::CanConfirmRemoval(raft::NodeId removed) const {
  auto it = removed_at_.find(removed);
  if (it == removed_at_.end() || it->second > synced_commit_) return false;
  return IsVoter();
}

void Member::SendRemovedNotice(raft::NodeId to) {
  raftpb::Message notice;
  notice.set_type(raftpb::MSG_REMOVED);
  notice.set_from(config_.raft.id);
  notice.set_to(to);
  if (CanConfirmRemoval(to)) {
    notice.set_context(kRemovalConfirmed);
  } else if (IsVoter() && removed_at_.contains(to) && removed_at_.at(to) <= written_commit_) {
    // Only the fsync is missing: ask for one, and confirm once it is done.
    sync_wanted_ = true;
    confirm_after_sync_.insert(to);
    Pump();
  }
  transport_->Send(std::move(notice));
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
  Callback done = std::move(it->second.done);
  pending_.erase(it);
  refused_.erase(id.sequence());
  done(std::move(result));
}

void Member::OnRefused(const raftpb::Entry& entry, const std::string& reason) {
  if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
    raftpb::ConfChange change;
    memberpb::RequestId id;
    if (!change.ParseFromString(entry.data()) || !id.ParseFromString(change.context())) return;
    // Membership changes are not proposed again (a duplicate one is harmless
    // to apply but not exactly-once), so the outcome stays open.
    Complete(id, absl::UnknownError(absl::StrCat(
                     reason, "; a copy of the change may still take effect")));
    return;
  }
  memberpb::Proposal proposal;
  if (!proposal.ParseFromString(entry.data()) || !IsMine(proposal.id())) return;
  // A refusal covers this one copy: the network may have delivered another
  // that the leader took, so the request is not failed but proposed again
  // (applying only the first copy keeps that safe).
  auto it = pending_.find(proposal.id().sequence());
  if (it == pending_.end()) return;
  if (!it->second.refused_at_tick.has_value()) it->second.refused_at_tick = ticks_;
  refused_.insert(proposal.id().sequence());
}

void Member::ProposeRefusedAgain() {
  for (auto it = refused_.begin(); it != refused_.end();) {
    auto pending = pending_.find(*it);
    if (pending == pending_.end()) {
      it = refused_.erase(it);
      continue;
    }
    if (ticks_ - *pending->second.refused_at_tick >= config_.refused_retry_ticks) {
      Callback done = std::move(pending->second.done);
      pending_.erase(pending);
      it = refused_.erase(it);
      done(absl::DeadlineExceededError(
          "the leader refused the proposal and no leader took it since; it may still take "
          "effect"));
      continue;
    }
    if (node_.Propose(pending->second.proposal).ok()) {
      it = refused_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Member::Admit(const memberpb::RequestId& id) {
  if (id.member_id() == 0) return true;
  auto [it, inserted] = applied_requests_.try_emplace(
      id.member_id(), AppliedRequests{id.incarnation(), 0, {}});
  AppliedRequests& applied = it->second;
  // An older run's request, whose proposer is gone.
  if (id.incarnation() < applied.incarnation) return false;
  if (id.incarnation() > applied.incarnation) applied = AppliedRequests{id.incarnation(), 0, {}};
  if (id.sequence() <= applied.through || applied.above.contains(id.sequence())) return false;
  applied.above.insert(id.sequence());
  while (!applied.above.empty() && (*applied.above.begin() == applied.through + 1 ||
                                    applied.above.size() > kMaxOutOfOrder)) {
    // Past the bound, the gaps below expire: their proposals never apply.
    applied.through = *applied.above.begin();
    applied.above.erase(applied.above.begin());
  }
  return true;
}

void Member::Write(std::string command, Callback done) {
  memberpb::Proposal proposal;
  proposal.set_command(std::move(command));
  Propose(std::move(proposal), std::move(done));
}

void Member::UpdateAttributes(raft::NodeId member_id, std::string attributes, Callback done) {
  memberpb::Proposal proposal;
  proposal.mutable_attributes()->set_member_id(member_id);
  proposal.mutable_attributes()->set_data(std::move(attributes));
  Propose(std::move(proposal), std::move(done));
}

void Member::Propose(memberpb::Proposal proposal, Callback done) {
  if (removed_from_cluster_) {
    done(absl::UnavailableError("this member was removed from the cluster"));
    return;
  }
  *proposal.mutable_id() = NextRequestId();
  std::string bytes = proposal.SerializeAsString();
  absl::Status status = node_.Propose(bytes);
  if (!status.ok()) {
    // Dropped before reaching any log: it certainly did not happen, and its
    // sequence is free again (keeping proposal sequences dense).
    --next_sequence_;
    done(status);
    return;
  }
  pending_.emplace(proposal.id().sequence(), PendingProposal{std::move(done), std::move(bytes), {}});
  Pump();
}

void Member::ChangeMembership(raftpb::ConfChange change, Callback done) {
  ChangeMembership(std::move(change), std::string(), std::move(done));
}

void Member::ChangeMembership(raftpb::ConfChange change, std::string attributes, Callback done) {
  if (removed_from_cluster_) {
    done(absl::UnavailableError("this member was removed from the cluster"));
    return;
  }
  if (!attributes.empty() && change.changes_size() == 0) {
    done(absl::InvalidArgumentError("attributes need a change that adds a member"));
    return;
  }
  memberpb::ConfChangeContext context;
  memberpb::RequestId id = NextRequestId();
  *context.mutable_id() = id;
  if (!attributes.empty()) {
    context.mutable_attributes()->set_member_id(change.changes(0).node_id());
    context.mutable_attributes()->set_data(std::move(attributes));
  }
  change.set_context(context.SerializeAsString());
  absl::Status status = node_.ProposeConfChange(change);
  if (!status.ok()) {
    --next_sequence_;
    done(status);
    return;
  }
  pending_.emplace(id.sequence(), PendingProposal{std::move(done), std::string(), {}});
  Pump();
}

void Member::Read(std::string query, Callback done) {
  if (removed_from_cluster_) {
    done(absl::UnavailableError("this member was removed from the cluster"));
    return;
  }
  uint64_t sequence = next_read_sequence_++;
  reads_.emplace(sequence, PendingRead{std::move(query), std::move(done), std::nullopt});
  unbatched_reads_.push_back(sequence);
  SendReadBatch();
  Pump();
}

void Member::SendReadBatch(bool retry) {
  if (retry && read_batch_.has_value()) {
    // Linearizable still: an index asked for later serves earlier reads.
    unbatched_reads_.insert(unbatched_reads_.begin(), read_batch_reads_.begin(),
                            read_batch_reads_.end());
    read_batch_.reset();
    read_batch_reads_.clear();
  }
  if (read_batch_.has_value() || unbatched_reads_.empty()) return;
  uint64_t batch = next_read_batch_++;
  absl::Status status = node_.ReadIndex(EncodeSequence(batch));
  std::vector<uint64_t> sequences = std::move(unbatched_reads_);
  unbatched_reads_.clear();
  if (!status.ok()) {
    for (uint64_t sequence : sequences) {
      auto it = reads_.find(sequence);
      if (it == reads_.end()) continue;
      Callback failed = std::move(it->second.done);
      reads_.erase(it);
      failed(status);
    }
    return;
  }
  read_batch_ = batch;
  read_batch_reads_ = std::move(sequences);
  read_batch_sent_tick_ = ticks_;
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
  while (!in_flight_.has_value() && !sync_in_flight_ && node_.HasReady()) {
    in_flight_ = node_.GetReady();
    raft::Ready& ready = *in_flight_;
    bool needs_store = ready.snapshot != nullptr || !ready.entries.empty() ||
                       ready.hard_state.has_value() || ready.repair_finished;
    if (!needs_store) {
      FinishReady();
      continue;
    }
    // The durability rule: nothing in this Ready leaves before the store
    // says it is durable (FinishReady runs from OnPersisted), except what
    // the core says may go first: a settled leader's appends, so that its
    // write and its followers' overlap.
    std::vector<raftpb::Message> now;
    std::vector<raftpb::Message> later;
    for (raftpb::Message& message : ready.messages) {
      (ready.MayPrecedePersist(message) ? now : later).push_back(std::move(message));
    }
    if (!now.empty()) transport_->SendAll(std::move(now));
    ready.messages = std::move(later);
    PersistRequest request;
    request.snapshot = ready.snapshot;
    request.entries = ready.entries;
    request.hard_state = ready.hard_state;
    request.must_sync = ready.must_sync;
    request.repair_finished = ready.repair_finished;
    if (ready.hard_state.has_value()) {
      in_flight_commit_ = std::max(written_commit_, ready.hard_state->commit());
    } else {
      in_flight_commit_ = written_commit_;
    }
    if (ready.snapshot != nullptr) {
      in_flight_commit_ = std::max(in_flight_commit_, ready.snapshot->metadata().index());
    }
    store_->Persist(std::move(request), next_persist_token_);
    return;
  }
  if (!in_flight_.has_value() && !sync_in_flight_ && sync_wanted_ &&
      synced_commit_ < written_commit_) {
    // Nothing else to write: persist the hard state again, synced, so that
    // the commit index becomes durable (see kRemovalConfirmed).
    raft::NodeStatus status = node_.Status();
    PersistRequest request;
    request.hard_state.emplace();
    request.hard_state->set_term(status.term);
    request.hard_state->set_vote(status.vote);
    request.hard_state->set_commit(status.commit);
    request.must_sync = true;
    in_flight_commit_ = std::max(written_commit_, status.commit);
    sync_in_flight_ = true;
    store_->Persist(std::move(request), next_persist_token_);
  }
  sync_wanted_ = false;
}

void Member::OnPersisted(uint64_t token) {
  ETC_CHECK(in_flight_.has_value() || sync_in_flight_) << "OnPersisted without a persist in flight";
  ETC_CHECK_EQ(token, next_persist_token_) << "persist completions out of order";
  ++next_persist_token_;
  if (sync_in_flight_) {
    sync_in_flight_ = false;
    written_commit_ = in_flight_commit_;
    synced_commit_ = written_commit_;
    std::set<raft::NodeId> waiting = std::move(confirm_after_sync_);
    confirm_after_sync_.clear();
    for (raft::NodeId removed : waiting) SendRemovedNotice(removed);
    Pump();
    return;
  }
  // A synced write also makes every earlier one durable (LogStore's rule).
  written_commit_ = in_flight_commit_;
  if (in_flight_->must_sync) synced_commit_ = written_commit_;
  FinishReady();
  Pump();
}

void Member::FinishReady() {
  raft::Ready& ready = *in_flight_;
  if (!ready.messages.empty()) transport_->SendAll(std::exchange(ready.messages, {}));
  if (ready.snapshot != nullptr) {
    // A snapshot being taken of the state this replaces is of no use.
    snapshot_in_progress_.reset();
    absl::Status status = RestoreSnapshot(ready.snapshot->data());
    // The leader's snapshot came from a correct state machine.
    ETC_CHECK(status.ok()) << "member " << id() << " cannot restore a snapshot: " << status;
    CompleteRestoredRequests();
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
    std::optional<uint64_t> batch = DecodeSequence(read.context);
    if (!batch.has_value() || batch != read_batch_) continue;  // a batch given up on
    for (uint64_t sequence : read_batch_reads_) {
      auto it = reads_.find(sequence);
      if (it != reads_.end()) it->second.read_index = read.index;
    }
    read_batch_.reset();
    read_batch_reads_.clear();
  }
  for (const raft::DroppedProposal& dropped : ready.dropped_proposals) {
    OnRefused(dropped.entry, dropped.reason);
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
    read_batch_.reset();
    read_batch_reads_.clear();
    unbatched_reads_.clear();
  }
  raft::Ready finished = std::move(*in_flight_);
  in_flight_.reset();
  node_.Advance(finished);
  CompactSome();
  SendReadBatch();
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
  if (!Admit(proposal.id())) {
    // Skipped everywhere alike. If its proposer still waits, no copy was
    // applied before, and none will be after: it certainly did not happen.
    Complete(proposal.id(), absl::UnavailableError(
                                "the request expired: too many later requests of its member "
                                "were applied first"));
    return;
  }
  if (proposal.has_attributes()) {
    ApplyAttributes(proposal);
    return;
  }
  std::string result = machine_->Apply(entry.index(), proposal.command());
  Complete(proposal.id(), std::move(result));
}

void Member::ApplyAttributes(const memberpb::Proposal& proposal) {
  raft::NodeId member_id = proposal.attributes().member_id();
  if (!raft::IsMember(node_.Status().conf_state, member_id)) {
    Complete(proposal.id(), absl::NotFoundError(absl::StrCat(
                                "member ", member_id, " is not in the configuration")));
    return;
  }
  attributes_[member_id] = proposal.attributes().data();
  ++membership_version_;
  Complete(proposal.id(), std::string());
}

void Member::ApplyConfChange(const raftpb::Entry& entry) {
  raftpb::ConfChange change;
  if (!change.ParseFromString(entry.data())) return;
  raftpb::ConfState before = node_.Status().conf_state;
  absl::StatusOr<raftpb::ConfState> state = node_.ApplyConfChange(change);
  if (state.ok()) {
    // Whoever was in the configuration and no longer is, was removed.
    std::set<raft::NodeId> after = raft::MembersOf(*state);
    ++membership_version_;
    for (raft::NodeId id : raft::MembersOf(before)) {
      if (after.contains(id)) continue;
      attributes_.erase(id);
      if (id == config_.raft.id) {
        removed_from_cluster_ = true;
      } else {
        removed_.insert(id);
        removed_at_[id] = entry.index();
      }
    }
  }
  memberpb::ConfChangeContext context;
  if (!context.ParseFromString(change.context())) return;
  if (state.ok() && context.has_attributes()) {
    if (raft::IsMember(*state, context.attributes().member_id())) {
      attributes_[context.attributes().member_id()] = context.attributes().data();
    }
  }
  const memberpb::RequestId& id = context.id();
  // Recorded with the proposals (they share the sequence space), though a
  // duplicate change is applied again: Raft must see every committed one.
  Admit(id);
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
    machine_->QueryAsync(read.query, std::move(read.done));
  }
}

void Member::SnapshotNow() {
  if (applied_index_ > snapshot_index_) TakeSnapshot();
}

void Member::MaybeSnapshot() {
  if (config_.snapshot_every_entries == 0) return;
  if (applied_index_ < snapshot_index_ + config_.snapshot_every_entries) return;
  if (applied_index_ < snapshot_retry_index_) return;
  TakeSnapshot();
}

void Member::TakeSnapshot() {
  if (snapshot_in_progress_.has_value()) return;
  SnapshotInProgress progress;
  progress.index = applied_index_;
  memberpb::MemberSnapshot data;
  for (raft::NodeId removed : removed_) data.add_removed_members(removed);
  for (const auto& [member_id, bytes] : attributes_) {
    memberpb::MemberAttributes* out = data.add_attributes();
    out->set_member_id(member_id);
    out->set_data(bytes);
  }
  for (const auto& [member_id, applied] : applied_requests_) {
    memberpb::AppliedRequests* out = data.add_applied_requests();
    out->set_member_id(member_id);
    out->set_incarnation(applied.incarnation);
    out->set_through(applied.through);
    for (uint64_t sequence : applied.above) out->add_above(sequence);
  }
  snapshot_in_progress_ = std::move(progress);
  uint64_t generation = ++snapshot_generation_;
  // May call back at once (then the snapshot is done when this returns).
  // The member's part is wrapped around the application's where that is
  // taken (a child process in the server): a copy of the whole snapshot
  // made here would pause the member for as long as copying hundreds of
  // megabytes takes.
  machine_->SnapshotAsync(
      [data = std::move(data)](std::string application) {
        return EncodeMemberSnapshot(data, application);
      },
      [this, generation](absl::StatusOr<std::string> snapshot) {
        FinishSnapshot(generation, std::move(snapshot));
      });
}

void Member::FinishSnapshot(uint64_t generation, absl::StatusOr<std::string> snapshot_data) {
  if (generation != snapshot_generation_ || !snapshot_in_progress_.has_value()) return;
  SnapshotInProgress progress = std::move(*snapshot_in_progress_);
  snapshot_in_progress_.reset();
  if (!snapshot_data.ok()) {
    // Not fatal: the log keeps growing until a later try succeeds.
    snapshot_retry_index_ = applied_index_ + std::max<uint64_t>(1, config_.snapshot_every_entries / 10);
    return;
  }
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> snapshot =
      node_.CreateSnapshot(progress.index, std::move(*snapshot_data));
  // Refused when a configuration change was applied after its index, or a
  // leader's snapshot replaced it meanwhile: a later one will do.
  if (!snapshot.ok()) return;
  store_->SaveSnapshot(*snapshot);
  snapshot_index_ = progress.index;
  if (progress.index > config_.catch_up_entries) {
    compact_goal_ = std::max(compact_goal_, progress.index - config_.catch_up_entries);
    CompactSome();
  }
}

void Member::CompactSome() {
  // A step at a time: dropping a hundred thousand entries at once is a
  // pause of a tenth of a second.
  constexpr uint64_t kCompactStepEntries = 8192;
  uint64_t first = node_.raft().log().first_index();
  if (compact_goal_ < first) return;
  uint64_t compact_to = std::min(compact_goal_, first - 1 + kCompactStepEntries);
  if (node_.Compact(compact_to).ok()) {
    store_->CompactLog(compact_to);
  } else {
    compact_goal_ = 0;  // e.g. a leader's snapshot moved the log on
  }
}

}  // namespace etc::member
