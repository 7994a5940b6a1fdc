// The keyspace's use of its value store: every value it holds is stored
// once, released when its version goes, read only when a caller wants it,
// and still the same bytes after the store moves it.
#include "kv/value_store.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kv/keyspace.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace etc::kv {
namespace {

// A memory store that counts reads and, when told to, moves every value
// at the next compaction (what a log's space reclamation does).
class CountingStore : public ValueStore {
 public:
  ValueRef Write(std::string_view value, uint32_t crc32c) override {
    return memory_.Write(value, crc32c);
  }
  void Read(const ValueRef& ref, std::string* out) const override {
    ++reads;
    memory_.Read(ref, out);
  }
  void Release(const ValueRef& ref) override { memory_.Release(ref); }
  bool WantsMoves() override {
    moving_ = move_all;
    return moving_;
  }
  bool ShouldMove(const ValueRef&) const override { return moving_; }
  ValueRef Move(const ValueRef& ref) override {
    ++moves;
    std::string value;
    memory_.Read(ref, &value);
    ValueRef moved = memory_.Write(value, ref.crc32c);
    memory_.Release(ref);
    return moved;
  }
  void MovesDone() override { moving_ = false; }

  size_t values() const { return memory_.values(); }
  mutable int reads = 0;
  int moves = 0;
  bool move_all = false;

 private:
  MemoryValueStore memory_;
  bool moving_ = false;
};

size_t StoredVersions(const Keyspace& keys) {
  size_t stored = 0;
  keys.ForEachVersion([&](std::string_view, const KeyVersion& v) {
    if (!v.value.empty()) ++stored;
  });
  return stored;
}

void Put(Keyspace& keys, std::string_view key, std::string_view value) {
  keys.BeginRevision();
  keys.Put(key, value, 0, false, /*previous_value=*/false);
  keys.EndRevision();
}

TEST(KeyspaceValues, ReadOnlyWhenWanted) {
  CountingStore store;
  Keyspace keys(&store);
  Put(keys, "a", "1");
  Put(keys, "a", "2");
  Put(keys, "b", "3");
  EXPECT_EQ(store.reads, 0) << "a put that does not return the previous value reads nothing";
  EXPECT_EQ(keys.Get("a", 0, /*with_value=*/false)->value(), "");
  EXPECT_EQ(keys.Range({"a", "c"}, {.keys_only = true})->kvs.size(), 2u);
  EXPECT_EQ(keys.Range({"a", "c"}, {.count_only = true})->count, 2);
  keys.BeginRevision();
  EXPECT_EQ(keys.DeleteRange({"b", ""}, /*with_values=*/false).at(0).value(), "");
  keys.EndRevision();
  EXPECT_EQ(store.reads, 0);
  EXPECT_EQ(keys.Get("a")->value(), "2");
  EXPECT_EQ(keys.Get("a", 1)->value(), "1");
  EXPECT_EQ(store.reads, 2);
}

TEST(KeyspaceValues, EmptyValuesAreNeverStored) {
  CountingStore store;
  Keyspace keys(&store);
  Put(keys, "a", "");
  EXPECT_EQ(store.values(), 0u);
  EXPECT_EQ(keys.Get("a")->value(), "");
  EXPECT_EQ(store.reads, 0);
}

TEST(KeyspaceValues, CompactionAndClearRelease) {
  CountingStore store;
  Keyspace keys(&store);
  for (int i = 0; i < 10; ++i) Put(keys, "k", "v" + std::to_string(i));
  Put(keys, "other", "x");
  EXPECT_EQ(store.values(), 11u);
  ASSERT_TRUE(keys.Compact(keys.revision()).ok());
  EXPECT_EQ(store.values(), 2u);
  keys.BeginRevision();
  keys.DeleteRange({"k", ""});
  keys.EndRevision();
  ASSERT_TRUE(keys.Compact(keys.revision()).ok());
  EXPECT_EQ(store.values(), 1u);
  keys.Clear();
  EXPECT_EQ(store.values(), 0u);
  EXPECT_EQ(keys.revision(), 0);
  keys.CheckInvariants();
}

TEST(KeyspaceValues, RefusedRestoreKeepsNothing) {
  CountingStore store;
  Keyspace keys(&store);
  std::vector<std::pair<std::string, std::vector<StoredVersion>>> versions;
  KeyVersion good{.mod_revision = 1, .create_revision = 1, .version = 1, .value = {}};
  KeyVersion bad{.mod_revision = 9, .create_revision = 1, .version = 1, .value = {}};  // past revision 2
  versions.push_back({"a", {StoredVersion{good, "one"}}});
  versions.push_back({"b", {StoredVersion{bad, "two"}}});
  EXPECT_EQ(keys.Restore(2, 0, versions).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store.values(), 0u);
  versions.pop_back();
  ASSERT_TRUE(keys.Restore(2, 0, versions).ok());
  EXPECT_EQ(store.values(), 1u);
  EXPECT_EQ(keys.Get("a")->value(), "one");
}

TEST(KeyspaceValues, ASourceThatFailsMidwayKeepsNothing) {
  // RestoreFrom writes each key's values as it reads the key: an error from
  // the source after some keys (a key of a snapshot that does not parse)
  // releases what was written.
  CountingStore store;
  Keyspace keys(&store);
  int read = 0;
  absl::Status refused = keys.RestoreFrom(5, 0, [&](Keyspace::StoredKey* out) -> absl::StatusOr<bool> {
    if (++read == 4) return absl::DataLossError("the fourth key does not parse");
    out->key = std::string(1, static_cast<char>('a' + read));
    out->versions.push_back(StoredVersion{
        KeyVersion{.mod_revision = read, .create_revision = read, .version = 1, .value = {}},
        "value"});
    return true;
  });
  EXPECT_EQ(refused.code(), absl::StatusCode::kDataLoss) << refused;
  EXPECT_NE(refused.message().find("the fourth key does not parse"), std::string::npos) << refused;
  EXPECT_EQ(read, 4);
  EXPECT_EQ(store.values(), 0u);
  EXPECT_EQ(keys.revision(), 0);
  keys.CheckInvariants();
}

// Through any mix of writes, deletions and compactions, some of which move
// every value: the store holds exactly the retained versions' values, and
// every retained version reads back what was written.
RC_GTEST_PROP(KeyspaceValues, StoreHoldsExactlyTheRetainedValues, ()) {
  CountingStore store;
  Keyspace keys(&store);
  // (key, revision) -> value written, for every put.
  std::map<std::pair<std::string, Revision>, std::string> written;
  const auto key = rc::gen::element<std::string>("a", "b", "/d/e");
  const int steps = *rc::gen::inRange(1, 50);
  for (int step = 0; step < steps; ++step) {
    switch (*rc::gen::inRange(0, 6)) {
      case 0: {
        keys.BeginRevision();
        keys.DeleteRange({*key, ""});
        keys.EndRevision();
        break;
      }
      case 1:
        if (keys.revision() > keys.compact_revision()) {
          store.move_all = *rc::gen::arbitrary<bool>();
          RC_ASSERT(keys.Compact(*rc::gen::inRange(keys.compact_revision() + 1,
                                                   keys.revision() + 1)).ok());
        }
        break;
      default: {
        std::string k = *key;
        std::string value = *rc::gen::element<std::string>("", "v", "a longer value");
        keys.BeginRevision();
        keys.Put(k, value, 0);
        written[{k, keys.revision() + 1}] = value;
        keys.EndRevision();
      }
    }
    RC_ASSERT(store.values() == StoredVersions(keys));
  }
  keys.CheckInvariants();
  keys.ForEachVersion([&](std::string_view k, const KeyVersion& v) {
    if (v.tombstone()) return;
    RC_ASSERT(keys.ValueOf(v) == written.at({std::string(k), v.mod_revision}));
  });
}

}  // namespace
}  // namespace etc::kv
