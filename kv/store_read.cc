// kv::Store's reads: Query and its handlers, ranges (listings: store_list.cc).
#include "kv/store.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "base/check.h"
#include "kv/response_status.h"
#include "kv/store_internal.h"

namespace etc::kv {

using internal::RangeOf;
using internal::WhoOf;

namespace {

void SortKvs(const etcdserverpb::RangeRequest& r,
             google::protobuf::RepeatedPtrField<mvccpb::KeyValue>* kvs) {
  auto order = r.sort_order();
  // Keys come sorted ascending; another target defaults to ascending (etcd).
  if (r.sort_target() != etcdserverpb::RangeRequest::KEY &&
      order == etcdserverpb::RangeRequest::NONE) {
    order = etcdserverpb::RangeRequest::ASCEND;
  }
  // NONE, or an unknown order (etcd leaves those unsorted too).
  if (order != etcdserverpb::RangeRequest::ASCEND && order != etcdserverpb::RangeRequest::DESCEND) {
    return;
  }
  auto key_of = [&](const mvccpb::KeyValue& kv) -> std::pair<int64_t, const std::string*> {
    switch (r.sort_target()) {
      case etcdserverpb::RangeRequest::VERSION:
        return {kv.version(), nullptr};
      case etcdserverpb::RangeRequest::CREATE:
        return {kv.create_revision(), nullptr};
      case etcdserverpb::RangeRequest::MOD:
        return {kv.mod_revision(), nullptr};
      case etcdserverpb::RangeRequest::VALUE:
        return {0, &kv.value()};
      default:
        return {0, &kv.key()};
    }
  };
  auto less = [&](const mvccpb::KeyValue& a, const mvccpb::KeyValue& b) {
    auto ka = key_of(a), kb = key_of(b);
    if (ka.second != nullptr) return *ka.second < *kb.second;
    return ka.first < kb.first;
  };
  if (order == etcdserverpb::RangeRequest::ASCEND) {
    std::stable_sort(kvs->begin(), kvs->end(), less);
  } else {
    std::stable_sort(kvs->begin(), kvs->end(),
                     [&](const mvccpb::KeyValue& a, const mvccpb::KeyValue& b) { return less(b, a); });
  }
}

}  // namespace

kvpb::Response Store::Query(const kvpb::Request& request) const {
  if (absl::Status status = Validate(request); !status.ok()) return ErrorResponse(status);
  if (!IsReadOnly(request)) {
    return ErrorResponse(absl::InvalidArgumentError("etcdserver: request writes; it must be proposed"));
  }
  AuthInfo who = WhoOf(request);
  kvpb::Response response;
  absl::Status status;
  switch (request.op_case()) {
    case kvpb::Request::kRange:
    case kvpb::Request::kTreeRange:
      status = QueryRange(request, who, &response);
      break;
    case kvpb::Request::kList:
      status = QueryList(request, who, &response);
      break;
    case kvpb::Request::kStat:
      status = QueryStat(request, who, &response);
      break;
    case kvpb::Request::kTxn: {
      // A read-only txn: evaluated without writing anything.
      status = CheckTxnPermissions(who, request.txn());
      if (status.ok()) status = CheckTxnState(request.txn());
      if (!status.ok()) break;
      // ApplyTxnOps only reads for a read-only txn; the cast is safe.
      etcdserverpb::TxnResponse txn;
      const_cast<Store*>(this)->ApplyTxnOps(request.txn(), &txn);
      *response.mutable_txn() = std::move(txn);
      break;
    }
    case kvpb::Request::kTreeGet:
      status = QueryTreeGet(request, who, &response);
      break;
    case kvpb::Request::kLeaseLeases:
    case kvpb::Request::kHashKv:
    case kvpb::Request::kAlarm:
      status = QueryMaintenance(request, who, &response);
      break;
    default:
      status = QueryUserOrRole(request, who, &response);
      break;
  }
  if (!status.ok()) return ErrorResponse(status);
  StampHeader(&response, request);
  return response;
}

absl::Status Store::QueryRange(const kvpb::Request& request, const AuthInfo& who,
                               kvpb::Response* response) const {
  etcdserverpb::RangeRequest r;
  if (request.has_range()) {
    r = request.range();
  } else {
    // A directory's subtree, as the range of its keys.
    const auto& t = request.tree_range();
    auto [key, end] = SubtreeRange(t.path());
    r.set_key(key);
    r.set_range_end(end);
    r.set_revision(t.revision());
    r.set_limit(t.limit());
    r.set_keys_only(t.keys_only());
    r.set_count_only(t.count_only());
  }
  if (absl::Status s = auth_.CheckRead(who, RangeOf(r.key(), r.range_end())); !s.ok()) return s;
  auto result = DoRange(r);
  if (!result.ok()) return result.status();
  *response->mutable_range() = std::move(*result);
  return absl::OkStatus();
}

absl::StatusOr<etcdserverpb::RangeResponse> Store::DoRange(
    const etcdserverpb::RangeRequest& r) const {
  RangeOptions options;
  options.revision = std::max<Revision>(r.revision(), 0);
  options.count_only = r.count_only();
  // Values are not read when none is returned (unless they are sorted on).
  options.keys_only = r.keys_only() && r.sort_target() != etcdserverpb::RangeRequest::VALUE;
  // With sorting or revision filters, everything is fetched and trimmed
  // afterwards (etcd); otherwise one more than the limit tells `more`.
  bool fetch_all = r.sort_order() != etcdserverpb::RangeRequest::NONE ||
                   r.sort_target() != etcdserverpb::RangeRequest::KEY ||
                   r.min_mod_revision() != 0 || r.max_mod_revision() != 0 ||
                   r.min_create_revision() != 0 || r.max_create_revision() != 0;
  if (!fetch_all && r.limit() > 0) {
    // A limit of INT64_MAX is no limit (and must not overflow).
    options.limit = r.limit() < std::numeric_limits<int64_t>::max() ? r.limit() + 1 : r.limit();
  }
  // Everything fetched, most of it dropped: values are read afterwards for
  // what is kept (unless sorted on).
  bool values_after = fetch_all && !options.keys_only &&
                      r.sort_target() != etcdserverpb::RangeRequest::VALUE;
  if (values_after) options.keys_only = true;
  absl::StatusOr<RangeResult> result = keys_.Range(RangeOf(r.key(), r.range_end()), options);
  if (!result.ok()) return result.status();
  etcdserverpb::RangeResponse response;
  *response.mutable_header() = Header();
  response.set_count(result->count);
  auto* kvs = response.mutable_kvs();
  for (mvccpb::KeyValue& kv : result->kvs) {
    if (r.max_mod_revision() != 0 && kv.mod_revision() > r.max_mod_revision()) continue;
    if (r.min_mod_revision() != 0 && kv.mod_revision() < r.min_mod_revision()) continue;
    if (r.max_create_revision() != 0 && kv.create_revision() > r.max_create_revision()) continue;
    if (r.min_create_revision() != 0 && kv.create_revision() < r.min_create_revision()) continue;
    *kvs->Add() = std::move(kv);
  }
  SortKvs(r, kvs);
  if (r.limit() > 0 && kvs->size() > r.limit()) {  // limit <= 0: no limit
    kvs->DeleteSubrange(static_cast<int>(r.limit()), kvs->size() - static_cast<int>(r.limit()));
    response.set_more(true);
  }
  if (r.keys_only()) {
    for (mvccpb::KeyValue& kv : *kvs) kv.clear_value();
  } else if (values_after) {
    for (mvccpb::KeyValue& kv : *kvs) {
      const KeyVersion* version = keys_.Find(kv.key(), options.revision);
      ETC_CHECK(version != nullptr && version->mod_revision == kv.mod_revision());
      *kv.mutable_value() = keys_.ValueOf(*version);
    }
  }
  return response;
}

absl::Status Store::QueryMaintenance(const kvpb::Request& request, const AuthInfo& who,
                                     kvpb::Response* response) const {
  if (request.has_alarm()) {
    auto* out = response->mutable_alarm();
    for (const auto& [member, type] : alarms_) {
      if (request.alarm().alarm() != etcdserverpb::NONE && type != request.alarm().alarm()) {
        continue;
      }
      auto* alarm = out->add_alarms();
      alarm->set_memberid(member);
      alarm->set_alarm(static_cast<etcdserverpb::AlarmType>(type));
    }
    return absl::OkStatus();
  }
  // Root only: etcd 3.4 lists every user's leases to anyone; a hash reads
  // every key, whoever may read them.
  if (absl::Status s = auth_.CheckAdmin(who); !s.ok()) return s;
  if (request.has_lease_leases()) {
    auto* out = response->mutable_lease_leases();
    for (const auto& [id, lease] : leases_.leases()) out->add_leases()->set_id(id);
    return absl::OkStatus();
  }
  Revision rev = request.hash_kv().revision();
  if (absl::Status s = keys_.CheckReadable(rev); !s.ok()) return s;
  auto* out = response->mutable_hash_kv();
  out->set_hash(HashKV(rev));
  out->set_compact_revision(keys_.compact_revision());
  return absl::OkStatus();
}

absl::Status Store::QueryUserOrRole(const kvpb::Request& request, const AuthInfo& who,
                                    kvpb::Response* response) const {
  absl::Status admin = auth_.CheckAdmin(who);
  switch (request.op_case()) {
    case kvpb::Request::kUserGet: {
      // A user may look itself up.
      if (!admin.ok() && request.user_get().name() != who.username) return admin;
      auto user = auth_.UserGet(request.user_get().name());
      if (!user.ok()) return user.status();
      auto* out = response->mutable_user_get();
      for (const std::string& role : user->roles()) out->add_roles(role);
      return absl::OkStatus();
    }
    case kvpb::Request::kUserList: {
      if (!admin.ok()) return admin;
      auto* out = response->mutable_user_list();
      for (const std::string& name : auth_.UserList()) out->add_users(name);
      return absl::OkStatus();
    }
    case kvpb::Request::kRoleGet: {
      // A user may look up a role it has.
      if (!admin.ok() && !auth_.HasRole(who.username, request.role_get().role())) return admin;
      auto role = auth_.RoleGet(request.role_get().role());
      if (!role.ok()) return role.status();
      auto* out = response->mutable_role_get();
      for (const authpb::Permission& p : role->keypermission()) *out->add_perm() = p;
      return absl::OkStatus();
    }
    case kvpb::Request::kRoleList: {
      if (!admin.ok()) return admin;
      auto* out = response->mutable_role_list();
      for (const std::string& name : auth_.RoleList()) out->add_roles(name);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError("etcdserver: not a read-only request");
  }
}

}  // namespace etc::kv
