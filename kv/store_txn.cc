// kv::Store's transactions: compares, the checks a txn passes before it
// writes anything, and applying the branches its compares chose.
#include "kv/store.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "base/check.h"
#include "kv/store_internal.h"
#include "kv/txn.h"

namespace etc::kv {

using etcdserverpb::Compare;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using internal::RangeOf;
using internal::TxnBranches;

namespace {

int64_t CompareInt(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

// Every result in `response` and in the txns nested in it gets `header`.
void StampTxnHeaders(const etcdserverpb::ResponseHeader& header,
                     etcdserverpb::TxnResponse* response) {
  *response->mutable_header() = header;
  for (etcdserverpb::ResponseOp& op : *response->mutable_responses()) {
    if (op.has_response_range()) *op.mutable_response_range()->mutable_header() = header;
    if (op.has_response_put()) *op.mutable_response_put()->mutable_header() = header;
    if (op.has_response_delete_range()) {
      *op.mutable_response_delete_range()->mutable_header() = header;
    }
    if (op.has_response_txn()) StampTxnHeaders(header, op.mutable_response_txn());
  }
}

}  // namespace

absl::StatusOr<etcdserverpb::TxnResponse> Store::DoTxn(const TxnRequest& r, const AuthInfo& who,
                                                       uint64_t member_id) {
  if (absl::Status s = CheckTxnPermissions(who, r); !s.ok()) return s;
  if (absl::Status s = CheckTxnState(r); !s.ok()) return s;
  if (internal::TxnHas(r, RequestOp::kRequestPut)) {
    if (absl::Status s = CheckQuota(internal::TxnGrowth(r), member_id); !s.ok()) return s;
  }
  etcdserverpb::TxnResponse response;
  keys_.BeginRevision();
  ApplyTxnOps(r, &response);
  keys_.EndRevision();
  // Ranges inside report the txn's own revision, as etcd does.
  StampTxnHeaders(Header(), &response);
  return response;
}

absl::Status Store::CheckTxnPermissions(const AuthInfo& who, const TxnRequest& r) const {
  if (!auth_.enabled()) return absl::OkStatus();
  return internal::WalkTxn(
      r,
      [&](const TxnRequest& t) -> absl::StatusOr<TxnBranches> {
        for (const Compare& c : t.compare()) {
          if (absl::Status s = auth_.CheckRead(who, RangeOf(c.key(), c.range_end())); !s.ok()) {
            return s;
          }
        }
        // Both branches, whichever runs (etcd).
        return TxnBranches::kBoth;
      },
      [&](const RequestOp& op) { return CheckTxnOpPermissions(who, op); });
}

absl::Status Store::CheckTxnOpPermissions(const AuthInfo& who, const RequestOp& op) const {
  absl::Status s;
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return auth_.CheckRead(who, RangeOf(op.request_range().key(), op.request_range().range_end()));
    case RequestOp::kRequestPut:
      s = auth_.CheckWrite(who, RangeOf(op.request_put().key(), ""));
      if (s.ok() && op.request_put().prev_kv()) {
        s = auth_.CheckRead(who, RangeOf(op.request_put().key(), ""));
      }
      // As for a put outside a txn: a txn is no way around it.
      if (s.ok()) s = CheckLeaseKeys(who, op.request_put().lease());
      return s;
    case RequestOp::kRequestDeleteRange: {
      const auto& d = op.request_delete_range();
      s = auth_.CheckWrite(who, RangeOf(d.key(), d.range_end()));
      if (s.ok() && d.prev_kv()) s = auth_.CheckRead(who, RangeOf(d.key(), d.range_end()));
      return s;
    }
    default:
      return absl::OkStatus();
  }
}

absl::Status Store::CheckTxnState(const TxnRequest& r) const {
  return internal::WalkTxn(
      r,
      [&](const TxnRequest& t) -> absl::StatusOr<TxnBranches> {
        return internal::TakenBranch(EvaluateCompares(t));
      },
      [&](const RequestOp& op) {
        switch (op.request_case()) {
          case RequestOp::kRequestRange:
            return keys_.CheckReadable(std::max<Revision>(op.request_range().revision(), 0));
          case RequestOp::kRequestPut:
            return CheckPutState(op.request_put());
          default:
            return absl::OkStatus();
        }
      });
}

bool Store::EvaluateCompares(const TxnRequest& r) const {
  for (const Compare& c : r.compare()) {
    if (!CompareHolds(c)) return false;
  }
  return true;
}

bool Store::CompareHolds(const Compare& c) const {
  absl::StatusOr<RangeResult> result = keys_.Range(
      RangeOf(c.key(), c.range_end()), RangeOptions{.keys_only = c.target() != Compare::VALUE});
  if (!result.ok()) return false;
  auto holds = [&](const mvccpb::KeyValue& kv) {
    int64_t order = 0;
    switch (c.target()) {
      case Compare::VALUE:
        order = kv.value() < c.value() ? -1 : (kv.value() > c.value() ? 1 : 0);
        break;
      case Compare::CREATE:
        order = CompareInt(kv.create_revision(), c.create_revision());
        break;
      case Compare::MOD:
        order = CompareInt(kv.mod_revision(), c.mod_revision());
        break;
      case Compare::VERSION:
        order = CompareInt(kv.version(), c.version());
        break;
      case Compare::LEASE:
        order = CompareInt(kv.lease(), c.lease());
        break;
      default:
        return false;
    }
    switch (c.result()) {
      case Compare::EQUAL:
        return order == 0;
      case Compare::NOT_EQUAL:
        return order != 0;
      case Compare::GREATER:
        return order > 0;
      case Compare::LESS:
        return order < 0;
      default:
        return false;
    }
  };
  if (result->kvs.empty()) {
    // A missing key compares as all zeros, except that a value comparison
    // on a missing key always fails (etcd).
    if (c.target() == Compare::VALUE) return false;
    return holds(mvccpb::KeyValue());
  }
  for (const mvccpb::KeyValue& kv : result->kvs) {
    if (!holds(kv)) return false;
  }
  return true;
}

void Store::ApplyTxnOps(const TxnRequest& r, etcdserverpb::TxnResponse* response) {
  // Every compare of every nested txn sees the state before the txn
  // (etcd's compareToPath): decide all branches first, in the order the
  // second walk enters the txns.
  std::vector<bool> succeeded;
  absl::Status status = internal::WalkTxn(
      r,
      [&](const TxnRequest& t) -> absl::StatusOr<TxnBranches> {
        succeeded.push_back(EvaluateCompares(t));
        return internal::TakenBranch(succeeded.back());
      },
      [](const RequestOp&) { return absl::OkStatus(); });
  ETC_CHECK(status.ok()) << status;
  size_t next = 0;
  // The response of each txn the walk is in, innermost last, and the one
  // of the nested txn it enters next.
  std::vector<etcdserverpb::TxnResponse*> responses;
  etcdserverpb::TxnResponse* entering = response;
  status = internal::WalkTxn(
      r,
      [&](const TxnRequest&) -> absl::StatusOr<TxnBranches> {
        entering->set_succeeded(succeeded[next++]);
        responses.push_back(entering);
        return internal::TakenBranch(entering->succeeded());
      },
      [&](const RequestOp& op) {
        etcdserverpb::ResponseOp* result = responses.back()->add_responses();
        if (op.has_request_txn()) {
          entering = result->mutable_response_txn();
        } else {
          ApplyTxnOp(op, result);
        }
        return absl::OkStatus();
      },
      [&](const TxnRequest&) { responses.pop_back(); });
  ETC_CHECK(status.ok()) << status;
}

void Store::ApplyTxnOp(const RequestOp& op, etcdserverpb::ResponseOp* result) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange: {
      auto range = DoRange(op.request_range());
      ETC_CHECK(range.ok()) << "txn range failed after its checks: " << range.status();
      *result->mutable_response_range() = std::move(*range);
      break;
    }
    case RequestOp::kRequestPut: {
      auto put = DoPut(op.request_put());
      ETC_CHECK(put.ok()) << "txn put failed after its checks: " << put.status();
      *result->mutable_response_put() = std::move(*put);
      break;
    }
    case RequestOp::kRequestDeleteRange: {
      auto deleted = DoDeleteRange(op.request_delete_range());
      ETC_CHECK(deleted.ok());
      *result->mutable_response_delete_range() = std::move(*deleted);
      break;
    }
    default:
      break;
  }
}

}  // namespace etc::kv
