// etcd v2's view of the key tree: the path rules, the names and the node
// shapes that kv::Store's tree requests (kvpb.TreeGetRequest, TreeSetRequest,
// TreeDeleteRequest) and the server's /v2/keys share. There is one keyspace:
// the v2 node "/a/b" is the v3 key "/a/b", a directory is a path with keys
// below it, and an explicit (possibly empty) directory is marked by the key
// with a trailing slash ("/a/" for the directory "/a").
//
//   std::string path = NormalizeTreePath("/a//b/").value();   // "/a/b"
//   DirMarker(path);                                           // "/a/b/"
//   TreeAncestors(path);                                       // {"/a"}
#ifndef ETC_KV_TREE_H_
#define ETC_KV_TREE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kv/kvpb/kvpb.pb.h"
#include "kv/mvccpb/kv.pb.h"

namespace etc::kv {

// etcd v2's error codes that the key tree decides (the server adds the
// request-shape ones, 2xx).
enum TreeError : int32_t {
  kTreeKeyNotFound = 100,
  kTreeCompareFailed = 101,
  kTreeNotFile = 102,
  kTreeNotDir = 104,
  kTreeNodeExist = 105,
  kTreeRootReadOnly = 107,
  kTreeDirNotEmpty = 108,
};

// A client's path as v2 cleans it (Go's path.Clean under "/"): repeated
// slashes and a trailing one dropped, "." and ".." resolved lexically
// ("/a/../b" is "/b"; ".." above the root stays at the root). Errors:
// kInvalidArgument for a path with a NUL byte.
absl::StatusOr<std::string> NormalizeTreePath(std::string_view path);

// Whether `path` is already in normal form (what the store accepts).
bool IsNormalTreePath(std::string_view path);

// The key that marks `path` an explicit directory: path + "/".
std::string DirMarker(std::string_view path);

// Whether `key` is a directory marker (ends with '/').
bool IsDirMarker(std::string_view key);

// The node path a key stands for ("/a/" is the directory "/a").
std::string_view NodePathOf(std::string_view key);

// Proper ancestors of `path` below the root, outermost first:
// "/a/b/c" -> {"/a", "/a/b"}.
std::vector<std::string> TreeAncestors(std::string_view path);

// v2 hides nodes whose name starts with '_' from listings (python-etcd's
// locks live in "/_locks"); they are still read, written and watched by
// their paths.
inline bool IsHiddenName(std::string_view name) { return !name.empty() && name[0] == '_'; }

// The name of the in-order key a POST creates at `revision`: 20 digits,
// zero-padded, so that names sort in creation order (v2's format).
std::string InOrderName(int64_t revision);

// etcd v2's cause for a failed compare: "[prev != current]" for the value,
// the index, or both.
std::string CompareFailCause(const mvccpb::KeyValue& current, std::string_view prev_value,
                             int64_t prev_index);

// A file node from its key-value.
kvpb::TreeNode FileNode(const mvccpb::KeyValue& kv);

// A directory node: its marker's revisions and lease when it has one.
kvpb::TreeNode DirNode(std::string_view path, const mvccpb::KeyValue* marker);

// Builds the nodes below directory `path` from `kvs`, every key below it in
// key order (markers included), as children of `dir`: a key whose name is
// also a directory is shown as the file, as a lone key is; hidden names and
// everything below them are left out.
void AddSubtree(std::string_view path, const std::vector<mvccpb::KeyValue>& kvs,
                kvpb::TreeNode* dir);

}  // namespace etc::kv

#endif  // ETC_KV_TREE_H_
