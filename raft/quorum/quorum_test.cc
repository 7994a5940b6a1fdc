#include "raft/quorum/quorum.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>

namespace etc::raft::quorum {
namespace {

Index Committed(const JointConfig& config, const std::map<NodeId, Index>& acked) {
  return config.CommittedIndex([&](NodeId id) -> std::optional<Index> {
    auto it = acked.find(id);
    if (it == acked.end()) return std::nullopt;
    return it->second;
  });
}

TEST(MajorityConfig, CommittedIndexIsTheQuorumthLargest) {
  JointConfig config{MajorityConfig{1, 2, 3}, {}};
  EXPECT_EQ(Committed(config, {{1, 10}, {2, 5}, {3, 7}}), 7u);
  EXPECT_EQ(Committed(config, {{1, 10}}), 0u);
  EXPECT_EQ(Committed(config, {{1, 10}, {2, 9}}), 9u);
  JointConfig four{MajorityConfig{1, 2, 3, 4}, {}};
  // Four voters need three acknowledgements.
  EXPECT_EQ(Committed(four, {{1, 10}, {2, 9}, {3, 1}, {4, 2}}), 2u);
}

TEST(MajorityConfig, EmptyConfigCommitsEverythingAndWinsEveryVote) {
  MajorityConfig empty;
  EXPECT_EQ(empty.CommittedIndex([](NodeId) { return std::optional<Index>(); }),
            std::numeric_limits<Index>::max());
  EXPECT_EQ(empty.Vote({}), VoteResult::kWon);
}

TEST(MajorityConfig, VoteOutcomes) {
  MajorityConfig config{1, 2, 3};
  EXPECT_EQ(config.Vote({}), VoteResult::kPending);
  EXPECT_EQ(config.Vote({{1, true}}), VoteResult::kPending);
  EXPECT_EQ(config.Vote({{1, true}, {2, true}}), VoteResult::kWon);
  EXPECT_EQ(config.Vote({{1, true}, {2, false}}), VoteResult::kPending);
  EXPECT_EQ(config.Vote({{1, false}, {2, false}}), VoteResult::kLost);
  // Votes of non-members do not count.
  EXPECT_EQ(config.Vote({{1, true}, {9, true}}), VoteResult::kPending);
}

TEST(JointConfig, NeedsBothHalves) {
  JointConfig config{MajorityConfig{1, 2, 3}, MajorityConfig{3, 4, 5}};
  EXPECT_TRUE(config.IsJoint());
  EXPECT_EQ(config.Describe(), "(1 2 3)&&(3 4 5)");
  EXPECT_EQ(config.Ids(), (std::vector<NodeId>{1, 2, 3, 4, 5}));
  // Incoming majority at 10 (1, 2) but outgoing majority only at 3 (3, 4).
  EXPECT_EQ(Committed(config, {{1, 10}, {2, 10}, {3, 3}, {4, 3}, {5, 1}}), 3u);
  EXPECT_EQ(config.Vote({{1, true}, {2, true}}), VoteResult::kPending);
  EXPECT_EQ(config.Vote({{1, true}, {2, true}, {4, true}, {5, true}}), VoteResult::kWon);
  EXPECT_EQ(config.Vote({{1, true}, {2, true}, {4, false}, {5, false}}), VoteResult::kLost);
}

TEST(MajorityConfig, InsertEraseKeepSortedUnique) {
  MajorityConfig config{3, 1};
  EXPECT_TRUE(config.Insert(2));
  EXPECT_FALSE(config.Insert(2));
  EXPECT_EQ(config.Describe(), "(1 2 3)");
  EXPECT_TRUE(config.Erase(1));
  EXPECT_FALSE(config.Erase(1));
  EXPECT_EQ(config.Describe(), "(2 3)");
}

}  // namespace
}  // namespace etc::raft::quorum
