#include "sim/network.h"

#include "raft/describe.h"

namespace etc::sim {

Micros Network::Latency(NodeId from, NodeId to) {
  Micros latency = options_.latency_min_us +
                   static_cast<Micros>(random_.Exponential(
                       static_cast<double>(options_.latency_tail_mean_us)));
  auto slow = slow_links_.find({from, to});
  if (slow != slow_links_.end()) latency += slow->second;
  return latency;
}

Micros Network::ArrivalTime(NodeId from, NodeId to) {
  Micros arrival_us = queue_->now_us() + Latency(from, to);
  if (!options_.reorder) {
    Micros& last_us = last_arrival_us_[{from, to}];
    arrival_us = std::max(arrival_us, last_us);
    last_us = arrival_us;
  }
  return arrival_us;
}

void Network::Send(raftpb::Message message) {
  ++messages_sent_;
  NodeId from = message.from();
  NodeId to = message.to();
  if (Blocked(from, to) || random_.Chance(options_.loss_probability)) {
    ++messages_dropped_;
    trace_->Event("net.drop", from, to, [&] { return raft::DescribeMessage(message); });
    return;
  }
  if (random_.Chance(options_.duplicate_probability)) {
    raftpb::Message copy = message;
    Micros late_us = options_.reorder && options_.duplicate_delay_mean_us > 0
                         ? static_cast<Micros>(random_.Exponential(
                               static_cast<double>(options_.duplicate_delay_mean_us)))
                         : 0;
    queue_->At(ArrivalTime(from, to) + late_us, [this, copy = std::move(copy)]() mutable { Arrive(std::move(copy)); });
  }
  queue_->At(ArrivalTime(from, to), [this, message = std::move(message)]() mutable {
    Arrive(std::move(message));
  });
}

void Network::Arrive(raftpb::Message message) {
  NodeId from = message.from();
  NodeId to = message.to();
  if (Blocked(from, to)) {
    ++messages_dropped_;
    trace_->Event("net.drop", from, to, [&] { return raft::DescribeMessage(message); });
    return;
  }
  Micros held_until_us = 0;
  for (NodeId end : {from, to}) {
    auto it = clogged_until_us_.find(end);
    if (it != clogged_until_us_.end() && it->second > queue_->now_us()) {
      held_until_us = std::max(held_until_us, it->second);
    }
  }
  if (held_until_us > 0) {
    // Delivered after the clog clears, in a jittered order.
    queue_->At(held_until_us + Latency(from, to),
               [this, message = std::move(message)]() mutable { Arrive(std::move(message)); });
    return;
  }
  trace_->Mix(static_cast<uint64_t>(message.type()) << 32 | message.term());
  trace_->Mix(message.index() ^ (message.commit() << 20) ^ (static_cast<uint64_t>(message.entries_size()) << 40));
  deliver_(std::move(message));
}

void Network::Heal() {
  blocked_.clear();
  clogged_until_us_.clear();
  slow_links_.clear();
}

}  // namespace etc::sim
