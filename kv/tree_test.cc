#include "kv/tree.h"

#include <gtest/gtest.h>

namespace etc::kv {
namespace {

TEST(TreePath, NormalizesAsV2Does) {
  EXPECT_EQ(NormalizeTreePath("").value(), "/");
  EXPECT_EQ(NormalizeTreePath("/").value(), "/");
  EXPECT_EQ(NormalizeTreePath("a").value(), "/a");
  EXPECT_EQ(NormalizeTreePath("/a//b/").value(), "/a/b");
  EXPECT_EQ(NormalizeTreePath("/a/./b").value(), "/a/b");
  EXPECT_EQ(NormalizeTreePath("/a/../b").value(), "/b");
  EXPECT_EQ(NormalizeTreePath("/../../x").value(), "/x");
  EXPECT_EQ(NormalizeTreePath("/a/..").value(), "/");
  EXPECT_EQ(NormalizeTreePath("/\xc3\xa9t\xc3\xa9").value(), "/\xc3\xa9t\xc3\xa9");
}

TEST(TreePath, RefusesNulButKeepsOtherBytes) {
  EXPECT_FALSE(NormalizeTreePath(std::string("/a\0b", 4)).ok());
  EXPECT_EQ(NormalizeTreePath("/\xff").value(), "/\xff");  // etcd stores it too
}

TEST(TreePath, NormalForm) {
  EXPECT_TRUE(IsNormalTreePath("/"));
  EXPECT_TRUE(IsNormalTreePath("/a/b"));
  EXPECT_FALSE(IsNormalTreePath(""));
  EXPECT_FALSE(IsNormalTreePath("a"));
  EXPECT_FALSE(IsNormalTreePath("/a/"));
  EXPECT_FALSE(IsNormalTreePath("/a//b"));
  EXPECT_FALSE(IsNormalTreePath("/a/../b"));
}

TEST(TreePath, MarkersAndAncestors) {
  EXPECT_EQ(DirMarker("/a/b"), "/a/b/");
  EXPECT_EQ(DirMarker("/"), "/");
  EXPECT_TRUE(IsDirMarker("/a/"));
  EXPECT_FALSE(IsDirMarker("/a"));
  EXPECT_EQ(NodePathOf("/a/"), "/a");
  EXPECT_EQ(NodePathOf("/a"), "/a");
  EXPECT_EQ(NodePathOf("/"), "/");
  EXPECT_EQ(TreeAncestors("/a/b/c"), (std::vector<std::string>{"/a", "/a/b"}));
  EXPECT_TRUE(TreeAncestors("/a").empty());
}

TEST(TreeNames, InOrderNamesSortByRevision) {
  EXPECT_EQ(InOrderName(12), "00000000000000000012");
  EXPECT_LT(InOrderName(9), InOrderName(10));
  EXPECT_EQ(InOrderName(9).size(), 20u);
}

TEST(TreeNames, CompareFailCauseSaysWhatDiffered) {
  mvccpb::KeyValue kv;
  kv.set_value("one");
  kv.set_mod_revision(7);
  EXPECT_EQ(CompareFailCause(kv, "two", 0), "[two != one]");
  EXPECT_EQ(CompareFailCause(kv, "", 3), "[3 != 7]");
  EXPECT_EQ(CompareFailCause(kv, "two", 3), "[two != one] [3 != 7]");
  EXPECT_EQ(CompareFailCause(kv, "one", 3), "[3 != 7]");
}

mvccpb::KeyValue Kv(std::string key, int64_t revision, std::string value = "") {
  mvccpb::KeyValue kv;
  kv.set_key(std::move(key));
  kv.set_value(std::move(value));
  kv.set_create_revision(revision);
  kv.set_mod_revision(revision);
  return kv;
}

TEST(TreeNodes, SubtreeFromKeys) {
  // Keys in key order, as a range returns them: "/d/x!" sorts between the
  // file "/d/x" and its would-be subtree, and "/d/y/" marks an explicit
  // directory.
  std::vector<mvccpb::KeyValue> kvs = {
      Kv("/d/a/b/c", 2, "c"), Kv("/d/x", 3, "x"), Kv("/d/x!", 4, "bang"),
      Kv("/d/x/hidden", 5),   Kv("/d/y/", 6),     Kv("/d/y/z", 7, "z"),
  };
  kvpb::TreeNode dir = DirNode("/d", nullptr);
  AddSubtree("/d", kvs, &dir);
  ASSERT_EQ(dir.nodes_size(), 4);
  EXPECT_EQ(dir.nodes(0).key(), "/d/a");
  EXPECT_TRUE(dir.nodes(0).dir());
  EXPECT_EQ(dir.nodes(0).created_index(), 0);  // no marker
  ASSERT_EQ(dir.nodes(0).nodes_size(), 1);
  EXPECT_EQ(dir.nodes(0).nodes(0).key(), "/d/a/b");
  ASSERT_EQ(dir.nodes(0).nodes(0).nodes_size(), 1);
  EXPECT_EQ(dir.nodes(0).nodes(0).nodes(0).value(), "c");
  EXPECT_EQ(dir.nodes(1).key(), "/d/x");  // the file hides /d/x/hidden
  EXPECT_FALSE(dir.nodes(1).dir());
  EXPECT_EQ(dir.nodes(1).nodes_size(), 0);
  EXPECT_EQ(dir.nodes(2).key(), "/d/x!");
  EXPECT_EQ(dir.nodes(3).key(), "/d/y");
  EXPECT_TRUE(dir.nodes(3).dir());
  EXPECT_EQ(dir.nodes(3).created_index(), 6);
  ASSERT_EQ(dir.nodes(3).nodes_size(), 1);
  EXPECT_EQ(dir.nodes(3).nodes(0).key(), "/d/y/z");
}

TEST(TreeNodes, RootSubtree) {
  std::vector<mvccpb::KeyValue> kvs = {Kv("/", 1), Kv("/a", 2, "a"), Kv("/e/", 3)};
  kvpb::TreeNode root = DirNode("/", nullptr);
  AddSubtree("/", kvs, &root);
  ASSERT_EQ(root.nodes_size(), 2);
  EXPECT_EQ(root.nodes(0).key(), "/a");
  EXPECT_EQ(root.nodes(1).key(), "/e");
  EXPECT_TRUE(root.nodes(1).dir());
  EXPECT_EQ(root.nodes(1).nodes_size(), 0);
}

}  // namespace
}  // namespace etc::kv
