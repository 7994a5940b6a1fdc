// TreeClient against a real three-member cluster started by the test: the
// server binary is the first argument. Against etc, every call is made
// twice, through the Tree service (the probing client) and through prefix
// ranges (a client forced to fall back), and the answers must match with
// the expected ones, headers aside. Against etcd 3.4 (the referee) both
// clients fall back: the same expectations prove the fallback right.
#include "client/tree_client.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/test_cluster.h"
#include "google/protobuf/util/message_differencer.h"

namespace etc::client {
namespace {

const char* g_server = nullptr;

bool ServerIsEtcd() { return absl::EndsWith(g_server, "/etcd"); }

// One cluster for the suite (each test under its own directory).
class TreeClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new testing::Cluster(g_server);
    client_ = cluster_->Connect().release();
  }
  static void TearDownTestSuite() {
    delete client_;
    delete cluster_;
  }
  void SetUp() override {
    ASSERT_NE(client_, nullptr);
    probing_ = std::make_unique<TreeClient>(client_);
    fallback_ = std::make_unique<TreeClient>(client_, TreeClient::Mode::kFallback);
  }


 public:
  void Put(const std::string& key, const std::string& value) {
    ASSERT_TRUE(client_->Put(key, value).ok()) << key;
  }

 protected:
  int64_t Revision() { return client_->Get("/ready")->header().revision(); }

  // The call through both clients: equal answers (headers aside), or equal errors.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Both(absl::StatusOr<Response> (TreeClient::*call)(const Request&),
                                const Request& request) {
    absl::StatusOr<Response> native = (probing_.get()->*call)(request);
    absl::StatusOr<Response> fallback = (fallback_.get()->*call)(request);
    EXPECT_EQ(probing_->falls_back(), ServerIsEtcd());
    EXPECT_EQ(native.status(), fallback.status()) << request.ShortDebugString();
    if (native.ok() && fallback.ok()) {
      native->clear_header();
      fallback->clear_header();
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*native, *fallback))
          << "native:   " << native->ShortDebugString()
          << "\nfallback: " << fallback->ShortDebugString();
    }
    return native;
  }

  absl::StatusOr<etcpb::ListResponse> List(const std::string& path, int64_t limit,
                                           const std::string& after, int64_t revision = 0) {
    etcpb::ListRequest r;
    r.set_path(path);
    r.set_limit(limit);
    r.set_after(after);
    r.set_revision(revision);
    r.set_child_counts(true);
    return Both(&TreeClient::List, r);
  }
  absl::StatusOr<etcpb::StatResponse> Stat(const std::string& path, bool subtree = false) {
    etcpb::StatRequest r;
    r.set_path(path);
    r.set_subtree(subtree);
    return Both(&TreeClient::Stat, r);
  }

  static inline testing::Cluster* cluster_ = nullptr;
  static inline Client* client_ = nullptr;
  std::unique_ptr<TreeClient> probing_;
  std::unique_ptr<TreeClient> fallback_;
};

std::vector<std::string> Names(const etcpb::ListResponse& page) {
  std::vector<std::string> names;
  for (const etcpb::Child& child : page.children()) names.push_back(child.name());
  return names;
}

void PutListingTree(TreeClientTest* t, const std::string& d) {
  // "a" is a key and a directory; "a-1" sorts between "a"'s key and its
  // subtree; "d" has three children, one a directory.
  for (const char* key : {"/a", "/a/x", "/a/y", "/a-1", "/b/c/d", "/c", "/d/e", "/d/f", "/d/g/h",
                          "/e"}) {
    t->Put(d + key, absl::StrCat("v", key));
  }
}

TEST_F(TreeClientTest, ListPagesOverNamesThatAreKeysAndDirectories) {
  PutListingTree(this, "/t1");
  auto first = List("/t1", 2, "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Names(*first), (std::vector<std::string>{"a", "a-1"}));
  EXPECT_TRUE(first->more());
  const etcpb::Child& a = first->children(0);
  EXPECT_TRUE(a.is_key() && a.is_dir());
  EXPECT_EQ(a.kv().value(), "v/a");
  EXPECT_EQ(a.child_count(), 2);
  EXPECT_FALSE(first->children(1).is_dir());
  auto second = List("/t1/", 2, "a-1");  // a trailing slash: the same directory
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Names(*second), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(second->children(0).child_count(), 1);
  EXPECT_TRUE(second->more());
  auto last = List("/t1", 2, "c");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(Names(*last), (std::vector<std::string>{"d", "e"}));
  EXPECT_EQ(last->children(0).child_count(), 3);
  EXPECT_FALSE(last->more());
  auto whole = List("/t1", 0, "");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->children_size(), 6);
  EXPECT_EQ(List("/t1", -1, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TreeClientTest, StatTellsKeyDirectoryBothAndNeither) {
  PutListingTree(this, "/t2");
  auto both = Stat("/t2/a");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_TRUE(both->is_key() && both->is_dir());
  EXPECT_EQ(both->child_count(), 2);
  EXPECT_EQ(both->value_bytes(), 3);  // "v/a"
  EXPECT_TRUE(both->kv().value().empty());
  auto dir = Stat("/t2/b/");
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE(!dir->is_key() && dir->is_dir());
  auto key = Stat("/t2/c");
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(key->is_key() && !key->is_dir());
  auto neither = Stat("/t2/zz");
  ASSERT_TRUE(neither.ok());
  EXPECT_TRUE(!neither->is_key() && !neither->is_dir());
  auto subtree = Stat("/t2/d", true);
  ASSERT_TRUE(subtree.ok());
  EXPECT_EQ(subtree->subtree_keys(), 3);
  EXPECT_EQ(subtree->subtree_bytes(), (7 + 5) * 2 + 9 + 7);  // "/t2/d/e" = "v/d/e", ...
  EXPECT_GT(subtree->subtree_mod_revision(), 0);
}

TEST_F(TreeClientTest, GetTreePagesWithLimitAndAfterKey) {
  PutListingTree(this, "/t3");
  std::vector<std::string> keys;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    etcpb::GetTreeRequest r;
    r.set_path("/t3");
    r.set_limit(3);
    r.set_after_key(after);
    auto got = Both(&TreeClient::GetTree, r);
    ASSERT_TRUE(got.ok()) << got.status();
    for (const auto& kv : got->kvs()) keys.push_back(kv.key());
    if (!got->more()) break;
    after = keys.back();
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"/t3/a", "/t3/a-1", "/t3/a/x", "/t3/a/y", "/t3/b/c/d",
                                            "/t3/c", "/t3/d/e", "/t3/d/f", "/t3/d/g/h", "/t3/e"}));
  etcpb::GetTreeRequest negative;
  negative.set_path("/t3");
  negative.set_revision(-1);
  EXPECT_EQ(Both(&TreeClient::GetTree, negative).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The same deletes, in a directory of each client's own.
TEST_F(TreeClientTest, DeleteTreeWithAndWithoutThePathKey) {
  for (TreeClient* tree : {probing_.get(), fallback_.get()}) {
    std::string d = tree == probing_.get() ? "/t4/n" : "/t4/f";
    Put(d, "key");
    Put(d + "/1", "one");
    Put(d + "/2/x", "two");
    etcpb::DeleteTreeRequest r;
    r.set_path(d);
    r.set_prev_kv(true);
    auto below = tree->DeleteTree(r);
    ASSERT_TRUE(below.ok()) << below.status();
    EXPECT_EQ(below->deleted(), 2);
    ASSERT_EQ(below->prev_kvs_size(), 2);
    EXPECT_EQ(below->prev_kvs(1).value(), "two");
    Put(d + "/3", "three");
    r.set_include_path_key(true);
    int64_t before = Revision();
    auto both = tree->DeleteTree(r);
    ASSERT_TRUE(both.ok()) << both.status();
    EXPECT_EQ(both->deleted(), 2);
    ASSERT_EQ(both->prev_kvs_size(), 2);
    EXPECT_EQ(both->prev_kvs(0).key(), d);
    EXPECT_EQ(both->prev_kvs(1).key(), d + "/3");
    EXPECT_EQ(both->header().revision(), before + 1);  // one revision
    EXPECT_FALSE(client_->Get(d)->kvs_size());
  }
}

TEST_F(TreeClientTest, RevisionReadsAndCompactedRevisions) {
  Put("/t5/a", "1");
  Put("/t5/b", "2");
  int64_t then = Revision();
  ASSERT_TRUE(client_->Delete("/t5/a").ok());
  Put("/t5/c", "3");
  auto old = List("/t5", 0, "", then);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(Names(*old), (std::vector<std::string>{"a", "b"}));
  auto now = List("/t5", 0, "");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(Names(*now), (std::vector<std::string>{"b", "c"}));
  ASSERT_TRUE(client_->Compact(Revision()).ok());
  auto compacted = List("/t5", 0, "", then);
  EXPECT_EQ(compacted.status().code(), absl::StatusCode::kOutOfRange) << compacted.status();
  EXPECT_TRUE(absl::StrContains(compacted.status().message(), "compacted"));
  auto future = List("/t5", 0, "", Revision() + 100);
  EXPECT_EQ(future.status().code(), absl::StatusCode::kOutOfRange) << future.status();
}

// Events as "type key=value (prev)", in order.
class Events {
 public:
  void Add(const etcpb::WatchTreeResponse& response) {
    std::lock_guard<std::mutex> lock(mu_);
    if (response.created()) created_ = true;
    if (response.canceled()) {
      compact_revision_ = response.compact_revision();
      cancel_reason_ = response.cancel_reason();
    }
    for (const mvccpb::Event& e : response.events()) {
      lines_.push_back(absl::StrCat(e.type() == mvccpb::Event::PUT ? "put " : "del ",
                                    e.kv().key(), "=", e.kv().value(), " (",
                                    e.prev_kv().value(), ")"));
    }
  }
  std::vector<std::string> WaitFor(size_t count) {
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (lines_.size() >= count) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  bool created() {
    std::lock_guard<std::mutex> lock(mu_);
    return created_;
  }
  int64_t compact_revision() {
    std::lock_guard<std::mutex> lock(mu_);
    return compact_revision_;
  }
  std::string cancel_reason() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancel_reason_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
  bool created_ = false;
  int64_t compact_revision_ = 0;
  std::string cancel_reason_;
};

TEST_F(TreeClientTest, WatchTreeChildrenOrSubtreeInOrderWithPrevKv) {
  Events events[2][2];  // [client][depth]
  std::vector<std::unique_ptr<TreeWatcher>> watchers;
  TreeClient* clients[2] = {probing_.get(), fallback_.get()};
  for (int c = 0; c < 2; ++c) {
    for (int depth = 0; depth < 2; ++depth) {
      etcpb::WatchTreeRequest r;
      r.set_path("/t6");
      r.set_depth(depth == 0 ? etcpb::WatchTreeRequest::SUBTREE : etcpb::WatchTreeRequest::CHILDREN);
      r.set_prev_kv(true);
      Events* sink = &events[c][depth];
      watchers.push_back(clients[c]->WatchTree(r, [sink](const auto& w) { sink->Add(w); }));
      EXPECT_TRUE(sink->created());
    }
  }
  Put("/t6/a", "1");
  Put("/t6/sub/b", "2");
  Put("/t6/a", "3");
  ASSERT_TRUE(client_->Delete("/t6/sub/b").ok());
  Put("/t6x", "outside");
  etcpb::DeleteTreeRequest all;
  all.set_path("/t6");
  ASSERT_TRUE(probing_->DeleteTree(all).ok());
  const std::vector<std::string> subtree = {"put /t6/a=1 ()", "put /t6/sub/b=2 ()",
                                            "put /t6/a=3 (1)", "del /t6/sub/b= (2)",
                                            "del /t6/a= (3)"};
  const std::vector<std::string> children = {"put /t6/a=1 ()", "put /t6/a=3 (1)", "del /t6/a= (3)"};
  for (int c = 0; c < 2; ++c) {
    EXPECT_EQ(events[c][0].WaitFor(subtree.size()), subtree) << "client " << c;
    EXPECT_EQ(events[c][1].WaitFor(children.size()), children) << "client " << c;
  }
}

TEST_F(TreeClientTest, WatchTreeFromACompactedRevisionIsCanceled) {
  Put("/t7/a", "1");
  Put("/t7/a", "2");
  ASSERT_TRUE(client_->Compact(Revision()).ok());
  for (TreeClient* tree : {probing_.get(), fallback_.get()}) {
    etcpb::WatchTreeRequest r;
    r.set_path("/t7");
    r.set_start_revision(2);
    Events events;
    auto watcher = tree->WatchTree(r, [&events](const auto& w) { events.Add(w); });
    for (int i = 0; i < 100 && events.compact_revision() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_GT(events.compact_revision(), 2);
    watcher.reset();
  }
}

// A cluster of its own: the member the watch uses is killed. Over the Tree
// service the watcher resumes on another member from the revision after
// the last it delivered; over etcd, the prefix watch does the same. No
// event is lost or repeated.
TEST(TreeClientFailover, AWatchTreeGoesOnThroughAnotherMemberWithoutLosingEvents) {
  testing::Cluster cluster(g_server);
  ClientOptions survivors;
  survivors.endpoints = {cluster.Endpoint(1), cluster.Endpoint(2)};
  std::unique_ptr<Client> writer = cluster.Connect(survivors);
  std::unique_ptr<Client> watching = cluster.Connect();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(watching, nullptr);
  TreeClient tree(watching.get());
  etcpb::WatchTreeRequest request;
  request.set_path("/f");
  Events events;
  auto watcher = tree.WatchTree(request, [&](const etcpb::WatchTreeResponse& r) { events.Add(r); });
  ASSERT_TRUE(events.created());
  // Create-if-absent: a write retried after an unknown outcome makes no
  // second event.
  auto create = [&](int i) {
    std::string key = absl::StrCat("/f/", i);
    Txn txn;
    txn.If(CreateRevisionEquals(key, 0)).Then(PutOp(key, absl::StrCat("v", i)));
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (writer->Commit(txn).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "could not write " << key;
  };
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(absl::StrCat("put /f/", i, "=v", i, " ()"));
  for (int i = 0; i < 5; ++i) create(i);
  ASSERT_EQ(events.WaitFor(5).size(), 5u);
  int used = cluster.IndexOf(watching->current_endpoint());
  ASSERT_GE(used, 0);
  cluster.Kill(used);
  for (int i = 5; i < 10; ++i) create(i);
  EXPECT_EQ(events.WaitFor(10), expected);
  watcher.reset();
}

// Last: it turns auth on (and off again).
TEST_F(TreeClientTest, AUserWhoMayReadOnlyOneDirectoryIsDeniedAnother) {
  Put("/ta/k", "1");
  Put("/tb/k", "2");
  auto channel = grpc::CreateChannel(cluster_->Endpoint(0), grpc::InsecureChannelCredentials());
  auto auth = etcdserverpb::Auth::NewStub(channel);
  auto ok = [](const grpc::Status& s) { return s.ok() || absl::StrContains(s.error_message(), "exist"); };
  auto run = [&](auto request, auto method, auto response, const std::string& token = "") {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("token", token);
    return (auth.get()->*method)(&context, request, &response);
  };
  etcdserverpb::AuthUserAddRequest root;
  root.set_name("root");
  root.set_password("rootpw");
  ASSERT_TRUE(ok(run(root, &etcdserverpb::Auth::Stub::UserAdd, etcdserverpb::AuthUserAddResponse{})));
  etcdserverpb::AuthUserGrantRoleRequest root_role;
  root_role.set_user("root");
  root_role.set_role("root");
  ASSERT_TRUE(ok(run(root_role, &etcdserverpb::Auth::Stub::UserGrantRole,
                     etcdserverpb::AuthUserGrantRoleResponse{})));
  etcdserverpb::AuthRoleAddRequest role;
  role.set_name("ra");
  ASSERT_TRUE(ok(run(role, &etcdserverpb::Auth::Stub::RoleAdd, etcdserverpb::AuthRoleAddResponse{})));
  etcdserverpb::AuthRoleGrantPermissionRequest perm;
  perm.set_name("ra");
  perm.mutable_perm()->set_permtype(authpb::Permission::READ);
  perm.mutable_perm()->set_key("/ta/");
  perm.mutable_perm()->set_range_end(PrefixEnd("/ta/"));
  ASSERT_TRUE(ok(run(perm, &etcdserverpb::Auth::Stub::RoleGrantPermission,
                     etcdserverpb::AuthRoleGrantPermissionResponse{})));
  etcdserverpb::AuthUserAddRequest alice;
  alice.set_name("alice");
  alice.set_password("alicepw");
  ASSERT_TRUE(ok(run(alice, &etcdserverpb::Auth::Stub::UserAdd, etcdserverpb::AuthUserAddResponse{})));
  etcdserverpb::AuthUserGrantRoleRequest alice_role;
  alice_role.set_user("alice");
  alice_role.set_role("ra");
  ASSERT_TRUE(ok(run(alice_role, &etcdserverpb::Auth::Stub::UserGrantRole,
                     etcdserverpb::AuthUserGrantRoleResponse{})));
  ASSERT_TRUE(run(etcdserverpb::AuthEnableRequest{}, &etcdserverpb::Auth::Stub::AuthEnable,
                  etcdserverpb::AuthEnableResponse{}).ok());

  auto as_alice = cluster_->Connect({.user = "alice", .password = "alicepw"});
  ASSERT_NE(as_alice, nullptr);
  TreeClient probing(as_alice.get());
  TreeClient fallback(as_alice.get(), TreeClient::Mode::kFallback);
  for (TreeClient* tree : {&probing, &fallback}) {
    etcpb::ListRequest a;
    a.set_path("/ta");
    auto allowed = tree->List(a);
    ASSERT_TRUE(allowed.ok()) << allowed.status();
    EXPECT_EQ(allowed->children_size(), 1);
    etcpb::ListRequest b;
    b.set_path("/tb");
    EXPECT_EQ(tree->List(b).status().code(), absl::StatusCode::kPermissionDenied);
    etcpb::WatchTreeRequest w;
    w.set_path("/tb");
    Events events;
    auto watcher = tree->WatchTree(w, [&](const etcpb::WatchTreeResponse& r) { events.Add(r); });
    EXPECT_TRUE(events.created());
    EXPECT_TRUE(absl::StrContains(events.cancel_reason(), "permission denied"))
        << events.cancel_reason();
  }

  auto as_root = cluster_->Connect({.user = "root", .password = "rootpw"});
  ASSERT_NE(as_root, nullptr);
  etcdserverpb::AuthenticateRequest login;
  login.set_name("root");
  login.set_password("rootpw");
  etcdserverpb::AuthenticateResponse token;
  grpc::ClientContext context;
  ASSERT_TRUE(auth->Authenticate(&context, login, &token).ok());
  EXPECT_TRUE(run(etcdserverpb::AuthDisableRequest{}, &etcdserverpb::Auth::Stub::AuthDisable,
                  etcdserverpb::AuthDisableResponse{}, token.token()).ok());
}

}  // namespace
}  // namespace etc::client

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: tree_client_test <server binary>\n");
    return 2;
  }
  etc::client::g_server = argv[1];
  return RUN_ALL_TESTS();
}
