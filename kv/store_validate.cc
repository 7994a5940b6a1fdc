// kv::Store's validation: the checks a request passes before the state is
// looked at (etcd's v3rpc checks), and which requests only read.
#include "kv/store.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kv/errors.h"
#include "kv/store_internal.h"
#include "kv/tree.h"
#include "kv/txn.h"

namespace etc::kv {

using etcdserverpb::Compare;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using internal::RangeOf;
using internal::TxnBranches;

namespace {

// Leases revoked per LeaseExpire entry at most (the leader proposes more
// entries for more).
constexpr int kMaxExpirePerRequest = 1000;

absl::Status CheckRangeRequest(const etcdserverpb::RangeRequest& r) {
  if (r.key().empty()) return EmptyKeyError();
  // A negative limit or revision is accepted, as etcd does: no limit, and
  // the current revision.
  // An unknown sort order is served unsorted (key order), as etcd 3.4 does
  // (it never checks). An unknown sort target crashes etcd 3.4; here it is
  // an error.
  if (!etcdserverpb::RangeRequest::SortTarget_IsValid(r.sort_target())) {
    return absl::InvalidArgumentError("etcdserver: invalid sort option");
  }
  return absl::OkStatus();
}

absl::Status CheckPutRequest(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return EmptyKeyError();
  if (r.ignore_value() && !r.value().empty()) return ValueProvidedError();
  if (r.ignore_lease() && r.lease() != 0) return LeaseProvidedError();
  return absl::OkStatus();
}

absl::Status CheckDeleteRequest(const etcdserverpb::DeleteRangeRequest& r) {
  if (r.key().empty()) return EmptyKeyError();
  return absl::OkStatus();
}

absl::Status CheckRequestOp(const RequestOp& op) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return CheckRangeRequest(op.request_range());
    case RequestOp::kRequestPut:
      return CheckPutRequest(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return CheckDeleteRequest(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return absl::OkStatus();  // checked as the walk enters it
    case RequestOp::REQUEST_NOT_SET:
      break;
  }
  return KeyNotFoundError();
}

// etcd's checkIntervals: within a txn a key may be put once, and not both
// put and deleted (deletes may overlap each other); the two branches of a
// nested txn may each put the same key. Not a WalkTxn: each branch's sets
// are checked against each other bottom up, whatever order the ops are in.
absl::Status CheckIntervals(const google::protobuf::RepeatedPtrField<RequestOp>& ops,
                            std::set<std::string>* puts,
                            std::vector<std::pair<std::string, std::string>>* deletes) {
  auto deleted = [&](const std::string& key) {
    for (const auto& [b, e] : *deletes) {
      if (RangeOf(b, e).Contains(key)) return true;
    }
    return false;
  };
  for (const RequestOp& op : ops) {
    if (op.has_request_delete_range()) {
      deletes->emplace_back(op.request_delete_range().key(), op.request_delete_range().range_end());
    }
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_txn()) continue;
    std::set<std::string> puts_then, puts_else;
    std::vector<std::pair<std::string, std::string>> dels_then, dels_else;
    absl::Status status = CheckIntervals(op.request_txn().success(), &puts_then, &dels_then);
    if (!status.ok()) return status;
    status = CheckIntervals(op.request_txn().failure(), &puts_else, &dels_else);
    if (!status.ok()) return status;
    for (const std::string& key : puts_then) {
      if (puts->contains(key) || deleted(key)) return DuplicateKeyError();
      puts->insert(key);
    }
    for (const std::string& key : puts_else) {
      if (puts->contains(key) && !puts_then.contains(key)) return DuplicateKeyError();
      if (deleted(key)) return DuplicateKeyError();
      puts->insert(key);
    }
    deletes->insert(deletes->end(), dels_then.begin(), dels_then.end());
    deletes->insert(deletes->end(), dels_else.begin(), dels_else.end());
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_put()) continue;
    const std::string& key = op.request_put().key();
    if (puts->contains(key) || deleted(key)) return DuplicateKeyError();
    puts->insert(key);
  }
  return absl::OkStatus();
}

absl::Status CheckCompares(const TxnRequest& r) {
  for (const Compare& c : r.compare()) {
    if (c.key().empty()) return EmptyKeyError();
    if (!Compare::CompareResult_IsValid(c.result()) ||
        !Compare::CompareTarget_IsValid(c.target())) {
      return absl::InvalidArgumentError("etcdserver: invalid compare");
    }
  }
  return absl::OkStatus();
}

// etcd's checkTxnRequest: a txn holds at most `max_ops` ops per branch (or
// compares), and a nested txn at most what its parent's own ops leave.
absl::Status CheckTxnRequest(const TxnRequest& r, int max_ops) {
  // The ops each txn the walk is in leaves its nested txns, innermost last.
  std::vector<int> budgets = {max_ops};
  return internal::WalkTxn(
      r,
      [&](const TxnRequest& t) -> absl::StatusOr<TxnBranches> {
        int ops = std::max({t.compare_size(), t.success_size(), t.failure_size()});
        if (ops > budgets.back()) return TooManyOpsError();
        if (absl::Status s = CheckCompares(t); !s.ok()) return s;
        budgets.push_back(budgets.back() - ops);
        return TxnBranches::kBoth;
      },
      CheckRequestOp, [&](const TxnRequest&) { budgets.pop_back(); });
}

absl::Status CheckTopLevelTxn(const TxnRequest& r, int max_ops) {
  if (absl::Status s = CheckTxnRequest(r, max_ops); !s.ok()) return s;
  for (const auto* branch : {&r.success(), &r.failure()}) {
    std::set<std::string> puts;
    std::vector<std::pair<std::string, std::string>> deletes;
    if (absl::Status s = CheckIntervals(*branch, &puts, &deletes); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// etcd v2's keys API: normalized paths (the server cleans clients' paths
// first), and only the fields the request's mode uses.
absl::Status CheckTreeRequest(const kvpb::Request& request) {
  const std::string& path = request.has_tree_get()   ? request.tree_get().path()
                            : request.has_tree_set() ? request.tree_set().path()
                                                     : request.tree_delete().path();
  if (!IsNormalTreePath(path)) {
    return absl::InvalidArgumentError("etcdserver: a v2 key must be a clean path from the root");
  }
  if (request.has_tree_get()) {
    if (request.tree_get().revision() < 0) {
      return absl::InvalidArgumentError("etcdserver: negative revision");
    }
    return absl::OkStatus();
  }
  if (request.has_tree_delete()) {
    if (request.tree_delete().prev_index() < 0) {
      return absl::InvalidArgumentError("etcdserver: negative prevIndex");
    }
    return absl::OkStatus();
  }
  const kvpb::TreeSetRequest& r = request.tree_set();
  if (!kvpb::TreeSetRequest::Mode_IsValid(r.mode())) {
    return absl::InvalidArgumentError("etcdserver: unknown v2 write mode");
  }
  if (r.prev_index() < 0 || r.lease() < 0) {
    return absl::InvalidArgumentError("etcdserver: negative prevIndex or lease");
  }
  if (r.mode() != kvpb::TreeSetRequest::COMPARE_AND_SWAP &&
      (!r.prev_value().empty() || r.prev_index() != 0)) {
    return absl::InvalidArgumentError("etcdserver: prevValue and prevIndex need compare-and-swap");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Store::Validate(const kvpb::Request& request) const {
  if (static_cast<int64_t>(request.ByteSizeLong()) > options_.max_request_bytes) {
    return RequestTooLargeError();
  }
  switch (request.op_case()) {
    case kvpb::Request::kRange:
      return CheckRangeRequest(request.range());
    case kvpb::Request::kPut:
      return CheckPutRequest(request.put());
    case kvpb::Request::kDeleteRange:
      return CheckDeleteRequest(request.delete_range());
    case kvpb::Request::kTxn:
      return CheckTopLevelTxn(request.txn(), options_.max_txn_ops);
    case kvpb::Request::kCompaction:
      if (request.compaction().revision() <= 0) return CompactedError();
      return absl::OkStatus();
    case kvpb::Request::kList:
    case kvpb::Request::kTreeRange:
      if ((request.has_list() ? request.list().limit() : request.tree_range().limit()) < 0) {
        return absl::InvalidArgumentError("etcdserver: negative limit");
      }
      if ((request.has_list() ? request.list().revision() : request.tree_range().revision()) <
          0) {
        return absl::InvalidArgumentError("etcdserver: negative revision");
      }
      return absl::OkStatus();
    case kvpb::Request::kStat:
      if (request.stat().revision() < 0) {
        return absl::InvalidArgumentError("etcdserver: negative revision");
      }
      return absl::OkStatus();
    case kvpb::Request::kDeleteTree:
      return absl::OkStatus();
    case kvpb::Request::kTreeGet:
    case kvpb::Request::kTreeSet:
    case kvpb::Request::kTreeDelete:
      return CheckTreeRequest(request);
    case kvpb::Request::kLeaseGrant:
      if (request.lease_grant().ttl() > kMaxLeaseTtlSeconds) return LeaseTtlTooLargeError();
      if (request.lease_grant().id() < 0) {
        return absl::InvalidArgumentError("etcdserver: lease id must not be negative");
      }
      return absl::OkStatus();
    case kvpb::Request::kLeaseExpire:
      if (request.lease_expire().ids_size() > kMaxExpirePerRequest) {
        return absl::InvalidArgumentError("etcdserver: too many leases in one expiry");
      }
      return absl::OkStatus();
    case kvpb::Request::kAlarm:
      if (!etcdserverpb::AlarmRequest::AlarmAction_IsValid(request.alarm().action()) ||
          !etcdserverpb::AlarmType_IsValid(request.alarm().alarm())) {
        return absl::InvalidArgumentError("etcdserver: invalid alarm request");
      }
      return absl::OkStatus();
    case kvpb::Request::kUserAdd:
      if (request.user_add().name().empty()) return UserEmptyError();
      return absl::OkStatus();
    case kvpb::Request::kRoleAdd:
      if (request.role_add().name().empty()) return RoleEmptyError();
      return absl::OkStatus();
    case kvpb::Request::kRoleGrantPermission:
      if (!request.role_grant_permission().has_perm()) {
        return absl::InvalidArgumentError("etcdserver: permission is not provided");
      }
      if (!authpb::Permission::Type_IsValid(request.role_grant_permission().perm().permtype())) {
        return absl::InvalidArgumentError("etcdserver: invalid permission type");
      }
      return absl::OkStatus();
    case kvpb::Request::OP_NOT_SET:
      return absl::InvalidArgumentError("etcdserver: empty request");
    default:
      return absl::OkStatus();
  }
}

bool Store::IsReadOnly(const kvpb::Request& request) {
  switch (request.op_case()) {
    case kvpb::Request::kRange:
    case kvpb::Request::kList:
    case kvpb::Request::kStat:
    case kvpb::Request::kTreeRange:
    case kvpb::Request::kTreeGet:
    case kvpb::Request::kLeaseLeases:
    case kvpb::Request::kHashKv:
    case kvpb::Request::kUserGet:
    case kvpb::Request::kUserList:
    case kvpb::Request::kRoleGet:
    case kvpb::Request::kRoleList:
      return true;
    case kvpb::Request::kAlarm:
      return request.alarm().action() == etcdserverpb::AlarmRequest::GET;
    case kvpb::Request::kTxn:
      return !internal::TxnHas(request.txn(), RequestOp::kRequestPut) &&
             !internal::TxnHas(request.txn(), RequestOp::kRequestDeleteRange);
    default:
      return false;
  }
}

}  // namespace etc::kv
