// kv::Store's reads of the v3 tree: a directory's children (List) and what
// a path is (Stat). Paths are keys: a put of "/a/b/c" makes "/a" and
// "/a/b" directories (kv/keyspace.h). The v2 keys API is store_tree.cc.
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "kv/store.h"
#include "kv/store_internal.h"

namespace etc::kv {

using internal::RangeOf;

absl::Status Store::QueryList(const kvpb::Request& request, const AuthInfo& who,
                              kvpb::Response* response) const {
  auto [key, end] = SubtreeRange(request.list().path());
  if (absl::Status s = auth_.CheckRead(who, RangeOf(key, end)); !s.ok()) return s;
  absl::StatusOr<kvpb::ListResponse> result = DoList(request.list());
  if (!result.ok()) return result.status();
  *response->mutable_list() = std::move(*result);
  return absl::OkStatus();
}

absl::StatusOr<kvpb::ListResponse> Store::DoList(const kvpb::ListRequest& r) const {
  absl::StatusOr<DirectoryListing> listing =
      keys_.List(r.path(), r.revision(), r.limit(), r.after(), /*with_values=*/!r.keys_only());
  if (!listing.ok()) return listing.status();
  kvpb::ListResponse response;
  *response.mutable_header() = Header();
  response.set_more(listing->more);
  std::string prefix = r.path();
  if (!prefix.empty() && prefix.back() != '/') prefix.push_back('/');
  for (DirectoryEntry& entry : listing->entries) {
    kvpb::ListEntry* out = response.add_entries();
    out->set_name(entry.name);
    out->set_is_dir(entry.is_dir);
    if (entry.kv.has_value()) {
      *out->mutable_kv() = std::move(*entry.kv);
    }
    if (r.child_counts() && entry.is_dir) {
      absl::StatusOr<DirectoryListing> below =
          keys_.List(absl::StrCat(prefix, entry.name), r.revision(), 0, {}, /*with_values=*/false);
      if (!below.ok()) return below.status();
      out->set_child_count(static_cast<int64_t>(below->entries.size()));
    }
  }
  return response;
}

absl::Status Store::QueryStat(const kvpb::Request& request, const AuthInfo& who,
                              kvpb::Response* response) const {
  const kvpb::StatRequest& r = request.stat();
  // Both halves of the path are read: its key and its subtree.
  if (absl::Status s = auth_.CheckRead(who, RangeOf(r.path(), "")); !s.ok()) return s;
  auto [key, end] = SubtreeRange(r.path());
  if (absl::Status s = auth_.CheckRead(who, RangeOf(key, end)); !s.ok()) return s;
  absl::StatusOr<kvpb::StatResponse> result = DoStat(r);
  if (!result.ok()) return result.status();
  *response->mutable_stat() = std::move(*result);
  return absl::OkStatus();
}

absl::StatusOr<kvpb::StatResponse> Store::DoStat(const kvpb::StatRequest& r) const {
  if (absl::Status s = keys_.CheckReadable(r.revision()); !s.ok()) return s;
  kvpb::StatResponse response;
  *response.mutable_header() = Header();
  if (const KeyVersion* version = keys_.Find(r.path(), r.revision()); version != nullptr) {
    response.set_is_key(true);
    response.set_value_bytes(version->value.size_bytes);
    *response.mutable_kv() = keys_.ToKeyValue(r.path(), *version, /*with_value=*/false);
  }
  auto [key, end] = SubtreeRange(r.path());
  if (!keys_.AnyLive(RangeOf(key, end), r.revision())) return response;
  response.set_is_dir(true);
  absl::StatusOr<DirectoryListing> children =
      keys_.List(r.path(), r.revision(), 0, {}, /*with_values=*/false);
  if (!children.ok()) return children.status();
  response.set_child_count(static_cast<int64_t>(children->entries.size()));
  if (!r.subtree()) return response;
  absl::StatusOr<RangeResult> below =
      keys_.Range(RangeOf(key, end), RangeOptions{.revision = r.revision(), .keys_only = true});
  if (!below.ok()) return below.status();
  response.set_subtree_keys(below->count);
  int64_t bytes = 0;
  int64_t newest = 0;
  for (const mvccpb::KeyValue& kv : below->kvs) {
    // The value's size is its ref's: nothing is read.
    const KeyVersion* version = keys_.Find(kv.key(), r.revision());
    ETC_CHECK(version != nullptr);
    bytes += static_cast<int64_t>(kv.key().size() + version->value.size_bytes);
    newest = std::max(newest, kv.mod_revision());
  }
  response.set_subtree_bytes(bytes);
  response.set_subtree_mod_revision(newest);
  return response;
}

}  // namespace etc::kv
