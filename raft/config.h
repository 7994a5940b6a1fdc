// Configuration of one Raft member. Durations are in ticks: the application
// calls Node::Tick() at a fixed interval of its choosing (the server uses
// --heartbeat-interval), so the core never reads a clock.
#ifndef ETC_RAFT_CONFIG_H_
#define ETC_RAFT_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "raft/quorum/quorum.h"

namespace etc::raft {

enum class ReadOnlyOption {
  // ReadIndex confirms leadership with a heartbeat round to a quorum.
  kSafe,
  // The leader answers from a lease: a quorum acknowledged a heartbeat
  // recently enough that no other leader can exist yet. Needs CheckQuorum,
  // and is only as safe as the clock-drift bound below.
  kLeaseBased,
};

struct Config {
  // This member's id; never 0.
  NodeId id = kNoNode;

  // A follower that hears nothing from a leader for a randomized timeout in
  // [election_timeout_ticks, 2 * election_timeout_ticks) campaigns.
  int64_t election_timeout_ticks = 10;
  // A leader sends heartbeats this often. Must be < election_timeout_ticks.
  int64_t heartbeat_interval_ticks = 1;
  // Seeds the randomized election timeouts.
  uint64_t random_seed = 0;

  // A leader that has not heard from a quorum within an election timeout
  // steps down, and followers that heard from a leader within an election
  // timeout ignore vote requests (leader stickiness).
  bool check_quorum = true;
  // A node first checks in a pre-election, without raising its term, that it
  // could win; a rejoining partitioned node then cannot depose a leader.
  bool pre_vote = true;

  ReadOnlyOption read_only = ReadOnlyOption::kSafe;
  // For kLeaseBased: the largest amount, in percent, by which any member's
  // tick rate may exceed the leader's. The lease lasts
  // floor((election_timeout_ticks - 1) * 100 / (100 + this)) ticks after the
  // heartbeat round a quorum acknowledged was sent (see docs/ARCHITECTURE.md).
  int64_t lease_clock_drift_max_percent = 10;

  // Payload bytes per append message (at least one entry is always sent).
  uint64_t max_append_payload_bytes = 1 << 20;
  // Append messages in flight to one follower in replicate state.
  int64_t max_inflight_msgs = 256;
  // Payload bytes in flight to one follower; 0 means no limit.
  uint64_t max_inflight_payload_bytes = 0;
  // A leader refuses proposals while this many payload bytes are appended but
  // not committed; 0 means no limit.
  uint64_t max_uncommitted_payload_bytes = 0;
  // Payload bytes of committed entries handed out per Ready (at least one).
  uint64_t max_committed_payload_bytes_per_ready = 64 << 20;

  // A follower refuses proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;

  // Receives one line per notable event ("2 became leader at term 3").
  // Optional; called synchronously, so it must not call back into the node.
  std::function<void(const std::string&)> log_sink;

  absl::Status Validate() const;
  int64_t LeaseTicks() const;
};

}  // namespace etc::raft

#endif  // ETC_RAFT_CONFIG_H_
