#include "raft/tracker/tracker.h"

#include <gtest/gtest.h>

namespace etc::raft::tracker {
namespace {

ProgressTracker ThreeVoters() {
  ProgressTracker tracker(4, 0);
  tracker.config.voters.incoming = quorum::MajorityConfig{1, 2, 3};
  for (NodeId id : {1, 2, 3}) tracker.progress.emplace(id, Progress(1, 4, 0, false));
  tracker.config.learners.insert(4);
  tracker.progress.emplace(4, Progress(1, 4, 0, true));
  return tracker;
}

TEST(ProgressTracker, CommittedIgnoresLearners) {
  ProgressTracker tracker = ThreeVoters();
  tracker.progress.at(1).match = 9;
  tracker.progress.at(4).match = 9;
  EXPECT_EQ(tracker.Committed(), 0u);
  tracker.progress.at(2).match = 7;
  EXPECT_EQ(tracker.Committed(), 7u);
}

TEST(ProgressTracker, QuorumActiveNeedsVoters) {
  ProgressTracker tracker = ThreeVoters();
  tracker.progress.at(1).recent_active = true;
  tracker.progress.at(4).recent_active = true;
  EXPECT_FALSE(tracker.QuorumActive());
  tracker.progress.at(3).recent_active = true;
  EXPECT_TRUE(tracker.QuorumActive());
}

TEST(ProgressTracker, VotesCountOncePerVoter) {
  ProgressTracker tracker = ThreeVoters();
  tracker.RecordVote(1, true);
  tracker.RecordVote(4, true);  // a learner: ignored
  tracker.RecordVote(2, false);
  tracker.RecordVote(2, true);  // a second answer: ignored
  auto tally = tracker.TallyVotes();
  EXPECT_EQ(tally.granted, 1);
  EXPECT_EQ(tally.rejected, 1);
  EXPECT_EQ(tally.result, quorum::VoteResult::kPending);
}

TEST(ProgressTracker, ConfStateRoundTripsAndDescribes) {
  ProgressTracker tracker = ThreeVoters();
  EXPECT_EQ(tracker.FindInconsistency(), "");
  EXPECT_EQ(tracker.config.Describe(), "voters=(1 2 3) learners=(4)");
  auto state = tracker.config.ToConfState();
  EXPECT_EQ(state.voters_size(), 3);
  EXPECT_EQ(state.learners_size(), 1);
  tracker.config.learners.insert(2);
  EXPECT_NE(tracker.FindInconsistency(), "");
}

}  // namespace
}  // namespace etc::raft::tracker
