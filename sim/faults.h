// The faults of one run, drawn up front from the seed ("swarm testing": each
// seed also draws which kinds of fault it uses and how often), so a failing
// run can be replayed with any subset of them to shrink it.
#ifndef ETC_SIM_FAULTS_H_
#define ETC_SIM_FAULTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sim/disk.h"
#include "sim/event_queue.h"
#include "sim/network.h"
#include "sim/random.h"

namespace etc::sim {

enum class FaultKind {
  kPartition,       // split the members into two sides (mask = side A)
  kIsolate,         // cut one member off
  kIsolateLeader,   // cut off whoever leads at that moment
  kOneWay,          // drop a -> b only (asymmetric partition)
  kFlap,            // a <-> b goes down and up every few milliseconds
  kClog,            // hold all of a member's traffic for a while
  kCrash,           // kill a member (unsynced writes lost), restart later
  kCrashLeader,     // kill whoever leads at that moment, restart later
  kPause,           // freeze a member; it wakes with stale beliefs
  kSlow,            // slow links and disk for a member
  kAddLearner,      // add a spare member as a learner
  kPromote,         // promote a learner to voter
  kRemoveVoter,     // remove a voter
  kReplaceVoter,    // remove a voter and add a spare one in one joint change
  kTransferLeader,  // move leadership to another voter
  kSnapshotNow,     // make a member snapshot and compact right away
  kDiskStall,       // a member's disk hangs: no write completes for a while
  kStallAndSplit,   // a follower's disk hangs while it and the leader are cut
                    // off from the rest, which elect a leader that then
                    // overwrites what the follower holds only in memory
  kBitFlip,         // kill a member and flip a bit in its log: it must refuse
                    // to start, and the operator removes it from the cluster
};

const char* FaultKindName(FaultKind kind);

struct Fault {
  Micros at_us = 0;
  FaultKind kind = FaultKind::kPartition;
  // Members involved (resolved against the cluster at run time when 0).
  uint64_t a = 0;
  uint64_t b = 0;
  // kPartition: side A as a bit mask over member ids.
  uint64_t mask = 0;
  Micros duration_us = 0;

  std::string Describe() const;
};

// The knobs a seed draws for its run.
struct Swarm {
  int voters = 3;
  // Members that start empty and can be added by membership changes.
  int spares = 2;
  int clients = 16;
  int keys = 8;
  // Clients that grant, renew, revoke and abandon leases.
  int lease_clients = 0;
  // Clients that watch (sometimes stalling), and how many responses a
  // member lets a stream hold.
  int watch_clients = 0;
  size_t watch_queue_bound = 64;
  // Auth on: users and roles from the start, every client logged in, an
  // administrator editing permissions and an intruder (auth_workload.h).
  bool auth = false;
  bool pre_vote = true;
  bool check_quorum = true;
  bool lease_reads = false;
  // Each member's tick period differs from the nominal one by up to this.
  double clock_drift_fraction = 0;
  // How every link behaves when no fault touches it.
  NetworkOptions network;
  // How every member's disk behaves when no fault touches it.
  DiskOptions disk;
  // Raft's max_append_payload_bytes: small values split appends into many
  // messages (one entry each at the smallest).
  uint64_t max_append_bytes = 1 << 20;
  uint64_t snapshot_every_entries = 64;
  uint64_t catch_up_entries = 16;
  Micros client_timeout_us = 1'000'000;
  std::vector<Fault> faults;

  std::string Describe() const;
};

// Draws everything for one run. `safety_phase_us` bounds when faults start.
Swarm DrawSwarm(Random& random, Micros safety_phase_us, int voters_override);

}  // namespace etc::sim

#endif  // ETC_SIM_FAULTS_H_
