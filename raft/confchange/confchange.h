// Membership changes (Raft thesis chapter 4), as pure functions.
//
// Two ways to change the voters:
//  - Simple: at most one voter is added or removed. Any two majorities of the
//    old and new configurations then overlap, so the change is safe on its
//    own, provided only one change is in flight and the leader has committed
//    an entry of its own term first (the core enforces both).
//  - Joint: EnterJoint switches to "old && new" (decisions need a majority of
//    both), and LeaveJoint later switches to "new" alone. This allows any
//    change, such as replacing several voters at once.
// Learners receive the log but never vote; adding a learner's id as a voter
// promotes it, and a voter is demoted to learner through a joint config.
//
//   Changer changer(tracker, log_last_index);
//   absl::StatusOr<Changed> next = changer.Simple(changes);
//   if (next.ok()) { tracker.config = next->config; tracker.progress = next->progress; }
#ifndef ETC_RAFT_CONFCHANGE_CONFCHANGE_H_
#define ETC_RAFT_CONFCHANGE_CONFCHANGE_H_

#include <string>

#include "absl/status/statusor.h"
#include <vector>
#include "raft/raftpb.pb.h"
#include "raft/tracker/tracker.h"

namespace etc::raft::confchange {

struct Changed {
  tracker::Config config;
  tracker::ProgressMap progress;
};

class Changer {
 public:
  // `last_index` is the leader's last log index; new members start probing there.
  Changer(const tracker::ProgressTracker& tracker, Index last_index)
      : tracker_(tracker), last_index_(last_index) {}

  absl::StatusOr<Changed> Simple(const std::vector<raftpb::ConfChangeSingle>& changes) const;
  absl::StatusOr<Changed> EnterJoint(bool auto_leave,
                                     const std::vector<raftpb::ConfChangeSingle>& changes) const;
  absl::StatusOr<Changed> LeaveJoint() const;
  // Dispatches on the shape of `change` (see raftpb.ConfChange).
  absl::StatusOr<Changed> Apply(const raftpb::ConfChange& change) const;

 private:
  absl::Status ApplyChanges(Changed& changed,
                            const std::vector<raftpb::ConfChangeSingle>& changes) const;
  void MakeVoter(Changed& changed, NodeId id) const;
  void MakeLearner(Changed& changed, NodeId id) const;
  void Remove(Changed& changed, NodeId id) const;
  void InitProgress(Changed& changed, NodeId id, bool is_learner) const;

  const tracker::ProgressTracker& tracker_;
  Index last_index_;
};

// Whether `change` leaves a joint configuration (it has no changes).
bool IsLeaveJoint(const raftpb::ConfChange& change);
// Whether applying `change` enters a joint configuration, and if so whether
// it is left automatically.
bool EntersJoint(const raftpb::ConfChange& change, bool* auto_leave);

// Rebuilds configuration and progress from a ConfState (from a snapshot or a
// restart), validating it: a malformed ConfState is an error, not a crash.
absl::StatusOr<Changed> Restore(const raftpb::ConfState& state,
                                const tracker::ProgressTracker& empty_tracker, Index last_index);

// "v2 l3 r1" (add voter 2, add learner 3, remove 1); "leave-joint" when empty.
std::string DescribeChanges(const raftpb::ConfChange& change);

}  // namespace etc::raft::confchange

#endif  // ETC_RAFT_CONFCHANGE_CONFCHANGE_H_
