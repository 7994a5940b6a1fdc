// The leader's view of the cluster: the active configuration (possibly joint,
// with learners), one Progress per member, and the votes of an election.
#ifndef ETC_RAFT_TRACKER_TRACKER_H_
#define ETC_RAFT_TRACKER_TRACKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "raft/quorum/quorum.h"
#include "raft/raftpb.pb.h"
#include "raft/tracker/progress.h"

namespace etc::raft::tracker {

// The membership configuration. A node is at most one of: an incoming voter,
// a learner. learners_next holds outgoing voters being demoted to learners,
// which become learners when the joint configuration is left.
struct Config {
  quorum::JointConfig voters;
  bool auto_leave = false;
  absl::btree_set<NodeId> learners;
  absl::btree_set<NodeId> learners_next;

  bool IsJoint() const { return voters.IsJoint(); }
  raftpb::ConfState ToConfState() const;
  // "voters=(1 2 3)&&(1 2) learners=(4) learners_next=(3) autoleave"
  std::string Describe() const;

  friend bool operator==(const Config&, const Config&) = default;
};

// Iterated in id order, so every output of the core is deterministic.
using ProgressMap = absl::btree_map<NodeId, Progress>;

class ProgressTracker {
 public:
  ProgressTracker(size_t max_inflight_msgs, uint64_t max_inflight_bytes)
      : max_inflight_msgs_(max_inflight_msgs), max_inflight_bytes_(max_inflight_bytes) {}

  Config config;
  ProgressMap progress;

  size_t max_inflight_msgs() const { return max_inflight_msgs_; }
  uint64_t max_inflight_bytes() const { return max_inflight_bytes_; }

  // Whether `id` may vote: a voter of either half of the configuration.
  bool IsVoter(NodeId id) const { return config.voters.Contains(id); }
  // A single voter and not joint: that voter alone commits.
  bool IsSingleton() const;

  // The highest index durably stored on a quorum of voters.
  Index Committed() const;
  // Whether a quorum of voters was heard from since the flags were reset.
  bool QuorumActive() const;
  // The newest heartbeat round acknowledged by a quorum of voters.
  uint64_t QuorumAckedHeartbeatRound() const;

  std::vector<NodeId> VoterIds() const { return config.voters.Ids(); }
  std::vector<NodeId> LearnerIds() const;

  void ResetVotes() { votes_.clear(); }
  // Records the first vote of `id`; later ones are ignored.
  void RecordVote(NodeId id, bool granted);
  struct Tally {
    int granted = 0;
    int rejected = 0;
    quorum::VoteResult result = quorum::VoteResult::kPending;
  };
  Tally TallyVotes() const;

  // Checks that configuration and progress agree; returns a description of
  // the first problem, or an empty string.
  std::string FindInconsistency() const;

 private:
  quorum::Votes votes_;
  size_t max_inflight_msgs_;
  uint64_t max_inflight_bytes_;
};

}  // namespace etc::raft::tracker

#endif  // ETC_RAFT_TRACKER_TRACKER_H_
