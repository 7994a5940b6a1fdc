// The multi-version keyspace: every key's history of values, by store
// revision, back to the compaction point. It is the data the key tree serves
// (ranges at any retained revision, directory listings, watch history) and
// nothing else: no leases, no permissions, no protobuf requests. Pure and
// deterministic, like all of kv/.
//
//   Keyspace keys;
//   keys.BeginRevision();                 // one revision per request or txn
//   keys.Put("/a/b", "1", /*lease=*/0);
//   keys.EndRevision();                   // now revision 1
//   RangeResult r = keys.Range("/a/", PrefixEnd("/a/"), {.revision = 0}).value();
//
// A key has at most one change per revision (etcd refuses a txn that writes a
// key twice), so a key's versions are ordered by their revision alone.
#ifndef ETC_KV_KEYSPACE_H_
#define ETC_KV_KEYSPACE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/mvccpb/kv.pb.h"
#include "kv/value_store.h"

namespace etc::kv {

using Revision = int64_t;
using LeaseId = int64_t;

// The smallest key greater than every key that starts with `prefix` ("\0",
// meaning "no end", when there is none: a prefix of only 0xFF bytes).
std::string PrefixEnd(std::string_view prefix);

// A key range as etcd's requests give it: range_end empty is the single key,
// "\0" is every key >= key, anything else is [key, range_end).
struct KeyRange {
  std::string_view key;
  std::string_view range_end;

  bool single_key() const { return range_end.empty(); }
  bool unbounded() const { return range_end.size() == 1 && range_end[0] == '\0'; }
  bool Contains(std::string_view k) const;
};

// One version of a key. A deletion is a version too (a tombstone, version 0),
// so that a read at an older revision and the watch history both see it.
struct KeyVersion {
  Revision mod_revision = 0;
  // 0 for a tombstone.
  Revision create_revision = 0;
  // Puts since creation, from 1; 0 for a tombstone.
  int64_t version = 0;
  LeaseId lease = 0;
  // Where the value is (in the keyspace's ValueStore); empty for a tombstone.
  ValueRef value;

  bool tombstone() const { return version == 0; }
};

// A version with its value's bytes, as a snapshot carries it.
struct StoredVersion {
  KeyVersion version;  // its `value` ref is ignored: `value` is the value
  std::string value;
};

struct RangeOptions {
  // 0: the latest revision (including the revision being written).
  Revision revision = 0;
  // At most this many key-values are returned; 0: no limit.
  int64_t limit = 0;
  // Count only: return no key-values.
  bool count_only = false;
  // Key-values without their values (nothing is read from the value store).
  bool keys_only = false;
};

struct RangeResult {
  std::vector<mvccpb::KeyValue> kvs;
  // Keys in the range at that revision (regardless of limit).
  int64_t count = 0;
  // The revision read.
  Revision revision = 0;
};

// A child in a directory listing: the next path component below the
// directory, a key of that exact name, and/or a directory of that name.
struct DirectoryEntry {
  std::string name;
  // Keys exist below `name` + "/".
  bool is_dir = false;
  // The key named exactly directory + name, if it exists.
  std::optional<mvccpb::KeyValue> kv;
};

struct DirectoryListing {
  std::vector<DirectoryEntry> entries;
  // More children exist than the limit let through.
  bool more = false;
  Revision revision = 0;
};

// One key of the keyspace: its bytes and its versions, oldest first, in one
// allocation that stays where it is while the key is in the keyspace (a
// change and the invariant checks point at it). A key costs one allocation
// and a slot of eight bytes in the keyspace's b-tree, where a map node with
// a string would cost two allocations and the map's own node links: about
// 55 bytes less per key (kv/memory_report.cc).
class KeyEntry {
 public:
  using Versions = absl::InlinedVector<KeyVersion, 1>;
  struct Free {
    void operator()(KeyEntry* entry) const;
  };
  using Ptr = std::unique_ptr<KeyEntry, Free>;
  // The key must be shorter than 4 GiB (requests are far smaller).
  static Ptr New(std::string_view key);

  std::string_view key() const {
    return {reinterpret_cast<const char*>(this + 1), key_size_};
  }
  Versions versions;

 private:
  explicit KeyEntry(uint32_t key_size) : key_size_(key_size) {}
  uint32_t key_size_;
  // The key's bytes follow the object in its allocation.
};

// One change of the keyspace, in the order changes happened.
struct Change {
  Revision revision = 0;
  const KeyEntry* entry = nullptr;
  std::string_view key() const { return entry->key(); }
};

class Keyspace {
 public:
  // Values go to `values` (not owned; it must outlive the keyspace), or,
  // when null, to a MemoryValueStore of the keyspace's own.
  explicit Keyspace(ValueStore* values = nullptr);
  Keyspace(const Keyspace&) = delete;
  Keyspace& operator=(const Keyspace&) = delete;

  // The latest completed revision (0 in an empty store).
  Revision revision() const { return revision_; }
  // Reads below this revision fail as compacted (0: nothing compacted).
  Revision compact_revision() const { return compact_revision_; }

  // ---- writing: one revision at a time ----
  // Opens revision revision()+1. Writes between Begin and End all carry it;
  // reads at revision 0 see them.
  void BeginRevision();
  // Closes it; the store's revision advances only if something changed.
  // Returns the store's revision afterwards.
  Revision EndRevision();
  bool writing() const { return writing_; }
  // Whether the open revision has changed anything yet.
  bool changed() const { return changes_in_revision_ > 0; }

  // Writes `value` to `key`; returns the previous live version, if any
  // (without its value unless `previous_value`: reading it may cost a
  // read from the value store's file).
  // The key must not have been written in this revision already (checked).
  // `replace` starts the key afresh (version 1, created now) even if it is
  // live: etcd v2's set replaces a node, so its createdIndex is new.
  std::optional<mvccpb::KeyValue> Put(std::string_view key, std::string_view value,
                                      LeaseId lease, bool replace = false,
                                      bool previous_value = true);
  // Deletes every live key in the range; returns the deleted key-values
  // (with their values if `with_values`).
  std::vector<mvccpb::KeyValue> DeleteRange(KeyRange range, bool with_values = true);

  // ---- reading ----
  // Errors: kOutOfRange with etcd's compacted / future-revision message.
  absl::StatusOr<RangeResult> Range(KeyRange range, const RangeOptions& options) const;
  // Whether any key in the range is live at `revision` (0: latest); stops
  // at the first one (a directory's existence, without counting it).
  bool AnyLive(KeyRange range, Revision revision = 0) const;
  // The live version of `key` at `revision` (0: latest), with its value
  // if `with_value`.
  std::optional<mvccpb::KeyValue> Get(std::string_view key, Revision revision = 0,
                                      bool with_value = true) const;
  // Immediate children of `directory` (see ChildPrefix) at `revision`,
  // sorted by name; with `after` non-empty, only those named after it (a
  // continuation). Costs the children returned (a subtree is skipped once
  // one live key shows it exists), not the keys below them. Children that
  // are keys come with their values only if `with_values`.
  absl::StatusOr<DirectoryListing> List(std::string_view directory, Revision revision,
                                        int64_t limit, std::string_view after = {},
                                        bool with_values = true) const;
  // The live version of `key` at `revision` (0: latest), or null: what Get
  // reads, without building a key-value (a value's size is its ref's).
  const KeyVersion* Find(std::string_view key, Revision revision = 0) const;
  // Checks a read revision: 0 or within [compact_revision, revision()].
  absl::Status CheckReadable(Revision revision) const;

  // ---- history (for watchers) ----
  // Changes with revision >= `from`, oldest first. `from` must not be below
  // compact_revision().
  std::deque<Change>::const_iterator ChangesFrom(Revision from) const;
  std::deque<Change>::const_iterator changes_end() const { return changes_.end(); }
  // The version of `key` written at exactly `revision` and the one before it
  // (when still retained), as watch events carry them.
  struct VersionPair {
    const KeyVersion* current = nullptr;
    const KeyVersion* previous = nullptr;
  };
  VersionPair VersionAt(std::string_view key, Revision revision) const;
  // The same for a change's own key (no lookup).
  static VersionPair VersionAt(const Change& change);

  // ---- compaction ----
  // Drops history older than `revision`: afterwards reads at revisions below
  // it fail, and reads at `revision` or later see exactly what they saw.
  // Errors: compacted (revision <= compact_revision()), future revision.
  absl::Status Compact(Revision revision);

  // ---- whole state ----
  // Every retained version of every key, in key order, oldest first, with
  // the store's revisions: the input of hashes and snapshots.
  void ForEachVersion(const std::function<void(std::string_view key, const KeyVersion&)>&
                          visit) const;
  // Every key live now with its live version, in key order: what a Range
  // over every key returns, without building a KeyValue for each.
  void ForEachLive(const std::function<void(std::string_view key, const KeyVersion&)>&
                       visit) const;
  // Rebuilds from versions given in ForEachVersion's order (validated:
  // keys ascending, revisions ascending and within the store's revision),
  // writing their values to the value store. The keyspace must be empty.
  // Errors: kDataLoss naming what is inconsistent (nothing is kept).
  absl::Status Restore(Revision revision, Revision compact_revision,
                       std::vector<std::pair<std::string, std::vector<StoredVersion>>> keys);
  // The same, with the keys read one at a time from `next` (which returns
  // false after the last, or an error that Restore returns as kDataLoss):
  // a snapshot larger than memory would hold twice is restored as it is read.
  struct StoredKey {
    std::string key;
    std::vector<StoredVersion> versions;
  };
  using RestoreSource = std::function<absl::StatusOr<bool>(StoredKey* key)>;
  absl::Status RestoreFrom(Revision revision, Revision compact_revision,
                           const RestoreSource& next);
  // Exchanges the whole contents with `other`, which must write to the
  // same value store (pointers into either stay valid, now belonging to
  // the other).
  void Swap(Keyspace& other);
  // Releases every value and forgets every key: an empty keyspace at
  // revision 0.
  void Clear();
  // Keys with a live version now.
  size_t live_keys() const { return live_keys_; }
  // Retained versions (live and tombstones) across all keys.
  size_t versions() const { return versions_; }
  // Bytes of keys and values retained, plus a fixed cost per version: what
  // the quota counts. Deterministic, so every replica agrees.
  int64_t size_bytes() const { return size_bytes_; }
  // An order-free digest of every retained version (the sum of a hash of
  // each), kept up to date as versions come and go: equal on members that
  // applied the same log, at a cost per write, not per call (the
  // simulator compares it after every apply on every member).
  uint64_t digest() const { return digest_; }

  // Crashes on a broken internal invariant (for tests and the simulator).
  // Walks only the keys written since its last call (every key after a
  // compaction, restore or swap): the checks on a key's versions depend on
  // nothing else but the store's revision, which only grows, and the
  // compaction point, so they still see every version once it changes. The
  // simulator calls it after every apply on every member, where a full walk
  // with a digest per version was a tenth of its time.
  void CheckInvariants() const;

  // The key-value a read returns for `version` of `key` (its value read
  // from the value store unless `with_value` is false).
  mvccpb::KeyValue ToKeyValue(std::string_view key, const KeyVersion& version,
                              bool with_value = true) const;
  // The value's bytes.
  std::string ValueOf(const KeyVersion& version) const;
  ValueStore* value_store() const { return values_; }

 private:
  using Versions = KeyEntry::Versions;
  // Ordered by key; looked up by any string-like key.
  struct KeyOrder {
    using is_transparent = void;
    static std::string_view Of(const KeyEntry::Ptr& entry) { return entry->key(); }
    static std::string_view Of(std::string_view key) { return key; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Of(a) < Of(b);
    }
  };
  // The entries move within the b-tree's nodes; what they point to does not.
  using KeyMap = absl::btree_set<KeyEntry::Ptr, KeyOrder>;

  // The version of a key visible at `revision` (nullptr: none or deleted).
  static const KeyVersion* Visible(const Versions& versions, Revision revision);
  Revision ReadRevision(Revision revision) const {
    return revision == 0 ? (writing_ ? revision_ + 1 : revision_) : revision;
  }
  void AddVersion(KeyEntry& entry, KeyVersion version);
  static int64_t CostOf(std::string_view key, const KeyVersion& version);
  static uint64_t DigestOf(std::string_view key, const KeyVersion& version);

  // What one key's versions add to the store's counters.
  struct KeyTotals {
    size_t live = 0;
    size_t versions = 0;
    int64_t size_bytes = 0;
    uint64_t digest = 0;
    void Add(const KeyTotals& other);
    void Subtract(const KeyTotals& other);
  };
  // CheckInvariants' checks of one key's versions; returns what they add.
  KeyTotals CheckKey(const KeyEntry& entry) const;
  // Checks changes_ from `from` on (ordered, none below the compaction point).
  void CheckChanges(size_t from) const;
  // Every change to keys_ or changes_ other than a write marks all unchecked.
  void MarkAllUnchecked() {
    check_all_ = true;
    unchecked_keys_.clear();
  }

  // Releases the values of versions[0, count) and erases them.
  void DropOldest(KeyEntry& entry, size_t count);
  // After releases: moves the values the store wants moved.
  void MoveValues();

  std::unique_ptr<MemoryValueStore> own_values_;
  ValueStore* values_;
  KeyMap keys_;
  std::deque<Change> changes_;
  Revision revision_ = 0;
  Revision compact_revision_ = 0;
  bool writing_ = false;
  size_t changes_in_revision_ = 0;
  size_t live_keys_ = 0;
  size_t versions_ = 0;
  int64_t size_bytes_ = 0;
  uint64_t digest_ = 0;

  // Writes remembered for CheckInvariants before it walks everything again.
  static constexpr size_t kUncheckedKeysMax = 4096;
  // CheckInvariants' record of what it verified. Keys are named by their
  // entry (entries do not move, and none is erased between full checks).
  mutable bool check_all_ = true;
  mutable std::vector<const KeyEntry*> unchecked_keys_;  // written since
  mutable std::unordered_map<const KeyEntry*, KeyTotals> checked_keys_;
  mutable KeyTotals checked_totals_;  // the sum of checked_keys_
  mutable size_t changes_checked_ = 0;
  mutable Revision checked_revision_ = 0;
  mutable Revision checked_compact_revision_ = 0;
};

}  // namespace etc::kv

#endif  // ETC_KV_KEYSPACE_H_
