#include "kv/keyspace.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace etc::kv {
namespace {

Revision PutOne(Keyspace& keys, std::string_view key, std::string_view value, LeaseId lease = 0) {
  keys.BeginRevision();
  keys.Put(key, value, lease);
  return keys.EndRevision();
}

Revision DeleteOne(Keyspace& keys, std::string_view key, std::string_view end = "") {
  keys.BeginRevision();
  keys.DeleteRange({key, end});
  return keys.EndRevision();
}

// Every version, grouped by key, as Restore takes them.
std::vector<std::pair<std::string, std::vector<StoredVersion>>> Dump(const Keyspace& keys) {
  std::vector<std::pair<std::string, std::vector<StoredVersion>>> dump;
  keys.ForEachVersion([&](std::string_view key, const KeyVersion& v) {
    if (dump.empty() || dump.back().first != key) dump.push_back({std::string(key), {}});
    dump.back().second.push_back(StoredVersion{v, keys.ValueOf(v)});
  });
  return dump;
}

std::vector<std::string> Keys(const RangeResult& result) {
  std::vector<std::string> out;
  for (const auto& kv : result.kvs) out.push_back(kv.key());
  return out;
}

TEST(PrefixEndTest, IncrementsTheLastByteBelow0xFF) {
  EXPECT_EQ(PrefixEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixEnd("a\xFF"), "b");
  EXPECT_EQ(PrefixEnd("\xFF\xFF"), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
}

TEST(KeyspaceTest, VersionsAndRevisions) {
  Keyspace keys;
  EXPECT_EQ(PutOne(keys, "a", "1"), 1);
  EXPECT_EQ(PutOne(keys, "a", "2", 7), 2);
  auto kv = keys.Get("a");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value(), "2");
  EXPECT_EQ(kv->create_revision(), 1);
  EXPECT_EQ(kv->mod_revision(), 2);
  EXPECT_EQ(kv->version(), 2);
  EXPECT_EQ(kv->lease(), 7);
  EXPECT_EQ(keys.Get("a", 1)->value(), "1");

  EXPECT_EQ(DeleteOne(keys, "a"), 3);
  EXPECT_FALSE(keys.Get("a").has_value());
  // Deleting nothing does not make a revision.
  EXPECT_EQ(DeleteOne(keys, "a"), 3);
  EXPECT_EQ(PutOne(keys, "a", "3"), 4);
  kv = keys.Get("a");
  EXPECT_EQ(kv->create_revision(), 4);
  EXPECT_EQ(kv->version(), 1);
  EXPECT_EQ(keys.live_keys(), 1u);
  EXPECT_EQ(keys.versions(), 4u);
  keys.CheckInvariants();
}

TEST(KeyspaceTest, OneRevisionForManyWrites) {
  Keyspace keys;
  keys.BeginRevision();
  keys.Put("a", "1", 0);
  keys.Put("b", "1", 0);
  // Reads at revision 0 inside the open revision see its writes.
  auto seen = keys.Range({"a", "c"}, {});
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->count, 2);
  EXPECT_EQ(keys.EndRevision(), 1);
  EXPECT_EQ(keys.Get("b")->mod_revision(), 1);
}

TEST(KeyspaceTest, RangeForms) {
  Keyspace keys;
  for (const char* k : {"a", "a/1", "a/2", "b", "c"}) PutOne(keys, k, "v");
  auto all = keys.Range({"a", std::string(1, '\0')}, {});
  EXPECT_EQ(Keys(*all), (std::vector<std::string>{"a", "a/1", "a/2", "b", "c"}));
  auto prefix = keys.Range({"a/", PrefixEnd("a/")}, {});
  EXPECT_EQ(Keys(*prefix), (std::vector<std::string>{"a/1", "a/2"}));
  auto half_open = keys.Range({"a/2", "c"}, {});
  EXPECT_EQ(Keys(*half_open), (std::vector<std::string>{"a/2", "b"}));
  auto limited = keys.Range({"a", std::string(1, '\0')}, {.limit = 2});
  EXPECT_EQ(Keys(*limited), (std::vector<std::string>{"a", "a/1"}));
  EXPECT_EQ(limited->count, 5);
  auto counted = keys.Range({"a", std::string(1, '\0')}, {.count_only = true});
  EXPECT_TRUE(counted->kvs.empty());
  EXPECT_EQ(counted->count, 5);
  auto past = keys.Range({"a", std::string(1, '\0')}, {.revision = 2});
  EXPECT_EQ(Keys(*past), (std::vector<std::string>{"a", "a/1"}));
  EXPECT_EQ(past->revision, 2);
}

TEST(KeyspaceTest, ReadRevisionErrors) {
  Keyspace keys;
  for (int i = 0; i < 5; ++i) PutOne(keys, "k", std::to_string(i));
  auto future = keys.Range({"k", ""}, {.revision = 6});
  EXPECT_EQ(future.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(future.status().message(), "etcdserver: mvcc: required revision is a future revision");
  ASSERT_TRUE(keys.Compact(3).ok());
  auto compacted = keys.Range({"k", ""}, {.revision = 2});
  EXPECT_EQ(compacted.status().message(), "etcdserver: mvcc: required revision has been compacted");
  // The compaction point itself stays readable.
  EXPECT_EQ(keys.Range({"k", ""}, {.revision = 3})->kvs.at(0).value(), "2");
  EXPECT_EQ(keys.Compact(3).message(), "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(keys.Compact(9).message(), "etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(keys.Range({"k", ""}, {.revision = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  keys.CheckInvariants();
}

TEST(KeyspaceTest, CompactionKeepsWhatLaterReadsSee) {
  Keyspace keys;
  PutOne(keys, "live", "1");       // 1
  PutOne(keys, "gone", "1");       // 2
  DeleteOne(keys, "gone");         // 3
  PutOne(keys, "live", "2");       // 4
  PutOne(keys, "at", "1");         // 5
  DeleteOne(keys, "at");           // 6: a deletion exactly at the compaction point
  ASSERT_TRUE(keys.Compact(6).ok());
  keys.CheckInvariants();
  // "gone" is forgotten entirely; "live" keeps only version 2; the deletion
  // of "at" at 6 stays (a watcher from 6 must still see it).
  EXPECT_EQ(keys.versions(), 2u);
  auto changes = keys.ChangesFrom(6);
  ASSERT_NE(changes, keys.changes_end());
  EXPECT_EQ(changes->key(), "at");
  EXPECT_EQ(changes->revision, 6);
  EXPECT_EQ(keys.Get("live", 6)->value(), "2");
  EXPECT_FALSE(keys.Get("at", 6).has_value());
}

TEST(KeyspaceTest, VersionAtGivesEventAndPrevious) {
  Keyspace keys;
  PutOne(keys, "k", "1");
  PutOne(keys, "k", "2");
  DeleteOne(keys, "k");
  auto pair = keys.VersionAt("k", 2);
  ASSERT_NE(pair.current, nullptr);
  EXPECT_EQ(keys.ValueOf(*pair.current), "2");
  ASSERT_NE(pair.previous, nullptr);
  EXPECT_EQ(keys.ValueOf(*pair.previous), "1");
  pair = keys.VersionAt("k", 3);
  ASSERT_NE(pair.current, nullptr);
  EXPECT_TRUE(pair.current->tombstone());
  EXPECT_EQ(keys.ValueOf(*pair.previous), "2");
  EXPECT_EQ(keys.VersionAt("k", 4).current, nullptr);
}

// Keys live in a b-tree whose slots move as it grows and shrinks; a change
// (and a watcher reading it later) must still name its key and versions.
TEST(KeyspaceTest, ChangesNameTheirKeysWhileTheTreeReorganizes) {
  Keyspace keys;
  std::vector<std::string> written;
  // Out of key order, with keys longer and shorter than a string's inline
  // buffer and the empty key's neighbour "\x01".
  for (int i = 0; i < 5000; ++i) {
    int k = (i * 7919) % 5000;
    written.push_back(k % 3 == 0 ? std::string(1 + k % 40, static_cast<char>('a' + k % 26)) +
                                       std::to_string(k)
                                 : std::to_string(k));
    if (k == 1) written.back() = std::string(1, '\x01');
    PutOne(keys, written.back(), "v" + std::to_string(i));
  }
  // Half deleted and the history compacted past them: the b-tree shrinks.
  for (int i = 0; i < 5000; i += 2) DeleteOne(keys, written[i]);
  Revision compact_at = keys.revision() - 100;
  ASSERT_TRUE(keys.Compact(compact_at).ok());
  keys.CheckInvariants();
  size_t seen = 0;
  for (auto change = keys.ChangesFrom(compact_at); change != keys.changes_end(); ++change) {
    // Revisions from the compaction point on are the deletions of
    // written[4798], written[4800], ..., written[4998], in order.
    size_t i = 4798 + 2 * (change->revision - compact_at);
    ASSERT_LT(i, written.size());
    EXPECT_EQ(change->key(), written[i]);
    Keyspace::VersionPair pair = Keyspace::VersionAt(*change);
    ASSERT_NE(pair.current, nullptr);
    EXPECT_TRUE(pair.current->tombstone());
    if (change->revision == compact_at) {
      // The put before the deletion at the compaction point is compacted.
      EXPECT_EQ(pair.previous, nullptr);
    } else {
      ASSERT_NE(pair.previous, nullptr);
      EXPECT_EQ(keys.ValueOf(*pair.previous), "v" + std::to_string(i));
    }
    ++seen;
  }
  EXPECT_EQ(seen, 101u);
  EXPECT_EQ(keys.live_keys(), 2500u);
}

TEST(KeyspaceTest, DirectoryListing) {
  Keyspace keys;
  for (const char* k : {"/a/b/c", "/a/b/d", "/a/x", "/a/x/y", "/a/x!", "/a/", "/a", "/a//e", "/z"}) {
    PutOne(keys, k, "v");
  }
  auto listing = keys.List("/a", 0, 0);
  ASSERT_TRUE(listing.ok());
  std::vector<std::string> names;
  for (const auto& e : listing->entries) {
    names.push_back(e.name + (e.is_dir ? "/" : "") + (e.kv ? "=" : ""));
  }
  // "" is the empty component of "/a//e"; "x" is both a key and a directory;
  // "/a/" names the directory itself and is no child.
  EXPECT_EQ(names, (std::vector<std::string>{"/", "b/", "x/=", "x!="}));
  // A trailing slash means the same directory.
  EXPECT_EQ(keys.List("/a/", 0, 0)->entries.size(), 4u);
  auto root = keys.List("/", 0, 0);
  ASSERT_EQ(root->entries.size(), 2u);
  EXPECT_EQ(root->entries[0].name, "a");
  EXPECT_TRUE(root->entries[0].is_dir);
  EXPECT_TRUE(root->entries[0].kv.has_value());
  // The empty path lists first components: every key here starts with '/'.
  auto top = keys.List("", 0, 0);
  ASSERT_EQ(top->entries.size(), 1u);
  EXPECT_EQ(top->entries[0].name, "");
  EXPECT_TRUE(top->entries[0].is_dir);
  auto limited = keys.List("/a", 0, 2);
  EXPECT_EQ(limited->entries.size(), 2u);
  EXPECT_TRUE(limited->more);

  // A directory whose keys are all deleted disappears, but stays visible at
  // the revisions where it had keys.
  Revision before = keys.revision();
  DeleteOne(keys, "/a/b/", PrefixEnd("/a/b/"));
  names.clear();
  auto after = keys.List("/a", 0, 0);
  for (const auto& e : after->entries) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"", "x", "x!"}));
  EXPECT_EQ(keys.List("/a", before, 0)->entries.size(), 4u);
}

TEST(KeyspaceTest, RestoreRoundTrip) {
  Keyspace keys;
  PutOne(keys, "a", "1");
  PutOne(keys, "b", "1");
  DeleteOne(keys, "a");
  PutOne(keys, "a", "2", 5);
  ASSERT_TRUE(keys.Compact(2).ok());
  std::vector<std::pair<std::string, std::vector<StoredVersion>>> dump = Dump(keys);
  Keyspace restored;
  ASSERT_TRUE(restored.Restore(keys.revision(), keys.compact_revision(), dump).ok());
  restored.CheckInvariants();
  EXPECT_EQ(restored.revision(), 4);
  EXPECT_EQ(restored.Get("a")->lease(), 5);
  EXPECT_EQ(restored.size_bytes(), keys.size_bytes());

  auto bad = dump;
  std::swap(bad[0], bad[1]);
  EXPECT_EQ(Keyspace().Restore(4, 2, bad).code(), absl::StatusCode::kDataLoss);
  bad = dump;
  bad[0].second[0].version.mod_revision = 9;
  EXPECT_EQ(Keyspace().Restore(4, 2, bad).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Keyspace().Restore(1, 2, {}).code(), absl::StatusCode::kDataLoss);
}

// "a" is a key and a directory, but "a!" and "a." sort between its key and
// its subtree: a page that stops once it holds limit+1 children would
// return "a" as a key only.
TEST(KeyspaceTest, APageOfAListingStopsOnlyWhenItsChildrenAreComplete) {
  Keyspace keys;
  for (const char* key : {"/d/a", "/d/a!", "/d/a.", "/d/a/x", "/d/a!/y", "/d/b"}) {
    PutOne(keys, key, "v");
  }
  for (int64_t limit = 1; limit <= 4; ++limit) {
    std::vector<std::string> names;
    std::string after;
    bool more = true;
    while (more) {
      auto page = keys.List("/d", 0, limit, after);
      ASSERT_TRUE(page.ok());
      for (const auto& e : page->entries) {
        names.push_back(e.name + (e.kv.has_value() ? "=" : "") + (e.is_dir ? "/" : ""));
      }
      more = page->more;
      if (more) after = page->entries.back().name;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"a=/", "a!=/", "a.=", "b="})) << "limit " << limit;
  }
}

// CheckInvariants walks only the keys written since it last ran (all of
// them after a compaction, restore or swap): through any mix of writes,
// deletions, compactions, swaps and restores, with checks after some steps
// only, its totals stay those of a full walk, which a restored copy of the
// same versions (checked from scratch) confirms.
RC_GTEST_PROP(KeyspaceProperty, IncrementalChecksAgreeWithAFullWalk, ()) {
  const auto key = rc::gen::element<std::string>("a", "b", "c", "/d/e", "/d/f");
  Keyspace keys;
  Keyspace spare(keys.value_store());
  const int steps = *rc::gen::inRange(1, 60);
  for (int step = 0; step < steps; ++step) {
    switch (*rc::gen::inRange(0, 8)) {
      case 0:
        DeleteOne(keys, *key);
        break;
      case 1:
        if (keys.revision() > keys.compact_revision()) {
          RC_ASSERT(keys.Compact(*rc::gen::inRange(keys.compact_revision() + 1,
                                                   keys.revision() + 1)).ok());
        }
        break;
      case 2:
        keys.Swap(spare);
        break;
      default:
        PutOne(keys, *key, *rc::gen::element<std::string>("", "v", "value"), *rc::gen::inRange(0, 3));
    }
    if (*rc::gen::arbitrary<bool>()) keys.CheckInvariants();
  }
  keys.CheckInvariants();
  spare.CheckInvariants();
  std::vector<std::pair<std::string, std::vector<StoredVersion>>> dump = Dump(keys);
  Keyspace restored;
  RC_ASSERT(restored.Restore(keys.revision(), keys.compact_revision(), dump).ok());
  restored.CheckInvariants();
  RC_ASSERT(restored.digest() == keys.digest());
  RC_ASSERT(restored.size_bytes() == keys.size_bytes());
  RC_ASSERT(restored.live_keys() == keys.live_keys());
}

// The directory listing against a brute-force computation from a range scan.
RC_GTEST_PROP(KeyspaceProperty, ListMatchesBruteForce, ()) {
  const auto component = rc::gen::element<std::string>("", "a", "b", "ab", "a!", "a.", "a0");
  const auto path = rc::gen::map(rc::gen::container<std::vector<std::string>>(
                                     *rc::gen::inRange(1, 4), component),
                                 [](const std::vector<std::string>& parts) {
                                   std::string p;
                                   for (const auto& part : parts) p += "/" + part;
                                   return p;
                                 });
  Keyspace keys;
  const auto ops = *rc::gen::container<std::vector<std::pair<bool, std::string>>>(
      rc::gen::pair(rc::gen::arbitrary<bool>(), path));
  for (const auto& [is_put, key] : ops) {
    if (is_put) {
      PutOne(keys, key, "v");
    } else {
      DeleteOne(keys, key);
    }
  }
  keys.CheckInvariants();
  const std::string directory = *path;
  const Revision at = *rc::gen::inRange<Revision>(0, keys.revision() + 1);
  std::string prefix = directory;
  if (!prefix.empty() && prefix.back() != '/') prefix += "/";
  std::map<std::string, std::pair<bool, bool>> expected;  // name -> (is_dir, has_key)
  auto all = keys.Range({"", std::string(1, '\0')}, {.revision = at});
  RC_ASSERT(all.ok());
  for (const auto& kv : all->kvs) {
    if (kv.key().compare(0, prefix.size(), prefix) != 0 || kv.key() == prefix) continue;
    std::string rest = kv.key().substr(prefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string::npos) {
      expected[rest].second = true;
    } else {
      expected[rest.substr(0, slash)].first = true;
    }
  }
  auto listing = keys.List(directory, at, 0);
  RC_ASSERT(listing.ok());
  std::map<std::string, std::pair<bool, bool>> actual;
  for (const auto& e : listing->entries) actual[e.name] = {e.is_dir, e.kv.has_value()};
  RC_ASSERT(actual == expected);
  // Page by page, each continuing after the last name of the one before:
  // the same children, in order, `more` on every page but the last. Names
  // that share a prefix and sort around '/' ("a", "a!", "a.", "a0") are
  // where a listing that stops early could miss a directory.
  const int64_t limit = *rc::gen::inRange<int64_t>(1, 4);
  std::vector<std::pair<std::string, std::pair<bool, bool>>> paged;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    auto part = keys.List(directory, at, limit, after);
    RC_ASSERT(part.ok());
    RC_ASSERT(static_cast<int64_t>(part->entries.size()) <= limit);
    for (const auto& e : part->entries) paged.push_back({e.name, {e.is_dir, e.kv.has_value()}});
    if (!part->more) break;
    RC_ASSERT(static_cast<int64_t>(part->entries.size()) == limit);
    after = part->entries.back().name;
  }
  const std::vector<std::pair<std::string, std::pair<bool, bool>>> whole(expected.begin(),
                                                                        expected.end());
  RC_ASSERT(paged == whole);
}

}  // namespace
}  // namespace etc::kv
