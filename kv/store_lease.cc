// kv::Store's leases: granting, revoking and expiring them through the log,
// and the leader's keepalives and time-to-live answers from its lessor.
#include "kv/store.h"
#include "kv/tree.h"

#include <optional>
#include <set>
#include <string>

#include "base/check.h"
#include "kv/errors.h"
#include "kv/store_internal.h"

namespace etc::kv {

using internal::RangeOf;

absl::Status Store::ApplyLease(const kvpb::Request& request, const AuthInfo& who,
                               kvpb::Response* response) {
  switch (request.op_case()) {
    case kvpb::Request::kLeaseGrant: {
      if (absl::Status s = CheckQuota(0, request.header().member_id()); !s.ok()) return s;
      auto lease = leases_.Grant(request.lease_grant().id(), request.lease_grant().ttl(),
                                 options_.min_lease_ttl_seconds);
      if (!lease.ok()) return lease.status();
      lessor_.Add((*lease)->id, (*lease)->ttl_seconds);
      auto* out = response->mutable_lease_grant();
      out->set_id((*lease)->id);
      out->set_ttl((*lease)->ttl_seconds);
      return absl::OkStatus();
    }
    case kvpb::Request::kLeaseRevoke: {
      LeaseId id = request.lease_revoke().id();
      if (absl::Status s = CheckLeaseKeys(who, id); !s.ok()) return s;
      return RevokeLease(id);
    }
    case kvpb::Request::kLeaseExpire:
      // Proposed by the leader, not a client: no permission check. Leases
      // revoked meanwhile are skipped.
      for (LeaseId id : request.lease_expire().ids()) {
        if (leases_.Find(id) != nullptr) ETC_CHECK(RevokeLease(id).ok());
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(
          "etcdserver: lease time-to-live is answered by the leader's lessor, not the log");
  }
}

absl::Status Store::RevokeLease(LeaseId id) {
  absl::StatusOr<std::set<std::string>> keys = leases_.Revoke(id);
  if (!keys.ok()) return keys.status();
  lessor_.Remove(id);
  // All of the lease's keys go in one revision. A directory's marker
  // (kv/tree.h) takes the directory with it: etcd v2's directory TTL.
  Revision before = keys_.revision();
  keys_.BeginRevision();
  std::string expired_dir;
  for (const std::string& key : *keys) {
    etcdserverpb::DeleteRangeRequest deletion;
    if (IsDirMarker(key) && key != "/") {
      auto [begin, end] = SubtreeRange(NodePathOf(key));
      deletion.set_key(begin);
      deletion.set_range_end(end);
      if (expired_dir.empty()) expired_dir = std::string(NodePathOf(key));
    } else {
      deletion.set_key(key);
    }
    (void)DoDeleteRange(deletion);
  }
  Revision revision = keys_.EndRevision();
  // A lease without keys changes nothing: no revision to note.
  if (revision > before) NoteTreeEvent(revision, "expire", expired_dir, !expired_dir.empty());
  return absl::OkStatus();
}

absl::Status Store::CheckLeaseKeys(const AuthInfo& who, LeaseId id) const {
  if (!auth_.enabled() || id == 0) return absl::OkStatus();
  // Attaching (or revoking) a lease whose other keys this user could not
  // delete would let the user delete them (etcd's checkLeasePuts).
  const Lease* lease = leases_.Find(id);
  if (lease == nullptr) return absl::OkStatus();
  for (const std::string& key : lease->keys) {
    if (absl::Status s = auth_.CheckWrite(who, RangeOf(key, "")); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Store::KeepAlive(LeaseId id, int64_t now_ms) {
  if (leases_.Find(id) == nullptr) return LeaseNotFoundError();
  return lessor_.Renew(id, now_ms);
}

etcdserverpb::LeaseTimeToLiveResponse Store::TimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& r, int64_t now_ms) {
  etcdserverpb::LeaseTimeToLiveResponse response;
  *response.mutable_header() = Header();
  response.set_id(r.id());
  const Lease* lease = leases_.Find(r.id());
  std::optional<int64_t> remaining_ms = lessor_.RemainingMs(r.id(), now_ms);
  if (lease == nullptr || !remaining_ms.has_value()) {
    // etcd answers an unknown lease with TTL -1.
    response.set_ttl(-1);
    return response;
  }
  // Whole seconds left, truncated as etcd does.
  response.set_ttl(*remaining_ms / 1000);
  response.set_grantedttl(lease->ttl_seconds);
  if (r.keys()) {
    for (const std::string& key : lease->keys) response.add_keys(key);
  }
  return response;
}

}  // namespace etc::kv
