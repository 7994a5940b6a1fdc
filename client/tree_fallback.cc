#include "client/tree_fallback.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

namespace etc::client::tree_internal {

std::string NormalTreePath(std::string_view path) {
  if (path.empty()) return "/";
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

std::string TreePrefix(std::string_view normal_path) {
  std::string prefix(normal_path);
  if (prefix.back() != '/') prefix.push_back('/');
  return prefix;
}

bool IsChild(std::string_view key, std::string_view prefix) {
  std::string_view rest = key.substr(prefix.size());
  return !rest.empty() && rest.find('/') == std::string_view::npos;
}

absl::Status CheckLimitAndRevision(int64_t limit, int64_t revision) {
  if (limit < 0) return absl::InvalidArgumentError("etcdserver: negative limit");
  if (revision < 0) return absl::InvalidArgumentError("etcdserver: negative revision");
  return absl::OkStatus();
}

namespace {

// Keys-only ranges start this small (a directory's first key is often
// followed by its subtree, which a seek skips) and double while the
// directory's own keys fill them.
constexpr int64_t kScanBatchMin = 64;
constexpr int64_t kScanBatchMax = 4096;
// Gets per read-only txn when values are fetched (etcd's --max-txn-ops is 128).
constexpr int kGetsPerTxn = 64;

// kv/keyspace.cc's rule, for the same pages: once more children than the
// limit are known, a key `rest` can still add a name at or before the
// limit's last only if that name is a prefix of both and `rest` goes on
// below a byte <= '/' right after it.
bool NamesThroughAreComplete(std::string_view last, std::string_view rest) {
  if (rest <= last) return false;
  size_t common = 0;
  while (common < last.size() && common < rest.size() && last[common] == rest[common]) ++common;
  for (size_t k = 0; k <= common && k < rest.size(); ++k) {
    if (rest[k] <= '/') return false;
  }
  return true;
}

struct Scan {
  std::string prefix;
  std::string after;
  int64_t limit = 0;
  int64_t revision = 0;
  bool serializable = false;
  etcdserverpb::ResponseHeader header;
  std::map<std::string, etcpb::Child> children;
};

// Reads one batch from `*cursor`, adding children; false when the scan is over.
absl::StatusOr<bool> ScanBatch(Client& client, Scan& scan, std::string* cursor, int64_t* batch) {
  etcdserverpb::RangeRequest range;
  range.set_key(*cursor);
  range.set_range_end(PrefixEnd(scan.prefix));
  range.set_revision(scan.revision);
  range.set_limit(*batch);
  range.set_keys_only(true);
  range.set_serializable(scan.serializable);
  absl::StatusOr<etcdserverpb::RangeResponse> got = client.Range(range);
  if (!got.ok()) return got.status();
  if (scan.header.revision() == 0) {
    // Every later read is at the revision the first saw.
    scan.header = got->header();
    if (scan.revision == 0) scan.revision = got->header().revision();
  }
  auto named_after = [&](std::string_view name) { return scan.after.empty() || name > scan.after; };
  for (const mvccpb::KeyValue& kv : got->kvs()) {
    if (kv.key() < *cursor) continue;  // inside a subtree already seen
    std::string_view rest = std::string_view(kv.key()).substr(scan.prefix.size());
    if (scan.limit > 0 && static_cast<int64_t>(scan.children.size()) > scan.limit &&
        NamesThroughAreComplete(std::next(scan.children.begin(), scan.limit - 1)->first, rest)) {
      return false;
    }
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      if (!rest.empty() && named_after(rest)) {
        etcpb::Child& child = scan.children[std::string(rest)];
        child.set_name(std::string(rest));
        child.set_is_key(true);
        *child.mutable_kv() = kv;
      }
      *cursor = kv.key() + std::string(1, '\0');
      continue;
    }
    std::string name(rest.substr(0, slash));
    if (named_after(name)) {
      etcpb::Child& child = scan.children[name];
      child.set_name(name);
      child.set_is_dir(true);
    }
    *cursor = scan.prefix + name + "0";  // '0' follows '/': past the subtree
  }
  bool seeking = got->kvs_size() > 0 && got->kvs(got->kvs_size() - 1).key() < *cursor &&
                 *cursor != got->kvs(got->kvs_size() - 1).key() + std::string(1, '\0');
  *batch = seeking ? kScanBatchMin : std::min(*batch * 2, kScanBatchMax);
  return got->more();
}

// The values of the key children, read at the scan's revision.
absl::Status FetchValues(Client& client, const Scan& scan, etcpb::ListResponse* page) {
  std::vector<etcpb::Child*> keys;
  for (etcpb::Child& child : *page->mutable_children()) {
    if (child.is_key()) keys.push_back(&child);
  }
  for (size_t from = 0; from < keys.size(); from += kGetsPerTxn) {
    size_t to = std::min(keys.size(), from + kGetsPerTxn);
    etcdserverpb::TxnRequest txn;
    for (size_t i = from; i < to; ++i) {
      *txn.add_success() =
          GetOp(keys[i]->kv().key(), {.revision = scan.revision, .serializable = scan.serializable});
    }
    absl::StatusOr<etcdserverpb::TxnResponse> got = client.TxnRaw(txn);
    if (!got.ok()) return got.status();
    for (size_t i = from; i < to; ++i) {
      const auto& range = got->responses(static_cast<int>(i - from)).response_range();
      if (range.kvs_size() == 1) *keys[i]->mutable_kv() = range.kvs(0);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Scan> ScanChildren(Client& client, const etcpb::ListRequest& in) {
  Scan scan;
  scan.prefix = TreePrefix(NormalTreePath(in.path()));
  scan.after = in.after();
  scan.limit = in.limit();
  scan.revision = in.revision();
  scan.serializable = in.serializable();
  std::string cursor = scan.prefix + scan.after;
  int64_t batch = kScanBatchMin;
  for (;;) {
    absl::StatusOr<bool> more = ScanBatch(client, scan, &cursor, &batch);
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  return scan;
}

}  // namespace

absl::StatusOr<etcpb::ListResponse> List(Client& client, const etcpb::ListRequest& in) {
  if (absl::Status s = CheckLimitAndRevision(in.limit(), in.revision()); !s.ok()) return s;
  absl::StatusOr<Scan> scan = ScanChildren(client, in);
  if (!scan.ok()) return scan.status();
  etcpb::ListResponse page;
  *page.mutable_header() = scan->header;
  for (auto& [name, child] : scan->children) {
    if (in.limit() > 0 && page.children_size() >= in.limit()) {
      page.set_more(true);
      break;
    }
    *page.add_children() = std::move(child);
  }
  if (!in.keys_only()) {
    if (absl::Status s = FetchValues(client, *scan, &page); !s.ok()) return s;
  }
  if (!in.child_counts()) return page;
  std::string prefix = TreePrefix(NormalTreePath(in.path()));
  for (etcpb::Child& child : *page.mutable_children()) {
    if (!child.is_dir()) continue;
    etcpb::ListRequest below;
    below.set_path(prefix + child.name());
    below.set_revision(scan->revision);
    below.set_keys_only(true);
    below.set_serializable(in.serializable());
    absl::StatusOr<Scan> counted = ScanChildren(client, below);
    if (!counted.ok()) return counted.status();
    child.set_child_count(static_cast<int64_t>(counted->children.size()));
  }
  return page;
}

namespace {

absl::StatusOr<etcdserverpb::RangeResponse> RangeAt(Client& client, const std::string& key,
                                                    const std::string& end, int64_t revision,
                                                    bool serializable, bool count_only) {
  etcdserverpb::RangeRequest range;
  range.set_key(key);
  range.set_range_end(end);
  range.set_revision(revision);
  range.set_serializable(serializable);
  range.set_count_only(count_only);
  return client.Range(range);
}

// With subtree: the keys below, their bytes and the newest change.
absl::Status SumSubtree(Client& client, const std::string& prefix, int64_t revision,
                        bool serializable, etcpb::StatResponse* stat) {
  absl::StatusOr<etcdserverpb::RangeResponse> below =
      RangeAt(client, prefix, PrefixEnd(prefix), revision, serializable, false);
  if (!below.ok()) return below.status();
  int64_t bytes = 0;
  int64_t newest = 0;
  for (const mvccpb::KeyValue& kv : below->kvs()) {
    bytes += static_cast<int64_t>(kv.key().size() + kv.value().size());
    newest = std::max(newest, kv.mod_revision());
  }
  stat->set_subtree_keys(below->count());
  stat->set_subtree_bytes(bytes);
  stat->set_subtree_mod_revision(newest);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<etcpb::StatResponse> Stat(Client& client, const etcpb::StatRequest& in) {
  if (absl::Status s = CheckLimitAndRevision(0, in.revision()); !s.ok()) return s;
  std::string path = NormalTreePath(in.path());
  std::string prefix = TreePrefix(path);
  absl::StatusOr<etcdserverpb::RangeResponse> key =
      RangeAt(client, path, "", in.revision(), in.serializable(), false);
  if (!key.ok()) return key.status();
  // Every later read is at the revision the first saw.
  int64_t revision = in.revision() != 0 ? in.revision() : key->header().revision();
  etcpb::StatResponse stat;
  *stat.mutable_header() = key->header();
  if (key->kvs_size() == 1) {
    stat.set_is_key(true);
    stat.set_value_bytes(static_cast<int64_t>(key->kvs(0).value().size()));
    *stat.mutable_kv() = key->kvs(0);
    stat.mutable_kv()->clear_value();
  }
  absl::StatusOr<etcdserverpb::RangeResponse> count =
      RangeAt(client, prefix, PrefixEnd(prefix), revision, in.serializable(), true);
  if (!count.ok()) return count.status();
  if (count->count() == 0) return stat;
  stat.set_is_dir(true);
  etcpb::ListRequest children;
  children.set_path(path);
  children.set_revision(revision);
  children.set_keys_only(true);
  children.set_serializable(in.serializable());
  absl::StatusOr<etcpb::ListResponse> listed = List(client, children);
  if (!listed.ok()) return listed.status();
  stat.set_child_count(listed->children_size());
  if (!in.subtree()) return stat;
  if (absl::Status s = SumSubtree(client, prefix, revision, in.serializable(), &stat); !s.ok()) {
    return s;
  }
  return stat;
}

absl::StatusOr<etcdserverpb::RangeResponse> GetTree(Client& client,
                                                    const etcpb::GetTreeRequest& in) {
  if (absl::Status s = CheckLimitAndRevision(in.limit(), in.revision()); !s.ok()) return s;
  std::string prefix = TreePrefix(NormalTreePath(in.path()));
  std::string start = prefix;
  if (!in.after_key().empty()) start = std::max(prefix, in.after_key() + std::string(1, '\0'));
  etcdserverpb::RangeRequest range;
  range.set_key(start);
  range.set_range_end(PrefixEnd(prefix));
  range.set_revision(in.revision());
  range.set_limit(in.limit());
  range.set_keys_only(in.keys_only());
  range.set_count_only(in.count_only());
  range.set_serializable(in.serializable());
  return client.Range(range);
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteTree(
    Client& client, const etcpb::DeleteTreeRequest& in) {
  std::string path = NormalTreePath(in.path());
  std::string prefix = TreePrefix(path);
  // The root's subtree ["/", "0") holds the key "/" already.
  bool with_key = in.include_path_key() && path != prefix;
  if (!with_key) return client.Delete(prefix, {.prefix = true, .prev_kv = in.prev_kv()});
  // One txn, one revision; the key's prev_kv first (it sorts first).
  etcdserverpb::TxnRequest txn;
  *txn.add_success() = DeleteOp(path, {.prev_kv = in.prev_kv()});
  *txn.add_success() = DeleteOp(prefix, {.prefix = true, .prev_kv = in.prev_kv()});
  absl::StatusOr<etcdserverpb::TxnResponse> done = client.TxnRaw(txn);
  if (!done.ok()) return done.status();
  etcdserverpb::DeleteRangeResponse deleted;
  *deleted.mutable_header() = done->header();
  for (const etcdserverpb::ResponseOp& op : done->responses()) {
    const etcdserverpb::DeleteRangeResponse& part = op.response_delete_range();
    deleted.set_deleted(deleted.deleted() + part.deleted());
    for (const mvccpb::KeyValue& kv : part.prev_kvs()) *deleted.add_prev_kvs() = kv;
  }
  return deleted;
}

std::optional<etcpb::WatchTreeResponse> TranslateWatch(const etcdserverpb::WatchResponse& in,
                                                       std::string_view prefix,
                                                       bool children_only) {
  etcpb::WatchTreeResponse out;
  *out.mutable_header() = in.header();
  out.set_created(in.created());
  out.set_canceled(in.canceled());
  out.set_cancel_reason(in.cancel_reason());
  out.set_compact_revision(in.compact_revision());
  for (const mvccpb::Event& event : in.events()) {
    if (children_only && !IsChild(event.kv().key(), prefix)) continue;
    *out.add_events() = event;
  }
  if (in.events_size() > 0 && out.events_size() == 0 && !in.created() && !in.canceled()) {
    return std::nullopt;
  }
  return out;
}

}  // namespace etc::client::tree_internal
