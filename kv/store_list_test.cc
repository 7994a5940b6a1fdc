// The v3 tree's reads (store_list.cc): listing pages with continuations and
// child counts, and Stat of keys, directories and both. The listing's paging
// itself is property-tested against brute force in keyspace_test.
#include <gtest/gtest.h>

#include "kv/response_status.h"
#include "kv/store.h"

namespace etc::kv {
namespace {

kvpb::Request Put(const std::string& key, const std::string& value) {
  kvpb::Request r;
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  return r;
}

kvpb::Request List(const std::string& path, int64_t limit = 0, const std::string& after = "",
                   bool child_counts = false) {
  kvpb::Request r;
  r.mutable_list()->set_path(path);
  r.mutable_list()->set_limit(limit);
  r.mutable_list()->set_after(after);
  r.mutable_list()->set_child_counts(child_counts);
  return r;
}

kvpb::Request Stat(const std::string& path, bool subtree = false, int64_t revision = 0) {
  kvpb::Request r;
  r.mutable_stat()->set_path(path);
  r.mutable_stat()->set_subtree(subtree);
  r.mutable_stat()->set_revision(revision);
  return r;
}

class StoreListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"/s/web/port", "80"},
             {"/s/web/host", "example"},
             {"/s/web", "is a key too"},
             {"/s/db/port", "5432"},
             {"/s/db/replicas/1", "r1"},
             {"/s/cache", "none"}}) {
      ASSERT_EQ(StatusOf(store_.Apply(Put(key, value))), absl::OkStatus());
    }
  }
  Store store_;
};

TEST_F(StoreListTest, PagesContinueAfterTheLastNameAndCountChildren) {
  kvpb::Response first = store_.Query(List("/s", 2, "", /*child_counts=*/true));
  ASSERT_EQ(StatusOf(first), absl::OkStatus());
  ASSERT_EQ(first.list().entries_size(), 2);
  EXPECT_TRUE(first.list().more());
  EXPECT_EQ(first.list().entries(0).name(), "cache");
  EXPECT_FALSE(first.list().entries(0).is_dir());
  EXPECT_EQ(first.list().entries(0).kv().value(), "none");
  EXPECT_EQ(first.list().entries(1).name(), "db");
  EXPECT_EQ(first.list().entries(1).child_count(), 2);  // port, replicas
  EXPECT_EQ(first.list().header().revision(), 6);
  kvpb::Response second = store_.Query(List("/s", 2, "db", true));
  ASSERT_EQ(second.list().entries_size(), 1);
  EXPECT_FALSE(second.list().more());
  const kvpb::ListEntry& web = second.list().entries(0);
  EXPECT_EQ(web.name(), "web");
  EXPECT_TRUE(web.is_dir());
  EXPECT_EQ(web.kv().value(), "is a key too");
  EXPECT_EQ(web.child_count(), 2);
  // Without asking, no counts are made.
  EXPECT_EQ(store_.Query(List("/s", 0, "db")).list().entries(0).child_count(), 0);
}

TEST_F(StoreListTest, StatTellsKeysDirectoriesAndBoth) {
  kvpb::Response both = store_.Query(Stat("/s/web", /*subtree=*/true));
  ASSERT_EQ(StatusOf(both), absl::OkStatus());
  const kvpb::StatResponse& web = both.stat();
  EXPECT_TRUE(web.is_key());
  EXPECT_TRUE(web.is_dir());
  EXPECT_EQ(web.kv().key(), "/s/web");
  EXPECT_EQ(web.kv().value(), "");  // the size is told, the value not sent
  EXPECT_EQ(web.value_bytes(), 12);
  EXPECT_EQ(web.child_count(), 2);
  EXPECT_EQ(web.subtree_keys(), 2);
  EXPECT_EQ(web.subtree_bytes(), std::string("/s/web/port80/s/web/hostexample").size());
  EXPECT_EQ(web.subtree_mod_revision(), 2);

  const kvpb::StatResponse dir = store_.Query(Stat("/s")).stat();
  EXPECT_FALSE(dir.is_key());
  EXPECT_TRUE(dir.is_dir());
  EXPECT_EQ(dir.child_count(), 3);
  EXPECT_EQ(dir.subtree_keys(), 0);  // not asked

  const kvpb::StatResponse key = store_.Query(Stat("/s/db/port")).stat();
  EXPECT_TRUE(key.is_key());
  EXPECT_FALSE(key.is_dir());
  EXPECT_EQ(key.kv().create_revision(), 4);

  const kvpb::StatResponse none = store_.Query(Stat("/nothing")).stat();
  EXPECT_FALSE(none.is_key());
  EXPECT_FALSE(none.is_dir());
}

TEST_F(StoreListTest, StatAtAnOlderRevisionAndBadRevisions) {
  const kvpb::StatResponse then = store_.Query(Stat("/s/web", true, 1)).stat();
  EXPECT_FALSE(then.is_key());
  EXPECT_TRUE(then.is_dir());
  EXPECT_EQ(then.subtree_keys(), 1);
  EXPECT_EQ(StatusOf(store_.Query(Stat("/s", false, 99))).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(StatusOf(store_.Query(Stat("/s", false, -1))).code(),
            absl::StatusCode::kInvalidArgument);
}

kvpb::Request DeleteTree(const std::string& path, bool include_path_key) {
  kvpb::Request r;
  r.mutable_delete_tree()->set_path(path);
  r.mutable_delete_tree()->set_include_path_key(include_path_key);
  r.mutable_delete_tree()->set_prev_kv(true);
  return r;
}

TEST_F(StoreListTest, DeleteTreeTakesThePathKeyOnlyWhenAskedInTheSameRevision) {
  const int64_t before = store_.revision();
  kvpb::Response below = store_.Apply(DeleteTree("/s/web", false));
  ASSERT_EQ(StatusOf(below), absl::OkStatus());
  EXPECT_EQ(below.delete_range().deleted(), 2);
  EXPECT_EQ(store_.revision(), before + 1);
  EXPECT_TRUE(store_.Query(Stat("/s/web")).stat().is_key());

  kvpb::Response both = store_.Apply(DeleteTree("/s/db", true));
  ASSERT_EQ(StatusOf(both), absl::OkStatus());
  EXPECT_EQ(both.delete_range().deleted(), 2);  // no key /s/db: the two below it

  ASSERT_EQ(StatusOf(store_.Apply(Put("/s/db", "back"))), absl::OkStatus());
  ASSERT_EQ(StatusOf(store_.Apply(Put("/s/db/x", "1"))), absl::OkStatus());
  const int64_t revision = store_.revision();
  kvpb::Response key_and_tree = store_.Apply(DeleteTree("/s/db", true));
  ASSERT_EQ(StatusOf(key_and_tree), absl::OkStatus());
  ASSERT_EQ(key_and_tree.delete_range().prev_kvs_size(), 2);
  // Key order: the path's own key first.
  EXPECT_EQ(key_and_tree.delete_range().prev_kvs(0).key(), "/s/db");
  EXPECT_EQ(key_and_tree.delete_range().prev_kvs(1).key(), "/s/db/x");
  EXPECT_EQ(store_.revision(), revision + 1);
  const kvpb::StatResponse gone = store_.Query(Stat("/s/db")).stat();
  EXPECT_FALSE(gone.is_key());
  EXPECT_FALSE(gone.is_dir());
}

}  // namespace
}  // namespace etc::kv
