#include "kv/keyspace.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "kv/errors.h"

namespace etc::kv {

// Bookkeeping bytes charged per retained version on top of its key and
// value, roughly what a version costs in memory. Part of the replicated
// state's definition (the quota depends on it): do not change lightly.
constexpr int64_t kVersionOverheadBytes = 64;

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xFF) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

bool KeyRange::Contains(std::string_view k) const {
  if (single_key()) return k == key;
  if (k < key) return false;
  return unbounded() || k < range_end;
}

void KeyEntry::Free::operator()(KeyEntry* entry) const {
  entry->~KeyEntry();
  ::operator delete(entry);
}

KeyEntry::Ptr KeyEntry::New(std::string_view key) {
  ETC_CHECK_LT(key.size(), uint64_t{1} << 32) << "a key of 4 GiB or more";
  void* memory = ::operator new(sizeof(KeyEntry) + key.size());
  KeyEntry* entry = new (memory) KeyEntry(static_cast<uint32_t>(key.size()));
  if (!key.empty()) std::memcpy(entry + 1, key.data(), key.size());
  return Ptr(entry);
}

Keyspace::Keyspace(ValueStore* values)
    : own_values_(values == nullptr ? std::make_unique<MemoryValueStore>() : nullptr),
      values_(values == nullptr ? own_values_.get() : values) {}

mvccpb::KeyValue Keyspace::ToKeyValue(std::string_view key, const KeyVersion& version,
                                      bool with_value) const {
  mvccpb::KeyValue kv;
  kv.set_key(key.data(), key.size());
  kv.set_create_revision(version.create_revision);
  kv.set_mod_revision(version.mod_revision);
  kv.set_version(version.version);
  if (with_value && !version.value.empty()) values_->Read(version.value, kv.mutable_value());
  kv.set_lease(version.lease);
  return kv;
}

std::string Keyspace::ValueOf(const KeyVersion& version) const {
  std::string value;
  if (!version.value.empty()) values_->Read(version.value, &value);
  return value;
}

const KeyVersion* Keyspace::Visible(const Versions& versions, Revision revision) {
  // Most reads are at the latest revision: search from the back.
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    if (it->mod_revision <= revision) return it->tombstone() ? nullptr : &*it;
  }
  return nullptr;
}

int64_t Keyspace::CostOf(std::string_view key, const KeyVersion& version) {
  return static_cast<int64_t>(key.size() + version.value.size_bytes) + kVersionOverheadBytes;
}

uint64_t Keyspace::DigestOf(std::string_view key, const KeyVersion& version) {
  // CRC-32C of the key with the version's numbers, and of the value; then
  // splitmix64's finalizer, so that summing digests stays collision-poor.
  char fields[4 * sizeof(int64_t)];
  int64_t numbers[4] = {version.mod_revision, version.create_revision, version.version,
                        version.lease};
  std::memcpy(fields, numbers, sizeof(fields));
  uint32_t head = base::Crc32cExtend(base::Crc32c(key), std::string_view(fields, sizeof(fields)));
  uint64_t x = (static_cast<uint64_t>(head) << 32) | version.value.crc32c;
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void Keyspace::BeginRevision() {
  ETC_CHECK(!writing_) << "revision " << revision_ + 1 << " is already open";
  writing_ = true;
  changes_in_revision_ = 0;
}

Revision Keyspace::EndRevision() {
  ETC_CHECK(writing_);
  writing_ = false;
  if (changes_in_revision_ > 0) ++revision_;
  changes_in_revision_ = 0;
  return revision_;
}

void Keyspace::AddVersion(KeyEntry& entry, KeyVersion version) {
  Versions& versions = entry.versions;
  ETC_CHECK(versions.empty() || versions.back().mod_revision < version.mod_revision)
      << "key written twice in revision " << version.mod_revision;
  size_bytes_ += CostOf(entry.key(), version);
  digest_ += DigestOf(entry.key(), version);
  ++versions_;
  bool was_live = !versions.empty() && !versions.back().tombstone();
  if (was_live != !version.tombstone()) {
    if (version.tombstone()) {
      --live_keys_;
    } else {
      ++live_keys_;
    }
  }
  versions.push_back(std::move(version));
  // Only while CheckInvariants keeps count (the server never calls it), and
  // within a bound: past it, the next check walks everything.
  if (!check_all_) {
    if (unchecked_keys_.size() < kUncheckedKeysMax) {
      unchecked_keys_.push_back(&entry);
    } else {
      MarkAllUnchecked();
    }
  }
  changes_.push_back(Change{revision_ + 1, &entry});
  ++changes_in_revision_;
}

std::optional<mvccpb::KeyValue> Keyspace::Put(std::string_view key, std::string_view value,
                                              LeaseId lease, bool replace, bool previous_value) {
  ETC_CHECK(writing_) << "Put outside BeginRevision/EndRevision";
  auto it = keys_.find(key);
  if (it == keys_.end()) it = keys_.insert(KeyEntry::New(key)).first;
  KeyEntry& entry = **it;
  std::optional<mvccpb::KeyValue> previous;
  KeyVersion next;
  next.mod_revision = revision_ + 1;
  next.lease = lease;
  if (!value.empty()) next.value = values_->Write(value, base::Crc32c(value));
  const Versions& versions = entry.versions;
  if (!versions.empty() && !versions.back().tombstone()) {
    const KeyVersion& live = versions.back();
    previous = ToKeyValue(entry.key(), live, previous_value);
    next.create_revision = replace ? revision_ + 1 : live.create_revision;
    next.version = replace ? 1 : live.version + 1;
  } else {
    next.create_revision = revision_ + 1;
    next.version = 1;
  }
  AddVersion(entry, std::move(next));
  return previous;
}

std::vector<mvccpb::KeyValue> Keyspace::DeleteRange(KeyRange range, bool with_values) {
  ETC_CHECK(writing_) << "DeleteRange outside BeginRevision/EndRevision";
  std::vector<mvccpb::KeyValue> deleted;
  auto visit = [&](KeyEntry& entry) {
    const Versions& versions = entry.versions;
    if (versions.empty() || versions.back().tombstone()) return;
    deleted.push_back(ToKeyValue(entry.key(), versions.back(), with_values));
    KeyVersion tombstone;
    tombstone.mod_revision = revision_ + 1;
    AddVersion(entry, std::move(tombstone));
  };
  if (range.single_key()) {
    auto it = keys_.find(range.key);
    if (it != keys_.end()) visit(**it);
    return deleted;
  }
  for (auto it = keys_.lower_bound(range.key);
       it != keys_.end() && (range.unbounded() || (*it)->key() < range.range_end); ++it) {
    visit(**it);
  }
  return deleted;
}

absl::Status Keyspace::CheckReadable(Revision revision) const {
  if (revision < 0) return absl::InvalidArgumentError("etcdserver: negative revision");
  if (revision == 0) return absl::OkStatus();
  if (revision > revision_) return FutureRevisionError();
  if (revision < compact_revision_) return CompactedError();
  return absl::OkStatus();
}

absl::StatusOr<RangeResult> Keyspace::Range(KeyRange range, const RangeOptions& options) const {
  if (absl::Status status = CheckReadable(options.revision); !status.ok()) return status;
  RangeResult result;
  result.revision = options.revision == 0 ? revision_ : options.revision;
  Revision at = ReadRevision(options.revision);
  auto visit = [&](const KeyEntry& entry) {
    const KeyVersion* version = Visible(entry.versions, at);
    if (version == nullptr) return;
    ++result.count;
    if (options.count_only) return;
    if (options.limit > 0 && static_cast<int64_t>(result.kvs.size()) >= options.limit) return;
    result.kvs.push_back(ToKeyValue(entry.key(), *version, !options.keys_only));
  };
  if (range.single_key()) {
    auto it = keys_.find(range.key);
    if (it != keys_.end()) visit(**it);
    return result;
  }
  for (auto it = keys_.lower_bound(range.key);
       it != keys_.end() && (range.unbounded() || (*it)->key() < range.range_end); ++it) {
    visit(**it);
  }
  return result;
}

bool Keyspace::AnyLive(KeyRange range, Revision revision) const {
  Revision at = ReadRevision(revision);
  if (range.single_key()) {
    auto it = keys_.find(range.key);
    return it != keys_.end() && Visible((*it)->versions, at) != nullptr;
  }
  for (auto it = keys_.lower_bound(range.key);
       it != keys_.end() && (range.unbounded() || (*it)->key() < range.range_end); ++it) {
    if (Visible((*it)->versions, at) != nullptr) return true;
  }
  return false;
}

std::optional<mvccpb::KeyValue> Keyspace::Get(std::string_view key, Revision revision,
                                              bool with_value) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  const KeyVersion* version = Visible((*it)->versions, ReadRevision(revision));
  if (version == nullptr) return std::nullopt;
  return ToKeyValue((*it)->key(), *version, with_value);
}

const KeyVersion* Keyspace::Find(std::string_view key, Revision revision) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? nullptr : Visible((*it)->versions, ReadRevision(revision));
}

namespace {

// Whether a listing that reached the key `rest` (relative to the
// directory) knows everything about every child named up to `last`: a
// child's own key ("a") and its subtree ("a/...") need not be adjacent in
// key order ("a!" sorts between them), so a later key can still make an
// earlier name a directory. That later key starts with the name and '/';
// it can come only if the name is a prefix of both `last` and `rest` and
// `rest` continues below '/' right after it.
bool NamesThroughAreComplete(std::string_view last, std::string_view rest) {
  if (rest <= last) return false;
  size_t common = 0;
  while (common < last.size() && common < rest.size() && last[common] == rest[common]) ++common;
  for (size_t k = 0; k <= common && k < rest.size(); ++k) {
    if (rest[k] <= '/') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<DirectoryListing> Keyspace::List(std::string_view directory, Revision revision,
                                                int64_t limit, std::string_view after,
                                                bool with_values) const {
  if (absl::Status status = CheckReadable(revision); !status.ok()) return status;
  if (limit < 0) return absl::InvalidArgumentError("etcdserver: negative limit");
  DirectoryListing listing;
  listing.revision = revision == 0 ? revision_ : revision;
  Revision at = ReadRevision(revision);
  std::string prefix(directory);
  if (!prefix.empty() && prefix.back() != '/') prefix.push_back('/');
  // Children by name: a name can be a key and a directory at once, and its
  // two halves need not be adjacent in key order, so entries are merged
  // here. Every key of a child named after `after` sorts after it.
  std::map<std::string, DirectoryEntry> children;
  auto named_after = [&](std::string_view name) { return after.empty() || name > after; };
  auto it = keys_.lower_bound(prefix + std::string(after));
  while (it != keys_.end() && (*it)->key().substr(0, prefix.size()) == prefix) {
    const KeyEntry& entry = **it;
    std::string_view rest = entry.key().substr(prefix.size());
    // One child past the limit says there are more; stop as soon as the
    // children through the limit are complete.
    if (limit > 0 && static_cast<int64_t>(children.size()) > limit &&
        NamesThroughAreComplete(std::next(children.begin(), limit - 1)->first, rest)) {
      break;
    }
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      // A key directly in the directory (or, when rest is empty, the key
      // naming the directory itself, which is not a child).
      const KeyVersion* version = Visible(entry.versions, at);
      if (!rest.empty() && version != nullptr && named_after(rest)) {
        DirectoryEntry& child = children[std::string(rest)];
        child.name = std::string(rest);
        child.kv = ToKeyValue(entry.key(), *version, with_values);
      }
      ++it;
      continue;
    }
    // A key below a subdirectory: the subdirectory exists if any key in
    // [prefix + name + "/", prefix + name + "0") is live at `at`.
    std::string name(rest.substr(0, slash));
    std::string subtree_end = absl::StrCat(prefix, name, "0");  // '0' follows '/'
    if (!named_after(name)) {
      it = keys_.lower_bound(subtree_end);
      continue;
    }
    bool live = false;
    for (; it != keys_.end() && (*it)->key() < subtree_end; ++it) {
      if (Visible((*it)->versions, at) != nullptr) {
        live = true;
        it = keys_.lower_bound(subtree_end);
        break;
      }
    }
    if (live) {
      DirectoryEntry& child = children[name];
      child.name = name;
      child.is_dir = true;
    }
  }
  for (auto& [name, entry] : children) {
    if (limit > 0 && static_cast<int64_t>(listing.entries.size()) >= limit) {
      listing.more = true;
      break;
    }
    listing.entries.push_back(std::move(entry));
  }
  return listing;
}

std::deque<Change>::const_iterator Keyspace::ChangesFrom(Revision from) const {
  ETC_CHECK(from >= compact_revision_) << "history from " << from << " was compacted at "
                                       << compact_revision_;
  return std::lower_bound(changes_.begin(), changes_.end(), from,
                          [](const Change& change, Revision r) { return change.revision < r; });
}

Keyspace::VersionPair Keyspace::VersionAt(std::string_view key, Revision revision) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return VersionPair();
  return VersionAt(Change{revision, it->get()});
}

Keyspace::VersionPair Keyspace::VersionAt(const Change& change) {
  VersionPair pair;
  const Versions& versions = change.entry->versions;
  Revision revision = change.revision;
  auto at = std::lower_bound(versions.begin(), versions.end(), revision,
                             [](const KeyVersion& v, Revision r) { return v.mod_revision < r; });
  if (at == versions.end() || at->mod_revision != revision) return pair;
  pair.current = &*at;
  if (at != versions.begin() && !(at - 1)->tombstone()) pair.previous = &*(at - 1);
  return pair;
}

absl::Status Keyspace::Compact(Revision revision) {
  ETC_CHECK(!writing_);
  if (revision <= compact_revision_) return CompactedError();
  if (revision > revision_) return FutureRevisionError();
  for (auto it = keys_.begin(); it != keys_.end();) {
    Versions& versions = (*it)->versions;
    // Keep every version at `revision` or later, and the one before that a
    // read at `revision` still sees (unless a deletion hides it).
    size_t first_kept = 0;
    while (first_kept < versions.size() && versions[first_kept].mod_revision < revision) {
      ++first_kept;
    }
    bool at_revision = first_kept < versions.size() && versions[first_kept].mod_revision == revision;
    if (first_kept > 0 && !at_revision && !versions[first_kept - 1].tombstone()) --first_kept;
    DropOldest(**it, first_kept);
    if (versions.empty()) {
      it = keys_.erase(it);
    } else {
      ++it;
    }
  }
  // Changes below `revision` can no longer be replayed (and may point to
  // keys just erased).
  while (!changes_.empty() && changes_.front().revision < revision) changes_.pop_front();
  compact_revision_ = revision;
  MoveValues();
  MarkAllUnchecked();
  return absl::OkStatus();
}

void Keyspace::DropOldest(KeyEntry& entry, size_t count) {
  Versions& versions = entry.versions;
  for (size_t i = 0; i < count; ++i) {
    size_bytes_ -= CostOf(entry.key(), versions[i]);
    digest_ -= DigestOf(entry.key(), versions[i]);
    --versions_;
    if (!versions[i].value.empty()) values_->Release(versions[i].value);
  }
  versions.erase(versions.begin(), versions.begin() + static_cast<ptrdiff_t>(count));
}

void Keyspace::MoveValues() {
  if (values_->WantsMoves()) {
    for (const KeyEntry::Ptr& entry : keys_) {
      for (KeyVersion& version : entry->versions) {
        if (!version.value.empty() && values_->ShouldMove(version.value)) {
          version.value = values_->Move(version.value);
        }
      }
    }
  }
  values_->MovesDone();
}

void Keyspace::ForEachVersion(
    const std::function<void(std::string_view, const KeyVersion&)>& visit) const {
  for (const KeyEntry::Ptr& entry : keys_) {
    for (const KeyVersion& version : entry->versions) visit(entry->key(), version);
  }
}

void Keyspace::ForEachLive(
    const std::function<void(std::string_view, const KeyVersion&)>& visit) const {
  Revision at = ReadRevision(0);
  for (const KeyEntry::Ptr& entry : keys_) {
    if (const KeyVersion* version = Visible(entry->versions, at); version != nullptr) {
      visit(entry->key(), *version);
    }
  }
}

absl::Status Keyspace::Restore(Revision revision, Revision compact_revision,
                               std::vector<std::pair<std::string, std::vector<StoredVersion>>> keys) {
  size_t next_key = 0;
  return RestoreFrom(revision, compact_revision, [&](StoredKey* out) -> absl::StatusOr<bool> {
    if (next_key == keys.size()) return false;
    out->key = std::move(keys[next_key].first);
    out->versions = std::move(keys[next_key].second);
    ++next_key;
    return true;
  });
}

absl::Status Keyspace::RestoreFrom(Revision revision, Revision compact_revision,
                                   const RestoreSource& next) {
  ETC_CHECK(!writing_);
  ETC_CHECK(keys_.empty() && revision_ == 0) << "Restore into a keyspace in use";
  if (revision < 0 || compact_revision < 0 || compact_revision > revision) {
    return absl::DataLossError(absl::StrCat("keyspace snapshot: compact revision ",
                                            compact_revision, " past revision ", revision));
  }
  KeyMap restored;
  // Values written so far: a refused snapshot releases them again.
  std::vector<ValueRef> written;
  auto refuse = [&](std::string message) {
    for (const ValueRef& ref : written) values_->Release(ref);
    return absl::DataLossError(std::move(message));
  };
  std::vector<std::pair<Revision, const KeyEntry*>> changes;
  size_t live = 0, versions_count = 0;
  int64_t size = 0;
  uint64_t digest = 0;
  const KeyEntry* previous_key = nullptr;
  // One key at a time: a large snapshot's values are written to the value
  // store as they are read, never all held at once.
  StoredKey stored;
  while (true) {
    stored.versions.clear();
    absl::StatusOr<bool> more = next(&stored);
    if (!more.ok()) return refuse(std::string(more.status().message()));
    if (!*more) break;
    const std::string& key = stored.key;
    std::vector<StoredVersion>& versions = stored.versions;
    if (previous_key != nullptr && !(previous_key->key() < key)) {
      return refuse("keyspace snapshot: keys out of order");
    }
    if (versions.empty()) return refuse("keyspace snapshot: key without versions");
    KeyEntry& entry = **restored.insert(restored.end(), KeyEntry::New(key));
    previous_key = &entry;
    Revision last = -1;
    for (size_t i = 0; i < versions.size(); ++i) {
      KeyVersion& v = versions[i].version;
      const std::string& value = versions[i].value;
      if (v.mod_revision <= last || v.mod_revision <= 0 || v.mod_revision > revision) {
        return refuse(
            absl::StrCat("keyspace snapshot: bad revision ", v.mod_revision, " for a key"));
      }
      if (v.tombstone() ? (v.create_revision != 0 || !value.empty() || v.lease != 0)
                        : (v.create_revision <= 0 || v.create_revision > v.mod_revision ||
                           v.version <= 0)) {
        return refuse("keyspace snapshot: inconsistent version");
      }
      v.value = ValueRef{};
      if (!value.empty()) {
        v.value = values_->Write(value, base::Crc32c(value));
        written.push_back(v.value);
        // The snapshot's copy is not needed any more: hold one at a time.
        std::string().swap(versions[i].value);
      }
      last = v.mod_revision;
      if (v.mod_revision >= compact_revision) changes.emplace_back(v.mod_revision, &entry);
      size += CostOf(entry.key(), v);
      digest += DigestOf(entry.key(), v);
      ++versions_count;
      entry.versions.push_back(std::move(v));
    }
    if (!entry.versions.back().tombstone()) ++live;
  }
  std::stable_sort(changes.begin(), changes.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  keys_ = std::move(restored);
  changes_.clear();
  for (const auto& [r, key] : changes) changes_.push_back(Change{r, key});
  revision_ = revision;
  compact_revision_ = compact_revision;
  live_keys_ = live;
  versions_ = versions_count;
  size_bytes_ = size;
  digest_ = digest;
  MarkAllUnchecked();
  return absl::OkStatus();
}

void Keyspace::Swap(Keyspace& other) {
  ETC_CHECK(!writing_ && !other.writing_);
  // Refs name values in one store: both sides must share it.
  ETC_CHECK(values_ == other.values_) << "swapping keyspaces with different value stores";
  keys_.swap(other.keys_);
  changes_.swap(other.changes_);
  std::swap(revision_, other.revision_);
  std::swap(compact_revision_, other.compact_revision_);
  std::swap(live_keys_, other.live_keys_);
  std::swap(versions_, other.versions_);
  std::swap(size_bytes_, other.size_bytes_);
  std::swap(digest_, other.digest_);
  MarkAllUnchecked();
  other.MarkAllUnchecked();
}

void Keyspace::Clear() {
  ETC_CHECK(!writing_);
  for (const KeyEntry::Ptr& entry : keys_) DropOldest(*entry, entry->versions.size());
  values_->MovesDone();
  keys_.clear();
  changes_.clear();
  revision_ = 0;
  compact_revision_ = 0;
  live_keys_ = 0;
  ETC_CHECK_EQ(versions_, 0u);
  ETC_CHECK_EQ(size_bytes_, 0);
  digest_ = 0;
  MarkAllUnchecked();
}

void Keyspace::KeyTotals::Add(const KeyTotals& other) {
  live += other.live;
  versions += other.versions;
  size_bytes += other.size_bytes;
  digest += other.digest;
}

void Keyspace::KeyTotals::Subtract(const KeyTotals& other) {
  live -= other.live;
  versions -= other.versions;
  size_bytes -= other.size_bytes;
  digest -= other.digest;
}

void Keyspace::CheckInvariants() const {
  ETC_CHECK(!writing_);
  ETC_CHECK_LE(compact_revision_, revision_);
  if (check_all_ || revision_ < checked_revision_ ||
      compact_revision_ != checked_compact_revision_) {
    checked_keys_.clear();
    checked_totals_ = KeyTotals();
    for (const KeyEntry::Ptr& entry : keys_) {
      KeyTotals totals = CheckKey(*entry);
      checked_keys_[entry.get()] = totals;
      checked_totals_.Add(totals);
    }
    changes_checked_ = 0;
  } else {
    for (const KeyEntry* entry : unchecked_keys_) {
      auto it = keys_.find(entry->key());
      ETC_CHECK(it != keys_.end() && it->get() == entry) << "a written key left the map";
      KeyTotals& checked = checked_keys_[entry];
      checked_totals_.Subtract(checked);
      checked = CheckKey(*entry);
      checked_totals_.Add(checked);
    }
  }
  ETC_CHECK_EQ(checked_keys_.size(), keys_.size());
  ETC_CHECK_EQ(checked_totals_.live, live_keys_);
  ETC_CHECK_EQ(checked_totals_.versions, versions_);
  ETC_CHECK_EQ(checked_totals_.size_bytes, size_bytes_);
  ETC_CHECK_EQ(checked_totals_.digest, digest_) << "the keyspace digest drifted from its versions";
  // The last checked change anchors the order of the new ones.
  size_t changes_from = std::min(changes_checked_, changes_.size());
  CheckChanges(changes_from > 0 ? changes_from - 1 : 0);
  changes_checked_ = changes_.size();
  check_all_ = false;
  unchecked_keys_.clear();
  checked_revision_ = revision_;
  checked_compact_revision_ = compact_revision_;
}

Keyspace::KeyTotals Keyspace::CheckKey(const KeyEntry& entry) const {
  std::string_view key = entry.key();
  const Versions& versions = entry.versions;
  KeyTotals totals;
  ETC_CHECK(!versions.empty()) << "key without versions";
  Revision last = 0;
  for (size_t i = 0; i < versions.size(); ++i) {
    const KeyVersion& v = versions[i];
    ETC_CHECK_GT(v.mod_revision, last);
    ETC_CHECK_LE(v.mod_revision, revision_);
    if (v.tombstone()) ETC_CHECK(v.value.empty()) << "a tombstone with a value";
    if (!v.tombstone()) {
      ETC_CHECK_LE(v.create_revision, v.mod_revision);
      bool continues = i > 0 && !versions[i - 1].tombstone();
      bool replaced = continues && v.version == 1;  // a v2 set (Put's `replace`)
      if (replaced) {
        ETC_CHECK_EQ(v.create_revision, v.mod_revision);
      } else if (continues) {
        ETC_CHECK_EQ(v.version, versions[i - 1].version + 1);
        ETC_CHECK_EQ(v.create_revision, versions[i - 1].create_revision);
      } else if (i > 0) {
        // Re-created after a deletion.
        ETC_CHECK_EQ(v.version, 1);
        ETC_CHECK_EQ(v.create_revision, v.mod_revision);
      } else {
        // The oldest retained version: compaction may have dropped earlier ones.
        ETC_CHECK_EQ(v.version == 1, v.create_revision == v.mod_revision);
      }
    }
    last = v.mod_revision;
    totals.size_bytes += CostOf(key, v);
    totals.digest += DigestOf(key, v);
    ++totals.versions;
  }
  // Versions older than the compaction point: at most one, live, and only
  // when none sits exactly at it.
  if (versions.size() >= 2) ETC_CHECK_GE(versions[1].mod_revision, compact_revision_);
  if (versions[0].mod_revision < compact_revision_) {
    ETC_CHECK(!versions[0].tombstone()) << "a compacted tombstone was kept";
  }
  if (!versions.back().tombstone()) totals.live = 1;
  return totals;
}

void Keyspace::CheckChanges(size_t from) const {
  Revision last_change = 0;
  for (size_t i = from; i < changes_.size(); ++i) {
    const Change& change = changes_[i];
    ETC_CHECK_GE(change.revision, last_change);
    ETC_CHECK_GE(change.revision, compact_revision_);
    last_change = change.revision;
  }
}

}  // namespace etc::kv
