// kv::Store's writes: Apply and its handlers for puts, deletes, alarms and
// auth, and the quota every growing write is checked against.
#include "kv/store.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/check.h"
#include "kv/errors.h"
#include "kv/response_status.h"
#include "kv/store_internal.h"
#include "kv/txn.h"

namespace etc::kv {

using internal::RangeOf;
using internal::WhoOf;

kvpb::Response Store::Apply(const kvpb::Request& request) {
  if (absl::Status status = Validate(request); !status.ok()) return ErrorResponse(status);
  // Reads that went through the log (a linearizable read by proposal). A
  // txn that only reads is still applied below, where every nested result
  // gets its header.
  if (!request.has_txn() && IsReadOnly(request)) return Query(request);
  AuthInfo who = WhoOf(request);
  kvpb::Response response;
  absl::Status status;
  switch (request.op_case()) {
    case kvpb::Request::kPut:
      status = ApplyPut(request, who, &response);
      break;
    case kvpb::Request::kDeleteRange:
    case kvpb::Request::kDeleteTree:
      status = ApplyDelete(request, who, &response);
      break;
    case kvpb::Request::kTxn: {
      auto txn = DoTxn(request.txn(), who, request.header().member_id());
      status = txn.status();
      if (txn.ok()) *response.mutable_txn() = std::move(*txn);
      break;
    }
    case kvpb::Request::kCompaction:
      // Root only (etcd 3.4 lets any user compact away everyone's history).
      status = auth_.CheckAdmin(who);
      if (status.ok()) status = keys_.Compact(request.compaction().revision());
      break;
    case kvpb::Request::kLeaseGrant:
    case kvpb::Request::kLeaseRevoke:
    case kvpb::Request::kLeaseExpire:
    case kvpb::Request::kLeaseTimeToLive:
      status = ApplyLease(request, who, &response);
      break;
    case kvpb::Request::kTreeSet:
      status = ApplyTreeSet(request, who, &response);
      break;
    case kvpb::Request::kTreeDelete:
      status = ApplyTreeDelete(request, who, &response);
      break;
    case kvpb::Request::kAlarm:
      status = ApplyAlarm(request, who, &response);
      break;
    case kvpb::Request::kDiskSpaceAlarm:
      ApplyDiskSpaceAlarm(request, &response);
      break;
    case kvpb::Request::kAuthEnable:
    case kvpb::Request::kAuthDisable:
    case kvpb::Request::kAuthenticate:
      status = ApplyAuthSwitch(request, who, &response);
      break;
    default:
      status = ApplyUserOrRole(request, who);
      break;
  }
  if (!status.ok()) return ErrorResponse(status);
  StampHeader(&response, request);
  watches_.Notify();
  return response;
}

absl::Status Store::ApplyPut(const kvpb::Request& request, const AuthInfo& who,
                             kvpb::Response* response) {
  const auto& r = request.put();
  if (absl::Status s = auth_.CheckWrite(who, RangeOf(r.key(), "")); !s.ok()) return s;
  if (r.prev_kv()) {
    if (absl::Status s = auth_.CheckRead(who, RangeOf(r.key(), "")); !s.ok()) return s;
  }
  if (absl::Status s = CheckLeaseKeys(who, r.lease()); !s.ok()) return s;
  if (absl::Status s = CheckPutState(r); !s.ok()) return s;
  if (absl::Status s = CheckQuota(static_cast<int64_t>(r.key().size() + r.value().size()),
                                  request.header().member_id());
      !s.ok()) {
    return s;
  }
  keys_.BeginRevision();
  auto put = DoPut(r);
  keys_.EndRevision();
  ETC_CHECK(put.ok()) << put.status();
  *response->mutable_put() = std::move(*put);
  return absl::OkStatus();
}

absl::Status Store::ApplyDelete(const kvpb::Request& request, const AuthInfo& who,
                                kvpb::Response* response) {
  // A recursive delete is one or two ranges: the subtree, and with
  // include_path_key first the key naming it (it sorts before its subtree,
  // so prev_kvs stay in key order). The root's subtree ["/", "0") already
  // holds the key "/".
  std::vector<etcdserverpb::DeleteRangeRequest> ranges(1);
  if (request.has_delete_range()) {
    ranges[0] = request.delete_range();
  } else {
    const kvpb::DeleteTreeRequest& t = request.delete_tree();
    auto [key, end] = SubtreeRange(t.path());
    if (t.include_path_key() && !t.path().empty() && t.path() != key) {
      ranges[0].set_key(t.path());
      ranges.emplace_back();
    }
    ranges.back().set_key(key);
    ranges.back().set_range_end(end);
    for (auto& r : ranges) r.set_prev_kv(t.prev_kv());
  }
  for (const auto& r : ranges) {
    if (absl::Status s = auth_.CheckWrite(who, RangeOf(r.key(), r.range_end())); !s.ok()) return s;
    if (!r.prev_kv()) continue;
    if (absl::Status s = auth_.CheckRead(who, RangeOf(r.key(), r.range_end())); !s.ok()) return s;
  }
  keys_.BeginRevision();
  etcdserverpb::DeleteRangeResponse* out = response->mutable_delete_range();
  for (const auto& r : ranges) {
    auto deleted = DoDeleteRange(r);
    ETC_CHECK(deleted.ok()) << deleted.status();
    out->set_deleted(out->deleted() + deleted->deleted());
    for (mvccpb::KeyValue& kv : *deleted->mutable_prev_kvs()) *out->add_prev_kvs() = std::move(kv);
  }
  keys_.EndRevision();
  return absl::OkStatus();
}

absl::Status Store::CheckPutState(const etcdserverpb::PutRequest& r) const {
  if (r.ignore_value() || r.ignore_lease()) {
    if (!keys_.Get(r.key(), 0, /*with_value=*/false).has_value()) return KeyNotFoundError();
  }
  if (r.lease() != 0 && leases_.Find(r.lease()) == nullptr) return LeaseNotFoundError();
  return absl::OkStatus();
}

absl::StatusOr<etcdserverpb::PutResponse> Store::DoPut(const etcdserverpb::PutRequest& r,
                                                       bool replace) {
  if (absl::Status s = CheckPutState(r); !s.ok()) return s;
  std::optional<mvccpb::KeyValue> current = keys_.Get(r.key(), 0, /*with_value=*/r.ignore_value());
  std::string_view value = r.value();
  LeaseId lease = r.lease();
  if (r.ignore_value()) value = current->value();
  if (r.ignore_lease()) lease = current->lease();
  // Copy: `value` may point into the version about to be superseded.
  std::string value_copy(value);
  std::optional<mvccpb::KeyValue> previous =
      keys_.Put(r.key(), value_copy, lease, replace, /*previous_value=*/r.prev_kv());
  if (previous.has_value() && previous->lease() != 0 && previous->lease() != lease) {
    leases_.Detach(previous->lease(), r.key());
  }
  if (lease != 0) leases_.Attach(lease, r.key());
  etcdserverpb::PutResponse response;
  if (r.prev_kv() && previous.has_value()) *response.mutable_prev_kv() = std::move(*previous);
  return response;
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> Store::DoDeleteRange(
    const etcdserverpb::DeleteRangeRequest& r) {
  std::vector<mvccpb::KeyValue> deleted =
      keys_.DeleteRange(RangeOf(r.key(), r.range_end()), /*with_values=*/r.prev_kv());
  etcdserverpb::DeleteRangeResponse response;
  response.set_deleted(static_cast<int64_t>(deleted.size()));
  for (mvccpb::KeyValue& kv : deleted) {
    if (kv.lease() != 0) leases_.Detach(kv.lease(), kv.key());
    if (r.prev_kv()) *response.add_prev_kvs() = std::move(kv);
  }
  return response;
}

absl::Status Store::CheckQuota(int64_t growth_bytes, uint64_t member_id) {
  if (nospace()) return NoSpaceError();
  if (keys_.size_bytes() + growth_bytes > options_.quota_bytes) {
    alarms_.insert({member_id, etcdserverpb::NOSPACE});
    return NoSpaceError();
  }
  return absl::OkStatus();
}

bool Store::RefusedForNoSpace(const kvpb::Request& request) const {
  if (!nospace()) return false;
  // What CheckQuota guards when applied: the requests that may grow the tree.
  switch (request.op_case()) {
    case kvpb::Request::kPut:
    case kvpb::Request::kLeaseGrant:
    case kvpb::Request::kTreeSet:
      return true;
    case kvpb::Request::kTxn:
      return internal::TxnHas(request.txn(), etcdserverpb::RequestOp::kRequestPut);
    default:
      return false;
  }
}

void Store::ApplyDiskSpaceAlarm(const kvpb::Request& request, kvpb::Response* response) {
  // No auth check: only a member proposes it, about itself (clients reach
  // alarms through AlarmRequest, root only).
  std::pair<uint64_t, int> alarm{request.header().member_id(), etcdserverpb::NOSPACE};
  bool changed = request.disk_space_alarm().low() ? alarms_.insert(alarm).second
                                                : alarms_.erase(alarm) > 0;
  auto* out = response->mutable_alarm();
  if (changed) {
    auto* member = out->add_alarms();
    member->set_memberid(alarm.first);
    member->set_alarm(etcdserverpb::NOSPACE);
  }
}

bool Store::nospace() const {
  for (const auto& [member, type] : alarms_) {
    if (type == etcdserverpb::NOSPACE) return true;
  }
  return false;
}

absl::Status Store::ApplyAlarm(const kvpb::Request& request, const AuthInfo& who,
                               kvpb::Response* response) {
  const auto& r = request.alarm();
  // Root only: etcd 3.4 lets any user raise or clear alarms (a cleared
  // NOSPACE lets writes past the quota again).
  if (absl::Status s = auth_.CheckAdmin(who); !s.ok()) return s;
  auto* out = response->mutable_alarm();
  std::pair<uint64_t, int> alarm{r.memberid(), r.alarm()};
  if (r.alarm() != etcdserverpb::NONE) {
    bool changed = r.action() == etcdserverpb::AlarmRequest::ACTIVATE
                       ? alarms_.insert(alarm).second
                       : alarms_.erase(alarm) > 0;
    if (changed) {
      auto* member = out->add_alarms();
      member->set_memberid(r.memberid());
      member->set_alarm(r.alarm());
    }
  }
  return absl::OkStatus();
}

absl::Status Store::ApplyAuthSwitch(const kvpb::Request& request, const AuthInfo& who,
                                    kvpb::Response* response) {
  if (request.has_auth_enable()) {
    if (absl::Status s = auth_.CheckAdmin(who); !s.ok()) return s;
    return auth_.Enable();
  }
  if (request.has_auth_disable()) {
    if (absl::Status s = auth_.CheckAdmin(who); !s.ok()) return s;
    auth_.Disable();
    // As etcd's: no token survives auth off and on again.
    tokens_.Clear();
    return absl::OkStatus();
  }
  const auto& r = request.authenticate();
  if (!auth_.enabled()) return AuthNotEnabledError();
  // The proposer checked the password; the user may have gone, or lost
  // its password, since.
  absl::StatusOr<authpb::User> user = auth_.UserGet(r.name());
  if (!user.ok() || user->options().no_password()) return AuthFailedError();
  if (r.token().empty()) return absl::InvalidArgumentError("etcdserver: empty token");
  tokens_.Add(r.token(), r.name());
  response->mutable_authenticate()->set_token(r.token());
  return absl::OkStatus();
}

absl::Status Store::ApplyUserOrRole(const kvpb::Request& request, const AuthInfo& who) {
  // User and role management: admin only.
  if (absl::Status s = auth_.CheckAdmin(who); !s.ok()) return s;
  switch (request.op_case()) {
    case kvpb::Request::kUserAdd:
      return auth_.UserAdd(request.user_add().name(), request.user_add().password_hash(),
                           request.user_add().options());
    case kvpb::Request::kUserDelete: {
      const std::string& name = request.user_delete().name();
      absl::Status deleted = auth_.UserDelete(name);
      // A token must not outlive its user: one made again under the name
      // (with the root role, say) is not the holder of the old token.
      if (deleted.ok()) tokens_.InvalidateUser(name);
      return deleted;
    }
    case kvpb::Request::kUserChangePassword: {
      const std::string& name = request.user_change_password().name();
      absl::Status changed =
          auth_.UserChangePassword(name, request.user_change_password().password_hash());
      // A new password shuts out whoever knew the old one, logged in or not.
      if (changed.ok()) tokens_.InvalidateUser(name);
      return changed;
    }
    case kvpb::Request::kUserGrantRole:
      return auth_.UserGrantRole(request.user_grant_role().user(), request.user_grant_role().role());
    case kvpb::Request::kUserRevokeRole:
      return auth_.UserRevokeRole(request.user_revoke_role().name(),
                                  request.user_revoke_role().role());
    case kvpb::Request::kRoleAdd:
      return auth_.RoleAdd(request.role_add().name());
    case kvpb::Request::kRoleDelete:
      return auth_.RoleDelete(request.role_delete().role());
    case kvpb::Request::kRoleGrantPermission:
      return auth_.RoleGrantPermission(request.role_grant_permission().name(),
                                       request.role_grant_permission().perm());
    case kvpb::Request::kRoleRevokePermission:
      return auth_.RoleRevokePermission(request.role_revoke_permission().role(),
                                        request.role_revoke_permission().key(),
                                        request.role_revoke_permission().range_end());
    default:
      return absl::InvalidArgumentError("etcdserver: unknown request");
  }
}

}  // namespace etc::kv
