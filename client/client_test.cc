// The client library against a real three-member cluster, started by the
// test: the server binary is the first argument (etc, or etcd 3.4 as the
// referee: the client must work unchanged against both).
#include "client/client.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/test_cluster.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace etc::client {
namespace {

const char* g_server = nullptr;

// A three-member cluster of the server under test.
class Cluster : public testing::Cluster {
 public:
  Cluster() : testing::Cluster(g_server) {}
  // A client on `endpoints` (all three if none), once the cluster answers.
  std::unique_ptr<Client> Connect(std::vector<std::string> endpoints = {}) {
    ClientOptions options;
    options.endpoints = std::move(endpoints);
    std::unique_ptr<Client> client = testing::Cluster::Connect(options);
    EXPECT_NE(client, nullptr);
    return client;
  }
};

TEST(Client, KeyValueAndTransactions) {
  Cluster cluster;
  auto client = cluster.Connect();
  ASSERT_TRUE(client->Put("/app/a", "1").ok());
  ASSERT_TRUE(client->Put("/app/b", "2").ok());
  auto got = client->Get("/app/", {.prefix = true});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs_size(), 2);
  EXPECT_EQ(got->kvs(1).value(), "2");

  auto swapped = client->Commit(Txn()
                                    .If(ValueEquals("/app/a", "1"))
                                    .Then(PutOp("/app/a", "one"))
                                    .Else(GetOp("/app/a")));
  ASSERT_TRUE(swapped.ok()) << swapped.status();
  EXPECT_TRUE(swapped->succeeded());
  auto again = client->Commit(Txn()
                                  .If(ValueEquals("/app/a", "1"))
                                  .Then(PutOp("/app/a", "never"))
                                  .Else(GetOp("/app/a")));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded());
  EXPECT_EQ(again->responses(0).response_range().kvs(0).value(), "one");

  auto deleted = client->Delete("/app/", {.prefix = true, .prev_kv = true});
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->deleted(), 2);
  EXPECT_EQ(client->Get("/app/", {.prefix = true, .count_only = true})->count(), 0);
  // A clear error from the server is the caller's.
  EXPECT_EQ(client->Put("", "x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Client, FailsOverToAnotherEndpoint) {
  Cluster cluster;
  // The first endpoint has no server at all: requests go on to the next.
  std::string dead = absl::StrCat("127.0.0.1:", testing::FreePort());
  auto client = cluster.Connect({dead, cluster.Endpoint(0), cluster.Endpoint(1), cluster.Endpoint(2)});
  ASSERT_TRUE(client->Put("/f", "1").ok());
  int used = cluster.IndexOf(client->current_endpoint());
  ASSERT_GE(used, 0);
  cluster.Kill(used);
  // Reads are repeated elsewhere; writes go where the client can connect.
  absl::StatusOr<etcdserverpb::RangeResponse> read = absl::UnknownError("not tried");
  for (int attempt = 0; attempt < 50 && !read.ok(); ++attempt) {
    read = client->Get("/f");
    if (!read.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->kvs(0).value(), "1");
  EXPECT_NE(cluster.IndexOf(client->current_endpoint()), used);
  absl::Status written = absl::UnknownError("not tried");
  for (int attempt = 0; attempt < 50 && !written.ok(); ++attempt) {
    written = client->Put("/f", "2").status();
    if (!written.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(written.ok()) << written;
}

TEST(Client, WatchResumesOnAnotherMemberWithoutLosingOrRepeatingEvents) {
  Cluster cluster;
  auto client = cluster.Connect();
  auto writer = cluster.Connect();
  std::mutex mu;
  std::vector<std::string> seen;
  etcdserverpb::WatchCreateRequest create;
  create.set_key("/w/");
  create.set_range_end(PrefixEnd("/w/"));
  auto watcher = client->Watch(create, [&](const etcdserverpb::WatchResponse& response) {
    std::lock_guard<std::mutex> lock(mu);
    for (const mvccpb::Event& event : response.events()) seen.push_back(event.kv().value());
  });
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size();
  };
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(writer->Put("/w/k", absl::StrCat(i)).ok());
  for (int i = 0; i < 100 && count() < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(count(), 5u);
  // The member the watch uses dies; the writes go on elsewhere.
  int used = cluster.IndexOf(client->current_endpoint());
  cluster.Kill(used);
  for (int i = 5; i < 10; ++i) {
    absl::Status written = absl::UnknownError("not tried");
    for (int attempt = 0; attempt < 50 && !written.ok(); ++attempt) {
      written = writer->Put("/w/k", absl::StrCat(i)).status();
      if (!written.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_TRUE(written.ok()) << written;
  }
  for (int i = 0; i < 200 && count() < 10; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  watcher->Stop();
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(absl::StrCat(i));
  EXPECT_EQ(seen, expected);
}

TEST(Client, WatchersOfEveryMemberSeeConcurrentWritesOnceAndInOrder) {
  // Eight writers at once: members apply several revisions per step, and
  // a watch stream sends the revisions that queued up together in one
  // response. Each watcher must still see every revision exactly once, in
  // order, however they were grouped.
  Cluster cluster;
  struct Seen {
    std::mutex mu;
    std::vector<int64_t> revisions;
    size_t most_events_in_a_response = 0;
  };
  std::vector<std::unique_ptr<Client>> watching;
  std::vector<std::unique_ptr<Seen>> seen;
  std::vector<std::unique_ptr<Watcher>> watchers;
  etcdserverpb::WatchCreateRequest create;
  create.set_key("/m/");
  create.set_range_end(PrefixEnd("/m/"));
  for (int member = 0; member < 3; ++member) {
    watching.push_back(cluster.Connect({cluster.Endpoint(member)}));
    seen.push_back(std::make_unique<Seen>());
    Seen* mine = seen.back().get();
    watchers.push_back(watching.back()->Watch(create, [mine](const etcdserverpb::WatchResponse& r) {
      std::lock_guard<std::mutex> lock(mine->mu);
      for (const mvccpb::Event& event : r.events()) mine->revisions.push_back(event.kv().mod_revision());
      mine->most_events_in_a_response =
          std::max(mine->most_events_in_a_response, static_cast<size_t>(r.events_size()));
    }));
  }
  constexpr int kWriters = 8, kPutsEach = 50, kPuts = kWriters * kPutsEach;
  std::vector<std::thread> writers;
  std::mutex written_mu;
  std::vector<int64_t> written;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto client = cluster.Connect();
      for (int i = 0; i < kPutsEach; ++i) {
        auto put = client->Put(absl::StrCat("/m/", w, "/", i), "v");
        ASSERT_TRUE(put.ok()) << put.status();
        std::lock_guard<std::mutex> lock(written_mu);
        written.push_back(put->header().revision());
      }
    });
  }
  for (std::thread& t : writers) t.join();
  ASSERT_EQ(written.size(), static_cast<size_t>(kPuts));
  std::sort(written.begin(), written.end());
  size_t most = 0;
  for (int member = 0; member < 3; ++member) {
    Seen& mine = *seen[member];
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> lock(mine.mu);
        if (mine.revisions.size() >= written.size()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::lock_guard<std::mutex> lock(mine.mu);
    EXPECT_EQ(mine.revisions, written) << "member " << member;
    most = std::max(most, mine.most_events_in_a_response);
  }
  for (auto& watcher : watchers) watcher->Stop();
  // On etc some revisions arrived together (otherwise this test checked
  // nothing about grouping). etcd, the referee, sends a watcher that keeps
  // up one response per revision.
  if (!absl::EndsWith(g_server, "/etcd")) EXPECT_GT(most, 1u);
}

TEST(Client, LeasesKeepKeysAliveOnlyWhileKeptAlive) {
  Cluster cluster;
  auto client = cluster.Connect();
  auto lease = client->Grant(2);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(client->Put("/leased", "x", {.lease = lease->id()}).ok());
  auto keep = client->KeepAliveForever(lease->id(), lease->ttl());
  std::this_thread::sleep_for(std::chrono::seconds(4));
  EXPECT_EQ(client->Get("/leased")->kvs_size(), 1) << "kept alive past its TTL";
  auto ttl = client->TimeToLive(lease->id(), /*keys=*/true);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->keys_size(), 1);
  keep->Stop();
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = client->Get("/leased")->kvs_size() == 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(gone) << "the key outlived its lease";
  EXPECT_EQ(*client->KeepAliveOnce(lease->id()), 0);
}

TEST(Client, ALockTakenByTheFirstWriteOfAFreshClusterIsHeldAtOnce) {
  // The lock's key is then the cluster's first revision (1 on etc, 2 on
  // etcd): waiting for "keys older than it" must not ask for a maximum
  // create revision of 0, which means no bound, and wait for itself.
  Cluster cluster;
  ClientOptions options;
  options.endpoints = cluster.Endpoints();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> lease;
  for (int attempt = 0; attempt < 100; ++attempt) {
    lease = (*client)->Grant(30);  // a grant makes no revision
    if (lease.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto held = (*client)->Lock("/locks/first", lease->id(), std::chrono::seconds(3));
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_LE((*client)->Get(*held)->kvs(0).create_revision(), 2);
}

TEST(Client, LocksExcludeEachOtherAndElectionsHaveOneLeader) {
  Cluster cluster;
  auto client = cluster.Connect();
  int64_t first = client->Grant(30)->id();
  int64_t second = client->Grant(30)->id();
  auto held = client->Lock("/locks/x", first, std::chrono::seconds(5));
  ASSERT_TRUE(held.ok()) << held.status();
  // The second locker waits, and times out while the first holds it.
  auto waited = client->Lock("/locks/x", second, std::chrono::milliseconds(700));
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kDeadlineExceeded) << waited.status();
  ASSERT_TRUE(client->Unlock(*held).ok());
  auto next = client->Lock("/locks/x", second, std::chrono::seconds(5));
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(client->Unlock(*next).ok());

  auto leader = client->Campaign("/elect/x", first, "a", std::chrono::seconds(5));
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(client->Leader("/elect/x")->value(), "a");
  ASSERT_TRUE(client->Proclaim(*leader, "b").ok());
  EXPECT_EQ(client->Leader("/elect/x")->value(), "b");
  ASSERT_TRUE(client->Resign(*leader).ok());
  EXPECT_FALSE(client->Leader("/elect/x").ok());
}

}  // namespace
}  // namespace etc::client

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: client_test <server binary>\n");
    return 2;
  }
  etc::client::g_server = argv[1];
  return RUN_ALL_TESTS();
}
