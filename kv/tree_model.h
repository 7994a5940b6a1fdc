// Test only: a naive model of the key tree's state (a map from key to its
// live version) and of etcd v2's keys API over it, written from v2's rules
// (store.go's Set/Create/Update/CompareAndSwap/Delete/CompareAndDelete),
// independently of kv/store_tree.cc, for store_model_test.
#ifndef ETC_KV_TREE_MODEL_H_
#define ETC_KV_TREE_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kv/kvpb/kvpb.pb.h"
#include "kv/tree.h"
#include "rapidcheck.h"

namespace etc::kv {

struct ModelKv {
  std::string value;
  int64_t create = 0;
  int64_t mod = 0;
  int64_t version = 0;
};

using State = std::map<std::string, ModelKv>;

// What a v2 write should do: refuse with a code, or delete and put keys.
struct TreeOutcome {
  int32_t error_code = 0;
  std::string cause;
  std::string action;
  std::string node_key;  // the node written or deleted
  bool node_dir = false;
  std::vector<std::string> deletes;  // keys
  // Markers of the directories made on the way, then the node's own put.
  std::vector<std::string> markers;
  std::optional<std::pair<std::string, std::string>> put;
  // The put starts the key afresh (a set of an existing file).
  bool replace = false;
  bool had_prev = false;
};

inline std::string ModelPrefix(const std::string& path) { return path == "/" ? "/" : path + "/"; }

inline bool ModelHasChildren(const State& s, const std::string& path) {
  std::string prefix = ModelPrefix(path);
  for (const auto& [key, kv] : s) {
    if (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

inline bool ModelExists(const State& s, const std::string& path) {
  return path == "/" || s.count(path) > 0 || s.count(path + "/") > 0 || ModelHasChildren(s, path);
}

// v2's "key not found" names the first missing component.
inline std::string ModelMissing(const State& s, const std::string& path) {
  for (const std::string& a : TreeAncestors(path)) {
    if (!ModelExists(s, a)) return a;
  }
  return path;
}

inline std::optional<std::string> ModelFileAbove(const State& s, const std::string& path) {
  for (const std::string& a : TreeAncestors(path)) {
    if (s.count(a) > 0) return a;
  }
  return std::nullopt;
}

inline TreeOutcome ModelRefuse(int32_t code, std::string cause) {
  TreeOutcome o;
  o.error_code = code;
  o.cause = std::move(cause);
  return o;
}

// v2's compare of a file against prevValue / prevIndex (empty and 0 are
// not compared): 101 with the cause when it fails.
inline std::optional<TreeOutcome> ModelCompareFails(const ModelKv& file, const std::string& prev_value,
                                                    int64_t prev_index) {
  bool bad_value = !prev_value.empty() && prev_value != file.value;
  bool bad_index = prev_index != 0 && prev_index != file.mod;
  if (!bad_value && !bad_index) return std::nullopt;
  mvccpb::KeyValue current;
  current.set_value(file.value);
  current.set_mod_revision(file.mod);
  return ModelRefuse(101, CompareFailCause(current, prev_value, prev_index));
}

inline TreeOutcome ModelTreeSet(const State& s, int64_t revision, const kvpb::TreeSetRequest& r) {
  using R = kvpb::TreeSetRequest;
  std::string path = r.path();
  if (r.mode() == R::CREATE_IN_ORDER) path = ModelPrefix(path) + InOrderName(revision + 1);
  if (path == "/") return ModelRefuse(107, "/");
  for (const std::string& a : TreeAncestors(path)) {
    if (s.count(a) > 0) return ModelRefuse(104, a);
  }
  auto file = s.find(path);
  bool is_file = file != s.end();
  bool is_dir = !is_file && (s.count(path + "/") > 0 || ModelHasChildren(s, path));
  bool exists = is_file || is_dir;
  bool creates = r.mode() == R::CREATE || r.mode() == R::CREATE_IN_ORDER;
  if (r.refresh() && !creates && !exists) return ModelRefuse(100, ModelMissing(s, path));
  if (creates && exists) return ModelRefuse(105, path);
  if ((r.mode() == R::UPDATE || r.mode() == R::COMPARE_AND_SWAP) && !exists) {
    return ModelRefuse(100, ModelMissing(s, path));
  }
  if (r.mode() == R::UPDATE && is_dir && !r.value().empty()) return ModelRefuse(102, path);
  if ((r.mode() == R::SET || r.mode() == R::COMPARE_AND_SWAP) && is_dir) return ModelRefuse(102, path);
  if (r.mode() == R::COMPARE_AND_SWAP) {
    if (auto failed = ModelCompareFails(file->second, r.prev_value(), r.prev_index())) return *failed;
  }
  TreeOutcome o;
  o.action = r.mode() == R::CREATE || r.mode() == R::CREATE_IN_ORDER ? "create"
             : r.mode() == R::UPDATE                                 ? "update"
             : r.mode() == R::COMPARE_AND_SWAP                       ? "compareAndSwap"
                                                                     : "set";
  o.node_key = path;
  o.had_prev = exists;
  bool as_dir = is_dir || (r.dir() && r.mode() != R::UPDATE);
  o.node_dir = as_dir;
  for (const std::string& a : TreeAncestors(path)) {
    if (!ModelExists(s, a)) o.markers.push_back(a + "/");
  }
  if (as_dir) {
    if (is_file) o.deletes.push_back(path);
    o.put = {path + "/", ""};
  } else {
    std::string value = r.dir() ? "" : r.refresh() && is_file ? file->second.value : r.value();
    o.put = {path, value};
    o.replace = r.mode() == R::SET && is_file;
  }
  return o;
}

inline TreeOutcome ModelTreeDelete(const State& s, const kvpb::TreeDeleteRequest& r) {
  const std::string& path = r.path();
  if (path == "/") return ModelRefuse(107, "/");
  if (auto above = ModelFileAbove(s, path)) return ModelRefuse(104, *above);
  auto file = s.find(path);
  bool is_file = file != s.end();
  bool has_children = ModelHasChildren(s, path) ;
  bool marker = s.count(path + "/") > 0;
  // The marker is below the path too: children other than it.
  bool others = false;
  for (const auto& [key, kv] : s) {
    if (key.size() > path.size() + 1 && key.compare(0, path.size() + 1, path + "/") == 0) others = true;
  }
  bool is_dir = !is_file && (marker || has_children);
  if (!is_file && !is_dir) return ModelRefuse(100, ModelMissing(s, path));
  bool compare = !r.prev_value().empty() || r.prev_index() != 0;
  if (compare) {
    if (is_dir) return ModelRefuse(102, path);
    if (auto failed = ModelCompareFails(file->second, r.prev_value(), r.prev_index())) return *failed;
  } else if (is_dir) {
    if (!r.dir() && !r.recursive()) return ModelRefuse(102, path);
    if (!r.recursive() && others) return ModelRefuse(108, path);
  }
  TreeOutcome o;
  o.action = compare ? "compareAndDelete" : "delete";
  o.node_key = path;
  o.node_dir = is_dir;
  o.had_prev = true;
  if (is_dir) {
    for (const auto& [key, kv] : s) {
      if (key.compare(0, path.size() + 1, path + "/") == 0) o.deletes.push_back(key);
    }
  } else {
    o.deletes.push_back(path);
  }
  return o;
}

// The nodes a v2 get of `path` shows (recursive: all below; otherwise the
// immediate children and, for a directory child, only its name): a key
// whose path has a file as an ancestor below `path` is hidden by it, as is
// one with a component starting with '_'.
inline void CheckModelTreeGet(const State& s, const kvpb::TreeGetRequest& r,
                              const kvpb::TreeResponse& response) {
  const std::string& path = r.path();
  if (auto above = ModelFileAbove(s, path)) {
    RC_ASSERT(response.error_code() == 104);
    RC_ASSERT(response.error_cause() == *above);
    return;
  }
  if (path != "/" && s.count(path) > 0) {
    RC_ASSERT(response.error_code() == 0);
    RC_ASSERT(!response.node().dir());
    RC_ASSERT(response.node().value() == s.at(path).value);
    RC_ASSERT(response.node().modified_index() == s.at(path).mod);
    return;
  }
  bool is_dir = path == "/" || s.count(path + "/") > 0 || ModelHasChildren(s, path);
  if (!is_dir) {
    RC_ASSERT(response.error_code() == 100);
    RC_ASSERT(response.error_cause() == ModelMissing(s, path));
    return;
  }
  RC_ASSERT(response.error_code() == 0);
  RC_ASSERT(response.node().dir());
  // Expected: every visible node below, as (key, is_dir), to the depth asked.
  std::string prefix = ModelPrefix(path);
  std::set<std::pair<std::string, bool>> expected;
  for (const auto& [key, kv] : s) {
    if (key.size() <= prefix.size() || key.compare(0, prefix.size(), prefix) != 0) continue;
    std::string node = std::string(NodePathOf(key));
    // A name starting with '_' hides itself and all below it.
    bool hidden = key.find("/_", prefix.size() - 1) != std::string::npos;
    for (const std::string& a : TreeAncestors(node)) {
      if (a.size() >= prefix.size() && s.count(a) > 0) hidden = true;
      if (a.size() >= prefix.size()) expected.insert({a, true});
      if (hidden) break;
    }
    if (hidden) continue;
    bool dir = IsDirMarker(key) && s.count(node) == 0;
    expected.insert({node, dir});
  }
  // A file wins over a directory of its name.
  for (auto it = expected.begin(); it != expected.end();) {
    it = it->second && expected.count({it->first, false}) > 0 ? expected.erase(it) : std::next(it);
  }
  std::set<std::pair<std::string, bool>> shown;
  std::vector<const kvpb::TreeNode*> stack = {&response.node()};
  while (!stack.empty()) {
    const kvpb::TreeNode* n = stack.back();
    stack.pop_back();
    for (const kvpb::TreeNode& child : n->nodes()) {
      shown.insert({child.key(), child.dir()});
      if (!child.dir()) RC_ASSERT(child.value() == s.at(child.key()).value);
      stack.push_back(&child);
    }
  }
  if (!r.recursive()) {
    size_t depth = static_cast<size_t>(std::count(prefix.begin(), prefix.end(), '/'));
    std::erase_if(expected, [&](const auto& e) {
      return static_cast<size_t>(std::count(e.first.begin(), e.first.end(), '/')) != depth;
    });
  }
  RC_ASSERT(shown == expected);
}

}  // namespace etc::kv

#endif  // ETC_KV_TREE_MODEL_H_
