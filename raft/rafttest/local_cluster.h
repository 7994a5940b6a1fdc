// Several real raft::Nodes in one process with in-memory "durable" storage
// and an in-memory network, driven step by step: the application side of the
// Ready protocol (persist, send, apply, advance) plus fault hooks (drop,
// duplicate, reorder, cut links, crash between GetReady and persisting,
// restart from storage). Pure and deterministic: no threads, clocks or I/O.
//
// Used by the demo (sim/raft_demo), the randomized property test and the
// benchmark. The full simulator (sim/) adds virtual time, fault schedules
// and checkers on top of the member glue instead.
//
//   LocalCluster cluster({.size = 3, .voters = 3, .seed = 1});
//   while (cluster.Leader() == kNoNode) { cluster.TickAll(); cluster.Settle(); }
//   cluster.node(cluster.Leader()).Propose("x");
//   cluster.Settle();
#ifndef ETC_RAFT_RAFTTEST_LOCAL_CLUSTER_H_
#define ETC_RAFT_RAFTTEST_LOCAL_CLUSTER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "raft/memory_storage.h"
#include "raft/node.h"

namespace etc::raft::rafttest {

class LocalCluster {
 public:
  struct Options {
    int size = 3;
    // Members 1..voters start as the initial voters; the rest start empty
    // and learn the configuration when added.
    int voters = 3;
    uint64_t seed = 1;
    // Adjusts each member's configuration (the id is already set).
    std::function<void(Config&)> configure = {};
  };

  explicit LocalCluster(Options options);

  int size() const { return static_cast<int>(members_.size()); }
  bool alive(NodeId id) const { return members_[id - 1].node.has_value(); }
  Node& node(NodeId id) { return *members_[id - 1].node; }
  const MemoryStorage& storage(NodeId id) const { return members_[id - 1].storage; }
  // The index the member's state machine has applied (0 while crashed).
  Index applied_index(NodeId id) const { return members_[id - 1].applied_index; }

  // Called for every committed entry a member applies, in order.
  std::function<void(NodeId, const raftpb::Entry&)> on_apply;
  // Called for every answered read, after the member applied its entries.
  std::function<void(NodeId, const ReadState&)> on_read_state;

  void Tick(NodeId id);
  void TickAll();
  // Handles one Ready of `id` if it has one: persist, send, apply, advance.
  // With crash_before_persisting the member crashes instead, so nothing of
  // that Ready survives and none of its messages leave.
  void ProcessReady(NodeId id, bool crash_before_persisting = false);
  // Delivers the in-flight message at `index` (a copy stays in flight if
  // `duplicate`). Messages across cut links or to crashed members vanish.
  absl::Status Deliver(size_t index, bool duplicate = false);
  void Drop(size_t index);
  size_t in_flight() const { return network_.size(); }
  // Handles Readys and delivers messages until nothing moves (or the round
  // limit is reached). Returns the first error a Step returned, if any.
  absl::Status Settle(int max_rounds = 1000);

  void Crash(NodeId id);
  absl::Status Restart(NodeId id);
  void Cut(NodeId a, NodeId b);
  void Heal() { cut_.clear(); }
  // Snapshots the member's state at its applied index and compacts its log.
  absl::Status SnapshotAndCompact(NodeId id);

  // The leader of the highest term among live members, or kNoNode.
  NodeId Leader();
  // Ticks everybody and settles until there is a leader; returns it, or
  // kNoNode after max_ticks.
  NodeId ElectLeader(int max_ticks = 1000);

 private:
  struct Member {
    Config config;
    std::optional<Node> node;
    MemoryStorage storage;
    Index applied_index = 0;
  };

  bool AnyReady();

  std::vector<Member> members_;
  std::deque<raftpb::Message> network_;
  std::set<std::pair<NodeId, NodeId>> cut_;
};

}  // namespace etc::raft::rafttest

#endif  // ETC_RAFT_RAFTTEST_LOCAL_CLUSTER_H_
