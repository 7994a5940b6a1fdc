#include "raft/confchange/confchange.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

namespace etc::raft::confchange {
namespace {

raftpb::ConfChangeSingle Change(raftpb::ConfChangeType type, NodeId id) {
  raftpb::ConfChangeSingle change;
  change.set_type(type);
  change.set_node_id(id);
  return change;
}
raftpb::ConfChangeSingle V(NodeId id) { return Change(raftpb::ADD_NODE, id); }
raftpb::ConfChangeSingle L(NodeId id) { return Change(raftpb::ADD_LEARNER_NODE, id); }
raftpb::ConfChangeSingle R(NodeId id) { return Change(raftpb::REMOVE_NODE, id); }

class ConfChangeTest : public ::testing::Test {
 protected:
  // Applies and keeps the result; returns the error message or "".
  std::string Do(const std::function<absl::StatusOr<Changed>(const Changer&)>& fn) {
    absl::StatusOr<Changed> next = fn(Changer(tracker_, /*last_index=*/10));
    if (!next.ok()) return std::string(next.status().message());
    tracker_.config = next->config;
    tracker_.progress = next->progress;
    EXPECT_EQ(tracker_.FindInconsistency(), "");
    return "";
  }
  std::string Config() const { return tracker_.config.Describe(); }

  tracker::ProgressTracker tracker_{8, 0};
};

TEST_F(ConfChangeTest, SimpleChangesOneVoterAtATime) {
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({V(1)}); }), "");
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({V(2), L(3)}); }), "");
  EXPECT_EQ(Config(), "voters=(1 2) learners=(3)");
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({V(3), V(4)}); }),
            "more than one voter changed without entering a joint configuration");
  EXPECT_EQ(Config(), "voters=(1 2) learners=(3)") << "a failed change leaves the config alone";
  // Promoting a learner keeps its progress.
  tracker_.progress.at(3).match = 7;
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({V(3)}); }), "");
  EXPECT_EQ(tracker_.progress.at(3).match, 7u);
  EXPECT_FALSE(tracker_.progress.at(3).is_learner);
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({R(1)}); }), "");
  EXPECT_EQ(Config(), "voters=(2 3)");
  EXPECT_FALSE(tracker_.progress.contains(1));
}

TEST_F(ConfChangeTest, CannotRemoveEveryVoterOrNameNodeZero) {
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({V(1)}); }), "");
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({R(1)}); }), "the change removes every voter");
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({V(0)}); }),
            "configuration change names node 0");
}

TEST_F(ConfChangeTest, JointReplacesSeveralVotersAndDemotes) {
  for (NodeId id : {1, 2, 3}) {
    EXPECT_EQ(Do([id](const Changer& c) { return c.Simple({V(id)}); }), "");
  }
  EXPECT_EQ(Do([](const Changer& c) { return c.EnterJoint(true, {R(1), V(4), V(5), L(3)}); }), "");
  EXPECT_EQ(Config(), "voters=(2 4 5)&&(1 2 3) learners_next=(3) autoleave");
  EXPECT_EQ(Do([](const Changer& c) { return c.EnterJoint(false, {V(6)}); }),
            "the configuration is already joint");
  EXPECT_EQ(Do([](const Changer& c) { return c.Simple({V(6)}); }),
            "cannot apply a simple configuration change in a joint configuration");
  // Node 1 is still an outgoing voter, so it keeps its progress until leaving.
  EXPECT_TRUE(tracker_.progress.contains(1));
  EXPECT_EQ(Do([](const Changer& c) { return c.LeaveJoint(); }), "");
  EXPECT_EQ(Config(), "voters=(2 4 5) learners=(3)");
  EXPECT_FALSE(tracker_.progress.contains(1));
  EXPECT_TRUE(tracker_.progress.at(3).is_learner);
  EXPECT_EQ(Do([](const Changer& c) { return c.LeaveJoint(); }),
            "cannot leave a configuration that is not joint");
}

TEST_F(ConfChangeTest, ApplyChoosesTheTransition) {
  raftpb::ConfChange change;
  *change.add_changes() = V(1);
  EXPECT_EQ(Do([&](const Changer& c) { return c.Apply(change); }), "");
  *change.add_changes() = V(2);
  EXPECT_EQ(Do([&](const Changer& c) { return c.Apply(change); }), "");
  EXPECT_EQ(Config(), "voters=(1 2)&&(1) autoleave");
  EXPECT_EQ(Do([&](const Changer& c) { return c.Apply(raftpb::ConfChange()); }), "");
  EXPECT_EQ(Config(), "voters=(1 2)");
  raftpb::ConfChange explicit_joint;
  explicit_joint.set_transition(raftpb::TRANSITION_JOINT_EXPLICIT);
  *explicit_joint.add_changes() = V(3);
  EXPECT_EQ(Do([&](const Changer& c) { return c.Apply(explicit_joint); }), "");
  EXPECT_EQ(Config(), "voters=(1 2 3)&&(1 2)");
  EXPECT_EQ(DescribeChanges(explicit_joint), "v3 (joint-explicit)");
}

TEST(Restore, RejectsMalformedConfStates) {
  tracker::ProgressTracker empty(8, 0);
  raftpb::ConfState state;
  state.add_voters(1);
  state.add_learners(1);
  EXPECT_FALSE(Restore(state, empty, 5).ok());
  raftpb::ConfState learners_only;
  learners_only.add_learners(2);
  EXPECT_FALSE(Restore(learners_only, empty, 5).ok());
  raftpb::ConfState stray_next;
  stray_next.add_voters(1);
  stray_next.add_learners_next(2);
  EXPECT_FALSE(Restore(stray_next, empty, 5).ok());
  raftpb::ConfState duplicate;
  duplicate.add_voters(1);
  duplicate.add_voters(1);
  EXPECT_FALSE(Restore(duplicate, empty, 5).ok());
}

// Any sequence of changes, accepted or refused, keeps the configuration
// consistent, and every configuration survives a round trip through ConfState.
RC_GTEST_PROP(ConfChangeProperty, RandomChangesStayConsistentAndRestore, ()) {
  tracker::ProgressTracker tracker(8, 0);
  {
    auto first = Changer(tracker, 0).Simple({V(1)});
    RC_ASSERT(first.ok());
    tracker.config = first->config;
    tracker.progress = first->progress;
  }
  int steps = *rc::gen::inRange(1, 40);
  for (int step = 0; step < steps; ++step) {
    int kind = *rc::gen::inRange(0, 3);
    std::vector<raftpb::ConfChangeSingle> changes;
    int count = *rc::gen::inRange(1, 4);
    for (int i = 0; i < count; ++i) {
      NodeId id = *rc::gen::inRange<NodeId>(1, 7);
      switch (*rc::gen::inRange(0, 3)) {
        case 0:
          changes.push_back(V(id));
          break;
        case 1:
          changes.push_back(L(id));
          break;
        default:
          changes.push_back(R(id));
      }
    }
    Changer changer(tracker, step);
    absl::StatusOr<Changed> next = kind == 0   ? changer.Simple(changes)
                                   : kind == 1 ? changer.EnterJoint(step % 2 == 0, changes)
                                               : changer.LeaveJoint();
    if (!next.ok()) continue;
    tracker.config = next->config;
    tracker.progress = next->progress;
    RC_ASSERT(tracker.FindInconsistency() == "");
    RC_ASSERT(!tracker.config.voters.incoming.empty());
    auto restored = Restore(tracker.config.ToConfState(), tracker::ProgressTracker(8, 0), step);
    RC_ASSERT(restored.ok());
    RC_ASSERT(restored->config == tracker.config);
  }
}

}  // namespace
}  // namespace etc::raft::confchange
