// The one walk over a txn and the txns nested in it. Every pass that visits
// a txn's ops (validation, permissions, preconditions, applying) goes
// through WalkTxn, so they all meet the ops in the order etcd runs them: a
// txn's success branch before its failure branch, each branch's ops in
// order, a nested txn's ops right after the op that holds it. Applying
// depends on that order: it decides every branch in one walk and consumes
// the decisions in a second. (The duplicate-key check, store_validate.cc's
// CheckIntervals, is a fold over each branch's put and delete sets instead,
// as etcd's checkIntervals is.) Not part of the key tree's API.
//
//   // Refuses a txn that writes in the branches its compares choose
//   // (`Holds` evaluates a txn's compares):
//   absl::Status status = WalkTxn(
//       txn,
//       [&](const TxnRequest& t) -> absl::StatusOr<TxnBranches> {
//         return TakenBranch(Holds(t));
//       },
//       [](const RequestOp& op) {
//         return op.has_request_put() || op.has_request_delete_range()
//                    ? absl::InvalidArgumentError("txn writes")
//                    : absl::OkStatus();
//       });
#ifndef ETC_KV_TXN_H_
#define ETC_KV_TXN_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/etcdserverpb/rpc.pb.h"

namespace etc::kv::internal {

// The branches of a txn a walk enters.
enum class TxnBranches { kBoth, kSuccess, kFailure };

// The branch a txn takes when its compares hold, or do not.
inline TxnBranches TakenBranch(bool compares_hold) {
  return compares_hold ? TxnBranches::kSuccess : TxnBranches::kFailure;
}

// Called at each txn the walk reaches, the outermost first, before any of
// its ops: the branches to walk, or an error that ends the walk.
using EnterTxnFn =
    absl::FunctionRef<absl::StatusOr<TxnBranches>(const etcdserverpb::TxnRequest&)>;
// Called at each op of a walked branch, a nested txn's op too (before the
// walk enters that txn); an error ends the walk.
using VisitOpFn = absl::FunctionRef<absl::Status(const etcdserverpb::RequestOp&)>;
// Called at each txn once its walked ops (nested ones included) are done.
using LeaveTxnFn = absl::FunctionRef<void(const etcdserverpb::TxnRequest&)>;

// Walks `txn` and the txns nested in the branches `enter` chooses. Returns
// the first error `enter` or `visit` returns; after an error, no `leave`.
absl::Status WalkTxn(const etcdserverpb::TxnRequest& txn, EnterTxnFn enter, VisitOpFn visit,
                     LeaveTxnFn leave);
absl::Status WalkTxn(const etcdserverpb::TxnRequest& txn, EnterTxnFn enter, VisitOpFn visit);

// Every op of both branches of `txn` and of every txn nested in them.
void ForEachTxnOp(const etcdserverpb::TxnRequest& txn,
                  absl::FunctionRef<void(const etcdserverpb::RequestOp&)> visit);

// Whether an op of `kind` is in either branch of `txn`, at any depth.
bool TxnHas(const etcdserverpb::TxnRequest& txn, etcdserverpb::RequestOp::RequestCase kind);

// The bytes (keys and values) the puts of both branches of `txn`, at any
// depth, would write: what the quota is checked against, before the
// compares choose.
int64_t TxnGrowth(const etcdserverpb::TxnRequest& txn);

}  // namespace etc::kv::internal

#endif  // ETC_KV_TXN_H_
