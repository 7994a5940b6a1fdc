#include "kv/lease.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kv/errors.h"

namespace etc::kv {
namespace {

// A bijective mix of the counter, so generated ids look unrelated (as
// etcd's do) yet every member draws the same ones.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

absl::StatusOr<const Lease*> LeaseTable::Grant(LeaseId id, int64_t ttl_seconds,
                                               int64_t min_ttl_seconds) {
  if (ttl_seconds > kMaxLeaseTtlSeconds) return LeaseTtlTooLargeError();
  if (id < 0) return absl::InvalidArgumentError("etcdserver: lease id must not be negative");
  if (id == 0) {
    do {
      id = static_cast<LeaseId>(Mix(++id_counter_) & 0x7FFFFFFFFFFFFFFFull);
    } while (id == 0 || leases_.contains(id));
  } else if (leases_.contains(id)) {
    return LeaseExistsError();
  }
  Lease lease;
  lease.id = id;
  lease.ttl_seconds = std::max(ttl_seconds, min_ttl_seconds);
  auto [it, inserted] = leases_.emplace(id, std::move(lease));
  return &it->second;
}

absl::StatusOr<std::set<std::string>> LeaseTable::Revoke(LeaseId id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFoundError();
  std::set<std::string> keys = std::move(it->second.keys);
  leases_.erase(it);
  return keys;
}

const Lease* LeaseTable::Find(LeaseId id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

void LeaseTable::Attach(LeaseId id, const std::string& key) {
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.keys.insert(key);
}

void LeaseTable::Detach(LeaseId id, const std::string& key) {
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.keys.erase(key);
}

absl::Status LeaseTable::Restore(const std::vector<std::pair<LeaseId, int64_t>>& leases,
                                 uint64_t id_counter) {
  std::map<LeaseId, Lease> restored;
  for (const auto& [id, ttl] : leases) {
    if (id <= 0 || ttl <= 0 || ttl > kMaxLeaseTtlSeconds) {
      return absl::DataLossError(absl::StrCat("lease snapshot: invalid lease ", id, " ttl ", ttl));
    }
    Lease lease;
    lease.id = id;
    lease.ttl_seconds = ttl;
    if (!restored.emplace(id, std::move(lease)).second) {
      return absl::DataLossError(absl::StrCat("lease snapshot: lease ", id, " twice"));
    }
  }
  leases_ = std::move(restored);
  id_counter_ = id_counter;
  return absl::OkStatus();
}

// ----------------------------------------------------------------- Lessor --

void Lessor::Add(LeaseId id, int64_t ttl_seconds) {
  expiry_[id] = Clock{ttl_seconds * 1000, -1};
}

void Lessor::Remove(LeaseId id) { expiry_.erase(id); }

absl::StatusOr<int64_t> Lessor::Renew(LeaseId id, int64_t now_ms) {
  auto it = expiry_.find(id);
  if (it == expiry_.end()) return LeaseNotFoundError();
  Stamp(it->second, now_ms);
  if (it->second.expires_at_ms <= now_ms) {
    // Its revocation may already be on its way through the log: renewing
    // it now would tell the client it lives while it is being deleted
    // (etcd's lessor waits for the revocation the same way). If the
    // revocation fails, a new leader gives it a full TTL again.
    return absl::UnavailableError("etcdserver: lease expired; its revocation is under way");
  }
  it->second.expires_at_ms = now_ms + it->second.ttl_ms;
  return it->second.ttl_ms / 1000;
}

std::vector<LeaseId> Lessor::Expired(int64_t now_ms, size_t max) {
  std::vector<std::pair<int64_t, LeaseId>> expired;
  for (auto& [id, clock] : expiry_) {
    Stamp(clock, now_ms);
    if (clock.expires_at_ms <= now_ms) expired.emplace_back(clock.expires_at_ms, id);
  }
  std::sort(expired.begin(), expired.end());
  std::vector<LeaseId> ids;
  for (size_t i = 0; i < expired.size() && i < max; ++i) ids.push_back(expired[i].second);
  return ids;
}

void Lessor::Promote(int64_t now_ms, int64_t extend_ms) {
  for (auto& [id, clock] : expiry_) clock.expires_at_ms = now_ms + clock.ttl_ms + extend_ms;
}

std::optional<int64_t> Lessor::RemainingMs(LeaseId id, int64_t now_ms) {
  auto it = expiry_.find(id);
  if (it == expiry_.end()) return std::nullopt;
  Stamp(it->second, now_ms);
  return std::max<int64_t>(0, it->second.expires_at_ms - now_ms);
}

}  // namespace etc::kv
