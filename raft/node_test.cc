// The public Node API at its edges: malformed durable state and messages are
// errors, not crashes; preconditions are reported as statuses.
#include "raft/node.h"

#include <gtest/gtest.h>

#include "raft/memory_storage.h"
#include "raft/rafttest/builders.h"

namespace etc::raft {
namespace {

Config TestConfig(NodeId id) {
  Config config;
  config.id = id;
  config.random_seed = 7;
  return config;
}

raftpb::Entry E(Index index, Term term, std::string data = "") {
  return rafttest::MakeEntry(index, term, std::move(data));
}

// An append from `leader` in `term` of entry 2 (after the bootstrap entry).
raftpb::Message AppendSecond(NodeId leader, NodeId to, Term term, std::string data) {
  raftpb::Message app = rafttest::MakeMessage(raftpb::MSG_APP, leader, to, term);
  app.set_index(1);
  app.set_log_term(1);
  *app.add_entries() = E(2, term, std::move(data));
  return app;
}

// A leader of a single-voter cluster with `entries` committed entries.
Node SingleLeader() {
  Node node = *Node::Start(TestConfig(1), MemoryStorage::Bootstrap({1}).ToDurable());
  EXPECT_TRUE(node.Campaign().ok());
  while (node.HasReady()) node.Advance(node.GetReady());
  return node;
}

TEST(NodeStart, RejectsBadConfig) {
  Config config = TestConfig(0);
  EXPECT_EQ(Node::Start(config, {}).status().code(), absl::StatusCode::kInvalidArgument);
  config = TestConfig(1);
  config.election_timeout_ticks = 1;
  EXPECT_FALSE(Node::Start(config, {}).ok());
  config = TestConfig(1);
  config.read_only = ReadOnlyOption::kLeaseBased;
  config.check_quorum = false;
  EXPECT_FALSE(Node::Start(config, {}).ok()) << "lease reads need CheckQuorum";
}

TEST(NodeStart, RejectsCorruptDurableState) {
  DurableState gap = MemoryStorage::Bootstrap({1}).ToDurable();
  gap.entries = {E(2, 1), E(4, 1)};
  EXPECT_EQ(Node::Start(TestConfig(1), gap).status().code(), absl::StatusCode::kDataLoss);

  DurableState decreasing = MemoryStorage::Bootstrap({1}).ToDurable();
  decreasing.entries = {E(2, 2), E(3, 1)};
  decreasing.hard_state.set_term(2);
  EXPECT_EQ(Node::Start(TestConfig(1), decreasing).status().code(), absl::StatusCode::kDataLoss);

  DurableState commit_past_end = MemoryStorage::Bootstrap({1}).ToDurable();
  commit_past_end.entries = {E(2, 1)};
  commit_past_end.hard_state.set_term(1);
  commit_past_end.hard_state.set_commit(5);
  EXPECT_EQ(Node::Start(TestConfig(1), commit_past_end).status().code(), absl::StatusCode::kDataLoss);

  DurableState bad_conf = MemoryStorage::Bootstrap({1}).ToDurable();
  bad_conf.snapshot.mutable_metadata()->mutable_conf_state()->add_learners(1);
  EXPECT_EQ(Node::Start(TestConfig(1), bad_conf).status().code(), absl::StatusCode::kDataLoss);

  DurableState snapshot_mismatch;
  snapshot_mismatch.snapshot.mutable_metadata()->set_index(5);
  snapshot_mismatch.snapshot.mutable_metadata()->set_term(2);
  snapshot_mismatch.snapshot.mutable_metadata()->mutable_conf_state()->add_voters(1);
  snapshot_mismatch.hard_state.set_term(2);
  snapshot_mismatch.entries = {E(5, 1), E(6, 2)};
  EXPECT_EQ(Node::Start(TestConfig(1), snapshot_mismatch).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(NodeStart, ATornWriteLeavesEntriesAheadOfTheHardState) {
  // Entries of term 3 durable, the hard state that moved to term 3 (and
  // voted) lost: continue in term 3 without a vote.
  DurableState durable = MemoryStorage::Bootstrap({1, 2, 3}).ToDurable();
  durable.hard_state.set_term(2);
  durable.hard_state.set_vote(2);
  durable.entries = {E(2, 2), E(3, 3)};
  absl::StatusOr<Node> node = Node::Start(TestConfig(1), durable);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->Status().term, 3u);
  EXPECT_EQ(node->Status().vote, kNoNode);
  // A hard state from the same term keeps its vote.
  durable.hard_state.set_term(3);
  durable.hard_state.set_vote(2);
  EXPECT_EQ(Node::Start(TestConfig(1), durable)->Status().vote, 2u);
}

TEST(NodeStart, RejectsAnInitialConfigurationAtIndexZero) {
  // It could never be sent to a member that joins later.
  DurableState durable;
  durable.snapshot.mutable_metadata()->mutable_conf_state()->add_voters(1);
  EXPECT_EQ(Node::Start(TestConfig(1), durable).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Node::Start(TestConfig(1), MemoryStorage::Bootstrap({1}).ToDurable()).ok());
}

TEST(NodeStart, SkipsEntriesTheSnapshotCovers) {
  DurableState durable;
  durable.snapshot.mutable_metadata()->set_index(5);
  durable.snapshot.mutable_metadata()->set_term(2);
  durable.snapshot.mutable_metadata()->mutable_conf_state()->add_voters(1);
  durable.hard_state.set_term(2);
  durable.hard_state.set_commit(6);
  durable.entries = {E(4, 2), E(5, 2), E(6, 2, "x")};
  absl::StatusOr<Node> node = Node::Start(TestConfig(1), durable);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->Status().first_index, 6u);
  EXPECT_EQ(node->Status().last_index, 6u);
  Ready ready = node->GetReady();
  ASSERT_EQ(ready.committed_entries.size(), 1u);
  EXPECT_EQ(ready.committed_entries[0].data(), "x");
}

TEST(NodeStep, MalformedMessagesAreErrors) {
  Node node = SingleLeader();
  raftpb::Message m;
  m.set_type(raftpb::MSG_APP_RESP);
  m.set_to(2);
  m.set_from(3);
  EXPECT_EQ(node.Step(m).code(), absl::StatusCode::kInvalidArgument) << "wrong recipient";
  m.set_to(1);
  m.set_from(1);
  EXPECT_FALSE(node.Step(m).ok()) << "from itself";
  m.set_from(0);
  EXPECT_FALSE(node.Step(m).ok()) << "from node 0";
  m.set_from(2);
  m.set_type(static_cast<raftpb::MessageType>(99));
  EXPECT_FALSE(node.Step(m).ok()) << "unknown type";

  raftpb::Message app = rafttest::MakeMessage(raftpb::MSG_APP, 2, 1, 9);
  app.set_index(1);
  *app.add_entries() = E(3, 9);
  EXPECT_FALSE(node.Step(app).ok()) << "entries out of order";

  raftpb::Message snap = rafttest::MakeMessage(raftpb::MSG_SNAP, 2, 1, 3);
  EXPECT_FALSE(node.Step(snap).ok()) << "no snapshot in it";
  snap.mutable_snapshot()->mutable_metadata()->set_index(10);
  snap.mutable_snapshot()->mutable_metadata()->set_term(5);
  EXPECT_FALSE(node.Step(snap).ok()) << "snapshot term above the message term";

  raftpb::Message prop = rafttest::MakeMessage(raftpb::MSG_PROP, 2, 1, 0);
  EXPECT_FALSE(node.Step(prop).ok()) << "empty proposal";
}

TEST(NodeStep, ProtocolViolationsAreErrorsNotCrashes) {
  // An acknowledgement for an index the leader never had.
  Node leader = SingleLeader();
  raftpb::Message resp = rafttest::MakeMessage(raftpb::MSG_APP_RESP, 2, 1, leader.Status().term);
  resp.set_index(1000);
  // Node 2 is not a member, so there is no progress for it: ignored.
  EXPECT_TRUE(leader.Step(resp).ok());

  // A follower with committed entries receiving a conflicting append.
  DurableState durable = MemoryStorage::Bootstrap({1, 2, 3}).ToDurable();
  durable.entries = {E(2, 1, "a"), E(3, 1, "b")};
  durable.hard_state.set_term(1);
  durable.hard_state.set_commit(3);
  Node follower = *Node::Start(TestConfig(1), durable);
  raftpb::Message app = AppendSecond(2, 1, 2, "rewritten");
  // The append starts below the commit index: it is answered with the
  // commit index and nothing committed is rewritten.
  EXPECT_TRUE(follower.Step(app).ok());
  app.set_index(2);
  app.set_log_term(1);
  app.clear_entries();
  *app.add_entries() = E(3, 2, "rewritten");
  EXPECT_TRUE(follower.Step(app).ok());
  Ready ready = follower.GetReady();
  EXPECT_TRUE(ready.entries.empty());
  ASSERT_EQ(ready.messages.size(), 2u);
  EXPECT_EQ(ready.messages[1].index(), 3u) << "acknowledges its commit index";
  follower.Advance(ready);

  raftpb::Message heartbeat = rafttest::MakeMessage(raftpb::MSG_HEARTBEAT, 2, 1, 2);
  heartbeat.set_commit(99);
  EXPECT_EQ(follower.Step(heartbeat).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(follower.Status().commit, 3u);
}

TEST(NodeReady, CommittedEntriesFollowPersistenceForASingleVoter) {
  Node node = SingleLeader();
  ASSERT_TRUE(node.Propose("x").ok());
  Ready first = node.GetReady();
  ASSERT_EQ(first.entries.size(), 1u);
  EXPECT_TRUE(first.must_sync);
  EXPECT_TRUE(first.committed_entries.empty()) << "not durable yet, so not committed";
  node.Advance(first);
  Ready second = node.GetReady();
  ASSERT_EQ(second.committed_entries.size(), 1u);
  EXPECT_EQ(second.committed_entries[0].data(), "x");
  EXPECT_FALSE(second.must_sync) << "only the commit index changed";
  node.Advance(second);
  EXPECT_FALSE(node.HasReady());
}

TEST(NodeReady, EntriesReplacedWhileTheirWriteIsInFlightStayUnstable) {
  // Raft-traps #19: a write of entry 2 (term 2) is in flight when the leader
  // of term 3 replaces entry 2. The write finishing must not make the new
  // entry 2 count as durable: it still has to be written.
  DurableState durable = MemoryStorage::Bootstrap({1, 2, 3}).ToDurable();
  Node follower = *Node::Start(TestConfig(1), durable);
  raftpb::Message old_app = AppendSecond(2, 1, 2, "old");
  ASSERT_TRUE(follower.Step(old_app).ok());
  Ready in_flight = follower.GetReady();
  ASSERT_EQ(in_flight.entries.size(), 1u);

  raftpb::Message new_app = AppendSecond(3, 1, 3, "new");
  ASSERT_TRUE(follower.Step(new_app).ok());
  follower.Advance(in_flight);
  EXPECT_EQ(follower.Status().stable, 1u);
  Ready next = follower.GetReady();
  ASSERT_EQ(next.entries.size(), 1u);
  EXPECT_EQ(next.entries[0].term(), 3u);
  EXPECT_EQ(next.entries[0].data(), "new");
}

TEST(NodeReady, AcknowledgementsOfReplacedEntriesAreWithdrawn) {
  // Found by the simulator (seed 9898, raft-traps #19): entry 2 of term 2
  // arrives and is acknowledged, but before that Ready is taken, the leader
  // of term 3 replaces entry 2. The Ready persists the replacement; the old
  // acknowledgement, sent after it, would promise an entry the disk no
  // longer holds (and the old leader could count it toward a commit).
  DurableState durable = MemoryStorage::Bootstrap({1, 2, 3}).ToDurable();
  Node follower = *Node::Start(TestConfig(1), durable);
  raftpb::Message old_app = AppendSecond(2, 1, 2, "old");
  ASSERT_TRUE(follower.Step(old_app).ok());
  raftpb::Message new_app = AppendSecond(3, 1, 3, "new");
  ASSERT_TRUE(follower.Step(new_app).ok());
  Ready ready = follower.GetReady();
  ASSERT_EQ(ready.entries.size(), 1u);
  EXPECT_EQ(ready.entries[0].term(), 3u);
  int acks = 0;
  for (const raftpb::Message& m : ready.messages) {
    if (m.type() != raftpb::MSG_APP_RESP || m.reject()) continue;
    ++acks;
    EXPECT_EQ(m.to(), 3u) << "the acknowledgement to the old leader must be withdrawn";
    EXPECT_EQ(m.index(), 2u);
  }
  EXPECT_EQ(acks, 1);
}

// Messages of `ready` that MayPrecedePersist, by type.
std::vector<raftpb::MessageType> EarlyTypes(const Ready& ready) {
  std::vector<raftpb::MessageType> early;
  for (const raftpb::Message& m : ready.messages) {
    if (ready.MayPrecedePersist(m)) early.push_back(m.type());
  }
  return early;
}

TEST(NodeReady, OnlyASettledLeadersAppendsMayPrecedePersistence) {
  DurableState durable = MemoryStorage::Bootstrap({1, 2, 3}).ToDurable();
  Node node = *Node::Start(TestConfig(1), durable);
  ASSERT_TRUE(node.Campaign().ok());
  // Pre-vote, then the vote: the term and vote must be durable before any
  // vote request leaves.
  Ready pre_vote = node.GetReady();
  EXPECT_TRUE(EarlyTypes(pre_vote).empty());
  node.Advance(pre_vote);
  ASSERT_TRUE(node.Step(rafttest::MakeMessage(raftpb::MSG_PRE_VOTE_RESP, 2, 1, 2)).ok());
  Ready vote = node.GetReady();
  ASSERT_TRUE(vote.hard_state.has_value());
  EXPECT_TRUE(EarlyTypes(vote).empty());
  node.Advance(vote);
  ASSERT_TRUE(node.Step(rafttest::MakeMessage(raftpb::MSG_VOTE_RESP, 2, 1, 2)).ok());
  ASSERT_EQ(node.Status().role, Role::kLeader);
  // The new leader's no-op and its appends: the term was durable before
  // the votes were asked for, so the appends may go while the no-op is
  // being written.
  Ready first = node.GetReady();
  ASSERT_EQ(first.entries.size(), 1u);
  EXPECT_EQ(EarlyTypes(first),
            (std::vector<raftpb::MessageType>{raftpb::MSG_APP, raftpb::MSG_APP}));
  node.Advance(first);
  for (NodeId follower : {2, 3}) {
    raftpb::Message ack = rafttest::MakeMessage(raftpb::MSG_APP_RESP, follower, 1, 2);
    ack.set_index(2);
    ASSERT_TRUE(node.Step(ack).ok());
  }
  node.Advance(node.GetReady());
  ASSERT_TRUE(node.Propose("x").ok());
  Ready second = node.GetReady();
  EXPECT_EQ(EarlyTypes(second).size(), 2u);
  EXPECT_FALSE(second.committed_entries.size() > 0 && second.entries.size() > 0 &&
               second.committed_entries.back().index() >= second.entries.front().index())
      << "nothing is committed before the leader's own write is durable";
  node.Advance(second);

  // A leader of a higher term deposes it: the step-down Ready changes the
  // term, which must be durable before it answers.
  raftpb::Message higher = rafttest::MakeMessage(raftpb::MSG_APP, 3, 1, 5);
  higher.set_index(1);
  higher.set_log_term(1);
  ASSERT_TRUE(node.Step(higher).ok());
  Ready deposed = node.GetReady();
  ASSERT_TRUE(deposed.hard_state.has_value());
  EXPECT_FALSE(deposed.messages.empty());
  EXPECT_TRUE(EarlyTypes(deposed).empty());
}

TEST(NodeReady, AFollowersAcknowledgementsWaitForPersistence) {
  DurableState durable = MemoryStorage::Bootstrap({1, 2, 3}).ToDurable();
  Node follower = *Node::Start(TestConfig(2), durable);
  raftpb::Message app = AppendSecond(1, 2, 2, "x");
  ASSERT_TRUE(follower.Step(app).ok());
  Ready ready = follower.GetReady();
  ASSERT_FALSE(ready.messages.empty());
  EXPECT_TRUE(EarlyTypes(ready).empty());
}

TEST(NodeReady, ASingleVotersFirstReadyWaitsForItsNewTerm) {
  // Campaigning and winning in one step: the term is not durable yet, so
  // nothing (an append to a learner, say) may precede the write; else a
  // crash could let it lead the same term again with another log.
  Node node = *Node::Start(TestConfig(1), MemoryStorage::Bootstrap({1}).ToDurable());
  ASSERT_TRUE(node.Campaign().ok());
  ASSERT_EQ(node.Status().role, Role::kLeader);
  Ready ready = node.GetReady();
  EXPECT_FALSE(ready.from_settled_leader);
}

TEST(NodeCampaign, WithLeaseReadsNoCampaignWhileALeaderWasHeardFrom) {
  // Found by the randomized property test: a follower that campaigned on
  // request won with a peer that had lost touch, while the leader it had
  // just acknowledged still served lease reads from its old state.
  Config config = TestConfig(2);
  config.check_quorum = true;
  config.read_only = ReadOnlyOption::kLeaseBased;
  Node follower = *Node::Start(config, MemoryStorage::Bootstrap({1, 2, 3}).ToDurable());
  // Past the start-up quiet period, then a heartbeat from leader 1.
  for (int i = 0; i < 2 * config.election_timeout_ticks; ++i) follower.Tick();
  raftpb::Message heartbeat = rafttest::MakeMessage(raftpb::MSG_HEARTBEAT, 1, 2, 5);
  ASSERT_TRUE(follower.Step(heartbeat).ok());
  while (follower.HasReady()) follower.Advance(follower.GetReady());
  absl::Status refused = follower.Campaign();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(follower.Status().role, Role::kFollower);
  // With safe (ReadIndex) reads, nothing relies on it: campaigning is fine.
  config.read_only = ReadOnlyOption::kSafe;
  Node safe = *Node::Start(config, MemoryStorage::Bootstrap({1, 2, 3}).ToDurable());
  ASSERT_TRUE(safe.Step(heartbeat).ok());
  EXPECT_TRUE(safe.Campaign().ok());
}

TEST(NodeReady, HasReadyIsFalseWhileAReadyIsOutstanding) {
  Node node = SingleLeader();
  ASSERT_TRUE(node.Propose("x").ok());
  ASSERT_TRUE(node.HasReady());
  Ready ready = node.GetReady();
  EXPECT_FALSE(node.HasReady());
  node.Advance(ready);
  EXPECT_TRUE(node.HasReady());
}

TEST(NodeReadyDeathTest, GetReadyTwiceWithoutAdvanceCrashes) {
  Node node = SingleLeader();
  ASSERT_TRUE(node.Propose("x").ok());
  (void)node.GetReady();
  EXPECT_DEATH((void)node.GetReady(), "GetReady called twice without Advance");
}

TEST(NodeSnapshot, PreconditionsAreStatuses) {
  Node node = SingleLeader();
  ASSERT_TRUE(node.Propose("x").ok());
  node.Advance(node.GetReady());
  node.Advance(node.GetReady());
  Index applied = node.Status().applied;
  EXPECT_EQ(node.CreateSnapshot(applied + 1, "s").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(node.Compact(applied).code(), absl::StatusCode::kFailedPrecondition)
      << "compacting without a snapshot";
  auto snapshot = node.CreateSnapshot(applied, "state");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ((*snapshot)->metadata().index(), applied);
  EXPECT_EQ((*snapshot)->metadata().conf_state().voters_size(), 1);
  EXPECT_FALSE(node.CreateSnapshot(applied, "again").ok()) << "not newer";
  EXPECT_TRUE(node.Compact(applied).ok());
  EXPECT_EQ(node.Status().first_index, applied + 1);
}

TEST(NodeSnapshot, NoSnapshotBelowAnAppliedConfChange) {
  Node node = SingleLeader();
  raftpb::ConfChange add_learner;
  raftpb::ConfChangeSingle* single = add_learner.add_changes();
  single->set_type(raftpb::ADD_LEARNER_NODE);
  single->set_node_id(2);
  ASSERT_TRUE(node.ProposeConfChange(add_learner).ok());
  node.Advance(node.GetReady());
  Ready ready = node.GetReady();
  ASSERT_EQ(ready.committed_entries.size(), 1u);
  Index before = node.Status().applied;
  ASSERT_TRUE(node.ApplyConfChange(add_learner).ok());
  // Applied but not yet acknowledged: the old index must not get the new
  // configuration.
  EXPECT_EQ(node.CreateSnapshot(before, "").status().code(), absl::StatusCode::kFailedPrecondition);
  node.Advance(ready);
  auto snapshot = node.CreateSnapshot(node.Status().applied, "");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ((*snapshot)->metadata().conf_state().learners_size(), 1);
}

// The application holds the one copy of a snapshot's data; the node keeps
// the metadata, whether it made the snapshot or received it.
TEST(NodeSnapshot, TheNodeKeepsTheMetadataNotTheData) {
  Node node = SingleLeader();
  ASSERT_TRUE(node.Propose("x").ok());
  node.Advance(node.GetReady());
  node.Advance(node.GetReady());
  auto made = node.CreateSnapshot(node.Status().applied, "state");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ((*made)->data(), "state");
  ASSERT_NE(node.raft().snapshot(), nullptr);
  EXPECT_EQ(node.raft().snapshot()->metadata().index(), (*made)->metadata().index());
  EXPECT_TRUE(node.raft().snapshot()->data().empty());

  Node follower = *Node::Start(TestConfig(2), MemoryStorage::Bootstrap({1, 2}).ToDurable());
  raftpb::Message snap = rafttest::MakeMessage(raftpb::MSG_SNAP, 1, 2, 2);
  snap.mutable_snapshot()->mutable_metadata()->set_index(5);
  snap.mutable_snapshot()->mutable_metadata()->set_term(2);
  snap.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(1);
  snap.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(2);
  snap.mutable_snapshot()->set_data("leader state");
  ASSERT_TRUE(follower.Step(snap).ok());
  Ready ready = follower.GetReady();
  ASSERT_NE(ready.snapshot, nullptr);
  EXPECT_EQ(ready.snapshot->data(), "leader state");
  follower.Advance(ready);
  ASSERT_NE(follower.raft().snapshot(), nullptr);
  EXPECT_EQ(follower.raft().snapshot()->metadata().index(), 5u);
  EXPECT_TRUE(follower.raft().snapshot()->data().empty());
}

TEST(NodePropose, StatusesSayWhyAProposalWasDropped) {
  Node follower = *Node::Start(TestConfig(1), MemoryStorage::Bootstrap({1, 2, 3}).ToDurable());
  absl::Status status = follower.Propose("x");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("no leader"), std::string::npos);
  EXPECT_FALSE(follower.ProposeBatch({}).ok());

  Config limited = TestConfig(1);
  limited.pre_vote = false;
  limited.max_uncommitted_payload_bytes = 4;
  Node leader = *Node::Start(limited, MemoryStorage::Bootstrap({1, 2, 3}).ToDurable());
  ASSERT_TRUE(leader.Campaign().ok());
  // Win the election by hand.
  for (NodeId voter : {2, 3}) {
    raftpb::Message vote =
        rafttest::MakeMessage(raftpb::MSG_VOTE_RESP, voter, 1, leader.Status().term);
    ASSERT_TRUE(leader.Step(vote).ok());
  }
  ASSERT_EQ(leader.Status().role, Role::kLeader);
  EXPECT_TRUE(leader.Propose("abc").ok());
  EXPECT_EQ(leader.Propose("de").code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace etc::raft
