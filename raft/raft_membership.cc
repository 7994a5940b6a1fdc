// Configuration changes as they apply: switching the tracker to the new
// configuration, leaving a joint configuration automatically, and a
// removed leader's hand-over once the new configuration knows it.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "raft/confchange/confchange.h"
#include "raft/describe.h"
#include "raft/raft.h"

namespace etc::raft {

absl::StatusOr<raftpb::ConfState> Raft::ApplyConfChange(const raftpb::ConfChange& change) {
  absl::StatusOr<confchange::Changed> changed =
      confchange::Changer(tracker_, log_.last_index()).Apply(change);
  if (!changed.ok()) {
    // Proposals are checked against the configuration they will apply to,
    // so every member reaches this same refusal for the same entry.
    Log(absl::StrCat(id(), " refused conf change ", confchange::DescribeChanges(change), ": ",
                     changed.status().message()));
    return changed.status();
  }
  // The entry is at least the next one to apply; Advance records its exact
  // index. Until then no snapshot below it may claim this configuration.
  conf_applied_index_ = std::max(conf_applied_index_, log_.applied() + 1);
  SwitchToConfig(std::move(changed->config), std::move(changed->progress));
  return tracker_.config.ToConfState();
}

void Raft::MaybeAutoLeaveJoint() {
  if (role_ != Role::kLeader || !tracker_.config.auto_leave) return;
  if (log_.applied() < pending_conf_index_) return;
  // The entry that entered the joint configuration is applied: leave it.
  Log(absl::StrCat(id(), " initiating automatic transition out of joint configuration ",
                   tracker_.config.Describe()));
  absl::Status status = ProposeConfChange(raftpb::ConfChange());
  if (!status.ok()) {
    Log(absl::StrCat(id(), " could not leave the joint configuration yet: ", status.message()));
  }
}

void Raft::SwitchToConfig(tracker::Config config, tracker::ProgressMap progress) {
  tracker_.config = std::move(config);
  tracker_.progress = std::move(progress);
  Log(absl::StrCat(id(), " switched to configuration ", tracker_.config.Describe()));
  if (role_ != Role::kLeader) return;
  if (!tracker_.IsVoter(id())) {
    // Removed (or demoted). Until the others apply this change they still
    // count this member in their quorums, so it keeps leading (without
    // counting itself) until a quorum of the new configuration knows the
    // change committed; see MaybeFinishLeaving.
    if (leaving_index_ == 0) {
      leaving_index_ = std::min(conf_applied_index_, log_.committed());
      Log(absl::StrCat(id(), " is no longer a voter; it leads until the new configuration knows"));
      BroadcastAppend();
      BroadcastHeartbeat();
      leaving_round_ = heartbeat_round_;
    }
    MaybeFinishLeaving();
    return;
  }
  if (lead_transferee_ != kNoNode && !tracker_.IsVoter(lead_transferee_)) AbortLeaderTransfer();
  // The quorum changed: entries may now be committed, and new members need
  // appends.
  MaybeCommit();
  appends_pending_ = true;
}

void Raft::MaybeFinishLeaving() {
  if (leaving_index_ == 0 || role_ != Role::kLeader) return;
  quorum::Votes informed;
  for (NodeId voter : tracker_.VoterIds()) {
    const tracker::Progress& pr = tracker_.progress.at(voter);
    // A heartbeat of a round sent after the change committed carried a
    // commit index of at least the change's, once the follower had it.
    informed[voter] = pr.acked_heartbeat_round >= leaving_round_ && pr.match >= leaving_index_;
  }
  if (tracker_.config.voters.Vote(informed) != quorum::VoteResult::kWon) return;
  // Hand off to the most caught-up voter, so the cluster need not wait out an
  // election timeout.
  NodeId best = kNoNode;
  Index best_match = 0;
  for (NodeId voter : tracker_.VoterIds()) {
    Index match = tracker_.progress.at(voter).match;
    if (match > best_match) {
      best = voter;
      best_match = match;
    }
  }
  if (best != kNoNode && best_match == log_.last_index()) SendTimeoutNow(best);
  Log(absl::StrCat(id(), " handed over and steps down"));
  BecomeFollower(term_, kNoNode);
}

}  // namespace etc::raft
