// The key tree against a naive model: a std::map per revision. Random
// sequences of puts, deletes, txns (with compares, nested txns and ranges
// inside), compactions, snapshot round trips, ranges at random revisions
// and, over the same keys, etcd v2's sets, deletes and gets (tree_model.h)
// must give exactly the model's answers, revision for revision.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kv/errors.h"
#include "kv/store.h"
#include "kv/tree_model.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace etc::kv {
namespace {

class Model {
 public:
  Model() : states_(1) {}
  int64_t revision() const { return static_cast<int64_t>(states_.size()) - 1; }
  const State& at(int64_t revision) const { return states_[static_cast<size_t>(revision)]; }
  const State& now() const { return states_.back(); }

  // A write revision: changes go to `next_`, then Commit.
  void Begin() { next_ = now(); changed_ = false; }
  void Put(const std::string& key, const std::string& value, bool replace = false) {
    int64_t rev = revision() + 1;
    auto it = next_.find(key);
    if (it == next_.end() || replace) {
      next_[key] = ModelKv{value, rev, rev, 1};
    } else {
      it->second.value = value;
      it->second.mod = rev;
      ++it->second.version;
    }
    changed_ = true;
  }
  int64_t Delete(const std::string& key, const std::string& end) {
    int64_t deleted = 0;
    for (auto it = next_.begin(); it != next_.end();) {
      if (KeyRange{key, end}.Contains(it->first)) {
        it = next_.erase(it);
        ++deleted;
      } else {
        ++it;
      }
    }
    if (deleted > 0) changed_ = true;
    return deleted;
  }
  const State& pending() const { return next_; }
  void Commit() {
    if (changed_) states_.push_back(next_);
  }
  int64_t compacted = 0;

 private:
  std::vector<State> states_;
  State next_;
  bool changed_ = false;
};

// Paths, so that v2's requests reach the same keys ("/a/" marks the
// directory "/a" explicit).
const std::vector<std::string> kKeys = {"/a",     "/a/", "/a/x", "/a/y", "/a/x/q",
                                        "/a/_h", "/b",  "/b/z", "/c"};

std::string AnyKey() { return *rc::gen::elementOf(kKeys); }

// A range in etcd's forms: single key, prefix, from-key, [k1, k2).
std::pair<std::string, std::string> AnyRange() {
  int form = *rc::gen::inRange(0, 4);
  std::string key = AnyKey();
  switch (form) {
    case 0:
      return {key, ""};
    case 1:
      return {key, PrefixEnd(key)};
    case 2:
      return {key, std::string(1, '\0')};
    default:
      return {key, AnyKey()};
  }
}

void ExpectKv(const mvccpb::KeyValue& kv, const std::string& key, const ModelKv& model) {
  RC_ASSERT(kv.key() == key);
  RC_ASSERT(kv.value() == model.value);
  RC_ASSERT(kv.create_revision() == model.create);
  RC_ASSERT(kv.mod_revision() == model.mod);
  RC_ASSERT(kv.version() == model.version);
}

void CheckRange(const etcdserverpb::RangeResponse& response, const State& state,
                const std::string& key, const std::string& end, int64_t limit) {
  std::vector<std::pair<std::string, ModelKv>> expected;
  for (const auto& [k, v] : state) {
    if (KeyRange{key, end}.Contains(k)) expected.emplace_back(k, v);
  }
  RC_ASSERT(response.count() == static_cast<int64_t>(expected.size()));
  size_t shown = limit > 0 ? std::min(expected.size(), static_cast<size_t>(limit)) : expected.size();
  RC_ASSERT(response.kvs_size() == static_cast<int>(shown));
  RC_ASSERT(response.more() == (shown < expected.size()));
  for (size_t i = 0; i < shown; ++i) {
    ExpectKv(response.kvs(static_cast<int>(i)), expected[i].first, expected[i].second);
  }
}

etcdserverpb::Compare AnyCompare() {
  etcdserverpb::Compare c;
  c.set_key(AnyKey());
  c.set_result(static_cast<etcdserverpb::Compare::CompareResult>(*rc::gen::inRange(0, 4)));
  switch (*rc::gen::inRange(0, 4)) {
    case 0:
      c.set_target(etcdserverpb::Compare::VERSION);
      c.set_version(*rc::gen::inRange<int64_t>(0, 3));
      break;
    case 1:
      c.set_target(etcdserverpb::Compare::CREATE);
      c.set_create_revision(*rc::gen::inRange<int64_t>(0, 10));
      break;
    case 2:
      c.set_target(etcdserverpb::Compare::MOD);
      c.set_mod_revision(*rc::gen::inRange<int64_t>(0, 10));
      break;
    default:
      c.set_target(etcdserverpb::Compare::VALUE);
      c.set_value(*rc::gen::element<std::string>("v0", "v1", "v2"));
      break;
  }
  return c;
}

bool ModelCompare(const State& state, const etcdserverpb::Compare& c) {
  auto it = state.find(c.key());
  if (it == state.end() && c.target() == etcdserverpb::Compare::VALUE) return false;
  ModelKv kv = it == state.end() ? ModelKv{} : it->second;
  int order = 0;
  auto cmp = [](auto a, auto b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target()) {
    case etcdserverpb::Compare::VERSION:
      order = cmp(kv.version, c.version());
      break;
    case etcdserverpb::Compare::CREATE:
      order = cmp(kv.create, c.create_revision());
      break;
    case etcdserverpb::Compare::MOD:
      order = cmp(kv.mod, c.mod_revision());
      break;
    default:
      order = cmp(kv.value, c.value());
      break;
  }
  switch (c.result()) {
    case etcdserverpb::Compare::EQUAL:
      return order == 0;
    case etcdserverpb::Compare::GREATER:
      return order > 0;
    case etcdserverpb::Compare::LESS:
      return order < 0;
    default:
      return order != 0;
  }
}

// A txn branch whose writes touch distinct single keys (so it is valid):
// puts and single-key deletes, plus ranges that must see earlier writes.
void AddBranch(google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>* ops,
               std::vector<std::string>* used) {
  int count = *rc::gen::inRange(0, 4);
  for (int i = 0; i < count; ++i) {
    int kind = *rc::gen::inRange(0, 3);
    if (kind == 2) {
      auto [key, end] = AnyRange();
      auto* range = ops->Add()->mutable_request_range();
      range->set_key(key);
      range->set_range_end(end);
      continue;
    }
    std::string key = AnyKey();
    if (std::find(used->begin(), used->end(), key) != used->end()) continue;
    used->push_back(key);
    if (kind == 0) {
      auto* put = ops->Add()->mutable_request_put();
      put->set_key(key);
      put->set_value(*rc::gen::element<std::string>("v0", "v1", "v2"));
    } else {
      ops->Add()->mutable_request_delete_range()->set_key(key);
    }
  }
}

void RunModelOps(const etcdserverpb::TxnRequest& txn, bool succeeded, Model& model,
                 const etcdserverpb::TxnResponse& response) {
  RC_ASSERT(response.succeeded() == succeeded);
  const auto& ops = succeeded ? txn.success() : txn.failure();
  RC_ASSERT(response.responses_size() == ops.size());
  for (int i = 0; i < ops.size(); ++i) {
    const auto& op = ops[i];
    const auto& result = response.responses(i);
    if (op.has_request_put()) {
      model.Put(op.request_put().key(), op.request_put().value());
    } else if (op.has_request_delete_range()) {
      int64_t deleted = model.Delete(op.request_delete_range().key(), "");
      RC_ASSERT(result.response_delete_range().deleted() == deleted);
    } else if (op.has_request_range()) {
      // Reads inside a txn see its earlier writes.
      const auto& r = op.request_range();
      CheckRange(result.response_range(), model.pending(), r.key(), r.range_end(), 0);
    }
  }
}

// v2's paths: the keys' nodes and the root.
std::string AnyTreePath() {
  return *rc::gen::element<std::string>("/", "/a", "/a/x", "/a/y", "/a/x/q", "/a/_h", "/b", "/b/z",
                                        "/c", "/c/m/n");
}

// A v2 set or delete, applied to the store and the model.
void CheckTreeWrite(Store& store, Model& model) {
  kvpb::Request request;
  TreeOutcome expected;
  std::string value = *rc::gen::element<std::string>("v0", "v1", "v2");
  if (*rc::gen::inRange(0, 3) > 0) {
    auto* r = request.mutable_tree_set();
    r->set_path(AnyTreePath());
    r->set_mode(static_cast<kvpb::TreeSetRequest::Mode>(*rc::gen::inRange(0, 5)));
    r->set_dir(*rc::gen::inRange(0, 4) == 0);
    if (!r->dir()) r->set_value(value);
    if (r->mode() == kvpb::TreeSetRequest::COMPARE_AND_SWAP) {
      r->set_prev_value(*rc::gen::element<std::string>("", "v0", "v1"));
      r->set_prev_index(*rc::gen::inRange<int64_t>(0, model.revision() + 1));
    }
    if (r->mode() != kvpb::TreeSetRequest::CREATE_IN_ORDER && *rc::gen::inRange(0, 5) == 0) {
      r->set_refresh(true);
      r->clear_value();
    }
    expected = ModelTreeSet(model.now(), model.revision(), *r);
  } else {
    auto* r = request.mutable_tree_delete();
    r->set_path(AnyTreePath());
    r->set_dir(*rc::gen::inRange(0, 2) == 0);
    r->set_recursive(*rc::gen::inRange(0, 3) == 0);
    if (*rc::gen::inRange(0, 3) == 0) {
      r->set_prev_value(*rc::gen::element<std::string>("", "v0", "v1"));
      r->set_prev_index(*rc::gen::inRange<int64_t>(0, model.revision() + 1));
    }
    expected = ModelTreeDelete(model.now(), *r);
  }
  kvpb::Response response = store.Apply(request);
  RC_ASSERT(response.error_code() == 0);
  const kvpb::TreeResponse& tree = response.tree();
  RC_ASSERT(tree.error_code() == expected.error_code);
  RC_ASSERT(tree.error_cause() == expected.cause);
  if (expected.error_code != 0) {
    RC_ASSERT(tree.header().revision() == model.revision());
    return;
  }
  model.Begin();
  for (const std::string& key : expected.deletes) model.Delete(key, "");
  for (const std::string& marker : expected.markers) model.Put(marker, "");
  if (expected.put) model.Put(expected.put->first, expected.put->second, expected.replace);
  model.Commit();
  RC_ASSERT(tree.header().revision() == model.revision());
  RC_ASSERT(tree.action() == expected.action);
  RC_ASSERT(tree.node().key() == expected.node_key);
  RC_ASSERT(tree.node().dir() == expected.node_dir);
  RC_ASSERT(tree.node().modified_index() == model.revision());
  RC_ASSERT(tree.has_prev_node() == expected.had_prev);
  if (expected.put && !expected.node_dir) {
    RC_ASSERT(tree.node().value() == expected.put->second);
    RC_ASSERT(tree.node().created_index() == model.now().at(expected.put->first).create);
  }
}

void CheckTreeGet(const Store& store, const Model& model) {
  kvpb::Request request;
  request.mutable_tree_get()->set_path(AnyTreePath());
  request.mutable_tree_get()->set_recursive(*rc::gen::arbitrary<bool>());
  kvpb::Response response = store.Query(request);
  RC_ASSERT(response.error_code() == 0);
  CheckModelTreeGet(model.now(), request.tree_get(), response.tree());
}

RC_GTEST_PROP(StoreModel, MatchesNaiveModel, ()) {
  Store store;
  Model model;
  int steps = *rc::gen::inRange(1, 80);
  for (int step = 0; step < steps; ++step) {
    int kind = *rc::gen::inRange(0, 100);
    kvpb::Request request;
    if (kind < 35) {
      std::string key = AnyKey();
      std::string value = *rc::gen::element<std::string>("v0", "v1", "v2");
      request.mutable_put()->set_key(key);
      request.mutable_put()->set_value(value);
      request.mutable_put()->set_prev_kv(true);
      std::optional<ModelKv> before;
      if (auto it = model.now().find(key); it != model.now().end()) before = it->second;
      kvpb::Response response = store.Apply(request);
      RC_ASSERT(response.error_code() == 0);
      model.Begin();
      model.Put(key, value);
      model.Commit();
      RC_ASSERT(response.put().header().revision() == model.revision());
      RC_ASSERT(response.put().has_prev_kv() == before.has_value());
      if (before) ExpectKv(response.put().prev_kv(), key, *before);
    } else if (kind < 50) {
      auto [key, end] = AnyRange();
      request.mutable_delete_range()->set_key(key);
      request.mutable_delete_range()->set_range_end(end);
      kvpb::Response response = store.Apply(request);
      RC_ASSERT(response.error_code() == 0);
      model.Begin();
      int64_t deleted = model.Delete(key, end);
      model.Commit();
      RC_ASSERT(response.delete_range().deleted() == deleted);
      RC_ASSERT(response.delete_range().header().revision() == model.revision());
    } else if (kind < 70) {
      auto* txn = request.mutable_txn();
      int compares = *rc::gen::inRange(0, 3);
      for (int i = 0; i < compares; ++i) *txn->add_compare() = AnyCompare();
      std::vector<std::string> used_success, used_failure;
      AddBranch(txn->mutable_success(), &used_success);
      AddBranch(txn->mutable_failure(), &used_failure);
      bool succeeded = true;
      for (const auto& c : txn->compare()) succeeded = succeeded && ModelCompare(model.now(), c);
      kvpb::Response response = store.Apply(request);
      RC_ASSERT(response.error_code() == 0);
      model.Begin();
      RunModelOps(*txn, succeeded, model, response.txn());
      model.Commit();
      RC_ASSERT(response.txn().header().revision() == model.revision());
    } else if (kind < 75) {
      int64_t target = *rc::gen::inRange<int64_t>(0, model.revision() + 2);
      request.mutable_compaction()->set_revision(target);
      kvpb::Response response = store.Apply(request);
      if (target <= model.compacted || target == 0) {
        RC_ASSERT(response.error_message() == CompactedError().message());
      } else if (target > model.revision()) {
        RC_ASSERT(response.error_message() == FutureRevisionError().message());
      } else {
        RC_ASSERT(response.error_code() == 0);
        model.compacted = target;
      }
    } else if (kind < 76) {
      // A snapshot round trip changes nothing observable.
      std::string snapshot = store.Snapshot();
      uint32_t hash = store.HashKV(0);
      RC_ASSERT(store.Restore(snapshot).ok());
      RC_ASSERT(store.Snapshot() == snapshot);
      RC_ASSERT(store.HashKV(0) == hash);
    } else if (kind < 88) {
      CheckTreeWrite(store, model);
    } else if (kind < 92) {
      CheckTreeGet(store, model);
    } else {
      auto [key, end] = AnyRange();
      int64_t at = *rc::gen::inRange<int64_t>(0, model.revision() + 2);
      int64_t limit = *rc::gen::inRange<int64_t>(0, 4);
      request.mutable_range()->set_key(key);
      request.mutable_range()->set_range_end(end);
      request.mutable_range()->set_revision(at);
      request.mutable_range()->set_limit(limit);
      kvpb::Response response = store.Query(request);
      if (at > model.revision()) {
        RC_ASSERT(response.error_message() == FutureRevisionError().message());
      } else if (at != 0 && at < model.compacted) {
        RC_ASSERT(response.error_message() == CompactedError().message());
      } else {
        RC_ASSERT(response.error_code() == 0);
        RC_ASSERT(response.range().header().revision() == model.revision());
        CheckRange(response.range(), at == 0 ? model.now() : model.at(at), key, end, limit);
      }
    }
    store.CheckInvariants();
  }
}

}  // namespace
}  // namespace etc::kv
