#include "kv/txn.h"

#include "base/check.h"

namespace etc::kv::internal {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

absl::Status WalkTxn(const TxnRequest& txn, EnterTxnFn enter, VisitOpFn visit,
                     LeaveTxnFn leave) {
  absl::StatusOr<TxnBranches> branches = enter(txn);
  if (!branches.ok()) return branches.status();
  auto walk = [&](const google::protobuf::RepeatedPtrField<RequestOp>& ops) {
    for (const RequestOp& op : ops) {
      if (absl::Status s = visit(op); !s.ok()) return s;
      if (!op.has_request_txn()) continue;
      if (absl::Status s = WalkTxn(op.request_txn(), enter, visit, leave); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  if (*branches != TxnBranches::kFailure) {
    if (absl::Status s = walk(txn.success()); !s.ok()) return s;
  }
  if (*branches != TxnBranches::kSuccess) {
    if (absl::Status s = walk(txn.failure()); !s.ok()) return s;
  }
  leave(txn);
  return absl::OkStatus();
}

absl::Status WalkTxn(const TxnRequest& txn, EnterTxnFn enter, VisitOpFn visit) {
  return WalkTxn(txn, enter, visit, [](const TxnRequest&) {});
}

void ForEachTxnOp(const TxnRequest& txn, absl::FunctionRef<void(const RequestOp&)> visit) {
  absl::Status status = WalkTxn(
      txn, [](const TxnRequest&) -> absl::StatusOr<TxnBranches> { return TxnBranches::kBoth; },
      [&](const RequestOp& op) {
        visit(op);
        return absl::OkStatus();
      });
  ETC_CHECK(status.ok()) << status;  // nothing above fails
}

bool TxnHas(const TxnRequest& txn, RequestOp::RequestCase kind) {
  bool found = false;
  ForEachTxnOp(txn, [&](const RequestOp& op) { found = found || op.request_case() == kind; });
  return found;
}

int64_t TxnGrowth(const TxnRequest& txn) {
  int64_t growth = 0;
  ForEachTxnOp(txn, [&](const RequestOp& op) {
    if (!op.has_request_put()) return;
    growth += static_cast<int64_t>(op.request_put().key().size() + op.request_put().value().size());
  });
  return growth;
}

}  // namespace etc::kv::internal
