#include "raft/tracker/progress.h"

#include <gtest/gtest.h>

namespace etc::raft::tracker {
namespace {

Progress MakeProgress(Index match, Index next) {
  Progress pr(next, 2, 0, false);
  pr.match = match;
  return pr;
}

TEST(Progress, ProbeSendsOneAppendAtATime) {
  Progress pr = MakeProgress(0, 5);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(3, 30);
  EXPECT_TRUE(pr.IsPaused());
  // Probing does not advance next optimistically.
  EXPECT_EQ(pr.next, 5u);
  EXPECT_TRUE(pr.MaybeUpdate(7));
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_EQ(pr.next, 8u);
}

TEST(Progress, ReplicateStreamsUntilWindowFull) {
  Progress pr = MakeProgress(4, 5);
  pr.BecomeReplicate();
  pr.SentEntries(2, 20);
  EXPECT_EQ(pr.next, 7u);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(1, 10);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_FALSE(pr.CanSendEntries());
  pr.MaybeUpdate(6);
  pr.inflights.FreeLE(6);
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_TRUE(pr.CanSendEntries());
}

TEST(Progress, HeartbeatUnpausesAFullWindowForAnEmptyAppend) {
  // Every append in flight may have been lost: the leader must still be
  // able to send an (empty) append whose answer clears the window.
  Progress pr = MakeProgress(4, 5);
  pr.BecomeReplicate();
  pr.SentEntries(1, 10);
  pr.SentEntries(1, 10);
  ASSERT_TRUE(pr.IsPaused());
  pr.paused = false;  // what a heartbeat response does
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_FALSE(pr.CanSendEntries());
  pr.SentEntries(0, 0);
  EXPECT_TRUE(pr.IsPaused());
  // Its rejection restarts replication from match.
  EXPECT_TRUE(pr.MaybeDecrTo(6, 4));
  EXPECT_EQ(pr.next, 5u);
}

TEST(Progress, DecrementInProbeUsesHintAndIgnoresStaleRejections) {
  Progress pr = MakeProgress(2, 10);
  // A rejection for an index other than the one probed is stale.
  EXPECT_FALSE(pr.MaybeDecrTo(5, 3));
  EXPECT_TRUE(pr.MaybeDecrTo(9, 4));
  EXPECT_EQ(pr.next, 5u);
  // The hint never takes next below match + 1.
  EXPECT_TRUE(pr.MaybeDecrTo(4, 0));
  EXPECT_EQ(pr.next, 3u);
}

TEST(Progress, DecrementInReplicateFallsBackToMatch) {
  Progress pr = MakeProgress(5, 6);
  pr.BecomeReplicate();
  pr.SentEntries(4, 40);
  EXPECT_FALSE(pr.MaybeDecrTo(5, 0)) << "rejection of an acknowledged index is stale";
  EXPECT_TRUE(pr.MaybeDecrTo(8, 0));
  EXPECT_EQ(pr.next, 6u);
}

TEST(Progress, SnapshotStateHoldsAppendsAndProbesAfterIt) {
  Progress pr = MakeProgress(3, 4);
  pr.BecomeSnapshot(20);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.pending_snapshot, 20u);
  pr.BecomeProbe();
  EXPECT_EQ(pr.next, 21u);
  EXPECT_EQ(pr.pending_snapshot, 0u);
}

}  // namespace
}  // namespace etc::raft::tracker
