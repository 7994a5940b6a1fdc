// Lease clients in the simulator: each grants a lease through a member
// (KvMember::Write), attaches a key to it, keeps it alive through the
// leader (KvMember::KeepAlive, as a follower forwards to it in the server)
// and then either keeps it alive to the end, revokes it, or stops, so that
// the leader's expiry policy revokes it through the log.
//
// Checks, with the member's policies running exactly as the server runs
// them:
//  - safety (with CheckQuorum, which the server always runs): a lease is
//    never revoked by expiry before its TTL has passed, on the drift-bounded
//    clocks, since the client sent the last renewal (or the grant) that
//    succeeded; etcd users rely on this to hold locks and leadership;
//  - liveness: a lease nobody keeps alive is gone within its TTL, an
//    election timeout and two expiry checks after the later of its last
//    renewal, the last leader change, and the end of the faults' grace;
//  - a lease's key is deleted with it (the key tree's invariants).
#ifndef ETC_SIM_LEASE_WORKLOAD_H_
#define ETC_SIM_LEASE_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <vector>

#include "kv/kvpb/kvpb.pb.h"
#include "sim/auth_workload.h"
#include "sim/random.h"
#include "sim/world.h"

namespace etc::sim {

struct LeaseWorkloadStats {
  uint64_t granted = 0;
  uint64_t renewals = 0;
  uint64_t expired = 0;
  uint64_t revoked = 0;
};

class LeaseWorkload {
 public:
  // Clients log in through `auth`.
  LeaseWorkload(World* world, AuthWorkload* auth, Random random, Random latency);
  // Starts `clients` lease clients; the liveness phase's grace ends at
  // `grace_end_us` (faults healed, elections settled).
  void Start(int clients, Micros grace_end_us);
  // At the end of the run: the liveness check.
  void CheckEnd();
  const LeaseWorkloadStats& stats() const { return stats_; }

 private:
  enum class Plan { kKeepAlive, kAbandon, kRevoke };
  struct Lease {
    kv::LeaseId id = 0;
    int client = 0;
    int64_t ttl_seconds = 0;
    Plan plan = Plan::kKeepAlive;
    // Until when the client renews it (kAbandon, kRevoke).
    Micros renew_until_us = 0;
    // The send time of the grant, and of the latest renewal that
    // succeeded: the lease lives a TTL past the later of them.
    Micros granted_sent_us = -1;
    Micros renewed_sent_us = -1;
    bool grant_answered = false;
    bool gone = false;
  };
  struct Client {
    int id = 0;
    Random random{0};
    uint64_t leases = 0;
    AuthWorkload::Session session;
  };

  Micros Latency() { return 100 + static_cast<Micros>(latency_.Exponential(300)); }
  void NewLease(Client& client);
  void SendGrant(Client& client, kv::LeaseId id);
  void Attach(Client& client, kv::LeaseId id);
  void Renew(Client& client, kv::LeaseId id);
  // A renewal sent at `sent_us` was answered.
  void OnRenewed(Client& client, kv::LeaseId id, Micros sent_us, absl::StatusOr<int64_t> ttl);
  void Revoke(Client& client, kv::LeaseId id);
  void Next(Client& client, Micros after_us);
  // Sends `request` to a member of the cluster; `done` gets the answer
  // after the way back.
  void SendWrite(Client& client, kvpb::Request request,
                 std::function<void(absl::StatusOr<kvpb::Response>)> done);
  void OnApply(const kvpb::Request& request);
  void OnExpired(Lease& lease);
  // The latest of the lease's successful grant or renewal sends.
  static Micros LastRenewedUs(const Lease& lease) {
    return std::max(lease.granted_sent_us, lease.renewed_sent_us);
  }

  World* world_;
  AuthWorkload* auth_;
  Random random_;
  Random latency_;
  std::vector<Client> clients_;
  std::map<kv::LeaseId, Lease> leases_;
  Micros grace_end_us_ = 0;
  // When a member last became leader (its lessor restarts every TTL).
  Micros last_election_us_ = 0;
  raft::Term last_leader_term_ = 0;
  LeaseWorkloadStats stats_;
};

}  // namespace etc::sim

#endif  // ETC_SIM_LEASE_WORKLOAD_H_
