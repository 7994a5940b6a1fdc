// Leader side: proposals, replication and flow control, commit, heartbeats,
// ReadIndex and lease reads, leadership transfer.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "raft/confchange/confchange.h"
#include "raft/describe.h"
#include "raft/raft.h"

namespace etc::raft {

absl::Status Raft::StepLeader(const raftpb::Message& m) {
  switch (m.type()) {
    case raftpb::MSG_PROP: {
      std::vector<raftpb::Entry> entries(m.entries().begin(), m.entries().end());
      absl::Status status = HandleProposal(m.from(), entries);
      // Tell the follower that forwarded it, so its client hears the outcome.
      if (!status.ok()) RefuseForwardedProposal(m, std::string(status.message()));
      return absl::OkStatus();
    }
    case raftpb::MSG_READ_INDEX: {
      absl::Status status = HandleReadIndex(m.from(), m.context());
      if (!status.ok()) Log(absl::StrCat(id(), " dropped read from ", m.from(), ": ", status.message()));
      return absl::OkStatus();
    }
    case raftpb::MSG_TRANSFER_LEADER: {
      absl::Status status = HandleTransferLeader(m.index());
      if (!status.ok()) Log(absl::StrCat(id(), " refused transfer: ", status.message()));
      return absl::OkStatus();
    }
    case raftpb::MSG_APP_RESP:
    case raftpb::MSG_HEARTBEAT_RESP: {
      auto it = tracker_.progress.find(m.from());
      if (it == tracker_.progress.end()) {
        Log(absl::StrCat(id(), " no progress available for ", m.from()));
        return absl::OkStatus();
      }
      if (m.type() == raftpb::MSG_APP_RESP) return HandleAppendResponse(m, it->second);
      HandleHeartbeatResponse(m, it->second);
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

absl::Status Raft::HandleProposal(NodeId from, std::vector<raftpb::Entry> entries) {
  if (entries.empty()) return absl::InvalidArgumentError("empty proposal");
  if (role_ != Role::kLeader) {
    if (role_ != Role::kFollower) {
      return absl::UnavailableError("proposal dropped: no leader (election in progress)");
    }
    if (from != id()) return absl::UnavailableError("proposal dropped: not the leader");
    if (lead_ == kNoNode) return absl::UnavailableError("proposal dropped: no leader");
    if (config_.disable_proposal_forwarding) {
      return absl::UnavailableError("proposal dropped: not the leader and forwarding is disabled");
    }
    raftpb::Message m;
    m.set_type(raftpb::MSG_PROP);
    m.set_to(lead_);
    for (raftpb::Entry& entry : entries) *m.add_entries() = std::move(entry);
    Send(std::move(m));
    return absl::OkStatus();
  }
  if (!tracker_.progress.contains(id())) {
    return absl::FailedPreconditionError("proposal dropped: this leader was removed from the cluster");
  }
  if (lead_transferee_ != kNoNode) {
    // Raft-traps #11: new entries would keep the transfer target behind.
    return absl::UnavailableError(absl::StrCat(
        "proposal dropped: leadership transfer to ", lead_transferee_, " in progress"));
  }
  int conf_changes = 0;
  uint64_t payload_bytes = 0;
  for (const raftpb::Entry& entry : entries) {
    payload_bytes += EntryPayloadBytes(entry);
    if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
      if (++conf_changes > 1) {
        return absl::FailedPreconditionError("only one configuration change may be pending");
      }
      if (absl::Status status = CheckConfChangeProposal(entry); !status.ok()) return status;
    } else if (entry.type() != raftpb::ENTRY_NORMAL) {
      return absl::InvalidArgumentError("proposal of unknown entry type");
    }
  }
  if (config_.max_uncommitted_payload_bytes != 0 && uncommitted_payload_bytes_ > 0 &&
      uncommitted_payload_bytes_ + payload_bytes > config_.max_uncommitted_payload_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "proposal dropped: ", uncommitted_payload_bytes_, " uncommitted bytes already pending"));
  }
  Index first_new = log_.last_index() + 1;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].type() == raftpb::ENTRY_CONF_CHANGE) pending_conf_index_ = first_new + i;
  }
  uncommitted_payload_bytes_ += payload_bytes;
  AppendLeaderEntries(std::move(entries));
  return absl::OkStatus();
}

absl::Status Raft::CheckConfChangeProposal(const raftpb::Entry& entry) const {
  raftpb::ConfChange change;
  if (!change.ParseFromString(entry.data())) {
    return absl::InvalidArgumentError("configuration change does not parse");
  }
  if (pending_conf_index_ > log_.applied()) {
    // One change at a time, and not before this leader's first entry is
    // applied (raft-traps #8, #15).
    return absl::FailedPreconditionError(absl::StrCat(
        "a configuration change is already pending (at index ", pending_conf_index_,
        ", applied ", log_.applied(), ")"));
  }
  // Nothing changes the configuration before this entry is applied, so a
  // dry run now predicts exactly what applying it will do.
  absl::StatusOr<confchange::Changed> dry_run =
      confchange::Changer(tracker_, log_.last_index()).Apply(change);
  if (!dry_run.ok()) return dry_run.status();
  return absl::OkStatus();
}

void Raft::AppendLeaderEntries(std::vector<raftpb::Entry> entries) {
  Index index = log_.last_index();
  for (raftpb::Entry& entry : entries) {
    entry.set_term(term_);
    entry.set_index(++index);
  }
  log_.Append(std::move(entries));
  if (tracker::Progress* self = SelfProgress(); self != nullptr) self->next = log_.last_index() + 1;
  // Followers get the new entries when the application next asks for a
  // Ready, so proposals made in between share one append per follower.
  appends_pending_ = true;
}

void Raft::FlushBroadcasts() {
  bool appends = std::exchange(appends_pending_, false);
  bool commit = std::exchange(commit_pending_, false);
  if (role_ != Role::kLeader) {
    read_round_pending_ = false;
    return;
  }
  for (auto& [node, pr] : tracker_.progress) {
    if (node == id()) continue;
    bool sent = false;
    if (appends) {
      // As many appends as the follower's window takes.
      while (MaybeSendAppend(node, /*send_if_empty=*/false)) sent = true;
    }
    if (commit && !sent && pr.CanBumpCommit(log_.committed())) {
      MaybeSendAppend(node, /*send_if_empty=*/true);
    }
  }
  if (read_round_pending_) BroadcastHeartbeat();
}

bool Raft::MaybeSendAppend(NodeId to, bool send_if_empty) {
  tracker::Progress& pr = tracker_.progress.at(to);
  if (pr.IsPaused()) return false;
  Index prev = pr.next - 1;
  std::optional<Term> prev_term = log_.TermAt(prev);
  if (!prev_term.has_value() || pr.next < log_.first_index()) {
    // What the follower needs is compacted (raft-traps #20).
    return SendSnapshot(to, pr);
  }
  std::vector<raftpb::Entry> entries;
  if (pr.CanSendEntries() && pr.next <= log_.last_index()) {
    entries = log_.Slice(pr.next, log_.last_index() + 1, config_.max_append_payload_bytes);
  }
  if (entries.empty() && !send_if_empty) return false;
  uint64_t bytes = 0;
  for (const raftpb::Entry& entry : entries) bytes += EntryPayloadBytes(entry);
  raftpb::Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_to(to);
  m.set_index(prev);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  pr.SentEntries(entries.size(), bytes);
  pr.sent_commit = std::max(pr.sent_commit, log_.committed());
  for (raftpb::Entry& entry : entries) *m.add_entries() = std::move(entry);
  Send(std::move(m));
  return true;
}

bool Raft::SendSnapshot(NodeId to, tracker::Progress& pr) {
  if (!pr.recent_active) {
    Log(absl::StrCat(id(), " not sending snapshot to ", to, ": not recently active"));
    return false;
  }
  ETC_CHECK(snapshot_ != nullptr) << "entries are compacted but there is no snapshot";
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP);
  m.set_to(to);
  *m.mutable_snapshot() = *snapshot_;
  Index snapshot_index = snapshot_->metadata().index();
  Log(absl::StrCat(id(), " [firstindex: ", log_.first_index(), ", commit: ", log_.committed(),
                   "] sent snapshot[index: ", snapshot_index, ", term: ",
                   snapshot_->metadata().term(), "] to ", to, " [", pr.Describe(), "]"));
  pr.BecomeSnapshot(snapshot_index);
  Send(std::move(m));
  return true;
}

void Raft::BroadcastAppend() {
  for (auto& [node, pr] : tracker_.progress) {
    if (node != id()) MaybeSendAppend(node, /*send_if_empty=*/true);
  }
}

void Raft::BroadcastHeartbeat() {
  read_round_pending_ = false;
  uint64_t round = ++heartbeat_round_;
  if (config_.read_only == ReadOnlyOption::kLeaseBased) {
    round_sent_ticks_.emplace_back(round, now_ticks_);
  }
  if (tracker::Progress* self = SelfProgress(); self != nullptr) self->acked_heartbeat_round = round;
  for (auto& [node, pr] : tracker_.progress) {
    if (node == id()) continue;
    raftpb::Message m;
    m.set_type(raftpb::MSG_HEARTBEAT);
    m.set_to(node);
    // Never more than the follower is known to hold: its log may not have
    // the entries up to our commit yet.
    m.set_commit(std::min(pr.match, log_.committed()));
    m.set_heartbeat_round(round);
    Send(std::move(m));
  }
  ReleaseReads();
}

void Raft::SendTimeoutNow(NodeId to) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  m.set_to(to);
  timeout_now_sent_ = true;
  Send(std::move(m));
}

bool Raft::CommittedEntryInCurrentTerm() const {
  std::optional<Term> term = log_.TermAt(log_.committed());
  return term.has_value() && *term == term_;
}

bool Raft::MaybeCommit() {
  Index index = tracker_.Committed();
  if (index == std::numeric_limits<Index>::max() || index <= log_.committed()) return false;
  // Only entries of the current term commit by counting replicas; earlier
  // ones commit with them (Raft paper Figure 8, raft-traps #1).
  std::optional<Term> term = log_.TermAt(index);
  if (!term.has_value() || *term != term_) return false;
  bool first_commit_in_term = !CommittedEntryInCurrentTerm();
  for (Index i = std::max(log_.committed() + 1, log_.first_index()); i <= index; ++i) {
    uint64_t bytes = EntryPayloadBytes(log_.At(i));
    uncommitted_payload_bytes_ -= std::min(bytes, uncommitted_payload_bytes_);
  }
  log_.CommitTo(index);
  commit_pending_ = true;
  if (first_commit_in_term) {
    // Reads that waited for this leader to learn the real commit index.
    std::deque<PendingRead> waiting = std::move(reads_awaiting_commit_);
    reads_awaiting_commit_.clear();
    for (PendingRead& read : waiting) {
      absl::Status status = HandleReadIndex(read.requester, std::move(read.context));
      if (!status.ok()) Log(absl::StrCat(id(), " dropped read: ", status.message()));
    }
  }
  return true;
}

absl::Status Raft::HandleAppendResponse(const raftpb::Message& m, tracker::Progress& pr) {
  if (m.index() > log_.last_index()) {
    // A follower cannot hold or reject entries we never had.
    return absl::InvalidArgumentError(absl::StrCat("append response for index ", m.index(),
                                                   " beyond our last index ", log_.last_index()));
  }
  pr.recent_active = true;
  if (m.reject()) {
    Log(absl::StrCat(id(), " received MsgAppResp(rejected, hint: (index ", m.reject_hint(),
                     ", term ", m.log_term(), ")) from ", m.from(), " for index ", m.index()));
    // Skip back over whole terms the follower cannot match (thesis 5.3
    // optimization): our entry at the hint's term bounds the match.
    Index next_probe = m.reject_hint();
    if (m.log_term() > 0) next_probe = log_.FindConflictByTerm(m.reject_hint(), m.log_term()).first;
    if (pr.MaybeDecrTo(m.index(), next_probe)) {
      if (pr.state == tracker::ProgressState::kReplicate) pr.BecomeProbe();
      Log(absl::StrCat(id(), " decreased progress of ", m.from(), " to [", pr.Describe(), "]"));
      MaybeSendAppend(m.from(), /*send_if_empty=*/true);
    }
    return absl::OkStatus();
  }
  bool probe_confirmed = pr.match == m.index() && pr.state == tracker::ProgressState::kProbe;
  if (!pr.MaybeUpdate(m.index()) && !probe_confirmed) return absl::OkStatus();
  switch (pr.state) {
    case tracker::ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case tracker::ProgressState::kSnapshot:
      // Whatever the snapshot did, the follower can now catch up by appends.
      if (pr.match + 1 >= log_.first_index()) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
        Log(absl::StrCat(id(), " recovered from needing snapshot, resumed sending replication "
                               "messages to ", m.from(), " [", pr.Describe(), "]"));
      }
      break;
    case tracker::ProgressState::kReplicate:
      pr.inflights.FreeLE(m.index());
      break;
  }
  MaybeCommit();
  // The window may have room for more appends now; they go out at the next
  // flush, with the commit index as of then.
  appends_pending_ = true;
  MaybeFinishLeaving();
  if (role_ != Role::kLeader) return absl::OkStatus();
  if (m.from() == lead_transferee_ && pr.match == log_.last_index()) {
    Log(absl::StrCat(id(), " sent MsgTimeoutNow to ", m.from(),
                     " after receiving MsgAppResp: its log is up to date"));
    SendTimeoutNow(m.from());
  }
  return absl::OkStatus();
}

void Raft::HandleHeartbeatResponse(const raftpb::Message& m, tracker::Progress& pr) {
  pr.recent_active = true;
  if (m.heartbeat_round() <= heartbeat_round_ && m.heartbeat_round() > pr.acked_heartbeat_round) {
    pr.acked_heartbeat_round = m.heartbeat_round();
  }
  // The follower is alive. If it is behind, appends to it may have been
  // lost (all of them, even if the window is not full), or held back by a
  // pause: send one now, empty if need be. Its answer, an acknowledgement
  // or a rejection, gets replication moving again.
  MaybeFinishLeaving();
  if (role_ != Role::kLeader) return;
  // Only the answer to the newest round counts: a backlog of older answers
  // says nothing new and would send one append each.
  if (m.heartbeat_round() == heartbeat_round_) {
    pr.paused = false;
    if (pr.match < log_.last_index() || pr.state == tracker::ProgressState::kProbe) {
      MaybeSendAppend(m.from(), /*send_if_empty=*/true);
    }
  }
  ReleaseReads();
}

void Raft::ReleaseReads() {
  uint64_t confirmed = tracker_.QuorumAckedHeartbeatRound();
  while (!round_sent_ticks_.empty() && round_sent_ticks_.front().first <= confirmed) {
    lease_start_tick_ = round_sent_ticks_.front().second;
    round_sent_ticks_.pop_front();
  }
  while (!pending_reads_.empty() && pending_reads_.front().round <= confirmed) {
    PendingRead read = std::move(pending_reads_.front());
    pending_reads_.pop_front();
    RespondToRead(read.requester, read.index, std::move(read.context));
  }
}

void Raft::RespondToRead(NodeId to, Index index, std::string context) {
  if (to == id()) {
    read_states_.push_back(ReadState{index, std::move(context)});
    return;
  }
  raftpb::Message m;
  m.set_type(raftpb::MSG_READ_INDEX_RESP);
  m.set_to(to);
  m.set_index(index);
  m.set_context(std::move(context));
  Send(std::move(m));
}

bool Raft::LeaseValid() const {
  return role_ == Role::kLeader && config_.read_only == ReadOnlyOption::kLeaseBased &&
         !timeout_now_sent_ && lead_transferee_ == kNoNode && lease_start_tick_.has_value() &&
         now_ticks_ - *lease_start_tick_ < config_.LeaseTicks() && CommittedEntryInCurrentTerm();
}

absl::Status Raft::HandleReadIndex(NodeId from, std::string context) {
  if (role_ != Role::kLeader) {
    if (role_ != Role::kFollower) return absl::UnavailableError("read dropped: no leader");
    if (from != id()) return absl::UnavailableError("read dropped: not the leader");
    if (lead_ == kNoNode) return absl::UnavailableError("read dropped: no leader");
    raftpb::Message m;
    m.set_type(raftpb::MSG_READ_INDEX);
    m.set_to(lead_);
    m.set_context(std::move(context));
    Send(std::move(m));
    return absl::OkStatus();
  }
  if (leaving()) return absl::UnavailableError("read dropped: this leader was removed");
  if (!CommittedEntryInCurrentTerm()) {
    // Our commit index may lag the previous leader's until an entry of our
    // own term commits (raft-traps #6).
    reads_awaiting_commit_.push_back(PendingRead{0, 0, from, std::move(context)});
    return absl::OkStatus();
  }
  if (tracker_.IsSingleton() && tracker_.IsVoter(id())) {
    RespondToRead(from, log_.committed(), std::move(context));
    return absl::OkStatus();
  }
  if (LeaseValid()) {
    RespondToRead(from, log_.committed(), std::move(context));
    return absl::OkStatus();
  }
  // Confirmed by the next heartbeat round, which every read arriving before
  // the next Ready shares.
  pending_reads_.push_back(
      PendingRead{heartbeat_round_ + 1, log_.committed(), from, std::move(context)});
  read_round_pending_ = true;
  return absl::OkStatus();
}

absl::Status Raft::HandleTransferLeader(NodeId target) {
  auto it = tracker_.progress.find(target);
  if (it == tracker_.progress.end() || !tracker_.IsVoter(target)) {
    return absl::InvalidArgumentError(absl::StrCat("transfer target ", target, " is not a voter"));
  }
  if (lead_transferee_ != kNoNode) {
    if (lead_transferee_ == target) {
      Log(absl::StrCat(id(), " [term ", term_, "] transfer leadership to ", target,
                       " is in progress, ignores request to same node"));
      return absl::OkStatus();
    }
    AbortLeaderTransfer();
  }
  if (target == id()) {
    Log(absl::StrCat(id(), " is already leader; transfer to itself ignored"));
    return absl::OkStatus();
  }
  Log(absl::StrCat(id(), " [term ", term_, "] starts to transfer leadership to ", target));
  lead_transferee_ = target;
  // The transfer must finish within an election timeout or is abandoned.
  election_elapsed_ticks_ = 0;
  if (it->second.match == log_.last_index()) {
    Log(absl::StrCat(id(), " sends MsgTimeoutNow to ", target,
                     " immediately as it already has up-to-date log"));
    SendTimeoutNow(target);
  } else {
    MaybeSendAppend(target, /*send_if_empty=*/true);
  }
  return absl::OkStatus();
}

void Raft::AbortLeaderTransfer() {
  if (lead_transferee_ != kNoNode) {
    Log(absl::StrCat(id(), " abandons transfer of leadership to ", lead_transferee_));
  }
  lead_transferee_ = kNoNode;
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_ticks_;
  ++election_elapsed_ticks_;
  if (election_elapsed_ticks_ >= config_.election_timeout_ticks) {
    election_elapsed_ticks_ = 0;
    if (config_.check_quorum) {
      if (tracker::Progress* self = SelfProgress(); self != nullptr) self->recent_active = true;
      // A removed leader that is leaving stays until the new configuration
      // learned its removal committed: it serves nothing meanwhile, and if it
      // stepped down, members that missed the commit could need its vote
      // and its log, which no longer lets it campaign (found by sim/).
      if (!tracker_.QuorumActive() && !leaving()) {
        Log(absl::StrCat(id(), " stepped down to follower since quorum is not active"));
        BecomeFollower(term_, kNoNode);
        return;
      }
      for (auto& [node, pr] : tracker_.progress) {
        if (node != id()) pr.recent_active = false;
      }
    }
    if (lead_transferee_ != kNoNode) AbortLeaderTransfer();
  }
  for (auto& [node, pr] : tracker_.progress) {
    if (pr.state != tracker::ProgressState::kSnapshot) continue;
    // A snapshot lost without a report would stall this follower forever.
    if (++pr.snapshot_wait_ticks >= 2 * config_.election_timeout_ticks) {
      Log(absl::StrCat(id(), " gave up waiting for snapshot at ", pr.pending_snapshot, " on ",
                       node, "; probing again"));
      pr.BecomeProbe();
    }
  }
  while (!round_sent_ticks_.empty() &&
         now_ticks_ - round_sent_ticks_.front().second >= config_.LeaseTicks()) {
    // Too old to ever start a lease; only the memory matters.
    round_sent_ticks_.pop_front();
  }
  if (heartbeat_elapsed_ticks_ >= config_.heartbeat_interval_ticks) {
    heartbeat_elapsed_ticks_ = 0;
    BroadcastHeartbeat();
  }
}

std::vector<raftpb::Message> Raft::TakeMessages() { return std::exchange(messages_, {}); }
std::vector<ReadState> Raft::TakeReadStates() { return std::exchange(read_states_, {}); }
std::vector<DroppedProposal> Raft::TakeDroppedProposals() {
  return std::exchange(dropped_proposals_, {});
}

}  // namespace etc::raft
