#include "raft/tracker/tracker.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace etc::raft::tracker {

raftpb::ConfState Config::ToConfState() const {
  raftpb::ConfState state;
  for (NodeId id : voters.incoming.ids()) state.add_voters(id);
  for (NodeId id : voters.outgoing.ids()) state.add_voters_outgoing(id);
  for (NodeId id : learners) state.add_learners(id);
  for (NodeId id : learners_next) state.add_learners_next(id);
  state.set_auto_leave(auto_leave);
  return state;
}

std::string Config::Describe() const {
  std::string out = absl::StrCat("voters=", voters.Describe());
  if (!learners.empty()) absl::StrAppend(&out, " learners=(", absl::StrJoin(learners, " "), ")");
  if (!learners_next.empty()) {
    absl::StrAppend(&out, " learners_next=(", absl::StrJoin(learners_next, " "), ")");
  }
  if (auto_leave) absl::StrAppend(&out, " autoleave");
  return out;
}

bool ProgressTracker::IsSingleton() const {
  return config.voters.incoming.size() == 1 && !config.IsJoint();
}

Index ProgressTracker::Committed() const {
  return config.voters.CommittedIndex([this](NodeId id) -> std::optional<Index> {
    auto it = progress.find(id);
    if (it == progress.end()) return std::nullopt;
    return it->second.match;
  });
}

bool ProgressTracker::QuorumActive() const {
  quorum::Votes active;
  for (const auto& [id, pr] : progress) {
    if (!pr.is_learner) active[id] = pr.recent_active;
  }
  return config.voters.Vote(active) == quorum::VoteResult::kWon;
}

uint64_t ProgressTracker::QuorumAckedHeartbeatRound() const {
  return config.voters.CommittedIndex([this](NodeId id) -> std::optional<Index> {
    auto it = progress.find(id);
    if (it == progress.end()) return std::nullopt;
    return it->second.acked_heartbeat_round;
  });
}

std::vector<NodeId> ProgressTracker::LearnerIds() const {
  return std::vector<NodeId>(config.learners.begin(), config.learners.end());
}

void ProgressTracker::RecordVote(NodeId id, bool granted) { votes_.try_emplace(id, granted); }

ProgressTracker::Tally ProgressTracker::TallyVotes() const {
  Tally tally;
  // Only voters' answers count; a learner's stray vote is ignored.
  for (const auto& [id, granted] : votes_) {
    if (!IsVoter(id)) continue;
    (granted ? tally.granted : tally.rejected)++;
  }
  tally.result = config.voters.Vote(votes_);
  return tally;
}

std::string ProgressTracker::FindInconsistency() const {
  for (NodeId id : config.voters.Ids()) {
    auto it = progress.find(id);
    if (it == progress.end()) return absl::StrCat("voter ", id, " has no progress");
    if (it->second.is_learner && !config.learners_next.contains(id)) {
      return absl::StrCat("voter ", id, " is marked as a learner");
    }
  }
  for (NodeId id : config.learners) {
    auto it = progress.find(id);
    if (it == progress.end()) return absl::StrCat("learner ", id, " has no progress");
    if (!it->second.is_learner) return absl::StrCat("learner ", id, " is not marked as one");
    if (config.voters.Contains(id)) return absl::StrCat("learner ", id, " is also a voter");
  }
  for (NodeId id : config.learners_next) {
    if (!config.voters.outgoing.Contains(id)) {
      return absl::StrCat("next learner ", id, " is not an outgoing voter");
    }
    if (config.voters.incoming.Contains(id)) {
      return absl::StrCat("next learner ", id, " is an incoming voter");
    }
    auto it = progress.find(id);
    if (it == progress.end()) return absl::StrCat("next learner ", id, " has no progress");
    if (it->second.is_learner) return absl::StrCat("next learner ", id, " is marked as a learner");
  }
  for (const auto& [id, pr] : progress) {
    if (!config.voters.Contains(id) && !config.learners.contains(id)) {
      return absl::StrCat("progress for ", id, " which is not a member");
    }
    if (pr.match >= pr.next) {
      return absl::StrCat("progress of ", id, ": match ", pr.match, " >= next ", pr.next);
    }
    if (pr.inflights.count() > pr.inflights.max_count()) {
      return absl::StrCat("progress of ", id, ": in-flight window overfull");
    }
  }
  if (!config.IsJoint()) {
    if (!config.learners_next.empty()) return "learners_next outside a joint configuration";
    if (config.auto_leave) return "auto_leave outside a joint configuration";
  }
  return "";
}

}  // namespace etc::raft::tracker
