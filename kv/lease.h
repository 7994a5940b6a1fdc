// Leases: a TTL that keys attach to; when the lease ends, its keys are
// deleted with it, in one revision.
//
// Two halves. LeaseTable is replicated state (which leases exist, their
// granted TTL, their keys), changed only by applied requests. Lessor is a
// member's local clock for them: when each lease expires, given the times
// its host passes in. Only the leader's Lessor matters: it reports expired
// leases, the leader proposes their revocation through the log, and every
// member revokes them when it applies that. A member that becomes leader
// restarts every lease's full TTL (plus a grace period), as etcd does, so a
// leader change never ends a lease early.
//
//   LeaseTable leases;  Lessor lessor;
//   leases.Grant(7, 10);  lessor.Add(7, 10);
//   lessor.Promote(now_ms, /*extend_ms=*/0);
//   lessor.Renew(7, now_ms);                      // keepalive
//   for (LeaseId id : lessor.Expired(now_ms, 100)) { /* propose LeaseExpire */ }
#ifndef ETC_KV_LEASE_H_
#define ETC_KV_LEASE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/keyspace.h"

namespace etc::kv {

// etcd's limit on a lease's TTL.
inline constexpr int64_t kMaxLeaseTtlSeconds = 9'000'000'000;

struct Lease {
  LeaseId id = 0;
  int64_t ttl_seconds = 0;
  std::set<std::string> keys;
};

class LeaseTable {
 public:
  // `id` 0 draws an unused id deterministically. TTLs below `min_ttl_seconds`
  // are raised to it. Errors: lease exists, TTL too large, negative id.
  absl::StatusOr<const Lease*> Grant(LeaseId id, int64_t ttl_seconds, int64_t min_ttl_seconds);
  // Removes the lease; returns its keys (the caller deletes them).
  absl::StatusOr<std::set<std::string>> Revoke(LeaseId id);
  const Lease* Find(LeaseId id) const;
  void Attach(LeaseId id, const std::string& key);
  void Detach(LeaseId id, const std::string& key);
  const std::map<LeaseId, Lease>& leases() const { return leases_; }
  uint64_t id_counter() const { return id_counter_; }
  // Replaces everything (keys are re-attached by the caller from the
  // keyspace). Errors: kDataLoss for duplicate or invalid leases.
  absl::Status Restore(const std::vector<std::pair<LeaseId, int64_t>>& leases,
                       uint64_t id_counter);

 private:
  std::map<LeaseId, Lease> leases_;
  uint64_t id_counter_ = 0;
};

class Lessor {
 public:
  // A lease applied at an unknown time: its clock starts at the next call
  // that passes one (Renew, Expired, Promote, RemainingMs).
  void Add(LeaseId id, int64_t ttl_seconds);
  void Remove(LeaseId id);
  void Clear() { expiry_.clear(); }
  // Keepalive: the lease lives `ttl` from now. Returns the TTL, or
  // kNotFound with etcd's message, or kUnavailable if it already expired
  // (it is about to be revoked: ask again).
  absl::StatusOr<int64_t> Renew(LeaseId id, int64_t now_ms);
  // Leases whose time ran out, at most `max` (oldest first), for the leader
  // to propose revoking. They stay until revoked through the log; asking
  // again later reports them again.
  std::vector<LeaseId> Expired(int64_t now_ms, size_t max);
  // This member became leader: every lease lives its full TTL from now,
  // plus `extend_ms`.
  void Promote(int64_t now_ms, int64_t extend_ms);
  // Milliseconds left (never negative); nullopt for an unknown lease.
  std::optional<int64_t> RemainingMs(LeaseId id, int64_t now_ms);
  size_t size() const { return expiry_.size(); }

 private:
  struct Clock {
    int64_t ttl_ms = 0;
    // -1: not stamped yet.
    int64_t expires_at_ms = -1;
  };
  void Stamp(Clock& clock, int64_t now_ms) {
    if (clock.expires_at_ms < 0) clock.expires_at_ms = now_ms + clock.ttl_ms;
  }
  std::map<LeaseId, Clock> expiry_;
};

}  // namespace etc::kv

#endif  // ETC_KV_LEASE_H_
