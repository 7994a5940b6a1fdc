// A three-member Raft cluster in one process, on virtual time: elect a
// leader, replicate writes, crash the leader, elect another, restart the old
// one from what it persisted, and check that every member applied the same
// writes in the same order. Deterministic for a given --seed.
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "raft/memory_storage.h"
#include "raft/node.h"

ABSL_FLAG(uint64_t, seed, 1, "seeds the members' election timers");
ABSL_FLAG(int, writes, 1000, "writes to propose before and after the leader crash (each)");

namespace etc::raft {
namespace {

struct Member {
  NodeId id;
  Config config;
  std::optional<Node> node;
  MemoryStorage storage;
  std::vector<std::string> applied;
};

class Cluster {
 public:
  explicit Cluster(uint64_t seed) {
    for (NodeId id = 1; id <= 3; ++id) {
      Member member;
      member.id = id;
      member.config.id = id;
      member.config.random_seed = seed;
      member.storage = MemoryStorage::Bootstrap({1, 2, 3});
      member.node.emplace(*Node::Start(member.config, member.storage.ToDurable()));
      members_.push_back(std::move(member));
    }
  }

  // Delivers messages and handles Readys until nothing moves.
  void Settle() {
    bool busy = true;
    while (busy) {
      busy = false;
      for (Member& member : members_) {
        while (member.node.has_value() && member.node->HasReady()) {
          busy = true;
          HandleReady(member);
        }
      }
      while (!network_.empty()) {
        busy = true;
        raftpb::Message m = std::move(network_.front());
        network_.pop_front();
        ++messages_delivered_;
        Member& to = members_[m.to() - 1];
        if (to.node.has_value()) (void)to.node->Step(m);
      }
    }
  }

  void Tick() {
    ++ticks_;
    for (Member& member : members_) {
      if (member.node.has_value()) member.node->Tick();
    }
    Settle();
  }

  NodeId Leader() const {
    for (const Member& member : members_) {
      if (member.node.has_value() && member.node->Status().role == Role::kLeader) return member.id;
    }
    return kNoNode;
  }

  NodeId WaitForLeader() {
    int64_t start = ticks_;
    while (Leader() == kNoNode) Tick();
    std::printf("  leader %llu elected after %lld ticks (term %llu)\n",
                static_cast<unsigned long long>(Leader()), static_cast<long long>(ticks_ - start),
                static_cast<unsigned long long>(members_[Leader() - 1].node->Status().term));
    return Leader();
  }

  void Write(int count, const std::string& prefix) {
    for (int i = 0; i < count; ++i) {
      NodeId leader = Leader();
      while (leader == kNoNode) leader = WaitForLeader();
      absl::Status status = members_[leader - 1].node->Propose(absl::StrCat(prefix, i));
      if (!status.ok()) std::printf("  proposal refused: %s\n", status.ToString().c_str());
      // Batches of 16 proposals share one append round.
      if (i % 16 == 15) Settle();
    }
    Settle();
    // Heartbeats carry the final commit index to followers.
    Tick();
  }

  void Crash(NodeId id) {
    members_[id - 1].node.reset();
    members_[id - 1].applied.clear();
  }

  void Restart(NodeId id) {
    Member& member = members_[id - 1];
    member.node.emplace(*Node::Start(member.config, member.storage.ToDurable()));
  }

  bool Agree() const {
    for (const Member& member : members_) {
      if (member.applied != members_[0].applied) return false;
    }
    return true;
  }

  void PrintState() const {
    for (const Member& member : members_) {
      NodeStatus status = member.node->Status();
      std::printf("  member %llu: %-15s term %llu commit %llu applied writes %zu\n",
                  static_cast<unsigned long long>(member.id), RoleName(status.role),
                  static_cast<unsigned long long>(status.term),
                  static_cast<unsigned long long>(status.commit), member.applied.size());
    }
  }

  int64_t ticks() const { return ticks_; }
  int64_t messages_delivered() const { return messages_delivered_; }

 private:
  void HandleReady(Member& member) {
    Ready ready = member.node->GetReady();
    member.storage.Persist(ready);  // durable before anything leaves
    for (raftpb::Message& m : ready.messages) network_.push_back(std::move(m));
    for (const raftpb::Entry& entry : ready.committed_entries) {
      if (entry.type() == raftpb::ENTRY_NORMAL && !entry.data().empty()) {
        member.applied.push_back(entry.data());
      }
    }
    member.node->Advance(ready);
  }

  std::vector<Member> members_;
  std::deque<raftpb::Message> network_;
  int64_t ticks_ = 0;
  int64_t messages_delivered_ = 0;
};

int Run() {
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  int writes = absl::GetFlag(FLAGS_writes);
  std::printf("etc Raft demo: 3 members, seed %llu, %d writes per phase\n",
              static_cast<unsigned long long>(seed), writes);
  Cluster cluster(seed);

  std::printf("1. election\n");
  NodeId first = cluster.WaitForLeader();
  std::printf("2. replicate %d writes through leader %llu\n", writes,
              static_cast<unsigned long long>(first));
  cluster.Write(writes, "a");
  cluster.PrintState();

  std::printf("3. crash leader %llu; the other two elect a new one\n",
              static_cast<unsigned long long>(first));
  cluster.Crash(first);
  NodeId second = cluster.WaitForLeader();
  cluster.Write(writes, "b");

  std::printf("4. restart %llu from its persisted log; it catches up\n",
              static_cast<unsigned long long>(first));
  cluster.Restart(first);
  for (int i = 0; i < 30; ++i) cluster.Tick();
  cluster.PrintState();

  bool agree = cluster.Agree();
  std::printf("result: leaders %llu then %llu, %lld ticks, %lld messages, members %s\n",
              static_cast<unsigned long long>(first), static_cast<unsigned long long>(second),
              static_cast<long long>(cluster.ticks()),
              static_cast<long long>(cluster.messages_delivered()),
              agree ? "applied identical logs: OK" : "DISAGREE: FAILED");
  return agree ? 0 : 1;
}

}  // namespace
}  // namespace etc::raft

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Runs a three-member Raft cluster in one process.");
  absl::ParseCommandLine(argc, argv);
  return etc::raft::Run();
}
