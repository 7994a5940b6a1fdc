// etcctl's drawings of the tree, against golden text.
#include "client/tree_view.h"

#include <gtest/gtest.h>

namespace etc::client {
namespace {

mvccpb::KeyValue Kv(const std::string& key, const std::string& value) {
  mvccpb::KeyValue kv;
  kv.set_key(key);
  kv.set_value(value);
  return kv;
}

TreeModel Services() {
  TreeModel model("/services");
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"/services/web/port", "80"},
           {"/services/web/host", "example.com"},
           {"/services/web", "is a key too"},
           {"/services/db/port", "5432"},
           {"/services/db/replicas/1", "r1"},
           {"/services/db/replicas/2", "r2"},
           {"/services/cache", "none"},
           {"/services/motd", "a long line of text\nwith a newline in it, and more"}}) {
    EXPECT_TRUE(model.Put(Kv(key, value)));
  }
  EXPECT_FALSE(model.Put(Kv("/other/x", "outside")));
  EXPECT_FALSE(model.Put(Kv("/services", "the root's own key")));
  return model;
}

TEST(TreeView, DrawsLikeTreeWithDirectoriesFirstAndASummary) {
  EXPECT_EQ(Services().Draw({.max_value_chars = 20}),
            "/services/\n"
            "├── db/\n"
            "│   ├── replicas/\n"
            "│   │   ├── 1 = r1\n"
            "│   │   └── 2 = r2\n"
            "│   └── port = 5432\n"
            "├── web/ = is a key too\n"
            "│   ├── host = example.com\n"
            "│   └── port = 80\n"
            "├── cache = none\n"
            "└── motd = a long line of text…\n"
            "\n"
            "3 directories, 8 keys\n");
}

TEST(TreeView, ADepthLimitShowsCountsWhereItStops) {
  EXPECT_EQ(Services().Draw({.max_depth = 1, .max_value_chars = 0}),
            "/services/\n"
            "├── db/ [3 keys]\n"
            "├── web/ [2 keys]\n"
            "├── cache\n"
            "└── motd\n"
            "\n"
            "3 directories, 8 keys\n");
}

TEST(TreeView, ColourOnlyWhenAsked) {
  std::string plain = Services().Draw({});
  EXPECT_EQ(plain.find('\033'), std::string::npos);
  std::string coloured = Services().Draw({.palette = {.colour = true}});
  EXPECT_NE(coloured.find("\033[1;34mdb/\033[0m"), std::string::npos) << coloured;
}

TEST(TreeView, TheLiveViewMarksChangesOnceThenForgetsDeletedKeys) {
  TreeModel model = Services();
  model.ClearMarks();
  mvccpb::Event put;
  put.set_type(mvccpb::Event::PUT);
  *put.mutable_kv() = Kv("/services/web/port", "81");
  mvccpb::Event added = put;
  *added.mutable_kv() = Kv("/services/queue/q1", "x");
  mvccpb::Event gone;
  gone.set_type(mvccpb::Event::DELETE);
  gone.mutable_kv()->set_key("/services/cache");
  for (const auto& event : {put, added, gone}) EXPECT_TRUE(model.Apply(event));
  EXPECT_EQ(model.Draw({.max_depth = 0, .max_value_chars = 10}),
            "/services/\n"
            "├── db/\n"
            "│   ├── replicas/\n"
            "│   │   ├── 1 = r1\n"
            "│   │   └── 2 = r2\n"
            "│   └── port = 5432\n"
            "├── queue/\n"
            "│   └── q1 = x  (new)\n"
            "├── web/ = is a key …\n"
            "│   ├── host = example.c…\n"
            "│   └── port = 81  (changed)\n"
            "├── cache  (deleted)\n"
            "└── motd = a long li…\n"
            "\n"
            "4 directories, 8 keys\n");
  model.ClearMarks();
  mvccpb::Event last;
  last.set_type(mvccpb::Event::DELETE);
  last.mutable_kv()->set_key("/services/queue/q1");
  EXPECT_TRUE(model.Apply(last));
  model.ClearMarks();
  std::string after = model.Draw({.max_value_chars = 0});
  EXPECT_EQ(after.find("cache"), std::string::npos);
  EXPECT_EQ(after.find("queue"), std::string::npos) << "an empty directory is gone";
  EXPECT_FALSE(model.Delete("/services/nothing"));
}

TEST(TreeView, DiskUsagePerSubtreeDeepestFirst) {
  EXPECT_EQ(Services().DiskUsage(0),
            "       2 keys       50 B  /services/db/replicas/\n"
            "       3 keys       71 B  /services/db/\n"
            "       2 keys       49 B  /services/web/\n"
            "       8 keys      228 B  /services/\n");
  EXPECT_EQ(Services().DiskUsage(1).find("replicas"), std::string::npos);
}

TEST(TreeView, ListingsShortAndLong) {
  google::protobuf::RepeatedPtrField<etcpb::Child> children;
  etcpb::Child* cache = children.Add();
  cache->set_name("cache");
  cache->set_is_key(true);
  *cache->mutable_kv() = Kv("/services/cache", "none");
  cache->mutable_kv()->set_mod_revision(7);
  cache->mutable_kv()->set_version(1);
  etcpb::Child* db = children.Add();
  db->set_name("db");
  db->set_is_dir(true);
  db->set_child_count(2);
  etcpb::Child* web = children.Add();
  web->set_name("web");
  web->set_is_key(true);
  web->set_is_dir(true);
  *web->mutable_kv() = Kv("/services/web", "is a key too");
  web->mutable_kv()->set_mod_revision(12);
  web->mutable_kv()->set_version(3);
  web->mutable_kv()->set_lease(0x694d7a5c8c1f0a1b);
  EXPECT_EQ(FormatListing(children, false, {}), "cache\ndb/\nweb\nweb/\n");
  EXPECT_EQ(FormatListing(children, true, {}),
            "REV  VER  LEASE             SIZE  NAME\n"
            "  7    1  -                    4  cache\n"
            "  -    -  -                    2  db/\n"
            " 12    3  694d7a5c8c1f0a1b    12  web\n"
            "  -    -  -                    -  web/\n");
}

TEST(TreeView, ValuesAreOnePrintableLine) {
  EXPECT_EQ(ShortValue("a\tb\x01", 0), "a\\tb\\x01");
  EXPECT_EQ(ShortValue("héllo wörld", 6), "héllo…");
  EXPECT_EQ(ShortValue("\xff\xfe", 0), "\\xff\\xfe");
  EXPECT_EQ(ShortValue("exact", 5), "exact");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3 * 1024 * 1024), "3.0 MiB");
}

}  // namespace
}  // namespace etc::client
