// Quorum math for Raft: the highest log index acknowledged by a quorum, and
// the outcome of an election, for a simple majority configuration and for a
// joint configuration (two majorities that must both agree, used while the
// membership changes; Raft thesis section 4.3).
//
//   MajorityConfig voters({1, 2, 3});
//   Index committed = voters.CommittedIndex([&](NodeId id) { return match[id]; });
//   VoteResult result = voters.Vote({{1, true}, {2, false}});  // kPending
//
// An empty majority configuration commits everything and wins every vote, so
// that a joint configuration with an empty outgoing half behaves exactly like
// its incoming half.
#ifndef ETC_RAFT_QUORUM_QUORUM_H_
#define ETC_RAFT_QUORUM_QUORUM_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"

namespace etc::raft {

using NodeId = uint64_t;
using Index = uint64_t;
using Term = uint64_t;

// No node: a node id of 0 is never a member.
inline constexpr NodeId kNoNode = 0;

}  // namespace etc::raft

namespace etc::raft::quorum {

enum class VoteResult {
  // Not decided yet: missing votes could still win or lose it.
  kPending,
  // Cannot be won whatever the missing votes are.
  kLost,
  // A quorum voted yes.
  kWon,
};

const char* VoteResultName(VoteResult result);

// The index a voter has durably acknowledged, or nullopt if unknown (counts as 0).
using AckedIndexFn = absl::FunctionRef<std::optional<Index>(NodeId)>;

// Votes received so far: true is a grant, false a rejection; absent voters
// have not answered.
using Votes = absl::flat_hash_map<NodeId, bool>;

// A set of voters of which a strict majority forms a quorum.
class MajorityConfig {
 public:
  MajorityConfig() = default;
  MajorityConfig(std::initializer_list<NodeId> ids);
  explicit MajorityConfig(std::vector<NodeId> ids);

  bool Contains(NodeId id) const;
  // Returns false if the id was already present.
  bool Insert(NodeId id);
  // Returns false if the id was absent.
  bool Erase(NodeId id);
  bool empty() const { return ids_.empty(); }
  size_t size() const { return ids_.size(); }
  // Sorted ascending, without duplicates.
  const std::vector<NodeId>& ids() const { return ids_; }

  // The largest index acknowledged by a majority. An empty configuration
  // returns the largest Index, so a joint configuration ignores that half.
  Index CommittedIndex(AckedIndexFn acked) const;
  VoteResult Vote(const Votes& votes) const;

  // "(1 2 3)"
  std::string Describe() const;

  friend bool operator==(const MajorityConfig&, const MajorityConfig&) = default;

 private:
  std::vector<NodeId> ids_;
};

// Two majority configurations that must both agree. Outside a membership
// change the outgoing half is empty.
struct JointConfig {
  MajorityConfig incoming;
  MajorityConfig outgoing;

  bool Contains(NodeId id) const { return incoming.Contains(id) || outgoing.Contains(id); }
  bool IsJoint() const { return !outgoing.empty(); }
  // Every voter of either half, sorted, without duplicates.
  std::vector<NodeId> Ids() const;
  Index CommittedIndex(AckedIndexFn acked) const;
  VoteResult Vote(const Votes& votes) const;
  // "(1 2 3)" or "(1 2 4)&&(1 2 3)" while joint.
  std::string Describe() const;

  friend bool operator==(const JointConfig&, const JointConfig&) = default;
};

}  // namespace etc::raft::quorum

#endif  // ETC_RAFT_QUORUM_QUORUM_H_
