#include "sim/client_history.h"

#include <map>
#include <optional>

namespace etc::sim {
namespace {

using lincheck::OpKind;
using lincheck::Operation;

bool OneKey(const std::string& range_end) { return range_end.empty(); }

// The key a compare-and-set's compare is about, and what it expects: the
// value, or (nullopt) that the key is absent.
std::optional<std::pair<std::string, std::optional<std::string>>> CasCompare(
    const etcdserverpb::TxnRequest& txn) {
  if (txn.compare_size() != 1) return std::nullopt;
  const etcdserverpb::Compare& compare = txn.compare(0);
  if (compare.result() != etcdserverpb::Compare::EQUAL || !compare.range_end().empty()) {
    return std::nullopt;
  }
  switch (compare.target()) {
    case etcdserverpb::Compare::VALUE:
      return std::make_pair(compare.key(), std::optional<std::string>(compare.value()));
    case etcdserverpb::Compare::CREATE:
      if (compare.create_revision() != 0) return std::nullopt;
      return std::make_pair(compare.key(), std::optional<std::string>());
    case etcdserverpb::Compare::VERSION:
      if (compare.version() != 0) return std::nullopt;
      return std::make_pair(compare.key(), std::optional<std::string>());
    case etcdserverpb::Compare::MOD:
      if (compare.mod_revision() != 0) return std::nullopt;
      return std::make_pair(compare.key(), std::optional<std::string>());
    default:
      return std::nullopt;
  }
}

// A compare-and-set as etcd clients write it (see the header), or nullopt.
std::optional<Operation> AsCas(const etcdserverpb::TxnRequest& txn) {
  auto compare = CasCompare(txn);
  if (!compare.has_value() || txn.success_size() != 1 || !txn.success(0).has_request_put()) {
    return std::nullopt;
  }
  const etcdserverpb::PutRequest& put = txn.success(0).request_put();
  if (put.key() != compare->first || put.lease() != 0) return std::nullopt;
  if (txn.failure_size() > 1) return std::nullopt;
  if (txn.failure_size() == 1 && (!txn.failure(0).has_request_range() ||
                                  txn.failure(0).request_range().key() != put.key())) {
    return std::nullopt;
  }
  Operation op;
  op.key = put.key();
  op.kind = OpKind::kCas;
  op.value = put.value();
  op.expected = compare->second;
  return op;
}

// Whether the model can follow a put: nothing kept from before (a lease is
// followed: its revoke is reported as a delete).
bool FollowedPut(const etcdserverpb::PutRequest& put) {
  return !put.ignore_value() && !put.ignore_lease();
}

// Whether a many-key read answers for every key in its range: read at the
// current revision, linearizably, values and all, not cut short by a limit
// and not filtered.
bool WholeRangeRead(const etcdserverpb::RangeRequest& range,
                    const etcdserverpb::RangeResponse& got) {
  return range.revision() == 0 && !range.serializable() && !range.count_only() &&
         !range.keys_only() && !got.more() && range.min_mod_revision() == 0 &&
         range.max_mod_revision() == 0 && range.min_create_revision() == 0 &&
         range.max_create_revision() == 0;
}

}  // namespace

size_t ClientHistory::Invoke(int client, etcdserverpb::RequestOp request) {
  // Note the keys it names, and what the register model cannot follow,
  // wherever they appear.
  std::vector<const etcdserverpb::RequestOp*> pending = {&request};
  while (!pending.empty()) {
    const etcdserverpb::RequestOp* op = pending.back();
    pending.pop_back();
    if (op->has_request_put()) {
      const etcdserverpb::PutRequest& put = op->request_put();
      named_keys_.insert(put.key());
      if (!FollowedPut(put)) untracked_keys_.insert(put.key());
      if (put.lease() != 0) first_leased_put_.emplace(put.key(), logical_time_ + 1);
    } else if (op->has_request_range() && OneKey(op->request_range().range_end())) {
      named_keys_.insert(op->request_range().key());
    } else if (op->has_request_delete_range() &&
               OneKey(op->request_delete_range().range_end())) {
      named_keys_.insert(op->request_delete_range().key());
    } else if (op->has_request_txn()) {
      for (const auto& compare : op->request_txn().compare()) {
        if (OneKey(compare.range_end())) named_keys_.insert(compare.key());
      }
      for (const auto& inner : op->request_txn().success()) pending.push_back(&inner);
      for (const auto& inner : op->request_txn().failure()) pending.push_back(&inner);
    }
  }
  Call call;
  call.client = client;
  call.request = std::move(request);
  call.invoke_time = ++logical_time_;
  calls_.push_back(std::move(call));
  return calls_.size() - 1;
}

void ClientHistory::Finish(size_t index, const absl::StatusOr<etcdserverpb::ResponseOp>& answer) {
  Call& call = calls_[index];
  call.finished = true;
  call.return_time = ++logical_time_;
  if (answer.ok()) {
    call.known = true;
    call.response = *answer;
  } else {
    // kResourceExhausted is a refusal before the log (NOSPACE, too many
    // requests) or the key tree's own at apply (the quota): never applied.
    absl::StatusCode code = answer.status().code();
    call.no_effect =
        code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kResourceExhausted;
  }
}

size_t ClientHistory::unknown() const {
  size_t unknown = 0;
  for (const Call& call : calls_) unknown += !call.known && !call.no_effect;
  return unknown;
}

void ClientHistory::LeaseDeleted(const std::vector<std::string>& keys) {
  int64_t applied_time = ++logical_time_;
  for (const std::string& key : keys) {
    lincheck::Operation op;
    op.client = 0;  // the cluster's own
    op.key = key;
    op.kind = OpKind::kDelete;
    op.outcome = lincheck::Outcome::kOk;
    auto first = first_leased_put_.find(key);
    // A key no recorded put attached: from the start of the run.
    op.invoke_time = first == first_leased_put_.end() ? 0 : first->second;
    op.return_time = applied_time;
    lease_deletes_.push_back(std::move(op));
  }
}

std::vector<std::string> ClientHistory::KeysIn(const std::string& key,
                                               const std::string& range_end) const {
  std::vector<std::string> keys;
  // range_end "\0" means every key from `key` on.
  bool to_the_end = range_end == std::string(1, '\0');
  for (auto it = named_keys_.lower_bound(key);
       it != named_keys_.end() && (to_the_end || *it < range_end); ++it) {
    keys.push_back(*it);
  }
  return keys;
}

std::vector<Operation> ClientHistory::Operations() const {
  std::vector<Operation> all;
  for (const Call& call : calls_) {
    if (!call.no_effect) Expand(call, &all);
  }
  all.insert(all.end(), lease_deletes_.begin(), lease_deletes_.end());
  std::vector<Operation> checkable;
  for (Operation& op : all) {
    if (!untracked_keys_.contains(op.key)) checkable.push_back(std::move(op));
  }
  return checkable;
}

void ClientHistory::Expand(const Call& call, std::vector<Operation>* out) const {
  Operation base;
  base.client = call.client;
  base.outcome = call.known ? lincheck::Outcome::kOk : lincheck::Outcome::kUnknown;
  base.invoke_time = call.invoke_time;
  base.return_time = call.known ? call.return_time : 0;
  if (call.request.has_request_txn()) {
    ExpandTxn(call, base, out);
    return;
  }
  ExpandOp(call.request, call.known ? &call.response : nullptr, base, out);
}

void ClientHistory::ExpandOp(const etcdserverpb::RequestOp& request,
                             const etcdserverpb::ResponseOp* response, Operation base,
                             std::vector<Operation>* out) const {
  if (request.has_request_range()) {
    const etcdserverpb::RangeRequest& range = request.request_range();
    // Unknown reads tell nothing; reads of the past, serializable ones and
    // partial answers are not register reads.
    if (response == nullptr) return;
    const etcdserverpb::RangeResponse& got = response->response_range();
    if (OneKey(range.range_end())) {
      if (range.revision() != 0 || range.serializable() || range.count_only() ||
          range.keys_only()) {
        return;
      }
      base.key = range.key();
      base.kind = OpKind::kRead;
      if (got.kvs_size() > 0) base.read_result = got.kvs(0).value();
      out->push_back(std::move(base));
      return;
    }
    if (!WholeRangeRead(range, got)) return;
    std::map<std::string, const mvccpb::KeyValue*> returned;
    for (const mvccpb::KeyValue& kv : got.kvs()) returned.emplace(kv.key(), &kv);
    for (const std::string& key : KeysIn(range.key(), range.range_end())) {
      Operation read = base;
      read.key = key;
      read.kind = OpKind::kRead;
      auto it = returned.find(key);
      if (it != returned.end()) read.read_result = it->second->value();
      out->push_back(std::move(read));
    }
  } else if (request.has_request_put()) {
    base.key = request.request_put().key();
    base.kind = OpKind::kWrite;
    base.value = request.request_put().value();
    out->push_back(std::move(base));
  } else if (request.has_request_delete_range()) {
    const etcdserverpb::DeleteRangeRequest& del = request.request_delete_range();
    base.kind = OpKind::kDelete;
    if (OneKey(del.range_end())) {
      base.key = del.key();
      out->push_back(std::move(base));
      return;
    }
    for (const std::string& key : KeysIn(del.key(), del.range_end())) {
      Operation one = base;
      one.key = key;
      out->push_back(std::move(one));
    }
  } else if (request.has_request_txn()) {
    const etcdserverpb::TxnRequest& txn = request.request_txn();
    if (response == nullptr) {
      // Either branch may have run (or neither): each write is unknown.
      for (const auto& op : txn.success()) ExpandOp(op, nullptr, base, out);
      for (const auto& op : txn.failure()) ExpandOp(op, nullptr, base, out);
      return;
    }
    const etcdserverpb::TxnResponse& answer = response->response_txn();
    const auto& branch = answer.succeeded() ? txn.success() : txn.failure();
    for (int i = 0; i < branch.size() && i < answer.responses_size(); ++i) {
      ExpandOp(branch[i], &answer.responses(i), base, out);
    }
  }
}

void ClientHistory::ExpandTxn(const Call& call, Operation base, std::vector<Operation>* out) const {
  std::optional<Operation> cas = AsCas(call.request.request_txn());
  if (!cas.has_value()) {
    ExpandOp(call.request, call.known ? &call.response : nullptr, base, out);
    return;
  }
  cas->client = base.client;
  cas->outcome = base.outcome;
  cas->invoke_time = base.invoke_time;
  cas->return_time = base.return_time;
  if (call.known) cas->cas_succeeded = call.response.response_txn().succeeded();
  out->push_back(std::move(*cas));
}

}  // namespace etc::sim
