// The member glue with a hand-driven host: a transport that collects
// messages, a store whose writes complete when the test says so, and a tiny
// key-value state machine ("key=value" commands, queries by key).
#include "member/member.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/str_split.h"
#include "raft/memory_storage.h"

namespace etc::member {
namespace {

class Outbox : public Transport {
 public:
  void Send(raftpb::Message message) override { messages.push_back(std::move(message)); }
  std::vector<raftpb::Message> messages;
};

class FakeStore : public LogStore {
 public:
  void Persist(PersistRequest request, uint64_t token) override {
    pending.push_back({std::move(request), token});
  }
  void SaveSnapshot(const raftpb::Snapshot& snapshot) override {
    durable.snapshot = snapshot;
    ++snapshots_saved;
  }
  void CompactLog(uint64_t index) override {
    compacted_to = index;
    std::erase_if(durable.entries, [index](const raftpb::Entry& e) { return e.index() <= index; });
  }
  // Makes the oldest pending write durable; returns its token.
  uint64_t CompleteOne() {
    auto [request, token] = std::move(pending.front());
    pending.pop_front();
    raft::Ready ready;
    ready.snapshot = request.snapshot;
    ready.entries = request.entries;
    ready.hard_state = request.hard_state;
    durable.Persist(ready);
    return token;
  }

  raft::MemoryStorage durable;
  std::deque<std::pair<PersistRequest, uint64_t>> pending;
  int snapshots_saved = 0;
  uint64_t compacted_to = 0;
};

class KvMachine : public StateMachine {
 public:
  std::string Apply(uint64_t, std::string_view command) override {
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
  std::map<std::string, std::string> values;
  int restores = 0;
};

struct Host {
  Outbox outbox;
  FakeStore store;
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
          Host& to = *hosts[m.to() - 1];
          if (to.member) EXPECT_TRUE(to.member->Receive(m).ok());
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

TEST(Member, NothingLeavesBeforeThePersistCompletes) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Result result;
  cluster.at(1).Write("x=1", result.callback());
  // The leader handed its Ready to the store; the appends wait for it.
  ASSERT_EQ(cluster.host(1).store.pending.size(), 1u);
  EXPECT_TRUE(cluster.host(1).outbox.messages.empty());
  cluster.at(1).OnPersisted(cluster.host(1).store.CompleteOne());
  EXPECT_FALSE(cluster.host(1).outbox.messages.empty());
  cluster.Settle();
  EXPECT_EQ(result.calls, 1);
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

TEST(Member, AProposalTheLeaderRefusesComesBackAsUnavailable) {
  Cluster cluster(3);
  cluster.ElectLeader();
  // Node 3 falls behind, so a transfer to it takes a while; meanwhile the
  // leader refuses proposals, including one forwarded by node 2.
  ASSERT_TRUE(cluster.at(1).TransferLeadership(3).ok());
  Result forwarded;
  cluster.at(2).Write("x=1", forwarded.callback());
  // Deliver only node 2's forward and the leader's refusal.
  for (int step = 0; step < 3; ++step) {
    for (raft::NodeId from : {2, 1}) {
      std::vector<raftpb::Message> messages = std::move(cluster.host(from).outbox.messages);
      cluster.host(from).outbox.messages.clear();
      for (auto& m : messages) {
        if (m.type() == raftpb::MSG_PROP || m.type() == raftpb::MSG_PROP_RESP) {
          ASSERT_TRUE(cluster.at(m.to()).Receive(m).ok());
        }
      }
    }
  }
  EXPECT_EQ(forwarded.calls, 1);
  EXPECT_EQ(forwarded.value.status().code(), absl::StatusCode::kUnavailable);
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

TEST(Member, MembershipChangesCompleteWithTheNewConfiguration) {
  Cluster cluster(3);
  cluster.ElectLeader();
  raftpb::ConfChange change;
  raftpb::ConfChangeSingle* single = change.add_changes();
  single->set_type(raftpb::REMOVE_NODE);
  single->set_node_id(3);
  Result result;
  cluster.at(1).ChangeMembership(change, result.callback());
  cluster.Settle();
  ASSERT_TRUE(result.value.ok()) << result.value.status();
  EXPECT_NE(result.value->find("voters: 1"), std::string::npos);
  EXPECT_EQ(cluster.at(1).Status().config, "voters=(1 2)");
}

}  // namespace
}  // namespace etc::member
