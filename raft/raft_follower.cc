// Follower side: appends, heartbeats, snapshots, forwarded requests and
// TimeoutNow.
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "raft/confchange/confchange.h"
#include "raft/describe.h"
#include "raft/raft.h"

namespace etc::raft {

absl::Status Raft::StepFollower(const raftpb::Message& m) {
  switch (m.type()) {
    case raftpb::MSG_PROP:
      // A proposal forwarded to us by a node that thinks we lead.
      RefuseForwardedProposal(m, "proposal dropped: not the leader");
      return absl::OkStatus();
    case raftpb::MSG_APP:
      election_elapsed_ticks_ = 0;
      lead_ = m.from();
      repair_leader_heard_ = true;
      return HandleAppendEntries(m);
    case raftpb::MSG_HEARTBEAT:
      election_elapsed_ticks_ = 0;
      lead_ = m.from();
      repair_leader_heard_ = true;
      return HandleHeartbeat(m);
    case raftpb::MSG_SNAP:
      election_elapsed_ticks_ = 0;
      lead_ = m.from();
      repair_leader_heard_ = true;
      return HandleSnapshot(m);
    case raftpb::MSG_TRANSFER_LEADER:
      if (lead_ == kNoNode) {
        Log(absl::StrCat(id(), " no leader at term ", term_, "; dropping leader transfer msg"));
        return absl::OkStatus();
      }
      {
        raftpb::Message forward;
        forward.set_type(raftpb::MSG_TRANSFER_LEADER);
        forward.set_to(lead_);
        forward.set_index(m.index());
        Send(std::move(forward));
      }
      return absl::OkStatus();
    case raftpb::MSG_TIMEOUT_NOW:
      HandleTimeoutNow(m);
      return absl::OkStatus();
    case raftpb::MSG_READ_INDEX_RESP:
      read_states_.push_back(ReadState{m.index(), m.context()});
      return absl::OkStatus();
    case raftpb::MSG_PROP_RESP:
      for (const raftpb::Entry& entry : m.entries()) {
        dropped_proposals_.push_back(DroppedProposal{entry, m.context()});
      }
      return absl::OkStatus();
    case raftpb::MSG_READ_INDEX:
      Log(absl::StrCat(id(), " is not the leader; dropping read from ", m.from()));
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

void Raft::RefuseForwardedProposal(const raftpb::Message& m, const std::string& reason) {
  raftpb::Message resp;
  resp.set_type(raftpb::MSG_PROP_RESP);
  resp.set_to(m.from());
  resp.set_reject(true);
  resp.set_context(reason);
  *resp.mutable_entries() = m.entries();
  Send(std::move(resp));
}

absl::Status Raft::HandleAppendEntries(const raftpb::Message& m) {
  raftpb::Message resp;
  resp.set_type(raftpb::MSG_APP_RESP);
  resp.set_to(m.from());
  if (m.index() < log_.committed()) {
    // Everything up to our commit is known to match; say how far that is.
    resp.set_index(log_.committed());
    Send(std::move(resp));
    if (repairing_) MaybeFinishRepair(log_.committed());
    return absl::OkStatus();
  }
  // From here on the entries start after our commit index, so they can never
  // rewrite committed history.
  Index truncated_from = 0;
  std::optional<Index> last_new = log_.MaybeAppend(
      m.index(), m.log_term(), m.commit(), m.entries(), &truncated_from);
  if (truncated_from != 0) WithdrawAppendAcks(truncated_from);
  if (last_new.has_value()) {
    resp.set_index(*last_new);
    Send(std::move(resp));
    if (repairing_) MaybeFinishRepair(*last_new);
    return absl::OkStatus();
  }
  // Reject, with a hint: our last entry at or below the probed index whose
  // term is not above the leader's term there. The leader can then skip
  // every index in between at once.
  auto [hint_index, hint_term] =
      log_.FindConflictByTerm(std::min(m.index(), log_.last_index()), m.log_term());
  Log(absl::StrCat(id(), " [logterm: ", log_.TermAt(m.index()).value_or(0), ", index: ", m.index(),
                   "] rejected MsgApp [logterm: ", m.log_term(), ", index: ", m.index(),
                   "] from ", m.from()));
  resp.set_index(m.index());
  resp.set_reject(true);
  resp.set_reject_hint(hint_index);
  resp.set_log_term(hint_term);
  Send(std::move(resp));
  return absl::OkStatus();
}

absl::Status Raft::HandleHeartbeat(const raftpb::Message& m) {
  Index commit = m.commit();
  if (repairing_) {
    // The leader bounds a heartbeat's commit by what it believes this
    // member holds, and it may still count acknowledgements of entries the
    // member lost. What the member kept past its own commit index may be
    // an old leader's entries that those replaced: only what an append of
    // this leader confirmed may commit.
    commit = std::min({commit, std::max(log_.committed(), repair_confirmed_), log_.last_index()});
  } else if (commit > log_.last_index()) {
    // The leader only sends what it knows we hold; anything else is a
    // malformed message, not a reason to crash.
    return absl::InvalidArgumentError(absl::StrCat("heartbeat commits ", m.commit(),
                                                   " beyond our last index ", log_.last_index()));
  }
  log_.CommitTo(commit);
  raftpb::Message resp;
  resp.set_type(raftpb::MSG_HEARTBEAT_RESP);
  resp.set_to(m.from());
  resp.set_heartbeat_round(m.heartbeat_round());
  Send(std::move(resp));
  return absl::OkStatus();
}

void Raft::WithdrawAppendAcks(Index from) {
  // These acknowledge entries that were only in memory and are replaced
  // now; the replacement is persisted in the same Ready as the messages, so
  // by the time they leave, the disk no longer holds what they promise
  // (raft-traps #19). Dropping an acknowledgement is always safe.
  std::erase_if(messages_, [from](const raftpb::Message& m) {
    return m.type() == raftpb::MSG_APP_RESP && !m.reject() && m.index() >= from;
  });
}

absl::Status Raft::HandleSnapshot(const raftpb::Message& m) {
  const raftpb::SnapshotMetadata& meta = m.snapshot().metadata();
  raftpb::Message resp;
  resp.set_type(raftpb::MSG_APP_RESP);
  resp.set_to(m.from());
  if (meta.index() <= log_.committed()) {
    // Older than what we have committed: installing it would roll back
    // (raft-traps #9).
    Log(absl::StrCat(id(), " [commit: ", log_.committed(), "] ignored snapshot [index: ",
                     meta.index(), ", term: ", meta.term(), "]"));
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return absl::OkStatus();
  }
  if (log_.MatchTerm(meta.index(), meta.term())) {
    // We already have the entries; just learn that they are committed.
    Log(absl::StrCat(id(), " [commit: ", log_.committed(), "] fast-forwarded commit to snapshot [index: ",
                     meta.index(), ", term: ", meta.term(), "]"));
    log_.CommitTo(meta.index());
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return absl::OkStatus();
  }
  absl::StatusOr<confchange::Changed> restored = confchange::Restore(
      meta.conf_state(),
      tracker::ProgressTracker(tracker_.max_inflight_msgs(), tracker_.max_inflight_bytes()),
      meta.index());
  if (!restored.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot carries a bad configuration: ", restored.status().message()));
  }
  WithdrawAppendAcks(log_.committed() + 1);
  log_.Restore(meta.index(), meta.term());
  unstable_snapshot_ = std::make_shared<const raftpb::Snapshot>(m.snapshot());
  SwitchToConfig(std::move(restored->config), std::move(restored->progress));
  Log(absl::StrCat(id(), " restored snapshot [index: ", meta.index(), ", term: ", meta.term(), "]"));
  resp.set_index(log_.last_index());
  Send(std::move(resp));
  if (repairing_) MaybeFinishRepair(meta.index());
  return absl::OkStatus();
}

void Raft::HandleTimeoutNow(const raftpb::Message& m) {
  if (m.from() != lead_) {
    // Only the current leader may hand over its leadership; a delayed
    // TimeoutNow from an earlier leader is stale (raft-traps #11).
    Log(absl::StrCat(id(), " ignored stale MsgTimeoutNow from ", m.from(), " (leader is ", lead_,
                     ")"));
    return;
  }
  if (!Promotable()) {
    Log(absl::StrCat(id(), " received MsgTimeoutNow from ", m.from(), " but is not a voter"));
    return;
  }
  if (HasUnappliedConfChanges()) {
    // The configuration is about to change; campaign once it has.
    Log(absl::StrCat(id(), " defers MsgTimeoutNow from ", m.from(),
                     " until committed configuration changes are applied"));
    transfer_campaign_deferred_ = true;
    return;
  }
  Log(absl::StrCat(id(), " [term ", term_, "] received MsgTimeoutNow from ", m.from(),
                   " and starts an election to get leadership"));
  // Skip the pre-vote: the leader itself asked, and followers let the
  // transfer through their lease.
  Hup(CampaignKind::kTransfer);
}

}  // namespace etc::raft
