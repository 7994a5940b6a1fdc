#include "raft/confchange/confchange.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/check.h"

namespace etc::raft::confchange {

namespace {

// Voters whose membership differs between the two configurations.
size_t SymmetricDifference(const quorum::MajorityConfig& a, const quorum::MajorityConfig& b) {
  size_t count = 0;
  for (NodeId id : a.ids()) count += !b.Contains(id);
  for (NodeId id : b.ids()) count += !a.Contains(id);
  return count;
}

absl::Status CheckChanged(const Changed& changed) {
  tracker::ProgressTracker probe(1, 0);
  probe.config = changed.config;
  probe.progress = changed.progress;
  std::string problem = probe.FindInconsistency();
  if (!problem.empty()) return absl::InternalError(absl::StrCat("invalid configuration: ", problem));
  return absl::OkStatus();
}

}  // namespace

bool IsLeaveJoint(const raftpb::ConfChange& change) { return change.changes_size() == 0; }

bool EntersJoint(const raftpb::ConfChange& change, bool* auto_leave) {
  if (IsLeaveJoint(change)) return false;
  if (change.transition() == raftpb::TRANSITION_AUTO && change.changes_size() <= 1) return false;
  *auto_leave = change.transition() != raftpb::TRANSITION_JOINT_EXPLICIT;
  return true;
}

absl::StatusOr<Changed> Changer::Apply(const raftpb::ConfChange& change) const {
  if (IsLeaveJoint(change)) return LeaveJoint();
  bool auto_leave = false;
  std::vector<raftpb::ConfChangeSingle> changes(change.changes().begin(), change.changes().end());
  if (EntersJoint(change, &auto_leave)) return EnterJoint(auto_leave, changes);
  return Simple(changes);
}

absl::StatusOr<Changed> Changer::Simple(
    const std::vector<raftpb::ConfChangeSingle>& changes) const {
  if (tracker_.config.IsJoint()) {
    return absl::FailedPreconditionError(
        "cannot apply a simple configuration change in a joint configuration");
  }
  Changed changed{tracker_.config, tracker_.progress};
  if (absl::Status status = ApplyChanges(changed, changes); !status.ok()) return status;
  if (SymmetricDifference(tracker_.config.voters.incoming, changed.config.voters.incoming) > 1) {
    return absl::InvalidArgumentError(
        "more than one voter changed without entering a joint configuration");
  }
  if (absl::Status status = CheckChanged(changed); !status.ok()) return status;
  return changed;
}

absl::StatusOr<Changed> Changer::EnterJoint(
    bool auto_leave, const std::vector<raftpb::ConfChangeSingle>& changes) const {
  if (tracker_.config.IsJoint()) {
    return absl::FailedPreconditionError("the configuration is already joint");
  }
  if (tracker_.config.voters.incoming.empty()) {
    // A joint configuration needs an outgoing half to overlap with.
    return absl::FailedPreconditionError("cannot make a configuration without voters joint");
  }
  Changed changed{tracker_.config, tracker_.progress};
  changed.config.voters.outgoing = changed.config.voters.incoming;
  if (absl::Status status = ApplyChanges(changed, changes); !status.ok()) return status;
  changed.config.auto_leave = auto_leave;
  if (absl::Status status = CheckChanged(changed); !status.ok()) return status;
  return changed;
}

absl::StatusOr<Changed> Changer::LeaveJoint() const {
  if (!tracker_.config.IsJoint()) {
    return absl::FailedPreconditionError("cannot leave a configuration that is not joint");
  }
  Changed changed{tracker_.config, tracker_.progress};
  for (NodeId id : changed.config.learners_next) {
    changed.config.learners.insert(id);
    changed.progress.at(id).is_learner = true;
  }
  changed.config.learners_next.clear();
  for (NodeId id : changed.config.voters.outgoing.ids()) {
    if (!changed.config.voters.incoming.Contains(id) && !changed.config.learners.contains(id)) {
      changed.progress.erase(id);
    }
  }
  changed.config.voters.outgoing = quorum::MajorityConfig();
  changed.config.auto_leave = false;
  if (absl::Status status = CheckChanged(changed); !status.ok()) return status;
  return changed;
}

absl::Status Changer::ApplyChanges(Changed& changed,
                                   const std::vector<raftpb::ConfChangeSingle>& changes) const {
  for (const raftpb::ConfChangeSingle& change : changes) {
    if (change.node_id() == kNoNode) {
      return absl::InvalidArgumentError("configuration change names node 0");
    }
    switch (change.type()) {
      case raftpb::ADD_NODE:
        MakeVoter(changed, change.node_id());
        break;
      case raftpb::ADD_LEARNER_NODE:
        MakeLearner(changed, change.node_id());
        break;
      case raftpb::REMOVE_NODE:
        Remove(changed, change.node_id());
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unknown configuration change type ", change.type()));
    }
  }
  if (changed.config.voters.incoming.empty()) {
    return absl::InvalidArgumentError("the change removes every voter");
  }
  return absl::OkStatus();
}

void Changer::InitProgress(Changed& changed, NodeId id, bool is_learner) const {
  // Probing starts at the last entry, so the first append to the new member
  // carries an entry (and is sent) even when nothing new is proposed.
  tracker::Progress pr(std::max<Index>(last_index_, 1), tracker_.max_inflight_msgs(),
                       tracker_.max_inflight_bytes(), is_learner);
  // A member added just now has had no chance to answer; without this a
  // CheckQuorum round right after the change could depose the leader.
  pr.recent_active = true;
  if (is_learner) {
    changed.config.learners.insert(id);
  } else {
    changed.config.voters.incoming.Insert(id);
  }
  changed.progress.insert_or_assign(id, std::move(pr));
}

void Changer::MakeVoter(Changed& changed, NodeId id) const {
  auto it = changed.progress.find(id);
  if (it == changed.progress.end()) {
    InitProgress(changed, id, /*is_learner=*/false);
    return;
  }
  it->second.is_learner = false;
  changed.config.learners.erase(id);
  changed.config.learners_next.erase(id);
  changed.config.voters.incoming.Insert(id);
}

void Changer::MakeLearner(Changed& changed, NodeId id) const {
  auto it = changed.progress.find(id);
  if (it == changed.progress.end()) {
    InitProgress(changed, id, /*is_learner=*/true);
    return;
  }
  if (it->second.is_learner) return;
  // Stop being an incoming voter, but keep the progress.
  changed.config.voters.incoming.Erase(id);
  changed.config.learners.erase(id);
  changed.config.learners_next.erase(id);
  if (changed.config.voters.outgoing.Contains(id)) {
    // Still a voter of the outgoing half: becomes a learner on leaving.
    changed.config.learners_next.insert(id);
  } else {
    it->second.is_learner = true;
    changed.config.learners.insert(id);
  }
}

void Changer::Remove(Changed& changed, NodeId id) const {
  if (!changed.progress.contains(id)) return;
  changed.config.voters.incoming.Erase(id);
  changed.config.learners.erase(id);
  changed.config.learners_next.erase(id);
  // An outgoing voter keeps its progress until the joint config is left.
  if (!changed.config.voters.outgoing.Contains(id)) changed.progress.erase(id);
}

absl::StatusOr<Changed> Restore(const raftpb::ConfState& state,
                                const tracker::ProgressTracker& empty_tracker, Index last_index) {
  ETC_CHECK(empty_tracker.progress.empty()) << "Restore starts from an empty tracker";
  auto single = [](raftpb::ConfChangeType type, NodeId id) {
    raftpb::ConfChangeSingle change;
    change.set_type(type);
    change.set_node_id(id);
    return change;
  };
  if (state.voters_size() == 0) {
    // A member that has not learned any configuration yet.
    if (state.voters_outgoing_size() + state.learners_size() + state.learners_next_size() > 0 ||
        state.auto_leave()) {
      return absl::InvalidArgumentError("configuration has learners but no voters");
    }
    return Changed{empty_tracker.config, empty_tracker.progress};
  }
  // Build the outgoing half (or the whole configuration) one voter at a
  // time, then enter the joint configuration with the incoming changes.
  tracker::ProgressTracker current(empty_tracker.max_inflight_msgs(),
                                   empty_tracker.max_inflight_bytes());
  auto step = [&](auto&& change_fn) -> absl::Status {
    absl::StatusOr<Changed> next = change_fn(Changer(current, last_index));
    if (!next.ok()) return next.status();
    current.config = std::move(next->config);
    current.progress = std::move(next->progress);
    return absl::OkStatus();
  };
  std::vector<raftpb::ConfChangeSingle> incoming;
  const auto& first_half = state.voters_outgoing_size() > 0 ? state.voters_outgoing() : state.voters();
  for (NodeId id : first_half) {
    auto change = single(raftpb::ADD_NODE, id);
    absl::Status status = step([&](const Changer& changer) { return changer.Simple({change}); });
    if (!status.ok()) return status;
  }
  if (state.voters_outgoing_size() > 0) {
    for (NodeId id : state.voters_outgoing()) incoming.push_back(single(raftpb::REMOVE_NODE, id));
    for (NodeId id : state.voters()) incoming.push_back(single(raftpb::ADD_NODE, id));
  }
  for (NodeId id : state.learners()) incoming.push_back(single(raftpb::ADD_LEARNER_NODE, id));
  for (NodeId id : state.learners_next()) incoming.push_back(single(raftpb::ADD_LEARNER_NODE, id));
  if (state.voters_outgoing_size() > 0) {
    absl::Status status = step([&](const Changer& changer) {
      return changer.EnterJoint(state.auto_leave(), incoming);
    });
    if (!status.ok()) return status;
  } else {
    if (state.learners_next_size() > 0 || state.auto_leave()) {
      return absl::InvalidArgumentError("learners_next or auto_leave outside a joint configuration");
    }
    for (const auto& change : incoming) {
      absl::Status status = step([&](const Changer& changer) { return changer.Simple({change}); });
      if (!status.ok()) return status;
    }
  }
  // The ConfState must describe exactly what was rebuilt: a learner that is
  // also listed as a voter, say, is silently turned into one or the other
  // above, so compare.
  raftpb::ConfState rebuilt = current.config.ToConfState();
  auto same_set = [](const auto& a, const auto& b) {
    std::vector<NodeId> x(a.begin(), a.end());
    std::vector<NodeId> y(b.begin(), b.end());
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    return x == y;
  };
  if (!same_set(rebuilt.voters(), state.voters()) ||
      !same_set(rebuilt.voters_outgoing(), state.voters_outgoing()) ||
      !same_set(rebuilt.learners(), state.learners()) ||
      !same_set(rebuilt.learners_next(), state.learners_next())) {
    return absl::InvalidArgumentError("inconsistent configuration (a member listed twice?)");
  }
  return Changed{std::move(current.config), std::move(current.progress)};
}

std::string DescribeChanges(const raftpb::ConfChange& change) {
  if (IsLeaveJoint(change)) return "leave-joint";
  std::vector<std::string> parts;
  for (const auto& single : change.changes()) {
    const char* prefix = single.type() == raftpb::ADD_NODE           ? "v"
                         : single.type() == raftpb::ADD_LEARNER_NODE ? "l"
                         : single.type() == raftpb::REMOVE_NODE      ? "r"
                                                                     : "?";
    parts.push_back(absl::StrCat(prefix, single.node_id()));
  }
  std::string out = absl::StrJoin(parts, " ");
  if (change.transition() == raftpb::TRANSITION_JOINT_IMPLICIT) out += " (joint-implicit)";
  if (change.transition() == raftpb::TRANSITION_JOINT_EXPLICIT) out += " (joint-explicit)";
  return out;
}

}  // namespace etc::raft::confchange
