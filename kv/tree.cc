#include "kv/tree.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace etc::kv {
namespace {

void SortChildren(kvpb::TreeNode* node) {
  auto* nodes = node->mutable_nodes();
  std::sort(nodes->begin(), nodes->end(),
            [](const kvpb::TreeNode& a, const kvpb::TreeNode& b) { return a.key() < b.key(); });
  for (kvpb::TreeNode& child : *nodes) SortChildren(&child);
}

}  // namespace

absl::StatusOr<std::string> NormalizeTreePath(std::string_view path) {
  // Any other bytes are a name, as in etcd (which shows what is not UTF-8
  // as U+FFFD in its JSON).
  if (path.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("etcdserver: a v2 key must not hold a NUL byte");
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = std::min(path.find('/', start), path.size());
    std::string_view part = path.substr(start, slash - start);
    start = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string clean;
  for (std::string_view part : parts) {
    clean.push_back('/');
    clean.append(part);
  }
  return clean.empty() ? std::string("/") : clean;
}

bool IsNormalTreePath(std::string_view path) {
  absl::StatusOr<std::string> normal = NormalizeTreePath(path);
  return normal.ok() && *normal == path;
}

std::string DirMarker(std::string_view path) {
  return path == "/" ? std::string("/") : std::string(path) + "/";
}

bool IsDirMarker(std::string_view key) { return !key.empty() && key.back() == '/'; }

std::string_view NodePathOf(std::string_view key) {
  if (key.size() > 1 && IsDirMarker(key)) key.remove_suffix(1);
  return key;
}

std::vector<std::string> TreeAncestors(std::string_view path) {
  std::vector<std::string> ancestors;
  for (size_t slash = path.find('/', 1); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    ancestors.emplace_back(path.substr(0, slash));
  }
  return ancestors;
}

std::string InOrderName(int64_t revision) { return absl::StrFormat("%020d", revision); }

std::string CompareFailCause(const mvccpb::KeyValue& current, std::string_view prev_value,
                             int64_t prev_index) {
  bool value_differs = !prev_value.empty() && prev_value != current.value();
  bool index_differs = prev_index != 0 && prev_index != current.mod_revision();
  std::string value_cause = "[" + std::string(prev_value) + " != " + current.value() + "]";
  std::string index_cause = absl::StrCat("[", prev_index, " != ", current.mod_revision(), "]");
  if (value_differs && index_differs) return absl::StrCat(value_cause, " ", index_cause);
  return value_differs ? value_cause : index_cause;
}

kvpb::TreeNode FileNode(const mvccpb::KeyValue& kv) {
  kvpb::TreeNode node;
  node.set_key(kv.key());
  node.set_value(kv.value());
  node.set_created_index(kv.create_revision());
  node.set_modified_index(kv.mod_revision());
  node.set_lease(kv.lease());
  return node;
}

kvpb::TreeNode DirNode(std::string_view path, const mvccpb::KeyValue* marker) {
  kvpb::TreeNode node;
  node.set_key(std::string(path));
  node.set_dir(true);
  if (marker != nullptr) {
    node.set_created_index(marker->create_revision());
    node.set_modified_index(marker->mod_revision());
    node.set_lease(marker->lease());
  }
  return node;
}

void AddSubtree(std::string_view path, const std::vector<mvccpb::KeyValue>& kvs,
                kvpb::TreeNode* dir) {
  // Nodes made so far by path: directories (children of protobuf repeated
  // fields keep their addresses) and files, which hide a same-named subtree.
  std::map<std::string, kvpb::TreeNode*, std::less<>> dirs{{std::string(path), dir}};
  std::set<std::string, std::less<>> files;
  std::string prefix = DirMarker(path);
  for (const mvccpb::KeyValue& kv : kvs) {
    std::string_view key = kv.key();
    if (key.substr(0, prefix.size()) != prefix || key.size() == prefix.size()) continue;
    // Walk down from `path`, making the directories on the way.
    kvpb::TreeNode* parent = dir;
    bool hidden = false;
    size_t slash = key.find('/', prefix.size());
    size_t name_start = prefix.size();
    while (slash != std::string_view::npos && slash + 1 < key.size()) {
      std::string_view sub = key.substr(0, slash);
      if (files.count(sub) > 0 || IsHiddenName(key.substr(name_start))) {
        hidden = true;
        break;
      }
      auto it = dirs.find(sub);
      if (it == dirs.end()) {
        kvpb::TreeNode* made = parent->add_nodes();
        *made = DirNode(sub, nullptr);
        it = dirs.emplace(std::string(sub), made).first;
      }
      parent = it->second;
      name_start = slash + 1;
      slash = key.find('/', slash + 1);
    }
    if (hidden || IsHiddenName(key.substr(name_start))) continue;
    std::string_view node_path = NodePathOf(key);
    if (IsDirMarker(key)) {
      if (files.count(node_path) > 0) continue;
      auto it = dirs.find(node_path);
      if (it == dirs.end()) {
        kvpb::TreeNode* made = parent->add_nodes();
        it = dirs.emplace(std::string(node_path), made).first;
      }
      // Keep what is below (a marker sorts before its subtree, but a
      // directory's nodes must never be dropped).
      kvpb::TreeNode marked = DirNode(node_path, &kv);
      marked.mutable_nodes()->Swap(it->second->mutable_nodes());
      *it->second = std::move(marked);
      continue;
    }
    // Keys sort before their subtrees ("/a" < "/a/..."), so a file is seen
    // before any directory of its name.
    files.emplace(node_path);
    *parent->add_nodes() = FileNode(kv);
  }
  SortChildren(dir);
}

}  // namespace etc::kv
