// kv::Store's side of etcd v2's keys API (kv/tree.h): TreeGet, TreeSet and
// TreeDelete. Each is decided and applied in one step, so v2's
// preconditions (create, update, compare-and-swap, not a file, not a
// directory, directory not empty) hold atomically; v2's refusals are
// results (TreeResponse.error_code, nothing changed), not failures.
#include <optional>
#include <string>
#include <utility>

#include "base/check.h"
#include "kv/errors.h"
#include "kv/store.h"
#include "kv/store_internal.h"
#include "kv/tree.h"

namespace etc::kv {

using internal::RangeOf;

namespace {

using SetMode = kvpb::TreeSetRequest;

// What a path is at the revision read.
struct NodeState {
  std::optional<mvccpb::KeyValue> file;    // the key `path`
  std::optional<mvccpb::KeyValue> marker;  // the key `path/`
  // Live keys below the path, its marker aside.
  bool has_children = false;

  bool exists() const { return file.has_value() || marker.has_value() || has_children; }
  // A key and a subtree of one name: v2 sees the file.
  bool is_dir() const { return !file.has_value() && (marker.has_value() || has_children); }
};

NodeState StateOf(const Keyspace& keys, const std::string& path, Revision revision,
                  bool with_values = true) {
  NodeState state;
  std::string marker = DirMarker(path);
  if (path != "/") {
    state.file = keys.Get(path, revision, with_values);
    state.marker = keys.Get(marker, revision, with_values);
  }
  std::string below = marker + '\0';
  std::string end = PrefixEnd(marker);
  state.has_children = keys.AnyLive(KeyRange{below, end}, revision);
  return state;
}

struct Refusal {
  TreeError code;
  std::string cause;
};

// v2 walks down to a node (store.go's internalGet): a file on the way is
// "not a directory", with the file as the cause.
std::optional<Refusal> FileAbove(const Keyspace& keys, const std::string& path, Revision revision) {
  for (const std::string& ancestor : TreeAncestors(path)) {
    if (keys.Find(ancestor, revision) != nullptr) return Refusal{kTreeNotDir, ancestor};
  }
  return std::nullopt;
}

// ... and "key not found" names the first component that does not exist.
Refusal NotFound(const Keyspace& keys, const std::string& path, Revision revision) {
  for (const std::string& ancestor : TreeAncestors(path)) {
    if (!StateOf(keys, ancestor, revision, /*with_values=*/false).exists()) {
      return Refusal{kTreeKeyNotFound, ancestor};
    }
  }
  return Refusal{kTreeKeyNotFound, path};
}

absl::Status Refuse(kvpb::TreeResponse* out, const Refusal& refusal) {
  out->set_error_code(refusal.code);
  out->set_error_cause(refusal.cause);
  return absl::OkStatus();
}

// v2's compare of a file against prevValue / prevIndex (empty and 0 are
// not compared).
std::optional<Refusal> CompareFails(const mvccpb::KeyValue& file, const std::string& prev_value,
                                    int64_t prev_index) {
  bool value_differs = !prev_value.empty() && prev_value != file.value();
  bool index_differs = prev_index != 0 && prev_index != file.mod_revision();
  if (!value_differs && !index_differs) return std::nullopt;
  return Refusal{kTreeCompareFailed, CompareFailCause(file, prev_value, prev_index)};
}

// v2's preconditions of a set on `node` (store.go's Set, Create, Update and
// CompareAndSwap).
std::optional<Refusal> CheckSet(const Keyspace& keys, const kvpb::TreeSetRequest& r,
                                const std::string& path, const NodeState& node) {
  bool creates = r.mode() == SetMode::CREATE || r.mode() == SetMode::CREATE_IN_ORDER;
  // A refresh reads the node first; one that creates it has nothing to keep.
  if (r.refresh() && !creates && !node.exists()) return NotFound(keys, path, 0);
  switch (r.mode()) {
    case SetMode::CREATE:
    case SetMode::CREATE_IN_ORDER:
      if (node.exists()) return Refusal{kTreeNodeExist, path};
      return std::nullopt;
    case SetMode::UPDATE:
      if (!node.exists()) return NotFound(keys, path, 0);
      if (node.is_dir() && !r.value().empty()) return Refusal{kTreeNotFile, path};
      return std::nullopt;
    case SetMode::COMPARE_AND_SWAP: {
      if (!node.exists()) return NotFound(keys, path, 0);
      if (node.is_dir()) return Refusal{kTreeNotFile, path};
      return CompareFails(*node.file, r.prev_value(), r.prev_index());
    }
    default:  // SET replaces a file, never a directory
      if (node.is_dir()) return Refusal{kTreeNotFile, path};
      return std::nullopt;
  }
}

const char* ActionOf(SetMode::Mode mode) {
  switch (mode) {
    case SetMode::CREATE:
    case SetMode::CREATE_IN_ORDER:
      return "create";
    case SetMode::UPDATE:
      return "update";
    case SetMode::COMPARE_AND_SWAP:
      return "compareAndSwap";
    default:
      return "set";
  }
}

}  // namespace

absl::Status Store::ApplyTreeSet(const kvpb::Request& request, const AuthInfo& who,
                                 kvpb::Response* response) {
  const kvpb::TreeSetRequest& r = request.tree_set();
  kvpb::TreeResponse* out = response->mutable_tree();
  std::string path = r.path();
  if (r.mode() == SetMode::CREATE_IN_ORDER) {
    // Named by the revision this write gets: names sort in creation order.
    path = DirMarker(path) + InOrderName(keys_.revision() + 1);
  }
  if (path == "/") return Refuse(out, {kTreeRootReadOnly, "/"});
  // Nothing about a node reaches a user who may not write it (a refusal
  // would say whether it exists, and a failed compare what it holds: that
  // takes read permission too, as a v3 compare does).
  if (absl::Status s = MayWrite(who, path); !s.ok()) return s;
  if (r.mode() == SetMode::COMPARE_AND_SWAP || r.refresh()) {
    if (absl::Status s = auth_.CheckRead(who, RangeOf(path, "")); !s.ok()) return s;
  }
  // Directories on the way are made (implicitly: no markers); files refuse.
  if (std::optional<Refusal> refusal = FileAbove(keys_, path, 0)) return Refuse(out, *refusal);
  NodeState node = StateOf(keys_, path, 0);
  if (std::optional<Refusal> refusal = CheckSet(keys_, r, path, node)) {
    return Refuse(out, *refusal);
  }
  // A directory is written as its marker: mkdir, or an update of a
  // directory's TTL.
  bool as_dir = node.is_dir() || (r.dir() && r.mode() != SetMode::UPDATE);
  std::string key = as_dir ? DirMarker(path) : path;
  if (absl::Status s = auth_.CheckWrite(who, RangeOf(key, "")); !s.ok()) return s;
  if (node.file.has_value() && as_dir) {  // a set with dir=true replaces the file
    if (absl::Status s = auth_.CheckWrite(who, RangeOf(path, "")); !s.ok()) return s;
  }
  if (r.lease() != 0 && leases_.Find(r.lease()) == nullptr) return LeaseNotFoundError();
  if (absl::Status s = CheckLeaseKeys(who, r.lease()); !s.ok()) return s;
  // Directories made on the way get markers, as v2 makes them: they stay
  // when their keys go. (Only where the user may write; elsewhere they
  // stay implicit.)
  std::vector<std::string> made;
  int64_t made_bytes = 0;
  for (const std::string& ancestor : TreeAncestors(path)) {
    if (StateOf(keys_, ancestor, 0).exists()) continue;
    std::string marker = DirMarker(ancestor);
    if (!auth_.CheckWrite(who, RangeOf(marker, "")).ok()) continue;
    made_bytes += static_cast<int64_t>(marker.size());
    made.push_back(std::move(marker));
  }
  etcdserverpb::PutRequest put;
  put.set_key(key);
  if (!as_dir && !r.dir()) {
    put.set_value(r.refresh() && node.file.has_value() ? node.file->value() : r.value());
  }
  put.set_lease(r.lease());
  if (absl::Status s = CheckQuota(static_cast<int64_t>(key.size() + put.value().size()) + made_bytes,
                                  request.header().member_id());
      !s.ok()) {
    return s;
  }
  keys_.BeginRevision();
  for (const std::string& marker : made) {
    etcdserverpb::PutRequest made_dir;
    made_dir.set_key(marker);
    ETC_CHECK(DoPut(made_dir).ok());
  }
  if (node.file.has_value() && as_dir) {
    etcdserverpb::DeleteRangeRequest replaced;
    replaced.set_key(path);
    (void)DoDeleteRange(replaced);
  }
  // v2's set replaces the node: a new createdIndex (update and
  // compare-and-swap keep it).
  bool replace = r.mode() == SetMode::SET && node.file.has_value() && !as_dir;
  absl::StatusOr<etcdserverpb::PutResponse> written = DoPut(put, replace);
  Revision revision = keys_.EndRevision();
  // A refresh tells no watcher (v2's rule); the rest tell their action.
  NoteTreeEvent(revision, r.refresh() && r.mode() != SetMode::CREATE ? "refresh" : ActionOf(r.mode()),
                "", false);
  ETC_CHECK(written.ok()) << written.status();
  std::optional<mvccpb::KeyValue> now = keys_.Get(key);
  ETC_CHECK(now.has_value());
  out->set_action(ActionOf(r.mode()));
  *out->mutable_node() = as_dir ? DirNode(path, &*now) : FileNode(*now);
  if (auth_.CheckRead(who, RangeOf(path, "")).ok() || as_dir) {
    if (node.file.has_value()) {
      *out->mutable_prev_node() = FileNode(*node.file);
    } else if (node.is_dir()) {
      *out->mutable_prev_node() = DirNode(path, node.marker ? &*node.marker : nullptr);
    }
  }
  return absl::OkStatus();
}

absl::Status Store::ApplyTreeDelete(const kvpb::Request& request, const AuthInfo& who,
                                    kvpb::Response* response) {
  const kvpb::TreeDeleteRequest& r = request.tree_delete();
  kvpb::TreeResponse* out = response->mutable_tree();
  const std::string& path = r.path();
  if (path == "/") return Refuse(out, {kTreeRootReadOnly, "/"});
  if (absl::Status s = MayWrite(who, path); !s.ok()) return s;
  if (!r.prev_value().empty() || r.prev_index() != 0) {
    if (absl::Status s = auth_.CheckRead(who, RangeOf(path, "")); !s.ok()) return s;
  }
  if (std::optional<Refusal> refusal = FileAbove(keys_, path, 0)) return Refuse(out, *refusal);
  NodeState node = StateOf(keys_, path, 0);
  if (!node.exists()) return Refuse(out, NotFound(keys_, path, 0));
  bool compare = !r.prev_value().empty() || r.prev_index() != 0;
  if (compare) {
    if (node.is_dir()) return Refuse(out, {kTreeNotFile, path});
    if (std::optional<Refusal> failed = CompareFails(*node.file, r.prev_value(), r.prev_index())) {
      return Refuse(out, *failed);
    }
  } else if (node.is_dir()) {
    if (!r.dir() && !r.recursive()) return Refuse(out, {kTreeNotFile, path});
    if (!r.recursive() && node.has_children) return Refuse(out, {kTreeDirNotEmpty, path});
  }
  etcdserverpb::DeleteRangeRequest deletion;
  if (node.is_dir()) {
    auto [key, end] = SubtreeRange(path);
    deletion.set_key(key);
    deletion.set_range_end(end);
  } else {
    deletion.set_key(path);
  }
  if (absl::Status s = auth_.CheckWrite(who, RangeOf(deletion.key(), deletion.range_end()));
      !s.ok()) {
    return s;
  }
  keys_.BeginRevision();
  (void)DoDeleteRange(deletion);
  Revision revision = keys_.EndRevision();
  out->set_action(compare ? "compareAndDelete" : "delete");
  NoteTreeEvent(revision, out->action(), node.is_dir() ? path : "", node.is_dir());
  kvpb::TreeNode before = node.is_dir() ? DirNode(path, node.marker ? &*node.marker : nullptr)
                                        : FileNode(*node.file);
  kvpb::TreeNode* after = out->mutable_node();
  after->set_key(path);
  after->set_dir(node.is_dir());
  after->set_created_index(before.created_index());
  after->set_modified_index(revision);
  if (node.is_dir() || auth_.CheckRead(who, RangeOf(path, "")).ok()) {
    *out->mutable_prev_node() = std::move(before);
  }
  return absl::OkStatus();
}

absl::Status Store::QueryTreeGet(const kvpb::Request& request, const AuthInfo& who,
                                 kvpb::Response* response) const {
  const kvpb::TreeGetRequest& r = request.tree_get();
  if (absl::Status s = keys_.CheckReadable(r.revision()); !s.ok()) return s;
  kvpb::TreeResponse* out = response->mutable_tree();
  const std::string& path = r.path();
  auto [key, end] = SubtreeRange(path);
  bool key_readable = auth_.CheckRead(who, RangeOf(path, "")).ok();
  bool all_readable = auth_.CheckRead(who, RangeOf(key, end)).ok();
  NodeState node = StateOf(keys_, path, r.revision());
  // Whether a node exists is told only to a user who may read it, or some
  // of a directory (a filtered listing, below).
  if (!key_readable && !all_readable && !node.is_dir() && path != "/") {
    return auth_.CheckRead(who, RangeOf(path, ""));
  }
  if (std::optional<Refusal> refusal = FileAbove(keys_, path, r.revision())) {
    return Refuse(out, *refusal);
  }
  if (path != "/" && !node.exists()) return Refuse(out, NotFound(keys_, path, r.revision()));
  out->set_action("get");
  if (node.file.has_value()) {
    if (absl::Status s = auth_.CheckRead(who, RangeOf(path, "")); !s.ok()) return s;
    *out->mutable_node() = FileNode(*node.file);
    return absl::OkStatus();
  }
  kvpb::TreeNode* dir = out->mutable_node();
  *dir = DirNode(path, node.marker ? &*node.marker : nullptr);
  if (r.recursive()) {
    absl::StatusOr<RangeResult> below = keys_.Range(RangeOf(key, end), {.revision = r.revision()});
    if (!below.ok()) return below.status();
    if (!all_readable) {
      // Only what the user may read: a listing never shows the rest.
      std::erase_if(below->kvs, [&](const mvccpb::KeyValue& kv) {
        return !auth_.CheckRead(who, RangeOf(kv.key(), "")).ok();
      });
    }
    AddSubtree(path, below->kvs, dir);
  } else {
    AddChildren(path, r.revision(), who, all_readable, dir);
  }
  if (!all_readable && dir->nodes_size() == 0) return auth_.CheckRead(who, RangeOf(key, end));
  return absl::OkStatus();
}

absl::Status Store::MayWrite(const AuthInfo& who, const std::string& path) const {
  absl::Status file = auth_.CheckWrite(who, RangeOf(path, ""));
  if (file.ok()) return file;
  auto [key, end] = SubtreeRange(path);
  // A directory's own: its marker (a set) or all of it (a delete).
  std::string marker = DirMarker(path);
  if (auth_.CheckWrite(who, RangeOf(marker, "")).ok() || auth_.CheckWrite(who, RangeOf(key, end)).ok()) {
    return absl::OkStatus();
  }
  return file;
}

void Store::NoteTreeEvent(Revision revision, std::string action, std::string path, bool dir) {
  tree_notes_[revision] = TreeNote{std::move(action), std::move(path), dir};
  if (tree_notes_.size() > kMaxTreeNotes) tree_notes_.erase(tree_notes_.begin());
}

const Store::TreeNote* Store::TreeNoteAt(Revision revision) const {
  auto it = tree_notes_.find(revision);
  return it == tree_notes_.end() ? nullptr : &it->second;
}

void Store::AddChildren(const std::string& path, Revision revision, const AuthInfo& who,
                        bool all_readable, kvpb::TreeNode* dir) const {
  absl::StatusOr<DirectoryListing> listing = keys_.List(path, revision, 0);
  ETC_CHECK(listing.ok()) << listing.status();  // the revision was checked readable
  std::string prefix = DirMarker(path);
  for (const DirectoryEntry& entry : listing->entries) {
    if (IsHiddenName(entry.name)) continue;
    std::string child = prefix + entry.name;
    if (entry.kv.has_value()) {  // a file, even if keys are below it too
      if (all_readable || auth_.CheckRead(who, RangeOf(child, "")).ok()) {
        *dir->add_nodes() = FileNode(*entry.kv);
      }
      continue;
    }
    auto [key, end] = SubtreeRange(child);
    if (!all_readable && !auth_.CheckRead(who, RangeOf(key, end)).ok()) continue;
    std::optional<mvccpb::KeyValue> marker = keys_.Get(DirMarker(child), revision);
    *dir->add_nodes() = DirNode(child, marker ? &*marker : nullptr);
  }
}

}  // namespace etc::kv
