#include "raft/conf_state.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace etc::raft {
namespace {

raftpb::ConfState Conf(std::vector<NodeId> voters, std::vector<NodeId> outgoing = {},
                       std::vector<NodeId> learners = {}, std::vector<NodeId> learners_next = {}) {
  raftpb::ConfState conf;
  for (NodeId id : voters) conf.add_voters(id);
  for (NodeId id : outgoing) conf.add_voters_outgoing(id);
  for (NodeId id : learners) conf.add_learners(id);
  for (NodeId id : learners_next) conf.add_learners_next(id);
  return conf;
}

TEST(ConfStateTest, ASimpleConfiguration) {
  raftpb::ConfState conf = Conf({1, 2}, {}, {3});
  EXPECT_EQ(MembersOf(conf), (std::set<NodeId>{1, 2, 3}));
  EXPECT_TRUE(IsVoter(conf, 1));
  EXPECT_TRUE(IsIncomingOrOutgoingVoter(conf, 2));
  EXPECT_FALSE(IsVoter(conf, 3));
  EXPECT_TRUE(IsLearner(conf, 3));
  EXPECT_TRUE(IsMember(conf, 3));
  EXPECT_FALSE(IsMember(conf, 4));
  EXPECT_FALSE(IsJoint(conf));
  EXPECT_FALSE(IsSoleVoter(conf, 1));
}

TEST(ConfStateTest, AJointChangeDemotingAVoter) {
  // 3 leaves the voters for the learners: an outgoing voter now, a learner
  // once the change completes.
  raftpb::ConfState conf = Conf({1, 2}, {1, 2, 3}, {}, {3});
  EXPECT_TRUE(IsJoint(conf));
  EXPECT_FALSE(IsVoter(conf, 3));
  EXPECT_TRUE(IsIncomingOrOutgoingVoter(conf, 3));
  EXPECT_TRUE(IsLearner(conf, 3));
  EXPECT_TRUE(IsMember(conf, 3));
  EXPECT_EQ(MembersOf(conf), (std::set<NodeId>{1, 2, 3}));
}

TEST(ConfStateTest, TheSoleVoter) {
  EXPECT_TRUE(IsSoleVoter(Conf({1}), 1));
  EXPECT_TRUE(IsSoleVoter(Conf({1}, {}, {2}), 1));  // learners do not vote
  EXPECT_FALSE(IsSoleVoter(Conf({1}), 2));
  EXPECT_FALSE(IsSoleVoter(Conf({1, 2}), 1));
  // Leaving a joint change, the outgoing voters still count.
  EXPECT_FALSE(IsSoleVoter(Conf({1}, {1, 2}), 1));
  EXPECT_FALSE(IsSoleVoter(Conf({}), 1));
}

}  // namespace
}  // namespace etc::raft
