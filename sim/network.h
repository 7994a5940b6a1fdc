// The simulated network between members: per-message latency (a floor plus
// an exponential tail, so messages reorder), loss, duplication, one-way and
// two-way partitions, and clogging (a node's traffic held back for a while).
// A partition is checked both when a message is sent and when it would
// arrive, so messages in flight when it starts are lost too.
#ifndef ETC_SIM_NETWORK_H_
#define ETC_SIM_NETWORK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "raft/raftpb.pb.h"
#include "sim/event_queue.h"
#include "sim/random.h"
#include "sim/trace.h"

namespace etc::sim {

using NodeId = uint64_t;

struct NetworkOptions {
  Micros latency_min_us = 200;
  // Mean of the exponential part added to the floor.
  Micros latency_tail_mean_us = 1000;
  double loss_probability = 0;
  double duplicate_probability = 0;
  // Whether messages on one link may overtake each other. Peer links are
  // streams (FIFO) in a real deployment; reordering is a fault.
  bool reorder = false;
  // With reordering, a duplicate may also arrive late (a copy stuck in a
  // buffer): by this much more on average.
  Micros duplicate_delay_mean_us = 0;
};

class Network {
 public:
  using Deliver = std::function<void(raftpb::Message)>;

  Network(EventQueue* queue, Trace* trace, Random random, NetworkOptions options, Deliver deliver)
      : queue_(queue),
        trace_(trace),
        random_(random),
        options_(options),
        deliver_(std::move(deliver)) {}

  void Send(raftpb::Message message);

  // Drops everything from `from` to `to` until unblocked. Blocks count, so
  // overlapping partitions heal independently.
  void Block(NodeId from, NodeId to) { ++blocked_[{from, to}]; }
  void Unblock(NodeId from, NodeId to) {
    auto it = blocked_.find({from, to});
    if (it != blocked_.end() && --it->second <= 0) blocked_.erase(it);
  }
  void BlockBothWays(NodeId a, NodeId b) {
    Block(a, b);
    Block(b, a);
  }
  void UnblockBothWays(NodeId a, NodeId b) {
    Unblock(a, b);
    Unblock(b, a);
  }
  // Holds all traffic from or to `node` until the given time.
  void Clog(NodeId node, Micros until_us) { clogged_until_us_[node] = until_us; }
  // Extra latency on one link (a slow path).
  void SlowLink(NodeId from, NodeId to, Micros extra_us) { slow_links_[{from, to}] = extra_us; }
  // Removes every partition, clog and slow link.
  void Heal();
  void set_options(NetworkOptions options) { options_ = options; }
  const NetworkOptions& options() const { return options_; }

  bool Blocked(NodeId from, NodeId to) const { return blocked_.contains({from, to}); }
  uint64_t messages_sent() const { return messages_sent_; }
  uint64_t messages_dropped() const { return messages_dropped_; }

 private:
  Micros Latency(NodeId from, NodeId to);
  // When a message sent now on from -> to arrives.
  Micros ArrivalTime(NodeId from, NodeId to);
  void Arrive(raftpb::Message message);

  EventQueue* queue_;
  Trace* trace_;
  Random random_;
  NetworkOptions options_;
  Deliver deliver_;
  std::map<std::pair<NodeId, NodeId>, int> blocked_;
  std::map<NodeId, Micros> clogged_until_us_;
  std::map<std::pair<NodeId, NodeId>, Micros> slow_links_;
  // Latest scheduled arrival per link, to keep links FIFO.
  std::map<std::pair<NodeId, NodeId>, Micros> last_arrival_us_;
  uint64_t messages_sent_ = 0;
  uint64_t messages_dropped_ = 0;
};

}  // namespace etc::sim

#endif  // ETC_SIM_NETWORK_H_
