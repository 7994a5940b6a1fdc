// etcd v2's keys API on the key tree (store_tree.cc): one keyspace with v3,
// explicit directories as markers, leases as TTLs, in-order names, bad
// requests refused, and listings that show only what the user may read.
// v2's rules themselves are checked against a model in store_model_test.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "kv/errors.h"
#include "kv/response_status.h"
#include "kv/store.h"
#include "kv/tree.h"

namespace etc::kv {
namespace {

using Mode = kvpb::TreeSetRequest;

kvpb::Request Set(const std::string& path, const std::string& value, Mode::Mode mode = Mode::SET) {
  kvpb::Request r;
  r.mutable_tree_set()->set_path(path);
  r.mutable_tree_set()->set_value(value);
  r.mutable_tree_set()->set_mode(mode);
  return r;
}

kvpb::Request Mkdir(const std::string& path) {
  kvpb::Request r = Set(path, "", Mode::CREATE);
  r.mutable_tree_set()->set_dir(true);
  return r;
}

kvpb::Request TreeGet(const std::string& path, bool recursive = false) {
  kvpb::Request r;
  r.mutable_tree_get()->set_path(path);
  r.mutable_tree_get()->set_recursive(recursive);
  return r;
}

kvpb::Request TreeDelete(const std::string& path, bool dir = false, bool recursive = false) {
  kvpb::Request r;
  r.mutable_tree_delete()->set_path(path);
  r.mutable_tree_delete()->set_dir(dir);
  r.mutable_tree_delete()->set_recursive(recursive);
  return r;
}

kvpb::Request As(kvpb::Request r, const std::string& user, const Store& store) {
  r.mutable_header()->set_username(user);
  r.mutable_header()->set_auth_revision(store.auth().revision());
  return r;
}

// Applies (or, for a get, queries) and returns the v2 answer; the request
// itself must not fail.
kvpb::TreeResponse Tree(Store& store, const kvpb::Request& r) {
  kvpb::Response response = r.has_tree_get() ? store.Query(r) : store.Apply(r);
  EXPECT_EQ(StatusOf(response), absl::OkStatus()) << r.ShortDebugString();
  store.CheckInvariants();
  return response.tree();
}

std::vector<std::string> Keys(const kvpb::TreeNode& node) {
  std::vector<std::string> keys;
  for (const kvpb::TreeNode& child : node.nodes()) {
    keys.push_back(child.key() + (child.dir() ? "/" : ""));
    for (const std::string& below : Keys(child)) keys.push_back(below);
  }
  return keys;
}

TEST(StoreTree, OneKeyspaceWithV3) {
  Store store;
  kvpb::Request put;
  put.mutable_put()->set_key("/a/b");
  put.mutable_put()->set_value("v3");
  ASSERT_EQ(StatusOf(store.Apply(put)), absl::OkStatus());
  kvpb::TreeResponse got = Tree(store, TreeGet("/a/b"));
  EXPECT_EQ(got.node().value(), "v3");
  EXPECT_EQ(got.node().created_index(), 1);
  // The implicit directory /a has no marker, hence no indexes.
  kvpb::TreeResponse dir = Tree(store, TreeGet("/a"));
  EXPECT_TRUE(dir.node().dir());
  EXPECT_EQ(dir.node().created_index(), 0);
  EXPECT_EQ(Keys(dir.node()), std::vector<std::string>{"/a/b"});
  // A v2 write is a v3 key, and mkdir is the marker key "/d/".
  Tree(store, Set("/a/c", "v2"));
  Tree(store, Mkdir("/d"));
  kvpb::Request range;
  range.mutable_range()->set_key("/");
  range.mutable_range()->set_range_end(PrefixEnd("/"));
  kvpb::Response all = store.Query(range);
  ASSERT_EQ(all.range().kvs_size(), 3);
  EXPECT_EQ(all.range().kvs(1).key(), "/a/c");
  EXPECT_EQ(all.range().kvs(1).value(), "v2");
  EXPECT_EQ(all.range().kvs(2).key(), "/d/");
  EXPECT_EQ(Keys(Tree(store, TreeGet("/", true)).node()),
            (std::vector<std::string>{"/a/", "/a/b", "/a/c", "/d/"}));
}

TEST(StoreTree, V2DirectoriesOutliveTheirKeysV3OnesDoNot) {
  Store store;
  Tree(store, Mkdir("/d"));
  Tree(store, Set("/d/x", "1"));
  // A v2 set makes the directories on its way, as v2 does: markers.
  kvpb::TreeResponse made = Tree(store, Set("/m/n/x", "1"));
  kvpb::Request put;
  put.mutable_put()->set_key("/i/x");
  put.mutable_put()->set_value("1");
  ASSERT_EQ(StatusOf(store.Apply(put)), absl::OkStatus());
  Tree(store, TreeDelete("/d/x"));
  Tree(store, TreeDelete("/m/n/x"));
  Tree(store, TreeDelete("/i/x"));
  EXPECT_TRUE(Tree(store, TreeGet("/d")).node().dir());
  kvpb::TreeResponse m = Tree(store, TreeGet("/m", true));
  EXPECT_EQ(m.node().created_index(), made.node().created_index());
  EXPECT_EQ(Keys(m.node()), std::vector<std::string>{"/m/n/"});
  EXPECT_EQ(Tree(store, TreeGet("/i")).error_code(), kTreeKeyNotFound);
  EXPECT_EQ(Tree(store, TreeDelete("/d")).error_code(), kTreeNotFile);
  EXPECT_EQ(Tree(store, TreeDelete("/d", /*dir=*/true)).action(), "delete");
  EXPECT_EQ(Tree(store, TreeGet("/d")).error_code(), kTreeKeyNotFound);
}

TEST(StoreTree, InOrderKeysAreNamedByTheirRevision) {
  Store store;
  kvpb::TreeResponse first = Tree(store, Set("/q", "a", Mode::CREATE_IN_ORDER));
  kvpb::TreeResponse second = Tree(store, Set("/q", "b", Mode::CREATE_IN_ORDER));
  EXPECT_EQ(first.action(), "create");
  EXPECT_EQ(first.node().key(), "/q/" + InOrderName(1));
  EXPECT_EQ(second.node().key(), "/q/" + InOrderName(2));
  EXPECT_EQ(second.node().created_index(), 2);
  Tree(store, Set("/f", "file"));
  EXPECT_EQ(Tree(store, Set("/f", "x", Mode::CREATE_IN_ORDER)).error_code(), kTreeNotDir);
}

TEST(StoreTree, TtlIsALease) {
  Store store;
  kvpb::Request grant;
  grant.mutable_lease_grant()->set_id(7);
  grant.mutable_lease_grant()->set_ttl(5);
  ASSERT_EQ(StatusOf(store.Apply(grant)), absl::OkStatus());
  kvpb::Request set = Set("/t", "v");
  set.mutable_tree_set()->set_lease(8);
  EXPECT_EQ(StatusOf(store.Apply(set)), LeaseNotFoundError());
  set.mutable_tree_set()->set_lease(7);
  EXPECT_EQ(Tree(store, set).node().lease(), 7);
  // A refresh keeps the value; a set without a lease clears the TTL.
  kvpb::Request refresh = Set("/t", "", Mode::UPDATE);
  refresh.mutable_tree_set()->set_refresh(true);
  refresh.mutable_tree_set()->set_lease(7);
  kvpb::TreeResponse refreshed = Tree(store, refresh);
  EXPECT_EQ(refreshed.node().value(), "v");
  EXPECT_EQ(refreshed.action(), "update");
  kvpb::Request revoke;
  revoke.mutable_lease_revoke()->set_id(7);
  ASSERT_EQ(StatusOf(store.Apply(revoke)), absl::OkStatus());
  EXPECT_EQ(Tree(store, TreeGet("/t")).error_code(), kTreeKeyNotFound);
}

TEST(StoreTree, RevisionsRememberWhatTheyWereToV2) {
  Store store;
  Tree(store, Set("/n", "1", Mode::CREATE));
  Tree(store, Set("/n", "2", Mode::UPDATE));
  kvpb::Request cas = Set("/n", "3", Mode::COMPARE_AND_SWAP);
  cas.mutable_tree_set()->set_prev_value("2");
  Tree(store, cas);
  kvpb::Request refresh = Set("/n", "", Mode::UPDATE);
  refresh.mutable_tree_set()->set_refresh(true);
  Tree(store, refresh);
  Tree(store, Set("/d/x", "1"));
  Tree(store, TreeDelete("/d", /*dir=*/true, /*recursive=*/true));
  kvpb::Request put;
  put.mutable_put()->set_key("/v3");
  ASSERT_EQ(StatusOf(store.Apply(put)), absl::OkStatus());
  std::vector<std::string> actions;
  for (Revision r = 1; r <= store.revision(); ++r) {
    const Store::TreeNote* note = store.TreeNoteAt(r);
    actions.push_back(note == nullptr ? "-" : note->action + (note->dir ? " " + note->path : ""));
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"create", "update", "compareAndSwap", "refresh", "set",
                                               "delete /d", "-"}));
  // A refused request notes nothing, nor does a lease that ends with no
  // key (it makes no revision: the last one stays v3's).
  Tree(store, Set("/n", "x", Mode::CREATE));
  EXPECT_EQ(store.TreeNoteAt(store.revision() + 1), nullptr);
  kvpb::Request grant;
  grant.mutable_lease_grant()->set_id(9);
  grant.mutable_lease_grant()->set_ttl(5);
  ASSERT_EQ(StatusOf(store.Apply(grant)), absl::OkStatus());
  kvpb::Request expire;
  expire.mutable_lease_expire()->add_ids(9);
  ASSERT_EQ(StatusOf(store.Apply(expire)), absl::OkStatus());
  EXPECT_EQ(store.TreeNoteAt(store.revision()), nullptr);
}

TEST(StoreTree, ALeaseOnADirectoryTakesTheDirectory) {
  Store store;
  kvpb::Request grant;
  grant.mutable_lease_grant()->set_id(3);
  grant.mutable_lease_grant()->set_ttl(5);
  ASSERT_EQ(StatusOf(store.Apply(grant)), absl::OkStatus());
  kvpb::Request mkdir = Mkdir("/t");
  mkdir.mutable_tree_set()->set_lease(3);
  Tree(store, mkdir);
  Tree(store, Set("/t/a/b", "1"));
  Tree(store, Set("/kept", "1"));
  kvpb::Request expire;
  expire.mutable_lease_expire()->add_ids(3);
  ASSERT_EQ(StatusOf(store.Apply(expire)), absl::OkStatus());
  EXPECT_EQ(Keys(Tree(store, TreeGet("/", true)).node()), std::vector<std::string>{"/kept"});
  const Store::TreeNote* note = store.TreeNoteAt(store.revision());
  ASSERT_NE(note, nullptr);
  EXPECT_EQ(note->action, "expire");
  EXPECT_EQ(note->path, "/t");
}

TEST(StoreTree, RefusalsChangeNothing) {
  Store store;
  Tree(store, Set("/f", "1"));
  Revision revision = store.revision();
  EXPECT_EQ(Tree(store, Set("/f/x", "1")).error_cause(), "/f");  // not a directory
  EXPECT_EQ(Tree(store, Set("/f", "1", Mode::CREATE)).error_code(), kTreeNodeExist);
  EXPECT_EQ(Tree(store, Set("/", "1")).error_code(), kTreeRootReadOnly);
  EXPECT_EQ(Tree(store, TreeDelete("/")).error_code(), kTreeRootReadOnly);
  kvpb::Request cas = Set("/f", "2", Mode::COMPARE_AND_SWAP);
  cas.mutable_tree_set()->set_prev_value("0");
  kvpb::TreeResponse failed = Tree(store, cas);
  EXPECT_EQ(failed.error_code(), kTreeCompareFailed);
  EXPECT_EQ(failed.error_cause(), "[0 != 1]");
  EXPECT_EQ(failed.header().revision(), revision);
  kvpb::Request by_index = Set("/f", "2", Mode::COMPARE_AND_SWAP);
  by_index.mutable_tree_set()->set_prev_index(revision + 5);
  EXPECT_EQ(Tree(store, by_index).error_cause(), absl::StrCat("[", revision + 5, " != ", revision, "]"));
  kvpb::Request delete_by_index = TreeDelete("/f");
  delete_by_index.mutable_tree_delete()->set_prev_index(revision + 5);
  EXPECT_EQ(Tree(store, delete_by_index).error_code(), kTreeCompareFailed);
  EXPECT_EQ(store.revision(), revision);
}

TEST(StoreTree, MalformedRequestsAreRefused) {
  Store store;
  for (const char* path : {"", "a", "/a/", "/a//b", "/a/../b", "/a/./b"}) {
    EXPECT_EQ(StatusOf(store.Apply(Set(path, "v"))).code(), absl::StatusCode::kInvalidArgument)
        << path;
    EXPECT_EQ(StatusOf(store.Query(TreeGet(path))).code(), absl::StatusCode::kInvalidArgument);
  }
  kvpb::Request set = Set("/a", "v");
  set.mutable_tree_set()->set_prev_value("x");  // only compare-and-swap compares
  EXPECT_EQ(StatusOf(store.Apply(set)).code(), absl::StatusCode::kInvalidArgument);
  set = Set("/a", "v");
  set.mutable_tree_set()->set_mode(static_cast<Mode::Mode>(9));
  EXPECT_EQ(StatusOf(store.Apply(set)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.revision(), 0);
}

// alice may read and write /a/ only.
class StoreTreeAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* path : {"/a/x", "/a/d/y", "/b/secret", "/top"}) Tree(store_, Set(path, "v"));
    for (const char* user : {"root", "alice"}) {
      kvpb::Request add;
      add.mutable_user_add()->set_name(user);
      add.mutable_user_add()->mutable_options()->set_no_password(true);
      ASSERT_EQ(StatusOf(store_.Apply(add)), absl::OkStatus());
    }
    kvpb::Request role;
    role.mutable_role_add()->set_name("a-rw");
    ASSERT_EQ(StatusOf(store_.Apply(role)), absl::OkStatus());
    kvpb::Request perm;
    perm.mutable_role_grant_permission()->set_name("a-rw");
    perm.mutable_role_grant_permission()->mutable_perm()->set_permtype(authpb::Permission::READWRITE);
    perm.mutable_role_grant_permission()->mutable_perm()->set_key("/a/");
    perm.mutable_role_grant_permission()->mutable_perm()->set_range_end(PrefixEnd("/a/"));
    ASSERT_EQ(StatusOf(store_.Apply(perm)), absl::OkStatus());
    for (auto [user, r] : {std::pair{"root", "root"}, std::pair{"alice", "a-rw"}}) {
      kvpb::Request grant;
      grant.mutable_user_grant_role()->set_user(user);
      grant.mutable_user_grant_role()->set_role(r);
      ASSERT_EQ(StatusOf(store_.Apply(grant)), absl::OkStatus());
    }
    kvpb::Request enable;
    enable.mutable_auth_enable();
    ASSERT_EQ(StatusOf(store_.Apply(As(enable, "root", store_))), absl::OkStatus());
  }

  absl::Status Refusal(const kvpb::Request& r) {
    kvpb::Request asked = As(r, "alice", store_);
    return StatusOf(asked.has_tree_get() ? store_.Query(asked) : store_.Apply(asked));
  }

  Store store_;
};

TEST_F(StoreTreeAuth, ListingsShowOnlyWhatTheUserMayRead) {
  EXPECT_EQ(Keys(Tree(store_, As(TreeGet("/"), "alice", store_)).node()),
            std::vector<std::string>{"/a/"});
  EXPECT_EQ(Keys(Tree(store_, As(TreeGet("/", true), "alice", store_)).node()),
            (std::vector<std::string>{"/a/", "/a/d/", "/a/d/y", "/a/x"}));
  EXPECT_EQ(Keys(Tree(store_, As(TreeGet("/a"), "alice", store_)).node()),
            (std::vector<std::string>{"/a/d/", "/a/x"}));
  EXPECT_EQ(Keys(Tree(store_, As(TreeGet("/", true), "root", store_)).node()).size(), 7u);
}

TEST_F(StoreTreeAuth, EverythingElseIsRefused) {
  EXPECT_EQ(Refusal(TreeGet("/b")), PermissionDeniedError());
  EXPECT_EQ(Refusal(TreeGet("/b/secret")), PermissionDeniedError());
  EXPECT_EQ(Refusal(TreeGet("/top")), PermissionDeniedError());
  EXPECT_EQ(Refusal(Set("/b/x", "v")), PermissionDeniedError());
  EXPECT_EQ(Refusal(Mkdir("/c")), PermissionDeniedError());
  EXPECT_EQ(Refusal(TreeDelete("/b", true, true)), PermissionDeniedError());
  // Refusals would tell what is there: they come after the permission check.
  kvpb::Request cas = Set("/b/secret", "x", Mode::COMPARE_AND_SWAP);
  cas.mutable_tree_set()->set_prev_value("guess");
  EXPECT_EQ(Refusal(cas), PermissionDeniedError());
  kvpb::Request cad = TreeDelete("/b/secret");
  cad.mutable_tree_delete()->set_prev_value("guess");
  EXPECT_EQ(Refusal(cad), PermissionDeniedError());
  EXPECT_EQ(Refusal(Set("/b/secret", "x", Mode::CREATE)), PermissionDeniedError());
  EXPECT_EQ(Refusal(Set("/b/nope", "x", Mode::UPDATE)), PermissionDeniedError());
  EXPECT_EQ(Refusal(TreeDelete("/b/nope")), PermissionDeniedError());
  EXPECT_EQ(Refusal(TreeGet("/b/nope")), PermissionDeniedError());
  EXPECT_EQ(Refusal(TreeGet("/top/x")), PermissionDeniedError());  // not 104
  // Inside her own directory, v2's answers as usual.
  EXPECT_EQ(Tree(store_, As(TreeGet("/a/nope"), "alice", store_)).error_code(), kTreeKeyNotFound);
  // Her own directory she may delete whole, and write in it again.
  EXPECT_EQ(Refusal(TreeDelete("/a", true, true)), absl::OkStatus());
  EXPECT_EQ(Refusal(Set("/a/new", "v")), absl::OkStatus());
  EXPECT_EQ(Refusal(Mkdir("/a/dir")), absl::OkStatus());
}

}  // namespace
}  // namespace etc::kv
