// A three-member Raft cluster in one process, on virtual time: elect a
// leader, replicate writes, crash the leader, elect another, restart the old
// one from what it persisted, and check that every member applied the same
// writes in the same order. Deterministic for a given --seed.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "raft/rafttest/local_cluster.h"

ABSL_FLAG(uint64_t, seed, 1, "seeds the members' election timers");
ABSL_FLAG(int, writes, 1000, "writes to propose before and after the leader crash (each)");

namespace etc::raft {
namespace {

using rafttest::LocalCluster;

class Demo {
 public:
  explicit Demo(uint64_t seed) : cluster_({.size = 3, .voters = 3, .seed = seed, .configure = {}}) {
    cluster_.on_apply = [this](NodeId id, const raftpb::Entry& entry) {
      if (entry.type() == raftpb::ENTRY_NORMAL && !entry.data().empty()) {
        applied_[id].push_back(entry.data());
      }
    };
  }

  NodeId Elect() {
    int64_t start = ticks_;
    NodeId leader = kNoNode;
    while ((leader = cluster_.Leader()) == kNoNode) Tick();
    std::printf("  leader %llu elected after %lld ticks (term %llu)\n",
                static_cast<unsigned long long>(leader), static_cast<long long>(ticks_ - start),
                static_cast<unsigned long long>(cluster_.node(leader).Status().term));
    return leader;
  }

  void Write(int count, const std::string& prefix) {
    for (int i = 0; i < count; ++i) {
      NodeId leader = cluster_.Leader();
      if (leader == kNoNode) leader = Elect();
      absl::Status status = cluster_.node(leader).Propose(absl::StrCat(prefix, i));
      if (!status.ok()) std::printf("  proposal refused: %s\n", status.ToString().c_str());
      // Batches of 16 proposals share one append round.
      if (i % 16 == 15) Settle();
    }
    Settle();
    // Heartbeats carry the final commit index to followers.
    Tick();
  }

  void Crash(NodeId id) {
    cluster_.Crash(id);
    // The state machine is rebuilt from the log after the restart.
    applied_[id].clear();
  }

  bool Restart(NodeId id) {
    absl::Status status = cluster_.Restart(id);
    if (!status.ok()) std::printf("  restart failed: %s\n", status.ToString().c_str());
    return status.ok();
  }

  void Tick() {
    ++ticks_;
    cluster_.TickAll();
    Settle();
  }

  bool Agree() const {
    for (const auto& [id, writes] : applied_) {
      if (writes != applied_.begin()->second) return false;
    }
    return applied_.size() == 3;
  }

  void PrintState() {
    for (NodeId id = 1; id <= 3; ++id) {
      NodeStatus status = cluster_.node(id).Status();
      std::printf("  member %llu: %-15s term %llu commit %llu applied writes %zu\n",
                  static_cast<unsigned long long>(id), RoleName(status.role),
                  static_cast<unsigned long long>(status.term),
                  static_cast<unsigned long long>(status.commit), applied_[id].size());
    }
  }

  int64_t ticks() const { return ticks_; }

 private:
  void Settle() {
    absl::Status status = cluster_.Settle();
    if (!status.ok()) std::printf("  error: %s\n", status.ToString().c_str());
  }

  LocalCluster cluster_;
  std::map<NodeId, std::vector<std::string>> applied_;
  int64_t ticks_ = 0;
};

int Run() {
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  int writes = absl::GetFlag(FLAGS_writes);
  std::printf("etc Raft demo: 3 members, seed %llu, %d writes per phase\n",
              static_cast<unsigned long long>(seed), writes);
  Demo demo(seed);

  std::printf("1. election\n");
  NodeId first = demo.Elect();
  std::printf("2. replicate %d writes through leader %llu\n", writes,
              static_cast<unsigned long long>(first));
  demo.Write(writes, "a");
  demo.PrintState();

  std::printf("3. crash leader %llu; the other two elect a new one\n",
              static_cast<unsigned long long>(first));
  demo.Crash(first);
  NodeId second = demo.Elect();
  demo.Write(writes, "b");

  std::printf("4. restart %llu from its persisted log; it catches up\n",
              static_cast<unsigned long long>(first));
  if (!demo.Restart(first)) return 1;
  for (int i = 0; i < 30; ++i) demo.Tick();
  demo.PrintState();

  bool agree = demo.Agree();
  std::printf("result: leaders %llu then %llu, %lld ticks, members %s\n",
              static_cast<unsigned long long>(first), static_cast<unsigned long long>(second),
              static_cast<long long>(demo.ticks()),
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
