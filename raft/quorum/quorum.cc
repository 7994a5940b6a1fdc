#include "raft/quorum/quorum.h"

#include <algorithm>
#include <limits>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/check.h"

namespace etc::raft::quorum {

const char* VoteResultName(VoteResult result) {
  switch (result) {
    case VoteResult::kPending:
      return "pending";
    case VoteResult::kLost:
      return "lost";
    case VoteResult::kWon:
      return "won";
  }
  return "unknown";
}

MajorityConfig::MajorityConfig(std::initializer_list<NodeId> ids)
    : MajorityConfig(std::vector<NodeId>(ids)) {}

MajorityConfig::MajorityConfig(std::vector<NodeId> ids) : ids_(std::move(ids)) {
  std::sort(ids_.begin(), ids_.end());
  ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
  ETC_CHECK(ids_.empty() || ids_.front() != kNoNode) << "node id 0 is reserved";
}

bool MajorityConfig::Contains(NodeId id) const {
  return std::binary_search(ids_.begin(), ids_.end(), id);
}

bool MajorityConfig::Insert(NodeId id) {
  ETC_CHECK_NE(id, kNoNode);
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it != ids_.end() && *it == id) return false;
  ids_.insert(it, id);
  return true;
}

bool MajorityConfig::Erase(NodeId id) {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it == ids_.end() || *it != id) return false;
  ids_.erase(it);
  return true;
}

Index MajorityConfig::CommittedIndex(AckedIndexFn acked) const {
  if (ids_.empty()) return std::numeric_limits<Index>::max();
  // Clusters are small; keep the sort on the stack.
  absl::InlinedVector<Index, 8> indexes;
  indexes.reserve(ids_.size());
  for (NodeId id : ids_) indexes.push_back(acked(id).value_or(0));
  std::sort(indexes.begin(), indexes.end());
  // With n voters sorted ascending, the entry at n - quorum is acknowledged
  // by itself and every voter above it: exactly a quorum.
  size_t quorum = ids_.size() / 2 + 1;
  return indexes[ids_.size() - quorum];
}

VoteResult MajorityConfig::Vote(const Votes& votes) const {
  if (ids_.empty()) return VoteResult::kWon;
  size_t granted = 0;
  size_t missing = 0;
  for (NodeId id : ids_) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++granted;
    }
  }
  size_t quorum = ids_.size() / 2 + 1;
  if (granted >= quorum) return VoteResult::kWon;
  if (granted + missing >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

std::string MajorityConfig::Describe() const {
  return absl::StrCat("(", absl::StrJoin(ids_, " "), ")");
}

std::vector<NodeId> JointConfig::Ids() const {
  std::vector<NodeId> ids = incoming.ids();
  for (NodeId id : outgoing.ids()) {
    if (!incoming.Contains(id)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Index JointConfig::CommittedIndex(AckedIndexFn acked) const {
  return std::min(incoming.CommittedIndex(acked), outgoing.CommittedIndex(acked));
}

VoteResult JointConfig::Vote(const Votes& votes) const {
  VoteResult in = incoming.Vote(votes);
  VoteResult out = outgoing.Vote(votes);
  if (in == out) return in;
  if (in == VoteResult::kLost || out == VoteResult::kLost) return VoteResult::kLost;
  // One half won and the other is pending.
  return VoteResult::kPending;
}

std::string JointConfig::Describe() const {
  if (!IsJoint()) return incoming.Describe();
  return absl::StrCat(incoming.Describe(), "&&", outgoing.Describe());
}

}  // namespace etc::raft::quorum
