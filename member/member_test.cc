// The member glue with a hand-driven host: a transport that collects
// messages, a store whose writes complete when the test says so, and a tiny
// key-value state machine ("key=value" commands, queries by key).
#include "member/member.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "member/member.pb.h"
#include "member/testing/fake_host.h"
#include "raft/memory_storage.h"

namespace etc::member {
namespace {

using fake::FakeStore;
using fake::Outbox;

class KvMachine : public StateMachine {
 public:
  std::string Apply(uint64_t index, std::string_view command) override {
    last_applied = index;
    std::vector<std::string> parts =
        absl::StrSplit(absl::string_view(command.data(), command.size()), absl::MaxSplits('=', 1));
    if (parts.size() != 2) return "bad";
    values[parts[0]] = parts[1];
    return "applied " + std::string(command);
  }
  absl::StatusOr<std::string> Query(std::string_view key) const override {
    auto it = values.find(std::string(key));
    return it == values.end() ? std::string("<absent>") : it->second;
  }
  std::string Snapshot() const override {
    std::string out;
    for (const auto& [k, v] : values) out += k + "=" + v + "\n";
    return out;
  }
  absl::Status CheckSnapshot(std::string_view data) const override {
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(data.data(), data.size()), '\n', absl::SkipEmpty())) {
      if (!absl::StrContains(line, '=')) return absl::DataLossError("bad snapshot line");
    }
    return absl::OkStatus();
  }
  absl::Status Restore(std::string_view data) override {
    values.clear();
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(data.data(), data.size()), '\n', absl::SkipEmpty())) {
      std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits('=', 1));
      if (parts.size() != 2) return absl::DataLossError("bad snapshot line");
      values[parts[0]] = parts[1];
    }
    ++restores;
    return absl::OkStatus();
  }
  // With `background_snapshots`, SnapshotAsync keeps the snapshot of the
  // state at the call and hands it over only when the test says so.
  void SnapshotAsync(SnapshotFinish finish, SnapshotDone done) override {
    if (!background_snapshots) {
      done(WrapSnapshot(finish, Snapshot()));
      return;
    }
    pending_snapshots.push_back({Snapshot(), std::move(finish), std::move(done)});
    snapshot_began_at = last_applied;
  }
  void FinishSnapshots() {
    auto pending = std::move(pending_snapshots);
    pending_snapshots.clear();
    for (PendingSnapshot& snapshot : pending) {
      snapshot.done(WrapSnapshot(snapshot.finish, std::move(snapshot.data)));
    }
  }

  std::map<std::string, std::string> values;
  int restores = 0;
  bool background_snapshots = false;
  uint64_t last_applied = 0;
  uint64_t snapshot_began_at = 0;
  // The state as of each snapshot's call, wrapped only as it is handed over.
  struct PendingSnapshot {
    std::string data;
    SnapshotFinish finish;
    SnapshotDone done;
  };
  std::vector<PendingSnapshot> pending_snapshots;
};

struct Host {
  FakeStore store;
  Outbox outbox{&store};
  KvMachine machine;
  MemberConfig config;
  std::unique_ptr<Member> member;
};

class Cluster {
 public:
  explicit Cluster(int size, uint64_t snapshot_every = 0) {
    std::vector<raft::NodeId> voters;
    for (int i = 1; i <= size; ++i) voters.push_back(i);
    for (int i = 1; i <= size; ++i) {
      auto host = std::make_unique<Host>();
      host->config.raft.id = i;
      host->config.raft.random_seed = 5;
      host->config.snapshot_every_entries = snapshot_every;
      host->config.catch_up_entries = 2;
      host->store.durable = raft::MemoryStorage::Bootstrap(voters);
      Start(*host);
      hosts.push_back(std::move(host));
    }
  }

  void Start(Host& host) {
    host.machine = KvMachine();
    auto member = Member::Start(host.config, host.store.durable.ToDurable(), &host.outbox,
                                &host.store, &host.machine);
    ASSERT_TRUE(member.ok()) << member.status();
    host.member = std::move(*member);
  }

  Member& at(raft::NodeId id) { return *hosts[id - 1]->member; }
  Host& host(raft::NodeId id) { return *hosts[id - 1]; }

  // Completes every write and delivers every message until nothing moves.
  void Settle() {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      for (auto& host : hosts) {
        while (host->member && !host->store.pending.empty()) {
          host->member->OnPersisted(host->store.CompleteOne());
          moved = true;
        }
      }
      for (auto& host : hosts) {
        std::vector<raftpb::Message> messages = std::move(host->outbox.messages);
        host->outbox.messages.clear();
        for (raftpb::Message& m : messages) {
          moved = true;
          if (m.to() < 1 || m.to() > hosts.size()) continue;  // a member not hosted here
          Host& to = *hosts[m.to() - 1];
          if (to.member) {
            EXPECT_TRUE(to.member->Receive(m).ok());
          }
        }
      }
      if (!moved) return;
    }
    FAIL() << "did not settle";
  }

  raft::NodeId ElectLeader() {
    EXPECT_TRUE(at(1).Campaign().ok());
    Settle();
    EXPECT_EQ(at(1).Status().role, raft::Role::kLeader);
    return 1;
  }

  std::vector<std::unique_ptr<Host>> hosts;
};

raftpb::ConfChange RemoveNode(raft::NodeId id) {
  raftpb::ConfChange change;
  raftpb::ConfChangeSingle* single = change.add_changes();
  single->set_type(raftpb::REMOVE_NODE);
  single->set_node_id(id);
  return change;
}

// Records a callback's result.
struct Result {
  Callback callback() {
    return [this](absl::StatusOr<std::string> r) {
      ++calls;
      value = std::move(r);
    };
  }
  int calls = 0;
  absl::StatusOr<std::string> value = absl::UnknownError("not called");
};

std::vector<raftpb::Message> Take(Cluster& cluster, raft::NodeId from,
                                  std::vector<raftpb::MessageType> types);
void Deliver(Cluster& cluster, const std::vector<raftpb::Message>& messages);

TEST(Member, WriteThroughLeaderAndFollowerIsAppliedEverywhere) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Result on_leader, on_follower;
  cluster.at(1).Write("x=1", on_leader.callback());
  cluster.at(2).Write("y=2", on_follower.callback());
  cluster.Settle();
  EXPECT_EQ(on_leader.calls, 1);
  EXPECT_EQ(*on_leader.value, "applied x=1");
  EXPECT_EQ(on_follower.calls, 1);
  EXPECT_EQ(*on_follower.value, "applied y=2");
  for (raft::NodeId id : {1, 2, 3}) {
    EXPECT_EQ(cluster.host(id).machine.values.at("x"), "1");
    EXPECT_EQ(cluster.host(id).machine.values.at("y"), "2");
  }
}

TEST(Member, ALeadersAppendsOverlapItsWriteButNothingCommitsBeforeIt) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Result result;
  cluster.at(1).Write("x=1", result.callback());
  // The leader handed its Ready to the store and sent the appends at once
  // (Raft thesis 10.2.1): its followers write while it writes.
  ASSERT_EQ(cluster.host(1).store.pending.size(), 1u);
  std::vector<raftpb::Message> appends = Take(cluster, 1, {raftpb::MSG_APP});
  ASSERT_EQ(appends.size(), 2u);
  Deliver(cluster, appends);
  // A follower acknowledges only once its own write is durable.
  for (raft::NodeId follower : {2, 3}) {
    ASSERT_EQ(cluster.host(follower).store.pending.size(), 1u);
    EXPECT_TRUE(cluster.host(follower).outbox.messages.empty());
    cluster.at(follower).OnPersisted(cluster.host(follower).store.CompleteOne());
    Deliver(cluster, Take(cluster, follower, {raftpb::MSG_APP_RESP}));
  }
  // Both followers hold it, so it is committed, but the leader applies
  // nothing (and answers nobody) before its own write is durable.
  EXPECT_EQ(result.calls, 0);
  EXPECT_FALSE(cluster.host(1).machine.values.contains("x"));
  cluster.at(1).OnPersisted(cluster.host(1).store.CompleteOne());
  cluster.Settle();
  EXPECT_EQ(result.calls, 1);
  EXPECT_EQ(cluster.host(1).machine.values.at("x"), "1");
}

TEST(Member, ReadsAreLinearizableFromAnyMember) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Result write, read_leader, read_follower, absent;
  cluster.at(1).Write("k=v", write.callback());
  cluster.Settle();
  cluster.at(1).Read("k", read_leader.callback());
  cluster.at(3).Read("k", read_follower.callback());
  cluster.at(3).Read("nothing", absent.callback());
  cluster.Settle();
  EXPECT_EQ(*read_leader.value, "v");
  EXPECT_EQ(*read_follower.value, "v");
  EXPECT_EQ(*absent.value, "<absent>");
}

// Completes writes and delivers messages among `members` only; returns the
// messages to anyone else, undelivered.
std::vector<raftpb::Message> SettleAmong(Cluster& cluster, std::vector<raft::NodeId> members) {
  auto inside = [&](raft::NodeId id) {
    return std::find(members.begin(), members.end(), id) != members.end();
  };
  std::vector<raftpb::Message> held;
  for (int round = 0; round < 100; ++round) {
    bool moved = false;
    for (raft::NodeId id : members) {
      Host& host = cluster.host(id);
      while (!host.store.pending.empty()) {
        host.member->OnPersisted(host.store.CompleteOne());
        moved = true;
      }
      std::vector<raftpb::Message> messages = std::move(host.outbox.messages);
      host.outbox.messages.clear();
      for (raftpb::Message& m : messages) {
        if (!inside(m.to())) {
          held.push_back(std::move(m));
          continue;
        }
        moved = true;
        EXPECT_TRUE(cluster.at(m.to()).Receive(m).ok());
      }
    }
    if (!moved) break;
  }
  return held;
}

TEST(Member, AReadIsNeverAnsweredWithAReadIndexAskedForBeforeIt) {
  // Reads share ReadIndex requests, but only those that arrived before the
  // request went: a later read's index must cover what completed before it.
  Cluster cluster(3);
  cluster.ElectLeader();
  Result write;
  cluster.at(1).Write("k=1", write.callback());
  cluster.Settle();
  // Follower 3 asks for a read index; the leader confirms its leadership
  // with member 2 and answers, but the answer is held back.
  Result first;
  cluster.at(3).Read("k", first.callback());
  std::vector<raftpb::Message> asked = Take(cluster, 3, {raftpb::MSG_READ_INDEX});
  ASSERT_EQ(asked.size(), 1u);
  Deliver(cluster, asked);
  std::vector<raftpb::Message> held = SettleAmong(cluster, {1, 2});
  // Meanwhile k=2 completes through members 1 and 2, and only then does a
  // second read start on member 3, which has not even seen k=2.
  Result overwrite;
  cluster.at(1).Write("k=2", overwrite.callback());
  SettleAmong(cluster, {1, 2});  // what it sends member 3 is lost
  ASSERT_EQ(overwrite.calls, 1);
  Result second, third;
  cluster.at(3).Read("k", second.callback());
  cluster.at(3).Read("k", third.callback());
  EXPECT_TRUE(Take(cluster, 3, {raftpb::MSG_READ_INDEX}).empty())
      << "one ReadIndex outstanding at a time; the later reads wait for the next";
  // The old answer arrives: it serves the first read only.
  std::vector<raftpb::Message> answers;
  for (raftpb::Message& m : held) {
    if (m.type() == raftpb::MSG_READ_INDEX_RESP) answers.push_back(m);
  }
  ASSERT_EQ(answers.size(), 1u);
  Deliver(cluster, answers);
  EXPECT_EQ(first.calls, 1);
  EXPECT_EQ(*first.value, "1");
  EXPECT_EQ(second.calls, 0) << "answered from an index asked for before it began";
  cluster.Settle();
  EXPECT_EQ(second.calls, 1);
  EXPECT_EQ(*second.value, "2");
  EXPECT_EQ(*third.value, "2");
  EXPECT_EQ(cluster.at(3).pending_requests(), 0u);
}

TEST(Member, ALostReadIndexIsAskedAgain) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Result read, later;
  cluster.at(3).Read("k", read.callback());
  ASSERT_EQ(Take(cluster, 3, {raftpb::MSG_READ_INDEX}).size(), 1u);  // lost
  cluster.at(3).Read("k", later.callback());
  for (int tick = 0; tick < 3 * cluster.host(3).config.raft.election_timeout_ticks; ++tick) {
    for (raft::NodeId id : {1, 2, 3}) cluster.at(id).Tick();
    cluster.Settle();
  }
  EXPECT_EQ(read.calls, 1);
  EXPECT_EQ(later.calls, 1);
  EXPECT_EQ(*read.value, "<absent>");
}

TEST(Member, RequestsWithoutALeaderFailAsUnavailable) {
  Cluster cluster(3);
  Result write, read;
  cluster.at(2).Write("x=1", write.callback());
  cluster.at(2).Read("x", read.callback());
  EXPECT_EQ(write.calls, 1);
  EXPECT_EQ(write.value.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(read.value.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cluster.at(2).pending_requests(), 0u);
}

// Takes host `from`'s outgoing messages of the given types, leaving the rest.
std::vector<raftpb::Message> Take(Cluster& cluster, raft::NodeId from,
                                  std::vector<raftpb::MessageType> types) {
  std::vector<raftpb::Message> taken, kept;
  for (raftpb::Message& m : cluster.host(from).outbox.messages) {
    bool wanted = std::find(types.begin(), types.end(), m.type()) != types.end();
    (wanted ? taken : kept).push_back(std::move(m));
  }
  cluster.host(from).outbox.messages = std::move(kept);
  return taken;
}

void Deliver(Cluster& cluster, const std::vector<raftpb::Message>& messages) {
  for (const raftpb::Message& m : messages) ASSERT_TRUE(cluster.at(m.to()).Receive(m).ok());
}

// Starts a transfer from leader 1 to 3 that cannot finish while the test
// holds back the leader's messages: meanwhile the leader refuses proposals.
void StartSlowTransfer(Cluster& cluster) {
  ASSERT_TRUE(cluster.at(1).TransferLeadership(3).ok());
}

TEST(Member, ARefusedProposalIsProposedAgainUntilALeaderTakesIt) {
  Cluster cluster(3);
  cluster.ElectLeader();
  StartSlowTransfer(cluster);
  Result forwarded;
  cluster.at(2).Write("x=1", forwarded.callback());
  Deliver(cluster, Take(cluster, 2, {raftpb::MSG_PROP}));
  Deliver(cluster, Take(cluster, 1, {raftpb::MSG_PROP_RESP}));
  // Refused, but the network might have delivered another copy the leader
  // took: it stays open and is proposed again.
  EXPECT_EQ(forwarded.calls, 0);
  EXPECT_EQ(cluster.at(2).refused_proposals(), 1u);
  cluster.Settle();  // the transfer completes: 3 leads
  ASSERT_EQ(cluster.at(3).Status().role, raft::Role::kLeader);
  cluster.at(2).Tick();
  cluster.Settle();
  EXPECT_EQ(forwarded.calls, 1);
  EXPECT_EQ(*forwarded.value, "applied x=1");
  EXPECT_EQ(cluster.at(2).refused_proposals(), 0u);
  for (raft::NodeId id : {1, 2, 3}) EXPECT_EQ(cluster.host(id).machine.values.at("x"), "1");
}

// Member 2 writes x=1 through the leader, then the leader writes x=2; returns
// member 2's forwarded proposal, to deliver again later.
std::vector<raftpb::Message> ForwardedWriteThenAnother(Cluster& cluster, Result& first,
                                                       Result& second) {
  cluster.at(2).Write("x=1", first.callback());
  std::vector<raftpb::Message> forward = Take(cluster, 2, {raftpb::MSG_PROP});
  EXPECT_EQ(forward.size(), 1u);
  Deliver(cluster, forward);
  cluster.Settle();
  cluster.at(1).Write("x=2", second.callback());
  cluster.Settle();
  return forward;
}

TEST(Member, AProposalDeliveredTwiceTakesEffectOnce) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Result first, second;
  std::vector<raftpb::Message> forward = ForwardedWriteThenAnother(cluster, first, second);
  // A late duplicate of the first forward reaches the leader, which appends
  // it again; applying it would undo the later write.
  Deliver(cluster, forward);
  cluster.Settle();
  EXPECT_EQ(first.calls, 1);
  EXPECT_EQ(*first.value, "applied x=1");
  for (raft::NodeId id : {1, 2, 3}) EXPECT_EQ(cluster.host(id).machine.values.at("x"), "2");
}

TEST(Member, AProposalRefusedOnceAndTakenOnceCompletesWithItsResult) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Result forwarded;
  cluster.at(2).Write("x=1", forwarded.callback());
  std::vector<raftpb::Message> forward = Take(cluster, 2, {raftpb::MSG_PROP});
  Deliver(cluster, forward);  // the leader takes this copy
  StartSlowTransfer(cluster);
  Deliver(cluster, forward);  // and refuses the duplicate
  Deliver(cluster, Take(cluster, 1, {raftpb::MSG_PROP_RESP}));
  EXPECT_EQ(forwarded.calls, 0);
  cluster.Settle();
  cluster.at(2).Tick();  // proposes it again: a third copy, skipped too
  cluster.Settle();
  EXPECT_EQ(forwarded.calls, 1);
  EXPECT_EQ(*forwarded.value, "applied x=1");
}

TEST(Member, AProposalRefusedForTooLongFailsWithUnknownOutcome) {
  Cluster cluster(3);
  cluster.host(2).config.refused_retry_ticks = 3;
  cluster.Start(cluster.host(2));
  cluster.ElectLeader();
  StartSlowTransfer(cluster);
  Result forwarded;
  cluster.at(2).Write("x=1", forwarded.callback());
  for (int tick = 0; tick < 5 && forwarded.calls == 0; ++tick) {
    Deliver(cluster, Take(cluster, 2, {raftpb::MSG_PROP}));
    Deliver(cluster, Take(cluster, 1, {raftpb::MSG_PROP_RESP}));
    cluster.at(2).Tick();
  }
  EXPECT_EQ(forwarded.calls, 1);
  EXPECT_EQ(forwarded.value.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(cluster.at(2).pending_requests(), 0u);
}

TEST(Member, ARestartedMemberStillSkipsDuplicatesAppliedBeforeItsSnapshot) {
  Cluster cluster(3, /*snapshot_every=*/1);
  cluster.ElectLeader();
  Result first, second;
  std::vector<raftpb::Message> forward = ForwardedWriteThenAnother(cluster, first, second);
  Host& three = cluster.host(3);
  three.member.reset();
  cluster.Start(three);
  ASSERT_EQ(three.machine.restores, 1);
  Deliver(cluster, forward);
  cluster.Settle();
  for (raft::NodeId id : {1, 2, 3}) EXPECT_EQ(cluster.host(id).machine.values.at("x"), "2");
}

TEST(Member, SnapshotsAndCompactsAfterTheConfiguredNumberOfEntries) {
  Cluster cluster(3, /*snapshot_every=*/5);
  cluster.ElectLeader();
  for (int i = 0; i < 8; ++i) {
    Result result;
    cluster.at(1).Write("k" + std::to_string(i) + "=" + std::to_string(i), result.callback());
    cluster.Settle();
  }
  Host& leader = cluster.host(1);
  EXPECT_GE(leader.store.snapshots_saved, 1);
  EXPECT_GT(leader.store.compacted_to, 0u);
  EXPECT_EQ(leader.member->Status().first_index, leader.store.compacted_to + 1);
}

TEST(Member, ABackgroundSnapshotIsOfTheIndexItBeganAt) {
  Cluster cluster(3, /*snapshot_every=*/3);
  Host& leader = cluster.host(1);
  leader.machine.background_snapshots = true;
  cluster.ElectLeader();
  auto write = [&](int i) {
    Result result;
    cluster.at(1).Write("k" + std::to_string(i) + "=" + std::to_string(i), result.callback());
    cluster.Settle();
    ASSERT_EQ(result.calls, 1);
  };
  for (int i = 0; i < 3; ++i) write(i);
  ASSERT_TRUE(leader.member->snapshot_in_progress());
  ASSERT_EQ(leader.machine.pending_snapshots.size(), 1u);
  uint64_t began_at = leader.machine.snapshot_began_at;
  std::string state_then = leader.machine.pending_snapshots[0].data;
  // The member goes on applying while it is taken; one at a time.
  for (int i = 3; i < 7; ++i) write(i);
  EXPECT_EQ(leader.machine.pending_snapshots.size(), 1u);
  EXPECT_EQ(leader.store.snapshots_saved, 0);
  leader.machine.FinishSnapshots();
  ASSERT_EQ(leader.store.snapshots_saved, 1);
  EXPECT_EQ(leader.store.durable.snapshot.metadata().index(), began_at);
  EXPECT_FALSE(leader.member->snapshot_in_progress());
  memberpb::MemberSnapshot saved;
  ASSERT_TRUE(saved.ParseFromString(leader.store.durable.snapshot.data()));
  EXPECT_EQ(saved.application(), state_then);
  EXPECT_EQ(state_then.find("k6="), std::string::npos) << "the state as of its index";
  // A member restarted from it and the log after it ends where the others are.
  leader.member.reset();
  leader.machine.background_snapshots = false;
  cluster.Start(leader);
  EXPECT_EQ(leader.machine.restores, 1);
  cluster.Settle();
  for (int i = 0; i < 7; ++i) EXPECT_EQ(leader.machine.values.at("k" + std::to_string(i)), std::to_string(i));
}

TEST(Member, ABackgroundSnapshotOvertakenByAConfigurationChangeIsDropped) {
  Cluster cluster(3, /*snapshot_every=*/2);
  Host& leader = cluster.host(1);
  leader.machine.background_snapshots = true;
  cluster.ElectLeader();
  for (int i = 0; i < 2; ++i) {
    Result result;
    cluster.at(1).Write("k=" + std::to_string(i), result.callback());
    cluster.Settle();
  }
  ASSERT_TRUE(leader.member->snapshot_in_progress());
  // Raft cannot describe the configuration as of the snapshot's index any
  // more: the snapshot is dropped, and the next one is taken instead.
  Result removed;
  cluster.at(1).ChangeMembership(RemoveNode(3), removed.callback());
  cluster.Settle();
  ASSERT_TRUE(removed.value.ok()) << removed.value.status();
  leader.machine.FinishSnapshots();
  EXPECT_EQ(leader.store.snapshots_saved, 0);
  EXPECT_FALSE(leader.member->snapshot_in_progress());
  for (int i = 2; i < 5; ++i) {
    Result result;
    cluster.at(1).Write("k=" + std::to_string(i), result.callback());
    cluster.Settle();
  }
  leader.machine.FinishSnapshots();
  EXPECT_EQ(leader.store.snapshots_saved, 1);
}

TEST(Member, RestartRestoresTheStateMachineFromTheStore) {
  Cluster cluster(3, /*snapshot_every=*/3);
  cluster.ElectLeader();
  for (int i = 0; i < 6; ++i) {
    Result result;
    cluster.at(1).Write("k" + std::to_string(i) + "=" + std::to_string(i), result.callback());
    cluster.Settle();
  }
  Host& follower = cluster.host(2);
  follower.member.reset();
  cluster.Start(follower);
  EXPECT_EQ(follower.machine.restores, 1);
  cluster.Settle();
  // The snapshot brought part of the state back, the log tail the rest.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(follower.machine.values.at("k" + std::to_string(i)), std::to_string(i));
  }
}

TEST(Member, AFollowerBehindTheCompactedLogGetsTheSnapshotDataFromTheLeadersStore) {
  Cluster cluster(3, /*snapshot_every=*/3);
  cluster.ElectLeader();
  Host& three = cluster.host(3);
  three.member.reset();
  for (int i = 0; i < 12; ++i) {
    Result result;
    cluster.at(1).Write("k" + std::to_string(i) + "=" + std::to_string(i), result.callback());
    cluster.Settle();
  }
  Host& leader = cluster.host(1);
  ASSERT_GT(leader.store.compacted_to, 2u);
  // The leader's Raft core holds the snapshot's metadata, not its data:
  // the one copy of the data is the store's.
  ASSERT_NE(leader.member->node().raft().snapshot(), nullptr);
  EXPECT_TRUE(leader.member->node().raft().snapshot()->data().empty());
  EXPECT_FALSE(leader.store.durable.snapshot.data().empty());
  cluster.Start(three);
  // Heartbeats find it; the leader probes, then sends the snapshot.
  for (int i = 0; i < 5; ++i) {
    cluster.at(1).Tick();
    cluster.Settle();
  }
  EXPECT_EQ(three.store.durable.snapshot.metadata().index(),
            leader.store.durable.snapshot.metadata().index());
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(three.machine.values.at("k" + std::to_string(i)), std::to_string(i));
  }
  EXPECT_TRUE(three.member->node().raft().snapshot()->data().empty());
}

TEST(Member, ASnapshotFromAPeerThatWouldNotRestoreIsRefusedBeforeItIsPersisted) {
  Cluster cluster(3, /*snapshot_every=*/3);
  cluster.ElectLeader();
  Host& three = cluster.host(3);
  three.member.reset();
  for (int i = 0; i < 12; ++i) {
    Result result;
    cluster.at(1).Write("k" + std::to_string(i) + "=" + std::to_string(i), result.callback());
    cluster.Settle();
  }
  cluster.Start(three);
  // Run the cluster, holding back the leader's snapshot for member 3.
  std::vector<raftpb::Message> snaps;
  for (int i = 0; i < 10 && snaps.empty(); ++i) {
    cluster.at(1).Tick();
    for (int round = 0; round < 50 && snaps.empty(); ++round) {
      for (raft::NodeId id : {1, 2, 3}) {
        Host& host = cluster.host(id);
        while (!host.store.pending.empty()) host.member->OnPersisted(host.store.CompleteOne());
      }
      std::vector<raftpb::Message> held = Take(cluster, 1, {raftpb::MSG_SNAP});
      snaps.insert(snaps.end(), held.begin(), held.end());
      for (raft::NodeId id : {1, 2, 3}) {
        std::vector<raftpb::Message> messages = std::move(cluster.host(id).outbox.messages);
        cluster.host(id).outbox.messages.clear();
        Deliver(cluster, messages);
      }
    }
  }
  ASSERT_EQ(snaps.size(), 1u);
  uint64_t durable_before = three.store.durable.snapshot.metadata().index();
  // Bytes that do not parse, and a parseable snapshot whose state machine
  // part would not restore: both refused, nothing persisted, no crash.
  raftpb::Message garbage = snaps[0];
  garbage.mutable_snapshot()->set_data("\xff\xff\xff");
  raftpb::Message bad_state = snaps[0];
  memberpb::MemberSnapshot member_data;
  ASSERT_TRUE(member_data.ParseFromString(snaps[0].snapshot().data()));
  member_data.set_application("no equals sign here\n");
  bad_state.mutable_snapshot()->set_data(member_data.SerializeAsString());
  for (const raftpb::Message& bad : {garbage, bad_state}) {
    absl::Status status = three.member->Receive(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_TRUE(three.store.pending.empty()) << "a refused snapshot went to the store";
  }
  EXPECT_EQ(three.store.durable.snapshot.metadata().index(), durable_before);
  // The real one is taken.
  ASSERT_TRUE(three.member->Receive(snaps[0]).ok());
  cluster.Settle();
  EXPECT_EQ(three.machine.values.at("k11"), "11");
}

TEST(Member, ARemovedMemberThatDoesNotKnowIsToldAndIgnored) {
  Cluster cluster(3, /*snapshot_every=*/2);
  cluster.ElectLeader();
  // Member 3 is down while it is removed.
  Host& three = cluster.host(3);
  three.member.reset();
  raftpb::ConfChange change = RemoveNode(3);
  Result result;
  cluster.at(1).ChangeMembership(change, result.callback());
  cluster.Settle();
  ASSERT_TRUE(result.value.ok()) << result.value.status();
  EXPECT_TRUE(cluster.at(1).removed_members().contains(3));
  // It restarts from what it persisted, unaware, and campaigns with a
  // higher term: the others ignore it and tell it.
  cluster.Start(three);
  EXPECT_FALSE(three.member->removed_from_cluster());
  ASSERT_TRUE(three.member->Campaign().ok());
  raft::Term term_before = cluster.at(1).Status().term;
  cluster.Settle();
  EXPECT_EQ(cluster.at(1).Status().role, raft::Role::kLeader);
  EXPECT_EQ(cluster.at(1).Status().term, term_before);
  EXPECT_TRUE(three.member->removed_from_cluster());
  // The others' knowledge survives snapshots and restarts.
  for (int i = 0; i < 4; ++i) {
    Result write;
    cluster.at(1).Write("k=" + std::to_string(i), write.callback());
    cluster.Settle();
  }
  Host& two = cluster.host(2);
  two.member.reset();
  cluster.Start(two);
  EXPECT_TRUE(two.member->removed_members().contains(3));
}

TEST(Member, AMemberThatAppliesItsOwnRemovalKnowsIt) {
  Cluster cluster(3);
  cluster.ElectLeader();
  raftpb::ConfChange change = RemoveNode(3);
  Result result;
  cluster.at(1).ChangeMembership(change, result.callback());
  cluster.Settle();
  EXPECT_TRUE(cluster.at(3).removed_from_cluster());
  EXPECT_FALSE(cluster.at(1).removed_from_cluster());
  // It serves no clients, but stays for the grace period.
  Result refused;
  cluster.at(3).Write("x=1", refused.callback());
  EXPECT_EQ(refused.value.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(cluster.at(3).ShouldShutDown());
  for (int i = 0; i < 20; ++i) cluster.at(3).Tick();
  cluster.Settle();
  EXPECT_TRUE(cluster.at(3).ShouldShutDown());
}

TEST(Member, ARemovedMemberStaysUntilAPeerAppliedItsRemoval) {
  // Two voters; 1 removes itself and applies that, but 2 has not learned
  // the removal committed. 2 cannot elect itself without 1's vote, so 1
  // must stay however long that takes.
  Cluster cluster(2);
  cluster.ElectLeader();
  Result result;
  cluster.at(1).ChangeMembership(RemoveNode(1), result.callback());
  // Commit and apply on 1 only: 2 acknowledges, then hears nothing more.
  for (int round = 0; round < 10; ++round) {
    while (!cluster.host(1).store.pending.empty()) {
      cluster.at(1).OnPersisted(cluster.host(1).store.CompleteOne());
    }
    while (!cluster.host(2).store.pending.empty()) {
      cluster.at(2).OnPersisted(cluster.host(2).store.CompleteOne());
    }
    Deliver(cluster, Take(cluster, 1, {raftpb::MSG_APP}));
    Deliver(cluster, Take(cluster, 2, {raftpb::MSG_APP_RESP}));
    if (cluster.at(1).removed_from_cluster()) break;
  }
  ASSERT_TRUE(cluster.at(1).removed_from_cluster());
  ASSERT_EQ(cluster.at(2).Status().config, "voters=(1 2)");
  cluster.host(1).outbox.messages.clear();
  cluster.host(2).outbox.messages.clear();
  for (int i = 0; i < 100; ++i) cluster.at(1).Tick();
  EXPECT_FALSE(cluster.at(1).ShouldShutDown());
  // 2 campaigns with 1's vote, commits the removal, applies it, and answers
  // 1's next question.
  cluster.host(1).outbox.messages.clear();
  ASSERT_TRUE(cluster.at(2).Campaign().ok());
  cluster.Settle();
  EXPECT_EQ(cluster.at(2).Status().config, "voters=(2)");
  for (int i = 0; i < 10; ++i) cluster.at(1).Tick();
  cluster.Settle();
  EXPECT_TRUE(cluster.at(1).ShouldShutDown());
}

TEST(Member, OnlyAVoterThatDurablyAppliedTheRemovalLetsTheRemovedMemberGo) {
  // Found by the simulator (seed 1294): voters 1 and 2, learner 3; leader 1
  // removes itself. A partition keeps 2 from learning that the removal
  // committed, while learner 3 applies it and says so. If 1 shut down on
  // the learner's word, 2 (configuration "1 2") could never be elected.
  Cluster cluster(3);
  cluster.ElectLeader();
  raftpb::ConfChange demote;
  raftpb::ConfChangeSingle* single = demote.add_changes();
  single->set_type(raftpb::ADD_LEARNER_NODE);
  single->set_node_id(3);
  Result demoted;
  cluster.at(1).ChangeMembership(demote, demoted.callback());
  cluster.Settle();
  ASSERT_EQ(cluster.at(2).Status().config, "voters=(1 2) learners=(3)");

  Result removed;
  cluster.at(1).ChangeMembership(RemoveNode(1), removed.callback());
  // 2 gets the entry and acknowledges it, then hears nothing more from 1.
  bool cut = false;
  for (int round = 0; round < 50; ++round) {
    for (raft::NodeId id : {1, 2, 3}) {
      while (!cluster.host(id).store.pending.empty()) {
        cluster.at(id).OnPersisted(cluster.host(id).store.CompleteOne());
      }
    }
    std::vector<raftpb::Message> from_leader = std::move(cluster.host(1).outbox.messages);
    cluster.host(1).outbox.messages.clear();
    for (const raftpb::Message& m : from_leader) {
      if (m.to() == 2 && cut) continue;
      ASSERT_TRUE(cluster.at(m.to()).Receive(m).ok());
    }
    for (raft::NodeId id : {2, 3}) {
      std::vector<raftpb::Message> out = std::move(cluster.host(id).outbox.messages);
      cluster.host(id).outbox.messages.clear();
      for (const raftpb::Message& m : out) {
        if (m.to() == 1 && m.type() == raftpb::MSG_APP_RESP && id == 2) cut = true;
        ASSERT_TRUE(cluster.at(m.to()).Receive(m).ok());
      }
    }
    if (cluster.at(3).Status().config == "voters=(2) learners=(3)") break;
  }
  ASSERT_EQ(cluster.at(3).Status().config, "voters=(2) learners=(3)");
  ASSERT_EQ(cluster.at(2).Status().config, "voters=(1 2) learners=(3)");
  // Plenty of time, with 1 and 3 talking freely and 2 cut off from 1.
  for (int tick = 0; tick < 100; ++tick) {
    cluster.at(1).Tick();
    for (raft::NodeId id : {1, 3}) {
      while (!cluster.host(id).store.pending.empty()) {
        cluster.at(id).OnPersisted(cluster.host(id).store.CompleteOne());
      }
      std::vector<raftpb::Message> out = std::move(cluster.host(id).outbox.messages);
      cluster.host(id).outbox.messages.clear();
      for (const raftpb::Message& m : out) {
        if (m.to() != 2) {
          ASSERT_TRUE(cluster.at(m.to()).Receive(m).ok());
        }
      }
    }
  }
  EXPECT_TRUE(cluster.at(1).removed_from_cluster());
  EXPECT_FALSE(cluster.at(1).ShouldShutDown());
  // Once 2 hears from 1 again, it learns the commit, applies the removal,
  // syncs, and confirms; only then may 1 go.
  cluster.host(2).outbox.messages.clear();
  for (int tick = 0; tick < 40 && !cluster.at(1).ShouldShutDown(); ++tick) {
    cluster.at(1).Tick();
    cluster.Settle();
  }
  EXPECT_EQ(cluster.at(2).Status().config, "voters=(2) learners=(3)");
  EXPECT_TRUE(cluster.at(1).ShouldShutDown());
}

TEST(Member, ARemovedLeaderLetsTheOthersCommitItsRemoval) {
  // The leader removes itself: the others must learn that the removal
  // committed, or they would keep counting it in their quorums.
  Cluster cluster(3);
  cluster.ElectLeader();
  raftpb::ConfChange change = RemoveNode(1);
  Result result;
  cluster.at(1).ChangeMembership(change, result.callback());
  cluster.Settle();
  EXPECT_TRUE(cluster.at(1).removed_from_cluster());
  EXPECT_EQ(cluster.at(2).Status().config, "voters=(2 3)");
  EXPECT_EQ(cluster.at(3).Status().config, "voters=(2 3)");
  // And one of them took over.
  bool led = cluster.at(2).Status().role == raft::Role::kLeader ||
             cluster.at(3).Status().role == raft::Role::kLeader;
  EXPECT_TRUE(led);
}

TEST(Member, MembershipChangesCompleteWithTheNewConfiguration) {
  Cluster cluster(3);
  cluster.ElectLeader();
  raftpb::ConfChange change = RemoveNode(3);
  Result result;
  cluster.at(1).ChangeMembership(change, result.callback());
  cluster.Settle();
  ASSERT_TRUE(result.value.ok()) << result.value.status();
  EXPECT_NE(result.value->find("voters: 1"), std::string::npos);
  EXPECT_EQ(cluster.at(1).Status().config, "voters=(1 2)");
}

TEST(Member, AttributesAreReplicatedWithTheConfiguration) {
  Cluster cluster(3, /*snapshot_every=*/3);
  // Bootstrap attributes come with the first snapshot.
  for (auto& host : cluster.hosts) {
    host->store.durable.snapshot.set_data(Member::BootstrapData({{1, "a"}, {2, "b"}, {3, "c"}}));
    cluster.Start(*host);
    EXPECT_EQ(host->member->attributes().size(), 3u);
  }
  cluster.ElectLeader();
  uint64_t version = cluster.at(2).membership_version();

  // Adding a learner sets its attributes everywhere.
  raftpb::ConfChange add;
  add.add_changes()->set_type(raftpb::ADD_LEARNER_NODE);
  add.mutable_changes(0)->set_node_id(9);
  Result added;
  cluster.at(2).ChangeMembership(add, "nine", added.callback());
  cluster.Settle();
  ASSERT_TRUE(added.value.ok()) << added.value.status();
  EXPECT_EQ(cluster.at(3).attributes().at(9), "nine");
  EXPECT_GT(cluster.at(2).membership_version(), version);

  // An update through a follower replaces them; an unknown member fails.
  Result updated, unknown;
  cluster.at(3).UpdateAttributes(9, "nine, moved", updated.callback());
  cluster.at(3).UpdateAttributes(42, "nobody", unknown.callback());
  cluster.Settle();
  ASSERT_TRUE(updated.value.ok()) << updated.value.status();
  EXPECT_EQ(unknown.value.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cluster.at(1).attributes().at(9), "nine, moved");
  EXPECT_FALSE(cluster.at(1).attributes().contains(42));

  // A removal drops them.
  Result removed;
  cluster.at(1).ChangeMembership(RemoveNode(3), removed.callback());
  cluster.Settle();
  ASSERT_TRUE(removed.value.ok()) << removed.value.status();
  EXPECT_FALSE(cluster.at(2).attributes().contains(3));

  // And a restart restores them from the snapshot and the log.
  Host& host = cluster.host(2);
  cluster.Start(host);
  std::map<raft::NodeId, std::string> expected = {{1, "a"}, {2, "b"}, {9, "nine, moved"}};
  EXPECT_EQ(host.member->attributes(), expected);
  cluster.Settle();
  EXPECT_EQ(host.member->attributes(), expected);
}

}  // namespace
}  // namespace etc::member

namespace etc::member {
namespace {

TEST(MemberSnapshot, IsTheMessageSerializedWithItsApplicationStateWrittenApart) {
  // The application state is written apart (it may pass protobuf's 2 GiB
  // message limit), into exactly the bytes serializing the message gives.
  for (std::string application : {std::string(), std::string("state"), std::string(200000, 's')}) {
    std::string data = Member::BootstrapData({{1, "one"}, {2, "two"}}, application);
    memberpb::MemberSnapshot parsed;
    ASSERT_TRUE(parsed.ParseFromString(data));
    EXPECT_EQ(parsed.application(), application);
    ASSERT_EQ(parsed.attributes_size(), 2);
    EXPECT_EQ(parsed.attributes(1).data(), "two");
    EXPECT_TRUE(parsed.SerializeAsString() == data) << application.size();
  }
}

}  // namespace
}  // namespace etc::member
